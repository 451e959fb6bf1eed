//! A company's fiscal years side by side: for each analysis type with two or more yearly
//! results, one table whose rows are the numeric fields (in reading order, nested fields named
//! by their path) and whose columns are the fiscal years, oldest first, with a trend mark (a
//! sparkline and an arrow from the first known year to the last), so ten years read as one
//! table. Values are written as in the result cards (currency and unit, `%`).

use std::collections::BTreeMap;

use fintel_export::present;
use maud::{html, Markup};
use serde_json::Value;

use crate::charts;
use crate::queries::ResultRow;

/// One analysis type's yearly results, oldest first.
struct Series<'r> {
    analysis_type: &'r str,
    years: Vec<(i32, &'r ResultRow, &'r Value)>,
}

/// The yearly results of each analysis type (newest stored result per year), leaving out the
/// key financials and `changes` comparisons (they have their own tables) and multi-year
/// aggregates.
fn series(results: &[ResultRow]) -> Vec<Series<'_>> {
    let mut by_type: BTreeMap<&str, BTreeMap<i32, (&ResultRow, &Value)>> = BTreeMap::new();
    for r in results {
        let (Some(year), Ok(json)) = (r.fiscal_year, &r.json) else {
            continue;
        };
        if r.multi_year
            || r.analysis_type == "financials"
            || r.analysis_type == "changes"
            || !json.is_object()
        {
            continue;
        }
        // Results come newest first within a year: the first one seen is the current one.
        by_type
            .entry(r.analysis_type.as_str())
            .or_default()
            .entry(year)
            .or_insert((r, json));
    }
    by_type
        .into_iter()
        .filter(|(_, years)| years.len() >= 2)
        .map(|(analysis_type, years)| Series {
            analysis_type,
            years: years.into_iter().map(|(y, (r, v))| (y, r, v)).collect(),
        })
        .collect()
}

/// A row: the path to a numeric field and its schema node.
type Field<'a> = (Vec<&'a str>, Option<&'a Value>);

/// The numeric fields over all years, in the newest year's reading order, then any that only
/// older years have.
fn fields<'a>(series: &'a Series<'a>) -> Vec<Field<'a>> {
    let mut out: Vec<Field<'a>> = Vec::new();
    for (_, r, v) in series.years.iter().rev() {
        for (path, node) in present::numeric_fields(v, r.schema.as_ref()) {
            if !out.iter().any(|(p, _)| *p == path) {
                out.push((path, node));
            }
        }
    }
    out
}

/// An arrow from the first known value to the last, with words for screen readers.
fn trend_arrow(values: &[Option<f64>]) -> Markup {
    let known: Vec<f64> = values.iter().flatten().copied().collect();
    let (Some(first), Some(last)) = (known.first(), known.last()) else {
        return html! {};
    };
    if known.len() < 2 {
        return html! {};
    }
    let (mark, words) = if last > first {
        ("↑", "up")
    } else if last < first {
        ("↓", "down")
    } else {
        ("→", "flat")
    };
    html! { span.trend title=(words) aria-label=(words) { (mark) } }
}

/// One row of a table: its label, each year's value and how it reads.
struct Row {
    label: String,
    cells: Vec<(Option<f64>, String)>,
}

/// The rows of one analysis type's table.
fn rows(series: &Series<'_>) -> Vec<Row> {
    fields(series)
        .into_iter()
        .map(|(path, node)| {
            let key = path.last().copied().unwrap_or_default();
            let cells = series
                .years
                .iter()
                .map(|(_, _, v)| {
                    let currency = present::result_currency(v);
                    match present::at_path(v, &path).and_then(Value::as_f64) {
                        Some(n) => (
                            Some(n),
                            present::number_text(n, key, node, currency.as_deref()),
                        ),
                        None => (None, String::new()),
                    }
                })
                .collect();
            Row {
                label: path
                    .iter()
                    .map(|k| present::label(k))
                    .collect::<Vec<_>>()
                    .join(" · "),
                cells,
            }
        })
        .collect()
}

/// The side-by-side tables of a company's results; empty when no analysis has a numeric field
/// known in two years or more.
pub(crate) fn years_tables(results: &[ResultRow]) -> Markup {
    let all = series(results);
    let tables: Vec<(&Series<'_>, Vec<Row>)> = all
        .iter()
        .map(|s| (s, rows(s)))
        .filter(|(_, rows)| {
            rows.iter()
                .any(|r| r.cells.iter().filter(|(n, _)| n.is_some()).count() >= 2)
        })
        .collect();
    if tables.is_empty() {
        return html! {};
    }
    html! {
        section #years {
            h2 { "Across years" }
            @for (s, rows) in &tables {
                h3 { (present::label(s.analysis_type)) }
                div.table-wrap {
                    table.years {
                        thead { tr {
                            th { "Field" }
                            @for (year, _, _) in &s.years { th.num { "FY" (year) } }
                            th { "Trend" }
                        } }
                        tbody {
                            @for row in rows {
                                @let values: Vec<Option<f64>> = row.cells.iter().map(|(n, _)| *n).collect();
                                tr {
                                    th scope="row" { (row.label) }
                                    @for (n, text) in &row.cells {
                                        td.num { @if n.is_some() { (text) } @else { span.muted { "-" } } }
                                    }
                                    td { (charts::sparkline(&values)) " " (trend_arrow(&values)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
