//! A batch's life with several processes, a cancel and a bug: dead owners are taken back by a
//! live process, a cancel is never overwritten, a batch is `stopped` only when no live process
//! is left on it, and a panic fails only its own task.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use fintel_engine::*;
use fintel_llm::CallError;
use fintel_store::{BatchState, Ownership};
use support::*;
use tokio::sync::watch;

/// A batch of 4 companies x 2 years, and process "a" running it with two calls that never
/// answer: what the tests of several processes start from.
async fn process_a_holding_two_calls(
    h: &Harness,
) -> (
    String,
    Ownership,
    tokio::task::JoinHandle<Result<RunOutcome, EngineError>>,
    watch::Sender<bool>,
) {
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
    let (tx_a, rx_a) = watch::channel(false);
    let batch_a = batch.clone();
    let a = tokio::spawn(async move { engine_a.run(&batch_a, rx_a).await });
    until_clock(h, "A holds two calls", Duration::from_secs(3600), || {
        stuck.total.load(Ordering::SeqCst) >= 2
    })
    .await;
    (batch, owner_a, a, tx_a)
}

/// Process A holds two tasks when it is killed (`kill -9`: its run vanishes and the OS
/// releases its lock); process B, already running and idle with only A's tasks left, takes
/// them back by itself and finishes the batch, without any restart.
#[tokio::test]
async fn a_live_process_takes_back_the_tasks_of_a_process_killed_mid_batch() {
    let h = Harness::new(4, FakeProvider::new(), buckets(1, 1000, 1000));
    let (batch, owner_a, a, _tx_a) = process_a_holding_two_calls(&h).await;

    let owner_b = h.owner("b");
    let (_tx_b, rx_b) = watch::channel(false);
    let engine_b = h.engine(&owner_b, fast_settings());
    let batch_b = batch.clone();
    let b = tokio::spawn(async move { engine_b.run(&batch_b, rx_b).await });
    until_clock(&h, "B does the rest", Duration::from_secs(3600), || {
        h.store.task_counts(&batch).unwrap().completed == 6
    })
    .await;
    assert_eq!(h.store.running_tasks_of("a").unwrap().len(), 2);

    // kill -9 of A.
    a.abort();
    let _ = a.await;
    drop(owner_a);

    until_clock(
        &h,
        "B takes A's tasks back",
        Duration::from_secs(3 * 3600),
        || b.is_finished(),
    )
    .await;
    assert_eq!(
        b.await.unwrap().unwrap(),
        RunOutcome::Completed { failed: 0 }
    );
    let c = h.store.task_counts(&batch).unwrap();
    assert_eq!((c.completed, c.running, c.pending), (8, 0, 0));
    assert_eq!(h.result_keys().len(), 8, "no result lost, none twice");
    assert_eq!(
        h.store.find_batch(&batch).unwrap().state,
        BatchState::Completed
    );
}

/// `fintel batch cancel` while a process works on the batch: the process drains, says
/// cancelled, and none of its state writes (the "running" after a task, the "stopped" of a
/// drain) goes over the cancel; a bare resume never picks the batch again.
#[tokio::test]
async fn a_cancel_during_a_run_is_never_overwritten() {
    let provider = FakeProvider {
        // Every task ends well after the runner's last progress write, so it writes one.
        delay: Some(Duration::from_millis(300)),
        ..FakeProvider::new()
    };
    let h = Harness::new(3, provider, buckets(1, 1000, 1000));
    let t = tickers(3);
    let batch = h
        .create(&names(&t), YearsSpec::Latest(2), BatchSettings::default())
        .await;
    let owner = h.owner("a");
    let engine = h.engine(
        &owner,
        EngineSettings {
            concurrency: 1,
            ..fast_settings()
        },
    );
    let (_tx, rx) = watch::channel(false);
    let b = batch.clone();
    let run = tokio::spawn(async move { engine.run(&b, rx).await });
    until_clock(&h, "a first result", Duration::from_secs(3600), || {
        h.store.task_counts(&batch).unwrap().completed >= 1
    })
    .await;
    // What `fintel batch cancel` writes.
    let now = fintel_time::Clock::now(&h.clock);
    h.store
        .set_batch_state(
            &batch,
            BatchState::Cancelled,
            Some("cancelled by the user"),
            now,
        )
        .unwrap();
    h.store.request_stop(&batch, true).unwrap();
    let outcome = run.await.unwrap().unwrap();
    assert_eq!(outcome, RunOutcome::Cancelled);
    let stored = h.store.find_batch(&batch).unwrap();
    assert_eq!(
        stored.state,
        BatchState::Cancelled,
        "{:?}",
        stored.state_reason
    );
    assert!(
        h.store.list_incomplete().unwrap().is_empty(),
        "a bare resume never picks a cancelled batch"
    );
    assert!(h.store.running_tasks_of("a").unwrap().is_empty());
}

/// Two processes on a batch; one is stopped (a signal) while the other still works: the batch
/// is not `stopped`, since a live process is left on it.
#[tokio::test]
async fn a_batch_is_not_stopped_while_another_live_process_works_on_it() {
    let h = Harness::new(4, FakeProvider::new(), buckets(1, 1000, 1000));
    let (batch, owner_a, a, _tx_a) = process_a_holding_two_calls(&h).await;
    let owner_b = h.owner("b");
    let (tx_b, rx_b) = watch::channel(false);
    let engine_b = h.engine(&owner_b, fast_settings());
    let batch_b = batch.clone();
    let b = tokio::spawn(async move { engine_b.run(&batch_b, rx_b).await });
    until_clock(&h, "B does the rest", Duration::from_secs(3600), || {
        h.store.task_counts(&batch).unwrap().completed == 6
    })
    .await;
    tx_b.send(true).unwrap();
    assert_eq!(b.await.unwrap().unwrap(), RunOutcome::Stopped);
    let state = h.store.find_batch(&batch).unwrap().state;
    assert_ne!(state, BatchState::Stopped, "A still works on it");
    // B's process exits, as the binary does after a run.
    h.store.unregister_owner("b").unwrap();
    drop(owner_b);
    let live = h.store.live_owners_of(&batch).unwrap();
    assert_eq!(live, vec!["a".to_string()]);
    a.abort();
    let _ = a.await;
    drop(owner_a);
    assert!(h.store.live_owners_of(&batch).unwrap().is_empty());
}

/// A panic inside a task is a bug: that task fails with the panic's message, the others
/// complete, and the panics (one per company, more than the breaker's threshold) never open
/// an outage breaker.
#[tokio::test]
async fn a_panic_in_a_task_fails_that_task_with_its_message_and_opens_no_breaker() {
    let provider = FakeProvider::with_script(Arc::new(|prompt: &str, _n| -> Option<CallError> {
        if prompt.contains("FY2024") {
            panic!("boom in {}", &prompt[..prompt.find(':').unwrap_or(0)]);
        }
        None
    }));
    let h = Harness::new(6, provider, buckets(1, 1000, 1000));
    let t = tickers(6);
    let batch = h
        .create(&names(&t), YearsSpec::Latest(2), BatchSettings::default())
        .await;
    let (outcome, recorder) = h.run_recorded(&batch, Upkeep::off()).await;
    assert_eq!(outcome, RunOutcome::Completed { failed: 6 });
    let failed = h.store.ended_tasks(&batch, "failed").unwrap();
    assert_eq!(failed.len(), 6);
    for f in &failed {
        assert_eq!(f.fiscal_year, Some(2024));
        let reason = f.reason.as_deref().unwrap_or("");
        assert!(reason.contains("panicked: boom in SIM"), "{reason}");
        assert_eq!(
            f.attempts, 1,
            "a bug is not retried as if it were transient"
        );
    }
    assert_eq!(h.store.task_counts(&batch).unwrap().completed, 6);
    assert!(
        !recorder
            .lines()
            .iter()
            .any(|l| l.starts_with("event repeated_failures") || l.contains("waiting_provider")),
        "{:?}",
        recorder.lines()
    );
}
