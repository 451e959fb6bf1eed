//! The one SEC rate limiter: every SEC request of every process sharing a cache directory goes
//! through it, so together they never exceed the configured rate (default 5/s, at most 10/s),
//! and a rate refusal from SEC pauses them all for 10 minutes.
//!
//! The shared state is a small JSON file (`sec-rate-limit.json`: the instants of the requests
//! of the last second and any pause-until instant) guarded by an OS file lock on
//! `sec-rate-limit.lock`. Inside one process a mutex serialises the tasks first, so the file
//! lock is only contended between processes. A request is admitted at instant `t` only if fewer
//! than `rate` requests were admitted in `[t - 1 s, t]`, so no closed one-second window ever
//! holds more than `rate` requests. Waiting uses the injected clock's `sleep_until`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fintel_time::SharedClock;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::cache::{write_atomic, Durability};
use crate::EdgarError;

/// How long SEC traffic pauses after "Request Rate Threshold Exceeded" or a 429.
pub const RATE_LIMIT_PAUSE: Duration = Duration::from_secs(600);

const WINDOW: SignedDuration = SignedDuration::from_secs(1);
const STATE_FILE: &str = "sec-rate-limit.json";
const LOCK_FILE: &str = "sec-rate-limit.lock";

#[derive(Debug, Default, Serialize, Deserialize)]
struct SharedState {
    /// Admission instants of the last second, oldest first.
    recent: Vec<Timestamp>,
    /// No request before this instant.
    paused_until: Option<Timestamp>,
}

/// The decision taken under the lock.
enum Admission {
    Admitted(Timestamp),
    WaitUntil(Timestamp),
}

/// The SEC rate limiter shared by all processes on one cache directory.
#[derive(Clone)]
pub struct SecRateLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    rate: u32,
    clock: SharedClock,
    state_path: PathBuf,
    lock_path: PathBuf,
    in_process: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for SecRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecRateLimiter")
            .field("rate", &self.inner.rate)
            .field("state_path", &self.inner.state_path)
            .finish()
    }
}

impl SecRateLimiter {
    /// A limiter keeping its shared state in `dir` (created if needed). `requests_per_second`
    /// is checked by [`crate::config::effective_rate`]: 0 is refused, above 10 clamped to 10.
    pub fn new(
        dir: &Path,
        requests_per_second: u32,
        clock: SharedClock,
    ) -> Result<SecRateLimiter, EdgarError> {
        let rate = crate::config::effective_rate(requests_per_second)?;
        std::fs::create_dir_all(dir).map_err(|e| EdgarError::io(dir, e))?;
        Ok(SecRateLimiter {
            inner: Arc::new(Inner {
                rate,
                clock,
                state_path: dir.join(STATE_FILE),
                lock_path: dir.join(LOCK_FILE),
                in_process: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// The rate in force (after clamping).
    pub fn rate(&self) -> u32 {
        self.inner.rate
    }

    /// Waits until a request may go out and records it; returns the admission instant.
    pub async fn acquire(&self) -> Result<Timestamp, EdgarError> {
        loop {
            let decision = {
                let _serialised = self.inner.in_process.lock().await;
                let inner = Arc::clone(&self.inner);
                run_blocking(move || inner.try_admit()).await?
            };
            match decision {
                Admission::Admitted(at) => return Ok(at),
                Admission::WaitUntil(until) => {
                    if until.duration_since(self.inner.clock.now()) > SignedDuration::from_secs(5) {
                        tracing::info!(%until, "SEC requests paused; waiting");
                    }
                    self.inner.clock.sleep_until(until).await;
                }
            }
        }
    }

    /// Pauses all SEC traffic (of every process on the directory) until `until`, unless a
    /// longer pause is already recorded. Returns the pause in force.
    pub async fn pause_until(&self, until: Timestamp) -> Result<Timestamp, EdgarError> {
        let _serialised = self.inner.in_process.lock().await;
        let inner = Arc::clone(&self.inner);
        run_blocking(move || {
            inner.with_state(|state| {
                let paused = state.paused_until.map_or(until, |p| p.max(until));
                state.paused_until = Some(paused);
                paused
            })
        })
        .await
    }

    /// The pause in force, if any.
    pub async fn paused_until(&self) -> Result<Option<Timestamp>, EdgarError> {
        let _serialised = self.inner.in_process.lock().await;
        let inner = Arc::clone(&self.inner);
        run_blocking(move || {
            let now = inner.clock.now();
            inner.with_state(|state| state.paused_until.filter(|p| *p > now))
        })
        .await
    }
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EdgarError> + Send + 'static,
) -> Result<T, EdgarError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EdgarError::InvalidInput(format!("rate limiter task failed: {e}")))?
}

impl Inner {
    fn try_admit(&self) -> Result<Admission, EdgarError> {
        let rate = self.rate as usize;
        self.with_state(|state| {
            // Read under the lock: an instant read before it could be overtaken by another
            // process's admissions and record a request earlier than it really went out.
            let now = self.clock.now();
            if let Some(paused) = state.paused_until {
                if paused > now {
                    return Admission::WaitUntil(paused);
                }
                state.paused_until = None;
            }
            // Instants in the future (another process's clock running ahead) still count.
            state.recent.retain(|t| now.duration_since(*t) <= WINDOW);
            state.recent.sort();
            if state.recent.len() < rate {
                state.recent.push(now);
                Admission::Admitted(now)
            } else {
                let blocking = state.recent[state.recent.len() - rate];
                Admission::WaitUntil(blocking + WINDOW + SignedDuration::from_nanos(1))
            }
        })
    }

    /// Runs `f` on the shared state under the cross-process file lock, then saves the state.
    fn with_state<T>(&self, f: impl FnOnce(&mut SharedState) -> T) -> Result<T, EdgarError> {
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock_path)
            .map_err(|e| EdgarError::io(&self.lock_path, e))?;
        lock.lock()
            .map_err(|e| EdgarError::io(&self.lock_path, e))?;
        let mut state = match std::fs::read(&self.state_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(
                    path = %self.state_path.display(),
                    error = %e,
                    "SEC rate-limiter state unreadable; starting from an empty one"
                );
                SharedState::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => SharedState::default(),
            Err(e) => return Err(EdgarError::io(&self.state_path, e)),
        };
        let out = f(&mut state);
        let bytes = serde_json::to_vec(&state)
            .map_err(|e| EdgarError::parse("SEC rate-limiter state", e))?;
        write_atomic(&self.state_path, &bytes, None, Durability::Unsynced)?;
        // Dropping `lock` releases the OS lock.
        drop(lock);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fintel_time::{Clock, ManualClock};

    fn assert_no_window_exceeds(mut instants: Vec<Timestamp>, rate: usize) {
        instants.sort();
        for (i, start) in instants.iter().enumerate() {
            let in_window = instants[i..]
                .iter()
                .take_while(|t| t.duration_since(*start) <= WINDOW)
                .count();
            assert!(
                in_window <= rate,
                "{in_window} requests within one second starting at {start} (rate {rate})"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn no_second_carries_more_than_the_rate() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new("2024-01-01T00:00:00Z".parse().unwrap());
        let start = clock.now();
        let limiter = SecRateLimiter::new(dir.path(), 5, Arc::new(clock.clone())).unwrap();
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let limiter = limiter.clone();
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..10 {
                    got.push(limiter.acquire().await.unwrap());
                }
                got
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        assert_eq!(all.len(), 60);
        assert_no_window_exceeds(all.clone(), 5);
        // 60 requests at 5/s need at least 11 s; the limiter should not wait much longer.
        let elapsed = clock.now().duration_since(start);
        assert!(elapsed >= SignedDuration::from_secs(11), "{elapsed:?}");
        assert!(elapsed <= SignedDuration::from_secs(30), "{elapsed:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_limiters_on_one_directory_share_the_rate() {
        // Two limiters with separate in-process locks stand for two processes.
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new("2024-01-01T00:00:00Z".parse().unwrap());
        let a = SecRateLimiter::new(dir.path(), 4, Arc::new(clock.clone())).unwrap();
        let b = SecRateLimiter::new(dir.path(), 4, Arc::new(clock.clone())).unwrap();
        let mut tasks = Vec::new();
        for limiter in [a.clone(), b.clone(), a, b] {
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..8 {
                    got.push(limiter.acquire().await.unwrap());
                }
                got
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        assert_eq!(all.len(), 32);
        assert_no_window_exceeds(all, 4);
    }

    #[tokio::test]
    async fn a_pause_holds_every_request_back() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new("2024-01-01T00:00:00Z".parse().unwrap());
        let limiter = SecRateLimiter::new(dir.path(), 10, Arc::new(clock.clone())).unwrap();
        let other_process = SecRateLimiter::new(dir.path(), 10, Arc::new(clock.clone())).unwrap();
        let until = clock.now() + SignedDuration::from_secs(600);
        limiter.pause_until(until).await.unwrap();
        // A shorter pause does not shorten it.
        limiter
            .pause_until(clock.now() + SignedDuration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(other_process.paused_until().await.unwrap(), Some(until));
        let admitted = other_process.acquire().await.unwrap();
        assert!(admitted >= until, "{admitted} before {until}");
        assert_eq!(limiter.paused_until().await.unwrap(), None);
    }

    #[test]
    fn rate_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let clock: SharedClock = Arc::new(ManualClock::new(Timestamp::UNIX_EPOCH));
        assert!(SecRateLimiter::new(dir.path(), 0, clock.clone()).is_err());
        assert_eq!(
            SecRateLimiter::new(dir.path(), 25, clock).unwrap().rate(),
            10
        );
    }

    #[tokio::test]
    async fn unreadable_state_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STATE_FILE), b"not json").unwrap();
        let clock = ManualClock::new("2024-01-01T00:00:00Z".parse().unwrap());
        let limiter = SecRateLimiter::new(dir.path(), 5, Arc::new(clock)).unwrap();
        limiter.acquire().await.unwrap();
    }
}
