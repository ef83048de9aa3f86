//! The kill suite on a real Label Studio: `annoform apply` killed with SIGKILL at every step
//! boundary of a create and of two merges (the first, full; the second, incremental), held
//! there by the fault proxy, then run again cleanly. After each: the plan is empty, every
//! annotation is merged and no label lost (the dataset equals the one of an uninterrupted
//! run), and Label Studio holds one project, one task per sample and one prediction per task.
//!
//! A run of 3 samples (3 tasks in one batch: Label Studio imports a batch at once). The boundaries come from the
//! uninterrupted run's requests: each request that changes the server in the create (held
//! before it is forwarded, and after, with the answer kept back), each request of a merge
//! (held before it is forwarded; a merge writes nothing to the server).

use super::faultproxy::FaultProxy;
use super::faults::{sample_id, try_apply, workspace};
use super::faultsuite::{Tally, differing_samples, kill_points};
use super::*;
use std::time::Instant;

const SAMPLES: usize = 3;

/// One run of the suite in its own workspace and project.
pub(super) struct Scenario {
    pub(super) ws: Ws,
    project: String,
}

impl Scenario {
    pub(super) fn new(ls: &LabelStudio, proxy: &FaultProxy, n: usize) -> Scenario {
        let dataset = format!("k{n}");
        let ws = workspace(ls, &proxy.url, SAMPLES as u32, &dataset);
        Scenario {
            ws,
            project: format!("annoform/{dataset}/demo"),
        }
    }

    /// Annotators' work before merge `phase` (1, 2 or 3).
    pub(super) fn annotate(&self, ls: &LabelStudio, phase: usize) {
        let pid = ls.project(&self.project).expect("project");
        let samples = self.ws.samples();
        let edit = |i: usize, change: &dyn Fn(&mut Vec<Value>)| {
            let sid = sample_id(&samples[i]);
            let task = ls
                .tasks(pid)
                .into_iter()
                .find(|t| t["data"]["sample_id"] == sid.as_str())
                .unwrap();
            let mut result = task["predictions"][0]["result"].as_array().unwrap().clone();
            change(&mut result);
            ls.post(
                &format!("/api/tasks/{}/annotations", task["id"]),
                &json!({"result": result, "was_cancelled": false, "ground_truth": false}),
            );
        };
        let first_box = |r: &Vec<Value>| {
            r.iter()
                .position(|x| x["from_name"] == "ground_truth")
                .unwrap()
        };
        if phase == 1 {
            // Sample 0: a box relabelled; sample 1: a box deleted; sample 2: a box drawn.
            edit(0, &|r| {
                let k = first_box(r);
                let new = if r[k]["value"]["rectanglelabels"][0] == "car" {
                    "bike"
                } else {
                    "car"
                };
                r[k]["value"]["rectanglelabels"] = json!([new]);
            });
            edit(1, &|r| {
                let k = first_box(r);
                r.remove(k);
            });
            edit(2, &|r| {
                r.push(
                    json!({"id": "drawn00001", "from_name": "ground_truth", "to_name": "image",
                    "type": "rectanglelabels", "original_width": 160, "original_height": 120,
                    "image_rotation": 0, "origin": "manual",
                    "value": {"x": 10.0, "y": 20.0, "width": 25.0, "height": 30.0, "rotation": 0,
                        "rectanglelabels": ["person"]}}),
                );
            });
        } else if phase == 3 {
            // Sample 2 again: its scene deleted (a newer annotation, without the drawn box).
            edit(2, &|r| r.retain(|x| x["from_name"] != "scene"));
        } else {
            // Sample 1 again: its scene deleted too (a newer annotation).
            edit(1, &|r| {
                let k = first_box(r);
                r.remove(k);
                r.retain(|x| x["from_name"] != "scene");
            });
        }
    }
}

/// The dataset's labels, comparable across runs: labels minted by a merge are "new".
pub(super) fn summary(samples: &[Value], original: &[Value]) -> Vec<Vec<String>> {
    let known: Vec<String> = original
        .iter()
        .flat_map(super::faults::label_set)
        .map(|(_, id, _)| id)
        .collect();
    samples
        .iter()
        .map(|s| {
            let mut v: Vec<String> = super::faults::label_set(s)
                .into_iter()
                .map(|(f, id, class)| {
                    let id = if known.contains(&id) {
                        id
                    } else {
                        "new".into()
                    };
                    format!("{f} {id} {class}")
                })
                .collect();
            v.sort();
            v
        })
        .collect()
}

/// Duplicates or missing objects in Label Studio for a scenario.
pub(super) fn backend_faults(ls: &LabelStudio, s: &Scenario) -> Vec<String> {
    let mut wrong = Vec::new();
    let projects = ls.get("/api/projects?page_size=1000")["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["title"] == s.project.as_str())
        .count();
    if projects != 1 {
        wrong.push(format!("{projects} projects named {}", s.project));
    }
    let Some(pid) = ls.project(&s.project) else {
        return wrong;
    };
    let tasks = ls.tasks(pid);
    for sample in s.ws.samples() {
        let sid = sample_id(&sample);
        let of: Vec<&Value> = tasks
            .iter()
            .filter(|t| t["data"]["sample_id"] == sid.as_str())
            .collect();
        if of.len() != 1 {
            wrong.push(format!("{} tasks of sample {sid}", of.len()));
        }
        for t in of {
            let predictions = t["predictions"].as_array().map_or(0, Vec::len);
            if predictions != 1 {
                wrong.push(format!("task {} has {predictions} predictions", t["id"]));
            }
        }
    }
    if tasks.len() != SAMPLES {
        wrong.push(format!("{} tasks in the project", tasks.len()));
    }
    wrong
}

#[test]
fn killed_at_every_step_boundary_then_rerun() {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let ls = LabelStudio::start(dir.path());
    let proxy = FaultProxy::start(&ls.url);

    // The uninterrupted run: its requests per phase and its dataset after each.
    let reference = Scenario::new(&ls, &proxy, 0);
    let original = reference.ws.samples();
    let mut logs = vec![proxy.log_of(|| {
        reference.ws.run(&["apply", "--auto-approve"]);
    })];
    let mut expected = vec![summary(&reference.ws.samples(), &original)];
    for phase in 1..=2 {
        reference.annotate(&ls, phase);
        logs.push(proxy.log_of(|| {
            reference.ws.run(&["apply", "--auto-approve"]);
        }));
        expected.push(summary(&reference.ws.samples(), &original));
    }
    assert!(run_actions(&reference.ws.plan()).is_empty());
    assert_ne!(
        expected[0], expected[1],
        "the first merge changed the dataset"
    );
    assert_ne!(
        expected[1], expected[2],
        "the second merge changed the dataset"
    );

    let changes = |m: &str, _: &str| m != "GET";
    let points = kill_points(&logs, changes);

    let mut wrong: Vec<String> = Vec::new();
    let mut tally = Tally::default();
    for (n, point) in points.iter().enumerate() {
        let phase = point.phase;
        let s = Scenario::new(&ls, &proxy, n + 1);
        point.reach(
            |p| s.annotate(&ls, p),
            || {
                s.ws.run(&["apply", "--auto-approve"]);
            },
        );
        let at = point.describe();
        if let Err(e) = point.kill(&proxy, &mut s.ws.command(&["apply", "--auto-approve"])) {
            wrong.push(e);
            continue;
        }
        let before = wrong.len();
        let (ok, out) = try_apply(&s.ws);
        if !ok {
            wrong.push(format!("{at}: the clean re-run failed: {out}"));
            continue;
        }
        let plan = s.ws.plan();
        if !run_actions(&plan).is_empty() {
            wrong.push(format!("{at}: the plan after the re-run is {plan}"));
        }
        let now = summary(&s.ws.samples(), &original);
        wrong.extend(differing_samples(&at, &expected[phase], &now));
        for w in backend_faults(&ls, &s) {
            wrong.push(format!("{at}: {w}"));
        }
        tally.record(&at, &wrong, before);
    }
    tally.report("Label Studio", &points, &proxy, t0.elapsed());
    assert!(wrong.is_empty(), "{wrong:#?}");
}
