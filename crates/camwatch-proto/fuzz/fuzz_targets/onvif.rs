//! Fuzz target: ONVIF GetDeviceInformationResponse bodies and WS-Discovery datagrams.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = camwatch_proto::onvif::parse_device_information(data);
    let _ = camwatch_proto::onvif::parse_ws_discovery(data);
});
