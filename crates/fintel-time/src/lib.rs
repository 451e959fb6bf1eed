//! Time for fintel: one injected [`Clock`] that every crate reads "now" from and sleeps on,
//! and the arithmetic of the provider's quota day (a calendar date in America/Los_Angeles that
//! resets at Pacific midnight).
//!
//! Nothing else in the workspace calls `SystemTime::now()` or `tokio::time::sleep` for anything
//! that decides behaviour: tests substitute a [`ManualClock`], and the binary builds a
//! [`FakeClock`] from `FINTEL_FAKE_CLOCK` so end-to-end tests pass a reset in seconds through the
//! very code a user runs.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};

mod eta;
pub use eta::served_before;
pub use eta::{
    ahead_words, queue_ahead, queued_eta, quota_day_number, quota_eta, Ahead, BucketCapacity,
    QueuedBatch, QuotaEta,
};

/// The environment variable that turns on the fake clock (SPEC.md section 11).
pub const FAKE_CLOCK_ENV: &str = "FINTEL_FAKE_CLOCK";

/// The longest single real sleep. Waits are for a wall-clock instant and re-check the clock at
/// least this often, so a machine that was suspended wakes up on time instead of hours late.
pub const MAX_SLEEP_SLICE: Duration = Duration::from_secs(60);

/// A boxed future, so `Clock` stays object safe.
pub type SleepFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// The source of "now" and of waiting.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Timestamp;

    /// Waits until `deadline` has passed by this clock's reckoning.
    fn sleep_until(&self, deadline: Timestamp) -> SleepFuture<'_>;

    /// Whether this clock reads simulated time (`FINTEL_FAKE_CLOCK`, the demo), so that what
    /// shows times can say they are not the wall clock's.
    fn is_simulated(&self) -> bool {
        false
    }

    /// Waits for `duration` of this clock's time.
    fn sleep(&self, duration: Duration) -> SleepFuture<'_> {
        let deadline = self.now() + duration_to_span(duration);
        self.sleep_until(deadline)
    }
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn sleep_until(&self, deadline: Timestamp) -> SleepFuture<'_> {
        Box::pin(sleep_in_slices(self, deadline, 1.0))
    }
}

/// Sleeps in slices of at most [`MAX_SLEEP_SLICE`] (scaled to real time by `speed`), re-reading
/// the clock after each, so a suspend or a clock change is noticed within a minute.
async fn sleep_in_slices<C: Clock + ?Sized>(clock: &C, deadline: Timestamp, speed: f64) {
    loop {
        let now = clock.now();
        if now >= deadline {
            return;
        }
        let remaining = span_between(now, deadline);
        let real = Duration::from_secs_f64(remaining.as_secs_f64() / speed);
        let slice = real.min(MAX_SLEEP_SLICE).max(Duration::from_millis(1));
        tokio::time::sleep(slice).await;
    }
}

/// `FINTEL_FAKE_CLOCK=<RFC 3339 instant>[@<speed>]`: time reads as that instant plus
/// `speed` x the real time elapsed since the clock was made.
#[derive(Debug, Clone)]
pub struct FakeClock {
    start: Timestamp,
    speed: f64,
    origin: Instant,
}

/// A `FINTEL_FAKE_CLOCK` value that could not be understood.
#[derive(Debug, thiserror::Error)]
#[error(
    "FINTEL_FAKE_CLOCK={value:?} is not valid: {problem}. Expected an RFC 3339 instant, \
     optionally followed by @speed, e.g. 2026-03-08T07:55:00Z@60"
)]
pub struct FakeClockError {
    value: String,
    problem: String,
}

impl FakeClock {
    /// A fake clock starting at `start` and running `speed` times faster than real time.
    pub fn new(start: Timestamp, speed: f64) -> Self {
        FakeClock {
            start,
            speed,
            origin: Instant::now(),
        }
    }

    /// Parses the `FINTEL_FAKE_CLOCK` syntax.
    pub fn parse(value: &str) -> Result<Self, FakeClockError> {
        let err = |problem: String| FakeClockError {
            value: value.to_string(),
            problem,
        };
        let (instant, speed) = match value.rsplit_once('@') {
            Some((instant, speed)) => {
                let speed: f64 = speed
                    .trim()
                    .parse()
                    .map_err(|_| err(format!("speed {speed:?} is not a number")))?;
                (instant, speed)
            }
            None => (value, 1.0),
        };
        if !(speed.is_finite() && speed > 0.0) {
            return Err(err(format!("speed {speed} must be a positive number")));
        }
        let start: Timestamp = instant
            .trim()
            .parse()
            .map_err(|e| err(format!("{instant:?} is not an RFC 3339 instant ({e})")))?;
        Ok(FakeClock::new(start, speed))
    }

    /// The speed factor.
    pub fn speed(&self) -> f64 {
        self.speed
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Timestamp {
        let elapsed = self.origin.elapsed().as_secs_f64() * self.speed;
        self.start + duration_to_span(Duration::from_secs_f64(elapsed))
    }

    fn sleep_until(&self, deadline: Timestamp) -> SleepFuture<'_> {
        Box::pin(sleep_in_slices(self, deadline, self.speed))
    }

    fn is_simulated(&self) -> bool {
        true
    }
}

/// The clock a process should use: the fake clock when `FINTEL_FAKE_CLOCK` is set, else the
/// system clock.
pub fn clock_from_env() -> Result<SharedClock, FakeClockError> {
    match std::env::var(FAKE_CLOCK_ENV) {
        Ok(value) if !value.trim().is_empty() => Ok(Arc::new(FakeClock::parse(&value)?)),
        _ => Ok(Arc::new(SystemClock)),
    }
}

/// A clock for tests: time stands still until advanced, and a sleep jumps the clock forward to
/// its deadline at once (a discrete-event view of time), so tests never wait for real time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<Timestamp>>,
}

impl ManualClock {
    /// A manual clock reading `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Moves the clock forward by `duration`.
    pub fn advance(&self, duration: Duration) {
        let mut now = self.lock();
        *now += duration_to_span(duration);
    }

    /// Sets the clock to `t` (never backwards).
    pub fn set(&self, t: Timestamp) {
        let mut now = self.lock();
        if t > *now {
            *now = t;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Timestamp> {
        // A poisoned lock only means a test thread panicked; the timestamp is still valid.
        self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.lock()
    }

    fn sleep_until(&self, deadline: Timestamp) -> SleepFuture<'_> {
        self.set(deadline);
        Box::pin(async {
            // Let other tasks run, as a real sleep would.
            tokio::task::yield_now().await;
        })
    }
}

/// The time zone whose midnight resets Gemini's daily quota.
pub fn pacific() -> TimeZone {
    // Bundled with the binary (jiff's `tzdb-bundle-always`), so this cannot fail at run time
    // unless the bundle itself is broken, which the tests of this crate would catch.
    TimeZone::get("America/Los_Angeles").expect("bundled tz database has America/Los_Angeles")
}

/// The Pacific calendar date of `t`: the quota day that a request sent at `t` counts against.
pub fn pacific_date(t: Timestamp) -> Date {
    t.to_zoned(pacific()).date()
}

/// The first Pacific midnight strictly after `t` (the provider's quota reset), correct on the
/// days daylight saving time starts or ends.
pub fn next_pacific_midnight(t: Timestamp) -> Timestamp {
    let zoned = t.to_zoned(pacific());
    let tomorrow = zoned.date().tomorrow().expect("dates before year 9999");
    // Midnight exists on every Pacific date (DST switches at 02:00), so this is unambiguous.
    tomorrow
        .to_zoned(pacific())
        .expect("midnight exists in America/Los_Angeles")
        .timestamp()
}

/// When fintel resumes sending after the daily reset: the next Pacific midnight plus `buffer`.
pub fn next_reset(t: Timestamp, buffer: Duration) -> Timestamp {
    next_pacific_midnight(t) + duration_to_span(buffer)
}

/// The start of the Pacific date `date` as an instant.
pub fn pacific_day_start(date: Date) -> Timestamp {
    date.to_zoned(pacific())
        .expect("midnight exists in America/Los_Angeles")
        .timestamp()
}

/// `t` shown in the user's local time zone and in Pacific time, e.g.
/// `2026-03-09 16:05 JST (2026-03-09 00:05 PDT)`.
pub fn local_and_pacific(t: Timestamp) -> String {
    let local = t.to_zoned(TimeZone::system());
    let pacific = t.to_zoned(pacific());
    format!("{} ({})", short(&local), short(&pacific))
}

fn short(z: &Zoned) -> String {
    z.strftime("%Y-%m-%d %H:%M %Z").to_string()
}

/// Converts a std duration to a jiff span in seconds and nanoseconds.
pub fn duration_to_span(d: Duration) -> jiff::Span {
    (d.as_secs() as i64)
        .seconds()
        .nanoseconds(d.subsec_nanos() as i64)
}

/// The non-negative duration from `a` to `b` (zero when `b` is not after `a`).
pub fn span_between(a: Timestamp, b: Timestamp) -> Duration {
    let d = b.duration_since(a);
    if d.is_negative() {
        Duration::ZERO
    } else {
        d.unsigned_abs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(s: &str) -> Timestamp {
        // A Pacific wall-clock time; `compatible` picks the earlier of two ambiguous instants.
        let dt: jiff::civil::DateTime = s.parse().unwrap();
        dt.to_zoned(pacific()).unwrap().timestamp()
    }

    fn reset_pacific(t: Timestamp) -> String {
        next_reset(t, Duration::from_secs(300))
            .to_zoned(pacific())
            .strftime("%Y-%m-%d %H:%M %Z")
            .to_string()
    }

    #[test]
    fn reset_on_spring_forward_day() {
        // 2026-03-08: clocks jump from 02:00 PST to 03:00 PDT; that day has 23 hours.
        for t in ["2026-03-08T00:30", "2026-03-08T01:59", "2026-03-08T03:00"] {
            assert_eq!(reset_pacific(pt(t)), "2026-03-09 00:05 PDT", "{t}");
        }
        let t = pt("2026-03-08T00:30");
        let wait = span_between(t, next_pacific_midnight(t));
        assert_eq!(wait, Duration::from_secs(22 * 3600 + 30 * 60));
    }

    #[test]
    fn reset_on_fall_back_day() {
        // 2026-11-01: 01:00-02:00 happens twice (PDT then PST); that day has 25 hours.
        assert_eq!(
            reset_pacific(pt("2026-11-01T00:30")),
            "2026-11-02 00:05 PST"
        );
        let first_130: Timestamp = "2026-11-01T01:30-07:00".parse().unwrap();
        let second_130: Timestamp = "2026-11-01T01:30-08:00".parse().unwrap();
        assert_eq!(reset_pacific(first_130), "2026-11-02 00:05 PST");
        assert_eq!(reset_pacific(second_130), "2026-11-02 00:05 PST");
        assert_eq!(
            span_between(first_130, next_pacific_midnight(first_130)),
            Duration::from_secs(23 * 3600 + 30 * 60)
        );
        assert_eq!(
            span_between(second_130, next_pacific_midnight(second_130)),
            Duration::from_secs(22 * 3600 + 30 * 60)
        );
        assert_eq!(
            reset_pacific(pt("2026-11-01T02:30")),
            "2026-11-02 00:05 PST"
        );
        let t = pt("2026-11-01T00:30");
        assert_eq!(
            span_between(t, next_pacific_midnight(t)),
            Duration::from_secs(24 * 3600 + 30 * 60)
        );
    }

    #[test]
    fn reset_on_ordinary_day_and_exact_midnight() {
        assert_eq!(
            reset_pacific(pt("2026-06-15T13:00")),
            "2026-06-16 00:05 PDT"
        );
        // At midnight exactly, the reset that just happened is not "next".
        assert_eq!(
            reset_pacific(pt("2026-06-16T00:00")),
            "2026-06-17 00:05 PDT"
        );
        assert_eq!(
            pacific_date(pt("2026-06-16T00:00")).to_string(),
            "2026-06-16"
        );
        assert_eq!(
            pacific_date(pt("2026-06-15T23:59:59")).to_string(),
            "2026-06-15"
        );
    }

    #[test]
    fn reset_for_a_user_far_away() {
        // 09:00 on 2026-03-09 in Tokyo is 16:00 PDT on 2026-03-08 (the spring-forward day).
        let tokyo = TimeZone::get("Asia/Tokyo").unwrap();
        let t = "2026-03-09T09:00"
            .parse::<jiff::civil::DateTime>()
            .unwrap()
            .to_zoned(tokyo.clone())
            .unwrap()
            .timestamp();
        assert_eq!(pacific_date(t).to_string(), "2026-03-08");
        let reset = next_reset(t, Duration::from_secs(300));
        assert_eq!(
            reset.to_zoned(tokyo).strftime("%Y-%m-%d %H:%M").to_string(),
            "2026-03-09 16:05"
        );
    }

    #[test]
    fn fake_clock_parses_and_runs_fast() {
        let c = FakeClock::parse("2026-03-08T07:55:00Z@3600").unwrap();
        assert_eq!(c.speed(), 3600.0);
        assert!(c.now() >= "2026-03-08T07:55:00Z".parse::<Timestamp>().unwrap());
        let c = FakeClock::parse("2026-03-08T07:55:00Z").unwrap();
        assert_eq!(c.speed(), 1.0);
    }

    #[test]
    fn fake_clock_rejects_bad_values() {
        for bad in [
            "yesterday",
            "2026-03-08T07:55:00Z@fast",
            "2026-03-08T07:55:00Z@0",
            "",
        ] {
            let e = FakeClock::parse(bad).unwrap_err().to_string();
            assert!(e.contains("FINTEL_FAKE_CLOCK"), "{e}");
        }
    }

    #[tokio::test]
    async fn fake_clock_sleep_is_scaled() {
        let c = FakeClock::new("2026-01-01T00:00:00Z".parse().unwrap(), 3600.0);
        let started = Instant::now();
        c.sleep(Duration::from_secs(360)).await; // six fake minutes = 0.1 s real
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(c.now() >= "2026-01-01T00:06:00Z".parse::<Timestamp>().unwrap());
    }

    #[tokio::test]
    async fn manual_clock_jumps_on_sleep() {
        let c = ManualClock::new("2026-01-01T00:00:00Z".parse().unwrap());
        c.sleep(Duration::from_secs(86_400)).await;
        assert_eq!(c.now().to_string(), "2026-01-02T00:00:00Z");
    }
}
