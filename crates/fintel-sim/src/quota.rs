//! Quota arithmetic of one Gemini project, free of HTTP and of any clock: requests per Pacific
//! calendar day, requests per sliding minute and input tokens per sliding minute. The server
//! feeds it the injected clock's "now"; tests feed it instants around DST changes.

use std::collections::VecDeque;
use std::time::Duration;

use fintel_time::{pacific_date, span_between};
use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};

use crate::weather::Weather;

/// The limits of one project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaLimits {
    /// Requests per Pacific calendar date.
    pub requests_per_day: u32,
    /// Requests in any sliding 60 seconds.
    pub requests_per_minute: u32,
    /// Input tokens in any sliding 60 seconds; also the largest request accepted.
    pub input_tokens_per_minute: u64,
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaLimitKind {
    /// Requests per day.
    RequestsPerDay,
    /// Requests per minute.
    RequestsPerMinute,
    /// Input tokens per minute.
    InputTokensPerMinute,
}

/// Why a request was refused, with everything a 429 body needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaRefusal {
    /// Every limit the request would break, most severe first (day, tokens, minute).
    pub violations: Vec<QuotaLimitKind>,
    /// The request alone is larger than the per-minute token cap: it can never pass.
    pub request_too_big: bool,
    /// The project was already at a limit when the request arrived (a well-behaved client
    /// never sends such a request).
    pub already_at_limit: bool,
    /// The delay the 429's RetryInfo suggests.
    pub retry_after: Duration,
}

/// Usage ledger of one project.
#[derive(Debug, Clone)]
pub struct ProjectQuota {
    limits: QuotaLimits,
    day: Option<Date>,
    requests_today: u32,
    /// Recorded requests of roughly the last minute: (instant, input tokens).
    recent: VecDeque<(Timestamp, u64)>,
    /// Late resets: the quota day is the weather's, not the plain Pacific date.
    weather: Option<Weather>,
}

const WINDOW_SECONDS: i64 = 60;

impl ProjectQuota {
    /// An unused ledger with `limits`.
    pub fn new(limits: QuotaLimits) -> Self {
        ProjectQuota {
            limits,
            day: None,
            requests_today: 0,
            recent: VecDeque::new(),
            weather: None,
        }
    }

    /// The same ledger whose day resets when `weather` says (late resets).
    pub fn with_weather(mut self, weather: Option<Weather>) -> Self {
        self.weather = weather;
        self
    }

    /// The limits.
    pub fn limits(&self) -> QuotaLimits {
        self.limits
    }

    /// Requests recorded on the Pacific date of `now`.
    pub fn requests_today(&mut self, now: Timestamp) -> u32 {
        self.roll(now);
        self.requests_today
    }

    /// Requests and tokens recorded in the 60 seconds before `now`.
    pub fn last_minute(&mut self, now: Timestamp) -> (u32, u64) {
        self.roll(now);
        let tokens = self.recent.iter().map(|(_, t)| *t).sum();
        (self.recent.len() as u32, tokens)
    }

    /// Forgets what no longer counts at `now`: the previous Pacific day's requests and the
    /// minute window's old entries.
    fn roll(&mut self, now: Timestamp) {
        let today = match &self.weather {
            Some(w) => w.quota_day(now),
            None => pacific_date(now),
        };
        if self.day != Some(today) {
            self.day = Some(today);
            self.requests_today = 0;
        }
        let window_start = now - WINDOW_SECONDS.seconds();
        while let Some((t, _)) = self.recent.front() {
            if *t <= window_start {
                self.recent.pop_front();
            } else {
                break;
            }
        }
    }

    /// Decides whether a request of `tokens` input tokens may be served at `now`, without
    /// recording it.
    pub fn check(&mut self, now: Timestamp, tokens: u64) -> Result<(), QuotaRefusal> {
        self.roll(now);
        let limits = self.limits;
        let (minute_requests, minute_tokens) = {
            let tokens: u64 = self.recent.iter().map(|(_, t)| *t).sum();
            (self.recent.len() as u32, tokens)
        };
        let mut violations = Vec::new();
        let day_full = self.requests_today >= limits.requests_per_day;
        let minute_full = minute_requests >= limits.requests_per_minute;
        let tokens_full = minute_tokens >= limits.input_tokens_per_minute;
        let request_too_big = tokens > limits.input_tokens_per_minute;
        if day_full {
            violations.push(QuotaLimitKind::RequestsPerDay);
        }
        if request_too_big || minute_tokens + tokens > limits.input_tokens_per_minute {
            violations.push(QuotaLimitKind::InputTokensPerMinute);
        }
        if minute_full {
            violations.push(QuotaLimitKind::RequestsPerMinute);
        }
        if violations.is_empty() {
            return Ok(());
        }
        Err(QuotaRefusal {
            retry_after: self.retry_after(now, &violations, tokens),
            violations,
            request_too_big,
            already_at_limit: day_full || minute_full || tokens_full,
        })
    }

    /// Records a request of `tokens` input tokens at `now`, whatever the limits say.
    pub fn record(&mut self, now: Timestamp, tokens: u64) {
        self.roll(now);
        self.requests_today += 1;
        self.recent.push_back((now, tokens));
    }

    /// [`check`](Self::check), then [`record`](Self::record) when the request may pass.
    pub fn check_and_record(&mut self, now: Timestamp, tokens: u64) -> Result<(), QuotaRefusal> {
        self.check(now, tokens)?;
        self.record(now, tokens);
        Ok(())
    }

    /// The RetryInfo delay. For minute limits: until enough of the window has expired. For the
    /// daily limit the real API also answers with a delay of seconds (which is why clients must
    /// read the quotaId, not the delay): the seconds left in the current minute.
    fn retry_after(&self, now: Timestamp, violations: &[QuotaLimitKind], tokens: u64) -> Duration {
        let window_end_of = |t: Timestamp| span_between(now, t + WINDOW_SECONDS.seconds());
        let mut delay = Duration::ZERO;
        for v in violations {
            let d = match v {
                QuotaLimitKind::RequestsPerMinute => {
                    // The request fits once all but (limit - 1) of the window's requests expired.
                    let keep = self.limits.requests_per_minute.saturating_sub(1) as usize;
                    let expire = self.recent.len().saturating_sub(keep);
                    self.recent
                        .get(expire.saturating_sub(1))
                        .map(|(t, _)| window_end_of(*t))
                        .unwrap_or(Duration::ZERO)
                }
                QuotaLimitKind::InputTokensPerMinute => {
                    let cap = self.limits.input_tokens_per_minute;
                    let mut used: u64 = self.recent.iter().map(|(_, t)| *t).sum();
                    let mut wait = Duration::ZERO;
                    for (t, n) in &self.recent {
                        if used + tokens <= cap {
                            break;
                        }
                        used -= n;
                        wait = window_end_of(*t);
                    }
                    wait
                }
                QuotaLimitKind::RequestsPerDay => {
                    let second_of_minute = now.as_second().rem_euclid(60) as u64;
                    Duration::from_secs(60 - second_of_minute)
                }
            };
            delay = delay.max(d);
        }
        // The real API rounds to whole seconds and never says 0s.
        let secs = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
        Duration::from_secs(secs.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rpd: u32, rpm: u32, tpm: u64) -> QuotaLimits {
        QuotaLimits {
            requests_per_day: rpd,
            requests_per_minute: rpm,
            input_tokens_per_minute: tpm,
        }
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn minutes(n: i64) -> jiff::Span {
        n.minutes()
    }

    /// Fills the day before Pacific midnight, checks the refusal, then checks that exactly at
    /// the Pacific midnight (and not an hour earlier or later) the day resets.
    fn day_resets_at_pacific_midnight(last_evening: &str, midnight_utc: &str) {
        let mut q = ProjectQuota::new(limits(3, 100, 1_000_000));
        let start = ts(last_evening);
        for i in 0..3 {
            q.check_and_record(start + minutes(i * 2), 10).unwrap();
        }
        let refusal = q.check(start + minutes(30), 10).unwrap_err();
        assert_eq!(refusal.violations, vec![QuotaLimitKind::RequestsPerDay]);
        assert!(refusal.already_at_limit);
        let midnight = ts(midnight_utc);
        assert!(q.check(midnight - 1.second(), 10).is_err());
        assert!(q.check(midnight - 1.hour(), 10).is_err());
        q.check_and_record(midnight, 10).unwrap();
        assert_eq!(q.requests_today(midnight), 1);
    }

    #[test]
    fn daily_limit_resets_at_pacific_midnight_in_winter_and_summer() {
        // PST (UTC-8) and PDT (UTC-7).
        day_resets_at_pacific_midnight("2026-01-15T22:00:00-08:00", "2026-01-16T08:00:00Z");
        day_resets_at_pacific_midnight("2026-07-15T22:00:00-07:00", "2026-07-16T07:00:00Z");
    }

    #[test]
    fn daily_limit_resets_correctly_on_dst_days() {
        // 2026-03-08 is 23 hours long in Pacific time: its midnight is PST, the next is PDT.
        day_resets_at_pacific_midnight("2026-03-08T21:00:00-07:00", "2026-03-09T07:00:00Z");
        // Into the spring-forward day itself.
        day_resets_at_pacific_midnight("2026-03-07T21:00:00-08:00", "2026-03-08T08:00:00Z");
        // 2026-11-01 is 25 hours long: it starts in PDT and the next midnight is PST.
        day_resets_at_pacific_midnight("2026-11-01T21:00:00-08:00", "2026-11-02T08:00:00Z");
        day_resets_at_pacific_midnight("2026-10-31T21:00:00-07:00", "2026-11-01T07:00:00Z");
    }

    #[test]
    fn the_long_dst_day_is_one_quota_day() {
        // 00:30 PDT and 23:30 PST on 2026-11-01 are 24 hours apart but the same Pacific date.
        let mut q = ProjectQuota::new(limits(2, 100, 1_000_000));
        q.check_and_record(ts("2026-11-01T00:30:00-07:00"), 1)
            .unwrap();
        q.check_and_record(ts("2026-11-01T23:00:00-08:00"), 1)
            .unwrap();
        assert!(q.check(ts("2026-11-01T23:30:00-08:00"), 1).is_err());
    }

    #[test]
    fn per_minute_limit_is_a_sliding_window_with_retry_delay() {
        let mut q = ProjectQuota::new(limits(100, 2, 1_000_000));
        let t0 = ts("2026-05-01T12:00:00Z");
        q.check_and_record(t0, 1).unwrap();
        q.check_and_record(t0 + 20.seconds(), 1).unwrap();
        let refusal = q.check(t0 + 30.seconds(), 1).unwrap_err();
        assert_eq!(refusal.violations, vec![QuotaLimitKind::RequestsPerMinute]);
        // The first request leaves the window at t0 + 60 s: 30 s from now.
        assert_eq!(refusal.retry_after, Duration::from_secs(30));
        assert!(q.check(t0 + 59.seconds(), 1).is_err());
        q.check_and_record(t0 + 60.seconds(), 1).unwrap();
        assert!(q.check(t0 + 61.seconds(), 1).is_err());
    }

    #[test]
    fn tokens_per_minute_refuses_the_request_that_would_overflow() {
        let mut q = ProjectQuota::new(limits(100, 100, 1_000));
        let t0 = ts("2026-05-01T12:00:00Z");
        q.check_and_record(t0, 600).unwrap();
        let refusal = q.check(t0 + 10.seconds(), 500).unwrap_err();
        assert_eq!(
            refusal.violations,
            vec![QuotaLimitKind::InputTokensPerMinute]
        );
        assert!(!refusal.request_too_big);
        assert!(!refusal.already_at_limit);
        assert_eq!(refusal.retry_after, Duration::from_secs(50));
        q.check_and_record(t0 + 10.seconds(), 400).unwrap();
        let too_big = q.check(t0 + 200.seconds(), 1_001).unwrap_err();
        assert!(too_big.request_too_big);
        assert_eq!(
            too_big.violations,
            vec![QuotaLimitKind::InputTokensPerMinute]
        );
    }

    #[test]
    fn several_violations_are_listed_day_first() {
        let mut q = ProjectQuota::new(limits(1, 1, 100));
        let t0 = ts("2026-05-01T12:00:10Z");
        q.check_and_record(t0, 100).unwrap();
        let refusal = q.check(t0 + 1.second(), 50).unwrap_err();
        assert_eq!(
            refusal.violations,
            vec![
                QuotaLimitKind::RequestsPerDay,
                QuotaLimitKind::InputTokensPerMinute,
                QuotaLimitKind::RequestsPerMinute
            ]
        );
        assert!(refusal.already_at_limit);
        assert_eq!(q.last_minute(t0 + 1.second()), (1, 100));
    }
}
