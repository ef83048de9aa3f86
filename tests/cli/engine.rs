//! The plan/apply engine through the real CLI, against the test backend (a custom-protocol
//! program keeping its objects in a JSON file): create, merge, update, replace, extend,
//! destroy, drift, stale plans, locks, targets and crash recovery.

use crate::fs::{copy_dir, test_backend};
use crate::{Output, Workspace, repo};
use serde_json::{Value, json};
use std::path::PathBuf;

const RUN: &str =
    "apiVersion: annoform/v1\nkind: AnnotationRun\nkey: review\ndataset: quickstart\n";

/// A workspace with a writable copy of the demo dataset and the test backend as default.
fn engine_workspace(manifest: &str) -> Workspace {
    let ws = Workspace::empty().env("ANNOFORM_NOW", "2026-01-01T00:00:00.000Z");
    copy_dir(
        &repo().join("tests/fixtures/fiftyone-1.22.1/image-all-label-types"),
        &ws.path().join("datasets/quickstart"),
    );
    ws.write(
        "annoform.toml",
        &format!(
            "default_backend = \"fake\"\n[datasets.quickstart]\npath = \"datasets/quickstart\"\n[backends.fake]\ncommand = [\"{}\", \"{}\"]\n",
            test_backend().display(),
            ws.path().join("backend.json").display()
        ),
    );
    ws.write("manifests/run.yaml", manifest);
    ws
}

fn ok(out: Output) -> Output {
    assert_eq!(
        out.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    out
}

fn plan_json(ws: &Workspace) -> Value {
    let out = ok(ws.run(&["plan", "--json"]));
    serde_json::from_str(&out.stdout).unwrap()
}

fn backend(ws: &Workspace) -> Value {
    serde_json::from_str(&std::fs::read_to_string(ws.path().join("backend.json")).unwrap()).unwrap()
}

fn save_backend(ws: &Workspace, v: &Value) {
    std::fs::write(
        ws.path().join("backend.json"),
        serde_json::to_string_pretty(v).unwrap(),
    )
    .unwrap();
}

fn samples(ws: &Workspace) -> Vec<Value> {
    let text = std::fs::read_to_string(ws.path().join("datasets/quickstart/samples.json")).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["samples"]
        .as_array()
        .unwrap()
        .clone()
}

fn state_bytes(ws: &Workspace) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for dir in [
        ws.path().join(".annoform/state/quickstart"),
        ws.path().join("datasets/quickstart"),
    ] {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_file() {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Mark every task complete; `edit` changes the annotations of each sample.
fn annotate(ws: &Workspace, mut edit: impl FnMut(&str, &mut Vec<Value>)) {
    let mut store = backend(ws);
    let clock = store["clock"].as_u64().unwrap_or(0) + 1;
    store["clock"] = json!(clock);
    for p in store["projects"].as_array_mut().unwrap() {
        for t in p["tasks"].as_array_mut().unwrap() {
            t["updated"] = json!(clock);
            t["status"] = json!("completed");
            t["complete"] = json!(true);
            for (sample, fields) in t["annotations"].as_object_mut().unwrap() {
                let labels = fields["ground_truth"].as_array_mut().unwrap();
                edit(sample, labels);
            }
        }
    }
    save_backend(ws, &store);
}

fn project_count(ws: &Workspace) -> usize {
    backend(ws)["projects"].as_array().unwrap().len()
}

fn task_names(ws: &Workspace) -> Vec<String> {
    let mut names: Vec<String> = backend(ws)["projects"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            p["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_string())
        })
        .collect();
    names.sort();
    names
}

const FIRST: &str = "6b02536263110a1e76c075f7";

#[test]
fn create_merge_and_converge() {
    let ws = engine_workspace(&format!(
        "{RUN}view:\n  - match_tags: train\nlabel_field: ground_truth\n"
    ));
    let plan = plan_json(&ws);
    assert_eq!(plan["runs"][0]["actions"], json!(["create"]));
    assert_eq!(plan["runs"][0]["samples"], 3);
    assert_eq!(plan["runs"][0]["tasks"], 1);
    assert_eq!(plan["runs"][0]["fields"]["ground_truth"]["upload"], 6);
    assert_eq!(plan["changes"], true);

    ok(ws.run(&["apply", "--auto-approve"]));
    assert_eq!(project_count(&ws), 1);
    assert_eq!(
        task_names(&ws),
        vec!["annoform/quickstart/review/batch-0000"]
    );
    // Nothing to do until annotators finish.
    let out = ws.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.code, 0, "{}", out.stdout);

    // Annotators: relabel the first box, delete the second, add a new one, on the first sample.
    annotate(&ws, |sample, labels| {
        if sample == FIRST {
            labels[0]["label"]["label"] = json!("bike");
            labels.remove(1);
            labels.push(json!({"backend_id": "new-1", "label": {"_cls": "Detection", "label": "car", "bounding_box": [0.6, 0.6, 0.1, 0.1]}}));
        }
    });
    let plan = plan_json(&ws);
    assert_eq!(plan["runs"][0]["actions"], json!(["merge"]));
    assert_eq!(
        plan["runs"][0]["fields"]["ground_truth"],
        json!({"upload": 0, "added": 1, "edited": 1, "deleted": 1, "rejected": 0, "unchanged": 4,
               "unexpected": 0, "edits": {"label": 1, "geometry": 0, "index": 0, "attributes": 0}})
    );
    let details = plan["runs"][0]["details"].as_array().unwrap();
    assert_eq!(details.len(), 1, "{details:?}");
    let changes = &details[0];
    assert_eq!(
        (&changes["kind"], &changes["sample_id"], &changes["field"]),
        (
            &json!("sample_changes"),
            &json!(FIRST),
            &json!("ground_truth")
        ),
        "{changes:#}"
    );
    let ops = changes["changes"].as_array().unwrap();
    assert_eq!(
        ops[..2],
        [
            json!({"op": "edited", "label_id": "6b02535c63110a1e76c075c0", "applied": ["label"]}),
            json!({"op": "deleted", "label_id": "6b02535c63110a1e76c075c1"}),
        ],
        "{changes:#}"
    );
    assert_eq!(
        (&ops[2]["op"], &ops[2]["class"]),
        (&json!("added"), &json!("car"))
    );
    // The sentence the text plan shows for it, under -v.
    let out = ws.run(&["plan", "-v"]);
    assert!(
        out.stdout.contains(&format!(
            "# sample {FIRST} ground_truth: ~6b02535c63110a1e76c075c0 (label)"
        )),
        "{}",
        out.stdout
    );
    let out = ws.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.code, 2);

    ok(ws.run(&["apply", "--auto-approve"]));
    let first = samples(&ws)
        .into_iter()
        .find(|s| s["_id"]["$oid"] == FIRST)
        .unwrap();
    let dets = first["ground_truth"]["detections"].as_array().unwrap();
    assert_eq!(dets.len(), 2);
    assert_eq!(dets[0]["label"], "bike");
    assert_eq!(
        dets[0]["_id"]["$oid"], "6b02535c63110a1e76c075c0",
        "edited labels keep their id"
    );
    assert_eq!(
        dets[0]["color"], "red",
        "attributes outside the edit are untouched"
    );
    assert_eq!(dets[1]["label"], "car");

    // Converged: plan is empty and a second apply changes no byte.
    let out = ws.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let before = state_bytes(&ws);
    ok(ws.run(&["apply", "--auto-approve"]));
    assert_eq!(state_bytes(&ws), before);
}

#[test]
fn restrictions_reject_and_report() {
    let ws = engine_workspace(&format!(
        "{RUN}view:\n  - limit: 1\nlabel_schema:\n  ground_truth:\n    allow_deletions: false\n    allow_label_edits: false\n"
    ));
    ok(ws.run(&["apply", "--auto-approve"]));
    annotate(&ws, |_, labels| {
        labels[0]["label"]["label"] = json!("bike");
        labels.remove(1);
    });
    let plan = plan_json(&ws);
    assert_eq!(plan["runs"][0]["fields"]["ground_truth"]["rejected"], 2);
    let reasons: Vec<&serde_json::Value> = plan["runs"][0]["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["reason"])
        .collect();
    assert_eq!(
        reasons,
        [
            &json!({"kind": "restricted", "restriction": "allow_label_edits"}),
            &json!({"kind": "restricted", "restriction": "allow_deletions"})
        ]
    );
    ok(ws.run(&["apply", "--auto-approve"]));
    let first = &samples(&ws)[0];
    assert_eq!(
        first["ground_truth"]["detections"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(first["ground_truth"]["detections"][0]["label"], "car");
    // Rejected changes do not keep the run dirty.
    assert_eq!(plan_json(&ws)["changes"], false);
}

#[test]
fn unexpected_labels_follow_load_unexpected() {
    let manifest = |policy: &str| {
        format!(
            "{RUN}view:\n  - limit: 1\nlabel_schema:\n  ground_truth:\n    classes: [car, person]\nload:\n  unexpected: {policy}\n"
        )
    };
    let truck = || json!({"backend_id": "t-1", "label": {"_cls": "Detection", "label": "truck", "bounding_box": [0.2, 0.2, 0.1, 0.1]}});

    // A polyline drawn in the detections field, as a backend lists a label of another type.
    let polyline = || {
        json!({"backend_id": "p-1", "label": {"_cls": "Polyline", "label": "car",
        "points": [[[0.1, 0.1], [0.2, 0.2]]], "closed": false, "filled": false},
        "misfit": {"label_type": "polylines", "reason": "a polyline in a detections field"}})
    };

    let ws = engine_workspace(&manifest("keep"));
    ok(ws.run(&["apply", "--auto-approve"]));
    annotate(&ws, |_, labels| {
        labels.push(truck());
        labels.push(polyline());
    });
    let plan = plan_json(&ws);
    let gt = &plan["runs"][0]["fields"]["ground_truth"];
    assert_eq!(
        (&gt["added"], &gt["unexpected"]),
        (&json!(1), &json!(1)),
        "{plan:#}"
    );
    assert_eq!(
        plan["runs"][0]["unexpected"][0]["dest"], "polylines",
        "{plan:#}"
    );
    ok(ws.run(&["apply", "--auto-approve"]));
    let first = &samples(&ws)[0];
    let gt = first["ground_truth"]["detections"].as_array().unwrap();
    assert_eq!(gt.len(), 3);
    assert_eq!(
        gt[2]["label"], "truck",
        "a class outside the schema goes into the run's field, as FiftyOne merges it"
    );
    let lines = first["polylines"]["polylines"].as_array().unwrap();
    assert_eq!(
        lines.last().unwrap()["label"],
        "car",
        "another type is kept in a field named after the type, next to its labels"
    );
    assert_eq!(plan_json(&ws)["changes"], false);

    let ws = engine_workspace(&manifest("error"));
    ok(ws.run(&["apply", "--auto-approve"]));
    annotate(&ws, |_, labels| labels.push(truck()));
    let out = ws.run(&["plan"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("class `truck`"), "{}", out.stderr);

    let ws = engine_workspace(&manifest("report"));
    ok(ws.run(&["apply", "--auto-approve"]));
    annotate(&ws, |_, labels| labels.push(truck()));
    let plan = plan_json(&ws);
    assert_eq!(plan["runs"][0]["fields"]["ground_truth"]["rejected"], 1);
    let reason = &plan["runs"][0]["rejected"][0]["reason"];
    assert_eq!(
        (&reason["kind"], &reason["policy"]),
        (&json!("unexpected"), &json!("report")),
        "{reason}"
    );
    let out = ws.run(&["plan"]);
    assert!(
        out.stdout.contains("(load.unexpected=report)"),
        "{}",
        out.stdout
    );
}

#[test]
fn dest_field_receives_the_merge_and_the_source_stays() {
    let ws = engine_workspace(&format!(
        "{RUN}view:\n  - limit: 1\nlabel_field: ground_truth\nload:\n  dest_field: reviewed\n"
    ));
    ok(ws.run(&["apply", "--auto-approve"]));
    annotate(&ws, |_, labels| labels[0]["label"]["label"] = json!("bike"));
    ok(ws.run(&["apply", "--auto-approve"]));
    let first = &samples(&ws)[0];
    assert_eq!(
        first["ground_truth"]["detections"][0]["label"], "car",
        "the source is untouched"
    );
    assert_eq!(first["reviewed"]["detections"][0]["label"], "bike");
    assert_eq!(first["reviewed"]["detections"].as_array().unwrap().len(), 2);
    let meta =
        std::fs::read_to_string(ws.path().join("datasets/quickstart/metadata.json")).unwrap();
    assert!(
        meta.contains("\"reviewed\""),
        "the destination is declared for FiftyOne"
    );
    assert_eq!(plan_json(&ws)["changes"], false);
}

#[test]
fn schema_changes_update_in_place_or_replace() {
    let manifest = |classes: &str| {
        format!(
            "{RUN}view:\n  - limit: 2\nlabel_schema:\n  ground_truth:\n    classes: [{classes}]\n"
        )
    };
    let ws = engine_workspace(&manifest("car, person"));
    ok(ws.run(&["apply", "--auto-approve"]));
    ws.write("manifests/run.yaml", &manifest("car, person, truck"));
    assert_eq!(plan_json(&ws)["runs"][0]["actions"], json!(["update"]));
    ok(ws.run(&["apply", "--auto-approve"]));
    assert_eq!(
        backend(&ws)["projects"][0]["schema"]["fields"]["ground_truth"]["classes"],
        json!(["car", "person", "truck"])
    );
    assert_eq!(plan_json(&ws)["changes"], false);

    // Removing a class cannot be done in place: the run is replaced.
    ws.write("manifests/run.yaml", &manifest("car, person"));
    assert_eq!(plan_json(&ws)["runs"][0]["actions"], json!(["replace"]));
    ok(ws.run(&["apply", "--auto-approve"]));
    assert_eq!(project_count(&ws), 1);

    // A backend that cannot update in place replaces even for additions.
    let ws2 =
        engine_workspace(&manifest("car, person")).env("TEST_BACKEND_SCHEMA_IN_PLACE", "false");
    ok(ws2.run(&["apply", "--auto-approve"]));
    ws2.write("manifests/run.yaml", &manifest("car, person, truck"));
    assert_eq!(plan_json(&ws2)["runs"][0]["actions"], json!(["replace"]));
}

#[test]
fn new_samples_extend_and_removed_runs_are_destroyed() {
    let manifest = |n: u32| {
        format!(
            "{RUN}view:\n  - limit: {n}\nlabel_field: ground_truth\nbackend_config:\n  task_size: 2\n"
        )
    };
    let ws = engine_workspace(&manifest(2));
    ok(ws.run(&["apply", "--auto-approve"]));
    ws.write("manifests/run.yaml", &manifest(5));
    let plan = plan_json(&ws);
    assert_eq!(plan["runs"][0]["actions"], json!(["extend"]));
    assert_eq!(plan["runs"][0]["samples"], 5);
    assert_eq!(plan["runs"][0]["tasks"], 3);
    assert_eq!(plan["runs"][0]["fields"]["ground_truth"]["upload"], 6);
    ok(ws.run(&["apply", "--auto-approve"]));
    assert_eq!(task_names(&ws).len(), 3);

    std::fs::remove_file(ws.path().join("manifests/run.yaml")).unwrap();
    ws.write("manifests/other.yaml", "apiVersion: annoform/v1\nkind: AnnotationRun\nkey: other\ndataset: quickstart\nlabel_field: cls\nview:\n  - limit: 1\n");
    let plan = plan_json(&ws);
    let actions: Vec<&Value> = plan["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["actions"])
        .collect();
    assert_eq!(actions, vec![&json!(["create"]), &json!(["destroy"])]);
    ok(ws.run(&["apply", "--auto-approve", "--target", "review"]));
    assert_eq!(
        project_count(&ws),
        0,
        "--target limits apply to the destroyed run"
    );
    assert_eq!(plan_json(&ws)["runs"].as_array().unwrap().len(), 1);
    let samples_after = samples(&ws);
    assert_eq!(
        samples_after[0]["ground_truth"]["detections"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "destroy never touches labels"
    );
}

#[test]
fn prevent_destroy_is_honoured() {
    let ws = engine_workspace(&format!(
        "{RUN}view:\n  - limit: 1\nlabel_field: ground_truth\nlifecycle:\n  prevent_destroy: true\n"
    ));
    ok(ws.run(&["apply", "--auto-approve"]));
    std::fs::remove_file(ws.path().join("manifests/run.yaml")).unwrap();
    ws.write("manifests/keep.yaml", "# nothing\n---\napiVersion: annoform/v1\nkind: AnnotationRun\nkey: other\ndataset: quickstart\nlabel_field: cls\nview: [{limit: 1}]\n");
    let out = ws.run(&["plan"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("protected from destroy: its manifest is gone"),
        "{}",
        out.stderr
    );
    let out = ws.run(&["destroy", "--auto-approve", "--target", "review"]);
    assert_eq!(out.code, 1);
    assert_eq!(project_count(&ws), 1);
}

#[test]
fn drift_is_detected_and_healed() {
    let ws = engine_workspace(&format!(
        "{RUN}view:\n  - limit: 2\nlabel_field: ground_truth\nbackend_config:\n  task_size: 1\n"
    ));
    ok(ws.run(&["apply", "--auto-approve"]));
    let mut store = backend(&ws);
    store["projects"][0]["tasks"]
        .as_array_mut()
        .unwrap()
        .remove(0);
    save_backend(&ws, &store);
    let plan = plan_json(&ws);
    assert_eq!(plan["runs"][0]["actions"], json!(["drift"]));
    assert_eq!(plan["runs"][0]["drift"].as_array().unwrap().len(), 1);
    ok(ws.run(&["apply", "--auto-approve"]));
    assert_eq!(task_names(&ws).len(), 2);
    assert_eq!(plan_json(&ws)["changes"], false);

    // The whole project deleted outside annoform: recreated with all its tasks.
    let mut store = backend(&ws);
    store["projects"] = json!([]);
    save_backend(&ws, &store);
    let plan = plan_json(&ws);
    assert_eq!(plan["runs"][0]["actions"], json!(["drift"]));
    assert_eq!(
        plan["runs"][0]["drift"][0]["kind"], "project_missing",
        "{plan:#}"
    );
    ok(ws.run(&["apply", "--auto-approve"]));
    assert_eq!(project_count(&ws), 1);
    assert_eq!(task_names(&ws).len(), 2);
    assert_eq!(plan_json(&ws)["changes"], false);
}

#[test]
fn a_stale_plan_file_is_refused() {
    let ws = engine_workspace(&format!(
        "{RUN}view:\n  - limit: 1\nlabel_field: ground_truth\n"
    ));
    ok(ws.run(&["plan", "--out", "first.plan"]));
    let shown = ok(ws.run(&["show", "first.plan", "--json"]));
    assert_eq!(
        serde_json::from_str::<Value>(&shown.stdout).unwrap()["summary"]["create"],
        1
    );
    ok(ws.run(&["apply", "first.plan"]));
    ok(ws.run(&["plan", "--out", "second.plan"]));
    // Annotations change after the plan was made: the plan is stale.
    annotate(&ws, |_, labels| labels[0]["label"]["label"] = json!("bike"));
    ok(ws.run(&["plan", "--out", "third.plan"]));
    annotate(&ws, |_, labels| {
        labels[0]["label"]["label"] = json!("person")
    });
    let out = ws.run(&["apply", "third.plan"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("is stale"), "{}", out.stderr);
}

#[test]
fn a_held_lock_names_its_holder() {
    let ws = engine_workspace(&format!("{RUN}label_field: ground_truth\n"));
    let holder = json!({"pid": std::process::id(), "host": hostname(), "command": "apply", "since": "2026-01-01T00:00:00Z"});
    ws.write(".annoform/lock", &holder.to_string());
    let out = ws.run(&["apply", "--auto-approve", "--lock-timeout", "0"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains(&format!("{}", std::process::id())),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("state unlock --force"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("waiting"), "no wait: {}", out.stderr);
    // Given time, it says once that it waits, and for whom.
    let out = ws.run(&["apply", "--auto-approve", "--lock-timeout", "1"]);
    assert_eq!(out.code, 1);
    let note = format!(
        "waiting for the state lock held by pid {} on host {} (`annoform apply`) since 2026-01-01T00:00:00Z…",
        std::process::id(),
        hostname()
    );
    assert_eq!(
        out.stderr.lines().filter(|l| *l == note).count(),
        1,
        "{}",
        out.stderr
    );
    ok(ws.run(&["state", "unlock", "--force"]));
    ok(ws.run(&["apply", "--auto-approve"]));
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

#[test]
fn env_references_are_resolved_at_run_time_and_never_recorded() {
    let ws = engine_workspace(&format!("{RUN}view:\n  - limit: 1\nlabel_field: ground_truth\nbackend_config:\n  url: ${{env:FAKE_URL}}\n"))
        .env("FAKE_URL", "http://fake.invalid:1234");
    let toml = std::fs::read_to_string(ws.path().join("annoform.toml")).unwrap();
    ws.write(
        "annoform.toml",
        &format!("{toml}api_key = \"${{env:FAKE_KEY}}\"\n"),
    );
    let ws = ws.env("FAKE_KEY", "s3cret-value");
    ok(ws.run(&["apply", "--auto-approve"]));
    let record =
        std::fs::read_to_string(ws.path().join(".annoform/state/quickstart/review.json")).unwrap();
    assert!(
        !record.contains("${env:")
            && !record.contains("s3cret")
            && !record.contains("fake.invalid"),
        "{record}"
    );
    let plan = ok(ws.run(&["plan", "--json"]));
    assert!(!plan.stdout.contains("s3cret"));
}

#[test]
fn apply_without_a_terminal_needs_auto_approve() {
    let ws = engine_workspace(&format!("{RUN}label_field: ground_truth\n"));
    let out = ws.run(&["apply"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("--auto-approve"), "{}", out.stderr);
    assert_eq!(project_count_or_zero(&ws), 0);
}

fn project_count_or_zero(ws: &Workspace) -> usize {
    if ws.path().join("backend.json").exists() {
        project_count(ws)
    } else {
        0
    }
}

#[test]
fn runs_status_import_and_init() {
    let ws = engine_workspace(&format!(
        "{RUN}view:\n  - limit: 2\nlabel_field: ground_truth\nbackend_config:\n  task_size: 1\n"
    ));
    ok(ws.run(&["apply", "--auto-approve"]));
    let list = ok(ws.run(&["runs", "list"]));
    assert!(
        list.stdout.contains("review") && list.stdout.contains("quickstart"),
        "{}",
        list.stdout
    );
    let status = ok(ws.run(&["status"]));
    assert!(
        status.stdout.contains("0/2 task(s) complete"),
        "{}",
        status.stdout
    );
    let info: Value =
        serde_json::from_str(&ok(ws.run(&["runs", "info", "review"])).stdout).unwrap();
    assert_eq!(info["tasks"].as_array().unwrap().len(), 2);

    // Forget the record, then adopt the backend objects again.
    ok(ws.run(&["runs", "delete", "review"]));
    assert_eq!(plan_json(&ws)["runs"][0]["actions"], json!(["create"]));
    ok(ws.run(&["import", "review"]));
    let again: Value =
        serde_json::from_str(&ok(ws.run(&["runs", "info", "review"])).stdout).unwrap();
    assert_eq!(again["tasks"], info["tasks"]);
    assert_eq!(again["samples"], info["samples"]);
    assert_eq!(plan_json(&ws)["changes"], false);

    ok(ws.run(&["runs", "rename", "review", "renamed"]));
    assert!(ok(ws.run(&["runs", "list"])).stdout.contains("renamed"));

    let fresh = Workspace::empty();
    ok(fresh.run(&["init"]));
    assert!(fresh.path().join("annoform.toml").exists());
    assert!(
        std::fs::read_to_string(fresh.path().join(".gitignore"))
            .unwrap()
            .contains(".annoform/")
    );
    assert_eq!(fresh.run(&["init"]).code, 1, "init never overwrites");
}

/// Kill annoform at every backend step of a multi-task apply in turn; each time a re-run
/// converges to the same state with no duplicate backend objects.
#[test]
fn interrupted_applies_resume_without_duplicates() {
    let manifest = format!("{RUN}label_field: ground_truth\nbackend_config:\n  task_size: 2\n");
    let steps = [
        "create_project:1",
        "list_tasks:1",
        "create_task:1",
        "create_task:2",
        "create_task:3",
    ];
    for step in steps {
        let ws = engine_workspace(&manifest);
        let crashed = ws.run_with(
            &["apply", "--auto-approve"],
            &[("TEST_BACKEND_CRASH", step)],
        );
        assert_ne!(crashed.code, 0, "{step}: apply should have been killed");
        ok(ws.run(&["apply", "--auto-approve"]));
        assert_eq!(project_count(&ws), 1, "{step}");
        assert_eq!(
            task_names(&ws),
            vec![
                "annoform/quickstart/review/batch-0000",
                "annoform/quickstart/review/batch-0001",
                "annoform/quickstart/review/batch-0002"
            ],
            "{step}"
        );
        let info: Value =
            serde_json::from_str(&ok(ws.run(&["runs", "info", "review"])).stdout).unwrap();
        assert_eq!(info["samples"].as_array().unwrap().len(), 5, "{step}");
        assert_eq!(plan_json(&ws)["changes"], false, "{step}");
    }
    // Errors (instead of kills) at each step leave a resumable state too.
    for step in ["create_project:1", "create_task:2", "download:1"] {
        let ws = engine_workspace(&manifest);
        let failed = ws.run_with(&["apply", "--auto-approve"], &[("TEST_BACKEND_FAIL", step)]);
        if step.starts_with("download") {
            ok(failed);
            annotate(&ws, |_, labels| labels[0]["label"]["label"] = json!("bike"));
            let failed = ws.run_with(&["apply", "--auto-approve"], &[("TEST_BACKEND_FAIL", step)]);
            assert_eq!(failed.code, 1);
            assert!(
                failed.stderr.contains("injected failure"),
                "{}",
                failed.stderr
            );
        } else {
            assert_eq!(failed.code, 1, "{step}");
            assert!(
                failed.stderr.contains("re-run the command to resume"),
                "{}",
                failed.stderr
            );
        }
        ok(ws.run(&["apply", "--auto-approve"]));
        assert_eq!(task_names(&ws).len(), 3, "{step}");
        assert_eq!(plan_json(&ws)["changes"], false, "{step}");
    }
}

/// A merge interrupted after the dataset was written and before the record was saved is
/// finished by the next apply without duplicating labels.
#[test]
fn an_interrupted_merge_never_duplicates_labels() {
    let ws = engine_workspace(&format!(
        "{RUN}view:\n  - limit: 1\nlabel_field: ground_truth\n"
    ));
    ok(ws.run(&["apply", "--auto-approve"]));
    annotate(&ws, |_, labels| {
        labels.push(json!({"backend_id": "new-1", "label": {"_cls": "Detection", "label": "car", "bounding_box": [0.6, 0.6, 0.1, 0.1]}}));
    });
    // Simulate the crash: the merge wrote the dataset, but the record is the one from before.
    let record_path = ws.path().join(".annoform/state/quickstart/review.json");
    let before_merge = std::fs::read(&record_path).unwrap();
    ok(ws.run(&["apply", "--auto-approve"]));
    std::fs::write(&record_path, before_merge).unwrap();
    ok(ws.run(&["apply", "--auto-approve"]));
    assert_eq!(
        samples(&ws)[0]["ground_truth"]["detections"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(plan_json(&ws)["changes"], false);
}

/// Killed between a merge's dataset save and its record save (no request happens there, so
/// a test hook ends the process): the re-run merges once, and the dataset ends as an
/// uninterrupted twin's, with no label duplicated or lost.
#[test]
fn killed_between_the_merges_dataset_and_record_saves() {
    let manifest = format!("{RUN}view:\n  - limit: 2\nlabel_field: ground_truth\n");
    let edit = |_: &str, labels: &mut Vec<Value>| {
        labels.remove(0);
        labels[0]["label"]["label"] = json!("bike");
        labels.push(json!({"backend_id": "new-1", "label": {"_cls": "Detection", "label": "car", "bounding_box": [0.6, 0.6, 0.1, 0.1]}}));
    };
    // (label, box) of every detection, sorted: label ids are made anew by each merge.
    let detections = |ws: &Workspace| -> Vec<String> {
        let mut out: Vec<String> = samples(ws)
            .iter()
            .flat_map(|s| {
                s["ground_truth"]["detections"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .map(|d| format!("{} {}", d["label"], d["bounding_box"]))
            .collect();
        out.sort();
        out
    };
    let twin = engine_workspace(&manifest);
    ok(twin.run(&["apply", "--auto-approve"]));
    annotate(&twin, edit);
    ok(twin.run(&["apply", "--auto-approve"]));
    let expected = detections(&twin);

    let ws = engine_workspace(&manifest);
    ok(ws.run(&["apply", "--auto-approve"]));
    let before = detections(&ws);
    assert_ne!(before, expected, "the merge changes the dataset");
    annotate(&ws, edit);
    let crashed = ws.run_with(
        &["apply", "--auto-approve"],
        &[("ANNOFORM_TEST_CRASH_AT", "merge-saved")],
    );
    assert_ne!(crashed.code, 0, "killed at the hook: {}", crashed.stdout);
    assert_eq!(detections(&ws), expected, "the dataset was saved");
    assert!(state_record(&ws)["merge"].is_null(), "the record was not");

    ok(ws.run(&["apply", "--auto-approve"]));
    assert_eq!(detections(&ws), expected, "merged once");
    assert_eq!(plan_json(&ws)["changes"], false);
    ok(ws.run(&["apply", "--auto-approve"]));
    assert_eq!(detections(&ws), expected, "nothing merged twice");
    assert!(
        !state_record(&ws)["merge"].is_null(),
        "the re-run recorded the merge the crash left unrecorded"
    );

    // The annotators then delete the boxes they drew: the deletions reach the dataset, as in
    // the run that never crashed.
    let undo = |_: &str, labels: &mut Vec<Value>| labels.retain(|l| l["backend_id"] != "new-1");
    annotate(&twin, undo);
    ok(twin.run(&["apply", "--auto-approve"]));
    annotate(&ws, undo);
    let plan = plan_json(&ws);
    assert_eq!(
        plan["runs"][0]["fields"]["ground_truth"]["deleted"], 2,
        "{plan:#}"
    );
    ok(ws.run(&["apply", "--auto-approve"]));
    assert_eq!(detections(&ws), detections(&twin));
}

/// Edit the annotations of one task only (by index), as an annotator working on one task.
fn annotate_task(ws: &Workspace, task: usize, mut edit: impl FnMut(&mut Vec<Value>)) {
    let mut store = backend(ws);
    let clock = store["clock"].as_u64().unwrap_or(0) + 1;
    store["clock"] = json!(clock);
    let t = &mut store["projects"][0]["tasks"][task];
    t["updated"] = json!(clock);
    t["status"] = json!("completed");
    t["complete"] = json!(true);
    for (_, fields) in t["annotations"].as_object_mut().unwrap() {
        edit(fields["ground_truth"].as_array_mut().unwrap());
    }
    save_backend(ws, &store);
}

/// The `download` calls the backend answered: (since, samples handed back).
fn downloads(ws: &Workspace) -> Vec<(Value, u64)> {
    backend(ws)["downloads"]
        .as_array()
        .map(|d| {
            d.iter()
                .map(|d| (d["since"].clone(), d["samples"].as_u64().unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn refreshes_after_a_merge_download_only_what_changed() {
    let ws = engine_workspace(&format!(
        "{RUN}view:\n  - limit: 4\nlabel_field: ground_truth\nload:\n  when: always\nbackend_config:\n  task_size: 2\n"
    ));
    ok(ws.run(&["apply", "--auto-approve"]));
    // First merge: everything is downloaded (no cursor yet), two tasks of two samples.
    annotate_task(&ws, 0, |labels| labels[0]["label"]["label"] = json!("bike"));
    ok(ws.run(&["apply", "--auto-approve"]));
    let first = downloads(&ws);
    assert!(
        first.len() == 2 && first.iter().all(|(since, n)| since.is_null() && *n == 2),
        "{first:?}"
    );
    let record = state_record(&ws);
    let cursor = record["merge"]["cursor"].clone();
    assert_eq!(
        cursor,
        json!("1"),
        "the checkpoint keeps the backend's cursor"
    );

    // Nothing changed since: the refresh asks from the cursor and gets nothing back.
    let out = ws.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let since_merge = &downloads(&ws)[first.len()..];
    assert!(
        since_merge.iter().all(|d| d.0 == cursor && d.1 == 0),
        "{since_merge:?}"
    );

    // One task edited: only its samples come back, and the merge counts only them.
    annotate_task(&ws, 1, |labels| {
        labels.remove(0);
    });
    let seen = downloads(&ws).len();
    let plan = plan_json(&ws);
    assert_eq!(plan["runs"][0]["actions"], json!(["merge"]));
    let counts = &plan["runs"][0]["fields"]["ground_truth"];
    assert_eq!(counts["deleted"], 2, "{counts}");
    let refreshed: u64 = downloads(&ws)[seen..].iter().map(|d| d.1).sum();
    assert_eq!(refreshed, 2, "only the edited task's two samples");
    ok(ws.run(&["apply", "--auto-approve"]));
    assert_eq!(state_record(&ws)["merge"]["cursor"], json!("2"));
    let out = ws.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.code, 0, "{}", out.stdout);

    // A schema change (here a restriction) looks at everything again.
    ws.write(
        "manifests/run.yaml",
        &format!(
            "{RUN}view:\n  - limit: 4\nlabel_schema:\n  ground_truth:\n    allow_index_edits: false\nload:\n  when: always\nbackend_config:\n  task_size: 2\n"
        ),
    );
    ok(ws.run(&["apply", "--auto-approve"]));
    assert!(state_record(&ws)["merge"]["cursor"].is_null());
    let seen = downloads(&ws).len();
    ok(ws.run(&["plan"]));
    let after = &downloads(&ws)[seen..];
    assert!(
        !after.is_empty() && after.iter().all(|d| d.0.is_null()),
        "{after:?}"
    );
    assert_eq!(after.iter().map(|d| d.1).sum::<u64>(), 4);
}

fn state_record(ws: &Workspace) -> Value {
    let path = ws.path().join(".annoform/state/quickstart/review.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

const TWO_TASKS: &str = "view:\n  - limit: 4\nlabel_field: ground_truth\nload:\n  when: always\nbackend_config:\n  task_size: 2\n";

fn ground_truth_of(ws: &Workspace, sample: &str) -> Value {
    samples(ws)
        .into_iter()
        .find(|s| s["_id"]["$oid"] == sample)
        .map(|s| s["ground_truth"].clone())
        .unwrap()
}

#[test]
fn a_download_page_lost_on_the_way_deletes_nothing() {
    let ws = engine_workspace(&format!("{RUN}{TWO_TASKS}"));
    let uploaded = plan_json(&ws)["runs"][0]["fields"]["ground_truth"]["upload"].clone();
    ok(ws.run(&["apply", "--auto-approve"]));
    // Annotators delete every label; the answer for the second task then loses its labels on
    // the way, although the task still lists its samples.
    annotate(&ws, |_, labels| labels.clear());
    let before = samples(&ws);
    let out = ws.run_with(
        &["apply", "--auto-approve"],
        &[("TEST_BACKEND_DROP", "download:2")],
    );
    assert_eq!(
        out.code, 1,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    assert!(
        out.stderr.contains("run `review`") && out.stderr.contains("incomplete"),
        "{}",
        out.stderr
    );
    assert_eq!(samples(&ws), before, "nothing merged, nothing deleted");
    assert!(
        state_record(&ws)["merge"].is_null(),
        "no checkpoint, no cursor"
    );
    // The clean re-run merges every deletion: the annotators' are evidence.
    let plan = plan_json(&ws);
    assert_eq!(plan["runs"][0]["actions"], json!(["merge"]));
    assert_eq!(
        plan["runs"][0]["fields"]["ground_truth"]["deleted"],
        uploaded
    );
    ok(ws.run(&["apply", "--auto-approve"]));
    let left: usize = samples(&ws)
        .iter()
        .filter_map(|s| s["ground_truth"]["detections"].as_array())
        .map(Vec::len)
        .sum();
    let had: usize = before
        .iter()
        .filter_map(|s| s["ground_truth"]["detections"].as_array())
        .map(Vec::len)
        .sum();
    assert_eq!(json!(had - left), uploaded);
}

#[test]
fn a_sample_deleted_by_hand_is_drift_and_keeps_its_labels() {
    let ws = engine_workspace(&format!("{RUN}{TWO_TASKS}"));
    ok(ws.run(&["apply", "--auto-approve"]));
    annotate(&ws, |_, labels| labels.clear());
    // One sample removed from its task in the backend by hand.
    let mut store = backend(&ws);
    let task = &mut store["projects"][0]["tasks"][0];
    let gone = task["samples"][0].as_str().unwrap().to_string();
    task["annotations"].as_object_mut().unwrap().remove(&gone);
    task["samples"].as_array_mut().unwrap().remove(0);
    save_backend(&ws, &store);
    let kept = ground_truth_of(&ws, &gone);
    assert!(!kept.is_null());

    let plan = plan_json(&ws);
    let run = &plan["runs"][0];
    assert_eq!(run["actions"], json!(["drift", "merge"]), "{plan:#}");
    let drift = run["drift"].as_array().unwrap();
    assert_eq!(drift.len(), 1, "{plan:#}");
    assert_eq!(drift[0]["kind"], "samples_missing", "{plan:#}");
    assert_eq!(drift[0]["samples"], json!([gone]), "{plan:#}");
    ok(ws.run(&["apply", "--auto-approve"]));
    assert_eq!(
        ground_truth_of(&ws, &gone),
        kept,
        "the missing sample keeps its labels"
    );
    // The other samples merged their deletions; the drift stays until it is resolved, and
    // the cursor waits with it.
    let plan = plan_json(&ws);
    assert_eq!(plan["runs"][0]["actions"], json!(["drift"]), "{plan:#}");
    assert!(state_record(&ws)["merge"]["cursor"].is_null());
}

/// The labels each sample's annotations hold in the backend, per task name.
fn held_labels(ws: &Workspace) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for p in backend(ws)["projects"].as_array().unwrap() {
        for t in p["tasks"].as_array().unwrap() {
            let n = t["annotations"]
                .as_object()
                .unwrap()
                .values()
                .map(|f| f["ground_truth"].as_array().map_or(0, Vec::len))
                .sum();
            out.push((t["name"].as_str().unwrap().to_string(), n));
        }
    }
    out
}

/// Annotators finish every task without changing anything.
fn complete_all(ws: &Workspace) {
    let mut store = backend(ws);
    let clock = store["clock"].as_u64().unwrap_or(0) + 1;
    store["clock"] = json!(clock);
    for p in store["projects"].as_array_mut().unwrap() {
        for t in p["tasks"].as_array_mut().unwrap() {
            t["updated"] = json!(clock);
            t["status"] = json!("completed");
            t["complete"] = json!(true);
        }
    }
    save_backend(ws, &store);
}

/// Killed after a task's media went up and before its labels did: the re-run adopts the
/// task, finds its labels missing and uploads them (once), and no later merge deletes them.
#[test]
fn a_task_adopted_after_a_kill_gets_its_missing_labels() {
    let ws = engine_workspace(&format!(
        "{RUN}view:\n  - limit: 4\nlabel_field: ground_truth\nbackend_config:\n  task_size: 2\n"
    ));
    let killed = ws.run_with(
        &["apply", "--auto-approve"],
        &[
            ("TEST_BACKEND_DROP_LABELS", "create_task:2"),
            ("TEST_BACKEND_CRASH", "create_task:2"),
        ],
    );
    assert_ne!(killed.code, 0, "apply should have been killed");
    // The re-run is killed too, once the missing labels are up and before the record says so:
    // the third run finds them there and uploads nothing twice.
    let killed = ws.run_with(
        &["apply", "--auto-approve"],
        &[("TEST_BACKEND_CRASH", "upload_labels:1")],
    );
    assert_ne!(killed.code, 0, "the re-run should have been killed");
    assert_eq!(state_record(&ws)["labels_pending"], json!([1]));
    ok(ws.run(&["apply", "--auto-approve"]));
    let full = ws.run(&["plan", "--json"]);
    let expected: u64 =
        serde_json::from_str::<Value>(&ok(full).stdout).unwrap()["runs"][0]["samples"]
            .as_u64()
            .unwrap();
    assert_eq!(expected, 4);
    let held = held_labels(&ws);
    assert_eq!(held.len(), 2, "{held:?}");
    let uploaded: usize = samples(&ws)
        .iter()
        .take(4)
        .map(|s| {
            s["ground_truth"]["detections"]
                .as_array()
                .map_or(0, Vec::len)
        })
        .sum();
    assert_eq!(
        held.iter().map(|h| h.1).sum::<usize>(),
        uploaded,
        "every label is in the backend, once: {held:?}"
    );
    assert!(state_record(&ws).get("labels_pending").is_none());

    // Annotators finish without touching anything: nothing is deleted.
    complete_all(&ws);
    let plan = plan_json(&ws);
    assert_eq!(
        plan["runs"][0]["fields"]["ground_truth"]["deleted"], 0,
        "{plan}"
    );
    assert_eq!(plan["changes"], false, "{plan}");
}

/// A task recorded with its media but killed before its labels: the record says so, the plan
/// finishes it before anything merges from it.
#[test]
fn a_recorded_task_without_labels_is_finished_not_merged() {
    let ws = engine_workspace(&format!(
        "{RUN}view:\n  - limit: 2\nlabel_field: ground_truth\nload:\n  when: always\n"
    ));
    ok(ws.run_with(
        &["apply", "--auto-approve"],
        &[("TEST_BACKEND_DROP_LABELS", "create_task:1")],
    ));
    // What an apply killed between the two steps leaves: the task recorded, labels pending.
    let path = ws.path().join(".annoform/state/quickstart/review.json");
    let mut record = state_record(&ws);
    record["labels_pending"] = json!([0]);
    record["uploaded"] = json!({});
    std::fs::write(&path, serde_json::to_vec_pretty(&record).unwrap()).unwrap();
    let plan = plan_json(&ws);
    assert_eq!(plan["runs"][0]["actions"], json!(["extend"]), "{plan}");
    assert_eq!(
        plan["runs"][0]["fields"]["ground_truth"]["deleted"].as_u64(),
        None,
        "nothing merged from the unfinished task: {plan}"
    );
    ok(ws.run(&["apply", "--auto-approve"]));
    let uploaded: usize = samples(&ws)
        .iter()
        .take(2)
        .map(|s| {
            s["ground_truth"]["detections"]
                .as_array()
                .map_or(0, Vec::len)
        })
        .sum();
    assert_eq!(held_labels(&ws)[0].1, uploaded);
    assert_eq!(plan_json(&ws)["changes"], false);
}

/// The first apply after a create has nothing to do and writes nothing.
#[test]
fn a_no_op_apply_writes_nothing() {
    let ws = engine_workspace(&format!(
        "{RUN}view:\n  - limit: 2\nlabel_field: ground_truth\nload:\n  when: always\n"
    ));
    ok(ws.run(&["apply", "--auto-approve"]));
    let serial = state_record(&ws)["serial"].clone();
    let before = state_bytes(&ws);
    let out = ok(ws.run(&["apply", "--auto-approve"]));
    assert!(out.stderr.contains("Nothing to apply"), "{}", out.stderr);
    assert_eq!(state_record(&ws)["serial"], serial);
    assert!(state_bytes(&ws) == before, "the no-op apply rewrote state");
}

/// `apply --json` prints the plan, then what was done, each a JSON document: a CI job reads
/// both without parsing English.
#[test]
fn apply_json_prints_the_plan_then_the_outcome() {
    let ws = engine_workspace(&format!(
        "{RUN}view:\n  - limit: 2\nlabel_field: ground_truth\nload:\n  when: always\n"
    ));
    let documents = |out: &Output| -> Vec<Value> {
        serde_json::Deserializer::from_str(&out.stdout)
            .into_iter::<Value>()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{e}:\n{}", out.stdout))
    };
    let out = ok(ws.run(&["apply", "--auto-approve", "--json"]));
    let docs = documents(&out);
    assert_eq!(docs.len(), 2, "{}", out.stdout);
    assert_eq!(
        docs[0]["runs"][0]["actions"],
        json!(["create"]),
        "{}",
        out.stdout
    );
    assert_eq!(docs[1]["command"], "apply", "{}", out.stdout);
    assert_eq!(
        docs[1]["runs"],
        json!([{"dataset": "quickstart", "key": "review", "actions": ["create"],
                "links": {"project": null, "tasks": []}}]),
        "{}",
        out.stdout
    );
    // Nothing to apply: the notice on stderr, and an outcome without runs.
    let out = ok(ws.run(&["apply", "--auto-approve", "--json"]));
    assert!(out.stderr.contains("Nothing to apply"), "{}", out.stderr);
    let docs = documents(&out);
    assert_eq!(docs.len(), 2, "{}", out.stdout);
    assert_eq!(docs[1], json!({"command": "apply", "runs": []}));
    // Destroy says in words what it did.
    let out = ok(ws.run(&["destroy", "--auto-approve"]));
    assert!(
        out.stdout
            .ends_with("Destroy complete: 1 run(s) destroyed.\n"),
        "{}",
        out.stdout
    );
}

/// Two workspaces, one backend, the same project name and run key, different samples: the
/// second refuses the first's project (naming it and its owner) instead of adopting it, and
/// its destroy leaves it alone.
#[test]
fn another_workspaces_project_is_refused_not_adopted() {
    let manifest = format!(
        "{RUN}view:\n  - limit: 2\nlabel_field: ground_truth\nbackend_config:\n  project_name: ${{env:TEAM}}-review\n"
    );
    let a = engine_workspace(&manifest).env("TEAM", "vision");
    ok(a.run(&["apply", "--auto-approve"]));
    assert_eq!(
        backend(&a)["projects"][0]["name"],
        "vision-review",
        "`${{env:...}}` in project_name is resolved"
    );
    let b = engine_workspace(&manifest.replace("limit: 2", "skip: 2")).env("TEAM", "vision");
    std::fs::copy(a.path().join("backend.json"), b.path().join("backend.json")).unwrap();
    // Both workspaces now talk to the same backend store.
    let shared = a.path().join("backend.json");
    let toml = std::fs::read_to_string(b.path().join("annoform.toml")).unwrap();
    b.write(
        "annoform.toml",
        &toml.replace(
            &b.path().join("backend.json").display().to_string(),
            &shared.display().to_string(),
        ),
    );
    let out = b.run(&["apply", "--auto-approve"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("project `vision-review`")
            && out.stderr.contains("run `review` of dataset `quickstart`")
            && out.stderr.contains("project_name"),
        "{}",
        out.stderr
    );
    let tasks = backend(&a)["projects"][0]["tasks"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(tasks, 1, "B added nothing to A's project");
    // A record B would have made by adopting A's project (as annoform did before projects
    // carried their run's identity): B's destroy still leaves A's project alone.
    let mut adopted = state_record(&a);
    adopted["lineage"] = json!("0000000000000000");
    adopted["serial"] = json!(1);
    b.write(
        ".annoform/state/quickstart/review.json",
        &serde_json::to_string_pretty(&adopted).unwrap(),
    );
    let before = std::fs::read(b.path().join("datasets/quickstart/samples.json")).unwrap();
    ok(b.run(&["destroy", "--auto-approve"]));
    assert_eq!(project_count(&a), 1, "B's destroy leaves A's project");
    assert_eq!(
        std::fs::read(b.path().join("datasets/quickstart/samples.json")).unwrap(),
        before
    );
    // A is untouched and converged.
    assert_eq!(plan_json(&a)["changes"], false);
}

#[test]
fn coordinates_no_backend_can_round_trip_are_refused_before_upload() {
    let ws = engine_workspace(&format!(
        "{RUN}view:\n  - match_tags: train\nlabel_field: ground_truth\n"
    ));
    let path = ws.path().join("datasets/quickstart/samples.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replacen(
        r#""bounding_box": [0.1, 0.2, 0.3, 0.4]"#,
        r#""bounding_box": [1e308, 1e308, 1e308, 1e308]"#,
        1,
    );
    std::fs::write(&path, text).unwrap();
    let named = |out: &Output| {
        let all = format!("{}{}", out.stdout, out.stderr);
        assert_ne!(out.code, 0, "{all}");
        for part in [
            FIRST,
            "field `ground_truth`",
            "label 6b02535c63110a1e76c075c0",
            "1e308",
        ] {
            assert!(all.contains(part), "{part} missing from:\n{all}");
        }
    };
    named(&ws.run(&["validate"]));
    named(&ws.run(&["plan"]));
    named(&ws.run(&["apply", "--auto-approve"]));
    assert_eq!(project_count_or_zero(&ws), 0, "nothing was uploaded");
}

/// With the default `load.when` (complete), a plan after a partial annotation says what the
/// merge waits for, in every rendering, and is still a plan without changes.
#[test]
fn a_merge_waiting_for_annotators_says_so() {
    let ws = engine_workspace(&format!(
        "{RUN}view:\n  - limit: 4\nlabel_field: ground_truth\nbackend_config:\n  task_size: 2\n"
    ));
    ok(ws.run(&["apply", "--auto-approve"]));
    annotate_task(&ws, 0, |labels| labels[0]["label"]["label"] = json!("bike"));

    let out = ok(ws.run(&["plan", "--detailed-exitcode"]));
    assert_eq!(
        out.stdout,
        "  = no changes  quickstart/review (fake)\n      4 samples, 2 tasks\n      … merge waits: 1/2 tasks complete (load.when: complete); open:\n        `annoform/quickstart/review/batch-0001` annotation\n\nNo changes. Runs match the manifests.\n"
    );
    let plan = plan_json(&ws);
    assert_eq!(plan["changes"], false, "{plan:#}");
    assert_eq!(plan["runs"][0]["actions"], json!([]), "{plan:#}");
    assert_eq!(
        plan["runs"][0]["waiting"],
        json!({"complete": 1, "tasks": 2, "when": "complete",
               "open": [{"task": "annoform/quickstart/review/batch-0001", "status": "annotation"}]}),
        "{plan:#}"
    );
    assert_eq!(plan["runs"][0]["details"], json!([]), "{plan:#}");
    let md = ok(ws.run(&["plan", "--markdown"])).stdout;
    assert!(
        md.contains("No changes. Runs match the manifests.\n\n**Waiting for annotators**\n\n- **review** (quickstart, fake): merge waits: 1/2 tasks complete (load.when: complete); open: &#96;annoform/quickstart/review/batch-0001&#96; annotation\n"),
        "{md}"
    );

    // The last task done: the merge goes ahead, and nothing waits any more.
    annotate_task(&ws, 1, |_| {});
    let plan = plan_json(&ws);
    assert_eq!(plan["runs"][0]["actions"], json!(["merge"]), "{plan:#}");
    assert!(plan["runs"][0].get("waiting").is_none(), "{plan:#}");
}

/// Engine failures are typed: each says what to change, and only a failure that may pass
/// on its own says that re-running resumes.
#[test]
fn engine_errors_say_what_to_change() {
    let ws = engine_workspace(&format!(
        "{RUN}view:\n  - limit: 1\nlabel_field: ground_truth\nload:\n  when: always\n"
    ));
    let out = ws.run(&["plan", "--target", "nope"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains(
            "error: --target nope: no run has this key\nhint: `--target` takes a run's `key`"
        ),
        "{}",
        out.stderr
    );
    ok(ws.run(&["apply", "--auto-approve"]));

    // The same label changed in the dataset and by an annotator.
    let path = ws.path().join("datasets/quickstart/samples.json");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let first = doc["samples"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|s| s["_id"]["$oid"] == FIRST)
        .unwrap();
    first["ground_truth"]["detections"][0]["label"] = json!("person");
    std::fs::write(&path, serde_json::to_string(&doc).unwrap()).unwrap();
    annotate(&ws, |_, labels| labels[0]["label"]["label"] = json!("bike"));

    let out = ws.run(&["plan"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stdout.contains(
            "error: run `review`: 1 label(s) changed both in the dataset since upload and in fake"
        ) && out
            .stdout
            .contains("hint: set `load.conflicts` to `backend` or `dataset` to choose a side"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr
            .contains("\nhint: set `load.conflicts` to `backend` or `dataset` to choose a side\n")
            && !out.stderr.contains("re-run"),
        "{}",
        out.stderr
    );
    let plan = serde_json::from_str::<Value>(&ws.run(&["plan", "--json"]).stdout).unwrap();
    assert_eq!(
        plan["runs"][0]["hint"], "set `load.conflicts` to `backend` or `dataset` to choose a side",
        "{plan:#}"
    );
    // The JSON names the labels as data beside the message.
    let failure = &plan["runs"][0]["failure"];
    assert_eq!(failure["kind"], "conflicts", "{plan:#}");
    assert_eq!(failure["backend"], "fake", "{plan:#}");
    let labels = failure["labels"].as_array().unwrap();
    assert_eq!(labels.len(), 1, "{plan:#}");
    assert_eq!(
        (&labels[0]["sample_id"], &labels[0]["field"]),
        (&json!(FIRST), &json!("ground_truth")),
        "{plan:#}"
    );
    assert!(
        plan["runs"][0]["error"]
            .as_str()
            .unwrap()
            .contains(labels[0]["label_id"].as_str().unwrap()),
        "{plan:#}"
    );
}

/// After an apply the record keeps what its schema was resolved from, and plans take the
/// recorded schema while that is unchanged; a changed dataset or manifest is resolved and
/// checked again (the skip cannot hide a change), and a record without the digest (an older
/// annoform's) is resolved in full.
#[test]
fn plans_resolve_again_when_the_dataset_or_the_manifest_changed() {
    let manifest = format!("{RUN}view:\n  - match_tags: train\nlabel_field: ground_truth\n");
    let ws = engine_workspace(&manifest);
    ok(ws.run(&["apply", "--auto-approve"]));
    let digest = state_record(&ws)["resolved_from"].clone();
    assert!(digest.is_string(), "the apply keeps the digest: {digest}");
    assert_eq!(plan_json(&ws)["changes"], false);

    // A label no backend can take back, written into the dataset after the apply.
    let path = ws.path().join("datasets/quickstart/samples.json");
    let original = std::fs::read_to_string(&path).unwrap();
    let unsendable = original.replacen(
        r#""bounding_box": [0.1, 0.2, 0.3, 0.4]"#,
        r#""bounding_box": [1e308, 1e308, 1e308, 1e308]"#,
        1,
    );
    assert_ne!(unsendable, original);
    std::fs::write(&path, unsendable).unwrap();
    let out = ws.run(&["plan"]);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert_ne!(out.code, 0, "{all}");
    assert!(all.contains("1e308") && all.contains(FIRST), "{all}");

    // The dataset as it was: the recorded digest holds again.
    std::fs::write(&path, &original).unwrap();
    assert_eq!(plan_json(&ws)["changes"], false);

    // A record without the digest resolves in full, and plans the same.
    let mut record = state_record(&ws);
    record.as_object_mut().unwrap().remove("resolved_from");
    ws.write(
        ".annoform/state/quickstart/review.json",
        &serde_json::to_string_pretty(&record).unwrap(),
    );
    assert_eq!(plan_json(&ws)["changes"], false);
    ok(ws.run(&["apply", "--auto-approve"]));
    assert_eq!(state_record(&ws)["resolved_from"], digest, "kept again");

    // A class added in the manifest is resolved into the plan's schema.
    ws.write(
        "manifests/run.yaml",
        &format!("{manifest}classes: [bird, car, cat, dog, person, zebra]\n"),
    );
    let plan = plan_json(&ws);
    let classes = &plan["runs"][0]["schema"]["fields"]["ground_truth"]["classes"];
    assert!(
        classes
            .as_array()
            .is_some_and(|c| c.contains(&json!("zebra"))),
        "{plan:#}"
    );
}
