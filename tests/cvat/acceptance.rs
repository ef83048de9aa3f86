//! The acceptance scenarios of the CVAT backend.

use super::*;

const ALL_TYPES: &str = "tests/fixtures/fiftyone-1.22.1/image-all-label-types";

/// Every label type of the fixture goes up and comes back unchanged; an annotator's edits
/// merge; destroy removes the project.
#[test]
fn all_label_types_round_trip() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, ALL_TYPES, "");
    ws.manifest(
        "run.yaml",
        "apiVersion: annoform/v1\nkind: AnnotationRun\nkey: review\ndataset: ds\nload:\n  when: always\nlabel_schema:\n  cls: {}\n  clss: {classes: [indoor, day]}\n  polylines: {classes: [lane, roof, pool]}\n  kps: {classes: [face]}\n  seg: {}\n  n_float: {}\n",
    );
    let before = ws.samples();
    let plan = ws.plan();
    assert_eq!(actions(&plan), ["create"], "{plan:#}");
    ws.apply();
    let pid = cvat.project("annoform/ds/review").expect("project");
    let tasks = cvat.tasks(pid);
    assert_eq!(tasks.len(), 1);
    let tid = tasks[0]["id"].as_u64().unwrap();
    let plan = ws.plan();
    assert!(actions(&plan).is_empty(), "{plan:#}");
    assert_eq!(ws.samples(), before);

    // A classification's class changed in the UI (a tag: new label, its attributes only).
    let cls0 = &before[0]["cls"];
    let tag = cvat.annotations(tid)["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["attributes"][0]["value"] == oid(cls0))
        .unwrap()
        .clone();
    let mut changed = tag.clone();
    changed["label_id"] = cvat.label(pid, "person")["id"].clone();
    changed["attributes"] = json!([]);
    cvat.edit(tid, "update", vec![], vec![changed]);
    let plan = ws.plan();
    assert_eq!(actions(&plan), ["merge"], "{plan:#}");
    assert_eq!(counts(&plan, "cls"), [0, 1, 0, 0, 4], "{plan:#}");
    for f in ["clss", "polylines", "kps", "seg", "n_float"] {
        assert_eq!(counts(&plan, f)[..4], [0, 0, 0, 0], "{f}: {plan:#}");
    }
    ws.apply();
    let after = ws.samples();
    assert_eq!(after[0]["cls"]["label"], "person");
    assert_eq!(oid(&after[0]["cls"]), oid(cls0));
    for (b, a) in before.iter().zip(&after).skip(1) {
        assert_eq!(b, a);
    }
    let plan = ws.plan();
    assert!(actions(&plan).is_empty(), "{plan:#}");
    ws.run(&["destroy", "--auto-approve"]);
    assert_eq!(cvat.project("annoform/ds/review"), None);
}

pub(super) const DEMO: &str = "datasets/demo";
pub(super) const QUICKSTART: &str = "datasets/quickstart";

fn header(key: &str) -> String {
    format!("apiVersion: annoform/v1\nkind: AnnotationRun\nkey: {key}\ndataset: ds\n")
}

/// A new detections field with attributes: annotators draw boxes, the merge adds them with
/// their attributes, occluded flag and group.
#[test]
fn new_detections_field_with_attributes() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, DEMO, "");
    ws.manifest(
        "run.yaml",
        &format!(
            "{}view:\n  - limit: 4\nlabel_field: boxes\nlabel_type: detections\nclasses: [car, person]\nattributes:\n  make: {{type: text}}\n  parked: {{type: checkbox, default: false}}\n  kind: {{type: select, values: [sedan, suv]}}\n  occ: {{type: occluded}}\n  grp: {{type: group_id}}\nload:\n  when: always\n",
            header("new_boxes")
        ),
    );
    let plan = ws.plan();
    assert_eq!(actions(&plan), ["create"], "{plan:#}");
    assert_eq!(plan["runs"][0]["samples"], 4);
    assert_eq!(plan["runs"][0]["tasks"], 1);
    assert_eq!(plan["runs"][0]["fields"]["boxes"]["upload"], 0);
    ws.apply();
    assert!(actions(&ws.plan()).is_empty());

    let pid = cvat.project("annoform/ds/new_boxes").unwrap();
    let tid = cvat.tasks(pid)[0]["id"].as_u64().unwrap();
    let labels = cvat.labels(pid);
    let names: Vec<&str> = labels.iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["car", "person"], "nothing but the schema's labels");
    let car = cvat.label(pid, "car");
    let attrs: Vec<&str> = car["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(attrs, ["make", "parked", "kind", "label_id", "index"]);
    let samples = ws.samples();
    let s0 = oid(&samples[0]).to_string();
    let s1 = oid(&samples[1]).to_string();
    let (f0, f1) = (cvat.frame_of(tid, &s0), cvat.frame_of(tid, &s1));
    // The UI sends every attribute; a checkbox as CVAT spells it.
    cvat.edit(
        tid,
        "create",
        vec![
            json!({"type": "rectangle", "frame": f0, "label_id": car["id"], "points": [16, 12, 48, 36],
                "occluded": true, "group": 7, "attributes": [
                    {"spec_id": spec_id(&car, "make"), "value": "audi"},
                    {"spec_id": spec_id(&car, "parked"), "value": "True"},
                    {"spec_id": spec_id(&car, "kind"), "value": "suv"}]}),
            json!({"type": "rectangle", "frame": f1, "label_id": cvat.label(pid, "person")["id"],
                "points": [0, 0, 80, 60], "rotation": 30.0, "attributes": []}),
        ],
        vec![],
    );
    let plan = ws.plan();
    assert_eq!(actions(&plan), ["merge"], "{plan:#}");
    assert_eq!(counts(&plan, "boxes"), [2, 0, 0, 0, 0], "{plan:#}");
    ws.apply();
    let after = ws.samples();
    let b0 = &after[0]["boxes"]["detections"][0];
    assert_eq!(b0["label"], "car");
    close(&b0["bounding_box"], &[0.1, 0.1, 0.2, 0.2]);
    assert_eq!(b0["make"], "audi");
    assert_eq!(b0["parked"], true);
    assert_eq!(b0["kind"], "suv");
    assert_eq!(b0["occ"], true);
    assert_eq!(b0["grp"], 7);
    let b1 = &after[1]["boxes"]["detections"][0];
    assert_eq!(b1["label"], "person");
    close(&b1["bounding_box"], &[0.0, 0.0, 0.5, 0.5]);
    assert_eq!(
        b1["parked"], false,
        "the schema default of an unset checkbox"
    );
    assert_eq!(b1["rotation"], 30.0);
    assert!(after[2]["boxes"].is_null() || after[2]["boxes"]["detections"] == json!([]));
    let plan = ws.plan();
    assert!(actions(&plan).is_empty(), "{plan:#}");
    assert_eq!(ws.samples(), after, "re-merging mints no new ids");
}

/// The seed's restricted review of an existing field: only attribute fixes are merged; the
/// rest is reported as rejected, read-only attributes are never written.
#[test]
fn restrictions_and_read_only_attributes() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, QUICKSTART, "");
    ws.manifest(
        "run.yaml",
        &format!(
            "{}label_schema:\n  ground_truth:\n    type: detections\n    classes: [car, person, bike]\n    attributes:\n      iscrowd: {{type: checkbox, read_only: true}}\n      color: {{type: radio, values: [red, blue, green]}}\n    allow_additions: false\n    allow_deletions: false\n    allow_label_edits: false\n    allow_spatial_edits: false\nload:\n  when: always\n",
            header("attribute_review")
        ),
    );
    let before = ws.samples();
    let plan = ws.plan();
    assert_eq!(plan["runs"][0]["fields"]["ground_truth"]["upload"], 10);
    ws.apply();
    let plan = ws.plan();
    assert!(actions(&plan).is_empty(), "{plan:#}");
    let pid = cvat.project("annoform/ds/attribute_review").unwrap();
    let tid = cvat.tasks(pid)[0]["id"].as_u64().unwrap();
    let gt0 = before[0]["ground_truth"]["detections"].as_array().unwrap();
    let gt1 = before[1]["ground_truth"]["detections"].as_array().unwrap();
    let car = cvat.label(pid, "car");
    let person = cvat.label(pid, "person");
    // Sample 0: the car gets a new colour (allowed) and a new iscrowd (read-only); the
    // person is deleted (not allowed).
    let mut s = cvat.shape_of(tid, pid, oid(&gt0[0]));
    for a in s["attributes"].as_array_mut().unwrap() {
        if a["spec_id"] == spec_id(&car, "color") {
            a["value"] = json!("blue");
        }
        if a["spec_id"] == spec_id(&car, "iscrowd") {
            a["value"] = json!("true");
        }
    }
    cvat.edit(tid, "update", vec![s], vec![]);
    let p = cvat.shape_of(tid, pid, oid(&gt0[1]));
    cvat.edit(tid, "delete", vec![p], vec![]);
    // Sample 1: the person's box moves (not allowed) and a new box appears (not allowed).
    let mut p1 = cvat.shape_of(tid, pid, oid(&gt1[1]));
    p1["points"] = json!([1, 1, 20, 20]);
    cvat.edit(tid, "update", vec![p1], vec![]);
    let f1 = cvat.frame_of(tid, oid(&before[1]));
    cvat.edit(
        tid,
        "create",
        vec![json!({"type": "rectangle", "frame": f1, "label_id": person["id"], "points": [2, 2, 9, 9]})],
        vec![],
    );
    let plan = ws.plan();
    assert_eq!(actions(&plan), ["merge"], "{plan:#}");
    // edited: the car's colour; rejected: its iscrowd (so the car counts in both), the
    // deletion, the move, the addition; the 7 other labels are unchanged.
    assert_eq!(counts(&plan, "ground_truth"), [0, 1, 0, 4, 7], "{plan:#}");
    let reasons: Vec<&str> = plan["runs"][0]["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"]["restriction"].as_str().unwrap_or_default())
        .collect();
    for r in ["allow_deletions", "allow_spatial_edits", "allow_additions"] {
        assert!(reasons.contains(&r), "{reasons:?}");
    }
    ws.apply();
    let after = ws.samples();
    let d0 = after[0]["ground_truth"]["detections"].as_array().unwrap();
    assert_eq!(d0.len(), 2, "the deletion was rejected");
    assert_eq!(d0[0]["color"], "blue");
    assert_eq!(
        d0[0]["iscrowd"],
        before[0]["ground_truth"]["detections"][0]["iscrowd"]
    );
    assert_eq!(d0[1], gt0[1]);
    assert_eq!(after[1]["ground_truth"], before[1]["ground_truth"]);
    let plan = ws.plan();
    assert!(
        actions(&plan).is_empty(),
        "rejections do not keep the run dirty: {plan:#}"
    );
}

/// Numbers equal within float error (pixels drawn in CVAT need not be short decimals).
pub(crate) fn close(v: &Value, want: &[f64]) {
    let got: Vec<f64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(got.len(), want.len(), "{v}");
    for (a, b) in got.iter().zip(want) {
        assert!((a - b).abs() < 1e-9, "{v} != {want:?}");
    }
}

/// `task_size=6, segment_size=2` over 20 images: four tasks of 6, 6, 6 and 2 images, with
/// jobs of 2 images (3 + 3 + 3 + 1 = 10 jobs), tasks and jobs assigned round-robin.
#[test]
fn tasks_and_jobs_round_robin() {
    let cvat = Cvat::start();
    let users: Vec<u64> = ["anna", "ben", "cleo"]
        .iter()
        .map(|u| cvat.register(u))
        .collect();
    let ws = Ws::new(&cvat, DEMO, "");
    ws.manifest(
        "run.yaml",
        &format!(
            "{}view:\n  - limit: 20\nbackend_config:\n  task_size: 6\n  segment_size: 2\n  image_quality: 90\n  task_assignee: [anna, ben]\n  job_assignees: [anna, ben, cleo]\n  issue_tracker: https://issues.example.com/demo\n  task_name: Demo review\nlabel_field: ground_truth\nlabel_type: detections\nclasses: [car, person, bike, truck]\nattributes: false\nload:\n  when: complete\n",
            header("batched")
        ),
    );
    let plan = ws.plan();
    assert_eq!(plan["runs"][0]["samples"], 20);
    assert_eq!(plan["runs"][0]["tasks"], 4);
    ws.apply();
    let pid = cvat.project("annoform/ds/batched").unwrap();
    let tasks = cvat.tasks(pid);
    let sizes: Vec<u64> = tasks.iter().map(|t| t["size"].as_u64().unwrap()).collect();
    assert_eq!(sizes, [6, 6, 6, 2]);
    for (i, t) in tasks.iter().enumerate() {
        assert_eq!(
            t["name"],
            format!("Demo review [annoform/ds/batched/batch-{i:04}]")
        );
        assert_eq!(t["segment_size"], 2);
        assert_eq!(t["image_quality"], 90);
        assert_eq!(t["bug_tracker"], "https://issues.example.com/demo");
        assert_eq!(t["assignee"]["id"], users[i % 2], "task {i}");
    }
    let jobs: Vec<Value> = tasks
        .iter()
        .flat_map(|t| cvat.jobs(t["id"].as_u64().unwrap()))
        .collect();
    assert_eq!(jobs.len(), 10);
    for (i, j) in jobs.iter().enumerate() {
        assert_eq!(j["assignee"]["id"], users[i % 3], "job {i}");
    }
    // Frames are the samples in view order.
    let samples = ws.samples();
    for (i, t) in tasks.iter().enumerate() {
        let tid = t["id"].as_u64().unwrap();
        for k in 0..sizes[i] as usize {
            assert_eq!(cvat.frame_of(tid, oid(&samples[i * 6 + k])), k as u64);
        }
    }
    let plan = ws.plan();
    assert!(actions(&plan).is_empty(), "{plan:#}");
    let status = ws.run(&["status"]);
    assert!(
        status.contains("(anna)") && status.contains("(cleo)"),
        "{status}"
    );

    // Three tasks accepted: still waiting; the fourth too: a merge with nothing to change.
    for t in &tasks[..3] {
        cvat.complete(t["id"].as_u64().unwrap());
    }
    let plan = ws.plan();
    assert!(
        plan["runs"][0]["waiting"]["complete"] == 3
            && plan["runs"][0]["waiting"]["tasks"] == 4
            && plan["runs"][0]["waiting"]["open"].as_array().map(Vec::len) == Some(1),
        "{plan:#}"
    );
    cvat.complete(tasks[3]["id"].as_u64().unwrap());
    let plan = ws.plan();
    assert!(actions(&plan).is_empty(), "{plan:#}");
    let before = ws.samples();
    ws.apply();
    assert_eq!(ws.samples(), before);
}

/// Two fields sharing a class get `<class>_<field>` labels, as FiftyOne names them; an
/// annotator changing a shape's class in CVAT's UI (which resets its attributes, our
/// `label_id` among them) is still matched through the recorded shape-id map.
#[test]
fn shared_classes_and_a_cleared_label_id() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, QUICKSTART, "");
    ws.manifest(
        "run.yaml",
        &format!(
            "{}view:\n  - limit: 2\nlabel_schema:\n  ground_truth:\n    classes: [car, person, bike]\n    attributes: false\n  predictions:\n    type: detections\n    classes: [car, truck]\nload:\n  when: always\n",
            header("two_fields")
        ),
    );
    let before = ws.samples();
    ws.apply();
    let pid = cvat.project("annoform/ds/two_fields").unwrap();
    let tid = cvat.tasks(pid)[0]["id"].as_u64().unwrap();
    let names: Vec<String> = cvat
        .labels(pid)
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "car_ground_truth",
            "person",
            "bike",
            "car_predictions",
            "truck",
        ]
    );
    assert!(
        !ws.record("two_fields")["id_map"]
            .as_object()
            .unwrap()
            .is_empty(),
        "the shape-id map is recorded at upload"
    );
    assert!(actions(&ws.plan()).is_empty());

    // The UI's class change: same shape id, the new label, that label's attributes only.
    let gt0 = &before[0]["ground_truth"]["detections"][0];
    assert_eq!(gt0["label"], "car");
    let mut s = cvat.shape_of(tid, pid, oid(gt0));
    s["label_id"] = cvat.label(pid, "bike")["id"].clone();
    s["attributes"] = json!([]);
    cvat.edit(tid, "update", vec![s], vec![]);
    let f1 = cvat.frame_of(tid, oid(&before[1]));
    cvat.edit(
        tid,
        "create",
        vec![json!({"type": "rectangle", "frame": f1, "label_id": cvat.label(pid, "car_predictions")["id"],
            "points": [8, 8, 24, 24]})],
        vec![],
    );
    let plan = ws.plan();
    assert_eq!(actions(&plan), ["merge"], "{plan:#}");
    assert_eq!(counts(&plan, "ground_truth"), [0, 1, 0, 0, 3], "{plan:#}");
    assert_eq!(counts(&plan, "predictions"), [1, 0, 0, 0, 0], "{plan:#}");
    ws.apply();
    let after = ws.samples();
    let d0 = &after[0]["ground_truth"]["detections"][0];
    assert_eq!(oid(d0), oid(gt0), "the same label, not a new one");
    assert_eq!(d0["label"], "bike");
    assert_eq!(d0["bounding_box"], gt0["bounding_box"]);
    assert_eq!(after[1]["predictions"]["detections"][0]["label"], "car");
    let plan = ws.plan();
    assert!(actions(&plan).is_empty(), "{plan:#}");
}

/// The mask pixels of a label value, as rows of 0/1 (or class values).
fn pixels(mask: &Value) -> Vec<Vec<u8>> {
    let m = annoform::dataset::mask::Mask::from_ejson(mask).expect("a mask");
    let (h, w) = (m.shape[0], m.shape[1]);
    assert_eq!(m.data.len(), h * w, "one byte per pixel");
    m.data.chunks(w).map(<[u8]>::to_vec).collect()
}

/// Instance masks and a segmentation go up and come back as CVAT's RLE, exactly: an
/// annotator's mask (the recording's 6×4 example) becomes an instance with that very mask,
/// and a repainted class changes exactly its pixels of the segmentation.
#[test]
fn masks_round_trip_exactly() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, QUICKSTART, "");
    ws.manifest(
        "run.yaml",
        &format!(
            "{}view:\n  - limit: 2\nlabel_schema:\n  blobs:\n    type: instances\n    classes: [blob]\n  seg: {{}}\nload:\n  when: always\n",
            header("masks")
        ),
    );
    let before = ws.samples();
    ws.apply();
    assert!(actions(&ws.plan()).is_empty());
    let pid = cvat.project("annoform/ds/masks").unwrap();
    let tid = cvat.tasks(pid)[0]["id"].as_u64().unwrap();
    let f0 = cvat.frame_of(tid, oid(&before[0]));
    // The recorded example: rows 011000/111100/011110/000111 at left 10, top 20.
    cvat.edit(
        tid,
        "create",
        vec![
            json!({"type": "mask", "frame": f0, "label_id": cvat.label(pid, "blob")["id"],
            "points": [1, 2, 3, 4, 3, 4, 4, 3, 10, 20, 15, 23]}),
        ],
        vec![],
    );
    // Repaint the sky of sample 0: a 2×2 square at (0, 0) replaces its 10×10 one.
    let sky = cvat.label(pid, "sky");
    let shape = cvat.annotations(tid)["shapes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["label_id"] == sky["id"] && s["frame"] == f0)
        .unwrap()
        .clone();
    let mut moved = shape.clone();
    moved["points"] = json!([0, 4, 0, 0, 1, 1]);
    cvat.edit(tid, "update", vec![moved], vec![]);

    let plan = ws.plan();
    assert_eq!(actions(&plan), ["merge"], "{plan:#}");
    assert_eq!(counts(&plan, "blobs"), [1, 0, 0, 0, 0], "{plan:#}");
    assert_eq!(counts(&plan, "seg"), [0, 1, 0, 0, 1], "{plan:#}");
    ws.apply();
    let after = ws.samples();
    let blob = &after[0]["blobs"]["detections"][0];
    assert_eq!(blob["label"], "blob");
    close(
        &blob["bounding_box"],
        &[10.0 / 64.0, 20.0 / 48.0, 6.0 / 64.0, 4.0 / 48.0],
    );
    let rows: Vec<String> = pixels(&blob["mask"])
        .iter()
        .map(|r| r.iter().map(|p| char::from(b'0' + p)).collect())
        .collect();
    assert_eq!(rows, ["011000", "111100", "011110", "000111"]);

    let (old, new) = (
        pixels(&before[0]["seg"]["mask"]),
        pixels(&after[0]["seg"]["mask"]),
    );
    for y in 0..48 {
        for x in 0..64 {
            let want = match old[y][x] {
                2 => 0,
                v => v,
            };
            let want = if x < 2 && y < 2 { 2 } else { want };
            assert_eq!(new[y][x], want, "pixel ({x}, {y})");
        }
    }
    assert_eq!(
        after[1]["seg"], before[1]["seg"],
        "untouched: the very same bytes"
    );
    let plan = ws.plan();
    assert!(actions(&plan).is_empty(), "{plan:#}");
    assert_eq!(ws.samples(), after);
}

/// The value attribute of the tag a scalar field is, on a frame.
fn scalar_tag(cvat: &Cvat, task: u64, label: &Value, frame: u64) -> Value {
    cvat.annotations(task)["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["label_id"] == label["id"] && t["frame"] == frame)
        .cloned()
        .unwrap_or_else(|| panic!("no tag of {} on frame {frame}", label["name"]))
}

/// Scalar fields with and without classes (tags with a `value` attribute) and keypoints
/// (a points shape; NaN points kept): edited values and points merge back.
#[test]
fn scalars_and_keypoints() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, QUICKSTART, "");
    ws.manifest(
        "run.yaml",
        &format!(
            "{}view:\n  - limit: 3\nlabel_schema:\n  n_int:\n    type: scalar\n  n_str:\n    type: scalar\n    classes: [s0, s1, s2, other]\n  kps:\n    classes: [face]\nload:\n  when: always\n",
            header("scalars")
        ),
    );
    let before = ws.samples();
    let plan = ws.plan();
    assert_eq!(plan["runs"][0]["fields"]["n_int"]["upload"], 3);
    assert_eq!(plan["runs"][0]["fields"]["n_str"]["upload"], 3);
    ws.apply();
    let plan = ws.plan();
    assert!(actions(&plan).is_empty(), "{plan:#}");
    let pid = cvat.project("annoform/ds/scalars").unwrap();
    let tid = cvat.tasks(pid)[0]["id"].as_u64().unwrap();
    let n_int = cvat.label(pid, "n_int");
    let n_str = cvat.label(pid, "n_str");
    assert_eq!(n_int["type"], "tag");
    let value = n_str["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "value")
        .unwrap();
    assert_eq!(value["input_type"], "select");
    assert_eq!(
        value["values"],
        json!(["s0", "s1", "s2", "other", "__undefined__"])
    );

    let f0 = cvat.frame_of(tid, oid(&before[0]));
    let f1 = cvat.frame_of(tid, oid(&before[1]));
    let mut t = scalar_tag(&cvat, tid, &n_int, f0);
    t["attributes"] = json!([{"spec_id": spec_id(&n_int, "value"), "value": "42"}]);
    cvat.edit(tid, "update", vec![], vec![t]);
    let mut t = scalar_tag(&cvat, tid, &n_str, f1);
    t["attributes"] = json!([{"spec_id": spec_id(&n_str, "value"), "value": "other"}]);
    cvat.edit(tid, "update", vec![], vec![t]);
    // Move the first keypoint of sample 0; its NaN point stays NaN.
    let kp = &before[0]["kps"]["keypoints"][0];
    let mut s = cvat.shape_of(tid, pid, oid(kp));
    s["points"][0] = json!(32.0);
    s["points"][1] = json!(24.0);
    cvat.edit(tid, "update", vec![s], vec![]);

    let plan = ws.plan();
    assert_eq!(actions(&plan), ["merge"], "{plan:#}");
    assert_eq!(counts(&plan, "n_int"), [0, 1, 0, 0, 2], "{plan:#}");
    assert_eq!(counts(&plan, "n_str"), [0, 1, 0, 0, 2], "{plan:#}");
    assert_eq!(counts(&plan, "kps"), [0, 1, 0, 0, 2], "{plan:#}");
    ws.apply();
    let after = ws.samples();
    assert_eq!(after[0]["n_int"], 42);
    assert_eq!(after[1]["n_str"], "other");
    assert_eq!(after[2]["n_int"], before[2]["n_int"]);
    let pts = &after[0]["kps"]["keypoints"][0]["points"];
    assert_eq!(pts[0], json!([0.5, 0.5]));
    assert_eq!(pts[1], kp["points"][1]);
    assert_eq!(pts[2], kp["points"][2], "the NaN point");
    let plan = ws.plan();
    assert!(actions(&plan).is_empty(), "{plan:#}");
}

/// Two runs share a project by `project_name`: one project, each run its own tasks; destroying
/// one run leaves the project (and the other run's tasks) until the last run goes.
#[test]
fn project_name_shared_by_two_runs() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, DEMO, "");
    let run = |key: &str, skip: u32| {
        format!(
            "{}view:\n  - skip: {skip}\n  - limit: 3\nbackend_config:\n  project_name: team-review\nlabel_field: ground_truth\nlabel_type: detections\nclasses: [car, person, bike, truck]\nattributes: false\nload:\n  when: always\n",
            header(key)
        )
    };
    ws.manifest("a.yaml", &run("run_a", 0));
    ws.apply();
    ws.manifest("b.yaml", &run("run_b", 3));
    let plan = ws.plan();
    assert_eq!(actions(&plan), ["create"], "{plan:#}");
    ws.apply();
    assert_eq!(
        cvat.projects()
            .iter()
            .filter(|p| p["name"] == "team-review")
            .count(),
        1
    );
    let pid = cvat.project("team-review").unwrap();
    let names: Vec<String> = cvat
        .tasks(pid)
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "team-review/run_a/batch-0000",
            "team-review/run_b/batch-0000"
        ]
    );
    let plan = ws.plan();
    assert!(actions(&plan).is_empty(), "{plan:#}");

    // An annotator edits run_b's task: only run_b merges.
    let tb = cvat.tasks(pid)[1]["id"].as_u64().unwrap();
    let samples = ws.samples();
    let f = cvat.frame_of(tb, oid(&samples[3]));
    cvat.edit(
        tb,
        "create",
        vec![
            json!({"type": "rectangle", "frame": f, "label_id": cvat.label(pid, "truck")["id"],
            "points": [0, 0, 16, 12]}),
        ],
        vec![],
    );
    let plan = ws.plan();
    let per_run: Vec<(String, Vec<Value>)> = plan["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_string(),
                r["actions"].as_array().unwrap().clone(),
            )
        })
        .collect();
    assert_eq!(
        per_run,
        [
            ("run_a".to_string(), vec![]),
            ("run_b".to_string(), vec![json!("merge")])
        ]
    );
    ws.apply();
    assert_eq!(
        ws.samples()[3]["ground_truth"]["detections"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()["label"],
        "truck"
    );

    ws.run(&["destroy", "--target", "run_a", "--auto-approve"]);
    assert_eq!(
        cvat.project("team-review"),
        Some(pid),
        "run_b still uses it"
    );
    std::fs::remove_file(ws.path().join("manifests/a.yaml")).unwrap();
    let plan = ws.plan();
    assert!(actions(&plan).is_empty(), "{plan:#}");
    ws.run(&["destroy", "--auto-approve"]);
    assert_eq!(cvat.project("team-review"), None);
}

/// A new class and a new attribute are added to the project in place (label PATCH, ids
/// read again); annotators can use them at once and the merge knows them.
#[test]
fn schema_update_in_place() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, QUICKSTART, "");
    let run = |classes: &str, attrs: &str| {
        format!(
            "{}view:\n  - limit: 2\nlabel_field: ground_truth\nlabel_type: detections\nclasses: [{classes}]\nattributes:\n  color: {{type: select, values: [red, blue]}}\n{attrs}load:\n  when: always\n",
            header("grow")
        )
    };
    ws.manifest("run.yaml", &run("car, person, bike", ""));
    ws.apply();
    let pid = cvat.project("annoform/ds/grow").unwrap();
    let car_before = cvat.label(pid, "car");
    ws.manifest(
        "run.yaml",
        &run("car, person, bike, truck", "  note: {type: text}\n"),
    );
    let plan = ws.plan();
    assert_eq!(actions(&plan), ["update"], "{plan:#}");
    ws.apply();
    let car = cvat.label(pid, "car");
    assert_eq!(
        car["id"], car_before["id"],
        "labels are patched, not replaced"
    );
    assert_eq!(car["color"], car_before["color"], "their colour is kept");
    assert_eq!(spec_id(&car, "color"), spec_id(&car_before, "color"));
    spec_id(&car, "note");
    let truck = cvat.label(pid, "truck");
    assert_eq!(cvat.tasks(pid).len(), 1);
    let plan = ws.plan();
    assert!(actions(&plan).is_empty(), "{plan:#}");

    let tid = cvat.tasks(pid)[0]["id"].as_u64().unwrap();
    let samples = ws.samples();
    let f0 = cvat.frame_of(tid, oid(&samples[0]));
    cvat.edit(
        tid,
        "create",
        vec![json!({"type": "rectangle", "frame": f0, "label_id": truck["id"], "points": [0, 0, 32, 24],
            "attributes": [{"spec_id": spec_id(&truck, "note"), "value": "new class"}]})],
        vec![],
    );
    let plan = ws.plan();
    assert_eq!(counts(&plan, "ground_truth"), [1, 0, 0, 0, 4], "{plan:#}");
    ws.apply();
    let d = ws.samples()[0]["ground_truth"]["detections"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (d["label"].as_str(), d["note"].as_str()),
        (Some("truck"), Some("new class"))
    );
    assert!(actions(&ws.plan()).is_empty());
}

/// `project_id` with `extend_project_schema`: tasks go into a project made by hand, whose
/// labels win and get the run's missing ones; destroy removes our tasks and leaves the
/// project.
#[test]
fn existing_project_by_id() {
    let cvat = Cvat::start();
    let p = cvat.send(
        reqwest::Method::POST,
        "/api/projects",
        &json!({"name": "made by hand", "labels": [
            {"name": "car", "type": "rectangle", "color": "#ff0000", "attributes": []},
            {"name": "tree", "type": "polygon", "attributes": []}]}),
    );
    let pid = p["id"].as_u64().unwrap();
    let ws = Ws::new(&cvat, QUICKSTART, "");
    ws.manifest(
        "run.yaml",
        &format!(
            "{}view:\n  - limit: 2\nbackend_config:\n  project_id: {pid}\n  extend_project_schema: true\nlabel_field: ground_truth\nlabel_type: detections\nclasses: [car, person, bike]\nattributes: false\nload:\n  when: always\n",
            header("into_existing")
        ),
    );
    ws.apply();
    let names: Vec<String> = cvat
        .labels(pid)
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["car", "tree", "person", "bike"]);
    assert_eq!(
        cvat.label(pid, "car")["color"],
        "#ff0000",
        "the project's label wins"
    );
    let tasks = cvat.tasks(pid);
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["name"], "made by hand/into_existing/batch-0000");
    assert!(actions(&ws.plan()).is_empty());
    ws.run(&["destroy", "--auto-approve"]);
    assert_eq!(cvat.project("made by hand"), Some(pid));
    assert!(cvat.tasks(pid).is_empty());
}

/// `occluded_attr`/`group_id_attr`: an existing attribute becomes CVAT's occluded flag,
/// another the shape's group, both ways.
#[test]
fn occluded_and_group_id_attributes() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, QUICKSTART, "");
    ws.manifest(
        "run.yaml",
        &format!(
            "{}view:\n  - limit: 1\nbackend_config:\n  occluded_attr: occluded\n  group_id_attr: crowd_group\nlabel_field: ground_truth\nlabel_type: detections\nclasses: [car, person, bike]\nattributes: false\nload:\n  when: always\n",
            header("flags")
        ),
    );
    let before = ws.samples();
    ws.apply();
    let plan = ws.plan();
    assert!(actions(&plan).is_empty(), "{plan:#}");
    let pid = cvat.project("annoform/ds/flags").unwrap();
    let tid = cvat.tasks(pid)[0]["id"].as_u64().unwrap();
    let gt = before[0]["ground_truth"]["detections"].as_array().unwrap();
    assert_eq!(gt[0]["occluded"], true);
    let car = cvat.shape_of(tid, pid, oid(&gt[0]));
    assert_eq!(
        car["occluded"], true,
        "the dataset's attribute is CVAT's flag"
    );
    let car_label = cvat.label(pid, "car");
    let names: Vec<&str> = car_label["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(
        !names.contains(&"occluded") && !names.contains(&"crowd_group"),
        "{names:?}"
    );
    let mut person = cvat.shape_of(tid, pid, oid(&gt[1]));
    person["occluded"] = json!(true);
    person["group"] = json!(3);
    cvat.edit(tid, "update", vec![person], vec![]);
    let plan = ws.plan();
    assert_eq!(counts(&plan, "ground_truth"), [0, 1, 0, 0, 1], "{plan:#}");
    ws.apply();
    let p = &ws.samples()[0]["ground_truth"]["detections"][1];
    assert_eq!(
        (&p["occluded"], &p["crowd_group"]),
        (&json!(true), &json!(3))
    );
    assert!(actions(&ws.plan()).is_empty());
}

/// A run reusing a project set up for other fields, with `extend_project_schema`, adds the
/// labels it lacks (keeping the existing ones and their ids) and keeps its own tasks.
#[test]
fn project_name_reused_for_other_fields_adds_their_labels() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, QUICKSTART, "");
    let run = |key: &str, field: &str, classes: &str| {
        format!(
            "{}view:\n  - limit: 1\nbackend_config:\n  project_name: team\nlabel_field: {field}\nlabel_type: detections\nclasses: {classes}\nattributes: false\n",
            header(key)
        )
    };
    ws.manifest(
        "a.yaml",
        &run("first", "ground_truth", "[car, person, bike]"),
    );
    ws.apply();
    let pid = cvat.project("team").unwrap();
    let car = cvat.label(pid, "car")["id"].clone();
    ws.manifest(
        "b.yaml",
        &run("second", "other_boxes", "[car, truck]").replace(
            "project_name: team\n",
            "project_name: team\n  extend_project_schema: true\n",
        ),
    );
    ws.apply();
    let names: Vec<String> = cvat
        .labels(pid)
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["car", "person", "bike", "truck"]);
    assert_eq!(
        cvat.label(pid, "car")["id"],
        car,
        "existing labels keep their ids"
    );
    assert_eq!(cvat.tasks(pid).len(), 2);
    let plan = ws.plan();
    assert!(actions(&plan).is_empty(), "{plan:#}");
}

/// A batch larger than one upload request goes up in groups (Upload-Start / -Multiple /
/// -Finish), frames still in sample order; the task settings still apply.
#[test]
fn large_batches_upload_in_groups() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, DEMO, "");
    ws.manifest(
        "run.yaml",
        &format!(
            "{}backend_config:\n  chunk_size: 5\n  image_quality: 60\nlabel_field: ground_truth\nlabel_type: detections\nclasses: [car, person, bike, truck]\nattributes: false\nload:\n  when: always\n",
            header("big")
        ),
    );
    let before = ws.samples();
    assert_eq!(before.len(), 24);
    ws.apply();
    let pid = cvat.project("annoform/ds/big").unwrap();
    let task = &cvat.tasks(pid)[0];
    let tid = task["id"].as_u64().unwrap();
    assert_eq!(task["size"], 24);
    assert_eq!(task["data_chunk_size"], 5);
    assert_eq!(task["image_quality"], 60);
    for (i, s) in before.iter().enumerate() {
        assert_eq!(cvat.frame_of(tid, oid(s)), i as u64);
    }
    let plan = ws.plan();
    assert!(actions(&plan).is_empty(), "{plan:#}");
}
