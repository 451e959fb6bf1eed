//! Progress on stderr: a live bar on a terminal, plain log lines otherwise. Messages from the
//! engine (disabled keys, outages) are printed either way.

use std::io::IsTerminal;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use fintel_engine::{Level, Observer, Progress};
use fintel_store::BatchState;
use fintel_time::local_and_pacific;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::logging::RUN_TARGET;

/// The quota-aware finish estimate in words at an instant (see [`crate::outlook`]).
pub type Estimator = Box<dyn Fn(jiff::Timestamp) -> Option<String> + Send + Sync>;

/// Shows a batch's progress.
pub struct Display {
    bar: Option<ProgressBar>,
    state: Mutex<LineState>,
    quiet: bool,
    estimator: OnceLock<Estimator>,
}

struct LineState {
    last_line: Option<Instant>,
    last_state: Option<BatchState>,
    /// The first snapshot's (clock time, tasks ended), for the rate.
    first: Option<(jiff::Timestamp, u64)>,
    /// The last finish estimate, refreshed with each plain line (it reads the database).
    eta: Option<String>,
}

impl Display {
    /// A display for stderr; `quiet` prints nothing but warnings (used with `--json`).
    pub fn new(quiet: bool) -> Display {
        let bar = (!quiet && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none())
            .then(|| {
                // The message says "done X of Y"; until the first report the bar is empty, not
                // the full bar indicatif draws for a length of 0.
                let (pos, len) = bar_fill(0, 0);
                let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
                bar.set_position(pos);
                bar.set_style(
                    ProgressStyle::with_template("{bar:30} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar.enable_steady_tick(Duration::from_millis(500));
                bar
            });
        Display {
            bar,
            state: Mutex::new(LineState {
                last_line: None,
                last_state: None,
                first: None,
                eta: None,
            }),
            quiet,
            estimator: OnceLock::new(),
        }
    }

    /// Sets how the finish estimate is computed (once the batch is known).
    pub fn set_estimator(&self, estimator: Estimator) {
        let _ = self.estimator.set(estimator);
    }

    /// Prints a line without breaking the bar, and logs it.
    pub fn println(&self, line: &str) {
        tracing::info!(target: RUN_TARGET, "{line}");
        self.print(line);
    }

    fn print(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => crate::pipes::err(&format!("{line}\n")),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The bar's position and length for `done` of `total`: never a full bar for 0 of 0.
fn bar_fill(done: u64, total: u64) -> (u64, u64) {
    (done.min(total), total.max(1))
}

fn summary(p: &Progress, rate_per_hour: Option<f64>, eta: Option<&str>) -> String {
    let c = &p.counts;
    let mut s = format!(
        "done {} of {} (skipped {}, failed {})",
        c.ended(),
        c.total,
        c.skipped,
        c.failed
    );
    if c.resolving > 0 {
        s.push_str(&format!(", {} companies still to resolve", c.resolving));
    }
    if let Some(rate) = rate_per_hour.filter(|r| *r > 0.0) {
        s.push_str(&format!(", {rate:.0}/h"));
    }
    // The estimate counts quota days, never "at this rate": a rate measured before a wait for
    // the reset says nothing about the hours of that wait.
    if let Some(eta) = eta.filter(|_| c.ended() < c.total) {
        s.push_str(&format!(", {eta}"));
    }
    match p.state {
        BatchState::WaitingReset | BatchState::WaitingProvider | BatchState::WaitingDisk => {
            s.push_str(&format!(
                " - {}: {}",
                p.state.as_str(),
                p.state_reason.as_deref().unwrap_or("")
            ));
        }
        _ => {}
    }
    s
}

impl Observer for Display {
    fn progress(&self, p: &Progress) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let done = p.counts.ended();
        // The rate is over the batch's clock, so it includes quota waits and a fake clock's
        // speed-up alike.
        let (t0, first) = *st.first.get_or_insert((p.now, done));
        let hours = fintel_time::span_between(t0, p.now).as_secs_f64() / 3600.0;
        let rate = (hours > 0.0 && done > first).then(|| (done - first) as f64 / hours);
        // Plain lines (and the log file): on every state change, else at most every 10 s.
        let changed = st.last_state != Some(p.state);
        let due = st
            .last_line
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(10));
        let print = changed || due || done == p.counts.total;
        if print {
            if let Some(estimate) = self.estimator.get() {
                st.eta = estimate(p.now);
            }
        }
        let line = summary(p, rate, st.eta.as_deref());
        if print {
            st.last_line = Some(Instant::now());
            st.last_state = Some(p.state);
            tracing::info!(target: RUN_TARGET, "{line}");
        }
        if let Some(bar) = &self.bar {
            let (pos, len) = bar_fill(done, p.counts.total);
            bar.set_length(len);
            bar.set_position(pos);
            bar.set_message(line);
        } else if print && !self.quiet {
            crate::pipes::err(&format!("[{}] {}\n", local_and_pacific(p.now), line));
        }
    }

    fn message(&self, level: Level, text: &str) {
        let prefix = match level {
            Level::Info => "",
            Level::Warn => "warning: ",
        };
        if level == Level::Warn || !self.quiet {
            self.print(&format!("{prefix}{text}"));
        }
        match level {
            Level::Info => tracing::info!(target: RUN_TARGET, "{text}"),
            Level::Warn => tracing::warn!(target: RUN_TARGET, "{text}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fintel_store::TaskCounts;

    fn progress(state: BatchState, completed: u64, total: u64) -> Progress {
        Progress {
            counts: TaskCounts {
                total,
                completed,
                pending: total - completed,
                ..TaskCounts::default()
            },
            state,
            state_reason: Some("every key's daily quota is used".into()),
            now: "2026-03-02T23:00:00Z".parse().expect("instant"),
        }
    }

    #[test]
    fn the_bar_is_empty_at_0_of_0_and_full_only_when_done() {
        // (done, total) -> (position, length)
        for (done, total, expected) in [(0, 0, (0, 1)), (0, 45, (0, 45)), (45, 45, (45, 45))] {
            assert_eq!(bar_fill(done, total), expected, "{done}/{total}");
        }
    }

    #[test]
    fn a_wait_for_the_reset_shows_the_quota_estimate_not_a_rate_extrapolation() {
        let p = progress(BatchState::WaitingReset, 20, 45);
        let line = summary(
            &p,
            Some(400.0),
            Some("expected to finish on 2026-03-04 (quota day 1 of 3)"),
        );
        assert!(line.contains("done 20 of 45"), "{line}");
        assert!(line.contains("expected to finish on 2026-03-04"), "{line}");
        assert!(!line.contains("ETA at this rate"), "{line}");
        assert!(
            line.contains("waiting_reset: every key's daily quota is used"),
            "{line}"
        );
        // Once everything ended, no estimate is shown.
        let done = summary(&progress(BatchState::Running, 45, 45), None, Some("x"));
        assert!(!done.contains(", x"), "{done}");
    }
}
