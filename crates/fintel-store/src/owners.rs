//! Process owners and their liveness.
//!
//! A running fintel process registers itself as an owner and holds an exclusive OS lock on its
//! own lock file for as long as it lives; the operating system releases the lock when the
//! process dies, however it dies. Another process decides that an owner is dead only when it can
//! take that lock itself: never from a timestamp alone, so a batch that is merely quiet (a long
//! reset wait, a suspended laptop) is never declared crashed. The heartbeat column is for people
//! (status views), not for that decision.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use rusqlite::{params, OptionalExtension};

use crate::{millis, Store, StoreError};

/// This process's ownership: keep it alive as long as the process works on tasks.
#[derive(Debug)]
pub struct Ownership {
    pub id: String,
    lock_path: PathBuf,
    _lock: File,
}

impl Ownership {
    /// Where the lock file is.
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }
}

impl Drop for Ownership {
    fn drop(&mut self) {
        // The lock goes with the file handle; removing the file is tidiness only.
        let _ = std::fs::remove_file(&self.lock_path);
    }
}

/// Errors creating the owner lock file.
#[derive(Debug, thiserror::Error)]
#[error("cannot create the process lock file {path}: {source}")]
pub struct LockError {
    path: PathBuf,
    source: std::io::Error,
}

/// Whether the owner whose lock file is `lock_path` is alive.
pub fn owner_is_alive(lock_path: &Path) -> bool {
    let file = match OpenOptions::new().read(true).write(true).open(lock_path) {
        Ok(f) => f,
        // No lock file: the owner finished and cleaned up, or never got as far as working.
        Err(_) => return false,
    };
    match file.try_lock() {
        Ok(()) => {
            let _ = file.unlock();
            false
        }
        Err(TryLockError::WouldBlock) => true,
        // If the lock cannot even be tried, assume alive: stealing live work is the worse error.
        Err(TryLockError::Error(_)) => true,
    }
}

impl Store {
    /// Registers this process as an owner, holding its lock file in `locks_dir`.
    pub fn register_owner(
        &self,
        id: &str,
        locks_dir: &Path,
        now: Timestamp,
    ) -> Result<Ownership, StoreError> {
        let lock_path = locks_dir.join(format!("{id}.lock"));
        let file = std::fs::create_dir_all(locks_dir)
            .and_then(|_| {
                OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .read(true)
                    .write(true)
                    .open(&lock_path)
            })
            .and_then(|f| f.lock().map(|_| f))
            .map_err(|source| {
                StoreError::Invalid(
                    LockError {
                        path: lock_path.clone(),
                        source,
                    }
                    .to_string(),
                )
            })?;
        self.conn().execute(
            "INSERT INTO owners (id, pid, lock_path, started_at, heartbeat_at) \
             VALUES (?1, ?2, ?3, ?4, ?4)",
            params![
                id,
                std::process::id(),
                lock_path.to_string_lossy(),
                millis(now)
            ],
        )?;
        Ok(Ownership {
            id: id.to_string(),
            lock_path,
            _lock: file,
        })
    }

    /// Records that the owner is still working (for people reading the status).
    pub fn heartbeat(&self, owner: &str, now: Timestamp) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE owners SET heartbeat_at = ?2 WHERE id = ?1",
            params![owner, millis(now)],
        )?;
        Ok(())
    }

    /// Whether an owner is alive, by its OS lock.
    pub fn is_owner_alive(&self, owner: &str) -> Result<bool, StoreError> {
        let path: Option<String> = self
            .conn()
            .query_row("SELECT lock_path FROM owners WHERE id = ?1", [owner], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(path.is_some_and(|p| owner_is_alive(Path::new(&p))))
    }

    /// Returns the running tasks of dead owners in a batch to pending (no attempt counted: the
    /// call that was in flight may be repeated, which is all a crash can cost). Returns how
    /// many tasks were recovered.
    pub fn recover_dead_owners(&self, batch_id: &str, now: Timestamp) -> Result<u64, StoreError> {
        let mut recovered = 0;
        for owner in self.lease_owners(batch_id)? {
            if !self.is_owner_alive(&owner)? {
                recovered += self.release_owner(&owner, now)?;
                self.conn()
                    .execute("DELETE FROM owners WHERE id = ?1", [&owner])?;
            }
        }
        Ok(recovered)
    }

    /// The live owners working on a batch (another process running it).
    pub fn live_owners_of(&self, batch_id: &str) -> Result<Vec<String>, StoreError> {
        let mut live = Vec::new();
        for owner in self.lease_owners(batch_id)? {
            if self.is_owner_alive(&owner)? {
                live.push(owner);
            }
        }
        Ok(live)
    }

    /// Removes this process's owner row (on a clean exit).
    pub fn unregister_owner(&self, owner: &str) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM owners WHERE id = ?1", [owner])?;
        Ok(())
    }
}
