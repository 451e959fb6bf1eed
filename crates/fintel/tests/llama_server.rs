//! End to end against a real OpenAI-compatible server: llama.cpp's `llama-server` with a small
//! real model (SmolLM2-135M-Instruct) and a 2,048-token context, so fitting a filing to the
//! context, the server's grammar-constrained JSON and its context error are all real. The SEC
//! side is the simulator. `.ci/run` builds the server once and sets `FINTEL_LLAMA_SERVER` and
//! `FINTEL_LLAMA_MODEL`; without them these tests say they were skipped, and fail under
//! `CI=true` (or `FINTEL_REQUIRE_LLAMA_SERVER=1`).
//!
//! Between fintel and the server sits a recording pass-through, so the test can check what the
//! server was really sent against what it reports having read: a truncated prompt shows as
//! fewer prompt tokens than the server's own tokenizer counts in the request.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

mod support;

use support::procs::{sql_i64, until, Guarded};
use support::*;

/// The model's name on the server (`--alias`), as a user would configure it.
const MODEL: &str = "smollm2";
/// The context the issue asks for: small enough that every simulated filing must be fitted.
const CONTEXT: &str = "2048";

/// Where the built server and the model are, or `None` after saying the test is skipped
/// (a panic where they are required).
fn llama() -> Option<(PathBuf, PathBuf)> {
    let server = std::env::var_os("FINTEL_LLAMA_SERVER").map(PathBuf::from);
    let model = std::env::var_os("FINTEL_LLAMA_MODEL").map(PathBuf::from);
    match (server, model) {
        (Some(s), Some(m)) if s.is_file() && m.is_file() => Some((s, m)),
        (s, m) => {
            let required = std::env::var("CI").is_ok_and(|v| v == "true")
                || std::env::var("FINTEL_REQUIRE_LLAMA_SERVER").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "no llama-server to test against (FINTEL_LLAMA_SERVER={s:?}, \
                 FINTEL_LLAMA_MODEL={m:?}): run `eval \"$(bash .ci/llama-server.sh)\"` first; \
                 CI requires it"
            );
            eprintln!(
                "skipped: FINTEL_LLAMA_SERVER and FINTEL_LLAMA_MODEL are not set \
                 (`eval \"$(bash .ci/llama-server.sh)\"` builds the server and fetches the model)"
            );
            None
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `llama-server`, killed when dropped.
struct Llama {
    child: Guarded,
    url: String,
    log: PathBuf,
}

impl Llama {
    async fn start(server: &Path, model: &Path, log: PathBuf) -> Llama {
        let port = free_port();
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(server)
            .args(["-m", &model.to_string_lossy(), "--alias", MODEL])
            .args(["-c", CONTEXT, "--parallel", "1", "--threads", "2"])
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let mut llama = Llama {
            child: Guarded(child),
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        // The model loads in a second or two on an idle machine; the limit is a safety net for
        // a busy one, and an early exit (a port taken since it was chosen) ends the wait.
        let http = reqwest::Client::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(300);
        loop {
            if let Some(status) = llama.child.try_wait().unwrap() {
                panic!("llama-server exited ({status}): {}", llama.log_text());
            }
            let health = http
                .get(format!("{}/health", llama.url))
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return llama;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "llama-server never became healthy: {}",
                llama.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_text(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = log.len().saturating_sub(4000);
        log[log
            .char_indices()
            .find(|(i, _)| *i >= start)
            .map_or(0, |(i, _)| i)..]
            .to_string()
    }

    fn stop(mut self) {
        signal(&self.child, "-KILL");
        let _ = self.child.wait();
    }

    async fn post(&self, path: &str, body: &Value) -> Value {
        reqwest::Client::new()
            .post(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// How many tokens the server's own chat template and tokenizer make of `messages`: what
    /// it must report as prompt tokens when it read the whole request.
    async fn prompt_tokens(&self, messages: &Value) -> usize {
        let templated = self
            .post("/apply-template", &json!({ "messages": messages }))
            .await;
        let prompt = templated["prompt"].as_str().unwrap().to_string();
        let tokens = self
            .post(
                "/tokenize",
                &json!({ "content": prompt, "add_special": true, "parse_special": true }),
            )
            .await;
        tokens["tokens"].as_array().unwrap().len()
    }
}

/// One exchange through the pass-through.
#[derive(Debug, Clone)]
struct Exchange {
    path: String,
    request: Value,
    status: u16,
    response: String,
}

/// A recording pass-through to a llama-server. Dropping it closes its port, so fintel then
/// meets a refused connection as it would a stopped server.
struct Recorder {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    async fn start(upstream: &str, seen: Arc<Mutex<Vec<Exchange>>>) -> Recorder {
        use axum::body::Bytes;
        use axum::http::{Method, StatusCode, Uri};
        let upstream = upstream.to_string();
        let log = seen;
        let http = reqwest::Client::new();
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, body: Bytes| {
            let (upstream, log, http) = (upstream.clone(), log.clone(), http.clone());
            async move {
                let path = uri
                    .path_and_query()
                    .map_or("/".to_string(), |p| p.to_string());
                let method = reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap();
                let res = http
                    .request(method, format!("{upstream}{path}"))
                    .header("content-type", "application/json")
                    .body(body.to_vec())
                    .send()
                    .await;
                let (status, text) = match res {
                    Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
                    Err(e) => (502, format!("pass-through: {e}")),
                };
                log.lock().unwrap().push(Exchange {
                    path,
                    request: serde_json::from_slice(&body).unwrap_or(Value::Null),
                    status,
                    response: text.clone(),
                });
                (
                    StatusCode::from_u16(status).unwrap(),
                    [("content-type", "application/json")],
                    text,
                )
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Recorder { url, task }
    }

    fn stop(self) {
        self.task.abort();
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The smallest useful analysis: two short fields whose grammar SmolLM2 cannot get wrong, so
/// what is checked is fintel's handling of the server, not the small model's prose.
const TINY_WORKFLOW: &str = r#"
name = "tiny"
description = "The tone of an annual report and its risk on a 1-5 scale"

[year]
system = "You read one annual report and answer in JSON."
prompt = """
Read the annual report below and answer with its overall tone and a risk level from 1 (low) to 5 (high).

Company: {company_name} (ticker {ticker})
Fiscal year: {year}

{document}

Answer with the tone and the risk level.
"""
schema = '''
{
  "type": "object",
  "properties": {
    "tone": {"type": "string", "enum": ["positive", "neutral", "negative"]},
    "risk": {"type": "integer", "minimum": 1, "maximum": 5}
  },
  "required": ["tone", "risk"]
}
'''
"#;

fn setup(env: &Env) {
    let workflows = env.home().join("workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    std::fs::write(workflows.join("tiny.toml"), TINY_WORKFLOW).unwrap();
    std::fs::write(
        env.dir.path().join("three.csv"),
        fintel_sim::companies_csv(3),
    )
    .unwrap();
}

/// fintel configured for an OpenAI-compatible server as a user would: provider, URL and
/// nothing else (no key, no concurrency or context setting).
fn fintel(env: &Env, url: &str, args: &[&str]) -> Command {
    let mut c = env.cmd(args);
    c.env_remove("GOOGLE_API_KEY_1")
        .env_remove("FINTEL_GEMINI_URL")
        .env_remove("FINTEL_CONCURRENCY")
        .env("FINTEL_PROVIDER", "openai-compatible")
        .env("FINTEL_OPENAI_URL", url);
    c
}

fn first_ticker(env: &Env) -> String {
    let csv = std::fs::read_to_string(env.dir.path().join("three.csv")).unwrap();
    csv.lines()
        .nth(1)
        .and_then(|l| l.split(',').next())
        .unwrap()
        .to_string()
}

/// Every stored result against the schema of the workflow pinned by its batch.
fn check_results_are_schema_valid(env: &Env) -> usize {
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT r.ticker, r.fiscal_year, r.json,
                    (SELECT b.workflow FROM batches b
                      WHERE b.analysis_type = r.analysis_type
                        AND b.analysis_version = r.analysis_version LIMIT 1)
               FROM results r ORDER BY r.id",
        )
        .unwrap();
    let rows: Vec<(Option<String>, Option<i64>, String, Option<String>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (ticker, year, answer, workflow) in &rows {
        let workflow = workflow
            .as_deref()
            .unwrap_or_else(|| panic!("{ticker:?} {year:?}: no batch pins its workflow"));
        let workflow = fintel_workflows::Workflow::from_canonical(workflow).unwrap();
        let schema = workflow.year.as_ref().unwrap().schema.clone();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let answer: Value = serde_json::from_str(answer).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&answer)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{ticker:?} {year:?}: stored answer {answer} breaks the pinned schema: {errors:?}"
        );
    }
    rows.len()
}

/// No stored answer came from a request the server did not read whole: each successful chat
/// completion's reported prompt tokens equal what the server's tokenizer makes of the request
/// that was sent, and each stored result's prompt tokens are those of such an answer, which
/// ended on its own (`finish_reason: stop`), not at the output limit.
async fn check_nothing_truncated_was_stored(env: &Env, llama: &Llama, seen: &[Exchange]) {
    let mut whole = Vec::new();
    for ex in seen
        .iter()
        .filter(|e| e.path.ends_with("/chat/completions") && e.status == 200)
    {
        let answer: Value = serde_json::from_str(&ex.response).unwrap();
        let reported = answer["usage"]["prompt_tokens"].as_u64().unwrap() as usize;
        let sent = llama.prompt_tokens(&ex.request["messages"]).await;
        assert_eq!(
            reported, sent,
            "the server read {reported} of the {sent} prompt tokens sent: {}",
            ex.response
        );
        if answer["choices"][0]["finish_reason"] == "stop" {
            whole.push(reported as i64);
        }
    }
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let mut stmt = conn
        .prepare("SELECT ticker, fiscal_year, prompt_tokens FROM results")
        .unwrap();
    let stored: Vec<(Option<String>, Option<i64>, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (ticker, year, tokens) in stored {
        assert!(
            whole.contains(&tokens),
            "{ticker:?} {year:?}: stored with {tokens} prompt tokens, which no whole, finished \
             answer reported ({whole:?})"
        );
    }
}

fn chat_exchanges(seen: &Arc<Mutex<Vec<Exchange>>>) -> Vec<Exchange> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|e| e.path.ends_with("/chat/completions"))
        .cloned()
        .collect()
}

/// What a user who starts llama-server and points fintel at it gets with no model configured:
/// `fintel doctor` finds the server's only model and says it chose it, spending nothing.
#[tokio::test(flavor = "multi_thread")]
async fn doctor_against_a_real_llama_server_chooses_its_only_model() {
    let Some((server, model)) = llama() else {
        return;
    };
    let env = Env::new(0).await;
    setup(&env);
    let llama = Llama::start(&server, &model, env.dir.path().join("llama.log")).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorder = Recorder::start(&llama.url, seen.clone()).await;

    let out = fintel(&env, &recorder.url, &["doctor", "--json"])
        .env_remove("FINTEL_MODEL")
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["model"], MODEL, "{doc}");
    assert!(
        chat_exchanges(&seen).is_empty(),
        "doctor spent a generation request"
    );
}

/// `fintel doctor`, `fintel analyze` and a small batch against a real llama-server with a
/// 2,048-token context; the server is stopped mid-batch (the tasks wait, none fails), started
/// again, and the resumed batch finishes with every stored answer schema-valid and read whole.
#[tokio::test(flavor = "multi_thread")]
async fn a_real_llama_server_serves_analyze_and_a_batch_that_outlives_its_restart() {
    let Some((server, model)) = llama() else {
        return;
    };
    let env = Env::new(0).await;
    setup(&env);
    let llama = Llama::start(&server, &model, env.dir.path().join("llama-1.log")).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorder = Recorder::start(&llama.url, seen.clone()).await;
    let run = |url: &str, args: &[&str]| {
        fintel(&env, url, args)
            .env("FINTEL_MODEL", MODEL)
            .output()
            .unwrap()
    };

    // Pre-flight: the model is served, and nothing is generated.
    let out = run(&recorder.url, &["doctor", "--json"]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["ok"], true, "{doc}");
    assert!(chat_exchanges(&seen).is_empty(), "doctor generated");

    // One company: the filing (about 10,000 tokens) is fitted to the 2,048-token context.
    let ticker = first_ticker(&env);
    let out = run(
        &recorder.url,
        &[
            "analyze",
            &ticker,
            "--years",
            "1",
            "--analysis-type",
            "tiny",
        ],
    );
    let chats = chat_exchanges(&seen);
    assert_eq!(
        out.status.code(),
        Some(0),
        "analyze failed; stderr:\n{}\nthe server answered: {:?}",
        text(&out.stderr),
        chats
            .iter()
            .map(|e| (e.status, &e.response))
            .collect::<Vec<_>>()
    );
    assert_eq!(env.completed_results(), 1, "{}", text(&out.stderr));

    // A batch of 3 companies x 2 years; the server goes away once a year is stored. The
    // batch's terminal goes to a file: a full pipe must not block it while the test waits.
    let batch_log = env.dir.path().join("batch.log");
    let mut batch = Guarded(
        fintel(
            &env,
            &recorder.url,
            &[
                "batch",
                "three.csv",
                "--years",
                "2",
                "--analysis-type",
                "tiny",
                "--yes",
            ],
        )
        .env("FINTEL_MODEL", MODEL)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&batch_log).unwrap())
        .spawn()
        .unwrap(),
    );
    let batch_text = || std::fs::read_to_string(&batch_log).unwrap_or_default();
    let year_done = "SELECT COUNT(*) FROM tasks
                      WHERE batch_id = (SELECT id FROM batches ORDER BY rowid DESC LIMIT 1)
                        AND kind = 'year' AND state = 'completed'";
    until(
        "a year of the batch stored",
        Duration::from_secs(900),
        || {
            if let Some(status) = batch.try_wait().unwrap() {
                panic!(
                    "the batch ended ({status}) before the server was stopped: {}\nthe server \
                 answered: {:?}",
                    batch_text(),
                    chat_exchanges(&seen)
                        .iter()
                        .map(|e| (e.status, e.response.clone()))
                        .collect::<Vec<_>>()
                );
            }
            sql_i64(&env, year_done) >= 2
        },
    )
    .await;
    let calls_before = sql_i64(&env, "SELECT COUNT(*) FROM calls");
    recorder.stop();
    llama.stop();

    // The tasks wait: fintel keeps trying (refused connections, never sent), fails nothing,
    // and the process stays.
    until(
        "a request to the stopped server",
        Duration::from_secs(300),
        || sql_i64(&env, "SELECT COUNT(*) FROM calls") > calls_before,
    )
    .await;
    assert!(
        batch.try_wait().unwrap().is_none(),
        "the batch ended when the server went away: {}",
        batch_text()
    );
    assert_eq!(
        sql_i64(&env, "SELECT COUNT(*) FROM tasks WHERE state = 'failed'"),
        0,
        "a task failed because the server was down"
    );
    signal(&batch, "-TERM");
    let status = wait_for(&mut batch, Duration::from_secs(120));
    let stderr = batch_text();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(
        sql_i64(&env, "SELECT COUNT(*) FROM tasks WHERE state = 'failed'"),
        0,
        "{stderr}"
    );

    // The server is back (on another port, as after a reboot); the batch resumes and finishes.
    let llama = Llama::start(&server, &model, env.dir.path().join("llama-2.log")).await;
    let recorder = Recorder::start(&llama.url, seen.clone()).await;
    let out = run(&recorder.url, &["batch", "--resume", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "resume failed: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let state = sql_string_last_batch_state(&env);
    assert_eq!(state, "completed", "{}", text(&out.stderr));
    assert_eq!(
        sql_i64(
            &env,
            "SELECT COUNT(*) FROM tasks WHERE kind = 'year' AND state != 'completed'"
        ),
        0,
        "every year is analysed: {}",
        text(&out.stderr)
    );
    // 1 from analyze, 6 from the batch, of which analyze's company-year is reused.
    let stored = check_results_are_schema_valid(&env);
    assert!(stored >= 6, "{stored} results stored");
    recorder.stop();
    let seen = seen.lock().unwrap().clone();
    check_nothing_truncated_was_stored(&env, &llama, &seen).await;
}

fn sql_string_last_batch_state(env: &Env) -> String {
    support::procs::sql_string(
        env,
        "SELECT state FROM batches ORDER BY created_at DESC, rowid DESC LIMIT 1",
    )
    .unwrap_or_default()
}
