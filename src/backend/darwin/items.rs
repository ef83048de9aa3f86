//! Items: registering a task's samples (uploaded, or from an external storage), waiting until
//! Darwin has processed them, and importing their existing labels.

use super::client::{Item, Registered};
use super::convert::{self, Outgoing};
use super::*;
use crate::backend::convert::geometry;
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use std::time::Instant;

/// Items per `register_upload` call (darwin-py's `DARWIN_UPLOAD_CHUNK_SIZE`).
const UPLOAD_CHUNK: usize = 500;
/// Items per `register_existing` call (V7 documents at most 100).
const EXISTING_CHUNK: usize = 100;
/// File uploads and imports in flight at once (within `--parallelism`).
const IN_FLIGHT: usize = 4;
/// The longest pause between two looks at items still processing.
const MAX_POLL: Duration = Duration::from_secs(5);

/// The storage key of a media path in an external storage: an object URL without its
/// `scheme://bucket/`, else the path without its leading `/` (as darwin-fiftyone derives it).
pub fn storage_key(media: &str) -> String {
    match media.split_once("://") {
        Some((_, rest)) => rest.split_once('/').map_or("", |(_, k)| k).to_string(),
        None => media.trim_start_matches('/').to_string(),
    }
}

fn file_name(media: &str) -> String {
    media
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(media)
        .to_string()
}

/// The upload id of an item's slot `0`, as a registration lists it.
fn upload_id(item: &Value) -> Option<&str> {
    item["slots"]
        .as_array()?
        .iter()
        .find_map(|s| s["upload_id"].as_str())
}

/// The reason a registration refused an item.
fn reason(item: &Value) -> &str {
    item["slots"]
        .as_array()
        .and_then(|s| s.iter().find_map(|s| s["reason"].as_str()))
        .or_else(|| item["reason"].as_str())
        .unwrap_or("UNEXPECTED_ERROR")
}

impl DarwinBackend {
    /// Every item of the project's dataset.
    pub(super) fn dataset_items(
        &mut self,
        project: &RemoteProject,
    ) -> Result<Vec<Item>, BackendError> {
        let team = self.team()?;
        let dataset = self.dataset_id(project)?;
        self.run(self.api.items(&team, dataset, &[]))
    }

    /// The items of a task, by sample id.
    fn task_items(
        &mut self,
        project: &RemoteProject,
        task: &str,
    ) -> Result<IndexMap<String, Item>, BackendError> {
        Ok(self
            .dataset_items(project)?
            .into_iter()
            .filter_map(|i| {
                let (t, s) = task_and_sample(&i.path)?;
                (t == task).then(|| (s.to_string(), i.clone()))
            })
            .collect())
    }

    /// Registers a task's samples as items and uploads their files. Items an interrupted
    /// call registered are refused `ALREADY_EXISTS` with their ids: those whose upload did
    /// not finish are uploaded again, the others left as they are.
    pub(super) fn add_items(
        &mut self,
        project: &RemoteProject,
        task: &TaskSpec,
    ) -> Result<(), BackendError> {
        let team = self.team()?;
        let slug = project.name.clone();
        let storage = self.context.settings.external_storage.clone();
        let item = |s: &TaskSample| {
            let name = file_name(&s.media);
            let path = format!("/{}/{}", task.name.trim_matches('/'), s.sample_id);
            let mut slot = json!({"slot_name": "0", "file_name": name});
            if storage.is_some() {
                slot["storage_key"] = json!(storage_key(&s.media));
                slot["as_frames"] = json!("false");
            }
            json!({"name": name, "path": path, "slots": [slot]})
        };
        let mut registered = Registered::default();
        let chunk = if storage.is_some() {
            EXISTING_CHUNK
        } else {
            UPLOAD_CHUNK
        };
        for samples in task.samples.chunks(chunk) {
            let items: Vec<Value> = samples.iter().map(item).collect();
            let got = match &storage {
                Some(st) => self.run(self.api.register_existing(&team, &slug, st, items))?,
                None => self.run(self.api.register_upload(&team, &slug, items))?,
            };
            registered.items.extend(got.items);
            registered.blocked_items.extend(got.blocked_items);
        }
        let refused: Vec<String> = registered
            .blocked_items
            .iter()
            .filter(|b| reason(b) != "ALREADY_EXISTS")
            .map(|b| {
                format!(
                    "{}{} ({})",
                    b["path"].as_str().unwrap_or(""),
                    b["name"].as_str().unwrap_or(""),
                    reason(b)
                )
            })
            .collect();
        if !refused.is_empty() {
            return Err(self.error(format!(
                "dataset `{slug}` refused {} item(s) of task `{}`: {}",
                refused.len(),
                task.name,
                refused.join(", ")
            )));
        }
        if storage.is_some() {
            return Ok(());
        }
        // Items refused as already there need their file only if its upload never finished.
        let unfinished: Vec<String> = if registered.blocked_items.is_empty() {
            Vec::new()
        } else {
            self.task_items(project, &task.name)?
                .values()
                .filter(|i| i.status == "uploading")
                .map(|i| i.id.clone())
                .collect()
        };
        let media: HashMap<String, &str> = task
            .samples
            .iter()
            .map(|s| {
                (
                    format!("/{}/{}", task.name.trim_matches('/'), s.sample_id),
                    s.media.as_str(),
                )
            })
            .collect();
        let mut uploads = Vec::new();
        for (i, blocked) in registered
            .items
            .iter()
            .map(|i| (i, false))
            .chain(registered.blocked_items.iter().map(|i| (i, true)))
        {
            if blocked
                && !i["id"]
                    .as_str()
                    .is_some_and(|id| unfinished.iter().any(|u| u == id))
            {
                continue;
            }
            let path = i["path"]
                .as_str()
                .unwrap_or("")
                .trim_end_matches('/')
                .to_string();
            let (Some(upload), Some(file)) = (upload_id(i), media.get(&path)) else {
                return Err(self.error(format!(
                    "dataset `{slug}` registered item `{path}` without an upload id, or at a path annoform did not ask for"
                )));
            };
            uploads.push((upload.to_string(), file.to_string()));
        }
        self.run(async {
            let results: Vec<Result<(), HttpError>> = futures_util::stream::iter(uploads.iter())
                .map(|(upload, file)| self.upload_file(&team, upload, file))
                .buffer_unordered(IN_FLIGHT)
                .collect()
                .await;
            results
                .into_iter()
                .collect::<Result<Vec<()>, _>>()
                .map(drop)
        })
    }

    /// sign → PUT the bytes (no Darwin credentials) → confirm.
    async fn upload_file(&self, team: &str, upload: &str, file: &str) -> Result<(), HttpError> {
        let url = self.api.sign(team, upload).await?;
        let bytes = tokio::fs::read(file).await.map_err(|e| {
            self.plain.incomplete(
                &reqwest::Method::PUT,
                &url,
                &format!("cannot read {file}: {e}"),
            )
        })?;
        self.plain
            .send(reqwest::Method::PUT, &url, true, |r| r.body(bytes.clone()))
            .await?;
        self.api.confirm(team, upload).await
    }

    /// The task's items once Darwin has processed them all, by sample id.
    fn processed(
        &mut self,
        project: &RemoteProject,
        task: &str,
    ) -> Result<IndexMap<String, Item>, BackendError> {
        let timeout = self.context.settings.processing_wait();
        let start = Instant::now();
        let mut pause = Duration::from_millis(100);
        loop {
            let items = self.task_items(project, task)?;
            let failed: Vec<&str> = items
                .values()
                .filter(|i| i.failed())
                .map(|i| i.path.as_str())
                .collect();
            if !failed.is_empty() {
                return Err(self.error(format!(
                    "Darwin could not process {} item(s) of task `{task}`: {}",
                    failed.len(),
                    failed.join(", ")
                )));
            }
            let waiting = items.values().filter(|i| i.in_progress()).count();
            if waiting == 0 {
                return Ok(items);
            }
            if start.elapsed() >= timeout {
                return Err(self
                    .error(format!(
                        "{waiting} item(s) of task `{task}` were still processing after {:?} (processing_timeout)",
                        timeout
                    ))
                    .because(Cause::Transient));
            }
            std::thread::sleep(pause.min(timeout.saturating_sub(start.elapsed())));
            pause = (pause * 2).min(MAX_POLL);
        }
    }

    /// Imports a task's existing labels, item by item, once its items are processed.
    pub(super) fn import_labels(
        &mut self,
        project: &RemoteProject,
        task: &RemoteTask,
        spec: &TaskSpec,
    ) -> Result<(), BackendError> {
        let items = self.processed(project, &task.name)?;
        let (field, t) = {
            let (f, r) = self.field()?;
            (f.to_string(), r.label_type)
        };
        let mut per_item: Vec<(String, Vec<Outgoing>)> = Vec::new();
        for s in &spec.samples {
            let labels = s.labels.get(&field).map_or(&[][..], Vec::as_slice);
            if labels.is_empty() {
                continue;
            }
            let item = items.get(&s.sample_id).ok_or_else(|| {
                self.error(format!(
                    "task `{}` has no item for sample {}",
                    task.name, s.sample_id
                ))
            })?;
            let size = ImageSize::of_sample(s)
                .map_err(|e| self.error(format!("sample {}: {e}", s.sample_id)))?;
            let mut out = Vec::new();
            for l in labels {
                let converted = convert::to_darwin(t, l, size).map_err(|why| {
                    let id = geometry::label_id(l).unwrap_or_default();
                    self.error(format!(
                        "sample {} field `{field}` label {id}: {why}",
                        s.sample_id
                    ))
                })?;
                out.extend(converted);
            }
            per_item.push((item.id.clone(), out));
        }
        let extra: Vec<(String, convert::Kind)> = per_item
            .iter()
            .flat_map(|(_, o)| o.iter().map(|a| (a.class.clone(), a.kind)))
            .collect();
        let class_ids = self.ensure_classes(project, &extra)?;
        let team = self.team()?;
        let bodies: Vec<(String, Vec<Value>)> = per_item
            .into_iter()
            .map(|(item, out)| {
                let anns = out
                    .into_iter()
                    .map(|a| {
                        json!({"annotation_class_id": class_ids.get(&(a.class.clone(), a.kind)),
                               "id": a.id, "context_keys": {"slot_names": ["0"]}, "data": a.data})
                    })
                    .collect();
                (item, anns)
            })
            .collect();
        self.run(async {
            let results: Vec<Result<(), HttpError>> = futures_util::stream::iter(bodies.iter())
                .map(|(item, anns)| self.import_split(&team, item, anns))
                .buffer_unordered(IN_FLIGHT)
                .collect()
                .await;
            results
                .into_iter()
                .collect::<Result<Vec<()>, _>>()
                .map(drop)
        })
    }

    /// Imports annotations into an item, halving the batch while the server answers 413
    /// (a 413 imports nothing of the request), so every import stays below its limit.
    async fn import_split(&self, team: &str, item: &str, anns: &[Value]) -> Result<(), HttpError> {
        let mut pending = vec![anns];
        while let Some(part) = pending.pop() {
            match self.api.import(team, item, part).await {
                Err(e)
                    if e.status() == Some(reqwest::StatusCode::PAYLOAD_TOO_LARGE)
                        && part.len() > 1 =>
                {
                    let (a, b) = part.split_at(part.len() / 2);
                    pending.push(b);
                    pending.push(a);
                }
                other => other?,
            }
        }
        Ok(())
    }
}
