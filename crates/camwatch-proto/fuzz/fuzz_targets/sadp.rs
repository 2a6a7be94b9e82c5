//! Fuzz target: Hikvision SADP, XML (UDP 37020) and legacy layer-2 (ethertype 0x8033) forms.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    camwatch_proto::fuzzing::run("sadp", data);
});
