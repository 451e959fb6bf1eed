//! The `fintel` command: a thin layer over the workspace's crates. It reads the configuration,
//! builds the real SEC source, model provider and analyses, runs the engine with signals and
//! progress, and turns every outcome into an exit code (SPEC.md section 1).

mod app;
mod batch;
mod changes;
mod cli;
mod commands;
mod config;
mod doctor;
mod exit;
mod live;
mod logging;
mod lookup;
mod models;
mod notifications;
mod outlook;
mod pipes;
mod planning;
mod probe;
mod progress;
mod projects;
mod results;
mod screen;
mod web;

use std::process::ExitCode;

use clap::Parser;

use crate::app::App;
use crate::cli::{Cli, Command};
use crate::config::{Config, Overrides};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    if pipes::default_sigpipe_for(cli.command.as_ref()) {
        pipes::restore_default_sigpipe();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::RUNTIME);
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = exit::code_of(&e);
            pipes::err(&format!("error: {e:#}\n"));
            ExitCode::from(code)
        }
    }
}

/// Starts logging once the configuration says where and which secrets to hide. Commands that
/// run or look after batches also log to the data directory; the others only read or print.
fn init_logging(cli: &Cli, config: &Config) {
    let to_file = matches!(
        cli.command,
        None | Some(
            Command::Batch(_)
                | Command::Analyze(_)
                | Command::Demo(_)
                | Command::Db(_)
                | Command::Doctor(_)
                | Command::Web(_)
        )
    );
    let mut secrets: Vec<String> = config
        .buckets
        .iter()
        .flat_map(|b| b.keys.iter().map(|k| k.secret().to_string()))
        .collect();
    secrets.extend(config.webhook_url.clone());
    let logs_dir = config.logs_dir();
    logging::init(cli.verbose, to_file.then_some(logs_dir.as_path()), secrets);
}

async fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    let overrides = Overrides {
        data_dir: cli.data_dir.clone(),
        config_file: cli.config.clone(),
        model: match &cli.command {
            Some(Command::Batch(b)) => b.model.clone(),
            Some(Command::Plan(p)) => p.model.clone(),
            Some(Command::Analyze(a)) => a.model.clone(),
            _ => None,
        },
    };
    let clock = fintel_time::clock_from_env().map_err(|e| exit::usage(e.to_string()))?;
    let config = Config::load(&overrides)?;
    init_logging(&cli, &config);
    let app = App {
        config,
        clock,
        model_output_limit: Default::default(),
        chosen_model: Default::default(),
        model_input_limit: Default::default(),
        model_thinks: Default::default(),
        server_limits: Default::default(),
    };
    let Some(command) = cli.command else {
        eprintln!(
            "no command given: running the offline demo (`fintel --help` lists the commands)"
        );
        return commands::demo(&app.config, cli::DemoArgs::default()).await;
    };
    match command {
        Command::Batch(args) => batch::batch(&app, args).await,
        Command::Analyze(args) => commands::analyze(&app, args).await,
        Command::Demo(args) => commands::demo(&app.config, args).await,
        Command::Config(args) => commands::config(&app, args),
        Command::Keys(args) => commands::keys(&app, args),
        Command::Plan(args) => commands::plan(&app, args).await,
        Command::Export(args) => results::export(&app, args),
        Command::Results(args) => results::results(&app, args),
        Command::Screen(args) => screen::screen(&app, args),
        Command::Db(args) => results::db(&app, args),
        Command::Cache(args) => results::cache(&app, args),
        Command::Filings(args) => commands::filings(&app, args).await,
        Command::Text(args) => commands::text(args),
        Command::Changes(args) => changes::changes(args),
        Command::Workflows(args) => commands::workflows(&app, args),
        Command::Sim(args) => commands::sim(args, app.clock.clone()).await,
        Command::Doctor(args) => doctor::doctor(&app, args).await,
        Command::Web(args) => web::web(&app, args).await,
    }
}
