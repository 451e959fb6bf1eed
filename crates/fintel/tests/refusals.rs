//! Refusals end to end with the built binary against the simulator taught the providers' real
//! bodies: a prompt refused for its content skips that company's tasks with the provider's
//! reason while the batch finishes (and a resume does not stop on it), a packed schema refused
//! as too complex ("too many states") sends its years alone, a single year's schema refused so
//! is exit 4 naming the analysis type, and a 429 saying `limit: 0` without `quotaValue` is exit
//! 4 naming the model and the quota, without waiting for a reset.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use fintel_sim::{FilterReply, Flavor, OpenAiSimConfig, SimConfig};
use support::procs::{sql_i64, sql_string, until};
use support::*;

/// The ticker of the `n`th company (from 0) of the harness's `companies.csv`.
fn ticker(n: usize) -> String {
    fintel_sim::companies_csv(8)
        .lines()
        .nth(n + 1)
        .and_then(|l| l.split(',').next())
        .unwrap()
        .to_string()
}

/// `fintel ARGS` against the simulator's OpenAI-compatible side, model `gpt-test`.
fn openai_cmd(env: &Env, args: &[&str]) -> Command {
    let mut c = env.cmd(args);
    c.env("FINTEL_PROVIDER", "openai")
        .env("FINTEL_OPENAI_URL", &env.url)
        .env("FINTEL_MODEL", "gpt-test")
        .env_remove("GOOGLE_API_KEY_1");
    c
}

/// Runs `cmd` to its end (bounded in real time: a run that waits for a reset or loops shows as
/// one that does not end) and returns its exit code and stderr.
fn finish(mut cmd: Command, within: Duration) -> (Option<i32>, String) {
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || read_all(stderr));
    let status = wait_for(&mut child, within);
    (status.code(), reader.join().unwrap())
}

fn year_tasks(env: &Env, state: &str) -> i64 {
    sql_i64(
        env,
        &format!("SELECT COUNT(*) FROM tasks WHERE kind = 'year' AND state = '{state}'"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prompt_refused_for_its_content_skips_that_company_and_the_batch_finishes() {
    // The simulator's OpenAI side refuses the first company's prompts (a prompt names its
    // company "... (ticker X)"), as Azure OpenAI's content filter does; it answers the others
    // one at a time, slowly enough that the batch is still running once the refusals are in.
    let refused = ticker(0);
    let env = Env::with(0, |c: &mut SimConfig| {
        c.openai = Some(OpenAiSimConfig {
            flavor: Flavor::OpenAi,
            models: vec!["gpt-test".into()],
            content_filtered: vec![format!("(ticker {refused})")],
            content_filter_reply: FilterReply::Azure,
            slots: 1,
            answer_ms: 400,
            ..OpenAiSimConfig::default()
        });
    })
    .await;
    let mut cmd = openai_cmd(&env, &["batch", "companies.csv", "--years", "2", "--yes"]);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || read_all(stderr));
    // Where the old reading stopped the batch (exit 4), its two years are skipped and the
    // batch goes on; stop it there, as a user would, and resume it.
    until(
        "the refused years to be skipped",
        Duration::from_secs(60),
        || count(&env, "skipped") == Some(2) || child.try_wait().ok().flatten().is_some(),
    )
    .await;
    if let Some(status) = child.try_wait().unwrap() {
        let stderr = reader.join().unwrap();
        panic!("the batch ended ({status}) instead of skipping the refused years: {stderr}");
    }
    signal(&child, "-TERM");
    let status = wait_for(&mut child, Duration::from_secs(60));
    let stderr = reader.join().unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(count(&env, "skipped"), Some(2), "{stderr}");
    assert!(
        count(&env, "completed").unwrap_or(0) < 14,
        "still running when stopped: {stderr}"
    );

    // The resume does not stop on the refused task, nor send it again, and finishes.
    let (code, stderr) = finish(
        openai_cmd(&env, &["batch", "--resume"]),
        Duration::from_secs(120),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(year_tasks(&env, "skipped"), 2);
    assert_eq!(year_tasks(&env, "completed"), 14);
    assert_eq!(env.completed_results(), 14);
    let stats = env.sim.as_ref().unwrap().stats().openai;
    assert_eq!(stats.content_filtered, 2, "each year asked once: {stats:?}");

    // The skip keeps the provider's reason, and `batch status` shows it.
    let reason = sql_string(
        &env,
        &format!(
            "SELECT t.reason FROM tasks t JOIN companies c ON c.id = t.company_id \
             WHERE t.kind = 'year' AND t.state = 'skipped' AND c.ticker = '{refused}' LIMIT 1"
        ),
    )
    .unwrap_or_default();
    assert!(reason.contains("content_filter"), "{reason}");
    assert!(reason.contains("content management policy"), "{reason}");
    let out = openai_cmd(&env, &["batch", "status", "--json", "--skipped"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("content management policy"), "{shown}");
}

/// Year tasks in `state`, once the database has them.
fn count(env: &Env, state: &str) -> Option<i64> {
    if !env.db().exists() {
        return None;
    }
    rusqlite::Connection::open(env.db())
        .and_then(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM tasks WHERE kind = 'year' AND state = ?1",
                [state],
                |r| r.get(0),
            )
        })
        .ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prompt_gemini_blocks_skips_its_years_packed_or_alone() {
    let blocked = ticker(5);
    let env = Env::with(0, |c: &mut SimConfig| {
        c.gemini.blocked_prompts = vec![format!("(ticker {blocked})")];
    })
    .await;
    let (code, stderr) = finish(
        env.cmd(&[
            "batch",
            "companies.csv",
            "--years",
            "2",
            "--pack",
            "2",
            "--yes",
        ]),
        Duration::from_secs(120),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(year_tasks(&env, "skipped"), 2);
    assert_eq!(year_tasks(&env, "completed"), 14);
    let reason = sql_string(
        &env,
        "SELECT reason FROM tasks WHERE kind = 'year' AND state = 'skipped' LIMIT 1",
    )
    .unwrap_or_default();
    assert!(reason.contains("PROHIBITED_CONTENT"), "{reason}");
    // The pack was refused once; each year was then asked alone and refused.
    let stats = env.sim.as_ref().unwrap().stats().gemini.total;
    assert_eq!(stats.blocked_prompts, 3, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_packed_schema_with_too_many_states_sends_its_years_alone() {
    let env = Env::with(0, |c: &mut SimConfig| {
        c.gemini.packed_schema_too_complex = true;
    })
    .await;
    let (code, stderr) = finish(
        env.cmd(&[
            "batch",
            "companies.csv",
            "--years",
            "2",
            "--pack",
            "2",
            "--yes",
        ]),
        Duration::from_secs(120),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(year_tasks(&env, "completed"), 16);
    assert_eq!(env.completed_results(), 16);
    // A refused pack's years went alone, charged nothing, and the run packs no more: only
    // the packs claimed before the first refusal came back (one per task running at once)
    // were sent packed.
    let stats = env.sim.as_ref().unwrap().stats().gemini.total;
    assert!(stats.invalid_request <= 2, "{stats:?}");
    assert_eq!(stats.accepted, 16, "{stats:?}");
    assert_eq!(
        sql_i64(
            &env,
            "SELECT COUNT(*) FROM tasks WHERE kind = 'year' AND attempts = 0"
        ),
        16
    );
    assert_eq!(
        sql_i64(
            &env,
            "SELECT COUNT(*) FROM calls WHERE outcome = 'schema_too_complex'"
        ),
        stats.invalid_request as i64
    );
    assert_eq!(
        sql_i64(
            &env,
            "SELECT COUNT(*) FROM results WHERE packed_with IS NOT NULL"
        ),
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_single_year_schema_with_too_many_states_is_exit_4_naming_the_type() {
    let env = Env::with(0, |c: &mut SimConfig| {
        c.gemini.max_schema_chars = Some(100);
    })
    .await;
    let (code, stderr) = finish(
        env.cmd(&["batch", "companies.csv", "--years", "1", "--yes"]),
        Duration::from_secs(120),
    );
    assert_eq!(code, Some(4), "{stderr}");
    assert!(
        stderr.contains("analysis type `fundamental`"),
        "names the type: {stderr}"
    );
    assert!(stderr.contains("too many states"), "{stderr}");
    assert!(stderr.contains("gemini-2.5-flash"), "{stderr}");
    assert_eq!(year_tasks(&env, "failed"), 0);
    assert_eq!(year_tasks(&env, "skipped"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_limit_0_without_quota_value_is_exit_4_naming_the_model_and_the_quota() {
    // A model with no quota on the project's tier: every limit is 0, and the 429's violations
    // carry no quotaValue (ProtoJSON omits zero values); only its message says "limit: 0".
    let env = Env::with(0, |c: &mut SimConfig| {
        let p = &mut c.gemini.projects[0];
        p.requests_per_day = 0;
        p.requests_per_minute = 0;
        p.input_tokens_per_minute = 0;
    })
    .await;
    // Waiting for a reset would outlast this bound by hours.
    let (code, stderr) = finish(
        env.cmd(&["batch", "companies.csv", "--years", "1", "--yes"]),
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(4), "{stderr}");
    assert!(stderr.contains("gemini-2.5-flash"), "{stderr}");
    assert!(
        stderr.contains("generate_content_free_tier_requests"),
        "names the quota: {stderr}"
    );
    assert!(stderr.contains("no quota"), "{stderr}");
    assert_ne!(
        sql_string(&env, "SELECT state FROM batches LIMIT 1").as_deref(),
        Some("waiting_reset")
    );
    // One refusal is enough to know: nothing was sent again.
    let stats = env.sim.as_ref().unwrap().stats().gemini.total;
    assert!(stats.received <= 2, "{stats:?}");
}
