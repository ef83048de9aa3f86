//! What the custom-harness benches share: a synthetic dataset on disk, the run that uploaded
//! it and a backend's download of it (`run`), peak RSS and medians.

#![allow(dead_code)] // each bench binary uses its own part of this

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Duration;

pub mod run;

use annoform::dataset::ejson::ObjectId;
use annoform::dataset::fields::FieldType;
use serde_json::json;

pub const LABELS_PER_SAMPLE: usize = 10;
pub const CLASSES: [&str; 4] = ["car", "person", "bike", "truck"];

/// Samples in the synthetic dataset: `ANNOFORM_BENCH_SAMPLES`, else 100k.
pub fn sample_count() -> usize {
    std::env::var("ANNOFORM_BENCH_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

/// A `/proc/self/status` figure (`VmRSS:`, `VmHWM:`...) in MiB.
fn status_mib(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Peak resident set size of this process so far, in MiB.
pub fn peak_rss_mib() -> f64 {
    status_mib("VmHWM:")
}

/// Resident set size now, in MiB.
pub fn rss_mib() -> f64 {
    status_mib("VmRSS:")
}

/// Resets the peak RSS to the current RSS (Linux `clear_refs` 5), to measure one step.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The median of some timings (the machine is shared: medians, not means).
pub fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

/// A tiny deterministic PRNG so every run writes the same dataset.
pub struct Lcg(pub u64);
impl Lcg {
    pub fn f(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The `metadata.json` (FiftyOne's dataset document) of the synthetic dataset.
pub fn dataset_meta() -> serde_json::Value {
    let fields = vec![
        FieldType::Label("Detections".into()).field_doc("ground_truth"),
        FieldType::Float.field_doc("uniqueness"),
    ];
    json!({"name": "bench", "version": "1.22.1", "media_type": "image", "sample_fields": fields,
           "frame_fields": [], "classes": {}, "default_classes": [], "annotation_runs": {}})
}

/// Sample `i` of the synthetic dataset: 10 detections, tag `train` or `val`, a `uniqueness`
/// float; `rng` draws the numbers (called in sample order, it gives the same dataset).
pub fn sample(i: usize, rng: &mut Lcg) -> serde_json::Value {
    let dets: Vec<_> = (0..LABELS_PER_SAMPLE)
        .map(|j| {
            let (x, y) = (rng.f() * 0.8, rng.f() * 0.8);
            json!({"_id": ObjectId::derive(&[b"label", &(i as u64).to_be_bytes(), &(j as u64).to_be_bytes()]).to_ejson(),
                   "_cls": "Detection", "attributes": {}, "tags": [], "label": CLASSES[(i + j) % 4],
                   "bounding_box": [x, y, 0.1 + rng.f() * 0.1, 0.1 + rng.f() * 0.1],
                   "confidence": rng.f(), "occluded": j % 3 == 0})
        })
        .collect();
    json!({"_id": ObjectId::derive(&[b"sample", &(i as u64).to_be_bytes()]).to_ejson(),
           "filepath": format!("/data/images/{i:06}.jpg"), "tags": if i % 10 == 0 { json!(["val"]) } else { json!(["train"]) },
           "_media_type": "image", "_rand": rng.f(),
           "metadata": {"_cls": "ImageMetadata", "width": 640, "height": 480},
           "ground_truth": {"_cls": "Detections", "detections": dets},
           "uniqueness": rng.f(),
           "created_at": {"$date": "2026-11-22T02:28:50.402Z"},
           "last_modified_at": {"$date": "2026-11-22T02:28:50.402Z"}})
}

/// Streams a FiftyOneDataset directory of `n` samples × 10 detections (tags `train`/`val`, a
/// `uniqueness` float) to disk without holding it in memory.
pub fn generate(dir: &Path, n: usize) -> std::io::Result<()> {
    std::fs::write(
        dir.join("metadata.json"),
        serde_json::to_vec(&dataset_meta())?,
    )?;
    let mut w = BufWriter::with_capacity(1 << 20, File::create(dir.join("samples.json"))?);
    let mut rng = Lcg(42);
    w.write_all(b"{\"samples\": [")?;
    for i in 0..n {
        if i > 0 {
            w.write_all(b", ")?;
        }
        serde_json::to_writer(&mut w, &sample(i, &mut rng))?;
    }
    w.write_all(b"]}")?;
    w.flush()
}
