//! A video run end to end: the real CLI against the fake CVAT, annotators editing tracks over
//! the API as CVAT's UI saves them (the whole track with its keyframes).
//!
//! The dataset is FiftyOne 1.22.1's video export (tests/fixtures/fiftyone-1.22.1/video-tracks)
//! with its one video made 60 frames long (64×48 at 5 fps, in its `metadata`) and four tracks
//! in `frames.dets`, a keyframe every 10th frame (1, 11, ...): a car (index 1) and a car
//! (index 3) and a car (index 4) on every frame, a truck (index 2) on frames 1-30. The boxes
//! stand still, so frames CVAT interpolates between untouched keyframes are the labels as
//! written.

use super::{Cvat, Ws, counts};
use serde_json::{Value, json};

pub(super) const RUN: &str = "apiVersion: annoform/v1
kind: AnnotationRun
key: tracks
dataset: ds
label_schema:
  frames.dets:
    type: detections
    classes: [car, truck]
    allow_index_edits: false
  frames.boxes:
    type: detections
    classes: [car]
    attributes:
      kind: {type: select, values: [sedan, van], mutable: false}
";

const SAMPLE: &str = "6b0253a82ba0e75ca6518020";
const DATASET: &str = "6b0253a72ba0e75ca651801f";
const FRAMES: u64 = 60;

/// The id of track `t`'s label on frame `n` of the first video.
pub(super) fn label_id(t: u64, n: u64) -> String {
    video_label_id(0, t, n)
}

/// The id of track `t`'s label on frame `n` of video `v`.
fn video_label_id(v: u64, t: u64, n: u64) -> String {
    format!("6b0253a2{v:02x}{t:02x}{n:012x}")
}

/// tiny.mp4 (10 frames) told to be `frames` long where the fake reads it (`stsz`'s count):
/// the fake does not decode video.
fn video_of(frames: u32) -> Vec<u8> {
    let mut b = include_bytes!("../fixtures/cvat/tiny.mp4").to_vec();
    let at = b.windows(4).position(|w| w == b"stsz").unwrap() + 12;
    b[at..at + 4].copy_from_slice(&frames.to_be_bytes());
    b
}

/// How the workspace's boxes move and which labels are keyframes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Boxes {
    /// Boxes stand still, every 10th frame a keyframe.
    Still,
    /// Every frame a different box, off any line CVAT could interpolate; with `keyframes`,
    /// every 10th frame a keyframe, else no label has the attribute (every frame goes up).
    Drifting { keyframes: bool },
}

fn track_label(v: u64, t: u64, n: u64, boxes: Boxes) -> Option<Value> {
    let (label, x) = match t {
        1 => ("car", 0.1),
        2 if n <= 30 => ("truck", 0.5),
        3 => ("car", 0.3),
        4 => ("car", 0.7),
        _ => return None,
    };
    let (x, y, keyframes) = match boxes {
        Boxes::Still => (x, 0.25, true),
        Boxes::Drifting { keyframes } => {
            let wobble = ((n * n + 3 * t) % 7) as f64 / 1000.0;
            (x + 0.002 * n as f64 + wobble, 0.25 + wobble, keyframes)
        }
    };
    let mut l = json!({"_id": {"$oid": video_label_id(v, t, n)}, "_cls": "Detection",
        "attributes": {}, "tags": [], "label": label, "bounding_box": [x, y, 0.125, 0.25],
        "index": t});
    if keyframes && n % 10 == 1 {
        l["keyframe"] = json!(true);
    }
    Some(l)
}

/// The workspace: the fixture's video, 60 frames of four tracks, and `videos - 1` copies of
/// it (other sample, frame and label ids).
pub(super) fn workspace(cvat: &Cvat, videos: u64) -> Ws {
    workspace_with(cvat, videos, Boxes::Still)
}

/// The workspace with boxes that move as `boxes` says.
pub(super) fn workspace_with(cvat: &Cvat, videos: u64, boxes: Boxes) -> Ws {
    let ws = Ws::new(cvat, "tests/fixtures/fiftyone-1.22.1/video-tracks", "");
    let ds = ws.path().join("datasets/ds");
    let mut samples: Value =
        serde_json::from_str(&std::fs::read_to_string(ds.join("samples.json")).unwrap()).unwrap();
    let model = samples["samples"][0].clone();
    let mut all = Vec::new();
    let mut frames = Vec::new();
    for v in 0..videos {
        let file = format!("data/v60-{v}.mp4");
        std::fs::write(ds.join(&file), video_of(FRAMES as u32)).unwrap();
        let sid = if v == 0 {
            SAMPLE.to_string()
        } else {
            format!("6b0253a82ba0e75ca65180{:02x}", 0x20 + v)
        };
        let mut s = model.clone();
        s["_id"] = json!({ "$oid": sid });
        if v > 0 {
            // Label ids are unique across the dataset.
            s.as_object_mut().unwrap().remove("vid_label");
        }
        s["filepath"] = json!(file);
        s["metadata"] = json!({"_cls": "VideoMetadata", "frame_width": 64, "frame_height": 48,
            "frame_rate": 5.0, "total_frame_count": FRAMES, "duration": 12.0});
        all.push(s);
        frames.extend((1..=FRAMES).map(|n| {
            let dets: Vec<Value> = (1..=4)
                .filter_map(|t| track_label(v, t, n, boxes))
                .collect();
            json!({"_id": {"$oid": format!("6b0253a8{v:02x}30264767{n:06x}")}, "frame_number": n,
                "dets": {"_cls": "Detections", "detections": dets},
                "_sample_id": {"$oid": sid}, "_dataset_id": {"$oid": DATASET},
                "created_at": {"$date": "2026-11-22T02:30:00.045Z"},
                "last_modified_at": {"$date": "2026-11-22T02:30:00.045Z"}})
        }));
    }
    samples["samples"] = json!(all);
    std::fs::write(ds.join("samples.json"), samples.to_string()).unwrap();
    std::fs::write(
        ds.join("frames.json"),
        json!({ "frames": frames }).to_string(),
    )
    .unwrap();
    ws.manifest("run.yaml", RUN);
    ws
}

/// The run's one project and task.
pub(super) fn task_of(cvat: &Cvat) -> (u64, u64) {
    let project = cvat
        .project("annoform/ds/tracks")
        .expect("the run's project");
    let tasks = cvat.tasks(project);
    assert_eq!(tasks.len(), 1, "one video, one task: {tasks:?}");
    (project, tasks[0]["id"].as_u64().unwrap())
}

/// The server's track whose keyframe on task frame 0 carries our label id `id`.
pub(super) fn track_with(cvat: &Cvat, project: u64, task: u64, id: &str) -> Value {
    let labels = cvat.labels(project);
    cvat.annotations(task)["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| {
            let l = labels.iter().find(|l| l["id"] == t["label_id"]).unwrap();
            let spec = super::spec_id(l, "label_id");
            t["shapes"][0]["attributes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["spec_id"] == spec && a["value"] == id)
        })
        .cloned()
        .unwrap_or_else(|| panic!("no track of {id}"))
}

pub(super) fn save(cvat: &Cvat, task: u64, action: &str, tracks: Vec<Value>) {
    cvat.send(
        reqwest::Method::PATCH,
        &format!("/api/tasks/{task}/annotations?action={action}"),
        &json!({"version": 0, "tags": [], "shapes": [], "tracks": tracks}),
    );
}

/// The frames document, frame number → its `field` labels.
pub(super) fn frame_labels(ws: &Ws, field: &str) -> std::collections::BTreeMap<u64, Vec<Value>> {
    let text = std::fs::read_to_string(ws.path().join("datasets/ds/frames.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    doc["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let name = field.strip_prefix("frames.").unwrap();
            let ls = f[name]["detections"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            (f["frame_number"].as_u64().unwrap(), ls)
        })
        .collect()
}

#[test]
fn video_tracks_edited_in_cvat_merge_frame_by_frame() {
    let cvat = Cvat::start();
    let ws = workspace(&cvat, 1);
    ws.apply();
    let (project, task) = task_of(&cvat);
    let meta = cvat.get(&format!("/api/tasks/{task}/data/meta"));
    assert_eq!(meta["size"], 60, "{meta}");
    let held = cvat.annotations(task);
    let tracks = held["tracks"].as_array().unwrap();
    assert_eq!(tracks.len(), 4, "{held}");
    let keys: Vec<u64> = tracks[0]["shapes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["frame"].as_u64().unwrap())
        .collect();
    assert_eq!(keys, vec![0, 10, 20, 30, 40, 50], "keyframes only");
    let record = ws.record("tracks");
    let notes = &record["tasks"][0]["notes"];
    assert_eq!(notes["tracks"].as_array().unwrap().len(), 4, "{notes}");
    // Nothing changed yet: the plan downloads, hands nothing, changes nothing.
    let fresh = ws.plan();
    assert_eq!(counts(&fresh, "frames.dets"), [0, 0, 0, 0, 0], "{fresh}");

    // Track 1: the keyframe of frame 21 moves 8 px right (frames 12-30 follow).
    let mut one = track_with(&cvat, project, task, &label_id(1, 1));
    for s in one["shapes"].as_array_mut().unwrap() {
        if s["frame"] == 20 {
            s["points"][0] = json!(s["points"][0].as_f64().unwrap() + 8.0);
            s["points"][2] = json!(s["points"][2].as_f64().unwrap() + 8.0);
        }
    }
    save(&cvat, task, "update", vec![one]);
    // Track 2 is deleted.
    let two = track_with(&cvat, project, task, &label_id(2, 1));
    save(&cvat, task, "delete", vec![two]);
    // Track 3 becomes a truck (the UI clears the track's attributes, label_id included).
    let truck = cvat.label(project, "truck")["id"].clone();
    let mut three = track_with(&cvat, project, task, &label_id(3, 1));
    three["label_id"] = truck;
    three["attributes"] = json!([]);
    for s in three["shapes"].as_array_mut().unwrap() {
        s["attributes"] = json!([]);
    }
    save(&cvat, task, "update", vec![three]);
    // Track 4 is split at frame 31: its first part ends there, a new track goes on.
    let four = track_with(&cvat, project, task, &label_id(4, 1));
    let (mut first, mut second) = (four.clone(), four.clone());
    let shapes = four["shapes"].as_array().unwrap();
    let mut end = shapes[2].clone();
    end["frame"] = json!(30);
    end["outside"] = json!(true);
    end.as_object_mut().unwrap().remove("id");
    first["shapes"] = json!([shapes[0], shapes[1], shapes[2], end]);
    let later: Vec<Value> = shapes[3..]
        .iter()
        .map(|s| {
            let mut s = s.clone();
            s.as_object_mut().unwrap().remove("id");
            s
        })
        .collect();
    second.as_object_mut().unwrap().remove("id");
    second["frame"] = json!(30);
    second["shapes"] = json!(later);
    save(&cvat, task, "update", vec![first]);
    save(&cvat, task, "create", vec![second]);
    // A new track in `boxes` drawn on frames 41 and 45 (CVAT interpolates 42-44).
    let car = cvat.label(project, "car_frames.boxes");
    let kind = super::spec_id(&car, "kind");
    let new = json!({"frame": 40, "label_id": car["id"], "group": 0, "source": "manual",
        "attributes": [{"spec_id": kind, "value": "van"}], "elements": [],
        "shapes": [
            {"type": "rectangle", "frame": 40, "points": [0.0, 0.0, 8.0, 8.0], "outside": false,
             "occluded": false, "z_order": 0, "rotation": 0.0, "attributes": []},
            {"type": "rectangle", "frame": 44, "points": [16.0, 0.0, 24.0, 8.0], "outside": false,
             "occluded": false, "z_order": 0, "rotation": 0.0, "attributes": []},
            {"type": "rectangle", "frame": 45, "points": [16.0, 0.0, 24.0, 8.0], "outside": true,
             "occluded": false, "z_order": 0, "rotation": 0.0, "attributes": []}]});
    save(&cvat, task, "create", vec![new]);
    cvat.complete(task);

    let plan = ws.plan();
    // dets: 19 frames around the moved key and 60 relabelled edited, 30 deleted, the split
    // part's 30 labels rejected (a label moved to another track); unchanged only the labels
    // of changed tracks that come back as they were: track 4's frames 22-30, between its
    // last kept keyframe and its new end (each track is handed on the frames its own change
    // decides, whatever other tracks hand); boxes: 5 added.
    assert_eq!(counts(&plan, "frames.dets"), [0, 79, 30, 30, 9], "{plan}");
    assert_eq!(counts(&plan, "frames.boxes"), [5, 0, 0, 0, 0], "{plan}");
    let rejected = plan["runs"][0]["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 30);
    assert_eq!(
        (
            &rejected[0]["frame"],
            &rejected[0]["label_id"],
            &rejected[0]["change"]
        ),
        (&json!(31), &json!(label_id(4, 31)), &json!("index"))
    );
    let shown = ws.run(&["plan"]);
    assert!(shown.contains("allow_index_edits"), "{shown}");
    ws.apply();

    let dets = frame_labels(&ws, "frames.dets");
    let at = |n: u64, t: u64| dets[&n].iter().find(|l| l["index"] == t).cloned();
    assert!((1..=30).all(|n| at(n, 2).is_none()), "track 2 deleted");
    let moved = at(21, 1).unwrap();
    assert_eq!(moved["_id"]["$oid"], label_id(1, 21));
    let x = moved["bounding_box"][0].as_f64().unwrap();
    assert!((x - (0.1 + 8.0 / 64.0)).abs() < 1e-9, "{x}");
    let x = at(16, 1).unwrap()["bounding_box"][0].as_f64().unwrap();
    assert!((x - (0.1 + 4.0 / 64.0)).abs() < 1e-9, "halfway: {x}");
    assert_eq!(at(11, 1).unwrap()["bounding_box"][0], 0.1);
    for n in [1, 30, 60] {
        let l = at(n, 3).unwrap();
        assert_eq!(
            (&l["label"], &l["_id"]["$oid"]),
            (&json!("truck"), &json!(label_id(3, n)))
        );
    }
    for n in 31..=60 {
        assert_eq!(
            at(n, 4).unwrap()["_id"]["$oid"],
            label_id(4, n),
            "rejected: kept"
        );
    }
    let boxes = frame_labels(&ws, "frames.boxes");
    let added: Vec<&Value> = boxes.values().flatten().collect();
    assert_eq!(added.len(), 5, "{added:?}");
    assert!(
        added
            .iter()
            .all(|l| l["kind"] == "van" && l["index"] == added[0]["index"])
    );
    let x = boxes[&43][0]["bounding_box"][0].as_f64().unwrap();
    assert!((x - 8.0 / 64.0).abs() < 1e-9, "interpolated: {x}");

    let again = ws.plan();
    assert_eq!(super::actions(&again), Vec::<String>::new(), "{again}");
    assert_eq!(again["runs"][0]["fields"], json!({}), "{again}");
    let files = |ws: &Ws| {
        ["samples.json", "frames.json"]
            .map(|f| std::fs::read(ws.path().join("datasets/ds").join(f)).unwrap())
    };
    let before = files(&ws);
    ws.apply();
    assert!(files(&ws) == before, "a second apply changes no byte");
}

#[test]
fn video_frame_step_five_on_sixty_frames() {
    let cvat = Cvat::start();
    let ws = workspace(&cvat, 1);
    let run = RUN.replace(
        "  frames.dets:\n    type: detections\n    classes: [car, truck]\n    allow_index_edits: false\n",
        "",
    );
    ws.manifest(
        "run.yaml",
        &format!("{run}backend_config:\n  frame_step: 5\n"),
    );
    ws.apply();
    let (project, task) = task_of(&cvat);
    let meta = cvat.get(&format!("/api/tasks/{task}/data/meta"));
    assert_eq!(
        (&meta["size"], &meta["frame_filter"]),
        (&json!(12), &json!("step=5")),
        "{meta}"
    );
    // A track drawn on task frames 2 and 4 (video frames 11 and 21) arrives on every video
    // frame between, as FiftyOne interpolates it.
    let car = cvat.label(project, "car");
    let kind = super::spec_id(&car, "kind");
    let shape = |frame: u64, x: f64, outside: bool| {
        json!({"type": "rectangle", "frame": frame, "points": [x, 0.0, x + 8.0, 8.0],
            "outside": outside, "occluded": false, "z_order": 0, "rotation": 0.0, "attributes": []})
    };
    let new = json!({"frame": 2, "label_id": car["id"], "group": 0, "source": "manual",
        "attributes": [{"spec_id": kind, "value": "sedan"}], "elements": [],
        "shapes": [shape(2, 0.0, false), shape(4, 16.0, false), shape(5, 16.0, true)]});
    save(&cvat, task, "create", vec![new]);
    cvat.complete(task);
    let plan = ws.plan();
    assert_eq!(
        counts(&plan, "frames.boxes"),
        [15, 0, 0, 0, 0],
        "frames 11-25: {plan}"
    );
    ws.apply();
    let boxes = frame_labels(&ws, "frames.boxes");
    let on: Vec<u64> = boxes
        .iter()
        .filter(|(_, l)| !l.is_empty())
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(on, (11..=25).collect::<Vec<_>>());
    let x = boxes[&16][0]["bounding_box"][0].as_f64().unwrap();
    assert!((x - 8.0 / 64.0).abs() < 1e-9, "{x}");
    assert_eq!(counts(&ws.plan(), "frames.boxes"), [0, 0, 0, 0, 0]);
}

#[test]
fn video_runs_make_one_task_per_video_whatever_task_size_says() {
    let cvat = Cvat::start();
    let ws = workspace(&cvat, 3);
    ws.manifest(
        "run.yaml",
        &format!("{RUN}backend_config:\n  task_size: 5\n"),
    );
    let plan = ws.plan();
    assert_eq!(plan["runs"][0]["tasks"], 3, "{plan}");
    ws.apply();
    let project = cvat.project("annoform/ds/tracks").unwrap();
    let tasks = cvat.tasks(project);
    assert_eq!(tasks.len(), 3, "{tasks:?}");
    for t in &tasks {
        let meta = cvat.get(&format!("/api/tasks/{}/data/meta", t["id"]));
        assert_eq!(meta["size"], 60, "one video of 60 frames: {meta}");
    }
}
