//! Fuzz target: the sensor's config file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    camwatch::runtime::fuzzing::run("config", data);
});
