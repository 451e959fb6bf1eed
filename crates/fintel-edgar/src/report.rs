//! The `fintel filings TICKER|CIK [--years N] [--form 10-K] [--json]` listing: for each fiscal
//! year, the annual report picked (form, period, filing date, accession number, document URL,
//! whether it is cached, transition flag) or the reason the year is skipped. The binary only
//! parses arguments and prints; this module produces the (serialisable) answer.

use std::fmt::Write as _;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::client::{EdgarClient, ResolvedCompany};
use crate::names::Accession;
use crate::select::{select_annual_reports, FormFamily, SelectOptions, YearRequest};
use crate::EdgarError;

/// What to list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilingsQuery {
    /// A ticker (`AAPL`, `BRK.B`) or a CIK (`320193`, `CIK0000320193`).
    pub company: String,
    /// Which fiscal years.
    pub request: YearRequest,
    /// `--form`: only these families (empty: all annual forms).
    pub forms: Vec<FormFamily>,
    /// Allow amendments to be picked.
    pub include_amendments: bool,
}

impl FilingsQuery {
    /// The `years` most recent fiscal years as of `as_of`, all annual forms, originals only.
    pub fn latest(company: impl Into<String>, years: u32, as_of: Date) -> FilingsQuery {
        FilingsQuery {
            company: company.into(),
            request: YearRequest::Latest { years, as_of },
            forms: Vec::new(),
            include_amendments: false,
        }
    }
}

/// One fiscal year of the listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilingsRow {
    /// The fiscal year.
    pub fiscal_year: i32,
    /// Form of the pick (`10-K`, `10-K405`, `20-F`, ...).
    pub form: Option<String>,
    /// Period of report (or its estimate, see `period_estimated`).
    pub period: Option<Date>,
    /// The period was estimated from the filing date.
    pub period_estimated: bool,
    /// Filing date.
    pub filed: Option<Date>,
    /// Accession number.
    pub accession: Option<String>,
    /// URL of the primary document; `None` when SEC names none (it is then found through
    /// `filing_index_url` at download).
    pub document_url: Option<String>,
    /// URL of the filing's folder listing.
    pub filing_index_url: Option<String>,
    /// A document of the filing is in the local cache.
    pub cached: bool,
    /// A transition report (10-KT).
    pub transition: bool,
    /// An amendment (only when amendments were asked for).
    pub amendment: bool,
    /// Why the year has no pick.
    pub skip_reason: Option<String>,
    /// Amendments of the year that were not picked.
    pub amendments_not_picked: Vec<String>,
}

/// The listing for one company.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilingsReport {
    /// The company.
    pub cik: u64,
    /// Its ticker, when known.
    pub ticker: Option<String>,
    /// Its name (from the submissions).
    pub name: String,
    /// The request as answered.
    pub request: YearRequest,
    /// The form filter.
    pub forms: Vec<FormFamily>,
    /// Amendments allowed.
    pub include_amendments: bool,
    /// One row per fiscal year, ascending.
    pub years: Vec<FilingsRow>,
}

/// Resolves the company, fetches its submissions (all pages) and selects its annual reports.
/// Makes no document request; `cached` only looks at the local cache.
pub async fn filings_report(
    client: &EdgarClient,
    query: &FilingsQuery,
) -> Result<FilingsReport, EdgarError> {
    let ResolvedCompany { cik, ticker, title } = client.resolve_company(&query.company).await?;
    let submissions = client.submissions(cik).await?;
    let options = SelectOptions {
        include_amendments: query.include_amendments,
        forms: query.forms.clone(),
        fiscal_year_end: submissions.fiscal_year_end_month_day(),
    };
    let selections = select_annual_reports(&submissions.filings, &query.request, &options);
    let mut years = Vec::with_capacity(selections.len());
    for selection in selections {
        let mut row = FilingsRow {
            fiscal_year: selection.fiscal_year,
            form: None,
            period: None,
            period_estimated: false,
            filed: None,
            accession: None,
            document_url: None,
            filing_index_url: None,
            cached: false,
            transition: false,
            amendment: false,
            skip_reason: selection.skip_reason,
            amendments_not_picked: selection.amendments_not_picked,
        };
        if let Some(pick) = selection.pick {
            let filing = &pick.filing;
            row.form = Some(filing.form.clone());
            row.period = Some(pick.period_end);
            row.period_estimated = pick.period_estimated;
            row.filed = Some(filing.filing_date);
            row.accession = Some(filing.accession_number.clone());
            row.transition = pick.transition;
            row.amendment = pick.amendment;
            row.document_url = client.primary_document(cik, filing)?.map(|d| d.url);
            row.filing_index_url =
                Some(client.filing_index_url(cik, &Accession::parse(&filing.accession_number)?));
            row.cached = client.is_cached(cik, filing);
        }
        years.push(row);
    }
    Ok(FilingsReport {
        cik,
        ticker: ticker.or_else(|| submissions.tickers.first().cloned()),
        name: if submissions.name.is_empty() {
            title.unwrap_or_default()
        } else {
            submissions.name
        },
        request: query.request.clone(),
        forms: query.forms.clone(),
        include_amendments: query.include_amendments,
        years,
    })
}

impl FilingsReport {
    /// A plain-text table for people (the `--json` form is this struct serialised).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} (CIK {}{})",
            self.name,
            self.cik,
            self.ticker
                .as_deref()
                .map(|t| format!(", {t}"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            out,
            "{:<6} {:<8} {:<10} {:<10} {:<20} {:<6} document",
            "FY", "form", "period", "filed", "accession", "cached"
        );
        for row in &self.years {
            match (&row.form, &row.accession) {
                (Some(form), Some(accession)) => {
                    let mut form = form.clone();
                    if row.transition {
                        form.push_str(" (T)");
                    }
                    let _ = writeln!(
                        out,
                        "{:<6} {:<8} {:<10} {:<10} {:<20} {:<6} {}",
                        row.fiscal_year,
                        form,
                        row.period.map(|d| d.to_string()).unwrap_or_default(),
                        row.filed.map(|d| d.to_string()).unwrap_or_default(),
                        accession,
                        if row.cached { "yes" } else { "no" },
                        row.document_url
                            .as_deref()
                            .or(row.filing_index_url.as_deref())
                            .unwrap_or("")
                    );
                }
                _ => {
                    let _ = writeln!(
                        out,
                        "{:<6} skipped: {}",
                        row.fiscal_year,
                        row.skip_reason.as_deref().unwrap_or("no annual report")
                    );
                }
            }
        }
        out
    }
}
