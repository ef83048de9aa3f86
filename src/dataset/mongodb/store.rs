//! The `mongodb` store behind the [`Store`] interface: the working set read from the database,
//! and the connection its changes are written through.

use serde_json::Value;

use super::Live;
use crate::dataset::change::Changes;
use crate::dataset::dir::Dataset;
use crate::dataset::store::{Store, StoreError};
use crate::dataset::view::Selected;
use crate::dataset::working_set::{FRAME_FIELDS, SAMPLE_FIELDS, WorkingSet};
use crate::dataset::{FieldPath, Level};
use crate::manifest::types::ViewStage;

/// A live FiftyOne dataset opened for a command (see [`super::open`]).
pub struct MongoStore {
    /// The working set read.
    pub ds: Dataset,
    /// The connection, and what was read.
    pub live: Live,
    /// The fields read, when not all of them were: a change to another field would be written
    /// as if the field were new, over what the database holds, so it is refused.
    pub read: Option<WorkingSet>,
}

impl MongoStore {
    /// The first field `changes` writes that was not read.
    fn unread<'c>(&self, changes: &'c Changes) -> Option<&'c FieldPath> {
        let set = self.read.as_ref()?;
        changes.fields.iter().map(|c| &c.field).find(|f| {
            let (fields, always) = match f.level() {
                Level::Sample => (&set.fields, &SAMPLE_FIELDS[..]),
                Level::Frame => (&set.frame_fields, &FRAME_FIELDS[..]),
            };
            let top = f.name().split('.').next().unwrap_or_default();
            fields
                .as_ref()
                .is_some_and(|read| !read.contains(top) && !always.contains(&top))
        })
    }
}

impl Store for MongoStore {
    fn dataset(&self) -> &Dataset {
        &self.ds
    }

    fn select(&self, stages: &[ViewStage]) -> Result<Option<Selected>, StoreError> {
        Ok(self.live.select(stages, &self.ds)?)
    }

    fn update(&mut self, changes: &Changes) -> Result<(), StoreError> {
        if let Some(f) = self.unread(changes) {
            let msg = format!("field `{f}` was not read for this command, so it cannot be written");
            return Err(self.live.invalid(msg).into());
        }
        changes.apply(&mut self.ds)?;
        self.live.write(&self.ds, changes)?;
        Ok(())
    }

    /// The runs are documents of FiftyOne's `runs` collection (see `runs.rs`).
    fn sync_annotation_run(
        &mut self,
        key: &str,
        wanted: Option<&Value>,
        ours: &dyn Fn(&Value) -> bool,
    ) -> Result<(), StoreError> {
        self.live.sync_annotation_run(key, wanted, ours)?;
        Ok(())
    }
}
