//! Opening a workspace backend by name: its settings, with secrets resolved here (from the
//! environment or `${env:NAME}` references) and never passed on to a record or a log.

use super::*;
use crate::backend::cvat::CvatBackend;
use crate::backend::cvat::client::Connection;
use crate::config::BackendSettings;

/// Open a backend by name.
pub fn open_backend(
    config: &Config,
    env: &Env,
    name: &str,
) -> Result<Box<dyn Backend>, EngineError> {
    let s = settings(config, name)?;
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
        BackendKind::Cvat => Ok(Box::new(open_cvat(config, env, name)?)),
        kind => Err(EngineError::Run(format!(
            "the {kind} backend client is not available in this version of annoform yet; use a custom backend (see docs)"
        ))),
    }
}

/// Open the CVAT backend `name` of the workspace.
pub fn open_cvat(config: &Config, env: &Env, name: &str) -> Result<CvatBackend, EngineError> {
    let s = settings(config, name)?;
    let setting = |key: &str| resolved(s, env, name, key);
    let mut headers = Vec::new();
    if let Some(h) = s.values.get("headers").and_then(|v| v.value.as_object()) {
        for (k, v) in h {
            let v = crate::secret::resolve(v.as_str().unwrap_or_default(), env)
                .map_err(|e| EngineError::Run(format!("backend `{name}`: headers: {e}")))?;
            headers.push((k.clone(), v));
        }
    }
    let conn = Connection {
        url: setting("url")?.unwrap_or_else(|| "https://app.cvat.ai".into()),
        username: setting("username")?,
        password: setting("password")?,
        api_key: setting("api_key")?,
        headers,
        organization: setting("organization")?,
    };
    let defaults = recordable(s.values.iter().map(|(k, v)| (k, &v.value)));
    let policy = backend::http::HttpPolicy::with_parallelism(config.parallelism.value);
    Ok(CvatBackend::new(name, &conn, defaults, policy)?)
}

fn settings<'c>(config: &'c Config, name: &str) -> Result<&'c BackendSettings, EngineError> {
    config
        .backend(name)
        .ok_or_else(|| EngineError::Run(format!("unknown backend `{name}`")))
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
