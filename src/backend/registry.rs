//! Every kind of backend in one table, [`KINDS`]: its name, capabilities, config schema,
//! default URL, the credentials it needs, the settings it refuses and how it is opened. A new
//! kind is a row here (and its name in [`BackendKind`]); validation, `config show`, the JSON
//! Schema and the engine all read this table.

use super::capabilities::{
    self, BackendKind, Capabilities, CustomConfig, CvatConfig, DarwinConfig, LabelStudioConfig,
    SecretRef,
};
use super::http::HttpPolicy;
use super::settings::{Settings, SettingsError};
use super::{Backend, BackendError};
use crate::config::Env;
use serde_json::{Map, Value};

/// One kind of backend.
pub struct Kind {
    pub kind: BackendKind,
    /// Its name in manifests, `annoform.toml` and environment variables.
    pub name: &'static str,
    pub capabilities: &'static Capabilities,
    /// The JSON Schema of its `backend_config` (and `[backends.<name>]` table).
    pub config_schema: fn() -> schemars::Schema,
    /// The server when `url` is unset.
    pub default_url: Option<&'static str>,
    /// The sets of secret settings that each let it connect (any one will do; none: it needs
    /// no credentials).
    pub credentials: &'static [&'static [&'static str]],
    /// Settings FiftyOne documents that it refuses, with why: a setting is honoured or
    /// refused with this note, never ignored.
    pub refused: &'static [(&'static str, &'static str)],
    /// Where a run goes, read from its resolved settings (run `key` of dataset `dataset`).
    pub placement: Placer,
    /// Connects to it.
    pub open: Opener,
}

/// Where a run goes in its backend, as the engine needs it whatever the kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The project the run's tasks go in (Darwin: its dataset slug).
    pub project_name: String,
    /// The most samples per task, when the settings give one.
    pub task_size: Option<u64>,
}

/// The project of a run that names none: `annoform/<dataset>/<key>`.
fn own_project(dataset: &str, key: &str) -> String {
    format!("annoform/{dataset}/{key}")
}

/// Reads where run `key` of dataset `dataset` (of videos when `Media::Video`) goes from its
/// resolved settings.
pub type Placer = fn(&Map<String, Value>, &str, &str, Media) -> Result<Placement, SettingsError>;

/// What a run's samples are, as placement needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    Images,
    Video,
}

/// Opens a backend from its settings.
pub type Opener = fn(&OpenArgs<'_>) -> Result<Box<dyn Backend>, OpenError>;

/// The kinds.
pub static KINDS: [Kind; 4] = [
    Kind {
        kind: BackendKind::Cvat,
        name: "cvat",
        capabilities: &capabilities::CVAT,
        config_schema: || schemars::schema_for!(CvatConfig),
        default_url: Some(CvatConfig::DEFAULT_URL),
        credentials: &[&["api_key"], &["username", "password"]],
        refused: &[(
            "job_reviewers",
            "CVAT 2.x has no job reviewers (FiftyOne: \"only available in CVAT v1 servers\"); \
             assign reviews in CVAT's UI, or use `job_assignees`",
        )],
        // One video per task, whatever `task_size` says, as FiftyOne's CVAT backend does.
        placement: |s, dataset, key, media| {
            let c = CvatConfig::read(s)?;
            Ok(Placement {
                project_name: c.project_name.unwrap_or_else(|| own_project(dataset, key)),
                task_size: match media {
                    Media::Video => Some(1),
                    Media::Images => c.task_size,
                },
            })
        },
        open: |a| Ok(Box::new(open_cvat(a)?)),
    },
    Kind {
        kind: BackendKind::Labelstudio,
        name: "labelstudio",
        capabilities: &capabilities::LABELSTUDIO,
        config_schema: || schemars::schema_for!(LabelStudioConfig),
        default_url: Some(LabelStudioConfig::DEFAULT_URL),
        credentials: &[&["api_key"]],
        refused: &[],
        placement: |s, dataset, key, _| {
            let c = LabelStudioConfig::read(s)?;
            Ok(Placement {
                project_name: c.project_name.unwrap_or_else(|| own_project(dataset, key)),
                task_size: None,
            })
        },
        open: open_labelstudio,
    },
    Kind {
        kind: BackendKind::Darwin,
        name: "darwin",
        capabilities: &capabilities::DARWIN,
        config_schema: || schemars::schema_for!(DarwinConfig),
        default_url: Some(DarwinConfig::DEFAULT_URL),
        credentials: &[&["api_key"]],
        refused: &[],
        // FiftyOne's default slug: the key, lower case, spaces as dashes.
        placement: |s, _, key, _| {
            let c = DarwinConfig::read(s)?;
            Ok(Placement {
                project_name: c
                    .dataset_slug
                    .unwrap_or_else(|| key.to_lowercase().replace(' ', "-")),
                task_size: None,
            })
        },
        open: open_darwin,
    },
    Kind {
        kind: BackendKind::Custom,
        name: "custom",
        capabilities: &capabilities::CUSTOM,
        config_schema: || schemars::schema_for!(CustomConfig),
        default_url: None,
        credentials: &[],
        refused: &[],
        placement: |s, dataset, key, _| {
            let c = CustomConfig::read(s)?;
            Ok(Placement {
                project_name: c.project_name.unwrap_or_else(|| own_project(dataset, key)),
                task_size: c.task_size,
            })
        },
        open: open_custom,
    },
];

impl BackendKind {
    /// Its row of [`KINDS`].
    pub fn entry(self) -> &'static Kind {
        KINDS
            .iter()
            .find(|k| k.kind == self)
            .expect("every BackendKind has a row in KINDS (tested)")
    }

    /// Where run `key` of dataset `dataset` goes, read from its resolved `settings`.
    pub fn placement(
        self,
        settings: &Map<String, Value>,
        dataset: &str,
        key: &str,
        media: Media,
    ) -> Result<Placement, SettingsError> {
        (self.entry().placement)(settings, dataset, key, media)
    }

    /// Why this backend refuses setting `name`, if it does.
    pub fn refused(self, name: &str) -> Option<&'static str> {
        self.entry()
            .refused
            .iter()
            .find(|(r, _)| *r == name)
            .map(|(_, why)| *why)
    }
}

/// Why a backend could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A setting that cannot be used; the message names the backend and the setting.
    #[error("{0}")]
    Setting(String),
    /// The server refused or could not be reached.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// What an opener gets.
pub struct OpenArgs<'a> {
    /// The workspace backend's name.
    pub name: &'a str,
    pub kind: BackendKind,
    /// Its settings (workspace, environment, a run's connection overrides), secrets as given
    /// (from the environment, or `${env:NAME}` references resolved here).
    pub settings: Map<String, Value>,
    pub env: &'a Env,
    pub policy: HttpPolicy,
}

impl OpenArgs<'_> {
    /// The settings in the kind's config struct; first, a refused setting is an error.
    pub fn typed<T: Settings>(&self) -> Result<T, OpenError> {
        let name = self.name;
        for k in self.settings.keys() {
            if let Some(why) = self.kind.refused(k) {
                return Err(OpenError::Setting(format!(
                    "backend `{name}`: `{k}` is not supported: {why}"
                )));
            }
        }
        T::read(&self.settings).map_err(|e| OpenError::Setting(format!("backend `{name}`: {e}")))
    }

    /// A string setting `key`, a literal or a `${env:NAME}` reference, resolved.
    pub fn resolve(&self, key: &str, v: Option<&str>) -> Result<Option<String>, OpenError> {
        v.map(|v| crate::secret::resolve(v, self.env))
            .transpose()
            .map_err(|e| OpenError::Setting(format!("backend `{}`: {key}: {e}", self.name)))
    }

    /// A secret setting `key`, resolved.
    pub fn secret(&self, key: &str, v: &Option<SecretRef>) -> Result<Option<String>, OpenError> {
        self.resolve(key, v.as_ref().map(|r| r.0.as_str()))
    }

    /// The settings a record and a project may keep (see [`recordable`]).
    pub fn recordable(&self) -> Map<String, Value> {
        recordable(self.settings.iter())
    }
}

/// The settings a record and a project may keep: no secrets, and no `${env:...}` references
/// (they are resolved at run time and never stored).
pub fn recordable<'v>(
    settings: impl Iterator<Item = (&'v String, &'v Value)>,
) -> Map<String, Value> {
    settings
        .filter(|(k, v)| !capabilities::is_secret_setting(k) && !v.to_string().contains("${env:"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Opens a CVAT server (logged in: a wrong login fails here).
pub fn open_cvat(a: &OpenArgs<'_>) -> Result<super::cvat::CvatBackend, OpenError> {
    let c: CvatConfig = a.typed()?;
    let mut headers = Vec::new();
    for (k, v) in c.headers.iter().flatten() {
        headers.push((
            k.clone(),
            a.resolve("headers", Some(&v.0))?.unwrap_or_default(),
        ));
    }
    let conn = super::cvat::client::Connection {
        url: a
            .resolve("url", c.url.as_deref())?
            .unwrap_or_else(|| CvatConfig::DEFAULT_URL.into()),
        username: a.secret("username", &c.username)?,
        password: a.secret("password", &c.password)?,
        email: a.secret("email", &c.email)?,
        api_key: a.secret("api_key", &c.api_key)?,
        headers,
        organization: a.resolve("organization", c.organization.as_deref())?,
    };
    let policy = a.policy.clone();
    Ok(super::cvat::CvatBackend::new(
        a.name,
        &conn,
        a.recordable(),
        policy,
    )?)
}

/// Opens a Label Studio server.
fn open_labelstudio(a: &OpenArgs<'_>) -> Result<Box<dyn Backend>, OpenError> {
    let c: LabelStudioConfig = a.typed()?;
    let url = a
        .resolve("url", c.url.as_deref())?
        .unwrap_or_else(|| LabelStudioConfig::DEFAULT_URL.into());
    let api_key = a.secret("api_key", &c.api_key)?.unwrap_or_default();
    let root = a
        .resolve("local_files_root", c.local_files_root.as_deref())?
        .map(std::path::PathBuf::from);
    Ok(Box::new(super::labelstudio::LabelStudioBackend::new(
        a.name,
        &url,
        &api_key,
        root,
        a.policy.clone(),
    )?))
}

/// Opens a V7 Darwin team (its API key checked by the first call).
fn open_darwin(a: &OpenArgs<'_>) -> Result<Box<dyn Backend>, OpenError> {
    let c: DarwinConfig = a.typed()?;
    let url = a
        .resolve("url", c.url.as_deref())?
        .unwrap_or_else(|| DarwinConfig::DEFAULT_URL.into());
    let api_key = a.secret("api_key", &c.api_key)?.unwrap_or_default();
    Ok(Box::new(super::darwin::DarwinBackend::new(
        a.name,
        &url,
        &api_key,
        a.policy.clone(),
        c,
    )?))
}

/// Starts a custom backend's program.
fn open_custom(a: &OpenArgs<'_>) -> Result<Box<dyn Backend>, OpenError> {
    let c: CustomConfig = a.typed()?;
    let name = a.name;
    let command = c
        .command
        .ok_or_else(|| OpenError::Setting(format!("backend `{name}` has no `command`")))?
        .iter()
        .map(|c| {
            crate::secret::resolve(c, a.env)
                .map_err(|e| OpenError::Setting(format!("backend `{name}`: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Box::new(super::custom::CustomBackend::start(
        name,
        &command,
        &a.recordable(),
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_row_named_as_its_kind() {
        for k in BackendKind::builtins().chain([BackendKind::Custom]) {
            assert_eq!(KINDS.iter().filter(|r| r.kind == k).count(), 1, "{k:?}");
            assert_eq!(k.entry().name, k.as_str());
        }
        assert_eq!(BackendKind::builtins().count(), KINDS.len() - 1);
    }

    #[test]
    fn placement_reads_each_kinds_settings_typed_with_its_defaults() {
        let place = |k: BackendKind, v: Value| {
            k.placement(v.as_object().unwrap(), "ds", "My Run", Media::Images)
        };
        let placed = |name: &str, task_size| Placement {
            project_name: name.into(),
            task_size,
        };
        let cvat = place(BackendKind::Cvat, serde_json::json!({"task_size": 5}));
        assert_eq!(cvat.unwrap(), placed("annoform/ds/My Run", Some(5)));
        let ls = place(
            BackendKind::Labelstudio,
            serde_json::json!({"project_name": "P"}),
        );
        assert_eq!(ls.unwrap(), placed("P", None));
        let darwin = place(BackendKind::Darwin, serde_json::json!({}));
        assert_eq!(darwin.unwrap(), placed("my-run", None));
        let darwin = place(
            BackendKind::Darwin,
            serde_json::json!({"dataset_slug": "team"}),
        );
        assert_eq!(darwin.unwrap(), placed("team", None));
        let video = BackendKind::Cvat.placement(
            serde_json::json!({"task_size": 5}).as_object().unwrap(),
            "ds",
            "My Run",
            Media::Video,
        );
        assert_eq!(
            video.unwrap(),
            placed("annoform/ds/My Run", Some(1)),
            "one video per task"
        );
        let wrong = place(BackendKind::Cvat, serde_json::json!({"task_size": "ten"}));
        assert_eq!(wrong.unwrap_err().key, "task_size");
    }
}
