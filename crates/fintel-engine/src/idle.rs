//! What a batch with nothing to send now is waiting for, and what to tell the user meanwhile:
//! a pure decision from what the runner observed (breakers, the key pool's answer for a small
//! request, task backoffs, and the next task waiting for a bucket whose token cap fits it),
//! table-tested here; the runner only gathers the inputs and writes the state.

use std::time::Duration;

use fintel_store::BatchState;
use fintel_time::{duration_to_span, local_and_pacific};
use jiff::Timestamp;

use crate::keys::WaitReason;

/// What the runner observed when it found nothing to claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdleInputs {
    pub now: Timestamp,
    /// An outage breaker (provider or SEC) is open.
    pub breaker_open: bool,
    /// When the open breaker's next probe goes out, if scheduled.
    pub probe_at: Option<Timestamp>,
    /// The earliest end of a pending task's backoff.
    pub backoff: Option<Timestamp>,
    /// The batch has pending tasks that need a model call.
    pub model_work: bool,
    /// The key pool's answer for a small request: `None` if some bucket could send now, else
    /// until when and why it must wait.
    pub pool_wait: Option<(Timestamp, WaitReason)>,
    /// The next task waiting for a bucket whose token cap fits it: its request's size and the
    /// key pool's answer for a request that size (`None`: it could go now).
    pub cap_wait: Option<CapWait>,
}

/// A task whose request fits only buckets that cannot send now (defect 7 of issue 16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapWait {
    /// When the task may try again (its `not_before`).
    pub not_before: Timestamp,
    /// Its request's input tokens.
    pub tokens: u64,
    /// Why the buckets whose cap it fits cannot send, and until when; `None` if one can now.
    pub wait: Option<(Timestamp, WaitReason)>,
}

/// The decision: sleep until `until`, showing `state` and `reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idle {
    pub until: Timestamp,
    pub state: BatchState,
    pub reason: Option<String>,
    /// Every key's daily quota is spent (the "keys exhausted" notification).
    pub quota_spent: bool,
}

/// How long an idle runner waits when nothing says when to look again.
const NOTHING_SCHEDULED: Duration = Duration::from_secs(1);

/// What the batch waits for (SPEC.md sections 2 and 3).
pub fn idle_state(i: &IdleInputs) -> Idle {
    let now = i.now;
    if i.breaker_open {
        // Nothing but the probe may go out, so task backoffs do not matter here.
        let at = i
            .probe_at
            .unwrap_or(now + duration_to_span(Duration::from_secs(60)));
        return Idle {
            until: at,
            state: BatchState::WaitingProvider,
            reason: Some(format!(
                "provider or SEC failing repeatedly; next probe at {}",
                local_and_pacific(at)
            )),
            quota_spent: false,
        };
    }
    if let (Some((until, why)), true) = (i.pool_wait, i.model_work) {
        // While the quota is spent a task's retry backoff ending changes nothing: the wait,
        // and the time shown, is the bucket's own.
        let until = match why {
            WaitReason::Pacing => i.backoff.map_or(until, |b| b.min(until).max(now)),
            _ => until,
        };
        let (state, reason) = wait_words(why, until, None);
        return Idle {
            until,
            state,
            reason: Some(reason),
            quota_spent: why == WaitReason::DailyQuotaSpent,
        };
    }
    let until = i
        .backoff
        .unwrap_or(now + duration_to_span(NOTHING_SCHEDULED));
    // The next thing to happen is a task waiting for a bucket whose token cap fits it: a
    // smaller bucket having quota left does not make that a retry.
    if let Some(cap) = i.cap_wait.filter(|c| c.not_before <= until) {
        let (wait_until, why) = cap.wait.unwrap_or((cap.not_before, WaitReason::Pacing));
        let (state, reason) = wait_words(why, wait_until, Some(cap.tokens));
        return Idle {
            until: cap.not_before,
            state,
            reason: Some(reason),
            quota_spent: false,
        };
    }
    Idle {
        until,
        state: BatchState::Running,
        reason: Some("waiting to retry".to_string()),
        quota_spent: false,
    }
}

/// The state and words of a wait for quota; `tokens` when only the buckets whose token cap
/// fits a request of that size are meant.
fn wait_words(why: WaitReason, until: Timestamp, tokens: Option<u64>) -> (BatchState, String) {
    let at = local_and_pacific(until);
    let keys = match tokens {
        None => "every key".to_string(),
        Some(n) => format!("every key whose token cap fits a request of {n} tokens"),
    };
    match why {
        WaitReason::DailyQuotaSpent => (
            BatchState::WaitingReset,
            format!("daily quota used on {keys}; resuming at {at}"),
        ),
        WaitReason::NotResetYet => (
            BatchState::WaitingReset,
            match tokens {
                None => format!(
                    "provider has not reset yet (refused for the day early in the quota day); \
                     trying again at {at}"
                ),
                Some(_) => format!(
                    "provider has not reset yet on {keys} (refused for the day early in the \
                     quota day); trying again at {at}"
                ),
            },
        ),
        WaitReason::NoUsableKey => (
            BatchState::WaitingReset,
            format!("{keys} is disabled; fix or re-enable a key (`fintel keys`)"),
        ),
        WaitReason::Pacing => (
            BatchState::Running,
            match tokens {
                None => "pacing per-minute limits".to_string(),
                Some(_) => format!("pacing per-minute limits of {keys}"),
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    const NOW: &str = "2026-03-02T20:00:00Z";
    const RESET: &str = "2026-03-03T08:05:00Z";

    fn inputs() -> IdleInputs {
        IdleInputs {
            now: t(NOW),
            breaker_open: false,
            probe_at: None,
            backoff: None,
            model_work: true,
            pool_wait: None,
            cap_wait: None,
        }
    }

    fn cap(wait: Option<(Timestamp, WaitReason)>) -> Option<CapWait> {
        Some(CapWait {
            not_before: t(RESET),
            tokens: 35_000,
            wait,
        })
    }

    #[test]
    fn idle_states_table() {
        let reset = t(RESET);
        let soon = t("2026-03-02T20:00:30Z");
        // (case, inputs, state, until, words in the reason, quota spent)
        let cases: Vec<(&str, IdleInputs, BatchState, Timestamp, &str, bool)> = vec![
            (
                "breaker open: probe",
                IdleInputs {
                    breaker_open: true,
                    probe_at: Some(soon),
                    ..inputs()
                },
                BatchState::WaitingProvider,
                soon,
                "failing repeatedly",
                false,
            ),
            (
                "every key spent",
                IdleInputs {
                    pool_wait: Some((reset, WaitReason::DailyQuotaSpent)),
                    ..inputs()
                },
                BatchState::WaitingReset,
                reset,
                "daily quota used on every key",
                true,
            ),
            (
                "not reset yet",
                IdleInputs {
                    pool_wait: Some((soon, WaitReason::NotResetYet)),
                    ..inputs()
                },
                BatchState::WaitingReset,
                soon,
                "provider has not reset yet",
                false,
            ),
            (
                "pacing ends at the earlier backoff",
                IdleInputs {
                    pool_wait: Some((reset, WaitReason::Pacing)),
                    backoff: Some(soon),
                    ..inputs()
                },
                BatchState::Running,
                soon,
                "pacing per-minute limits",
                false,
            ),
            (
                "a retry backoff",
                IdleInputs {
                    backoff: Some(soon),
                    ..inputs()
                },
                BatchState::Running,
                soon,
                "waiting to retry",
                false,
            ),
            (
                "the only request left waits for the bucket it fits, spent",
                IdleInputs {
                    backoff: Some(reset),
                    cap_wait: cap(Some((reset, WaitReason::DailyQuotaSpent))),
                    ..inputs()
                },
                BatchState::WaitingReset,
                reset,
                "daily quota used on every key whose token cap fits a request of 35000 tokens",
                false,
            ),
            (
                "the bucket it fits has not reset yet",
                IdleInputs {
                    backoff: Some(reset),
                    cap_wait: cap(Some((reset, WaitReason::NotResetYet))),
                    ..inputs()
                },
                BatchState::WaitingReset,
                reset,
                "provider has not reset yet on every key whose token cap fits",
                false,
            ),
            (
                "a retry comes before the cap wait",
                IdleInputs {
                    backoff: Some(soon),
                    cap_wait: cap(Some((reset, WaitReason::DailyQuotaSpent))),
                    ..inputs()
                },
                BatchState::Running,
                soon,
                "waiting to retry",
                false,
            ),
            (
                "the buckets it fits are only pacing",
                IdleInputs {
                    backoff: Some(reset),
                    cap_wait: cap(Some((reset, WaitReason::Pacing))),
                    ..inputs()
                },
                BatchState::Running,
                reset,
                "pacing per-minute limits of every key whose token cap fits",
                false,
            ),
        ];
        for (case, i, state, until, words, spent) in cases {
            let idle = idle_state(&i);
            assert_eq!(idle.state, state, "{case}");
            assert_eq!(idle.until, until, "{case}");
            let reason = idle.reason.unwrap_or_default();
            assert!(reason.contains(words), "{case}: {reason}");
            assert_eq!(idle.quota_spent, spent, "{case}");
        }
    }
}
