//! Downloads through a Darwin JSON 2.0 export of the dataset: start it, poll until it has a
//! download URL (within `export_timeout`), then read the zip as it arrives, one item's JSON
//! at a time, handing the engine pages of samples.

use super::client::Item;
use super::*;
use serde_json::Value;
use std::io::Read;
use std::time::Instant;

/// Samples per page handed to the engine.
const PAGE_SAMPLES: usize = 100;
/// The longest pause between two looks at an export.
const MAX_POLL: Duration = Duration::from_secs(5);

/// The body of a download, read on the calling thread while the runtime receives it.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, String>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Ok(chunk)) => {
                    self.buf = chunk;
                    self.pos = 0;
                }
                Some(Err(e)) => return Err(std::io::Error::other(e)),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl DarwinBackend {
    /// Starts an export and waits for its download URL.
    fn exported(&mut self, project: &RemoteProject) -> Result<String, BackendError> {
        let team = self.team()?;
        let slug = project.name.clone();
        let name = format!("annoform-{}", crate::dataset::ejson::ObjectId::new());
        self.run(self.api.start_export(&team, &slug, &name))?;
        let timeout = self.context.settings.export_wait();
        let start = Instant::now();
        let mut pause = Duration::from_millis(100);
        loop {
            let exports = self.run(self.api.exports(&team, &slug))?;
            if let Some(e) = exports.iter().find(|e| e.name == name) {
                if let Some(url) = &e.download_url {
                    return Ok(url.clone());
                }
                if matches!(e.status.as_deref(), Some("failed" | "error")) {
                    return Err(self.error(format!("export `{name}` of dataset `{slug}` failed")));
                }
            }
            if start.elapsed() >= timeout {
                return Err(self
                    .error(format!(
                        "export `{name}` of dataset `{slug}` did not complete within {timeout:?} \
                         (export_timeout); V7 may be busy: plan again later, or raise export_timeout"
                    ))
                    .because(Cause::Transient));
            }
            std::thread::sleep(pause.min(timeout.saturating_sub(start.elapsed())));
            pause = (pause * 2).min(MAX_POLL);
        }
    }

    /// The annotations of `tasks`, read from a fresh export.
    pub(super) fn download_export(
        &mut self,
        project: &RemoteProject,
        tasks: &[String],
        sink: &mut PageSink<'_>,
    ) -> Result<Downloaded, BackendError> {
        let (field, t) = {
            let (f, r) = self.field()?;
            (f.to_string(), r.label_type)
        };
        // What the tasks hold, by item id: the export must hand every one of them.
        let items: HashMap<String, String> = self
            .dataset_items(project)?
            .into_iter()
            .filter(|i: &Item| !i.failed() && i.status != "archived")
            .filter_map(|i| {
                let (task, sample) = task_and_sample(&i.path)?;
                tasks
                    .iter()
                    .any(|t| t == task)
                    .then(|| (i.id.clone(), sample.to_string()))
            })
            .collect();
        let held: std::collections::HashSet<String> = items.values().cloned().collect();
        let url = self.exported(project)?;
        let response = self.run(self.plain.send(reqwest::Method::GET, &url, true, |r| r))?;
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        self.rt.spawn(async move {
            let mut response = response;
            loop {
                let next = match response.chunk().await {
                    Ok(Some(c)) => Ok(c.to_vec()),
                    Ok(None) => break,
                    Err(e) => Err(format!("the export download broke off: {e}")),
                };
                let stop = next.is_err();
                if tx.send(next).await.is_err() || stop {
                    break;
                }
            }
        });
        let reader = std::io::BufReader::new(ChannelReader {
            rx,
            buf: Vec::new(),
            pos: 0,
        });
        let mut page: Annotations = IndexMap::new();
        let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut failure: Option<BackendError> = None;
        let read = zip::for_each_entry(reader, |name, data| {
            // Items sit under their folders in an export; `.v7/` holds export metadata.
            if !name.ends_with(".json") || name.starts_with(".v7/") {
                return Ok(());
            }
            let doc: Value = serde_json::from_slice(&data)
                .map_err(|e| format!("`{name}` of the export is not JSON: {e}"))?;
            let item_id = doc["item"]["source_info"]["item_id"]
                .as_str()
                .unwrap_or_default();
            let Some(sample) = items.get(item_id) else {
                return Ok(()); // another run's item, or one made outside annoform
            };
            let slot = doc["item"]["slots"]
                .as_array()
                .and_then(|s| s.iter().find(|s| s["slot_name"] == "0").or(s.first()));
            let size = slot.and_then(|s| {
                Some(ImageSize {
                    width: s["width"].as_u64()? as u32,
                    height: s["height"].as_u64()? as u32,
                })
            });
            let annotations: Vec<Value> = doc["annotations"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|a| {
                    a["slot_names"]
                        .as_array()
                        .is_none_or(|s| s.is_empty() || s.iter().any(|n| n == "0"))
                })
                .cloned()
                .collect();
            let labels = convert::from_darwin(t, &annotations, size);
            seen.insert(sample.clone());
            page.entry(sample.clone())
                .or_default()
                .insert(field.clone(), labels);
            if page.len() >= PAGE_SAMPLES {
                if let Err(e) = sink(std::mem::take(&mut page)) {
                    failure = Some(e);
                    return Err("stopped".into());
                }
            }
            Ok(())
        });
        if let Some(e) = failure {
            return Err(e);
        }
        read.map_err(|e| self.error(format!("export of dataset `{}`: {e}", project.name)))?;
        if !page.is_empty() {
            sink(page)?;
        }
        let missing: Vec<&String> = held.iter().filter(|s| !seen.contains(*s)).collect();
        if !missing.is_empty() {
            return Err(self
                .error(format!(
                    "the export of dataset `{}` lacks {} item(s) of the run (sample {} ...): they may still be processing; plan again later",
                    project.name,
                    missing.len(),
                    missing[0]
                ))
                .because(Cause::Transient));
        }
        Ok(Downloaded {
            cursor: None,
            held: Some(held),
            strays: Vec::new(),
        })
    }
}
