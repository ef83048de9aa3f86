//! What validate and plan promise about a Label Studio run holds at apply: a declared type on
//! a field of mixed labels uploads only labels of that type, and media of a workspace opened
//! by a relative path are served from `local_files_root`.

use super::*;

fn write_manifest(ws: &Ws, schema: &str) {
    std::fs::write(
        ws.path().join("manifests/run.yaml"),
        format!("apiVersion: annoform/v1\nkind: AnnotationRun\nkey: review\ndataset: quickstart\nbackend: labelstudio\nload:\n  when: always\nlabel_schema:\n{schema}"),
    )
    .unwrap();
}

/// `type: polygons` on a field holding polygons and open polylines uploads the polygons only
/// (FiftyOne's `_select_labels_with_type`); the polylines stay out of the run, untouched.
#[test]
fn polygons_on_a_mixed_field_upload_only_polygons() {
    let dir = tempfile::tempdir().unwrap();
    let ls = LabelStudio::start(dir.path());
    let ws = Ws::new(dir, &ls, "");
    write_manifest(
        &ws,
        "  polylines: {type: polygons, classes: [lane, roof, pool]}\n",
    );
    let before = ws.samples();
    let plan = ws.plan();
    assert_eq!(
        plan["runs"][0]["fields"]["polylines"]["upload"], 5,
        "one filled polygon per sample: {plan:#}"
    );
    ws.run(&["apply", "--auto-approve"]);
    let pid = ls.project(PROJECT).expect("project");
    let tasks = ls.tasks(pid);
    assert_eq!(tasks.len(), 5);
    for t in &tasks {
        let result = t["predictions"][0]["result"].as_array().unwrap();
        let labels: Vec<&str> = result
            .iter()
            .flat_map(|r| r["value"]["polygonlabels"].as_array().unwrap())
            .map(|l| l.as_str().unwrap())
            .collect();
        assert_eq!(labels, ["pool"], "{t:#}");
    }
    assert!(run_actions(&ws.plan()).is_empty());
    assert_eq!(ws.samples(), before, "nothing in the dataset changed");
}

/// A workspace opened as `-C .` (relative media paths) still has its media served from
/// `local_files_root` rather than uploaded.
#[test]
fn relative_workspace_paths_are_served_from_local_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let ls = LabelStudio::start(&root);
    let ws = Ws::new(
        dir,
        &ls,
        &format!("local_files_root = \"{}\"\n", root.display()),
    );
    write_manifest(&ws, "  n_float: {}\n");
    let out = Command::new(env!("CARGO_BIN_EXE_annoform"))
        .env_clear()
        .env("HOME", ws.path().join("home"))
        .env("NO_COLOR", "1")
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LS_KEY", &ws.token)
        .current_dir(ws.path())
        .args(["-C", ".", "apply", "--auto-approve"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = ls.project(PROJECT).expect("project");
    let tasks = ls.tasks(pid);
    assert_eq!(tasks.len(), 5);
    for t in &tasks {
        let image = t["data"]["image"].as_str().unwrap();
        assert!(
            image.starts_with("/data/local-files/?d=datasets/quickstart/data/"),
            "{image}"
        );
    }
}
