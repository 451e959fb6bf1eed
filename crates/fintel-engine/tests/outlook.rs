//! The totals and requests every view shows while a batch runs: planned from the first moment,
//! never growing as filings resolve.

mod support;

use std::sync::{Arc, Mutex};

use fintel_engine::{BatchSettings, Level, Observer, Progress, YearsSpec};
use support::*;

#[derive(Default)]
struct Totals(Mutex<Vec<u64>>);

impl Observer for Totals {
    fn progress(&self, p: &Progress) {
        self.0.lock().unwrap().push(p.counts.total);
    }
    fn message(&self, _: Level, _: &str) {}
}

#[tokio::test]
async fn the_total_is_companies_times_years_from_the_first_report_to_the_last() {
    let h = Harness::new(6, FakeProvider::new(), buckets(2, 1000, 1000));
    let t = tickers(6);
    let names: Vec<&str> = t.iter().map(String::as_str).collect();
    let batch = h
        .create(&names, YearsSpec::Latest(7), BatchSettings::default())
        .await;
    // Before any company is resolved: 6 x 7 planned, all of them model requests.
    let before = h.store.task_counts(&batch).unwrap();
    assert_eq!((before.total, before.resolving), (42, 6));
    assert_eq!(h.store.model_requests_left(&batch).unwrap(), 42);

    let owner = h.owner("a");
    let totals = Arc::new(Totals::default());
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let out = h
        .engine_watched(
            &owner,
            fast_settings(),
            h.provider.clone(),
            totals.clone(),
            fintel_engine::Upkeep::off(),
        )
        .run(&batch, rx)
        .await
        .unwrap();
    assert_eq!(out, fintel_engine::RunOutcome::Completed { failed: 0 });
    // Reports come at most every 200 ms of real time, so a fast run may make none; whatever
    // it reported had the planned total.
    let seen = totals.0.lock().unwrap().clone();
    assert!(seen.iter().all(|&n| n == 42), "totals reported: {seen:?}");
    assert_eq!(h.store.model_requests_left(&batch).unwrap(), 0);
    let after = h.store.task_counts(&batch).unwrap();
    assert_eq!((after.total, after.ended()), (42, 42));
}
