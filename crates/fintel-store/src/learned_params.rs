//! Request parameters a provider refused for a model, and what fintel does about them from
//! then on (`drop`, `rename:NEW`). One row per provider, model and parameter: the first
//! process to learn it writes it, and every process reads it before building a request, so a
//! refusal is met once, not once per process.

use jiff::Timestamp;
use rusqlite::params;

use crate::{millis, Store, StoreError};

/// One learned rule as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnedParamRow {
    pub param: String,
    /// `drop` or `rename:NEW`.
    pub action: String,
    /// The provider's message that taught it.
    pub message: Option<String>,
}

impl Store {
    /// The rules learned for `model` of `provider`, oldest first.
    pub fn learned_params(
        &self,
        provider: &str,
        model: &str,
    ) -> Result<Vec<LearnedParamRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT param, action, message FROM learned_params \
             WHERE provider = ?1 AND model = ?2 ORDER BY learned_at, param",
        )?;
        let rows = stmt
            .query_map(params![provider, model], |r| {
                Ok(LearnedParamRow {
                    param: r.get(0)?,
                    action: r.get(1)?,
                    message: r.get(2)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Stores a rule unless one for the same parameter is already there (another process
    /// learned it first). True when this call wrote it.
    pub fn learn_param(
        &self,
        provider: &str,
        model: &str,
        row: &LearnedParamRow,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "INSERT INTO learned_params (provider, model, param, action, message, learned_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (provider, model, param) DO NOTHING",
            params![
                provider,
                model,
                row.param,
                row.action,
                row.message,
                millis(now)
            ],
        )?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_is_written_once_and_read_per_model() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("f.db")).unwrap();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let row = LearnedParamRow {
            param: "max_tokens".into(),
            action: "rename:max_completion_tokens".into(),
            message: Some("Unsupported parameter".into()),
        };
        assert!(store
            .learn_param("openai-compatible", "gpt-x", &row, now)
            .unwrap());
        let other = LearnedParamRow {
            action: "drop".into(),
            ..row.clone()
        };
        assert!(!store
            .learn_param("openai-compatible", "gpt-x", &other, now)
            .unwrap());
        assert_eq!(
            store.learned_params("openai-compatible", "gpt-x").unwrap(),
            vec![row]
        );
        assert!(store
            .learned_params("openai-compatible", "gpt-y")
            .unwrap()
            .is_empty());
        assert!(store.learned_params("gemini", "gpt-x").unwrap().is_empty());
    }
}
