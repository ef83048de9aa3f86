//! A fault-injecting HTTP proxy on a loopback port, put between annoform and a backend server
//! (a real Label Studio, the CVAT fake) to make the server misbehave on cue.
//!
//! Rules match a request by method and path (a prefix of the path, or a regular expression
//! over path and query), optionally from its nth occurrence on and a bounded number of times;
//! the first rule that fires decides the answer. Requests no rule takes are forwarded as
//! they are. Actions: an answer of the proxy's own (status and body), the server's answer
//! with its body emptied, cut short or rewritten, a connection reset (before or after the
//! server acted), a stall, and holds: a held request waits (before it is forwarded, or
//! after, with the server's answer kept back) until the test releases it, and the test can
//! wait for it to arrive — so a test can kill annoform at an exact step, not at a moment in time.
//!
//! Every request is logged (method and target) and counted per rule; faults are counted by
//! kind. The proxy stops when dropped.

#![allow(dead_code)]

use futures_util::stream;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use regex::Regex;
use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How a rule picks requests.
#[derive(Clone, Debug)]
pub enum Target {
    /// The path (without the query) starts with this.
    Prefix(String),
    /// The regular expression matches somewhere in `path?query`.
    Regex(Regex),
}

impl Target {
    /// A regular expression over `path?query` (panics on a bad expression: a test bug).
    pub fn regex(re: &str) -> Target {
        Target::Regex(Regex::new(re).expect("a valid rule regex"))
    }

    fn matches(&self, path: &str, target: &str) -> bool {
        match self {
            Target::Prefix(p) => path.starts_with(p.as_str()),
            Target::Regex(r) => r.is_match(target),
        }
    }
}

/// What the proxy does with a request a rule takes.
#[derive(Clone, Debug)]
pub enum Action {
    /// Answer this status and JSON body without forwarding.
    Status(u16, String),
    /// Forward; answer the server's status and headers with an empty body.
    EmptyBody,
    /// Forward; answer the server's status and headers (announcing the whole length) with
    /// half of the body, then drop the connection.
    Truncated,
    /// Reset the connection without forwarding.
    Reset,
    /// Forward (the server acts), then reset the connection instead of answering.
    ResetAfterForward,
    /// Wait this long, then forward (the client may have given up meanwhile).
    Stall(Duration),
    /// Wait until released, then forward.
    HoldRequest,
    /// Forward, then keep the server's answer back until released.
    HoldAnswer,
    /// Forward; answer the server's status and headers with its JSON body edited (an answer
    /// that is not JSON goes through as it is).
    Rewrite(fn(&mut serde_json::Value)),
}

impl Action {
    /// The fault's kind in the counts.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Status(429, _) => "429",
            Action::Status(c, _) if *c >= 500 => "5xx",
            Action::Status(..) => "status",
            Action::EmptyBody => "empty body",
            Action::Truncated => "truncated body",
            Action::Reset | Action::ResetAfterForward => "reset",
            Action::Stall(_) => "stall",
            Action::HoldRequest | Action::HoldAnswer => "hold",
            Action::Rewrite(_) => "rewritten",
        }
    }
}

/// A rule: which requests (method, target, from the nth match on, how many times) and what
/// to do with them.
#[derive(Clone, Debug)]
pub struct Rule {
    method: Option<String>,
    target: Target,
    nth: usize,
    times: Option<usize>,
    action: Action,
}

impl Rule {
    /// `action` on requests of `method` (any with `"*"`) matching `target`: from the first
    /// match on, once.
    pub fn new(method: &str, target: Target, action: Action) -> Rule {
        Rule {
            method: (method != "*").then(|| method.to_ascii_uppercase()),
            target,
            nth: 1,
            times: Some(1),
            action,
        }
    }

    /// Fire from the `n`th matching request on (1-based).
    pub fn nth(mut self, n: usize) -> Rule {
        self.nth = n.max(1);
        self
    }

    /// Fire at most `n` times.
    pub fn times(mut self, n: usize) -> Rule {
        self.times = Some(n);
        self
    }

    /// Fire on every matching request from the nth on.
    pub fn always(mut self) -> Rule {
        self.times = None;
        self
    }

    /// Only count the requests of `method` matching `target` (never fires).
    pub fn count(method: &str, target: Target) -> Rule {
        Rule::new(method, target, Action::EmptyBody).times(0)
    }
}

/// A rule's live counts and its hold gate.
struct RuleState {
    rule: Rule,
    matched: usize,
    fired: usize,
    /// Requests this rule holds right now (arrived, not released).
    holding: usize,
    released: bool,
    /// Held requests are dropped, not forwarded, when released: their client was killed.
    drop_held: bool,
}

#[derive(Default)]
struct Shared {
    rules: Vec<RuleState>,
    log: Vec<(String, String)>,
    injected: BTreeMap<&'static str, usize>,
}

/// The proxy's state, and a condition variable for tests waiting on a hold.
#[derive(Default)]
struct Inner {
    shared: Mutex<Shared>,
    changed: Condvar,
    /// Wakes held requests when a rule is released.
    release: tokio::sync::Notify,
}

/// A rule installed in a proxy: its counts, and control of its holds.
pub struct RuleHandle {
    inner: Arc<Inner>,
    index: usize,
}

impl RuleHandle {
    /// Requests the rule's method and target matched so far (fired or not).
    pub fn matched(&self) -> usize {
        self.inner.shared.lock().unwrap().rules[self.index].matched
    }

    /// Times the rule fired so far.
    pub fn fired(&self) -> usize {
        self.inner.shared.lock().unwrap().rules[self.index].fired
    }

    /// Waits until a request is held by this rule (true), or `timeout` passes (false).
    pub fn wait_held(&self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        let mut s = self.inner.shared.lock().unwrap();
        while s.rules[self.index].holding == 0 {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            s = self.inner.changed.wait_timeout(s, left).unwrap().0;
        }
        true
    }

    /// Lets every request this rule holds (and will hold) go on.
    pub fn release(&self) {
        self.inner.shared.lock().unwrap().rules[self.index].released = true;
        self.inner.release.notify_waiters();
    }
}

/// A running proxy; stops (dropping held requests) when dropped.
pub struct FaultProxy {
    pub url: String,
    inner: Arc<Inner>,
    rt: Option<tokio::runtime::Runtime>,
}

type Body = BoxBody<Bytes, std::io::Error>;

impl FaultProxy {
    /// A proxy on a free port of 127.0.0.1 forwarding to `upstream` (`http://host:port`).
    pub fn start(upstream: &str) -> FaultProxy {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let inner = Arc::new(Inner::default());
        let upstream = upstream.trim_end_matches('/').to_string();
        // Redirects and bodies go to the client as the server sent them.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let state = inner.clone();
        rt.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (upstream, http, state) = (upstream.clone(), http.clone(), state.clone());
                tokio::spawn(serve(stream, upstream, http, state));
            }
        });
        FaultProxy {
            url,
            inner,
            rt: Some(rt),
        }
    }

    /// Installs a rule (after the ones already there).
    pub fn rule(&self, rule: Rule) -> RuleHandle {
        let mut s = self.inner.shared.lock().unwrap();
        s.rules.push(RuleState {
            rule,
            matched: 0,
            fired: 0,
            holding: 0,
            released: false,
            drop_held: false,
        });
        RuleHandle {
            inner: self.inner.clone(),
            index: s.rules.len() - 1,
        }
    }

    /// Releases every hold and disables every rule installed so far.
    pub fn clear(&self) {
        let mut s = self.inner.shared.lock().unwrap();
        for r in &mut s.rules {
            r.released = true;
            r.rule.times = Some(0);
        }
        drop(s);
        self.inner.release.notify_waiters();
    }

    /// Every request seen so far, in arrival order: (method, path?query).
    pub fn log(&self) -> Vec<(String, String)> {
        self.inner.shared.lock().unwrap().log.clone()
    }

    /// The requests `act` sends, in arrival order.
    pub fn log_of(&self, act: impl FnOnce()) -> Vec<(String, String)> {
        let start = self.log().len();
        act();
        self.log()[start..].to_vec()
    }

    /// Installs `hold` (a rule that holds a request or its answer), runs `cmd` until the rule
    /// holds one of its requests, kills it with SIGKILL (see [`kill_when_held`]), then clears
    /// every rule. Returns the rule, to read its counts.
    pub fn kill_at(
        &self,
        hold: Rule,
        cmd: &mut std::process::Command,
        timeout: Duration,
    ) -> Result<RuleHandle, String> {
        let handle = self.rule(hold);
        let killed = kill_when_held(cmd, &handle, timeout);
        // A request held before it was sent never reaches the server: its sender is dead.
        self.inner.shared.lock().unwrap().rules[handle.index].drop_held = true;
        self.clear();
        killed.map(|()| handle)
    }

    /// Faults injected so far, by kind (holds included).
    pub fn injected(&self) -> BTreeMap<&'static str, usize> {
        self.inner.shared.lock().unwrap().injected.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// One client connection. A duplicate of the socket is kept so a reset can set a zero
/// linger (the close then sends RST, not FIN).
async fn serve(
    stream: tokio::net::TcpStream,
    upstream: String,
    http: reqwest::Client,
    inner: Arc<Inner>,
) {
    let Ok(std_stream) = stream.into_std() else {
        return;
    };
    let dup = std_stream.try_clone().ok();
    let Ok(stream) = tokio::net::TcpStream::from_std(std_stream) else {
        return;
    };
    let dup = Arc::new(Mutex::new(dup));
    let service = service_fn(move |req| {
        let (upstream, http, inner, dup) =
            (upstream.clone(), http.clone(), inner.clone(), dup.clone());
        async move {
            match handle(req, &upstream, &http, &inner).await {
                Some(resp) => Ok(resp),
                None => {
                    reset(&dup);
                    Err(std::io::Error::other("connection reset by the fault proxy"))
                }
            }
        }
    });
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

fn reset(dup: &Mutex<Option<std::net::TcpStream>>) {
    if let Some(s) = dup.lock().unwrap().take()
        && let Ok(s) = tokio::net::TcpStream::from_std(s)
    {
        let _ = s.set_zero_linger();
    }
}

/// The answer to one request; `None` resets the connection.
async fn handle(
    req: Request<Incoming>,
    upstream: &str,
    http: &reqwest::Client,
    inner: &Inner,
) -> Option<Response<Body>> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| path.clone(), |p| p.as_str().to_string());
    let (index, action) = {
        let mut s = inner.shared.lock().unwrap();
        s.log.push((method.clone(), target.clone()));
        let mut chosen = None;
        for (i, r) in s.rules.iter_mut().enumerate() {
            let rule = &r.rule;
            if rule.method.as_ref().is_some_and(|m| *m != method)
                || !rule.target.matches(&path, &target)
            {
                continue;
            }
            r.matched += 1;
            if chosen.is_none() && r.matched >= rule.nth && rule.times.is_none_or(|t| r.fired < t) {
                r.fired += 1;
                chosen = Some((i, rule.action.clone()));
            }
        }
        if let Some((_, a)) = &chosen {
            *s.injected.entry(a.kind()).or_default() += 1;
        }
        chosen.unzip()
    };
    match action {
        Some(Action::Status(code, body)) => return Some(answer(code, Full::new(body.into()))),
        Some(Action::Reset) => return None,
        Some(Action::Stall(d)) => tokio::time::sleep(d).await,
        Some(Action::HoldRequest) => {
            hold(inner, index).await;
            if index.is_some_and(|i| inner.shared.lock().unwrap().rules[i].drop_held) {
                return None;
            }
        }
        _ => {}
    }
    let (status, headers, body) = forward(req, upstream, http).await;
    let mut b = Response::builder().status(status);
    for (k, v) in &headers {
        if !["content-length", "transfer-encoding", "connection"].contains(&k.as_str()) {
            b = b.header(k, v);
        }
    }
    let body: Body = match action {
        Some(Action::ResetAfterForward) => return None,
        Some(Action::EmptyBody) => {
            b = b.header("content-length", "0");
            Full::new(Bytes::new()).map_err(|e| match e {}).boxed()
        }
        Some(Action::Truncated) => {
            b = b.header("content-length", body.len().to_string());
            let half = body.slice(..body.len() / 2);
            let frames: Vec<Result<Frame<Bytes>, std::io::Error>> = vec![
                Ok(Frame::data(half)),
                Err(std::io::Error::other("body cut short by the fault proxy")),
            ];
            BodyExt::boxed(StreamBody::new(stream::iter(frames)))
        }
        Some(Action::HoldAnswer) => {
            hold(inner, index).await;
            Full::new(body).map_err(|e| match e {}).boxed()
        }
        Some(Action::Rewrite(edit)) => {
            let body = match serde_json::from_slice::<serde_json::Value>(&body) {
                Ok(mut v) => {
                    edit(&mut v);
                    Bytes::from(v.to_string())
                }
                Err(_) => body,
            };
            Full::new(body).map_err(|e| match e {}).boxed()
        }
        _ => Full::new(body).map_err(|e| match e {}).boxed(),
    };
    Some(b.body(body).expect("response"))
}

/// Blocks a request of rule `index` until the rule is released.
async fn hold(inner: &Inner, index: Option<usize>) {
    let i = index.expect("a hold comes from a rule");
    inner.shared.lock().unwrap().rules[i].holding += 1;
    inner.changed.notify_all();
    loop {
        // Created before the check, so a release in between is not missed.
        let released = inner.release.notified();
        if inner.shared.lock().unwrap().rules[i].released {
            break;
        }
        released.await;
    }
    inner.shared.lock().unwrap().rules[i].holding -= 1;
}

fn answer(code: u16, body: Full<Bytes>) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(body.map_err(|e| match e {}).boxed())
        .expect("response")
}

/// Sends the request on to the server; a server that cannot be reached is a 502.
async fn forward(
    req: Request<Incoming>,
    upstream: &str,
    http: &reqwest::Client,
) -> (u16, reqwest::header::HeaderMap, Bytes) {
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_string(), |p| p.as_str().to_string());
    let mut out = http.request(
        reqwest::Method::from_bytes(req.method().as_str().as_bytes()).expect("method"),
        format!("{upstream}{target}"),
    );
    for (k, v) in req.headers() {
        // The client's Host stays, so links the server builds point back at the proxy.
        if !["content-length", "connection", "transfer-encoding"].contains(&k.as_str()) {
            out = out.header(k.as_str(), v.as_bytes());
        }
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    match out.body(body).send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            (status, headers, r.bytes().await.unwrap_or_default())
        }
        Err(e) => (502, Default::default(), Bytes::from(e.to_string())),
    }
}

/// A regular expression matching the same endpoint as `target` (a logged `path?query`) on
/// another run: every number may differ (ids, pages), everything else is literal.
fn endpoint_regex(target: &str) -> String {
    let digits = Regex::new(r"\d+").unwrap();
    let mut re = String::from("^");
    let mut last = 0;
    for m in digits.find_iter(target) {
        re.push_str(&regex::escape(&target[last..m.start()]));
        re.push_str(r"\d+");
        last = m.end();
    }
    re.push_str(&regex::escape(&target[last..]));
    re.push('$');
    re
}

/// Runs `cmd` until `hold` holds one of its requests, then kills it with SIGKILL. An error
/// says what happened instead: the command ended first (with its output), or `timeout`
/// passed.
pub fn kill_when_held(
    cmd: &mut std::process::Command,
    hold: &RuleHandle,
    timeout: Duration,
) -> Result<(), String> {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the command: {e}"))?;
    let end = Instant::now() + timeout;
    loop {
        if hold.wait_held(Duration::from_millis(50)) {
            child.kill().map_err(|e| format!("kill: {e}"))?;
            child.wait().map_err(|e| format!("wait: {e}"))?;
            return Ok(());
        }
        if child.try_wait().ok().flatten().is_some() {
            let out = child.wait_with_output().map_err(|e| e.to_string())?;
            return Err(format!(
                "ended ({}) before the hold:\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("no hold within {timeout:?}"));
        }
    }
}

/// A request of a clean run where another run can be stopped: the `nth` request to the same
/// endpoint (same method, same path and query but for numbers).
#[derive(Clone, Debug)]
pub struct Boundary {
    pub method: String,
    pub endpoint: String,
    pub nth: usize,
    /// `METHOD path?query` as the clean run sent it.
    pub label: String,
}

impl Boundary {
    /// A rule doing `action` to this request of another run (counting from the rule's
    /// installation).
    pub fn rule(&self, action: Action) -> Rule {
        Rule::new(&self.method, Target::regex(&self.endpoint), action).nth(self.nth)
    }
}

/// The requests of `log` (a clean run's) that `keep` selects, as boundaries.
pub fn boundaries(log: &[(String, String)], keep: impl Fn(&str, &str) -> bool) -> Vec<Boundary> {
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut out = Vec::new();
    for (method, target) in log {
        let endpoint = endpoint_regex(target);
        let n = seen.entry((method.clone(), endpoint.clone())).or_default();
        *n += 1;
        if keep(method, target) {
            out.push(Boundary {
                method: method.clone(),
                endpoint,
                nth: *n,
                label: format!("{method} {target}"),
            });
        }
    }
    out
}

/// One fault of each kind the matrix injects; the stall lasts `stall` (longer than the
/// client's timeout).
pub fn fault_kinds(stall: Duration) -> Vec<Action> {
    vec![
        Action::Status(503, r#"{"detail":"injected: service unavailable"}"#.into()),
        Action::Status(429, r#"{"detail":"injected: too many requests"}"#.into()),
        Action::ResetAfterForward,
        Action::Truncated,
        Action::EmptyBody,
        Action::Stall(stall),
    ]
}

/// Runs `apply` (success, output) until it succeeds, at most `tries` times, printing each
/// outcome. Each failure must be a clear error: it names one of `names` (the server, the
/// backend) and does not panic. Problems go to `wrong` (prefixed with `context`); returns
/// whether it succeeded.
pub fn converge(
    apply: impl Fn() -> (bool, String),
    names: &[&str],
    tries: usize,
    context: &str,
    wrong: &mut Vec<String>,
) -> bool {
    for attempt in 1..=tries {
        let (ok, out) = apply();
        let error = out
            .lines()
            .find(|l| l.starts_with("error") || l.contains("panicked"))
            .unwrap_or("");
        eprintln!(
            "{context}: apply {attempt}: {}",
            if ok { "ok" } else { error }
        );
        if ok {
            return true;
        }
        if out.contains("panicked") || !names.iter().any(|n| error.contains(n)) {
            wrong.push(format!("{context}: an unclear error:\n{out}"));
        }
    }
    wrong.push(format!("{context}: apply failed {tries} times in a row"));
    false
}
