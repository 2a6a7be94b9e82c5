//! Fuzz target: the alert journal as the sinks read it (records, torn lines, garbage).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    camwatch::runtime::fuzzing::run("journal", data);
});
