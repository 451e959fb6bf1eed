//! The smaller commands: config, keys, filings, text, workflows, analyze, sim serve, demo.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use fintel_edgar::{filings_report, FilingsQuery, FormFamily, YearRequest};
use fintel_engine::{create_batch, input, BatchRequest, BatchSettings, FilingSource, YearsSpec};
use fintel_filing::{text_report, FormKind, TextOptions};
use fintel_store::BucketLimits;
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
    let mut rows = Vec::new();
    for b in &buckets {
        let usage_now = match &store {
            Some(s) => s.bucket_usage(&b.name, now, &date)?,
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
        let elsewhere = refusals.spent_elsewhere.get(&b.name);
        let state = if !b.keys.is_empty() && keys.iter().all(|k| !k["disabled"].is_null()) {
            "disabled".to_string()
        } else if let Some((answered, limit)) = elsewhere {
            format!("spent elsewhere (refused after {answered} of {limit} until reset)")
        } else if usage_now.exhausted_until.is_some()
            || usage_now.used_today >= b.limits.requests_per_day
        {
            "exhausted until reset".to_string()
        } else if let Some(t) = usage_now.backoff_until {
            format!("backing off until {}", local_and_pacific(t))
        } else {
            "available".to_string()
        };
        rows.push(json!({
            "bucket": b.name,
            "project": projects.get(&b.name),
            "spent_elsewhere": elsewhere.is_some(),
            "keys": keys,
            "used_today": usage_now.used_today,
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
    let query = FilingsQuery {
        company: args.company.clone(),
        request: YearRequest::Latest {
            years: args.years,
            as_of: pacific_date(app.clock.now()),
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
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(exit::OK)
}

pub fn text(args: TextArgs) -> Result<u8> {
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))
        .map_err(|e| usage(format!("{e:#}")))?;
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
        let registry = app.registry()?;
        let wf = registry.get(&name)?;
        match Registry::builtin_source(&wf.name) {
            Some(src) if matches!(wf.origin, fintel_workflows::Origin::Builtin) => print!("{src}"),
            _ => print!("{}", wf.canonical),
        }
        return Ok(exit::OK);
    }
    let registry = app.registry()?;
    for w in registry.warnings() {
        eprintln!("warning: {w}");
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
    let registry = app.registry()?;
    let workflow = registry.get(&args.analysis_type)?.clone();
    workflow.check_years(args.years as usize)?;
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
    if fintel_engine::Analysis::needs_model(analysis.as_ref()) {
        preflight(app, provider.as_ref(), &pool, None, &display).await?;
    }
    let store = app.open_store()?;
    let source: Arc<dyn FilingSource> = Arc::new(LiveSource { edgar });
    let created = create_batch(
        &store,
        source.as_ref(),
        BatchRequest {
            name: Some(format!("analyze {}", args.company)),
            input_file: None,
            rows,
            years: YearsSpec::Latest(args.years),
            analysis: analysis.as_ref(),
            model: app.config.model.clone(),
            priority: 0,
            settings: BatchSettings {
                force: args.force,
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
    let mut handle = fintel_sim::start(sim_config, clock, addr)
        .await
        .map_err(|e| usage(e.to_string()))?;
    // The first line on stdout is the base URL, for scripts and tests that start it on port 0.
    println!("{}", handle.base_url());
    eprintln!(
        "simulator listening on {0}; point fintel at it with FINTEL_SEC_WWW_URL={0} \
         FINTEL_SEC_DATA_URL={0} FINTEL_GEMINI_URL={0}; counters at {0}/__sim/stats",
        handle.base_url()
    );
    tokio::select! {
        _ = handle.wait() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(exit::OK)
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
        model: "gemini-2.5-flash".into(),
        thinking: fintel_llm::Thinking::ProviderDefault,
        temperature: Some(0.2),
        max_output_tokens: Some(8_192),
        context_tokens: 1_048_576,
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
        reset_buffer: std::time::Duration::from_secs(300),
        grace: std::time::Duration::from_secs(10),
        // The demo writes a few megabytes: only a nearly full disk should pause it.
        min_free_disk_bytes: base.min_free_disk_bytes.min(64 << 20),
        backup_retention: base.backup_retention,
        webhook_url: None,
        notifier: fintel_notify::Notifier::disabled(),
    };
    let app = App { config, clock };
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
            model: app.config.model.clone(),
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
    let dir = data_dir.display();
    eprintln!(
        "\nThe simulator received {} model requests, {} over a limit. Results are in {dir}/fintel.db \
         (table `results`). Look at them with:\n  fintel --data-dir {dir} batch status {}\n  \
         sqlite3 {dir}/fintel.db \"SELECT ticker, fiscal_year, json FROM results LIMIT 3\"\n\
         With your own keys: set GOOGLE_API_KEY_1.. and FINTEL_SEC_USER_AGENT, then \
         `fintel batch companies.csv --years 7`.",
        stats.gemini.total.received,
        stats.gemini.total.over_limit,
        created.batch_id
    );
    Ok(code)
}

/// `fintel plan`: model requests a batch would need (minus results already stored), and the
/// days and finish date at the configured buckets' daily limits.
pub async fn plan(app: &App, args: PlanArgs) -> Result<u8> {
    let registry = app.registry()?;
    let workflow = registry.get(&args.analysis_type)?.clone();
    workflow.check_years(args.years as usize)?;
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))
        .map_err(|e| usage(format!("{e:#}")))?;
    let rows = input::parse_companies(
        &args.file.display().to_string(),
        &String::from_utf8_lossy(&bytes),
    )?;
    let source = LiveSource {
        edgar: app.edgar()?,
    };
    let queries: Vec<fintel_engine::CompanyQuery> =
        rows.iter().map(input::InputRow::query).collect();
    let found = source
        .lookup_companies(&queries)
        .await
        .map_err(|e| anyhow::anyhow!("SEC: {e}"))?;
    let mut ciks: Vec<u64> = rows
        .iter()
        .zip(&found)
        .filter_map(|(r, m)| m.as_ref().map(|m| m.cik).or(r.cik))
        .collect();
    ciks.sort_unstable();
    ciks.dedup();
    let unknown = rows.len()
        - found
            .iter()
            .zip(&rows)
            .filter(|(m, r)| m.is_some() || r.cik.is_some())
            .count();
    let needs_model = workflow.kind == fintel_workflows::Kind::Llm;
    let per_company = if !needs_model {
        0
    } else {
        args.years as u64 + u64::from(workflow.is_multi_year())
    };
    // Stored results with the same analysis version and model are never asked for again.
    let mut stored = 0u64;
    if let Some(store) = app.existing_store()? {
        let conn = store.conn();
        let mut stmt = conn.prepare(
            "SELECT COUNT(*) FROM results WHERE cik = ?1 AND analysis_type = ?2 \
             AND analysis_version = ?3 AND model = ?4",
        )?;
        for cik in &ciks {
            let n: i64 = stmt.query_row(
                (
                    *cik as i64,
                    &workflow.name,
                    &workflow.version,
                    &app.config.model,
                ),
                |r| r.get(0),
            )?;
            stored += (n as u64).min(per_company);
        }
    }
    let requests = ciks.len() as u64 * per_company - stored;
    let existing = app.existing_store()?;
    let (buckets, _merges) = crate::projects::effective_buckets(app, existing.as_deref())?;
    let per_day = crate::projects::daily_capacity(&buckets);
    let now = app.clock.now();
    let first_reset = next_reset(now, app.config.reset_buffer);
    let (days, finish) = if requests == 0 {
        (0, Some(now))
    } else if per_day == 0 {
        (0, None)
    } else {
        let days = requests.div_ceil(per_day);
        // Today's quota first (assumed unused), then one more quota day per reset.
        let finish = if days <= 1 {
            now
        } else {
            first_reset + jiff::Span::new().days((days - 2) as i64)
        };
        (days, Some(finish))
    };
    let doc = json!({
        "companies": ciks.len(),
        "unknown_tickers": unknown,
        "years": args.years,
        "analysis_type": workflow.name,
        "requests_total": ciks.len() as u64 * per_company,
        "already_stored": stored,
        "requests_needed": requests,
        "requests_per_day": per_day,
        "quota_days": days,
        "expected_finish_quota_day": finish.map(|t| pacific_date(t).to_string()),
        "keys": buckets.iter().map(|b| b.keys.len()).sum::<usize>(),
        "projects": buckets.len(),
        "assumption": crate::projects::capacity_line(&buckets),
    });
    if args.json {
        println!("{doc}");
        return Ok(exit::OK);
    }
    println!(
        "{} companies x {} years of {}: {} model requests ({} already stored), {} unknown ticker(s)",
        ciks.len(),
        args.years,
        workflow.name,
        requests,
        stored,
        unknown
    );
    match finish {
        Some(t) if per_day > 0 || requests == 0 => println!(
            "at {per_day} requests/day over {} bucket(s): {days} quota day(s), finishing on the Pacific quota day {}",
            buckets.len(),
            pacific_date(t)
        ),
        _ => println!("no key configured: set GOOGLE_API_KEY_1.. to get a finish date"),
    }
    if !buckets.is_empty() {
        println!("{}", crate::projects::capacity_line(&buckets));
    }
    Ok(exit::OK)
}
