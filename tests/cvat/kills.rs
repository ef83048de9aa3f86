//! The kill suite on the CVAT fake: `annoform apply` killed with SIGKILL at every step
//! boundary of a create and of two merges, held there by the fault proxy, then run again
//! cleanly. After each: the plan is empty, every annotation is merged and no label lost (the
//! dataset equals the one of an uninterrupted run), and CVAT holds one project, one task per
//! batch, no duplicate label and exactly the shapes and tags of the uninterrupted run.
//!
//! A run of 3 samples, one task each (`task_size: 1`). The boundaries come from the
//! uninterrupted run's requests: each request that changes the server in the create (held
//! before it is forwarded, and after, with the answer kept back), each request of a merge
//! (held before it is forwarded; a merge writes nothing to the server).

use super::acceptance::DEMO;
use super::faultproxy::FaultProxy;
use super::faults::{backend_labels, small_run, via};
use super::faultsuite::{Tally, differing_samples, kill_points};
use super::*;
use std::time::Instant;

const SAMPLES: usize = 3;

pub(super) struct Scenario {
    pub(super) ws: Ws,
    project: String,
}

impl Scenario {
    pub(super) fn new(cvat: &Cvat, proxy: &FaultProxy, n: usize) -> Scenario {
        let ws = Ws::new(cvat, DEMO, "");
        via(&ws, cvat, &proxy.url);
        let key = format!("k{n}");
        ws.manifest("run.yaml", &small_run(&key));
        Scenario {
            ws,
            project: format!("annoform/ds/{key}"),
        }
    }

    /// The run's tasks, in batch order.
    pub(super) fn tasks(&self, cvat: &Cvat) -> Vec<Value> {
        let pid = cvat.project(&self.project).expect("project");
        let mut tasks = cvat.tasks(pid);
        tasks.sort_by_key(|t| t["name"].as_str().unwrap_or_default().to_string());
        tasks
    }

    /// Annotators' work before merge `phase` (1 or 2).
    pub(super) fn annotate(&self, cvat: &Cvat, phase: usize) {
        let pid = cvat.project(&self.project).unwrap();
        let tasks: Vec<u64> = self
            .tasks(cvat)
            .iter()
            .map(|t| t["id"].as_u64().unwrap())
            .collect();
        let first_box = |tid: u64| {
            cvat.annotations(tid)["shapes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["type"] == "rectangle")
                .cloned()
                .expect("a box")
        };
        if phase == 1 {
            // Sample 0: a box moved; sample 1: a box deleted; sample 2: a box drawn.
            let mut moved = first_box(tasks[0]);
            let x = moved["points"][0].as_f64().unwrap();
            moved["points"][0] = json!(x + 4.0);
            cvat.edit(tasks[0], "update", vec![moved], vec![]);
            cvat.edit(tasks[1], "delete", vec![first_box(tasks[1])], vec![]);
            cvat.edit(
                tasks[2],
                "create",
                vec![json!({"type": "rectangle", "frame": 0,
                    "label_id": cvat.label(pid, "person")["id"],
                    "points": [10, 20, 50, 60], "attributes": []})],
                vec![],
            );
        } else {
            // Sample 1: its scene deleted.
            let tags = cvat.annotations(tasks[1])["tags"]
                .as_array()
                .unwrap()
                .clone();
            cvat.edit(tasks[1], "delete", vec![], tags);
        }
    }
}

/// The dataset's labels of the run's samples, comparable across runs: labels minted by a
/// merge are "new".
pub(super) fn summary(samples: &[Value], original: &[Value]) -> Vec<Vec<String>> {
    let ids = |s: &Value| -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for (field, list) in [("ground_truth", "detections"), ("regions", "polylines")] {
            for l in s[field][list].as_array().into_iter().flatten() {
                let geometry = if field == "ground_truth" {
                    l["bounding_box"].to_string()
                } else {
                    l["points"].to_string()
                };
                out.push((
                    format!("{field} {}", l["label"]),
                    oid(l).to_string(),
                    geometry,
                ));
            }
        }
        if s["scene"].is_object() {
            out.push((
                format!("scene {}", s["scene"]["label"]),
                oid(&s["scene"]).to_string(),
                String::new(),
            ));
        }
        out
    };
    let known: Vec<String> = original.iter().flat_map(ids).map(|(_, id, _)| id).collect();
    samples
        .iter()
        .take(SAMPLES)
        .map(|s| {
            let mut v: Vec<String> = ids(s)
                .into_iter()
                .map(|(what, id, geometry)| {
                    let id = if known.contains(&id) {
                        id
                    } else {
                        "new".into()
                    };
                    format!("{what} {id} {geometry}")
                })
                .collect();
            v.sort();
            v
        })
        .collect()
}

/// Duplicates or missing objects in CVAT for a scenario whose uninterrupted twin holds
/// `labels` shapes and tags.
pub(super) fn backend_faults(cvat: &Cvat, s: &Scenario, labels: usize) -> Vec<String> {
    let mut wrong = Vec::new();
    let projects = cvat
        .projects()
        .iter()
        .filter(|p| p["name"] == s.project.as_str())
        .count();
    if projects != 1 {
        return vec![format!("{projects} projects named {}", s.project)];
    }
    let pid = cvat.project(&s.project).unwrap();
    let mut names: Vec<String> = cvat
        .labels(pid)
        .iter()
        .map(|l| l["name"].to_string())
        .collect();
    let all = names.len();
    names.sort();
    names.dedup();
    if names.len() != all {
        wrong.push(format!(
            "duplicate labels in the project: {all} for {names:?}"
        ));
    }
    let tasks = s.tasks(cvat);
    let mut batches: Vec<&str> = tasks.iter().filter_map(|t| t["name"].as_str()).collect();
    batches.dedup();
    if tasks.len() != SAMPLES || batches.len() != SAMPLES {
        wrong.push(format!("tasks {batches:?}, expected {SAMPLES}"));
    }
    for t in &tasks {
        if t["size"] != 1 {
            wrong.push(format!("task {} has size {}", t["name"], t["size"]));
        }
    }
    let held: usize = tasks
        .iter()
        .map(|t| backend_labels(cvat, t["id"].as_u64().unwrap()))
        .sum();
    if held != labels {
        wrong.push(format!(
            "CVAT holds {held} shapes and tags, the uninterrupted run {labels}"
        ));
    }
    wrong
}

#[test]
fn killed_at_every_step_boundary_then_rerun() {
    let t0 = Instant::now();
    let cvat = Cvat::start();
    let proxy = FaultProxy::start(cvat.url());

    // The uninterrupted run: its requests per phase, its dataset and CVAT's label count
    // after each.
    let reference = Scenario::new(&cvat, &proxy, 0);
    let original = reference.ws.samples();
    let count = |s: &Scenario| -> usize {
        s.tasks(&cvat)
            .iter()
            .map(|t| backend_labels(&cvat, t["id"].as_u64().unwrap()))
            .sum()
    };
    let mut logs = vec![proxy.log_of(|| {
        reference.ws.apply();
    })];
    let mut expected = vec![summary(&reference.ws.samples(), &original)];
    let mut held = vec![count(&reference)];
    for phase in 1..=2 {
        reference.annotate(&cvat, phase);
        logs.push(proxy.log_of(|| {
            reference.ws.apply();
        }));
        expected.push(summary(&reference.ws.samples(), &original));
        held.push(count(&reference));
    }
    assert!(actions(&reference.ws.plan()).is_empty());
    assert_ne!(
        expected[0], expected[1],
        "the first merge changed the dataset"
    );
    assert_ne!(
        expected[1], expected[2],
        "the second merge changed the dataset"
    );

    let changes = |m: &str, t: &str| m != "GET" && !t.starts_with("/api/auth/");
    let points = kill_points(&logs, changes);

    let mut wrong: Vec<String> = Vec::new();
    let mut tally = Tally::default();
    for (n, point) in points.iter().enumerate() {
        let phase = point.phase;
        let s = Scenario::new(&cvat, &proxy, n + 1);
        point.reach(
            |p| s.annotate(&cvat, p),
            || {
                s.ws.apply();
            },
        );
        let at = point.describe();
        if let Err(e) = point.kill(&proxy, &mut s.ws.command(&["apply", "--auto-approve"])) {
            wrong.push(e);
            continue;
        }
        let before = wrong.len();
        let (ok, _, err) = s.ws.try_run(&["apply", "--auto-approve"]);
        if !ok {
            wrong.push(format!("{at}: the clean re-run failed: {err}"));
            continue;
        }
        let plan = s.ws.plan();
        if !actions(&plan).is_empty() {
            wrong.push(format!(
                "{at}: the plan after the re-run is {:?}: {}",
                actions(&plan),
                plan["runs"][0]["fields"]
            ));
        }
        let now = summary(&s.ws.samples(), &original);
        wrong.extend(differing_samples(&at, &expected[phase], &now));
        for w in backend_faults(&cvat, &s, held[phase]) {
            wrong.push(format!("{at}: {w}"));
        }
        tally.record(&at, &wrong, before);
    }
    tally.report("CVAT fake", &points, &proxy, t0.elapsed());
    assert!(wrong.is_empty(), "{wrong:#?}");
}
