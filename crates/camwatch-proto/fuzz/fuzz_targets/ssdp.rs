//! Fuzz target: SSDP (HTTP over UDP) datagrams must parse or fail cleanly, never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    camwatch_proto::fuzzing::run("ssdp", data);
});
