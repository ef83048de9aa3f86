//! The one HTTP policy every backend uses: timeouts, retries with backoff and full jitter,
//! a bound on concurrent requests, and errors that name the server, the request and the
//! answer with every secret redacted.
//!
//! Retry rules. Connect errors and `429 Too Many Requests` are retried for every request:
//! in both cases the server did not act on it. Timeouts and `5xx` are retried only for
//! idempotent requests (GET, PUT, DELETE, HEAD, OPTIONS by default; callers may say
//! otherwise per call), because a POST that timed out may have created a task already and
//! repeating it would create a second one. A connection reset or an answer cut short is
//! retried like a `5xx`, and so is an empty answer where JSON is expected (only `204 No
//! Content` may be empty: an empty `200` to a listing is an answer lost on the way, not an
//! empty list). Other `4xx` are never retried.
//!
//! Answers are read chunk by chunk under a size limit (`HttpPolicy::max_body`); an answer
//! that is not JSON where JSON is expected is recognised by its first byte and only its
//! beginning is read, to be shown in the error.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Characters of a response body shown in an error.
const BODY_SHOWN: usize = 300;
/// Bytes of an error response read at most (an HTML error page can be large).
const ERROR_BODY_READ: usize = 64 * 1024;
/// What a secret is replaced with.
const MASK: &str = "***";
/// Secrets shorter than this are not masked wherever their text occurs (a one-letter
/// password would mask that letter in every message); they are masked only where their
/// position says what they are (auth headers, URL credentials, secret-named fields).
const MIN_SUBSTRING_SECRET: usize = 4;
/// Default limit on one answer's size.
const MAX_BODY: u64 = 256 * 1024 * 1024;

/// Timeouts, retries and concurrency for one backend server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpPolicy {
    /// Whole-request timeout (connect, send, answer).
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Backoff cap before the first retry; doubles per retry up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Longest `Retry-After` honoured; a server asking for more gets this.
    pub max_retry_after: Duration,
    /// Requests in flight at once (`--parallelism`).
    pub parallelism: usize,
    /// Largest answer read, in bytes; a larger one is an error, not a memory spike.
    pub max_body: u64,
}

impl Default for HttpPolicy {
    fn default() -> Self {
        HttpPolicy {
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            max_retries: 4,
            base_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
            parallelism: 8,
            max_body: MAX_BODY,
        }
    }
}

impl HttpPolicy {
    /// The default policy with `--parallelism` applied. `ANNOFORM_HTTP_TIMEOUT_MS` shortens
    /// the request timeout, so tests can make a server stall past it in little time.
    pub fn with_parallelism(parallelism: usize) -> HttpPolicy {
        let timeout = std::env::var("ANNOFORM_HTTP_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis);
        HttpPolicy {
            parallelism,
            timeout: timeout.unwrap_or(HttpPolicy::default().timeout),
            ..HttpPolicy::default()
        }
    }

    /// The delay before retry `retry` (0 = first): full jitter, uniform in [0, cap], where
    /// the cap doubles from `base_backoff` up to `max_backoff`. Jitter keeps parallel
    /// workers that failed together from retrying together.
    pub fn backoff(&self, retry: u32) -> Duration {
        let cap = self
            .base_backoff
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.max_backoff);
        cap.mul_f64(unit_random())
    }
}

/// Whether repeating a request of this method is harmless by HTTP's definition.
pub fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
    )
}

/// Which server and request an error is about (already redacted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub server: String,
    pub base_url: String,
    pub method: Method,
    /// Path and query relative to the base URL (or the whole URL if elsewhere).
    pub path: String,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {} {}",
            self.server, self.base_url, self.method, self.path
        )
    }
}

/// A failed backend request; every string in it is redacted.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The server answered with a non-success status.
    #[error("{endpoint}: HTTP {status}{}{}", body_suffix(body), attempts_suffix(*attempts))]
    Status {
        endpoint: Box<Endpoint>,
        status: StatusCode,
        /// The answer, trimmed.
        body: String,
        /// `Retry-After`, if the server sent one in seconds.
        retry_after: Option<Duration>,
        attempts: u32,
    },
    /// No connection could be made.
    #[error("{endpoint}: cannot connect: {message}{}", attempts_suffix(*attempts))]
    Connect {
        endpoint: Box<Endpoint>,
        message: String,
        attempts: u32,
    },
    /// No (complete) answer within the timeout.
    #[error(
        "{endpoint}: no answer within {}{}",
        humantime::format_duration(*after),
        attempts_suffix(*attempts)
    )]
    Timeout {
        endpoint: Box<Endpoint>,
        after: Duration,
        attempts: u32,
    },
    /// The answer is not the JSON expected: a backend that returns garbage.
    #[error(
        "{endpoint}: answer is not the expected JSON ({message}): {}",
        shown_body(body)
    )]
    Decode {
        endpoint: Box<Endpoint>,
        message: String,
        /// The answer, trimmed.
        body: String,
    },
    /// The connection was reset or closed before the whole answer arrived.
    #[error("{endpoint}: connection interrupted: {message}{}", attempts_suffix(*attempts))]
    Interrupted {
        endpoint: Box<Endpoint>,
        message: String,
        attempts: u32,
    },
    /// A success answer with an empty body where JSON was expected.
    #[error(
        "{endpoint}: the answer was empty (HTTP {status}) where JSON was expected{}",
        attempts_suffix(*attempts)
    )]
    Empty {
        endpoint: Box<Endpoint>,
        status: StatusCode,
        attempts: u32,
    },
    /// The answer is larger than the policy allows.
    #[error(
        "{endpoint}: the answer is larger than the limit of {} for one answer",
        shown_size(*limit)
    )]
    TooLarge { endpoint: Box<Endpoint>, limit: u64 },
    /// Any other failure sending the request or reading the answer.
    #[error("{endpoint}: {message}{}", attempts_suffix(*attempts))]
    Request {
        endpoint: Box<Endpoint>,
        message: String,
        attempts: u32,
    },
    /// The client could not be set up (bad base URL or header).
    #[error("{server}: {message}")]
    Setup { server: String, message: String },
}

impl HttpError {
    /// Whether the failure is transient: connect errors, timeouts, interrupted or empty
    /// answers, 429 and 5xx.
    pub fn is_retryable(&self) -> bool {
        match self {
            HttpError::Connect { .. }
            | HttpError::Timeout { .. }
            | HttpError::Interrupted { .. }
            | HttpError::Empty { .. } => true,
            HttpError::Status { status, .. } => {
                *status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
            }
            HttpError::Decode { .. }
            | HttpError::TooLarge { .. }
            | HttpError::Request { .. }
            | HttpError::Setup { .. } => false,
        }
    }

    /// Whether the server certainly did not act on the request, so even a POST may repeat.
    fn not_acted_on(&self) -> bool {
        match self {
            HttpError::Connect { .. } => true,
            HttpError::Status { status, .. } => *status == StatusCode::TOO_MANY_REQUESTS,
            _ => false,
        }
    }

    /// The HTTP status, if the server answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    fn with_attempts(mut self, n: u32) -> Self {
        match &mut self {
            HttpError::Status { attempts, .. }
            | HttpError::Connect { attempts, .. }
            | HttpError::Timeout { attempts, .. }
            | HttpError::Interrupted { attempts, .. }
            | HttpError::Empty { attempts, .. }
            | HttpError::Request { attempts, .. } => *attempts = n,
            HttpError::Decode { .. } | HttpError::TooLarge { .. } | HttpError::Setup { .. } => {}
        }
        self
    }
}

fn body_suffix(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

fn shown_body(body: &str) -> &str {
    if body.is_empty() { "(empty)" } else { body }
}

/// The error text for a success answer that lacks what the request is for (`what`: "an
/// id"), naming the request and showing the answer (say "empty" when there was none).
pub fn answered_without(
    method: &Method,
    path: &str,
    what: &str,
    answer: &serde_json::Value,
) -> String {
    let shown = match answer {
        serde_json::Value::Null => "the answer was empty".to_string(),
        v => format!("the answer was {}", trim_body(&v.to_string())),
    };
    format!("{method} {path} answered without {what} ({shown})")
}

/// A byte count as MiB or KiB when exact, else bytes.
fn shown_size(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes % (1 << 10) == 0 {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}

fn attempts_suffix(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (after {attempts} attempts)")
    } else {
        String::new()
    }
}

/// Replaces secrets in text: the configured ones (also URL-encoded; only those of at least
/// `MIN_SUBSTRING_SECRET` characters) and any credential after `Token `, `Bearer ` or
/// `Basic ` (case-sensitive: "a basic error" is prose), in a secret-named query parameter
/// or in a secret-named JSON string field. Terminal control characters are escaped too:
/// everything redacted is on its way to the user.
#[derive(Clone, Default)]
struct Redactor {
    /// Longest first, so a secret containing another is masked whole.
    secrets: Vec<String>,
}

static SCHEME_CREDENTIAL: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r#"\b(Token|Bearer|Basic)(\s+)[^\s"',;}]+"#).expect("static regex")
});
static QUERY_CREDENTIAL: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"([?&](?:api_key|apikey|key|token|access_token|password|secret)=)[^&#\s]+")
        .expect("static regex")
});
static FIELD_CREDENTIAL: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(
        r#"("(?:password|api_key|apikey|key|token|access|refresh|access_token|refresh_token|secret|sessionid|csrftoken)"\s*:\s*")(?:[^"\\]|\\.)*""#,
    )
    .expect("static regex")
});

// Hand-written so `{:?}` of a client never prints the secrets it protects.
impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} patterns)", self.secrets.len())
    }
}

impl Redactor {
    fn new(secrets: Vec<String>) -> Redactor {
        let mut r = Redactor::default();
        for s in secrets {
            r.add(&s);
        }
        r
    }

    fn add(&mut self, secret: &str) {
        if secret.chars().count() < MIN_SUBSTRING_SECRET {
            return;
        }
        for form in [
            secret.to_string(),
            percent_encode(secret, Escape::Component),
            percent_encode(secret, Escape::Form),
        ] {
            if !self.secrets.contains(&form) {
                self.secrets.push(form);
            }
        }
        self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        let out = SCHEME_CREDENTIAL.replace_all(&out, format!("${{1}}${{2}}{MASK}"));
        let out = QUERY_CREDENTIAL.replace_all(&out, format!("${{1}}{MASK}"));
        let out = FIELD_CREDENTIAL.replace_all(&out, format!("${{1}}{MASK}\""));
        crate::escape::controls(&out).into_owned()
    }
}

/// What [`percent_encode`] leaves as it is besides the unreserved characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// A URL component: nothing else.
    Component,
    /// A form value: a space becomes `+`.
    Form,
    /// A path: `/` stays.
    Path,
}

/// Percent-encodes all but unreserved characters (and what `how` keeps).
pub fn percent_encode(s: &str, how: Escape) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(b));
            }
            b' ' if how == Escape::Form => out.push('+'),
            b'/' if how == Escape::Path => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Whitespace collapsed (HTML error pages are mostly indentation) and cut to `BODY_SHOWN`.
fn trim_body(body: &str) -> String {
    let collapsed = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match collapsed.char_indices().nth(BODY_SHOWN) {
        Some((cut, _)) => format!("{}…", &collapsed[..cut]),
        None => collapsed,
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare from APIs and falls back to backoff).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    value.parse::<u64>().ok().map(Duration::from_secs)
}

/// Uniform in [0, 1); 0.5 if the OS has no randomness to give (still a valid backoff).
fn unit_random() -> f64 {
    getrandom::u64().map_or(0.5, |x| (x >> 11) as f64 / (1u64 << 53) as f64)
}

/// An HTTP client for one backend server, applying an `HttpPolicy`.
#[derive(Debug, Clone)]
pub struct HttpClient {
    server: String,
    /// Without trailing slash; paths are appended to it.
    base_url: String,
    /// The base URL as shown in errors: its password masked by position.
    shown_base_url: String,
    policy: HttpPolicy,
    headers: HeaderMap,
    client: Client,
    limit: Arc<Semaphore>,
    redactor: Redactor,
}

impl HttpClient {
    /// A client for `server_name` at `base_url`; `secrets` are masked in every error.
    pub fn new(
        server_name: &str,
        base_url: &str,
        policy: HttpPolicy,
        secrets: Vec<String>,
    ) -> Result<HttpClient, HttpError> {
        let mut redactor = Redactor::new(secrets);
        let setup = |message: String| HttpError::Setup {
            server: server_name.to_string(),
            message,
        };
        let parsed = reqwest::Url::parse(base_url).map_err(|e| {
            setup(format!(
                "invalid base URL {:?}: {e}",
                redactor.redact(base_url)
            ))
        })?;
        let mut shown = parsed.clone();
        if let Some(password) = parsed.password() {
            redactor.add(password);
            let _ = shown.set_password(Some(MASK));
        }
        let shown_base_url = match shown.as_str().strip_suffix('/') {
            Some(s) if !base_url.ends_with('/') => s.to_string(),
            _ => shown.to_string(),
        };
        let headers = HeaderMap::new();
        let client = build_client(&policy, &headers).map_err(|e| setup(e.to_string()))?;
        Ok(HttpClient {
            server: server_name.to_string(),
            base_url: base_url.trim_end_matches('/').to_string(),
            shown_base_url: shown_base_url.trim_end_matches('/').to_string(),
            limit: Arc::new(Semaphore::new(policy.parallelism.max(1))),
            policy,
            headers,
            client,
            redactor,
        })
    }

    /// Adds a header sent with every request; a `secret` one (e.g. `Authorization`) is
    /// marked sensitive and its value, and the credential inside it, redacted.
    pub fn with_header(
        mut self,
        name: &str,
        value: &str,
        secret: bool,
    ) -> Result<HttpClient, HttpError> {
        let setup = |message: String| HttpError::Setup {
            server: self.server.clone(),
            message,
        };
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| setup(format!("invalid header name {name:?}: {e}")))?;
        // The value is not echoed: it may be the secret.
        let mut header_value = HeaderValue::from_str(value)
            .map_err(|e| setup(format!("invalid value for header {name}: {e}")))?;
        if secret {
            header_value.set_sensitive(true);
            // `Token abc` masks as `Token ***`: the scheme helps debugging, the rest is secret.
            match value.split_once(' ') {
                Some((_, credential)) if !credential.trim().is_empty() => {
                    self.redactor.add(credential.trim());
                }
                _ => self.redactor.add(value),
            }
        }
        self.headers.insert(header, header_value);
        self.client =
            build_client(&self.policy, &self.headers).map_err(|e| setup(e.to_string()))?;
        Ok(self)
    }

    /// The server's name as used in manifests.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The base URL (without trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The policy in force.
    pub fn policy(&self) -> &HttpPolicy {
        &self.policy
    }

    /// The URL for `path` (relative to the base URL, or absolute as in pagination links).
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else if path.starts_with('/') {
            format!("{}{path}", self.base_url)
        } else {
            format!("{}/{path}", self.base_url)
        }
    }

    /// The error for an answer that is not whole although the server sent it as a success
    /// (a list short of the count it announces, a page without its list).
    pub fn incomplete(&self, method: &Method, path: &str, message: &str) -> HttpError {
        HttpError::Request {
            endpoint: Box::new(self.endpoint(method, path)),
            message: format!("incomplete answer: {}", self.redact(message)),
            attempts: 1,
        }
    }

    /// `text` with every known secret masked.
    pub fn redact(&self, text: &str) -> String {
        self.redactor.redact(text)
    }

    /// Sends a request under the policy; `build` adds body, query and headers and is called
    /// again for every attempt (bodies such as multipart forms cannot be replayed).
    ///
    /// `idempotent` says whether a timeout or 5xx may be retried (see the module docs). The
    /// concurrency limit covers the request until the response headers arrive; a caller
    /// streaming a large body reads it outside the limit.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        idempotent: bool,
        build: impl Fn(RequestBuilder) -> RequestBuilder + Sync,
    ) -> Result<Response, HttpError> {
        let (method, build) = (&method, &build);
        self.with_retries(method, path, idempotent, move || {
            self.attempt(method, path, build)
        })
        .await
    }

    /// Sends a request and decodes the JSON answer. Only a `204 No Content` answer may be
    /// empty (it decodes as `null`); any other empty answer is an error, retried where the
    /// request may be repeated.
    pub async fn send_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        idempotent: bool,
        build: impl Fn(RequestBuilder) -> RequestBuilder + Sync,
    ) -> Result<T, HttpError> {
        let (method, build) = (&method, &build);
        // Reading and decoding happen inside each attempt, so an answer cut short is retried.
        self.with_retries(method, path, idempotent, move || async move {
            let response = self.attempt(method, path, build).await?;
            let status = response.status();
            let body = self.read_json(method, path, response).await?;
            self.decode(method, path, status, &body)
        })
        .await
    }

    /// Decodes a JSON answer. An empty answer is `null` for `204 No Content` and an error for
    /// any other status; JSON that ends early is an interrupted answer (a connection closed
    /// mid-body without a declared length).
    fn decode<T: DeserializeOwned>(
        &self,
        method: &Method,
        path: &str,
        status: StatusCode,
        body: &[u8],
    ) -> Result<T, HttpError> {
        let text: &[u8] = if !body.iter().all(u8::is_ascii_whitespace) {
            body
        } else if status == StatusCode::NO_CONTENT {
            b"null"
        } else {
            return Err(HttpError::Empty {
                endpoint: Box::new(self.endpoint(method, path)),
                status,
                attempts: 1,
            });
        };
        serde_json::from_slice(text).map_err(|e| {
            let endpoint = Box::new(self.endpoint(method, path));
            if e.is_eof() {
                HttpError::Interrupted {
                    endpoint,
                    message: format!("the answer ended after {} bytes", body.len()),
                    attempts: 1,
                }
            } else {
                HttpError::Decode {
                    endpoint,
                    message: self.redact(&e.to_string()),
                    body: self.shown_body(body),
                }
            }
        })
    }

    /// The beginning of an answer as shown in errors: redacted and trimmed.
    fn shown_body(&self, body: &[u8]) -> String {
        let head = &body[..body.len().min(ERROR_BODY_READ)];
        trim_body(&self.redact(&String::from_utf8_lossy(head)))
    }

    /// Reads a JSON answer chunk by chunk under the size limit. An answer whose first byte
    /// cannot start JSON is read no further than needed to show it.
    async fn read_json(
        &self,
        method: &Method,
        path: &str,
        mut response: Response,
    ) -> Result<Vec<u8>, HttpError> {
        self.check_length(method, path, &response)?;
        let mut body = Vec::new();
        let mut checked_start = false;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(method, path, e))?
        {
            body.extend_from_slice(&chunk);
            if !checked_start {
                if let Some(first) = body.iter().find(|b| !b.is_ascii_whitespace()) {
                    checked_start = true;
                    if !may_start_json(*first) {
                        return Err(self.not_json(method, path, response, body).await);
                    }
                }
            }
            if body.len() as u64 > self.policy.max_body {
                return Err(self.too_large(method, path));
            }
        }
        Ok(body)
    }

    /// Reads and drops an answer (under the size limit), so a body cut short still fails.
    async fn drain(
        &self,
        method: &Method,
        path: &str,
        mut response: Response,
    ) -> Result<(), HttpError> {
        self.check_length(method, path, &response)?;
        let mut read = 0u64;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(method, path, e))?
        {
            read += chunk.len() as u64;
            if read > self.policy.max_body {
                return Err(self.too_large(method, path));
            }
        }
        Ok(())
    }

    /// Refuses an answer whose declared length is over the limit before reading it.
    fn check_length(
        &self,
        method: &Method,
        path: &str,
        response: &Response,
    ) -> Result<(), HttpError> {
        match response.content_length() {
            Some(n) if n > self.policy.max_body => Err(self.too_large(method, path)),
            _ => Ok(()),
        }
    }

    fn too_large(&self, method: &Method, path: &str) -> HttpError {
        HttpError::TooLarge {
            endpoint: Box::new(self.endpoint(method, path)),
            limit: self.policy.max_body,
        }
    }

    /// The error for a success answer that is not JSON: its content type and beginning.
    async fn not_json(
        &self,
        method: &Method,
        path: &str,
        mut response: Response,
        mut head: Vec<u8>,
    ) -> HttpError {
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|t| format!(" ({})", self.redact(t)))
            .unwrap_or_default();
        while head.len() < ERROR_BODY_READ {
            match response.chunk().await {
                Ok(Some(chunk)) => head.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        HttpError::Decode {
            endpoint: Box::new(self.endpoint(method, path)),
            message: format!("the answer is not JSON{content_type}"),
            body: self.shown_body(&head),
        }
    }

    /// GET `path` and decode its JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, HttpError> {
        self.send_json(Method::GET, path, true, |r| r).await
    }

    /// POST a JSON body and decode the JSON answer (not retried once the server may have
    /// acted on it).
    pub async fn post_json<B: Serialize + Sync + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, HttpError> {
        self.send_json(Method::POST, path, false, |r| r.json(body))
            .await
    }

    /// PUT a JSON body and decode the JSON answer.
    pub async fn put_json<B: Serialize + Sync + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, HttpError> {
        self.send_json(Method::PUT, path, true, |r| r.json(body))
            .await
    }

    /// PATCH a JSON body and decode the JSON answer (treated as not idempotent: a patch that
    /// appends labels would append twice).
    pub async fn patch_json<B: Serialize + Sync + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, HttpError> {
        self.send_json(Method::PATCH, path, false, |r| r.json(body))
            .await
    }

    /// DELETE `path`; `Ok(false)` if it was already gone (404), so destroy can repeat.
    pub async fn delete(&self, path: &str) -> Result<bool, HttpError> {
        let method = &Method::DELETE;
        let build = &|r: RequestBuilder| r;
        match self
            .with_retries(method, path, true, move || async move {
                let response = self.attempt(method, path, build).await?;
                self.drain(method, path, response).await
            })
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The retry loop around `attempt`, which is called again for every try.
    async fn with_retries<T, Fut>(
        &self,
        method: &Method,
        path: &str,
        idempotent: bool,
        try_once: impl Fn() -> Fut,
    ) -> Result<T, HttpError>
    where
        Fut: Future<Output = Result<T, HttpError>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = {
                // The permit is released before any backoff sleep so waiting retries do not
                // hold slots other requests could use.
                let _permit = self.limit.acquire().await.map_err(|e| HttpError::Request {
                    endpoint: Box::new(self.endpoint(method, path)),
                    message: e.to_string(),
                    attempts: attempt,
                })?;
                try_once().await
            };
            let err = match outcome {
                Ok(done) => return Ok(done),
                Err(err) => err,
            };
            let may_repeat = idempotent || err.not_acted_on();
            if attempt > self.policy.max_retries || !err.is_retryable() || !may_repeat {
                return Err(err.with_attempts(attempt));
            }
            let delay = match &err {
                HttpError::Status {
                    retry_after: Some(after),
                    ..
                } => (*after).min(self.policy.max_retry_after),
                _ => self.policy.backoff(attempt - 1),
            };
            tokio::time::sleep(delay).await;
        }
    }

    /// One attempt: send and check the status (an error answer becomes `HttpError::Status`).
    async fn attempt(
        &self,
        method: &Method,
        path: &str,
        build: &(dyn Fn(RequestBuilder) -> RequestBuilder + Sync),
    ) -> Result<Response, HttpError> {
        let request = build(self.client.request(method.clone(), self.url(path)))
            .build()
            .map_err(|e| self.transport_error(method, path, e))?;
        let response = self
            .client
            .execute(request)
            .await
            .map_err(|e| self.transport_error(method, path, e))?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = retry_after(response.headers());
            let body = read_error_body(response).await;
            return Err(HttpError::Status {
                endpoint: Box::new(self.endpoint(method, path)),
                status,
                body: trim_body(&self.redact(&body)),
                retry_after,
                attempts: 1,
            });
        }
        Ok(response)
    }

    /// The redacted endpoint of a request.
    fn endpoint(&self, method: &Method, path: &str) -> Endpoint {
        let url = self.url(path);
        let shown = url.strip_prefix(&self.base_url).unwrap_or(&url);
        Endpoint {
            server: self.server.clone(),
            base_url: self.redact(&self.shown_base_url),
            method: method.clone(),
            path: self.redact(shown),
        }
    }

    /// Classifies a reqwest error (its URL stripped: the endpoint already says where).
    fn transport_error(&self, method: &Method, path: &str, e: reqwest::Error) -> HttpError {
        let endpoint = Box::new(self.endpoint(method, path));
        if e.is_connect() {
            HttpError::Connect {
                endpoint,
                message: self.redact(&error_chain(&e)),
                attempts: 1,
            }
        } else if e.is_timeout() {
            HttpError::Timeout {
                endpoint,
                after: self.policy.timeout,
                attempts: 1,
            }
        } else if (e.is_body() || e.is_decode() || e.is_request())
            && !e.is_builder()
            && !e.is_redirect()
        {
            // Reset, closed or cut short after the connection was made.
            HttpError::Interrupted {
                endpoint,
                message: self.redact(&error_chain(&e)),
                attempts: 1,
            }
        } else {
            HttpError::Request {
                endpoint,
                message: self.redact(&error_chain(&e)),
                attempts: 1,
            }
        }
    }
}

fn build_client(policy: &HttpPolicy, headers: &HeaderMap) -> reqwest::Result<Client> {
    Client::builder()
        .timeout(policy.timeout)
        .connect_timeout(policy.connect_timeout)
        .default_headers(headers.clone())
        .user_agent(concat!("annoform/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The causes of a reqwest error, without the URL reqwest puts in its own message.
///
/// reqwest's top-level text ("error sending request for url (...)") repeats the URL and
/// hyper adds wrapper layers ("client error (Connect)"); the innermost causes say what
/// happened, so only a short kind label plus those are kept.
fn error_chain(e: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !e.is_connect() {
        // Connect errors already read "cannot connect: ...".
        let kind = if e.is_body() || e.is_decode() {
            "reading the answer failed"
        } else if e.is_builder() {
            "invalid request"
        } else if e.is_redirect() {
            "redirect failed"
        } else {
            "request failed"
        };
        parts.push(kind.to_string());
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !text.starts_with("client error (") && parts.last() != Some(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    if parts.is_empty() {
        parts.push(message_without_url(e));
    }
    parts.join(": ")
}

/// reqwest's message with its URL removed.
fn message_without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        let quoted = format!(" for url ({url})");
        if let Some(at) = text.find(&quoted) {
            text.replace_range(at..at + quoted.len(), "");
        }
    }
    text
}

/// Whether a JSON text can begin with this byte (after whitespace).
fn may_start_json(b: u8) -> bool {
    matches!(
        b,
        b'{' | b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n'
    )
}

/// Reads up to `ERROR_BODY_READ` bytes of an error answer (best effort: it is only shown).
async fn read_error_body(mut response: Response) -> String {
    let mut body = Vec::new();
    while body.len() < ERROR_BODY_READ {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    body.truncate(ERROR_BODY_READ);
    String::from_utf8_lossy(&body).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_jittered_below_a_doubling_cap() {
        let p = HttpPolicy {
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            ..HttpPolicy::default()
        };
        for retry in 0..40 {
            let cap = Duration::from_millis((100u64 << retry.min(20)).min(1000));
            for _ in 0..20 {
                assert!(p.backoff(retry) <= cap, "retry {retry}");
            }
        }
        let distinct: std::collections::BTreeSet<_> = (0..20).map(|_| p.backoff(5)).collect();
        assert!(distinct.len() > 1, "jittered");
    }

    #[test]
    fn redaction_masks_configured_and_scheme_credentials() {
        let r = Redactor::new(vec!["p@ss word".into(), String::new()]);
        assert_eq!(r.redact("pw=p@ss word!"), "pw=***!");
        assert_eq!(r.redact("?pw=p%40ss%20word&x"), "?pw=***&x");
        assert_eq!(r.redact("?pw=p%40ss+word&x"), "?pw=***&x");
        assert_eq!(
            r.redact(r#"{"auth": "Token abc123", "h": "Bearer x.y.z"}"#),
            r#"{"auth": "Token ***", "h": "Bearer ***"}"#
        );
        assert_eq!(
            r.redact("/api?x=1&api_key=zzz&y=2"),
            "/api?x=1&api_key=***&y=2"
        );
        assert_eq!(r.redact("nothing here"), "nothing here");
    }

    #[test]
    fn short_secrets_are_masked_by_position_only() {
        let r = Redactor::new(vec!["a".into(), "xyz".into()]);
        assert_eq!(r.redact("a lazy xyz"), "a lazy xyz");
        assert_eq!(
            r.redact(r#"{"password": "a", "key": "xyz", "name": "a"}"#),
            r#"{"password": "***", "key": "***", "name": "a"}"#
        );
        assert_eq!(r.redact("/login?password=a&x=a"), "/login?password=***&x=a");
    }

    #[test]
    fn bodies_are_collapsed_and_trimmed_on_char_boundaries() {
        assert_eq!(trim_body("  <h1>\n  Oops  </h1>\n"), "<h1> Oops </h1>");
        let long = "é".repeat(1000);
        let t = trim_body(&long);
        assert_eq!(t.chars().count(), BODY_SHOWN + 1);
        assert!(t.ends_with('…'));
    }

    #[test]
    fn retry_after_seconds_only() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn idempotency_by_method() {
        assert!(is_idempotent(&Method::GET));
        assert!(is_idempotent(&Method::DELETE));
        assert!(!is_idempotent(&Method::POST));
        assert!(!is_idempotent(&Method::PATCH));
    }

    #[test]
    fn urls_join_paths_and_keep_absolute_links() {
        let c = HttpClient::new("cvat", "http://h:8080/cvat/", HttpPolicy::default(), vec![])
            .expect("client");
        assert_eq!(c.url("/api/tasks"), "http://h:8080/cvat/api/tasks");
        assert_eq!(c.url("api/tasks"), "http://h:8080/cvat/api/tasks");
        assert_eq!(c.url("http://other/x?page=2"), "http://other/x?page=2");
        let e = c.endpoint(&Method::GET, "/api/tasks?page=2");
        assert_eq!(
            e.to_string(),
            "cvat (http://h:8080/cvat): GET /api/tasks?page=2"
        );
    }

    #[test]
    fn debug_output_holds_no_secrets() {
        let c = HttpClient::new("ls", "http://h", HttpPolicy::default(), vec!["pw-1".into()])
            .and_then(|c| c.with_header("Authorization", "Token tok-2", true))
            .expect("client");
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("pw-1") && !debug.contains("tok-2"),
            "{debug}"
        );
    }

    #[test]
    fn base_url_passwords_are_secrets() {
        let c = HttpClient::new(
            "ls",
            "http://me:hunter2@h:8080",
            HttpPolicy::default(),
            vec![],
        )
        .expect("client");
        assert_eq!(
            c.endpoint(&Method::GET, "/x").to_string(),
            "ls (http://me:***@h:8080): GET /x"
        );
        let err = HttpClient::new("ls", "not a url", HttpPolicy::default(), vec![]).unwrap_err();
        assert!(err.to_string().starts_with("ls: invalid base URL"), "{err}");
    }

    #[test]
    fn retryability() {
        let ep = || {
            Box::new(Endpoint {
                server: "s".into(),
                base_url: "b".into(),
                method: Method::GET,
                path: "/".into(),
            })
        };
        let status = |s: u16| HttpError::Status {
            endpoint: ep(),
            status: StatusCode::from_u16(s).expect("status"),
            body: String::new(),
            retry_after: None,
            attempts: 1,
        };
        assert!(status(429).is_retryable() && status(429).not_acted_on());
        assert!(status(503).is_retryable() && !status(503).not_acted_on());
        assert!(!status(400).is_retryable());
        assert!(!status(404).is_retryable());
        assert_eq!(
            status(400).with_attempts(3).to_string(),
            "s (b): GET /: HTTP 400 Bad Request (after 3 attempts)"
        );
    }
}
