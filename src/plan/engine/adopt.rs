//! Adoption: what an interrupted apply (or another run of this workspace) made is taken over
//! only when it is this run's own, and only once it is verified: a project must carry this
//! run's identity, a task must hold this batch's samples and every label uploaded to it.

use super::apply::record_uploaded;
use super::*;
use crate::backend::{Owner, RemoteTask};

impl Engine<'_> {
    /// The identity a project made for `record` carries.
    pub(super) fn owner_of(&mut self, record: &RunRecord) -> Owner {
        let dataset_id = self.dataset(&record.dataset).ok().and_then(|ds| {
            ds.metadata()
                .get("_id")
                .and_then(|v| v.get("$oid").or(Some(v)))
                .and_then(Value::as_str)
                .map(String::from)
        });
        Owner {
            dataset: record.dataset.clone(),
            dataset_id,
            key: record.key.clone(),
            lineage: record.lineage.clone(),
        }
    }

    /// Refuses a project found by name that another workspace's run made. Taken are: a
    /// project stamped with this record's identity (made by an interrupted apply), one made
    /// for another run of this workspace or used by one (`project_name` shared on purpose),
    /// and one made outside annoform (used as FiftyOne uses an existing `project_name`).
    pub(super) fn check_adoptable(
        &mut self,
        project: &RemoteProject,
        record: &RunRecord,
    ) -> Result<(), EngineError> {
        let Some(owner) = &project.owner else {
            return Ok(());
        };
        if owner.lineage == record.lineage {
            return Ok(());
        }
        for (dataset, key) in self.store.list()? {
            let Some(o) = self.store.get(&dataset, &key)? else {
                continue;
            };
            let made_for = o.lineage == owner.lineage;
            let uses = o.backend == record.backend
                && o.project.as_ref().is_some_and(|p| p.id == project.id);
            if made_for || uses {
                return Ok(());
            }
        }
        Err(EngineError::ForeignProject(Box::new(ForeignProject {
            backend: record.backend.clone(),
            project: project.name.clone(),
            id: project.id.clone(),
            owner: owner.clone(),
            key: record.key.clone(),
            dataset: record.dataset.clone(),
        })))
    }

    /// Give the record its project: the one an interrupted apply made for it, else a new one
    /// stamped with the run's identity.
    pub(super) fn ensure_project(
        &mut self,
        record: &mut RunRecord,
        d: &Desired,
    ) -> Result<(), EngineError> {
        let owner = self.owner_of(record);
        let project = match self.backend(&d.connection)?.find_project(&d.project_name)? {
            Some(p) => {
                self.check_adoptable(&p, record)?;
                record.project_maker = p
                    .owner
                    .as_ref()
                    .map(|o| o.lineage.clone())
                    .filter(|l| *l != record.lineage);
                p
            }
            None => {
                let p = self.backend(&d.connection)?.create_project(&ProjectSpec {
                    name: d.project_name.clone(),
                    schema: record.schema.clone(),
                    config: d.settings.clone(),
                    owner: Some(owner),
                })?;
                record.project_created = true;
                p
            }
        };
        record.project = Some(BackendObject {
            id: project.id,
            name: project.name,
        });
        record.touch(&self.now);
        self.store.put(record)?;
        self.attached(record, &d.connection)?;
        Ok(())
    }

    /// The label step of a batch's task: upload the labels it lacks, then record them as the
    /// baseline of its first merge. With `verify`, the task was found rather than made (or an
    /// apply stopped before this step): what the backend holds is read first, the task must
    /// hold this batch's samples and no other, and only what is missing goes up.
    pub(super) fn finish_labels(
        &mut self,
        record: &mut RunRecord,
        d: &Desired,
        project: &RemoteProject,
        batch: u32,
        spec: Option<TaskSpec>,
        verify: bool,
    ) -> Result<(), EngineError> {
        let Some(t) = record.tasks.iter().find(|t| t.batch == batch).cloned() else {
            record.labels_pending.retain(|b| *b != batch);
            return Ok(());
        };
        let spec = match spec {
            Some(s) => s,
            None => self.task_spec(&record.dataset, d, &t.name, batch, &t.samples)?,
        };
        let task = RemoteTask {
            id: t.id.clone(),
            name: t.name.clone(),
        };
        let todo = if verify {
            let task_at = || {
                Box::new(TaskAt {
                    run: record.key.clone(),
                    task: t.name.clone(),
                    id: t.id.clone(),
                    backend: d.backend.clone(),
                    project: project.name.clone(),
                })
            };
            let mut held = self.held_labels(d, project, &task)?;
            let absent = spec
                .samples
                .iter()
                .any(|s| !held.contains_key(&s.sample_id));
            if absent && d.kind == BackendKind::Labelstudio {
                // Part of the batch only (one made of several import requests): complete it.
                self.backend(&d.connection)?.create_task(project, &spec)?;
                held = self.held_labels(d, project, &task)?;
            }
            let lacking = spec
                .samples
                .iter()
                .filter(|s| !held.contains_key(&s.sample_id))
                .count();
            if lacking > 0 {
                return Err(EngineError::TaskLacksSamples {
                    at: task_at(),
                    lacking,
                    samples: spec.samples.len(),
                });
            }
            let foreign: Vec<&String> = held
                .keys()
                .filter(|s| !spec.samples.iter().any(|x| &x.sample_id == *s))
                .collect();
            if let Some(s) = foreign.first() {
                return Err(EngineError::TaskOfAnotherRun {
                    at: task_at(),
                    sample: s.to_string(),
                    count: foreign.len(),
                });
            }
            missing_labels(&spec, &held, &d.schema)
        } else {
            spec.clone()
        };
        if todo.samples.iter().any(|s| {
            s.labels.values().any(|l| !l.is_empty())
                || s.frame_labels.values().any(|l| !l.is_empty())
        }) {
            self.backend(&d.connection)?
                .upload_labels(project, &task, &todo)?;
        }
        let ids = self.backend(&d.connection)?.label_ids(&spec);
        record.id_map.extend(ids);
        let notes = self
            .backend(&d.connection)?
            .task_notes(project, &task, &spec)?;
        if let Some(t) = record.tasks.iter_mut().find(|t| t.batch == batch) {
            t.notes = notes;
        }
        record_uploaded(record, &spec, &d.schema);
        record.labels_pending.retain(|b| *b != batch);
        record.touch(&self.now);
        self.store.put(record)?;
        Ok(())
    }

    /// What a task holds: sample → field → the label keys it carries back (and how many
    /// labels there are, with or without our key).
    fn held_labels(
        &mut self,
        d: &Desired,
        project: &RemoteProject,
        task: &RemoteTask,
    ) -> Result<HashMap<String, HashMap<String, Held>>, EngineError> {
        let schema = d.schema.clone();
        let mut held: HashMap<String, HashMap<String, Held>> = HashMap::new();
        self.backend(&d.connection)?.download(
            project,
            std::slice::from_ref(&task.id),
            None,
            &mut |page| {
                for (sample, fields) in page {
                    let entry = held.entry(sample).or_default();
                    for (field, labels) in fields.fields {
                        let Some(f) = schema.fields.get(&field) else {
                            continue;
                        };
                        let h = entry.entry(field).or_default();
                        h.count += labels.len();
                        h.keys.extend(
                            labels
                                .iter()
                                .filter_map(|l| merge::label_key(&l.label, f.label_type)),
                        );
                    }
                }
                Ok(())
            },
        )?;
        Ok(held)
    }
}

/// The labels of one field of one sample as a task holds them.
#[derive(Default)]
struct Held {
    keys: HashSet<crate::state::LabelKey>,
    count: usize,
}

/// The part of `spec` a task lacks: per sample and field (a frame field's labels over all
/// its frames), the labels whose key the backend did not return — unless it holds as many
/// labels as were uploaded (some backends cannot carry every key back, and a label is never
/// uploaded twice).
fn missing_labels(
    spec: &TaskSpec,
    held: &HashMap<String, HashMap<String, Held>>,
    schema: &ResolvedSchema,
) -> TaskSpec {
    let mut out = spec.clone();
    for s in &mut out.samples {
        let fields = held.get(&s.sample_id);
        for (field, labels) in &mut s.labels {
            let held = fields.and_then(|x| x.get(field));
            keep_missing(labels, schema.fields.get(field), held, |l| l);
        }
        for (field, labels) in &mut s.frame_labels {
            let held = fields.and_then(|x| x.get(field));
            keep_missing(labels, schema.fields.get(field.as_str()), held, |l| {
                &l.label
            });
        }
    }
    out
}

/// Keeps of one field's uploaded `labels` those the task lacks (see [`missing_labels`]).
fn keep_missing<T>(
    labels: &mut Vec<T>,
    field: Option<&crate::schema::ResolvedField>,
    held: Option<&Held>,
    label: impl Fn(&T) -> &Value,
) {
    let Some(f) = field else {
        labels.clear();
        return;
    };
    let Some(h) = held else { return };
    if h.count >= labels.len() {
        labels.clear();
        return;
    }
    labels
        .retain(|l| merge::label_key(label(l), f.label_type).is_none_or(|k| !h.keys.contains(&k)));
}
