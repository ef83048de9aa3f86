//! The reviewed workflow on the real server (issue 16): `plan` keeps its download and the
//! `apply` after it asks only for what changed since; the cursor starts when the tasks are
//! created; a no-op plan is two small requests; an annotation changed after a plan refuses
//! the saved plan file, and a plain `apply` merges it and shows it.

use super::acceptance::{DEMO_PROJECT, annotate, counts, demo_schema, labels, oid};
use super::faultproxy::FaultProxy;
use super::*;

/// The demo run's record.
fn record(ws: &Ws) -> Value {
    let path = ws.path().join(".annoform/state/demo/demo.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Requests that download tasks with their annotations.
fn downloads(log: &[(String, String)]) -> Vec<&String> {
    log.iter()
        .filter(|(m, p)| m == "GET" && p.starts_with("/api/tasks?") && p.contains("fields=all"))
        .map(|(_, p)| p)
        .collect()
}

/// How many tasks a download asked for: it must select the tasks updated after a cursor
/// (Label Studio's own filter), and the same request, asked of the server directly, says how
/// many tasks that filter holds.
fn changed_tasks_asked(ls: &LabelStudio, path: &str) -> u64 {
    let query = path.split_once("query=").map_or("", |(_, q)| q);
    let query = query.split('&').next().unwrap_or_default();
    let query: Value = serde_json::from_str(&percent_decode(query)).unwrap_or(Value::Null);
    let filter = &query["filters"]["items"][0];
    assert_eq!(filter["filter"], "filter:tasks:updated_at", "{path}");
    assert_eq!(filter["operator"], "greater", "{path}");
    let page = ls.get(path);
    assert_eq!(
        page["tasks"].as_array().map(Vec::len),
        page["total"].as_u64().map(|n| n as usize),
        "{page:#}"
    );
    page["total"].as_u64().unwrap()
}

fn percent_decode(s: &str) -> String {
    let mut out = Vec::new();
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hex = [bytes.next().unwrap(), bytes.next().unwrap()];
                out.push(u8::from_str_radix(std::str::from_utf8(&hex).unwrap(), 16).unwrap());
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn plan_then_apply_downloads_once_and_a_no_op_plan_is_two_requests() {
    let dir = tempfile::tempdir().unwrap();
    let ls = LabelStudio::start(dir.path());
    let proxy = FaultProxy::start(&ls.url);
    let ws = Ws::demo(dir, &proxy.url, &ls.token, 24, &demo_schema(""));
    ws.run(&["apply", "--auto-approve"]);
    let pid = ls.project(DEMO_PROJECT).unwrap();
    assert!(
        record(&ws)["created_cursor"].is_string(),
        "the cursor starts at create: {}",
        record(&ws)
    );

    // Nothing annotated: the project (with its task counts) and the tasks changed since the
    // tasks were created (none).
    let log = proxy.log_of(|| assert!(run_actions(&ws.plan()).is_empty()));
    assert_eq!(log.len(), 2, "{log:#?}");
    assert!(downloads(&log).is_empty(), "{log:#?}");

    // The run's first merge downloads the 8 annotated tasks, not all 24: one page of the
    // tasks updated after the cursor, selected by the server (no listing of them first).
    annotate(&ls, pid, &ws.samples());
    let log = proxy.log_of(|| {
        ws.run(&["plan", "--out", "plan.json"]);
    });
    assert_eq!(log.len(), 3, "project, changed count, one page: {log:#?}");
    let got = downloads(&log);
    assert_eq!(got.len(), 1, "{log:#?}");
    assert_eq!(changed_tasks_asked(&ls, got[0]), 8, "{}", got[0]);
    let annotated = ls
        .tasks(pid)
        .into_iter()
        .filter(|t| t["total_annotations"].as_u64() > Some(0))
        .count();
    assert_eq!(annotated, 8);

    // The apply of the saved plan replays its download: it asks only what changed since.
    let log = proxy.log_of(|| {
        ws.run(&["apply", "plan.json"]);
    });
    assert!(downloads(&log).is_empty(), "{log:#?}");
    let merged = ws.samples();
    assert!(!labels(&merged[3], "ground_truth").is_empty());
    assert_eq!(
        std::fs::read_dir(ws.path().join(".annoform/cache/demo/demo")).map_or(0, |d| d.count()),
        0,
        "the applied download is forgotten"
    );

    // Merged: a no-op plan is two requests again, and `apply` after `plan` changes nothing.
    let log = proxy.log_of(|| assert!(run_actions(&ws.plan()).is_empty()));
    assert_eq!(log.len(), 2, "{log:#?}");
    let before = ws.samples();
    ws.run(&["apply", "--auto-approve"]);
    assert_eq!(ws.samples(), before);
    ws.run(&["destroy", "--auto-approve"]);
}

#[test]
fn a_change_after_the_plan_refuses_its_file_and_plain_apply_merges_and_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let ls = LabelStudio::start(dir.path());
    let proxy = FaultProxy::start(&ls.url);
    let ws = Ws::demo(dir, &proxy.url, &ls.token, 24, &demo_schema(""));
    ws.run(&["apply", "--auto-approve"]);
    let pid = ls.project(DEMO_PROJECT).unwrap();
    annotate(&ls, pid, &ws.samples());
    let plan: Value =
        serde_json::from_str(&ws.run(&["plan", "--json", "--out", "plan.json"])).unwrap();
    assert_eq!(counts(&plan, "ground_truth"), (1, 2, 1, 0), "{plan:#}");

    // After the plan, an annotator deletes every box of another sample.
    let samples = ws.samples();
    let sample = &samples[10];
    let boxes = labels(sample, "ground_truth").len() as u64;
    assert!(boxes > 0);
    let task = ls
        .tasks(pid)
        .into_iter()
        .find(|t| t["data"]["sample_id"] == oid(sample).as_str())
        .unwrap();
    ls.post(
        &format!("/api/tasks/{}/annotations", task["id"]),
        &json!({"result": [], "was_cancelled": false, "ground_truth": false}),
    );

    // The reviewed plan no longer says what would happen: refused, nothing written.
    let data = std::fs::read(ws.path().join("datasets/demo/samples.json")).unwrap();
    let err = ws.fail(&["apply", "plan.json"]);
    assert!(err.contains("stale"), "{err}");
    assert_eq!(
        std::fs::read(ws.path().join("datasets/demo/samples.json")).unwrap(),
        data
    );

    // A plain apply plans again (from the kept download plus the one changed task), shows
    // the change and merges it.
    let mut shown = Value::Null;
    let log = proxy.log_of(|| {
        let out = ws.run(&["apply", "--auto-approve", "--json"]);
        shown = serde_json::Deserializer::from_str(&out)
            .into_iter::<Value>()
            .next()
            .expect("the plan apply shows")
            .unwrap();
    });
    assert_eq!(
        counts(&shown, "ground_truth"),
        (1, 2, 1 + boxes, 0),
        "{shown:#}"
    );
    let got = downloads(&log);
    assert_eq!(got.len(), 1, "{log:#?}");
    assert_eq!(
        changed_tasks_asked(&ls, got[0]),
        1,
        "only the changed task: {}",
        got[0]
    );
    let after = ws.samples();
    let merged = after.iter().find(|s| oid(s) == oid(sample)).unwrap();
    assert!(labels(merged, "ground_truth").is_empty(), "{merged:#}");
    assert!(run_actions(&ws.plan()).is_empty());
    ws.run(&["destroy", "--auto-approve"]);
}

#[test]
fn a_skipped_task_deletes_nothing() {
    // Downloads ask Label Studio for a few fields of each annotation only (`include=`): the
    // newest annotation of a task the annotator skipped is cancelled and holds no result,
    // and it must still read as cancelled, not as "every label deleted".
    let dir = tempfile::tempdir().unwrap();
    let ls = LabelStudio::start(dir.path());
    let proxy = FaultProxy::start(&ls.url);
    let ws = Ws::demo(dir, &proxy.url, &ls.token, 24, &demo_schema(""));
    ws.run(&["apply", "--auto-approve"]);
    let pid = ls.project(DEMO_PROJECT).unwrap();
    let before = ws.samples();
    let sample = &before[10];
    assert!(!labels(sample, "ground_truth").is_empty());
    let task = ls
        .tasks(pid)
        .into_iter()
        .find(|t| t["data"]["sample_id"] == oid(sample).as_str())
        .unwrap();
    ls.post(
        &format!("/api/tasks/{}/annotations", task["id"]),
        &json!({"result": [], "was_cancelled": true, "ground_truth": false}),
    );
    let mut plan = Value::Null;
    let log = proxy.log_of(|| plan = ws.plan());
    let got = downloads(&log);
    assert_eq!(got.len(), 1, "{log:#?}");
    assert_eq!(
        changed_tasks_asked(&ls, got[0]),
        1,
        "the skipped task: {}",
        got[0]
    );
    assert_eq!(counts(&plan, "ground_truth"), (0, 0, 0, 0), "{plan:#}");
    ws.run(&["apply", "--auto-approve"]);
    assert_eq!(ws.samples(), before);
    ws.run(&["destroy", "--auto-approve"]);
}
