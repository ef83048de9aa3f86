//! What every HTTP backend (Label Studio, CVAT, V7 Darwin) shares around the shared HTTP
//! policy ([`super::http`]): the async runtime its synchronous calls run on, the mapping of
//! a failed request to a [`BackendError`] with its [`Cause`] (the backend only adds its own
//! words for failures it knows, such as a refused key), and JSON calls with a query and a
//! body, retried as their method allows.

use super::http::{HttpClient, HttpError, is_idempotent};
use super::{BackendError, Cause};
use bytes::Bytes;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A backend that talks to its server over HTTP.
pub trait HttpBackend {
    /// The client, under the shared policy.
    fn http(&self) -> &HttpClient;

    /// The runtime its synchronous calls run on (made by [`runtime`]).
    fn runtime(&self) -> &tokio::runtime::Runtime;

    /// The backend's own words for a failure it recognises (a refused key, a page that is
    /// not its API); `None`: the policy's message.
    fn describe(&self, _e: &HttpError) -> Option<String> {
        None
    }

    /// A failure of this backend that trying again does not fix, secrets redacted.
    fn error(&self, message: impl Into<String>) -> BackendError
    where
        Self: Sized,
    {
        let http = self.http();
        BackendError::new(http.server(), http.redact(&message.into()))
    }

    /// A failed request, with its cause.
    fn http_error(&self, e: HttpError) -> BackendError
    where
        Self: Sized,
    {
        let cause = Cause::of(&e);
        let message = self.describe(&e).unwrap_or_else(|| e.to_string());
        self.error(message).because(cause)
    }

    /// Runs requests to their end on the backend's runtime, a failure mapped by
    /// [`http_error`](HttpBackend::http_error).
    fn run<T>(&self, f: impl Future<Output = Result<T, HttpError>>) -> Result<T, BackendError>
    where
        Self: Sized,
    {
        self.runtime().block_on(f).map_err(|e| self.http_error(e))
    }
}

/// A refused API key (HTTP 401) in words: a setup problem, not a server failure, so the
/// message says what to set for backend `kind` (an API key being `what`), without the
/// server's JSON. `None` for any other failure.
pub fn refused_key(e: &HttpError, kind: &str, what: &str) -> Option<String> {
    let HttpError::Status {
        endpoint, status, ..
    } = e
    else {
        return None;
    };
    (*status == StatusCode::UNAUTHORIZED).then(|| {
        format!(
            "the server at {} refused the API key ({} {}: HTTP 401): set `api_key` under \
             [backends.{kind}] in annoform.toml, or ANNOFORM_{}_API_KEY, to {what}",
            endpoint.base_url,
            endpoint.method,
            endpoint.path,
            kind.to_uppercase()
        )
    })
}

/// The runtime a backend's synchronous calls run on (two workers: the requests in flight are
/// bounded by the policy, not by threads).
pub fn runtime(name: &str) -> Result<tokio::runtime::Runtime, BackendError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| BackendError::new(name, format!("cannot start the async runtime: {e}")))
}

/// A request builder adding `query` and a JSON `body`.
pub fn with_json<'a, B: Serialize + Sync + ?Sized>(
    query: &'a [(&'a str, String)],
    body: Option<&'a B>,
) -> impl Fn(RequestBuilder) -> RequestBuilder + Sync + 'a {
    move |mut r| {
        if !query.is_empty() {
            r = r.query(query);
        }
        if let Some(b) = body {
            r = r.json(b);
        }
        r
    }
}

/// A request builder adding `query` and a body of JSON text written beforehand: every
/// attempt sends the same buffer, not a copy of it.
pub fn with_json_text<'a>(
    query: &'a [(&'a str, String)],
    body: &'a Bytes,
) -> impl Fn(RequestBuilder) -> RequestBuilder + Sync + 'a {
    move |mut r| {
        if !query.is_empty() {
            r = r.query(query);
        }
        r.header(CONTENT_TYPE, "application/json")
            .body(body.clone())
    }
}

/// One JSON call: `query`, a JSON `body`, the answer decoded into `T`; retried on timeouts
/// and 5xx only when `method` is idempotent.
pub async fn call_json<T: DeserializeOwned, B: Serialize + Sync + ?Sized>(
    http: &HttpClient,
    method: Method,
    path: &str,
    query: &[(&str, String)],
    body: Option<&B>,
) -> Result<T, HttpError> {
    let idempotent = is_idempotent(&method);
    http.send_json::<T>(method, path, idempotent, with_json(query, body))
        .await
}

/// A GET decoded into `T`, whose 404 is `None`.
pub async fn get_opt<T: DeserializeOwned>(
    http: &HttpClient,
    path: &str,
    query: &[(&str, String)],
) -> Result<Option<T>, HttpError> {
    match call_json(http, Method::GET, path, query, None::<&Value>).await {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => Ok(None),
        Err(e) => Err(e),
    }
}
