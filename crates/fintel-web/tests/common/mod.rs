//! A data directory filled through the store's API (batches, resolved filings, results, failed
//! and skipped tasks, ledger rows, keys, a cached document) and requests to the dashboard's
//! router without a socket.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use fintel_edgar::{Accession, DocumentCache, DocumentKey, FileName};
use fintel_filing::{find_sections, fit_to_budget, html_to_text, FormKind, TokenEstimator};
use fintel_store::{
    BatchState, BucketLimits, CallIntent, CallPurpose, FilingRef, NewBatch, NewCompany, NewResult,
    Store, YearPlan,
};
use fintel_time::ManualClock;
use fintel_web::{BucketConfig, KeyConfig, Token, WebConfig};
use jiff::Timestamp;
use serde_json::json;
use tower::ServiceExt;

pub const HOST: &str = "127.0.0.1:8080";
pub const SCRIPT: &str = "<script>alert(1)</script>";
pub const IMG: &str = "\"><img src=x onerror=alert(1)>";
pub const MAIN: &str = "b-main-0001";
pub const FIN: &str = "b-fin-0002";
pub const ACME_CIK: u64 = 1001;
pub const EVIL_CIK: u64 = 1002;
pub const ACCESSION_2024: &str = "0000001001-25-000001";
pub const OWNER: &str = "test-owner";

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub clock: Arc<ManualClock>,
    pub token: Token,
    /// Result ids by name, for the pages that take one.
    pub acme_2024_result: i64,
    pub acme_2023_result: i64,
    pub evil_result: i64,
    pub acme_2024_task: i64,
    pub failed_task: i64,
}

impl Fixture {
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("fintel.db")
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    pub fn store(&self) -> Store {
        Store::open(&self.db()).unwrap()
    }

    pub fn config(&self) -> WebConfig {
        WebConfig {
            db_path: self.db(),
            cache_dir: self.cache_dir(),
            buckets: vec![BucketConfig {
                name: "project-a".into(),
                keys: vec![KeyConfig {
                    label: "GOOGLE_API_KEY_1 (AIza...abcd)".into(),
                    fingerprint: "fp-a".into(),
                }],
                limits: BucketLimits {
                    requests_per_day: 20,
                    requests_per_minute: 5,
                    input_tokens_per_minute: 250_000,
                },
            }],
            reset_buffer: Duration::from_secs(300),
            clock: self.clock.clone(),
            token: self.token.clone(),
            bound: HOST.parse().unwrap(),
        }
    }

    pub fn router(&self) -> Router {
        fintel_web::router(self.config()).unwrap()
    }
}

pub fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// A small 10-K with four items; its risk factors quote hostile markup as text.
pub fn ten_k_html() -> String {
    let para = |topic: &str, n: usize| -> String {
        (0..n)
            .map(|i| {
                format!(
                    "<p>{topic} paragraph {i}: the company sells widgets and gadgets in many \
                     markets, and its results depend on demand, prices and costs.</p>"
                )
            })
            .collect()
    };
    format!(
        "<html><body><p>UNITED STATES SECURITIES AND EXCHANGE COMMISSION</p>\
         <p>FORM 10-K</p><p>ACME CORP</p><p>PART I</p>\
         <p><b>Item 1. Business</b></p>{}\
         <p><b>Item 1A. Risk Factors</b></p><p>A risk quoted as text: \
         &lt;script&gt;alert(1)&lt;/script&gt; and &quot;&gt;&lt;img src=x onerror=alert(1)&gt;</p>{}\
         <p>PART II</p>\
         <p><b>Item 7. Management's Discussion and Analysis of Financial Condition and Results of \
         Operations</b></p>{}\
         <p><b>Item 8. Financial Statements and Supplementary Data</b></p>{}\
         </body></html>",
        para("Business", 40),
        para("Risk", 30),
        para("Discussion", 60),
        para("Statements", 40)
    )
}

pub fn filing(cik: u64, year: i32, n: u32) -> FilingRef {
    let accession = format!("{:010}-{}-{:06}", cik, (year + 1) % 100, n);
    let folder = accession.replace('-', "");
    FilingRef {
        accession,
        form: "10-K".into(),
        period: Some(format!("{year}-12-31")),
        filed: Some(format!("{}-02-15", year + 1)),
        document_url: format!(
            "https://www.sec.gov/Archives/edgar/data/{cik}/{folder}/report-{year}.htm"
        ),
        transition: false,
    }
}

pub fn new_batch(id: &str, name: &str, analysis: &str, companies: Vec<NewCompany>) -> NewBatch {
    NewBatch {
        id: id.into(),
        name: Some(name.into()),
        analysis_type: analysis.into(),
        analysis_version: "0123456789abcdef0123".into(),
        workflow: "pinned".into(),
        min_years: 1,
        years_spec: r#"{"latest":3}"#.into(),
        as_of_date: "2026-06-15".into(),
        model: "gemini-2.5-flash".into(),
        settings: "{}".into(),
        priority: 0,
        input_file: Some("companies.csv".into()),
        companies,
    }
}

pub fn company(ticker: &str, cik: u64, name: &str) -> NewCompany {
    NewCompany {
        line_no: None,
        ticker: Some(ticker.into()),
        cik: Some(cik),
        company_name: Some(name.into()),
        priority: 0,
        skip_reason: None,
    }
}

/// Resolves every company of the batch to FY2022..FY2024 (in `MAIN`, ACME's FY2022 has no
/// filing).
pub fn resolve_all(store: &Store, batch: &str, now: Timestamp) {
    while let Some(t) = store.claim_next(batch, OWNER, now, false).unwrap() {
        let cik = t.cik.unwrap();
        let plans: Vec<YearPlan> = (2022..=2024)
            .map(|y| {
                if batch == MAIN && cik == ACME_CIK && y == 2022 {
                    YearPlan {
                        fiscal_year: y,
                        filing: None,
                        skip_reason: Some("no annual report for FY2022".into()),
                    }
                } else {
                    YearPlan {
                        fiscal_year: y,
                        filing: Some(filing(cik, y, 1)),
                        skip_reason: None,
                    }
                }
            })
            .collect();
        store
            .complete_resolution(t.id, OWNER, &plans, true, false, None, now)
            .unwrap();
    }
}

pub fn result_for(
    task: &fintel_store::ClaimedTask,
    analysis: &str,
    json: serde_json::Value,
) -> NewResult {
    let f = task.filing.clone().unwrap();
    NewResult {
        result_key: format!("{}-{}-{analysis}", task.cik.unwrap(), f.accession),
        cik: task.cik.unwrap(),
        ticker: task.ticker.clone(),
        company_name: task.company_name.clone(),
        fiscal_year: task.fiscal_year,
        fiscal_year_label: task.fiscal_year.map(|y| y.to_string()),
        form: Some(f.form.clone()),
        accession: Some(f.accession.clone()),
        analysis_type: analysis.into(),
        analysis_version: "0123456789abcdef0123".into(),
        model: "gemini-2.5-flash".into(),
        json: json.to_string(),
        prompt_tokens: 12_345,
        output_tokens: 678,
        thinking_tokens: 90,
        attempts: 1,
        calls: 1,
        document_url: Some(f.document_url.clone()),
        document_sha256: None,
        fitting: Some(
            json!({"original_chars": 1, "was_cut": false, "kept": [], "cut": [],
                   "sections_found": [], "exhibit_13": false})
            .to_string(),
        ),
        started_at: None,
        supersede: false,
        request_params: None,
    }
}

/// The data directory every test starts from:
/// - batch `MAIN` (fundamental, running, named with hostile markup): ACME (CIK 1001) with FY2024
///   and FY2023 completed, FY2022 skipped; EVIL (CIK 1002, hostile name) with FY2024 completed
///   with a hostile result, FY2023 failed, FY2022 still pending; ledger rows on two days.
/// - batch `FIN` (financials, completed): ACME's three years of key figures.
/// - ACME FY2024's document in the cache, fitted to a small budget so sections were cut.
pub fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let now = at("2026-06-15T18:00:00Z");
    let clock = Arc::new(ManualClock::new(now));
    let store = Store::open(&dir.path().join("fintel.db")).unwrap();
    store
        .create_batch(
            &new_batch(
                MAIN,
                &format!("{SCRIPT} weekly {IMG}"),
                "fundamental",
                vec![
                    company("ACME", ACME_CIK, "Acme Corp"),
                    company("EVIL", EVIL_CIK, &format!("Evil {SCRIPT} Inc {IMG}")),
                ],
            ),
            now - jiff::SignedDuration::from_hours(30),
        )
        .unwrap();
    resolve_all(&store, MAIN, now - jiff::SignedDuration::from_hours(29));

    // ACME FY2024: the cached document, fitted to a budget that cuts.
    let html = ten_k_html();
    let cache = DocumentCache::new(&dir.path().join("cache"), clock.clone());
    let f2024 = filing(ACME_CIK, 2024, 1);
    let (_, sha) = cache
        .write(
            &DocumentKey {
                cik: ACME_CIK,
                accession: Accession::parse(&f2024.accession).unwrap(),
                file_name: FileName::parse("report-2024.htm").unwrap(),
            },
            html.as_bytes(),
        )
        .unwrap();
    let text = html_to_text(html.as_bytes()).text;
    let sections = find_sections(&text, FormKind::TenK);
    let estimator = TokenEstimator::default();
    let budget = estimator.estimate(&text) / 2;
    let fitted = fit_to_budget(&text, FormKind::TenK, &sections, budget, &estimator);
    assert!(fitted.was_cut, "the fixture's budget must cut");

    let mut acme_2024_result = 0;
    let mut acme_2023_result = 0;
    let mut evil_result = 0;
    let mut acme_2024_task = 0;
    let mut failed_task = 0;
    let mut t = now - jiff::SignedDuration::from_hours(28);
    while let Some(task) = store.claim_next(MAIN, OWNER, t, true).unwrap() {
        t += jiff::SignedDuration::from_hours(5);
        let (cik, year) = (task.cik.unwrap(), task.fiscal_year.unwrap());
        let intent = CallIntent {
            bucket: "project-a",
            key_fingerprint: Some("fp-a"),
            bucket_keys: &[],
            batch_id: Some(MAIN),
            task_id: Some(task.id),
            purpose: CallPurpose::Generate,
            input_tokens: 1000,
        };
        let limits = BucketLimits {
            requests_per_day: 1000,
            requests_per_minute: 1000,
            input_tokens_per_minute: 10_000_000,
        };
        let day = fintel_time::pacific_date(t).to_string();
        store
            .reserve_call(&intent, &limits, t, &day)
            .unwrap()
            .unwrap();
        match (cik, year) {
            (ACME_CIK, 2024) => {
                let mut r = result_for(
                    &task,
                    "fundamental",
                    json!({"summary": "Widgets sold well.", "moat": {"rating": 7, "sources": ["brand", "scale"]}}),
                );
                r.document_sha256 = Some(sha.clone());
                r.fitting = Some(
                    json!({
                        "original_chars": text.len(),
                        "was_cut": fitted.was_cut,
                        "kept": fitted.kept,
                        "cut": fitted.cut,
                        "sections_found": sections.iter().filter(|s| s.is_found()).map(|s| s.id.clone()).collect::<Vec<_>>(),
                        "exhibit_13": false,
                    })
                    .to_string(),
                );
                acme_2024_task = task.id;
                acme_2024_result = store.complete_with_result(task.id, OWNER, &r, t).unwrap();
            }
            (ACME_CIK, 2023) => {
                let r = result_for(&task, "fundamental", json!({"summary": "A quieter year."}));
                acme_2023_result = store.complete_with_result(task.id, OWNER, &r, t).unwrap();
            }
            (EVIL_CIK, 2024) => {
                let mut r = result_for(
                    &task,
                    "fundamental",
                    json!({
                        "summary": SCRIPT,
                        IMG: [IMG, SCRIPT],
                        "nested": {"deeper": IMG},
                    }),
                );
                r.document_url = Some("javascript:alert(1)".into());
                r.form = Some(format!("10-K{SCRIPT}"));
                evil_result = store.complete_with_result(task.id, OWNER, &r, t).unwrap();
            }
            (EVIL_CIK, 2023) => {
                failed_task = task.id;
                store
                    .fail_task(
                        task.id,
                        OWNER,
                        &format!("invalid JSON twice {SCRIPT}"),
                        true,
                        t,
                    )
                    .unwrap();
            }
            _ => {
                store.release_task(task.id, OWNER, None, t).unwrap();
                break;
            }
        }
    }
    store
        .set_batch_state(
            MAIN,
            BatchState::Running,
            None,
            now - jiff::SignedDuration::from_mins(1),
        )
        .unwrap();

    // A completed financials batch for ACME.
    store
        .create_batch(
            &new_batch(
                FIN,
                "financials",
                "financials",
                vec![company("ACME", ACME_CIK, "Acme Corp")],
            ),
            now - jiff::SignedDuration::from_hours(10),
        )
        .unwrap();
    resolve_all(&store, FIN, now - jiff::SignedDuration::from_hours(10));
    let figures = [
        (2024, 300.0e9, 30.0e9),
        (2023, 250.0e9, -5.0e9),
        (2022, 200.0e9, 20.0e9),
    ];
    let mut fin_t = now - jiff::SignedDuration::from_hours(9);
    while let Some(task) = store.claim_next(FIN, OWNER, fin_t, true).unwrap() {
        fin_t += jiff::SignedDuration::from_mins(1);
        let year = task.fiscal_year.unwrap();
        let (_, revenue, income) = figures.iter().find(|f| f.0 == year).copied().unwrap();
        let r = result_for(
            &task,
            "financials",
            json!({"period_end": format!("{year}-12-31"), "currency": "USD", "revenue": revenue,
                   "net_income": income, "operating_cash_flow": null, "total_assets": revenue * 2.0,
                   "total_liabilities": null, "shareholders_equity": null,
                   "shares_outstanding": 15.5e9, "eps_basic": income / 15.5e9, "eps_diluted": null}),
        );
        store
            .complete_with_result(task.id, OWNER, &r, fin_t)
            .unwrap();
    }
    store
        .set_batch_state(FIN, BatchState::Completed, None, fin_t)
        .unwrap();

    store
        .register_key("fp-a", "GOOGLE_API_KEY_1 (AIza...abcd)", "project-a")
        .unwrap();
    store
        .register_key("fp-old", "OLD_KEY (AIza...zzzz)", "old-bucket")
        .unwrap();
    store.disable_key("fp-old", "API_KEY_INVALID", now).unwrap();
    drop(store);
    Fixture {
        dir,
        clock,
        token: Token::generate(),
        acme_2024_result,
        acme_2023_result,
        evil_result,
        acme_2024_task,
        failed_task,
    }
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

pub async fn send(router: &Router, req: Request<Body>) -> Answer {
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), 64 << 20)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

pub async fn get(router: &Router, path: &str) -> Answer {
    send(
        router,
        Request::get(path)
            .header("host", HOST)
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

pub async fn post(router: &Router, path: &str, body: &str, headers: &[(&str, &str)]) -> Answer {
    let mut req = Request::post(path)
        .header("host", HOST)
        .header("content-type", "application/x-www-form-urlencoded");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(router, req.body(Body::from(body.to_string())).unwrap()).await
}

/// Fails if hostile markup from the fixture reached a page unescaped.
pub fn assert_no_live_markup(page: &str, what: &str) {
    for bad in [
        "<script>alert",
        "<img src=x",
        "<img src",
        "onerror=alert(1)>",
        "javascript:alert",
    ] {
        if bad == "javascript:alert" {
            assert!(
                !page.contains("href=\"javascript:"),
                "{what}: a javascript: link\n{page}"
            );
            continue;
        }
        if bad == "onerror=alert(1)>" {
            // Escaped, the `>` becomes `&gt;`.
            continue;
        }
        assert!(!page.contains(bad), "{what}: unescaped {bad:?}\n{page}");
    }
    let scripts = page.matches("<script").count();
    let own = page
        .matches("<script src=\"/static/live.js\" defer></script>")
        .count();
    assert_eq!(scripts, own, "{what}: only the dashboard's own script file");
}
