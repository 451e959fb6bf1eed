//! Tickers and CIKs: normalising what users type (`brk.b` -> `BRK-B`) and resolving it against
//! SEC's company list (`company_tickers.json`, `{"0":{"cik_str":..,"ticker":..,"title":..},..}`).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::EdgarError;

/// Normalises a ticker for SEC's lookup: trimmed, upper case, `.` and `/` become `-`
/// (so `BRK.B` and `brk/b` are `BRK-B`, as SEC lists class shares).
pub fn normalize_ticker(ticker: &str) -> String {
    ticker
        .trim()
        .chars()
        .map(|c| match c {
            '.' | '/' => '-',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

/// Parses a CIK as users write it: `320193`, `0000320193` or `CIK0000320193` (at most 10
/// digits). Returns `None` for anything else (e.g. a ticker).
pub fn parse_cik(input: &str) -> Option<u64> {
    let trimmed = input.trim();
    let digits = trimmed
        .strip_prefix("CIK")
        .or_else(|| trimmed.strip_prefix("cik"))
        .unwrap_or(trimmed);
    if digits.is_empty() || digits.len() > 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&cik| cik > 0)
}

/// One row of SEC's company list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompanyEntry {
    /// Central Index Key.
    pub cik: u64,
    /// Ticker as SEC lists it (class shares with `-`).
    pub ticker: String,
    /// Company name.
    pub title: String,
}

/// SEC's company list, indexed by normalised ticker and by CIK.
#[derive(Debug, Clone, Default)]
pub struct CompanyList {
    entries: Vec<CompanyEntry>,
    by_ticker: HashMap<String, usize>,
    by_cik: HashMap<u64, Vec<usize>>,
}

#[derive(Deserialize)]
struct RawEntry {
    cik_str: serde_json::Value,
    ticker: String,
    title: String,
}

impl CompanyList {
    /// Parses `company_tickers.json`. Rows keep SEC's order (by key `"0"`, `"1"`, ...), which
    /// lists a company's main ticker first (GOOGL before GOOG).
    pub fn parse(bytes: &[u8]) -> Result<CompanyList, EdgarError> {
        let what = "SEC company list (company_tickers.json)";
        let raw: HashMap<String, RawEntry> =
            serde_json::from_slice(bytes).map_err(|e| EdgarError::parse(what, e))?;
        let mut keyed: Vec<(u64, RawEntry)> = Vec::with_capacity(raw.len());
        for (key, entry) in raw {
            let order = key
                .parse::<u64>()
                .map_err(|_| EdgarError::parse(what, format!("key {key:?} is not a row number")))?;
            keyed.push((order, entry));
        }
        keyed.sort_by_key(|(order, _)| *order);
        let mut entries = Vec::with_capacity(keyed.len());
        for (_, raw) in keyed {
            let cik = match &raw.cik_str {
                serde_json::Value::Number(n) => n.as_u64(),
                serde_json::Value::String(s) => parse_cik(s),
                _ => None,
            }
            .ok_or_else(|| {
                EdgarError::parse(
                    what,
                    format!("cik_str {} of {:?} is not a CIK", raw.cik_str, raw.ticker),
                )
            })?;
            entries.push(CompanyEntry {
                cik,
                ticker: normalize_ticker(&raw.ticker),
                title: raw.title,
            });
        }
        Ok(CompanyList::from_entries(entries))
    }

    /// Builds the indexes over `entries` (first entry wins for a duplicated ticker).
    pub fn from_entries(entries: Vec<CompanyEntry>) -> CompanyList {
        let mut by_ticker = HashMap::new();
        let mut by_cik: HashMap<u64, Vec<usize>> = HashMap::new();
        for (i, entry) in entries.iter().enumerate() {
            by_ticker.entry(entry.ticker.clone()).or_insert(i);
            by_cik.entry(entry.cik).or_default().push(i);
        }
        CompanyList {
            entries,
            by_ticker,
            by_cik,
        }
    }

    /// The entry for a ticker, normalised first (`brk.b` finds `BRK-B`).
    pub fn resolve(&self, ticker: &str) -> Option<&CompanyEntry> {
        self.by_ticker
            .get(&normalize_ticker(ticker))
            .map(|&i| &self.entries[i])
    }

    /// The main entry of a CIK (the first SEC lists for it).
    pub fn by_cik(&self, cik: u64) -> Option<&CompanyEntry> {
        self.by_cik
            .get(&cik)
            .and_then(|rows| rows.first())
            .map(|&i| &self.entries[i])
    }

    /// Every ticker SEC lists for a CIK, main one first (`GOOGL`, `GOOG`).
    pub fn tickers_of(&self, cik: u64) -> Vec<&str> {
        self.by_cik
            .get(&cik)
            .map(|rows| {
                rows.iter()
                    .map(|&i| self.entries[i].ticker.as_str())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the list has no rows.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// All rows in SEC's order.
    pub fn entries(&self) -> &[CompanyEntry] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_class_shares() {
        assert_eq!(normalize_ticker(" brk.b "), "BRK-B");
        assert_eq!(normalize_ticker("BF/B"), "BF-B");
        assert_eq!(normalize_ticker("aapl"), "AAPL");
    }

    #[test]
    fn parses_ciks_and_refuses_tickers() {
        assert_eq!(parse_cik("320193"), Some(320193));
        assert_eq!(parse_cik("CIK0000320193"), Some(320193));
        assert_eq!(parse_cik("0000320193"), Some(320193));
        assert_eq!(parse_cik("AAPL"), None);
        assert_eq!(parse_cik("12345678901"), None);
        assert_eq!(parse_cik("0"), None);
        assert_eq!(parse_cik(""), None);
    }

    #[test]
    fn malformed_lists_are_reported() {
        assert!(matches!(
            CompanyList::parse(b"[1,2]"),
            Err(EdgarError::Parse { .. })
        ));
        let bad_cik = br#"{"0":{"cik_str":"abc","ticker":"X","title":"X"}}"#;
        let err = CompanyList::parse(bad_cik).unwrap_err().to_string();
        assert!(err.contains("not a CIK"), "{err}");
    }

    #[test]
    fn fixture_list_resolves_class_shares_and_shared_ciks() {
        let dir = fintel_fixtures::fixtures_or_skip!();
        let bytes = std::fs::read(dir.join("sec/api/company_tickers/company_tickers.json"))
            .expect("fixture readable");
        let list = CompanyList::parse(&bytes).expect("fixture parses");
        assert_eq!(list.len(), 9610);
        assert_eq!(list.resolve("aapl").map(|e| e.cik), Some(320193));
        assert_eq!(list.resolve("BRK.B").map(|e| e.cik), Some(1067983));
        assert_eq!(list.resolve("brk/a").map(|e| e.cik), Some(1067983));
        assert_eq!(list.resolve("BF.B").map(|e| e.cik), Some(14693));
        assert_eq!(list.resolve("BF-B").map(|e| e.cik), Some(14693));
        assert!(list.resolve("NOSUCHTICKER").is_none());
        assert_eq!(
            list.by_cik(1652044).map(|e| e.ticker.as_str()),
            Some("GOOGL")
        );
        assert_eq!(list.tickers_of(1652044), vec!["GOOGL", "GOOG"]);
        assert_eq!(
            list.by_cik(320193).map(|e| e.title.as_str()),
            Some("Apple Inc.")
        );
    }
}
