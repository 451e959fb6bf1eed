//! The XLSX writer (one sheet, header row, numbers as numbers, text neutralised).

use std::io::Write;

use rust_xlsxwriter::{Format, Workbook, XlsxError};

use crate::flatten::{Cell, Table};
use crate::mask::neutralise_formula;

/// Excel's limit on the characters of one cell.
const MAX_CELL_CHARS: usize = 32_767;
const TRUNCATED: &str = "…[truncated]";

pub(crate) fn write(table: &Table, out: &mut std::fs::File) -> Result<(), String> {
    let buffer = build(table).map_err(|e| format!("cannot build the spreadsheet: {e}"))?;
    out.write_all(&buffer).map_err(|e| e.to_string())
}

fn build(table: &Table) -> Result<Vec<u8>, XlsxError> {
    let mut workbook = Workbook::new();
    let bold = Format::new().set_bold();
    let sheet = workbook.add_worksheet();
    sheet.set_name("results")?;
    for (c, name) in table.columns.iter().enumerate() {
        sheet.write_string_with_format(0, col(c)?, fit(&neutralise_formula(name)), &bold)?;
    }
    for (r, row) in table.rows.iter().enumerate() {
        let r = u32::try_from(r + 1).map_err(|_| XlsxError::RowColumnLimitError)?;
        for (c, cell) in row.iter().enumerate() {
            let c = col(c)?;
            match cell {
                Cell::Null => {}
                Cell::Int(i) => {
                    sheet.write_number(r, c, *i as f64)?;
                }
                Cell::Float(f) => {
                    sheet.write_number(r, c, *f)?;
                }
                Cell::Bool(b) => {
                    sheet.write_boolean(r, c, *b)?;
                }
                Cell::Text(s) => {
                    sheet.write_string(r, c, fit(&neutralise_formula(s)))?;
                }
            }
        }
    }
    workbook.save_to_buffer()
}

fn col(c: usize) -> Result<u16, XlsxError> {
    u16::try_from(c).map_err(|_| XlsxError::RowColumnLimitError)
}

fn fit(text: &str) -> String {
    if text.chars().count() <= MAX_CELL_CHARS {
        return text.to_string();
    }
    let keep = MAX_CELL_CHARS - TRUNCATED.chars().count();
    let mut s: String = text.chars().take(keep).collect();
    s.push_str(TRUNCATED);
    s
}
