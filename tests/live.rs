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
        // Unique per test in this process too: live tests run in parallel.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let id = format!("{}{n}", std::process::id() % 100_000);
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

/// A webhook receiver on loopback: the alert ids of every POST it accepted, in order.
fn webhook_receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let ids = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut r = BufReader::new(stream);
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let l = line.trim_end().to_ascii_lowercase();
                if let Some(v) = l.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                if l.is_empty() {
                    let mut body = vec![0u8; len];
                    if r.read_exact(&mut body).is_err() {
                        break;
                    }
                    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    for a in v["alerts"].as_array().into_iter().flatten() {
                        ids.lock().unwrap().push(format!(
                            "{}/{}",
                            a["id"].as_str().unwrap_or(""),
                            a["status"].as_str().unwrap_or("")
                        ));
                    }
                    let _ = r.get_mut().write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
                    len = 0;
                }
            }
        }
    });
    (url, got)
}

/// logrotate's way, live: camwatch captures on the bridge and delivers alerts to a webhook;
/// the journal and event log are moved and camwatch gets SIGHUP; more traffic follows. Every
/// alert is delivered exactly once (the sink finishes the moved journal, then reads the new
/// one), records after the SIGHUP go to the new files, and no record is in both.
#[test]
fn rotated_outputs_lose_and_repeat_nothing() {
    let net = TestNet::new();
    let out = net.ns("out");
    for a in ["198.51.100.8", "198.51.100.9", "198.51.100.10"] {
        sh(&["ip", "-n", &out, "addr", "add", &format!("{a}/32"), "dev", "lo"]);
    }
    let dir = tempfile::tempdir().unwrap();
    let (alerts, events) = (dir.path().join("alerts.jsonl"), dir.path().join("events.jsonl"));
    let (url, delivered) = webhook_receiver();
    let config = dir.path().join("camwatch.yaml");
    std::fs::write(
        &config,
        format!("sensor: live\nevidence:\n  enabled: false\nsinks:\n  webhooks:\n    - {{ name: hook, url: \"{url}\", batch_wait: 50ms }}\n  poll_interval: 100ms\n"),
    )
    .unwrap();
    let mut d = Daemon::start(
        daemon_cmd()
            .args(["--interface", &net.bridge()])
            .arg("--config")
            .arg(&config)
            .arg("--alerts")
            .arg(&alerts)
            .arg("--events")
            .arg(&events),
    );
    d.metrics_addr();
    let cam = net.ns("cam");
    // Sends to each address until its alert is in the journal file named `journal`.
    let raise = |d: &mut Daemon, to: &str, journal: &std::path::Path| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let _ = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &cam,
                    "bash",
                    "-c",
                    &format!("echo camwatch-test > /dev/udp/{to}/443"),
                ])
                .status();
            if read_jsonl(journal).iter().any(|a| a["dest_ip"] == to) {
                break;
            }
            assert!(Instant::now() < deadline, "no alert for {to}; log:\n{}", d.log.join("\n"));
            d.wait_for_any(Duration::from_millis(200));
        }
    };
    raise(&mut d, "198.51.100.7", &alerts);
    raise(&mut d, "198.51.100.8", &alerts);
    // Rotate as logrotate does (create mode): move, then SIGHUP.
    let (old_alerts, old_events) = (dir.path().join("alerts.jsonl.1"), dir.path().join("events.jsonl.1"));
    std::fs::rename(&alerts, &old_alerts).unwrap();
    std::fs::rename(&events, &old_events).unwrap();
    d.signal("HUP");
    d.wait_for("SIGHUP", Duration::from_secs(30));
    raise(&mut d, "198.51.100.9", &alerts);
    raise(&mut d, "198.51.100.10", &alerts);
    let journaled: Vec<String> = read_jsonl(&old_alerts)
        .iter()
        .chain(read_jsonl(&alerts).iter())
        .map(|a| format!("{}/{}", a["id"].as_str().unwrap_or(""), a["status"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(read_jsonl(&old_alerts).len(), 2, "before the rotation: the moved file");
    assert_eq!(read_jsonl(&alerts).len(), 2, "after: the new file");
    // Delivered exactly once each, in order.
    let deadline = Instant::now() + Duration::from_secs(60);
    while delivered.lock().unwrap().len() < journaled.len() {
        assert!(Instant::now() < deadline, "delivered {:?} of {journaled:?}", delivered.lock().unwrap());
        d.wait_for_any(Duration::from_millis(100));
    }
    let (status, log) = d.stop();
    assert!(status.success(), "{}", log.join("\n"));
    assert_eq!(*delivered.lock().unwrap(), journaled, "each alert delivered once");
    // Events: none in both files; the flows, all ended at shutdown, are in the new file.
    let (before, after) =
        (std::fs::read_to_string(&old_events).unwrap(), std::fs::read_to_string(&events).unwrap());
    let before: std::collections::BTreeSet<&str> = before.lines().collect();
    assert!(!before.is_empty() && !after.is_empty());
    assert!(after.lines().all(|l| !before.contains(l)), "an event in both files");
    let flows: Vec<serde_json::Value> =
        read_jsonl(&events).into_iter().filter(|e| e["event_type"] == "flow").collect();
    for to in ["198.51.100.7", "198.51.100.8", "198.51.100.9", "198.51.100.10"] {
        assert!(flows.iter().any(|f| f["dest_ip"] == to), "flow to {to} lost: {flows:?}");
    }
}

/// On a link with no traffic at all, libpcap's read can wait for the next frame past its
/// timeout: SIGTERM must still stop the sensor (a systemd stop would otherwise hang until the
/// unit's SIGKILL, losing what was not flushed). The daemon says it stopped, exits 0, and does so
/// long before systemd's default 90 s stop timeout.
#[test]
fn sigterm_stops_the_sensor_on_a_quiet_link() {
    tool("ip");
    let id = format!("{}", std::process::id() % 100_000);
    let (ns, end) = (format!("cw-quiet-{id}"), format!("cwq{id}"));
    sh(&["ip", "netns", "add", &ns]);
    struct Gone(String);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    let _gone = Gone(ns.clone());
    // A veth whose peer is down and has no addresses: not one frame arrives.
    sh(&["ip", "-n", &ns, "link", "add", &end, "type", "veth", "peer", "name", &format!("{end}p")]);
    let _ = Command::new("ip")
        .args(["netns", "exec", &ns, "sysctl", "-qw", &format!("net.ipv6.conf.{end}.disable_ipv6=1")])
        .status();
    sh(&["ip", "-n", &ns, "link", "set", &end, "up"]);
    let dir = tempfile::tempdir().unwrap();
    sh(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns, env!("CARGO_BIN_EXE_camwatch"), "run", "--listen", "127.0.0.1:0"])
        .arg("--rules")
        .arg(rules_dir())
        .current_dir(dir.path())
        .env("CAMWATCH_LOG", "info")
        .env("NO_COLOR", "1");
    let mut d = Daemon::start(
        cmd.args(["--interface", &end])
            .arg("--events")
            .arg(dir.path().join("events.jsonl"))
            .arg("--state")
            .arg(dir.path().join("state.db")),
    );
    d.wait_for("Capturing.", Duration::from_secs(60));
    // The scenario itself: a quiet second (four read timeouts) with the read blocked in libpcap.
    d.wait_for_any(Duration::from_secs(1));
    let started = Instant::now();
    d.signal("TERM");
    // Bounded: a sensor that does not stop fails the test instead of hanging it.
    let status = loop {
        if let Some(status) = d.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "still running 30 s after SIGTERM:\n{}",
            d.log.join("\n")
        );
        d.wait_for_any(Duration::from_millis(100));
    };
    let took = started.elapsed();
    let (_, log) = d.stop();
    assert!(status.success(), "{}", log.join("\n"));
    assert!(log.iter().any(|l| l.contains("Stopped.")), "{}", log.join("\n"));
    assert!(took < Duration::from_secs(30), "stopping took {took:?}");
}
