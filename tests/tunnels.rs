//! Tunnels and link types on Zeek's own test traces (`tests/data/corpus/zeek-tunnels`), with
//! Zeek's logs for them as the oracle: every connection Zeek found inside a tunnel (or, in a
//! trace with no tunnel, every connection) is a camwatch flow, marked with the tunnel; and
//! every HTTP request Zeek logged over NFLOG and LLC/SNAP is a camwatch `http` event.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::util::*;

fn zeek_dir() -> std::path::PathBuf {
    corpus().join("zeek-tunnels")
}

/// Rows of a Zeek log as maps from field name to value.
fn zeek_rows(path: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let fields: Vec<String> = text
        .lines()
        .find_map(|l| l.strip_prefix("#fields\t"))
        .unwrap_or_else(|| panic!("{}: no #fields line", path.display()))
        .split('\t')
        .map(str::to_string)
        .collect();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| fields.iter().cloned().zip(l.split('\t').map(str::to_string)).collect())
        .collect()
}

/// Replays a trace; returns its EVE events.
fn events_of(pcap: &Path) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("e.jsonl");
    let o = run(replay_cmd().arg("-q").arg(pcap).arg("--events").arg(&events));
    assert!(o.status.success(), "{}: {}", pcap.display(), text(&o.stderr));
    read_jsonl(&events)
}

/// A direction-free key: (proto, the two ends). ICMP ends carry no port (Zeek puts the reply
/// type where camwatch, like Community ID, puts the code).
fn key(proto: &str, a: (&str, &str), b: (&str, &str)) -> (String, String, String) {
    let proto = proto.to_ascii_lowercase();
    let icmp = proto.starts_with("icmp") || proto.starts_with("ipv6-icmp");
    let end = |(h, p): (&str, &str)| if icmp { h.to_string() } else { format!("{h}:{p}") };
    let (x, y) = (end(a), end(b));
    let proto = if icmp { "icmp".to_string() } else { proto };
    if x <= y {
        (proto, x, y)
    } else {
        (proto, y, x)
    }
}

#[test]
fn inner_connections_match_zeek_in_every_tunnel_and_link_type() {
    // (trace, what camwatch must mark its inner flows with; None: no tunnel, every connection)
    let traces: &[(&str, Option<&str>)] = &[
        ("erspanI", Some("erspan_i")),
        ("erspanII", Some("erspan_ii")),
        ("erspanIII", Some("erspan_iii")),
        ("vxlan", Some("vxlan")),
        ("geneve", Some("geneve")),
        ("gre-sample", Some("gre")),
        ("gre-pptp", Some("pptp")),
        ("gre-over-udp-4754", Some("gre")),
        ("gtp7_ipv6", Some("gtp_u")),
        ("gtp6_gtp_0x32", Some("gtp_u")),
        // Outer IPv4 fragments: the GTP-U datagram is reassembled, then looked inside.
        ("gtp1_gn_normal_incl_fragmentation", Some("gtp_u")),
        ("ayiya3", Some("ayiya")),
        ("mpls-in-vlan", Some("mpls")),
        ("q-in-q", None),
    ];
    let mut report = Vec::new();
    for (name, tunnel) in traces {
        let rows = zeek_rows(&zeek_dir().join(format!("{name}.conn.log")));
        let expected: BTreeSet<_> = rows
            .iter()
            .filter(|r| tunnel.is_none() || *name == "mpls-in-vlan" || r["tunnel_parents"] != "-")
            .map(|r| key(&r["proto"], (&r["id.orig_h"], &r["id.orig_p"]), (&r["id.resp_h"], &r["id.resp_p"])))
            .collect();
        assert!(!expected.is_empty(), "{name}: Zeek found no inner connection");
        let events = events_of(&zeek_dir().join(format!("{name}.pcap")));
        let flows: Vec<&Value> = events.iter().filter(|e| e["event_type"] == "flow").collect();
        let found: BTreeSet<_> = flows
            .iter()
            .map(|f| {
                let port = |k: &str| f[k].as_u64().unwrap_or(0).to_string();
                let (sp, dp) = (port("src_port"), port("dest_port"));
                key(
                    f["proto"].as_str().unwrap_or(""),
                    (f["src_ip"].as_str().unwrap_or(""), &sp),
                    (f["dest_ip"].as_str().unwrap_or(""), &dp),
                )
            })
            .collect();
        let missing: Vec<_> = expected.difference(&found).collect();
        assert!(
            missing.is_empty(),
            "{name}: Zeek's connections camwatch did not see: {missing:?}\nfound: {found:?}"
        );
        if *name == "mpls-in-vlan" {
            // Its first packets are plain IP in VLAN, the rest MPLS: a flow is marked by its
            // first packet, so some are marked and some not.
            assert!(flows.iter().any(|f| f["encapsulation"] == "mpls"), "{name}: no flow marked MPLS");
        } else if let Some(t) = tunnel {
            // Every flow Zeek saw inside is marked with the tunnel it came out of.
            for f in &flows {
                let k = key(
                    f["proto"].as_str().unwrap_or(""),
                    (f["src_ip"].as_str().unwrap_or(""), &f["src_port"].as_u64().unwrap_or(0).to_string()),
                    (f["dest_ip"].as_str().unwrap_or(""), &f["dest_port"].as_u64().unwrap_or(0).to_string()),
                );
                if expected.contains(&k) {
                    assert_eq!(f["encapsulation"], *t, "{name}: {f}");
                    assert!(f["tunnel"]["proto"].is_string(), "{name}: {f}");
                }
            }
        }
        if *name == "gtp1_gn_normal_incl_fragmentation" {
            // Most of its datagrams came in fragments: every inner packet Zeek counted is in
            // the inner flow (camwatch counts a datagram as its fragments, so at least as many),
            // and none of them is left as an outer GTP-U flow.
            let zeek: u64 = rows
                .iter()
                .filter(|r| r["tunnel_parents"] != "-")
                .map(|r| {
                    r["orig_pkts"].parse::<u64>().unwrap_or(0) + r["resp_pkts"].parse::<u64>().unwrap_or(0)
                })
                .sum();
            let pkts = |f: &&&Value| {
                f["flow"]["pkts_toserver"].as_u64().unwrap_or(0)
                    + f["flow"]["pkts_toclient"].as_u64().unwrap_or(0)
            };
            let inner: u64 = flows.iter().filter(|f| f["encapsulation"] == "gtp_u").map(|f| pkts(&f)).sum();
            assert!(inner >= zeek, "{name}: {inner} inner packets, Zeek {zeek}");
            assert!(
                flows.iter().all(|f| f["dest_port"] != 2152 && f["src_port"] != 2152),
                "{name}: an outer flow left"
            );
        }
        report.push(format!("{name}: {} of Zeek's connections", expected.len()));
    }
    eprintln!("{}", report.join("\n"));
}

#[test]
fn http_over_nflog_and_llc_snap_matches_zeek() {
    for name in ["nflog-http", "snap-tcp"] {
        let rows = zeek_rows(&zeek_dir().join(format!("{name}.http.log")));
        assert!(!rows.is_empty());
        let events = events_of(&zeek_dir().join(format!("{name}.pcap")));
        let http: BTreeSet<(String, String)> = events
            .iter()
            .filter(|e| e["event_type"] == "http")
            .map(|e| {
                (
                    e["http"]["hostname"].as_str().unwrap_or("").to_string(),
                    e["http"]["url"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        for r in &rows {
            let want = (r["host"].clone(), r["uri"].clone());
            assert!(http.contains(&want), "{name}: Zeek's request {want:?} missing from {http:?}");
        }
    }
}
