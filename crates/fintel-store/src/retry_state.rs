//! The state of a retry inside an attempt (SPEC.md section 2: a repair belongs to the attempt
//! of the answer it repairs; a cut-off answer is retried once with less thinking), kept in the
//! database from the moment it is decided, so a retry that must wait for quota, or whose
//! process is killed, goes on where it was instead of sending the original request again.

use jiff::Timestamp;
use rusqlite::{params, OptionalExtension};

use crate::{millis, Store, StoreError};

/// A task's retry in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryState {
    /// The task's attempts when the retry was decided: the state belongs to that attempt.
    pub attempt: u32,
    /// The tasks the call carried, in order (a pack's; the task alone otherwise).
    pub carried: Vec<i64>,
    /// The request goes with less thinking.
    pub thinking_lowered: bool,
    /// The unusable answer to repair and what was wrong with it.
    pub repair: Option<(String, String)>,
    /// What the attempt has spent so far.
    pub spent: AttemptSpent,
}

/// The calls and tokens of an attempt's calls so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttemptSpent {
    pub calls: u32,
    pub prompt_tokens: u64,
    pub output_tokens: u64,
    pub thinking_tokens: u64,
}

impl Store {
    /// Records (or replaces) the retry in progress of `task_id`.
    pub fn save_retry_state(
        &self,
        task_id: i64,
        state: &RetryState,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let carried = state
            .carried
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let (answer, problem) = match &state.repair {
            Some((a, p)) => (Some(a.as_str()), Some(p.as_str())),
            None => (None, None),
        };
        self.conn().execute(
            "INSERT INTO retry_states (task_id, attempt, carried, thinking_lowered, \
               repair_answer, repair_problem, calls, prompt_tokens, output_tokens, \
               thinking_tokens, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
             ON CONFLICT (task_id) DO UPDATE SET attempt = excluded.attempt, \
               carried = excluded.carried, thinking_lowered = excluded.thinking_lowered, \
               repair_answer = excluded.repair_answer, repair_problem = excluded.repair_problem, \
               calls = excluded.calls, prompt_tokens = excluded.prompt_tokens, \
               output_tokens = excluded.output_tokens, \
               thinking_tokens = excluded.thinking_tokens, updated_at = excluded.updated_at",
            params![
                task_id,
                state.attempt,
                carried,
                state.thinking_lowered,
                answer,
                problem,
                state.spent.calls,
                state.spent.prompt_tokens as i64,
                state.spent.output_tokens as i64,
                state.spent.thinking_tokens as i64,
                millis(now)
            ],
        )?;
        Ok(())
    }

    /// The retry in progress of `task_id`, if one was recorded.
    pub fn retry_state(&self, task_id: i64) -> Result<Option<RetryState>, StoreError> {
        type Row = (
            u32,
            String,
            bool,
            Option<String>,
            Option<String>,
            AttemptSpent,
        );
        let row: Option<Row> = self
            .conn()
            .query_row(
                "SELECT attempt, carried, thinking_lowered, repair_answer, repair_problem, \
                   calls, prompt_tokens, output_tokens, thinking_tokens \
                 FROM retry_states WHERE task_id = ?1",
                [task_id],
                |r| {
                    let spent = AttemptSpent {
                        calls: r.get(5)?,
                        prompt_tokens: r.get::<_, i64>(6)?.max(0) as u64,
                        output_tokens: r.get::<_, i64>(7)?.max(0) as u64,
                        thinking_tokens: r.get::<_, i64>(8)?.max(0) as u64,
                    };
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, spent))
                },
            )
            .optional()?;
        let Some((attempt, carried, thinking_lowered, answer, problem, spent)) = row else {
            return Ok(None);
        };
        let carried = carried
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<i64>().map_err(|_| {
                    StoreError::Invalid(format!(
                        "the retry state of task {task_id} names tasks {carried:?}"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(RetryState {
            attempt,
            carried,
            thinking_lowered,
            repair: answer.map(|a| (a, problem.unwrap_or_default())),
            spent,
        }))
    }

    /// Forgets the retry in progress of `task_id`: its attempt ended.
    pub fn clear_retry_state(&self, task_id: i64) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM retry_states WHERE task_id = ?1", [task_id])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_state_is_saved_replaced_read_back_and_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("fintel.db")).unwrap();
        s.conn()
            .execute_batch(
                "INSERT INTO batches (id, created_at, updated_at, state, analysis_type, \
                   analysis_version, workflow, years_spec, as_of_date, model, settings) \
                 VALUES ('b1', 1, 1, 'running', 't', 'v', '', '{}', '2026-01-01', 'm', '{}'); \
                 INSERT INTO companies (id, batch_id, ticker, cik) VALUES (1, 'b1', 'ACME', 42); \
                 INSERT INTO tasks (id, batch_id, company_id, kind, state, created_at, updated_at) \
                 VALUES (7, 'b1', 1, 'year', 'running', 1, 1);",
            )
            .unwrap();
        assert_eq!(s.retry_state(7).unwrap(), None);
        let lowered = RetryState {
            attempt: 1,
            carried: vec![7],
            thinking_lowered: true,
            repair: None,
            spent: AttemptSpent {
                calls: 1,
                prompt_tokens: 100_000,
                output_tokens: 16_384,
                thinking_tokens: 15_000,
            },
        };
        s.save_retry_state(7, &lowered, crate::from_millis(10))
            .unwrap();
        assert_eq!(s.retry_state(7).unwrap(), Some(lowered.clone()));
        // Then its answer needs repair too: the one row now says both.
        let both = RetryState {
            carried: vec![7, 8],
            repair: Some(("{\"a\": ".into(), "EOF while parsing".into())),
            spent: AttemptSpent {
                calls: 2,
                ..lowered.spent
            },
            ..lowered
        };
        s.save_retry_state(7, &both, crate::from_millis(20))
            .unwrap();
        assert_eq!(s.retry_state(7).unwrap(), Some(both));
        s.clear_retry_state(7).unwrap();
        assert_eq!(s.retry_state(7).unwrap(), None);
        // A deleted batch takes its tasks' states with it.
        s.save_retry_state(
            7,
            &RetryState {
                attempt: 0,
                carried: vec![],
                thinking_lowered: false,
                repair: None,
                spent: AttemptSpent::default(),
            },
            crate::from_millis(30),
        )
        .unwrap();
        s.conn().execute("DELETE FROM tasks", []).unwrap();
        let left: i64 = s
            .conn()
            .query_row("SELECT COUNT(*) FROM retry_states", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
    }
}
