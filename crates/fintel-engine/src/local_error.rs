//! What a run does when the database fails under it: a local condition (disk full, the
//! database busy past its timeout, an I/O error, a file turned read-only, a lease lost) drains
//! the run as a signal does and stops the batch with the error as its reason, since a resume
//! goes on once the condition passes; anything that says the data or fintel is wrong
//! (corruption, a newer schema, a constraint, a bug) ends the process at once, writing
//! nothing more. A pure decision with a table test; the runner carries it out.

use fintel_store::{LocalCondition, StoreError};

use crate::EngineError;

/// What to do about an error that ended a step of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnError {
    /// Stop claiming, let the calls in flight finish, and stop the batch with this reason.
    Drain(String),
    /// End the run with the error as it is.
    Crash,
}

/// The decision for an error of the run.
pub fn on_error(error: &EngineError) -> OnError {
    match error {
        EngineError::Store(e) => on_store_error(e),
        _ => OnError::Crash,
    }
}

/// The decision for a database error: drain on a local condition, with the error and what to
/// do about it as the batch's stop reason.
pub fn on_store_error(error: &StoreError) -> OnError {
    let Some(condition) = error.local_condition() else {
        return OnError::Crash;
    };
    let advice = match condition {
        LocalCondition::DiskFull => {
            "free disk space where the database is (fintel data directory), then resume"
        }
        LocalCondition::Busy => {
            "another program held the database longer than the busy timeout; close it (or \
             let it finish), then resume"
        }
        LocalCondition::Io => "check the disk the database is on, then resume",
        LocalCondition::ReadOnly => {
            "the database file or its directory can no longer be written; make them \
             writable, then resume"
        }
        LocalCondition::LeaseLost => {
            "another process took over a task of this one; see `fintel batch status` for the \
             processes on the batch, and resume once none is left"
        }
    };
    OnError::Drain(format!("local database error: {error}; {advice}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::ffi;

    fn sqlite(code: i32, message: &str) -> StoreError {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            ffi::Error::new(code),
            Some(message.to_string()),
        ))
    }

    #[test]
    fn local_conditions_drain_everything_else_crashes() {
        // The error, whether it drains, and a word the reason must hold.
        let table: Vec<(StoreError, Option<&str>)> = vec![
            (
                sqlite(ffi::SQLITE_FULL, "database or disk is full"),
                Some("free disk space"),
            ),
            (
                sqlite(ffi::SQLITE_BUSY, "database is locked"),
                Some("busy timeout"),
            ),
            (
                sqlite(ffi::SQLITE_LOCKED, "database table is locked"),
                Some("busy timeout"),
            ),
            (
                sqlite(ffi::SQLITE_IOERR_WRITE, "disk I/O error"),
                Some("check the disk"),
            ),
            (
                sqlite(ffi::SQLITE_IOERR, "disk I/O error"),
                Some("check the disk"),
            ),
            (
                sqlite(ffi::SQLITE_CANTOPEN, "unable to open database file"),
                Some("check the disk"),
            ),
            (
                sqlite(ffi::SQLITE_READONLY, "attempt to write a readonly database"),
                Some("writable"),
            ),
            (StoreError::LeaseLost, Some("another process took over")),
            // The data or fintel is wrong: writing on could only make it worse.
            (
                sqlite(ffi::SQLITE_CORRUPT, "database disk image is malformed"),
                None,
            ),
            (sqlite(ffi::SQLITE_NOTADB, "file is not a database"), None),
            (
                sqlite(ffi::SQLITE_CONSTRAINT_UNIQUE, "UNIQUE constraint failed"),
                None,
            ),
            (
                sqlite(ffi::SQLITE_MISUSE, "bad parameter or other API misuse"),
                None,
            ),
            (sqlite(ffi::SQLITE_ERROR, "no such table: tasks"), None),
            (
                StoreError::Sqlite(rusqlite::Error::QueryReturnedNoRows),
                None,
            ),
            (
                StoreError::Corrupt {
                    path: "fintel.db".into(),
                    detail: "file is not a database".into(),
                },
                None,
            ),
            (
                StoreError::NewerSchema {
                    found: 99,
                    supported: 1,
                },
                None,
            ),
            (StoreError::Invalid("bad json".into()), None),
            (StoreError::BatchNotFound("b1".into()), None),
        ];
        for (error, drains) in &table {
            match (on_store_error(error), drains) {
                (OnError::Drain(reason), Some(word)) => {
                    assert!(reason.starts_with("local database error: "), "{reason}");
                    assert!(reason.contains(&error.to_string()), "{reason}");
                    assert!(reason.contains(word), "{error}: {reason}");
                }
                (OnError::Crash, None) => {}
                (got, _) => panic!("{error}: {got:?}, expected drain {drains:?}"),
            }
        }
    }

    #[test]
    fn only_store_errors_drain() {
        assert_eq!(
            on_error(&EngineError::Invalid("worker panicked".into())),
            OnError::Crash
        );
        assert!(matches!(
            on_error(&EngineError::Store(StoreError::LeaseLost)),
            OnError::Drain(_)
        ));
    }
}
