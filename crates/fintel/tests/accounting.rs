//! Quota accounting end to end, with the built binary against the simulator on 127.0.0.1:
//! usage belongs to keys however `fintel.toml` groups them, work that needs no model never
//! waits for the quota reset, and batches sharing one key pool are estimated in the order the
//! pool serves them.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod support;

use support::*;

/// Three keys of one simulated Google Cloud project; the harness sets the first.
const KEYS: [&str; 3] = [
    "test-key-0123456789",
    "test-key-abcdefghij",
    "test-key-klmnopqrst",
];

/// A simulator whose one project holds all three keys, with `per_day` requests a day.
async fn three_keys(per_day: u32) -> Env {
    Env::with(0, |c| {
        c.gemini.projects[0].keys = KEYS.iter().map(|k| k.to_string()).collect();
        c.gemini.projects[0].requests_per_day = per_day;
    })
    .await
}

/// The harness's command with all three keys and `per_day` requests a day per bucket.
fn cmd(env: &Env, per_day: u32, args: &[&str]) -> std::process::Command {
    let mut c = env.cmd(args);
    c.env("GOOGLE_API_KEY_2", KEYS[1])
        .env("GOOGLE_API_KEY_3", KEYS[2])
        .env("FINTEL_REQUESTS_PER_DAY", per_day.to_string());
    c
}

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}): {}\nstderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        )
    })
}

fn sql_i64(env: &Env, sql: &str) -> i64 {
    rusqlite::Connection::open(env.db())
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

fn newest_batch_state(env: &Env) -> Option<String> {
    rusqlite::Connection::open(env.db()).ok().and_then(|c| {
        c.query_row(
            "SELECT state FROM batches ORDER BY created_at DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .ok()
    })
}

/// Polls `condition` until it holds; panics after `timeout`.
async fn until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A child process killed when the test ends, passed or not.
struct Guarded(Child);

impl Drop for Guarded {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn used_today(doc: &Value) -> Vec<(String, i64)> {
    doc["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["bucket"].as_str().unwrap().to_string(),
                b["used_today"].as_i64().unwrap(),
            )
        })
        .collect()
}

// ------------------------------------------------------------------ usage belongs to keys

#[tokio::test(flavor = "multi_thread")]
async fn grouping_keys_in_the_config_keeps_what_its_keys_used_today() {
    let env = three_keys(20).await;
    std::fs::write(
        env.dir.path().join("three.csv"),
        fintel_sim::companies_csv(3),
    )
    .unwrap();
    let out = cmd(&env, 20, &["batch", "three.csv", "--years", "3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        sql_i64(&env, "SELECT COUNT(*) FROM calls WHERE refunded = 0"),
        9
    );
    let before = used_today(&json_of(
        &cmd(&env, 20, &["keys", "--json"]).output().unwrap(),
    ));
    assert_eq!(before.len(), 3, "{before:?}");
    assert!(before.iter().all(|(_, n)| *n >= 1), "{before:?}");
    assert_eq!(before.iter().map(|(_, n)| n).sum::<i64>(), 9, "{before:?}");

    // The three keys are one project: the user says so in the configuration.
    std::fs::write(
        env.home().join("fintel.toml"),
        "[[buckets]]\nname = \"team\"\n\
         keys = [\"GOOGLE_API_KEY_1\", \"GOOGLE_API_KEY_2\", \"GOOGLE_API_KEY_3\"]\n\
         requests_per_day = 20\n",
    )
    .unwrap();
    let keys = cmd(&env, 20, &["keys", "--json"]).output().unwrap();
    assert_eq!(
        used_today(&json_of(&keys)),
        vec![("team".to_string(), 9)],
        "the group's day holds what its keys used"
    );
    let shown = text(&cmd(&env, 20, &["keys"]).output().unwrap().stdout);
    assert!(shown.contains("  9/20"), "{shown}");

    // The group has 11 requests left today: a batch needing 15 more sends 11 and waits for
    // the reset, and the provider refuses none.
    let mut batch = Guarded(
        cmd(&env, 20, &["batch", "companies.csv", "--years", "3"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    until("the group's day spent", Duration::from_secs(120), || {
        newest_batch_state(&env).as_deref() == Some("waiting_reset")
    })
    .await;
    let stats = env.sim.as_ref().unwrap().stats().gemini;
    assert_eq!(stats.total.refused_rpd, 0, "{:?}", stats.total);
    assert_eq!(stats.total.accepted, 20, "{:?}", stats.total);
    let _ = batch.0.kill();
}

// ------------------------------------------------------ stored results never wait for quota

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_of_stored_results_finishes_while_the_days_quota_is_spent() {
    // Noon Pacific at the speed of real time: the reset is twelve hours away, so a batch that
    // waited for it would never finish within this test.
    let start: jiff::Timestamp = "2026-06-15T12:00:00-07:00".parse().unwrap();
    let clock = std::sync::Arc::new(fintel_time::FakeClock::new(start, 1.0));
    let mut config = sim_config(0);
    config.gemini.projects[0].requests_per_day = 9;
    let env = Env::start(config, clock.clone()).await;
    let fake_clock = || format!("{}@{}", fintel_time::Clock::now(&*clock), clock.speed());
    std::fs::write(
        env.dir.path().join("three.csv"),
        fintel_sim::companies_csv(3),
    )
    .unwrap();
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

    let plan = env
        .cmd(&["plan", "three.csv", "--years", "3"])
        .env("FINTEL_FAKE_CLOCK", fake_clock())
        .env("FINTEL_REQUESTS_PER_DAY", "9")
        .output()
        .unwrap();
    assert!(
        text(&plan.stdout).contains("every result is stored already"),
        "{}",
        text(&plan.stdout)
    );
    let mut again = Guarded(
        env.cmd(&["batch", "three.csv", "--years", "3", "--json"])
            .env("FINTEL_FAKE_CLOCK", fake_clock())
            .env("FINTEL_REQUESTS_PER_DAY", "9")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut status = None;
    until(
        "the batch of stored results to finish",
        Duration::from_secs(60),
        || {
            status = again.0.try_wait().unwrap();
            status.is_some()
        },
    )
    .await;
    assert_eq!(status.unwrap().code(), Some(0));
    let doc: Value = serde_json::from_str(&read_all(again.0.stdout.take().unwrap())).unwrap();
    assert_eq!(doc["state"], "completed", "{doc}");
    assert_eq!(sim.stats().gemini.total.received, 9, "not one more request");
    assert!(
        fintel_time::Clock::now(&*clock) < "2026-06-16T00:00:00-07:00".parse().unwrap(),
        "finished before the reset"
    );
}
