//! Keeping a weeks-long run healthy on its own: the free-disk check that pauses a batch while
//! space is low (and lets it go on by itself when space is back), and the daily database
//! maintenance run while the batch waits for the quota reset (SPEC.md section 8).
//!
//! Both are decisions over the clock and a measurement, so the runner asks [`DiskWatch`] and
//! [`MaintenanceSchedule`] what to do and performs it; tests fake the free-space source.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fintel_store::{FreeSpace, MaintenanceReport, Store, StoreError};
use fintel_time::span_between;
use jiff::Timestamp;

/// How often free space is measured while it is fine; while it is low it is measured on
/// every look at the database.
const DISK_CHECK_INTERVAL: Duration = Duration::from_secs(60);

/// The least time between two maintenance runs, by this process or (judging by the newest
/// backup) another: a batch waits for the reset about once a day, and a second wait on the
/// same day needs no second backup.
const MAINTENANCE_SPACING: Duration = Duration::from_secs(12 * 3600);

/// What a run does to stay healthy. [`Upkeep::off`] does nothing (tests of other things).
#[derive(Clone)]
pub struct Upkeep {
    /// The folder whose file system is watched (the data directory).
    pub data_dir: PathBuf,
    pub free_space: Arc<dyn FreeSpace + Send + Sync>,
    /// Below this many free bytes, no new task starts; 0 turns the check off.
    pub min_free_bytes: u64,
    /// Daily maintenance while waiting for the reset; `None` turns it off.
    pub maintenance: Option<MaintenancePlan>,
}

/// Where the daily backups go and how many are kept.
#[derive(Debug, Clone)]
pub struct MaintenancePlan {
    pub backups_dir: PathBuf,
    pub retention: usize,
}

impl Upkeep {
    /// No disk check and no maintenance.
    pub fn off() -> Upkeep {
        Upkeep {
            data_dir: PathBuf::new(),
            free_space: Arc::new(NeverLow),
            min_free_bytes: 0,
            maintenance: None,
        }
    }
}

struct NeverLow;
impl FreeSpace for NeverLow {
    fn free_bytes(&self, _: &std::path::Path) -> std::io::Result<u64> {
        Ok(u64::MAX)
    }
}

/// A measurement that says the disk is low.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskLow {
    pub free_bytes: u64,
    pub threshold_bytes: u64,
    pub path: PathBuf,
}

impl DiskLow {
    /// The message the user sees while the batch is paused.
    pub fn reason(&self) -> String {
        format!(
            "only {} free on the disk holding {} (fintel pauses below {}); free some space and \
             the batch resumes by itself",
            human_bytes(self.free_bytes),
            self.path.display(),
            human_bytes(self.threshold_bytes)
        )
    }
}

/// What a disk check concluded, when it changed something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskChange {
    BecameLow(DiskLow),
    StillLow(DiskLow),
    Recovered,
}

/// The free-space state of one run.
pub struct DiskWatch {
    upkeep: Upkeep,
    checked_at: Option<Timestamp>,
    low: Option<DiskLow>,
}

impl DiskWatch {
    pub fn new(upkeep: Upkeep) -> DiskWatch {
        DiskWatch {
            upkeep,
            checked_at: None,
            low: None,
        }
    }

    /// Whether new tasks must wait for disk space.
    pub fn is_low(&self) -> Option<&DiskLow> {
        self.low.as_ref()
    }

    /// Measures when due (always while low) and says what changed. A failed measurement
    /// keeps the previous state: an unreadable `statvfs` must not stop a healthy batch.
    pub fn check(&mut self, now: Timestamp) -> Option<DiskChange> {
        if self.upkeep.min_free_bytes == 0 {
            return None;
        }
        let due = self.low.is_some()
            || self
                .checked_at
                .is_none_or(|t| span_between(t, now) >= DISK_CHECK_INTERVAL);
        if !due {
            return None;
        }
        self.checked_at = Some(now);
        let free = match self.upkeep.free_space.free_bytes(&self.upkeep.data_dir) {
            Ok(free) => free,
            Err(e) => {
                tracing::warn!(
                    "cannot read the free space of {}: {e}",
                    self.upkeep.data_dir.display()
                );
                return None;
            }
        };
        if fintel_store::disk_is_low(free, self.upkeep.min_free_bytes) {
            let low = DiskLow {
                free_bytes: free,
                threshold_bytes: self.upkeep.min_free_bytes,
                path: self.upkeep.data_dir.clone(),
            };
            let change = if self.low.is_some() {
                DiskChange::StillLow(low.clone())
            } else {
                DiskChange::BecameLow(low.clone())
            };
            self.low = Some(low);
            Some(change)
        } else {
            self.low.take().map(|_| DiskChange::Recovered)
        }
    }
}

/// When the daily maintenance is due.
pub struct MaintenanceSchedule {
    plan: Option<MaintenancePlan>,
    last_run: Option<Timestamp>,
}

impl MaintenanceSchedule {
    pub fn new(plan: Option<MaintenancePlan>) -> MaintenanceSchedule {
        MaintenanceSchedule {
            plan,
            last_run: None,
        }
    }

    /// Runs the maintenance (the runner asks when a wait for the reset begins) unless it ran
    /// in the last 12 hours, in this process or, judging by the newest backup, in another;
    /// `None` when it was not due.
    pub fn run_if_due(
        &mut self,
        store: &Store,
        now: Timestamp,
    ) -> Option<Result<MaintenanceReport, StoreError>> {
        let plan = self.plan.as_ref()?;
        let recent = |t: Timestamp| span_between(t, now) < MAINTENANCE_SPACING;
        if self.last_run.is_some_and(recent) {
            return None;
        }
        // Recorded before running, so a failing maintenance is not retried at once.
        self.last_run = Some(now);
        if fintel_store::newest_backup_time(&plan.backups_dir).is_some_and(recent) {
            return None;
        }
        Some(store.maintain(&plan.backups_dir, plan.retention, now))
    }
}

/// Bytes as a person reads them (binary units).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct Fixed(AtomicU64);
    impl FreeSpace for Fixed {
        fn free_bytes(&self, _: &std::path::Path) -> std::io::Result<u64> {
            Ok(self.0.load(Ordering::SeqCst))
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    #[test]
    fn low_disk_is_noticed_rechecked_every_time_and_recovers() {
        let free = Arc::new(Fixed(AtomicU64::new(10 << 30)));
        let mut watch = DiskWatch::new(Upkeep {
            data_dir: PathBuf::from("/data"),
            free_space: free.clone(),
            min_free_bytes: 1 << 30,
            maintenance: None,
        });
        assert_eq!(watch.check(at(0)), None, "plenty of space");
        free.0.store(100 << 20, Ordering::SeqCst);
        assert_eq!(watch.check(at(30)), None, "not due for 60 s while fine");
        match watch.check(at(60)) {
            Some(DiskChange::BecameLow(low)) => {
                assert_eq!(low.free_bytes, 100 << 20);
                assert!(low.reason().contains("100.0 MiB"), "{}", low.reason());
                assert!(low.reason().contains("1.0 GiB"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(watch.check(at(61)), Some(DiskChange::StillLow(_))));
        free.0.store(2 << 30, Ordering::SeqCst);
        assert_eq!(watch.check(at(62)), Some(DiskChange::Recovered));
        assert!(watch.is_low().is_none());
    }

    #[test]
    fn a_zero_threshold_turns_the_check_off() {
        let mut watch = DiskWatch::new(Upkeep::off());
        assert_eq!(watch.check(at(0)), None);
    }

    #[test]
    fn maintenance_runs_at_most_every_12_hours_and_respects_another_process_backup() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("fintel.db")).unwrap();
        let plan = MaintenancePlan {
            backups_dir: dir.path().join("backups"),
            retention: 3,
        };
        let mut schedule = MaintenanceSchedule::new(Some(plan.clone()));
        let report = schedule.run_if_due(&store, at(0)).unwrap().unwrap();
        assert!(report.backup.is_some());
        assert!(schedule.run_if_due(&store, at(11 * 3600)).is_none());
        // Another process (a new schedule) sees the recent backup and skips.
        let mut other = MaintenanceSchedule::new(Some(plan));
        assert!(other.run_if_due(&store, at(7200)).is_none());
        assert!(schedule.run_if_due(&store, at(12 * 3600)).is_some());
        assert!(MaintenanceSchedule::new(None)
            .run_if_due(&store, at(0))
            .is_none());
    }

    #[test]
    fn bytes_read_as_people_read_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 30), "5.0 GiB");
    }
}
