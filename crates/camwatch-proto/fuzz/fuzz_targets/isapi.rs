//! Fuzz target: Hikvision ISAPI deviceInfo / EZVIZ bodies and Dahua magicBox bodies.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    camwatch_proto::fuzzing::run("isapi", data);
});
