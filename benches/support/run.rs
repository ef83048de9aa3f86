//! The run over the synthetic dataset: its record (every sample's `ground_truth` uploaded, in
//! tasks of `PAGE` samples) and a backend's download of a task (every label, the first of
//! each sample relabelled when asked).

use annoform::backend::{Annotations, DownloadedLabel};
use annoform::dataset::dir::Dataset;
use annoform::dataset::ejson::ObjectId;
use annoform::manifest::{LabelType, LoadSpec};
use annoform::merge::run::{RunMerge, RunMerger};
use annoform::merge::{label_digest, label_key, labels_of};
use annoform::schema::{ResolvedField, ResolvedSchema};
use annoform::state::{RunRecord, TaskRecord, UploadedLabel};
use indexmap::IndexMap;
use serde_json::json;
use std::time::{Duration, Instant};

use super::CLASSES;

/// Samples per task (and per downloaded page).
pub const PAGE: usize = 1000;

/// The field the run annotates, with the dataset's classes.
pub fn field() -> ResolvedField {
    ResolvedField::new(
        LabelType::Detections,
        CLASSES.iter().map(|c| c.to_string()).collect(),
    )
}

/// The run record of a run that uploaded every sample's `ground_truth`, in tasks of `PAGE`.
pub fn record(ds: &Dataset, field: &ResolvedField) -> RunRecord {
    let mut r = RunRecord::new("bench", "merge", "bench", "now", "lineage".into());
    r.schema = ResolvedSchema {
        fields: IndexMap::from([("ground_truth".into(), field.clone())]),
    };
    let mut uploaded = IndexMap::new();
    for (batch, chunk) in ds.samples().chunks(PAGE).enumerate() {
        let mut samples = Vec::with_capacity(chunk.len());
        for s in chunk {
            let doc = s.project(&["ground_truth"]);
            let labels = labels_of(doc.get("ground_truth"), LabelType::Detections)
                .iter()
                .map(|l| UploadedLabel {
                    id: label_key(l, LabelType::Detections).expect("generated labels have ids"),
                    digest: label_digest(l, field),
                })
                .collect();
            uploaded.insert(s.id().to_string(), labels);
            samples.push(s.id().to_string());
        }
        r.tasks.push(TaskRecord {
            id: batch.to_string(),
            name: format!("batch-{batch:04}"),
            batch: batch as u32,
            samples: samples.clone(),
            status: None,
            notes: None,
        });
        r.samples.extend(samples);
    }
    r.uploaded.insert("ground_truth".into(), uploaded);
    r
}

/// A backend's page: the task's samples with their labels, the first of each relabelled
/// when `edit`.
pub fn page(ds: &Dataset, task: &TaskRecord, edit: bool) -> Annotations {
    task.samples
        .iter()
        .map(|sid| {
            let s = ds
                .sample_by_id(ObjectId::parse(sid).expect("generated id"))
                .expect("generated sample");
            let doc = s.project(&["ground_truth"]);
            let labels = labels_of(doc.get("ground_truth"), LabelType::Detections)
                .into_iter()
                .enumerate()
                .map(|(i, mut l)| {
                    if edit && i == 0 {
                        let class = if l["label"] == "car" { "person" } else { "car" };
                        l["label"] = json!(class);
                    }
                    DownloadedLabel::new(format!("{sid}-{i}"), l)
                })
                .collect();
            (
                sid.clone(),
                IndexMap::from([("ground_truth".to_string(), labels)]).into(),
            )
        })
        .collect()
}

/// Merges every task's [`page`] of run `r`, as a refresh would: the outcome and the time spent
/// merging (the pages' making not counted).
pub fn merge_all(ds: &Dataset, r: &RunRecord, edit: bool) -> (RunMerge, Duration) {
    let tasks: Vec<String> = r.tasks.iter().map(|t| t.id.clone()).collect();
    let mut merger = RunMerger::new(ds, r, &LoadSpec::default(), &tasks, true);
    let mut merging = Duration::ZERO;
    for task in &r.tasks {
        let p = page(ds, task, edit);
        let t = Instant::now();
        merger.page(p).expect("merge page");
        merging += t.elapsed();
    }
    let t = Instant::now();
    let outcome = merger.finish(None).expect("finish");
    (outcome, merging + t.elapsed())
}
