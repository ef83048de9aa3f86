//! The `mongodb` store behind the [`Store`] interface: the working set read from the database,
//! and the connection its changes are written through.

use serde_json::Value;

use super::{BeforeText, Live};
use crate::dataset::dir::Dataset;
use crate::dataset::ejson::ObjectId;
use crate::dataset::store::{Change, Store, StoreError};
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
    /// The first of `touched` whose field was not read.
    fn unread<'t>(&self, touched: &'t [(ObjectId, FieldPath)]) -> Option<&'t FieldPath> {
        let set = self.read.as_ref()?;
        touched.iter().map(|(_, f)| f).find(|f| {
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

    fn update(
        &mut self,
        touched: &[(ObjectId, FieldPath)],
        change: Change<'_>,
    ) -> Result<(), StoreError> {
        if let Some(f) = self.unread(touched) {
            let msg = format!("field `{f}` was not read for this command, so it cannot be written");
            return Err(self.live.invalid(msg).into());
        }
        let before = BeforeText::of(&self.ds, touched);
        if change(&mut self.ds) {
            self.live.write_texts(&self.ds, &before)?;
        }
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
