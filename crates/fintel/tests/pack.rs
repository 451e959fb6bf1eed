//! Request packing end to end with the built binary against the simulator: `--pack` and
//! `[run] pack` on the command line (bad values refused clearly), the plan with packing, and
//! packed batches that are killed and resumed.

mod support;

use support::procs::{kill_9_and_resume, sql_i64};
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn bad_pack_values_are_refused_clearly_and_create_nothing() {
    let env = Env::new(0).await;
    let cases: &[(&[&str], &str)] = &[
        (
            &["batch", "companies.csv", "--years", "2", "--pack", "1"],
            "1 is no packing",
        ),
        (
            &["batch", "companies.csv", "--years", "2", "--pack", "4"],
            "at most 3",
        ),
        (
            &["batch", "companies.csv", "--years", "2", "--pack", "x"],
            "neither a number",
        ),
        (
            &["analyze", "SIM0", "--years", "2", "--pack", "0"],
            "at most 3",
        ),
        (
            &["plan", "companies.csv", "--pack", "two"],
            "neither a number",
        ),
    ];
    for (args, needle) in cases {
        let out = env.run(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(err.contains("`auto`"), "says what to write instead: {err}");
    }
    assert!(!env.db().exists(), "nothing was created");

    // A resume keeps the batch's own pack mode: --pack with --resume is refused.
    let out = env.run(&["batch", "--resume", "--pack", "2"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("keeps the pack mode"),
        "{}",
        text(&out.stderr)
    );

    // The configuration file is checked too.
    std::fs::create_dir_all(env.home()).unwrap();
    std::fs::write(env.home().join("fintel.toml"), "[run]\npack = 5\n").unwrap();
    let out = env.run(&["plan", "companies.csv", "--years", "2"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("[run] pack") && err.contains("at most 3"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_plan_counts_packed_requests_and_says_what_packing_would_save() {
    let env = Env::new(0).await;
    // 8 companies x 7 years at 8 requests a day from 00:05 Pacific.
    let clock = "2026-03-02T08:05:00Z";
    let plan = |extra: &[&str], json: bool| {
        let mut args = vec!["plan", "companies.csv", "--years", "7"];
        args.extend_from_slice(extra);
        if json {
            args.push("--json");
        }
        let out = env
            .cmd(&args)
            .env("FINTEL_REQUESTS_PER_DAY", "8")
            .env("FINTEL_FAKE_CLOCK", clock)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let off: serde_json::Value = serde_json::from_str(&plan(&[], true)).unwrap();
    assert_eq!(off["requests_needed"], 56, "{off}");
    assert_eq!(off["quota_days"], 7, "{off}");
    assert_eq!(off["pack"], "off");
    // Seven years by two: three pairs and one alone per company.
    let two: serde_json::Value = serde_json::from_str(&plan(&["--pack", "2"], true)).unwrap();
    assert_eq!(two["requests_needed"], 32, "{two}");
    assert_eq!(two["quota_days"], 4, "{two}");
    assert_eq!(two["pack"], "2");
    let three: serde_json::Value = serde_json::from_str(&plan(&["--pack", "3"], true)).unwrap();
    assert_eq!(three["requests_needed"], 24, "{three}");
    let auto: serde_json::Value = serde_json::from_str(&plan(&["--pack", "auto"], true)).unwrap();
    assert_eq!(auto["requests_needed"], 24, "{auto}");
    // The unpacked plan (what the confirmation shows) says what --pack 2 would save.
    let words = plan(&[], false);
    assert!(
        words.contains("56 requests, 7 days; with --pack 2: 32 requests, 4 days"),
        "{words}"
    );
    // `[run] pack` is the default of a plan and a batch.
    std::fs::create_dir_all(env.home()).unwrap();
    std::fs::write(env.home().join("fintel.toml"), "[run]\npack = \"2\"\n").unwrap();
    let configured: serde_json::Value = serde_json::from_str(&plan(&[], true)).unwrap();
    assert_eq!(configured["requests_needed"], 32, "{configured}");
    let overridden: serde_json::Value =
        serde_json::from_str(&plan(&["--pack", "off"], true)).unwrap();
    assert_eq!(overridden["requests_needed"], 56, "{overridden}");
}

/// Runs `args` to its end (bounded) and says how it exited.
fn run_to_end(env: &Env, args: &[&str], extra_env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = env.cmd(args);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_packed_answer_with_one_invalid_year_stores_the_valid_year_and_retries_only_the_other() {
    // Every packed answer's oldest year is invalid: each company's newer year is stored from
    // the packed answer, the older one is asked again alone (and answered well).
    let env = Env::with(0, |c| c.gemini.invalid_packed_part = 1.0).await;
    let out = run_to_end(
        &env,
        &[
            "batch",
            "companies.csv",
            "--years",
            "2",
            "--pack",
            "2",
            "--yes",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let years = sql_i64(&env, "SELECT COUNT(*) FROM tasks WHERE kind = 'year'");
    assert_eq!(years, 16);
    assert_eq!(
        sql_i64(
            &env,
            "SELECT COUNT(*) FROM tasks WHERE kind = 'year' AND state = 'completed'"
        ),
        16
    );
    assert_eq!(env.completed_results(), 16);
    // The newer year of each company came from its packed call.
    assert_eq!(
        sql_i64(
            &env,
            "SELECT COUNT(*) FROM results WHERE packed_with IS NOT NULL \
             AND packed_with = (fiscal_year - 1) || ',' || fiscal_year"
        ),
        8
    );
    // The older one was retried alone, one attempt counted, never packed again.
    assert_eq!(
        sql_i64(
            &env,
            "SELECT COUNT(*) FROM tasks t JOIN results r ON r.id = t.result_id \
             WHERE r.packed_with IS NULL AND t.attempts = 1 AND t.pack_alone = 1"
        ),
        8
    );
    // The export says which results were packed, and with which years.
    let out = env.run(&["export", "--format", "jsonl", "--output", "out.jsonl"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let exported = std::fs::read_to_string(env.dir.path().join("out.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = exported
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 16);
    let packed_pairs = rows
        .iter()
        .filter(|r| {
            let year = r["fiscal_year"].as_i64().unwrap();
            r["packed_with"] == format!("{},{year}", year - 1)
        })
        .count();
    assert_eq!(packed_pairs, 8, "{exported}");
    assert_eq!(
        rows.iter().filter(|r| r["packed_with"].is_null()).count(),
        8
    );
    // 8 packed calls and 8 single ones; the ledger agrees with the simulator.
    let stats = env.sim.as_ref().unwrap().stats();
    assert_eq!(stats.gemini.total.received, 16);
    assert_eq!(sql_i64(&env, "SELECT COUNT(*) FROM calls"), 16);
    assert_eq!(sql_i64(&env, "SELECT COUNT(*) FROM ledger_tasks"), 16);
}

#[tokio::test(flavor = "multi_thread")]
async fn auto_packs_measured_documents_only_where_they_fit_whole() {
    // Documents of real sizes (25k-150k tokens) under the free tier's 250,000 tokens a
    // minute: some pairs fit whole, some years go alone; nothing is cut to pack it. The
    // simulator does not pace (its project's cap is the harness's); fintel's clock runs fast
    // so its own pacing of 250,000 tokens a minute takes seconds.
    let env = Env::with(0, |c| c.sec.measured_sizes = true).await;
    let csv = fintel_sim::companies_csv(4);
    std::fs::write(env.dir.path().join("four.csv"), csv).unwrap();
    let out = run_to_end(
        &env,
        &[
            "batch", "four.csv", "--years", "3", "--pack", "auto", "--yes",
        ],
        &[
            ("FINTEL_INPUT_TOKENS_PER_MINUTE", "250000"),
            ("FINTEL_FAKE_CLOCK", "2026-03-02T08:05:00Z@600"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(env.completed_results(), 12);
    let packed = sql_i64(
        &env,
        "SELECT COUNT(*) FROM results WHERE packed_with IS NOT NULL",
    );
    let alone = 12 - packed;
    assert!(packed > 0 && alone > 0, "packed {packed}, alone {alone}");
    let stats = env.sim.as_ref().unwrap().stats();
    assert_eq!(stats.gemini.total.over_limit, 0);
    assert!(
        (stats.gemini.total.received as i64) < 12,
        "{} requests for 12 years",
        stats.gemini.total.received
    );
    assert!(sql_i64(&env, "SELECT MAX(input_tokens) FROM calls") <= 250_000);
    // `auto` never cuts a document to pack it.
    assert_eq!(
        sql_i64(
            &env,
            "SELECT COUNT(*) FROM results WHERE packed_with IS NOT NULL \
             AND fitting LIKE '%\"was_cut\":true%'"
        ),
        0
    );
}

/// kill -9 at random moments, then resume, until done: exactly one result per (company,
/// year), and the only calls repeated are packed calls that were in flight at a kill.
#[tokio::test(flavor = "multi_thread")]
async fn a_packed_batch_killed_at_random_and_resumed_stores_each_year_once() {
    let env = Env::new(150).await;
    let kills = kill_9_and_resume(
        &env,
        &["batch", "companies.csv", "--years", "6", "--pack", "2"],
        0x2545f4914f6cdd1d,
        100,
        10,
    )
    .await;
    assert!(
        kills >= 5,
        "only {kills} kills happened before the batch finished"
    );
    let out = env.run(&["batch", "--resume", "--json"]);
    let finished =
        out.status.code() == Some(0) || text(&out.stderr).contains("no incomplete batch");
    assert!(finished, "{}", text(&out.stderr));
    let years = sql_i64(&env, "SELECT COUNT(*) FROM tasks WHERE kind = 'year'");
    let completed = sql_i64(
        &env,
        "SELECT COUNT(*) FROM tasks WHERE kind = 'year' AND state = 'completed'",
    );
    let skipped = sql_i64(
        &env,
        "SELECT COUNT(*) FROM tasks WHERE kind = 'year' AND state = 'skipped'",
    );
    assert_eq!(completed + skipped, years, "every task ended");
    assert_eq!(env.completed_results(), completed, "one result per year");
    assert_eq!(
        sql_i64(
            &env,
            "SELECT COUNT(*) FROM (SELECT cik, fiscal_year FROM results \
             GROUP BY cik, fiscal_year HAVING COUNT(*) > 1)"
        ),
        0
    );
    assert!(
        sql_i64(
            &env,
            "SELECT COUNT(*) FROM results WHERE packed_with IS NOT NULL"
        ) >= completed - 8,
        "at most one year per company goes alone"
    );
    // A call is in flight from its ledger row until its answer is stored: a kill leaves it
    // without an outcome, or (killed between the answer and its commit) answered with no
    // result from it. Only those may be repeated, and at most FINTEL_CONCURRENCY (2) packed
    // calls are in flight at once.
    let answered = sql_i64(&env, "SELECT COUNT(*) FROM calls WHERE outcome = 'ok'");
    let answers_lost = sql_i64(
        &env,
        "SELECT COUNT(*) FROM calls WHERE outcome = 'ok' \
           AND id IN (SELECT call_id FROM ledger_tasks) \
           AND id NOT IN (SELECT call_id FROM results WHERE call_id IS NOT NULL)",
    );
    let in_flight_at_kills =
        sql_i64(&env, "SELECT COUNT(*) FROM calls WHERE outcome IS NULL") + answers_lost;
    let stats = env.sim.as_ref().unwrap().stats();
    // Every request the provider received and whose answer was not stored.
    let repeated = stats.gemini.total.received as i64 - answered + answers_lost;
    assert!(
        repeated <= in_flight_at_kills && in_flight_at_kills <= kills * 2,
        "{repeated} repeated calls; {in_flight_at_kills} packed calls in flight at {kills} kills"
    );
    assert!(
        stats.gemini.total.duplicates as i64 <= in_flight_at_kills,
        "{} duplicate answers; {in_flight_at_kills} calls in flight at {kills} kills",
        stats.gemini.total.duplicates
    );
    assert_eq!(stats.gemini.total.over_limit, 0);
}
