//! Fuzz target: a capture file (pcap or pcapng, libpcap and the pcap-file fallback) read to the
//! end or to its first error.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    camwatch::runtime::fuzzing::run("capture_file", data);
});
