//! A screen for people and spreadsheets: the terminal table, CSV and XLSX files.
//!
//! Columns: rank, ticker, CIK, company, fiscal year, the sort field, the `--show` fields, and
//! `results`, the command that prints the company's results. Lists are joined with `"; "`,
//! objects written as JSON; in files, text that a spreadsheet would run as a formula is
//! neutralised and numbers stay numbers. Files are written to a temporary file beside the
//! target and renamed into place, so a failed write leaves nothing behind.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use fintel_export::neutralise_formula;
use serde_json::Value;

use crate::{Screen, ScreenError, ScreenRow};

/// Widest a text cell of the terminal table gets before it is cut with `…`.
const MAX_TERMINAL_CELL: usize = 40;
/// Excel's limit on the characters of one cell.
const MAX_XLSX_CELL: usize = 32_767;

/// A file format for `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Csv,
    Xlsx,
}

impl FileFormat {
    /// Parses the CLI spelling.
    pub fn parse(s: &str) -> Result<FileFormat, ScreenError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(FileFormat::Csv),
            "xlsx" => Ok(FileFormat::Xlsx),
            _ => Err(ScreenError::BadArgument(format!(
                "unknown format {s:?} for a screen; use csv or xlsx (or --json for JSON on stdout)"
            ))),
        }
    }
}

/// The command that prints a row's result.
pub fn results_command(screen: &Screen, row: &ScreenRow) -> String {
    let company = row.ticker.clone().unwrap_or_else(|| row.cik.to_string());
    match row.fiscal_year {
        Some(year) => format!(
            "fintel results {company} --year {year} --analysis-type {}",
            screen.analysis_type
        ),
        None => format!(
            "fintel results {company} --analysis-type {}",
            screen.analysis_type
        ),
    }
}

/// A cell's text: strings as they are, lists joined, null as empty.
fn cell_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

fn header(screen: &Screen) -> Vec<String> {
    let mut columns: Vec<String> = ["rank", "ticker", "cik", "company_name", "fiscal_year"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    columns.push(screen.sort.clone());
    columns.extend(screen.show.iter().cloned());
    columns.push("results".into());
    columns
}

fn row_values(screen: &Screen, rank: usize, row: &ScreenRow) -> Vec<Value> {
    let mut cells = vec![
        Value::from(rank as u64),
        row.ticker.clone().map_or(Value::Null, Value::String),
        Value::from(row.cik),
        row.company_name.clone().map_or(Value::Null, Value::String),
        row.fiscal_year.map_or(Value::Null, Value::from),
        row.value.clone(),
    ];
    cells.extend(
        screen
            .show
            .iter()
            .map(|f| row.fields.get(f).cloned().unwrap_or(Value::Null)),
    );
    cells.push(Value::String(results_command(screen, row)));
    cells
}

fn cut(text: &str, width: usize) -> String {
    let one_line = text.replace(['\n', '\r', '\t'], " ");
    if one_line.chars().count() <= width {
        return one_line;
    }
    let mut s: String = one_line.chars().take(width - 1).collect();
    s.push('…');
    s
}

/// The screen as an aligned table for the terminal (empty-list message when nothing passed).
pub fn render_table(screen: &Screen) -> String {
    if screen.rows.is_empty() {
        return String::new();
    }
    let columns: Vec<String> = {
        let mut c = vec![
            "#".to_string(),
            "ticker".into(),
            "company".into(),
            "FY".into(),
        ];
        c.push(screen.sort.clone());
        c.extend(screen.show.iter().cloned());
        c.push("results".into());
        c
    };
    let rows: Vec<Vec<String>> = screen
        .rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut cells = vec![
                (i + 1).to_string(),
                row.ticker
                    .clone()
                    .unwrap_or_else(|| format!("CIK {}", row.cik)),
                cut(row.company_name.as_deref().unwrap_or(""), 30),
                row.fiscal_year.map(|y| y.to_string()).unwrap_or_default(),
            ];
            let shown = |v: &Value| match v {
                Value::Null => "-".to_string(),
                v => cut(&cell_text(v), MAX_TERMINAL_CELL),
            };
            cells.push(shown(&row.value));
            cells.extend(
                screen
                    .show
                    .iter()
                    .map(|f| shown(row.fields.get(f).unwrap_or(&Value::Null))),
            );
            cells.push(results_command(screen, row));
            cells
        })
        .collect();
    let widths: Vec<usize> = (0..columns.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain(std::iter::once(columns[c].chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let last = columns.len() - 1;
    for line in std::iter::once(&columns).chain(rows.iter()) {
        for (c, cell) in line.iter().enumerate() {
            if c == last {
                let _ = write!(out, "{cell}");
            } else {
                let pad = widths[c] - cell.chars().count();
                // Numbers and ranks align right, text left.
                if c == 0 || (c >= 4 && is_numeric(cell)) {
                    let _ = write!(out, "{}{cell}  ", " ".repeat(pad));
                } else {
                    let _ = write!(out, "{cell}{}  ", " ".repeat(pad));
                }
            }
        }
        out.push('\n');
    }
    out
}

fn is_numeric(cell: &str) -> bool {
    !cell.is_empty() && cell.parse::<f64>().is_ok()
}

/// Writes the screen to `path` as CSV or XLSX; an existing file is replaced only with `force`.
pub fn write_file(
    screen: &Screen,
    format: FileFormat,
    path: &Path,
    force: bool,
) -> Result<(), ScreenError> {
    let werr = |detail: String| ScreenError::Write {
        path: path.to_path_buf(),
        detail,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(ScreenError::BadArgument(format!(
            "the directory {} does not exist; create it or choose another path",
            dir.display()
        )));
    }
    if path.is_dir() {
        return Err(ScreenError::BadArgument(format!(
            "{} is a directory; give a file name for the screen",
            path.display()
        )));
    }
    if !force && path.exists() {
        return Err(ScreenError::AlreadyExists(path.to_path_buf()));
    }
    let bytes = match format {
        FileFormat::Csv => csv_bytes(screen).map_err(|e| werr(e.to_string()))?,
        FileFormat::Xlsx => {
            xlsx_bytes(screen).map_err(|e| werr(format!("cannot build the spreadsheet: {e}")))?
        }
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".fintel-screen-")
        .suffix(".part")
        .tempfile_in(&dir)
        .map_err(|e| werr(format!("cannot create a temporary file: {e}")))?;
    tmp.write_all(&bytes).map_err(|e| werr(e.to_string()))?;
    tmp.as_file().sync_all().map_err(|e| werr(e.to_string()))?;
    let persisted = if force {
        tmp.persist(path).map(drop)
    } else {
        tmp.persist_noclobber(path).map(drop)
    };
    if let Err(e) = persisted {
        if !force && path.exists() {
            return Err(ScreenError::AlreadyExists(path.to_path_buf()));
        }
        return Err(werr(e.error.to_string()));
    }
    Ok(())
}

fn csv_bytes(screen: &Screen) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(header(screen).iter().map(|c| neutralise_formula(c)))?;
    for (i, row) in screen.rows.iter().enumerate() {
        let cells: Vec<String> = row_values(screen, i + 1, row)
            .iter()
            .map(|v| match v {
                Value::Number(n) => n.to_string(),
                v => neutralise_formula(&cell_text(v)),
            })
            .collect();
        writer.write_record(&cells)?;
    }
    writer.into_inner().map_err(|e| e.into_error().into())
}

fn xlsx_bytes(screen: &Screen) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook, XlsxError};
    let mut workbook = Workbook::new();
    let bold = Format::new().set_bold();
    let sheet = workbook.add_worksheet();
    sheet.set_name("screen")?;
    let col = |c: usize| u16::try_from(c).map_err(|_| XlsxError::RowColumnLimitError);
    for (c, name) in header(screen).iter().enumerate() {
        sheet.write_string_with_format(0, col(c)?, neutralise_formula(name), &bold)?;
    }
    for (i, row) in screen.rows.iter().enumerate() {
        let r = u32::try_from(i + 1).map_err(|_| XlsxError::RowColumnLimitError)?;
        for (c, value) in row_values(screen, i + 1, row).iter().enumerate() {
            let c = col(c)?;
            match value {
                Value::Null => {}
                Value::Number(n) => {
                    if let Some(f) = n.as_f64() {
                        sheet.write_number(r, c, f)?;
                    }
                }
                Value::Bool(b) => {
                    sheet.write_boolean(r, c, *b)?;
                }
                v => {
                    let text: String = neutralise_formula(&cell_text(v))
                        .chars()
                        .take(MAX_XLSX_CELL)
                        .collect();
                    sheet.write_string(r, c, text)?;
                }
            }
        }
    }
    workbook.save_to_buffer()
}
