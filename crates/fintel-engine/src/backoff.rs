//! Capped exponential backoff with jitter, and the outage breaker.

use std::time::Duration;

use jiff::Timestamp;
use rand::Rng;

/// Delay before retry number `attempt` (1-based): `base * 2^(attempt-1)`, capped, with full
/// jitter in the upper half so that many tasks failing together do not retry together.
pub fn retry_delay(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let ceiling = exp.min(cap);
    let half = ceiling / 2;
    half + Duration::from_secs_f64(rand::rng().random::<f64>() * half.as_secs_f64())
}

/// The wait before a provider request is sent again after a transient failure: the backoff,
/// but after a timeout at least the request timeout once more, because the server may still
/// be working on the abandoned request (a busy local server finishes what it started), and a
/// resend sooner would only queue behind it and time out in turn.
pub fn resend_delay(
    backoff: Duration,
    timed_out: bool,
    request_timeout: Option<Duration>,
) -> Duration {
    match (timed_out, request_timeout) {
        (true, Some(timeout)) => backoff.max(timeout),
        _ => backoff,
    }
}

/// The outage breaker (SPEC.md section 2): after `threshold` consecutive transient failures on
/// different tasks, stop sending and probe with one request at growing intervals.
///
/// It also remembers every attempt charged during the current streak, so that when the streak
/// turns out to be an outage, all of them (not one per task) are given back.
#[derive(Debug, Clone)]
pub struct Breaker {
    threshold: usize,
    recent_tasks: Vec<i64>,
    charged: Vec<i64>,
    open: bool,
    probes: u32,
    /// When the current streak's first failure happened, where the caller said.
    streak_began: Option<Timestamp>,
    /// When the breaker opened, where the caller said.
    opened_at: Option<Timestamp>,
}

/// First probe interval of an open breaker; it doubles up to [`PROBE_MAX`].
pub const PROBE_START: Duration = Duration::from_secs(60);
/// Longest probe interval.
pub const PROBE_MAX: Duration = Duration::from_secs(30 * 60);

impl Breaker {
    pub fn new(threshold: usize) -> Self {
        Breaker {
            threshold,
            recent_tasks: Vec::new(),
            charged: Vec::new(),
            open: false,
            probes: 0,
            streak_began: None,
            opened_at: None,
        }
    }

    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Records a transient failure of `task_id`; returns true when this opened the breaker.
    pub fn record_failure(&mut self, task_id: i64) -> bool {
        if self.open {
            return false;
        }
        if !self.recent_tasks.contains(&task_id) {
            self.recent_tasks.push(task_id);
        }
        if self.recent_tasks.len() >= self.threshold {
            self.open = true;
            self.probes = 0;
            return true;
        }
        false
    }

    /// [`Breaker::record_failure`] at `now`, remembering when the streak began.
    pub fn record_failure_at(&mut self, task_id: i64, now: Timestamp) -> bool {
        if !self.open && self.recent_tasks.is_empty() {
            self.streak_began = Some(now);
        }
        let opened = self.record_failure(task_id);
        if opened {
            self.opened_at = Some(now);
        }
        opened
    }

    /// Whether a task that started at `started` must not send now: the breaker is open and
    /// the task was claimed before it opened (only the probe, claimed after, may go).
    pub fn holds_back(&self, started: Timestamp) -> bool {
        self.open && self.opened_at.is_none_or(|opened| started <= opened)
    }

    /// A success of a task that started at `started`. A task started before the streak's
    /// first failure says nothing about the provider now (its answer may arrive long after an
    /// outage began): it neither closes the breaker nor ends the streak.
    pub fn record_success_of(&mut self, started: Timestamp) {
        if self.streak_began.is_some_and(|began| started < began) {
            return;
        }
        self.record_success();
    }

    /// Whether a task other than `task_id` has failed in the current streak: failures on
    /// several tasks with no success in between may be an outage forming.
    pub fn others_failing(&self, task_id: i64) -> bool {
        self.recent_tasks.iter().any(|t| *t != task_id)
    }

    /// Notes an attempt charged to `task_id` for a failure of the current streak.
    pub fn record_charge(&mut self, task_id: i64) {
        self.charged.push(task_id);
    }

    /// The attempts charged during the streak that opened the breaker, one entry per attempt,
    /// to be refunded; the list is emptied.
    pub fn take_charged(&mut self) -> Vec<i64> {
        std::mem::take(&mut self.charged)
    }

    /// Any success closes the breaker and clears the streak; the attempts charged stand.
    pub fn record_success(&mut self) {
        self.recent_tasks.clear();
        self.charged.clear();
        self.open = false;
        self.probes = 0;
        self.streak_began = None;
        self.opened_at = None;
    }

    /// The wait before the next probe, growing 1 min, 2, 4 ... up to 30 min.
    pub fn next_probe_delay(&mut self) -> Duration {
        let d = PROBE_START
            .saturating_mul(1u32 << self.probes.min(10))
            .min(PROBE_MAX);
        self.probes += 1;
        d
    }

    /// The tasks whose failures opened the breaker (their attempts are refunded).
    pub fn streak(&self) -> &[i64] {
        &self.recent_tasks
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_timed_out_request_waits_at_least_a_timeout_before_it_is_resent() {
        let s = Duration::from_secs;
        // (backoff, timed out, request timeout) -> wait
        let cases = [
            ((s(30), true, Some(s(600))), s(600)),
            ((s(900), true, Some(s(600))), s(900)),
            ((s(30), false, Some(s(600))), s(30)),
            ((s(30), true, None), s(30)),
        ];
        for ((backoff, timed_out, timeout), expected) in cases {
            assert_eq!(resend_delay(backoff, timed_out, timeout), expected);
        }
    }

    use super::*;

    #[test]
    fn delays_grow_and_are_capped() {
        let base = Duration::from_secs(10);
        let cap = Duration::from_secs(300);
        for _ in 0..50 {
            let d1 = retry_delay(1, base, cap);
            assert!(d1 >= Duration::from_secs(5) && d1 <= base);
            let d3 = retry_delay(3, base, cap);
            assert!(d3 >= Duration::from_secs(20) && d3 <= Duration::from_secs(40));
            assert!(retry_delay(30, base, cap) <= cap);
        }
    }

    #[test]
    fn breaker_opens_after_distinct_tasks_and_probes_grow() {
        let mut b = Breaker::new(5);
        for _ in 0..10 {
            assert!(
                !b.record_failure(1),
                "one task failing repeatedly is not an outage"
            );
        }
        for t in 2..5 {
            assert!(!b.record_failure(t));
        }
        assert!(b.record_failure(5));
        assert!(b.is_open());
        let delays: Vec<u64> = (0..7)
            .map(|_| b.next_probe_delay().as_secs() / 60)
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
        b.record_success();
        assert!(!b.is_open());
        assert!(b.streak().is_empty());
    }

    #[test]
    fn a_success_of_a_task_started_before_the_streak_does_not_close_the_breaker() {
        let t = |s: &str| -> Timestamp { s.parse().unwrap() };
        let mut b = Breaker::new(2);
        assert!(!b.record_failure_at(1, t("2026-06-15T08:00:00Z")));
        assert!(b.record_failure_at(2, t("2026-06-15T08:00:05Z")));
        // A call sent at 07:59 answers now: the outage began after it left.
        b.record_success_of(t("2026-06-15T07:59:00Z"));
        assert!(b.is_open());
        // A task claimed before the breaker opened is held back; the probe, claimed after,
        // is not.
        assert!(b.holds_back(t("2026-06-15T08:00:03Z")));
        assert!(!b.holds_back(t("2026-06-15T08:01:05Z")));
        // The probe, started after the streak began, succeeds: the outage is over.
        b.record_success_of(t("2026-06-15T08:10:00Z"));
        assert!(!b.is_open());
        assert!(b.streak().is_empty());
    }

    #[test]
    fn charged_attempts_are_kept_until_the_streak_ends() {
        let mut b = Breaker::new(3);
        b.record_failure(1);
        b.record_charge(1);
        assert!(!b.others_failing(1), "only task 1 has failed");
        b.record_failure(1);
        b.record_charge(1);
        b.record_failure(2);
        b.record_charge(2);
        assert!(b.others_failing(1));
        assert!(b.record_failure(3));
        assert_eq!(
            b.take_charged(),
            [1, 1, 2],
            "every charge, not one per task"
        );
        assert!(b.take_charged().is_empty());
        b.record_success();
        b.record_failure(4);
        b.record_charge(4);
        b.record_success();
        assert!(
            b.take_charged().is_empty(),
            "a success makes the charges stand"
        );
    }
}
