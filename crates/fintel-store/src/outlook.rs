//! What is still ahead of a batch, read the same way by every view: the planned number of
//! tasks (companies x years from the first moment, corrected as filings resolve) and the model
//! requests still to send, which the quota-aware finish estimate is computed from.

use rusqlite::{params, OptionalExtension};
use serde_json::Value;

use jiff::Timestamp;

use crate::{BucketLimits, Store, StoreError};

/// Tasks a company is expected to bring once its filings are resolved: one per fiscal year
/// asked for, and an aggregate task for a multi-year analysis (`min_years > 1`).
///
/// `years_spec` is the stored JSON (`{"latest": N}` or `{"explicit": [years]}`); one that
/// cannot be read counts as one year, so a total is never zero for a company still to resolve.
pub fn tasks_per_company(years_spec: &str, min_years: u32) -> u64 {
    let v: Value = serde_json::from_str(years_spec).unwrap_or(Value::Null);
    let years = if let Some(n) = v.get("latest").and_then(Value::as_u64) {
        n
    } else if let Some(a) = v.get("explicit").and_then(Value::as_array) {
        a.len() as u64
    } else {
        1
    };
    years.max(1) + u64::from(min_years > 1)
}

impl Store {
    /// A bucket's (its keys `keys`) requests left before the next reset (none while the provider says the day
    /// is spent) and what a full quota day gives it, from the ledger at `now`.
    pub fn bucket_requests_left(
        &self,
        bucket: &str,
        keys: &[String],
        limits: &BucketLimits,
        now: Timestamp,
        quota_date: &str,
    ) -> Result<(u64, u64), StoreError> {
        let usage = self.bucket_standing(bucket, keys, now, quota_date)?;
        let per_day = u64::from(limits.requests_per_day);
        let left_today = if usage.exhausted_until.is_some() {
            0
        } else {
            per_day.saturating_sub(u64::from(usage.used_today))
        };
        Ok((left_today, per_day))
    }

    /// The batches that share the key pool now (pending, running or waiting: not stopped,
    /// cancelled or completed) with the model requests each still has to send, as
    /// `(id, priority, created_at, requests)`.
    pub fn batch_queue(&self) -> Result<Vec<(String, i64, Timestamp, u64)>, StoreError> {
        let live: Vec<(String, i64, i64)> = {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT id, priority, created_at FROM batches \
                 WHERE state IN ('pending', 'running', 'waiting_reset', 'waiting_provider', \
                   'waiting_disk') ORDER BY priority DESC, created_at, id",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut out = Vec::with_capacity(live.len());
        for (id, priority, created) in live {
            let requests = self.model_requests_left(&id)?;
            out.push((id, priority, crate::from_millis(created), requests));
        }
        Ok(out)
    }

    /// Model tasks the batches `batch_ids` still have open for company `cik` with this
    /// analysis (pending or running, and those its unresolved company will bring): work a new
    /// batch of the same company would reuse once they store it, not ask again.
    pub fn open_model_tasks_of_company(
        &self,
        batch_ids: &[String],
        cik: u64,
        analysis_type: &str,
        analysis_version: &str,
    ) -> Result<u64, StoreError> {
        let ids = serde_json::to_string(batch_ids).unwrap_or_else(|_| "[]".to_string());
        let conn = self.conn();
        let open: i64 = conn.query_row(
            "SELECT COUNT(*) FROM tasks t JOIN companies c ON c.id = t.company_id \
             JOIN batches b ON b.id = t.batch_id \
             WHERE b.id IN (SELECT value FROM json_each(?1)) AND c.cik = ?2 \
               AND b.analysis_type = ?3 AND b.analysis_version = ?4 AND t.kind != 'resolve' \
               AND t.needs_model = 1 AND t.state IN ('pending', 'running')",
            params![ids, cik as i64, analysis_type, analysis_version],
            |r| r.get(0),
        )?;
        let mut stmt = conn.prepare(
            "SELECT b.years_spec, b.min_years FROM tasks t JOIN companies c ON c.id = t.company_id \
             JOIN batches b ON b.id = t.batch_id \
             WHERE b.id IN (SELECT value FROM json_each(?1)) AND c.cik = ?2 \
               AND b.analysis_type = ?3 AND b.analysis_version = ?4 AND t.kind = 'resolve' \
               AND t.state IN ('pending', 'running')",
        )?;
        let unresolved = stmt
            .query_map(
                params![ids, cik as i64, analysis_type, analysis_version],
                |r| Ok(tasks_per_company(&r.get::<_, String>(0)?, r.get(1)?)),
            )?
            .collect::<Result<Vec<u64>, _>>()?;
        Ok(open.max(0) as u64 + unresolved.iter().sum::<u64>())
    }

    /// Model requests a batch still has to send: one per open task that asks the model, plus,
    /// for companies still to resolve, one per task they are expected to bring (when the batch
    /// asks a model at all). Repairs and retries are not foreseen: this is the least it needs.
    pub fn model_requests_left(&self, batch_id: &str) -> Result<u64, StoreError> {
        let conn = self.conn();
        let spec: Option<(String, u32)> = conn
            .query_row(
                "SELECT years_spec, min_years FROM batches WHERE id = ?1",
                [batch_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((years_spec, min_years)) = spec else {
            return Err(StoreError::BatchNotFound(batch_id.to_string()));
        };
        let (open_model, resolving, model_tasks, other_tasks): (i64, i64, i64, i64) = conn
            .query_row(
                "SELECT \
                   COALESCE(SUM(kind != 'resolve' AND needs_model = 1 \
                                AND state IN ('pending', 'running')), 0), \
                   COALESCE(SUM(kind = 'resolve' AND state IN ('pending', 'running')), 0), \
                   COALESCE(SUM(kind != 'resolve' AND needs_model = 1), 0), \
                   COALESCE(SUM(kind != 'resolve' AND needs_model = 0), 0) \
                 FROM tasks WHERE batch_id = ?1",
                params![batch_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?;
        // Until a company is resolved the batch's tasks say whether it asks a model; a batch
        // whose resolved tasks all go without one (XBRL financials) needs no quota for the rest.
        let asks_model = model_tasks > 0 || other_tasks == 0;
        let unresolved = if asks_model {
            resolving.max(0) as u64 * tasks_per_company(&years_spec, min_years)
        } else {
            0
        };
        Ok(open_model.max(0) as u64 + unresolved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_per_company_from_the_stored_years() {
        let table = [
            (r#"{"latest":7}"#, 1, 7),
            (r#"{"latest":3}"#, 3, 4),
            (r#"{"explicit":[2019,2021]}"#, 1, 2),
            (r#"{"explicit":[]}"#, 1, 1),
            ("not json", 1, 1),
        ];
        for (spec, min_years, expected) in table {
            assert_eq!(tasks_per_company(spec, min_years), expected, "{spec}");
        }
    }
}
