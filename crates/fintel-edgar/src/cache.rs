//! The on-disk document cache: `documents/{cik}/{accession}/{file}` under the cache directory,
//! each file with a `{file}.sha256` sidecar (`<hex>  <file>`, as `sha256sum` writes it).
//!
//! Paths are built only from a CIK number, a validated [`Accession`] and a validated
//! [`FileName`]. Writes are atomic (temporary file in the same folder, then rename), the
//! document first and its checksum second, so a crash leaves either nothing, or a document
//! without a checksum, which reads as missing. Every read verifies the checksum; a corrupted or
//! truncated file is logged, removed and reported as missing so the caller fetches it again.
//! A file's modification time is set to the injected clock's "now" when written, so ages
//! (stats, prune) follow the same clock as everything else.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use fintel_time::SharedClock;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::names::{Accession, FileName};
use crate::EdgarError;

/// Identifies a cached document.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DocumentKey {
    /// The filer's CIK.
    pub cik: u64,
    /// The filing.
    pub accession: Accession,
    /// The file inside the filing folder.
    pub file_name: FileName,
}

/// A verified cached document.
#[derive(Debug, Clone)]
pub struct CachedDocument {
    /// Its content.
    pub bytes: Vec<u8>,
    /// SHA-256 of the content, lower-case hex.
    pub sha256: String,
    /// Where it is.
    pub path: PathBuf,
}

/// Totals of the document cache.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheStats {
    /// Documents (checksum sidecars and temporary files not counted).
    pub documents: u64,
    /// Their total size in bytes.
    pub bytes: u64,
    /// When the oldest was written.
    pub oldest: Option<Timestamp>,
    /// When the newest was written.
    pub newest: Option<Timestamp>,
}

/// What a prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneReport {
    /// Documents removed.
    pub documents: u64,
    /// Their size in bytes.
    pub bytes: u64,
}

/// The document cache.
#[derive(Clone)]
pub struct DocumentCache {
    root: PathBuf,
    clock: SharedClock,
}

impl std::fmt::Debug for DocumentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentCache")
            .field("root", &self.root)
            .finish()
    }
}

/// SHA-256 of `bytes` as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn sidecar_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".sha256");
    path.with_file_name(name)
}

fn is_sidecar(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "sha256")
}

fn is_temporary(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

fn to_timestamp(time: SystemTime) -> Option<Timestamp> {
    Timestamp::try_from(time).ok()
}

impl DocumentCache {
    /// A cache under `cache_dir/documents`, aging files by `clock`.
    pub fn new(cache_dir: &Path, clock: SharedClock) -> DocumentCache {
        DocumentCache {
            root: cache_dir.join("documents"),
            clock,
        }
    }

    /// The folder holding the documents.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a document is (or would be) cached.
    pub fn path_for(&self, key: &DocumentKey) -> PathBuf {
        self.root
            .join(key.cik.to_string())
            .join(key.accession.as_str())
            .join(key.file_name.as_str())
    }

    /// True when the document and its checksum are present (not verified: see
    /// [`DocumentCache::read`]).
    pub fn contains(&self, key: &DocumentKey) -> bool {
        let path = self.path_for(key);
        path.is_file() && sidecar_path(&path).is_file()
    }

    /// True when any document of the filing is cached (the filing's listing `index.json`
    /// aside).
    pub fn has_any_document_of(&self, cik: u64, accession: &Accession) -> bool {
        let folder = self.root.join(cik.to_string()).join(accession.as_str());
        let Ok(entries) = std::fs::read_dir(&folder) else {
            return false;
        };
        entries.flatten().any(|entry| {
            let path = entry.path();
            !is_sidecar(&path)
                && !is_temporary(&path)
                && path.file_name().is_some_and(|n| n != "index.json")
                && sidecar_path(&path).is_file()
        })
    }

    /// Reads and verifies a cached document. `Ok(None)` when it is absent or failed
    /// verification (then it is logged and removed, so the caller fetches it again).
    pub fn read(&self, key: &DocumentKey) -> Result<Option<CachedDocument>, EdgarError> {
        let path = self.path_for(key);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(EdgarError::io(&path, e)),
        };
        let sidecar = sidecar_path(&path);
        let recorded = match std::fs::read_to_string(&sidecar) {
            Ok(text) => text.split_whitespace().next().map(str::to_ascii_lowercase),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(EdgarError::io(&sidecar, e)),
        };
        let actual = sha256_hex(&bytes);
        if recorded.as_deref() == Some(actual.as_str()) {
            return Ok(Some(CachedDocument {
                bytes,
                sha256: actual,
                path,
            }));
        }
        tracing::warn!(
            path = %path.display(),
            recorded = recorded.as_deref().unwrap_or("(none)"),
            actual = %actual,
            size = bytes.len(),
            "cached document failed its checksum (corrupted, truncated or unfinished); \
             removing it to fetch it again"
        );
        for p in [&path, &sidecar] {
            match std::fs::remove_file(p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(EdgarError::io(p, e)),
            }
        }
        Ok(None)
    }

    /// Stores a document atomically with its checksum; returns its path and SHA-256.
    pub fn write(&self, key: &DocumentKey, bytes: &[u8]) -> Result<(PathBuf, String), EdgarError> {
        let path = self.path_for(key);
        let folder = path
            .parent()
            .ok_or_else(|| EdgarError::InvalidInput("cache path has no folder".into()))?;
        std::fs::create_dir_all(folder).map_err(|e| EdgarError::io(folder, e))?;
        let sha = sha256_hex(bytes);
        let now = SystemTime::from(self.clock.now());
        write_atomic(&path, bytes, Some(now), Durability::Synced)?;
        let line = format!("{sha}  {}\n", key.file_name);
        write_atomic(
            &sidecar_path(&path),
            line.as_bytes(),
            Some(now),
            Durability::Synced,
        )?;
        Ok((path, sha))
    }

    /// Counts the cached documents.
    pub fn stats(&self) -> Result<CacheStats, EdgarError> {
        let mut stats = CacheStats::default();
        for (path, meta) in self.document_files()? {
            if is_temporary(&path) {
                continue;
            }
            stats.documents += 1;
            stats.bytes += meta.len();
            if let Some(t) = meta.modified().ok().and_then(to_timestamp) {
                stats.oldest = Some(stats.oldest.map_or(t, |o: Timestamp| o.min(t)));
                stats.newest = Some(stats.newest.map_or(t, |n: Timestamp| n.max(t)));
            }
        }
        Ok(stats)
    }

    /// Removes documents written more than `older_than` ago (by the injected clock), with their
    /// checksums, leftover temporary files of that age, and folders left empty.
    pub fn prune(&self, older_than: Duration) -> Result<PruneReport, EdgarError> {
        let cutoff = self.clock.now() - fintel_time::duration_to_span(older_than);
        let mut report = PruneReport::default();
        for (path, meta) in self.document_files()? {
            let written = meta.modified().ok().and_then(to_timestamp);
            if written.is_some_and(|t| t >= cutoff) {
                continue;
            }
            remove_if_present(&path)?;
            if !is_temporary(&path) {
                remove_if_present(&sidecar_path(&path))?;
                report.documents += 1;
                report.bytes += meta.len();
            }
        }
        self.remove_empty_folders()?;
        Ok(report)
    }

    /// Every non-sidecar file under the root, with its metadata.
    fn document_files(&self) -> Result<Vec<(PathBuf, std::fs::Metadata)>, EdgarError> {
        let mut files = Vec::new();
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(EdgarError::io(&dir, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| EdgarError::io(&dir, e))?;
                let path = entry.path();
                let meta = entry.metadata().map_err(|e| EdgarError::io(&path, e))?;
                if meta.is_dir() {
                    stack.push(path);
                } else if meta.is_file() && !is_sidecar(&path) {
                    files.push((path, meta));
                }
            }
        }
        Ok(files)
    }

    fn remove_empty_folders(&self) -> Result<(), EdgarError> {
        let Ok(ciks) = std::fs::read_dir(&self.root) else {
            return Ok(());
        };
        for cik in ciks.flatten() {
            let cik_path = cik.path();
            if let Ok(filings) = std::fs::read_dir(&cik_path) {
                for filing in filings.flatten() {
                    // Fails harmlessly when the folder is not empty.
                    let _ = std::fs::remove_dir(filing.path());
                }
            }
            let _ = std::fs::remove_dir(&cik_path);
        }
        Ok(())
    }
}

fn remove_if_present(path: &Path) -> Result<(), EdgarError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(EdgarError::io(path, e)),
    }
}

/// How [`write_atomic`] treats the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Flushed to disk before the rename (documents, the company list).
    Synced,
    /// Not flushed: losing it in a power cut is harmless (the rate limiter's state, written on
    /// every request, where an fsync would cap the request rate at the disk's latency).
    Unsynced,
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder (name starting
/// with `.`), optionally flushed to disk, then renamed over `path`.
pub(crate) fn write_atomic(
    path: &Path,
    bytes: &[u8],
    modified: Option<SystemTime>,
    durability: Durability,
) -> Result<(), EdgarError> {
    let folder = path
        .parent()
        .ok_or_else(|| EdgarError::InvalidInput(format!("{} has no folder", path.display())))?;
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(folder)
        .map_err(|e| EdgarError::io(folder, e))?;
    temp.write_all(bytes)
        .and_then(|()| match durability {
            Durability::Synced => temp.as_file().sync_all(),
            Durability::Unsynced => Ok(()),
        })
        .map_err(|e| EdgarError::io(temp.path(), e))?;
    if let Some(time) = modified {
        temp.as_file()
            .set_modified(time)
            .map_err(|e| EdgarError::io(temp.path(), e))?;
    }
    temp.persist(path)
        .map_err(|e| EdgarError::io(path, e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fintel_time::{Clock, ManualClock};
    use std::sync::Arc;

    fn key(file: &str) -> DocumentKey {
        DocumentKey {
            cik: 320193,
            accession: Accession::parse("0000320193-24-000123").unwrap(),
            file_name: FileName::parse(file).unwrap(),
        }
    }

    fn setup() -> (tempfile::TempDir, DocumentCache, ManualClock) {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new("2024-11-02T00:00:00Z".parse().unwrap());
        let cache = DocumentCache::new(dir.path(), Arc::new(clock.clone()));
        (dir, cache, clock)
    }

    #[test]
    fn round_trip_and_layout() {
        let (dir, cache, _) = setup();
        let k = key("aapl-20240928.htm");
        assert!(cache.read(&k).unwrap().is_none());
        let (path, sha) = cache.write(&k, b"hello").unwrap();
        assert_eq!(
            path,
            dir.path()
                .join("documents/320193/0000320193-24-000123/aapl-20240928.htm")
        );
        assert_eq!(sha, sha256_hex(b"hello"));
        let sidecar = std::fs::read_to_string(sidecar_path(&path)).unwrap();
        assert_eq!(sidecar, format!("{sha}  aapl-20240928.htm\n"));
        let read = cache.read(&k).unwrap().unwrap();
        assert_eq!(read.bytes, b"hello");
        assert!(cache.contains(&k));
        assert!(cache.has_any_document_of(320193, &k.accession));
    }

    #[test]
    fn corruption_and_truncation_are_detected() {
        let (_dir, cache, _) = setup();
        let k = key("doc.htm");
        let (path, _) = cache.write(&k, b"the full document").unwrap();
        std::fs::write(&path, b"the full").unwrap();
        assert!(cache.read(&k).unwrap().is_none());
        assert!(!path.exists(), "corrupt file removed");
        // A document without its checksum (crash between the two writes) reads as missing.
        let (path, _) = cache.write(&k, b"again").unwrap();
        std::fs::remove_file(sidecar_path(&path)).unwrap();
        assert!(cache.read(&k).unwrap().is_none());
        // A flipped byte of the same length.
        let (path, _) = cache.write(&k, b"abc").unwrap();
        std::fs::write(&path, b"abd").unwrap();
        assert!(cache.read(&k).unwrap().is_none());
    }

    #[test]
    fn stats_and_prune_follow_the_injected_clock() {
        let (_dir, cache, clock) = setup();
        let start = clock.now();
        cache.write(&key("old.htm"), &[1u8; 100]).unwrap();
        clock.advance(Duration::from_secs(40 * 86_400));
        cache.write(&key("new.htm"), &[2u8; 50]).unwrap();
        let stats = cache.stats().unwrap();
        assert_eq!(stats.documents, 2);
        assert_eq!(stats.bytes, 150);
        assert_eq!(stats.oldest, Some(start));
        assert_eq!(stats.newest, Some(clock.now()));
        let report = cache.prune(Duration::from_secs(30 * 86_400)).unwrap();
        assert_eq!(
            report,
            PruneReport {
                documents: 1,
                bytes: 100
            }
        );
        assert!(!cache.contains(&key("old.htm")));
        assert!(cache.read(&key("new.htm")).unwrap().is_some());
        clock.advance(Duration::from_secs(1));
        let report = cache.prune(Duration::ZERO).unwrap();
        assert_eq!(report.documents, 1);
        assert_eq!(cache.stats().unwrap(), CacheStats::default());
        assert!(
            !cache.root().join("320193").exists(),
            "empty folders removed"
        );
    }
}
