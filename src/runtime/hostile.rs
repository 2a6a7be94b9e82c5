//! Hostile input for every stage, not only the parsers: decoding, defragmentation, stream
//! following and the application dispatcher, capture files, the rules and config loaders and the
//! journal reader each get every prefix, every single-bit flip and thousands of corrupted
//! variants of real inputs (the parsers' own generator). None may panic, and the bounded ones
//! must stay within their bounds.

use std::path::{Path, PathBuf};

use camwatch_proto::hostile::each_variant;
use etherparse::PacketBuilder;

use crate::analysis::app::{AppLayer, Output};
use crate::capture::{CaptureConfig, Next, Source};
use crate::decode::{decode, teredo_inner, Decoded};
use crate::detect::RuleSet;
use crate::flow::Defrag;
use crate::model::event::FlowRecord;
use crate::model::packet::linktype;
use crate::model::yaml::parse_yaml;
use crate::runtime::config::Config;

fn frame(payload: &[u8], tcp: bool) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([0x44, 0x19, 0xb6, 1, 2, 3], [0, 0x11, 0x22, 0x33, 0x44, 0x55])
        .single_vlan(etherparse::VlanId::try_new(10).unwrap_or_else(|e| panic!("{e}")))
        .ipv4([192, 168, 1, 64], [203, 0, 113, 9], 64);
    let mut out = Vec::new();
    let written = if tcp {
        b.tcp(40_000, 80, 1000, 64240).ack(1).write(&mut out, payload)
    } else {
        b.udp(5353, 5353).write(&mut out, payload)
    };
    written.unwrap_or_else(|e| panic!("{e}"));
    out
}

fn samples() -> Vec<Vec<u8>> {
    let arp = [
        &[0xff; 6][..],
        &[0x44, 0x19, 0xb6, 1, 2, 3],
        &[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1, 0x44, 0x19, 0xb6, 1, 2, 3, 192, 168, 1, 64],
        &[0; 6],
        &[192, 168, 1, 1],
    ]
    .concat();
    let mut v6 = Vec::new();
    PacketBuilder::ethernet2([2; 6], [3; 6])
        .ipv6(
            [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfb],
            255,
        )
        .udp(5353, 5353)
        .write(&mut v6, b"\0\0\x84\0\0\0\0\x01")
        .unwrap_or_else(|e| panic!("{e}"));
    vec![
        frame(b"GET /ISAPI/System/deviceInfo HTTP/1.1\r\nHost: cam\r\n\r\n", true),
        frame(b"\0\0\0\0\0\x01\0\0\0\0\0\0\x03cam\x05local\0\0\x01\0\x01", false),
        arp,
        v6,
    ]
}

#[test]
fn decoding_any_bytes_in_any_link_type_never_panics() {
    let mut decoded = 0u64;
    each_variant(&samples(), |bytes| {
        for lt in linktype::ALL {
            if let Ok(Decoded::Ip(ip)) = decode(lt, bytes) {
                decoded += 1;
                let _ = teredo_inner(&ip);
            }
        }
    });
    assert!(decoded > 1000, "the variants mostly failed to decode: {decoded}");
}

#[test]
fn fragments_and_streams_from_any_bytes_stay_bounded() {
    let mut defrag = Defrag::default();
    let mut app = AppLayer::default();
    let mut out = Output::default();
    let mut ts = 0;
    let mut flow_id = 0;
    each_variant(&samples(), |bytes| {
        ts += 1_000;
        let Ok(Decoded::Ip(ip)) = decode(linktype::ETHERNET, bytes) else { return };
        if ip.frag.is_some() {
            let _ = defrag.add(&ip, ts);
            assert!(defrag.len() <= 256);
        }
        // Every variant as the first packet of a flow and as a later one in both directions,
        // through stream following and the dispatcher.
        flow_id += 1;
        let rec = FlowRecord::open(flow_id % 512, &ip, ts);
        for to_server in [true, false] {
            app.packet(&rec, &ip, to_server, ts, &mut out);
        }
        if flow_id % 512 == 0 {
            app.end(&rec, &mut out);
        }
        out.events.clear();
        out.failures.clear();
    });
}

#[test]
fn damaged_capture_files_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut pcap =
        vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0];
    for f in samples().iter().take(2) {
        let len = u32::try_from(f.len()).unwrap_or(0).to_le_bytes();
        pcap.extend_from_slice(&[0x80, 0x3e, 0x56, 0x69, 0, 0, 0, 0]);
        pcap.extend_from_slice(&len);
        pcap.extend_from_slice(&len);
        pcap.extend_from_slice(f);
    }
    let path = dir.path().join("v.pcap");
    let cfg = CaptureConfig::default();
    let mut read = 0u64;
    // The header and the first record are where structure is: their variants, whole files after.
    each_variant(&[pcap], |bytes| {
        if std::fs::write(&path, bytes).is_err() {
            return;
        }
        let Ok(mut sources) = Source::open_all(&[], std::slice::from_ref(&path), &cfg) else { return };
        for src in &mut sources {
            for _ in 0..16 {
                match src.next_packet() {
                    Ok(Next::Packet(_)) => read += 1,
                    Ok(Next::Timeout) => {}
                    Ok(Next::End) | Err(_) => break,
                }
            }
        }
    });
    assert!(read > 0);
}

/// Variants of a text file, as text (invalid UTF-8 is read lossily, as it would be refused).
fn each_text_variant(text: &str, mut f: impl FnMut(&str)) {
    each_variant(&[text.as_bytes().to_vec()], |b| f(&String::from_utf8_lossy(b)));
}

#[test]
fn damaged_rules_and_config_files_are_errors_not_panics() {
    let rules = "networks:\n  allowed: [private, '10.0.0.0/8']\nlists:\n  cloud: ['*.hik-connect.com', dev.ys7.com]\nrules:\n  - id: r\n    name: R\n    severity: high\n    category: egress\n    match:\n      event: flow_start\n      where:\n        dest_ip: { not_in: [allowed] }\n        dest_port: { in: [443, 8666] }\n    suppress: { key: [device, dest_ip], interval: 1h }\n";
    let mut compiled = 0;
    each_text_variant(rules, |t| {
        if RuleSet::compile(&[(PathBuf::from("v.yaml"), t.to_string())]).is_ok() {
            compiled += 1;
        }
    });
    assert!(compiled > 0);
    let config = "sensor: s\nworkers: 2\ncapture:\n  read_timeout: 250ms\nflow:\n  max_flows: 1000\nalerts:\n  per_device: 5\nsinks:\n  webhooks:\n    - name: w\n      url: http://127.0.0.1:9/x\n";
    each_text_variant(config, |t| {
        let _ = parse_yaml::<Config>(Path::new("c.yaml"), t);
    });
}

#[test]
fn a_damaged_journal_is_read_past_not_a_panic() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let line = r#"{"id":"0123456789abcdef","fingerprint":"00000000000000ff","status":"firing","timestamp":"2026-01-01T00:00:00.000000Z","starts_at":"2026-01-01T00:00:00.000000Z","rule":{"id":"r","name":"R","severity":"high"},"category":"egress","summary":"s","key":"device=10.0.0.1","device":{"ip":"10.0.0.1","mac":null,"vendor":null,"model":null,"firmware":null},"src_ip":"10.0.0.1","src_port":1,"dest_ip":"203.0.113.1","dest_port":443,"proto":"TCP","community_id":"1:x","flow_id":1,"evidence":{"event_type":"flow_start","matched":[]},"sensor":"s"}"#;
    let journal = dir.path().join("a.jsonl");
    let text = format!("{line}\n{line}\n");
    let mut read = 0usize;
    each_text_variant(&text, |t| {
        if std::fs::write(&journal, t).is_err() {
            return;
        }
        let _ = crate::sink::journal::scan(&journal, t.len() as u64, |_| read += 1);
        let _ = crate::sink::Record::parse(t.lines().next().unwrap_or_default());
    });
    assert!(read > 0);
}
