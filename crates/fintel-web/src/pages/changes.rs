//! A `changes` result's sentences in context: for each compared item, this year's text with
//! the added sentences marked and last year's with the removed ones marked, each shown with
//! the paragraphs around it. Both texts are rebuilt from the document cache the way the worker
//! read them (the dashboard never downloads).

use axum::extract::{Path, State};
use fintel_changes::FilingDoc;
use fintel_filing::FormKind;
use maud::{html, Markup};
use serde_json::Value;

use crate::filing_text::{self, FilingInput, FilingText};
use crate::pages::{layout, Nav};
use crate::queries;
use crate::{PageError, Shared};

/// Paragraphs shown before and after a paragraph holding a marked sentence.
const CONTEXT_LINES: usize = 1;

pub(crate) async fn page(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Markup, PageError> {
    let id = id.parse::<i64>().map_err(|_| {
        PageError::NotFound(format!("result {id:?} does not exist (ids are numbers)"))
    })?;
    let r = state
        .read(move |store| {
            queries::result(store, id)?
                .ok_or_else(|| PageError::NotFound(format!("result {id} does not exist")))
        })
        .await?;
    let v = match &r.json {
        Ok(v) if crate::changes_view::is_changes(&r.analysis_type, v) => v.clone(),
        _ => {
            return Err(PageError::NotFound(format!(
                "result {id} is not a `changes` comparison; its page is /companies/{}",
                r.cik
            )))
        }
    };
    let previous_accession = v
        .get("previous_accession")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let (cik, wanted) = (r.cik, previous_accession.clone());
    let previous = state
        .read(move |store| queries::filing_document(store, cik, &wanted))
        .await?;
    let current = FilingInput {
        cik: r.cik,
        accession: r.accession.clone().unwrap_or_default(),
        form: r.form.clone().unwrap_or_default(),
        document_url: r.document_url.clone().unwrap_or_default(),
        fitting: None,
        sha256: r.document_sha256.clone(),
    };
    let previous = previous.map(|(form, document_url)| FilingInput {
        cik: r.cik,
        accession: previous_accession.clone(),
        form,
        document_url,
        fitting: None,
        sha256: None,
    });
    let new_doc = doc(&state, Some(current)).await?;
    let old_doc = doc(&state, previous).await?;

    let heading = format!(
        "{} FY{}: what changed",
        r.ticker
            .as_deref()
            .unwrap_or(r.company_name.as_deref().unwrap_or("")),
        r.fiscal_year.unwrap_or_default()
    );
    let sections: Vec<(String, &Value)> = v
        .get("sections")
        .and_then(Value::as_object)
        .map(|s| s.iter().map(|(k, v)| (k.clone(), v)).collect())
        .unwrap_or_default();
    Ok(layout(
        &heading,
        Nav::Results,
        None,
        html! {
            h1 { (heading) }
            p.meta {
                a href={"/companies/" (r.cik) "#result-" (r.id)} { "the measures" }
                " · this year " code { (r.accession.as_deref().unwrap_or("-")) }
                " · last year " code { (previous_accession) }
            }
            @for (id, s) in &sections {
                @let added = strings(s, "added");
                @let removed = strings(s, "removed");
                @if !added.is_empty() || !removed.is_empty() {
                    section.context id={"item-" (id)} {
                        h2 { "Item " (id) " " span.muted { (s.get("title").and_then(Value::as_str).unwrap_or("")) } }
                        h3 { "Added this year" }
                        (in_context(&new_doc, id, &added, "added"))
                        h3 { "Removed since last year" }
                        (in_context(&old_doc, id, &removed, "removed"))
                    }
                }
            }
        },
    ))
}

/// A filing's text from the cache, or why it cannot be shown.
async fn doc(
    state: &Shared,
    input: Option<FilingInput>,
) -> Result<Result<FilingDoc, String>, PageError> {
    let Some(input) = input else {
        return Ok(Err(
            "The previous year's filing is not recorded in this database, so its text cannot be shown.".to_string(),
        ));
    };
    let cache_dir = state.config.cache_dir.clone();
    let clock = state.config.clock.clone();
    tokio::task::spawn_blocking(
        move || match filing_text::rebuild(&input, &cache_dir, clock) {
            FilingText::Unavailable(why) => Err(why),
            FilingText::Text(r) => Ok(FilingDoc::new(
                &r.text,
                false,
                FormKind::parse(&input.form).ok(),
            )),
        },
    )
    .await
    .map_err(|e| PageError::Internal(format!("rebuilding the text stopped: {e}")))
}

fn strings<'a>(row: &'a Value, key: &str) -> Vec<&'a str> {
    row.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The item's paragraphs that hold one of `sentences`, each with its neighbours, the
/// sentences marked with class `class`.
fn in_context(
    doc: &Result<FilingDoc, String>,
    id: &str,
    sentences: &[&str],
    class: &str,
) -> Markup {
    if sentences.is_empty() {
        return html! { p.muted { "none" } };
    }
    let body = match doc {
        Ok(doc) => doc.section_body(id),
        Err(why) => return html! { p.notice.warn { (why) } },
    };
    let Some(body) = body else {
        return html! { p.notice.warn { "The item's text is not found in the cached document." } };
    };
    let lines: Vec<&str> = body.lines().collect();
    let holds: Vec<bool> = lines
        .iter()
        .map(|l| sentences.iter().any(|s| !s.is_empty() && l.contains(s)))
        .collect();
    let shown: Vec<bool> = (0..lines.len())
        .map(|i| {
            let from = i.saturating_sub(CONTEXT_LINES);
            let to = (i + CONTEXT_LINES).min(lines.len().saturating_sub(1));
            (from..=to).any(|j| holds[j])
        })
        .collect();
    if !holds.iter().any(|h| *h) {
        return html! { p.notice.warn { "The sentences are not found in the cached document's text." } };
    }
    html! {
        @for (i, line) in lines.iter().enumerate() {
            @if shown[i] {
                p { (marked(line, sentences, class)) }
            } @else if i > 0 && shown[i - 1] {
                p.gap { "…" }
            }
        }
    }
}

/// `line` with each occurrence of one of `sentences` inside a `mark` of class `class`.
fn marked(line: &str, sentences: &[&str], class: &str) -> Markup {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for s in sentences.iter().filter(|s| !s.is_empty()) {
        let mut from = 0;
        while let Some(at) = line[from..].find(s) {
            let start = from + at;
            spans.push((start, start + s.len()));
            from = start + s.len();
        }
    }
    spans.sort_unstable();
    let mut pieces: Vec<(bool, &str)> = Vec::new();
    let mut at = 0;
    for (start, end) in spans {
        if start < at {
            continue;
        }
        pieces.push((false, &line[at..start]));
        pieces.push((true, &line[start..end]));
        at = end;
    }
    pieces.push((false, &line[at..]));
    html! {
        @for (mark, text) in pieces {
            @if mark { mark class=(class) { (text) } } @else { (text) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_are_marked_where_they_occur_and_escaped() {
        let line = "Sales rose. Tariffs <may> hurt. Sales rose.";
        let html = marked(line, &["Tariffs <may> hurt.", "Sales rose."], "added").into_string();
        assert_eq!(
            html,
            "<mark class=\"added\">Sales rose.</mark> <mark class=\"added\">Tariffs &lt;may&gt; hurt.</mark> <mark class=\"added\">Sales rose.</mark>"
        );
        assert_eq!(marked("nothing", &["x"], "added").into_string(), "nothing");
    }

    #[test]
    fn context_is_the_marked_paragraphs_with_their_neighbours() {
        let text = "FORM 10-K\nItem 1A. Risk Factors\nOne.\nTwo.\nThree.\nFour new.\nFive.\nSix.\nSeven.\nItem 1B. Unresolved Staff Comments\nNone.\n";
        let doc = Ok(FilingDoc::new(text, false, Some(FormKind::TenK)));
        let html = in_context(&doc, "1A", &["Four new."], "added").into_string();
        assert!(!html.contains("Two."), "{html}");
        assert!(
            html.contains("<p>Three.</p><p><mark class=\"added\">Four new.</mark></p><p>Five.</p>"),
            "{html}"
        );
        assert!(html.contains("…"), "{html}");
        let missing = in_context(&doc, "1A", &["Absent."], "added").into_string();
        assert!(missing.contains("not found"), "{missing}");
    }
}
