//! The pending tasks that still count as model work, for the engine to find those that need
//! no model request after all (a stored result to reuse, an aggregate with too few years),
//! and the statement that lets them be claimed while the keys are spent.

use rusqlite::params;

use crate::{Store, StoreError, TaskKind};

/// A pending task marked as needing the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingModelTask {
    pub id: i64,
    pub kind: TaskKind,
    pub company_id: i64,
    pub cik: Option<u64>,
    /// The year's filing (none for an aggregate).
    pub accession: Option<String>,
    /// The company still has a resolution or a year pending or running (an aggregate waits
    /// for them).
    pub company_busy: bool,
}

impl Store {
    /// The batch's pending tasks that need the model.
    pub fn pending_model_tasks(&self, batch_id: &str) -> Result<Vec<PendingModelTask>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT t.id, t.kind, t.company_id, c.cik, t.accession, \
               EXISTS (SELECT 1 FROM tasks y WHERE y.company_id = t.company_id \
                 AND y.kind IN ('resolve', 'year') AND y.state IN ('pending', 'running')) \
             FROM tasks t JOIN companies c ON c.id = t.company_id \
             WHERE t.batch_id = ?1 AND t.state = 'pending' AND t.needs_model = 1 \
             ORDER BY t.id",
        )?;
        let rows = stmt.query_map([batch_id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, bool>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, kind, company_id, cik, accession, company_busy) = row?;
            out.push(PendingModelTask {
                id,
                kind: TaskKind::parse(&kind)?,
                company_id,
                cik: cik.map(|c| c as u64),
                accession,
                company_busy,
            });
        }
        Ok(out)
    }

    /// Marks pending tasks as needing no model request, so they are claimed even while no key
    /// can send; returns how many were marked.
    pub fn mark_needs_no_model(&self, task_ids: &[i64]) -> Result<u64, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "UPDATE tasks SET needs_model = 0 WHERE id = ?1 AND state = 'pending'",
        )?;
        let mut n = 0;
        for id in task_ids {
            n += stmt.execute(params![id])? as u64;
        }
        Ok(n)
    }
}
