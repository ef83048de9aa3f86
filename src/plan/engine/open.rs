//! Opening a workspace backend by name: its settings, with secrets resolved here (from the
//! environment or `${env:NAME}` references) and never passed on to a record or a log. A run
//! may name its own server and login (`backend_config.url`, `organization`,
//! `local_files_root`, and credentials as `${env:NAME}` references): it then gets a backend
//! of its own, opened with the workspace backend's other settings.

use super::*;
use crate::backend::capabilities::{CvatConfig, DarwinConfig, LabelStudioConfig, SecretRef};
use crate::backend::cvat::CvatBackend;
use crate::backend::settings::Settings;
use crate::config::{BackendSettings, Setting, Source};

/// The settings that choose where and as whom a backend connects; a run may override each
/// of them (credentials only as `${env:NAME}` references, which `validate` enforces).
pub const CONNECTION_SETTINGS: [&str; 8] = [
    "url",
    "organization",
    "local_files_root",
    "username",
    "password",
    "email",
    "api_key",
    "headers",
];

/// The server a run talks to: a workspace backend, with the connection settings the run
/// overrides. Runs with equal connections share one opened backend. Credentials are held as
/// the run wrote them (`${env:NAME}` references), never resolved here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Connection {
    /// The workspace backend's name.
    pub backend: String,
    /// The overridden connection settings (as JSON text), in [`CONNECTION_SETTINGS`] order.
    overrides: Vec<(String, String)>,
}

impl Connection {
    /// The backend `backend` with the connection settings found in `settings` (a manifest's
    /// `backend_config`, or a record's settings).
    pub fn new(backend: &str, settings: &serde_json::Map<String, Value>) -> Self {
        let overrides = CONNECTION_SETTINGS
            .iter()
            .filter_map(|k| Some((k.to_string(), settings.get(*k)?.to_string())))
            .collect();
        Connection {
            backend: backend.to_string(),
            overrides,
        }
    }

    /// The connection a record's project lives on: the settings it was created with (a
    /// record holds no credentials: the workspace backend's are used).
    pub fn of_record(record: &RunRecord) -> Self {
        Connection::new(&record.backend, &record.backend_config)
    }

    /// The connection of a recorded run: its manifest's (with the run's own credentials)
    /// while the manifest names the same backend, else the record's.
    pub fn of_run(record: &RunRecord, runs: &[LoadedRun]) -> Self {
        runs.iter()
            .map(|l| &l.run)
            .find(|r| r.dataset == record.dataset && r.key.0 == record.key)
            .filter(|r| r.backend.as_deref().is_none_or(|b| b == record.backend))
            .map_or_else(
                || Connection::of_record(record),
                |r| Connection::new(&record.backend, &r.backend_config),
            )
    }
}

/// Open the backend of a connection.
pub fn open_backend(
    config: &Config,
    env: &Env,
    conn: &Connection,
) -> Result<Box<dyn Backend>, EngineError> {
    let name = conn.backend.as_str();
    let s = &settings(config, conn)?;
    for k in s.values.keys() {
        if let Some(why) = backend::capabilities::refused_setting(s.kind, k) {
            return Err(EngineError::Run(format!(
                "backend `{name}`: `{k}` is not supported: {why}"
            )));
        }
    }
    match s.kind {
        BackendKind::Custom => {
            let command: Vec<String> = s
                .values
                .get("command")
                .and_then(|c| serde_json::from_value(c.value.clone()).ok())
                .ok_or_else(|| EngineError::Run(format!("backend `{name}` has no `command`")))?;
            let command = command
                .iter()
                .map(|c| {
                    crate::secret::resolve(c, env)
                        .map_err(|e| EngineError::Run(format!("backend `{name}`: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let settings = recordable(s.values.iter().map(|(k, v)| (k, &v.value)));
            Ok(Box::new(backend::custom::CustomBackend::start(
                name, &command, &settings,
            )?))
        }
        BackendKind::Labelstudio => {
            let c: LabelStudioConfig = typed(s, name)?;
            let resolve = |key: &str, v: Option<&str>| resolved(v, env, name, key);
            let url = resolve("url", c.url.as_deref())?
                .unwrap_or_else(|| LabelStudioConfig::DEFAULT_URL.into());
            let api_key =
                resolve("api_key", c.api_key.as_ref().map(|r| r.0.as_str()))?.unwrap_or_default();
            let root = resolve("local_files_root", c.local_files_root.as_deref())?
                .map(std::path::PathBuf::from);
            let policy = backend::http::HttpPolicy::with_parallelism(config.parallelism.value);
            Ok(Box::new(backend::labelstudio::LabelStudioBackend::new(
                name, &url, &api_key, root, policy,
            )?))
        }
        BackendKind::Cvat => Ok(Box::new(open_cvat(config, env, conn)?)),
        BackendKind::Darwin => {
            let c: DarwinConfig = typed(s, name)?;
            let resolve = |key: &str, v: Option<&str>| resolved(v, env, name, key);
            let url = resolve("url", c.url.as_deref())?
                .unwrap_or_else(|| DarwinConfig::DEFAULT_URL.into());
            let api_key =
                resolve("api_key", c.api_key.as_ref().map(|r| r.0.as_str()))?.unwrap_or_default();
            let policy = backend::http::HttpPolicy::with_parallelism(config.parallelism.value);
            Ok(Box::new(backend::darwin::DarwinBackend::new(
                name, &url, &api_key, policy, c,
            )?))
        }
    }
}

/// Open a CVAT backend.
pub fn open_cvat(
    config: &Config,
    env: &Env,
    conn: &Connection,
) -> Result<CvatBackend, EngineError> {
    let name = conn.backend.as_str();
    let s = &settings(config, conn)?;
    let c: CvatConfig = typed(s, name)?;
    let resolve = |key: &str, v: Option<&str>| resolved(v, env, name, key);
    let secret = |key: &str, v: &Option<SecretRef>| resolve(key, v.as_ref().map(|r| r.0.as_str()));
    let mut headers = Vec::new();
    for (k, v) in c.headers.iter().flatten() {
        let v = crate::secret::resolve(&v.0, env)
            .map_err(|e| EngineError::Run(format!("backend `{name}`: headers: {e}")))?;
        headers.push((k.clone(), v));
    }
    let cvat = backend::cvat::client::Connection {
        url: resolve("url", c.url.as_deref())?.unwrap_or_else(|| CvatConfig::DEFAULT_URL.into()),
        username: secret("username", &c.username)?,
        password: secret("password", &c.password)?,
        email: secret("email", &c.email)?,
        api_key: secret("api_key", &c.api_key)?,
        headers,
        organization: resolve("organization", c.organization.as_deref())?,
    };
    let defaults = recordable(s.values.iter().map(|(k, v)| (k, &v.value)));
    let policy = backend::http::HttpPolicy::with_parallelism(config.parallelism.value);
    Ok(CvatBackend::new(name, &cvat, defaults, policy)?)
}

/// The workspace backend's settings with the connection's overrides.
fn settings(config: &Config, conn: &Connection) -> Result<BackendSettings, EngineError> {
    let name = &conn.backend;
    let mut s = config
        .backend(name)
        .cloned()
        .ok_or_else(|| EngineError::Run(format!("unknown backend `{name}`")))?;
    for (k, v) in &conn.overrides {
        let value = serde_json::from_str(v).unwrap_or(Value::Null);
        s.values
            .insert(k.clone(), Setting::new(value, Source::Manifest));
    }
    Ok(s)
}

/// The backend's settings in its config struct, read once (a setting that does not fit is
/// an error naming it).
fn typed<T: Settings>(s: &BackendSettings, name: &str) -> Result<T, EngineError> {
    let values = s
        .values
        .iter()
        .map(|(k, v)| (k.clone(), v.value.clone()))
        .collect();
    T::read(&values).map_err(|e| EngineError::Run(format!("backend `{name}`: {e}")))
}

/// A string setting `key`: a literal (from the environment) or a `${env:NAME}` reference
/// (from files), resolved.
fn resolved(
    v: Option<&str>,
    env: &Env,
    name: &str,
    key: &str,
) -> Result<Option<String>, EngineError> {
    v.map(|v| crate::secret::resolve(v, env))
        .transpose()
        .map_err(|e| EngineError::Run(format!("backend `{name}`: {key}: {e}")))
}
