//! View evaluation: the stages a manifest can chain, over a synthetic 100k-sample,
//! 1M-detection dataset (`ANNOFORM_BENCH_SAMPLES` overrides the count). Prints the median of
//! 5 evaluations per view and peak RSS. Run: `cargo bench --bench view`.
//!
//! Beside each view, FiftyOne 1.22.1's own aggregations on the same dataset, the same view
//! written with its stages (`bench/view_fo.py`): `len(view)` and
//! `view.count("ground_truth.detections")`, medians of 3, the import into its database not
//! timed. The python is `ANNOFORM_BENCH_FIFTYONE` (empty: leave FiftyOne out), else the venv
//! in `~/.cache/annoform/fiftyone-1.22.1` when there is one. `ANNOFORM_BENCH_VIEWS` (names,
//! comma-separated) runs only those views, e.g. to count instructions of one with `perf stat`.

mod support;
use support::{LABELS_PER_SAMPLE, generate, median, peak_rss_mib};

use annoform::dataset::dir::Dataset;
use annoform::dataset::view;
use annoform::manifest::types::ViewStage;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
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
    let views: Vec<_> = match std::env::var("ANNOFORM_BENCH_VIEWS") {
        Ok(only) => {
            let only: Vec<&str> = only.split(',').map(str::trim).collect();
            views
                .into_iter()
                .filter(|(name, _)| only.contains(name))
                .collect()
        }
        Err(_) => views.into(),
    };
    let names: Vec<&str> = views.iter().map(|(name, _)| *name).collect();
    let fiftyone = fiftyone_python().map(|py| fiftyone_side(&py, tmp.path(), &names));
    println!(
        "  {:<18} {:>10} {:>8} {:>9}   {:>10} {:>10} {:>10}  {:>7}",
        "view", "annoform", "samples", "labels", "FO len", "FO count", "FO both", "FO/af"
    );
    for (name, stages) in views {
        let stages: Vec<ViewStage> = serde_json::from_value(stages).expect("view stages");
        let mut times = Vec::new();
        let mut kept = (0, 0);
        for _ in 0..REPEATS {
            let t = Instant::now();
            let v = view::apply(&stages, &ds).expect("view");
            times.push(t.elapsed());
            // Unfiltered samples keep all their labels.
            let labels = v
                .filtered
                .get("ground_truth")
                .map_or(v.len() * LABELS_PER_SAMPLE, |f| {
                    f.values().map(Vec::len).sum()
                });
            kept = (v.len(), labels);
        }
        let m = median(times);
        print!("  {name:<18} {m:>10.2?} {:>8} {:>9}", kept.0, kept.1);
        match fiftyone.as_ref().and_then(|fo| fo.get(name)) {
            Some(fo) => {
                let both = fo.len_s + fo.count_s;
                println!(
                    "   {:>9.3}s {:>9.3}s {:>9.3}s  {:>6.1}×{}",
                    fo.len_s,
                    fo.count_s,
                    both,
                    both / m.as_secs_f64(),
                    if (fo.len, fo.count) == kept {
                        ""
                    } else {
                        "  (FiftyOne selects differently!)"
                    }
                );
            }
            None => println!(),
        }
    }
    println!("  peak RSS {:.0} MiB", peak_rss_mib());
}

/// FiftyOne's figures for one view.
struct FoFigures {
    len_s: f64,
    count_s: f64,
    len: usize,
    count: usize,
}

/// The FiftyOne python to compare with, if any.
fn fiftyone_python() -> Option<PathBuf> {
    match std::env::var_os("ANNOFORM_BENCH_FIFTYONE") {
        Some(p) if p.is_empty() => None,
        Some(p) => Some(PathBuf::from(p)),
        None => {
            let home = PathBuf::from(std::env::var_os("HOME")?);
            let py = home.join(".cache/annoform/fiftyone-1.22.1/bin/python");
            py.exists().then_some(py)
        }
    }
}

/// Runs `bench/view_fo.py` on the dataset in a scratch HOME and database.
fn fiftyone_side(python: &Path, dataset: &Path, names: &[&str]) -> HashMap<String, FoFigures> {
    let scratch = tempfile::tempdir().expect("scratch dir");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/view_fo.py");
    let t = Instant::now();
    let out = Command::new(python)
        .arg(&script)
        .arg(dataset)
        .arg("3")
        .args(names)
        .env("HOME", scratch.path().join("home"))
        .env("FIFTYONE_DATABASE_DIR", scratch.path().join("db"))
        .env("FIFTYONE_DO_NOT_TRACK", "true")
        .output()
        .expect("run the FiftyOne python");
    assert!(
        out.status.success(),
        "bench/view_fo.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut figures = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if let Some(s) = v.get("import_s").and_then(Value::as_f64) {
            println!(
                "FiftyOne 1.22.1: imported in {s:.1} s (not timed below), whole run {:.1?}",
                t.elapsed()
            );
        }
        let (Some(name), Some(len_s), Some(count_s), Some(len), Some(count)) = (
            v.get("name").and_then(Value::as_str),
            v.get("len_s").and_then(Value::as_f64),
            v.get("count_s").and_then(Value::as_f64),
            v.get("len").and_then(Value::as_u64),
            v.get("count").and_then(Value::as_u64),
        ) else {
            continue;
        };
        figures.insert(
            name.to_owned(),
            FoFigures {
                len_s,
                count_s,
                len: len as usize,
                count: count as usize,
            },
        );
    }
    figures
}
