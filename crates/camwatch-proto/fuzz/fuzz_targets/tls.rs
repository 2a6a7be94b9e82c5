//! Fuzz target: TLS ClientHello / ServerHello reassembly and JA3/JA3S/JA4 fingerprints.
#![no_main]

use camwatch_proto::tls::{parse_client_hello, parse_server_hello, Parsed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A complete hello depends only on the bytes it consumed: the record must come back
    // identical from exactly those bytes (nothing past them may change the answer).
    if let Ok(Parsed::Complete(hello, used)) = parse_client_hello(data) {
        assert!(used > 0 && used <= data.len());
        assert_eq!(parse_client_hello(&data[..used]), Ok(Parsed::Complete(hello.clone(), used)));
        assert_eq!(hello.ja3.hash.len(), 32);
        assert_eq!(hello.ja4.len(), 36);
    }
    if let Ok(Parsed::Complete(hello, used)) = parse_server_hello(data) {
        assert!(used > 0 && used <= data.len());
        assert_eq!(parse_server_hello(&data[..used]), Ok(Parsed::Complete(hello, used)));
    }
});
