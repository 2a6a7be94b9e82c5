//! Packet sources: libpcap live interfaces and capture files behind one type, with their settings.

pub mod batch;
mod config;
pub mod metrics;
mod source;

pub use batch::{Batch, Ring};
pub use config::CaptureConfig;
pub use source::{CaptureError, Drops, Next, Source};

/// Every pcap and pcapng file in the repository's test data and rule-pack tests (real
/// third-party captures, tunnels, fuzz seeds), for the tests that hold a fast path to a slow one.
#[cfg(test)]
pub(crate) fn repository_captures() -> Vec<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    let mut dirs = vec![root.join("tests/data"), root.join("rules/tests")];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}
