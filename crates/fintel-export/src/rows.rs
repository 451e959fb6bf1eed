//! Reading the rows of an export from the store, and the two streamable formats (CSV, JSONL).

use std::io::Write;

use fintel_store::{from_millis, Store};
use rusqlite::params;
use serde_json::{Map, Value};

use crate::flatten::{Cell, Table};
use crate::mask::{mask_json, mask_keys, neutralise_formula};
use crate::present;
use crate::view::Schemas;
use crate::{ExportError, ExportQuery};

/// The columns every export starts with, in order.
pub const IDENTIFYING_COLUMNS: &[&str] = &[
    "batch_id",
    "ticker",
    "cik",
    "company_name",
    "fiscal_year",
    "fiscal_year_label",
    "form",
    "accession",
    "analysis_type",
    "analysis_version",
    "model",
    "status",
    "reason",
    "attempts",
    "prompt_tokens",
    "output_tokens",
    "thinking_tokens",
    "document_url",
    "document_sha256",
    "fitting",
    "packed_with",
    "created_at",
];

/// Identifying columns stored as integers (INT64 in Parquet, numbers in CSV/XLSX).
pub(crate) const INTEGER_COLUMNS: &[&str] = &[
    "cik",
    "fiscal_year",
    "attempts",
    "prompt_tokens",
    "output_tokens",
    "thinking_tokens",
];

/// One exported row: the identifying cells (same order as [`IDENTIFYING_COLUMNS`]) and the
/// parsed result, if the task has one.
pub(crate) struct Row {
    pub ident: Vec<Cell>,
    pub result: Option<Value>,
}

const SELECT_COLUMNS: &str = "ticker, cik, company_name, fiscal_year, fiscal_year_label, form, \
    accession, analysis_type, analysis_version, model, status, reason, attempts, prompt_tokens, \
    output_tokens, thinking_tokens, document_url, document_sha256, fitting, packed_with, created_at, \
    json, result_key";

pub(crate) fn load(store: &Store, query: &ExportQuery) -> Result<Vec<Row>, ExportError> {
    let batch_id = match &query.batch_id {
        Some(b) => Some(store.find_batch(b)?.id),
        None => None,
    };
    let conn = store.conn();
    let analysis = query.analysis_type.as_deref();
    let state = query.status.task_state();
    let sql = match batch_id {
        Some(_) => format!(
            "SELECT t.batch_id AS batch_id, {SELECT_COLUMNS} FROM ( \
               SELECT t.batch_id, t.id AS task_id, c.id AS company_id, t.kind, \
                 COALESCE(c.ticker, r.ticker) AS ticker, COALESCE(r.cik, c.cik) AS cik, \
                 COALESCE(r.company_name, c.company_name) AS company_name, \
                 COALESCE(r.fiscal_year, t.fiscal_year) AS fiscal_year, r.fiscal_year_label, \
                 COALESCE(r.form, t.form) AS form, COALESCE(r.accession, t.accession) AS accession, \
                 COALESCE(r.analysis_type, b.analysis_type) AS analysis_type, \
                 COALESCE(r.analysis_version, b.analysis_version) AS analysis_version, \
                 COALESCE(r.model, b.model) AS model, t.state AS status, t.reason, \
                 MAX(t.attempts, COALESCE(r.attempts, 0)) AS attempts, r.prompt_tokens, \
                 r.output_tokens, r.thinking_tokens, \
                 COALESCE(r.document_url, t.document_url) AS document_url, r.document_sha256, \
                 r.fitting, r.packed_with, r.created_at, r.json, r.result_key \
               FROM tasks t JOIN companies c ON c.id = t.company_id \
                 JOIN batches b ON b.id = t.batch_id LEFT JOIN results r ON r.id = t.result_id \
               WHERE t.batch_id = ?1 \
                 AND (t.kind IN ('year', 'aggregate') \
                      OR (t.kind = 'resolve' AND t.state IN ('skipped', 'failed'))) \
             ) t \
             WHERE (?2 IS NULL OR analysis_type = ?2) AND (?3 IS NULL OR status = ?3) \
             ORDER BY company_id, kind = 'aggregate', fiscal_year DESC, task_id"
        ),
        None => format!(
            "SELECT (SELECT t.batch_id FROM tasks t WHERE t.result_id = r.id ORDER BY t.id \
               LIMIT 1) AS batch_id, {SELECT_COLUMNS} FROM ( \
               SELECT r.*, 'completed' AS status, NULL AS reason FROM results r) r \
             WHERE ?1 IS NULL AND (?2 IS NULL OR analysis_type = ?2) \
               AND (?3 IS NULL OR status = ?3) \
             ORDER BY cik, fiscal_year DESC, analysis_type, id"
        ),
    };
    let mut stmt = conn.prepare(&sql)?;
    let mut out = Vec::new();
    let mut rows = stmt.query(params![batch_id, analysis, state])?;
    while let Some(r) = rows.next()? {
        let mut ident = Vec::with_capacity(IDENTIFYING_COLUMNS.len());
        for (i, name) in IDENTIFYING_COLUMNS.iter().enumerate() {
            let cell = if *name == "created_at" {
                let ms: Option<i64> = r.get(i)?;
                ms.map(|ms| Cell::Text(from_millis(ms).to_string()))
                    .unwrap_or(Cell::Null)
            } else if INTEGER_COLUMNS.contains(name) {
                let v: Option<i64> = r.get(i)?;
                v.map(Cell::Int).unwrap_or(Cell::Null)
            } else {
                let v: Option<String> = r.get(i)?;
                v.map(|s| Cell::Text(mask_keys(&s))).unwrap_or(Cell::Null)
            };
            ident.push(cell);
        }
        let json: Option<String> = r.get(IDENTIFYING_COLUMNS.len())?;
        let result = match json {
            None => None,
            Some(text) => {
                let mut v: Value =
                    serde_json::from_str(&text).map_err(|e| ExportError::BadStoredJson {
                        result_key: r
                            .get::<_, Option<String>>(IDENTIFYING_COLUMNS.len() + 1)
                            .ok()
                            .flatten()
                            .unwrap_or_default(),
                        detail: e.to_string(),
                    })?;
                mask_json(&mut v);
                Some(v)
            }
        };
        out.push(Row { ident, result });
    }
    drop(rows);
    drop(stmt);
    let version_column = IDENTIFYING_COLUMNS
        .iter()
        .position(|c| *c == "analysis_version")
        .unwrap_or_default();
    let mut schemas = Schemas::new(&conn);
    for row in &mut out {
        if let (Some(result), Some(Cell::Text(version))) =
            (&mut row.result, row.ident.get(version_column))
        {
            let schema = schemas.for_result(version, result);
            *result = present::arrange(result, schema);
        }
    }
    Ok(out)
}

/// Writes the table as CSV with formula neutralisation.
pub(crate) fn write_csv(table: &Table, w: &mut dyn Write) -> std::io::Result<()> {
    let mut csv = csv::Writer::from_writer(w);
    csv.write_record(&table.columns)?;
    for row in &table.rows {
        let record: Vec<String> = row
            .iter()
            .map(|c| match c {
                Cell::Null => String::new(),
                Cell::Int(i) => i.to_string(),
                Cell::Float(f) => f.to_string(),
                Cell::Bool(b) => b.to_string(),
                Cell::Text(s) => neutralise_formula(s),
            })
            .collect();
        csv.write_record(&record)?;
    }
    csv.flush()?;
    Ok(())
}

/// Writes one JSON object per row: the identifying fields, then `result` as nested JSON.
/// Returns the number of top-level fields.
pub(crate) fn write_jsonl(rows: &[Row], w: &mut dyn Write) -> std::io::Result<usize> {
    for row in rows {
        let mut obj = Map::new();
        for (name, cell) in IDENTIFYING_COLUMNS.iter().zip(&row.ident) {
            obj.insert((*name).to_string(), cell.to_json());
        }
        obj.insert(
            "result".to_string(),
            row.result.clone().unwrap_or(Value::Null),
        );
        serde_json::to_writer(&mut *w, &Value::Object(obj))?;
        w.write_all(b"\n")?;
    }
    Ok(IDENTIFYING_COLUMNS.len() + 1)
}
