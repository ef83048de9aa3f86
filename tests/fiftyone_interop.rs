//! Round trip through real FiftyOne 1.22.1: FiftyOne exports a dataset with every label type,
//! annoform loads it, adds/edits/deletes labels and adds fields, saves, and FiftyOne imports
//! the result with `fo.Dataset.from_dir(..., fo.types.FiftyOneDataset)`. FiftyOne's view of
//! the result must equal its view of the original export with exactly annoform's changes.
//!
//! Needs FiftyOne: `scripts/fiftyone-venv.sh` installs it into a cached venv
//! (`${ANNOFORM_CACHE:-$HOME/.cache/annoform}`). If it cannot, this test fails — it never skips.
//! Every FiftyOne step connects to one mongod for the whole test binary (FiftyOne's own, see
//! `support/mongo.rs`) in a database of its own, instead of each step starting a server.

use std::path::Path;
use std::process::Command;

use annoform::dataset::dir::Dataset;
use annoform::dataset::ejson::{self, ObjectId};
use annoform::dataset::labels::{
    Classification, Detection, Keypoint, Label, LabelList, Segmentation,
};
use annoform::dataset::mask::{Dtype, Mask};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

#[allow(unused_imports)]
#[path = "cvat_fake/mod.rs"]
mod cvat_fake;
#[path = "support/fs.rs"]
mod fs;
#[path = "support/mongo.rs"]
mod mongo;
#[path = "interop/video.rs"]
mod video;
#[path = "support/video_edits.rs"]
mod video_edits;
use fs::{copy_dir, test_backend};

const SCRIPT: &str = "tests/interop/fiftyone_interop.py";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the FiftyOne script with FiftyOne connected to the test binary's one mongod (FiftyOne's
/// own, `support/mongo.rs`), in a database of its own: FiftyOne never starts a server per step.
fn run_fiftyone(args: &[&str]) -> String {
    let server = mongo::server();
    server.fiftyone(&server.database("interop"), &repo().join(SCRIPT), args)
}

/// The same normalisation as the Python dump: ids as hex, arrays as shape/dtype/sha256,
/// NaN as "NaN", housekeeping keys dropped.
fn norm(v: &Value) -> Value {
    const SKIP: [&str; 4] = [
        "created_at",
        "last_modified_at",
        "_dataset_id",
        "_sample_id",
    ];
    match v {
        Value::Object(o) => {
            if let Some(id) = ejson::oid_str(v) {
                return json!(id);
            }
            if o.contains_key("$binary") {
                let m = Mask::from_ejson(v).expect("every binary in these datasets is an array");
                let sha: String = Sha256::digest(&m.data)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                return json!({"__ndarray__": {"shape": m.shape, "dtype": m.dtype.numpy_name(), "sha256": sha}});
            }
            if o.contains_key("$numberDouble") {
                let x = ejson::as_f64(v).unwrap();
                return if x.is_nan() { json!("NaN") } else { json!(x) };
            }
            Value::Object(
                o.iter()
                    .filter(|(k, _)| !SKIP.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), norm(v)))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(norm).collect()),
        other => other.clone(),
    }
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap()
}

fn checker_mask(shape: [usize; 2], dtype: Dtype, modulo: u8) -> Mask {
    let mut m = Mask::zeros(shape.to_vec(), dtype);
    for (i, b) in m.data.iter_mut().enumerate() {
        *b = (i % 3) as u8 % modulo;
    }
    m
}

/// Edits the image dataset; returns the (sample, field) pairs changed.
fn edit_images(ds: &mut Dataset) -> Vec<(ObjectId, String)> {
    let ids: Vec<ObjectId> = ds.samples().iter().map(|s| s.id()).collect();
    let mut changed = Vec::new();

    // s0: relabel + new attribute, delete the masked detection, add one with a mask.
    let s = ds.sample_mut(ids[0]).unwrap();
    let Some(Label::Detections(mut dets)) = s.label("ground_truth").unwrap() else {
        panic!("ground_truth")
    };
    assert_eq!(dets.items.len(), 2);
    dets.items[0].base.label = Some("bus".into());
    dets.items[0]
        .base
        .extra
        .insert("reviewed".into(), json!(true));
    assert!(dets.items[1].data.mask.is_some());
    dets.items.remove(1);
    let mut new = Detection::new("bike", [0.25, 0.25, 0.125, 0.25]);
    new.set_mask(&checker_mask([12, 8], Dtype::Bool, 2));
    new.data.confidence = Some(0.75);
    new.base.extra.insert("occluded".into(), json!(false));
    new.base.extra.insert("source".into(), json!("annoform"));
    new.base.tags = Some(vec!["new".into()]);
    dets.items.push(new);
    s.set_label("ground_truth", Some(&Label::Detections(dets)));
    changed.push((ids[0], "ground_truth".to_owned()));

    // s1: move a keypoint (the NaN point stays NaN), add a keypoint set, drop a polyline.
    let s = ds.sample_mut(ids[1]).unwrap();
    let Some(Label::Keypoints(mut kps)) = s.label("kps").unwrap() else {
        panic!("kps")
    };
    let pts = kps.items[0].data.points.as_mut().unwrap();
    pts[0] = [0.21, 0.31];
    assert!(pts[2][0].is_nan());
    kps.items.push(Keypoint::new(
        "hand",
        vec![[0.5, 0.5], [f64::NAN, f64::NAN]],
    ));
    s.set_label("kps", Some(&Label::Keypoints(kps)));
    let pool = s.label_objects("polylines")[1]["_id"].clone();
    assert_eq!(
        s.remove_labels("polylines", &[ObjectId::from_ejson(&pool).unwrap()]),
        1
    );
    changed.push((ids[1], "kps".to_owned()));
    changed.push((ids[1], "polylines".to_owned()));

    // s2: a new segmentation mask, a relabelled classification without confidence.
    let s = ds.sample_mut(ids[2]).unwrap();
    let Some(Label::Segmentation(mut seg)) = s.label("seg").unwrap() else {
        panic!("seg")
    };
    let old = seg.decode_mask().unwrap().unwrap();
    assert_eq!(old.shape, [48, 64]);
    seg.data.mask = Segmentation::new(&checker_mask([48, 64], Dtype::U8, 3))
        .data
        .mask;
    s.set_label("seg", Some(&Label::Segmentation(seg)));
    let Some(Label::Classification(mut cls)) = s.label("cls").unwrap() else {
        panic!("cls")
    };
    cls.base.label = Some("dog".into());
    cls.data.confidence = None;
    s.set_label("cls", Some(&Label::Classification(cls)));
    changed.push((ids[2], "seg".to_owned()));
    changed.push((ids[2], "cls".to_owned()));

    // s3: a new tag, a cleared label field.
    let s = ds.sample_mut(ids[3]).unwrap();
    s.set("tags", json!(["val", "hard", "reviewed"]));
    s.set_label("cls", None);
    changed.push((ids[3], "tags".to_owned()));
    changed.push((ids[3], "cls".to_owned()));

    // Every sample: a new label field (declared explicitly) and a new scalar field (declared
    // on save).
    for (i, id) in ids.iter().enumerate() {
        let mut c = Classification::new(if i % 2 == 0 { "ok" } else { "redo" });
        c.data.confidence = Some(0.5 + i as f64 / 10.0);
        ds.set_label(*id, "review", Some(&Label::Classification(c)))
            .unwrap();
        ds.sample_mut(*id)
            .unwrap()
            .set("review_score", json!(i as f64 + 0.5));
        changed.push((*id, "review".to_owned()));
        changed.push((*id, "review_score".to_owned()));
    }
    changed
}

/// Edits the video dataset's frames; returns (sample, frame number, field) changed.
fn edit_video(ds: &mut Dataset) -> Vec<(ObjectId, u64, String)> {
    let sid = ds.samples()[0].id();
    let mut changed = Vec::new();
    let f = ds
        .frame_mut(sid, annoform::dataset::FrameNumber::new(2).unwrap())
        .unwrap();
    let Some(Label::Detections(mut dets)) = f.label("dets").unwrap() else {
        panic!("dets")
    };
    dets.items[0].base.label = Some("truck".into());
    dets.items[0]
        .base
        .extra
        .insert("keyframe".into(), json!(true));
    dets.items.remove(1);
    f.set_label("dets", Some(&Label::Detections(dets)));
    changed.push((sid, 2, "dets".to_owned()));
    let f = ds
        .frame_mut(sid, annoform::dataset::FrameNumber::new(3).unwrap())
        .unwrap();
    let mut d = Detection::new("dog", [0.7, 0.7, 0.1, 0.1]);
    d.base.index = Some(3);
    d.base.extra.insert("keyframe".into(), json!(true));
    f.set_label("qa", Some(&Label::Detections(LabelList::new(vec![d]))));
    changed.push((sid, 3, "qa".to_owned()));
    changed
}

#[test]
fn fiftyone_reads_what_annoform_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let scratch = tmp.path();
    let export = scratch.join("export");
    let export_s = export.to_string_lossy().into_owned();
    run_fiftyone(&[
        "export",
        &export_s,
        &scratch.join("dump.json").to_string_lossy(),
    ]);

    // Images.
    let dir = export.join("images");
    let mut ds = Dataset::load(&dir).unwrap();
    let changed = edit_images(&mut ds);
    ds.save().unwrap();
    let mut want = read_json(&scratch.join("images-dump.json"));
    let saved = Dataset::load(&dir).unwrap();
    for (sid, field) in &changed {
        let v = saved
            .sample_by_id(*sid)
            .unwrap()
            .get(field)
            .cloned()
            .unwrap_or(Value::Null);
        want["samples"][sid.to_string()][field] = norm(&v);
    }
    let schema = want["schema"].as_object_mut().unwrap();
    schema.insert(
        "review".into(),
        json!(["EmbeddedDocumentField", "Classification"]),
    );
    schema.insert("review_score".into(), json!(["FloatField", null]));
    let expected = scratch.join("images-expected.json");
    std::fs::write(&expected, serde_json::to_vec(&want).unwrap()).unwrap();
    run_fiftyone(&[
        "verify",
        &dir.to_string_lossy(),
        &expected.to_string_lossy(),
    ]);

    // Spot-check the expectation itself, so an edit that silently did nothing fails here.
    let s0 = &want["samples"][saved.samples()[0].id().to_string()];
    assert_eq!(s0["ground_truth"]["detections"][0]["label"], "bus");
    assert_eq!(
        s0["ground_truth"]["detections"][1]["mask"]["__ndarray__"]["shape"],
        json!([12, 8])
    );
    assert_eq!(
        want["samples"][saved.samples()[3].id().to_string()]["cls"],
        Value::Null
    );

    // A legacy-format export (sample_fields as a map of type strings) with a new field.
    let legacy = scratch.join("legacy");
    copy_dir(
        &repo().join("tests/fixtures/fiftyone-1.22.1/legacy-format"),
        &legacy,
    );
    let mut ds = Dataset::load(&legacy).unwrap();
    let first = ds.samples()[0].id();
    let mut det = Detection::new("cat", [0.1, 0.1, 0.5, 0.5]);
    det.base.extra.insert("occluded".into(), json!(true));
    let det_id = det.base.id.unwrap();
    ds.set_label(
        first,
        "legacy_new",
        Some(&Label::Detections(LabelList::new(vec![det]))),
    )
    .unwrap();
    ds.save().unwrap();
    let out = scratch.join("legacy-dump.json");
    run_fiftyone(&["dump", &legacy.to_string_lossy(), &out.to_string_lossy()]);
    let got = read_json(&out);
    assert_eq!(got["samples"].as_object().unwrap().len(), 5);
    assert_eq!(
        got["schema"]["legacy_new"],
        json!(["EmbeddedDocumentField", "Detections"])
    );
    // FiftyOne's legacy importer gives samples new ids (label ids are kept): find the sample
    // by its media.
    let filepath = ds
        .sample_by_id(first)
        .unwrap()
        .filepath()
        .unwrap()
        .to_owned();
    let sample = got["samples"]
        .as_object()
        .unwrap()
        .values()
        .find(|s| s["filepath"].as_str().unwrap().ends_with(&filepath))
        .unwrap_or_else(|| panic!("no sample with media {filepath} in FiftyOne's import"));
    let new = &sample["legacy_new"]["detections"][0];
    assert_eq!(new["_id"], det_id.to_string(), "{sample}");
    assert_eq!(new["occluded"], true);
    let untouched = &sample["ground_truth"]["detections"][0];
    assert_eq!(untouched["_id"], "6b02535c63110a1e76c075c0");
    assert_eq!(untouched["color"], "red");

    // Video frames.
    let dir = export.join("video");
    let mut ds = Dataset::load(&dir).unwrap();
    let changed = edit_video(&mut ds);
    ds.save().unwrap();
    let mut want = read_json(&scratch.join("video-dump.json"));
    let saved = Dataset::load(&dir).unwrap();
    for (sid, n, field) in &changed {
        let frames = saved.frames(*sid);
        let frame = frames
            .iter()
            .find(|f| f.frame_number().map(|n| n.get() as u64) == Some(*n))
            .unwrap();
        want["frames"][sid.to_string()][n.to_string()][field] = norm(frame.get(field).unwrap());
    }
    let fs: &mut Map<String, Value> = want["frame_schema"].as_object_mut().unwrap();
    fs.insert("qa".into(), json!(["EmbeddedDocumentField", "Detections"]));
    let expected = scratch.join("video-expected.json");
    std::fs::write(&expected, serde_json::to_vec(&want).unwrap()).unwrap();
    run_fiftyone(&[
        "verify",
        &dir.to_string_lossy(),
        &expected.to_string_lossy(),
    ]);
}

fn annoform(ws: &Path, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_annoform"))
        .args(args)
        .current_dir(ws)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "annoform {args:?}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A merge through the whole engine, read back by FiftyOne: an edited box keeps its id, a
/// deleted one is gone, a box drawn by an annotator gets a valid ObjectId, a class outside the
/// schema is merged like any class (as FiftyOne merges it), a label of another type lands in the
/// field named after its type (`polylines`, next to its labels), and `dest_field` creates a
/// new field while the source stays as it was. FiftyOne must see exactly what annoform wrote.
#[test]
fn fiftyone_reads_what_a_merge_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let (ws, scratch) = (tmp.path().join("ws"), tmp.path().join("scratch"));
    std::fs::create_dir_all(&scratch).unwrap();
    let data = ws.join("datasets/quickstart");
    copy_dir(
        &repo().join("tests/fixtures/fiftyone-1.22.1/image-all-label-types"),
        &data,
    );
    std::fs::write(
        ws.join("annoform.toml"),
        format!(
            "default_backend = \"fake\"\n[datasets.quickstart]\npath = \"datasets/quickstart\"\n[backends.fake]\ncommand = [\"{}\", \"{}\"]\n",
            test_backend().display(),
            ws.join("backend.json").display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(ws.join("manifests")).unwrap();
    std::fs::write(
        ws.join("manifests/run.yaml"),
        "apiVersion: annoform/v1\nkind: AnnotationRun\nkey: review\ndataset: quickstart\n\
         view:\n  - limit: 3\nlabel_schema:\n  ground_truth:\n    classes: [car, person, bike]\n\
         load:\n  dest_field: gt_reviewed\n  unexpected: keep\n",
    )
    .unwrap();
    annoform(&ws, &["apply", "--auto-approve"]);
    let before = Dataset::load(&data).unwrap();

    // Annotators, on every task: relabel the first box, delete the second, draw a bike, a
    // truck (a class outside the schema) and a polyline (another label type, as a backend
    // lists it).
    let path = ws.join("backend.json");
    let mut store = read_json(&path);
    for t in store["projects"][0]["tasks"].as_array_mut().unwrap() {
        t["status"] = json!("completed");
        t["complete"] = json!(true);
        for (sample, fields) in t["annotations"].as_object_mut().unwrap() {
            let labels = fields["ground_truth"].as_array_mut().unwrap();
            labels[0]["label"]["label"] = json!("bike");
            labels.remove(1);
            for (n, class) in ["bike", "truck"].iter().enumerate() {
                labels.push(json!({"backend_id": format!("{sample}-new-{n}"),
                    "label": {"_cls": "Detection", "label": class, "bounding_box": [0.5, 0.5, 0.25, 0.25]}}));
            }
            labels.push(json!({"backend_id": format!("{sample}-line"),
                "label": {"_cls": "Polyline", "label": "lane", "points": [[[0.1, 0.2], [0.3, 0.4]]],
                    "closed": false, "filled": false},
                "misfit": {"label_type": "polylines", "reason": "a polyline in a detections field"}}));
        }
    }
    std::fs::write(&path, serde_json::to_vec(&store).unwrap()).unwrap();
    annoform(&ws, &["apply", "--auto-approve"]);

    let after = Dataset::load(&data).unwrap();
    let dump = scratch.join("dump.json");
    run_fiftyone(&["dump", &data.to_string_lossy(), &dump.to_string_lossy()]);
    let fo = read_json(&dump);
    assert_eq!(
        fo["schema"]["gt_reviewed"],
        json!(["EmbeddedDocumentField", "Detections"])
    );
    assert_eq!(
        fo["schema"]["polylines"],
        json!(["EmbeddedDocumentField", "Polylines"])
    );
    let mut merged = 0;
    for (i, s) in after.samples().iter().enumerate() {
        let sid = s.id().to_string();
        for field in ["ground_truth", "gt_reviewed", "polylines"] {
            let ours = norm(s.get(field).unwrap_or(&Value::Null));
            assert_eq!(
                fo["samples"][&sid][field], ours,
                "FiftyOne reads sample {sid} {field} as annoform wrote it"
            );
        }
        // The source field is untouched.
        let was = before.samples()[i].get("ground_truth").cloned();
        assert_eq!(s.get("ground_truth").cloned(), was, "sample {sid}");
        if i >= 3 {
            assert!(
                s.get("gt_reviewed").is_none_or(Value::is_null),
                "outside the view"
            );
            continue;
        }
        merged += 1;
        let src = was.unwrap();
        let reviewed = &fo["samples"][&sid]["gt_reviewed"]["detections"];
        let labels: Vec<&str> = reviewed
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["label"].as_str().unwrap())
            .collect();
        assert_eq!(labels, ["bike", "bike", "truck"], "sample {sid}");
        let ids: Vec<&str> = reviewed
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["_id"].as_str().unwrap())
            .collect();
        assert!(ids.iter().all(|i| ObjectId::parse(i).is_ok()), "{ids:?}");
        assert_ne!(
            ids[0],
            ejson::oid_str(&src["detections"][0]["_id"]).unwrap(),
            "the destination holds new labels"
        );
        let kept = fo["samples"][&sid]["polylines"]["polylines"]
            .as_array()
            .unwrap();
        assert_eq!(kept.last().unwrap()["label"], "lane", "sample {sid}");
    }
    assert_eq!(merged, 3);

    // A second apply changes nothing FiftyOne could see.
    annoform(&ws, &["apply", "--auto-approve"]);
    let again = Dataset::load(&data).unwrap();
    for (a, b) in after.samples().iter().zip(again.samples()) {
        assert_eq!(a.as_object(), b.as_object());
    }
}

/// FiftyOne writes NaN and infinities as Python's json does (`NaN`, `Infinity`); annoform reads
/// them, writes unchanged samples back as read and edited ones in Extended JSON, and FiftyOne
/// reads both.
#[test]
fn fiftyone_reads_non_finite_values_annoform_wrote_back() {
    let tmp = tempfile::tempdir().unwrap();
    let scratch = tmp.path();
    let dir = scratch.join("ds");
    copy_dir(
        &repo().join("tests/fixtures/fiftyone-1.22.1/image-all-label-types"),
        &dir,
    );
    let samples = dir.join("samples.json");
    let mut text = std::fs::read_to_string(&samples).unwrap();
    for img in ["img0", "img1"] {
        text = text.replacen(
            &format!(r#""filepath": "data/{img}.png","#),
            &format!(
                r#""filepath": "data/{img}.png", "score": NaN, "high": Infinity, "low": -Infinity,"#
            ),
            1,
        );
    }
    std::fs::write(&samples, text).unwrap();
    let mut ds = Dataset::load(&dir).unwrap();
    let first = ds.samples()[0].id();
    ds.sample_mut(first).unwrap().set("reviewed", json!(true));
    ds.save().unwrap();
    let written = std::fs::read_to_string(&samples).unwrap();
    assert!(
        written.contains(r#""score":{"$numberDouble":"NaN"}"#),
        "edited sample"
    );
    assert!(written.contains(r#""score": NaN"#), "unchanged sample");

    let program = r#"
import json, math, sys
import fiftyone as fo
ds = fo.Dataset.from_dir(sys.argv[1], fo.types.FiftyOneDataset)
out = []
for s in ds.iter_samples():
    if s.has_field("score") and s["score"] is not None:
        out.append([math.isnan(s["score"]), s["high"], s["low"]])
print(json.dumps(out))
"#;
    let script = scratch.join("non_finite.py");
    std::fs::write(&script, program).unwrap();
    let server = mongo::server();
    let stdout = server.fiftyone(
        &server.database("interop"),
        &script,
        &[&dir.to_string_lossy()],
    );
    // Python's json prints infinities as Infinity/-Infinity: compare the text.
    assert_eq!(
        stdout.lines().last().unwrap_or(""),
        "[[true, Infinity, -Infinity], [true, Infinity, -Infinity]]",
        "{stdout}"
    );
}

/// annoform's runs appear in the dataset's `annotation_runs` as FiftyOne writes them:
/// FiftyOne still loads the dataset, `list_annotation_runs()` lists the runs (next to one
/// FiftyOne made itself, which stays), `get_annotation_info(key)` has the backend's config
/// and label schema, and `load_annotation_view(key)` selects the run's samples. Renaming or
/// destroying a run changes the list as FiftyOne's rename/delete_annotation_run do.
#[test]
fn fiftyone_lists_annoforms_runs() {
    let cvat = cvat_fake::FakeCvat::start();
    let tmp = tempfile::tempdir().unwrap();
    let (ws, scratch) = (tmp.path().join("ws"), tmp.path().join("scratch"));
    std::fs::create_dir_all(&scratch).unwrap();
    let data = ws.join("datasets/ds");
    copy_dir(&repo().join("datasets/quickstart"), &data);
    // A run FiftyOne made itself (from a FiftyOne export), which annoform must leave alone.
    let fo_made = read_json(
        &repo().join("tests/fixtures/fiftyone-1.22.1/with-labelstudio-run/metadata.json"),
    )["annotation_runs"]
        .clone();
    let mut meta = read_json(&data.join("metadata.json"));
    meta["annotation_runs"] = fo_made;
    std::fs::write(
        data.join("metadata.json"),
        serde_json::to_vec(&meta).unwrap(),
    )
    .unwrap();
    std::fs::write(
        ws.join("annoform.toml"),
        format!(
            "default_backend = \"cvat\"\n[datasets.ds]\npath = \"datasets/ds\"\n\
             [backends.cvat]\nurl = \"{}\"\nusername = \"${{env:CVAT_USER}}\"\npassword = \"${{env:CVAT_PASS}}\"\n\
             [backends.fake]\ncommand = [\"{}\", \"{}\"]\n",
            cvat.base_url(),
            test_backend().display(),
            ws.join("backend.json").display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(ws.join("manifests")).unwrap();
    let run = |key: &str, backend: &str, view: &str| {
        format!(
            "apiVersion: annoform/v1\nkind: AnnotationRun\nkey: {key}\ndataset: ds\nbackend: {backend}\n\
             view:\n  - {view}\nlabel_field: ground_truth\nclasses: [car, person, bike, truck]\nattributes: false\n"
        )
    };
    std::fs::write(
        ws.join("manifests/a.yaml"),
        run("on_cvat", "cvat", "limit: 2"),
    )
    .unwrap();
    std::fs::write(
        ws.join("manifests/b.yaml"),
        run("on_fake", "fake", "skip: 2"),
    )
    .unwrap();
    let annoform = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_annoform"))
            .args(args)
            .current_dir(&ws)
            .env("NO_COLOR", "1")
            .env("CVAT_USER", cvat_fake::ADMIN_USERNAME)
            .env("CVAT_PASS", cvat_fake::ADMIN_PASSWORD)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "annoform {args:?}:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    annoform(&["apply", "--auto-approve"]);
    let ids: Vec<String> = Dataset::load(&data)
        .unwrap()
        .samples()
        .iter()
        .map(|s| s.id().to_string())
        .collect();
    let dump = scratch.join("runs.json");
    let runs = || {
        run_fiftyone(&["runs", &data.to_string_lossy(), &dump.to_string_lossy()]);
        read_json(&dump)
    };
    let got = runs();
    assert_eq!(got["samples"], ids.len());
    let keys: Vec<&String> = got["runs"].as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 3, "{got:#}");
    for k in ["keep_run", "on_cvat", "on_fake"] {
        assert!(got["runs"].get(k).is_some(), "{k}: {got:#}");
    }
    let c = &got["runs"]["on_cvat"];
    assert_eq!(c["method"], "cvat");
    assert_eq!(c["cls"], "fiftyone.utils.cvat.CVATBackendConfig");
    assert_eq!(c["url"], cvat.base_url());
    assert_eq!(c["label_schema"]["ground_truth"]["type"], "detections");
    assert_eq!(
        c["label_schema"]["ground_truth"]["classes"],
        json!(["car", "person", "bike", "truck"])
    );
    let mut first: Vec<String> = ids[..2].to_vec();
    first.sort();
    assert_eq!(c["view"], json!(first));
    let mut rest: Vec<String> = ids[2..].to_vec();
    rest.sort();
    assert_eq!(got["runs"]["on_fake"]["view"], json!(rest));
    assert_eq!(
        got["runs"]["keep_run"]["method"], "labelstudio",
        "FiftyOne's own run stays"
    );

    annoform(&["runs", "rename", "on_fake", "renamed"]);
    std::fs::remove_file(ws.join("manifests/a.yaml")).unwrap();
    annoform(&["destroy", "--target", "on_cvat", "--auto-approve"]);
    let got = runs();
    let keys: Vec<&String> = got["runs"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["keep_run", "renamed"], "{got:#}");
}
