//! How fast the dashboard answers its batches page over a full-size database.
//!
//! Fills a data directory through the store's public API with one batch of 1,000 companies x
//! 7 fiscal years (resolved filings, 95% of the years analysed with realistic `fundamental`
//! results and their ledger rows, some failed and skipped, the rest pending: a batch under way),
//! serves it on 127.0.0.1 exactly as `fintel web` does, and times whole HTTP requests.
//!
//! ```sh
//! cargo run --release -p fintel-web --example bench_web
//! ```
//!
//! The target (SPEC.md section 10 and the dashboard issue) is under 50 ms for the batches page.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fintel_store::{
    BatchState, BucketLimits, CallIntent, CallPurpose, FilingRef, NewBatch, NewCompany, NewResult,
    Store, YearPlan,
};
use fintel_time::ManualClock;
use fintel_web::{BucketConfig, KeyConfig, Token, WebConfig};
use jiff::{SignedDuration, Timestamp};

const COMPANIES: u64 = 1_000;
const YEARS: i32 = 7;
const REQUESTS: usize = 200;
const OWNER: &str = "bench";

fn fill(store: &Store, start: Timestamp) -> (u64, Timestamp) {
    let registry = fintel_workflows::Registry::load(&[]).expect("built-in workflows");
    let workflow = registry.get("fundamental").expect("fundamental");
    let schema = workflow
        .year
        .as_ref()
        .expect("a per-year step")
        .schema
        .clone();
    let companies = (0..COMPANIES)
        .map(|i| NewCompany {
            line_no: Some(i + 2),
            ticker: Some(format!("C{i:04}")),
            cik: Some(1_000_000 + i),
            company_name: Some(format!("Company {i} Holdings, Inc.")),
            priority: 0,
            skip_reason: None,
        })
        .collect();
    store
        .create_batch(
            &NewBatch {
                id: "20260601-000000-bench000".into(),
                name: Some("1,000 companies x 7 years".into()),
                analysis_type: "fundamental".into(),
                analysis_version: workflow.version.clone(),
                workflow: workflow.canonical.clone(),
                min_years: 1,
                years_spec: format!(r#"{{"latest":{YEARS}}}"#),
                as_of_date: "2026-06-01".into(),
                model: "gemini-2.5-flash".into(),
                settings: "{}".into(),
                priority: 0,
                input_file: Some("companies.csv".into()),
                companies,
            },
            start,
        )
        .expect("create batch");
    let batch = "20260601-000000-bench000";
    let mut now = start;
    while let Some(t) = store.claim_next(batch, OWNER, now, false).expect("claim") {
        let cik = t.cik.expect("cik");
        let plans: Vec<YearPlan> = (0..YEARS)
            .map(|k| {
                let year = 2024 - k;
                let accession = format!("{cik:010}-{:02}-{:06}", (year + 1) % 100, k);
                YearPlan {
                    fiscal_year: year,
                    filing: Some(FilingRef {
                        document_url: format!(
                            "https://www.sec.gov/Archives/edgar/data/{cik}/{}/r{year}.htm",
                            accession.replace('-', "")
                        ),
                        accession,
                        form: "10-K".into(),
                        period: Some(format!("{year}-12-31")),
                        filed: Some(format!("{}-02-20", year + 1)),
                        transition: false,
                    }),
                    skip_reason: None,
                }
            })
            .collect();
        store
            .complete_resolution(t.id, OWNER, &plans, true, false, None, now)
            .expect("resolve");
    }
    // Fourteen days of work, one task at a time.
    let total = COMPANIES * YEARS as u64;
    let step = SignedDuration::from_secs(14 * 86_400 / total as i64);
    let limits = BucketLimits {
        requests_per_day: u32::MAX,
        requests_per_minute: u32::MAX,
        input_tokens_per_minute: u64::MAX / 4,
    };
    let mut rng = fintel_sim::DetRng::new(7, &[1]);
    let mut results = 0;
    for i in 0..(total * 95 / 100) {
        now += step;
        let Some(task) = store.claim_next(batch, OWNER, now, true).expect("claim") else {
            break;
        };
        let day = fintel_time::pacific_date(now).to_string();
        store
            .reserve_call(
                &CallIntent {
                    bucket: "project-a",
                    key_fingerprint: Some("fp-a"),
                    bucket_keys: &[],
                    batch_id: Some(batch),
                    task_id: Some(task.id),
                    purpose: CallPurpose::Generate,
                    input_tokens: 60_000,
                },
                &limits,
                now,
                &day,
            )
            .expect("ledger")
            .expect("within limits");
        match i % 50 {
            0 => store
                .fail_task(
                    task.id,
                    OWNER,
                    "the model's answer did not match the schema twice",
                    true,
                    now,
                )
                .expect("fail"),
            1 | 2 => store
                .skip_task(
                    task.id,
                    OWNER,
                    "document too large for the model even after fitting it smaller",
                    now,
                )
                .expect("skip"),
            _ => {
                let filing = task.filing.clone().expect("filing");
                let json = fintel_sim::value_for_schema(&schema, &mut rng);
                store
                    .complete_with_result(
                        task.id,
                        OWNER,
                        &NewResult {
                            result_key: format!(
                                "{}|{}|fundamental",
                                task.cik.unwrap_or(0),
                                filing.accession
                            ),
                            cik: task.cik.unwrap_or(0),
                            ticker: task.ticker.clone(),
                            company_name: task.company_name.clone(),
                            fiscal_year: task.fiscal_year,
                            fiscal_year_label: task.fiscal_year.map(|y| y.to_string()),
                            form: Some(filing.form.clone()),
                            accession: Some(filing.accession.clone()),
                            analysis_type: "fundamental".into(),
                            analysis_version: workflow.version.clone(),
                            model: "gemini-2.5-flash".into(),
                            json: json.to_string(),
                            prompt_tokens: 60_000,
                            output_tokens: 1_500,
                            thinking_tokens: 0,
                            attempts: 1,
                            calls: 1,
                            document_url: Some(filing.document_url.clone()),
                            document_sha256: Some("0".repeat(64)),
                            fitting: Some(
                                r#"{"was_cut":false,"kept":["1","1A","7","8"],"cut":[]}"#.into(),
                            ),
                            started_at: Some(now),
                            supersede: false,
                            request_params: None,
                        },
                        now,
                    )
                    .expect("result");
                results += 1;
            }
        }
    }
    store
        .set_batch_state(batch, BatchState::Running, None, now)
        .expect("state");
    store
        .register_key("fp-a", "GOOGLE_API_KEY_1 (AIza...abcd)", "project-a")
        .expect("key");
    (results, now)
}

/// One whole HTTP/1.1 request on a fresh connection; the time to the last byte.
fn fetch(addr: SocketAddr, path: &str) -> (Duration, usize) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut body = Vec::new();
    stream.read_to_end(&mut body).expect("read");
    let took = started.elapsed();
    assert!(
        body.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&body[..body.len().min(300)])
    );
    (took, body.len())
}

fn summary(name: &str, addr: SocketAddr, path: &str, n: usize) -> f64 {
    fetch(addr, path); // warm the statement cache of each reader
    let mut times: Vec<Duration> = Vec::with_capacity(n);
    let mut bytes = 0;
    for _ in 0..n {
        let (t, b) = fetch(addr, path);
        times.push(t);
        bytes = b;
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let median = ms(times[n / 2]);
    println!(
        "{name:<16} median {median:6.2} ms  p95 {:6.2} ms  max {:6.2} ms  ({n} requests, {} KB)",
        ms(times[n * 95 / 100]),
        ms(times[n - 1]),
        bytes / 1024
    );
    median
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("fintel.db");
    let start: Timestamp = "2026-06-01T07:00:00Z".parse().expect("instant");
    let filled = Instant::now();
    let store = Store::open(&db).expect("database");
    let (results, end) = fill(&store, start);
    drop(store);
    let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(dir.path().join("fintel.db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    println!(
        "database: {COMPANIES} companies x {YEARS} years, {results} results, {:.1} MB, filled in {:.1} s",
        size as f64 / 1e6,
        filled.elapsed().as_secs_f64()
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let router = fintel_web::router(WebConfig {
        db_path: db.clone(),
        cache_dir: dir.path().join("cache"),
        buckets: vec![BucketConfig {
            name: "project-a".into(),
            keys: vec![KeyConfig {
                label: "GOOGLE_API_KEY_1 (AIza...abcd)".into(),
                fingerprint: "fp-a".into(),
            }],
            limits: BucketLimits {
                requests_per_day: 500,
                requests_per_minute: 5,
                input_tokens_per_minute: 250_000,
            },
        }],
        reset_buffer: Duration::from_secs(300),
        clock: Arc::new(ManualClock::new(end + SignedDuration::from_mins(5))),
        token: Token::generate(),
        bound: addr,
    })
    .expect("router");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(fintel_web::serve(listener, router, async move {
        let _ = stopped.await;
    }));

    let median = summary("batches page /", addr, "/", REQUESTS);
    summary(
        "batch page",
        addr,
        "/batches/20260601-000000-bench000",
        REQUESTS / 4,
    );
    summary("keys page", addr, "/keys", REQUESTS / 4);
    summary("results index", addr, "/results", REQUESTS / 10);
    summary("company page", addr, "/companies/C0500", REQUESTS / 4);
    println!(
        "batches page: median {median:.2} ms (target < 50 ms): {}",
        if median < 50.0 { "met" } else { "MISSED" }
    );
    let _ = stop.send(());
    let _ = runtime.block_on(server);
}
