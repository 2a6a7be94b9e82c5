//! Fuzz target: DHCPv4 messages must parse or fail cleanly, never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    camwatch_proto::fuzzing::run("dhcp", data);
});
