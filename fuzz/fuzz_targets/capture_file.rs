//! Fuzz target: a capture file (pcap or pcapng, libpcap and the pcap-file fallback) read to the
//! end or to its first error.
#![no_main]

use camwatch::capture::{CaptureConfig, Next, Source};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else { return };
    let path = dir.path().join("f.pcap");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let Ok(mut sources) = Source::open_all(&[], std::slice::from_ref(&path), &CaptureConfig::default())
    else {
        return;
    };
    for src in &mut sources {
        for _ in 0..10_000 {
            match src.next_packet() {
                Ok(Next::Packet(_)) | Ok(Next::Timeout) => {}
                Ok(Next::End) | Err(_) => break,
            }
        }
    }
});
