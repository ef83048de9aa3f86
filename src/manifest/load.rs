//! Finding manifest files and turning them into typed runs, collecting every problem.

use super::check;
use super::types::AnnotationRun;
use super::yaml::{self, Node, Span, Value};
use crate::diag::{Problem, SourceFile, display_path};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Manifests larger than this are refused before parsing: no real manifest is near it.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// A run parsed from a manifest, with its source for later diagnostics.
#[derive(Debug, Clone)]
pub struct LoadedRun {
    pub run: AnnotationRun,
    pub file: Arc<SourceFile>,
    /// The document's YAML tree, to point at any part of the run.
    pub node: Node,
}

impl LoadedRun {
    /// A problem located at `path` inside this run's document.
    pub fn problem(
        &self,
        path: &[yaml::PathItem<'_>],
        at_key: bool,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> Problem {
        Problem::at(&self.file, self.node.span_of(path, at_key), message, label)
    }

    /// `file:line:col` of a path inside this run's document.
    pub fn position(&self, path: &[yaml::PathItem<'_>]) -> String {
        let span = self.node.span_of(path, true);
        let (l, c) = self.file.line_col(span.start);
        format!("{}:{l}:{c}", self.file.name)
    }
}

/// The runs found and the problems met on the way.
#[derive(Debug, Default)]
pub struct Loaded {
    pub runs: Vec<LoadedRun>,
    pub problems: Vec<Problem>,
    pub files: usize,
}

/// Every `*.yaml`/`*.yml` file under `paths` (directories recursively, in name order; files
/// named directly are taken whatever their extension).
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Problem> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| {
            Problem::plain(format!("cannot read manifests at {}: {e}", p.display()))
        })?;
        if meta.is_dir() {
            walk(p, &mut out)
                .map_err(|e| Problem::plain(format!("cannot list {}: {e}", p.display())))?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        if e.file_type()?.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(path);
        }
    }
    Ok(())
}

/// Load every manifest under `paths`; names in messages are relative to `base`.
pub fn load(paths: &[PathBuf], base: &Path) -> Loaded {
    let files = match discover(paths) {
        Ok(f) => f,
        Err(p) => {
            return Loaded {
                problems: vec![p],
                ..Default::default()
            };
        }
    };
    let mut loaded = Loaded {
        files: files.len(),
        ..Default::default()
    };
    for path in files {
        let (runs, problems) = load_file(&path, &display_path(&path, base));
        loaded.runs.extend(runs);
        loaded.problems.extend(problems);
    }
    loaded
}

/// Load one manifest file.
pub fn load_file(path: &Path, name: &str) -> (Vec<LoadedRun>, Vec<Problem>) {
    let fail = |msg: String| (Vec::new(), vec![Problem::plain(msg)]);
    match std::fs::metadata(path) {
        Ok(m) if m.len() > MAX_FILE_BYTES => {
            let src = SourceFile::new(name, String::new());
            let p = Problem::at(
                &src,
                Span::default(),
                format!(
                    "manifest is too large ({} bytes; the limit is {MAX_FILE_BYTES})",
                    m.len()
                ),
                "",
            )
            .with_help("manifests describe runs, not data; is this the right file?");
            return (Vec::new(), vec![p]);
        }
        Ok(_) => {}
        Err(e) => return fail(format!("cannot read {name}: {e}")),
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return fail(format!("cannot read {name}: {e}")),
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            // Quote only the readable part: the rest is noise.
            let prefix = String::from_utf8_lossy(&e.as_bytes()[..valid]).into_owned();
            let src = SourceFile::new(name, prefix);
            let p = Problem::at(
                &src,
                Span {
                    start: valid,
                    end: valid,
                },
                "manifest is not UTF-8 text",
                "invalid byte here",
            )
            .with_help("manifests are YAML text files; is this a binary file?");
            return (Vec::new(), vec![p]);
        }
    };
    parse_text(SourceFile::new(name, text))
}

/// Parse the documents of one manifest's text.
pub fn parse_text(src: Arc<SourceFile>) -> (Vec<LoadedRun>, Vec<Problem>) {
    let docs = match yaml::parse(src.text()) {
        Ok(d) => d,
        Err(e) => {
            return (
                Vec::new(),
                vec![Problem::at(&src, e.span, e.message, "here").with_help_opt(e.help)],
            );
        }
    };
    let mut runs = Vec::new();
    let mut problems = Vec::new();
    let docs: Vec<Node> = docs
        .into_iter()
        .filter(|d| d.value != Value::Null)
        .collect();
    if docs.is_empty() {
        let p = Problem::at(&src, Span::default(), "manifest has no documents", "empty")
            .with_help("a manifest holds one or more `kind: AnnotationRun` documents; delete the file if it is not needed");
        return (runs, vec![p]);
    }
    let schema = run_schema();
    for doc in docs {
        if doc.entries().is_none() {
            problems.push(
                Problem::at(&src, doc.span, format!("a manifest document must be a mapping, found {}", doc.kind()), "not a mapping")
                    .with_help("start from `apiVersion: annoform/v1` / `kind: AnnotationRun`; see `annoform schema`"),
            );
            continue;
        }
        let findings = check::check(&doc, &schema, "");
        if !findings.is_empty() {
            problems.extend(findings.into_iter().map(|f| Problem::from_finding(&src, f)));
            continue;
        }
        match serde_json::from_value::<AnnotationRun>(doc.to_json()) {
            Ok(run) => runs.push(LoadedRun {
                run,
                file: src.clone(),
                node: doc,
            }),
            Err(e) => problems.push(Problem::at(
                &src,
                doc.span,
                format!("invalid manifest: {e}"),
                "in this document",
            )),
        }
    }
    (runs, problems)
}

/// The manifest's JSON Schema as a value, as `annoform schema` prints it.
pub fn run_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(AnnotationRun)).unwrap_or_default()
}

/// The manifest schema as published (`annoform schema`, `schema/manifest.schema.json`): the
/// run schema plus, for editors, each built-in backend's `backend_config` schema.
pub fn published_schema() -> serde_json::Value {
    use crate::backend::BackendKind;
    use serde_json::json;
    let mut schema = run_schema();
    let mut all_of = Vec::new();
    for kind in BackendKind::builtins() {
        let mut cfg = kind.config_schema();
        let def_name = format!("{}BackendConfig", kind.as_str());
        if let Some(defs) = cfg
            .as_object_mut()
            .and_then(|o| o.remove("$defs"))
            .and_then(|d| d.as_object().cloned())
        {
            for (k, v) in defs {
                schema["$defs"][k] = v;
            }
        }
        if let Some(o) = cfg.as_object_mut() {
            o.remove("$schema");
        }
        schema["$defs"][&def_name] = cfg;
        all_of.push(json!({
            "if": {"properties": {"backend": {"const": kind.as_str()}}, "required": ["backend"]},
            "then": {"properties": {"backend_config": {"$ref": format!("#/$defs/{def_name}")}}}
        }));
    }
    schema["allOf"] = serde_json::Value::Array(all_of);
    schema
}

/// The schema of annoform.toml.
pub fn config_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(crate::config::FileConfig)).unwrap_or_default()
}

/// A schema as committed: pretty JSON with a trailing newline.
pub fn schema_text(schema: &serde_json::Value) -> String {
    serde_json::to_string_pretty(schema).unwrap_or_default() + "\n"
}
