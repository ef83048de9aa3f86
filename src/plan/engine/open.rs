//! Opening a workspace backend by name: its settings, with secrets resolved here (from the
//! environment or `${env:NAME}` references) and never passed on to a record or a log. A run
//! may name its own server and login (`backend_config.url`, `organization`,
//! `local_files_root`, and credentials as `${env:NAME}` references): it then gets a backend
//! of its own, opened with the workspace backend's other settings.

use super::*;
use crate::backend::cvat::CvatBackend;
use crate::backend::registry::{self, OpenArgs, OpenError};
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

/// Open the backend of a connection (its kind's opener, see `backend::registry`).
pub fn open_backend(
    config: &Config,
    env: &Env,
    conn: &Connection,
) -> Result<Box<dyn Backend>, EngineError> {
    let s = &settings(config, conn)?;
    Ok((s.kind.entry().open)(&open_args(config, env, conn, s))?)
}

/// Open a CVAT backend.
pub fn open_cvat(
    config: &Config,
    env: &Env,
    conn: &Connection,
) -> Result<CvatBackend, EngineError> {
    let s = &settings(config, conn)?;
    Ok(registry::open_cvat(&open_args(config, env, conn, s))?)
}

/// What a backend is opened with.
fn open_args<'a>(
    config: &Config,
    env: &'a Env,
    conn: &'a Connection,
    s: &BackendSettings,
) -> OpenArgs<'a> {
    OpenArgs {
        name: &conn.backend,
        kind: s.kind,
        settings: s
            .values
            .iter()
            .map(|(k, v)| (k.clone(), v.value.clone()))
            .collect(),
        env,
        policy: backend::http::HttpPolicy::with_parallelism(config.parallelism.value),
    }
}

/// The workspace backend's settings with the connection's overrides.
fn settings(config: &Config, conn: &Connection) -> Result<BackendSettings, EngineError> {
    let name = &conn.backend;
    let mut s = config
        .backend(name)
        .cloned()
        .ok_or_else(|| EngineError::UnknownBackend {
            run: None,
            backend: name.to_string(),
        })?;
    for (k, v) in &conn.overrides {
        let value = serde_json::from_str(v).unwrap_or(Value::Null);
        s.values
            .insert(k.clone(), Setting::new(value, Source::Manifest));
    }
    Ok(s)
}

impl From<OpenError> for EngineError {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Setting(message) => EngineError::Settings { run: None, message },
            OpenError::Backend(e) => EngineError::Backend(e),
        }
    }
}
