//! Capture formats beyond classic Ethernet pcap: a pcapng whose interfaces have different link
//! types (libpcap refuses it; camwatch reads it with pcap-file) with per-interface timestamp
//! resolution.

use std::borrow::Cow;
use std::time::Duration;

use etherparse::PacketBuilder;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::{Block, PcapNgWriter};
use pcap_file::DataLink;

#[test]
fn pcapng_with_mixed_link_types_and_nanosecond_timestamps_is_read() {
    let mut eth = Vec::new();
    PacketBuilder::ethernet2([0x44, 0x47, 0xcc, 1, 2, 3], [0x24, 0x28, 0xfd, 4, 5, 6])
        .ipv4([192, 168, 1, 5], [203, 0, 113, 9], 64)
        .tcp(40000, 443, 1, 64240)
        .syn()
        .write(&mut eth, &[])
        .unwrap();
    let mut raw = Vec::new();
    PacketBuilder::ipv4([10, 0, 0, 7], [198, 51, 100, 3], 64)
        .udp(5353, 53)
        .write(&mut raw, b"hello")
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.pcapng");
    let mut w = PcapNgWriter::new(std::fs::File::create(&path).unwrap()).unwrap();
    let idb = |linktype, options| {
        Block::InterfaceDescription(InterfaceDescriptionBlock { linktype, snaplen: 0, options })
    };
    w.write_block(&idb(DataLink::ETHERNET, vec![])).unwrap();
    // Nanosecond timestamps on the second interface (if_tsresol = 9).
    w.write_block(&idb(DataLink::RAW, vec![InterfaceDescriptionOption::IfTsResol(9)])).unwrap();
    let t = 1_767_225_600u64;
    let epb = |interface_id, ticks: u64, data: &Vec<u8>| {
        // pcap-file writes the raw tick count it is given as "nanoseconds".
        Block::EnhancedPacket(EnhancedPacketBlock {
            interface_id,
            timestamp: Duration::from_nanos(ticks),
            original_len: data.len() as u32,
            data: Cow::Owned(data.clone()),
            options: vec![],
        })
    };
    w.write_block(&epb(0, t * 1_000_000 + 250_000, &eth)).unwrap();
    w.write_block(&epb(1, (t + 1) * 1_000_000_000 + 500_000_000, &raw)).unwrap();
    drop(w);

    let r = crate::replay::replay(&path, dir.path(), &["-q"]);
    assert!(r.stdout.contains("packets  2"), "{}", r.stdout);
    let mut got: Vec<(String, String)> = r
        .alerts
        .iter()
        .map(|a| (a["dest_ip"].as_str().unwrap().into(), a["timestamp"].as_str().unwrap().into()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("198.51.100.3".to_string(), "2026-01-01T00:00:01.500000Z".to_string()),
            ("203.0.113.9".to_string(), "2026-01-01T00:00:00.250000Z".to_string()),
        ]
    );
}
