//! The CVAT client (REST API v2, as CVAT 2.23.1 answered in `recipes/cvat.md`).
//!
//! Mapping. A run is a project (found by name, created, or an existing `project_id`); a batch
//! is a CVAT task named after it, whose frames are the batch's samples in order
//! (`sorting_method=predefined` + `upload_file_order`). Each file goes up as
//! `<sample id>_<file name>`, so a task's frames map back to samples without local state.
//!
//! What downloads need (the resolved schema, the run's non-secret settings, the frames of
//! imported tasks) comes from the run's record through `attach`; the server holds nothing of
//! annoform's but task names, the hidden `label_id` attributes and, in the bug tracker field
//! of a project annoform made, the identity of the run it was made for. Label ids are read with
//! one `GET /api/labels` per project and process, and labels a run needs but the project
//! lacks (a project reused by name, a schema grown in place) are added before tasks go up.
//!
//! Auth: `api_key` (`Authorization: Token`), else `username`/`password` traded for a token
//! at `POST /api/auth/login`. Extra `headers` and `organization` (`X-Organization`) go with
//! every request. Secrets only ever appear redacted.

use super::convert::{self, Annotations as CvatAnnotations};
use super::cursor::{self, Cursor};
use super::labels::{self, LabelMap, LabelSpec};
use super::pages::{self, Page};
use super::video::frames::FrameRange;
use crate::backend::base::{self, HttpBackend};
use crate::backend::capabilities::CvatConfig;
use crate::backend::http::{HttpClient, HttpError, HttpPolicy, answered_without};
use crate::backend::settings::{Settings, SettingsError};
use crate::backend::*;
use crate::manifest::{AttributeType, LabelType};
use crate::schema::ResolvedAttribute;
use reqwest::Method;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

mod video_tasks;

/// Files per upload request; larger batches go up as the SDK sends them (Upload-Start,
/// Upload-Multiple per group, Upload-Finish), so no single request grows with the batch.
const UPLOAD_FILES: usize = 16;
/// Bytes per upload request (a group holds at least one file).
const UPLOAD_BYTES: usize = 32 << 20;
/// How long a background request (media processing) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// What annoform knows about a project, from the run's record (`attach`) or from creating it.
/// Nothing of it is stored on the server.
#[derive(Debug, Clone, Default)]
struct Meta {
    schema: ResolvedSchema,
    /// Non-secret settings of the run, typed.
    settings: CvatConfig,
    /// Whether annoform created the project (otherwise it was given as `project_id`).
    created: bool,
    /// Task id → the sample of each frame, in upload order, for frames not named after
    /// their sample (tasks made outside annoform and imported).
    frames: IndexMap<String, Vec<String>>,
}

impl Meta {
    /// The metadata of a run with these settings (workspace defaults first).
    fn new(
        schema: &ResolvedSchema,
        defaults: &serde_json::Map<String, Value>,
        settings: &serde_json::Map<String, Value>,
    ) -> Result<Meta, SettingsError> {
        let settings = CvatConfig::overlaid(defaults, settings)?;
        Ok(Meta {
            schema: effective_schema(schema, &settings),
            created: settings.creates_project(),
            settings,
            frames: IndexMap::new(),
        })
    }
}

/// A task made outside annoform, as `annoform import` finds it.
#[derive(Debug, Clone)]
pub struct ForeignTask {
    pub id: u64,
    pub name: String,
    pub project: Option<u64>,
    /// File names of its frames, in frame order.
    pub frames: Vec<String>,
}

/// A project as this client knows it.
#[derive(Debug, Clone)]
struct ProjectInfo {
    meta: Meta,
    map: LabelMap,
}

/// Connection settings of a CVAT server (secrets already resolved).
#[derive(Debug, Clone, Default)]
pub struct Connection {
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Sent with the username and password at login, as FiftyOne sends it.
    pub email: Option<String>,
    pub api_key: Option<String>,
    pub headers: Vec<(String, String)>,
    pub organization: Option<String>,
}

/// A CVAT server.
pub struct CvatBackend {
    http: HttpClient,
    rt: tokio::runtime::Runtime,
    /// Workspace settings (non-secret), the fallback for projects without metadata.
    defaults: serde_json::Map<String, Value>,
    projects: HashMap<String, ProjectInfo>,
    /// What runs' records say about projects not read from the server yet.
    attached: HashMap<String, Meta>,
    users: HashMap<String, u64>,
    /// Task id → the latest `updated_date` of its jobs right after annoform's own last write
    /// to it in this process (tasks it created here): a later date is someone else's edit.
    stamps: HashMap<String, String>,
    /// Video task id → the tracks the server made of the labels uploaded in this process,
    /// until the record takes them (`task_notes`).
    uploads: HashMap<String, Vec<super::video::task::TrackRecord>>,
    /// Video task id → what the run's record keeps of it (or why it cannot be read).
    videos: HashMap<String, Result<super::video::task::VideoNotes, String>>,
}

/// Integer id of a JSON object.
fn id_of(v: &Value) -> Option<u64> {
    v.get("id").and_then(Value::as_u64)
}

/// The schema as CVAT labels it: `occluded_attr`/`group_id_attr` become attributes of that
/// type on every object field (FiftyOne's meaning of the two settings).
pub fn effective_schema(schema: &ResolvedSchema, settings: &CvatConfig) -> ResolvedSchema {
    let mut out = schema.clone();
    for (name, t) in [
        (&settings.occluded_attr, AttributeType::Occluded),
        (&settings.group_id_attr, AttributeType::GroupId),
    ] {
        let Some(name) = name.as_deref() else {
            continue;
        };
        for f in out.fields.values_mut() {
            // As in FiftyOne, only fields without an attribute of that kind of their own (given
            // or inferred, such as a boolean `occluded`) get one.
            if matches!(
                f.label_type,
                LabelType::Classification | LabelType::Classifications | LabelType::Scalar
            ) || f
                .attributes
                .iter()
                .any(|(n, a)| a.attr_type == t && n != name)
            {
                continue;
            }
            let read_only = f.attributes.get(name).is_some_and(|a| a.read_only);
            f.attributes.insert(
                name.to_string(),
                ResolvedAttribute {
                    attr_type: t,
                    values: Vec::new(),
                    default: None,
                    read_only,
                    mutable: true,
                },
            );
        }
    }
    out
}

/// The sample id of a frame uploaded as `<sample id>_<name>`.
fn sample_of_frame(name: &str) -> Option<&str> {
    let (sid, _) = name.split_at_checked(24)?;
    (sid.bytes().all(|b| b.is_ascii_hexdigit()) && name[24..].starts_with('_')).then_some(sid)
}

/// What a task's bug tracker holds when no `issue_tracker` is set: our name, which survives
/// a rename in CVAT's UI.
const TRACKER_SCHEME: &str = "annoform://";

/// annoform's name of a task: from its bug tracker, else its name.
fn our_task_name(t: &pages::Task) -> &str {
    let tracked = t
        .bug_tracker
        .as_deref()
        .and_then(|b| b.strip_prefix(TRACKER_SCHEME))
        .filter(|n| !n.is_empty());
    tracked.unwrap_or_else(|| our_name(&t.name))
}

/// annoform's name of a task by its CVAT name: all of it, or with `task_name` set, the
/// part in the trailing brackets of `<task_name> [<our name>]`.
fn our_name(cvat_name: &str) -> &str {
    cvat_name
        .strip_suffix(']')
        .and_then(|n| n.rsplit_once(" ["))
        .map_or(cvat_name, |(_, ours)| ours)
}

/// Media CVAT takes as a video (one per task).
const VIDEO_EXTENSIONS: [&str; 6] = ["mp4", "m4v", "mov", "avi", "mkv", "webm"];

/// Whether a file (by its name) is a video.
fn is_video(media: &str) -> bool {
    std::path::Path::new(media)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| VIDEO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The frames a task's video holds (`frame_start`/`frame_stop`/`frame_step` for the video at
/// the task's position); `None` for a task of images. A video is alone in its task.
fn video_range(task: &TaskSpec, s: &CvatConfig) -> Result<Option<FrameRange>, String> {
    let videos = task.samples.iter().filter(|t| is_video(&t.media)).count();
    match (videos, task.samples.as_slice()) {
        (0, _) => Ok(None),
        (1, [sample]) => FrameRange::of(s, task.batch as usize, &sample.media)
            .map(Some)
            .map_err(|e| format!("video {}: {e}", sample.media)),
        _ => Err(format!(
            "task `{}`: CVAT takes one video per task, and this one would hold {} sample(s)",
            task.name,
            task.samples.len()
        )),
    }
}

/// The file name a sample's media is uploaded as.
fn upload_name(sample_id: &str, media: &str) -> String {
    let base = std::path::Path::new(media)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("image");
    format!("{sample_id}_{base}")
}

impl CvatBackend {
    /// A client for the server `conn.url`, logged in (a wrong login fails here).
    pub fn new(
        name: &str,
        conn: &Connection,
        defaults: serde_json::Map<String, Value>,
        policy: HttpPolicy,
    ) -> Result<Self, BackendError> {
        let err = |message: String| BackendError::new(name, message);
        let mut secrets: Vec<String> = Vec::new();
        secrets.extend(conn.password.clone());
        secrets.extend(conn.email.clone());
        secrets.extend(conn.api_key.clone());
        secrets.extend(conn.headers.iter().map(|(_, v)| v.clone()));
        let mut http =
            HttpClient::new(name, &conn.url, policy, secrets).map_err(|e| err(e.to_string()))?;
        http = http
            .with_header("Accept", "application/vnd.cvat+json; version=2.0", false)
            .map_err(|e| err(e.to_string()))?;
        for (k, v) in &conn.headers {
            http = http
                .with_header(k, v, true)
                .map_err(|e| err(e.to_string()))?;
        }
        if let Some(org) = conn.organization.as_deref().filter(|o| !o.is_empty()) {
            http = http
                .with_header("X-Organization", org, false)
                .map_err(|e| err(e.to_string()))?;
        }
        let rt = base::runtime(name)?;
        let key = match (&conn.api_key, &conn.username, &conn.password) {
            (Some(k), _, _) if !k.is_empty() => k.clone(),
            (_, Some(u), Some(p)) if !u.is_empty() && !p.is_empty() => {
                let mut body = json!({"username": u, "password": p});
                if let Some(email) = conn.email.as_deref().filter(|e| !e.is_empty()) {
                    body["email"] = json!(email);
                }
                let got: Result<Value, HttpError> =
                    rt.block_on(http.post_json("/api/auth/login", &body));
                match got {
                    Ok(v) => v
                        .get("key")
                        .and_then(Value::as_str)
                        .map(String::from)
                        .ok_or_else(|| {
                            err(format!(
                                "{}: POST /api/auth/login answered without a token",
                                conn.url
                            ))
                        })?,
                    Err(HttpError::Status { status, body, .. })
                        if status == StatusCode::BAD_REQUEST
                            || status == StatusCode::UNAUTHORIZED =>
                    {
                        let why = serde_json::from_str::<Value>(&body)
                            .ok()
                            .and_then(|v| error_text(&v))
                            .unwrap_or(body);
                        return Err(err(http.redact(&format!(
                            "the CVAT server at {} refused the login (HTTP {}: {why}): check the \
                             username and password (ANNOFORM_CVAT_USERNAME / \
                             ANNOFORM_CVAT_PASSWORD, or `username`/`password` = \"${{env:NAME}}\" \
                             under [backends.{name}])",
                            conn.url,
                            status.as_u16()
                        ))));
                    }
                    Err(e) => return Err(err(explain(&http, e))),
                }
            }
            _ => {
                let empty: Vec<String> = [
                    ("api_key", &conn.api_key),
                    ("username", &conn.username),
                    ("password", &conn.password),
                ]
                .iter()
                .filter(|(_, v)| v.as_deref() == Some(""))
                .map(|(k, _)| format!("`{k}`"))
                .collect();
                let why = match empty.as_slice() {
                    [] => "no credentials".to_string(),
                    e => format!("no usable credentials ({} set but empty)", e.join(", ")),
                };
                return Err(err(format!(
                    "{why}: set ANNOFORM_CVAT_API_KEY, or ANNOFORM_CVAT_USERNAME and \
                     ANNOFORM_CVAT_PASSWORD (or `${{env:NAME}}` references in annoform.toml)"
                )));
            }
        };
        let http = http
            .with_header("Authorization", &format!("Token {key}"), true)
            .map_err(|e| err(e.to_string()))?;
        if conn.api_key.as_deref().is_some_and(|k| !k.is_empty()) {
            // A token is only tried by the first real request: check it (and that this is
            // a CVAT server) now, where the error can say what to fix.
            rt.block_on(http.get_json::<Value>("/api/users/self"))
                .map_err(|e| err(explain(&http, e)))?;
        }
        Ok(CvatBackend {
            http,
            rt,
            defaults,
            projects: HashMap::new(),
            attached: HashMap::new(),
            users: HashMap::new(),
            stamps: HashMap::new(),
            uploads: HashMap::new(),
            videos: HashMap::new(),
        })
    }

    /// A project as the backend trait shows it.
    fn remote_project(&self, p: &pages::Project) -> RemoteProject {
        RemoteProject {
            id: p.id.to_string(),
            name: p.name.clone(),
            url: Some(self.http.url(&format!("/projects/{}", p.id))),
            owner: p.bug_tracker.as_deref().and_then(Owner::find_in),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, HttpError> {
        self.call_as(method, path, query, body).await
    }

    /// A request whose answer decodes straight into `T`.
    async fn call_as<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<T, HttpError> {
        base::call_json(&self.http, method, path, query, body).await
    }

    async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, HttpError> {
        self.call(Method::GET, path, query, None).await
    }

    async fn get_opt(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Option<Value>, HttpError> {
        self.fetch(path, query).await
    }

    /// GET decoded into `T`, 404 mapped to `None`.
    async fn fetch<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Option<T>, HttpError> {
        base::get_opt(&self.http, path, query).await
    }

    /// Every result of a list endpoint (`page_size=all`, following `next` if the server
    /// pages anyway), verified whole: each page holds its `results`, and they add up to the
    /// `count` the first page announces. A short list is an error, never fewer objects (a
    /// task missing from it would be created again).
    async fn list<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<T>, HttpError> {
        let mut q: Vec<(&str, String)> = query.to_vec();
        q.push(("page_size", "all".into()));
        let shown = |page: &str| {
            let query: Vec<String> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{page}?{}", query.join("&"))
        };
        let mut page = shown(path);
        let mut v: Page<T> = self.call_as(Method::GET, path, &q, None).await?;
        let count = v.count;
        let mut out = Vec::new();
        loop {
            let Some(results) = v.results.take() else {
                return Err(self.http.incomplete(
                    &Method::GET,
                    &page,
                    "the answer holds no `results` list",
                ));
            };
            out.extend(results);
            match v.next.take() {
                Some(next) if !next.is_empty() => {
                    page = next;
                    v = self.call_as(Method::GET, &page, &[], None).await?;
                }
                _ => break,
            }
        }
        match count {
            Some(n) if n != out.len() as u64 => Err(self.http.incomplete(
                &Method::GET,
                &shown(path),
                &format!(
                    "the list holds {} object(s) where the server counts {n}",
                    out.len()
                ),
            )),
            _ => Ok(out),
        }
    }

    async fn labels_of(&self, project: &str) -> Result<Vec<LabelSpec>, HttpError> {
        self.list("/api/labels", &[("project_id", project.to_string())])
            .await
    }

    /// The project's metadata and label ids: cached, else read from the server.
    fn project(&mut self, id: &str) -> Result<ProjectInfo, BackendError> {
        if let Some(p) = self.projects.get(id) {
            return Ok(p.clone());
        }
        let meta = self.attached_meta(id)?;
        let labels = self.run(self.labels_of(id))?;
        self.remember(id, meta, labels)
    }

    fn remember(
        &mut self,
        id: &str,
        meta: Meta,
        labels: Vec<LabelSpec>,
    ) -> Result<ProjectInfo, BackendError> {
        let map = LabelMap::new(&meta.schema, &labels)
            .map_err(|e| self.error(format!("project {id}: {e}")))?;
        let info = ProjectInfo { meta, map };
        self.projects.insert(id.to_string(), info.clone());
        Ok(info)
    }

    /// A user's id by exact username.
    async fn user_id(&self, username: &str) -> Result<u64, BackendError> {
        if let Some(id) = self.users.get(username) {
            return Ok(*id);
        }
        let found: Vec<pages::UserBrief> = self
            .list("/api/users", &[("username", username.to_string())])
            .await
            .map_err(|e| self.http_error(e))?;
        found
            .iter()
            .find(|u| u.username == username)
            .and_then(|u| u.id)
            .ok_or_else(|| self.error(format!("there is no CVAT user `{username}`")))
    }

    /// The ids of every username of these settings, resolved once.
    /// What the run's record said about project `id` (see `attach`).
    fn attached_meta(&self, id: &str) -> Result<Meta, BackendError> {
        self.attached.get(id).cloned().ok_or_else(|| {
            self.error(format!(
                "project {id}: no run record describes it (annoform attaches one before use)"
            ))
        })
    }

    fn resolve_users(&mut self, settings: &CvatConfig) -> Result<(), BackendError> {
        let mut names = settings.task_assignees();
        names.extend(settings.job_assignees().iter().cloned());
        for n in names {
            if !self.users.contains_key(&n) {
                let id = self.rt.block_on(self.user_id(&n))?;
                self.users.insert(n, id);
            }
        }
        Ok(())
    }

    /// Waits for a background request to finish.
    async fn wait(&self, rq_id: &str) -> Result<(), BackendError> {
        let start = std::time::Instant::now();
        let mut delay = Duration::from_millis(50);
        loop {
            let v = self
                .get(&format!("/api/requests/{rq_id}"), &[])
                .await
                .map_err(|e| self.http_error(e))?;
            match v.get("status").and_then(Value::as_str) {
                Some("finished") => return Ok(()),
                Some("failed") => {
                    let msg = v
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .trim();
                    return Err(self.error(format!(
                        "CVAT could not process the data (request {rq_id}): {msg}"
                    )));
                }
                _ => {}
            }
            if start.elapsed() > REQUEST_TIMEOUT {
                return Err(self.error(format!(
                    "request {rq_id} did not finish within {}",
                    humantime::format_duration(REQUEST_TIMEOUT)
                )));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }

    async fn create_task_async(
        &self,
        project: &str,
        info: &ProjectInfo,
        task: &TaskSpec,
    ) -> Result<(RemoteTask, bool), BackendError> {
        let s = &info.meta.settings;
        let pid: u64 = project
            .parse()
            .map_err(|_| self.error(format!("invalid project id `{project}`")))?;
        // A task of this name left by an interrupted apply: one whose data is attached (or
        // still being processed) is reused as it is, without uploading its media again; one
        // left without data cannot take it any more, and is replaced.
        let earlier: Vec<pages::Task> = self
            .list("/api/tasks", &[("project_id", project.into())])
            .await
            .map_err(|e| self.http_error(e))?;
        for t in earlier {
            if our_task_name(&t) != task.name {
                continue;
            }
            let id = t.id;
            if self.has_data(&t).await? {
                // The interruption may have come before the jobs were assigned.
                self.assign_jobs(id, info, task).await?;
                let found = RemoteTask {
                    id: id.to_string(),
                    name: task.name.clone(),
                };
                return Ok((found, false));
            }
            self.http
                .delete(&format!("/api/tasks/{id}"))
                .await
                .map_err(|e| self.http_error(e))?;
        }
        let name = match s.task_name() {
            Some(n) => format!("{n} [{}]", task.name),
            None => task.name.clone(),
        };
        let mut body = json!({"name": name, "project_id": pid});
        if let Some(n) = s.segment_size {
            body["segment_size"] = json!(n);
        }
        let trackers = s.issue_trackers();
        body["bug_tracker"] = if trackers.is_empty() {
            json!(format!("{TRACKER_SCHEME}{}", task.name))
        } else {
            json!(trackers[task.batch as usize % trackers.len()])
        };
        let assignees = s.task_assignees();
        if !assignees.is_empty() {
            let who = &assignees[task.batch as usize % assignees.len()];
            body["assignee_id"] = json!(self.users.get(who).copied());
        }
        let created = self
            .call(Method::POST, "/api/tasks", &[], Some(&body))
            .await
            .map_err(|e| self.http_error(e))?;
        let tid = id_of(&created).ok_or_else(|| {
            self.error(answered_without(
                &Method::POST,
                "/api/tasks",
                "an id",
                &created,
            ))
        })?;
        let result = self.fill_task(tid, info, task).await;
        if let Err(e) = result {
            // A task whose data failed cannot take data again: remove it so a retry starts
            // clean.
            let _ = self.http.delete(&format!("/api/tasks/{tid}")).await;
            return Err(e);
        }
        let made = RemoteTask {
            id: tid.to_string(),
            name: task.name.clone(),
        };
        Ok((made, true))
    }

    /// Whether a task holds its media: its frames are counted, or the request processing
    /// them (`create:task-<id>`, as CVAT names it) is still at work and finishes well.
    async fn has_data(&self, t: &pages::Task) -> Result<bool, BackendError> {
        if t.has_frames() {
            return Ok(true);
        }
        let rq = format!("create:task-{}", t.id);
        let status = self
            .get_opt(&format!("/api/requests/{}", rq.replace(':', "%3A")), &[])
            .await
            .map_err(|e| self.http_error(e))?;
        let at_work = status
            .as_ref()
            .and_then(|v| v.get("status"))
            .and_then(Value::as_str)
            .is_some_and(|s| matches!(s, "queued" | "started" | "finished"));
        Ok(at_work && self.wait(&rq).await.is_ok())
    }

    /// Upload a new task's media and assign its jobs (labels go up apart: `upload_labels`).
    async fn fill_task(
        &self,
        tid: u64,
        info: &ProjectInfo,
        task: &TaskSpec,
    ) -> Result<(), BackendError> {
        let s = &info.meta.settings;
        let mut files: Vec<(String, Vec<u8>)> = Vec::with_capacity(task.samples.len());
        for sample in &task.samples {
            let bytes = tokio::fs::read(&sample.media)
                .await
                .map_err(|e| self.error(format!("cannot read {}: {e}", sample.media)))?;
            files.push((upload_name(&sample.sample_id, &sample.media), bytes));
        }
        let range = video_range(task, s).map_err(|e| self.error(e))?;
        let range_fields = range.map(|r| r.upload_fields()).unwrap_or_default();
        let quality = s.image_quality();
        let use_cache = s.use_cache();
        let zip = s.use_zip_chunks;
        let chunk = s.chunk_size;
        let path = format!("/api/tasks/{tid}/data");
        let names: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
        let groups = upload_groups(&files);
        let answer: Value = if groups.len() <= 1 {
            self.http
                .send_json(Method::POST, &path, false, |r| {
                    let mut form = reqwest::multipart::Form::new()
                        .text("image_quality", quality.to_string())
                        .text("use_cache", use_cache.to_string())
                        .text("sorting_method", "predefined");
                    if let Some(z) = zip {
                        form = form.text("use_zip_chunks", z.to_string());
                    }
                    if let Some(c) = chunk {
                        form = form.text("chunk_size", c.to_string());
                    }
                    for (k, v) in &range_fields {
                        form = form.text(*k, v.clone());
                    }
                    for name in &names {
                        form = form.text("upload_file_order", name.clone());
                    }
                    for (i, (name, bytes)) in files.iter().enumerate() {
                        form = form.part(
                            format!("client_files[{i}]"),
                            reqwest::multipart::Part::bytes(bytes.clone()).file_name(name.clone()),
                        );
                    }
                    r.multipart(form)
                })
                .await
                .map_err(|e| self.http_error(e))?
        } else {
            self.http
                .send(Method::POST, &path, false, |r| {
                    r.header("Upload-Start", "true")
                })
                .await
                .map_err(|e| self.http_error(e))?;
            for group in groups {
                self.http
                    .send(Method::POST, &path, false, |r| {
                        let mut form = reqwest::multipart::Form::new()
                            .text("image_quality", quality.to_string());
                        for (i, (name, bytes)) in group.iter().enumerate() {
                            form = form.part(
                                format!("client_files[{i}]"),
                                reqwest::multipart::Part::bytes(bytes.clone())
                                    .file_name(name.clone()),
                            );
                        }
                        r.header("Upload-Multiple", "true").multipart(form)
                    })
                    .await
                    .map_err(|e| self.http_error(e))?;
            }
            let mut body = json!({"image_quality": quality, "use_cache": use_cache,
                "sorting_method": "predefined", "upload_file_order": names});
            if let Some(z) = zip {
                body["use_zip_chunks"] = json!(z);
            }
            if let Some(c) = chunk {
                body["chunk_size"] = json!(c);
            }
            for (k, v) in &range_fields {
                body[*k] = v.parse::<u64>().map_or_else(|_| json!(v), |n| json!(n));
            }
            self.http
                .send_json(Method::POST, &path, false, |r| {
                    r.header("Upload-Finish", "true").json(&body)
                })
                .await
                .map_err(|e| self.http_error(e))?
        };
        let rq = answer.get("rq_id").and_then(Value::as_str).ok_or_else(|| {
            self.error(answered_without(&Method::POST, &path, "an rq_id", &answer))
        })?;
        self.wait(rq).await?;
        self.assign_jobs(tid, info, task).await
    }

    /// Add labels to a task, one frame per sample in upload order (`action=create`: what the
    /// task holds already stays).
    async fn add_labels(
        &self,
        tid: &str,
        info: &ProjectInfo,
        task: &TaskSpec,
        frames: &[String],
    ) -> Result<(), BackendError> {
        let schema = &info.meta.schema;
        let mut ann = CvatAnnotations::default();
        for sample in &task.samples {
            let frame = frames
                .iter()
                .position(|f| *f == sample.sample_id)
                .ok_or_else(|| {
                    self.error(format!(
                        "task {tid} has no frame of sample {}",
                        sample.sample_id
                    ))
                })?;
            let size = ImageSize::of_sample(sample).map_err(|e| self.error(e))?;
            convert::sample_to_cvat(
                schema,
                &sample.labels,
                frame as u64,
                size,
                &info.map,
                &mut ann,
            )
            .map_err(|e| self.error(format!("sample {}: {e}", sample.sample_id)))?;
        }
        if !(ann.tags.is_empty() && ann.shapes.is_empty()) {
            let body = serde_json::to_value(&ann).map_err(|e| self.error(e.to_string()))?;
            self.call(
                Method::PATCH,
                &format!("/api/tasks/{tid}/annotations"),
                &[("action", "create".into())],
                Some(&body),
            )
            .await
            .map_err(|e| self.http_error(e))?;
        }
        Ok(())
    }

    /// Assign a new task's jobs.
    async fn assign_jobs(
        &self,
        tid: u64,
        info: &ProjectInfo,
        task: &TaskSpec,
    ) -> Result<(), BackendError> {
        let s = &info.meta.settings;
        // Jobs round-robin over `job_assignees`, counting on from earlier batches (each of
        // which is full: `task_size` samples).
        let assignees = s.job_assignees();
        if !assignees.is_empty() {
            let jobs: Vec<pages::Job> = self
                .list(
                    "/api/jobs",
                    &[("task_id", tid.to_string()), ("sort", "id".into())],
                )
                .await
                .map_err(|e| self.http_error(e))?;
            let per_task = match (s.task_size, s.segment_size) {
                (Some(t), Some(g)) if g > 0 => t.div_ceil(g),
                _ => 1,
            };
            let offset = u64::from(task.batch) * per_task;
            for (i, j) in jobs.iter().enumerate() {
                let who = &assignees[(offset as usize + i) % assignees.len()];
                let Some(uid) = self.users.get(who) else {
                    continue;
                };
                let jid = j.id;
                self.call(
                    Method::PATCH,
                    &format!("/api/jobs/{jid}"),
                    &[],
                    Some(&json!({ "assignee": uid })),
                )
                .await
                .map_err(|e| self.http_error(e))?;
            }
        }
        Ok(())
    }

    /// The project as the server shows it now; `None` when it is gone.
    async fn project_now(&self, id: &str) -> Result<Option<pages::Project>, HttpError> {
        self.fetch(&format!("/api/projects/{id}"), &[]).await
    }

    /// Every job of a project, or with a cursor those written since (less its margin).
    async fn project_jobs(
        &self,
        project: &str,
        since: Option<&Cursor>,
    ) -> Result<Vec<pages::Job>, HttpError> {
        let mut q = vec![("project_id", project.to_string())];
        q.extend(since.map(|c| ("filter", c.jobs_filter())));
        self.list("/api/jobs", &q).await
    }

    /// Remember the date of a task's jobs right after annoform wrote to it, so that
    /// [`Backend::cursor`] tells an annotator's later edit from annoform's own writes.
    fn note_stamp(&mut self, task: &str) -> Result<(), BackendError> {
        let jobs: Vec<pages::Job> =
            self.run(self.list("/api/jobs", &[("task_id", task.to_string())]))?;
        if let Some(last) = jobs
            .into_iter()
            .map(|j| j.updated_date)
            .reduce(cursor::latest)
        {
            self.stamps.insert(task.to_string(), last);
        }
        Ok(())
    }

    /// One task's annotations per sample, and the objects no sample takes; `None` when the
    /// task is gone (drift: its samples are unknown). A task that is there but whose
    /// annotations cannot be read is an error.
    async fn task_annotations(
        &self,
        info: &ProjectInfo,
        tid: &str,
    ) -> Result<Option<(Annotations, Vec<Stray>)>, BackendError> {
        let Some(meta) = self
            .fetch::<pages::DataMeta>(&format!("/api/tasks/{tid}/data/meta"), &[])
            .await
            .map_err(|e| self.http_error(e))?
        else {
            return Ok(None);
        };
        if let Some(page) = self.video_annotations(info, tid, &meta).await? {
            return Ok(Some((page, Vec::new())));
        }
        let Some(raw) = self
            .get_opt(&format!("/api/tasks/{tid}/annotations"), &[])
            .await
            .map_err(|e| self.http_error(e))?
        else {
            return Err(self.error(format!(
                "task {tid}: its annotations are not found (HTTP 404) although its data is; \
                 nothing was merged"
            )));
        };
        let ann: CvatAnnotations = serde_json::from_value(raw)
            .map_err(|e| self.error(format!("task {tid}: unexpected annotations: {e}")))?;
        let mut frames = convert::by_frame(ann);
        let schema = &info.meta.schema;
        let mut out = Annotations::new();
        let mut strays = Vec::new();
        let mut stray = |objects: &CvatAnnotations, reason: String| {
            strays.extend(convert::object_ids(objects).into_iter().map(|id| Stray {
                task: tid.to_string(),
                backend_id: id,
                reason: reason.clone(),
            }));
        };
        let list = meta.frames;
        // A frame list short of the task's size would leave samples unknown.
        if let Some(size) = meta.size
            && size != list.len() as u64
        {
            return Err(self.error(format!(
                "task {tid}: data/meta lists {} frame(s) of the task's {size}; nothing was merged",
                list.len()
            )));
        }
        for (i, f) in list.iter().enumerate() {
            // Our uploads name frames after their samples; imported tasks are mapped by the
            // record, in frame order.
            let recorded = info.meta.frames.get(tid).and_then(|f| f.get(i));
            let frame_ann = frames.remove(&(i as u64)).unwrap_or_default();
            let Some(sid) = sample_of_frame(&f.name).or(recorded.map(String::as_str)) else {
                stray(
                    &frame_ann,
                    format!(
                        "on frame {i} (`{}`), which shows no sample of the run",
                        f.name
                    ),
                );
                continue;
            };
            let size = ImageSize {
                width: f.width,
                height: f.height,
            };
            let got = convert::from_cvat(
                schema,
                &frame_ann,
                i as u64,
                size,
                &info.map,
                &HashMap::new(),
            );
            let mut fields: IndexMap<String, Vec<DownloadedLabel>> = schema
                .fields
                .keys()
                .map(|k| (k.to_string(), Vec::new()))
                .collect();
            for (k, v) in got.labels {
                fields.insert(k, v);
            }
            out.insert(sid.to_string(), fields.into());
        }
        // Objects on frames past the task's last (job-level writes do not check frames).
        for (frame, objects) in frames {
            stray(
                &objects,
                format!("on frame {frame}, past the task's {} frame(s)", list.len()),
            );
        }
        Ok(Some((out, strays)))
    }
}

/// A task's status from its jobs (in id order), as CVAT derives it
/// (signals.py `__save_job_handler`).
fn task_status(id: &str, jobs: &[&pages::Job]) -> TaskStatus {
    let completed = jobs.iter().filter(|j| j.done()).count();
    let word = if completed == jobs.len() {
        "completed"
    } else if jobs.iter().any(|j| j.stage == "annotation") {
        "annotation"
    } else {
        "validation"
    };
    let per_job: Vec<String> = jobs
        .iter()
        .map(|j| {
            let who = j
                .assignee
                .as_ref()
                .map_or("unassigned", |a| a.username.as_str());
            format!(
                "job {} frames {}-{} {}/{} ({who})",
                j.id, j.start_frame, j.stop_frame, j.stage, j.state
            )
        })
        .collect();
    TaskStatus {
        id: id.to_string(),
        status: format!(
            "{word}, {completed}/{} job(s) completed; {}",
            jobs.len(),
            per_job.join("; ")
        ),
        complete: completed == jobs.len(),
        updated: jobs
            .iter()
            .map(|j| j.updated_date.as_str())
            .max()
            .map(String::from),
    }
}

/// The files in upload groups of at most `UPLOAD_FILES` files and `UPLOAD_BYTES` bytes.
fn upload_groups(files: &[(String, Vec<u8>)]) -> Vec<&[(String, Vec<u8>)]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, (_, b)) in files.iter().enumerate() {
        if i > start && (i - start >= UPLOAD_FILES || bytes + b.len() > UPLOAD_BYTES) {
            out.push(&files[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += b.len();
    }
    if start < files.len() {
        out.push(&files[start..]);
    }
    out
}

impl HttpBackend for CvatBackend {
    fn http(&self) -> &HttpClient {
        &self.http
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.rt
    }

    fn describe(&self, e: &HttpError) -> Option<String> {
        described(e)
    }
}

/// A readable error (see [`described`]), else the policy's, redacted.
fn explain(http: &HttpClient, e: HttpError) -> String {
    described(&e).unwrap_or_else(|| http.redact(&e.to_string()))
}

/// CVAT's words for failures it recognises: HTML where CVAT's JSON was expected, refused
/// credentials.
fn described(e: &HttpError) -> Option<String> {
    Some(match e {
        HttpError::Decode { endpoint, body, .. } if body.trim_start().starts_with('<') => {
            format!(
                "{} answered an HTML page where CVAT answers JSON ({} {}): is `url` = {} the \
                 address of a CVAT server (its API is under /api)?",
                endpoint.base_url, endpoint.method, endpoint.path, endpoint.base_url
            )
        }
        HttpError::Status {
            endpoint, status, ..
        } if *status == StatusCode::UNAUTHORIZED => format!(
            "the CVAT server at {} refused the credentials ({} {}: HTTP 401): check \
             ANNOFORM_CVAT_API_KEY or ANNOFORM_CVAT_USERNAME / ANNOFORM_CVAT_PASSWORD",
            endpoint.base_url, endpoint.method, endpoint.path
        ),
        // CVAT itself answers HTML only for its 500 pages and unknown request ids; an HTML
        // 404 on the first request means something else is at `url`.
        HttpError::Status {
            endpoint,
            status,
            body,
            ..
        } if *status == StatusCode::NOT_FOUND
            && body.trim_start().starts_with('<')
            && matches!(
                endpoint.path.as_str(),
                "/api/auth/login" | "/api/users/self"
            ) =>
        {
            format!(
                "{} answered HTTP 404 with an HTML page ({} {}): is `url` = {} the address \
                 of a CVAT server (its API is under /api)?",
                endpoint.base_url, endpoint.method, endpoint.path, endpoint.base_url
            )
        }
        _ => return None,
    })
}

/// The text of a CVAT error body (a string, a list, `{"detail"}` or a field map).
fn error_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(a) => Some(
            a.iter()
                .filter_map(error_text)
                .collect::<Vec<_>>()
                .join("; "),
        ),
        Value::Object(o) => Some(
            o.iter()
                .filter_map(|(k, v)| {
                    let t = error_text(v)?;
                    Some(if k == "detail" || k == "non_field_errors" {
                        t
                    } else {
                        format!("{k}: {t}")
                    })
                })
                .collect::<Vec<_>>()
                .join("; "),
        ),
        _ => None,
    }
}

impl Backend for CvatBackend {
    fn capabilities(&self) -> &Capabilities {
        BackendKind::Cvat.capabilities()
    }

    fn as_held(&self) -> Option<crate::backend::AsHeld> {
        Some(convert::as_held)
    }

    fn find_project(&mut self, name: &str) -> Result<Option<RemoteProject>, BackendError> {
        let found: Vec<pages::Project> =
            self.run(self.list("/api/projects", &[("name", name.to_string())]))?;
        Ok(found
            .iter()
            .filter(|p| p.name == name)
            .min_by_key(|p| p.id)
            .map(|p| self.remote_project(p)))
    }

    fn existing_project(
        &mut self,
        settings: &serde_json::Map<String, Value>,
    ) -> Result<Option<ExistingProject>, BackendError> {
        let all = CvatConfig::overlaid(&self.defaults, settings)
            .map_err(|e| self.error(e.to_string()))?;
        let project = match (all.project_id, all.project_name.as_deref()) {
            (Some(pid), _) => {
                let p: pages::Project = self
                    .run(self.fetch(&format!("/api/projects/{pid}"), &[]))?
                    .ok_or_else(|| self.error(format!("there is no CVAT project {pid}")))?;
                self.remote_project(&p)
            }
            (None, Some(name)) => match self.find_project(name)? {
                Some(p) => p,
                None => return Ok(None),
            },
            (None, None) => return Ok(None),
        };
        let labels = self.run(self.labels_of(&project.id))?;
        Ok(Some(ExistingProject {
            project,
            classes: labels::project_classes(&labels),
        }))
    }

    fn create_project(&mut self, spec: &ProjectSpec) -> Result<RemoteProject, BackendError> {
        let meta = Meta::new(&spec.schema, &self.defaults, &spec.config)
            .map_err(|e| self.error(e.to_string()))?;
        let schema = meta.schema.clone();
        let existing = meta.settings.project_id;
        let (id, name) = match existing {
            Some(pid) => {
                // An existing project: its labels win; only what the schema lacks is added.
                let p = self
                    .run(self.get_opt(&format!("/api/projects/{pid}"), &[]))?
                    .ok_or_else(|| self.error(format!("there is no CVAT project {pid}")))?;
                let name = p
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let current = self.run(self.labels_of(&pid.to_string()))?;
                let patch = label_patch(&current, &labels::label_specs(&schema));
                self.patch_labels(&pid.to_string(), patch)?;
                (pid.to_string(), name)
            }
            None => {
                let specs = labels::label_specs(&schema);
                let mut body = json!({"name": spec.name, "labels": specs});
                if let Some(owner) = &spec.owner {
                    // The project's bug tracker is a link annotators rarely follow: it
                    // carries the run's identity.
                    body["bug_tracker"] = json!(owner.tag());
                }
                let v = self.run(self.call(Method::POST, "/api/projects", &[], Some(&body)))?;
                let id = id_of(&v).ok_or_else(|| {
                    self.error(answered_without(
                        &Method::POST,
                        "/api/projects",
                        "an id",
                        &v,
                    ))
                })?;
                (id.to_string(), spec.name.clone())
            }
        };
        let labels = self.run(self.labels_of(&id))?;
        self.remember(&id, meta, labels)?;
        Ok(RemoteProject {
            url: Some(self.http.url(&format!("/projects/{id}"))),
            owner: existing.is_none().then(|| spec.owner.clone()).flatten(),
            id,
            name,
        })
    }

    fn attach(
        &mut self,
        project: &RemoteProject,
        context: ProjectContext<'_>,
    ) -> Result<(), BackendError> {
        let mut meta = Meta::new(context.schema, &self.defaults, context.settings)
            .map_err(|e| self.error(format!("the run's settings: {e}")))?;
        meta.frames = context
            .tasks
            .iter()
            .map(|t| (t.id.clone(), t.samples.clone()))
            .collect();
        for t in context.tasks {
            if let Some(notes) = &t.notes {
                let read = serde_json::from_value(notes.clone())
                    .map_err(|e| format!("the run record's notes of this video task: {e}"));
                self.videos.insert(t.id.clone(), read);
            }
        }
        match self.projects.get_mut(&project.id) {
            // Read already with this schema: the label ids stay good.
            Some(info) if info.meta.schema == meta.schema => info.meta = meta,
            _ => {
                self.projects.remove(&project.id);
                self.attached.insert(project.id.clone(), meta);
            }
        }
        Ok(())
    }

    fn list_tasks(&mut self, project: &RemoteProject) -> Result<Vec<RemoteTask>, BackendError> {
        let mut tasks: Vec<pages::Task> =
            self.run(self.list("/api/tasks", &[("project_id", project.id.clone())]))?;
        tasks.sort_by_key(|t| t.id);
        // Tasks without data (an interrupted upload) are not adoptable.
        Ok(tasks
            .iter()
            .filter(|t| t.has_frames())
            .map(|t| RemoteTask {
                id: t.id.to_string(),
                name: our_task_name(t).to_string(),
            })
            .collect())
    }

    fn confirm_missing(
        &mut self,
        project: &RemoteProject,
        tasks: &[String],
    ) -> Result<Vec<String>, BackendError> {
        let this = &*self;
        this.rt.block_on(async {
            let mut gone = Vec::new();
            for id in tasks {
                let task: Option<pages::Task> = this
                    .fetch(&format!("/api/tasks/{id}"), &[])
                    .await
                    .map_err(|e| this.http_error(e))?;
                let in_project = task
                    .and_then(|t| t.project_id)
                    .is_some_and(|p| p.to_string() == project.id);
                if !in_project {
                    gone.push(id.clone());
                }
            }
            Ok(gone)
        })
    }

    fn create_task(
        &mut self,
        project: &RemoteProject,
        task: &TaskSpec,
    ) -> Result<RemoteTask, BackendError> {
        let info = self.with_labels(&project.id)?;
        self.resolve_users(&info.meta.settings)?;
        let (task, made) = self
            .rt
            .block_on(self.create_task_async(&project.id, &info, task))?;
        // A task found from an interrupted apply may hold edits made since: no stamp, so the
        // first refresh downloads it.
        if made {
            self.note_stamp(&task.id)?;
        }
        Ok(task)
    }

    fn labels_with_media(&self) -> bool {
        false
    }

    fn upload_labels(
        &mut self,
        project: &RemoteProject,
        task: &RemoteTask,
        labels: &TaskSpec,
    ) -> Result<(), BackendError> {
        let info = self.with_labels(&project.id)?;
        if let Some(sample) = video_tasks::video_sample(labels) {
            let records = self
                .rt
                .block_on(self.upload_video_labels(&task.id, &info, labels, sample))?;
            self.uploads.insert(task.id.clone(), records);
        } else {
            let this = &*self;
            this.rt.block_on(async {
                let meta: pages::DataMeta = this
                    .call_as(
                        Method::GET,
                        &format!("/api/tasks/{}/data/meta", task.id),
                        &[],
                        None,
                    )
                    .await
                    .map_err(|e| this.http_error(e))?;
                let frames: Vec<String> = meta
                    .frames
                    .iter()
                    .map(|f| sample_of_frame(&f.name).unwrap_or_default().to_string())
                    .collect();
                this.add_labels(&task.id, &info, labels, &frames).await
            })?;
        }
        // Only a task made in this process: one found may hold edits made before.
        if self.stamps.contains_key(&task.id) {
            self.note_stamp(&task.id)?;
        }
        Ok(())
    }

    fn task_notes(
        &mut self,
        project: &RemoteProject,
        task: &RemoteTask,
        labels: &TaskSpec,
    ) -> Result<Option<Value>, BackendError> {
        match video_tasks::video_sample(labels) {
            Some(sample) => self.video_notes(project, task, labels, sample).map(Some),
            None => Ok(None),
        }
    }

    fn update_schema(
        &mut self,
        project: &RemoteProject,
        schema: &ResolvedSchema,
    ) -> Result<(), BackendError> {
        let mut meta = match self.projects.get(&project.id) {
            Some(info) => info.meta.clone(),
            None => self.attached_meta(&project.id)?,
        };
        meta.schema = effective_schema(schema, &meta.settings);
        self.projects.remove(&project.id);
        self.attached.insert(project.id.clone(), meta);
        self.with_labels(&project.id)?;
        Ok(())
    }

    fn status(
        &mut self,
        project: &RemoteProject,
        tasks: &[String],
    ) -> Result<Vec<TaskStatus>, BackendError> {
        // One listing of the project's jobs answers for every task: a task is complete when
        // each of its jobs is (`jobs.completed == jobs.count`), and one without jobs is gone.
        let jobs = self.run(self.project_jobs(&project.id, None))?;
        let mut by_task: HashMap<String, Vec<&pages::Job>> = HashMap::new();
        for j in jobs.iter().filter(|j| j.counts()) {
            by_task.entry(j.task_id.to_string()).or_default().push(j);
        }
        Ok(tasks
            .iter()
            .filter_map(|id| {
                let mut jobs = by_task.remove(id)?;
                jobs.sort_by_key(|j| j.id);
                Some(task_status(id, &jobs))
            })
            .collect())
    }

    fn cursor(
        &mut self,
        project: &RemoteProject,
        tasks: &[String],
    ) -> Result<Option<String>, BackendError> {
        let this = &*self;
        let (now, jobs) = this.run(async {
            let Some(now) = this.project_now(&project.id).await? else {
                return Ok((None, Vec::new()));
            };
            Ok((Some(now), this.project_jobs(&project.id, None).await?))
        })?;
        let Some(now) = now else { return Ok(None) };
        Ok(Some(
            Cursor::at_create(&now, &jobs, tasks, &self.stamps).encode(),
        ))
    }

    fn unchanged_since(
        &mut self,
        project: &RemoteProject,
        cursor: &str,
    ) -> Result<bool, BackendError> {
        let Some(seen) = Cursor::parse(cursor).and_then(|c| c.project) else {
            return Ok(false);
        };
        let now = self.run(self.project_now(&project.id))?;
        Ok(now.is_some_and(|p| p.updated_date == seen))
    }

    fn download(
        &mut self,
        project: &RemoteProject,
        tasks: &[String],
        since: Option<&str>,
        sink: &mut PageSink<'_>,
    ) -> Result<Downloaded, BackendError> {
        let info = self.project(&project.id)?;
        let this = &*self;
        // The project's date is read before anything else: an edit landing during the
        // download moves it past the new cursor, so the next refresh looks again.
        let since = since.and_then(Cursor::parse);
        let (cursor, tasks) = this.run(async {
            let Some(now) = this.project_now(&project.id).await? else {
                // Gone: every task reads as missing (drift).
                return Ok((None, tasks.to_vec()));
            };
            // The jobs written since the cursor (or, for a first download, inside the
            // new cursor's margin: those it sees).
            let from = since
                .clone()
                .unwrap_or_else(|| Cursor::after_download(&now, &[]));
            let asked: HashSet<&str> = tasks.iter().map(String::as_str).collect();
            let mut jobs = this.project_jobs(&project.id, Some(&from)).await?;
            jobs.retain(|j| asked.contains(j.task_id.to_string().as_str()));
            let cursor = Cursor::after_download(&now, &jobs).encode();
            let Some(since) = &since else {
                return Ok((Some(cursor), tasks.to_vec()));
            };
            let changed: HashSet<String> = jobs
                .iter()
                .filter(|j| since.is_new(j))
                .map(|j| j.task_id.to_string())
                .collect();
            // In the run's order.
            let changed = tasks.iter().filter(|t| changed.contains(*t)).cloned();
            Ok((Some(cursor), changed.collect()))
        })?;
        // A few tasks in flight at once (the HTTP policy bounds the requests), handed on in
        // order: memory follows `--parallelism` tasks, not the run.
        let mut strays = Vec::new();
        for group in tasks.chunks(this.http.policy().parallelism.max(1)) {
            let pages = this.rt.block_on(futures_util::future::try_join_all(
                group.iter().map(|tid| this.task_annotations(&info, tid)),
            ))?;
            // A task gone since the listing hands nothing: its samples are missing (drift).
            for (page, stray) in pages.into_iter().flatten() {
                strays.extend(stray);
                if !page.is_empty() {
                    sink(page)?;
                }
            }
        }
        // Every frame of every handed task is handed (with no labels when it has none).
        Ok(Downloaded {
            cursor,
            held: None,
            strays,
        })
    }

    fn project_url(&self, project: &RemoteProject) -> Option<String> {
        Some(self.http.url(&format!("/projects/{}", project.id)))
    }

    fn task_url(&self, _project: &RemoteProject, task: &str) -> Option<String> {
        Some(self.http.url(&format!("/tasks/{task}")))
    }

    fn delete_project(&mut self, project: &RemoteProject) -> Result<(), BackendError> {
        let created = match self.projects.remove(&project.id) {
            Some(info) => info.meta.created,
            None => match self.attached.get(&project.id) {
                Some(m) => m.created,
                None => true,
            },
        };
        let this = &*self;
        this.run(async {
            let tasks: Vec<pages::Task> = this
                .list("/api/tasks", &[("project_id", project.id.clone())])
                .await?;
            let prefix = format!("{}/", project.name);
            let (ours, others): (Vec<&pages::Task>, Vec<&pages::Task>) = tasks
                .iter()
                .partition(|t| our_task_name(t).starts_with(&prefix));
            if created && others.is_empty() {
                this.http
                    .delete(&format!("/api/projects/{}", project.id))
                    .await?;
                return Ok(());
            }
            for t in ours {
                this.http.delete(&format!("/api/tasks/{}", t.id)).await?;
            }
            Ok(())
        })
    }
}

impl CvatBackend {
    /// Tasks made outside annoform: these ids, or every task of `project`.
    pub fn foreign_tasks(
        &mut self,
        ids: &[u64],
        project: Option<u64>,
    ) -> Result<Vec<ForeignTask>, BackendError> {
        let this = &*self;
        this.rt.block_on(async {
            let mut tasks: Vec<pages::Task> = Vec::new();
            if let Some(p) = project {
                this.fetch::<pages::Project>(&format!("/api/projects/{p}"), &[])
                    .await
                    .map_err(|e| this.http_error(e))?
                    .ok_or_else(|| this.error(format!("there is no CVAT project {p}")))?;
                tasks = this
                    .list(
                        "/api/tasks",
                        &[("project_id", p.to_string()), ("sort", "id".into())],
                    )
                    .await
                    .map_err(|e| this.http_error(e))?;
            }
            for id in ids {
                let t = this
                    .fetch(&format!("/api/tasks/{id}"), &[])
                    .await
                    .map_err(|e| this.http_error(e))?
                    .ok_or_else(|| this.error(format!("there is no CVAT task {id}")))?;
                tasks.push(t);
            }
            let mut out = Vec::new();
            for t in tasks {
                let meta: pages::DataMeta = this
                    .call_as(
                        Method::GET,
                        &format!("/api/tasks/{}/data/meta", t.id),
                        &[],
                        None,
                    )
                    .await
                    .map_err(|e| this.http_error(e))?;
                out.push(ForeignTask {
                    id: t.id,
                    name: t.name,
                    project: t.project_id,
                    frames: meta.frames.into_iter().map(|f| f.name).collect(),
                });
            }
            Ok(out)
        })
    }

    /// Make an existing project usable for a run: the schema's missing labels are added and
    /// the metadata written, with the imported tasks' frame → sample maps.
    pub fn adopt_project(
        &mut self,
        project: u64,
        schema: &ResolvedSchema,
        settings: &serde_json::Map<String, Value>,
        frames: IndexMap<String, Vec<String>>,
    ) -> Result<RemoteProject, BackendError> {
        let pid = project.to_string();
        let p: pages::Project =
            self.run(self.call_as(Method::GET, &format!("/api/projects/{pid}"), &[], None))?;
        let current = self.run(self.labels_of(&pid))?;
        let mut meta =
            Meta::new(schema, &self.defaults, settings).map_err(|e| self.error(e.to_string()))?;
        meta.created = false;
        meta.frames = frames;
        let patch = label_patch(&current, &labels::label_specs(&meta.schema));
        self.patch_labels(&pid, patch)?;
        self.projects.remove(&pid);
        let labels = self.run(self.labels_of(&pid))?;
        self.remember(&pid, meta, labels)?;
        Ok(self.remote_project(&p))
    }

    /// PATCH the project's labels (nothing to send: no request).
    fn patch_labels(&self, project: &str, patch: Vec<Value>) -> Result<(), BackendError> {
        if patch.is_empty() {
            return Ok(());
        }
        let path = format!("/api/projects/{project}");
        self.run(self.call(Method::PATCH, &path, &[], Some(&json!({ "labels": patch }))))?;
        Ok(())
    }

    /// The project with every label its run needs: what is missing (a project reused by name
    /// for other fields, a schema grown in place) is added first, keeping existing label ids.
    fn with_labels(&mut self, id: &str) -> Result<ProjectInfo, BackendError> {
        let meta = match self.projects.get(id) {
            Some(info) => info.meta.clone(),
            None => self.attached_meta(id)?,
        };
        let current = self.run(self.labels_of(id))?;
        let patch = label_patch(&current, &labels::label_specs(&meta.schema));
        if patch.is_empty() {
            return self.remember(id, meta, current);
        }
        self.patch_labels(id, patch)?;
        let labels = self.run(self.labels_of(id))?;
        self.remember(id, meta, labels)
    }
}

/// The label PATCH items that add `wanted` to `current`: new labels whole, new attributes of
/// existing labels by label id (re-sending the colour, which a PATCH would otherwise reset).
fn label_patch(current: &[LabelSpec], wanted: &[LabelSpec]) -> Vec<Value> {
    let mut out = Vec::new();
    for w in wanted {
        match current.iter().find(|c| c.name == w.name) {
            None => out.push(json!(w)),
            Some(c) => {
                let missing: Vec<&labels::AttributeSpec> = w
                    .attributes
                    .iter()
                    .filter(|a| !c.attributes.iter().any(|b| b.name == a.name))
                    .collect();
                if !missing.is_empty() {
                    let mut item = json!({"id": c.id, "name": c.name, "attributes": missing});
                    if let Some(color) = &c.color {
                        item["color"] = json!(color);
                    }
                    out.push(item);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::schema::ResolvedField;

    /// `occluded_attr` applies to the fields without an occluded attribute of their own.
    #[test]
    fn occluded_attr_leaves_fields_with_their_own_alone() {
        let mut own = ResolvedField::new(LabelType::Detections, vec!["car".into()]);
        own.attributes.insert(
            "occluded".into(),
            BackendKind::Cvat.recommend_attribute("occluded", &json!(true)),
        );
        let other = ResolvedField::new(LabelType::Detections, vec!["car".into()]);
        let mut schema = ResolvedSchema::default();
        schema.fields.insert("own".into(), own);
        schema.fields.insert("other".into(), other);
        let settings = CvatConfig {
            occluded_attr: Some("hidden".into()),
            ..CvatConfig::default()
        };
        let out = effective_schema(&schema, &settings);
        assert!(!out.fields["own"].attributes.contains_key("hidden"));
        assert_eq!(
            out.fields["other"].attributes["hidden"].attr_type,
            AttributeType::Occluded
        );
    }

    #[test]
    fn a_run_given_a_project_id_never_owns_it() {
        let schema = ResolvedSchema::default();
        let none = serde_json::Map::new();
        assert!(Meta::new(&schema, &none, &none).unwrap().created);
        let mut given = serde_json::Map::new();
        given.insert("project_id".into(), json!(7));
        assert!(!Meta::new(&schema, &none, &given).unwrap().created);
        assert!(
            !Meta::new(&schema, &given, &none).unwrap().created,
            "a workspace default counts"
        );
    }

    #[test]
    fn an_empty_password_is_reported_as_set_but_empty() {
        let conn = Connection {
            url: "http://127.0.0.1:9".into(),
            username: Some("admin".into()),
            password: Some(String::new()),
            ..Connection::default()
        };
        let err = CvatBackend::new("cvat", &conn, Default::default(), HttpPolicy::default())
            .err()
            .expect("refused before any request")
            .to_string();
        assert!(
            err.contains("no usable credentials (`password` set but empty)"),
            "{err}"
        );
    }

    #[test]
    fn frames_name_their_samples() {
        let n = upload_name("64f0c0de0123456789abcdef", "/data/a b.png");
        assert_eq!(n, "64f0c0de0123456789abcdef_a b.png");
        assert_eq!(sample_of_frame(&n), Some("64f0c0de0123456789abcdef"));
        assert_eq!(sample_of_frame("img.png"), None);
    }

    #[test]
    fn uploads_are_grouped() {
        let files: Vec<(String, Vec<u8>)> =
            (0..40).map(|i| (format!("f{i}"), vec![0u8; 10])).collect();
        let sizes: Vec<usize> = upload_groups(&files).iter().map(|g| g.len()).collect();
        assert_eq!(sizes, [16, 16, 8]);
        let big = vec![
            ("a".to_string(), vec![0u8; UPLOAD_BYTES]),
            ("b".into(), vec![1]),
        ];
        assert_eq!(upload_groups(&big).len(), 2);
        assert!(upload_groups(&[]).is_empty());
    }

    #[test]
    fn label_patches_only_add() {
        let attr = |name: &str, id: Option<i64>| labels::AttributeSpec {
            id,
            name: name.into(),
            input_type: "text".into(),
            mutable: true,
            values: vec![String::new()],
            default_value: String::new(),
        };
        let label = |id: Option<i64>, name: &str, attrs: Vec<labels::AttributeSpec>| LabelSpec {
            id,
            name: name.into(),
            label_type: "rectangle".into(),
            color: id.map(|_| "#ff0000".to_string()),
            attributes: attrs,
        };
        let current = vec![label(Some(1), "car", vec![attr("make", Some(10))])];
        let wanted = vec![
            label(None, "car", vec![attr("make", None), attr("note", None)]),
            label(None, "truck", vec![]),
        ];
        let patch = label_patch(&current, &wanted);
        assert_eq!(patch.len(), 2);
        assert_eq!(patch[0]["id"], 1);
        assert_eq!(
            patch[0]["color"], "#ff0000",
            "a PATCH without colour resets it"
        );
        assert_eq!(patch[0]["attributes"].as_array().unwrap().len(), 1);
        assert_eq!(patch[0]["attributes"][0]["name"], "note");
        assert_eq!(patch[1]["name"], "truck");
        assert!(label_patch(&current, &current).is_empty());
    }

    #[test]
    fn errors_read_in_every_recorded_shape() {
        let t = |v: Value| error_text(&v).unwrap();
        assert_eq!(
            t(json!("Adding more data is not supported")),
            "Adding more data is not supported"
        );
        assert_eq!(
            t(json!(["label_id `9` is invalid"])),
            "label_id `9` is invalid"
        );
        assert_eq!(t(json!({"detail": "Invalid token."})), "Invalid token.");
        assert_eq!(
            t(json!({"non_field_errors": ["Unable to log in with provided credentials."]})),
            "Unable to log in with provided credentials."
        );
        assert_eq!(
            t(json!({"shapes": [{"type": ["\"circle\" is not a valid choice."]}]})),
            "shapes: type: \"circle\" is not a valid choice."
        );
    }

    #[test]
    fn task_names_keep_ours() {
        assert_eq!(our_name("p/batch-0001"), "p/batch-0001");
        assert_eq!(our_name("Review [a] [p/batch-0001]"), "p/batch-0001");
    }
}
