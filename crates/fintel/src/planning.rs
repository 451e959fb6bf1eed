//! What a batch would be before it exists: the fiscal years asked for (checked against the
//! calendar), the companies found in SEC's list (with "did you mean" for the others), the
//! model requests left after stored results, and the quota-aware finish. `fintel plan` prints
//! it; `fintel batch FILE` shows it and asks before starting when run on a terminal.

use std::io::IsTerminal;

use anyhow::Result;
use fintel_engine::{input::InputRow, pack::Pack, YearsSpec};
use fintel_time::{queued_eta, Ahead, QueuedBatch, QuotaEta};
use fintel_workflows::Workflow;

use crate::app::App;
use crate::exit::usage;

/// The first fiscal year EDGAR can have an annual report for.
pub const FIRST_EDGAR_YEAR: i32 = 1993;

/// More fiscal years than this per company is most likely a slip of the keyboard.
pub const MANY_YEARS: u32 = 30;

/// The fiscal years from `--years N` / `--fiscal-years LIST` (or `default` when neither is
/// given), refusing years after `this_year` or before EDGAR existed.
pub fn years_spec(
    years: Option<u32>,
    fiscal_years: Option<&str>,
    default: Option<u32>,
    this_year: i32,
) -> Result<YearsSpec> {
    let spec = match (years, fiscal_years, default) {
        (Some(_), Some(_), _) => {
            return Err(usage(
                "give either --years N or --fiscal-years LIST, not both",
            ))
        }
        (Some(n), None, _) | (None, None, Some(n)) => YearsSpec::Latest(n),
        (None, Some(text), _) => YearsSpec::parse_explicit(text)?,
        (None, None, None) => {
            return Err(usage(
                "say which fiscal years: --years N (the latest N of each company) or \
                 --fiscal-years 2018-2024",
            ))
        }
    };
    match &spec {
        YearsSpec::Latest(0) => return Err(usage("--years must be at least 1")),
        YearsSpec::Explicit(list) => {
            if let Some(&future) = list.iter().find(|&&y| y > this_year) {
                return Err(usage(format!(
                    "fiscal year {future} is in the future (it is {this_year} now): no annual \
                     report for it exists yet; ask for fiscal years {FIRST_EDGAR_YEAR} to \
                     {this_year}"
                )));
            }
            if let Some(&early) = list.iter().find(|&&y| y < FIRST_EDGAR_YEAR) {
                return Err(usage(format!(
                    "fiscal year {early} is before EDGAR ({FIRST_EDGAR_YEAR}): SEC has no \
                     electronic filing for it"
                )));
            }
        }
        YearsSpec::Latest(_) => {}
    }
    Ok(spec)
}

/// More than [`MANY_YEARS`] fiscal years per company needs `--yes`; with it, a warning.
pub fn many_years(spec: &YearsSpec, yes: bool, this_year: i32) -> Result<Option<String>> {
    let n = spec.count();
    if n <= MANY_YEARS {
        return Ok(None);
    }
    let most = this_year - FIRST_EDGAR_YEAR + 1;
    let what = format!(
        "{n} fiscal years per company is a lot: EDGAR starts in {FIRST_EDGAR_YEAR}, so at most \
         {most} annual reports can exist, and every year is a model request"
    );
    if yes {
        Ok(Some(format!("warning: {what}")))
    } else {
        Err(usage(format!(
            "{what}. Add --yes if you mean it, or ask for fewer (--years 7)"
        )))
    }
}

/// A company row SEC does not list.
#[derive(Debug, Clone)]
pub struct Unknown {
    pub line: u64,
    pub shown: String,
    /// Close tickers SEC does list, closest first.
    pub suggestions: Vec<String>,
}

impl Unknown {
    fn describe(&self) -> String {
        if self.suggestions.is_empty() {
            format!("line {}: {}", self.line, self.shown)
        } else {
            format!(
                "line {}: {} (did you mean {}?)",
                self.line,
                self.shown,
                self.suggestions.join(", ")
            )
        }
    }
}

/// The refusal of a file with unknown tickers, each with its line and suggestions.
pub fn unknown_error(unknown: &[Unknown]) -> anyhow::Error {
    let list: Vec<String> = unknown
        .iter()
        .map(|u| format!("  {}", u.describe()))
        .collect();
    usage(format!(
        "{} ticker(s) not found in SEC's company list:\n{}\nFix them (a delisted company can be \
         given by its CIK in a `cik` column), or pass --skip-unknown to record them as skipped \
         and go on",
        unknown.len(),
        list.join("\n")
    ))
}

/// A batch before it exists.
#[derive(Debug, Clone)]
pub struct Plan {
    pub companies: usize,
    pub unknown: Vec<Unknown>,
    pub years: u32,
    pub analysis_type: String,
    pub requests_total: u64,
    pub already_stored: u64,
    pub requests_needed: u64,
    pub requests_per_day: u64,
    /// Buckets in effect: configured, merged where the provider named one project.
    pub buckets: usize,
    pub keys: usize,
    /// The capacity assumption the plan rests on ([`crate::projects::capacity_line`]);
    /// `None` without buckets.
    pub assumption: Option<String>,
    pub eta: Option<QuotaEta>,
    /// The other batches on these keys served before this one.
    pub ahead: Ahead,
    /// The pack mode the requests are counted with.
    pub pack: Pack,
    /// For a batch unpacked and longer than a quota day: its requests and quota days with
    /// `--pack 2`, to say what packing would save.
    pub with_pack_2: Option<(u64, u64)>,
}

impl Plan {
    /// The plan in words, for `fintel plan` and the confirmation before a batch starts.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{} companies x {} years of {}: {} model requests ({} already stored), {} unknown \
             ticker(s)\n",
            self.companies,
            self.years,
            self.analysis_type,
            self.requests_needed,
            self.already_stored,
            self.unknown.len()
        );
        for u in &self.unknown {
            s.push_str(&format!("  unknown: {}\n", u.describe()));
        }
        match &self.eta {
            _ if self.requests_needed == 0 => {
                s.push_str("nothing to ask the model: every result is stored already\n")
            }
            Some(eta) => {
                let after = match fintel_time::ahead_words(&self.ahead) {
                    Some(words) => format!(
                        ", {words} ({} of their requests first)",
                        thousands(self.ahead.requests)
                    ),
                    None => String::new(),
                };
                s.push_str(&format!(
                    "at {} requests/day over {} bucket(s): {} quota day(s), {}{after}\n",
                    self.requests_per_day,
                    self.buckets,
                    eta.quota_days,
                    crate::outlook::describe(eta, None, eta.finish)
                ));
                if let Some(line) = self.packing_line() {
                    s.push_str(&line);
                }
            }
            None => s.push_str("no usable key: set GOOGLE_API_KEY_1.. to get a finish date\n"),
        }
        if let (Some(assumption), true) = (&self.assumption, self.requests_total > 0) {
            s.push_str(assumption);
            s.push('\n');
        }
        s
    }
}

impl Plan {
    /// What `--pack 2` would save, or with packing on how the requests were counted.
    fn packing_line(&self) -> Option<String> {
        let eta = self.eta.as_ref()?;
        match (self.pack, self.with_pack_2) {
            (Pack::Off, Some((requests, days))) => Some(format!(
                "{} requests, {} days; with --pack 2: {} requests, {} days (two consecutive \
                 fiscal years per request; see `fintel batch --help`)\n",
                thousands(self.requests_needed),
                eta.quota_days,
                thousands(requests),
                days
            )),
            (Pack::Off, None) => None,
            (Pack::Auto, _) => Some(
                "packed with --pack auto: counted as if every document paired by three; \
                 documents too large for a share go alone, so it may take more\n"
                    .to_string(),
            ),
            (Pack::Years(n), _) => Some(format!(
                "packed with --pack {n}: {n} consecutive fiscal years per request\n"
            )),
        }
    }
}

/// `7000` as `7,000`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Model requests of one company with `left` of its `per_company` tasks still to run (the
/// last of them the aggregate when `multi_year`), packed by `pack`.
pub fn company_requests(left: u64, multi_year: bool, pack: Pack) -> u64 {
    if multi_year && left > 0 {
        pack.requests_for(left - 1) + 1
    } else {
        pack.requests_for(left)
    }
}

/// Looks the rows up in SEC's list and counts the model requests left after stored results
/// (same analysis version and model; of any model while none is configured or chosen yet),
/// against the quota of the buckets in effect (configured,
/// merged where keys were learned to share a project).
pub async fn make_plan(
    app: &App,
    rows: &[InputRow],
    years: &YearsSpec,
    workflow: &Workflow,
    pack: Pack,
    priority: i64,
) -> Result<Plan> {
    let list = app
        .edgar()?
        .company_list()
        .await
        .map_err(|e| anyhow::anyhow!("SEC: {e}"))?;
    let mut ciks: Vec<u64> = Vec::new();
    let mut unknown = Vec::new();
    for row in rows {
        let found = match (row.cik, &row.ticker) {
            (Some(cik), _) => list.by_cik(cik).map(|e| e.cik).or(Some(cik)),
            (None, Some(t)) => list.resolve(t).map(|e| e.cik),
            (None, None) => None,
        };
        match found {
            Some(cik) => ciks.push(cik),
            None => {
                let shown = row.raw_ticker.clone().unwrap_or_default();
                let suggestions = list
                    .suggest(&shown, 3)
                    .into_iter()
                    .map(|e| e.ticker.clone())
                    .collect();
                unknown.push(Unknown {
                    line: row.line,
                    shown,
                    suggestions,
                });
            }
        }
    }
    ciks.sort_unstable();
    ciks.dedup();
    let needs_model = workflow.kind == fintel_workflows::Kind::Llm;
    let per_company = if needs_model {
        u64::from(years.count()) + u64::from(workflow.is_multi_year())
    } else {
        0
    };
    let store = app.existing_store()?;
    let mut stored = 0u64;
    // Tasks left per company: packing groups each company's own years.
    let mut left_per_company: Vec<u64> = vec![per_company; ciks.len()];
    if let Some(store) = &store {
        let conn = store.conn();
        let mut stmt = conn.prepare(
            "SELECT COUNT(*) FROM results WHERE cik = ?1 AND analysis_type = ?2 \
             AND analysis_version = ?3 AND (?4 IS NULL OR model = ?4)",
        )?;
        for cik in &ciks {
            let n: i64 = stmt.query_row(
                (*cik as i64, &workflow.name, &workflow.version, app.model()),
                |r| r.get(0),
            )?;
            let done = (n.max(0) as u64).min(per_company);
            stored += done;
            if let Some(i) = ciks.iter().position(|c| c == cik) {
                left_per_company[i] = per_company - done;
            }
        }
    }
    let multi = workflow.is_multi_year();
    let requests_with = |p: Pack| -> u64 {
        left_per_company
            .iter()
            .map(|&left| company_requests(left, multi, p))
            .sum()
    };
    let requests_total = ciks.len() as u64 * company_requests(per_company, multi, pack);
    let requests_needed = requests_with(pack);
    let now = app.clock.now();
    let (buckets, _) = crate::projects::effective_buckets(app, store.as_deref())?;
    let capacities = crate::outlook::capacities(&buckets, store.as_deref(), now)?;
    // A new batch is served after every batch on these keys of its priority or higher.
    let queue = match &store {
        Some(s) => crate::outlook::batch_queue(s)?,
        None => Vec::new(),
    };
    let planned = |requests: u64| QueuedBatch {
        id: String::new(),
        priority,
        created_at: now,
        requests,
    };
    // What the batches served first still have open of the same work, this one reuses once
    // they store it: only the rest is its own to send after theirs.
    let before: Vec<String> = fintel_time::served_before(&queue, &planned(requests_needed))
        .into_iter()
        .map(|b| b.id.clone())
        .collect();
    let mut own_left = left_per_company.clone();
    if let (Some(store), false) = (&store, before.is_empty()) {
        for (cik, left) in ciks.iter().zip(own_left.iter_mut()) {
            let shared = store.open_model_tasks_of_company(
                &before,
                *cik,
                &workflow.name,
                &workflow.version,
            )?;
            *left = left.saturating_sub(shared);
        }
    }
    let own_with = |p: Pack| -> u64 {
        own_left
            .iter()
            .map(|&left| company_requests(left, multi, p))
            .sum()
    };
    let (eta, ahead) = queued_eta(
        &queue,
        &planned(own_with(pack)),
        &capacities,
        now,
        app.config.reset_buffer,
    );
    let with_pack_2 = match (&eta, pack) {
        (Some(e), Pack::Off) if e.quota_days > 1 && needs_model => {
            let packed = requests_with(Pack::Years(2));
            queued_eta(
                &queue,
                &planned(own_with(Pack::Years(2))),
                &capacities,
                now,
                app.config.reset_buffer,
            )
            .0
            .map(|p| (packed, p.quota_days))
        }
        _ => None,
    };
    Ok(Plan {
        companies: ciks.len(),
        unknown,
        years: years.count(),
        analysis_type: workflow.name.clone(),
        requests_total,
        already_stored: stored,
        requests_needed,
        requests_per_day: capacities.iter().map(|c| c.per_day).sum(),
        buckets: buckets.len(),
        keys: buckets.iter().map(|b| b.keys.len()).sum(),
        assumption: (!buckets.is_empty())
            .then(|| crate::projects::capacity_line_for(app.config.provider, &buckets)),
        eta,
        ahead,
        pack,
        with_pack_2,
    })
}

/// Whether to show the plan and ask before starting: only when someone can answer (stdin and
/// stderr are a terminal), never with `--yes` or `--json`.
pub fn should_confirm(
    yes: bool,
    json: bool,
    stdin_is_terminal: bool,
    stderr_is_terminal: bool,
) -> bool {
    !yes && !json && stdin_is_terminal && stderr_is_terminal
}

/// Shows the plan on a terminal and asks to start; `true` to go on. Without a terminal (or
/// with `--yes`/`--json`) it does not ask.
pub fn confirm(plan: &Plan, yes: bool, json: bool) -> Result<bool> {
    if !should_confirm(
        yes,
        json,
        std::io::stdin().is_terminal(),
        std::io::stderr().is_terminal(),
    ) {
        return Ok(true);
    }
    crate::pipes::err(&plan.to_text());
    crate::pipes::err("Start this batch? [y/N] (--yes skips this question) ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(is_yes(&answer))
}

fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_only_on_a_terminal_and_never_with_yes_or_json() {
        // (yes, json, stdin tty, stderr tty) -> ask
        let table = [
            ((false, false, true, true), true),
            ((true, false, true, true), false),
            ((false, true, true, true), false),
            ((false, false, false, true), false),
            ((false, false, true, false), false),
            ((false, false, false, false), false),
        ];
        for ((yes, json, i, e), expected) in table {
            assert_eq!(
                should_confirm(yes, json, i, e),
                expected,
                "{yes} {json} {i} {e}"
            );
        }
        for (answer, expected) in [("y\n", true), ("YES\n", true), ("\n", false), ("n", false)] {
            assert_eq!(is_yes(answer), expected, "{answer:?}");
        }
    }

    #[test]
    fn fiscal_years_are_checked_against_the_calendar_and_edgar() {
        let ok = |y: Option<u32>, f: Option<&str>, d: Option<u32>| years_spec(y, f, d, 2026);
        assert!(matches!(ok(Some(7), None, None), Ok(YearsSpec::Latest(7))));
        assert!(matches!(
            ok(None, None, Some(10)),
            Ok(YearsSpec::Latest(10))
        ));
        assert!(
            matches!(ok(None, Some("2019-2026"), None), Ok(YearsSpec::Explicit(v)) if v.len() == 8)
        );
        // (flags, words the refusal must contain)
        let refused: &[(Option<u32>, Option<&str>, &str)] = &[
            (None, Some("2024-2031"), "2027 is in the future"),
            (None, Some("1926-2006"), "1993"),
            (Some(0), None, "at least 1"),
            (None, None, "say which fiscal years"),
        ];
        for (years, fiscal, words) in refused {
            let err = ok(*years, *fiscal, None).expect_err("refused");
            assert!(
                format!("{err:#}").contains(words),
                "{years:?} {fiscal:?}: {err:#}"
            );
            assert_eq!(crate::exit::code_of(&err), crate::exit::USAGE);
        }
    }

    #[test]
    fn more_than_thirty_years_needs_yes() {
        assert!(many_years(&YearsSpec::Latest(30), false, 2026)
            .unwrap()
            .is_none());
        let err = many_years(&YearsSpec::Latest(100), false, 2026).unwrap_err();
        assert!(format!("{err}").contains("--yes"), "{err}");
        let warning = many_years(&YearsSpec::Latest(100), true, 2026)
            .unwrap()
            .unwrap();
        assert!(
            warning.starts_with("warning: 100 fiscal years"),
            "{warning}"
        );
    }
}
