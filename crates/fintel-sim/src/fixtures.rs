//! Real SEC data served beside the synthetic universe when a fixtures directory is configured:
//! Apple's two submissions pages, its company_tickers.json entry, and the fixture annual
//! reports under their real accession numbers. Apple's filings that have no fixture document
//! are answered with a synthetic annual report for that filing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use jiff::civil::Date;
use serde_json::Value;

use crate::universe::{AnnualForm, Company, Filing, FiscalYearEnd};
use crate::SimError;

/// Apple's CIK.
pub const APPLE_CIK: u64 = 320_193;

/// Fixture documents by accession folder (no dashes).
const DOCUMENTS: &[(&str, &str)] = &[
    (
        "000032019324000123",
        "sec/10k/aapl-10k-2024-11-01.ixbrl.htm",
    ),
    (
        "000095015399001234",
        "sec/10k/medicis-10k-1999-0000950153-99-001234.htm",
    ),
    (
        "000137647416000635",
        "sec/10k/commonwealth-income-growth-fund-v-10k-2016-0001376474-16-000635.htm",
    ),
    (
        "000092838501500187",
        "sec/20f/aegon-20f-2001-0000928385-01-500187.htm",
    ),
    (
        "000106299316008650",
        "sec/20f/loncor-20f-2016-0001062993-16-008650.htm",
    ),
];

/// The loaded fixtures.
#[derive(Debug, Clone)]
pub struct SecFixtures {
    dir: PathBuf,
    /// Apple's `company_tickers.json` entry.
    pub apple_ticker_entry: Value,
    /// `CIK0000320193.json`, as served.
    pub apple_recent: Vec<u8>,
    /// `CIK0000320193-submissions-001.json`, as served.
    pub apple_page_001: Vec<u8>,
    /// Apple's filings by accession folder, from both pages.
    apple_filings: HashMap<String, Filing>,
}

fn read(dir: &Path, relative: &str) -> Result<Vec<u8>, SimError> {
    let path = dir.join(relative);
    std::fs::read(&path).map_err(|e| {
        SimError::Fixtures(format!(
            "cannot read {}: {e} (sec.fixtures_dir must point at the shared fixtures directory)",
            path.display()
        ))
    })
}

fn parse(bytes: &[u8], what: &str) -> Result<Value, SimError> {
    serde_json::from_slice(bytes)
        .map_err(|e| SimError::Fixtures(format!("{what} is not valid JSON: {e}")))
}

fn rows(page: &Value, out: &mut HashMap<String, Filing>) {
    let col = |name: &str| {
        page.get(name)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (acc, form, filed, report, doc) = (
        col("accessionNumber"),
        col("form"),
        col("filingDate"),
        col("reportDate"),
        col("primaryDocument"),
    );
    for i in 0..acc.len() {
        let s = |c: &Vec<Value>| c.get(i).and_then(Value::as_str).unwrap_or("").to_string();
        let form = s(&form);
        if !matches!(form.as_str(), "10-K" | "10-K/A" | "10-K405") {
            continue;
        }
        let (Ok(filing_date), report_date) =
            (s(&filed).parse::<Date>(), s(&report).parse::<Date>().ok())
        else {
            continue;
        };
        let filing = Filing {
            accession: s(&acc),
            form,
            filing_date,
            report_date,
            fiscal_year: report_date.map(|d| d.year()),
            document: s(&doc),
            size: 300_000,
        };
        out.insert(filing.accession_folder(), filing);
    }
}

impl SecFixtures {
    /// Loads the fixtures under `dir`.
    pub fn load(dir: &Path) -> Result<Self, SimError> {
        let apple_recent = read(dir, "sec/api/submissions/CIK0000320193.json")?;
        let apple_page_001 = read(
            dir,
            "sec/api/submissions/CIK0000320193-submissions-001.json",
        )?;
        let tickers = parse(
            &read(dir, "sec/api/company_tickers/company_tickers.json")?,
            "company_tickers.json",
        )?;
        let apple_ticker_entry = tickers
            .as_object()
            .and_then(|m| {
                m.values()
                    .find(|v| v.get("cik_str").and_then(Value::as_u64) == Some(APPLE_CIK))
            })
            .cloned()
            .ok_or_else(|| SimError::Fixtures("company_tickers.json has no Apple entry".into()))?;
        let recent = parse(&apple_recent, "Apple's submissions page")?;
        let older = parse(&apple_page_001, "Apple's submissions page 001")?;
        let mut apple_filings = HashMap::new();
        if let Some(r) = recent.pointer("/filings/recent") {
            rows(r, &mut apple_filings);
        }
        rows(&older, &mut apple_filings);
        Ok(SecFixtures {
            dir: dir.to_path_buf(),
            apple_ticker_entry,
            apple_recent,
            apple_page_001,
            apple_filings,
        })
    }

    /// The fixture document filed under accession folder `folder`, read from disk.
    pub fn document(&self, folder: &str) -> Option<Result<Vec<u8>, SimError>> {
        DOCUMENTS
            .iter()
            .find(|(acc, _)| *acc == folder)
            .map(|(_, rel)| read(&self.dir, rel))
    }

    /// Apple as a company record, for synthetic documents of its fixture filings.
    pub fn apple(&self) -> Company {
        Company {
            index: usize::MAX,
            cik: APPLE_CIK,
            tickers: vec!["AAPL".into()],
            name: "Apple Inc.".into(),
            form: AnnualForm::TenK,
            fiscal_year_end: FiscalYearEnd::LastSaturdayOfSeptember,
            first_fiscal_year: 1993,
            last_fiscal_year: 2022,
            gap_years: Vec::new(),
            amended_years: Vec::new(),
            delisted: false,
            exchange: "Nasdaq",
            state: "CA",
            sic: ("3571", "Electronic Computers"),
        }
    }

    /// Apple's annual-report filing under accession folder `folder`, if any.
    pub fn apple_filing(&self, folder: &str) -> Option<&Filing> {
        self.apple_filings.get(folder)
    }
}
