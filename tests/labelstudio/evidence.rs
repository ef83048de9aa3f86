//! Deletion needs evidence, on the real server: a download page lost or emptied on the way is
//! fetched again or fails the plan (never read as "no labels"), the cursor moves only past a
//! verified merge, and a task deleted by hand is drift that keeps its sample's labels.

use super::acceptance::{DEMO_PROJECT, annotate, counts, demo_schema, labels, oid};
use super::faultproxy::{Action, FaultProxy, Rule, Target};
use super::*;

/// Downloads: task pages asked for with every field.
fn downloads() -> Target {
    Target::regex(r"^/api/tasks\?.*\bfields=all")
}

/// Listings: task pages asked for with the listing's few fields.
fn listings() -> Target {
    Target::regex(r"^/api/tasks\?.*\binclude=id\b")
}

/// A download page lost on the way: Label Studio's answer for a page past the end.
fn lost() -> Action {
    Action::Status(404, r#"{"detail":"Invalid page."}"#.into())
}

/// A download page that arrives without its tasks (the server's `total` kept).
fn emptied() -> Action {
    Action::Rewrite(|page| page["tasks"] = json!([]))
}

/// A listing answered as if the project held no task (`total` 0).
fn nothing() -> Action {
    Action::Status(
        200,
        r#"{"total":0,"total_annotations":0,"total_predictions":0,"tasks":[]}"#.into(),
    )
}

/// Runs `act` with `rule` firing on every request it matches, then disables it.
fn always<T>(proxy: &FaultProxy, rule: Rule, act: impl FnOnce() -> T) -> T {
    proxy.rule(rule.always());
    let out = act();
    proxy.clear();
    out
}

/// The demo run's record.
fn record(ws: &Ws) -> Value {
    let path = ws.path().join(".annoform/state/demo/demo.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The Label Studio task showing `sample`.
fn task_of(ls: &LabelStudio, project: u64, sample: &Value) -> Value {
    ls.tasks(project)
        .into_iter()
        .find(|t| t["data"]["sample_id"] == oid(sample).as_str())
        .expect("the sample's task")
}

#[test]
fn lost_or_empty_download_pages_never_delete_labels() {
    let dir = tempfile::tempdir().unwrap();
    let ls = LabelStudio::start(dir.path());
    let proxy = FaultProxy::start(&ls.url);
    let ws = Ws::demo(dir, &proxy.url, &ls.token, 24, &demo_schema(""));
    ws.run(&["apply", "--auto-approve"]);
    let pid = ls.project(DEMO_PROJECT).unwrap();
    annotate(&ls, pid, &ws.samples());
    // The first merge lists and downloads every task (as without a cursor from create).
    ws.forget_created_cursor("demo", "demo");

    // One page lost (404) or emptied on the way, or a listing answered as if the project
    // were empty: fetched again, and the merge is whole. (Each plan downloads afresh.)
    for (target, action) in [
        (downloads(), lost()),
        (downloads(), emptied()),
        (listings(), nothing()),
    ] {
        ws.forget_kept_downloads();
        let fault = proxy.rule(Rule::new("GET", target, action));
        let plan = ws.plan();
        assert_eq!(fault.fired(), 1, "the fault was served");
        assert_eq!(counts(&plan, "ground_truth"), (1, 2, 1, 0), "{plan:#}");
        assert_eq!(counts(&plan, "scene"), (0, 1, 1, 0), "{plan:#}");
        assert_eq!(counts(&plan, "regions"), (1, 1, 1, 0), "{plan:#}");
    }

    // Every listing empty: an error, not 24 tasks missing (to be created again).
    ws.forget_kept_downloads();
    let err = always(&proxy, Rule::new("GET", listings(), nothing()), || {
        ws.fail(&["apply", "--auto-approve"])
    });
    assert!(err.contains("incomplete answer"), "{err}");
    assert_eq!(ls.tasks(pid).len(), 24, "no task created again");

    // Every answer emptied: the first merge fails naming the incomplete answer, and nothing
    // is merged or checkpointed.
    ws.forget_kept_downloads();
    let data = ws.snapshot("datasets/demo");
    let err = always(&proxy, Rule::new("GET", downloads(), emptied()), || {
        ws.fail(&["apply", "--auto-approve"])
    });
    assert!(err.contains("incomplete answer"), "{err}");
    assert!(data == ws.snapshot("datasets/demo"), "dataset untouched");
    assert!(record(&ws)["merge"].is_null(), "no checkpoint");
    ws.run(&["apply", "--auto-approve"]);
    let cursor = record(&ws)["merge"]["cursor"].clone();
    assert!(cursor.is_string(), "{cursor}");
    assert!(run_actions(&ws.plan()).is_empty());

    // The incremental refresh: one more sample's labels all deleted by its annotator, and the
    // answer to the changed-tasks query comes back empty. An error, the cursor waits.
    let samples = ws.samples();
    let sample = &samples[10];
    let boxes = labels(sample, "ground_truth").len() as u64;
    assert!(boxes > 0);
    let task = task_of(&ls, pid, sample);
    ls.post(
        &format!("/api/tasks/{}/annotations", task["id"]),
        &json!({"result": [], "was_cancelled": false, "ground_truth": false}),
    );
    let data = ws.snapshot("datasets/demo");
    let err = always(&proxy, Rule::new("GET", downloads(), emptied()), || {
        ws.fail(&["apply", "--auto-approve"])
    });
    assert!(err.contains("incomplete answer"), "{err}");
    assert!(data == ws.snapshot("datasets/demo"), "dataset untouched");
    assert_eq!(record(&ws)["merge"]["cursor"], cursor, "the cursor waits");
    let plan = ws.plan();
    assert_eq!(run_actions(&plan), ["merge"], "{plan:#}");
    assert_eq!(counts(&plan, "ground_truth"), (0, 0, boxes, 0), "{plan:#}");
    ws.run(&["apply", "--auto-approve"]);
    assert!(run_actions(&ws.plan()).is_empty());
    ws.run(&["destroy", "--auto-approve"]);
}

#[test]
fn a_task_deleted_by_hand_is_drift_and_keeps_its_labels() {
    let dir = tempfile::tempdir().unwrap();
    let ls = LabelStudio::start(dir.path());
    let ws = Ws::demo(dir, &ls.url, &ls.token, 24, &demo_schema(""));
    ws.run(&["apply", "--auto-approve"]);
    let pid = ls.project(DEMO_PROJECT).unwrap();
    let before = ws.samples();
    annotate(&ls, pid, &before);
    // A task nobody annotated, deleted in Label Studio by hand before the first merge.
    let gone = &before[20];
    let task = task_of(&ls, pid, gone);
    let (status, v) = ls.request(
        reqwest::Method::DELETE,
        &format!("/api/tasks/{}", task["id"]),
        None,
    );
    assert!(status < 300, "DELETE task: {status} {v}");

    let plan = ws.plan();
    assert_eq!(run_actions(&plan), ["drift", "merge"], "{plan:#}");
    let drift = plan["runs"][0]["drift"].as_array().unwrap();
    assert_eq!(drift.len(), 1, "{plan:#}");
    assert!(
        drift[0]["samples"] == json!([oid(gone)]),
        "names the sample: {plan:#}"
    );
    // Only the annotators' deletions.
    assert_eq!(counts(&plan, "ground_truth"), (1, 2, 1, 0), "{plan:#}");
    assert_eq!(counts(&plan, "scene"), (0, 1, 1, 0), "{plan:#}");
    ws.run(&["apply", "--auto-approve"]);
    let kept = ws
        .samples()
        .into_iter()
        .find(|s| oid(s) == oid(gone))
        .unwrap();
    assert_eq!(kept, *gone, "the missing task's sample keeps its labels");
    assert_eq!(
        run_actions(&ws.plan()),
        ["drift"],
        "the drift stays visible"
    );
    ws.run(&["destroy", "--auto-approve"]);
}
