//! A batch's life with several processes, end to end with the built binary against the
//! simulator on 127.0.0.1: a second `--resume` refused while a process runs the batch (and
//! `--join` to help it), what `status` and `--list-incomplete` show of the live process, no
//! delete under a waiting process, a cancel that stays cancelled unless `--reopen`, a resume
//! on the batch's own model, and four processes killed with `kill -9` at random until done.

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use fintel_sim::ModelConfig;
use serde_json::Value;

mod support;

use support::procs::*;
use support::*;

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}): {}\nstderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        )
    })
}

fn spawn_quiet(env: &Env, args: &[&str], rpd: &str) -> Guarded {
    Guarded(
        env.cmd(args)
            .env("FINTEL_REQUESTS_PER_DAY", rpd)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// A batch waiting for the daily reset holds no task, yet its process is alive: a second
/// `--resume` is refused naming it (exit 2), `status` and `--list-incomplete` show it instead
/// of a resume command, `delete` is refused, and `--join` adds a second process. The batch is
/// `stopped` only once neither is left. A cancel then stays cancelled: a bare `--resume` never
/// picks it, `--resume ID` says to add `--reopen`, which takes it up.
#[tokio::test(flavor = "multi_thread")]
async fn a_running_batch_is_visibly_running_and_a_second_resume_is_refused_unless_it_joins() {
    let env = Env::with(0, |c| c.gemini.projects[0].requests_per_day = 2).await;
    let rpd = "2";
    let mut first = spawn_quiet(&env, &["batch", "companies.csv", "--years", "3"], rpd);
    until("the day's quota spent", Duration::from_secs(60), || {
        batch_state(&env).as_deref() == Some("waiting_reset")
    })
    .await;
    let id = batch_id(&env).unwrap();
    let pid = first.id().to_string();

    // A second resume, bare or by id: refused, naming the process.
    for args in [
        vec!["batch", "--resume"],
        vec!["batch", "--resume", id.as_str()],
    ] {
        let out = env
            .cmd(&args)
            .env("FINTEL_REQUESTS_PER_DAY", rpd)
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(&format!("already running in process {pid} on ")),
            "{err}"
        );
        assert!(err.contains("--join"), "{err}");
    }

    // status and --list-incomplete show the live process, not a resume command.
    let status = env.run(&["batch", "status", &id, "--json"]);
    let v = json(&status);
    assert_eq!(v["processes"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["processes"][0]["pid"].to_string(), pid);
    assert!(v["processes"][0]["since"].is_string());
    assert!(v["resume_command"].is_null(), "{v}");
    let status = text(&env.run(&["batch", "status", &id]).stdout);
    assert!(
        status.contains(&format!("process    {pid} on ")),
        "{status}"
    );
    assert!(status.contains("--join"), "{status}");
    assert!(!status.contains("resume with"), "{status}");
    let list = json(&env.run(&["batch", "--list-incomplete", "--json"]));
    assert_eq!(list[0]["processes"][0]["pid"].to_string(), pid, "{list}");
    let list = text(&env.run(&["batch", "--list-incomplete"]).stdout);
    assert!(
        list.contains(&format!("running in process {pid} on ")),
        "{list}"
    );

    // No delete under a process waiting for the reset.
    let out = env.run(&["batch", "delete", &id]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("process {pid} on ")), "{err}");
    assert_eq!(batch_id(&env).as_deref(), Some(id.as_str()), "still there");

    // --join adds a process; stopping it leaves the batch to the first.
    let mut second = spawn_quiet(&env, &["batch", "--resume", &id, "--join"], rpd);
    until("two live processes", Duration::from_secs(60), || {
        let v = json(&env.run(&["batch", "status", &id, "--json"]));
        v["processes"].as_array().map(Vec::len) == Some(2)
    })
    .await;
    signal(&second, "-TERM");
    assert_eq!(
        wait_for(&mut second, Duration::from_secs(60)).code(),
        Some(0)
    );
    assert_ne!(
        batch_state(&env).as_deref(),
        Some("stopped"),
        "the first still runs it"
    );
    signal(&first, "-TERM");
    assert_eq!(
        wait_for(&mut first, Duration::from_secs(60)).code(),
        Some(0)
    );
    assert_eq!(batch_state(&env).as_deref(), Some("stopped"));
    let v = json(&env.run(&["batch", "status", &id, "--json"]));
    assert_eq!(v["processes"], serde_json::json!([]));
    assert_eq!(
        v["resume_command"].as_str(),
        Some(format!("fintel batch --resume {id}").as_str())
    );

    // Cancelled: a bare resume never takes it, --resume ID asks for --reopen.
    assert_eq!(env.run(&["batch", "cancel", &id]).status.code(), Some(0));
    let out = env.run(&["batch", "--resume"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no incomplete batch"));
    let out = env.run(&["batch", "--resume", &id]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--reopen"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(batch_state(&env).as_deref(), Some("cancelled"));
    let out = env.run(&["batch", "--resume", "--reopen"]);
    assert_eq!(out.status.code(), Some(2), "--reopen needs the id");
    let mut reopened = spawn_quiet(&env, &["batch", "--resume", &id, "--reopen"], rpd);
    until(
        "the reopened batch waits for the reset",
        Duration::from_secs(60),
        || batch_state(&env).as_deref() == Some("waiting_reset"),
    )
    .await;
    signal(&reopened, "-TERM");
    assert_eq!(
        wait_for(&mut reopened, Duration::from_secs(60)).code(),
        Some(0)
    );
    assert_eq!(batch_state(&env).as_deref(), Some("stopped"));
}

/// The batch owns its model: a resume analyses with the model the batch was created with,
/// whatever the configured default, and a resume asking for another is refused (exit 2).
#[tokio::test(flavor = "multi_thread")]
async fn a_resume_uses_the_batch_model_and_refuses_another() {
    let env = Env::with(100, |c| {
        c.gemini.models.push(ModelConfig {
            name: "gemini-2.5-pro".into(),
            min_thinking_budget: 128,
            ..ModelConfig::default()
        })
    })
    .await;
    let mut create = spawn_quiet(
        &env,
        &[
            "batch",
            "companies.csv",
            "--years",
            "2",
            "--model",
            "gemini-2.5-pro",
        ],
        "10000",
    );
    until("a first result", Duration::from_secs(60), || {
        env.completed_results() > 0
    })
    .await;
    signal(&create, "-TERM");
    assert_eq!(
        wait_for(&mut create, Duration::from_secs(60)).code(),
        Some(0)
    );
    let id = batch_id(&env).unwrap();

    let out = env.run(&["batch", "--resume", &id, "--model", "gemini-2.5-flash"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("gemini-2.5-pro") && err.contains("new batch"),
        "{err}"
    );

    // The configured default is flash; the resume still asks pro.
    let out = env.run(&["batch", "--resume"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(batch_state(&env).as_deref(), Some("completed"));
    let models = sql_string(&env, "SELECT group_concat(DISTINCT model) FROM results");
    assert_eq!(models.as_deref(), Some("gemini-2.5-pro"));
    let stats = env.sim.as_ref().unwrap().stats();
    assert_eq!(stats.gemini.total.over_limit, 0);
}

/// Four processes on one batch (the first creates it, three `--join`), killed with `kill -9`
/// at random moments and restarted with `--resume ID --join`, until the batch is done: no
/// task lost, no result twice, no limit exceeded, no process exiting 1 (as SQLITE_BUSY from a
/// deferred transaction once made them).
#[tokio::test(flavor = "multi_thread")]
async fn four_processes_killed_at_random_until_done_lose_nothing_and_never_exit_1() {
    let env = Env::with(40, |c| {
        c.gemini.projects[0].requests_per_minute = 100_000;
    })
    .await;
    std::fs::write(
        env.dir.path().join("companies.csv"),
        fintel_sim::companies_csv(20),
    )
    .unwrap();
    let start = Instant::now();
    let spawn = |args: &[&str]| -> Guarded {
        Guarded(
            env.cmd(args)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        )
    };
    let mut procs: Vec<Option<Guarded>> =
        vec![Some(spawn(&["batch", "companies.csv", "--years", "3"]))];
    until("the batch exists", Duration::from_secs(60), || {
        batch_id(&env).is_some()
    })
    .await;
    let id = batch_id(&env).unwrap();
    let join = ["batch", "--resume", id.as_str(), "--join"];
    for _ in 0..3 {
        procs.push(Some(spawn(&join)));
    }
    let mut rng = XorShift(0x2545f4914f6cdd1d);
    let mut next = move || rng.next();
    let (mut kills, mut restarts) = (0u32, 0u32);
    let mut exit_codes: Vec<i32> = Vec::new();
    let mut bad_exits: Vec<String> = Vec::new();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(100),
            "not done in time"
        );
        tokio::time::sleep(Duration::from_millis(100 + next() % 250)).await;
        // Reap the processes that ended by themselves.
        for slot in procs.iter_mut() {
            if let Some(child) = slot {
                if let Some(status) = child.try_wait().unwrap() {
                    let code = status.code().unwrap_or(-1);
                    exit_codes.push(code);
                    if code != 0 {
                        let err = read_all(child.stderr.take().unwrap());
                        bad_exits.push(format!("exit {code}: {err}"));
                    }
                    *slot = None;
                }
            }
        }
        let done = batch_state(&env).as_deref() == Some("completed");
        if done && procs.iter().all(Option::is_none) {
            break;
        }
        if done || kills >= 16 {
            continue;
        }
        // kill -9 one process at random and start another in its place.
        let victim = (next() % procs.len() as u64) as usize;
        if let Some(mut child) = procs[victim].take() {
            signal(&child, "-KILL");
            let _ = child.wait();
            kills += 1;
        }
        procs[victim] = Some(spawn(&join));
        restarts += 1;
    }
    assert!(bad_exits.is_empty(), "{bad_exits:#?}");
    let (total, completed, skipped, failed, open): (i64, i64, i64, i64, i64) =
        rusqlite::Connection::open(env.db())
            .unwrap()
            .query_row(
                "SELECT COUNT(*), SUM(state = 'completed'), SUM(state = 'skipped'), \
                 SUM(state = 'failed'), SUM(state IN ('pending', 'running')) \
                 FROM tasks WHERE kind = 'year'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap();
    let results = env.completed_results();
    let distinct_results = sql_i64(
        &env,
        "SELECT COUNT(DISTINCT result_id) FROM tasks WHERE kind = 'year' AND state = 'completed'",
    );
    let stats = env.sim.as_ref().unwrap().stats();
    eprintln!(
        "chaos: kills {kills}, restarts {restarts}, year tasks {total}, results {results}, \
         skipped {skipped}, failed {failed}, lost {open}, duplicate results {}, \
         repeated requests (calls in flight at kills) {}, over-limit {}, exit codes {exit_codes:?}, \
         {:.1} s",
        results - distinct_results,
        stats.gemini.total.duplicates,
        stats.gemini.total.over_limit,
        start.elapsed().as_secs_f64()
    );
    assert!(kills >= 8, "only {kills} kills before the batch finished");
    assert_eq!(open, 0, "no task lost");
    assert_eq!(failed, 0);
    assert_eq!(completed + skipped, total);
    assert_eq!(
        results, completed,
        "one result per completed task, none twice"
    );
    assert_eq!(distinct_results, completed);
    assert_eq!(stats.gemini.total.over_limit, 0);
    assert!(
        stats.gemini.total.duplicates <= kills as u64 * 2,
        "only calls in flight at a kill may repeat"
    );
}
