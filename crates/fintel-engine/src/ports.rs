//! What the engine needs from the outside world, as traits: the SEC side (companies, filings,
//! documents) and the analysis (prompt and schema). The binary plugs in the real ones; tests
//! plug in their own.

use async_trait::async_trait;
use fintel_store::{FilingRef, YearPlan};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

/// Which fiscal years a batch asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum YearsSpec {
    /// The N fiscal years ending with the company's latest annual report as of the batch's
    /// creation day.
    Latest(u32),
    /// The same fixed years for every company.
    Explicit(Vec<i32>),
}

/// A company found in SEC's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompanyMatch {
    pub cik: u64,
    pub ticker: Option<String>,
    pub name: String,
}

/// How to look a company up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompanyQuery {
    Ticker(String),
    Cik(u64),
}

/// A company's filings resolved into fiscal years.
#[derive(Debug, Clone)]
pub struct Resolution {
    pub company_name: Option<String>,
    pub years: Vec<YearPlan>,
}

/// The text the model will read, with its provenance.
#[derive(Debug, Clone)]
pub struct PreparedDocument {
    /// The fitted text.
    pub text: String,
    /// Estimated tokens of `text`.
    pub tokens: u64,
    pub url: String,
    pub sha256: String,
    /// What fitting did (sections kept and cut), as JSON.
    pub fitting: serde_json::Value,
    /// The company's own fiscal-year label (`dei:DocumentFiscalYearFocus`), if any.
    pub fiscal_year_label: Option<String>,
    /// Key XBRL facts, for the `financials` analysis.
    pub facts: Option<serde_json::Value>,
}

/// A filing's whole text, unfitted, for analyses that read all of it (`changes`).
#[derive(Debug, Clone)]
pub struct FilingText {
    /// Clean text as `fintel_filing::html_to_text` writes it (with an annual-report exhibit
    /// appended where the filing incorporates one).
    pub text: String,
    /// The source was plain text (hard-wrapped lines), as the converter reported.
    pub plain_text_source: bool,
    pub url: String,
    pub sha256: String,
}

/// Failures of the SEC side, already classified.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    /// Worth trying again later (network, 5xx, SEC pausing us).
    #[error("{0}")]
    Transient(String),
    /// Will never work for this task (no such company, no document): skip with this reason.
    #[error("{0}")]
    Unavailable(String),
    /// Nothing can work until the user fixes something (e.g. no SEC User-Agent).
    #[error("{0}")]
    Configuration(String),
}

/// The SEC side.
#[async_trait]
pub trait FilingSource: Send + Sync {
    /// Looks companies up in SEC's list, answering one entry per query.
    async fn lookup_companies(
        &self,
        queries: &[CompanyQuery],
    ) -> Result<Vec<Option<CompanyMatch>>, SourceError>;

    /// Decides which filing serves each requested fiscal year of a company.
    async fn resolve_years(
        &self,
        cik: u64,
        years: &YearsSpec,
        as_of: Date,
        include_amendments: bool,
    ) -> Result<Resolution, SourceError>;

    /// Fetches (or reads from the cache) a filing's document and turns it into text that fits
    /// `budget_tokens`.
    async fn prepare_document(
        &self,
        cik: u64,
        filing: &FilingRef,
        budget_tokens: u64,
    ) -> Result<PreparedDocument, SourceError>;

    /// Fetches (or reads from the cache) a filing's document as whole text, for comparing
    /// years. A source that keeps no texts answers `Unavailable`, which skips the year.
    async fn filing_text(&self, cik: u64, filing: &FilingRef) -> Result<FilingText, SourceError> {
        let _ = (cik, filing);
        Err(SourceError::Unavailable(
            "this filing source provides no whole texts to compare".to_string(),
        ))
    }
}

/// What a model call of an analysis step consists of.
#[derive(Debug, Clone)]
pub struct StepRequest {
    pub system: Option<String>,
    pub prompt: String,
    pub schema: serde_json::Value,
}

/// Inputs of a per-year step.
#[derive(Debug, Clone)]
pub struct YearInput<'a> {
    pub ticker: &'a str,
    pub company_name: &'a str,
    pub fiscal_year: i32,
    pub form: &'a str,
    pub document: &'a str,
}

/// Inputs of an aggregate step.
#[derive(Debug, Clone)]
pub struct AggregateInput<'a> {
    pub ticker: &'a str,
    pub company_name: &'a str,
    pub years: &'a [i32],
    /// The stored yearly results, keyed by fiscal year.
    pub yearly_results: &'a serde_json::Value,
}

/// An analysis type as the engine uses it: pinned in the batch, identified by its version.
pub trait Analysis: Send + Sync {
    fn name(&self) -> &str;
    /// SHA-256 of the analysis's normalised content; part of every result key.
    fn version(&self) -> &str;
    /// The pinned, self-contained text stored in the batch.
    fn canonical(&self) -> &str;
    fn min_years(&self) -> u32;
    /// False for analyses computed without a model (XBRL facts, year-over-year changes).
    fn needs_model(&self) -> bool;
    /// True for the `changes` analysis: each year's filing is compared with the previous
    /// year's (see [`crate::changes`]), with no model.
    fn compares_years(&self) -> bool {
        false
    }
    fn is_multi_year(&self) -> bool;
    /// The request of a per-year step; None for analyses without a model call.
    fn year_request(&self, input: &YearInput<'_>) -> Option<StepRequest>;
    /// The request of the aggregate step of a multi-year analysis.
    fn aggregate_request(&self, input: &AggregateInput<'_>) -> Option<StepRequest>;
    /// Tokens of the year prompt without the document (to size the document's budget).
    fn year_overhead_tokens(&self) -> u64;
}
