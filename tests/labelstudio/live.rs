//! The loop on a live FiftyOne database: real FiftyOne 1.22.1 creates the dataset in a real
//! mongod (FiftyOne's own, `support/mongo.rs`), annoform plans and applies a Label Studio run
//! on it, an annotator edits, FiftyOne edits the same sample between plan and apply, and a
//! fresh FiftyOne process reads the result.

use super::mongo;
use super::*;

const NAME: &str = "quickstart-live";

fn script() -> PathBuf {
    repo().join("tests/interop/fiftyone_live.py")
}

/// A fresh FiftyOne process's view of the dataset.
fn dump(db: &str) -> Value {
    let out = mongo::server().fiftyone(db, &script(), &["dump", NAME]);
    serde_json::from_str(out.lines().last().unwrap_or_default()).expect("dump JSON")
}

/// Every sample's `last_modified_at` as FiftyOne loads it.
fn stamps(d: &Value) -> Vec<Value> {
    d["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["last_modified_at"].clone())
        .collect()
}

fn manifest(ws: &Ws, conflicts: &str) {
    let schema: String = FIELDS.iter().map(|f| format!("  {f}: {{}}\n")).collect();
    std::fs::write(
        ws.path().join("manifests/run.yaml"),
        format!("apiVersion: annoform/v1\nkind: AnnotationRun\nkey: review\ndataset: quickstart\nbackend: labelstudio\nload:\n  when: always\n  conflicts: {conflicts}\nlabel_schema:\n{schema}"),
    )
    .unwrap();
}

#[test]
fn a_live_fiftyone_dataset_round_trips_through_label_studio() {
    let m = mongo::server();
    let db = m.database("ls_live");
    let fixture = repo().join("tests/fixtures/fiftyone-1.22.1/image-all-label-types");
    m.fiftyone(&db, &script(), &["create", NAME, fixture.to_str().unwrap()]);

    let dir = tempfile::tempdir().unwrap();
    let ls = LabelStudio::start(dir.path());
    let mut ws = Ws::new(dir, &ls, "");
    ws.env = vec![
        ("FO_URI".into(), m.uri()),
        ("FIFTYONE_DATABASE_NAME".into(), db.clone()),
    ];
    std::fs::remove_dir_all(ws.path().join("datasets")).unwrap();
    std::fs::write(
        ws.path().join("annoform.toml"),
        format!(
            "default_backend = \"labelstudio\"\n[datasets.quickstart]\nstore = \"mongodb\"\nname = \"{NAME}\"\nuri = \"${{env:FO_URI}}\"\n[backends.labelstudio]\nurl = \"{}\"\napi_key = \"${{env:LS_KEY}}\"\n",
            ls.url
        ),
    )
    .unwrap();
    manifest(&ws, "error");
    let before = dump(&db);

    assert_eq!(run_actions(&ws.plan()), ["create"]);
    ws.run(&["apply", "--auto-approve"]);
    assert_eq!(
        stamps(&dump(&db)),
        stamps(&before),
        "creating a run writes no sample"
    );
    let pid = ls.project(PROJECT).expect("project created");
    let tasks = ls.tasks(pid);
    assert_eq!(tasks.len(), 5);
    assert!(run_actions(&ws.plan()).is_empty());

    // The annotator: relabel one box of sample 0, delete the other, draw a new one.
    let s0 = before["samples"][0]["_id"]["$oid"]
        .as_str()
        .unwrap()
        .to_string();
    let task = tasks
        .iter()
        .find(|t| t["data"]["sample_id"] == s0.as_str())
        .expect("task of sample 0");
    let mut result: Vec<Value> = task["predictions"][0]["result"].as_array().unwrap().clone();
    let gt = before["samples"][0]["ground_truth"]["detections"]
        .as_array()
        .unwrap();
    let (keep, gone) = (
        gt[0]["_id"]["$oid"].as_str().unwrap().to_string(),
        gt[1]["_id"]["$oid"].as_str().unwrap().to_string(),
    );
    result.retain(|r| r["id"] != gone.as_str());
    for r in &mut result {
        if r["id"] == keep.as_str() {
            r["value"]["rectanglelabels"] = json!(["bike"]);
        }
    }
    result.push(json!({"id": "manual0001", "from_name": "ground_truth", "to_name": "image",
        "type": "rectanglelabels", "original_width": 64, "original_height": 48, "image_rotation": 0,
        "origin": "manual",
        "value": {"x": 5.0, "y": 5.0, "width": 25.0, "height": 50.0, "rotation": 0, "rectanglelabels": ["car"]}}));
    ls.post(
        &format!("/api/tasks/{}/annotations", task["id"]),
        &json!({"result": result, "was_cancelled": false, "ground_truth": false}),
    );
    let plan = ws.plan();
    assert_eq!(run_actions(&plan), ["merge"], "{plan:#}");

    // Between plan and apply a FiftyOne user relabels the same box and tags the sample.
    m.fiftyone(&db, &script(), &["edit", NAME, &s0, &keep, "truck"]);
    let edited = dump(&db);
    let out = ws.command(&["apply", "--auto-approve"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a conflict must stop the merge: {stderr}"
    );
    assert!(
        stderr.contains(&keep),
        "the conflict names the label: {stderr}"
    );
    assert_eq!(dump(&db), edited, "nothing written, FiftyOne's edit kept");

    // The user keeps the dataset's side of conflicts: FiftyOne's label stays, the rest merges.
    manifest(&ws, "dataset");
    ws.run(&["apply", "--auto-approve"]);
    let after = dump(&db);
    let a0 = &after["samples"][0];
    assert!(
        a0["tags"].as_array().unwrap().contains(&json!("edited")),
        "{a0}"
    );
    let dets = a0["ground_truth"]["detections"].as_array().unwrap();
    assert_eq!(dets.len(), 2, "{dets:#?}");
    assert_eq!(dets[0]["_id"]["$oid"], keep.as_str());
    assert_eq!(dets[0]["label"], "truck", "FiftyOne's edit is kept");
    assert_eq!(
        dets[0]["color"], "red",
        "attributes outside the run are kept"
    );
    assert_eq!(dets[1]["label"], "car");
    assert!(
        dets[1]["_id"]["$oid"].is_string(),
        "a new label gets an ObjectId: {}",
        dets[1]
    );
    // Every other label came back exactly as it was, ids kept.
    let (b, a) = (
        before["samples"].as_array().unwrap(),
        after["samples"].as_array().unwrap(),
    );
    for (b, a) in b.iter().zip(a).skip(1) {
        for f in FIELDS {
            assert_eq!(b[f], a[f], "field {f} of sample {}", b["_id"]);
        }
        assert_eq!(
            b["last_modified_at"], a["last_modified_at"],
            "untouched samples are not written"
        );
    }
    assert_eq!(
        after["schema"], before["schema"],
        "the fields stay declared as they were"
    );

    // Idempotent: an empty plan, and an apply that writes nothing.
    let plan = ws.plan();
    assert!(run_actions(&plan).is_empty(), "{plan:#}");
    ws.run(&["apply", "--auto-approve"]);
    assert_eq!(dump(&db), after, "a second apply writes nothing");
}
