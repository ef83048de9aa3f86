//! Labels drawn in CVAT outside the run's schema: a box of a label added to the project in
//! CVAT, a polyline, a polygon and a tag in a detections run. None is dropped in silence:
//! each follows `load.unexpected`.

use super::*;
use annoform::dataset::mask::Dtype;

const DEMO: &str = "datasets/demo";

fn manifest(key: &str, unexpected: &str) -> String {
    format!(
        "apiVersion: annoform/v1\nkind: AnnotationRun\nkey: {key}\ndataset: ds\nview:\n  - limit: 4\nlabel_field: boxes\nlabel_type: detections\nclasses: [car, person]\nload:\n  when: always\n  unexpected: {unexpected}\n"
    )
}

/// Creates the run, then draws in CVAT: a `truck` box (a label added to the project in
/// CVAT), a car polyline, a car polygon and a car tag, on samples 0-3. Returns the samples'
/// ids.
fn draw_outside_the_schema(cvat: &Cvat, ws: &Ws, key: &str) -> Vec<String> {
    ws.apply();
    let pid = cvat.project(&format!("annoform/ds/{key}")).unwrap();
    let tid = cvat.tasks(pid)[0]["id"].as_u64().unwrap();
    cvat.send(
        reqwest::Method::PATCH,
        &format!("/api/projects/{pid}"),
        &json!({"labels": [{"name": "truck", "type": "any", "attributes": []}]}),
    );
    let ids: Vec<String> = ws
        .samples()
        .iter()
        .take(4)
        .map(|s| oid(s).to_string())
        .collect();
    let f: Vec<u64> = ids.iter().map(|s| cvat.frame_of(tid, s)).collect();
    let car = cvat.label(pid, "car")["id"].clone();
    let truck = cvat.label(pid, "truck")["id"].clone();
    cvat.edit(
        tid,
        "create",
        vec![
            json!({"type": "rectangle", "frame": f[0], "label_id": truck, "points": [16, 12, 48, 36]}),
            json!({"type": "polyline", "frame": f[1], "label_id": car, "points": [0, 0, 16, 12, 32, 12]}),
            json!({"type": "polygon", "frame": f[2], "label_id": car, "points": [0, 0, 16, 0, 16, 12]}),
        ],
        vec![json!({"frame": f[3], "label_id": car})],
    );
    ids
}

#[test]
fn error_names_every_label_outside_the_schema() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, DEMO, "");
    ws.manifest("run.yaml", &manifest("strict", "error"));
    let ids = draw_outside_the_schema(&cvat, &ws, "strict");
    let (ok, stdout, stderr) = ws.try_run(&["plan"]);
    assert!(!ok, "the plan must fail:\n{stdout}");
    assert!(stderr.contains("4 label(s) outside the schema"), "{stderr}");
    for (sample, what) in ids.iter().zip([
        "class `truck` is not in the schema",
        "a polyline `car` in detections field `boxes`",
        "a polygon `car` in detections field `boxes`",
        "a tag `car` on detections field `boxes`",
    ]) {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(sample.as_str()) && l.contains(what)),
            "{sample}: {what}:\n{stderr}"
        );
    }
    // The JSON plan lists the same labels as data.
    let (_, stdout, _) = ws.try_run(&["plan", "--json"]);
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    let failure = &plan["runs"][0]["failure"];
    assert_eq!(failure["kind"], "unexpected", "{plan:#}");
    let listed: Vec<(&str, &str, &str, &str)> = failure["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["sample_id"].as_str().unwrap(),
                l["kind"].as_str().unwrap(),
                l["label_type"].as_str().unwrap(),
                l["class"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (ids[0].as_str(), "unexpected", "detections", "truck"),
            (ids[1].as_str(), "unexpected", "polylines", "car"),
            (ids[2].as_str(), "unexpected", "polygons", "car"),
            (ids[3].as_str(), "unexpected", "classifications", "car"),
        ],
        "{plan:#}"
    );
}

#[test]
fn keep_merges_classes_and_keeps_other_types_as_fiftyone_does() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, DEMO, "");
    ws.manifest("run.yaml", &manifest("kept", "keep"));
    let ids = draw_outside_the_schema(&cvat, &ws, "kept");
    let plan = ws.plan();
    assert_eq!(actions(&plan), ["merge"], "{plan:#}");
    assert_eq!(counts(&plan, "boxes"), [1, 0, 0, 0, 0], "{plan:#}");
    assert_eq!(
        plan["runs"][0]["fields"]["boxes"]["unexpected"], 3,
        "{plan:#}"
    );
    let listed = plan["runs"][0]["unexpected"].as_array().unwrap();
    let dests: Vec<(&str, &str)> = listed
        .iter()
        .map(|u| {
            (
                u["sample_id"].as_str().unwrap(),
                u["dest"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        dests,
        [
            (ids[1].as_str(), "polylines"),
            (ids[2].as_str(), "polylines"),
            (ids[3].as_str(), "classifications")
        ],
        "{plan:#}"
    );
    let text = ws.run(&["plan", "-v"]);
    assert!(text.contains("3 unexpected labels"), "{text}");
    ws.apply();
    let after = ws.samples();
    // A class outside the schema goes into the run's field, like FiftyOne's merge.
    let boxes = after[0]["boxes"]["detections"].as_array().unwrap();
    assert_eq!(boxes.len(), 1);
    assert_eq!(boxes[0]["label"], "truck");
    // Other types go to fields named after FiftyOne's type for them.
    let line = &after[1]["polylines"]["polylines"][0];
    assert_eq!(
        (&line["label"], &line["closed"]),
        (&json!("car"), &json!(false))
    );
    let polygon = &after[2]["polylines"]["polylines"][0];
    assert_eq!(
        (&polygon["label"], &polygon["closed"]),
        (&json!("car"), &json!(true))
    );
    assert_eq!(
        after[3]["classifications"]["classifications"][0]["label"],
        "car"
    );
    assert_eq!(after[3]["classifications"]["_cls"], "Classifications");
    let plan = ws.plan();
    assert!(actions(&plan).is_empty(), "{plan:#}");
    assert_eq!(ws.samples(), after, "merging again adds nothing");
}

#[test]
fn ignore_lists_and_return_writes_a_file() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, DEMO, "");
    ws.manifest("run.yaml", &manifest("returned", "return"));
    let ids = draw_outside_the_schema(&cvat, &ws, "returned");
    let before = ws.samples();
    let plan = ws.plan();
    assert_eq!(actions(&plan), ["merge"], "{plan:#}");
    assert_eq!(counts(&plan, "boxes"), [0, 0, 0, 0, 0], "{plan:#}");
    assert_eq!(
        plan["runs"][0]["fields"]["boxes"]["unexpected"], 4,
        "{plan:#}"
    );
    assert!(
        plan["runs"][0]["unexpected"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["action"] == "returned"),
        "{plan:#}"
    );
    ws.apply();
    assert_eq!(
        ws.samples(),
        before,
        "returned labels stay out of the dataset"
    );
    let file = ws.path().join(".annoform/unexpected/ds/returned.json");
    let returned: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let boxes = &returned["boxes"];
    assert_eq!(
        boxes["detections"][&ids[0]].as_object().unwrap().len(),
        1,
        "{returned:#}"
    );
    assert_eq!(
        boxes["polylines"][&ids[1]].as_object().unwrap().len(),
        1,
        "{returned:#}"
    );
    assert_eq!(
        boxes["polylines"][&ids[2]].as_object().unwrap().len(),
        1,
        "{returned:#}"
    );
    assert_eq!(
        boxes["classifications"][&ids[3]].as_object().unwrap().len(),
        1,
        "{returned:#}"
    );
    assert!(actions(&ws.plan()).is_empty());

    // `ignore`: counted and listed, nothing written.
    let ws = Ws::new(&cvat, DEMO, "");
    ws.manifest("run.yaml", &manifest("ignored", "ignore"));
    draw_outside_the_schema(&cvat, &ws, "ignored");
    let text = ws.run(&["plan", "-v"]);
    assert!(text.contains("4 unexpected labels"), "{text}");
    assert_eq!(text.matches("  ignored  ").count(), 4, "{text}");
    let before = ws.samples();
    ws.apply();
    assert_eq!(ws.samples(), before);
    assert!(actions(&ws.plan()).is_empty());
}

/// An instances run nobody edits has nothing to merge, although CVAT holds masks only on the
/// pixel grid: boxes that are not (`0.184` of 160 pixels) come back unchanged.
#[test]
fn an_untouched_instances_run_has_nothing_to_merge() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, DEMO, "");
    ws.manifest(
        "run.yaml",
        "apiVersion: annoform/v1\nkind: AnnotationRun\nkey: inst\ndataset: ds\nview:\n  - limit: 4\nlabel_field: ground_truth\nlabel_type: instances\nload:\n  when: always\n",
    );
    // Instance masks at a resolution of their own, on boxes off CVAT's pixel grid.
    let path = ws.path().join(&ws.dataset).join("samples.json");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for sample in doc["samples"].as_array_mut().unwrap().iter_mut().take(4) {
        for d in sample["ground_truth"]["detections"].as_array_mut().unwrap() {
            let mut m = annoform::dataset::mask::Mask::zeros(vec![5, 7], Dtype::Bool);
            for (i, px) in m.data.iter_mut().enumerate() {
                *px = u8::from(i % 3 != 0);
            }
            d["mask"] = m.to_ejson();
        }
    }
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    let before = ws.samples();
    ws.apply();
    let plan = ws.plan();
    assert!(actions(&plan).is_empty(), "{plan:#}");
    ws.apply();
    assert_eq!(ws.samples(), before);
}
