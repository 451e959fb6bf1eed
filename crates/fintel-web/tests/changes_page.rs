//! The dashboard's view of `changes` results: on the company page each item's measures with
//! last year's beside them and the added and removed sentences marked; on the result's
//! context page those sentences marked inside both years' text from the document cache.

mod common;

use common::*;
use fintel_changes::{compare_filings, FilingDoc};
use fintel_edgar::{Accession, DocumentCache, DocumentKey, FileName};
use fintel_filing::html_to_text;
use serde_json::{json, Value};

const CHG: &str = "b-chg-0003";
const CHG_CIK: u64 = 1003;

/// A 10-K whose risk factors are `risks`, one paragraph each.
fn report(risks: &[&str]) -> String {
    let risks: String = risks.iter().map(|r| format!("<p>{r}</p>")).collect();
    format!(
        "<html><body><p>FORM 10-K</p><p>CHANGER INC</p>\
         <p><b>Item 1. Business</b></p><p>We make widgets for industry.</p>\
         <p><b>Item 1A. Risk Factors</b></p>{risks}\
         <p><b>Item 1B. Unresolved Staff Comments</b></p><p>None.</p>\
         <p><b>Item 7. Management's Discussion and Analysis of Financial Condition and Results \
         of Operations</b></p><p>Sales rose in every market.</p>\
         <p><b>Item 8. Financial Statements and Supplementary Data</b></p><p>See below.</p>\
         </body></html>"
    )
}

fn reports() -> Vec<(i32, String)> {
    let base = [
        "Competition in our markets is intense.",
        "Our suppliers may fail to deliver components.",
        "Demand for widgets depends on the economy.",
    ];
    vec![
        (2022, report(&base)),
        (
            2023,
            report(&[base[0], base[1], base[2], "Tariffs may raise our costs."]),
        ),
        (
            2024,
            report(&[
                base[0],
                base[2],
                "Tariffs may raise our costs.",
                "A cyberattack &lt;script&gt;alert(1)&lt;/script&gt; could disrupt our systems.",
            ]),
        ),
    ]
}

/// Adds batch `CHG`: CHANGER's three years cached, FY2023 and FY2024 compared with the year
/// before (as the engine stores them), FY2022 skipped. Returns the FY2024 result's id.
fn add_changes(f: &Fixture) -> i64 {
    let store = f.store();
    let now = at("2026-06-15T12:00:00Z");
    store
        .create_batch(
            &new_batch(
                CHG,
                "changes",
                "changes",
                vec![company("CHG", CHG_CIK, "Changer Inc")],
            ),
            now,
        )
        .unwrap();
    resolve_all(&store, CHG, now);
    let cache = DocumentCache::new(&f.cache_dir(), f.clock.clone());
    let texts: Vec<(i32, String)> = reports()
        .into_iter()
        .map(|(year, html)| {
            let filing = filing(CHG_CIK, year, 1);
            cache
                .write(
                    &DocumentKey {
                        cik: CHG_CIK,
                        accession: Accession::parse(&filing.accession).unwrap(),
                        file_name: FileName::parse(&format!("report-{year}.htm")).unwrap(),
                    },
                    html.as_bytes(),
                )
                .unwrap();
            (year, html_to_text(html.as_bytes()).text)
        })
        .collect();
    let text_of = |year: i32| &texts.iter().find(|(y, _)| *y == year).unwrap().1;
    let mut id_2024 = 0;
    let mut t = now;
    while let Some(task) = store.claim_next(CHG, OWNER, t, true).unwrap() {
        t += jiff::SignedDuration::from_mins(1);
        let year = task.fiscal_year.unwrap();
        if year == 2022 {
            store
                .skip_task(task.id, OWNER, "nothing to compare FY2022 with", t)
                .unwrap();
            continue;
        }
        let old = FilingDoc::new(text_of(year - 1), false, None);
        let new = FilingDoc::new(text_of(year), false, None);
        let changes = compare_filings(&old, &new);
        let value = json!({
            "previous_fiscal_year": year - 1,
            "previous_accession": filing(CHG_CIK, year - 1, 1).accession,
            "accession": filing(CHG_CIK, year, 1).accession,
            "form_old": changes.form_old,
            "form_new": changes.form_new,
            "whole": changes.whole,
            "sections": changes.sections,
        });
        let mut result = result_for(&task, "changes", value);
        result.model = "local".into();
        result.fitting = None;
        store
            .complete_with_result(task.id, OWNER, &result, t)
            .unwrap();
        if year == 2024 {
            id_2024 = store
                .find_result(&result.result_key)
                .unwrap()
                .expect("stored");
        }
    }
    id_2024
}

fn stored_json(f: &Fixture, year: i32) -> Value {
    let conn = rusqlite::Connection::open(f.db()).unwrap();
    let text: String = conn
        .query_row(
            "SELECT json FROM results WHERE cik = ?1 AND fiscal_year = ?2",
            rusqlite::params![CHG_CIK as i64, year],
            |r| r.get(0),
        )
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn the_company_page_shows_each_items_measures_beside_last_years_and_the_sentences() {
    let f = fixture();
    let id_2024 = add_changes(&f);
    let app = f.router();
    let a = get(&app, "/companies/CHG").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let page = &a.body;
    let (this, last) = (stored_json(&f, 2024), stored_json(&f, 2023));
    let cosine = |v: &Value| format!("{:.4}", v["sections"]["1A"]["cosine"].as_f64().unwrap());
    assert_ne!(cosine(&this), cosine(&last), "the two years differ");
    // FY2024's risk factors row: this year's cosine, last year's beside it.
    let row_start = page
        .find(&format!("id=\"changes-{id_2024}-item-1A\""))
        .expect("a row for item 1A");
    let row = &page[row_start..row_start + page[row_start..].find("</tr>").unwrap()];
    assert!(
        row.contains(&format!(
            "{}<br><span class=\"prev\" title=\"last year\">{}</span>",
            cosine(&this),
            cosine(&last)
        )),
        "{row}"
    );
    assert!(row.contains("Risk Factors"), "{row}");
    // Their own table: the numbers are not repeated in the across-years table.
    assert!(!page.contains("Sections · 1a · Cosine"), "{page}");
    // Items neither year holds say so instead of numbers.
    assert!(
        page.contains("not compared: last year absent, this year absent"),
        "{page}"
    );
    // The sentences, marked, and hostile text escaped.
    assert!(
        page.contains("<ins class=\"added\">A cyberattack &lt;script&gt;alert(1)&lt;/script&gt; could disrupt our systems.</ins>"),
        "{page}"
    );
    assert!(
        page.contains("<del class=\"removed\">Our suppliers may fail to deliver components.</del>"),
        "{page}"
    );
    assert!(!page.contains("<script>alert(1)"), "escaped");
    // No model read anything: the link to the text says what it is.
    assert!(!page.contains("what the model read"), "{page}");
    assert!(page.contains("the filing's text"), "{page}");
    assert!(page.contains(&format!("href=\"/results/{id_2024}/changes#item-1A\"")));
    // FY2023 has no comparison of the year before stored.
    assert!(page.contains("No comparison of the year before is stored."));
}

#[tokio::test]
async fn the_context_page_marks_the_sentences_in_both_years_text() {
    let f = fixture();
    let id_2024 = add_changes(&f);
    let app = f.router();
    let a = get(&app, &format!("/results/{id_2024}/changes")).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let page = &a.body;
    assert!(page.contains("id=\"item-1A\""), "{page}");
    // Added in this year's text, with the paragraph before it.
    assert!(
        page.contains("<p>Tariffs may raise our costs.</p><p><mark class=\"added\">A cyberattack &lt;script&gt;alert(1)&lt;/script&gt; could disrupt our systems.</mark></p>"),
        "{page}"
    );
    // Removed, in last year's text between its neighbours.
    assert!(
        page.contains("<p>Competition in our markets is intense.</p><p><mark class=\"removed\">Our suppliers may fail to deliver components.</mark></p><p>Demand for widgets depends on the economy.</p>"),
        "{page}"
    );
    assert!(!page.contains("<script>alert(1)"), "escaped");

    // Another analysis's result has no such page; a missing cached document is said plainly.
    let other = get(&app, &format!("/results/{}/changes", f.acme_2024_result)).await;
    assert_eq!(other.status, 404);
    assert!(
        other.body.contains("is not a `changes` comparison"),
        "{}",
        other.body
    );
    let this_year = filing(CHG_CIK, 2024, 1);
    let cached = DocumentCache::new(&f.cache_dir(), f.clock.clone()).path_for(&DocumentKey {
        cik: CHG_CIK,
        accession: Accession::parse(&this_year.accession).unwrap(),
        file_name: FileName::parse("report-2024.htm").unwrap(),
    });
    std::fs::remove_file(&cached).unwrap();
    let gone = get(&app, &format!("/results/{id_2024}/changes")).await;
    assert_eq!(gone.status, 200);
    assert!(gone.body.contains("not in the cache"), "{}", gone.body);
}
