//! Fuzz target: Baichuan streams must be walked or refused cleanly, never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    camwatch_proto::fuzzing::run("baichuan", data);
});
