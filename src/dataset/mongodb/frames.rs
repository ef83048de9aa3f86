//! Writing a merge's frame fields back to a live video dataset: FiftyOne keeps each frame as
//! a document of `frames.samples.<datasetId>` (`_id`, `frame_number`, the frame fields,
//! `_sample_id`, ...; unique on `(_sample_id, frame_number)`). New frame fields are declared
//! in the dataset's `frame_fields` first (guarded, like sample fields); each frame's changed
//! labels are addressed by id and its update is a compare-and-swap on the frame's
//! `last_modified_at` (a changed field is set whole: frame fields hold few labels); frames the
//! merge created are inserted. A video with any frame another
//! process changed, added or removed since annoform read it is left alone and reported.

use std::collections::HashSet;

use ::mongodb::bson::{Bson, DateTime, Document, doc};
use serde_json::Value;

use super::write::SampleUpdate;
use super::{Live, LiveError};
use crate::dataset::dir::Dataset;
use crate::dataset::ejson::{IdMap, ObjectId};

/// Videos whose frames are read back per query.
const VIDEOS_PER_READ: usize = 1000;

/// The frame fields a merge touched, per video, in the merge's order.
#[derive(Default)]
pub(super) struct TouchedFrames {
    order: Vec<ObjectId>,
    fields: IdMap<Vec<String>>,
}

impl TouchedFrames {
    /// Notes that frame field `name` of `video` may have changed.
    pub(super) fn add(&mut self, video: ObjectId, name: &str) {
        let fields = self.fields.entry(video).or_insert_with(|| {
            self.order.push(video);
            Vec::new()
        });
        if !fields.iter().any(|f| f == name) {
            fields.push(name.to_string());
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// A frame as the database holds it now: its video, its stamp and the touched fields.
struct Stored {
    video: ObjectId,
    stamp: Bson,
    doc: Document,
}

/// What writing frames did.
#[derive(Default)]
pub(super) struct FramesWritten {
    /// Frames updated or inserted.
    pub(super) frames: usize,
    /// Update statements and inserted documents sent.
    pub(super) updates: usize,
    /// Videos left alone because another process changed their frames.
    pub(super) conflicts: Vec<ObjectId>,
}

impl Live {
    /// Remembers each frame's `last_modified_at` as read, for the compare-and-swap (frame ids
    /// are ObjectIds like samples', so one map holds both).
    pub(super) fn see_frames(&mut self, ds: &Dataset) {
        for f in ds.all_frames() {
            let stamp = f
                .get("last_modified_at")
                .and_then(|v| Bson::try_from(v.clone()).ok())
                .unwrap_or(Bson::Null);
            self.seen.insert(f.id(), stamp);
        }
    }

    /// Writes the touched frame fields of each video as `ds` now holds them.
    pub(super) fn write_frames(
        &mut self,
        ds: &Dataset,
        touched: &TouchedFrames,
    ) -> Result<FramesWritten, LiveError> {
        let collection = ds
            .metadata()
            .get("frame_collection_name")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                self.invalid(
                    "frame fields were merged but the dataset has no `frame_collection_name` (is it a video dataset?)".into(),
                )
            })?
            .to_string();
        let stored = self.stored_frames(&collection, touched)?;
        let mut out = FramesWritten::default();
        let mut conflicted: HashSet<ObjectId> = HashSet::new();
        let mut video_of: IdMap<ObjectId> = IdMap::default();
        let mut updated = Vec::new();
        let mut inserts: Vec<(ObjectId, Document)> = Vec::new();
        let mut pending: Vec<(ObjectId, SampleUpdate)> = Vec::new();
        let stamp = self.stamp(stored.keys().copied());
        for video in &touched.order {
            let fields = &touched.fields[video];
            let frames = ds.frames(*video);
            let mine: HashSet<ObjectId> = frames.iter().map(|f| f.id()).collect();
            // Any frame of the video that is not as annoform saw it: another writer was here.
            let changed = stored
                .iter()
                .filter(|(_, s)| s.video == *video)
                .any(|(id, s)| self.seen.get(id) != Some(&s.stamp) || !mine.contains(id))
                || frames
                    .iter()
                    .any(|f| self.seen.contains_key(&f.id()) && !stored.contains_key(&f.id()));
            if changed {
                conflicted.insert(*video);
                continue;
            }
            for frame in frames {
                let id = frame.id();
                video_of.insert(id, *video);
                let Some(s) = stored.get(&id) else {
                    if fields
                        .iter()
                        .any(|f| frame.get(f).is_some_and(|v| !v.is_null()))
                    {
                        inserts.push((id, self.new_frame(frame.as_object(), stamp)?));
                    }
                    continue;
                };
                let was = Bson::Document(s.doc.clone()).into_relaxed_extjson();
                let mut update = SampleUpdate::default();
                let mut any = false;
                for name in fields {
                    let before = was.get(name).filter(|v| !v.is_null());
                    let after = frame.get(name).filter(|v| !v.is_null());
                    if before != after {
                        update
                            .set_whole(name, after)
                            .map_err(|e| self.invalid(format!("frame {id}: {e}")))?;
                        any = true;
                    }
                }
                if any {
                    pending.push((id, update));
                }
            }
        }
        let mut groups = Vec::new();
        for (id, update) in pending {
            groups.push(self.statements(id, update, stamp)?);
            updated.push(id);
        }
        out.updates = groups.iter().map(|g| g.len()).sum::<usize>() + inserts.len();
        let failed = self.send(&collection, groups, stamp)?;
        for id in updated {
            if failed.contains(&id) {
                conflicted.insert(video_of[&id]);
            } else {
                self.seen.insert(id, Bson::DateTime(stamp));
                out.frames += 1;
            }
        }
        let ids: Vec<ObjectId> = inserts.iter().map(|(id, _)| *id).collect();
        let duplicates = self.insert(&collection, inserts.into_iter().map(|(_, d)| d).collect())?;
        for (i, id) in ids.into_iter().enumerate() {
            if duplicates.contains(&i) {
                conflicted.insert(video_of[&id]);
            } else {
                self.seen.insert(id, Bson::DateTime(stamp));
                out.frames += 1;
            }
        }
        out.conflicts = touched
            .order
            .iter()
            .filter(|v| conflicted.contains(v))
            .copied()
            .collect();
        Ok(out)
    }

    /// The frames of the touched videos as stored now: `_id`, video, stamp and the touched
    /// fields only.
    fn stored_frames(
        &self,
        collection: &str,
        touched: &TouchedFrames,
    ) -> Result<IdMap<Stored>, LiveError> {
        let mut out = IdMap::default();
        for videos in touched.order.chunks(VIDEOS_PER_READ) {
            let mut projection = doc! {"_id": 1, "_sample_id": 1, "last_modified_at": 1};
            for v in videos {
                for f in &touched.fields[v] {
                    projection.insert(f.as_str(), 1);
                }
            }
            let ids: Vec<Bson> = videos.iter().map(|v| Bson::from(*v)).collect();
            let cursor = self
                .db
                .collection::<Document>(collection)
                .find(doc! {"_sample_id": {"$in": ids}})
                .projection(projection)
                .run()
                .map_err(self.failed("reading frames"))?;
            for d in cursor {
                let d = d.map_err(self.failed("reading frames"))?;
                let (Ok(id), Ok(video)) = (d.get_object_id("_id"), d.get_object_id("_sample_id"))
                else {
                    continue;
                };
                let stamp = d.get("last_modified_at").cloned().unwrap_or(Bson::Null);
                out.insert(
                    ObjectId::from(id),
                    Stored {
                        video: ObjectId::from(video),
                        stamp,
                        doc: d,
                    },
                );
            }
        }
        Ok(out)
    }

    /// A frame the merge created, as FiftyOne inserts one, stamped with this write.
    fn new_frame(
        &self,
        frame: &crate::dataset::labels::Object,
        stamp: DateTime,
    ) -> Result<Document, LiveError> {
        let Bson::Document(mut d) = self.bson(&Value::Object(frame.clone()))? else {
            return Err(self.invalid("a frame is not a document".into()));
        };
        for key in ["created_at", "last_modified_at"] {
            d.insert(key, stamp);
        }
        Ok(d)
    }

    /// Inserts `docs` (unordered); returns the positions of those refused as duplicates
    /// (another process created the same frame meanwhile).
    fn insert(&self, collection: &str, docs: Vec<Document>) -> Result<HashSet<usize>, LiveError> {
        let mut duplicates = HashSet::new();
        for (n, batch) in docs.chunks(super::write::BATCH).enumerate() {
            let reply = self
                .db
                .run_command(doc! {"insert": collection, "documents": batch, "ordered": false})
                .run()
                .map_err(self.failed("inserting frames"))?;
            for e in reply.get_array("writeErrors").into_iter().flatten() {
                let e = e.as_document();
                let code = e.and_then(|e| e.get_i32("code").ok());
                let index = e.and_then(|e| e.get_i32("index").ok());
                match (code, index) {
                    (Some(DUPLICATE_KEY), Some(i)) => {
                        duplicates.insert(n * super::write::BATCH + i as usize);
                    }
                    _ => {
                        return Err(LiveError::Database {
                            place: self.place.clone(),
                            name: self.name.clone(),
                            action: "inserting frames",
                            reason: e
                                .and_then(|e| e.get_str("errmsg").ok())
                                .unwrap_or("write error")
                                .to_string(),
                        });
                    }
                }
            }
        }
        Ok(duplicates)
    }
}

/// MongoDB's duplicate key error.
const DUPLICATE_KEY: i32 = 11000;
