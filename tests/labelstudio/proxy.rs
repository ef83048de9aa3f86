//! A tiny HTTP proxy in front of the real Label Studio, to make it misbehave on cue: answer
//! one `GET /api/tasks` with a 500, spoil downloads (pages lost or emptied on the way), or
//! forward a task import and then never answer it (so the test can kill annoform while Label
//! Studio already holds the tasks).

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// What the proxy does and has seen; flags are armed by the test.
#[derive(Default)]
pub struct Switches {
    /// Answer the next `GET /api/tasks` with a 500 (then disarm).
    pub fail_next_tasks_get: AtomicBool,
    /// 500s served so far.
    pub failed: AtomicUsize,
    /// `GET /api/tasks` requests forwarded so far.
    pub tasks_gets: AtomicUsize,
    /// Forward `POST .../import` but hold the answer back (for a long time).
    pub hold_import: AtomicBool,
    /// An import was forwarded and Label Studio answered it.
    pub import_done: AtomicBool,
    /// The next N downloads (`GET /api/tasks` with `fields=all`) answer 404 "Invalid page."
    pub lose_downloads: AtomicUsize,
    /// The next N downloads answer with no tasks (the server's `total` kept).
    pub empty_downloads: AtomicUsize,
    /// The next N listings (`GET /api/tasks` without `fields=all`) answer as if the project
    /// held no task (`total` 0).
    pub empty_listings: AtomicUsize,
    /// Downloads or listings lost or emptied so far.
    pub spoiled: AtomicUsize,
    /// Forward a file upload (`POST .../import?commit_to_project=false`) but hold the answer
    /// back (for a long time).
    pub hold_upload: AtomicBool,
    /// A file upload was forwarded and Label Studio answered it.
    pub upload_done: AtomicBool,
    /// File uploads forwarded so far.
    pub uploads: AtomicUsize,
}

/// Takes one from a countdown switch; whether it was armed.
fn take(n: &AtomicUsize) -> bool {
    n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
        .is_ok()
}

/// A running proxy; stops with its runtime when dropped.
pub struct Proxy {
    pub url: String,
    pub switches: Arc<Switches>,
    _rt: tokio::runtime::Runtime,
}

impl Proxy {
    /// A proxy on a free loopback port forwarding to `upstream`.
    pub fn start(upstream: &str) -> Proxy {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let switches = Arc::new(Switches::default());
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let upstream = upstream.to_string();
        let http = reqwest::Client::new();
        let sw = switches.clone();
        rt.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (upstream, http, sw) = (upstream.clone(), http.clone(), sw.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let (upstream, http, sw) = (upstream.clone(), http.clone(), sw.clone());
                        async move { Ok::<_, Infallible>(forward(req, &upstream, &http, &sw).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Proxy {
            url,
            switches,
            _rt: rt,
        }
    }
}

async fn forward(
    req: Request<Incoming>,
    upstream: &str,
    http: &reqwest::Client,
    sw: &Switches,
) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let is_tasks_get = method == hyper::Method::GET && req.uri().path() == "/api/tasks";
    if is_tasks_get {
        sw.tasks_gets.fetch_add(1, Ordering::SeqCst);
        if sw.fail_next_tasks_get.swap(false, Ordering::SeqCst) {
            sw.failed.fetch_add(1, Ordering::SeqCst);
            return respond(500, None, Bytes::from_static(b"{\"detail\":\"injected\"}"));
        }
    }
    let is_download = is_tasks_get && req.uri().query().unwrap_or_default().contains("fields=all");
    if is_download && take(&sw.lose_downloads) {
        sw.spoiled.fetch_add(1, Ordering::SeqCst);
        return respond(
            404,
            None,
            Bytes::from_static(b"{\"detail\":\"Invalid page.\"}"),
        );
    }
    let empty = is_download && take(&sw.empty_downloads);
    let nothing = is_tasks_get && !is_download && take(&sw.empty_listings);
    // The task import, not the file upload (which goes to the same path, uncommitted).
    let is_import = method == hyper::Method::POST
        && req.uri().path().ends_with("/import")
        && !req
            .uri()
            .query()
            .unwrap_or_default()
            .contains("commit_to_project=false");
    let is_upload =
        method == hyper::Method::POST && req.uri().path().ends_with("/import") && !is_import;
    if is_upload {
        sw.uploads.fetch_add(1, Ordering::SeqCst);
    }
    let mut out = http.request(
        reqwest::Method::from_bytes(method.as_str().as_bytes()).expect("method"),
        format!("{upstream}{path}"),
    );
    for (k, v) in req.headers() {
        // reqwest sets these itself for the forwarded body and connection.
        if !["host", "content-length", "connection", "transfer-encoding"].contains(&k.as_str()) {
            out = out.header(k.as_str(), v.as_bytes());
        }
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let resp = match out.body(body).send().await {
        Ok(r) => r,
        Err(e) => return respond(502, None, Bytes::from(e.to_string())),
    };
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let bytes = resp.bytes().await.unwrap_or_default();
    if is_import && sw.hold_import.load(Ordering::SeqCst) {
        sw.import_done.store(true, Ordering::SeqCst);
        // annoform is killed meanwhile; the answer it waits for never comes.
        tokio::time::sleep(Duration::from_secs(600)).await;
    }
    if empty {
        sw.spoiled.fetch_add(1, Ordering::SeqCst);
        let mut v: serde_json::Value = serde_json::from_slice(&bytes).expect("a task page");
        v["tasks"] = serde_json::json!([]);
        return respond(status, ctype.as_deref(), Bytes::from(v.to_string()));
    }
    if nothing {
        sw.spoiled.fetch_add(1, Ordering::SeqCst);
        let v = serde_json::json!({"total": 0, "total_annotations": 0, "total_predictions": 0, "tasks": []});
        return respond(status, ctype.as_deref(), Bytes::from(v.to_string()));
    }
    if is_upload && sw.hold_upload.load(Ordering::SeqCst) {
        sw.upload_done.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(600)).await;
    }
    respond(status, ctype.as_deref(), bytes)
}

fn respond(status: u16, ctype: Option<&str>, body: Bytes) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", ctype.unwrap_or("application/json"))
        .body(Full::new(body))
        .expect("response")
}
