//! Fuzz target: Dahua DHIP discovery datagrams (UDP 37810).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    camwatch_proto::fuzzing::run("dhip", data);
});
