//! The dashboard behind `fintel web`: server-rendered pages over a data directory's database.
//!
//! The dashboard is a window on the database, never the worker: batches run in their own
//! `fintel batch` processes, and closing the browser (or stopping `fintel web`) changes nothing
//! about them. Pages read through a few read-only SQLite connections, one short read
//! transaction per page, so in WAL mode they never block a batch writing in another process.
//! Exactly two actions write, each a POST that must carry the per-run [`Token`]: asking a
//! running batch to stop (its worker sees the flag in the database and drains as on SIGTERM),
//! and putting a batch's failed tasks back to pending. They open a writable connection only for
//! that one statement.
//!
//! Pages are `maud` templates (checked at compile time, escaping every value), with charts as
//! inline SVG drawn by the server. Without JavaScript the live pages refresh themselves; with
//! it, a small script served as a file swaps the live parts in place. Every response carries a
//! strict Content-Security-Policy; requests whose `Host` is not the bound address or localhost
//! (DNS rebinding) and POSTs from a foreign `Origin` (CSRF) are refused. See [`security`].
//!
//! The binary builds a [`WebConfig`] (the database path, the key buckets and their limits from
//! its configuration, the clock, the token and the bound address), calls [`router`] and serves
//! it with [`serve`].

mod actions;
mod assets;
mod changes_view;
mod charts;
mod filing_text;
mod format;
mod json_view;
mod pages;
mod queries;
pub mod security;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use fintel_store::{BucketLimits, Store, StoreError};
use fintel_time::SharedClock;

pub use security::Token;

/// How many read-only connections pages share; a slow page (a filing's text) then never holds
/// up the batches page.
const READERS: usize = 4;

/// A key bucket as the configuration defines it (the database knows only what was used).
#[derive(Debug, Clone)]
pub struct BucketConfig {
    pub name: String,
    pub keys: Vec<KeyConfig>,
    pub limits: BucketLimits,
}

/// A configured key: its masked label and the fingerprint the database knows it by. Never the
/// secret.
#[derive(Debug, Clone)]
pub struct KeyConfig {
    pub label: String,
    pub fingerprint: String,
}

/// Everything the dashboard needs from the binary.
pub struct WebConfig {
    /// The data directory's database (it must exist).
    pub db_path: PathBuf,
    /// The document cache folder (the filing page reads documents from it, never from SEC).
    pub cache_dir: PathBuf,
    /// The key buckets with their limits, from the configuration.
    pub buckets: Vec<BucketConfig>,
    /// How long after Pacific midnight fintel resumes sending (shown as the next reset).
    pub reset_buffer: Duration,
    pub clock: SharedClock,
    /// The token every POST must carry.
    pub token: Token,
    /// The address the server listens on: requests must name it (or localhost) as their Host.
    pub bound: SocketAddr,
}

/// Errors starting the dashboard.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error(
        "no database at {0}: there is nothing to show yet; run a batch first (`fintel batch \
         companies.csv --years 7`), or point FINTEL_HOME or --data-dir at the data directory \
         that has one"
    )]
    NoDatabase(PathBuf),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the dashboard server stopped: {0}")]
    Io(#[from] std::io::Error),
}

/// Shared by every handler.
pub(crate) struct AppState {
    readers: Vec<Store>,
    next_reader: AtomicUsize,
    pub(crate) config: WebConfig,
}

pub(crate) type Shared = Arc<AppState>;

impl AppState {
    /// Runs `f` on one of the read-only connections, off the async threads.
    pub(crate) async fn read<T, F>(self: &Arc<Self>, f: F) -> Result<T, PageError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, PageError> + Send + 'static,
    {
        let state = self.clone();
        tokio::task::spawn_blocking(move || {
            let i = state.next_reader.fetch_add(1, Ordering::Relaxed) % state.readers.len();
            f(&state.readers[i])
        })
        .await
        .map_err(|e| PageError::Internal(format!("the page stopped: {e}")))?
    }

    /// Runs `f` on a writable connection opened for this one action and closed after it.
    pub(crate) async fn write<T, F>(self: &Arc<Self>, f: F) -> Result<T, PageError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, PageError> + Send + 'static,
    {
        let path = self.config.db_path.clone();
        tokio::task::spawn_blocking(move || {
            let store = Store::open(&path)?;
            f(&store)
        })
        .await
        .map_err(|e| PageError::Internal(format!("the action stopped: {e}")))?
    }
}

/// Why a page could not be shown; each becomes a page with its status code.
#[derive(Debug)]
pub(crate) enum PageError {
    NotFound(String),
    BadRequest(String),
    Forbidden(String),
    Conflict(String),
    Internal(String),
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::BatchNotFound(_) => PageError::NotFound(e.to_string()),
            StoreError::AmbiguousBatch { .. } => PageError::BadRequest(e.to_string()),
            e => PageError::Internal(e.to_string()),
        }
    }
}

impl From<rusqlite::Error> for PageError {
    fn from(e: rusqlite::Error) -> Self {
        PageError::Internal(format!("database error: {e}"))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            PageError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            PageError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            PageError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            PageError::Conflict(m) => (StatusCode::CONFLICT, m),
            PageError::Internal(m) => {
                tracing::warn!(error = %m, "dashboard page failed");
                (StatusCode::INTERNAL_SERVER_ERROR, m)
            }
        };
        (status, pages::error_page(status, &message)).into_response()
    }
}

/// The dashboard's routes over the database at `config.db_path`, opened read-only.
pub fn router(config: WebConfig) -> Result<Router, WebError> {
    if !config.db_path.is_file() {
        return Err(WebError::NoDatabase(config.db_path.clone()));
    }
    let readers = (0..READERS)
        .map(|_| Store::open_read_only(&config.db_path))
        .collect::<Result<Vec<_>, _>>()?;
    let state: Shared = Arc::new(AppState {
        readers,
        next_reader: AtomicUsize::new(0),
        config,
    });
    Ok(Router::new()
        .route("/", get(pages::batches::page))
        .route("/batches/{id}", get(pages::batch::page))
        .route("/batches/{id}/stop", post(actions::stop))
        .route(
            "/batches/{id}/requeue-failed",
            post(actions::requeue_failed),
        )
        .route("/keys", get(pages::keys::page))
        .route("/results", get(pages::results::index))
        .route("/companies/{company}", get(pages::results::company))
        .route("/screen", get(pages::screen::page))
        .route("/results/{id}/document", get(pages::filing::for_result))
        .route("/results/{id}/changes", get(pages::changes::page))
        .route("/tasks/{id}", get(pages::filing::for_task))
        .route("/static/style.css", get(assets::style))
        .route("/static/live.js", get(assets::script))
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::guard,
        ))
        .layer(axum::middleware::from_fn(security::headers))
        .with_state(state))
}

/// Serves `router` on `listener` until `shutdown` completes, then lets requests in flight end.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), WebError> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
