//! End-to-end tests of the EDGAR client against a local server that serves the shared fixtures
//! with SEC's URL layout and counts the requests of each path.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use fintel_edgar::config::EdgarConfig;
use fintel_edgar::names::{Accession, FileName};
use fintel_edgar::{
    filings_report, AnnualReportExhibit, DocumentRef, DocumentSource, EdgarClient, EdgarError,
    Filing, FilingsQuery, YearRequest,
};
use fintel_time::{Clock, ManualClock, SharedClock};
use jiff::civil::date;
use jiff::{SignedDuration, Timestamp};

const USER_AGENT: &str = "Jane Doe jane@example.com";
const RATE_BODY: &str = "<html><head><title>SEC.gov | Request Rate Threshold Exceeded</title>\
</head><body><h1>Your Request Originates from an Undeclared Automated Tool</h1></body></html>";

/// Apple's FY2024 10-K (the fixture document) at its real Archives path.
const AAPL_2024_PATH: &str = "/Archives/edgar/data/320193/000032019324000123/aapl-20240928.htm";
/// Wells Fargo's FY2024 10-K: the fixture document at an illustrative accession number.
const WFC_FOLDER: &str = "/Archives/edgar/data/72971/000007297125000011";

#[derive(Default)]
struct ServerState {
    routes: HashMap<String, Vec<u8>>,
    /// Scripted answers served before the route, per path: (status, body).
    scripted: HashMap<String, VecDeque<(u16, String)>>,
    counts: HashMap<String, usize>,
    user_agents: Vec<Option<String>>,
    /// (path, instant by the test's clock) of every request.
    log: Vec<(String, Timestamp)>,
}

#[derive(Clone)]
struct Sec {
    state: Arc<Mutex<ServerState>>,
    clock: ManualClock,
    base: String,
}

impl Sec {
    fn with<T>(&self, f: impl FnOnce(&mut ServerState) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }
    fn count(&self, path: &str) -> usize {
        self.with(|s| s.counts.get(path).copied().unwrap_or(0))
    }
    fn total(&self) -> usize {
        self.with(|s| s.counts.values().sum())
    }
    fn script(&self, path: &str, answers: &[(u16, &str)]) {
        self.with(|s| {
            s.scripted.insert(
                path.to_string(),
                answers.iter().map(|(c, b)| (*c, b.to_string())).collect(),
            )
        });
    }
    fn times_of(&self, path: &str) -> Vec<Timestamp> {
        self.with(|s| {
            s.log
                .iter()
                .filter(|(p, _)| p == path)
                .map(|(_, t)| *t)
                .collect()
        })
    }
}

async fn handle(sec: Sec, uri: Uri, headers: HeaderMap) -> axum::response::Response {
    let path = uri.path().to_string();
    let now = sec.clock.now();
    let answer = sec.with(|s| {
        *s.counts.entry(path.clone()).or_default() += 1;
        s.user_agents.push(
            headers
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .map(String::from),
        );
        s.log.push((path.clone(), now));
        if let Some((code, body)) = s.scripted.get_mut(&path).and_then(|q| q.pop_front()) {
            return (code, body.into_bytes());
        }
        match s.routes.get(&path) {
            Some(body) => (200, body.clone()),
            None => (404, b"<html>Not Found</html>".to_vec()),
        }
    });
    let status = StatusCode::from_u16(answer.0).unwrap();
    (status, Bytes::from(answer.1)).into_response()
}

fn read(dir: &Path, rel: &str) -> Vec<u8> {
    std::fs::read(dir.join(rel)).unwrap()
}

fn listing(folder: &str, names: &[&str]) -> Vec<u8> {
    let items: Vec<serde_json::Value> = names
        .iter()
        .map(|n| {
            serde_json::json!({"last-modified": "2000-01-01 00:00:00", "name": n,
                               "type": "text.gif", "size": "1000"})
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({"directory": {
        "item": items, "name": folder, "parent-dir": "/Archives/edgar/data"}}))
    .unwrap()
}

/// A complete submission text file with a 10-K and an EX-13 (synthetic envelope; the 10-K body
/// is the Medicis fixture, a real 1999 10-K).
fn submission_text(ten_k: &[u8]) -> Vec<u8> {
    let mut out = b"<SEC-DOCUMENT>0000912057-99-010244.txt : 19991222\n<SEC-HEADER>\nCONFORMED \
SUBMISSION TYPE:\t10-K\n</SEC-HEADER>\n<DOCUMENT>\n<TYPE>10-K\n<SEQUENCE>1\n<TEXT>\n"
        .to_vec();
    out.extend_from_slice(ten_k);
    out.extend_from_slice(
        b"\n</TEXT>\n</DOCUMENT>\n<DOCUMENT>\n<TYPE>EX-13\n<SEQUENCE>2\n<TEXT>\n\
1999 ANNUAL REPORT TO SHAREHOLDERS\n</TEXT>\n</DOCUMENT>\n</SEC-DOCUMENT>\n",
    );
    out
}

async fn start(dir: &Path) -> Sec {
    let clock = ManualClock::new("2023-08-08T16:00:00Z".parse().unwrap());
    let mut state = ServerState::default();
    let r = &mut state.routes;
    r.insert(
        "/files/company_tickers.json".into(),
        read(dir, "sec/api/company_tickers/company_tickers.json"),
    );
    r.insert(
        "/submissions/CIK0000320193.json".into(),
        read(dir, "sec/api/submissions/CIK0000320193.json"),
    );
    r.insert(
        "/submissions/CIK0000320193-submissions-001.json".into(),
        read(
            dir,
            "sec/api/submissions/CIK0000320193-submissions-001.json",
        ),
    );
    r.insert(
        AAPL_2024_PATH.into(),
        read(dir, "sec/10k/aapl-10k-2024-11-01.ixbrl.htm"),
    );
    r.insert(
        format!("{WFC_FOLDER}/wfc-20241231.htm"),
        read(dir, "sec/10k/wfc-10k-2025-02-25.ixbrl.htm"),
    );
    r.insert(
        format!("{WFC_FOLDER}/wfc-1231x2024xex13.htm"),
        b"<html>2024 Annual Report to Shareholders</html>".to_vec(),
    );
    r.insert(
        format!("{WFC_FOLDER}/index.json"),
        listing(
            WFC_FOLDER,
            &[
                "0000072971-25-000011-index.html",
                "0000072971-25-000011.txt",
                "wfc-20241231.htm",
                "wfc-1231x2024xex13.htm",
                "wfc-1231x2024xex21.htm",
                "R1.htm",
            ],
        ),
    );
    // Apple FY1999: no primary document; the folder has only the complete submission file.
    let fy1999 = "/Archives/edgar/data/320193/000091205799010244";
    r.insert(
        format!("{fy1999}/index.json"),
        listing(fy1999, &["0000912057-99-010244.txt"]),
    );
    r.insert(
        format!("{fy1999}/0000912057-99-010244.txt"),
        submission_text(&read(
            dir,
            "sec/10k/medicis-10k-1999-0000950153-99-001234.htm",
        )),
    );
    // Apple FY1998: the listing names a separate 10-K405 document (illustrative name).
    let fy1998 = "/Archives/edgar/data/320193/000104746998044981";
    r.insert(
        format!("{fy1998}/index.json"),
        listing(
            fy1998,
            &["0001047469-98-044981.txt", "a10-k405.txt", "ex-27.txt"],
        ),
    );
    r.insert(format!("{fy1998}/a10-k405.txt"), b"FORM 10-K405".to_vec());
    // Apple FY1996: no listing at all (404); the complete submission file is there.
    r.insert(
        "/Archives/edgar/data/320193/000032019396000023/0000320193-96-000023.txt".into(),
        b"<DOCUMENT>\n<TYPE>10-K\n<TEXT>\nAPPLE 1996\n</TEXT>\n</DOCUMENT>\n".to_vec(),
    );

    let state = Arc::new(Mutex::new(state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let sec = Sec { state, clock, base };
    let app_sec = sec.clone();
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let sec = app_sec.clone();
        async move { handle(sec, uri, headers).await }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    sec
}

fn config(sec: &Sec, cache: &Path) -> EdgarConfig {
    let mut config = EdgarConfig::new(Some(USER_AGENT.into()), cache);
    config.www_url = format!("{}/", sec.base);
    config.data_url = sec.base.clone();
    config.requests_per_second = 10;
    config
}

fn client(sec: &Sec, cache: &Path) -> EdgarClient {
    let clock: SharedClock = Arc::new(sec.clock.clone());
    EdgarClient::new(config(sec, cache), clock).unwrap()
}

fn aapl_2024_filing() -> Filing {
    Filing {
        accession_number: "0000320193-24-000123".into(),
        form: "10-K".into(),
        filing_date: date(2024, 11, 1),
        report_date: Some(date(2024, 9, 28)),
        primary_document: "aapl-20240928.htm".into(),
        primary_doc_description: "10-K".into(),
        is_xbrl: true,
        is_inline_xbrl: true,
        size: 0,
    }
}

fn archive_requests(sec: &Sec) -> usize {
    sec.with(|s| {
        s.counts
            .iter()
            .filter(|(p, _)| p.starts_with("/Archives/"))
            .map(|(_, n)| n)
            .sum()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_list_download_and_cache_hit() {
    let dir = fintel_fixtures::fixtures_or_skip!();
    let sec = start(&dir).await;
    let cache = tempfile::tempdir().unwrap();
    let edgar = client(&sec, cache.path());

    // Resolving: class shares, CIKs, unknown tickers; the list is fetched once.
    assert_eq!(edgar.resolve_company("brk.b").await.unwrap().cik, 1067983);
    assert_eq!(edgar.resolve_company("BF.B").await.unwrap().cik, 14693);
    let apple = edgar.resolve_company("CIK0000320193").await.unwrap();
    assert_eq!(apple.ticker.as_deref(), Some("AAPL"));
    let delisted = edgar.resolve_company("999999999").await.unwrap();
    assert_eq!((delisted.cik, delisted.ticker), (999999999, None));
    match edgar.resolve_company("NOSUCH").await {
        Err(EdgarError::UnknownTicker { ticker }) => assert_eq!(ticker, "NOSUCH"),
        other => panic!("expected UnknownTicker, got {other:?}"),
    }
    assert!(matches!(
        edgar.resolve_company("  ").await,
        Err(EdgarError::InvalidInput(_))
    ));
    assert_eq!(sec.count("/files/company_tickers.json"), 1);

    // A second process on the same cache directory reads the list from disk within the day...
    let second = client(&sec, cache.path());
    second.resolve_company("AAPL").await.unwrap();
    assert_eq!(sec.count("/files/company_tickers.json"), 1);
    // ...and refreshes it after a day (by the injected clock).
    sec.clock.advance(Duration::from_secs(86_400 + 60));
    let third = client(&sec, cache.path());
    third.resolve_company("AAPL").await.unwrap();
    assert_eq!(sec.count("/files/company_tickers.json"), 2);

    // Listing: both submissions pages are read; nothing is downloaded.
    let report = filings_report(&edgar, &FilingsQuery::latest("AAPL", 10, date(2023, 8, 8)))
        .await
        .unwrap();
    assert_eq!(sec.count("/submissions/CIK0000320193.json"), 1);
    assert_eq!(
        sec.count("/submissions/CIK0000320193-submissions-001.json"),
        1
    );
    assert_eq!(archive_requests(&sec), 0);
    assert_eq!(report.cik, 320193);
    assert_eq!(report.name, "Apple Inc.");
    let years: Vec<i32> = report.years.iter().map(|r| r.fiscal_year).collect();
    assert_eq!(years, (2013..=2022).collect::<Vec<_>>());
    let fy2022 = &report.years[9];
    assert_eq!(fy2022.accession.as_deref(), Some("0000320193-22-000108"));
    assert_eq!(
        fy2022.document_url.as_deref(),
        Some(
            format!(
                "{}/Archives/edgar/data/320193/000032019322000108/aapl-20220924.htm",
                sec.base
            )
            .as_str()
        )
    );
    assert!(!fy2022.cached && !fy2022.transition);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["years"][9]["form"], "10-K");
    assert_eq!(json["years"][9]["period"], "2022-09-24");
    assert!(report.to_text().contains("0000320193-22-000108"));

    // Old years: no primary document, so no document URL, but the folder listing URL.
    let mut query = FilingsQuery::latest("AAPL", 1, date(2023, 8, 8));
    query.request = YearRequest::Explicit(vec![1996, 2000]);
    let old = filings_report(&edgar, &query).await.unwrap();
    assert_eq!(old.years[0].document_url, None);
    assert!(old.years[0]
        .filing_index_url
        .as_deref()
        .unwrap()
        .ends_with("/000032019396000023/index.json"));
    assert!(old.years[1]
        .document_url
        .as_deref()
        .unwrap()
        .ends_with("/a2032880z10-k.txt"));

    // Downloading, then the cache hit of a second run: zero document requests.
    let doc_ref = edgar
        .primary_document(320193, &aapl_2024_filing())
        .unwrap()
        .unwrap();
    assert_eq!(doc_ref.url, format!("{}{AAPL_2024_PATH}", sec.base));
    let fixture = read(&dir, "sec/10k/aapl-10k-2024-11-01.ixbrl.htm");
    let first = edgar.fetch_document(&doc_ref).await.unwrap();
    assert!(!first.from_cache);
    assert_eq!(first.bytes, fixture);
    assert!(
        first.sha256.starts_with("24a830a0f1256e37"),
        "manifest checksum"
    );
    assert!(first.path.starts_with(cache.path()));
    assert_eq!(sec.count(AAPL_2024_PATH), 1);
    let before = sec.total();
    let rerun = client(&sec, cache.path());
    let again = rerun.fetch_document(&doc_ref).await.unwrap();
    assert!(again.from_cache);
    assert_eq!(again.bytes, fixture);
    assert_eq!(again.sha256, first.sha256);
    assert_eq!(sec.total(), before, "no request at all on the cache hit");
    assert!(rerun.is_cached(320193, &aapl_2024_filing()));
    let stats = rerun.cache().stats().unwrap();
    assert_eq!(stats.documents, 1);
    assert_eq!(stats.bytes, fixture.len() as u64);

    // The User-Agent went out with every request.
    let agents = sec.with(|s| s.user_agents.clone());
    assert!(!agents.is_empty());
    assert!(
        agents.iter().all(|a| a.as_deref() == Some(USER_AGENT)),
        "{agents:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_cache_file_is_fetched_again() {
    let dir = fintel_fixtures::fixtures_or_skip!();
    let sec = start(&dir).await;
    let cache = tempfile::tempdir().unwrap();
    let edgar = client(&sec, cache.path());
    let doc_ref = edgar
        .primary_document(320193, &aapl_2024_filing())
        .unwrap()
        .unwrap();
    let first = edgar.fetch_document(&doc_ref).await.unwrap();
    // Truncate the cached file.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&first.path)
        .unwrap();
    file.set_len(1000).unwrap();
    drop(file);
    let second = edgar.fetch_document(&doc_ref).await.unwrap();
    assert!(!second.from_cache);
    assert_eq!(second.bytes.len(), first.bytes.len());
    assert_eq!(second.sha256, first.sha256);
    assert_eq!(sec.count(AAPL_2024_PATH), 2);
    // The repaired copy serves the next read.
    assert!(edgar.fetch_document(&doc_ref).await.unwrap().from_cache);
    assert_eq!(sec.count(AAPL_2024_PATH), 2);
    // A flipped byte is caught too.
    let mut bytes = std::fs::read(&first.path).unwrap();
    bytes[500] ^= 1;
    std::fs::write(&first.path, &bytes).unwrap();
    assert!(!edgar.fetch_document(&doc_ref).await.unwrap().from_cache);
    assert_eq!(sec.count(AAPL_2024_PATH), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_refusal_pauses_all_sec_traffic_for_ten_minutes() {
    let dir = fintel_fixtures::fixtures_or_skip!();
    let sec = start(&dir).await;
    let cache = tempfile::tempdir().unwrap();
    let edgar = client(&sec, cache.path());
    let list = "/files/company_tickers.json";

    // One refusal: the request waits out the pause, then succeeds.
    sec.script(list, &[(403, RATE_BODY)]);
    let start = sec.clock.now();
    assert_eq!(edgar.resolve_company("AAPL").await.unwrap().cik, 320193);
    let times = sec.times_of(list);
    assert_eq!(times.len(), 2);
    assert!(
        times[1].duration_since(times[0]) >= SignedDuration::from_secs(600),
        "{times:?}"
    );
    assert!(sec.clock.now().duration_since(start) < SignedDuration::from_secs(700));

    // Two refusals (a 403 then a 429): the error says until when everything is paused.
    let page = "/submissions/CIK0000320193.json";
    sec.script(page, &[(403, RATE_BODY), (429, "Too Many Requests")]);
    let paused_until = match edgar.submissions(320193).await {
        Err(EdgarError::RateLimited { paused_until }) => paused_until,
        other => panic!("expected RateLimited, got {other:?}"),
    };
    let err = EdgarError::RateLimited { paused_until };
    assert!(!err.is_transient() && err.is_rate_limited());
    // Another process on the same cache directory waits for the pause too.
    let other = client(&sec, cache.path());
    assert_eq!(
        other.limiter().paused_until().await.unwrap(),
        Some(paused_until)
    );
    let doc_ref = other
        .primary_document(320193, &aapl_2024_filing())
        .unwrap()
        .unwrap();
    other.fetch_document(&doc_ref).await.unwrap();
    let sent = sec.times_of(AAPL_2024_PATH)[0];
    assert!(
        sent >= paused_until,
        "sent at {sent}, pause until {paused_until}"
    );

    // A 403 for another reason is an HTTP error with a hint, not a pause.
    sec.script(page, &[(403, "<h1>Undeclared Automated Tool</h1>")]);
    match edgar.submissions(320193).await {
        Err(EdgarError::Http {
            status: 403,
            detail,
            ..
        }) => {
            assert!(detail.contains("FINTEL_SEC_USER_AGENT"), "{detail}")
        }
        other => panic!("expected Http 403, got {other:?}"),
    }
    assert_eq!(edgar.limiter().paused_until().await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_then_reported() {
    let dir = fintel_fixtures::fixtures_or_skip!();
    let sec = start(&dir).await;
    let cache = tempfile::tempdir().unwrap();
    let edgar = client(&sec, cache.path());
    let page = "/submissions/CIK0000320193.json";
    sec.script(page, &[(503, "busy"), (500, "oops")]);
    let subs = edgar.submissions(320193).await.unwrap();
    assert_eq!(subs.filings.len(), 1988);
    assert_eq!(subs.pages, vec!["CIK0000320193-submissions-001.json"]);
    assert_eq!(sec.count(page), 3);

    let start = sec.clock.now();
    sec.script(
        page,
        &[(503, ""), (502, ""), (504, ""), (500, ""), (503, "")],
    );
    let err = edgar.submissions(320193).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(sec.count(page), 3 + 4, "one try and three retries");
    // Backoff 1, 2, 4 s (halved at most by jitter) passed on the injected clock.
    let waited = sec.clock.now().duration_since(start);
    assert!(waited >= SignedDuration::from_millis(3500), "{waited:?}");
    assert!(waited <= SignedDuration::from_secs(8), "{waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_pages_and_documents_are_errors() {
    let dir = fintel_fixtures::fixtures_or_skip!();
    let sec = start(&dir).await;
    let cache = tempfile::tempdir().unwrap();
    let edgar = client(&sec, cache.path());
    // A listed older page that cannot be fetched fails the listing instead of shrinking it.
    sec.with(|s| {
        s.routes
            .remove("/submissions/CIK0000320193-submissions-001.json")
    });
    match edgar.submissions(320193).await {
        Err(EdgarError::NotFound { url }) => assert!(url.ends_with("-submissions-001.json")),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(matches!(
        edgar.submissions(42).await,
        Err(EdgarError::NotFound { .. })
    ));
    // Unsafe names from a filing never reach the cache or a URL.
    let mut bad = aapl_2024_filing();
    bad.primary_document = "../../etc/passwd".into();
    assert!(matches!(
        edgar.primary_document(320193, &bad),
        Err(EdgarError::InvalidInput(_))
    ));
    bad.accession_number = "0000320193-24-00012X".into();
    assert!(matches!(
        edgar.primary_document(320193, &bad),
        Err(EdgarError::InvalidInput(_))
    ));
    assert_eq!(archive_requests(&sec), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_company_list_is_used_when_refresh_fails() {
    let dir = fintel_fixtures::fixtures_or_skip!();
    let sec = start(&dir).await;
    let cache = tempfile::tempdir().unwrap();
    client(&sec, cache.path())
        .resolve_company("AAPL")
        .await
        .unwrap();
    sec.clock.advance(Duration::from_secs(3 * 86_400));
    let list = "/files/company_tickers.json";
    sec.script(list, &[(503, ""); 8]);
    let edgar = client(&sec, cache.path());
    assert_eq!(edgar.resolve_company("KO").await.unwrap().cik, 21344);
    assert_eq!(sec.count(list), 1 + 4);
    // Without a stale copy the failure is reported.
    let empty = tempfile::tempdir().unwrap();
    sec.script(list, &[(503, ""); 8]);
    let err = client(&sec, empty.path())
        .resolve_company("KO")
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_cached_company_list_is_fetched_again() {
    let dir = fintel_fixtures::fixtures_or_skip!();
    let sec = start(&dir).await;
    let cache = tempfile::tempdir().unwrap();
    client(&sec, cache.path())
        .resolve_company("AAPL")
        .await
        .unwrap();
    std::fs::write(cache.path().join("company_tickers.json"), b"{\"0\":").unwrap();
    let edgar = client(&sec, cache.path());
    assert_eq!(edgar.resolve_company("WFC").await.unwrap().cik, 72971);
    assert_eq!(sec.count("/files/company_tickers.json"), 2);
    // The refetched copy is whole again.
    let third = client(&sec, cache.path());
    third.resolve_company("KO").await.unwrap();
    assert_eq!(sec.count("/files/company_tickers.json"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filings_without_primary_document_are_found() {
    let dir = fintel_fixtures::fixtures_or_skip!();
    let sec = start(&dir).await;
    let cache = tempfile::tempdir().unwrap();
    let edgar = client(&sec, cache.path());
    let subs = edgar.submissions(320193).await.unwrap();
    let filing = |acc: &str| {
        subs.filings
            .iter()
            .find(|f| f.accession_number == acc)
            .unwrap()
            .clone()
    };

    // FY1999: listing has only the complete submission file; its EX-13 is embedded.
    let fy1999 = filing("0000912057-99-010244");
    assert!(fy1999.primary_document.is_empty());
    let doc_ref = edgar.annual_report_document(320193, &fy1999).await.unwrap();
    assert_eq!(doc_ref.source, DocumentSource::CompleteSubmission);
    assert_eq!(doc_ref.file_name.as_str(), "0000912057-99-010244.txt");
    let doc = edgar.fetch_document(&doc_ref).await.unwrap();
    let main = fintel_edgar::index::annual_report_in_submission_text(&doc.bytes).unwrap();
    assert_eq!(main.doc_type, "10-K");
    match edgar.annual_report_exhibit(&doc_ref, &doc).await.unwrap() {
        Some(AnnualReportExhibit::Embedded { embedded, .. }) => {
            let text = String::from_utf8_lossy(&doc.bytes[embedded.text]);
            assert!(text.contains("1999 ANNUAL REPORT TO SHAREHOLDERS"));
        }
        other => panic!("expected an embedded EX-13, got {other:?}"),
    }

    // FY1998: the listing names a separate 10-K405 document.
    let fy1998 = filing("0001047469-98-044981");
    let doc_ref = edgar.annual_report_document(320193, &fy1998).await.unwrap();
    assert_eq!(doc_ref.source, DocumentSource::FilingIndex);
    assert_eq!(doc_ref.file_name.as_str(), "a10-k405.txt");
    assert_eq!(
        edgar.fetch_document(&doc_ref).await.unwrap().bytes,
        b"FORM 10-K405"
    );

    // FY1996: no listing (404): the complete submission file.
    let fy1996 = filing("0000320193-96-000023");
    let doc_ref = edgar.annual_report_document(320193, &fy1996).await.unwrap();
    assert_eq!(doc_ref.source, DocumentSource::CompleteSubmission);
    assert!(edgar
        .fetch_document(&doc_ref)
        .await
        .unwrap()
        .bytes
        .ends_with(b"</DOCUMENT>\n"));

    // A second run finds all three from the cache (listings included) without any request.
    let before = sec.total();
    let rerun = client(&sec, cache.path());
    for f in [&fy1999, &fy1998] {
        let r = rerun.annual_report_document(320193, f).await.unwrap();
        assert!(rerun.fetch_document(&r).await.unwrap().from_cache);
        assert!(rerun.is_cached(320193, f));
    }
    assert_eq!(sec.total(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn annual_report_exhibit_is_found_when_incorporated_by_reference() {
    let dir = fintel_fixtures::fixtures_or_skip!();
    let sec = start(&dir).await;
    let cache = tempfile::tempdir().unwrap();
    let edgar = client(&sec, cache.path());
    let wfc = DocumentRef {
        cik: 72971,
        accession: Accession::parse("0000072971-25-000011").unwrap(),
        file_name: FileName::parse("wfc-20241231.htm").unwrap(),
        url: format!("{}{WFC_FOLDER}/wfc-20241231.htm", sec.base),
        source: DocumentSource::Primary,
    };
    let doc = edgar.fetch_document(&wfc).await.unwrap();
    let exhibit = match edgar.annual_report_exhibit(&wfc, &doc).await.unwrap() {
        Some(AnnualReportExhibit::File(exhibit)) => exhibit,
        other => panic!("expected an EX-13 file, got {other:?}"),
    };
    assert_eq!(exhibit.file_name.as_str(), "wfc-1231x2024xex13.htm");
    assert_eq!(exhibit.source, DocumentSource::Exhibit);
    let ex13 = edgar.fetch_document(&exhibit).await.unwrap();
    assert!(String::from_utf8_lossy(&ex13.bytes).contains("Annual Report"));
    assert_eq!(sec.count(&format!("{WFC_FOLDER}/index.json")), 1);

    // Apple's 10-K incorporates nothing: no listing is even requested.
    let apple = edgar
        .primary_document(320193, &aapl_2024_filing())
        .unwrap()
        .unwrap();
    let doc = edgar.fetch_document(&apple).await.unwrap();
    assert_eq!(
        edgar.annual_report_exhibit(&apple, &doc).await.unwrap(),
        None
    );
    assert_eq!(
        sec.count("/Archives/edgar/data/320193/000032019324000123/index.json"),
        0
    );
}

#[tokio::test]
async fn no_user_agent_no_client() {
    let cache = tempfile::tempdir().unwrap();
    let clock: SharedClock = Arc::new(ManualClock::new(Timestamp::UNIX_EPOCH));
    for ua in [None, Some(""), Some("   "), Some("Jane Doe")] {
        let config = EdgarConfig::new(ua.map(String::from), cache.path());
        match EdgarClient::new(config, clock.clone()) {
            Err(e @ EdgarError::MissingUserAgent { .. }) => {
                assert!(e
                    .to_string()
                    .contains("FINTEL_SEC_USER_AGENT=\"Jane Doe jane@example.com\""))
            }
            other => panic!("{ua:?}: expected MissingUserAgent, got {other:?}"),
        }
    }
    let mut config = EdgarConfig::new(Some(USER_AGENT.into()), cache.path());
    config.www_url = "not a url".into();
    assert!(matches!(
        EdgarClient::new(config, clock.clone()),
        Err(EdgarError::InvalidInput(_))
    ));
    let mut config = EdgarConfig::new(Some(USER_AGENT.into()), cache.path());
    config.requests_per_second = 0;
    assert!(matches!(
        EdgarClient::new(config, clock.clone()),
        Err(EdgarError::InvalidInput(_))
    ));
    let mut config = EdgarConfig::new(Some(USER_AGENT.into()), cache.path());
    config.requests_per_second = 50;
    assert_eq!(
        EdgarClient::new(config, clock).unwrap().limiter().rate(),
        10
    );
}
