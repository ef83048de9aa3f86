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

use annoform::dataset::dir::Dataset;
use std::time::Instant;

mod support;
use support::LABELS_PER_SAMPLE;
use support::run::{PAGE, merge_all, record};

// The allocator of the annoform binary, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let n = support::sample_count();
    let dir = tempfile::tempdir().expect("temp dir");
    support::generate(dir.path(), n).expect("generate dataset");
    let mut ds = Dataset::load(dir.path()).expect("load dataset");
    let r = record(&ds, &support::run::field());
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
        let (outcome, merging) = merge_all(&ds, &r, edit);
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
