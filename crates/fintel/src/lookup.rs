//! Whether a ticker or CIK the user typed is a company this data directory knows (some batch
//! asked for it), and "did you mean" over the companies it does know when not.

use anyhow::Result;
use fintel_edgar::{CompanyEntry, CompanyList};
use fintel_store::Store;

/// The company as "TICKER (Name)" when a batch of this data directory asked for it.
pub fn known_company(store: &Store, typed: &str) -> Result<Option<String>> {
    let typed = typed.trim();
    let cik: Option<i64> = fintel_edgar::tickers::parse_cik(typed).map(|c| c as i64);
    let ticker = fintel_edgar::normalize_ticker(typed);
    let conn = store.conn();
    let row: Option<(Option<String>, Option<i64>, Option<String>)> = {
        use rusqlite::OptionalExtension;
        conn.query_row(
            "SELECT ticker, cik, company_name FROM companies \
             WHERE UPPER(ticker) = ?1 OR (?2 IS NOT NULL AND cik = ?2) ORDER BY id DESC LIMIT 1",
            rusqlite::params![ticker, cik],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?
    };
    Ok(row.map(|(t, c, n)| {
        let id = t.unwrap_or_else(|| format!("CIK {}", c.unwrap_or(0)));
        match n {
            Some(n) => format!("{id} ({n})"),
            None => id,
        }
    }))
}

/// Why nothing is known about `typed`, with the closest companies this data directory knows.
pub fn unknown_company_message(store: &Store, typed: &str) -> Result<String> {
    let conn = store.conn();
    let mut stmt = conn.prepare(
        "SELECT ticker, MAX(cik), MAX(company_name) FROM companies \
         WHERE ticker IS NOT NULL GROUP BY UPPER(ticker) ORDER BY MIN(id)",
    )?;
    let entries: Vec<CompanyEntry> = stmt
        .query_map([], |r| {
            Ok(CompanyEntry {
                ticker: r.get::<_, String>(0)?.to_ascii_uppercase(),
                cik: r.get::<_, Option<i64>>(1)?.unwrap_or(0).max(0) as u64,
                title: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
            })
        })?
        .collect::<Result<_, _>>()?;
    let list = CompanyList::from_entries(entries);
    let suggestions: Vec<String> = list
        .suggest(typed, 3)
        .into_iter()
        .map(|e| e.ticker.clone())
        .collect();
    Ok(format!(
        "{} is not a company of any batch in this data directory, so it has no results{}; \
         `fintel results` takes a ticker or CIK a batch asked for",
        fintel_engine::input::quoted(typed.trim()),
        if suggestions.is_empty() {
            String::new()
        } else {
            format!(" (did you mean {}?)", suggestions.join(", "))
        }
    ))
}
