//! Merge figures: a run of 100k samples × 10 detections (1M labels) merged page by page as a
//! backend would download it, through the same `RunMerger` plan and apply use.
//!
//! Two downloads are merged: one where annotators changed nothing, and one with 10 % of the
//! labels relabelled (one per sample). For each it prints the merge time (the merge alone, not
//! producing the download), the memory the merge added on top of the loaded dataset (peak RSS
//! reset before each merge), and the time to write the changes into the dataset. Memory must
//! follow the changes, never the number of unchanged labels the backend holds.
//!
//! Run: `cargo bench --bench merge` (`ANNOFORM_BENCH_SAMPLES` overrides the sample count).

use annoform::backend::{Annotations, DownloadedLabel};
use annoform::dataset::dir::Dataset;
use annoform::dataset::ejson::ObjectId;
use annoform::manifest::{LabelType, LoadSpec};
use annoform::merge::run::RunMerger;
use annoform::merge::{label_digest, label_key, labels_of};
use annoform::schema::{ResolvedField, ResolvedSchema};
use annoform::state::{RunRecord, TaskRecord, UploadedLabel};
use indexmap::IndexMap;
use serde_json::json;
use std::time::{Duration, Instant};

mod support;
use support::{CLASSES, LABELS_PER_SAMPLE};

// The allocator of the annoform binary, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PAGE: usize = 1000;

/// The run record of a run that uploaded every sample's `ground_truth`, in tasks of `PAGE`.
fn record(ds: &Dataset, field: &ResolvedField) -> RunRecord {
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
fn page(ds: &Dataset, task: &TaskRecord, edit: bool) -> Annotations {
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

fn main() {
    let n = support::sample_count();
    let dir = tempfile::tempdir().expect("temp dir");
    support::generate(dir.path(), n).expect("generate dataset");
    let mut ds = Dataset::load(dir.path()).expect("load dataset");
    let field = ResolvedField::new(
        LabelType::Detections,
        CLASSES.iter().map(|c| c.to_string()).collect(),
    );
    let r = record(&ds, &field);
    let tasks: Vec<String> = r.tasks.iter().map(|t| t.id.clone()).collect();
    println!(
        "merge: {} labels over {n} samples, pages of {PAGE} samples",
        n * LABELS_PER_SAMPLE
    );
    println!(
        "  loaded dataset + run record: RSS {:.0} MiB",
        support::rss_mib()
    );
    for (name, edit) in [("no edits", false), ("10 % edited", true)] {
        let before = support::rss_mib();
        support::reset_peak_rss();
        let mut merger = RunMerger::new(&ds, &r, &LoadSpec::default(), &tasks, true);
        let mut merging = Duration::ZERO;
        for task in &r.tasks {
            let p = page(&ds, task, edit);
            let t = Instant::now();
            merger.page(p).expect("merge page");
            merging += t.elapsed();
        }
        let t = Instant::now();
        let outcome = merger.finish(None).expect("finish");
        merging += t.elapsed();
        let added = support::peak_rss_mib() - before;
        let c = &outcome.counts["ground_truth"];
        println!(
            "  {name:<12} merge {:>6.2} s ({:.0} labels/s)  +{added:.0} MiB over the dataset  counts ~{} ={}  writes {}",
            merging.as_secs_f64(),
            (n * LABELS_PER_SAMPLE) as f64 / merging.as_secs_f64(),
            c.edited,
            c.unchanged,
            outcome.writes.len()
        );
        assert_eq!(c.edited, if edit { n } else { 0 });
        if edit {
            let t = Instant::now();
            outcome.write(&mut ds).expect("write merge");
            println!(
                "  {:<12} write {:>6.2} s into the in-memory dataset",
                "",
                t.elapsed().as_secs_f64()
            );
        }
    }
    println!("  peak RSS    {:.0} MiB", support::peak_rss_mib());
}
