//! Tasks: atomic claims with leases, the transitions out of `running`, filing resolution, and
//! results, which are written in the same transaction that completes their task.
//!
//! Every transition out of `running` names the owner that holds the lease, so a process whose
//! lease was taken back (because it was dead) can never complete or fail a task twice.

use jiff::Timestamp;
use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;

use crate::{millis, Store, StoreError};

/// The three kinds of task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// Find which filing serves each fiscal year of a company (SEC only, no model).
    Resolve,
    /// One analysis of one fiscal year's filing.
    Year,
    /// A multi-year analysis over the company's stored yearly results.
    Aggregate,
}

impl TaskKind {
    pub(crate) fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "resolve" => TaskKind::Resolve,
            "year" => TaskKind::Year,
            "aggregate" => TaskKind::Aggregate,
            other => return Err(StoreError::Invalid(format!("unknown task kind {other:?}"))),
        })
    }
}

/// A task claimed by this process, with what it needs to run.
#[derive(Debug, Clone)]
pub struct ClaimedTask {
    pub id: i64,
    pub batch_id: String,
    pub company_id: i64,
    pub kind: TaskKind,
    pub fiscal_year: Option<i32>,
    pub attempts: u32,
    pub ticker: Option<String>,
    pub cik: Option<u64>,
    pub company_name: Option<String>,
    pub filing: Option<FilingRef>,
}

/// The filing chosen for a (company, fiscal year), stored when the company is resolved and
/// never decided again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FilingRef {
    pub accession: String,
    pub form: String,
    pub period: Option<String>,
    pub filed: Option<String>,
    pub document_url: String,
    pub transition: bool,
}

/// One fiscal year found when resolving a company: a filing, or the reason there is none.
#[derive(Debug, Clone)]
pub struct YearPlan {
    pub fiscal_year: i32,
    pub filing: Option<FilingRef>,
    pub skip_reason: Option<String>,
}

/// A result to store with its task's completion, with its provenance (SPEC.md section 7).
#[derive(Debug, Clone, Default)]
pub struct NewResult {
    pub result_key: String,
    pub cik: u64,
    pub ticker: Option<String>,
    pub company_name: Option<String>,
    pub fiscal_year: Option<i32>,
    pub fiscal_year_label: Option<String>,
    pub form: Option<String>,
    /// The accession, or for an aggregate a comma-separated list of the years' accessions.
    pub accession: Option<String>,
    pub analysis_type: String,
    pub analysis_version: String,
    pub model: String,
    pub json: String,
    pub prompt_tokens: u64,
    pub output_tokens: u64,
    pub thinking_tokens: u64,
    pub attempts: u32,
    pub calls: u32,
    pub document_url: Option<String>,
    pub document_sha256: Option<String>,
    pub fitting: Option<String>,
    pub started_at: Option<Timestamp>,
    /// A forced redo (`--force`): this answer replaces a stored result with the same key as the
    /// current one, and the replaced one is kept in `superseded_results`. Otherwise a stored
    /// result with the same key wins and is shared.
    pub supersede: bool,
    /// The parameters the answering request was sent with (JSON: temperature, thinking, seed,
    /// output limit), so a study can be re-run.
    pub request_params: Option<String>,
}

/// A completed yearly result of a company, as an aggregate task reads it.
#[derive(Debug, Clone)]
pub struct YearlyResult {
    pub fiscal_year: i32,
    pub accession: Option<String>,
    pub json: String,
}

/// The years of a company's yearly tasks by how they ended, for an aggregate task.
#[derive(Debug, Clone, Default)]
pub struct YearOutcomes {
    pub completed: Vec<YearlyResult>,
    pub missing: Vec<(i32, String)>,
}

/// The columns a result row shares with its superseded versions.
const RESULT_FIELDS: &str = "result_key, cik, ticker, company_name, fiscal_year, \
     fiscal_year_label, form, accession, analysis_type, analysis_version, model, json, \
     prompt_tokens, output_tokens, thinking_tokens, attempts, calls, document_url, \
     document_sha256, fitting, started_at, created_at, call_id, packed_with, request_params";

pub(crate) const CLAIM_COLUMNS: &str =
    "t.id, t.batch_id, t.company_id, t.kind, t.fiscal_year, t.attempts, \
     c.ticker, c.cik, c.company_name, t.accession, t.form, t.period, t.filed, t.document_url, \
     t.transition";

pub(crate) fn claimed_from_row(r: &Row<'_>) -> rusqlite::Result<(ClaimedTask, String)> {
    let accession: Option<String> = r.get(9)?;
    let filing = match accession {
        Some(accession) => Some(FilingRef {
            accession,
            form: r.get::<_, Option<String>>(10)?.unwrap_or_default(),
            period: r.get(11)?,
            filed: r.get(12)?,
            document_url: r.get::<_, Option<String>>(13)?.unwrap_or_default(),
            transition: r.get::<_, i64>(14)? != 0,
        }),
        None => None,
    };
    Ok((
        ClaimedTask {
            id: r.get(0)?,
            batch_id: r.get(1)?,
            company_id: r.get(2)?,
            kind: TaskKind::Resolve,
            fiscal_year: r.get(4)?,
            attempts: r.get(5)?,
            ticker: r.get(6)?,
            cik: r.get(7)?,
            company_name: r.get(8)?,
            filing,
        },
        r.get(3)?,
    ))
}

impl Store {
    /// Claims the next runnable task of a batch for `owner`, atomically: two processes can
    /// never claim the same task. With `model_allowed` false only tasks that need no model
    /// call (filing resolution, XBRL analyses) are considered, so they progress while every
    /// quota bucket is spent. An aggregate task becomes runnable once every yearly task of its
    /// company has ended.
    pub fn claim_next(
        &self,
        batch_id: &str,
        owner: &str,
        now: Timestamp,
        model_allowed: bool,
    ) -> Result<Option<ClaimedTask>, StoreError> {
        let conn = self.conn();
        let now = millis(now);
        let id: Option<i64> = conn
            .query_row(
                "UPDATE tasks SET state = 'running', lease_owner = ?2, updated_at = ?3, \
                   started_at = COALESCE(started_at, ?3) \
                 WHERE id = ( \
                   SELECT t.id FROM tasks t \
                   WHERE t.batch_id = ?1 AND t.state = 'pending' \
                     AND (t.not_before IS NULL OR t.not_before <= ?3) \
                     AND (?4 OR t.needs_model = 0) \
                     AND (t.kind != 'aggregate' OR NOT EXISTS ( \
                       SELECT 1 FROM tasks y WHERE y.company_id = t.company_id \
                         AND y.kind IN ('resolve', 'year') AND y.state IN ('pending', 'running'))) \
                   ORDER BY t.priority DESC, t.kind = 'aggregate', t.company_id, t.fiscal_year DESC \
                   LIMIT 1) \
                 RETURNING id",
                params![batch_id, owner, now, model_allowed],
                |r| r.get(0),
            )
            .optional()?;
        let Some(id) = id else { return Ok(None) };
        let (mut task, kind) = conn.query_row(
            &format!(
                "SELECT {CLAIM_COLUMNS} FROM tasks t JOIN companies c ON c.id = t.company_id \
                 WHERE t.id = ?1"
            ),
            [id],
            claimed_from_row,
        )?;
        task.kind = TaskKind::parse(&kind)?;
        Ok(Some(task))
    }

    /// The earliest instant after `now` at which a pending task of the batch waiting for a
    /// backoff becomes runnable, if any.
    pub fn next_backoff_end(
        &self,
        batch_id: &str,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, StoreError> {
        let ms: Option<i64> = self.conn().query_row(
            "SELECT MIN(not_before) FROM tasks WHERE batch_id = ?1 AND state = 'pending' \
             AND not_before > ?2",
            params![batch_id, millis(now)],
            |r| r.get(0),
        )?;
        Ok(ms.map(crate::from_millis))
    }

    /// Whether the batch has pending tasks that need a model call.
    pub fn has_pending_model_work(&self, batch_id: &str) -> Result<bool, StoreError> {
        let n: i64 = self.conn().query_row(
            "SELECT EXISTS (SELECT 1 FROM tasks WHERE batch_id = ?1 AND state = 'pending' \
             AND needs_model = 1)",
            [batch_id],
            |r| r.get(0),
        )?;
        Ok(n != 0)
    }

    /// Tasks leased by `owner` that are still running (used on shutdown and by tests).
    pub fn running_tasks_of(&self, owner: &str) -> Result<Vec<i64>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT id FROM tasks WHERE lease_owner = ?1 AND state = 'running'")?;
        let ids = stmt
            .query_map([owner], |r| r.get(0))?
            .collect::<Result<Vec<i64>, _>>()?;
        Ok(ids)
    }

    /// Owners holding running leases in a batch.
    pub fn lease_owners(&self, batch_id: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT DISTINCT lease_owner FROM tasks WHERE batch_id = ?1 AND state = 'running' \
             AND lease_owner IS NOT NULL",
        )?;
        let owners = stmt
            .query_map([batch_id], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(owners)
    }

    /// Returns every task leased by `owner` to pending, without counting an attempt: used for
    /// owners known to be dead and for a process's own in-flight tasks on shutdown.
    pub fn release_owner(&self, owner: &str, now: Timestamp) -> Result<u64, StoreError> {
        let n = self.conn().execute(
            "UPDATE tasks SET state = 'pending', lease_owner = NULL, updated_at = ?2 \
             WHERE lease_owner = ?1 AND state = 'running'",
            params![owner, millis(now)],
        )?;
        Ok(n as u64)
    }

    /// Puts a task back to pending without counting an attempt (a quota refusal, a shutdown),
    /// optionally not before `not_before`.
    pub fn release_task(
        &self,
        task_id: i64,
        owner: &str,
        not_before: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.transition(
            "UPDATE tasks SET state = 'pending', lease_owner = NULL, not_before = ?3, \
             waiting_tokens = NULL, updated_at = ?4 \
             WHERE id = ?1 AND lease_owner = ?2 AND state = 'running'",
            params![task_id, owner, not_before.map(millis), millis(now)],
        )
    }

    /// Returns a task to pending until `not_before` because its request of `tokens` input
    /// tokens fits only buckets that cannot send now (the buckets with quota left have smaller
    /// token caps): the size is kept so the wait can be shown for what it is.
    pub fn release_task_waiting_for_cap(
        &self,
        task_id: i64,
        owner: &str,
        not_before: Timestamp,
        tokens: u64,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.transition(
            "UPDATE tasks SET state = 'pending', lease_owner = NULL, not_before = ?3, \
             waiting_tokens = ?4, updated_at = ?5 \
             WHERE id = ?1 AND lease_owner = ?2 AND state = 'running'",
            params![
                task_id,
                owner,
                millis(not_before),
                i64::try_from(tokens).unwrap_or(i64::MAX),
                millis(now)
            ],
        )
    }

    /// Of the batch's pending tasks waiting for a bucket whose token cap fits them, the next to
    /// try again: when, and its request's size (the smallest when several wait until the same
    /// instant).
    pub fn next_cap_wait(
        &self,
        batch_id: &str,
        now: Timestamp,
    ) -> Result<Option<(Timestamp, u64)>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT not_before, waiting_tokens FROM tasks WHERE batch_id = ?1 \
                 AND state = 'pending' AND waiting_tokens IS NOT NULL AND not_before > ?2 \
                 ORDER BY not_before, waiting_tokens LIMIT 1",
                params![batch_id, millis(now)],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
            )
            .optional()?
            .map(|(t, n)| (crate::from_millis(t), n.max(0) as u64)))
    }

    /// Sizes of the requests pending tasks (of any batch) wait to send on a bucket whose token
    /// cap fits them, largest first: what `fintel keys` compares each bucket's cap with.
    pub fn waiting_request_tokens(&self, now: Timestamp) -> Result<Vec<u64>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT waiting_tokens FROM tasks WHERE state = 'pending' \
             AND waiting_tokens IS NOT NULL AND not_before > ?1 ORDER BY waiting_tokens DESC",
        )?;
        let rows = stmt.query_map([millis(now)], |r| r.get::<_, i64>(0))?;
        let mut out = Vec::new();
        for n in rows {
            out.push(n?.max(0) as u64);
        }
        Ok(out)
    }

    /// Records a failed attempt and schedules the next one at `not_before`.
    pub fn retry_task(
        &self,
        task_id: i64,
        owner: &str,
        not_before: Timestamp,
        reason: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.transition(
            "UPDATE tasks SET state = 'pending', lease_owner = NULL, attempts = attempts + 1, \
             not_before = ?3, reason = ?4, waiting_tokens = NULL, updated_at = ?5 \
             WHERE id = ?1 AND lease_owner = ?2 AND state = 'running'",
            params![task_id, owner, millis(not_before), reason, millis(now)],
        )
    }

    /// Ends a task as skipped (it will never succeed) with its reason.
    pub fn skip_task(
        &self,
        task_id: i64,
        owner: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.transition(
            "UPDATE tasks SET state = 'skipped', lease_owner = NULL, reason = ?3, \
             updated_at = ?4, finished_at = ?4 \
             WHERE id = ?1 AND lease_owner = ?2 AND state = 'running'",
            params![task_id, owner, reason, millis(now)],
        )
    }

    /// Ends a task as failed after its last attempt (`count_attempt` adds that attempt).
    pub fn fail_task(
        &self,
        task_id: i64,
        owner: &str,
        reason: &str,
        count_attempt: bool,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.transition(
            "UPDATE tasks SET state = 'failed', lease_owner = NULL, reason = ?3, \
             attempts = attempts + ?5, updated_at = ?4, finished_at = ?4 \
             WHERE id = ?1 AND lease_owner = ?2 AND state = 'running'",
            params![task_id, owner, reason, millis(now), count_attempt as i64],
        )
    }

    fn transition(&self, sql: &str, params: impl rusqlite::Params) -> Result<(), StoreError> {
        let n = self.conn().execute(sql, params)?;
        if n == 0 {
            return Err(StoreError::LeaseLost);
        }
        Ok(())
    }

    /// The id of a stored result with this key, if any.
    pub fn find_result(&self, key: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT id FROM results WHERE result_key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Completes a task with a result in one transaction. If a result with the same key is
    /// already stored (another batch or process got there first) it is kept and shared, unless
    /// `result.supersede` (a forced redo): then the new answer becomes the current result under
    /// the same row id (so every task pointing to it sees the new one) and the old answer is
    /// kept in `superseded_results`.
    pub fn complete_with_result(
        &self,
        task_id: i64,
        owner: &str,
        result: &NewResult,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let result_id = write_result(&tx, task_id, owner, result, None, now)?;
        tx.commit()?;
        Ok(result_id)
    }

    /// Completes a task with a result that is already stored (no model call was made).
    pub fn complete_with_existing(
        &self,
        task_id: i64,
        owner: &str,
        result_id: i64,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.transition(
            "UPDATE tasks SET state = 'completed', lease_owner = NULL, result_id = ?3, \
             reason = 'reused a stored result', updated_at = ?4, finished_at = ?4 \
             WHERE id = ?1 AND lease_owner = ?2 AND state = 'running'",
            params![task_id, owner, result_id, millis(now)],
        )
    }

    /// Completes a company's resolve task and creates its yearly tasks (and its aggregate task
    /// for a multi-year analysis) in one transaction, so the chosen filings are stored once and
    /// never decided again.
    #[allow(clippy::too_many_arguments)]
    pub fn complete_resolution(
        &self,
        task_id: i64,
        owner: &str,
        plans: &[YearPlan],
        needs_model: bool,
        with_aggregate: bool,
        company_name: Option<&str>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now_ms = millis(now);
        let (batch_id, company_id, priority): (String, i64, i64) = tx.query_row(
            "SELECT batch_id, company_id, priority FROM tasks WHERE id = ?1 AND lease_owner = ?2 \
             AND state = 'running'",
            params![task_id, owner],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        ).optional()?.ok_or(StoreError::LeaseLost)?;
        for plan in plans {
            let (state, finished) = if plan.filing.is_some() {
                ("pending", None)
            } else {
                ("skipped", Some(now_ms))
            };
            let f = plan.filing.as_ref();
            tx.execute(
                "INSERT INTO tasks (batch_id, company_id, kind, needs_model, fiscal_year, state, \
                   priority, reason, accession, form, period, filed, document_url, transition, \
                   created_at, updated_at, finished_at) \
                 VALUES (?1, ?2, 'year', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, \
                   ?14, ?15)",
                params![
                    batch_id,
                    company_id,
                    needs_model,
                    plan.fiscal_year,
                    state,
                    priority,
                    plan.skip_reason,
                    f.map(|f| &f.accession),
                    f.map(|f| &f.form),
                    f.and_then(|f| f.period.as_ref()),
                    f.and_then(|f| f.filed.as_ref()),
                    f.map(|f| &f.document_url),
                    f.map(|f| f.transition).unwrap_or(false),
                    now_ms,
                    finished,
                ],
            )?;
        }
        if with_aggregate {
            tx.execute(
                "INSERT INTO tasks (batch_id, company_id, kind, needs_model, state, priority, \
                   created_at, updated_at) VALUES (?1, ?2, 'aggregate', 1, 'pending', ?3, ?4, ?4)",
                params![batch_id, company_id, priority, now_ms],
            )?;
        }
        if let Some(name) = company_name {
            tx.execute(
                "UPDATE companies SET company_name = COALESCE(company_name, ?2) WHERE id = ?1",
                params![company_id, name],
            )?;
        }
        tx.execute(
            "UPDATE tasks SET state = 'completed', lease_owner = NULL, updated_at = ?2, \
             finished_at = ?2 WHERE id = ?1",
            params![task_id, now_ms],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// How the yearly tasks of a company ended, with the stored JSON of the completed ones.
    pub fn year_outcomes(&self, company_id: i64) -> Result<YearOutcomes, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT t.fiscal_year, t.state, t.reason, t.accession, r.json FROM tasks t \
             LEFT JOIN results r ON r.id = t.result_id \
             WHERE t.company_id = ?1 AND t.kind = 'year' ORDER BY t.fiscal_year",
        )?;
        let mut out = YearOutcomes::default();
        let rows = stmt.query_map([company_id], |r| {
            Ok((
                r.get::<_, i32>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })?;
        for row in rows {
            let (year, state, reason, accession, json) = row?;
            match (state.as_str(), json) {
                ("completed", Some(json)) => out.completed.push(YearlyResult {
                    fiscal_year: year,
                    accession,
                    json,
                }),
                _ => out
                    .missing
                    .push((year, reason.unwrap_or_else(|| state.clone()))),
            }
        }
        Ok(out)
    }

    /// Puts the failed tasks of a batch back to pending with fresh attempts, together with the
    /// aggregate tasks of the same companies that ended for lack of years.
    pub fn requeue_failed(&self, batch_id: &str, now: Timestamp) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now = millis(now);
        // Their attempts start again from nothing, so no retry of an earlier attempt stands.
        tx.execute(
            "DELETE FROM retry_states WHERE task_id IN ( \
               SELECT id FROM tasks WHERE batch_id = ?1 AND state IN ('failed', 'skipped'))",
            [batch_id],
        )?;
        tx.execute(
            "UPDATE tasks SET state = 'pending', updated_at = ?2, finished_at = NULL, \
               reason = NULL, attempts = 0, not_before = NULL \
             WHERE batch_id = ?1 AND kind = 'aggregate' AND state IN ('skipped', 'failed') \
               AND company_id IN (SELECT company_id FROM tasks WHERE batch_id = ?1 \
                 AND state = 'failed' AND kind != 'aggregate')",
            params![batch_id, now],
        )?;
        let n = tx.execute(
            "UPDATE tasks SET state = 'pending', attempts = 0, reason = NULL, not_before = NULL, \
               updated_at = ?2, finished_at = NULL \
             WHERE batch_id = ?1 AND state = 'failed'",
            params![batch_id, now],
        )?;
        tx.commit()?;
        Ok(n as u64)
    }

    /// Takes back one counted attempt of a task (its failure turned out to be part of an
    /// outage, which never counts against a task).
    pub fn refund_attempt(&self, task_id: i64) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE tasks SET attempts = MAX(attempts - 1, 0) \
             WHERE id = ?1 AND attempts > 0 AND state != 'failed'",
            [task_id],
        )?;
        Ok(())
    }

    /// Number of results stored.
    pub fn result_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn()
            .query_row("SELECT COUNT(*) FROM results", [], |r| r.get(0))?;
        Ok(n as u64)
    }
}

/// Writes a result and completes its task inside `tx` (see [`Store::complete_with_result`]),
/// with the provenance of a packed call if it came from one.
pub(crate) fn write_result(
    tx: &rusqlite::Transaction<'_>,
    task_id: i64,
    owner: &str,
    result: &NewResult,
    packed: Option<&crate::PackedProvenance>,
    now: Timestamp,
) -> Result<i64, StoreError> {
    // The lease first: a process that lost it must not even touch the results.
    let leased: Option<i64> = tx
        .query_row(
            "SELECT id FROM tasks WHERE id = ?1 AND lease_owner = ?2 AND state = 'running'",
            params![task_id, owner],
            |r| r.get(0),
        )
        .optional()?;
    if leased.is_none() {
        return Err(StoreError::LeaseLost);
    }
    if result.supersede {
        // Keep the answer being replaced: it was paid for.
        tx.execute(
            &format!(
                "INSERT INTO superseded_results (result_id, superseded_at, {RESULT_FIELDS}) \
                 SELECT id, ?2, {RESULT_FIELDS} FROM results WHERE result_key = ?1"
            ),
            params![result.result_key, millis(now)],
        )?;
    }
    let written = tx.execute(
        "INSERT INTO results (result_key, cik, ticker, company_name, fiscal_year, \
           fiscal_year_label, form, accession, analysis_type, analysis_version, model, json, \
           prompt_tokens, output_tokens, thinking_tokens, attempts, calls, document_url, \
           document_sha256, fitting, started_at, created_at, request_params) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, \
           ?17, ?18, ?19, ?20, ?21, ?22, ?24) \
         ON CONFLICT (result_key) DO UPDATE SET ticker = excluded.ticker, \
           company_name = excluded.company_name, fiscal_year = excluded.fiscal_year, \
           fiscal_year_label = excluded.fiscal_year_label, form = excluded.form, \
           accession = excluded.accession, json = excluded.json, \
           prompt_tokens = excluded.prompt_tokens, output_tokens = excluded.output_tokens, \
           thinking_tokens = excluded.thinking_tokens, attempts = excluded.attempts, \
           calls = excluded.calls, document_url = excluded.document_url, \
           document_sha256 = excluded.document_sha256, fitting = excluded.fitting, \
           started_at = excluded.started_at, created_at = excluded.created_at, \
           request_params = excluded.request_params \
         WHERE ?23",
        params![
            result.result_key,
            result.cik,
            result.ticker,
            result.company_name,
            result.fiscal_year,
            result.fiscal_year_label,
            result.form,
            result.accession,
            result.analysis_type,
            result.analysis_version,
            result.model,
            result.json,
            result.prompt_tokens,
            result.output_tokens,
            result.thinking_tokens,
            result.attempts,
            result.calls,
            result.document_url,
            result.document_sha256,
            result.fitting,
            result.started_at.map(millis),
            millis(now),
            result.supersede,
            result.request_params,
        ],
    )?;
    let result_id: i64 = tx.query_row(
        "SELECT id FROM results WHERE result_key = ?1",
        [&result.result_key],
        |r| r.get(0),
    )?;
    if written > 0 {
        // A packed answer records its call and the years it came with; any other answer that
        // (re)writes the row clears them.
        tx.execute(
            "UPDATE results SET call_id = ?2, packed_with = ?3 WHERE id = ?1",
            params![
                result_id,
                packed.map(|p| p.call_id),
                packed.map(|p| p.packed_with())
            ],
        )?;
    }
    let n = tx.execute(
        "UPDATE tasks SET state = 'completed', lease_owner = NULL, result_id = ?3, \
         reason = NULL, updated_at = ?4, finished_at = ?4 \
         WHERE id = ?1 AND lease_owner = ?2 AND state = 'running'",
        params![task_id, owner, result_id, millis(now)],
    )?;
    if n == 0 {
        return Err(StoreError::LeaseLost);
    }
    Ok(result_id)
}
