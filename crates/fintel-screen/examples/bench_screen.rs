//! How fast a screen answers over a full-size database: 1,000 companies x 7 fiscal years.
//!
//! Fills a database through the store's public API with two batches as the engine leaves
//! them: `fundamental` (7,000 yearly results) and `scanner` (7,000 yearly extractions and
//! 1,000 aggregate results), each answer generated from the type's schema as the simulator
//! does, so results have realistic sizes. Then times screens, each a median of several runs:
//!
//! ```sh
//! cargo build --release -p fintel && cargo run --release -p fintel-screen --example bench_screen
//! ```
//!
//! With the release binary built, the command itself is timed too.
//!
//! The target (SPEC.md section 10) is under 100 ms.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use fintel_screen::{screen, ScreenRequest};
use fintel_store::{Store, TaskKind};
use fintel_workflows::Registry;
use jiff::Timestamp;

const COMPANIES: u64 = 1_000;
const YEARS: [i32; 7] = [2018, 2019, 2020, 2021, 2022, 2023, 2024];
const RUNS: usize = 15;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::open(&dir.path().join("fintel.db")).expect("database");
    let registry = Registry::load(&[]).expect("built-in workflows");
    let companies: Vec<common::Company> = (0..COMPANIES)
        .map(|i| common::Company {
            ticker: format!("C{i:04}"),
            cik: 1_000_000 + i,
            name: format!("Company {i} Holdings, Inc."),
        })
        .collect();
    let started = Instant::now();
    let mut now: Timestamp = "2026-06-01T00:00:00Z".parse().expect("instant");
    let mut rng = fintel_sim::DetRng::new(7, &[1]);
    for analysis in ["fundamental", "scanner"] {
        let workflow = registry.get(analysis).expect("built-in type");
        let year_schema = workflow.year.as_ref().expect("year step").schema.clone();
        let aggregate_schema = workflow.aggregate.as_ref().map(|s| s.schema.clone());
        now = common::fill(
            &store,
            &format!("bench-{analysis}"),
            workflow,
            &companies,
            &YEARS,
            now,
            &mut |task| {
                let schema = match (task.kind, &aggregate_schema) {
                    (TaskKind::Aggregate, Some(schema)) => schema,
                    _ => &year_schema,
                };
                Some(fintel_sim::value_for_schema(schema, &mut rng))
            },
        );
    }
    let results: i64 = store
        .conn()
        .query_row("SELECT COUNT(*) FROM results", [], |r| r.get(0))
        .expect("count");
    let bytes = std::fs::metadata(dir.path().join("fintel.db")).map_or(0, |m| m.len());
    println!(
        "filled {results} results ({:.0} MB) in {:.1} s",
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    // Settle the statistics as the daily maintenance does.
    store.conn().execute_batch("ANALYZE").expect("analyze");

    let screens: Vec<(&str, ScreenRequest)> = vec![
        (
            "fintel screen --preset compounders",
            ScreenRequest::from_preset(fintel_screen::preset("compounders").expect("preset")),
        ),
        (
            "fintel screen --analysis-type scanner --sort scores.strategic_anomaly --show confidence_level,investment_thesis",
            ScreenRequest {
                analysis_type: "scanner".into(),
                sort: "scores.strategic_anomaly".into(),
                show: vec!["confidence_level".into(), "investment_thesis".into()],
                ..ScreenRequest::default()
            },
        ),
        (
            "fintel screen --analysis-type fundamental --sort score --where \"balance_sheet.strength >= strong\" --top 50",
            ScreenRequest {
                analysis_type: "fundamental".into(),
                sort: "score".into(),
                conditions: vec!["balance_sheet.strength >= strong".into()],
                top: Some(50),
                ..ScreenRequest::default()
            },
        ),
        (
            "fintel screen --analysis-type fundamental --sort score --fiscal-year 2020",
            ScreenRequest {
                analysis_type: "fundamental".into(),
                sort: "score".into(),
                fiscal_year: Some(2020),
                ..ScreenRequest::default()
            },
        ),
    ];
    for (command, request) in &screens {
        let mut samples = Vec::with_capacity(RUNS);
        let mut rows = 0;
        let mut companies = 0;
        for _ in 0..RUNS {
            let t = Instant::now();
            let s = screen(&store, &registry, request).expect("screen");
            samples.push(t.elapsed());
            rows = s.rows.len();
            companies = s.companies;
        }
        let med = median(samples);
        println!(
            "{:>7.1} ms median of {RUNS} ({companies} companies, {rows} rows)  {command}",
            med.as_secs_f64() * 1e3
        );
    }
    // What `fintel screen` does besides the query: open the database and load the workflows.
    let mut samples = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let t = Instant::now();
        let store = Store::open(&dir.path().join("fintel.db")).expect("database");
        let registry = Registry::load(&[]).expect("built-in workflows");
        let request =
            ScreenRequest::from_preset(fintel_screen::preset("compounders").expect("preset"));
        screen(&store, &registry, &request).expect("screen");
        samples.push(t.elapsed());
    }
    println!(
        "{:>7.1} ms median of {RUNS}  open the database + load the workflows + --preset compounders",
        median(samples).as_secs_f64() * 1e3
    );
    // The command itself, when the release binary is built (a process start included).
    let exe = std::env::current_exe().expect("own path");
    let bin = exe
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("fintel"))
        .expect("target dir");
    if bin.exists() {
        let mut samples = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let t = Instant::now();
            let out = std::process::Command::new(&bin)
                .args(["screen", "--preset", "compounders", "--json"])
                .env("FINTEL_HOME", dir.path())
                .output()
                .expect("run fintel");
            samples.push(t.elapsed());
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        println!(
            "{:>7.1} ms median of {RUNS}  the binary: fintel screen --preset compounders --json",
            median(samples).as_secs_f64() * 1e3
        );
    } else {
        println!("(cargo build --release -p fintel first to time the command end to end)");
    }
    println!("target: under 100 ms");
}
