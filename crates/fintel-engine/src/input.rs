//! Reading the user's list of companies: a CSV with a header (`ticker`, optional
//! `company_name`, `cik`, `priority`) or one ticker per line.
//!
//! Every malformed row is reported with its line number, all together, so the user fixes the
//! file once; nothing is created from a file with errors.

use std::collections::HashSet;

/// One company the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputRow {
    pub line: u64,
    /// The ticker as SEC spells it (upper case, `.` and `/` turned into `-`).
    pub ticker: Option<String>,
    /// The ticker as the user wrote it, for messages.
    pub raw_ticker: Option<String>,
    pub cik: Option<u64>,
    pub company_name: Option<String>,
    pub priority: i64,
}

impl InputRow {
    /// How to look this row's company up: by CIK when the row has one, else by ticker.
    pub fn query(&self) -> crate::ports::CompanyQuery {
        match (&self.ticker, self.cik) {
            (_, Some(cik)) => crate::ports::CompanyQuery::Cik(cik),
            (Some(t), None) => crate::ports::CompanyQuery::Ticker(t.clone()),
            // Parsing refuses rows with neither; CIK 0 matches no company.
            (None, None) => crate::ports::CompanyQuery::Cik(0),
        }
    }
}

/// A problem with one line of the input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    pub problem: String,
}

/// The input file could not be used; every problem is listed.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{file}: {}", render_rows(.errors))]
    Rows { file: String, errors: Vec<RowError> },
    #[error("{file}: no companies found; the file needs a `ticker` (or `cik`) column or one ticker per line")]
    Empty { file: String },
}

/// Problems listed one by one; a file that is not a companies list at all (a spreadsheet, a
/// binary) would otherwise print thousands of lines.
const LISTED_PROBLEMS: usize = 20;

fn render_rows(errors: &[RowError]) -> String {
    let mut s = format!("{} problem(s):", errors.len());
    for e in errors.iter().take(LISTED_PROBLEMS) {
        s.push_str(&format!("\n  line {}: {}", e.line, e.problem));
    }
    if errors.len() > LISTED_PROBLEMS {
        s.push_str(&format!(
            "\n  ... and {} more; is this a companies file (CSV or one ticker per line)?",
            errors.len() - LISTED_PROBLEMS
        ));
    }
    s
}

/// The most of a bad input line an error message quotes.
pub const QUOTED_BYTES: usize = 200;

/// `text` quoted for an error message: escaped (control characters and quotes visible) and
/// cut to [`QUOTED_BYTES`] bytes, saying how long it really was.
pub fn quoted(text: &str) -> String {
    if text.len() <= QUOTED_BYTES {
        return format!("{text:?}");
    }
    let mut end = QUOTED_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}... ({} bytes)", &text[..end], text.len())
}

/// SEC's spelling of a ticker: upper case, with `.` and `/` (class shares) turned into `-`.
pub fn normalize_ticker(raw: &str) -> String {
    raw.trim()
        .to_ascii_uppercase()
        .chars()
        .map(|c| if c == '.' || c == '/' { '-' } else { c })
        .collect()
}

fn valid_ticker(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 12
        && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && t.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
}

/// Parses the text of an input file.
pub fn parse_companies(file: &str, text: &str) -> Result<Vec<InputRow>, InputError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or("");
    let header: Vec<String> = first
        .split(',')
        .map(|h| h.trim().trim_matches('"').to_ascii_lowercase())
        .collect();
    let has_header = header
        .iter()
        .any(|h| h == "ticker" || h == "cik" || h == "symbol");
    let mut errors = Vec::new();
    let rows = if has_header {
        parse_csv(text, &mut errors)
    } else {
        parse_plain(text, &mut errors)
    };
    if !errors.is_empty() {
        return Err(InputError::Rows {
            file: file.to_string(),
            errors,
        });
    }
    if rows.is_empty() {
        return Err(InputError::Empty {
            file: file.to_string(),
        });
    }
    Ok(rows)
}

fn parse_plain(text: &str, errors: &mut Vec<RowError>) -> Vec<InputRow> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i as u64 + 1;
        let raw = line.trim();
        if raw.is_empty() || raw.starts_with('#') {
            continue;
        }
        if raw.contains(',') || raw.contains(char::is_whitespace) {
            errors.push(RowError {
                line: line_no,
                problem: format!(
                    "{} is not a ticker; without a header line the file must have one \
                     ticker per line (or add a header such as `ticker,company_name`)",
                    quoted(raw)
                ),
            });
            continue;
        }
        push_ticker_row(&mut rows, errors, line_no, raw, None, None, 0);
    }
    rows
}

fn push_ticker_row(
    rows: &mut Vec<InputRow>,
    errors: &mut Vec<RowError>,
    line: u64,
    raw_ticker: &str,
    cik: Option<u64>,
    company_name: Option<String>,
    priority: i64,
) {
    let raw_ticker = raw_ticker.trim();
    let ticker = if raw_ticker.is_empty() {
        None
    } else {
        let t = normalize_ticker(raw_ticker);
        if !valid_ticker(&t) {
            errors.push(RowError {
                line,
                problem: format!(
                    "{} is not a valid ticker (letters, digits, and `.`, `/` or `-` for class \
                     shares such as BRK.B)",
                    quoted(raw_ticker)
                ),
            });
            return;
        }
        Some(t)
    };
    if ticker.is_none() && cik.is_none() {
        errors.push(RowError {
            line,
            problem: "neither a ticker nor a CIK".to_string(),
        });
        return;
    }
    rows.push(InputRow {
        line,
        raw_ticker: ticker.as_ref().map(|_| raw_ticker.to_string()),
        ticker,
        cik,
        company_name,
        priority,
    });
}

fn parse_csv(text: &str, errors: &mut Vec<RowError>) -> Vec<InputRow> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            errors.push(RowError {
                line: 1,
                problem: format!("unreadable header: {e}"),
            });
            return Vec::new();
        }
    };
    let col = |names: &[&str]| {
        headers
            .iter()
            .position(|h| names.contains(&h.trim().to_ascii_lowercase().as_str()))
    };
    let (ticker_col, name_col, cik_col, prio_col) = (
        col(&["ticker", "symbol"]),
        col(&["company_name", "company", "name"]),
        col(&["cik"]),
        col(&["priority"]),
    );
    let known: HashSet<Option<usize>> = [ticker_col, name_col, cik_col, prio_col].into();
    let mut rows = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        if !known.contains(&Some(i)) && !h.trim().is_empty() {
            tracing::warn!(
                "column {h:?} is not used (known columns: ticker, company_name, cik, priority)"
            );
        }
    }
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                errors.push(RowError {
                    line,
                    problem: format!("unreadable CSV row: {e}"),
                });
                continue;
            }
        };
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.iter().all(|f| f.is_empty()) {
            continue;
        }
        if record.len() > headers.len() {
            errors.push(RowError {
                line,
                problem: format!(
                    "{} fields but the header has {} (a company name with a comma needs quotes)",
                    record.len(),
                    headers.len()
                ),
            });
            continue;
        }
        let get = |c: Option<usize>| c.and_then(|c| record.get(c)).unwrap_or("").trim();
        let cik = match get(cik_col) {
            "" => None,
            s => match s.parse::<u64>() {
                Ok(n) if n > 0 && n < 10_000_000_000 => Some(n),
                _ => {
                    errors.push(RowError {
                        line,
                        problem: format!("CIK {} is not a number of up to 10 digits", quoted(s)),
                    });
                    continue;
                }
            },
        };
        let priority = match get(prio_col) {
            "" => 0,
            s => match s.parse::<i64>() {
                Ok(n) => n,
                Err(_) => {
                    errors.push(RowError {
                        line,
                        problem: format!("priority {} is not a whole number", quoted(s)),
                    });
                    continue;
                }
            },
        };
        let name = Some(get(name_col).to_string()).filter(|s| !s.is_empty());
        push_ticker_row(
            &mut rows,
            errors,
            line,
            get(ticker_col),
            cik,
            name,
            priority,
        );
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_line_is_quoted_escaped_and_cut_to_200_bytes() {
        let long = format!("{}\u{1b}[31m{}", "x".repeat(150), "é".repeat(200));
        let err = parse_companies("f.txt", &format!("AAPL\n{long} y\n")).unwrap_err();
        let text = err.to_string();
        let line = text.lines().find(|l| l.contains("line 2")).unwrap();
        assert!(line.len() < 400, "{} bytes: {line}", line.len());
        assert!(
            line.contains("\\u{1b}"),
            "the escape is shown, not sent: {line}"
        );
        assert!(!line.contains('\u{1b}'), "{line}");
        assert!(
            line.contains(&format!("({} bytes)", long.len() + 2)),
            "{line}"
        );
        // A binary file is not listed line by line for ever.
        let junk: String = (0..500).map(|i| format!("a b {i}\n")).collect();
        let text = parse_companies("f.bin", &junk).unwrap_err().to_string();
        assert!(text.lines().count() < 30, "{text}");
        assert!(text.contains("and 480 more"), "{text}");
    }

    #[test]
    fn plain_list_with_class_shares() {
        let rows = parse_companies("t.txt", "AAPL\n\nbrk.b\nBF/B\n# comment\nmsft\n").unwrap();
        let tickers: Vec<_> = rows.iter().map(|r| r.ticker.clone().unwrap()).collect();
        assert_eq!(tickers, ["AAPL", "BRK-B", "BF-B", "MSFT"]);
        assert_eq!(rows[1].line, 3);
        assert_eq!(rows[1].raw_ticker.as_deref(), Some("brk.b"));
    }

    #[test]
    fn csv_with_all_columns_and_bom() {
        let text = "\u{feff}ticker,company_name,cik,priority\nAAPL,Apple Inc.,320193,5\n\
                    ,\"Delisted, Corp\",1234567,\nBRK.B,,,\n";
        let rows = parse_companies("c.csv", text).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].company_name.as_deref(), Some("Apple Inc."));
        assert_eq!(rows[0].cik, Some(320193));
        assert_eq!(rows[0].priority, 5);
        assert_eq!(rows[1].ticker, None);
        assert_eq!(rows[1].cik, Some(1234567));
        assert_eq!(rows[1].company_name.as_deref(), Some("Delisted, Corp"));
        assert_eq!(rows[2].ticker.as_deref(), Some("BRK-B"));
    }

    #[test]
    fn every_bad_row_is_reported_with_its_line() {
        let text = "ticker,cik,priority\nAAPL,abc,\nMSFT,,high\n,,\n$$$,,\nGOOG,1,2,3\n";
        let err = parse_companies("bad.csv", text).unwrap_err().to_string();
        assert!(err.contains("line 2: CIK \"abc\""), "{err}");
        assert!(err.contains("line 3: priority \"high\""), "{err}");
        assert!(
            err.contains("line 5: \"$$$\" is not a valid ticker"),
            "{err}"
        );
        assert!(err.contains("line 6: 4 fields"), "{err}");
        assert!(err.starts_with("bad.csv: 4 problem(s)"), "{err}");
    }

    #[test]
    fn plain_list_rejects_multi_column_lines_and_empty_files() {
        let err = parse_companies("x.txt", "AAPL\nMSFT GOOG\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
        let err = parse_companies("e.txt", "\n# nothing\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no companies found"), "{err}");
        let err = parse_companies("h.csv", "ticker,company_name\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no companies found"), "{err}");
    }
}
