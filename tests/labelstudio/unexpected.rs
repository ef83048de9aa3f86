//! Labels drawn in Label Studio outside the run's schema: a box of a class the field does not
//! list goes into the run's field (FiftyOne merges any class), a region of another label
//! type goes, with `load.unexpected: keep`, to the field named after its type.

use super::*;

#[test]
fn a_class_outside_the_schema_goes_into_the_runs_field() {
    let dir = tempfile::tempdir().unwrap();
    let ls = LabelStudio::start(dir.path());
    let ws = Ws::new(dir, &ls, "");
    std::fs::write(
        ws.path().join("manifests/run.yaml"),
        "apiVersion: annoform/v1\nkind: AnnotationRun\nkey: review\ndataset: quickstart\nbackend: labelstudio\nload:\n  when: always\nlabel_schema:\n  ground_truth: {}\n",
    )
    .unwrap();
    let before = ws.samples();
    ws.run(&["apply", "--auto-approve"]);
    let pid = ls.project(PROJECT).expect("project created");
    let tasks = ls.tasks(pid);
    let s0 = before[0]["_id"]["$oid"].as_str().unwrap();
    let task = tasks
        .iter()
        .find(|t| t["data"]["sample_id"] == s0)
        .expect("task of sample 0");
    let mut result: Vec<Value> = task["predictions"][0]["result"].as_array().unwrap().clone();
    let region = |id: &str, ty: &str, value: Value| {
        json!({"id": id, "from_name": "ground_truth", "to_name": "image", "type": ty,
            "original_width": 64, "original_height": 48, "image_rotation": 0, "origin": "manual",
            "value": value})
    };
    result.push(region(
        "manualcat1",
        "rectanglelabels",
        json!({"x": 10.0, "y": 10.0, "width": 25.0, "height": 50.0, "rotation": 0, "rectanglelabels": ["Cat"]}),
    ));
    result.push(region(
        "manualpoly",
        "polygonlabels",
        json!({"points": [[10.0, 10.0], [50.0, 10.0], [50.0, 50.0]], "polygonlabels": ["car"]}),
    ));
    ls.post(
        &format!("/api/tasks/{}/annotations", task["id"]),
        &json!({"result": result, "was_cancelled": false, "ground_truth": false}),
    );

    let plan = ws.plan();
    assert_eq!(run_actions(&plan), ["merge"], "{plan:#}");
    let gt = &plan["runs"][0]["fields"]["ground_truth"];
    assert_eq!(
        (&gt["added"], &gt["unexpected"]),
        (&json!(1), &json!(1)),
        "{plan:#}"
    );
    let listed = &plan["runs"][0]["unexpected"][0];
    assert_eq!(listed["backend_id"], "manualpoly", "{plan:#}");
    assert_eq!(listed["dest"], "polylines", "{plan:#}");
    ws.run(&["apply", "--auto-approve"]);

    let after = ws.samples();
    let dets = after[0]["ground_truth"]["detections"].as_array().unwrap();
    let cat = dets.last().unwrap();
    assert_eq!(cat["label"], "Cat", "{dets:#?}");
    assert!(
        after[0].get("detections").is_none(),
        "no field named after the type"
    );
    // The polygon joins the dataset's own `polylines` field, whose labels stay.
    let lines = after[0]["polylines"]["polylines"].as_array().unwrap();
    let old = before[0]["polylines"]["polylines"].as_array().unwrap();
    assert_eq!(lines.len(), old.len() + 1);
    assert_eq!(&lines[..old.len()], &old[..]);
    assert_eq!(lines[old.len()]["label"], "car");
    assert_eq!(lines[old.len()]["closed"], true);
    assert!(run_actions(&ws.plan()).is_empty());
    assert_eq!(ws.samples(), after, "merging again adds nothing");
}
