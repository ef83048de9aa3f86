//! Issue 13's acceptance for the `darwin` backend: create, annotators' edits, exact plan
//! counts, apply, empty re-plan, byte-identical second apply, destroy; restrictions; equal
//! file names in different folders.

use super::*;

const DEMO: &str = "datasets/demo";
const BOXES: &str = "ground_truth: {type: detections, classes: [car, person, bike]}";
const REGIONS: &str = "regions: {type: polygons, classes: [road, grass]}";
const SCENE: &str = "scene: {type: classification, classes: [street, park, parking]}";

/// Labels of a list field of a sample.
fn labels<'a>(s: &'a Value, field: &str, list: &str) -> &'a [Value] {
    s[field][list].as_array().map_or(&[], Vec::as_slice)
}

/// Every label of `field` over the dataset.
fn count_labels(ws: &Ws, field: &str, list: &str) -> u64 {
    ws.samples()
        .iter()
        .map(|s| labels(s, field, list).len() as u64)
        .sum()
}

/// The annotation of an item whose id was made from label `label`.
fn annotation_of(anns: &[Value], label: &str) -> usize {
    anns.iter()
        .position(|a| {
            let id: String = a["id"]
                .as_str()
                .unwrap()
                .chars()
                .filter(|c| *c != '-')
                .collect();
            id.starts_with(&label[..12])
                && id[13..16] == label[12..15]
                && id[17..20] == label[15..18]
                && id[20..26] == label[18..24]
        })
        .unwrap_or_else(|| panic!("no annotation of label {label}"))
}

/// The edits of the acceptance, made in V7 on the `ground_truth` boxes: sample 0's first box
/// moved and its second deleted, sample 1's first box relabelled, a box added on sample 2.
/// Returns the ids of (moved, deleted, relabelled).
fn edit_boxes(v7: &V7, ws: &Ws, slug: &str) -> (String, String, String) {
    let samples = ws.samples();
    let (s0, s1, s2) = (&samples[0], &samples[1], &samples[2]);
    let moved = oid(&labels(s0, "ground_truth", "detections")[0]).to_string();
    let deleted = oid(&labels(s0, "ground_truth", "detections")[1]).to_string();
    let relabelled = oid(&labels(s1, "ground_truth", "detections")[0]).to_string();

    let item = v7.item_of(slug, sid(s0))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut anns = v7.annotations(&item);
    let i = annotation_of(&anns, &moved);
    anns[i]["data"]["bounding_box"] = json!({"x": 8.0, "y": 12.0, "w": 40.0, "h": 30.0});
    let d = annotation_of(&anns, &deleted);
    anns.remove(d);
    v7.save(&item, anns);

    let item = v7.item_of(slug, sid(s1))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut anns = v7.annotations(&item);
    let i = annotation_of(&anns, &relabelled);
    let current = anns[i]["annotation_class_id"].as_u64().unwrap();
    let car = v7.class("car", "bounding_box");
    let person = v7.class("person", "bounding_box");
    anns[i]["annotation_class_id"] = json!(if current == car { person } else { car });
    v7.save(&item, anns);

    let item = v7.item_of(slug, sid(s2))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut anns = v7.annotations(&item);
    anns.push(json!({"id": "9b2f4c1e-0d3a-4e5f-8a6b-7c8d9e0f1a2b",
        "annotation_class_id": v7.class("bike", "bounding_box"),
        "context_keys": {"slot_names": ["0"]},
        "data": {"bounding_box": {"x": 80.0, "y": 60.0, "w": 16.0, "h": 24.0}}}));
    v7.save(&item, anns);
    (moved, deleted, relabelled)
}

#[test]
fn uploads_edits_merge_and_destroy_through_v7() {
    let v7 = V7::start();
    let ws = Ws::new(&v7, DEMO);
    ws.run_manifest("boxes", "demo-boxes", BOXES, "");
    ws.run_manifest("regions", "demo-regions", REGIONS, "");
    ws.run_manifest("scene", "demo-scene", SCENE, "");
    let n_boxes = count_labels(&ws, "ground_truth", "detections");
    let n_regions = count_labels(&ws, "regions", "polylines");

    let plan = ws.plan();
    for key in ["boxes", "regions", "scene"] {
        assert_eq!(actions(&plan, key), ["create"], "{plan}");
    }
    assert_eq!(counts(&plan, "boxes", "ground_truth")[0], n_boxes);
    assert_eq!(counts(&plan, "regions", "regions")[0], n_regions);
    assert_eq!(counts(&plan, "scene", "scene")[0], 24);
    ws.apply();

    // Every sample is an item at /<task>/<sample id>, its file uploaded, its labels imported
    // under ids made from ours.
    let items = v7.items("demo-boxes");
    assert_eq!(items.len(), 24);
    let s0 = &ws.samples()[0];
    let item = v7.item_of("demo-boxes", sid(s0));
    assert_eq!(item["name"], "000000.png");
    assert_eq!(
        item["path"],
        format!("/demo-boxes/boxes/batch-0000/{}", sid(s0))
    );
    assert_eq!(item["slots"][0]["width"], 160);
    let anns = v7.annotations(item["id"].as_str().unwrap());
    assert_eq!(anns.len(), 2);
    annotation_of(&anns, oid(&labels(s0, "ground_truth", "detections")[0]));
    let record = ws.record("boxes").unwrap();
    assert_eq!(record["project_created"], true);
    // The record maps each annotation id it imported to its label (one box, one annotation).
    let map = record["id_map"].as_object().expect("an id map");
    assert_eq!(map.len(), n_boxes as usize, "{map:?}");
    for label in labels(s0, "ground_truth", "detections") {
        let a = &anns[annotation_of(&anns, oid(label))];
        assert_eq!(map[a["id"].as_str().unwrap()], oid(label), "{map:?}");
    }

    let plan = ws.plan();
    for key in ["boxes", "regions", "scene"] {
        assert_eq!(actions(&plan, key), Vec::<String>::new(), "{plan}");
    }

    let original = ws.samples();
    let (moved, deleted, relabelled) = edit_boxes(&v7, &ws, "demo-boxes");
    // A polygon edited: sample 3's first region gets a vertex moved.
    let samples = ws.samples();
    let region = oid(&labels(&samples[3], "regions", "polylines")[0]).to_string();
    let item = v7.item_of("demo-regions", sid(&samples[3]))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut anns = v7.annotations(&item);
    let i = annotation_of(&anns, &region);
    anns[i]["data"]["polygon"]["path"][0] = json!({"x": 4.0, "y": 6.0});
    v7.save(&item, anns);
    // A tag changed: sample 4's scene takes another class.
    let scene_before = samples[4]["scene"]["label"].as_str().unwrap().to_string();
    let scene_after = if scene_before == "street" {
        "park"
    } else {
        "street"
    };
    let item = v7.item_of("demo-scene", sid(&samples[4]))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut anns = v7.annotations(&item);
    anns[0]["annotation_class_id"] = json!(v7.class(scene_after, "tag"));
    v7.save(&item, anns);

    let plan = ws.plan();
    assert_eq!(actions(&plan, "boxes"), ["merge"], "{plan}");
    assert_eq!(
        counts(&plan, "boxes", "ground_truth")[1..],
        [1, 2, 1, 0, n_boxes - 3],
        "{plan}"
    );
    assert_eq!(
        counts(&plan, "regions", "regions")[1..],
        [0, 1, 0, 0, n_regions - 1]
    );
    assert_eq!(counts(&plan, "scene", "scene")[1..], [0, 1, 0, 0, 23]);

    ws.apply();
    let samples = ws.samples();
    let d0 = labels(&samples[0], "ground_truth", "detections");
    assert_eq!(d0.len(), 1, "the deleted box left");
    assert_eq!(oid(&d0[0]), moved);
    assert_eq!(d0[0]["bounding_box"], json!([0.05, 0.1, 0.25, 0.25]));
    assert!(!d0.iter().any(|d| oid(d) == deleted));
    let d1 = labels(&samples[1], "ground_truth", "detections");
    let r = d1.iter().find(|d| oid(d) == relabelled).unwrap();
    let was = labels(&original[1], "ground_truth", "detections")
        .iter()
        .find(|d| oid(d) == relabelled)
        .unwrap();
    assert_ne!(r["label"], was["label"], "relabelled");
    assert_eq!(r["bounding_box"], was["bounding_box"]);
    let added = labels(&samples[2], "ground_truth", "detections")
        .iter()
        .find(|d| d["label"] == "bike" && d["bounding_box"] == json!([0.5, 0.5, 0.1, 0.2]))
        .expect("the added box");
    assert_eq!(added["_cls"], "Detection");
    assert_eq!(
        labels(&samples[3], "regions", "polylines")[0]["points"][0][0],
        json!([0.025, 0.05])
    );
    assert_eq!(samples[4]["scene"]["label"], scene_after);

    let plan = ws.plan();
    for key in ["boxes", "regions", "scene"] {
        assert_eq!(actions(&plan, key), Vec::<String>::new(), "{plan}");
    }
    let before = ws.samples_text();
    ws.apply();
    assert_eq!(ws.samples_text(), before, "a second apply changes nothing");

    // Destroy: the datasets the runs created are archived; the records go; the labels stay.
    std::fs::remove_dir_all(ws.path().join("manifests")).unwrap();
    std::fs::create_dir_all(ws.path().join("manifests")).unwrap();
    ws.run(&["destroy", "--auto-approve"]);
    for slug in ["demo-boxes", "demo-regions", "demo-scene"] {
        assert!(v7.dataset(slug).is_none(), "{slug} archived");
    }
    assert!(ws.record("boxes").is_none());
    assert_eq!(ws.samples_text(), before);
}

#[test]
fn external_storage_registers_items_instead_of_uploading() {
    let v7 = V7::start();
    let ws = Ws::new(&v7, DEMO);
    // Keys are the media paths without their leading `/`: the storage's root is `/`.
    v7.fake.storage("local-bucket", PathBuf::from("/"));
    ws.run_manifest("boxes", "ext", BOXES, "");
    let text = std::fs::read_to_string(ws.path().join("manifests/boxes.yaml")).unwrap();
    std::fs::write(
        ws.path().join("manifests/boxes.yaml"),
        text.replace(
            "  dataset_slug: ext\n",
            "  dataset_slug: ext\n  external_storage: local-bucket\n",
        ),
    )
    .unwrap();
    ws.apply();
    let log = v7.fake.log();
    assert!(
        log.iter()
            .any(|(m, p, _)| m == "POST" && p.ends_with("/items/register_existing"))
    );
    assert!(
        !log.iter()
            .any(|(_, p, _)| p.starts_with("/s3/") || p.ends_with("/register_upload"))
    );
    let items = v7.items("ext");
    assert_eq!(items.len(), 24);
    assert!(
        items
            .iter()
            .all(|i| i["status"] == "new" && i["slots"][0]["width"] == 160)
    );
    let s0 = &ws.samples()[0];
    let item = v7.item_of("ext", sid(s0));
    assert_eq!(v7.annotations(item["id"].as_str().unwrap()).len(), 2);
    assert_eq!(actions(&ws.plan(), "boxes"), Vec::<String>::new());
}

#[test]
fn restrictions_reject_and_list_every_forbidden_change() {
    let v7 = V7::start();
    let ws = Ws::new(&v7, DEMO);
    let restricted = "ground_truth: {type: detections, classes: [car, person, bike], allow_additions: false, allow_deletions: false, allow_label_edits: false, allow_spatial_edits: false}";
    ws.run_manifest("boxes", "restricted", restricted, "");
    ws.apply();
    let before = ws.samples_text();
    let (moved, deleted, relabelled) = edit_boxes(&v7, &ws, "restricted");
    let plan = ws.plan();
    let n = count_labels(&ws, "ground_truth", "detections");
    assert_eq!(
        counts(&plan, "boxes", "ground_truth")[1..],
        [0, 0, 0, 4, n - 3],
        "{plan}"
    );
    let rejected = run_of(&plan, "boxes")["rejected"].as_array().unwrap();
    let reason = |id: &str| {
        rejected
            .iter()
            .find(|r| r["label_id"] == id)
            .unwrap_or_else(|| panic!("{id} not listed in {rejected:?}"))["reason"]["restriction"]
            .clone()
    };
    assert_eq!(reason(&moved), "allow_spatial_edits");
    assert_eq!(reason(&deleted), "allow_deletions");
    assert_eq!(reason(&relabelled), "allow_label_edits");
    assert!(
        rejected
            .iter()
            .any(|r| r["reason"]["restriction"] == "allow_additions"),
        "{rejected:?}"
    );
    assert_eq!(rejected.len(), 4);
    ws.apply();
    assert_eq!(
        ws.samples_text(),
        before,
        "nothing forbidden reached the dataset"
    );
    assert_eq!(actions(&ws.plan(), "boxes"), Vec::<String>::new());
}

#[test]
fn equal_file_names_in_two_folders_stay_apart() {
    let v7 = V7::start();
    let ws = Ws::new(&v7, DEMO);
    // Sample 1's image moves to data/sub/000000.png: two samples named 000000.png.
    let root = ws.path().join("datasets/ds");
    std::fs::create_dir_all(root.join("data/sub")).unwrap();
    std::fs::copy(
        root.join("data/000001.png"),
        root.join("data/sub/000000.png"),
    )
    .unwrap();
    let text = std::fs::read_to_string(root.join("samples.json")).unwrap();
    std::fs::write(
        root.join("samples.json"),
        text.replace("\"data/000001.png\"", "\"data/sub/000000.png\""),
    )
    .unwrap();
    ws.run_manifest("boxes", "dups", BOXES, "");
    ws.apply();
    let samples = ws.samples();
    let (a, b) = (
        v7.item_of("dups", sid(&samples[0])),
        v7.item_of("dups", sid(&samples[1])),
    );
    assert_eq!(a["name"], "000000.png");
    assert_eq!(b["name"], "000000.png");
    assert_ne!(a["id"], b["id"]);
    // Each item's edit reaches its own sample only.
    for (item, x) in [(&a, 16.0), (&b, 48.0)] {
        let id = item["id"].as_str().unwrap();
        let mut anns = v7.annotations(id);
        anns.truncate(1);
        anns[0]["data"]["bounding_box"] = json!({"x": x, "y": 12.0, "w": 16.0, "h": 12.0});
        v7.save(id, anns);
    }
    ws.apply();
    let samples = ws.samples();
    let boxes = |s: &Value| -> Vec<Value> {
        labels(s, "ground_truth", "detections")
            .iter()
            .map(|d| d["bounding_box"].clone())
            .collect()
    };
    assert_eq!(boxes(&samples[0]), [json!([0.1, 0.1, 0.1, 0.1])]);
    assert_eq!(boxes(&samples[1]), [json!([0.3, 0.1, 0.1, 0.1])]);
}
