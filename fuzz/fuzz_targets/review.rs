//! Fuzz target: what the review commands read back (journal records, event log lines, times).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    camwatch::runtime::fuzzing::run("review", data);
});
