//! Run parameters on the real server: segmentations whose masks FiftyOne keeps in PNG files.

use super::*;

fn pixels(m: &annoform::dataset::mask::Mask) -> Vec<Vec<u64>> {
    (0..m.shape[0])
        .map(|r| (0..m.shape[1]).map(|c| m.get(r, c).unwrap()).collect())
        .collect()
}

/// `mask_path` segmentations go up as brush regions of their pixels and an unedited round trip
/// changes nothing; an annotator erasing the sky of one image gives a new PNG file with
/// exactly that change (the old file stays), pointed at by the label's `mask_path`.
#[test]
fn mask_path_segmentations_round_trip_through_png_files() {
    use annoform::dataset::mask::mask_of;
    let dir = tempfile::tempdir().unwrap();
    let ls = LabelStudio::start(dir.path());
    let ws = Ws::new(dir, &ls, "");
    std::fs::write(
        ws.path().join("manifests/run.yaml"),
        "apiVersion: annoform/v1\nkind: AnnotationRun\nkey: review\ndataset: quickstart\nbackend: labelstudio\nload:\n  when: always\nlabel_schema:\n  seg_path: {}\n",
    )
    .unwrap();
    let root = ws.path().join(&ws.dataset);
    let before = ws.samples();
    let old_rel = before[0]["seg_path"]["mask_path"]
        .as_str()
        .unwrap()
        .to_string();
    let old_file = std::fs::read(root.join(&old_rel)).unwrap();
    ws.run(&["apply", "--auto-approve"]);
    assert!(run_actions(&ws.plan()).is_empty());

    let pid = ls.project(PROJECT).expect("project created");
    let s0 = before[0]["_id"]["$oid"].as_str().unwrap();
    let task = ls
        .tasks(pid)
        .into_iter()
        .find(|t| t["data"]["sample_id"] == s0)
        .expect("task of sample 0");
    let mut result: Vec<Value> = task["predictions"][0]["result"].as_array().unwrap().clone();
    let n = result.len();
    result.retain(|r| r["value"]["brushlabels"] != json!(["sky"]));
    assert_eq!(result.len(), n - 1, "one brush region per class went up");
    ls.post(
        &format!("/api/tasks/{}/annotations", task["id"]),
        &json!({"result": result, "was_cancelled": false, "ground_truth": false}),
    );
    let plan = ws.plan();
    let c = &plan["runs"][0]["fields"]["seg_path"];
    assert_eq!(
        (&c["edited"], &c["deleted"]),
        (&json!(1), &json!(0)),
        "{plan:#}"
    );
    ws.run(&["apply", "--auto-approve"]);

    let after = ws.samples();
    let label = &after[0]["seg_path"];
    assert!(label.get("mask").is_none_or(Value::is_null), "{label}");
    let rel = label["mask_path"].as_str().unwrap();
    assert_ne!(rel, old_rel);
    let old = pixels(&mask_of(&before[0]["seg_path"], &root).unwrap().unwrap());
    let new = pixels(&mask_of(label, &root).unwrap().unwrap());
    for (y, row) in old.iter().enumerate() {
        for (x, v) in row.iter().enumerate() {
            assert_eq!(new[y][x], if *v == 2 { 0 } else { *v }, "pixel ({x}, {y})");
        }
    }
    assert_eq!(std::fs::read(root.join(&old_rel)).unwrap(), old_file);
    for (b, a) in before.iter().zip(&after).skip(1) {
        assert_eq!(b["seg_path"], a["seg_path"]);
    }
    assert!(run_actions(&ws.plan()).is_empty());
}
