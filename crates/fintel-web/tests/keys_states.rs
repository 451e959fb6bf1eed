//! The Keys page in real weather: five buckets, each in one of the states a batch left alone
//! for days meets (the provider has not reset yet, a day that looks spent only through
//! uncertain calls, spent, a cap too small for a waiting request, available), each shown
//! with its word and what it means.
//!
//! With `FINTEL_KEYS_SCREENSHOT=PATH` and `/usr/bin/chromium`, it also serves the page on
//! 127.0.0.1 and saves a screenshot there (how `docs/dashboard-keys.png` is made).

mod common;

use std::time::Duration;

use common::*;
use fintel_store::{BucketLimits, CallIntent, CallPurpose};
use fintel_time::Clock;
use fintel_web::{BucketConfig, KeyConfig, WebConfig};

const LIMITS: BucketLimits = BucketLimits {
    requests_per_day: 20,
    requests_per_minute: 5,
    input_tokens_per_minute: 250_000,
};

fn bucket(name: &str, n: usize, cap: u64) -> BucketConfig {
    BucketConfig {
        name: name.into(),
        keys: vec![KeyConfig {
            label: format!("GOOGLE_API_KEY_{n} (AIza...{n:0>4})"),
            fingerprint: format!("fp-{name}"),
        }],
        limits: BucketLimits {
            input_tokens_per_minute: cap,
            ..LIMITS
        },
    }
}

/// The fixture's data directory with five buckets in five states.
fn weather_keys() -> (Fixture, WebConfig) {
    let f = fixture();
    let store = f.store();
    let now = f.clock.now();
    let today = fintel_time::pacific_date(now).to_string();
    let reset = fintel_time::next_reset(now, Duration::from_secs(300));
    let mut config = f.config();
    config.buckets = vec![
        bucket("project-a", 1, 30_000),
        bucket("project-b", 2, 250_000),
        bucket("project-c", 3, 250_000),
        bucket("project-d", 4, 250_000),
        bucket("project-e", 5, 250_000),
    ];
    for b in &config.buckets {
        store
            .register_key(&b.keys[0].fingerprint, &b.keys[0].label, &b.name)
            .unwrap();
    }
    // project-b: 17 answered and 3 uncertain (a 503 and two calls of a killed process).
    for i in 0..20 {
        let intent = CallIntent {
            bucket: "project-b",
            key_fingerprint: Some("fp-project-b"),
            bucket_keys: &[],
            batch_id: Some(MAIN),
            task_id: None,
            purpose: CallPurpose::Generate,
            input_tokens: 1000,
        };
        let t = now - jiff::SignedDuration::from_mins(60 - i);
        let id = store
            .reserve_call(&intent, &LIMITS, t, &today)
            .unwrap()
            .unwrap();
        match i {
            0..17 => store.finish_call(id, "ok", None, Some(1000), Some(200), None, 900),
            17 => store.finish_call(
                id,
                "transient",
                Some("503 UNAVAILABLE"),
                None,
                None,
                None,
                900,
            ),
            _ => Ok(()),
        }
        .unwrap();
    }
    // project-c: refused for the day early in the quota day; next single try in 20 minutes.
    store
        .set_bucket_backoff(
            "project-c",
            Some(now + jiff::SignedDuration::from_mins(20)),
            2,
        )
        .unwrap();
    // project-d: the provider said the day is spent.
    store.mark_bucket_exhausted("project-d", reset).unwrap();
    // A task waits for a bucket whose token cap fits its request of 45,000 tokens: over
    // project-a's 30,000.
    store
        .conn()
        .execute(
            "UPDATE tasks SET state = 'pending', lease_owner = NULL, not_before = ?1, \
             waiting_tokens = 45000 WHERE id = ?2",
            rusqlite::params![reset.as_millisecond(), f.failed_task],
        )
        .unwrap();
    (f, config)
}

#[tokio::test]
async fn keys_page_shows_waiting_reset_verifying_exhausted_cap_too_small_and_available() {
    let (_f, config) = weather_keys();
    let app = fintel_web::router(config).unwrap();
    let a = get(&app, "/keys").await;
    assert_eq!(a.status, 200);
    let page = &a.body;
    let card = |name: &str| -> String {
        let start = page
            .find(&format!("id=\"bucket-{name}\""))
            .unwrap_or_else(|| panic!("no card for {name}: {page}"));
        let end = page[start..].find("</article>").unwrap() + start;
        page[start..end].to_string()
    };
    let a_card = card("project-a");
    assert!(a_card.contains("state-cap-too-small"), "{a_card}");
    assert!(
        a_card.contains("1 waiting request(s) of up to 45,000 input tokens are over this bucket's cap of 30,000"),
        "{a_card}"
    );
    let b_card = card("project-b");
    assert!(b_card.contains("state-verifying"), "{b_card}");
    assert!(
        b_card.contains("3 of today's requests ended in a server error or timeout"),
        "{b_card}"
    );
    let c_card = card("project-c");
    assert!(c_card.contains("state-waiting-reset"), "{c_card}");
    assert!(c_card.contains("provider has not reset yet"), "{c_card}");
    let d_card = card("project-d");
    assert!(d_card.contains("state-exhausted"), "{d_card}");
    assert!(
        d_card.contains("the provider reported the day's quota spent"),
        "{d_card}"
    );
    assert!(card("project-e").contains("state-available"));

    if let Ok(path) = std::env::var("FINTEL_KEYS_SCREENSHOT") {
        screenshot(app, &path).await;
    }
}

/// Serves `app` on 127.0.0.1 and has headless Chromium save the Keys page at `path`.
async fn screenshot(app: axum::Router, path: &str) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // The dashboard checks the Host header against its bound address.
    let app = app.layer(axum::middleware::map_request(
        |mut req: axum::http::Request<axum::body::Body>| async move {
            req.headers_mut()
                .insert("host", axum::http::HeaderValue::from_static(HOST));
            req
        },
    ));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let profile = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new("/usr/bin/chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--window-size=1100,1500",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={path}"))
        .arg(format!("http://{addr}/keys"))
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.abort();
}
