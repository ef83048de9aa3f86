//! Interruptions and name collisions on the CVAT fake, driven through the fault proxy: a
//! task killed between its data and its labels, another workspace's project of the same
//! name.

use super::acceptance::{DEMO, QUICKSTART};
use super::faultproxy::{Action, FaultProxy, Rule, Target};
use super::faultsuite::planned_deletions;
use super::*;
use std::time::Duration;

/// A three-sample run of the demo dataset, one task per sample, merged whatever the jobs'
/// state: boxes, the scene tag and polygons.
pub(super) fn small_run(key: &str) -> String {
    format!(
        "apiVersion: annoform/v1\nkind: AnnotationRun\nkey: {key}\ndataset: ds\nview:\n  - limit: 3\nbackend_config:\n  task_size: 1\nload:\n  when: always\nlabel_schema:\n  ground_truth: {{type: detections, classes: [car, person, bike]}}\n  scene: {{type: classification, classes: [street, park, parking]}}\n  regions: {{type: polygons, classes: [road, grass]}}\n"
    )
}

/// Points the workspace at `url` instead of the fake itself.
pub(super) fn via(ws: &Ws, cvat: &Cvat, url: &str) {
    let toml = ws.path().join("annoform.toml");
    let text = std::fs::read_to_string(&toml)
        .unwrap()
        .replace(cvat.url(), url);
    std::fs::write(&toml, text).unwrap();
}

/// The labels of the first `n` samples of the dataset that the small run carries.
pub(super) fn dataset_labels(samples: &[Value], n: usize) -> usize {
    samples
        .iter()
        .take(n)
        .map(|s| {
            s["ground_truth"]["detections"]
                .as_array()
                .map_or(0, Vec::len)
                + s["regions"]["polylines"].as_array().map_or(0, Vec::len)
                + usize::from(s["scene"].is_object())
        })
        .sum()
}

/// Shapes and tags in a task.
pub(super) fn backend_labels(cvat: &Cvat, task: u64) -> usize {
    let a = cvat.annotations(task);
    a["shapes"].as_array().map_or(0, Vec::len) + a["tags"].as_array().map_or(0, Vec::len)
}

/// Killed after a task's data is ready and before its labels are uploaded: the re-run
/// uploads them, so the next plan deletes nothing and the backend holds every label once.
#[test]
fn killed_between_a_tasks_data_and_its_labels() {
    let cvat = Cvat::start();
    let proxy = FaultProxy::start(cvat.url());
    let ws = Ws::new(&cvat, DEMO, "");
    via(&ws, &cvat, &proxy.url);
    ws.manifest("run.yaml", &small_run("kill"));
    let before = ws.samples();
    proxy
        .kill_at(
            Rule::new(
                "PATCH",
                Target::regex(r"^/api/tasks/\d+/annotations\?action=create"),
                Action::HoldRequest,
            ),
            &mut ws.command(&["apply", "--auto-approve"]),
            Duration::from_secs(60),
        )
        .expect("killed before the first task's labels");
    let pid = cvat.project("annoform/ds/kill").expect("project");
    let first = cvat.tasks(pid)[0]["id"].as_u64().unwrap();
    assert!(cvat.tasks(pid)[0]["size"].as_u64() > Some(0), "data ready");
    assert_eq!(backend_labels(&cvat, first), 0, "no labels yet");

    ws.apply();
    let plan = ws.plan();
    let tasks = cvat.tasks(pid);
    let up: usize = tasks
        .iter()
        .map(|t| backend_labels(&cvat, t["id"].as_u64().unwrap()))
        .sum();
    let deleted = planned_deletions(&plan, &["ground_truth", "scene", "regions"]);
    let mut wrong = Vec::new();
    if tasks.len() != 3 {
        wrong.push(format!("{} tasks, not 3", tasks.len()));
    }
    if up != dataset_labels(&before, 3) {
        wrong.push(format!(
            "CVAT holds {up} labels of the {} uploaded (first task: {})",
            dataset_labels(&before, 3),
            backend_labels(&cvat, first)
        ));
    }
    if !actions(&plan).is_empty() || deleted > 0 {
        wrong.push(format!(
            "the plan after the re-run is {:?} with {deleted} deletion(s)",
            actions(&plan)
        ));
    }
    ws.apply();
    if ws.samples() != before {
        wrong.push(format!(
            "the dataset lost labels: {} of {} left on the run's samples",
            dataset_labels(&ws.samples(), 3),
            dataset_labels(&before, 3)
        ));
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// Two workspaces, different datasets, the same `project_name` and run key: the second is
/// refused, and neither its apply nor its destroy touches the first's project.
#[test]
fn another_workspaces_project_is_refused() {
    let cvat = Cvat::start();
    let shared = "backend_config:\n  project_name: shared review\n";
    let a = Ws::new(&cvat, DEMO, "");
    let b = Ws::new(&cvat, QUICKSTART, "");
    for ws in [&a, &b] {
        ws.manifest(
            "run.yaml",
            &small_run("review").replace("backend_config:\n  task_size: 1\n", shared),
        );
    }
    a.apply();
    let pid = cvat.project("shared review").expect("A's project");
    let a_tasks = cvat.tasks(pid).len();
    let b_before = b.samples();

    let (applied, out, err) = b.try_run(&["apply", "--auto-approve"]);
    let mut wrong = Vec::new();
    if applied {
        wrong.push(format!("B's apply succeeded in A's project:\n{out}"));
    } else if !err.contains("shared review") {
        wrong.push(format!("B's refusal does not name the project:\n{err}"));
    }
    if cvat.tasks(pid).len() != a_tasks {
        wrong.push(format!(
            "B's apply changed A's project: {} tasks, A made {a_tasks}",
            cvat.tasks(pid).len()
        ));
    }
    if b.samples() != b_before {
        wrong.push("B's apply changed B's dataset".into());
    }
    let (destroyed, _, _) = b.try_run(&["destroy", "--auto-approve"]);
    if cvat.project("shared review") != Some(pid) {
        wrong.push(format!(
            "B's destroy (success: {destroyed}) deleted A's project"
        ));
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// `${env:…}` in `project_name` is expanded, or refused before anything is created; never
/// taken literally.
#[test]
fn an_env_reference_in_project_name_is_expanded_or_refused() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, DEMO, "");
    ws.manifest(
        "run.yaml",
        &small_run("review").replace(
            "backend_config:\n  task_size: 1\n",
            "backend_config:\n  project_name: team-${env:TEAM}/review\n",
        ),
    );
    let out = ws
        .command(&["apply", "--auto-approve"])
        .env("TEAM", "blue")
        .output()
        .unwrap();
    let names: Vec<String> = cvat
        .projects()
        .iter()
        .filter_map(|p| p["name"].as_str().map(String::from))
        .collect();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        assert_eq!(names, ["team-blue/review"], "expanded");
    } else {
        assert!(names.is_empty(), "refused before creating: {names:?}");
        assert!(stderr.contains("project_name"), "{stderr}");
    }
}

/// An empty answer to the project's task listing is not "every task deleted": apply does not
/// recreate the tasks (which would duplicate them and their labels, and leave annotators'
/// work in the orphaned originals).
#[test]
fn an_empty_task_listing_recreates_nothing() {
    let cvat = Cvat::start();
    let proxy = FaultProxy::start(cvat.url());
    let ws = Ws::new(&cvat, DEMO, "");
    via(&ws, &cvat, &proxy.url);
    ws.manifest("run.yaml", &small_run("listing"));
    ws.apply();
    let pid = cvat.project("annoform/ds/listing").unwrap();
    let tasks: Vec<u64> = cvat
        .tasks(pid)
        .iter()
        .map(|t| t["id"].as_u64().unwrap())
        .collect();
    let labels: usize = tasks.iter().map(|t| backend_labels(&cvat, *t)).sum();
    cvat.touch_project(pid);
    let listing = proxy.rule(Rule::new(
        "GET",
        Target::regex(r"^/api/tasks\?"),
        Action::EmptyBody,
    ));
    let (ok, out, err) = ws.try_run(&["apply", "--auto-approve"]);
    assert_eq!(listing.fired(), 1);
    proxy.clear();
    let now: Vec<u64> = cvat
        .tasks(pid)
        .iter()
        .map(|t| t["id"].as_u64().unwrap())
        .collect();
    let held: usize = now.iter().map(|t| backend_labels(&cvat, *t)).sum();
    assert!(
        now == tasks && held == labels,
        "after an empty listing, apply (success: {ok}) left tasks {now:?} (were {tasks:?}) holding {held} labels (were {labels}):\n{out}{err}"
    );
}

/// A listing that looks whole but omits the run's tasks (as if the project held none) is not
/// "every task deleted": each task absent from it is asked for by itself, and only a task the
/// server says is gone would be drift.
#[test]
fn a_listing_that_omits_tasks_recreates_nothing() {
    let cvat = Cvat::start();
    let proxy = FaultProxy::start(cvat.url());
    let ws = Ws::new(&cvat, DEMO, "");
    via(&ws, &cvat, &proxy.url);
    ws.manifest("run.yaml", &small_run("omitted"));
    ws.apply();
    let pid = cvat.project("annoform/ds/omitted").unwrap();
    let tasks = cvat.tasks(pid).len();
    cvat.touch_project(pid);
    let listing = proxy.rule(
        Rule::new(
            "GET",
            Target::regex(r"^/api/tasks\?"),
            Action::Status(
                200,
                r#"{"count":0,"next":null,"previous":null,"results":[]}"#.into(),
            ),
        )
        .always(),
    );
    let plan = ws.plan();
    ws.apply();
    assert!(listing.fired() >= 2, "the listing was emptied");
    proxy.clear();
    assert!(
        actions(&plan).is_empty()
            && plan["runs"][0]["drift"]
                .as_array()
                .is_none_or(Vec::is_empty),
        "a listing without the tasks made drift: {plan:#}"
    );
    assert_eq!(cvat.tasks(pid).len(), tasks, "no task recreated");
}

/// Killed once a task holds its data, before the task is recorded; the re-run meets a task
/// listing short of the count it announces. The short listing is an error, not "no task
/// yet": the task is adopted once the listing is whole, never created a second time.
#[test]
fn a_short_task_listing_never_duplicates_a_task() {
    let cvat = Cvat::start();
    let proxy = FaultProxy::start(cvat.url());
    let ws = Ws::new(&cvat, DEMO, "");
    via(&ws, &cvat, &proxy.url);
    ws.manifest("run.yaml", &small_run("short"));
    proxy
        .kill_at(
            Rule::new(
                "POST",
                Target::regex(r"^/api/tasks/\d+/data"),
                Action::HoldAnswer,
            ),
            &mut ws.command(&["apply", "--auto-approve"]),
            Duration::from_secs(60),
        )
        .expect("killed once the first task's data was sent");
    let pid = cvat.project("annoform/ds/short").expect("project");
    assert_eq!(cvat.tasks(pid).len(), 1);

    let short = proxy.rule(
        Rule::new(
            "GET",
            Target::regex(r"^/api/tasks\?"),
            Action::Rewrite(|page| page["results"] = json!([])),
        )
        .always(),
    );
    let (ok, out, err) = ws.try_run(&["apply", "--auto-approve"]);
    assert!(short.fired() > 0, "the listing was cut short");
    proxy.clear();
    let names = |cvat: &Cvat| -> Vec<String> {
        cvat.tasks(pid)
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(&cvat).len(),
        1,
        "after a short listing, apply (success: {ok}) created tasks again {:?}:\n{out}{err}",
        names(&cvat)
    );
    assert!(
        err.contains("incomplete answer") && err.contains("GET /api/tasks?project_id="),
        "{err}"
    );

    ws.apply();
    let mut all = names(&cvat);
    all.dedup();
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(cvat.tasks(pid).len(), 3);
    assert!(actions(&ws.plan()).is_empty());
}
