//! Getting results out and keeping the data directory healthy: export, results, db, cache.

use std::time::Duration;

use anyhow::{Context, Result};
use fintel_export::{ExportQuery, Format, Output, StatusFilter};
use serde_json::json;

use crate::app::App;
use crate::cli::{CacheAction, CacheArgs, DbAction, DbArgs, ExportArgs, ResultsArgs};
use crate::exit::{self, usage};

fn store(app: &App) -> Result<std::sync::Arc<fintel_store::Store>> {
    app.existing_store()?
        .ok_or_else(|| usage("no results yet: the data directory has no database"))
}

pub fn export(app: &App, args: ExportArgs) -> Result<u8> {
    let format = Format::parse(&args.format).map_err(|e| usage(e.to_string()))?;
    let status = StatusFilter::parse(&args.status_filter).map_err(|e| usage(e.to_string()))?;
    let store = store(app)?;
    let query = ExportQuery {
        batch_id: args.batch_id.clone(),
        analysis_type: args.analysis_type.clone(),
        status,
    };
    let to_stdout = args.output.as_os_str() == "-";
    let mut stdout = std::io::stdout().lock();
    let output = if to_stdout {
        Output::Stdout(&mut stdout)
    } else {
        Output::Path {
            path: args.output.clone(),
            force: args.force,
        }
    };
    let summary = fintel_export::export(&store, &query, format, output).map_err(|e| match e {
        fintel_export::ExportError::Store(_)
        | fintel_export::ExportError::Sqlite(_)
        | fintel_export::ExportError::Write { .. } => anyhow::Error::new(e),
        e => usage(e.to_string()),
    })?;
    let models = store.result_models(args.batch_id.as_deref(), args.analysis_type.as_deref())?;
    if let Some(note) = crate::models::mixed_models_note(&models) {
        eprintln!("note: the exported {note}; the model column says which produced each row");
    }
    if args.json && !to_stdout {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        eprintln!(
            "wrote {} row(s), {} column(s){}",
            summary.rows,
            summary.columns,
            summary
                .path
                .as_ref()
                .map(|p| format!(" to {}", p.display()))
                .unwrap_or_default()
        );
    }
    Ok(exit::OK)
}

pub fn results(app: &App, args: ResultsArgs) -> Result<u8> {
    let store = store(app)?;
    let years = match &args.fiscal_years {
        Some(text) => match fintel_engine::YearsSpec::parse_explicit(text)? {
            fintel_engine::YearsSpec::Explicit(list) => Some(list),
            fintel_engine::YearsSpec::Latest(_) => None,
        },
        None => None,
    };
    let mut views = fintel_export::results_view(
        &store,
        &args.company,
        args.year,
        args.analysis_type.as_deref(),
    )
    .map_err(|e| usage(e.to_string()))?;
    if let Some(list) = &years {
        views.retain(|v| v.fiscal_year.is_some_and(|y| list.contains(&y)));
    }
    if views.is_empty() {
        // Nothing to show: say whether the company is unknown here (exit 2) or known with no
        // result matching (exit 0), rather than printing nothing.
        let known = crate::lookup::known_company(&store, &args.company)?;
        match known {
            None => {
                return Err(usage(crate::lookup::unknown_company_message(
                    &store,
                    &args.company,
                )?))
            }
            Some(name) => {
                let mut filters = Vec::new();
                if let Some(y) = args.year {
                    filters.push(format!("fiscal year {y}"));
                }
                if let Some(f) = &args.fiscal_years {
                    filters.push(format!("fiscal years {f}"));
                }
                if let Some(t) = &args.analysis_type {
                    filters.push(format!("analysis type {t}"));
                }
                eprintln!(
                    "{name} has no stored results{}; `fintel batch status` shows how its \
                     batch is doing",
                    if filters.is_empty() {
                        String::new()
                    } else {
                        format!(" for {}", filters.join(", "))
                    }
                );
            }
        }
    }
    if args.json {
        println!("{}", serde_json::to_string(&views)?);
    } else {
        print!("{}", fintel_export::render_text(&views));
    }
    Ok(exit::OK)
}

pub fn db(app: &App, args: DbArgs) -> Result<u8> {
    let store = store(app)?;
    match args.action {
        DbAction::Maintain { retention, json } => {
            let retention = retention.unwrap_or(app.config.backup_retention);
            if retention == 0 {
                return Err(exit::usage(
                    "--retention must be at least 1: the backup just taken is always kept",
                ));
            }
            let report = store.maintain(&app.config.backups_dir(), retention, app.clock.now())?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                eprintln!(
                    "database {} -> {} bytes; backup {}; {} old backup(s) removed{}",
                    report.total_before(),
                    report.total_after(),
                    report
                        .backup
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "not taken".into()),
                    report.deleted_backups.len(),
                    if report.problems.is_empty() {
                        String::new()
                    } else {
                        format!("; PROBLEMS: {}", report.problems.join("; "))
                    }
                );
            }
            Ok(if report.problems.is_empty() {
                exit::OK
            } else {
                exit::RUNTIME
            })
        }
        DbAction::Check => {
            let problems = store.integrity_check()?;
            let ok = problems == ["ok"];
            println!("{}", problems.join("\n"));
            Ok(if ok { exit::OK } else { exit::RUNTIME })
        }
        DbAction::Backup { path, json } => {
            let now = app.clock.now();
            let path = match path {
                Some(path) => path,
                None => {
                    let dir = app.config.backups_dir();
                    std::fs::create_dir_all(&dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                    dir.join(fintel_store::backup_file_name(now))
                }
            };
            if path.exists() {
                return Err(exit::usage(format!(
                    "{} already exists; choose a new file name (a backup never overwrites)",
                    path.display()
                )));
            }
            store.backup_to(&path)?;
            let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if json {
                println!("{}", json!({"backup": path, "bytes": bytes}));
            } else {
                eprintln!("backup written to {} ({bytes} bytes)", path.display());
            }
            Ok(exit::OK)
        }
    }
}

pub fn cache(app: &App, args: CacheArgs) -> Result<u8> {
    let cache = fintel_edgar::DocumentCache::new(&app.config.cache_dir(), app.clock.clone());
    match args.action {
        CacheAction::Stats { json } => {
            let s = cache.stats()?;
            if json {
                println!(
                    "{}",
                    json!({"documents": s.documents, "bytes": s.bytes, "oldest": s.oldest.map(|t| t.to_string()), "newest": s.newest.map(|t| t.to_string())})
                );
            } else {
                println!(
                    "{} documents, {:.1} MB in {}",
                    s.documents,
                    s.bytes as f64 / 1e6,
                    app.config.cache_dir().display()
                );
            }
        }
        CacheAction::Prune { older_than, json } => {
            let r = cache.prune(Duration::from_secs(older_than * 86_400))?;
            if json {
                println!(
                    "{}",
                    json!({"documents_removed": r.documents, "bytes_removed": r.bytes})
                );
            } else {
                eprintln!(
                    "removed {} document(s), {:.1} MB; stored results are kept",
                    r.documents,
                    r.bytes as f64 / 1e6
                );
            }
        }
    }
    Ok(exit::OK)
}
