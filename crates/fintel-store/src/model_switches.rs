//! A batch's model switches (`fintel batch --resume ID --switch-model NEW`) and the models its
//! results come from.
//!
//! A batch pins its model, but models retire: a batch stopped on a retired model may go on
//! with another one. The switch is recorded with its time; the batch's model becomes the new
//! one for the tasks still to run, and every stored result keeps the model that produced it.

use jiff::Timestamp;
use rusqlite::params;
use serde::Serialize;

use crate::{from_millis, millis, Store, StoreError};

/// One switch of a batch's model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelSwitch {
    #[serde(serialize_with = "crate::model_switches::rfc3339")]
    pub at: Timestamp,
    pub from_model: String,
    pub to_model: String,
}

fn rfc3339<S: serde::Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_string())
}

/// How many of a batch's results one model produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelResults {
    pub model: String,
    pub results: u64,
}

/// Why a switch was not recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchRefused {
    /// The batch already analyses with that model.
    SameModel,
    /// The batch is completed or cancelled: there is nothing left for a model to do.
    Ended(crate::BatchState),
    /// The batch's model changed under this process (another switch): nothing written.
    ModelChanged { now: String },
}

impl Store {
    /// Records that `batch_id` goes on with `to` instead of `from`, and makes `to` the batch's
    /// model, in one transaction. Stored results are not touched. Refused (nothing written)
    /// for the same model, an ended batch, or a batch whose model is no longer `from`.
    pub fn switch_batch_model(
        &self,
        batch_id: &str,
        from: &str,
        to: &str,
        now: Timestamp,
    ) -> Result<Result<(), SwitchRefused>, StoreError> {
        if from == to {
            return Ok(Err(SwitchRefused::SameModel));
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let (state, model): (String, String) = tx
            .query_row(
                "SELECT state, model FROM batches WHERE id = ?1",
                [batch_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => {
                    StoreError::BatchNotFound(batch_id.to_string())
                }
                e => e.into(),
            })?;
        let state = crate::BatchState::parse(&state)?;
        if matches!(
            state,
            crate::BatchState::Completed | crate::BatchState::Cancelled
        ) {
            return Ok(Err(SwitchRefused::Ended(state)));
        }
        if model != from {
            return Ok(Err(SwitchRefused::ModelChanged { now: model }));
        }
        tx.execute(
            "UPDATE batches SET model = ?2, updated_at = ?3 WHERE id = ?1",
            params![batch_id, to, millis(now)],
        )?;
        tx.execute(
            "INSERT INTO model_switches (batch_id, at, from_model, to_model) \
             VALUES (?1, ?2, ?3, ?4)",
            params![batch_id, millis(now), from, to],
        )?;
        tx.commit()?;
        Ok(Ok(()))
    }

    /// The batch's model switches, oldest first.
    pub fn model_switches(&self, batch_id: &str) -> Result<Vec<ModelSwitch>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT at, from_model, to_model FROM model_switches WHERE batch_id = ?1 \
             ORDER BY at, id",
        )?;
        let rows = stmt.query_map([batch_id], |r| {
            Ok(ModelSwitch {
                at: from_millis(r.get(0)?),
                from_model: r.get(1)?,
                to_model: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The models the batch's stored results come from, with how many each, most first.
    pub fn batch_result_models(&self, batch_id: &str) -> Result<Vec<ModelResults>, StoreError> {
        self.result_models(Some(batch_id), None)
    }

    /// The models stored results come from (of one batch and one analysis type where given),
    /// with how many each, most first: what an export or a screen is made of.
    pub fn result_models(
        &self,
        batch_id: Option<&str>,
        analysis_type: Option<&str>,
    ) -> Result<Vec<ModelResults>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT r.model, COUNT(*) FROM results r \
             WHERE (?1 IS NULL OR r.id IN (SELECT result_id FROM tasks WHERE batch_id = ?1)) \
               AND (?2 IS NULL OR r.analysis_type = ?2) \
             GROUP BY r.model ORDER BY COUNT(*) DESC, r.model",
        )?;
        let rows = stmt.query_map(params![batch_id, analysis_type], |r| {
            Ok(ModelResults {
                model: r.get(0)?,
                results: r.get::<_, i64>(1)?.max(0) as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("fintel.db")).unwrap();
        s.conn()
            .execute_batch(
                "INSERT INTO batches (id, created_at, updated_at, state, analysis_type, \
                   analysis_version, workflow, years_spec, as_of_date, model, settings) \
                 VALUES ('b1', 1, 1, 'stopped', 't', 'v', '', '{}', '2026-01-01', 'old', '{}');
                 INSERT INTO companies (id, batch_id, cik) VALUES (1, 'b1', 1);
                 INSERT INTO results (id, result_key, cik, analysis_type, analysis_version, \
                   model, json, created_at) VALUES (1, 'k1', 1, 't', 'v', 'old', '{}', 1), \
                   (2, 'k2', 1, 't', 'v', 'old', '{}', 1);
                 INSERT INTO tasks (batch_id, company_id, kind, state, result_id, created_at, \
                   updated_at) VALUES ('b1', 1, 'year', 'completed', 1, 1, 1), \
                   ('b1', 1, 'year', 'completed', 2, 1, 1), ('b1', 1, 'year', 'pending', NULL, 1, 1);",
            )
            .unwrap();
        (dir, s)
    }

    #[test]
    fn a_switch_is_recorded_and_results_keep_their_model() {
        let (_dir, s) = store();
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        assert_eq!(
            s.switch_batch_model("b1", "old", "new", at).unwrap(),
            Ok(())
        );
        assert_eq!(s.find_batch("b1").unwrap().model, "new");
        assert_eq!(
            s.model_switches("b1").unwrap(),
            vec![ModelSwitch {
                at,
                from_model: "old".into(),
                to_model: "new".into()
            }]
        );
        assert_eq!(
            s.batch_result_models("b1").unwrap(),
            vec![ModelResults {
                model: "old".into(),
                results: 2
            }]
        );
    }

    #[test]
    fn refused_switches_change_nothing() {
        let (_dir, s) = store();
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        assert_eq!(
            s.switch_batch_model("b1", "old", "old", at).unwrap(),
            Err(SwitchRefused::SameModel)
        );
        assert_eq!(
            s.switch_batch_model("b1", "other", "new", at).unwrap(),
            Err(SwitchRefused::ModelChanged { now: "old".into() })
        );
        s.conn()
            .execute("UPDATE batches SET state = 'completed'", [])
            .unwrap();
        assert_eq!(
            s.switch_batch_model("b1", "old", "new", at).unwrap(),
            Err(SwitchRefused::Ended(crate::BatchState::Completed))
        );
        assert_eq!(s.find_batch("b1").unwrap().model, "old");
        assert!(s.model_switches("b1").unwrap().is_empty());
        assert!(matches!(
            s.switch_batch_model("nope", "old", "new", at),
            Err(StoreError::BatchNotFound(_))
        ));
    }
}
