//! End-to-end tests of the built `fintel` binary against the simulator on 127.0.0.1, as a user
//! runs it: configuration through the environment, signals, exit codes, `--json` output.

use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod support;

use support::procs::kill_9_and_resume;
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_mid_batch_exits_0_with_the_resume_command_and_resume_completes() {
    let env = Env::new(150).await;
    let mut child = env
        .cmd(&["batch", "companies.csv", "--years", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while env.completed_results() < 3 {
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
    let stderr = read_all(child.stderr.take().unwrap());
    assert_eq!(status.code(), Some(0), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("Resume with: fintel batch --resume "))
        .unwrap_or_else(|| panic!("no resume command in: {stderr}"));
    let id = line.rsplit(' ').next().unwrap().to_string();
    let before = env.completed_results();
    assert!(
        before < 24,
        "the batch should not have finished yet ({before})"
    );

    // The batch is listed as incomplete, in JSON a script can read.
    let out = env.run(&["batch", "--list-incomplete", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["state"], "stopped");

    let out = env.run(&["batch", "--resume", &id, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["state"], "completed");
    let counts = &doc["counts"];
    assert_eq!(
        counts["completed"].as_u64().unwrap() + counts["skipped"].as_u64().unwrap(),
        counts["total"].as_u64().unwrap()
    );
    let stats = env.sim.as_ref().unwrap().stats();
    assert_eq!(
        stats.gemini.total.duplicates, 0,
        "no result was asked for twice"
    );
    assert_eq!(stats.gemini.total.over_limit, 0);
    assert_eq!(
        env.completed_results() as u64,
        counts["completed"].as_u64().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_usage_and_configuration_get_their_exit_codes_and_change_nothing() {
    let env = Env::new(0).await;
    // 2: no file.
    let out = env.run(&["batch", "--years", "3"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no companies file"));
    // 2: no years.
    let out = env.run(&["batch", "companies.csv"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--years N"));
    // 2: unknown analysis type, listing the known ones.
    let out = env.run(&[
        "batch",
        "companies.csv",
        "--years",
        "3",
        "--analysis-type",
        "nope",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("fundamental"),
        "{}",
        text(&out.stderr)
    );
    // 2: too few years for a multi-year type.
    let out = env.run(&[
        "batch",
        "companies.csv",
        "--years",
        "2",
        "--analysis-type",
        "excellent",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    // 2: malformed file, every line reported.
    std::fs::write(
        env.dir.path().join("bad.csv"),
        "ticker,cik\nAAPL,abc\n$$,\n",
    )
    .unwrap();
    let out = env.run(&["batch", "bad.csv", "--years", "3"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("line 2") && err.contains("line 3"), "{err}");
    // 2: unknown ticker, with its line; --skip-unknown is suggested.
    std::fs::write(env.dir.path().join("unknown.txt"), "NOSUCHCO\n").unwrap();
    let out = env.run(&["batch", "unknown.txt", "--years", "1"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("line 1: NOSUCHCO"));
    // 4: no SEC User-Agent.
    let out = env
        .cmd(&["batch", "companies.csv", "--years", "1"])
        .env_remove("FINTEL_SEC_USER_AGENT")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("FINTEL_SEC_USER_AGENT"));
    // 4: no key.
    let out = env
        .cmd(&["batch", "companies.csv", "--years", "1"])
        .env_remove("GOOGLE_API_KEY_1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("GOOGLE_API_KEY_1"));
    // 4: a model the provider does not know.
    let out = env
        .cmd(&["batch", "companies.csv", "--years", "1"])
        .env("FINTEL_MODEL", "gemini-nope")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    // Nothing was created by any of these.
    let out = env.run(&["batch", "--list-incomplete", "--json"]);
    assert_eq!(text(&out.stdout).trim(), "[]");
    // 2: resuming a batch that does not exist.
    let out = env.run(&["batch", "--resume", "nosuchbatch"]);
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_completes_and_status_json_has_the_documented_shape() {
    let env = Env::new(0).await;
    let out = env.run(&["batch", "companies.csv", "--years", "2", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in ["batch_id", "state", "counts", "exit_code", "resume_command"] {
        assert!(doc.get(key).is_some(), "{key} missing in {doc}");
    }
    let id = doc["batch_id"].as_str().unwrap();
    let out = env.run(&["batch", "status", id, "--json", "--skipped"]);
    assert_eq!(out.status.code(), Some(0));
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "id",
        "state",
        "analysis_type",
        "model",
        "counts",
        "reasons",
        "skipped",
    ] {
        assert!(st.get(key).is_some(), "{key} missing in {st}");
    }
    assert_eq!(st["state"], "completed");
    // The results carry their provenance.
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let (url, sha, version): (String, String, String) = conn
        .query_row(
            "SELECT document_url, document_sha256, analysis_version FROM results LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert!(url.starts_with(&env.url), "{url}");
    assert_eq!(sha.len(), 64);
    assert_eq!(version.len(), 64);
    // The plan counts what is stored: 8 companies x 3 years, minus the stored 2 years of each.
    let out = env.run(&["plan", "companies.csv", "--years", "3", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let stored = conn
        .query_row("SELECT COUNT(*) FROM results", [], |r| r.get::<_, i64>(0))
        .unwrap() as u64;
    assert_eq!(plan["already_stored"].as_u64().unwrap(), stored);
    assert_eq!(
        plan["requests_needed"].as_u64().unwrap(),
        plan["companies"].as_u64().unwrap() * 3 - stored
    );
    assert_eq!(plan["requests_per_day"], 10_000);
    // A second batch asking for the same thing reuses every stored result.
    let before = env.sim.as_ref().unwrap().stats().gemini.total.received;
    let out = env.run(&["batch", "companies.csv", "--years", "2", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        env.sim.as_ref().unwrap().stats().gemini.total.received,
        before
    );
}

#[test]
fn cleanup_chrome_and_the_original_command_lines_are_accepted() {
    let out = Command::new(BIN)
        .args(["batch", "--help"])
        .output()
        .unwrap();
    assert!(text(&out.stdout).contains("--resume-id"));
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["batch", "--list-incomplete", "--cleanup-chrome"])
        .env("FINTEL_HOME", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("without a browser"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_built_in_analysis_type_produces_a_stored_valid_result() {
    let env = Env::new(0).await;
    std::fs::write(env.dir.path().join("two.csv"), fintel_sim::companies_csv(2)).unwrap();
    let types = [
        "fundamental",
        "buffett",
        "taleb",
        "contrarian",
        "multi",
        "financials",
        "excellent",
        "objective",
        "scanner",
        "checklist",
    ];
    for t in types {
        let out = env.run(&[
            "batch",
            "two.csv",
            "--years",
            "3",
            "--analysis-type",
            t,
            "--json",
        ]);
        assert_eq!(out.status.code(), Some(0), "{t}: {}", text(&out.stderr));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["state"], "completed", "{t}");
        let conn = rusqlite::Connection::open(env.db()).unwrap();
        let n: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM results WHERE analysis_type = ?1",
                [t],
                |r| r.get(0),
            )
            .unwrap();
        assert!(n >= 1, "{t}: no stored result");
        if ["excellent", "objective", "scanner", "checklist"].contains(&t) {
            let agg: i64 = conn
                .query_row(
                    "SELECT COUNT(*) FROM results WHERE analysis_type = ?1 AND accession LIKE '%,%,%'",
                    [t],
                    |r| r.get(0),
                )
                .unwrap();
            assert!(agg >= 1, "{t}: no aggregate result over three years");
        }
    }
    // The simulator answers every request with JSON valid for its schema, and fintel validated
    // each before storing it: no task ended failed.
    let stats = env.sim.as_ref().unwrap().stats();
    assert_eq!(stats.gemini.total.over_limit, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn results_export_upkeep_cancel_and_delete_from_the_command_line() {
    let env = Env::new(0).await;
    let out = env.run(&["batch", "companies.csv", "--years", "1", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let id = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["batch_id"]
        .as_str()
        .unwrap()
        .to_string();
    let stored = env.completed_results();
    assert!(stored > 0);

    // Export: CSV to a file, read back; refuses to overwrite without --force; JSONL to stdout.
    let out = env.run(&["export", "--format", "csv", "--output", "out.csv", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["rows"].as_i64().unwrap(), stored);
    let csv = std::fs::read_to_string(env.dir.path().join("out.csv")).unwrap();
    assert_eq!(
        csv.lines().count() as i64,
        stored + 1,
        "a header and one line per result"
    );
    let out = env.run(&["export", "--format", "csv", "--output", "out.csv"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--force"),
        "{}",
        text(&out.stderr)
    );
    let out = env.run(&[
        "export",
        "--format",
        "jsonl",
        "--output",
        "-",
        "--batch-id",
        &id,
    ]);
    assert_eq!(out.status.code(), Some(0));
    for line in text(&out.stdout).lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap();
    }
    let out = env.run(&["export", "--format", "pdf", "--output", "x.pdf"]);
    assert_eq!(out.status.code(), Some(2));

    // A company's results, readably and as JSON.
    let ticker: String = rusqlite::Connection::open(env.db())
        .unwrap()
        .query_row(
            "SELECT ticker FROM results WHERE ticker IS NOT NULL LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let out = env.run(&["results", &ticker, "--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .is_empty());

    // Upkeep: a backup that passes its own check; cache stats and prune.
    let out = env.run(&["db", "maintain", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = env.run(&["db", "check"]);
    assert_eq!(text(&out.stdout).trim(), "ok");
    let out = env.run(&["cache", "stats", "--json"]);
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(stats["documents"].as_u64().unwrap() > 0);
    let out = env.run(&["cache", "prune", "--older-than", "0", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        env.completed_results(),
        stored,
        "pruning the cache keeps every result"
    );

    // Cancel, then delete with and without purge: another batch's results survive.
    let out = env.run(&["batch", "companies.csv", "--years", "1", "--json"]);
    let second = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["batch_id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = env.run(&["batch", "cancel", &second]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a completed batch cannot be cancelled"
    );
    // As if it had been stopped by a signal half-way.
    rusqlite::Connection::open(env.db())
        .unwrap()
        .execute(
            "UPDATE batches SET state = 'stopped' WHERE id = ?1",
            [&second],
        )
        .unwrap();
    let out = env.run(&["batch", "cancel", &second, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["state"],
        "cancelled"
    );
    let out = env.run(&["batch", "--resume", &second]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a cancelled batch cannot be resumed"
    );
    let out = env.run(&["batch", "delete", &second, "--purge-results", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        d["results_purged"], 0,
        "the first batch still uses every result"
    );
    assert_eq!(env.completed_results(), stored);
    let out = env.run(&["batch", "delete", &id, "--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        env.completed_results(),
        stored,
        "delete keeps results unless purged"
    );
}

fn ledger_count(env: &Env, filter: &str) -> i64 {
    rusqlite::Connection::open(env.db())
        .unwrap()
        .query_row(
            &format!("SELECT COUNT(*) FROM calls WHERE {filter}"),
            [],
            |r| r.get(0),
        )
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_with_5_percent_transient_faults_completes_with_exactly_the_expected_results() {
    let env = Env::with(0, |c| c.gemini.faults.unavailable = 0.05).await;
    // Retry backoff is half a minute and more: a clock running 60x faster keeps the test short.
    let out = env
        .cmd(&[
            "batch",
            "companies.csv",
            "--years",
            "3",
            "--max-retries",
            "4",
            "--json",
        ])
        .env(
            "FINTEL_FAKE_CLOCK",
            format!("{}@60", jiff::Timestamp::now()),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let counts = &doc["counts"];
    assert_eq!(counts["failed"], 0);
    assert_eq!(
        env.completed_results() as u64,
        counts["completed"].as_u64().unwrap()
    );
    let stats = env.sim.as_ref().unwrap().stats();
    assert!(
        stats.gemini.total.faults.unavailable > 0,
        "faults were injected"
    );
    assert_eq!(stats.gemini.total.duplicates, 0);
    assert_eq!(stats.gemini.total.over_limit, 0);
}

/// `kill -9` at 20 random moments, each followed by a resume, then a last resume to the end.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_at_random_moments_loses_nothing_and_repeats_only_calls_in_flight() {
    let env = Env::new(200).await;
    let kills = kill_9_and_resume(
        &env,
        &["batch", "companies.csv", "--years", "6"],
        0x9e3779b97f4a7c15,
        150,
        20,
    )
    .await;
    assert!(
        kills >= 10,
        "only {kills} kills happened before the batch finished"
    );
    let out = env.run(&["batch", "--resume", "--json"]);
    let finished =
        out.status.code() == Some(0) || text(&out.stderr).contains("no incomplete batch");
    assert!(finished, "{}", text(&out.stderr));
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let (total, completed, failed): (i64, i64, i64) = conn
        .query_row(
            "SELECT COUNT(*), SUM(state = 'completed'), SUM(state = 'failed') FROM tasks WHERE kind = 'year'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(failed, 0);
    let skipped: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM tasks WHERE kind = 'year' AND state = 'skipped'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(completed + skipped, total, "every task ended");
    assert_eq!(
        env.completed_results(),
        completed,
        "zero lost results, zero duplicates"
    );
    let stats = env.sim.as_ref().unwrap().stats();
    // Only calls in flight at a kill may repeat: a call is in flight from its ledger row until
    // its result commits, and at most FINTEL_CONCURRENCY (2) are in flight at once. Ledger rows
    // with no outcome are the calls killed before their answer came back.
    let unanswered_at_kills = ledger_count(&env, "outcome IS NULL");
    let repeated = stats.gemini.total.received as i64 - completed;
    assert!(
        repeated <= kills * 2,
        "{repeated} repeated at {kills} kills with 2 calls in flight at most"
    );
    assert_eq!(stats.gemini.total.over_limit, 0);
    eprintln!(
        "kills: {kills}, results: {completed}, requests: {}, repeated: {repeated}, unanswered at kills: {unanswered_at_kills}",
        stats.gemini.total.received
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_processes_on_one_database_and_key_pool_never_exceed_the_daily_limit() {
    let env = Env::with(30, |c| c.gemini.projects[0].requests_per_day = 10).await;
    let create = env
        .cmd(&["batch", "companies.csv", "--years", "3"])
        .env("FINTEL_REQUESTS_PER_DAY", "10")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Let the first create the batch, then start the second on the same batch.
    let start = Instant::now();
    while !env.db().exists() || ledger_count_or_zero(&env) == 0 {
        assert!(start.elapsed() < Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut second = env
        .cmd(&["batch", "--resume", "--join"])
        .env("FINTEL_REQUESTS_PER_DAY", "10")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = create;
    // Both end up waiting for the reset once the day's 10 requests are spent.
    let start = Instant::now();
    loop {
        let state: String = rusqlite::Connection::open(env.db())
            .unwrap()
            .query_row("SELECT state FROM batches", [], |r| r.get(0))
            .unwrap();
        if state == "waiting_reset" && ledger_count(&env, "1") >= 10 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "state {state}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    signal(&first, "-TERM");
    signal(&second, "-TERM");
    assert_eq!(
        wait_for(&mut first, Duration::from_secs(40)).code(),
        Some(0)
    );
    assert_eq!(
        wait_for(&mut second, Duration::from_secs(40)).code(),
        Some(0)
    );
    let stats = env.sim.as_ref().unwrap().stats();
    assert_eq!(
        stats.gemini.total.received, 10,
        "exactly the day's quota, across both processes"
    );
    assert_eq!(stats.gemini.total.over_limit, 0);
    assert_eq!(stats.gemini.total.refused_rpd, 0);
}

fn ledger_count_or_zero(env: &Env) -> i64 {
    rusqlite::Connection::open(env.db())
        .ok()
        .and_then(|c| {
            c.query_row("SELECT COUNT(*) FROM calls", [], |r| r.get(0))
                .ok()
        })
        .unwrap_or(0)
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn no_log_line_export_or_stored_byte_contains_a_configured_key() {
    const GOOD: &str = "test-key-0123456789";
    const BAD: &str = "AIzaSyInvalid-0123456789abcdefXYZ";
    let env = Env::with(0, |c| c.gemini.invalid_keys = vec![BAD.to_string()]).await;
    let run = |args: &[&str]| {
        env.cmd(args)
            .env("GOOGLE_API_KEY_2", BAD)
            .env("FINTEL_LOG", "debug")
            .output()
            .unwrap()
    };
    let mut printed = String::new();
    let mut record = |out: &Output| {
        printed.push_str(&text(&out.stdout));
        printed.push_str(&text(&out.stderr));
    };
    let out = run(&["-vv", "batch", "companies.csv", "--years", "2", "--json"]);
    record(&out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("GOOGLE_API_KEY_2 (AIza"),
        "the unusable key is named by its masked label: {}",
        text(&out.stderr)
    );
    let exports = env.dir.path().join("exports");
    std::fs::create_dir_all(&exports).unwrap();
    for format in ["csv", "jsonl", "xlsx", "parquet"] {
        let path = exports.join(format!("results.{format}"));
        let out = run(&[
            "export",
            "--format",
            format,
            "--output",
            path.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        record(&out);
    }
    for args in [
        &["config", "--json"][..],
        &["keys", "--json"],
        &["db", "maintain"],
        &["batch", "status", "--json"],
    ] {
        let out = run(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        record(&out);
    }

    let logs: Vec<_> = files_under(&env.home().join("logs"));
    assert!(!logs.is_empty(), "a log file in the data directory");
    let log_text: String = logs
        .iter()
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
        .collect();
    assert!(
        log_text.contains("done ") && log_text.contains("INFO"),
        "the log file tells the run's story: {log_text}"
    );
    let mut checked = 0;
    for path in files_under(&env.home())
        .into_iter()
        .chain(files_under(&exports))
    {
        let bytes = std::fs::read(&path).unwrap();
        for key in [GOOD, BAD] {
            assert!(
                !bytes.windows(key.len()).any(|w| w == key.as_bytes()),
                "{} contains a key in clear",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(
        checked >= 8,
        "database, logs, backups and exports: {checked}"
    );
    for key in [GOOD, BAD] {
        assert!(!printed.contains(key), "a key was printed in clear");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn db_backup_writes_a_sound_copy_and_never_overwrites() {
    let env = Env::new(0).await;
    let out = env.run(&["batch", "companies.csv", "--years", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let target = env.dir.path().join("copy.db");
    let out = env.run(&["db", "backup", target.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["backup"], target.to_str().unwrap());
    assert!(doc["bytes"].as_u64().unwrap() > 0);
    let copy = rusqlite::Connection::open(&target).unwrap();
    let check: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let results: i64 = copy
        .query_row("SELECT COUNT(*) FROM results", [], |r| r.get(0))
        .unwrap();
    assert_eq!(results, env.completed_results());

    // An existing file is never overwritten.
    let before = std::fs::read(&target).unwrap();
    let out = env.run(&["db", "backup", target.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("already exists"));
    assert_eq!(std::fs::read(&target).unwrap(), before);
    // Without a path it goes to the backups folder.
    let out = env.run(&["db", "backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(files_under(&env.home().join("backups")).len(), 1);
    // A retention of 0 would delete the backup just taken.
    let out = env.run(&["db", "maintain", "--retention", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("at least 1"));
    let out = env
        .cmd(&["db", "maintain"])
        .env("FINTEL_BACKUP_RETENTION", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("FINTEL_BACKUP_RETENTION"));
}

/// A webhook endpoint on 127.0.0.1 that keeps every JSON body it receives.
async fn webhook_server() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let received: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let store = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let store = store.clone();
            async move {
                store.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_announce_exhausted_keys_and_completion_and_a_dead_one_changes_nothing() {
    let env = Env::new(0).await;
    let (url, received) = webhook_server().await;
    // 4 requests a day for 8 analyses: the batch waits for one reset, on a fast clock.
    let out = env
        .cmd(&["batch", "companies.csv", "--years", "1", "--name", "hooked"])
        .env("FINTEL_WEBHOOK_URL", &url)
        .env("FINTEL_REQUESTS_PER_DAY", "4")
        .env(
            "FINTEL_FAKE_CLOCK",
            format!("{}@20000", jiff::Timestamp::now()),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let bodies = received.lock().unwrap().clone();
    let events: Vec<&str> = bodies
        .iter()
        .map(|b| b["event"].as_str().unwrap_or(""))
        .collect();
    assert!(events.contains(&"keys_exhausted"), "{bodies:#?}");
    let done = bodies
        .iter()
        .find(|b| b["event"] == "batch_completed")
        .unwrap_or_else(|| panic!("no completion message: {bodies:#?}"));
    assert!(
        done["message"].as_str().unwrap().contains("\"hooked\""),
        "{done}"
    );
    assert_eq!(done["completed"].as_u64(), Some(8), "{done}");

    // A webhook nobody answers: the batch neither fails nor waits on it.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hook", l.local_addr().unwrap())
    };
    let start = Instant::now();
    let out = env
        .cmd(&["batch", "companies.csv", "--years", "2", "--force"])
        .env("FINTEL_WEBHOOK_URL", &dead)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(start.elapsed() < Duration::from_secs(30));

    // A webhook URL that cannot work is refused before anything is created.
    let batches = |env: &Env| -> i64 {
        rusqlite::Connection::open(env.db())
            .unwrap()
            .query_row("SELECT COUNT(*) FROM batches", [], |r| r.get(0))
            .unwrap()
    };
    let before = batches(&env);
    let out = env
        .cmd(&["batch", "companies.csv", "--years", "1"])
        .env("FINTEL_WEBHOOK_URL", "discord.com/api/webhooks/1/secret")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("FINTEL_WEBHOOK_URL"));
    assert!(!text(&out.stderr).contains("secret"), "the token is masked");
    assert_eq!(batches(&env), before);
}

#[test]
fn sim_serve_reads_its_own_configuration_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sim.toml");
    std::fs::write(
        &config,
        "[[gemini.projects]]\nname = \"solo\"\nkeys = [\"only-key-123456\"]\nrequests_per_day = 7\n",
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["sim", "serve", "--addr", "127.0.0.1:0", "--sim-config"])
        .arg(&config)
        .env("FINTEL_HOME", dir.path().join("home"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first_line,
    )
    .unwrap();
    let url = first_line.trim().to_string();
    let _ = child.kill();
    let _ = child.wait();
    assert!(url.starts_with("http://127.0.0.1:"), "{url:?}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[gemini]\nno_such_setting = 1\n").unwrap();
    let out = Command::new(BIN)
        .args(["sim", "serve", "--addr", "127.0.0.1:0", "--sim-config"])
        .arg(&bad)
        .env("FINTEL_HOME", dir.path().join("home"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no_such_setting"),
        "{}",
        text(&out.stderr)
    );
}

/// Two keys made in one Google Cloud project, whose per-day refusals name it (the simulator
/// puts the consumer in its bodies): fintel merges their buckets in the database, says so once
/// on the terminal, in the log and by webhook, plans with one project from then on, and never
/// stores or prints either key.
#[tokio::test(flavor = "multi_thread")]
async fn two_keys_of_one_project_are_merged_said_once_and_never_stored_or_printed() {
    const FIRST: &str = "test-key-0123456789";
    const SECOND: &str = "AIzaSySecondKey-0123456789abcdef";
    // 20:00 Pacific, on a clock 2000 times faster than real time, shared by the simulator
    // (started first, so never behind fintel's clock): the reset is seconds away.
    let start: jiff::Timestamp = "2026-06-15T03:00:00Z".parse().unwrap();
    let mut config = sim_config(0);
    config.gemini.projects[0].keys = vec![FIRST.into(), SECOND.into()];
    config.gemini.projects[0].requests_per_day = 6;
    config.gemini.projects[0].number = Some("348715329010".into());
    let env = Env::start(config, Arc::new(fintel_time::FakeClock::new(start, 2000.0))).await;
    let (url, received) = webhook_server().await;
    let clock = format!("{start}@2000");
    let run = |args: &[&str]| {
        env.cmd(args)
            .env("GOOGLE_API_KEY_2", SECOND)
            .env("FINTEL_REQUESTS_PER_DAY", "10")
            .env("FINTEL_FAKE_CLOCK", &clock)
            .env("FINTEL_WEBHOOK_URL", &url)
            .env("FINTEL_LOG", "debug")
            .output()
            .unwrap()
    };
    let mut printed = String::new();

    // Before anything is learned: two keys, two projects assumed.
    let out = run(&["plan", "companies.csv", "--years", "1"]);
    printed.push_str(&(text(&out.stdout) + &text(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout)
            .contains("2 keys in 2 projects, as configured or learned: 20 requests a day"),
        "{}",
        text(&out.stdout)
    );

    // 8 analyses; the project serves 6 a day, though 2 x 10 were assumed.
    let out = run(&["batch", "companies.csv", "--years", "1"]);
    printed.push_str(&(text(&out.stdout) + &text(&out.stderr)));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("2 keys in 2 projects, as configured or learned: 20 requests a day"),
        "the batch confirmation states the assumption: {stderr}"
    );
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("share Google Cloud project"))
        .collect();
    assert_eq!(said.len(), 1, "said once: {stderr}");
    assert!(
        said[0].contains(
            "GOOGLE_API_KEY_1 and GOOGLE_API_KEY_2 share Google Cloud project 348715329010"
        ) || said[0].contains(
            "GOOGLE_API_KEY_2 and GOOGLE_API_KEY_1 share Google Cloud project 348715329010"
        ),
        "{}",
        said[0]
    );
    assert!(
        said[0].contains("daily capacity is now 10, not 20"),
        "{}",
        said[0]
    );
    assert_eq!(env.completed_results(), 8);
    let hooks = received.lock().unwrap().clone();
    assert_eq!(
        hooks
            .iter()
            .filter(|b| b["event"] == "shared_project")
            .count(),
        1,
        "{hooks:#?}"
    );

    // Every later command knows: one project, one bucket, its project number.
    let out = run(&["keys", "--json"]);
    printed.push_str(&(text(&out.stdout) + &text(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let keys: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let buckets = keys["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 1, "{keys}");
    assert_eq!(buckets[0]["bucket"], "gcp-project-348715329010");
    assert_eq!(buckets[0]["project"], "348715329010");
    assert_eq!(buckets[0]["keys"].as_array().unwrap().len(), 2);
    assert_eq!(keys["requests_per_day"], 10);
    let out = run(&["plan", "companies.csv", "--years", "2"]);
    printed.push_str(&(text(&out.stdout) + &text(&out.stderr)));
    assert!(
        text(&out.stdout)
            .contains("2 keys in 1 project, as configured or learned: 10 requests a day"),
        "{}",
        text(&out.stdout)
    );
    for args in [&["keys"][..], &["doctor", "--json"], &["batch", "status"]] {
        let out = run(args);
        printed.push_str(&(text(&out.stdout) + &text(&out.stderr)));
    }

    // No key in the database, the logs, or anything printed.
    let logs = files_under(&env.home().join("logs"));
    let log_text: String = logs
        .iter()
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
        .collect();
    assert!(
        log_text.contains("share Google Cloud project 348715329010"),
        "the log has it too"
    );
    let mut checked = 0;
    for path in files_under(&env.home()) {
        let bytes = std::fs::read(&path).unwrap();
        for key in [FIRST, SECOND] {
            assert!(
                !bytes.windows(key.len()).any(|w| w == key.as_bytes()),
                "{} contains a key in clear",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(checked >= 2, "database and log: {checked}");
    for key in [FIRST, SECOND] {
        assert!(!printed.contains(key), "a key was printed in clear");
    }
}
