//! Fuzz target: Hikvision ISAPI deviceInfo / EZVIZ bodies and Dahua magicBox bodies.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = camwatch_proto::isapi::parse_device_info(data);
    let _ = camwatch_proto::isapi::parse_ezviz(data);
    let _ = camwatch_proto::isapi::parse_magicbox(data);
});
