//! View evaluation: the stages a manifest can chain, over a synthetic 100k-sample,
//! 1M-detection dataset (`ANNOFORM_BENCH_SAMPLES` overrides the count). Prints the median of
//! 5 evaluations per view and peak RSS. Run: `cargo bench --bench view`.

mod support;
use support::{LABELS_PER_SAMPLE, generate, median, peak_rss_mib};

use annoform::dataset::dir::Dataset;
use annoform::dataset::view;
use annoform::manifest::types::ViewStage;
use serde_json::json;
use std::time::Instant;

const REPEATS: usize = 5;

fn main() {
    let n = support::sample_count();
    let tmp = tempfile::tempdir().expect("temp dir");
    generate(tmp.path(), n).expect("generate");
    let t = Instant::now();
    let ds = Dataset::load(tmp.path()).expect("load");
    println!(
        "view: {n} samples / {} labels (loaded in {:.2?})",
        n * LABELS_PER_SAMPLE,
        t.elapsed()
    );
    // Written as in a manifest's `view:`; the last one chains every kind of stage.
    let views = [
        ("match_tags", json!([{"match_tags": ["val"]}])),
        ("exists", json!([{"exists": "uniqueness"}])),
        (
            "filter_labels",
            json!([{"filter_labels": {"field": "ground_truth",
                "where": "label == 'car' && confidence > 0.5"}}]),
        ),
        (
            "match_labels",
            json!([{"match_labels": {"fields": ["ground_truth"],
                "where": "label == 'truck' && occluded && confidence > 0.9"}}]),
        ),
        (
            "sort_by expr",
            json!([{"sort_by": {"expr": "count(ground_truth)", "reverse": true}}]),
        ),
        ("sort_by field", json!([{"sort_by": "uniqueness"}])),
        ("take 10k", json!([{"take": {"size": 10_000, "seed": 51}}])),
        (
            "chain of 7 stages",
            json!([
                {"match_tags": ["train"]},
                {"exists": "ground_truth"},
                {"filter_labels": {"field": "ground_truth",
                    "where": "label in ['car', 'person'] && confidence > 0.3",
                    "only_matches": false}},
                {"match_labels": {"fields": "ground_truth", "where": "confidence > 0.5"}},
                {"sort_by": {"expr": "count(ground_truth)", "reverse": true}},
                {"skip": 10},
                {"limit": 50_000}
            ]),
        ),
    ];
    for (name, stages) in views {
        let stages: Vec<ViewStage> = serde_json::from_value(stages).expect("view stages");
        let mut times = Vec::new();
        let mut kept = 0;
        for _ in 0..REPEATS {
            let t = Instant::now();
            let v = view::apply(&stages, &ds).expect("view");
            times.push(t.elapsed());
            kept = v.len();
        }
        let m = median(times);
        println!(
            "  {name:<18} {m:>10.2?}  ({:.0}k samples/s, {kept} samples kept)",
            n as f64 / m.as_secs_f64() / 1e3
        );
    }
    println!("  peak RSS {:.0} MiB", peak_rss_mib());
}
