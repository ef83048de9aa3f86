//! Applying: each step saved to the run record before the next starts.

use super::resolved_from::resolved_inputs;
use super::*;
use crate::dataset::FieldPath;
use crate::merge::run::RunMerge;
use crate::plan::outcome::RunOutcome;
use crate::state::FrameLabels;

impl Engine<'_> {
    /// Carry out `work`, saving each run's record after every step; returns the runs
    /// changed.
    pub fn apply(
        &mut self,
        work: Work,
        progress: &dyn Progress,
    ) -> Result<Vec<RunOutcome>, EngineError> {
        let mut done = Vec::new();
        // One run failing stops only that run: the others are applied, then the failure is
        // reported (each step of the failed run is saved, so it resumes on the next apply).
        let mut failed: Vec<(String, EngineError)> = Vec::new();
        for w in work.runs {
            // Nothing planned, nothing written but a cursor the refresh moved.
            if w.plan.actions.is_empty() {
                let key = w.plan.key.clone();
                if let Err(e) = self.keep_unchanged(w) {
                    failed.push((key, e));
                }
                continue;
            }
            let resolved = resolved_inputs(&w);
            let summary = RunOutcome::new(&w.plan.dataset, &w.plan.key, &w.plan.actions);
            let (dataset, key) = (w.plan.dataset.clone(), w.plan.key.clone());
            let applied = self
                .apply_run(w, progress)
                .and_then(|()| self.sync_annotation_run(&dataset, &key))
                .and_then(|()| self.keep_resolved_from(resolved));
            // The record moved on: no kept download matches it any more.
            self.cache.forget(&dataset, &key);
            match applied {
                Ok(()) => done.push(summary),
                Err(e) => failed.push((key, e)),
            }
        }
        match failed.len() {
            0 => Ok(done),
            1 => Err(failed.remove(0).1),
            _ => Err(EngineError::RunsFailed(failed)),
        }
    }

    /// Settle the runs with nothing to apply (see [`Engine::keep_unchanged`]).
    pub fn keep_cursors(&mut self, work: Work) -> Result<(), EngineError> {
        work.runs
            .into_iter()
            .filter(|w| w.plan.actions.is_empty())
            .try_for_each(|w| self.keep_unchanged(w))
    }

    /// A run with nothing to apply keeps the cursor its refresh moved and what its schema
    /// resolves from.
    fn keep_unchanged(&mut self, w: RunWork) -> Result<(), EngineError> {
        let resolved = resolved_inputs(&w);
        self.keep_cursor(w)?;
        self.keep_resolved_from(resolved)
    }

    /// A refresh that found only what is merged already (an edit undone, a write that changed
    /// nothing) still moved the backend's cursor: saving it lets the next plan ask from there
    /// (a no-op in one request) instead of downloading the same again. Only a cursor the
    /// record holds moves (a run without one downloads everything until its first merge);
    /// the dataset is not touched.
    fn keep_cursor(&mut self, w: RunWork) -> Result<(), EngineError> {
        let (Some(mut record), Some(merge)) = (w.record, w.merge) else {
            return Ok(());
        };
        if merge.cursor.is_none()
            || record.refresh_cursor().is_none()
            || record.refresh_cursor() == merge.cursor.as_deref()
        {
            return Ok(());
        }
        record.set_refresh_cursor(merge.cursor);
        record.touch(&self.now);
        self.store.put(&mut record)?;
        Ok(())
    }

    fn apply_run(&mut self, w: RunWork, progress: &dyn Progress) -> Result<(), EngineError> {
        let actions = &w.plan.actions;
        let mut record = w.record;
        if actions.contains(&Action::Destroy) || actions.contains(&Action::Replace) {
            if let Some(r) = &record {
                if let Some(p) = &r.project {
                    let project = remote(r);
                    // A project shared with other runs (`project_name` reused) stays until
                    // the last of them goes: deleting it would delete their tasks too.
                    let mut shared = false;
                    for (dataset, key) in self.store.list()? {
                        if (dataset.as_str(), key.as_str()) == (r.dataset.as_str(), r.key.as_str())
                        {
                            continue;
                        }
                        if let Some(o) = self.store.get(&dataset, &key)? {
                            shared |= Connection::of_record(&o) == Connection::of_record(r)
                                && o.project.as_ref().is_some_and(|op| op.id == p.id)
                                && !o.cleaned_up;
                        }
                    }
                    // Only a project this record owns goes: made for it, or for another run of
                    // this workspace that shared it; one stamped with any other run's identity
                    // was made for that run, whatever this record says.
                    let b = self.attached(r, &Connection::of_record(r))?;
                    let owned = b.find_project(&p.name)?.is_some_and(|live| {
                        live.id == p.id
                            && live.owner.is_none_or(|o| {
                                o.lineage == r.lineage
                                    || r.project_maker.as_ref() == Some(&o.lineage)
                            })
                    });
                    if !shared && owned {
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
                // The record (and its lineage, which the project will carry) is saved before
                // the project is made, so an interrupted apply finds the project as its own.
                let mut r = self.new_record(&d, None);
                if let Some(p) = self.backend(&d.connection)?.find_project(&d.project_name)? {
                    self.check_adoptable(&p, &r)?;
                }
                self.store.put(&mut r)?;
                r
            }
        };
        self.fill_record_keep_schema(&mut record, &d);
        if record.project.is_none() || w.missing_project {
            // New, or deleted outside annoform: create it (or adopt the one an interrupted
            // apply made).
            self.ensure_project(&mut record, &d)?;
        }
        self.attached(&record, &d.connection)?;
        if actions.contains(&Action::Update) {
            if record.schema != d.schema {
                let project = remote(&record);
                self.backend(&d.connection)?
                    .update_schema(&project, &d.schema)?;
                // Restrictions may have changed: the next refresh looks at everything again.
                record.set_refresh_cursor(None);
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
        if let Some(outcome) = w.merge {
            self.merge_and_save(&mut record, outcome)?;
            if d.loaded.run.load.as_ref().is_some_and(|l| l.cleanup)
                && w.plan.actions.contains(&Action::Merge)
            {
                let project = remote(&record);
                self.backend(&d.connection)?.delete_project(&project)?;
                record.cleaned_up = true;
                record.touch(&self.now);
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

    pub(super) fn fill_record(&self, r: &mut RunRecord, d: &Desired) {
        r.manifest_digest = d.manifest_digest.clone();
        r.backend_config = d.recorded.clone();
        r.schema = d.schema.clone();
        r.view = d.loaded.run.view.clone();
        r.prevent_destroy = d
            .loaded
            .run
            .lifecycle
            .as_ref()
            .is_some_and(|l| l.prevent_destroy);
        r.touch(&self.now);
    }

    /// Create the tasks of new samples (and recreate missing ones), adopting any task that
    /// already exists under the deterministic name, and finish the tasks an interrupted apply
    /// left without their labels.
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
        if batches.is_empty() && record.labels_pending.is_empty() {
            return Ok(());
        }
        let project = remote(record);
        let existing = self.backend(&d.connection)?.list_tasks(&project)?;
        progress.start("uploading", batches.iter().map(|b| b.1.len() as u64).sum());
        let prefix = batch_prefix(
            record.project.as_ref().map_or("", |p| p.name.as_str()),
            &record.key,
        );
        for (batch, samples) in batches {
            let name = format!("{prefix}{batch:04}");
            let recreate = record.tasks.iter().position(|t| t.batch == batch);
            let adopt = existing
                .iter()
                .find(|t| t.name == name && recreate.is_none_or(|i| record.tasks[i].id != t.id));
            let dataset = d.loaded.run.dataset.as_str();
            // A task found rather than made may lack labels (an apply killed between its
            // media and its labels): it is verified against the backend before it counts.
            let (task, labels) = match adopt {
                Some(t) => (
                    t.clone(),
                    Pending(self.task_spec(dataset, d, &name, batch, &samples)?),
                ),
                None if self.backend(&d.connection)?.labels_with_media() => {
                    let (t, uploaded) =
                        self.create_filling(dataset, d, &project, (&name, batch), &samples)?;
                    (t, Uploaded(uploaded))
                }
                None => {
                    let spec = self.task_spec(dataset, d, &name, batch, &samples)?;
                    let t = self.backend(&d.connection)?.create_task(&project, &spec)?;
                    (t, Pending(spec))
                }
            };
            match recreate {
                Some(i) => record.tasks[i].id = task.id.clone(),
                None => {
                    record.tasks.push(TaskRecord {
                        id: task.id.clone(),
                        name,
                        batch,
                        samples: samples.clone(),
                        status: None,
                        notes: None,
                    });
                    record.samples.extend(samples.iter().cloned());
                }
            }
            record.labels_pending.retain(|b| *b != batch);
            let pending = match labels {
                Uploaded(uploaded) => {
                    for u in uploaded {
                        u.record(record);
                    }
                    None
                }
                Pending(spec) => {
                    record.labels_pending.push(batch);
                    Some(spec)
                }
            };
            record.touch(&self.now);
            self.store.put(record)?;
            if let Some(spec) = pending {
                self.finish_labels(record, d, &project, batch, Some(spec), adopt.is_some())?;
            }
            self.map_shapes(record, d, &project, &task.id)?;
            progress.advance(samples.len() as u64);
        }
        for batch in record.labels_pending.clone() {
            self.finish_labels(record, d, &project, batch, None, true)?;
            if let Some(t) = record.tasks.iter().find(|t| t.batch == batch) {
                let id = t.id.clone();
                self.map_shapes(record, d, &project, &id)?;
            }
        }
        progress.finish();
        // The first refresh starts from here, not from every task (the merge's cursor, once
        // there is one, is older than the new tasks, which it therefore includes).
        if record.merge.is_none() && record.created_cursor.is_none() {
            let ids: Vec<String> = record.tasks.iter().map(|t| t.id.clone()).collect();
            record.created_cursor = self.backend(&d.connection)?.cursor(&project, &ids)?;
            record.touch(&self.now);
            self.store.put(record)?;
        }
        Ok(())
    }

    /// CVAT's UI resets a shape's attributes, our `label_id` among them, when an annotator
    /// changes its class: record which shape holds which label now, so the merge still knows
    /// it (the recorded shape-id map).
    fn map_shapes(
        &mut self,
        record: &mut RunRecord,
        d: &Desired,
        project: &RemoteProject,
        task: &str,
    ) -> Result<(), EngineError> {
        if d.kind != BackendKind::Cvat {
            return Ok(());
        }
        let map = &mut record.id_map;
        self.backend(&d.connection)?
            .download(project, &[task.to_string()], None, &mut |page| {
                for labels in page.values().flat_map(|f| f.values()) {
                    for l in labels {
                        if let Some(id) = merge::label_id(&l.label) {
                            map.insert(l.backend_id.clone(), id.to_string());
                        }
                    }
                }
                Ok(())
            })?;
        record.touch(&self.now);
        self.store.put(record)?;
        Ok(())
    }

    pub(super) fn task_spec(
        &mut self,
        dataset: &str,
        d: &Desired,
        name: &str,
        batch: u32,
        samples: &[String],
    ) -> Result<TaskSpec, EngineError> {
        let mut spec = self.bare_task_spec(dataset, d, name, batch, samples)?;
        let ds = self.dataset(dataset)?;
        for s in &mut spec.samples {
            fill_labels(ds, d, s)?;
        }
        Ok(spec)
    }

    /// A batch's task without its labels: each sample's media, size and video, to be
    /// filled by [`fill_labels`] (a batch's labels as JSON values weigh several times their
    /// text in the dataset, so a create fills each sample only as it goes up).
    fn bare_task_spec(
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
            let problem = |problem: String| sample_problem(sid, problem);
            let id = ObjectId::parse(sid).map_err(|e| problem(e.to_string()))?;
            let sample = ds
                .sample_by_id(id)
                .ok_or_else(|| problem(format!("no longer in dataset `{dataset}`")))?;
            // The one field, parsed for this call: the sample is not kept parsed.
            let media = sample.project(&[media_field.as_str()]);
            let media = media
                .get(&media_field)
                .and_then(Value::as_str)
                .ok_or_else(|| problem(format!("no `{media_field}` (media_field)")))?;
            let video = match ds.media_type() {
                "video" => Some(ds.video_info(id).map_err(|e| problem(e.to_string()))?),
                _ => None,
            };
            let dims = match video {
                Some(v) => Some(crate::dataset::media::Dimensions {
                    width: v.width,
                    height: v.height,
                }),
                None => ds.image_size(id).ok(),
            };
            out.push(TaskSample {
                sample_id: sid.clone(),
                media: ds.media_path(media).display().to_string(),
                width: dims.as_ref().map(|x| x.width),
                height: dims.as_ref().map(|x| x.height),
                video,
                labels: IndexMap::new(),
                frame_labels: IndexMap::new(),
            });
        }
        Ok(TaskSpec {
            name: name.to_string(),
            batch,
            samples: out,
        })
    }

    /// Create a batch's task on a backend whose labels go up with the media, each sample's
    /// labels made only when the backend writes the sample out; returns the task and what
    /// each sample's labels went up as, in the batch's order.
    fn create_filling(
        &mut self,
        dataset: &str,
        d: &Desired,
        project: &RemoteProject,
        (name, batch): (&str, u32),
        samples: &[String],
    ) -> Result<(backend::RemoteTask, Vec<SampleUploaded>), EngineError> {
        let spec = self.bare_task_spec(dataset, d, name, batch, samples)?;
        self.backend(&d.connection)?;
        let b = self.backends.get_mut(&d.connection).expect("opened above");
        let ds = dataset_in(&mut self.datasets, dataset)?;
        let mut made: HashMap<String, SampleUploaded> = HashMap::new();
        let mut failed = None;
        let task = b
            .create_task_filling(project, &spec, &mut |s| {
                fill_labels(ds, d, s).map_err(|e| {
                    let message = e.to_string();
                    failed = Some(e);
                    backend::BackendError::new(&d.backend, message)
                })?;
                made.insert(s.sample_id.clone(), SampleUploaded::of(s, &d.schema));
                Ok(())
            })
            .map_err(|e| failed.take().unwrap_or(EngineError::Backend(e)))?;
        // A sample the task held already (an interrupted create's) was not written out.
        let uploaded = spec
            .samples
            .into_iter()
            .map(|mut s| match made.remove(&s.sample_id) {
                Some(u) => Ok(u),
                None => {
                    fill_labels(ds, d, &mut s)?;
                    Ok(SampleUploaded::of(&s, &d.schema))
                }
            })
            .collect::<Result<_, EngineError>>()?;
        Ok((task, uploaded))
    }

    /// Write a planned merge into the dataset, then checkpoint it in the record.
    fn merge_and_save(
        &mut self,
        record: &mut RunRecord,
        mut outcome: RunMerge,
    ) -> Result<(), EngineError> {
        let dataset = record.dataset.clone();
        if !outcome.writes.is_empty() {
            self.datasets.update(&dataset, |ds| {
                outcome.changes(ds).map_err(EngineError::from)
            })?;
            crash_point("merge-saved");
        }
        super::returned::write(
            &self.config.root,
            &record.dataset,
            &record.key,
            &outcome.returned,
        )?;
        outcome.record(record);
        record.merge = Some(MergeCheckpoint {
            annotations_digest: outcome.digest,
            merged_at: self.now.clone(),
            rejected: outcome.rejected,
            cursor: outcome.cursor,
        });
        record.touch(&self.now);
        self.store.put(record)?;
        Ok(())
    }

    /// Adopt a run's existing backend project and tasks (named as annoform names them) as a
    /// new record; the dataset's current labels become the upload baseline.
    pub fn import(&mut self, loaded: &LoadedRun) -> Result<RunRecord, EngineError> {
        let run = &loaded.run;
        if self.store.get(&run.dataset, &run.key.0)?.is_some() {
            return Err(EngineError::AlreadyRecorded {
                run: run.key.0.clone(),
            });
        }
        let d = self.desired(loaded)?;
        let b = self.backend(&d.connection)?;
        let project =
            b.find_project(&d.project_name)?
                .ok_or_else(|| EngineError::NoProjectToImport {
                    backend: d.backend.clone(),
                    project: d.project_name.clone(),
                })?;
        b.attach(
            &project,
            backend::ProjectContext {
                schema: &d.schema,
                settings: &d.settings,
                tasks: &[],
                created: false,
            },
        )?;
        let prefix = batch_prefix(&project.name, &run.key.0);
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
            return Err(EngineError::NoTasksToImport {
                project: project.name.clone(),
                prefix,
            });
        }
        let mut record = self.new_record(&d, Some(&project));
        if let Some(owner) = &project.owner {
            // Taken over on purpose: the record continues the run the project was made for.
            record.lineage = owner.lineage.clone();
        }
        for (batch, task) in tasks {
            let mut samples: Vec<String> = Vec::new();
            self.backend(&d.connection)?.download(
                &project,
                std::slice::from_ref(&task.id),
                None,
                &mut |page| {
                    samples.extend(page.into_keys());
                    Ok(())
                },
            )?;
            self.record_adopted_task(&mut record, &d, task, batch, samples)?;
        }
        self.store.put(&mut record)?;
        Ok(record)
    }

    /// A new record of the run `d` in `project` (not saved yet).
    pub(super) fn new_record(&self, d: &Desired, project: Option<&RemoteProject>) -> RunRecord {
        let mut r = RunRecord::new(
            &d.loaded.run.dataset,
            &d.loaded.run.key.0,
            &d.backend,
            &self.now,
            crate::state::new_lineage(),
        );
        r.project = project.map(|p| BackendObject {
            id: p.id.clone(),
            name: p.name.clone(),
        });
        self.fill_record(&mut r, d);
        r
    }

    /// Record a task made before the record (adopted or imported) with its samples in frame
    /// order; the dataset's current labels are the baseline of its first merge.
    pub(super) fn record_adopted_task(
        &mut self,
        record: &mut RunRecord,
        d: &Desired,
        task: backend::RemoteTask,
        batch: u32,
        samples: Vec<String>,
    ) -> Result<(), EngineError> {
        let spec = self.task_spec(&record.dataset, d, &task.name, batch, &samples)?;
        record_uploaded(record, &spec, &d.schema);
        record.samples.extend(samples.iter().cloned());
        record.tasks.push(TaskRecord {
            id: task.id,
            name: task.name,
            batch,
            samples,
            status: None,
            notes: None,
        });
        Ok(())
    }
}

/// What a run's task names start with: `<project>/batch-` in the run's own project (whose
/// default name ends with the key), `<project>/<key>/batch-` in a project shared by name
/// with other runs, so no run adopts another's tasks.
/// A test hook: `ANNOFORM_TEST_CRASH_AT=<point>` ends the process at once, as a SIGKILL
/// would, where no request happens that a test could hold. Points: `merge-saved` (a merge's
/// dataset saved, its record not yet).
fn crash_point(point: &str) {
    if std::env::var("ANNOFORM_TEST_CRASH_AT").is_ok_and(|p| p == point) {
        std::process::abort();
    }
}

fn batch_prefix(project: &str, key: &str) -> String {
    if project.ends_with(&format!("/{key}")) || project == key {
        format!("{project}/batch-")
    } else {
        format!("{project}/{key}/batch-")
    }
}

/// A sample of a task spec that cannot be made.
fn sample_problem(sample: &str, problem: String) -> EngineError {
    EngineError::Sample {
        sample: sample.to_string(),
        problem,
    }
}

/// Fill a sample of a bare task spec with its labels in the view, in FiftyOne JSON.
fn fill_labels(ds: &Dataset, d: &Desired, s: &mut TaskSample) -> Result<(), EngineError> {
    let problem = |problem: String| sample_problem(&s.sample_id, problem);
    let id = ObjectId::parse(&s.sample_id).map_err(|e| problem(e.to_string()))?;
    let frame_labels = d
        .schema
        .fields
        .iter()
        .filter(|(field, _)| field.is_frame())
        .map(|(field, f)| {
            (
                field.to_string(),
                view_frame_labels(ds, &d.view, id, field, f.label_type),
            )
        })
        .collect();
    let labels = d
        .schema
        .fields
        .iter()
        .filter(|(field, _)| !field.is_frame())
        .map(|(field, f)| {
            // Masks kept in files (`mask_path`) go up as their pixels.
            let labels = view_labels(ds, &d.view, id, field, f.label_type)
                .iter()
                .map(|l| crate::dataset::mask_path::inline(l, ds.root()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| problem(format!("field `{field}`: {e}")))?;
            Ok((field.to_string(), labels))
        })
        .collect::<Result<_, EngineError>>()?;
    s.frame_labels = frame_labels;
    s.labels = labels;
    Ok(())
}

/// The labels of `field` on a sample that the view includes, in FiftyOne JSON (a frame
/// field's: those of every frame, in frame order).
pub(super) fn view_labels(
    ds: &Dataset,
    view: &View,
    id: ObjectId,
    field: &FieldPath,
    t: LabelType,
) -> Vec<Value> {
    if field.is_frame() {
        let frames = view_frame_labels(ds, view, id, field, t);
        return frames.into_iter().map(|l| l.label).collect();
    }
    let Some(sample) = ds.sample_by_id(id) else {
        return Vec::new();
    };
    // The field parsed for this call only: a cached whole-sample parse would keep the
    // dataset parsed (about ten times its JSON) for the rest of the command.
    let name = field.name();
    let all = merge::labels_of(sample.project(&[name]).get(name), t);
    match view.filtered.get(field.as_str()) {
        Some(per_sample) => {
            let keep = per_sample.get(&id).cloned().unwrap_or_default();
            all.into_iter()
                .filter(|l| merge::label_id(l).is_some_and(|i| keep.contains(&i)))
                .collect()
        }
        None => all,
    }
}

/// The labels of a frame field on a video sample that the view includes, frame by frame.
pub(super) fn view_frame_labels(
    ds: &Dataset,
    view: &View,
    id: ObjectId,
    field: &FieldPath,
    t: LabelType,
) -> Vec<backend::FrameLabel> {
    let kept = view
        .filtered
        .get(field.as_str())
        .map(|per_sample| per_sample.get(&id).cloned().unwrap_or_default());
    let mut out = Vec::new();
    for frame in ds.frames(id) {
        let Some(number) = frame.frame_number() else {
            continue;
        };
        let doc = frame.project(&[field.name()]);
        for label in merge::labels_of(doc.get(field.name()), t) {
            let included = kept
                .as_ref()
                .is_none_or(|k| merge::label_id(&label).is_some_and(|i| k.contains(&i)));
            if included {
                out.push(backend::FrameLabel {
                    frame: number,
                    label,
                });
            }
        }
    }
    out
}

/// Record what a task's upload holds as the baseline of its first merge: each sample
/// field's labels, and each frame field's labels frame by frame.
pub(super) fn record_uploaded(record: &mut RunRecord, spec: &TaskSpec, schema: &ResolvedSchema) {
    for s in &spec.samples {
        SampleUploaded::of(s, schema).record(record);
    }
}

/// A batch's labels once its task is there.
enum BatchLabels {
    /// Up with the media: what each sample's went up as.
    Uploaded(Vec<SampleUploaded>),
    /// Still to go up (the batch's spec, with its labels).
    Pending(TaskSpec),
}
use BatchLabels::{Pending, Uploaded};

/// What a sample's labels went up as (with their ids and digests): the baseline of its
/// first merge. Labels without an id cannot be matched again; they are not part of the run.
pub(super) struct SampleUploaded {
    sample: String,
    labels: Vec<(FieldPath, Vec<UploadedLabel>)>,
    frames: Vec<(FieldPath, FrameLabels)>,
}

impl SampleUploaded {
    fn of(s: &TaskSample, schema: &ResolvedSchema) -> SampleUploaded {
        let labels = s
            .labels
            .iter()
            .filter_map(|(field, labels)| {
                let (field, f) = schema.fields.get_key_value(field)?;
                let list = labels
                    .iter()
                    .filter_map(|l| {
                        Some(UploadedLabel {
                            id: merge::label_key(l, f.label_type)?,
                            digest: merge::label_digest(l, f),
                        })
                    })
                    .collect();
                Some((field.clone(), list))
            })
            .collect();
        let frames = s
            .frame_labels
            .iter()
            .filter_map(|(field, labels)| {
                let (field, f) = schema.fields.get_key_value(field.as_str())?;
                let mut frames = FrameLabels::new();
                for l in labels {
                    if let Some(id) = merge::label_key(&l.label, f.label_type) {
                        let digest = merge::label_digest(&l.label, f);
                        frames
                            .entry(l.frame)
                            .or_default()
                            .push(UploadedLabel { id, digest });
                    }
                }
                Some((field.clone(), frames))
            })
            .collect();
        SampleUploaded {
            sample: s.sample_id.clone(),
            labels,
            frames,
        }
    }

    fn record(self, record: &mut RunRecord) {
        for (field, list) in self.labels {
            record
                .uploaded
                .entry(field)
                .or_default()
                .insert(self.sample.clone(), list);
        }
        for (field, frames) in self.frames {
            record
                .uploaded_frames
                .entry(field)
                .or_default()
                .insert(self.sample.clone(), frames);
        }
    }
}
