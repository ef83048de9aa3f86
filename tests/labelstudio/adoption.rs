//! Adoption after an interruption and ownership of projects found by name, on a real Label
//! Studio.

use super::acceptance::DEMO_PROJECT;
use super::faultproxy::{Action, FaultProxy, Rule, Target};
use super::*;
use std::time::Duration;

const SCHEMA: &str = "  ground_truth: {type: detections, classes: [car, person, bike]}\n";

/// Killed after Label Studio stored the uploaded images and before the task import: the
/// re-run imports the tasks with the images already uploaded, uploading none again.
#[test]
fn killed_after_the_upload_reuses_the_uploaded_files() {
    let dir = tempfile::tempdir().unwrap();
    let ls = LabelStudio::start(dir.path());
    let proxy = FaultProxy::start(&ls.url);
    let ws = Ws::demo(dir, &proxy.url, &ls.token, 12, SCHEMA);
    // The file upload (the task import goes to the same path, committed).
    let upload = proxy
        .kill_at(
            Rule::new(
                "POST",
                Target::regex(r"^/api/projects/\d+/import\?.*\bcommit_to_project=false"),
                Action::HoldAnswer,
            )
            .always(),
            &mut ws.command(&["apply", "--auto-approve"]),
            Duration::from_secs(120),
        )
        .expect("killed once Label Studio stored the upload");
    let pid = ls.project(DEMO_PROJECT).unwrap();
    assert!(ls.tasks(pid).is_empty(), "killed before the import");
    let uploads = upload.matched();

    ws.run(&["apply", "--auto-approve"]);
    assert_eq!(upload.matched(), uploads, "no image uploaded again");
    let files = ls.get(&format!("/api/projects/{pid}/file-uploads?all=true"));
    assert_eq!(files.as_array().unwrap().len(), 12, "{files}");
    let tasks = ls.tasks(pid);
    assert_eq!(tasks.len(), 12);
    assert!(tasks.iter().all(|t| {
        t["data"]["image"]
            .as_str()
            .unwrap()
            .starts_with("/data/upload/")
    }));
    assert!(run_actions(&ws.plan()).is_empty());
}

/// Two workspaces with the same `project_name` (through `${env:...}`) and run key over
/// different datasets: the second refuses the first's project, and its destroy leaves it.
#[test]
fn another_workspaces_project_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ls = LabelStudio::start(dir.path());
    let named = |ws: &Ws| {
        let path = ws.path().join("manifests/run.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            format!("{text}backend_config:\n  project_name: ${{env:TEAM}}-review\n"),
        )
        .unwrap();
    };
    let team = |ws: &Ws, args: &[&str]| {
        let out = ws.command(args).env("TEAM", "vision").output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let a = Ws::demo(dir, &ls.url, &ls.token, 4, SCHEMA);
    named(&a);
    assert!(team(&a, &["apply", "--auto-approve"]).0);
    let pid = ls.project("vision-review").expect("the name is resolved");
    assert_eq!(ls.tasks(pid).len(), 4);

    let b = Ws::demo(tempfile::tempdir().unwrap(), &ls.url, &ls.token, 6, SCHEMA);
    named(&b);
    let (ok, stderr) = team(&b, &["apply", "--auto-approve"]);
    assert!(!ok);
    assert!(
        stderr.contains(&format!(
            "project `vision-review` ({pid}) belongs to run `demo`"
        )) && stderr.contains("project_name"),
        "{stderr}"
    );
    assert_eq!(ls.tasks(pid).len(), 4, "B added nothing");
    assert!(team(&b, &["destroy", "--auto-approve"]).0);
    assert_eq!(
        ls.project("vision-review"),
        Some(pid),
        "B's destroy spares it"
    );
    let (ok, _) = team(&a, &["destroy", "--auto-approve"]);
    assert!(ok);
    assert_eq!(ls.project("vision-review"), None);
}

/// A batch recorded with its tasks but not its labels (an apply killed between the two
/// steps): the re-run gives each task its prediction back, once, and nothing merges from the
/// batch before.
#[test]
fn a_batch_left_without_predictions_gets_them_once() {
    let dir = tempfile::tempdir().unwrap();
    let ls = LabelStudio::start(dir.path());
    let ws = Ws::demo(dir, &ls.url, &ls.token, 4, SCHEMA);
    ws.run(&["apply", "--auto-approve"]);
    let pid = ls.project(DEMO_PROJECT).unwrap();
    let predicted = |ls: &LabelStudio| -> Vec<(String, usize, usize)> {
        let mut out: Vec<(String, usize, usize)> = ls
            .tasks(pid)
            .iter()
            .map(|t| {
                let ps = t["predictions"].as_array().unwrap();
                let results = ps
                    .iter()
                    .map(|p| p["result"].as_array().map_or(0, Vec::len))
                    .sum();
                (
                    t["data"]["sample_id"].as_str().unwrap().to_string(),
                    ps.len(),
                    results,
                )
            })
            .collect();
        out.sort();
        out
    };
    let uploaded = predicted(&ls);
    assert!(
        uploaded.iter().any(|(_, n, r)| *n == 1 && *r > 0),
        "{uploaded:?}"
    );
    for t in ls.tasks(pid) {
        for p in t["predictions"].as_array().unwrap() {
            let (status, _) = ls.request(
                reqwest::Method::DELETE,
                &format!("/api/predictions/{}", p["id"]),
                None,
            );
            assert_eq!(status, 204);
        }
    }
    let path = ws.path().join(".annoform/state/demo/demo.json");
    let mut record: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    record["labels_pending"] = json!([0]);
    record["uploaded"] = json!({});
    std::fs::write(&path, serde_json::to_vec_pretty(&record).unwrap()).unwrap();

    let plan = ws.plan();
    assert_eq!(run_actions(&plan), ["extend"], "{plan:#}");
    ws.run(&["apply", "--auto-approve"]);
    let expected: Vec<(String, usize, usize)> = uploaded
        .iter()
        .map(|(s, n, r)| (s.clone(), *n.min(&1), *r))
        .collect();
    assert_eq!(predicted(&ls), expected);
    assert!(run_actions(&ws.plan()).is_empty());
    ws.run(&["apply", "--auto-approve"]);
    assert_eq!(predicted(&ls), expected, "nothing uploaded twice");
}
