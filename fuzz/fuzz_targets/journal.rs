//! Fuzz target: the alert journal as the sinks read it (records, torn lines, garbage).
#![no_main]

use camwatch::sink::journal::scan;
use camwatch::sink::Record;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for line in String::from_utf8_lossy(data).lines() {
        let _ = Record::parse(line);
    }
    let Ok(dir) = tempfile::tempdir() else { return };
    let path = dir.path().join("a.jsonl");
    if std::fs::write(&path, data).is_ok() {
        let _ = scan(&path, data.len() as u64, |_| {});
    }
});
