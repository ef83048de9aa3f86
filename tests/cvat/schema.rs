//! Label schemas as FiftyOne resolves them, shown before apply; runs planned from their
//! recorded schema; one run's error never blocking the others.

use super::*;

const ALL_TYPES: &str = "tests/fixtures/fiftyone-1.22.1/image-all-label-types";

fn run_header(key: &str) -> String {
    format!("apiVersion: annoform/v1\nkind: AnnotationRun\nkey: {key}\ndataset: ds\n")
}

/// Attributes of existing labels get FiftyOne's CVAT widgets: a boolean `occluded` is CVAT's
/// occlusion toggle (so a box with `occluded: true` is uploaded occluded), strings and
/// numbers are free text boxes. The plan shows the resolved schema before apply.
#[test]
fn existing_attributes_get_fiftyones_widgets() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, ALL_TYPES, "");
    ws.manifest(
        "run.yaml",
        &format!(
            "{}view:\n  - limit: 1\nlabel_field: ground_truth\nload:\n  when: always\n",
            run_header("attrs")
        ),
    );
    let text = ws.run(&["plan", "-v"]);
    for line in [
        "ground_truth: detections, existing field",
        "classes: car, person, bike",
        "attribute occluded: occluded",
        "attribute color: text",
        "attribute iscrowd: text",
        "restrictions: none",
    ] {
        assert!(text.contains(line), "`{line}` missing from:\n{text}");
    }
    let plan = ws.plan();
    let attrs = &plan["runs"][0]["schema"]["fields"]["ground_truth"]["attributes"];
    assert_eq!(attrs["occluded"]["type"], "occluded", "{plan:#}");
    assert_eq!(attrs["color"]["type"], "text", "{plan:#}");
    assert!(attrs["color"].get("values").is_none(), "{plan:#}");
    ws.apply();

    let pid = cvat.project("annoform/ds/attrs").expect("project");
    let car = cvat.label(pid, "car");
    let by_name = |n: &str| {
        car["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == n)
            .cloned()
    };
    assert_eq!(
        by_name("color").expect("color")["input_type"],
        "text",
        "{car:#}"
    );
    assert!(
        by_name("occluded").is_none(),
        "occluded is CVAT's widget: {car:#}"
    );
    let tid = cvat.tasks(pid)[0]["id"].as_u64().unwrap();
    let shapes = cvat.annotations(tid)["shapes"].as_array().unwrap().clone();
    let car_box = shapes
        .iter()
        .find(|s| s["label_id"] == car["id"])
        .expect("the car box");
    assert_eq!(car_box["occluded"], true, "{car_box:#}");
    // The round trip through the widgets changes nothing.
    let before = ws.samples();
    ws.apply();
    assert!(actions(&ws.plan()).is_empty());
    assert_eq!(ws.samples(), before);
}

/// An existing field without `classes` gets the dataset's declared classes and every
/// observed class, so apply can upload every label; explicit classes that miss observed
/// ones are refused before anything is created.
#[test]
fn classes_of_existing_fields_cover_the_observed_labels() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, ALL_TYPES, "");
    ws.manifest(
        "run.yaml",
        &format!(
            "{}view:\n  - limit: 2\nlabel_field: clss\n",
            run_header("scenes")
        ),
    );
    let plan = ws.plan();
    assert_eq!(
        plan["runs"][0]["schema"]["fields"]["clss"]["classes"],
        json!(["car", "person", "bike", "cat", "day", "indoor"]),
        "{plan:#}"
    );
    ws.apply();
    let pid = cvat.project("annoform/ds/scenes").expect("project");
    for c in ["indoor", "day"] {
        cvat.label(pid, c);
    }
    assert!(actions(&ws.plan()).is_empty());

    ws.manifest(
        "run.yaml",
        &format!(
            "{}view:\n  - limit: 2\nlabel_field: clss\nclasses: [day]\n",
            run_header("narrow")
        ),
    );
    let (ok, _, stderr) = ws.try_run(&["validate"]);
    assert!(!ok);
    assert!(
        stderr.contains("labels in the run have classes that are not in its `classes`: `indoor`"),
        "{stderr}"
    );
    let (ok, _, _) = ws.try_run(&["apply", "--auto-approve"]);
    assert!(!ok);
    assert_eq!(cvat.project("annoform/ds/narrow"), None, "nothing created");
}

/// Removes `field` from every sample and from the dataset's declared fields.
fn delete_field(ws: &Ws, field: &str) {
    let dir = ws.path().join("datasets/ds");
    let path = dir.join("samples.json");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for s in doc["samples"].as_array_mut().unwrap() {
        s.as_object_mut().unwrap().remove(field);
    }
    std::fs::write(&path, doc.to_string()).unwrap();
    let path = dir.join("metadata.json");
    let mut meta: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    meta["sample_fields"]
        .as_array_mut()
        .unwrap()
        .retain(|f| f["name"] != field);
    std::fs::write(&path, meta.to_string()).unwrap();
}

/// A run whose field was deleted from the dataset is planned from the schema recorded when
/// it was created; a run that cannot be planned at all is reported, exits 1, and does not
/// stop the others from planning and applying.
#[test]
fn deleted_fields_and_broken_runs_block_nothing() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, ALL_TYPES, "");
    ws.manifest(
        "a.yaml",
        &format!(
            "{}view:\n  - limit: 1\nlabel_field: ground_truth\nload:\n  when: always\n",
            run_header("boxes")
        ),
    );
    ws.manifest(
        "b.yaml",
        &format!(
            "{}view:\n  - limit: 1\nlabel_field: n_float\n",
            run_header("score")
        ),
    );
    ws.apply();
    let recorded = ws.record("boxes")["schema"].clone();
    delete_field(&ws, "ground_truth");
    delete_field(&ws, "n_float");
    // An annotator saves the boxes task again, unchanged: the refresh downloads it.
    let pid = cvat.project("annoform/ds/boxes").unwrap();
    let tid = cvat.tasks(pid)[0]["id"].as_u64().unwrap();
    cvat.send(
        reqwest::Method::PUT,
        &format!("/api/tasks/{tid}/annotations"),
        &cvat.annotations(tid),
    );
    // Both still plan, from their records; the boxes run's next merge restores its labels.
    let plan = ws.plan();
    assert_eq!(actions(&plan), ["merge"], "{plan:#}");
    assert_eq!(counts(&plan, "ground_truth")[0], 2, "{plan:#}");
    assert_eq!(
        plan["runs"][0]["schema"]["fields"]["ground_truth"]["classes"],
        recorded["fields"]["ground_truth"]["classes"]
    );
    ws.run(&["validate"]);

    // A run that cannot be resolved at all: reported, exit 1, the others go ahead.
    ws.manifest(
        "c.yaml",
        &format!(
            "{}view:\n  - limit: 1\nlabel_field: nowhere\n",
            run_header("broken")
        ),
    );
    ws.manifest(
        "d.yaml",
        &format!(
            "{}view:\n  - limit: 1\nlabel_field: cls\n",
            run_header("labels")
        ),
    );
    let (ok, stdout, stderr) = ws.try_run(&["plan", "--json"]);
    assert!(!ok, "{stdout}\n{stderr}");
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    let run = |key: &str| {
        plan["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["key"] == key)
            .unwrap()
            .clone()
    };
    assert!(
        run("broken")["error"]
            .as_str()
            .unwrap()
            .contains("is a new field and needs `type`"),
        "{plan:#}"
    );
    assert_eq!(run("labels")["actions"], json!(["create"]), "{plan:#}");
    assert!(stderr.contains("run `broken`"), "{stderr}");

    let (ok, _, stderr) = ws.try_run(&["apply", "--auto-approve", "--target", "labels"]);
    assert!(ok, "{stderr}");
    assert!(cvat.project("annoform/ds/labels").is_some());
    let (ok, _, stderr) = ws.try_run(&["apply", "--auto-approve"]);
    assert!(!ok, "the broken run makes apply exit 1");
    assert!(stderr.contains("run `broken`"), "{stderr}");
    assert_eq!(cvat.project("annoform/ds/broken"), None);
}

/// A project someone else made, with these labels (name, visible text attributes).
fn foreign_project(cvat: &Cvat, name: &str, labels: &[(&str, &[&str])]) -> u64 {
    let labels: Vec<Value> = labels
        .iter()
        .map(|(l, attrs)| {
            json!({"name": l, "type": "rectangle", "attributes": attrs.iter().map(|a| json!({
                "name": a, "input_type": "text", "mutable": true, "values": [""], "default_value": ""
            })).collect::<Vec<_>>()})
        })
        .collect();
    cvat.send(
        reqwest::Method::POST,
        "/api/projects",
        &json!({"name": name, "labels": labels}),
    )["id"]
        .as_u64()
        .unwrap()
}

fn label_names(cvat: &Cvat, pid: u64) -> Vec<String> {
    cvat.labels(pid)
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect()
}

/// A run uploading into an existing project (by `project_name` or `project_id`) takes the
/// project's labels as its schema, as FiftyOne does: the manifest's classes and attributes
/// are not added to someone else's project unless `extend_project_schema` says so, and the
/// plan says which. Labels the project cannot hold stop the plan before anything is created.
#[test]
fn an_existing_projects_schema_wins() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, ALL_TYPES, "");
    let pid = foreign_project(
        &cvat,
        "shared",
        &[("car", &["make"]), ("person", &["make"])],
    );
    ws.manifest(
        "reuse.yaml",
        &format!(
            "{}view:\n  - limit: 1\nbackend_config:\n  project_name: shared\nlabel_field: ground_truth\nclasses: [car, person, bike, truck]\nattributes:\n  color: {{type: text}}\n",
            run_header("reuse")
        ),
    );
    let text = ws.run(&["plan", "-v"]);
    assert!(
        text.contains("upload into the existing project `shared`"),
        "{text}"
    );
    let plan = ws.plan();
    let field = &plan["runs"][0]["schema"]["fields"]["ground_truth"];
    assert_eq!(field["classes"], json!(["car", "person"]), "{plan:#}");
    assert_eq!(field["attributes"]["make"]["type"], "text", "{plan:#}");
    assert!(field["attributes"].get("color").is_none(), "{plan:#}");
    ws.apply();
    assert_eq!(label_names(&cvat, pid), ["car", "person"], "no label added");
    let car = cvat.label(pid, "car");
    let visible: Vec<&str> = car["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .filter(|n| !["label_id", "index"].contains(n))
        .collect();
    assert_eq!(visible, ["make"], "{car:#}");
    assert_eq!(cvat.tasks(pid).len(), 1);
    assert!(actions(&ws.plan()).is_empty());

    // A project that cannot hold the run's labels (by id): refused at plan, nothing created.
    let narrow = foreign_project(&cvat, "cars only", &[("car", &[])]);
    ws.manifest(
        "narrow.yaml",
        &format!(
            "{}view:\n  - limit: 1\nbackend_config:\n  project_id: {narrow}\nlabel_field: ground_truth\n",
            run_header("narrow")
        ),
    );
    let (ok, stdout, stderr) = ws.try_run(&["apply", "--auto-approve"]);
    assert!(!ok, "{stdout}");
    assert!(
        stderr.contains("has no labels for classes `person` of field `ground_truth`"),
        "{stderr}"
    );
    assert!(cvat.tasks(narrow).is_empty(), "nothing created");

    // The opt-in: the run's classes are added to the project.
    ws.manifest(
        "narrow.yaml",
        &format!(
            "{}view:\n  - limit: 1\nbackend_config:\n  project_id: {narrow}\n  extend_project_schema: true\nlabel_field: ground_truth\n",
            run_header("narrow")
        ),
    );
    let text = ws.run(&["plan", "-v"]);
    assert!(text.contains("adding the run's missing classes"), "{text}");
    ws.apply();
    assert_eq!(label_names(&cvat, narrow), ["car", "person", "bike"]);
    assert_eq!(cvat.tasks(pid).len(), 1, "the first run is untouched");
}

/// A merge into a field deleted from the dataset since upload restores the run's labels into
/// it, with their ids, as FiftyOne's `load_annotations` does.
#[test]
fn a_merge_restores_a_deleted_field() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, ALL_TYPES, "");
    ws.manifest(
        "a.yaml",
        &format!(
            "{}view:\n  - limit: 1\nlabel_field: ground_truth\nload:\n  when: always\n",
            run_header("boxes")
        ),
    );
    let before = ws.samples();
    ws.apply();
    delete_field(&ws, "ground_truth");
    let pid = cvat.project("annoform/ds/boxes").unwrap();
    let tid = cvat.tasks(pid)[0]["id"].as_u64().unwrap();
    let gt = before[0]["ground_truth"]["detections"].as_array().unwrap();
    let mut car = cvat.shape_of(tid, pid, oid(&gt[0]));
    car["points"] = json!([0, 0, 32, 24]);
    cvat.edit(tid, "update", vec![car], vec![]);
    let plan = ws.plan();
    assert_eq!(actions(&plan), ["merge"], "{plan:#}");
    assert_eq!(counts(&plan, "ground_truth")[0], 2, "{plan:#}");
    ws.apply();
    let after = ws.samples();
    let restored = after[0]["ground_truth"]["detections"].as_array().unwrap();
    let ids: Vec<&str> = restored.iter().map(oid).collect();
    assert_eq!(ids, [oid(&gt[0]), oid(&gt[1])], "{restored:#?}");
    crate::acceptance::close(&restored[0]["bounding_box"], &[0.0, 0.0, 0.5, 0.5]);
    assert!(actions(&ws.plan()).is_empty());
}

/// A run failing at apply (here: an assignee the server does not know) stops only itself:
/// the other runs are applied, and apply exits 1 naming the failure.
#[test]
fn a_run_failing_at_apply_does_not_stop_the_others() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, ALL_TYPES, "");
    ws.manifest(
        "a.yaml",
        &format!(
            "{}view:\n  - limit: 1\nbackend_config:\n  task_assignee: nobody_here\nlabel_field: cls\n",
            run_header("assigned")
        ),
    );
    ws.manifest(
        "b.yaml",
        &format!(
            "{}view:\n  - limit: 1\nlabel_field: kps\n",
            run_header("points")
        ),
    );
    let (ok, _, stderr) = ws.try_run(&["apply", "--auto-approve"]);
    assert!(!ok);
    assert!(
        stderr.contains("there is no CVAT user `nobody_here`"),
        "{stderr}"
    );
    let points = cvat
        .project("annoform/ds/points")
        .expect("the other run was applied");
    assert_eq!(cvat.tasks(points).len(), 1);
}
