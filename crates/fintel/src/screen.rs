//! `fintel screen`: ranks companies by a field of their stored results (see fintel-screen for
//! the rules), as a table, JSON, CSV or XLSX.

use anyhow::Result;
use fintel_screen::{FileFormat, ScreenError, ScreenRequest};

use crate::app::App;
use crate::cli::ScreenArgs;
use crate::exit::{self, usage};

fn coded(e: ScreenError) -> anyhow::Error {
    if e.is_bad_input() {
        usage(e.to_string())
    } else {
        anyhow::Error::new(e)
    }
}

/// The request from the command line: a preset's screen refined by the options given.
fn request(args: &ScreenArgs) -> Result<ScreenRequest> {
    let mut request = match &args.preset {
        Some(name) => {
            let preset = fintel_screen::preset(name).map_err(coded)?;
            if let Some(t) = &args.analysis_type {
                if !t.trim().eq_ignore_ascii_case(preset.analysis_type) {
                    return Err(usage(format!(
                        "the preset {} screens {} results, not {t}; leave out --analysis-type \
                         or the preset",
                        preset.name, preset.analysis_type
                    )));
                }
            }
            ScreenRequest::from_preset(preset)
        }
        None => {
            let Some(t) = &args.analysis_type else {
                return Err(usage(
                    "which results? pass --analysis-type T (e.g. scanner) and --sort FIELD, or \
                     --preset compounders",
                ));
            };
            let Some(sort) = &args.sort else {
                return Err(usage(format!(
                    "no field to rank by: pass --sort FIELD (`fintel screen --analysis-type {t} \
                     --sort x` lists the fields of {t})"
                )));
            };
            ScreenRequest {
                analysis_type: t.clone(),
                sort: sort.clone(),
                ..ScreenRequest::default()
            }
        }
    };
    if let Some(sort) = &args.sort {
        request.sort = sort.clone();
    }
    if args.top.is_some() {
        request.top = args.top;
    }
    request.ascending = args.asc;
    request.conditions.extend(args.conditions.iter().cloned());
    request.batch_id = args.batch_id.clone();
    request.fiscal_year = args.fiscal_year;
    if !args.show.is_empty() {
        request.show = args.show.clone();
    }
    Ok(request)
}

pub fn screen(app: &App, args: ScreenArgs) -> Result<u8> {
    let request = request(&args)?;
    let format = args
        .format
        .as_deref()
        .map(FileFormat::parse)
        .transpose()
        .map_err(coded)?;
    let store = app
        .existing_store()?
        .ok_or_else(|| usage("no results yet: the data directory has no database"))?;
    let registry = app.registry()?;
    let screen = fintel_screen::screen(&store, &registry, &request).map_err(coded)?;

    let scope = match request.fiscal_year {
        Some(y) => format!("fiscal year {y}"),
        None => "latest fiscal year".to_string(),
    };
    let order = if screen.descending {
        "highest first"
    } else {
        "lowest first"
    };
    let summary = format!(
        "{} of {} compan{} with {} results pass{} ({scope}, by {}, {order}){}",
        screen.matched,
        screen.companies,
        if screen.companies == 1 { "y" } else { "ies" },
        screen.analysis_type,
        if screen.matched == 1 { "es" } else { "" },
        screen.sort,
        if screen.rows.len() < screen.matched {
            format!("; the top {} are listed", screen.rows.len())
        } else {
            String::new()
        }
    );
    let models = store.result_models(request.batch_id.as_deref(), Some(&screen.analysis_type))?;
    if let Some(note) = crate::models::mixed_models_note(&models) {
        eprintln!(
            "note: the {} {note}; each company's row is its result, by whichever model produced it",
            screen.analysis_type
        );
    }
    if args.json {
        println!("{}", serde_json::to_string(&screen.rows)?);
        eprintln!("{summary}");
    } else if let (Some(format), Some(path)) = (format, &args.output) {
        fintel_screen::write_file(&screen, format, path, args.force).map_err(coded)?;
        eprintln!("{summary}");
        eprintln!("wrote {} row(s) to {}", screen.rows.len(), path.display());
    } else {
        print!("{}", fintel_screen::render_table(&screen));
        eprintln!("{summary}");
        if screen.companies == 0 {
            eprintln!(
                "no stored {} results{}: run a batch of that type first",
                screen.analysis_type,
                request
                    .batch_id
                    .as_deref()
                    .map(|b| format!(" in batch {b}"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(exit::OK)
}
