//! A workspace's datasets, loaded on first use and kept for the rest of the command.
//!
//! Each dataset lives in a store (`dir` or `mongodb`); both are read into the same in-memory
//! [`Dataset`]. Changes are made in memory by [`Datasets::update`], which then hands them to
//! the dataset's store: the `dir` store saves the changed files, the `mongodb` store writes
//! the changed fields to the live database.

use crate::config::{Config, DatasetConfig, DatasetStore, LiveDatabase, Setting};
use crate::dataset::FieldPath;
use crate::dataset::dir::{Dataset, DatasetError};
use crate::dataset::ejson::ObjectId;
use crate::dataset::mongodb::{self, Address, BeforeText, Live, LiveError, RunSync};
use crate::dataset::view::{self, View};
use crate::dataset::working_set::WorkingSet;
use crate::manifest::load::LoadedRun;
use crate::manifest::types::ViewStage;
use crate::state::RunRecord;
use indexmap::IndexMap;
use std::collections::HashMap;
use std::path::PathBuf;

/// A loaded dataset and, for a live one, its connection.
struct Opened {
    ds: Dataset,
    live: Option<Live>,
}

/// The datasets of a workspace, by name, loaded lazily and loaded once per command (validation
/// and the engine share them).
pub struct Datasets {
    root: PathBuf,
    declared: IndexMap<String, Setting<DatasetConfig>>,
    live: IndexMap<String, LiveDatabase>,
    /// What the command needs of each dataset; a dataset missing here is read whole.
    working_sets: HashMap<String, WorkingSet>,
    loaded: HashMap<String, Result<Opened, String>>,
}

/// Why changed datasets could not be stored.
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
    /// their views select, with the fields they use. Widen with [`Datasets::add_record`]
    /// before the first [`Datasets::get`].
    pub fn for_runs(config: &Config, runs: &[LoadedRun]) -> Self {
        let mut datasets = Datasets::new(config);
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
    /// the dataset or why it could not be loaded.
    pub fn get(&mut self, name: &str) -> Option<Result<&Dataset, &str>> {
        let decl = self.declared.get(name)?;
        if !self.loaded.contains_key(name) {
            let set = self.working_sets.get(name);
            let opened = open(&self.root, name, &decl.value, self.live.get(name), set);
            self.loaded.insert(name.to_string(), opened);
        }
        let entry = self.loaded.get(name)?;
        Some(entry.as_ref().map(|o| &o.ds).map_err(String::as_str))
    }

    /// Whether `name` lives in a FiftyOne database.
    pub fn is_live(&self, name: &str) -> bool {
        self.declared
            .get(name)
            .is_some_and(|d| d.value.store == DatasetStore::Mongodb)
    }

    /// Changes a loaded dataset with `change`, then stores what changed: `touched` lists the
    /// sample fields `change` may write (a live store writes those; a directory saves its
    /// changed files).
    pub fn update<E>(
        &mut self,
        name: &str,
        touched: &[(ObjectId, FieldPath)],
        change: impl FnOnce(&mut Dataset) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<StoreError>,
    {
        let Some(Ok(opened)) = self.loaded.get_mut(name) else {
            return Err(StoreError::NotLoaded(name.to_string()).into());
        };
        let Some(live) = opened.live.as_mut() else {
            change(&mut opened.ds)?;
            return opened.ds.save().map_err(|e| StoreError::from(e).into());
        };
        let before = BeforeText::of(&opened.ds, touched);
        change(&mut opened.ds)?;
        live.write_texts(&opened.ds, &before)
            .map_err(|e| StoreError::from(e).into())
            .map(|_| ())
    }
}

impl Datasets {
    /// The view `stages` select of the loaded dataset `name`: a live dataset's server answers
    /// the leading stages it can (see [`mongodb::query`]), the rest run in memory.
    pub fn view(&self, name: &str, stages: &[ViewStage]) -> Result<View, StoreError> {
        let Some(Ok(opened)) = self.loaded.get(name) else {
            return Err(StoreError::NotLoaded(name.to_string()));
        };
        let from = match &opened.live {
            Some(live) => live.select(stages, &opened.ds)?,
            None => None,
        };
        Ok(view::apply_from(stages, &opened.ds, from)?)
    }
}

impl Datasets {
    /// Makes a live dataset's FiftyOne annotation run `key` match `wanted` (removed when
    /// `None`); runs for which `ours` is false are left alone (see
    /// [`Live::sync_annotation_run`]). A directory dataset keeps its runs in its document:
    /// change them with [`Datasets::update`].
    pub fn sync_live_run(
        &mut self,
        name: &str,
        key: &str,
        wanted: Option<&serde_json::Value>,
        ours: impl Fn(&serde_json::Value) -> bool,
    ) -> Result<RunSync, StoreError> {
        let Some(Ok(Opened {
            live: Some(live), ..
        })) = self.loaded.get_mut(name)
        else {
            return Err(StoreError::NotLoaded(name.to_string()));
        };
        Ok(live.sync_annotation_run(key, wanted, ours)?)
    }
}

/// Reads a dataset from its store.
fn open(
    root: &std::path::Path,
    name: &str,
    decl: &DatasetConfig,
    live: Option<&LiveDatabase>,
    set: Option<&WorkingSet>,
) -> Result<Opened, String> {
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
            let (ds, live) = mongodb::open(&at, root, set).map_err(|e| e.to_string())?;
            Ok(Opened {
                ds,
                live: Some(live),
            })
        }
        _ => {
            if decl.path.is_empty() {
                return Err(format!("[datasets.{name}] has no `path`"));
            }
            let ds = Dataset::load(root.join(&decl.path)).map_err(|e| e.to_string())?;
            Ok(Opened { ds, live: None })
        }
    }
}
