//! `fintel batch`: create and run a batch, resume one, list, status, cancel, delete; and the
//! run loop with signals shared by `analyze` and `demo`.

use std::sync::Arc;

use anyhow::{Context, Result};
use fintel_engine::{
    create_batch, input, Analysis, BatchRequest, BatchSettings, Engine, FilingSource, KeyPool,
    RunOutcome,
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
        if let Some(pack) = args.pack {
            return Err(usage(format!(
                "--pack {pack} goes with a new batch: a resumed batch keeps the pack mode it was \
                 created with (`fintel batch status ID` shows it)"
            )));
        }
        return resume_batch(app, &id, &args).await;
    }
    if args.join || args.reopen {
        return Err(usage(
            "--join and --reopen go with --resume: fintel batch --resume ID --join (help a \
             running batch) or --resume ID --reopen (take up a cancelled batch)",
        ));
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

async fn create_and_run(app: &App, args: &BatchArgs, file: &std::path::Path) -> Result<u8> {
    app.require_writable()?;
    let this_year = i32::from(fintel_time::pacific_date(app.clock.now()).year());
    let years =
        crate::planning::years_spec(args.years, args.fiscal_years.as_deref(), None, this_year)?;
    if let Some(warning) = crate::planning::many_years(&years, args.yes, this_year)? {
        eprintln!("{warning}");
    }
    let registry = app.registry()?;
    let workflow = registry.get(&args.analysis_type)?.clone();
    workflow.check_years(years.count() as usize)?;
    let text = std::fs::read(file)
        .with_context(|| format!("cannot read {}", file.display()))
        .map_err(|e| usage(format!("{e:#}")))?;
    let text = String::from_utf8_lossy(&text);
    let rows = input::parse_companies(&file.display().to_string(), &text)?;
    let analysis = WorkflowAnalysis::new(workflow.clone());
    let provider = app.provider()?;
    let pool = app.pool();
    let display = Display::new(args.json);
    // The model before the plan: with none configured it is chosen from the provider's list,
    // and the plan counts the results already stored for it.
    let model = if analysis.needs_model() {
        preflight(app, provider.as_ref(), &pool, None, &display).await?
    } else {
        app.model().unwrap_or("none").to_string()
    };
    // The plan next: unknown tickers get their "did you mean", and on a terminal the user
    // sees what the batch will cost before anything is created.
    let pack = args.pack.unwrap_or(app.config.pack);
    let plan =
        crate::planning::make_plan(app, &rows, &years, &workflow, pack, args.priority).await?;
    if !plan.unknown.is_empty() && !args.skip_unknown {
        return Err(crate::planning::unknown_error(&plan.unknown));
    }
    if !crate::planning::confirm(&plan, args.yes, args.json)? {
        eprintln!("not started; nothing was created");
        return Ok(exit::OK);
    }
    let edgar = app.edgar()?;
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
            model,
            priority: args.priority,
            settings: BatchSettings {
                max_retries: args.max_retries,
                force: args.force,
                include_amendments: args.include_amendments,
                skip_unknown: args.skip_unknown,
                pack,
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
    // The assumption the plan rests on, also when no confirmation showed the plan.
    if let (true, Some(assumption)) = (analysis.needs_model(), &plan.assumption) {
        display.println(assumption);
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

/// What a pre-flight checks a model for, which decides what a model that is not served means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelUse<'a> {
    /// A new batch or `fintel analyze`: the configured model, or one chosen.
    New,
    /// A resumed batch's own model.
    Resume { batch_id: &'a str },
    /// The model a resumed batch switches to.
    SwitchTo { batch_id: &'a str },
}

/// Resolves the model of a new batch (the configured one, or one chosen from the provider's
/// list, said on `display`) and checks it with every key ([`preflight_model`]). Returns it;
/// it is also [`App::model`] from then on.
pub async fn preflight(
    app: &App,
    provider: &dyn Provider,
    pool: &KeyPool,
    store: Option<&Store>,
    display: &Display,
) -> Result<String> {
    if !app.config.has_keys() && app.config.provider == crate::config::ProviderKind::Gemini {
        return Err(crate::config::no_keys_error());
    }
    let served = crate::models::list_served(provider, &pool.buckets()).await;
    let model = match app.model() {
        Some(model) => model.to_string(),
        None => {
            let choice =
                crate::models::choose(app.config.provider, &served).map_err(config_problem)?;
            display.println(&crate::models::chosen_line(&choice));
            let _ = app.chosen_model.set(choice.model.clone());
            choice.model
        }
    };
    preflight_model(
        app,
        provider,
        pool,
        store,
        display,
        &model,
        ModelUse::New,
        served.as_deref().ok(),
    )
    .await?;
    Ok(model)
}

/// Checks every key against `model` without spending generation quota
/// ([`crate::doctor::check_keys`], as `fintel doctor` does); disables unusable keys. A model
/// the provider does not serve (named with the served ones, `served` being the provider's
/// list where it could be read), or no usable key at all, is a configuration problem (exit 4).
#[allow(clippy::too_many_arguments)]
pub async fn preflight_model(
    app: &App,
    provider: &dyn Provider,
    pool: &KeyPool,
    store: Option<&Store>,
    display: &Display,
    model: &str,
    purpose: ModelUse<'_>,
    served: Option<&[fintel_llm::ServedModel]>,
) -> Result<()> {
    if !app.config.has_keys() && app.config.provider == crate::config::ProviderKind::Gemini {
        return Err(crate::config::no_keys_error());
    }
    let checks = crate::doctor::check_keys(provider, &pool.buckets(), model).await;
    if let Some(thinks) = served
        .and_then(|s| fintel_llm::find_served(s, model))
        .and_then(|m| m.thinking)
    {
        let _ = app.model_thinks.set(thinks);
    }
    let candidates = || crate::models::candidates(app.config.provider, served);
    let mut usable = 0;
    for check in &checks {
        let label = &check.label;
        match &check.outcome {
            Ok(info) => {
                usable += 1;
                if let Some(limit) = info.output_token_limit {
                    let _ = app.model_output_limit.set(limit);
                }
                if let Some(limit) = info.input_token_limit {
                    let _ = app.model_input_limit.set(limit);
                }
            }
            Err(CallError::ModelUnavailable { message }) => {
                return Err(config_problem(match purpose {
                    ModelUse::New => crate::models::not_served(model, message, &candidates()),
                    ModelUse::Resume { batch_id } => {
                        crate::models::retired(batch_id, model, message, &candidates())
                    }
                    ModelUse::SwitchTo { batch_id } => format!(
                        "--switch-model {model}: {}; batch {batch_id} was not changed",
                        crate::models::not_served(model, message, &candidates())
                    ),
                }));
            }
            Err(CallError::Configuration { message }) if purpose != ModelUse::New => {
                // A batch's own model: the configuration cannot change it.
                return Err(config_problem(format!(
                    "model {model:?} cannot be used for this batch: {message}. A batch keeps \
                     its model; start a new batch with a model your keys can use (fintel batch \
                     FILE --years N --model NAME), or switch this one (fintel batch --resume ID \
                     --switch-model NAME). Served models: {}",
                    candidates()
                )));
            }
            Err(CallError::Configuration { message }) => {
                return Err(config_problem(format!(
                    "model {model:?} cannot be used: {message}. Set FINTEL_MODEL (or [model] \
                     name in fintel.toml) to a model your keys can use. Served models: {}",
                    candidates()
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
    learn_server_limits(app, provider, &checks, model, display).await;
    Ok(())
}

/// Asks the server about its context and slots (spending no generation quota) and says
/// what the run takes from it, so a local server's small context and few slots are known
/// before the first request.
async fn learn_server_limits(
    app: &App,
    provider: &dyn Provider,
    checks: &[crate::doctor::KeyCheck],
    model: &str,
    display: &Display,
) {
    let key = checks
        .iter()
        .find(|c| c.outcome.is_ok())
        .and_then(|c| c.key.clone());
    let limits = provider.server_limits(key.as_ref(), model).await;
    if app.server_limits.set(limits).is_err() {
        return;
    }
    if limits.kind.is_local() || limits.context_tokens.is_some() {
        let settings = app.engine_settings(model);
        let said = match (limits.context_tokens, limits.slots) {
            (Some(c), Some(s)) => format!("a context of {c} tokens and {s} slot(s)"),
            (Some(c), None) => format!("a context of {c} tokens"),
            (None, Some(s)) => format!("{s} slot(s)"),
            (None, None) => "nothing of its context".to_string(),
        };
        display.println(&format!(
            "{} says {said}: fitting requests to {} tokens, {} at a time",
            limits.kind.label(),
            settings.context_tokens,
            settings.concurrency
        ));
    }
}

async fn resume_batch(app: &App, id: &str, args: &BatchArgs) -> Result<u8> {
    app.require_writable()?;
    let store = app.open_store()?;
    if args.reopen && id.is_empty() {
        return Err(usage(
            "--reopen takes up one cancelled batch: name it, as in fintel batch --resume ID \
             --reopen (`fintel batch status ID` shows it)",
        ));
    }
    // A bare --resume takes the most recent incomplete batch, never a cancelled one.
    let batch = if id.is_empty() {
        store.list_incomplete()?.into_iter().next().ok_or_else(|| {
            usage(
                "no incomplete batch to resume; `fintel batch companies.csv --years N` starts one",
            )
        })?
    } else {
        store.find_batch(id)?
    };
    if batch.state == BatchState::Cancelled && !args.reopen {
        return Err(usage(format!(
            "batch {id} was cancelled; to take it up again anyway: fintel batch --resume {id} \
             --reopen",
            id = batch.id
        )));
    }
    if let Some(asked) = args.model.as_deref() {
        if asked != batch.model && args.switch_model.as_deref() != Some(asked) {
            return Err(usage(format!(
                "batch {id} analyses with model {have}; a resume keeps it (its results are keyed \
                 by it). Resume without --model, switch the batch to {asked} for the tasks still \
                 to run (fintel batch --resume {id} --switch-model {asked}; results so far keep \
                 {have}), or start a new batch for {asked}: fintel batch FILE --years N --model \
                 {asked} (stored results are reused where they match)",
                id = batch.id,
                have = batch.model
            )));
        }
    }
    if let Some(to) = args.switch_model.as_deref() {
        check_switch(&store, &batch, id, to, args.join)?;
    }
    // Checked again, race-free, once this process is registered (see `run_with`); this early
    // check only spares the user a pre-flight before the refusal.
    refuse_if_running(&store, &batch.id, None, args.join)?;
    if args.reopen && store.reopen_batch(&batch.id, app.clock.now())? {
        eprintln!("batch {} reopened after its cancel", batch.id);
    }
    if args.retry_failed {
        let n = store.requeue_failed(&batch.id, app.clock.now())?;
        eprintln!("{n} failed task(s) back in the queue");
    }
    let workflow = fintel_workflows::Workflow::from_canonical(&batch.workflow)?;
    let analysis = WorkflowAnalysis::new(workflow);
    let provider = app.provider()?;
    let pool = app.pool();
    let display = Display::new(args.json);
    let mut batch = batch;
    if analysis.needs_model() {
        let served = crate::models::list_served(provider.as_ref(), &pool.buckets()).await;
        let served = served.as_deref().ok();
        match args.switch_model.as_deref() {
            Some(to) => {
                let to = to.trim();
                let purpose = ModelUse::SwitchTo {
                    batch_id: &batch.id,
                };
                preflight_model(
                    app,
                    provider.as_ref(),
                    &pool,
                    Some(&store),
                    &display,
                    to,
                    purpose,
                    served,
                )
                .await?;
                let from = batch.model.clone();
                match store.switch_batch_model(&batch.id, &from, to, app.clock.now())? {
                    Ok(()) => display.println(&format!(
                        "batch {}: model switched from {from} to {to} for the tasks still to \
                         run; the results stored so far keep {from}",
                        batch.id
                    )),
                    Err(refused) => return Err(usage(switch_refused(&batch.id, to, &refused))),
                }
                batch = store.find_batch(&batch.id)?;
            }
            None => {
                let purpose = ModelUse::Resume {
                    batch_id: &batch.id,
                };
                preflight_model(
                    app,
                    provider.as_ref(),
                    &pool,
                    Some(&store),
                    &display,
                    &batch.model,
                    purpose,
                    served,
                )
                .await?;
            }
        }
    } else if args.switch_model.is_some() {
        return Err(usage(format!(
            "batch {} runs analysis {}, which needs no model: there is nothing to switch",
            batch.id, batch.analysis_type
        )));
    }
    let source: Arc<dyn FilingSource> = Arc::new(LiveSource {
        edgar: app.edgar()?,
    });
    display.println(&format!(
        "{} batch {} ({}, model {})",
        if args.join { "joining" } else { "resuming" },
        batch.id,
        batch.analysis_type,
        batch.model
    ));
    if analysis.needs_model() {
        let (buckets, _) = crate::projects::effective_buckets(app, Some(&store))?;
        display.println(&crate::projects::capacity_line_for(
            app.config.provider,
            &buckets,
        ));
    }
    run_with(
        app, store, &batch.id, source, provider, analysis, pool, display, args.json, args.join,
    )
    .await
}

/// Refuses a `--switch-model` that cannot apply, before anything is checked or written: a
/// batch needs naming, must be stopped (no live process; not completed or cancelled), and must
/// be switched to another model than its own (exit 2).
fn check_switch(store: &Store, batch: &Batch, id: &str, to: &str, join: bool) -> Result<()> {
    let to = to.trim();
    if id.is_empty() {
        return Err(usage(format!(
            "--switch-model changes one batch: name it, as in fintel batch --resume ID \
             --switch-model {to} (`fintel batch --list-incomplete` lists them)"
        )));
    }
    if to.is_empty() || to.chars().any(char::is_whitespace) {
        return Err(usage(format!(
            "--switch-model {to:?} is not a model name; `fintel doctor` lists the served models"
        )));
    }
    if join {
        return Err(usage(
            "--switch-model and --join do not go together: a batch's model is switched while \
             no process runs it",
        ));
    }
    if to == batch.model {
        return Err(usage(format!(
            "batch {} already analyses with {to}: nothing to switch; resume it with fintel \
             batch --resume {}",
            batch.id, batch.id
        )));
    }
    if let Some(refused) = match batch.state {
        BatchState::Completed | BatchState::Cancelled => {
            Some(fintel_store::SwitchRefused::Ended(batch.state))
        }
        _ => None,
    } {
        return Err(usage(switch_refused(&batch.id, to, &refused)));
    }
    let live = store.live_processes(&batch.id)?;
    if let Some(p) = live.first() {
        return Err(usage(format!(
            "batch {} is running (process {} on {}): its model can be switched only while it \
             is stopped. Stop it first (Ctrl+C in its terminal, or the dashboard's stop), then \
             fintel batch --resume {} --switch-model {to}",
            batch.id,
            p.pid,
            p.host.as_deref().unwrap_or("this machine"),
            batch.id
        )));
    }
    Ok(())
}

/// Why the store refused a switch, for the user.
fn switch_refused(batch_id: &str, to: &str, refused: &fintel_store::SwitchRefused) -> String {
    match refused {
        fintel_store::SwitchRefused::SameModel => {
            format!("batch {batch_id} already analyses with {to}: nothing to switch")
        }
        fintel_store::SwitchRefused::Ended(state) => format!(
            "batch {batch_id} is {}: there are no tasks left for {to}; start a new batch with \
             it instead (fintel batch FILE --years N --model {to})",
            state.as_str()
        ),
        fintel_store::SwitchRefused::ModelChanged { now } => format!(
            "batch {batch_id}'s model changed to {now} meanwhile; nothing was switched \
             (`fintel batch status {batch_id}` shows it)"
        ),
    }
}

/// Refuses to run a batch that a live process other than `me` works on, unless `join`:
/// exit 2, naming the process and saying what to do.
fn refuse_if_running(store: &Store, batch_id: &str, me: Option<&str>, join: bool) -> Result<()> {
    if join {
        return Ok(());
    }
    let others: Vec<_> = store
        .live_processes(batch_id)?
        .into_iter()
        .filter(|p| Some(p.owner.as_str()) != me)
        .collect();
    let Some(first) = others.first() else {
        return Ok(());
    };
    let more = match others.len() {
        1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    Err(usage(format!(
        "batch {batch_id} is already running in process {pid} on {host} since {since}{more}; \
         stop it first, or add --join to help it",
        pid = first.pid,
        host = first.host.as_deref().unwrap_or("this machine"),
        since = local_and_pacific(first.since),
    )))
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
    run_with(
        app, store, batch_id, source, provider, analysis, pool, display, json, false,
    )
    .await
}

/// [`run`], joining a batch that other live processes already work on when `join`.
#[allow(clippy::too_many_arguments)]
pub async fn run_with(
    app: &App,
    store: Arc<Store>,
    batch_id: &str,
    source: Arc<dyn FilingSource>,
    provider: Arc<dyn Provider>,
    analysis: Arc<dyn Analysis>,
    pool: Arc<KeyPool>,
    display: Display,
    json: bool,
    join: bool,
) -> Result<u8> {
    pool.register(&store)?;
    let owner_id = format!("{}-{:08x}", std::process::id(), rand_u32());
    let ownership = store.register_owner(&owner_id, &app.config.locks_dir(), app.clock.now())?;
    // Attached first, then checked: of two processes resuming at once, at least one sees the
    // other, so two never run a batch by accident (at worst both refuse).
    store.attach_owner(&owner_id, batch_id)?;
    if let Err(refusal) = refuse_if_running(&store, batch_id, Some(&owner_id), join) {
        store.unregister_owner(&owner_id)?;
        drop(ownership);
        return Err(refusal);
    }
    // The batch owns its model: a resume analyses with the model it was created with (or
    // switched to).
    let settings = app.engine_settings(&store.find_batch(batch_id)?.model);
    let retired_lookup = (provider.clone(), pool.clone());
    let (tx, rx) = watch::channel(false);
    let grace = app.config.grace;
    let signals = tokio::spawn(async move {
        wait_for_signal().await;
        crate::pipes::err(&format!(
            "\nstopping: no new work; letting calls in flight finish (up to {} s). Press Ctrl+C \
             again to exit at once.\n",
            grace.as_secs()
        ));
        let _ = tx.send(true);
        wait_for_signal().await;
        crate::pipes::err("exiting at once; calls in flight will be repeated on resume\n");
        std::process::exit(exit::SECOND_SIGNAL as i32);
    });
    display.set_estimator(crate::outlook::estimator(
        app,
        store.clone(),
        &store.find_batch(batch_id)?,
    ));
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
        settings,
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
        // The batch is stopped, resumable; the run itself did not end as asked.
        RunOutcome::StoppedOnError(reason) => (
            exit::RUNTIME,
            format!("stopped on a {reason}\nNo task was failed for it; resume with: {resume}"),
        ),
        RunOutcome::ConfigurationProblem(msg) => (
            exit::CONFIG,
            format!("stopped on a configuration problem: {msg}\nNo task was failed for it; fix it and resume with: {resume}"),
        ),
        RunOutcome::ModelRetired(msg) => {
            let (provider, pool) = &retired_lookup;
            let served = crate::models::list_served(provider.as_ref(), &pool.buckets()).await;
            let candidates =
                crate::models::candidates(app.config.provider, served.as_deref().ok());
            (
                exit::CONFIG,
                format!(
                    "stopped: {}",
                    crate::models::retired(batch_id, &batch.model, msg, &candidates)
                ),
            )
        }
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
    // A batch's output must never turn a finished run into a panic: a closed pipe is quiet.
    crate::pipes::err(&format!("{summary}\n"));
    if json {
        let doc = json!({
            "batch_id": batch_id,
            "state": batch.state,
            "counts": counts,
            "exit_code": code,
            "resume_command": resume,
        });
        crate::pipes::out(&format!("{doc}\n"))?;
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
    let processes = store.live_processes(&b.id)?;
    let resume_command = (b.state.is_incomplete() && processes.is_empty())
        .then(|| format!("fintel batch --resume {}", b.id));
    Ok(json!({
        "processes": processes.iter().map(|p| json!({
            "pid": p.pid,
            "host": p.host,
            "since": p.since.to_string(),
            "heartbeat_at": p.heartbeat_at.to_string(),
        })).collect::<Vec<_>>(),
        "resume_command": resume_command,
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
        "{:<26} {:<16} {:<12} {:>13} {:>9}  created / running in",
        "id", "state", "analysis", "done/total", "resolving"
    );
    let mut any_idle = false;
    for b in &batches {
        // The total is the plan (companies x years); companies whose filings are not yet
        // resolved are counted in it and shown on their own.
        let c = store.task_counts(&b.id)?;
        let live = store.live_processes(&b.id)?;
        any_idle |= live.is_empty();
        println!(
            "{:<26} {:<16} {:<12} {:>13} {:>9}  {}",
            b.id,
            b.state.as_str(),
            b.analysis_type,
            format!("{}/{}", c.ended(), c.total),
            c.resolving,
            if live.is_empty() {
                local_and_pacific(b.created_at)
            } else {
                processes_line(&live)
            }
        );
        // Why a batch stopped (a configuration problem, a database error) is what to fix
        // before resuming it.
        if let (BatchState::Stopped, Some(reason), true) =
            (b.state, b.state_reason.as_deref(), live.is_empty())
        {
            println!(
                "  stopped: {reason}; resume with: fintel batch --resume {}",
                b.id
            );
        }
    }
    if any_idle {
        println!("\nresume the most recent with: fintel batch --resume");
    }
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
    let now = app.clock.now();
    let (eta, ahead) = if batch.state.is_incomplete() {
        crate::outlook::batch_eta(app, &store, &batch, now)?
    } else {
        (None, Default::default())
    };
    let result_models = store.batch_result_models(&batch.id)?;
    let switches = store.model_switches(&batch.id)?;
    if args.json {
        let mut v = batch_json(&store, &batch)?;
        v["estimated_finish"] = json!(eta.map(|e| e.finish.to_string()));
        v["batches_ahead"] = json!(ahead.batches);
        v["requests_ahead"] = json!(ahead.requests);
        v["reasons"] = json!(reasons);
        v["result_models"] = json!(result_models);
        v["model_switches"] = json!(switches);
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
    for s in &switches {
        println!(
            "  switched   {}: model {} -> {}",
            local_and_pacific(s.at),
            s.from_model,
            s.to_model
        );
    }
    if let Some(note) = crate::models::mixed_models_note(&result_models) {
        println!("  models     {note} (each result keeps its own model)");
    }
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
    if batch.state.is_incomplete() {
        println!(
            "  finish     {}",
            match &eta {
                Some(e) => crate::outlook::with_ahead(
                    crate::outlook::describe(e, Some(batch.created_at), now),
                    &ahead
                ),
                None => "unknown: no configured key can send its requests".to_string(),
            }
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
    let live = store.live_processes(&batch.id)?;
    for p in &live {
        println!(
            "  process    {} on {} since {} (last seen {})",
            p.pid,
            p.host.as_deref().unwrap_or("this machine"),
            local_and_pacific(p.since),
            local_and_pacific(p.heartbeat_at)
        );
    }
    if !live.is_empty() {
        println!(
            "\nrunning; to add a process: fintel batch --resume {} --join",
            batch.id
        );
    } else if batch.state.is_incomplete() {
        println!("\nresume with: fintel batch --resume {}", batch.id);
    }
    Ok(exit::OK)
}

/// "running in process 1234 on host since ..." for the live processes of a batch.
fn processes_line(live: &[fintel_store::LiveProcess]) -> String {
    let names: Vec<String> = live
        .iter()
        .map(|p| {
            format!(
                "{} on {}",
                p.pid,
                p.host.as_deref().unwrap_or("this machine")
            )
        })
        .collect();
    format!(
        "running in process {} since {}",
        names.join(", "),
        live.first()
            .map(|p| local_and_pacific(p.since))
            .unwrap_or_default()
    )
}

fn cancel(app: &App, id: &str, json: bool) -> Result<u8> {
    let store = app
        .existing_store()?
        .ok_or_else(|| usage("no batches yet: the data directory has no database"))?;
    let batch = store.find_batch(id)?;
    if batch.state == BatchState::Completed {
        return Err(usage(format!("batch {} is already completed", batch.id)));
    }
    // One statement sets the state and the stop request: a process running it drains as on a
    // signal, and none of its state writes goes over the cancel.
    if let fintel_store::StateWrite::Kept(BatchState::Completed) =
        store.cancel_batch(&batch.id, "cancelled by the user", app.clock.now())?
    {
        return Err(usage(format!("batch {} is already completed", batch.id)));
    }
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
    // Any live process attached counts, also one holding no task while it waits for the
    // reset: deleting under it would leave it working on nothing.
    let live = store.live_processes(&batch.id)?;
    if let Some(p) = live.first() {
        return Err(usage(format!(
            "batch {} is running in process {} on {} since {}; stop it first (Ctrl+C there, \
             or `fintel batch cancel {}`, which it obeys within a minute), then delete",
            batch.id,
            p.pid,
            p.host.as_deref().unwrap_or("this machine"),
            local_and_pacific(p.since),
            batch.id
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
