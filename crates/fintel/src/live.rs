//! The real outside world for the engine: SEC EDGAR through `fintel-edgar`, documents turned
//! into fitted text by `fintel-filing`, and analyses defined by `fintel-workflows`.

use std::sync::Arc;

use async_trait::async_trait;
use fintel_edgar::{
    index::annual_report_in_submission_text, select_annual_reports, Accession, AnnualReportExhibit,
    DocumentRef, DocumentSource, EdgarClient, EdgarError, FileName, SelectOptions, YearRequest,
};
use fintel_engine::{
    AggregateInput, Analysis, CompanyMatch, CompanyQuery, FilingSource, FilingText,
    PreparedDocument, Resolution, SourceError, StepRequest, YearInput, YearsSpec,
};
use fintel_filing::{FormKind, TokenEstimator};
use fintel_store::{FilingRef, YearPlan};
use fintel_workflows::{AggregateVars, Kind, Workflow, YearVars};
use jiff::civil::Date;
use serde_json::{json, Value};

/// SEC EDGAR plus the filing-text pipeline.
pub struct LiveSource {
    pub edgar: EdgarClient,
}

fn classify(e: EdgarError) -> SourceError {
    match e {
        EdgarError::MissingUserAgent { .. } => SourceError::Configuration(e.to_string()),
        EdgarError::NotFound { .. } | EdgarError::UnknownTicker { .. } => {
            SourceError::Unavailable(e.to_string())
        }
        e if e.is_transient() || e.is_rate_limited() => SourceError::Transient(e.to_string()),
        EdgarError::Io { .. } => SourceError::Transient(e.to_string()),
        e => SourceError::Unavailable(e.to_string()),
    }
}

#[async_trait]
impl FilingSource for LiveSource {
    async fn lookup_companies(
        &self,
        queries: &[CompanyQuery],
    ) -> Result<Vec<Option<CompanyMatch>>, SourceError> {
        let list = self.edgar.company_list().await.map_err(classify)?;
        Ok(queries
            .iter()
            .map(|q| {
                let entry = match q {
                    CompanyQuery::Ticker(t) => list.resolve(t),
                    CompanyQuery::Cik(c) => list.by_cik(*c),
                };
                entry.map(|e| CompanyMatch {
                    cik: e.cik,
                    ticker: Some(e.ticker.clone()),
                    name: e.title.clone(),
                })
            })
            .collect())
    }

    async fn resolve_years(
        &self,
        cik: u64,
        years: &YearsSpec,
        as_of: Date,
        include_amendments: bool,
    ) -> Result<Resolution, SourceError> {
        let subs = self.edgar.submissions(cik).await.map_err(classify)?;
        let request = match years {
            YearsSpec::Latest(n) => YearRequest::Latest { years: *n, as_of },
            YearsSpec::Explicit(v) => YearRequest::Explicit(v.clone()),
        };
        let options = SelectOptions {
            include_amendments,
            forms: Vec::new(),
            fiscal_year_end: subs.fiscal_year_end_month_day(),
        };
        let selections = select_annual_reports(&subs.filings, &request, &options);
        if selections.is_empty() {
            return Err(SourceError::Unavailable(format!(
                "no annual report (10-K, 20-F, 40-F) filed by CIK {cik} on or before {as_of}"
            )));
        }
        let mut plans = Vec::with_capacity(selections.len());
        for s in selections {
            let filing = match &s.pick {
                Some(pick) => {
                    let doc = self
                        .edgar
                        .annual_report_document(cik, &pick.filing)
                        .await
                        .map_err(classify)?;
                    Some(FilingRef {
                        accession: pick.filing.accession_number.clone(),
                        form: pick.filing.form.clone(),
                        period: Some(pick.period_end.to_string()),
                        filed: Some(pick.filing.filing_date.to_string()),
                        document_url: doc.url,
                        transition: pick.transition,
                    })
                }
                None => None,
            };
            plans.push(YearPlan {
                fiscal_year: s.fiscal_year,
                skip_reason: if filing.is_none() {
                    Some(
                        s.skip_reason
                            .unwrap_or_else(|| format!("no annual report for FY{}", s.fiscal_year)),
                    )
                } else {
                    None
                },
                filing,
            });
        }
        Ok(Resolution {
            company_name: Some(subs.name),
            years: plans,
        })
    }

    async fn prepare_document(
        &self,
        cik: u64,
        filing: &FilingRef,
        budget_tokens: u64,
    ) -> Result<PreparedDocument, SourceError> {
        let fetched = self.fetch_filing(cik, filing).await?;
        let (main_bytes, exhibit) = (fetched.main, fetched.exhibit);
        let form = filing.form.clone();
        let period = filing.period.clone();
        let prepared = tokio::task::spawn_blocking(move || {
            prepare_text(
                &main_bytes,
                exhibit.as_deref(),
                &form,
                period.as_deref(),
                budget_tokens,
            )
        })
        .await
        .map_err(|e| SourceError::Transient(format!("text preparation stopped: {e}")))?;
        Ok(PreparedDocument {
            url: fetched.url,
            sha256: fetched.sha256,
            ..prepared
        })
    }

    async fn filing_text(&self, cik: u64, filing: &FilingRef) -> Result<FilingText, SourceError> {
        let fetched = self.fetch_filing(cik, filing).await?;
        let (url, sha256) = (fetched.url.clone(), fetched.sha256.clone());
        let (text, plain_text_source) = tokio::task::spawn_blocking(move || {
            let main = fintel_filing::html_to_text(&fetched.main);
            let mut text = main.text;
            if let Some(exhibit) = &fetched.exhibit {
                text.push_str(EXHIBIT_13_HEADING);
                text.push_str(&fintel_filing::html_to_text(exhibit).text);
            }
            (text, main.plain_text_source)
        })
        .await
        .map_err(|e| SourceError::Transient(format!("text conversion stopped: {e}")))?;
        Ok(FilingText {
            text,
            plain_text_source,
            url,
            sha256,
        })
    }
}

/// Written between a filing's text and the annual-report exhibit it incorporates.
const EXHIBIT_13_HEADING: &str =
    "\n\nEXHIBIT 13 - ANNUAL REPORT TO SHAREHOLDERS (incorporated by reference)\n\n";

/// A filing's documents as fetched (or read from the cache): the annual report's own bytes
/// (taken out of a complete submission where needed) and an EX-13 it incorporates.
struct FetchedFiling {
    main: Vec<u8>,
    exhibit: Option<Vec<u8>>,
    url: String,
    sha256: String,
}

impl LiveSource {
    async fn fetch_filing(
        &self,
        cik: u64,
        filing: &FilingRef,
    ) -> Result<FetchedFiling, SourceError> {
        let doc_ref = document_ref(cik, filing).map_err(classify)?;
        let doc = self
            .edgar
            .fetch_document(&doc_ref)
            .await
            .map_err(classify)?;
        let mut main = doc.bytes.clone();
        if doc_ref.source == DocumentSource::CompleteSubmission {
            if let Some(embedded) = annual_report_in_submission_text(&doc.bytes) {
                main = doc.bytes[embedded.text.clone()].to_vec();
            }
        }
        let exhibit = match self.edgar.annual_report_exhibit(&doc_ref, &doc).await {
            Ok(Some(AnnualReportExhibit::File(r))) => {
                Some(self.edgar.fetch_document(&r).await.map_err(classify)?.bytes)
            }
            Ok(Some(AnnualReportExhibit::Embedded { embedded, .. })) => {
                Some(doc.bytes[embedded.text.clone()].to_vec())
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "could not look for the annual-report exhibit");
                None
            }
        };
        Ok(FetchedFiling {
            main,
            exhibit,
            url: doc.url,
            sha256: doc.sha256,
        })
    }
}

/// Rebuilds a document reference from what resolution stored.
fn document_ref(cik: u64, filing: &FilingRef) -> Result<DocumentRef, EdgarError> {
    let accession = Accession::parse(&filing.accession)?;
    let name = filing.document_url.rsplit('/').next().unwrap_or_default();
    let file_name = FileName::parse(name)?;
    let source = if name == format!("{}.txt", accession.as_str()) {
        DocumentSource::CompleteSubmission
    } else {
        DocumentSource::Primary
    };
    Ok(DocumentRef {
        cik,
        accession,
        file_name,
        url: filing.document_url.clone(),
        source,
    })
}

/// HTML to fitted text, the fitting record, the fiscal-year label and the key financials.
fn prepare_text(
    main: &[u8],
    exhibit: Option<&[u8]>,
    form: &str,
    period: Option<&str>,
    budget_tokens: u64,
) -> PreparedDocument {
    let mut text = fintel_filing::html_to_text(main).text;
    if let Some(ex) = exhibit {
        text.push_str(EXHIBIT_13_HEADING);
        text.push_str(&fintel_filing::html_to_text(ex).text);
    }
    let kind = FormKind::parse(form).unwrap_or_else(|_| FormKind::detect(&text));
    let sections = fintel_filing::find_sections(&text, kind);
    let estimator = TokenEstimator::default();
    let fitted = fintel_filing::fit_to_budget(&text, kind, &sections, budget_tokens, &estimator);
    let facts = fintel_filing::extract_facts(main);
    let label = fintel_filing::document_fiscal_year_focus(&facts);
    let financials = financials_json(&facts, period);
    PreparedDocument {
        tokens: fitted.tokens,
        fitting: json!({
            "original_chars": text.len(),
            "budget_tokens": budget_tokens,
            "was_cut": fitted.was_cut,
            "kept": fitted.kept,
            "cut": fitted.cut,
            "sections_found": sections.iter().filter(|s| s.is_found()).map(|s| s.id.clone()).collect::<Vec<_>>(),
            "exhibit_13": exhibit.is_some(),
        }),
        text: fitted.text,
        url: String::new(),
        sha256: String::new(),
        fiscal_year_label: label,
        facts: financials,
    }
}

/// The `financials` analysis's object for the year ending at `period` (or the latest year).
fn financials_json(facts: &[fintel_filing::Fact], period: Option<&str>) -> Option<Value> {
    let key = fintel_filing::key_financials(facts);
    let year = key
        .years
        .iter()
        .find(|y| Some(y.period_end.as_str()) == period)
        .or(key.years.first())?;
    let num = |f: &Option<fintel_filing::Figure>| -> Value {
        f.as_ref().map_or(Value::Null, |f| json!(f.value.to_f64()))
    };
    let currency = [&year.revenue, &year.net_income, &year.total_assets]
        .iter()
        .find_map(|f| f.as_ref().and_then(|f| f.unit.clone()))
        .map(|u| u.trim_start_matches("iso4217:").to_string());
    Some(json!({
        "period_end": year.period_end,
        "currency": currency,
        "revenue": num(&year.revenue),
        "net_income": num(&year.net_income),
        "operating_cash_flow": num(&year.operating_cash_flow),
        "total_assets": num(&year.total_assets),
        "total_liabilities": num(&year.total_liabilities),
        "shareholders_equity": num(&year.shareholders_equity),
        "shares_outstanding": num(&year.shares_outstanding),
        "eps_basic": num(&year.eps_basic),
        "eps_diluted": num(&year.eps_diluted),
    }))
}

/// An analysis type from `fintel-workflows`, as the engine uses it.
pub struct WorkflowAnalysis {
    pub workflow: Workflow,
    overhead: u64,
}

impl WorkflowAnalysis {
    pub fn new(workflow: Workflow) -> Arc<Self> {
        let overhead = workflow.year.as_ref().map_or(0, |s| {
            let estimate = |t: &str| fintel_engine::estimate_tokens(t);
            estimate(&s.prompt)
                + s.system.as_deref().map_or(0, estimate)
                + estimate(&s.schema.to_string())
                + 200
        });
        Arc::new(WorkflowAnalysis { workflow, overhead })
    }
}

impl Analysis for WorkflowAnalysis {
    fn name(&self) -> &str {
        &self.workflow.name
    }
    fn version(&self) -> &str {
        &self.workflow.version
    }
    fn canonical(&self) -> &str {
        &self.workflow.canonical
    }
    fn min_years(&self) -> u32 {
        self.workflow.min_years
    }
    fn needs_model(&self) -> bool {
        self.workflow.kind.needs_model()
    }
    fn compares_years(&self) -> bool {
        self.workflow.kind == Kind::Changes
    }
    fn is_multi_year(&self) -> bool {
        self.workflow.is_multi_year()
    }
    fn year_request(&self, input: &YearInput<'_>) -> Option<StepRequest> {
        if !self.needs_model() {
            return None;
        }
        let step = self.workflow.year.as_ref()?;
        Some(StepRequest {
            system: step.system.clone(),
            prompt: step.render_year(&YearVars {
                ticker: input.ticker,
                company_name: input.company_name,
                year: input.fiscal_year,
                form: input.form,
                document: input.document,
            }),
            schema: step.schema.clone(),
        })
    }
    fn aggregate_request(&self, input: &AggregateInput<'_>) -> Option<StepRequest> {
        let step = self.workflow.aggregate.as_ref()?;
        Some(StepRequest {
            system: step.system.clone(),
            prompt: step.render_aggregate(&AggregateVars {
                ticker: input.ticker,
                company_name: input.company_name,
                years: input.years,
                yearly_results: input.yearly_results,
            }),
            schema: step.schema.clone(),
        })
    }
    fn year_overhead_tokens(&self) -> u64 {
        self.overhead
    }
}
