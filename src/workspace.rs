//! A workspace's datasets, loaded on first use and kept for the rest of the command.

use crate::config::Config;
use crate::dataset::dir::Dataset;
use std::collections::HashMap;

/// The datasets of a workspace, by name, loaded lazily.
pub struct Datasets<'c> {
    config: &'c Config,
    loaded: HashMap<String, Result<Dataset, String>>,
}

impl<'c> Datasets<'c> {
    /// No dataset loaded yet.
    pub fn new(config: &'c Config) -> Self {
        Datasets {
            config,
            loaded: HashMap::new(),
        }
    }

    /// The dataset called `name`: `None` when annoform.toml does not declare it, otherwise
    /// the dataset or why it could not be loaded.
    pub fn get(&mut self, name: &str) -> Option<Result<&Dataset, &str>> {
        let decl = self.config.datasets.get(name)?;
        let root = &self.config.root;
        let entry = self.loaded.entry(name.to_string()).or_insert_with(|| {
            Dataset::load(root.join(&decl.value.path)).map_err(|e| e.to_string())
        });
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
