//! The CVAT backend end to end: the real CLI against the in-repo fake CVAT (built from the
//! 2.23.1 recording), in a hermetic environment. Annotators' edits are made over the fake's
//! HTTP API, as CVAT's UI would make them.

#[path = "../cvat_fake/mod.rs"]
mod cvat_fake;
#[path = "../support/fs.rs"]
mod fs;

#[path = "../support/faultproxy.rs"]
mod faultproxy;
#[path = "../support/faultsuite.rs"]
mod faultsuite;

mod acceptance;
mod adoption;
mod faults;
mod import;
mod kills;
mod matrix;
mod params;
mod refresh;
mod schema;
mod trials;
mod unexpected;
mod video;
mod video_drift;
mod video_keyframes;
mod video_kills;
mod video_run;
mod video_shared;

use cvat_fake::{ADMIN_PASSWORD, ADMIN_USERNAME, FakeCvat};
use fs::copy_dir;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fake CVAT and a client talking to it as the UI would.
struct Cvat {
    fake: FakeCvat,
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    key: String,
}

impl Cvat {
    fn start() -> Cvat {
        let fake = FakeCvat::start();
        let key = fake.admin_key();
        Cvat {
            fake,
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            http: reqwest::Client::new(),
            key,
        }
    }

    fn url(&self) -> &str {
        self.fake.base_url()
    }

    fn request(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.rt.block_on(async {
            let mut r = self
                .http
                .request(method, format!("{}{path}", self.url()))
                .header("Authorization", format!("Token {}", self.key));
            if let Some(b) = body {
                r = r.json(b);
            }
            let resp = r.send().await.expect("request to the fake CVAT");
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap_or_default();
            (status, serde_json::from_str(&text).unwrap_or(Value::Null))
        })
    }

    fn get(&self, path: &str) -> Value {
        let (status, v) = self.request(reqwest::Method::GET, path, None);
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }

    fn send(&self, method: reqwest::Method, path: &str, body: &Value) -> Value {
        let (status, v) = self.request(method.clone(), path, Some(body));
        assert!(status < 300, "{method} {path}: {status} {v}");
        v
    }

    fn delete(&self, path: &str) {
        let (status, v) = self.request(reqwest::Method::DELETE, path, None);
        assert_eq!(status, 204, "DELETE {path}: {v}");
    }

    /// Registers a user (as the recording did) and returns its id.
    fn register(&self, username: &str) -> u64 {
        let (status, v) = self.request(
            reqwest::Method::POST,
            "/api/auth/register",
            Some(
                &json!({"username": username, "email": format!("{username}@example.com"),
                "password1": cvat_fake::ANNOTATOR_PASSWORD, "password2": cvat_fake::ANNOTATOR_PASSWORD,
                "first_name": "Anno", "last_name": "Tator"}),
            ),
        );
        assert_eq!(status, 201, "{v}");
        self.get(&format!("/api/users?username={username}"))["results"][0]["id"]
            .as_u64()
            .unwrap()
    }

    fn results(&self, path: &str) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        self.get(&format!("{path}{sep}page_size=all"))["results"]
            .as_array()
            .unwrap()
            .clone()
    }

    fn projects(&self) -> Vec<Value> {
        self.results("/api/projects")
    }

    fn project(&self, name: &str) -> Option<u64> {
        self.projects()
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["id"].as_u64())
    }

    /// Tasks of a project, oldest first.
    fn tasks(&self, project: u64) -> Vec<Value> {
        self.results(&format!("/api/tasks?project_id={project}&sort=id"))
    }

    fn jobs(&self, task: u64) -> Vec<Value> {
        self.results(&format!("/api/jobs?task_id={task}&sort=id"))
    }

    /// Label id by name, and attribute spec ids by name, of a project.
    fn labels(&self, project: u64) -> Vec<Value> {
        self.results(&format!("/api/labels?project_id={project}"))
    }

    fn label(&self, project: u64, name: &str) -> Value {
        self.labels(project)
            .into_iter()
            .find(|l| l["name"] == name)
            .unwrap_or_else(|| panic!("no label {name}"))
    }

    fn annotations(&self, task: u64) -> Value {
        self.get(&format!("/api/tasks/{task}/annotations"))
    }

    /// `PATCH /api/tasks/{task}/annotations?action=...` with shapes and tags, as the UI saves.
    fn edit(&self, task: u64, action: &str, shapes: Vec<Value>, tags: Vec<Value>) -> Value {
        self.send(
            reqwest::Method::PATCH,
            &format!("/api/tasks/{task}/annotations?action={action}"),
            &json!({"version": 0, "tags": tags, "shapes": shapes, "tracks": []}),
        )
    }

    /// The frame of a task that shows `sample_id`.
    fn frame_of(&self, task: u64, sample_id: &str) -> u64 {
        let meta = self.get(&format!("/api/tasks/{task}/data/meta"));
        meta["frames"]
            .as_array()
            .unwrap()
            .iter()
            .position(|f| f["name"].as_str().unwrap().starts_with(sample_id))
            .unwrap_or_else(|| panic!("no frame of {sample_id} in task {task}")) as u64
    }

    /// The shape carrying our label id (in its `label_id` attribute).
    fn shape_of(&self, task: u64, project: u64, label_id: &str) -> Value {
        let ann = self.annotations(task);
        let labels = self.labels(project);
        ann["shapes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| {
                let l = labels.iter().find(|l| l["id"] == s["label_id"]).unwrap();
                let spec = spec_id(l, "label_id");
                s["attributes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| a["spec_id"] == spec && a["value"] == label_id)
            })
            .cloned()
            .unwrap_or_else(|| panic!("no shape of {label_id}"))
    }

    /// A task made by hand in `project` with these files (name, bytes), as the UI makes one.
    fn make_task(&self, project: u64, name: &str, files: &[(String, Vec<u8>)]) -> u64 {
        let t = self.send(
            reqwest::Method::POST,
            "/api/tasks",
            &json!({"name": name, "project_id": project}),
        );
        let tid = t["id"].as_u64().unwrap();
        let rq = self.rt.block_on(async {
            let mut form = reqwest::multipart::Form::new()
                .text("image_quality", "75")
                .text("sorting_method", "predefined");
            for (n, _) in files {
                form = form.text("upload_file_order", n.clone());
            }
            for (i, (n, b)) in files.iter().enumerate() {
                form = form.part(
                    format!("client_files[{i}]"),
                    reqwest::multipart::Part::bytes(b.clone()).file_name(n.clone()),
                );
            }
            let resp = self
                .http
                .post(format!("{}/api/tasks/{tid}/data", self.url()))
                .header("Authorization", format!("Token {}", self.key))
                .multipart(form)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 202);
            let v: Value = resp.json().await.unwrap();
            v["rq_id"].as_str().unwrap().to_string()
        });
        for _ in 0..100 {
            if self.get(&format!("/api/requests/{rq}"))["status"] == "finished" {
                return tid;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("task {tid} was not processed");
    }

    /// Move the project's `updated_date` (as any annotation write or task change does), so
    /// the next plan refreshes instead of answering "unchanged" from the project alone.
    fn touch_project(&self, project: u64) {
        self.send(
            reqwest::Method::PATCH,
            &format!("/api/projects/{project}"),
            &json!({}),
        );
    }

    /// Accept every job of a task, as a reviewer would.
    fn complete(&self, task: u64) {
        for j in self.jobs(task) {
            self.send(
                reqwest::Method::PATCH,
                &format!("/api/jobs/{}", j["id"]),
                &json!({"stage": "acceptance", "state": "completed"}),
            );
        }
    }
}

/// The attribute `name` of a label (JSON from /api/labels).
fn spec_id(label: &Value, name: &str) -> u64 {
    label["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .and_then(|a| a["id"].as_u64())
        .unwrap_or_else(|| panic!("no attribute {name} in {label}"))
}

/// A workspace with a dataset copy and a CVAT backend.
struct Ws {
    dir: tempfile::TempDir,
    password: String,
    dataset: String,
}

impl Ws {
    /// A workspace over `dataset` (a directory of the repository) with extra backend settings.
    fn new(cvat: &Cvat, dataset: &str, extra_settings: &str) -> Ws {
        let ws = Ws {
            dir: tempfile::tempdir().unwrap(),
            password: ADMIN_PASSWORD.to_string(),
            dataset: "datasets/ds".into(),
        };
        copy_dir(&repo().join(dataset), &ws.path().join("datasets/ds"));
        std::fs::create_dir_all(ws.path().join("home")).unwrap();
        std::fs::create_dir_all(ws.path().join("manifests")).unwrap();
        std::fs::write(
            ws.path().join("annoform.toml"),
            format!(
                "default_backend = \"cvat\"\n[datasets.ds]\npath = \"datasets/ds\"\n[backends.cvat]\nurl = \"{}\"\nusername = \"${{env:CVAT_USER}}\"\npassword = \"${{env:CVAT_PASS}}\"\n{extra_settings}",
                cvat.url()
            ),
        )
        .unwrap();
        ws
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn manifest(&self, file: &str, text: &str) {
        std::fs::write(self.path().join("manifests").join(file), text).unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_annoform"));
        c.env_clear()
            .env("HOME", self.path().join("home"))
            .env("NO_COLOR", "1")
            .env("COLUMNS", "100")
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CVAT_USER", ADMIN_USERNAME)
            .env("CVAT_PASS", &self.password)
            .arg("-C")
            .arg(self.path())
            .args(args);
        c
    }

    /// Runs annoform: (success, stdout, stderr); the password never shows.
    fn try_run(&self, args: &[&str]) -> (bool, String, String) {
        let out = self.command(args).output().expect("run annoform");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !stdout.contains(&self.password) && !stderr.contains(&self.password),
            "the password leaked:\n{stdout}\n{stderr}"
        );
        (out.status.success(), stdout, stderr)
    }

    fn run(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.try_run(args);
        assert!(
            ok,
            "annoform {args:?} failed:\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        stdout
    }

    fn plan(&self) -> Value {
        serde_json::from_str(&self.run(&["plan", "--json"])).expect("plan JSON")
    }

    fn apply(&self) {
        self.run(&["apply", "--auto-approve"]);
    }

    fn samples(&self) -> Vec<Value> {
        let text =
            std::fs::read_to_string(self.path().join(&self.dataset).join("samples.json")).unwrap();
        serde_json::from_str::<Value>(&text).unwrap()["samples"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// The run record of `key`.
    fn record(&self, key: &str) -> Value {
        let text =
            std::fs::read_to_string(self.path().join(format!(".annoform/state/ds/{key}.json")))
                .unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

fn actions(plan: &Value) -> Vec<String> {
    plan["runs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["actions"].as_array().unwrap().iter())
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// (added, edited, deleted, rejected, unchanged) of a field in the first run of a plan.
fn counts(plan: &Value, field: &str) -> [u64; 5] {
    let c = &plan["runs"][0]["fields"][field];
    ["added", "edited", "deleted", "rejected", "unchanged"].map(|k| c[k].as_u64().unwrap_or(0))
}

fn oid(v: &Value) -> &str {
    v["_id"]["$oid"].as_str().unwrap()
}
