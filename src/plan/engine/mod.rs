//! The plan/apply engine: desired runs (manifests + datasets) against run records and the live
//! backends. `plan` computes [`Work`] (the public [`Plan`] plus what apply needs); `apply`
//! carries it out, saving the run record after every step so an interrupted apply resumes,
//! and naming every backend object deterministically so it is adopted rather than duplicated.

mod adopt;
mod apply;
mod download_cache;
mod error;
mod fiftyone_runs;
pub mod import_cvat;
mod links;
mod open;
mod planner;
mod resolved_from;
mod returned;

pub use download_cache::DownloadCache;
pub use error::{
    EngineError, ForeignProject, ImportRefusal, Protection, RESUME, TaskAt, backend_hint,
    state_hint,
};
pub use links::Links;
pub use open::{Connection, open_backend};
pub use returned::returned_path;

use super::model::*;
use crate::backend::{
    self, Backend, BackendKind, ProjectSpec, RemoteProject, TaskSample, TaskSpec,
};
use crate::config::{Config, Env};
use crate::dataset::dir::Dataset;
use crate::dataset::ejson::ObjectId;
use crate::dataset::view::View;
use crate::manifest::load::LoadedRun;
use crate::manifest::validate::Resolved;
use crate::manifest::{LabelType, LoadWhen};
use crate::merge;
use crate::schema::{ResolvedSchema, resolve};
use crate::state::StateStore;
use crate::state::{BackendObject, MergeCheckpoint, RunRecord, TaskRecord, UploadedLabel};
use crate::workspace::Datasets;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// Samples per task when the backend settings do not say (`task_size`).
const DEFAULT_TASK_SIZE: usize = 1000;

/// What a saved plan was computed against; `apply PLANFILE` refuses the plan when any differs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Guard {
    pub dataset: String,
    pub key: String,
    pub serial: Option<u64>,
    pub lineage: Option<String>,
    pub manifest_digest: Option<String>,
    pub annotations_digest: Option<String>,
}

/// A plan file: the plan people reviewed and the guards that keep it honest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanFile {
    pub plan: Plan,
    pub guards: Vec<Guard>,
}

/// A run as the manifests want it, resolved against its dataset.
pub struct Desired {
    pub loaded: LoadedRun,
    pub backend: String,
    /// The server the run talks to (the workspace backend, or the run's own `url`...).
    pub connection: Connection,
    pub kind: BackendKind,
    /// Non-secret backend settings (workspace defaults overridden by the manifest), with
    /// `${env:...}` references resolved.
    pub settings: serde_json::Map<String, Value>,
    pub schema: ResolvedSchema,
    pub view: View,
    pub manifest_digest: String,
    pub project_name: String,
    pub task_size: usize,
    /// The settings a record keeps: those without `${env:...}` references.
    pub recorded: serde_json::Map<String, Value>,
    /// Validation already found every label of the view sendable.
    pub sendable_checked: bool,
}

/// Everything apply needs for one run.
pub struct RunWork {
    pub plan: RunPlan,
    pub guard: Guard,
    desired: Option<Desired>,
    record: Option<RunRecord>,
    new_samples: Vec<String>,
    missing_batches: Vec<u32>,
    /// The project itself is gone: recreate it before its tasks.
    missing_project: bool,
    /// The computed merge of the downloaded annotations.
    merge: Option<merge::run::RunMerge>,
}

/// A computed plan with the work behind it.
pub struct Work {
    pub plan: Plan,
    pub runs: Vec<RunWork>,
}

impl Work {
    /// The plan file for `plan --out`.
    pub fn plan_file(&self) -> PlanFile {
        PlanFile {
            plan: self.plan.clone(),
            guards: self.runs.iter().map(|r| r.guard.clone()).collect(),
        }
    }
}

/// What to plan for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// Make the backends match the manifests.
    Converge,
    /// Destroy the targeted runs (all, without targets).
    Destroy,
}

/// Reports progress of long steps (the CLI draws bars; tests ignore it).
pub trait Progress {
    /// A step of `total` units starts.
    fn start(&self, what: &str, total: u64);
    /// `n` more units done.
    fn advance(&self, n: u64);
    /// The step is done.
    fn finish(&self);
}

/// No progress reporting.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// The engine over one workspace.
pub struct Engine<'a> {
    config: &'a Config,
    env: &'a Env,
    store: &'a dyn StateStore,
    datasets: Datasets,
    backends: HashMap<Connection, Box<dyn Backend>>,
    now: String,
    /// Runs (dataset, key) known not to be plannable, with the reason.
    failed: HashMap<(String, String), String>,
    /// Downloads a plan keeps for the apply after it.
    cache: DownloadCache,
    /// Whether this engine's plans keep their downloads (`plan`: for the apply that follows).
    keep_downloads: bool,
    /// Runs validation resolved against the datasets as loaded, taken by the first plan of
    /// each (a later one, after apply changed a dataset, resolves again).
    resolved: HashMap<(String, String), Resolved>,
}

impl<'a> Engine<'a> {
    /// An engine over the workspace's config, state store and (possibly already loaded)
    /// datasets.
    pub fn new(
        config: &'a Config,
        env: &'a Env,
        store: &'a dyn StateStore,
        datasets: Datasets,
    ) -> Self {
        let now = env
            .var("ANNOFORM_NOW")
            .map(String::from)
            .unwrap_or_else(crate::state::now_rfc3339);
        Engine {
            config,
            env,
            store,
            datasets,
            backends: HashMap::new(),
            now,
            failed: HashMap::new(),
            cache: DownloadCache::new(config.root.join(".annoform/cache")),
            keep_downloads: false,
            resolved: HashMap::new(),
        }
    }

    /// Hand over what validation resolved (view and schema per run, labels checked
    /// sendable), so plans do not resolve the same runs again.
    pub fn set_resolved(&mut self, resolved: HashMap<(String, String), Resolved>) {
        self.resolved = resolved;
    }

    /// Keep what plans download, so the apply after them asks the backends only for what
    /// changed since.
    pub fn keep_downloads(&mut self) {
        self.keep_downloads = true;
    }

    /// Mark runs that cannot be planned (their manifests do not resolve against their
    /// datasets): plans report them, apply leaves them alone, the other runs go ahead.
    pub fn set_failed(&mut self, failed: HashMap<(String, String), String>) {
        self.failed = failed;
    }

    fn backend(&mut self, conn: &Connection) -> Result<&mut Box<dyn Backend>, EngineError> {
        if !self.backends.contains_key(conn) {
            let b = open_backend(self.config, self.env, conn)?;
            self.backends.insert(conn.clone(), b);
        }
        Ok(self.backends.get_mut(conn).expect("inserted above"))
    }

    /// The backend of a recorded run on `conn`, told what the record knows about its project.
    fn attached(
        &mut self,
        record: &RunRecord,
        conn: &Connection,
    ) -> Result<&mut Box<dyn Backend>, EngineError> {
        let project = remote(record);
        let b = self.backend(conn)?;
        b.attach(
            &project,
            backend::ProjectContext {
                schema: &record.schema,
                settings: &record.backend_config,
                tasks: &record.tasks,
                created: record.project_created,
            },
        )?;
        Ok(b)
    }

    fn dataset(&mut self, name: &str) -> Result<&Dataset, EngineError> {
        dataset_in(&mut self.datasets, name)
    }

    /// Resolve a manifest run into its desired state.
    pub fn desired(&mut self, loaded: &LoadedRun) -> Result<Desired, EngineError> {
        let run = &loaded.run;
        let backend = run
            .backend
            .clone()
            .unwrap_or_else(|| self.config.default_backend.value.clone());
        let settings_cfg =
            self.config
                .backend(&backend)
                .ok_or_else(|| EngineError::UnknownBackend {
                    run: Some(run.key.0.clone()),
                    backend: backend.clone(),
                })?;
        let kind = settings_cfg.kind;
        let mut given: serde_json::Map<String, Value> = settings_cfg
            .values
            .iter()
            .map(|(k, v)| (k.clone(), v.value.clone()))
            .collect();
        given.extend(run.backend_config.clone());
        let settings = resolve_settings(&given, self.env).map_err(|e| EngineError::Settings {
            run: Some(run.key.0.clone()),
            message: e.to_string(),
        })?;
        let recorded = backend::registry::recordable(given.iter());
        let validated = self
            .resolved
            .remove(&(run.dataset.clone(), run.key.0.clone()));
        let sendable_checked = validated.is_some();
        let Resolved { view, schema } = match validated {
            Some(r) => r,
            None => self.resolve(run, kind)?,
        };
        let ds = self.dataset(&run.dataset)?;
        let view = resolve::narrow_to_types(run, &schema, ds, &view);
        let media = match ds.media_type() {
            "video" => backend::registry::Media::Video,
            _ => backend::registry::Media::Images,
        };
        let placement = kind
            .placement(&settings, &run.dataset, &run.key.0, media)
            .map_err(|e| EngineError::Settings {
                run: Some(run.key.0.clone()),
                message: e.to_string(),
            })?;
        let project_name = placement.project_name;
        let task_size = placement
            .task_size
            .map_or(DEFAULT_TASK_SIZE, |n| n.max(1) as usize);
        let manifest_digest = merge::digest(&serde_json::to_value(run).unwrap_or_default());
        let connection = Connection::new(&backend, &run.backend_config);
        Ok(Desired {
            sendable_checked,
            loaded: loaded.clone(),
            backend,
            connection,
            kind,
            settings,
            schema,
            view,
            manifest_digest,
            project_name,
            task_size,
            recorded,
        })
    }

    /// A run's view and schema against its dataset (what validation does, for runs it did
    /// not resolve).
    fn resolve(
        &mut self,
        run: &crate::manifest::AnnotationRun,
        kind: BackendKind,
    ) -> Result<Resolved, EngineError> {
        let recorded_schema = self.store.get(&run.dataset, &run.key.0)?.map(|r| r.schema);
        self.dataset(&run.dataset)?;
        let view = self
            .datasets
            .view(&run.dataset, &run.view)
            .map_err(|e| EngineError::View {
                run: run.key.0.clone(),
                message: e.to_string(),
            })?;
        let ds = self.dataset(&run.dataset)?;
        let schema =
            resolve::resolve(run, ds, &view, kind, recorded_schema.as_ref()).map_err(|errs| {
                EngineError::Schema {
                    run: run.key.0.clone(),
                    problems: errs.iter().map(ToString::to_string).collect(),
                }
            })?;
        Ok(Resolved { view, schema })
    }

    /// The status of a run's tasks as the backend (on `conn`) reports them.
    pub fn status(
        &mut self,
        record: &RunRecord,
        conn: &Connection,
    ) -> Result<Vec<backend::TaskStatus>, EngineError> {
        let project = remote(record);
        let ids: Vec<String> = record.tasks.iter().map(|t| t.id.clone()).collect();
        Ok(self.attached(record, conn)?.status(&project, &ids)?)
    }
}

/// A declared dataset, loaded on first use.
fn dataset_in<'d>(datasets: &'d mut Datasets, name: &str) -> Result<&'d Dataset, EngineError> {
    match datasets.get(name) {
        None => Err(EngineError::UndeclaredDataset {
            name: name.to_string(),
        }),
        Some(Err(e)) => Err(EngineError::UnloadableDataset {
            name: name.to_string(),
            message: e.to_string(),
        }),
        Some(Ok(ds)) => Ok(ds),
    }
}

fn remote(r: &RunRecord) -> RemoteProject {
    let p = r.project.clone().unwrap_or(BackendObject {
        id: String::new(),
        name: String::new(),
    });
    RemoteProject {
        id: p.id,
        name: p.name,
        url: None,
        owner: None,
    }
}

/// The non-secret settings with every `${env:NAME}` in their strings resolved (the docs
/// promise it for any string), or an error naming the setting.
fn resolve_settings(
    settings: &serde_json::Map<String, Value>,
    env: &Env,
) -> Result<serde_json::Map<String, Value>, String> {
    fn resolve(v: &Value, env: &Env) -> Result<Value, crate::secret::RefError> {
        Ok(match v {
            Value::String(s) => Value::String(crate::secret::resolve(s, env)?),
            Value::Array(a) => Value::Array(
                a.iter()
                    .map(|x| resolve(x, env))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, x)| Ok((k.clone(), resolve(x, env)?)))
                    .collect::<Result<_, _>>()?,
            ),
            other => other.clone(),
        })
    }
    settings
        .iter()
        .filter(|(k, _)| !backend::capabilities::is_secret_setting(k))
        .map(|(k, v)| Ok((k.clone(), resolve(v, env).map_err(|e| format!("{k}: {e}"))?)))
        .collect()
}
