//! The readable view of stored results behind `fintel results TICKER`.

use std::collections::HashMap;
use std::fmt::Write as _;

use fintel_store::{from_millis, Store};
use fintel_workflows::Workflow;
use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::Value;

use crate::mask::{mask_json, mask_keys};
use crate::present;
use crate::ExportError;

/// Width text is wrapped at.
const WRAP_COLUMNS: usize = 100;

/// One stored result with its provenance.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ResultView {
    pub ticker: Option<String>,
    pub cik: u64,
    pub company_name: Option<String>,
    pub fiscal_year: Option<i32>,
    pub fiscal_year_label: Option<String>,
    pub form: Option<String>,
    pub accession: Option<String>,
    pub analysis_type: String,
    pub analysis_version: String,
    pub model: String,
    pub prompt_tokens: u64,
    pub output_tokens: u64,
    pub thinking_tokens: u64,
    pub attempts: u32,
    pub document_url: Option<String>,
    pub document_sha256: Option<String>,
    pub fitting: Option<String>,
    /// The fiscal years answered by the same packed request (`2021,2022`), if it was one.
    pub packed_with: Option<String>,
    /// When the result was stored (RFC 3339, UTC).
    pub created_at: String,
    /// The result, its fields in reading order ([`crate::present::arrange`]).
    pub result: Value,
    /// The schema of the step that produced it, when its batch is still stored.
    #[serde(skip)]
    pub schema: Option<Value>,
}

/// A stored result as read back, keys masked: what `fintel results` and the dashboard show.
/// The JSON is `Err` with the parser's complaint when the stored text does not parse, so one
/// damaged row can be shown as such instead of hiding the company's other results.
#[derive(Debug, Clone)]
pub struct StoredResult {
    pub id: i64,
    pub result_key: String,
    pub ticker: Option<String>,
    pub cik: u64,
    pub company_name: Option<String>,
    pub fiscal_year: Option<i32>,
    pub fiscal_year_label: Option<String>,
    pub form: Option<String>,
    pub accession: Option<String>,
    pub analysis_type: String,
    pub analysis_version: String,
    pub model: String,
    pub prompt_tokens: u64,
    pub output_tokens: u64,
    pub thinking_tokens: u64,
    pub attempts: u32,
    pub document_url: Option<String>,
    pub document_sha256: Option<String>,
    pub fitting: Option<String>,
    /// The fiscal years answered by the same packed request (`2021,2022`), if it was one.
    pub packed_with: Option<String>,
    pub created_at: Timestamp,
    /// The result, its fields in reading order ([`crate::present::arrange`]).
    pub json: Result<Value, String>,
    /// The schema of the step that produced it, when its batch is still stored.
    pub schema: Option<Value>,
    /// Whether it answers the aggregate step of a multi-year type (known from the schema).
    pub multi_year: bool,
}

/// The schemas of the steps results answer, read from the batches that pinned them (a
/// result's analysis version is its batch's), each version parsed once.
pub(crate) struct Schemas<'c> {
    conn: &'c Connection,
    pinned: HashMap<String, Option<Workflow>>,
}

impl<'c> Schemas<'c> {
    pub(crate) fn new(conn: &'c Connection) -> Schemas<'c> {
        Schemas {
            conn,
            pinned: HashMap::new(),
        }
    }

    /// The schema of the step whose reply `result` is: for a multi-year type, the step whose
    /// top-level properties it shares most.
    pub(crate) fn for_result(&mut self, version: &str, result: &Value) -> Option<&Value> {
        self.step_for_result(version, result)
            .map(|(schema, _)| schema)
    }

    /// [`Schemas::for_result`], and whether the step is the aggregate one.
    fn step_for_result(&mut self, version: &str, result: &Value) -> Option<(&Value, bool)> {
        if !self.pinned.contains_key(version) {
            let canonical: Option<String> = self
                .conn
                .prepare_cached(
                    "SELECT workflow FROM batches WHERE analysis_version = ?1 \
                     ORDER BY created_at DESC LIMIT 1",
                )
                .and_then(|mut stmt| stmt.query_row([version], |r| r.get(0)).optional())
                .ok()
                .flatten();
            let workflow = canonical.and_then(|text| Workflow::from_canonical(&text).ok());
            self.pinned.insert(version.to_string(), workflow);
        }
        let workflow = self.pinned.get(version)?.as_ref()?;
        let shared = |schema: &Value| {
            let properties = schema.get("properties").and_then(Value::as_object);
            result.as_object().map_or(0, |fields| {
                fields
                    .keys()
                    .filter(|k| properties.is_some_and(|p| p.contains_key(*k)))
                    .count()
            })
        };
        [
            (workflow.year.as_ref(), false),
            (workflow.aggregate.as_ref(), true),
        ]
        .into_iter()
        .filter_map(|(step, aggregate)| Some((&step?.schema, aggregate)))
        // On a tie the yearly step wins: most results answer it.
        .max_by_key(|(schema, aggregate)| (shared(schema), !aggregate))
    }

    /// Puts a stored result's fields in reading order and attaches its schema.
    fn arrange(&mut self, result: &mut StoredResult) {
        if let Ok(json) = &result.json {
            let step = self.step_for_result(&result.analysis_version, json);
            let (schema, multi_year) = match step {
                Some((schema, aggregate)) => (Some(schema.clone()), aggregate),
                None => (None, false),
            };
            result.json = Ok(present::arrange(json, schema.as_ref()));
            result.schema = schema;
            result.multi_year = multi_year;
        }
    }
}

const STORED_RESULT_COLUMNS: &str = "r.id, r.result_key, r.ticker, r.cik, r.company_name, \
     r.fiscal_year, r.fiscal_year_label, r.form, r.accession, r.analysis_type, \
     r.analysis_version, r.model, r.prompt_tokens, r.output_tokens, r.thinking_tokens, \
     r.attempts, r.document_url, r.document_sha256, r.fitting, r.created_at, r.json, r.packed_with";

fn stored_result(r: &Row<'_>) -> rusqlite::Result<StoredResult> {
    let masked = |i: usize| -> rusqlite::Result<Option<String>> {
        Ok(r.get::<_, Option<String>>(i)?.map(|s| mask_keys(&s)))
    };
    let count = |i: usize| -> rusqlite::Result<u64> { Ok(r.get::<_, i64>(i)?.max(0) as u64) };
    let json = serde_json::from_str::<Value>(&r.get::<_, String>(20)?)
        .map(|mut v| {
            mask_json(&mut v);
            v
        })
        .map_err(|e| e.to_string());
    Ok(StoredResult {
        id: r.get(0)?,
        result_key: r.get(1)?,
        ticker: masked(2)?,
        cik: count(3)?,
        company_name: masked(4)?,
        fiscal_year: r.get(5)?,
        fiscal_year_label: masked(6)?,
        form: masked(7)?,
        accession: masked(8)?,
        analysis_type: r.get(9)?,
        analysis_version: r.get(10)?,
        model: r.get(11)?,
        prompt_tokens: count(12)?,
        output_tokens: count(13)?,
        thinking_tokens: count(14)?,
        attempts: count(15)?.min(u64::from(u32::MAX)) as u32,
        document_url: masked(16)?,
        document_sha256: masked(17)?,
        fitting: masked(18)?,
        packed_with: r.get(21)?,
        created_at: from_millis(r.get(19)?),
        json,
        schema: None,
        multi_year: false,
    })
}

/// The stored results of a company, given by ticker (any case) or CIK (digits, leading zeros
/// allowed), newest fiscal year first; optionally one year and one analysis type.
pub fn company_results(
    store: &Store,
    ticker_or_cik: &str,
    year: Option<i32>,
    analysis_type: Option<&str>,
) -> Result<Vec<StoredResult>, ExportError> {
    let wanted = ticker_or_cik.trim();
    if wanted.is_empty() {
        return Err(ExportError::BadArgument(
            "no company given; pass a ticker (AAPL) or a CIK (320193)".into(),
        ));
    }
    let cik: Option<i64> =
        if wanted.bytes().all(|b| b.is_ascii_digit()) {
            Some(wanted.parse().map_err(|_| {
                ExportError::BadArgument(format!("{wanted:?} is too long to be a CIK"))
            })?)
        } else {
            None
        };
    let ticker = wanted.to_ascii_uppercase();
    let conn = store.conn();
    // One read transaction, so the lookup and the results agree.
    let tx = conn.unchecked_transaction()?;
    // A ticker is looked up among the batches' companies first, so that the results are then
    // found through their CIK index rather than by reading every result.
    let cik = match cik {
        Some(c) => Some(c),
        None => tx
            .prepare_cached(
                "SELECT cik FROM companies WHERE UPPER(ticker) = ?1 AND cik IS NOT NULL \
                 ORDER BY id DESC LIMIT 1",
            )?
            .query_row([&ticker], |r| r.get::<_, i64>(0))
            .optional()?,
    };
    // Two statements rather than one with a CASE: SQLite uses the CIK index only when the
    // condition on `cik` stands alone.
    let (company, key) = match cik {
        Some(c) => ("r.cik = ?1", rusqlite::types::Value::Integer(c)),
        None => ("UPPER(r.ticker) = ?1", rusqlite::types::Value::Text(ticker)),
    };
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {STORED_RESULT_COLUMNS} FROM results r \
         WHERE {company} AND (?2 IS NULL OR r.fiscal_year = ?2) \
           AND (?3 IS NULL OR r.analysis_type = ?3) \
         ORDER BY r.fiscal_year DESC, r.analysis_type, r.created_at DESC, r.id DESC"
    ))?;
    let rows = stmt.query_map(params![key, year, analysis_type], stored_result)?;
    let mut results = rows.collect::<Result<Vec<_>, _>>()?;
    let mut schemas = Schemas::new(&tx);
    for result in &mut results {
        schemas.arrange(result);
    }
    Ok(results)
}

/// One stored result by its row id.
pub fn result_by_id(store: &Store, id: i64) -> Result<Option<StoredResult>, ExportError> {
    let conn = store.conn();
    let mut result = conn
        .prepare_cached(&format!(
            "SELECT {STORED_RESULT_COLUMNS} FROM results r WHERE r.id = ?1"
        ))?
        .query_row([id], stored_result)
        .optional()?;
    if let Some(result) = &mut result {
        Schemas::new(&conn).arrange(result);
    }
    Ok(result)
}

/// [`company_results`] for the terminal and `--json`: a result whose stored JSON does not
/// parse is an error naming it, not a silently shorter list.
pub fn results_view(
    store: &Store,
    ticker_or_cik: &str,
    year: Option<i32>,
    analysis_type: Option<&str>,
) -> Result<Vec<ResultView>, ExportError> {
    company_results(store, ticker_or_cik, year, analysis_type)?
        .into_iter()
        .map(|r| {
            let result = r.json.map_err(|detail| ExportError::BadStoredJson {
                result_key: r.result_key.clone(),
                detail,
            })?;
            Ok(ResultView {
                ticker: r.ticker,
                cik: r.cik,
                company_name: r.company_name,
                fiscal_year: r.fiscal_year,
                fiscal_year_label: r.fiscal_year_label,
                form: r.form,
                accession: r.accession,
                analysis_type: r.analysis_type,
                analysis_version: r.analysis_version,
                model: r.model,
                prompt_tokens: r.prompt_tokens,
                output_tokens: r.output_tokens,
                thinking_tokens: r.thinking_tokens,
                attempts: r.attempts,
                document_url: r.document_url,
                document_sha256: r.document_sha256,
                fitting: r.fitting,
                packed_with: r.packed_with,
                created_at: r.created_at.to_string(),
                result,
                schema: r.schema,
            })
        })
        .collect()
}

/// Renders results for the terminal: a heading per fiscal year and analysis, the JSON as
/// indented `key: value` lines with long text wrapped, and a provenance line.
pub fn render_text(results: &[ResultView]) -> String {
    let mut out = String::new();
    if results.is_empty() {
        out.push_str("No stored results match.\n");
        return out;
    }
    let mut last_company: Option<u64> = None;
    for view in results {
        if last_company != Some(view.cik) {
            let _ = writeln!(
                out,
                "{} {}(CIK {})",
                view.ticker.as_deref().unwrap_or("-"),
                view.company_name
                    .as_deref()
                    .map(|n| format!("{n} "))
                    .unwrap_or_default(),
                view.cik
            );
            last_company = Some(view.cik);
        }
        let year = match (&view.fiscal_year_label, view.fiscal_year) {
            (Some(label), _) => label.clone(),
            (None, Some(y)) => format!("FY{y}"),
            (None, None) => "all years".to_string(),
        };
        let _ = writeln!(out, "\n== {year} · {} ==", view.analysis_type);
        let currency = present::result_currency(&view.result);
        let reading = Reading {
            currency: currency.as_deref(),
        };
        reading.render(&mut out, &view.result, view.schema.as_ref(), 1);
        let version: String = view.analysis_version.chars().take(12).collect();
        let _ = writeln!(
            out,
            "  [form {}, accession {}, model {}, version {}, tokens {} in / {} out / {} \
             thinking, attempts {}, stored {}]",
            view.form.as_deref().unwrap_or("-"),
            view.accession.as_deref().unwrap_or("-"),
            view.model,
            version,
            view.prompt_tokens,
            view.output_tokens,
            view.thinking_tokens,
            view.attempts,
            view.created_at
        );
    }
    out
}

/// How values are written in one result: money carries the result's currency.
struct Reading<'a> {
    currency: Option<&'a str>,
}

impl Reading<'_> {
    /// Writes `value` (described by `schema`, if known) as indented `Label: value` lines.
    fn render(&self, out: &mut String, value: &Value, schema: Option<&Value>, depth: usize) {
        let indent = "  ".repeat(depth);
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let node = present::property_schema(schema, k);
                    let name = present::label(k);
                    match v {
                        Value::Object(m) if !m.is_empty() => {
                            let _ = writeln!(out, "{indent}{name}:");
                            self.render(out, v, node, depth + 1);
                        }
                        Value::Array(a) if !a.is_empty() => {
                            let _ = writeln!(out, "{indent}{name}:");
                            self.render(out, v, node, depth + 1);
                        }
                        _ => write_wrapped(
                            out,
                            &indent,
                            &format!("{name}: "),
                            &self.scalar(v, k, node),
                        ),
                    }
                }
            }
            Value::Array(items) => {
                let node = present::items_schema(schema);
                for item in items {
                    match item {
                        Value::Object(_) | Value::Array(_) => {
                            let _ = writeln!(out, "{indent}-");
                            self.render(out, item, node, depth + 1);
                        }
                        _ => write_wrapped(out, &indent, "- ", &self.scalar(item, "", node)),
                    }
                }
            }
            other => write_wrapped(out, &indent, "", &self.scalar(other, "", schema)),
        }
    }

    fn scalar(&self, v: &Value, key: &str, node: Option<&Value>) -> String {
        match v {
            Value::Object(m) if m.is_empty() => "-".to_string(),
            Value::Array(a) if a.is_empty() => "-".to_string(),
            _ => present::scalar_text(v, key, node, self.currency).unwrap_or_else(|| v.to_string()),
        }
    }
}

/// Writes `lead` + `text` wrapped at [`WRAP_COLUMNS`], continuation lines aligned under the
/// text.
fn write_wrapped(out: &mut String, indent: &str, lead: &str, text: &str) {
    let first = format!("{indent}{lead}");
    let hang = " ".repeat(first.chars().count());
    let width = WRAP_COLUMNS.saturating_sub(hang.len()).max(20);
    let mut line = String::new();
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        for word in paragraph.split_whitespace() {
            let needed =
                line.chars().count() + word.chars().count() + usize::from(!line.is_empty());
            if !line.is_empty() && needed > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(std::mem::take(&mut line));
    }
    for (i, l) in lines.iter().enumerate() {
        let _ = writeln!(out, "{}{}", if i == 0 { &first } else { &hang }, l);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_wraps_under_its_key() {
        let mut out = String::new();
        let long = "word ".repeat(60);
        write_wrapped(&mut out, "  ", "summary: ", long.trim());
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines.len() >= 3, "{out}");
        assert!(
            lines.iter().all(|l| l.chars().count() <= WRAP_COLUMNS),
            "{out}"
        );
        assert!(lines[0].starts_with("  summary: word"));
        assert!(lines[1].starts_with("           word"));
    }
}
