//! What state a key bucket is in, as `fintel keys` and the dashboard's Keys page show it: one
//! pure decision from the bucket's standing in the ledger, its limits, its keys and the sizes
//! of the requests waiting for a bucket whose token cap fits them, so both views say the same.

use jiff::Timestamp;

use crate::{BucketLimits, BucketUsage};

/// A bucket's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketState {
    /// Every key of the bucket is disabled.
    Disabled,
    /// Refused for the day after answering only `answered` of its `limit` requests that quota
    /// day: the project's quota was spent through another key or another program.
    SpentElsewhere { answered: u32, limit: u32 },
    /// The provider refused for the day after an answered request: spent until this instant.
    ExhaustedByProvider { until: Timestamp },
    /// Today's answered and uncertain requests reach the limit and none is uncertain enough
    /// to doubt it: spent until the reset.
    Exhausted,
    /// The day looks spent only because of `uncertain` requests (server errors, timeouts,
    /// calls of a killed process): the bucket asks the provider one request at a time.
    Verifying { uncertain: u32 },
    /// Refused for the day early in the quota day: the provider has not reset yet; the next
    /// single request goes at `next_try`.
    NotResetYet { next_try: Timestamp },
    /// A per-minute limit or retry hint: next request at `until`.
    BackingOff { until: Timestamp },
    /// The bucket could send, but `waiting` requests (the largest of `largest` tokens) are
    /// over its token cap `cap` and wait for another bucket.
    CapTooSmall {
        waiting: usize,
        largest: u64,
        cap: u64,
    },
    /// Known from earlier runs, not in the current configuration.
    Unconfigured,
    /// Can send now.
    Available,
}

impl BucketState {
    /// The state's word, as the dashboard's badge shows it.
    pub fn code(&self) -> &'static str {
        match self {
            BucketState::Disabled => "disabled",
            BucketState::SpentElsewhere { .. } => "spent-elsewhere",
            BucketState::ExhaustedByProvider { .. } | BucketState::Exhausted => "exhausted",
            BucketState::Verifying { .. } => "verifying",
            BucketState::NotResetYet { .. } => "waiting-reset",
            BucketState::BackingOff { .. } => "backing-off",
            BucketState::CapTooSmall { .. } => "cap-too-small",
            BucketState::Unconfigured => "idle",
            BucketState::Available => "available",
        }
    }
}

/// The state of a bucket with `usage` and `limits` (`None`: not configured now);
/// `all_keys_disabled` when it has keys and every one is disabled; `waiting_tokens` the sizes
/// of the requests waiting for a bucket whose token cap fits them; `spent_elsewhere` the
/// (answered, limit) of today's per-day refusal judged spent elsewhere, if any.
pub fn bucket_state(
    usage: &BucketUsage,
    limits: Option<BucketLimits>,
    all_keys_disabled: bool,
    waiting_tokens: &[u64],
    spent_elsewhere: Option<(u32, u32)>,
) -> BucketState {
    if all_keys_disabled {
        return BucketState::Disabled;
    }
    if let Some((answered, limit)) = spent_elsewhere {
        return BucketState::SpentElsewhere { answered, limit };
    }
    if let Some(until) = usage.exhausted_until {
        return BucketState::ExhaustedByProvider { until };
    }
    if let Some(l) = limits.filter(|l| usage.used_today >= l.requests_per_day) {
        if usage.uncertain_today > 0
            && usage.used_today - usage.uncertain_today < l.requests_per_day
        {
            return BucketState::Verifying {
                uncertain: usage.uncertain_today,
            };
        }
        return BucketState::Exhausted;
    }
    if let Some(t) = usage.backoff_until {
        if usage.backoff_level > 0 {
            return BucketState::NotResetYet { next_try: t };
        }
        return BucketState::BackingOff { until: t };
    }
    let Some(l) = limits else {
        return BucketState::Unconfigured;
    };
    let over: Vec<u64> = waiting_tokens
        .iter()
        .copied()
        .filter(|n| *n > l.input_tokens_per_minute)
        .collect();
    if let Some(largest) = over.iter().copied().max() {
        return BucketState::CapTooSmall {
            waiting: over.len(),
            largest,
            cap: l.input_tokens_per_minute,
        };
    }
    BucketState::Available
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    const LIMITS: BucketLimits = BucketLimits {
        requests_per_day: 20,
        requests_per_minute: 5,
        input_tokens_per_minute: 30_000,
    };

    /// (case, usage, limits, every key disabled, waiting request sizes, spent elsewhere,
    /// expected state)
    type Case = (
        &'static str,
        BucketUsage,
        Option<BucketLimits>,
        bool,
        Vec<u64>,
        Option<(u32, u32)>,
        BucketState,
    );

    #[test]
    fn bucket_states_table() {
        let later = t("2026-03-03T08:05:00Z");
        let used = |used: u32, uncertain: u32| BucketUsage {
            used_today: used,
            answered_today: used - uncertain,
            uncertain_today: uncertain,
            ..BucketUsage::default()
        };
        let cases: Vec<Case> = vec![
            (
                "fresh",
                used(0, 0),
                Some(LIMITS),
                false,
                vec![],
                None,
                BucketState::Available,
            ),
            (
                "every key disabled",
                used(3, 0),
                Some(LIMITS),
                true,
                vec![],
                None,
                BucketState::Disabled,
            ),
            (
                "the provider said spent",
                BucketUsage {
                    exhausted_until: Some(later),
                    ..used(12, 0)
                },
                Some(LIMITS),
                false,
                vec![],
                None,
                BucketState::ExhaustedByProvider { until: later },
            ),
            (
                "all answered",
                used(20, 0),
                Some(LIMITS),
                false,
                vec![],
                None,
                BucketState::Exhausted,
            ),
            (
                "spent only by uncertain calls",
                used(20, 4),
                Some(LIMITS),
                false,
                vec![],
                None,
                BucketState::Verifying { uncertain: 4 },
            ),
            (
                "not reset yet",
                BucketUsage {
                    backoff_until: Some(later),
                    backoff_level: 2,
                    ..used(0, 0)
                },
                Some(LIMITS),
                false,
                vec![],
                None,
                BucketState::NotResetYet { next_try: later },
            ),
            (
                "per-minute backoff",
                BucketUsage {
                    backoff_until: Some(later),
                    ..used(2, 0)
                },
                Some(LIMITS),
                false,
                vec![],
                None,
                BucketState::BackingOff { until: later },
            ),
            (
                "requests wait that are over its cap",
                used(5, 0),
                Some(LIMITS),
                false,
                vec![45_000, 31_000, 20_000],
                None,
                BucketState::CapTooSmall {
                    waiting: 2,
                    largest: 45_000,
                    cap: 30_000,
                },
            ),
            (
                "waiting requests it fits",
                used(5, 0),
                Some(LIMITS),
                false,
                vec![20_000],
                None,
                BucketState::Available,
            ),
            (
                "refused for the day after 3 of 20",
                BucketUsage {
                    exhausted_until: Some(later),
                    ..used(3, 0)
                },
                Some(LIMITS),
                false,
                vec![],
                Some((3, 20)),
                BucketState::SpentElsewhere {
                    answered: 3,
                    limit: 20,
                },
            ),
            (
                "not configured",
                used(1, 0),
                None,
                false,
                vec![45_000],
                None,
                BucketState::Unconfigured,
            ),
        ];
        for (case, usage, limits, disabled, waiting, elsewhere, expected) in cases {
            assert_eq!(
                bucket_state(&usage, limits, disabled, &waiting, elsewhere),
                expected,
                "{case}"
            );
        }
        assert_eq!(
            BucketState::NotResetYet { next_try: later }.code(),
            "waiting-reset"
        );
        assert_eq!(
            BucketState::CapTooSmall {
                waiting: 1,
                largest: 2,
                cap: 1
            }
            .code(),
            "cap-too-small"
        );
    }
}
