//! The shared HTTP policy against a real HTTP server on a free loopback port.

use annoform::backend::http::{HttpClient, HttpError, HttpPolicy};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use reqwest::Method;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

type Reply = Response<Full<Bytes>>;

fn reply(status: u16, body: impl Into<String>) -> Reply {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.into())))
        .expect("response")
}

/// Serves `handler` on 127.0.0.1 with an OS-chosen port until the test's runtime ends.
async fn serve<F, Fut>(handler: F) -> String
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler(req).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

/// Small backoffs so retry tests stay fast.
fn fast() -> HttpPolicy {
    HttpPolicy {
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(1),
        max_retries: 4,
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        max_retry_after: Duration::from_secs(5),
        parallelism: 8,
        ..HttpPolicy::default()
    }
}

fn client(base: &str, policy: HttpPolicy) -> HttpClient {
    HttpClient::new("labelstudio", base, policy, vec![]).expect("client")
}

/// One scripted answer: status, headers, body.
type Scripted = (u16, &'static [(&'static str, &'static str)], &'static str);

/// A handler answering from `script` by hit number (the last entry repeats), counting hits.
fn scripted(
    hits: Arc<AtomicUsize>,
    script: Vec<Scripted>,
) -> impl Fn(Request<Incoming>) -> std::future::Ready<Reply> + Clone + Send + Sync + 'static {
    let script = Arc::new(script);
    move |_req| {
        let n = hits.fetch_add(1, Ordering::SeqCst);
        let (status, headers, body) = script[n.min(script.len() - 1)];
        let mut r = reply(status, body);
        for (k, v) in headers {
            r.headers_mut().insert(*k, v.parse().expect("header value"));
        }
        std::future::ready(r)
    }
}

#[tokio::test]
async fn server_errors_are_retried_until_success() {
    let hits = Arc::new(AtomicUsize::new(0));
    let base = serve(scripted(
        hits.clone(),
        vec![
            (503, &[], "busy"),
            (503, &[], "busy"),
            (200, &[], r#"{"id": 7}"#),
        ],
    ))
    .await;
    let project: Value = client(&base, fast())
        .get_json("/api/projects/7")
        .await
        .expect("succeeds on the third attempt");
    assert_eq!(project, json!({"id": 7}));
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn too_many_requests_waits_for_retry_after_even_for_post() {
    let hits = Arc::new(AtomicUsize::new(0));
    let base = serve(scripted(
        hits.clone(),
        vec![
            (429, &[("retry-after", "1")], "slow down"),
            (201, &[], r#"{"id": 1}"#),
        ],
    ))
    .await;
    let started = Instant::now();
    let created: Value = client(&base, fast())
        .post_json("/api/projects", &json!({"title": "run"}))
        .await
        .expect("retried after 429");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(created["id"], 1);
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn client_errors_are_not_retried_and_say_what_was_answered() {
    let hits = Arc::new(AtomicUsize::new(0));
    let long_body: &'static str = Box::leak(
        format!(
            r#"{{"detail": "unknown label 'car'", "pad": "{}"}}"#,
            "x".repeat(1000)
        )
        .into_boxed_str(),
    );
    let base = serve(scripted(hits.clone(), vec![(400, &[], long_body)])).await;
    let err = client(&base, fast())
        .post_json::<_, Value>("/api/projects/3/import", &json!([]))
        .await
        .expect_err("400");
    assert_eq!(hits.load(Ordering::SeqCst), 1, "4xx is not retried");
    assert!(!err.is_retryable());
    let msg = err.to_string();
    let head = format!(
        "labelstudio ({base}): POST /api/projects/3/import: HTTP 400 Bad Request: {{\"detail\": \"unknown label 'car'\""
    );
    assert!(msg.starts_with(&head), "{msg}");
    assert!(msg.ends_with('…'), "trimmed: {msg}");
    assert!(
        msg.len() < head.len() + 400,
        "trimmed to ~300 chars: {}",
        msg.len()
    );
}

#[tokio::test]
async fn post_is_not_repeated_after_a_server_error() {
    let hits = Arc::new(AtomicUsize::new(0));
    let base = serve(scripted(hits.clone(), vec![(502, &[], "bad gateway")])).await;
    let err = client(&base, fast())
        .post_json::<_, Value>("/api/tasks", &json!({"name": "batch-0"}))
        .await
        .expect_err("502");
    // The server may have created the task before failing; a retry could create a second.
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert!(
        err.to_string()
            .contains("HTTP 502 Bad Gateway: bad gateway"),
        "{err}"
    );

    // The caller can vouch for idempotency (and the closure is re-invoked per attempt).
    let hits = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let (h, b) = (hits.clone(), bodies.clone());
    let base = serve(move |req: Request<Incoming>| {
        let (h, b) = (h.clone(), b.clone());
        async move {
            let body = req.into_body().collect().await.expect("body").to_bytes();
            b.lock()
                .expect("lock")
                .push(String::from_utf8_lossy(&body).into_owned());
            if h.fetch_add(1, Ordering::SeqCst) == 0 {
                reply(500, "oops")
            } else {
                reply(200, "{}")
            }
        }
    })
    .await;
    let builds = AtomicUsize::new(0);
    let response = client(&base, fast())
        .send(Method::POST, "/api/upload", true, |r| {
            builds.fetch_add(1, Ordering::SeqCst);
            r.body("payload")
        })
        .await
        .expect("retried");
    assert_eq!(response.status(), 200);
    assert_eq!(builds.load(Ordering::SeqCst), 2);
    assert_eq!(*bodies.lock().expect("lock"), vec!["payload", "payload"]);
}

#[tokio::test]
async fn secrets_are_redacted_from_url_and_body() {
    let seen_auth = Arc::new(Mutex::new(None));
    let seen = seen_auth.clone();
    let base = serve(move |req: Request<Incoming>| {
        let seen = seen.clone();
        async move {
            let auth = req
                .headers()
                .get("authorization")
                .map(|v| v.to_str().expect("ascii").to_string());
            *seen.lock().expect("lock") = auth.clone();
            let echo = json!({
                "detail": "invalid credentials",
                "uri": req.uri().to_string(),
                "auth": auth,
                "note": "password was s3cr3t-pw",
            });
            reply(403, echo.to_string())
        }
    })
    .await;
    let client = HttpClient::new("cvat", &base, fast(), vec!["s3cr3t-pw".into()])
        .expect("client")
        .with_header("Authorization", "Token tok-42-abc", true)
        .expect("header");
    let err = client
        .get_json::<Value>("/api/users/self?password=s3cr3t-pw&org=x")
        .await
        .expect_err("403");
    assert_eq!(
        seen_auth.lock().expect("lock").as_deref(),
        Some("Token tok-42-abc"),
        "the real credential is sent"
    );
    let msg = err.to_string();
    assert!(!msg.contains("s3cr3t-pw"), "{msg}");
    assert!(!msg.contains("tok-42-abc"), "{msg}");
    assert!(
        msg.contains("GET /api/users/self?password=***&org=x"),
        "{msg}"
    );
    assert!(msg.contains("Token ***"), "{msg}");
    assert!(msg.contains("password was ***"), "{msg}");
    assert!(msg.contains("HTTP 403 Forbidden"), "{msg}");
}

#[tokio::test]
async fn garbage_answers_are_decode_errors_naming_the_object() {
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Task {
        id: u64,
    }
    let hits = Arc::new(AtomicUsize::new(0));
    let base = serve(scripted(
        hits.clone(),
        vec![
            (200, &[], "<html>\n  <body>Welcome to nginx</body>\n</html>"),
            (200, &[], r#"{"id": "not-a-number"}"#),
        ],
    ))
    .await;
    let c = client(&base, fast());
    let err = c.get_json::<Task>("/api/tasks/5").await.expect_err("html");
    assert!(matches!(err, HttpError::Decode { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("labelstudio ({base}): GET /api/tasks/5")),
        "{msg}"
    );
    assert!(
        msg.contains("<html> <body>Welcome to nginx</body> </html>"),
        "{msg}"
    );

    let err = c.get_json::<Task>("/api/tasks/5").await.expect_err("shape");
    let msg = err.to_string();
    assert!(msg.contains("invalid type"), "{msg}");
    assert!(msg.contains(r#"{"id": "not-a-number"}"#), "{msg}");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        2,
        "decode errors are not retried"
    );
}

#[tokio::test]
async fn parallelism_bounds_requests_in_flight() {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (f, p) = (in_flight.clone(), peak.clone());
    let base = serve(move |_req| {
        let (f, p) = (f.clone(), p.clone());
        async move {
            let now = f.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            f.fetch_sub(1, Ordering::SeqCst);
            reply(200, "{}")
        }
    })
    .await;
    let client = Arc::new(client(
        &base,
        HttpPolicy {
            parallelism: 2,
            ..fast()
        },
    ));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..6 {
        let c = client.clone();
        tasks.spawn(async move { c.get_json::<Value>(&format!("/api/items/{i}")).await });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task").expect("request");
    }
    assert_eq!(
        peak.load(Ordering::SeqCst),
        2,
        "never more than 2, and 2 were used"
    );
}

#[tokio::test]
async fn closed_port_is_a_connect_error_after_retries() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let base = format!("http://127.0.0.1:{port}");
    let policy = HttpPolicy {
        max_retries: 2,
        ..fast()
    };
    // Connect errors are retried even for POST: the server never saw the request.
    let err = client(&base, policy)
        .post_json::<_, Value>("/api/projects", &json!({}))
        .await
        .expect_err("nothing listens");
    assert!(matches!(err, HttpError::Connect { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "labelstudio ({base}): POST /api/projects: cannot connect"
        )),
        "{msg}"
    );
    assert!(msg.ends_with("(after 3 attempts)"), "{msg}");
}

#[tokio::test]
async fn slow_server_times_out() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let base = serve(move |_req| {
        h.fetch_add(1, Ordering::SeqCst);
        async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            reply(200, "{}")
        }
    })
    .await;
    let policy = HttpPolicy {
        timeout: Duration::from_millis(200),
        max_retries: 1,
        ..fast()
    };
    let started = Instant::now();
    let err = client(&base, policy)
        .get_json::<Value>("/api/slow")
        .await
        .expect_err("times out");
    assert!(matches!(err, HttpError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(hits.load(Ordering::SeqCst), 2, "a GET timeout is retried");
    assert_eq!(
        err.to_string(),
        format!("labelstudio ({base}): GET /api/slow: no answer within 200ms (after 2 attempts)")
    );
}

#[tokio::test]
async fn delete_of_a_missing_object_is_not_an_error() {
    let hits = Arc::new(AtomicUsize::new(0));
    let base = serve(scripted(
        hits.clone(),
        vec![(204, &[], ""), (404, &[], r#"{"detail": "Not found."}"#)],
    ))
    .await;
    let c = client(&base, fast());
    assert!(c.delete("/api/tasks/1").await.expect("deleted"));
    assert!(!c.delete("/api/tasks/1").await.expect("already gone"));
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

/// What a raw connection handler does with one connection (by hit number, from 0).
type RawHandler = Arc<dyn Fn(usize, tokio::net::TcpStream) -> RawFuture + Send + Sync>;
type RawFuture = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// A loopback server writing raw bytes, for answers hyper would not send (resets, bodies
/// shorter than their length, endless bodies); it reads the request head first.
async fn serve_raw(hits: Arc<AtomicUsize>, handler: RawHandler) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let n = hits.fetch_add(1, Ordering::SeqCst);
            let handler = handler.clone();
            tokio::spawn(async move {
                read_head(&mut stream).await;
                handler(n, stream).await;
            });
        }
    });
    format!("http://{addr}")
}

/// Reads up to the end of the request head (the tests send no bodies on GET).
async fn read_head(stream: &mut tokio::net::TcpStream) {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
}

async fn write_raw(stream: &mut tokio::net::TcpStream, bytes: &[u8]) -> bool {
    use tokio::io::AsyncWriteExt;
    stream.write_all(bytes).await.is_ok()
}

#[tokio::test]
async fn a_non_json_success_answer_is_not_read_whole() {
    let hits = Arc::new(AtomicUsize::new(0));
    let written = Arc::new(AtomicUsize::new(0));
    let w = written.clone();
    // An endless HTML page: a client reading it whole would only stop at the timeout.
    let base = serve_raw(
        hits.clone(),
        Arc::new(move |_, mut stream| {
            let w = w.clone();
            Box::pin(async move {
                let head = b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\nconnection: close\r\n\r\n<html>";
                if !write_raw(&mut stream, head).await {
                    return;
                }
                let chunk = vec![b'x'; 64 * 1024];
                while write_raw(&mut stream, &chunk).await {
                    if w.fetch_add(chunk.len(), Ordering::SeqCst) > 1 << 30 {
                        return;
                    }
                }
            })
        }),
    )
    .await;
    let policy = HttpPolicy {
        max_retries: 0,
        ..fast()
    };
    let err = client(&base, policy)
        .get_json::<Value>("/api/tasks")
        .await
        .expect_err("not JSON");
    assert!(matches!(err, HttpError::Decode { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("GET /api/tasks"), "{msg}");
    assert!(msg.contains("not JSON (text/html)"), "{msg}");
    assert!(msg.contains("<html>xxx"), "{msg}");
    assert!(
        msg.len() < 1000,
        "only the beginning is shown: {}",
        msg.len()
    );
    assert!(
        written.load(Ordering::SeqCst) < 64 << 20,
        "read {} bytes of a page that is not JSON",
        written.load(Ordering::SeqCst)
    );
}

#[tokio::test]
async fn answers_over_the_size_limit_are_refused_naming_the_limit() {
    let big: &'static str =
        Box::leak(format!(r#"{{"pad": "{}"}}"#, "x".repeat(3 << 20)).into_boxed_str());
    let hits = Arc::new(AtomicUsize::new(0));
    let base = serve(scripted(hits.clone(), vec![(200, &[], big)])).await;
    let policy = HttpPolicy {
        max_body: 1 << 20,
        ..fast()
    };
    let err = client(&base, policy.clone())
        .get_json::<Value>("/api/big?page=1")
        .await
        .expect_err("too large");
    assert!(matches!(err, HttpError::TooLarge { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "labelstudio ({base}): GET /api/big?page=1: the answer is larger than the limit of 1 MiB for one answer"
        )
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1, "not retried");

    // Without a declared length the limit holds while reading.
    let base = serve_raw(
        Arc::new(AtomicUsize::new(0)),
        Arc::new(|_, mut stream| {
            Box::pin(async move {
                let head = b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n[";
                if write_raw(&mut stream, head).await {
                    let chunk = b"1,".repeat(32 * 1024);
                    while write_raw(&mut stream, &chunk).await {}
                }
            })
        }),
    )
    .await;
    let err = client(&base, policy)
        .get_json::<Value>("/api/endless")
        .await
        .expect_err("too large");
    assert!(matches!(err, HttpError::TooLarge { .. }), "{err}");
}

#[tokio::test]
async fn resets_and_cut_answers_are_retried_for_get_only() {
    // Hit 0: closed without an answer; 1: a body shorter than its length; 2: JSON cut off
    // by the connection closing; 3: the answer.
    let script: RawHandler = Arc::new(|n, mut stream| {
        Box::pin(async move {
            let answer: &[u8] = match n {
                0 => b"",
                1 => b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"id\": 1",
                2 => b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{\"id\": ",
                _ => b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 9\r\nconnection: close\r\n\r\n{\"id\": 1}",
            };
            write_raw(&mut stream, answer).await;
        })
    });
    let hits = Arc::new(AtomicUsize::new(0));
    let base = serve_raw(hits.clone(), script.clone()).await;
    let got: Value = client(&base, fast())
        .get_json("/api/tasks/1")
        .await
        .expect("retried until complete");
    assert_eq!(got, json!({"id": 1}));
    assert_eq!(hits.load(Ordering::SeqCst), 4);

    // The retries are bounded.
    let hits = Arc::new(AtomicUsize::new(0));
    let base = serve_raw(hits.clone(), Arc::new(|_, _| Box::pin(async {}))).await;
    let policy = HttpPolicy {
        max_retries: 2,
        ..fast()
    };
    let err = client(&base, policy)
        .get_json::<Value>("/api/tasks/1")
        .await
        .expect_err("always reset");
    assert!(matches!(err, HttpError::Interrupted { .. }), "{err}");
    assert!(err.to_string().contains("(after 3 attempts)"), "{err}");
    assert_eq!(hits.load(Ordering::SeqCst), 3);

    // A POST the server may have acted on is not repeated.
    let hits = Arc::new(AtomicUsize::new(0));
    let base = serve_raw(hits.clone(), script).await;
    let err = client(&base, fast())
        .post_json::<_, Value>("/api/tasks", &json!({}))
        .await
        .expect_err("reset");
    assert!(matches!(err, HttpError::Interrupted { .. }), "{err}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn terminal_controls_in_server_text_are_escaped() {
    let hits = Arc::new(AtomicUsize::new(0));
    let base = serve(scripted(
        hits,
        vec![(
            400,
            &[],
            "{\"detail\": \"\u{1b}[2J\u{1b}]0;pwned\u{7}bad\rlabel\u{9b}31m\"}",
        )],
    ))
    .await;
    let err = client(&base, fast())
        .get_json::<Value>("/api/x")
        .await
        .expect_err("400");
    let msg = err.to_string();
    assert!(!msg.chars().any(|c| c.is_control()), "{msg:?}");
    assert!(
        msg.contains(r"\x1b[2J\x1b]0;pwned\x07bad\rlabel\u{9b}31m"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_one_character_secret_does_not_mask_that_letter_everywhere() {
    let hits = Arc::new(AtomicUsize::new(0));
    let base = serve(scripted(
        hits,
        vec![(
            400,
            &[],
            r#"{"detail": "a bad password", "password": "a", "token": "x\"y"}"#,
        )],
    ))
    .await;
    let c = HttpClient::new("cvat", &base, fast(), vec!["a".into()]).expect("client");
    let msg = c
        .post_json::<_, Value>("/api/auth/login", &json!({}))
        .await
        .expect_err("400")
        .to_string();
    assert!(msg.contains(r#""detail": "a bad password""#), "{msg}");
    assert!(msg.contains(r#""password": "***""#), "{msg}");
    assert!(msg.contains(r#""token": "***""#), "{msg}");
}

#[tokio::test]
async fn an_empty_answer_where_json_is_expected_is_retried_then_an_error() {
    // An empty 200 to a listing is an answer lost on the way, not an empty list.
    let hits = Arc::new(AtomicUsize::new(0));
    let base = serve(scripted(
        hits.clone(),
        vec![(200, &[], ""), (200, &[], r#"{"count": 1}"#)],
    ))
    .await;
    let got: Value = client(&base, fast())
        .get_json("/api/tasks?project_id=1")
        .await
        .expect("retried until answered");
    assert_eq!(got, json!({"count": 1}));
    assert_eq!(hits.load(Ordering::SeqCst), 2);

    // Always empty: an error naming server, method and path, after the retries.
    let hits = Arc::new(AtomicUsize::new(0));
    let base = serve(scripted(hits.clone(), vec![(200, &[], "  ")])).await;
    let err = client(&base, fast())
        .get_json::<Value>("/api/tasks?project_id=1")
        .await
        .expect_err("never answered");
    assert!(matches!(err, HttpError::Empty { .. }), "{err}");
    let text = err.to_string();
    for part in [
        "labelstudio",
        "GET /api/tasks?project_id=1",
        "empty",
        "(after 5 attempts)",
    ] {
        assert!(text.contains(part), "{part:?} in {text}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 5);

    // A create answered with nothing is not repeated, and says so.
    let hits = Arc::new(AtomicUsize::new(0));
    let base = serve(scripted(hits.clone(), vec![(201, &[], "")])).await;
    let err = client(&base, fast())
        .post_json::<_, Value>("/api/projects", &json!({}))
        .await
        .expect_err("empty");
    assert!(
        err.to_string()
            .contains("POST /api/projects: the answer was empty (HTTP 201"),
        "{err}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // 204 No Content is empty by definition.
    let base = serve(scripted(Arc::default(), vec![(204, &[], "")])).await;
    let got: Value = client(&base, fast())
        .send_json(Method::PATCH, "/api/jobs/1", false, |r| r)
        .await
        .expect("no content");
    assert_eq!(got, Value::Null);
}
