//! Fuzz target: DNS/mDNS over UDP and TCP framing, and the passive DNS map fed with whatever
//! parses (CNAME chains built from hostile input must not loop or grow without bound).
#![no_main]

use camwatch_proto::dns;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut pdns = dns::PassiveDns::new(16);
    if let Ok(msg) = dns::parse(data) {
        pdns.learn(&msg, 0);
        for answer in &msg.answers {
            if let Ok(ip) = answer.rdata.parse() {
                let _ = pdns.lookup(ip, 1);
            }
        }
    }
    let mut rest = data;
    while let Ok((msg, used)) = dns::parse_tcp(rest) {
        pdns.learn(&msg, 0);
        rest = rest.get(used..).unwrap_or_default();
    }
    assert!(pdns.len() <= 16);
});
