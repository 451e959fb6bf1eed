//! fintel's system of record: one SQLite database per data directory.
//!
//! Everything a resume needs is here before the step that depends on it: batches with their
//! pinned analysis, companies, tasks with their leases, results, the usage ledger (one row per
//! HTTP request to a provider, written before the request is sent), key buckets and process
//! owners. A process keeps no state of its own that is not in this database.
//!
//! Every claim, lease and ledger write is a single SQL statement (`UPDATE ... RETURNING`,
//! `INSERT ... SELECT ... WHERE`), so the rules hold across processes sharing the file and a
//! server database could take the same statements later.

mod batches;
mod bucket_state;
mod learned_params;
mod ledger;
mod maintenance;
mod model_switches;
mod outlook;
mod owners;
mod packing;
mod prior_year;
mod projects;
mod reasons;
mod retry_state;
mod schema;
mod stored_work;
mod tasks;
mod usage;
mod weather;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::{Connection, OpenFlags};

pub use batches::*;
pub use bucket_state::{bucket_state, BucketState};
pub use learned_params::LearnedParamRow;
pub use ledger::*;
pub use maintenance::*;
pub use model_switches::{ModelResults, ModelSwitch, SwitchRefused};
pub use outlook::tasks_per_company;
pub use owners::*;
pub use packing::*;
pub use prior_year::BatchYear;
pub use projects::*;
pub use reasons::{merge_year_ranges, year_ranges};
pub use retry_state::{AttemptSpent, RetryState};
pub use schema::SCHEMA_VERSION;
pub use stored_work::PendingModelTask;
pub use tasks::*;

/// The `model` a result stores when no model produced it: the engine writes these, and readers
/// (the dashboard) tell such results from a model's by them.
pub mod no_model {
    /// `financials`: read from the filing's inline XBRL.
    pub const XBRL: &str = "xbrl";
    /// `changes`: this year's filing compared with last year's, computed locally.
    pub const CHANGES: &str = "local";

    /// Whether a result's `model` says no model produced it.
    pub fn produced(model: &str) -> bool {
        model == XBRL || model == CHANGES
    }
}

/// Errors of the store. Messages say what to do, since most reach the user as they are.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the database {path} is not a fintel database or is corrupted ({detail}); restore it \
         from a backup in the data directory's backups folder, or move it away to start afresh"
    )]
    Corrupt { path: PathBuf, detail: String },

    #[error(
        "the database was written by a newer fintel (schema version {found}; this build knows \
         up to {supported}); upgrade fintel to use it"
    )]
    NewerSchema { found: i64, supported: i64 },

    #[error("no batch matches {0:?}; `fintel batch --list-incomplete` lists the batches")]
    BatchNotFound(String),

    #[error("{prefix:?} matches several batches ({candidates}); give more of the id")]
    AmbiguousBatch { prefix: String, candidates: String },

    #[error("this process no longer holds the task's lease; another process took it over")]
    LeaseLost,

    #[error("stored data is invalid: {0}")]
    Invalid(String),

    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// A condition of the machine the database lives on, not of the data: it may pass or be
/// fixed (space freed, the other program gone), and a resume then goes on where it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalCondition {
    /// SQLITE_FULL: the disk (or a size limit) has no room for the database to grow.
    DiskFull,
    /// SQLITE_BUSY or SQLITE_LOCKED past the busy timeout: another connection held the
    /// database too long.
    Busy,
    /// SQLITE_IOERR or SQLITE_CANTOPEN: reading or writing the file failed.
    Io,
    /// SQLITE_READONLY or SQLITE_PERM: the file or its directory can no longer be written.
    ReadOnly,
    /// This process lost a task's lease: another process took the task over.
    LeaseLost,
}

impl StoreError {
    /// The local condition behind this error, if it is one; `None` for everything that says
    /// the data or fintel itself is wrong (corruption, a newer schema, a constraint, a bug).
    pub fn local_condition(&self) -> Option<LocalCondition> {
        use rusqlite::ErrorCode as C;
        match self {
            StoreError::LeaseLost => Some(LocalCondition::LeaseLost),
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => match e.code {
                C::DiskFull => Some(LocalCondition::DiskFull),
                C::DatabaseBusy | C::DatabaseLocked => Some(LocalCondition::Busy),
                C::SystemIoFailure | C::CannotOpen => Some(LocalCondition::Io),
                C::ReadOnly | C::PermissionDenied => Some(LocalCondition::ReadOnly),
                _ => None,
            },
            _ => None,
        }
    }
}

/// A handle on the database. Cheap operations run under one connection mutex; SQLite's own
/// locking (WAL, busy timeout) arbitrates between processes.
pub struct Store {
    conn: Mutex<Connection>,
    path: PathBuf,
    /// Bumped by every write of this connection that may let a bucket send sooner (see
    /// [`LedgerMark`]).
    ledger_epoch: std::sync::atomic::AtomicU64,
}

/// Where the ledger stood: this connection's writes that may free quota (a refund, a refused
/// call, a bucket's wait or a key changed, buckets merged) and the database's
/// `PRAGMA data_version`, which changes when any other connection commits. Two equal marks
/// mean nothing happened in between that could let a waiting bucket send earlier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerMark {
    pub epoch: u64,
    pub data_version: i64,
}

/// Milliseconds since the Unix epoch: how instants are stored, so that they compare as numbers.
pub fn millis(t: Timestamp) -> i64 {
    t.as_millisecond()
}

/// The instant stored as `ms`.
pub fn from_millis(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open(path)?;
        Self::configure(conn, path, true)
    }

    /// Opens an existing database without writing to it (for status views and the dashboard).
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        Self::configure(conn, path, false)
    }

    fn configure(mut conn: Connection, path: &Path, write: bool) -> Result<Store, StoreError> {
        let corrupt = |e: rusqlite::Error| StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: e.to_string(),
        };
        conn.busy_timeout(Duration::from_secs(30))?;
        // The first real read is where a file that is not a database shows itself.
        let _: i64 = conn
            .query_row("PRAGMA schema_version", [], |r| r.get(0))
            .map_err(corrupt)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        if write {
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(corrupt)?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            schema::migrate(&mut conn)?;
        } else {
            let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if version > SCHEMA_VERSION {
                return Err(StoreError::NewerSchema {
                    found: version,
                    supported: SCHEMA_VERSION,
                });
            }
        }
        Ok(Store {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
            ledger_epoch: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Where the ledger stands now (one pragma read).
    pub fn ledger_mark(&self) -> Result<LedgerMark, StoreError> {
        let data_version = self
            .conn()
            .query_row("PRAGMA data_version", [], |r| r.get(0))?;
        Ok(LedgerMark {
            epoch: self.ledger_epoch.load(std::sync::atomic::Ordering::SeqCst),
            data_version,
        })
    }

    /// Notes a write that may let a bucket send sooner than the ledger said before it.
    pub(crate) fn ledger_changed(&self) {
        self.ledger_epoch
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Where the database file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection, for the few callers (maintenance, export) that run their own queries.
    pub fn conn(&self) -> MutexGuard<'_, Connection> {
        // A poisoned mutex means a thread panicked mid-call; SQLite rolled back whatever
        // transaction it had open, so the connection itself is still sound.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends a line to a batch's event log (shown by `status` and the dashboard).
    pub fn log_event(
        &self,
        batch_id: Option<&str>,
        now: Timestamp,
        level: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO events (batch_id, at, level, message) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![batch_id, millis(now), level, message],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_file_is_reported_as_corrupt_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fintel.db");
        let junk = b"this is not a database, just some text the user put here".repeat(100);
        std::fs::write(&path, &junk).unwrap();
        let err = Store::open(&path).err().expect("must refuse");
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("backup"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), junk, "file untouched");
    }

    #[test]
    fn newer_schema_is_refused_and_older_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fintel.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .unwrap();
        }
        let err = Store::open(&path).err().expect("must refuse");
        assert!(matches!(err, StoreError::NewerSchema { .. }), "{err}");
        assert!(err.to_string().contains("upgrade fintel"));

        let path2 = dir.path().join("old.db");
        drop(Connection::open(&path2).unwrap());
        let store = Store::open(&path2).unwrap();
        let v: i64 = store
            .conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        // Opening again is a no-op.
        drop(store);
        Store::open(&path2).unwrap();
    }
}
