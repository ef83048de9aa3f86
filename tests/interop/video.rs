//! A video run merged through the whole engine and read back by real FiftyOne 1.22.1.
//!
//! The dataset is FiftyOne 1.22.1's own export of a 6-frame video whose frames 1–3 hold two
//! tracks (`dets`: a car, index 1, and a person, index 2) beside other frame fields. The test
//! backend echoes the uploaded frame labels; annotators relabel, move, delete and draw labels on
//! frames and fill a new frame field. FiftyOne must read every frame as annoform wrote it, and
//! every label nobody touched with its id and content as FiftyOne exported it.

use super::{annoform, norm, read_json, repo, run_fiftyone};
use crate::fs::{copy_dir, test_backend};
use annoform::dataset::dir::Dataset;
use annoform::dataset::ejson::ObjectId;
use serde_json::{Map, Value, json};
use std::path::Path;

use crate::video_edits::{CAR_2, PERSON_2, PERSON_3};

fn dump(scratch: &Path, data: &Path, name: &str) -> Value {
    let out = scratch.join(name);
    run_fiftyone(&["dump", &data.to_string_lossy(), &out.to_string_lossy()]);
    read_json(&out)
}

/// The labels of `field` on one frame of a dump, by id.
fn labels_by_id(frame: &Value, field: &str) -> Map<String, Value> {
    frame[field]["detections"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| (d["_id"].as_str().unwrap().to_string(), d.clone()))
        .collect()
}

#[test]
fn fiftyone_reads_what_a_video_merge_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let (ws, scratch) = (tmp.path().join("ws"), tmp.path().join("scratch"));
    std::fs::create_dir_all(&scratch).unwrap();
    let data = ws.join("datasets/traffic");
    copy_dir(
        &repo().join("tests/fixtures/fiftyone-1.22.1/video-tracks"),
        &data,
    );
    std::fs::write(
        ws.join("annoform.toml"),
        format!(
            "default_backend = \"fake\"\n[datasets.traffic]\npath = \"datasets/traffic\"\n[backends.fake]\ncommand = [\"{}\", \"{}\"]\n",
            test_backend().display(),
            ws.join("backend.json").display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(ws.join("manifests")).unwrap();
    std::fs::write(
        ws.join("manifests/run.yaml"),
        "apiVersion: annoform/v1\nkind: AnnotationRun\nkey: tracks\ndataset: traffic\n\
         label_schema:\n  frames.dets:\n    classes: [car, person, truck]\n\
         \x20 frames.qa:\n    type: detections\n    classes: [dog]\n",
    )
    .unwrap();
    let before = dump(&scratch, &data, "before.json");
    annoform(&ws, &["apply", "--auto-approve"]);

    let sid = crate::video_edits::annotate(&ws.join("backend.json"));
    annoform(&ws, &["apply", "--auto-approve"]);

    let ours = Dataset::load(&data).unwrap();
    let fo = dump(&scratch, &data, "after.json");
    assert_eq!(
        fo["frame_schema"]["qa"],
        json!(["EmbeddedDocumentField", "Detections"])
    );
    // Every frame as annoform wrote it: no more, no fewer frames, fields or values.
    let id = ObjectId::parse(&sid).unwrap();
    let fo_frames = fo["frames"][&sid].as_object().unwrap();
    let numbers: Vec<&str> = fo_frames.keys().map(String::as_str).collect();
    assert_eq!(numbers, ["1", "2", "3", "5"]);
    for frame in ours.frames(id) {
        let n = frame.frame_number().unwrap().to_string();
        let theirs = fo_frames[&n].as_object().unwrap();
        let mine = norm(&Value::Object(frame.as_object().clone()));
        for (k, v) in mine.as_object().unwrap() {
            assert_eq!(
                &theirs[k], v,
                "frame {n} {k}: FiftyOne reads what annoform wrote"
            );
        }
        for (k, v) in theirs {
            assert!(
                v.is_null() || mine.get(k).is_some(),
                "frame {n}: FiftyOne sees `{k}`, which annoform did not write"
            );
        }
    }
    // The merge, as FiftyOne sees it.
    let was = &before["frames"][&sid];
    let f2 = labels_by_id(&fo_frames["2"], "dets");
    assert_eq!(f2[CAR_2]["label"], "truck");
    assert_eq!(f2[CAR_2]["keyframe"], true);
    assert_eq!(
        f2[PERSON_2],
        labels_by_id(&was["2"], "dets")[PERSON_2],
        "untouched"
    );
    let f3 = labels_by_id(&fo_frames["3"], "dets");
    assert!(!f3.contains_key(PERSON_3), "deleted");
    assert_eq!(f3.len(), 1);
    for field in ["dets", "weather", "frame_score"] {
        assert_eq!(
            fo_frames["1"][field], was["1"][field],
            "frame 1 {field} is untouched, ids included"
        );
    }
    let drawn = labels_by_id(&fo_frames["5"], "dets");
    let (new_id, new) = drawn.iter().next().unwrap();
    assert!(ObjectId::parse(new_id).is_ok());
    assert_eq!((&new["label"], &new["index"]), (&json!("car"), &json!(1)));
    assert_eq!(labels_by_id(&fo_frames["1"], "qa").len(), 1);
    assert_eq!(
        fo["samples"][&sid], before["samples"][&sid],
        "sample untouched"
    );

    // A second apply changes nothing.
    let bytes = std::fs::read(data.join("frames.json")).unwrap();
    annoform(&ws, &["apply", "--auto-approve"]);
    assert_eq!(std::fs::read(data.join("frames.json")).unwrap(), bytes);
}
