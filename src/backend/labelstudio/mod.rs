//! The Label Studio backend (REST API, verified on 1.23.2; see `recipes/labelstudio.md`).
//!
//! Mapping. A run is one project (its title is the run's project name). A Label Studio task
//! shows one sample, while annoform's task is a batch of samples: a batch is the set of
//! Label Studio tasks whose `data.annoform_batch` is the batch name, and the batch name is
//! also its id, so batches are found again after a crash without any local state. Existing
//! labels go up as one prediction per task (model version `annoform`) whose result ids are
//! our label ids. Task `meta.annoform` keeps what downloads need (field types, image size).
//!
//! Auth: a legacy token (`Authorization: Token`), or a personal access token — a JWT refresh
//! token — exchanged for short-lived access tokens (`Bearer`), refreshed before they expire
//! and on 401, as label-studio-sdk 2.x does.

pub mod config;
pub mod convert;
pub mod rle;

use super::http::{HttpClient, HttpError, HttpPolicy};
use super::*;
use crate::manifest::LabelType;
use crate::schema::{ResolvedField, Restrictions};
use base64::Engine as _;
use convert::ImageSize;
use futures_util::StreamExt as _;
use reqwest::Method;
use reqwest::header::AUTHORIZATION;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Files per upload request (Label Studio's default `DATA_UPLOAD_MAX_NUMBER_FILES`).
const UPLOAD_CHUNK: usize = 100;
/// Upload requests in flight at once (within `--parallelism`). Label Studio on sqlite has one
/// writer: with 8 uploads in flight, 10k images made it answer 500 "database is locked"; and
/// only the chunks in flight have their files read into memory.
const UPLOAD_REQUESTS_IN_FLIGHT: usize = 4;
/// Tasks per import request (1000 tasks import in ~2 s).
const IMPORT_CHUNK: usize = 1000;
/// Tasks asked for by id in one request (keeps the query string short).
const SELECT_CHUNK: usize = 100;
/// Tasks per page when listing without annotations (`include=` keeps such a page cheap:
/// 1000 tasks in ~0.4 s on 1.23.2, where the full task takes ~2.7 s).
const PAGE_SIZE: usize = 1000;
/// What a listing without annotations asks for: all that batches, status and adoption read
/// (`meta` is a third of the page's server time, and only downloads read it).
const LISTING_FIELDS: &str = "id,data,is_labeled,updated_at";
/// Tasks per page when downloading annotations (`fields=all`): 1000-task pages cost the same
/// server time as ten 100-task ones, but a 100-task page holds a tenth of the memory.
const DOWNLOAD_PAGE_SIZE: usize = 100;
/// Download pages in flight at once (within `--parallelism`): Label Studio's server answers
/// them largely one at a time (a no-op plan of 1000 tasks took 4.4-5.4 s with 1, 2 or 4 in
/// flight), and each page in flight holds a few MB (peak RSS 38 / 40 / 40-48 MB).
const DOWNLOAD_PAGES_IN_FLIGHT: usize = 2;
/// The prediction model version marking what annoform uploaded.
const MODEL_VERSION: &str = "annoform";
/// Refresh an access token this long before it expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(30);

/// How requests authenticate.
enum Auth {
    /// A legacy token, sent as a default header of the HTTP client.
    Legacy,
    /// A personal access token (JWT refresh token) and the current access token.
    Jwt {
        refresh: String,
        access: tokio::sync::Mutex<Option<(String, u64)>>,
    },
}

/// A Label Studio server.
pub struct LabelStudioBackend {
    http: HttpClient,
    auth: Auth,
    rt: tokio::runtime::Runtime,
    /// The server's local-files document root (`LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT`).
    local_files_root: Option<PathBuf>,
    /// Field types per project id, as given to `create_project`/`update_schema` or found.
    schemas: HashMap<String, ResolvedSchema>,
    /// The last task listing, reused by read-only calls until this client changes the project
    /// (a plan asks for tasks and status in turn: one listing answers both).
    listing: Option<Listing>,
}

/// One project's tasks grouped by batch, as last listed (without annotations).
struct Listing {
    project: String,
    batches: std::sync::Arc<IndexMap<String, Vec<Value>>>,
}

/// When a task last changed, normalised so that strings order as times do (Django writes
/// `2026-11-22T06:33:16.478748Z`, and drops the fraction when it is zero).
fn updated_at(task: &Value) -> Option<String> {
    let s = task.get("updated_at")?.as_str()?;
    let s = s.strip_suffix('Z').or_else(|| s.strip_suffix("+00:00"))?;
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    (secs.len() == 19 && frac.len() <= 9 && frac.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("{secs}.{frac:0<9}Z"))
}

/// One page of a task listing.
struct TasksPage {
    tasks: Vec<Value>,
    /// No page follows.
    last: bool,
    /// The project's task count as the server reported it.
    total: Option<u64>,
}

/// The annoform batch a task belongs to.
fn batch_of(task: &Value) -> Option<&str> {
    task.get("data")?.get("annoform_batch")?.as_str()
}

/// Seconds since the epoch.
fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The payload of a JWT, if `token` is one.
fn jwt_payload(token: &str) -> Option<Value> {
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Whether `key` is a personal access token (a JWT refresh token).
pub fn is_personal_access_token(key: &str) -> bool {
    jwt_payload(key).is_some_and(|p| p.get("token_type").and_then(Value::as_str) == Some("refresh"))
}

/// A `data.*` equality filter for `GET /api/tasks?query=...`.
fn data_filter(key: &str, value: &str) -> String {
    json!({"filters": {"conjunction": "and", "items": [{
        "filter": format!("filter:tasks:data.{key}"), "operator": "equal",
        "type": "String", "value": value}]}})
    .to_string()
}

/// Percent-encodes a path for `/data/local-files/?d=` (keeps `/`).
fn encode_path(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for b in p.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(char::from(b));
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The field types (and mask targets) a download needs, as kept in task meta.
fn fields_meta(schema: &ResolvedSchema) -> Value {
    Value::Object(
        schema
            .fields
            .iter()
            .map(|(name, f)| {
                let mut m = json!({ "type": f.label_type });
                if let Some(t) = &f.mask_targets {
                    m["mask_targets"] = json!(t);
                }
                (name.clone(), m)
            })
            .collect(),
    )
}

/// A `ResolvedField` good enough for conversions, from task meta.
fn field_from_meta(v: &Value) -> Option<ResolvedField> {
    let label_type: LabelType = serde_json::from_value(v.get("type")?.clone()).ok()?;
    Some(ResolvedField {
        label_type,
        existing: true,
        classes: Vec::new(),
        attributes: IndexMap::new(),
        class_attributes: IndexMap::new(),
        mask_targets: v
            .get("mask_targets")
            .and_then(|t| serde_json::from_value(t.clone()).ok()),
        restrictions: Restrictions::default(),
    })
}

/// The id of a JSON object as a string (Label Studio ids are integers).
fn id_str(v: &Value) -> Option<String> {
    match v.get("id")? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

impl LabelStudioBackend {
    /// A client for the server at `url`, authenticating with `api_key` (a secret: it only
    /// ever appears redacted).
    pub fn new(
        name: &str,
        url: &str,
        api_key: &str,
        local_files_root: Option<PathBuf>,
        policy: HttpPolicy,
    ) -> Result<Self, BackendError> {
        let err = |message: String| BackendError {
            backend: name.to_string(),
            message,
        };
        if api_key.is_empty() {
            return Err(err(
                "no API key: set ANNOFORM_LABELSTUDIO_API_KEY (or api_key = \"${env:NAME}\")"
                    .into(),
            ));
        }
        let http = HttpClient::new(name, url, policy, vec![api_key.to_string()])
            .map_err(|e| err(e.to_string()))?;
        let (http, auth) = if is_personal_access_token(api_key) {
            let auth = Auth::Jwt {
                refresh: api_key.to_string(),
                access: tokio::sync::Mutex::new(None),
            };
            (http, auth)
        } else {
            let http = http
                .with_header("Authorization", &format!("Token {api_key}"), true)
                .map_err(|e| err(e.to_string()))?;
            (http, Auth::Legacy)
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| err(format!("cannot start the async runtime: {e}")))?;
        Ok(LabelStudioBackend {
            http,
            auth,
            rt,
            local_files_root,
            schemas: HashMap::new(),
            listing: None,
        })
    }

    fn error(&self, message: impl Into<String>) -> BackendError {
        BackendError {
            backend: self.http.server().to_string(),
            message: self.http.redact(&message.into()),
        }
    }

    fn http_error(&self, e: HttpError) -> BackendError {
        // A refused key is a setup problem, not a server failure: say what to set, without
        // the server's JSON.
        if let HttpError::Status {
            endpoint, status, ..
        } = &e
            && *status == reqwest::StatusCode::UNAUTHORIZED
        {
            return self.error(format!(
                "the server at {} refused the API key ({} {}: HTTP 401): set `api_key` under \
                 [backends.labelstudio] in annoform.toml, or ANNOFORM_LABELSTUDIO_API_KEY, to a \
                 token of that server (Account & Settings: a personal access token or, if the \
                 organization allows it, a legacy token)",
                endpoint.base_url, endpoint.method, endpoint.path
            ));
        }
        self.error(e.to_string())
    }

    /// The `Authorization` header for JWT auth (legacy tokens are a default header).
    async fn bearer(&self, force: bool) -> Result<Option<String>, HttpError> {
        let Auth::Jwt { refresh, access } = &self.auth else {
            return Ok(None);
        };
        let mut access = access.lock().await;
        let fresh = access
            .as_ref()
            .is_some_and(|(_, exp)| *exp > now_secs() + REFRESH_MARGIN.as_secs());
        if force || !fresh {
            #[derive(serde::Deserialize)]
            struct Access {
                access: String,
            }
            let body = json!({ "refresh": refresh });
            let got: Access = self
                .http
                .send_json(Method::POST, "/api/token/refresh/", true, |r| r.json(&body))
                .await?;
            let exp = jwt_payload(&got.access)
                .and_then(|p| p.get("exp").and_then(Value::as_u64))
                .unwrap_or_else(|| now_secs() + 60);
            *access = Some((got.access, exp));
        }
        Ok(access.as_ref().map(|(a, _)| format!("Bearer {a}")))
    }

    /// One JSON request with auth; a 401 under JWT auth refreshes the token and tries again
    /// (the server did not act on a request it refused).
    async fn call<B: serde::Serialize + Sync + ?Sized>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<Value, HttpError> {
        let idempotent = super::http::is_idempotent(&method);
        let mut force = false;
        loop {
            let bearer = self.bearer(force).await?;
            let build = |mut r: reqwest::RequestBuilder| {
                if let Some(b) = &bearer {
                    r = r.header(AUTHORIZATION, b);
                }
                if !query.is_empty() {
                    r = r.query(query);
                }
                if let Some(b) = body {
                    r = r.json(b);
                }
                r
            };
            let out = if method == Method::DELETE {
                match self.http.send(method.clone(), path, true, build).await {
                    Ok(_) => Ok(Value::Null),
                    Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => Ok(Value::Null),
                    Err(e) => Err(e),
                }
            } else {
                self.http
                    .send_json::<Value>(method.clone(), path, idempotent, build)
                    .await
            };
            match out {
                Err(e)
                    if !force
                        && bearer.is_some()
                        && e.status() == Some(reqwest::StatusCode::UNAUTHORIZED) =>
                {
                    force = true;
                }
                other => return other,
            }
        }
    }

    /// The project's tasks by batch (without annotations): the cached listing of this
    /// project, else a fresh one.
    fn listing(
        &mut self,
        project: &str,
    ) -> Result<std::sync::Arc<IndexMap<String, Vec<Value>>>, BackendError> {
        if let Some(l) = self.listing.as_ref().filter(|l| l.project == project) {
            return Ok(l.batches.clone());
        }
        let batches = self
            .rt
            .block_on(self.batches(project))
            .map_err(|e| self.http_error(e))?;
        let batches = std::sync::Arc::new(batches);
        self.listing = Some(Listing {
            project: project.to_string(),
            batches: batches.clone(),
        });
        Ok(batches)
    }

    async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, HttpError> {
        self.call(Method::GET, path, query, None::<&Value>).await
    }

    /// Every task of a project (optionally filtered), page by page.
    async fn tasks(
        &self,
        project: &str,
        all_fields: bool,
        filter: Option<String>,
    ) -> Result<Vec<Value>, HttpError> {
        let mut out = Vec::new();
        let mut page = 1;
        loop {
            let p = self
                .tasks_page(project, page, PAGE_SIZE, all_fields, filter.as_deref())
                .await?;
            out.extend(p.tasks);
            if p.last {
                return Ok(out);
            }
            page += 1;
        }
    }

    /// One page of a project's tasks; a page past the end is a 404, which ends the listing
    /// as well as a short page does. Without `all_fields` only [`LISTING_FIELDS`] are asked
    /// for.
    async fn tasks_page(
        &self,
        project: &str,
        page: usize,
        page_size: usize,
        all_fields: bool,
        filter: Option<&str>,
    ) -> Result<TasksPage, HttpError> {
        let mut q = vec![
            ("project", project.to_string()),
            ("page", page.to_string()),
            ("page_size", page_size.to_string()),
        ];
        if all_fields {
            q.push(("fields", "all".into()));
        } else {
            q.push(("include", LISTING_FIELDS.into()));
        }
        if let Some(f) = filter {
            q.push(("query", f.to_string()));
        }
        let mut v = match self.get("/api/tasks", &q).await {
            Ok(v) => v,
            Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) && page > 1 => {
                return Ok(TasksPage {
                    tasks: Vec::new(),
                    last: true,
                    total: None,
                });
            }
            Err(e) => return Err(e),
        };
        let tasks = match v.get_mut("tasks").map(Value::take) {
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        };
        let total = v.get("total").and_then(Value::as_u64);
        let last = tasks.len() < page_size
            || total.is_some_and(|t| ((page - 1) * page_size + tasks.len()) as u64 >= t);
        Ok(TasksPage { tasks, last, total })
    }

    /// Every task of the `wanted` batches with its annotations.
    fn download_all(
        &self,
        project: &str,
        wanted: &HashSet<&str>,
        sink: &mut PageSink<'_>,
    ) -> Result<(), BackendError> {
        // Page by page with annotations (`fields=all`): the first page says how many follow;
        // those are fetched a few at a time and handed on in order, each converted and
        // dropped, so memory follows the pages in flight, not the project.
        let mut handle = |this: &Self, page: TasksPage| {
            let out: Annotations = page
                .tasks
                .iter()
                .filter(|t| batch_of(t).is_some_and(|b| wanted.contains(b)))
                .filter_map(|t| this.task_labels(t))
                .collect();
            if out.is_empty() { Ok(()) } else { sink(out) }
        };
        let this = self;
        let first = this
            .rt
            .block_on(this.tasks_page(project, 1, DOWNLOAD_PAGE_SIZE, true, None))
            .map_err(|e| this.http_error(e))?;
        let (last, total) = (first.last, first.total);
        handle(this, first)?;
        if last {
            return Ok(());
        }
        // Pages the first one announced, a few in flight at once, in order.
        let pages = total.map_or(1, |t| (t as usize).div_ceil(DOWNLOAD_PAGE_SIZE));
        let in_flight = this
            .http
            .policy()
            .parallelism
            .clamp(1, DOWNLOAD_PAGES_IN_FLIGHT);
        let mut rest = futures_util::stream::iter(2..=pages)
            .map(|page| this.tasks_page(project, page, DOWNLOAD_PAGE_SIZE, true, None))
            .buffered(in_flight);
        let mut last = false;
        while let Some(page) = this.rt.block_on(rest.next()) {
            let page = page.map_err(|e| this.http_error(e))?;
            last = page.last;
            handle(this, page)?;
        }
        // Tasks added meanwhile (or no total given): on, one page at a time.
        let mut page = pages.max(1) + 1;
        while !last {
            let p = this
                .rt
                .block_on(this.tasks_page(project, page, DOWNLOAD_PAGE_SIZE, true, None))
                .map_err(|e| this.http_error(e))?;
            last = p.last;
            handle(this, p)?;
            page += 1;
        }
        Ok(())
    }

    /// Our tasks grouped by batch name.
    async fn batches(&self, project: &str) -> Result<IndexMap<String, Vec<Value>>, HttpError> {
        let mut out: IndexMap<String, Vec<Value>> = IndexMap::new();
        for t in self.tasks(project, false, None).await? {
            if let Some(b) = batch_of(&t) {
                out.entry(b.to_string()).or_default().push(t);
            }
        }
        Ok(out)
    }

    /// The local-files URL of `media` when the server serves it, with the storage directory
    /// it needs (a strict subdirectory of the document root).
    fn local_file(&self, media: &Path) -> Option<(String, PathBuf)> {
        let root = self.local_files_root.as_ref()?;
        // Media of a workspace opened by a relative path are relative too; the root is not.
        let media = &std::path::absolute(media).ok()?;
        let rel = media.strip_prefix(root).ok()?;
        let dir = media.parent()?;
        if dir == root.as_path() || !dir.starts_with(root) {
            return None;
        }
        let rel = rel.to_str()?;
        Some((
            format!("/data/local-files/?d={}", encode_path(rel)),
            dir.to_path_buf(),
        ))
    }

    /// Make sure a local-files storage of `project` covers `dir`.
    async fn ensure_storage(&self, project: &str, dirs: &[PathBuf]) -> Result<(), HttpError> {
        let existing = self
            .get(
                "/api/storages/localfiles",
                &[("project", project.to_string())],
            )
            .await?;
        let have: Vec<PathBuf> = existing
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.get("path").and_then(Value::as_str).map(PathBuf::from))
                    .collect()
            })
            .unwrap_or_default();
        for dir in dirs {
            if have.iter().any(|h| dir.starts_with(h)) {
                continue;
            }
            let id = project
                .parse::<u64>()
                .map_or_else(|_| json!(project), |n| json!(n));
            let body = json!({"project": id,
                "title": format!("annoform {}", dir.display()), "path": dir.display().to_string(),
                "use_blob_urls": false, "recursive_scan": true});
            self.call(Method::POST, "/api/storages/localfiles", &[], Some(&body))
                .await?;
        }
        Ok(())
    }

    /// Upload `files` (sample id, path) to `project`; returns sample id → `/data/upload/...`.
    async fn upload(
        &self,
        project: &str,
        files: &[(String, PathBuf)],
    ) -> Result<BTreeMap<String, String>, BackendError> {
        let chunks = files.chunks(UPLOAD_CHUNK).map(|chunk| async move {
            // Each file is sent as `<sample id><ext>`, so the stored name (`<uuid>-<name>`)
            // maps back to its sample whatever the original names.
            let mut parts = Vec::with_capacity(chunk.len());
            for (sid, path) in chunk {
                let bytes = tokio::fs::read(path)
                    .await
                    .map_err(|e| self.error(format!("cannot read {}: {e}", path.display())))?;
                let ext = path
                    .extension()
                    .and_then(|e| e.to_str())
                    .map_or(String::new(), |e| format!(".{e}"));
                parts.push((format!("{sid}{ext}"), bytes));
            }
            let path = format!("/api/projects/{project}/import");
            let bearer = self.bearer(false).await.map_err(|e| self.http_error(e))?;
            let v: Value = self
                .http
                .send_json(Method::POST, &path, false, |mut r| {
                    let mut form = reqwest::multipart::Form::new();
                    for (name, bytes) in &parts {
                        form = form.part(
                            name.clone(),
                            reqwest::multipart::Part::bytes(bytes.clone()).file_name(name.clone()),
                        );
                    }
                    if let Some(b) = &bearer {
                        r = r.header(AUTHORIZATION, b);
                    }
                    r.query(&[("commit_to_project", "false")]).multipart(form)
                })
                .await
                .map_err(|e| self.http_error(e))?;
            let ids: Vec<u64> = v
                .get("file_upload_ids")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default();
            let listed = self
                .get(
                    &format!("/api/projects/{project}/file-uploads"),
                    &[("ids", json!(ids).to_string())],
                )
                .await
                .map_err(|e| self.http_error(e))?;
            let mut out = Vec::new();
            for f in listed.as_array().into_iter().flatten() {
                let Some(file) = f.get("file").and_then(Value::as_str) else {
                    continue;
                };
                let stored = file.rsplit('/').next().unwrap_or(file);
                if let Some((sid, _)) = chunk.iter().find(|(sid, p)| {
                    let ext = p
                        .extension()
                        .and_then(|e| e.to_str())
                        .map_or(String::new(), |e| format!(".{e}"));
                    stored.ends_with(&format!("-{sid}{ext}"))
                }) {
                    out.push((sid.clone(), format!("/data/{file}")));
                }
            }
            Ok::<_, BackendError>(out)
        });
        let mut map = BTreeMap::new();
        let mut done = futures_util::stream::iter(chunks).buffer_unordered(
            self.http
                .policy()
                .parallelism
                .clamp(1, UPLOAD_REQUESTS_IN_FLIGHT),
        );
        while let Some(chunk) = done.next().await {
            map.extend(chunk?);
        }
        if let Some((sid, path)) = files.iter().find(|(sid, _)| !map.contains_key(sid)) {
            return Err(self.error(format!(
                "upload of {} (sample {sid}) is missing from the server's file list",
                path.display()
            )));
        }
        Ok(map)
    }

    async fn create_task_async(
        &self,
        project: &RemoteProject,
        task: &TaskSpec,
        schema: &ResolvedSchema,
    ) -> Result<(), BackendError> {
        let pid = project.id.as_str();
        // An import interrupted half-way left some of the batch: create only the rest.
        let present: Vec<String> = self
            .tasks(pid, false, Some(data_filter("annoform_batch", &task.name)))
            .await
            .map_err(|e| self.http_error(e))?
            .iter()
            .filter_map(|t| Some(t.get("data")?.get("sample_id")?.as_str()?.to_string()))
            .collect();
        let todo: Vec<&TaskSample> = task
            .samples
            .iter()
            .filter(|s| !present.contains(&s.sample_id))
            .collect();
        if todo.is_empty() {
            return Ok(());
        }
        let mut media: BTreeMap<String, String> = BTreeMap::new();
        let mut dirs: Vec<PathBuf> = Vec::new();
        let mut uploads: Vec<(String, PathBuf)> = Vec::new();
        for s in &todo {
            let path = PathBuf::from(&s.media);
            match self.local_file(&path) {
                Some((url, dir)) => {
                    media.insert(s.sample_id.clone(), url);
                    if !dirs.contains(&dir) {
                        dirs.push(dir);
                    }
                }
                None => uploads.push((s.sample_id.clone(), path)),
            }
        }
        if !dirs.is_empty() {
            // Nested directories need only their outermost storage.
            dirs.sort();
            let mut outer: Vec<PathBuf> = Vec::new();
            for d in dirs {
                if !outer.iter().any(|o| d.starts_with(o)) {
                    outer.push(d);
                }
            }
            self.ensure_storage(pid, &outer)
                .await
                .map_err(|e| self.http_error(e))?;
        }
        if !uploads.is_empty() {
            media.extend(self.upload(pid, &uploads).await?);
        }
        // Each task is kept as its JSON text: a parsed `Value` of 1000 tasks with predictions
        // weighs several times its text, and the request needs only the text.
        let mut payload: Vec<Box<serde_json::value::RawValue>> = Vec::with_capacity(todo.len());
        for s in &todo {
            let size = match (s.width, s.height) {
                (Some(w), Some(h)) => ImageSize {
                    width: w,
                    height: h,
                },
                _ => {
                    let d = imagesize::size(&s.media).map_err(|e| {
                        self.error(format!("cannot read the size of {}: {e}", s.media))
                    })?;
                    ImageSize {
                        width: d.width as u32,
                        height: d.height as u32,
                    }
                }
            };
            let mut result = Vec::new();
            let mut hidden = serde_json::Map::new();
            for (field, labels) in &s.labels {
                let Some(f) = schema.fields.get(field) else {
                    continue;
                };
                let c = convert::to_results(field, f, labels, size)
                    .map_err(|e| self.error(format!("sample {}: {e}", s.sample_id)))?;
                result.extend(c.results);
                if !c.hidden.is_empty() {
                    hidden.insert(field.clone(), Value::Array(c.hidden));
                }
            }
            let image = media
                .get(&s.sample_id)
                .ok_or_else(|| self.error(format!("no media URL for sample {}", s.sample_id)))?;
            let mut t = json!({
                "data": {"image": image, "sample_id": s.sample_id,
                         "annoform_batch": task.name},
                "meta": {"annoform": {"fields": fields_meta(schema), "hidden": hidden,
                                      "width": size.width, "height": size.height}},
            });
            if !result.is_empty() {
                t["predictions"] = json!([{ "model_version": MODEL_VERSION, "result": result }]);
            }
            payload.push(
                serde_json::value::to_raw_value(&t)
                    .map_err(|e| self.error(format!("sample {}: {e}", s.sample_id)))?,
            );
        }
        let path = format!("/api/projects/{pid}/import");
        for chunk in payload.chunks(IMPORT_CHUNK) {
            self.call(
                Method::POST,
                &path,
                &[("return_task_ids", "true".into())],
                Some(chunk),
            )
            .await
            .map_err(|e| self.http_error(e))?;
        }
        Ok(())
    }

    /// The field types of `project`: known from this process, else as our tasks recorded
    /// them, else read from the labeling config (where brushes and polygons are ambiguous:
    /// the task's own labels decide).
    fn schema_for(
        &mut self,
        project: &RemoteProject,
        task: &TaskSpec,
    ) -> Result<ResolvedSchema, BackendError> {
        if let Some(s) = self.schemas.get(&project.id) {
            return Ok(s.clone());
        }
        let (tasks, config) = self
            .rt
            .block_on(async {
                let q = [
                    ("project", project.id.clone()),
                    ("page", "1".to_string()),
                    ("page_size", "1".to_string()),
                ];
                let tasks = self.get("/api/tasks", &q).await?;
                let p = self
                    .get(&format!("/api/projects/{}", project.id), &[])
                    .await?;
                Ok::<_, HttpError>((tasks, p))
            })
            .map_err(|e| self.http_error(e))?;
        let from_tasks = tasks
            .get("tasks")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .map(Self::task_fields)
            .unwrap_or_default();
        let fields = if from_tasks.is_empty() {
            let xml = config
                .get("label_config")
                .and_then(Value::as_str)
                .unwrap_or_default();
            config::fields_of(xml, task)
        } else {
            from_tasks
        };
        let schema = ResolvedSchema { fields };
        self.schemas.insert(project.id.clone(), schema.clone());
        Ok(schema)
    }

    /// The project's schema as a task recorded it.
    fn task_fields(task: &Value) -> IndexMap<String, ResolvedField> {
        task.get("meta")
            .and_then(|m| m.get("annoform"))
            .and_then(|a| a.get("fields"))
            .and_then(Value::as_object)
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| Some((k.clone(), field_from_meta(v)?)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One task's labels: the newest annotation (largest `updated_at`, cancelled ones
    /// skipped), or what we uploaded while nobody has annotated it.
    fn task_labels(
        &self,
        task: &Value,
    ) -> Option<(String, IndexMap<String, Vec<DownloadedLabel>>)> {
        let sid = task.get("data")?.get("sample_id")?.as_str()?.to_string();
        let meta = task.get("meta").and_then(|m| m.get("annoform"));
        let dim = |k: &str| meta.and_then(|m| m.get(k)).and_then(Value::as_u64);
        let prior: Vec<Value> = task
            .get("predictions")
            .and_then(Value::as_array)
            .and_then(|ps| {
                ps.iter()
                    .find(|p| p.get("model_version").and_then(Value::as_str) == Some(MODEL_VERSION))
            })
            .and_then(|p| p.get("result")?.as_array().cloned())
            .unwrap_or_default();
        let newest = task
            .get("annotations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|a| a.get("was_cancelled").and_then(Value::as_bool) != Some(true))
            .max_by(|a, b| {
                let k = |x: &Value| {
                    x.get("updated_at")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                k(a).cmp(&k(b))
            });
        let results: Vec<Value> = match newest {
            Some(a) => a
                .get("result")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            None => prior.clone(),
        };
        // Results say their image size too; meta is the fallback for result-less tasks.
        let from_result = |k: &str| {
            results
                .iter()
                .find_map(|r| r.get(k).and_then(Value::as_u64))
        };
        let size = ImageSize {
            width: dim("width").or_else(|| from_result("original_width"))? as u32,
            height: dim("height").or_else(|| from_result("original_height"))? as u32,
        };
        let fields = Self::task_fields(task)
            .into_iter()
            .map(|(name, f)| {
                let mut labels = convert::from_results(&name, &f, &results, &prior, size);
                if let Some(h) = meta
                    .and_then(|m| m.get("hidden"))
                    .and_then(|h| h.get(&name))
                    .and_then(Value::as_array)
                {
                    labels.extend(convert::hidden_labels(h));
                }
                (name, labels)
            })
            .collect();
        Some((sid, fields))
    }
}

impl Backend for LabelStudioBackend {
    fn capabilities(&self) -> &Capabilities {
        BackendKind::Labelstudio.capabilities()
    }

    fn find_project(&mut self, name: &str) -> Result<Option<RemoteProject>, BackendError> {
        let this = &*self;
        this.rt.block_on(async {
            let mut page = 1;
            loop {
                let v = match this
                    .get(
                        "/api/projects",
                        &[
                            ("title", name.to_string()),
                            ("page_size", "100".into()),
                            ("page", page.to_string()),
                        ],
                    )
                    .await
                {
                    Ok(v) => v,
                    Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => {
                        return Ok(None);
                    }
                    Err(e) => return Err(this.http_error(e)),
                };
                // `title` filters by substring: the exact title is ours.
                let results = v.get("results").and_then(Value::as_array);
                if let Some(p) = results
                    .into_iter()
                    .flatten()
                    .find(|p| p.get("title").and_then(Value::as_str) == Some(name))
                {
                    let id = id_str(p).ok_or_else(|| this.error("a project without id"))?;
                    return Ok(Some(RemoteProject {
                        url: Some(this.http.url(&format!("/projects/{id}"))),
                        id,
                        name: name.to_string(),
                    }));
                }
                if v.get("next").is_none_or(Value::is_null) {
                    return Ok(None);
                }
                page += 1;
            }
        })
    }

    fn create_project(&mut self, spec: &ProjectSpec) -> Result<RemoteProject, BackendError> {
        if let Some(root) = spec.config.get("local_files_root").and_then(Value::as_str) {
            self.local_files_root = Some(PathBuf::from(root));
        }
        let xml = config::labeling_config(&spec.schema).map_err(|e| self.error(e.to_string()))?;
        let body = json!({"title": spec.name, "label_config": xml,
            "description": "Managed by annoform: changes to the labeling setup are overwritten by `annoform apply`."});
        let v = self
            .rt
            .block_on(self.call(Method::POST, "/api/projects", &[], Some(&body)))
            .map_err(|e| self.http_error(e))?;
        let id = id_str(&v).ok_or_else(|| self.error("the created project has no id"))?;
        self.schemas.insert(id.clone(), spec.schema.clone());
        Ok(RemoteProject {
            url: Some(self.http.url(&format!("/projects/{id}"))),
            id,
            name: spec.name.clone(),
        })
    }

    fn list_tasks(&mut self, project: &RemoteProject) -> Result<Vec<RemoteTask>, BackendError> {
        let batches = self.listing(&project.id)?;
        Ok(batches
            .keys()
            .cloned()
            .map(|name| RemoteTask {
                id: name.clone(),
                name,
            })
            .collect())
    }

    fn create_task(
        &mut self,
        project: &RemoteProject,
        task: &TaskSpec,
    ) -> Result<RemoteTask, BackendError> {
        let schema = self.schema_for(project, task)?;
        self.listing = None;
        self.rt
            .block_on(self.create_task_async(project, task, &schema))?;
        Ok(RemoteTask {
            id: task.name.clone(),
            name: task.name.clone(),
        })
    }

    fn update_schema(
        &mut self,
        project: &RemoteProject,
        schema: &ResolvedSchema,
    ) -> Result<(), BackendError> {
        let xml = config::labeling_config(schema).map_err(|e| self.error(e.to_string()))?;
        let path = format!("/api/projects/{}", project.id);
        self.rt
            .block_on(self.call(
                Method::PATCH,
                &path,
                &[],
                Some(&json!({ "label_config": xml })),
            ))
            .map_err(|e| self.http_error(e))?;
        self.schemas.insert(project.id.clone(), schema.clone());
        Ok(())
    }

    fn status(
        &mut self,
        project: &RemoteProject,
        tasks: &[String],
    ) -> Result<Vec<TaskStatus>, BackendError> {
        let batches = self.listing(&project.id)?;
        Ok(tasks
            .iter()
            .filter_map(|name| {
                let ts = batches.get(name)?;
                let labeled = ts
                    .iter()
                    .filter(|t| t.get("is_labeled").and_then(Value::as_bool) == Some(true))
                    .count();
                Some(TaskStatus {
                    id: name.clone(),
                    status: format!("{labeled}/{} labeled", ts.len()),
                    complete: !ts.is_empty() && labeled == ts.len(),
                })
            })
            .collect())
    }

    fn download(
        &mut self,
        project: &RemoteProject,
        tasks: &[String],
        since: Option<&str>,
        sink: &mut PageSink<'_>,
    ) -> Result<Option<String>, BackendError> {
        // Label Studio moves a task's `updated_at` whenever one of its annotations is created,
        // changed or deleted: the latest one is the cursor, and a refresh after a merge asks
        // only for the tasks updated since.
        let listing = self.listing(&project.id)?;
        let wanted: HashSet<&str> = tasks.iter().map(String::as_str).collect();
        let ours = || {
            listing
                .iter()
                .filter(|(b, _)| wanted.contains(b.as_str()))
                .flat_map(|(_, ts)| ts)
        };
        let cursor = ours().filter_map(updated_at).max();
        match since {
            None => self.download_all(&project.id, &wanted, sink)?,
            Some(since) => {
                let changed: Vec<u64> = ours()
                    .filter(|t| updated_at(t).is_none_or(|u| u.as_str() > since))
                    .filter_map(|t| t.get("id").and_then(Value::as_u64))
                    .collect();
                for ids in changed.chunks(SELECT_CHUNK) {
                    let query = json!({"selectedItems": {"all": false, "included": ids}});
                    let page = self
                        .rt
                        .block_on(self.tasks_page(
                            &project.id,
                            1,
                            SELECT_CHUNK,
                            true,
                            Some(&query.to_string()),
                        ))
                        .map_err(|e| self.http_error(e))?;
                    let out: Annotations = page
                        .tasks
                        .iter()
                        .filter_map(|t| self.task_labels(t))
                        .collect();
                    drop(page);
                    sink(out)?;
                }
            }
        }
        Ok(cursor)
    }

    fn delete_project(&mut self, project: &RemoteProject) -> Result<(), BackendError> {
        self.listing = None;
        let path = format!("/api/projects/{}", project.id);
        self.rt
            .block_on(self.call(Method::DELETE, &path, &[], None::<&Value>))
            .map_err(|e| self.http_error(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_times_order_as_strings() {
        let at = |s: &str| updated_at(&json!({ "updated_at": s }));
        let whole = at("2026-11-22T06:33:16Z").unwrap();
        let later = at("2026-11-22T06:33:16.478748Z").unwrap();
        assert_eq!(later, "2026-11-22T06:33:16.478748000Z");
        assert!(whole < later, "{whole} < {later}");
        assert!(later < at("2026-11-22T06:33:17+00:00").unwrap());
        // Another time zone: no cursor (every download is then complete).
        assert_eq!(at("2026-11-22T07:33:16.1+01:00"), None);
    }

    #[test]
    fn personal_access_tokens_are_refresh_jwts() {
        // A real token made by Label Studio 1.23.2 (`POST /api/token/`) on a throw-away server.
        let pat = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoicmVmcmVzaCIsImV4cCI6ODEwMjUyMzYwNywiaWF0IjoxNzk1MzIzNjA3LCJqdGkiOiI3OGI4MWVkYTljNzY0MDZmODM4ZGI3Zjk1MDk1ODZiZiIsInVzZXJfaWQiOiIxIn0.1PQKvknOe2O11IpAFv9jOomXHKfSACIqIwJP2JjbL3Q";
        assert!(is_personal_access_token(pat));
        assert!(!is_personal_access_token(
            "0123456789abcdef0123456789abcdef01234567"
        ));
        assert!(!is_personal_access_token("a.b.c"));
    }

    #[test]
    fn local_files_need_a_strict_subdirectory_of_the_root() {
        let b = LabelStudioBackend::new(
            "ls",
            "http://127.0.0.1:1",
            "tok-123456",
            Some(PathBuf::from("/srv/media")),
            HttpPolicy::default(),
        )
        .unwrap();
        assert_eq!(
            b.local_file(Path::new("/srv/media/ds/a b.png")),
            Some((
                "/data/local-files/?d=ds/a%20b.png".to_string(),
                PathBuf::from("/srv/media/ds")
            ))
        );
        assert_eq!(b.local_file(Path::new("/srv/media/top.png")), None);
        assert_eq!(b.local_file(Path::new("/elsewhere/x.png")), None);
        assert!(
            LabelStudioBackend::new("ls", "http://h", "", None, HttpPolicy::default()).is_err()
        );
    }
}
