//! Adoption after an interruption, and ownership of projects found by name.

use super::*;

const QUICKSTART: &str = "datasets/quickstart";

fn run(key: &str, extra: &str) -> String {
    format!(
        "apiVersion: annoform/v1\nkind: AnnotationRun\nkey: {key}\ndataset: ds\nview:\n  - limit: 4\nlabel_schema:\n  ground_truth:\n    type: detections\n    classes: [car, person, bike]\n    attributes: false\nload:\n  when: always\nbackend_config:\n  task_size: 2\n{extra}"
    )
}

/// Shapes and tags a task holds.
fn held(cvat: &Cvat, task: u64) -> usize {
    let a = cvat.annotations(task);
    a["shapes"].as_array().unwrap().len() + a["tags"].as_array().unwrap().len()
}

/// The detections of the first `n` samples.
fn dataset_labels(ws: &Ws, n: usize) -> usize {
    ws.samples()
        .iter()
        .take(n)
        .map(|s| {
            s["ground_truth"]["detections"]
                .as_array()
                .map_or(0, Vec::len)
        })
        .sum()
}

/// Apply stopped after the second task's media went up and before its labels did (the label
/// upload refused, and so the clean-up of the task): whether the record got to note the task
/// or not, the re-run uploads exactly its missing labels, and the merge deletes nothing.
#[test]
fn a_task_left_without_labels_gets_them_once() {
    for recorded in [true, false] {
        let cvat = Cvat::start();
        let ws = Ws::new(&cvat, QUICKSTART, "");
        ws.manifest("run.yaml", &run("review", ""));
        ws.apply();
        // A second batch: its label upload and the task's deletion are refused.
        ws.manifest(
            "run.yaml",
            &run("review", "").replace("limit: 4", "limit: 6"),
        );
        cvat.fake.refuse("PATCH", "tasks/*/annotations", 1);
        cvat.fake.refuse("PUT", "tasks/*/annotations", 1);
        cvat.fake.refuse("DELETE", "tasks/*", 1);
        let (ok, _, stderr) = ws.try_run(&["apply", "--auto-approve"]);
        assert!(!ok, "the label upload was refused: {stderr}");
        let pid = cvat.project("annoform/ds/review").unwrap();
        let tasks = cvat.tasks(pid);
        assert_eq!(tasks.len(), 3, "the new task holds its media");
        let third = tasks[2]["id"].as_u64().unwrap();
        assert_eq!(held(&cvat, third), 0);
        if !recorded {
            // As if killed before the record noted the task.
            let path = ws.path().join(".annoform/state/ds/review.json");
            let mut r = ws.record("review");
            r["tasks"].as_array_mut().unwrap().truncate(2);
            r["samples"].as_array_mut().unwrap().truncate(4);
            r.as_object_mut().unwrap().remove("labels_pending");
            std::fs::write(&path, serde_json::to_vec_pretty(&r).unwrap()).unwrap();
        }
        ws.apply();
        assert_eq!(
            cvat.tasks(pid).len(),
            3,
            "recorded={recorded}: no second task"
        );
        let want = dataset_labels(&ws, 6) - dataset_labels(&ws, 4);
        assert!(want > 0);
        assert_eq!(held(&cvat, third), want, "recorded={recorded}");
        assert!(ws.record("review").get("labels_pending").is_none());
        // Again: nothing is uploaded twice.
        ws.apply();
        assert_eq!(held(&cvat, third), want, "recorded={recorded}");
        // Annotators accept everything as it is: nothing to merge, nothing deleted.
        for t in cvat.tasks(pid) {
            cvat.complete(t["id"].as_u64().unwrap());
        }
        let plan = ws.plan();
        assert_eq!(counts(&plan, "ground_truth")[2], 0, "{plan:#}");
        assert!(actions(&plan).is_empty(), "recorded={recorded}: {plan:#}");
    }
}

/// A task whose media was attached before an interruption is reused as it is: no image is
/// uploaded again.
#[test]
fn a_task_with_its_media_is_not_uploaded_again() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, QUICKSTART, "");
    ws.manifest("run.yaml", &run("review", ""));
    cvat.fake.refuse("PATCH", "tasks/*/annotations", 1);
    cvat.fake.refuse("PUT", "tasks/*/annotations", 1);
    cvat.fake.refuse("DELETE", "tasks/*", 1);
    let (ok, _, _) = ws.try_run(&["apply", "--auto-approve"]);
    assert!(!ok);
    let pid = cvat.project("annoform/ds/review").unwrap();
    let first = cvat.tasks(pid)[0]["id"].as_u64().unwrap();
    // Any further data upload is refused: the re-run must not need one for this task.
    cvat.fake
        .refuse("POST", &format!("tasks/{first}/data"), 100);
    ws.apply();
    let tasks = cvat.tasks(pid);
    assert_eq!(tasks.len(), 2);
    assert_eq!(tasks[0]["id"].as_u64(), Some(first));
    assert_eq!(held(&cvat, first), dataset_labels(&ws, 2));
}

/// Two workspaces with the same project name and run key over different samples: the second
/// refuses the first's project, naming it and its owner; its destroy leaves it alone, and
/// `${env:...}` in `project_name` is resolved.
#[test]
fn another_workspaces_project_is_refused() {
    let cvat = Cvat::start();
    let name = "  project_name: ${env:TEAM}-review\n";
    let a = Ws::new(&cvat, QUICKSTART, "");
    a.manifest("run.yaml", &run("review", name));
    let team = |ws: &Ws, args: &[&str]| {
        let out = ws.command(args).env("TEAM", "vision").output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert!(team(&a, &["apply", "--auto-approve"]).0);
    let pid = cvat.project("vision-review").expect("the name is resolved");
    let b = Ws::new(&cvat, QUICKSTART, "");
    b.manifest(
        "run.yaml",
        &run("review", name).replace("limit: 4", "skip: 4"),
    );
    let (ok, stderr) = team(&b, &["apply", "--auto-approve"]);
    assert!(!ok);
    assert!(
        stderr.contains(&format!("project `vision-review` ({pid})"))
            && stderr.contains("belongs to run `review` of dataset `ds`")
            && stderr.contains("project_name"),
        "{stderr}"
    );
    assert_eq!(cvat.tasks(pid).len(), 2, "B added nothing");
    let before = b.samples();
    assert!(team(&b, &["destroy", "--auto-approve"]).0);
    assert_eq!(cvat.project("vision-review"), Some(pid));
    assert_eq!(b.samples(), before);
    let out = a
        .command(&["plan", "--json"])
        .env("TEAM", "vision")
        .output()
        .unwrap();
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["changes"], false, "{plan:#}");
}
