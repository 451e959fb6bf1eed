//! The events a batch reports, and their one-line human summary.
//!
//! The summary is the whole message for a reader on a phone: it names the batch and says what
//! happened and, where there is one, what to do next. Both body formats carry it.

use std::path::PathBuf;

use jiff::Timestamp;

/// Something worth telling the owner of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// Every task of the batch has ended.
    BatchCompleted {
        /// The batch's id.
        batch_id: String,
        /// The batch's name as the user gave it.
        name: String,
        /// Tasks that ended with a result.
        completed: u64,
        /// Tasks skipped (e.g. no filing for a year).
        skipped: u64,
        /// Tasks that failed for good.
        failed: u64,
    },
    /// The batch stopped before the end and needs the user to resume it.
    BatchStopped {
        /// The batch's id.
        batch_id: String,
        /// Why it stopped, e.g. "every API key is invalid".
        reason: String,
        /// The command that resumes it, e.g. `fintel batch --resume --batch-id b1`.
        resume_command: String,
    },
    /// Every key has used its daily quota; the batch waits for the reset.
    KeysExhausted {
        /// The batch's id.
        batch_id: String,
        /// When sending resumes (the provider's reset, plus any buffer).
        reset_at: Timestamp,
    },
    /// Free disk space fell below the threshold; work pauses until it is back.
    DiskLow {
        /// Free bytes on the file system of `path`.
        free_bytes: u64,
        /// The configured minimum.
        threshold_bytes: u64,
        /// The directory that was checked (the data directory).
        path: PathBuf,
    },
    /// Many tasks failed in a row, which usually means something is wrong beyond one filing.
    RepeatedFailures {
        /// The batch's id.
        batch_id: String,
        /// How many failures in a row.
        count: u64,
        /// The reason of the last one.
        last_reason: String,
    },
    /// Keys of different buckets turned out to share one Google Cloud project (the provider
    /// named it): their buckets were merged, and the daily capacity and finish moved.
    SharedProject {
        /// The batch that learned it.
        batch_id: String,
        /// The keys, the project, the capacity and the finish, before and after.
        message: String,
    },
    /// A key's project quota was spent elsewhere (refused for the day after far fewer
    /// requests than its limit), or the day's refusals add up to one project's limit.
    SpentElsewhere {
        /// The batch that saw it.
        batch_id: String,
        /// What was seen, with the numbers, and the fintel.toml grouping that would match.
        message: String,
    },
    /// Anything else the owner should know.
    Warning {
        /// The batch concerned, if any.
        batch_id: Option<String>,
        /// What to tell.
        message: String,
    },
}

impl Notification {
    /// The event's machine name, used as `event` in the JSON format: `batch_completed`,
    /// `batch_stopped`, `keys_exhausted`, `disk_low`, `repeated_failures`, `shared_project`,
    /// `spent_elsewhere` or `warning`.
    pub fn kind(&self) -> &'static str {
        match self {
            Notification::BatchCompleted { .. } => "batch_completed",
            Notification::BatchStopped { .. } => "batch_stopped",
            Notification::KeysExhausted { .. } => "keys_exhausted",
            Notification::DiskLow { .. } => "disk_low",
            Notification::RepeatedFailures { .. } => "repeated_failures",
            Notification::SharedProject { .. } => "shared_project",
            Notification::SpentElsewhere { .. } => "spent_elsewhere",
            Notification::Warning { .. } => "warning",
        }
    }

    /// A short title for the event, used as the Discord embed's title.
    pub fn title(&self) -> &'static str {
        match self {
            Notification::BatchCompleted { .. } => "Batch completed",
            Notification::BatchStopped { .. } => "Batch stopped",
            Notification::KeysExhausted { .. } => "All API keys exhausted",
            Notification::DiskLow { .. } => "Disk space low",
            Notification::RepeatedFailures { .. } => "Repeated failures",
            Notification::SharedProject { .. } => "Keys share a Google Cloud project",
            Notification::SpentElsewhere { .. } => "Quota spent elsewhere",
            Notification::Warning { .. } => "Warning",
        }
    }

    /// The batch the event is about, if any.
    pub fn batch_id(&self) -> Option<&str> {
        match self {
            Notification::BatchCompleted { batch_id, .. }
            | Notification::BatchStopped { batch_id, .. }
            | Notification::KeysExhausted { batch_id, .. }
            | Notification::RepeatedFailures { batch_id, .. }
            | Notification::SharedProject { batch_id, .. }
            | Notification::SpentElsewhere { batch_id, .. } => Some(batch_id),
            Notification::Warning { batch_id, .. } => batch_id.as_deref(),
            Notification::DiskLow { .. } => None,
        }
    }

    /// One human line saying what happened and what to do, e.g.
    /// `Batch "sp500" (b1) completed: 480 completed, 15 skipped, 5 failed.`
    ///
    /// Reset times are shown in the local time zone and in Pacific time, the zone whose
    /// midnight resets the quota.
    pub fn summary(&self) -> String {
        match self {
            Notification::BatchCompleted {
                batch_id,
                name,
                completed,
                skipped,
                failed,
            } => {
                let label = if name.is_empty() || name == batch_id {
                    batch_id.clone()
                } else {
                    format!("\"{name}\" ({batch_id})")
                };
                format!(
                    "Batch {label} completed: {completed} completed, {skipped} skipped, \
                     {failed} failed."
                )
            }
            Notification::BatchStopped {
                batch_id,
                reason,
                resume_command,
            } => format!(
                "Batch {batch_id} stopped: {}. Resume it with: {resume_command}",
                reason.trim_end_matches('.')
            ),
            Notification::KeysExhausted { batch_id, reset_at } => format!(
                "Batch {batch_id}: every API key has used up its daily quota; the batch waits \
                 and resumes by itself after the reset at {}.",
                fintel_time::local_and_pacific(*reset_at)
            ),
            Notification::DiskLow {
                free_bytes,
                threshold_bytes,
                path,
            } => format!(
                "Disk space low on {}: {} free, below the {} minimum; work is paused until \
                 space is freed.",
                path.display(),
                human_bytes(*free_bytes),
                human_bytes(*threshold_bytes)
            ),
            Notification::RepeatedFailures {
                batch_id,
                count,
                last_reason,
            } => format!(
                "Batch {batch_id}: {count} tasks failed in a row; the last failure: {last_reason}"
            ),
            Notification::SharedProject { batch_id, message }
            | Notification::SpentElsewhere { batch_id, message } => {
                format!("Batch {batch_id}: {message}")
            }
            Notification::Warning { batch_id, message } => match batch_id {
                Some(id) => format!("Batch {id}: {message}"),
                None => message.clone(),
            },
        }
    }
}

/// A byte count in binary units with one decimal, e.g. `1.5 GiB`; plain bytes below 1 KiB.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_picks_the_unit() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(1536 * 1024 * 1024), "1.5 GiB");
        assert_eq!(human_bytes(u64::MAX), "16.0 EiB");
    }
}
