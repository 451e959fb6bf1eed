//! Request packing in the engine (SPEC.md section 12): packed answers split into their years,
//! one ledger row per packed call linked to every task, and resumes after a kill that repeat
//! at most the packed call in flight.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use fintel_engine::pack::Pack;
use fintel_engine::*;
use support::*;
use tokio::sync::watch;

fn packed(n: u8) -> BatchSettings {
    BatchSettings {
        pack: Pack::Years(n),
        ..BatchSettings::default()
    }
}

fn count(h: &Harness, sql: &str) -> i64 {
    h.store.conn().query_row(sql, [], |r| r.get(0)).unwrap()
}

fn packed_with(h: &Harness, year: i32) -> Option<String> {
    h.store
        .conn()
        .query_row(
            "SELECT packed_with FROM results WHERE fiscal_year = ?1",
            [year],
            |r| r.get(0),
        )
        .unwrap()
}

async fn run_to_end(h: &Harness, batch: &str) -> RunOutcome {
    let owner = h.owner(&format!("run-{batch}"));
    let (_tx, rx) = watch::channel(false);
    h.engine(&owner, fast_settings())
        .run(batch, rx)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_packed_answer_with_one_invalid_year_stores_the_valid_year_and_retries_only_the_other() {
    let mut provider = FakeProvider::new();
    // The first packed answer's FY2023 part has no score.
    provider.bad_part = Some(Arc::new(|year, n| year == 2023 && n == 1));
    let h = Harness::new(1, provider, buckets(1, 1000, 1000));
    let batch = h
        .create(&["SIM0"], YearsSpec::Explicit(vec![2023, 2024]), packed(2))
        .await;
    assert_eq!(
        run_to_end(&h, &batch).await,
        RunOutcome::Completed { failed: 0 }
    );

    assert_eq!(h.result_keys().len(), 2);
    assert_eq!(packed_with(&h, 2024).as_deref(), Some("2023,2024"));
    assert_eq!(packed_with(&h, 2023), None, "FY2023 was answered alone");
    // One packed call, then FY2023 alone: FY2024 was never asked again.
    assert_eq!(h.provider.total.load(Ordering::SeqCst), 2);
    assert_eq!(h.task_field(&batch, "SIM0", 2023, "attempts"), 1);
    assert_eq!(h.task_field(&batch, "SIM0", 2023, "pack_alone"), 1);
    assert_eq!(h.task_field(&batch, "SIM0", 2024, "attempts"), 0);
    let json: String = h
        .store
        .conn()
        .query_row(
            "SELECT json FROM results WHERE fiscal_year = 2024",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(json, r#"{"summary":"FY2024 packed","score":7}"#);
    // The packed call's ledger row is linked to both tasks, the single one to neither.
    assert_eq!(count(&h, "SELECT COUNT(*) FROM calls"), 2);
    assert_eq!(count(&h, "SELECT COUNT(*) FROM ledger_tasks"), 2);
    let call_of_2024 = count(&h, "SELECT call_id FROM results WHERE fiscal_year = 2024");
    let linked_2023 = h
        .store
        .calls_linked_to(h.task_field(&batch, "SIM0", 2023, "id"))
        .unwrap();
    assert_eq!(linked_2023, [call_of_2024]);
}

#[tokio::test]
async fn a_year_whose_packed_part_stays_bad_completes_alone_never_packed_again() {
    let mut provider = FakeProvider::new();
    provider.bad_part = Some(Arc::new(|year, _| year == 2021));
    // A single request for FY2021 answers well: only its packed part is bad, and it is never
    // packed again, so it completes alone.
    let h = Harness::new(1, provider, buckets(1, 1000, 1000));
    let batch = h
        .create(
            &["SIM0"],
            YearsSpec::Explicit(vec![2021, 2022, 2023]),
            packed(3),
        )
        .await;
    assert_eq!(
        run_to_end(&h, &batch).await,
        RunOutcome::Completed { failed: 0 }
    );
    assert_eq!(h.result_keys().len(), 3);
    assert_eq!(packed_with(&h, 2022).as_deref(), Some("2021,2022,2023"));
    assert_eq!(packed_with(&h, 2021), None);
    assert_eq!(h.provider.total.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn one_ledger_row_per_packed_call_linked_to_every_task_it_carries() {
    // 4 companies x 7 years (SIM4-like gap: none here, 4 companies): by two, 4 calls each.
    let h = Harness::new(4, FakeProvider::new(), buckets(2, 1000, 1000));
    let t = tickers(4);
    let names: Vec<&str> = t.iter().map(String::as_str).collect();
    let batch = h.create(&names, YearsSpec::Latest(7), packed(2)).await;
    assert_eq!(
        run_to_end(&h, &batch).await,
        RunOutcome::Completed { failed: 0 }
    );
    assert_eq!(h.result_keys().len(), 28);
    assert_eq!(
        h.provider.total.load(Ordering::SeqCst),
        16,
        "7 years by two: 4 calls"
    );
    assert_eq!(count(&h, "SELECT COUNT(*) FROM calls"), 16);
    // Three pairs per company linked to two tasks each; the oldest year went alone.
    assert_eq!(count(&h, "SELECT COUNT(*) FROM ledger_tasks"), 4 * 3 * 2);
    assert_eq!(
        count(
            &h,
            "SELECT COUNT(*) FROM results WHERE packed_with IS NOT NULL"
        ),
        24
    );
    assert_eq!(
        count(
            &h,
            "SELECT COUNT(*) FROM results r JOIN ledger_tasks l ON l.call_id = r.call_id \
             JOIN tasks t ON t.id = l.task_id AND t.result_id = r.id"
        ),
        24,
        "each packed result's call is linked to its own task"
    );
    // The oldest year of each company went alone.
    assert_eq!(packed_with(&h, 2018), None);
}

#[tokio::test]
async fn packed_and_unpacked_results_are_reused_alike() {
    let h = Harness::new(1, FakeProvider::new(), buckets(1, 1000, 1000));
    let first = h
        .create(&["SIM0"], YearsSpec::Explicit(vec![2022, 2023]), packed(2))
        .await;
    assert_eq!(
        run_to_end(&h, &first).await,
        RunOutcome::Completed { failed: 0 }
    );
    assert_eq!(h.provider.total.load(Ordering::SeqCst), 1);
    // The same years unpacked, and one more packed with a reused one: only FY2021 is asked.
    let again = h
        .create(
            &["SIM0"],
            YearsSpec::Explicit(vec![2021, 2022, 2023]),
            BatchSettings::default(),
        )
        .await;
    assert_eq!(
        run_to_end(&h, &again).await,
        RunOutcome::Completed { failed: 0 }
    );
    assert_eq!(h.provider.total.load(Ordering::SeqCst), 2);
    assert_eq!(h.result_keys().len(), 3);
}

#[tokio::test]
async fn aggregate_tasks_of_multi_year_types_are_unchanged_by_packing() {
    let mut h = Harness::new(2, FakeProvider::new(), buckets(1, 1000, 1000));
    h.analysis = Arc::new(TestAnalysis { multi_year: true });
    let t = tickers(2);
    let names: Vec<&str> = t.iter().map(String::as_str).collect();
    let batch = h.create(&names, YearsSpec::Latest(4), packed(2)).await;
    assert_eq!(
        run_to_end(&h, &batch).await,
        RunOutcome::Completed { failed: 0 }
    );
    // 2 x (2 packed calls + 1 aggregate).
    assert_eq!(h.provider.total.load(Ordering::SeqCst), 6);
    assert_eq!(h.result_keys().len(), 2 * 4 + 2);
    assert_eq!(
        h.provider
            .calls_for("aggregate over [2021, 2022, 2023, 2024]"),
        2
    );
}

/// Kill the engine while a packed call is in flight (it never answers; the run is dropped and
/// its lock released, as `kill -9` would) and resume: exactly one result per year, and the
/// calls repeated are at most the packed calls in flight at the kills.
#[tokio::test]
async fn a_resume_after_a_kill_mid_call_repeats_at_most_that_packed_call() {
    let mut kills_mid_call = 0;
    for seed in 0..6u64 {
        let h = Harness::new(3, FakeProvider::new(), buckets(2, 1000, 1000));
        let t = tickers(3);
        let names: Vec<&str> = t.iter().map(String::as_str).collect();
        let batch = h
            .create(
                &names,
                YearsSpec::Latest(6),
                packed(if seed % 2 == 0 { 2 } else { 3 }),
            )
            .await;
        let mut in_flight_at_kills = 0u64;
        let mut rng = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        for round in 0..50 {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let owner_name = format!("owner-{seed}-{round}");
            let owner = h.owner(&owner_name);
            let total = h.provider.total.load(Ordering::SeqCst);
            let hang_at = total + 1 + (rng >> 33) % 4;
            h.provider.hang_at.store(hang_at, Ordering::SeqCst);
            let engine = h.engine(&owner, fast_settings());
            let (_tx, rx) = watch::channel(false);
            let b = batch.clone();
            let mut run = tokio::spawn(async move { engine.run(&b, rx).await });
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
            // Calls in flight: each packed call holds several tasks but is one call.
            let running = h.store.running_tasks_of(&owner_name).unwrap();
            let calls_in_flight = count(
                &h,
                &format!(
                    "SELECT COUNT(DISTINCT c.id) FROM calls c WHERE c.outcome IS NULL \
                     AND c.task_id IN ({})",
                    if running.is_empty() {
                        "NULL".to_string()
                    } else {
                        running
                            .iter()
                            .map(i64::to_string)
                            .collect::<Vec<_>>()
                            .join(",")
                    }
                ),
            );
            in_flight_at_kills += calls_in_flight as u64;
            kills_mid_call += calls_in_flight;
            run.abort();
            let _ = run.await;
            drop(owner);
        }
        let counts = h.store.task_counts(&batch).unwrap();
        assert_eq!(counts.completed, 3 * 6, "seed {seed}: {counts:?}");
        assert_eq!(
            h.result_keys().len(),
            18,
            "seed {seed}: one result per year"
        );
        let calls = h.provider.calls.lock().unwrap();
        let repeated: u64 = calls.values().map(|&n| n as u64 - 1).sum();
        assert!(
            repeated <= in_flight_at_kills,
            "seed {seed}: {repeated} repeated calls, {in_flight_at_kills} packed calls in \
             flight at kills"
        );
    }
    assert!(kills_mid_call > 0, "some kill hit a packed call in flight");
}

/// Buckets whose per-minute token caps are `caps`: a packed request must fit the smallest.
fn capped_buckets(caps: &[u64]) -> Vec<Bucket> {
    let mut b = buckets(caps.len(), 1000, 1000);
    for (bucket, cap) in b.iter_mut().zip(caps) {
        bucket.limits.input_tokens_per_minute = *cap;
    }
    b
}

fn with_doc_sizes(h: &mut Harness, size: fn(u64, i32) -> u64) {
    let mut sec = FakeSec::new(h.sec.companies);
    sec.doc_tokens = Some(Arc::new(size));
    h.sec = Arc::new(sec);
}

fn max_call_tokens(h: &Harness) -> i64 {
    count(h, "SELECT MAX(input_tokens) FROM calls")
}

#[tokio::test]
async fn auto_packs_up_to_three_only_where_every_document_fits_its_share_whole() {
    // The smallest cap is 4,000 tokens: shares of about 1,680 by two and 1,090 by three.
    let mut h = Harness::new(3, FakeProvider::new(), capped_buckets(&[250_000, 4_000]));
    with_doc_sizes(&mut h, |cik, year| match (cik - 1000, year) {
        (0, _) => 1_000,    // all three fit a third
        (1, 2022) => 3_000, // 2024 and 2023 pair; 2022 only fits alone
        (1, _) => 1_500,
        (2, 2024) => 3_000, // 2024 alone; 2023 and 2022 pair
        (2, _) => 1_000,
        _ => 100,
    });
    let t = tickers(3);
    let names: Vec<&str> = t.iter().map(String::as_str).collect();
    let settings = BatchSettings {
        pack: Pack::Auto,
        ..BatchSettings::default()
    };
    let batch = h.create(&names, YearsSpec::Latest(3), settings).await;
    assert_eq!(
        run_to_end(&h, &batch).await,
        RunOutcome::Completed { failed: 0 }
    );
    assert_eq!(h.result_keys().len(), 9);
    assert_eq!(h.provider.total.load(Ordering::SeqCst), 1 + 2 + 2);
    let packed_of = |cik: u64, year: i32| -> Option<String> {
        h.store
            .conn()
            .query_row(
                "SELECT packed_with FROM results WHERE cik = ?1 AND fiscal_year = ?2",
                rusqlite::params![cik, year],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(packed_of(1000, 2023).as_deref(), Some("2022,2023,2024"));
    assert_eq!(packed_of(1001, 2024).as_deref(), Some("2023,2024"));
    assert_eq!(packed_of(1001, 2022), None);
    assert_eq!(packed_of(1002, 2024), None);
    assert_eq!(packed_of(1002, 2022).as_deref(), Some("2022,2023"));
    // Nothing was cut, and every request fitted the smallest bucket.
    assert_eq!(
        count(
            &h,
            "SELECT COUNT(*) FROM results WHERE fitting LIKE '%\"cut\":true%'"
        ),
        0
    );
    assert!(max_call_tokens(&h) <= 4_000, "{}", max_call_tokens(&h));
}

#[tokio::test]
async fn packing_by_n_fits_each_document_to_its_share_of_the_smallest_cap() {
    let mut h = Harness::new(1, FakeProvider::new(), capped_buckets(&[250_000, 4_000]));
    with_doc_sizes(&mut h, |_, _| 3_000);
    let batch = h
        .create(&["SIM0"], YearsSpec::Explicit(vec![2023, 2024]), packed(2))
        .await;
    assert_eq!(
        run_to_end(&h, &batch).await,
        RunOutcome::Completed { failed: 0 }
    );
    assert_eq!(
        h.provider.total.load(Ordering::SeqCst),
        1,
        "one packed call"
    );
    assert_eq!(
        count(
            &h,
            "SELECT COUNT(*) FROM results WHERE fitting LIKE '%\"cut\":true%'"
        ),
        2,
        "each document cut to its share"
    );
    let tokens = max_call_tokens(&h);
    assert!((3_000..=4_000).contains(&tokens), "{tokens}");
}

#[tokio::test]
async fn while_token_caps_pace_every_bucket_a_wake_claims_no_task_only_to_put_it_back() {
    // Two buckets whose token cap takes one pack a minute, and 20 packs to send: every wake
    // can send one or two. Each pack's documents are prepared for the call that goes, and for
    // at most the claims made in the same instant as that call (the free slots), never once
    // per wake for every pending pack, which made the cost of a wake grow with the batch.
    let companies = 10;
    let mut h = Harness::new(
        companies,
        FakeProvider::new(),
        capped_buckets(&[4_000, 4_000]),
    );
    with_doc_sizes(&mut h, |_, _| 1_500);
    let t = tickers(companies);
    let names: Vec<&str> = t.iter().map(String::as_str).collect();
    let batch = h
        .create(
            &names,
            YearsSpec::Explicit(vec![2021, 2022, 2023, 2024]),
            packed(2),
        )
        .await;
    let resolved = h.sec.calls.load(Ordering::SeqCst);
    let settings = fast_settings();
    let slots = settings.concurrency as u64;
    let owner = h.owner("paced");
    let (_tx, rx) = watch::channel(false);
    let reads_before = h.pool.standing_reads();
    let outcome = h.engine(&owner, settings).run(&batch, rx).await.unwrap();
    assert_eq!(outcome, RunOutcome::Completed { failed: 0 });
    let calls = h.provider.total.load(Ordering::SeqCst);
    assert_eq!(calls, 20, "one packed call per two years");
    let minutes = count(
        &h,
        "SELECT COUNT(DISTINCT sent_at / 60000) FROM calls WHERE outcome = 'ok'",
    ) as u64;
    assert!(minutes >= 10, "the cap paced the calls: {minutes} minutes");
    let prepared = h.sec.calls.load(Ordering::SeqCst) - resolved;
    let reads = h.pool.standing_reads() - reads_before;
    println!("{prepared} documents prepared, {reads} bucket reads for {calls} calls in {minutes} minutes");
    // Per minute with a call: the documents of the slots claimed at that instant.
    assert!(
        prepared <= 2 * (calls + slots * minutes),
        "{prepared} documents prepared for {calls} calls over {minutes} paced minutes"
    );
    // A call's decisions: the claim's dry run, the grant, the idle runner's look; each reads
    // every bucket once.
    let buckets = h.pool.buckets().len() as u64;
    assert!(
        reads <= 6 * buckets * calls,
        "{reads} bucket reads for {calls} calls over {minutes} paced minutes"
    );
}
