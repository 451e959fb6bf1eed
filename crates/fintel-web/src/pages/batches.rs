//! The batches page: every batch with its state, progress, counts, pace and expected end.

use axum::extract::State;
use fintel_store::BatchState;
use jiff::Timestamp;
use maud::{html, Markup};

use crate::format;
use crate::pages::{
    batch_state_badge, layout, path_segment, simulated_clock_note, time, time_both, Nav,
};
use crate::queries::{self, BatchSummary};
use crate::{PageError, Shared};

/// Seconds between live updates of the batches page.
const REFRESH: u32 = 5;

pub(crate) async fn page(State(state): State<Shared>) -> Result<Markup, PageError> {
    let now = state.config.clock.now();
    let reset = fintel_time::next_reset(now, state.config.reset_buffer);
    let shared = state.clone();
    let batches = state
        .read(move |store| {
            let mut batches = queries::batches_overview(store, now)?;
            let c = &shared.config;
            queries::with_estimates(store, &mut batches, &c.buckets, c.reset_buffer, now)?;
            Ok(batches)
        })
        .await?;
    let simulated = state.config.clock.is_simulated();
    Ok(layout(
        "Batches",
        Nav::Batches,
        Some(REFRESH),
        html! {
            h1 { "Batches" }
            @if simulated { (simulated_clock_note(now)) }
            section #batches data-live {
                @if batches.is_empty() {
                    p.notice {
                        "No batch yet. Start one in a terminal with "
                        code { "fintel batch companies.csv --years 7" }
                        "; it shows up here as soon as it is created."
                    }
                }
                @for s in &batches {
                    (card(s, now, reset, true))
                }
            }
        },
    ))
}

/// A batch's card: state, progress bar with its figure, counts, pace and ETA. Shared with the
/// batch page (`linked`: the title links to it).
pub(crate) fn card(s: &BatchSummary, now: Timestamp, reset: Timestamp, linked: bool) -> Markup {
    let b = &s.batch;
    let ended = s.counts.ended();
    let total = s.expected_total();
    let href = format!("/batches/{}", path_segment(&b.id));
    html! {
        article.card.batch id={"batch-" (b.id)} data-batch=(b.id) data-state=(b.state.as_str()) {
            header {
                @if linked { h2 { a href=(href) { (b.title()) } } } @else { h2 { (b.title()) } }
                (batch_state_badge(b.state))
            }
            p.meta {
                code { (b.id) } " · " (b.analysis_type) " · " (b.model)
                " · created " (time(b.created_at))
                " · updated " (format::ago(now, b.updated_at))
            }
            p.state-line { (state_line(s, reset)) }
            div.progress {
                progress value=(ended) max=(total.max(1)) {}
                span.figure data-done=(ended) data-total=(total) {
                    (format::thousands(ended)) " / " (format::thousands(total)) " tasks ended ("
                    (format::percent(ended, total)) ")"
                }
            }
            dl.counts {
                div { dt { "completed" } dd data-completed=(s.counts.completed) { (format::thousands(s.counts.completed)) } }
                div { dt { "skipped" } dd { (format::thousands(s.counts.skipped)) } }
                div { dt { "failed" } dd { (format::thousands(s.counts.failed)) } }
                div { dt { "pending" } dd { (format::thousands(s.counts.pending)) } }
                div { dt { "running" } dd { (format::thousands(s.counts.running)) } }
                @if s.counts.resolving > 0 {
                    div { dt { "companies resolving" } dd { (format::thousands(s.counts.resolving)) } }
                }
            }
            @if let Some(pace) = pace_line(s, now) { p.meta.pace { (pace) } }
        }
    }
}

/// "process 1234 on host" for each live process, joined.
pub(crate) fn process_names(processes: &[fintel_store::LiveProcess]) -> String {
    processes
        .iter()
        .map(|p| p.describe())
        .collect::<Vec<_>>()
        .join(", ")
}

fn state_line(s: &BatchSummary, reset: Timestamp) -> Markup {
    let b = &s.batch;
    let reason = b.state_reason.as_deref().filter(|r| !r.is_empty());
    let resume = format!("fintel batch --resume {}", b.id);
    html! {
        @if let Some(first) = s.processes.first() {
            // A live process runs it: say which, instead of offering to resume it.
            "Running in " (process_names(&s.processes)) " since " (time_both(first.since)) ". "
        }
        @match b.state {
            BatchState::Running if b.stop_requested => {
                "Stop requested: the worker finishes the calls in flight, then stops."
            }
            BatchState::Running => {
                "Running."
                @if let Some(r) = reason { " " span.muted { (r) } }
            }
            BatchState::Pending => {
                "Created, not started yet; start it with " code { (resume) } "."
            }
            // The worker's reason names the instant it resumes (the real one, which may be a
            // back-off after the reset): then the line says it once, from the reason.
            BatchState::WaitingReset if reason.is_some_and(|r| r.contains(" at ")) => {
                "Waiting for the daily quota reset: " (reason.unwrap_or_default()) "."
            }
            BatchState::WaitingReset => {
                "Waiting for the daily quota reset at " (time_both(reset)) "."
                @if let Some(r) = reason { " " span.muted { (r) } }
            }
            BatchState::WaitingProvider => {
                "Waiting for the provider: " (reason.unwrap_or("repeated failures; probing until it answers")) "."
            }
            BatchState::WaitingDisk => {
                "Paused while the disk is low: " (reason.unwrap_or("free some space; it resumes by itself")) "."
            }
            BatchState::Stopped if !s.processes.is_empty() => {
                "Stopped" @if let Some(r) = reason { " (" (r) ")" } "."
            }
            BatchState::Stopped => {
                "Stopped" @if let Some(r) = reason { " (" (r) ")" } ". Resume with " code { (resume) } "."
            }
            BatchState::Cancelled => {
                "Cancelled" @if let Some(r) = reason { " (" (r) ")" } "; stored results are kept."
            }
            BatchState::Completed => {
                "Completed."
                @if s.counts.failed > 0 {
                    " " (s.counts.failed) " failed; retry them with " code { (resume) " --retry-failed" } "."
                }
            }
        }
    }
}

/// Tasks per hour recently, and when the batch is expected to finish: its model requests left
/// against each key bucket's quota left today and per day after (never a rate extrapolated
/// across a wait for the reset).
fn pace_line(s: &BatchSummary, now: Timestamp) -> Option<Markup> {
    if !s.batch.state.is_incomplete() {
        return None;
    }
    let remaining = s.remaining();
    Some(html! {
        @if s.first_started.is_some() {
            "Rate: " strong { (s.ended_last_hour) } " tasks in the last hour, "
            (format::thousands(s.ended_last_day)) " in the last 24 h. "
        }
        @match &s.eta {
            _ if remaining == 0 => { "Finishing." }
            Some(eta) if eta.quota_days <= 1 => {
                span.eta data-finish=(format::rfc3339(eta.finish)) {
                    "Expected to finish " strong { "today" } ", within today's quota."
                }
            }
            Some(eta) => {
                span.eta data-finish=(format::rfc3339(eta.finish)) {
                    "Expected to finish on " strong { (eta.finish_quota_date) }
                    " (quota day " (fintel_time::quota_day_number(s.batch.created_at, now).max(1))
                    " of " (fintel_time::quota_day_number(s.batch.created_at, eta.finish).max(1)) ")"
                    ", when that quota day opens at " (time(eta.finish))
                    ", in about " (format::duration(fintel_time::span_between(now, eta.finish))) "."
                }
            }
            None => { "Finish unknown: no configured key can send its requests." }
        }
        @if let (true, Some(after)) = (remaining > 0, fintel_time::ahead_words(&s.ahead)) {
            " " span.ahead {
                "Comes " (after) " (" (format::thousands(s.ahead.requests))
                " of their requests first)."
            }
        }
    })
}
