//! Creating a batch: the companies resolved against SEC's list, the analysis pinned, the years
//! recorded, all stored before any work starts, or nothing stored at all.

use std::collections::HashMap;

use fintel_store::{NewBatch, NewCompany, Store};
use jiff::Timestamp;

use crate::input::InputRow;
use crate::ports::{Analysis, CompanyQuery, FilingSource, YearsSpec};
use crate::settings::BatchSettings;
use crate::EngineError;

/// What the user asked for.
pub struct BatchRequest<'a> {
    pub name: Option<String>,
    pub input_file: Option<String>,
    pub rows: Vec<InputRow>,
    pub years: YearsSpec,
    pub analysis: &'a dyn Analysis,
    pub model: String,
    pub priority: i64,
    pub settings: BatchSettings,
}

/// What creation did, for the user.
#[derive(Debug, Clone)]
pub struct Created {
    pub batch_id: String,
    pub companies: usize,
    /// Rows merged into another because they name the same company (e.g. GOOG and GOOGL).
    pub merged: Vec<String>,
    /// Unknown tickers recorded as skipped (`--skip-unknown`).
    pub unknown: Vec<String>,
}

/// A fresh batch id: time-ordered and unique enough for one user's batches.
pub fn new_batch_id(now: Timestamp) -> String {
    let rand: u32 = rand::random();
    format!("{}-{rand:08x}", now.strftime("%Y%m%d-%H%M%S"))
}

/// Resolves the rows, checks the years, and stores the batch.
pub async fn create_batch(
    store: &Store,
    source: &dyn FilingSource,
    request: BatchRequest<'_>,
    now: Timestamp,
) -> Result<Created, EngineError> {
    if request.years.count() == 0 {
        return Err(EngineError::BadInput("--years must be at least 1".into()));
    }
    let analysis = request.analysis;
    if analysis.is_multi_year() && request.years.count() < analysis.min_years() {
        return Err(EngineError::BadInput(format!(
            "the {} analysis needs at least {} years; asked for {}",
            analysis.name(),
            analysis.min_years(),
            request.years.count()
        )));
    }
    let queries: Vec<CompanyQuery> = request.rows.iter().map(InputRow::query).collect();
    let matches = source
        .lookup_companies(&queries)
        .await
        .map_err(|e| EngineError::Source(e.to_string()))?;
    let mut companies: Vec<NewCompany> = Vec::new();
    let mut by_cik: HashMap<u64, usize> = HashMap::new();
    let mut unknown_rows = Vec::new();
    let mut merged = Vec::new();
    for (row, found) in request.rows.iter().zip(matches) {
        let shown = row
            .raw_ticker
            .clone()
            .unwrap_or_else(|| format!("CIK {}", row.cik.unwrap_or(0)));
        match found {
            Some(m) => {
                if let Some(&i) = by_cik.get(&m.cik) {
                    let first = companies[i].ticker.clone().unwrap_or_default();
                    merged.push(format!(
                        "line {}: {shown} is the same company as {first} (CIK {}); analysed once",
                        row.line, m.cik
                    ));
                    companies[i].priority = companies[i].priority.max(row.priority);
                    continue;
                }
                by_cik.insert(m.cik, companies.len());
                companies.push(NewCompany {
                    line_no: Some(row.line),
                    ticker: row.ticker.clone().or(m.ticker),
                    cik: Some(m.cik),
                    company_name: row.company_name.clone().or(Some(m.name)),
                    priority: row.priority,
                    skip_reason: None,
                });
            }
            None if row.cik.is_some() && row.ticker.is_none() => {
                // A CIK that is not in the current ticker list: a delisted company is valid.
                let cik = row.cik.unwrap_or(0);
                if by_cik.contains_key(&cik) {
                    continue;
                }
                by_cik.insert(cik, companies.len());
                companies.push(NewCompany {
                    line_no: Some(row.line),
                    ticker: None,
                    cik: Some(cik),
                    company_name: row.company_name.clone(),
                    priority: row.priority,
                    skip_reason: None,
                });
            }
            None => unknown_rows.push((row.line, shown, row)),
        }
    }
    let mut unknown = Vec::new();
    if !unknown_rows.is_empty() {
        if !request.settings.skip_unknown {
            let list: Vec<String> = unknown_rows
                .iter()
                .map(|(line, t, _)| format!("  line {line}: {t}"))
                .collect();
            return Err(EngineError::BadInput(format!(
                "{} ticker(s) not found in SEC's company list:\n{}\nFix them (a delisted \
                 company can be given by its CIK in a `cik` column), or pass --skip-unknown to \
                 record them as skipped and go on",
                unknown_rows.len(),
                list.join("\n")
            )));
        }
        for (line, shown, row) in unknown_rows {
            unknown.push(format!("line {line}: {shown}"));
            companies.push(NewCompany {
                line_no: Some(line),
                ticker: row.ticker.clone(),
                cik: None,
                company_name: row.company_name.clone(),
                priority: row.priority,
                skip_reason: Some(format!("unknown ticker {shown}: not in SEC's company list")),
            });
        }
    }
    let batch_id = new_batch_id(now);
    let batch = NewBatch {
        id: batch_id.clone(),
        name: request.name,
        analysis_type: request.analysis.name().to_string(),
        analysis_version: request.analysis.version().to_string(),
        workflow: request.analysis.canonical().to_string(),
        min_years: request.analysis.min_years(),
        years_spec: serde_json::to_string(&request.years)
            .map_err(|e| EngineError::Invalid(e.to_string()))?,
        as_of_date: fintel_time::pacific_date(now).to_string(),
        model: request.model,
        settings: serde_json::to_string(&request.settings)
            .map_err(|e| EngineError::Invalid(e.to_string()))?,
        priority: request.priority,
        input_file: request.input_file,
        companies,
    };
    store.create_batch(&batch, now)?;
    Ok(Created {
        batch_id,
        companies: batch.companies.len(),
        merged,
        unknown,
    })
}

impl YearsSpec {
    /// How many fiscal years each company gets.
    pub fn count(&self) -> u32 {
        match self {
            YearsSpec::Latest(n) => *n,
            YearsSpec::Explicit(v) => v.len() as u32,
        }
    }

    /// Parses `2018-2024` or `2019,2021` (or a mix).
    pub fn parse_explicit(text: &str) -> Result<YearsSpec, EngineError> {
        let bad = |why: &str| {
            EngineError::BadInput(format!(
                "--fiscal-years {text:?}: {why}; write a range like 2018-2024 or a list like 2019,2021"
            ))
        };
        let mut years = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (a, b) = match part.split_once('-') {
                Some((a, b)) => (a.trim(), b.trim()),
                None => (part, part),
            };
            let a: i32 = a
                .parse()
                .map_err(|_| bad(&format!("{a:?} is not a year")))?;
            let b: i32 = b
                .parse()
                .map_err(|_| bad(&format!("{b:?} is not a year")))?;
            if !(1993..=2100).contains(&a) || !(1993..=2100).contains(&b) {
                return Err(bad(
                    "years must be between 1993 (the start of EDGAR) and 2100",
                ));
            }
            if a > b {
                return Err(bad(&format!("{a} comes after {b}")));
            }
            years.extend(a..=b);
        }
        years.sort_unstable();
        years.dedup();
        if years.is_empty() {
            return Err(bad("no years given"));
        }
        Ok(YearsSpec::Explicit(years))
    }
}
