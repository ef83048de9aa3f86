//! An in-process fake V7 Darwin server that replays the behaviour recorded in the shared V7
//! recipe (`recipes/v7.md`, read from darwin-py d591e82e and darwin-fiftyone 2.1.2): the
//! endpoints, bodies and status codes of its sections 1.1-1.6, with the quirks clients meet:
//!
//! * `register_upload` refuses an item already in the dataset (same path and name) as a
//!   *blocked item* that carries the existing item's `id` and its slot's `upload_id`;
//! * a request body over the payload limit is answered 413 and nothing of it is imported;
//! * `overwrite` on import is accepted as the string `"true"`/`"false"` (what darwin-py
//!   sends) or a JSON boolean;
//! * a confirmed upload is `processing` for a while (configurable) before it is `new`;
//! * an export has no `download_url` until it is complete (after a configurable number of
//!   polls, or never); its zip holds one Darwin JSON 2.0 file per item under the item's path;
//! * annotation classes are team-wide, unique per (name, main type), attached to datasets;
//! * the API key chooses the team; a dataset name taken (in any team) is a 422 `NameTaken`.
//!
//! Use: `let v7 = FakeDarwin::start();` then talk to `v7.base_url()` with
//! `Authorization: ApiKey <v7.api_key()>`; the server stops when `v7` is dropped.
//!
//! Where it simplifies: images only, one slot (`0`); every item's size is read from its file
//! header; workflows, properties and attributes are not modelled; ids are sequential.

#![allow(dead_code)]

#[path = "../support/fake_server.rs"]
mod fake_server;
use fake_server::FakeServer;
pub mod zip;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The API key of team `team-a`, which tests use.
pub const API_KEY: &str = "v7-test-key-7f3a9c";
/// The API key of another team (`team-b`).
pub const OTHER_TEAM_KEY: &str = "v7-other-team-key-51be";

/// A dataset.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub id: u64,
    pub name: String,
    pub slug: String,
    pub team: String,
    pub archived: bool,
}

/// An annotation as imported: its id, class and data (import form).
#[derive(Debug, Clone)]
pub struct Annotation {
    pub id: String,
    pub class_id: u64,
    pub data: Value,
}

/// An item (one slot, `0`).
#[derive(Debug, Clone)]
pub struct Item {
    pub id: String,
    pub dataset: u64,
    pub name: String,
    pub path: String,
    /// `uploading`, `processing`, `new`, `complete`, `archived`...
    pub status: String,
    /// When a `processing` item becomes `new`.
    pub ready_at: Option<Instant>,
    pub upload_id: String,
    pub storage_key: Option<String>,
    pub bytes: Option<Vec<u8>>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub annotations: Vec<Annotation>,
}

/// A team-wide annotation class.
#[derive(Debug, Clone)]
pub struct Class {
    pub id: u64,
    pub team: String,
    pub name: String,
    pub main_type: String,
    pub datasets: Vec<u64>,
}

/// An export of a dataset.
#[derive(Debug, Clone)]
pub struct Export {
    pub dataset: u64,
    pub name: String,
    /// Polls left before it completes (`None`: never).
    pub polls_left: Option<u32>,
    pub zip: Option<Vec<u8>>,
}

/// The fake's whole state.
#[derive(Debug, Default)]
pub struct State {
    pub datasets: Vec<Dataset>,
    pub items: Vec<Item>,
    pub classes: Vec<Class>,
    pub exports: Vec<Export>,
    /// External storages: slug → the directory their keys are under.
    pub storages: BTreeMap<String, PathBuf>,
    next_id: u64,
    /// Largest import body accepted (413 above it: nothing of it is imported).
    pub payload_limit: usize,
    /// How long a confirmed item stays `processing`.
    pub processing: Duration,
    /// Polls before an export completes (`None`: never).
    pub export_polls: Option<u32>,
    /// Faults to answer: (status, method, path pattern, times left).
    pub faults: Vec<(u16, String, String, u32)>,
    /// Every request: (method, path, status answered).
    pub log: Vec<(String, String, u16)>,
}

/// The annotation types the server knows (`GET /api/annotation_types`).
const TYPES: [(&str, u64); 7] = [
    ("bounding_box", 1),
    ("polygon", 2),
    ("tag", 3),
    ("keypoint", 4),
    ("line", 5),
    ("ellipse", 6),
    ("text", 7),
];

impl State {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// A UUID-shaped id (version 4 layout, sequential).
    fn uuid(&mut self) -> String {
        let n = self.id();
        format!("00000000-0000-4000-8000-{n:012x}")
    }

    fn team_of(key: &str) -> Option<&'static str> {
        match key {
            API_KEY => Some("team-a"),
            OTHER_TEAM_KEY => Some("team-b"),
            _ => None,
        }
    }

    /// Settles items whose processing time is over.
    fn settle(&mut self) {
        let now = Instant::now();
        for i in &mut self.items {
            if i.status == "processing" && i.ready_at.is_some_and(|t| t <= now) {
                i.status = "new".into();
                i.ready_at = None;
            }
        }
    }
}

/// A running fake; dropping it stops the server.
pub struct FakeDarwin {
    server: FakeServer,
    state: Arc<Mutex<State>>,
}

impl FakeDarwin {
    /// Starts a fresh fake on `127.0.0.1:0` (payload limit 256 KiB, items processing 200 ms,
    /// exports complete on their second poll).
    pub fn start() -> FakeDarwin {
        let state = Arc::new(Mutex::new(State {
            payload_limit: 256 * 1024,
            processing: Duration::from_millis(200),
            export_polls: Some(1),
            ..State::default()
        }));
        FakeDarwin {
            server: FakeServer::start(state.clone(), respond),
            state,
        }
    }

    /// `http://127.0.0.1:<port>`, the host root.
    pub fn base_url(&self) -> &str {
        self.server.base_url()
    }

    /// The state, to look at or change.
    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("state")
    }

    /// Answer the next `times` requests `method path` (`*` matching one segment) with
    /// `status` and do nothing else.
    pub fn fault(&self, status: u16, method: &str, path: &str, times: u32) {
        self.state()
            .faults
            .push((status, method.into(), path.into(), times));
    }

    /// Declares an external storage whose keys are paths under `root`.
    pub fn storage(&self, slug: &str, root: PathBuf) {
        self.state().storages.insert(slug.into(), root);
    }

    /// Makes dataset `name` in team `team`, as someone did in V7's UI.
    pub fn dataset(&self, team: &str, name: &str) -> u64 {
        let mut s = self.state();
        let id = s.id();
        s.datasets.push(Dataset {
            id,
            name: name.into(),
            slug: name.into(),
            team: team.into(),
            archived: false,
        });
        id
    }

    /// Requests answered, as (method, path, status).
    pub fn log(&self) -> Vec<(String, String, u16)> {
        self.state().log.clone()
    }
}

/// A request, decoded.
pub struct Req {
    pub method: String,
    pub segments: Vec<String>,
    pub query: Vec<(String, String)>,
    pub auth: Option<String>,
    pub body: Vec<u8>,
    pub base: String,
}

impl Req {
    fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// An answer: status, content type, body.
pub struct Resp(u16, &'static str, Vec<u8>);

fn json_resp(status: u16, v: Value) -> Resp {
    Resp(
        status,
        "application/json",
        serde_json::to_vec(&v).expect("json"),
    )
}

fn not_found() -> Resp {
    json_resp(
        404,
        json!({"errors": {"code": "NOT_FOUND", "message": "Not found"}}),
    )
}

fn unprocessable(v: Value) -> Resp {
    json_resp(422, json!({ "errors": v }))
}

fn dec(s: &str) -> String {
    let b = s.replace('+', " ");
    let b = b.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len() + 1
            && let Some(v) = std::str::from_utf8(&b[i + 1..(i + 3).min(b.len())])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn respond(
    state: Arc<Mutex<State>>,
    r: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, std::convert::Infallible> {
    let (parts, body) = r.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let host = parts
        .headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    let req = Req {
        method: parts.method.to_string(),
        segments: parts
            .uri
            .path()
            .split('/')
            .filter(|s| !s.is_empty())
            .map(dec)
            .collect(),
        query: parts
            .uri
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (dec(k), dec(v))
            })
            .collect(),
        auth: parts
            .headers
            .get("authorization")
            .and_then(|h| h.to_str().ok())
            .map(String::from),
        body,
        base: format!("http://{host}"),
    };
    let Resp(status, ct, body) = {
        let mut s = state.lock().expect("state");
        let resp = dispatch(&mut s, &req);
        let path = format!("/{}", req.segments.join("/"));
        s.log.push((req.method.clone(), path, resp.0));
        resp
    };
    Ok(hyper::Response::builder()
        .status(status)
        .header("content-type", ct)
        .body(Full::new(Bytes::from(body)))
        .expect("response"))
}

fn dispatch(s: &mut State, req: &Req) -> Resp {
    let seg: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    if let Some(status) = fault(s, &req.method, &seg) {
        return json_resp(
            status,
            json!({"errors": {"message": "injected by the test"}}),
        );
    }
    s.settle();
    // Signed storage URLs and export downloads carry their own authority, no API key.
    match (req.method.as_str(), seg.as_slice()) {
        ("PUT", ["s3", upload]) => return put_file(s, req, upload),
        ("GET", ["exports", file]) => return download(s, file),
        _ => {}
    }
    let team = match req
        .auth
        .as_deref()
        .and_then(|a| a.strip_prefix("ApiKey "))
        .and_then(State::team_of)
    {
        Some(t) => t.to_string(),
        None => {
            return json_resp(
                401,
                json!({"errors": {"code": "UNAUTHORIZED", "message": "Invalid API key"}}),
            );
        }
    };
    match (req.method.as_str(), seg.as_slice()) {
        ("GET", ["api", "users", "token_info"]) => json_resp(
            200,
            json!({"selected_team": {"slug": team, "name": team.to_uppercase()}}),
        ),
        ("GET", ["api", "datasets"]) => list_datasets(s, &team),
        ("POST", ["api", "datasets"]) => create_dataset(s, req, &team),
        ("PUT", ["api", "datasets", id, "archive"]) => archive_dataset(s, &team, id),
        ("GET", ["api", "annotation_types"]) => json_resp(
            200,
            Value::Array(
                TYPES
                    .iter()
                    .map(|(n, i)| json!({"id": i, "name": n}))
                    .collect(),
            ),
        ),
        ("GET", ["api", "teams", t, "annotation_classes"]) if *t == team => list_classes(s, &team),
        ("POST", ["api", "annotation_classes"]) => create_class(s, req, &team),
        ("PUT", ["api", "annotation_classes", id]) => update_class(s, req, &team, id),
        ("GET", ["api", "v2", "teams", t, "items"]) if *t == team => list_items(s, req, &team),
        ("POST", ["api", "v2", "teams", t, "items", "register_upload"]) if *t == team => {
            register(s, req, &team, false)
        }
        ("POST", ["api", "v2", "teams", t, "items", "register_existing"]) if *t == team => {
            register(s, req, &team, true)
        }
        ("GET", ["api", "v2", "teams", t, "items", "uploads", u, "sign"]) if *t == team => {
            sign(s, req, u)
        }
        ("POST", ["api", "v2", "teams", t, "items", "uploads", u, "confirm"]) if *t == team => {
            confirm(s, u)
        }
        ("POST", ["api", "v2", "teams", t, "items", "archive"]) if *t == team => {
            archive_items(s, req)
        }
        ("GET", ["api", "v2", "teams", t, "items", id, "annotations"]) if *t == team => {
            item_annotations(s, id)
        }
        ("POST", ["api", "v2", "teams", t, "items", id, "import"]) if *t == team => {
            import(s, req, &team, id)
        }
        ("POST", ["api", "v2", "teams", t, "datasets", slug, "exports"]) if *t == team => {
            start_export(s, req, &team, slug)
        }
        ("GET", ["api", "v2", "teams", t, "datasets", slug, "exports"]) if *t == team => {
            list_exports(s, req, &team, slug)
        }
        _ => not_found(),
    }
}

/// The injected fault for this request, if any (counting it down).
fn fault(s: &mut State, method: &str, seg: &[&str]) -> Option<u16> {
    let hit = s.faults.iter_mut().find(|(_, m, pattern, left)| {
        let parts: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
        *left > 0
            && m == method
            && parts.len() == seg.len()
            && parts.iter().zip(seg).all(|(p, s)| *p == "*" || p == s)
    })?;
    hit.3 -= 1;
    Some(hit.0)
}

fn dataset_json(d: &Dataset, s: &State) -> Value {
    let n = s
        .items
        .iter()
        .filter(|i| i.dataset == d.id && i.status != "archived")
        .count();
    json!({"id": d.id, "name": d.name, "slug": d.slug, "num_items": null, "num_images": n,
           "num_videos": 0, "progress": 0})
}

fn live_dataset<'a>(s: &'a State, team: &str, slug: &str) -> Option<&'a Dataset> {
    s.datasets
        .iter()
        .find(|d| d.team == team && d.slug == slug && !d.archived)
}

fn list_datasets(s: &State, team: &str) -> Resp {
    let v: Vec<Value> = s
        .datasets
        .iter()
        .filter(|d| d.team == team && !d.archived)
        .map(|d| dataset_json(d, s))
        .collect();
    json_resp(200, Value::Array(v))
}

/// darwin-py's slug: lower case, spaces as dashes.
fn slugify(name: &str) -> String {
    name.to_lowercase().replace(' ', "-")
}

fn create_dataset(s: &mut State, req: &Req, team: &str) -> Resp {
    let Some(name) = req.json()["name"].as_str().map(String::from) else {
        return unprocessable(json!({"name": ["can't be blank"]}));
    };
    let slug = slugify(&name);
    if s.datasets.iter().any(|d| d.slug == slug && !d.archived) {
        return unprocessable(json!({"name": ["has already been taken"]}));
    }
    let id = s.id();
    let d = Dataset {
        id,
        name,
        slug,
        team: team.into(),
        archived: false,
    };
    let v = dataset_json(&d, s);
    s.datasets.push(d);
    json_resp(200, v)
}

fn archive_dataset(s: &mut State, team: &str, id: &str) -> Resp {
    match s
        .datasets
        .iter_mut()
        .find(|d| d.team == team && d.id.to_string() == id && !d.archived)
    {
        Some(d) => {
            d.archived = true;
            json_resp(200, json!({}))
        }
        None => not_found(),
    }
}

fn class_json(c: &Class) -> Value {
    let datasets: Vec<Value> = c.datasets.iter().map(|d| json!({ "id": d })).collect();
    json!({"id": c.id, "name": c.name, "annotation_types": [c.main_type],
           "dataset_id": c.datasets.first(), "datasets": datasets, "description": null,
           "metadata": {"_color": "rgba(0,255,0,1.0)", c.main_type.clone(): {}},
           "team_id": 2, "images": [], "annotation_class_image_url": null})
}

fn list_classes(s: &State, team: &str) -> Resp {
    let v: Vec<Value> = s
        .classes
        .iter()
        .filter(|c| c.team == team)
        .map(class_json)
        .collect();
    json_resp(200, json!({ "annotation_classes": v }))
}

fn create_class(s: &mut State, req: &Req, team: &str) -> Resp {
    let b = req.json();
    let name = b["name"].as_str().unwrap_or_default().to_string();
    let main = b["annotation_type_ids"][0].as_u64().and_then(|id| {
        TYPES
            .iter()
            .find(|(_, i)| *i == id)
            .map(|(n, _)| n.to_string())
    });
    let Some(main_type) = main.filter(|_| !name.is_empty()) else {
        return unprocessable(json!({"annotation_type_ids": ["is invalid"]}));
    };
    if s.classes
        .iter()
        .any(|c| c.team == team && c.name == name && c.main_type == main_type)
    {
        return unprocessable(json!({"name": ["has already been taken"]}));
    }
    let datasets = b["datasets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["id"].as_u64())
        .collect();
    let id = s.id();
    let c = Class {
        id,
        team: team.into(),
        name,
        main_type,
        datasets,
    };
    let v = class_json(&c);
    s.classes.push(c);
    json_resp(200, v)
}

fn update_class(s: &mut State, req: &Req, team: &str, id: &str) -> Resp {
    let b = req.json();
    let Some(c) = s
        .classes
        .iter_mut()
        .find(|c| c.team == team && c.id.to_string() == id)
    else {
        return not_found();
    };
    if let Some(ds) = b["datasets"].as_array() {
        c.datasets = ds.iter().filter_map(|d| d["id"].as_u64()).collect();
    }
    let v = class_json(c);
    json_resp(200, v)
}

fn slot_json(i: &Item) -> Value {
    json!({"slot_name": "0", "file_name": i.name, "type": "image",
           "size_bytes": i.bytes.as_ref().map(Vec::len), "width": i.width, "height": i.height,
           "upload_id": i.upload_id})
}

fn item_json(i: &Item) -> Value {
    let processing_status = match i.status.as_str() {
        "processing" | "uploading" => "processing",
        _ => "complete",
    };
    json!({"id": i.id, "name": i.name, "path": i.path, "status": i.status,
           "processing_status": processing_status, "archived": i.status == "archived",
           "dataset_id": i.dataset, "priority": 0, "tags": [], "layout": null,
           "slots": [slot_json(i)], "workflow_data": null})
}

/// `GET items`: `dataset_ids[]` (or `dataset_ids`, as darwin-fiftyone sends it), cursor
/// pages of `page[size]` from `page[from]`.
fn list_items(s: &State, req: &Req, team: &str) -> Resp {
    let ids: Vec<u64> = req
        .all("dataset_ids[]")
        .into_iter()
        .chain(req.all("dataset_ids"))
        .filter_map(|v| v.parse().ok())
        .collect();
    let names = req.all("item_names[]");
    let mine: Vec<&Item> = s
        .items
        .iter()
        .filter(|i| ids.contains(&i.dataset))
        .filter(|i| {
            s.datasets
                .iter()
                .any(|d| d.id == i.dataset && d.team == team)
        })
        .filter(|i| names.is_empty() || names.contains(&i.name.as_str()))
        .filter(|i| i.status != "archived")
        .collect();
    let size = req
        .q("page[size]")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(500)
        .max(1);
    let from = req
        .q("page[from]")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let page: Vec<Value> = mine
        .iter()
        .skip(from)
        .take(size)
        .map(|i| item_json(i))
        .collect();
    let next = (from + size < mine.len()).then(|| (from + size).to_string());
    json_resp(
        200,
        json!({"items": page, "page": {"next": next, "previous": null}}),
    )
}

fn register(s: &mut State, req: &Req, team: &str, existing: bool) -> Resp {
    let b = req.json();
    let slug = b["dataset_slug"].as_str().unwrap_or_default();
    let Some(dataset) = live_dataset(s, team, slug).map(|d| d.id) else {
        return not_found();
    };
    let root = if existing {
        match s
            .storages
            .get(b["storage_slug"].as_str().unwrap_or_default())
        {
            Some(r) => Some(r.clone()),
            None => return unprocessable(json!({"storage_slug": ["is invalid"]})),
        }
    } else {
        None
    };
    let (mut items, mut blocked) = (Vec::new(), Vec::new());
    for it in b["items"].as_array().into_iter().flatten() {
        let name = it["name"].as_str().unwrap_or_default().to_string();
        let path = it["path"].as_str().unwrap_or("/").to_string();
        let slot = &it["slots"][0];
        if let Some(old) = s.items.iter().find(|i| {
            i.dataset == dataset && i.path == path && i.name == name && i.status != "archived"
        }) {
            let mut slot = slot_json(old);
            slot["reason"] = json!("ALREADY_EXISTS");
            blocked.push(json!({"id": old.id, "name": name, "path": path, "slots": [slot]}));
            continue;
        }
        let id = s.uuid();
        let upload_id = s.uuid();
        let mut item = Item {
            id,
            dataset,
            name,
            path,
            status: "uploading".into(),
            ready_at: None,
            upload_id,
            storage_key: slot["storage_key"].as_str().map(String::from),
            bytes: None,
            width: None,
            height: None,
            annotations: Vec::new(),
        };
        if let Some(root) = &root {
            let key = item.storage_key.clone().unwrap_or_default();
            match std::fs::read(root.join(&key)) {
                Ok(bytes) => {
                    let dims = imagesize::blob_size(&bytes).ok();
                    item.width = dims.map(|d| d.width as u32);
                    item.height = dims.map(|d| d.height as u32);
                    item.status = "processing".into();
                    item.ready_at = Some(Instant::now() + s.processing);
                }
                Err(_) => {
                    blocked.push(json!({"name": item.name, "path": item.path,
                        "slots": [{"slot_name": "0", "reason": "FILE_UPLOAD_FAILED"}]}));
                    continue;
                }
            }
        }
        items.push(json!({"id": item.id, "name": item.name, "path": item.path,
            "slots": [{"type": "image", "file_name": item.name, "slot_name": "0",
                       "upload_id": item.upload_id, "as_frames": false, "extract_views": false}]}));
        s.items.push(item);
    }
    json_resp(200, json!({"items": items, "blocked_items": blocked}))
}

fn sign(s: &State, req: &Req, upload: &str) -> Resp {
    if !s.items.iter().any(|i| i.upload_id == upload) {
        return not_found();
    }
    json_resp(
        200,
        json!({"upload_url": format!("{}/s3/{upload}?X-Amz-Signature=fake", req.base)}),
    )
}

/// The storage's `PUT`: refuses any `Authorization` (a signed URL carries its own).
fn put_file(s: &mut State, req: &Req, upload: &str) -> Resp {
    if req.auth.is_some() {
        return Resp(400, "application/xml", b"<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>".to_vec());
    }
    match s.items.iter_mut().find(|i| i.upload_id == upload) {
        Some(i) => {
            let dims = imagesize::blob_size(&req.body).ok();
            i.width = dims.map(|d| d.width as u32);
            i.height = dims.map(|d| d.height as u32);
            i.bytes = Some(req.body.clone());
            Resp(200, "application/xml", Vec::new())
        }
        None => Resp(
            403,
            "application/xml",
            b"<Error><Code>AccessDenied</Code></Error>".to_vec(),
        ),
    }
}

fn confirm(s: &mut State, upload: &str) -> Resp {
    let processing = s.processing;
    match s.items.iter_mut().find(|i| i.upload_id == upload) {
        Some(i) if i.bytes.is_some() => {
            i.status = "processing".into();
            i.ready_at = Some(Instant::now() + processing);
            json_resp(200, json!({}))
        }
        Some(_) => unprocessable(json!({"upload": ["file was not uploaded"]})),
        None => not_found(),
    }
}

fn archive_items(s: &mut State, req: &Req) -> Resp {
    let b = req.json();
    let ids: Vec<&str> = b["filters"]["item_ids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for i in s.items.iter_mut().filter(|i| ids.contains(&i.id.as_str())) {
        i.status = "archived".into();
    }
    json_resp(200, json!({}))
}

fn annotation_json(a: &Annotation) -> Value {
    json!({"id": a.id, "annotation_class_id": a.class_id, "context_keys": {"slot_names": ["0"]},
           "data": a.data})
}

fn item_annotations(s: &State, id: &str) -> Resp {
    match s.items.iter().find(|i| i.id == id) {
        Some(i) => json_resp(
            200,
            Value::Array(i.annotations.iter().map(annotation_json).collect()),
        ),
        None => not_found(),
    }
}

/// `POST items/{id}/import`: `overwrite` as the string or a boolean; the classes must be the
/// team's and attached to the item's dataset; the item must be processed.
fn import(s: &mut State, req: &Req, team: &str, id: &str) -> Resp {
    if req.body.len() > s.payload_limit {
        return Resp(
            413,
            "text/html",
            b"<html><body>413 Request Entity Too Large</body></html>".to_vec(),
        );
    }
    let b = req.json();
    let overwrite = match &b["overwrite"] {
        Value::Bool(v) => *v,
        Value::String(v) if v == "true" => true,
        Value::String(v) if v == "false" => false,
        Value::Null => false,
        _ => return unprocessable(json!({"overwrite": ["is invalid"]})),
    };
    let Some(idx) = s.items.iter().position(|i| i.id == id) else {
        return not_found();
    };
    let item = &s.items[idx];
    if !matches!(
        item.status.as_str(),
        "new" | "annotate" | "review" | "complete"
    ) {
        return unprocessable(json!({"item": [format!("is {}", item.status)]}));
    }
    let dataset = item.dataset;
    let mut anns = Vec::new();
    for a in b["annotations"].as_array().into_iter().flatten() {
        let class = a["annotation_class_id"].as_u64();
        let Some(c) = s
            .classes
            .iter()
            .find(|c| Some(c.id) == class && c.team == team)
        else {
            return unprocessable(json!({"annotation_class_id": ["is invalid"]}));
        };
        if !c.datasets.contains(&dataset) {
            return unprocessable(json!({"annotation_class_id": ["is not in the dataset"]}));
        }
        if a["data"].get(&c.main_type).is_none() {
            return unprocessable(json!({"data": [format!("has no {}", c.main_type)]}));
        }
        let class_id = c.id;
        let aid = match a["id"].as_str() {
            Some(i) => i.to_string(),
            None => s.uuid(),
        };
        anns.push(Annotation {
            id: aid,
            class_id,
            data: a["data"].clone(),
        });
    }
    let item = &mut s.items[idx];
    if overwrite {
        item.annotations.clear();
    }
    for a in anns {
        item.annotations.retain(|o| o.id != a.id);
        item.annotations.push(a);
    }
    json_resp(200, json!({}))
}

fn start_export(s: &mut State, req: &Req, team: &str, slug: &str) -> Resp {
    let Some(dataset) = live_dataset(s, team, slug).map(|d| d.id) else {
        return not_found();
    };
    let name = req.json()["name"].as_str().unwrap_or("export").to_string();
    if s.exports
        .iter()
        .any(|e| e.dataset == dataset && e.name == name)
    {
        return unprocessable(json!({"name": ["has already been taken"]}));
    }
    let polls_left = s.export_polls;
    s.exports.push(Export {
        dataset,
        name,
        polls_left,
        zip: None,
    });
    json_resp(200, json!({}))
}

fn list_exports(s: &mut State, req: &Req, team: &str, slug: &str) -> Resp {
    let Some(dataset) = live_dataset(s, team, slug).cloned() else {
        return not_found();
    };
    let pending: Vec<usize> = s
        .exports
        .iter()
        .enumerate()
        .filter(|(_, e)| e.dataset == dataset.id && e.zip.is_none())
        .map(|(i, _)| i)
        .collect();
    for i in pending {
        match s.exports[i].polls_left {
            Some(0) => {
                let zip = export_zip(s, &dataset, team);
                s.exports[i].zip = Some(zip);
            }
            Some(n) => s.exports[i].polls_left = Some(n - 1),
            None => {}
        }
    }
    let v: Vec<Value> = s
        .exports
        .iter()
        .enumerate()
        .filter(|(_, e)| e.dataset == dataset.id)
        .map(|(i, e)| {
            let done = e.zip.is_some();
            json!({"name": e.name, "version": i + 1, "format": "darwin_json_2",
                   "status": if done { "complete" } else { "pending" },
                   "inserted_at": "2026-12-05T00:00:00Z", "latest": false,
                   "download_url": done.then(|| format!("{}/exports/{}.zip", req.base, e.name)),
                   "metadata": {}})
        })
        .collect();
    json_resp(200, Value::Array(v))
}

fn download(s: &State, file: &str) -> Resp {
    let name = file.trim_end_matches(".zip");
    match s
        .exports
        .iter()
        .find(|e| e.name == name)
        .and_then(|e| e.zip.clone())
    {
        Some(z) => Resp(200, "application/zip", z),
        None => Resp(
            404,
            "application/xml",
            b"<Error><Code>NoSuchKey</Code></Error>".to_vec(),
        ),
    }
}

/// An import annotation's data in the export form (`polygon.path` + `additional_paths` →
/// `polygon.paths`, plus the derived `bounding_box`).
fn export_data(data: &Value) -> serde_json::Map<String, Value> {
    let mut out = data.as_object().cloned().unwrap_or_default();
    if let Some(p) = out.remove("polygon") {
        let mut paths = vec![p["path"].clone()];
        paths.extend(
            p["additional_paths"]
                .as_array()
                .into_iter()
                .flatten()
                .cloned(),
        );
        let pts: Vec<(f64, f64)> = paths
            .iter()
            .flat_map(|p| p.as_array().into_iter().flatten())
            .filter_map(|q| Some((q["x"].as_f64()?, q["y"].as_f64()?)))
            .collect();
        let min_x = pts.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
        let max_x = pts.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
        let min_y = pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let max_y = pts.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        out.insert(
            "bounding_box".into(),
            json!({"x": min_x, "y": min_y, "w": max_x - min_x, "h": max_y - min_y}),
        );
        out.insert("polygon".into(), json!({ "paths": paths }));
    }
    out
}

/// The dataset's Darwin JSON 2.0 export: one file per item, under the item's path.
fn export_zip(s: &State, d: &Dataset, team: &str) -> Vec<u8> {
    let mut files = Vec::new();
    for i in s
        .items
        .iter()
        .filter(|i| i.dataset == d.id && !matches!(i.status.as_str(), "archived" | "error"))
    {
        let annotations: Vec<Value> = i
            .annotations
            .iter()
            .map(|a| {
                let class = s.classes.iter().find(|c| c.id == a.class_id);
                let mut o = export_data(&a.data);
                o.insert("id".into(), json!(a.id));
                o.insert("name".into(), json!(class.map(|c| c.name.clone())));
                o.insert("slot_names".into(), json!(["0"]));
                o.insert("properties".into(), json!([]));
                Value::Object(o)
            })
            .collect();
        let doc = json!({"version": "2.0",
            "schema_ref": "https://darwin-public.s3.eu-west-1.amazonaws.com/darwin_json/2.0/schema.json",
            "item": {"name": i.name, "path": i.path,
                "source_info": {"item_id": i.id, "team": {"name": team.to_uppercase(), "slug": team},
                    "dataset": {"name": d.name, "slug": d.slug,
                        "dataset_management_url": format!("https://darwin.v7labs.com/datasets/{}/dataset-management", d.id)},
                    "workview_url": format!("https://darwin.v7labs.com/workview?dataset={}&item={}", d.id, i.id)},
                "slots": [{"type": "image", "slot_name": "0", "width": i.width, "height": i.height,
                    "thumbnail_url": null,
                    "source_files": [{"file_name": i.name, "storage_key": i.storage_key, "url": null}]}]},
            "annotations": annotations});
        let stem = i.name.rsplit_once('.').map_or(i.name.as_str(), |(s, _)| s);
        let dir = i.path.trim_matches('/');
        let file = if dir.is_empty() {
            format!("{stem}.json")
        } else {
            format!("{dir}/{stem}.json")
        };
        files.push((file, serde_json::to_vec(&doc).expect("json")));
    }
    zip::write(&files)
}
