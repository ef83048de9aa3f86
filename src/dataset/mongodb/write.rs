//! Writing a merge's store operations (see [`Changes`]) to a live dataset: new fields declared
//! first, then per sample its labels set, added and removed by id (or whole values), every
//! update a compare-and-swap on `last_modified_at`, each statement built once as raw BSON and
//! sent in bulk `update` commands.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use ::mongodb::bson::{Bson, DateTime, Document, RawArrayBuf, RawDocumentBuf, doc};
use serde_json::Value;

use super::frames::TouchedFrames;
use super::{Live, LiveError};
use crate::dataset::FieldPath;
use crate::dataset::Level;
use crate::dataset::change::{Changes, Edit, LabelEdits, label_id};
use crate::dataset::dir::Dataset;
use crate::dataset::ejson::{IdMap, ObjectId};

/// Update statements per `update` command, and their size bound (a command is at most 16 MB).
pub(super) const BATCH: usize = 1000;
const BATCH_BYTES: usize = 8 << 20;
/// Commands in flight at once, each on its own connection: mongod applies them in parallel
/// (every document is in one command only, and the compare-and-swap keeps them safe from
/// other writers).
const CONNECTIONS: usize = 2;

/// What a write sent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Written {
    /// Samples updated.
    pub samples: usize,
    /// Update statements sent.
    pub updates: usize,
    /// Fields declared in the dataset document.
    pub declared: usize,
    /// Frames updated or inserted.
    pub frames: usize,
}

/// The sample field names a `datasets` document declares.
/// The fields a `datasets` document declares, as paths (`frames.NAME` for frame fields).
pub(super) fn declared_names(meta: &Document) -> Vec<String> {
    [Level::Sample, Level::Frame]
        .into_iter()
        .flat_map(|level| {
            meta.get_array(declarations(level))
                .into_iter()
                .flatten()
                .filter_map(move |f| {
                    let name = f.as_document()?.get_str("name").ok()?;
                    Some(FieldPath::at(level, name).to_string())
                })
        })
        .collect()
}

/// Where a dataset document declares the fields of `level`.
fn declarations(level: Level) -> &'static str {
    match level {
        Level::Sample => "sample_fields",
        Level::Frame => "frame_fields",
    }
}

/// One sample's changes, split the way MongoDB accepts them (a path may not be both pushed
/// and pulled in one update).
#[derive(Default)]
pub(super) struct SampleUpdate {
    set: Document,
    array_filters: Vec<Document>,
    pull: Document,
    push: Document,
}

impl SampleUpdate {
    fn is_empty(&self) -> bool {
        self.set.is_empty() && self.pull.is_empty() && self.push.is_empty()
    }

    /// Adds label edits of list field `name`: each label set in place by its id (an array
    /// filter), the removed ones pulled by id, the new ones pushed.
    fn label_edits(&mut self, name: &str, edits: &LabelEdits) -> Result<(), String> {
        let path = format!("{name}.{}", edits.key);
        for label in &edits.set {
            let id = label_id(label).ok_or_else(|| format!("a label of `{name}` has no _id"))?;
            let var = format!("l{}", self.array_filters.len());
            self.set.insert(format!("{path}.$[{var}]"), bson_of(label)?);
            self.array_filters.push(doc! { format!("{var}._id"): id });
        }
        if !edits.remove.is_empty() {
            let ids: Vec<Bson> = edits.remove.iter().copied().map(Bson::from).collect();
            self.pull.insert(path.clone(), doc! {"_id": {"$in": ids}});
        }
        if !edits.add.is_empty() {
            let docs = edits
                .add
                .iter()
                .map(bson_of)
                .collect::<Result<Vec<_>, _>>()?;
            self.push.insert(path, doc! {"$each": docs});
        }
        Ok(())
    }

    /// Adds `$set` of field `name` to `value` (null when `None`).
    pub(super) fn set_whole(&mut self, name: &str, value: Option<&Value>) -> Result<(), String> {
        let value = match value.filter(|v| !v.is_null()) {
            Some(v) => bson_of(v)?,
            None => Bson::Null,
        };
        self.set.insert(name, value);
        Ok(())
    }

    /// Document `id`'s update statements as raw BSON: sets (and edits by id), then pulls,
    /// then pushes, each setting `last_modified_at` to `stamp` and guarded by the one the
    /// previous left (the first by `guard`).
    fn statements(self, id: ObjectId, mut guard: Bson, stamp: DateTime) -> Result<Group, String> {
        let mut raw = Vec::new();
        let mut add = |op: &str, body: Document, filters: Vec<Document>| {
            let (mut set, other) = match op {
                "$set" => (body, None),
                _ => (Document::new(), Some(body)),
            };
            set.insert("last_modified_at", stamp);
            let mut u = doc! {"$set": set};
            if let Some(body) = other {
                u.insert(op, body);
            }
            let mut s = doc! {"q": {"_id": id, "last_modified_at": guard.clone()}, "u": u};
            if !filters.is_empty() {
                s.insert("arrayFilters", filters);
            }
            raw.push(RawDocumentBuf::from_document(&s).map_err(|e| e.to_string())?);
            guard = Bson::DateTime(stamp);
            Ok::<(), String>(())
        };
        if !self.set.is_empty() {
            add("$set", self.set, self.array_filters)?;
        }
        if !self.pull.is_empty() {
            add("$pull", self.pull, Vec::new())?;
        }
        if !self.push.is_empty() {
            add("$push", self.push, Vec::new())?;
        }
        Ok(Group { id, raw })
    }
}

/// A JSON value (FiftyOne's Extended JSON) as BSON: `$oid`, `$date`, `$binary` become their
/// types, integers Int32 (Int64 beyond), other numbers doubles — as pymongo encodes Python
/// values.
fn bson_of(v: &Value) -> Result<Bson, String> {
    Bson::try_from(v.clone()).map_err(|e| format!("cannot convert a value to BSON: {e}"))
}

/// A document's update statements, each serialized once.
pub(super) struct Group {
    id: ObjectId,
    raw: Vec<RawDocumentBuf>,
}

impl Group {
    /// How many statements.
    pub(super) fn len(&self) -> usize {
        self.raw.len()
    }
}

impl Live {
    /// Sends `changes`, already made in `ds` (see [`Changes::apply`]): sample fields by label
    /// id as the operations say; frame fields as `ds` now holds them on every frame of the
    /// video, compared with the database (see `frames.rs`). Samples another process changed
    /// since they were read (for videos: any of their frames) are left alone and reported as
    /// [`LiveError::Conflicts`] after every other sample is written.
    pub fn write(&mut self, ds: &Dataset, changes: &Changes) -> Result<Written, LiveError> {
        let mut per_sample: IdMap<SampleUpdate> = IdMap::default();
        let mut order: Vec<ObjectId> = Vec::new();
        let mut frames = TouchedFrames::default();
        for c in &changes.fields {
            if c.frame.is_some() || c.field.is_frame() {
                frames.add(c.sample, c.field.name());
                continue;
            }
            let update = per_sample.entry(c.sample).or_insert_with(|| {
                order.push(c.sample);
                SampleUpdate::default()
            });
            let name = c.field.name();
            match &c.edit {
                Edit::Labels(edits) => update.label_edits(name, edits),
                Edit::Whole(v) => update.set_whole(name, v.as_ref()),
            }
            .map_err(|e| self.invalid(format!("sample {}: {e}", c.sample)))?;
        }
        order.retain(|id| !per_sample[id].is_empty());
        let mut written = Written {
            declared: self.declare_fields(ds)?,
            ..Written::default()
        };
        let mut conflicts = Vec::new();
        if !order.is_empty() {
            let stamp = self.stamp(order.iter().copied());
            let groups = order
                .iter()
                .map(|id| {
                    let update = per_sample.remove(id).expect("collected above");
                    self.statements(*id, update, stamp)
                })
                .collect::<Result<Vec<_>, _>>()?;
            written.updates = groups.iter().map(Group::len).sum();
            let conflicted = self.send(&self.samples, groups, stamp)?;
            for id in &order {
                if conflicted.contains(id) {
                    conflicts.push(*id);
                } else {
                    self.seen.insert(*id, Bson::DateTime(stamp));
                    written.samples += 1;
                }
            }
        }
        if !frames.is_empty() {
            let f = self.write_frames(ds, &frames)?;
            written.frames = f.frames;
            written.updates += f.updates;
            for video in f.conflicts {
                if !conflicts.contains(&video) {
                    conflicts.push(video);
                }
            }
        }
        if conflicts.is_empty() {
            Ok(written)
        } else {
            Err(LiveError::Conflicts {
                name: self.name.clone(),
                samples: conflicts,
            })
        }
    }

    /// [`bson_of`], its error naming the dataset.
    pub(super) fn bson(&self, v: &Value) -> Result<Bson, LiveError> {
        bson_of(v).map_err(|e| self.invalid(e))
    }

    pub(super) fn invalid(&self, msg: String) -> LiveError {
        LiveError::Invalid {
            place: self.place.clone(),
            name: self.name.clone(),
            msg,
        }
    }

    pub(super) fn failed(
        &self,
        action: &'static str,
    ) -> impl Fn(::mongodb::error::Error) -> LiveError + '_ {
        move |e| LiveError::Database {
            place: self.place.clone(),
            name: self.name.clone(),
            action,
            reason: super::first_line(&e.to_string()),
        }
    }

    /// Declares, in the dataset document, the sample and frame fields `ds` declares and the
    /// database did not: each pushed only if no field of that name is there yet (FiftyOne may
    /// have declared it meanwhile).
    fn declare_fields(&mut self, ds: &Dataset) -> Result<usize, LiveError> {
        let new: Vec<(Level, FieldPath, Value)> = [Level::Sample, Level::Frame]
            .into_iter()
            .flat_map(|level| {
                ds.metadata()
                    .get(declarations(level))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(move |f| {
                        let path = FieldPath::at(level, f.get("name")?.as_str()?);
                        Some((level, path, f.clone()))
                    })
            })
            .filter(|(_, path, _)| !self.declared.iter().any(|d| d == path.as_str()))
            .collect();
        let datasets = self.db.collection::<Document>("datasets");
        for (level, path, field) in &new {
            let (key, field) = (declarations(*level), self.bson(field)?);
            datasets
                .update_one(
                    doc! {"_id": self.dataset_id, format!("{key}.name"): {"$ne": path.name()}},
                    doc! {"$push": {key: field}, "$set": {"last_modified_at": DateTime::now()}},
                )
                .run()
                .map_err(self.failed("declaring a field"))?;
            self.declared.push(path.to_string());
        }
        Ok(new.len())
    }

    /// This write's `last_modified_at`: now, and later than every stamp read from the
    /// samples written (so a compare-and-swap never confuses ours with one seen).
    pub(super) fn stamp(&self, samples: impl Iterator<Item = ObjectId>) -> DateTime {
        let latest = samples
            .filter_map(|id| match self.seen.get(&id) {
                Some(Bson::DateTime(d)) => Some(d.timestamp_millis()),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        DateTime::from_millis(DateTime::now().timestamp_millis().max(latest + 1))
    }

    /// A document's update statements (see [`SampleUpdate::statements`]), guarded by the
    /// `last_modified_at` read or last written.
    pub(super) fn statements(
        &self,
        id: ObjectId,
        u: SampleUpdate,
        stamp: DateTime,
    ) -> Result<Group, LiveError> {
        let guard = self.seen.get(&id).cloned().unwrap_or(Bson::Null);
        u.statements(id, guard, stamp)
            .map_err(|e| self.invalid(format!("sample {id}: {e}")))
    }

    /// Sends each document's statements to `collection` in ordered bulk `update` commands,
    /// [`CONNECTIONS`] at a time (a document's statements stay in one command, in order);
    /// returns the documents whose compare-and-swap failed (their `last_modified_at` is not
    /// this write's stamp).
    pub(super) fn send(
        &self,
        collection: &str,
        groups: Vec<Group>,
        stamp: DateTime,
    ) -> Result<HashSet<ObjectId>, LiveError> {
        let queue = Mutex::new(batches(groups).into_iter());
        let failed = AtomicBool::new(false);
        let worker = || -> Result<Vec<ObjectId>, LiveError> {
            let mut conflicts = Vec::new();
            while !failed.load(Ordering::Relaxed) {
                let Some(batch) = queue.lock().map(|mut q| q.next()).ok().flatten() else {
                    break;
                };
                match self.send_batch(collection, batch, stamp) {
                    Ok(c) => conflicts.extend(c),
                    Err(e) => {
                        failed.store(true, Ordering::Relaxed);
                        return Err(e);
                    }
                }
            }
            Ok(conflicts)
        };
        let results: Vec<_> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..CONNECTIONS).map(|_| s.spawn(worker)).collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        let mut conflicts = HashSet::new();
        for r in results {
            conflicts.extend(r?);
        }
        Ok(conflicts)
    }

    fn send_batch(
        &self,
        collection: &str,
        batch: Vec<Group>,
        stamp: DateTime,
    ) -> Result<Vec<ObjectId>, LiveError> {
        let ids: Vec<Bson> = batch.iter().map(|g| Bson::from(g.id)).collect();
        let mut updates = RawArrayBuf::new();
        let mut count = 0i64;
        for s in batch.into_iter().flat_map(|g| g.raw) {
            updates.push(s);
            count += 1;
        }
        let mut command = RawDocumentBuf::new();
        command.append("update", collection);
        command.append("updates", updates);
        command.append("ordered", true);
        let reply = self
            .db
            .run_raw_command(command)
            .run()
            .map_err(self.failed("writing samples"))?;
        if let Ok(errors) = reply.get_array("writeErrors") {
            let first = errors
                .first()
                .and_then(Bson::as_document)
                .and_then(|e| e.get_str("errmsg").ok())
                .unwrap_or("write error");
            return Err(LiveError::Database {
                place: self.place.clone(),
                name: self.name.clone(),
                action: "writing samples",
                reason: first.to_string(),
            });
        }
        let matched = match reply.get("n") {
            Some(Bson::Int32(n)) => i64::from(*n),
            Some(Bson::Int64(n)) => *n,
            _ => 0,
        };
        if matched == count {
            return Ok(Vec::new());
        }
        let cursor = self
            .db
            .collection::<Document>(collection)
            .find(doc! {"_id": {"$in": ids}, "last_modified_at": {"$ne": stamp}})
            .projection(doc! {"_id": 1})
            .run()
            .map_err(self.failed("checking for concurrent writes"))?;
        let mut out = Vec::new();
        for d in cursor {
            let d = d.map_err(self.failed("checking for concurrent writes"))?;
            if let Ok(id) = d.get_object_id("_id") {
                out.push(ObjectId::from(id));
            }
        }
        Ok(out)
    }
}

/// Document statement groups in commands of at most [`BATCH`] statements and
/// [`BATCH_BYTES`] (a group is never split).
fn batches(groups: Vec<Group>) -> Vec<Vec<Group>> {
    let mut out = Vec::new();
    let mut batch: Vec<Group> = Vec::new();
    let (mut statements, mut bytes) = (0, 0);
    for group in groups {
        let size: usize = group.raw.iter().map(|s| s.as_bytes().len()).sum();
        if !batch.is_empty() && (statements + group.raw.len() > BATCH || bytes + size > BATCH_BYTES)
        {
            out.push(std::mem::take(&mut batch));
            (statements, bytes) = (0, 0);
        }
        statements += group.raw.len();
        bytes += size;
        batch.push(group);
    }
    if !batch.is_empty() {
        out.push(batch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::mongodb::bson::oid;
    use serde_json::json;

    fn det(id: ObjectId, label: &str) -> Value {
        json!({"_id": {"$oid": id.to_string()}, "_cls": "Detection", "label": label,
            "bounding_box": [0.1, 0.2, 0.3, 0.4], "index": 1, "attributes": {}, "tags": []})
    }

    fn doc_of(raw: &RawDocumentBuf) -> Document {
        raw.to_document().unwrap()
    }

    #[test]
    fn label_edits_become_a_set_by_array_filter_a_pull_and_a_push_each_a_compare_and_swap() {
        let ids: Vec<ObjectId> = (0..3).map(|_| ObjectId::new()).collect();
        let sample = ObjectId::new();
        let mut u = SampleUpdate::default();
        u.label_edits(
            "ground_truth",
            &LabelEdits {
                key: "detections",
                set: vec![det(ids[0], "bike")],
                add: vec![det(ids[2], "cat")],
                remove: vec![ids[1]],
            },
        )
        .unwrap();
        u.set_whole("reviewed", None).unwrap();
        let read = DateTime::from_millis(1_000);
        let stamp = DateTime::from_millis(2_000);
        let group = u.statements(sample, Bson::DateTime(read), stamp).unwrap();
        assert_eq!(group.len(), 3);
        let s: Vec<Document> = group.raw.iter().map(doc_of).collect();
        let oid = |id: ObjectId| oid::ObjectId::parse_str(id.to_string()).unwrap();
        let guard = |at| doc! {"_id": oid(sample), "last_modified_at": at};

        // Sets first, guarded by the stamp read; then each next one by this write's stamp.
        assert_eq!(s[0].get_document("q").unwrap(), &guard(read));
        let set = s[0]
            .get_document("u")
            .unwrap()
            .get_document("$set")
            .unwrap();
        let label = set.get_document("ground_truth.detections.$[l0]").unwrap();
        assert_eq!(label.get("_id"), Some(&Bson::ObjectId(oid(ids[0]))));
        assert_eq!(label.get("index"), Some(&Bson::Int32(1)));
        assert_eq!(label.get_str("label"), Ok("bike"));
        assert_eq!(set.get("reviewed"), Some(&Bson::Null));
        assert_eq!(set.get("last_modified_at"), Some(&Bson::DateTime(stamp)));
        assert_eq!(
            s[0].get_array("arrayFilters").unwrap(),
            &vec![Bson::Document(doc! {"l0._id": oid(ids[0])})]
        );

        assert_eq!(s[1].get_document("q").unwrap(), &guard(stamp));
        assert_eq!(
            s[1].get_document("u").unwrap(),
            &doc! {"$set": {"last_modified_at": stamp},
            "$pull": {"ground_truth.detections": {"_id": {"$in": [oid(ids[1])]}}}}
        );
        assert_eq!(s[2].get_document("q").unwrap(), &guard(stamp));
        let push = s[2]
            .get_document("u")
            .unwrap()
            .get_document("$push")
            .unwrap();
        let added = push
            .get_document("ground_truth.detections")
            .unwrap()
            .get_array("$each")
            .unwrap();
        assert_eq!(
            added[0].as_document().unwrap().get("_id"),
            Some(&Bson::ObjectId(oid(ids[2])))
        );
    }

    #[test]
    fn statements_are_batched_by_count_and_size_and_a_document_is_never_split() {
        let group = |n: usize, bytes: usize| Group {
            id: ObjectId::new(),
            raw: (0..n)
                .map(|_| {
                    let mut d = RawDocumentBuf::new();
                    d.append("x", "y".repeat(bytes));
                    d
                })
                .collect(),
        };
        let sizes = |b: Vec<Vec<Group>>| -> Vec<usize> {
            b.iter().map(|b| b.iter().map(Group::len).sum()).collect()
        };
        let groups: Vec<Group> = (0..BATCH + 1).map(|_| group(1, 10)).collect();
        assert_eq!(sizes(batches(groups)), [BATCH, 1]);
        let groups = vec![group(2, 10), group(BATCH - 1, 10)];
        assert_eq!(sizes(batches(groups)), [2, BATCH - 1]);
        let big = BATCH_BYTES / 3;
        let groups = vec![group(1, big), group(1, big), group(1, big), group(1, 10)];
        assert_eq!(sizes(batches(groups)), [2, 2]);
    }
}
