//! Live capture through libpcap: two network namespaces (a camera and the "outside") joined by a
//! bridge in the test's namespace, which camwatch watches like a mirror port. The bridge has no
//! address, so nothing is routed: the camera's packets only reach the namespace we made.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::*;

struct TestNet {
    id: String,
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(out.status.success(), "{}: {}", args.join(" "), text(&out.stderr));
}

impl TestNet {
    /// Needs root (CI runs as root); fails, never skips, without it.
    fn new() -> Self {
        tool("ip");
        let id = format!("{}", std::process::id() % 100_000);
        let n = Self { id };
        let (cam, out, br) = (n.ns("cam"), n.ns("out"), n.bridge());
        sh(&["ip", "netns", "add", &cam]);
        sh(&["ip", "netns", "add", &out]);
        sh(&["ip", "link", "add", &br, "type", "bridge"]);
        let _ = Command::new("sysctl").args(["-qw", &format!("net.ipv6.conf.{br}.disable_ipv6=1")]).status();
        for (ns, end, addr) in [(&cam, "c", "192.168.77.10/24"), (&out, "o", "192.168.77.1/24")] {
            let host = format!("cw{}{}", end, n.id);
            let peer = format!("cw{}{}p", end, n.id);
            sh(&["ip", "link", "add", &host, "type", "veth", "peer", "name", &peer]);
            sh(&["ip", "link", "set", &peer, "netns", ns]);
            sh(&["ip", "link", "set", &host, "master", &br, "up"]);
            sh(&["ip", "-n", ns, "addr", "add", addr, "dev", &peer]);
            sh(&["ip", "-n", ns, "link", "set", &peer, "up"]);
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        sh(&["ip", "link", "set", &br, "up"]);
        sh(&["ip", "-n", &cam, "route", "add", "default", "via", "192.168.77.1"]);
        // The "internet" host lives in the out namespace: a documentation address on its loopback.
        sh(&["ip", "-n", &out, "addr", "add", "198.51.100.7/32", "dev", "lo"]);
        n
    }

    fn ns(&self, role: &str) -> String {
        format!("cw-{role}-{}", self.id)
    }

    fn bridge(&self) -> String {
        format!("cwbr{}", self.id)
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        for ns in [self.ns("cam"), self.ns("out")] {
            let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        }
        let _ = Command::new("ip").args(["link", "del", &self.bridge()]).status();
    }
}

#[test]
fn live_capture_raises_the_egress_alert_and_shows_it_in_metrics() {
    let net = TestNet::new();
    let dir = tempfile::tempdir().unwrap();
    let alerts = dir.path().join("alerts.jsonl");
    let mut d = Daemon::start(
        daemon_cmd()
            .args(["--interface", &net.bridge()])
            .arg("--alerts")
            .arg(&alerts)
            .arg("--events")
            .arg(dir.path().join("events.jsonl")),
    );
    let addr = d.metrics_addr();
    // The camera sends to the outside address until the alert is in the journal (the first
    // datagrams may go before ARP resolves; the sensor is already capturing).
    let deadline = Instant::now() + Duration::from_secs(60);
    let cam = net.ns("cam");
    loop {
        let _ = Command::new("ip")
            .args(["netns", "exec", &cam, "bash", "-c", "echo camwatch-test > /dev/udp/198.51.100.7/443"])
            .status();
        if !read_jsonl(&alerts).is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "no alert within 60 s; log:\n{}", d.log.join("\n"));
        d.wait_for_any(Duration::from_millis(200));
    }
    let journal = read_jsonl(&alerts);
    assert_eq!(journal.len(), 1, "suppressed per device and destination: {journal:?}");
    let a = &journal[0];
    assert_eq!(a["rule"]["id"], "egress-outside-allowed");
    assert_eq!(a["device"]["ip"], "192.168.77.10");
    assert_eq!(a["dest_ip"], "198.51.100.7");
    assert_eq!(a["dest_port"], 443);
    assert_eq!(a["proto"], "UDP");
    assert!(a["device"]["mac"].as_str().is_some_and(|m| m.len() == 17), "{a}");

    // Capture counters are flushed in batches (at least every 250 ms): wait for the batch.
    let src = format!("source=\"{}\"", net.bridge());
    let packets = format!("camwatch_capture_packets_total{{{src}}}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let m = loop {
        let m = parse_metrics(&http_get(&addr, "/metrics"));
        if m.contains_key(&packets) {
            break m;
        }
        assert!(Instant::now() < deadline, "{packets} never appeared:\n{}", keys(&m));
        d.wait_for_any(Duration::from_millis(100));
    };
    assert_eq!(metric(&m, "camwatch_alerts_total{rule=\"egress-outside-allowed\",severity=\"high\"}"), 1.0);
    assert!(metric(&m, &packets) >= 1.0);
    assert_eq!(
        metric(&m, &format!("camwatch_capture_dropped_packets_total{{reason=\"kernel\",{src}}}")),
        0.0
    );
    let (status, log) = d.stop();
    assert!(status.success(), "{}", log.join("\n"));
}
