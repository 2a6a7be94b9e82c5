//! Hostile and broken input: clear errors naming the file, non-zero exits, no panics, and what
//! was read before the damage is kept.

use std::io::Write;

use camwatch_synth::Anomalies;

use crate::util::*;

fn no_panic(stderr: &str) {
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn truncated_capture_keeps_what_was_read_and_fails_clearly() {
    let g = generated(21, Anomalies::all());
    let full = std::fs::read(&g.pcap).unwrap();
    let cut = g.dir.path().join("cut.pcap");
    // Cut inside a packet record, three quarters through.
    std::fs::write(&cut, &full[..full.len() * 3 / 4 + 7]).unwrap();
    let events = g.dir.path().join("e.jsonl");
    let out = run(replay_cmd().arg("-q").arg("--events").arg(&events).arg(&cut));
    let err = text(&out.stderr);
    no_panic(&err);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cut.pcap") && err.contains("truncated"), "{err}");
    let stdout = text(&out.stdout);
    let packets: u64 =
        stdout.lines().find_map(|l| l.strip_prefix("packets")).map(|n| n.trim().parse().unwrap()).unwrap();
    assert!(packets > 0 && packets < g.truth.packets, "{stdout}");
    assert!(read_jsonl(&events).iter().any(|e| e["event_type"] == "flow"), "flows before the cut are logged");
}

#[test]
fn a_file_that_is_not_a_capture_and_an_empty_file_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.pcap");
    std::fs::write(&notes, "these are meeting notes, not packets\n".repeat(20)).unwrap();
    let empty = dir.path().join("empty.pcap");
    std::fs::File::create(&empty).unwrap();
    for (file, words) in [(&notes, "not a pcap or pcapng capture"), (&empty, "empty file")] {
        let out = run(replay_cmd().arg(file));
        let err = text(&out.stderr);
        no_panic(&err);
        assert!(!out.status.success());
        assert!(err.contains(&file.display().to_string()) && err.contains(words), "{err}");
    }
}

#[test]
fn rules_with_a_syntax_error_or_an_unknown_key_name_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let syntax = dir.path().join("syntax.yaml");
    std::fs::write(&syntax, "rules:\n  - id: a\n    name: \"unclosed\n    severity: high\n").unwrap();
    let unknown = dir.path().join("unknown.yaml");
    let mut f = std::fs::File::create(&unknown).unwrap();
    write!(
        f,
        "rules:\n  - id: a\n    name: A\n    severity: high\n    category: egress\n    match:\n      event: flow_start\n      wher:\n        dest_port: {{ eq: 23 }}\n"
    )
    .unwrap();
    for (file, line, words) in [(&syntax, None, "syntax.yaml:"), (&unknown, Some(8), "unknown field `wher`")]
    {
        let out = run(bin().arg("rules").arg("check").arg(file));
        let err = text(&out.stderr);
        no_panic(&err);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(words), "{err}");
        // file:line:column: message
        let loc = err.trim().split(": ").next().unwrap();
        let parts: Vec<&str> = loc.rsplitn(3, ':').collect();
        assert_eq!(parts.len(), 3, "{err}");
        assert!(parts[0].parse::<usize>().is_ok() && parts[1].parse::<usize>().is_ok(), "{err}");
        if let Some(l) = line {
            assert_eq!(parts[1], l.to_string(), "{err}");
        }
    }
    let ok = run(bin().arg("rules").arg("check").arg(rules_dir()));
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).starts_with("ok: "));
}

#[test]
fn a_missing_interface_is_a_clear_error() {
    let out = run(daemon_cmd().args(["--interface", "cw-nosuch0"]));
    let err = text(&out.stderr);
    no_panic(&err);
    assert!(!out.status.success());
    assert!(err.contains("cw-nosuch0"), "{err}");
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let g = generated(1, Anomalies::default());
    let out =
        run(bin().args(["run", "--listen", &addr, "--read"]).arg(&g.pcap).arg("--rules").arg(rules_dir()));
    let err = text(&out.stderr);
    no_panic(&err);
    assert!(!out.status.success());
    assert!(err.contains(&addr) && err.contains("cannot listen"), "{err}");
}

#[test]
fn garbage_frames_are_counted_not_fatal() {
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.pcap");
    let mut w =
        PcapWriter::with_header(std::fs::File::create(&path).unwrap(), PcapHeader::default()).unwrap();
    // Frames of every length up to 80 bytes with IPv4 ethertype and random-looking bytes.
    let mut state = 0x1234_5678u32;
    for len in 0..80usize {
        let mut data: Vec<u8> = (0..len)
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (state >> 16) as u8
            })
            .collect();
        if len >= 15 {
            data[12] = 0x08;
            data[13] = 0x00;
            data[14] = 0x45;
        }
        w.write_packet(&PcapPacket::new(Duration::from_secs(1_700_000_000 + len as u64), len as u32, &data))
            .unwrap();
    }
    drop(w);
    let m = dir.path().join("m.txt");
    let out = run(replay_cmd().arg("-q").arg("--metrics-out").arg(&m).arg(&path));
    let err = text(&out.stderr);
    no_panic(&err);
    assert!(out.status.success(), "{err}");
    let metrics = parse_metrics(&std::fs::read_to_string(&m).unwrap());
    let errors: f64 =
        metrics.iter().filter(|(k, _)| k.starts_with("camwatch_decode_errors_total")).map(|(_, v)| v).sum();
    assert!(errors >= 14.0, "frames shorter than an Ethernet header are link errors: {}", keys(&metrics));
    assert_eq!(metric(&metrics, "camwatch_capture_packets_total{source=\"file\"}"), 80.0);
}

/// A DNS query for a vendor cloud name cut into 16-byte IPv4 fragments (sent in reverse order,
/// an old evasion) is put back together: the lookup alert fires and the flow counts the fragments.
#[test]
fn a_fragmented_lookup_is_reassembled_and_still_alerted() {
    use etherparse::{IpFragOffset, IpNumber, Ipv4Header, PacketBuilder};
    let dir = tempfile::tempdir().unwrap();
    let mut dns = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in ["dev", "hik-connect", "com"] {
        dns.push(label.len() as u8);
        dns.extend_from_slice(label.as_bytes());
    }
    dns.extend_from_slice(&[0, 0, 1, 0, 1]);
    let mut datagram = Vec::new();
    PacketBuilder::ipv4([192, 168, 10, 11], [8, 8, 8, 8], 64)
        .udp(40000, 53)
        .write(&mut datagram, &dns)
        .unwrap();
    let ip_payload = datagram[20..].to_vec();
    let (cam, gw) = ([0x44, 0x19, 0xb6, 1, 2, 3], [0x4c, 0x5e, 0x0c, 0x1a, 0x2b, 0x3c]);
    let chunks: Vec<&[u8]> = ip_payload.chunks(16).collect();
    let mut frames: Vec<Vec<u8>> = chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let mut h =
                Ipv4Header::new(chunk.len() as u16, 64, IpNumber::UDP, [192, 168, 10, 11], [8, 8, 8, 8])
                    .unwrap();
            h.identification = 0x4242;
            h.more_fragments = i + 1 < chunks.len();
            h.fragment_offset = IpFragOffset::try_new((i * 2) as u16).unwrap();
            h.header_checksum = h.calc_header_checksum();
            let mut f = gw.to_vec();
            f.extend_from_slice(&cam);
            f.extend_from_slice(&[0x08, 0x00]);
            f.extend_from_slice(&h.to_bytes());
            f.extend_from_slice(chunk);
            f
        })
        .collect();
    frames.reverse();
    let n = frames.len() as u64;
    assert!(n >= 3);
    let pcap = dir.path().join("fragments.pcap");
    write_frames(&pcap, &frames);
    let (alerts, events, metrics) =
        (dir.path().join("a.jsonl"), dir.path().join("e.jsonl"), dir.path().join("m.txt"));
    let o = run(replay_cmd()
        .arg(&pcap)
        .arg("--alerts")
        .arg(&alerts)
        .arg("--events")
        .arg(&events)
        .arg("--metrics-out")
        .arg(&metrics));
    assert!(o.status.success(), "{}", text(&o.stderr));
    let alerts = read_jsonl(&alerts);
    assert!(alerts.iter().any(|a| a["rule"]["id"] == "hikvision-cloud-lookup"), "{alerts:?}");
    let events = read_jsonl(&events);
    let flow = events
        .iter()
        .find(|e| e["event_type"] == "flow" && e["dest_port"] == 53)
        .unwrap_or_else(|| panic!("no flow to port 53: {events:?}"));
    assert_eq!(flow["flow"]["pkts_toserver"], n);
    assert_eq!(flow["flow"]["bytes_toserver"], n * 20 + ip_payload.len() as u64);
    let m = parse_metrics(&std::fs::read_to_string(&metrics).unwrap());
    assert_eq!(metric(&m, "camwatch_fragmented_datagrams_total{result=\"reassembled\"}"), 1.0);
}

/// Every capture in the test data (camera captures, suricata-verify and nDPI cases, WS-Discovery
/// scans, Zeek's hostile DNS traces) replayed alone with the shipped packs: each ends with an
/// answer (exit 0, or 1 when the file itself is damaged), never a crash. Four of Zeek's DNS traces
/// (EDNS options, a LOC record, ECH, TSIG) used to end the process.
#[test]
fn every_capture_in_the_test_data_replays_without_a_crash() {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&corpus(), &mut files);
    files.sort();
    assert!(files.len() >= 50, "only {} captures found", files.len());
    let mut failures = Vec::new();
    for f in &files {
        let out = run(replay_cmd().arg("-q").arg(f));
        let err = text(&out.stderr);
        let code = out.status.code();
        if err.contains("panicked") || !matches!(code, Some(0 | 1)) {
            failures.push(format!(
                "{} (exit {code:?}): {}",
                f.display(),
                err.lines().last().unwrap_or_default()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} captures crashed camwatch:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

/// The journal, event log and state database describe the estate and its weaknesses: nobody but
/// the sensor's user (and, for the logs, a shipper's group) may read them.
#[test]
fn outputs_are_created_private() {
    use std::os::unix::fs::PermissionsExt;
    let g = generated(23, Anomalies::all());
    let dir = g.dir.path();
    let (alerts, events, state) = (dir.join("a.jsonl"), dir.join("e.jsonl"), dir.join("s.db"));
    let o = run(replay_cmd()
        .arg("-q")
        .arg(&g.pcap)
        .arg("--alerts")
        .arg(&alerts)
        .arg("--events")
        .arg(&events)
        .arg("--state")
        .arg(&state));
    assert!(o.status.success(), "{}", text(&o.stderr));
    for (path, most) in [(&alerts, 0o640), (&events, 0o640), (&state, 0o600)] {
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & !most, 0, "{} is {mode:o}, at most {most:o}", path.display());
        assert_eq!(mode & 0o600, 0o600, "{} is {mode:o}", path.display());
    }
}
