//! How a run's label schema changes between its record and its manifest, field by field: the
//! data a plan carries for `~ update` and `-/+ replace` (renderers write the words).

use super::{ResolvedAttribute, ResolvedField, ResolvedSchema};
use crate::dataset::FieldPath;
use crate::manifest::LabelType;
use serde::{Deserialize, Serialize};
use similar::{ChangeTag, capture_diff_slices};

/// What changes in one field of the schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: FieldPath,
    pub change: FieldChangeKind,
    /// The label type before and after, when it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_type: Option<[LabelType; 2]>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes_added: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes_removed: Vec<String>,
    /// Attributes by name; a class's own attribute is `name (class C)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes_added: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes_removed: Vec<String>,
    /// Attributes whose type, values, default or flags change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes_changed: Vec<String>,
    /// Whether the edit restrictions (`allow_*`) or mask targets change.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restrictions_changed: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mask_targets_changed: bool,
}

/// Whether a field is new to the run, gone from it, or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldChangeKind {
    Added,
    Removed,
    Changed,
}

/// The backend's own rendering of the schema (Label Studio's labeling config, CVAT's labels),
/// before and after: what the backend is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rendered {
    /// What it is, e.g. `labeling config`.
    pub what: String,
    pub before: String,
    pub after: String,
}

/// The schema change of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaChange {
    /// The fields that change, in the manifest's order, removed fields last.
    pub fields: Vec<FieldChange>,
    /// The backend's rendering before and after, when the backend has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendered: Option<Rendered>,
}

/// The field-by-field change from `old` to `new`; `None` when nothing the backend sees
/// changes (a field's `existing` flag alone is not a change).
pub fn diff(old: &ResolvedSchema, new: &ResolvedSchema) -> Option<SchemaChange> {
    let mut fields = Vec::new();
    for (name, n) in &new.fields {
        match old.fields.get(name) {
            None => fields.push(whole(name, n, FieldChangeKind::Added)),
            Some(o) => fields.extend(field_diff(name, o, n)),
        }
    }
    for (name, o) in &old.fields {
        if !new.fields.contains_key(name) {
            fields.push(whole(name, o, FieldChangeKind::Removed));
        }
    }
    (!fields.is_empty()).then_some(SchemaChange {
        fields,
        rendered: None,
    })
}

/// A field added or removed as a whole: its classes and attributes are listed as such.
fn whole(name: &FieldPath, f: &ResolvedField, change: FieldChangeKind) -> FieldChange {
    let attrs = attribute_names(f);
    let (added, removed) = match change {
        FieldChangeKind::Removed => (Vec::new(), f.classes.clone()),
        _ => (f.classes.clone(), Vec::new()),
    };
    let (attrs_added, attrs_removed) = match change {
        FieldChangeKind::Removed => (Vec::new(), attrs),
        _ => (attrs, Vec::new()),
    };
    FieldChange {
        field: name.clone(),
        change,
        label_type: None,
        classes_added: added,
        classes_removed: removed,
        attributes_added: attrs_added,
        attributes_removed: attrs_removed,
        attributes_changed: Vec::new(),
        restrictions_changed: false,
        mask_targets_changed: false,
    }
}

fn field_diff(name: &FieldPath, o: &ResolvedField, n: &ResolvedField) -> Option<FieldChange> {
    let (classes_added, classes_removed) = list_diff(&o.classes, &n.classes);
    let (old_attrs, new_attrs) = (attributes(o), attributes(n));
    let mut attributes_added = Vec::new();
    let mut attributes_changed = Vec::new();
    for (a, na) in &new_attrs {
        match old_attrs.iter().find(|(b, _)| b == a) {
            None => attributes_added.push(a.clone()),
            Some((_, oa)) if oa != na => attributes_changed.push(a.clone()),
            Some(_) => {}
        }
    }
    let attributes_removed: Vec<String> = old_attrs
        .iter()
        .filter(|(a, _)| !new_attrs.iter().any(|(b, _)| b == a))
        .map(|(a, _)| a.clone())
        .collect();
    let change = FieldChange {
        field: name.clone(),
        change: FieldChangeKind::Changed,
        label_type: (o.label_type != n.label_type).then_some([o.label_type, n.label_type]),
        classes_added,
        classes_removed,
        attributes_added,
        attributes_removed,
        attributes_changed,
        restrictions_changed: o.restrictions != n.restrictions,
        mask_targets_changed: o.mask_targets != n.mask_targets,
    };
    let unchanged = change.label_type.is_none()
        && change.classes_added.is_empty()
        && change.classes_removed.is_empty()
        && change.attributes_added.is_empty()
        && change.attributes_removed.is_empty()
        && change.attributes_changed.is_empty()
        && !change.restrictions_changed
        && !change.mask_targets_changed;
    (!unchanged).then_some(change)
}

/// What `new` adds to `old` and what it drops, each in its list's order.
fn list_diff(old: &[String], new: &[String]) -> (Vec<String>, Vec<String>) {
    let (mut added, mut removed) = (Vec::new(), Vec::new());
    for op in capture_diff_slices(similar::Algorithm::Myers, old, new) {
        for change in op.iter_changes(old, new) {
            match change.tag() {
                ChangeTag::Insert => added.push(change.value().clone()),
                ChangeTag::Delete => removed.push(change.value().clone()),
                ChangeTag::Equal => {}
            }
        }
    }
    // A class that only moved is neither added nor removed.
    let moved: Vec<String> = added
        .iter()
        .filter(|c| removed.contains(c))
        .cloned()
        .collect();
    added.retain(|c| !moved.contains(c));
    removed.retain(|c| !moved.contains(c));
    (added, removed)
}

/// Every attribute of a field with its name as shown: `name`, or `name (class C)`.
fn attributes(f: &ResolvedField) -> Vec<(String, &ResolvedAttribute)> {
    let own = f.attributes.iter().map(|(a, v)| (a.clone(), v));
    let per_class = f.class_attributes.iter().flat_map(|(class, attrs)| {
        attrs
            .iter()
            .map(move |(a, v)| (format!("{a} (class {class})"), v))
    });
    own.chain(per_class).collect()
}

fn attribute_names(f: &ResolvedField) -> Vec<String> {
    attributes(f).into_iter().map(|(a, _)| a).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::AttributeType;
    use crate::schema::ResolvedAttribute;

    fn schema(fields: &[(&str, ResolvedField)]) -> ResolvedSchema {
        ResolvedSchema {
            fields: fields
                .iter()
                .map(|(n, f)| (FieldPath::sample(n), f.clone()))
                .collect(),
        }
    }

    fn det(classes: &[&str]) -> ResolvedField {
        ResolvedField::new(
            LabelType::Detections,
            classes.iter().map(|c| c.to_string()).collect(),
        )
    }

    #[test]
    fn classes_and_attributes_added_and_removed_per_field() {
        let old = schema(&[("gt", det(&["car", "bike", "person"]))]);
        let mut gt = det(&["person", "car", "truck"]);
        gt.attributes.insert(
            "occluded".into(),
            ResolvedAttribute {
                attr_type: AttributeType::Checkbox,
                values: Vec::new(),
                default: None,
                read_only: false,
                mutable: true,
            },
        );
        let new = schema(&[
            ("gt", gt),
            (
                "scene",
                ResolvedField::new(LabelType::Classification, vec!["day".into()]),
            ),
        ]);
        let change = diff(&old, &new).unwrap();
        assert_eq!(change.fields.len(), 2);
        let gt = &change.fields[0];
        assert_eq!(gt.change, FieldChangeKind::Changed);
        assert_eq!(gt.classes_added, ["truck"]);
        assert_eq!(gt.classes_removed, ["bike"]);
        assert_eq!(gt.attributes_added, ["occluded"]);
        let scene = &change.fields[1];
        assert_eq!(scene.change, FieldChangeKind::Added);
        assert_eq!(scene.classes_added, ["day"]);
        assert_eq!(
            diff(&new, &old).unwrap().fields[1].change,
            FieldChangeKind::Removed
        );
    }

    #[test]
    fn a_field_that_now_exists_is_no_change() {
        let old = schema(&[("gt", det(&["car"]))]);
        let mut f = det(&["car"]);
        f.existing = false;
        assert_eq!(diff(&old, &schema(&[("gt", f)])), None);
    }
}
