//! Results: the companies with stored results, and one company's results by fiscal year, each
//! analysis as readable sections with its provenance, the key financials as a table with a
//! sparkline per figure, and each analysis's numeric fields with the fiscal years side by side.

use axum::extract::{Path, Query, State};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use crate::changes_view;
use crate::format;
use crate::json_view;
use crate::pages::{external_link, layout, time, Nav};
use crate::queries::{self, ResultRow};
use crate::{PageError, Shared};

/// Companies listed at most on the index (the search narrows it).
const MAX_LISTED: usize = 1_000;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct IndexQuery {
    q: Option<String>,
}

pub(crate) async fn index(
    State(state): State<Shared>,
    Query(query): Query<IndexQuery>,
) -> Result<Markup, PageError> {
    let all = state.read(queries::companies_with_results).await?;
    let q = query.q.as_deref().map(str::trim).unwrap_or("");
    let needle = q.to_lowercase();
    let matching: Vec<_> = all
        .iter()
        .filter(|c| {
            needle.is_empty()
                || c.ticker
                    .as_deref()
                    .is_some_and(|t| t.to_lowercase().starts_with(&needle))
                || c.name
                    .as_deref()
                    .is_some_and(|n| n.to_lowercase().contains(&needle))
                || c.cik.to_string() == needle
        })
        .collect();
    Ok(layout(
        "Results",
        Nav::Results,
        None,
        html! {
            h1 { "Results" }
            form.filters method="get" action="/results" {
                label { "company"
                    input type="search" name="q" placeholder="ticker, name or CIK" value=(q);
                }
                button type="submit" { "Search" }
            }
            @if all.is_empty() {
                p.notice { "No result is stored yet: they appear here as batches complete tasks." }
            } @else if matching.is_empty() {
                p.notice { "No company with results matches " code { (q) } "." }
            } @else {
                p.meta {
                    (format::thousands(matching.len() as u64)) " compan"
                    (if matching.len() == 1 { "y" } else { "ies" }) " with results"
                    @if matching.len() > MAX_LISTED { "; the first " (MAX_LISTED) " are listed, search to narrow" }
                    "."
                }
                div.table-wrap { table {
                    thead { tr { th { "ticker" } th { "company" } th.num { "CIK" } th.num { "results" } th { "fiscal years" } } }
                    tbody {
                        @for c in matching.iter().take(MAX_LISTED) {
                            @let href = format!("/companies/{}", c.cik);
                            tr {
                                td { a href=(href) { (c.ticker.as_deref().unwrap_or("-")) } }
                                td { a href=(href) { (c.name.as_deref().unwrap_or("")) } }
                                td.num { (c.cik) }
                                td.num { (c.results) }
                                td { @match (c.first_year, c.last_year) {
                                    (Some(a), Some(b)) if a != b => { (a) "–" (b) }
                                    (Some(a), _) => { (a) }
                                    _ => { span.muted { "all years" } }
                                } }
                            }
                        }
                    }
                } }
            }
        },
    ))
}

pub(crate) async fn company(
    State(state): State<Shared>,
    Path(company): Path<String>,
) -> Result<Markup, PageError> {
    let wanted = company.clone();
    let results = state
        .read(move |store| queries::company_results(store, &wanted))
        .await?;
    let Some(first) = results.first() else {
        return Err(PageError::NotFound(format!(
            "No stored result for {company:?}: give a ticker or a CIK of a company a batch has \
             analysed (the Results page lists them)."
        )));
    };
    let ticker = first.ticker.clone();
    let name = first.company_name.clone();
    let cik = first.cik;
    let heading = match (&ticker, &name) {
        (Some(t), Some(n)) => format!("{t} · {n}"),
        (Some(t), None) => t.clone(),
        (None, Some(n)) => n.clone(),
        (None, None) => format!("CIK {cik}"),
    };
    // Key financials across years, oldest first.
    let mut financials: Vec<(String, &Value)> = results
        .iter()
        .filter_map(|r| match &r.json {
            Ok(v) if r.fiscal_year.is_some() && json_view::is_financials(&r.analysis_type, v) => {
                Some((year_label(r), v))
            }
            _ => None,
        })
        .collect();
    financials.reverse();
    financials.dedup_by(|a, b| a.0 == b.0);
    // Group by fiscal year (results come newest year first, multi-year ones last).
    let mut groups: Vec<(String, Vec<&ResultRow>)> = Vec::new();
    for r in &results {
        let label = year_label(r);
        match groups.last_mut() {
            Some((l, rows)) if *l == label => rows.push(r),
            _ => groups.push((label, vec![r])),
        }
    }
    Ok(layout(
        &heading,
        Nav::Results,
        None,
        html! {
            h1 { (heading) }
            p.meta { "CIK " (cik) " · " (results.len()) " stored result(s)" }
            nav.years {
                @for (label, _) in &groups {
                    a href={"#" (anchor(label))} { (label) } " "
                }
            }
            @if !financials.is_empty() {
                section #financials {
                    h2 { "Key financials" }
                    (json_view::financials_table(&financials))
                }
            }
            (json_view::years::years_tables(&results))
            @for (label, rows) in &groups {
                section id=(anchor(label)) {
                    h2 { (label) }
                    @for r in rows { (result_card(r, &results)) }
                }
            }
        },
    ))
}

fn year_label(r: &ResultRow) -> String {
    match (r.fiscal_year, &r.fiscal_year_label) {
        (Some(y), Some(l)) if l != &y.to_string() && !l.is_empty() => format!("FY{y} ({l})"),
        (Some(y), _) => format!("FY{y}"),
        (None, _) => "All years".to_string(),
    }
}

fn anchor(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// The company's `changes` result of the fiscal year before `r`'s, if stored.
fn last_years_changes<'a>(r: &ResultRow, all: &'a [ResultRow]) -> Option<&'a Value> {
    let year = r.fiscal_year? - 1;
    all.iter()
        .filter(|o| o.analysis_type == r.analysis_type && o.fiscal_year == Some(year))
        .find_map(|o| o.json.as_ref().ok())
}

fn result_card(r: &ResultRow, all: &[ResultRow]) -> Markup {
    let version: String = r.analysis_version.chars().take(12).collect();
    html! {
        article.result id={"result-" (r.id)} {
            h3 { (format::humanize(&r.analysis_type)) }
            @match &r.json {
                Ok(v) if changes_view::is_changes(&r.analysis_type, v) => {
                    (changes_view::render(v, last_years_changes(r, all), r.id))
                }
                Ok(v) => { (json_view::render_result(v, r.schema.as_ref())) }
                Err(e) => { p.notice.error { "The stored JSON does not parse (" (e) "); export it to look at it." } }
            }
            div.provenance {
                dl.facts {
                    dt { "filing" }
                    dd {
                        (r.form.as_deref().unwrap_or("-")) ", accession " code { (r.accession.as_deref().unwrap_or("-")) }
                        @if r.fiscal_year.is_some() && r.accession.is_some() {
                            " · " a href={"/results/" (r.id) "/document"} { (document_link_label(&r.model)) }
                        }
                    }
                    @if let Some(url) = &r.document_url { dt { "document" } dd { (external_link(url)) } }
                    @if let Some(sha) = &r.document_sha256 { dt { "SHA-256" } dd { code { (sha) } } }
                    dt { "model" } dd { (r.model) }
                    dt { "analysis version" } dd { code { (version) } }
                    dt { "tokens" } dd {
                        (format::thousands(r.prompt_tokens)) " in, " (format::thousands(r.output_tokens)) " out, "
                        (format::thousands(r.thinking_tokens)) " thinking"
                    }
                    dt { "attempts" } dd { (r.attempts) }
                    @if let Some(years) = &r.packed_with {
                        dt { "packed" } dd { "one request answered fiscal years " (years.replace(',', ", ")) }
                    }
                    dt { "stored" } dd { (time(r.created_at)) }
                }
            }
        }
    }
}

/// The words of the link to a result's document text: an analysis that asked no model (the
/// XBRL `financials`, the year-over-year `changes`) read the filing itself.
fn document_link_label(model: &str) -> &'static str {
    if fintel_store::no_model::produced(model) {
        "the filing's text"
    } else {
        "what the model read"
    }
}
