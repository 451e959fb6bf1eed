//! The dashboard's reads: plain SQL over the store's schema, one short read transaction per
//! page so that a page is one consistent snapshot and never holds up a writer for long.
//!
//! Counts follow [`fintel_store::Store::task_counts`]: a company's resolve task counts only
//! while it is open ("resolving") or when it ended without years (skipped or failed).

use std::collections::HashMap;

use fintel_export::mask_keys;
use fintel_store::{from_millis, millis, BatchState, LiveProcess, ReasonGroup, Store, TaskCounts};
use fintel_time::{queued_eta, Ahead, BucketCapacity, QueuedBatch, QuotaEta};
use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::Value;

use crate::{BucketConfig, PageError};

/// A batch as the pages show it (the pinned workflow text is not read).
#[derive(Debug, Clone)]
pub(crate) struct BatchRow {
    pub id: String,
    pub name: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub state: BatchState,
    pub state_reason: Option<String>,
    pub analysis_type: String,
    pub model: String,
    pub stop_requested: bool,
    /// Fiscal years asked for each company.
    pub years_per_company: u32,
    /// Whether each company also gets an aggregate task.
    pub multi_year: bool,
}

impl BatchRow {
    pub fn title(&self) -> &str {
        self.name
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(&self.id)
    }
}

/// A batch with its counts and pace.
#[derive(Debug, Clone)]
pub(crate) struct BatchSummary {
    pub batch: BatchRow,
    pub counts: TaskCounts,
    /// Tasks that ended within the last hour and the last day.
    pub ended_last_hour: u64,
    pub ended_last_day: u64,
    /// When the batch's first task started.
    pub first_started: Option<Timestamp>,
    /// The live processes running the batch (pid, host, since), oldest first.
    pub processes: Vec<LiveProcess>,
    /// The quota-aware finish estimate ([`with_estimates`]); `None` when finished or unknown.
    pub eta: Option<QuotaEta>,
    /// The other batches on the same keys served before it ([`with_estimates`]).
    pub ahead: Ahead,
}

impl BatchSummary {
    /// Tasks the batch will have in all: the known ones plus, for companies still being
    /// resolved, the years (and aggregate) they are expected to bring.
    pub fn expected_total(&self) -> u64 {
        let per_company =
            u64::from(self.batch.years_per_company.max(1)) + u64::from(self.batch.multi_year);
        self.counts.total + self.counts.resolving * per_company
    }

    pub fn remaining(&self) -> u64 {
        self.expected_total().saturating_sub(self.counts.ended())
    }
}

const BATCH_COLUMNS: &str = "id, name, created_at, updated_at, state, state_reason, \
     analysis_type, model, stop_requested, years_spec, min_years";

fn batch_row(r: &Row<'_>) -> rusqlite::Result<BatchRow> {
    let state: String = r.get(4)?;
    let years_spec: String = r.get(9)?;
    let min_years: i64 = r.get(10)?;
    let state = BatchState::parse(&state).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(BatchRow {
        id: r.get(0)?,
        name: r.get(1)?,
        created_at: from_millis(r.get(2)?),
        updated_at: from_millis(r.get(3)?),
        state,
        state_reason: r.get(5)?,
        analysis_type: r.get(6)?,
        model: r.get(7)?,
        stop_requested: r.get::<_, i64>(8)? != 0,
        years_per_company: years_of(&years_spec),
        multi_year: min_years > 1,
    })
}

/// The number of years in a stored years spec (`{"latest": N}` or `{"explicit": [...]}`).
fn years_of(spec: &str) -> u32 {
    let v: Value = serde_json::from_str(spec).unwrap_or(Value::Null);
    if let Some(n) = v.get("latest").and_then(Value::as_u64) {
        return n.min(u64::from(u32::MAX)) as u32;
    }
    if let Some(a) = v.get("explicit").and_then(Value::as_array) {
        return a.len() as u32;
    }
    1
}

/// The pace of one batch: tasks ended since `hour_ago` and `day_ago`, and its first start.
fn pace(
    conn: &Connection,
    batch_id: &str,
    now: Timestamp,
) -> rusqlite::Result<(u64, u64, Option<Timestamp>)> {
    let now = millis(now);
    conn.prepare_cached(
        "SELECT COALESCE(SUM(finished_at >= ?2), 0), COALESCE(SUM(finished_at >= ?3), 0), \
           MIN(started_at) \
         FROM tasks WHERE batch_id = ?1 \
           AND (kind != 'resolve' OR state IN ('skipped', 'failed'))",
    )?
    .query_row(params![batch_id, now - 3_600_000, now - 86_400_000], |r| {
        Ok((
            r.get::<_, i64>(0)?.max(0) as u64,
            r.get::<_, i64>(1)?.max(0) as u64,
            r.get::<_, Option<i64>>(2)?.map(from_millis),
        ))
    })
}

/// Every batch, most recent first, with counts; pace only for those still under way.
pub(crate) fn batches_overview(
    store: &Store,
    now: Timestamp,
) -> Result<Vec<BatchSummary>, PageError> {
    let conn = store.conn();
    let tx = conn.unchecked_transaction()?;
    let batches = {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT {BATCH_COLUMNS} FROM batches ORDER BY created_at DESC, id LIMIT 500"
        ))?;
        let rows = stmt.query_map([], batch_row)?;
        rows.collect::<Result<Vec<_>, _>>()?
    };
    let mut counts: HashMap<String, TaskCounts> = HashMap::new();
    {
        let mut stmt = tx.prepare_cached(
            "SELECT batch_id, kind, state, COUNT(*) FROM tasks GROUP BY batch_id, kind, state",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            let kind: String = r.get(1)?;
            let state: String = r.get(2)?;
            let n = r.get::<_, i64>(3)?.max(0) as u64;
            counts.entry(id).or_default().add(&kind, &state, n);
        }
    }
    let mut out = Vec::with_capacity(batches.len());
    for batch in batches {
        let (hour, day, first) = if batch.state.is_incomplete() {
            pace(&tx, &batch.id, now)?
        } else {
            (0, 0, None)
        };
        out.push(BatchSummary {
            counts: counts.remove(&batch.id).unwrap_or_default(),
            ended_last_hour: hour,
            ended_last_day: day,
            first_started: first,
            processes: Vec::new(),
            eta: None,
            ahead: Ahead::default(),
            batch,
        });
    }
    drop(tx);
    drop(conn);
    // After the read transaction: the liveness check reads the owners through the store's
    // own connection, and takes no lock a running batch waits for.
    for s in out.iter_mut().filter(|s| s.batch.state.is_incomplete()) {
        s.processes = store.live_processes(&s.batch.id)?;
    }
    Ok(out)
}

/// The name prefix of a bucket merged because its keys share a Google Cloud project (as the
/// engine names them).
pub(crate) const MERGED_BUCKET_PREFIX: &str = "gcp-project-";

/// The buckets in effect: a configured bucket whose keys the database holds in a merged bucket
/// (the provider named one project for them) counts as that bucket, with all its members' keys
/// and the smaller of each limit, as the engine uses it.
pub(crate) fn buckets_in_effect(
    store: &Store,
    configured: &[BucketConfig],
) -> Result<Vec<BucketConfig>, PageError> {
    let stored = store.keys()?;
    let mut out: Vec<BucketConfig> = Vec::with_capacity(configured.len());
    for b in configured {
        let name = b
            .keys
            .iter()
            .find_map(|k| stored.iter().find(|s| s.fingerprint == k.fingerprint))
            .map(|s| s.bucket.clone())
            .filter(|n| n.starts_with(MERGED_BUCKET_PREFIX))
            .unwrap_or_else(|| b.name.clone());
        match out.iter_mut().find(|o| o.name == name) {
            Some(merged) => {
                merged.keys.extend(b.keys.iter().cloned());
                let (l, m) = (&mut merged.limits, b.limits);
                l.requests_per_day = l.requests_per_day.min(m.requests_per_day);
                l.requests_per_minute = l.requests_per_minute.min(m.requests_per_minute);
                l.input_tokens_per_minute =
                    l.input_tokens_per_minute.min(m.input_tokens_per_minute);
            }
            None => out.push(BucketConfig {
                name,
                keys: b.keys.clone(),
                limits: b.limits,
            }),
        }
    }
    Ok(out)
}

/// Each bucket's requests left today and per day at `now`, from the ledger (the buckets in
/// effect, see [`buckets_in_effect`]); a bucket whose every key is disabled gives none.
pub(crate) fn capacities(
    store: &Store,
    configured: &[BucketConfig],
    now: Timestamp,
) -> Result<Vec<BucketCapacity>, PageError> {
    let date = fintel_time::pacific_date(now).to_string();
    let disabled = store.disabled_key_fingerprints()?;
    let buckets = buckets_in_effect(store, configured)?;
    let mut out = Vec::with_capacity(buckets.len());
    for b in &buckets {
        let all_disabled =
            !b.keys.is_empty() && b.keys.iter().all(|k| disabled.contains(&k.fingerprint));
        let (left_today, per_day) = if all_disabled || b.keys.is_empty() {
            (0, 0)
        } else {
            let fingerprints: Vec<String> = b.keys.iter().map(|k| k.fingerprint.clone()).collect();
            store.bucket_requests_left(&b.name, &fingerprints, &b.limits, now, &date)?
        };
        out.push(BucketCapacity {
            left_today,
            per_day,
        });
    }
    Ok(out)
}

/// Fills in the quota-aware finish estimate of every batch still under way: its model
/// requests left against the buckets' capacity (the same arithmetic as `fintel plan` and
/// `fintel batch status`).
pub(crate) fn with_estimates(
    store: &Store,
    summaries: &mut [BatchSummary],
    buckets: &[BucketConfig],
    reset_buffer: std::time::Duration,
    now: Timestamp,
) -> Result<(), PageError> {
    if !summaries.iter().any(|s| s.batch.state.is_incomplete()) {
        return Ok(());
    }
    let caps = capacities(store, buckets, now)?;
    // The batches on the same keys, served by priority then age: each waits for those ahead.
    let queue: Vec<QueuedBatch> = store
        .batch_queue()?
        .into_iter()
        .map(|(id, priority, created_at, requests)| QueuedBatch {
            id,
            priority,
            created_at,
            requests,
        })
        .collect();
    for s in summaries
        .iter_mut()
        .filter(|s| s.batch.state.is_incomplete())
    {
        let this = match queue.iter().find(|q| q.id == s.batch.id) {
            Some(q) => q.clone(),
            // A stopped batch: where it would stand if resumed now.
            None => QueuedBatch {
                id: s.batch.id.clone(),
                priority: store.find_batch(&s.batch.id)?.priority,
                created_at: s.batch.created_at,
                requests: store.model_requests_left(&s.batch.id)?,
            },
        };
        (s.eta, s.ahead) = queued_eta(&queue, &this, &caps, now, reset_buffer);
    }
    Ok(())
}

/// A point of the progress chart: tasks ended by then.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProgressPoint {
    pub at: Timestamp,
    pub ended: u64,
}

/// Everything the batch page shows but its task table.
#[derive(Debug, Clone)]
pub(crate) struct BatchDetail {
    pub summary: BatchSummary,
    pub reasons: Vec<ReasonGroup>,
    pub progress: Vec<ProgressPoint>,
    /// Requests sent for this batch per Pacific quota day (refunded ones not counted).
    pub requests_per_day: Vec<(String, u64)>,
    pub input_file: Option<String>,
}

/// The batch with this id or unique prefix, with its charts' data.
pub(crate) fn batch_detail(
    store: &Store,
    id_or_prefix: &str,
    now: Timestamp,
) -> Result<BatchDetail, PageError> {
    let found = store.find_batch(id_or_prefix)?;
    let conn = store.conn();
    let tx = conn.unchecked_transaction()?;
    let batch = tx
        .prepare_cached(&format!(
            "SELECT {BATCH_COLUMNS} FROM batches WHERE id = ?1"
        ))?
        .query_row([&found.id], batch_row)
        .optional()?
        .ok_or_else(|| PageError::NotFound(format!("batch {} was just deleted", found.id)))?;
    let mut counts = TaskCounts::default();
    {
        let mut stmt = tx.prepare_cached(
            "SELECT kind, state, COUNT(*) FROM tasks WHERE batch_id = ?1 GROUP BY kind, state",
        )?;
        let mut rows = stmt.query([&batch.id])?;
        while let Some(r) = rows.next()? {
            let kind: String = r.get(0)?;
            let state: String = r.get(1)?;
            counts.add(&kind, &state, r.get::<_, i64>(2)?.max(0) as u64);
        }
    }
    let (hour, day, first) = pace(&tx, &batch.id, now)?;
    let reasons = {
        let mut stmt = tx.prepare_cached(
            "SELECT state, COALESCE(reason, '(no reason recorded)'), COUNT(*) FROM tasks \
             WHERE batch_id = ?1 AND state IN ('skipped', 'failed') \
             GROUP BY state, reason ORDER BY COUNT(*) DESC, state, reason LIMIT 200",
        )?;
        let rows = stmt.query_map([&batch.id], |r| {
            Ok(ReasonGroup {
                state: r.get(0)?,
                reason: mask_keys(&r.get::<_, String>(1)?),
                count: r.get::<_, i64>(2)?.max(0) as u64,
            })
        })?;
        fintel_store::merge_year_ranges(rows.collect::<Result<Vec<_>, _>>()?)
    };
    let progress = {
        let mut stmt = tx.prepare_cached(
            "SELECT finished_at FROM tasks WHERE batch_id = ?1 AND finished_at IS NOT NULL \
               AND (kind != 'resolve' OR state IN ('skipped', 'failed')) \
             ORDER BY finished_at",
        )?;
        let rows = stmt.query_map([&batch.id], |r| r.get::<_, i64>(0))?;
        let mut points = Vec::new();
        for (i, at) in rows.enumerate() {
            points.push(ProgressPoint {
                at: from_millis(at?),
                ended: i as u64 + 1,
            });
        }
        points
    };
    let requests_per_day = {
        let mut stmt = tx.prepare_cached(
            "SELECT quota_date, COUNT(*) FROM calls WHERE batch_id = ?1 AND refunded = 0 \
             GROUP BY quota_date ORDER BY quota_date",
        )?;
        let rows = stmt.query_map([&batch.id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
        })?;
        rows.collect::<Result<Vec<_>, _>>()?
    };
    let input_file: Option<String> = tx
        .query_row(
            "SELECT input_file FROM batches WHERE id = ?1",
            [&batch.id],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    drop(tx);
    drop(conn);
    let processes = store.live_processes(&batch.id)?;
    Ok(BatchDetail {
        summary: BatchSummary {
            batch,
            counts,
            ended_last_hour: hour,
            ended_last_day: day,
            first_started: first,
            processes,
            eta: None,
            ahead: Ahead::default(),
        },
        reasons,
        progress,
        requests_per_day,
        input_file,
    })
}

/// The task table's filters, already checked.
#[derive(Debug, Clone, Default)]
pub(crate) struct TaskFilter {
    pub state: Option<&'static str>,
    pub kind: Option<&'static str>,
    /// A ticker (or its start) or a CIK.
    pub company: Option<String>,
    pub reason: Option<String>,
    pub page: u32,
}

pub(crate) const TASK_STATES: [&str; 5] = ["pending", "running", "completed", "skipped", "failed"];
pub(crate) const TASK_KINDS: [&str; 3] = ["year", "aggregate", "resolve"];
pub(crate) const TASKS_PER_PAGE: u32 = 100;

/// One row of the task table.
#[derive(Debug, Clone)]
pub(crate) struct TaskRow {
    pub id: i64,
    pub ticker: Option<String>,
    pub cik: Option<u64>,
    pub company_name: Option<String>,
    pub kind: String,
    pub fiscal_year: Option<i32>,
    pub state: String,
    /// As results and exports count them: a completed task shows its result's attempts.
    pub attempts: u32,
    pub reason: Option<String>,
    pub form: Option<String>,
    pub updated_at: Timestamp,
}

/// A page of the batch's tasks (one more row than a page, to know whether there is a next).
pub(crate) fn tasks(
    store: &Store,
    batch_id: &str,
    filter: &TaskFilter,
) -> Result<Vec<TaskRow>, PageError> {
    let conn = store.conn();
    let company = filter
        .company
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    let cik: Option<i64> = company.and_then(|c| c.parse().ok());
    let ticker = company.map(|c| format!("{}%", c.to_ascii_uppercase().replace(['%', '_'], "")));
    let mut stmt = conn.prepare_cached(
        "SELECT t.id, c.ticker, c.cik, c.company_name, t.kind, t.fiscal_year, t.state, \
           MAX(t.attempts, COALESCE(r.attempts, 0)), t.reason, t.form, t.updated_at \
         FROM tasks t JOIN companies c ON c.id = t.company_id \
           LEFT JOIN results r ON r.id = t.result_id \
         WHERE t.batch_id = ?1 \
           AND (?2 IS NULL OR t.state = ?2) \
           AND (CASE WHEN ?3 IS NULL THEN NOT (t.kind = 'resolve' AND t.state = 'completed') \
                ELSE t.kind = ?3 END) \
           AND (?4 IS NULL OR UPPER(c.ticker) LIKE ?4 OR c.cik = ?5) \
           AND (?6 IS NULL OR t.reason = ?6) \
         ORDER BY c.id, t.kind = 'aggregate', t.fiscal_year DESC, t.id \
         LIMIT ?7 OFFSET ?8",
    )?;
    let rows = stmt.query_map(
        params![
            batch_id,
            filter.state,
            filter.kind,
            ticker,
            cik,
            filter.reason,
            TASKS_PER_PAGE + 1,
            filter.page * TASKS_PER_PAGE
        ],
        |r| {
            Ok(TaskRow {
                id: r.get(0)?,
                ticker: r.get(1)?,
                cik: r.get::<_, Option<i64>>(2)?.map(|c| c.max(0) as u64),
                company_name: r.get(3)?,
                kind: r.get(4)?,
                fiscal_year: r.get(5)?,
                state: r.get(6)?,
                attempts: r.get::<_, i64>(7)?.clamp(0, i64::from(u32::MAX)) as u32,
                reason: r.get::<_, Option<String>>(8)?.map(|s| mask_keys(&s)),
                form: r.get(9)?,
                updated_at: from_millis(r.get(10)?),
            })
        },
    )?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// A company that has stored results.
#[derive(Debug, Clone)]
pub(crate) struct CompanyResults {
    pub cik: u64,
    pub ticker: Option<String>,
    pub name: Option<String>,
    pub results: u64,
    pub first_year: Option<i32>,
    pub last_year: Option<i32>,
}

/// Companies with stored results, by ticker.
pub(crate) fn companies_with_results(store: &Store) -> Result<Vec<CompanyResults>, PageError> {
    let conn = store.conn();
    let tx = conn.unchecked_transaction()?;
    let mut names: HashMap<i64, (Option<String>, Option<String>)> = HashMap::new();
    {
        // Latest batch's spelling first.
        let mut stmt = tx.prepare_cached(
            "SELECT cik, ticker, company_name FROM companies WHERE cik IS NOT NULL ORDER BY id DESC",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let cik: i64 = r.get(0)?;
            let entry = names.entry(cik).or_insert((None, None));
            if entry.0.is_none() {
                entry.0 = r.get(1)?;
            }
            if entry.1.is_none() {
                entry.1 = r.get(2)?;
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut stmt = tx.prepare_cached(
            "SELECT cik, COUNT(*), MIN(fiscal_year), MAX(fiscal_year) FROM results GROUP BY cik",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let cik: i64 = r.get(0)?;
            let (ticker, name) = names.get(&cik).cloned().unwrap_or((None, None));
            out.push(CompanyResults {
                cik: cik.max(0) as u64,
                ticker,
                name,
                results: r.get::<_, i64>(1)?.max(0) as u64,
                first_year: r.get(2)?,
                last_year: r.get(3)?,
            });
        }
    }
    // Results kept from a deleted batch: their own rows name the company.
    for c in out
        .iter_mut()
        .filter(|c| c.ticker.is_none() && c.name.is_none())
    {
        let found: Option<(Option<String>, Option<String>)> = tx
            .query_row(
                "SELECT ticker, company_name FROM results WHERE cik = ?1 LIMIT 1",
                [c.cik as i64],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((t, n)) = found {
            c.ticker = t;
            c.name = n;
        }
    }
    out.sort_by(|a, b| {
        (a.ticker.is_none(), a.ticker.as_deref(), a.cik).cmp(&(
            b.ticker.is_none(),
            b.ticker.as_deref(),
            b.cik,
        ))
    });
    Ok(out)
}

/// A stored result with its provenance, keys masked (read by `fintel-export`, which
/// `fintel results` uses too).
pub(crate) type ResultRow = fintel_export::StoredResult;

/// A company's results (by ticker, any case, or CIK), newest fiscal year first.
pub(crate) fn company_results(
    store: &Store,
    ticker_or_cik: &str,
) -> Result<Vec<ResultRow>, PageError> {
    fintel_export::company_results(store, ticker_or_cik, None, None).map_err(export_error)
}

/// The form and document of a company's filing as some batch resolved it (the previous year
/// of a `changes` result), if recorded.
pub(crate) fn filing_document(
    store: &Store,
    cik: u64,
    accession: &str,
) -> Result<Option<(String, String)>, PageError> {
    let conn = store.conn();
    Ok(conn
        .query_row(
            "SELECT t.form, t.document_url FROM tasks t JOIN companies c ON c.id = t.company_id \
             WHERE c.cik = ?1 AND t.accession = ?2 AND t.document_url IS NOT NULL \
             ORDER BY t.id LIMIT 1",
            params![cik as i64, accession],
            |r| {
                Ok((
                    r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                    r.get::<_, String>(1)?,
                ))
            },
        )
        .optional()?)
}

/// One result by id.
pub(crate) fn result(store: &Store, id: i64) -> Result<Option<ResultRow>, PageError> {
    fintel_export::result_by_id(store, id).map_err(export_error)
}

fn export_error(e: fintel_export::ExportError) -> PageError {
    match e {
        fintel_export::ExportError::BadArgument(m) => PageError::BadRequest(m),
        e => PageError::Internal(e.to_string()),
    }
}

/// A task with its company and filing, for the filing page.
#[derive(Debug, Clone)]
pub(crate) struct TaskDetail {
    pub id: i64,
    pub batch_id: String,
    pub kind: String,
    pub state: String,
    pub reason: Option<String>,
    pub fiscal_year: Option<i32>,
    pub ticker: Option<String>,
    pub cik: Option<u64>,
    pub company_name: Option<String>,
    pub accession: Option<String>,
    pub form: Option<String>,
    pub period: Option<String>,
    pub filed: Option<String>,
    pub document_url: Option<String>,
    pub result_id: Option<i64>,
}

pub(crate) fn task(store: &Store, id: i64) -> Result<Option<TaskDetail>, PageError> {
    Ok(store
        .conn()
        .prepare_cached(
            "SELECT t.id, t.batch_id, t.kind, t.state, t.reason, t.fiscal_year, c.ticker, c.cik, \
               c.company_name, t.accession, t.form, t.period, t.filed, t.document_url, \
               t.result_id \
             FROM tasks t JOIN companies c ON c.id = t.company_id WHERE t.id = ?1",
        )?
        .query_row([id], |r| {
            Ok(TaskDetail {
                id: r.get(0)?,
                batch_id: r.get(1)?,
                kind: r.get(2)?,
                state: r.get(3)?,
                reason: r.get::<_, Option<String>>(4)?.map(|s| mask_keys(&s)),
                fiscal_year: r.get(5)?,
                ticker: r.get(6)?,
                cik: r.get::<_, Option<i64>>(7)?.map(|c| c.max(0) as u64),
                company_name: r.get(8)?,
                accession: r.get(9)?,
                form: r.get(10)?,
                period: r.get(11)?,
                filed: r.get(12)?,
                document_url: r.get(13)?,
                result_id: r.get(14)?,
            })
        })
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn years_specs_are_read_as_stored() {
        assert_eq!(years_of(r#"{"latest":7}"#), 7);
        assert_eq!(years_of(r#"{"explicit":[2018,2019,2020]}"#), 3);
        assert_eq!(years_of("garbage"), 1);
    }
}
