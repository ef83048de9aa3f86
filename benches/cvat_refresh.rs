//! CVAT refresh figures against the in-repo fake CVAT (which moves `updated_date` as CVAT
//! 2.23.1 does): the requests and wall time of the real CLI for a run of a few hundred
//! one-sample tasks, each created with a box of its own.
//!
//! Rows: the create (`apply`); the first refresh after it with nothing edited (`plan`); the
//! same refresh without a cursor (every task downloaded, what CVAT runs did before the cursor,
//! and what a run without one still does); a `plan` after one annotator's edit; the `apply` of
//! that merge; and the no-op `plan` after it. Requests are counted by the fake (logins
//! included: one per process); times are medians of three (`plan` changes nothing, so it
//! repeats), each a whole CLI process, dataset load included.
//!
//! Run: `cargo bench --bench cvat_refresh` (`ANNOFORM_BENCH_TASKS` sets the task count,
//! 300 by default).

#[path = "../tests/cvat_fake/mod.rs"]
#[allow(unused_imports)]
mod cvat_fake;

mod support;

use cvat_fake::{ADMIN_PASSWORD, ADMIN_USERNAME, FakeCvat};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{Lcg, median};

/// Tasks in the run: `ANNOFORM_BENCH_TASKS`, else 300.
fn task_count() -> usize {
    std::env::var("ANNOFORM_BENCH_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

/// A dataset of `n` samples sharing one small PNG, each with one box in `ground_truth`.
fn dataset(dir: &Path, n: usize) {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let png = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/quickstart/data/img0.png");
    std::fs::copy(png, data.join("img.png")).unwrap();
    let fields = vec![
        annoform::dataset::fields::FieldType::Label("Detections".into()).field_doc("ground_truth"),
    ];
    let meta = json!({"name": "bench", "version": "1.22.1", "media_type": "image",
        "sample_fields": fields, "frame_fields": [], "classes": {}, "default_classes": [],
        "annotation_runs": {}});
    std::fs::write(dir.join("metadata.json"), meta.to_string()).unwrap();
    let mut rng = Lcg(7);
    let samples: Vec<Value> = (0..n as u64)
        .map(|i| {
            let oid = |kind: &[u8]| {
                annoform::dataset::ejson::ObjectId::derive(&[kind, &i.to_be_bytes()]).to_ejson()
            };
            json!({"_id": oid(b"sample"), "filepath": "data/img.png", "tags": [],
                "_media_type": "image",
                "ground_truth": {"_cls": "Detections", "detections": [{"_id": oid(b"label"),
                    "_cls": "Detection", "attributes": {}, "tags": [], "label": "car",
                    "bounding_box": [rng.f() * 0.5, rng.f() * 0.5, 0.2, 0.2]}]}})
        })
        .collect();
    std::fs::write(
        dir.join("samples.json"),
        json!({ "samples": samples }).to_string(),
    )
    .unwrap();
}

/// The workspace: annoform.toml, the run's manifest and the dataset.
fn workspace(dir: &Path, url: &str, n: usize) {
    dataset(&dir.join("datasets/ds"), n);
    std::fs::create_dir_all(dir.join("manifests")).unwrap();
    std::fs::create_dir_all(dir.join("home")).unwrap();
    std::fs::write(
        dir.join("annoform.toml"),
        format!(
            "default_backend = \"cvat\"\n[datasets.ds]\npath = \"datasets/ds\"\n[backends.cvat]\nurl = \"{url}\"\nusername = \"${{env:CVAT_USER}}\"\npassword = \"${{env:CVAT_PASS}}\"\ntask_size = 1\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("manifests/run.yaml"),
        "apiVersion: annoform/v1\nkind: AnnotationRun\nkey: boxes\ndataset: ds\nlabel_field: ground_truth\nlabel_type: detections\nclasses: [car, person]\nattributes: false\nload:\n  when: always\n",
    )
    .unwrap();
}

/// Runs the CLI in `dir` once: (wall time, stdout).
fn annoform(dir: &Path, args: &[&str]) -> (Duration, String) {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_annoform"))
        .env_clear()
        .env("HOME", dir.join("home"))
        .env("NO_COLOR", "1")
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CVAT_USER", ADMIN_USERNAME)
        .env("CVAT_PASS", ADMIN_PASSWORD)
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("run annoform");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "annoform {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (took, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One row: requests of the first run, median time of `times` runs, and the plan's actions.
fn row(cvat: &FakeCvat, dir: &Path, what: &str, args: &[&str], times: usize) -> String {
    cvat.take_requests();
    let mut took = Vec::new();
    let mut requests = 0;
    let mut stdout = String::new();
    for i in 0..times {
        let (t, out) = annoform(dir, args);
        took.push(t);
        if i == 0 {
            requests = cvat.take_requests().len();
            stdout = out;
        }
    }
    let actions = serde_json::from_str::<Value>(&stdout)
        .ok()
        .and_then(|p| p["runs"][0]["actions"].as_array().cloned())
        .map(|a| {
            let names: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
            format!("[{}]", names.join(", "))
        })
        .unwrap_or_default();
    println!(
        "{what:<44} {requests:>9} {:>10.2} {actions}",
        median(took).as_secs_f64()
    );
    actions
}

fn main() {
    let n = task_count();
    let cvat = FakeCvat::start();
    let dir = tempfile::tempdir().unwrap();
    workspace(dir.path(), cvat.base_url(), n);
    println!("CVAT refresh against the fake, {n} one-sample tasks (requests include the login)");
    println!("{:<44} {:>9} {:>10} plan", "step", "requests", "seconds");
    row(
        &cvat,
        dir.path(),
        "create (apply)",
        &["apply", "--auto-approve"],
        1,
    );
    // Annotators come to the tasks later than the cursor's margin.
    cvat.advance_clock(Duration::from_secs(600));
    let plan = ["plan", "--json"];
    row(
        &cvat,
        dir.path(),
        "first refresh, nothing edited (plan)",
        &plan,
        3,
    );
    let record = dir.path().join(".annoform/state/ds/boxes.json");
    let kept = std::fs::read_to_string(&record).unwrap();
    let mut doc: Value = serde_json::from_str(&kept).unwrap();
    doc.as_object_mut().unwrap().remove("created_cursor");
    std::fs::write(&record, doc.to_string()).unwrap();
    row(
        &cvat,
        dir.path(),
        "first refresh without a cursor (plan)",
        &plan,
        3,
    );
    std::fs::write(&record, kept).unwrap();

    // One annotator draws a box in the middle task, as the UI saves it.
    let task = cvat_fake_task(&cvat, n / 2);
    edit(&cvat, task);
    row(&cvat, dir.path(), "after one edit (plan)", &plan, 3);
    row(
        &cvat,
        dir.path(),
        "after one edit (apply)",
        &["apply", "--auto-approve"],
        1,
    );
    row(&cvat, dir.path(), "no-op after the merge (plan)", &plan, 3);
}

/// The id of the `i`-th task of the run's project (oldest first).
fn cvat_fake_task(cvat: &FakeCvat, i: usize) -> u64 {
    let tasks = get(cvat, "/api/tasks?page_size=all&sort=id");
    tasks["results"][i]["id"].as_u64().unwrap()
}

/// Draws a box on frame 0 of `task` (`PATCH …/annotations?action=create`).
fn edit(cvat: &FakeCvat, task: u64) {
    let t = get(cvat, &format!("/api/tasks/{task}"));
    let labels = get(
        cvat,
        &format!("/api/labels?project_id={}&page_size=all", t["project_id"]),
    );
    let car = labels["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "car")
        .unwrap()["id"]
        .clone();
    let body = json!({"version": 0, "tags": [], "tracks": [], "shapes": [{"type": "rectangle",
        "frame": 0, "label_id": car, "points": [1.0, 1.0, 6.0, 6.0]}]});
    request(
        cvat,
        reqwest::Method::PATCH,
        &format!("/api/tasks/{task}/annotations?action=create"),
        Some(&body),
    );
}

fn get(cvat: &FakeCvat, path: &str) -> Value {
    request(cvat, reqwest::Method::GET, path, None)
}

fn request(cvat: &FakeCvat, method: reqwest::Method, path: &str, body: Option<&Value>) -> Value {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut r = reqwest::Client::new()
            .request(method, format!("{}{path}", cvat.base_url()))
            .header("Authorization", format!("Token {}", cvat.admin_key()));
        if let Some(b) = body {
            r = r.json(b);
        }
        let resp = r.send().await.unwrap();
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.unwrap()
    })
}
