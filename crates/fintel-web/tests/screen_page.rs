//! The Screen page over the fixture's database plus a scored batch: the form, the ranked
//! table with its links, bars and sortable headers, bad input shown on the page, and the
//! dashboard's security rules (escaping, no inline script, CSP, Host check).

mod common;

use common::*;
use fintel_store::{FilingRef, NewBatch, NewCompany, NewResult, Store, TaskKind, YearPlan};
use fintel_time::Clock;
use jiff::Timestamp;
use serde_json::json;

/// Adds a `fundamental` batch whose results carry scores and balance-sheet strengths:
/// HIGH (CIK 2001) 9 very_strong, LOWER (2002) 3 weak, NOSCORE (2003) none, and EVIL's hostile
/// name again (CIK 2004) 6 strong. Returns the result id of HIGH.
fn add_scored_batch(store: &Store, at: Timestamp) -> i64 {
    let registry = fintel_workflows::Registry::load(&[]).unwrap();
    let workflow = registry.get("fundamental").unwrap();
    let names = [
        ("HIGH", 2001u64, "High Scorer Inc".to_string()),
        ("LOWER", 2002, "Lower Ltd".to_string()),
        ("NOSCORE", 2003, "No Score plc".to_string()),
        ("EVIL2", 2004, format!("Evil {SCRIPT} Two {IMG}")),
    ];
    store
        .create_batch(
            &NewBatch {
                id: "b-scored-0003".into(),
                name: None,
                analysis_type: "fundamental".into(),
                analysis_version: workflow.version.clone(),
                workflow: workflow.canonical.clone(),
                min_years: 1,
                years_spec: r#"{"explicit":[2024]}"#.into(),
                as_of_date: "2026-06-01".into(),
                model: "gemini-2.5-flash".into(),
                settings: "{}".into(),
                priority: 0,
                input_file: None,
                companies: names
                    .iter()
                    .map(|(t, c, n)| NewCompany {
                        line_no: None,
                        ticker: Some(t.to_string()),
                        cik: Some(*c),
                        company_name: Some(n.clone()),
                        priority: 0,
                        skip_reason: None,
                    })
                    .collect(),
            },
            at,
        )
        .unwrap();
    let mut high = 0;
    while let Some(task) = store.claim_next("b-scored-0003", OWNER, at, true).unwrap() {
        let cik = task.cik.unwrap();
        let accession = format!("{cik:010}-25-000001");
        if task.kind == TaskKind::Resolve {
            let plan = YearPlan {
                fiscal_year: 2024,
                filing: Some(FilingRef {
                    accession,
                    form: "10-K".into(),
                    period: Some("2024-12-31".into()),
                    filed: Some("2025-02-20".into()),
                    document_url: format!("https://www.sec.gov/Archives/edgar/data/{cik}/a.htm"),
                    transition: false,
                }),
                skip_reason: None,
            };
            store
                .complete_resolution(task.id, OWNER, &[plan], true, false, None, at)
                .unwrap();
            continue;
        }
        let json = match cik {
            2001 => {
                json!({"score": 9, "balance_sheet": {"strength": "very_strong"}, "summary": "Best."})
            }
            2002 => json!({"score": 3, "balance_sheet": {"strength": "weak"}, "summary": "Weak."}),
            2003 => json!({"balance_sheet": {"strength": "adequate"}, "summary": "Unscored."}),
            _ => json!({"score": 6, "balance_sheet": {"strength": "strong"}, "summary": SCRIPT}),
        };
        let id = store
            .complete_with_result(
                task.id,
                OWNER,
                &NewResult {
                    result_key: format!("{cik}/{accession}/fundamental/{}/m", workflow.version),
                    cik,
                    ticker: task.ticker.clone(),
                    company_name: task.company_name.clone(),
                    fiscal_year: Some(2024),
                    accession: Some(accession),
                    analysis_type: "fundamental".into(),
                    analysis_version: workflow.version.clone(),
                    model: "gemini-2.5-flash".into(),
                    json: json.to_string(),
                    ..Default::default()
                },
                at,
            )
            .unwrap();
        if cik == 2001 {
            high = id;
        }
    }
    high
}

#[tokio::test]
async fn the_screen_page_ranks_links_and_sorts_by_any_column() {
    let f = fixture();
    let high = add_scored_batch(&f.store(), f.clock.now());
    let app = f.router();

    // The empty form lists the stored types and the presets.
    let a = get(&app, "/screen").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        a.body
            .contains("<form class=\"filters screen\" method=\"get\" action=\"/screen\">"),
        "{}",
        a.body
    );
    assert!(
        a.body
            .contains("<option value=\"fundamental\">fundamental</option>"),
        "{}",
        a.body
    );
    assert!(
        a.body.contains("<option value=\"compounders\""),
        "{}",
        a.body
    );
    assert!(
        a.body.contains("href=\"/screen\""),
        "the navigation links the page"
    );
    assert_no_live_markup(&a.body, "empty screen page");

    let a = get(
        &app,
        "/screen?analysis_type=fundamental&sort=score&where=balance_sheet.strength+%3E%3D+weak&show=balance_sheet.strength,summary",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let page = &a.body;
    assert_no_live_markup(page, "screen results");
    assert!(
        page.contains("Evil &lt;script&gt;alert(1)&lt;/script&gt; Two"),
        "{page}"
    );
    // Ranked by score, missing scores last; the fixture's ACME and EVIL have no score and no
    // strength: they fail the condition.
    let order: Vec<usize> = ["HIGH", "EVIL2", "LOWER", "NOSCORE"]
        .iter()
        .map(|t| {
            page.find(&format!(">{t}</a>"))
                .unwrap_or_else(|| panic!("{t}\n{page}"))
        })
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}\n{page}");
    assert!(!page.contains(">ACME</a>"), "{page}");
    assert!(
        page.contains("4 of 6 companies with <code>fundamental</code> results pass"),
        "{page}"
    );
    // Each row links to the company's result.
    assert!(
        page.contains(&format!("href=\"/companies/2001#result-{high}\"")),
        "{page}"
    );
    // Numbers carry a bar scaled to the column's largest value, as SVG (no inline style).
    assert!(
        page.contains("<rect class=\"dot\" x=\"0\" y=\"8\" height=\"8\" width=\"100.0\">"),
        "{page}"
    );
    assert!(page.contains("width=\"33.3\""), "3 of 9: {page}");
    assert!(
        !page.contains(" style="),
        "the CSP forbids inline style: {page}"
    );
    // Headers re-sort: the current column flips its order, another sorts highest first.
    assert!(page.contains("href=\"/screen?analysis_type=fundamental&amp;where=balance_sheet.strength%20%3E%3D%20weak&amp;show=balance_sheet.strength%2Csummary&amp;sort=score&amp;order=asc\""), "{page}");
    assert!(
        page.contains("sort=balance_sheet.strength&amp;order=desc"),
        "{page}"
    );

    // Ascending, nulls still last; an enum column sorted by its schema rank.
    let a = get(
        &app,
        "/screen?analysis_type=fundamental&sort=score&order=asc&batch_id=b-scored",
    )
    .await;
    let order: Vec<usize> = ["LOWER", "EVIL2", "HIGH", "NOSCORE"]
        .iter()
        .map(|t| a.body.find(&format!(">{t}</a>")).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{}", a.body);
    let a = get(
        &app,
        "/screen?analysis_type=fundamental&sort=balance_sheet.strength&batch_id=b-scored",
    )
    .await;
    let order: Vec<usize> = ["HIGH", "EVIL2", "NOSCORE", "LOWER"]
        .iter()
        .map(|t| a.body.find(&format!(">{t}</a>")).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{}", a.body);
}

#[tokio::test]
async fn bad_screens_are_explained_on_the_page_with_status_400() {
    let f = fixture();
    add_scored_batch(&f.store(), f.clock.now());
    let app = f.router();
    let cases = [
        ("/screen?analysis_type=fundamental&sort=alpha", "unknown field `alpha` for analysis type fundamental; its fields are: reporting_currency"),
        ("/screen?analysis_type=fundamental&sort=score&where=score+%3D%3E+3", "unknown operator `=&gt;`"),
        ("/screen?analysis_type=fundamental&sort=score&where=score+%3E+high", "`high` is not a number"),
        ("/screen?analysis_type=fundamental&sort=score&top=ten", "is not a positive number of rows"),
        ("/screen?analysis_type=fundamental", "Choose a field to sort by"),
        ("/screen?analysis_type=nosuch&sort=score", "unknown analysis type `nosuch`"),
        ("/screen?preset=growth", "unknown preset `growth`"),
        ("/screen?analysis_type=fundamental&sort=score&batch_id=zzz", "zzz"),
    ];
    for (path, message) in cases {
        let a = get(&app, path).await;
        assert_eq!(a.status, 400, "{path}: {}", a.body);
        assert!(a.body.contains(message), "{path}: {}", a.body);
        assert!(
            a.body.contains("<form class=\"filters screen\""),
            "{path}: the form stays"
        );
        assert_no_live_markup(&a.body, path);
    }
    // Hostile input comes back escaped.
    let a = get(
        &app,
        "/screen?analysis_type=fundamental&sort=%3Cscript%3Ealert(1)%3C/script%3E",
    )
    .await;
    assert_eq!(a.status, 400);
    assert_no_live_markup(&a.body, "hostile sort field");
}

#[tokio::test]
async fn the_screen_page_keeps_the_dashboards_security_rules() {
    let f = fixture();
    let app = f.router();
    let a = get(&app, "/screen?preset=compounders").await;
    // No scanner result is stored: an empty list that says so, not an error.
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        a.body.contains("0 of 0 companies") && a.body.contains("No company passes."),
        "{}",
        a.body
    );
    let csp = a.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("form-action 'self'"),
        "{csp}"
    );
    assert_eq!(a.headers["x-content-type-options"], "nosniff");
    // Another host's name (DNS rebinding) is refused.
    let res = send(
        &app,
        axum::http::Request::get("/screen?analysis_type=fundamental&sort=score")
            .header("host", "evil.example:8080")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(res.status, 403);
    // The page only reads: a POST is not a route.
    let res = post(&app, "/screen", "analysis_type=fundamental", &[]).await;
    assert!(res.status == 405 || res.status == 403, "{}", res.status);
}
