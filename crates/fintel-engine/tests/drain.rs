//! How a run drains and what it leaves behind: a local database error (disk full) drains as a
//! signal does and leaves the batch `stopped` with the error, to resume to completion; a drain
//! in which every task finished completes the batch; a `--join` never clears a stop the other
//! process has not read yet; and only a provider's answer closes its outage breaker.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fintel_engine::*;
use fintel_llm::{CallError, GenerateRequest};
use fintel_store::{BatchState, Store};
use support::*;
use tokio::sync::watch;

/// Makes the store's own connection refuse to grow the database file, as a full disk does:
/// every write that needs a new page fails with SQLITE_FULL.
fn fill_disk(store: &Store) {
    let conn = store.conn();
    let pages: i64 = conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    conn.pragma_update(None, "max_page_count", pages).unwrap();
}

fn free_disk(store: &Store) {
    store
        .conn()
        .pragma_update(None, "max_page_count", 1_073_741_823_i64)
        .unwrap();
}

/// The disk fills up while the third call is in flight: the process stops claiming, lets the
/// calls in flight end (their results cannot be stored: the tasks go back to pending), and
/// the batch is `stopped` with the error as its reason instead of `running` with nobody on it.
/// Once space is back, a resume finishes it with every result stored once.
#[tokio::test]
async fn a_full_disk_drains_the_run_and_the_batch_resumes_to_completion() {
    let mut h = Harness::new(6, FakeProvider::new(), buckets(1, 1000, 1000));
    // Documents of a few pages, so every result needs new pages of the database.
    Arc::get_mut(&mut h.sec).unwrap().doc_tokens = Some(Arc::new(|_, _| 3_000));
    let t = tickers(6);
    let batch = h
        .create(&names(&t), YearsSpec::Latest(2), BatchSettings::default())
        .await;
    let store = h.store.clone();
    let filled = Arc::new(AtomicBool::new(false));
    let filled_in_script = filled.clone();
    let provider = Arc::new(FakeProvider {
        by_request: Some(Arc::new(move |_: &GenerateRequest, n| {
            if n == 3 {
                fill_disk(&store);
                filled_in_script.store(true, Ordering::SeqCst);
            }
            None
        })),
        yields: 3,
        ..FakeProvider::new()
    });
    let owner = h.owner("a");
    let engine = h.engine_with(&owner, fast_settings(), provider.clone());
    let (_tx, rx) = watch::channel(false);
    let outcome = engine.run(&batch, rx).await;
    assert!(filled.load(Ordering::SeqCst));
    let message = match outcome {
        Ok(RunOutcome::StoppedOnError(message)) => message,
        other => panic!("expected a stop on the database error, got {other:?}"),
    };
    assert!(message.contains("full"), "{message}");
    let stored = h.store.find_batch(&batch).unwrap();
    assert_eq!(
        stored.state,
        BatchState::Stopped,
        "{:?}",
        stored.state_reason
    );
    let reason = stored.state_reason.unwrap_or_default();
    assert!(reason.contains("database or disk is full"), "{reason}");
    assert!(reason.contains("free"), "says what to do: {reason}");
    assert!(
        h.store.running_tasks_of("a").unwrap().is_empty(),
        "no task is left running with nobody on it"
    );
    let sent_before = provider.total.load(Ordering::SeqCst);
    assert!(sent_before < 12, "claiming stopped: {sent_before} calls");
    h.store.unregister_owner("a").unwrap();
    drop(owner);

    free_disk(&h.store);
    let owner = h.owner("b");
    let (_tx, rx) = watch::channel(false);
    let out = h
        .engine(&owner, fast_settings())
        .run(&batch, rx)
        .await
        .unwrap();
    assert_eq!(out, RunOutcome::Completed { failed: 0 });
    assert_eq!(
        h.store.find_batch(&batch).unwrap().state,
        BatchState::Completed
    );
    let keys = h.result_keys();
    assert_eq!(keys.len(), 12, "every result, each once: {keys:?}");
}

/// A signal while the batch's last call is in flight: the call ends within the grace period
/// and its result is stored, so no task is left and the batch is `completed`, not `stopped`.
#[tokio::test]
async fn a_drain_in_which_every_task_finished_completes_the_batch() {
    let h = Harness::new(1, FakeProvider::new(), buckets(1, 1000, 1000));
    let batch = h
        .create(&["SIM0"], YearsSpec::Latest(1), BatchSettings::default())
        .await;
    let (tx, rx) = watch::channel(false);
    let tx = Arc::new(tx);
    let tx_in_script = tx.clone();
    let provider = Arc::new(FakeProvider {
        // The signal arrives while the call is in flight; the call then answers.
        by_request: Some(Arc::new(move |_: &GenerateRequest, _| {
            let _ = tx_in_script.send(true);
            None
        })),
        yields: 3,
        ..FakeProvider::new()
    });
    let owner = h.owner("a");
    let out = h
        .engine_with(&owner, fast_settings(), provider.clone())
        .run(&batch, rx)
        .await
        .unwrap();
    assert_eq!(provider.total.load(Ordering::SeqCst), 1);
    assert_eq!(h.result_keys().len(), 1);
    assert_eq!(out, RunOutcome::Completed { failed: 0 });
    let stored = h.store.find_batch(&batch).unwrap();
    assert_eq!(
        stored.state,
        BatchState::Completed,
        "{:?}",
        stored.state_reason
    );
    assert!(h.store.list_incomplete().unwrap().is_empty());
}

/// Process A runs the batch with two calls in flight (it reads the stop request only between
/// tasks). The dashboard's Stop is written; before A reads it, B joins: B must not clear it.
/// B obeys it at once (it writes no state: A is alive), and the stop is still there for A.
#[tokio::test]
async fn a_join_never_clears_a_stop_the_other_process_has_not_read() {
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
    let (_tx_a, rx_a) = watch::channel(false);
    let batch_a = batch.clone();
    let a = tokio::spawn(async move { engine_a.run(&batch_a, rx_a).await });
    until_clock(&h, "A holds two calls", Duration::from_secs(3600), || {
        stuck.total.load(Ordering::SeqCst) >= 2
    })
    .await;

    // The dashboard's Stop.
    h.store.request_stop(&batch, true).unwrap();

    let owner_b = h.owner("b");
    let (_tx_b, rx_b) = watch::channel(false);
    let engine_b = h.engine(&owner_b, fast_settings());
    let batch_b = batch.clone();
    let b = tokio::spawn(async move { engine_b.run(&batch_b, rx_b).await });
    until_clock(&h, "B obeys the stop", Duration::from_secs(3600), || {
        b.is_finished()
    })
    .await;
    assert_eq!(b.await.unwrap().unwrap(), RunOutcome::Stopped);
    assert!(
        h.store.stop_requested(&batch).unwrap(),
        "the stop is still pending for A"
    );
    assert_eq!(h.provider.total.load(Ordering::SeqCst), 0, "B sent nothing");
    assert_ne!(
        h.store.find_batch(&batch).unwrap().state,
        BatchState::Stopped,
        "A is still on it: its state is A's to write"
    );
    a.abort();
    let _ = a.await;
    drop(owner_a);
}

/// The provider is down for the first 10 minutes. Its breaker opens; the first probe claimed
/// is a year whose result an earlier batch stored, which needs no call: reusing it says
/// nothing about the provider, so the breaker stays open and only probes go out until a probe
/// is answered. Had the reuse closed it, the batch would send its waiting tasks into the
/// outage again and open the breaker a second time.
#[tokio::test]
async fn a_reused_result_does_not_close_an_open_outage_breaker() {
    let clock_for_script = Arc::new(std::sync::Mutex::new(None::<fintel_time::ManualClock>));
    let c2 = clock_for_script.clone();
    let down = Arc::new(AtomicBool::new(false));
    let down_in_script = down.clone();
    let provider = FakeProvider::with_script(Arc::new(move |_: &str, _| {
        if !down_in_script.load(Ordering::SeqCst) {
            return None;
        }
        let clock = c2.lock().unwrap().clone()?;
        let now = fintel_time::Clock::now(&clock);
        let outage_end = start_time() + jiff::SignedDuration::from_mins(10);
        (now < outage_end).then(|| CallError::Transient {
            message: "503 model overloaded".into(),
            reached_server: true,
        })
    }));
    let h = Harness::new(12, provider, buckets(1, 1000, 1000));
    *clock_for_script.lock().unwrap() = Some(h.clock.clone());
    // An earlier batch stored the results of SIM6..SIM11.
    let stored: Vec<String> = (6..12).map(|i| format!("SIM{i}")).collect();
    let earlier = h
        .create(
            &names(&stored),
            YearsSpec::Latest(1),
            BatchSettings::default(),
        )
        .await;
    let (out, _) = h.run_recorded(&earlier, Upkeep::off()).await;
    assert_eq!(out, RunOutcome::Completed { failed: 0 });

    down.store(true, Ordering::SeqCst);
    let t = tickers(12);
    let batch = h
        .create(&names(&t), YearsSpec::Latest(1), BatchSettings::default())
        .await;
    let owner = h.owner("second");
    let recorder = Arc::new(Recorder::default());
    let (_tx, rx) = watch::channel(false);
    let out = h
        .engine_watched(
            &owner,
            fast_settings(),
            h.provider.clone(),
            recorder.clone(),
            Upkeep::off(),
        )
        .run(&batch, rx)
        .await
        .unwrap();
    assert_eq!(out, RunOutcome::Completed { failed: 0 });
    let outages = recorder
        .lines()
        .iter()
        .filter(|l| l.starts_with("event repeated_failures"))
        .count();
    assert_eq!(
        outages,
        1,
        "one outage, one breaker: {:?}",
        recorder.lines()
    );
}
