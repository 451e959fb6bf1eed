//! Progress on stderr: a live bar on a terminal, plain log lines otherwise. Messages from the
//! engine (disabled keys, outages) are printed either way.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fintel_engine::{Level, Observer, Progress};
use fintel_store::BatchState;
use fintel_time::local_and_pacific;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::logging::RUN_TARGET;

/// Shows a batch's progress.
pub struct Display {
    bar: Option<ProgressBar>,
    state: Mutex<LineState>,
    quiet: bool,
}

struct LineState {
    last_line: Option<Instant>,
    last_state: Option<BatchState>,
    /// The first snapshot's (clock time, tasks ended), for the rate.
    first: Option<(jiff::Timestamp, u64)>,
}

impl Display {
    /// A display for stderr; `quiet` prints nothing but warnings (used with `--json`).
    pub fn new(quiet: bool) -> Display {
        let bar = (!quiet && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none())
            .then(|| {
                let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
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
            }),
            quiet,
        }
    }

    /// Prints a line without breaking the bar, and logs it.
    pub fn println(&self, line: &str) {
        tracing::info!(target: RUN_TARGET, "{line}");
        self.print(line);
    }

    fn print(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn summary(p: &Progress, rate_per_hour: Option<f64>) -> String {
    let c = &p.counts;
    let mut s = format!(
        "done {} of {} (skipped {}, failed {})",
        c.completed, c.total, c.skipped, c.failed
    );
    if c.resolving > 0 {
        s.push_str(&format!(", {} companies still to resolve", c.resolving));
    }
    if let Some(rate) = rate_per_hour.filter(|r| *r > 0.0) {
        let left = c.total.saturating_sub(c.ended()) as f64;
        s.push_str(&format!(", {rate:.0}/h"));
        if left > 0.0 {
            s.push_str(&format!(", ETA at this rate {:.1} h", left / rate));
        }
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
        let line = summary(p, rate);
        // Plain lines (and the log file): on every state change, else at most every 10 s.
        let changed = st.last_state != Some(p.state);
        let due = st
            .last_line
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(10));
        let print = changed || due || done == p.counts.total;
        if print {
            st.last_line = Some(Instant::now());
            st.last_state = Some(p.state);
            tracing::info!(target: RUN_TARGET, "{line}");
        }
        if let Some(bar) = &self.bar {
            bar.set_length(p.counts.total.max(1));
            bar.set_position(done);
            bar.set_message(line);
        } else if print && !self.quiet {
            eprintln!("[{}] {}", local_and_pacific(p.now), line);
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
