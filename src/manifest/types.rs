//! The manifest's typed form. These types are the single source of the JSON Schema
//! (`schema/manifest.schema.json`) and of the structural checks `validate` runs.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One desired annotation run (`kind: AnnotationRun`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "annoform AnnotationRun manifest")]
pub struct AnnotationRun {
    /// Manifest format version.
    #[serde(rename = "apiVersion")]
    pub api_version: ApiVersion,
    /// Document kind.
    pub kind: Kind,
    /// The run's key (FiftyOne's `anno_key`), unique per dataset.
    pub key: RunKey,
    /// A dataset declared as `[datasets.<name>]` in annoform.toml.
    pub dataset: String,
    /// View stages applied in order to select the samples (and labels) of the run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub view: Vec<ViewStage>,
    /// `cvat`, `labelstudio`, `darwin` or a backend named in annoform.toml; default: the
    /// workspace's `default_backend`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// Backend-specific settings (validated per backend).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    pub backend_config: serde_json::Map<String, serde_json::Value>,
    /// Print the editor's URL after apply (`apply --open` opens it), as FiftyOne's
    /// `launch_editor` opens the editor after uploading.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub launch_editor: bool,
    /// Sample field holding the media path (default `filepath`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_field: Option<String>,
    /// The fields to annotate (FiftyOne's `label_schema`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_schema: Option<IndexMap<String, FieldSpec>>,
    /// Shorthand for a one-field run: the field to annotate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_field: Option<String>,
    /// Shorthand: the field's label type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_type: Option<LabelType>,
    /// Shorthand: the field's classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<ClassEntry>>,
    /// Shorthand: the field's attributes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<AttributesSpec>,
    /// Shorthand: the field's mask targets (pixel value → class).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask_targets: Option<IndexMap<String, String>>,
    /// Shorthand: whether annotators may add labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_additions: Option<bool>,
    /// Shorthand: whether annotators may delete labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_deletions: Option<bool>,
    /// Shorthand: whether annotators may change a label's class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_label_edits: Option<bool>,
    /// Shorthand: whether annotators may change a track's index (video).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_index_edits: Option<bool>,
    /// Shorthand: whether annotators may change geometry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_spatial_edits: Option<bool>,
    /// When and how annotations are merged back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadSpec>,
    /// Lifecycle rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,
}

/// The only manifest format version so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ApiVersion {
    #[serde(rename = "annoform/v1")]
    V1,
}

/// The only document kind so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Kind {
    AnnotationRun,
}

/// A run key: `[A-Za-z0-9_-]{1,64}`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(transparent)]
pub struct RunKey(#[schemars(regex(pattern = r"^[A-Za-z0-9_-]{1,64}$"))] pub String);

impl std::fmt::Display for RunKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One view stage; stages apply in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ViewStage {
    /// Samples having any of these tags, or FiftyOne's `{tags, bool, all}`.
    MatchTags(MatchTags),
    /// Samples whose field is set (non-null), or FiftyOne's `{field, bool}`.
    Exists(Exists),
    /// Keep only the labels of `field` matching `where`; with `only_matches` (default true)
    /// samples left with no label are dropped.
    FilterLabels(FilterLabels),
    /// Samples having at least one label in `fields` that matches `where`.
    MatchLabels(MatchLabels),
    /// Samples with these ids, in this order.
    Select(OneOrMany<String>),
    /// Sort by a field name or by `{expr, reverse}`.
    SortBy(SortBy),
    /// Skip the first N samples.
    Skip(u64),
    /// Keep at most N samples.
    Limit(u64),
    /// A deterministic random subset of `size` samples.
    Take(Take),
}

/// `match_tags` arguments: a tag or a list of tags (samples with any of them), or FiftyOne's
/// `MatchTags(tags, bool, all)` arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum MatchTags {
    /// Samples with any of these tags.
    Tags(OneOrMany<String>),
    /// FiftyOne's arguments.
    With(MatchTagsWith),
}

/// `match_tags: {tags, bool, all}`, as FiftyOne's `match_tags()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchTagsWith {
    /// The tags.
    pub tags: OneOrMany<String>,
    /// `false`: the samples that do NOT match (default true).
    #[serde(default = "yes")]
    pub bool: bool,
    /// Match samples having all of the tags rather than any (default false).
    #[serde(default)]
    pub all: bool,
}

fn yes() -> bool {
    true
}

impl MatchTags {
    /// The tags.
    pub fn tags(&self) -> &[String] {
        match self {
            MatchTags::Tags(t) | MatchTags::With(MatchTagsWith { tags: t, .. }) => t.as_slice(),
        }
    }

    /// Whether matching samples are kept (`bool`).
    pub fn holds(&self) -> bool {
        !matches!(self, MatchTags::With(w) if !w.bool)
    }

    /// Whether all of the tags are needed (`all`).
    pub fn all(&self) -> bool {
        matches!(self, MatchTags::With(w) if w.all)
    }

    /// Whether a sample whose tags are those for which `has` holds is selected, as FiftyOne
    /// decides it (`$in`, `$all`, `$nin`, `$not: {$all}`; `$all` of no tags matches nothing).
    pub fn selects(&self, has: impl Fn(&str) -> bool) -> bool {
        let tags = self.tags();
        let matched = if self.all() {
            !tags.is_empty() && tags.iter().all(|t| has(t))
        } else {
            tags.iter().any(|t| has(t))
        };
        matched == self.holds()
    }
}

impl From<OneOrMany<String>> for MatchTags {
    fn from(tags: OneOrMany<String>) -> Self {
        MatchTags::Tags(tags)
    }
}

/// `exists` arguments: a field (samples where it is set), or FiftyOne's `Exists(field, bool)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Exists {
    /// Samples whose field is set (not missing, not null).
    Field(String),
    /// FiftyOne's arguments.
    With(ExistsWith),
}

/// `exists: {field, bool}`, as FiftyOne's `exists()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExistsWith {
    /// The field.
    pub field: String,
    /// `false`: the samples whose field is missing or null (default true).
    #[serde(default = "yes")]
    pub bool: bool,
}

impl Exists {
    /// The field (an expression over the sample, or `frames.<name>`).
    pub fn field(&self) -> &str {
        match self {
            Exists::Field(f) | Exists::With(ExistsWith { field: f, .. }) => f,
        }
    }

    /// Whether samples where the field is set are kept (`bool`).
    pub fn holds(&self) -> bool {
        !matches!(self, Exists::With(w) if !w.bool)
    }
}

impl From<&str> for Exists {
    fn from(field: &str) -> Self {
        Exists::Field(field.to_owned())
    }
}

/// A value written either alone or as a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    /// The values as a slice, whichever way they were written.
    pub fn as_slice(&self) -> &[T] {
        match self {
            OneOrMany::One(v) => std::slice::from_ref(v),
            OneOrMany::Many(v) => v,
        }
    }
}

/// `filter_labels` stage arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterLabels {
    /// The label field to filter.
    pub field: String,
    /// Expression evaluated on each label, e.g. `confidence > 0.8 && label == 'car'`.
    #[serde(rename = "where")]
    pub where_: String,
    /// Drop samples left without matching labels (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_matches: Option<bool>,
}

/// `match_labels` stage arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchLabels {
    /// The label fields to look in.
    pub fields: OneOrMany<String>,
    /// Expression evaluated on each label.
    #[serde(rename = "where")]
    pub where_: String,
}

/// `sort_by` stage arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum SortBy {
    /// A sample field name (ascending).
    Field(String),
    /// An expression evaluated on each sample.
    Expr(SortExpr),
}

/// `sort_by: {expr, reverse}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SortExpr {
    /// Expression evaluated on each sample, e.g. `count(predictions)`.
    pub expr: String,
    /// Descending order.
    #[serde(default)]
    pub reverse: bool,
}

/// `take` stage arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Take {
    /// How many samples to take.
    pub size: u64,
    /// Random seed (default 0); the same seed always takes the same samples.
    #[serde(default)]
    pub seed: u64,
}

/// The label types a field can be annotated as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LabelType {
    Classification,
    Classifications,
    Detections,
    Instances,
    Polylines,
    Polygons,
    Keypoints,
    Segmentation,
    Scalar,
}

impl LabelType {
    /// Every label type, in documentation order.
    pub const ALL: [LabelType; 9] = [
        LabelType::Classification,
        LabelType::Classifications,
        LabelType::Detections,
        LabelType::Instances,
        LabelType::Polylines,
        LabelType::Polygons,
        LabelType::Keypoints,
        LabelType::Segmentation,
        LabelType::Scalar,
    ];

    /// The manifest spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            LabelType::Classification => "classification",
            LabelType::Classifications => "classifications",
            LabelType::Detections => "detections",
            LabelType::Instances => "instances",
            LabelType::Polylines => "polylines",
            LabelType::Polygons => "polygons",
            LabelType::Keypoints => "keypoints",
            LabelType::Segmentation => "segmentation",
            LabelType::Scalar => "scalar",
        }
    }
}

impl std::fmt::Display for LabelType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one field is annotated (one entry of `label_schema`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// Label type; inferred for existing fields.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub label_type: Option<LabelType>,
    /// Classes; for an existing field defaults to the dataset's classes or observed labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<ClassEntry>>,
    /// Attributes: `true` (infer), `false` (none), a list of names, or a map of specs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<AttributesSpec>,
    /// Pixel value → class, for segmentation fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask_targets: Option<IndexMap<String, String>>,
    /// Whether annotators may add labels (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_additions: Option<bool>,
    /// Whether annotators may delete labels (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_deletions: Option<bool>,
    /// Whether annotators may change a label's class (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_label_edits: Option<bool>,
    /// Whether annotators may change a track's index (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_index_edits: Option<bool>,
    /// Whether annotators may change geometry (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_spatial_edits: Option<bool>,
}

/// A class name, or a group of classes sharing class-specific attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ClassEntry {
    /// One class.
    Name(String),
    /// Classes with attributes of their own.
    Group(ClassGroup),
}

/// `{classes: [...], attributes: {...}}` inside a `classes` list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassGroup {
    /// The classes of the group.
    pub classes: Vec<String>,
    /// Attributes that only these classes have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<AttributesSpec>,
}

/// `attributes`: `true`, `false`, a list of names or a map of specs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum AttributesSpec {
    /// `true`: every scalar attribute observed; `false`: none.
    Infer(bool),
    /// Attribute names; their specs are inferred.
    Names(Vec<String>),
    /// Attribute name → spec.
    Specs(IndexMap<String, AttributeSpec>),
}

/// One attribute's spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttributeSpec {
    /// The widget annotators see.
    #[serde(rename = "type")]
    pub attr_type: AttributeType,
    /// Allowed values (required for `select` and `radio`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<Scalar>>,
    /// Default value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Scalar>,
    /// Shown to annotators but never merged back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// Video: whether the value may change between frames of a track (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutable: Option<bool>,
}

/// Attribute widgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttributeType {
    Text,
    Select,
    Radio,
    Checkbox,
    Occluded,
    GroupId,
}

impl AttributeType {
    /// Every attribute type, in documentation order.
    pub const ALL: [AttributeType; 6] = [
        AttributeType::Text,
        AttributeType::Select,
        AttributeType::Radio,
        AttributeType::Checkbox,
        AttributeType::Occluded,
        AttributeType::GroupId,
    ];

    /// The manifest spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AttributeType::Text => "text",
            AttributeType::Select => "select",
            AttributeType::Radio => "radio",
            AttributeType::Checkbox => "checkbox",
            AttributeType::Occluded => "occluded",
            AttributeType::GroupId => "group_id",
        }
    }
}

impl std::fmt::Display for AttributeType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scalar attribute value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Float(x) => write!(f, "{x}"),
            Scalar::Str(s) => f.write_str(s),
        }
    }
}

/// `load`: when and how annotations are merged back into the dataset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadSpec {
    /// When to merge (default `complete`).
    #[serde(default)]
    pub when: LoadWhen,
    /// Write merged results to another field: a field name (one-field runs) or a map
    /// source field → destination field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest_field: Option<DestField>,
    /// What to do with labels of a type or class outside the schema (default `keep`).
    #[serde(default)]
    pub unexpected: Unexpected,
    /// Delete the backend objects after a successful merge (default false).
    #[serde(default)]
    pub cleanup: bool,
    /// A label changed in the dataset since upload and in the backend (default `error`).
    #[serde(default)]
    pub conflicts: Conflicts,
}

/// When annotations are merged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LoadWhen {
    /// Once every backend task is complete.
    #[default]
    Complete,
    /// On every apply, whatever the tasks' status.
    Always,
    /// Never (merge only by changing this).
    Never,
}

/// `dest_field` forms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum DestField {
    /// The destination of a one-field run.
    One(String),
    /// Source field → destination field.
    Map(IndexMap<String, String>),
}

/// Policy for unexpected labels: those of a class or a type outside the run's schema.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unexpected {
    /// Merge them: a class outside the schema into the run's field, another label type
    /// into a field named after that type (as FiftyOne's `keep`).
    #[default]
    Keep,
    /// Leave them out of the dataset; the plan counts and lists them.
    Ignore,
    /// Fail the plan, naming each one.
    Error,
    /// List them in the plan as rejected, without merging.
    Report,
    /// Leave them out of the dataset and write them to
    /// `.annoform/unexpected/<dataset>/<key>.json` when the merge is applied.
    Return,
}

impl Unexpected {
    /// The manifest spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Unexpected::Keep => "keep",
            Unexpected::Ignore => "ignore",
            Unexpected::Error => "error",
            Unexpected::Report => "report",
            Unexpected::Return => "return",
        }
    }
}

/// Policy for labels changed both in the dataset and in the backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Conflicts {
    /// Fail the plan, naming them.
    #[default]
    Error,
    /// The backend's version wins.
    Backend,
    /// The dataset's version wins.
    Dataset,
}

/// `lifecycle` rules.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Lifecycle {
    /// Refuse to plan a destroy of this run.
    #[serde(default)]
    pub prevent_destroy: bool,
}
