//! Runs in the dataset's own `annotation_runs`, as FiftyOne writes them, so FiftyOne's
//! `list_annotation_runs()` and `get_annotation_info(key)` show annoform's runs and
//! `load_annotation_view(key)` selects their samples: embedded in a directory dataset's
//! `metadata.json` (as FiftyOne exports them), or in a live database's `runs` collection,
//! referenced from the dataset document (as FiftyOne saves them). FiftyOne's results (its
//! `annotations/<key>.json`, its GridFS file) are not written: annoform, not FiftyOne, merges
//! these runs.
//! Entries are marked in `results_meta`, so runs FiftyOne made itself are never touched.

use super::*;
use crate::dataset::labels::Object;
use serde_json::json;

/// The mark on the entries annoform writes.
const MARK: &str = "annoform";

/// FiftyOne's config class for a backend kind.
fn config_class(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Cvat => "fiftyone.utils.cvat.CVATBackendConfig",
        BackendKind::Labelstudio => "fiftyone.utils.labelstudio.LabelStudioBackendConfig",
        _ => "fiftyone.utils.annotations.AnnotationBackendConfig",
    }
}

/// The backend settings FiftyOne's config class of `kind` takes (besides the label schema).
fn config_settings(kind: BackendKind) -> &'static [&'static str] {
    match kind {
        BackendKind::Cvat => &[
            "url",
            "task_size",
            "segment_size",
            "image_quality",
            "use_cache",
            "use_zip_chunks",
            "chunk_size",
            "task_assignee",
            "job_assignees",
            "project_name",
            "project_id",
            "task_name",
            "occluded_attr",
            "group_id_attr",
            "issue_tracker",
            "organization",
            "frame_start",
            "frame_stop",
            "frame_step",
        ],
        BackendKind::Labelstudio => &["url", "project_name"],
        _ => &[],
    }
}

/// A label schema as FiftyOne records it in a run's config.
fn label_schema(schema: &ResolvedSchema) -> Value {
    let fields: serde_json::Map<String, Value> = schema
        .fields
        .iter()
        .map(|(name, f)| {
            let attributes: serde_json::Map<String, Value> = f
                .attributes
                .iter()
                .map(|(a, spec)| {
                    let mut v = json!({"type": spec.attr_type.as_str()});
                    if !spec.values.is_empty() {
                        v["values"] = json!(spec.values);
                    }
                    if let Some(d) = &spec.default {
                        v["default"] = json!(d);
                    }
                    if spec.read_only {
                        v["read_only"] = json!(true);
                    }
                    (a.clone(), v)
                })
                .collect();
            let r = f.restrictions;
            let mut v = json!({
                "type": f.label_type.as_str(),
                "classes": f.classes,
                "attributes": attributes,
                "existing_field": f.existing,
                "allow_additions": r.allow_additions,
                "allow_deletions": r.allow_deletions,
                "allow_label_edits": r.allow_label_edits,
                "allow_spatial_edits": r.allow_spatial_edits,
            });
            if let Some(m) = &f.mask_targets {
                v["mask_targets"] = json!(m);
            }
            (name.to_string(), v)
        })
        .collect();
    Value::Object(fields)
}

/// The `annotation_runs` entry of a record, as FiftyOne 1.22 writes one.
pub(super) fn annotation_run(record: &RunRecord, kind: BackendKind, dataset: &Object) -> Value {
    let method = kind.as_str();
    let mut config = json!({
        "cls": config_class(kind),
        "type": "annotation",
        "method": method,
        "name": method,
        "label_schema": label_schema(&record.schema),
        "media_field": "filepath",
    });
    for k in config_settings(kind) {
        if let Some(v) = record.backend_config.get(*k) {
            config[*k] = v.clone();
        }
    }
    let select = json!({
        "_cls": "fiftyone.core.stages.Select",
        "kwargs": [["sample_ids", record.samples], ["ordered", false]],
    });
    let id = |salt: &str| {
        let d = merge::digest(&json!([salt, record.dataset, record.key, record.lineage]));
        json!({"$oid": d.chars().filter(char::is_ascii_hexdigit).take(24).collect::<String>()})
    };
    json!({
        "_id": id("run"),
        "_dataset_id": dataset.get("_id").cloned().unwrap_or(Value::Null),
        "key": record.key,
        "version": dataset.get("version").cloned().unwrap_or(json!("1.22.1")),
        "timestamp": {"$date": record.created_at},
        "config": config,
        "view_stages": [select.to_string()],
        "results": null,
        "results_meta": {MARK: {"backend": record.backend, "updated_at": record.updated_at}},
    })
}

/// Whether an `annotation_runs` entry is one annoform wrote.
fn ours(entry: &Value) -> bool {
    entry["results_meta"].get(MARK).is_some()
}

impl Engine<'_> {
    /// Make the dataset's `annotation_runs` entry for (dataset, key) match the run's record:
    /// written while the record exists, removed with it. Entries FiftyOne made stay as they are.
    pub fn sync_annotation_run(&mut self, dataset: &str, key: &str) -> Result<(), EngineError> {
        let record = self.store.get(dataset, key)?;
        let kind = record.as_ref().map(|r| {
            self.config
                .backend(&r.backend)
                .map_or(BackendKind::Custom, |b| b.kind)
        });
        let Some(Ok(ds)) = self.datasets.get(dataset) else {
            return Ok(());
        };
        let wanted = record
            .as_ref()
            .zip(kind)
            .map(|(r, k)| annotation_run(r, k, ds.metadata()));
        self.datasets
            .sync_annotation_run(dataset, key, wanted.as_ref(), &ours)?;
        Ok(())
    }
}
