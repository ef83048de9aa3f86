//! Resolve a run's label schema (full form or shorthand) against its dataset: infer types,
//! classes and attributes of existing fields the way FiftyOne's `annotate()` does.

use super::{Recorded, ResolvedAttribute, ResolvedField, ResolvedSchema, Restrictions};
use crate::backend::BackendKind;
use crate::dataset::dir::Dataset;
use crate::dataset::ejson::ObjectId;
use crate::dataset::view::View;
use crate::dataset::{FieldPath, Level};
use crate::manifest::fields::{FieldRef, fields};
use crate::manifest::{
    AnnotationRun, AttributeSpec, AttributeType, AttributesSpec, ClassEntry, LabelType, Scalar,
};
use indexmap::IndexMap;
use serde_json::Value;
use std::collections::BTreeSet;

/// A field whose schema cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {message}")]
pub struct SchemaError {
    pub field: FieldPath,
    pub message: String,
}

/// What resolving `run` to `schema` depends on, as one digest (see
/// [`crate::state::RunRecord::resolved_from`]): the run, the backend kind, the dataset's
/// content ([`Dataset::content_digest`]) and the schema; annoform's version too, so that
/// another version resolves again.
pub fn inputs_digest(
    run: &AnnotationRun,
    kind: BackendKind,
    dataset: &str,
    schema: &ResolvedSchema,
) -> String {
    crate::merge::digest(&serde_json::json!({
        "annoform": env!("CARGO_PKG_VERSION"),
        "kind": kind.to_string(),
        "run": run,
        "dataset": dataset,
        "schema": schema,
    }))
}

/// The recorded schema, when the record's [`Recorded::resolved_from`] says that `run` and
/// `ds` resolve to it with every label sendable (nothing it depends on changed since).
pub fn unchanged<'r>(
    run: &AnnotationRun,
    ds: &Dataset,
    kind: BackendKind,
    recorded: Option<&'r Recorded>,
) -> Option<&'r ResolvedSchema> {
    let r = recorded?;
    let from = r.resolved_from.as_deref()?;
    (inputs_digest(run, kind, &ds.content_digest(), &r.schema) == from).then_some(&r.schema)
}

/// Resolve every field of `run` against `ds` (labels observed through `view`).
///
/// `recorded` is the schema recorded when the run was created: what the manifest leaves to
/// inference comes from it rather than from the dataset as it is now, so a run stays
/// plannable when its field is deleted or its labels change, and only an edit of the
/// manifest changes its schema.
pub fn resolve(
    run: &AnnotationRun,
    ds: &Dataset,
    view: &View,
    backend: BackendKind,
    recorded: Option<&ResolvedSchema>,
) -> Result<ResolvedSchema, Vec<SchemaError>> {
    let mut out = ResolvedSchema::default();
    let mut errors = Vec::new();
    for f in fields(run) {
        let rec = recorded.and_then(|s| s.fields.get(&f.name));
        match resolve_field(&f, ds, view, backend, rec) {
            Ok(r) => {
                out.fields.insert(f.name.clone(), r);
            }
            Err(message) => errors.push(SchemaError {
                field: f.name.clone(),
                message,
            }),
        }
    }
    if errors.is_empty() {
        if backend == BackendKind::Cvat {
            // CVAT's `occluded_attr`/`group_id_attr` name the attributes that hold its
            // occluded flag and group id on every object field.
            // Settings that do not fit are validate's to report, with their span.
            use crate::backend::settings::Settings;
            if let Ok(settings) =
                crate::backend::capabilities::CvatConfig::read(&run.backend_config)
            {
                out = crate::backend::cvat::client::effective_schema(&out, &settings);
            }
        }
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The label type a FiftyOne label class (or scalar field) is annotated as.
pub fn label_type_of_class(cls: &str) -> Option<LabelType> {
    Some(match cls {
        "Classification" => LabelType::Classification,
        "Classifications" => LabelType::Classifications,
        "Detections" => LabelType::Detections,
        "Polylines" => LabelType::Polylines,
        "Keypoints" => LabelType::Keypoints,
        "Segmentation" => LabelType::Segmentation,
        "IntField" | "FloatField" | "StringField" | "BooleanField" => LabelType::Scalar,
        _ => return None,
    })
}

/// Whether a field holding `existing` labels may be annotated as `wanted`.
fn compatible(existing: LabelType, wanted: LabelType) -> bool {
    existing == wanted
        || matches!(
            (existing, wanted),
            (LabelType::Detections, LabelType::Instances)
                | (LabelType::Polylines, LabelType::Polygons)
        )
}

fn resolve_field(
    f: &FieldRef<'_>,
    ds: &Dataset,
    view: &View,
    backend: BackendKind,
    rec: Option<&ResolvedField>,
) -> Result<ResolvedField, String> {
    let existing = ds.field_exists(&f.name);
    let observed_type = if existing {
        observed_type(ds, &f.name)
    } else {
        None
    };
    let label_type = match (f.spec.label_type, observed_type) {
        (Some(t), Some(o)) if !compatible(o, t) => {
            return Err(format!("the dataset holds {o} labels here, not {t}"));
        }
        (Some(t), _) => t,
        (None, Some(o)) => o,
        (None, None) if rec.is_some() => rec.map(|r| r.label_type).unwrap_or(LabelType::Scalar),
        (None, None) if existing => {
            return Err("cannot infer its label type from the dataset; give `type`".into());
        }
        (None, None) => return Err("is a new field and needs `type`".into()),
    };
    let mut labels = if existing {
        observed_labels(ds, view, &f.name)
    } else {
        Vec::new()
    };
    // Detections and polylines fields may hold labels of two types: the run annotates one,
    // and only its labels.
    let seen = subtypes(label_type, &labels);
    let narrows = |t: LabelType| narrowing(t) && seen.len() > 1;
    let label_type = match (f.spec.label_type, rec) {
        (Some(t), _) if narrowing(t) && !seen.is_empty() && !seen.contains(&t) => {
            let held: Vec<&str> = seen.iter().map(|t| t.as_str()).collect();
            return Err(format!(
                "the dataset holds {} labels here, not {t}",
                held.join(" and ")
            ));
        }
        (Some(t), _) => t,
        (None, Some(r)) if compatible(label_type, r.label_type) => r.label_type,
        // Unlike FiftyOne (which picks detections or polygons and leaves the other labels
        // out), a field whose type is not given is annotated whole, as its container type.
        (None, _) => label_type,
    };
    if f.spec.label_type.is_some() && narrows(label_type) {
        labels.retain(|l| label_subtype(label_type, l) == Some(label_type));
    }
    // The record speaks for a field of the type it recorded; a manifest that changed the type
    // starts afresh.
    let rec = rec.filter(|r| r.label_type == label_type);
    // (A type given with them is refused by validation already.)
    if f.spec.mask_targets.is_some()
        && f.spec.label_type.is_none()
        && label_type != LabelType::Segmentation
    {
        return Err(format!(
            "`mask_targets` apply only to segmentation fields, and this field holds {label_type}"
        ));
    }
    // (`classes` on such a field is refused by validation already.)
    if label_type == LabelType::Scalar
        && !backend.capabilities().string_scalars
        && existing
        && f.spec.classes.is_none()
    {
        let other: BTreeSet<&str> = observed_scalars(ds, view, &f.name)
            .iter()
            .filter_map(|v| match v {
                Value::Number(_) => None,
                Value::Bool(_) => Some("booleans"),
                Value::String(_) => Some("strings"),
                _ => Some("non-scalar values"),
            })
            .collect();
        if !other.is_empty() {
            let held: Vec<&str> = other.into_iter().collect();
            return Err(format!(
                "{backend} annotates only numeric scalar fields, and the dataset holds {} here",
                held.join(" and ")
            ));
        }
    }

    let mask_targets = f
        .spec
        .mask_targets
        .clone()
        .or_else(|| rec.and_then(|r| r.mask_targets.clone()))
        .or_else(|| {
            (label_type == LabelType::Segmentation)
                .then(|| {
                    ds.mask_targets(f.name.as_str())
                        .map(|m| m.into_iter().collect())
                })
                .flatten()
        });
    let observed = observed_classes(&labels);
    let classes = match &f.spec.classes {
        Some(entries) => {
            let classes: Vec<String> = entries
                .iter()
                .flat_map(|e| match e {
                    ClassEntry::Name(n) => vec![n.clone()],
                    ClassEntry::Group(g) => g.classes.clone(),
                })
                .collect();
            let outside: Vec<String> = observed
                .iter()
                .filter(|c| !classes.contains(c))
                .map(|c| format!("`{c}`"))
                .collect();
            // Once the run exists, labels merged back from the backend (a class outside the
            // schema kept by `load.unexpected: keep`) are the run's own work, not a reason to
            // refuse planning it.
            if rec.is_none() && !outside.is_empty() && !matches!(label_type, LabelType::Scalar) {
                return Err(format!(
                    "labels in the run have classes that are not in its `classes`: {} (add them to `classes`, or leave them out of the run with a `filter_labels` view stage)",
                    outside.join(", ")
                ));
            }
            classes
        }
        None => match label_type {
            LabelType::Scalar => Vec::new(),
            LabelType::Segmentation => mask_targets
                .as_ref()
                .map(|m| m.values().cloned().collect())
                .unwrap_or_default(),
            _ => {
                // The declared classes (the record's, or the dataset's `classes` /
                // `default_classes`), then every observed class they miss: an existing label
                // whose class the backend does not know could not be uploaded.
                let declared = match rec {
                    Some(r) => r.classes.clone(),
                    None => ds
                        .classes(f.name.as_str())
                        .or_else(|| ds.default_classes())
                        .unwrap_or_default(),
                };
                let mut classes = declared;
                // A recorded run keeps the classes it was created with: labels merged back
                // since (classes kept by `load.unexpected: keep`) do not change its schema.
                if rec.is_none() {
                    for c in observed {
                        if !classes.contains(&c) {
                            classes.push(c);
                        }
                    }
                }
                classes
            }
        },
    };
    if classes.is_empty() && !matches!(label_type, LabelType::Scalar | LabelType::Segmentation) {
        return Err(
            "has no classes: give `classes` (there are no existing labels to infer them from)"
                .into(),
        );
    }

    let supports_attributes = !backend.capabilities().attribute_types.is_empty();
    let attributes = match &f.spec.attributes {
        _ if label_type == LabelType::Scalar => IndexMap::new(),
        None if !supports_attributes => IndexMap::new(),
        None => match rec {
            Some(r) => r.attributes.clone(),
            None => infer_attributes(&labels, backend),
        },
        Some(spec) => attributes_from(spec, &labels, backend),
    };
    for (name, a) in &attributes {
        if a.values.is_empty()
            || !matches!(a.attr_type, AttributeType::Select | AttributeType::Radio)
        {
            continue;
        }
        let outside: BTreeSet<String> = labels
            .iter()
            .filter_map(|l| l.get(name))
            .filter(|v| !v.is_null() && !a.values.iter().any(|x| scalar_matches(x, v)))
            .map(|v| v.as_str().map_or_else(|| v.to_string(), String::from))
            .collect();
        if !outside.is_empty() {
            let list: Vec<String> = outside.into_iter().map(|v| format!("`{v}`")).collect();
            return Err(format!(
                "attribute `{name}` has values in the dataset that are not in its `values`: {}",
                list.join(", ")
            ));
        }
    }
    let mut class_attributes = IndexMap::new();
    for e in f.spec.classes.iter().flatten() {
        if let ClassEntry::Group(g) = e {
            if let Some(spec) = &g.attributes {
                let attrs = attributes_from(spec, &labels, backend);
                for c in &g.classes {
                    class_attributes.insert(c.clone(), attrs.clone());
                }
            }
        }
    }
    let d = Restrictions::default();
    Ok(ResolvedField {
        label_type,
        existing,
        classes,
        attributes,
        class_attributes,
        mask_targets,
        restrictions: Restrictions {
            allow_additions: f.spec.allow_additions.unwrap_or(d.allow_additions),
            allow_deletions: f.spec.allow_deletions.unwrap_or(d.allow_deletions),
            allow_label_edits: f.spec.allow_label_edits.unwrap_or(d.allow_label_edits),
            allow_index_edits: f.spec.allow_index_edits.unwrap_or(d.allow_index_edits),
            allow_spatial_edits: f.spec.allow_spatial_edits.unwrap_or(d.allow_spatial_edits),
        },
    })
}

/// The distinct classes of `labels`, sorted (FiftyOne's `distinct`).
fn observed_classes(labels: &[serde_json::Map<String, Value>]) -> Vec<String> {
    labels
        .iter()
        .filter_map(|l| l.get("label").and_then(Value::as_str).map(String::from))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn scalar_matches(s: &Scalar, v: &Value) -> bool {
    match (s, v) {
        (Scalar::Str(a), Value::String(b)) => a == b,
        (Scalar::Bool(a), Value::Bool(b)) => a == b,
        (Scalar::Int(a), Value::Number(b)) => b.as_i64() == Some(*a),
        (Scalar::Float(a), Value::Number(b)) => b.as_f64() == Some(*a),
        _ => false,
    }
}

fn observed_type(ds: &Dataset, field: &FieldPath) -> Option<LabelType> {
    ds.field_label_class(field)
        .as_deref()
        .and_then(label_type_of_class)
        .or_else(|| {
            // Undeclared scalar fields: look at the values.
            let scalar = |d: &crate::dataset::dir::Document| match d.get(field.name())? {
                Value::Bool(_) | Value::Number(_) | Value::String(_) => Some(LabelType::Scalar),
                _ => None,
            };
            match field.level() {
                Level::Sample => ds.samples().iter().find_map(scalar),
                Level::Frame => ds.all_frames().iter().find_map(scalar),
            }
        })
}

/// `schema` for a run uploading into a project it did not create: every label field's
/// classes and attributes are the project's (FiftyOne: "the schema of the project is
/// automatically applied"); types, restrictions and mask targets stay the run's. Attributes
/// every class has are the field's, the others belong to their classes.
pub fn with_project_classes(
    schema: &ResolvedSchema,
    classes: &[(String, IndexMap<String, ResolvedAttribute>)],
) -> ResolvedSchema {
    let mut out = schema.clone();
    for f in out.fields.values_mut() {
        if matches!(f.label_type, LabelType::Scalar | LabelType::Segmentation) {
            continue;
        }
        f.classes = classes.iter().map(|(c, _)| c.clone()).collect();
        let common: IndexMap<String, ResolvedAttribute> = classes
            .first()
            .map(|(_, attrs)| {
                attrs
                    .iter()
                    .filter(|(n, a)| classes.iter().all(|(_, o)| o.get(*n) == Some(a)))
                    .map(|(n, a)| (n.clone(), a.clone()))
                    .collect()
            })
            .unwrap_or_default();
        // The attributes CVAT keeps apart from labels (occluded, group id) stay the run's.
        f.attributes.retain(|_, a| {
            matches!(
                a.attr_type,
                AttributeType::Occluded | AttributeType::GroupId
            )
        });
        f.attributes.extend(common.clone());
        f.class_attributes = classes
            .iter()
            .map(|(c, attrs)| {
                let own: IndexMap<String, ResolvedAttribute> = attrs
                    .iter()
                    .filter(|(n, _)| !common.contains_key(*n))
                    .map(|(n, a)| (n.clone(), a.clone()))
                    .collect();
                (c.clone(), own)
            })
            .filter(|(_, own)| !own.is_empty())
            .collect();
    }
    out
}

/// Call `f` with each selected sample's id and its value of `field` (frame fields: every
/// frame's value).
fn for_each_value(
    ds: &Dataset,
    view: &View,
    field: &FieldPath,
    mut f: impl FnMut(ObjectId, &Value),
) {
    let name = field.name();
    for id in &view.sample_ids {
        let docs: Vec<&crate::dataset::dir::Document> = match field.level() {
            Level::Frame => ds.frames(*id),
            Level::Sample => ds.sample_by_id(*id).into_iter().collect(),
        };
        for d in docs {
            // Parsed for this pass only: caching every sample's parse would keep the whole
            // dataset parsed (about ten times its JSON) for the rest of the command.
            let doc = d.project(&[name]);
            if let Some(v) = doc.get(name) {
                f(*id, v);
            }
        }
    }
}

/// The label objects of `field` the view includes (frame fields: over every frame).
fn observed_labels(
    ds: &Dataset,
    view: &View,
    field: &FieldPath,
) -> Vec<serde_json::Map<String, Value>> {
    let mut out = Vec::new();
    let filtered = view.filtered.get(field.as_str());
    for_each_value(ds, view, field, |id, v| {
        let keep = |l: &serde_json::Map<String, Value>| match filtered.and_then(|f| f.get(&id)) {
            Some(ids) => l
                .get("_id")
                .and_then(ObjectId::from_ejson)
                .is_some_and(|lid| ids.contains(&lid)),
            None => filtered.is_none(),
        };
        out.extend(
            crate::dataset::labels::label_objects(v)
                .into_iter()
                .filter(|l| keep(l))
                .map(resolved_part),
        );
    });
    out
}

/// A label as resolving reads it: without its id, class name and geometry, which no part of
/// the resolve reads, and with a mask standing as `true` (all [`label_subtype`] asks of it).
/// Copying labels whole would hold every box and id of the field (5000 boxes: ~7 MB).
fn resolved_part(label: &serde_json::Map<String, Value>) -> serde_json::Map<String, Value> {
    label
        .iter()
        .filter_map(|(k, v)| match k.as_str() {
            "_id" | "_cls" | "bounding_box" | "points" | "logits" => None,
            "mask" | "mask_path" if !v.is_null() => Some((k.clone(), Value::Bool(true))),
            _ => Some((k.clone(), v.clone())),
        })
        .collect()
}

/// What a label of a `Detections` or `Polylines` field is annotated as (FiftyOne: a
/// detection with a mask is an instance, a filled polyline a polygon); `None` for others.
pub fn label_subtype(
    container: LabelType,
    label: &serde_json::Map<String, Value>,
) -> Option<LabelType> {
    let set = |k: &str| label.get(k).is_some_and(|v| !v.is_null());
    match container {
        LabelType::Detections | LabelType::Instances => Some(if set("mask") || set("mask_path") {
            LabelType::Instances
        } else {
            LabelType::Detections
        }),
        LabelType::Polylines | LabelType::Polygons => Some(
            if label.get("filled").and_then(Value::as_bool) == Some(true) {
                LabelType::Polygons
            } else {
                LabelType::Polylines
            },
        ),
        _ => None,
    }
}

/// Whether a field given this type holds only the labels of the type (FiftyOne's
/// `_select_labels_with_type`). Detections are the exception: a detection with a mask can be
/// annotated as a box, and runs that ask for boxes on such fields annotate every label.
fn narrowing(t: LabelType) -> bool {
    matches!(
        t,
        LabelType::Instances | LabelType::Polylines | LabelType::Polygons
    )
}

/// The label types a field's labels hold, as FiftyOne tells them apart (in the order of
/// [`LabelType::ALL`]).
fn subtypes(container: LabelType, labels: &[serde_json::Map<String, Value>]) -> Vec<LabelType> {
    let found: Vec<LabelType> = labels
        .iter()
        .filter_map(|l| label_subtype(container, l))
        .collect();
    LabelType::ALL
        .into_iter()
        .filter(|t| found.contains(t))
        .collect()
}

/// `view` narrowed, for each field whose manifest gives a type and whose labels are of
/// several types, to the labels of that type (the others stay out of the run, untouched).
pub fn narrow_to_types(
    run: &AnnotationRun,
    schema: &ResolvedSchema,
    ds: &Dataset,
    view: &View,
) -> View {
    let mut out = view.clone();
    let declared: Vec<FieldPath> = fields(run)
        .into_iter()
        .filter(|f| f.spec.label_type.is_some())
        .map(|f| f.name)
        .collect();
    for (field, f) in schema.fields.iter().filter(|(n, _)| declared.contains(n)) {
        if !narrowing(f.label_type) || field.is_frame() {
            continue;
        }
        let mut kept: std::collections::HashMap<ObjectId, Vec<ObjectId>> =
            std::collections::HashMap::new();
        let mut mixed = false;
        let before = view.filtered.get(field.as_str());
        for_each_value(ds, view, field, |id, v| {
            let ids = kept.entry(id).or_default();
            for l in crate::dataset::labels::label_objects(v) {
                let Some(lid) = l.get("_id").and_then(ObjectId::from_ejson) else {
                    continue;
                };
                if before.is_some_and(|b| !b.get(&id).is_some_and(|k| k.contains(&lid))) {
                    continue;
                }
                if label_subtype(f.label_type, l) == Some(f.label_type) {
                    ids.push(lid);
                } else {
                    mixed = true;
                }
            }
        });
        if mixed {
            out.filtered.insert(field.to_string(), kept);
        }
    }
    out
}

/// The scalar values of `field` the view includes.
fn observed_scalars(ds: &Dataset, view: &View, field: &FieldPath) -> Vec<Value> {
    let mut out = Vec::new();
    for_each_value(ds, view, field, |_, v| {
        if !v.is_null() {
            out.push(v.clone());
        }
    });
    out
}

/// Keys of a label that are not custom attributes.
const BUILTIN_KEYS: &[&str] = &[
    "_id",
    "_cls",
    "tags",
    "label",
    "confidence",
    "index",
    "attributes",
    "bounding_box",
    "mask",
    "mask_path",
    "points",
    "closed",
    "filled",
    "logits",
    "keyframe",
];

fn attributes_from(
    spec: &AttributesSpec,
    labels: &[serde_json::Map<String, Value>],
    backend: BackendKind,
) -> IndexMap<String, ResolvedAttribute> {
    match spec {
        AttributesSpec::Infer(true) => infer_attributes(labels, backend),
        AttributesSpec::Infer(false) => IndexMap::new(),
        // FiftyOne asks the backend for the widget of a name without a value: a text box.
        AttributesSpec::Names(names) => names
            .iter()
            .map(|n| (n.clone(), backend.recommend_attribute(n, &Value::Null)))
            .collect(),
        AttributesSpec::Specs(specs) => specs
            .iter()
            .map(|(n, s)| (n.clone(), from_spec(s)))
            .collect(),
    }
}

fn from_spec(s: &AttributeSpec) -> ResolvedAttribute {
    ResolvedAttribute {
        attr_type: s.attr_type,
        values: s.values.clone().unwrap_or_default(),
        default: s.default.clone(),
        read_only: s.read_only.unwrap_or(false),
        mutable: s.mutable.unwrap_or(true),
    }
}

/// Infer the attributes of existing labels as FiftyOne's `_get_label_attributes` does: every
/// custom attribute with a non-null value, its widget recommended by the backend from the
/// first value seen (CVAT: a boolean `occluded` is the occlusion toggle, an integer
/// `group_id` the grouping, other booleans checkboxes, anything else a free text box, so an
/// annotator can type a value not seen before). Attributes holding lists or mappings are
/// left out, as the seed says.
fn infer_attributes(
    labels: &[serde_json::Map<String, Value>],
    backend: BackendKind,
) -> IndexMap<String, ResolvedAttribute> {
    let mut first: IndexMap<String, Value> = IndexMap::new();
    let mut non_scalar: BTreeSet<String> = BTreeSet::new();
    for l in labels {
        for (k, v) in l {
            if BUILTIN_KEYS.contains(&k.as_str()) || k.starts_with('_') {
                continue;
            }
            match v {
                Value::Null => {}
                Value::Array(_) | Value::Object(_) => {
                    non_scalar.insert(k.clone());
                }
                _ => {
                    first.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
    }
    first
        .into_iter()
        .filter(|(name, _)| !non_scalar.contains(name))
        .map(|(name, value)| {
            let attr = backend.recommend_attribute(&name, &value);
            (name, attr)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::view;
    use crate::manifest::load::parse_text;

    fn fixture() -> Dataset {
        Dataset::load(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/fiftyone-1.22.1/image-all-label-types"
        ))
        .unwrap()
    }

    fn run(body: &str) -> AnnotationRun {
        let text =
            format!("apiVersion: annoform/v1\nkind: AnnotationRun\nkey: k\ndataset: d\n{body}");
        let (mut runs, problems) = parse_text(crate::diag::SourceFile::new("t.yaml", text));
        assert!(problems.is_empty(), "{problems:?}");
        runs.remove(0).run
    }

    fn resolved(body: &str, backend: BackendKind) -> Result<ResolvedSchema, Vec<SchemaError>> {
        let ds = fixture();
        let r = run(body);
        let v = view::apply(&r.view, &ds).unwrap();
        resolve(&r, &ds, &v, backend, None)
    }

    #[test]
    fn existing_detections_infer_type_classes_and_attributes() {
        let s = resolved("label_field: ground_truth\n", BackendKind::Cvat).unwrap();
        let f = &s.fields["ground_truth"];
        assert_eq!(f.label_type, LabelType::Detections);
        assert!(f.existing);
        // The dataset declares classes for the field.
        assert_eq!(f.classes, vec!["car", "person", "bike"]);
        assert!(!f.attributes.contains_key("confidence"));
        assert_eq!(f.restrictions, Restrictions::default());
    }

    /// FiftyOne's CVAT `recommend_attr_tool`: a boolean `occluded` is the occlusion widget,
    /// strings and numbers are free text (never a select of the values seen).
    #[test]
    fn attribute_widgets_follow_fiftyone() {
        let s = resolved(
            "label_field: ground_truth
",
            BackendKind::Cvat,
        )
        .unwrap();
        let attrs = &s.fields["ground_truth"].attributes;
        let types: Vec<(&str, AttributeType)> = attrs
            .iter()
            .map(|(n, a)| (n.as_str(), a.attr_type))
            .collect();
        assert_eq!(
            types,
            [
                ("occluded", AttributeType::Occluded),
                ("color", AttributeType::Text),
                ("iscrowd", AttributeType::Text),
            ]
        );
        assert!(
            attrs
                .values()
                .all(|a| a.values.is_empty() && a.default.is_none())
        );
        // Other booleans are checkboxes; an integer `group_id` is CVAT's grouping.
        let rec = |name: &str, v: Value| BackendKind::Cvat.recommend_attribute(name, &v).attr_type;
        assert_eq!(rec("truncated", Value::Bool(true)), AttributeType::Checkbox);
        assert_eq!(
            rec("group_id", serde_json::json!(3)),
            AttributeType::GroupId
        );
        assert_eq!(rec("group_id", serde_json::json!("a")), AttributeType::Text);
        // Names without specs get a text box, as FiftyOne's `{name: {}}`.
        let s = resolved(
            "label_field: ground_truth\nattributes: [occluded, color]\n",
            BackendKind::Cvat,
        )
        .unwrap();
        assert!(
            s.fields["ground_truth"]
                .attributes
                .values()
                .all(|a| a.attr_type == AttributeType::Text)
        );
    }

    /// Declared classes are completed with every observed class, so nothing in the run lacks
    /// a backend label; explicit classes that miss observed ones are refused.
    #[test]
    fn classes_cover_the_observed_labels() {
        let s = resolved("label_field: clss\n", BackendKind::Cvat).unwrap();
        assert_eq!(
            s.fields["clss"].classes,
            vec!["car", "person", "bike", "cat", "day", "indoor"]
        );
        let e = resolved("label_field: clss\nclasses: [day]\n", BackendKind::Cvat).unwrap_err();
        assert!(
            e[0].message.starts_with(
                "labels in the run have classes that are not in its `classes`: `indoor`"
            ),
            "{}",
            e[0].message
        );
    }

    /// A run with a record resolves what the manifest leaves open from the record, even when
    /// the field is gone from the dataset.
    #[test]
    fn the_recorded_schema_fills_what_the_manifest_leaves_open() {
        let ds = fixture();
        let r = run("label_field: gone\n");
        let v = view::apply(&r.view, &ds).unwrap();
        let mut recorded = ResolvedSchema::default();
        let mut f = ResolvedField::new(LabelType::Detections, vec!["a".into()]);
        f.attributes.insert(
            "x".into(),
            BackendKind::Cvat.recommend_attribute("x", &Value::Null),
        );
        recorded.fields.insert("gone".into(), f.clone());
        let s = resolve(&r, &ds, &v, BackendKind::Cvat, Some(&recorded)).unwrap();
        let got = &s.fields["gone"];
        assert!(!got.existing);
        assert_eq!(
            (got.label_type, &got.classes, &got.attributes),
            (f.label_type, &f.classes, &f.attributes)
        );
        assert!(resolve(&r, &ds, &v, BackendKind::Cvat, None).is_err());
    }

    #[test]
    fn backends_without_attributes_get_none_by_default() {
        let s = resolved("label_field: ground_truth\n", BackendKind::Labelstudio).unwrap();
        assert!(s.fields["ground_truth"].attributes.is_empty());
    }

    #[test]
    fn new_fields_need_type_and_classes() {
        let e = resolved("label_field: brand_new\n", BackendKind::Cvat).unwrap_err();
        assert_eq!(
            e[0].to_string(),
            "field `brand_new`: is a new field and needs `type`"
        );
        // FiftyOne takes a new field's classes from the dataset's default classes.
        let s = resolved(
            "label_field: brand_new\nlabel_type: detections\n",
            BackendKind::Cvat,
        )
        .unwrap();
        assert_eq!(
            s.fields["brand_new"].classes,
            vec!["car", "person", "bike", "cat"]
        );
        let ok = resolved(
            "label_field: brand_new\nlabel_type: scalar\n",
            BackendKind::Cvat,
        )
        .unwrap();
        assert!(!ok.fields["brand_new"].existing);
    }

    #[test]
    fn a_type_that_contradicts_the_dataset_is_an_error() {
        let e = resolved(
            "label_field: ground_truth\nlabel_type: keypoints\n",
            BackendKind::Cvat,
        )
        .unwrap_err();
        assert_eq!(
            e[0].message,
            "the dataset holds detections labels here, not keypoints"
        );
        assert!(
            resolved(
                "label_field: ground_truth\nlabel_type: instances\n",
                BackendKind::Cvat
            )
            .is_ok()
        );
    }

    #[test]
    fn explicit_specs_restrictions_and_class_groups() {
        let s = resolved(
            "label_schema:\n  ground_truth:\n    classes: [person, {classes: [car], attributes: {make: {type: text}}}]\n    attributes:\n      color: {type: select, values: [red], read_only: true}\n    allow_deletions: false\n",
            BackendKind::Cvat,
        )
        .unwrap();
        let f = &s.fields["ground_truth"];
        assert_eq!(f.classes, vec!["person", "car"]);
        assert!(f.attributes["color"].read_only);
        assert_eq!(
            f.class_attributes["car"]["make"].attr_type,
            AttributeType::Text
        );
        assert!(!f.restrictions.allow_deletions && f.restrictions.allow_additions);
    }

    #[test]
    fn segmentation_classes_come_from_mask_targets_and_scalars_resolve() {
        let s = resolved("label_schema:\n  seg: {}\n  n_int: {}\n", BackendKind::Cvat).unwrap();
        assert_eq!(s.fields["seg"].label_type, LabelType::Segmentation);
        assert_eq!(s.fields["seg"].classes, vec!["road", "sky"]);
        assert_eq!(s.fields["n_int"].label_type, LabelType::Scalar);
    }

    #[test]
    fn observed_values_must_fit_declared_values() {
        let e = resolved("label_schema:\n  ground_truth:\n    attributes:\n      color: {type: select, values: [blue]}\n", BackendKind::Cvat).unwrap_err();
        assert_eq!(
            e[0].message,
            "attribute `color` has values in the dataset that are not in its `values`: `red`"
        );
    }

    /// A run in an existing project takes the project's classes; attributes every class has
    /// are the field's, the others their class's; CVAT's occluded flag stays the run's.
    #[test]
    fn a_projects_classes_replace_the_runs() {
        let s = resolved("label_field: ground_truth\n", BackendKind::Cvat).unwrap();
        let text = || BackendKind::Cvat.recommend_attribute("x", &Value::Null);
        let common: IndexMap<String, ResolvedAttribute> = [("make".to_string(), text())].into();
        let mut truck = common.clone();
        truck.insert("axles".into(), text());
        let adopted = with_project_classes(&s, &[("car".into(), common), ("truck".into(), truck)]);
        let f = &adopted.fields["ground_truth"];
        assert_eq!(f.classes, ["car", "truck"]);
        let names: Vec<&str> = f.attributes.keys().map(String::as_str).collect();
        assert_eq!(names, ["occluded", "make"]);
        assert_eq!(f.class_attributes.len(), 1);
        assert!(f.class_attributes["truck"].contains_key("axles"));
        assert_eq!(f.restrictions, s.fields["ground_truth"].restrictions);
    }

    /// A declared `polygons` on a field of polygons and open polylines keeps only the
    /// polygons in the run; without a type the field is annotated whole.
    #[test]
    fn declared_types_narrow_mixed_fields() {
        let ds = fixture();
        let r = run("label_field: polylines\nlabel_type: polygons\n");
        let v = view::apply(&r.view, &ds).unwrap();
        let s = resolve(&r, &ds, &v, BackendKind::Cvat, None).unwrap();
        assert_eq!(
            s.fields["polylines"].classes,
            ["car", "person", "bike", "cat", "pool"]
        );
        let narrowed = narrow_to_types(&r, &s, &ds, &v);
        let kept = &narrowed.filtered["polylines"];
        assert_eq!(kept.len(), v.sample_ids.len());
        assert!(kept.values().all(|ids| ids.len() == 1), "{kept:?}");
        let r = run("label_field: polylines\n");
        let s = resolve(&r, &ds, &v, BackendKind::Cvat, None).unwrap();
        assert_eq!(s.fields["polylines"].label_type, LabelType::Polylines);
        assert!(
            !narrow_to_types(&r, &s, &ds, &v)
                .filtered
                .contains_key("polylines")
        );
    }

    #[test]
    fn observed_labels_follow_filter_labels() {
        let s = resolved(
            "view:\n  - filter_labels: {field: ground_truth, where: \"label == 'person'\"}\nlabel_schema:\n  ground_truth:\n    attributes: true\n",
            BackendKind::Cvat,
        )
        .unwrap();
        // Only the person box remains, and it has no `occluded`.
        assert!(
            !s.fields["ground_truth"].attributes.contains_key("occluded"),
            "{:?}",
            s.fields["ground_truth"].attributes
        );
    }

    #[test]
    fn a_resolved_label_keeps_what_the_resolve_reads() {
        let full = serde_json::json!({
            "_id": {"$oid": "6b13acec6153cc54566b1598"}, "_cls": "Detection",
            "label": "car", "bounding_box": [0.1, 0.2, 0.3, 0.4], "mask": [[0, 1]],
            "mask_path": null, "occluded": true, "confidence": 0.5, "tags": [],
        });
        let part = Value::Object(resolved_part(full.as_object().unwrap()));
        assert_eq!(
            part,
            serde_json::json!({"label": "car", "mask": true, "mask_path": null,
                               "occluded": true, "confidence": 0.5, "tags": []})
        );
        let part = part.as_object().unwrap();
        assert_eq!(
            label_subtype(LabelType::Detections, part),
            Some(LabelType::Instances)
        );
    }
}
