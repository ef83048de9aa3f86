//! A whole run's merge: every field of every sample, plus unexpected labels and dest fields.

use super::*;

/// A whole run's merge, computed (not yet written).
pub(super) struct RunMerge {
    pub(super) counts: IndexMap<String, FieldCounts>,
    pub(super) rejected: Vec<Rejection>,
    pub(super) conflicts: Vec<String>,
    /// Per sample and field, the label changes (for `plan --verbose`).
    pub(super) changes: Vec<String>,
    pub(super) unexpected_errors: Vec<String>,
    /// Unexpected labels to keep: (sample id, field named after the type) → labels.
    pub(super) kept: IndexMap<(String, String), Vec<Value>>,
    /// (sample id, destination field, new value).
    pub(super) writes: Vec<(String, String, Option<Value>)>,
    /// Destination fields to declare (new fields).
    pub(super) declare: Vec<(String, LabelType)>,
    pub(super) baselines: IndexMap<String, IndexMap<String, Vec<UploadedLabel>>>,
    pub(super) new_ids: Vec<(String, String)>,
}

pub(super) fn merge_run(
    ds: &Dataset,
    r: &RunRecord,
    d: &Desired,
    annotations: &Annotations,
) -> Result<RunMerge, EngineError> {
    let load = d.loaded.run.load.clone().unwrap_or_default();
    let dataset_id = ds
        .metadata()
        .get("_id")
        .and_then(ejson::oid_str)
        .unwrap_or(r.dataset.as_str())
        .to_string();
    let seed = format!("{dataset_id}/{}", r.key);
    let mut out = RunMerge {
        counts: IndexMap::new(),
        rejected: Vec::new(),
        conflicts: Vec::new(),
        changes: Vec::new(),
        unexpected_errors: Vec::new(),
        kept: IndexMap::new(),
        writes: Vec::new(),
        declare: Vec::new(),
        baselines: IndexMap::new(),
        new_ids: Vec::new(),
    };
    let empty_dl: Vec<DownloadedLabel> = Vec::new();
    let empty_up: Vec<UploadedLabel> = Vec::new();
    for (field, schema) in &r.schema.fields {
        let dest = match &load.dest_field {
            Some(DestField::One(f)) => f.clone(),
            Some(DestField::Map(m)) => m.get(field).cloned().unwrap_or_else(|| field.clone()),
            None => field.clone(),
        };
        let counts = out.counts.entry(field.clone()).or_default();
        for sid in &r.samples {
            let id = ObjectId::parse(sid).map_err(|e| EngineError::Run(e.to_string()))?;
            let Some(sample) = ds.sample_by_id(id) else {
                continue;
            };
            let downloaded = annotations
                .get(sid)
                .and_then(|f| f.get(field))
                .unwrap_or(&empty_dl);
            let uploaded = r
                .uploaded
                .get(field)
                .and_then(|u| u.get(sid))
                .unwrap_or(&empty_up);
            let o = merge::merge_field(&FieldInput {
                field,
                schema,
                sample_id: sid,
                current: sample.get(field),
                uploaded,
                downloaded,
                id_map: &r.id_map,
                id_seed: seed.as_bytes(),
                conflicts: load.conflicts,
                unexpected: load.unexpected,
            });
            counts.added += o.counts.added;
            counts.edited += o.counts.edited;
            counts.deleted += o.counts.deleted;
            counts.rejected += o.counts.rejected;
            counts.unchanged += o.counts.unchanged;
            out.rejected.extend(o.rejected);
            if !o.changes.is_empty() {
                out.changes
                    .push(format!("sample {sid} {field}: {}", o.changes.join(" ")));
            }
            out.conflicts.extend(o.conflicts);
            out.unexpected_errors.extend(o.unexpected_errors);
            if !o.unexpected.is_empty() {
                // FiftyOne keeps unexpected labels in a field named after their type.
                let target = schema.label_type.as_str().to_string();
                let existing = out.kept.entry((sid.clone(), target)).or_default();
                existing.extend(o.unexpected);
            }
            out.new_ids.extend(o.new_ids);
            out.baselines
                .entry(field.clone())
                .or_default()
                .insert(sid.clone(), o.baseline);
            let value = match (o.new_value, dest != *field) {
                (Some(v), _) => Some(v),
                // With a destination, unchanged labels are copied there too.
                (None, true) => Some(sample.get(field).cloned().filter(|v| !v.is_null())),
                (None, false) => None,
            };
            let value = if dest != *field {
                // The destination holds new labels (as in FiftyOne): ids derived from the
                // source ids, so they are unique and stable across merges.
                value.map(|v| {
                    v.map(|v| with_derived_ids(v, schema.label_type, &format!("{seed}/{dest}")))
                })
            } else {
                value
            };
            if let Some(v) = value {
                if sample.get(&dest) != v.as_ref() {
                    out.writes.push((sid.clone(), dest.clone(), v));
                }
            }
        }
        if !ds.field_exists(&dest) && out.writes.iter().any(|w| w.1 == dest) {
            out.declare.push((dest.clone(), schema.label_type));
        }
    }
    for ((sid, target), labels) in std::mem::take(&mut out.kept) {
        let id = ObjectId::parse(&sid).map_err(|e| EngineError::Run(e.to_string()))?;
        let Some(sample) = ds.sample_by_id(id) else {
            continue;
        };
        let t = r
            .schema
            .fields
            .values()
            .map(|f| f.label_type)
            .find(|t| t.as_str() == target)
            .unwrap_or(LabelType::Detections);
        let mut all = merge::labels_of(sample.get(&target), t);
        let before = all.len();
        for l in labels {
            if !all
                .iter()
                .any(|x| merge::label_id(x) == merge::label_id(&l))
            {
                all.push(l);
            }
        }
        let added = all.len() - before;
        if added > 0 {
            out.counts.entry(target.clone()).or_default().added += added;
            out.writes
                .push((sid, target.clone(), merge::field_value(all, t)));
            if !ds.field_exists(&target) && !out.declare.iter().any(|d| d.0 == target) {
                out.declare.push((target, t));
            }
        }
    }
    Ok(out)
}

/// A field value whose labels get ids derived from `seed` and their own ids.
fn with_derived_ids(value: Value, t: LabelType, seed: &str) -> Value {
    let labels = merge::labels_of(Some(&value), t)
        .into_iter()
        .map(|mut l| {
            if let (Some(id), Some(o)) = (merge::label_id(&l), l.as_object_mut()) {
                let derived = ObjectId::derive(&[seed.as_bytes(), id.to_string().as_bytes()]);
                o.insert("_id".into(), derived.to_ejson());
            }
            l
        })
        .collect();
    merge::field_value(labels, t).unwrap_or(value)
}
