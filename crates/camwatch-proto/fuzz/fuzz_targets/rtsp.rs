//! Fuzz target: RTSP request and response header blocks and interleaved-frame detection.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    camwatch_proto::fuzzing::run("rtsp", data);
});
