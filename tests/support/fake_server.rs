//! The HTTP server under the in-process fakes (CVAT, V7 Darwin): a free loopback port, a
//! current-thread runtime on its own thread, one `respond(state, request)` per request. The
//! server stops when the [`FakeServer`] is dropped.

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex};

pub struct FakeServer {
    base_url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeServer {
    /// Starts serving `state` through `respond` on `127.0.0.1:0`.
    pub fn start<S, F, Fut>(state: Arc<Mutex<S>>, respond: F) -> FakeServer
    where
        S: Send + 'static,
        F: Fn(Arc<Mutex<S>>, hyper::Request<Incoming>) -> Fut + Copy + Send + 'static,
        Fut: Future<Output = Result<hyper::Response<Full<Bytes>>, Infallible>> + Send + 'static,
    {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let base_url = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let thread = std::thread::spawn(move || serve(listener, state, respond, stopped));
        FakeServer {
            base_url,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve<S, F, Fut>(
    listener: std::net::TcpListener,
    state: Arc<Mutex<S>>,
    respond: F,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) where
    S: Send + 'static,
    F: Fn(Arc<Mutex<S>>, hyper::Request<Incoming>) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = Result<hyper::Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
        loop {
            let stream = tokio::select! {
                _ = &mut stopped => break,
                accepted = listener.accept() => match accepted {
                    Ok((s, _)) => s,
                    Err(_) => continue,
                },
            };
            let state = state.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |r| respond(state.clone(), r));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
}
