//! Typed backend settings. A backend's resolved settings (the workspace's table and
//! environment, overlaid with a run's `backend_config`) are deserialised once into its config
//! struct ([`CvatConfig`], [`LabelStudioConfig`], [`DarwinConfig`]: the same structs the JSON
//! Schema is generated from), and clients read fields and the default methods here, never a
//! setting by its name: a misspelt setting does not compile, and each default is written once.

use super::capabilities::{
    CustomConfig, CvatConfig, DarwinConfig, LabelStudioConfig, OneOrList, is_secret_setting,
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// A setting that does not fit its backend's config struct.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("setting `{key}`: {message}")]
pub struct SettingsError {
    pub key: String,
    pub message: String,
}

/// A backend's config struct, read from its resolved settings.
pub trait Settings: DeserializeOwned + Default {
    /// The settings, typed; the error names the setting that does not fit (a secret's value
    /// is never shown).
    fn read(values: &Map<String, Value>) -> Result<Self, SettingsError> {
        serde_json::from_value(Value::Object(values.clone())).map_err(|e| {
            // serde's message does not name the field: find the one that fails alone.
            let key = values
                .iter()
                .find(|(k, v)| {
                    let one = Map::from_iter([((*k).clone(), (*v).clone())]);
                    serde_json::from_value::<Self>(Value::Object(one)).is_err()
                })
                .map(|(k, _)| k.clone())
                .unwrap_or_default();
            let message = if is_secret_setting(&key) {
                "not a valid value (not shown: it is a secret)".to_string()
            } else {
                e.to_string()
            };
            SettingsError { key, message }
        })
    }

    /// Workspace `defaults` overlaid with a run's `settings`, typed.
    fn overlaid(
        defaults: &Map<String, Value>,
        settings: &Map<String, Value>,
    ) -> Result<Self, SettingsError> {
        let mut all = defaults.clone();
        all.extend(settings.clone());
        Self::read(&all)
    }
}

impl Settings for CvatConfig {}
impl Settings for LabelStudioConfig {}
impl Settings for DarwinConfig {}
impl Settings for CustomConfig {}

impl OneOrList {
    /// The strings, one or many.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrList::One(s) => vec![s.clone()],
            OneOrList::List(l) => l.clone(),
        }
    }
}

/// Strings of an optional one-or-list setting (none when unset).
fn strings(v: &Option<OneOrList>) -> Vec<String> {
    v.as_ref().map(OneOrList::to_vec).unwrap_or_default()
}

impl CvatConfig {
    /// The server when `url` is unset.
    pub const DEFAULT_URL: &str = "https://app.cvat.ai";
    /// JPEG quality of uploaded images when `image_quality` is unset (FiftyOne's).
    pub const DEFAULT_IMAGE_QUALITY: u64 = 75;

    /// JPEG quality of uploaded images.
    pub fn image_quality(&self) -> u64 {
        self.image_quality.unwrap_or(Self::DEFAULT_IMAGE_QUALITY)
    }

    /// Whether CVAT prepares chunks on the fly (default true).
    pub fn use_cache(&self) -> bool {
        self.use_cache.unwrap_or(true)
    }

    /// The task name prefix, when one is set (an empty one is none).
    pub fn task_name(&self) -> Option<&str> {
        self.task_name.as_deref().filter(|n| !n.is_empty())
    }

    /// Usernames tasks are assigned to, round-robin.
    pub fn task_assignees(&self) -> Vec<String> {
        strings(&self.task_assignee)
    }

    /// Usernames jobs are assigned to, round-robin.
    pub fn job_assignees(&self) -> &[String] {
        self.job_assignees.as_deref().unwrap_or_default()
    }

    /// Issue tracker URLs linked to tasks, round-robin.
    pub fn issue_trackers(&self) -> Vec<String> {
        strings(&self.issue_tracker)
    }

    /// Whether the run creates its own project (not given an existing `project_id`).
    pub fn creates_project(&self) -> bool {
        self.project_id.is_none()
    }
}

impl LabelStudioConfig {
    /// The server when `url` is unset.
    pub const DEFAULT_URL: &str = "http://localhost:8080";
}

impl DarwinConfig {
    /// The V7 host's root when `url` is unset.
    pub const DEFAULT_URL: &str = "https://darwin.v7labs.com";
    /// Seconds to wait for processing or an export when unset (FiftyOne waits forever).
    pub const DEFAULT_WAIT_SECS: f64 = 600.0;

    /// How long uploaded items may stay `processing`.
    pub fn processing_wait(&self) -> std::time::Duration {
        wait(self.processing_timeout)
    }

    /// How long a download's export may take.
    pub fn export_wait(&self) -> std::time::Duration {
        wait(self.export_timeout)
    }

    /// The run's settings (from its record) with the waits of `current` (the workspace's
    /// settings now, when set there: a wait is not part of what a run made).
    pub fn with_waits_of(self, current: &DarwinConfig) -> DarwinConfig {
        DarwinConfig {
            processing_timeout: current.processing_timeout.or(self.processing_timeout),
            export_timeout: current.export_timeout.or(self.export_timeout),
            external_storage: self
                .external_storage
                .or_else(|| current.external_storage.clone()),
            ..self
        }
    }
}

fn wait(secs: Option<f64>) -> std::time::Duration {
    std::time::Duration::from_secs_f64(
        secs.unwrap_or(DarwinConfig::DEFAULT_WAIT_SECS)
            .clamp(0.0, 1e9),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn settings_are_typed_once_with_defaults_in_one_place() {
        let c =
            CvatConfig::read(&map(json!({"segment_size": 10, "task_assignee": "ann"}))).unwrap();
        assert_eq!(c.segment_size, Some(10));
        assert_eq!(c.image_quality(), 75);
        assert!(c.use_cache());
        assert_eq!(c.task_assignees(), vec!["ann".to_string()]);
        assert!(c.creates_project());
        let run = CvatConfig::overlaid(
            &map(json!({"image_quality": 90, "project_id": 3})),
            &map(json!({"image_quality": 60})),
        )
        .unwrap();
        assert_eq!((run.image_quality(), run.project_id), (60, Some(3)));
    }

    #[test]
    fn a_setting_that_does_not_fit_is_named_and_secrets_are_not_shown() {
        let e = CvatConfig::read(&map(json!({"url": "x", "image_quality": "high"}))).unwrap_err();
        assert_eq!(e.key, "image_quality");
        assert!(e.to_string().contains("\"high\""), "{e}");
        let e = CvatConfig::read(&map(json!({"segmnt_size": 3}))).unwrap_err();
        assert!(e.to_string().contains("segmnt_size"), "{e}");
        let e = LabelStudioConfig::read(&map(json!({"api_key": ["hunter2-secret"]}))).unwrap_err();
        assert_eq!(e.key, "api_key");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}
