//! "Did you mean" for a ticker SEC does not list: the closest tickers by edit distance
//! (insertions, deletions, substitutions and swaps of neighbours: the typos people make).
//!
//! SEC's `company_tickers.json` says nothing about exchanges, so among equally close tickers
//! SEC's own order decides, which lists a company's main ticker first and the larger
//! companies early.

use crate::tickers::{normalize_ticker, CompanyEntry, CompanyList};

/// The farthest a suggestion may be: one typo in a short ticker, two in a longer one.
fn max_distance(len: usize) -> usize {
    if len <= 3 {
        1
    } else {
        2
    }
}

impl CompanyList {
    /// Up to `limit` listed tickers close to `typed`, closest first.
    pub fn suggest(&self, typed: &str, limit: usize) -> Vec<&CompanyEntry> {
        let typed = normalize_ticker(typed);
        if typed.is_empty() || typed.len() > 12 {
            return vec![];
        }
        let max = max_distance(typed.len());
        let mut found: Vec<(usize, usize, &CompanyEntry)> = self
            .entries()
            .iter()
            .enumerate()
            .filter(|(_, e)| e.ticker.len().abs_diff(typed.len()) <= max && e.ticker != typed)
            .filter_map(|(order, e)| {
                let d = edit_distance(typed.as_bytes(), e.ticker.as_bytes());
                (d <= max).then_some((d, order, e))
            })
            .collect();
        found.sort_by_key(|(d, order, _)| (*d, *order));
        let mut out: Vec<&CompanyEntry> = Vec::new();
        for (_, _, e) in found {
            // One suggestion per company (GOOGL, not also GOOG).
            if out.iter().all(|o| o.cik != e.cik) {
                out.push(e);
            }
            if out.len() == limit {
                break;
            }
        }
        out
    }
}

/// Optimal string alignment distance: Levenshtein plus a swap of two neighbours as one edit.
fn edit_distance(a: &[u8], b: &[u8]) -> usize {
    let (n, m) = (a.len(), b.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[n][m]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> CompanyList {
        let rows = [
            (320193, "AAPL", "Apple Inc."),
            (789019, "MSFT", "MICROSOFT CORP"),
            (1652044, "GOOGL", "Alphabet Inc."),
            (1652044, "GOOG", "Alphabet Inc."),
            (1018724, "AMZN", "AMAZON COM INC"),
            (1067983, "BRK-B", "BERKSHIRE HATHAWAY INC"),
            (1067983, "BRK-A", "BERKSHIRE HATHAWAY INC"),
            (1, "APL", "Some Apl Co"),
            (2, "AAP", "Advance Auto Parts"),
        ];
        CompanyList::from_entries(
            rows.iter()
                .map(|(cik, t, n)| CompanyEntry {
                    cik: *cik,
                    ticker: t.to_string(),
                    title: n.to_string(),
                })
                .collect(),
        )
    }

    #[test]
    fn typos_get_the_closest_listed_tickers() {
        let list = list();
        // (typed, expected suggestions in order)
        let table: &[(&str, &[&str])] = &[
            ("APPL", &["AAPL", "APL", "AAP"]), // a swap, then a deletion each
            ("MSTF", &["MSFT"]),
            ("GOGL", &["GOOGL"]), // one company, its main ticker
            ("AMZM", &["AMZN"]),
            ("brk.c", &["BRK-B"]),
            ("XYZQW", &[]),
            ("", &[]),
        ];
        for (typed, expected) in table {
            let got: Vec<&str> = list
                .suggest(typed, 3)
                .iter()
                .map(|e| e.ticker.as_str())
                .collect();
            assert_eq!(&got, expected, "{typed}");
        }
    }

    #[test]
    fn distance_counts_a_swap_as_one_edit() {
        for (a, b, d) in [
            ("APPL", "AAPL", 1),
            ("MSTF", "MSFT", 1),
            ("A", "B", 1),
            ("AB", "", 2),
        ] {
            assert_eq!(edit_distance(a.as_bytes(), b.as_bytes()), d, "{a} {b}");
        }
    }
}
