//! What the store keeps for decisions in real weather (SPEC.md sections 2 and 3): when a
//! task's streak of transient failures began, and the provider's token counts of requests.

use jiff::Timestamp;
use rusqlite::{params, OptionalExtension};

use crate::{from_millis, millis, Store, StoreError};

impl Store {
    /// Notes a transient failure of a task and returns when its streak began (`now` for the
    /// first failure of a streak).
    pub fn note_transient_failure(
        &self,
        task_id: i64,
        now: Timestamp,
    ) -> Result<Timestamp, StoreError> {
        let since: Option<i64> = self
            .conn()
            .query_row(
                "UPDATE tasks SET transient_since = COALESCE(transient_since, ?2) WHERE id = ?1 \
                 RETURNING transient_since",
                params![task_id, millis(now)],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        Ok(since.map(from_millis).unwrap_or(now))
    }

    /// Ends a task's streak of transient failures (it got an answer, good or bad).
    pub fn end_transient_streak(&self, task_id: i64) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE tasks SET transient_since = NULL WHERE id = ?1 AND transient_since IS NOT NULL",
            [task_id],
        )?;
        Ok(())
    }

    /// The provider's count of a request's input tokens, if it was measured before.
    pub fn token_count(
        &self,
        request_sha256: &str,
        model: &str,
    ) -> Result<Option<u64>, StoreError> {
        let n: Option<i64> = self
            .conn()
            .query_row(
                "SELECT tokens FROM token_counts WHERE request_sha256 = ?1 AND model = ?2",
                params![request_sha256, model],
                |r| r.get(0),
            )
            .optional()?;
        Ok(n.map(|n| n as u64))
    }

    /// Stores the provider's count of a request's input tokens.
    pub fn save_token_count(
        &self,
        request_sha256: &str,
        model: &str,
        tokens: u64,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO token_counts (request_sha256, model, tokens, counted_at) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (request_sha256, model) \
             DO UPDATE SET tokens = excluded.tokens, counted_at = excluded.counted_at",
            params![request_sha256, model, tokens as i64, millis(now)],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streak_begins_once_and_ends_on_an_answer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("f.db")).unwrap();
        store
            .conn()
            .execute_batch(
                "INSERT INTO batches (id, created_at, updated_at, state, analysis_type,
                     analysis_version, workflow, years_spec, as_of_date, model, settings)
                 VALUES ('b1', 1, 1, 'running', 't', 'v', '{}', '{}', '2026-01-01', 'm', '{}');
                 INSERT INTO companies (id, batch_id, ticker, cik) VALUES (1, 'b1', 'A', 1);
                 INSERT INTO tasks (id, batch_id, company_id, kind, state, created_at, updated_at)
                 VALUES (7, 'b1', 1, 'year', 'running', 1, 1);",
            )
            .unwrap();
        let t1: Timestamp = "2026-06-15T07:05:00Z".parse().unwrap();
        let t2: Timestamp = "2026-06-15T07:35:00Z".parse().unwrap();
        assert_eq!(store.note_transient_failure(7, t1).unwrap(), t1);
        assert_eq!(store.note_transient_failure(7, t2).unwrap(), t1);
        store.end_transient_streak(7).unwrap();
        assert_eq!(store.note_transient_failure(7, t2).unwrap(), t2);

        assert_eq!(store.token_count("abc", "m").unwrap(), None);
        store.save_token_count("abc", "m", 1234, t1).unwrap();
        assert_eq!(store.token_count("abc", "m").unwrap(), Some(1234));
        assert_eq!(store.token_count("abc", "other").unwrap(), None);
    }
}
