//! Fuzz target: ONVIF GetDeviceInformationResponse bodies and WS-Discovery datagrams.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    camwatch_proto::fuzzing::run("onvif", data);
});
