//! A filing: what the model read for a task, rebuilt from the document cache, with the item
//! sections found and which of them fitting cut.

use axum::extract::{Path, State};
use maud::{html, Markup};
use serde_json::Value;

use crate::filing_text::{self, Fate, Fidelity, FilingInput, FilingText, Rebuilt};
use crate::format;
use crate::pages::{external_link, layout, path_segment, state_badge, Nav};
use crate::queries;
use crate::{PageError, Shared};

/// Characters of a cut section shown (they can be long; the document holds the rest).
const MAX_CUT_SHOWN: usize = 200_000;

fn parse_id(what: &str, id: &str) -> Result<i64, PageError> {
    id.parse::<i64>()
        .map_err(|_| PageError::NotFound(format!("{what} {id:?} does not exist (ids are numbers)")))
}

/// What the page says about the filing, whatever led to it.
struct Heading {
    company: String,
    fiscal_year: Option<i32>,
    form: Option<String>,
    accession: Option<String>,
    document_url: Option<String>,
    sha256: Option<String>,
    extra: Markup,
}

pub(crate) async fn for_task(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Markup, PageError> {
    let id = parse_id("task", &id)?;
    let (task, result) = state
        .read(move |store| {
            let task = queries::task(store, id)?
                .ok_or_else(|| PageError::NotFound(format!("task {id} does not exist")))?;
            let result = match task.result_id {
                Some(r) => queries::result(store, r)?,
                None => None,
            };
            Ok((task, result))
        })
        .await?;
    let company = company_text(
        task.ticker.as_deref(),
        task.company_name.as_deref(),
        task.cik,
    );
    let extra = html! {
        dt { "task" } dd {
            (task.id) " · " (task.kind) " · " (state_badge(&task.state))
            @if let Some(r) = &task.reason { " · " span.muted { (r) } }
        }
        dt { "batch" } dd { a href={"/batches/" (path_segment(&task.batch_id))} { code { (task.batch_id) } } }
        @if let Some(p) = &task.period { dt { "period" } dd { (p) } }
        @if let Some(f) = &task.filed { dt { "filed" } dd { (f) } }
        @if let Some(r) = &result {
            dt { "result" } dd { a href={"/companies/" (r.cik) "#result-" (r.id)} { (r.analysis_type) " result" } }
        }
    };
    let heading = Heading {
        company,
        fiscal_year: task.fiscal_year,
        form: task.form.clone(),
        accession: task.accession.clone(),
        document_url: task.document_url.clone(),
        sha256: result.as_ref().and_then(|r| r.document_sha256.clone()),
        extra,
    };
    let body = match task.kind.as_str() {
        "resolve" => html! {
            p.notice { "This task finds which filing serves each fiscal year of the company; it reads no document and calls no model." }
        },
        "aggregate" => html! {
            p.notice {
                "This multi-year task read the company's stored yearly results, not a filing: see them on "
                @match task.cik {
                    Some(cik) => { a href={"/companies/" (cik)} { "the company's results" } }
                    None => { "the company's results" }
                }
                "."
            }
        },
        _ => match (&task.accession, &task.document_url, task.cik) {
            (Some(accession), Some(url), Some(cik)) => {
                let input = FilingInput {
                    cik,
                    accession: accession.clone(),
                    form: task.form.clone().unwrap_or_default(),
                    document_url: url.clone(),
                    fitting: result
                        .as_ref()
                        .and_then(|r| parse_fitting(r.fitting.as_deref())),
                    sha256: result.as_ref().and_then(|r| r.document_sha256.clone()),
                };
                text_section(&state, input).await?
            }
            _ => html! {
                p.notice {
                    "No filing was found for this fiscal year, so the model read nothing"
                    @if let Some(r) = &task.reason { ": " (r) } "."
                }
            },
        },
    };
    Ok(render(heading, body))
}

pub(crate) async fn for_result(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Markup, PageError> {
    let id = parse_id("result", &id)?;
    let r = state
        .read(move |store| {
            queries::result(store, id)?
                .ok_or_else(|| PageError::NotFound(format!("result {id} does not exist")))
        })
        .await?;
    let company = company_text(r.ticker.as_deref(), r.company_name.as_deref(), Some(r.cik));
    let version: String = r.analysis_version.chars().take(12).collect();
    let extra = html! {
        dt { "result" } dd {
            a href={"/companies/" (r.cik) "#result-" (r.id)} { (r.analysis_type) } " · " (r.model)
            " · version " code { (version) }
        }
    };
    let heading = Heading {
        company,
        fiscal_year: r.fiscal_year,
        form: r.form.clone(),
        accession: r.accession.clone(),
        document_url: r.document_url.clone(),
        sha256: r.document_sha256.clone(),
        extra,
    };
    let body = match (r.fiscal_year, &r.accession, &r.document_url) {
        (Some(_), Some(accession), Some(url)) => {
            let input = FilingInput {
                cik: r.cik,
                accession: accession.clone(),
                form: r.form.clone().unwrap_or_default(),
                document_url: url.clone(),
                fitting: parse_fitting(r.fitting.as_deref()),
                sha256: r.document_sha256.clone(),
            };
            text_section(&state, input).await?
        }
        _ => html! {
            p.notice {
                "This is a multi-year result: the model read the stored yearly results, not one filing. See "
                a href={"/companies/" (r.cik)} { "the company's results" } "."
            }
        },
    };
    Ok(render(heading, body))
}

fn parse_fitting(text: Option<&str>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(t).ok())
}

fn company_text(ticker: Option<&str>, name: Option<&str>, cik: Option<u64>) -> String {
    let mut s = String::new();
    if let Some(t) = ticker {
        s.push_str(t);
    }
    if let Some(n) = name {
        if !s.is_empty() {
            s.push_str(" · ");
        }
        s.push_str(n);
    }
    if let Some(c) = cik {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(&format!("(CIK {c})"));
    }
    s
}

fn render(h: Heading, body: Markup) -> Markup {
    let title = format!(
        "{}{}",
        h.company,
        h.fiscal_year.map(|y| format!(" FY{y}")).unwrap_or_default()
    );
    layout(
        &format!("What the model read · {title}"),
        Nav::None,
        None,
        html! {
            h1 { "What the model read" }
            p.meta { (title) @if let Some(f) = &h.form { " · " (f) } }
            dl.facts {
                dt { "company" } dd { (h.company) }
                @if let Some(y) = h.fiscal_year { dt { "fiscal year" } dd { (y) } }
                @if let Some(f) = &h.form { dt { "form" } dd { (f) } }
                @if let Some(a) = &h.accession { dt { "accession" } dd { code { (a) } } }
                @if let Some(u) = &h.document_url { dt { "document" } dd { (external_link(u)) } }
                @if let Some(s) = &h.sha256 { dt { "SHA-256" } dd { code { (s) } } }
                (h.extra)
            }
            (body)
        },
    )
}

async fn text_section(state: &Shared, input: FilingInput) -> Result<Markup, PageError> {
    let cache_dir = state.config.cache_dir.clone();
    let clock = state.config.clock.clone();
    let text = tokio::task::spawn_blocking(move || filing_text::rebuild(&input, &cache_dir, clock))
        .await
        .map_err(|e| PageError::Internal(format!("rebuilding the text stopped: {e}")))?;
    Ok(match text {
        FilingText::Unavailable(why) => html! { p.notice.warn { (why) } },
        FilingText::Text(r) => rebuilt(&r),
    })
}

fn rebuilt(r: &Rebuilt) -> Markup {
    let sent_chars = r.text.chars().count();
    html! {
        @match &r.fidelity {
            Fidelity::Exact => {
                p.notice { "Rebuilt from the cached document; it matches the record of fitting stored with the result." }
            }
            Fidelity::NotRunYet => {
                p.notice.warn {
                    "This task has not been analysed yet: below is the whole document before fitting \
                     (the budget is decided when the task runs)."
                }
            }
            Fidelity::Approximate(why) => { p.notice.warn { "Rebuilt approximately: " (why) "." } }
        }
        @for n in &r.notes { p.notice.warn { (n) } }
        p {
            @if sent_chars < r.document_chars {
                "The model read about " strong { (format::thousands(r.tokens)) " tokens" } ": "
                (format::thousands(sent_chars as u64)) " of the document's "
                (format::thousands(r.document_chars as u64)) " characters."
            } @else {
                "The whole document: " (format::thousands(r.document_chars as u64)) " characters, about "
                (format::thousands(r.tokens)) " tokens."
            }
        }
        h2 { "Item sections" }
        @if r.sections.iter().all(|s| s.fate == Fate::NotFound) {
            p.muted { "No item heading was found in this document." }
        } @else {
            div.table-wrap { table {
                thead { tr { th { "item" } th { "title" } th { "in the document" } th { "sent to the model" } } }
                tbody {
                    @for s in r.sections.iter().filter(|s| s.fate != Fate::NotFound) {
                        tr {
                            td { (s.id) }
                            td { (s.title) }
                            td { (s.status) }
                            td { @match s.fate {
                                Fate::Kept => { "whole" }
                                Fate::PartlyKept(n) => { strong { "partly" } " (" (format::thousands(n as u64)) " characters cut)" }
                                Fate::LeftOut(n) => { strong { "cut" } " (" (format::thousands(n as u64)) " characters)" }
                                Fate::NotFound => { "-" }
                            } }
                        }
                    }
                }
            } }
            @let absent: Vec<&str> = r.sections.iter().filter(|s| s.fate == Fate::NotFound).map(|s| s.id.as_str()).collect();
            @if !absent.is_empty() { p.meta { "Items not found in the document: " (absent.join(", ")) "." } }
        }
        @if r.cut_outside_items > 0 {
            p { (format::thousands(r.cut_outside_items as u64)) " characters outside any item (such as the cover page) were cut." }
        }
        h2 { "Text sent to the model" }
        pre.document #document { (r.text) }
        @if !r.cut_texts.is_empty() {
            h2 { "Cut sections" }
            p.meta { "As they are in the document; the model read none (or only the start) of them." }
            @for (label, text) in &r.cut_texts {
                @let (shown, more) = format::truncate(text, MAX_CUT_SHOWN);
                details {
                    summary { (label) }
                    pre.document { (shown) @if more { "\n[… the rest of this section is not shown]" } }
                }
            }
        }
        p.meta { "Read from " code { (r.document_path.display().to_string()) } "." }
    }
}
