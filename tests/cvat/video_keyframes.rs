//! `keyframe` as FiftyOne's CVAT loader sets it (1.22.1, utils/cvat.py `_parse_annotation` and
//! utils/annotations.py `_update_tracks`/`_merge_label`): when the marks are imported (a new
//! field, or an existing one whose uploaded labels mark keyframes, so only keyframes went up)
//! a label is a keyframe exactly on CVAT's keyframes; a label that stops being one gets
//! `keyframe: null` (FiftyOne sets `None`); new labels carry `true` on keyframes and nothing
//! elsewhere. Otherwise (every frame went up as a keyframe) no mark is imported at all.

use super::video_run::{Boxes, frame_labels, label_id, save, task_of, track_with, workspace_with};
use super::{Cvat, counts};
use serde_json::{Value, json};
use std::collections::BTreeMap;

type Frames = BTreeMap<u64, Vec<Value>>;

/// Drifting boxes of four tracks, edited in CVAT: track 1 loses its keyframe on frame 21,
/// track 3's keyframe on frame 15 moves (drawn there when it had none), and a `car` track is drawn with keyframes on frames 41 and
/// 45. Returns the frames before and after the apply, and the plan's `frames.dets` counts;
/// checks the re-plan is empty and a second apply changes no byte.
fn edited(keyframes: bool) -> (Frames, Frames, [u64; 5]) {
    let cvat = Cvat::start();
    let ws = workspace_with(&cvat, 1, Boxes::Drifting { keyframes });
    ws.apply();
    let (project, task) = task_of(&cvat);
    let before = frame_labels(&ws, "frames.dets");

    let mut one = track_with(&cvat, project, task, &label_id(1, 1));
    let shapes = one["shapes"].as_array_mut().unwrap();
    shapes.retain(|s| s["frame"] != 20);
    save(&cvat, task, "update", vec![one]);
    let mut three = track_with(&cvat, project, task, &label_id(3, 1));
    let shapes = three["shapes"].as_array_mut().unwrap();
    // Frame 15's keyframe, moved down (or drawn there, a copy of frame 11's).
    if !shapes.iter().any(|s| s["frame"] == 14) {
        let mut key = shapes.iter().find(|s| s["frame"] == 10).unwrap().clone();
        key["frame"] = json!(14);
        key["id"] = Value::Null;
        shapes.push(key);
        shapes.sort_by_key(|s| s["frame"].as_u64());
    }
    let key = shapes.iter_mut().find(|s| s["frame"] == 14).unwrap();
    key["points"][1] = json!(key["points"][1].as_f64().unwrap() + 6.0);
    key["points"][3] = json!(key["points"][3].as_f64().unwrap() + 6.0);
    save(&cvat, task, "update", vec![three]);
    let car = cvat.label(project, "car_frames.dets");
    let shape = |frame: u64, x: f64, outside: bool| {
        json!({"type": "rectangle", "frame": frame, "points": [x, 30.0, x + 8.0, 38.0],
            "outside": outside, "occluded": false, "z_order": 0, "rotation": 0.0,
            "attributes": []})
    };
    let new = json!({"frame": 40, "label_id": car["id"], "group": 0, "source": "manual",
        "attributes": [], "elements": [],
        "shapes": [shape(40, 0.0, false), shape(44, 16.0, false), shape(45, 16.0, true)]});
    save(&cvat, task, "create", vec![new]);
    cvat.complete(task);

    let plan = ws.plan();
    let counted = counts(&plan, "frames.dets");
    ws.apply();
    let after = frame_labels(&ws, "frames.dets");
    let again = ws.plan();
    assert_eq!(again["runs"][0]["fields"], json!({}), "{again}");
    let files = || std::fs::read(ws.path().join("datasets/ds/frames.json")).unwrap();
    let written = files();
    ws.apply();
    assert!(files() == written, "a second apply changes no byte");
    (before, after, counted)
}

/// The `keyframe` of track `t`'s label on frame `n` (`None`: no key), and whether it exists.
fn mark(frames: &Frames, n: u64, t: i64) -> Option<Option<Value>> {
    let l = frames[&n].iter().find(|l| l["index"] == t)?;
    Some(l.get("keyframe").cloned())
}

/// The index of the drawn track: the one no label had before.
fn drawn(before: &Frames, after: &Frames) -> i64 {
    let old: Vec<&Value> = before.values().flatten().map(|l| &l["index"]).collect();
    let new: Vec<i64> = after
        .values()
        .flatten()
        .filter(|l| !old.contains(&&l["index"]))
        .filter_map(|l| l["index"].as_i64())
        .collect();
    assert!(
        !new.is_empty() && new.iter().all(|i| *i == new[0]),
        "{new:?}"
    );
    new[0]
}

#[test]
fn keyframe_marks_follow_cvat_frame_by_frame_where_only_keyframes_went_up() {
    let (before, after, counted) = edited(true);
    // Track 1: 12-30 interpolated anew (21 no longer a keyframe; on 17 and 18 CVAT's
    // interpolation gives back the dataset's boxes to the pixel: unchanged); track 3: 12-20
    // (15 a new keyframe); the drawn track on 41-45, added.
    assert_eq!(counted, [5, 26, 0, 0, 2]);
    let new = drawn(&before, &after);
    let yes = Some(Some(json!(true)));
    for n in 1..=60 {
        let every_tenth = n % 10 == 1;
        let one = match n {
            21 => Some(Some(Value::Null)),
            _ if every_tenth => yes.clone(),
            _ => Some(None),
        };
        assert_eq!(mark(&after, n, 1), one, "track 1 frame {n}");
        let three = if every_tenth || n == 15 {
            yes.clone()
        } else {
            Some(None)
        };
        assert_eq!(mark(&after, n, 3), three, "track 3 frame {n}");
        let drawn = match n {
            41 | 45 => yes.clone(),
            42..=44 => Some(None),
            _ => None,
        };
        assert_eq!(mark(&after, n, new), drawn, "drawn track frame {n}");
        // Tracks nobody touched keep their marks.
        assert_eq!(mark(&after, n, 4), mark(&before, n, 4), "track 4 frame {n}");
    }
}

#[test]
fn no_keyframe_mark_is_imported_where_every_frame_went_up() {
    let (before, after, counted) = edited(false);
    // Every frame was a keyframe: track 1's removed one decides frame 21 alone, track 3's
    // moved one frame 15 alone.
    assert_eq!(counted, [5, 2, 0, 0, 0]);
    drawn(&before, &after);
    for (n, labels) in &after {
        for l in labels {
            assert_eq!(l.get("keyframe"), None, "frame {n}: {l}");
        }
    }
}
