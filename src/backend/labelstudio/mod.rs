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
mod tasks;

use super::base::{self, HttpBackend};
use super::http::{
    Endpoint, Escape, HttpClient, HttpError, HttpPolicy, answered_without, percent_encode,
};
use super::*;
use crate::backend::capabilities::LabelStudioConfig;
use crate::backend::settings::Settings;
use crate::dataset::FieldPath;
use crate::manifest::LabelType;
use crate::schema::{ResolvedField, Restrictions};
use base64::Engine as _;
use futures_util::StreamExt as _;
use reqwest::Method;
use reqwest::header::AUTHORIZATION;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tasks::{FullTask, ListedTask, Page, TaskId, normalised_time};

/// Files per upload request (Label Studio's default `DATA_UPLOAD_MAX_NUMBER_FILES`).
const UPLOAD_CHUNK: usize = 100;
/// Upload requests in flight at once (within `--parallelism`). Label Studio on sqlite has one
/// writer: with 8 uploads in flight, 10k images made it answer 500 "database is locked"; and
/// only the chunks in flight have their files read into memory.
const UPLOAD_REQUESTS_IN_FLIGHT: usize = 4;
/// Tasks per import request (1000 tasks import in ~2 s; smaller requests cost a create at
/// N = 1000 0.3-0.4 s more). The body is written task by task: about 2 MB per 1000 tasks.
const IMPORT_CHUNK: usize = 1000;
/// Tasks per page when listing without annotations (`include=` keeps such a page cheap:
/// 1000 tasks in ~0.4 s on 1.23.2, where the full task takes ~2.7 s).
const PAGE_SIZE: usize = 1000;
/// What a listing without annotations asks for: all that batches, status and adoption read
/// (`meta` is a third of the page's server time, and only downloads read it).
const LISTING_FIELDS: &str = "id,data,is_labeled,updated_at";
/// What a download asks for besides `fields=all` (which alone turns annotations and
/// predictions on). `include` is drf-flex-fields' sparse field set, and Label Studio 1.23.2
/// serializes each task's annotations with a serializer of their own that reads the same
/// request parameter: so `id`, `updated_at`, `result` and `was_cancelled` are what is kept of
/// an annotation (a task has no `result`), and predictions, serialized without the request,
/// come whole. Everything else of `fields=all` (drafts, annotators, the users who completed
/// annotations, the result digests for the data manager's columns) is left out: on 1.23.2 a
/// 100-task page then costs the server about half the CPU (0.22-0.25 s instead of 0.4-0.6 s)
/// and is 0.42 MB instead of 0.60 MB. It starts with `annotations` so that no download reads
/// as a listing (`include=id,...`) in a request log.
const DOWNLOAD_FIELDS: &str =
    "annotations,predictions,id,data,meta,updated_at,result,was_cancelled";
/// Tasks per page when downloading annotations (`fields=all`, asked for by id, which keeps the
/// query string short). Per task, 100-task pages cost the server less than 25-task ones (a
/// request's own cost) and less than 250-task ones (the id filter grows faster than the
/// page: 0.25 s for 100 tasks, 0.88 s for 250 on 1.23.2), and a 100-task page holds little
/// memory.
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
    /// Projects this client created: no earlier apply can have uploaded files to them.
    created: HashSet<String>,
    /// Task counts of projects as `find_project` read them with the project (no request of
    /// their own), until this client changes the project.
    counts: HashMap<String, Counts>,
    /// Per project, what the run's record holds of it (from `attach`).
    recorded: HashMap<String, Recorded>,
}

/// A project's task counts, as Label Studio reports them with the project.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
struct Counts {
    /// Tasks in the project.
    task_number: u64,
    /// Tasks labeled (`is_labeled`).
    finished_task_number: u64,
}

/// The batches a run's record holds in a project, each with its sample count (one Label
/// Studio task per sample).
struct Recorded {
    batches: Vec<(String, u64)>,
}

impl Recorded {
    fn samples(&self) -> u64 {
        self.batches.iter().map(|(_, n)| n).sum()
    }
}

/// One project's tasks grouped by batch, as last listed (without annotations).
struct Listing {
    project: String,
    batches: std::sync::Arc<IndexMap<String, Vec<ListedTask>>>,
}

/// A sample's labels as Label Studio takes them.
struct SampleResults {
    /// The image size the results are relative to.
    size: ImageSize,
    /// The labels Label Studio shows, as prediction results.
    result: Vec<Value>,
    /// Field → the labels Label Studio cannot show (kept in task meta).
    hidden: serde_json::Map<String, Value>,
}

/// One page of a task listing, checked to hold its list and total.
struct TasksPage<T> {
    tasks: Vec<T>,
    /// The task count (of the project, or of the filter) as the server reported it.
    total: u64,
    /// The request, as errors show it.
    path: String,
}

impl<T> TasksPage<T> {
    /// Checks page `n` (of `size` tasks) of a paged query whose first page reported `total`:
    /// it must report the same total (the tasks did not change while they were paged) and
    /// hold the tasks that total means for it.
    fn check(&self, n: usize, size: usize, total: u64) -> Result<(), Fault> {
        if self.total != total {
            return Err(Fault::incomplete(
                &self.path,
                format!(
                    "the tasks changed while they were paged ({total} task(s), then {})",
                    self.total
                ),
            ));
        }
        let expected = (total as usize).saturating_sub((n - 1) * size).min(size);
        if self.tasks.len() != expected {
            return Err(Fault::incomplete(
                &self.path,
                format!(
                    "the page holds {} task(s) where the server's total of {total} means {expected}",
                    self.tasks.len()
                ),
            ));
        }
        Ok(())
    }
}

/// Why a page of tasks cannot be used.
enum Fault {
    /// The request failed (the HTTP client has retried what it retries).
    Http(HttpError),
    /// The answer is short of what the server itself announced: fetched again.
    Incomplete { path: String, message: String },
}

impl Fault {
    fn incomplete(path: &str, message: impl Into<String>) -> Fault {
        Fault::Incomplete {
            path: path.to_string(),
            message: message.into(),
        }
    }
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

/// A filter for `GET /api/tasks?query=...`: the tasks updated after `cursor` (as
/// [`updated_at`] normalises it; Label Studio compares to the microsecond).
fn updated_after(cursor: &str) -> String {
    let (secs, frac) = cursor
        .trim_end_matches('Z')
        .split_once('.')
        .unwrap_or((cursor.trim_end_matches('Z'), ""));
    let micros: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
    json!({"filters": {"conjunction": "and", "items": [{
        "filter": "filter:tasks:updated_at", "operator": "greater",
        "type": "Datetime", "value": format!("{secs}.{micros}Z")}]}})
    .to_string()
}

/// The uploads of a file-upload listing that hold these files (sample id, path), as
/// (sample id, `/data/...`): each was sent as `<sample id><ext>` and stored as
/// `<uuid>-<sample id><ext>`.
fn stored_uploads(listed: &Value, files: &[(String, PathBuf)]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for f in listed.as_array().into_iter().flatten() {
        let Some(file) = f.get("file").and_then(Value::as_str) else {
            continue;
        };
        let stored = file.rsplit('/').next().unwrap_or(file);
        if let Some((sid, _)) = files.iter().find(|(sid, p)| {
            let ext = p
                .extension()
                .and_then(|e| e.to_str())
                .map_or(String::new(), |e| format!(".{e}"));
            stored.ends_with(&format!("-{sid}{ext}"))
        }) && !out.iter().any(|(s, _)| s == sid)
        {
            out.push((sid.clone(), format!("/data/{file}")));
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
                (name.to_string(), m)
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
        let err = |message: String| BackendError::new(name, message);
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
        let rt = base::runtime(name)?;
        Ok(LabelStudioBackend {
            http,
            auth,
            rt,
            local_files_root,
            schemas: HashMap::new(),
            listing: None,
            created: HashSet::new(),
            counts: HashMap::new(),
            recorded: HashMap::new(),
        })
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
    /// (A DELETE answers `T::default()`.)
    async fn call<T, B>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<T, HttpError>
    where
        T: serde::de::DeserializeOwned + Default,
        B: serde::Serialize + Sync + ?Sized,
    {
        self.call_with(method, path, base::with_json(query, body))
            .await
    }

    /// [`call`](Self::call) of a request that `request` completes (query, body).
    async fn call_with<T>(
        &self,
        method: Method,
        path: &str,
        request: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder + Sync,
    ) -> Result<T, HttpError>
    where
        T: serde::de::DeserializeOwned + Default,
    {
        let idempotent = super::http::is_idempotent(&method);
        let mut force = false;
        loop {
            let bearer = self.bearer(force).await?;
            let build = |mut r: reqwest::RequestBuilder| {
                if let Some(b) = &bearer {
                    r = r.header(AUTHORIZATION, b);
                }
                request(r)
            };
            let out = if method == Method::DELETE {
                match self.http.send(method.clone(), path, true, build).await {
                    Ok(_) => Ok(T::default()),
                    Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => {
                        Ok(T::default())
                    }
                    Err(e) => Err(e),
                }
            } else {
                self.http
                    .send_json::<T>(method.clone(), path, idempotent, build)
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

    /// Forget what this client knows of its projects' tasks: it is changing them.
    fn changing(&mut self) {
        self.listing = None;
        self.counts.clear();
    }

    /// The project's counts when they show that it holds exactly the tasks its record knows
    /// (one per recorded sample): drift, status and what changed are then answered without
    /// listing every task. (A task deleted and another added outside annoform in between go
    /// unnoticed until the counts differ; counts never make a label deleted: deletions need a
    /// downloaded task.)
    fn whole(&self, project: &str) -> Option<Counts> {
        let c = self.counts.get(project)?;
        let r = self.recorded.get(project)?;
        (c.task_number == r.samples()).then_some(*c)
    }

    /// The project's tasks by batch (without annotations): the cached listing of this
    /// project, else a fresh one.
    fn listing(
        &mut self,
        project: &str,
    ) -> Result<std::sync::Arc<IndexMap<String, Vec<ListedTask>>>, BackendError> {
        if let Some(l) = self.listing.as_ref().filter(|l| l.project == project) {
            return Ok(l.batches.clone());
        }
        let batches = self.run(self.batches(project))?;
        let batches = std::sync::Arc::new(batches);
        self.listing = Some(Listing {
            project: project.to_string(),
            batches: batches.clone(),
        });
        Ok(batches)
    }

    async fn get<T: serde::de::DeserializeOwned + Default>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, HttpError> {
        self.call(Method::GET, path, query, None::<&Value>).await
    }

    /// Every task of a project (optionally filtered), verified complete: the pages must add
    /// up to the `total` the server announces on each of them. A short, missing (404) or
    /// inconsistent page is never the end of the listing: the listing is fetched again, with
    /// the HTTP policy's retries and backoff, and then fails. Without `all_fields` only
    /// [`LISTING_FIELDS`] are asked for.
    async fn tasks<T: serde::de::DeserializeOwned + TaskId>(
        &self,
        project: &str,
        all_fields: bool,
        filter: Option<String>,
    ) -> Result<Vec<T>, HttpError> {
        let filter = filter.as_deref();
        self.until_complete(|| self.tasks_once(project, all_fields, filter))
            .await
    }

    /// One attempt at [`Self::tasks`].
    async fn tasks_once<T: serde::de::DeserializeOwned + TaskId>(
        &self,
        project: &str,
        all_fields: bool,
        filter: Option<&str>,
    ) -> Result<Vec<T>, Fault> {
        let page = |n| self.tasks_page(project, n, PAGE_SIZE, all_fields, filter);
        let first: TasksPage<T> = page(1).await?;
        let total = first.total;
        first.check(1, PAGE_SIZE, total)?;
        let mut out = first.tasks;
        for n in 2..=(total as usize).div_ceil(PAGE_SIZE) {
            let p = page(n).await?;
            p.check(n, PAGE_SIZE, total)?;
            out.extend(p.tasks);
        }
        let ids: HashSet<Option<u64>> = out.iter().map(TaskId::task_id).collect();
        if out.len() as u64 != total || ids.len() != out.len() {
            return Err(Fault::incomplete(
                &first.path,
                format!(
                    "the pages hold {} task(s) ({} distinct) where the server counts {total}",
                    out.len(),
                    ids.len()
                ),
            ));
        }
        Ok(out)
    }

    /// One page of a project's tasks (its length is for the caller to check). A page past
    /// the end is a 404: the pages a caller asks for were announced (by the first page's
    /// total, or the ids asked for), so a 404 is a fault to retry, never the end.
    async fn tasks_page<T: serde::de::DeserializeOwned>(
        &self,
        project: &str,
        page: usize,
        page_size: usize,
        all_fields: bool,
        filter: Option<&str>,
    ) -> Result<TasksPage<T>, Fault> {
        let mut q = vec![
            ("project", project.to_string()),
            ("page", page.to_string()),
            ("page_size", page_size.to_string()),
        ];
        if all_fields {
            q.push(("fields", "all".into()));
            q.push(("include", DOWNLOAD_FIELDS.into()));
        } else {
            q.push(("include", LISTING_FIELDS.into()));
        }
        if let Some(f) = filter {
            q.push(("query", f.to_string()));
        }
        let path = format!("/api/tasks?project={project}&page={page}&page_size={page_size}");
        let v: Page<T> = match self.get("/api/tasks", &q).await {
            Ok(v) => v,
            // Page 1 of the whole project is there while the project is.
            Err(e)
                if e.status() == Some(reqwest::StatusCode::NOT_FOUND)
                    && (page > 1 || filter.is_some()) =>
            {
                return Err(Fault::incomplete(&path, "the page is missing (HTTP 404)"));
            }
            Err(e) => return Err(Fault::Http(e)),
        };
        let Some(tasks) = v.tasks else {
            return Err(Fault::incomplete(&path, "the answer holds no `tasks` list"));
        };
        let Some(total) = v.total else {
            return Err(Fault::incomplete(&path, "the answer holds no `total`"));
        };
        Ok(TasksPage { tasks, total, path })
    }

    /// These tasks (id and `updated_at` as listed) with their annotations, verified: every
    /// task asked for comes back, no older than the listing saw it. A short or stale answer
    /// is fetched again, with the HTTP policy's retries and backoff, and then fails.
    async fn tasks_by_id(
        &self,
        project: &str,
        want: &[(u64, Option<String>)],
    ) -> Result<Vec<FullTask>, HttpError> {
        let ids: Vec<u64> = want.iter().map(|(id, _)| *id).collect();
        let query = json!({"selectedItems": {"all": false, "included": ids}}).to_string();
        let query = query.as_str();
        self.until_complete(|| async move {
            let page = self
                .tasks_page::<FullTask>(project, 1, want.len().max(1), true, Some(query))
                .await?;
            let got: HashMap<u64, &FullTask> = page.tasks.iter().map(|t| (t.id, t)).collect();
            for (id, listed) in want {
                let Some(task) = got.get(id) else {
                    return Err(Fault::incomplete(
                        &page.path,
                        format!(
                            "task {id} was asked for and not returned ({} of {} returned)",
                            got.len(),
                            want.len()
                        ),
                    ));
                };
                if let (Some(listed), Some(now)) = (listed, task.updated())
                    && now < *listed
                {
                    return Err(Fault::incomplete(
                        &page.path,
                        format!("task {id} came back older ({now}) than listed ({listed})"),
                    ));
                }
            }
            Ok(page.tasks)
        })
        .await
    }

    /// Runs `fetch` until its answer is complete: an incomplete one is fetched again after
    /// the HTTP policy's backoff, up to its retries, then reported as a failed request.
    /// (HTTP failures come back as they are: the HTTP client has retried what it retries.)
    async fn until_complete<T, Fut>(&self, fetch: impl Fn() -> Fut) -> Result<T, HttpError>
    where
        Fut: std::future::Future<Output = Result<T, Fault>>,
    {
        let policy = self.http.policy();
        let mut retry = 0;
        loop {
            match fetch().await {
                Ok(v) => return Ok(v),
                Err(Fault::Http(e)) => return Err(e),
                Err(Fault::Incomplete { path, message }) if retry >= policy.max_retries => {
                    return Err(self.incomplete(path, &message, retry + 1));
                }
                Err(Fault::Incomplete { .. }) => {
                    tokio::time::sleep(policy.backoff(retry)).await;
                    retry += 1;
                }
            }
        }
    }

    /// An answer that stayed incomplete after `attempts` attempts, as a failed request.
    fn incomplete(&self, path: String, message: &str, attempts: u32) -> HttpError {
        HttpError::Request {
            endpoint: Box::new(Endpoint {
                server: self.http.server().to_string(),
                base_url: self.http.base_url().to_string(),
                method: Method::GET,
                path,
            }),
            message: format!("incomplete answer: {message}"),
            attempts,
        }
    }

    /// How many tasks were updated after `since`, and the newest update time among them, as
    /// one query saw them: a task written after that query moves past it, so it is the
    /// cursor of a download that starts after it (one small request; none changed: nothing
    /// else to ask).
    async fn changed_since(
        &self,
        project: &str,
        since: &str,
    ) -> Result<(u64, Option<String>), HttpError> {
        let mut query: Value = serde_json::from_str(&updated_after(since)).unwrap_or_default();
        query["ordering"] = json!(["-tasks:updated_at"]);
        let q = [
            ("project", project.to_string()),
            ("page", "1".to_string()),
            ("page_size", "1".to_string()),
            ("include", "id,updated_at".to_string()),
            ("query", query.to_string()),
        ];
        let page: Page<ListedTask> = self.get("/api/tasks", &q).await?;
        let path = format!("/api/tasks?project={project}&page=1&page_size=1");
        let (Some(tasks), Some(total)) = (page.tasks, page.total) else {
            return Err(self.incomplete(path, "the answer holds no `tasks` list or `total`", 1));
        };
        let newest = tasks.first().and_then(ListedTask::updated);
        if total > 0 && newest.is_none() {
            return Err(self.incomplete(path, "the newest changed task has no `updated_at`", 1));
        }
        Ok((total, newest))
    }

    /// The tasks a filter selects, with their annotations, in pages of
    /// [`DOWNLOAD_PAGE_SIZE`] (a few in flight, in id order), each handed to `hand` as it
    /// comes. Annotators may change tasks while they are read, which shifts the filter's
    /// pages: every page must report the first page's total, and the pages together must
    /// hold that many distinct tasks, else the download starts over (after the HTTP policy's
    /// backoff, up to its retries). A page handed before a restart is handed again.
    fn filtered_download(
        &self,
        project: &str,
        filter: &str,
        hand: &mut dyn FnMut(Vec<FullTask>) -> Result<(), BackendError>,
    ) -> Result<(), BackendError> {
        let policy = self.http.policy();
        let mut retry = 0;
        loop {
            match self.filtered_download_once(project, filter, hand)? {
                Ok(()) => return Ok(()),
                Err(Fault::Http(e)) => return Err(self.http_error(e)),
                Err(Fault::Incomplete { path, message }) if retry >= policy.max_retries => {
                    return Err(self.http_error(self.incomplete(path, &message, retry + 1)));
                }
                Err(Fault::Incomplete { .. }) => {
                    // (The timer is made inside the runtime: it needs its clock.)
                    let pause = policy.backoff(retry);
                    self.rt.block_on(async { tokio::time::sleep(pause).await });
                    retry += 1;
                }
            }
        }
    }

    /// One attempt at [`Self::filtered_download`]: `Ok(Err(_))` when the pages do not add
    /// up (or a request failed), `Err(_)` when `hand` refused a page.
    fn filtered_download_once(
        &self,
        project: &str,
        filter: &str,
        hand: &mut dyn FnMut(Vec<FullTask>) -> Result<(), BackendError>,
    ) -> Result<Result<(), Fault>, BackendError> {
        let page = |n: usize| {
            self.tasks_page::<FullTask>(project, n, DOWNLOAD_PAGE_SIZE, true, Some(filter))
        };
        let first = match self.rt.block_on(page(1)) {
            Ok(p) => p,
            Err(f) => return Ok(Err(f)),
        };
        let total = first.total;
        let path = first.path.clone();
        let mut seen: HashSet<u64> = HashSet::new();
        let mut check = |p: &TasksPage<FullTask>, n: usize| -> Result<(), Fault> {
            p.check(n, DOWNLOAD_PAGE_SIZE, total)?;
            seen.extend(p.tasks.iter().map(|t| t.id));
            Ok(())
        };
        if let Err(f) = check(&first, 1) {
            return Ok(Err(f));
        }
        hand(first.tasks)?;
        let in_flight = self
            .http
            .policy()
            .parallelism
            .clamp(1, DOWNLOAD_PAGES_IN_FLIGHT);
        let mut pages =
            futures_util::stream::iter(2..=(total as usize).div_ceil(DOWNLOAD_PAGE_SIZE))
                .map(|n| async move { (n, page(n).await) })
                .buffered(in_flight);
        while let Some((n, p)) = self.rt.block_on(pages.next()) {
            let p = match p.and_then(|p| check(&p, n).map(|()| p)) {
                Ok(p) => p,
                Err(f) => return Ok(Err(f)),
            };
            hand(p.tasks)?;
        }
        if seen.len() as u64 != total {
            return Ok(Err(Fault::incomplete(
                &path,
                format!(
                    "the pages hold {} distinct task(s) where the server counts {total}",
                    seen.len()
                ),
            )));
        }
        Ok(Ok(()))
    }

    /// A downloaded page's tasks of the wanted batches, as the samples' labels, handed to
    /// `sink` (nothing when the page holds none of them).
    fn hand(
        &self,
        project: &RemoteProject,
        page: Vec<FullTask>,
        wanted: &HashSet<&str>,
        sink: &mut PageSink<'_>,
    ) -> Result<(), BackendError> {
        let mut out = Annotations::new();
        for t in page.into_iter().filter(|t| {
            t.data
                .annoform_batch
                .as_deref()
                .is_some_and(|b| wanted.contains(b))
        }) {
            let id = t.id;
            let (sid, fields) = t.labels().ok_or_else(|| {
                self.error(format!(
                    "task {id} of project {}: its labels cannot be read (no sample id, \
                     annotations, predictions, field types or image size in the task); \
                     nothing was merged",
                    project.id
                ))
            })?;
            out.insert(sid, fields.into());
        }
        if out.is_empty() {
            return Ok(());
        }
        sink(out)
    }

    /// Our tasks grouped by batch name.
    async fn batches(&self, project: &str) -> Result<IndexMap<String, Vec<ListedTask>>, HttpError> {
        // The listing's pages add up to their own total; the project's task count is a second
        // witness, so a listing short of tasks (an empty answer counting none) is caught.
        let tasks = self
            .until_complete(|| async move {
                let tasks: Vec<ListedTask> = self.tasks_once(project, false, None).await?;
                let path = format!("/api/projects/{project}");
                let counted = self
                    .get::<Value>(&path, &[])
                    .await
                    .map_err(Fault::Http)?
                    .get("task_number")
                    .and_then(Value::as_u64);
                match counted {
                    Some(n) if n != tasks.len() as u64 => Err(Fault::incomplete(
                        &path,
                        format!(
                            "the project counts {n} task(s) where its listing holds {}",
                            tasks.len()
                        ),
                    )),
                    _ => Ok(tasks),
                }
            })
            .await?;
        let mut out: IndexMap<String, Vec<ListedTask>> = IndexMap::new();
        for t in tasks {
            if let Some(b) = t.data.annoform_batch.clone() {
                out.entry(b).or_default().push(t);
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
            format!("/data/local-files/?d={}", percent_encode(rel, Escape::Path)),
            dir.to_path_buf(),
        ))
    }

    /// Make sure a local-files storage of `project` covers `dir`.
    async fn ensure_storage(&self, project: &str, dirs: &[PathBuf]) -> Result<(), HttpError> {
        let existing: Value = self
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
            self.call::<Value, _>(Method::POST, "/api/storages/localfiles", &[], Some(&body))
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
            let listed: Value = self
                .get(
                    &format!("/api/projects/{project}/file-uploads"),
                    &[("ids", json!(ids).to_string())],
                )
                .await
                .map_err(|e| self.http_error(e))?;
            Ok::<_, BackendError>(stored_uploads(&listed, chunk))
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

    /// The files of `project` already uploaded for these samples (by an apply interrupted
    /// before its import): sample id → `/data/...`.
    async fn earlier_uploads(
        &self,
        project: &str,
        files: &[(String, PathBuf)],
    ) -> Result<BTreeMap<String, String>, BackendError> {
        let listed: Value = self
            .get(
                &format!("/api/projects/{project}/file-uploads"),
                &[("all", "true".into())],
            )
            .await
            .map_err(|e| self.http_error(e))?;
        Ok(stored_uploads(&listed, files).into_iter().collect())
    }

    /// The batch of `task`, created with the samples it lacks; `fill`, when given, makes
    /// each sample's labels as it is written out (else `task` carries them).
    fn create_batch(
        &mut self,
        project: &RemoteProject,
        task: &TaskSpec,
        schema: &ResolvedSchema,
        fill: Option<&mut FillLabels<'_>>,
    ) -> Result<RemoteTask, BackendError> {
        self.changing();
        self.rt
            .block_on(self.create_task_async(project, task, schema, fill))?;
        Ok(RemoteTask {
            id: task.name.clone(),
            name: task.name.clone(),
        })
    }

    async fn create_task_async(
        &self,
        project: &RemoteProject,
        task: &TaskSpec,
        schema: &ResolvedSchema,
        mut fill: Option<&mut FillLabels<'_>>,
    ) -> Result<(), BackendError> {
        let pid = project.id.as_str();
        // An import interrupted half-way left some of the batch: create only the rest.
        let present: Vec<String> = self
            .tasks::<ListedTask>(pid, false, Some(data_filter("annoform_batch", &task.name)))
            .await
            .map_err(|e| self.http_error(e))?
            .into_iter()
            .filter_map(|t| t.data.sample_id)
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
        if !uploads.is_empty() && !self.created.contains(pid) {
            // Files an interrupted apply uploaded already are used as they are.
            let earlier = self.earlier_uploads(pid, &uploads).await?;
            uploads.retain(|(sid, _)| !earlier.contains_key(sid));
            media.extend(earlier);
        }
        if !uploads.is_empty() {
            media.extend(self.upload(pid, &uploads).await?);
        }
        // Each chunk's request body is written right before the chunk is sent, and dropped
        // after: memory follows one chunk, not the batch.
        let path = format!("/api/projects/{pid}/import");
        let query = [("return_task_ids", "true".into())];
        for chunk in todo.chunks(IMPORT_CHUNK) {
            let body = self.import_body(chunk, &task.name, schema, &media, &mut fill)?;
            self.call_with::<Value>(Method::POST, &path, base::with_json_text(&query, &body))
                .await
                .map_err(|e| self.http_error(e))?;
        }
        Ok(())
    }

    /// An import request's body: the chunk's tasks as a JSON array, each task written straight
    /// into it (and, with `fill`, its sample's labels made just before and dropped after), so
    /// the body is the one copy of the chunk, kept for the request's retries.
    fn import_body(
        &self,
        chunk: &[&TaskSample],
        batch: &str,
        schema: &ResolvedSchema,
        media: &BTreeMap<String, String>,
        fill: &mut Option<&mut FillLabels<'_>>,
    ) -> Result<bytes::Bytes, BackendError> {
        let mut body = vec![b'['];
        for (i, &s) in chunk.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            let filled;
            let s = match fill {
                Some(fill) => {
                    let mut sample = s.clone();
                    fill(&mut sample)?;
                    filled = sample;
                    &filled
                }
                None => s,
            };
            let t = self.import_task(s, batch, schema, media)?;
            serde_json::to_writer(&mut body, &t)
                .map_err(|e| self.error(format!("sample {}: {e}", s.sample_id)))?;
            if i == 0 {
                // Room for the chunk at once, estimated from its first task (growing by
                // doubling would hold up to twice the body while it is copied).
                body.reserve((body.len() * (chunk.len() - 1)).saturating_mul(9) / 8 + 1);
            }
        }
        body.push(b']');
        Ok(body.into())
    }

    /// A sample's task as the import takes it: its media, ids, field types and size, and its
    /// labels as the annoform prediction.
    fn import_task(
        &self,
        s: &TaskSample,
        batch: &str,
        schema: &ResolvedSchema,
        media: &BTreeMap<String, String>,
    ) -> Result<Value, BackendError> {
        let SampleResults {
            size,
            result,
            hidden,
        } = self.results_of(s, schema)?;
        let image = media
            .get(&s.sample_id)
            .ok_or_else(|| self.error(format!("no media URL for sample {}", s.sample_id)))?;
        let mut t = json!({
            "data": {"image": image, "sample_id": s.sample_id, "annoform_batch": batch},
            "meta": {"annoform": {"fields": fields_meta(schema), "hidden": hidden,
                                  "width": size.width, "height": size.height}},
        });
        if !result.is_empty() {
            t["predictions"] = json!([{ "model_version": MODEL_VERSION, "result": result }]);
        }
        Ok(t)
    }

    /// A sample's image size and labels as Label Studio takes them.
    fn results_of(
        &self,
        s: &TaskSample,
        schema: &ResolvedSchema,
    ) -> Result<SampleResults, BackendError> {
        let size = ImageSize::of_sample(s).map_err(|e| self.error(e))?;
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
        Ok(SampleResults {
            size,
            result,
            hidden,
        })
    }

    /// Add labels to a batch's tasks as results of their annoform prediction (made when a
    /// task has none).
    async fn add_predictions(
        &self,
        project: &RemoteProject,
        batch: &str,
        spec: &TaskSpec,
        schema: &ResolvedSchema,
    ) -> Result<(), BackendError> {
        let held: Vec<Value> = self
            .tasks(
                &project.id,
                true,
                Some(data_filter("annoform_batch", batch)),
            )
            .await
            .map_err(|e| self.http_error(e))?;
        for s in &spec.samples {
            let result = self.results_of(s, schema)?.result;
            if result.is_empty() {
                continue;
            }
            let task = held
                .iter()
                .find(|t| t["data"]["sample_id"].as_str() == Some(s.sample_id.as_str()))
                .ok_or_else(|| {
                    self.error(format!(
                        "batch `{batch}` has no task of sample {}",
                        s.sample_id
                    ))
                })?;
            let ours = task
                .get("predictions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|p| p.get("model_version").and_then(Value::as_str) == Some(MODEL_VERSION));
            match ours.and_then(|p| Some((id_str(p)?, p))) {
                Some((id, p)) => {
                    let mut all = p
                        .get("result")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    all.extend(result);
                    let path = format!("/api/predictions/{id}");
                    self.call::<Value, _>(
                        Method::PATCH,
                        &path,
                        &[],
                        Some(&json!({ "result": all })),
                    )
                    .await
                }
                None => {
                    let body = json!({"task": task["id"], "model_version": MODEL_VERSION,
                                      "result": result});
                    self.call::<Value, _>(Method::POST, "/api/predictions", &[], Some(&body))
                        .await
                }
            }
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
        let (tasks, config) = self.run(async {
            let q = [
                ("project", project.id.clone()),
                ("page", "1".to_string()),
                ("page_size", "1".to_string()),
            ];
            let tasks: Value = self.get("/api/tasks", &q).await?;
            let p: Value = self
                .get(&format!("/api/projects/{}", project.id), &[])
                .await?;
            Ok::<_, HttpError>((tasks, p))
        })?;
        let from_tasks = tasks
            .get("tasks")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(|t| t.get("meta")?.get("annoform")?.get("fields")?.as_object())
            .map(tasks::meta_fields)
            .unwrap_or_default();
        let fields = if from_tasks.is_empty() {
            let xml = config
                .get("label_config")
                .and_then(Value::as_str)
                .unwrap_or_default();
            config::fields_of(xml, task)
        } else {
            from_tasks
                .into_iter()
                .map(|(k, f)| (FieldPath::parse(&k), f))
                .collect()
        };
        let schema = ResolvedSchema { fields };
        self.schemas.insert(project.id.clone(), schema.clone());
        Ok(schema)
    }
}

impl HttpBackend for LabelStudioBackend {
    fn http(&self) -> &HttpClient {
        &self.http
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.rt
    }

    fn describe(&self, e: &HttpError) -> Option<String> {
        base::refused_key(
            e,
            "labelstudio",
            "a token of that server (Account & Settings: a personal access token or, if the \
             organization allows it, a legacy token)",
        )
    }
}

impl Backend for LabelStudioBackend {
    fn capabilities(&self) -> &Capabilities {
        BackendKind::Labelstudio.capabilities()
    }

    fn find_project(&mut self, name: &str) -> Result<Option<RemoteProject>, BackendError> {
        let this = &*self;
        let found = this.rt.block_on(async {
            let mut page = 1;
            loop {
                let v: Value = match this
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
                    // The listing counts the project's tasks too: kept for a plan's refresh.
                    let counts = Counts::deserialize(p).ok();
                    let project = RemoteProject {
                        url: Some(this.http.url(&format!("/projects/{id}"))),
                        id,
                        name: name.to_string(),
                        owner: p
                            .get("description")
                            .and_then(Value::as_str)
                            .and_then(Owner::find_in),
                    };
                    return Ok(Some((project, counts)));
                }
                if v.get("next").is_none_or(Value::is_null) {
                    return Ok(None);
                }
                page += 1;
            }
        })?;
        Ok(found.map(|(project, counts)| {
            match counts {
                Some(c) => self.counts.insert(project.id.clone(), c),
                None => self.counts.remove(&project.id),
            };
            project
        }))
    }

    fn attach(
        &mut self,
        project: &RemoteProject,
        context: ProjectContext<'_>,
    ) -> Result<(), BackendError> {
        let batches = context
            .tasks
            .iter()
            .map(|t| (t.name.clone(), t.samples.len() as u64))
            .collect();
        self.recorded
            .insert(project.id.clone(), Recorded { batches });
        Ok(())
    }

    fn create_project(&mut self, spec: &ProjectSpec) -> Result<RemoteProject, BackendError> {
        let settings = LabelStudioConfig::read(&spec.config)
            .map_err(|e| self.error(format!("the run's settings: {e}")))?;
        if let Some(root) = settings.local_files_root {
            self.local_files_root = Some(PathBuf::from(root));
        }
        let xml = config::labeling_config(&spec.schema).map_err(|e| self.error(e.to_string()))?;
        let mut description =
            "Managed by annoform: changes to the labeling setup are overwritten by `annoform apply`."
                .to_string();
        if let Some(owner) = &spec.owner {
            // The run's identity, on a line of its own: a run adopts only its own project.
            description.push_str(&format!("\n\n{}", owner.tag()));
        }
        let body = json!({"title": spec.name, "label_config": xml, "description": description});
        let v = self.run(self.call::<Value, _>(Method::POST, "/api/projects", &[], Some(&body)))?;
        let id = id_str(&v).ok_or_else(|| {
            self.error(answered_without(
                &Method::POST,
                "/api/projects",
                "an id",
                &v,
            ))
        })?;
        self.schemas.insert(id.clone(), spec.schema.clone());
        self.created.insert(id.clone());
        Ok(RemoteProject {
            url: Some(self.http.url(&format!("/projects/{id}"))),
            id,
            name: spec.name.clone(),
            owner: spec.owner.clone(),
        })
    }

    fn list_tasks(&mut self, project: &RemoteProject) -> Result<Vec<RemoteTask>, BackendError> {
        if self.whole(&project.id).is_some() {
            let recorded = &self.recorded[&project.id];
            return Ok(recorded
                .batches
                .iter()
                .map(|(name, _)| RemoteTask {
                    id: name.clone(),
                    name: name.clone(),
                })
                .collect());
        }
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
        self.create_batch(project, task, &schema, None)
    }

    fn create_task_filling(
        &mut self,
        project: &RemoteProject,
        task: &TaskSpec,
        fill: &mut FillLabels<'_>,
    ) -> Result<RemoteTask, BackendError> {
        let Some(schema) = self.schemas.get(&project.id).cloned() else {
            // The field types may be read from the labels about to go up (`schema_for`).
            return self.create_task(project, &filled(task, fill)?);
        };
        self.create_batch(project, task, &schema, Some(fill))
    }

    fn upload_labels(
        &mut self,
        project: &RemoteProject,
        task: &RemoteTask,
        labels: &TaskSpec,
    ) -> Result<(), BackendError> {
        let schema = self.schema_for(project, labels)?;
        self.changing();
        self.rt
            .block_on(self.add_predictions(project, &task.name, labels, &schema))
    }

    fn update_schema(
        &mut self,
        project: &RemoteProject,
        schema: &ResolvedSchema,
    ) -> Result<(), BackendError> {
        let xml = config::labeling_config(schema).map_err(|e| self.error(e.to_string()))?;
        let path = format!("/api/projects/{}", project.id);
        self.run(self.call::<Value, _>(
            Method::PATCH,
            &path,
            &[],
            Some(&json!({ "label_config": xml })),
        ))?;
        self.schemas.insert(project.id.clone(), schema.clone());
        Ok(())
    }

    fn status(
        &mut self,
        project: &RemoteProject,
        tasks: &[String],
    ) -> Result<Vec<TaskStatus>, BackendError> {
        // Every task labeled: the counts say it for each batch.
        if self
            .whole(&project.id)
            .is_some_and(|c| c.finished_task_number == c.task_number)
        {
            let recorded = &self.recorded[&project.id];
            return Ok(tasks
                .iter()
                .filter_map(|name| {
                    let (_, n) = recorded.batches.iter().find(|(b, _)| b == name)?;
                    Some(TaskStatus {
                        id: name.clone(),
                        status: format!("{n}/{n} labeled"),
                        complete: *n > 0,
                        updated: None,
                    })
                })
                .collect());
        }
        let batches = self.listing(&project.id)?;
        Ok(tasks
            .iter()
            .filter_map(|name| {
                let ts = batches.get(name)?;
                let labeled = ts.iter().filter(|t| t.is_labeled == Some(true)).count();
                Some(TaskStatus {
                    id: name.clone(),
                    status: format!("{labeled}/{} labeled", ts.len()),
                    complete: !ts.is_empty() && labeled == ts.len(),
                    updated: ts.iter().filter_map(ListedTask::updated).max(),
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
    ) -> Result<Downloaded, BackendError> {
        // Label Studio moves a task's `updated_at` whenever one of its annotations is created,
        // changed or deleted: the latest one is the cursor, and a refresh after a merge asks
        // only for the tasks updated since.
        //
        // When the project's counts show it holds just the run's tasks, the server itself
        // selects the tasks updated after the cursor: one small request counts them and
        // names the newest update (the next cursor; none changed: done), and the changed
        // tasks are downloaded through the same filter. Nothing is said of the others
        // (`held` unknown).
        let wanted: HashSet<&str> = tasks.iter().map(String::as_str).collect();
        if let Some(since) = since
            && self.whole(&project.id).is_some()
        {
            let (changed, newest) = self.run(self.changed_since(&project.id, since))?;
            if changed > 0 {
                let filter = updated_after(since);
                self.filtered_download(&project.id, &filter, &mut |page| {
                    self.hand(project, page, &wanted, sink)
                })?;
            }
            return Ok(Downloaded {
                // Never behind where it started: the next refresh asks from here.
                cursor: newest.into_iter().chain(Some(since.to_string())).max(),
                held: None,
                strays: Vec::new(),
            });
        }
        // Otherwise the verified listing says which tasks (so which samples) the batches hold;
        // the tasks are then fetched by id, and every id asked for must come back.
        let listing = self.listing(&project.id)?;
        let ours: Vec<&ListedTask> = listing
            .iter()
            .filter(|(b, _)| wanted.contains(b.as_str()))
            .flat_map(|(_, ts)| ts.iter())
            .collect();
        let cursor = ours.iter().filter_map(|t| t.updated()).max();
        let held = ours
            .iter()
            .filter_map(|t| t.data.sample_id.clone())
            .collect();
        let fetch: Vec<(u64, Option<String>)> = ours
            .iter()
            .map(|t| (t.id, t.updated()))
            .filter(|(_, u)| since.is_none_or(|s| u.as_deref().is_none_or(|u| u > s)))
            .collect();
        drop(ours);
        drop(listing);
        // A few pages in flight, handed on in order, each converted and dropped: memory
        // follows the pages in flight, not the project.
        let this = &*self;
        let in_flight = this
            .http
            .policy()
            .parallelism
            .clamp(1, DOWNLOAD_PAGES_IN_FLIGHT);
        let mut pages = futures_util::stream::iter(fetch.chunks(DOWNLOAD_PAGE_SIZE))
            .map(|chunk| this.tasks_by_id(&project.id, chunk))
            .buffered(in_flight);
        while let Some(page) = this.rt.block_on(pages.next()) {
            let page = page.map_err(|e| this.http_error(e))?;
            this.hand(project, page, &wanted, sink)?;
        }
        Ok(Downloaded {
            cursor,
            held: Some(held),
            strays: Vec::new(),
        })
    }

    fn cursor(
        &mut self,
        project: &RemoteProject,
        _tasks: &[String],
    ) -> Result<Option<String>, BackendError> {
        // The task updated last, and the project's annotation count: with no annotation yet,
        // every task holds what was uploaded, and any later annotation moves its task past
        // this cursor. With annotations already, no cursor (they may predate it).
        let q = [
            ("project", project.id.clone()),
            ("page", "1".to_string()),
            ("page_size", "1".to_string()),
            ("include", "id,updated_at".to_string()),
            (
                "query",
                json!({"ordering": ["-tasks:updated_at"]}).to_string(),
            ),
        ];
        let v: Value = self.run(self.get("/api/tasks", &q))?;
        let annotated = v.get("total_annotations").and_then(Value::as_u64) != Some(0);
        let newest = v
            .get("tasks")
            .and_then(Value::as_array)
            .and_then(|t| t.first())
            .and_then(|t| normalised_time(t.get("updated_at")?.as_str()?));
        Ok(newest.filter(|_| !annotated))
    }

    fn project_url(&self, project: &RemoteProject) -> Option<String> {
        Some(self.http.url(&format!("/projects/{}", project.id)))
    }

    fn delete_project(&mut self, project: &RemoteProject) -> Result<(), BackendError> {
        self.changing();
        let path = format!("/api/projects/{}", project.id);
        self.run(self.call::<Value, _>(Method::DELETE, &path, &[], None::<&Value>))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Samples of 0 to 3 boxes and a classification each, with their labels.
    fn samples() -> Vec<TaskSample> {
        (0..7)
            .map(|i| {
                let boxes = (0..i % 4)
                    .map(|j| {
                        let label = ["cat", "dog"][j % 2];
                        json!({"_id": {"$oid": format!("{i:012}{j:012}")}, "_cls": "Detection",
                               "attributes": {}, "tags": [], "label": label,
                               "bounding_box": [0.1 * j as f64, 0.25, 0.3, 0.125]})
                    })
                    .collect();
                let class = json!({"_id": {"$oid": format!("{i:012}{:012}", 99)},
                                   "_cls": "Classification", "label": "day"});
                TaskSample {
                    sample_id: format!("{i:024}"),
                    media: format!("/srv/media/ds/{i}.jpg"),
                    width: Some(320),
                    height: Some(240),
                    video: None,
                    labels: [("gt".to_string(), boxes), ("time".to_string(), vec![class])]
                        .into_iter()
                        .collect(),
                    frame_labels: IndexMap::new(),
                }
            })
            .collect()
    }

    #[test]
    fn an_import_body_filled_sample_by_sample_is_the_body_of_the_whole_batch() {
        let b = LabelStudioBackend::new(
            "ls",
            "http://127.0.0.1:1",
            "tok-123456",
            None,
            HttpPolicy::default(),
        )
        .unwrap();
        let schema = ResolvedSchema {
            fields: [
                (
                    FieldPath::parse("gt"),
                    ResolvedField::new(LabelType::Detections, vec!["cat".into(), "dog".into()]),
                ),
                (
                    FieldPath::parse("time"),
                    ResolvedField::new(LabelType::Classification, vec!["day".into()]),
                ),
            ]
            .into_iter()
            .collect(),
        };
        let whole = samples();
        let media = whole
            .iter()
            .map(|s| {
                (
                    s.sample_id.clone(),
                    format!("/data/upload/1/{}.jpg", s.sample_id),
                )
            })
            .collect();
        // What the import sent before bodies were written task by task: the array of tasks.
        let tasks: Vec<Value> = whole
            .iter()
            .map(|s| b.import_task(s, "p/batch-0000", &schema, &media).unwrap())
            .collect();
        let expected = serde_json::to_vec(&tasks).unwrap();
        assert_eq!(
            tasks[3]["predictions"][0]["result"]
                .as_array()
                .unwrap()
                .len(),
            4
        );

        let refs: Vec<&TaskSample> = whole.iter().collect();
        let body = b
            .import_body(&refs, "p/batch-0000", &schema, &media, &mut None)
            .unwrap();
        assert_eq!(&body[..], &expected[..]);

        let bare: Vec<TaskSample> = whole
            .iter()
            .map(|s| TaskSample {
                labels: IndexMap::new(),
                ..s.clone()
            })
            .collect();
        let mut filled = Vec::new();
        let mut fill = |s: &mut TaskSample| {
            let full = whole.iter().find(|w| w.sample_id == s.sample_id).unwrap();
            s.labels = full.labels.clone();
            filled.push(s.sample_id.clone());
            Ok(())
        };
        let refs: Vec<&TaskSample> = bare.iter().collect();
        let body = b
            .import_body(&refs, "p/batch-0000", &schema, &media, &mut Some(&mut fill))
            .unwrap();
        assert_eq!(&body[..], &expected[..]);
        let ids: Vec<String> = whole.iter().map(|s| s.sample_id.clone()).collect();
        assert_eq!(filled, ids);
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
