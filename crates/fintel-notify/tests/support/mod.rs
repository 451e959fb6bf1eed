//! Test support: a webhook server on 127.0.0.1 whose answer to each request is scripted, and
//! a tracing subscriber that captures log lines.

#![allow(dead_code)]

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;
use tokio::sync::Semaphore;

/// What the server does with the n-th request (counting from 0).
#[derive(Clone)]
pub enum Reply {
    /// Answers with this status and a short JSON body.
    Status(u16),
    /// Answers 429 with `Retry-After: seconds`.
    TooMany { retry_after_secs: u64 },
    /// Never answers.
    Hang,
    /// Waits for a permit of the gate, then answers 204.
    Gate(Arc<Semaphore>),
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub content_type: Option<String>,
    pub body: Value,
}

type Script = Arc<dyn Fn(usize) -> Reply + Send + Sync>;

#[derive(Clone)]
struct ServerState {
    script: Script,
    hits: Arc<AtomicUsize>,
    received: Arc<Mutex<Vec<Received>>>,
}

pub struct TestServer {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl TestServer {
    /// A server answering every request with `reply`.
    pub async fn start(reply: Reply) -> TestServer {
        TestServer::scripted(move |_| reply.clone()).await
    }

    /// A server answering the n-th request with `script(n)`.
    pub async fn scripted(script: impl Fn(usize) -> Reply + Send + Sync + 'static) -> TestServer {
        let state = ServerState {
            script: Arc::new(script),
            hits: Arc::new(AtomicUsize::new(0)),
            received: Arc::new(Mutex::new(Vec::new())),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        let app = Router::new().fallback(handle).with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestServer {
            addr,
            hits: state.hits,
            received: state.received,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }
}

async fn handle(
    State(state): State<ServerState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let n = state.hits.fetch_add(1, Ordering::SeqCst);
    let body = serde_json::from_slice(&body).unwrap_or_else(|e| {
        Value::String(format!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&body)
        ))
    });
    state.received.lock().expect("lock").push(Received {
        path: uri.path().to_string(),
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body,
    });
    match (state.script)(n) {
        Reply::Status(code) => {
            let status = StatusCode::from_u16(code).expect("valid status");
            (status, r#"{"message": "scripted answer"}"#).into_response()
        }
        Reply::TooMany { retry_after_secs } => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", retry_after_secs.to_string())],
            "slow down",
        )
            .into_response(),
        Reply::Hang => std::future::pending().await,
        Reply::Gate(gate) => {
            let _permit = gate.acquire().await.expect("gate open");
            StatusCode::NO_CONTENT.into_response()
        }
    }
}

/// A port on 127.0.0.1 that refuses connections: bound, then released.
pub fn refused_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    port
}

/// Runs `f` and returns its result with how long it took.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

/// Waits (polling, bounded by `limit`) until `cond` holds; returns whether it did.
pub async fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cond()
}

/// Captured log output of a thread-local tracing subscriber.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// Installs a subscriber for the current thread (the runtime of a `#[tokio::test]`, where
    /// the notifier's task also runs) that writes everything from DEBUG up into `Logs`.
    pub fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        (logs, guard)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }

    /// The captured lines at WARN level.
    pub fn warnings(&self) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| l.contains(" WARN "))
            .map(str::to_string)
            .collect()
    }
}

pub struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LogWriter(Arc::clone(&self.0))
    }
}
