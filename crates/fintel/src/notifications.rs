//! Batch notifications: the engine's events and a run's outcome, turned into webhook
//! messages (SPEC.md section 8). Sending is fire-and-forget: nothing here can fail or slow a
//! batch.

use std::sync::Arc;
use std::time::Duration;

use fintel_engine::{Event, Level, Observer, Progress, RunOutcome};
use fintel_notify::{Notification, Notifier};
use fintel_store::TaskCounts;

use crate::app::App;

/// How long a finishing process gives queued notifications to go out.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// The configured webhook (checked by `Config::load`), or a notifier that sends nothing,
/// stamping events with the run's clock.
pub fn notifier(app: &App) -> Notifier {
    let notifier = app.config.notifier.clone().with_clock(app.clock.clone());
    if let (Some(url), Some(format)) = (notifier.masked_url(), notifier.format()) {
        tracing::info!("notifications go to {url} ({format} format)");
    }
    notifier
}

/// Passes everything to the display and sends the events worth a message.
pub struct Notifying<O> {
    pub display: Arc<O>,
    pub notifier: Notifier,
    pub batch_id: String,
}

impl<O: Observer> Observer for Notifying<O> {
    fn progress(&self, snapshot: &Progress) {
        self.display.progress(snapshot);
    }

    fn message(&self, level: Level, text: &str) {
        self.display.message(level, text);
    }

    fn event(&self, event: &Event) {
        self.display.event(event);
        let batch_id = self.batch_id.clone();
        let notification = match event {
            Event::KeysExhausted { reset_at } => Notification::KeysExhausted {
                batch_id,
                reset_at: *reset_at,
            },
            Event::RepeatedFailures { count, source } => Notification::RepeatedFailures {
                batch_id,
                count: *count as u64,
                last_reason: format!(
                    "{source} failing; the batch waits and probes, and these failures cost no \
                     attempts"
                ),
            },
            Event::DiskLow(low) => Notification::DiskLow {
                free_bytes: low.free_bytes,
                threshold_bytes: low.threshold_bytes,
                path: low.path.clone(),
            },
            Event::DiskRecovered => Notification::Warning {
                batch_id: Some(batch_id),
                message: "free disk space is back; the batch goes on".to_string(),
            },
            Event::Maintained(report) if !report.problems.is_empty() => Notification::Warning {
                batch_id: Some(batch_id),
                message: format!(
                    "the daily integrity check found problems (no backup taken): {}",
                    report.problems.join("; ")
                ),
            },
            Event::Maintained(_) => return,
            Event::SharedProject { message } => Notification::SharedProject {
                batch_id,
                message: message.clone(),
            },
            Event::SpentElsewhere { message } => Notification::SpentElsewhere {
                batch_id,
                message: message.clone(),
            },
        };
        self.notifier.notify(&notification);
    }
}

/// Sends the outcome of a run, then gives the queue a bounded moment before the process exits.
pub async fn send_outcome(
    notifier: &Notifier,
    batch_id: &str,
    name: Option<&str>,
    outcome: &RunOutcome,
    counts: &TaskCounts,
) {
    let resume_command = format!("fintel batch --resume {batch_id}");
    let notification = match outcome {
        RunOutcome::Completed { .. } => Notification::BatchCompleted {
            batch_id: batch_id.to_string(),
            name: name.unwrap_or_default().to_string(),
            completed: counts.completed,
            skipped: counts.skipped,
            failed: counts.failed,
        },
        RunOutcome::Stopped => Notification::BatchStopped {
            batch_id: batch_id.to_string(),
            reason: "stopped by request".to_string(),
            resume_command,
        },
        RunOutcome::ConfigurationProblem(message) => Notification::BatchStopped {
            batch_id: batch_id.to_string(),
            reason: format!("configuration problem: {message}"),
            resume_command,
        },
        RunOutcome::StoppedOnError(reason) => Notification::BatchStopped {
            batch_id: batch_id.to_string(),
            reason: reason.clone(),
            resume_command,
        },
        RunOutcome::ModelRetired(message) => Notification::BatchStopped {
            batch_id: batch_id.to_string(),
            reason: format!("the batch's model is no longer served: {message}"),
            resume_command: format!("{resume_command} --switch-model NEW"),
        },
        RunOutcome::Cancelled => return,
    };
    notifier.notify(&notification);
    if !notifier.flush(FLUSH_TIMEOUT).await {
        tracing::warn!("some notifications could not be sent before exiting");
    }
}
