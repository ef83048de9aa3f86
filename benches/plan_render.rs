//! Plan rendering: text (compact and verbose), JSON (and parsing it back) and pull-request
//! Markdown of a large plan: 1000 runs of 6 fields, every action represented, three in eight of
//! the runs merging with 200 rejected changes each (75k rejections), drift and details.
//! Prints the median of 5 renders per format and the output sizes.
//! Run: `cargo bench --bench plan_render`.

mod support;
use support::{median, peak_rss_mib};

use annoform::plan::model::{
    Action, ChangeKind, Detail, Drift, FieldCounts, LabelChange, Plan, Refusal, Rejection,
    Restriction, RunPlan, SampleChanges,
};
use annoform::plan::render::{json, markdown, text};
use indexmap::IndexMap;
use std::time::Instant;

const RUNS: usize = 1000;
const FIELDS: [&str; 6] = [
    "ground_truth",
    "predictions",
    "scene",
    "regions",
    "keypoints",
    "segmentation",
];
const REJECTIONS: usize = 200;
const ROUNDS: usize = 5;
/// What the CLI passes for GitHub comments.
const MAX_CHARS: usize = 65_000;

fn run(i: usize) -> RunPlan {
    let actions: &[Action] = match i % 8 {
        0 | 1 => &[Action::Merge],
        2 => &[Action::Create],
        3 => &[Action::Extend, Action::Merge],
        4 => &[Action::Update],
        5 => &[Action::Replace],
        6 => &[Action::Destroy],
        _ => &[Action::Drift],
    };
    let merging = actions.contains(&Action::Merge);
    let fields: IndexMap<annoform::dataset::FieldPath, FieldCounts> = FIELDS
        .iter()
        .enumerate()
        .map(|(f, name)| {
            let c = if merging {
                FieldCounts {
                    added: 10 + f,
                    edited: 100 + i % 50,
                    deleted: 3,
                    rejected: REJECTIONS / FIELDS.len(),
                    unchanged: 5000,
                    ..FieldCounts::default()
                }
            } else {
                FieldCounts {
                    upload: 1000 + f,
                    ..FieldCounts::default()
                }
            };
            ((*name).into(), c)
        })
        .collect();
    let rejected = if merging {
        (0..REJECTIONS)
            .map(|j| Rejection {
                sample_id: format!("64f1c0a2e4b0{i:06}{j:06}"),
                frame: None,
                label_id: format!("64f1c0a2e4b1{i:06}{j:06}"),
                field: FIELDS[j % FIELDS.len()].to_string(),
                change: [
                    ChangeKind::Delete,
                    ChangeKind::Label,
                    ChangeKind::Geometry,
                    ChangeKind::Attribute,
                ][j % 4],
                attribute: (j % 4 == 3).then(|| "occluded".to_string()),
                reason: Refusal::Restricted {
                    restriction: Restriction::AllowDeletions,
                },
            })
            .collect()
    } else {
        Vec::new()
    };
    RunPlan {
        key: format!("review_batch_{i:04}"),
        dataset: format!("dataset_{}", i % 7),
        backend: ["labelstudio", "cvat", "darwin"][i % 3].to_string(),
        actions: actions.to_vec(),
        samples: 5000,
        tasks: 50,
        fields,
        rejected,
        unexpected: Vec::new(),
        drift: if actions.contains(&Action::Drift) {
            vec![Drift::TaskMissing {
                task: format!("annoform/dataset/review_batch_{i:04}/batch-0003"),
                id: format!("{i}"),
            }]
        } else {
            Vec::new()
        },
        details: (0..5)
            .map(|d| {
                Detail::SampleChanges(SampleChanges {
                    sample_id: format!("64f1c0a2e4b0{i:06}{d:06}"),
                    frame: None,
                    field: FIELDS[d % FIELDS.len()].to_string(),
                    changes: vec![LabelChange::Edited {
                        label_id: format!("64f1c0a2e4b1{i:06}{d:06}"),
                        applied: vec!["label".into(), "geometry".into()],
                    }],
                })
            })
            .collect(),
        waiting: None,
        edits: Vec::new(),
        schema_change: None,
        schema: None,
        error: None,
        hint: None,
        failure: None,
    }
}

fn time<T>(f: impl Fn() -> T) -> (std::time::Duration, T) {
    let mut times = Vec::new();
    let mut out = None;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        out = Some(f());
        times.push(t.elapsed());
    }
    (median(times), out.expect("rounds > 0"))
}

fn main() {
    let plan = Plan::new((0..RUNS).map(run).collect());
    let rejections: usize = plan.runs.iter().map(|r| r.rejected.len()).sum();
    println!("plan_render: {RUNS} runs, {rejections} rejections");
    let size = |n: usize| format!("{:.1} MiB", n as f64 / (1 << 20) as f64);
    let compact = text::TextOptions::default();
    let (t, out) = time(|| text::render(&plan, &compact));
    println!("  text compact    {t:>10.2?}  {}", size(out.len()));
    let verbose = text::TextOptions {
        verbose: true,
        ..compact
    };
    let (t, out) = time(|| text::render(&plan, &verbose));
    println!("  text verbose    {t:>10.2?}  {}", size(out.len()));
    let colour = text::TextOptions {
        color: true,
        ..compact
    };
    let (t, out) = time(|| text::render(&plan, &colour));
    println!("  text colour     {t:>10.2?}  {}", size(out.len()));
    let (t, doc) = time(|| json::render(&plan));
    println!("  json            {t:>10.2?}  {}", size(doc.len()));
    let (t, back) = time(|| json::parse(&doc).expect("parse"));
    assert_eq!(back, plan);
    println!("  json parse      {t:>10.2?}");
    let (t, comments) = time(|| markdown::render(&plan, MAX_CHARS));
    println!(
        "  markdown        {t:>10.2?}  {} in {} comments",
        size(comments.iter().map(String::len).sum()),
        comments.len()
    );
    println!("  peak RSS {:.0} MiB", peak_rss_mib());
}
