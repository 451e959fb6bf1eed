//! End-to-end: a batch of the built-in `changes` type against the simulator compares each
//! company's consecutive filings with no model request, stores one result per company-year
//! that has a previous year (keyed by both accessions), skips the first year with its reason,
//! ranks with `fintel screen --sort sections.1A.cosine`, exports, and never waits for a
//! spent quota.

use std::process::Stdio;
use std::time::{Duration, Instant};

mod support;

use serde_json::Value;
use support::*;

/// Three companies whose filing history is exactly three fiscal years, so a batch of the
/// latest three years has no filing before its first year.
fn three_years_only(config: &mut fintel_sim::SimConfig) {
    config.sec.min_years = 3;
    config.sec.max_years = 3;
}

fn write_companies(env: &Env) {
    std::fs::write(
        env.dir.path().join("three.csv"),
        fintel_sim::companies_csv(3),
    )
    .unwrap();
}

/// (fiscal_year, accession, model, result_key, json) of every stored `changes` result.
fn stored(env: &Env) -> Vec<(i64, String, String, String, Value)> {
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT fiscal_year, accession, model, result_key, json FROM results \
             WHERE analysis_type = 'changes' ORDER BY cik, fiscal_year",
        )
        .unwrap();
    stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            serde_json::from_str(&r.get::<_, String>(4)?).unwrap(),
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn skipped_reasons(env: &Env) -> Vec<(i64, String)> {
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT fiscal_year, reason FROM tasks WHERE kind = 'year' AND state = 'skipped' \
             ORDER BY company_id, fiscal_year",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn check_results(env: &Env) {
    let results = stored(env);
    assert_eq!(
        results.len(),
        6,
        "two compared years for each of three companies"
    );
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let model_tasks: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM tasks t JOIN batches b ON b.id = t.batch_id \
             WHERE b.analysis_type = 'changes' AND t.needs_model = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        model_tasks, 0,
        "every task of a changes batch is quota-free work"
    );
    let skipped = skipped_reasons(env);
    assert_eq!(skipped.len(), 3, "each company's first year: {skipped:?}");
    for (year, reason) in &skipped {
        assert!(
            reason.contains(&format!(
                "nothing to compare FY{year} with: the previous fiscal year FY{} has no filing",
                year - 1
            )),
            "{reason}"
        );
    }
    for (year, accession, model, key, json) in &results {
        assert_eq!(model, "local");
        assert_eq!(json["previous_fiscal_year"], year - 1);
        assert_eq!(json["accession"], accession.as_str());
        let previous = json["previous_accession"].as_str().unwrap();
        assert_ne!(previous, accession);
        assert!(
            key.contains(&format!("/{previous}+{accession}/changes/")),
            "keyed by both accessions: {key}"
        );
        for measure in ["cosine", "jaccard", "min_edit", "simple"] {
            let whole = json["whole"][measure].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&whole), "{measure} {whole}");
            let risk = json["sections"]["1A"][measure].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&risk), "1A {measure} {risk}");
        }
        assert!(json["sections"]["1A"]["added"].is_array());
        assert!(json["whole"]["added_count"].as_u64().is_some());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changes_batch_asks_no_model_and_screens_by_the_risk_factors_similarity() {
    let env = Env::with(0, three_years_only).await;
    write_companies(&env);
    let out = env.run(&[
        "batch",
        "three.csv",
        "--years",
        "3",
        "--analysis-type",
        "changes",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["state"], "completed", "{doc}");
    assert_eq!(doc["counts"]["failed"], 0, "{doc}");
    let stats = env.sim.as_ref().unwrap().stats();
    assert_eq!(stats.gemini.total.received, 0, "no model request");
    assert_eq!(stats.gemini.missing_key + stats.gemini.invalid_key, 0);
    check_results(&env);

    // The screen ranks each company's latest year, the biggest risk-factor changers first.
    let out = env.run(&[
        "screen",
        "--analysis-type",
        "changes",
        "--sort",
        "sections.1A.cosine",
        "--asc",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    let values: Vec<f64> = rows.iter().map(|r| r["value"].as_f64().unwrap()).collect();
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    assert_eq!(values, sorted, "ascending");
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    for row in &rows {
        let latest: String = conn
            .query_row(
                "SELECT json FROM results \
                 WHERE analysis_type = 'changes' AND cik = ?1 ORDER BY fiscal_year DESC LIMIT 1",
                [row["cik"].as_i64().unwrap()],
                |r| r.get(0),
            )
            .unwrap();
        let latest: Value = serde_json::from_str(&latest).unwrap();
        assert_eq!(row["value"], latest["sections"]["1A"]["cosine"], "{row}");
    }

    // Exports flatten the nested measures like any result.
    let out = env.run(&[
        "export",
        "--format",
        "csv",
        "--output",
        "changes.csv",
        "--analysis-type",
        "changes",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let csv = std::fs::read_to_string(env.dir.path().join("changes.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(header.contains("sections.1A.cosine"), "{header}");
    assert!(header.contains("whole.min_edit"), "{header}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changes_batch_finishes_while_the_days_quota_is_spent() {
    // Noon Pacific at the speed of real time: the reset is twelve hours away, so a batch that
    // waited for it would not finish within this test.
    let start: jiff::Timestamp = "2026-06-15T12:00:00-07:00".parse().unwrap();
    let clock = std::sync::Arc::new(fintel_time::FakeClock::new(start, 1.0));
    let mut config = sim_config(0);
    three_years_only(&mut config);
    config.gemini.projects[0].requests_per_day = 9;
    let env = Env::start(config, clock.clone()).await;
    write_companies(&env);
    let fake_clock = || format!("{}@{}", fintel_time::Clock::now(&*clock), clock.speed());
    // Nine analyses spend the key's nine requests of the day.
    let out = env
        .cmd(&["batch", "three.csv", "--years", "3"])
        .env("FINTEL_FAKE_CLOCK", fake_clock())
        .env("FINTEL_REQUESTS_PER_DAY", "9")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let sim = env.sim.as_ref().unwrap();
    assert_eq!(
        sim.stats().gemini.total.accepted,
        9,
        "the day's quota is spent"
    );

    let mut child = env
        .cmd(&[
            "batch",
            "three.csv",
            "--years",
            "3",
            "--analysis-type",
            "changes",
            "--json",
        ])
        .env("FINTEL_FAKE_CLOCK", fake_clock())
        .env("FINTEL_REQUESTS_PER_DAY", "9")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded by the child's exit; the limit only keeps a waiting batch from hanging the run.
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the changes batch waited for the quota reset");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let out = child.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(0), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["state"], "completed", "{doc}");
    assert_eq!(sim.stats().gemini.total.received, 9, "not one more request");
    assert!(
        fintel_time::Clock::now(&*clock) < "2026-06-16T00:00:00-07:00".parse().unwrap(),
        "finished before the reset"
    );
    check_results(&env);
}
