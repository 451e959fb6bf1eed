//! Batches and their companies: creation in one transaction, lookup by id or prefix, state,
//! counts and the reasons of skipped and failed tasks.

use jiff::Timestamp;
use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;

use crate::{from_millis, millis, Store, StoreError};

/// A batch's state (SPEC.md section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchState {
    Pending,
    Running,
    WaitingReset,
    WaitingProvider,
    /// Paused because free disk space is low; resumes by itself when it is not.
    WaitingDisk,
    Stopped,
    Cancelled,
    Completed,
}

impl BatchState {
    pub fn as_str(self) -> &'static str {
        match self {
            BatchState::Pending => "pending",
            BatchState::Running => "running",
            BatchState::WaitingReset => "waiting_reset",
            BatchState::WaitingProvider => "waiting_provider",
            BatchState::WaitingDisk => "waiting_disk",
            BatchState::Stopped => "stopped",
            BatchState::Cancelled => "cancelled",
            BatchState::Completed => "completed",
        }
    }

    pub fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "pending" => BatchState::Pending,
            "running" => BatchState::Running,
            "waiting_reset" => BatchState::WaitingReset,
            "waiting_provider" => BatchState::WaitingProvider,
            "waiting_disk" => BatchState::WaitingDisk,
            "stopped" => BatchState::Stopped,
            "cancelled" => BatchState::Cancelled,
            "completed" => BatchState::Completed,
            other => {
                return Err(StoreError::Invalid(format!(
                    "unknown batch state {other:?}"
                )))
            }
        })
    }

    /// Whether a batch in this state can still be resumed.
    pub fn is_incomplete(self) -> bool {
        !matches!(self, BatchState::Cancelled | BatchState::Completed)
    }
}

/// How a conditional batch state write went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateWrite {
    Applied,
    /// The batch was in another state, which was kept.
    Kept(BatchState),
    /// The batch no longer exists.
    Gone,
}

/// A company row of a new batch. `skip_reason` is set for rows kept only to record why they
/// will not be analysed (an unknown ticker under `--skip-unknown`).
#[derive(Debug, Clone)]
pub struct NewCompany {
    pub line_no: Option<u64>,
    pub ticker: Option<String>,
    pub cik: Option<u64>,
    pub company_name: Option<String>,
    pub priority: i64,
    pub skip_reason: Option<String>,
}

/// Everything a batch is, written before any work starts.
#[derive(Debug, Clone)]
pub struct NewBatch {
    pub id: String,
    pub name: Option<String>,
    pub analysis_type: String,
    pub analysis_version: String,
    /// The analysis's prompt and schema, pinned: later edits of the workflow never change it.
    pub workflow: String,
    pub min_years: u32,
    /// JSON: `{"latest": N}` or `{"explicit": [years]}`.
    pub years_spec: String,
    pub as_of_date: String,
    pub model: String,
    /// JSON of the remaining settings (max retries, force, amendments...).
    pub settings: String,
    pub priority: i64,
    pub input_file: Option<String>,
    pub companies: Vec<NewCompany>,
}

/// A stored batch.
#[derive(Debug, Clone, Serialize)]
pub struct Batch {
    pub id: String,
    pub name: Option<String>,
    #[serde(serialize_with = "ser_ts")]
    pub created_at: Timestamp,
    #[serde(serialize_with = "ser_ts")]
    pub updated_at: Timestamp,
    pub state: BatchState,
    pub state_reason: Option<String>,
    pub analysis_type: String,
    pub analysis_version: String,
    #[serde(skip)]
    pub workflow: String,
    pub min_years: u32,
    pub years_spec: String,
    pub as_of_date: String,
    pub model: String,
    pub settings: String,
    pub priority: i64,
    pub stop_requested: bool,
    pub input_file: Option<String>,
}

pub(crate) fn ser_ts<S: serde::Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_string())
}

const BATCH_COLUMNS: &str = "id, name, created_at, updated_at, state, state_reason, \
    analysis_type, analysis_version, workflow, min_years, years_spec, as_of_date, model, \
    settings, priority, stop_requested, input_file";

fn batch_from_row(r: &Row<'_>) -> rusqlite::Result<(Batch, String)> {
    let state: String = r.get(4)?;
    Ok((
        Batch {
            id: r.get(0)?,
            name: r.get(1)?,
            created_at: from_millis(r.get(2)?),
            updated_at: from_millis(r.get(3)?),
            state: BatchState::Pending,
            state_reason: r.get(5)?,
            analysis_type: r.get(6)?,
            analysis_version: r.get(7)?,
            workflow: r.get(8)?,
            min_years: r.get(9)?,
            years_spec: r.get(10)?,
            as_of_date: r.get(11)?,
            model: r.get(12)?,
            settings: r.get(13)?,
            priority: r.get(14)?,
            stop_requested: r.get::<_, i64>(15)? != 0,
            input_file: r.get(16)?,
        },
        state,
    ))
}

fn finish_batch(pair: (Batch, String)) -> Result<Batch, StoreError> {
    let (mut b, state) = pair;
    b.state = BatchState::parse(&state)?;
    Ok(b)
}

/// Task counts of a batch by state. From [`Store::task_counts`], `total` is the planned
/// number of tasks: those that exist plus those the companies still to resolve are expected
/// to bring ([`tasks_per_company`](crate::tasks_per_company)).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TaskCounts {
    pub total: u64,
    pub pending: u64,
    pub running: u64,
    pub completed: u64,
    pub skipped: u64,
    pub failed: u64,
    /// Tasks still to resolve filings for (their years are not known yet).
    pub resolving: u64,
}

impl TaskCounts {
    /// Adds `n` tasks of `kind` in `state` (one row of a `GROUP BY kind, state` count).
    pub fn add(&mut self, kind: &str, state: &str, n: u64) {
        // A resolve task that completed has become year tasks; only count it while it is
        // open or if it ended without any (a skipped or failed company).
        if kind == "resolve" {
            match state {
                "completed" => return,
                "pending" | "running" => {
                    self.resolving += n;
                    return;
                }
                _ => {}
            }
        }
        self.total += n;
        match state {
            "pending" => self.pending += n,
            "running" => self.running += n,
            "completed" => self.completed += n,
            "skipped" => self.skipped += n,
            "failed" => self.failed += n,
            _ => {}
        }
    }

    pub fn ended(&self) -> u64 {
        self.completed + self.skipped + self.failed
    }
}

/// A reason shared by several skipped or failed tasks.
#[derive(Debug, Clone, Serialize)]
pub struct ReasonGroup {
    pub state: String,
    pub reason: String,
    pub count: u64,
}

/// One skipped or failed task, for `status --failed` / `--skipped`.
#[derive(Debug, Clone, Serialize)]
pub struct EndedTask {
    pub task_id: i64,
    pub ticker: Option<String>,
    pub cik: Option<u64>,
    pub kind: String,
    pub fiscal_year: Option<i32>,
    pub state: String,
    pub attempts: u32,
    pub reason: Option<String>,
}

impl Store {
    /// Creates a batch, its companies and their first tasks in one transaction: either all of it
    /// exists afterwards or none of it does.
    pub fn create_batch(&self, batch: &NewBatch, now: Timestamp) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now = millis(now);
        tx.execute(
            "INSERT INTO batches (id, name, created_at, updated_at, state, analysis_type, \
             analysis_version, workflow, min_years, years_spec, as_of_date, model, settings, \
             priority, input_file) \
             VALUES (?1, ?2, ?3, ?3, 'pending', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                batch.id,
                batch.name,
                now,
                batch.analysis_type,
                batch.analysis_version,
                batch.workflow,
                batch.min_years,
                batch.years_spec,
                batch.as_of_date,
                batch.model,
                batch.settings,
                batch.priority,
                batch.input_file,
            ],
        )?;
        for c in &batch.companies {
            tx.execute(
                "INSERT INTO companies (batch_id, line_no, ticker, cik, company_name, priority) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    batch.id,
                    c.line_no,
                    c.ticker,
                    c.cik,
                    c.company_name,
                    c.priority
                ],
            )?;
            let company_id = tx.last_insert_rowid();
            let (state, finished) = match c.skip_reason {
                Some(_) => ("skipped", Some(now)),
                None => ("pending", None),
            };
            tx.execute(
                "INSERT INTO tasks (batch_id, company_id, kind, needs_model, state, priority, \
                 reason, created_at, updated_at, finished_at) \
                 VALUES (?1, ?2, 'resolve', 0, ?3, ?4, ?5, ?6, ?6, ?7)",
                params![
                    batch.id,
                    company_id,
                    state,
                    batch.priority + c.priority,
                    c.skip_reason,
                    now,
                    finished
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The batch with this id, or the only batch whose id starts with this prefix.
    pub fn find_batch(&self, id_or_prefix: &str) -> Result<Batch, StoreError> {
        let conn = self.conn();
        let exact = conn
            .query_row(
                &format!("SELECT {BATCH_COLUMNS} FROM batches WHERE id = ?1"),
                [id_or_prefix],
                batch_from_row,
            )
            .optional()?;
        if let Some(b) = exact {
            return finish_batch(b);
        }
        let pattern = format!("{}%", id_or_prefix.replace(['%', '_'], ""));
        let mut stmt = conn.prepare(&format!(
            "SELECT {BATCH_COLUMNS} FROM batches WHERE id LIKE ?1 ORDER BY created_at DESC LIMIT 6"
        ))?;
        let found = stmt
            .query_map([pattern], batch_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        match found.len() {
            0 => Err(StoreError::BatchNotFound(id_or_prefix.to_string())),
            1 => finish_batch(found.into_iter().next().expect("one element")),
            _ => Err(StoreError::AmbiguousBatch {
                prefix: id_or_prefix.to_string(),
                candidates: found
                    .iter()
                    .map(|(b, _)| b.id.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// Batches that can still be resumed, most recent first.
    pub fn list_incomplete(&self) -> Result<Vec<Batch>, StoreError> {
        self.list_batches(true)
    }

    /// All batches, most recent first (`incomplete_only` keeps the resumable ones).
    pub fn list_batches(&self, incomplete_only: bool) -> Result<Vec<Batch>, StoreError> {
        let conn = self.conn();
        let filter = if incomplete_only {
            "WHERE state NOT IN ('cancelled', 'completed')"
        } else {
            ""
        };
        let mut stmt = conn.prepare(&format!(
            "SELECT {BATCH_COLUMNS} FROM batches {filter} ORDER BY created_at DESC, id"
        ))?;
        let rows = stmt
            .query_map([], batch_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(finish_batch).collect()
    }

    /// Sets a batch's state and the reason shown beside it, unless the batch was cancelled:
    /// only another cancel writes over `cancelled` ([`Store::reopen_batch`] takes it back
    /// explicitly). A deleted batch is left alone.
    pub fn set_batch_state(
        &self,
        id: &str,
        state: BatchState,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE batches SET state = ?2, state_reason = ?3, updated_at = ?4 \
             WHERE id = ?1 AND (state != 'cancelled' OR ?2 = 'cancelled')",
            params![id, state.as_str(), reason, millis(now)],
        )?;
        Ok(())
    }

    /// Sets a batch's state only if its current state is one of `expected`, in one statement,
    /// so a concurrent cancel (or another process's write) is never overwritten.
    pub fn set_batch_state_if(
        &self,
        id: &str,
        expected: &[BatchState],
        state: BatchState,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<StateWrite, StoreError> {
        let expected_list = expected
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(",");
        let conn = self.conn();
        let n = conn.execute(
            &format!(
                "UPDATE batches SET state = ?2, state_reason = ?3, updated_at = ?4 \
                 WHERE id = ?1 AND state IN ({expected_list})"
            ),
            params![id, state.as_str(), reason, millis(now)],
        )?;
        if n > 0 {
            return Ok(StateWrite::Applied);
        }
        let current: Option<String> = conn
            .query_row("SELECT state FROM batches WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?;
        match current {
            Some(s) => Ok(StateWrite::Kept(BatchState::parse(&s)?)),
            None => Ok(StateWrite::Gone),
        }
    }

    /// Takes a cancelled batch back up (`--resume ID --reopen`): it becomes `stopped`, with no
    /// stop request pending, ready for the run that follows. Returns whether it was cancelled.
    pub fn reopen_batch(&self, id: &str, now: Timestamp) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "UPDATE batches SET state = 'stopped', state_reason = 'reopened after a cancel', \
             stop_requested = 0, updated_at = ?2 WHERE id = ?1 AND state = 'cancelled'",
            params![id, millis(now)],
        )?;
        Ok(n > 0)
    }

    /// Asks the process running a batch to drain and stop (the dashboard's stop action), or
    /// clears that request as a run starts. A cancelled batch keeps its stop request.
    pub fn request_stop(&self, id: &str, requested: bool) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE batches SET stop_requested = ?2 WHERE id = ?1 \
             AND (?2 = 1 OR state != 'cancelled')",
            params![id, requested as i64],
        )?;
        Ok(())
    }

    /// Cancels a batch for good: its state and the stop request its processes obey, in one
    /// statement, so no process can clear the one while the other is written. A completed
    /// batch is left as it is.
    pub fn cancel_batch(
        &self,
        id: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<StateWrite, StoreError> {
        let conn = self.conn();
        let n = conn.execute(
            "UPDATE batches SET state = 'cancelled', state_reason = ?2, stop_requested = 1, \
             updated_at = ?3 WHERE id = ?1 AND state != 'completed'",
            params![id, reason, millis(now)],
        )?;
        if n > 0 {
            return Ok(StateWrite::Applied);
        }
        let current: Option<String> = conn
            .query_row("SELECT state FROM batches WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?;
        match current {
            Some(s) => Ok(StateWrite::Kept(BatchState::parse(&s)?)),
            None => Ok(StateWrite::Gone),
        }
    }

    /// Whether someone asked this batch to stop (a batch that no longer exists has nothing
    /// left to work on: that is a stop too).
    pub fn stop_requested(&self, id: &str) -> Result<bool, StoreError> {
        let v: Option<i64> = self
            .conn()
            .query_row(
                "SELECT stop_requested FROM batches WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(v.is_none_or(|v| v != 0))
    }

    /// Task counts of one batch.
    pub fn task_counts(&self, batch_id: &str) -> Result<TaskCounts, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT kind, state, COUNT(*) FROM tasks WHERE batch_id = ?1 GROUP BY kind, state",
        )?;
        let mut counts = TaskCounts::default();
        let rows = stmt.query_map([batch_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)? as u64,
            ))
        })?;
        for row in rows {
            let (kind, state, n) = row?;
            counts.add(&kind, &state, n);
        }
        if counts.resolving > 0 {
            // The total is the plan from the first moment: a company still to resolve counts
            // for the tasks it is expected to bring, so "of N" does not grow as filings resolve.
            let (years_spec, min_years): (String, u32) = conn.query_row(
                "SELECT years_spec, min_years FROM batches WHERE id = ?1",
                [batch_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            counts.total += counts.resolving * crate::tasks_per_company(&years_spec, min_years);
        }
        Ok(counts)
    }

    /// Reasons of skipped and failed tasks, grouped by kind with their fiscal years as ranges
    /// ([`merge_year_ranges`](crate::merge_year_ranges)), most frequent first.
    pub fn reason_groups(&self, batch_id: &str) -> Result<Vec<ReasonGroup>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT state, COALESCE(reason, '(no reason recorded)'), COUNT(*) FROM tasks \
             WHERE batch_id = ?1 AND state IN ('skipped', 'failed') \
             GROUP BY state, reason ORDER BY COUNT(*) DESC, state, reason",
        )?;
        let rows = stmt.query_map([batch_id], |r| {
            Ok(ReasonGroup {
                state: r.get(0)?,
                reason: r.get(1)?,
                count: r.get::<_, i64>(2)? as u64,
            })
        })?;
        Ok(crate::merge_year_ranges(
            rows.collect::<Result<Vec<_>, _>>()?,
        ))
    }

    /// The skipped or failed tasks of a batch, one by one.
    pub fn ended_tasks(&self, batch_id: &str, state: &str) -> Result<Vec<EndedTask>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT t.id, c.ticker, c.cik, t.kind, t.fiscal_year, t.state, t.attempts, t.reason \
             FROM tasks t JOIN companies c ON c.id = t.company_id \
             WHERE t.batch_id = ?1 AND t.state = ?2 ORDER BY c.id, t.fiscal_year",
        )?;
        let rows = stmt.query_map(params![batch_id, state], |r| {
            Ok(EndedTask {
                task_id: r.get(0)?,
                ticker: r.get(1)?,
                cik: r.get(2)?,
                kind: r.get(3)?,
                fiscal_year: r.get(4)?,
                state: r.get(5)?,
                attempts: r.get(6)?,
                reason: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Removes a batch and its tasks. Results stay (they are shared by key with any batch that
    /// asks for the same thing) unless `purge_results`, which removes only results that no task
    /// of another batch points to.
    pub fn delete_batch(&self, batch_id: &str, purge_results: bool) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut purged = 0;
        if purge_results {
            tx.execute(
                "DELETE FROM superseded_results WHERE result_id IN ( \
                   SELECT result_id FROM tasks WHERE batch_id = ?1 AND result_id IS NOT NULL) \
                 AND result_id NOT IN ( \
                   SELECT result_id FROM tasks WHERE batch_id != ?1 AND result_id IS NOT NULL)",
                [batch_id],
            )?;
            purged = tx.execute(
                "DELETE FROM results WHERE id IN ( \
                   SELECT result_id FROM tasks WHERE batch_id = ?1 AND result_id IS NOT NULL) \
                 AND id NOT IN ( \
                   SELECT result_id FROM tasks WHERE batch_id != ?1 AND result_id IS NOT NULL)",
                [batch_id],
            )? as u64;
        }
        tx.execute("DELETE FROM tasks WHERE batch_id = ?1", [batch_id])?;
        tx.execute("DELETE FROM companies WHERE batch_id = ?1", [batch_id])?;
        let n = tx.execute("DELETE FROM batches WHERE id = ?1", [batch_id])?;
        if n == 0 {
            return Err(StoreError::BatchNotFound(batch_id.to_string()));
        }
        tx.commit()?;
        Ok(purged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with_batch(dir: &std::path::Path) -> Store {
        let s = Store::open(&dir.join("fintel.db")).unwrap();
        s.conn()
            .execute_batch(
                "INSERT INTO batches (id, created_at, updated_at, state, analysis_type, \
                   analysis_version, workflow, years_spec, as_of_date, model, settings) \
                 VALUES ('b1', 1, 1, 'running', 't', 'v', '', '{}', '2026-01-01', 'm', '{}');",
            )
            .unwrap();
        s
    }

    /// A cancel is never written over by a running process, and it comes with its stop
    /// request, which a run starting cannot clear; `reopen_batch` takes it back explicitly.
    #[test]
    fn a_cancel_survives_every_state_write_of_a_running_process() {
        let dir = tempfile::tempdir().unwrap();
        let s = store_with_batch(dir.path());
        let now = Timestamp::UNIX_EPOCH;
        assert_eq!(
            s.cancel_batch("b1", "by the user", now).unwrap(),
            StateWrite::Applied
        );
        s.set_batch_state("b1", BatchState::Running, None, now)
            .unwrap();
        s.set_batch_state("b1", BatchState::Stopped, Some("stopped"), now)
            .unwrap();
        let running_states = [
            BatchState::Running,
            BatchState::Stopped,
            BatchState::WaitingReset,
        ];
        assert_eq!(
            s.set_batch_state_if("b1", &running_states, BatchState::Running, None, now)
                .unwrap(),
            StateWrite::Kept(BatchState::Cancelled)
        );
        s.request_stop("b1", false).unwrap();
        assert!(
            s.stop_requested("b1").unwrap(),
            "a run starting keeps the cancel's stop"
        );
        assert_eq!(s.find_batch("b1").unwrap().state, BatchState::Cancelled);
        assert!(s.list_incomplete().unwrap().is_empty());

        assert!(s.reopen_batch("b1", now).unwrap());
        let b = s.find_batch("b1").unwrap();
        assert_eq!(b.state, BatchState::Stopped);
        assert!(!s.stop_requested("b1").unwrap());
        assert!(
            !s.reopen_batch("b1", now).unwrap(),
            "only a cancelled batch reopens"
        );

        // A deleted batch: writes touch nothing and a run sees a stop.
        s.delete_batch("b1", false).unwrap();
        assert_eq!(
            s.set_batch_state_if("b1", &running_states, BatchState::Running, None, now)
                .unwrap(),
            StateWrite::Gone
        );
        assert!(s.stop_requested("b1").unwrap());
    }

    #[test]
    fn a_completed_resolve_task_is_not_counted_an_open_one_is_resolving() {
        let mut c = TaskCounts::default();
        c.add("resolve", "completed", 5);
        c.add("resolve", "pending", 2);
        c.add("resolve", "failed", 1);
        c.add("year", "completed", 10);
        c.add("year", "pending", 4);
        assert_eq!(
            (c.total, c.resolving, c.failed, c.completed, c.pending),
            (15, 2, 1, 10, 4)
        );
    }
}
