//! The first hour of a new user, end to end with the built binary: truthful progress and
//! finish estimates, careless input, closed pipes, and the small things seen on the way.

use std::process::Stdio;
use std::time::{Duration, Instant};

mod support;

use support::*;

/// Polls `batch status --json` until the batch is in `state` (bounded by the timeout).
fn wait_for_state(env: &Env, fake_clock: &str, state: &str) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let out = env
            .cmd(&["batch", "status", "--json"])
            .env("FINTEL_REQUESTS_PER_DAY", "5")
            .env("FINTEL_FAKE_CLOCK", fake_clock)
            .output()
            .unwrap();
        if out.status.code() == Some(0) {
            let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            if doc["state"] == state {
                return doc;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the batch never reached {state}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn waiting_for_the_reset_the_finish_is_counted_in_quota_days_everywhere() {
    let env = Env::new(0).await;
    // Noon Pacific, 5 requests a day: 8 companies x 2 years = 16 requests, 5 sent today, the
    // other 11 need three more quota days (5 + 5 + 1).
    let clock = "2026-03-02T20:00:00Z";
    let mut child = env
        .cmd(&["batch", "companies.csv", "--years", "2", "--yes"])
        .env("FINTEL_REQUESTS_PER_DAY", "5")
        .env("FINTEL_FAKE_CLOCK", clock)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let doc = wait_for_state(&env, clock, "waiting_reset");
    assert_eq!(doc["counts"]["total"], 16, "{doc}");
    assert_eq!(
        doc["estimated_finish"], "2026-03-05T08:05:00Z",
        "the third quota day after today opens at 00:05 PST: {doc}"
    );
    let out = env
        .cmd(&["batch", "status"])
        .env("FINTEL_REQUESTS_PER_DAY", "5")
        .env("FINTEL_FAKE_CLOCK", clock)
        .output()
        .unwrap();
    let status = text(&out.stdout);
    assert!(
        status.contains("finish     expected to finish on 2026-03-05 (quota day 1 of 4;"),
        "{status}"
    );
    // `--list-incomplete` counts every planned task from the start.
    let out = env.run(&["batch", "--list-incomplete"]);
    assert!(text(&out.stdout).contains("/16 "), "{}", text(&out.stdout));
    // The plan says the same about the same work.
    let out = env
        .cmd(&["plan", "companies.csv", "--years", "2", "--json"])
        .env("FINTEL_REQUESTS_PER_DAY", "5")
        .env("FINTEL_FAKE_CLOCK", clock)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["requests_needed"], 11, "{plan}");
    assert_eq!(plan["quota_days"], 4, "{plan}");
    assert_eq!(plan["estimated_finish"], "2026-03-05T08:05:00Z", "{plan}");

    signal(&child, "-TERM");
    let status = wait_for(&mut child, Duration::from_secs(40));
    let stderr = read_all(child.stderr.take().unwrap());
    assert_eq!(status.code(), Some(0), "{stderr}");
    // The progress lines count quota days, never "at this rate" across the wait.
    assert!(
        stderr.contains("expected to finish on 2026-03-05"),
        "{stderr}"
    );
    assert!(!stderr.contains("at this rate"), "{stderr}");
    assert!(!stderr.contains("done 0 of 0"), "{stderr}");
}
