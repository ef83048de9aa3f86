//! Video runs through the real CLI against the test backend, which echoes a video's frame
//! labels one object per label and frame: frame fields merge frame by frame with every
//! restriction, plan counts are per frame-level label, and only handed frames are evidence.
//!
//! The dataset is FiftyOne 1.22.1's export of one 6-frame video whose frames 1–3 hold two
//! tracks in `dets` (a car, index 1, and a person, index 2).

use crate::fs::{copy_dir, test_backend};
use crate::{Output, Workspace, repo};
use serde_json::{Value, json};
use std::path::PathBuf;

const RUN: &str = "apiVersion: annoform/v1
kind: AnnotationRun
key: tracks
dataset: traffic
label_schema:
  frames.dets:
    classes: [car, person]
    allow_index_edits: false
  frames.boxes:
    type: detections
    classes: [car]
";

const SAMPLE: &str = "6b0253a82ba0e75ca6518020";
// Frame 2's car (track 1), frame 3's car and person.
const CAR_2: &str = "6b0253a22ba0e75ca6518017";
const CAR_3: &str = "6b0253a22ba0e75ca651801a";
const PERSON_3: &str = "6b0253a22ba0e75ca651801b";

fn video_workspace(manifest: &str) -> Workspace {
    let ws = Workspace::empty().env("ANNOFORM_NOW", "2026-01-01T00:00:00.000Z");
    copy_dir(
        &repo().join("tests/fixtures/fiftyone-1.22.1/video-tracks"),
        &ws.path().join("datasets/traffic"),
    );
    ws.write(
        "annoform.toml",
        &format!(
            "default_backend = \"fake\"\n[datasets.traffic]\npath = \"datasets/traffic\"\n[backends.fake]\ncommand = [\"{}\", \"{}\"]\n",
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
    serde_json::from_str(&ok(ws.run(&["plan", "--json"])).stdout).unwrap()
}

fn backend_path(ws: &Workspace) -> PathBuf {
    ws.path().join("backend.json")
}

/// Mark the task complete; `edit` changes the sample's held annotations (field → objects).
fn annotate(ws: &Workspace, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    let mut store: Value =
        serde_json::from_str(&std::fs::read_to_string(backend_path(ws)).unwrap()).unwrap();
    let clock = store["clock"].as_u64().unwrap_or(0) + 1;
    store["clock"] = json!(clock);
    let task = &mut store["projects"][0]["tasks"][0];
    task["updated"] = json!(clock);
    task["status"] = json!("completed");
    task["complete"] = json!(true);
    edit(task["annotations"][SAMPLE].as_object_mut().unwrap());
    std::fs::write(
        backend_path(ws),
        serde_json::to_string_pretty(&store).unwrap(),
    )
    .unwrap();
}

/// The objects of a frame field held on frame `f`.
fn on_frame(fields: &mut serde_json::Map<String, Value>, field: &str, f: u64) -> Vec<usize> {
    fields[field]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .filter(|(_, o)| o["frame"] == f)
        .map(|(i, _)| i)
        .collect()
}

fn object_of<'a>(fields: &'a mut serde_json::Map<String, Value>, id: &str) -> &'a mut Value {
    fields["frames.dets"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|o| o["label"]["_id"]["$oid"] == id)
        .unwrap()
}

/// Frame number → the frame's document.
fn frames(ws: &Workspace) -> Vec<Value> {
    let text = std::fs::read_to_string(ws.path().join("datasets/traffic/frames.json")).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["frames"]
        .as_array()
        .unwrap()
        .clone()
}

fn frame(ws: &Workspace, n: u64) -> Value {
    frames(ws)
        .into_iter()
        .find(|f| f["frame_number"] == n)
        .unwrap_or_else(|| panic!("no frame {n}"))
}

fn labels(frame: &Value, field: &str) -> Vec<(String, String, Option<i64>)> {
    frame[field]["detections"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            (
                d["_id"]["$oid"].as_str().unwrap().to_string(),
                d["label"].as_str().unwrap().to_string(),
                d["index"].as_i64(),
            )
        })
        .collect()
}

fn dataset_and_state(ws: &Workspace) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for dir in ["datasets/traffic", ".annoform/state/traffic"] {
        for e in std::fs::read_dir(ws.path().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn frame_labels_merge_frame_by_frame_with_restrictions() {
    let ws = video_workspace(RUN);
    let plan = plan_json(&ws);
    let run = &plan["runs"][0];
    assert_eq!(run["actions"], json!(["create"]), "{plan:#}");
    assert_eq!(run["samples"], 1);
    assert_eq!(run["fields"]["frames.dets"]["upload"], 6);
    assert_eq!(run["fields"]["frames.boxes"]["upload"], 0);
    ok(ws.run(&["apply", "--auto-approve"]));
    let record: Value = serde_json::from_str(
        &std::fs::read_to_string(ws.path().join(".annoform/state/traffic/tracks.json")).unwrap(),
    )
    .unwrap();
    let uploaded = &record["uploaded_frames"]["frames.dets"][SAMPLE];
    assert_eq!(
        uploaded.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["1", "2", "3"],
        "{record:#}"
    );
    let out = ws.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.code, 0, "nothing to merge yet: {}", out.stdout);

    // Annotators: move frame 2's car, delete frame 3's person, move frame 3's car to another
    // track (forbidden), draw a car on frame 4 (a frame with no document yet) and boxes, a
    // new frame field, on frames 2 and 6.
    annotate(&ws, |fields| {
        object_of(fields, CAR_2)["label"]["bounding_box"] = json!([0.25, 0.1, 0.2, 0.2]);
        object_of(fields, CAR_3)["label"]["index"] = json!(5);
        let person = fields["frames.dets"]
            .as_array()
            .unwrap()
            .iter()
            .position(|o| o["label"]["_id"]["$oid"] == PERSON_3)
            .unwrap();
        fields["frames.dets"].as_array_mut().unwrap().remove(person);
        fields["frames.dets"].as_array_mut().unwrap().push(json!({
            "backend_id": "drawn-1", "frame": 4,
            "label": {"_cls": "Detection", "label": "car", "bounding_box": [0.4, 0.1, 0.2, 0.2], "index": 1}
        }));
        fields.insert(
            "frames.boxes".into(),
            json!([
                {"backend_id": "box-1", "frame": 2, "label": {"_cls": "Detection", "label": "car", "bounding_box": [0.1, 0.1, 0.1, 0.1]}},
                {"backend_id": "box-2", "frame": 6, "label": {"_cls": "Detection", "label": "car", "bounding_box": [0.2, 0.2, 0.1, 0.1]}}
            ]),
        );
    });
    let plan = plan_json(&ws);
    let run = &plan["runs"][0];
    assert_eq!(run["actions"], json!(["merge"]), "{plan:#}");
    assert_eq!(
        run["fields"]["frames.dets"],
        json!({"upload": 0, "added": 1, "edited": 1, "deleted": 1, "rejected": 1, "unchanged": 3,
               "unexpected": 0, "edits": {"label": 0, "geometry": 1, "index": 0, "attributes": 0}}),
        "{plan:#}"
    );
    assert_eq!(run["fields"]["frames.boxes"]["added"], 2, "{plan:#}");
    assert_eq!(
        run["rejected"],
        json!([{"sample_id": SAMPLE, "frame": 3, "label_id": CAR_3, "field": "frames.dets",
                "change": "index",
                "reason": {"kind": "restricted", "restriction": "allow_index_edits"}}]),
        "{plan:#}"
    );

    let text = ok(ws.run(&["plan"])).stdout;
    assert!(
        text.contains(&format!("sample {SAMPLE} frame 3")),
        "the rejection names its frame:\n{text}"
    );
    let markdown = ok(ws.run(&["plan", "--markdown"])).stdout;
    assert!(
        markdown.contains(&format!("| {SAMPLE} frame 3 | {CAR_3} |")),
        "{markdown}"
    );

    ok(ws.run(&["apply", "--auto-approve"]));
    let f2 = frame(&ws, 2);
    assert_eq!(f2["dets"]["detections"][0]["_id"]["$oid"], CAR_2);
    assert_eq!(
        f2["dets"]["detections"][0]["bounding_box"],
        json!([0.25, 0.1, 0.2, 0.2])
    );
    assert_eq!(f2["boxes"]["detections"].as_array().unwrap().len(), 1);
    assert_eq!(f2["weather"]["label"], "sunny", "other frame fields stay");
    assert_eq!(
        labels(&frame(&ws, 3), "dets"),
        [(CAR_3.to_string(), "car".to_string(), Some(1))],
        "the person is gone, the car keeps its track"
    );
    let f4 = frame(&ws, 4);
    assert_eq!(labels(&f4, "dets").len(), 1);
    assert_eq!(f4["_sample_id"]["$oid"], SAMPLE);
    assert_eq!(labels(&frame(&ws, 6), "boxes").len(), 1);
    assert_eq!(
        frames(&ws)
            .iter()
            .map(|f| f["frame_number"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2, 3, 4, 6],
        "frames.json in FiftyOne's order"
    );
    // Untouched frame 1 keeps its labels and ids.
    assert_eq!(
        labels(&frame(&ws, 1), "dets"),
        [
            (
                "6b0253a22ba0e75ca6518014".to_string(),
                "car".to_string(),
                Some(1)
            ),
            (
                "6b0253a22ba0e75ca6518015".to_string(),
                "person".to_string(),
                Some(2)
            )
        ]
    );
    let metadata =
        std::fs::read_to_string(ws.path().join("datasets/traffic/metadata.json")).unwrap();
    assert!(
        metadata.contains("\"boxes\""),
        "the new frame field is declared"
    );

    // Converged: an empty plan, and a second apply changes no byte.
    let out = ws.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let before = dataset_and_state(&ws);
    ok(ws.run(&["apply", "--auto-approve"]));
    assert_eq!(dataset_and_state(&ws), before);
}

#[test]
fn only_handed_frames_are_evidence() {
    let ws = video_workspace(RUN);
    ok(ws.run(&["apply", "--auto-approve"]));
    // The backend hands frame 1 only, where the person was deleted; frames 2 and 3 come
    // without their labels but are not handed: nothing there is deleted.
    annotate(&ws, |fields| {
        let person = on_frame(fields, "frames.dets", 1)[1];
        let dets = fields["frames.dets"].as_array_mut().unwrap();
        dets.remove(person);
        dets.retain(|o| o["frame"] == 1);
        fields.insert("@frames".into(), json!([[1, 1]]));
    });
    let plan = plan_json(&ws);
    let counts = &plan["runs"][0]["fields"]["frames.dets"];
    assert_eq!(
        (&counts["deleted"], &counts["unchanged"]),
        (&json!(1), &json!(1)),
        "{plan:#}"
    );
    ok(ws.run(&["apply", "--auto-approve"]));
    assert_eq!(labels(&frame(&ws, 1), "dets").len(), 1);
    assert_eq!(labels(&frame(&ws, 2), "dets").len(), 2);
    assert_eq!(labels(&frame(&ws, 3), "dets").len(), 2);

    // A label on a frame the download does not hand is refused, naming the frame.
    annotate(&ws, |fields| {
        fields["frames.dets"].as_array_mut().unwrap().push(json!({
            "backend_id": "drawn-9", "frame": 5,
            "label": {"_cls": "Detection", "label": "car", "bounding_box": [0.4, 0.1, 0.2, 0.2]}
        }));
    });
    let out = ws.run(&["plan"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stderr.contains("frame 5") && out.stderr.contains("does not hand"),
        "{}",
        out.stderr
    );
}

#[test]
fn only_handed_tracks_are_evidence() {
    let ws = video_workspace(RUN);
    ok(ws.run(&["apply", "--auto-approve"]));
    // The person's label as written, byte for byte.
    let person = |ws: &Workspace, n: u64| {
        let f = frame(ws, n);
        let ls = f["dets"]["detections"].as_array().unwrap();
        ls.iter().find(|l| l["index"] == 2).map(Value::to_string)
    };
    let persons: Vec<_> = (1..=3).map(|n| person(&ws, n)).collect();
    // Frames 1-3 are handed, track 1 (the car) on frames 1-2 only: its label on frame 1 moves,
    // on frame 2 it is deleted. The persons (track 2) are not handed anywhere: absent from
    // the download, they are neither deleted nor counted.
    annotate(&ws, |fields| {
        let dets = fields["frames.dets"].as_array_mut().unwrap();
        dets.retain(|o| o["label"]["index"] == 1 && o["frame"] == 1);
        dets[0]["label"]["bounding_box"][0] = json!(0.3);
        fields.insert("@frames".into(), json!([[1, 3]]));
        fields.insert("@tracks".into(), json!({"frames.dets": {"1": [[1, 2]]}}));
    });
    let plan = plan_json(&ws);
    let counts = &plan["runs"][0]["fields"]["frames.dets"];
    let got = ["edited", "deleted", "unchanged"].map(|k| counts[k].clone());
    assert_eq!(got, [json!(1), json!(1), json!(0)], "{plan:#}");
    ok(ws.run(&["apply", "--auto-approve"]));
    assert_eq!((1..=3).map(|n| person(&ws, n)).collect::<Vec<_>>(), persons);
    assert_eq!(
        labels(&frame(&ws, 3), "dets").len(),
        2,
        "frame 3's car not handed"
    );

    // A label of a track the download does not hand on its frame is refused.
    annotate(&ws, |fields| {
        fields["frames.dets"].as_array_mut().unwrap().push(json!({
            "backend_id": "p-1", "frame": 1,
            "label": {"_cls": "Detection", "label": "person", "index": 2,
                      "bounding_box": [0.4, 0.1, 0.2, 0.2]}
        }));
    });
    let out = ws.run(&["plan"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stderr.contains("track 2 on frame 1"), "{}", out.stderr);
}

/// Killed once the video's task is created with its media but none of its frame labels: the
/// re-run adopts the task (no second one), uploads the missing frame labels once, and a merge
/// of the untouched task deletes nothing.
#[test]
fn a_video_task_adopted_after_a_kill_gets_its_frame_labels() {
    let ws = video_workspace(RUN);
    let killed = ws.run_with(
        &["apply", "--auto-approve"],
        &[
            ("TEST_BACKEND_DROP_LABELS", "create_task:1"),
            ("TEST_BACKEND_CRASH", "create_task:1"),
        ],
    );
    assert_ne!(killed.code, 0, "apply should have been killed");
    ok(ws.run(&["apply", "--auto-approve"]));
    let store: Value =
        serde_json::from_str(&std::fs::read_to_string(backend_path(&ws)).unwrap()).unwrap();
    let tasks = store["projects"][0]["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1, "adopted, not duplicated");
    let held = tasks[0]["annotations"][SAMPLE]["frames.dets"]
        .as_array()
        .unwrap();
    assert_eq!(held.len(), 6, "every frame label up, once");
    annotate(&ws, |_| {});
    let plan = plan_json(&ws);
    assert_eq!(
        plan["runs"][0]["fields"]["frames.dets"]["deleted"], 0,
        "{plan:#}"
    );
    assert_eq!(plan["changes"], false, "{plan:#}");
}
