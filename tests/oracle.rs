//! tshark as an oracle: camwatch must see the same packets and the same TCP/UDP conversations
//! as Wireshark's dissectors, on generated captures and on the real camera captures.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use camwatch_synth::Anomalies;

use crate::replay::{eve_flows, replay};
use crate::util::*;

/// Canonical (proto, lower endpoint, higher endpoint) of every TCP/UDP packet tshark decodes,
/// skipping ICMP errors (which quote another packet's headers) and non-first fragments.
fn tshark_conversations(pcap: &Path) -> BTreeSet<(u8, String, String)> {
    let out = Command::new(tool("tshark"))
        .args(["-n", "-r"])
        .arg(pcap)
        .args(["-Y", "(tcp or udp) and not icmp and not icmpv6 and not (ip.frag_offset > 0)", "-T", "fields"])
        .args(["-E", "separator=|", "-e", "ip.src", "-e", "ipv6.src", "-e", "ip.dst", "-e", "ipv6.dst"])
        .args(["-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "udp.srcport", "-e", "udp.dstport"])
        .output()
        .unwrap();
    assert!(out.status.success(), "tshark: {}", text(&out.stderr));
    let mut set = BTreeSet::new();
    for line in text(&out.stdout).lines() {
        let f: Vec<&str> = line.split('|').map(|s| s.split(',').next().unwrap_or("")).collect();
        let pick = |a: &str, b: &str| if a.is_empty() { b.to_string() } else { a.to_string() };
        let (src, dst) = (pick(f[0], f[1]), pick(f[2], f[3]));
        let (proto, sp, dp) = if f[4].is_empty() { (17u8, f[6], f[7]) } else { (6u8, f[4], f[5]) };
        let fmt = |ip: &str, port: &str| {
            if ip.contains(':') {
                format!("[{ip}]:{port}")
            } else {
                format!("{ip}:{port}")
            }
        };
        let (a, b) = (fmt(&src, sp), fmt(&dst, dp));
        set.insert(if a <= b { (proto, a, b) } else { (proto, b, a) });
    }
    set
}

fn camwatch_conversations(pcap: &Path) -> BTreeSet<(u8, String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let r = replay(pcap, dir.path(), &["-q"]);
    eve_flows(&r.events)
        .into_keys()
        .filter(|(p, _, _)| *p == 6 || *p == 17)
        .map(|(p, a, b)| {
            let norm = |s: String| match s.rsplit_once(':') {
                Some((ip, port)) if ip.contains(':') => format!("[{ip}]:{port}"),
                _ => s,
            };
            let (a, b) = (norm(a), norm(b));
            if a <= b {
                (p, a, b)
            } else {
                (p, b, a)
            }
        })
        .collect()
}

fn tshark_frames(pcap: &Path) -> u64 {
    let out = Command::new(tool("tshark"))
        .args(["-n", "-r"])
        .arg(pcap)
        .args(["-T", "fields", "-e", "frame.number"])
        .output()
        .unwrap();
    text(&out.stdout).lines().count() as u64
}

#[test]
fn conversations_match_tshark_on_a_generated_capture() {
    let g = generated(13, Anomalies::all());
    assert_eq!(tshark_frames(&g.pcap), g.truth.packets);
    let ours = camwatch_conversations(&g.pcap);
    assert!(ours.len() > 10);
    assert_eq!(ours, tshark_conversations(&g.pcap));
}

#[test]
fn conversations_and_packet_counts_match_tshark_on_real_camera_captures() {
    let dir = corpus().join("camera");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 5, "camera captures missing from {}", dir.display());
    for f in files {
        let tmp = tempfile::tempdir().unwrap();
        let r = replay(&f, tmp.path(), &["-q"]);
        let packets =
            r.stdout.lines().find_map(|l| l.strip_prefix("packets")).unwrap().trim().parse::<u64>().unwrap();
        assert_eq!(packets, tshark_frames(&f), "{}", f.display());
        assert_eq!(camwatch_conversations(&f), tshark_conversations(&f), "{}", f.display());
    }
}

fn tshark_values(pcap: &Path, filter: &str, field: &str) -> BTreeSet<String> {
    let out = Command::new(tool("tshark"))
        .args(["-n", "-r"])
        .arg(pcap)
        .args(["-Y", filter, "-T", "fields", "-E", "aggregator=|", "-e", field])
        .output()
        .unwrap();
    // Names are compared exactly as sent (an mDNS label may start with a space).
    text(&out.stdout)
        .lines()
        .flat_map(|l| l.split('|').map(str::to_string).collect::<Vec<_>>())
        .map(|v| v.trim_end_matches('.').to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

/// DNS query names, TLS SNI and HTTP hosts as camwatch logs them.
fn camwatch_names(events: &[serde_json::Value]) -> [BTreeSet<String>; 3] {
    let mut dns = BTreeSet::new();
    let mut sni = BTreeSet::new();
    let mut host = BTreeSet::new();
    for e in events {
        // Suricata 7's EVE DNS: the question in `dns.rrname`, further ones (rare) under
        // `camwatch.dns.queries`.
        if let Some(q) = e["dns"]["rrname"].as_str() {
            dns.insert(q.trim_end_matches('.').to_string());
        }
        if let Some(qs) = e["camwatch"]["dns"]["queries"].as_array() {
            dns.extend(
                qs.iter().filter_map(|q| q["rrname"].as_str()).map(|s| s.trim_end_matches('.').to_string()),
            );
        }
        if let Some(s) = e["tls"]["sni"].as_str() {
            sni.insert(s.to_string());
        }
        if let Some(h) = e["http"]["hostname"].as_str() {
            host.insert(h.to_string());
        }
        // SSDP is HTTP over UDP: tshark reports its Host header as http.host.
        if let Some(h) = e["discovery"]["ssdp"]["host"].as_str() {
            host.insert(strip_port(h));
        }
    }
    [dns, sni, host]
}

fn strip_port(h: &str) -> String {
    match h.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) && !name.contains(':') => {
            name.to_string()
        }
        _ => h.to_string(),
    }
}

fn tshark_names(pcap: &Path) -> [BTreeSet<String>; 3] {
    let host: BTreeSet<String> =
        tshark_values(pcap, "http.request", "http.host").into_iter().map(|h| strip_port(&h)).collect();
    [
        tshark_values(pcap, "(dns or mdns) and not icmp and not icmpv6", "dns.qry.name"),
        tshark_values(pcap, "tls.handshake.type == 1", "tls.handshake.extensions_server_name"),
        host,
    ]
}

#[test]
fn dns_names_sni_and_http_hosts_match_tshark() {
    let g = generated(17, Anomalies::all());
    let mut pcaps = vec![g.pcap.clone()];
    for sub in ["ndpi", "camera"] {
        let mut v: Vec<_> = std::fs::read_dir(corpus().join(sub))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
            .collect();
        v.sort();
        pcaps.extend(v);
    }
    let mut mismatches = Vec::new();
    let mut compared = 0;
    let expected = crate::conformance::expectations();
    for pcap in &pcaps {
        let dir = tempfile::tempdir().unwrap();
        let ours = camwatch_names(&replay(pcap, dir.path(), &["-q"]).events);
        let theirs = tshark_names(pcap);
        let source = format!("tshark/{}", pcap.file_name().unwrap().to_string_lossy());
        for (i, what) in ["dns.qry.name", "tls.sni", "http.host"].iter().enumerate() {
            compared += theirs[i].len();
            let listed = expected.iter().any(|e| e.source == source && e.field == *what);
            if (ours[i] != theirs[i]) != listed {
                mismatches.push(format!(
                    "{source} {what} (listed in expectations: {listed}): only tshark {:?}, only camwatch {:?}",
                    theirs[i].difference(&ours[i]).collect::<Vec<_>>(),
                    ours[i].difference(&theirs[i]).collect::<Vec<_>>()
                ));
            }
        }
    }
    assert!(compared > 20, "too few names compared: {compared}");
    assert!(mismatches.is_empty(), "camwatch and tshark disagree:\n{}", mismatches.join("\n"));
}

/// IPv6 tunnelled in Teredo (suricata-verify's decode-teredo-01): camwatch sees the same inner
/// conversations as tshark, beside the UDP tunnel itself.
#[test]
fn teredo_tunnelled_ipv6_matches_tshark() {
    let pcap = corpus().join("suricata-verify/decode-teredo-01/input.pcap");
    let pair = |a: &str, b: &str| {
        let (a, b): (std::net::IpAddr, std::net::IpAddr) = (a.parse().unwrap(), b.parse().unwrap());
        if a <= b {
            (a, b)
        } else {
            (b, a)
        }
    };
    let out = Command::new(tool("tshark"))
        .args(["-n", "-r"])
        .arg(&pcap)
        .args(["-Y", "teredo && ipv6", "-T", "fields", "-e", "ipv6.src", "-e", "ipv6.dst"])
        .output()
        .unwrap();
    let want: BTreeSet<_> =
        text(&out.stdout).lines().filter_map(|l| l.split_once('\t')).map(|(a, b)| pair(a, b)).collect();
    assert!(want.len() >= 2, "{want:?}");
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let o = run(replay_cmd().arg(&pcap).arg("--events").arg(&events));
    assert!(o.status.success(), "{}", text(&o.stderr));
    let flows = read_jsonl(&events);
    let got: BTreeSet<_> = flows
        .iter()
        .filter(|e| e["event_type"] == "flow")
        .filter_map(|e| Some((e["src_ip"].as_str()?, e["dest_ip"].as_str()?)))
        .filter(|(a, _)| a.contains(':'))
        .map(|(a, b)| pair(a, b))
        .collect();
    assert_eq!(got, want);
    // The tunnel is still a flow of its own.
    assert!(flows
        .iter()
        .any(|e| e["event_type"] == "flow" && (e["dest_port"] == 3544 || e["src_port"] == 3544)));
}
