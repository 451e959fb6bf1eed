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

#[tokio::test(flavor = "multi_thread")]
async fn careless_input_gets_exit_2_and_a_clear_answer_and_creates_nothing() {
    let env = Env::new(0).await;
    let clock = "2026-03-02T20:00:00Z";
    let run = |args: &[&str]| {
        env.cmd(args)
            .env("FINTEL_FAKE_CLOCK", clock)
            .output()
            .unwrap()
    };
    // (command line, words the answer must contain)
    let refused: &[(&[&str], &str)] = &[
        (
            &["batch", "companies.csv", "--fiscal-years", "2024-2031"],
            "fiscal year 2027 is in the future (it is 2026 now)",
        ),
        (
            &["batch", "companies.csv", "--fiscal-years", "1926-2006"],
            "1993",
        ),
        (
            &["plan", "companies.csv", "--fiscal-years", "2030"],
            "in the future",
        ),
        (
            &["batch", "companies.csv", "--years", "50"],
            "Add --yes if you mean it",
        ),
        (&["batch", "companies.csv", "--years", "0"], "at least 1"),
    ];
    for (args, words) in refused {
        let out = run(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(words), "{args:?}: {stderr}");
    }
    assert!(!env.db().exists(), "a refused command created the database");
    // Many years on a command that only looks: a warning, then the answer.
    let out = run(&["plan", "companies.csv", "--years", "40", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("warning: 40 fiscal years per company is a lot"));

    // A misspelt ticker: its line, and the ticker meant.
    let csv = fintel_sim::companies_csv(3);
    let real = csv
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    let mut typo: Vec<char> = real.chars().collect();
    typo.swap(0, 1);
    let typo: String = typo.into_iter().collect();
    std::fs::write(env.dir.path().join("typo.txt"), format!("{real}\n{typo}\n")).unwrap();
    let out = run(&["batch", "typo.txt", "--years", "1"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("line 2: {typo} (did you mean {real}")),
        "{stderr}"
    );
    let out = run(&["plan", "typo.txt", "--years", "1"]);
    assert_eq!(out.status.code(), Some(2), "plan refuses as batch does");
    let out = run(&[
        "plan",
        "typo.txt",
        "--years",
        "1",
        "--skip-unknown",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (plan["companies"].as_u64(), plan["unknown_tickers"].as_u64()),
        (Some(1), Some(1))
    );

    // A line of garbage is quoted, escaped and cut.
    let garbage = format!("ticker\n{}\u{7}\n", "Z ".repeat(5_000));
    std::fs::write(env.dir.path().join("garbage.csv"), garbage).unwrap();
    let out = run(&["batch", "garbage.csv", "--years", "1"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.len() < 1_000, "{} bytes: {stderr}", stderr.len());
    assert!(
        stderr.contains("\\u{7}") || stderr.contains("(10001 bytes)"),
        "{stderr}"
    );

    // `fintel text` on what is no filing: exit 2, that sentence, nothing on stdout.
    std::fs::write(env.dir.path().join("empty.htm"), b"").unwrap();
    std::fs::write(
        env.dir.path().join("photo.htm"),
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0",
    )
    .unwrap();
    for file in ["empty.htm", "photo.htm"] {
        let out = run(&["text", file]);
        assert_eq!(out.status.code(), Some(2), "{file}");
        assert!(out.stdout.is_empty(), "{file}: {}", text(&out.stdout));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("is not an HTML or text filing"),
            "{file}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{file}: {stderr}");
    }

    // A data directory that cannot be written: exit 4 and what to do, before anything else.
    std::fs::write(env.dir.path().join("a-file"), b"x").unwrap();
    let out = env
        .cmd(&["batch", "companies.csv", "--years", "1"])
        .env("FINTEL_HOME", env.dir.path().join("a-file").join("home"))
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("make the directory writable"), "{stderr}");
    let root = std::process::Command::new("id").arg("-u").output().unwrap();
    if text(&root.stdout).trim() != "0" {
        // A real read-only directory (root writes anyway, so only checked for other users).
        let ro = env.dir.path().join("read-only");
        std::fs::create_dir(&ro).unwrap();
        let mut perms = std::fs::metadata(&ro).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o555);
        std::fs::set_permissions(&ro, perms).unwrap();
        let out = env
            .cmd(&["batch", "companies.csv", "--years", "1"])
            .env("FINTEL_HOME", &ro)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn results_skipped_years_pipes_and_exports_behave_as_unix_users_expect() {
    let env = Env::new(0).await;
    // Years before the simulated companies filed: every task is skipped, grouped as one kind.
    let out = env.run(&[
        "batch",
        "companies.csv",
        "--fiscal-years",
        "1994-1996",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("Start this batch?"),
        "no question without a terminal"
    );
    let out = env.run(&["batch", "status"]);
    let status = text(&out.stdout);
    let reasons: Vec<&str> = status.lines().filter(|l| l.contains("FY1994")).collect();
    assert_eq!(reasons.len(), 1, "one line for the kind: {status}");
    assert!(reasons[0].contains("FY1994-FY1996"), "{status}");

    // A known company without results says so; an unknown one is exit 2 with a suggestion.
    let csv = fintel_sim::companies_csv(1);
    let real = csv
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    let out = env.run(&["results", &real]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("has no stored results"),
        "{}",
        text(&out.stderr)
    );
    let out = env.run(&["results", &format!("{real}X")]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is not a company of any batch"), "{stderr}");
    assert!(stderr.contains(&format!("did you mean {real}")), "{stderr}");

    // Real results, then a reader that goes away at once: no panic, no error after the output.
    let out = env.run(&["batch", "companies.csv", "--years", "1", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for args in [
        &["batch", "status"][..],
        &["batch", "--list-incomplete"],
        &["export", "--format", "csv", "--output", "-"],
        &["results", &real],
        &["workflows"],
    ] {
        let mut child = env
            .cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let status = wait_for(&mut child, Duration::from_secs(30));
        let stderr = read_all(child.stderr.take().unwrap());
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("error"), "{args:?}: {stderr}");
        use std::os::unix::process::ExitStatusExt;
        assert!(
            status.code() == Some(0) || status.signal() == Some(13),
            "{args:?}: {status:?} {stderr}"
        );
    }

    // Exports are the user's files: created under the user's umask, not a temporary 0600.
    let home = env.home();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("umask 027; exec \"$0\" export --format xlsx --output out.xlsx")
        .arg(BIN)
        .current_dir(env.dir.path())
        .env("FINTEL_HOME", &home)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(env.dir.path().join("out.xlsx"))
            .unwrap()
            .permissions(),
    ) & 0o777;
    assert_eq!(mode, 0o640, "{mode:o}");
}

#[test]
fn sim_serve_says_where_it_listens_the_keys_it_takes_and_tickers_it_knows() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(BIN)
        .args(["sim", "serve", "--addr", "127.0.0.1:0"])
        .env("FINTEL_HOME", dir.path().join("home"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    while !said.contains("counters at") {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() == 0 {
            break;
        }
        said.push_str(&line);
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(said.contains("listening on http://127.0.0.1:"), "{said}");
    assert!(said.contains("keys it accepts: sim-key-1"), "{said}");
    assert!(said.contains("GOOGLE_API_KEY_1=sim-key-1"), "{said}");
    let tickers = fintel_sim::companies_csv(2);
    let first = tickers.lines().nth(1).unwrap().split(',').next().unwrap();
    assert!(
        said.contains(&format!("tickers it knows, e.g.: {first}")),
        "{said}"
    );
}

#[test]
fn the_demo_ends_by_pointing_to_results_export_and_the_dashboard() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .args(["demo", "--companies", "2", "--years", "1"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("FINTEL_HOME", dir.path().join("home"))
        .env("CI", "true")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let closing = &stderr[stderr
        .rfind("The simulator received")
        .expect("closing lines")..];
    for command in [
        " results ",
        " export --format xlsx",
        " web --open",
        " batch status ",
    ] {
        assert!(
            closing.contains(command),
            "{command:?} missing in: {closing}"
        );
    }
    assert!(!closing.contains("sqlite3"), "{closing}");
    assert!(!stderr.contains("done 0 of 0"), "{stderr}");
}
