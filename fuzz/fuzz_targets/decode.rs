//! Fuzz target: decoding one frame in every link type camwatch reads, and Teredo's inner packet.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    camwatch::runtime::fuzzing::run("decode", data);
});
