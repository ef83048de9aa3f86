//! The merge: downloaded annotations against what was uploaded and what the dataset holds now,
//! with restrictions applied. Pure: it computes the new field values, the counts and every
//! rejected change; the caller writes. Plan and apply run the same code, so a plan's counts are
//! exactly what apply does, and merging the same download twice changes nothing.

use crate::backend::DownloadedLabel;
use crate::dataset::ejson::ObjectId;
use crate::manifest::{Conflicts, LabelType};
use crate::plan::{FieldCounts, Rejection};
use crate::schema::ResolvedField;
use crate::state::UploadedLabel;
use indexmap::IndexMap;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// Keys of a label that are geometry, per label type.
fn geometry_keys(t: LabelType) -> &'static [&'static str] {
    match t {
        LabelType::Detections | LabelType::Instances => {
            &["bounding_box", "mask", "mask_path", "rotation"]
        }
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
    let Some(v) = value.filter(|v| !v.is_null()) else {
        return Vec::new();
    };
    match container(t) {
        (_, Some(key)) => v
            .get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        _ if t == LabelType::Scalar => vec![v.clone()],
        _ => vec![v.clone()],
    }
}

/// A field value holding `labels`; `None` for an empty single-label field.
pub fn field_value(labels: Vec<Value>, t: LabelType) -> Option<Value> {
    match container(t) {
        (cls, Some(key)) => Some(json!({"_cls": cls, key: labels})),
        _ => labels.into_iter().next(),
    }
}

/// A label's id.
pub fn label_id(label: &Value) -> Option<ObjectId> {
    label.get("_id").and_then(ObjectId::from_ejson)
}

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
            out.insert(k.into(), v.clone());
        }
    }
    for name in writable_attributes(label, field) {
        if let Some(v) = label.get(&name).filter(|v| !v.is_null()) {
            out.insert(format!("attr:{name}"), v.clone());
        }
    }
    out
}

fn writable_attributes(label: &Value, field: &ResolvedField) -> Vec<String> {
    let class = label
        .get("label")
        .and_then(Value::as_str)
        .unwrap_or_default();
    field
        .attributes
        .iter()
        .chain(field.class_attributes.get(class).into_iter().flatten())
        .filter(|(_, a)| !a.read_only)
        .map(|(n, _)| n.clone())
        .collect()
}

/// A stable digest of JSON (keys sorted at every level).
pub fn digest(v: &Value) -> String {
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
    let h = Sha256::digest(&bytes);
    h[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest of the managed part of a label, as recorded at upload.
pub fn label_digest(label: &Value, field: &ResolvedField) -> String {
    digest(&Value::Object(managed(label, field)))
}

/// Everything one field's merge needs for one sample.
pub struct FieldInput<'a> {
    pub field: &'a str,
    pub schema: &'a ResolvedField,
    pub sample_id: &'a str,
    /// The field's current value in the dataset (the source field, even with `dest_field`).
    pub current: Option<&'a Value>,
    pub uploaded: &'a [UploadedLabel],
    pub downloaded: &'a [DownloadedLabel],
    pub id_map: &'a IndexMap<String, String>,
    /// Parts that, with a backend object id, derive ids of labels created in the backend.
    pub id_seed: &'a [u8],
    pub conflicts: Conflicts,
}

/// One field's merge for one sample.
#[derive(Debug, Default)]
pub struct FieldOutcome {
    pub counts: FieldCounts,
    pub rejected: Vec<Rejection>,
    /// Labels changed both in the dataset and in the backend (with `conflicts: error`).
    pub conflicts: Vec<String>,
    /// The field's new value, when it changes.
    pub new_value: Option<Option<Value>>,
    /// What the backend now holds, as the baseline of the next merge.
    pub baseline: Vec<UploadedLabel>,
    /// Backend object id → our label id, for labels the backend could not carry ids for.
    pub new_ids: Vec<(String, String)>,
}

/// Merge one field of one sample.
pub fn merge_field(input: &FieldInput<'_>) -> FieldOutcome {
    let mut out = FieldOutcome::default();
    let t = input.schema.label_type;
    let r = input.schema.restrictions;
    let reject = |out: &mut FieldOutcome, label_id: &str, change: &str, reason: &str| {
        out.rejected.push(Rejection {
            sample_id: input.sample_id.to_string(),
            label_id: label_id.to_string(),
            field: input.field.to_string(),
            change: change.to_string(),
            reason: reason.to_string(),
        });
    };

    // Resolve every downloaded label to our id.
    let mut downloaded: IndexMap<String, Value> = IndexMap::new();
    for d in input.downloaded {
        let id = match (label_id(&d.label), input.id_map.get(&d.backend_id)) {
            // A scalar field holds one value, whatever the backend calls it.
            _ if t == LabelType::Scalar => "value".to_string(),
            (Some(id), _) => id.to_string(),
            (None, Some(id)) => id.clone(),
            (None, None) => {
                let id = ObjectId::derive(&[input.id_seed, d.backend_id.as_bytes()]).to_string();
                out.new_ids.push((d.backend_id.clone(), id.clone()));
                id
            }
        };
        let mut label = d.label.clone();
        if t != LabelType::Scalar {
            if let Some(o) = label.as_object_mut() {
                o.insert("_id".into(), json!({"$oid": id}));
            }
        }
        downloaded.insert(id, label);
    }
    out.baseline = downloaded
        .iter()
        .map(|(id, l)| UploadedLabel {
            id: id.clone(),
            digest: label_digest(l, input.schema),
        })
        .collect();

    let uploaded: IndexMap<&str, &str> = input
        .uploaded
        .iter()
        .map(|u| (u.id.as_str(), u.digest.as_str()))
        .collect();
    let current = labels_of(input.current, t);
    let mut result: Vec<Value> = Vec::with_capacity(current.len() + downloaded.len());
    let mut changed = false;

    for cur in &current {
        let cid = if t == LabelType::Scalar {
            Some("value".to_string())
        } else {
            label_id(cur).map(|i| i.to_string())
        };
        let Some(cid) = cid.filter(|c| uploaded.contains_key(c.as_str())) else {
            result.push(cur.clone()); // not managed by this run
            continue;
        };
        match downloaded.get(&cid) {
            None if r.allow_deletions => {
                out.counts.deleted += 1;
                changed = true;
            }
            None => {
                out.counts.rejected += 1;
                reject(&mut out, &cid, "delete", "allow_deletions=false");
                result.push(cur.clone());
            }
            Some(dl) => {
                let (merged, edited, rejected) =
                    merge_label(cur, dl, input, uploaded[cid.as_str()], &cid, &mut out);
                if edited {
                    out.counts.edited += 1;
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
    let present: Vec<String> = current
        .iter()
        .filter_map(|c| label_id(c).map(|i| i.to_string()))
        .collect();
    for (id, dl) in &downloaded {
        if uploaded.contains_key(id.as_str()) || present.contains(id) {
            continue;
        }
        let single = container(t).1.is_none();
        if !r.allow_additions {
            out.counts.rejected += 1;
            reject(&mut out, id, "add", "allow_additions=false");
        } else if single && !result.is_empty() {
            out.counts.rejected += 1;
            reject(
                &mut out,
                id,
                "add",
                "the field holds a single label and already has one",
            );
        } else {
            out.counts.added += 1;
            result.push(dl.clone());
            changed = true;
        }
    }
    if changed {
        out.new_value = Some(field_value(result, t));
    }
    out
}

/// One matched label being merged: takes allowed changes, records forbidden ones.
struct LabelMerge<'a> {
    cur: &'a Value,
    dl: &'a Value,
    merged: Map<String, Value>,
    edited: bool,
    rejected: Vec<(&'static str, &'static str)>,
}

impl LabelMerge<'_> {
    /// Take the backend's values of `keys` when any differs and the change is allowed.
    fn take(&mut self, keys: &[&str], allowed: bool, change: &'static str, reason: &'static str) {
        let get = |l: &Value, k: &str| l.get(k).filter(|v| !v.is_null()).cloned();
        if keys.iter().all(|k| get(self.cur, k) == get(self.dl, k)) {
            return;
        }
        if !allowed {
            self.rejected.push((change, reason));
            return;
        }
        for k in keys {
            let v = get(self.dl, k);
            if get(self.cur, k) != v {
                // An attribute missing from the download is written as null, as FiftyOne does.
                self.merged
                    .insert((*k).to_string(), v.unwrap_or(Value::Null));
                self.edited = true;
            }
        }
    }
}

/// Merge one matched label; returns (merged label, any change applied, any change rejected).
fn merge_label(
    cur: &Value,
    dl: &Value,
    input: &FieldInput<'_>,
    uploaded_digest: &str,
    id: &str,
    out: &mut FieldOutcome,
) -> (Value, bool, bool) {
    let schema = input.schema;
    if schema.label_type == LabelType::Scalar {
        return if cur == dl {
            (cur.clone(), false, false)
        } else {
            (dl.clone(), true, false)
        };
    }
    let cur_m = managed(cur, schema);
    let dl_m = managed(dl, schema);
    if cur_m == dl_m {
        return (cur.clone(), false, false);
    }
    let dataset_changed = digest(&Value::Object(cur_m.clone())) != uploaded_digest;
    let backend_changed = digest(&Value::Object(dl_m.clone())) != uploaded_digest;
    if dataset_changed && backend_changed {
        match input.conflicts {
            Conflicts::Error => {
                out.conflicts.push(format!(
                    "{} label {id} (sample {})",
                    input.field, input.sample_id
                ));
                return (cur.clone(), false, false);
            }
            Conflicts::Dataset => return (cur.clone(), false, false),
            Conflicts::Backend => {}
        }
    } else if !backend_changed {
        // Only the dataset changed since upload: annotators did not touch it.
        return (cur.clone(), false, false);
    }
    let r = schema.restrictions;
    let mut m = LabelMerge {
        cur,
        dl,
        merged: cur.as_object().cloned().unwrap_or_default(),
        edited: false,
        rejected: Vec::new(),
    };
    m.take(
        &["label"],
        r.allow_label_edits,
        "label",
        "allow_label_edits=false",
    );
    m.take(
        &["index"],
        r.allow_index_edits,
        "index",
        "allow_index_edits=false",
    );
    m.take(
        geometry_keys(schema.label_type),
        r.allow_spatial_edits,
        "geometry",
        "allow_spatial_edits=false",
    );
    for name in writable_attributes(dl, schema) {
        m.take(&[name.as_str()], true, "attribute", "");
    }
    let rejected = !m.rejected.is_empty();
    out.rejected
        .extend(m.rejected.into_iter().map(|(change, reason)| Rejection {
            sample_id: input.sample_id.to_string(),
            label_id: id.to_string(),
            field: input.field.to_string(),
            change: change.to_string(),
            reason: reason.to_string(),
        }));
    let merged = m.merged;
    let edited = m.edited;
    (Value::Object(merged), edited, rejected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Restrictions;

    fn schema(r: Restrictions) -> ResolvedField {
        ResolvedField {
            label_type: LabelType::Detections,
            existing: true,
            classes: vec!["car".into(), "person".into()],
            attributes: [(
                "color".to_string(),
                crate::schema::ResolvedAttribute {
                    attr_type: crate::manifest::AttributeType::Text,
                    values: vec![],
                    default: None,
                    read_only: false,
                    mutable: true,
                },
            )]
            .into(),
            class_attributes: IndexMap::new(),
            mask_targets: None,
            restrictions: r,
        }
    }

    fn det(id: &str, label: &str, x: f64) -> Value {
        json!({"_id": {"$oid": id}, "_cls": "Detection", "label": label, "bounding_box": [x, 0.1, 0.2, 0.2], "color": "red", "other": 1})
    }

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbb";

    fn run(r: Restrictions, current: &[Value], downloaded: Vec<DownloadedLabel>) -> FieldOutcome {
        let s = schema(r);
        let cur = field_value(current.to_vec(), LabelType::Detections);
        let uploaded: Vec<UploadedLabel> = current
            .iter()
            .map(|l| UploadedLabel {
                id: label_id(l).unwrap().to_string(),
                digest: label_digest(l, &s),
            })
            .collect();
        merge_field(&FieldInput {
            field: "gt",
            schema: &s,
            sample_id: "s1",
            current: cur.as_ref(),
            uploaded: &uploaded,
            downloaded: &downloaded,
            id_map: &IndexMap::new(),
            id_seed: b"seed",
            conflicts: Conflicts::Error,
        })
    }

    fn dl(label: Value, backend_id: &str) -> DownloadedLabel {
        DownloadedLabel {
            backend_id: backend_id.into(),
            label,
        }
    }

    #[test]
    fn a_download_equal_to_the_upload_changes_nothing() {
        let cur = [det(A, "car", 0.1), det(B, "person", 0.5)];
        let out = run(
            Restrictions::default(),
            &cur,
            cur.iter()
                .enumerate()
                .map(|(i, l)| dl(l.clone(), &i.to_string()))
                .collect(),
        );
        assert_eq!(
            out.counts,
            FieldCounts {
                unchanged: 2,
                ..Default::default()
            }
        );
        assert!(out.new_value.is_none());
    }

    #[test]
    fn edits_additions_and_deletions_apply_when_allowed() {
        let cur = [det(A, "car", 0.1), det(B, "person", 0.5)];
        let mut edited = det(A, "person", 0.3);
        edited["other"] = json!(99); // not managed: must not be copied
        let added =
            json!({"_cls": "Detection", "label": "car", "bounding_box": [0.0, 0.0, 0.1, 0.1]});
        let out = run(
            Restrictions::default(),
            &cur,
            vec![dl(edited, "1"), dl(added, "new-1")],
        );
        assert_eq!(
            out.counts,
            FieldCounts {
                added: 1,
                edited: 1,
                deleted: 1,
                ..Default::default()
            }
        );
        let value = out.new_value.unwrap().unwrap();
        let labels = value["detections"].as_array().unwrap();
        assert_eq!(labels.len(), 2);
        assert_eq!(labels[0]["label"], "person");
        assert_eq!(labels[0]["other"], 1);
        assert_eq!(
            labels[1]["_id"]["$oid"],
            ObjectId::derive(&[b"seed", b"new-1"]).to_string()
        );
    }

    #[test]
    fn forbidden_changes_are_rejected_and_reported() {
        let none = Restrictions {
            allow_additions: false,
            allow_deletions: false,
            allow_label_edits: false,
            allow_index_edits: false,
            allow_spatial_edits: false,
        };
        let cur = [det(A, "car", 0.1), det(B, "person", 0.5)];
        let mut edited = det(A, "person", 0.3);
        edited["color"] = json!("blue");
        let added =
            json!({"_cls": "Detection", "label": "car", "bounding_box": [0.0, 0.0, 0.1, 0.1]});
        let out = run(none, &cur, vec![dl(edited, "1"), dl(added, "new-1")]);
        // The attribute edit is always allowed; class and geometry are not.
        assert_eq!(
            out.counts,
            FieldCounts {
                edited: 1,
                rejected: 3,
                ..Default::default()
            }
        );
        let changes: Vec<&str> = out.rejected.iter().map(|r| r.change.as_str()).collect();
        assert_eq!(changes, vec!["label", "geometry", "delete", "add"]);
        let value = out.new_value.unwrap().unwrap();
        assert_eq!(value["detections"][0]["label"], "car");
        assert_eq!(value["detections"][0]["color"], "blue");
        assert_eq!(value["detections"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn merging_the_merged_result_again_is_a_no_op() {
        let cur = [det(A, "car", 0.1)];
        let added =
            json!({"_cls": "Detection", "label": "car", "bounding_box": [0.0, 0.0, 0.1, 0.1]});
        let download = vec![dl(det(A, "person", 0.1), "1"), dl(added, "new-1")];
        let first = run(Restrictions::default(), &cur, download.clone());
        let merged = first.new_value.clone().unwrap();
        let s = schema(Restrictions::default());
        let again = merge_field(&FieldInput {
            field: "gt",
            schema: &s,
            sample_id: "s1",
            current: merged.as_ref(),
            uploaded: &first.baseline,
            downloaded: &download,
            id_map: &IndexMap::new(),
            id_seed: b"seed",
            conflicts: Conflicts::Error,
        });
        assert!(again.new_value.is_none(), "{again:?}");
        assert_eq!(
            again.counts,
            FieldCounts {
                unchanged: 2,
                ..Default::default()
            }
        );
    }

    #[test]
    fn a_label_changed_on_both_sides_is_a_conflict() {
        let s = schema(Restrictions::default());
        let uploaded = vec![UploadedLabel {
            id: A.into(),
            digest: label_digest(&det(A, "car", 0.1), &s),
        }];
        let cur = field_value(vec![det(A, "car", 0.9)], LabelType::Detections);
        let download = vec![dl(det(A, "person", 0.1), "1")];
        let id_map = IndexMap::new();
        let input = |c| FieldInput {
            field: "gt",
            schema: &s,
            sample_id: "s1",
            current: cur.as_ref(),
            uploaded: &uploaded,
            downloaded: &download,
            id_map: &id_map,
            id_seed: b"seed",
            conflicts: c,
        };
        let out = merge_field(&input(Conflicts::Error));
        assert_eq!(out.conflicts.len(), 1);
        assert!(out.new_value.is_none());
        let out = merge_field(&input(Conflicts::Backend));
        assert_eq!(
            out.new_value.unwrap().unwrap()["detections"][0]["label"],
            "person"
        );
    }
}
