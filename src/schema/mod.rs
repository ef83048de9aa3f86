//! Label schemas resolved against a dataset: every field's type, classes, attributes and
//! restrictions made explicit, so plans, records and backends never guess.

use crate::dataset::FieldPath;
use crate::manifest::{AttributeType, LabelType, Scalar};
pub mod diff;
pub mod resolve;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// The schemas recorded for runs, by (dataset, key).
pub type RecordedSchemas = std::collections::HashMap<(String, String), Recorded>;

/// What a run record says of its schema.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub schema: ResolvedSchema,
    /// See [`crate::state::RunRecord::resolved_from`].
    pub resolved_from: Option<String>,
}

/// The resolved schema of one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResolvedSchema {
    /// By field (sample or frame field), in the manifest's order.
    pub fields: IndexMap<FieldPath, ResolvedField>,
}

/// One field, fully resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolvedField {
    #[serde(rename = "type")]
    pub label_type: LabelType,
    /// Whether the field already exists in the dataset.
    pub existing: bool,
    pub classes: Vec<String>,
    /// Attributes every label of the field has.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub attributes: IndexMap<String, ResolvedAttribute>,
    /// Attributes only labels of these classes have (class → attributes).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub class_attributes: IndexMap<String, IndexMap<String, ResolvedAttribute>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask_targets: Option<IndexMap<String, String>>,
    pub restrictions: Restrictions,
}

impl ResolvedField {
    /// A field of `label_type` with these classes, no attributes and no restrictions.
    pub fn new(label_type: LabelType, classes: Vec<String>) -> Self {
        ResolvedField {
            label_type,
            existing: true,
            classes,
            attributes: IndexMap::new(),
            class_attributes: IndexMap::new(),
            mask_targets: None,
            restrictions: Restrictions::default(),
        }
    }
}

/// One attribute, fully resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolvedAttribute {
    #[serde(rename = "type")]
    pub attr_type: AttributeType,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Scalar>,
    pub read_only: bool,
    pub mutable: bool,
}

/// What annotators may change (FiftyOne's `allow_*`); all default to true.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restrictions {
    pub allow_additions: bool,
    pub allow_deletions: bool,
    pub allow_label_edits: bool,
    pub allow_index_edits: bool,
    pub allow_spatial_edits: bool,
}

impl Default for Restrictions {
    fn default() -> Self {
        Restrictions {
            allow_additions: true,
            allow_deletions: true,
            allow_label_edits: true,
            allow_index_edits: true,
            allow_spatial_edits: true,
        }
    }
}
