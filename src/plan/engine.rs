//! The plan/apply engine: desired runs (manifests + datasets) against run records and the live
//! backends. `plan` computes [`Work`] (the public [`Plan`] plus what apply needs); `apply`
//! carries it out, saving the run record after every step so an interrupted apply resumes,
//! and naming every backend object deterministically so it is adopted rather than duplicated.

use super::model::*;
use crate::backend::{
    self, Annotations, Backend, BackendKind, DownloadedLabel, ProjectSpec, RemoteProject,
    TaskSample, TaskSpec,
};
use crate::config::{Config, Env};
use crate::dataset::dir::Dataset;
use crate::dataset::ejson::{self, ObjectId};
use crate::dataset::fields::FieldType;
use crate::dataset::view::{self, View};
use crate::manifest::load::LoadedRun;
use crate::manifest::{DestField, LabelType, LoadWhen};
use crate::merge::{self, FieldInput};
use crate::schema::{ResolvedSchema, resolve};
use crate::state::local::LocalStore;
use crate::state::{BackendObject, MergeCheckpoint, RunRecord, TaskRecord, UploadedLabel};
use crate::workspace::Datasets;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// Samples per task when the backend settings do not say (`task_size`).
const DEFAULT_TASK_SIZE: usize = 1000;

/// Why the engine stopped.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A run cannot be planned (message names the run).
    #[error("{0}")]
    Run(String),
    #[error(transparent)]
    Backend(#[from] backend::BackendError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error("dataset: {0}")]
    Dataset(#[from] crate::dataset::dir::DatasetError),
}

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
    pub kind: BackendKind,
    /// Non-secret backend settings (workspace defaults overridden by the manifest).
    pub settings: serde_json::Map<String, Value>,
    pub schema: ResolvedSchema,
    pub view: View,
    pub manifest_digest: String,
    pub project_name: String,
    pub task_size: usize,
}

/// Everything apply needs for one run.
pub struct RunWork {
    pub plan: RunPlan,
    pub guard: Guard,
    desired: Option<Desired>,
    record: Option<RunRecord>,
    new_samples: Vec<String>,
    missing_batches: Vec<u32>,
    merge: Option<(Annotations, String)>,
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
    store: &'a LocalStore,
    datasets: Datasets<'a>,
    backends: HashMap<String, Box<dyn Backend>>,
    now: String,
}

impl<'a> Engine<'a> {
    /// An engine over the workspace's config and state store.
    pub fn new(config: &'a Config, env: &'a Env, store: &'a LocalStore) -> Self {
        let now = env
            .var("ANNOFORM_NOW")
            .map(String::from)
            .unwrap_or_else(crate::state::now_rfc3339);
        Engine {
            config,
            env,
            store,
            datasets: Datasets::new(config),
            backends: HashMap::new(),
            now,
        }
    }

    fn backend(&mut self, name: &str) -> Result<&mut Box<dyn Backend>, EngineError> {
        if !self.backends.contains_key(name) {
            let b = open_backend(self.config, self.env, name)?;
            self.backends.insert(name.to_string(), b);
        }
        Ok(self.backends.get_mut(name).expect("inserted above"))
    }

    fn dataset(&mut self, name: &str) -> Result<&Dataset, EngineError> {
        match self.datasets.get(name) {
            None => Err(EngineError::Run(format!(
                "dataset `{name}` is not declared in annoform.toml"
            ))),
            Some(Err(e)) => Err(EngineError::Run(format!(
                "cannot load dataset `{name}`: {e}"
            ))),
            Some(Ok(ds)) => Ok(ds),
        }
    }

    /// Resolve a manifest run into its desired state.
    pub fn desired(&mut self, loaded: &LoadedRun) -> Result<Desired, EngineError> {
        let run = &loaded.run;
        let backend = run
            .backend
            .clone()
            .unwrap_or_else(|| self.config.default_backend.value.clone());
        let settings_cfg = self.config.backend(&backend).ok_or_else(|| {
            EngineError::Run(format!("run `{}`: unknown backend `{backend}`", run.key))
        })?;
        let kind = settings_cfg.kind;
        let mut settings: serde_json::Map<String, Value> = settings_cfg
            .values
            .iter()
            .filter(|(k, _)| !backend::capabilities::is_secret_setting(k))
            .map(|(k, v)| (k.clone(), v.value.clone()))
            .collect();
        for (k, v) in &run.backend_config {
            if !backend::capabilities::is_secret_setting(k) {
                settings.insert(k.clone(), v.clone());
            }
        }
        let ds = self.dataset(&run.dataset)?;
        let view = view::apply(&run.view, ds)
            .map_err(|e| EngineError::Run(format!("run `{}`: {e}", run.key)))?;
        let schema = resolve::resolve(run, ds, &view, kind).map_err(|errs| {
            EngineError::Run(format!(
                "run `{}`: {}",
                run.key,
                errs.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ))
        })?;
        if schema.fields.keys().any(|f| f.starts_with("frames.")) {
            return Err(EngineError::Run(format!(
                "run `{}`: video runs are not supported yet",
                run.key
            )));
        }
        let project_name = settings
            .get("project_name")
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_else(|| format!("annoform/{}/{}", run.dataset, run.key));
        let task_size = settings
            .get("task_size")
            .and_then(Value::as_u64)
            .map_or(DEFAULT_TASK_SIZE, |n| n.max(1) as usize);
        let manifest_digest = merge::digest(&serde_json::to_value(run).unwrap_or_default());
        Ok(Desired {
            loaded: loaded.clone(),
            backend,
            kind,
            settings,
            schema,
            view,
            manifest_digest,
            project_name,
            task_size,
        })
    }

    /// Compute the plan for `runs` (the manifests) against the records.
    pub fn plan(
        &mut self,
        runs: &[LoadedRun],
        targets: &[String],
        goal: Goal,
    ) -> Result<Work, EngineError> {
        let mut keys: Vec<(String, String)> = runs
            .iter()
            .map(|r| (r.run.dataset.clone(), r.run.key.0.clone()))
            .collect();
        for k in self.store.list()? {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        if !targets.is_empty() {
            for t in targets {
                if !keys.iter().any(|(_, k)| k == t) {
                    return Err(EngineError::Run(format!(
                        "--target {t}: no run has this key"
                    )));
                }
            }
            keys.retain(|(_, k)| targets.contains(k));
        }
        let mut out = Vec::new();
        for (dataset, key) in keys {
            let loaded = runs
                .iter()
                .find(|r| r.run.dataset == dataset && r.run.key.0 == key);
            let desired = match (goal, loaded) {
                (Goal::Converge, Some(l)) => Some(self.desired(l)?),
                _ => None,
            };
            let record = self.store.get(&dataset, &key)?;
            out.push(self.plan_run(&dataset, &key, desired, record, goal)?);
        }
        let plan = Plan::new(out.iter().map(|w| w.plan.clone()).collect());
        Ok(Work { plan, runs: out })
    }

    fn plan_run(
        &mut self,
        dataset: &str,
        key: &str,
        desired: Option<Desired>,
        record: Option<RunRecord>,
        goal: Goal,
    ) -> Result<RunWork, EngineError> {
        let backend_name = desired
            .as_ref()
            .map(|d| d.backend.clone())
            .or_else(|| record.as_ref().map(|r| r.backend.clone()))
            .unwrap_or_default();
        let mut plan = RunPlan {
            key: key.to_string(),
            dataset: dataset.to_string(),
            backend: backend_name,
            actions: Vec::new(),
            samples: record.as_ref().map_or(0, |r| r.samples.len()),
            tasks: record.as_ref().map_or(0, |r| r.tasks.len()),
            fields: IndexMap::new(),
            rejected: Vec::new(),
            drift: Vec::new(),
            details: Vec::new(),
        };
        let mut work = RunWork {
            guard: Guard {
                dataset: dataset.to_string(),
                key: key.to_string(),
                serial: record.as_ref().map(|r| r.serial),
                lineage: record.as_ref().map(|r| r.lineage.clone()),
                manifest_digest: desired.as_ref().map(|d| d.manifest_digest.clone()),
                annotations_digest: None,
            },
            plan: plan.clone(),
            desired: None,
            record: None,
            new_samples: Vec::new(),
            missing_batches: Vec::new(),
            merge: None,
        };
        match (&desired, &record) {
            (None, None) => {}
            (None, Some(r)) => {
                if r.prevent_destroy {
                    let why = if goal == Goal::Destroy {
                        "cannot be destroyed"
                    } else {
                        "was removed from the manifests but"
                    };
                    return Err(EngineError::Run(format!(
                        "run `{key}` (dataset `{dataset}`) {why} is protected by lifecycle.prevent_destroy; set `prevent_destroy: false` and apply before destroying it"
                    )));
                }
                plan.actions.push(Action::Destroy);
                plan.details.push(match &r.project {
                    Some(p) => format!("delete project `{}` and its {} task(s); labels merged into the dataset stay", p.name, r.tasks.len()),
                    None => "forget the run (no backend objects)".into(),
                });
            }
            (Some(d), None) => {
                plan.actions.push(Action::Create);
                let ds = self.dataset(dataset)?;
                work.new_samples = d.view.sample_ids.iter().map(ToString::to_string).collect();
                plan.samples = work.new_samples.len();
                plan.tasks = work.new_samples.len().div_ceil(d.task_size);
                count_uploads(ds, d, &work.new_samples, &mut plan);
                plan.details.push(format!(
                    "create project `{}`; upload {} sample(s) in {} task(s)",
                    d.project_name, plan.samples, plan.tasks
                ));
            }
            (Some(d), Some(r)) => {
                self.plan_existing(d, r, &mut plan, &mut work)?;
                // Settings that only the record holds (view, load, lifecycle): shown when
                // nothing else changes; otherwise the other steps save them.
                if plan.actions.is_empty()
                    && !r.cleaned_up
                    && r.manifest_digest != d.manifest_digest
                {
                    plan.actions.push(Action::Update);
                    plan.details
                        .push("run settings changed (record only)".into());
                }
            }
        }
        work.plan = plan;
        work.desired = desired;
        work.record = record;
        Ok(work)
    }

    fn plan_existing(
        &mut self,
        d: &Desired,
        r: &RunRecord,
        plan: &mut RunPlan,
        work: &mut RunWork,
    ) -> Result<(), EngineError> {
        if r.cleaned_up {
            plan.details.push("finished: merged and cleaned up".into());
            return Ok(());
        }
        let kind = d.kind;
        if r.backend != d.backend {
            plan.actions.push(Action::Replace);
            plan.details.push(format!(
                "backend changed: {} → {}; the run is recreated",
                r.backend, d.backend
            ));
        } else if r.schema != d.schema {
            let caps_in_place = self
                .backend(&d.backend)?
                .capabilities()
                .schema_update_in_place;
            if caps_in_place && additive(&r.schema, &d.schema) {
                plan.actions.push(Action::Update);
                plan.details.push("update the label schema in place".into());
            } else {
                plan.actions.push(Action::Replace);
                plan.details.push(format!(
                    "the label schema changed in a way {kind} cannot apply in place; the run is recreated"
                ));
            }
        }
        if plan.actions.contains(&Action::Replace) {
            let ds = self.dataset(&r.dataset)?;
            work.new_samples = d.view.sample_ids.iter().map(ToString::to_string).collect();
            plan.samples = work.new_samples.len();
            plan.tasks = work.new_samples.len().div_ceil(d.task_size);
            count_uploads(ds, d, &work.new_samples, plan);
            if r.merge.is_none() && !r.tasks.is_empty() {
                plan.details.push(format!(
                    "annotations not yet merged in the {} old task(s) are discarded",
                    r.tasks.len()
                ));
            }
            return Ok(());
        }

        let known: HashSet<&str> = r.samples.iter().map(String::as_str).collect();
        let new: Vec<String> = d
            .view
            .sample_ids
            .iter()
            .map(ToString::to_string)
            .filter(|s| !known.contains(s.as_str()))
            .collect();
        if !new.is_empty() {
            plan.actions.push(Action::Extend);
            let ds = self.dataset(&r.dataset)?;
            count_uploads(ds, d, &new, plan);
            let batches = new.len().div_ceil(d.task_size);
            plan.details.push(format!(
                "upload {} new sample(s) in {batches} new task(s)",
                new.len()
            ));
            plan.samples = r.samples.len() + new.len();
            plan.tasks = r.tasks.len() + batches;
            work.new_samples = new;
        }

        // Refresh: what does the backend hold now?
        let Some(project) = r.project.as_ref().map(|p| RemoteProject {
            id: p.id.clone(),
            name: p.name.clone(),
            url: None,
        }) else {
            return Ok(());
        };
        let b = self.backend(&d.backend)?;
        if b.find_project(&project.name)?
            .is_none_or(|p| p.id != project.id)
        {
            plan.actions.push(Action::Drift);
            plan.drift.push(format!(
                "project `{}` ({}) is missing from {}",
                project.name, project.id, d.backend
            ));
            work.missing_batches = r.tasks.iter().map(|t| t.batch).collect();
            return Ok(());
        }
        let live: HashSet<String> = b.list_tasks(&project)?.into_iter().map(|t| t.id).collect();
        for t in &r.tasks {
            if !live.contains(&t.id) {
                plan.drift.push(format!(
                    "task `{}` ({}) is missing; it will be recreated",
                    t.name, t.id
                ));
                work.missing_batches.push(t.batch);
            }
        }
        if !work.missing_batches.is_empty() {
            plan.actions.push(Action::Drift);
        }
        let task_ids: Vec<String> = r
            .tasks
            .iter()
            .filter(|t| live.contains(&t.id))
            .map(|t| t.id.clone())
            .collect();
        let load = d.loaded.run.load.clone().unwrap_or_default();
        if task_ids.is_empty() || load.when == LoadWhen::Never {
            return Ok(());
        }
        if load.when == LoadWhen::Complete {
            let status = b.status(&project, &task_ids)?;
            let done = status.iter().filter(|s| s.complete).count();
            if done < task_ids.len() {
                plan.details.push(format!(
                    "waiting for annotators: {done}/{} task(s) complete (load.when=complete)",
                    task_ids.len()
                ));
                return Ok(());
            }
        }
        let annotations = b.download(&project, &task_ids)?;
        let digest = merge::digest(&serde_json::to_value(&annotations).unwrap_or_default());
        work.guard.annotations_digest = Some(digest.clone());
        if r.merge
            .as_ref()
            .is_some_and(|m| m.annotations_digest == digest)
        {
            return Ok(());
        }
        let ds = self.dataset(&r.dataset)?;
        let outcome = merge_run(ds, r, d, &annotations)?;
        if !outcome.conflicts.is_empty() {
            return Err(EngineError::Run(format!(
                "run `{}`: {} label(s) changed both in the dataset since upload and in {}: {} (set load.conflicts to `backend` or `dataset` to choose a side)",
                r.key,
                outcome.conflicts.len(),
                d.backend,
                outcome.conflicts.join(", ")
            )));
        }
        let changes = outcome
            .counts
            .values()
            .any(|c| c.added + c.edited + c.deleted + c.rejected > 0);
        for (field, c) in &outcome.counts {
            let e = plan.fields.entry(field.clone()).or_default();
            e.added = c.added;
            e.edited = c.edited;
            e.deleted = c.deleted;
            e.rejected = c.rejected;
            e.unchanged = c.unchanged;
        }
        if changes {
            plan.actions.push(Action::Merge);
            plan.rejected = outcome.rejected;
            if load.cleanup {
                plan.details.push(format!(
                    "then delete project `{}` (load.cleanup)",
                    project.name
                ));
            }
        }
        // Remember the download: apply merges exactly this (or records the checkpoint).
        work.merge = Some((annotations, digest));
        Ok(())
    }

    /// Carry out `work`, saving each run's record after every step.
    pub fn apply(
        &mut self,
        work: Work,
        progress: &dyn Progress,
    ) -> Result<Vec<String>, EngineError> {
        let mut done = Vec::new();
        for w in work.runs {
            if w.plan.actions.is_empty() && w.merge.is_none() {
                continue;
            }
            let summary = format!(
                "{} {}/{}",
                w.plan
                    .actions
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join("+"),
                w.plan.dataset,
                w.plan.key
            );
            self.apply_run(w, progress)?;
            done.push(summary);
        }
        Ok(done)
    }

    fn apply_run(&mut self, w: RunWork, progress: &dyn Progress) -> Result<(), EngineError> {
        let actions = &w.plan.actions;
        let mut record = w.record;
        if actions.contains(&Action::Destroy) || actions.contains(&Action::Replace) {
            if let Some(r) = &record {
                if let Some(p) = &r.project {
                    let project = RemoteProject {
                        id: p.id.clone(),
                        name: p.name.clone(),
                        url: None,
                    };
                    let b = self.backend(&r.backend)?;
                    if b.find_project(&p.name)?.is_some_and(|live| live.id == p.id) {
                        b.delete_project(&project)?;
                    }
                }
                self.store.delete(&r.dataset, &r.key)?;
            }
            record = None;
            if actions.contains(&Action::Destroy) {
                return Ok(());
            }
        }
        let Some(d) = w.desired else { return Ok(()) };
        let mut record = match record {
            Some(r) => r,
            None => {
                let b = self.backend(&d.backend)?;
                let project = match b.find_project(&d.project_name)? {
                    Some(p) => p, // created before an interruption: adopt it
                    None => b.create_project(&ProjectSpec {
                        name: d.project_name.clone(),
                        schema: d.schema.clone(),
                        config: d.settings.clone(),
                    })?,
                };
                let mut r = RunRecord::new(
                    &d.loaded.run.dataset,
                    &d.loaded.run.key.0,
                    &d.backend,
                    &self.now,
                    crate::state::new_lineage(),
                );
                r.project = Some(BackendObject {
                    id: project.id,
                    name: project.name,
                });
                self.fill_record(&mut r, &d);
                self.store.put(&mut r)?;
                r
            }
        };
        self.fill_record_keep_schema(&mut record, &d);
        if actions.contains(&Action::Update) {
            if record.schema != d.schema {
                let project = remote(&record);
                self.backend(&d.backend)?
                    .update_schema(&project, &d.schema)?;
            }
            self.fill_record(&mut record, &d);
            self.store.put(&mut record)?;
        }
        self.upload_batches(
            &mut record,
            &d,
            &w.new_samples,
            &w.missing_batches,
            progress,
        )?;
        if let Some((annotations, digest)) = w.merge {
            self.merge_and_save(&mut record, &d, &annotations, digest)?;
            if d.loaded.run.load.as_ref().is_some_and(|l| l.cleanup)
                && w.plan.actions.contains(&Action::Merge)
            {
                let project = remote(&record);
                self.backend(&d.backend)?.delete_project(&project)?;
                record.cleaned_up = true;
                record.updated_at = self.now.clone();
                self.store.put(&mut record)?;
            }
        }
        Ok(())
    }

    /// Refresh what the record remembers of the manifest, except the schema (which changes
    /// only with the backend's project).
    fn fill_record_keep_schema(&self, r: &mut RunRecord, d: &Desired) {
        let schema = std::mem::take(&mut r.schema);
        self.fill_record(r, d);
        r.schema = schema;
    }

    fn fill_record(&self, r: &mut RunRecord, d: &Desired) {
        r.manifest_digest = d.manifest_digest.clone();
        r.backend_config = d.settings.clone();
        r.schema = d.schema.clone();
        r.view = d.loaded.run.view.clone();
        r.prevent_destroy = d
            .loaded
            .run
            .lifecycle
            .as_ref()
            .is_some_and(|l| l.prevent_destroy);
        r.updated_at = self.now.clone();
    }

    /// Create the tasks of new samples (and recreate missing ones), adopting any task that
    /// already exists under the deterministic name.
    fn upload_batches(
        &mut self,
        record: &mut RunRecord,
        d: &Desired,
        new_samples: &[String],
        missing: &[u32],
        progress: &dyn Progress,
    ) -> Result<(), EngineError> {
        let mut batches: Vec<(u32, Vec<String>)> = Vec::new();
        for b in missing {
            if let Some(t) = record.tasks.iter().find(|t| t.batch == *b) {
                batches.push((*b, t.samples.clone()));
            }
        }
        let first = record.tasks.iter().map(|t| t.batch + 1).max().unwrap_or(0);
        for (batch, chunk) in (first..).zip(new_samples.chunks(d.task_size)) {
            batches.push((batch, chunk.to_vec()));
        }
        if batches.is_empty() {
            return Ok(());
        }
        let project = remote(record);
        let existing = self.backend(&d.backend)?.list_tasks(&project)?;
        progress.start("uploading", batches.iter().map(|b| b.1.len() as u64).sum());
        for (batch, samples) in batches {
            let name = format!(
                "{}/batch-{batch:04}",
                record.project.as_ref().map_or("", |p| p.name.as_str())
            );
            let recreate = record.tasks.iter().position(|t| t.batch == batch);
            let spec = self.task_spec(&d.loaded.run.dataset, d, &name, batch, &samples)?;
            let adopt = existing
                .iter()
                .find(|t| t.name == name && recreate.is_none_or(|i| record.tasks[i].id != t.id));
            let task = match adopt {
                Some(t) => t.clone(),
                None => self.backend(&d.backend)?.create_task(&project, &spec)?,
            };
            let uploaded = uploaded_labels(&spec, &d.schema);
            match recreate {
                Some(i) => record.tasks[i].id = task.id,
                None => {
                    record.tasks.push(TaskRecord {
                        id: task.id,
                        name,
                        batch,
                        samples: samples.clone(),
                        status: None,
                    });
                    record.samples.extend(samples.iter().cloned());
                }
            }
            for (field, per_sample) in uploaded {
                record.uploaded.entry(field).or_default().extend(per_sample);
            }
            record.updated_at = self.now.clone();
            self.store.put(record)?;
            progress.advance(samples.len() as u64);
        }
        progress.finish();
        Ok(())
    }

    fn task_spec(
        &mut self,
        dataset: &str,
        d: &Desired,
        name: &str,
        batch: u32,
        samples: &[String],
    ) -> Result<TaskSpec, EngineError> {
        let ds = self.dataset(dataset)?;
        let media_field = d
            .loaded
            .run
            .media_field
            .clone()
            .unwrap_or_else(|| "filepath".into());
        let mut out = Vec::with_capacity(samples.len());
        for sid in samples {
            let id = ObjectId::parse(sid).map_err(|e| EngineError::Run(e.to_string()))?;
            let sample = ds.sample_by_id(id).ok_or_else(|| {
                EngineError::Run(format!("sample {sid} is no longer in dataset `{dataset}`"))
            })?;
            let media = sample
                .get(&media_field)
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    EngineError::Run(format!("sample {sid} has no `{media_field}` (media_field)"))
                })?;
            let dims = ds.image_size(id).ok();
            let labels = d
                .schema
                .fields
                .iter()
                .map(|(field, f)| {
                    (
                        field.clone(),
                        view_labels(ds, &d.view, id, field, f.label_type),
                    )
                })
                .collect();
            out.push(TaskSample {
                sample_id: sid.clone(),
                media: ds.media_path(media).display().to_string(),
                width: dims.as_ref().map(|x| x.width),
                height: dims.as_ref().map(|x| x.height),
                labels,
            });
        }
        Ok(TaskSpec {
            name: name.to_string(),
            batch,
            samples: out,
        })
    }

    fn merge_and_save(
        &mut self,
        record: &mut RunRecord,
        d: &Desired,
        annotations: &Annotations,
        digest: String,
    ) -> Result<(), EngineError> {
        let dataset = record.dataset.clone();
        let outcome = {
            let ds = self.dataset(&dataset)?;
            merge_run(ds, record, d, annotations)?
        };
        if !outcome.writes.is_empty() {
            let Some(Ok(ds)) = self.datasets.get_mut(&dataset) else {
                return Err(EngineError::Run(format!(
                    "dataset `{dataset}` is not loaded"
                )));
            };
            for (field, t) in &outcome.declare {
                let ftype = match merge::container(*t) {
                    ("", _) => outcome
                        .writes
                        .iter()
                        .find(|w| &w.1 == field)
                        .and_then(|w| w.2.as_ref())
                        .and_then(FieldType::infer)
                        .unwrap_or(FieldType::Str),
                    (cls, _) => FieldType::Label(cls.to_string()),
                };
                ds.declare_field(field, &ftype)?;
            }
            for (sid, field, value) in outcome.writes {
                let id = ObjectId::parse(&sid).map_err(|e| EngineError::Run(e.to_string()))?;
                let sample = ds
                    .sample_mut(id)
                    .ok_or_else(|| EngineError::Run(format!("sample {sid} disappeared")))?;
                sample.set(&field, value.unwrap_or(Value::Null));
            }
            ds.save()?;
        }
        for (field, per_sample) in outcome.baselines {
            let e = record.uploaded.entry(field).or_default();
            for (sid, labels) in per_sample {
                e.insert(sid, labels);
            }
        }
        record.id_map.extend(outcome.new_ids);
        record.merge = Some(MergeCheckpoint {
            annotations_digest: digest,
            merged_at: self.now.clone(),
            rejected: outcome.rejected,
        });
        record.updated_at = self.now.clone();
        self.store.put(record)?;
        Ok(())
    }

    /// Adopt a run's existing backend project and tasks (named as annoform names them) as a
    /// new record; the dataset's current labels become the upload baseline.
    pub fn import(&mut self, loaded: &LoadedRun) -> Result<RunRecord, EngineError> {
        let run = &loaded.run;
        if self.store.get(&run.dataset, &run.key.0)?.is_some() {
            return Err(EngineError::Run(format!(
                "run `{}` is already recorded; nothing to import",
                run.key
            )));
        }
        let d = self.desired(loaded)?;
        let b = self.backend(&d.backend)?;
        let project = b.find_project(&d.project_name)?.ok_or_else(|| {
            EngineError::Run(format!(
                "{} has no project `{}` to import",
                d.backend, d.project_name
            ))
        })?;
        let prefix = format!("{}/batch-", project.name);
        let mut tasks: Vec<(u32, backend::RemoteTask)> = b
            .list_tasks(&project)?
            .into_iter()
            .filter_map(|t| {
                t.name
                    .strip_prefix(&prefix)
                    .and_then(|n| n.parse().ok())
                    .map(|n| (n, t))
            })
            .collect();
        tasks.sort_by_key(|(n, _)| *n);
        if tasks.is_empty() {
            return Err(EngineError::Run(format!(
                "project `{}` has no tasks named `{prefix}NNNN`",
                project.name
            )));
        }
        let mut record = RunRecord::new(
            &run.dataset,
            &run.key.0,
            &d.backend,
            &self.now,
            crate::state::new_lineage(),
        );
        record.project = Some(BackendObject {
            id: project.id.clone(),
            name: project.name.clone(),
        });
        self.fill_record(&mut record, &d);
        for (batch, task) in tasks {
            let annotations = self
                .backend(&d.backend)?
                .download(&project, std::slice::from_ref(&task.id))?;
            let samples: Vec<String> = annotations.keys().cloned().collect();
            let spec = self.task_spec(&run.dataset, &d, &task.name, batch, &samples)?;
            for (field, per_sample) in uploaded_labels(&spec, &d.schema) {
                record.uploaded.entry(field).or_default().extend(per_sample);
            }
            record.samples.extend(samples.iter().cloned());
            record.tasks.push(TaskRecord {
                id: task.id,
                name: task.name,
                batch,
                samples,
                status: None,
            });
        }
        self.store.put(&mut record)?;
        Ok(record)
    }

    /// The status of a run's tasks as the backend reports them.
    pub fn status(&mut self, record: &RunRecord) -> Result<Vec<backend::TaskStatus>, EngineError> {
        let project = remote(record);
        let ids: Vec<String> = record.tasks.iter().map(|t| t.id.clone()).collect();
        Ok(self.backend(&record.backend)?.status(&project, &ids)?)
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
    }
}

/// Whether `new` only adds to `old` (classes, attributes, attribute values; restrictions may
/// change), which backends can apply in place.
fn additive(old: &ResolvedSchema, new: &ResolvedSchema) -> bool {
    old.fields.iter().all(|(name, o)| {
        new.fields.get(name).is_some_and(|n| {
            n.label_type == o.label_type
                && o.classes.iter().all(|c| n.classes.contains(c))
                && o.attributes.iter().all(|(a, oa)| {
                    n.attributes.get(a).is_some_and(|na| {
                        na.attr_type == oa.attr_type
                            && oa.values.iter().all(|v| na.values.contains(v))
                    })
                })
        })
    }) && new.fields.keys().all(|k| old.fields.contains_key(k))
}

/// The labels of `field` on a sample that the view includes, in FiftyOne JSON.
fn view_labels(ds: &Dataset, view: &View, id: ObjectId, field: &str, t: LabelType) -> Vec<Value> {
    let Some(sample) = ds.sample_by_id(id) else {
        return Vec::new();
    };
    let all = merge::labels_of(sample.get(field), t);
    match view.filtered.get(field) {
        Some(per_sample) => {
            let keep = per_sample.get(&id).cloned().unwrap_or_default();
            all.into_iter()
                .filter(|l| merge::label_id(l).is_some_and(|i| keep.contains(&i)))
                .collect()
        }
        None => all,
    }
}

fn uploaded_labels(
    spec: &TaskSpec,
    schema: &ResolvedSchema,
) -> IndexMap<String, IndexMap<String, Vec<UploadedLabel>>> {
    let mut out: IndexMap<String, IndexMap<String, Vec<UploadedLabel>>> = IndexMap::new();
    for s in &spec.samples {
        for (field, labels) in &s.labels {
            let Some(f) = schema.fields.get(field) else {
                continue;
            };
            let list = labels
                .iter()
                .map(|l| UploadedLabel {
                    id: if f.label_type == LabelType::Scalar {
                        "value".into()
                    } else {
                        merge::label_id(l)
                            .map(|i| i.to_string())
                            .unwrap_or_default()
                    },
                    digest: merge::label_digest(l, f),
                })
                .collect();
            out.entry(field.clone())
                .or_default()
                .insert(s.sample_id.clone(), list);
        }
    }
    out
}

fn count_uploads(ds: &Dataset, d: &Desired, samples: &[String], plan: &mut RunPlan) {
    for (field, f) in &d.schema.fields {
        let n: usize = samples
            .iter()
            .filter_map(|s| ObjectId::parse(s).ok())
            .map(|id| view_labels(ds, &d.view, id, field, f.label_type).len())
            .sum();
        plan.fields.entry(field.clone()).or_default().upload += n;
    }
}

/// A whole run's merge, computed (not yet written).
struct RunMerge {
    counts: IndexMap<String, FieldCounts>,
    rejected: Vec<Rejection>,
    conflicts: Vec<String>,
    /// (sample id, destination field, new value).
    writes: Vec<(String, String, Option<Value>)>,
    /// Destination fields to declare (new fields).
    declare: Vec<(String, LabelType)>,
    baselines: IndexMap<String, IndexMap<String, Vec<UploadedLabel>>>,
    new_ids: Vec<(String, String)>,
}

fn merge_run(
    ds: &Dataset,
    r: &RunRecord,
    d: &Desired,
    annotations: &Annotations,
) -> Result<RunMerge, EngineError> {
    let load = d.loaded.run.load.clone().unwrap_or_default();
    let dataset_id = ds
        .metadata()
        .get("_id")
        .and_then(ejson::oid_str)
        .unwrap_or(r.dataset.as_str())
        .to_string();
    let seed = format!("{dataset_id}/{}", r.key);
    let mut out = RunMerge {
        counts: IndexMap::new(),
        rejected: Vec::new(),
        conflicts: Vec::new(),
        writes: Vec::new(),
        declare: Vec::new(),
        baselines: IndexMap::new(),
        new_ids: Vec::new(),
    };
    let empty_dl: Vec<DownloadedLabel> = Vec::new();
    let empty_up: Vec<UploadedLabel> = Vec::new();
    for (field, schema) in &r.schema.fields {
        let dest = match &load.dest_field {
            Some(DestField::One(f)) => f.clone(),
            Some(DestField::Map(m)) => m.get(field).cloned().unwrap_or_else(|| field.clone()),
            None => field.clone(),
        };
        let counts = out.counts.entry(field.clone()).or_default();
        for sid in &r.samples {
            let id = ObjectId::parse(sid).map_err(|e| EngineError::Run(e.to_string()))?;
            let Some(sample) = ds.sample_by_id(id) else {
                continue;
            };
            let downloaded = annotations
                .get(sid)
                .and_then(|f| f.get(field))
                .unwrap_or(&empty_dl);
            let uploaded = r
                .uploaded
                .get(field)
                .and_then(|u| u.get(sid))
                .unwrap_or(&empty_up);
            let o = merge::merge_field(&FieldInput {
                field,
                schema,
                sample_id: sid,
                current: sample.get(field),
                uploaded,
                downloaded,
                id_map: &r.id_map,
                id_seed: seed.as_bytes(),
                conflicts: load.conflicts,
            });
            counts.added += o.counts.added;
            counts.edited += o.counts.edited;
            counts.deleted += o.counts.deleted;
            counts.rejected += o.counts.rejected;
            counts.unchanged += o.counts.unchanged;
            out.rejected.extend(o.rejected);
            out.conflicts.extend(o.conflicts);
            out.new_ids.extend(o.new_ids);
            out.baselines
                .entry(field.clone())
                .or_default()
                .insert(sid.clone(), o.baseline);
            let value = match (o.new_value, dest != *field) {
                (Some(v), _) => Some(v),
                // With a destination, unchanged labels are copied there too.
                (None, true) => Some(sample.get(field).cloned().filter(|v| !v.is_null())),
                (None, false) => None,
            };
            if let Some(v) = value {
                if sample.get(&dest) != v.as_ref() {
                    out.writes.push((sid.clone(), dest.clone(), v));
                }
            }
        }
        if !ds.field_exists(&dest) && out.writes.iter().any(|w| w.1 == dest) {
            out.declare.push((dest.clone(), schema.label_type));
        }
    }
    Ok(out)
}

/// Open a backend by name.
pub fn open_backend(
    config: &Config,
    env: &Env,
    name: &str,
) -> Result<Box<dyn Backend>, EngineError> {
    let s = config
        .backend(name)
        .ok_or_else(|| EngineError::Run(format!("unknown backend `{name}`")))?;
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
            let settings = s
                .values
                .iter()
                .filter(|(k, _)| !backend::capabilities::is_secret_setting(k))
                .map(|(k, v)| (k.clone(), v.value.clone()))
                .collect();
            Ok(Box::new(backend::custom::CustomBackend::start(
                name, &command, &settings,
            )?))
        }
        BackendKind::Labelstudio => {
            // Settings hold literal values from the environment or `${env:NAME}` references
            // from files; both resolve here and never reach a record or a log.
            let setting = |key: &str| -> Result<Option<String>, EngineError> {
                match s.values.get(key).and_then(|v| v.value.as_str()) {
                    None => Ok(None),
                    Some(v) => crate::secret::resolve(v, env)
                        .map(Some)
                        .map_err(|e| EngineError::Run(format!("backend `{name}`: {key}: {e}"))),
                }
            };
            let url = setting("url")?.unwrap_or_else(|| "http://localhost:8080".into());
            let api_key = setting("api_key")?.unwrap_or_default();
            let root = setting("local_files_root")?.map(std::path::PathBuf::from);
            let policy = backend::http::HttpPolicy::with_parallelism(config.parallelism.value);
            Ok(Box::new(backend::labelstudio::LabelStudioBackend::new(
                name, &url, &api_key, root, policy,
            )?))
        }
        kind => Err(EngineError::Run(format!(
            "the {kind} backend client is not available in this version of annoform yet; use a custom backend (see docs)"
        ))),
    }
}
