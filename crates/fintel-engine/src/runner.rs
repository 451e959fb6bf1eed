//! The driver: claims tasks, runs them with bounded concurrency, applies each outcome through
//! one handler, waits for quota resets and outages, and drains on shutdown.
//!
//! It holds no state that matters beyond the process: tasks, results, the ledger and the
//! batch's state are in the database, so a process killed at any instant loses nothing but
//! the calls in flight.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fintel_llm::Provider;
use fintel_store::{
    BatchState, CallIntent, CallPurpose, ClaimedTask, MaintenanceReport, NewResult, Store,
    StoreError, TaskCounts, TaskKind,
};
use fintel_time::{duration_to_span, span_between, SharedClock};
use jiff::Timestamp;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinSet;

mod changes;
mod drain;
mod heard;
mod model_call;
mod packed;
mod params;
mod stored;

use model_call::{shrink_to, ModelOutcome, MAX_FITS};

use crate::backoff::{retry_delay, Breaker};
use crate::idle::{self, CapWait, Idle, IdleInputs};
use crate::keys::{Grant, KeyPool, WaitReason};
use crate::local_error::{self, OnError};
use crate::outcome::{self, transient_step, TransientContext, TransientStep};
use crate::ports::{AggregateInput, Analysis, FilingSource, SourceError, YearInput, YearsSpec};
use crate::settings::{BatchSettings, EngineSettings};
use crate::upkeep::{human_bytes, DiskChange, DiskLow, DiskWatch, MaintenanceSchedule, Upkeep};
use crate::{lifecycle, result_key, EngineError};

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// Every task ended; `failed` of them failed.
    Completed { failed: u64 },
    /// Stopped on request (signal or the dashboard); resumable.
    Stopped,
    /// The batch was cancelled.
    Cancelled,
    /// Nothing can work until the user fixes the configuration; no task was failed for it.
    ConfigurationProblem(String),
    /// The batch's model is no longer served (the provider's message); no task was failed for
    /// it. The user starts a new batch or resumes this one with `--switch-model`.
    ModelRetired(String),
    /// A local database error (disk full, the database busy past its timeout, a lease lost)
    /// drained the run: the batch is `stopped` with the error as its reason, resumable once
    /// it is fixed.
    StoppedOnError(String),
}

/// What the runner tells the user about, through the binary's progress display.
pub trait Observer: Send + Sync {
    fn progress(&self, snapshot: &Progress);
    fn message(&self, level: Level, text: &str);
    /// Something worth telling a person who is not watching (webhook notifications).
    fn event(&self, _event: &Event) {}
}

/// What a run reports beyond progress, for someone who is not watching.
#[derive(Debug, Clone)]
pub enum Event {
    /// Every key's daily quota is spent; work resumes at `reset_at`.
    KeysExhausted {
        reset_at: Timestamp,
    },
    /// `count` transient failures in a row on different tasks: `source` looks down and the
    /// batch waits for it (waiting_provider).
    RepeatedFailures {
        count: usize,
        source: String,
    },
    /// Free space fell under the threshold; no new task starts until it is back.
    DiskLow(DiskLow),
    DiskRecovered,
    /// The daily maintenance ran while waiting for the reset.
    Maintained(MaintenanceReport),
    /// The provider named one Google Cloud project for keys of different buckets: they were
    /// merged into one bucket (said once, across processes).
    SharedProject {
        message: String,
    },
    /// A bucket was refused for the day after far fewer requests than its limit, or the
    /// day's refusals add up to one project's limit (see [`crate::projects`]).
    SpentElsewhere {
        message: String,
    },
}

/// Importance of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
}

/// A progress snapshot.
#[derive(Debug, Clone)]
pub struct Progress {
    pub counts: TaskCounts,
    pub state: BatchState,
    pub state_reason: Option<String>,
    pub now: Timestamp,
}

/// An observer that says nothing (tests).
pub struct Silent;
impl Observer for Silent {
    fn progress(&self, _: &Progress) {}
    fn message(&self, _: Level, _: &str) {}
}

/// Everything a run needs.
pub struct Engine {
    pub store: Arc<Store>,
    pub clock: SharedClock,
    pub source: Arc<dyn FilingSource>,
    pub provider: Arc<dyn Provider>,
    pub analysis: Arc<dyn Analysis>,
    pub pool: Arc<KeyPool>,
    pub settings: EngineSettings,
    pub observer: Arc<dyn Observer>,
    pub owner: String,
    /// The disk check and the daily maintenance ([`Upkeep::off`] for neither).
    pub upkeep: Upkeep,
}

/// What an idle run waits for: until when, the state and reason to show, and whether the
/// wait is for the daily quota.
/// Why a task's run ended without a result.
enum TaskEnd {
    Done,
    /// A transient failure (network, 5xx), already applied to the task and the breaker.
    Transient,
    /// Nothing could be sent now; the task went back to pending untouched.
    Deferred,
    Configuration(String),
    /// The batch's model is no longer served.
    ModelRetired(String),
}

struct Shared {
    engine: Arc<EngineInner>,
}

struct EngineInner {
    e: EngineRef,
    batch: fintel_store::Batch,
    batch_settings: BatchSettings,
    years: YearsSpec,
    breakers: Mutex<Breakers>,
    /// The smallest context a server's refusal or truncation showed (`u64::MAX`: none), below
    /// the configured one: every later request of the run is fitted to it.
    learned_context: std::sync::atomic::AtomicU64,
    /// The output budget cut-off answers showed is needed (0: none), where the output shares
    /// the context ([`crate::budget::after_length`]).
    output_floor: std::sync::atomic::AtomicU32,
    /// The most years a claim takes together after a packed schema was refused as too complex
    /// ([`crate::pack::pack_cap_after_schema_refusal`]; `usize::MAX`: none).
    pack_cap: std::sync::atomic::AtomicUsize,
    /// The parameter rules learned for the run's model (`None`: not read from the database
    /// yet), see `runner/params.rs`.
    learned_params: Mutex<Option<Vec<fintel_llm::params::LearnedParam>>>,
}

type EngineRef = Arc<Engine>;

/// Which outside service a transient failure came from: each has its own outage breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Sec,
    Provider,
}

struct Breakers {
    sec: Breaker,
    provider: Breaker,
}

impl Breakers {
    fn side(&mut self, side: Side) -> &mut Breaker {
        match side {
            Side::Sec => &mut self.sec,
            Side::Provider => &mut self.provider,
        }
    }
}

impl Engine {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Runs a batch until it completes, is stopped (`shutdown` turns true, or a stop is
    /// requested in the database), is cancelled, or hits a configuration problem.
    pub async fn run(
        self: Arc<Self>,
        batch_id: &str,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<RunOutcome, EngineError> {
        let store = self.store.clone();
        let batch = store.find_batch(batch_id)?;
        if batch.state == BatchState::Cancelled {
            return Ok(RunOutcome::Cancelled);
        }
        let batch_settings: BatchSettings = serde_json::from_str(&batch.settings)
            .map_err(|e| EngineError::Invalid(format!("batch settings: {e}")))?;
        let years: YearsSpec = serde_json::from_str(&batch.years_spec)
            .map_err(|e| EngineError::Invalid(format!("batch years: {e}")))?;
        // Attached, the batch counts as running while this process lives, even when it holds
        // no lease (waiting for the reset), so it is neither deleted nor taken up under it.
        store.attach_owner(&self.owner, &batch.id)?;
        self.recover_dead(&batch.id)?;
        let others = store
            .live_owners_of(&batch.id)?
            .iter()
            .filter(|o| **o != self.owner)
            .count();
        if lifecycle::clears_stop_request(others) {
            store.request_stop(&batch.id, false)?;
        }
        let inner = Arc::new(EngineInner {
            e: self.clone(),
            batch: batch.clone(),
            batch_settings,
            years,
            breakers: Mutex::new(Breakers {
                sec: Breaker::new(self.settings.breaker_threshold),
                provider: Breaker::new(self.settings.breaker_threshold),
            }),
            learned_context: std::sync::atomic::AtomicU64::new(u64::MAX),
            output_floor: std::sync::atomic::AtomicU32::new(0),
            pack_cap: std::sync::atomic::AtomicUsize::new(usize::MAX),
            learned_params: Mutex::new(None),
        });
        let shared = Shared { engine: inner };
        self.set_state(&batch.id, BatchState::Running, None)?;
        shared.engine.mark_quota_free_work()?;

        let mut inflight: JoinSet<Result<TaskEnd, EngineError>> = JoinSet::new();
        let mut stops = drain::Stops::default();
        let mut probe_at: Option<Timestamp> = None;
        let mut last_heartbeat = self.now();
        let mut last_report = std::time::Instant::now();
        let mut disk = DiskWatch::new(self.upkeep.clone());
        let mut maintenance = MaintenanceSchedule::new(self.upkeep.maintenance.clone());
        let mut last_idle_state: Option<BatchState> = None;
        let mut last_recovery = self.now();
        // Every step of the loop that fails is judged (`local_error::on_error`): a local
        // database error drains the run below, as a signal does, instead of ending it here.
        let looped = async {
            Ok::<_, EngineError>(loop {
                if *shutdown.borrow() || store.stop_requested(&batch.id)? {
                    break None;
                }
                if stops.config_problem.is_some() && inflight.is_empty() {
                    break None;
                }
                let now = self.now();
                if span_between(last_heartbeat, now) >= Duration::from_secs(30) {
                    store.heartbeat(&self.owner, now)?;
                    last_heartbeat = now;
                }
                self.watch_disk(&batch.id, &mut disk, now)?;
                // Fill free slots.
                let mut nothing_claimable = false;
                while stops.config_problem.is_none()
                    && disk.is_low().is_none()
                    && inflight.len() < self.settings.concurrency
                {
                    let now = self.now();
                    let Some((model_allowed, probe)) =
                        self.claim_permission(&shared, now, &mut probe_at)?
                    else {
                        break;
                    };
                    let claimed = shared.engine.claim(now, model_allowed)?;
                    if claimed.is_empty() {
                        nothing_claimable = true;
                        break;
                    }
                    let inner = shared.engine.clone();
                    inflight.spawn(async move { inner.execute_claim(claimed).await });
                    if probe {
                        // While a breaker is open, exactly one probe is in flight.
                        break;
                    }
                }
                let now = self.now();
                if lifecycle::recovery_due(
                    nothing_claimable && inflight.is_empty(),
                    span_between(last_recovery, now),
                ) {
                    last_recovery = now;
                    if self.recover_dead(&batch.id)? > 0 {
                        // Their tasks are claimable again: take them now.
                        continue;
                    }
                }
                if inflight.is_empty() {
                    let counts = store.task_counts(&batch.id)?;
                    if counts.pending == 0 && counts.running == 0 && counts.resolving == 0 {
                        let failed = counts.failed;
                        self.set_state(&batch.id, BatchState::Completed, None)?;
                        break Some(RunOutcome::Completed { failed });
                    }
                    if counts.pending == 0 && counts.resolving == 0 {
                        // Only other processes' tasks are running: wait for them.
                        self.wait(
                            &mut shutdown,
                            now + duration_to_span(Duration::from_secs(2)),
                        )
                        .await;
                        continue;
                    }
                    if let Some(low) = disk.is_low() {
                        let reason = low.reason();
                        self.set_state(&batch.id, BatchState::WaitingDisk, Some(&reason))?;
                        self.report(&batch.id, BatchState::WaitingDisk, Some(reason))?;
                        let until = now + duration_to_span(self.settings.recheck);
                        self.wait(&mut shutdown, until).await;
                        continue;
                    }
                    let Idle {
                        until,
                        state,
                        reason,
                        quota_spent,
                    } = self.idle_reason(&shared, now, probe_at)?;
                    // Before waiting for quota, the work that needs none goes now (once per
                    // wait: the next look finds nothing new to mark).
                    if state == BatchState::WaitingReset
                        && last_idle_state != Some(state)
                        && shared.engine.mark_quota_free_work()? > 0
                    {
                        continue;
                    }
                    self.set_state(&batch.id, state, reason.as_deref())?;
                    self.report(&batch.id, state, reason)?;
                    if state == BatchState::WaitingReset && last_idle_state != Some(state) {
                        if quota_spent {
                            self.observer
                                .event(&Event::KeysExhausted { reset_at: until });
                        }
                        self.maintain_if_due(&batch.id, &mut maintenance, now);
                    }
                    last_idle_state = Some(state);
                    // Look at the database again now and then: stop requests, other processes.
                    let until = until.min(now + duration_to_span(self.settings.recheck));
                    self.wait(&mut shutdown, until).await;
                    continue;
                }
                // Wait for a task to end (or a signal).
                tokio::select! {
                    joined = inflight.join_next() => {
                        if let Some(joined) = joined {
                            match joined {
                                Ok(Ok(TaskEnd::Configuration(msg))) => {
                                    stops.model_retired = false;
                                    stops.config_problem = Some(msg);
                                }
                                Ok(Ok(TaskEnd::ModelRetired(msg))) => {
                                    stops.model_retired = true;
                                    stops.config_problem = Some(msg);
                                }
                                Ok(Ok(_)) => {}
                                Ok(Err(e)) => return Err(e),
                                Err(e) if e.is_cancelled() => {}
                                Err(e) => return Err(EngineError::Invalid(format!("worker panicked: {e}"))),
                            }
                        }
                        // Counting every task row after every task would dominate a large batch's
                        // run time; a few reports a second are plenty for a person.
                        if last_report.elapsed() >= Duration::from_millis(200) {
                            last_report = std::time::Instant::now();
                            let state = if shared.engine.breaker_open() {
                                BatchState::WaitingProvider
                            } else if disk.is_low().is_some() {
                                BatchState::WaitingDisk
                            } else {
                                BatchState::Running
                            };
                            last_idle_state = Some(state);
                            if state == BatchState::Running {
                                self.set_state(&batch.id, state, None)?;
                            }
                            self.report(&batch.id, state, None)?;
                        }
                    }
                    _ = shutdown.changed() => {}
                }
            })
        }
        .await;
        let outcome = match looped {
            Ok(outcome) => outcome,
            Err(error) => match local_error::on_error(&error) {
                OnError::Drain(reason) => {
                    stops.local_error = Some((reason, error));
                    None
                }
                OnError::Crash => return Err(error),
            },
        };
        if let Some(outcome) = outcome {
            return Ok(outcome);
        }
        self.drain(&batch.id, &mut inflight, stops).await
    }

    /// Takes back the leases of dead owners of the batch (their OS lock could be taken) and
    /// says so. Returns how many tasks are pending again.
    fn recover_dead(&self, batch_id: &str) -> Result<u64, StoreError> {
        let recovered = self.store.recover_dead_owners(batch_id, self.now())?;
        if recovered > 0 {
            self.observer.message(
                Level::Info,
                &format!(
                    "{recovered} task(s) left running by a process that died are pending again"
                ),
            );
        }
        Ok(recovered)
    }

    /// Measures free space when due and tells the user when it turns low or comes back.
    fn watch_disk(
        &self,
        batch_id: &str,
        disk: &mut DiskWatch,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        match disk.check(now) {
            Some(DiskChange::BecameLow(low)) => {
                let reason = low.reason();
                self.observer
                    .message(Level::Warn, &format!("pausing new tasks: {reason}"));
                self.store.log_event(Some(batch_id), now, "warn", &reason)?;
                self.set_state(batch_id, BatchState::WaitingDisk, Some(&reason))?;
                self.observer.event(&Event::DiskLow(low));
            }
            Some(DiskChange::Recovered) => {
                self.observer
                    .message(Level::Info, "free disk space is back; resuming");
                self.store
                    .log_event(Some(batch_id), now, "info", "free disk space is back")?;
                self.set_state(batch_id, BatchState::Running, None)?;
                self.observer.event(&Event::DiskRecovered);
            }
            Some(DiskChange::StillLow(_)) | None => {}
        }
        Ok(())
    }

    /// The daily maintenance, while nothing else can happen. A failure is reported and the
    /// batch goes on: upkeep must never be what stops a run.
    fn maintain_if_due(&self, batch_id: &str, schedule: &mut MaintenanceSchedule, now: Timestamp) {
        match schedule.run_if_due(&self.store, now) {
            None => {}
            Some(Ok(report)) => {
                let mut text = format!(
                    "daily maintenance: database {} -> {}",
                    human_bytes(report.total_before()),
                    human_bytes(report.total_after())
                );
                if let Some(backup) = &report.backup {
                    text.push_str(&format!(
                        ", backup {} ({})",
                        backup.display(),
                        human_bytes(report.backup_bytes)
                    ));
                }
                let level = if report.problems.is_empty() {
                    Level::Info
                } else {
                    text.push_str(&format!(
                        "; the integrity check found problems, so no backup was taken: {}",
                        report.problems.join("; ")
                    ));
                    Level::Warn
                };
                self.observer.message(level, &text);
                let _ = self.store.log_event(Some(batch_id), now, "info", &text);
                self.observer.event(&Event::Maintained(report));
            }
            Some(Err(e)) => {
                let text = format!("daily maintenance failed (the batch goes on): {e}");
                self.observer.message(Level::Warn, &text);
                let _ = self.store.log_event(Some(batch_id), now, "warn", &text);
            }
        }
    }

    async fn wait(&self, shutdown: &mut watch::Receiver<bool>, until: Timestamp) {
        tokio::select! {
            _ = self.clock.sleep_until(until) => {}
            _ = shutdown.changed() => {}
        }
    }

    /// Writes the batch's state unless it was cancelled meanwhile (conditional on the states a
    /// running process may write over); the stop request that comes with a cancel ends the run.
    fn set_state(
        &self,
        batch_id: &str,
        state: BatchState,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        self.store.set_batch_state_if(
            batch_id,
            lifecycle::RUN_WRITABLE,
            state,
            reason,
            self.now(),
        )?;
        Ok(())
    }

    fn report(
        &self,
        batch_id: &str,
        state: BatchState,
        state_reason: Option<String>,
    ) -> Result<(), StoreError> {
        let counts = self.store.task_counts(batch_id)?;
        self.observer.progress(&Progress {
            counts,
            state,
            state_reason,
            now: self.now(),
        });
        Ok(())
    }

    /// What may be claimed now: `None` nothing; else whether model tasks may be (some bucket
    /// can send and the provider's breaker is closed) and whether the claim is a breaker's
    /// probe. While SEC's breaker is open nothing but its probe goes out; while the provider's
    /// is open, tasks without a model call go on.
    fn claim_permission(
        &self,
        shared: &Shared,
        now: Timestamp,
        probe_at: &mut Option<Timestamp>,
    ) -> Result<Option<(bool, bool)>, StoreError> {
        let (sec_open, provider_open) = {
            let b = shared.engine.lock_breakers();
            (b.sec.is_open(), b.provider.is_open())
        };
        let mut probe = false;
        if sec_open || provider_open {
            let due = match probe_at {
                Some(t) => *t <= now,
                None => {
                    let mut b = shared.engine.lock_breakers();
                    let delay = if sec_open {
                        &mut b.sec
                    } else {
                        &mut b.provider
                    }
                    .next_probe_delay();
                    *probe_at = Some(now + duration_to_span(delay));
                    false
                }
            };
            if due {
                *probe_at = None;
                probe = true;
            } else if sec_open {
                return Ok(None);
            } else {
                return Ok(Some((false, false)));
            }
        }
        // Asked for the smallest request paced moments ago, if any: one that size or larger
        // cannot go before its wait ends, so no claim is made only to be put back.
        let model_allowed = self.pool.may_send(&self.store, now)?;
        Ok(Some((model_allowed, probe)))
    }

    /// When something can happen next, and what to tell the user meanwhile: the inputs of
    /// [`idle::idle_state`], which decides.
    fn idle_reason(
        &self,
        shared: &Shared,
        now: Timestamp,
        probe_at: Option<Timestamp>,
    ) -> Result<Idle, StoreError> {
        let batch_id = &shared.engine.batch.id;
        let breaker_open = shared.engine.breaker_open();
        let pool_wait = |tokens: u64| -> Result<Option<(Timestamp, WaitReason)>, StoreError> {
            let intent = CallIntent {
                bucket: "",
                key_fingerprint: None,
                bucket_keys: &[],
                batch_id: None,
                task_id: None,
                purpose: CallPurpose::Generate,
                input_tokens: tokens,
            };
            Ok(match self.pool.acquire(&self.store, now, &intent, false)? {
                Grant::Wait { until, why } => Some((until, why)),
                _ => None,
            })
        };
        let (pool, cap_wait) = if breaker_open {
            (None, None)
        } else {
            let cap_wait = match self.store.next_cap_wait(batch_id, now)? {
                Some((not_before, tokens)) => Some(CapWait {
                    not_before,
                    tokens,
                    wait: pool_wait(tokens)?,
                }),
                None => None,
            };
            (pool_wait(self.pool.pacing_hold(now))?, cap_wait)
        };
        Ok(idle::idle_state(&IdleInputs {
            now,
            breaker_open,
            probe_at,
            backoff: self.store.next_backoff_end(batch_id, now)?,
            model_work: self.store.has_pending_model_work(batch_id)?,
            pool_wait: pool,
            cap_wait,
        }))
    }
}

impl EngineInner {
    fn lock_breakers(&self) -> std::sync::MutexGuard<'_, Breakers> {
        self.breakers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn breaker_open(&self) -> bool {
        let b = self.lock_breakers();
        b.sec.is_open() || b.provider.is_open()
    }

    fn now(&self) -> Timestamp {
        self.e.clock.now()
    }

    fn store(&self) -> &Store {
        &self.e.store
    }

    fn owner(&self) -> &str {
        &self.e.owner
    }

    /// Runs a task, turning a panic in its code into that task's failure with the panic's
    /// message: a bug, not a transient failure, so no outage breaker hears of it.
    async fn execute_guarded(self: Arc<Self>, task: ClaimedTask) -> Result<TaskEnd, EngineError> {
        let task_id = task.id;
        match CatchUnwind(Box::pin(self.clone().execute(task))).await {
            Ok(end) => end,
            Err(payload) => {
                let reason = lifecycle::panic_reason(payload.as_ref());
                self.e
                    .observer
                    .message(Level::Warn, &format!("task {task_id} failed: {reason}"));
                match self
                    .store()
                    .fail_task(task_id, self.owner(), &reason, true, self.now())
                {
                    // The task may have ended before the panic (a panic after its write).
                    Ok(()) | Err(StoreError::LeaseLost) => Ok(TaskEnd::Done),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    async fn execute(self: Arc<Self>, task: ClaimedTask) -> Result<TaskEnd, EngineError> {
        let started = self.now();
        let (end, heard) = heard::listening(async {
            match task.kind {
                TaskKind::Resolve => self.resolve(&task).await,
                TaskKind::Year => self.year(&task, started).await,
                TaskKind::Aggregate => self.aggregate(&task, started).await,
            }
        })
        .await;
        let end = end?;
        self.close_breakers(matches!(end, TaskEnd::Done), heard, started);
        Ok(end)
    }

    /// Closes the breakers of the services that answered a task that ended
    /// ([`outcome::breakers_closed`]).
    fn close_breakers(&self, ended: bool, heard: outcome::Heard, started: Timestamp) {
        let closes = outcome::breakers_closed(ended, heard);
        let mut b = self.lock_breakers();
        if closes.sec {
            b.sec.record_success_of(started);
        }
        if closes.provider {
            b.provider.record_success_of(started);
        }
    }

    /// Applies a transient failure. The breaker's lock is held for the whole decision, so a
    /// failure cannot be charged as an attempt after another task's failure opened the
    /// breaker. While it is open nothing is charged; the failure that opens it refunds every
    /// attempt charged in the streak; a task's last attempt is not used up while other tasks
    /// fail alongside it (an outage forming); otherwise an attempt counts, and the task fails
    /// once its retries are used up. `followers` are the other tasks of a packed call `task`
    /// led: they follow it in the same decision, so their charges are refunded with its own.
    fn transient(
        &self,
        task: &ClaimedTask,
        side: Side,
        reason: &str,
        followers: &[i64],
    ) -> Result<TaskEnd, EngineError> {
        self.transient_at_least(task, side, reason, followers, Duration::ZERO)
    }

    /// [`Self::transient`] with the retry no sooner than `min_delay` from now.
    fn transient_at_least(
        &self,
        task: &ClaimedTask,
        side: Side,
        reason: &str,
        followers: &[i64],
        min_delay: Duration,
    ) -> Result<TaskEnd, EngineError> {
        let now = self.now();
        let mut breakers = self.lock_breakers();
        let breaker = breakers.side(side);
        let follow = |breaker: &mut crate::backoff::Breaker, charged: bool| {
            if followers.is_empty() {
                return Ok::<(), EngineError>(());
            }
            self.store()
                .follow_pack_lead(task.id, task.attempts, followers, self.owner(), now)?;
            if charged {
                for id in followers {
                    breaker.record_charge(*id);
                }
            }
            Ok(())
        };
        if breaker.is_open() {
            self.store()
                .release_task(task.id, self.owner(), None, now)?;
            follow(breaker, false)?;
        } else if breaker.record_failure_at(task.id, now) {
            let streak = breaker.streak().len();
            for t in breaker.take_charged() {
                self.store().refund_attempt(t)?;
                // An outage is not the task's own streak: it starts afresh afterwards.
                self.store().end_transient_streak(t)?;
            }
            self.store().end_transient_streak(task.id)?;
            self.store()
                .release_task(task.id, self.owner(), None, now)?;
            follow(breaker, false)?;
            drop(breakers);
            self.announce_outage(side, streak)?;
        } else {
            let since = self.store().note_transient_failure(task.id, now)?;
            let step = transient_step(&TransientContext {
                attempts: task.attempts,
                max_retries: self.batch_settings.max_retries,
                others_failing: breaker.others_failing(task.id),
                streak: span_between(since, now),
                min_streak: self.e.settings.transient_min_streak,
            });
            let delay = retry_delay(
                task.attempts + 1,
                self.e.settings.retry_base,
                self.e.settings.retry_cap,
            )
            .max(min_delay);
            match step {
                TransientStep::Hold => {
                    self.store().release_task(
                        task.id,
                        self.owner(),
                        Some(now + duration_to_span(delay)),
                        now,
                    )?;
                    follow(breaker, false)?;
                }
                TransientStep::Retry => {
                    breaker.record_charge(task.id);
                    self.store().retry_task(
                        task.id,
                        self.owner(),
                        now + duration_to_span(delay),
                        reason,
                        now,
                    )?;
                    follow(breaker, true)?;
                }
                TransientStep::Fail => {
                    breaker.record_charge(task.id);
                    let attempts = task.attempts + 1;
                    let over = span_between(since, now).as_secs() / 60;
                    self.store().fail_task(
                        task.id,
                        self.owner(),
                        &format!(
                            "{reason} (after {attempts} attempts over {over} minutes of \
                             transient failures)"
                        ),
                        true,
                        now,
                    )?;
                    follow(breaker, true)?;
                }
            }
        }
        Ok(TaskEnd::Transient)
    }

    /// Tells the user (and the webhook) that a side looks down and the batch waits for it.
    fn announce_outage(&self, side: Side, streak: usize) -> Result<(), EngineError> {
        let who = match side {
            Side::Sec => "SEC",
            Side::Provider => "the model provider",
        };
        self.e.observer.message(
            Level::Warn,
            &format!(
                "{streak} consecutive transient failures on different tasks: {who} looks down; \
                 pausing and probing (their attempts are not counted)"
            ),
        );
        self.e.observer.event(&Event::RepeatedFailures {
            count: streak,
            source: who.to_string(),
        });
        self.store().set_batch_state_if(
            &self.batch.id,
            lifecycle::RUN_WRITABLE,
            BatchState::WaitingProvider,
            Some(&format!("{who} failing repeatedly")),
            self.now(),
        )?;
        Ok(())
    }

    /// Bad output or a transient failure that counts: retry with backoff or fail.
    fn count_failed_attempt(&self, task: &ClaimedTask, reason: &str) -> Result<(), EngineError> {
        let now = self.now();
        let attempts = task.attempts + 1;
        let max_attempts = self.batch_settings.max_retries + 1;
        if attempts >= max_attempts {
            self.store().fail_task(
                task.id,
                self.owner(),
                &format!("{reason} (after {attempts} attempts)"),
                true,
                now,
            )?;
        } else {
            let delay = retry_delay(
                attempts,
                self.e.settings.retry_base,
                self.e.settings.retry_cap,
            );
            self.store().retry_task(
                task.id,
                self.owner(),
                now + duration_to_span(delay),
                reason,
                now,
            )?;
        }
        Ok(())
    }

    fn skip(&self, task: &ClaimedTask, reason: &str) -> Result<TaskEnd, EngineError> {
        self.store()
            .skip_task(task.id, self.owner(), reason, self.now())?;
        Ok(TaskEnd::Done)
    }

    fn source_error(&self, task: &ClaimedTask, e: SourceError) -> Result<TaskEnd, EngineError> {
        match e {
            SourceError::Transient(msg) => {
                self.transient(task, Side::Sec, &format!("SEC: {msg}"), &[])
            }
            SourceError::Unavailable(msg) => self.skip(task, &msg),
            SourceError::Configuration(msg) => {
                self.store()
                    .release_task(task.id, self.owner(), None, self.now())?;
                Ok(TaskEnd::Configuration(msg))
            }
        }
    }

    async fn resolve(&self, task: &ClaimedTask) -> Result<TaskEnd, EngineError> {
        let Some(cik) = task.cik else {
            return self.skip(task, "no CIK for this company");
        };
        let as_of = self
            .batch
            .as_of_date
            .parse()
            .map_err(|e| EngineError::Invalid(format!("batch as-of date: {e}")))?;
        match self
            .e
            .source
            .resolve_years(
                cik,
                &self.years,
                as_of,
                self.batch_settings.include_amendments,
            )
            .await
        {
            Ok(resolution) => {
                heard::sec_answered();
                self.store().complete_resolution(
                    task.id,
                    self.owner(),
                    &resolution.years,
                    self.e.analysis.needs_model(),
                    self.e.analysis.is_multi_year(),
                    resolution.company_name.as_deref(),
                    self.now(),
                )?;
                Ok(TaskEnd::Done)
            }
            Err(e) => self.source_error(task, e),
        }
    }

    fn display_ticker(task: &ClaimedTask) -> String {
        task.ticker
            .clone()
            .or_else(|| task.cik.map(|c| format!("CIK{c}")))
            .unwrap_or_default()
    }

    /// The result key of a year of this batch's analysis and model.
    fn year_result_key(&self, cik: u64, accession: &str) -> String {
        let analysis = &self.e.analysis;
        result_key(
            cik,
            accession,
            analysis.name(),
            analysis.version(),
            &self.model_label(),
        )
    }

    /// Completes `task` with the stored result of `key` when there is one and the batch does
    /// not force a redo: a year answered by any batch, packed or not, is never asked again.
    fn reuse_stored(&self, task: &ClaimedTask, key: &str) -> Result<bool, EngineError> {
        if self.batch_settings.force {
            return Ok(false);
        }
        let Some(id) = self.store().find_result(key)? else {
            return Ok(false);
        };
        self.store()
            .complete_with_existing(task.id, self.owner(), id, self.now())?;
        Ok(true)
    }

    async fn year(&self, task: &ClaimedTask, started: Timestamp) -> Result<TaskEnd, EngineError> {
        let (Some(cik), Some(filing), Some(year)) = (task.cik, &task.filing, task.fiscal_year)
        else {
            return self.skip(task, "no filing recorded for this year");
        };
        if self.e.analysis.compares_years() {
            return self.changes_year(task, cik, filing, year, started).await;
        }
        let analysis = &self.e.analysis;
        let model = self.model_label();
        let key = self.year_result_key(cik, &filing.accession);
        if self.reuse_stored(task, &key)? {
            return Ok(TaskEnd::Done);
        }
        let mut budget = match self.document_budget() {
            Ok(b) => b,
            Err(message) => {
                self.store()
                    .release_task(task.id, self.owner(), None, self.now())?;
                return Ok(TaskEnd::Configuration(message));
            }
        };
        // Fittings after the first preparation, and whether this document has shown itself
        // denser than its estimate (then every new fit is measured).
        let mut fits = 0;
        let mut dense = false;
        // Whether this task's answer was already found truncated by the server once.
        let mut truncated_once = false;
        loop {
            let doc = match self.e.source.prepare_document(cik, filing, budget).await {
                Ok(doc) => {
                    heard::sec_answered();
                    doc
                }
                Err(e) => return self.source_error(task, e),
            };
            let mut result = NewResult {
                result_key: key.clone(),
                cik,
                ticker: task.ticker.clone(),
                company_name: task.company_name.clone(),
                fiscal_year: Some(year),
                fiscal_year_label: doc.fiscal_year_label.clone(),
                form: Some(filing.form.clone()),
                accession: Some(filing.accession.clone()),
                analysis_type: analysis.name().to_string(),
                analysis_version: analysis.version().to_string(),
                model: model.clone(),
                attempts: task.attempts + 1,
                document_url: Some(doc.url.clone()),
                document_sha256: Some(doc.sha256.clone()),
                fitting: Some(doc.fitting.to_string()),
                started_at: Some(started),
                supersede: self.batch_settings.force,
                ..Default::default()
            };
            let ticker = Self::display_ticker(task);
            let company = task.company_name.clone().unwrap_or_else(|| ticker.clone());
            let input = YearInput {
                ticker: &ticker,
                company_name: &company,
                fiscal_year: year,
                form: &filing.form,
                document: &doc.text,
            };
            let Some(step) = analysis.year_request(&input) else {
                // An analysis without a model call: the XBRL facts are the result.
                return match doc.facts {
                    Some(facts) => {
                        result.json = facts.to_string();
                        self.store().complete_with_result(
                            task.id,
                            self.owner(),
                            &result,
                            self.now(),
                        )?;
                        Ok(TaskEnd::Done)
                    }
                    None => self.skip(task, "the filing has no inline XBRL financial data"),
                };
            };
            let estimate = doc.tokens + analysis.year_overhead_tokens();
            let request = self.build_request(&step);
            let counted = self.measure(&request, estimate, dense).await?;
            let limit = self.size_limit();
            if let Some(real) = counted.filter(|&real| real > limit) {
                // Measured over the limit: fit to the provider's count before sending anything.
                dense = true;
                if fits >= MAX_FITS {
                    return self.skip(
                        task,
                        &format!(
                            "document too large for the model even after fitting it smaller \
                             ({real} tokens by the provider's count, limit {limit})"
                        ),
                    );
                }
                fits += 1;
                budget = shrink_to(budget, real, limit);
                continue;
            }
            let tokens = counted.unwrap_or(estimate);
            match self
                .call_model(task, &step, tokens, counted.is_some(), started)
                .await?
            {
                ModelOutcome::Json(value, usage) => {
                    result.json = value.to_string();
                    result.prompt_tokens = usage.tokens.prompt_tokens;
                    result.output_tokens = usage.tokens.output_tokens;
                    result.thinking_tokens = usage.tokens.thinking_tokens;
                    result.calls = usage.calls;
                    result.request_params = usage.params.map(|p| p.to_string());
                    self.store().complete_with_result(
                        task.id,
                        self.owner(),
                        &result,
                        self.now(),
                    )?;
                    return Ok(TaskEnd::Done);
                }
                ModelOutcome::NeedsMoreOutput => {
                    // More output, so less document: refit before sending again.
                    fits += 1;
                    match self.budget() {
                        Ok(b) => budget = b.document_tokens.min(budget).max(1),
                        Err(e) => {
                            self.store()
                                .release_task(task.id, self.owner(), None, self.now())?;
                            return Ok(TaskEnd::Configuration(self.context_too_small_message(&e)));
                        }
                    }
                    continue;
                }
                ModelOutcome::Truncated { used } => {
                    // The server read only `used` tokens: the answer was not stored. Once is
                    // a context to learn; twice, the server's context is too small to learn.
                    if truncated_once || fits >= MAX_FITS {
                        self.store()
                            .release_task(task.id, self.owner(), None, self.now())?;
                        return Ok(TaskEnd::Configuration(self.truncation_message(used)));
                    }
                    truncated_once = true;
                    fits += 1;
                    dense = true;
                    match self.refit_to_context(used, budget.min(doc.tokens.max(1))) {
                        Ok(b) => budget = b,
                        Err(message) => {
                            self.store()
                                .release_task(task.id, self.owner(), None, self.now())?;
                            return Ok(TaskEnd::Configuration(message));
                        }
                    }
                    continue;
                }
                ModelOutcome::TooLong(max) if fits < MAX_FITS => {
                    // Refused for size: never send the same request again; fit smaller now,
                    // from what was sent (a budget above the document's size halves nothing).
                    fits += 1;
                    dense = true;
                    let budget_was = budget.min(doc.tokens.max(1));
                    let budget = &mut budget;
                    let refit = match max {
                        // The server counts the output inside its context: fit to the context
                        // it gave less the output budget, as every later request will be.
                        Some(context) if self.e.settings.output_in_context => {
                            self.refit_to_context(context, budget_was)
                        }
                        _ => {
                            let smaller = max
                                .map(|m| m.saturating_sub(analysis.year_overhead_tokens()) * 9 / 10)
                                .unwrap_or(budget_was / 2);
                            Ok(smaller
                                .min(budget_was / 2 + budget_was / 4)
                                .max(1_000.min(budget_was / 2)))
                        }
                    };
                    match refit {
                        Ok(b) => *budget = b,
                        Err(message) => {
                            self.store()
                                .release_task(task.id, self.owner(), None, self.now())?;
                            return Ok(TaskEnd::Configuration(message));
                        }
                    }
                    continue;
                }
                ModelOutcome::TooLong(_) => {
                    return self.skip(
                        task,
                        "document too large for the model even after fitting it smaller",
                    )
                }
                ModelOutcome::Ended(end) | ModelOutcome::EndedAll(end) => return Ok(end),
                // Only a packed call ends so; a single one counts its attempt itself.
                ModelOutcome::Unusable(reason) | ModelOutcome::GoAlone(reason) => {
                    self.count_failed_attempt(task, &reason)?;
                    return Ok(TaskEnd::Done);
                }
            }
        }
    }

    async fn aggregate(
        &self,
        task: &ClaimedTask,
        started: Timestamp,
    ) -> Result<TaskEnd, EngineError> {
        let Some(cik) = task.cik else {
            return self.skip(task, "no CIK for this company");
        };
        let analysis = &self.e.analysis;
        let outcomes = self.store().year_outcomes(task.company_id)?;
        let min = analysis.min_years() as usize;
        if outcomes.completed.len() < min {
            let missing: Vec<String> = outcomes
                .missing
                .iter()
                .map(|(y, why)| format!("FY{y} ({why})"))
                .collect();
            return self.skip(
                task,
                &format!(
                    "needs at least {min} completed years, has {}; missing: {}",
                    outcomes.completed.len(),
                    if missing.is_empty() {
                        "none requested".to_string()
                    } else {
                        missing.join(", ")
                    }
                ),
            );
        }
        let accessions: Vec<String> = outcomes
            .completed
            .iter()
            .map(|r| r.accession.clone().unwrap_or_default())
            .collect();
        let model = self.model_label();
        let key = self.aggregate_result_key(cik, &outcomes);
        if !self.batch_settings.force {
            if let Some(id) = self.store().find_result(&key)? {
                self.store()
                    .complete_with_existing(task.id, self.owner(), id, self.now())?;
                return Ok(TaskEnd::Done);
            }
        }
        let years: Vec<i32> = outcomes.completed.iter().map(|r| r.fiscal_year).collect();
        let mut yearly = serde_json::Map::new();
        for r in &outcomes.completed {
            let v: Value = serde_json::from_str(&r.json).unwrap_or(Value::String(r.json.clone()));
            yearly.insert(format!("FY{}", r.fiscal_year), v);
        }
        let yearly = Value::Object(yearly);
        let ticker = Self::display_ticker(task);
        let company = task.company_name.clone().unwrap_or_else(|| ticker.clone());
        let input = AggregateInput {
            ticker: &ticker,
            company_name: &company,
            years: &years,
            yearly_results: &yearly,
        };
        let Some(step) = analysis.aggregate_request(&input) else {
            return self.skip(task, "this analysis has no aggregate step");
        };
        let tokens =
            crate::estimate_tokens(&step.prompt) + crate::estimate_tokens(&step.schema.to_string());
        match self.call_model(task, &step, tokens, false, started).await? {
            ModelOutcome::Json(value, usage) => {
                let result = NewResult {
                    result_key: key,
                    cik,
                    ticker: task.ticker.clone(),
                    company_name: task.company_name.clone(),
                    fiscal_year: years.last().copied(),
                    accession: Some(accessions.join(",")),
                    analysis_type: analysis.name().to_string(),
                    analysis_version: analysis.version().to_string(),
                    model,
                    json: value.to_string(),
                    prompt_tokens: usage.tokens.prompt_tokens,
                    output_tokens: usage.tokens.output_tokens,
                    thinking_tokens: usage.tokens.thinking_tokens,
                    attempts: task.attempts + 1,
                    calls: usage.calls,
                    request_params: usage.params.map(|p| p.to_string()),
                    fitting: Some(serde_json::json!({ "years": years }).to_string()),
                    started_at: Some(started),
                    supersede: self.batch_settings.force,
                    ..Default::default()
                };
                self.store()
                    .complete_with_result(task.id, self.owner(), &result, self.now())?;
                Ok(TaskEnd::Done)
            }
            ModelOutcome::TooLong(_)
            | ModelOutcome::Truncated { .. }
            | ModelOutcome::NeedsMoreOutput => self.skip(
                task,
                "the yearly results are too large for the model's context",
            ),
            ModelOutcome::Ended(end) | ModelOutcome::EndedAll(end) => Ok(end),
            ModelOutcome::Unusable(reason) | ModelOutcome::GoAlone(reason) => {
                self.count_failed_attempt(task, &reason)?;
                Ok(TaskEnd::Done)
            }
        }
    }

    fn model_label(&self) -> String {
        if self.e.analysis.needs_model() {
            self.e.settings.model.clone()
        } else if self.e.analysis.compares_years() {
            crate::changes::MODEL_LABEL.to_string()
        } else {
            fintel_store::no_model::XBRL.to_string()
        }
    }

    /// Tokens available for the document ([`crate::budget::plan`]): the context (less the
    /// output budget where the output shares it) and the per-minute token cap, minus the
    /// prompt, schema and a margin for the estimate's error. A context too small for any
    /// useful answer is a configuration problem.
    fn document_budget(&self) -> Result<u64, String> {
        self.budget()
            .map(|b| b.document_tokens)
            .map_err(|e| self.context_too_small_message(&e))
    }
}

/// A future whose panics are caught and returned, so a task's bug ends that task, not the run.
struct CatchUnwind<T>(std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>);

impl<T> std::future::Future for CatchUnwind<T> {
    type Output = Result<T, Box<dyn std::any::Any + Send>>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
            Err(payload) => std::task::Poll::Ready(Err(payload)),
        }
    }
}
