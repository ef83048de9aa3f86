//! Opening a workspace backend by name: its settings, with secrets resolved here (from the
//! environment or `${env:NAME}` references) and never passed on to a record or a log. A run
//! may name its own server and login (`backend_config.url`, `organization`,
//! `local_files_root`, and credentials as `${env:NAME}` references): it then gets a backend
//! of its own, opened with the workspace backend's other settings.

use super::*;
use crate::backend::cvat::CvatBackend;
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
            let setting = |key: &str| resolved(s, env, name, key);
            let url = setting("url")?.unwrap_or_else(|| "http://localhost:8080".into());
            let api_key = setting("api_key")?.unwrap_or_default();
            let root = setting("local_files_root")?.map(std::path::PathBuf::from);
            let policy = backend::http::HttpPolicy::with_parallelism(config.parallelism.value);
            Ok(Box::new(backend::labelstudio::LabelStudioBackend::new(
                name, &url, &api_key, root, policy,
            )?))
        }
        BackendKind::Cvat => Ok(Box::new(open_cvat(config, env, conn)?)),
        BackendKind::Darwin => {
            let setting = |key: &str| resolved(s, env, name, key);
            let url = setting("url")?.unwrap_or_else(|| "https://darwin.v7labs.com".into());
            let api_key = setting("api_key")?.unwrap_or_default();
            let policy = backend::http::HttpPolicy::with_parallelism(config.parallelism.value);
            let defaults = recordable(s.values.iter().map(|(k, v)| (k, &v.value)));
            Ok(Box::new(backend::darwin::DarwinBackend::new(
                name,
                &url,
                &api_key,
                policy,
                backend::darwin::RunSettings::of(&defaults),
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
    let setting = |key: &str| resolved(s, env, name, key);
    let mut headers = Vec::new();
    if let Some(h) = s.values.get("headers").and_then(|v| v.value.as_object()) {
        for (k, v) in h {
            let v = crate::secret::resolve(v.as_str().unwrap_or_default(), env)
                .map_err(|e| EngineError::Run(format!("backend `{name}`: headers: {e}")))?;
            headers.push((k.clone(), v));
        }
    }
    let cvat = backend::cvat::client::Connection {
        url: setting("url")?.unwrap_or_else(|| "https://app.cvat.ai".into()),
        username: setting("username")?,
        password: setting("password")?,
        email: setting("email")?,
        api_key: setting("api_key")?,
        headers,
        organization: setting("organization")?,
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

/// A string setting: a literal (from the environment) or a `${env:NAME}` reference (from
/// files), resolved.
fn resolved(
    s: &BackendSettings,
    env: &Env,
    name: &str,
    key: &str,
) -> Result<Option<String>, EngineError> {
    match s.values.get(key).and_then(|v| v.value.as_str()) {
        None => Ok(None),
        Some(v) => crate::secret::resolve(v, env)
            .map(Some)
            .map_err(|e| EngineError::Run(format!("backend `{name}`: {key}: {e}"))),
    }
}
