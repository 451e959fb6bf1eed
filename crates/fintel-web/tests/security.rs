//! The dashboard's two actions and what guards them: the per-run token, the Host and Origin
//! checks, and the security headers on every response.

mod common;

use axum::body::Body;
use axum::http::Request;
use common::*;

fn stop_requested(f: &Fixture, id: &str) -> bool {
    f.store().stop_requested(id).unwrap()
}

fn task_state(f: &Fixture, id: i64) -> String {
    f.store()
        .conn()
        .query_row("SELECT state FROM tasks WHERE id = ?1", [id], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn stop_needs_the_token_and_then_sets_the_flag_the_worker_polls() {
    let f = fixture();
    let app = f.router();
    let path = format!("/batches/{MAIN}/stop");

    let a = post(&app, &path, "", &[]).await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(
        a.body
            .contains("actions need the token printed on the terminal"),
        "{}",
        a.body
    );
    let a = post(&app, &path, "token=wrong", &[]).await;
    assert_eq!(a.status, 403);
    assert!(a.body.contains("token is wrong"));
    let other = fintel_web::Token::generate();
    let a = post(&app, &path, &format!("token={}", other.as_str()), &[]).await;
    assert_eq!(a.status, 403, "another run's token");
    // Not a form at all.
    let a = send(
        &app,
        Request::post(&path)
            .header("host", HOST)
            .header("content-type", "application/json")
            .body(Body::from(format!(
                "{{\"token\":\"{}\"}}",
                f.token.as_str()
            )))
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, 403);
    assert!(!stop_requested(&f, MAIN), "nothing changed");

    let a = post(&app, &path, &format!("token={}", f.token.as_str()), &[]).await;
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(
        a.headers["location"],
        format!("/batches/{MAIN}?notice=stop")
    );
    assert!(stop_requested(&f, MAIN));
    let page = get(&app, &format!("/batches/{MAIN}?notice=stop"))
        .await
        .body;
    assert!(
        page.contains("Stop requested. The process running this batch sees it"),
        "{page}"
    );
    assert!(page.contains("Stop requested: the worker finishes the calls in flight"));
    assert!(!page.contains("Stop this batch"), "no second stop button");
    // The event log says who asked.
    let events: i64 = f
        .store()
        .conn()
        .query_row(
            "SELECT COUNT(*) FROM events WHERE batch_id = ?1 AND message LIKE '%dashboard%'",
            [MAIN],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(events, 1);

    // A completed batch has nothing to stop; an unknown one is not found.
    let a = post(
        &app,
        &format!("/batches/{FIN}/stop"),
        &format!("token={}", f.token.as_str()),
        &[],
    )
    .await;
    assert_eq!(a.status, 409, "{}", a.body);
    assert!(a.body.contains("nothing to stop"));
    assert!(!stop_requested(&f, FIN));
    let a = post(
        &app,
        "/batches/nope/stop",
        &format!("token={}", f.token.as_str()),
        &[],
    )
    .await;
    assert_eq!(a.status, 404);
}

#[tokio::test]
async fn requeue_puts_failed_tasks_back_only_with_the_token() {
    let f = fixture();
    let app = f.router();
    let path = format!("/batches/{MAIN}/requeue-failed");
    assert_eq!(post(&app, &path, "", &[]).await.status, 403);
    assert_eq!(post(&app, &path, "token=", &[]).await.status, 403);
    assert_eq!(task_state(&f, f.failed_task), "failed");

    let a = post(&app, &path, &format!("token={}", f.token.as_str()), &[]).await;
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(
        a.headers["location"],
        format!("/batches/{MAIN}?notice=requeued&n=1")
    );
    assert_eq!(task_state(&f, f.failed_task), "pending");
    let page = get(&app, &format!("/batches/{MAIN}?notice=requeued&n=1"))
        .await
        .body;
    assert!(
        page.contains("1 failed task(s) are pending again"),
        "{page}"
    );
    assert!(
        !page.contains("requeue-failed\""),
        "no failed task left to re-queue"
    );
    // The notice shows fixed text only, whatever the URL says.
    let page = get(
        &app,
        &format!("/batches/{MAIN}?notice=%3Cscript%3Ealert(1)%3C/script%3E&n=%3Cb%3E"),
    )
    .await
    .body;
    assert_no_live_markup(&page, "notice");
}

#[tokio::test]
async fn requests_naming_another_host_are_refused() {
    let f = fixture();
    let app = f.router();
    for host in [
        "evil.example",
        "evil.example:8080",
        "127.0.0.1:9999",
        "localhost.evil.example:8080",
    ] {
        let a = send(
            &app,
            Request::get("/")
                .header("host", host)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(a.status, 403, "{host}");
        assert!(a
            .body
            .contains("this dashboard answers only as http://127.0.0.1:8080/"));
        assert!(!a.body.contains(MAIN), "no data leaks to another name");
    }
    let a = send(&app, Request::get("/").body(Body::empty()).unwrap()).await;
    assert_eq!(a.status, 403, "no Host at all");
    for host in ["127.0.0.1:8080", "localhost:8080", "[::1]:8080"] {
        let a = send(
            &app,
            Request::get("/")
                .header("host", host)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(a.status, 200, "{host}");
    }
    // A POST through another name is refused before its token is looked at.
    let a = send(
        &app,
        Request::post(format!("/batches/{MAIN}/stop"))
            .header("host", "evil.example:8080")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(format!("token={}", f.token.as_str())))
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, 403);
    assert!(!stop_requested(&f, MAIN));
}

#[tokio::test]
async fn posts_from_another_origin_are_refused_even_with_the_token() {
    let f = fixture();
    let app = f.router();
    let path = format!("/batches/{MAIN}/stop");
    let body = format!("token={}", f.token.as_str());
    for (name, value) in [
        ("origin", "http://evil.example"),
        ("origin", "null"),
        ("origin", "https://127.0.0.1:8080"),
        ("origin", "http://127.0.0.1:8081"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let a = post(&app, &path, &body, &[(name, value)]).await;
        assert_eq!(a.status, 403, "{name}: {value}");
        assert!(a.body.contains("only from the dashboard's own pages"));
        assert!(!stop_requested(&f, MAIN), "{name}: {value}");
    }
    // The dashboard's own origin is fine.
    let a = post(
        &app,
        &path,
        &body,
        &[
            ("origin", "http://127.0.0.1:8080"),
            ("sec-fetch-site", "same-origin"),
        ],
    )
    .await;
    assert_eq!(a.status, 303);
    assert!(stop_requested(&f, MAIN));
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let f = fixture();
    let app = f.router();
    let mut answers = Vec::new();
    for path in [
        "/".to_string(),
        format!("/batches/{MAIN}"),
        "/keys".into(),
        "/results".into(),
        "/companies/ACME".into(),
        format!("/results/{}/document", f.acme_2024_result),
        format!("/tasks/{}", f.acme_2024_task),
        "/static/style.css".into(),
        "/static/live.js".into(),
        "/nowhere".into(),
        format!("/batches/{MAIN}?state=bogus"),
    ] {
        answers.push((path.clone(), get(&app, &path).await));
    }
    answers.push((
        "foreign host".into(),
        send(
            &app,
            Request::get("/")
                .header("host", "evil.example")
                .body(Body::empty())
                .unwrap(),
        )
        .await,
    ));
    answers.push((
        "post without token".into(),
        post(&app, &format!("/batches/{MAIN}/stop"), "", &[]).await,
    ));
    for (what, a) in &answers {
        let csp = a.headers["content-security-policy"].to_str().unwrap();
        for part in [
            "default-src 'none'",
            "style-src 'self'",
            "script-src 'self'",
            "img-src 'self' data:",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(part), "{what}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{what}");
        assert_eq!(a.headers["x-content-type-options"], "nosniff", "{what}");
        assert_eq!(a.headers["x-frame-options"], "DENY", "{what}");
        assert_eq!(a.headers["referrer-policy"], "no-referrer", "{what}");
        // No inline style or script anywhere: the policy would block them.
        assert!(!a.body.contains(" style=\""), "{what}");
        assert!(!a.body.contains("<style"), "{what}");
        assert!(!a.body.contains("<script>"), "{what}");
    }
}
