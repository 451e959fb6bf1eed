//! Decisions about a batch's life that the runner only carries out: which state a process
//! writes when it drains, given the batch's current state and the other live processes on it;
//! which states a running process may write over; when to look for dead owners; and what a
//! panicked task leaves behind. Pure functions with table tests, no I/O.

use std::time::Duration;

use fintel_store::BatchState;

/// The states a running process may write over. Never `cancelled`: a cancel is the user's
/// choice and only `--resume ID --reopen` takes it back.
pub const RUN_WRITABLE: &[BatchState] = &[
    BatchState::Pending,
    BatchState::Running,
    BatchState::WaitingReset,
    BatchState::WaitingProvider,
    BatchState::WaitingDisk,
    BatchState::Stopped,
    BatchState::Completed,
];

/// The states a draining process may turn into `stopped`: neither `cancelled` nor
/// `completed` (another process finished the batch meanwhile).
pub const DRAIN_WRITABLE: &[BatchState] = &[
    BatchState::Pending,
    BatchState::Running,
    BatchState::WaitingReset,
    BatchState::WaitingProvider,
    BatchState::WaitingDisk,
    BatchState::Stopped,
];

/// How a process that drained (a signal, a stop request, a configuration problem) ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainDecision {
    /// The state to write, with its reason; `None` leaves the batch's state as it is.
    pub write: Option<(BatchState, String)>,
    /// Whether the run ends as cancelled (else stopped, or the configuration problem).
    pub cancelled: bool,
}

/// What a draining process writes. A batch is `stopped` only when no live process is left on
/// it: while another process works on it, its state is that process's to write. A cancelled
/// batch stays cancelled, a completed one completed.
pub fn state_after_drain(
    current: BatchState,
    other_live_processes: usize,
    configuration_problem: Option<&str>,
) -> DrainDecision {
    let keep = |cancelled| DrainDecision {
        write: None,
        cancelled,
    };
    match current {
        BatchState::Cancelled => return keep(true),
        BatchState::Completed => return keep(false),
        _ => {}
    }
    if other_live_processes > 0 {
        return keep(false);
    }
    let reason = configuration_problem.unwrap_or("stopped by request");
    DrainDecision {
        write: Some((BatchState::Stopped, reason.to_string())),
        cancelled: false,
    }
}

/// How often, at least, a process looks for dead owners whose leases it should take back,
/// even while it is busy.
pub const RECOVERY_INTERVAL: Duration = Duration::from_secs(60);

/// Whether to look for dead owners now: whenever this process has nothing to do (nothing
/// could be claimed and nothing of its own is in flight: the work left may be held by a
/// process that died), and at least every [`RECOVERY_INTERVAL`] while it is busy. The caller
/// passes `idle` as "nothing claimable and nothing in flight": a busy process does not pay for
/// lock checks between its tasks.
pub fn recovery_due(idle: bool, since_last_recovery: Duration) -> bool {
    idle || since_last_recovery >= RECOVERY_INTERVAL
}

/// The reason recorded on a task whose code panicked: a bug, not a transient failure.
pub fn panic_reason(payload: &(dyn std::any::Any + Send)) -> String {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string());
    format!(
        "internal error (a bug in fintel, please report it): panicked: {message}; \
         `fintel batch --resume ID --retry-failed` tries again after an upgrade"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use BatchState::*;

    /// Current state, other live processes, configuration problem -> write, cancelled.
    type DrainCase = (
        BatchState,
        usize,
        Option<&'static str>,
        Option<(BatchState, String)>,
        bool,
    );

    #[test]
    fn what_a_draining_process_writes() {
        let stopped = |r: &str| Some((Stopped, r.to_string()));
        let table: &[DrainCase] = &[
            // Alone: stopped, with the reason.
            (Running, 0, None, stopped("stopped by request"), false),
            (WaitingReset, 0, None, stopped("stopped by request"), false),
            (
                WaitingProvider,
                0,
                None,
                stopped("stopped by request"),
                false,
            ),
            (WaitingDisk, 0, None, stopped("stopped by request"), false),
            (Pending, 0, None, stopped("stopped by request"), false),
            (
                Running,
                0,
                Some("model unknown"),
                stopped("model unknown"),
                false,
            ),
            // Another live process: its state is left to it.
            (Running, 1, None, None, false),
            (WaitingReset, 3, None, None, false),
            (Running, 2, Some("model unknown"), None, false),
            // A cancel is never overwritten, whoever is left.
            (Cancelled, 0, None, None, true),
            (Cancelled, 2, None, None, true),
            (Cancelled, 0, Some("model unknown"), None, true),
            // Another process completed the batch meanwhile.
            (Completed, 0, None, None, false),
        ];
        for (current, others, problem, write, cancelled) in table {
            let d = state_after_drain(*current, *others, *problem);
            assert_eq!(
                (&d.write, d.cancelled),
                (write, *cancelled),
                "{current:?} with {others} other(s), problem {problem:?}"
            );
        }
    }

    #[test]
    fn a_running_process_never_writes_over_a_cancel_and_a_drain_not_over_a_completion() {
        assert!(!RUN_WRITABLE.contains(&Cancelled));
        assert!(!DRAIN_WRITABLE.contains(&Cancelled));
        assert!(!DRAIN_WRITABLE.contains(&Completed));
        // A resume of a completed batch (after --retry-failed) runs it again.
        assert!(RUN_WRITABLE.contains(&Completed));
    }

    #[test]
    fn when_to_look_for_dead_owners() {
        let s = Duration::from_secs;
        let table = [
            (true, s(0), true),
            (true, s(5), true),
            (false, s(0), false),
            (false, s(59), false),
            (false, s(60), true),
            (false, s(3600), true),
        ];
        for (idle, since, due) in table {
            assert_eq!(
                recovery_due(idle, since),
                due,
                "idle {idle}, {since:?} since the last look"
            );
        }
    }

    #[test]
    fn a_panic_reason_carries_the_message() {
        let r = panic_reason(&"index out of bounds");
        assert!(r.contains("panicked: index out of bounds"), "{r}");
        let owned: Box<dyn std::any::Any + Send> = Box::new(String::from("byte index 3"));
        assert!(panic_reason(owned.as_ref()).contains("byte index 3"));
        let other: Box<dyn std::any::Any + Send> = Box::new(42u8);
        assert!(panic_reason(other.as_ref()).contains("(no message)"));
    }
}
