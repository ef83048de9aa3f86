//! `annoform import KEY --task-id N | --project-id N`: tasks made in CVAT by hand become a
//! run, frames matched to samples by file name or an explicit data map.

use super::*;

/// A run over these samples only (the tasks' samples: anything else would be uploaded).
fn manifest(key: &str, samples: &[&Value]) -> String {
    let ids: Vec<&str> = samples.iter().map(|s| oid(s)).collect();
    format!(
        "apiVersion: annoform/v1\nkind: AnnotationRun\nkey: {key}\ndataset: ds\nview:\n  - select: [{}]\nlabel_field: found\nlabel_type: detections\nclasses: [car, person]\nattributes: false\nload:\n  when: always\n",
        ids.join(", ")
    )
}

#[test]
fn tasks_made_by_hand_become_runs() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, "datasets/quickstart", "");
    let samples = ws.samples();
    let file = |i: usize| {
        let rel = samples[i]["filepath"].as_str().unwrap();
        std::fs::read(ws.path().join("datasets/ds").join(rel)).unwrap()
    };
    let base = |i: usize| {
        samples[i]["filepath"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string()
    };

    // By file name: a task of samples 2 and 0 (in that order), with a box on the first frame.
    let p1 = cvat.send(
        reqwest::Method::POST,
        "/api/projects",
        &json!({"name": "by hand", "labels": [{"name": "car", "type": "rectangle", "attributes": []}]}),
    )["id"]
        .as_u64()
        .unwrap();
    let t1 = cvat.make_task(p1, "street", &[(base(2), file(2)), (base(0), file(0))]);
    let car = cvat.label(p1, "car");
    cvat.edit(
        t1,
        "create",
        vec![json!({"type": "rectangle", "frame": 0, "label_id": car["id"], "points": [0, 0, 32, 24]})],
        vec![],
    );
    ws.manifest("a.yaml", &manifest("by_name", &[&samples[2], &samples[0]]));
    let out = ws.run(&[
        "import",
        "by_name",
        "--backend",
        "cvat",
        "--task-id",
        &t1.to_string(),
    ]);
    assert!(out.contains("1 task(s), 2 sample(s)"), "{out}");
    let plan = ws.plan();
    assert_eq!(actions(&plan), ["merge"], "{plan:#}");
    assert_eq!(counts(&plan, "found"), [1, 0, 0, 0, 0], "{plan:#}");
    ws.apply();
    let after = ws.samples();
    assert_eq!(after[2]["found"]["detections"][0]["label"], "car");
    assert!(after[0]["found"].is_null() || after[0]["found"]["detections"] == json!([]));
    assert!(actions(&ws.plan()).is_empty());
    // The run is an ordinary run now: later edits merge as well.
    cvat.edit(
        t1,
        "create",
        vec![json!({"type": "rectangle", "frame": 1, "label_id": car["id"], "points": [8, 8, 16, 16]})],
        vec![],
    );
    assert_eq!(counts(&ws.plan(), "found"), [1, 0, 0, 0, 1]);

    // By data map: frames renamed, a whole project.
    let p2 = cvat.send(
        reqwest::Method::POST,
        "/api/projects",
        &json!({"name": "renamed", "labels": [{"name": "person", "type": "rectangle", "attributes": []}]}),
    )["id"]
        .as_u64()
        .unwrap();
    let t2 = cvat.make_task(p2, "renamed", &[("frame_a.png".into(), file(1))]);
    let person = cvat.label(p2, "person");
    cvat.edit(
        t2,
        "create",
        vec![json!({"type": "rectangle", "frame": 0, "label_id": person["id"], "points": [0, 0, 64, 48]})],
        vec![],
    );
    ws.manifest("b.yaml", &manifest("by_map", &[&samples[1]]));
    let (ok, _, stderr) = ws.try_run(&["import", "by_map", "--project-id", &p2.to_string()]);
    assert!(!ok);
    assert!(
        stderr.contains("frame_a.png") && stderr.contains("--data-map"),
        "{stderr}"
    );
    std::fs::write(
        ws.path().join("map.json"),
        json!({"frame_a.png": samples[1]["filepath"]}).to_string(),
    )
    .unwrap();
    let map = ws.path().join("map.json");
    ws.run(&[
        "import",
        "by_map",
        "--project-id",
        &p2.to_string(),
        "--data-map",
        map.to_str().unwrap(),
    ]);
    let plan = ws.plan();
    let b = plan["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "by_map")
        .unwrap();
    assert_eq!(b["actions"], json!(["merge"]), "{plan:#}");
    assert_eq!(b["fields"]["found"]["added"], 1);
}
