//! The HTTP server: routes SEC and Gemini paths to the simulation, applies quotas, faults and
//! latency, and counts everything. [`router`] gives an embeddable axum router; [`start`] runs
//! it on its own accept loop, which can drop a connection without answering (the
//! "connection reset" fault) and shuts down gracefully.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use fintel_time::{pacific_date, SharedClock};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::config::{ModelConfig, OutageWindow, SimConfig};
use crate::document::{annual_report_html, filing_html};
use crate::errors::{self, ErrorReply};
use crate::fixtures::{SecFixtures, APPLE_CIK};
use crate::gemini::{self, Finish};
use crate::openai::{self, OpenAiInner, OpenAiStats};
use crate::quota::{ProjectQuota, QuotaLimitKind, QuotaLimits};
use crate::rng::DetRng;
use crate::stats::{GeminiEvent, GeminiStats, SecPathClass, SecRecorder, SimStats};
use crate::universe::Universe;
use crate::weather::{Weather, WeatherFault};
use crate::SimError;

/// Shared state of one simulator: configuration, clock, universe and the mutable ledgers.
pub struct SimState {
    config: SimConfig,
    clock: SharedClock,
    universe: Universe,
    fixtures: Option<SecFixtures>,
    key_project: HashMap<String, usize>,
    /// `[weather]`, if configured.
    weather: Option<Weather>,
    /// The slots of the OpenAI-compatible side (`openai.slots`).
    openai_slots: Arc<tokio::sync::Semaphore>,
    /// While true, generateContent answers wait before they are sent (see
    /// [`SimState::hold_answers`]); `held` counts those waiting.
    hold: watch::Sender<bool>,
    held: std::sync::atomic::AtomicU64,
    inner: Mutex<Inner>,
}

struct Inner {
    quotas: Vec<ProjectQuota>,
    /// Outage windows: the configured ones and any started since (see [`SimState::start_outage`]).
    outages: Vec<OutageWindow>,
    /// generateContent attempts per request content (drives the fault draw).
    attempts: HashMap<u64, u32>,
    /// Request contents already answered 200 STOP.
    answered: HashSet<u64>,
    /// generateContent answers per model, for `retire_after_answers`.
    model_answers: HashMap<String, u64>,
    gemini: GeminiStats,
    sec: SecRecorder,
    openai: OpenAiInner,
}

impl std::fmt::Debug for SimState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimState")
            .field("seed", &self.config.seed)
            .finish_non_exhaustive()
    }
}

impl SimState {
    /// Checks `config`, builds the universe and loads fixtures (if configured).
    pub fn new(config: SimConfig, clock: SharedClock) -> Result<Arc<Self>, SimError> {
        config.validate()?;
        let fixtures = match &config.sec.fixtures_dir {
            Some(dir) => Some(SecFixtures::load(dir)?),
            None => None,
        };
        let universe = Universe::generate(&config);
        let weather = config
            .weather
            .clone()
            .map(|w| Weather::new(w, clock.now(), config.seed));
        let mut key_project = HashMap::new();
        let mut quotas = Vec::new();
        for (i, p) in config.gemini.projects.iter().enumerate() {
            for k in &p.keys {
                key_project.insert(k.clone(), i);
            }
            quotas.push(
                ProjectQuota::new(QuotaLimits {
                    requests_per_day: p.requests_per_day,
                    requests_per_minute: p.requests_per_minute,
                    input_tokens_per_minute: p.input_tokens_per_minute,
                })
                .with_weather(weather.clone()),
            );
        }
        let outages = config.gemini.outages.clone();
        let openai_slots = crate::openai::slots_semaphore(config.openai.as_ref());
        Ok(Arc::new(SimState {
            config,
            clock,
            universe,
            fixtures,
            key_project,
            weather,
            openai_slots,
            hold: watch::Sender::new(false),
            held: std::sync::atomic::AtomicU64::new(0),
            inner: Mutex::new(Inner {
                quotas,
                outages,
                attempts: HashMap::new(),
                answered: HashSet::new(),
                model_answers: HashMap::new(),
                gemini: GeminiStats::default(),
                sec: SecRecorder::default(),
                openai: OpenAiInner::default(),
            }),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves counters that are still meaningful.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A snapshot of every counter.
    pub fn stats(&self) -> SimStats {
        let inner = self.lock();
        SimStats {
            gemini: inner.gemini.clone(),
            sec: inner.sec.stats.clone(),
            openai: inner.openai.stats.clone(),
        }
    }

    /// Zeroes the counters (quotas, attempt counts and the duplicate memory are kept).
    pub fn reset_stats(&self) {
        let mut inner = self.lock();
        inner.gemini = GeminiStats::default();
        inner.sec = SecRecorder::default();
        inner.openai.stats = OpenAiStats::default();
    }

    /// The configuration served.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// The injected clock's now.
    pub(crate) fn clock_now(&self) -> jiff::Timestamp {
        self.clock.now()
    }

    /// Runs `f` on the OpenAI side's state under the lock.
    pub(crate) fn with_openai<T>(&self, f: impl FnOnce(&mut OpenAiInner) -> T) -> T {
        f(&mut self.lock().openai)
    }

    /// The OpenAI side's slots.
    pub(crate) fn openai_slots(&self) -> Arc<tokio::sync::Semaphore> {
        self.openai_slots.clone()
    }

    /// The synthetic universe served.
    pub fn universe(&self) -> &Universe {
        &self.universe
    }

    /// The weather, if configured.
    pub fn weather(&self) -> Option<&Weather> {
        self.weather.as_ref()
    }

    /// The quota day a request at `now` counts in: the Pacific date, or the weather's when a
    /// reset is late.
    fn quota_day(&self, now: jiff::Timestamp) -> String {
        match &self.weather {
            Some(w) => w.quota_day(now).to_string(),
            None => pacific_date(now).to_string(),
        }
    }

    /// The real token count of a request body whose estimate is `estimate`: the estimate in
    /// fair weather, else times the document's factor.
    fn real_tokens(&self, estimate: u64, body: &[u8]) -> u64 {
        match &self.weather {
            Some(w) => match serde_json::from_slice::<Value>(body) {
                Ok(v) => w.real_tokens(estimate, &v),
                Err(_) => estimate,
            },
            None => estimate,
        }
    }

    /// From now on, every generateContent answer waits until [`SimState::release_answers`]:
    /// a test can then act while calls are known to be in flight, with no timing involved.
    pub fn hold_answers(&self) {
        self.hold.send_replace(true);
    }

    /// Sends the answers held since [`SimState::hold_answers`], and the later ones at once.
    pub fn release_answers(&self) {
        self.hold.send_replace(false);
    }

    /// How many answers are waiting for [`SimState::release_answers`] now.
    pub fn held_answers(&self) -> u64 {
        self.held.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Adds an outage window: every generateContent request in it answers 503.
    pub fn add_outage(&self, window: OutageWindow) {
        self.lock().outages.push(window);
    }

    /// Starts an outage now (by the injected clock) lasting `duration` of clock time, so a test
    /// can break the provider in the middle of a run whatever its pace; returns the window.
    pub fn start_outage(&self, duration: Duration) -> OutageWindow {
        let from = self.clock.now();
        let window = OutageWindow {
            from,
            to: from + fintel_time::duration_to_span(duration),
        };
        self.add_outage(window.clone());
        window
    }
}

/// The simulator's routes on `state`, for embedding in another server.
pub fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/files/company_tickers.json", get(company_tickers))
        .route("/submissions/{file}", get(submissions))
        .route(
            "/Archives/edgar/data/{cik}/{folder}/{document}",
            get(archive),
        )
        .route("/v1beta/models", get(gemini_list))
        .route("/v1beta/models/{*rest}", get(gemini_get).post(gemini_post))
        .route("/v1/models", get(openai::list_models))
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/props", get(openai::props))
        .route("/health", get(openai::health))
        .route("/tokenize", post(openai::tokenize))
        .route("/api/show", post(openai::show))
        .route("/__sim/stats", get(stats))
        .route("/__sim/reset-stats", post(reset_stats))
        .route("/__sim/outage", post(start_outage))
        .fallback(not_found)
        // Filings make large prompts; the API's own limit is checked in the handler so the
        // refusal has the API's body rather than axum's 413.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

async fn stats(State(state): State<Arc<SimState>>) -> Json<SimStats> {
    Json(state.stats())
}

async fn reset_stats(State(state): State<Arc<SimState>>) -> StatusCode {
    state.reset_stats();
    StatusCode::NO_CONTENT
}

/// `POST /__sim/outage?seconds=N`: an outage from now for N seconds of the injected clock.
async fn start_outage(
    State(state): State<Arc<SimState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let seconds = query.get("seconds").and_then(|s| s.parse::<u64>().ok());
    match seconds {
        Some(s) if s > 0 => {
            let w = state.start_outage(Duration::from_secs(s));
            Json(serde_json::json!({"from": w.from.to_string(), "to": w.to.to_string()}))
                .into_response()
        }
        _ => (
            StatusCode::BAD_REQUEST,
            "give the outage's length as ?seconds=N (a positive whole number)\n",
        )
            .into_response(),
    }
}

async fn not_found(req: Request<Body>) -> Response {
    reply(errors::no_such_method(req.uri().path()))
}

fn reply((code, body): ErrorReply) -> Response {
    (code, Json(body)).into_response()
}

// ---------------------------------------------------------------- SEC

fn sec_not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/html")],
        "<html><body><h1>Not Found</h1><p>The requested URL was not found on this server.</p></body></html>",
    )
        .into_response()
}

/// Counts an SEC request and refuses it without a User-Agent, as SEC does.
fn sec_arrive(state: &SimState, headers: &HeaderMap, class: SecPathClass) -> Option<Response> {
    let now = state.clock.now();
    let mut inner = state.lock();
    inner.sec.arrive(now);
    inner.sec.class(class);
    let has_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.trim().is_empty());
    if !has_agent {
        inner.sec.stats.missing_user_agent += 1;
        return Some((
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/html")],
            "<html><body><h1>Your Request Originates from an Undeclared Automated Tool</h1><p>Please declare your traffic by updating your user agent to include company specific information.</p></body></html>",
        )
            .into_response());
    }
    None
}

fn count_not_found(state: &SimState) -> Response {
    state.lock().sec.stats.not_found += 1;
    sec_not_found()
}

fn json_bytes(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

async fn company_tickers(State(state): State<Arc<SimState>>, headers: HeaderMap) -> Response {
    if let Some(r) = sec_arrive(&state, &headers, SecPathClass::Tickers) {
        return r;
    }
    let mut body = state.universe.company_tickers_json();
    if let (Some(fx), Some(map)) = (&state.fixtures, body.as_object_mut()) {
        map.insert(map.len().to_string(), fx.apple_ticker_entry.clone());
    }
    Json(body).into_response()
}

/// `CIK##########.json` -> (cik, 0); `CIK##########-submissions-001.json` -> (cik, 1).
fn parse_submissions_name(file: &str) -> Option<(u64, u32)> {
    let rest = file.strip_prefix("CIK")?.strip_suffix(".json")?;
    let (digits, page) = match rest.split_once("-submissions-") {
        Some((d, p)) => (d, p.parse::<u32>().ok()?),
        None => (rest, 0),
    };
    if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, page))
}

async fn submissions(
    State(state): State<Arc<SimState>>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = sec_arrive(&state, &headers, SecPathClass::Submissions) {
        return r;
    }
    let Some((cik, page)) = parse_submissions_name(&file) else {
        return count_not_found(&state);
    };
    if cik == APPLE_CIK {
        if let Some(fx) = &state.fixtures {
            match page {
                0 => return json_bytes(fx.apple_recent.clone()),
                1 => return json_bytes(fx.apple_page_001.clone()),
                _ => return count_not_found(&state),
            }
        }
    }
    match state.universe.submissions_json(cik, page) {
        Some(v) => Json(v).into_response(),
        None => count_not_found(&state),
    }
}

async fn archive(
    State(state): State<Arc<SimState>>,
    Path((cik, folder, document)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let class = if document == "index.json" {
        SecPathClass::Index
    } else {
        SecPathClass::Document
    };
    if let Some(r) = sec_arrive(&state, &headers, class) {
        return r;
    }
    let Ok(cik) = cik.parse::<u64>() else {
        return count_not_found(&state);
    };
    if let Some(fx) = &state.fixtures {
        if class == SecPathClass::Document {
            match fx.document(&folder) {
                Some(Ok(bytes)) => return html(bytes),
                Some(Err(e)) => {
                    tracing::warn!("{e}");
                    return count_not_found(&state);
                }
                None => {}
            }
        }
        if cik == APPLE_CIK {
            return match (fx.apple_filing(&folder), class) {
                (Some(f), SecPathClass::Document) if f.document == document => {
                    html(annual_report_html(&fx.apple(), f, state.config.seed).into_bytes())
                }
                (Some(f), SecPathClass::Index) => Json(index_json(cik, f)).into_response(),
                _ => count_not_found(&state),
            };
        }
    }
    let Some(company) = state.universe.company(cik) else {
        return count_not_found(&state);
    };
    let Some(filing) = state.universe.find_filing(company, &folder) else {
        return count_not_found(&state);
    };
    match class {
        SecPathClass::Index => Json(index_json(cik, &filing)).into_response(),
        _ if document == filing.document => {
            html(filing_html(company, &filing, state.config.seed).into_bytes())
        }
        _ => count_not_found(&state),
    }
}

fn html(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "text/html")], bytes).into_response()
}

/// A filing folder listing in the shape of SEC's `index.json`.
fn index_json(cik: u64, filing: &crate::universe::Filing) -> Value {
    let folder = filing.accession_folder();
    let modified = format!("{} 16:05:12", filing.filing_date);
    let item = |name: String, kind: &str, size: String| serde_json::json!({"last-modified": modified, "name": name, "type": kind, "size": size});
    serde_json::json!({
        "directory": {
            "item": [
                item(format!("{}-index-headers.html", filing.accession), "text.gif", String::new()),
                item(format!("{}-index.html", filing.accession), "text.gif", String::new()),
                item(format!("{}.txt", filing.accession), "text.gif", String::new()),
                item(filing.document.clone(), "text.gif", filing.size.to_string()),
            ],
            "name": format!("/Archives/edgar/data/{cik}/{folder}"),
            "parent-dir": format!("/Archives/edgar/data/{cik}")
        }
    })
}

// ---------------------------------------------------------------- Gemini

/// Lets a handler drop its connection without a response (inserted by [`start`]'s accept loop).
#[derive(Clone)]
struct ConnectionKiller(Arc<Notify>);

/// The API key from `x-goog-api-key` or `?key=`.
fn api_key(headers: &HeaderMap, query: &HashMap<String, String>) -> Option<String> {
    headers
        .get("x-goog-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| query.get("key").cloned())
        .filter(|k| !k.is_empty())
}

/// Who is calling: the project index and the key, or the refusal.
fn authenticate(state: &SimState, key: Option<String>) -> Result<(usize, String), ErrorReply> {
    let g = &state.config.gemini;
    let mut inner = state.lock();
    let Some(key) = key else {
        inner.gemini.missing_key += 1;
        return Err(errors::unregistered_caller());
    };
    if g.leaked_keys.contains(&key) {
        inner.gemini.leaked_key += 1;
        return Err(errors::key_leaked());
    }
    match state.key_project.get(&key) {
        Some(p) if g.projects[*p].api_disabled && !g.invalid_keys.contains(&key) => {
            inner.gemini.api_disabled += 1;
            Err(errors::service_disabled(g.projects[*p].number.as_deref()))
        }
        Some(p) if !g.invalid_keys.contains(&key) => Ok((*p, key)),
        _ => {
            inner.gemini.invalid_key += 1;
            Err(errors::api_key_invalid())
        }
    }
}

/// Whether `model` has retired by `now`, given its answers so far.
fn is_retired(model: &ModelConfig, answers: u64, now: jiff::Timestamp) -> bool {
    model.retire_after_answers.is_some_and(|n| answers >= n)
        || model.retired_at.is_some_and(|at| now >= at)
}

fn find_model<'a>(
    state: &'a SimState,
    model: &str,
    method: &str,
) -> Result<&'a ModelConfig, ErrorReply> {
    let model = model.strip_prefix("models/").unwrap_or(model);
    let now = state.clock.now();
    let mut inner = state.lock();
    let found = state.config.gemini.models.iter().find(|m| {
        m.name == model
            && !is_retired(
                m,
                inner.model_answers.get(&m.name).copied().unwrap_or(0),
                now,
            )
    });
    found.ok_or_else(|| {
        inner.gemini.unknown_model += 1;
        errors::model_not_found(model, method)
    })
}

/// `GET v1beta/models?pageSize=N&pageToken=T`: the models served and not retired, a page at a
/// time. The token is the index of the page's first model, opaque to clients as the real one.
async fn gemini_list(
    State(state): State<Arc<SimState>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = authenticate(&state, api_key(&headers, &query)) {
        return reply(e);
    }
    let page_size = query
        .get("pageSize")
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(50)
        .min(state.config.gemini.models_page_size.max(1));
    let start = match query.get("pageToken").filter(|t| !t.is_empty()) {
        None => 0,
        Some(token) => match token
            .strip_prefix("sim-page-")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) => n,
            None => {
                return reply(errors::invalid_argument(&format!(
                    "Invalid page token: {token}"
                )))
            }
        },
    };
    let now = state.clock.now();
    let served: Vec<&ModelConfig> = {
        let inner = state.lock();
        state
            .config
            .gemini
            .models
            .iter()
            .filter(|m| {
                !is_retired(
                    m,
                    inner.model_answers.get(&m.name).copied().unwrap_or(0),
                    now,
                )
            })
            .collect()
    };
    let page: Vec<Value> = served
        .iter()
        .skip(start)
        .take(page_size)
        .map(|m| gemini::model_body(m))
        .collect();
    let mut body = serde_json::json!({ "models": page });
    if start + page_size < served.len() {
        body["nextPageToken"] = Value::String(format!("sim-page-{}", start + page_size));
    }
    state.lock().gemini.model_lists += 1;
    Json(body).into_response()
}

async fn gemini_get(
    State(state): State<Arc<SimState>>,
    Path(rest): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if rest.contains(':') || rest.contains('/') {
        return reply(errors::no_such_method(&format!("/v1beta/models/{rest}")));
    }
    let result = authenticate(&state, api_key(&headers, &query))
        .and_then(|_| find_model(&state, &rest, "get"))
        .map(|m| {
            state.lock().gemini.model_gets += 1;
            gemini::model_body(m)
        });
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => reply(e),
    }
}

async fn gemini_post(
    State(state): State<Arc<SimState>>,
    Path(rest): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    killer: Option<Extension<ConnectionKiller>>,
    body: Bytes,
) -> Response {
    let Some((model, method)) = rest.split_once(':') else {
        return reply(errors::no_such_method(&format!("/v1beta/models/{rest}")));
    };
    if body.len() > MAX_REQUEST_BYTES {
        return reply(errors::invalid_argument(&format!(
            "Request payload size exceeds the limit: {MAX_REQUEST_BYTES} bytes."
        )));
    }
    match method {
        "generateContent" => {
            let outcome = decide_generate(&state, model, &headers, &query, &body);
            deliver(&state, outcome, killer.map(|Extension(k)| k)).await
        }
        "countTokens" => {
            let result = authenticate(&state, api_key(&headers, &query))
                .and_then(|_| find_model(&state, model, "countTokens"))
                .and_then(|m| gemini::count_tokens_request(&body, m))
                .map(|estimate| state.real_tokens(estimate, &body))
                .map(|tokens| {
                    state.lock().gemini.count_tokens += 1;
                    gemini::count_tokens_body(tokens)
                });
            match result {
                Ok(v) => Json(v).into_response(),
                Err(e) => reply(e),
            }
        }
        _ => reply(errors::no_such_method(&format!("/v1beta/models/{rest}"))),
    }
}

/// The API's request size limit (20 MiB).
const MAX_REQUEST_BYTES: usize = 20 * 1024 * 1024;

/// What to do with a generateContent request, decided under the lock.
enum Outcome {
    Reply(ErrorReply),
    Unavailable,
    Answer {
        body: Value,
        slow: bool,
        /// Held until the injected clock reaches this instant (a weather slow answer).
        until: Option<jiff::Timestamp>,
    },
    Reset,
}

fn decide_generate(
    state: &SimState,
    model_name: &str,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    body: &[u8],
) -> Outcome {
    let (project_index, key) = match authenticate(state, api_key(headers, query)) {
        Ok(v) => v,
        Err(e) => return Outcome::Reply(e),
    };
    let model = match find_model(state, model_name, "generateContent") {
        Ok(m) => m,
        Err(e) => return Outcome::Reply(e),
    };
    let config = &state.config.gemini;
    let project = config.projects[project_index].name.as_str();
    let now = state.clock.now();
    let date = state.quota_day(now);
    let mut inner = state.lock();
    let inner = &mut *inner;
    let bump = |g: &mut GeminiStats, e| g.bump(&date, project, &key, e);
    bump(&mut inner.gemini, GeminiEvent::Received);

    let request = match gemini::parse_generate_request(body, model) {
        Ok(mut r) => {
            r.tokens = state.real_tokens(r.tokens, body);
            r
        }
        Err(e) => {
            bump(&mut inner.gemini, GeminiEvent::InvalidRequest);
            return Outcome::Reply(e);
        }
    };
    if model.name.starts_with("gemini-3") {
        if request.temperature_sent || request.thinking_budget_sent {
            inner.gemini.gemini3_against_advice += 1;
        }
        if request.thinking_level_sent {
            inner.gemini.gemini3_thinking_level += 1;
        }
    }
    if request.seed.is_some() {
        inner.gemini.seeded += 1;
    }
    if let (Some(max), Some(schema)) = (config.max_schema_chars, &request.schema) {
        if schema.to_string().chars().count() > max {
            bump(&mut inner.gemini, GeminiEvent::InvalidRequest);
            return Outcome::Reply(errors::schema_too_complex());
        }
    }
    if config.packed_schema_too_complex
        && request
            .schema
            .as_ref()
            .is_some_and(|s| !crate::packed::packed_years(s).is_empty())
    {
        bump(&mut inner.gemini, GeminiEvent::InvalidRequest);
        return Outcome::Reply(errors::schema_too_complex());
    }
    if request.tokens > model.input_token_limit {
        bump(&mut inner.gemini, GeminiEvent::RefusedContext);
        return Outcome::Reply(errors::context_too_long(
            request.tokens,
            model.input_token_limit,
        ));
    }
    if inner.outages.iter().any(|w| w.from <= now && now < w.to)
        || state.weather.as_ref().is_some_and(|w| w.in_outage(now))
    {
        bump(&mut inner.gemini, GeminiEvent::Outage);
        return Outcome::Unavailable;
    }
    let quota = &mut inner.quotas[project_index];
    if let Err(refusal) = quota.check(now, request.tokens) {
        for v in &refusal.violations {
            bump(
                &mut inner.gemini,
                match v {
                    QuotaLimitKind::RequestsPerDay => GeminiEvent::RefusedRpd,
                    QuotaLimitKind::RequestsPerMinute => GeminiEvent::RefusedRpm,
                    QuotaLimitKind::InputTokensPerMinute => GeminiEvent::RefusedTpm,
                },
            );
        }
        if refusal.request_too_big {
            bump(&mut inner.gemini, GeminiEvent::RefusedRequestTooBig);
        }
        if refusal.already_at_limit {
            bump(&mut inner.gemini, GeminiEvent::OverLimit);
        }
        if config.refused_requests_consume_quota {
            quota.record(now, request.tokens);
        }
        return Outcome::Reply(errors::quota_exceeded(
            &refusal,
            &model.name,
            quota.limits(),
            config.projects[project_index].number.as_deref(),
        ));
    }
    quota.record(now, request.tokens);
    if !config.blocked_prompts.is_empty() {
        let text = String::from_utf8_lossy(body);
        if config
            .blocked_prompts
            .iter()
            .any(|t| !t.is_empty() && text.contains(t.as_str()))
        {
            bump(&mut inner.gemini, GeminiEvent::BlockedPrompt);
            return Outcome::Answer {
                body: gemini::blocked_prompt_body(&model.name, request.tokens),
                slow: false,
                until: None,
            };
        }
    }

    let attempt = {
        let a = inner.attempts.entry(request.content_hash).or_insert(0);
        *a += 1;
        *a
    };
    let faults = &config.faults;
    let draw = DetRng::new(
        state.config.seed,
        &[request.content_hash, u64::from(attempt), 0xFA17],
    )
    .unit();
    let mut threshold = 0.0;
    let mut pick = |p: f64| {
        threshold += p;
        draw < threshold
    };
    enum Fault {
        None,
        Unavailable,
        Slow,
        Reset,
        InvalidJson,
        MaxTokens,
        Safety,
    }
    let fault = if pick(faults.unavailable) {
        Fault::Unavailable
    } else if pick(faults.slow) {
        Fault::Slow
    } else if pick(faults.connection_reset) {
        Fault::Reset
    } else if pick(faults.invalid_json) {
        Fault::InvalidJson
    } else if pick(faults.max_tokens) {
        Fault::MaxTokens
    } else if pick(faults.safety) {
        Fault::Safety
    } else {
        Fault::None
    };
    // The answers that depend on the request itself: they come before any drawn fault, so a
    // test that sets one knows exactly how each request is answered.
    let packed = request
        .schema
        .as_ref()
        .is_some_and(|s| !crate::packed::packed_years(s).is_empty());
    let fault = match fault {
        Fault::None if config.unusable_packed && packed => Fault::InvalidJson,
        Fault::None
            if config
                .invalid_json_above_tokens
                .is_some_and(|limit| request.tokens > limit) =>
        {
            Fault::InvalidJson
        }
        Fault::None
            if config
                .max_tokens_above_thinking
                .is_some_and(|limit| request.thinking_bound.is_none_or(|b| b > limit)) =>
        {
            Fault::MaxTokens
        }
        f => f,
    };
    // The weather's faults come on top of the configured ones, from their own draw.
    let mut slow_until = None;
    let fault = match (fault, state.weather.as_ref()) {
        (Fault::None, Some(w)) => match w.fault(request.content_hash, attempt) {
            Some(WeatherFault::Unavailable) => Fault::Unavailable,
            Some(WeatherFault::MaxTokens) => Fault::MaxTokens,
            Some(WeatherFault::InvalidJson) => Fault::InvalidJson,
            Some(WeatherFault::Slow(d)) => {
                bump(&mut inner.gemini, GeminiEvent::Slow);
                slow_until = Some(now + fintel_time::duration_to_span(d));
                Fault::None
            }
            None => Fault::None,
        },
        (f, _) => f,
    };
    match fault {
        Fault::Unavailable => {
            bump(&mut inner.gemini, GeminiEvent::Unavailable);
            return Outcome::Unavailable;
        }
        Fault::Reset => {
            bump(&mut inner.gemini, GeminiEvent::ConnectionReset);
            return Outcome::Reset;
        }
        _ => {}
    }

    // The answer depends only on the content, so a retry of the same call gets the same text.
    let mut answer_rng = DetRng::new(state.config.seed, &[request.content_hash, 0xA45]);
    let text = match &request.schema {
        Some(schema) => {
            let mut answer = crate::answer::value_for_schema(schema, &mut answer_rng);
            if DetRng::new(state.config.seed, &[request.content_hash, 0xBAD])
                .chance(config.invalid_packed_part)
            {
                crate::packed::spoil_oldest_part(&mut answer, schema);
            }
            answer.to_string()
        }
        None => "The annual report describes steady revenue growth, stable margins and the principal risks named by management.".to_string(),
    };
    let mut finish = Finish::Stop;
    let mut text = Some(text);
    match fault {
        Fault::InvalidJson => {
            bump(&mut inner.gemini, GeminiEvent::InvalidJson);
            text = text.map(|t| truncate_chars(&t, t.chars().count() / 2));
        }
        Fault::MaxTokens => {
            bump(&mut inner.gemini, GeminiEvent::MaxTokens);
            finish = Finish::MaxTokens;
            text = text.map(|t| truncate_chars(&t, t.chars().count() / 3));
        }
        Fault::Safety => {
            bump(&mut inner.gemini, GeminiEvent::Safety);
            finish = Finish::Safety;
            text = None;
        }
        Fault::Slow => bump(&mut inner.gemini, GeminiEvent::Slow),
        _ => {}
    }
    if let (Some(max), Some(t)) = (request.max_output_tokens, &text) {
        if finish == Finish::Stop && (t.chars().count() as u64).div_ceil(4) > max {
            finish = Finish::MaxTokens;
            text = Some(truncate_chars(t, (max * 4) as usize));
        }
    }
    // Retired by another request answered since `find_model` looked: no more answers.
    let answers = inner.model_answers.entry(model.name.clone()).or_insert(0);
    if is_retired(model, *answers, now) {
        inner.gemini.unknown_model += 1;
        return Outcome::Reply(errors::model_not_found(&model.name, "generateContent"));
    }
    *answers += 1;
    bump(&mut inner.gemini, GeminiEvent::Accepted);
    let slow = matches!(fault, Fault::Slow);
    let clean = finish == Finish::Stop && matches!(fault, Fault::None);
    if clean && !inner.answered.insert(request.content_hash) {
        bump(&mut inner.gemini, GeminiEvent::Duplicate);
    }
    let thoughts = if request.thinking {
        model.thoughts_tokens
    } else {
        0
    };
    let body = gemini::success_body(
        &model.name,
        text.as_deref(),
        finish,
        request.tokens,
        thoughts,
        &gemini::response_id(request.content_hash, attempt),
    );
    Outcome::Answer {
        body,
        slow,
        until: slow_until,
    }
}

fn truncate_chars(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

async fn deliver(state: &SimState, outcome: Outcome, killer: Option<ConnectionKiller>) -> Response {
    let latency = &state.config.gemini.latency;
    let delay = if latency.max_ms > 0 {
        let mut rng = DetRng::new(
            state.config.seed,
            &[state.clock.now().as_nanosecond() as u64],
        );
        rng.range_inclusive(latency.min_ms as i64, latency.max_ms as i64) as u64
    } else {
        0
    };
    // Latency and slowness are real time, not clock time: they exist to meet the client's
    // real-time timeouts.
    match outcome {
        Outcome::Reply(e) => reply(e),
        Outcome::Unavailable => {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            reply(errors::unavailable())
        }
        Outcome::Answer { body, slow, until } => {
            let mut hold = state.hold.subscribe();
            if *hold.borrow_and_update() {
                state.held.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = hold.wait_for(|held| !*held).await;
                state.held.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            }
            if let Some(until) = until {
                // A slow answer in the weather: held for clock time, whatever the clock's pace.
                while state.clock.now() < until {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            let extra = if slow {
                state.config.gemini.faults.slow_ms
            } else {
                0
            };
            tokio::time::sleep(Duration::from_millis(delay + extra)).await;
            Json(body).into_response()
        }
        Outcome::Reset => match killer {
            Some(k) => {
                k.0.notify_one();
                // The accept loop drops the connection, and this future with it.
                std::future::pending::<()>().await;
                Response::new(Body::empty())
            }
            // Embedded without the accept loop: abort the body instead, which the client also
            // sees as a broken connection.
            None => Response::new(Body::new(BrokenBody)),
        },
    }
}

/// A body that fails at once.
struct BrokenBody;

impl HttpBody for BrokenBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected connection reset",
        ))))
    }
}

// ---------------------------------------------------------------- serving

/// A running simulator.
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    state: Arc<SimState>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl SimHandle {
    /// The bound address (the real port when started on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`, the base URL for both the SEC and the Gemini clients.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A snapshot of every counter.
    pub fn stats(&self) -> SimStats {
        self.state.stats()
    }

    /// Zeroes the counters.
    pub fn reset_stats(&self) {
        self.state.reset_stats()
    }

    /// The shared state (universe, stats).
    pub fn state(&self) -> &Arc<SimState> {
        &self.state
    }

    /// Starts an outage now lasting `duration` of clock time (see [`SimState::start_outage`]).
    pub fn start_outage(&self, duration: Duration) -> OutageWindow {
        self.state.start_outage(duration)
    }

    /// Stops accepting, lets requests in progress finish (up to 5 s), and returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }

    /// Waits until the server stops (it runs until [`shutdown`](Self::shutdown) otherwise).
    pub async fn wait(&mut self) {
        let _ = (&mut self.task).await;
    }
}

/// Starts a simulator on `addr` (port 0 picks a free port).
pub async fn start(
    config: SimConfig,
    clock: SharedClock,
    addr: SocketAddr,
) -> Result<SimHandle, SimError> {
    let state = SimState::new(config, clock)?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| SimError::Bind(addr, e))?;
    let addr = listener.local_addr().map_err(|e| SimError::Bind(addr, e))?;
    let app = router(state.clone());
    let (shutdown, shutdown_rx) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, app, shutdown_rx));
    tracing::info!("fintel-sim listening on http://{addr}");
    Ok(SimHandle {
        addr,
        state,
        shutdown,
        task,
    })
}

async fn accept_loop(listener: TcpListener, app: Router, mut shutdown: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                match accepted {
                    Ok((stream, _)) => {
                        connections.spawn(serve_connection(stream, app.clone(), shutdown.clone()));
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: wait a moment instead of spinning.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(5), drain)
        .await
        .is_err()
    {
        connections.abort_all();
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    app: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let killer = ConnectionKiller(Arc::new(Notify::new()));
    let service_killer = killer.clone();
    let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(service_killer.clone());
        let app = app.clone();
        async move {
            Ok::<_, Infallible>(
                app.oneshot(req.map(Body::new))
                    .await
                    .unwrap_or_else(|e| match e {}),
            )
        }
    });
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let mut draining = *shutdown.borrow();
    if draining {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            _ = conn.as_mut() => break,
            _ = killer.0.notified() => break,
            changed = shutdown.changed(), if !draining => {
                draining = true;
                if changed.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submissions_names_are_parsed_strictly() {
        assert_eq!(
            parse_submissions_name("CIK0000320193.json"),
            Some((320_193, 0))
        );
        assert_eq!(
            parse_submissions_name("CIK0001800001-submissions-001.json"),
            Some((1_800_001, 1))
        );
        assert_eq!(parse_submissions_name("CIK320193.json"), None);
        assert_eq!(parse_submissions_name("CIK0000320193.xml"), None);
        assert_eq!(parse_submissions_name("CIK00003201x3.json"), None);
    }
}
