//! A whole run's merge, fed page by page as the backend downloads: every field of every
//! sample, plus unexpected labels and destination fields.
//!
//! Memory follows the changes and the page size, not the number of labels the backend
//! holds: each page is merged and dropped, samples are read without caching their parsed
//! documents, and a changed field keeps only its new and edited labels — the labels it keeps
//! unchanged are referenced by id and taken from the dataset again when the merge is written.

use super::{FieldInput, field_value, label_id, label_slice, labels_of, merge_field};
use crate::backend::{Annotations, DownloadedLabel, ImageSize, SampleAnnotations};
use crate::dataset::change::{Changes, Edit, FieldChange, Held, LabelEdits};
use crate::dataset::dir::{Dataset, DatasetError, Sample};
use crate::dataset::ejson::{self, ObjectId};
use crate::dataset::fields::FieldType;
use crate::dataset::labels::Object;
use crate::dataset::mask_path;
use crate::dataset::{FieldPath, FrameNumber, Level};
use crate::manifest::{DestField, LabelType, LoadSpec};
use crate::plan::{FieldCounts, Rejection, SampleChanges};
use crate::state::{Digest16, FrameLabels, LabelKey, RunRecord, TaskRecord, UploadedLabel};
use indexmap::IndexMap;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};

mod frames;
mod untouched;

/// Per-sample change lines kept for `plan --verbose` (the rest are counted).
pub const MAX_DETAIL_LINES: usize = 1000;

/// A merge that cannot be computed or written.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("sample id `{0}` in the run record is not an ObjectId")]
    BadSampleId(String),
    #[error("sample {0} disappeared from the dataset")]
    MissingSample(ObjectId),
    /// The backend lists samples its complete download did not return: their annotations
    /// are unknown, so nothing is merged.
    #[error(
        "the download is incomplete: the backend lists {} sample(s) of the run it did not return ({}{}); nothing was merged",
        .0.len(),
        .0.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
        if .0.len() > 5 { ", …" } else { "" }
    )]
    Incomplete(Vec<String>),
    /// A frame field's label that names no frame.
    #[error(
        "the backend returned a label of frame field `{field}` of sample {sample} without a frame (backend object {backend_id}); nothing was merged"
    )]
    NoFrame {
        sample: String,
        field: String,
        backend_id: String,
    },
    /// A label on a frame the download says it does not hand: the frame's other labels are
    /// unknown, so nothing is merged rather than reading them as deleted.
    #[error(
        "the backend returned a label on frame {frame} of sample {sample} ({field}, backend object {backend_id}), a frame its download does not hand; nothing was merged"
    )]
    UnhandedFrame {
        sample: String,
        frame: FrameNumber,
        field: String,
        backend_id: String,
    },
    /// A label of a track the download says it does not hand on that frame.
    #[error(
        "the backend returned a label of track {index} on frame {frame} of sample {sample} ({field}, backend object {backend_id}), a track its download does not hand there; nothing was merged"
    )]
    UnhandedTrack {
        sample: String,
        frame: FrameNumber,
        field: String,
        index: i64,
        backend_id: String,
    },
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(transparent)]
    MaskFile(#[from] crate::dataset::mask_path::MaskFileError),
}

/// One label of a changed list field.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// The base field's label with this id, unchanged.
    Same(ObjectId),
    /// A new or edited label, as JSON text.
    New(Box<str>),
}

/// A field's new value.
#[derive(Debug, Clone, PartialEq)]
pub enum NewValue {
    /// The whole value (single-label and scalar fields; `None` clears the field).
    Whole(Option<Value>),
    /// A label list, in order.
    List(Vec<Item>),
}

/// A change to one field of one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    pub sample: ObjectId,
    /// The video frame written, for a frame field.
    pub frame: Option<FrameNumber>,
    /// The field written.
    pub field: FieldPath,
    /// The field whose current labels `Item::Same` refers to.
    pub base: FieldPath,
    pub label_type: LabelType,
    pub value: NewValue,
    /// With a destination field: labels get ids derived from this seed and their own ids.
    pub derive_ids: Option<String>,
}

/// A recorded sample the backend no longer holds: drift, its labels kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingSample {
    pub sample: String,
    /// The record's task (batch) the sample was uploaded in: name and backend id.
    pub task: String,
    pub task_id: String,
}

/// A whole run's merge, computed (not yet written).
#[derive(Debug, Default)]
pub struct RunMerge {
    pub counts: IndexMap<FieldPath, FieldCounts>,
    pub rejected: Vec<Rejection>,
    /// The labels edited, property by property (at most [`MAX_DETAIL_LINES`]).
    pub edits: Vec<crate::plan::LabelEdit>,
    pub conflicts: Vec<super::Conflict>,
    /// Per sample and field, the label changes (for `plan --verbose`), at most
    /// [`MAX_DETAIL_LINES`].
    pub changes: Vec<SampleChanges>,
    /// Samples with changes beyond those kept.
    pub more_changes: usize,
    /// Labels outside the schema that fail the plan (`load.unexpected: error`).
    pub unexpected_errors: Vec<crate::plan::OutsideSchema>,
    /// Labels outside the schema that do not go into their field, with what happens to them.
    pub unexpected: Vec<crate::plan::UnexpectedLabel>,
    /// Labels set aside by `load.unexpected: return`, written to a file on apply.
    pub returned: Vec<super::unexpected::Returned>,
    pub writes: Vec<Write>,
    /// Fields to declare (new destination and unexpected-label fields).
    pub declare: Vec<(FieldPath, LabelType)>,
    /// Baselines that differ from the record's: field → sample → labels.
    pub baselines: IndexMap<FieldPath, IndexMap<String, Vec<UploadedLabel>>>,
    /// Frame baselines that differ from the record's: frame field → sample → frame →
    /// labels (only the merged frames: the others keep theirs).
    pub frame_baselines: IndexMap<FieldPath, IndexMap<String, FrameLabels>>,
    /// Backend object id → our label id, for labels the backend could not carry ids for.
    pub new_ids: Vec<(String, String)>,
    /// A digest of what the backend holds for the merged samples, independent of page order.
    pub digest: String,
    /// How many samples were merged.
    pub samples: usize,
    /// Recorded samples of the downloaded tasks that the backend no longer holds: unknown,
    /// so neither merged nor emptied.
    pub missing: Vec<MissingSample>,
    /// The backend's cursor after this download.
    pub cursor: Option<String>,
}

impl RunMerge {
    /// Whether applying it changes the dataset (rejections count: they are reported).
    pub fn changes_anything(&self) -> bool {
        self.counts
            .values()
            .any(|c| c.added + c.edited + c.deleted + c.rejected + c.unexpected > 0)
    }

    /// The merge as store operations on `ds` (see [`Changes`]): the fields to declare, and
    /// per written field its labels set, added and removed by id where the field holds a
    /// list of them already, else its whole new value.
    pub fn changes(&self, ds: &Dataset) -> Result<Changes, MergeError> {
        let mut out = Changes::default();
        for (field, t) in &self.declare {
            let ftype = match super::container(*t) {
                ("", _) => self
                    .writes
                    .iter()
                    .find(|w| &w.field == field)
                    .and_then(|w| match &w.value {
                        NewValue::Whole(v) => v.as_ref(),
                        NewValue::List(_) => None,
                    })
                    .and_then(FieldType::infer)
                    .unwrap_or(FieldType::Str),
                (cls, _) => FieldType::Label(cls.to_string()),
            };
            out.declare.push((field.clone(), ftype));
        }
        for w in &self.writes {
            let sample = ds
                .sample_by_id(w.sample)
                .ok_or(MergeError::MissingSample(w.sample))?;
            let edit = match by_id(w, sample) {
                Some(labels) => Edit::Labels(labels),
                None => Edit::Whole(whole(w, ds)?),
            };
            out.fields.push(FieldChange {
                sample: w.sample,
                frame: w.frame,
                field: w.field.clone(),
                edit,
            });
        }
        Ok(out)
    }

    /// Makes the merge in the in-memory dataset only ([`Self::changes`] applied to `ds`).
    pub fn write(&self, ds: &mut Dataset) -> Result<(), MergeError> {
        Ok(self.changes(ds)?.apply(ds)?)
    }

    /// Fold the merge into the run record: baselines and id map (the caller checkpoints).
    pub fn record(&mut self, record: &mut RunRecord) {
        for (field, per_sample) in std::mem::take(&mut self.baselines) {
            record.uploaded.entry(field).or_default().extend(per_sample);
        }
        // Only the merged frames change; a frame left with no label leaves the record.
        for (field, per_sample) in std::mem::take(&mut self.frame_baselines) {
            let recorded = record.uploaded_frames.entry(field).or_default();
            for (sid, frames) in per_sample {
                let video = recorded.entry(sid).or_default();
                for (f, labels) in frames {
                    match labels.is_empty() {
                        true => video.remove(&f),
                        false => video.insert(f, labels),
                    };
                }
            }
        }
        record.id_map.extend(std::mem::take(&mut self.new_ids));
    }
}

/// Merges a run's download page by page.
pub struct RunMerger<'a> {
    ds: &'a Dataset,
    r: &'a RunRecord,
    load: LoadSpec,
    seed: String,
    /// Per run field, where its merge goes.
    dests: Vec<FieldPath>,
    /// The samples of the downloaded tasks with their record task, in record order.
    wanted: Vec<(&'a str, &'a TaskRecord)>,
    /// Whether the download holds every sample (not only those changed since a cursor).
    complete: bool,
    /// The wanted samples no page has mentioned yet.
    unseen: HashSet<&'a str>,
    /// (sample id, digest of what the backend holds for it), for the order-independent run
    /// digest.
    digests: Vec<(String, Digest16)>,
    /// Labels of an unexpected type to keep: (sample id, frame, type of the field named
    /// after it) → labels.
    kept: IndexMap<(ObjectId, Option<FrameNumber>, LabelType), Vec<Value>>,
    /// How the backend holds a label, when it cannot hold every label exactly.
    as_held: Option<crate::backend::AsHeld>,
    out: RunMerge,
}

impl<'a> RunMerger<'a> {
    /// A merge of the samples of `tasks` (record task ids) into `ds`. A `complete` download
    /// holds every sample of the tasks; an incremental one only those changed since a cursor.
    pub fn new(
        ds: &'a Dataset,
        r: &'a RunRecord,
        load: &LoadSpec,
        tasks: &[String],
        complete: bool,
    ) -> Self {
        let dataset_id = ds
            .metadata()
            .get("_id")
            .and_then(ejson::oid_str)
            .unwrap_or(r.dataset.as_str())
            .to_string();
        let tasks: HashSet<&str> = tasks.iter().map(String::as_str).collect();
        let wanted: Vec<(&str, &TaskRecord)> = r
            .tasks
            .iter()
            .filter(|t| tasks.contains(t.id.as_str()))
            .flat_map(|t| t.samples.iter().map(move |s| (s.as_str(), t)))
            .collect();
        let mut out = RunMerge::default();
        let mut dests = Vec::new();
        for field in r.schema.fields.keys() {
            out.counts.insert(field.clone(), FieldCounts::default());
            dests.push(match &load.dest_field {
                Some(DestField::One(f)) => FieldPath::parse(f),
                Some(DestField::Map(m)) => m
                    .get(field.as_str())
                    .map_or_else(|| field.clone(), |f| FieldPath::parse(f)),
                None => field.clone(),
            });
        }
        RunMerger {
            ds,
            r,
            load: load.clone(),
            seed: format!("{dataset_id}/{}", r.key),
            dests,
            unseen: wanted.iter().map(|(s, _)| *s).collect(),
            wanted,
            complete,
            digests: Vec::new(),
            kept: IndexMap::new(),
            as_held: None,
            out,
        }
    }

    /// Compare dataset labels with their downloads as the backend holds them (see
    /// [`crate::backend::AsHeld`]).
    pub fn with_as_held(mut self, as_held: Option<crate::backend::AsHeld>) -> Self {
        self.as_held = as_held;
        self
    }

    /// Merge one downloaded page (samples outside the downloaded tasks are ignored).
    pub fn page(&mut self, page: Annotations) -> Result<(), MergeError> {
        for (sid, fields) in page {
            // Only wanted samples, each once.
            if self.unseen.remove(sid.as_str()) {
                self.sample(&sid, fields)?;
            }
        }
        Ok(())
    }

    /// Finish: account for the samples no page handed, keep unexpected labels, digest the
    /// run. `held` is what the backend says the downloaded tasks hold (see
    /// [`crate::backend::Downloaded::held`]).
    ///
    /// Deletion needs evidence: a sample no page handed is never merged as empty. If the
    /// backend does not hold it, it is missing (drift); if the backend holds it, a complete
    /// download that did not return it is an error, and an incremental one says it is
    /// unchanged.
    pub fn finish(mut self, held: Option<&HashSet<String>>) -> Result<RunMerge, MergeError> {
        let mut incomplete = Vec::new();
        for (sid, task) in std::mem::take(&mut self.wanted) {
            if !self.unseen.contains(sid) {
                continue;
            }
            match held.map(|h| h.contains(sid)) {
                Some(true) if self.complete => incomplete.push(sid.to_string()),
                Some(true) => {}
                // Without a listing, an incremental download says nothing of the others.
                None if !self.complete => {}
                Some(false) | None => self.out.missing.push(MissingSample {
                    sample: sid.to_string(),
                    task: task.name.clone(),
                    task_id: task.id.clone(),
                }),
            }
        }
        if !incomplete.is_empty() {
            return Err(MergeError::Incomplete(incomplete));
        }
        self.keep_unexpected();
        self.out.samples = self.digests.len();
        self.digests.sort_unstable();
        let mut h = Sha256::new();
        for (sid, d) in &self.digests {
            h.update(sid.as_bytes());
            h.update(d.0);
        }
        self.out.digest = super::first16(&h.finalize()).to_string();
        Ok(self.out)
    }

    /// Merge every field of one sample: its sample fields, then its frame fields frame by
    /// frame (see [`frames`]).
    fn sample(&mut self, sid: &str, downloaded: SampleAnnotations) -> Result<(), MergeError> {
        let (ds, r) = (self.ds, self.r);
        let id = ObjectId::parse(sid).map_err(|_| MergeError::BadSampleId(sid.to_string()))?;
        let Some(sample) = ds.sample_by_id(id) else {
            return Ok(());
        };
        // Only the run's sample fields, parsed for this sample alone (never cached).
        let keys: Vec<&str> = r
            .schema
            .fields
            .keys()
            .chain(&self.dests)
            .filter(|f| !f.is_frame())
            .map(FieldPath::name)
            .collect();
        let doc = sample.project(&keys);
        // What the backend holds for the sample, as the run digest sees it: the baselines.
        let mut held = Sha256::new();
        // A video's frame size is its frame fields' media size; a sample field of a video
        // has none (no backend converts geometry on one).
        let (size, frame_size) = (std::cell::OnceCell::new(), std::cell::OnceCell::new());
        let at = At {
            sid,
            id,
            frame: None,
            tracks: None,
            size: &size,
        };
        for (i, field) in r.schema.fields.keys().enumerate() {
            if field.is_frame() {
                continue;
            }
            // A field deleted from the dataset since upload gets the run's labels back, with
            // their ids, as FiftyOne's load_annotations recreates it: nothing is a deletion
            // made in the dataset then.
            let uploaded = r
                .uploaded
                .get(field)
                .and_then(|u| u.get(sid))
                .filter(|_| ds.field_exists(field))
                .map_or(&[][..], Vec::as_slice);
            let labels = downloaded
                .get(field.as_str())
                .map_or(&[][..], Vec::as_slice);
            self.field(&at, i, &doc, uploaded, labels, &mut held)?;
        }
        let at = At {
            size: &frame_size,
            ..at
        };
        self.frames(&at, downloaded, &mut held)?;
        self.digests
            .push((sid.to_string(), super::first16(&held.finalize())));
        Ok(())
    }

    /// Merge run field `i` at one place (a sample, or one frame of it): `doc` holds the
    /// field and its destination there, `uploaded` the baseline, `downloaded` what the
    /// backend holds there.
    fn field(
        &mut self,
        at: &At<'_>,
        i: usize,
        doc: &Object,
        uploaded: &[UploadedLabel],
        downloaded: &[DownloadedLabel],
        held: &mut Sha256,
    ) -> Result<(), MergeError> {
        let (ds, r) = (self.ds, self.r);
        let Some((field, schema)) = r.schema.fields.get_index(i) else {
            return Ok(());
        };
        let dest = self.dests[i].clone();
        let (sid, id) = (at.sid, at.id);
        // Masks kept in files are compared by their pixels, as uploaded.
        let list_key = super::container(schema.label_type).1;
        let on_disk = mask_path::inline_field(doc.get(field.name()), list_key, ds.root())?;
        let current = on_disk.as_ref().or(doc.get(field.name()));
        // Labels of tracks the download does not hand are merged as if absent, then put back.
        let untouched = at.tracks.and_then(|h| {
            untouched::Untouched::split(current, uploaded, downloaded, h, schema.label_type)
        });
        let (handed, handed_up) = match &untouched {
            Some(u) => (u.current.as_ref(), u.uploaded.as_slice()),
            None => (current, uploaded),
        };
        let as_held = |label: &Value| {
            let size = *at
                .size
                .get_or_init(|| media_size(ds, id, at.frame.is_some()));
            (self.as_held?)(schema, label, size?)
        };
        let o = merge_field(&FieldInput {
            field: field.as_str(),
            frame: at.frame,
            schema,
            sample_id: sid,
            current: handed,
            uploaded: handed_up,
            downloaded,
            id_map: &r.id_map,
            id_seed: self.seed.as_bytes(),
            conflicts: self.load.conflicts,
            unexpected: self.load.unexpected,
            as_held: self.as_held.map(|_| &as_held as &super::HeldFn<'_>),
        });
        let mut o = o;
        if let Some(u) = &untouched {
            o.baseline = u.baseline(std::mem::take(&mut o.baseline), uploaded);
            o.new_value = o.new_value.map(|v| u.value(v, current, schema.label_type));
        }
        let out = &mut self.out;
        let counts = out.counts.entry(field.clone()).or_default();
        counts.added += o.counts.added;
        counts.edited += o.counts.edited;
        counts.edits.add(&o.counts.edits);
        counts.deleted += o.counts.deleted;
        counts.rejected += o.counts.rejected;
        counts.unchanged += o.counts.unchanged;
        counts.unexpected += o.counts.unexpected;
        out.rejected.extend(o.rejected);
        let room = MAX_DETAIL_LINES.saturating_sub(out.edits.len());
        out.edits.extend(o.edits.into_iter().take(room));
        if !o.changes.is_empty() {
            if out.changes.len() < MAX_DETAIL_LINES {
                out.changes.push(SampleChanges {
                    sample_id: sid.to_string(),
                    frame: at.frame,
                    field: field.to_string(),
                    changes: o.changes,
                });
            } else {
                out.more_changes += 1;
            }
        }
        out.conflicts.extend(o.conflicts);
        out.unexpected_errors.extend(o.unexpected_errors);
        out.unexpected.extend(o.unexpected);
        out.returned.extend(o.returned);
        for (t, label) in o.kept {
            self.kept.entry((id, at.frame, t)).or_default().push(label);
        }
        let out = &mut self.out;
        out.new_ids.extend(o.new_ids);
        held.update(field.as_str().as_bytes());
        if let Some(f) = at.frame {
            held.update(f.get().to_be_bytes());
        }
        for b in &o.baseline {
            match b.id {
                LabelKey::Id(id) => held.update(id.bytes()),
                LabelKey::Value => held.update(b"value"),
            }
            held.update(b.digest.0);
        }
        held.update(b"\n");
        if o.baseline.as_slice() != uploaded {
            match at.frame {
                None => {
                    out.baselines
                        .entry(field.clone())
                        .or_default()
                        .insert(sid.to_string(), o.baseline);
                }
                Some(f) => {
                    out.frame_baselines
                        .entry(field.clone())
                        .or_default()
                        .entry(sid.to_string())
                        .or_default()
                        .insert(f, o.baseline);
                }
            }
        }
        let derived = dest != *field;
        let value = match (o.new_value, derived) {
            (Some(v), _) => v,
            // With a destination, unchanged labels are copied there too.
            (None, true) => current.cloned().filter(|v| !v.is_null()),
            (None, false) => return Ok(()),
        };
        // The destination holds new labels (as in FiftyOne): ids derived from the source
        // ids, so they are unique and stable across merges.
        let seed = derived.then(|| format!("{}/{dest}", self.seed));
        let t = schema.label_type;
        let derived_value = seed
            .as_ref()
            .map(|s| value.clone().map(|v| with_derived_ids(v, t, s)));
        let after = match &derived_value {
            Some(v) => v.as_ref(),
            None => value.as_ref(),
        };
        if doc.get(dest.name()) == after {
            return Ok(());
        }
        if !ds.field_exists(&dest) && !out.declare.iter().any(|d| d.0 == dest) {
            out.declare.push((dest.clone(), t));
        }
        out.writes.push(Write {
            sample: id,
            frame: at.frame,
            field: dest,
            base: field.clone(),
            label_type: t,
            value: shrink(value, current, t),
            derive_ids: seed,
        });
        Ok(())
    }

    /// Labels of an unexpected type, kept in fields named after their type (as FiftyOne's
    /// `keep`).
    fn keep_unexpected(&mut self) {
        let ds = self.ds;
        for ((id, frame, t), labels) in std::mem::take(&mut self.kept) {
            let Some(sample) = ds.sample_by_id(id) else {
                continue;
            };
            // A frame's labels go to the frame field of that name.
            let level = frame.map_or(Level::Sample, |_| Level::Frame);
            let target = FieldPath::at(level, t.as_str());
            // The field may be one this merge writes already (a field of the run of that
            // type): the labels join that write rather than overwrite it.
            let written = self
                .out
                .writes
                .iter()
                .position(|w| w.sample == id && w.frame == frame && w.field == target);
            let base = written.map_or(target.clone(), |i| self.out.writes[i].base.clone());
            let keys = [target.name(), base.name()];
            let doc = match frame {
                None => sample.project(&keys),
                Some(f) => ds
                    .frame(id, f)
                    .map_or_else(Default::default, |d| d.project(&keys)),
            };
            let current = match written {
                Some(i) => expand(&self.out.writes[i].value, doc.get(base.name()), t),
                None => doc.get(target.name()).cloned(),
            };
            let mut all = labels_of(current.as_ref(), t);
            let before = all.len();
            for l in labels {
                if !all.iter().any(|x| label_id(x) == label_id(&l)) {
                    all.push(l);
                }
            }
            let added = all.len() - before;
            if added == 0 {
                continue;
            }
            let out = &mut self.out;
            out.counts.entry(target.clone()).or_default().added += added;
            let value = shrink(field_value(all, t), doc.get(base.name()), t);
            match written {
                Some(i) => out.writes[i].value = value,
                None => out.writes.push(Write {
                    sample: id,
                    frame,
                    field: target.clone(),
                    base,
                    label_type: t,
                    value,
                    derive_ids: None,
                }),
            }
            if !ds.field_exists(&target) && !out.declare.iter().any(|d| d.0 == target) {
                out.declare.push((target, t));
            }
        }
    }
}

/// Where a field is merged: a sample, or one frame of a video sample.
#[derive(Debug, Clone, Copy)]
struct At<'s> {
    sid: &'s str,
    id: ObjectId,
    frame: Option<FrameNumber>,
    /// On a frame, the tracks the download hands there (`None`: every label).
    tracks: Option<&'s crate::backend::HandedTracks>,
    /// The media size, read once per sample and only when a label differs from its download.
    size: &'s std::cell::OnceCell<Option<ImageSize>>,
}

/// The size of a sample's media (a video's frame size for a frame), `None` when unknown.
fn media_size(ds: &Dataset, id: ObjectId, frame: bool) -> Option<ImageSize> {
    let (width, height) = match frame {
        true => ds.video_info(id).ok().map(|v| (v.width, v.height))?,
        false => ds.image_size(id).ok().map(|d| (d.width, d.height))?,
    };
    Some(ImageSize { width, height })
}

/// A new field value with the labels unchanged from `base` replaced by references.
fn shrink(value: Option<Value>, base: Option<&Value>, t: LabelType) -> NewValue {
    let Some(key) = super::container(t).1 else {
        return NewValue::Whole(value);
    };
    let Some(v) = value else {
        return NewValue::Whole(None);
    };
    let base: HashMap<ObjectId, &Value> = label_slice(base, t)
        .iter()
        .filter_map(|l| label_id(l).map(|id| (id, l)))
        .collect();
    match v.get(key).and_then(Value::as_array) {
        Some(labels) => NewValue::List(
            labels
                .iter()
                .map(|l| match label_id(l) {
                    Some(id) if base.get(&id) == Some(&l) => Item::Same(id),
                    // Compact JSON text: a tenth of the memory of a parsed label.
                    _ => Item::New(l.to_string().into_boxed_str()),
                })
                .collect(),
        ),
        None => NewValue::Whole(Some(v)),
    }
}

/// The full value of a shrunk one, taking referenced labels from `base`.
fn expand(value: &NewValue, base: Option<&Value>, t: LabelType) -> Option<Value> {
    match value {
        NewValue::Whole(v) => v.clone(),
        NewValue::List(items) => {
            let base: HashMap<ObjectId, &Value> = label_slice(base, t)
                .iter()
                .filter_map(|l| label_id(l).map(|id| (id, l)))
                .collect();
            let labels = items
                .iter()
                .filter_map(|i| match i {
                    Item::Same(id) => base.get(id).map(|l| Value::clone(l)),
                    // Serialized by `shrink` from a Value: it parses back.
                    Item::New(text) => serde_json::from_str(text).ok(),
                })
                .collect();
            field_value(labels, t)
        }
    }
}

/// A write's field value whole, as the dataset will hold it: referenced labels taken from
/// the base field, masks kept in files put back in files, destination ids derived.
fn whole(w: &Write, ds: &Dataset) -> Result<Option<Value>, MergeError> {
    let base = match w.frame {
        None => ds
            .sample_by_id(w.sample)
            .ok_or(MergeError::MissingSample(w.sample))?
            .project(&[w.base.name()]),
        Some(f) => ds
            .frame(w.sample, f)
            .map_or_else(Default::default, |d| d.project(&[w.base.name()])),
    };
    let mut value = expand(&w.value, base.get(w.base.name()), w.label_type);
    if let Some(v) = value.as_mut() {
        // A mask the dataset kept in a file goes back to a file.
        let list_key = super::container(w.label_type).1;
        let (base, root) = (base.get(w.base.name()), ds.root());
        mask_path::store_field(v, base, list_key, root, w.field.as_str())?;
    }
    Ok(match (&w.derive_ids, value) {
        (Some(seed), Some(v)) => Some(with_derived_ids(v, w.label_type, seed)),
        (_, v) => v,
    })
}

/// A sample field's list write as label edits by id, when the field holds the list already
/// and the new list keeps its labels in their order with the new ones after them (as the
/// merge writes it); `None` when the write must be whole (a new field, another shape, a
/// destination field, masks kept in files, a frame).
fn by_id(w: &Write, sample: &Sample) -> Option<LabelEdits> {
    let NewValue::List(items) = &w.value else {
        return None;
    };
    let (cls, Some(key)) = super::container(w.label_type) else {
        return None;
    };
    if w.frame.is_some() || w.derive_ids.is_some() || w.base != w.field {
        return None;
    }
    let held = Held::of(sample, w.field.name(), cls, key).filter(|h| !h.mask_files)?;
    let position: HashMap<ObjectId, usize> = held
        .ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, i))
        .collect();
    if position.len() != held.ids.len() {
        return None;
    }
    let mut edits = LabelEdits {
        key,
        set: Vec::new(),
        add: Vec::new(),
        remove: Vec::new(),
    };
    let mut kept = vec![false; held.ids.len()];
    let mut next = 0;
    for item in items {
        let (id, label) = match item {
            Item::Same(id) => (*id, None),
            Item::New(text) => {
                let label: Value = serde_json::from_str(text).ok()?;
                (label_id(&label)?, Some(label))
            }
        };
        match (position.get(&id), label) {
            // A held label, in the held order, before any new one.
            (Some(&i), label) if i >= next && edits.add.is_empty() => {
                kept[i] = true;
                next = i + 1;
                edits.set.extend(label);
            }
            (None, Some(label)) => edits.add.push(label),
            _ => return None,
        }
    }
    edits.remove = held
        .ids
        .iter()
        .zip(kept)
        .filter(|(_, k)| !k)
        .map(|(id, _)| *id)
        .collect();
    Some(edits)
}

/// A field value whose labels get ids derived from `seed` and their own ids.
fn with_derived_ids(value: Value, t: LabelType, seed: &str) -> Value {
    let labels = labels_of(Some(&value), t)
        .into_iter()
        .map(|mut l| {
            if let (Some(id), Some(o)) = (label_id(&l), l.as_object_mut()) {
                let derived = ObjectId::derive(&[seed.as_bytes(), id.to_string().as_bytes()]);
                o.insert("_id".into(), derived.to_ejson());
            }
            l
        })
        .collect();
    field_value(labels, t).unwrap_or(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Unexpected;
    use crate::schema::ResolvedField;
    use crate::state::TaskRecord;
    use proptest::prelude::*;
    use serde_json::json;

    fn det(id: &str, label: &str) -> Value {
        json!({"_id": {"$oid": id}, "_cls": "Detection", "label": label})
    }

    #[test]
    fn shrunk_values_expand_to_themselves() {
        let a = "aaaaaaaaaaaaaaaaaaaaaaaa";
        let b = "bbbbbbbbbbbbbbbbbbbbbbbb";
        let c = "cccccccccccccccccccccccc";
        let base = field_value(vec![det(a, "car"), det(b, "car")], LabelType::Detections);
        // b edited, a kept, c added.
        let new = field_value(
            vec![det(b, "bus"), det(a, "car"), det(c, "person")],
            LabelType::Detections,
        );
        let shrunk = shrink(new.clone(), base.as_ref(), LabelType::Detections);
        let NewValue::List(items) = &shrunk else {
            panic!("a list field shrinks to items: {shrunk:?}");
        };
        assert_eq!(items[1], Item::Same(ObjectId::parse(a).unwrap()));
        assert!(matches!(items[0], Item::New(_)));
        assert_eq!(expand(&shrunk, base.as_ref(), LabelType::Detections), new);
        // Single-label values stay whole.
        let one = Some(det(a, "car"));
        assert_eq!(
            shrink(one.clone(), None, LabelType::Classification),
            NewValue::Whole(one)
        );
    }

    const SAMPLES: usize = 6;

    fn label_id_of(sample: usize, j: usize) -> String {
        ObjectId::derive(&[b"l", &sample.to_be_bytes(), &j.to_be_bytes()]).to_string()
    }

    /// Six samples with three `car` detections each, uploaded in two tasks of three.
    fn world() -> (Dataset, RunRecord) {
        let field = ResolvedField::new(LabelType::Detections, vec!["car".into(), "bus".into()]);
        let mut r = RunRecord::new("d", "k", "b", "now", "lineage".into());
        r.schema.fields.insert("gt".into(), field.clone());
        let mut samples = Vec::new();
        let mut uploaded = IndexMap::new();
        for i in 0..SAMPLES {
            let labels: Vec<Value> = (0..3).map(|j| det(&label_id_of(i, j), "car")).collect();
            let sid = ObjectId::derive(&[b"s", &i.to_be_bytes()]);
            uploaded.insert(
                sid.to_string(),
                labels
                    .iter()
                    .map(|l| UploadedLabel {
                        id: LabelKey::Id(label_id(l).unwrap()),
                        digest: super::super::label_digest(l, &field),
                    })
                    .collect(),
            );
            r.samples.push(sid.to_string());
            let doc = json!({"_id": sid.to_ejson(), "filepath": format!("/d/{i}.jpg"), "tags": [],
                             "gt": {"_cls": "Detections", "detections": labels}});
            samples.push(doc.as_object().unwrap().clone());
        }
        r.uploaded.insert("gt".into(), uploaded);
        for (t, chunk) in r.samples.clone().chunks(3).enumerate() {
            r.tasks.push(TaskRecord {
                id: format!("t{t}"),
                name: format!("batch-{t}"),
                batch: t as u32,
                samples: chunk.to_vec(),
                status: None,
                notes: None,
            });
        }
        let fields = vec![FieldType::Label("Detections".into()).field_doc("gt")];
        let meta = json!({"name": "d", "version": "1.22.1", "media_type": "image", "sample_fields": fields});
        let ds = Dataset::from_docs(
            "/nonexistent",
            meta.as_object().unwrap().clone(),
            samples,
            None,
        )
        .unwrap();
        (ds, r)
    }

    /// What annotators did to sample i: 0 nothing, 1 relabel, 2 delete one, 3 add one, 4 add
    /// one of a class outside the schema.
    fn download(
        r: &RunRecord,
        edits: &[u8],
    ) -> Vec<(String, IndexMap<String, Vec<DownloadedLabel>>)> {
        r.samples
            .iter()
            .enumerate()
            .map(|(i, sid)| {
                let mut labels: Vec<Value> =
                    (0..3).map(|j| det(&label_id_of(i, j), "car")).collect();
                match edits[i] {
                    1 => labels[0]["label"] = json!("bus"),
                    2 => {
                        labels.pop();
                    }
                    3 => labels.push(json!({"_cls": "Detection", "label": "bus"})),
                    4 => labels.push(json!({"_cls": "Detection", "label": "truck"})),
                    _ => {}
                }
                let dl = labels
                    .into_iter()
                    .enumerate()
                    .map(|(j, label)| DownloadedLabel::new(format!("{i}-{j}"), label))
                    .collect();
                (sid.clone(), IndexMap::from([("gt".to_string(), dl)]))
            })
            .collect()
    }

    fn merge_pages(
        ds: &Dataset,
        r: &RunRecord,
        pages: Vec<Annotations>,
        load: &LoadSpec,
    ) -> RunMerge {
        let mut m = RunMerger::new(ds, r, load, &["t0".into(), "t1".into()], true);
        for p in pages {
            m.page(p).unwrap();
        }
        m.finish(None).unwrap()
    }

    proptest! {
        #[test]
        fn pages_and_their_order_never_change_the_merge(
            edits in proptest::collection::vec(0u8..5, SAMPLES),
            cuts in proptest::collection::vec(any::<bool>(), SAMPLES),
            dropped in 0usize..=SAMPLES,
            reverse in any::<bool>(),
        ) {
            let (ds, r) = world();
            let load = LoadSpec { unexpected: Unexpected::Keep, ..LoadSpec::default() };
            let mut all = download(&r, &edits);
            // A sample the backend no longer mentions is missing: neither merged nor emptied.
            if dropped < SAMPLES {
                all.remove(dropped);
            }
            let whole = merge_pages(&ds, &r, vec![all.iter().cloned().map(|(s, f)| (s, f.into())).collect()], &load);
            let mut pages: Vec<Annotations> = vec![Annotations::new()];
            for (i, (sid, fields)) in all.into_iter().enumerate() {
                pages.last_mut().unwrap().insert(sid, fields.into());
                if cuts[i] {
                    pages.push(Annotations::new());
                }
            }
            if reverse {
                pages.reverse();
            }
            let paged = merge_pages(&ds, &r, pages, &load);
            prop_assert_eq!(&paged.counts, &whole.counts);
            prop_assert_eq!(&paged.digest, &whole.digest);
            prop_assert_eq!(paged.baselines.len(), whole.baselines.len());
            let mut a = paged.writes.clone();
            let mut b = whole.writes.clone();
            a.sort_by_key(|w| (w.sample, w.field.clone()));
            b.sort_by_key(|w| (w.sample, w.field.clone()));
            prop_assert_eq!(a, b);
        }

        #[test]
        fn samples_missing_from_a_download_never_lose_labels(
            edits in proptest::collection::vec(0u8..5, SAMPLES),
            returned in proptest::collection::vec(any::<bool>(), SAMPLES),
            gone in proptest::collection::vec(any::<bool>(), SAMPLES),
            cuts in proptest::collection::vec(any::<bool>(), SAMPLES),
            listed in any::<bool>(),
            complete in any::<bool>(),
        ) {
            let (ds, r) = world();
            let load = LoadSpec { unexpected: Unexpected::Keep, ..LoadSpec::default() };
            let all = download(&r, &edits);
            let full = merge_pages(&ds, &r, vec![all.iter().cloned().map(|(s, f)| (s, f.into())).collect()], &load);
            // Pages (or samples) lost on the way: `returned` says which samples arrive.
            let mut pages: Vec<Annotations> = vec![Annotations::new()];
            for (i, (sid, fields)) in all.into_iter().enumerate() {
                if returned[i] {
                    pages.last_mut().unwrap().insert(sid, fields.into());
                }
                if cuts[i] {
                    pages.push(Annotations::new());
                }
            }
            let lost: Vec<String> = (0..SAMPLES)
                .filter(|&i| !returned[i])
                .map(|i| r.samples[i].clone())
                .collect();
            // What the backend lists (when it lists): every sample but the lost ones it no
            // longer holds.
            let held: HashSet<String> = (0..SAMPLES)
                .filter(|&i| returned[i] || !gone[i])
                .map(|i| r.samples[i].clone())
                .collect();
            let held_lost: Vec<String> = lost.iter().filter(|s| held.contains(*s)).cloned().collect();
            let mut m = RunMerger::new(&ds, &r, &load, &["t0".into(), "t1".into()], complete);
            for p in pages {
                m.page(p).unwrap();
            }
            match m.finish(listed.then_some(&held)) {
                Err(MergeError::Incomplete(samples)) => {
                    prop_assert!(listed && complete);
                    prop_assert_eq!(samples, held_lost);
                }
                Err(e) => prop_assert!(false, "unexpected error {}", e),
                Ok(out) => {
                    prop_assert!(!(listed && complete && !held_lost.is_empty()));
                    // Nothing of a lost sample is written or re-baselined.
                    for w in &out.writes {
                        prop_assert!(!lost.contains(&w.sample.to_string()), "{:?}", w);
                    }
                    for per_sample in out.baselines.values() {
                        prop_assert!(per_sample.keys().all(|s| !lost.contains(s)));
                    }
                    // Lost samples are drift when the backend does not hold them (or, with
                    // a complete download and no listing, cannot be told apart).
                    let missing: Vec<String> = out.missing.iter().map(|m| m.sample.clone()).collect();
                    let expected: Vec<String> = match (listed, complete) {
                        (true, _) => lost.iter().filter(|s| !held.contains(*s)).cloned().collect(),
                        (false, true) => lost.clone(),
                        (false, false) => Vec::new(),
                    };
                    prop_assert_eq!(missing, expected);
                    // Only labels absent from returned samples are deleted, exactly as the
                    // complete download deletes them.
                    let deleted = (0..SAMPLES).filter(|&i| returned[i] && edits[i] == 2).count();
                    prop_assert_eq!(out.counts["gt"].deleted, deleted);
                    let mut a = out.writes.clone();
                    let mut b: Vec<Write> = full
                        .writes
                        .iter()
                        .filter(|w| !lost.contains(&w.sample.to_string()))
                        .cloned()
                        .collect();
                    a.sort_by_key(|w| (w.sample, w.field.clone()));
                    b.sort_by_key(|w| (w.sample, w.field.clone()));
                    prop_assert_eq!(a, b);
                }
            }
        }

        #[test]
        fn a_written_merge_merges_again_as_nothing(edits in proptest::collection::vec(0u8..5, SAMPLES)) {
            let (mut ds, mut r) = world();
            let load = LoadSpec { unexpected: Unexpected::Keep, ..LoadSpec::default() };
            let page: Annotations = download(&r, &edits).into_iter().map(|(s, f)| (s, f.into())).collect();
            let mut first = merge_pages(&ds, &r, vec![page.clone()], &load);
            first.write(&mut ds).unwrap();
            first.record(&mut r);
            let again = merge_pages(&ds, &r, vec![page], &load);
            prop_assert!(again.writes.is_empty(), "{:?}", again.writes);
            prop_assert!(!again.changes_anything(), "{:?}", again.counts);
            prop_assert_eq!(again.digest, first.digest);
        }
    }
}
