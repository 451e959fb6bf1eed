//! What a failed delivery logs: one warning that says why, with the webhook URL masked so
//! that a Discord token never reaches a log file.

mod support;

use std::time::Duration;

use fintel_notify::{Format, Notification, Notifier};
use support::{refused_port, wait_for, Logs, Reply, TestServer};

const ID: &str = "112233445566";
const TOKEN: &str = "Zx9-SECRETtoken_abc";

fn secret_path() -> String {
    format!("/api/webhooks/{ID}/{TOKEN}")
}

fn event() -> Notification {
    Notification::BatchStopped {
        batch_id: "b1".into(),
        reason: "every API key is invalid".into(),
        resume_command: "fintel batch --resume --batch-id b1".into(),
    }
}

fn assert_no_secret(logs: &Logs) {
    let text = logs.text();
    assert!(!text.contains(TOKEN), "token in logs:\n{text}");
    assert!(!text.contains(ID), "webhook id in logs:\n{text}");
}

#[tokio::test]
async fn error_answer_is_logged_once_with_a_masked_url() {
    let (logs, _guard) = Logs::capture();
    let server = TestServer::start(Reply::Status(401)).await;
    let notifier = Notifier::new(&server.url(&secret_path()), Some(Format::Discord))
        .expect("notifier")
        .with_timeout(Duration::from_millis(500))
        .with_retries(2, Duration::from_millis(10));
    notifier.notify(&event());
    assert!(notifier.flush(Duration::from_secs(2)).await);

    let warnings = logs.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    let w = &warnings[0];
    assert!(w.contains(&format!("http://{}/api/…", server.addr)), "{w}");
    assert!(w.contains("401"), "{w}");
    assert!(
        w.contains("scripted answer"),
        "the answer's body helps: {w}"
    );
    assert!(w.contains("batch_stopped"), "{w}");
    assert_no_secret(&logs);
}

#[tokio::test]
async fn refused_connection_is_logged_without_the_url() {
    let (logs, _guard) = Logs::capture();
    let url = format!("http://127.0.0.1:{}{}", refused_port(), secret_path());
    let notifier = Notifier::new(&url, None)
        .expect("notifier")
        .with_timeout(Duration::from_millis(500))
        .with_retries(1, Duration::from_millis(10));
    notifier.notify(&event());
    assert!(notifier.flush(Duration::from_secs(2)).await);

    let warnings = logs.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    let w = &warnings[0];
    assert!(w.contains("after 2 attempt(s)"), "{w}");
    assert!(w.to_lowercase().contains("connect"), "{w}");
    // The retry is logged at debug level, also masked.
    assert!(logs.text().contains("will retry"), "{}", logs.text());
    assert_no_secret(&logs);
}

#[tokio::test]
async fn timeout_is_logged_as_such() {
    let (logs, _guard) = Logs::capture();
    let server = TestServer::start(Reply::Hang).await;
    let notifier = Notifier::new(&server.url(&secret_path()), None)
        .expect("notifier")
        .with_timeout(Duration::from_millis(100))
        .with_retries(0, Duration::from_millis(10));
    notifier.notify(&event());
    assert!(notifier.flush(Duration::from_secs(2)).await);
    let warnings = logs.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(
        warnings[0].contains("no answer within 100ms"),
        "{}",
        warnings[0]
    );
    assert_no_secret(&logs);
}

#[tokio::test]
async fn dropped_events_are_logged() {
    let (logs, _guard) = Logs::capture();
    let server = TestServer::start(Reply::Hang).await;
    let notifier = Notifier::new(&server.url(&secret_path()), None)
        .expect("notifier")
        .with_timeout(Duration::from_secs(5))
        .with_queue_capacity(1);
    notifier.notify(&event());
    assert!(wait_for(Duration::from_secs(2), || server.hits() == 1).await);
    notifier.notify(&Notification::Warning {
        batch_id: None,
        message: "second".into(),
    });
    notifier.notify(&Notification::Warning {
        batch_id: None,
        message: "third".into(),
    });
    let warnings = logs.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(warnings[0].contains("queue is full"), "{}", warnings[0]);
    assert!(warnings[0].contains("second"), "{}", warnings[0]);
    assert_no_secret(&logs);
}

/// A log layer that forwards a warning as a notification, as a binary may do for "other
/// warnings": the notifier's own warnings must not deadlock it.
#[tokio::test]
async fn a_layer_forwarding_warnings_to_the_notifier_does_not_deadlock() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, OnceLock};
    use tracing_subscriber::layer::{Context, SubscriberExt};

    struct Forward {
        notifier: Arc<OnceLock<Notifier>>,
        forwarded: Arc<AtomicUsize>,
    }
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Forward {
        fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
            if *event.metadata().level() != tracing::Level::WARN {
                return;
            }
            // Once only: forwarding every warning about a full queue would never end.
            if self.forwarded.fetch_add(1, Ordering::SeqCst) == 0 {
                if let Some(n) = self.notifier.get() {
                    n.notify(&Notification::Warning {
                        batch_id: None,
                        message: "forwarded".into(),
                    });
                }
            }
        }
    }

    let cell = Arc::new(OnceLock::new());
    let forwarded = Arc::new(AtomicUsize::new(0));
    let subscriber = tracing_subscriber::registry().with(Forward {
        notifier: cell.clone(),
        forwarded: forwarded.clone(),
    });
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = TestServer::start(Reply::Hang).await;
    let notifier = Notifier::new(&server.url("/hook"), None)
        .expect("notifier")
        .with_timeout(Duration::from_secs(5))
        .with_queue_capacity(1);
    let _ = cell.set(notifier.clone());
    notifier.notify(&event());
    assert!(wait_for(Duration::from_secs(2), || server.hits() == 1).await);
    notifier.notify(&event());
    // Full: drops the waiting event and warns; the layer's notify drops one more (tracing
    // does not dispatch the warning raised inside the layer again).
    notifier.notify(&event());
    assert!(forwarded.load(Ordering::SeqCst) >= 1);
    assert_eq!(notifier.dropped(), 2);
    assert_eq!(notifier.pending(), 2);
}
