//! Ordinary failures of a real Label Studio, injected by the fault proxy, must never cost a
//! label: a page missing from a download, an empty answer to the incremental refresh, a task
//! deleted by hand, another workspace's project of the same name.

use super::acceptance::demo_schema;
use super::faultproxy::{Action, FaultProxy, Rule, Target};
use super::faultsuite::{outcome, planned_deletions};
use super::*;

/// The labels the demo runs carry, per sample: (field, label id, class).
pub(super) fn label_set(sample: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (field, list) in [("ground_truth", "detections"), ("regions", "polylines")] {
        for l in sample[field][list].as_array().into_iter().flatten() {
            out.push((
                field.to_string(),
                l["_id"]["$oid"].as_str().unwrap_or_default().to_string(),
                l["label"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    if sample["scene"].is_object() {
        out.push((
            "scene".into(),
            sample["scene"]["_id"]["$oid"]
                .as_str()
                .unwrap_or_default()
                .into(),
            sample["scene"]["label"].as_str().unwrap_or_default().into(),
        ));
    }
    out
}

pub(super) fn sample_id(sample: &Value) -> String {
    sample["_id"]["$oid"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// An annotator's edit: the first box of a sample gets another class. Returns (box id, new
/// class).
pub(super) fn relabel_first_box(
    ls: &LabelStudio,
    project: u64,
    sample: &Value,
) -> (String, String) {
    let sid = sample_id(sample);
    let task = ls
        .tasks(project)
        .into_iter()
        .find(|t| t["data"]["sample_id"] == sid.as_str())
        .unwrap_or_else(|| panic!("no task of sample {sid}"));
    let mut result: Vec<Value> = task["predictions"][0]["result"].as_array().unwrap().clone();
    let k = result
        .iter()
        .position(|r| r["from_name"] == "ground_truth")
        .expect("a box");
    let new = if result[k]["value"]["rectanglelabels"][0] == "car" {
        "bike"
    } else {
        "car"
    };
    result[k]["value"]["rectanglelabels"] = json!([new]);
    ls.post(
        &format!("/api/tasks/{}/annotations", task["id"]),
        &json!({"result": result, "was_cancelled": false, "ground_truth": false}),
    );
    (
        result[k]["id"].as_str().unwrap().to_string(),
        new.to_string(),
    )
}

/// The class of label `id` in `sample` now.
fn class_of(sample: &Value, id: &str) -> Option<String> {
    label_set(sample)
        .into_iter()
        .find(|(_, l, _)| l == id)
        .map(|(_, _, c)| c)
}

/// Samples whose labels differ from `before`, except the `edited` ones: what a fault took.
fn changed_besides(before: &[Value], after: &[Value], edited: &[usize]) -> Vec<String> {
    before
        .iter()
        .zip(after)
        .enumerate()
        .filter(|(i, (b, a))| !edited.contains(i) && label_set(b) != label_set(a))
        .map(|(i, (b, a))| {
            format!(
                "sample {i} ({}): {} label(s) before, {} after",
                sample_id(b),
                label_set(b).len(),
                label_set(a).len()
            )
        })
        .collect()
}

/// A demo workspace of `n` images under its own dataset name (so runs on one server have
/// their own projects), talking to `url`.
pub(super) fn workspace(ls: &LabelStudio, url: &str, n: u32, dataset: &str) -> Ws {
    let ws = Ws::demo(
        tempfile::tempdir().unwrap(),
        url,
        &ls.token,
        n,
        &demo_schema(""),
    );
    rename_dataset(&ws, dataset);
    ws
}

/// Declares the workspace's dataset under another name (its directory stays).
fn rename_dataset(ws: &Ws, name: &str) {
    let toml = ws.path().join("annoform.toml");
    let text = std::fs::read_to_string(&toml)
        .unwrap()
        .replace("[datasets.demo]", &format!("[datasets.{name}]"));
    std::fs::write(&toml, text).unwrap();
    let manifest = ws.path().join("manifests/run.yaml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("dataset: demo", &format!("dataset: {name}"));
    std::fs::write(&manifest, text).unwrap();
}

/// `annoform apply` that may fail: (success, stdout + stderr).
pub(super) fn try_apply(ws: &Ws) -> (bool, String) {
    let (ok, text) = outcome(&mut ws.command(&["apply", "--auto-approve"]), &ws.token);
    assert!(!text.contains("panicked"), "{text}");
    (ok, text)
}

/// A download page missing (a 404, as past the end) or empty in the middle of the first
/// merge: nothing is deleted for the samples it held, and a clean re-run merges every
/// annotation, on page 2 too.
#[test]
fn a_missing_or_empty_download_page_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ls = LabelStudio::start(dir.path());
    let proxy = FaultProxy::start(&ls.url);
    // 110 tasks: downloaded by id in two pages of 100 and 10 (the second one faulted).
    let download = Target::regex(r"^/api/tasks\?.*fields=all");
    let faults = [
        (
            "a 404",
            Action::Status(404, r#"{"detail":"Invalid page."}"#.into()),
        ),
        (
            "an empty page",
            Action::Status(200, r#"{"total":110,"tasks":[]}"#.into()),
        ),
    ];
    let mut wrong = Vec::new();
    for (k, (what, action)) in faults.into_iter().enumerate() {
        let ws = workspace(&ls, &proxy.url, 110, &format!("pages{k}"));
        ws.run(&["apply", "--auto-approve"]);
        // Every task is downloaded, as without a cursor from create.
        ws.forget_created_cursor(&format!("pages{k}"), "demo");
        let pid = ls.project(&format!("annoform/pages{k}/demo")).unwrap();
        let before = ws.samples();
        let edits = [3, 105].map(|i| (i, relabel_first_box(&ls, pid, &before[i])));
        let fault = proxy.rule(Rule::new("GET", download.clone(), action).nth(2));
        let (ok, out) = try_apply(&ws);
        assert_eq!(fault.fired(), 1, "{what} was not served: {out}");
        for lost in changed_besides(&before, &ws.samples(), &[3, 105]) {
            wrong.push(format!(
                "{what} on page 2 (apply {}): {lost}",
                if ok { "exited 0" } else { "failed" }
            ));
        }
        ws.run(&["apply", "--auto-approve"]);
        let after = ws.samples();
        for (i, (id, class)) in &edits {
            if class_of(&after[*i], id).as_deref() != Some(class.as_str()) {
                wrong.push(format!(
                    "{what} on page 2: after a clean re-run, sample {i}'s box {id} is not {class}"
                ));
            }
        }
        for lost in changed_besides(&before, &after, &[3, 105]) {
            wrong.push(format!("{what}: after a clean re-run, {lost}"));
        }
        let plan = ws.plan();
        if !run_actions(&plan).is_empty() {
            wrong.push(format!(
                "{what}: the plan after the re-run is not empty: {plan}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// An empty answer to the incremental refresh's changed-tasks query does not advance the
/// cursor past the changes: a clean re-run merges them.
#[test]
fn an_empty_answer_to_the_refresh_loses_no_annotation() {
    let dir = tempfile::tempdir().unwrap();
    let ls = LabelStudio::start(dir.path());
    let proxy = FaultProxy::start(&ls.url);
    let ws = workspace(&ls, &proxy.url, 6, "refresh");
    ws.run(&["apply", "--auto-approve"]);
    let pid = ls.project("annoform/refresh/demo").unwrap();
    let before = ws.samples();
    let first = relabel_first_box(&ls, pid, &before[0]);
    ws.run(&["apply", "--auto-approve"]);
    assert_eq!(
        class_of(&ws.samples()[0], &first.0),
        Some(first.1),
        "the first merge"
    );
    // Later edits; the refresh asks for the tasks updated since the merge, by id.
    let later = [
        (1, relabel_first_box(&ls, pid, &before[1])),
        (2, relabel_first_box(&ls, pid, &before[2])),
    ];
    let changed = proxy.rule(Rule::new(
        "GET",
        Target::regex(r"^/api/tasks\?.*query="),
        Action::Status(200, r#"{"total":0,"tasks":[]}"#.into()),
    ));
    let (ok, out) = try_apply(&ws);
    assert_eq!(changed.fired(), 1, "the refresh did not ask: {out}");
    ws.run(&["apply", "--auto-approve"]);
    let after = ws.samples();
    let missing: Vec<String> = later
        .iter()
        .filter(|(i, (id, class))| class_of(&after[*i], id).as_deref() != Some(class))
        .map(|(i, (id, class))| format!("sample {i}: box {id} should be {class}"))
        .collect();
    assert!(
        missing.is_empty(),
        "after an empty refresh answer (apply {}) and a clean re-run, annotations were never merged: {missing:?}\nplan now: {}",
        if ok { "exited 0" } else { "failed" },
        ws.run(&["plan"])
    );
}

/// A task deleted by hand in Label Studio is drift: its sample keeps its labels.
#[test]
fn a_task_deleted_by_hand_is_drift_not_a_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let ls = LabelStudio::start(dir.path());
    let ws = workspace(&ls, &ls.url, 6, "handdeleted");
    ws.run(&["apply", "--auto-approve"]);
    let pid = ls.project("annoform/handdeleted/demo").unwrap();
    let before = ws.samples();
    relabel_first_box(&ls, pid, &before[1]);
    let gone = sample_id(&before[3]);
    let task = ls
        .tasks(pid)
        .into_iter()
        .find(|t| t["data"]["sample_id"] == gone.as_str())
        .unwrap();
    let (status, _) = ls.request(
        reqwest::Method::DELETE,
        &format!("/api/tasks/{}", task["id"]),
        None,
    );
    assert_eq!(status, 204);
    let plan = ws.plan();
    let drift = plan["runs"][0]["drift"].to_string();
    let deleted = planned_deletions(&plan, &["ground_truth", "scene", "regions"]);
    let (ok, out) = try_apply(&ws);
    let after = ws.samples();
    let mut wrong = Vec::new();
    if !(drift.contains(&gone) || drift.contains(&task["id"].to_string())) {
        wrong.push(format!(
            "the plan reports no drift for sample {gone} (task {}): drift {drift}, {deleted} deletion(s) planned",
            task["id"]
        ));
    }
    if label_set(&after[3]) != label_set(&before[3]) {
        wrong.push(format!(
            "apply ({}) changed sample 3's labels: {} before, {} after",
            if ok { "exit 0" } else { "failed" },
            label_set(&before[3]).len(),
            label_set(&after[3]).len()
        ));
    }
    assert!(wrong.is_empty(), "{wrong:#?}\n{out}");
}

/// Two workspaces, different datasets, the same `project_name` and run key: the second is
/// refused (the project carries the first run's identity), and neither its apply nor its
/// destroy touches the first's project.
#[test]
fn another_workspaces_project_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ls = LabelStudio::start(dir.path());
    let shared = "backend_config:\n  project_name: shared review\n";
    let a = workspace(&ls, &ls.url, 6, "alpha");
    let b = Ws::new(tempfile::tempdir().unwrap(), &ls, "");
    for ws in [&a, &b] {
        let manifest = ws.path().join("manifests/run.yaml");
        let text = std::fs::read_to_string(&manifest)
            .unwrap()
            .replace("key: review", "key: demo")
            .replace("load:\n", &format!("{shared}load:\n"));
        std::fs::write(&manifest, text).unwrap();
    }
    a.run(&["apply", "--auto-approve"]);
    let pid = ls.project("shared review").expect("A's project");
    let a_tasks = ls.tasks(pid).len();
    let b_before = b.samples();

    let (applied, out) = try_apply(&b);
    let mut wrong = Vec::new();
    if applied {
        wrong.push(format!("B's apply succeeded in A's project:\n{out}"));
    } else if !out.contains("shared review") {
        wrong.push(format!("B's refusal does not name the project:\n{out}"));
    }
    let ours = ls
        .tasks(pid)
        .iter()
        .filter(|t| {
            b_before
                .iter()
                .any(|s| t["data"]["sample_id"] == sample_id(s).as_str())
        })
        .count();
    if ours > 0 {
        wrong.push(format!("B put {ours} task(s) into A's project"));
    }
    if b.samples() != b_before {
        wrong.push("B's apply changed B's dataset".into());
    }
    let destroyed = b
        .command(&["destroy", "--auto-approve"])
        .output()
        .expect("run annoform");
    if ls.project("shared review") != Some(pid) {
        wrong.push(format!(
            "B's destroy (exit {:?}) deleted A's project",
            destroyed.status.code()
        ));
    } else if ls.tasks(pid).len() != a_tasks {
        wrong.push("B's destroy changed A's tasks".into());
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
