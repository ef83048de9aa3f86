//! Merge throughput: 100k samples × 10 detections (1M labels) with 10 % of them edited by
//! annotators, through the merge core that plan and apply share. Prints time and peak RSS.
//! Run: `cargo bench --bench merge`.

use annoform::backend::DownloadedLabel;
use annoform::manifest::{Conflicts, LabelType, Unexpected};
use annoform::merge::{FieldInput, field_value, label_digest, merge_field};
use annoform::schema::ResolvedField;
use annoform::state::UploadedLabel;
use indexmap::IndexMap;
use serde_json::{Value, json};
use std::time::Instant;

const SAMPLES: usize = 100_000;
const PER_SAMPLE: usize = 10;

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .map(|v| v.trim().trim_end_matches(" kB").trim().to_string())
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn detection(sample: usize, i: usize, label: &str) -> Value {
    json!({"_id": {"$oid": format!("{:016x}{:08x}", sample, i)}, "_cls": "Detection", "label": label,
           "bounding_box": [0.01 * i as f64, 0.2, 0.1, 0.1], "confidence": 0.9, "occluded": false})
}

fn main() {
    let schema = ResolvedField::new(LabelType::Detections, vec!["car".into(), "person".into()]);
    let id_map = IndexMap::new();
    let (mut added, mut edited, mut unchanged) = (0, 0, 0);
    let start = Instant::now();
    // Sample by sample, as a paginated download arrives: nothing is kept but the counts.
    for s in 0..SAMPLES {
        let current: Vec<Value> = (0..PER_SAMPLE).map(|i| detection(s, i, "car")).collect();
        let uploaded: Vec<UploadedLabel> = current
            .iter()
            .map(|l| UploadedLabel {
                id: l["_id"]["$oid"].as_str().unwrap_or_default().to_string(),
                digest: label_digest(l, &schema),
            })
            .collect();
        let downloaded: Vec<DownloadedLabel> = current
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let mut l = l.clone();
                if i == 0 {
                    l["label"] = json!("person"); // 10 % of labels edited
                }
                DownloadedLabel {
                    backend_id: format!("{s}-{i}"),
                    label: l,
                }
            })
            .collect();
        let value = field_value(current, LabelType::Detections);
        let out = merge_field(&FieldInput {
            field: "ground_truth",
            schema: &schema,
            sample_id: &s.to_string(),
            current: value.as_ref(),
            uploaded: &uploaded,
            downloaded: &downloaded,
            id_map: &id_map,
            id_seed: b"bench",
            conflicts: Conflicts::Error,
            unexpected: Unexpected::Keep,
        });
        added += out.counts.added;
        edited += out.counts.edited;
        unchanged += out.counts.unchanged;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "merge: {} labels over {SAMPLES} samples (10 % edited)",
        SAMPLES * PER_SAMPLE
    );
    println!(
        "  time      {secs:.2} s  ({:.0} labels/s, including building the inputs)",
        (SAMPLES * PER_SAMPLE) as f64 / secs
    );
    println!("  counts    +{added} ~{edited} ={unchanged}");
    println!("  peak RSS  {:.0} MiB", peak_rss_mib());
    assert_eq!(edited, SAMPLES);
}
