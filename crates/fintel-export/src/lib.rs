//! Exports of stored results to CSV, JSONL, Parquet and XLSX, and the readable view behind
//! `fintel results TICKER`.
//!
//! # Rows
//! With a batch named, one row per task that stands for a (company, fiscal year, analysis):
//! every `year` and `aggregate` task, plus `resolve` tasks that ended skipped or failed (an
//! unknown ticker never gets yearly tasks, yet the user must see why). Without a batch, one row
//! per stored result (status `completed`; the batch column names the first batch that used it).
//!
//! # Columns
//! The identifying columns ([`IDENTIFYING_COLUMNS`]) come first, then, for the tabular formats,
//! the result JSON flattened:
//! - nested objects become dotted names (`moat.rating`);
//! - arrays of scalars become one cell, the items joined with `"; "`;
//! - arrays holding objects or arrays are written as compact JSON in one cell;
//! - a key that would clash with an identifying column is prefixed with `result.`;
//! - a result that is not a JSON object goes whole into a `result` column.
//!
//! The columns are the union of the keys over all rows, in first-seen order across rows; within
//! one object the keys come in reading order ([`present::arrange`]): the summary, verdict and
//! score first, then the order of the analysis's schema (its `propertyOrdering`, as the
//! workflow file wrote the properties). A row lacking a key has an empty cell. JSONL keeps the
//! nested JSON as a `result` object instead, in the same order. Values stay raw numbers and
//! strings in every export (the currency and unit formatting of [`present`] is for reading).
//!
//! # Safety
//! Every text cell passes through [`mask_keys`], so an API key that slipped into a reason or a
//! model answer never leaves in clear. In CSV and XLSX, text starting with `=`, `+`, `-`, `@`,
//! tab or carriage return is prefixed with `'` so a spreadsheet never runs it as a formula;
//! numbers (including negative ones, and text that is exactly a number) stay numbers.
//!
//! Files are written to a temporary file in the target directory and renamed into place, so a
//! failed export leaves nothing behind; an existing file is only replaced with `force`.
//!
//! # Parquet
//! Behind the default feature `parquet`. Integer columns (`cik`, `fiscal_year`, `attempts`, the
//! token counts) are nullable INT64; every other column is a nullable UTF8 string (JSON numbers
//! and booleans of the result included, as their JSON text). Pages are uncompressed.
//!
//! # XLSX
//! One sheet named `results`. Cells are limited by Excel to 32,767 characters; longer text is
//! cut and ends with `…[truncated]`.

mod flatten;
mod mask;
#[cfg(feature = "parquet")]
mod parquet_out;
pub mod present;
mod rows;
mod view;
mod xlsx;

use std::io::Write;
use std::path::{Path, PathBuf};

pub use flatten::Cell;
pub use mask::{mask_keys, neutralise_formula};
pub use rows::IDENTIFYING_COLUMNS;
pub use view::{
    company_results, render_text, result_by_id, results_view, ResultView, StoredResult,
};

use fintel_store::{Store, StoreError};

/// Which task outcomes an export includes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatusFilter {
    #[default]
    Completed,
    Skipped,
    Failed,
    /// Every task, whatever its state (pending and running included).
    All,
}

impl StatusFilter {
    /// Parses the CLI spelling (`completed`, `skipped`, `failed`, `all`).
    pub fn parse(s: &str) -> Result<Self, ExportError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "completed" => Ok(Self::Completed),
            "skipped" => Ok(Self::Skipped),
            "failed" => Ok(Self::Failed),
            "all" => Ok(Self::All),
            _ => Err(ExportError::BadArgument(format!(
                "unknown status filter {s:?}; use completed, skipped, failed or all"
            ))),
        }
    }

    pub(crate) fn task_state(self) -> Option<&'static str> {
        match self {
            Self::Completed => Some("completed"),
            Self::Skipped => Some("skipped"),
            Self::Failed => Some("failed"),
            Self::All => None,
        }
    }
}

/// The output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
    Parquet,
    Xlsx,
}

impl Format {
    /// Parses the CLI spelling (`csv`, `jsonl`, `parquet`, `xlsx`).
    pub fn parse(s: &str) -> Result<Self, ExportError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(Self::Csv),
            "jsonl" => Ok(Self::Jsonl),
            "parquet" => Ok(Self::Parquet),
            "xlsx" => Ok(Self::Xlsx),
            _ => Err(ExportError::BadArgument(format!(
                "unknown export format {s:?}; use csv, jsonl, parquet or xlsx"
            ))),
        }
    }
}

/// The format's name as people write it: `CSV`, `JSONL`, `Parquet`, `XLSX`.
impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Csv => "CSV",
            Format::Jsonl => "JSONL",
            Format::Parquet => "Parquet",
            Format::Xlsx => "XLSX",
        })
    }
}

/// What to export.
#[derive(Debug, Clone, Default)]
pub struct ExportQuery {
    /// A batch id or unique prefix; `None` exports every stored result.
    pub batch_id: Option<String>,
    pub analysis_type: Option<String>,
    pub status: StatusFilter,
}

/// Where the export goes.
pub enum Output<'a> {
    /// A file; an existing one is replaced only with `force`.
    Path { path: PathBuf, force: bool },
    /// A stream (stdout); CSV and JSONL only.
    Stdout(&'a mut dyn Write),
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExportSummary {
    pub rows: usize,
    pub columns: usize,
    /// The file written, `None` for a stream.
    pub path: Option<PathBuf>,
}

/// Errors of exports and views. Messages say what to do.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}")]
    Store(#[from] StoreError),

    #[error("database error while reading results: {0}")]
    Sqlite(#[from] rusqlite::Error),

    #[error("{0}")]
    BadArgument(String),

    #[error("{} already exists; pass --force to replace it or choose another path", .0.display())]
    AlreadyExists(PathBuf),

    #[error(
        "the directory {} for the export does not exist; create it or choose another path",
        .0.display()
    )]
    NoDirectory(PathBuf),

    #[error("{format} cannot be written to stdout; give a file path with --output")]
    NotStreamable { format: Format },

    #[error("parquet export is not built into this fintel (feature `parquet` disabled)")]
    ParquetDisabled,

    #[error("could not write the export to {}: {detail}; nothing was written", .path.display())]
    Write { path: PathBuf, detail: String },

    #[error("stored result {result_key} has invalid JSON ({detail}); re-run its analysis")]
    BadStoredJson { result_key: String, detail: String },
}

/// Exports the results selected by `query` in `format` to `out`.
pub fn export(
    store: &Store,
    query: &ExportQuery,
    format: Format,
    out: Output<'_>,
) -> Result<ExportSummary, ExportError> {
    if let Some(t) = &query.analysis_type {
        if t.trim().is_empty() {
            return Err(ExportError::BadArgument(
                "--analysis-type is empty; give an analysis type or leave it out".into(),
            ));
        }
    }
    if format == Format::Parquet && !cfg!(feature = "parquet") {
        return Err(ExportError::ParquetDisabled);
    }
    match out {
        Output::Stdout(w) => {
            if matches!(format, Format::Parquet | Format::Xlsx) {
                return Err(ExportError::NotStreamable { format });
            }
            let rows = rows::load(store, query)?;
            let write_err = |e: std::io::Error| ExportError::Write {
                path: PathBuf::from("-"),
                detail: e.to_string(),
            };
            let columns = write_stream(format, &rows, w).map_err(write_err)?;
            Ok(ExportSummary {
                rows: rows.len(),
                columns,
                path: None,
            })
        }
        Output::Path { path, force } => {
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            if !dir.is_dir() {
                return Err(ExportError::NoDirectory(dir));
            }
            if path.is_dir() {
                return Err(ExportError::BadArgument(format!(
                    "{} is a directory; give a file name for the export",
                    path.display()
                )));
            }
            if !force && path.exists() {
                return Err(ExportError::AlreadyExists(path));
            }
            let rows = rows::load(store, query)?;
            let columns = write_file(format, &rows, &dir, &path, force)?;
            Ok(ExportSummary {
                rows: rows.len(),
                columns,
                path: Some(path),
            })
        }
    }
}

fn write_stream(format: Format, rows: &[rows::Row], w: &mut dyn Write) -> std::io::Result<usize> {
    let n = match format {
        Format::Jsonl => rows::write_jsonl(rows, &mut *w)?,
        _ => {
            let table = flatten::Table::build(rows);
            rows::write_csv(&table, &mut *w)?;
            table.columns.len()
        }
    };
    w.flush()?;
    Ok(n)
}

fn write_file(
    format: Format,
    rows: &[rows::Row],
    dir: &Path,
    path: &Path,
    force: bool,
) -> Result<usize, ExportError> {
    let werr = |detail: String| ExportError::Write {
        path: path.to_path_buf(),
        detail,
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".fintel-export-").suffix(".part");
    // A temporary file is private (0600); an export is the user's file like any other, so it
    // is created as `open` would create it: 0666 less the user's umask.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder
        .tempfile_in(dir)
        .map_err(|e| werr(format!("cannot create a temporary file: {e}")))?;
    let columns = match format {
        Format::Csv | Format::Jsonl => {
            let mut buf = std::io::BufWriter::new(tmp.as_file_mut());
            let n = write_stream(format, rows, &mut buf).map_err(|e| werr(e.to_string()))?;
            buf.flush().map_err(|e| werr(e.to_string()))?;
            n
        }
        Format::Xlsx => {
            let table = flatten::Table::build(rows);
            xlsx::write(&table, tmp.as_file_mut()).map_err(werr)?;
            table.columns.len()
        }
        Format::Parquet => {
            #[cfg(feature = "parquet")]
            {
                let table = flatten::Table::build(rows);
                parquet_out::write(&table, tmp.as_file_mut()).map_err(werr)?;
                table.columns.len()
            }
            #[cfg(not(feature = "parquet"))]
            return Err(ExportError::ParquetDisabled);
        }
    };
    tmp.as_file().sync_all().map_err(|e| werr(e.to_string()))?;
    // Without force the rename itself refuses an existing file, so a file that appeared
    // meanwhile is not clobbered either.
    let persisted = if force {
        tmp.persist(path).map(drop)
    } else {
        tmp.persist_noclobber(path).map(drop)
    };
    if let Err(e) = persisted {
        if !force && path.exists() {
            return Err(ExportError::AlreadyExists(path.to_path_buf()));
        }
        return Err(werr(e.error.to_string()));
    }
    Ok(columns)
}
