//! Retries that waste nothing, end to end with the built binary against the simulator: a
//! lower-thinking retry or a repair that must wait for a per-minute limit of 2 keeps its state,
//! a packed answer that is never usable sends every year of its pack alone, and an outage's
//! refund reaches every year of a pack. The simulator's counters and the ledger must show the
//! exact number of requests. The simulator and fintel share one fast `FINTEL_FAKE_CLOCK`.

mod support;

use std::sync::Arc;
use std::time::Duration;

use fintel_sim::SimConfig;
use fintel_time::FakeClock;
use support::procs::{fake_clock_var, sql_i64};
use support::*;

/// 00:10 Pacific on an ordinary Monday: a whole quota day ahead.
const START: &str = "2026-03-02T08:10:00Z";
/// Simulated seconds per real second where pacing matters: a minute passes in a second, and
/// an answer's 100 ms of real latency is 6 simulated seconds, so the other tasks prepare and
/// send their requests while one waits for its answer, as calls in flight do.
const PACED_SPEED: f64 = 60.0;
/// Simulated seconds per real second for an hour's outage.
const OUTAGE_SPEED: f64 = 600.0;

/// A simulator reading a fast clock, with one company to analyse.
async fn fast_env(
    speed: f64,
    latency_ms: u64,
    adjust: impl FnOnce(&mut SimConfig),
) -> (Env, Arc<FakeClock>) {
    let clock = Arc::new(FakeClock::new(START.parse().unwrap(), speed));
    let mut config = sim_config(latency_ms);
    adjust(&mut config);
    let env = Env::start(config, clock.clone()).await;
    std::fs::write(env.dir.path().join("one.csv"), fintel_sim::companies_csv(1)).unwrap();
    (env, clock)
}

/// Runs a batch of `csv`'s companies over 4 years to its end (a real-time safety net only:
/// a defect that loops shows as a run that does not end) and checks it exited 0.
fn run_batch(env: &Env, clock: &FakeClock, csv: &str, extra: &[&str], vars: &[(&str, &str)]) {
    let mut args = vec!["batch", csv, "--years", "4", "--yes"];
    args.extend_from_slice(extra);
    let mut cmd = env.cmd(&args);
    cmd.env("FINTEL_FAKE_CLOCK", fake_clock_var(clock))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || read_all(stderr));
    let status = wait_for(&mut child, Duration::from_secs(120));
    let err = reader.join().unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
}

/// One key of 20 a day and 2 a minute, four tasks at once.
const PACED: &[(&str, &str)] = &[
    ("FINTEL_REQUESTS_PER_DAY", "20"),
    ("FINTEL_REQUESTS_PER_MINUTE", "2"),
    ("FINTEL_CONCURRENCY", "4"),
];

fn paced(config: &mut SimConfig) {
    config.gemini.projects[0].requests_per_day = 20;
    // fintel paces at 2 a minute; the simulator allows one more, so that two processes'
    // clocks running 60 times faster than real time never make fintel's last request of a
    // minute arrive in the simulator's previous one.
    config.gemini.projects[0].requests_per_minute = 3;
}

/// The ledger and the tasks, for a failure's message.
fn dump(env: &Env) -> String {
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let mut out = String::new();
    for sql in [
        "SELECT id || ' ' || COALESCE(task_id, '') || ' ' || purpose || ' ' ||            COALESCE(outcome, '-') || ' ' || refunded || ' ' || sent_at FROM calls ORDER BY id",
        "SELECT id || ' FY' || COALESCE(fiscal_year, '') || ' ' || state || ' attempts ' ||            attempts || ' ' || COALESCE(reason, '') FROM tasks WHERE kind = 'year' ORDER BY id",
    ] {
        let mut stmt = conn.prepare(sql).unwrap();
        for row in stmt.query_map([], |r| r.get::<_, String>(0)).unwrap() {
            out.push_str(&row.unwrap());
            out.push('\n');
        }
    }
    out
}

fn year_attempts(env: &Env) -> i64 {
    sql_i64(
        env,
        "SELECT COALESCE(SUM(attempts), 0) FROM tasks WHERE kind = 'year'",
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lower_thinking_retry_waiting_for_a_per_minute_limit_of_2_keeps_its_thinking() {
    // The model is cut off at fintel's default thinking budget (8,192) and answers with a
    // quarter of it: 4 years take 8 requests, 4 of them cut off, each year one attempt.
    let (env, clock) = fast_env(PACED_SPEED, 100, |c| {
        paced(c);
        c.gemini.max_tokens_above_thinking = Some(4_096);
    })
    .await;
    run_batch(&env, &clock, "one.csv", &[], PACED);
    let stats = env.sim.as_ref().unwrap().stats().gemini.total;
    assert_eq!(env.completed_results(), 4);
    assert_eq!(stats.accepted, 8, "{stats:?}");
    assert_eq!(stats.faults.max_tokens, 4, "{stats:?}");
    assert_eq!(stats.over_limit, 0);
    assert_eq!(
        sql_i64(&env, "SELECT COUNT(*) FROM calls WHERE refunded = 0"),
        8
    );
    assert_eq!(
        sql_i64(
            &env,
            "SELECT COUNT(*) FROM calls WHERE outcome = 'truncated'"
        ),
        4
    );
    assert_eq!(
        sql_i64(&env, "SELECT COUNT(*) FROM results WHERE calls = 2"),
        4
    );
    assert_eq!(year_attempts(&env), 0);
    assert_eq!(sql_i64(&env, "SELECT COUNT(*) FROM retry_states"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repair_waiting_for_a_per_minute_limit_of_2_is_sent_after_the_wait() {
    // Every request carrying a filing is answered with invalid JSON, every repair (which
    // carries the answer and the schema, never the filing) well: 4 years, 8 requests.
    let (env, clock) = fast_env(PACED_SPEED, 100, |c| {
        paced(c);
        c.sec.document_bytes = 120_000;
        c.gemini.invalid_json_above_tokens = Some(6_000);
    })
    .await;
    run_batch(&env, &clock, "one.csv", &[], PACED);
    let stats = env.sim.as_ref().unwrap().stats().gemini.total;
    assert_eq!(env.completed_results(), 4);
    assert_eq!(stats.accepted, 8, "{stats:?}");
    assert_eq!(stats.faults.invalid_json, 4, "{stats:?}");
    assert_eq!(stats.over_limit, 0);
    assert_eq!(
        sql_i64(
            &env,
            "SELECT COUNT(*) FROM calls WHERE refunded = 0 AND purpose = 'repair'"
        ),
        4
    );
    assert_eq!(
        sql_i64(&env, "SELECT COUNT(*) FROM calls WHERE refunded = 0"),
        8
    );
    assert_eq!(year_attempts(&env), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_packed_answer_never_usable_sends_every_year_of_its_pack_alone() {
    // Two packs of two years, each answered with invalid JSON and its repair too; every year
    // then goes alone, charged one attempt, and is answered: 2 x 2 + 4 requests, none failed.
    let (env, clock) = fast_env(OUTAGE_SPEED, 0, |c| c.gemini.unusable_packed = true).await;
    run_batch(&env, &clock, "one.csv", &["--pack", "2"], &[]);
    let stats = env.sim.as_ref().unwrap().stats().gemini.total;
    assert_eq!(env.completed_results(), 4);
    assert_eq!(stats.accepted, 8, "{stats:?}");
    assert_eq!(stats.faults.invalid_json, 4, "{stats:?}");
    assert_eq!(
        sql_i64(&env, "SELECT COUNT(*) FROM tasks WHERE state = 'failed'"),
        0
    );
    assert_eq!(
        sql_i64(
            &env,
            "SELECT COUNT(*) FROM tasks WHERE kind = 'year' AND attempts = 1 AND pack_alone = 1"
        ),
        4
    );
    assert_eq!(
        sql_i64(
            &env,
            "SELECT COUNT(*) FROM results WHERE packed_with IS NULL AND attempts = 2"
        ),
        4
    );
    // Each year's ledger: the packed call it rode in and its repair, linked to it.
    assert_eq!(sql_i64(&env, "SELECT COUNT(*) FROM ledger_tasks"), 8);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outage_refunds_every_year_of_a_pack() {
    // Five companies of two packed years while the provider is down for an hour: the breaker
    // opens on the fifth pack's failure and refunds every year of every pack.
    let (env, clock) = fast_env(OUTAGE_SPEED, 0, |_| {}).await;
    std::fs::write(
        env.dir.path().join("five.csv"),
        fintel_sim::companies_csv(5),
    )
    .unwrap();
    env.sim
        .as_ref()
        .unwrap()
        .start_outage(Duration::from_secs(3600));
    let mut cmd = env.cmd(&["batch", "five.csv", "--years", "2", "--pack", "2", "--yes"]);
    cmd.env("FINTEL_FAKE_CLOCK", fake_clock_var(&clock))
        .env("FINTEL_CONCURRENCY", "5")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || read_all(stderr));
    let status = wait_for(&mut child, Duration::from_secs(120));
    let err = reader.join().unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.contains("looks down"), "{err}");
    let stats = env.sim.as_ref().unwrap().stats().gemini.total;
    assert!(stats.faults.outage >= 5, "{stats:?}");
    let years = sql_i64(&env, "SELECT COUNT(*) FROM tasks WHERE kind = 'year'");
    assert_eq!(env.completed_results(), years);
    assert_eq!(
        year_attempts(&env),
        0,
        "an outage never counts: {err}\n{}",
        dump(&env)
    );
    assert_eq!(
        sql_i64(&env, "SELECT COUNT(*) FROM results WHERE attempts != 1"),
        0
    );
}
