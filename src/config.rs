//! The workspace configuration: `annoform.toml` merged with flags, the environment and
//! FiftyOne's `annotation_config.json`, each setting remembering where its value came from.
//!
//! Precedence, highest first (FiftyOne's order): flags > `ANNOFORM_*` env > `FIFTYONE_*` env >
//! `annoform.toml` > `~/.fiftyone/annotation_config.json` > defaults.

use crate::backend::BackendKind;
use crate::backend::capabilities::is_secret_setting;
use crate::diag::{Problem, SourceFile};
use crate::manifest::check;
use crate::manifest::yaml::{Entry, Node, Span, Value};
use crate::state::StateError;
use crate::state::StoreSettings;
use crate::state::postgres::PostgresSettings;
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The workspace config file's name.
pub const FILE_NAME: &str = "annoform.toml";

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    /// FiftyOne's annotation config (path as shown).
    FiftyoneConfig(String),
    /// annoform.toml, with the value's line.
    File(usize),
    /// A `FIFTYONE_*` environment variable.
    FiftyoneEnv(String),
    /// An `ANNOFORM_*` environment variable.
    Env(String),
    /// A command-line flag.
    Flag(&'static str),
    /// A run's `backend_config` in a manifest.
    Manifest,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::FiftyoneConfig(p) => write!(f, "{p}"),
            Source::File(line) => write!(f, "{FILE_NAME}:{line}"),
            Source::FiftyoneEnv(v) | Source::Env(v) => write!(f, "env {v}"),
            Source::Flag(flag) => write!(f, "flag {flag}"),
            Source::Manifest => f.write_str("manifest"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting<T> {
    pub value: T,
    pub source: Source,
}

impl<T> Setting<T> {
    pub(crate) fn new(value: T, source: Source) -> Self {
        Setting { value, source }
    }
}

/// Values given on the command line; they win over everything else.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub manifests: Option<PathBuf>,
    pub parallelism: Option<usize>,
}

/// The environment and home directory the config is resolved against (explicit for tests).
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub vars: BTreeMap<String, String>,
    pub home: Option<PathBuf>,
}

impl Env {
    /// The process environment.
    pub fn from_process() -> Env {
        let vars: BTreeMap<String, String> = std::env::vars().collect();
        let home = vars.get("HOME").map(PathBuf::from);
        Env { vars, home }
    }

    /// A variable's value, if set (and non-empty).
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// How a dataset is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DatasetStore {
    /// A directory in FiftyOne's `FiftyOneDataset` export format.
    Dir,
    /// A live FiftyOne database (MongoDB).
    Mongodb,
}

/// A `[datasets.<name>]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    /// Store kind (default `dir`).
    #[serde(default = "default_dataset_store")]
    pub store: DatasetStore,
    /// `dir`: where the dataset is, relative to the workspace.
    #[serde(default)]
    pub path: String,
    /// `mongodb`: the FiftyOne dataset's name.
    pub name: Option<String>,
    /// `mongodb`: the connection URI, as a `${env:NAME}` reference (default:
    /// `FIFTYONE_DATABASE_URI`).
    pub uri: Option<String>,
    /// `mongodb`: the database (default: `FIFTYONE_DATABASE_NAME`, else `fiftyone`).
    pub database: Option<String>,
}

/// Where a `mongodb` dataset's database is: the URI resolved (a secret, never shown) or why
/// it cannot be, and the database name, each with its source.
#[derive(Clone)]
pub struct LiveDatabase {
    pub uri: Setting<Result<String, String>>,
    pub database: Setting<String>,
}

impl fmt::Debug for LiveDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LiveDatabase {{ uri: (secret), database: {:?} }}",
            self.database.value
        )
    }
}

/// FiftyOne's variables for its database.
pub const FIFTYONE_DATABASE_URI: &str = "FIFTYONE_DATABASE_URI";
pub const FIFTYONE_DATABASE_NAME: &str = "FIFTYONE_DATABASE_NAME";

impl LiveDatabase {
    /// The dataset table's `uri` (a `${env:NAME}` reference resolved here) else
    /// `FIFTYONE_DATABASE_URI`; `FIFTYONE_DATABASE_NAME` else the table's `database` else
    /// `fiftyone`.
    fn resolve(d: &DatasetConfig, name: &str, line: &dyn Fn(&str) -> usize, env: &Env) -> Self {
        let uri = match &d.uri {
            Some(u) => Setting::new(
                crate::secret::resolve(u, env).map_err(|e| format!("datasets.{name}.uri: {e}")),
                Source::File(line(&format!("datasets.{name}.uri"))),
            ),
            None => match env.var(FIFTYONE_DATABASE_URI) {
                Some(v) => Setting::new(
                    Ok(v.to_string()),
                    Source::FiftyoneEnv(FIFTYONE_DATABASE_URI.into()),
                ),
                None => Setting::new(
                    Err(format!(
                        "no database URI: set ${FIFTYONE_DATABASE_URI} (as FiftyOne reads it) or `uri = \"${{env:NAME}}\"` in [datasets.{name}]"
                    )),
                    Source::Default,
                ),
            },
        };
        let database = pick(
            None,
            None,
            env.var(FIFTYONE_DATABASE_NAME).map(|v| {
                (
                    v.to_string(),
                    Source::FiftyoneEnv(FIFTYONE_DATABASE_NAME.into()),
                )
            }),
            d.database
                .clone()
                .map(|v| (v, Source::File(line(&format!("datasets.{name}.database"))))),
            None,
            ("fiftyone".to_string(), Source::Default),
        );
        LiveDatabase { uri, database }
    }
}

fn default_dataset_store() -> DatasetStore {
    DatasetStore::Dir
}

/// The state store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StateStore {
    /// JSON files in the workspace.
    Local,
    /// A PostgreSQL database a team shares.
    Postgres,
}

impl StateStore {
    /// The name as written in `annoform.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            StateStore::Local => "local",
            StateStore::Postgres => "postgres",
        }
    }
}

/// The `[state]` table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// Store kind (default `local`).
    pub store: Option<StateStore>,
    /// Where the local store keeps records (default `.annoform/state`).
    pub path: Option<String>,
    /// The PostgreSQL connection URL, as a `${env:NAME}` reference (it holds a password);
    /// `ANNOFORM_STATE_URL` wins over it.
    pub url: Option<String>,
    /// The PostgreSQL schema of annoform's tables (default `annoform`).
    pub schema: Option<String>,
    /// The name the workspace's records and lock are kept under in PostgreSQL (default: the
    /// workspace directory's name); clones that share it share state.
    pub workspace: Option<String>,
}

/// `annoform.toml` as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "annoform workspace configuration")]
pub struct FileConfig {
    /// Directory of the manifests (default `manifests`).
    pub manifests: Option<String>,
    /// Backend used by runs that name none (default `cvat`).
    pub default_backend: Option<String>,
    /// Concurrent requests per backend (default 8).
    #[schemars(range(min = 1, max = 256))]
    pub parallelism: Option<u64>,
    /// The state store.
    pub state: Option<StateConfig>,
    /// Datasets by name.
    #[serde(default)]
    pub datasets: IndexMap<String, DatasetConfig>,
    /// Backend settings by name; a name other than cvat/labelstudio/darwin needs `type` or
    /// `command`. Secrets are `${env:NAME}` references.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, serde_json::Map<String, serde_json::Value>>")]
    pub backends: IndexMap<String, serde_json::Map<String, Json>>,
}

/// One backend's resolved settings.
#[derive(Debug, Clone)]
pub struct BackendSettings {
    pub kind: BackendKind,
    pub values: IndexMap<String, Setting<Json>>,
    /// Secret settings whose `${env:NAME}` reference names an unset variable: setting → NAME.
    pub unset: IndexMap<String, String>,
}

impl BackendSettings {
    /// What is missing for backend `name` to connect: each secret whose `${env:NAME}`
    /// variable is unset, or else the credentials a built-in backend needs and has none of,
    /// by their primary variable names.
    pub fn missing_secrets(&self, name: &str) -> Vec<String> {
        if !self.unset.is_empty() {
            return self
                .unset
                .iter()
                .map(|(param, var)| format!("backends.{name}.{param} needs ${var}"))
                .collect();
        }
        let has = |param: &str| self.values.contains_key(param);
        let var = |param: &str| format!("${}", secret_env_var(name, param));
        let ways = self.kind.entry().credentials;
        if ways.is_empty() || ways.iter().any(|set| set.iter().all(|p| has(p))) {
            return Vec::new();
        }
        let ways: Vec<String> = ways
            .iter()
            .map(|set| set.iter().map(|p| var(p)).collect::<Vec<_>>().join(" and "))
            .collect();
        vec![format!("set {}", ways.join(", or "))]
    }
}

/// The one documented variable of a backend's secret: `ANNOFORM_<BACKEND>_<SETTING>`
/// (FiftyOne's `FIFTYONE_<BACKEND>_<SETTING>` and `${env:NAME}` references also work).
pub fn secret_env_var(backend: &str, param: &str) -> String {
    format!("ANNOFORM_{}_{}", env_name(backend), param.to_uppercase())
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The workspace root (where annoform.toml is, or would be).
    pub root: PathBuf,
    /// Whether annoform.toml exists.
    pub has_file: bool,
    pub manifests: Setting<PathBuf>,
    pub default_backend: Setting<String>,
    pub parallelism: Setting<usize>,
    pub state_store: Setting<String>,
    pub state_path: Setting<PathBuf>,
    /// The PostgreSQL URL as written (a secret, or a `${env:NAME}` reference to one).
    pub state_url: Option<Setting<String>>,
    pub state_schema: Setting<String>,
    pub state_workspace: Setting<String>,
    pub datasets: IndexMap<String, Setting<DatasetConfig>>,
    /// The databases of the `mongodb` datasets, by dataset name.
    pub live: IndexMap<String, LiveDatabase>,
    pub backends: IndexMap<String, BackendSettings>,
    /// Things worth telling the user that are not errors.
    pub notes: Vec<String>,
}

impl Config {
    /// Resolve the configuration of the workspace at `root`.
    pub fn load(root: &Path, flags: &Flags, env: &Env) -> Result<Config, Vec<Problem>> {
        let path = root.join(FILE_NAME);
        let (file, lines) = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let src = SourceFile::new(FILE_NAME, text);
                let (file, lines) = parse_file(&src)?;
                (Some(file), lines)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, KeyLines::default()),
            Err(e) => {
                return Err(vec![Problem::plain(format!(
                    "cannot read {}: {e}",
                    path.display()
                ))]);
            }
        };
        let fo = FiftyoneConfig::load(env);
        let mut notes = fo.notes.clone();
        let has_file = file.is_some();
        let file = file.unwrap_or_default();
        let line = |key: &str| lines.0.get(key).copied().unwrap_or(0);

        let manifests = pick(
            flags
                .manifests
                .clone()
                .map(|m| (m, Source::Flag("--manifests"))),
            env_str(env, "ANNOFORM_MANIFESTS").map(|(v, s)| (PathBuf::from(v), s)),
            None,
            file.manifests
                .clone()
                .map(|m| (PathBuf::from(m), Source::File(line("manifests")))),
            None,
            (PathBuf::from("manifests"), Source::Default),
        );
        let default_backend = pick(
            None,
            env_str(env, "ANNOFORM_DEFAULT_BACKEND"),
            env_str(env, "FIFTYONE_ANNOTATION_DEFAULT_BACKEND").map(|(v, _)| {
                (
                    v,
                    Source::FiftyoneEnv("FIFTYONE_ANNOTATION_DEFAULT_BACKEND".into()),
                )
            }),
            file.default_backend
                .clone()
                .map(|b| (b, Source::File(line("default_backend")))),
            fo.default_backend
                .clone()
                .map(|b| (b, Source::FiftyoneConfig(fo.shown.clone()))),
            ("cvat".to_string(), Source::Default),
        );
        let parallelism = pick(
            flags
                .parallelism
                .map(|p| (p, Source::Flag("--parallelism"))),
            env_str(env, "ANNOFORM_PARALLELISM").and_then(|(v, s)| v.parse().ok().map(|p| (p, s))),
            None,
            file.parallelism
                .map(|p| (p as usize, Source::File(line("parallelism")))),
            None,
            (8, Source::Default),
        );
        let state = file.state.clone().unwrap_or_default();
        let state_store = pick(
            None,
            env_str(env, "ANNOFORM_STATE_STORE"),
            None,
            state
                .store
                .map(|s| (s.as_str().to_string(), Source::File(line("state.store")))),
            None,
            ("local".to_string(), Source::Default),
        );
        let state_path = pick(
            None,
            env_str(env, "ANNOFORM_STATE_PATH").map(|(v, s)| (PathBuf::from(v), s)),
            None,
            state
                .path
                .clone()
                .map(|p| (PathBuf::from(p), Source::File(line("state.path")))),
            None,
            (PathBuf::from(".annoform/state"), Source::Default),
        );
        let state_url = [
            env_str(env, "ANNOFORM_STATE_URL"),
            state
                .url
                .clone()
                .map(|u| (u, Source::File(line("state.url")))),
        ]
        .into_iter()
        .flatten()
        .next()
        .map(|(v, s)| Setting::new(v, s));
        let state_schema = pick(
            None,
            env_str(env, "ANNOFORM_STATE_SCHEMA"),
            None,
            state
                .schema
                .clone()
                .map(|v| (v, Source::File(line("state.schema")))),
            None,
            ("annoform".to_string(), Source::Default),
        );
        let state_workspace = pick(
            None,
            env_str(env, "ANNOFORM_STATE_WORKSPACE"),
            None,
            state
                .workspace
                .clone()
                .map(|v| (v, Source::File(line("state.workspace")))),
            None,
            (workspace_name(root), Source::Default),
        );
        let datasets = file
            .datasets
            .iter()
            .map(|(name, d)| {
                (
                    name.clone(),
                    Setting::new(d.clone(), Source::File(line(&format!("datasets.{name}")))),
                )
            })
            .collect();
        let live = file
            .datasets
            .iter()
            .filter(|(_, d)| d.store == DatasetStore::Mongodb)
            .map(|(name, d)| (name.clone(), LiveDatabase::resolve(d, name, &line, env)))
            .collect();

        let mut names: Vec<String> = BackendKind::builtins()
            .map(|k| k.as_str().to_string())
            .collect();
        let extra: Vec<String> = file
            .backends
            .keys()
            .filter(|k| !names.contains(k))
            .cloned()
            .collect();
        names.extend(extra);
        let mut backends = IndexMap::new();
        for name in names {
            let table = file.backends.get(&name).cloned().unwrap_or_default();
            let kind = backend_kind(&name, &table).unwrap_or(BackendKind::Custom);
            let fo_table = fo.backends.get(&name);
            let mut values = IndexMap::new();
            let mut unset = IndexMap::new();
            for param in kind.setting_names() {
                let upper = format!("{}_{}", env_name(&name), param.to_uppercase());
                let from_fo = fo_table.and_then(|t| t.get(&param)).cloned();
                if from_fo.is_some() && is_secret_setting(&param) {
                    notes.push(format!(
                        "ignored `{param}` of backend `{name}` in {}: secrets are read from the environment only",
                        fo.shown
                    ));
                }
                let chosen = pick(
                    None,
                    env_str(env, &format!("ANNOFORM_{upper}"))
                        .map(|(v, s)| (typed_env(&v), s))
                        .or_else(|| empty_secret(env, &param, &format!("ANNOFORM_{upper}"))),
                    env_str(env, &format!("FIFTYONE_{upper}")).map(|(v, _)| {
                        (
                            typed_env(&v),
                            Source::FiftyoneEnv(format!("FIFTYONE_{upper}")),
                        )
                    }),
                    table
                        .get(&param)
                        .cloned()
                        .map(|v| (v, Source::File(line(&format!("backends.{name}.{param}"))))),
                    from_fo
                        .filter(|_| !is_secret_setting(&param))
                        .map(|v| (v, Source::FiftyoneConfig(fo.shown.clone()))),
                    (default_setting(kind, &param), Source::Default),
                );
                if let Some(var) = unset_reference(env, &param, &chosen.value) {
                    unset.insert(param.clone(), var);
                }
                if !chosen.value.is_null() {
                    values.insert(param, chosen);
                }
            }
            backends.insert(
                name,
                BackendSettings {
                    kind,
                    values,
                    unset,
                },
            );
        }

        Ok(Config {
            root: root.to_path_buf(),
            has_file,
            manifests,
            default_backend,
            parallelism,
            state_store,
            state_path,
            state_url,
            state_schema,
            state_workspace,
            datasets,
            live,
            backends,
            notes,
        })
    }

    /// The settings of the state store `store` names (`local` or `postgres`), with the
    /// PostgreSQL URL's `${env:NAME}` references resolved.
    pub fn store_settings(&self, store: &str, env: &Env) -> Result<StoreSettings, StateError> {
        match store {
            "local" => Ok(StoreSettings::Local {
                root: self.root.join(&self.state_path.value),
            }),
            "postgres" => {
                let url = self.state_url.as_ref().ok_or_else(|| {
                    StateError::Settings(
                        "`[state] store = \"postgres\"` needs the database URL: set ANNOFORM_STATE_URL, or `url = \"${env:NAME}\"` in the [state] table of annoform.toml".to_string(),
                    )
                })?;
                let url = crate::secret::resolve(&url.value, env).map_err(|e| {
                    StateError::Settings(format!("`[state] url` ({}): {e}", url.source))
                })?;
                Ok(StoreSettings::Postgres(PostgresSettings {
                    url,
                    schema: self.state_schema.value.clone(),
                    workspace: self.state_workspace.value.clone(),
                }))
            }
            other => Err(StateError::Settings(format!(
                "unknown state store `{other}` ({}): use `local` or `postgres`",
                self.state_store.source
            ))),
        }
    }

    /// The manifest directory, resolved against the workspace root.
    pub fn manifest_dir(&self) -> PathBuf {
        self.root.join(&self.manifests.value)
    }

    /// The backend called `name` (built-in or configured).
    pub fn backend(&self, name: &str) -> Option<&BackendSettings> {
        self.backends.get(name)
    }

    /// Every effective setting as (name, shown value, source); secrets show as `(set)`, or
    /// `(not set: $NAME)` when they refer to an unset variable.
    pub fn settings(&self) -> Vec<(String, String, String)> {
        let mut rows = vec![
            row(
                "manifests",
                self.manifests.value.display().to_string(),
                &self.manifests.source,
            ),
            row(
                "default_backend",
                self.default_backend.value.clone(),
                &self.default_backend.source,
            ),
            row(
                "parallelism",
                self.parallelism.value.to_string(),
                &self.parallelism.source,
            ),
            row(
                "state.store",
                self.state_store.value.clone(),
                &self.state_store.source,
            ),
            row(
                "state.path",
                self.state_path.value.display().to_string(),
                &self.state_path.source,
            ),
        ];
        if self.state_store.value == "postgres" {
            rows.push(match &self.state_url {
                Some(u) => row("state.url", "(set)".into(), &u.source),
                None => (
                    "state.url".into(),
                    "(not set: $ANNOFORM_STATE_URL)".into(),
                    "-".into(),
                ),
            });
            rows.push(row(
                "state.schema",
                self.state_schema.value.clone(),
                &self.state_schema.source,
            ));
            rows.push(row(
                "state.workspace",
                self.state_workspace.value.clone(),
                &self.state_workspace.source,
            ));
        }
        for (name, d) in &self.datasets {
            let Some(live) = self.live.get(name) else {
                rows.push(row(
                    &format!("datasets.{name}.path"),
                    d.value.path.clone(),
                    &d.source,
                ));
                continue;
            };
            rows.push(row(
                &format!("datasets.{name}.store"),
                "mongodb".into(),
                &d.source,
            ));
            let fo_name = d.value.name.clone().unwrap_or_else(|| "(not set)".into());
            rows.push(row(&format!("datasets.{name}.name"), fo_name, &d.source));
            let uri = match &live.uri.value {
                Ok(_) => "(set)".to_string(),
                Err(_) => format!("(not set: ${FIFTYONE_DATABASE_URI})"),
            };
            rows.push(row(&format!("datasets.{name}.uri"), uri, &live.uri.source));
            rows.push(row(
                &format!("datasets.{name}.database"),
                live.database.value.clone(),
                &live.database.source,
            ));
        }
        for (name, b) in &self.backends {
            rows.push(row(
                &format!("backends.{name}.type"),
                b.kind.to_string(),
                &Source::Default,
            ));
            let params = b.kind.setting_names();
            for param in params {
                let key = format!("backends.{name}.{param}");
                match b.values.get(&param) {
                    Some(s) if is_secret_setting(&param) => {
                        let shown = match b.unset.get(&param) {
                            Some(var) => format!("(not set: ${var})"),
                            None if s.value.as_str() == Some("") => "(set, empty)".into(),
                            None => "(set)".into(),
                        };
                        rows.push(row(&key, shown, &s.source))
                    }
                    Some(s) => rows.push(row(&key, shown(&s.value), &s.source)),
                    None if is_secret_setting(&param) => rows.push((
                        key,
                        format!("(not set: ${})", secret_env_var(name, &param)),
                        "-".into(),
                    )),
                    None => {}
                }
            }
        }
        rows
    }
}

/// The default workspace name: the workspace directory's name.
fn workspace_name(root: &Path) -> String {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    root.file_name().map_or_else(
        || "default".to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn row(name: &str, value: String, source: &Source) -> (String, String, String) {
    (name.to_string(), value, source.to_string())
}

fn shown(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The highest-precedence value among flag, ANNOFORM env, FIFTYONE env, file, FiftyOne
/// config and default.
fn pick<T>(
    flag: Option<(T, Source)>,
    env: Option<(T, Source)>,
    fo_env: Option<(T, Source)>,
    file: Option<(T, Source)>,
    fo_config: Option<(T, Source)>,
    default: (T, Source),
) -> Setting<T> {
    let (value, source) = flag
        .or(env)
        .or(fo_env)
        .or(file)
        .or(fo_config)
        .unwrap_or(default);
    Setting::new(value, source)
}

/// The first variable a secret's `${env:NAME}` references that is not set.
fn unset_reference(env: &Env, param: &str, value: &Json) -> Option<String> {
    let text = value.as_str().filter(|_| is_secret_setting(param))?;
    crate::secret::references(text)
        .ok()?
        .into_iter()
        .find(|name| !env.vars.contains_key(*name))
        .map(str::to_string)
}

/// A secret setting's variable that is set to the empty string: kept as "" (so it is
/// reported as set but empty, and refused where it is used) rather than taken as unset.
fn empty_secret(env: &Env, param: &str, name: &str) -> Option<(Json, Source)> {
    (is_secret_setting(param) && env.vars.get(name).is_some_and(String::is_empty))
        .then(|| (Json::from(""), Source::Env(name.to_string())))
}

fn env_str(env: &Env, name: &str) -> Option<(String, Source)> {
    env.var(name)
        .map(|v| (v.to_string(), Source::Env(name.to_string())))
}

/// The environment-variable spelling of a backend name.
pub fn env_name(backend: &str) -> String {
    backend.to_uppercase().replace('-', "_")
}

/// Environment values are strings; numbers, booleans and lists are written as JSON.
fn typed_env(raw: &str) -> Json {
    match serde_json::from_str::<Json>(raw) {
        Ok(v @ (Json::Number(_) | Json::Bool(_) | Json::Array(_) | Json::Object(_))) => v,
        _ => Json::String(raw.to_string()),
    }
}

fn default_setting(kind: BackendKind, param: &str) -> Json {
    match (kind.entry().default_url, param) {
        (Some(url), "url") => Json::from(url),
        _ => Json::Null,
    }
}

fn backend_kind(name: &str, table: &serde_json::Map<String, Json>) -> Option<BackendKind> {
    if let Some(k) = BackendKind::builtin(name) {
        return Some(k);
    }
    match table.get("type").and_then(Json::as_str) {
        Some(t) => BackendKind::builtin(t).or((t == "custom").then_some(BackendKind::Custom)),
        None => table.contains_key("command").then_some(BackendKind::Custom),
    }
}

/// Line numbers of dotted keys in annoform.toml, for `config show`.
#[derive(Debug, Default)]
struct KeyLines(BTreeMap<String, usize>);

fn parse_file(src: &Arc<SourceFile>) -> Result<(FileConfig, KeyLines), Vec<Problem>> {
    let root = match toml::de::DeTable::parse(src.text()) {
        Ok(t) => t,
        Err(e) => {
            let span = e.span().map_or(Span::default(), |r| Span {
                start: r.start,
                end: r.end,
            });
            return Err(vec![Problem::at(
                src,
                span,
                format!("invalid TOML: {}", e.message().trim()),
                "here",
            )]);
        }
    };
    let node = Node {
        span: Span {
            start: root.span().start,
            end: root.span().end,
        },
        value: Value::Map(table_entries(root.get_ref())),
    };
    let mut lines = KeyLines::default();
    collect_lines(&node, "", src, &mut lines, 0);

    let schema = serde_json::to_value(schemars::schema_for!(FileConfig)).unwrap_or_default();
    let mut problems: Vec<Problem> = check::check(&node, &schema, "")
        .into_iter()
        .map(|f| Problem::from_finding(src, f))
        .collect();
    if let Some(backends) = node.get("backends").and_then(Node::entries) {
        for e in backends {
            problems.extend(check_backend_table(src, e));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    serde_json::from_value(node.to_json())
        .map(|f| (f, lines))
        .map_err(|e| {
            vec![Problem::at(
                src,
                node.span,
                format!("invalid {FILE_NAME}: {e}"),
                "here",
            )]
        })
}

fn check_backend_table(src: &Arc<SourceFile>, e: &Entry) -> Vec<Problem> {
    let Some(entries) = e.value.entries() else {
        return Vec::new();
    };
    let type_node = e.value.get("type");
    let kind = match (
        BackendKind::builtin(&e.key),
        type_node.and_then(Node::as_str),
    ) {
        (Some(k), None) => k,
        (Some(_), Some(_)) => {
            let span = e.value.entry("type").map_or(e.key_span, |t| t.key_span);
            return vec![Problem::at(
                src,
                span,
                format!("`{}` is a built-in backend; it takes no `type`", e.key),
                "remove this",
            )];
        }
        (None, Some("custom")) => BackendKind::Custom,
        (None, Some(t)) => match BackendKind::builtin(t) {
            Some(k) => k,
            None => {
                let n = type_node.map_or(e.key_span, |n| n.span);
                let help = check::suggest(t, ["cvat", "labelstudio", "darwin", "custom"]).map_or(
                    "expected cvat, labelstudio, darwin or custom".to_string(),
                    |s| format!("did you mean `{s}`?"),
                );
                return vec![
                    Problem::at(
                        src,
                        n,
                        format!("unknown backend type `{t}`"),
                        "unknown type",
                    )
                    .with_help(help),
                ];
            }
        },
        (None, None) if e.value.get("command").is_some() => BackendKind::Custom,
        (None, None) => {
            return vec![
                Problem::at(src, e.key_span, format!("backend `{}` needs `type` or `command`", e.key), "which backend is this?")
                    .with_help("set `type = \"cvat\"` (or labelstudio, darwin) for another server of a built-in kind, or `command = [...]` for a custom backend"),
            ];
        }
    };
    let without_type = Node {
        span: e.value.span,
        value: Value::Map(
            entries
                .iter()
                .filter(|x| x.key != "type")
                .cloned()
                .collect(),
        ),
    };
    check::check(
        &without_type,
        &kind.config_schema(),
        &format!("backends.{}", e.key),
    )
    .into_iter()
    .map(|f| Problem::from_finding(src, f))
    .collect()
}

fn collect_lines(node: &Node, prefix: &str, src: &SourceFile, out: &mut KeyLines, depth: usize) {
    let Some(entries) = node.entries() else {
        return;
    };
    for e in entries {
        let key = if prefix.is_empty() {
            e.key.clone()
        } else {
            format!("{prefix}.{}", e.key)
        };
        out.0.insert(key.clone(), src.line_col(e.key_span.start).0);
        if depth < 3 {
            collect_lines(&e.value, &key, src, out, depth + 1);
        }
    }
}

fn table_entries(t: &toml::de::DeTable<'_>) -> Vec<Entry> {
    t.iter()
        .map(|(k, v)| Entry {
            key: k.get_ref().to_string(),
            key_span: Span {
                start: k.span().start,
                end: k.span().end,
            },
            value: de_node(v),
        })
        .collect()
}

fn de_node(v: &toml::Spanned<toml::de::DeValue<'_>>) -> Node {
    use toml::de::DeValue;
    let span = Span {
        start: v.span().start,
        end: v.span().end,
    };
    let value = match v.get_ref() {
        DeValue::String(s) => Value::Str(s.to_string()),
        DeValue::Integer(i) => {
            let digits = i.as_str().replace('_', "");
            let digits = digits
                .trim_start_matches("0x")
                .trim_start_matches("0o")
                .trim_start_matches("0b");
            i64::from_str_radix(digits, i.radix()).map_or(Value::Str(i.as_str().into()), Value::Int)
        }
        DeValue::Float(f) => {
            let text = f.as_str().replace('_', "");
            let x = match text.trim_start_matches(['+', '-']) {
                "inf" => f64::INFINITY.copysign(if text.starts_with('-') { -1.0 } else { 1.0 }),
                "nan" => f64::NAN,
                _ => text.parse().unwrap_or(f64::NAN),
            };
            Value::Float(x)
        }
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::Str(d.to_string()),
        DeValue::Array(items) => Value::Seq(items.iter().map(de_node).collect()),
        DeValue::Table(t) => Value::Map(table_entries(t)),
    };
    Node { span, value }
}

/// FiftyOne's `annotation_config.json` (read-only compatibility).
#[derive(Debug, Default)]
struct FiftyoneConfig {
    shown: String,
    default_backend: Option<String>,
    backends: BTreeMap<String, serde_json::Map<String, Json>>,
    notes: Vec<String>,
}

impl FiftyoneConfig {
    fn load(env: &Env) -> FiftyoneConfig {
        let (path, shown) = match env.var("FIFTYONE_ANNOTATION_CONFIG_PATH") {
            Some(p) => (PathBuf::from(p), p.to_string()),
            None => match &env.home {
                Some(h) => (
                    h.join(".fiftyone/annotation_config.json"),
                    "~/.fiftyone/annotation_config.json".into(),
                ),
                None => return FiftyoneConfig::default(),
            },
        };
        let Ok(text) = std::fs::read_to_string(&path) else {
            return FiftyoneConfig {
                shown,
                ..Default::default()
            };
        };
        let doc: Json = match serde_json::from_str(&text) {
            Ok(d) => d,
            Err(e) => {
                return FiftyoneConfig {
                    notes: vec![format!("ignored {shown}: not valid JSON ({e})")],
                    shown,
                    ..Default::default()
                };
            }
        };
        let backends = doc
            .get("backends")
            .and_then(Json::as_object)
            .map(|b| {
                b.iter()
                    .filter_map(|(k, v)| v.as_object().map(|o| (k.clone(), o.clone())))
                    .collect()
            })
            .unwrap_or_default();
        FiftyoneConfig {
            default_backend: doc
                .get("default_backend")
                .and_then(Json::as_str)
                .map(String::from),
            backends,
            shown,
            notes: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Env {
        Env {
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            home: None,
        }
    }

    fn workspace(toml: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), toml).unwrap();
        dir
    }

    #[test]
    fn precedence_follows_fiftyone() {
        let dir = workspace("[backends.cvat]\nurl = \"http://file\"\n");
        let url = |vars: &[(&str, &str)]| {
            let c = Config::load(dir.path(), &Flags::default(), &env(vars)).unwrap();
            let s = c.backends["cvat"].values["url"].clone();
            (s.value.as_str().unwrap().to_string(), s.source.to_string())
        };
        assert_eq!(url(&[]), ("http://file".into(), "annoform.toml:2".into()));
        assert_eq!(
            url(&[("FIFTYONE_CVAT_URL", "http://fo")]),
            ("http://fo".into(), "env FIFTYONE_CVAT_URL".into())
        );
        assert_eq!(
            url(&[
                ("FIFTYONE_CVAT_URL", "http://fo"),
                ("ANNOFORM_CVAT_URL", "http://af")
            ]),
            ("http://af".into(), "env ANNOFORM_CVAT_URL".into())
        );
    }

    #[test]
    fn secrets_in_the_file_must_be_env_references() {
        let dir = workspace("[backends.cvat]\npassword = \"hunter2\"\n");
        let problems = Config::load(dir.path(), &Flags::default(), &env(&[])).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].message.contains("backends.cvat.password"),
            "{}",
            problems[0].message
        );
        let rendered = crate::diag::render(&problems, crate::diag::Format::Human, false, 100);
        assert!(rendered.contains("password = *********"), "{rendered}");
        assert!(!rendered.contains("hunter2"), "{rendered}");
    }

    #[test]
    fn an_empty_secret_variable_is_set_but_empty() {
        let dir = workspace("");
        let c = Config::load(
            dir.path(),
            &Flags::default(),
            &env(&[("ANNOFORM_CVAT_PASSWORD", ""), ("ANNOFORM_CVAT_URL", "")]),
        )
        .unwrap();
        let password = &c.backends["cvat"].values["password"];
        assert_eq!(password.value, Json::from(""));
        let rows = c.settings();
        let row = rows
            .iter()
            .find(|r| r.0 == "backends.cvat.password")
            .expect("password row");
        assert_eq!(
            (row.1.as_str(), row.2.as_str()),
            ("(set, empty)", "env ANNOFORM_CVAT_PASSWORD")
        );
        // Only secrets: an empty URL still means "use the default".
        assert_eq!(
            c.backends["cvat"].values["url"].value,
            Json::from("https://app.cvat.ai")
        );
    }

    #[test]
    fn named_backends_need_a_type() {
        let dir =
            workspace("[backends.staging]\nurl = \"http://x\"\n[backends.prod]\ntype = \"cvta\"\n");
        let problems = Config::load(dir.path(), &Flags::default(), &env(&[])).unwrap_err();
        assert_eq!(problems.len(), 2);
        assert!(problems[0].message.contains("needs `type` or `command`"));
        assert_eq!(problems[1].help.as_deref(), Some("did you mean `cvat`?"));
    }

    #[test]
    fn env_values_are_typed() {
        let dir = workspace("");
        let c = Config::load(
            dir.path(),
            &Flags::default(),
            &env(&[("FIFTYONE_CVAT_SEGMENT_SIZE", "10")]),
        )
        .unwrap();
        assert_eq!(
            c.backends["cvat"].values["segment_size"].value,
            Json::from(10)
        );
    }
}
