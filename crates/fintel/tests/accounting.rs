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

// ------------------------------------------------------------ several batches on one key pool

/// Rows `from..to` of the simulator's companies, as a CSV with its header.
fn companies(from: usize, to: usize) -> String {
    let all = fintel_sim::companies_csv(to);
    let mut lines = all.lines();
    let header = lines.next().unwrap_or_default().to_string();
    let rows: Vec<&str> = lines.skip(from).take(to - from).collect();
    format!("{header}\n{}\n", rows.join("\n"))
}

#[tokio::test(flavor = "multi_thread")]
async fn batches_waiting_on_one_key_pool_are_estimated_one_after_another() {
    // Noon Pacific; the day's 40 requests are spent first.
    let start: jiff::Timestamp = "2026-06-15T12:00:00-07:00".parse().unwrap();
    let clock = std::sync::Arc::new(fintel_time::FakeClock::new(start, 1.0));
    let mut config = sim_config(0);
    config.sec.companies = 60;
    config.gemini.projects[0].requests_per_day = 40;
    let env = Env::start(config, clock.clone()).await;
    let fake_clock = || format!("{}@{}", fintel_time::Clock::now(&*clock), clock.speed());
    let run = |args: &[&str]| {
        let mut c = env.cmd(args);
        c.env("FINTEL_FAKE_CLOCK", fake_clock())
            .env("FINTEL_REQUESTS_PER_DAY", "40");
        c
    };
    std::fs::write(env.dir.path().join("spend.csv"), companies(0, 20)).unwrap();
    let out = run(&["batch", "spend.csv", "--years", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(env.sim.as_ref().unwrap().stats().gemini.total.accepted, 40);

    // Three batches of 6, 12 and 46 requests, each left waiting for the reset.
    let mut ids = Vec::new();
    for (name, from, to) in [("a", 20, 23), ("b", 23, 29), ("c", 29, 52)] {
        let file = format!("{name}.csv");
        std::fs::write(env.dir.path().join(&file), companies(from, to)).unwrap();
        let before = ids.len();
        let mut child = Guarded(
            run(&["batch", &file, "--years", "2"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        until(
            "the batch waits for the reset",
            Duration::from_secs(60),
            || {
                let c = rusqlite::Connection::open(env.db()).unwrap();
                let waiting: Vec<String> = c
                    .prepare(
                        "SELECT id FROM batches WHERE state = 'waiting_reset' ORDER BY created_at",
                    )
                    .unwrap()
                    .query_map([], |r| r.get(0))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                if waiting.len() > before {
                    ids = waiting;
                    true
                } else {
                    false
                }
            },
        )
        .await;
        let _ = child.0.kill();
    }
    let status = |id: &str| json_of(&run(&["batch", "status", id, "--json"]).output().unwrap());
    let expect = [
        (0, 0, "2026-06-16T07:05:00Z"),
        (1, 6, "2026-06-16T07:05:00Z"),
        (2, 18, "2026-06-17T07:05:00Z"),
    ];
    for (id, (batches, requests, finish)) in ids.iter().zip(expect) {
        let st = status(id);
        assert_eq!(st["batches_ahead"], batches, "{st}");
        assert_eq!(st["requests_ahead"], requests, "{st}");
        assert_eq!(st["estimated_finish"], finish, "{st}");
    }
    let shown = text(&run(&["batch", "status", &ids[2]]).output().unwrap().stdout);
    assert!(
        shown.contains("after 2 other batches on these keys"),
        "{shown}"
    );

    // A fourth of 4 requests comes after all three: 64 + 4 on 40 a day.
    std::fs::write(env.dir.path().join("d.csv"), companies(52, 54)).unwrap();
    let plan = json_of(
        &run(&["plan", "d.csv", "--years", "2", "--json"])
            .output()
            .unwrap(),
    );
    assert_eq!(plan["requests_needed"], 4, "{plan}");
    assert_eq!(plan["batches_ahead"], 3, "{plan}");
    assert_eq!(plan["requests_ahead"], 64, "{plan}");
    assert_eq!(plan["expected_finish_quota_day"], "2026-06-17", "{plan}");
    let words = text(
        &run(&["plan", "d.csv", "--years", "2"])
            .output()
            .unwrap()
            .stdout,
    );
    assert!(
        words.contains("after 3 other batches on these keys"),
        "{words}"
    );
    // Served first, a higher priority has the keys alone.
    let first = json_of(
        &run(&["plan", "d.csv", "--years", "2", "--priority", "5", "--json"])
            .output()
            .unwrap(),
    );
    assert_eq!(first["batches_ahead"], 0, "{first}");
    assert_eq!(first["expected_finish_quota_day"], "2026-06-16", "{first}");
}
