//! The field normaliser: a run's fields as one list, whether the manifest uses the full form
//! (`label_schema`) or the one-field shorthand. Validation and schema resolution both start
//! here, so neither depends on the other for it.

use super::types::{AnnotationRun, FieldSpec};
use super::yaml::PathItem::{self, Key};
use crate::dataset::FieldPath;

/// One field of a run, as written (full form or shorthand).
pub struct FieldRef<'a> {
    /// The field, parsed from its written name (`frames.<name>` for a frame field).
    pub name: FieldPath,
    pub spec: FieldSpec,
    /// Where the field's spec is in the document (`label_schema.<name>` or the top level).
    pub path: Vec<PathItem<'a>>,
}

impl<'a> FieldRef<'a> {
    /// Where to point at the field itself: its `label_schema` key, or `label_field`'s value.
    pub fn location(&self) -> (Vec<PathItem<'a>>, bool) {
        if self.path.is_empty() {
            (vec![Key("label_field")], false)
        } else {
            (self.path.clone(), true)
        }
    }
}

/// The fields a run annotates, whichever form it uses.
pub fn fields(run: &AnnotationRun) -> Vec<FieldRef<'_>> {
    match (&run.label_schema, &run.label_field) {
        (Some(schema), _) => schema
            .iter()
            .map(|(name, spec)| FieldRef {
                name: FieldPath::parse(name),
                spec: spec.clone(),
                path: vec![Key("label_schema"), Key(name)],
            })
            .collect(),
        (None, Some(name)) => vec![FieldRef {
            name: FieldPath::parse(name),
            spec: FieldSpec {
                label_type: run.label_type,
                classes: run.classes.clone(),
                attributes: run.attributes.clone(),
                mask_targets: run.mask_targets.clone(),
                allow_additions: run.allow_additions,
                allow_deletions: run.allow_deletions,
                allow_label_edits: run.allow_label_edits,
                allow_index_edits: run.allow_index_edits,
                allow_spatial_edits: run.allow_spatial_edits,
            },
            path: Vec::new(),
        }],
        (None, None) => Vec::new(),
    }
}
