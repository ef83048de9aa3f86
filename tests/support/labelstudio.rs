//! A throw-away real Label Studio for integration tests (included with `#[path]`): started on
//! a free loopback port through `scripts/labelstudio.sh` (installed into a cached venv on first
//! use) and stopped by its PID file on drop, also when the test panics. A server that cannot be
//! installed or started fails the test: never skipped.

// Each test binary that includes this module uses only part of it.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A running Label Studio.
pub struct LabelStudio {
    pub url: String,
    pub token: String,
    /// The server's directory (data, log, PID file).
    pub state: PathBuf,
    _dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
}

impl LabelStudio {
    /// Start a server whose local-files document root is `media_root`.
    pub fn start(media_root: &Path) -> LabelStudio {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = dir.path().join("ls");
        let out = Command::new(repo().join("scripts/labelstudio.sh"))
            .arg("start")
            .env("LS_STATE_DIR", &state)
            .env("LS_MEDIA_ROOT", media_root)
            .env_remove("LS_PORT")
            .env_remove("LS_TOKEN")
            .output()
            .expect("run scripts/labelstudio.sh");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let var = |k: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(&format!("export {k}=")))
                .map(String::from)
        };
        let ls = LabelStudio {
            url: var("LS_URL").unwrap_or_default(),
            token: var("LS_TOKEN").unwrap_or_default(),
            state,
            _dir: dir,
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            http: reqwest::Client::new(),
        };
        assert!(
            out.status.success() && !ls.url.is_empty() && !ls.token.is_empty(),
            "Label Studio could not be installed or started (scripts/labelstudio.sh start):\nstdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        ls
    }

    /// One API request; the status and the JSON answer (`null` when it is not JSON).
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        self.rt.block_on(async {
            let mut r = self
                .http
                .request(method, format!("{}{path}", self.url))
                .header("Authorization", format!("Token {}", self.token));
            if let Some(b) = body {
                r = r.json(b);
            }
            let resp = r.send().await.expect("request to Label Studio");
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap_or_default();
            (status, serde_json::from_str(&text).unwrap_or(Value::Null))
        })
    }

    pub fn get(&self, path: &str) -> Value {
        let (status, v) = self.request(reqwest::Method::GET, path, None);
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }

    pub fn post(&self, path: &str, body: &Value) -> Value {
        let (status, v) = self.request(reqwest::Method::POST, path, Some(body));
        assert!(status < 300, "POST {path}: {status} {v}");
        v
    }

    /// A project's id, by exact title.
    pub fn project(&self, title: &str) -> Option<u64> {
        self.get("/api/projects?page_size=100")["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["title"] == title)
            .and_then(|p| p["id"].as_u64())
    }

    /// A project's tasks, with their annotations and predictions.
    pub fn tasks(&self, project: u64) -> Vec<Value> {
        self.get(&format!(
            "/api/tasks?project={project}&fields=all&page_size=1000"
        ))["tasks"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// An annotator's submission on `task`: the task's prediction with `edit` applied to its
    /// results.
    pub fn annotate(&self, task: &Value, edit: impl FnOnce(&mut Vec<Value>)) {
        let mut result: Vec<Value> = task["predictions"][0]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        edit(&mut result);
        self.post(
            &format!("/api/tasks/{}/annotations", task["id"]),
            &serde_json::json!({"result": result, "was_cancelled": false, "ground_truth": false}),
        );
    }
}

impl Drop for LabelStudio {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/labelstudio.sh"))
            .arg("stop")
            .env("LS_STATE_DIR", &self.state)
            .status();
    }
}
