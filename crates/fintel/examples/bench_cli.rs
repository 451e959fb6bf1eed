//! CLI start-up benchmark: builds a database of 1,000 companies x 7 fiscal years (every task
//! completed with a result, plus a second, incomplete batch of the same size), then times
//! `fintel batch --list-incomplete` as a user runs it. Build the binary first:
//!
//! ```text
//! cargo build --release -p fintel && cargo run --release -p fintel --example bench_cli
//! ```

use std::process::Command;
use std::time::Instant;

use fintel_store::{FilingRef, NewBatch, NewCompany, NewResult, Store, YearPlan};

fn fill(store: &Store, id: &str, complete: bool, now: jiff::Timestamp) {
    let companies = (0..1000)
        .map(|i| NewCompany {
            line_no: Some(i + 2),
            ticker: Some(format!("T{i:04}")),
            cik: Some(100_000 + i),
            company_name: Some(format!("Company {i}")),
            priority: 0,
            skip_reason: None,
        })
        .collect();
    store
        .create_batch(
            &NewBatch {
                id: id.into(),
                name: None,
                analysis_type: "fundamental".into(),
                analysis_version: "v".repeat(64),
                workflow: "name = \"fundamental\"".into(),
                min_years: 1,
                years_spec: r#"{"latest":7}"#.into(),
                as_of_date: "2026-11-29".into(),
                model: "gemini-2.5-flash".into(),
                settings: "{}".into(),
                priority: 0,
                input_file: None,
                companies,
            },
            now,
        )
        .expect("create batch");
    let owner = "bench";
    while let Some(task) = store.claim_next(id, owner, now, true).expect("claim") {
        match task.kind {
            fintel_store::TaskKind::Resolve => {
                let plans: Vec<YearPlan> = (2018..2025)
                    .map(|y| YearPlan {
                        fiscal_year: y,
                        filing: Some(FilingRef {
                            accession: format!(
                                "0000{:06}-{}-000001",
                                task.cik.unwrap_or(0),
                                y % 100
                            ),
                            form: "10-K".into(),
                            period: Some(format!("{y}-12-31")),
                            filed: Some(format!("{}-02-20", y + 1)),
                            document_url: "https://www.sec.gov/Archives/x.htm".into(),
                            transition: false,
                        }),
                        skip_reason: None,
                    })
                    .collect();
                store
                    .complete_resolution(task.id, owner, &plans, true, false, None, now)
                    .expect("resolve");
            }
            _ if complete => {
                let result = NewResult {
                    result_key: format!("{id}/{}", task.id),
                    cik: task.cik.unwrap_or(0),
                    ticker: task.ticker.clone(),
                    fiscal_year: task.fiscal_year,
                    analysis_type: "fundamental".into(),
                    analysis_version: "v".repeat(64),
                    model: "gemini-2.5-flash".into(),
                    json: format!("{{\"summary\":\"{}\",\"score\":7}}", "x".repeat(2000)),
                    ..Default::default()
                };
                store
                    .complete_with_result(task.id, owner, &result, now)
                    .expect("complete");
            }
            _ => {
                store
                    .release_task(task.id, owner, None, now)
                    .expect("release");
                break;
            }
        }
    }
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("fintel.db");
    let now = jiff::Timestamp::now();
    let started = Instant::now();
    {
        let store = Store::open(&db).expect("open");
        store
            .conn()
            .execute_batch("PRAGMA synchronous = OFF")
            .expect("pragma");
        fill(&store, "20261101-000000-done", true, now);
        fill(&store, "20261102-000000-open", false, now);
        fill(&store, "20261103-000000-open", false, now);
    }
    eprintln!("database built in {:.1} s", started.elapsed().as_secs_f64());
    let exe = std::env::current_exe().expect("own path");
    let bin = exe
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("fintel"))
        .expect("target dir");
    assert!(
        bin.exists(),
        "build the binary first: cargo build --release -p fintel"
    );
    let mut times = Vec::new();
    for _ in 0..21 {
        let t = Instant::now();
        let out = Command::new(&bin)
            .args(["batch", "--list-incomplete"])
            .env("FINTEL_HOME", dir.path())
            .output()
            .expect("run fintel");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    times.sort_by(|a, b| a.total_cmp(b));
    println!(
        "fintel batch --list-incomplete, 3 batches of 1,000 companies x 7 years (21,000 tasks): \
         median {:.1} ms, min {:.1} ms, max {:.1} ms (target < 50 ms)",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1]
    );
}
