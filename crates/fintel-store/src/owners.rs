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
use serde::Serialize;

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

/// What an owner's OS lock says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Its lock is held: the process lives.
    Alive,
    /// Its lock could be taken (or its lock file is gone from a lock directory that exists,
    /// which only the owner's own clean exit does): the process is gone.
    Dead,
    /// The lock could not be tried (no lock directory, too many open files, no permission...).
    /// Treated as alive: taking a live process's tasks is the worse mistake.
    Unknown,
}

impl Liveness {
    /// Whether this counts as alive for every decision that could take work away.
    pub fn counts_as_alive(self) -> bool {
        !matches!(self, Liveness::Dead)
    }
}

/// What the OS lock of the owner whose lock file is `lock_path` says.
pub fn owner_liveness(lock_path: &Path) -> Liveness {
    let file = match OpenOptions::new().read(true).write(true).open(lock_path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // The owner removes its lock file as it exits cleanly. A missing directory, though,
            // says nothing (another machine's path, a data directory moved away): unknown.
            let dir_exists = lock_path
                .parent()
                .is_some_and(|d| !d.as_os_str().is_empty() && d.is_dir());
            return if dir_exists {
                Liveness::Dead
            } else {
                Liveness::Unknown
            };
        }
        Err(_) => return Liveness::Unknown,
    };
    match file.try_lock() {
        Ok(()) => {
            let _ = file.unlock();
            Liveness::Dead
        }
        Err(TryLockError::WouldBlock) => Liveness::Alive,
        Err(TryLockError::Error(_)) => Liveness::Unknown,
    }
}

/// Whether the owner whose lock file is `lock_path` counts as alive (alive or unknown).
pub fn owner_is_alive(lock_path: &Path) -> bool {
    owner_liveness(lock_path).counts_as_alive()
}

/// A live process working on a batch, for status views and refusals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveProcess {
    pub owner: String,
    pub pid: u32,
    pub host: Option<String>,
    #[serde(serialize_with = "crate::batches::ser_ts")]
    pub since: Timestamp,
    #[serde(serialize_with = "crate::batches::ser_ts")]
    pub heartbeat_at: Timestamp,
}

impl LiveProcess {
    /// "process 1234 on host (since ...)", as messages name it.
    pub fn describe(&self) -> String {
        format!(
            "process {} on {}",
            self.pid,
            self.host.as_deref().unwrap_or("this machine")
        )
    }
}

/// This machine's host name, as stored beside an owner.
pub fn host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).trim().to_string();
    (!name.is_empty()).then_some(name)
}

impl Store {
    /// Registers this process as an owner, holding its lock file in `locks_dir`.
    pub fn register_owner(
        &self,
        id: &str,
        locks_dir: &Path,
        now: Timestamp,
    ) -> Result<Ownership, StoreError> {
        // Stored absolute: another process, started from another directory, must find the
        // same file, or it would take "no such file" for a dead owner.
        let created = std::fs::create_dir_all(locks_dir);
        let locks_dir = std::fs::canonicalize(locks_dir)
            .or_else(|_| std::path::absolute(locks_dir))
            .unwrap_or_else(|_| locks_dir.to_path_buf());
        let lock_path = locks_dir.join(format!("{id}.lock"));
        let file = created
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
            "INSERT INTO owners (id, pid, lock_path, started_at, heartbeat_at, host) \
             VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
            params![
                id,
                std::process::id(),
                lock_path.to_string_lossy(),
                millis(now),
                host_name()
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

    /// Records that `owner` works on `batch_id`, so the batch counts as running while the
    /// process lives, even when it holds no lease (waiting for the reset).
    pub fn attach_owner(&self, owner: &str, batch_id: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE owners SET batch_id = ?2 WHERE id = ?1",
            params![owner, batch_id],
        )?;
        Ok(())
    }

    /// Returns the running tasks of dead owners in a batch to pending (no attempt counted: the
    /// call that was in flight may be repeated, which is all a crash can cost), and forgets the
    /// dead owners attached to it. Returns how many tasks were recovered.
    pub fn recover_dead_owners(&self, batch_id: &str, now: Timestamp) -> Result<u64, StoreError> {
        let mut recovered = 0;
        for owner in self.owners_of(batch_id)? {
            if !self.is_owner_alive(&owner)? {
                recovered += self.release_owner(&owner, now)?;
                self.conn()
                    .execute("DELETE FROM owners WHERE id = ?1", [&owner])?;
            }
        }
        Ok(recovered)
    }

    /// Owners holding running leases in a batch or attached to it, alive or not.
    fn owners_of(&self, batch_id: &str) -> Result<Vec<String>, StoreError> {
        let mut owners = self.lease_owners(batch_id)?;
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT id FROM owners WHERE batch_id = ?1 ORDER BY started_at")?;
        for id in stmt.query_map([batch_id], |r| r.get::<_, String>(0))? {
            let id = id?;
            if !owners.contains(&id) {
                owners.push(id);
            }
        }
        Ok(owners)
    }

    /// The live owners working on a batch (holding a lease or attached to it).
    pub fn live_owners_of(&self, batch_id: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .live_processes(batch_id)?
            .into_iter()
            .map(|p| p.owner)
            .collect())
    }

    /// The live processes working on a batch, oldest first, with their pid, host and start.
    /// An owner whose lock cannot be checked counts as live (see [`Liveness::Unknown`]).
    pub fn live_processes(&self, batch_id: &str) -> Result<Vec<LiveProcess>, StoreError> {
        let mut live = Vec::new();
        for owner in self.owners_of(batch_id)? {
            let row = self
                .conn()
                .query_row(
                    "SELECT pid, host, started_at, heartbeat_at, lock_path FROM owners \
                     WHERE id = ?1",
                    [&owner],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, Option<String>>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, String>(4)?,
                        ))
                    },
                )
                .optional()?;
            // A lease whose owner row is gone belongs to nobody alive.
            let Some((pid, host, since, heartbeat, lock_path)) = row else {
                continue;
            };
            if owner_is_alive(Path::new(&lock_path)) {
                live.push(LiveProcess {
                    owner,
                    pid: pid as u32,
                    host,
                    since: crate::from_millis(since),
                    heartbeat_at: crate::from_millis(heartbeat),
                });
            }
        }
        live.sort_by_key(|p| p.since);
        Ok(live)
    }

    /// Removes this process's owner row (on a clean exit).
    pub fn unregister_owner(&self, owner: &str) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM owners WHERE id = ?1", [owner])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> Store {
        Store::open(&dir.join("fintel.db")).unwrap()
    }

    fn now() -> Timestamp {
        "2026-06-15T07:05:00Z".parse().unwrap()
    }

    fn stored_lock_path(store: &Store, owner: &str) -> String {
        store
            .conn()
            .query_row("SELECT lock_path FROM owners WHERE id = ?1", [owner], |r| {
                r.get(0)
            })
            .unwrap()
    }

    /// A lock directory given relative to where the process started is stored absolute, so a
    /// process started elsewhere checks the same file.
    #[test]
    fn a_relative_lock_directory_is_stored_absolute() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let cwd = std::env::current_dir().unwrap();
        let relative = pathdiff(dir.path(), &cwd);
        assert!(relative.is_relative());
        let owned = s
            .register_owner("a", &relative.join("locks"), now())
            .unwrap();
        let path = stored_lock_path(&s, "a");
        assert!(Path::new(&path).is_absolute(), "{path}");
        assert_eq!(Path::new(&path), dir.path().join("locks").join("a.lock"));
        assert!(s.is_owner_alive("a").unwrap());
        drop(owned);
    }

    /// `dir` as a path relative to `base` (both absolute), through `..` as needed.
    fn pathdiff(dir: &Path, base: &Path) -> PathBuf {
        let d: Vec<_> = dir.components().collect();
        let b: Vec<_> = base.components().collect();
        let common = d.iter().zip(&b).take_while(|(x, y)| x == y).count();
        let mut out = PathBuf::new();
        for _ in common..b.len() {
            out.push("..");
        }
        for c in &d[common..] {
            out.push(c);
        }
        out
    }

    /// Only "the lock could be taken" (or the owner's own clean exit) means dead: a lock whose
    /// directory is missing, or a path that cannot be opened, means "unknown" and counts as
    /// alive, so a live process's tasks are never taken on a guess.
    #[test]
    fn only_a_lock_that_could_be_taken_means_dead() {
        let dir = tempfile::tempdir().unwrap();
        let locks = dir.path().join("locks");
        let s = store(dir.path());
        let live = s.register_owner("live", &locks, now()).unwrap();
        assert_eq!(owner_liveness(live.lock_path()), Liveness::Alive);

        // Killed (the OS released its lock, the file stayed): dead.
        let killed_path = locks.join("killed.lock");
        std::fs::write(&killed_path, b"").unwrap();
        assert_eq!(owner_liveness(&killed_path), Liveness::Dead);

        // Exited cleanly (its file removed, the directory still there): dead.
        assert_eq!(owner_liveness(&locks.join("gone.lock")), Liveness::Dead);

        // A lock directory that does not exist here (another machine's or a moved data
        // directory), or a path that is not a file: unknown, so alive.
        let elsewhere = dir.path().join("no-such-dir").join("x.lock");
        assert_eq!(owner_liveness(&elsewhere), Liveness::Unknown);
        assert!(owner_is_alive(&elsewhere));
        assert_eq!(owner_liveness(&locks), Liveness::Unknown, "a directory");
        assert!(owner_is_alive(&locks));
        drop(live);
    }

    /// An owner whose lock file lies in a directory this process cannot see keeps its tasks.
    #[test]
    fn recovery_never_takes_the_tasks_of_an_owner_it_cannot_check() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        s.conn()
            .execute_batch(
                "INSERT INTO batches (id, created_at, updated_at, state, analysis_type, \
                   analysis_version, workflow, years_spec, as_of_date, model, settings) \
                 VALUES ('b1', 1, 1, 'running', 't', 'v', '', '{}', '2026-01-01', 'm', '{}'); \
                 INSERT INTO companies (id, batch_id, ticker, cik) VALUES (1, 'b1', 'A', 1); \
                 INSERT INTO owners (id, pid, lock_path, started_at, heartbeat_at, batch_id) \
                 VALUES ('far', 42, '/no/such/dir/far.lock', 1, 1, 'b1'); \
                 INSERT INTO tasks (batch_id, company_id, kind, state, lease_owner, created_at, \
                   updated_at) VALUES ('b1', 1, 'year', 'running', 'far', 1, 1);",
            )
            .unwrap();
        assert_eq!(s.recover_dead_owners("b1", now()).unwrap(), 0);
        assert_eq!(s.running_tasks_of("far").unwrap().len(), 1);
        let live = s.live_processes("b1").unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].pid, 42);
    }

    /// A process attached to a batch counts as running it while it holds no lease (waiting for
    /// the reset), with its pid, host and start; once dead it is forgotten.
    #[test]
    fn an_attached_process_without_leases_is_a_live_process_of_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let locks = dir.path().join("locks");
        let owned = s.register_owner("w", &locks, now()).unwrap();
        s.attach_owner("w", "b1").unwrap();
        let live = s.live_processes("b1").unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].pid, std::process::id());
        assert_eq!(live[0].host, host_name());
        assert_eq!(live[0].since, now());
        assert!(live[0].describe().contains(&std::process::id().to_string()));
        assert!(s.live_processes("other").unwrap().is_empty());
        // The OS lock goes with the process; the row is forgotten by the next recovery.
        drop(owned);
        assert!(s.live_processes("b1").unwrap().is_empty());
        s.recover_dead_owners("b1", now()).unwrap();
        let rows: i64 = s
            .conn()
            .query_row("SELECT COUNT(*) FROM owners", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 0);
    }
}
