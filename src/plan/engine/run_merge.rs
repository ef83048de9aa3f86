//! A whole run's merge, fed page by page as the backend downloads: every field of every
//! sample, plus unexpected labels and dest fields. Only what changes is kept, so memory
//! follows the changes and the page size, not the number of labels the backend holds.

use super::*;
use sha2::{Digest, Sha256};

/// Per-sample change lines kept for `plan --verbose` (the rest are counted).
pub(super) const MAX_DETAIL_LINES: usize = 1000;

/// A whole run's merge, computed (not yet written).
#[derive(Default)]
pub(super) struct RunMerge {
    pub(super) counts: IndexMap<String, FieldCounts>,
    pub(super) rejected: Vec<Rejection>,
    pub(super) conflicts: Vec<String>,
    /// Per sample and field, the label changes (for `plan --verbose`), at most
    /// [`MAX_DETAIL_LINES`].
    pub(super) changes: Vec<String>,
    /// Change lines beyond those kept.
    pub(super) more_changes: usize,
    pub(super) unexpected_errors: Vec<String>,
    /// (sample id, destination field, new value).
    pub(super) writes: Vec<(String, String, Option<Value>)>,
    /// Destination fields to declare (new fields).
    pub(super) declare: Vec<(String, LabelType)>,
    /// Baselines that differ from the record's: field → sample → labels.
    pub(super) baselines: IndexMap<String, IndexMap<String, Vec<UploadedLabel>>>,
    pub(super) new_ids: Vec<(String, String)>,
    /// A digest of everything downloaded, independent of page order.
    pub(super) digest: String,
}

impl RunMerge {
    /// Whether applying it changes the dataset (rejections count: they are reported).
    pub(super) fn changes_anything(&self) -> bool {
        self.counts
            .values()
            .any(|c| c.added + c.edited + c.deleted + c.rejected > 0)
    }
}

/// Merges a run's download page by page.
pub(super) struct RunMerger<'a> {
    ds: &'a Dataset,
    r: &'a RunRecord,
    load: crate::manifest::LoadSpec,
    seed: String,
    /// The samples of the downloaded tasks, in record order; those no page mentioned merge
    /// as having no labels in the backend.
    pending: IndexMap<&'a str, ()>,
    /// (sample id, digest of its download), for the order-independent run digest.
    digests: Vec<(String, String)>,
    /// Unexpected labels to keep: (sample id, field named after the type) → labels.
    kept: IndexMap<(String, String), Vec<Value>>,
    out: RunMerge,
}

impl<'a> RunMerger<'a> {
    /// A merge of the samples of `tasks` (record task ids).
    pub(super) fn new(ds: &'a Dataset, r: &'a RunRecord, d: &Desired, tasks: &[String]) -> Self {
        let dataset_id = ds
            .metadata()
            .get("_id")
            .and_then(ejson::oid_str)
            .unwrap_or(r.dataset.as_str())
            .to_string();
        let tasks: HashSet<&str> = tasks.iter().map(String::as_str).collect();
        let pending = r
            .tasks
            .iter()
            .filter(|t| tasks.contains(t.id.as_str()))
            .flat_map(|t| t.samples.iter().map(|s| (s.as_str(), ())))
            .collect();
        let mut out = RunMerge::default();
        for field in r.schema.fields.keys() {
            out.counts.insert(field.clone(), FieldCounts::default());
        }
        RunMerger {
            ds,
            r,
            load: d.loaded.run.load.clone().unwrap_or_default(),
            seed: format!("{dataset_id}/{}", r.key),
            pending,
            digests: Vec::new(),
            kept: IndexMap::new(),
            out,
        }
    }

    /// Merge one downloaded page (samples outside the downloaded tasks are ignored).
    pub(super) fn page(&mut self, page: Annotations) -> Result<(), EngineError> {
        for (sid, fields) in page {
            if self.pending.shift_remove(sid.as_str()).is_none() {
                continue;
            }
            let value = serde_json::to_value(&fields).unwrap_or_default();
            self.digests.push((sid.clone(), merge::digest(&value)));
            self.sample(&sid, &fields)?;
        }
        Ok(())
    }

    /// Finish: samples no page mentioned, unexpected labels kept, fields to declare.
    pub(super) fn finish(mut self) -> Result<RunMerge, EngineError> {
        let none = IndexMap::new();
        for sid in std::mem::take(&mut self.pending).into_keys() {
            self.sample(sid, &none)?;
        }
        self.keep_unexpected()?;
        self.digests.sort_unstable();
        let mut h = Sha256::new();
        for (sid, d) in &self.digests {
            h.update(sid.as_bytes());
            h.update(b"=");
            h.update(d.as_bytes());
            h.update(b"\n");
        }
        self.out.digest = h.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(self.out)
    }

    /// Merge every field of one sample.
    fn sample(
        &mut self,
        sid: &str,
        downloaded: &IndexMap<String, Vec<DownloadedLabel>>,
    ) -> Result<(), EngineError> {
        let (ds, r) = (self.ds, self.r);
        let id = ObjectId::parse(sid).map_err(|e| EngineError::Run(e.to_string()))?;
        let Some(sample) = ds.sample_by_id(id) else {
            return Ok(());
        };
        for (field, schema) in &r.schema.fields {
            let dest = match &self.load.dest_field {
                Some(DestField::One(f)) => f.clone(),
                Some(DestField::Map(m)) => m.get(field).cloned().unwrap_or_else(|| field.clone()),
                None => field.clone(),
            };
            let uploaded = r
                .uploaded
                .get(field)
                .and_then(|u| u.get(sid))
                .map_or(&[][..], Vec::as_slice);
            let o = merge::merge_field(&FieldInput {
                field,
                schema,
                sample_id: sid,
                current: sample.get(field),
                uploaded,
                downloaded: downloaded.get(field).map_or(&[][..], Vec::as_slice),
                id_map: &r.id_map,
                id_seed: self.seed.as_bytes(),
                conflicts: self.load.conflicts,
                unexpected: self.load.unexpected,
            });
            let out = &mut self.out;
            let counts = out.counts.entry(field.clone()).or_default();
            counts.added += o.counts.added;
            counts.edited += o.counts.edited;
            counts.deleted += o.counts.deleted;
            counts.rejected += o.counts.rejected;
            counts.unchanged += o.counts.unchanged;
            out.rejected.extend(o.rejected);
            if !o.changes.is_empty() {
                if out.changes.len() < MAX_DETAIL_LINES {
                    out.changes
                        .push(format!("sample {sid} {field}: {}", o.changes.join(" ")));
                } else {
                    out.more_changes += 1;
                }
            }
            out.conflicts.extend(o.conflicts);
            out.unexpected_errors.extend(o.unexpected_errors);
            if !o.unexpected.is_empty() {
                // FiftyOne keeps unexpected labels in a field named after their type.
                let target = schema.label_type.as_str().to_string();
                let existing = self.kept.entry((sid.to_string(), target)).or_default();
                existing.extend(o.unexpected);
            }
            out.new_ids.extend(o.new_ids);
            if o.baseline.as_slice() != uploaded {
                out.baselines
                    .entry(field.clone())
                    .or_default()
                    .insert(sid.to_string(), o.baseline);
            }
            let value = match (o.new_value, dest != *field) {
                (Some(v), _) => Some(v),
                // With a destination, unchanged labels are copied there too.
                (None, true) => Some(sample.get(field).cloned().filter(|v| !v.is_null())),
                (None, false) => None,
            };
            let value = if dest != *field {
                // The destination holds new labels (as in FiftyOne): ids derived from the
                // source ids, so they are unique and stable across merges.
                let seed = format!("{}/{dest}", self.seed);
                value.map(|v| v.map(|v| with_derived_ids(v, schema.label_type, &seed)))
            } else {
                value
            };
            if let Some(v) = value {
                if sample.get(&dest) != v.as_ref() {
                    if !ds.field_exists(&dest) && !out.declare.iter().any(|d| d.0 == dest) {
                        out.declare.push((dest.clone(), schema.label_type));
                    }
                    out.writes.push((sid.to_string(), dest, v));
                }
            }
        }
        Ok(())
    }

    /// Unexpected labels kept in fields named after their type.
    fn keep_unexpected(&mut self) -> Result<(), EngineError> {
        let (ds, r) = (self.ds, self.r);
        for ((sid, target), labels) in std::mem::take(&mut self.kept) {
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
                let out = &mut self.out;
                out.counts.entry(target.clone()).or_default().added += added;
                out.writes
                    .push((sid, target.clone(), merge::field_value(all, t)));
                if !ds.field_exists(&target) && !out.declare.iter().any(|d| d.0 == target) {
                    out.declare.push((target, t));
                }
            }
        }
        Ok(())
    }
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
