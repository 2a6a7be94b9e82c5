//! Retention of the evidence directory: by age and total size, and removal of partial files a
//! crash left behind.

use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// What is left in the evidence directory after [`prune`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneStats {
    /// `*.pcap` files remaining.
    pub files: u64,
    /// Their total size.
    pub bytes: u64,
    /// Files removed by this call.
    pub removed: u64,
}

/// Removes `*.pcap` files in `dir` modified more than `max_age` before `now`, then the oldest
/// until the rest total at most `max_total_bytes`. Other names (`.part` files being written)
/// and anything but regular files are left alone. A missing directory is empty.
pub fn prune(dir: &Path, max_total_bytes: u64, max_age: Duration, now: SystemTime) -> io::Result<PruneStats> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(PruneStats::default()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        // Entries vanish while we look (another worker prunes too): skip them.
        let Ok(entry) = entry else { continue };
        if !entry.file_name().to_str().is_some_and(|n| n.ends_with(".pcap")) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_file() {
            files.push((meta.modified().unwrap_or(now), entry.path(), meta.len()));
        }
    }
    files.sort();
    let mut stats =
        PruneStats { files: files.len() as u64, bytes: files.iter().map(|f| f.2).sum(), removed: 0 };
    let cutoff = now.checked_sub(max_age);
    for (modified, path, len) in &files {
        let expired = cutoff.is_some_and(|c| *modified < c);
        if !expired && stats.bytes <= max_total_bytes {
            break;
        }
        match fs::remove_file(path) {
            Ok(()) => stats.removed += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), "Cannot remove old evidence file: {e}.");
                continue;
            }
        }
        stats.files -= 1;
        stats.bytes = stats.bytes.saturating_sub(*len);
    }
    Ok(stats)
}

/// Removes `*.pcap.part` files left in `dir` by a run that stopped without finishing them;
/// returns how many. Only at start: while recorders run, these are captures being written.
pub fn remove_partials(dir: &Path) -> io::Result<u64> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let Ok(entry) = entry else { continue };
        if !entry.file_name().to_str().is_some_and(|n| n.ends_with(".pcap.part")) {
            continue;
        }
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            match fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    let path = entry.path();
                    tracing::warn!(path = %path.display(), "Cannot remove partial evidence file: {e}.");
                }
            }
        }
    }
    Ok(removed)
}
