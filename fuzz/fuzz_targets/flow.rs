//! Fuzz target: a sequence of Ethernet frames (each prefixed by a 2-byte length) through
//! defragmentation, the flow record, TCP stream following and the application dispatcher, as a
//! worker runs them. The tables must stay within their bounds.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    camwatch::runtime::fuzzing::run("flow", data);
});
