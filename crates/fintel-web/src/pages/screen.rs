//! Screen: the query of `fintel screen` as a form (`/screen?analysis_type=...&sort=...&where=...`)
//! and its short list as a table sortable by any of its columns, each row linking to the
//! company's results; numeric columns carry a small bar.
//!
//! Read-only like every page: one read of the database per request. The fields come from the
//! built-in workflows and the workflows pinned by the batches in the database (the dashboard
//! does not read the user's workflow folder; a custom type's batches pin its schema).
//! Conditions are one per line of the `where` box (or separated by `;`).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fintel_screen::{FieldKind, Screen, ScreenError, ScreenRequest, PRESETS};
use fintel_workflows::Registry;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use crate::format;
use crate::pages::{layout, path_segment, Nav};
use crate::{PageError, Shared};

/// Rows shown when the form does not say (a screen is a short list).
const DEFAULT_TOP: usize = 100;
/// Characters of a text cell before it is cut.
const MAX_CELL_CHARS: usize = 140;

/// The form's fields, all text: an empty input arrives as an empty string.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct ScreenForm {
    preset: Option<String>,
    analysis_type: Option<String>,
    sort: Option<String>,
    order: Option<String>,
    top: Option<String>,
    #[serde(rename = "where")]
    conditions: Option<String>,
    fiscal_year: Option<String>,
    batch_id: Option<String>,
    show: Option<String>,
}

fn filled(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl ScreenForm {
    fn ascending(&self) -> bool {
        filled(&self.order) == Some("asc")
    }

    /// The request the form asks for, `None` when it asks for nothing yet.
    fn request(&self) -> Result<Option<ScreenRequest>, String> {
        let mut request = match filled(&self.preset) {
            Some(name) => {
                let preset = fintel_screen::preset(name).map_err(|e| e.to_string())?;
                ScreenRequest::from_preset(preset)
            }
            None => match filled(&self.analysis_type) {
                None => return Ok(None),
                Some(t) => ScreenRequest {
                    analysis_type: t.to_string(),
                    top: Some(DEFAULT_TOP),
                    ..ScreenRequest::default()
                },
            },
        };
        if let Some(t) = filled(&self.analysis_type) {
            request.analysis_type = t.to_string();
        }
        if let Some(sort) = filled(&self.sort) {
            request.sort = sort.to_string();
        }
        if request.sort.is_empty() {
            return Err("Choose a field to sort by.".into());
        }
        request.ascending = self.ascending();
        if let Some(top) = filled(&self.top) {
            request.top = Some(
                top.parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("“{top}” is not a positive number of rows."))?,
            );
        }
        if let Some(text) = filled(&self.conditions) {
            request.conditions.extend(
                text.split(['\n', ';'])
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_string),
            );
        }
        if let Some(year) = filled(&self.fiscal_year) {
            request.fiscal_year = Some(
                year.parse()
                    .map_err(|_| format!("“{year}” is not a fiscal year (e.g. 2024)."))?,
            );
        }
        request.batch_id = filled(&self.batch_id).map(str::to_string);
        if let Some(show) = filled(&self.show) {
            request.show = show
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
        }
        Ok(Some(request))
    }

    /// This form's query string with the sort set to `field` (the order flips when it is the
    /// current sort field).
    fn sorted_by(&self, field: &str, current: &str, ascending: bool) -> String {
        let order = if field == current && !ascending {
            "asc"
        } else {
            "desc"
        };
        let mut pairs: Vec<(&str, String)> = Vec::new();
        let mut keep = |name: &'static str, value: &Option<String>| {
            if let Some(v) = filled(value) {
                pairs.push((name, v.to_string()));
            }
        };
        keep("preset", &self.preset);
        keep("analysis_type", &self.analysis_type);
        keep("top", &self.top);
        keep("where", &self.conditions);
        keep("fiscal_year", &self.fiscal_year);
        keep("batch_id", &self.batch_id);
        keep("show", &self.show);
        pairs.push(("sort", field.to_string()));
        pairs.push(("order", order.to_string()));
        let query: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", path_segment(v)))
            .collect();
        format!("/screen?{}", query.join("&"))
    }
}

/// What the page read from the database.
struct Outcome {
    /// Analysis types with stored results.
    types: Vec<String>,
    /// The sortable fields of the chosen type, for the form's suggestions.
    fields: Vec<String>,
    screen: Option<Result<Screen, ScreenError>>,
}

pub(crate) async fn page(
    State(state): State<Shared>,
    Query(form): Query<ScreenForm>,
) -> Result<Response, PageError> {
    let request = form.request();
    let wanted = request.clone();
    let outcome = state
        .read(move |store| {
            let registry = Registry::load(&[])
                .map_err(|e| PageError::Internal(format!("the built-in workflows: {e}")))?;
            let types: Vec<String> = store
                .conn()
                .prepare_cached("SELECT DISTINCT analysis_type FROM results ORDER BY 1")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let request = wanted.ok().flatten();
            let fields = request
                .as_ref()
                .and_then(|r| {
                    fintel_screen::fields_of(
                        store,
                        &registry,
                        &r.analysis_type,
                        r.batch_id.as_deref(),
                    )
                    .ok()
                })
                .map(|(_, catalog)| {
                    catalog
                        .sortable_paths()
                        .iter()
                        .map(|s| s.to_string())
                        .collect()
                })
                .unwrap_or_default();
            let screen = request.map(|r| fintel_screen::screen(store, &registry, &r));
            Ok(Outcome {
                types,
                fields,
                screen,
            })
        })
        .await?;
    let (status, problem) = match (&request, &outcome.screen) {
        (Err(message), _) => (StatusCode::BAD_REQUEST, Some(message.clone())),
        (_, Some(Err(e))) if e.is_bad_input() => (StatusCode::BAD_REQUEST, Some(e.to_string())),
        (_, Some(Err(e))) => return Err(PageError::Internal(e.to_string())),
        _ => (StatusCode::OK, None),
    };
    let screen = match &outcome.screen {
        Some(Ok(s)) => Some(s),
        _ => None,
    };
    let body = html! {
        h1 { "Screen" }
        p.meta {
            "Rank companies by a field of their latest result, keep those that pass every condition. "
            "The same query as " code { "fintel screen" } "."
        }
        (form_markup(&form, &outcome))
        @if let Some(problem) = &problem {
            p.notice.error { (problem) }
        }
        @if let Some(screen) = screen {
            (results_markup(&form, screen))
        } @else if problem.is_none() {
            @if outcome.types.is_empty() {
                p.notice { "No result is stored yet: screens work once batches have completed tasks." }
            } @else {
                p.notice { "Choose an analysis type and a field to sort by, or a preset." }
            }
        }
    };
    Ok((status, layout("Screen", Nav::Screen, None, body)).into_response())
}

fn form_markup(form: &ScreenForm, outcome: &Outcome) -> Markup {
    let chosen_type = filled(&form.analysis_type).unwrap_or("");
    let chosen_preset = filled(&form.preset).unwrap_or("");
    html! {
        form.filters.screen method="get" action="/screen" {
            label { "preset"
                select name="preset" {
                    option value="" selected[chosen_preset.is_empty()] { "none" }
                    @for p in PRESETS {
                        option value=(p.name) title=(p.description) selected[chosen_preset == p.name] { (p.name) }
                    }
                }
            }
            label { "analysis type"
                select name="analysis_type" {
                    option value="" selected[chosen_type.is_empty()] { "—" }
                    @for t in &outcome.types {
                        option value=(t) selected[chosen_type == t] { (t) }
                    }
                    @if !chosen_type.is_empty() && !outcome.types.iter().any(|t| t == chosen_type) {
                        option value=(chosen_type) selected { (chosen_type) }
                    }
                }
            }
            label { "sort by"
                input type="text" name="sort" list="screen-fields" placeholder="score"
                    value=(filled(&form.sort).unwrap_or(""));
            }
            datalist #screen-fields {
                @for f in &outcome.fields { option value=(f) {} }
            }
            label { "order"
                select name="order" {
                    option value="desc" selected[!form.ascending()] { "highest first" }
                    option value="asc" selected[form.ascending()] { "lowest first" }
                }
            }
            label { "top"
                input type="number" name="top" min="1" placeholder=(DEFAULT_TOP)
                    value=(filled(&form.top).unwrap_or(""));
            }
            label { "where (one per line: FIELD OP VALUE)"
                textarea name="where" rows="2" placeholder="overall_alpha_score >= 70" {
                    (filled(&form.conditions).unwrap_or(""))
                }
            }
            label { "show"
                input type="text" name="show" placeholder="field, field"
                    value=(filled(&form.show).unwrap_or(""));
            }
            label { "fiscal year"
                input type="number" name="fiscal_year" placeholder="latest"
                    value=(filled(&form.fiscal_year).unwrap_or(""));
            }
            label { "batch"
                input type="text" name="batch_id" placeholder="all"
                    value=(filled(&form.batch_id).unwrap_or(""));
            }
            button type="submit" { "Screen" }
        }
    }
}

/// A column of the table: its field and, for numbers, the largest magnitude (for the bars).
struct Column<'a> {
    field: &'a str,
    numeric: bool,
    max: f64,
}

fn results_markup(form: &ScreenForm, screen: &Screen) -> Markup {
    let mut fields: Vec<&str> = vec![screen.sort.as_str()];
    fields.extend(screen.show.iter().map(String::as_str));
    let value = |row: &fintel_screen::ScreenRow, field: &str| -> Value {
        if field == screen.sort {
            row.value.clone()
        } else {
            row.fields.get(field).cloned().unwrap_or(Value::Null)
        }
    };
    let columns: Vec<Column> = fields
        .iter()
        .map(|&field| {
            let numeric = screen.catalog.get(field) == Some(&FieldKind::Number);
            let max = screen
                .rows
                .iter()
                .filter_map(|r| value(r, field).as_f64())
                .map(f64::abs)
                .fold(0.0, f64::max);
            Column {
                field,
                numeric,
                max,
            }
        })
        .collect();
    let ascending = !screen.descending;
    let scope = match filled(&form.fiscal_year) {
        Some(y) => format!("fiscal year {y}"),
        None => "each company's latest fiscal year".to_string(),
    };
    html! {
        p.meta {
            (format::thousands(screen.matched as u64)) " of "
            (format::thousands(screen.companies as u64)) " compan"
            (if screen.companies == 1 { "y" } else { "ies" }) " with "
            code { (screen.analysis_type) } " results pass (" (scope) ")"
            @if screen.rows.len() < screen.matched { "; the top " (screen.rows.len()) " are listed" }
            "."
            @for c in &screen.conditions { " " code.condition { (c.to_text()) } }
        }
        @if screen.rows.is_empty() {
            p.notice { "No company passes." }
        } @else {
            div.table-wrap { table.screen {
                thead { tr {
                    th.num { "#" }
                    th { "ticker" }
                    th { "company" }
                    th.num { "FY" }
                    @for c in &columns {
                        @let current = c.field == screen.sort;
                        th class=(if c.numeric { "num" } else { "" }) {
                            a href=(form.sorted_by(c.field, &screen.sort, ascending))
                              title="sort by this column" {
                                (c.field)
                                @if current { (if ascending { " ▲" } else { " ▼" }) }
                            }
                        }
                    }
                } }
                tbody {
                    @for (i, row) in screen.rows.iter().enumerate() {
                        @let href = format!("/companies/{}#result-{}", row.cik, row.result_id);
                        tr {
                            td.num { (i + 1) }
                            td { a href=(href) { (row.ticker.as_deref().unwrap_or("-")) } }
                            td { a href=(href) { (row.company_name.as_deref().unwrap_or("")) } }
                            td.num { (row.fiscal_year.map(|y| y.to_string()).unwrap_or_default()) }
                            @for c in &columns {
                                @let v = value(row, c.field);
                                @if c.numeric {
                                    td.num { (number_cell(&v, c.max)) }
                                } @else {
                                    td { (text_cell(&v)) }
                                }
                            }
                        }
                    }
                }
            } }
        }
    }
}

fn number_cell(value: &Value, max: f64) -> Markup {
    let Some(n) = value.as_f64() else {
        return html! { span.muted { "–" } };
    };
    let shown = if n.fract() == 0.0 && n.abs() < 1e15 {
        format::thousands(n.abs() as u64)
    } else {
        format!("{:.2}", n.abs())
    };
    let width = if max > 0.0 {
        (n.abs() / max * 100.0).clamp(0.0, 100.0)
    } else {
        0.0
    };
    html! {
        @if n < 0.0 { "−" } (shown) " "
        svg.spark viewBox="0 0 100 24" role="img" aria-label={"bar: " (format!("{width:.0}")) "% of the column's largest"} {
            rect.dot x="0" y="8" height="8" width=(format!("{width:.1}")) {}
        }
    }
}

fn text_cell(value: &Value) -> Markup {
    let text = match value {
        Value::Null => return html! { span.muted { "–" } },
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    };
    if text.chars().count() <= MAX_CELL_CHARS {
        return html! { (text) };
    }
    let cut: String = text.chars().take(MAX_CELL_CHARS - 1).collect();
    html! { span title=(text) { (cut) "…" } }
}
