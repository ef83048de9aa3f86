//! Custom backends: an executable named in annoform.toml (`[backends.<name>] command = [...]`)
//! that speaks JSON lines on stdin/stdout — the Terraform-provider model, so teams add tools
//! without forking annoform.
//!
//! The protocol (JSON lines, one request and one answer per line) is documented for
//! backend authors in `docs/custom-backend.md`.

use super::*;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// A `download` answer.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DownloadPage {
    annotations: Annotations,
    #[serde(default)]
    cursor: Option<String>,
    /// Every sample the task holds, handed or not (optional).
    #[serde(default)]
    samples: Option<Vec<String>>,
}

/// A running custom backend program.
pub struct CustomBackend {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
    capabilities: Capabilities,
}

impl CustomBackend {
    /// Start `command` and ask for its capabilities.
    pub fn start(
        name: &str,
        command: &[String],
        settings: &serde_json::Map<String, Value>,
    ) -> Result<Self, BackendError> {
        let err = |message: String| BackendError::new(name, message);
        let (program, args) = command
            .split_first()
            .ok_or_else(|| err("`command` is empty".into()))?;
        let mut child = Command::new(program)
            .args(args)
            .env(
                "ANNOFORM_BACKEND_SETTINGS",
                Value::Object(settings.clone()).to_string(),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| err(format!("cannot start `{program}`: {e}")))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or_else(|| err("no stdout".into()))?;
        let mut backend = CustomBackend {
            name: name.to_string(),
            child,
            stdin,
            stdout: BufReader::new(stdout),
            next_id: 0,
            capabilities: super::capabilities::CUSTOM.clone(),
        };
        backend.capabilities = backend.call("capabilities", json!({}))?;
        Ok(backend)
    }

    fn error(&self, message: String) -> BackendError {
        BackendError::new(&self.name, message)
    }

    fn call<T: DeserializeOwned>(
        &mut self,
        method: &str,
        params: Value,
    ) -> Result<T, BackendError> {
        self.next_id += 1;
        let id = self.next_id;
        let line = json!({"id": id, "method": method, "params": params}).to_string();
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| BackendError::new(&self.name, "closed"))?;
        if let Err(e) = writeln!(stdin, "{line}").and_then(|()| stdin.flush()) {
            return Err(self.error(format!(
                "{method}: the program stopped accepting requests ({e})"
            )));
        }
        let mut reply = String::new();
        match self.stdout.read_line(&mut reply) {
            Ok(0) => {
                return Err(self.error(format!("{method}: the program exited without answering")));
            }
            Ok(_) => {}
            Err(e) => return Err(self.error(format!("{method}: cannot read the answer: {e}"))),
        }
        let reply: Value = serde_json::from_str(&reply).map_err(|e| {
            self.error(format!(
                "{method}: the answer is not JSON ({e}): {}",
                trim(&reply)
            ))
        })?;
        if reply.get("id").and_then(Value::as_u64) != Some(id) {
            return Err(self.error(format!(
                "{method}: answer for another request: {}",
                trim(&reply.to_string())
            )));
        }
        if let Some(e) = reply.get("error") {
            let msg = e
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("unknown error");
            // The program says whether trying again can help; otherwise it refused the request.
            let cause = if e.get("transient").and_then(Value::as_bool) == Some(true) {
                Cause::Transient
            } else {
                Cause::Refused
            };
            return Err(self.error(format!("{method}: {msg}")).because(cause));
        }
        let result = reply.get("result").cloned().unwrap_or(Value::Null);
        serde_json::from_value(result.clone()).map_err(|e| {
            self.error(format!(
                "{method}: unexpected answer ({e}): {}",
                trim(&result.to_string())
            ))
        })
    }
}

fn trim(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

impl Drop for CustomBackend {
    fn drop(&mut self) {
        // Closing stdin tells the program to finish; then reap it.
        self.stdin.take();
        let _ = self.child.wait();
    }
}

impl Backend for CustomBackend {
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    fn find_project(&mut self, name: &str) -> Result<Option<RemoteProject>, BackendError> {
        self.call("find_project", json!({ "name": name }))
    }

    fn create_project(&mut self, spec: &ProjectSpec) -> Result<RemoteProject, BackendError> {
        self.call("create_project", json!(spec))
    }

    fn list_tasks(&mut self, project: &RemoteProject) -> Result<Vec<RemoteTask>, BackendError> {
        self.call("list_tasks", json!({ "project": project }))
    }

    fn create_task(
        &mut self,
        project: &RemoteProject,
        task: &TaskSpec,
    ) -> Result<RemoteTask, BackendError> {
        self.call("create_task", json!({ "project": project, "task": task }))
    }

    fn upload_labels(
        &mut self,
        project: &RemoteProject,
        task: &RemoteTask,
        labels: &TaskSpec,
    ) -> Result<(), BackendError> {
        self.call::<Value>(
            "upload_labels",
            json!({ "project": project, "task": task, "labels": labels }),
        )
        .map(|_| ())
    }

    fn update_schema(
        &mut self,
        project: &RemoteProject,
        schema: &ResolvedSchema,
    ) -> Result<(), BackendError> {
        self.call::<Value>(
            "update_schema",
            json!({ "project": project, "schema": schema }),
        )
        .map(|_| ())
    }

    fn status(
        &mut self,
        project: &RemoteProject,
        tasks: &[String],
    ) -> Result<Vec<TaskStatus>, BackendError> {
        self.call("status", json!({ "project": project, "tasks": tasks }))
    }

    fn download(
        &mut self,
        project: &RemoteProject,
        tasks: &[String],
        since: Option<&str>,
        sink: &mut PageSink<'_>,
    ) -> Result<Downloaded, BackendError> {
        // One call per task: each answer is a page. The first call's cursor is the earliest,
        // so nothing changed during the later calls can be missed by the next refresh.
        let mut first = None;
        // What the tasks hold, when every answer says it.
        let mut held = Some(std::collections::HashSet::new());
        for (i, task) in tasks.iter().enumerate() {
            let params = json!({ "project": project, "tasks": [task], "since": since });
            let page: DownloadPage = self.call("download", params)?;
            if i == 0 {
                first = page.cursor;
            }
            match (&mut held, page.samples) {
                (Some(h), Some(samples)) => {
                    if let Some(s) = page.annotations.keys().find(|s| !samples.contains(s)) {
                        return Err(self.error(format!(
                            "download of task {task}: sample {s} is handed but not among the task's `samples`"
                        )));
                    }
                    h.extend(samples);
                }
                (h, _) => *h = None,
            }
            sink(page.annotations)?;
        }
        Ok(Downloaded {
            cursor: first,
            held,
            strays: Vec::new(),
        })
    }

    fn delete_project(&mut self, project: &RemoteProject) -> Result<(), BackendError> {
        self.call::<Value>("delete_project", json!({ "project": project }))
            .map(|_| ())
    }
}
