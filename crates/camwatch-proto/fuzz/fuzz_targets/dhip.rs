//! Fuzz target: Dahua DHIP discovery datagrams (UDP 37810).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = camwatch_proto::dhip::parse(data);
});
