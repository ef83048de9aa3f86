//! The V7 Darwin backend end to end: the real CLI against the in-repo fake V7 (built from the
//! shared V7 recipe), in a hermetic environment. Annotators' edits are made over the fake's
//! HTTP API (`items/{id}/annotations`, `items/{id}/import`), as V7's editor saves them.

#[path = "../darwin_fake/mod.rs"]
mod darwin_fake;
#[path = "../support/fs.rs"]
mod fs;

mod acceptance;
mod trials;

use darwin_fake::{API_KEY, FakeDarwin};
use fs::copy_dir;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fake V7 and a client talking to it as V7's editor would.
struct V7 {
    fake: FakeDarwin,
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
}

impl V7 {
    fn start() -> V7 {
        V7 {
            fake: FakeDarwin::start(),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            http: reqwest::Client::new(),
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
                .header("Authorization", format!("ApiKey {API_KEY}"));
            if let Some(b) = body {
                r = r.json(b);
            }
            let resp = r.send().await.expect("request to the fake V7");
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

    /// The live dataset of a slug.
    fn dataset(&self, slug: &str) -> Option<Value> {
        self.get("/api/datasets")
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["slug"] == slug)
            .cloned()
    }

    /// The items of a dataset.
    fn items(&self, slug: &str) -> Vec<Value> {
        let id = self.dataset(slug).expect("dataset")["id"].clone();
        self.get(&format!(
            "/api/v2/teams/team-a/items?dataset_ids[]={id}&page[size]=500"
        ))["items"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// The item of a sample (its path ends with the sample id).
    fn item_of(&self, slug: &str, sample_id: &str) -> Value {
        self.items(slug)
            .into_iter()
            .find(|i| {
                i["path"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!("/{sample_id}"))
            })
            .unwrap_or_else(|| panic!("no item of sample {sample_id}"))
    }

    /// An item's annotations, as the editor loads them.
    fn annotations(&self, item: &str) -> Vec<Value> {
        self.get(&format!("/api/v2/teams/team-a/items/{item}/annotations"))
            .as_array()
            .unwrap()
            .clone()
    }

    /// Saves an item's annotations whole, as the editor does (`overwrite` as a boolean).
    fn save(&self, item: &str, annotations: Vec<Value>) {
        let (status, v) = self.request(
            reqwest::Method::POST,
            &format!("/api/v2/teams/team-a/items/{item}/import"),
            Some(&json!({"annotations": annotations, "overwrite": true})),
        );
        assert_eq!(status, 200, "{v}");
    }

    /// The id of the team class `name` of main type `kind`.
    fn class(&self, name: &str, kind: &str) -> u64 {
        self.get("/api/teams/team-a/annotation_classes")["annotation_classes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name && c["annotation_types"][0] == kind)
            .and_then(|c| c["id"].as_u64())
            .unwrap_or_else(|| panic!("no {kind} class {name}"))
    }
}

/// A workspace with a dataset copy and a `darwin` backend pointing at the fake.
struct Ws {
    dir: tempfile::TempDir,
    key: String,
}

impl Ws {
    fn new(v7: &V7, dataset: &str) -> Ws {
        let ws = Ws {
            dir: tempfile::tempdir().unwrap(),
            key: API_KEY.into(),
        };
        copy_dir(&repo().join(dataset), &ws.path().join("datasets/ds"));
        std::fs::create_dir_all(ws.path().join("home")).unwrap();
        std::fs::create_dir_all(ws.path().join("manifests")).unwrap();
        std::fs::write(
            ws.path().join("annoform.toml"),
            format!(
                "default_backend = \"darwin\"\n[datasets.ds]\npath = \"datasets/ds\"\n[backends.darwin]\nurl = \"{}\"\napi_key = \"${{env:V7_KEY}}\"\n",
                v7.url()
            ),
        )
        .unwrap();
        ws
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A run `key` over one field, in Darwin dataset `slug`, with extra manifest lines.
    fn run_manifest(&self, key: &str, slug: &str, field: &str, extra: &str) {
        std::fs::write(
            self.path().join(format!("manifests/{key}.yaml")),
            format!(
                "apiVersion: annoform/v1\nkind: AnnotationRun\nkey: {key}\ndataset: ds\nbackend: darwin\nbackend_config:\n  dataset_slug: {slug}\n{extra}load:\n  when: always\nlabel_schema:\n  {field}\n"
            ),
        )
        .unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_annoform"));
        c.env_clear()
            .env("HOME", self.path().join("home"))
            .env("NO_COLOR", "1")
            .env("COLUMNS", "100")
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("V7_KEY", &self.key)
            .arg("-C")
            .arg(self.path())
            .args(args);
        c
    }

    /// Runs annoform: (success, stdout, stderr); the API key never shows.
    fn try_run(&self, args: &[&str]) -> (bool, String, String) {
        let out = self.command(args).output().expect("run annoform");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !stdout.contains(&self.key) && !stderr.contains(&self.key),
            "the API key leaked:\n{stdout}\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
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

    fn fail(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.try_run(args);
        assert!(!ok, "annoform {args:?} succeeded:\n{stdout}");
        stderr
    }

    fn plan(&self) -> Value {
        serde_json::from_str(&self.run(&["plan", "--json"])).expect("plan JSON")
    }

    fn apply(&self) {
        self.run(&["apply", "--auto-approve"]);
    }

    fn samples_text(&self) -> String {
        std::fs::read_to_string(self.path().join("datasets/ds/samples.json")).unwrap()
    }

    fn samples(&self) -> Vec<Value> {
        serde_json::from_str::<Value>(&self.samples_text()).unwrap()["samples"]
            .as_array()
            .unwrap()
            .clone()
    }

    fn record(&self, key: &str) -> Option<Value> {
        let text =
            std::fs::read_to_string(self.path().join(format!(".annoform/state/ds/{key}.json")))
                .ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// The run entries of a plan, by key.
fn run_of<'a>(plan: &'a Value, key: &str) -> &'a Value {
    plan["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == key)
        .unwrap_or_else(|| panic!("no run {key} in {plan}"))
}

fn actions(plan: &Value, key: &str) -> Vec<String> {
    run_of(plan, key)["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// (upload, added, edited, deleted, rejected, unchanged) of a field of run `key`.
fn counts(plan: &Value, key: &str, field: &str) -> [u64; 6] {
    let c = &run_of(plan, key)["fields"][field];
    [
        "upload",
        "added",
        "edited",
        "deleted",
        "rejected",
        "unchanged",
    ]
    .map(|k| c[k].as_u64().unwrap_or(0))
}

fn oid(v: &Value) -> &str {
    v["_id"]["$oid"].as_str().unwrap()
}

fn sid(s: &Value) -> &str {
    oid(s)
}
