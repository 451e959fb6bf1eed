//! The end of a run that stopped claiming (a signal, a stop request, a configuration problem,
//! a local database error): the calls in flight finish within the grace period and store what
//! they can, the rest goes back to pending, and the batch's state is written as
//! [`lifecycle::state_after_drain`] decides.

use fintel_store::StoreError;
use tokio::task::JoinSet;

use super::{Engine, Level, RunOutcome, TaskEnd};
use crate::lifecycle::{self, DrainEnd};
use crate::local_error::{self, OnError};
use crate::EngineError;

/// Why a run stopped claiming, beyond a signal or a stop request.
#[derive(Default)]
pub(super) struct Stops {
    pub config_problem: Option<String>,
    /// Whether `config_problem` is the batch's model no longer being served.
    pub model_retired: bool,
    /// A local database error: the batch's stop reason, and the error itself, which is what
    /// the run ends with if even the stop cannot be written.
    pub local_error: Option<(String, EngineError)>,
}

impl Engine {
    pub(super) async fn drain(
        &self,
        batch_id: &str,
        inflight: &mut JoinSet<Result<TaskEnd, EngineError>>,
        mut stops: Stops,
    ) -> Result<RunOutcome, EngineError> {
        let grace = tokio::time::sleep(self.settings.grace);
        tokio::pin!(grace);
        while !inflight.is_empty() {
            tokio::select! {
                joined = inflight.join_next() => {
                    match joined {
                        Some(Ok(Ok(TaskEnd::Configuration(msg)))) => {
                            stops.config_problem.get_or_insert(msg);
                        }
                        Some(Ok(Ok(TaskEnd::ModelRetired(msg))))
                            if stops.config_problem.is_none() =>
                        {
                            stops.model_retired = true;
                            stops.config_problem = Some(msg);
                        }
                        Some(Ok(Err(error))) if stops.local_error.is_none() => {
                            // A task that could not store its result: its lease is given
                            // back below, and the batch stops with the error.
                            if let OnError::Drain(reason) = local_error::on_error(&error) {
                                stops.local_error = Some((reason, error));
                            }
                        }
                        _ => {}
                    }
                }
                _ = &mut grace => {
                    inflight.abort_all();
                    while inflight.join_next().await.is_some() {}
                }
            }
        }
        match (self.finish_drain(batch_id, &stops), stops.local_error) {
            (Ok(outcome), _) => Ok(outcome),
            // The database refuses even the stop: the error that began it is the one to tell.
            (Err(_), Some((_, error))) => Err(error),
            (Err(e), None) => Err(e.into()),
        }
    }

    /// Gives back this process's leases and writes the batch's state.
    fn finish_drain(&self, batch_id: &str, stops: &Stops) -> Result<RunOutcome, StoreError> {
        let store = &self.store;
        let now = self.now();
        store.release_owner(&self.owner, now)?;
        let Ok(current) = store.find_batch(batch_id).map(|b| b.state) else {
            // Deleted under this process (an older fintel allowed that): nothing to write.
            return Ok(RunOutcome::Cancelled);
        };
        let others = store
            .live_owners_of(batch_id)?
            .into_iter()
            .filter(|o| o != &self.owner)
            .count();
        let counts = store.task_counts(batch_id)?;
        let all_ended = counts.pending == 0 && counts.running == 0 && counts.resolving == 0;
        let local_error = stops
            .local_error
            .as_ref()
            .map(|(reason, _)| reason.as_str());
        let problem = local_error.or(stops.config_problem.as_deref());
        let decision = lifecycle::state_after_drain(current, others, all_ended, problem);
        if let Some((state, reason)) = &decision.write {
            store.set_batch_state_if(
                batch_id,
                lifecycle::DRAIN_WRITABLE,
                *state,
                reason.as_deref(),
                now,
            )?;
        }
        if decision.end == DrainEnd::Completed {
            return Ok(RunOutcome::Completed {
                failed: counts.failed,
            });
        }
        if let Some(reason) = local_error {
            self.observer.message(Level::Warn, reason);
            // The stop reason is the record; the event log line is a courtesy that a full
            // disk may refuse.
            let _ = store.log_event(Some(batch_id), now, "warn", reason);
            return Ok(RunOutcome::StoppedOnError(reason.to_string()));
        }
        if let Some(msg) = &stops.config_problem {
            return Ok(if stops.model_retired {
                RunOutcome::ModelRetired(msg.clone())
            } else {
                RunOutcome::ConfigurationProblem(msg.clone())
            });
        }
        if decision.end == DrainEnd::Cancelled {
            return Ok(RunOutcome::Cancelled);
        }
        Ok(RunOutcome::Stopped)
    }
}
