//! Fuzz target: DNS/mDNS over UDP and TCP framing, and the passive DNS map fed with whatever
//! parses (CNAME chains built from hostile input must not loop or grow without bound).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    camwatch_proto::fuzzing::run("dns", data);
});
