//! Request packing end to end with the built binary against the simulator: `--pack` and
//! `[run] pack` on the command line (bad values refused clearly), the plan with packing, and
//! packed batches that are killed and resumed.

use std::process::Stdio;
use std::time::{Duration, Instant};

mod support;

use support::*;

fn query_i64(env: &Env, sql: &str) -> i64 {
    rusqlite::Connection::open(env.db())
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

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
