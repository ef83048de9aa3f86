//! An in-process fake CVAT server that replays the behaviour recorded from a real CVAT
//! 2.23.1 (`tests/fixtures/cvat/exchanges-2.23.1.jsonl`, described in the shared CVAT recipe).
//!
//! It keeps users, projects, labels, tasks, jobs, background requests and annotations in
//! memory and answers with the recorded envelopes, status codes and error bodies (field-error
//! maps, `{"detail"}`, `non_field_errors`, bare lists and strings), including the recorded
//! quirks: the 406 for `Accept: application/json`, write-once task fields (403), unknown ids
//! created by `action=update`, frames outside a job accepted by job-level writes, the 500 on a
//! cross-job id conflict, the TUS Location without `data/`.
//!
//! Use: `let cvat = FakeCvat::start();` then talk to `cvat.base_url()` as `admin` /
//! [`ADMIN_PASSWORD`] (or with `cvat.admin_key()`); the server stops when `cvat` is dropped.
//!
//! Where it simplifies:
//! * no permissions or organisations (the recording ran with the allow-all policy);
//! * data is processed at once; a background request reports `started` on its first poll and
//!   its outcome afterwards;
//! * frames are not re-encoded: a compressed image frame is one fixed small JPEG, a video
//!   frame a generated PNG of the video's size; chunk sizes are the recorded 72 (images) and
//!   36 (video) unless `chunk_size` is sent; only mp4 headers are read for video;
//! * annotation reads are ordered by job, then id (the real order is undefined);
//! * ids start at 1 for every kind, unlike the recorded server's.

// Each test binary that includes this module uses only part of it.
#![allow(dead_code)]

#[path = "../support/fake_server.rs"]
mod fake_server;
use fake_server::FakeServer;
pub mod annotations;
pub mod http;
pub mod media;
pub mod model;
pub mod projects;
pub mod tasks;
pub mod users;

use annotations::Scope;
use http::{Req, Resp, dec};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use model::State;
use std::sync::{Arc, Mutex};
use users::Caller;

pub use model::{ADMIN_PASSWORD, ADMIN_USERNAME, ANNOTATOR_PASSWORD};

/// A running fake CVAT server; dropping it stops the server.
pub struct FakeCvat {
    server: FakeServer,
    state: Arc<Mutex<State>>,
}

impl FakeCvat {
    /// Starts a fresh fake on `127.0.0.1:0` in its own thread and runtime.
    pub fn start() -> FakeCvat {
        let state = Arc::new(Mutex::new(State::new()));
        FakeCvat {
            server: FakeServer::start(state.clone(), respond),
            state,
        }
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.server.base_url()
    }

    /// Answer the next `times` requests `method path` (path after `/api/`, `*` matching one
    /// segment, e.g. `tasks/*/annotations`) with HTTP 400 and do nothing: a test's stand-in
    /// for a server or client that stopped at that request.
    pub fn refuse(&self, method: &str, path: &str, times: u32) {
        let mut s = self.state.lock().expect("state");
        s.refusals
            .push((method.to_string(), path.to_string(), times));
    }

    /// The requests answered since the last call (`METHOD /api/path`, no query), oldest
    /// first.
    pub fn take_requests(&self) -> Vec<String> {
        std::mem::take(&mut self.state.lock().expect("state").log)
    }

    /// Let the server's clock run `by` further ahead: what it stamps from now on is that much
    /// later, as if annotators came back after a while.
    pub fn advance_clock(&self, by: std::time::Duration) {
        self.state.lock().expect("state").clock += by;
    }

    /// The admin's API key (what `POST /api/auth/login` answers for the admin).
    pub fn admin_key(&self) -> String {
        let s = self.state.lock().expect("state");
        s.users[0].key.clone()
    }
}

async fn respond(
    state: Arc<Mutex<State>>,
    r: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, std::convert::Infallible> {
    let req = decode(r).await;
    let resp = {
        let mut s = state.lock().expect("state");
        s.log
            .push(format!("{} /api/{}", req.method, req.segments.join("/")));
        dispatch(&mut s, &req)
    };
    let mut b = hyper::Response::builder().status(resp.status);
    if let Some(ct) = &resp.content_type {
        b = b.header("content-type", ct);
    }
    for (k, v) in &resp.headers {
        b = b.header(k, v);
    }
    Ok(b.body(Full::new(Bytes::from(resp.body))).expect("response"))
}

async fn decode(r: hyper::Request<Incoming>) -> Req {
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
    let path = parts.uri.path();
    let trailing_slash = path.len() > 1 && path.ends_with('/');
    let segments = path
        .trim_start_matches("/api/")
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| dec(s, false))
        .collect();
    let query = parts
        .uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (dec(k, true), dec(v, true))
        })
        .collect();
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).to_string(),
            )
        })
        .collect();
    Req {
        method: parts.method.to_string(),
        segments,
        trailing_slash,
        query,
        headers,
        body,
        base: format!("http://{host}"),
    }
}

/// Content negotiation as DRF did it, before authentication.
fn negotiate(req: &Req) -> Option<Resp> {
    let accept = req.header("accept")?;
    let ok = accept.split(',').any(|a| {
        let a = a.trim();
        a.starts_with("*/*") || a.starts_with("application/vnd.cvat+json")
    });
    if !ok {
        return Some(Resp::detail(
            406,
            "Could not satisfy the request Accept header.",
        ));
    }
    let version = accept
        .split(';')
        .find_map(|p| p.trim().strip_prefix("version="));
    match version {
        Some(v) if v.trim() != "2.0" => {
            Some(Resp::detail(406, "Invalid version in \"Accept\" header."))
        }
        _ => None,
    }
}

fn dispatch(state: &mut State, req: &Req) -> Resp {
    if let Some(r) = negotiate(req) {
        return r;
    }
    let seg: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    if refused(state, &req.method, &seg) {
        return Resp::list_error("refused by the test");
    }
    match (req.method.as_str(), seg.as_slice()) {
        ("POST", ["auth", "login"]) => return users::login(state, req),
        ("POST", ["auth", "register"]) => return users::register(state, req),
        ("GET", ["server", "about"]) => return about(),
        _ => {}
    }
    let caller = match users::caller(state, req) {
        Caller::User(id) => id,
        Caller::Missing => {
            return Resp::detail(401, "Authentication credentials were not provided.");
        }
        Caller::BadToken => return Resp::detail(401, "Invalid token."),
    };
    route(state, req, caller, &seg)
}

fn route(state: &mut State, req: &Req, caller: u64, seg: &[&str]) -> Resp {
    let id = |s: &str| s.parse::<u64>().unwrap_or(0);
    let m = req.method.as_str();
    match (m, seg) {
        ("GET", ["users"]) => users::list(state, req),
        (_, ["users", which]) => users::one(state, req, caller, which),
        ("GET", ["projects"]) => projects::list_projects(state, req),
        ("POST", ["projects"]) => projects::create_project(state, req, caller),
        (_, ["projects", p]) => projects::one_project(state, req, id(p)),
        ("GET", ["labels"]) => projects::list_labels(state, req),
        ("GET", ["labels", l]) => projects::get_label(state, id(l)),
        ("GET", ["tasks"]) => tasks::list_tasks(state, req),
        ("POST", ["tasks"]) => tasks::create_task(state, req, caller),
        (_, ["tasks", t]) => tasks::one_task(state, req, id(t)),
        ("POST", ["tasks", t, "data"]) => tasks::post_data(state, req, id(t)),
        ("GET", ["tasks", t, "data"]) => tasks::get_frame(state, req, id(t)),
        ("GET", ["tasks", t, "data", "meta"]) => tasks::meta(state, id(t), None),
        ("PATCH" | "HEAD", ["tasks", _, "data", uuid]) => tasks::tus_chunk(state, req, uuid),
        (_, ["tasks", t, "annotations"]) => annotations::handle(state, req, Scope::Task(id(t))),
        ("PATCH" | "HEAD", ["tasks", _, uuid]) => tasks::tus_chunk(state, req, uuid),
        ("GET", ["jobs"]) => tasks::list_jobs(state, req),
        (_, ["jobs", j]) => tasks::one_job(state, req, id(j)),
        ("GET", ["jobs", j, "data", "meta"]) => job_meta(state, id(j)),
        (_, ["jobs", j, "annotations"]) => annotations::handle(state, req, Scope::Job(id(j))),
        ("GET", ["requests", rq]) => tasks::request_status(state, rq),
        _ => Resp::detail(404, "Not found."),
    }
}

/// Whether a test asked to refuse this request (counting it down).
fn refused(state: &mut State, method: &str, seg: &[&str]) -> bool {
    let hit = state.refusals.iter_mut().find(|(m, pattern, left)| {
        let parts: Vec<&str> = pattern.split('/').collect();
        *left > 0
            && m == method
            && parts.len() == seg.len()
            && parts.iter().zip(seg).all(|(p, s)| *p == "*" || p == s)
    });
    match hit {
        Some((_, _, left)) => {
            *left -= 1;
            true
        }
        None => false,
    }
}

fn job_meta(state: &State, id: u64) -> Resp {
    match state.jobs.iter().find(|j| j.id == id) {
        Some(j) => tasks::meta(state, j.task, Some(j)),
        None => Resp::not_found("Job"),
    }
}

fn about() -> Resp {
    Resp::json(
        200,
        serde_json::json!({
            "name": "Computer Vision Annotation Tool",
            "description": "CVAT is completely re-designed and re-implemented version of Video Annotation Tool from Irvine, California tool. It is free, online, interactive video and image annotation tool for computer vision. It is being used by our team to annotate million of objects with different properties. Many UI and UX decisions are based on feedbacks from professional data annotation team.",
            "version": "2.23.1",
        }),
    )
}
