//! Retries that waste nothing: a repair or a lower-thinking retry that must wait for pacing keeps
//! its state across the wait, a packed answer that is never usable sends every year of its pack
//! alone, and the refund of an outage reaches every year a packed call carried.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use fintel_engine::pack::Pack;
use fintel_engine::*;
use fintel_llm::{CallError, GenerateRequest, Thinking, Usage};
use support::*;
use tokio::sync::watch;

/// Past this many calls the provider stops the batch (a configuration error), so a defect that
/// loops ends the run instead of spending simulated days.
const RUNAWAY: u64 = 40;

fn runaway(number: u64) -> Option<CallError> {
    (number > RUNAWAY).then(|| CallError::Configuration {
        message: format!("more than {RUNAWAY} requests"),
    })
}

fn packed_request(request: &GenerateRequest) -> bool {
    request.response_schema.get("propertyOrdering").is_some()
}

fn bad_output(raw: &str) -> CallError {
    CallError::BadOutput {
        reason: "model output invalid: not JSON".into(),
        raw_text: Some(raw.into()),
        usage: Usage::default(),
    }
}

fn four_years() -> YearsSpec {
    YearsSpec::Explicit(vec![2021, 2022, 2023, 2024])
}

async fn run_to_end(h: &Harness, batch: &str) -> RunOutcome {
    let owner = h.owner(&format!("run-{batch}"));
    let (_tx, rx) = watch::channel(false);
    h.engine(&owner, fast_settings())
        .run(batch, rx)
        .await
        .unwrap()
}

fn count(h: &Harness, sql: &str) -> i64 {
    h.store.conn().query_row(sql, [], |r| r.get(0)).unwrap()
}

fn attempts(h: &Harness, batch: &str) -> Vec<i64> {
    (2021..=2024)
        .map(|y| h.task_field(batch, "SIM0", y, "attempts"))
        .collect()
}

/// Issue 26, item 1: one key of 20 a day and 2 a minute, a model that is cut off at full
/// thinking and answers with less. Four parallel tasks fill each minute, so most retries with
/// less thinking must wait for pacing; they keep the lower thinking across the wait, and the
/// four years take 8 requests, each year one attempt.
#[tokio::test]
async fn a_lower_thinking_retry_that_waits_for_pacing_keeps_its_thinking() {
    let mut provider = FakeProvider::new();
    provider.yields = 20;
    provider.by_request = Some(Arc::new(|request: &GenerateRequest, n| {
        runaway(n).or_else(|| {
            (request.thinking == Thinking::ProviderDefault).then(|| CallError::Truncated {
                message: "finishReason MAX_TOKENS".into(),
                usage: Usage::default(),
            })
        })
    }));
    let h = Harness::new(1, provider, buckets(1, 20, 2));
    let batch = h
        .create(&["SIM0"], four_years(), BatchSettings::default())
        .await;
    assert_eq!(
        run_to_end(&h, &batch).await,
        RunOutcome::Completed { failed: 0 }
    );
    assert_eq!(h.provider.total.load(Ordering::SeqCst), 8);
    assert_eq!(count(&h, "SELECT COUNT(*) FROM calls"), 8);
    assert_eq!(
        count(&h, "SELECT COUNT(*) FROM calls WHERE outcome = 'truncated'"),
        4
    );
    assert_eq!(h.result_column("calls"), [2, 2, 2, 2]);
    assert_eq!(h.result_column("attempts"), [1, 1, 1, 1]);
    assert_eq!(attempts(&h, &batch), [0, 0, 0, 0]);
}

/// Issue 26, item 1, the repair path: every first answer is invalid JSON and every repair
/// valid. A repair that waits for pacing is sent after the wait, not the original again.
#[tokio::test]
async fn a_repair_that_waits_for_pacing_is_sent_after_the_wait() {
    let mut provider = FakeProvider::new();
    provider.yields = 20;
    provider.by_request = Some(Arc::new(|request: &GenerateRequest, n| {
        runaway(n).or_else(|| {
            request.turns[0]
                .text
                .starts_with("SIM0 ")
                .then(|| bad_output("{\"summary\": \"cut"))
        })
    }));
    let h = Harness::new(1, provider, buckets(1, 20, 2));
    let batch = h
        .create(&["SIM0"], four_years(), BatchSettings::default())
        .await;
    assert_eq!(
        run_to_end(&h, &batch).await,
        RunOutcome::Completed { failed: 0 }
    );
    assert_eq!(h.provider.total.load(Ordering::SeqCst), 8);
    assert_eq!(
        count(&h, "SELECT COUNT(*) FROM calls WHERE purpose = 'repair'"),
        4
    );
    assert_eq!(h.result_column("calls"), [2, 2, 2, 2]);
    assert_eq!(attempts(&h, &batch), [0, 0, 0, 0]);
}

/// Issue 26, item 2: every packed answer is unusable, even repaired; every single-year answer
/// is good. The first packed attempt of each pack fails as a whole, so its years go alone, each
/// charged one attempt: 2 packs x (answer + repair) + 4 single requests.
#[tokio::test]
async fn a_packed_answer_never_usable_sends_every_year_of_its_pack_alone() {
    let mut provider = FakeProvider::new();
    provider.by_request = Some(Arc::new(|request: &GenerateRequest, n| {
        runaway(n).or_else(|| packed_request(request).then(|| bad_output("{\"fy2024\": {")))
    }));
    let h = Harness::new(1, provider, buckets(1, 1000, 1000));
    let batch = h
        .create(
            &["SIM0"],
            four_years(),
            BatchSettings {
                pack: Pack::Years(2),
                ..BatchSettings::default()
            },
        )
        .await;
    assert_eq!(
        run_to_end(&h, &batch).await,
        RunOutcome::Completed { failed: 0 }
    );
    assert_eq!(h.provider.total.load(Ordering::SeqCst), 8);
    assert_eq!(h.result_keys().len(), 4);
    assert_eq!(attempts(&h, &batch), [1, 1, 1, 1]);
    assert_eq!(h.result_column("attempts"), [2, 2, 2, 2]);
    for y in 2021..=2024 {
        assert_eq!(h.task_field(&batch, "SIM0", y, "pack_alone"), 1, "FY{y}");
        // The packed call it rode in and its repair, then its own.
        let task = h.task_field(&batch, "SIM0", y, "id");
        assert_eq!(h.store.calls_linked_to(task).unwrap().len(), 2, "FY{y}");
    }
    assert_eq!(
        count(
            &h,
            "SELECT COUNT(*) FROM results WHERE packed_with IS NOT NULL"
        ),
        0
    );
}

/// Issue 26, item 3: five packs of two years fail transiently one after the other, which opens
/// the breaker. The refund reaches the year each packed call carried besides its lead: after
/// the outage no year has an attempt charged.
#[tokio::test]
async fn an_outage_refunds_every_year_of_a_pack() {
    let failures = Arc::new(AtomicU64::new(0));
    let seen = failures.clone();
    let mut provider = FakeProvider::new();
    provider.by_request = Some(Arc::new(move |request: &GenerateRequest, n| {
        if runaway(n).is_some() {
            return runaway(n);
        }
        // The first five packed calls fail: five leads, five different tasks.
        (packed_request(request) && seen.fetch_add(1, Ordering::SeqCst) < 5).then(|| {
            CallError::Transient {
                message: "HTTP 503, UNAVAILABLE: The model is overloaded.".into(),
                reached_server: true,
            }
        })
    }));
    let h = Harness::new(5, provider, buckets(1, 1000, 1000));
    let t = tickers(5);
    let names: Vec<&str> = t.iter().map(String::as_str).collect();
    let batch = h
        .create(
            &names,
            YearsSpec::Explicit(vec![2023, 2024]),
            BatchSettings {
                pack: Pack::Years(2),
                ..BatchSettings::default()
            },
        )
        .await;
    let (out, recorder) = h.run_recorded(&batch, Upkeep::off()).await;
    assert_eq!(out, RunOutcome::Completed { failed: 0 });
    assert!(
        recorder.position("event repeated_failures 5").is_some(),
        "the breaker opened: {:?}",
        recorder.lines()
    );
    assert!(failures.load(Ordering::SeqCst) >= 5);
    assert_eq!(h.result_keys().len(), 10);
    let charged = count(
        &h,
        &format!("SELECT COUNT(*) FROM tasks WHERE batch_id = '{batch}' AND attempts > 0"),
    );
    assert_eq!(charged, 0, "an outage never counts");
    assert_eq!(h.result_column("attempts"), [1; 10]);
}

/// Issue 26, item 1, across processes: the process is killed while its repair is in flight.
/// The resume sends the repair again, not the original request with its filing.
#[tokio::test]
async fn a_resume_after_a_kill_goes_on_with_the_repair() {
    let mut provider = FakeProvider::new();
    provider.by_request = Some(Arc::new(|request: &GenerateRequest, n| {
        runaway(n).or_else(|| {
            request.turns[0]
                .text
                .starts_with("SIM0 ")
                .then(|| bad_output("{\"summary\": \"cut"))
        })
    }));
    // The second call, the repair, never answers: the process dies with it in flight.
    provider.hang_at.store(2, Ordering::SeqCst);
    let h = Harness::new(1, provider, buckets(1, 20, 20));
    let batch = h
        .create(
            &["SIM0"],
            YearsSpec::Explicit(vec![2024]),
            BatchSettings::default(),
        )
        .await;
    let owner = h.owner("killed");
    let engine = h.engine(&owner, fast_settings());
    let (_tx, rx) = watch::channel(false);
    let b = batch.clone();
    let run = tokio::spawn(async move { engine.run(&b, rx).await });
    while h.provider.total.load(Ordering::SeqCst) < 2 {
        tokio::task::yield_now().await;
    }
    run.abort();
    let _ = run.await;
    drop(owner);

    h.provider.hang_at.store(0, Ordering::SeqCst);
    assert_eq!(
        run_to_end(&h, &batch).await,
        RunOutcome::Completed { failed: 0 }
    );
    // The original once, the repair twice (the one in flight at the kill, then its resend).
    assert_eq!(h.provider.calls_for("SIM0 FY2024"), 1);
    assert_eq!(h.provider.total.load(Ordering::SeqCst), 3);
    assert_eq!(
        count(&h, "SELECT COUNT(*) FROM calls WHERE purpose = 'repair'"),
        2
    );
    assert_eq!(h.task_field(&batch, "SIM0", 2024, "attempts"), 0);
    assert_eq!(h.result_column("calls"), [2]);
    assert_eq!(count(&h, "SELECT COUNT(*) FROM retry_states"), 0);
}
