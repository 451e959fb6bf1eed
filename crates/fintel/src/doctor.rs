//! `fintel doctor`: the pre-flight checks on their own, spending no generation quota. Each
//! key is checked with the provider's model lookup (Gemini `GET v1beta/models/{model}`), and
//! so is the model; then the SEC User-Agent, the database, the data directory (by writing a
//! file) and free disk space. [`check_keys`] is shared with the pre-flight of every batch.

use std::path::{Path, PathBuf};

use anyhow::Result;
use fintel_engine::upkeep::human_bytes;
use fintel_engine::Bucket;
use fintel_llm::{mask_secrets_in, ApiKey, CallError, ModelInfo, Provider};
use fintel_store::{FreeSpace, SystemFreeSpace};
use serde::Serialize;
use serde_json::json;

use crate::app::App;
use crate::cli::DoctorArgs;
use crate::config::ProviderKind;
use crate::exit;

/// Keys checked at once: enough that 25 keys take about one round trip, few enough not to
/// look like a flood to the provider.
const CONCURRENT_CHECKS: usize = 16;

/// What checking one key found.
pub struct KeyCheck {
    /// The key's masked label (`GOOGLE_API_KEY_2 (AIza...9xQk)`), or `(no key)` for a local
    /// server that needs none.
    pub label: String,
    pub bucket: String,
    pub key: Option<ApiKey>,
    pub outcome: Result<ModelInfo, CallError>,
}

/// Checks every key of `buckets` against `model` with [`Provider::check_model`], which spends
/// no generation quota; a bucket without keys (a local OpenAI-compatible server) is checked
/// once without one. The answers come back in the order of the buckets and their keys.
pub async fn check_keys(provider: &dyn Provider, buckets: &[Bucket], model: &str) -> Vec<KeyCheck> {
    let targets: Vec<(String, Option<ApiKey>)> = buckets
        .iter()
        .flat_map(|b| {
            let keys: Vec<Option<ApiKey>> = if b.keys.is_empty() {
                vec![None]
            } else {
                b.keys.iter().cloned().map(Some).collect()
            };
            keys.into_iter().map(|k| (b.name.clone(), k))
        })
        .collect();
    let mut checks = Vec::with_capacity(targets.len());
    for chunk in targets.chunks(CONCURRENT_CHECKS) {
        let outcomes = futures_util::future::join_all(
            chunk
                .iter()
                .map(|(_, key)| provider.check_model(key.as_ref(), model)),
        )
        .await;
        for ((bucket, key), outcome) in chunk.iter().zip(outcomes) {
            checks.push(KeyCheck {
                label: key
                    .as_ref()
                    .map_or_else(|| "(no key)".to_string(), |k| k.label().to_string()),
                bucket: bucket.clone(),
                key: key.clone(),
                outcome,
            });
        }
    }
    checks
}

/// One check's verdict, as printed and as in `--json`.
#[derive(Debug, Serialize)]
struct Check {
    name: &'static str,
    ok: bool,
    detail: String,
    /// What to do about a failure.
    fix: Option<String>,
}

impl Check {
    fn pass(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// A key's verdict.
#[derive(Debug, Serialize)]
struct KeyReport {
    label: String,
    bucket: String,
    /// `ok`, `unusable` (invalid, expired, leaked, permission denied), `out_of_credit`,
    /// `disabled` (works, but an earlier run disabled it) or `could_not_check`.
    status: &'static str,
    ok: bool,
    detail: String,
}

pub async fn doctor(app: &App, args: DoctorArgs) -> Result<u8> {
    let config = &app.config;
    let provider = app.provider()?;
    let secrets: Vec<String> = config
        .buckets
        .iter()
        .flat_map(|b| b.keys.iter().map(|k| k.secret().to_string()))
        .collect();
    let secret_refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    // Error bodies are masked by the clients already; this is the second lock on the door.
    let mask = |text: String| mask_secrets_in(&text, &secret_refs);

    let (store, database) = database_check(app);
    let disabled: Vec<(String, String)> = store
        .as_ref()
        .and_then(|s| s.keys().ok())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|k| k.disabled_reason.map(|r| (k.fingerprint, r)))
        .collect();

    let mut checks = Vec::new();
    let mut keys = Vec::new();
    let mut model_used: Option<String> = config.model.clone();
    let mut model_choice: Option<fintel_llm::ModelChoice> = None;
    let provider_url = match config.provider {
        ProviderKind::Gemini => &config.gemini_url,
        ProviderKind::OpenAi => &config.openai_url,
    };
    if config.provider == ProviderKind::Gemini && !config.has_keys() {
        let message = crate::config::no_keys_error().to_string();
        checks.push(Check::fail("keys", "no API key configured", message));
        checks.push(Check::fail(
            "model",
            match &config.model {
                Some(model) => format!("{model} not checked: no key to ask with"),
                None => "not chosen: no key to ask the provider's model list with".to_string(),
            },
            "configure a key first (see keys)",
        ));
        checks.push(Check::fail(
            "projects",
            "no key, so no quota: 0 requests a day",
            "configure a key first (see keys)",
        ));
    } else if let Err(why) = match &config.model {
        Some(_) => Ok(()),
        None => {
            let served = crate::models::list_served(provider.as_ref(), &config.buckets).await;
            crate::models::choose(config.provider, &served).map(|choice| {
                model_used = Some(choice.model.clone());
                model_choice = Some(choice);
            })
        }
    } {
        checks.push(Check::fail(
            "model",
            mask(why),
            "check the keys and the provider URL, or pin a model with FINTEL_MODEL",
        ));
    } else {
        let model = model_used.clone().unwrap_or_default();
        let results = check_keys(provider.as_ref(), &config.buckets, &model).await;
        for r in &results {
            keys.push(key_report(r, &disabled, provider_url, &mask));
        }
        checks.push(keys_check(&keys, &model, config.provider));
        let unserved = results
            .iter()
            .any(|r| matches!(r.outcome, Err(CallError::ModelUnavailable { .. })));
        let candidates = if unserved {
            let served = crate::models::list_served(provider.as_ref(), &config.buckets).await;
            crate::models::candidates(config.provider, served.as_deref().ok())
        } else {
            String::new()
        };
        let mut check = model_check(
            &results,
            &model,
            provider_url,
            &candidates,
            config.provider,
            &mask,
        );
        if let (true, Some(choice)) = (check.ok, &model_choice) {
            check.detail = format!(
                "{}; chosen: {} (pin it, or another, with FINTEL_MODEL or [model] name in \
                 fintel.toml)",
                check.detail, choice.reason
            );
        }
        let model_ok = check.ok;
        checks.push(check);
        if config.provider == ProviderKind::OpenAi {
            let key = results
                .iter()
                .find(|r| r.outcome.is_ok())
                .and_then(|r| r.key.clone());
            let limits = provider.server_limits(key.as_ref(), &model).await;
            let _ = app.server_limits.set(limits);
            checks.push(server_check(
                &limits,
                provider_url,
                &app.engine_settings(&model),
            ));
        }
        if args.probe && model_ok {
            checks.push(
                match crate::probe::probe(app, provider.as_ref(), &model).await? {
                    Ok(detail) => Check::pass("probe", mask(detail)),
                    Err((detail, fix)) => Check::fail("probe", mask(detail), fix),
                },
            );
        }
        // The assumption plans rest on: how many projects the keys are in.
        let buckets = crate::projects::effective_buckets(app, store.as_deref())
            .map(|(b, _)| b)
            .unwrap_or_else(|_| config.buckets.clone());
        checks.push(Check::pass(
            "projects",
            crate::projects::capacity_line_for(config.provider, &buckets),
        ));
    }
    checks.push(user_agent_check(config.sec_user_agent.as_deref()));
    checks.push(database);
    drop(store);
    checks.push(data_dir_check(&config.data_dir));
    checks.push(disk_check(
        &SystemFreeSpace,
        &config.data_dir,
        config.min_free_disk_bytes,
    ));

    let ok = checks.iter().all(|c| c.ok);
    if args.json {
        println!(
            "{}",
            json!({
                "ok": ok,
                "provider": config.provider,
                "model": model_used,
                "model_chosen": model_choice.as_ref().map(|c| json!({"model": c.model, "reason": c.reason})),
                "checks": checks,
                "keys": keys,
            })
        );
    } else {
        print_human(&checks, &keys);
    }
    Ok(if ok { exit::OK } else { exit::CONFIG })
}

fn key_report(
    check: &KeyCheck,
    disabled: &[(String, String)],
    provider_url: &str,
    mask: &dyn Fn(String) -> String,
) -> KeyReport {
    let (status, detail) = match &check.outcome {
        // A model the provider does not know is the model's problem: the key got past
        // authentication, which the provider checks first.
        Ok(_) | Err(CallError::Configuration { .. }) | Err(CallError::ModelUnavailable { .. }) => {
            ("ok", "accepted by the provider".into())
        }
        Err(CallError::DailyQuotaExhausted { message, .. })
        | Err(CallError::RateLimited { message, .. })
        | Err(CallError::InputTokensPerMinute { message, .. }) => (
            "ok",
            format!("accepted, but rate limited right now: {message}"),
        ),
        Err(CallError::KeyUnusable { reason, .. }) => ("unusable", reason.clone()),
        Err(CallError::KeyExhausted { message }) => ("out_of_credit", message.clone()),
        Err(e) => (
            "could_not_check",
            format!("could not reach the provider at {provider_url}: {e}"),
        ),
    };
    let earlier = check.key.as_ref().and_then(|k| {
        disabled
            .iter()
            .find(|(f, _)| *f == k.fingerprint())
            .map(|(_, r)| r.clone())
    });
    let (status, detail) = match earlier {
        Some(reason) if status == "ok" => (
            "disabled",
            format!(
                "works now, but an earlier run disabled it ({reason}); `fintel keys enable {}` \
                 puts it back in use",
                check.label.split(" (").next().unwrap_or(&check.label)
            ),
        ),
        _ => (status, detail),
    };
    KeyReport {
        label: check.label.clone(),
        bucket: check.bucket.clone(),
        status,
        ok: status == "ok",
        detail: mask(detail),
    }
}

/// What an OpenAI-compatible server says about itself, and what a batch will take from it.
fn server_check(
    limits: &fintel_llm::ServerLimits,
    url: &str,
    settings: &fintel_engine::EngineSettings,
) -> Check {
    let said = match (limits.context_tokens, limits.slots) {
        (Some(c), Some(s)) => format!("says a context of {c} tokens and {s} slot(s)"),
        (Some(c), None) => format!("says a context of {c} tokens"),
        (None, Some(s)) => format!("says {s} slot(s) but not its context"),
        (None, None) => "says nothing of its context".to_string(),
    };
    let mut detail = format!(
        "{} at {url} {said}; batches fit requests to {} tokens and run {} at a time",
        limits.kind.label(),
        settings.context_tokens,
        settings.concurrency
    );
    match limits.kind {
        fintel_llm::ServerKind::Ollama => detail.push_str(
            ". Ollama reports the model's trained context, and may run it with less \
             (OLLAMA_CONTEXT_LENGTH, num_ctx): every answer is checked for silent truncation",
        ),
        fintel_llm::ServerKind::OpenAiCompatible if limits.context_tokens.is_none() => detail
            .push_str(
                ". Set FINTEL_CONTEXT_TOKENS to the model's context if it is smaller (a \
                 refusal for size teaches it too)",
            ),
        _ => {}
    }
    Check::pass("server", detail)
}

fn keys_check(keys: &[KeyReport], model: &str, provider: ProviderKind) -> Check {
    let good = keys.iter().filter(|k| k.ok).count();
    let bad: Vec<String> = keys
        .iter()
        .filter(|k| !k.ok)
        .map(|k| format!("{} {}", k.label, k.status.replace('_', " ")))
        .collect();
    if bad.is_empty() {
        return Check::pass(
            "keys",
            format!("{good} of {} key(s) work with {model}", keys.len()),
        );
    }
    let mut fixes = Vec::new();
    let has = |s: &str| keys.iter().any(|k| k.status == s);
    if has("unusable") {
        fixes.push(match provider {
            ProviderKind::Gemini => {
                "replace or remove the unusable key(s) (a new key from Google AI Studio, or the \
                 Generative Language API enabled for its project)"
            }
            ProviderKind::OpenAi => {
                "replace or remove the unusable key(s): use a key the server accepts \
                 (OPENAI_API_KEY), or none for a local server that needs none"
            }
        });
    }
    if has("out_of_credit") {
        fixes.push("add credit to the account of the key(s) out of credit");
    }
    if has("disabled") {
        fixes.push("re-enable the disabled key(s) with `fintel keys enable LABEL`");
    }
    if has("could_not_check") {
        fixes.push(match provider {
            ProviderKind::Gemini => {
                "check the network and the provider URL, then run `fintel doctor` again"
            }
            ProviderKind::OpenAi => {
                "check that the server is running and FINTEL_OPENAI_URL points at it (e.g. \
                 http://localhost:11434 for Ollama, http://localhost:8080 for llama-server, \
                 http://localhost:8000 for vLLM), then run `fintel doctor` again"
            }
        });
    }
    Check::fail(
        "keys",
        format!("{good} of {} key(s) usable; {}", keys.len(), bad.join(", ")),
        fixes.join("; "),
    )
}

fn model_check(
    results: &[KeyCheck],
    model: &str,
    provider_url: &str,
    candidates: &str,
    provider: ProviderKind,
    mask: &dyn Fn(String) -> String,
) -> Check {
    if let Some(info) = results.iter().find_map(|r| r.outcome.as_ref().ok()) {
        let limits = match (info.input_token_limit, info.output_token_limit) {
            (Some(i), Some(o)) => format!(" (input limit {i} tokens, output limit {o})"),
            (Some(i), None) => format!(" (input limit {i} tokens)"),
            _ => String::new(),
        };
        return Check::pass("model", format!("{model} exists{limits}"));
    }
    if let Some(message) = results.iter().find_map(|r| match &r.outcome {
        Err(CallError::ModelUnavailable { message }) => Some(message.clone()),
        _ => None,
    }) {
        return Check::fail(
            "model",
            mask(crate::models::not_served(model, &message, candidates)),
            format!(
                "set FINTEL_MODEL (or [model] name in fintel.toml) to a served model \
                 ({candidates}), or leave it unset to let fintel choose"
            ),
        );
    }
    let unknown = results.iter().find_map(|r| match &r.outcome {
        Err(CallError::Configuration { message }) => Some(message.clone()),
        _ => None,
    });
    match unknown {
        Some(message) => Check::fail(
            "model",
            mask(format!("{model} cannot be used: {message}")),
            match provider {
                ProviderKind::Gemini => {
                    "set FINTEL_MODEL (or [model] name in fintel.toml) to a model your keys can \
                     use (or leave it unset to let fintel choose one the provider serves)"
                }
                ProviderKind::OpenAi => {
                    "set FINTEL_MODEL (or [model] name in fintel.toml) to one of the models the \
                     server lists above (for Ollama, `ollama pull NAME` first)"
                }
            },
        ),
        None => Check::fail(
            "model",
            format!("{model} not confirmed: no key got an answer about it from {provider_url}"),
            match provider {
                ProviderKind::Gemini => "fix the keys above, then run `fintel doctor` again",
                ProviderKind::OpenAi => {
                    "start the server (or fix FINTEL_OPENAI_URL), then run `fintel doctor` again"
                }
            },
        ),
    }
}

fn user_agent_check(user_agent: Option<&str>) -> Check {
    match fintel_edgar::config::validate_user_agent(user_agent) {
        Ok(ua) => Check::pass("sec_user_agent", format!("SEC requests will say {ua:?}")),
        Err(fintel_edgar::EdgarError::MissingUserAgent { reason }) => Check::fail(
            "sec_user_agent",
            format!("no usable SEC User-Agent (FINTEL_SEC_USER_AGENT): {reason}"),
            "set FINTEL_SEC_USER_AGENT=\"Jane Doe jane@example.com\" (your name and e-mail), \
             or user_agent under [sec] in fintel.toml",
        ),
        Err(e) => Check::fail(
            "sec_user_agent",
            e.to_string(),
            "set FINTEL_SEC_USER_AGENT=\"Jane Doe jane@example.com\" (your name and e-mail), \
             or user_agent under [sec] in fintel.toml",
        ),
    }
}

/// Opens the database if there is one, as a batch would; the store is handed back so the
/// key check can see which keys earlier runs disabled.
fn database_check(app: &App) -> (Option<std::sync::Arc<fintel_store::Store>>, Check) {
    let path = app.config.db_path();
    match app.existing_store() {
        Ok(None) => (
            None,
            Check::pass(
                "database",
                format!(
                    "{} does not exist yet; the first batch creates it",
                    path.display()
                ),
            ),
        ),
        Ok(Some(store)) => {
            let check = match store.list_incomplete() {
                Ok(list) => Check::pass(
                    "database",
                    format!(
                        "{} opens; {} incomplete batch(es)",
                        path.display(),
                        list.len()
                    ),
                ),
                Err(e) => Check::fail(
                    "database",
                    format!("{} cannot be read: {e}", path.display()),
                    "restore it from a backup in the data directory's backups folder",
                ),
            };
            (Some(store), check)
        }
        Err(e) => (
            None,
            Check::fail(
                "database",
                format!("{e:#}"),
                "restore the database from a backup in the data directory's backups folder, or \
                 move it away to start afresh",
            ),
        ),
    }
}

/// The doctor's data directory check as an error for commands that must write there: a
/// directory fintel cannot write is a configuration problem (exit 4) with what to do, not a
/// bare file-system error.
pub fn require_writable_data_dir(dir: &Path) -> anyhow::Result<()> {
    let check = data_dir_check(dir);
    if check.ok {
        return Ok(());
    }
    Err(crate::exit::config_problem(format!(
        "the data directory cannot be used: {}; {} (`fintel doctor` checks this)",
        check.detail,
        check.fix.unwrap_or_default()
    )))
}

/// Creates the data directory if needed, then writes, syncs and removes a file in it.
fn data_dir_check(dir: &Path) -> Check {
    let fix = "make the directory writable, or point FINTEL_HOME (or --data-dir) at one that is";
    if let Err(e) = std::fs::create_dir_all(dir) {
        return Check::fail(
            "data_dir",
            format!("cannot create {}: {e}", dir.display()),
            fix,
        );
    }
    let probe = dir.join(format!(".fintel-doctor-{}.tmp", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)?;
        f.write_all(b"fintel doctor write test\n")?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&probe);
        return Check::fail(
            "data_dir",
            format!("cannot write a file in {}: {e}", dir.display()),
            fix,
        );
    }
    if let Err(e) = std::fs::remove_file(&probe) {
        return Check::fail(
            "data_dir",
            format!("cannot remove {}: {e}", probe.display()),
            fix,
        );
    }
    Check::pass("data_dir", format!("{} is writable", dir.display()))
}

/// The nearest existing folder at or above `dir`: free space is a property of its disk even
/// when the data directory itself could not be created.
fn existing_ancestor(dir: &Path) -> PathBuf {
    let mut p = dir;
    loop {
        if p.exists() {
            return p.to_path_buf();
        }
        match p.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => p = parent,
            _ => return PathBuf::from("."),
        }
    }
}

/// Free space against the threshold below which a batch pauses (`FINTEL_MIN_FREE_DISK_MB`,
/// `[run] min_free_disk_mb`); 0 turns the pause, and so this check, off.
fn disk_check(space: &dyn FreeSpace, dir: &Path, threshold: u64) -> Check {
    let at = existing_ancestor(dir);
    match space.free_bytes(&at) {
        Ok(free) if fintel_store::disk_is_low(free, threshold) => Check::fail(
            "disk_space",
            format!(
                "only {} free on the disk holding {}; batches pause below {} \
                 (FINTEL_MIN_FREE_DISK_MB)",
                human_bytes(free),
                at.display(),
                human_bytes(threshold)
            ),
            "free some space, or move the data directory (FINTEL_HOME) to a larger disk",
        ),
        Ok(free) if threshold == 0 => Check::pass(
            "disk_space",
            format!(
                "{} free on the disk holding {} (the low-disk pause is off: \
                 FINTEL_MIN_FREE_DISK_MB=0)",
                human_bytes(free),
                at.display()
            ),
        ),
        Ok(free) => Check::pass(
            "disk_space",
            format!(
                "{} free on the disk holding {}; batches pause below {}",
                human_bytes(free),
                at.display(),
                human_bytes(threshold)
            ),
        ),
        Err(e) => Check::fail(
            "disk_space",
            format!("cannot read the free space of {}: {e}", at.display()),
            "check that the data directory is on a mounted, readable file system",
        ),
    }
}

fn print_human(checks: &[Check], keys: &[KeyReport]) {
    for c in checks {
        let verdict = if c.ok { "ok  " } else { "FAIL" };
        match &c.fix {
            Some(fix) if !c.ok => println!("{verdict}  {}: {}. To fix: {fix}", c.name, c.detail),
            _ => println!("{verdict}  {}: {}", c.name, c.detail),
        }
        if c.name == "keys" {
            for k in keys {
                println!(
                    "        {}  {} [bucket {}]: {}",
                    if k.ok { "ok  " } else { "FAIL" },
                    k.label,
                    k.bucket,
                    if k.ok {
                        k.detail.clone()
                    } else {
                        format!("{}: {}", k.status.replace('_', " "), k.detail)
                    }
                );
            }
        }
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    if failed == 0 {
        println!("all {} checks passed", checks.len());
    } else {
        println!(
            "{failed} of {} checks failed; fix them and run `fintel doctor` again",
            checks.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(std::io::Result<u64>);
    impl FreeSpace for Fixed {
        fn free_bytes(&self, _: &Path) -> std::io::Result<u64> {
            match &self.0 {
                Ok(n) => Ok(*n),
                Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
            }
        }
    }

    const GIB: u64 = 1 << 30;

    #[test]
    fn low_or_unreadable_disk_fails_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let low = disk_check(&Fixed(Ok(5 << 20)), dir.path(), GIB);
        assert!(!low.ok);
        assert!(low.detail.contains("5.0 MiB"), "{}", low.detail);
        assert!(low.detail.contains("1.0 GiB"), "{}", low.detail);
        assert!(
            low.detail.contains("FINTEL_MIN_FREE_DISK_MB"),
            "{}",
            low.detail
        );
        assert!(low.fix.unwrap().contains("FINTEL_HOME"));
        let fine = disk_check(&Fixed(Ok(3 << 30)), dir.path(), GIB);
        assert!(fine.ok, "{}", fine.detail);
        let off = disk_check(&Fixed(Ok(5 << 20)), dir.path(), 0);
        assert!(off.ok && off.detail.contains("off"), "{}", off.detail);
        let broken = disk_check(
            &Fixed(Err(std::io::Error::other("no such device"))),
            dir.path(),
            GIB,
        );
        assert!(!broken.ok);
        assert!(broken.detail.contains("no such device"));
    }

    #[test]
    fn free_space_is_measured_on_the_nearest_existing_folder() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("not/yet/created");
        assert_eq!(existing_ancestor(&missing), dir.path());
        let check = disk_check(&SystemFreeSpace, &missing, 1);
        assert!(check.ok, "{}", check.detail);
    }

    #[test]
    fn an_unwritable_data_directory_fails() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, "x").unwrap();
        let check = data_dir_check(&file.join("home"));
        assert!(!check.ok);
        assert!(check.detail.contains("cannot create"), "{}", check.detail);
        let ok = data_dir_check(&dir.path().join("home"));
        assert!(ok.ok, "{}", ok.detail);
        // The probe file is gone again.
        let left: Vec<_> = std::fs::read_dir(dir.path().join("home"))
            .unwrap()
            .collect();
        assert!(left.is_empty());
    }

    #[test]
    fn user_agent_problems_name_the_variable() {
        for bad in [None, Some("  "), Some("Jane Doe")] {
            let c = user_agent_check(bad);
            assert!(!c.ok);
            assert!(
                c.detail.contains("FINTEL_SEC_USER_AGENT")
                    && c.fix.as_deref().unwrap().contains("FINTEL_SEC_USER_AGENT"),
                "{c:?}"
            );
        }
        assert!(user_agent_check(Some("Jane Doe jane@example.com")).ok);
    }
}
