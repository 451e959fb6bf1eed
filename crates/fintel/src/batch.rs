//! `fintel batch`: create and run a batch, resume one, list, status, cancel, delete; and the
//! run loop with signals shared by `analyze` and `demo`.

use std::sync::Arc;

use anyhow::{Context, Result};
use fintel_engine::{
    create_batch, input, Analysis, BatchRequest, BatchSettings, Engine, FilingSource, KeyPool,
    RunOutcome, YearsSpec,
};
use fintel_llm::{CallError, Provider};
use fintel_store::{Batch, BatchState, Store};
use fintel_time::local_and_pacific;
use serde_json::json;
use tokio::sync::watch;

use crate::app::App;
use crate::cli::{BatchAction, BatchArgs, StatusArgs};
use crate::exit::{self, config_problem, usage};
use crate::live::{LiveSource, WorkflowAnalysis};
use crate::progress::Display;

pub async fn batch(app: &App, args: BatchArgs) -> Result<u8> {
    if let Some(action) = args.action {
        return match action {
            BatchAction::Status(s) => status(app, s),
            BatchAction::Cancel { id, json } => cancel(app, &id, json),
            BatchAction::Delete {
                id,
                purge_results,
                json,
            } => delete(app, &id, purge_results, json),
        };
    }
    if args.cleanup_chrome {
        eprintln!(
            "note: --cleanup-chrome is not needed: fintel reads filings without a browser and \
             starts no child processes"
        );
    }
    if args.list_incomplete {
        return list_incomplete(app, args.json);
    }
    let resume = args.resume.clone().or(args.resume_id.clone());
    if let Some(id) = resume {
        if args.file.is_some() {
            return Err(usage(
                "give either a companies file (new batch) or --resume (existing batch), not both",
            ));
        }
        return resume_batch(app, &id, args.retry_failed, args.json).await;
    }
    if args.retry_failed {
        return Err(usage(
            "--retry-failed goes with --resume: fintel batch --resume [ID] --retry-failed",
        ));
    }
    let Some(file) = args.file.clone() else {
        return Err(usage(
            "no companies file given. Usage: fintel batch companies.csv --years 7 \
             (or --resume, --list-incomplete, status; see fintel batch --help)",
        ));
    };
    create_and_run(app, &args, &file).await
}

fn years_spec(args: &BatchArgs) -> Result<YearsSpec> {
    match (&args.years, &args.fiscal_years) {
        (Some(n), None) => Ok(YearsSpec::Latest(*n)),
        (None, Some(s)) => Ok(YearsSpec::parse_explicit(s)?),
        _ => Err(usage(
            "say which fiscal years: --years N (the latest N of each company) or \
             --fiscal-years 2018-2024",
        )),
    }
}

async fn create_and_run(app: &App, args: &BatchArgs, file: &std::path::Path) -> Result<u8> {
    let years = years_spec(args)?;
    let registry = app.registry()?;
    let workflow = registry.get(&args.analysis_type)?.clone();
    workflow.check_years(years.count() as usize)?;
    let text = std::fs::read(file)
        .with_context(|| format!("cannot read {}", file.display()))
        .map_err(|e| usage(format!("{e:#}")))?;
    let text = String::from_utf8_lossy(&text);
    let rows = input::parse_companies(&file.display().to_string(), &text)?;
    let analysis = WorkflowAnalysis::new(workflow);
    let edgar = app.edgar()?;
    let provider = app.provider()?;
    let pool = app.pool();
    let display = Display::new(args.json);
    if analysis.needs_model() {
        preflight(app, provider.as_ref(), &pool, None, &display).await?;
    }
    let store = app.open_store()?;
    let source: Arc<dyn FilingSource> = Arc::new(LiveSource { edgar });
    let created = create_batch(
        &store,
        source.as_ref(),
        BatchRequest {
            name: args.name.clone(),
            input_file: Some(file.display().to_string()),
            rows,
            years,
            analysis: analysis.as_ref(),
            model: app.config.model.clone(),
            priority: args.priority,
            settings: BatchSettings {
                max_retries: args.max_retries,
                force: args.force,
                include_amendments: args.include_amendments,
                skip_unknown: args.skip_unknown,
            },
        },
        app.clock.now(),
    )
    .await?;
    for line in &created.merged {
        display.println(line);
    }
    for line in &created.unknown {
        display.println(&format!("skipped (unknown ticker): {line}"));
    }
    display.println(&format!(
        "batch {} created: {} companies, analysis {}; resume any time with: fintel batch --resume {}",
        created.batch_id, created.companies, args.analysis_type, created.batch_id
    ));
    if analysis.needs_model() {
        let (buckets, _) = crate::projects::effective_buckets(app, Some(&store))?;
        display.println(&crate::projects::capacity_line(&buckets));
    }
    run(
        app,
        store,
        &created.batch_id,
        source,
        provider,
        analysis,
        pool,
        display,
        args.json,
    )
    .await
}

/// Checks every key without spending generation quota ([`crate::doctor::check_keys`], as
/// `fintel doctor` does); disables unusable keys. A model the provider does not know, or no
/// usable key at all, is a configuration problem (exit 4).
pub async fn preflight(
    app: &App,
    provider: &dyn Provider,
    pool: &KeyPool,
    store: Option<&Store>,
    display: &Display,
) -> Result<()> {
    if !app.config.has_keys() && app.config.provider == crate::config::ProviderKind::Gemini {
        return Err(crate::config::no_keys_error());
    }
    let model = &app.config.model;
    let checks = crate::doctor::check_keys(provider, &pool.buckets(), model).await;
    let mut usable = 0;
    for check in &checks {
        let label = &check.label;
        match &check.outcome {
            Ok(_) => usable += 1,
            Err(CallError::Configuration { message }) => {
                return Err(config_problem(format!(
                    "model {model:?} cannot be used: {message}. Set FINTEL_MODEL (or [model] \
                     name in fintel.toml) to a model your keys can use."
                )))
            }
            Err(CallError::KeyUnusable { reason, .. })
            | Err(CallError::KeyExhausted { message: reason }) => {
                display.println(&format!("warning: key {label} is unusable: {reason}"));
                if let (Some(store), Some(k)) = (store, &check.key) {
                    store.register_key(&k.fingerprint(), k.label(), &check.bucket)?;
                    store.disable_key(&k.fingerprint(), reason, app.clock.now())?;
                }
            }
            Err(e) => {
                // The check itself failed (network, 5xx): the key may well be fine.
                display.println(&format!("warning: could not check key {label}: {e}"));
                usable += 1;
            }
        }
    }
    if usable == 0 {
        return Err(config_problem(format!(
            "none of the {} configured key(s) is usable (see the warnings above); fix them \
             and `fintel keys enable LABEL` any that were disabled",
            checks.len()
        )));
    }
    Ok(())
}

async fn resume_batch(app: &App, id: &str, retry_failed: bool, json: bool) -> Result<u8> {
    let store = app.open_store()?;
    let batch = if id.is_empty() {
        store.list_incomplete()?.into_iter().next().ok_or_else(|| {
            usage(
                "no incomplete batch to resume; `fintel batch companies.csv --years N` starts one",
            )
        })?
    } else {
        store.find_batch(id)?
    };
    if batch.state == BatchState::Cancelled {
        return Err(usage(format!(
            "batch {} was cancelled; it cannot be resumed",
            batch.id
        )));
    }
    if retry_failed {
        let n = store.requeue_failed(&batch.id, app.clock.now())?;
        eprintln!("{n} failed task(s) back in the queue");
    }
    let workflow = fintel_workflows::Workflow::from_canonical(&batch.workflow)?;
    let analysis = WorkflowAnalysis::new(workflow);
    let provider = app.provider()?;
    let pool = app.pool();
    let display = Display::new(json);
    if analysis.needs_model() {
        preflight(app, provider.as_ref(), &pool, Some(&store), &display).await?;
    }
    let source: Arc<dyn FilingSource> = Arc::new(LiveSource {
        edgar: app.edgar()?,
    });
    display.println(&format!(
        "resuming batch {} ({})",
        batch.id, batch.analysis_type
    ));
    if analysis.needs_model() {
        let (buckets, _) = crate::projects::effective_buckets(app, Some(&store))?;
        display.println(&crate::projects::capacity_line(&buckets));
    }
    run(
        app, store, &batch.id, source, provider, analysis, pool, display, json,
    )
    .await
}

/// Runs a batch in the foreground until it ends; the first SIGINT/SIGTERM drains and stops
/// (exit 0 with the resume command), a second exits at once (130).
#[allow(clippy::too_many_arguments)]
pub async fn run(
    app: &App,
    store: Arc<Store>,
    batch_id: &str,
    source: Arc<dyn FilingSource>,
    provider: Arc<dyn Provider>,
    analysis: Arc<dyn Analysis>,
    pool: Arc<KeyPool>,
    display: Display,
    json: bool,
) -> Result<u8> {
    pool.register(&store)?;
    let owner_id = format!("{}-{:08x}", std::process::id(), rand_u32());
    let ownership = store.register_owner(&owner_id, &app.config.locks_dir(), app.clock.now())?;
    let (tx, rx) = watch::channel(false);
    let grace = app.config.grace;
    let signals = tokio::spawn(async move {
        wait_for_signal().await;
        eprintln!(
            "\nstopping: no new work; letting calls in flight finish (up to {} s). Press Ctrl+C \
             again to exit at once.",
            grace.as_secs()
        );
        let _ = tx.send(true);
        wait_for_signal().await;
        eprintln!("exiting at once; calls in flight will be repeated on resume");
        std::process::exit(exit::SECOND_SIGNAL as i32);
    });
    let display = Arc::new(display);
    let notifier = crate::notifications::notifier(app);
    let observer = Arc::new(crate::notifications::Notifying {
        display: display.clone(),
        notifier: notifier.clone(),
        batch_id: batch_id.to_string(),
    });
    let engine = Arc::new(Engine {
        store: store.clone(),
        clock: app.clock.clone(),
        source,
        provider,
        analysis,
        pool,
        settings: app.engine_settings(),
        observer,
        owner: owner_id.clone(),
        upkeep: app.upkeep(),
    });
    let outcome = engine.run(batch_id, rx).await;
    signals.abort();
    display.finish();
    store.unregister_owner(&owner_id)?;
    drop(ownership);
    let outcome = outcome?;
    let batch = store.find_batch(batch_id)?;
    let counts = store.task_counts(batch_id)?;
    let resume = format!("fintel batch --resume {batch_id}");
    let (code, line) = match &outcome {
        RunOutcome::Completed { failed: 0 } => (exit::OK, format!("batch {batch_id} completed")),
        RunOutcome::Completed { failed } => (
            exit::FAILED_TASKS,
            format!(
                "batch {batch_id} completed with {failed} failed task(s); see `fintel batch \
                 status {batch_id} --failed`, and retry them with `{resume} --retry-failed`"
            ),
        ),
        RunOutcome::Stopped => (exit::OK, format!("stopped. Resume with: {resume}")),
        RunOutcome::Cancelled => (exit::OK, format!("batch {batch_id} was cancelled")),
        RunOutcome::ConfigurationProblem(msg) => (
            exit::CONFIG,
            format!("stopped on a configuration problem: {msg}\nNo task was failed for it; fix it and resume with: {resume}"),
        ),
    };
    let summary = format!(
        "{line}\n{} completed, {} skipped, {} failed of {} tasks; results in {}",
        counts.completed,
        counts.skipped,
        counts.failed,
        counts.total,
        store.path().display()
    );
    tracing::info!(target: crate::logging::RUN_TARGET, "{summary}");
    eprintln!("{summary}");
    if json {
        println!(
            "{}",
            json!({
                "batch_id": batch_id,
                "state": batch.state,
                "counts": counts,
                "exit_code": code,
                "resume_command": resume,
            })
        );
    }
    // After the summary, so a slow webhook never delays what the user reads.
    crate::notifications::send_outcome(
        &notifier,
        batch_id,
        batch.name.as_deref(),
        &outcome,
        &counts,
    )
    .await;
    Ok(code)
}

fn rand_u32() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    t ^ std::process::id().rotate_left(16)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn batch_json(store: &Store, b: &Batch) -> Result<serde_json::Value> {
    let counts = store.task_counts(&b.id)?;
    Ok(json!({
        "id": b.id,
        "name": b.name,
        "state": b.state,
        "state_reason": b.state_reason,
        "analysis_type": b.analysis_type,
        "model": b.model,
        "created_at": b.created_at.to_string(),
        "updated_at": b.updated_at.to_string(),
        "counts": counts,
    }))
}

fn list_incomplete(app: &App, json: bool) -> Result<u8> {
    let Some(store) = app.existing_store()? else {
        if json {
            println!("[]");
        } else {
            eprintln!("no batches yet");
        }
        return Ok(exit::OK);
    };
    let batches = store.list_incomplete()?;
    if json {
        let list: Vec<_> = batches
            .iter()
            .map(|b| batch_json(&store, b))
            .collect::<Result<_>>()?;
        println!("{}", serde_json::Value::Array(list));
        return Ok(exit::OK);
    }
    if batches.is_empty() {
        eprintln!("no incomplete batches");
        return Ok(exit::OK);
    }
    println!(
        "{:<26} {:<16} {:<12} {:>13}  created",
        "id", "state", "analysis", "done/total"
    );
    for b in &batches {
        let c = store.task_counts(&b.id)?;
        println!(
            "{:<26} {:<16} {:<12} {:>13}  {}",
            b.id,
            b.state.as_str(),
            b.analysis_type,
            format!("{}/{}", c.ended(), c.total),
            local_and_pacific(b.created_at)
        );
    }
    println!("\nresume the most recent with: fintel batch --resume");
    Ok(exit::OK)
}

fn status(app: &App, args: StatusArgs) -> Result<u8> {
    let store = app
        .existing_store()?
        .ok_or_else(|| usage("no batches yet: the data directory has no database"))?;
    let batch = match &args.id {
        Some(id) => store.find_batch(id)?,
        None => store
            .list_batches(false)?
            .into_iter()
            .next()
            .ok_or_else(|| usage("no batches yet"))?,
    };
    let counts = store.task_counts(&batch.id)?;
    let reasons = store.reason_groups(&batch.id)?;
    let failed = if args.failed {
        store.ended_tasks(&batch.id, "failed")?
    } else {
        vec![]
    };
    let skipped = if args.skipped {
        store.ended_tasks(&batch.id, "skipped")?
    } else {
        vec![]
    };
    if args.json {
        let mut v = batch_json(&store, &batch)?;
        v["reasons"] = json!(reasons);
        if args.failed {
            v["failed"] = json!(failed);
        }
        if args.skipped {
            v["skipped"] = json!(skipped);
        }
        println!("{v}");
        return Ok(exit::OK);
    }
    println!(
        "batch {}{}",
        batch.id,
        batch
            .name
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default()
    );
    println!(
        "  state      {}{}",
        batch.state.as_str(),
        batch
            .state_reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    );
    println!(
        "  analysis   {} (model {})",
        batch.analysis_type, batch.model
    );
    println!("  created    {}", local_and_pacific(batch.created_at));
    println!(
        "  tasks      {} total: {} completed, {} skipped, {} failed, {} pending, {} running",
        counts.total,
        counts.completed,
        counts.skipped,
        counts.failed,
        counts.pending,
        counts.running
    );
    if counts.resolving > 0 {
        println!(
            "  resolving  {} companies' filings not yet resolved",
            counts.resolving
        );
    }
    if !reasons.is_empty() {
        println!("  reasons:");
        for r in &reasons {
            println!("    {:>5} {:<8} {}", r.count, r.state, r.reason);
        }
    }
    for t in failed.iter().chain(skipped.iter()) {
        println!(
            "  {:<8} {:<10} {:<6} {} attempts  {}",
            t.state,
            t.ticker
                .clone()
                .or(t.cik.map(|c| format!("CIK{c}")))
                .unwrap_or_default(),
            t.fiscal_year
                .map(|y| format!("FY{y}"))
                .unwrap_or_else(|| t.kind.clone()),
            t.attempts,
            t.reason.as_deref().unwrap_or("")
        );
    }
    if batch.state.is_incomplete() {
        println!("\nresume with: fintel batch --resume {}", batch.id);
    }
    Ok(exit::OK)
}

fn cancel(app: &App, id: &str, json: bool) -> Result<u8> {
    let store = app
        .existing_store()?
        .ok_or_else(|| usage("no batches yet: the data directory has no database"))?;
    let batch = store.find_batch(id)?;
    if batch.state == BatchState::Completed {
        return Err(usage(format!("batch {} is already completed", batch.id)));
    }
    store.set_batch_state(
        &batch.id,
        BatchState::Cancelled,
        Some("cancelled by the user"),
        app.clock.now(),
    )?;
    // A process running it drains as on a signal.
    store.request_stop(&batch.id, true)?;
    if json {
        println!("{}", json!({"batch_id": batch.id, "state": "cancelled"}));
    } else {
        eprintln!("batch {} cancelled; its stored results are kept", batch.id);
    }
    Ok(exit::OK)
}

fn delete(app: &App, id: &str, purge: bool, json: bool) -> Result<u8> {
    let store = app
        .existing_store()?
        .ok_or_else(|| usage("no batches yet: the data directory has no database"))?;
    let batch = store.find_batch(id)?;
    if !store.live_owners_of(&batch.id)?.is_empty() {
        return Err(usage(format!(
            "batch {} is running in another process; stop it first (Ctrl+C there, or \
             `fintel batch cancel {}`)",
            batch.id, batch.id
        )));
    }
    let purged = store.delete_batch(&batch.id, purge)?;
    if json {
        println!(
            "{}",
            json!({"batch_id": batch.id, "deleted": true, "results_purged": purged})
        );
    } else if purge {
        eprintln!(
            "batch {} deleted with {purged} result(s) no other batch uses",
            batch.id
        );
    } else {
        eprintln!(
            "batch {} deleted; its results are kept (shared by key with any batch)",
            batch.id
        );
    }
    Ok(exit::OK)
}
