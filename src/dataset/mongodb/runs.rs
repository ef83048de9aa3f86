//! annoform's run records where FiftyOne 1.22 keeps its annotation runs: a document in the
//! `runs` collection, referenced by id from the dataset document's `annotation_runs` map (as
//! FiftyOne's `save_run_info` writes them), so `list_annotation_runs()`,
//! `get_annotation_info(key)` and `load_annotation_view(key)` show annoform's runs. No results
//! go to GridFS (`results: null`), so FiftyOne's `load_annotation_results(key)` answers
//! `None`, as it does for any run without results.
//!
//! Only documents annoform wrote are replaced or removed (the caller tells them apart); the
//! dataset document is changed by one guarded `$set`/`$unset` of its `annotation_runs.KEY`
//! entry, never replaced, so a run FiftyOne registers meanwhile under the same key is kept.

use ::mongodb::bson::{Bson, DateTime, Document, doc};
use serde_json::Value;

use super::{Live, LiveError};

/// What making a run's record match did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunSync {
    /// The record was already as wanted: nothing written.
    Unchanged,
    /// The run document was written and the dataset refers to it.
    Written,
    /// The run document and the dataset's reference are gone.
    Removed,
    /// The key holds a run annoform did not write: left alone.
    NotOurs,
}

impl Live {
    /// Makes the dataset's annotation run `key` match `wanted` (a run document in FiftyOne's
    /// Extended JSON, `_id` included), or removes it when `wanted` is `None`. A run for which
    /// `ours` (given the stored run document as Extended JSON) is false is left alone.
    pub fn sync_annotation_run(
        &mut self,
        key: &str,
        wanted: Option<&Value>,
        ours: impl Fn(&Value) -> bool,
    ) -> Result<RunSync, LiveError> {
        if key.contains(['.', '$']) {
            return Err(self.invalid(format!(
                "run key `{key}` cannot be a FiftyOne annotation run key (it has `.` or `$`)"
            )));
        }
        let entry = format!("annotation_runs.{key}");
        let datasets = self.db.collection::<Document>("datasets");
        let runs = self.db.collection::<Document>("runs");
        let meta = datasets
            .find_one(doc! {"_id": self.dataset_id})
            .projection(doc! {&entry: 1})
            .run()
            .map_err(self.failed("reading the dataset's annotation runs"))?
            .ok_or_else(|| self.invalid("its `datasets` document is gone".into()))?;
        let referenced = meta
            .get_document("annotation_runs")
            .ok()
            .and_then(|r| r.get(key))
            .cloned();
        let current = match &referenced {
            None => None,
            Some(Bson::ObjectId(id)) => runs
                .find_one(doc! {"_id": id})
                .run()
                .map_err(self.failed("reading the `runs` collection"))?,
            // A reference FiftyOne itself could not follow: its own to repair.
            Some(_) => return Ok(RunSync::NotOurs),
        };
        match &current {
            Some(c) if !ours(&Bson::Document(c.clone()).into_relaxed_extjson()) => {
                return Ok(RunSync::NotOurs);
            }
            // A dangling reference is FiftyOne's (its `patch_annotation_runs` repairs it).
            None if referenced.is_some() => return Ok(RunSync::NotOurs),
            _ => {}
        }
        let wanted = wanted.map(|w| self.run_document(w)).transpose()?;
        if current == wanted {
            return Ok(RunSync::Unchanged);
        }
        // The dataset's entry changes only if it still holds what was read.
        let mut guard = doc! {"_id": self.dataset_id};
        guard.insert(
            &entry,
            referenced
                .clone()
                .unwrap_or_else(|| Bson::Document(doc! {"$exists": false})),
        );
        let now = DateTime::now();
        let Some(wanted) = wanted else {
            datasets
                .update_one(
                    guard,
                    doc! {"$unset": {&entry: ""}, "$set": {"last_modified_at": now}},
                )
                .run()
                .map_err(self.failed("removing an annotation run"))?;
            if let Some(Bson::ObjectId(id)) = referenced {
                runs.delete_one(doc! {"_id": id})
                    .run()
                    .map_err(self.failed("removing an annotation run"))?;
            }
            return Ok(RunSync::Removed);
        };
        let id = wanted.get("_id").cloned().unwrap_or(Bson::Null);
        runs.replace_one(doc! {"_id": &id}, &wanted)
            .upsert(true)
            .run()
            .map_err(self.failed("writing an annotation run"))?;
        if referenced.as_ref() == Some(&id) {
            return Ok(RunSync::Written);
        }
        let moved = datasets
            .update_one(guard, doc! {"$set": {&entry: &id, "last_modified_at": now}})
            .run()
            .map_err(self.failed("writing an annotation run"))?;
        if moved.matched_count == 0 {
            // Another process registered a run under this key meanwhile: keep theirs.
            runs.delete_one(doc! {"_id": &id})
                .run()
                .map_err(self.failed("writing an annotation run"))?;
            return Ok(RunSync::NotOurs);
        }
        if let Some(old) = referenced {
            runs.delete_one(doc! {"_id": old})
                .run()
                .map_err(self.failed("replacing an annotation run"))?;
        }
        Ok(RunSync::Written)
    }

    /// A run document (Extended JSON) as BSON, with the ObjectId `_id` FiftyOne refers to it by.
    fn run_document(&self, v: &Value) -> Result<Document, LiveError> {
        match self.bson(v)? {
            Bson::Document(d) if matches!(d.get("_id"), Some(Bson::ObjectId(_))) => Ok(d),
            _ => {
                Err(self.invalid("an annotation run document needs an ObjectId `_id`".to_string()))
            }
        }
    }
}
