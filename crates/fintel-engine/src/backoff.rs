//! Capped exponential backoff with jitter, and the outage breaker.

use std::time::Duration;

use rand::Rng;

/// Delay before retry number `attempt` (1-based): `base * 2^(attempt-1)`, capped, with full
/// jitter in the upper half so that many tasks failing together do not retry together.
pub fn retry_delay(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let ceiling = exp.min(cap);
    let half = ceiling / 2;
    half + Duration::from_secs_f64(rand::rng().random::<f64>() * half.as_secs_f64())
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
