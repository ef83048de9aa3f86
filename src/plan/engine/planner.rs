//! Planning: desired runs against records and the live backends.

use super::apply::view_labels;
use super::download_cache::{CacheKey, CacheWriter};
use super::*;
use crate::backend::rendered::rendered_schema;
use crate::dataset::FieldPath;
use crate::merge::run::{MergeError, RunMerger};
use crate::schema::diff::{Rendered, SchemaChange};
use crate::state::LabelKey;

/// Missing samples named per drifted task (the rest are counted).
const SAMPLES_NAMED: usize = 5;
/// Tasks a waiting merge names with their status (the rest are counted).
const OPEN_TASKS_NAMED: usize = 3;

impl Engine<'_> {
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
                    return Err(EngineError::UnknownTarget { target: t.clone() });
                }
            }
            keys.retain(|(_, k)| targets.contains(k));
        }
        let mut out = Vec::new();
        for (dataset, key) in keys {
            let loaded = runs
                .iter()
                .find(|r| r.run.dataset == dataset && r.run.key.0 == key);
            // One run that cannot be planned is reported; the others are planned and applied.
            let planned = match self.failed.get(&(dataset.clone(), key.clone())) {
                Some(message) => Err(EngineError::Invalid(message.clone())),
                None => self.plan_one(&dataset, &key, loaded, goal),
            };
            out.push(planned.unwrap_or_else(|e| failed_work(&dataset, &key, loaded, e)));
        }
        let plan = Plan::new(out.iter().map(|w| w.plan.clone()).collect());
        Ok(Work { plan, runs: out })
    }

    fn plan_one(
        &mut self,
        dataset: &str,
        key: &str,
        loaded: Option<&LoadedRun>,
        goal: Goal,
    ) -> Result<RunWork, EngineError> {
        let desired = match (goal, loaded) {
            (Goal::Converge, Some(l)) => Some(self.desired(l)?),
            _ => None,
        };
        let record = self.store.get(dataset, key)?;
        // The manifest is the desired state: when present, its lifecycle decides; the
        // record's remembered flag protects only a run whose manifest is gone.
        let protection = match loaded {
            Some(l) => l
                .run
                .lifecycle
                .as_ref()
                .is_some_and(|lc| lc.prevent_destroy)
                .then(|| Protection::Manifest(l.file.name.clone())),
            None => record
                .as_ref()
                .is_some_and(|r| r.prevent_destroy)
                .then_some(Protection::Record),
        };
        self.plan_run(dataset, key, desired, record, protection)
    }

    fn plan_run(
        &mut self,
        dataset: &str,
        key: &str,
        mut desired: Option<Desired>,
        record: Option<RunRecord>,
        protection: Option<Protection>,
    ) -> Result<RunWork, EngineError> {
        let mut project_notes = Vec::new();
        if let Some(d) = desired.as_mut() {
            project_notes = self.project_schema(d, record.as_ref())?;
        }
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
            unexpected: Vec::new(),
            drift: Vec::new(),
            details: Vec::new(),
            waiting: None,
            edits: Vec::new(),
            schema_change: None,
            schema: desired.as_ref().map(|d| d.schema.clone()),
            error: None,
            hint: None,
            failure: None,
        };
        plan.details.extend(project_notes);
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
            missing_project: false,
            merge: None,
        };
        match (&desired, &record) {
            (None, None) => {}
            (None, Some(r)) => {
                if let Some(by) = protection {
                    return Err(EngineError::PreventDestroy {
                        key: key.to_string(),
                        dataset: dataset.to_string(),
                        by,
                    });
                }
                plan.actions.push(Action::Destroy);
                plan.details.push(match &r.project {
                    Some(p) => Detail::DeleteProject {
                        project: p.name.clone(),
                        tasks: r.tasks.len(),
                    },
                    None => Detail::ForgetRun,
                });
            }
            (Some(d), None) => {
                plan.actions.push(Action::Create);
                let ds = self.dataset(dataset)?;
                work.new_samples = d.view.sample_ids.iter().map(ToString::to_string).collect();
                plan.samples = work.new_samples.len();
                plan.tasks = work.new_samples.len().div_ceil(d.task_size);
                count_uploads(ds, d, &work.new_samples, &mut plan)?;
                plan.details.push(Detail::CreateProject {
                    project: d.project_name.clone(),
                    samples: plan.samples,
                    tasks: plan.tasks,
                });
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
                    plan.details.push(Detail::SettingsChanged);
                }
            }
        }
        work.plan = plan;
        work.desired = desired;
        work.record = record;
        Ok(work)
    }

    /// A run that names its project (`project_id`, `project_name`) shares a project it may
    /// not have created: unless `extend_project_schema` is set, the project's labels are the
    /// run's classes and attributes, and the manifest's are not used (FiftyOne's rule).
    /// Returns what the plan says about it.
    fn project_schema(
        &mut self,
        d: &mut Desired,
        record: Option<&RunRecord>,
    ) -> Result<Vec<Detail>, EngineError> {
        let names_project =
            d.settings.contains_key("project_id") || d.settings.contains_key("project_name");
        if d.kind != BackendKind::Cvat || !names_project {
            return Ok(Vec::new());
        }
        let extend = d
            .settings
            .get("extend_project_schema")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if let Some(r) = record {
            if extend || same_schema(&r.schema, &d.schema) {
                return Ok(Vec::new());
            }
            // Keep the recorded classes and attributes: the project is not the run's to grow.
            let mut schema = r.schema.clone();
            for (name, f) in schema.fields.iter_mut() {
                if let Some(want) = d.schema.fields.get(name) {
                    f.restrictions = want.restrictions;
                }
            }
            let changed = !same_schema(&schema, &d.schema);
            d.schema = schema;
            return Ok(changed
                .then_some(Detail::SharedProjectSchemaKept)
                .into_iter()
                .collect());
        }
        let Some(existing) = self.backend(&d.connection)?.existing_project(&d.settings)? else {
            return Ok(Vec::new());
        };
        let p = &existing.project;
        if extend {
            return Ok(vec![Detail::ExistingProjectExtended {
                project: p.name.clone(),
                id: p.id.clone(),
            }]);
        }
        let schema = resolve::with_project_classes(&d.schema, &existing.classes);
        let ds = self.dataset(&d.loaded.run.dataset)?;
        for (field, f) in &schema.fields {
            if matches!(f.label_type, LabelType::Scalar | LabelType::Segmentation) {
                continue;
            }
            let mut missing: Vec<String> = Vec::new();
            for id in &d.view.sample_ids {
                for l in view_labels(ds, &d.view, *id, field, f.label_type) {
                    if let Some(c) = l.get("label").and_then(Value::as_str) {
                        if !f.classes.iter().any(|x| x == c) && !missing.iter().any(|m| m == c) {
                            missing.push(c.to_string());
                        }
                    }
                }
            }
            if !missing.is_empty() {
                missing.sort();
                return Err(EngineError::ProjectLacksClasses {
                    run: d.loaded.run.key.0.clone(),
                    project: p.name.clone(),
                    id: p.id.clone(),
                    field: field.to_string(),
                    classes: missing,
                });
            }
        }
        let note = Detail::ExistingProjectClasses {
            project: p.name.clone(),
            id: p.id.clone(),
            classes: existing.classes.iter().map(|(c, _)| c.clone()).collect(),
        };
        d.schema = schema;
        Ok(vec![note])
    }

    fn plan_existing(
        &mut self,
        d: &Desired,
        r: &RunRecord,
        plan: &mut RunPlan,
        work: &mut RunWork,
    ) -> Result<(), EngineError> {
        if r.cleaned_up {
            plan.details.push(Detail::Finished);
            return Ok(());
        }
        let kind = d.kind;
        if r.backend != d.backend {
            plan.actions.push(Action::Replace);
            plan.details.push(Detail::BackendChanged {
                from: r.backend.clone(),
                to: d.backend.clone(),
            });
        } else if !same_schema(&r.schema, &d.schema) {
            plan.schema_change = schema_change(kind, &r.schema, &d.schema);
            let caps_in_place = self
                .backend(&d.connection)?
                .capabilities()
                .schema_update_in_place;
            if caps_in_place && additive(&r.schema, &d.schema) {
                plan.actions.push(Action::Update);
                plan.details.push(Detail::SchemaInPlace);
            } else {
                plan.actions.push(Action::Replace);
                plan.details.push(Detail::SchemaRecreates {
                    backend: kind.to_string(),
                });
            }
        }
        if plan.actions.contains(&Action::Replace) {
            let ds = self.dataset(&r.dataset)?;
            work.new_samples = d.view.sample_ids.iter().map(ToString::to_string).collect();
            plan.samples = work.new_samples.len();
            plan.tasks = work.new_samples.len().div_ceil(d.task_size);
            count_uploads(ds, d, &work.new_samples, plan)?;
            if r.merge.is_none() && !r.tasks.is_empty() {
                plan.details.push(Detail::UnmergedDiscarded {
                    tasks: r.tasks.len(),
                });
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
            count_uploads(ds, d, &new, plan)?;
            let batches = new.len().div_ceil(d.task_size);
            plan.details.push(Detail::UploadNew {
                samples: new.len(),
                tasks: batches,
            });
            plan.samples = r.samples.len() + new.len();
            plan.tasks = r.tasks.len() + batches;
            work.new_samples = new;
        }

        if !r.labels_pending.is_empty() {
            if !plan.actions.contains(&Action::Extend) {
                plan.actions.push(Action::Extend);
            }
            plan.details.push(Detail::FinishUploads {
                tasks: r.labels_pending.len(),
            });
        }

        // Refresh: what does the backend hold now?
        let Some(project) = r.project.as_ref().map(|p| RemoteProject {
            id: p.id.clone(),
            name: p.name.clone(),
            url: None,
            owner: None,
        }) else {
            return Ok(());
        };
        let b = self.attached(r, &d.connection)?;
        // Nothing written and no task come or gone since the cursor: nothing to refresh, and
        // the backend may tell so in one request. Not while the status still decides
        // something: a run waiting for its tasks to complete (annotators finishing without an
        // edit touch no annotation), or one to clean up after its final merge.
        let since = r.refresh_cursor().map(String::from);
        let load = d.loaded.run.load.clone().unwrap_or_default();
        let status_decides = load.cleanup || (load.when == LoadWhen::Complete && r.merge.is_none());
        if let Some(cursor) = &since
            && !status_decides
            && b.unchanged_since(&project, cursor)?
        {
            return Ok(());
        }
        if b.find_project(&project.name)?
            .is_none_or(|p| p.id != project.id)
        {
            plan.actions.push(Action::Drift);
            plan.drift.push(Drift::ProjectMissing {
                project: project.name.clone(),
                id: project.id.clone(),
                backend: d.backend.clone(),
            });
            work.missing_batches = r.tasks.iter().map(|t| t.batch).collect();
            work.missing_project = true;
            return Ok(());
        }
        let mut live: HashSet<String> = b.list_tasks(&project)?.into_iter().map(|t| t.id).collect();
        let unlisted: Vec<String> = r
            .tasks
            .iter()
            .filter(|t| !live.contains(&t.id))
            .map(|t| t.id.clone())
            .collect();
        if !unlisted.is_empty() {
            let gone: HashSet<String> = b
                .confirm_missing(&project, &unlisted)?
                .into_iter()
                .collect();
            live.extend(unlisted.into_iter().filter(|t| !gone.contains(t)));
        }
        for t in &r.tasks {
            if !live.contains(&t.id) {
                plan.drift.push(Drift::TaskMissing {
                    task: t.name.clone(),
                    id: t.id.clone(),
                });
                work.missing_batches.push(t.batch);
            }
        }
        if !work.missing_batches.is_empty() {
            plan.actions.push(Action::Drift);
        }
        // A task whose labels are not all uploaded yet is not merged: its labels would read
        // as deleted.
        let task_ids: Vec<String> = r
            .tasks
            .iter()
            .filter(|t| live.contains(&t.id) && !r.labels_pending.contains(&t.batch))
            .map(|t| t.id.clone())
            .collect();
        if task_ids.is_empty() || load.when == LoadWhen::Never {
            return Ok(());
        }
        if load.when == LoadWhen::Complete {
            let status = b.status(&project, &task_ids)?;
            let done = status.iter().filter(|s| s.complete).count();
            if done < task_ids.len() {
                let open = status
                    .iter()
                    .filter(|s| !s.complete)
                    .take(OPEN_TASKS_NAMED)
                    .map(|s| OpenTask {
                        task: r
                            .tasks
                            .iter()
                            .find(|t| t.id == s.id)
                            .map_or_else(|| s.id.clone(), |t| t.name.clone()),
                        status: s.status.clone(),
                    })
                    .collect();
                plan.waiting = Some(Waiting {
                    complete: done,
                    tasks: task_ids.len(),
                    when: load.when,
                    open,
                });
                return Ok(());
            }
        }
        // Stream the download into the merge: each page is merged and dropped.
        let ds = match self.datasets.get(&r.dataset) {
            Some(Ok(ds)) => ds,
            _ => {
                return Err(EngineError::UnloadableDataset {
                    name: r.dataset.clone(),
                    message: "not loaded".into(),
                });
            }
        };
        let b = self
            .backends
            .get_mut(&d.connection)
            .expect("opened by the drift check above");
        // After a merge (or since the tasks were created), ask only for what changed since
        // (when the backend can tell). A plan's download kept for this record state is
        // replayed, and only what changed after it is asked for: plan then apply downloads
        // once.
        let key = CacheKey::new(r, &d.backend, &project.id, &task_ids, since.as_deref());
        let cached = self
            .cache
            .open(&key)
            .filter(|c| c.downloaded.cursor.is_some());
        let mut keep = if self.keep_downloads {
            self.cache.writer(&key)
        } else {
            None
        };
        let ask = match &cached {
            Some(c) => c.downloaded.cursor.clone(),
            None => since.clone(),
        };
        let mut merger =
            RunMerger::new(ds, r, &load, &task_ids, since.is_none()).with_as_held(b.as_held());
        let replay = cached.is_some();
        let mut fresh: HashSet<String> = HashSet::new();
        let mut failed = None;
        let mut downloaded = b
            .download(&project, &task_ids, ask.as_deref(), &mut |page| {
                if replay {
                    fresh.extend(page.keys().cloned());
                }
                keep_page(&mut keep, &page);
                merger.page(page).map_err(|e| {
                    let message = e.to_string();
                    failed = Some(e);
                    backend::BackendError::new(&d.backend, message)
                })
            })
            .map_err(|e| match failed.take() {
                Some(f) => EngineError::Merge(f),
                None => EngineError::Backend(e),
            })?;
        if let Some(c) = &cached {
            // What changed after the plan supersedes what the plan downloaded.
            for page in c.pages() {
                let Some(mut page) = page else {
                    return Err(EngineError::KeptDownloadUnreadable { run: r.key.clone() });
                };
                page.retain(|sid, _| !fresh.contains(sid));
                keep_page(&mut keep, &page);
                merger.page(page)?;
            }
            if downloaded.held.is_none() {
                downloaded.held = c.downloaded.held.clone();
            }
        }
        let mut outcome = merger
            .finish(downloaded.held.as_ref())
            .map_err(|e| match e {
                e @ MergeError::Incomplete(_) => EngineError::IncompleteDownload {
                    run: r.key.clone(),
                    backend: d.backend.clone(),
                    source: Box::new(e),
                },
                e => EngineError::Merge(e),
            })?;
        if let Some(w) = keep {
            // Only a time saver: a download that cannot be kept is downloaded again.
            let _ = w.finish(&downloaded);
        }
        // One entry per task, naming its missing samples (the first few).
        let mut by_task: IndexMap<(&str, &str), Vec<&str>> = IndexMap::new();
        for m in &outcome.missing {
            by_task
                .entry((m.task.as_str(), m.task_id.as_str()))
                .or_default()
                .push(m.sample.as_str());
        }
        for ((task, id), samples) in by_task {
            plan.drift.push(Drift::SamplesMissing {
                task: task.to_string(),
                id: id.to_string(),
                backend: d.backend.clone(),
                missing: samples.len(),
                samples: samples
                    .iter()
                    .take(SAMPLES_NAMED)
                    .map(ToString::to_string)
                    .collect(),
            });
        }
        // The cursor moves only past a download where every sample is accounted for: with
        // samples missing, the next refresh looks again from where this one started.
        outcome.cursor = if outcome.missing.is_empty() {
            downloaded.cursor
        } else {
            if !plan.actions.contains(&Action::Drift) {
                plan.actions.push(Action::Drift);
            }
            since.clone()
        };
        // Objects no sample takes are part of what the backend holds: new ones make the run
        // dirty, so the plan lists them.
        if !downloaded.strays.is_empty() {
            let strays: Vec<serde_json::Value> = downloaded
                .strays
                .iter()
                .map(|s| serde_json::json!([s.task, s.backend_id, s.reason]))
                .collect();
            outcome.digest = merge::digest(&serde_json::json!([outcome.digest, strays]));
        }
        let digest = outcome.digest.clone();
        work.guard.annotations_digest = Some(digest.clone());
        // Nothing new: the same annotations as last merged, or nothing changed since then.
        let unchanged = r.merge.as_ref().is_some_and(|m| {
            m.cursor == outcome.cursor
                && (m.annotations_digest == digest || (since.is_some() && outcome.samples == 0))
        });
        if unchanged && !load.cleanup {
            return Ok(());
        }
        if !outcome.unexpected_errors.is_empty() {
            return Err(EngineError::UnexpectedLabels {
                run: r.key.clone(),
                labels: outcome.unexpected_errors,
            });
        }
        if !outcome.conflicts.is_empty() {
            return Err(EngineError::Conflicts {
                run: r.key.clone(),
                backend: d.backend.clone(),
                labels: outcome.conflicts,
            });
        }
        for (field, c) in &outcome.counts {
            let e = plan.fields.entry(field.clone()).or_default();
            e.added = c.added;
            e.edited = c.edited;
            e.edits = c.edits;
            e.deleted = c.deleted;
            e.rejected = c.rejected;
            e.unchanged = c.unchanged;
            e.unexpected = c.unexpected;
        }
        // The dataset already holds what the backend holds, but the record does not know it
        // (an apply stopped between saving the dataset and saving the record): the merge is
        // recorded, or later deletions of those labels would find no baseline to delete from.
        let unrecorded = !outcome.changes_anything() && holds_unrecorded_labels(&outcome, r);
        if unrecorded {
            plan.actions.push(Action::Merge);
            plan.details.push(Detail::RecordMerge);
        }
        // `load.cleanup` deletes the project after the final merge, with or without changes.
        if outcome.changes_anything() || load.cleanup || !downloaded.strays.is_empty() {
            plan.actions.push(Action::Merge);
            for s in &downloaded.strays {
                plan.details.push(Detail::NotMerged {
                    backend: d.backend.clone(),
                    object: s.backend_id.clone(),
                    task: s.task.clone(),
                    reason: s.reason.clone(),
                });
            }
            plan.rejected = outcome.rejected.clone();
            plan.edits = outcome.edits.clone();
            plan.unexpected = outcome.unexpected.clone();
            if !outcome.returned.is_empty() {
                plan.details.push(Detail::ReturnUnexpected {
                    labels: outcome.returned.len(),
                    path: super::returned_path(&r.dataset, &r.key),
                });
            }
            // Per-sample detail for reviewers, bounded so huge merges keep plans small.
            plan.details
                .extend(outcome.changes.iter().cloned().map(Detail::SampleChanges));
            if outcome.more_changes > 0 {
                plan.details.push(Detail::MoreSamples {
                    samples: outcome.more_changes,
                });
            }
            if load.cleanup {
                plan.details.push(Detail::Cleanup {
                    project: project.name.clone(),
                });
            }
        }
        // Remember the merge: apply writes exactly this (or records the checkpoint).
        work.merge = Some(outcome);
        Ok(())
    }
}

/// Append a page to the download being kept; a page that cannot be written drops the file.
fn keep_page(keep: &mut Option<CacheWriter>, page: &backend::Annotations) {
    if keep.as_mut().is_some_and(|w| w.page(page).is_err()) {
        *keep = None;
    }
}

/// The work of a run that could not be planned: nothing to do, the error in the plan.
fn failed_work(dataset: &str, key: &str, loaded: Option<&LoadedRun>, e: EngineError) -> RunWork {
    let message = e.to_string();
    let hint = e.hint();
    let failure = e.failure();
    let plan = RunPlan {
        key: key.to_string(),
        dataset: dataset.to_string(),
        backend: loaded
            .and_then(|l| l.run.backend.clone())
            .unwrap_or_default(),
        actions: Vec::new(),
        samples: 0,
        tasks: 0,
        fields: IndexMap::new(),
        rejected: Vec::new(),
        unexpected: Vec::new(),
        drift: Vec::new(),
        details: Vec::new(),
        waiting: None,
        edits: Vec::new(),
        schema_change: None,
        schema: None,
        error: Some(message),
        hint,
        failure,
    };
    RunWork {
        guard: Guard {
            dataset: dataset.to_string(),
            key: key.to_string(),
            serial: None,
            lineage: None,
            manifest_digest: None,
            annotations_digest: None,
        },
        plan,
        desired: None,
        record: None,
        new_samples: Vec::new(),
        missing_batches: Vec::new(),
        missing_project: false,
        merge: None,
    }
}

/// Whether two schemas ask the same of the backend: a field the first merge created is
/// `existing` afterwards, which changes nothing on the backend.
fn same_schema(a: &ResolvedSchema, b: &ResolvedSchema) -> bool {
    a.fields.len() == b.fields.len()
        && a.fields.iter().all(|(name, fa)| {
            b.fields.get(name).is_some_and(|fb| {
                let mut fb = fb.clone();
                fb.existing = fa.existing;
                *fa == fb
            })
        })
}

/// The schema change from the record's schema to the manifest's, with the backend's rendering
/// of both when it has one.
fn schema_change(
    kind: BackendKind,
    old: &ResolvedSchema,
    new: &ResolvedSchema,
) -> Option<SchemaChange> {
    let mut change = crate::schema::diff::diff(old, new)?;
    change.rendered = match (rendered_schema(kind, old), rendered_schema(kind, new)) {
        (Some((what, before)), Some((_, after))) if before != after => Some(Rendered {
            what: what.to_string(),
            before,
            after,
        }),
        _ => None,
    };
    Some(change)
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

/// Counts the labels to upload, refusing labels a backend cannot round-trip.
fn count_uploads(
    ds: &Dataset,
    d: &Desired,
    samples: &[String],
    plan: &mut RunPlan,
) -> Result<(), EngineError> {
    use crate::dataset::sendable::{SHOWN, unsendable_labels};
    let ids = samples.iter().filter_map(|s| ObjectId::parse(s).ok());
    let fields = d.schema.fields.keys().map(FieldPath::as_str);
    // Validation checked the whole view (these samples are some of it).
    let bad = match d.sendable_checked {
        true => Vec::new(),
        false => unsendable_labels(ds, &d.view, ids, fields, SHOWN),
    };
    if !bad.is_empty() {
        return Err(EngineError::Unsendable {
            run: plan.key.clone(),
            dataset: plan.dataset.clone(),
            labels: bad.iter().map(ToString::to_string).collect(),
        });
    }
    for (field, f) in &d.schema.fields {
        let n: usize = samples
            .iter()
            .filter_map(|s| ObjectId::parse(s).ok())
            .map(|id| view_labels(ds, &d.view, id, field, f.label_type).len())
            .sum();
        plan.fields.entry(field.clone()).or_default().upload += n;
    }
    Ok(())
}

/// Whether the dataset holds labels of a merge the record never saw: a baseline naming other
/// labels than the record's (labels drawn or deleted in the backend and already merged), or
/// backend objects whose ids were never recorded. A baseline that differs only in digests (the
/// backend's rendering of the same labels) is not one.
fn holds_unrecorded_labels(m: &merge::run::RunMerge, r: &RunRecord) -> bool {
    let ids =
        |labels: &[UploadedLabel]| -> HashSet<LabelKey> { labels.iter().map(|l| l.id).collect() };
    !m.new_ids.is_empty()
        || m.baselines.iter().any(|(field, samples)| {
            samples.iter().any(|(sample, labels)| {
                let recorded = r
                    .uploaded
                    .get(field)
                    .and_then(|f| f.get(sample))
                    .map_or(&[][..], Vec::as_slice);
                ids(labels) != ids(recorded)
            })
        })
        || m.frame_baselines.iter().any(|(field, samples)| {
            samples.iter().any(|(sample, frames)| {
                let recorded = r.uploaded_frames.get(field).and_then(|f| f.get(sample));
                frames.iter().any(|(f, labels)| {
                    let was = recorded
                        .and_then(|r| r.get(f))
                        .map_or(&[][..], Vec::as_slice);
                    ids(labels) != ids(was)
                })
            })
        })
}
