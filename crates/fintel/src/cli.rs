//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const ABOUT: &str = "LLM analyses of SEC annual reports (10-K, 20-F) for many companies over many \
years, within the daily quotas of your API keys. Start a batch, leave it, come back to every result.";

const AFTER_HELP: &str = "\
Examples:
  fintel demo                                   offline demo against the built-in simulator
  fintel batch companies.csv --years 7          create a batch and run it
  fintel batch --resume                         resume the most recent incomplete batch
  fintel batch status                           counts and reasons of the latest batch
  fintel screen --preset compounders            a short list from the stored results

Environment: GOOGLE_API_KEY_1..N, FINTEL_SEC_USER_AGENT (\"Jane Doe jane@example.com\"),
FINTEL_HOME (data directory), FINTEL_MODEL; see the README for the full list.
Exit codes: 0 done or stopped cleanly, 1 runtime error, 2 bad usage or input, 3 batch ended
with failed tasks, 4 configuration problem, 130 second signal.";

/// `--years` when a command that looks or plans is given neither `--years` nor
/// `--fiscal-years` (a batch always says which years it spends quota on).
pub const DEFAULT_YEARS: u32 = 7;

#[derive(Debug, Parser)]
#[command(name = "fintel", version, about = ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    /// Data directory (database, document cache, logs, backups, workflows) [env: FINTEL_HOME]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Configuration file (default: fintel.toml in the data directory) [env: FINTEL_CONFIG]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Without a command, fintel runs the offline demo
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and run a batch, resume one, or manage batches
    Batch(BatchArgs),
    /// Run one company through the same engine as `batch`
    Analyze(AnalyzeArgs),
    /// Run a small real batch offline against the built-in simulator (no key, no network)
    Demo(DemoArgs),
    /// Show the effective configuration (secrets masked)
    Config(JsonFlag),
    /// Show key buckets: used today, limits, state, next reset; or re-enable a key
    Keys(KeysArgs),
    /// Estimate the requests, days and finish date of a batch before starting it
    Plan(PlanArgs),
    /// Write results to CSV, JSONL, Parquet or XLSX
    Export(ExportArgs),
    /// Print a company's stored results readably
    Results(ResultsArgs),
    /// Rank companies by a field of their results: a short list from thousands of analyses
    Screen(ScreenArgs),
    /// Database upkeep: maintain (checkpoint, optimise, check, back up), check
    Db(DbArgs),
    /// The document cache: stats, prune
    Cache(CacheArgs),
    /// Show the filing fintel would analyse for each fiscal year of a company
    Filings(FilingsArgs),
    /// Show what the model will read for a filing document
    Text(TextArgs),
    /// Compare two filings of a company (year over year): similarity per section, sentences added and removed
    Changes(ChangesArgs),
    /// List analysis types, or print one (`fintel workflows show NAME`) to copy and edit
    Workflows(WorkflowsArgs),
    /// Simulated SEC and Gemini endpoints, for tests, benchmarks and the demo
    Sim(SimArgs),
    /// Check keys, model, SEC User-Agent, data directory and free disk, spending no quota
    Doctor(DoctorArgs),
    /// Serve the dashboard: batches, keys, failures and results, live from the database
    Web(WebArgs),
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print one JSON document on stdout
    #[arg(long)]
    pub json: bool,
    /// Also send one tiny generation request (it costs one request of quota), so a parameter
    /// the model refuses is found and learned before a batch
    #[arg(long)]
    pub probe: bool,
}

#[derive(Debug, Args)]
pub struct WebArgs {
    /// Address to listen on; anything other than a loopback address prints a warning
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "HOST:PORT")]
    pub addr: String,
    /// Open the dashboard in the default browser
    #[arg(long)]
    pub open: bool,
}

#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BatchArgs {
    #[command(subcommand)]
    pub action: Option<BatchAction>,
    /// Companies: a CSV with a header (ticker, company_name, cik, priority) or one ticker per line
    pub file: Option<PathBuf>,
    /// The N most recent fiscal years of each company (more than 30 needs --yes)
    #[arg(long, value_name = "N")]
    pub years: Option<u32>,
    /// The same fixed fiscal years for every company: 2018-2024 or 2019,2021 (1993 to this year)
    #[arg(long, value_name = "YEARS", conflicts_with = "years")]
    pub fiscal_years: Option<String>,
    /// Analysis type (`fintel workflows` lists them)
    #[arg(long, default_value = "fundamental", value_name = "TYPE")]
    pub analysis_type: String,
    /// A name for the batch
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Priority of the whole batch (higher runs first)
    #[arg(
        long,
        default_value_t = 0,
        allow_negative_numbers = true,
        value_name = "P"
    )]
    pub priority: i64,
    /// Retries per task after its first attempt
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub max_retries: u32,
    /// Ask the model again even where a stored result has the same key
    #[arg(long)]
    pub force: bool,
    /// Record unknown tickers as skipped instead of refusing the file
    #[arg(long)]
    pub skip_unknown: bool,
    /// Let amended annual reports (10-K/A) be picked over originals
    #[arg(long)]
    pub include_amendments: bool,
    /// Request packing: `off` (one fiscal year per request), `2` or `3` (that many
    /// consecutive years of a company per request, each document cut to its share), `auto`
    /// (up to 3 where every document fits whole) [default: [run] pack, else off]
    #[arg(long, value_name = "off|2|3|auto")]
    pub pack: Option<fintel_engine::pack::Pack>,
    /// Start without showing the plan and asking (fintel asks only on a terminal); also
    /// confirms more than 30 years
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Resume a batch: the most recent incomplete one, or the given id (or unique prefix)
    #[arg(long, value_name = "ID", num_args = 0..=1, default_missing_value = "")]
    pub resume: Option<String>,
    /// Resume the batch with this id (same as --resume ID)
    #[arg(long, value_name = "ID", conflicts_with = "resume")]
    pub resume_id: Option<String>,
    /// With --resume: put failed tasks back in the queue first
    #[arg(long)]
    pub retry_failed: bool,
    /// With --resume: add this process to a batch another live process already runs (they
    /// share the work and the key pool); without it such a resume is refused
    #[arg(long)]
    pub join: bool,
    /// With --resume ID: take up a cancelled batch again (a bare --resume never picks one)
    #[arg(long)]
    pub reopen: bool,
    /// With --resume ID: go on with this model instead of the batch's (after its model was
    /// retired); the switch is recorded and every stored result keeps its own model
    #[arg(long, value_name = "MODEL")]
    pub switch_model: Option<String>,
    /// List the batches that can be resumed
    #[arg(long)]
    pub list_incomplete: bool,
    /// Accepted for compatibility; fintel uses no browser, so there is nothing to clean up
    #[arg(long, hide = true)]
    pub cleanup_chrome: bool,
    /// Print one JSON document on stdout
    #[arg(long)]
    pub json: bool,
    /// Model to use [env: FINTEL_MODEL; default: chosen from the provider's list]
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum BatchAction {
    /// Counts by state, and the reasons of skipped and failed tasks
    Status(StatusArgs),
    /// Stop a batch for good (stored results are kept)
    Cancel {
        /// Batch id or unique prefix (`fintel batch --list-incomplete` lists them)
        id: String,
        /// Print one JSON document on stdout
        #[arg(long)]
        json: bool,
    },
    /// Remove a batch and its tasks; results are kept unless --purge-results
    Delete {
        /// Batch id or unique prefix
        id: String,
        /// Also remove the results that no other batch uses
        #[arg(long)]
        purge_results: bool,
        /// Print one JSON document on stdout
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Batch id or unique prefix (default: the most recent batch)
    pub id: Option<String>,
    /// List every failed task
    #[arg(long)]
    pub failed: bool,
    /// List every skipped task
    #[arg(long)]
    pub skipped: bool,
    /// Print one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Ticker or CIK
    pub company: String,
    /// The N most recent fiscal years [default: 7]
    #[arg(long, value_name = "N")]
    pub years: Option<u32>,
    /// Fixed fiscal years instead: 2018-2024 or 2019,2021
    #[arg(long, value_name = "YEARS", conflicts_with = "years")]
    pub fiscal_years: Option<String>,
    /// Analysis type (`fintel workflows` lists them)
    #[arg(long, default_value = "fundamental", value_name = "TYPE")]
    pub analysis_type: String,
    /// Model to use [env: FINTEL_MODEL]
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
    /// Ask the model again even where a stored result has the same key
    #[arg(long)]
    pub force: bool,
    /// Request packing: `off` (one fiscal year per request), `2` or `3` (that many
    /// consecutive years of a company per request, each document cut to its share), `auto`
    /// (up to 3 where every document fits whole) [default: [run] pack, else off]
    #[arg(long, value_name = "off|2|3|auto")]
    pub pack: Option<fintel_engine::pack::Pack>,
    /// Confirm more than 30 years
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Print one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Number of simulated companies
    #[arg(long, default_value_t = 24, value_name = "N")]
    pub companies: usize,
    /// Fiscal years per company
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub years: u32,
    /// How many times faster than real time the demo's clock runs
    #[arg(long, default_value_t = 3600.0, value_name = "X")]
    pub speed: f64,
}

impl Default for DemoArgs {
    fn default() -> Self {
        DemoArgs {
            companies: 24,
            years: 3,
            speed: 3600.0,
        }
    }
}

#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub action: Option<KeysAction>,
    /// Print one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Re-enable a key that was disabled (by its name, e.g. GOOGLE_API_KEY_3)
    Enable {
        /// The key's name as `fintel keys` shows it, e.g. GOOGLE_API_KEY_3
        label: String,
    },
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Only this batch (id or unique prefix); default: every stored result
    #[arg(long, value_name = "ID")]
    pub batch_id: Option<String>,
    /// Only this analysis type
    #[arg(long, value_name = "TYPE")]
    pub analysis_type: Option<String>,
    /// completed, skipped, failed or all
    #[arg(long, default_value = "completed", value_name = "STATUS")]
    pub status_filter: String,
    /// csv, jsonl, parquet or xlsx
    #[arg(long, value_name = "FORMAT")]
    pub format: String,
    /// File to write, or - for stdout (csv and jsonl)
    #[arg(long, value_name = "PATH")]
    pub output: PathBuf,
    /// Replace an existing file
    #[arg(long)]
    pub force: bool,
    /// Print a JSON summary (rows, columns, path) on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ResultsArgs {
    /// Ticker or CIK
    pub company: String,
    /// Only this fiscal year
    #[arg(long, value_name = "YEAR")]
    pub year: Option<i32>,
    /// Only these fiscal years: 2018-2024 or 2019,2021 (as for `fintel batch`)
    #[arg(long, value_name = "YEARS", conflicts_with = "year")]
    pub fiscal_years: Option<String>,
    /// Only this analysis type
    #[arg(long, value_name = "TYPE")]
    pub analysis_type: Option<String>,
    /// Print one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  fintel screen --preset compounders\n  fintel screen \
--analysis-type scanner --sort scores.strategic_anomaly --where \"confidence_level >= MEDIUM\" \
--top 20\n  fintel screen --analysis-type fundamental --sort score --where \"balance_sheet.strength \
>= strong\" --show summary --format xlsx --output short-list.xlsx\n\nOperators: = != < <= > >= ~ \
(contains). Enums rank in their schema's order, the first listed highest: `>= MEDIUM` keeps HIGH \
and MEDIUM. Numbers sort numerically; missing values come last."
)]
pub struct ScreenArgs {
    /// The analysis type to screen (a --preset sets it)
    #[arg(long, value_name = "T")]
    pub analysis_type: Option<String>,
    /// A named screen: compounders (EON's scan: scanner, overall_alpha_score >= 70, confidence
    /// at least MEDIUM, top 20), strong_buys (multi, verdict = strong_buy) or shorts (multi,
    /// verdict <= sell), both by conviction; the other options refine it
    #[arg(long)]
    pub preset: Option<String>,
    /// The field to rank by, a dotted path into the result (score, balance_sheet.strength,
    /// scores.strategic_anomaly); highest first
    #[arg(long, value_name = "FIELD")]
    pub sort: Option<String>,
    /// Lowest first
    #[arg(long)]
    pub asc: bool,
    /// At most N companies
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,
    /// A condition every listed company passes: "FIELD OP VALUE", OP one of = != < <= > >= ~
    /// (repeatable)
    #[arg(long = "where", value_name = "FIELD OP VALUE")]
    pub conditions: Vec<String>,
    /// Only the results of this batch (id or unique prefix); default: every stored result
    #[arg(long)]
    pub batch_id: Option<String>,
    /// Each company's result for this fiscal year instead of its latest
    #[arg(long, value_name = "Y", conflicts_with = "latest")]
    pub fiscal_year: Option<i32>,
    /// Each company's latest fiscal year with a result (the default)
    #[arg(long)]
    pub latest: bool,
    /// More fields to show, comma-separated
    #[arg(long, value_name = "F1,F2", value_delimiter = ',')]
    pub show: Vec<String>,
    /// Write a file instead of the table: csv or xlsx (with --output)
    #[arg(long, requires = "output", conflicts_with = "json")]
    pub format: Option<String>,
    /// The file to write (with --format)
    #[arg(long, requires = "format")]
    pub output: Option<PathBuf>,
    /// Replace an existing --output file
    #[arg(long)]
    pub force: bool,
    /// Print a JSON array of {"ticker", "cik", "company_name", "fiscal_year", "value", "fields"}
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DbArgs {
    #[command(subcommand)]
    pub action: DbAction,
}

#[derive(Debug, Subcommand)]
pub enum DbAction {
    /// WAL checkpoint, optimise, quick check, backup with retention (run daily by a batch
    /// while it waits for the quota reset)
    Maintain {
        /// Backups kept [default: 7, or FINTEL_BACKUP_RETENTION]
        #[arg(long, value_name = "N")]
        retention: Option<usize>,
        /// Print one JSON document on stdout
        #[arg(long)]
        json: bool,
    },
    /// Full integrity check
    Check,
    /// An online backup, safe while a batch runs (default: the backups folder of the data
    /// directory)
    Backup {
        /// Where to write it (must not exist)
        #[arg(value_name = "PATH")]
        path: Option<PathBuf>,
        /// Print one JSON document on stdout
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub action: CacheAction,
}

#[derive(Debug, Subcommand)]
pub enum CacheAction {
    /// Documents cached, their size, oldest and newest
    Stats {
        /// Print one JSON document on stdout
        #[arg(long)]
        json: bool,
    },
    /// Remove cached documents older than DAYS
    Prune {
        /// Remove documents last used more than this many days ago
        #[arg(long, value_name = "DAYS")]
        older_than: u64,
        /// Print one JSON document on stdout
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Companies file, as for `fintel batch`
    pub file: PathBuf,
    /// The N most recent fiscal years of each company [default: 7]
    #[arg(long, value_name = "N")]
    pub years: Option<u32>,
    /// Fixed fiscal years instead: 2018-2024 or 2019,2021
    #[arg(long, value_name = "YEARS", conflicts_with = "years")]
    pub fiscal_years: Option<String>,
    /// Analysis type (`fintel workflows` lists them)
    #[arg(long, default_value = "fundamental", value_name = "TYPE")]
    pub analysis_type: String,
    /// Model whose stored results count [env: FINTEL_MODEL]
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
    /// Request packing: `off` (one fiscal year per request), `2` or `3` (that many
    /// consecutive years of a company per request, each document cut to its share), `auto`
    /// (up to 3 where every document fits whole) [default: [run] pack, else off]
    #[arg(long, value_name = "off|2|3|auto")]
    pub pack: Option<fintel_engine::pack::Pack>,
    /// Count unknown tickers as the batch would skip them, instead of refusing the file
    #[arg(long)]
    pub skip_unknown: bool,
    /// The batch's priority, as for `fintel batch`: the batches on the same keys with this
    /// priority or higher are served first
    #[arg(
        long,
        default_value_t = 0,
        allow_negative_numbers = true,
        value_name = "P"
    )]
    pub priority: i64,
    /// Print one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct FilingsArgs {
    /// Ticker or CIK
    pub company: String,
    /// The N most recent fiscal years [default: 7]
    #[arg(long, value_name = "N")]
    pub years: Option<u32>,
    /// Fixed fiscal years instead: 2018-2024 or 2019,2021
    #[arg(long, value_name = "YEARS", conflicts_with = "years")]
    pub fiscal_years: Option<String>,
    /// Only this form family: 10-K, 20-F or 40-F
    #[arg(long, value_name = "FORM")]
    pub form: Option<String>,
    /// Let amended annual reports (10-K/A) be picked over originals
    #[arg(long)]
    pub include_amendments: bool,
    /// Print one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TextArgs {
    /// A filing document (HTML or text) on disk
    pub file: PathBuf,
    /// Only this item, e.g. 7 or 1A
    #[arg(long, value_name = "ITEM")]
    pub section: Option<String>,
    /// Fit the text to this many tokens, as for the model
    #[arg(long, value_name = "TOKENS")]
    pub budget: Option<u64>,
    /// Show the inline-XBRL key financials
    #[arg(long)]
    pub facts: bool,
    /// Form of the document (10-K, 20-F); detected when omitted
    #[arg(long, value_name = "FORM")]
    pub form: Option<String>,
    /// Print one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ChangesArgs {
    /// The earlier filing document (HTML or text) on disk
    pub old: PathBuf,
    /// The later filing document (HTML or text) on disk
    pub new: PathBuf,
    /// Only this item, e.g. 1A or 7
    #[arg(long, value_name = "ITEM")]
    pub section: Option<String>,
    /// Form of both documents (10-K, 20-F); detected from each when omitted
    #[arg(long, value_name = "FORM")]
    pub form: Option<String>,
    /// Print one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct WorkflowsArgs {
    #[command(subcommand)]
    pub action: Option<WorkflowsAction>,
    /// Print one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum WorkflowsAction {
    /// Print a built-in analysis type's file, to copy into the workflows directory and edit
    Show {
        /// The analysis type, e.g. fundamental
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct SimArgs {
    #[command(subcommand)]
    pub action: SimAction,
}

#[derive(Debug, Subcommand)]
pub enum SimAction {
    /// Serve simulated SEC and Gemini endpoints until stopped
    Serve {
        /// Address to listen on (port 0: any free port; the first line printed is the URL)
        #[arg(long, default_value = "127.0.0.1:8089", value_name = "HOST:PORT")]
        addr: String,
        /// Simulator configuration (TOML); not `--config`, which names fintel's own file
        #[arg(long, value_name = "FILE")]
        sim_config: Option<PathBuf>,
        /// Serve the shared fixtures (real Apple submissions and filings) as well
        #[arg(long, value_name = "DIR")]
        fixtures: Option<PathBuf>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn undocumented(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if arg.is_hide_set() || id == "help" || id == "version" {
                continue;
            }
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                out.push(format!("{path} {id}"));
            }
        }
        for sub in cmd.get_subcommands() {
            if sub.get_about().is_none() && sub.get_name() != "help" {
                out.push(format!("{path} {} (the command)", sub.get_name()));
            }
            undocumented(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn every_command_flag_and_argument_has_help_text() {
        let mut missing = Vec::new();
        undocumented(&Cli::command(), "fintel", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:#?}");
        Cli::command().debug_assert();
    }
}
