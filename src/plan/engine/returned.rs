//! `load.unexpected: return`: FiftyOne's `load_annotations()` returns the unexpected labels
//! to its caller; a CLI has no caller to return them to, so apply writes them to a file of
//! the workspace, `.annoform/unexpected/<dataset>/<key>.json`, in the shape FiftyOne returns
//! (field → label type → sample id → label id → label). Each merge adds its labels to the
//! file; a label the backend still holds is written once.

use super::EngineError;
use crate::merge::unexpected::Returned;
use serde_json::{Map, Value};
use std::path::Path;

/// The file of a run's returned labels, relative to the workspace root.
pub fn returned_path(dataset: &str, key: &str) -> String {
    format!(".annoform/unexpected/{dataset}/{key}.json")
}

/// Add `labels` to the run's file under `root`.
pub(super) fn write(
    root: &Path,
    dataset: &str,
    key: &str,
    labels: &[Returned],
) -> Result<(), EngineError> {
    if labels.is_empty() {
        return Ok(());
    }
    let path = root.join(returned_path(dataset, key));
    let failed = |e: std::io::Error| EngineError::ReturnedUnwritable {
        run: key.to_string(),
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let mut all: Map<String, Value> = match std::fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|e| EngineError::ReturnedUnreadable {
                run: key.to_string(),
                path: path.display().to_string(),
                message: e.to_string(),
            })?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
        Err(e) => return Err(failed(e)),
    };
    for l in labels {
        let id = l
            .label
            .get("_id")
            .and_then(crate::dataset::ejson::oid_str)
            .unwrap_or(&l.backend_id)
            .to_string();
        let slot = [&l.field, &l.label_type, &l.sample_id]
            .into_iter()
            .fold(&mut all, |m, k| {
                m.entry(k.as_str())
                    .or_insert_with(|| Value::Object(Map::new()))
                    .as_object_mut()
                    .expect("annoform writes objects at these levels")
            });
        slot.insert(id, l.label.clone());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(failed)?;
    }
    let text = serde_json::to_vec_pretty(&Value::Object(all)).expect("JSON values serialise");
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).map_err(failed)?;
    std::fs::rename(&tmp, &path).map_err(failed)
}
