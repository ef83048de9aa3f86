//! `annoform init`: scaffold a workspace.

use super::{CommandError, Context};
use crate::dataset::dir::Dataset;
use std::path::{Path, PathBuf};

/// `init` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// An existing dataset in FiftyOne's directory format (`dataset.export(export_dir=PATH,
    /// dataset_type=fo.types.FiftyOneDataset)`): annoform.toml names it and the example run
    /// reviews one of its label fields.
    #[arg(long, value_name = "PATH")]
    pub dataset: Option<PathBuf>,
    /// The backend runs go to by default: annoform.toml gets its table and the message names
    /// the variables its credentials come from.
    #[arg(long, value_enum, default_value_t = InitBackend::Cvat)]
    pub backend: InitBackend,
}

/// The backends `init` can set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InitBackend {
    Cvat,
    Labelstudio,
}

impl InitBackend {
    /// Its name in annoform.toml.
    fn name(self) -> &'static str {
        match self {
            InitBackend::Cvat => "cvat",
            InitBackend::Labelstudio => "labelstudio",
        }
    }

    /// Its table in annoform.toml, with where its credentials come from.
    fn table(self) -> &'static str {
        match self {
            InitBackend::Cvat => TOML_CVAT,
            InitBackend::Labelstudio => TOML_LABELSTUDIO,
        }
    }

    /// The variables to set before apply.
    fn credentials(self) -> &'static str {
        match self {
            InitBackend::Cvat => "ANNOFORM_CVAT_USERNAME and ANNOFORM_CVAT_PASSWORD",
            InitBackend::Labelstudio => "ANNOFORM_LABELSTUDIO_API_KEY",
        }
    }
}

pub const AFTER_HELP: &str = "\
Examples:
  annoform init --dataset datasets/mydata    a workspace whose example run validates as is
  annoform init                              no dataset yet: the example run is left commented
  annoform init --dataset d --backend labelstudio   runs go to Label Studio";

const TOML_HEAD: &str = r#"# annoform workspace. Secrets never go here: set them in the environment as
# ANNOFORM_<BACKEND>_<SETTING>; `annoform config show` names any that is missing.
manifests = "manifests"
"#;

const TOML_CVAT: &str = r#"
# Credentials: ANNOFORM_CVAT_USERNAME and ANNOFORM_CVAT_PASSWORD (or ANNOFORM_CVAT_API_KEY).
[backends.cvat]
url = "http://localhost:8080"
"#;

const TOML_LABELSTUDIO: &str = r#"
# Credentials: ANNOFORM_LABELSTUDIO_API_KEY (Account & Settings → Access Token).
[backends.labelstudio]
url = "http://localhost:8080"
"#;

/// Without a dataset, the table is written commented out: a declared dataset that does not
/// exist would make the first `validate` fail.
const TOML_NO_DATASET: &str = r#"# A dataset in FiftyOne's directory format: `dataset.export(export_dir="datasets/mydata",
# dataset_type=fo.types.FiftyOneDataset)`. Uncomment once the export exists (or re-run
# `annoform init --dataset PATH` in an empty directory).
# [datasets.mydata]
# path = "datasets/mydata"
"#;

/// The example run, kept out of `manifests/*.yaml` until the dataset exists.
pub const EXAMPLE_NAME: &str = "manifests/first_run.yaml.example";

const EXAMPLE: &str = r#"# yaml-language-server: $schema=../schema/manifest.schema.json
# An example run: review the existing `ground_truth` labels of `mydata`.
# To use it: export the dataset, uncomment `[datasets.mydata]` in annoform.toml, rename this
# file to first_run.yaml (manifests are the *.yaml files) and run `annoform validate`.
apiVersion: annoform/v1
kind: AnnotationRun
key: first_run
dataset: mydata
label_field: ground_truth
"#;

/// Label classes a first run can review on every backend.
const REVIEWABLE: [&str; 6] = [
    "Detections",
    "Detection",
    "Classification",
    "Classifications",
    "Polylines",
    "Keypoints",
];

/// Write annoform.toml, manifests/ and a .gitignore entry for local state, never overwriting.
pub fn run(ctx: &Context, args: &Args) -> Result<(), CommandError> {
    let root = &ctx.cli_dir;
    let toml = root.join(crate::config::FILE_NAME);
    if toml.exists() {
        return Err(CommandError::failed(format!(
            "{} already exists; nothing was changed",
            toml.display()
        )));
    }
    let dataset = args
        .dataset
        .as_deref()
        .map(|p| inspect(root, p))
        .transpose()?;
    let write = |rel: &str, text: &str| -> Result<(), CommandError> {
        let p = root.join(rel);
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                CommandError::failed(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        std::fs::write(&p, text)
            .map_err(|e| CommandError::failed(format!("cannot write {}: {e}", p.display())))
    };
    let (manifest_name, manifest) = match &dataset {
        Some(d) => ("manifests/first_run.yaml", d.manifest()),
        None => (EXAMPLE_NAME, EXAMPLE.to_string()),
    };
    let table = dataset
        .as_ref()
        .map_or_else(|| TOML_NO_DATASET.to_string(), Found::toml);
    write(
        crate::config::FILE_NAME,
        &format!(
            "{TOML_HEAD}default_backend = \"{}\"\n\n[state]\nstore = \"local\"\npath = \".annoform/state\"\n\n{table}{}",
            args.backend.name(),
            args.backend.table()
        ),
    )?;
    if !root.join(manifest_name).exists() {
        write(manifest_name, &manifest)?;
    }
    write(
        "schema/manifest.schema.json",
        &crate::manifest::load::schema_text(&crate::manifest::load::published_schema()),
    )?;
    let gitignore = root.join(".gitignore");
    let existing = std::fs::read_to_string(&gitignore).unwrap_or_default();
    if !existing.lines().any(|l| l.trim() == ".annoform/") {
        write(
            ".gitignore",
            &format!(
                "{existing}{}.annoform/\n",
                if existing.is_empty() || existing.ends_with('\n') {
                    ""
                } else {
                    "\n"
                }
            ),
        )?;
    }
    let next = match &dataset {
        Some(_) => format!(
            "Next: `annoform validate`, set {} (or point default_backend elsewhere), then \
             `annoform plan`.",
            args.backend.credentials()
        ),
        None => format!(
            "Next: export your dataset, then follow the steps at the top of {EXAMPLE_NAME} \
             (or start again with `annoform init --dataset PATH`)."
        ),
    };
    super::print(&format!(
        "Created annoform.toml, {manifest_name}, schema/manifest.schema.json and a .gitignore entry for .annoform/.\n{next}\n"
    ))
}

/// What `--dataset` points at.
struct Found {
    name: String,
    /// As written in annoform.toml: relative to the workspace when inside it.
    path: String,
    label_field: Option<String>,
}

impl Found {
    fn toml(&self) -> String {
        format!(
            "# A dataset in FiftyOne's directory format.\n[datasets.{}]\npath = {}\n",
            self.name,
            toml_string(&self.path)
        )
    }

    fn manifest(&self) -> String {
        let (what, field) = match &self.label_field {
            Some(f) => (
                format!("review the existing `{f}` labels of `{}`", self.name),
                format!("label_field: {f}\n"),
            ),
            None => (
                format!(
                    "`{}` has no label field yet: draw boxes into a new `annotations` field",
                    self.name
                ),
                "label_field: annotations\nlabel_type: detections\nclasses: [object]\n".to_string(),
            ),
        };
        format!(
            "# yaml-language-server: $schema=../schema/manifest.schema.json\n\
             # An example run: {what}.\n\
             apiVersion: annoform/v1\nkind: AnnotationRun\nkey: first_run\ndataset: {}\n{field}",
            self.name
        )
    }
}

/// Load the dataset at `path` (relative to the workspace) and pick a label field to review.
fn inspect(root: &Path, path: &Path) -> Result<Found, CommandError> {
    let full = root.join(path);
    let dataset = Dataset::load(&full).map_err(|e| {
        CommandError::failed(format!("--dataset: {e}")).hint(
            "export it from FiftyOne with `dataset.export(export_dir=PATH, dataset_type=fo.types.FiftyOneDataset)`",
        )
    })?;
    let shown = match full.strip_prefix(root) {
        Ok(rel) if path.is_relative() => rel.display().to_string(),
        _ => full.display().to_string(),
    };
    let base = dataset
        .name()
        .map(str::to_string)
        .or_else(|| full.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let mut name: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        name.insert_str(0, "dataset_");
    }
    let fields = sample_field_names(&dataset);
    let reviewable = |f: &&String| {
        dataset
            .field_label_class(&crate::dataset::FieldPath::sample(f))
            .is_some_and(|c| REVIEWABLE.contains(&c.as_str()))
    };
    let label_field = fields
        .iter()
        .find(|f| *f == "ground_truth")
        .filter(reviewable)
        .or_else(|| fields.iter().find(reviewable))
        .cloned();
    Ok(Found {
        name,
        path: shown,
        label_field,
    })
}

fn sample_field_names(dataset: &Dataset) -> Vec<String> {
    use serde_json::Value;
    match dataset.metadata().get("sample_fields") {
        Some(Value::Array(docs)) => docs
            .iter()
            .filter_map(|d| d.get("name").and_then(Value::as_str).map(str::to_string))
            .collect(),
        Some(Value::Object(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}
