//! Fuzz target: Hikvision SADP, XML (UDP 37020) and legacy layer-2 (ethertype 0x8033) forms.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = camwatch_proto::sadp::parse(data);
    let _ = camwatch_proto::sadp::parse_legacy(data);
});
