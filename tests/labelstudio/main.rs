//! The Label Studio backend end to end: a real Label Studio 1.23.2, started by the test on a
//! free loopback port through `scripts/labelstudio.sh` (installed into a cached venv on first
//! use) and stopped when the test ends, driven through the real CLI in a hermetic
//! environment. A server that cannot be installed or started fails the test: never skipped.
//!
//! `acceptance`: the full loop on the generated demo dataset with simulated annotators,
//! restrictions, a crash after the task import and a misbehaving server; `evidence`: lost or
//! emptied download pages and a task deleted by hand never delete labels. Timings are not
//! tests: `bench/run.sh` and `bench/profile.sh` measure them.

mod acceptance;
mod adoption;
mod evidence;
mod faults;
mod kills;
mod live;
mod matrix;
mod params;
mod refresh;
mod schema;
mod team;
mod unexpected;

#[path = "../support/faultproxy.rs"]
mod faultproxy;
#[path = "../support/faultsuite.rs"]
mod faultsuite;

/// The demo dataset generator (`examples/make-demo-dataset.rs`), reused to make datasets.
#[path = "../../examples/make-demo-dataset.rs"]
#[allow(dead_code)]
mod demo_gen;

#[path = "../support/fs.rs"]
mod fs;
#[path = "../support/mongo.rs"]
mod mongo;
#[path = "../support/postgres.rs"]
mod pg;
use fs::copy_dir;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[path = "../support/labelstudio.rs"]
mod ls_server;
use ls_server::LabelStudio;

/// A workspace with a copy of the all-label-types fixture and a Label Studio backend.
struct Ws {
    dir: tempfile::TempDir,
    token: String,
    /// The dataset's directory under the workspace.
    dataset: String,
    /// More environment for annoform.
    env: Vec<(String, String)>,
}

const FIELDS: [&str; 7] = [
    "ground_truth",
    "cls",
    "clss",
    "polylines",
    "kps",
    "seg",
    "n_float",
];

impl Ws {
    fn new(dir: tempfile::TempDir, ls: &LabelStudio, extra_settings: &str) -> Ws {
        let ws = Ws {
            dir,
            token: ls.token.clone(),
            dataset: "datasets/quickstart".into(),
            env: Vec::new(),
        };
        copy_dir(
            &repo().join("tests/fixtures/fiftyone-1.22.1/image-all-label-types"),
            &ws.path().join("datasets/quickstart"),
        );
        std::fs::create_dir_all(ws.path().join("home")).unwrap();
        std::fs::create_dir_all(ws.path().join("manifests")).unwrap();
        std::fs::write(
            ws.path().join("annoform.toml"),
            format!(
                "default_backend = \"labelstudio\"\n[datasets.quickstart]\npath = \"datasets/quickstart\"\n[backends.labelstudio]\nurl = \"{}\"\napi_key = \"${{env:LS_KEY}}\"\n{extra_settings}",
                ls.url
            ),
        )
        .unwrap();
        let schema: String = FIELDS.iter().map(|f| format!("  {f}: {{}}\n")).collect();
        std::fs::write(
            ws.path().join("manifests/run.yaml"),
            format!("apiVersion: annoform/v1\nkind: AnnotationRun\nkey: review\ndataset: quickstart\nbackend: labelstudio\nload:\n  when: always\nlabel_schema:\n{schema}"),
        )
        .unwrap();
        ws
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The annoform command in a hermetic environment.
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_annoform"));
        c.env_clear()
            .env("HOME", self.path().join("home"))
            .env("NO_COLOR", "1")
            .env("COLUMNS", "100")
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LS_KEY", &self.token)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .arg("-C")
            .arg(self.path())
            .args(args);
        c
    }

    /// Run annoform; panics unless it exits 0.
    fn run(&self, args: &[&str]) -> String {
        let out = self.command(args).output().expect("run annoform");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "annoform {args:?} failed:\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        assert!(
            !stdout.contains(&self.token) && !stderr.contains(&self.token),
            "the token leaked"
        );
        stdout
    }

    fn plan(&self) -> Value {
        serde_json::from_str(&self.run(&["plan", "--json"])).expect("plan JSON")
    }

    /// Drop the cursor taken when the run's tasks were created (as in a record made before
    /// cursors existed): the run's first merge then downloads every task.
    fn forget_created_cursor(&self, dataset: &str, key: &str) {
        let path = self
            .path()
            .join(format!(".annoform/state/{dataset}/{key}.json"));
        let mut record: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert!(
            record
                .as_object_mut()
                .unwrap()
                .remove("created_cursor")
                .is_some(),
            "{record}"
        );
        std::fs::write(&path, serde_json::to_vec_pretty(&record).unwrap()).unwrap();
    }

    /// Drop the downloads plans kept: the next plan or apply downloads afresh.
    fn forget_kept_downloads(&self) {
        let _ = std::fs::remove_dir_all(self.path().join(".annoform/cache"));
    }

    fn samples(&self) -> Vec<Value> {
        let text =
            std::fs::read_to_string(self.path().join(&self.dataset).join("samples.json")).unwrap();
        serde_json::from_str::<Value>(&text).unwrap()["samples"]
            .as_array()
            .unwrap()
            .clone()
    }
}

const PROJECT: &str = "annoform/quickstart/review";

fn run_actions(plan: &Value) -> Vec<String> {
    plan["runs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["actions"].as_array().unwrap().iter())
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn create_annotate_merge_destroy() {
    let dir = tempfile::tempdir().unwrap();
    let ls = LabelStudio::start(dir.path());
    // Media are uploaded: no local_files_root.
    let ws = Ws::new(dir, &ls, "");
    let before = ws.samples();

    let plan = ws.plan();
    assert_eq!(run_actions(&plan), ["create"], "{plan:#}");
    let t0 = Instant::now();
    ws.run(&["apply", "--auto-approve"]);
    eprintln!(
        "apply (create, 5 samples, 55 labels, uploads): {:?}",
        t0.elapsed()
    );

    let pid = ls.project(PROJECT).expect("project created");
    let tasks = ls.tasks(pid);
    assert_eq!(tasks.len(), 5);
    assert!(tasks.iter().all(|t| {
        t["data"]["annoform_batch"] == format!("{PROJECT}/batch-0000")
            && t["data"]["image"]
                .as_str()
                .unwrap()
                .starts_with("/data/upload/")
    }));
    // Unannotated tasks read back as uploaded: nothing to merge.
    assert!(run_actions(&ws.plan()).is_empty());

    // An annotator: on the first sample relabel one box, delete the other, draw a new one.
    let s0 = before[0]["_id"]["$oid"].as_str().unwrap();
    let task = tasks
        .iter()
        .find(|t| t["data"]["sample_id"] == s0)
        .expect("task of sample 0");
    let mut result: Vec<Value> = task["predictions"][0]["result"].as_array().unwrap().clone();
    let gt = before[0]["ground_truth"]["detections"].as_array().unwrap();
    let (keep, gone) = (
        gt[0]["_id"]["$oid"].as_str().unwrap(),
        gt[1]["_id"]["$oid"].as_str().unwrap(),
    );
    result.retain(|r| r["id"] != gone);
    for r in &mut result {
        if r["id"] == keep {
            r["value"]["rectanglelabels"] = json!(["bike"]);
        }
    }
    result.push(json!({"id": "manual0001", "from_name": "ground_truth", "to_name": "image",
        "type": "rectanglelabels", "original_width": 64, "original_height": 48, "image_rotation": 0,
        "origin": "manual",
        "value": {"x": 5.0, "y": 5.0, "width": 25.0, "height": 50.0, "rotation": 0, "rectanglelabels": ["car"]}}));
    ls.post(
        &format!("/api/tasks/{}/annotations", task["id"]),
        &json!({"result": result, "was_cancelled": false, "ground_truth": false}),
    );

    let status = ws.run(&["status"]);
    assert!(status.contains("1/5 labeled"), "{status}");
    let plan = ws.plan();
    assert_eq!(run_actions(&plan), ["merge"], "{plan:#}");
    let gt_counts = &plan["runs"][0]["fields"]["ground_truth"];
    assert_eq!(
        (
            &gt_counts["added"],
            &gt_counts["edited"],
            &gt_counts["deleted"],
            &gt_counts["rejected"],
            &gt_counts["unchanged"]
        ),
        // Only the annotated task is downloaded (the cursor starts at create): the other
        // samples' labels are not compared, so none counts as unchanged.
        (&json!(1), &json!(1), &json!(1), &json!(0), &json!(0)),
        "{plan:#}"
    );
    for f in FIELDS.iter().filter(|f| **f != "ground_truth") {
        let c = &plan["runs"][0]["fields"][f];
        assert_eq!(
            [&c["added"], &c["edited"], &c["deleted"], &c["rejected"]],
            [&json!(0); 4],
            "{f}: {plan:#}"
        );
    }

    ws.run(&["apply", "--auto-approve"]);
    let after = ws.samples();
    let dets = after[0]["ground_truth"]["detections"].as_array().unwrap();
    assert_eq!(dets.len(), 2, "{dets:#?}");
    assert_eq!(dets[0]["_id"]["$oid"], keep);
    assert_eq!(dets[0]["label"], "bike");
    assert_eq!(
        dets[0]["color"], "red",
        "attributes outside the run are kept"
    );
    let new = &dets[1];
    assert_eq!(new["label"], "car");
    let bb: Vec<f64> = new["bounding_box"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    for (a, b) in bb.iter().zip([0.05, 0.05, 0.25, 0.5]) {
        assert!((a - b).abs() < 1e-9, "{bb:?}");
    }
    // Everything else came back exactly as it went up (masks, NaN keypoints, ids, index).
    for (b, a) in before.iter().zip(&after) {
        for f in FIELDS.iter().filter(|f| **f != "ground_truth") {
            assert_eq!(b[f], a[f], "field {f} of sample {}", b["_id"]);
        }
    }
    for (b, a) in before.iter().zip(&after).skip(1) {
        assert_eq!(b["ground_truth"], a["ground_truth"]);
    }
    let plan = ws.plan();
    assert!(run_actions(&plan).is_empty(), "{plan:#}");
    // Loading again mints no new ids for the label drawn in Label Studio.
    assert_eq!(ws.samples(), after);

    let deletes_before = ls.logged("DELETE").len();
    ws.run(&["destroy", "--auto-approve"]);
    assert_eq!(ls.project(PROJECT), None);
    let deletes = ls.logged("DELETE");
    assert_eq!(
        deletes.len() - deletes_before,
        1,
        "one DELETE for the whole project: {deletes:?}"
    );
}

#[test]
fn adopts_after_a_lost_record_with_local_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let ls = LabelStudio::start(&root);
    let ws = Ws::new(
        dir,
        &ls,
        &format!("local_files_root = \"{}\"\n", root.display()),
    );
    ws.run(&["apply", "--auto-approve"]);
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
    // The served image is the dataset's own file.
    let (status, _) = ls.request(
        reqwest::Method::GET,
        tasks[0]["data"]["image"].as_str().unwrap(),
        None,
    );
    assert_eq!(status, 200);

    // The record lost: the project carries the identity of a run this workspace no longer
    // knows, so apply refuses it (it could be another workspace's), and `import` takes it
    // over with its batch.
    std::fs::remove_dir_all(ws.path().join(".annoform/state")).unwrap();
    let out = ws.command(&["apply", "--auto-approve"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains(&format!(
                "project `{PROJECT}` ({pid}) belongs to run `review`"
            )),
        "{stderr}"
    );
    ws.run(&["import", "review"]);
    assert_eq!(ls.project(PROJECT), Some(pid));
    assert_eq!(ls.tasks(pid).len(), 5, "no duplicate tasks");
    let plan = ws.plan();
    assert!(run_actions(&plan).is_empty(), "{plan:#}");

    // A new class is added to the project in place (PATCH of the labeling config).
    let manifest = ws.path().join("manifests/run.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap().replace(
        "  ground_truth: {}",
        "  ground_truth: {classes: [car, person, bike, truck]}",
    );
    std::fs::write(&manifest, text).unwrap();
    assert_eq!(run_actions(&ws.plan()), ["update"]);
    ws.run(&["apply", "--auto-approve"]);
    let config = ls.get(&format!("/api/projects/{pid}"))["label_config"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(config.contains(r#"<Label value="truck"/>"#), "{config}");
    assert_eq!(ls.tasks(pid).len(), 5);
    assert!(run_actions(&ws.plan()).is_empty());

    ws.run(&["destroy", "--auto-approve"]);
    assert_eq!(ls.project(PROJECT), None);
}

#[test]
fn personal_access_token() {
    let dir = tempfile::tempdir().unwrap();
    let ls = LabelStudio::start(dir.path());
    // A personal access token is a JWT refresh token; the client trades it for access tokens.
    let pat = ls.post("/api/token/", &json!({}))["token"]
        .as_str()
        .expect("a personal access token")
        .to_string();
    let mut ws = Ws::new(dir, &ls, "");
    ws.token = pat;
    ws.run(&["apply", "--auto-approve"]);
    let pid = ls.project(PROJECT).expect("project");
    assert_eq!(ls.tasks(pid).len(), 5);
    assert!(run_actions(&ws.plan()).is_empty());
    assert!(
        // The status follows the request line (`"POST /api/... HTTP/1.1" 401 <size>`): a
        // timestamp or size holding 401 is not a refusal.
        !ls.logged("POST").iter().any(|l| l.contains("\" 401 ")),
        "no request was refused"
    );
    assert!(
        ls.logged("POST")
            .iter()
            .any(|l| l.contains("/api/token/refresh/")),
        "the token was exchanged"
    );
    ws.run(&["destroy", "--auto-approve"]);
    assert_eq!(ls.project(PROJECT), None);
}
