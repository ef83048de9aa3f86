//! `annoform import KEY --task-id N... | --project-id N`: adopt CVAT tasks made outside
//! annoform as a run (FiftyOne's `import_annotations`), mapping their frames to samples by
//! file name, or by an explicit data map where names differ.

use super::open::open_cvat;
use super::*;

/// What to import.
#[derive(Debug, Clone, Default)]
pub struct CvatImport {
    /// The backend to import from (default: the manifest's).
    pub backend: Option<String>,
    pub task_ids: Vec<u64>,
    pub project_id: Option<u64>,
    /// Frame file name → sample id or sample filepath, where file names differ.
    pub data_map: Option<HashMap<String, String>>,
}

/// The file name of a path.
fn file_name(p: &str) -> &str {
    p.rsplit(['/', '\\']).next().unwrap_or(p)
}

impl Engine<'_> {
    /// Record CVAT tasks made outside annoform as the run `loaded`; their annotations merge
    /// on the next plan (the dataset's current labels are the baseline).
    pub fn import_cvat(
        &mut self,
        loaded: &LoadedRun,
        what: &CvatImport,
    ) -> Result<RunRecord, EngineError> {
        let run = &loaded.run;
        if self.store.get(&run.dataset, &run.key.0)?.is_some() {
            return Err(EngineError::AlreadyRecorded {
                run: run.key.0.clone(),
            });
        }
        let d = self.desired(loaded)?;
        if let Some(b) = &what.backend
            && *b != d.backend
        {
            return Err(EngineError::Import(ImportRefusal::OtherBackend {
                run: run.key.0.clone(),
                manifest: d.backend.clone(),
                given: b.clone(),
            }));
        }
        if d.kind != BackendKind::Cvat {
            return Err(EngineError::Import(ImportRefusal::NotCvat {
                backend: d.backend.clone(),
                kind: d.kind.to_string(),
            }));
        }
        if what.task_ids.is_empty() && what.project_id.is_none() {
            return Err(EngineError::Import(ImportRefusal::NothingGiven));
        }
        let mut cvat = open_cvat(self.config, self.env, &d.connection)?;
        let tasks = cvat.foreign_tasks(&what.task_ids, what.project_id)?;
        if tasks.is_empty() {
            return Err(EngineError::Import(ImportRefusal::NoTasks));
        }
        let project = match (what.project_id, tasks[0].project) {
            (Some(p), _) | (None, Some(p)) => p,
            (None, None) => {
                return Err(EngineError::Import(ImportRefusal::TaskInNoProject {
                    task: tasks[0].id.to_string(),
                }));
            }
        };
        if let Some(t) = tasks.iter().find(|t| t.project != Some(project)) {
            return Err(EngineError::Import(ImportRefusal::TasksOfManyProjects {
                task: t.id.to_string(),
                project: project.to_string(),
            }));
        }

        // Frame file name → sample id: the data map, else the samples' file names.
        let ds = self.dataset(&run.dataset)?;
        let media_field = run.media_field.clone().unwrap_or_else(|| "filepath".into());
        let mut by_name: HashMap<String, Vec<String>> = HashMap::new();
        let mut by_path: HashMap<String, String> = HashMap::new();
        for id in &d.view.sample_ids {
            let Some(sample) = ds.sample_by_id(*id) else {
                continue;
            };
            let Some(path) = sample.get(&media_field).and_then(Value::as_str) else {
                continue;
            };
            let sid = id.to_string();
            by_name
                .entry(file_name(path).to_string())
                .or_default()
                .push(sid.clone());
            by_path.insert(path.to_string(), sid.clone());
            by_path.insert(ds.media_path(path).display().to_string(), sid);
        }
        let sample_of = |frame: &str| -> Result<String, String> {
            if let Some(m) = &what.data_map {
                let target = m
                    .get(frame)
                    .or_else(|| m.get(file_name(frame)))
                    .ok_or_else(|| format!("frame `{frame}` is not in the data map"))?;
                if ObjectId::parse(target).is_ok() {
                    return Ok(target.clone());
                }
                return by_path.get(target).cloned().ok_or_else(|| {
                    format!("`{target}` (frame `{frame}`) is no sample of the view")
                });
            }
            match by_name.get(file_name(frame)).map(Vec::as_slice) {
                Some([one]) => Ok(one.clone()),
                Some(_) => Err(format!(
                    "frame `{frame}`: several samples have this file name (use --data-map)"
                )),
                None => Err(format!(
                    "frame `{frame}`: no sample of the view has this file name (use --data-map)"
                )),
            }
        };
        let mut frames: IndexMap<String, Vec<String>> = IndexMap::new();
        let mut problems = Vec::new();
        for t in &tasks {
            let mut sids = Vec::new();
            for f in &t.frames {
                match sample_of(f) {
                    Ok(s) => sids.push(s),
                    Err(e) => problems.push(format!("task {}: {e}", t.id)),
                }
            }
            frames.insert(t.id.to_string(), sids);
        }
        if !problems.is_empty() {
            let more = problems.len().saturating_sub(5);
            problems.truncate(5);
            return Err(EngineError::Import(ImportRefusal::UnmappedFrames {
                problems,
                more,
            }));
        }

        let remote = cvat.adopt_project(project, &d.schema, &d.settings, frames.clone())?;
        let mut record = self.new_record(&d, Some(&remote));
        for (batch, t) in tasks.iter().enumerate() {
            let samples = frames.get(&t.id.to_string()).cloned().unwrap_or_default();
            let task = backend::RemoteTask {
                id: t.id.to_string(),
                name: t.name.clone(),
            };
            self.record_adopted_task(&mut record, &d, task, batch as u32, samples)?;
        }
        self.store.put(&mut record)?;
        Ok(record)
    }
}
