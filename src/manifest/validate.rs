//! Checks that need more than one document's shape: the workspace config, backend
//! capabilities, other runs and (through [`DatasetInfo`]) the datasets themselves.

use super::check;
use super::fields::{FieldRef, fields};
use super::load::LoadedRun;
use super::types::*;
use super::yaml::PathItem::{self, Index, Key};
use crate::backend::{BackendKind, Capabilities};
use crate::config::Config;
use crate::dataset::store::StoreError;
use crate::dataset::{expr, view};
use crate::diag::Problem;
use crate::schema::{Recorded, RecordedSchemas, ResolvedSchema, resolve};
use crate::workspace::Datasets;
use std::collections::HashMap;

const SHORTHAND: [&str; 10] = [
    "label_field",
    "label_type",
    "classes",
    "attributes",
    "mask_targets",
    "allow_additions",
    "allow_deletions",
    "allow_label_edits",
    "allow_index_edits",
    "allow_spatial_edits",
];

/// Validate loaded runs against the workspace; returns every problem found.
pub fn validate(runs: &[LoadedRun], config: &Config, datasets: &mut Datasets) -> Vec<Problem> {
    validate_with(runs, config, datasets, &RecordedSchemas::new())
}

/// [`validate`], resolving runs that have a record from the schema recorded for them.
pub fn validate_with(
    runs: &[LoadedRun],
    config: &Config,
    datasets: &mut Datasets,
    recorded: &RecordedSchemas,
) -> Vec<Problem> {
    let v = validate_split(runs, config, datasets, recorded);
    let mut problems = v.problems;
    problems.extend(v.per_run.into_iter().map(|(_, p)| p));
    problems
}

/// Problems of the manifests, apart from those that concern one run against its dataset.
#[derive(Debug, Default)]
pub struct Validation {
    /// Problems of the manifests themselves: nothing can be planned while they stand.
    pub problems: Vec<Problem>,
    /// Problems of one run against its dataset (dataset, key): that run cannot be planned,
    /// the others can.
    pub per_run: Vec<((String, String), Problem)>,
    /// What validation resolved for each run (dataset, key) that resolved without problems:
    /// the engine plans from it instead of resolving again.
    pub resolved: HashMap<(String, String), Resolved>,
}

/// A run resolved against its dataset: the view, the schema, and that no label of it is one a
/// backend cannot take back unchanged.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub view: view::View,
    pub schema: ResolvedSchema,
}

/// [`validate_with`], keeping the problems of one run against its dataset apart.
pub fn validate_split(
    runs: &[LoadedRun],
    config: &Config,
    datasets: &mut Datasets,
    recorded: &RecordedSchemas,
) -> Validation {
    let mut problems = Vec::new();
    let mut per_run = Vec::new();
    let mut resolved = HashMap::new();
    let mut seen: HashMap<(&str, &str), &LoadedRun> = HashMap::new();
    for r in runs {
        let key = (r.run.dataset.as_str(), r.run.key.0.as_str());
        match seen.get(&key) {
            Some(first) => problems.push(
                r.problem(
                    &[Key("key")],
                    false,
                    format!(
                        "duplicate run key `{}` for dataset `{}`",
                        r.run.key, r.run.dataset
                    ),
                    "defined again here",
                )
                .with_help(format!(
                    "first defined at {}; keys are unique per dataset",
                    first.position(&[Key("key")])
                )),
            ),
            None => {
                seen.insert(key, r);
            }
        }
        let mut check = RunCheck {
            r,
            config,
            datasets,
            recorded: recorded.get(&(r.run.dataset.clone(), r.run.key.0.clone())),
            out: &mut problems,
            dataset_out: Vec::new(),
            resolved: None,
        };
        check.run();
        let key = (r.run.dataset.clone(), r.run.key.0.clone());
        let (dataset_out, done) = (check.dataset_out, check.resolved);
        match done {
            Some(done) if dataset_out.is_empty() => {
                resolved.insert(key, done);
            }
            _ => per_run.extend(dataset_out.into_iter().map(|p| (key.clone(), p))),
        }
    }
    Validation {
        problems,
        per_run,
        resolved,
    }
}

struct RunCheck<'a> {
    r: &'a LoadedRun,
    config: &'a Config,
    datasets: &'a mut Datasets,
    recorded: Option<&'a Recorded>,
    out: &'a mut Vec<Problem>,
    /// Problems of the run against its dataset (see [`Validation::per_run`]).
    dataset_out: Vec<Problem>,
    /// The run's view and schema, once they resolved (see [`Validation::resolved`]).
    resolved: Option<Resolved>,
}

impl RunCheck<'_> {
    fn err(
        &mut self,
        path: &[PathItem<'_>],
        at_key: bool,
        message: String,
        label: &str,
        help: Option<String>,
    ) {
        let p = self
            .r
            .problem(path, at_key, message, label)
            .with_help_opt(help);
        self.out.push(p);
    }

    fn run(&mut self) {
        let run = &self.r.run;
        let dataset_known = self.config.datasets.contains_key(&run.dataset);
        if !dataset_known {
            let names: Vec<&str> = self.config.datasets.keys().map(String::as_str).collect();
            let help = match check::suggest(&run.dataset, names.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None if names.is_empty() => format!(
                    "declare it in annoform.toml:\n[datasets.{}]\npath = \"datasets/{}\"",
                    run.dataset, run.dataset
                ),
                None => format!("datasets in annoform.toml: {}", names.join(", ")),
            };
            self.err(
                &[Key("dataset")],
                false,
                format!("unknown dataset `{}`", run.dataset),
                "not in annoform.toml",
                Some(help),
            );
        }
        let kind = self.backend();
        let view_ok = self.view();
        self.shape();
        let fields = fields(run);
        if let Some(kind) = kind {
            let caps = kind.capabilities();
            if let Some(max) = caps.max_fields {
                if fields.len() > max {
                    self.err(
                        &[Key("label_schema")],
                        true,
                        format!(
                            "{kind} annotates at most {max} field(s) per run; this run has {}",
                            fields.len()
                        ),
                        "too many fields",
                        Some("split the run into one run per field".into()),
                    );
                }
            }
        }
        for f in &fields {
            self.field(f, kind);
        }
        self.dest_field(&fields);
        if dataset_known && view_ok {
            self.against_dataset(kind);
        }
    }

    /// The run's backend kind, checking the name and `backend_config`.
    fn backend(&mut self) -> Option<BackendKind> {
        let run = &self.r.run;
        let name = run
            .backend
            .clone()
            .unwrap_or_else(|| self.config.default_backend.value.clone());
        let Some(settings) = self.config.backend(&name) else {
            let names: Vec<&str> = self.config.backends.keys().map(String::as_str).collect();
            let help = check::suggest(&name, names.iter().copied())
                .map(|s| format!("did you mean `{s}`?"))
                .unwrap_or_else(|| format!("known backends: {}; others are declared as [backends.<name>] in annoform.toml", names.join(", ")));
            let (path, msg) = if run.backend.is_some() {
                (vec![Key("backend")], format!("unknown backend `{name}`"))
            } else {
                (
                    vec![Key("key")],
                    format!(
                        "unknown default backend `{name}` (from {})",
                        self.config.default_backend.source
                    ),
                )
            };
            self.err(&path, false, msg, "unknown backend", Some(help));
            return None;
        };
        let kind = settings.kind;
        if let Some(cfg) = self.r.node.get("backend_config") {
            for f in check::check(cfg, &kind.config_schema(), "backend_config") {
                self.out.push(Problem::from_finding(&self.r.file, f));
            }
        }
        if kind == BackendKind::Labelstudio {
            self.local_files_root(settings);
        }
        for (k, v) in &run.backend_config {
            if let Some(why) = kind.refused(k) {
                self.err(
                    &[Key("backend_config"), Key(k)],
                    true,
                    format!("`backend_config.{k}` is not supported"),
                    "not supported",
                    Some(why.into()),
                );
            }
            if let Some(s) = v.as_str() {
                if let Err(e) = crate::secret::references(s) {
                    self.err(
                        &[Key("backend_config"), Key(k)],
                        false,
                        format!("invalid `backend_config.{k}`: {e}"),
                        "here",
                        None,
                    );
                }
            }
        }
        Some(kind)
    }

    /// Label Studio's `local_files_root` is the server's document root: an absolute path,
    /// against which the absolute paths of the media are compared.
    fn local_files_root(&mut self, settings: &crate::config::BackendSettings) {
        const KEY: &str = "local_files_root";
        let relative = |v: &serde_json::Value| {
            v.as_str()
                .is_some_and(|p| !p.contains("${env:") && !std::path::Path::new(p).is_absolute())
        };
        let help = Some(
            "give the server's LOCAL_FILES_DOCUMENT_ROOT as an absolute path; media under it are served by Label Studio instead of uploaded".to_string(),
        );
        if let Some(v) = self.r.run.backend_config.get(KEY) {
            if relative(v) {
                self.err(
                    &[Key("backend_config"), Key(KEY)],
                    false,
                    format!("`backend_config.{KEY}` must be an absolute path"),
                    "relative path",
                    help,
                );
            }
        } else if let Some(s) = settings.values.get(KEY) {
            if relative(&s.value) {
                self.err(
                    &[Key("key")],
                    false,
                    format!(
                        "`{KEY}` of this run's backend ({}) must be an absolute path",
                        s.source
                    ),
                    "in this run",
                    help,
                );
            }
        }
    }

    /// Checks view stages on their own; false when an expression does not parse.
    fn view(&mut self) -> bool {
        let mut ok = true;
        for (i, stage) in self.r.run.view.iter().enumerate() {
            let base = [Key("view"), Index(i)];
            let (name, key, expr) = match stage {
                ViewStage::FilterLabels(f) => ("filter_labels", "where", f.where_.as_str()),
                ViewStage::MatchLabels(m) => ("match_labels", "where", m.where_.as_str()),
                ViewStage::SortBy(SortBy::Expr(e)) => ("sort_by", "expr", e.expr.as_str()),
                ViewStage::Select(ids) => {
                    for (j, id) in ids.as_slice().iter().enumerate() {
                        if id.len() != 24 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                            let mut path = vec![base[0], base[1], Key("select")];
                            if let OneOrMany::Many(_) = ids {
                                path.push(Index(j));
                            }
                            self.err(
                                &path,
                                false,
                                format!("`{id}` is not a sample id"),
                                "not an id",
                                Some(
                                    "sample ids are 24 hexadecimal characters (FiftyOne ObjectIds)"
                                        .into(),
                                ),
                            );
                        }
                    }
                    continue;
                }
                _ => continue,
            };
            if let Err(e) = expr::parse(expr) {
                ok = false;
                self.err(
                    &[base[0], base[1], Key(name), Key(key)],
                    false,
                    format!("invalid expression in `view[{i}].{name}`: {}", e.msg),
                    &format!("error at character {}", e.pos + 1),
                    Some(e.render(expr)),
                );
            }
        }
        ok
    }

    /// Checks that need the dataset: the view applies, and every field's schema resolves.
    fn against_dataset(&mut self, kind: Option<BackendKind>) {
        let run = &self.r.run;
        if self.datasets.get(&run.dataset).is_none_or(|l| l.is_err()) {
            return self.unloadable();
        }
        let view = self.datasets.view(&run.dataset, &run.view);
        let Some(Ok(ds)) = self.datasets.get(&run.dataset) else {
            return;
        };
        let mut found = Vec::new();
        match view {
            Err(StoreError::View(e)) => {
                let stage = match &e {
                    view::ViewError::Expr { stage, .. }
                    | view::ViewError::InvalidId { stage, .. }
                    | view::ViewError::UnknownSample { stage, .. }
                    | view::ViewError::Field { stage, .. } => *stage,
                };
                let msg = e.to_string().lines().next().unwrap_or_default().to_string();
                found.push((
                    vec![Key("view"), Index(stage)],
                    false,
                    format!("{msg} (dataset `{}`)", run.dataset),
                    "cannot apply".into(),
                ));
            }
            Err(e) => found.push((
                vec![Key("view")],
                false,
                format!("cannot select the view of dataset `{}`: {e}", run.dataset),
                "cannot apply".into(),
            )),
            Ok(v) => {
                let video = ds.media_type() == "video";
                if let Some(kind) = kind.filter(|k| video && !k.capabilities().video) {
                    found.push((
                            vec![Key("key")],
                            false,
                            format!(
                                "run `{}`: {kind} does not annotate videos, and dataset `{}` holds videos",
                                run.key, run.dataset
                            ),
                            "video dataset".into(),
                        ));
                }
                for f in fields(run) {
                    let (path, at_key) = f.location();
                    if f.name.is_frame() && !video {
                        found.push((
                            path,
                            at_key,
                            format!(
                                "`{}` is a frame field but dataset `{}` holds images",
                                f.name, run.dataset
                            ),
                            "frame field".into(),
                        ));
                    } else if !f.name.is_frame() && video && kind == Some(BackendKind::Cvat) {
                        // FiftyOne: CVAT does not annotate a video's sample fields.
                        found.push((
                                path,
                                at_key,
                                format!(
                                    "`{}` is a sample field but dataset `{}` holds videos, whose labels CVAT takes on frames only: use `frames.{}`",
                                    f.name, run.dataset, f.name
                                ),
                                "sample field".into(),
                            ));
                    }
                }
                let unchanged = kind.and_then(|k| resolve::unchanged(run, ds, k, self.recorded));
                if let Some(schema) = unchanged {
                    // Resolved and checked before, from what is still the same.
                    let schema = schema.clone();
                    self.resolved = Some(Resolved { view: v, schema });
                } else if let Some(kind) = kind {
                    let recorded = self.recorded.map(|r| &r.schema);
                    match resolve::resolve(run, ds, &v, kind, recorded) {
                        Ok(schema) => {
                            found.extend(unsendable(ds, &v, &schema, &run.dataset));
                            self.resolved = Some(Resolved { view: v, schema });
                        }
                        Err(errors) => {
                            for e in errors {
                                let (path, at_key) = fields(run)
                                    .into_iter()
                                    .find(|f| f.name == e.field)
                                    .map_or((vec![Key("label_field")], false), |f| f.location());
                                found.push((
                                    path,
                                    at_key,
                                    format!("{e} (dataset `{}`)", run.dataset),
                                    "cannot resolve".into(),
                                ));
                            }
                        }
                    }
                }
            }
        }
        self.report(found);
    }

    /// The run's dataset cannot be loaded (`None` when annoform.toml does not declare it:
    /// reported elsewhere).
    fn unloadable(&mut self) {
        let run = &self.r.run;
        let Some(Err(e)) = self.datasets.get(&run.dataset) else {
            return;
        };
        let found = vec![(
            vec![Key("dataset")],
            false,
            format!("cannot load dataset `{}`: {e}", run.dataset),
            "unreadable".to_string(),
        )];
        self.report(found);
    }

    fn report(&mut self, found: Vec<(Vec<PathItem<'_>>, bool, String, String)>) {
        for (path, at_key, msg, label) in found {
            let p = self.r.problem(&path, at_key, msg, &label);
            self.dataset_out.push(p);
        }
    }

    /// Full form and shorthand are exclusive, and one of them is needed.
    fn shape(&mut self) {
        let run = &self.r.run;
        let present: Vec<&str> = SHORTHAND
            .iter()
            .copied()
            .filter(|k| self.r.node.get(k).is_some())
            .collect();
        if run.label_schema.is_some() {
            for k in present {
                self.err(&[Key(k)], true, format!("`{k}` cannot be combined with `label_schema`"), "shorthand key", Some(format!("`{k}` is shorthand for a one-field run; move it under `label_schema.<field>`")));
            }
        } else if run.label_field.is_none() {
            if present.is_empty() {
                self.err(&[Key("key")], false, "the run annotates no field".into(), "in this run", Some("add `label_schema: {<field>: {...}}` or the one-field shorthand `label_field: <field>`".into()));
            } else {
                for k in present {
                    self.err(
                        &[Key(k)],
                        true,
                        format!("`{k}` needs `label_field`"),
                        "no field to apply to",
                        Some(
                            "name the field with `label_field: <field>`, or use `label_schema`"
                                .into(),
                        ),
                    );
                }
            }
        }
    }

    fn field(&mut self, f: &FieldRef<'_>, kind: Option<BackendKind>) {
        let at = |k: &'static str| -> Vec<PathItem<'_>> {
            let mut p = f.path.clone();
            p.push(Key(if f.path.is_empty() && k == "type" {
                "label_type"
            } else {
                k
            }));
            p
        };
        let name = &f.name;
        let is_frame = name.is_frame();
        if name.naming_problem().is_some() {
            let (path, at_key) = f.location();
            self.err(
                &path,
                at_key,
                format!("invalid field name `{name}`"),
                "bad name",
                Some(
                    "field names are identifiers; frame fields are written `frames.<name>`".into(),
                ),
            );
        }
        let caps: Option<&Capabilities> = kind.map(BackendKind::capabilities);
        if let (Some(caps), Some(kind)) = (caps, kind) {
            if is_frame && !caps.video {
                let (path, at_key) = f.location();
                self.err(
                    &path,
                    at_key,
                    format!("{kind} cannot annotate video frame field `{name}`"),
                    "video field",
                    Some("use the cvat backend for videos".into()),
                );
            }
            if let Some(t) = f.spec.label_type {
                if !caps.supports_label_type(t) {
                    let supported: Vec<&str> =
                        caps.label_types.iter().map(|t| t.as_str()).collect();
                    self.err(
                        &at("type"),
                        false,
                        format!("{kind} does not support label type `{t}`"),
                        "unsupported",
                        Some(format!("{kind} supports: {}", supported.join(", "))),
                    );
                }
                if t == LabelType::Scalar && !caps.string_scalars && f.spec.classes.is_some() {
                    self.err(&at("classes"), true, format!("{kind} supports only numeric scalar fields; `classes` makes `{name}` a string field"), "string scalar", None);
                }
            }
        }
        if let Some(mt) = &f.spec.mask_targets {
            if f.spec
                .label_type
                .is_some_and(|t| t != LabelType::Segmentation)
            {
                self.err(
                    &at("mask_targets"),
                    true,
                    format!(
                        "`mask_targets` apply only to segmentation fields, and `{name}` is not one"
                    ),
                    "not segmentation",
                    None,
                );
            }
            for k in mt.keys() {
                let ok = k.parse::<u8>().is_ok()
                    || (k.len() == 7
                        && k.starts_with('#')
                        && k[1..].bytes().all(|b| b.is_ascii_hexdigit()));
                if !ok {
                    let mut path = at("mask_targets");
                    path.push(Key(k));
                    self.err(
                        &path,
                        true,
                        format!("mask target `{k}` is not a pixel value"),
                        "bad pixel value",
                        Some("keys are integers 0-255, or `#rrggbb` colours for RGB masks".into()),
                    );
                }
            }
        }
        let mut classes_seen: HashMap<&str, ()> = HashMap::new();
        let field_attrs = f.spec.attributes.as_ref();
        let field_special = field_attrs.map_or((0, 0), special_counts);
        if let Some(a) = field_attrs {
            self.attributes(a, &at("attributes"), kind, f.spec.label_type, (0, 0));
        }
        for (i, c) in f.spec.classes.iter().flatten().enumerate() {
            let mut cpath = at("classes");
            cpath.push(Index(i));
            let names: Vec<&str> = match c {
                ClassEntry::Name(n) => vec![n.as_str()],
                ClassEntry::Group(g) => g.classes.iter().map(String::as_str).collect(),
            };
            for (j, n) in names.iter().enumerate() {
                if classes_seen.insert(n, ()).is_some() {
                    let mut p = cpath.clone();
                    if matches!(c, ClassEntry::Group(_)) {
                        p.extend([Key("classes"), Index(j)]);
                    }
                    self.err(
                        &p,
                        false,
                        format!("class `{n}` is listed twice in `{name}`"),
                        "duplicate",
                        None,
                    );
                }
            }
            if let ClassEntry::Group(g) = c {
                if let Some(a) = &g.attributes {
                    cpath.push(Key("attributes"));
                    self.attributes(a, &cpath, kind, f.spec.label_type, field_special);
                }
            }
        }
    }

    fn attributes(
        &mut self,
        attrs: &AttributesSpec,
        path: &[PathItem<'_>],
        kind: Option<BackendKind>,
        label_type: Option<LabelType>,
        inherited: (usize, usize),
    ) {
        if let Some(kind) = kind {
            let explicit = !matches!(attrs, AttributesSpec::Infer(false));
            if explicit && kind.capabilities().attribute_types.is_empty() {
                self.err(path, true, format!("{kind} does not support attributes"), "unsupported", Some(format!("remove `attributes` (FiftyOne ignores them for {kind}); use the cvat backend to annotate attributes")));
                return;
            }
        }
        let AttributesSpec::Specs(specs) = attrs else {
            return;
        };
        let (mut occluded, mut group_id) = inherited;
        for (name, spec) in specs {
            let mut p = path.to_vec();
            p.push(Key(name));
            let t = spec.attr_type;
            if let Some(kind) = kind {
                if !kind.capabilities().supports_attribute_type(t) {
                    let mut tp = p.clone();
                    tp.push(Key("type"));
                    self.err(
                        &tp,
                        false,
                        format!("{kind} does not support `{t}` attributes"),
                        "unsupported",
                        None,
                    );
                }
            }
            match t {
                AttributeType::Select | AttributeType::Radio
                    if spec.values.as_ref().is_none_or(Vec::is_empty) =>
                {
                    self.err(
                        &p,
                        true,
                        format!("`{t}` attribute `{name}` needs `values`"),
                        "no values",
                        Some(format!(
                            "list the choices: `{name}: {{type: {t}, values: [a, b]}}`"
                        )),
                    );
                }
                AttributeType::Occluded | AttributeType::GroupId => {
                    let counter = if t == AttributeType::Occluded {
                        &mut occluded
                    } else {
                        &mut group_id
                    };
                    *counter += 1;
                    if *counter > 1 {
                        self.err(&p, true, format!("more than one `{t}` attribute applies here"), "second one", Some(format!("a label has one {t} value; keep a single `{t}` attribute per field and class")));
                    }
                    if matches!(
                        label_type,
                        Some(
                            LabelType::Classification
                                | LabelType::Classifications
                                | LabelType::Scalar
                        )
                    ) {
                        self.err(
                            &p,
                            true,
                            format!(
                                "`{t}` attributes need spatial labels, not {}",
                                label_type.map_or("", |l| l.as_str())
                            ),
                            "not spatial",
                            None,
                        );
                    }
                }
                _ => {}
            }
            if let (Some(d), Some(values)) = (&spec.default, &spec.values) {
                if !values.contains(d) {
                    let mut dp = p.clone();
                    dp.push(Key("default"));
                    self.err(
                        &dp,
                        false,
                        format!("default `{d}` of `{name}` is not one of its values"),
                        "not in values",
                        None,
                    );
                }
            }
        }
    }

    fn dest_field(&mut self, fields: &[FieldRef<'_>]) {
        let Some(load) = &self.r.run.load else { return };
        let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        match &load.dest_field {
            Some(DestField::One(dest)) if fields.len() > 1 => {
                self.err(
                    &[Key("load"), Key("dest_field")],
                    false,
                    format!(
                        "`dest_field: {dest}` is ambiguous: the run has {} fields",
                        fields.len()
                    ),
                    "which field?",
                    Some(format!(
                        "map each source field to its destination: `dest_field: {{{}: {dest}}}`",
                        names[0]
                    )),
                );
            }
            Some(DestField::Map(map)) => {
                for (src, dest) in map {
                    if !names.contains(&src.as_str()) {
                        let help = check::suggest(src, names.iter().copied())
                            .map(|s| format!("did you mean `{s}`?"))
                            .unwrap_or_else(|| format!("fields of this run: {}", names.join(", ")));
                        self.err(
                            &[Key("load"), Key("dest_field"), Key(src)],
                            true,
                            format!("`dest_field` names `{src}`, which is not a field of this run"),
                            "not in the schema",
                            Some(help),
                        );
                    }
                    if names.contains(&dest.as_str()) {
                        self.err(
                            &[Key("load"), Key("dest_field"), Key(src)],
                            false,
                            format!("destination `{dest}` is itself a field of this run"),
                            "conflicting destination",
                            None,
                        );
                    }
                }
            }
            _ => {}
        }
    }
}

/// Labels of the run a backend cannot round-trip (see [`crate::dataset::sendable`]).
fn unsendable(
    ds: &crate::dataset::dir::Dataset,
    view: &view::View,
    schema: &crate::schema::ResolvedSchema,
    dataset: &str,
) -> Vec<(Vec<PathItem<'static>>, bool, String, String)> {
    use crate::dataset::sendable::{SHOWN, unsendable_labels};
    let fields = schema.fields.keys().map(crate::dataset::FieldPath::as_str);
    unsendable_labels(ds, view, view.sample_ids.iter().copied(), fields, SHOWN)
        .into_iter()
        .map(|u| {
            (
                vec![Key("label_field")],
                false,
                format!("{u} (dataset `{dataset}`): a backend cannot take it back unchanged"),
                "cannot upload".to_string(),
            )
        })
        .collect()
}

fn special_counts(a: &AttributesSpec) -> (usize, usize) {
    match a {
        AttributesSpec::Specs(s) => (
            s.values()
                .filter(|x| x.attr_type == AttributeType::Occluded)
                .count(),
            s.values()
                .filter(|x| x.attr_type == AttributeType::GroupId)
                .count(),
        ),
        _ => (0, 0),
    }
}
