//! Untouched tracks stay untouched: with boxes that drift (every frame a different box, off
//! any line CVAT could interpolate), a change to one track hands that track's frames only.
//! The other tracks' labels on those frames would come back as CVAT's interpolation of their
//! keyframes (and through a pixel round trip): merged, they would be edits no annotator made.

use super::video_run::{Boxes, frame_labels, label_id, save, task_of, track_with, workspace_with};
use super::{Cvat, counts};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Track 1's keyframe on frame 21 moves 8 px right, track 2 (frames 1-30) is deleted; the
/// plan counts `expected` for `frames.dets`, and after the apply every label of tracks 3 and
/// 4, and of track 1 outside `moved`, is byte for byte as it was.
fn one_moved_one_deleted(boxes: Boxes, moved: std::ops::RangeInclusive<u64>, expected: [u64; 5]) {
    let cvat = Cvat::start();
    let ws = workspace_with(&cvat, 1, boxes);
    ws.apply();
    let (project, task) = task_of(&cvat);
    let before = frame_labels(&ws, "frames.dets");
    let fresh = ws.plan();
    assert_eq!(counts(&fresh, "frames.dets"), [0; 5], "{fresh}");

    let mut one = track_with(&cvat, project, task, &label_id(1, 1));
    for s in one["shapes"].as_array_mut().unwrap() {
        if s["frame"] == 20 {
            s["points"][0] = json!(s["points"][0].as_f64().unwrap() + 8.0);
            s["points"][2] = json!(s["points"][2].as_f64().unwrap() + 8.0);
        }
    }
    save(&cvat, task, "update", vec![one]);
    let two = track_with(&cvat, project, task, &label_id(2, 1));
    save(&cvat, task, "delete", vec![two]);
    cvat.complete(task);

    let plan = ws.plan();
    assert_eq!(counts(&plan, "frames.dets"), expected, "{plan}");
    ws.apply();

    let after = frame_labels(&ws, "frames.dets");
    let by_index = |labels: &BTreeMap<u64, Vec<Value>>, n: u64, t: u64| {
        labels[&n].iter().find(|l| l["index"] == t).cloned()
    };
    for n in 1..=60 {
        assert_eq!(by_index(&after, n, 2), None, "track 2 deleted on frame {n}");
        for t in [3, 4] {
            let (a, b) = (by_index(&before, n, t), by_index(&after, n, t));
            assert_eq!(
                a.map(|l| l.to_string()),
                b.map(|l| l.to_string()),
                "track {t} frame {n}"
            );
        }
        let (a, b) = (
            by_index(&before, n, 1).unwrap(),
            by_index(&after, n, 1).unwrap(),
        );
        assert_eq!(a["_id"], b["_id"], "frame {n}");
        match moved.contains(&n) {
            true => assert_ne!(a["bounding_box"], b["bounding_box"], "frame {n} moved"),
            false => assert_eq!(a.to_string(), b.to_string(), "frame {n} untouched"),
        }
    }
    let again = ws.plan();
    assert_eq!(super::actions(&again), Vec::<String>::new(), "{again}");
    assert_eq!(again["runs"][0]["fields"], json!({}), "{again}");
    let files = || std::fs::read(ws.path().join("datasets/ds/frames.json")).unwrap();
    let written = files();
    ws.apply();
    assert!(files() == written, "a second apply changes no byte");
}

#[test]
fn drifting_keyframed_tracks_hand_only_the_changed_track() {
    // Keyframes every 10th frame: the moved key decides frames 12-30.
    one_moved_one_deleted(
        Boxes::Drifting { keyframes: true },
        12..=30,
        [0, 19, 30, 0, 0],
    );
}

#[test]
fn drifting_tracks_without_keyframe_marks_hand_only_the_changed_frame() {
    // No `keyframe` attribute: every frame went up as a keyframe, so the moved one decides
    // itself alone.
    one_moved_one_deleted(
        Boxes::Drifting { keyframes: false },
        21..=21,
        [0, 1, 30, 0, 0],
    );
}
