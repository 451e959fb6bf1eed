//! Every page of the dashboard over a database filled through the store's API: status codes,
//! content, escaping of hostile stored text, and bad input.

mod common;

use common::*;
use fintel_store::{BatchState, Store};
use fintel_time::Clock;
use std::sync::Arc;

#[tokio::test]
async fn batches_page_shows_each_batch_with_state_progress_counts_and_pace() {
    let f = fixture();
    let app = f.router();
    let a = get(&app, "/").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.headers["content-type"], "text/html; charset=utf-8",
        "maud pages are HTML"
    );
    let page = &a.body;
    for id in [MAIN, FIN] {
        assert!(page.contains(&format!("id=\"batch-{id}\"")), "{id}\n{page}");
    }
    // MAIN: 6 year tasks: 2 ACME completed + ACME FY2022 skipped + EVIL completed, failed, pending.
    assert!(page.contains("data-done=\"5\" data-total=\"6\""), "{page}");
    assert!(page.contains("data-completed=\"3\""), "{page}");
    assert!(page.contains("5 / 6 tasks ended (83.3%)"), "{page}");
    assert!(page.contains("<progress value=\"5\" max=\"6\">"), "{page}");
    assert!(
        page.contains("Rate: <strong>0</strong> tasks in the last hour, 4 in the last 24 h"),
        "{page}"
    );
    assert!(page.contains("Running."), "{page}");
    assert!(page.contains("tasks in the last hour"), "{page}");
    // One model task left and the bucket's quota unused today: it ends within today's quota.
    assert!(
        page.contains("Expected to finish <strong>today</strong>, within today's quota."),
        "{page}"
    );
    assert!(!page.contains("at this pace"), "{page}");
    // FIN is completed: no pace, its own state.
    assert!(page.contains("data-state=\"completed\""), "{page}");
    // Live: the script, and a refresh for browsers without it.
    assert!(page.contains("<script src=\"/static/live.js\" defer></script>"));
    assert!(page.contains("<noscript><meta http-equiv=\"refresh\" content=\"5\"></noscript>"));
    assert!(
        page.contains("name=\"viewport\""),
        "phones get the device width"
    );
    assert_no_live_markup(page, "batches page");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt; weekly &quot;&gt;&lt;img"));
}

#[tokio::test]
async fn waiting_states_show_the_reset_in_local_and_pacific_time_and_the_reason() {
    let f = fixture();
    let store = f.store();
    store
        .set_batch_state(
            MAIN,
            BatchState::WaitingReset,
            Some("daily quota used on every key"),
            f.clock.now(),
        )
        .unwrap();
    drop(store);
    let app = f.router();
    let page = get(&app, "/").await.body;
    // The clock reads 2026-06-15 11:00 PDT: the reset is the next Pacific midnight + 5 min.
    assert!(
        page.contains("Waiting for the daily quota reset at"),
        "{page}"
    );
    assert!(page.contains("(2026-06-16 00:05 PDT)"), "{page}");
    assert!(page.contains("datetime=\"2026-06-16T07:05:00Z\""), "{page}");
    assert!(page.contains("daily quota used on every key"));
    // Today's quota has quota left by the ledger but the batch waits: the estimate still
    // counts requests against quota, never a rate; with the bucket spent it is tomorrow.
    let store = f.store();
    store
        .mark_bucket_exhausted("project-a", at("2026-06-16T07:05:00Z"))
        .unwrap();
    drop(store);
    let page = get(&app, "/").await.body;
    assert!(
        page.contains(
            "Expected to finish on <strong>2026-06-16</strong> (quota day 2 of 3), when that \
             quota day opens at"
        ),
        "{page}"
    );
    assert!(
        page.contains("data-finish=\"2026-06-16T07:05:00Z\""),
        "{page}"
    );
    assert!(page.contains("in about 13 h 5 min."), "{page}");
    assert!(!page.contains("ETA"), "{page}");
    // The worker's reason with its resume time: the card says the wait and the time once.
    let store = f.store();
    store
        .set_batch_state(
            MAIN,
            BatchState::WaitingReset,
            Some("daily quota used on every key; resuming at 2026-06-16 09:05 UTC (2026-06-16 02:05 PDT)"),
            f.clock.now(),
        )
        .unwrap();
    drop(store);
    let page = get(&app, "/").await.body;
    let card = page.find(&format!("id=\"batch-{MAIN}\"")).unwrap();
    let line_start = card + page[card..].find("<p class=\"state-line\">").unwrap();
    let line = &page[line_start..line_start + page[line_start..].find("</p>").unwrap()];
    assert_eq!(line.matches("resuming at").count(), 1, "{line}");
    assert_eq!(line.matches("PDT").count(), 1, "{line}");
    assert!(
        line.contains("Waiting for the daily quota reset: daily quota used"),
        "{line}"
    );

    let store = f.store();
    store
        .set_batch_state(
            MAIN,
            BatchState::WaitingProvider,
            Some("provider or SEC failing repeatedly; next probe at 12:00"),
            f.clock.now(),
        )
        .unwrap();
    drop(store);
    let page = get(&app, "/").await.body;
    assert!(
        page.contains("Waiting for the provider: provider or SEC failing repeatedly"),
        "{page}"
    );
    let store = f.store();
    store
        .set_batch_state(
            MAIN,
            BatchState::Stopped,
            Some("stopped by request"),
            f.clock.now(),
        )
        .unwrap();
    drop(store);
    let page = get(&app, "/").await.body;
    assert!(
        page.contains("Resume with <code>fintel batch --resume b-main-0001</code>"),
        "{page}"
    );
}

#[tokio::test]
async fn batch_page_has_charts_reasons_resume_command_actions_and_filtered_tasks() {
    let f = fixture();
    let app = f.router();
    let a = get(&app, &format!("/batches/{MAIN}")).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let page = &a.body;
    assert!(
        page.contains("<pre><code>fintel batch --resume b-main-0001</code></pre>"),
        "{page}"
    );
    // Both charts are inline SVG: progress over time, and one bar per quota day (two days).
    assert_eq!(page.matches("<svg class=\"chart\"").count(), 2, "{page}");
    assert!(page.contains("5 of 6 tasks ended"), "{page}");
    assert_eq!(page.matches("<rect class=\"bar\"").count(), 2, "{page}");
    assert!(page.contains("2026-06-14: 3 requests"), "{page}");
    assert!(page.contains("2026-06-15: 2 requests"), "{page}");
    // Reasons grouped, escaped, and linked to the filtered tasks.
    assert!(page.contains("no annual report for FY2022"));
    assert!(page.contains("invalid JSON twice &lt;script&gt;"), "{page}");
    assert!(
        page.contains("state=skipped&amp;reason=no%20annual%20report%20for%20FY2022"),
        "{page}"
    );
    // The two actions carry the token.
    let token = f.token.as_str();
    assert!(
        page.contains(&format!("action=\"/batches/{MAIN}/stop\"")),
        "{page}"
    );
    assert!(page.contains(&format!("action=\"/batches/{MAIN}/requeue-failed\"")));
    assert_eq!(
        page.matches(&format!("name=\"token\" value=\"{token}\""))
            .count(),
        2
    );
    // Year tasks of both companies, resolve tasks hidden; links to what the model read.
    assert!(page.contains(&format!("href=\"/tasks/{}\"", f.acme_2024_task)));
    assert_eq!(
        page.matches("<tr><td><a href=\"/companies/").count(),
        6,
        "{page}"
    );
    assert_no_live_markup(page, "batch page");

    let failed = get(&app, &format!("/batches/{MAIN}?state=failed")).await;
    assert_eq!(failed.status, 200);
    assert_eq!(
        failed.body.matches("<tr><td><a href=\"/companies/").count(),
        1
    );
    assert!(failed
        .body
        .contains(&format!("href=\"/tasks/{}\"", f.failed_task)));
    let acme = get(&app, &format!("/batches/{MAIN}?company=acm")).await;
    assert_eq!(
        acme.body
            .matches("<tr><td><a href=\"/companies/ACME\"")
            .count(),
        3
    );
    let by_cik = get(&app, &format!("/batches/{MAIN}?company=1002&kind=year")).await;
    assert_eq!(
        by_cik
            .body
            .matches("<tr><td><a href=\"/companies/EVIL\"")
            .count(),
        3
    );
    let resolve = get(&app, &format!("/batches/{MAIN}?kind=resolve")).await;
    assert_eq!(
        resolve
            .body
            .matches("<tr><td><a href=\"/companies/")
            .count(),
        2
    );
    let by_reason = get(
        &app,
        &format!("/batches/{MAIN}?state=skipped&reason=no%20annual%20report%20for%20FY2022"),
    )
    .await;
    assert_eq!(
        by_reason
            .body
            .matches("<tr><td><a href=\"/companies/")
            .count(),
        1
    );
    // A prefix of the id finds the batch.
    assert_eq!(get(&app, "/batches/b-main").await.status, 200);
    // The completed batch has nothing to resume or stop.
    let fin = get(&app, &format!("/batches/{FIN}")).await.body;
    assert!(fin.contains("Nothing to resume"), "{fin}");
    assert!(!fin.contains("/stop\""), "{fin}");
}

#[tokio::test]
async fn bad_filters_and_unknown_things_get_clear_errors() {
    let f = fixture();
    let app = f.router();
    let a = get(&app, &format!("/batches/{MAIN}?state=bogus")).await;
    assert_eq!(a.status, 400);
    assert!(
        a.body
            .contains("unknown task state &quot;bogus&quot;: use one of pending, running"),
        "{}",
        a.body
    );
    let a = get(&app, &format!("/batches/{MAIN}?kind=%3Cscript%3E")).await;
    assert_eq!(a.status, 400);
    assert_no_live_markup(&a.body, "bad kind");
    for page in ["0", "x", "-1", "100001"] {
        let a = get(&app, &format!("/batches/{MAIN}?page={page}")).await;
        assert_eq!(a.status, 400, "page {page}");
        assert!(a.body.contains("is not a page number"), "{}", a.body);
    }
    assert_eq!(
        get(&app, &format!("/batches/{MAIN}?page=2")).await.status,
        200
    );
    let a = get(&app, "/batches/%3Cscript%3Ealert(1)%3C%2Fscript%3E").await;
    assert_eq!(a.status, 404);
    assert!(a.body.contains("no batch matches"), "{}", a.body);
    assert_no_live_markup(&a.body, "unknown batch");
    let a = get(&app, "/batches/b-").await;
    assert_eq!(a.status, 400, "ambiguous prefix");
    assert!(a.body.contains("matches several batches"));
    assert_eq!(get(&app, "/tasks/abc").await.status, 404);
    assert_eq!(get(&app, "/tasks/999999").await.status, 404);
    assert_eq!(get(&app, "/results/999999/document").await.status, 404);
    let a = get(&app, "/companies/NOPE").await;
    assert_eq!(a.status, 404);
    assert!(
        a.body.contains("No stored result for &quot;NOPE&quot;"),
        "{}",
        a.body
    );
    let a = get(&app, "/companies/99999999999999999999999").await;
    assert_eq!(a.status, 400, "{}", a.body);
    let a = get(&app, "/no/such/page").await;
    assert_eq!(a.status, 404);
    assert!(a.body.contains("There is no page at /no/such/page"));
}

#[tokio::test]
async fn keys_page_shows_buckets_with_masked_labels_usage_limits_state_and_reset() {
    let f = fixture();
    let app = f.router();
    let a = get(&app, "/keys").await;
    assert_eq!(a.status, 200);
    let page = &a.body;
    assert!(
        page.contains("Quota day <strong>2026-06-15</strong> (Pacific)"),
        "{page}"
    );
    assert!(page.contains("(2026-06-16 00:05 PDT)"), "{page}");
    assert!(page.contains("id=\"bucket-project-a\""));
    assert!(page.contains("GOOGLE_API_KEY_1 (AIza...abcd)"));
    // Two of the five ledger rows fall on today's Pacific date.
    assert!(
        page.contains("data-used=\"2\">2 / 20 requests today"),
        "{page}"
    );
    assert!(page.contains("state-available"), "{page}");
    // A bucket known only from the database: no limits, its disabled key and why.
    assert!(page.contains("id=\"bucket-old-bucket\""));
    assert!(page.contains("OLD_KEY (AIza...zzzz)"));
    assert!(page.contains("API_KEY_INVALID"));
    assert!(page.contains("state-disabled"));
    assert!(
        !page.contains("fp-a") && !page.contains("fp-old"),
        "no fingerprints"
    );
}

#[tokio::test]
async fn keys_page_shows_a_merged_project_with_its_line_and_a_bucket_spent_elsewhere() {
    let f = fixture();
    let store = f.store();
    let now = f.clock.now();
    // The engine merged the configured bucket of GOOGLE_API_KEY_1 into its project's bucket,
    // said so, and saw the project's day spent after 2 of 20 requests.
    store.learn_key_project("fp-a", "777", now).unwrap();
    store
        .merge_buckets("gcp-project-777", &["project-a".to_string()])
        .unwrap();
    let message = "GOOGLE_API_KEY_1 and GOOGLE_API_KEY_9 share Google Cloud project 777 (the \
                   provider named it), so they share one quota; daily capacity is now 20, not 40";
    store
        .record_project_merge(
            &fintel_store::ProjectMerge {
                project: "777".into(),
                members: "key-9,project-a".into(),
                merged_into: "gcp-project-777".into(),
                message: message.into(),
                at: now,
            },
            now,
        )
        .unwrap();
    store
        .record_daily_refusal(&fintel_store::DailyRefusal {
            bucket: "gcp-project-777".into(),
            quota_date: "2026-06-15".into(),
            answered: 2,
            requests_per_day: 20,
            spent_elsewhere: true,
            at: now,
        })
        .unwrap();
    let page = get(&f.router(), "/keys").await.body;
    assert!(page.contains(message), "{page}");
    assert!(page.contains("id=\"bucket-gcp-project-777\""), "{page}");
    assert!(
        page.contains("Google Cloud project <code>777</code>"),
        "{page}"
    );
    assert!(page.contains("GOOGLE_API_KEY_1 (AIza...abcd)"), "{page}");
    assert!(page.contains("state-spent-elsewhere"), "{page}");
    assert!(
        page.contains("refused for the day after only 2 of 20 requests"),
        "{page}"
    );
    // The ledger rows of the merged bucket count in it.
    assert!(
        page.contains("data-used=\"2\">2 / 20 requests today"),
        "{page}"
    );
}

/// Two configured buckets whose keys the engine learned to share one project: the finish
/// estimate counts the merged bucket once (spent today), not each configured bucket with the
/// quota it no longer has.
#[tokio::test]
async fn the_finish_estimate_counts_a_merged_project_once() {
    let f = fixture();
    let mut config = f.config();
    config.buckets.push(fintel_web::BucketConfig {
        name: "key-9".into(),
        keys: vec![fintel_web::KeyConfig {
            label: "GOOGLE_API_KEY_9 (AIza...9999)".into(),
            fingerprint: "fp-9".into(),
        }],
        limits: config.buckets[0].limits,
    });
    let store = f.store();
    let now = f.clock.now();
    store
        .register_key("fp-9", "GOOGLE_API_KEY_9 (AIza...9999)", "key-9")
        .unwrap();
    store.learn_key_project("fp-a", "777", now).unwrap();
    store.learn_key_project("fp-9", "777", now).unwrap();
    store
        .merge_buckets(
            "gcp-project-777",
            &["key-9".to_string(), "project-a".to_string()],
        )
        .unwrap();
    store
        .mark_bucket_exhausted("gcp-project-777", at("2026-06-16T07:05:00Z"))
        .unwrap();
    drop(store);
    let page = get(&fintel_web::router(config).unwrap(), "/").await.body;
    assert!(
        page.contains("Expected to finish on <strong>2026-06-16</strong>"),
        "{page}"
    );
}

#[tokio::test]
async fn results_pages_render_analyses_as_sections_with_financials_and_provenance() {
    let f = fixture();
    let app = f.router();
    let a = get(&app, "/results").await;
    assert_eq!(a.status, 200);
    assert!(
        a.body.contains("href=\"/companies/1001\">ACME</a>"),
        "{}",
        a.body
    );
    assert!(a.body.contains("2 companies with results"), "{}", a.body);
    assert_no_live_markup(&a.body, "results index");
    let a = get(&app, "/results?q=evil").await;
    assert!(a.body.contains("1 company with results"));
    let a = get(&app, "/results?q=zzz").await;
    assert!(a.body.contains("No company with results matches"));

    for path in [
        "/companies/ACME",
        "/companies/acme",
        "/companies/1001",
        "/companies/0001001",
    ] {
        let a = get(&app, path).await;
        assert_eq!(a.status, 200, "{path}");
        let page = &a.body;
        assert!(page.contains("<h1>ACME · Acme Corp</h1>"), "{path}: {page}");
        // Readable sections, not JSON.
        assert!(
            page.contains("<h4>Summary</h4><p class=\"text\">Widgets sold well.</p>"),
            "{page}"
        );
        assert!(page.contains("<h4>Moat</h4><dl><dt>Rating</dt><dd>7</dd><dt>Sources</dt><dd><ul><li>brand</li><li>scale</li></ul>"), "{page}");
        assert!(!page.contains("{&quot;summary"), "no raw JSON");
        // The key financials as a table by year with sparklines.
        assert!(page.contains("<h2>Key financials</h2>"));
        assert!(page.contains("<th class=\"num\">FY2022</th><th class=\"num\">FY2023</th><th class=\"num\">FY2024</th>"), "{page}");
        assert!(page.contains("<th scope=\"row\">Revenue</th><td class=\"num\">200.00 B</td><td class=\"num\">250.00 B</td><td class=\"num\">300.00 B</td>"), "{page}");
        assert!(page.contains("<svg class=\"spark\""));
        // Provenance of each result.
        assert!(page.contains(ACCESSION_2024));
        assert!(page.contains("href=\"https://www.sec.gov/Archives/edgar/data/1001/000000100125000001/report-2024.htm\""));
        assert!(page.contains("12,345 in, 678 out, 90 thinking"), "{page}");
        assert!(
            page.contains("<code>0123456789ab</code>"),
            "version shortened"
        );
        assert!(page.contains(&format!(
            "href=\"/results/{}/document\"",
            f.acme_2024_result
        )));
        assert!(page.contains("gemini-2.5-flash"));
    }
    // A result answered by a packed request says which years shared it; the others do not.
    f.store()
        .conn()
        .execute(
            "UPDATE results SET packed_with = '2023,2024' WHERE id = ?1",
            [f.acme_2024_result],
        )
        .unwrap();
    let page = get(&app, "/companies/ACME").await.body;
    assert_eq!(
        page.matches("<dt>packed</dt><dd>one request answered fiscal years 2023, 2024</dd>")
            .count(),
        1,
        "{page}"
    );

    let a = get(&app, "/companies/EVIL").await;
    assert_eq!(a.status, 200);
    assert_no_live_markup(&a.body, "hostile result");
    assert!(
        a.body
            .contains("<p class=\"text\">&lt;script&gt;alert(1)&lt;/script&gt;</p>"),
        "{}",
        a.body
    );
    assert!(
        a.body
            .contains("<h4>&quot;&gt;&lt;img src=x onerror=alert(1)&gt;</h4>"),
        "{}",
        a.body
    );
    assert!(
        a.body.contains("<code>javascript:alert(1)</code>"),
        "a javascript: URL stays text"
    );
}

#[tokio::test]
async fn filing_page_rebuilds_what_the_model_read_with_the_cut_sections() {
    let f = fixture();
    let app = f.router();
    for path in [
        format!("/results/{}/document", f.acme_2024_result),
        format!("/tasks/{}", f.acme_2024_task),
    ] {
        let a = get(&app, &path).await;
        assert_eq!(a.status, 200, "{path}: {}", a.body);
        let page = &a.body;
        assert!(
            page.contains("it matches the record of fitting stored with the result"),
            "{path}: {page}"
        );
        assert!(page.contains("<h2>Item sections</h2>"));
        assert!(page.contains("<h2>Text sent to the model</h2>"));
        assert!(page.contains("<h2>Cut sections</h2>"), "{page}");
        assert!(
            page.contains("characters cut") || page.contains("<strong>cut</strong>"),
            "{page}"
        );
        // The filing's own text, quoting markup, is shown as text.
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{page}"
        );
        assert_no_live_markup(page, "filing page");
        assert!(page.contains(ACCESSION_2024));
    }
    // FY2023's document was never cached: said plainly.
    let a = get(&app, &format!("/results/{}/document", f.acme_2023_result)).await;
    assert_eq!(a.status, 200);
    assert!(
        a.body.contains("The document is not in the cache"),
        "{}",
        a.body
    );
    // A hostile result's page escapes its form and company.
    let a = get(&app, &format!("/results/{}/document", f.evil_result)).await;
    assert_eq!(a.status, 200);
    assert_no_live_markup(&a.body, "hostile filing page");
    assert!(a.body.contains("Evil &lt;script&gt;"), "{}", a.body);
    // A failed task without a result: the document is not cached either.
    let a = get(&app, &format!("/tasks/{}", f.failed_task)).await;
    assert_eq!(a.status, 200);
    assert!(
        a.body.contains("invalid JSON twice &lt;script&gt;"),
        "{}",
        a.body
    );
}

#[tokio::test]
async fn a_document_whose_cached_copy_is_damaged_is_reported_and_left_in_place() {
    let f = fixture();
    let path = f
        .cache_dir()
        .join("documents/1001/0000001001-25-000001/report-2024.htm");
    assert!(path.is_file(), "{}", path.display());
    std::fs::write(&path, b"truncated").unwrap();
    let app = f.router();
    let a = get(&app, &format!("/results/{}/document", f.acme_2024_result)).await;
    assert_eq!(a.status, 200);
    assert!(a.body.contains("fails its checksum"), "{}", a.body);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"truncated",
        "never removed by the dashboard"
    );
}

#[tokio::test]
async fn static_files_are_served_with_their_types() {
    let f = fixture();
    let app = f.router();
    let css = get(&app, "/static/style.css").await;
    assert_eq!(css.status, 200);
    assert_eq!(css.headers["content-type"], "text/css; charset=utf-8");
    assert!(
        css.body.contains("@media (max-width: 600px)"),
        "phone layout"
    );
    let js = get(&app, "/static/live.js").await;
    assert_eq!(js.status, 200);
    assert_eq!(js.headers["content-type"], "text/javascript; charset=utf-8");
    assert!(js.body.contains("data-live"));
}

#[tokio::test]
async fn the_dashboard_refuses_to_start_without_a_database() {
    let f = fixture();
    let mut config = f.config();
    config.db_path = f.dir.path().join("missing.db");
    let err = fintel_web::router(config).expect_err("no database");
    let msg = err.to_string();
    assert!(msg.contains("run a batch first"), "{msg}");
    assert!(!f.dir.path().join("missing.db").exists(), "nothing created");
    // Not a database at all.
    std::fs::write(f.dir.path().join("junk.db"), b"not a database".repeat(100)).unwrap();
    let mut config = f.config();
    config.db_path = f.dir.path().join("junk.db");
    let err = fintel_web::router(config).expect_err("junk");
    assert!(err.to_string().contains("not a fintel database"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_answer_while_another_process_holds_a_write_transaction() {
    let f = fixture();
    let app = f.router();
    // Another process's batch in the middle of a write.
    let writer = rusqlite::Connection::open(f.db()).unwrap();
    writer.execute_batch("BEGIN IMMEDIATE").unwrap();
    writer
        .execute(
            "UPDATE batches SET updated_at = updated_at + 1 WHERE id = ?1",
            [MAIN],
        )
        .unwrap();
    let started = std::time::Instant::now();
    for path in ["/", &format!("/batches/{MAIN}"), "/keys", "/companies/ACME"] {
        let a = get(&app, path).await;
        assert_eq!(a.status, 200, "{path}");
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "readers are never blocked by a writer (WAL)"
    );
    writer.execute_batch("COMMIT").unwrap();
    // And a page does not keep a read transaction open afterwards: a writer checkpoints fully.
    let store = Store::open(&f.db()).unwrap();
    let busy: i64 = store
        .conn()
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
        .unwrap();
    assert_eq!(busy, 0, "no reader holds the WAL");
}

/// A `fundamental` answer for `year`, its fields in an order unlike the schema's (as an
/// OpenAI-compatible server or an older row may store them).
fn fundamental_answer(year: i32) -> serde_json::Value {
    let growth = f64::from(year - 2020);
    serde_json::json!({
        "score": year - 2016,
        "margins": {"trend": "expanding", "commentary": "Mix.", "net_margin_pct": 10.0 + growth,
                    "operating_margin_pct": null, "gross_margin_pct": 40.5},
        "balance_sheet": {"strength": "very_strong", "commentary": "Net cash.", "net_debt": -50.0,
                          "total_debt": 900.0 + growth * 5.0, "cash_and_investments": 950.0},
        "reporting_currency": "USD",
        "business_model": "Sells widgets.",
        "score_rationale": "Strong balance sheet.",
        "summary": format!("Widgets sold well in {year}."),
    })
}

/// Adds a `fundamental` batch pinned from the built-in workflow with three years of WIDG
/// (CIK 3003) results.
fn add_fundamental_years(f: &Fixture) {
    let registry = fintel_workflows::Registry::load(&[]).unwrap();
    let workflow = registry.get("fundamental").unwrap();
    let store = f.store();
    let now = at("2026-06-15T17:00:00Z");
    store
        .create_batch(
            &fintel_store::NewBatch {
                id: "b-fund-0003".into(),
                name: None,
                analysis_type: "fundamental".into(),
                analysis_version: workflow.version.clone(),
                workflow: workflow.canonical.clone(),
                min_years: 1,
                years_spec: r#"{"latest":3}"#.into(),
                as_of_date: "2026-06-15".into(),
                model: "gemini-2.5-flash".into(),
                settings: "{}".into(),
                priority: 0,
                input_file: None,
                companies: vec![fintel_store::NewCompany {
                    line_no: None,
                    ticker: Some("WIDG".into()),
                    cik: Some(3003),
                    company_name: Some("Widget Co".into()),
                    priority: 0,
                    skip_reason: None,
                }],
            },
            now,
        )
        .unwrap();
    while let Some(task) = store.claim_next("b-fund-0003", OWNER, now, true).unwrap() {
        if task.kind == fintel_store::TaskKind::Resolve {
            let plans: Vec<fintel_store::YearPlan> = (2022..=2024)
                .map(|y| fintel_store::YearPlan {
                    fiscal_year: y,
                    filing: Some(fintel_store::FilingRef {
                        accession: format!("0000003003-{}-000001", y % 100 + 1),
                        form: "10-K".into(),
                        period: Some(format!("{y}-12-31")),
                        filed: Some(format!("{}-02-15", y + 1)),
                        document_url: format!(
                            "https://www.sec.gov/Archives/edgar/data/3003/{y}.htm"
                        ),
                        transition: false,
                    }),
                    skip_reason: None,
                })
                .collect();
            store
                .complete_resolution(task.id, OWNER, &plans, true, false, None, now)
                .unwrap();
            continue;
        }
        let year = task.fiscal_year.unwrap();
        let filing = task.filing.clone().unwrap();
        let result = fintel_store::NewResult {
            result_key: format!("3003-{year}-fundamental"),
            cik: 3003,
            ticker: task.ticker.clone(),
            company_name: task.company_name.clone(),
            fiscal_year: Some(year),
            fiscal_year_label: None,
            form: Some(filing.form.clone()),
            accession: Some(filing.accession.clone()),
            analysis_type: "fundamental".into(),
            analysis_version: workflow.version.clone(),
            model: "gemini-2.5-flash".into(),
            json: fundamental_answer(year).to_string(),
            prompt_tokens: 100,
            output_tokens: 10,
            thinking_tokens: 0,
            attempts: 1,
            calls: 1,
            document_url: Some(filing.document_url.clone()),
            document_sha256: None,
            fitting: None,
            started_at: None,
            supersede: false,
            request_params: None,
        };
        store
            .complete_with_result(task.id, OWNER, &result, now)
            .unwrap();
    }
}

#[tokio::test]
async fn company_page_reads_like_an_analysis_with_years_side_by_side() {
    let f = fixture();
    add_fundamental_years(&f);
    let app = f.router();
    let a = get(&app, "/companies/WIDG").await;
    assert_eq!(a.status, 200);
    let page = &a.body;
    let at = |needle: &str| {
        page.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing from {page}"))
    };

    // Each card: summary and score first, then the schema's order.
    let card = &page[at("<article class=\"result\"")..];
    let card = &card[..card.find("</article>").unwrap()];
    let order: Vec<usize> = [
        "<h4>Summary</h4>",
        "<h4>Score</h4>",
        "<h4>Score rationale</h4>",
        "<h4>Reporting currency</h4>",
        "<h4>Business model</h4>",
        "<h4>Margins</h4>",
        "<h4>Balance sheet</h4>",
    ]
    .iter()
    .map(|h| {
        card.find(h)
            .unwrap_or_else(|| panic!("{h} missing from {card}"))
    })
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{card}");
    // Values with currency and unit, percentages, enums as words.
    assert!(
        card.contains("<dt>Total debt</dt><dd>USD 920.0 M</dd>"),
        "{card}"
    );
    assert!(
        card.contains("<dt>Net margin (%)</dt><dd>14%</dd>"),
        "{card}"
    );
    assert!(
        card.contains("<dt>Gross margin (%)</dt><dd>40.5%</dd>"),
        "{card}"
    );
    assert!(
        card.contains("<dt>Strength</dt><dd>Very strong</dd>"),
        "{card}"
    );
    assert!(card.contains("<dt>Trend</dt><dd>Expanding</dd>"), "{card}");
    let margins = &card[card.find("<h4>Margins</h4>").unwrap()..];
    assert!(
        margins.find("Gross margin").unwrap() < margins.find("Net margin").unwrap(),
        "nested fields in schema order: {margins}"
    );

    // The years side by side, oldest first, one row per numeric field, with a trend mark.
    let years = &page[at("<h2>Across years</h2>")..];
    assert!(
        at("<h2>Across years</h2>") < at("<h2>FY2024</h2>"),
        "the table comes before the yearly cards"
    );
    assert!(years.contains("<h3>Fundamental</h3>"), "{years}");
    assert!(
        years.contains("<th class=\"num\">FY2022</th><th class=\"num\">FY2023</th><th class=\"num\">FY2024</th>"),
        "{years}"
    );
    assert!(
        years.contains("<th scope=\"row\">Score</th><td class=\"num\">6</td><td class=\"num\">7</td><td class=\"num\">8</td>"),
        "{years}"
    );
    assert!(
        years.contains("<th scope=\"row\">Balance sheet · Total debt</th><td class=\"num\">USD 910.0 M</td><td class=\"num\">USD 915.0 M</td><td class=\"num\">USD 920.0 M</td>"),
        "{years}"
    );
    assert!(
        years.contains("<th scope=\"row\">Margins · Operating margin (%)</th><td class=\"num\"><span class=\"muted\">-</span></td>"),
        "a field the model left null stays a row: {years}"
    );
    let score_row = &years[years.find("<th scope=\"row\">Score</th>").unwrap()..];
    let score_row = &score_row[..score_row.find("</tr>").unwrap()];
    assert!(score_row.contains("<svg class=\"spark\""), "{score_row}");
    assert!(score_row.contains("title=\"up\""), "{score_row}");
    let cash_row = &years[years.find("Cash and investments</th>").unwrap()..];
    let cash_row = &cash_row[..cash_row.find("</tr>").unwrap()];
    assert!(cash_row.contains("title=\"flat\""), "{cash_row}");
    let rows: Vec<&str> = years
        .split("<th scope=\"row\">")
        .skip(1)
        .map(|r| &r[..r.find("</th>").unwrap()])
        .collect();
    assert_eq!(
        &rows[..3],
        [
            "Score",
            "Margins · Gross margin (%)",
            "Margins · Operating margin (%)"
        ],
        "rows in reading order"
    );
    assert_no_live_markup(page, "company page");

    // ACME has one fundamental year with numbers at most: no side-by-side table for it.
    let acme = get(&app, "/companies/ACME").await;
    assert!(
        !acme.body.contains("<h2>Across years</h2>"),
        "{}",
        acme.body
    );
}

#[tokio::test]
async fn a_simulated_clock_is_said_on_the_pages_that_show_times() {
    let f = fixture();
    // The wall clock: no note.
    let page = get(&f.router(), "/").await.body;
    assert!(!page.contains("Simulated clock"), "{page}");
    // FINTEL_FAKE_CLOCK (the demo): the batches and batch pages say their times are simulated.
    let mut config = f.config();
    config.clock = Arc::new(fintel_time::FakeClock::new(
        at("2026-06-15T18:00:00Z"),
        60.0,
    ));
    let app = fintel_web::router(config).unwrap();
    for path in ["/", &format!("/batches/{MAIN}")] {
        let page = get(&app, path).await.body;
        assert!(
            page.contains(
                "Simulated clock (FINTEL_FAKE_CLOCK): every time on this page is simulated time"
            ),
            "{path}: {page}"
        );
    }
}

#[tokio::test]
async fn the_task_table_shows_the_attempts_results_and_exports_show() {
    let f = fixture();
    // A task completed by a stored result (another batch's, or before attempts were kept on
    // the task) has none of its own; its result took one.
    f.store()
        .conn()
        .execute(
            "UPDATE tasks SET attempts = 0 WHERE id = ?1",
            [f.acme_2024_task],
        )
        .unwrap();
    let page = get(&f.router(), &format!("/batches/{MAIN}?kind=year"))
        .await
        .body;
    let row_start = page
        .find(&format!("href=\"/tasks/{}\"", f.acme_2024_task))
        .expect("the task's row");
    let row = &page[page[..row_start].rfind("<tr>").unwrap()..row_start];
    assert!(row.contains("<td class=\"num\">1</td>"), "{row}");
    // The export says the same of that row.
    let mut out = Vec::new();
    fintel_export::export(
        &f.store(),
        &fintel_export::ExportQuery {
            batch_id: Some(MAIN.into()),
            analysis_type: None,
            status: fintel_export::StatusFilter::Completed,
        },
        fintel_export::Format::Jsonl,
        fintel_export::Output::Stdout(&mut out),
    )
    .unwrap();
    let rows: Vec<serde_json::Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let acme_2024 = rows
        .iter()
        .find(|r| {
            r["task_id"] == f.acme_2024_task || (r["ticker"] == "ACME" && r["fiscal_year"] == 2024)
        })
        .expect("the row");
    assert_eq!(acme_2024["attempts"], 1, "{acme_2024}");
}

#[tokio::test]
async fn batch_page_shows_when_results_come_from_more_than_one_model() {
    let f = fixture();
    let app = f.router();
    let before = get(&app, &format!("/batches/{MAIN}")).await;
    assert!(
        !before.body.contains("id=\"models\""),
        "one model: no section"
    );

    let store = f.store();
    let model: String = store
        .conn()
        .query_row("SELECT model FROM batches WHERE id = ?1", [MAIN], |r| {
            r.get(0)
        })
        .unwrap();
    store
        .switch_batch_model(MAIN, &model, "gemini-3.1-flash", at("2026-06-15T20:00:00Z"))
        .unwrap()
        .unwrap();
    // A result the new model produced after the switch.
    store
        .conn()
        .execute(
            "UPDATE results SET model = 'gemini-3.1-flash' WHERE id = \
             (SELECT MAX(result_id) FROM tasks WHERE batch_id = ?1)",
            [MAIN],
        )
        .unwrap();
    let page = get(&app, &format!("/batches/{MAIN}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let body = &page.body;
    assert!(body.contains("results come from 2 models"), "{body}");
    assert!(body.contains("<code>gemini-3.1-flash</code>"), "{body}");
    assert!(
        body.contains(&format!("from <code>{model}</code>")),
        "{body}"
    );
    assert_no_live_markup(body, "batch page with two models");
}

#[tokio::test]
async fn a_batch_behind_another_on_the_same_keys_says_so_and_finishes_after_it() {
    let f = fixture();
    let store = f.store();
    let now = f.clock.now();
    let later = fintel_store::NewBatch {
        id: "b-later-0002".into(),
        name: Some("later".into()),
        analysis_type: "fundamental".into(),
        analysis_version: "0123456789abcdef0123".into(),
        workflow: "pinned".into(),
        min_years: 1,
        years_spec: r#"{"latest":3}"#.into(),
        as_of_date: "2026-06-15".into(),
        model: "gemini-2.5-flash".into(),
        settings: "{}".into(),
        priority: 0,
        input_file: Some("later.csv".into()),
        companies: vec![fintel_store::NewCompany {
            line_no: None,
            ticker: Some("LATE".into()),
            cik: Some(4242),
            company_name: Some("Late Inc".into()),
            priority: 0,
            skip_reason: None,
        }],
    };
    store.create_batch(&later, now).unwrap();
    store
        .set_batch_state("b-later-0002", BatchState::WaitingReset, None, now)
        .unwrap();
    drop(store);
    let page = get(&f.router(), "/").await.body;
    assert!(
        page.contains("Comes after 1 other batch on these keys"),
        "{page}"
    );
    // The older batch is served first and has the keys alone.
    assert_eq!(page.matches("other batch").count(), 1, "{page}");
}
