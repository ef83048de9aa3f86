//! The merge: downloaded annotations against what was uploaded and what the dataset holds now,
//! with restrictions applied. Pure: it computes the new field values, the counts and every
//! rejected change; the caller writes. Plan and apply run the same code, so a plan's counts are
//! exactly what apply does, and merging the same download twice changes nothing.

use crate::backend::DownloadedLabel;
use crate::dataset::FrameNumber;
use crate::dataset::ejson::ObjectId;
use crate::manifest::{Conflicts, LabelType, Unexpected};
use crate::plan::{
    ChangeKind, FieldCounts, LabelChange, LabelEdit, OutsideLabel, OutsideSchema, PropertyChange,
    Refusal, Rejection, Restriction, UnexpectedLabel,
};
use crate::schema::ResolvedField;
use crate::state::{Digest16, LabelKey, UploadedLabel};
use indexmap::IndexMap;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

/// Keys of a label that are geometry, per label type.
fn geometry_keys(t: LabelType) -> &'static [&'static str] {
    match t {
        // A `detections` annotation edits boxes: a mask the detection may have is not shown
        // to annotators (that is an `instances` annotation) and so never merged away.
        LabelType::Detections => &["bounding_box", "rotation"],
        LabelType::Instances => &["bounding_box", "mask", "mask_path", "rotation"],
        LabelType::Polylines | LabelType::Polygons => &["points", "closed", "filled"],
        LabelType::Keypoints => &["points"],
        LabelType::Segmentation => &["mask", "mask_path"],
        LabelType::Classification | LabelType::Classifications | LabelType::Scalar => &[],
    }
}

/// The FiftyOne container of a label type: (field class, list key) — no list key for
/// single-label fields.
pub fn container(t: LabelType) -> (&'static str, Option<&'static str>) {
    match t {
        LabelType::Classification => ("Classification", None),
        LabelType::Classifications => ("Classifications", Some("classifications")),
        LabelType::Detections | LabelType::Instances => ("Detections", Some("detections")),
        LabelType::Polylines | LabelType::Polygons => ("Polylines", Some("polylines")),
        LabelType::Keypoints => ("Keypoints", Some("keypoints")),
        LabelType::Segmentation => ("Segmentation", None),
        LabelType::Scalar => ("", None),
    }
}

/// The labels a field value holds (items of a list container, or the single label).
pub fn labels_of(value: Option<&Value>, t: LabelType) -> Vec<Value> {
    label_slice(value, t).to_vec()
}

/// The labels a field value holds, borrowed.
pub fn label_slice(value: Option<&Value>, t: LabelType) -> &[Value] {
    let Some(v) = value.filter(|v| !v.is_null()) else {
        return &[];
    };
    match container(t) {
        (_, Some(key)) => v
            .get(key)
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice),
        _ => std::slice::from_ref(v),
    }
}

/// A field value holding `labels`; `None` for an empty single-label field.
pub fn field_value(labels: Vec<Value>, t: LabelType) -> Option<Value> {
    match container(t) {
        (cls, Some(key)) => Some(json!({"_cls": cls, key: labels})),
        _ => labels.into_iter().next(),
    }
}

pub use crate::dataset::change::label_id;

/// The part of a label a run manages: class, index, geometry and the schema's writable
/// attributes; everything else on the label is never touched.
fn managed(label: &Value, field: &ResolvedField) -> Map<String, Value> {
    let mut out = Map::new();
    if field.label_type == LabelType::Scalar {
        out.insert("value".into(), label.clone());
        return out;
    }
    let keys = ["label", "index"]
        .into_iter()
        .chain(geometry_keys(field.label_type).iter().copied());
    for k in keys {
        if let Some(v) = label.get(k).filter(|v| !v.is_null()) {
            out.insert(k.into(), compared(k, v));
        }
    }
    for name in writable_attributes(label, field) {
        if let Some(v) = label.get(&name).filter(|v| !v.is_null()) {
            out.insert(format!("attr:{name}"), v.clone());
        }
    }
    out
}

/// A label's value under `key` as the merge compares it: a mask by its pixels (decoded and
/// encoded again), because two zlib implementations compress the same pixels to different
/// bytes (Python's zlib and ours do), and a backend hands back pixels, not bytes.
fn compared(key: &str, v: &Value) -> Value {
    if key == "mask"
        && let Ok(m) = crate::dataset::mask::Mask::from_ejson(v)
    {
        return m.to_ejson();
    }
    v.clone()
}

/// Whether an attribute kept its value: a checkbox shows a dataset's `0`/`1` as false/true
/// and "unset" as false, so a backend handing back that boolean has not changed it.
fn same_attribute(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(Value::Bool(x)), Some(Value::Number(n)))
        | (Some(Value::Number(n)), Some(Value::Bool(x))) => n.as_f64() == Some(f64::from(*x as u8)),
        // Nor can it show "unset": it shows false.
        (None, Some(Value::Bool(false))) | (Some(Value::Bool(false)), None) => true,
        _ => a == b,
    }
}

/// The schema attributes a label of its class has, as (name, read_only).
fn attributes_of(label: &Value, field: &ResolvedField) -> Vec<(String, bool)> {
    let class = label
        .get("label")
        .and_then(Value::as_str)
        .unwrap_or_default();
    field
        .attributes
        .iter()
        .chain(field.class_attributes.get(class).into_iter().flatten())
        .map(|(n, a)| (n.clone(), a.read_only))
        .collect()
}

fn writable_attributes(label: &Value, field: &ResolvedField) -> Vec<String> {
    attributes_of(label, field)
        .into_iter()
        .filter(|(_, ro)| !ro)
        .map(|(n, _)| n)
        .collect()
}

/// A stable digest of JSON (keys sorted at every level), as 32 hex digits.
pub fn digest(v: &Value) -> String {
    digest16(v).to_string()
}

/// A stable digest of JSON (keys sorted at every level).
pub fn digest16(v: &Value) -> Digest16 {
    fn canon(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), canon(&m[k])))
                        .collect(),
                )
            }
            Value::Array(a) => Value::Array(a.iter().map(canon).collect()),
            other => other.clone(),
        }
    }
    let bytes = serde_json::to_vec(&canon(v)).unwrap_or_default();
    first16(&Sha256::digest(&bytes))
}

/// The first 16 bytes of a SHA-256.
pub(crate) fn first16(hash: &[u8]) -> Digest16 {
    let mut out = [0u8; 16];
    out.copy_from_slice(&hash[..16]);
    Digest16(out)
}

/// The digest of the managed part of a label, as recorded at upload.
pub fn label_digest(label: &Value, field: &ResolvedField) -> Digest16 {
    digest16(&Value::Object(managed(label, field)))
}

/// A label's key in its field (`None` for a label without an id, which no run manages).
pub fn label_key(label: &Value, t: LabelType) -> Option<LabelKey> {
    if t == LabelType::Scalar {
        Some(LabelKey::Value)
    } else {
        label_id(label).map(LabelKey::Id)
    }
}

/// A label as the backend holds it (see [`crate::backend::AsHeld`]), for one sample.
pub type HeldFn<'a> = dyn Fn(&Value) -> Option<Value> + 'a;

/// Everything one field's merge needs for one sample.
pub struct FieldInput<'a> {
    pub field: &'a str,
    pub schema: &'a ResolvedField,
    pub sample_id: &'a str,
    /// The video frame merged, for a frame field (one merge per frame).
    pub frame: Option<FrameNumber>,
    /// The field's current value in the dataset (the source field, even with `dest_field`).
    pub current: Option<&'a Value>,
    pub uploaded: &'a [UploadedLabel],
    pub downloaded: &'a [DownloadedLabel],
    pub id_map: &'a IndexMap<String, String>,
    /// Parts that, with the sample id and a backend object id, derive the ids of labels
    /// created in the backend.
    pub id_seed: &'a [u8],
    pub conflicts: Conflicts,
    /// What to do with labels of a class or a type outside the schema.
    pub unexpected: Unexpected,
    /// A label as the backend holds it once uploaded, for backends that cannot hold every
    /// label exactly (see [`crate::backend::AsHeld`]).
    pub as_held: Option<&'a HeldFn<'a>>,
}

/// One field's merge for one sample.
#[derive(Debug, Default)]
pub struct FieldOutcome {
    pub counts: FieldCounts,
    pub rejected: Vec<Rejection>,
    /// The labels edited, property by property.
    pub edits: Vec<LabelEdit>,
    /// Labels changed both in the dataset and in the backend (with `conflicts: error`).
    pub conflicts: Vec<Conflict>,
    /// Labels outside the schema that do not go into the field (see [`unexpected`]).
    pub unexpected: Vec<UnexpectedLabel>,
    /// Labels of an unexpected type to keep, by the type of the field named after it.
    pub kept: Vec<(LabelType, Value)>,
    /// Labels set aside by `load.unexpected: return`.
    pub returned: Vec<unexpected::Returned>,
    /// Labels outside the schema that make the plan fail (`load.unexpected: error`).
    pub unexpected_errors: Vec<OutsideSchema>,
    /// What changes, one entry per label added, edited or deleted.
    pub changes: Vec<LabelChange>,
    /// The field's new value, when it changes.
    pub new_value: Option<Option<Value>>,
    /// What the backend now holds, as the baseline of the next merge.
    pub baseline: Vec<UploadedLabel>,
    /// Backend object id → our label id, for labels the backend could not carry ids for.
    pub new_ids: Vec<(String, String)>,
}

pub use crate::plan::Conflict;

/// Merge one field of one sample.
pub fn merge_field(input: &FieldInput<'_>) -> FieldOutcome {
    let mut out = FieldOutcome::default();
    let t = input.schema.label_type;
    let r = input.schema.restrictions;
    let reject = |out: &mut FieldOutcome, label_id: &LabelKey, change, reason| {
        out.rejected
            .push(rejection(input, label_id, change, None, reason));
    };

    // Resolve every downloaded label to our id.
    let mut downloaded: IndexMap<LabelKey, Value> = IndexMap::new();
    let mut backend_ids: HashMap<LabelKey, &str> = HashMap::new();
    for d in input.downloaded.iter().filter(|d| d.misfit.is_none()) {
        // A frame label's backend key names its frame: one track is a label per frame.
        let backend_key = d.backend_key();
        let mapped = || {
            let id = input.id_map.get(backend_key.as_ref())?;
            ObjectId::parse(id).ok()
        };
        let id = match label_key(&d.label, t).or_else(|| mapped().map(LabelKey::Id)) {
            Some(id) => id,
            None => {
                // The sample is part of the seed: backends promise unique object ids only
                // within their own scope (a task, an annotation).
                let id = ObjectId::derive(&[
                    input.id_seed,
                    input.sample_id.as_bytes(),
                    backend_key.as_bytes(),
                ]);
                out.new_ids.push((backend_key.to_string(), id.to_string()));
                LabelKey::Id(id)
            }
        };
        let label = match (id, d.label.as_object()) {
            (LabelKey::Id(id), Some(o)) if !o.contains_key("_id") => new_label(id, o),
            (LabelKey::Id(id), Some(o)) => {
                let mut o = o.clone();
                o.insert("_id".into(), id.to_ejson());
                Value::Object(o)
            }
            _ => d.label.clone(),
        };
        backend_ids.insert(id, &d.backend_id);
        downloaded.insert(id, label);
    }
    if let Some(as_held) = input.as_held {
        let current: HashMap<LabelKey, &Value> = label_slice(input.current, t)
            .iter()
            .filter_map(|c| Some((label_key(c, t)?, c)))
            .collect();
        for (id, dl) in downloaded.iter_mut() {
            if let Some(cur) = current.get(id) {
                held_geometry(cur, dl, t, as_held);
            }
        }
    }
    out.baseline = downloaded
        .iter()
        .map(|(id, l)| UploadedLabel {
            id: *id,
            digest: label_digest(l, input.schema),
        })
        .collect();
    for d in input.downloaded.iter().filter(|d| d.misfit.is_some()) {
        unexpected::misfit(input, d, &mut out);
    }

    let uploaded: HashMap<LabelKey, Digest16> =
        input.uploaded.iter().map(|u| (u.id, u.digest)).collect();
    let current = label_slice(input.current, t);
    // Borrowed until the field changes: most samples of a merge do not.
    let mut result: Vec<Cow<'_, Value>> = Vec::with_capacity(current.len() + downloaded.len());
    let mut changed = false;

    for cur in current {
        let Some(cid) = label_key(cur, t).filter(|c| uploaded.contains_key(c)) else {
            result.push(Cow::Borrowed(cur)); // not managed by this run
            continue;
        };
        match downloaded.get(&cid) {
            None if r.allow_deletions => {
                out.counts.deleted += 1;
                out.changes.push(LabelChange::Deleted {
                    label_id: cid.to_string(),
                });
                changed = true;
            }
            None => {
                out.counts.rejected += 1;
                reject(
                    &mut out,
                    &cid,
                    ChangeKind::Delete,
                    Refusal::Restricted {
                        restriction: Restriction::AllowDeletions,
                    },
                );
                result.push(Cow::Borrowed(cur));
            }
            Some(dl) => {
                let (merged, applied, rejected) =
                    merge_label(cur, dl, input, uploaded[&cid], &cid, &mut out);
                let edited = !applied.is_empty();
                if edited {
                    out.counts.edited += 1;
                    out.counts.edits.count(&applied);
                    out.changes.push(LabelChange::Edited {
                        label_id: cid.to_string(),
                        applied: applied.clone(),
                    });
                    out.edits.push(LabelEdit {
                        sample_id: input.sample_id.to_string(),
                        frame: input.frame,
                        field: input.field.to_string(),
                        label_id: cid.to_string(),
                        changes: PropertyChange::between(cur, &merged),
                    });
                    changed = true;
                }
                if rejected {
                    out.counts.rejected += 1;
                }
                if !edited && !rejected {
                    out.counts.unchanged += 1;
                }
                result.push(merged);
            }
        }
    }
    // Labels already in the field (by id: a scalar's value is never "present").
    let present: HashSet<LabelKey> = current
        .iter()
        .filter_map(|c| label_id(c).map(LabelKey::Id))
        .collect();
    for (id, dl) in &downloaded {
        if uploaded.contains_key(id) || present.contains(id) {
            continue;
        }
        let single = container(t).1.is_none();
        let outside = outside_schema(dl, input.schema);
        if let Some(class) = &outside
            && input.unexpected != Unexpected::Keep
        {
            let found = unexpected::Found {
                backend_id: backend_ids.get(id).copied().unwrap_or_default(),
                key: *id,
                label: dl.clone(),
                label_type: t,
                reason: format!("class `{class}` is not in the schema of `{}`", input.field),
            };
            unexpected::settle(input, &mut out, found, false);
            continue;
        }
        if !r.allow_additions {
            out.counts.rejected += 1;
            reject(
                &mut out,
                id,
                ChangeKind::Add,
                Refusal::Restricted {
                    restriction: Restriction::AllowAdditions,
                },
            );
        } else if single && !result.is_empty() {
            out.counts.rejected += 1;
            reject(&mut out, id, ChangeKind::Add, Refusal::FieldHoldsOne);
        } else {
            out.counts.added += 1;
            // A class outside the schema is kept in the field (`keep`), as FiftyOne does.
            out.changes.push(LabelChange::Added {
                label_id: id.to_string(),
                class: dl.get("label").and_then(Value::as_str).map(String::from),
                outside_schema: outside.is_some(),
            });
            result.push(added_label(dl));
            changed = true;
        }
    }
    if changed {
        out.new_value = Some(field_value(
            result.into_iter().map(Cow::into_owned).collect(),
            t,
        ));
    }
    out
}

/// A label the backend added, as it goes into the field: a `keyframe: null` (no keyframe,
/// see [`follow_keyframe`]) is left out, as FiftyOne's loader creates new labels.
fn added_label(dl: &Value) -> Cow<'_, Value> {
    match dl.get("keyframe") {
        Some(Value::Null) => {
            let mut l = dl.clone();
            if let Some(o) = l.as_object_mut() {
                o.remove("keyframe");
            }
            Cow::Owned(l)
        }
        _ => Cow::Borrowed(dl),
    }
}

/// Gives a downloaded label the dataset label's geometry when the backend holds exactly that
/// label's geometry as it can (a backend that cannot hold every geometry exactly, see
/// [`crate::backend::AsHeld`]): nobody moved it, so the baseline and the merge see the
/// dataset's own geometry.
fn held_geometry(cur: &Value, dl: &mut Value, t: LabelType, as_held: &HeldFn<'_>) {
    let keys = geometry_keys(t);
    let geometry = |l: &Value| -> Vec<Option<Value>> {
        keys.iter()
            .map(|k| l.get(*k).filter(|v| !v.is_null()).map(|v| compared(k, v)))
            .collect()
    };
    let theirs = geometry(dl);
    if keys.is_empty() || geometry(cur) == theirs {
        return;
    }
    if as_held(cur).is_none_or(|h| geometry(&h) != theirs) {
        return;
    }
    if let Some(o) = dl.as_object_mut() {
        for k in keys {
            match cur.get(*k).filter(|v| !v.is_null()) {
                Some(v) => o.insert((*k).to_string(), v.clone()),
                None => o.remove(*k),
            };
        }
    }
}

/// A label created in the backend, as FiftyOne writes a new label: `_id`, `_cls`, then
/// `attributes` (the classes that have them) and `tags`, empty unless given, then the rest in
/// the backend's order.
fn new_label(id: ObjectId, label: &Map<String, Value>) -> Value {
    let mut out = Map::with_capacity(label.len() + 3);
    out.insert("_id".into(), id.to_ejson());
    let cls = label.get("_cls").and_then(Value::as_str);
    let has_attributes = matches!(cls, Some("Detection" | "Polyline" | "Keypoint"));
    for (key, empty) in [
        ("_cls", None),
        ("attributes", has_attributes.then(|| json!({}))),
        ("tags", Some(json!([]))),
    ] {
        if let Some(v) = label.get(key).cloned().or(empty) {
            out.insert(key.into(), v);
        }
    }
    for (k, v) in label {
        if !out.contains_key(k) {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

/// The class of a label that the schema does not list (schemas without classes accept all).
fn outside_schema(label: &Value, schema: &ResolvedField) -> Option<String> {
    if schema.classes.is_empty() || schema.label_type == LabelType::Scalar {
        return None;
    }
    let class = label.get("label").and_then(Value::as_str)?;
    (!schema.classes.iter().any(|c| c == class)).then(|| class.to_string())
}

/// One matched label being merged: takes allowed changes, records forbidden ones.
struct LabelMerge<'a> {
    cur: &'a Value,
    dl: &'a Value,
    merged: Map<String, Value>,
    /// Kinds of change applied (`label`, `geometry`, `index`, `attribute:<name>`).
    applied: Vec<String>,
    rejected: Vec<(ChangeKind, Option<String>, Refusal)>,
}

impl LabelMerge<'_> {
    /// Take the backend's values of `keys` when any differs and the change is allowed.
    fn take(&mut self, keys: &[&str], refusal: Option<Refusal>, change: ChangeKind) {
        let get = |l: &Value, k: &str| l.get(k).filter(|v| !v.is_null()).map(|v| compared(k, v));
        let same = |a: Option<Value>, b: Option<Value>| {
            if change == ChangeKind::Attribute {
                same_attribute(a.as_ref(), b.as_ref())
            } else {
                a == b
            }
        };
        if keys.iter().all(|k| same(get(self.cur, k), get(self.dl, k))) {
            return;
        }
        if let Some(reason) = refusal {
            let attribute = (change == ChangeKind::Attribute).then(|| keys[0].to_string());
            self.rejected.push((change, attribute, reason));
            return;
        }
        for k in keys {
            let v = get(self.dl, k);
            if !same(get(self.cur, k), v.clone()) {
                // An attribute missing from the download is written as null, as FiftyOne does.
                self.merged
                    .insert((*k).to_string(), v.unwrap_or(Value::Null));
            }
        }
        self.applied.push(if change == ChangeKind::Attribute {
            format!("attribute:{}", keys[0])
        } else {
            change.as_str().to_string()
        });
    }
}

/// Merge one matched label; returns (merged label, the kinds of change applied, whether any
/// change was rejected).
fn merge_label<'v>(
    cur: &'v Value,
    dl: &'v Value,
    input: &FieldInput<'_>,
    uploaded_digest: Digest16,
    id: &LabelKey,
    out: &mut FieldOutcome,
) -> (Cow<'v, Value>, Vec<String>, bool) {
    let schema = input.schema;
    if schema.label_type == LabelType::Scalar {
        return if cur == dl {
            (Cow::Borrowed(cur), Vec::new(), false)
        } else {
            (Cow::Borrowed(dl), vec!["value".to_string()], false)
        };
    }
    // Read-only attributes are shown, never merged; a backend that let them change is reported.
    let read_only_changed: Vec<String> = attributes_of(dl, schema)
        .into_iter()
        .filter(|(n, ro)| {
            *ro && !same_attribute(
                cur.get(n).filter(|v| !v.is_null()),
                dl.get(n).filter(|v| !v.is_null()),
            )
        })
        .map(|(n, _)| n)
        .collect();
    for n in &read_only_changed {
        out.rejected.push(rejection(
            input,
            id,
            ChangeKind::Attribute,
            Some(n.clone()),
            Refusal::ReadOnly,
        ));
    }
    let cur_m = managed(cur, schema);
    let dl_m = managed(dl, schema);
    if cur_m == dl_m {
        let mut applied = Vec::new();
        let merged = follow_keyframe(Cow::Borrowed(cur), dl, input, &mut applied);
        return (merged, applied, !read_only_changed.is_empty());
    }
    let dataset_changed = digest16(&Value::Object(cur_m.clone())) != uploaded_digest;
    let backend_changed = digest16(&Value::Object(dl_m.clone())) != uploaded_digest;
    if dataset_changed && backend_changed {
        match input.conflicts {
            Conflicts::Error => {
                out.conflicts.push(Conflict {
                    sample_id: input.sample_id.to_string(),
                    frame: input.frame,
                    field: input.field.to_string(),
                    label_id: id.to_string(),
                });
                return (
                    Cow::Borrowed(cur),
                    Vec::new(),
                    !read_only_changed.is_empty(),
                );
            }
            Conflicts::Dataset => {
                return (
                    Cow::Borrowed(cur),
                    Vec::new(),
                    !read_only_changed.is_empty(),
                );
            }
            Conflicts::Backend => {}
        }
    } else if !backend_changed {
        // Only the dataset changed since upload: annotators did not touch it.
        let mut applied = Vec::new();
        let merged = follow_keyframe(Cow::Borrowed(cur), dl, input, &mut applied);
        return (merged, applied, !read_only_changed.is_empty());
    }
    let r = schema.restrictions;
    let mut m = LabelMerge {
        cur,
        dl,
        merged: cur.as_object().cloned().unwrap_or_default(),
        applied: Vec::new(),
        rejected: Vec::new(),
    };
    // A relabel to a class outside the schema is merged only with `keep`, as FiftyOne merges
    // any class; `error` names it.
    let unknown_class = match outside_schema(dl, schema) {
        Some(class) if input.unexpected != Unexpected::Keep => {
            if input.unexpected == Unexpected::Error {
                out.unexpected_errors.push(OutsideSchema {
                    sample_id: input.sample_id.to_string(),
                    frame: input.frame,
                    field: input.field.to_string(),
                    label: OutsideLabel::Relabelled {
                        label_id: id.to_string(),
                        class,
                    },
                });
            }
            true
        }
        _ => false,
    };
    let restricted =
        |allowed: bool, restriction| (!allowed).then_some(Refusal::Restricted { restriction });
    let label_refusal = if unknown_class {
        Some(Refusal::ClassNotInSchema)
    } else {
        restricted(r.allow_label_edits, Restriction::AllowLabelEdits)
    };
    m.take(&["label"], label_refusal, ChangeKind::Label);
    m.take(
        &["index"],
        restricted(r.allow_index_edits, Restriction::AllowIndexEdits),
        ChangeKind::Index,
    );
    m.take(
        geometry_keys(schema.label_type),
        restricted(r.allow_spatial_edits, Restriction::AllowSpatialEdits),
        ChangeKind::Geometry,
    );
    for name in writable_attributes(dl, schema) {
        m.take(&[name.as_str()], None, ChangeKind::Attribute);
    }
    let rejected = !m.rejected.is_empty() || !read_only_changed.is_empty();
    out.rejected.extend(
        m.rejected
            .into_iter()
            .map(|(change, attribute, reason)| rejection(input, id, change, attribute, reason)),
    );
    let mut applied = m.applied;
    let merged = Cow::Owned(Value::Object(m.merged));
    (
        follow_keyframe(merged, dl, input, &mut applied),
        applied,
        rejected,
    )
}

/// A frame label the backend hands back with a `keyframe` key takes its value (`true`, or
/// `null` where it is no keyframe), as FiftyOne's loader sets `keyframe` on every label it
/// merges when it imports keyframe marks; a label without the key keeps its own. A label
/// without a mark is not given a `null` one (they read the same). The change is applied as
/// `keyframe`, so it counts as an edit: it changes the dataset.
fn follow_keyframe<'v>(
    merged: Cow<'v, Value>,
    dl: &Value,
    input: &FieldInput<'_>,
    applied: &mut Vec<String>,
) -> Cow<'v, Value> {
    let Some(wanted) = dl.get("keyframe").filter(|_| input.frame.is_some()) else {
        return merged;
    };
    if merged.get("keyframe").unwrap_or(&Value::Null) == wanted {
        return merged;
    }
    let mut merged = merged.into_owned();
    if let Some(o) = merged.as_object_mut() {
        o.insert("keyframe".into(), wanted.clone());
        applied.push("keyframe".into());
    }
    Cow::Owned(merged)
}

/// A change of a label of this field and sample that is not merged.
fn rejection(
    input: &FieldInput<'_>,
    label_id: &LabelKey,
    change: ChangeKind,
    attribute: Option<String>,
    reason: Refusal,
) -> Rejection {
    Rejection {
        sample_id: input.sample_id.to_string(),
        frame: input.frame,
        label_id: label_id.to_string(),
        field: input.field.to_string(),
        change,
        attribute,
        reason,
    }
}

pub mod run;
pub mod unexpected;

#[cfg(test)]
mod rules_tests;
