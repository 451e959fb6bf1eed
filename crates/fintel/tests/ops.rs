//! Operating a long batch, end to end with the built binary against the simulator on
//! 127.0.0.1: `fintel doctor`, configuration problems that stop a batch without failing a task,
//! a provider outage, a process suspended across the quota reset, the exit codes not covered in
//! `cli.rs`, the documented `--json` shapes, and which fiscal years a batch asks for.
//!
//! Tests that need time run the simulator and the binary on one `FINTEL_FAKE_CLOCK`, so a
//! ten-minute outage or a Pacific midnight passes in a few real seconds.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fintel_sim::{Company, SimConfig, Universe};
use fintel_time::{Clock, FakeClock};
use jiff::Timestamp;
use serde_json::Value;

mod support;

use support::*;

/// The key the harness configures as GOOGLE_API_KEY_1.
const KEY: &str = "test-key-0123456789";

// ------------------------------------------------------------------------------------ helpers

/// The harness's simulator settings with smaller documents, for runs on an injected clock.
fn small_sim_config() -> SimConfig {
    let mut config = sim_config(0);
    config.sec.document_bytes = 20_000;
    config
}

/// `FINTEL_FAKE_CLOCK` for a process started now on `clock`: the same instant and speed, so
/// the binary's time trails the simulator's only by its start-up.
fn fake_clock_var(clock: &FakeClock) -> String {
    format!("{}@{}", clock.now(), clock.speed())
}

fn json(out: &Output) -> Value {
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

fn sql_i64_or_zero(env: &Env, sql: &str) -> i64 {
    rusqlite::Connection::open(env.db())
        .ok()
        .and_then(|c| c.query_row(sql, [], |r| r.get(0)).ok())
        .unwrap_or(0)
}

fn batch_state(env: &Env) -> Option<String> {
    rusqlite::Connection::open(env.db()).ok().and_then(|c| {
        c.query_row(
            "SELECT state FROM batches ORDER BY created_at DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .ok()
    })
}

/// Polls `condition` every few milliseconds until it holds; panics after `timeout`.
async fn until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}

fn assert_no_secret(out: &Output, secrets: &[&str]) {
    for s in secrets {
        for (name, stream) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            assert!(
                !text(stream).contains(s),
                "the key {s:?} appears in clear on {name}: {}",
                text(stream)
            );
        }
    }
}

// ------------------------------------------------------------------------------- JSON shapes

/// The JSON types a documented field may have.
#[derive(Debug, Clone, Copy, PartialEq)]
enum T {
    Str,
    Num,
    Bool,
    Obj,
    Arr,
    /// A string or null.
    OptStr,
    /// A number or null.
    OptNum,
    /// An object or null.
    OptObj,
    /// An array or null.
    OptArr,
}

fn has_type(v: &Value, t: T) -> bool {
    match t {
        T::Str => v.is_string(),
        T::Num => v.is_number(),
        T::Bool => v.is_boolean(),
        T::Obj => v.is_object(),
        T::Arr => v.is_array(),
        T::OptStr => v.is_string() || v.is_null(),
        T::OptNum => v.is_number() || v.is_null(),
        T::OptObj => v.is_object() || v.is_null(),
        T::OptArr => v.is_array() || v.is_null(),
    }
}

/// Asserts that `v` is an object with exactly `fields`, each of its type.
fn assert_shape(what: &str, v: &Value, fields: &[(&str, T)]) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not an object: {v}"));
    let actual: BTreeSet<&str> = obj.keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = fields.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        actual, expected,
        "{what}: fields differ from the documented ones in {v}"
    );
    for (k, t) in fields {
        assert!(
            has_type(&obj[*k], *t),
            "{what}.{k} should be {t:?}, is {}",
            obj[*k]
        );
    }
}

/// Asserts the shape of every element of a (non-empty) array.
fn assert_each(what: &str, v: &Value, fields: &[(&str, T)]) {
    let items = v
        .as_array()
        .unwrap_or_else(|| panic!("{what}: not an array: {v}"));
    assert!(!items.is_empty(), "{what}: empty, nothing to check");
    for (i, item) in items.iter().enumerate() {
        assert_shape(&format!("{what}[{i}]"), item, fields);
    }
}

const COUNTS: &[(&str, T)] = &[
    ("total", T::Num),
    ("pending", T::Num),
    ("running", T::Num),
    ("completed", T::Num),
    ("skipped", T::Num),
    ("failed", T::Num),
    ("resolving", T::Num),
];

/// `batch ... --json`, `batch --resume --json`, `analyze --json`.
fn assert_run_shape(what: &str, v: &Value) {
    assert_shape(
        what,
        v,
        &[
            ("batch_id", T::Str),
            ("state", T::Str),
            ("counts", T::Obj),
            ("exit_code", T::Num),
            ("resume_command", T::Str),
        ],
    );
    assert_shape(&format!("{what}.counts"), &v["counts"], COUNTS);
    assert_eq!(
        v["resume_command"],
        format!("fintel batch --resume {}", v["batch_id"].as_str().unwrap())
    );
}

const LIST_ENTRY: &[(&str, T)] = &[
    ("id", T::Str),
    ("name", T::OptStr),
    ("state", T::Str),
    ("state_reason", T::OptStr),
    ("analysis_type", T::Str),
    ("model", T::Str),
    ("created_at", T::Str),
    ("updated_at", T::Str),
    ("counts", T::Obj),
    ("processes", T::Arr),
    ("resume_command", T::OptStr),
];

const ENDED_TASK: &[(&str, T)] = &[
    ("task_id", T::Num),
    ("ticker", T::OptStr),
    ("cik", T::OptNum),
    ("kind", T::Str),
    ("fiscal_year", T::OptNum),
    ("state", T::Str),
    ("attempts", T::Num),
    ("reason", T::OptStr),
];

/// `fintel doctor --json`.
fn assert_doctor_shape(v: &Value) {
    assert_shape(
        "doctor",
        v,
        &[
            ("ok", T::Bool),
            ("provider", T::Str),
            ("model", T::OptStr),
            ("model_chosen", T::OptObj),
            ("checks", T::Arr),
            ("keys", T::Arr),
        ],
    );
    assert_each(
        "doctor.checks",
        &v["checks"],
        &[
            ("name", T::Str),
            ("ok", T::Bool),
            ("detail", T::Str),
            ("fix", T::OptStr),
        ],
    );
    for c in v["checks"].as_array().unwrap() {
        assert_eq!(
            c["fix"].is_null(),
            c["ok"] == true,
            "a failed check says what to do, a passed one does not: {c}"
        );
    }
    if !v["keys"].as_array().unwrap().is_empty() {
        assert_each(
            "doctor.keys",
            &v["keys"],
            &[
                ("label", T::Str),
                ("bucket", T::Str),
                ("status", T::Str),
                ("ok", T::Bool),
                ("detail", T::Str),
            ],
        );
    }
    let names: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "keys",
            "model",
            "projects",
            "sec_user_agent",
            "database",
            "data_dir",
            "disk_space"
        ]
    );
    let all_ok = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["ok"] == true);
    assert_eq!(v["ok"], all_ok);
}

fn check<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {doc}"))
}

fn key_entry<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| {
            k["label"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{name} ("))
        })
        .unwrap_or_else(|| panic!("no key {name} in {doc}"))
}

// ------------------------------------------------------------------------------------ doctor

#[tokio::test(flavor = "multi_thread")]
async fn doctor_passes_on_a_ready_setup_and_spends_no_generation_quota() {
    let env = Env::new(0).await;
    let out = env.run(&["doctor", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc = json(&out);
    assert_doctor_shape(&doc);
    assert_eq!(doc["ok"], true, "{doc}");
    assert_eq!(doc["provider"], "gemini");
    assert_eq!(doc["model"], "gemini-2.5-flash");
    let key = key_entry(&doc, "GOOGLE_API_KEY_1");
    assert_eq!((&key["status"], &key["ok"]), (&"ok".into(), &true.into()));
    assert!(check(&doc, "model")["detail"]
        .as_str()
        .unwrap()
        .contains("gemini-2.5-flash exists"));
    // The assumption plans rest on, and where to change it.
    let projects = check(&doc, "projects")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        projects.starts_with("1 key in 1 project, as configured or learned: "),
        "{projects}"
    );
    assert!(projects.contains("[[buckets]]"), "{projects}");

    // The human form: one line per check, then the verdict.
    let out = env.run(&["doctor"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for name in [
        "keys",
        "model",
        "sec_user_agent",
        "database",
        "data_dir",
        "disk_space",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("ok    {name}: "))),
            "{name} in {stdout}"
        );
    }
    assert_eq!(stdout.lines().last(), Some("all 7 checks passed"));
    assert_no_secret(&out, &[KEY]);

    let stats = env.sim.as_ref().unwrap().stats();
    assert_eq!(stats.gemini.total.received, 0, "no generateContent at all");
    assert_eq!(
        stats.gemini.model_gets, 2,
        "one model lookup per key per run"
    );
    // The write test left nothing behind.
    let left: Vec<String> = std::fs::read_dir(env.home())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("doctor"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_names_an_invalid_key_a_leaked_key_a_missing_user_agent_and_an_unknown_model() {
    const INVALID: &str = "invalid-key-aaaa1111";
    const LEAKED: &str = "leaked-key-bbbb2222";
    let env = Env::with(0, |c| {
        c.gemini.projects[0].keys = vec![KEY.into(), INVALID.into(), LEAKED.into()];
        c.gemini.invalid_keys = vec![INVALID.into()];
        c.gemini.leaked_keys = vec![LEAKED.into()];
    })
    .await;
    let doctor = |json_flag: bool| {
        let mut c = env.cmd(if json_flag {
            &["doctor", "--json"]
        } else {
            &["doctor"]
        });
        c.env("GOOGLE_API_KEY_2", INVALID)
            .env("GOOGLE_API_KEY_3", LEAKED)
            .env_remove("FINTEL_SEC_USER_AGENT");
        c
    };
    let out = doctor(true).output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert_no_secret(&out, &[KEY, INVALID, LEAKED]);
    let doc = json(&out);
    assert_doctor_shape(&doc);
    assert_eq!(doc["ok"], false);
    assert_eq!(key_entry(&doc, "GOOGLE_API_KEY_1")["status"], "ok");
    let invalid = key_entry(&doc, "GOOGLE_API_KEY_2");
    assert_eq!(
        (&invalid["status"], &invalid["ok"]),
        (&"unusable".into(), &false.into())
    );
    assert!(
        invalid["detail"]
            .as_str()
            .unwrap()
            .contains("API key not valid"),
        "{invalid}"
    );
    let leaked = key_entry(&doc, "GOOGLE_API_KEY_3");
    assert_eq!(leaked["status"], "unusable");
    assert!(
        leaked["detail"]
            .as_str()
            .unwrap()
            .contains("reported as leaked"),
        "{leaked}"
    );
    let keys = check(&doc, "keys");
    assert_eq!(keys["ok"], false);
    for name in ["GOOGLE_API_KEY_2", "GOOGLE_API_KEY_3"] {
        assert!(keys["detail"].as_str().unwrap().contains(name), "{keys}");
    }
    assert_eq!(
        check(&doc, "model")["ok"],
        true,
        "the good key confirmed it"
    );
    let ua = check(&doc, "sec_user_agent");
    assert_eq!(ua["ok"], false);
    assert!(ua["detail"]
        .as_str()
        .unwrap()
        .contains("FINTEL_SEC_USER_AGENT"));
    assert!(ua["fix"]
        .as_str()
        .unwrap()
        .contains("FINTEL_SEC_USER_AGENT="));

    // The same, readably: each problem on a FAIL line with its name.
    let out = doctor(false).output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert_no_secret(&out, &[KEY, INVALID, LEAKED]);
    let stdout = text(&out.stdout);
    let line = |needle: &str| {
        stdout
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle} in {stdout}"))
            .to_string()
    };
    assert!(line("sec_user_agent:").starts_with("FAIL  sec_user_agent: "));
    assert!(line("sec_user_agent:").contains("FINTEL_SEC_USER_AGENT"));
    // Each key on its own indented line under the keys check.
    let key_line = |name: &str| line(&format!("  FAIL  {name} ("));
    assert!(key_line("GOOGLE_API_KEY_2").contains("API_KEY_INVALID"));
    assert!(key_line("GOOGLE_API_KEY_3").contains("leaked"));
    assert!(line("  ok    GOOGLE_API_KEY_1 (").contains("accepted"));
    assert!(stdout.ends_with("2 of 7 checks failed; fix them and run `fintel doctor` again\n"));

    // A model the provider does not know, with the provider's own words.
    let out = env
        .cmd(&["doctor", "--json"])
        .env("FINTEL_MODEL", "nope")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let doc = json(&out);
    assert_doctor_shape(&doc);
    let model = check(&doc, "model");
    assert_eq!(model["ok"], false);
    assert!(
        model["detail"]
            .as_str()
            .unwrap()
            .contains("models/nope is not found"),
        "{model}"
    );
    assert!(model["fix"].as_str().unwrap().contains("FINTEL_MODEL"));
    assert_eq!(key_entry(&doc, "GOOGLE_API_KEY_1")["status"], "ok");

    // No key at all: what to set.
    let out = env
        .cmd(&["doctor", "--json"])
        .env_remove("GOOGLE_API_KEY_1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let doc = json(&out);
    assert_doctor_shape(&doc);
    assert_eq!(doc["keys"], Value::Array(vec![]));
    let keys = check(&doc, "keys");
    assert_eq!(keys["ok"], false);
    assert!(
        keys["fix"].as_str().unwrap().contains("GOOGLE_API_KEY_1"),
        "{keys}"
    );

    // A data directory that cannot be created.
    let blocker = env.dir.path().join("not-a-directory");
    std::fs::write(&blocker, "x").unwrap();
    let out = env
        .cmd(&["doctor", "--json"])
        .env("FINTEL_HOME", blocker.join("home"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let doc = json(&out);
    let dir = check(&doc, "data_dir");
    assert_eq!(dir["ok"], false);
    assert!(dir["fix"].as_str().unwrap().contains("FINTEL_HOME"));
    assert_eq!(check(&doc, "disk_space")["ok"], true);

    // A disk with less free space than batches need (a threshold no disk meets).
    let out = env
        .cmd(&["doctor", "--json"])
        .env("FINTEL_MIN_FREE_DISK_MB", (1u64 << 40).to_string())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let disk = check(&json(&out), "disk_space").clone();
    assert_eq!(disk["ok"], false);
    assert!(
        disk["detail"]
            .as_str()
            .unwrap()
            .contains("FINTEL_MIN_FREE_DISK_MB"),
        "{disk}"
    );

    let stats = env.sim.as_ref().unwrap().stats();
    assert_eq!(stats.gemini.total.received, 0, "no generation quota spent");
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_reports_a_working_key_that_an_earlier_run_disabled() {
    let env = Env::new(0).await;
    std::fs::write(env.dir.path().join("one.csv"), fintel_sim::companies_csv(1)).unwrap();
    let out = env.run(&["batch", "one.csv", "--years", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    rusqlite::Connection::open(env.db())
        .unwrap()
        .execute(
            "UPDATE keys SET disabled_reason = 'key reported as leaked', disabled_at = 0",
            [],
        )
        .unwrap();
    let out = env.run(&["doctor", "--json"]);
    assert_eq!(out.status.code(), Some(4));
    let doc = json(&out);
    let key = key_entry(&doc, "GOOGLE_API_KEY_1");
    assert_eq!(key["status"], "disabled");
    assert!(key["detail"]
        .as_str()
        .unwrap()
        .contains("fintel keys enable GOOGLE_API_KEY_1"));
    let out = env.run(&["keys", "enable", "GOOGLE_API_KEY_1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = env.run(&["doctor", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

// -------------------------------------------------------- configuration problems stop a batch

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_model_stops_new_and_resumed_batches_with_exit_4_and_fails_no_task() {
    let env = Env::new(100).await;
    let out = env
        .cmd(&["batch", "companies.csv", "--years", "2"])
        .env("FINTEL_MODEL", "nope")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("models/nope is not found"), "{err}");
    assert!(err.contains("FINTEL_MODEL"), "{err}");
    let out = env.run(&["batch", "--list-incomplete", "--json"]);
    assert_eq!(text(&out.stdout).trim(), "[]", "nothing was created");

    // A batch stopped half-way, resumed with a model the provider does not know.
    let mut child = env
        .cmd(&["batch", "companies.csv", "--years", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    until("a first result", Duration::from_secs(60), || {
        env.completed_results() >= 1
    })
    .await;
    signal(&child, "-TERM");
    assert_eq!(
        wait_for(&mut child, Duration::from_secs(40)).code(),
        Some(0)
    );
    let tasks = |env: &Env| -> Vec<(i64, String, i64)> {
        let conn = rusqlite::Connection::open(env.db()).unwrap();
        let mut stmt = conn
            .prepare("SELECT id, state, attempts FROM tasks ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let before = tasks(&env);
    assert!(before.iter().any(|(_, s, _)| s == "pending"), "{before:?}");
    let received = env.sim.as_ref().unwrap().stats().gemini.total.received;
    // A batch owns its model, so a resume analyses with it whatever FINTEL_MODEL says: the
    // provider no longer knowing that model (retired since) is the case to handle.
    rusqlite::Connection::open(env.db())
        .unwrap()
        .execute("UPDATE batches SET model = 'nope'", [])
        .unwrap();
    let out = env.cmd(&["batch", "--resume"]).output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("models/nope is not found"));
    assert!(
        text(&out.stderr).contains("start a new batch"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(tasks(&env), before, "no task changed");
    assert_eq!(
        sql_i64(&env, "SELECT COUNT(*) FROM tasks WHERE state = 'failed'"),
        0
    );
    assert_eq!(
        env.sim.as_ref().unwrap().stats().gemini.total.received,
        received
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schema_the_provider_rejects_stops_the_batch_with_exit_4_and_fails_no_task() {
    let env = Env::with(0, |c| c.gemini.max_schema_chars = Some(10)).await;
    for round in 0..2 {
        let args: &[&str] = if round == 0 {
            &["batch", "companies.csv", "--years", "2", "--json"]
        } else {
            &["batch", "--resume", "--json"]
        };
        let out = env.run(args);
        assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(
            err.contains("too many states for serving"),
            "the provider's message is shown: {err}"
        );
        assert!(err.contains("No task was failed"), "{err}");
        let doc = json(&out);
        assert_run_shape("batch", &doc);
        assert_eq!(doc["exit_code"], 4);
        assert_eq!(doc["state"], "stopped");
        assert_eq!(doc["counts"]["failed"], 0);
        assert_eq!(
            sql_i64(&env, "SELECT COUNT(*) FROM tasks WHERE state = 'failed'"),
            0
        );
        assert_eq!(
            sql_i64(&env, "SELECT COUNT(*) FROM tasks WHERE state = 'running'"),
            0
        );
        assert_eq!(sql_i64(&env, "SELECT SUM(attempts) FROM tasks"), 0);
        assert!(
            sql_i64(
                &env,
                "SELECT COUNT(*) FROM tasks WHERE kind = 'year' AND state = 'pending'"
            ) > 0
        );
        assert!(
            sql_i64(
                &env,
                "SELECT COUNT(*) FROM calls WHERE outcome = 'schema_too_complex'"
            ) > round,
            "the refused request is in the ledger"
        );
    }
    let out = env.run(&["batch", "status", "--json"]);
    let st = json(&out);
    assert_eq!(st["state"], "stopped");
    assert!(st["state_reason"]
        .as_str()
        .unwrap()
        .contains("too many states for serving"));
    let stats = env.sim.as_ref().unwrap().stats();
    assert_eq!(stats.gemini.total.accepted, 0);
    assert!(stats.gemini.total.invalid_request >= 2);
}

// ---------------------------------------------------------------------------------- outages

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_outage_mid_batch_fails_no_task_counts_no_attempt_and_passes_by_itself() {
    // Five companies by two years, five calls at a time, each answered after 300 ms: the
    // first five calls arrive together and are answered together, so the outage begins
    // between the two halves of the batch. The second five meet it together, which opens the
    // breaker at once (five tasks, five failures, no retry due yet); its probes, 1, 2, 4 and 8
    // simulated minutes apart, find the provider back after the 10-minute outage. At 300x
    // that takes about 3 s.
    let clock = Arc::new(FakeClock::new(
        "2026-05-04T16:00:00Z".parse::<Timestamp>().unwrap(),
        300.0,
    ));
    let mut config = small_sim_config();
    config.gemini.latency.min_ms = 300;
    config.gemini.latency.max_ms = 300;
    // Only small filings: a large one is measured with countTokens first (its estimate is
    // within 25% of the context), a round trip that would keep its call out of the second
    // five arriving together.
    config.sec.large_document_share = 0.0;
    let env = Env::start(config, clock.clone()).await;
    std::fs::write(
        env.dir.path().join("five.csv"),
        fintel_sim::companies_csv(5),
    )
    .unwrap();
    let mut child = env
        .cmd(&["batch", "five.csv", "--years", "2", "--json"])
        .env("FINTEL_FAKE_CLOCK", fake_clock_var(&clock))
        .env("FINTEL_CONCURRENCY", "5")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let sim = env.sim.as_ref().unwrap();
    until("the first five calls", Duration::from_secs(60), || {
        sim.stats().gemini.total.received >= 5
    })
    .await;
    sim.start_outage(Duration::from_secs(600));
    assert_eq!(
        sim.stats().gemini.total.received,
        5,
        "the outage began mid-batch"
    );
    until(
        "the batch waiting for the provider",
        Duration::from_secs(60),
        || batch_state(&env).as_deref() == Some("waiting_provider"),
    )
    .await;
    let st = json(&env.run(&["batch", "status", "--json"]));
    assert_eq!(st["state"], "waiting_provider", "{st}");
    assert!(
        st["state_reason"]
            .as_str()
            .unwrap()
            .contains("failing repeatedly"),
        "{st}"
    );
    assert_eq!(st["counts"]["failed"], 0);
    assert_eq!(st["counts"]["completed"], 5, "the first half is done");

    let status = wait_for(&mut child, Duration::from_secs(60));
    let stdout = read_all(child.stdout.take().unwrap());
    let stderr = read_all(child.stderr.take().unwrap());
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("looks down"), "{stderr}");
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["state"], "completed");
    assert_eq!(doc["counts"]["failed"], 0);
    assert_eq!(doc["counts"]["skipped"], 0);
    assert_eq!(
        sql_i64(
            &env,
            "SELECT COUNT(*) FROM tasks WHERE kind = 'year' AND state = 'completed'"
        ),
        10,
        "it went on by itself after the outage"
    );

    let conn = rusqlite::Connection::open(env.db()).unwrap();
    // The tasks caught in the outage: each ended completed with no failed attempt counted, and
    // its result says it took one attempt.
    let mut stmt = conn
        .prepare(
            "SELECT t.id, t.state, t.attempts, r.attempts FROM tasks t \
             LEFT JOIN results r ON r.id = t.result_id \
             WHERE t.id IN (SELECT task_id FROM calls WHERE outcome = 'transient')",
        )
        .unwrap();
    let caught: Vec<(i64, String, i64, Option<i64>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(caught.len(), 5, "{caught:?}");
    for (id, state, attempts, result_attempts) in &caught {
        assert_eq!(state, "completed", "task {id}");
        assert_eq!(*attempts, 0, "task {id}: an outage failure was counted");
        assert_eq!(*result_attempts, Some(1), "task {id}");
    }
    // Every 503 reached the provider and stays in the ledger (it may have cost quota): the five
    // that opened the breaker, then one probe at a time, at growing intervals.
    let stats = sim.stats();
    let mut stmt = conn
        .prepare(
            "SELECT task_id, sent_at, latency_ms FROM calls WHERE outcome = 'transient' \
             ORDER BY id",
        )
        .unwrap();
    let sent: Vec<(i64, i64, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    // The breaker opened when the fifth task's first failure came back (latency is measured
    // in real milliseconds, 300 simulated ones each). On a loaded machine the five do not
    // fail together, and a task that failed early may retry before the fifth answer is in:
    // such a retry belongs to the streak, not to the probes.
    let mut first_failures: Vec<(i64, i64)> = Vec::new();
    for (task, sent_at, latency) in &sent {
        if first_failures.len() < 5 && !first_failures.iter().any(|(t, _)| t == task) {
            first_failures.push((*task, sent_at + latency * 300));
        }
    }
    assert_eq!(first_failures.len(), 5, "{sent:?}");
    let opened = first_failures.iter().map(|(_, at)| *at).max().unwrap();
    let probes: Vec<i64> = sent
        .iter()
        .map(|(_, sent_at, _)| *sent_at)
        .filter(|at| *at > opened)
        .collect();
    assert!(
        (1..=4).contains(&probes.len()),
        "probes 1, 2, 4, 8 minutes apart meet a 10-minute outage 1 to 4 times: {sent:?}"
    );
    let gaps: Vec<i64> = std::iter::once(opened)
        .chain(probes.iter().copied())
        .collect::<Vec<_>>()
        .windows(2)
        .map(|w| w[1] - w[0])
        .collect();
    assert!(
        gaps.iter().all(|g| *g >= 60_000) && gaps.windows(2).all(|w| w[1] > w[0]),
        "probe intervals grow from a minute after the breaker opened: {gaps:?} ms ({sent:?})"
    );
    let transient: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM calls WHERE outcome = 'transient' AND refunded = 0",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(transient as u64, stats.gemini.total.faults.outage);
    assert_eq!(stats.gemini.total.over_limit, 0);
    assert_eq!(stats.gemini.total.duplicates, 0);
}

// ------------------------------------------------------------------------- suspend and wake

#[tokio::test(flavor = "multi_thread")]
async fn a_process_stopped_past_the_quota_reset_works_as_soon_as_it_is_continued() {
    // 23:30 Pacific at 600x: the day's four requests go within a few simulated minutes (half
    // an hour of slack for a slow machine), then the batch waits for 00:05 (the reset plus its
    // buffer) and is stopped until past it, at most 3.5 s.
    let start: Timestamp = "2026-05-04T23:30:00-07:00".parse().unwrap();
    let clock = Arc::new(FakeClock::new(start, 600.0));
    let mut config = small_sim_config();
    config.gemini.projects[0].requests_per_day = 4;
    let env = Env::start(config, clock.clone()).await;
    std::fs::write(
        env.dir.path().join("three.csv"),
        fintel_sim::companies_csv(3),
    )
    .unwrap();
    let mut child = env
        .cmd(&["batch", "three.csv", "--years", "2", "--json"])
        .env("FINTEL_FAKE_CLOCK", fake_clock_var(&clock))
        .env("FINTEL_REQUESTS_PER_DAY", "4")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    until("the day's quota spent", Duration::from_secs(60), || {
        batch_state(&env).as_deref() == Some("waiting_reset")
    })
    .await;
    let sim = env.sim.as_ref().unwrap();
    assert_eq!(sim.stats().gemini.total.received, 4);
    assert_eq!(
        sql_i64(
            &env,
            "SELECT COUNT(*) FROM calls WHERE quota_date = '2026-05-04'"
        ),
        4,
        "the first day's quota should be spent before midnight; this machine is too slow"
    );

    signal(&child, "-STOP");
    // Readable while the process sleeps.
    let st = json(&env.run(&["batch", "status", "--json"]));
    assert_eq!(st["state"], "waiting_reset");
    assert!(st["state_reason"].as_str().unwrap().contains("resuming at"));
    // Well past 00:05 even by the clock of the process, which trails ours by its start-up.
    let past_reset: Timestamp = "2026-05-05T00:10:00-07:00".parse().unwrap();
    while clock.now() < past_reset {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        sim.stats().gemini.total.received,
        4,
        "a stopped process sends nothing"
    );
    signal(&child, "-CONT");
    let woke = Instant::now();
    until(
        "a request right after waking",
        Duration::from_secs(60),
        || sim.stats().gemini.total.received > 4,
    )
    .await;
    let delay = woke.elapsed();
    assert!(
        delay < Duration::from_secs(2),
        "the first request after waking took {delay:?} ({} simulated seconds)",
        delay.as_secs_f64() * clock.speed()
    );
    let status = wait_for(&mut child, Duration::from_secs(60));
    let stderr = read_all(child.stderr.take().unwrap());
    assert_eq!(status.code(), Some(0), "{stderr}");
    let doc: Value = serde_json::from_str(&read_all(child.stdout.take().unwrap())).unwrap();
    assert_eq!(doc["state"], "completed");
    assert_eq!(doc["counts"]["failed"], 0);
    let stats = sim.stats();
    assert_eq!(
        stats.gemini.total.over_limit, 0,
        "no request over the limit"
    );
    assert_eq!(stats.gemini.total.refused_rpd, 0);
    assert_eq!(
        stats.gemini.total.received as i64,
        env.completed_results(),
        "one request per result"
    );
    for (date, counters) in &stats.gemini.dates {
        let n = counters.projects.get("p1").map_or(0, |c| c.received);
        assert!(n <= 4, "{n} requests on {date}");
    }
    assert_eq!(stats.gemini.dates.len(), 2, "two quota days");
}

// ---------------------------------------------------------------------------- exit codes

#[tokio::test(flavor = "multi_thread")]
async fn exit_3_when_a_batch_ends_with_failed_tasks_and_status_lists_them() {
    let env = Env::with(0, |c| c.gemini.faults.invalid_json = 1.0).await;
    std::fs::write(env.dir.path().join("one.csv"), fintel_sim::companies_csv(1)).unwrap();
    let out = env.run(&[
        "batch",
        "one.csv",
        "--years",
        "2",
        "--max-retries",
        "0",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--retry-failed"));
    let doc = json(&out);
    assert_run_shape("batch", &doc);
    assert_eq!(doc["exit_code"], 3);
    assert_eq!(doc["state"], "completed");
    let failed = doc["counts"]["failed"].as_u64().unwrap();
    assert!(failed >= 1);
    let id = doc["batch_id"].as_str().unwrap();
    let st = json(&env.run(&["batch", "status", id, "--failed", "--json"]));
    assert_each("status.failed", &st["failed"], ENDED_TASK);
    assert_eq!(st["failed"].as_array().unwrap().len() as u64, failed);
    for t in st["failed"].as_array().unwrap() {
        assert_eq!(t["state"], "failed");
        assert_eq!(t["attempts"], 1, "one attempt, as --max-retries 0 says");
        assert!(
            t["reason"].as_str().unwrap().contains("after 1 attempts"),
            "{t}"
        );
    }
    assert!(st.get("skipped").is_none(), "only asked for --failed");
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_130_on_a_second_signal_while_calls_are_in_flight() {
    let env = Env::new(20_000).await;
    let mut child = env
        .cmd(&["batch", "companies.csv", "--years", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    until("a call in flight", Duration::from_secs(60), || {
        sql_i64_or_zero(&env, "SELECT COUNT(*) FROM calls") >= 1
    })
    .await;
    signal(&child, "-TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(child.try_wait().unwrap().is_none(), "still draining");
    signal(&child, "-TERM");
    let status = wait_for(&mut child, Duration::from_secs(10));
    let stderr = read_all(child.stderr.take().unwrap());
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("exiting at once"), "{stderr}");
    // Nothing is lost: the batch is there to resume.
    let list = json(&env.run(&["batch", "--list-incomplete", "--json"]));
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_1_on_a_damaged_database_and_2_on_a_file_that_is_no_database() {
    let env = Env::new(0).await;
    std::fs::write(env.dir.path().join("one.csv"), fintel_sim::companies_csv(1)).unwrap();
    let out = env.run(&["batch", "one.csv", "--years", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // The root pages of the batches and tasks tables overwritten: the file opens as a
    // database, but those tables cannot be read.
    let (page_size, roots) = {
        let conn = rusqlite::Connection::open(env.db()).unwrap();
        conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
        let page_size: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        let mut stmt = conn
            .prepare("SELECT rootpage FROM sqlite_master WHERE name IN ('batches', 'tasks')")
            .unwrap();
        let roots: Vec<i64> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        // Back to WAL, as fintel leaves it, so that opening it changes nothing.
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        (page_size as usize, roots)
    };
    assert_eq!(roots.len(), 2);
    let mut bytes = std::fs::read(env.db()).unwrap();
    for root in roots {
        let start = (root as usize - 1) * page_size;
        for b in &mut bytes[start..start + page_size] {
            *b = 0xA5;
        }
    }
    std::fs::write(env.db(), &bytes).unwrap();
    let out = env.run(&["batch", "status", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "no JSON for a failure");
    let err = text(&out.stderr);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("malformed"), "{err}");
    assert!(
        std::fs::read(env.db()).unwrap() == bytes,
        "the file is untouched"
    );
    let doctor = json(&env.run(&["doctor", "--json"]));
    assert_eq!(check(&doctor, "database")["ok"], false, "{doctor}");

    // A file that is not a database at all is bad input: exit 2, with what to do.
    let junk = b"these are notes, not a database\n".repeat(300);
    std::fs::write(env.db(), &junk).unwrap();
    let out = env.run(&["batch", "status"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("backup"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        std::fs::read(env.db()).unwrap() == junk,
        "the file is untouched"
    );
    let out = env.run(&["doctor", "--json"]);
    assert_eq!(out.status.code(), Some(4));
    let database = check(&json(&out), "database").clone();
    assert_eq!(database["ok"], false);
    assert!(
        database["detail"].as_str().unwrap().contains("backup"),
        "{database}"
    );
}

// --------------------------------------------------------------------------- --json shapes

#[tokio::test(flavor = "multi_thread")]
async fn every_json_output_parses_and_has_its_documented_shape() {
    let env = Env::new(0).await;
    let mut csv = fintel_sim::companies_csv(2);
    csv.push_str("NOSUCHCO,,\n");
    std::fs::write(env.dir.path().join("mixed.csv"), csv).unwrap();

    // batch FILE --json, with an unknown ticker recorded as skipped.
    let run = json(&env.run(&[
        "batch",
        "mixed.csv",
        "--years",
        "1",
        "--skip-unknown",
        "--json",
    ]));
    assert_run_shape("batch", &run);
    assert_eq!(run["exit_code"], 0);
    let id = run["batch_id"].as_str().unwrap().to_string();

    // batch status --json --failed --skipped.
    let out = env.run(&["batch", "status", &id, "--failed", "--skipped", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let st = json(&out);
    let mut fields = LIST_ENTRY.to_vec();
    fields.extend([
        ("estimated_finish", T::OptStr),
        ("batches_ahead", T::Num),
        ("requests_ahead", T::Num),
        ("reasons", T::Arr),
        ("result_models", T::Arr),
        ("model_switches", T::Arr),
        ("failed", T::Arr),
        ("skipped", T::Arr),
    ]);
    assert_shape("status", &st, &fields);
    assert_shape("status.counts", &st["counts"], COUNTS);
    assert_each(
        "status.reasons",
        &st["reasons"],
        &[("state", T::Str), ("reason", T::Str), ("count", T::Num)],
    );
    assert_each("status.skipped", &st["skipped"], ENDED_TASK);
    assert!(st["failed"].as_array().unwrap().is_empty());
    assert!(st["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["ticker"] == "NOSUCHCO"));

    // batch --resume ID --json, analyze --json: the same object as a run.
    let out = env.run(&["batch", "--resume", &id, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_run_shape("resume", &json(&out));
    let ticker: String = rusqlite::Connection::open(env.db())
        .unwrap()
        .query_row(
            "SELECT ticker FROM results WHERE ticker IS NOT NULL LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let out = env.run(&["analyze", &ticker, "--years", "2", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let analyzed = json(&out);
    assert_run_shape("analyze", &analyzed);
    let second = analyzed["batch_id"].as_str().unwrap().to_string();

    // batch --list-incomplete --json: a batch stopped half-way.
    rusqlite::Connection::open(env.db())
        .unwrap()
        .execute(
            "UPDATE batches SET state = 'stopped', state_reason = 'stopped by request' WHERE id = ?1",
            [&second],
        )
        .unwrap();
    let list = json(&env.run(&["batch", "--list-incomplete", "--json"]));
    assert_each("list-incomplete", &list, LIST_ENTRY);
    assert_shape("list-incomplete.counts", &list[0]["counts"], COUNTS);
    assert_eq!(list[0]["id"], second.as_str());

    // batch cancel / delete --json.
    let out = env.run(&["batch", "cancel", &second, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let cancelled = json(&out);
    assert_shape(
        "cancel",
        &cancelled,
        &[("batch_id", T::Str), ("state", T::Str)],
    );
    assert_eq!(cancelled["state"], "cancelled");
    let out = env.run(&["batch", "delete", &second, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_shape(
        "delete",
        &json(&out),
        &[
            ("batch_id", T::Str),
            ("deleted", T::Bool),
            ("results_purged", T::Num),
        ],
    );

    // keys --json.
    let keys = json(&env.run(&["keys", "--json"]));
    assert_shape(
        "keys",
        &keys,
        &[
            ("quota_date", T::Str),
            ("next_reset", T::Str),
            ("next_reset_local_and_pacific", T::Str),
            ("requests_per_day", T::Num),
            ("buckets", T::Arr),
            ("suggested_grouping", T::OptStr),
        ],
    );
    assert_each(
        "keys.buckets",
        &keys["buckets"],
        &[
            ("bucket", T::Str),
            ("project", T::OptStr),
            ("spent_elsewhere", T::Bool),
            ("keys", T::Arr),
            ("used_today", T::Num),
            ("answered_today", T::Num),
            ("uncertain_today", T::Num),
            ("requests_per_day", T::Num),
            ("requests_per_minute", T::Num),
            ("input_tokens_per_minute", T::Num),
            ("state", T::Str),
        ],
    );
    assert_each(
        "keys.buckets[0].keys",
        &keys["buckets"][0]["keys"],
        &[("label", T::Str), ("disabled", T::OptStr)],
    );
    assert!(keys["buckets"][0]["used_today"].as_u64().unwrap() > 0);

    // workflows --json.
    let wf = json(&env.run(&["workflows", "--json"]));
    assert_each(
        "workflows",
        &wf,
        &[
            ("name", T::Str),
            ("description", T::Str),
            ("kind", T::Str),
            ("min_years", T::Num),
            ("max_years", T::OptNum),
            ("multi_year", T::Bool),
            ("version", T::Str),
            ("origin", T::Str),
        ],
    );

    // config --json: the object the plain form prints, secrets masked.
    let out = env.run(&["config", "--json"]);
    assert_no_secret(&out, &[KEY]);
    let config = json(&out);
    let plain: Value = serde_json::from_slice(&env.run(&["config"]).stdout).unwrap();
    assert_eq!(config, plain);
    // Its fields follow the configuration, which grows; these are the ones scripts rely on.
    for (k, t) in [
        ("data_dir", T::Str),
        ("config_file", T::OptStr),
        ("database", T::Str),
        ("sec", T::Obj),
        ("model", T::Obj),
        ("buckets", T::Arr),
        ("run", T::Obj),
    ] {
        assert!(
            has_type(&config[k], t),
            "config.{k} should be {t:?}: {config}"
        );
    }
    // No model is configured: pre-flight chooses one from the provider's list.
    assert_eq!(config["model"]["name"], Value::Null);
    assert_eq!(
        config["buckets"][0]["keys"][0],
        "GOOGLE_API_KEY_1 (test...6789)"
    );

    // plan --json.
    let out = env.run(&["plan", "companies.csv", "--years", "2", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_shape(
        "plan",
        &json(&out),
        &[
            ("companies", T::Num),
            ("unknown_tickers", T::Num),
            ("years", T::Num),
            ("analysis_type", T::Str),
            ("requests_total", T::Num),
            ("already_stored", T::Num),
            ("requests_needed", T::Num),
            ("batches_ahead", T::Num),
            ("requests_ahead", T::Num),
            ("pack", T::Str),
            ("requests_per_day", T::Num),
            ("quota_days", T::Num),
            ("expected_finish_quota_day", T::OptStr),
            ("estimated_finish", T::OptStr),
            ("keys", T::Num),
            ("projects", T::Num),
            ("assumption", T::Str),
        ],
    );

    // filings TICKER --json.
    let out = env.run(&["filings", &ticker, "--years", "2", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let filings = json(&out);
    assert_shape(
        "filings",
        &filings,
        &[
            ("cik", T::Num),
            ("ticker", T::OptStr),
            ("name", T::Str),
            ("request", T::Obj),
            ("forms", T::Arr),
            ("include_amendments", T::Bool),
            ("years", T::Arr),
        ],
    );
    assert_each(
        "filings.years",
        &filings["years"],
        &[
            ("fiscal_year", T::Num),
            ("form", T::OptStr),
            ("period", T::OptStr),
            ("period_estimated", T::Bool),
            ("filed", T::OptStr),
            ("accession", T::OptStr),
            ("document_url", T::OptStr),
            ("filing_index_url", T::OptStr),
            ("cached", T::Bool),
            ("transition", T::Bool),
            ("amendment", T::Bool),
            ("skip_reason", T::OptStr),
            ("amendments_not_picked", T::Arr),
        ],
    );

    // text FILE --json, on a synthetic 10-K.
    let universe = Universe::generate(&SimConfig::default());
    let company = &universe.companies()[0];
    let filing = universe
        .filings(company)
        .into_iter()
        .find(|f| f.form == "10-K")
        .unwrap();
    std::fs::write(
        env.dir.path().join("10k.htm"),
        fintel_sim::filing_html(company, &filing, universe.seed()),
    )
    .unwrap();
    let out = env.run(&["text", "10k.htm", "--budget", "2000", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_shape(
        "text",
        &json(&out),
        &[
            ("form", T::Str),
            ("plain_text_source", T::Bool),
            ("text", T::Str),
            ("tokens", T::Num),
            ("document_tokens", T::Num),
            ("sections", T::Arr),
            ("was_cut", T::Bool),
            ("cut", T::Arr),
            ("facts", T::OptArr),
            ("key_financials", T::OptObj),
        ],
    );

    // results TICKER --json.
    let out = env.run(&["results", &ticker, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_each(
        "results",
        &json(&out),
        &[
            ("ticker", T::OptStr),
            ("cik", T::Num),
            ("company_name", T::OptStr),
            ("fiscal_year", T::OptNum),
            ("fiscal_year_label", T::OptStr),
            ("form", T::OptStr),
            ("accession", T::OptStr),
            ("analysis_type", T::Str),
            ("analysis_version", T::Str),
            ("model", T::Str),
            ("prompt_tokens", T::Num),
            ("output_tokens", T::Num),
            ("thinking_tokens", T::Num),
            ("attempts", T::Num),
            ("document_url", T::OptStr),
            ("document_sha256", T::OptStr),
            ("fitting", T::OptStr),
            ("packed_with", T::OptStr),
            ("created_at", T::Str),
            ("result", T::Obj),
        ],
    );

    // export --json (to a file; to stdout the stream is the output).
    let out = env.run(&[
        "export",
        "--format",
        "jsonl",
        "--output",
        "out.jsonl",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_shape(
        "export",
        &json(&out),
        &[("rows", T::Num), ("columns", T::Num), ("path", T::Str)],
    );

    // db maintain --json.
    let out = env.run(&["db", "maintain", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_shape(
        "db maintain",
        &json(&out),
        &[
            ("db_bytes_before", T::Num),
            ("wal_bytes_before", T::Num),
            ("db_bytes_after", T::Num),
            ("wal_bytes_after", T::Num),
            ("checkpoint_busy", T::Bool),
            ("problems", T::Arr),
            ("backup", T::OptStr),
            ("backup_bytes", T::Num),
            ("deleted_backups", T::Arr),
        ],
    );

    // cache stats / prune --json.
    let out = env.run(&["cache", "stats", "--json"]);
    assert_shape(
        "cache stats",
        &json(&out),
        &[
            ("documents", T::Num),
            ("bytes", T::Num),
            ("oldest", T::OptStr),
            ("newest", T::OptStr),
        ],
    );
    let out = env.run(&["cache", "prune", "--older-than", "30", "--json"]);
    assert_shape(
        "cache prune",
        &json(&out),
        &[("documents_removed", T::Num), ("bytes_removed", T::Num)],
    );

    // doctor --json.
    let out = env.run(&["doctor", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_doctor_shape(&json(&out));
}

// ---------------------------------------------------------------------------- fiscal years

/// The fiscal years of `company`'s original annual reports filed on or before `as_of`, with
/// their accession numbers and filing dates.
fn originals(
    universe: &Universe,
    company: &Company,
    as_of: jiff::civil::Date,
) -> BTreeMap<i32, (String, jiff::civil::Date)> {
    universe
        .filings(company)
        .into_iter()
        .filter(|f| f.form == company.form.name() && f.filing_date <= as_of)
        .filter_map(|f| {
            f.fiscal_year
                .map(|y| (i32::from(y), (f.accession, f.filing_date)))
        })
        .collect()
}

/// `(fiscal_year, state, reason, accession, fiscal_year_label)` of a company's year tasks.
type YearRow = (i32, String, Option<String>, Option<String>, Option<String>);

fn year_tasks(env: &Env, batch: &str, cik: u64) -> Vec<YearRow> {
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT t.fiscal_year, t.state, t.reason, t.accession, r.fiscal_year_label \
             FROM tasks t JOIN companies c ON c.id = t.company_id \
             LEFT JOIN results r ON r.id = t.result_id \
             WHERE t.batch_id = ?1 AND c.cik = ?2 AND t.kind = 'year' ORDER BY t.fiscal_year",
        )
        .unwrap();
    stmt.query_map(rusqlite::params![batch, cik as i64], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// What a company's year tasks must be for `years`, given the filings on or before `as_of`.
fn expect_years(
    universe: &Universe,
    company: &Company,
    as_of: jiff::civil::Date,
    years: &[i32],
    got: &[YearRow],
) {
    let filed = originals(universe, company, as_of);
    let got_years: Vec<i32> = got.iter().map(|r| r.0).collect();
    assert_eq!(got_years, years, "{}: years asked for", company.name);
    for (year, state, reason, accession, label) in got {
        match filed.get(year) {
            Some((expected, filed_on)) => {
                assert_eq!(state, "completed", "{} FY{year}: {reason:?}", company.name);
                assert_eq!(
                    accession.as_ref(),
                    Some(expected),
                    "{} FY{year}",
                    company.name
                );
                if filed_on.year() >= 2020 {
                    // Inline XBRL carries the company's own label of the year.
                    assert_eq!(label.as_deref(), Some(year.to_string().as_str()));
                }
            }
            None => {
                assert_eq!(state, "skipped", "{} FY{year}", company.name);
                assert_eq!(
                    reason.as_deref(),
                    Some(format!("no annual report for FY{year}").as_str()),
                    "{} FY{year}",
                    company.name
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn years_are_anchored_per_company_on_its_latest_report_filed_by_the_creation_day() {
    // Mid-March: many December companies have not filed last year's 10-K yet, though the
    // simulator already serves it; a batch created today must not use it.
    let created: Timestamp = "2026-03-10T18:00:00Z".parse().unwrap();
    let as_of = fintel_time::pacific_date(created);
    let mut config = small_sim_config();
    config.sec.companies = 1_000;
    let universe = Universe::generate(&config);
    let anchor = |c: &Company| *originals(&universe, c, as_of).keys().last().unwrap();
    let listed = |c: &&Company| !c.tickers.is_empty() && c.form.name() == "10-K";
    let late = universe
        .companies()
        .iter()
        .filter(listed)
        .find(|c| {
            universe
                .filings(c)
                .iter()
                .any(|f| f.form == "10-K" && f.filing_date > as_of)
                && c.gap_years.is_empty()
        })
        .expect("a company that files after the creation day");
    let gap = universe
        .companies()
        .iter()
        .filter(listed)
        .filter(|c| !c.gap_years.is_empty())
        .min_by_key(|c| anchor(c) - i32::from(c.gap_years[0]))
        .expect("a company with a year missing");
    let delisted = universe
        .companies()
        .iter()
        .find(|c| c.delisted && c.gap_years.is_empty())
        .expect("a delisted company");
    let n = (anchor(gap) - i32::from(gap.gap_years[0]) + 1).max(3);
    assert!(anchor(late) < 2025, "its FY2025 report is not filed yet");
    assert!(anchor(delisted) < anchor(late), "delisted years ago");

    // 60x only makes SEC's rate limit (per simulated second) pass quickly; the batches take
    // simulated minutes, still on the creation day.
    let clock = Arc::new(FakeClock::new(created, 60.0));
    let env = Env::start(config, clock.clone()).await;
    let csv = format!(
        "ticker,company_name,cik\n{},,\n{},,\n,,{}\n",
        late.display_ticker().unwrap(),
        gap.display_ticker().unwrap(),
        delisted.cik
    );
    std::fs::write(env.dir.path().join("picks.csv"), csv).unwrap();
    let run = |args: &[&str]| -> String {
        let out = env
            .cmd(args)
            .env("FINTEL_FAKE_CLOCK", fake_clock_var(&clock))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        json(&out)["batch_id"].as_str().unwrap().to_string()
    };

    let id = run(&["batch", "picks.csv", "--years", &n.to_string(), "--json"]);
    assert_eq!(
        rusqlite::Connection::open(env.db())
            .unwrap()
            .query_row("SELECT as_of_date FROM batches WHERE id = ?1", [&id], |r| {
                r.get::<_, String>(0)
            })
            .unwrap(),
        as_of.to_string()
    );
    for c in [late, gap, delisted] {
        let last = anchor(c);
        let years: Vec<i32> = (last - n + 1..=last).collect();
        expect_years(&universe, c, as_of, &years, &year_tasks(&env, &id, c.cik));
    }
    let gap_year = i32::from(gap.gap_years[0]);
    let st = json(&env.run(&["batch", "status", &id, "--skipped", "--json"]));
    assert!(
        st["skipped"].as_array().unwrap().iter().any(|t| {
            t["fiscal_year"] == gap_year
                && t["reason"] == format!("no annual report for FY{gap_year}")
        }),
        "{st}"
    );

    // The same fixed years for every company.
    let id = run(&[
        "batch",
        "picks.csv",
        "--fiscal-years",
        "2019,2021",
        "--json",
    ]);
    for c in [late, gap, delisted] {
        expect_years(
            &universe,
            c,
            as_of,
            &[2019, 2021],
            &year_tasks(&env, &id, c.cik),
        );
    }
}
