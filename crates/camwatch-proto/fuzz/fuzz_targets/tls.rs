//! Fuzz target: TLS ClientHello / ServerHello reassembly and JA3/JA3S/JA4 fingerprints.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    camwatch_proto::fuzzing::run("tls", data);
});
