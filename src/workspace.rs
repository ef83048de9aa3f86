//! A workspace's datasets, loaded on first use and kept for the rest of the command.

use crate::config::{Config, DatasetConfig, Setting};
use crate::dataset::dir::Dataset;
use indexmap::IndexMap;
use std::collections::HashMap;
use std::path::PathBuf;

/// The datasets of a workspace, by name, loaded lazily and loaded once per command (validation
/// and the engine share them).
pub struct Datasets {
    root: PathBuf,
    declared: IndexMap<String, Setting<DatasetConfig>>,
    loaded: HashMap<String, Result<Dataset, String>>,
}

impl Datasets {
    /// No dataset loaded yet.
    pub fn new(config: &Config) -> Self {
        Datasets {
            root: config.root.clone(),
            declared: config.datasets.clone(),
            loaded: HashMap::new(),
        }
    }

    /// The dataset called `name`: `None` when annoform.toml does not declare it, otherwise
    /// the dataset or why it could not be loaded.
    pub fn get(&mut self, name: &str) -> Option<Result<&Dataset, &str>> {
        let decl = self.declared.get(name)?;
        let path = self.root.join(&decl.value.path);
        let entry = self
            .loaded
            .entry(name.to_string())
            .or_insert_with(|| Dataset::load(path).map_err(|e| e.to_string()));
        Some(entry.as_ref().map_err(String::as_str))
    }

    /// Mutable access, for commands that change datasets.
    pub fn get_mut(&mut self, name: &str) -> Option<Result<&mut Dataset, &str>> {
        let _ = self.get(name)?;
        self.loaded
            .get_mut(name)
            .map(|r| r.as_mut().map_err(|e| e.as_str()))
    }
}
