//! The notifier: a bounded queue in front of one background task that posts to the webhook.
//!
//! The caller's side ([`Notifier::notify`]) only takes a lock, pushes and wakes the task, so it
//! cannot block or fail however the webhook behaves. The task sends one event at a time, in
//! order, with a per-request timeout and a few retries for failures that may pass (timeouts,
//! refused connections, 429 and 5xx answers); other answers are logged once and dropped.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use fintel_time::{SharedClock, SystemClock};
use jiff::Timestamp;
use reqwest::{StatusCode, Url};
use tokio::sync::Notify;

use crate::event::Notification;
use crate::format::{render, Format};
use crate::url::{mask_url, parse_webhook_url};
use crate::NotifyError;

/// How long one request may take, connection and answer included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Retries after a failed attempt that may succeed later (so at most 3 attempts in all).
pub const DEFAULT_RETRIES: u32 = 2;
/// The wait before the first retry; it doubles for each further one.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);
/// Events kept waiting at most; past this the oldest is dropped.
pub const DEFAULT_QUEUE_CAPACITY: usize = 64;

/// The longest wait honoured from a `Retry-After` header, so one rate-limited webhook cannot
/// hold the queue for long.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// How much of an error answer's body is logged: enough for Discord's `{"message": ...}`.
const ERROR_BODY_LOG_CHARS: usize = 200;

/// Sends [`Notification`]s to one webhook in the background.
///
/// Cloning is cheap and every clone feeds the same queue. Configure with the `with_*` methods
/// right after [`Notifier::new`], before cloning or sending: each returns a new notifier.
///
/// The background task is started on the tokio runtime of the first [`Notifier::notify`] or
/// [`Notifier::flush`] call. When the last clone is dropped the task sends what is still
/// queued and ends.
#[derive(Clone)]
pub struct Notifier {
    handle: Option<Arc<Handle>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.handle {
            None => f.write_str("Notifier(disabled)"),
            Some(h) => f
                .debug_struct("Notifier")
                .field("url", &h.shared.settings.masked_url)
                .field("format", &h.shared.settings.format)
                .finish(),
        }
    }
}

/// Owned by the notifier clones only; dropping the last one tells the task to finish.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
    }
}

#[derive(Clone)]
struct Settings {
    url: Url,
    masked_url: String,
    format: Format,
    timeout: Duration,
    retries: u32,
    retry_delay: Duration,
    capacity: usize,
    clock: SharedClock,
}

struct Shared {
    settings: Settings,
    client: reqwest::Client,
    state: Mutex<State>,
    /// Wakes the task when an event is queued or the last handle is dropped.
    wake: Notify,
    /// Wakes flushers when the task has finished with an event.
    idle: Notify,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Pending>,
    in_flight: bool,
    closed: bool,
    worker: Option<tokio::task::JoinHandle<()>>,
    dropped: u64,
}

struct Pending {
    event: Notification,
    at: Timestamp,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a queue and flags, consistent after every statement, so a panic
        // elsewhere while the lock was held leaves nothing half-done: recover it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Notifier {
    /// A notifier for the webhook at `url`, in `format`, or the format [`Format::detect`]
    /// picks from the URL when `None`.
    ///
    /// Fails when the URL is empty, not absolute, not `http`/`https`, or has no host; the
    /// error shows the URL masked. Needs no runtime: nothing is sent or started yet.
    pub fn new(url: &str, format: Option<Format>) -> Result<Notifier, NotifyError> {
        let url = parse_webhook_url(url)?;
        let client = reqwest::Client::builder()
            .user_agent(concat!("fintel/", env!("CARGO_PKG_VERSION")))
            // A POST that is redirected becomes a GET without a body, which no webhook wants:
            // a 3xx is reported as a failure that names the URL as the thing to fix.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| NotifyError::Client(e.to_string()))?;
        let settings = Settings {
            masked_url: mask_url(&url),
            format: format.unwrap_or_else(|| Format::detect(&url)),
            url,
            timeout: DEFAULT_TIMEOUT,
            retries: DEFAULT_RETRIES,
            retry_delay: DEFAULT_RETRY_DELAY,
            capacity: DEFAULT_QUEUE_CAPACITY,
            clock: Arc::new(SystemClock),
        };
        Ok(Notifier::from_parts(settings, client))
    }

    /// A notifier built from configuration values as given by the user (environment or
    /// config file): no URL (or a blank one) gives a [disabled](Notifier::disabled) notifier;
    /// `format` is `discord`, `json` or absent (detected from the URL).
    ///
    /// Fails on a bad URL, a bad format, or a format set without a URL.
    pub fn from_config(url: Option<&str>, format: Option<&str>) -> Result<Notifier, NotifyError> {
        let format = format
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(|f| f.parse::<Format>().map(|parsed| (f, parsed)))
            .transpose()?;
        match url.map(str::trim).filter(|u| !u.is_empty()) {
            Some(url) => Notifier::new(url, format.map(|(_, f)| f)),
            None => match format {
                Some((raw, _)) => Err(NotifyError::FormatWithoutUrl(raw.to_string())),
                None => Ok(Notifier::disabled()),
            },
        }
    }

    /// A notifier that sends nothing, for when no webhook is configured, so callers need not
    /// branch on whether notifications are on.
    pub fn disabled() -> Notifier {
        Notifier { handle: None }
    }

    /// Whether this notifier sends anything.
    pub fn is_enabled(&self) -> bool {
        self.handle.is_some()
    }

    /// The webhook URL as it may be printed (see [`crate::mask_url`]), e.g. for a startup log
    /// line; `None` when disabled.
    pub fn masked_url(&self) -> Option<&str> {
        self.handle
            .as_ref()
            .map(|h| h.shared.settings.masked_url.as_str())
    }

    /// The body format in use; `None` when disabled.
    pub fn format(&self) -> Option<Format> {
        self.handle.as_ref().map(|h| h.shared.settings.format)
    }

    /// The same notifier with each request limited to `timeout` (default 10 s).
    pub fn with_timeout(self, timeout: Duration) -> Notifier {
        self.reconfigure(|s| s.timeout = timeout)
    }

    /// The same notifier with at most `retries` retries of a failed request (default 2), the
    /// first after `first_delay` (default 1 s), doubling after that.
    pub fn with_retries(self, retries: u32, first_delay: Duration) -> Notifier {
        self.reconfigure(|s| {
            s.retries = retries;
            s.retry_delay = first_delay;
        })
    }

    /// The same notifier keeping at most `capacity` events waiting (default 64, at least 1).
    pub fn with_queue_capacity(self, capacity: usize) -> Notifier {
        self.reconfigure(|s| s.capacity = capacity.max(1))
    }

    /// The same notifier stamping events (`at`) with `clock`'s time instead of the system's.
    pub fn with_clock(self, clock: SharedClock) -> Notifier {
        self.reconfigure(|s| s.clock = clock)
    }

    fn reconfigure(self, change: impl FnOnce(&mut Settings)) -> Notifier {
        match &self.handle {
            None => self,
            Some(h) => {
                let mut settings = h.shared.settings.clone();
                change(&mut settings);
                // The old handle is dropped here; anything already queued on it is still sent
                // by its own task.
                Notifier::from_parts(settings, h.shared.client.clone())
            }
        }
    }

    fn from_parts(settings: Settings, client: reqwest::Client) -> Notifier {
        let shared = Arc::new(Shared {
            settings,
            client,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            idle: Notify::new(),
        });
        Notifier {
            handle: Some(Arc::new(Handle { shared })),
        }
    }

    /// Queues `event` for sending and returns at once. Never fails, never blocks on the
    /// network: delivery problems are logged (`warn`) by the background task.
    ///
    /// When the queue is full the oldest waiting event is dropped, with a warning. Called
    /// outside a tokio runtime before any task was started, the event waits until a call from
    /// inside one (a later `notify` or [`Notifier::flush`]) starts it.
    pub fn notify(&self, event: &Notification) {
        let Some(handle) = &self.handle else {
            return;
        };
        let shared = &handle.shared;
        let at = shared.settings.clock.now();
        let dropped = {
            let mut state = shared.lock();
            let dropped = if state.queue.len() >= shared.settings.capacity {
                state.queue.pop_front()
            } else {
                None
            };
            if dropped.is_some() {
                state.dropped += 1;
            }
            state.queue.push_back(Pending {
                event: event.clone(),
                at,
            });
            dropped
        };
        // Logged after the lock is released: a log layer that forwards warnings as
        // notifications would otherwise deadlock on it.
        if let Some(oldest) = dropped {
            let summary: String = oldest.event.summary().chars().take(200).collect();
            tracing::warn!(
                webhook = %shared.settings.masked_url,
                "webhook notification queue is full ({} waiting); dropped the oldest ({}: {summary})",
                shared.settings.capacity,
                oldest.event.kind(),
            );
        }
        shared.wake.notify_one();
        ensure_worker(shared);
    }

    /// Waits until every queued event has been sent or given up on, or until `timeout` has
    /// passed, whichever comes first. Returns `true` when nothing is left. For a process about
    /// to exit; it never waits longer than `timeout`.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let Some(handle) = &self.handle else {
            return true;
        };
        let shared = &handle.shared;
        ensure_worker(shared);
        let drained = async {
            loop {
                let idle = shared.idle.notified();
                tokio::pin!(idle);
                // Registered before the check, so a notification between the check and the
                // wait is not lost.
                idle.as_mut().enable();
                {
                    let state = shared.lock();
                    if state.queue.is_empty() && !state.in_flight {
                        return;
                    }
                }
                idle.await;
            }
        };
        tokio::time::timeout(timeout, drained).await.is_ok()
    }

    /// Events queued or being sent.
    pub fn pending(&self) -> usize {
        self.handle.as_ref().map_or(0, |h| {
            let state = h.shared.lock();
            state.queue.len() + usize::from(state.in_flight)
        })
    }

    /// Events dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.handle.as_ref().map_or(0, |h| h.shared.lock().dropped)
    }
}

/// Starts the background task on the current runtime unless it is running. It is started
/// again if the runtime it ran on has shut down (the event it was sending then is lost).
fn ensure_worker(shared: &Arc<Shared>) {
    {
        let mut state = shared.lock();
        if state.worker.as_ref().is_some_and(|w| !w.is_finished()) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            state.in_flight = false;
            state.worker = Some(runtime.spawn(worker(Arc::clone(shared))));
            return;
        }
    }
    tracing::warn!(
        webhook = %shared.settings.masked_url,
        "webhook notification queued outside an async runtime; it is sent once the notifier \
         is used from inside one"
    );
}

async fn worker(shared: Arc<Shared>) {
    loop {
        let next = {
            let mut state = shared.lock();
            match state.queue.pop_front() {
                Some(item) => {
                    state.in_flight = true;
                    Some(item)
                }
                None if state.closed => break,
                None => None,
            }
        };
        match next {
            Some(item) => {
                deliver(&shared, &item).await;
                shared.lock().in_flight = false;
                shared.idle.notify_waiters();
            }
            // notify_one keeps a permit when nobody waits, so a push between the check above
            // and this wait still wakes the task.
            None => shared.wake.notified().await,
        }
    }
    shared.idle.notify_waiters();
}

/// Why one attempt failed, and whether another may succeed.
struct Failure {
    reason: String,
    retryable: bool,
    retry_after: Option<Duration>,
}

async fn deliver(shared: &Shared, item: &Pending) {
    let settings = &shared.settings;
    let body = render(settings.format, &item.event, item.at);
    let body = body.to_string();
    let attempts = settings.retries.saturating_add(1);
    let mut delay = settings.retry_delay;
    for attempt in 1..=attempts {
        match send_once(shared, &body).await {
            Ok(()) => {
                tracing::debug!(
                    webhook = %settings.masked_url,
                    event = item.event.kind(),
                    attempt,
                    "webhook notification sent"
                );
                return;
            }
            Err(failure) if failure.retryable && attempt < attempts => {
                tracing::debug!(
                    webhook = %settings.masked_url,
                    event = item.event.kind(),
                    attempt,
                    "webhook notification attempt failed, will retry: {}",
                    failure.reason
                );
                let wait = failure
                    .retry_after
                    .map_or(delay, |d| d.min(MAX_RETRY_AFTER));
                // Real time, not the batch's clock: this paces a real HTTP server, as the
                // request timeout does.
                tokio::time::sleep(wait).await;
                delay = delay.saturating_mul(2);
            }
            Err(failure) => {
                tracing::warn!(
                    webhook = %settings.masked_url,
                    event = item.event.kind(),
                    "webhook notification not delivered after {attempt} attempt(s): {}; the \
                     batch is not affected",
                    failure.reason
                );
                return;
            }
        }
    }
}

async fn send_once(shared: &Shared, body: &str) -> Result<(), Failure> {
    let settings = &shared.settings;
    let response = shared
        .client
        .post(settings.url.clone())
        .timeout(settings.timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| Failure {
            reason: describe_error(e, settings.timeout),
            retryable: true,
            retry_after: None,
        })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64);
    // The body is only for the log line; a server that answers the status but stalls the body
    // is still bound by the request timeout.
    let text = response.text().await.unwrap_or_default();
    let snippet: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(ERROR_BODY_LOG_CHARS)
        .collect();
    let mut reason = format!("the webhook answered HTTP {status}");
    if status.is_redirection() {
        reason.push_str(" (redirects are not followed; check the webhook URL)");
    }
    if !snippet.is_empty() {
        reason.push_str(&format!(": {snippet}"));
    }
    Err(Failure {
        reason,
        retryable: status.is_server_error()
            || status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT,
        retry_after,
    })
}

/// A request error as a log-safe sentence: without the URL (reqwest's own message includes
/// it, token and all) and with the underlying cause, e.g. "connection refused".
fn describe_error(error: reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!("no answer within {timeout:?}");
    }
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
