//! Packed requests (SPEC.md section 12) in the database: the claim of a pack of consecutive
//! fiscal years in one statement, the link of a packed call's ledger row to every task it
//! carries, and the end of a packed call: its valid parts stored as their years' results and
//! its bad parts sent back as single-year tasks, all in one transaction.

use jiff::Timestamp;
use rusqlite::{params, params_from_iter, OptionalExtension};

use crate::tasks::{claimed_from_row, write_result, CLAIM_COLUMNS};
use crate::{millis, ClaimedTask, NewResult, Store, StoreError, TaskKind};

/// Where a packed result came from: the ledger row of its call and the fiscal years that
/// call carried (its own included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedProvenance {
    pub call_id: i64,
    pub years: Vec<i32>,
}

impl PackedProvenance {
    /// The `packed_with` value: the call's fiscal years in order, comma-separated.
    pub fn packed_with(&self) -> String {
        let mut years = self.years.clone();
        years.sort_unstable();
        years
            .iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// What becomes of a year whose part of a packed answer was invalid or missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadPartEnd {
    /// Pending again as a single-year task (never packed again), one attempt counted when
    /// `charge`.
    RetryAlone { not_before: Timestamp, charge: bool },
    /// Its retries are used up.
    Fail,
}

/// A bad part of a packed answer, with its task and what was wrong.
#[derive(Debug, Clone)]
pub struct BadPart {
    pub task_id: i64,
    pub reason: String,
    pub end: BadPartEnd,
}

/// The packed claim with the lead's table and model condition filled in: `?1` batch, `?2`
/// owner, `?3` now (ms), `?4` whether model work may be claimed, `?5` the most years in a pack.
macro_rules! claim_pack_sql {
    ($lead_from:literal, $model:literal) => {
        concat!(
            "WITH lead AS MATERIALIZED ( \
       SELECT t.id, t.company_id, t.kind, t.fiscal_year, t.pack_alone, t.needs_model \
       FROM ",
            $lead_from,
            " \
       WHERE t.batch_id = ?1 AND t.state = 'pending' \
         AND (t.not_before IS NULL OR t.not_before <= ?3) \
         AND ",
            $model,
            " \
         AND (t.kind != 'aggregate' OR NOT EXISTS ( \
           SELECT 1 FROM tasks y WHERE y.company_id = t.company_id \
             AND y.kind IN ('resolve', 'year') AND y.state IN ('pending', 'running'))) \
       ORDER BY t.priority DESC, t.kind = 'aggregate', t.company_id, t.fiscal_year DESC \
       LIMIT 1), \
     cand AS MATERIALIZED ( \
       SELECT y.id, y.fiscal_year FROM lead l \
         CROSS JOIN tasks y INDEXED BY tasks_company ON y.company_id = l.company_id \
       WHERE l.kind = 'year' AND l.pack_alone = 0 AND l.needs_model = 1 AND ?5 > 1 \
         AND y.batch_id = ?1 AND y.kind = 'year' AND y.state = 'pending' \
         AND y.pack_alone = 0 AND y.needs_model = 1 \
         AND (y.not_before IS NULL OR y.not_before <= ?3) \
         AND y.fiscal_year < l.fiscal_year AND y.fiscal_year > l.fiscal_year - ?5) \
     UPDATE tasks SET state = 'running', lease_owner = ?2, updated_at = ?3, \
       started_at = COALESCE(started_at, ?3) \
     WHERE id IN ( \
       SELECT id FROM lead \
       UNION \
       SELECT c.id FROM cand c, lead l \
       WHERE (SELECT COUNT(*) FROM cand c2 WHERE c2.fiscal_year >= c.fiscal_year) \
         = l.fiscal_year - c.fiscal_year) \
     RETURNING id"
        )
    };
}

/// The packed claim, model work allowed.
const CLAIM_PACK_SQL: &str = claim_pack_sql!("tasks t", "(?4 OR t.needs_model = 0)");

/// The packed claim while no model call may go: only the tasks that need none, read through
/// their own index (`?4` is false), so a wake while the keys are spent or paced does not walk
/// every pending task of the batch to find none.
const CLAIM_FREE_SQL: &str = claim_pack_sql!(
    "tasks t INDEXED BY tasks_claim_free",
    "t.needs_model = 0 AND NOT ?4"
);

/// The statement of a packed claim.
fn claim_sql(model_allowed: bool) -> &'static str {
    if model_allowed {
        CLAIM_PACK_SQL
    } else {
        CLAIM_FREE_SQL
    }
}

impl Store {
    /// Claims the next runnable task like [`Store::claim_next`] and, when it is a yearly task
    /// that may be packed and `max_years` > 1, the pending yearly tasks of the same company for
    /// the fiscal years just before it, consecutive and at most `max_years` in all: one
    /// statement, so no other process can take part of a pack. The claimed tasks come newest
    /// year first (the task that led the claim first).
    pub fn claim_pack(
        &self,
        batch_id: &str,
        owner: &str,
        now: Timestamp,
        model_allowed: bool,
        max_years: usize,
    ) -> Result<Vec<ClaimedTask>, StoreError> {
        let conn = self.conn();
        let now = millis(now);
        // `lead` is materialised, so the rows this statement turns to running cannot change
        // which task leads. A candidate year y joins only if every year between it and the
        // lead's is a candidate too (consecutive years, no gap, no done year in between).
        // A lead that needs no model (its result is stored) goes alone.
        // The candidates are the lead company's few tasks: without statistics SQLite would
        // take the batch-wide (batch, kind, state) index and read every pending year of the
        // batch on every claim, and with `tasks_company` alone it put `tasks` in the outer
        // loop and walked that whole index; the CROSS JOIN keeps the one-row `lead` outside.
        let mut stmt = conn.prepare_cached(claim_sql(model_allowed))?;
        let ids = stmt
            .query_map(
                params![batch_id, owner, now, model_allowed, max_years as i64],
                |r| r.get::<_, i64>(0),
            )?
            .collect::<Result<Vec<i64>, _>>()?;
        drop(stmt);
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders = vec!["?"; ids.len()].join(", ");
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {CLAIM_COLUMNS} FROM tasks t JOIN companies c ON c.id = t.company_id \
             WHERE t.id IN ({placeholders}) ORDER BY t.fiscal_year DESC"
        ))?;
        let rows = stmt
            .query_map(params_from_iter(ids.iter()), claimed_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        let mut tasks = Vec::with_capacity(rows.len());
        for (mut task, kind) in rows {
            task.kind = TaskKind::parse(&kind)?;
            tasks.push(task);
        }
        Ok(tasks)
    }

    /// Links a packed call's ledger row to every task it carries (one statement).
    pub fn link_call_tasks(&self, call_id: i64, task_ids: &[i64]) -> Result<(), StoreError> {
        if task_ids.is_empty() {
            return Ok(());
        }
        let values = vec!["(?1, ?)"; task_ids.len()].join(", ");
        let mut args: Vec<i64> = vec![call_id];
        args.extend_from_slice(task_ids);
        // `?1` is the call; the anonymous `?` that follow number on from it.
        self.conn().execute(
            &format!("INSERT OR IGNORE INTO ledger_tasks (call_id, task_id) VALUES {values}"),
            params_from_iter(args.iter()),
        )?;
        Ok(())
    }

    /// Marks tasks never to be packed again (their pack could not be sent even fitted).
    pub fn set_pack_alone(&self, task_ids: &[i64]) -> Result<(), StoreError> {
        let placeholders = vec!["?"; task_ids.len()].join(", ");
        if task_ids.is_empty() {
            return Ok(());
        }
        self.conn().execute(
            &format!("UPDATE tasks SET pack_alone = 1 WHERE id IN ({placeholders})"),
            params_from_iter(task_ids.iter()),
        )?;
        Ok(())
    }

    /// The ledger rows (call ids) linked to a task, oldest first.
    pub fn calls_linked_to(&self, task_id: i64) -> Result<Vec<i64>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT call_id FROM ledger_tasks WHERE task_id = ?1 ORDER BY call_id")?;
        let ids = stmt
            .query_map([task_id], |r| r.get(0))?
            .collect::<Result<Vec<i64>, _>>()?;
        Ok(ids)
    }

    /// Ends a packed call in one transaction: each valid part is stored as its year's result
    /// together with its task's completion, recording `provenance`; each bad part sends only
    /// its year back as a single-year task (one attempt counted unless it says not), or fails
    /// it. A packed answer unusable as a whole is the same with no valid part. If any task's
    /// lease was lost nothing is written.
    pub fn complete_packed(
        &self,
        owner: &str,
        provenance: &PackedProvenance,
        valid: &[(i64, NewResult)],
        bad: &[BadPart],
        now: Timestamp,
    ) -> Result<Vec<i64>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut ids = Vec::with_capacity(valid.len());
        for (task_id, result) in valid {
            ids.push(write_result(
                &tx,
                *task_id,
                owner,
                result,
                Some(provenance),
                now,
            )?);
        }
        for part in bad {
            let n = match &part.end {
                BadPartEnd::RetryAlone { not_before, charge } => tx.execute(
                    "UPDATE tasks SET state = 'pending', lease_owner = NULL, pack_alone = 1, \
                     attempts = attempts + ?6, not_before = ?3, reason = ?4, updated_at = ?5 \
                     WHERE id = ?1 AND lease_owner = ?2 AND state = 'running'",
                    params![
                        part.task_id,
                        owner,
                        millis(*not_before),
                        part.reason,
                        millis(now),
                        u32::from(*charge)
                    ],
                )?,
                BadPartEnd::Fail => tx.execute(
                    "UPDATE tasks SET state = 'failed', lease_owner = NULL, pack_alone = 1, \
                     attempts = attempts + 1, reason = ?3, updated_at = ?4, finished_at = ?4 \
                     WHERE id = ?1 AND lease_owner = ?2 AND state = 'running'",
                    params![part.task_id, owner, part.reason, millis(now)],
                )?,
            };
            if n == 0 {
                return Err(StoreError::LeaseLost);
            }
        }
        tx.commit()?;
        Ok(ids)
    }

    /// After a packed call ended without an answer to split (quota, a transient failure, a
    /// refusal...), which the single-call handling applied to the task that led it: the other
    /// tasks of the pack follow it. Pending lead: they are pending too, with the same
    /// `not_before`, and the attempt the lead was charged (if any). Skipped or failed lead:
    /// the pack breaks up, every year (a skipped lead too) pending again as a single-year task.
    pub fn follow_pack_lead(
        &self,
        lead_id: i64,
        lead_attempts_before: u32,
        others: &[i64],
        owner: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let lead: Option<(String, u32, Option<i64>, Option<String>)> = tx
            .query_row(
                "SELECT state, attempts, not_before, reason FROM tasks WHERE id = ?1",
                [lead_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let Some((state, attempts, not_before, reason)) = lead else {
            return Err(StoreError::LeaseLost);
        };
        let charged = attempts.saturating_sub(lead_attempts_before);
        let breaks_up = state == "skipped" || state == "failed";
        if state == "skipped" {
            tx.execute(
                "UPDATE tasks SET state = 'pending', pack_alone = 1, finished_at = NULL, \
                 updated_at = ?2 WHERE id = ?1 AND state = 'skipped'",
                params![lead_id, millis(now)],
            )?;
        }
        for id in others {
            tx.execute(
                "UPDATE tasks SET state = 'pending', lease_owner = NULL, \
                 attempts = attempts + ?3, not_before = ?4, reason = COALESCE(?5, reason), \
                 pack_alone = MAX(pack_alone, ?6), updated_at = ?7 \
                 WHERE id = ?1 AND lease_owner = ?2 AND state = 'running'",
                params![
                    id,
                    owner,
                    charged,
                    if breaks_up { None } else { not_before },
                    reason,
                    breaks_up,
                    millis(now)
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FilingRef, YearPlan};

    const OWNER: &str = "p1";

    fn t(ms: i64) -> Timestamp {
        crate::from_millis(ms)
    }

    /// A batch with one company whose yearly tasks cover `years`; the years in `done` are
    /// already completed and those in `alone` may not be packed.
    fn company_with_years(dir: &std::path::Path, years: &[i32], done: &[i32]) -> Store {
        let s = Store::open(&dir.join("fintel.db")).unwrap();
        s.conn()
            .execute_batch(
                "INSERT INTO batches (id, created_at, updated_at, state, analysis_type, \
                   analysis_version, workflow, years_spec, as_of_date, model, settings) \
                 VALUES ('b1', 1, 1, 'running', 't', 'v', '', '{}', '2026-01-01', 'm', '{}'); \
                 INSERT INTO companies (id, batch_id, ticker, cik) VALUES (1, 'b1', 'ACME', 42); \
                 INSERT INTO tasks (id, batch_id, company_id, kind, state, created_at, updated_at) \
                 VALUES (1, 'b1', 1, 'resolve', 'pending', 1, 1);",
            )
            .unwrap();
        let resolve = s.claim_next("b1", OWNER, t(1), true).unwrap().unwrap();
        let plans: Vec<YearPlan> = years
            .iter()
            .map(|&y| YearPlan {
                fiscal_year: y,
                filing: Some(FilingRef {
                    accession: format!("acc-{y}"),
                    form: "10-K".into(),
                    period: Some(format!("{y}-12-31")),
                    filed: None,
                    document_url: format!("https://sec.test/{y}"),
                    transition: false,
                }),
                skip_reason: None,
            })
            .collect();
        s.complete_resolution(resolve.id, OWNER, &plans, true, false, None, t(2))
            .unwrap();
        for y in done {
            s.conn()
                .execute(
                    "UPDATE tasks SET state = 'completed' WHERE fiscal_year = ?1",
                    [y],
                )
                .unwrap();
        }
        s
    }

    fn claim_years(s: &Store, max: usize) -> Vec<i32> {
        s.claim_pack("b1", OWNER, t(10), true, max)
            .unwrap()
            .iter()
            .map(|t| t.fiscal_year.unwrap())
            .collect()
    }

    #[test]
    fn a_packed_claim_takes_consecutive_pending_years_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        // 2020 is done: it breaks the run.
        let s = company_with_years(dir.path(), &[2017, 2018, 2019, 2020, 2021, 2022], &[2020]);
        assert_eq!(claim_years(&s, 2), [2022, 2021]);
        assert_eq!(claim_years(&s, 2), [2019, 2018]);
        assert_eq!(claim_years(&s, 2), [2017]);
        assert!(claim_years(&s, 2).is_empty());
    }

    #[test]
    fn a_packed_claim_skips_over_nothing_and_respects_alone_and_backoff() {
        let dir = tempfile::tempdir().unwrap();
        let s = company_with_years(dir.path(), &[2019, 2020, 2021, 2022, 2023, 2024], &[]);
        // 2023 waits for a backoff: 2024 goes alone, since 2022 is not next to it.
        s.conn()
            .execute(
                "UPDATE tasks SET not_before = 1000 WHERE fiscal_year = 2023",
                [],
            )
            .unwrap();
        // 2021 was sent back alone after a bad part.
        s.conn()
            .execute(
                "UPDATE tasks SET pack_alone = 1 WHERE fiscal_year = 2021",
                [],
            )
            .unwrap();
        assert_eq!(claim_years(&s, 3), [2024]);
        assert_eq!(claim_years(&s, 3), [2022]);
        assert_eq!(claim_years(&s, 3), [2021], "alone, and it leads nobody");
        assert_eq!(claim_years(&s, 3), [2020, 2019]);
        // Off: one at a time.
        s.conn()
            .execute(
                "UPDATE tasks SET state = 'pending', lease_owner = NULL WHERE kind = 'year'",
                [],
            )
            .unwrap();
        assert_eq!(claim_years(&s, 1), [2024]);
    }

    #[test]
    fn a_packed_call_stores_valid_parts_and_sends_bad_ones_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let s = company_with_years(dir.path(), &[2021, 2022, 2023], &[]);
        let tasks = s.claim_pack("b1", OWNER, t(10), true, 3).unwrap();
        let ids: Vec<i64> = tasks.iter().map(|t| t.id).collect();
        let intent = crate::CallIntent {
            bucket: "b",
            key_fingerprint: None,
            bucket_keys: &[],
            batch_id: Some("b1"),
            task_id: Some(ids[0]),
            purpose: crate::CallPurpose::Generate,
            input_tokens: 10,
        };
        let limits = crate::BucketLimits {
            requests_per_day: 10,
            requests_per_minute: 10,
            input_tokens_per_minute: 1_000,
        };
        let call = s
            .reserve_call(&intent, &limits, t(10), "2026-01-01")
            .unwrap()
            .unwrap();
        s.link_call_tasks(call, &ids).unwrap();
        for id in &ids {
            assert_eq!(s.calls_linked_to(*id).unwrap(), [call]);
        }
        let result = |y: i32| NewResult {
            result_key: format!("42/acc-{y}/t/v/m"),
            cik: 42,
            fiscal_year: Some(y),
            analysis_type: "t".into(),
            analysis_version: "v".into(),
            model: "m".into(),
            json: "{}".into(),
            ..Default::default()
        };
        let provenance = PackedProvenance {
            call_id: call,
            years: vec![2023, 2022, 2021],
        };
        let bad = [
            BadPart {
                task_id: ids[1],
                reason: "fy2022 invalid".into(),
                end: BadPartEnd::RetryAlone {
                    not_before: t(500),
                    charge: true,
                },
            },
            BadPart {
                task_id: ids[2],
                reason: "fy2021 missing".into(),
                end: BadPartEnd::Fail,
            },
        ];
        // Someone else's lease on one task: nothing at all is written.
        s.conn()
            .execute(
                "UPDATE tasks SET lease_owner = 'p2' WHERE id = ?1",
                [ids[2]],
            )
            .unwrap();
        let lost = s.complete_packed(OWNER, &provenance, &[(ids[0], result(2023))], &bad, t(20));
        assert!(matches!(lost, Err(StoreError::LeaseLost)));
        assert_eq!(s.result_count().unwrap(), 0);
        s.conn()
            .execute(
                "UPDATE tasks SET lease_owner = ?2 WHERE id = ?1",
                params![ids[2], OWNER],
            )
            .unwrap();

        s.complete_packed(OWNER, &provenance, &[(ids[0], result(2023))], &bad, t(20))
            .unwrap();
        let row = |id: i64| -> (String, u32, i64) {
            s.conn()
                .query_row(
                    "SELECT state, attempts, pack_alone FROM tasks WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .unwrap()
        };
        assert_eq!(row(ids[0]), ("completed".into(), 0, 0));
        assert_eq!(row(ids[1]), ("pending".into(), 1, 1));
        assert_eq!(row(ids[2]), ("failed".into(), 1, 1));
        let (call_id, packed_with): (i64, String) = s
            .conn()
            .query_row("SELECT call_id, packed_with FROM results", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((call_id, packed_with.as_str()), (call, "2021,2022,2023"));

        // The same key answered alone later (a forced redo) clears the packed provenance.
        s.conn()
            .execute(
                "UPDATE tasks SET state = 'running', lease_owner = ?2 WHERE id = ?1",
                params![ids[0], OWNER],
            )
            .unwrap();
        let mut redo = result(2023);
        redo.supersede = true;
        s.complete_with_result(ids[0], OWNER, &redo, t(30)).unwrap();
        let packed_with: Option<String> = s
            .conn()
            .query_row("SELECT packed_with FROM results", [], |r| r.get(0))
            .unwrap();
        assert_eq!(packed_with, None);
        let kept: String = s
            .conn()
            .query_row("SELECT packed_with FROM superseded_results", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(
            kept, "2021,2022,2023",
            "the replaced answer keeps its provenance"
        );
    }

    #[test]
    fn the_other_years_follow_the_lead_of_a_packed_call_that_had_no_answer() {
        let dir = tempfile::tempdir().unwrap();
        let s = company_with_years(dir.path(), &[2021, 2022, 2023, 2024], &[]);
        let tasks = s.claim_pack("b1", OWNER, t(10), true, 2).unwrap();
        let (lead, other) = (tasks[0].id, tasks[1].id);
        // A transient failure charged the lead an attempt and set a backoff.
        s.retry_task(lead, OWNER, t(900), "503", t(20)).unwrap();
        s.follow_pack_lead(lead, 0, &[other], OWNER, t(20)).unwrap();
        let row = |id: i64| -> (String, u32, Option<i64>, i64) {
            s.conn()
                .query_row(
                    "SELECT state, attempts, not_before, pack_alone FROM tasks WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .unwrap()
        };
        assert_eq!(row(other), ("pending".into(), 1, Some(900), 0));
        // A refusal skipped the lead of the next pack: both years go back, alone.
        let tasks = s.claim_pack("b1", OWNER, t(10), true, 2).unwrap();
        let (lead, other) = (tasks[0].id, tasks[1].id);
        assert_eq!(tasks.len(), 2);
        s.skip_task(lead, OWNER, "refused", t(20)).unwrap();
        s.follow_pack_lead(lead, 0, &[other], OWNER, t(20)).unwrap();
        assert_eq!(row(lead), ("pending".into(), 0, None, 1));
        assert_eq!(row(other), ("pending".into(), 0, None, 1));
    }

    /// The lines of the claim's query plan that read the tasks table without an index search
    /// (`SCAN t`, `SCAN y USING INDEX ...`: every task of the database on every claim).
    fn task_scans(s: &Store) -> Vec<String> {
        let mut scans: Vec<String> = [true, false]
            .into_iter()
            .flat_map(|model_allowed| claim_plan(s, model_allowed))
            .filter(|l| {
                let mut words = l.split_whitespace();
                words.next() == Some("SCAN") && matches!(words.next(), Some("t" | "y" | "tasks"))
            })
            .collect();
        scans.dedup();
        scans
    }

    fn claim_plan(s: &Store, model_allowed: bool) -> Vec<String> {
        let conn = s.conn();
        let sql = claim_sql(model_allowed);
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let lines = stmt
            .query_map(params!["b1", OWNER, 10_i64, model_allowed, 2_i64], |r| {
                r.get::<_, String>(3)
            })
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        lines
    }

    /// A packed claim reads the lead's company by index, not every task of the database: with
    /// and without the statistics the daily maintenance gathers.
    #[test]
    fn the_packed_claim_searches_the_tasks_by_index_and_never_scans_them() {
        let dir = tempfile::tempdir().unwrap();
        let s = company_with_years(dir.path(), &[2020, 2021, 2022], &[]);
        assert_eq!(task_scans(&s), Vec::<String>::new());
        // A batch of 300 companies x 7 years beside it, half of it done, then ANALYZE.
        s.conn()
            .execute_batch(
                "WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n WHERE i < 301) \
                 INSERT INTO companies (id, batch_id, ticker, cik) \
                 SELECT i, 'b1', 'T' || i, 1000 + i FROM n; \
                 WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n WHERE i < 301), \
                   y(fy) AS (SELECT 2018 UNION ALL SELECT fy + 1 FROM y WHERE fy < 2024) \
                 INSERT INTO tasks (batch_id, company_id, kind, fiscal_year, state, created_at, \
                   updated_at) \
                 SELECT 'b1', i, 'year', fy, CASE WHEN i % 2 = 0 THEN 'completed' \
                   ELSE 'pending' END, 1, 1 FROM n, y; \
                 ANALYZE;",
            )
            .unwrap();
        assert_eq!(task_scans(&s), Vec::<String>::new());
        assert_eq!(claim_years(&s, 2), [2022, 2021]);
    }

    /// While no model call may go, a claim reads only the tasks that need none: a wake while
    /// the keys are paced must not walk every pending model task of the batch to find none.
    #[test]
    fn a_claim_without_model_work_reads_only_the_tasks_that_need_no_model() {
        let dir = tempfile::tempdir().unwrap();
        let s = company_with_years(dir.path(), &[2021, 2022], &[]);
        let plan = claim_plan(&s, false);
        assert!(
            plan.iter()
                .any(|l| l.starts_with("SEARCH t USING INDEX tasks_claim_free")),
            "{plan:#?}"
        );
        assert!(s
            .claim_pack("b1", OWNER, t(10), false, 2)
            .unwrap()
            .is_empty());
        s.conn()
            .execute(
                "UPDATE tasks SET needs_model = 0 WHERE fiscal_year = 2021",
                [],
            )
            .unwrap();
        let free: Vec<i32> = s
            .claim_pack("b1", OWNER, t(10), false, 2)
            .unwrap()
            .iter()
            .map(|t| t.fiscal_year.unwrap())
            .collect();
        assert_eq!(free, [2021], "a task with its result stored goes alone");
        assert_eq!(claim_years(&s, 2), [2022]);
    }
}
