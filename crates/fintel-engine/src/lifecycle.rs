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

/// How a drained run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainEnd {
    /// Every task had ended: the batch is complete, whatever made the process drain.
    Completed,
    /// The batch is cancelled (and stays so).
    Cancelled,
    /// Work is left: resumable (stopped here, or left to the other live processes).
    Stopped,
}

/// How a process that drained (a signal, a stop request, a configuration problem, a local
/// database error) ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainDecision {
    /// The state to write, with its reason; `None` leaves the batch's state as it is.
    pub write: Option<(BatchState, Option<String>)>,
    pub end: DrainEnd,
}

/// What a draining process writes. A drain after which no task is left (every one ended while
/// the in-flight calls finished) completes the batch. Otherwise the batch is `stopped`, with
/// `problem` as its reason when there is one, only when no live process is left on it: while
/// another process works on it, its state is that process's to write. A cancelled batch stays
/// cancelled, a completed one completed.
pub fn state_after_drain(
    current: BatchState,
    other_live_processes: usize,
    all_tasks_ended: bool,
    problem: Option<&str>,
) -> DrainDecision {
    let keep = |end| DrainDecision { write: None, end };
    match current {
        BatchState::Cancelled => return keep(DrainEnd::Cancelled),
        BatchState::Completed => return keep(DrainEnd::Completed),
        _ => {}
    }
    if all_tasks_ended {
        return DrainDecision {
            write: Some((BatchState::Completed, None)),
            end: DrainEnd::Completed,
        };
    }
    if other_live_processes > 0 {
        return keep(DrainEnd::Stopped);
    }
    let reason = problem.unwrap_or("stopped by request");
    DrainDecision {
        write: Some((BatchState::Stopped, Some(reason.to_string()))),
        end: DrainEnd::Stopped,
    }
}

/// Whether a process starting on a batch clears its stop request. A stop left from an earlier
/// run is cleared by the process that takes the batch up again; a process joining others
/// leaves it, since a stop they have not read yet (the dashboard's Stop) is still meant for
/// them, and for the joiner too.
pub fn clears_stop_request(other_live_processes: usize) -> bool {
    other_live_processes == 0
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

    /// Current state, other live processes, every task ended, problem -> write, end.
    type DrainCase = (
        BatchState,
        usize,
        bool,
        Option<&'static str>,
        Option<(BatchState, Option<String>)>,
        DrainEnd,
    );

    #[test]
    fn what_a_draining_process_writes() {
        use DrainEnd as E;
        let stopped = |r: &str| Some((Stopped, Some(r.to_string())));
        let completed = Some((Completed, None));
        let disk = "local database error: database or disk is full";
        let table: &[DrainCase] = &[
            // Alone: stopped, with the reason.
            (
                Running,
                0,
                false,
                None,
                stopped("stopped by request"),
                E::Stopped,
            ),
            (
                WaitingReset,
                0,
                false,
                None,
                stopped("stopped by request"),
                E::Stopped,
            ),
            (
                WaitingProvider,
                0,
                false,
                None,
                stopped("stopped by request"),
                E::Stopped,
            ),
            (
                WaitingDisk,
                0,
                false,
                None,
                stopped("stopped by request"),
                E::Stopped,
            ),
            (
                Pending,
                0,
                false,
                None,
                stopped("stopped by request"),
                E::Stopped,
            ),
            (
                Running,
                0,
                false,
                Some("model unknown"),
                stopped("model unknown"),
                E::Stopped,
            ),
            // A local database error: stopped with the error, to resume once it is fixed.
            (Running, 0, false, Some(disk), stopped(disk), E::Stopped),
            // Another live process: its state is left to it.
            (Running, 1, false, None, None, E::Stopped),
            (WaitingReset, 3, false, None, None, E::Stopped),
            (Running, 2, false, Some("model unknown"), None, E::Stopped),
            (Running, 1, false, Some(disk), None, E::Stopped),
            // Every task ended while the calls in flight finished: completed, not stopped,
            // whoever is left and whatever made the process drain.
            (Running, 0, true, None, completed.clone(), E::Completed),
            (
                WaitingProvider,
                0,
                true,
                None,
                completed.clone(),
                E::Completed,
            ),
            (Running, 2, true, None, completed.clone(), E::Completed),
            (
                Running,
                0,
                true,
                Some("model unknown"),
                completed.clone(),
                E::Completed,
            ),
            (
                Running,
                0,
                true,
                Some(disk),
                completed.clone(),
                E::Completed,
            ),
            // A cancel is never overwritten, whoever is left.
            (Cancelled, 0, false, None, None, E::Cancelled),
            (Cancelled, 2, false, None, None, E::Cancelled),
            (
                Cancelled,
                0,
                false,
                Some("model unknown"),
                None,
                E::Cancelled,
            ),
            (Cancelled, 0, true, None, None, E::Cancelled),
            // Another process completed the batch meanwhile.
            (Completed, 0, false, None, None, E::Completed),
            (Completed, 0, true, None, None, E::Completed),
        ];
        for (current, others, ended, problem, write, end) in table {
            let d = state_after_drain(*current, *others, *ended, *problem);
            assert_eq!(
                (&d.write, d.end),
                (write, *end),
                "{current:?} with {others} other(s), all ended {ended}, problem {problem:?}"
            );
        }
    }

    #[test]
    fn a_joining_process_never_clears_a_pending_stop() {
        // Other live processes, clears the stop request.
        let table = [(0, true), (1, false), (3, false)];
        for (others, clears) in table {
            assert_eq!(clears_stop_request(others), clears, "{others} other(s)");
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
