//! Replays generated captures and checks flows, devices, alerts and metrics against the
//! generator's own record of what it put on the wire.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use camwatch::model::netset::NetSet;
use camwatch_synth::{Anomalies, Truth};
use serde_json::Value;

use crate::util::*;

type FlowKey = (u8, String, String);
type Counters = (u64, u64, u64, u64);

pub fn proto_num(p: &str) -> u8 {
    match p {
        "TCP" => 6,
        "UDP" => 17,
        "ICMP" => 1,
        other => other.parse().unwrap_or(0),
    }
}

/// Flow records from the event log, summed per 5-tuple (a 5-tuple that goes idle and comes back
/// is two records of one conversation).
pub fn eve_flows(events: &[Value]) -> BTreeMap<FlowKey, Counters> {
    let mut out: BTreeMap<FlowKey, Counters> = BTreeMap::new();
    for e in events.iter().filter(|e| e["event_type"] == "flow") {
        let key = (
            proto_num(e["proto"].as_str().unwrap()),
            format!("{}:{}", e["src_ip"].as_str().unwrap(), e["src_port"]),
            format!("{}:{}", e["dest_ip"].as_str().unwrap(), e["dest_port"]),
        );
        let f = &e["flow"];
        let c = out.entry(key).or_default();
        c.0 += f["pkts_toserver"].as_u64().unwrap();
        c.1 += f["pkts_toclient"].as_u64().unwrap();
        c.2 += f["bytes_toserver"].as_u64().unwrap();
        c.3 += f["bytes_toclient"].as_u64().unwrap();
    }
    out
}

fn truth_flows(t: &Truth) -> BTreeMap<FlowKey, Counters> {
    let mut out: BTreeMap<FlowKey, Counters> = BTreeMap::new();
    for f in &t.flows {
        let c = out.entry((f.proto, f.src.to_string(), f.dst.to_string())).or_default();
        c.0 += f.packets_fwd;
        c.1 += f.packets_rev;
        c.2 += f.bytes_fwd;
        c.3 += f.bytes_rev;
    }
    out
}

/// (device, destination) of the egress rule's alerts.
pub fn alert_pairs(alerts: &[Value]) -> BTreeSet<(String, String)> {
    alerts
        .iter()
        .filter(|a| a["rule"]["id"] == "egress-outside-allowed")
        .map(|a| {
            (a["device"]["ip"].as_str().unwrap().to_string(), a["dest_ip"].as_str().unwrap().to_string())
        })
        .collect()
}

fn truth_pairs(t: &Truth) -> BTreeSet<(String, String)> {
    t.egress.iter().map(|e| (e.device.to_string(), e.dest.to_string())).collect()
}

pub struct Replayed {
    pub stdout: String,
    pub alerts: Vec<Value>,
    pub events: Vec<Value>,
    pub metrics: BTreeMap<String, f64>,
}

pub fn replay(pcap: &Path, dir: &Path, extra: &[&str]) -> Replayed {
    let (a, e, m) = (dir.join("alerts.jsonl"), dir.join("events.jsonl"), dir.join("metrics.txt"));
    for p in [&a, &e, &m] {
        let _ = std::fs::remove_file(p);
    }
    let mut cmd = bin();
    cmd.arg("replay");
    // The shipped rules, unless the test brings its own.
    if !extra.contains(&"--rules") {
        cmd.arg("--rules").arg(rules_dir());
    }
    let out = run(cmd
        .arg("--alerts")
        .arg(&a)
        .arg("--events")
        .arg(&e)
        .arg("--metrics-out")
        .arg(&m)
        .args(extra)
        .arg(pcap));
    assert!(out.status.success(), "replay failed: {}\n{}", text(&out.stderr), text(&out.stdout));
    Replayed {
        stdout: text(&out.stdout),
        alerts: read_jsonl(&a),
        events: read_jsonl(&e),
        metrics: parse_metrics(&std::fs::read_to_string(&m).unwrap()),
    }
}

#[test]
fn replay_agrees_with_the_generator() {
    let g = generated(7, Anomalies::all());
    let t = &g.truth;
    let r = replay(&g.pcap, g.dir.path(), &["-q"]);

    // Every conversation, with exact per-direction packet and byte counts.
    assert_eq!(eve_flows(&r.events), truth_flows(t));

    // One alert per (device, outside destination): suppression merges repeats.
    let pairs = truth_pairs(t);
    assert!(!pairs.is_empty());
    assert_eq!(alert_pairs(&r.alerts), pairs);
    let egress: Vec<&Value> =
        r.alerts.iter().filter(|a| a["rule"]["id"] == "egress-outside-allowed").collect();
    assert_eq!(egress.len(), pairs.len());
    let vendor: BTreeMap<String, &str> =
        t.devices.iter().map(|d| (d.ip.to_string(), d.vendor.as_str())).collect();
    for a in egress {
        assert_eq!(a["rule"]["id"], "egress-outside-allowed");
        assert_eq!(a["rule"]["severity"], "high");
        assert_eq!(a["category"], "egress");
        assert!(a["community_id"].as_str().unwrap().starts_with("1:"));
        let dev = a["device"]["ip"].as_str().unwrap();
        assert_eq!(a["device"]["vendor"].as_str(), Some(vendor[dev]), "{a}");
        assert_eq!(a["src_ip"].as_str(), Some(dev), "the device opened the flow: {a}");
        let dest: Ipv4Addr = a["dest_ip"].as_str().unwrap().parse().unwrap();
        let port = a["dest_port"].as_u64().unwrap();
        assert!(t.egress.iter().any(|e| e.dest == dest && u64::from(e.dest_port) == port), "{a}");
    }

    // The inventory: every private host that sent a packet, with its OUI vendor.
    let devices: BTreeSet<String> = r
        .events
        .iter()
        .filter(|e| e["event_type"] == "device" && e["device"]["event"] == "new")
        .map(|e| e["device"]["ip"].as_str().unwrap().to_string())
        .collect();
    let truth_devices: BTreeSet<String> = t.devices.iter().map(|d| d.ip.to_string()).collect();
    assert_eq!(devices, truth_devices);
    assert!(r.stdout.contains(&format!("devices  {}", truth_devices.len())), "{}", r.stdout);

    // Metrics, from the same run.
    let m = &r.metrics;
    assert_eq!(metric(m, "camwatch_capture_packets_total{source=\"file\"}"), t.packets as f64);
    assert_eq!(metric(m, "camwatch_capture_bytes_total{source=\"file\"}"), t.bytes as f64);
    assert_eq!(
        metric(m, "camwatch_alerts_total{rule=\"egress-outside-allowed\",severity=\"high\"}"),
        pairs.len() as f64
    );
    assert_eq!(metric(m, "camwatch_devices"), truth_devices.len() as f64);
    assert_eq!(metric(m, "camwatch_flows_active"), 0.0, "every flow ended with the capture");
    for layer in ["link", "network", "transport"] {
        let key = format!("camwatch_decode_errors_total{{layer=\"{layer}\"}}");
        assert_eq!(m.get(&key), Some(&0.0), "present at zero: {}", keys(m));
    }
    for d in t.devices.iter().filter(|d| d.role == "camera") {
        let mac = d.mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
        let series: Vec<&String> = m
            .keys()
            .filter(|k| k.starts_with("camwatch_device_info{") && k.contains(&format!("device=\"{}\"", d.ip)))
            .collect();
        assert_eq!(series.len(), 1, "{series:?}");
        assert!(series[0].contains(&format!("mac=\"{mac}\"")), "{}", series[0]);
        assert!(series[0].contains(&format!("vendor=\"{}\"", d.vendor)), "{}", series[0]);
    }
    // Bytes each device exchanged with the internet, per direction.
    let private = NetSet::private();
    let mut external: BTreeMap<(String, &str), u64> = BTreeMap::new();
    for f in &t.flows {
        let (s, d) = (IpAddr::V4(*f.src.ip()), IpAddr::V4(*f.dst.ip()));
        let outside =
            |ip: IpAddr| !private.contains(ip) && !ip.is_multicast() && ip != IpAddr::from([255; 4]);
        if private.contains(s) && outside(d) {
            *external.entry((s.to_string(), "sent")).or_default() += f.bytes_fwd;
            *external.entry((s.to_string(), "received")).or_default() += f.bytes_rev;
        }
        if private.contains(d) && outside(s) {
            *external.entry((d.to_string(), "received")).or_default() += f.bytes_fwd;
            *external.entry((d.to_string(), "sent")).or_default() += f.bytes_rev;
        }
    }
    assert!(!external.is_empty());
    for ((dev, dir), bytes) in external {
        let key = format!(
            "camwatch_device_bytes_total{{dest_class=\"external\",device=\"{dev}\",direction=\"{dir}\"}}"
        );
        assert_eq!(metric(m, &key), bytes as f64, "{key}");
    }
    let flagged =
        metric(m, &format!("camwatch_device_unexpected_destinations{{device=\"{}\"}}", t.egress[0].device));
    let want = pairs.iter().filter(|(d, _)| *d == t.egress[0].device.to_string()).count();
    assert_eq!(flagged, want as f64);
}

#[test]
fn a_clean_network_raises_no_alert() {
    let g = generated(11, Anomalies::default());
    assert!(g.truth.egress.is_empty());
    let r = replay(&g.pcap, g.dir.path(), &[]);
    assert!(r.alerts.is_empty(), "{:?}", r.alerts);
    assert!(!r.metrics.keys().any(|k| k.starts_with("camwatch_alerts_total")), "{}", keys(&r.metrics));
    assert_eq!(eve_flows(&r.events), truth_flows(&g.truth));
    assert!(r.stdout.contains("alerts   0"), "{}", r.stdout);
}

#[test]
fn sharded_workers_see_the_same_flows_and_alerts() {
    let g = generated(3, Anomalies::all());
    let one = replay(&g.pcap, g.dir.path(), &["-q", "--workers", "1"]);
    let three = replay(&g.pcap, g.dir.path(), &["-q", "--workers", "3"]);
    assert_eq!(eve_flows(&one.events), eve_flows(&three.events));
    assert_eq!(alert_pairs(&one.alerts), alert_pairs(&three.alerts));
    let ids: BTreeSet<u64> = three
        .events
        .iter()
        .filter(|e| e["event_type"] == "flow")
        .filter_map(|e| e["flow_id"].as_u64())
        .collect();
    let n = three.events.iter().filter(|e| e["event_type"] == "flow").count();
    assert_eq!(ids.len(), n, "flow ids are unique across workers");
}

#[test]
fn flows_and_alerts_carry_the_destination_name_from_dns_sni_or_host() {
    let g = generated(29, Anomalies::all());
    let r = replay(&g.pcap, g.dir.path(), &["-q"]);
    let cloud =
        r.alerts.iter().find(|a| a["dest_ip"] == "198.51.100.20").unwrap_or_else(|| panic!("{:?}", r.alerts));
    assert_eq!(cloud["dest_name"], "litedev.hik-connect.com", "from the camera's own DNS lookup");
    let egress =
        r.alerts.iter().find(|a| a["dest_ip"] == "203.0.113.50" && a["rule"]["category"] != "cloud").unwrap();
    assert!(egress.get("dest_name").is_none(), "no lookup was made, and the alert fires before the SNI");
    let flow = r
        .events
        .iter()
        .find(|e| e["event_type"] == "flow" && e["dest_ip"] == "203.0.113.50")
        .unwrap_or_else(|| panic!("no flow to 203.0.113.50"));
    assert_eq!(flow["dest_name"], "update.example.net", "the flow record has its TLS SNI");
}

/// A flood of forged sources (one SYN each from 10.0.0.0/8, inside the default device networks)
/// is counted and logged as flows, flow by flow, but makes no devices: only the four first
/// sources, which came with a MAC address not yet seen to carry many hosts, enter the inventory.
#[test]
fn a_flood_of_forged_sources_is_flows_not_devices() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("flood.pcap");
    camwatch_synth::write_flood(&pcap, 20_000, 100_000).unwrap();
    for workers in ["1", "2"] {
        let r = replay(&pcap, dir.path(), &["-q", "--workers", workers]);
        let flows = r.events.iter().filter(|e| e["event_type"] == "flow").count();
        let devices = r.events.iter().filter(|e| e["event_type"] == "device").count();
        assert_eq!(flows, 20_000, "{}", r.stdout);
        assert!(devices <= 4, "{devices} device events from a flood of forged sources");
        assert!(metric(&r.metrics, "camwatch_devices") <= 4.0, "{}", keys(&r.metrics));
        assert!(r.stdout.contains("flows    20000"), "{}", r.stdout);
    }
}
