//! The smaller commands: config, keys, filings, text, workflows, analyze, sim serve, demo.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use fintel_edgar::{filings_report, FilingsQuery, FormFamily, YearRequest};
use fintel_engine::{create_batch, input, BatchRequest, BatchSettings, FilingSource, YearsSpec};
use fintel_filing::{text_report, FormKind, TextOptions};
use fintel_store::{bucket_state, BucketLimits, BucketState};
use fintel_time::{local_and_pacific, next_reset, pacific_date, FakeClock, SharedClock};
use fintel_workflows::Registry;
use serde_json::json;

use crate::app::App;
use crate::batch::{preflight, run};
use crate::cli::*;
use crate::config::{Config, ProviderKind};
use crate::exit::{self, usage};
use crate::live::{LiveSource, WorkflowAnalysis};
use crate::progress::Display;

pub fn config(app: &App, args: JsonFlag) -> Result<u8> {
    let v = app.config.to_json();
    if args.json {
        println!("{v}");
    } else {
        println!("{}", serde_json::to_string_pretty(&v)?);
    }
    Ok(exit::OK)
}

pub fn keys(app: &App, args: KeysArgs) -> Result<u8> {
    if let Some(KeysAction::Enable { label }) = args.action {
        let store = app.open_store()?;
        let n = store.enable_key(&label)?;
        if n == 0 {
            let known: Vec<String> = store.keys()?.into_iter().map(|k| k.label).collect();
            return Err(usage(format!(
                "no key labelled {label:?}; known keys: {}",
                if known.is_empty() {
                    "none yet".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
        eprintln!("{n} key(s) re-enabled");
        return Ok(exit::OK);
    }
    let now = app.clock.now();
    let store = app.existing_store()?;
    let date = pacific_date(now).to_string();
    let reset = next_reset(now, app.config.reset_buffer);
    let disabled: Vec<(String, String)> = match &store {
        Some(s) => s
            .keys()?
            .into_iter()
            .filter_map(|k| k.disabled_reason.map(|r| (k.fingerprint, r)))
            .collect(),
        None => vec![],
    };
    let (buckets, _merges) = crate::projects::effective_buckets(app, store.as_deref())?;
    let projects = crate::projects::bucket_projects(&buckets, store.as_deref())?;
    let refusals = crate::projects::refusals_today(&buckets, store.as_deref(), now)?;
    let waiting_tokens = match &store {
        Some(s) => s.waiting_request_tokens(now)?,
        None => Vec::new(),
    };
    let mut rows = Vec::new();
    for b in &buckets {
        let usage_now = match &store {
            Some(s) => s.bucket_usage(&b.name, &b.fingerprints(), now, &date)?,
            None => Default::default(),
        };
        let keys: Vec<_> = b
            .keys
            .iter()
            .map(|k| {
                let why = disabled
                    .iter()
                    .find(|(f, _)| *f == k.fingerprint())
                    .map(|(_, r)| r.clone());
                json!({"label": k.label(), "disabled": why})
            })
            .collect();
        let elsewhere = refusals.spent_elsewhere.get(&b.name).copied();
        let all_disabled = !b.keys.is_empty() && keys.iter().all(|k| !k["disabled"].is_null());
        let state = match bucket_state(
            &usage_now,
            Some(b.limits),
            all_disabled,
            &waiting_tokens,
            elsewhere,
        ) {
            BucketState::Disabled => "disabled".to_string(),
            BucketState::SpentElsewhere { answered, limit } => {
                format!("spent elsewhere (refused after {answered} of {limit} until reset)")
            }
            BucketState::ExhaustedByProvider { .. } | BucketState::Exhausted => {
                "exhausted until reset".to_string()
            }
            BucketState::Verifying { uncertain } => format!(
                "verifying: {uncertain} uncertain request(s) today; asking the provider one at a time"
            ),
            BucketState::NotResetYet { next_try } => format!(
                "waiting_reset: provider has not reset yet; next try at {}",
                local_and_pacific(next_try)
            ),
            BucketState::BackingOff { until } => {
                format!("backing off until {}", local_and_pacific(until))
            }
            BucketState::CapTooSmall {
                waiting,
                largest,
                cap,
            } => format!(
                "cap too small: {waiting} waiting request(s) of up to {largest} tokens are over \
                 this bucket's {cap} tokens per minute and wait for a key that fits them; \
                 smaller requests still go here"
            ),
            BucketState::Unconfigured | BucketState::Available => "available".to_string(),
        };
        rows.push(json!({
            "bucket": b.name,
            "project": projects.get(&b.name),
            "spent_elsewhere": elsewhere.is_some(),
            "keys": keys,
            "used_today": usage_now.used_today,
            "answered_today": usage_now.answered_today,
            "uncertain_today": usage_now.uncertain_today,
            "requests_per_day": b.limits.requests_per_day,
            "requests_per_minute": b.limits.requests_per_minute,
            "input_tokens_per_minute": b.limits.input_tokens_per_minute,
            "state": state,
        }));
    }
    let doc = json!({
        "quota_date": date,
        "next_reset": reset.to_string(),
        "next_reset_local_and_pacific": local_and_pacific(reset),
        "requests_per_day": crate::projects::daily_capacity(&buckets),
        "buckets": rows,
        "suggested_grouping": refusals.grouping.as_ref().map(|g| g.toml()),
    });
    if args.json {
        println!("{doc}");
        return Ok(exit::OK);
    }
    if rows.is_empty() {
        eprintln!("{}", crate::config::no_keys_error());
        return Ok(exit::OK);
    }
    println!(
        "quota day {date} (Pacific); next reset {}",
        local_and_pacific(reset)
    );
    for r in &rows {
        let labels: Vec<String> = r["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|k| match k["disabled"].as_str() {
                Some(why) => format!("{} [disabled: {why}]", k["label"].as_str().unwrap_or("")),
                None => k["label"].as_str().unwrap_or("").to_string(),
            })
            .collect();
        println!(
            "{:<20} {:>3}/{:<3} today  {}  {}{}",
            r["bucket"].as_str().unwrap_or(""),
            r["used_today"],
            r["requests_per_day"],
            r["state"].as_str().unwrap_or(""),
            labels.join(", "),
            match r["project"].as_str() {
                Some(p) => format!("  (project {p})"),
                None => String::new(),
            }
        );
    }
    println!("{}", crate::projects::capacity_line(&buckets));
    if let Some(grouping) = &refusals.grouping {
        println!(
            "today's per-day refusals of {} add up to one limit ({} answered of {}): they \
             look like one Google Cloud project. If they are, add this to fintel.toml:\n{}",
            fintel_engine::projects::and_list(&grouping.key_names),
            grouping.answered,
            grouping.requests_per_day,
            grouping.toml()
        );
    }
    Ok(exit::OK)
}

pub async fn filings(app: &App, args: FilingsArgs) -> Result<u8> {
    let edgar = app.edgar()?;
    let forms = match &args.form {
        Some(f) => vec![f
            .parse::<FormFamily>()
            .map_err(|_| usage(format!("--form {f:?}: use 10-K, 20-F or 40-F")))?],
        None => vec![],
    };
    let today = pacific_date(app.clock.now());
    let years = crate::planning::years_spec(
        args.years,
        args.fiscal_years.as_deref(),
        Some(DEFAULT_YEARS),
        i32::from(today.year()),
    )?;
    if let Some(warning) = crate::planning::many_years(&years, true, i32::from(today.year()))? {
        eprintln!("{warning}");
    }
    let query = FilingsQuery {
        company: args.company.clone(),
        request: match years {
            YearsSpec::Latest(n) => YearRequest::Latest {
                years: n,
                as_of: today,
            },
            YearsSpec::Explicit(list) => YearRequest::Explicit(list),
        },
        forms,
        include_amendments: args.include_amendments,
    };
    let report = filings_report(&edgar, &query).await.map_err(|e| match e {
        fintel_edgar::EdgarError::UnknownTicker { .. }
        | fintel_edgar::EdgarError::InvalidInput { .. } => usage(e.to_string()),
        e => anyhow::Error::new(e),
    })?;
    if args.json {
        crate::pipes::out(&format!("{}\n", serde_json::to_string(&report)?))?;
    } else {
        crate::pipes::out(&report.to_text())?;
    }
    Ok(exit::OK)
}

pub fn text(args: TextArgs) -> Result<u8> {
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))
        .map_err(|e| usage(format!("{e:#}")))?;
    if let Some(why) = not_a_filing(&bytes) {
        return Err(usage(format!(
            "{} is not an HTML or text filing: {why}",
            args.file.display()
        )));
    }
    let form = match &args.form {
        Some(f) => Some(FormKind::parse(f).map_err(|e| usage(e.to_string()))?),
        None => None,
    };
    let report = text_report(
        &bytes,
        &TextOptions {
            form,
            section: args.section.clone(),
            budget_tokens: args.budget,
            facts: args.facts,
            estimator: Default::default(),
        },
    )
    .map_err(|e| usage(e.to_string()))?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(exit::OK);
    }
    println!("{}", report.text);
    eprintln!(
        "\n-- {} {} tokens (document {}){}",
        report.form.as_str(),
        report.tokens,
        report.document_tokens,
        match report.was_cut {
            Some(true) => format!(", cut to fit: {} part(s) left out", report.cut.len()),
            _ => String::new(),
        }
    );
    let found: Vec<&str> = report
        .sections
        .iter()
        .filter(|s| s.is_found())
        .map(|s| s.id.as_str())
        .collect();
    eprintln!("-- items found: {}", found.join(", "));
    if let Some(k) = &report.key_financials {
        eprintln!("-- key financials: {}", serde_json::to_string_pretty(k)?);
    }
    Ok(exit::OK)
}

pub fn workflows(app: &App, args: WorkflowsArgs) -> Result<u8> {
    if let Some(WorkflowsAction::Show { name }) = args.action {
        // Quietly: the file this output is being redirected into may be in the workflows
        // directory, still empty.
        let registry = app.registry_quietly()?;
        let wf = registry.get(&name)?;
        match Registry::builtin_copy(&wf.name) {
            Some(src) if matches!(wf.origin, fintel_workflows::Origin::Builtin) => print!("{src}"),
            _ => print!("{}", wf.canonical),
        }
        return Ok(exit::OK);
    }
    let registry = app.registry_quietly()?;
    for w in registry.warnings() {
        crate::pipes::err(&format!("warning: {w}\n"));
    }
    let list: Vec<_> = registry
        .list()
        .into_iter()
        .map(|w| {
            json!({
                "name": w.name,
                "description": w.description,
                "kind": w.kind.as_str(),
                "min_years": w.min_years,
                "max_years": w.max_years,
                "multi_year": w.is_multi_year(),
                "version": w.version,
                "origin": match &w.origin {
                    fintel_workflows::Origin::File(p) => p.display().to_string(),
                    _ => "built-in".to_string(),
                },
            })
        })
        .collect();
    if args.json {
        println!("{}", serde_json::Value::Array(list));
        return Ok(exit::OK);
    }
    for w in &list {
        println!(
            "{:<12} {}{}",
            w["name"].as_str().unwrap_or(""),
            w["description"].as_str().unwrap_or(""),
            if w["multi_year"].as_bool() == Some(true) {
                format!(" (multi-year, at least {} years)", w["min_years"])
            } else {
                String::new()
            }
        );
    }
    println!(
        "\ncustom types: TOML files in {} (start from `fintel workflows show fundamental`)",
        app.config.workflows_dir().display()
    );
    Ok(exit::OK)
}

pub async fn analyze(app: &App, args: AnalyzeArgs) -> Result<u8> {
    app.require_writable()?;
    let this_year = i32::from(pacific_date(app.clock.now()).year());
    let years = crate::planning::years_spec(
        args.years,
        args.fiscal_years.as_deref(),
        Some(DEFAULT_YEARS),
        this_year,
    )?;
    if let Some(warning) = crate::planning::many_years(&years, args.yes, this_year)? {
        eprintln!("{warning}");
    }
    let registry = app.registry()?;
    let workflow = registry.get(&args.analysis_type)?.clone();
    workflow.check_years(years.count() as usize)?;
    let analysis = WorkflowAnalysis::new(workflow);
    let line = if args.company.chars().all(|c| c.is_ascii_digit()) {
        format!("cik\n{}\n", args.company)
    } else {
        format!("ticker\n{}\n", args.company)
    };
    let rows = input::parse_companies("command line", &line)?;
    let edgar = app.edgar()?;
    let provider = app.provider()?;
    let pool = app.pool();
    let display = Display::new(args.json);
    let model = if fintel_engine::Analysis::needs_model(analysis.as_ref()) {
        preflight(app, provider.as_ref(), &pool, None, &display).await?
    } else {
        app.model().unwrap_or("none").to_string()
    };
    let store = app.open_store()?;
    let source: Arc<dyn FilingSource> = Arc::new(LiveSource { edgar });
    let created = create_batch(
        &store,
        source.as_ref(),
        BatchRequest {
            name: Some(format!("analyze {}", args.company)),
            input_file: None,
            rows,
            years,
            analysis: analysis.as_ref(),
            model,
            priority: 0,
            settings: BatchSettings {
                force: args.force,
                pack: args.pack.unwrap_or(app.config.pack),
                ..BatchSettings::default()
            },
        },
        app.clock.now(),
    )
    .await?;
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

pub async fn sim(args: SimArgs, clock: SharedClock) -> Result<u8> {
    let SimAction::Serve {
        addr,
        sim_config,
        fixtures,
    } = args.action;
    let mut sim_config = match &sim_config {
        Some(path) => {
            fintel_sim::SimConfig::from_toml_file(path).map_err(|e| usage(e.to_string()))?
        }
        None => fintel_sim::SimConfig::default(),
    };
    if fixtures.is_some() {
        sim_config.sec.fixtures_dir = fixtures;
    }
    let addr: SocketAddr = addr.parse().map_err(|_| {
        usage(format!(
            "--addr {addr:?} is not an address like 127.0.0.1:8089"
        ))
    })?;
    let universe_csv = fintel_sim::Universe::generate(&sim_config).companies_csv(5);
    let keys: Vec<String> = sim_config
        .gemini
        .projects
        .iter()
        .flat_map(|p| p.keys.iter().cloned())
        .collect();
    let mut handle = fintel_sim::start(sim_config, clock, addr)
        .await
        .map_err(|e| usage(e.to_string()))?;
    // The first line on stdout is the base URL, for scripts and tests that start it on port 0.
    crate::pipes::out(&format!("{}\n", handle.base_url()))?;
    crate::pipes::err(&sim_banner(&handle.base_url(), &keys, &universe_csv));
    tokio::select! {
        _ = handle.wait() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(exit::OK)
}

/// What `fintel sim serve` tells a user: where it listens, the keys it accepts and a few
/// tickers it knows, as the lines to paste into another terminal.
fn sim_banner(url: &str, keys: &[String], companies_csv: &str) -> String {
    let tickers: Vec<&str> = companies_csv
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .filter(|t| !t.is_empty())
        .collect();
    let key_vars: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| format!("GOOGLE_API_KEY_{}={k}", i + 1))
        .collect();
    format!(
        "simulated SEC and Gemini listening on {url}\n\
         keys it accepts: {}\n\
         tickers it knows, e.g.: {}\n\
         use it from another terminal:\n  \
         export FINTEL_SEC_WWW_URL={url} FINTEL_SEC_DATA_URL={url} FINTEL_GEMINI_URL={url}\n  \
         export FINTEL_SEC_USER_AGENT=\"Jane Doe jane@example.com\" {}\n  \
         fintel analyze {} --years 2\n\
         counters at {url}/__sim/stats; Ctrl+C stops it\n",
        if keys.is_empty() {
            "none configured".to_string()
        } else {
            keys.join(", ")
        },
        tickers.join(", "),
        key_vars.join(" "),
        tickers.first().copied().unwrap_or("TICKER"),
    )
}

/// The offline demo: the in-process simulator, a fast fake clock, and a real batch through the
/// normal engine, passing through a quota exhaustion and a Pacific-midnight reset.
pub async fn demo(base: &Config, args: DemoArgs) -> Result<u8> {
    if !(args.speed.is_finite() && args.speed >= 1.0) {
        return Err(usage("--speed must be at least 1"));
    }
    if args.companies == 0 || args.companies > 1000 {
        return Err(usage("--companies must be between 1 and 1000"));
    }
    if args.years == 0 || args.years > 10 {
        return Err(usage("--years must be between 1 and 10"));
    }
    // Start 22:30 Pacific today, so the first quota day ends within the demo.
    let now = jiff::Timestamp::now();
    let start = pacific_date(now)
        .at(22, 30, 0, 0)
        .to_zoned(fintel_time::pacific())
        .context("demo start time")?
        .timestamp();
    let clock: SharedClock = Arc::new(FakeClock::new(start, args.speed));
    let per_day = 10u32;
    let projects = 3usize;
    let mut sim_config = fintel_sim::SimConfig::default();
    sim_config.sec.companies = args.companies.max(30);
    sim_config.sec.document_bytes = 60_000;
    sim_config.sec.large_document_share = 0.0;
    sim_config.gemini.projects = (1..=projects)
        .map(|i| fintel_sim::ProjectConfig {
            name: format!("demo-project-{i}"),
            keys: vec![format!("demo-key-{i}-0123456789")],
            requests_per_day: per_day,
            requests_per_minute: 5,
            input_tokens_per_minute: 250_000,
            ..Default::default()
        })
        .collect();
    let universe_csv = fintel_sim::Universe::generate(&sim_config).companies_csv(args.companies);
    let handle = fintel_sim::start(sim_config.clone(), clock.clone(), "127.0.0.1:0".parse()?)
        .await
        .map_err(|e| anyhow::anyhow!("cannot start the simulator: {e}"))?;
    let url = handle.base_url();

    let data_dir = base.data_dir.join("demo");
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    for f in ["fintel.db", "fintel.db-wal", "fintel.db-shm"] {
        let _ = std::fs::remove_file(data_dir.join(f));
    }
    let csv_path = data_dir.join("companies.csv");
    std::fs::write(&csv_path, &universe_csv)?;
    let limits = BucketLimits {
        requests_per_day: per_day,
        requests_per_minute: 5,
        input_tokens_per_minute: 250_000,
    };
    let config = Config {
        data_dir: data_dir.clone(),
        config_file: None,
        sec_user_agent: Some("fintel demo demo@example.com".into()),
        sec_www_url: url.clone(),
        sec_data_url: url.clone(),
        sec_requests_per_second: 10,
        provider: ProviderKind::Gemini,
        gemini_url: url.clone(),
        openai_url: String::new(),
        // The simulator's own model: the demo needs no choice, and names no model of its own.
        model: sim_config.gemini.models.first().map(|m| m.name.clone()),
        thinking: fintel_llm::Thinking::ProviderDefault,
        temperature: None,
        seed: None,
        max_output_tokens: Some(8_192),
        context_tokens: None,
        request_timeout: base.request_timeout,
        buckets: sim_config
            .gemini
            .projects
            .iter()
            .map(|p| fintel_engine::Bucket {
                name: p.name.clone(),
                keys: p
                    .keys
                    .iter()
                    .enumerate()
                    .map(|(i, k)| {
                        fintel_llm::ApiKey::new(
                            &format!(
                                "DEMO_KEY_{}{}",
                                p.name.trim_start_matches("demo-project-"),
                                i
                            ),
                            k.clone(),
                        )
                    })
                    .collect(),
                limits,
            })
            .collect(),
        concurrency: 6,
        concurrency_configured: Some(6),
        reset_buffer: std::time::Duration::from_secs(300),
        grace: std::time::Duration::from_secs(10),
        // The demo writes a few megabytes: only a nearly full disk should pause it.
        min_free_disk_bytes: base.min_free_disk_bytes.min(64 << 20),
        backup_retention: base.backup_retention,
        pack: base.pack,
        webhook_url: None,
        notifier: fintel_notify::Notifier::disabled(),
    };
    let app = App {
        config,
        clock,
        model_output_limit: Default::default(),
        chosen_model: Default::default(),
        model_input_limit: Default::default(),
        model_thinks: Default::default(),
        server_limits: Default::default(),
    };
    eprintln!(
        "fintel demo: {} simulated companies x {} years, {} keys of {per_day} requests/day, on a \
         clock running {}x (starting {}): watch it use the day's quota, wait for the Pacific-midnight \
         reset, and finish.",
        args.companies,
        args.years,
        projects,
        args.speed,
        local_and_pacific(start)
    );
    let registry = app.registry()?;
    let analysis = WorkflowAnalysis::new(registry.get("fundamental")?.clone());
    let rows = input::parse_companies(&csv_path.display().to_string(), &universe_csv)?;
    let store = app.open_store()?;
    let source: Arc<dyn FilingSource> = Arc::new(LiveSource {
        edgar: app.edgar()?,
    });
    let created = create_batch(
        &store,
        source.as_ref(),
        BatchRequest {
            name: Some("demo".into()),
            input_file: Some(csv_path.display().to_string()),
            rows,
            years: YearsSpec::Latest(args.years),
            analysis: analysis.as_ref(),
            model: app.model().unwrap_or_default().to_string(),
            priority: 0,
            settings: BatchSettings::default(),
        },
        app.clock.now(),
    )
    .await?;
    let provider = app.provider()?;
    let pool = app.pool();
    let code = run(
        &app,
        store.clone(),
        &created.batch_id,
        source,
        provider,
        analysis,
        pool,
        Display::new(false),
        false,
    )
    .await?;
    let stats = handle.stats();
    handle.shutdown().await;
    let first_ticker = universe_csv
        .lines()
        .nth(1)
        .and_then(|l| l.split(',').next())
        .unwrap_or("TICKER")
        .to_string();
    crate::pipes::err(&demo_closing(
        &data_dir.display().to_string(),
        &created.batch_id,
        &first_ticker,
        stats.gemini.total.received,
        stats.gemini.total.over_limit,
    ));
    Ok(code)
}

/// The demo's last words: what happened and the commands to look at the results with.
fn demo_closing(dir: &str, batch_id: &str, ticker: &str, received: u64, over_limit: u64) -> String {
    format!(
        "\nThe simulator received {received} model requests, {over_limit} over a limit. Look at \
         the results with:\n  \
         fintel --data-dir {dir} batch status {batch_id}\n  \
         fintel --data-dir {dir} results {ticker}\n  \
         fintel --data-dir {dir} export --format xlsx --output demo.xlsx\n  \
         fintel --data-dir {dir} web --open\n\
         With your own keys: set GOOGLE_API_KEY_1.. and FINTEL_SEC_USER_AGENT, then \
         `fintel batch companies.csv --years 7`.\n"
    )
}

/// `fintel plan`: model requests a batch would need (minus results already stored), and the
/// quota days and finish at the configured buckets' quota (what is left today first).
pub async fn plan(app: &App, args: PlanArgs) -> Result<u8> {
    let this_year = i32::from(pacific_date(app.clock.now()).year());
    let years = crate::planning::years_spec(
        args.years,
        args.fiscal_years.as_deref(),
        Some(DEFAULT_YEARS),
        this_year,
    )?;
    if let Some(warning) = crate::planning::many_years(&years, true, this_year)? {
        eprintln!("{warning}");
    }
    let registry = app.registry()?;
    let workflow = registry.get(&args.analysis_type)?.clone();
    workflow.check_years(years.count() as usize)?;
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))
        .map_err(|e| usage(format!("{e:#}")))?;
    let rows = input::parse_companies(
        &args.file.display().to_string(),
        &String::from_utf8_lossy(&bytes),
    )?;
    let pack = args.pack.unwrap_or(app.config.pack);
    let plan =
        crate::planning::make_plan(app, &rows, &years, &workflow, pack, args.priority).await?;
    if !plan.unknown.is_empty() && !args.skip_unknown {
        return Err(crate::planning::unknown_error(&plan.unknown));
    }
    let finish = plan.eta.map(|e| e.finish);
    let doc = json!({
        "companies": plan.companies,
        "unknown_tickers": plan.unknown.len(),
        "years": plan.years,
        "analysis_type": plan.analysis_type,
        "requests_total": plan.requests_total,
        "already_stored": plan.already_stored,
        "requests_needed": plan.requests_needed,
        "batches_ahead": plan.ahead.batches,
        "requests_ahead": plan.ahead.requests,
        "pack": plan.pack.to_string(),
        "requests_per_day": plan.requests_per_day,
        "quota_days": if plan.requests_needed == 0 { 0 } else { plan.eta.map_or(0, |e| e.quota_days) },
        "expected_finish_quota_day": finish.map(|t| pacific_date(t).to_string()),
        "estimated_finish": finish.map(|t| t.to_string()),
        "keys": plan.keys,
        "projects": plan.buckets,
        "assumption": plan.assumption,
    });
    if args.json {
        crate::pipes::out(&format!("{doc}\n"))?;
    } else {
        crate::pipes::out(&plan.to_text())?;
    }
    Ok(exit::OK)
}

/// Why `bytes` cannot be a filing document (HTML or SEC's plain text), or `None` when it may
/// be one. Old filings are often Latin-1, so only what text never has counts: nothing at all,
/// NUL bytes, or many control characters (PDFs, images, archives, spreadsheets).
pub(crate) fn not_a_filing(bytes: &[u8]) -> Option<&'static str> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Some("the file is empty");
    }
    let head = &bytes[..bytes.len().min(64 * 1024)];
    if head.contains(&0) {
        return Some("it has binary content (a PDF, image, archive or spreadsheet?)");
    }
    let control = head
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c))
        .count();
    if control * 20 > head.len() {
        return Some("it has binary content (a PDF, image, archive or spreadsheet?)");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_html_or_text_is_taken_for_a_filing() {
        let latin1 = b"<html><body>Soci\xe9t\xe9 G\xe9n\xe9rale 10-K</body></html>".to_vec();
        let table: &[(&[u8], bool)] = &[
            (b"", false),
            (b"  \n\t ", false),
            (b"%PDF-1.7\n\x00\x01\x02binary", false),
            (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", false),
            (&[0x1b; 100], false),
            (b"<html><body><p>FORM 10-K</p></body></html>", true),
            (
                b"<SEC-DOCUMENT>0000320193-94-000016.txt\nANNUAL REPORT\x0c\n",
                true,
            ),
            (&latin1, true),
        ];
        for (bytes, filing) in table {
            assert_eq!(
                not_a_filing(bytes).is_none(),
                *filing,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}
