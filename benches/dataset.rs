//! Load/save figures for the `dir` store on a synthetic 100k-sample, 1M-detection dataset.
//! Run with `cargo bench --bench dataset` (prints figures; no statistics harness).
//! `ANNOFORM_BENCH_SAMPLES` overrides the sample count.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use annoform::dataset::dir::Dataset;
use annoform::dataset::ejson::ObjectId;
use annoform::dataset::fields::FieldType;
use annoform::dataset::labels::Label;
use annoform::dataset::view;
use annoform::manifest::types::{FilterLabels, ViewStage};
use serde_json::json;

const LABELS_PER_SAMPLE: usize = 10;
const CLASSES: [&str; 4] = ["car", "person", "bike", "truck"];

/// Peak resident set size of this process so far, in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// A tiny deterministic PRNG so every run writes the same dataset.
struct Lcg(u64);
impl Lcg {
    fn f(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Streams a FiftyOneDataset directory to disk without holding it in memory.
fn generate(dir: &Path, n: usize) -> std::io::Result<()> {
    let fields = vec![
        FieldType::Label("Detections".into()).field_doc("ground_truth"),
        FieldType::Float.field_doc("uniqueness"),
    ];
    let meta = json!({"name": "bench", "version": "1.22.1", "media_type": "image", "sample_fields": fields,
                      "frame_fields": [], "classes": {}, "default_classes": [], "annotation_runs": {}});
    std::fs::write(dir.join("metadata.json"), serde_json::to_vec(&meta)?)?;
    let mut w = BufWriter::with_capacity(1 << 20, File::create(dir.join("samples.json"))?);
    let mut rng = Lcg(42);
    w.write_all(b"{\"samples\": [")?;
    for i in 0..n {
        if i > 0 {
            w.write_all(b", ")?;
        }
        let dets: Vec<_> = (0..LABELS_PER_SAMPLE)
            .map(|j| {
                let (x, y) = (rng.f() * 0.8, rng.f() * 0.8);
                json!({"_id": ObjectId::derive(&[b"label", &(i as u64).to_be_bytes(), &(j as u64).to_be_bytes()]).to_ejson(),
                       "_cls": "Detection", "attributes": {}, "tags": [], "label": CLASSES[(i + j) % 4],
                       "bounding_box": [x, y, 0.1 + rng.f() * 0.1, 0.1 + rng.f() * 0.1],
                       "confidence": rng.f(), "occluded": j % 3 == 0})
            })
            .collect();
        let s = json!({"_id": ObjectId::derive(&[b"sample", &(i as u64).to_be_bytes()]).to_ejson(),
                       "filepath": format!("/data/images/{i:06}.jpg"), "tags": if i % 10 == 0 { json!(["val"]) } else { json!(["train"]) },
                       "_media_type": "image", "_rand": rng.f(),
                       "metadata": {"_cls": "ImageMetadata", "width": 640, "height": 480},
                       "ground_truth": {"_cls": "Detections", "detections": dets},
                       "uniqueness": rng.f(),
                       "created_at": {"$date": "2026-11-22T02:28:50.402Z"},
                       "last_modified_at": {"$date": "2026-11-22T02:28:50.402Z"}});
        serde_json::to_writer(&mut w, &s)?;
    }
    w.write_all(b"]}")?;
    w.flush()
}

fn main() {
    let n: usize = std::env::var("ANNOFORM_BENCH_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
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
