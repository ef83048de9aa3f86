//! A workspace's datasets, loaded on first use and kept for the rest of the command.
//!
//! Each dataset lives in a store (`dir` or `mongodb`); both are read into the same in-memory
//! [`Dataset`]. A merge's changes are store operations ([`Changes`]): [`Datasets::update`]
//! makes them in memory, then the `dir` store saves the changed files and the `mongodb` store
//! sends them to the live database.

use crate::config::{Config, DatasetConfig, DatasetStore, LiveDatabase, Setting};
use crate::dataset::change::Changes;
use crate::dataset::dir::{Dataset, DatasetError};
use crate::dataset::mongodb::{self, Address, Live, LiveError, RunSync};
use crate::dataset::view::{self, View};
use crate::manifest::types::ViewStage;
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
    /// Not loaded, or (for [`Datasets::update_dir`]) not a directory.
    #[error("dataset `{0}` is not loaded")]
    NotLoaded(String),
}

impl Datasets {
    /// No dataset loaded yet.
    pub fn new(config: &Config) -> Self {
        Datasets {
            root: config.root.clone(),
            declared: config.datasets.clone(),
            live: config.live.clone(),
            loaded: HashMap::new(),
        }
    }

    /// The dataset called `name`: `None` when annoform.toml does not declare it, otherwise
    /// the dataset or why it could not be loaded.
    pub fn get(&mut self, name: &str) -> Option<Result<&Dataset, &str>> {
        let decl = self.declared.get(name)?;
        if !self.loaded.contains_key(name) {
            let opened = open(&self.root, name, &decl.value, self.live.get(name));
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

    /// Writes the store operations `changes` gives for a loaded dataset (see [`Changes`]):
    /// made in the in-memory dataset, then stored: a directory saves its changed files, a
    /// live dataset sends them to the database.
    pub fn update<E>(
        &mut self,
        name: &str,
        changes: impl FnOnce(&Dataset) -> Result<Changes, E>,
    ) -> Result<(), E>
    where
        E: From<StoreError>,
    {
        let Some(Ok(opened)) = self.loaded.get_mut(name) else {
            return Err(StoreError::NotLoaded(name.to_string()).into());
        };
        let changes = changes(&opened.ds)?;
        changes
            .apply(&mut opened.ds)
            .map_err(|e| StoreError::from(e).into())?;
        match opened.live.as_mut() {
            None => opened.ds.save().map_err(StoreError::from)?,
            Some(live) => live
                .write(&opened.ds, &changes)
                .map(|_| ())
                .map_err(StoreError::from)?,
        }
        Ok(())
    }

    /// Changes a directory dataset's document (its runs) with `change` and saves it; a live
    /// dataset's runs are FiftyOne's, synced by [`Datasets::sync_live_run`].
    pub fn update_dir<E>(
        &mut self,
        name: &str,
        change: impl FnOnce(&mut Dataset) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<StoreError>,
    {
        let Some(Ok(Opened { ds, live: None })) = self.loaded.get_mut(name) else {
            return Err(StoreError::NotLoaded(name.to_string()).into());
        };
        change(ds)?;
        ds.save().map_err(|e| StoreError::from(e).into())
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
            let (ds, live) = mongodb::open(&at, root).map_err(|e| e.to_string())?;
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
