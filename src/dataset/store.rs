//! The dataset store interface: what the engine, views, schema resolution and the merge ask of
//! a dataset, whichever store holds it.
//!
//! A store opens a dataset for one command and holds, as an in-memory [`Dataset`], the working
//! set it read for that command (see [`super::working_set`]): the whole dataset for the `dir`
//! store, the runs' samples and fields for the `mongodb` store. Everything the command reads
//! comes from that dataset; everything it changes goes through the store, which writes it
//! where the dataset lives: [`DirStore`] saves the changed files, the `mongodb` store
//! ([`super::mongodb::MongoStore`]) writes the changed fields to the database.

use serde_json::{Value, json};

use super::change::Changes;
use super::dir::{Dataset, DatasetError};
use super::mongodb::LiveError;
use super::view::{self, Selected, View};
use crate::manifest::types::ViewStage;

/// Why a store could not answer or store a change.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Dir(#[from] DatasetError),
    #[error(transparent)]
    Live(#[from] LiveError),
    #[error(transparent)]
    View(#[from] view::ViewError),
    #[error("dataset `{0}` is not loaded")]
    NotLoaded(String),
}

/// A dataset opened in its store for one command.
pub trait Store {
    /// The working set read for the command.
    fn dataset(&self) -> &Dataset;

    /// What the leading view `stages` that the store answers itself (a database query)
    /// select; `None` when it answers none, and the view runs in memory.
    fn select(&self, _stages: &[ViewStage]) -> Result<Option<Selected>, StoreError> {
        Ok(None)
    }

    /// Makes the store operations `changes` in the dataset, then stores them where it lives.
    fn update(&mut self, changes: &Changes) -> Result<(), StoreError>;

    /// Makes the dataset's annotation run `key` (what FiftyOne lists) match `wanted`, or
    /// removes it when `wanted` is `None`; a run for which `ours` is false is left alone.
    fn sync_annotation_run(
        &mut self,
        key: &str,
        wanted: Option<&Value>,
        ours: &dyn Fn(&Value) -> bool,
    ) -> Result<(), StoreError>;
}

impl dyn Store + '_ {
    /// The view `stages` select: the store answers the leading stages it can, the rest run
    /// in memory.
    pub fn view(&self, stages: &[ViewStage]) -> Result<View, StoreError> {
        let from = self.select(stages)?;
        Ok(view::apply_from(stages, self.dataset(), from)?)
    }
}

/// The `dir` store: a `FiftyOneDataset` directory, read whole.
pub struct DirStore(pub Dataset);

impl Store for DirStore {
    fn dataset(&self) -> &Dataset {
        &self.0
    }

    fn update(&mut self, changes: &Changes) -> Result<(), StoreError> {
        changes.apply(&mut self.0)?;
        self.0.save()?;
        Ok(())
    }

    /// The directory keeps its runs in its document's `annotation_runs`, as FiftyOne's
    /// export writes them.
    fn sync_annotation_run(
        &mut self,
        key: &str,
        wanted: Option<&Value>,
        ours: &dyn Fn(&Value) -> bool,
    ) -> Result<(), StoreError> {
        let current = self
            .0
            .metadata()
            .get("annotation_runs")
            .and_then(|r| r.get(key));
        if current.is_some_and(|c| !ours(c)) || current == wanted {
            return Ok(());
        }
        let meta = self.0.metadata_mut();
        let runs = meta.entry("annotation_runs").or_insert_with(|| json!({}));
        if !runs.is_object() {
            *runs = json!({});
        }
        let runs = runs.as_object_mut().expect("an object");
        match wanted {
            Some(w) => {
                runs.insert(key.to_string(), w.clone());
            }
            None => {
                runs.shift_remove(key);
            }
        }
        Ok(self.0.save()?)
    }
}
