//! One batch: its card, the two actions, the resume command, progress over time, requests
//! per day, skipped and failed tasks grouped by reason, and its tasks with filters.

use axum::extract::{Path, Query, State};
use maud::{html, Markup};
use serde::Deserialize;

use crate::charts;
use crate::format;
use crate::pages::{
    batches, layout, path_segment, simulated_clock_note, state_badge, time, time_both, Nav,
};
use crate::queries::{self, TaskFilter, TaskRow, TASKS_PER_PAGE, TASK_KINDS, TASK_STATES};
use crate::{PageError, Shared};

const REFRESH: u32 = 10;
/// Pages of tasks beyond this are refused rather than computed.
const MAX_PAGE: u32 = 100_000;

/// The query string of the batch page.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct BatchQuery {
    state: Option<String>,
    kind: Option<String>,
    company: Option<String>,
    reason: Option<String>,
    page: Option<String>,
    notice: Option<String>,
    n: Option<String>,
}

fn one_of(
    what: &str,
    value: Option<&str>,
    allowed: &'static [&'static str],
) -> Result<Option<&'static str>, PageError> {
    match value
        .map(str::trim)
        .filter(|v| !v.is_empty() && *v != "all")
    {
        None => Ok(None),
        Some(v) => allowed
            .iter()
            .copied()
            .find(|a| *a == v)
            .map(Some)
            .ok_or_else(|| {
                PageError::BadRequest(format!(
                    "unknown task {what} {v:?}: use one of {}, or leave it empty for all",
                    allowed.join(", ")
                ))
            }),
    }
}

impl BatchQuery {
    fn filter(&self) -> Result<TaskFilter, PageError> {
        let page = match self
            .page
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            None => 0,
            Some(p) => {
                p.parse::<u32>()
                    .ok()
                    .filter(|p| *p >= 1 && *p <= MAX_PAGE)
                    .ok_or_else(|| {
                        PageError::BadRequest(format!(
                            "page {p:?} is not a page number: use 1 to {MAX_PAGE}"
                        ))
                    })?
                    - 1
            }
        };
        Ok(TaskFilter {
            state: one_of("state", self.state.as_deref(), &TASK_STATES)?,
            kind: one_of("kind", self.kind.as_deref(), &TASK_KINDS)?,
            company: self.company.clone().filter(|c| !c.trim().is_empty()),
            reason: self.reason.clone().filter(|r| !r.is_empty()),
            page,
        })
    }

    /// The message for what an action just did (fixed texts: nothing from the URL is shown).
    fn notice(&self) -> Option<String> {
        let n: Option<u64> = self.n.as_deref().and_then(|n| n.parse().ok());
        match self.notice.as_deref()? {
            "stop" => Some(
                "Stop requested. The process running this batch sees it within seconds while \
                 it is sending (within a minute while it waits), finishes the calls in flight \
                 and stops; its state then shows stopped."
                    .into(),
            ),
            "requeued" => Some(format!(
                "{} failed task(s) are pending again. A process running this batch picks them \
                 up; if none is, resume it with the command below.",
                n.unwrap_or(0)
            )),
            _ => None,
        }
    }
}

/// The link to the task table with this filter.
fn filter_href(batch_id: &str, f: &TaskFilter, page: u32) -> String {
    let mut q = vec![];
    if let Some(s) = f.state {
        q.push(format!("state={s}"));
    }
    if let Some(k) = f.kind {
        q.push(format!("kind={k}"));
    }
    if let Some(c) = &f.company {
        q.push(format!("company={}", path_segment(c)));
    }
    if let Some(r) = &f.reason {
        q.push(format!("reason={}", path_segment(r)));
    }
    if page > 0 {
        q.push(format!("page={}", page + 1));
    }
    format!(
        "/batches/{}{}{}#tasks",
        path_segment(batch_id),
        if q.is_empty() { "" } else { "?" },
        q.join("&")
    )
}

pub(crate) async fn page(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(query): Query<BatchQuery>,
) -> Result<Markup, PageError> {
    let filter = query.filter()?;
    let now = state.config.clock.now();
    let reset = fintel_time::next_reset(now, state.config.reset_buffer);
    let task_filter = filter.clone();
    let shared = state.clone();
    let (detail, tasks, models) = state
        .read(move |store| {
            let mut detail = queries::batch_detail(store, &id, now)?;
            let c = &shared.config;
            queries::with_estimates(
                store,
                std::slice::from_mut(&mut detail.summary),
                &c.buckets,
                c.reset_buffer,
                now,
            )?;
            let tasks = queries::tasks(store, &detail.summary.batch.id, &task_filter)?;
            let batch_id = &detail.summary.batch.id;
            let models = (
                store.batch_result_models(batch_id)?,
                store.model_switches(batch_id)?,
            );
            Ok((detail, tasks, models))
        })
        .await?;
    let (result_models, switches) = models;
    let b = &detail.summary.batch;
    let counts = &detail.summary.counts;
    let daily_limit: u64 = state
        .config
        .buckets
        .iter()
        .filter(|bk| !bk.keys.is_empty())
        .map(|bk| u64::from(bk.limits.requests_per_day))
        .sum();
    let resume = match b.state {
        s if s.is_incomplete() => Some(format!("fintel batch --resume {}", b.id)),
        fintel_store::BatchState::Completed if counts.failed > 0 => {
            Some(format!("fintel batch --resume {} --retry-failed", b.id))
        }
        _ => None,
    };
    let token = state.config.token.as_str().to_string();
    let has_next = tasks.len() > TASKS_PER_PAGE as usize;
    let shown = &tasks[..tasks.len().min(TASKS_PER_PAGE as usize)];
    let id_seg = path_segment(&b.id);
    Ok(layout(
        b.title(),
        Nav::Batches,
        Some(REFRESH),
        html! {
            h1 { (b.title()) }
            @if state.config.clock.is_simulated() { (simulated_clock_note(now)) }
            @if let Some(n) = query.notice() { p.notice { (n) } }
            section #summary data-live {
                (batches::card(&detail.summary, now, reset, false))
            }
            @if result_models.len() > 1 || !switches.is_empty() {
                section #models data-live {
                    h2 { "Models" }
                    p {
                        "This batch's results come from " (result_models.len()) " model"
                        @if result_models.len() != 1 { "s" }
                        "; each result keeps the model that produced it."
                    }
                    div.table-wrap { table {
                        thead { tr { th { "model" } th.num { "results" } } }
                        tbody {
                            @for m in &result_models {
                                tr { td { code { (m.model) } } td.num { (format::thousands(m.results)) } }
                            }
                        }
                    } }
                    @for s in &switches {
                        p.meta {
                            "Switched " (time_both(s.at)) " from " code { (s.from_model) }
                            " to " code { (s.to_model) } "."
                        }
                    }
                }
            }
            section #actions data-live {
                h2 { "Resume and actions" }
                @if let Some(first) = detail.summary.processes.first() {
                    p {
                        "Running in " (batches::process_names(&detail.summary.processes))
                        " since " (time_both(first.since)) ". To add a process (same data directory):"
                    }
                    pre { code { "fintel batch --resume " (b.id) " --join" } }
                } @else {
                @match &resume {
                    Some(cmd) => { p { "Resume command (in a terminal, from anywhere):" } pre { code { (cmd) } } }
                    None => { p.muted { "Nothing to resume: the batch is " (b.state.as_str().replace('_', " ")) "." } }
                }
                }
                div.actions {
                    @if b.state.is_incomplete() && !b.stop_requested {
                        form method="post" action={"/batches/" (id_seg) "/stop"} {
                            input type="hidden" name="token" value=(token);
                            button.danger type="submit" { "Stop this batch" }
                        }
                    }
                    @if counts.failed > 0 {
                        form method="post" action={"/batches/" (id_seg) "/requeue-failed"} {
                            input type="hidden" name="token" value=(token);
                            button type="submit" { "Re-queue " (counts.failed) " failed task(s)" }
                        }
                    }
                }
                @if b.state.is_incomplete() {
                    p.meta {
                        "Stopping asks the process running the batch to finish its calls in flight \
                         and stop, as Ctrl+C does; nothing is lost and the batch can be resumed."
                    }
                }
            }
            section #charts data-live {
                h2 { "Progress over time" }
                (charts::progress(&detail.progress, detail.summary.expected_total()))
                h2 { "Requests per day" }
                p.meta { "Model requests sent for this batch per Pacific quota day"
                    @if daily_limit > 0 { "; the dashed line is all configured keys' daily limit" } "." }
                (charts::requests_per_day(&detail.requests_per_day, (daily_limit > 0).then_some(daily_limit)))
            }
            section #reasons data-live {
                h2 { "Skipped and failed, by reason" }
                @if detail.reasons.is_empty() {
                    p.muted { "No task was skipped or failed." }
                } @else {
                    div.table-wrap { table {
                        thead { tr { th { "state" } th.num { "tasks" } th { "reason" } } }
                        tbody {
                            @for r in &detail.reasons {
                                @let f = TaskFilter {
                                    state: TASK_STATES.iter().copied().find(|s| *s == r.state),
                                    reason: (r.reason != "(no reason recorded)").then(|| r.reason.clone()),
                                    ..TaskFilter::default()
                                };
                                tr {
                                    td { (state_badge(&r.state)) }
                                    td.num { a href=(filter_href(&b.id, &f, 0)) { (format::thousands(r.count)) } }
                                    td.reason { (r.reason) }
                                }
                            }
                        }
                    } }
                }
            }
            section #tasks {
                h2 { "Tasks" }
                (filter_form(&b.id, &filter))
                @if shown.is_empty() {
                    p.muted { "No task matches." }
                } @else {
                    div.table-wrap { (task_table(shown)) }
                }
                div.pager {
                    @if filter.page > 0 { a href=(filter_href(&b.id, &filter, filter.page - 1)) { "← previous" } }
                    span.muted { "page " (filter.page + 1) }
                    @if has_next { a href=(filter_href(&b.id, &filter, filter.page + 1)) { "next →" } }
                }
            }
            @if let Some(f) = &detail.input_file { p.meta { "Input file: " code { (f) } } }
        },
    ))
}

fn filter_form(batch_id: &str, f: &TaskFilter) -> Markup {
    html! {
        form.filters method="get" action={"/batches/" (path_segment(batch_id)) "#tasks"} {
            label { "state"
                select name="state" {
                    option value="" selected[f.state.is_none()] { "all" }
                    @for s in TASK_STATES { option value=(s) selected[f.state == Some(s)] { (s) } }
                }
            }
            label { "kind"
                select name="kind" {
                    option value="" selected[f.kind.is_none()] { "year and aggregate" }
                    @for k in TASK_KINDS { option value=(k) selected[f.kind == Some(k)] { (k) } }
                }
            }
            label { "company"
                input type="search" name="company" placeholder="ticker or CIK" value=[f.company.as_deref()];
            }
            @if let Some(r) = &f.reason { input type="hidden" name="reason" value=(r); }
            button type="submit" { "Filter" }
            @if f.reason.is_some() { span.meta { "only the reason: " (f.reason.as_deref().unwrap_or("")) } }
        }
    }
}

fn task_table(tasks: &[TaskRow]) -> Markup {
    html! {
        table.tasks {
            thead { tr {
                th { "company" } th { "year" } th { "kind" } th { "state" } th.num { "attempts" }
                th { "reason" } th { "updated" } th { "" }
            } }
            tbody {
                @for t in tasks {
                    tr {
                        td {
                            @match (&t.ticker, t.cik) {
                                (Some(ticker), _) => { a href={"/companies/" (path_segment(ticker))} { (ticker) } }
                                (None, Some(cik)) => { a href={"/companies/" (cik)} { "CIK " (cik) } }
                                (None, None) => { span.muted { "unknown" } }
                            }
                            @if let Some(n) = &t.company_name { br; span.meta { (n) } }
                        }
                        td { @if let Some(y) = t.fiscal_year { "FY" (y) } @if let Some(f) = &t.form { " " span.muted { (f) } } }
                        td { (t.kind) }
                        td { (state_badge(&t.state)) }
                        td.num { (t.attempts) }
                        td.reason { (t.reason.as_deref().unwrap_or("")) }
                        td { (time(t.updated_at)) }
                        td { @if t.kind != "resolve" { a href={"/tasks/" (t.id)} { "what the model read" } } }
                    }
                }
            }
        }
    }
}
