//! Writing a merge back to a live dataset: new fields declared first, then per sample the
//! changed labels addressed by id, every update a compare-and-swap on `last_modified_at`,
//! sent as bulk `update` commands.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use ::mongodb::bson::{self, Bson, DateTime, Document, doc};
use serde_json::Value;

use super::frames::TouchedFrames;
use super::{Live, LiveError};
use crate::dataset::FieldPath;
use crate::dataset::Level;
use crate::dataset::dir::{Dataset, Part, Sample};
use crate::dataset::ejson::{IdMap, ObjectId};
use crate::dataset::labels::{self, Object};
use crate::dataset::scan;

/// Update statements per `update` command, and their size bound (a command is at most 16 MB).
pub(super) const BATCH: usize = 1000;
const BATCH_BYTES: usize = 8 << 20;
/// Commands in flight at once, each on its own connection: mongod applies them in parallel
/// (every document is in one command only, and the compare-and-swap keeps them safe from
/// other writers).
const CONNECTIONS: usize = 2;

/// A field of a sample as it was before the merge changed it in memory, parsed (see
/// [`BeforeText`] for what the engine keeps).
#[derive(Debug, Clone)]
pub struct Before {
    pub sample: ObjectId,
    pub field: FieldPath,
    pub value: Option<Value>,
}

/// A field of a sample as it was before the merge changed it in memory, as JSON text: what
/// the write compares the merged field with (label by label, parsing only what changed), at
/// a tenth of the memory of a parsed tree.
#[derive(Debug, Clone)]
pub struct BeforeText {
    pub sample: ObjectId,
    pub field: FieldPath,
    /// `None` when the sample had no such field (or it was null).
    pub text: Option<String>,
}

impl BeforeText {
    /// The fields `touched` names as `ds` holds them now, before a change writes them.
    pub fn of(ds: &Dataset, touched: &[(ObjectId, FieldPath)]) -> Vec<BeforeText> {
        touched
            .iter()
            .map(|(sample, field)| BeforeText {
                sample: *sample,
                field: field.clone(),
                text: ds
                    .sample_by_id(*sample)
                    .and_then(|s| field_text(s, field.name()))
                    .map(Cow::into_owned),
            })
            .collect()
    }
}

impl From<&Before> for BeforeText {
    fn from(b: &Before) -> BeforeText {
        BeforeText {
            sample: b.sample,
            field: b.field.clone(),
            text: b
                .value
                .as_ref()
                .filter(|v| !v.is_null())
                .map(Value::to_string),
        }
    }
}

/// A sample's field as JSON text, unparsed when the sample is still text; `None` when it is
/// missing or null.
fn field_text<'s>(sample: &'s Sample, name: &str) -> Option<Cow<'s, str>> {
    let (object, mut texts) = sample.project_text(&|k| (k == name).then_some(Part::Text));
    let text = match texts.pop() {
        Some((_, text)) => text,
        None => Cow::Owned(object.get(name)?.to_string()),
    };
    (text.as_ref() != "null").then_some(text)
}

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

impl Live {
    /// Writes the fields listed in `before` as `ds` now holds them (a frame field: on every
    /// frame of the video, diffed against the database, see `frames.rs`). Samples another
    /// process changed since they were read (for videos: any of their frames) are left alone
    /// and reported as [`LiveError::Conflicts`] after every other sample is written.
    pub fn write(&mut self, ds: &Dataset, before: &[Before]) -> Result<Written, LiveError> {
        let before: Vec<BeforeText> = before.iter().map(BeforeText::from).collect();
        self.write_texts(ds, &before)
    }

    /// [`Self::write`] from the fields' texts as they were.
    pub fn write_texts(
        &mut self,
        ds: &Dataset,
        before: &[BeforeText],
    ) -> Result<Written, LiveError> {
        let mut per_sample: IdMap<SampleUpdate> = IdMap::default();
        let mut order: Vec<ObjectId> = Vec::new();
        let mut frames = TouchedFrames::default();
        for b in before {
            if b.field.is_frame() {
                frames.add(b.sample, b.field.name());
                continue;
            }
            let sample = ds.sample_by_id(b.sample).ok_or_else(|| {
                self.invalid(format!("sample {} is not in the dataset read", b.sample))
            })?;
            let name = b.field.name();
            let was = b.text.as_deref();
            let (now, mut texts) = sample.project_text(&|k| (k == name).then_some(Part::Text));
            let parsed;
            let after = match texts.pop() {
                // Not edited in memory since it was read: unchanged unless the text differs.
                Some((_, text)) if Some(text.as_ref()) == was => continue,
                Some((_, text)) => {
                    parsed = serde_json::from_str::<Value>(&text)
                        .map_err(|e| self.invalid(format!("sample {}: {e}", b.sample)))?;
                    Some(&parsed)
                }
                None => now.get(name),
            }
            .filter(|v| !v.is_null());
            let new = !per_sample.contains_key(&b.sample);
            let update = per_sample.entry(b.sample).or_default();
            let changed = self.field_update(update, name, was, after)?;
            if changed && new {
                order.push(b.sample);
            } else if new {
                per_sample.remove(&b.sample);
            }
        }
        let mut written = Written {
            declared: self.declare_fields(ds)?,
            ..Written::default()
        };
        let mut conflicts = Vec::new();
        if !order.is_empty() {
            let stamp = self.stamp(order.iter().copied());
            let groups: Vec<Vec<Document>> = order
                .iter()
                .map(|id| {
                    let update = per_sample.remove(id).expect("collected above");
                    self.statements(*id, update, stamp)
                })
                .collect();
            written.updates = groups.iter().map(Vec::len).sum();
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

    /// Adds one field's change from `was` (its JSON text before) to `after`: label lists by
    /// label id, anything else as a whole value; whether it changed at all.
    pub(super) fn field_update(
        &self,
        update: &mut SampleUpdate,
        name: &str,
        was: Option<&str>,
        after: Option<&Value>,
    ) -> Result<bool, LiveError> {
        if let (Some(a), Some(Value::Object(b))) = (was, after) {
            if let Some(diff) = list_diff(a, b) {
                let changed =
                    !(diff.edited.is_empty() && diff.removed.is_empty() && diff.added.is_empty());
                let path = format!("{name}.{}", diff.key);
                for (id, label) in diff.edited {
                    let var = format!("l{}", update.array_filters.len());
                    update
                        .set
                        .insert(format!("{path}.$[{var}]"), self.bson(label)?);
                    update.array_filters.push(doc! { format!("{var}._id"): id });
                }
                if !diff.removed.is_empty() {
                    let ids: Vec<Bson> = diff.removed.into_iter().map(Bson::from).collect();
                    update.pull.insert(path.clone(), doc! {"_id": {"$in": ids}});
                }
                if !diff.added.is_empty() {
                    let docs = diff
                        .added
                        .into_iter()
                        .map(|l| self.bson(l))
                        .collect::<Result<Vec<_>, _>>()?;
                    update.push.insert(path, doc! {"$each": docs});
                }
                return Ok(changed);
            }
        }
        let same = match (was, after) {
            (None, None) => true,
            (Some(text), Some(v)) => same_value(text, v),
            _ => false,
        };
        if same {
            return Ok(false);
        }
        let value = match after {
            Some(v) => self.bson(v)?,
            None => Bson::Null,
        };
        update.set.insert(name, value);
        Ok(true)
    }

    /// A JSON value (FiftyOne's Extended JSON) as BSON: `$oid`, `$date`, `$binary` become
    /// their types, integers Int32 (Int64 beyond), other numbers doubles — as pymongo
    /// encodes Python values.
    pub(super) fn bson(&self, v: &Value) -> Result<Bson, LiveError> {
        Bson::try_from(v.clone())
            .map_err(|e| self.invalid(format!("cannot convert a value to BSON: {e}")))
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

    /// A document's update statements: sets (and edits by id), then pulls, then pushes, each
    /// guarded by the `last_modified_at` the previous one left.
    pub(super) fn statements(
        &self,
        id: ObjectId,
        u: SampleUpdate,
        stamp: DateTime,
    ) -> Vec<Document> {
        let mut out = Vec::new();
        let mut guard = self.seen.get(&id).cloned().unwrap_or(Bson::Null);
        let mut add = |op: &str, body: Document, filters: Vec<Document>| {
            let mut set = if op == "$set" {
                body.clone()
            } else {
                Document::new()
            };
            set.insert("last_modified_at", stamp);
            let mut u = doc! {"$set": set};
            if op != "$set" {
                u.insert(op, body);
            }
            let mut s = doc! {"q": {"_id": id, "last_modified_at": guard.clone()}, "u": u};
            if !filters.is_empty() {
                s.insert("arrayFilters", filters);
            }
            out.push(s);
            guard = Bson::DateTime(stamp);
        };
        if !u.set.is_empty() {
            add("$set", u.set, u.array_filters);
        }
        if !u.pull.is_empty() {
            add("$pull", u.pull, Vec::new());
        }
        if !u.push.is_empty() {
            add("$push", u.push, Vec::new());
        }
        out
    }

    /// Sends each document's statements to `collection` in ordered bulk `update` commands,
    /// [`CONNECTIONS`] at a time (a document's statements stay in one command, in order);
    /// returns the documents whose compare-and-swap failed (their `last_modified_at` is not
    /// this write's stamp).
    pub(super) fn send(
        &self,
        collection: &str,
        groups: Vec<Vec<Document>>,
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
        batch: Vec<Document>,
        stamp: DateTime,
    ) -> Result<Vec<ObjectId>, LiveError> {
        let count = batch.len() as i64;
        let ids: Vec<Bson> = batch
            .iter()
            .filter_map(|s| s.get_document("q").ok()?.get("_id").cloned())
            .collect();
        let reply = self
            .db
            .run_command(doc! {"update": collection, "updates": batch, "ordered": true})
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

/// Document statement groups in commands of at most [`BATCH`] statements and about
/// [`BATCH_BYTES`] (a group is never split).
fn batches(groups: Vec<Vec<Document>>) -> Vec<Vec<Document>> {
    let mut out = Vec::new();
    let mut batch: Vec<Document> = Vec::new();
    let mut bytes = 0;
    for group in groups {
        let size: usize = group
            .iter()
            .map(|s| bson::to_vec(s).map_or(0, |v| v.len()))
            .sum();
        if !batch.is_empty() && (batch.len() + group.len() > BATCH || bytes + size > BATCH_BYTES) {
            out.push(std::mem::take(&mut batch));
            bytes = 0;
        }
        bytes += size;
        batch.extend(group);
    }
    if !batch.is_empty() {
        out.push(batch);
    }
    out
}

/// How a label list changed, by label id.
struct ListDiff<'a> {
    key: &'static str,
    edited: Vec<(ObjectId, &'a Value)>,
    removed: Vec<ObjectId>,
    added: Vec<&'a Value>,
}

/// Whether the JSON text `text` holds the value `v`: compared as text first (the engine
/// writes what it read in the same form), parsed only when the texts differ.
fn same_value(text: &str, v: &Value) -> bool {
    serde_json::to_string(v).is_ok_and(|t| t == text)
        || serde_json::from_str::<Value>(text).is_ok_and(|t| t == *v)
}

/// The `_id` of the label whose JSON text is `label`.
fn label_id(label: &str) -> Option<ObjectId> {
    let (_, span) = scan::members(label).find(|(k, _)| k == "_id")?;
    ObjectId::from_ejson(&serde_json::from_str(&label[span]).ok()?)
}

/// The change from one label-list value (`was`, the JSON text of
/// `{"_cls": "Detections", "detections": [...]}`) to another, when only the list changed and
/// every label has an id; `None` otherwise (the field is then written whole). Only the labels
/// whose text differs are parsed.
fn list_diff<'a>(was: &str, after: &'a Object) -> Option<ListDiff<'a>> {
    let members: Vec<_> = scan::members(was).collect();
    let get = |key: &str| {
        members
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, span)| &was[span.clone()])
    };
    let cls: String = serde_json::from_str(get("_cls")?).ok()?;
    if after.get("_cls")?.as_str()? != cls {
        return None;
    }
    let key = labels::label_list_key(&cls)?;
    let rest_equal = members.len() == after.len()
        && members.iter().filter(|(k, _)| k != key).all(|(k, span)| {
            after
                .get(k.as_ref())
                .is_some_and(|v| same_value(&was[span.clone()], v))
        });
    if !rest_equal {
        return None;
    }
    let list = get(key)?;
    let old: IdMap<&str> = scan::items(list)
        .map(|span| {
            let label = &list[span];
            Some((label_id(label)?, label))
        })
        .collect::<Option<_>>()?;
    let new = after.get(key)?.as_array()?;
    let mut diff = ListDiff {
        key,
        edited: Vec::new(),
        removed: Vec::new(),
        added: Vec::new(),
    };
    let mut kept = HashSet::new();
    for l in new {
        let lid = l.get("_id").and_then(ObjectId::from_ejson)?;
        kept.insert(lid);
        match old.get(&lid) {
            Some(o) if same_value(o, l) => {}
            Some(_) => diff.edited.push((lid, l)),
            None => diff.added.push(l),
        }
    }
    diff.removed = old.keys().filter(|k| !kept.contains(*k)).copied().collect();
    diff.removed.sort_unstable();
    Some(diff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn label(id: ObjectId, name: &str) -> Value {
        json!({"_id": {"$oid": id.to_string()}, "_cls": "Detection", "label": name,
            "bounding_box": [0.1, 0.2, 0.3, 0.4], "attributes": {}, "tags": []})
    }

    #[test]
    fn a_label_list_diff_from_text_names_only_the_labels_that_changed() {
        let ids: Vec<ObjectId> = (0..4).map(|_| ObjectId::new()).collect();
        let was = json!({"_cls": "Detections", "detections": [
            label(ids[0], "car"), label(ids[1], "person"), label(ids[2], "dog")]});
        // The same label written with its keys in another order is not an edit.
        let mut reordered = serde_json::Map::new();
        for (k, v) in label(ids[1], "person").as_object().unwrap().iter().rev() {
            reordered.insert(k.clone(), v.clone());
        }
        let after = json!({"_cls": "Detections", "detections": [
            label(ids[0], "bike"), Value::Object(reordered), label(ids[3], "cat")]});
        let diff = list_diff(&was.to_string(), after.as_object().unwrap()).unwrap();
        assert_eq!(diff.key, "detections");
        assert_eq!(
            diff.edited.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            [ids[0]]
        );
        assert_eq!(diff.edited[0].1["label"], "bike");
        assert_eq!(diff.removed, [ids[2]]);
        assert_eq!(diff.added, [&label(ids[3], "cat")]);
    }

    #[test]
    fn a_changed_wrapper_or_a_label_without_id_is_written_whole() {
        let id = ObjectId::new();
        let was = json!({"_cls": "Detections", "detections": [label(id, "car")]}).to_string();
        let other = json!({"_cls": "Detections", "detections": [label(id, "car")], "x": 1});
        assert!(list_diff(&was, other.as_object().unwrap()).is_none());
        let no_id = json!({"_cls": "Detections", "detections": [{"label": "car"}]});
        assert!(list_diff(&was, no_id.as_object().unwrap()).is_none());
        assert!(same_value(&was, &serde_json::from_str(&was).unwrap()));
        assert!(!same_value(&was, &other));
    }
}
