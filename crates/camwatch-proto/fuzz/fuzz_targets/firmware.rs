//! Fuzz target: digicap.dav headers, firmware version strings and firmware file names.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    camwatch_proto::fuzzing::run("firmware", data);
});
