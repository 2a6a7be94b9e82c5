//! Fuzz target: a sequence of Ethernet frames (each prefixed by a 2-byte length) through
//! defragmentation, the flow record, TCP stream following and the application dispatcher, as a
//! worker runs them. The tables must stay within their bounds.
#![no_main]

use camwatch::analysis::app::{AppLayer, Output};
use camwatch::decode::{decode, Decoded};
use camwatch::flow::Defrag;
use camwatch::model::event::FlowRecord;
use camwatch::model::packet::linktype;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut defrag = Defrag::default();
    let mut app = AppLayer::default();
    let mut out = Output::default();
    let mut rest = data;
    let mut ts = 1;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let frame = rest.get(2..2 + len).unwrap_or(&rest[2..]);
        rest = rest.get(2 + len..).unwrap_or_default();
        ts += 1_000;
        let Ok(Decoded::Ip(ip)) = decode(linktype::ETHERNET, frame) else { continue };
        if ip.frag.is_some() {
            let _ = defrag.add(&ip, ts);
            assert!(defrag.len() <= 256);
        }
        // Flows keyed by the ports, so several frames meet in one flow.
        let rec = FlowRecord::open(u64::from(ip.src_port ^ ip.dst_port), &ip, ts);
        app.packet(&rec, &ip, ip.src_port > ip.dst_port, ts, &mut out);
        if ip.tcp_flags & 1 != 0 {
            app.end(&rec, &mut out);
        }
    }
});
