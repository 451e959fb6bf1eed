//! The submissions API (`data.sec.gov/submissions/CIK##########.json`): parsing its columnar
//! `filings.recent` table and the older pages named in `filings.files` into one list of
//! [`Filing`]s. Parsing is pure; fetching lives in [`crate::EdgarClient::submissions`].

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::EdgarError;

/// One filing of a company.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filing {
    /// Accession number, dashed (`0000320193-24-000123`), as SEC gives it.
    pub accession_number: String,
    /// Form type (`10-K`, `10-K/A`, `20-F`, `4`, ...), trimmed and upper case.
    pub form: String,
    /// Day the filing was made.
    pub filing_date: Date,
    /// Period of report, when SEC has one.
    pub report_date: Option<Date>,
    /// File name of the primary document; empty for many 1990s filings.
    pub primary_document: String,
    /// SEC's description of the primary document (may be empty).
    pub primary_doc_description: String,
    /// The filing carries XBRL.
    pub is_xbrl: bool,
    /// The primary document is inline XBRL.
    pub is_inline_xbrl: bool,
    /// Size of the whole submission in bytes (0 when unknown).
    pub size: u64,
}

/// A company's submissions: identity plus every filing from all pages, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submissions {
    /// Central Index Key.
    pub cik: u64,
    /// Company name.
    pub name: String,
    /// Current tickers.
    pub tickers: Vec<String>,
    /// Fiscal year end as SEC gives it, `MMDD` (e.g. `0930`); empty when unknown.
    pub fiscal_year_end: String,
    /// All filings, newest filing date first (ties by accession number, descending).
    pub filings: Vec<Filing>,
    /// File names of the older pages that were merged in (from `filings.files`).
    pub pages: Vec<String>,
}

/// The first page of a company's submissions, before the older pages are merged in.
#[derive(Debug, Clone)]
pub struct SubmissionsFirstPage {
    /// Identity and the `recent` filings (`pages` is empty until merged).
    pub submissions: Submissions,
    /// The older pages still to fetch, in the order listed.
    pub older_pages: Vec<String>,
}

#[derive(Deserialize)]
struct RawFirstPage {
    cik: serde_json::Value,
    #[serde(default)]
    name: String,
    #[serde(default)]
    tickers: Vec<String>,
    #[serde(default, rename = "fiscalYearEnd")]
    fiscal_year_end: Option<String>,
    filings: RawFilings,
}

#[derive(Deserialize)]
struct RawFilings {
    recent: RawColumns,
    #[serde(default)]
    files: Vec<RawPageRef>,
}

#[derive(Deserialize)]
struct RawPageRef {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawColumns {
    accession_number: Vec<String>,
    filing_date: Vec<String>,
    form: Vec<String>,
    #[serde(default)]
    report_date: Vec<String>,
    #[serde(default)]
    primary_document: Vec<String>,
    #[serde(default)]
    primary_doc_description: Vec<String>,
    #[serde(default, rename = "isXBRL")]
    is_xbrl: Vec<serde_json::Value>,
    #[serde(default, rename = "isInlineXBRL")]
    is_inline_xbrl: Vec<serde_json::Value>,
    #[serde(default)]
    size: Vec<serde_json::Value>,
}

fn flag(value: Option<&serde_json::Value>) -> bool {
    match value {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::Number(n)) => n.as_u64().is_some_and(|n| n != 0),
        _ => false,
    }
}

impl RawColumns {
    fn into_filings(self, what: &str) -> Result<Vec<Filing>, EdgarError> {
        let rows = self.accession_number.len();
        let required = [
            ("filingDate", self.filing_date.len()),
            ("form", self.form.len()),
        ];
        let optional = [
            ("reportDate", self.report_date.len()),
            ("primaryDocument", self.primary_document.len()),
            ("primaryDocDescription", self.primary_doc_description.len()),
            ("isXBRL", self.is_xbrl.len()),
            ("isInlineXBRL", self.is_inline_xbrl.len()),
            ("size", self.size.len()),
        ];
        for (column, len) in required {
            if len != rows {
                return Err(EdgarError::parse(
                    what,
                    format!("column {column} has {len} rows but accessionNumber has {rows}"),
                ));
            }
        }
        for (column, len) in optional {
            if len != 0 && len != rows {
                return Err(EdgarError::parse(
                    what,
                    format!("column {column} has {len} rows but accessionNumber has {rows}"),
                ));
            }
        }
        let mut filings = Vec::with_capacity(rows);
        for i in 0..rows {
            let accession_number = self.accession_number[i].trim().to_string();
            let Ok(filing_date) = self.filing_date[i].trim().parse::<Date>() else {
                tracing::warn!(
                    source = what,
                    accession = %accession_number,
                    filing_date = %self.filing_date[i],
                    "skipping a filing whose filing date is not a date"
                );
                continue;
            };
            let report_date = self
                .report_date
                .get(i)
                .and_then(|d| d.trim().parse::<Date>().ok());
            filings.push(Filing {
                accession_number,
                form: self.form[i].trim().to_ascii_uppercase(),
                filing_date,
                report_date,
                primary_document: self
                    .primary_document
                    .get(i)
                    .map(|s| s.trim().to_string())
                    .unwrap_or_default(),
                primary_doc_description: self
                    .primary_doc_description
                    .get(i)
                    .cloned()
                    .unwrap_or_default(),
                is_xbrl: flag(self.is_xbrl.get(i)),
                is_inline_xbrl: flag(self.is_inline_xbrl.get(i)),
                size: self.size.get(i).and_then(|v| v.as_u64()).unwrap_or(0),
            });
        }
        Ok(filings)
    }
}

/// Checks an older page name from `filings.files` before it goes into a URL: it must look
/// like `CIK##########-submissions-###.json` or at least be a plain `.json` file name.
fn check_page_name(name: &str, what: &str) -> Result<String, EdgarError> {
    let safe = !name.is_empty()
        && name.len() <= 100
        && name.ends_with(".json")
        && !name.starts_with('.')
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if safe {
        Ok(name.to_string())
    } else {
        Err(EdgarError::parse(
            what,
            format!("older page name {name:?} in filings.files is not a plain .json file name"),
        ))
    }
}

/// Parses the first page (`CIK##########.json`).
pub fn parse_first_page(bytes: &[u8], what: &str) -> Result<SubmissionsFirstPage, EdgarError> {
    let raw: RawFirstPage =
        serde_json::from_slice(bytes).map_err(|e| EdgarError::parse(what, e))?;
    let cik = match &raw.cik {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => crate::tickers::parse_cik(s),
        _ => None,
    }
    .ok_or_else(|| EdgarError::parse(what, format!("cik {} is not a CIK", raw.cik)))?;
    let older_pages = raw
        .filings
        .files
        .iter()
        .map(|page| check_page_name(&page.name, what))
        .collect::<Result<Vec<_>, _>>()?;
    let filings = raw.filings.recent.into_filings(what)?;
    Ok(SubmissionsFirstPage {
        submissions: Submissions {
            cik,
            name: raw.name,
            tickers: raw.tickers,
            fiscal_year_end: raw.fiscal_year_end.unwrap_or_default().trim().to_string(),
            filings,
            pages: Vec::new(),
        },
        older_pages,
    })
}

/// Parses an older page (`CIK##########-submissions-###.json`): the bare columnar table.
pub fn parse_older_page(bytes: &[u8], what: &str) -> Result<Vec<Filing>, EdgarError> {
    let raw: RawColumns = serde_json::from_slice(bytes).map_err(|e| EdgarError::parse(what, e))?;
    raw.into_filings(what)
}

impl Submissions {
    /// Adds the filings of an older page; duplicates (same accession number) are dropped and
    /// the list is kept newest first.
    pub fn merge_page(&mut self, page_name: &str, filings: Vec<Filing>) {
        self.filings.extend(filings);
        self.pages.push(page_name.to_string());
        self.sort_and_dedup();
    }

    fn sort_and_dedup(&mut self) {
        self.filings.sort_by(|a, b| {
            b.filing_date
                .cmp(&a.filing_date)
                .then_with(|| b.accession_number.cmp(&a.accession_number))
        });
        self.filings
            .dedup_by(|a, b| a.accession_number == b.accession_number);
    }

    /// The fiscal year end as (month, day), when SEC gives a valid `MMDD`.
    pub fn fiscal_year_end_month_day(&self) -> Option<(i8, i8)> {
        parse_month_day(&self.fiscal_year_end)
    }
}

/// Parses SEC's `MMDD` fiscal-year-end field.
pub fn parse_month_day(mmdd: &str) -> Option<(i8, i8)> {
    let mmdd = mmdd.trim();
    if mmdd.len() != 4 || !mmdd.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let month: i8 = mmdd[..2].parse().ok()?;
    let day: i8 = mmdd[2..].parse().ok()?;
    ((1..=12).contains(&month) && (1..=31).contains(&day)).then_some((month, day))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatched_columns_are_refused() {
        let body = br#"{"cik":"1","filings":{"recent":{"accessionNumber":["0000000001-24-000001"],
            "filingDate":[],"form":["10-K"]},"files":[]}}"#;
        let err = parse_first_page(body, "test").unwrap_err().to_string();
        assert!(err.contains("filingDate has 0 rows"), "{err}");
    }

    #[test]
    fn unsafe_page_names_are_refused() {
        let body = br#"{"cik":"1","filings":{"recent":{"accessionNumber":[],"filingDate":[],
            "form":[]},"files":[{"name":"../../secret.json"}]}}"#;
        let err = parse_first_page(body, "test").unwrap_err().to_string();
        assert!(err.contains("not a plain .json file name"), "{err}");
    }

    #[test]
    fn rows_with_a_bad_filing_date_are_skipped() {
        let body = br#"{"cik":320193,"filings":{"recent":{
            "accessionNumber":["0000000001-24-000001","0000000001-24-000002"],
            "filingDate":["not a date","2024-03-01"],"form":["10-K"," 10-k "],
            "reportDate":["2023-12-31",""],"isXBRL":[1,0],"size":[10,20]},"files":[]}}"#;
        let page = parse_first_page(body, "test").unwrap();
        let filings = page.submissions.filings;
        assert_eq!(filings.len(), 1);
        assert_eq!(filings[0].accession_number, "0000000001-24-000002");
        assert_eq!(filings[0].form, "10-K");
        assert_eq!(filings[0].report_date, None);
        assert!(!filings[0].is_xbrl);
        assert_eq!(filings[0].size, 20);
        assert!(filings[0].primary_document.is_empty());
        assert!(parse_first_page(b"not json", "test").is_err());
    }

    #[test]
    fn month_day() {
        assert_eq!(parse_month_day("0930"), Some((9, 30)));
        assert_eq!(parse_month_day("1301"), None);
        assert_eq!(parse_month_day(""), None);
    }

    #[test]
    fn apple_fixture_pages_parse_and_merge() {
        let dir = fintel_fixtures::fixtures_or_skip!();
        let first = std::fs::read(dir.join("sec/api/submissions/CIK0000320193.json")).unwrap();
        let older =
            std::fs::read(dir.join("sec/api/submissions/CIK0000320193-submissions-001.json"))
                .unwrap();
        let mut page = parse_first_page(&first, "apple").unwrap();
        assert_eq!(page.submissions.cik, 320193);
        assert_eq!(page.submissions.name, "Apple Inc.");
        assert_eq!(page.submissions.fiscal_year_end, "0930");
        assert_eq!(page.submissions.filings.len(), 1000);
        assert_eq!(page.older_pages, vec!["CIK0000320193-submissions-001.json"]);
        let older = parse_older_page(&older, "apple 001").unwrap();
        assert_eq!(older.len(), 988);
        page.submissions
            .merge_page("CIK0000320193-submissions-001.json", older);
        let all = &page.submissions.filings;
        assert_eq!(all.len(), 1988);
        assert!(all.windows(2).all(|w| w[0].filing_date >= w[1].filing_date));
        let fy2000 = all
            .iter()
            .find(|f| f.accession_number == "0000912057-00-053623")
            .unwrap();
        assert_eq!(fy2000.primary_document, "a2032880z10-k.txt");
        assert_eq!(fy2000.report_date, Some(jiff::civil::date(2000, 9, 30)));
    }
}
