//! Delivery tests against a webhook server on 127.0.0.1: the bodies of both formats as the
//! server receives them, and that a failing, hanging or absent server never blocks the caller.

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fintel_notify::{Format, Notification, Notifier, DISCORD_CONTENT_LIMIT};
use fintel_time::ManualClock;
use jiff::Timestamp;
use serde_json::{json, Value};
use support::{refused_port, timed, wait_for, Reply, TestServer};
use tokio::sync::Semaphore;

/// notify must never make the batch wait.
const NOTIFY_BUDGET: Duration = Duration::from_millis(50);

fn at() -> Timestamp {
    "2026-03-09T07:05:00Z".parse().expect("timestamp")
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(at()))
}

fn fast(notifier: Notifier) -> Notifier {
    notifier
        .with_timeout(Duration::from_millis(500))
        .with_retries(2, Duration::from_millis(20))
        .with_clock(clock())
}

fn completed() -> Notification {
    Notification::BatchCompleted {
        batch_id: "b-42".into(),
        name: "sp500".into(),
        completed: 480,
        skipped: 15,
        failed: 5,
    }
}

fn notify_timed(notifier: &Notifier, event: &Notification) {
    let ((), took) = timed(|| notifier.notify(event));
    assert!(took < NOTIFY_BUDGET, "notify took {took:?}");
}

#[tokio::test]
async fn discord_body_as_received() {
    let server = TestServer::start(Reply::Status(204)).await;
    let notifier = fast(
        Notifier::new(&server.url("/api/webhooks/1/token"), Some(Format::Discord))
            .expect("notifier"),
    );
    notify_timed(&notifier, &completed());
    assert!(notifier.flush(Duration::from_secs(2)).await);

    let received = server.received();
    assert_eq!(received.len(), 1);
    let r = &received[0];
    assert_eq!(r.path, "/api/webhooks/1/token");
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    let body = &r.body;
    assert_eq!(body["username"], "fintel");
    assert_eq!(
        body["content"],
        "Batch \"sp500\" (b-42) completed: 480 completed, 15 skipped, 5 failed."
    );
    assert_eq!(body["content"], completed().summary().as_str());
    assert_eq!(body["allowed_mentions"], json!({ "parse": [] }));
    let embed = &body["embeds"][0];
    assert_eq!(embed["title"], "Batch completed");
    assert_eq!(embed["timestamp"], "2026-03-09T07:05:00Z");
    assert_eq!(
        embed["fields"],
        json!([
            { "name": "Batch", "value": "sp500 (b-42)", "inline": false },
            { "name": "Completed", "value": "480", "inline": true },
            { "name": "Skipped", "value": "15", "inline": true },
            { "name": "Failed", "value": "5", "inline": true },
        ])
    );
}

#[tokio::test]
async fn discord_keys_exhausted_shows_reset_in_pacific_and_readers_time() {
    let server = TestServer::start(Reply::Status(204)).await;
    let notifier =
        fast(Notifier::new(&server.url("/hook"), Some(Format::Discord)).expect("notifier"));
    // 07:05 UTC on 2026-03-09 is 00:05 PDT: daylight saving time began the day before.
    let reset: Timestamp = "2026-03-09T07:05:00Z".parse().expect("timestamp");
    notify_timed(
        &notifier,
        &Notification::KeysExhausted {
            batch_id: "b1".into(),
            reset_at: reset,
        },
    );
    assert!(notifier.flush(Duration::from_secs(2)).await);
    let body = &server.received()[0].body;
    let content = body["content"].as_str().expect("content");
    assert!(content.starts_with("Batch b1: every API key has used up its daily quota"));
    assert!(content.contains("(2026-03-09 00:05 PDT)"), "{content}");
    let fields = &body["embeds"][0]["fields"];
    assert_eq!(
        fields[1]["value"],
        format!("<t:{0}:F> (<t:{0}:R>)", reset.as_second())
    );
    assert_eq!(fields[2]["value"], "2026-03-09 00:05 PDT");
}

#[tokio::test]
async fn discord_long_texts_are_cut_to_discord_limits() {
    let server = TestServer::start(Reply::Status(204)).await;
    let notifier =
        fast(Notifier::new(&server.url("/hook"), Some(Format::Discord)).expect("notifier"));
    let reason = "x".repeat(3000);
    notify_timed(
        &notifier,
        &Notification::RepeatedFailures {
            batch_id: "b1".into(),
            count: 12,
            last_reason: reason.clone(),
        },
    );
    notify_timed(
        &notifier,
        &Notification::Warning {
            batch_id: None,
            message: "ü".repeat(DISCORD_CONTENT_LIMIT),
        },
    );
    assert!(notifier.flush(Duration::from_secs(2)).await);
    let received = server.received();
    assert_eq!(received.len(), 2);

    let content = received[0].body["content"].as_str().expect("content");
    assert_eq!(content.chars().count(), DISCORD_CONTENT_LIMIT);
    assert!(content.starts_with("Batch b1: 12 tasks failed in a row; the last failure: xxx"));
    assert!(content.ends_with('…'));
    let last = received[0].body["embeds"][0]["fields"][2]["value"]
        .as_str()
        .expect("field");
    assert_eq!(last.chars().count(), 1024);

    // Exactly at the limit: sent whole.
    let content = received[1].body["content"].as_str().expect("content");
    assert_eq!(content, "ü".repeat(DISCORD_CONTENT_LIMIT));
}

#[tokio::test]
async fn json_body_of_every_event() {
    let server = TestServer::start(Reply::Status(200)).await;
    let notifier = fast(Notifier::new(&server.url("/events"), None).expect("notifier"));
    assert_eq!(notifier.format(), Some(Format::Json));
    let reset: Timestamp = "2026-11-01T09:05:00Z".parse().expect("timestamp");
    let events = vec![
        completed(),
        Notification::BatchStopped {
            batch_id: "b-42".into(),
            reason: "every API key is invalid".into(),
            resume_command: "fintel batch --resume --batch-id b-42".into(),
        },
        Notification::KeysExhausted {
            batch_id: "b-42".into(),
            reset_at: reset,
        },
        Notification::DiskLow {
            free_bytes: 512 * 1024 * 1024,
            threshold_bytes: 2 * 1024 * 1024 * 1024,
            path: PathBuf::from("/data/fintel"),
        },
        Notification::RepeatedFailures {
            batch_id: "b-42".into(),
            count: 10,
            last_reason: "model output invalid after repair".into(),
        },
        Notification::Warning {
            batch_id: Some("b-42".into()),
            message: "SEC answered 403 three times".into(),
        },
        Notification::Warning {
            batch_id: None,
            message: "backup failed: disk full".into(),
        },
    ];
    for event in &events {
        notify_timed(&notifier, event);
    }
    assert!(notifier.flush(Duration::from_secs(2)).await);
    let bodies: Vec<Value> = server.received().into_iter().map(|r| r.body).collect();
    assert_eq!(bodies.len(), events.len());
    for (body, event) in bodies.iter().zip(&events) {
        assert_eq!(body["message"], event.summary().as_str());
        assert_eq!(body["at"], "2026-03-09T07:05:00Z");
    }

    assert_eq!(
        bodies[0],
        json!({
            "event": "batch_completed",
            "batch_id": "b-42",
            "message": "Batch \"sp500\" (b-42) completed: 480 completed, 15 skipped, 5 failed.",
            "at": "2026-03-09T07:05:00Z",
            "name": "sp500",
            "completed": 480,
            "skipped": 15,
            "failed": 5,
        })
    );
    assert_eq!(
        bodies[1],
        json!({
            "event": "batch_stopped",
            "batch_id": "b-42",
            "message": "Batch b-42 stopped: every API key is invalid. Resume it with: \
                        fintel batch --resume --batch-id b-42",
            "at": "2026-03-09T07:05:00Z",
            "reason": "every API key is invalid",
            "resume_command": "fintel batch --resume --batch-id b-42",
        })
    );
    // 2026-11-01 is the day daylight saving time ends: 09:05 UTC is the second 01:05, in PST.
    assert_eq!(bodies[2]["event"], "keys_exhausted");
    assert_eq!(bodies[2]["reset_at"], "2026-11-01T09:05:00Z");
    assert_eq!(bodies[2]["reset_at_pacific"], "2026-11-01T01:05:00-08:00");
    let local: Timestamp = bodies[2]["reset_at_local"]
        .as_str()
        .expect("local reset")
        .parse()
        .expect("RFC 3339");
    assert_eq!(local, reset);
    assert!(bodies[2]["message"]
        .as_str()
        .expect("message")
        .contains("(2026-11-01 01:05 PST)"));
    assert_eq!(
        bodies[3],
        json!({
            "event": "disk_low",
            "batch_id": null,
            "message": "Disk space low on /data/fintel: 512.0 MiB free, below the 2.0 GiB \
                        minimum; work is paused until space is freed.",
            "at": "2026-03-09T07:05:00Z",
            "path": "/data/fintel",
            "free_bytes": 536870912,
            "threshold_bytes": 2147483648u64,
        })
    );
    assert_eq!(
        bodies[4],
        json!({
            "event": "repeated_failures",
            "batch_id": "b-42",
            "message": "Batch b-42: 10 tasks failed in a row; the last failure: model output \
                        invalid after repair",
            "at": "2026-03-09T07:05:00Z",
            "count": 10,
            "last_reason": "model output invalid after repair",
        })
    );
    assert_eq!(
        bodies[5],
        json!({
            "event": "warning",
            "batch_id": "b-42",
            "message": "Batch b-42: SEC answered 403 three times",
            "at": "2026-03-09T07:05:00Z",
        })
    );
    assert_eq!(bodies[6]["batch_id"], Value::Null);
    assert_eq!(bodies[6]["message"], "backup failed: disk full");
}

#[tokio::test]
async fn events_are_stamped_when_notified_not_when_sent() {
    let server = TestServer::start(Reply::Status(204)).await;
    let clock = clock();
    let notifier = Notifier::new(&server.url("/e"), None)
        .expect("notifier")
        .with_clock(clock.clone());
    notifier.notify(&completed());
    clock.advance(Duration::from_secs(3600));
    notifier.notify(&completed());
    assert!(notifier.flush(Duration::from_secs(2)).await);
    let ats: Vec<Value> = server
        .received()
        .into_iter()
        .map(|r| r.body["at"].clone())
        .collect();
    assert_eq!(
        ats,
        vec![json!("2026-03-09T07:05:00Z"), json!("2026-03-09T08:05:00Z")]
    );
}

#[tokio::test]
async fn server_error_is_retried_then_given_up_without_blocking() {
    let server = TestServer::start(Reply::Status(500)).await;
    let notifier = fast(Notifier::new(&server.url("/e"), None).expect("notifier"));
    notify_timed(&notifier, &completed());
    let start = Instant::now();
    assert!(notifier.flush(Duration::from_secs(2)).await);
    assert!(start.elapsed() < Duration::from_secs(1));
    // One attempt and two retries.
    assert_eq!(server.hits(), 3);
    assert_eq!(notifier.pending(), 0);
}

#[tokio::test]
async fn too_many_requests_waits_retry_after_then_delivers() {
    let server = TestServer::scripted(|n| {
        if n == 0 {
            Reply::TooMany {
                retry_after_secs: 0,
            }
        } else {
            Reply::Status(204)
        }
    })
    .await;
    let notifier = fast(Notifier::new(&server.url("/e"), None).expect("notifier"));
    notify_timed(&notifier, &completed());
    assert!(notifier.flush(Duration::from_secs(2)).await);
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn client_error_is_not_retried() {
    let server = TestServer::start(Reply::Status(404)).await;
    let notifier = fast(Notifier::new(&server.url("/e"), None).expect("notifier"));
    notify_timed(&notifier, &completed());
    assert!(notifier.flush(Duration::from_secs(2)).await);
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn hanging_server_never_blocks_notify_and_flush_keeps_its_timeout() {
    let server = TestServer::start(Reply::Hang).await;
    let notifier = Notifier::new(&server.url("/e"), None)
        .expect("notifier")
        .with_timeout(Duration::from_millis(300))
        .with_retries(0, Duration::from_millis(10));
    notify_timed(&notifier, &completed());
    notify_timed(&notifier, &completed());

    let start = Instant::now();
    assert!(!notifier.flush(Duration::from_millis(100)).await);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(100) && took < Duration::from_millis(450),
        "flush took {took:?}"
    );
    assert_eq!(notifier.pending(), 2);

    // Each request gives up after its own timeout, and the queue empties.
    let start = Instant::now();
    assert!(notifier.flush(Duration::from_secs(3)).await);
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(400), "flush took {took:?}");
    assert!(took < Duration::from_millis(1500), "flush took {took:?}");
    assert_eq!(server.hits(), 2);
    assert_eq!(notifier.pending(), 0);
}

#[tokio::test]
async fn refused_connection_is_retried_then_given_up() {
    let url = format!("http://127.0.0.1:{}/e", refused_port());
    let notifier = fast(Notifier::new(&url, None).expect("notifier"));
    notify_timed(&notifier, &completed());
    let start = Instant::now();
    assert!(notifier.flush(Duration::from_secs(2)).await);
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(notifier.pending(), 0);
}

#[tokio::test]
async fn full_queue_drops_the_oldest_events() {
    let gate = Arc::new(Semaphore::new(0));
    let server = TestServer::start(Reply::Gate(gate.clone())).await;
    let notifier =
        fast(Notifier::new(&server.url("/e"), None).expect("notifier")).with_queue_capacity(2);
    let warning = |i: usize| Notification::Warning {
        batch_id: None,
        message: format!("event {i}"),
    };

    notify_timed(&notifier, &warning(1));
    // Event 1 is now held by the server; the queue behind it holds two.
    assert!(wait_for(Duration::from_secs(2), || server.hits() == 1).await);
    for i in 2..=6 {
        notify_timed(&notifier, &warning(i));
    }
    assert_eq!(notifier.dropped(), 3);
    assert_eq!(notifier.pending(), 3);

    gate.add_permits(10);
    assert!(notifier.flush(Duration::from_secs(2)).await);
    let messages: Vec<Value> = server
        .received()
        .into_iter()
        .map(|r| r.body["message"].clone())
        .collect();
    assert_eq!(
        messages,
        vec![json!("event 1"), json!("event 5"), json!("event 6")]
    );
}

#[tokio::test]
async fn disabled_notifier_sends_nothing() {
    let notifier = Notifier::disabled();
    assert!(!notifier.is_enabled());
    assert_eq!(notifier.masked_url(), None);
    notify_timed(&notifier, &completed());
    assert_eq!(notifier.pending(), 0);
    let start = Instant::now();
    assert!(notifier.flush(Duration::from_secs(1)).await);
    assert!(start.elapsed() < Duration::from_millis(50));

    let from_config = Notifier::from_config(None, None).expect("no URL is fine");
    assert!(!from_config.is_enabled());
    let blank = Notifier::from_config(Some("  "), None).expect("blank URL is fine");
    assert!(!blank.is_enabled());
}

#[tokio::test]
async fn clones_share_one_queue_and_a_dropped_notifier_still_sends_its_queue() {
    let server = TestServer::start(Reply::Status(204)).await;
    let notifier = fast(Notifier::new(&server.url("/e"), None).expect("notifier"));
    let clone = notifier.clone();
    clone.notify(&completed());
    notifier.notify(&completed());
    assert_eq!(notifier.pending(), 2);
    drop(clone);
    drop(notifier);
    assert!(wait_for(Duration::from_secs(2), || server.received().len() == 2).await);
}

#[test]
fn notify_outside_a_runtime_waits_for_one() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let server = runtime.block_on(TestServer::start(Reply::Status(204)));
    let notifier = fast(Notifier::new(&server.url("/e"), None).expect("notifier"));

    // From a plain thread: queued, nothing panics, nothing is sent yet.
    notify_timed(&notifier, &completed());
    assert_eq!(notifier.pending(), 1);

    runtime.block_on(async {
        assert!(notifier.flush(Duration::from_secs(2)).await);
    });
    assert_eq!(server.received().len(), 1);
}
