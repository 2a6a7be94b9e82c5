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

use crate::util::*;

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

/// Logs piped to a file or a shipper carry no ANSI colour codes; `--log-format json` writes one
/// JSON object a line with the level and message.
#[test]
fn logs_are_plain_when_piped_and_json_on_request() {
    let g = generated(3, camwatch_synth::Anomalies { egress: true, ..Default::default() });
    let plain = run(replay_cmd().arg(&g.pcap));
    assert!(plain.status.success(), "{}", text(&plain.stderr));
    let err = text(&plain.stderr);
    assert!(err.contains("Alert:") && !err.contains('\u{1b}'), "colour codes in piped logs:\n{err}");
    let json = run(replay_cmd().args(["--log-format", "json"]).arg(&g.pcap));
    assert!(json.status.success(), "{}", text(&json.stderr));
    let lines: Vec<serde_json::Value> = text(&json.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["level"] == "WARN" && l["message"].as_str().is_some_and(|m| m.starts_with("Alert:"))),
        "{lines:?}"
    );
    assert!(lines.iter().all(|l| l["timestamp"].is_string() && l["level"].is_string()));
}

/// Shell completions and the manual page come from the command line's own definition.
#[test]
fn completions_and_the_man_page_cover_every_subcommand() {
    let bash = run(bin().args(["completions", "bash"]));
    assert!(bash.status.success());
    let bash = text(&bash.stdout);
    assert!(bash.contains("complete -F") && bash.contains("--log-format"), "{bash}");
    let man = run(bin().arg("man"));
    assert!(man.status.success());
    let man = text(&man.stdout);
    assert!(man.starts_with(".ie") || man.contains(".TH camwatch"), "{}", &man[..man.len().min(200)]);
    for sub in ["run", "replay", "rules", "synth", "inventory", "completions"] {
        assert!(man.contains(sub), "{sub} not in the man page");
        let help = run(bin().args([sub, "--help"]));
        assert!(text(&help.stdout).contains("Examples:"), "{sub} --help has no examples");
    }
}
