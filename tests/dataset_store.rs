//! The `dir` store against real FiftyOne 1.22.1 exports: loading, lossless saving, edits and
//! clear errors on corrupt datasets.

use std::fs;
use std::path::{Path, PathBuf};

use annoform::dataset::FrameNumber;
use annoform::dataset::dir::{Dataset, DatasetError};
use annoform::dataset::ejson::ObjectId;
use annoform::dataset::fields::FieldType;
use annoform::dataset::labels::{Classification, Detection, Label, LabelBase, LabelList};
use serde_json::{Value, json};

const FIXTURES: [&str; 4] = [
    "image-all-label-types",
    "legacy-format",
    "video-tracks",
    "with-labelstudio-run",
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fiftyone-1.22.1")
        .join(name)
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// A scratch copy of a fixture.
fn scratch(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    copy_dir(&fixture(name), &dir);
    (tmp, dir)
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&fs::read(p).unwrap()).unwrap()
}

/// Every file's bytes, to prove a failed operation wrote nothing.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn oid(s: &str) -> ObjectId {
    ObjectId::parse(s).unwrap()
}

#[test]
fn every_fixture_loads() {
    let counts = [
        ("image-all-label-types", 5),
        ("legacy-format", 5),
        ("video-tracks", 1),
        ("with-labelstudio-run", 3),
    ];
    for (name, n) in counts {
        let ds = Dataset::load(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(ds.len(), n, "{name}");
    }
}

#[test]
fn accessors_on_the_current_format() {
    let ds = Dataset::load(fixture("image-all-label-types")).unwrap();
    assert_eq!(ds.media_type(), "image");
    assert!(!ds.is_legacy());
    assert_eq!(
        ds.field_label_class(&"ground_truth".into()).as_deref(),
        Some("Detections")
    );
    assert_eq!(
        ds.field_label_class(&"cls".into()).as_deref(),
        Some("Classification")
    );
    assert_eq!(
        ds.field_label_class(&"seg".into()).as_deref(),
        Some("Segmentation")
    );
    assert_eq!(ds.field_label_class(&"n_int".into()), None);
    assert!(
        ds.field_exists(&"n_int".into())
            && ds.field_exists(&"kps".into())
            && !ds.field_exists(&"nope".into())
    );
    assert_eq!(
        ds.classes("ground_truth").unwrap(),
        ["car", "person", "bike"]
    );
    assert_eq!(
        ds.default_classes().unwrap(),
        ["car", "person", "bike", "cat"]
    );
    assert_eq!(
        ds.mask_targets("seg").unwrap(),
        [("1".into(), "road".into()), ("2".into(), "sky".into())]
    );
    let s = ds.sample_by_id(oid("6b02536263110a1e76c075f7")).unwrap();
    assert_eq!(s.filepath(), Some("data/img0.png"));
    assert_eq!(s.tags(), ["train"]);
    let Some(Label::Detections(d)) = s.label("ground_truth").unwrap() else {
        panic!()
    };
    assert_eq!(d.items.len(), 2);
    let dims = ds.image_size(s.id()).unwrap();
    assert_eq!((dims.width, dims.height), (64, 48));
}

#[test]
fn accessors_on_the_legacy_format() {
    let ds = Dataset::load(fixture("legacy-format")).unwrap();
    assert!(ds.is_legacy());
    assert_eq!(
        ds.field_label_class(&"kps".into()).as_deref(),
        Some("Keypoints")
    );
    assert_eq!(
        ds.classes("ground_truth").unwrap(),
        ["car", "person", "bike"]
    );
    assert_eq!(ds.default_classes().unwrap().len(), 4);
    assert_eq!(ds.mask_targets("seg").unwrap().len(), 2);
    assert_eq!(
        ds.mask_targets("other").unwrap().len(),
        2,
        "falls back to default_mask_targets"
    );
}

#[test]
fn video_frames() {
    let ds = Dataset::load(fixture("video-tracks")).unwrap();
    assert_eq!(ds.media_type(), "video");
    let s = &ds.samples()[0];
    let frames = ds.frames(s.id());
    assert_eq!(
        frames
            .iter()
            .map(|f| f.frame_number().unwrap().get())
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(
        ds.field_label_class(&"frames.dets".into()).as_deref(),
        Some("Detections")
    );
    assert_eq!(
        ds.field_label_class(&"vid_label".into()).as_deref(),
        Some("Classification")
    );
    let Some(Label::Detections(d)) = frames[0].label("dets").unwrap() else {
        panic!()
    };
    assert_eq!(d.items[0].base.index, Some(1));
    assert_eq!(d.items[0].base.extra.get("keyframe"), Some(&json!(true)));
}

#[test]
fn saving_without_changes_writes_nothing() {
    for name in FIXTURES {
        let (_tmp, dir) = scratch(name);
        let before = snapshot(&dir);
        let ds = Dataset::load(&dir).unwrap();
        ds.save().unwrap();
        assert_eq!(snapshot(&dir), before, "{name}");
    }
}

#[test]
fn a_full_rewrite_is_semantically_identical() {
    for name in FIXTURES {
        let out = tempfile::tempdir().unwrap();
        let mut ds = Dataset::load(fixture(name)).unwrap();
        ds.save_as(out.path()).unwrap();
        for file in ["metadata.json", "samples.json", "frames.json"] {
            let orig = fixture(name).join(file);
            if orig.exists() {
                assert_eq!(
                    read_json(&out.path().join(file)),
                    read_json(&orig),
                    "{name}/{file}"
                );
            }
        }
        // And it loads again.
        assert_eq!(Dataset::load(out.path()).unwrap().len(), ds.len());
    }
}

#[test]
fn edits_survive_a_save_and_only_changed_files_are_written() {
    let (_tmp, dir) = scratch("image-all-label-types");
    let meta_before = fs::read(dir.join("metadata.json")).unwrap();
    let mut ds = Dataset::load(&dir).unwrap();
    let sid = oid("6b02536263110a1e76c075f7");
    let s = ds.sample_mut(sid).unwrap();
    let Some(Label::Detections(mut d)) = s.label("ground_truth").unwrap() else {
        panic!()
    };
    d.items[0].base.label = Some("bus".into());
    d.items.remove(1);
    let mut new = Detection {
        base: LabelBase::new("bike"),
        ..Default::default()
    };
    new.data.bounding_box = Some([0.25, 0.25, 0.5, 0.5]);
    new.base.extra.insert("occluded".into(), json!(false));
    let new_id = new.base.id.unwrap();
    d.items.push(new);
    s.set_label("ground_truth", Some(&Label::Detections(d)));
    ds.save().unwrap();
    assert_eq!(
        fs::read(dir.join("metadata.json")).unwrap(),
        meta_before,
        "metadata untouched"
    );

    let ds = Dataset::load(&dir).unwrap();
    let s = ds.sample_by_id(sid).unwrap();
    let Some(Label::Detections(d)) = s.label("ground_truth").unwrap() else {
        panic!()
    };
    let labels: Vec<_> = d
        .items
        .iter()
        .map(|l| l.base.label.clone().unwrap())
        .collect();
    assert_eq!(labels, ["bus", "bike"]);
    assert_eq!(
        d.items[0].base.extra.get("color"),
        Some(&json!("red")),
        "custom attrs kept"
    );
    assert_eq!(d.items[1].base.id, Some(new_id));
    assert_eq!(s.get("_rand"), Some(&json!(0.99931050741061)));
}

/// The content digest names what a dataset holds: an edit changes it, and the dataset saved
/// and loaded again (the next command's view of it) has the digest it had in memory.
#[test]
fn the_content_digest_follows_edits_and_survives_a_save() {
    let (_tmp, dir) = scratch("image-all-label-types");
    let mut ds = Dataset::load(&dir).unwrap();
    let loaded = ds.content_digest();
    assert_eq!(Dataset::load(&dir).unwrap().content_digest(), loaded);
    let sid = oid("6b02536263110a1e76c075f7");
    let s = ds.sample_mut(sid).unwrap();
    let Some(Label::Detections(mut d)) = s.label("ground_truth").unwrap() else {
        panic!()
    };
    d.items[0].base.label = Some("bus".into());
    s.set_label("ground_truth", Some(&Label::Detections(d)));
    let edited = ds.content_digest();
    assert_ne!(edited, loaded, "an edited label changes the digest");
    ds.save().unwrap();
    assert_eq!(Dataset::load(&dir).unwrap().content_digest(), edited);
}

#[test]
fn new_fields_are_declared_as_fiftyone_does() {
    let (_tmp, dir) = scratch("image-all-label-types");
    let mut ds = Dataset::load(&dir).unwrap();
    let ids: Vec<_> = ds.samples().iter().map(|s| s.id()).collect();
    let cls = Label::Classification(Classification {
        base: LabelBase::new("ok"),
        ..Default::default()
    });
    ds.set_label(ids[0], "review", Some(&cls)).unwrap();
    // A field set directly on a sample is declared at save time.
    ds.sample_mut(ids[1]).unwrap().set("score", json!(0.5));
    ds.sample_mut(ids[2])
        .unwrap()
        .set_label("boxes", Some(&Label::Detections(LabelList::new(vec![]))));
    ds.save().unwrap();
    let meta = read_json(&dir.join("metadata.json"));
    let decl = |n: &str| {
        meta["sample_fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == n)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        decl("review")["embedded_doc_type"],
        "fiftyone.core.labels.Classification"
    );
    assert_eq!(decl("review")["fields"].as_array().unwrap().len(), 5);
    assert_eq!(decl("score")["ftype"], "fiftyone.core.fields.FloatField");
    assert_eq!(
        decl("boxes")["embedded_doc_type"],
        "fiftyone.core.labels.Detections"
    );
    assert_eq!(
        decl("boxes")["fields"][0]["embedded_doc_type"],
        "fiftyone.core.labels.Detection"
    );
    let ds = Dataset::load(&dir).unwrap();
    assert_eq!(
        ds.field_label_class(&"review".into()).as_deref(),
        Some("Classification")
    );
    // A declared field cannot change class.
    let mut ds = ds;
    let dets = Label::Detections(LabelList::new(vec![]));
    assert!(matches!(
        ds.set_label(ids[0], "review", Some(&dets)),
        Err(DatasetError::FieldType { .. })
    ));
}

#[test]
fn legacy_datasets_get_legacy_declarations() {
    let (_tmp, dir) = scratch("legacy-format");
    let mut ds = Dataset::load(&dir).unwrap();
    let id = ds.samples()[0].id();
    ds.declare_field(&"flag".into(), &FieldType::Bool).unwrap();
    ds.sample_mut(id).unwrap().set("flag", json!(true));
    ds.save().unwrap();
    let meta = read_json(&dir.join("metadata.json"));
    assert_eq!(
        meta["sample_fields"]["flag"],
        "fiftyone.core.fields.BooleanField"
    );
}

#[test]
fn run_records_in_metadata_are_kept_and_editable() {
    let (_tmp, dir) = scratch("with-labelstudio-run");
    let mut ds = Dataset::load(&dir).unwrap();
    assert!(
        ds.metadata()["annotation_runs"]["keep_run"]["config"]["label_schema"]["ground_truth"]
            .is_object()
    );
    ds.metadata_mut()["info"] = json!({"touched": true});
    ds.save().unwrap();
    let meta = read_json(&dir.join("metadata.json"));
    let orig = read_json(&fixture("with-labelstudio-run").join("metadata.json"));
    assert_eq!(meta["annotation_runs"], orig["annotation_runs"]);
    assert_eq!(meta["info"], json!({"touched": true}));
    assert!(dir.join("annotations/keep_run.json").is_file());
    assert!(
        Dataset::load(fixture("image-all-label-types"))
            .unwrap()
            .check_media()
            .is_ok()
    );
}

#[test]
fn escaped_keys_are_found() {
    // Python's json writes non-ASCII keys as \uXXXX escapes.
    let (_tmp, dir) = scratch("image-all-label-types");
    let text = fs::read_to_string(dir.join("samples.json")).unwrap();
    fs::write(
        dir.join("samples.json"),
        text.replace("\"ground_truth\"", "\"gr\\u00f6und\""),
    )
    .unwrap();
    let mut ds = Dataset::load(&dir).unwrap();
    let id = ds.samples()[0].id();
    assert_eq!(
        ds.field_label_class(&"gröund".into()).as_deref(),
        Some("Detections")
    );
    let s = ds.sample_mut(id).unwrap();
    assert_eq!(
        s.remove_labels("gröund", &[oid("6b02535c63110a1e76c075c0")]),
        1
    );
}

#[test]
fn frame_edits_are_saved() {
    let (_tmp, dir) = scratch("video-tracks");
    let mut ds = Dataset::load(&dir).unwrap();
    let sid = ds.samples()[0].id();
    let f = ds.frame_mut(sid, FrameNumber::new(2).unwrap()).unwrap();
    let lid = f.label_objects("dets")[0]["_id"].clone();
    assert_eq!(
        f.remove_labels("dets", &[ObjectId::from_ejson(&lid).unwrap()]),
        1
    );
    ds.save().unwrap();
    let ds = Dataset::load(&dir).unwrap();
    assert_eq!(ds.frames(sid)[1].label_objects("dets").len(), 1);
    assert_eq!(ds.frames(sid)[0].label_objects("dets").len(), 2);
}

/// New frames are written as FiftyOne 1.22.1 writes them: a derived `_id`, `frame_number`, the
/// field, `_sample_id`, `_dataset_id`, the dates; frames.json stays in FiftyOne's order
/// (sample by sample, by number); frames nobody touched keep their bytes; a new frame field is
/// declared in `frame_fields`; a second save of the same edits writes the same file.
#[test]
fn new_frames_follow_fiftyone() {
    let (_tmp, dir) = scratch("video-tracks");
    let original = fs::read_to_string(dir.join("frames.json")).unwrap();
    let frame_text = |text: &str, id: &str| -> String {
        let start = text
            .find(&format!("{{\"_id\": {{\"$oid\": \"{id}\"}}"))
            .unwrap();
        // A frame document ends with its `last_modified_at` date.
        let last = start + text[start..].find("\"last_modified_at\"").unwrap();
        let end = last + text[last..].find("}}").unwrap() + 2;
        text[start..end].to_string()
    };
    let (first, third) = ("6b0253a830264767f156f4d2", "6b0253a830264767f156f4d5");
    let edit = |dir: &Path| {
        let mut ds = Dataset::load(dir).unwrap();
        let sid = ds.samples()[0].id();
        let n = |i| FrameNumber::new(i).unwrap();
        let qa = json!({"_cls": "Detections", "detections": []});
        ds.set_frame_field(sid, n(5), "qa", qa.clone()).unwrap();
        ds.set_frame_field(sid, n(4), "qa", qa.clone()).unwrap();
        ds.set_frame_field(sid, n(2), "qa", qa).unwrap();
        ds.save().unwrap();
        sid
    };
    let sid = edit(&dir);
    let saved = fs::read_to_string(dir.join("frames.json")).unwrap();
    for id in [first, third] {
        assert!(
            saved.contains(&frame_text(&original, id)),
            "frame {id} kept its bytes"
        );
    }
    let ds = Dataset::load(&dir).unwrap();
    let numbers: Vec<u32> = read_json(&dir.join("frames.json"))["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["frame_number"].as_u64().unwrap() as u32)
        .collect();
    assert_eq!(numbers, [1, 2, 3, 4, 5]);
    let new = ds.frame(sid, FrameNumber::new(4).unwrap()).unwrap();
    let keys: Vec<&str> = new.as_object().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "_id",
            "frame_number",
            "qa",
            "_sample_id",
            "_dataset_id",
            "created_at",
            "last_modified_at"
        ]
    );
    assert_eq!(new.get("_sample_id"), Some(&sid.to_ejson()));
    let old = ds.frame(sid, FrameNumber::new(2).unwrap()).unwrap();
    assert_eq!(
        old.as_object().keys().next_back().map(String::as_str),
        Some("qa")
    );
    assert!(ds.field_exists(&"frames.qa".into()));
    assert_eq!(
        ds.field_label_class(&"frames.qa".into()).as_deref(),
        Some("Detections")
    );
    let decl = read_json(&dir.join("metadata.json"))["frame_fields"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["name"] == "qa");
    assert!(decl, "the new frame field is declared");
    // The same edits on another copy give the same frame ids.
    let (_tmp2, dir2) = scratch("video-tracks");
    edit(&dir2);
    let ids = |d: &Path| -> Vec<Value> {
        read_json(&d.join("frames.json"))["frames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["_id"].clone())
            .collect()
    };
    assert_eq!(ids(&dir), ids(&dir2));
}

/// A video with two frames of the same number is refused, naming the sample.
#[test]
fn duplicate_frame_numbers_are_refused() {
    let (_tmp, dir) = scratch("video-tracks");
    let text = fs::read_to_string(dir.join("frames.json")).unwrap();
    fs::write(
        dir.join("frames.json"),
        text.replace("\"frame_number\": 2,", "\"frame_number\": 1,"),
    )
    .unwrap();
    let e = Dataset::load(&dir).unwrap_err().to_string();
    assert!(
        e.ends_with("frames.json: sample 6b0253a82ba0e75ca6518020: two frames numbered 1"),
        "{e}"
    );
}

// ---- corrupt datasets ----

fn load_err(dir: &Path) -> String {
    let before = snapshot(dir);
    let e = Dataset::load(dir).unwrap_err().to_string();
    assert_eq!(
        snapshot(dir),
        before,
        "a failed load leaves files untouched"
    );
    e
}

fn edit_samples(dir: &Path, f: impl FnOnce(&mut Vec<Value>)) {
    let mut v = read_json(&dir.join("samples.json"));
    f(v["samples"].as_array_mut().unwrap());
    fs::write(dir.join("samples.json"), serde_json::to_vec(&v).unwrap()).unwrap();
}

#[test]
fn truncated_json_names_file_and_position() {
    let (_tmp, dir) = scratch("image-all-label-types");
    let text = fs::read(dir.join("samples.json")).unwrap();
    fs::write(dir.join("samples.json"), &text[..text.len() / 2]).unwrap();
    let e = load_err(&dir);
    assert!(e.contains("samples.json: line 1, column"), "{e}");
    assert!(e.contains("EOF"), "{e}");
}

#[test]
fn missing_metadata_is_reported() {
    let (_tmp, dir) = scratch("image-all-label-types");
    fs::remove_file(dir.join("metadata.json")).unwrap();
    let e = load_err(&dir);
    assert!(e.contains("metadata.json is missing"), "{e}");
    assert!(e.contains("image-all-label-types"), "{e}");
}

#[test]
fn missing_or_malformed_files_are_named() {
    let (_tmp, dir) = scratch("image-all-label-types");
    fs::remove_file(dir.join("samples.json")).unwrap();
    let e = load_err(&dir);
    assert!(e.contains("samples.json"), "{e}");

    let (_tmp, dir) = scratch("image-all-label-types");
    fs::write(dir.join("metadata.json"), b"[1, 2]").unwrap();
    assert!(load_err(&dir).contains("metadata.json: line 1, column 1: expected a JSON object"));

    let (_tmp, dir) = scratch("image-all-label-types");
    fs::write(dir.join("samples.json"), br#"{"frames": []}"#).unwrap();
    assert!(load_err(&dir).contains("missing the top-level \"samples\" list"));

    let (_tmp, dir) = scratch("video-tracks");
    let text = fs::read(dir.join("frames.json")).unwrap();
    fs::write(dir.join("frames.json"), &text[..text.len() - 10]).unwrap();
    assert!(load_err(&dir).contains("frames.json: line 1, column"));
}

#[test]
fn wrong_types_name_file_sample_and_field() {
    let (_tmp, dir) = scratch("image-all-label-types");
    edit_samples(&dir, |s| {
        s[1]["ground_truth"]["detections"][0]["bounding_box"] = json!("wide")
    });
    let e = load_err(&dir);
    assert!(e.contains("samples.json"), "{e}");
    let id = read_json(&dir.join("samples.json"))["samples"][1]["_id"]["$oid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(e.contains(&format!("sample {id}")), "{e}");
    assert!(
        e.contains("ground_truth.detections[0].bounding_box: expected a list of numbers"),
        "{e}"
    );

    let (_tmp, dir) = scratch("image-all-label-types");
    edit_samples(&dir, |s| s[0]["tags"] = json!("train"));
    assert!(load_err(&dir).contains("tags: expected a list of strings"));

    let (_tmp, dir) = scratch("image-all-label-types");
    edit_samples(&dir, |s| {
        s[3].as_object_mut().unwrap().remove("_id");
    });
    assert!(load_err(&dir).contains("sample #3: _id"));

    let (_tmp, dir) = scratch("image-all-label-types");
    fs::write(dir.join("samples.json"), br#"{"samples": [1]}"#).unwrap();
    assert!(load_err(&dir).contains("sample #0: expected an object"));
}

#[test]
fn duplicate_ids_are_reported() {
    let (_tmp, dir) = scratch("image-all-label-types");
    edit_samples(&dir, |s| s[2]["_id"] = s[0]["_id"].clone());
    let e = load_err(&dir);
    assert!(
        e.contains("duplicate sample id 6b02536263110a1e76c075f7 (entries #0 and #2)"),
        "{e}"
    );

    let (_tmp, dir) = scratch("image-all-label-types");
    edit_samples(&dir, |s| s[1]["cls"]["_id"] = s[0]["cls"]["_id"].clone());
    let e = load_err(&dir);
    assert!(e.contains("field cls: label id 6b02535c63110a1e76c075bd is already used by a label of sample 6b02536263110a1e76c075f7"), "{e}");
}

#[test]
fn unreadable_image_names_file_and_sample() {
    let (_tmp, dir) = scratch("image-all-label-types");
    edit_samples(&dir, |s| {
        s[0].as_object_mut().unwrap().remove("metadata");
    });
    fs::write(dir.join("data/img0.png"), b"garbage").unwrap();
    let ds = Dataset::load(&dir).unwrap();
    let e = ds.check_media().unwrap_err().to_string();
    assert!(
        e.contains("sample 6b02536263110a1e76c075f7") && e.contains("img0.png"),
        "{e}"
    );
    let e = ds
        .image_size(oid("6b02536263110a1e76c075f7"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("sample 6b02536263110a1e76c075f7"), "{e}");
    assert!(e.contains("img0.png"), "{e}");
}

#[test]
fn a_failed_save_writes_nothing() {
    let (_tmp, dir) = scratch("image-all-label-types");
    let before = snapshot(&dir);
    let mut ds = Dataset::load(&dir).unwrap();
    let id = ds.samples()[0].id();
    ds.sample_mut(id).unwrap().set("weird", json!([{"a": 1}]));
    let e = ds.save().unwrap_err().to_string();
    assert!(e.contains("field weird is not declared"), "{e}");
    assert!(e.contains(&id.to_string()), "{e}");
    assert_eq!(snapshot(&dir), before);
}

#[test]
fn datasets_and_views_can_be_shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Dataset>();
    send_sync::<annoform::dataset::view::View>();
    let ds = Dataset::load(fixture("image-all-label-types")).unwrap();
    let n = std::thread::scope(|s| {
        let h = s.spawn(|| {
            ds.samples()
                .iter()
                .filter(|x| x.label("cls").unwrap().is_some())
                .count()
        });
        h.join().unwrap()
    });
    assert_eq!(n, 5);
}

#[test]
fn unchanged_samples_are_written_byte_for_byte() {
    for name in FIXTURES {
        let out = tempfile::tempdir().unwrap();
        let mut ds = Dataset::load(fixture(name)).unwrap();
        ds.save_as(out.path()).unwrap();
        for file in ["samples.json", "frames.json"] {
            let orig = fixture(name).join(file);
            if orig.exists() {
                assert!(
                    fs::read(out.path().join(file)).unwrap() == fs::read(&orig).unwrap(),
                    "{name}/{file} differs"
                );
            }
        }
    }
}

/// A process id no process has (above Linux's largest, 2^22).
fn dead_pid() -> u32 {
    4_194_400
}

#[test]
fn temporary_files_of_killed_writers_are_removed_on_open_and_save() {
    let (_tmp, dir) = scratch("image-all-label-types");
    let dead = dead_pid();
    let stale = dir.join(format!(".samples.json.annoform-{dead}.tmp"));
    // PID 1 always runs: its file may be in the middle of being written.
    let live = dir.join(".samples.json.annoform-1.tmp");
    let foreign = dir.join(".samples.json.tmp");
    for f in [&stale, &live, &foreign] {
        fs::write(f, b"{\"samples\": [").unwrap();
    }
    let mut ds = Dataset::load(&dir).unwrap();
    assert!(!stale.exists(), "a dead writer's file is removed on open");
    assert!(live.exists() && foreign.exists());

    fs::write(&stale, b"{").unwrap();
    let id = ds.samples()[0].id();
    ds.sample_mut(id).unwrap().set("reviewed", json!(true));
    ds.save().unwrap();
    assert!(!stale.exists(), "a dead writer's file is removed on save");
    assert!(live.exists() && foreign.exists());
}

/// Writes Python-style non-finite literals into the first sample (a float field and a
/// detection's confidence) and the metadata, as FiftyOne's json writes them; returns the
/// first sample's text.
fn with_python_non_finite(dir: &Path) -> String {
    let path = dir.join("samples.json");
    let text = fs::read_to_string(&path).unwrap();
    let text = text.replacen(
        r#""filepath": "data/img0.png","#,
        r#""filepath": "data/img0.png", "score": NaN, "low": -Infinity, "high": Infinity, "note": "NaN","#,
        1,
    );
    let text = text.replacen(r#""confidence": 0.9"#, r#""confidence": NaN"#, 1);
    fs::write(&path, &text).unwrap();
    let meta = dir.join("metadata.json");
    let m = fs::read_to_string(&meta).unwrap();
    fs::write(&meta, m.replacen('{', r#"{"info_threshold": NaN, "#, 1)).unwrap();
    let start = text.find(r#"{"_id""#).unwrap();
    let end = text[start..].find(r#"}, {"_id""#).unwrap() + start + 1;
    text[start..end].to_string()
}

#[test]
fn python_nan_and_infinity_are_read_and_written_back_unchanged() {
    let (_tmp, dir) = scratch("image-all-label-types");
    let first = with_python_non_finite(&dir);
    let mut ds = Dataset::load(&dir).unwrap();
    let s0 = &ds.samples()[0];
    assert_eq!(s0.get("score"), Some(&json!({"$numberDouble": "NaN"})));
    assert_eq!(s0.get("low"), Some(&json!({"$numberDouble": "-Infinity"})));
    assert_eq!(s0.get("high"), Some(&json!({"$numberDouble": "Infinity"})));
    assert_eq!(s0.get("note"), Some(&json!("NaN")));
    assert_eq!(
        ds.metadata()["info_threshold"],
        json!({"$numberDouble": "NaN"})
    );
    match s0.label("cls").unwrap() {
        Some(Label::Classification(c)) => assert!(c.data.confidence.unwrap().is_nan()),
        other => panic!("{other:?}"),
    }

    let second = ds.samples()[1].id();
    ds.sample_mut(second).unwrap().set("reviewed", json!(true));
    ds.save().unwrap();
    let saved = fs::read_to_string(dir.join("samples.json")).unwrap();
    assert!(
        saved.contains(&first),
        "an unchanged sample is written back as read"
    );
    let again = Dataset::load(&dir).unwrap();
    assert_eq!(
        again.samples()[0].get("score"),
        Some(&json!({"$numberDouble": "NaN"}))
    );
    assert_eq!(again.samples()[1].get("reviewed"), Some(&json!(true)));

    // An edited sample with a non-finite value is written in Extended JSON.
    let mut ds = again;
    let first_id = ds.samples()[0].id();
    ds.sample_mut(first_id)
        .unwrap()
        .set("reviewed", json!(false));
    ds.save().unwrap();
    let saved: Value = read_json(&dir.join("samples.json"));
    assert_eq!(
        saved["samples"][0]["score"],
        json!({"$numberDouble": "NaN"})
    );
}
