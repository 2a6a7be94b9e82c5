//! The alert record end to end through `replay`: the evidence capture of each alert's flow, and
//! the lifecycle (firing, then resolved once its condition is no longer seen).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use camwatch_synth::Anomalies;
use serde_json::Value;

use crate::util::*;

/// An egress rule whose alerts resolve 5 s after their destination was last contacted.
const EGRESS_RESOLVING_IN_5S: &str = "networks:\n  allowed: [private, multicast, broadcast]\nrules:\n  \
    - id: t-egress\n    name: Egress\n    severity: high\n    category: egress\n    match:\n      \
    event: flow_start\n      where:\n        dest_ip: { not_in: [allowed] }\n    \
    suppress: { key: [device, dest_ip], interval: 1h, resolve_after: 5s }\n";

fn firing(alerts: &[Value]) -> impl Iterator<Item = &Value> {
    alerts.iter().filter(|a| a["status"] == "firing")
}

#[test]
fn every_alert_on_a_flow_carries_a_pcap_of_that_flow() {
    let g = generated(21, Anomalies { egress: true, exploit: true, cloud: true, ..Anomalies::default() });
    let out = tempfile::tempdir().unwrap();
    let (alerts, evidence) = (out.path().join("alerts.jsonl"), out.path().join("evidence"));
    let o = run(replay_cmd().arg(&g.pcap).arg("--alerts").arg(&alerts).arg("--evidence").arg(&evidence));
    assert!(o.status.success(), "{}", text(&o.stderr));
    let alerts = read_jsonl(&alerts);
    let on_flows: Vec<&Value> = firing(&alerts).filter(|a| a["flow_id"].as_u64() != Some(0)).collect();
    assert!(on_flows.len() >= 5, "too few alerts to prove anything: {}", on_flows.len());
    let dir_mode = std::fs::metadata(&evidence).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700);
    for a in on_flows {
        let id = a["id"].as_str().unwrap();
        let ev = &a["evidence"];
        let path = ev["pcap"].as_str().unwrap_or_else(|| panic!("alert {id} has no evidence: {a}"));
        assert!(path.starts_with('/'), "an absolute path: {path}");
        assert!(path.ends_with(&format!("/{id}.pcap")), "{path}");
        let sum = run(std::process::Command::new(tool("sha256sum")).arg(path));
        let sum = text(&sum.stdout);
        assert_eq!(Some(ev["sha256"].as_str().unwrap()), sum.split_whitespace().next(), "{path}");
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{path}");
        // tshark reads it, and every packet in it belongs to the alert's flow (either way).
        let o =
            run(std::process::Command::new(tool("tshark")).args(["-n", "-r", path, "-T", "fields"]).args([
                "-e",
                "ip.src",
                "-e",
                "ip.dst",
                "-e",
                "tcp.srcport",
                "-e",
                "udp.srcport",
                "-e",
                "tcp.dstport",
                "-e",
                "udp.dstport",
            ]));
        assert!(o.status.success(), "{path}: {}", text(&o.stderr));
        let rows = text(&o.stdout);
        let rows: Vec<&str> = rows.lines().collect();
        assert_eq!(rows.len() as u64, ev["packets"].as_u64().unwrap(), "{path}");
        assert!(!rows.is_empty(), "{path}: no packets");
        let ends = |ip: &Value, port: &Value| format!("{}:{}", ip.as_str().unwrap(), port);
        let (s, d) = (ends(&a["src_ip"], &a["src_port"]), ends(&a["dest_ip"], &a["dest_port"]));
        for row in rows {
            let f: Vec<&str> = row.split('\t').collect();
            let sport = if f[2].is_empty() { f[3] } else { f[2] };
            let dport = if f[4].is_empty() { f[5] } else { f[4] };
            let (x, y) = (format!("{}:{sport}", f[0]), format!("{}:{dport}", f[1]));
            assert!((x == s && y == d) || (x == d && y == s), "{path}: {row} is not {s} <-> {d}");
        }
    }
}

#[test]
fn an_alert_resolves_once_its_condition_is_no_longer_seen() {
    let g = generated(22, Anomalies { egress: true, cloud: true, ..Anomalies::default() });
    let out = tempfile::tempdir().unwrap();
    let rules = out.path().join("rules.yaml");
    std::fs::write(&rules, EGRESS_RESOLVING_IN_5S).unwrap();
    let alerts_path = out.path().join("alerts.jsonl");
    let metrics_path = out.path().join("metrics.txt");
    let o = run(bin()
        .arg("replay")
        .arg(&g.pcap)
        .arg("--rules")
        .arg(&rules)
        .arg("--alerts")
        .arg(&alerts_path)
        .arg("--metrics-out")
        .arg(&metrics_path));
    assert!(o.status.success(), "{}", text(&o.stderr));
    let alerts = read_jsonl(&alerts_path);
    let mut by_fp: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for a in &alerts {
        by_fp.entry(a["fingerprint"].as_str().unwrap()).or_default().push(a);
    }
    let resolved = alerts.iter().filter(|a| a["status"] == "resolved").count();
    assert!(resolved >= 1, "nothing resolved: {alerts:?}");
    let time = |v: &Value| camwatch::model::time::parse_rfc3339(v.as_str().unwrap()).unwrap();
    for (fp, records) in &by_fp {
        // firing, resolved, firing, resolved, … and the last may still be firing.
        for (i, r) in records.iter().enumerate() {
            let want = if i % 2 == 0 { "firing" } else { "resolved" };
            assert_eq!(r["status"], want, "{fp}: {records:?}");
            if want == "resolved" {
                let f = records[i - 1];
                assert_eq!(r["id"], f["id"]);
                assert_eq!(r["starts_at"], f["starts_at"]);
                let (start, end, at) = (time(&f["starts_at"]), time(&r["ends_at"]), time(&r["timestamp"]));
                assert!(end >= start, "{r}");
                assert_eq!(at - end, 5_000_000, "resolved 5 s after the condition was last seen: {r}");
            }
        }
    }
    let firing_now = by_fp.values().filter(|r| r.len() % 2 == 1).count() as f64;
    let m = parse_metrics(&std::fs::read_to_string(&metrics_path).unwrap());
    assert_eq!(
        metric(&m, "camwatch_alerts_resolved_total{rule=\"t-egress\",severity=\"high\"}"),
        resolved as f64
    );
    assert_eq!(metric(&m, "camwatch_alerts_active{rule=\"t-egress\",severity=\"high\"}"), firing_now);
}

#[test]
fn a_packet_from_the_future_resolves_nothing() {
    use etherparse::PacketBuilder;
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    let out = tempfile::tempdir().unwrap();
    let syn = |src: [u8; 4], sport: u16, dst: [u8; 4]| {
        let mut f = Vec::new();
        PacketBuilder::ethernet2([0x44, 0x19, 0xb6, 0, 0, src[3]], [0x4c, 0x5e, 0x0c, 0x1a, 0x2b, 0x3c])
            .ipv4(src, dst, 64)
            .tcp(sport, 443, 1000, 64240)
            .syn()
            .write(&mut f, &[])
            .unwrap();
        f
    };
    let t0 = 1_767_225_600u64;
    let year_2100 = 4_102_444_800u64;
    let frames = [
        (t0, syn([192, 168, 10, 5], 40000, [203, 0, 113, 9])),
        (t0 + 1, syn([192, 168, 10, 5], 40001, [203, 0, 113, 10])),
        (year_2100, syn([192, 168, 10, 6], 40002, [203, 0, 113, 11])),
        (t0 + 2, syn([192, 168, 10, 5], 40003, [203, 0, 113, 9])),
        (t0 + 3, syn([192, 168, 10, 5], 40004, [203, 0, 113, 12])),
    ];
    let pcap = out.path().join("future.pcap");
    let mut w =
        PcapWriter::with_header(std::fs::File::create(&pcap).unwrap(), PcapHeader::default()).unwrap();
    for (secs, f) in &frames {
        w.write_packet(&PcapPacket::new(Duration::from_secs(*secs), f.len() as u32, f)).unwrap();
    }
    drop(w);
    let rules = out.path().join("rules.yaml");
    std::fs::write(&rules, EGRESS_RESOLVING_IN_5S).unwrap();
    let (alerts, metrics) = (out.path().join("alerts.jsonl"), out.path().join("metrics.txt"));
    let o = run(bin()
        .arg("replay")
        .arg(&pcap)
        .arg("--rules")
        .arg(&rules)
        .arg("--alerts")
        .arg(&alerts)
        .arg("--metrics-out")
        .arg(&metrics));
    assert!(o.status.success(), "{}", text(&o.stderr));
    let alerts = read_jsonl(&alerts);
    assert_eq!(firing(&alerts).count(), 4, "one per destination: {alerts:?}");
    let resolved: Vec<&Value> = alerts.iter().filter(|a| a["status"] == "resolved").collect();
    assert!(resolved.is_empty(), "the year-2100 packet resolved alerts: {resolved:?}");
    let m = parse_metrics(&std::fs::read_to_string(&metrics).unwrap());
    assert_eq!(metric(&m, "camwatch_future_timestamps_total"), 1.0);
}

/// Eight cameras each open flows to 500 public addresses (a scan, or a compromised camera
/// fanning out): each camera raises at most 10 egress alerts and then one storm alert that
/// aggregates the rest, and every match held back is counted by reason.
#[test]
fn a_fan_out_to_many_addresses_makes_a_storm_alert_not_thousands() {
    use etherparse::PacketBuilder;
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("fanout.pcap");
    let mut frames = Vec::new();
    for k in 0..500u32 {
        for cam in 0..8u8 {
            let dest = [1, 2, (k / 250) as u8, (k % 250) as u8 + 1];
            let b =
                PacketBuilder::ethernet2([0x44, 0x19, 0xb6, 0, 0, cam], [0, 0x11, 0x22, 0x33, 0x44, 0x55])
                    .ipv4([192, 168, 1, 10 + cam], dest, 64)
                    .tcp(40_000 + k as u16, 443, 1000, 64240)
                    .syn();
            let mut f = Vec::new();
            b.write(&mut f, &[]).unwrap();
            frames.push(f);
        }
    }
    write_frames(&pcap, &frames);
    let (alerts, metrics) = (dir.path().join("a.jsonl"), dir.path().join("m.txt"));
    let o = run(replay_cmd()
        .arg("-q")
        .arg(&pcap)
        .arg("--alerts")
        .arg(&alerts)
        .arg("--metrics-out")
        .arg(&metrics));
    assert!(o.status.success(), "{}", text(&o.stderr));
    let journal = read_jsonl(&alerts);
    let egress: Vec<&Value> =
        firing(&journal).filter(|a| a["rule"]["id"] == "egress-outside-allowed").collect();
    for cam in 0..8u8 {
        let ip = format!("192.168.1.{}", 10 + cam);
        let of_cam: Vec<&&Value> = egress.iter().filter(|a| a["device"]["ip"] == ip.as_str()).collect();
        let storms: Vec<&&Value> = of_cam.iter().copied().filter(|a| a.get("aggregate").is_some()).collect();
        assert_eq!(of_cam.len(), 11, "{ip}: 10 alerts and one storm alert");
        assert_eq!(storms.len(), 1, "{ip}");
        assert_eq!(storms[0]["key"], format!("device={ip} storm").as_str());
        assert!(storms[0]["summary"].as_str().unwrap().contains("further ones are aggregated"));
    }
    let m = parse_metrics(&std::fs::read_to_string(&metrics).unwrap());
    let storm = "camwatch_alerts_suppressed_total{reason=\"storm\",rule=\"egress-outside-allowed\"}";
    assert_eq!(metric(&m, storm), 8.0 * 490.0, "every held-back match is counted");
}

/// One host floods the flow table (a bound of 64 flows) for five minutes of packet time while a
/// camera keeps one stream open: the flooder's flows are evicted, not the camera's, and after
/// three minutes of evictions a `sensor_degraded` alert names the table and the flooder.
#[test]
fn a_flooded_table_raises_sensor_degraded_naming_the_table_and_the_flooder() {
    use etherparse::PacketBuilder;
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("flood.pcap");
    let config = dir.path().join("camwatch.yaml");
    std::fs::write(&config, "workers: 1\nflow:\n  max_flows: 64\n").unwrap();
    let t0 = 1_767_225_600_000_000u64;
    let mut frames = Vec::new();
    let frame = |src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, flags_syn: bool| {
        let b = PacketBuilder::ethernet2([0x02, 0, 0, 0, 0, src[3]], [0x02, 0, 0, 0, 0, dst[3]])
            .ipv4(src, dst, 64)
            .tcp(sport, dport, 1000, 64240);
        let b = if flags_syn { b.syn() } else { b.ack(1) };
        let mut f = Vec::new();
        b.write(&mut f, if flags_syn { &[] } else { b"x" }).unwrap();
        f
    };
    for second in 0..300u64 {
        // The camera's stream: one packet a second.
        frames
            .push((t0 + second * 1_000_000, frame([192, 168, 1, 20], 40_000, [192, 168, 1, 2], 554, false)));
        // The flooder: 50 new flows a second.
        for k in 0..50u64 {
            let n = second * 50 + k;
            let f = frame(
                [192, 168, 1, 66],
                1024 + (n % 60_000) as u16,
                [192, 168, 1, 2],
                8000 + (n % 1000) as u16,
                true,
            );
            frames.push((t0 + second * 1_000_000 + 1000 + k * 100, f));
        }
    }
    write_frames_at(&pcap, &frames);
    let (alerts, metrics, events) =
        (dir.path().join("a.jsonl"), dir.path().join("m.txt"), dir.path().join("e.jsonl"));
    let o = run(replay_cmd()
        .arg("-q")
        .arg(&pcap)
        .arg("--config")
        .arg(&config)
        .arg("--alerts")
        .arg(&alerts)
        .arg("--events")
        .arg(&events)
        .arg("--metrics-out")
        .arg(&metrics));
    assert!(o.status.success(), "{}", text(&o.stderr));
    let journal = read_jsonl(&alerts);
    let degraded: Vec<&Value> = firing(&journal).filter(|a| a["rule"]["id"] == "sensor_degraded").collect();
    assert_eq!(degraded.len(), 1, "one alert for the flow table: {degraded:?}");
    let a = degraded[0];
    assert_eq!(a["key"], "sensor.table=flows");
    assert_eq!(a["category"], "sensor");
    assert_eq!(a["device"]["ip"], "192.168.1.66", "the largest holder");
    let summary = a["summary"].as_str().unwrap();
    assert!(summary.contains("flows table evicting for 3 minutes"), "{summary}");
    assert!(summary.contains("192.168.1.66"), "{summary}");
    // The camera's stream was never evicted: its flow ends once, at the end of the capture.
    let camera_flows: Vec<Value> = read_jsonl(&events)
        .into_iter()
        .filter(|e| e["event_type"] == "flow" && e["src_ip"] == "192.168.1.20")
        .collect();
    assert_eq!(camera_flows.len(), 1, "{camera_flows:?}");
    assert_ne!(camera_flows[0]["flow"]["reason"], "capacity");
    let m = parse_metrics(&std::fs::read_to_string(&metrics).unwrap());
    assert!(metric(&m, "camwatch_table_evictions_total{reason=\"full\",table=\"flows\"}") > 14_000.0);
}

/// A camera keeps one TLS connection to an internet host open for 46 minutes, quiet but for a
/// keep-alive a minute, and sends 60 MB through it in six minutes in the middle: the volume
/// counts as it streams (a `flow_progress` a minute), so "more than 50 MB in 10 minutes" sees
/// it long before the flow ends (counted only at the flow's end, the 60 MB would land at once at
/// minute 46 or at the 30-minute active timeout, split). The same 60 MB spread evenly over the
/// 46 minutes (13 MB in any ten) is not that.
#[test]
fn a_burst_inside_a_long_flow_is_a_large_upload_as_it_streams() {
    use etherparse::PacketBuilder;
    let (cam, out) = ([192u8, 168, 10, 31], [203u8, 0, 113, 50]);
    let (cmac, gw) = ([0x44, 0x19, 0xb6, 0, 0, 31], [0x4c, 0x5e, 0x0c, 0x1a, 0x2b, 0x3c]);
    let t0 = 1_767_225_600_000_000u64;
    let minute = 60_000_000u64;
    let run = |burst: bool| {
        let mut frames: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut seq = 1000u32;
        let mut push = |ts: u64, from_cam: bool, flags: &str, payload: &[u8], seq: u32| {
            let b = if from_cam {
                PacketBuilder::ethernet2(cmac, gw).ipv4(cam, out, 64).tcp(40000, 443, seq, 64240)
            } else {
                PacketBuilder::ethernet2(gw, cmac).ipv4(out, cam, 60).tcp(443, 40000, 9000, 64240)
            };
            let b = if flags.contains('S') { b.syn() } else { b };
            let b = if flags.contains('A') { b.ack(seq) } else { b };
            let b = if flags.contains('F') { b.fin() } else { b };
            let mut f = Vec::new();
            b.write(&mut f, payload).unwrap();
            frames.push((ts, f));
        };
        push(t0, true, "S", b"", seq);
        push(t0 + 1000, false, "SA", b"", seq + 1);
        seq += 1;
        let chunk = [0x17u8; 1400];
        let total = 60_000_000usize / chunk.len();
        for m in 0..46u64 {
            push(t0 + m * minute + 5_000, true, "A", b"keepalive", seq);
            seq = seq.wrapping_add(9);
            let n = match (burst, (20..26).contains(&m)) {
                (true, true) => total / 6,
                (true, false) => 0,
                (false, _) => total / 46,
            };
            for i in 0..n as u64 {
                push(t0 + m * minute + 10_000 + i * 1_000, true, "A", &chunk, seq);
                seq = seq.wrapping_add(chunk.len() as u32);
            }
        }
        push(t0 + 46 * minute, true, "AF", b"", seq);
        let dir = tempfile::tempdir().unwrap();
        let pcap = dir.path().join("upload.pcap");
        write_frames_at(&pcap, &frames);
        let r = crate::replay::replay(&pcap, dir.path(), &["-q"]);
        let hits: Vec<Value> = firing(&r.alerts)
            .filter(|a| a["rule"]["id"] == "behaviour-large-upload-outside")
            .cloned()
            .collect();
        hits
    };
    let hits = run(true);
    assert_eq!(hits.len(), 1, "{hits:?}");
    let at = camwatch::model::time::parse_rfc3339(hits[0]["starts_at"].as_str().unwrap()).unwrap();
    assert!(at < t0 + 30 * minute, "seen as it streamed, not at the flow's end: {}", hits[0]["starts_at"]);
    assert!(run(false).is_empty(), "13 MB in any ten minutes is no large upload");
}
