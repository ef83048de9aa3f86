//! A workspace's datasets, opened in their stores on first use and kept for the rest of the
//! command.
//!
//! Each dataset lives in a store (`dir` or `mongodb`) behind the [`Store`] interface; the
//! in-memory [`Dataset`] a store holds is the working set it read for the command (see
//! [`WorkingSet`]). Reads go to that dataset, changes through [`Datasets::update`] to the
//! store, which writes them where the dataset lives.

use crate::config::{Config, DatasetConfig, DatasetStore, LiveDatabase, Setting};
use crate::dataset::change::Changes;
use crate::dataset::dir::Dataset;
use crate::dataset::mongodb::{self, Address};
use crate::dataset::store::{DirStore, Store, StoreError};
use crate::dataset::view::View;
use crate::dataset::working_set::WorkingSet;
use crate::manifest::load::LoadedRun;
use crate::manifest::types::ViewStage;
use crate::state::RunRecord;
use indexmap::IndexMap;
use std::collections::HashMap;
use std::path::PathBuf;

/// The datasets of a workspace, by name, loaded lazily and loaded once per command (validation
/// and the engine share them).
pub struct Datasets {
    root: PathBuf,
    declared: IndexMap<String, Setting<DatasetConfig>>,
    live: IndexMap<String, LiveDatabase>,
    /// What the command needs of each dataset; a dataset missing here is read whole.
    working_sets: HashMap<String, WorkingSet>,
    loaded: HashMap<String, Result<Box<dyn Store>, String>>,
}

impl Datasets {
    /// No dataset loaded yet; each is read whole when first used.
    pub fn new(config: &Config) -> Self {
        Datasets {
            root: config.root.clone(),
            declared: config.datasets.clone(),
            live: config.live.clone(),
            working_sets: HashMap::new(),
            loaded: HashMap::new(),
        }
    }

    /// No dataset loaded yet; each is read for `runs` only (see [`WorkingSet`]): the samples
    /// their views select, with the fields they use (a dataset no run is on: its document
    /// alone). Widen with [`Datasets::add_record`] before the first [`Datasets::get`].
    pub fn for_runs(config: &Config, runs: &[LoadedRun]) -> Self {
        let mut datasets = Datasets::new(config);
        datasets.working_sets = (config.datasets.keys())
            .map(|name| (name.clone(), WorkingSet::empty()))
            .collect();
        for r in runs {
            datasets.working_set(&r.run.dataset).add_run(&r.run);
        }
        datasets
    }

    /// Also reads what the run record `r` names (its samples and fields).
    pub fn add_record(&mut self, r: &RunRecord) {
        self.working_set(&r.dataset).add_record(r);
    }

    fn working_set(&mut self, name: &str) -> &mut WorkingSet {
        self.working_sets
            .entry(name.to_string())
            .or_insert_with(WorkingSet::empty)
    }

    /// The dataset called `name`: `None` when annoform.toml does not declare it, otherwise
    /// the dataset (the working set read) or why it could not be loaded.
    pub fn get(&mut self, name: &str) -> Option<Result<&Dataset, &str>> {
        let decl = self.declared.get(name)?;
        if !self.loaded.contains_key(name) {
            let set = self.working_sets.get(name);
            let opened = open(&self.root, name, &decl.value, self.live.get(name), set);
            self.loaded.insert(name.to_string(), opened);
        }
        let entry = self.loaded.get(name)?;
        Some(entry.as_ref().map(|s| s.dataset()).map_err(String::as_str))
    }

    /// The loaded dataset `name`'s store.
    fn store(&mut self, name: &str) -> Result<&mut (dyn Store + 'static), StoreError> {
        match self.loaded.get_mut(name) {
            Some(Ok(store)) => Ok(store.as_mut()),
            _ => Err(StoreError::NotLoaded(name.to_string())),
        }
    }

    /// Has the loaded dataset `name`'s store make and store the operations `changes` gives
    /// for the dataset (see [`Changes`]).
    pub fn update<E>(
        &mut self,
        name: &str,
        changes: impl FnOnce(&Dataset) -> Result<Changes, E>,
    ) -> Result<(), E>
    where
        E: From<StoreError>,
    {
        let store = self.store(name)?;
        let changes = changes(store.dataset())?;
        store.update(&changes)?;
        Ok(())
    }

    /// The view `stages` select of the loaded dataset `name` (see [`Store`]).
    pub fn view(&self, name: &str, stages: &[ViewStage]) -> Result<View, StoreError> {
        match self.loaded.get(name) {
            Some(Ok(store)) => store.view(stages),
            _ => Err(StoreError::NotLoaded(name.to_string())),
        }
    }

    /// Makes the loaded dataset `name`'s annotation run `key` match `wanted` (removed when
    /// `None`); a run for which `ours` is false is left alone.
    pub fn sync_annotation_run(
        &mut self,
        name: &str,
        key: &str,
        wanted: Option<&serde_json::Value>,
        ours: &dyn Fn(&serde_json::Value) -> bool,
    ) -> Result<(), StoreError> {
        self.store(name)?.sync_annotation_run(key, wanted, ours)
    }
}

/// Opens a dataset in its store, reading the working set `set` (the whole dataset when
/// `None`, or when the store reads only whole datasets).
fn open(
    root: &std::path::Path,
    name: &str,
    decl: &DatasetConfig,
    live: Option<&LiveDatabase>,
    set: Option<&WorkingSet>,
) -> Result<Box<dyn Store>, String> {
    match (decl.store, live) {
        (DatasetStore::Mongodb, Some(db)) => {
            let fo_name = decl.name.as_deref().ok_or_else(|| {
                format!("[datasets.{name}] has store = \"mongodb\" but no `name` (the FiftyOne dataset's name)")
            })?;
            let uri = db.uri.value.as_deref().map_err(Clone::clone)?;
            let setting = match decl.uri {
                Some(_) => format!("datasets.{name}.uri"),
                None => crate::config::FIFTYONE_DATABASE_URI.to_string(),
            };
            let at = Address {
                uri,
                uri_setting: &setting,
                database: &db.database.value,
                name: fo_name,
            };
            let store = mongodb::open(&at, root, set).map_err(|e| e.to_string())?;
            Ok(Box::new(store))
        }
        _ => {
            if decl.path.is_empty() {
                return Err(format!("[datasets.{name}] has no `path`"));
            }
            let ds = Dataset::load(root.join(&decl.path)).map_err(|e| e.to_string())?;
            Ok(Box::new(DirStore(ds)))
        }
    }
}
