//! Load/save figures for the `dir` store on a synthetic 100k-sample, 1M-detection dataset.
//! Run with `cargo bench --bench dataset` (prints figures; no statistics harness).
//! `ANNOFORM_BENCH_SAMPLES` overrides the sample count.

use std::time::Instant;

mod support;
use support::{LABELS_PER_SAMPLE, generate, peak_rss_mib};

use annoform::dataset::dir::Dataset;
use annoform::dataset::labels::Label;
use annoform::dataset::view;
use annoform::manifest::types::{FilterLabels, ViewStage};
use serde_json::json;

fn main() {
    let n = support::sample_count();
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();

    let t = Instant::now();
    generate(dir, n).expect("generate");
    let size = std::fs::metadata(dir.join("samples.json"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "generated {n} samples / {} labels: samples.json {:.0} MiB in {:.2?} (peak RSS {:.0} MiB)",
        n * LABELS_PER_SAMPLE,
        size as f64 / (1 << 20) as f64,
        t.elapsed(),
        peak_rss_mib()
    );

    let t = Instant::now();
    let mut ds = Dataset::load(dir).expect("load");
    let load = t.elapsed();
    println!(
        "load:  {load:.2?} ({:.0} samples/s), peak RSS {:.0} MiB",
        n as f64 / load.as_secs_f64(),
        peak_rss_mib()
    );

    let t = Instant::now();
    let stages = [ViewStage::FilterLabels(FilterLabels {
        field: "ground_truth".into(),
        where_: "label == 'car' && confidence > 0.5".into(),
        only_matches: Some(true),
    })];
    let v = view::apply(&stages, &ds).expect("view");
    let kept: usize = v.filtered["ground_truth"].values().map(Vec::len).sum();
    println!(
        "view:  filter_labels over {} labels in {:.2?} ({} samples, {kept} labels kept)",
        n * LABELS_PER_SAMPLE,
        t.elapsed(),
        v.len()
    );

    // One edit makes samples.json dirty, so save rewrites all of it.
    let first = ds.samples()[0].id();
    let s = ds.sample_mut(first).expect("sample");
    let Ok(Some(Label::Detections(mut d))) = s.label("ground_truth") else {
        panic!("ground_truth")
    };
    d.items[0].base.label = Some("bus".into());
    s.set_label("ground_truth", Some(&Label::Detections(d)));
    let t = Instant::now();
    ds.save().expect("save");
    let save = t.elapsed();
    println!(
        "save:  {save:.2?} ({:.0} MiB/s), peak RSS {:.0} MiB",
        size as f64 / (1 << 20) as f64 / save.as_secs_f64(),
        peak_rss_mib()
    );

    let t = Instant::now();
    let mut again = Dataset::load(dir).expect("reload");
    assert_eq!(again.len(), n);
    println!("reload: {:.2?}", t.elapsed());

    // Worst case: every sample changed, so every sample is a parsed tree and re-serialized.
    let ids: Vec<_> = again.samples().iter().map(|s| s.id()).collect();
    let t = Instant::now();
    for id in &ids {
        again
            .sample_mut(*id)
            .expect("sample")
            .set("uniqueness", json!(0.5));
    }
    let touch = t.elapsed();
    let t = Instant::now();
    again.save().expect("save all");
    println!(
        "every sample changed: edit {touch:.2?}, save {:.2?}, peak RSS {:.0} MiB",
        t.elapsed(),
        peak_rss_mib()
    );
}
