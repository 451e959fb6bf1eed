//! A company's previous fiscal year within a batch, for the `changes` analysis, which compares
//! each year's filing with the one before it: the filing resolution chose for that year, or
//! why there is none.

use rusqlite::{params, OptionalExtension};

use crate::{FilingRef, Store, StoreError};

/// What a batch holds for one fiscal year of a company.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchYear {
    /// Resolution chose this filing for the year.
    Filing(FilingRef),
    /// The year is in the batch without a filing, for this reason.
    NoFiling(String),
}

impl Store {
    /// The batch's year task of `company_id` for `fiscal_year`, if the batch has one.
    pub fn batch_year(
        &self,
        batch_id: &str,
        company_id: i64,
        fiscal_year: i32,
    ) -> Result<Option<BatchYear>, StoreError> {
        let conn = self.conn();
        let row = conn
            .query_row(
                "SELECT accession, form, period, filed, document_url, transition, reason \
                 FROM tasks WHERE batch_id = ?1 AND company_id = ?2 AND kind = 'year' \
                   AND fiscal_year = ?3 \
                 ORDER BY id LIMIT 1",
                params![batch_id, company_id, fiscal_year],
                |r| {
                    Ok((
                        r.get::<_, Option<String>>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, i64>(5)?,
                        r.get::<_, Option<String>>(6)?,
                    ))
                },
            )
            .optional()?;
        Ok(row.map(
            |(accession, form, period, filed, url, transition, reason)| match accession {
                Some(accession) => BatchYear::Filing(FilingRef {
                    accession,
                    form: form.unwrap_or_default(),
                    period,
                    filed,
                    document_url: url.unwrap_or_default(),
                    transition: transition != 0,
                }),
                None => BatchYear::NoFiling(
                    reason.unwrap_or_else(|| format!("no annual report for FY{fiscal_year}")),
                ),
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::YearPlan;

    #[test]
    fn a_batch_year_is_its_filing_its_reason_or_absent() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("fintel.db")).unwrap();
        s.conn()
            .execute_batch(
                "INSERT INTO batches (id, created_at, updated_at, state, analysis_type, \
                   analysis_version, workflow, years_spec, as_of_date, model, settings) \
                 VALUES ('b1', 1, 1, 'running', 'changes', 'v', '', '{}', '2026-01-01', 'm', '{}'); \
                 INSERT INTO companies (id, batch_id, ticker, cik) VALUES (1, 'b1', 'ACME', 42); \
                 INSERT INTO tasks (id, batch_id, company_id, kind, state, created_at, updated_at) \
                 VALUES (1, 'b1', 1, 'resolve', 'pending', 1, 1);",
            )
            .unwrap();
        let now = crate::from_millis(2);
        let resolve = s.claim_next("b1", "p1", now, true).unwrap().unwrap();
        let filing = FilingRef {
            accession: "0000000042-24-000001".into(),
            form: "10-K".into(),
            period: Some("2023-12-31".into()),
            filed: Some("2024-02-01".into()),
            document_url: "https://sec.test/a.htm".into(),
            transition: false,
        };
        let plans = [
            YearPlan {
                fiscal_year: 2022,
                filing: None,
                skip_reason: Some("no 10-K for FY2022".into()),
            },
            YearPlan {
                fiscal_year: 2023,
                filing: Some(filing.clone()),
                skip_reason: None,
            },
        ];
        s.complete_resolution(resolve.id, "p1", &plans, false, false, None, now)
            .unwrap();
        assert_eq!(
            s.batch_year("b1", 1, 2023).unwrap(),
            Some(BatchYear::Filing(filing))
        );
        assert_eq!(
            s.batch_year("b1", 1, 2022).unwrap(),
            Some(BatchYear::NoFiling("no 10-K for FY2022".into()))
        );
        assert_eq!(s.batch_year("b1", 1, 2021).unwrap(), None);
        assert_eq!(s.batch_year("other", 1, 2023).unwrap(), None);
    }
}
