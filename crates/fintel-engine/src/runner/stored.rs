//! Finds the pending tasks that need no model request after all (a year or an aggregate whose
//! result is stored, an aggregate left with too few years) by [`crate::quota_free`]'s decision,
//! and marks them so, so that they are claimed and finished while the keys are spent instead of
//! waiting for the quota reset.

use fintel_store::{TaskKind, YearOutcomes};

use super::EngineInner;
use crate::quota_free::{needs_quota, Work, WorkContext};
use crate::{result_key, EngineError};

impl EngineInner {
    /// Marks the batch's pending tasks that need no model request; returns how many.
    pub(super) fn mark_quota_free_work(&self) -> Result<u64, EngineError> {
        let ctx = WorkContext {
            analysis_needs_model: self.e.analysis.needs_model(),
            force: self.batch_settings.force,
        };
        let mut free = Vec::new();
        for task in self.store().pending_model_tasks(&self.batch.id)? {
            let work = match (task.kind, task.cik) {
                (TaskKind::Resolve, _) => Work::Resolve,
                (TaskKind::Year, Some(cik)) => Work::Year {
                    stored: match &task.accession {
                        Some(accession) => self
                            .store()
                            .find_result(&self.year_result_key(cik, accession))?
                            .is_some(),
                        None => false,
                    },
                },
                (TaskKind::Aggregate, Some(_)) if task.company_busy => Work::AggregateAhead,
                (TaskKind::Aggregate, Some(cik)) => {
                    let outcomes = self.store().year_outcomes(task.company_id)?;
                    Work::Aggregate {
                        stored: self
                            .store()
                            .find_result(&self.aggregate_result_key(cik, &outcomes))?
                            .is_some(),
                        enough_years: outcomes.completed.len()
                            >= self.e.analysis.min_years() as usize,
                    }
                }
                // Without a CIK the task is skipped when it runs; leave it to the ordinary way.
                (_, None) => continue,
            };
            if !needs_quota(work, ctx) {
                free.push(task.id);
            }
        }
        Ok(self.store().mark_needs_no_model(&free)?)
    }

    /// The result key of a company's aggregate over its completed years.
    pub(super) fn aggregate_result_key(&self, cik: u64, outcomes: &YearOutcomes) -> String {
        let accessions: Vec<String> = outcomes
            .completed
            .iter()
            .map(|r| r.accession.clone().unwrap_or_default())
            .collect();
        let analysis = &self.e.analysis;
        result_key(
            cik,
            &accessions.join("+"),
            analysis.name(),
            analysis.version(),
            &self.model_label(),
        )
    }
}
