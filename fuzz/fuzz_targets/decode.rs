//! Fuzz target: decoding one frame in every link type camwatch reads, and Teredo's inner packet.
#![no_main]

use camwatch::decode::{decode, teredo_inner, Decoded};
use camwatch::model::packet::linktype;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for lt in linktype::ALL {
        if let Ok(Decoded::Ip(ip)) = decode(lt, data) {
            if let Some(inner) = teredo_inner(&ip) {
                let _ = decode(linktype::RAW, inner);
            }
        }
    }
});
