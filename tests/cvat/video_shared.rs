//! Two classes sharing one `index` in a video field: CVAT keeps them as two tracks (one per
//! index and class, as FiftyOne uploads them), and each track's change is evidence for its
//! own labels only. The workspace is `video_run`'s with the truck (frames 1-30) given the
//! car's index 1, so on frames 1-30 a car and a truck both carry index 1.

use super::video_run::{frame_labels, label_id, save, task_of, track_with, workspace};
use super::{Cvat, Ws, counts};
use serde_json::{Value, json};

/// `video_run`'s workspace with the truck's labels on index 1, applied.
fn shared(cvat: &Cvat) -> Ws {
    let ws = workspace(cvat, 1);
    let path = ws.path().join("datasets/ds/frames.json");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for f in doc["frames"].as_array_mut().unwrap() {
        for l in f["dets"]["detections"].as_array_mut().unwrap() {
            if l["label"] == "truck" {
                l["index"] = json!(1);
            }
        }
    }
    std::fs::write(&path, doc.to_string()).unwrap();
    ws.apply();
    ws
}

/// Each frame's labels of `class`, as written (byte for byte).
fn written(ws: &Ws, class: &str) -> Vec<Vec<String>> {
    frame_labels(ws, "frames.dets")
        .values()
        .map(|ls| {
            ls.iter()
                .filter(|l| l["label"] == class)
                .map(Value::to_string)
                .collect()
        })
        .collect()
}

fn files(ws: &Ws) -> [Vec<u8>; 2] {
    ["samples.json", "frames.json"]
        .map(|f| std::fs::read(ws.path().join("datasets/ds").join(f)).unwrap())
}

/// The re-plan is empty and a second apply changes no byte.
fn settled(ws: &Ws) {
    let again = ws.plan();
    assert_eq!(super::actions(&again), Vec::<String>::new(), "{again}");
    assert_eq!(again["runs"][0]["fields"], json!({}), "{again}");
    let before = files(ws);
    ws.apply();
    assert!(files(ws) == before, "a second apply changes no byte");
}

#[test]
fn video_a_shared_index_edit_to_the_car_track_edits_only_the_car() {
    let cvat = Cvat::start();
    let ws = shared(&cvat);
    let (project, task) = task_of(&cvat);
    let held = cvat.annotations(task);
    assert_eq!(
        held["tracks"].as_array().unwrap().len(),
        4,
        "the car and the truck apart"
    );
    let record = ws.record("tracks");
    let tracks = record["tasks"][0]["notes"]["tracks"].as_array().unwrap();
    let classes: Vec<(&Value, &Value)> = tracks
        .iter()
        .filter(|t| t["index"] == 1)
        .map(|t| (&t["index"], &t["class"]))
        .collect();
    assert_eq!(
        classes,
        [(&json!(1), &json!("car")), (&json!(1), &json!("truck"))]
    );
    let fresh = ws.plan();
    assert_eq!(counts(&fresh, "frames.dets"), [0, 0, 0, 0, 0], "{fresh}");
    let trucks = written(&ws, "truck");

    // The car's keyframe of frame 21 moves 8 px right: frames 12-30 follow.
    let mut car = track_with(&cvat, project, task, &label_id(1, 1));
    for s in car["shapes"].as_array_mut().unwrap() {
        if s["frame"] == 20 {
            s["points"][0] = json!(s["points"][0].as_f64().unwrap() + 8.0);
            s["points"][2] = json!(s["points"][2].as_f64().unwrap() + 8.0);
        }
    }
    save(&cvat, task, "update", vec![car]);
    cvat.complete(task);
    let plan = ws.plan();
    assert_eq!(counts(&plan, "frames.dets"), [0, 19, 0, 0, 0], "{plan}");
    ws.apply();

    let dets = frame_labels(&ws, "frames.dets");
    let car_at = |n: u64| {
        dets[&n]
            .iter()
            .find(|l| l["label"] == "car" && l["index"] == 1)
            .unwrap()
    };
    for n in 12..=30 {
        assert_eq!(car_at(n)["_id"]["$oid"], label_id(1, n));
    }
    let x = car_at(21)["bounding_box"][0].as_f64().unwrap();
    assert!((x - (0.1 + 8.0 / 64.0)).abs() < 1e-9, "{x}");
    assert_eq!(
        car_at(11)["bounding_box"][0],
        0.1,
        "before the moved key's window"
    );
    assert_eq!(car_at(31)["bounding_box"][0], 0.1, "after it");
    assert_eq!(
        written(&ws, "truck"),
        trucks,
        "the truck's labels keep their bytes"
    );
    settled(&ws);
}

#[test]
fn video_a_shared_index_deleted_truck_track_deletes_only_the_truck() {
    let cvat = Cvat::start();
    let ws = shared(&cvat);
    let (project, task) = task_of(&cvat);
    let cars = written(&ws, "car");
    let truck = track_with(&cvat, project, task, &label_id(2, 1));
    save(&cvat, task, "delete", vec![truck]);
    cvat.complete(task);
    let plan = ws.plan();
    assert_eq!(counts(&plan, "frames.dets"), [0, 0, 30, 0, 0], "{plan}");
    ws.apply();
    assert!(
        written(&ws, "truck").iter().all(Vec::is_empty),
        "every truck label gone"
    );
    assert_eq!(written(&ws, "car"), cars, "the cars keep their bytes");
    settled(&ws);
}
