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
