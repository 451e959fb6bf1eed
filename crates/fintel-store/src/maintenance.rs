//! Database upkeep for long runs: WAL checkpoint, statistics, integrity checks, online backups
//! with retention, and the free-space check the engine pauses on.
//!
//! Backups are made with `VACUUM INTO`, which needs no optional SQLite feature and yields a
//! compact, consistent copy while other connections keep working. They are named
//! `fintel-backup-YYYYMMDDTHHMMSSmmmZ.db` (UTC), so the names sort by age; rotation only ever
//! deletes files of exactly that shape.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::Serialize;

use crate::{Store, StoreError};

const BACKUP_PREFIX: &str = "fintel-backup-";
const BACKUP_SUFFIX: &str = ".db";

/// What [`Store::maintain`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MaintenanceReport {
    pub db_bytes_before: u64,
    pub wal_bytes_before: u64,
    pub db_bytes_after: u64,
    pub wal_bytes_after: u64,
    /// True when another connection kept the checkpoint from completing (the WAL then stays).
    pub checkpoint_busy: bool,
    /// `PRAGMA quick_check` findings; empty when the database is sound.
    pub problems: Vec<String>,
    /// The backup written; `None` when the quick check found problems (so a damaged copy never
    /// pushes a good backup out of the retention window).
    pub backup: Option<PathBuf>,
    pub backup_bytes: u64,
    /// Older backups deleted by the retention rule.
    pub deleted_backups: Vec<PathBuf>,
}

impl MaintenanceReport {
    /// Database plus WAL, before and after.
    pub fn total_before(&self) -> u64 {
        self.db_bytes_before + self.wal_bytes_before
    }
    pub fn total_after(&self) -> u64 {
        self.db_bytes_after + self.wal_bytes_after
    }
}

/// The file name of the backup taken at `now`.
pub fn backup_file_name(now: Timestamp) -> String {
    format!(
        "{BACKUP_PREFIX}{}{:03}Z{BACKUP_SUFFIX}",
        now.strftime("%Y%m%dT%H%M%S"),
        now.subsec_millisecond().max(0)
    )
}

/// Whether `name` is a backup written by [`Store::maintain`].
pub fn is_backup_file_name(name: &str) -> bool {
    let Some(stamp) = name
        .strip_prefix(BACKUP_PREFIX)
        .and_then(|rest| rest.strip_suffix(BACKUP_SUFFIX))
    else {
        return false;
    };
    let b = stamp.as_bytes();
    b.len() == 19
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..18].iter().all(u8::is_ascii_digit)
        && b[18] == b'Z'
}

/// When the newest backup in `dir` was taken, read from its name; `None` when there is none.
pub fn newest_backup_time(dir: &Path) -> Option<Timestamp> {
    let newest = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| is_backup_file_name(n))
        .max()?;
    let stamp = &newest[BACKUP_PREFIX.len()..BACKUP_PREFIX.len() + 18];
    let (seconds, ms) = stamp.split_at(15);
    let dt = jiff::civil::DateTime::strptime("%Y%m%dT%H%M%S", seconds).ok()?;
    let t = dt.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    t.checked_add(jiff::SignedDuration::from_millis(ms.parse().ok()?))
        .ok()
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Invalid(format!("{what} {}: {e}", path.display()))
}

impl Store {
    fn wal_path(&self) -> PathBuf {
        let mut wal = self.path().as_os_str().to_owned();
        wal.push("-wal");
        PathBuf::from(wal)
    }

    /// The daily upkeep: refresh statistics (`ANALYZE`, `PRAGMA optimize`), `PRAGMA
    /// quick_check`, `PRAGMA wal_checkpoint(TRUNCATE)`, then a backup into `backups_dir`
    /// keeping the newest `retention` backups. Sizes are measured before and after.
    pub fn maintain(
        &self,
        backups_dir: &Path,
        retention: usize,
        now: Timestamp,
    ) -> Result<MaintenanceReport, StoreError> {
        if retention == 0 {
            return Err(StoreError::Invalid(
                "backup retention must be at least 1 (the backup just taken is kept)".into(),
            ));
        }
        let wal = self.wal_path();
        let db_bytes_before = file_len(self.path());
        let wal_bytes_before = file_len(&wal);
        let (problems, checkpoint_busy) = {
            let conn = self.conn();
            // A bounded ANALYZE keeps the daily run short on a large database.
            conn.execute_batch("PRAGMA analysis_limit = 1000; ANALYZE; PRAGMA optimize;")?;
            let problems = quick_check(&conn, "quick_check")?;
            let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
            (problems, busy != 0)
        };
        let mut report = MaintenanceReport {
            db_bytes_before,
            wal_bytes_before,
            db_bytes_after: 0,
            wal_bytes_after: 0,
            checkpoint_busy,
            problems,
            backup: None,
            backup_bytes: 0,
            deleted_backups: Vec::new(),
        };
        if report.problems.is_empty() {
            std::fs::create_dir_all(backups_dir)
                .map_err(|e| io_error("cannot create the backups folder", backups_dir, e))?;
            let path = backups_dir.join(backup_file_name(now));
            self.backup_to(&path)?;
            report.backup_bytes = file_len(&path);
            report.backup = Some(path);
            report.deleted_backups = rotate_backups(backups_dir, retention)?;
        }
        report.db_bytes_after = file_len(self.path());
        report.wal_bytes_after = file_len(&wal);
        Ok(report)
    }

    /// The full `PRAGMA integrity_check`: `["ok"]` for a sound database, else its findings.
    pub fn integrity_check(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("PRAGMA integrity_check")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Writes a consistent copy of the database to `path` (which must not exist). The copy is
    /// made under a temporary name and renamed, so a failure leaves no partial backup.
    pub fn backup_to(&self, path: &Path) -> Result<(), StoreError> {
        if path.exists() {
            return Err(StoreError::Invalid(format!(
                "the backup target {} already exists; choose another name",
                path.display()
            )));
        }
        let file_name = path
            .file_name()
            .ok_or_else(|| StoreError::Invalid(format!("{} is not a file path", path.display())))?
            .to_string_lossy()
            .into_owned();
        let partial = path.with_file_name(format!(".{file_name}.part"));
        let _ = std::fs::remove_file(&partial);
        let target = partial.to_str().ok_or_else(|| {
            StoreError::Invalid(format!(
                "the backup path {} is not valid UTF-8; choose another folder",
                path.display()
            ))
        })?;
        let made = self.conn().execute("VACUUM INTO ?1", [target]);
        if let Err(e) = made {
            let _ = std::fs::remove_file(&partial);
            return Err(StoreError::Invalid(format!(
                "backup to {} failed: {e}; check the folder exists and has free space",
                path.display()
            )));
        }
        std::fs::rename(&partial, path).map_err(|e| {
            let _ = std::fs::remove_file(&partial);
            io_error("cannot move the finished backup into place at", path, e)
        })
    }
}

fn quick_check(conn: &rusqlite::Connection, pragma: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare(&format!("PRAGMA {pragma}"))?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<_, _>>()?;
    Ok(if rows == ["ok"] { Vec::new() } else { rows })
}

/// Deletes all but the newest `retention` backups in `dir`; returns what it deleted.
fn rotate_backups(dir: &Path, retention: usize) -> Result<Vec<PathBuf>, StoreError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| io_error("cannot list the backups in", dir, e))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| is_backup_file_name(n))
        .collect();
    // The names embed a fixed-width UTC stamp, so the newest sort last.
    names.sort();
    let excess = names.len().saturating_sub(retention);
    let mut deleted = Vec::with_capacity(excess);
    for name in &names[..excess] {
        let path = dir.join(name);
        std::fs::remove_file(&path).map_err(|e| io_error("cannot delete old backup", &path, e))?;
        deleted.push(path);
    }
    Ok(deleted)
}

/// Where free disk space is read from; the engine takes it as a parameter so tests can fake
/// a full disk.
pub trait FreeSpace {
    /// Bytes available to this (unprivileged) process on the file system holding `path`.
    fn free_bytes(&self, path: &Path) -> std::io::Result<u64>;
}

/// The real file system, through `statvfs`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemFreeSpace;

#[cfg(unix)]
impl FreeSpace for SystemFreeSpace {
    fn free_bytes(&self, path: &Path) -> std::io::Result<u64> {
        use std::os::unix::ffi::OsStrExt;
        let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in path"))?;
        let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: c_path is a valid NUL-terminated string and stat a properly sized,
        // writable statvfs that the call fills in.
        let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        #[allow(clippy::unnecessary_cast)] // the field widths differ between platforms
        Ok((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
    }
}

/// Whether `free_bytes` is under the `threshold_bytes` the engine pauses at.
pub fn disk_is_low(free_bytes: u64, threshold_bytes: u64) -> bool {
    free_bytes < threshold_bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// A store whose WAL has grown large because automatic checkpoints were disabled.
    fn store_with_large_wal(dir: &Path) -> Store {
        let store = Store::open(&dir.join("fintel.db")).unwrap();
        store
            .conn()
            .pragma_update(None, "wal_autocheckpoint", 0)
            .unwrap();
        let message = "x".repeat(400);
        for i in 0..2000 {
            store
                .log_event(
                    Some("b"),
                    t("2026-01-01T00:00:00Z"),
                    "info",
                    &format!("{i} {message}"),
                )
                .unwrap();
        }
        store
    }

    #[test]
    fn maintain_truncates_the_wal_and_backups_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_large_wal(dir.path());
        let backups = dir.path().join("backups");
        std::fs::create_dir_all(&backups).unwrap();
        // Files that only look like backups are never touched.
        for other in [
            "notes.txt",
            "fintel-backup-latest.db",
            "fintel-backup-20200101T000000000Z.db.bak",
        ] {
            std::fs::write(backups.join(other), "keep").unwrap();
        }
        let retention = 3;
        let mut now = t("2026-02-01T08:00:00.250Z");
        let mut made = Vec::new();
        for run in 0..retention + 2 {
            let report = store.maintain(&backups, retention, now).unwrap();
            if run == 0 {
                assert!(report.wal_bytes_before > 500_000, "{report:?}");
            }
            assert!(!report.checkpoint_busy);
            assert!(report.problems.is_empty(), "{report:?}");
            assert_eq!(report.wal_bytes_after, 0, "{report:?}");
            assert!(report.total_after() < report.total_before() || run > 0);
            assert!(report.backup_bytes > 0);
            made.push(report.backup.clone().unwrap());
            // Each run beyond the retention window deletes exactly the oldest backup.
            let expected = usize::from(run >= retention);
            assert_eq!(report.deleted_backups.len(), expected);
            now += jiff::SignedDuration::from_hours(24);
        }
        let mut remaining: Vec<String> = std::fs::read_dir(&backups)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| is_backup_file_name(n))
            .collect();
        remaining.sort();
        let newest: Vec<String> = made[made.len() - retention..]
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(remaining, newest);
        for other in [
            "notes.txt",
            "fintel-backup-latest.db",
            "fintel-backup-20200101T000000000Z.db.bak",
        ] {
            assert!(backups.join(other).exists(), "{other} was deleted");
        }
        for name in &remaining {
            let copy = Store::open_read_only(&backups.join(name)).unwrap();
            assert_eq!(copy.integrity_check().unwrap(), ["ok"]);
            let n: i64 = copy
                .conn()
                .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
                .unwrap();
            assert_eq!(n, 2000);
        }
        assert_eq!(store.integrity_check().unwrap(), ["ok"]);
    }

    #[test]
    fn backup_names_sort_by_time_and_are_recognised() {
        let a = backup_file_name(t("2026-02-01T08:00:00.250Z"));
        assert_eq!(a, "fintel-backup-20260201T080000250Z.db");
        assert!(is_backup_file_name(&a));
        let b = backup_file_name(t("2026-02-01T08:00:01Z"));
        assert!(a < b);
        for not in [
            "fintel-backup-.db",
            "fintel-backup-2026020T080000250Z.db",
            "x.db",
            "fintel-backup-20260201T080000250Z.db-wal",
        ] {
            assert!(!is_backup_file_name(not), "{not}");
        }
    }

    #[test]
    fn bad_maintenance_arguments_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("fintel.db")).unwrap();
        let err = store
            .maintain(dir.path(), 0, t("2026-01-01T00:00:00Z"))
            .unwrap_err();
        assert!(err.to_string().contains("at least 1"), "{err}");
        let target = dir.path().join("copy.db");
        store.backup_to(&target).unwrap();
        let err = store.backup_to(&target).unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        let err = store
            .backup_to(&dir.path().join("missing/copy.db"))
            .unwrap_err();
        assert!(err.to_string().contains("failed"), "{err}");
        assert!(!dir.path().join("missing").exists());
        // A backups "folder" that is a file.
        let file = dir.path().join("plain-file");
        std::fs::write(&file, "x").unwrap();
        let err = store
            .maintain(&file, 3, t("2026-01-01T00:00:00Z"))
            .unwrap_err();
        assert!(err.to_string().contains("backups folder"), "{err}");
    }

    struct FakeFreeSpace(std::io::Result<u64>);
    impl FreeSpace for FakeFreeSpace {
        fn free_bytes(&self, _: &Path) -> std::io::Result<u64> {
            match &self.0 {
                Ok(n) => Ok(*n),
                Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
            }
        }
    }

    #[test]
    fn free_space_check() {
        let dir = tempfile::tempdir().unwrap();
        let low = FakeFreeSpace(Ok(10 << 20));
        let plenty = FakeFreeSpace(Ok(50 << 30));
        let threshold = 1 << 30;
        assert!(disk_is_low(low.free_bytes(dir.path()).unwrap(), threshold));
        assert!(!disk_is_low(
            plenty.free_bytes(dir.path()).unwrap(),
            threshold
        ));
        assert!(!disk_is_low(threshold, threshold));
        let failing = FakeFreeSpace(Err(std::io::Error::other("stat failed")));
        assert!(failing.free_bytes(dir.path()).is_err());
        #[cfg(unix)]
        {
            let real = SystemFreeSpace.free_bytes(dir.path()).unwrap();
            assert!(real > 0);
            assert!(SystemFreeSpace
                .free_bytes(&dir.path().join("no/such/dir"))
                .is_err());
        }
    }
}

#[cfg(test)]
mod newest_backup_tests {
    use super::*;

    #[test]
    fn the_newest_backup_time_is_read_from_its_name() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(newest_backup_time(dir.path()), None);
        assert_eq!(newest_backup_time(&dir.path().join("missing")), None);
        let older: Timestamp = "2026-03-01T08:00:00.250Z".parse().unwrap();
        let newer: Timestamp = "2026-03-02T09:30:15.007Z".parse().unwrap();
        for t in [older, newer] {
            std::fs::write(dir.path().join(backup_file_name(t)), b"").unwrap();
        }
        std::fs::write(dir.path().join("fintel-backup-zzz.db"), b"").unwrap();
        assert_eq!(newest_backup_time(dir.path()), Some(newer));
    }
}
