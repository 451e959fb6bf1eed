//! End-to-end tests of `fintel web` as a user runs it: the built binary serving a data directory
//! that a real `fintel batch` against the simulator filled, fetched over HTTP on 127.0.0.1,
//! while another `fintel batch` process runs, and in headless Chromium.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod support;

use support::*;

/// A running `fintel web` with the URL and token it printed.
struct Web {
    child: Child,
    url: String,
    token: String,
    stderr: mpsc::Receiver<String>,
}

impl Web {
    fn start(env: &Env) -> Web {
        let mut child = env
            .cmd(&["web", "--addr", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (mut url, mut token) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        while url.is_none() || token.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("fintel web printed no URL and token: {seen:?}"));
            if let Some(u) = line.strip_prefix("fintel web: the dashboard is at ") {
                url = Some(u.trim_end_matches('/').to_string());
            }
            if let Some(t) = line.strip_prefix("token for actions (stop, re-queue failed): ") {
                token = Some(t.trim().to_string());
            }
            seen.push(line);
        }
        Web {
            child,
            url: url.unwrap(),
            token: token.unwrap(),
            stderr: rx,
        }
    }

    /// SIGTERM, then the exit code and what it printed since starting.
    fn stop(mut self) -> (Option<i32>, String) {
        signal(&self.child, "-TERM");
        let status = wait_for(&mut self.child, Duration::from_secs(20));
        let rest: Vec<String> = self.stderr.try_iter().collect();
        (status.code(), rest.join("\n"))
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn get(web: &Web, path: &str) -> (u16, String) {
    let res = client()
        .get(format!("{}{path}", web.url))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap())
}

async fn post(web: &Web, path: &str, token: Option<&str>, origin: Option<&str>) -> (u16, String) {
    let mut req = client()
        .post(format!("{}{path}", web.url))
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    let body = token.map(|t| format!("token={t}")).unwrap_or_default();
    let res = req.body(body).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap())
}

fn db(env: &Env) -> rusqlite::Connection {
    rusqlite::Connection::open(env.db()).unwrap()
}

fn one<T: rusqlite::types::FromSql>(env: &Env, sql: &str) -> T {
    db(env).query_row(sql, [], |r| r.get(0)).unwrap()
}

/// The `data-done` figure of a batch's card on the batches page.
fn done_of(page: &str, batch_id: &str) -> u64 {
    let card = page
        .find(&format!("id=\"batch-{batch_id}\""))
        .unwrap_or_else(|| panic!("no card for {batch_id}: {page}"));
    let rest = &page[card..];
    let at = rest.find("data-done=\"").expect("a progress figure") + "data-done=\"".len();
    rest[at..]
        .split('"')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a number")
}

fn state_of(page: &str, batch_id: &str) -> String {
    let card = page
        .find(&format!("id=\"batch-{batch_id}\""))
        .unwrap_or_else(|| panic!("no card for {batch_id}: {page}"));
    let rest = &page[card..];
    let at = rest.find("data-state=\"").unwrap() + "data-state=\"".len();
    rest[at..].split('"').next().unwrap().to_string()
}

/// Starts `fintel batch` in the background, its output in a file, and waits until it has stored
/// a first result (so its batch is in the database).
fn start_batch(env: &Env) -> Child {
    let log = std::fs::File::create(env.dir.path().join("batch.log")).unwrap();
    let mut child = env
        .cmd(&["batch", "companies.csv", "--years", "3"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let start = Instant::now();
    while env.completed_results() < 1 {
        assert!(start.elapsed() < Duration::from_secs(60), "no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the batch exited early: {}",
            batch_log(env)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn batch_log(env: &Env) -> String {
    std::fs::read_to_string(env.dir.path().join("batch.log")).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_and_both_actions_over_http_after_a_real_simulator_batch() {
    let env = Env::new(0).await;
    let out = env.run(&["batch", "companies.csv", "--years", "3"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let id: String = one(&env, "SELECT id FROM batches");
    let web = Web::start(&env);
    assert!(web.url.starts_with("http://127.0.0.1:"), "{}", web.url);
    assert_eq!(web.token.len(), 32);

    let (status, page) = get(&web, "/").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(state_of(&page, &id), "completed");
    let completed: u64 = one(
        &env,
        "SELECT COUNT(*) FROM tasks WHERE kind = 'year' AND state = 'completed'",
    );
    let skipped: u64 = one(&env, "SELECT COUNT(*) FROM tasks WHERE state = 'skipped'");
    assert_eq!(done_of(&page, &id), completed + skipped, "{page}");

    let (status, page) = get(&web, &format!("/batches/{id}")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page.matches("<svg class=\"chart\"").count(), 2, "{page}");
    assert!(
        page.contains("Nothing to resume: the batch is completed"),
        "{page}"
    );
    assert!(
        page.contains("<rect class=\"bar\""),
        "requests were sent: {page}"
    );

    let (status, page) = get(&web, "/keys").await;
    assert_eq!(status, 200);
    assert!(page.contains("GOOGLE_API_KEY_1 ("), "{page}");
    assert!(
        !page.contains("test-key-0123456789"),
        "never the key itself"
    );

    let (status, page) = get(&web, "/results").await;
    assert_eq!(status, 200);
    let (ticker, result_id, accession): (String, i64, String) = db(&env)
        .query_row(
            "SELECT ticker, id, accession FROM results ORDER BY id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert!(page.contains(&format!(">{ticker}</a>")), "{page}");

    let (status, page) = get(&web, &format!("/companies/{ticker}")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<h4>"), "sections, not JSON: {page}");
    assert!(page.contains(&accession));

    // What the model read: rebuilt from the documents the batch cached, matching its record.
    let (status, page) = get(&web, &format!("/results/{result_id}/document")).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("it matches the record of fitting stored"),
        "{page}"
    );
    let task_id: i64 = one(
        &env,
        "SELECT id FROM tasks WHERE kind = 'year' AND state = 'completed' ORDER BY id LIMIT 1",
    );
    let (status, page) = get(&web, &format!("/tasks/{task_id}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("<h2>Text sent to the model</h2>"), "{page}");

    // Actions: stop has nothing to stop in a completed batch.
    let (status, page) = post(&web, &format!("/batches/{id}/stop"), Some(&web.token), None).await;
    assert_eq!(status, 409, "{page}");
    // Re-queue: a failed task goes back to pending, only with the token and from here.
    db(&env)
        .execute(
            "UPDATE tasks SET state = 'failed', reason = 'test' WHERE id = ?1",
            [task_id],
        )
        .unwrap();
    let path = format!("/batches/{id}/requeue-failed");
    assert_eq!(post(&web, &path, None, None).await.0, 403);
    assert_eq!(post(&web, &path, Some("0123"), None).await.0, 403);
    assert_eq!(
        post(&web, &path, Some(&web.token), Some("http://evil.example"))
            .await
            .0,
        403
    );
    let state: String = one(
        &env,
        &format!("SELECT state FROM tasks WHERE id = {task_id}"),
    );
    assert_eq!(state, "failed", "refused requests change nothing");
    let (status, _) = post(&web, &path, Some(&web.token), Some(&web.url)).await;
    assert_eq!(status, 303);
    let state: String = one(
        &env,
        &format!("SELECT state FROM tasks WHERE id = {task_id}"),
    );
    assert_eq!(state, "pending");

    // Another name for 127.0.0.1 (a DNS rebinding) is refused.
    let res = client()
        .get(format!("{}/", web.url))
        .header("host", "rebind.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);

    let (code, rest) = web.stop();
    assert_eq!(code, Some(0), "{rest}");
    assert!(rest.contains("fintel web: stopped"), "{rest}");
}

#[tokio::test(flavor = "multi_thread")]
async fn live_numbers_change_while_a_batch_runs_and_the_stop_action_drains_it() {
    let env = Env::new(400).await;
    let mut batch = start_batch(&env);
    let id: String = one(&env, "SELECT id FROM batches");
    let web = Web::start(&env);

    let (status, first) = get(&web, "/").await;
    assert_eq!(status, 200);
    assert_eq!(state_of(&first, &id), "running", "{first}");
    let before = done_of(&first, &id);
    let start = Instant::now();
    let after = loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (_, page) = get(&web, "/").await;
        let now = done_of(&page, &id);
        if now != before {
            break now;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the batches page never changed: {page}"
        );
    };
    assert!(after > before, "{before} -> {after}");

    let (status, body) = post(&web, &format!("/batches/{id}/stop"), Some(&web.token), None).await;
    assert_eq!(status, 303, "{body}");
    let status = wait_for(&mut batch, Duration::from_secs(60));
    let log = batch_log(&env);
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(
        log.contains(&format!("Resume with: fintel batch --resume {id}")),
        "{log}"
    );
    let state: String = one(&env, "SELECT state FROM batches");
    assert_eq!(state, "stopped");
    let pending: i64 = one(&env, "SELECT COUNT(*) FROM tasks WHERE state = 'pending'");
    assert!(
        pending > 0,
        "stopped before the end: work is left for a resume"
    );
    let running: i64 = one(&env, "SELECT COUNT(*) FROM tasks WHERE state = 'running'");
    assert_eq!(running, 0, "drained: nothing left running");
    let (_, page) = get(&web, "/").await;
    assert_eq!(state_of(&page, &id), "stopped", "{page}");
    assert!(page.contains(&format!("fintel batch --resume {id}")));
    let (code, rest) = web.stop();
    assert_eq!(code, Some(0), "{rest}");
}

#[tokio::test(flavor = "multi_thread")]
async fn headless_chromium_renders_the_dashboard_of_a_running_batch() {
    let chromium = Path::new("/usr/bin/chromium");
    if !chromium.exists() {
        let required = std::env::var("CI").is_ok_and(|v| v == "true")
            || std::env::var("FINTEL_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "/usr/bin/chromium is missing (apt-get install chromium); CI requires it"
        );
        eprintln!("skipped: /usr/bin/chromium is not installed (apt-get install chromium)");
        return;
    }
    let env = Env::new(500).await;
    let mut batch = start_batch(&env);
    let id: String = one(&env, "SELECT id FROM batches");
    let web = Web::start(&env);
    let profile = tempfile::tempdir().unwrap();
    let dom_path = env.dir.path().join("dom.html");
    let mut browser = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("{}/", web.url))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&dom_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = wait_for(&mut browser, Duration::from_secs(120));
    assert!(status.success(), "chromium failed: {status}");
    let dom = std::fs::read_to_string(&dom_path).unwrap();
    assert!(dom.contains(&format!("id=\"batch-{id}\"")), "{dom}");
    assert!(dom.contains(&id), "the batch id is shown");
    let done = done_of(&dom, &id);
    assert!(done >= 1, "{dom}");
    assert!(dom.contains(" tasks ended ("), "a progress figure: {dom}");
    assert!(dom.contains("<progress"), "{dom}");

    signal(&batch, "-TERM");
    let status = wait_for(&mut batch, Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{}", batch_log(&env));
    let (code, _) = web.stop();
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn web_without_a_database_or_with_a_bad_address_is_a_usage_error() {
    let env = Env::new(0).await;
    let out = env.run(&["web", "--addr", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("run a batch first"), "{err}");
    assert!(!env.db().exists(), "nothing created");

    std::fs::create_dir_all(env.home()).unwrap();
    std::fs::write(env.db(), b"not a database at all".repeat(200)).unwrap();
    let out = env.run(&["web", "--addr", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("not a fintel database"),
        "{}",
        text(&out.stderr)
    );

    let out = env.run(&["web", "--addr", "nonsense"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("is not an address like 127.0.0.1:8080"));
}

/// Reads `fintel web`'s stderr until a line containing `until` (or 30 s).
fn stderr_until(child: &mut Child, until: &str) -> String {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    // The reader drains the child's stderr to its end, after `until` too: a pipe closed
    // under the child would turn its next warning into a write error at shutdown.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !seen.contains(until) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => {
                seen.push_str(&l);
                seen.push('\n');
            }
            Err(_) => break,
        }
    }
    seen
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread")]
async fn open_runs_the_platform_opener_and_only_warns_when_it_fails() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new(0).await;
    let out = env.run(&["batch", "companies.csv", "--years", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let bin = env.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let opened = env.dir.path().join("opened.txt");
    let opener = bin.join("xdg-open");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    // An opener that works receives the dashboard's URL.
    std::fs::write(
        &opener,
        format!("#!/bin/sh\necho \"$1\" > '{}'\n", opened.display()),
    )
    .unwrap();
    std::fs::set_permissions(&opener, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut child = env
        .cmd(&["web", "--addr", "127.0.0.1:0", "--open"])
        .env("PATH", &path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let seen = stderr_until(&mut child, "token for actions");
    let start = Instant::now();
    while !opened.exists() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    let url = std::fs::read_to_string(&opened).unwrap_or_default();
    assert!(url.starts_with("http://127.0.0.1:"), "{url:?} {seen}");
    assert!(
        seen.contains(url.trim()),
        "the URL printed is the one opened: {seen}"
    );
    signal(&child, "-TERM");
    assert_eq!(
        wait_for(&mut child, Duration::from_secs(20)).code(),
        Some(0)
    );

    // One that fails: a warning, and the dashboard serves on.
    std::fs::write(&opener, "#!/bin/sh\nexit 3\n").unwrap();
    let mut child = env
        .cmd(&["web", "--addr", "127.0.0.1:0", "--open"])
        .env("PATH", &path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let seen = stderr_until(&mut child, "could not open a browser");
    assert!(
        seen.contains("warning: xdg-open could not open a browser"),
        "{seen}"
    );
    assert!(child.try_wait().unwrap().is_none(), "still serving");
    signal(&child, "-TERM");
    assert_eq!(
        wait_for(&mut child, Duration::from_secs(20)).code(),
        Some(0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_non_loopback_address_is_served_with_a_warning() {
    let env = Env::new(0).await;
    let out = env.run(&["batch", "companies.csv", "--years", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut child = env
        .cmd(&["web", "--addr", "0.0.0.0:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let seen = stderr_until(&mut child, "warning:");
    assert!(seen.contains("reachable from other machines"), "{seen}");
    signal(&child, "-TERM");
    let status = wait_for(&mut child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn headless_chromium_renders_the_screen_page_of_stored_results() {
    let chromium = Path::new("/usr/bin/chromium");
    if !chromium.exists() {
        let required = std::env::var("CI").is_ok_and(|v| v == "true")
            || std::env::var("FINTEL_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "/usr/bin/chromium is missing (apt-get install chromium); CI requires it"
        );
        eprintln!("skipped: /usr/bin/chromium is not installed (apt-get install chromium)");
        return;
    }
    let env = Env::new(0).await;
    std::fs::write(env.dir.path().join("six.csv"), fintel_sim::companies_csv(6)).unwrap();
    let out = env.run(&["batch", "six.csv", "--years", "1", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let web = Web::start(&env);
    let profile = tempfile::tempdir().unwrap();
    let dom_path = env.dir.path().join("screen.html");
    let log_path = env.dir.path().join("chromium.log");
    let mut browser = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // Console messages (a CSP violation among them) go to stderr.
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!(
            "{}/screen?analysis_type=fundamental&sort=score&show=balance_sheet.strength,summary",
            web.url
        ))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&dom_path).unwrap())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let status = wait_for(&mut browser, Duration::from_secs(120));
    assert!(status.success(), "chromium failed: {status}");
    let dom = std::fs::read_to_string(&dom_path).unwrap();
    assert!(dom.contains("<h1>Screen</h1>"), "{dom}");
    assert!(dom.contains("<table class=\"screen\">"), "{dom}");
    let rows = dom.matches("href=\"/companies/").count();
    assert_eq!(rows, 12, "six companies, ticker and name linked: {dom}");
    assert!(
        dom.contains("6 of 6 companies with <code>fundamental</code> results pass"),
        "{dom}"
    );
    assert!(dom.contains("<rect class=\"dot\""), "score bars: {dom}");
    assert!(
        dom.contains("sort=balance_sheet.strength"),
        "sortable headers: {dom}"
    );
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        !log.contains("Content Security Policy"),
        "the page broke its own CSP: {log}"
    );
    let (code, _) = web.stop();
    assert_eq!(code, Some(0));
}
