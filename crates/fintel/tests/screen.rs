//! End-to-end: the EON analysis types run against the simulator and store results valid for
//! their schemas, `fintel screen` ranks them from the command line, and a batch created with
//! the earlier `scanner` keeps running the version it pinned.

use std::process::Stdio;
use std::time::{Duration, Instant};

mod support;

use fintel_workflows::Registry;
use serde_json::Value;
use support::*;

/// Every stored result of `analysis` with whether it is an aggregate (several accessions).
fn stored(env: &Env, analysis: &str) -> Vec<(bool, String, Value)> {
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT instr(accession, ',') > 0, COALESCE(ticker, ''), json FROM results \
             WHERE analysis_type = ?1 ORDER BY id",
        )
        .unwrap();
    stmt.query_map([analysis], |r| {
        Ok((
            r.get::<_, bool>(0)?,
            r.get::<_, String>(1)?,
            serde_json::from_str(&r.get::<_, String>(2)?).unwrap(),
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn run_batch(env: &Env, file: &str, analysis: &str) {
    let out = env.run(&[
        "batch",
        file,
        "--years",
        "3",
        "--analysis-type",
        analysis,
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{analysis}: {}",
        text(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["state"], "completed", "{analysis}");
    assert_eq!(doc["counts"]["failed"], 0, "{analysis}");
}

fn json_rows(out: &std::process::Output) -> Vec<Value> {
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)))
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn eon_types_store_valid_results_with_their_fields_and_screen_from_the_command_line() {
    let env = Env::new(0).await;
    std::fs::write(
        env.dir.path().join("five.csv"),
        fintel_sim::companies_csv(5),
    )
    .unwrap();
    let registry = Registry::load(&[]).unwrap();
    // (type, step whose result carries the EON fields, those fields)
    let types: &[(&str, bool, &[&str])] = &[
        (
            "scanner",
            true,
            &[
                "scores",
                "overall_alpha_score",
                "key_insights",
                "investment_thesis",
                "risk_factors",
                "catalyst_timeline",
                "confidence_level",
            ],
        ),
        (
            "checklist",
            true,
            &["quality", "growth", "value", "score", "verdict"],
        ),
        (
            "excellent",
            true,
            &[
                "success_factors",
                "unique_attributes",
                "business_evolution",
                "value_creation",
                "future_outlook",
            ],
        ),
        (
            "objective",
            true,
            &[
                "strategic_shifts",
                "distinguishing_characteristics",
                "evolving_risk_factors",
            ],
        ),
        ("multi", false, &["verdict", "conviction"]),
        ("contrarian", false, &["variant_perception"]),
    ];
    for (analysis, aggregate, fields) in types {
        run_batch(&env, "five.csv", analysis);
        let workflow = registry.get(analysis).unwrap();
        let year = workflow.year.as_ref().unwrap().output_validator().unwrap();
        let agg = workflow
            .aggregate
            .as_ref()
            .map(|s| s.output_validator().unwrap());
        let results = stored(&env, analysis);
        let carrying: Vec<&Value> = results
            .iter()
            .filter(|(is_aggregate, _, _)| is_aggregate == aggregate)
            .map(|(_, _, v)| v)
            .collect();
        assert_eq!(
            carrying.len(),
            if *aggregate { 5 } else { 15 },
            "{analysis}"
        );
        for (is_aggregate, ticker, value) in &results {
            let validator = if *is_aggregate {
                agg.as_ref().unwrap()
            } else {
                &year
            };
            if let Err(e) = validator.validate(value) {
                panic!("{analysis} {ticker}: stored result invalid: {e}");
            }
        }
        for value in carrying {
            for field in *fields {
                assert!(
                    value.get(field).is_some(),
                    "{analysis} lacks {field}: {value}"
                );
            }
        }
    }

    // The scan, ranked by the overall alpha score: one row per company, from its aggregate.
    let rows = json_rows(&env.run(&[
        "screen",
        "--analysis-type",
        "scanner",
        "--sort",
        "overall_alpha_score",
        "--show",
        "confidence_level,scores.strategic_anomaly",
        "--json",
    ]));
    assert_eq!(rows.len(), 5);
    let aggregates: Vec<(String, Value)> = stored(&env, "scanner")
        .into_iter()
        .filter(|(a, _, _)| *a)
        .map(|(_, t, v)| (t, v))
        .collect();
    let mut previous = f64::INFINITY;
    for row in &rows {
        let keys: Vec<&String> = row.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "ticker",
                "cik",
                "company_name",
                "fiscal_year",
                "value",
                "fields"
            ],
            "{row}"
        );
        let value = row["value"].as_f64().unwrap();
        assert!(value <= previous, "sorted highest first: {rows:?}");
        previous = value;
        let (_, stored) = aggregates
            .iter()
            .find(|(t, _)| *t == row["ticker"].as_str().unwrap())
            .unwrap();
        assert_eq!(row["value"], stored["overall_alpha_score"]);
        assert_eq!(
            row["fields"]["confidence_level"],
            stored["confidence_level"]
        );
        assert_eq!(
            row["fields"]["scores.strategic_anomaly"],
            stored["scores"]["strategic_anomaly"]
        );
        assert!(row["fiscal_year"].as_i64().is_some());
    }

    // The compounders preset: exactly the companies EON's scan would keep.
    let rows = json_rows(&env.run(&["screen", "--preset", "compounders", "--json"]));
    let mut expected: Vec<(i64, String)> = aggregates
        .iter()
        .filter(|(_, v)| {
            v["overall_alpha_score"].as_i64().unwrap() >= 70
                && ["HIGH", "MEDIUM"].contains(&v["confidence_level"].as_str().unwrap())
        })
        .map(|(t, v)| (v["overall_alpha_score"].as_i64().unwrap(), t.clone()))
        .collect();
    expected.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let got: Vec<(i64, String)> = rows
        .iter()
        .map(|r| {
            (
                r["value"].as_i64().unwrap(),
                r["ticker"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(got, expected);

    // multi's verdict, compared on its scale.
    let rows = json_rows(&env.run(&[
        "screen",
        "--analysis-type",
        "multi_analysis",
        "--sort",
        "conviction",
        "--where",
        "verdict >= buy",
        "--show",
        "verdict",
        "--json",
    ]));
    for row in &rows {
        let verdict = row["fields"]["verdict"].as_str().unwrap();
        assert!(["strong_buy", "buy"].contains(&verdict), "{row}");
    }

    // The table, and files.
    let out = env.run(&["screen", "--preset", "compounders", "--top", "3", "--asc"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("companies with scanner results pass"),
        "{}",
        text(&out.stderr)
    );
    let out = env.run(&[
        "screen",
        "--analysis-type",
        "scanner",
        "--sort",
        "overall_alpha_score",
    ]);
    let table = text(&out.stdout);
    assert!(
        table
            .lines()
            .next()
            .unwrap()
            .contains("overall_alpha_score"),
        "{table}"
    );
    assert!(
        table.contains("fintel results "),
        "each row says how to see its results: {table}"
    );
    assert_eq!(table.lines().count(), 6, "{table}");
    let out = env.run(&[
        "screen",
        "--preset",
        "compounders",
        "--top",
        "50",
        "--where",
        "overall_alpha_score >= 0",
        "--format",
        "csv",
        "--output",
        "short.csv",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let csv = std::fs::read_to_string(env.dir.path().join("short.csv")).unwrap();
    assert!(
        csv.starts_with("rank,ticker,cik,company_name,fiscal_year,overall_alpha_score,results"),
        "{csv}"
    );
    let out = env.run(&[
        "screen",
        "--preset",
        "compounders",
        "--format",
        "xlsx",
        "--output",
        "short.csv",
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an existing file is not replaced"
    );
    assert!(
        text(&out.stderr).contains("--force"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(env.dir.path().join("short.csv")).unwrap(),
        csv
    );

    // Careless command lines: exit 2 with what to do, nothing written.
    let bad: &[(&[&str], &str)] = &[
        (
            &["screen", "--analysis-type", "scanner", "--sort", "alpha"],
            "its fields are: years_used",
        ),
        (
            &[
                "screen",
                "--analysis-type",
                "scanner",
                "--sort",
                "overall_alpha_score",
                "--where",
                "overall_alpha_score => 70",
            ],
            "unknown operator `=>`",
        ),
        (
            &[
                "screen",
                "--analysis-type",
                "scanner",
                "--sort",
                "overall_alpha_score",
                "--where",
                "overall_alpha_score >= lots",
            ],
            "`lots` is not a number",
        ),
        (
            &[
                "screen",
                "--analysis-type",
                "scanner",
                "--sort",
                "overall_alpha_score",
                "--where",
                "confidence_level >= SURE",
            ],
            "HIGH, MEDIUM, LOW",
        ),
        (
            &[
                "screen",
                "--analysis-type",
                "scanner",
                "--sort",
                "key_insights",
            ],
            "it is a list",
        ),
        (
            &["screen", "--analysis-type", "scaner", "--sort", "score"],
            "unknown analysis type `scaner`",
        ),
        (
            &[
                "screen",
                "--preset",
                "compounders",
                "--analysis-type",
                "multi",
            ],
            "screens scanner results",
        ),
        (&["screen", "--preset", "value"], "unknown preset"),
        (&["screen"], "--analysis-type"),
        (&["screen", "--analysis-type", "scanner"], "--sort"),
        (
            &[
                "screen",
                "--preset",
                "compounders",
                "--fiscal-year",
                "2020",
                "--latest",
            ],
            "cannot be used with",
        ),
        (
            &[
                "screen",
                "--preset",
                "compounders",
                "--format",
                "parquet",
                "--output",
                "x.parquet",
            ],
            "use csv or xlsx",
        ),
        (
            &[
                "screen",
                "--preset",
                "compounders",
                "--batch-id",
                "nosuchbatch",
            ],
            "nosuchbatch",
        ),
    ];
    for (args, message) in bad {
        let out = env.run(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(message),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    assert!(!env.dir.path().join("x.parquet").exists());
}

/// The checklist `scanner` was before EON's scanner took the name, as a workflow file: what
/// a batch created with the earlier build pinned.
fn earlier_scanner() -> String {
    Registry::builtin_source("checklist")
        .unwrap()
        .replace("name = \"checklist\"", "name = \"scanner\"")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_created_with_the_earlier_scanner_keeps_running_its_pinned_version() {
    let env = Env::new(150).await;
    std::fs::write(
        env.dir.path().join("five.csv"),
        fintel_sim::companies_csv(5),
    )
    .unwrap();
    let workflows = env.home().join("workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    std::fs::write(workflows.join("scanner.toml"), earlier_scanner()).unwrap();

    let mut child = env
        .cmd(&[
            "batch",
            "five.csv",
            "--years",
            "3",
            "--analysis-type",
            "scanner",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while env.completed_results() < 1 {
        assert!(start.elapsed() < Duration::from_secs(60), "no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "exited early: {}",
            read_all(child.stderr.take().unwrap())
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    signal(&child, "-TERM");
    let status = wait_for(&mut child, Duration::from_secs(40));
    assert_eq!(
        status.code(),
        Some(0),
        "{}",
        read_all(child.stderr.take().unwrap())
    );
    assert!(
        env.completed_results() < 20,
        "the batch should not have finished yet"
    );

    // The new build: the earlier file is gone, `scanner` is EON's scanner now.
    std::fs::remove_file(workflows.join("scanner.toml")).unwrap();
    let current = Registry::load(&[])
        .unwrap()
        .get("scanner")
        .unwrap()
        .version
        .clone();
    let (id, pinned_version): (String, String) = rusqlite::Connection::open(env.db())
        .unwrap()
        .query_row("SELECT id, analysis_version FROM batches", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_ne!(pinned_version, current);

    let out = env.run(&["batch", "--resume", &id, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["state"], "completed");
    assert_eq!(doc["counts"]["failed"], 0);

    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let versions: Vec<String> = conn
        .prepare("SELECT DISTINCT analysis_version FROM results")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        versions,
        std::slice::from_ref(&pinned_version),
        "every result from the pinned version"
    );
    let aggregates: Vec<(bool, String, Value)> = stored(&env, "scanner")
        .into_iter()
        .filter(|(a, _, _)| *a)
        .collect();
    assert_eq!(aggregates.len(), 5);
    for (_, ticker, value) in &aggregates {
        assert!(
            value.get("quality").is_some() && value.get("score").is_some(),
            "{ticker}: {value}"
        );
        assert!(
            value.get("overall_alpha_score").is_none(),
            "{ticker}: {value}"
        );
    }

    // The screen reads its fields from the pinned version.
    let rows = json_rows(&env.run(&[
        "screen",
        "--analysis-type",
        "scanner",
        "--batch-id",
        &id,
        "--sort",
        "score",
        "--show",
        "verdict",
        "--json",
    ]));
    assert_eq!(rows.len(), 5);
    assert!(rows
        .iter()
        .all(|r| r["value"].is_i64() && r["fields"]["verdict"].is_string()));
}
