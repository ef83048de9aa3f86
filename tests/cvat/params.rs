//! Run parameters as FiftyOne users write them: cleanup, per-run connections, status and the
//! editor URLs.

use super::*;

const DEMO: &str = "datasets/demo";

fn boxes(key: &str, extra: &str) -> String {
    format!(
        "apiVersion: annoform/v1\nkind: AnnotationRun\nkey: {key}\ndataset: ds\nview:\n  - limit: 2\nlabel_field: ground_truth\nlabel_type: detections\nclasses: [car, person, bike, truck]\nattributes: false\n{extra}"
    )
}

/// A completed run whose annotators changed nothing still gets its `cleanup`.
#[test]
fn cleanup_runs_when_the_final_merge_has_no_changes() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, DEMO, "");
    ws.manifest(
        "run.yaml",
        &boxes("done", "load:\n  when: complete\n  cleanup: true\n"),
    );
    ws.apply();
    let pid = cvat.project("annoform/ds/done").expect("project");
    for t in cvat.tasks(pid) {
        cvat.complete(t["id"].as_u64().unwrap());
    }
    let before = ws.samples();
    let plan = ws.plan();
    assert_eq!(actions(&plan), ["merge"], "{plan:#}");
    assert!(
        plan["runs"][0]["details"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["kind"] == "cleanup"),
        "{plan:#}"
    );
    ws.apply();
    assert_eq!(cvat.project("annoform/ds/done"), None, "cleaned up");
    assert_eq!(ws.samples(), before, "no label changed");
    assert_eq!(ws.record("done")["cleaned_up"], true);
    let plan = ws.plan();
    assert!(actions(&plan).is_empty(), "{plan:#}");
}

/// A run naming its own server (`backend_config.url`) goes there, with the workspace
/// backend's credentials; the other runs stay on the workspace's server. Status, merge and
/// destroy follow the run to its server.
#[test]
fn a_run_with_its_own_url_goes_to_that_server() {
    let main = Cvat::start();
    let other = Cvat::start();
    let ws = Ws::new(&main, DEMO, "");
    ws.manifest("here.yaml", &boxes("here", "load:\n  when: always\n"));
    ws.manifest(
        "there.yaml",
        &boxes(
            "there",
            &format!(
                "backend_config:\n  url: {}\nload:\n  when: always\n",
                other.url()
            ),
        ),
    );
    ws.apply();
    assert!(main.project("annoform/ds/here").is_some());
    assert_eq!(
        main.project("annoform/ds/there"),
        None,
        "not on the workspace's server"
    );
    let pid = other
        .project("annoform/ds/there")
        .expect("on the run's server");
    assert_eq!(other.project("annoform/ds/here"), None);
    let plan = ws.plan();
    assert!(actions(&plan).is_empty(), "{plan:#}");

    // An annotator draws a box on the run's server: the merge reads it from there.
    let tid = other.tasks(pid)[0]["id"].as_u64().unwrap();
    let samples = ws.samples();
    let f = other.frame_of(tid, oid(&samples[0]));
    other.edit(
        tid,
        "create",
        vec![json!({"type": "rectangle", "frame": f,
            "label_id": other.label(pid, "truck")["id"], "points": [0, 0, 16, 12]})],
        vec![],
    );
    let plan = ws.plan();
    assert_eq!(actions(&plan), ["merge"], "{plan:#}");
    let status = ws.run(&["status", "there"]);
    assert!(status.contains("0/1 task(s) complete"), "{status}");
    ws.apply();
    ws.run(&["destroy", "--target", "there", "--auto-approve"]);
    assert_eq!(other.project("annoform/ds/there"), None);
    assert!(main.project("annoform/ds/here").is_some());
}

/// `apply` names the project and task URLs, and the editor's when the manifest sets
/// `launch_editor`; `status` shows each task's last update and URL like FiftyOne's
/// `print_status()`; `runs info --summary` reads like `get_annotation_info()`.
#[test]
fn apply_status_and_info_show_where_the_run_is() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, DEMO, "");
    ws.manifest(
        "run.yaml",
        &boxes("links", "launch_editor: true\nload:\n  when: complete\n"),
    );
    let out = ws.run(&["apply", "--auto-approve"]);
    let pid = cvat.project("annoform/ds/links").unwrap();
    let tid = cvat.tasks(pid)[0]["id"].as_u64().unwrap();
    let project_url = format!("{}/projects/{pid}", cvat.url());
    let task_url = format!("{}/tasks/{tid}", cvat.url());
    assert!(
        out.contains(&format!("links: project {project_url}"))
            && out.contains(&format!("task annoform/ds/links/batch-0000: {task_url}"))
            && out.contains(&format!("links: open the editor at {task_url}")),
        "{out}"
    );
    let status = ws.run(&["status", "links"]);
    let updated = cvat.get(&format!("/api/tasks/{tid}"))["updated_date"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        status.contains(&format!("project: {project_url}"))
            && status.contains("last updated ")
            && status.contains(&task_url),
        "{status}"
    );
    assert!(status.contains(&updated[..10]), "{status}");
    let info = ws.run(&["runs", "info", "links", "--summary"]);
    assert!(
        info.contains("key:        links")
            && info.contains("backend:    cvat")
            && info.contains("  ground_truth: detections")
            && info.contains("classes: car, person, bike, truck"),
        "{info}"
    );
    let json: Value = serde_json::from_str(&ws.run(&["runs", "info", "links"])).unwrap();
    assert_eq!(json["key"], "links");
}

/// `FIFTYONE_CVAT_EMAIL` (or `ANNOFORM_CVAT_EMAIL`) goes with the username and password at
/// login, as FiftyOne sends it.
#[test]
fn the_login_sends_the_email() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, DEMO, "");
    ws.manifest("run.yaml", &boxes("mail", "load:\n  when: complete\n"));
    let run = |email: &str| {
        let out = ws
            .command(&["apply", "--auto-approve"])
            .env("FIFTYONE_CVAT_EMAIL", email)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, stderr) = run("someone-else@example.com");
    assert!(!ok && stderr.contains("refused the login"), "{stderr}");
    assert!(
        !stderr.contains("someone-else@example.com"),
        "the email is a credential: {stderr}"
    );
    let (ok, stderr) = run("admin@localhost.localdomain");
    assert!(ok, "{stderr}");
    let shown = ws
        .command(&["config", "show"])
        .env("FIFTYONE_CVAT_EMAIL", "x@y.z")
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.lines().any(|l| l.contains("backends.cvat.email")
            && l.contains("(set)")
            && l.contains("FIFTYONE_CVAT_EMAIL")),
        "{shown}"
    );
}

/// `job_reviewers` (CVAT v1 only, FiftyOne says) is refused with a note, in a manifest or in
/// annoform.toml, rather than ignored.
#[test]
fn job_reviewers_is_refused_with_a_note() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, DEMO, "");
    ws.manifest(
        "run.yaml",
        &boxes("rev", "backend_config:\n  job_reviewers: [anna]\n"),
    );
    let (ok, _, stderr) = ws.try_run(&["validate"]);
    assert!(!ok);
    assert!(
        stderr.contains("`backend_config.job_reviewers` is not supported")
            && stderr.contains("CVAT 2.x has no job reviewers")
            && stderr.contains("run.yaml"),
        "{stderr}"
    );
    let ws2 = Ws::new(&cvat, DEMO, "job_reviewers = [\"anna\"]\n");
    ws2.manifest("run.yaml", &boxes("rev", ""));
    let (ok, _, stderr) = ws2.try_run(&["apply", "--auto-approve"]);
    assert!(!ok);
    assert!(
        stderr.contains("`job_reviewers` is not supported") && stderr.contains("job_assignees"),
        "{stderr}"
    );
    assert_eq!(cvat.project("annoform/ds/rev"), None);
}

fn pixels(m: &annoform::dataset::mask::Mask) -> Vec<Vec<u64>> {
    (0..m.shape[0])
        .map(|r| (0..m.shape[1]).map(|c| m.get(r, c).unwrap()).collect())
        .collect()
}

/// Segmentations whose masks FiftyOne keeps in PNG files (`mask_path`) go up as their pixels
/// and come back exactly; a repainted mask is written to a new PNG file (the old file stays)
/// and the label's `mask_path` points at it.
#[test]
fn mask_path_segmentations_round_trip_through_png_files() {
    use annoform::dataset::mask::mask_of;
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, "datasets/quickstart", "");
    ws.manifest(
        "run.yaml",
        "apiVersion: annoform/v1\nkind: AnnotationRun\nkey: segs\ndataset: ds\nview:\n  - limit: 2\nlabel_schema:\n  seg_path: {}\nload:\n  when: always\n",
    );
    let root = ws.path().join(&ws.dataset);
    let before = ws.samples();
    let old_file =
        std::fs::read(root.join(before[0]["seg_path"]["mask_path"].as_str().unwrap())).unwrap();
    ws.apply();
    let plan = ws.plan();
    assert!(
        actions(&plan).is_empty(),
        "an unedited round trip changes nothing: {plan:#}"
    );
    let pid = cvat.project("annoform/ds/segs").unwrap();
    let tid = cvat.tasks(pid)[0]["id"].as_u64().unwrap();
    let f0 = cvat.frame_of(tid, oid(&before[0]));
    let sky = cvat.label(pid, "sky");
    let shape = cvat.annotations(tid)["shapes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["label_id"] == sky["id"] && s["frame"] == f0)
        .expect("the sky of sample 0 went up as a mask shape")
        .clone();
    let mut moved = shape.clone();
    moved["points"] = json!([0, 4, 0, 0, 1, 1]);
    cvat.edit(tid, "update", vec![moved], vec![]);
    let plan = ws.plan();
    assert_eq!(counts(&plan, "seg_path"), [0, 1, 0, 0, 1], "{plan:#}");
    ws.apply();
    let after = ws.samples();
    let label = &after[0]["seg_path"];
    assert!(label.get("mask").is_none_or(Value::is_null), "{label}");
    let path = label["mask_path"].as_str().unwrap();
    assert_ne!(path, before[0]["seg_path"]["mask_path"].as_str().unwrap());
    assert!(
        path.starts_with("fields/seg_path/") && path.ends_with(".png"),
        "{path}"
    );
    let old = pixels(&mask_of(&before[0]["seg_path"], &root).unwrap().unwrap());
    let new = pixels(&mask_of(label, &root).unwrap().unwrap());
    for (y, row) in old.iter().enumerate() {
        for (x, v) in row.iter().enumerate() {
            let want = if *v == 2 { 0 } else { *v };
            let want = if x < 2 && y < 2 { 2 } else { want };
            assert_eq!(new[y][x], want, "pixel ({x}, {y})");
        }
    }
    assert_eq!(
        std::fs::read(root.join(before[0]["seg_path"]["mask_path"].as_str().unwrap())).unwrap(),
        old_file,
        "the old file stays as it was"
    );
    assert_eq!(after[1]["seg_path"], before[1]["seg_path"], "untouched");
    let plan = ws.plan();
    assert!(actions(&plan).is_empty(), "{plan:#}");
}

/// A run's own credentials (`${env:NAME}` references in `backend_config`) are the ones it logs
/// in with.
#[test]
fn a_run_logs_in_with_its_own_credentials() {
    let cvat = Cvat::start();
    let mut ws = Ws::new(&cvat, DEMO, "");
    ws.manifest(
        "run.yaml",
        &boxes(
            "own",
            "backend_config:\n  password: \"${env:RUN_PASS}\"\nload:\n  when: complete\n",
        ),
    );
    let apply = |pass: &str| {
        let out = ws
            .command(&["apply", "--auto-approve"])
            .env("RUN_PASS", pass)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!stderr.contains(pass), "the password leaked: {stderr}");
        (out.status.success(), stderr)
    };
    let (ok, stderr) = apply("Not-The-Run-Password-7");
    assert!(!ok && stderr.contains("refused the login"), "{stderr}");
    assert_eq!(cvat.project("annoform/ds/own"), None);
    let (ok, stderr) = apply(ADMIN_PASSWORD);
    assert!(ok, "{stderr}");
    assert!(cvat.project("annoform/ds/own").is_some());

    // With the workspace's own login broken, the run still reaches its project: status and
    // plan use the run's credentials.
    ws.password = "Not-The-Workspace-Password-9".into();
    let with_run_pass = |args: &[&str]| {
        let out = ws
            .command(args)
            .env("RUN_PASS", ADMIN_PASSWORD)
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert!(out.status.success(), "{args:?}: {stderr}");
        stdout
    };
    let status = with_run_pass(&["status", "own"]);
    assert!(status.contains("0/1 task(s) complete"), "{status}");
    with_run_pass(&["plan"]);
}
