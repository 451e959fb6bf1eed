//! Carries out a year of the `changes` analysis ([`crate::changes`]): finds the previous fiscal
//! year's filing (in the batch, else by resolving that year), reads both texts through the
//! source's document cache, compares them off the async threads and stores the result keyed by
//! both accessions. No model is asked, so the task never waits for quota.

use fintel_store::{ClaimedTask, FilingRef, NewResult};
use jiff::Timestamp;

use super::{heard, EngineInner, TaskEnd};
use crate::changes::{self, Previous};
use crate::ports::{SourceError, YearsSpec};
use crate::{result_key, EngineError};

impl EngineInner {
    pub(super) async fn changes_year(
        &self,
        task: &ClaimedTask,
        cik: u64,
        filing: &FilingRef,
        year: i32,
        started: Timestamp,
    ) -> Result<TaskEnd, EngineError> {
        let held = self
            .store()
            .batch_year(&self.batch.id, task.company_id, year - 1)?;
        let found = match changes::previous_in_batch(year, held) {
            Previous::Use(previous) => Ok(previous),
            Previous::Skip(reason) => Err(reason),
            Previous::Resolve => match self.resolve_one_year(cik, year - 1).await {
                Ok(resolution) => changes::previous_resolved(year, Ok(&resolution)),
                Err(SourceError::Unavailable(why)) => changes::previous_resolved(year, Err(&why)),
                Err(e) => return self.source_error(task, e),
            },
        };
        let previous = match found {
            Ok(previous) => previous,
            Err(reason) => return self.skip(task, &reason),
        };

        let analysis = &self.e.analysis;
        let key = result_key(
            cik,
            &changes::pair_accessions(&previous, filing),
            analysis.name(),
            analysis.version(),
            changes::MODEL_LABEL,
        );
        if self.reuse_stored(task, &key)? {
            return Ok(TaskEnd::Done);
        }
        let old = match self.e.source.filing_text(cik, &previous).await {
            Ok(text) => text,
            Err(e) => return self.source_error(task, e),
        };
        let new = match self.e.source.filing_text(cik, filing).await {
            Ok(text) => text,
            Err(e) => return self.source_error(task, e),
        };
        heard::sec_answered();
        let (old_form, new_form) = (previous.form.clone(), filing.form.clone());
        let (url, sha256) = (new.url.clone(), new.sha256.clone());
        let compared =
            tokio::task::spawn_blocking(move || changes::compare(&old, &old_form, &new, &new_form))
                .await
                .map_err(|e| EngineError::Invalid(format!("comparing the filings stopped: {e}")))?;
        let result = NewResult {
            result_key: key,
            cik,
            ticker: task.ticker.clone(),
            company_name: task.company_name.clone(),
            fiscal_year: Some(year),
            form: Some(filing.form.clone()),
            accession: Some(filing.accession.clone()),
            analysis_type: analysis.name().to_string(),
            analysis_version: analysis.version().to_string(),
            model: changes::MODEL_LABEL.to_string(),
            json: changes::result_json(year, &previous, filing, &compared).to_string(),
            attempts: task.attempts + 1,
            document_url: Some(url),
            document_sha256: Some(sha256),
            started_at: Some(started),
            supersede: self.batch_settings.force,
            ..Default::default()
        };
        self.store()
            .complete_with_result(task.id, self.owner(), &result, self.now())?;
        Ok(TaskEnd::Done)
    }

    /// Resolves one fiscal year of a company the way the batch resolves its years.
    async fn resolve_one_year(
        &self,
        cik: u64,
        fiscal_year: i32,
    ) -> Result<Vec<fintel_store::YearPlan>, SourceError> {
        let as_of = self
            .batch
            .as_of_date
            .parse()
            .map_err(|e| SourceError::Configuration(format!("batch as-of date: {e}")))?;
        let resolution = self
            .e
            .source
            .resolve_years(
                cik,
                &YearsSpec::Explicit(vec![fiscal_year]),
                as_of,
                self.batch_settings.include_amendments,
            )
            .await?;
        heard::sec_answered();
        Ok(resolution.years)
    }
}
