//! The engine against a real SQLite file, with test doubles for SEC and the provider.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fintel_engine::*;
use fintel_llm::CallError;
use support::*;
use tokio::sync::watch;

fn no_shutdown() -> (watch::Sender<bool>, watch::Receiver<bool>) {
    watch::channel(false)
}

#[tokio::test]
async fn a_batch_runs_to_completion_with_gap_years_skipped() {
    let h = Harness::new(6, FakeProvider::new(), buckets(2, 1000, 1000));
    let t = tickers(6);
    let batch = h
        .create(&names(&t), YearsSpec::Latest(7), BatchSettings::default())
        .await;
    let owner = h.owner("a");
    let (_tx, rx) = no_shutdown();
    let out = h
        .engine(&owner, fast_settings())
        .run(&batch, rx)
        .await
        .unwrap();
    assert_eq!(out, RunOutcome::Completed { failed: 0 });
    let counts = h.store.task_counts(&batch).unwrap();
    assert_eq!(
        (counts.completed, counts.skipped, counts.total),
        (41, 1, 42)
    );
    assert_eq!(h.result_keys().len(), 41);
    assert_eq!(h.task_state(&batch, "SIM4", 2019), "skipped");
    let groups = h.store.reason_groups(&batch).unwrap();
    assert_eq!(groups[0].reason, "no annual report for FY2019");
    // Every result carries its provenance.
    let (url, sha, attempts): (String, String, i64) = h
        .store
        .conn()
        .query_row(
            "SELECT document_url, document_sha256, attempts FROM results LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert!(url.starts_with("https://sec.test/"));
    assert_eq!(sha.len(), 64);
    assert_eq!(attempts, 1);
    // One model call per result, no more.
    assert_eq!(h.provider.total.load(Ordering::SeqCst), 41);
}

#[tokio::test]
async fn stored_results_are_reused_by_a_later_batch_unless_forced() {
    let h = Harness::new(3, FakeProvider::new(), buckets(1, 1000, 1000));
    let t = tickers(3);
    let owner = h.owner("a");
    let first = h
        .create(&names(&t), YearsSpec::Latest(2), BatchSettings::default())
        .await;
    let (_tx, rx) = no_shutdown();
    h.engine(&owner, fast_settings())
        .run(&first, rx.clone())
        .await
        .unwrap();
    assert_eq!(h.provider.total.load(Ordering::SeqCst), 6);

    let second = h
        .create(&names(&t), YearsSpec::Latest(3), BatchSettings::default())
        .await;
    h.engine(&owner, fast_settings())
        .run(&second, rx.clone())
        .await
        .unwrap();
    assert_eq!(
        h.provider.total.load(Ordering::SeqCst),
        9,
        "only the new year is asked"
    );
    assert_eq!(h.store.task_counts(&second).unwrap().completed, 9);

    let forced = BatchSettings {
        force: true,
        ..BatchSettings::default()
    };
    let created_before: Vec<i64> = h.result_column("created_at");
    let ids_before: Vec<i64> = h.result_column("id");
    // The forced redo happens an hour later, so its answers are told apart by their time.
    h.clock.advance(Duration::from_secs(3600));
    let third = h.create(&names(&t), YearsSpec::Latest(1), forced).await;
    h.engine(&owner, fast_settings())
        .run(&third, rx)
        .await
        .unwrap();
    assert_eq!(h.provider.total.load(Ordering::SeqCst), 12);
    assert_eq!(h.result_keys().len(), 9, "one current result per key");
    assert_eq!(
        h.result_column("id"),
        ids_before,
        "same rows, so every task sees the new answer"
    );
    let created_after: Vec<i64> = h.result_column("created_at");
    let replaced = created_before
        .iter()
        .zip(&created_after)
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(
        replaced, 3,
        "the three forced answers are the current results"
    );
    // The answers they replaced were paid for: kept as superseded versions.
    let superseded: i64 = h
        .store
        .conn()
        .query_row(
            "SELECT COUNT(*) FROM superseded_results s JOIN results r ON r.id = s.result_id \
             WHERE s.created_at < r.created_at AND s.result_key = r.result_key",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(superseded, 3);
    // Every task of the forced batch points to its new, current answer.
    let stale: i64 = h
        .store
        .conn()
        .query_row(
            "SELECT COUNT(*) FROM tasks t JOIN results r ON r.id = t.result_id \
             WHERE t.batch_id = ?1 AND r.created_at < ?2",
            rusqlite::params![third, created_after.iter().max().unwrap()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stale, 0);
}

#[tokio::test]
async fn retries_are_capped_then_failed_and_retry_failed_brings_them_back() {
    let healthy = Arc::new(AtomicBool::new(false));
    let flag = healthy.clone();
    let provider = FakeProvider::with_script(Arc::new(move |prompt: &str, _n| {
        (prompt.starts_with("SIM1 FY2024") && !flag.load(Ordering::SeqCst)).then(|| {
            CallError::Transient {
                message: "503 UNAVAILABLE".into(),
                reached_server: true,
            }
        })
    }));
    let h = Harness::new(3, provider, buckets(1, 1000, 1000));
    let t = tickers(3);
    let batch = h
        .create(&names(&t), YearsSpec::Latest(2), BatchSettings::default())
        .await;
    let owner = h.owner("a");
    let (_tx, rx) = no_shutdown();
    // The attempt cap alone decides here: no minimum span of the streak of failures.
    let settings = EngineSettings {
        transient_min_streak: Duration::ZERO,
        ..fast_settings()
    };
    let out = h
        .engine(&owner, settings)
        .run(&batch, rx.clone())
        .await
        .unwrap();
    assert_eq!(out, RunOutcome::Completed { failed: 1 });
    assert_eq!(h.task_state(&batch, "SIM1", 2024), "failed");
    assert_eq!(
        h.task_field(&batch, "SIM1", 2024, "attempts"),
        3,
        "max_retries 2 = 3 attempts"
    );
    assert_eq!(h.provider.calls_for("SIM1 FY2024"), 3);
    let failed = h.store.ended_tasks(&batch, "failed").unwrap();
    assert!(
        failed[0].reason.as_deref().unwrap().contains("503"),
        "{failed:?}"
    );

    healthy.store(true, Ordering::SeqCst);
    assert_eq!(h.store.requeue_failed(&batch, start_time()).unwrap(), 1);
    let out = h
        .engine(&owner, fast_settings())
        .run(&batch, rx)
        .await
        .unwrap();
    assert_eq!(out, RunOutcome::Completed { failed: 0 });
    assert_eq!(h.task_state(&batch, "SIM1", 2024), "completed");
    assert_eq!(h.provider.calls_for("SIM1 FY2024"), 4);
}

#[tokio::test]
async fn quota_refusals_never_count_as_attempts() {
    let provider = FakeProvider::with_script(Arc::new(|prompt: &str, n| {
        (prompt.starts_with("SIM0 FY2024") && n <= 2).then(|| match n {
            1 => CallError::DailyQuotaExhausted {
                message: "PerDay".into(),
                project: None,
            },
            _ => CallError::RateLimited {
                retry_after: Some(Duration::from_secs(20)),
                message: "PerMinute".into(),
                project: None,
            },
        })
    }));
    let h = Harness::new(2, provider, buckets(1, 1000, 1000));
    let t = tickers(2);
    let batch = h
        .create(
            &names(&t),
            YearsSpec::Latest(1),
            BatchSettings {
                max_retries: 0,
                ..Default::default()
            },
        )
        .await;
    let owner = h.owner("a");
    let (_tx, rx) = no_shutdown();
    let out = h
        .engine(&owner, fast_settings())
        .run(&batch, rx)
        .await
        .unwrap();
    assert_eq!(
        out,
        RunOutcome::Completed { failed: 0 },
        "with max_retries 0 any counted attempt would fail it"
    );
    assert_eq!(h.task_field(&batch, "SIM0", 2024, "attempts"), 0);
    let task_id = h.task_field(&batch, "SIM0", 2024, "id");
    assert_eq!(
        h.store.calls_of_task(task_id).unwrap(),
        3,
        "refused requests are in the ledger"
    );
}

#[tokio::test]
async fn a_daily_refusal_on_the_first_request_after_reset_backs_off_instead_of_sleeping_a_day() {
    let provider = FakeProvider::with_script(Arc::new(|_: &str, n| {
        (n == 1).then(|| CallError::DailyQuotaExhausted {
            message: "PerDay".into(),
            project: None,
        })
    }));
    let h = Harness::new(1, provider, buckets(1, 1000, 1000));
    let batch = h
        .create(&["SIM0"], YearsSpec::Latest(1), BatchSettings::default())
        .await;
    let owner = h.owner("a");
    let (_tx, rx) = no_shutdown();
    h.engine(&owner, fast_settings())
        .run(&batch, rx)
        .await
        .unwrap();
    let waited = fintel_time::span_between(start_time(), fintel_time::Clock::now(&h.clock));
    assert!(waited >= Duration::from_secs(5 * 60), "{waited:?}");
    assert!(
        waited < Duration::from_secs(3600),
        "slept far too long: {waited:?}"
    );
}

/// Runs `companies` x `years` (one retry per task) through a provider that answers 503 for
/// the first 10 minutes; returns the harness, its outcome and the highest attempt count of a
/// year task.
async fn run_through_outage(companies: usize, years: u32) -> (Harness, RunOutcome, i64) {
    let clock_for_script = Arc::new(std::sync::Mutex::new(None::<fintel_time::ManualClock>));
    let c2 = clock_for_script.clone();
    let provider = FakeProvider::with_script(Arc::new(move |_: &str, _| {
        let clock = c2.lock().unwrap().clone()?;
        let now = fintel_time::Clock::now(&clock);
        let outage_end = start_time() + jiff::SignedDuration::from_mins(10);
        (now < outage_end).then(|| CallError::Transient {
            message: "503 model overloaded".into(),
            reached_server: true,
        })
    }));
    let h = Harness::new(companies, provider, buckets(2, 1000, 1000));
    *clock_for_script.lock().unwrap() = Some(h.clock.clone());
    let t = tickers(companies);
    let settings = BatchSettings {
        max_retries: 1,
        ..Default::default()
    };
    let batch = h
        .create(&names(&t), YearsSpec::Latest(years), settings)
        .await;
    let owner = h.owner("a");
    let (_tx, rx) = no_shutdown();
    let out = h
        .engine(&owner, fast_settings())
        .run(&batch, rx)
        .await
        .unwrap();
    let max_attempts: i64 = h
        .store
        .conn()
        .query_row(
            "SELECT MAX(attempts) FROM tasks WHERE kind = 'year'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    (h, out, max_attempts)
}

#[tokio::test]
async fn an_outage_fails_no_task_and_costs_no_attempt() {
    let (h, out, max_attempts) = run_through_outage(8, 2).await;
    assert_eq!(out, RunOutcome::Completed { failed: 0 });
    let conn = h.store.conn();
    assert_eq!(
        max_attempts, 0,
        "failures inside an outage are not attempts"
    );
    let probes_during_outage: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM calls WHERE outcome = 'transient'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    // 5 to open the breaker (plus at most the other in-flight ones), then one probe at 1, 2, 4,
    // 8 minutes: far fewer than sending every task into the outage.
    assert!(probes_during_outage <= 5 + 4 + 4, "{probes_during_outage}");
}

#[tokio::test]
async fn a_second_engine_never_takes_live_work_of_the_first() {
    let h = Harness::new(4, FakeProvider::new(), buckets(1, 1000, 1000));
    let t = tickers(4);
    let batch = h
        .create(&names(&t), YearsSpec::Latest(2), BatchSettings::default())
        .await;
    let owner_a = h.owner("a");
    let stuck = Arc::new(FakeProvider {
        hang_all: true,
        ..FakeProvider::new()
    });
    let engine_a = h.engine_with(
        &owner_a,
        EngineSettings {
            concurrency: 2,
            ..fast_settings()
        },
        stuck.clone(),
    );
    let (_tx_a, rx_a) = no_shutdown();
    let batch_a = batch.clone();
    let a = tokio::spawn(async move { engine_a.run(&batch_a, rx_a).await });
    // Wait until A holds two year tasks in flight.
    for _ in 0..2000 {
        if stuck.total.load(Ordering::SeqCst) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let held: HashSet<i64> = h.store.running_tasks_of("a").unwrap().into_iter().collect();
    assert_eq!(held.len(), 2);

    let owner_b = h.owner("b");
    let (tx_b, rx_b) = no_shutdown();
    let engine_b = h.engine(&owner_b, fast_settings());
    let batch_b = batch.clone();
    let b = tokio::spawn(async move { engine_b.run(&batch_b, rx_b).await });
    for _ in 0..2000 {
        let c = h.store.task_counts(&batch).unwrap();
        if c.completed == 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let c = h.store.task_counts(&batch).unwrap();
    assert_eq!(
        (c.completed, c.running),
        (6, 2),
        "B did all but A's live tasks"
    );
    let still_held: HashSet<i64> = h.store.running_tasks_of("a").unwrap().into_iter().collect();
    assert_eq!(still_held, held, "A's tasks were not taken");
    assert_eq!(h.provider.total.load(Ordering::SeqCst), 6);
    tx_b.send(true).unwrap();
    assert_eq!(b.await.unwrap().unwrap(), RunOutcome::Stopped);
    a.abort();
}

/// Kill the engine at random moments (a call in flight never answers, then the whole run is
/// dropped and its process lock released, as `kill -9` would) and resume, until done.
#[tokio::test]
async fn killed_at_random_points_and_resumed_ends_with_exact_results() {
    for seed in 0..12u64 {
        let mut h = Harness::new(6, FakeProvider::new(), buckets(2, 1000, 1000));
        h.analysis = Arc::new(TestAnalysis { multi_year: true });
        let t = tickers(6);
        let batch = h
            .create(&names(&t), YearsSpec::Latest(4), BatchSettings::default())
            .await;
        let mut in_flight_at_kills = 0u64;
        let mut rng = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        for round in 0..100 {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let owner_name = format!("owner-{seed}-{round}");
            let owner = h.owner(&owner_name);
            let total = h.provider.total.load(Ordering::SeqCst);
            h.provider
                .hang_at
                .store(total + 1 + (rng >> 33) % 8, Ordering::SeqCst);
            let engine = h.engine(&owner, fast_settings());
            let (_tx, rx) = no_shutdown();
            let b = batch.clone();
            let mut run = tokio::spawn(async move { engine.run(&b, rx).await });
            let hang_at = h.provider.hang_at.load(Ordering::SeqCst);
            let mut finished = None;
            for _ in 0..5000 {
                if run.is_finished() {
                    finished = Some((&mut run).await.unwrap().unwrap());
                    break;
                }
                if h.provider.total.load(Ordering::SeqCst) >= hang_at {
                    tokio::time::sleep(Duration::from_millis((rng >> 40) % 3)).await;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            if let Some(out) = finished {
                assert_eq!(out, RunOutcome::Completed { failed: 0 }, "seed {seed}");
                break;
            }
            in_flight_at_kills += h.store.running_tasks_of(&owner_name).unwrap().len() as u64;
            run.abort();
            let _ = run.await;
            drop(owner);
        }
        let counts = h.store.task_counts(&batch).unwrap();
        // 6 companies x 4 years, SIM4 has no FY2019 when asked for 2021..2024: none skipped.
        assert_eq!(counts.completed, 6 * 4 + 6, "seed {seed}: {counts:?}");
        let keys = h.result_keys();
        assert_eq!(keys.len(), 30, "seed {seed}");
        let calls = h.provider.calls.lock().unwrap();
        let repeated: u64 = calls.values().map(|&n| n as u64 - 1).sum();
        assert!(
            repeated <= in_flight_at_kills,
            "seed {seed}: {repeated} repeated calls, {in_flight_at_kills} in flight at kills"
        );
    }
}

#[tokio::test]
async fn aggregate_needs_enough_completed_years_and_names_the_missing_ones() {
    let mut h = Harness::new(5, FakeProvider::new(), buckets(1, 1000, 1000));
    h.analysis = Arc::new(TestAnalysis { multi_year: true });
    let t = tickers(5);
    let batch = h
        .create(
            &names(&t),
            YearsSpec::Explicit(vec![2018, 2019, 2020]),
            BatchSettings::default(),
        )
        .await;
    let owner = h.owner("a");
    let (_tx, rx) = no_shutdown();
    let out = h
        .engine(&owner, fast_settings())
        .run(&batch, rx)
        .await
        .unwrap();
    assert_eq!(out, RunOutcome::Completed { failed: 0 });
    let skipped = h.store.ended_tasks(&batch, "skipped").unwrap();
    let agg: Vec<_> = skipped.iter().filter(|t| t.kind == "aggregate").collect();
    assert_eq!(agg.len(), 1);
    assert_eq!(agg[0].ticker.as_deref(), Some("SIM4"));
    let reason = agg[0].reason.as_deref().unwrap();
    assert!(
        reason.contains("FY2019 (no annual report for FY2019)"),
        "{reason}"
    );
    assert_eq!(h.provider.calls_for("aggregate"), 4);
}

#[tokio::test]
async fn bad_input_creates_nothing() {
    let h = Harness::new(3, FakeProvider::new(), buckets(1, 10, 10));
    let rows = input::parse_companies("c.txt", "SIM0\nNOPE\nSIM1\nZZZ\n").unwrap();
    let err = create_batch(
        &h.store,
        h.sec.as_ref(),
        BatchRequest {
            name: None,
            input_file: None,
            rows: rows.clone(),
            years: YearsSpec::Latest(3),
            analysis: h.analysis.as_ref(),
            model: "m".into(),
            priority: 0,
            settings: BatchSettings::default(),
        },
        start_time(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("line 2: NOPE") && err.contains("line 4: ZZZ"),
        "{err}"
    );
    assert!(err.contains("--skip-unknown"), "{err}");
    assert!(h.store.list_batches(false).unwrap().is_empty());

    let multi = TestAnalysis { multi_year: true };
    let err = create_batch(
        &h.store,
        h.sec.as_ref(),
        BatchRequest {
            name: None,
            input_file: None,
            rows: rows.clone(),
            years: YearsSpec::Latest(2),
            analysis: &multi,
            model: "m".into(),
            priority: 0,
            settings: BatchSettings::default(),
        },
        start_time(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("needs at least 3 years"), "{err}");
    assert!(h.store.list_batches(false).unwrap().is_empty());

    // With --skip-unknown the unknown tickers are recorded as skipped, with their reason.
    let created = create_batch(
        &h.store,
        h.sec.as_ref(),
        BatchRequest {
            name: None,
            input_file: None,
            rows,
            years: YearsSpec::Latest(1),
            analysis: h.analysis.as_ref(),
            model: "m".into(),
            priority: 0,
            settings: BatchSettings {
                skip_unknown: true,
                ..Default::default()
            },
        },
        start_time(),
    )
    .await
    .unwrap();
    assert_eq!(created.unknown.len(), 2);
    let groups = h.store.reason_groups(&created.batch_id).unwrap();
    assert!(
        groups
            .iter()
            .any(|g| g.reason.contains("unknown ticker NOPE")),
        "{groups:?}"
    );
}

#[tokio::test]
async fn rows_naming_the_same_company_become_one() {
    let h = Harness::new(3, FakeProvider::new(), buckets(1, 10, 10));
    let rows = input::parse_companies("c.csv", "ticker,cik\nSIM1,\n,1001\nSIM2,\n").unwrap();
    let created = create_batch(
        &h.store,
        h.sec.as_ref(),
        BatchRequest {
            name: None,
            input_file: None,
            rows,
            years: YearsSpec::Latest(1),
            analysis: h.analysis.as_ref(),
            model: "m".into(),
            priority: 0,
            settings: BatchSettings::default(),
        },
        start_time(),
    )
    .await
    .unwrap();
    assert_eq!(created.companies, 2);
    assert_eq!(created.merged.len(), 1);
    assert!(created.merged[0].contains("line 3"), "{:?}", created.merged);
}

#[test]
fn fiscal_year_lists_parse_and_bad_ones_are_explained() {
    assert_eq!(
        YearsSpec::parse_explicit("2018-2020, 2024").unwrap(),
        YearsSpec::Explicit(vec![2018, 2019, 2020, 2024])
    );
    for bad in ["2020-2018", "twenty", "1800", ""] {
        let e = YearsSpec::parse_explicit(bad).unwrap_err().to_string();
        assert!(e.contains("--fiscal-years"), "{e}");
    }
}

#[tokio::test]
async fn bad_output_gets_one_repair_call_in_the_same_attempt_then_the_retry_path() {
    // SIM0 answers bad output once, then the repair succeeds: one attempt, two calls.
    // SIM1 always answers bad output: each attempt is a call and its repair, until failed.
    // A repair request carries the bad answer, not the filing, so SIM1's repairs are known by
    // SIM1's bad answer.
    let provider = FakeProvider::with_script(Arc::new(|prompt: &str, n| {
        let bad = |raw: &str| CallError::BadOutput {
            reason: "invalid JSON".into(),
            raw_text: Some(raw.into()),
            usage: Default::default(),
        };
        if prompt.starts_with("SIM0") && n == 1 {
            return Some(bad("{\"summary\": 0"));
        }
        (prompt.starts_with("SIM1") || prompt.contains("{\"summary\": 1"))
            .then(|| bad("{\"summary\": 1"))
    }));
    let h = Harness::new(2, provider, buckets(1, 1000, 1000));
    let t = tickers(2);
    let batch = h
        .create(&names(&t), YearsSpec::Latest(1), BatchSettings::default())
        .await;
    let owner = h.owner("a");
    let (_tx, rx) = no_shutdown();
    let out = h
        .engine(&owner, fast_settings())
        .run(&batch, rx)
        .await
        .unwrap();
    assert_eq!(out, RunOutcome::Completed { failed: 1 });
    assert_eq!(h.task_state(&batch, "SIM0", 2024), "completed");
    assert_eq!(h.task_field(&batch, "SIM0", 2024, "attempts"), 0);
    let sim0 = h.task_field(&batch, "SIM0", 2024, "id");
    assert_eq!(
        h.store.calls_of_task(sim0).unwrap(),
        2,
        "the call and its repair"
    );
    let purposes: Vec<String> = {
        let conn = h.store.conn();
        let mut stmt = conn
            .prepare("SELECT purpose FROM calls WHERE task_id = ?1 ORDER BY id")
            .unwrap();
        stmt.query_map([sim0], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(purposes, ["generate", "repair"]);
    assert_eq!(h.task_state(&batch, "SIM1", 2024), "failed");
    assert_eq!(h.task_field(&batch, "SIM1", 2024, "attempts"), 3);
    let sim1 = h.task_field(&batch, "SIM1", 2024, "id");
    assert_eq!(
        h.store.calls_of_task(sim1).unwrap(),
        6,
        "3 attempts x (call + repair)"
    );
}

#[tokio::test]
async fn a_refusal_is_a_skip_with_its_reason() {
    let provider = FakeProvider::with_script(Arc::new(|prompt: &str, _| {
        prompt.starts_with("SIM0").then(|| CallError::Refused {
            reason: "finishReason SAFETY".into(),
        })
    }));
    let h = Harness::new(1, provider, buckets(1, 1000, 1000));
    let batch = h
        .create(&["SIM0"], YearsSpec::Latest(1), BatchSettings::default())
        .await;
    let owner = h.owner("a");
    let (_tx, rx) = no_shutdown();
    h.engine(&owner, fast_settings())
        .run(&batch, rx)
        .await
        .unwrap();
    assert_eq!(h.task_state(&batch, "SIM0", 2024), "skipped");
    let skipped = h.store.ended_tasks(&batch, "skipped").unwrap();
    assert!(skipped[0].reason.as_deref().unwrap().contains("SAFETY"));
}

/// A disk that reports low free space for its first `low_for` measurements, then plenty.
struct FillingDisk {
    measured: std::sync::atomic::AtomicU64,
    low_for: u64,
}

impl fintel_store::FreeSpace for FillingDisk {
    fn free_bytes(&self, _: &std::path::Path) -> std::io::Result<u64> {
        let n = self.measured.fetch_add(1, Ordering::SeqCst);
        Ok(if n < self.low_for {
            100 << 20
        } else {
            50 << 30
        })
    }
}

#[tokio::test]
async fn low_disk_space_pauses_new_tasks_and_the_batch_resumes_when_it_is_back() {
    let h = Harness::new(3, FakeProvider::new(), buckets(1, 1000, 1000));
    let t = tickers(3);
    let batch = h
        .create(&names(&t), YearsSpec::Latest(2), BatchSettings::default())
        .await;
    let upkeep = Upkeep {
        data_dir: h.dir.path().to_path_buf(),
        free_space: Arc::new(FillingDisk {
            measured: Default::default(),
            low_for: 3,
        }),
        min_free_bytes: 1 << 30,
        maintenance: None,
    };
    let started = fintel_time::Clock::now(&h.clock);
    let (out, recorder) = h.run_recorded(&batch, upkeep).await;
    assert_eq!(out, RunOutcome::Completed { failed: 0 });
    let lines = recorder.lines();
    let low = recorder
        .position("event disk_low")
        .expect("disk low reported");
    let waiting = recorder
        .position("progress waiting_disk completed=0")
        .expect("the batch showed waiting_disk");
    let back = recorder
        .position("event disk_recovered")
        .expect("recovery reported");
    assert!(low < waiting && waiting < back, "{lines:#?}");
    assert!(
        lines[low - 1].contains("only 100.0 MiB free"),
        "the user is told why and what to do: {lines:#?}"
    );
    // No task started while the disk was low: three measurements a minute apart.
    let first_start: i64 = h
        .store
        .conn()
        .query_row("SELECT MIN(started_at) FROM tasks", [], |r| r.get(0))
        .unwrap();
    assert!(
        first_start >= fintel_store::millis(started) + 120_000,
        "a task started {} ms after the run began, while the disk was low",
        first_start - fintel_store::millis(started)
    );
    assert_eq!(h.result_keys().len(), 6);
    let logged: i64 = h
        .store
        .conn()
        .query_row(
            "SELECT COUNT(*) FROM events WHERE message LIKE '%free some space%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(logged, 1, "the pause is in the batch's event log");
}

#[tokio::test]
async fn daily_maintenance_runs_once_while_waiting_for_the_reset() {
    // One key, 2 requests a day, 4 analyses: the batch waits for one reset.
    let h = Harness::new(2, FakeProvider::new(), buckets(1, 2, 1000));
    let t = tickers(2);
    let batch = h
        .create(&names(&t), YearsSpec::Latest(2), BatchSettings::default())
        .await;
    let backups = h.dir.path().join("backups");
    let upkeep = Upkeep {
        data_dir: h.dir.path().to_path_buf(),
        free_space: Arc::new(fintel_store::SystemFreeSpace),
        min_free_bytes: 1,
        maintenance: Some(MaintenancePlan {
            backups_dir: backups.clone(),
            retention: 7,
        }),
    };
    let (out, recorder) = h.run_recorded(&batch, upkeep).await;
    assert_eq!(out, RunOutcome::Completed { failed: 0 });
    let lines = recorder.lines();
    let exhausted: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("event keys_exhausted"))
        .collect();
    // 00:05 Pacific on 2026-06-15; the next reset is the next Pacific midnight plus the
    // 5-minute buffer, and it is announced once, not on every look at the database.
    assert_eq!(
        exhausted,
        ["event keys_exhausted 2026-06-16T07:05:00Z"],
        "{lines:#?}"
    );
    let maintained: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("event maintained"))
        .collect();
    assert_eq!(maintained.len(), 1, "{lines:#?}");
    let backup = std::path::PathBuf::from(maintained[0].trim_start_matches("event maintained "));
    assert!(backup.starts_with(&backups));
    let copy = fintel_store::Store::open_read_only(&backup).unwrap();
    assert_eq!(copy.integrity_check().unwrap(), ["ok"]);
    assert!(lines
        .iter()
        .any(|l| l.starts_with("message daily maintenance: database")));
}

/// Too few tasks to open the breaker (2, not 5): while both keep failing together, neither
/// uses up its last attempt, so the outage fails nothing.
#[tokio::test]
async fn an_outage_with_too_few_tasks_to_open_the_breaker_still_fails_none() {
    let (h, out, max_attempts) = run_through_outage(2, 1).await;
    assert_eq!(out, RunOutcome::Completed { failed: 0 });
    assert!(
        max_attempts <= 1,
        "the last attempt was never used up: {max_attempts}"
    );
    assert_eq!(h.result_keys().len(), 2);
}

/// Stops a run as soon as it reports waiting for the quota reset.
struct StopWhenWaitingForReset(tokio::sync::watch::Sender<bool>);

impl Observer for StopWhenWaitingForReset {
    fn progress(&self, p: &Progress) {
        if p.state == fintel_store::BatchState::WaitingReset {
            let _ = self.0.send(true);
        }
    }
    fn message(&self, _: Level, _: &str) {}
}

#[tokio::test]
async fn tasks_waiting_for_the_reset_are_taken_at_once_by_a_resume_with_more_keys() {
    // One key of 2 requests a day for 4 analyses: the first run spends it and stops.
    let h = Harness::new(2, FakeProvider::new(), buckets(1, 2, 1000));
    let t = tickers(2);
    let batch = h
        .create(&names(&t), YearsSpec::Latest(2), BatchSettings::default())
        .await;
    let owner = h.owner("a");
    let (tx, rx) = no_shutdown();
    let out = h
        .engine_watched(
            &owner,
            fast_settings(),
            h.provider.clone(),
            Arc::new(StopWhenWaitingForReset(tx)),
            Upkeep::off(),
        )
        .run(&batch, rx)
        .await
        .unwrap();
    assert_eq!(out, RunOutcome::Stopped);
    assert_eq!(h.result_keys().len(), 2);
    let stopped_at = fintel_time::Clock::now(&h.clock);

    // The resume brings a second project's key: the other two go now, not after the reset.
    let more_keys = Arc::new(KeyPool::new(
        buckets(2, 2, 1000),
        std::time::Duration::from_secs(300),
    ));
    more_keys.register(&h.store).unwrap();
    let engine = Arc::new(Engine {
        pool: more_keys,
        ..Arc::try_unwrap(h.engine(&owner, fast_settings()))
            .ok()
            .expect("a fresh engine")
    });
    let (_tx, rx) = no_shutdown();
    let out = engine.run(&batch, rx).await.unwrap();
    assert_eq!(out, RunOutcome::Completed { failed: 0 });
    assert_eq!(h.result_keys().len(), 4);
    let waited = fintel_time::span_between(stopped_at, fintel_time::Clock::now(&h.clock));
    assert!(
        waited < std::time::Duration::from_secs(3600),
        "the resume waited {waited:?} for a reset it did not need"
    );
}
