//! `camwatch run`: serves /metrics while it reads, drains on SIGTERM, reloads rules on SIGHUP.

use std::time::Duration;

use camwatch_synth::Anomalies;

use crate::replay::alert_pairs;
use crate::util::*;

const WAIT: Duration = Duration::from_secs(120);

#[test]
fn run_read_serves_metrics_prints_alerts_and_exits_cleanly_on_sigterm() {
    let g = generated(5, Anomalies::all());
    let dir = g.dir.path();
    let (alerts, events) = (dir.join("a.jsonl"), dir.join("e.jsonl"));
    let mut d = Daemon::start(
        daemon_cmd().arg("--read").arg(&g.pcap).arg("--alerts").arg(&alerts).arg("--events").arg(&events),
    );
    let addr = d.metrics_addr();
    d.wait_for("Capture files done", WAIT);
    assert_eq!(http_get(&addr, "/healthz").trim(), "ok");
    // The web view is off unless asked for.
    assert_eq!(http_status(&addr, "/ui/"), 404);
    let m = parse_metrics(&http_get(&addr, "/metrics"));
    let pairs: std::collections::BTreeSet<_> =
        g.truth.egress.iter().map(|e| (e.device.to_string(), e.dest.to_string())).collect();
    assert_eq!(
        metric(&m, "camwatch_alerts_total{rule=\"egress-outside-allowed\",severity=\"high\"}"),
        pairs.len() as f64
    );
    assert_eq!(metric(&m, "camwatch_capture_packets_total{source=\"file\"}"), g.truth.packets as f64);
    let shipped = camwatch::detect::RuleSet::load(&[rules_dir()]).unwrap().rules.len();
    assert_eq!(metric(&m, "camwatch_rules_loaded"), shipped as f64);
    let (status, log) = d.stop();
    assert!(status.success(), "exit {status:?}\n{}", log.join("\n"));
    assert!(log.iter().any(|l| l.contains("Stopped.")), "{}", log.join("\n"));
    let printed =
        log.iter().filter(|l| l.contains("Alert: ") && l.contains("rule=egress-outside-allowed")).count();
    assert_eq!(printed, pairs.len(), "{}", log.join("\n"));
    let journal = read_jsonl(&alerts);
    let logged = log.iter().filter(|l| l.contains("Alert: ")).count();
    assert_eq!(logged, journal.len(), "every alert is printed and journalled");
    assert_eq!(alert_pairs(&read_jsonl(&alerts)), pairs);
    assert!(read_jsonl(&events).iter().any(|e| e["event_type"] == "flow"));
}

#[test]
fn sighup_reloads_rules_and_a_bad_file_keeps_the_running_rules() {
    let g = generated(9, Anomalies::default());
    let rules = g.dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::copy(rules_dir().join("egress.yaml"), rules.join("egress.yaml")).unwrap();
    let mut d = Daemon::start(
        bin()
            .args(["run", "--listen", "127.0.0.1:0", "--read"])
            .arg(&g.pcap)
            .arg("--rules")
            .arg(&rules)
            .arg("--alerts")
            .arg(g.dir.path().join("a.jsonl"))
            .arg("--events")
            .arg(g.dir.path().join("e.jsonl")),
    );
    let addr = d.metrics_addr();
    d.wait_for("Capture files done", WAIT);

    std::fs::write(rules.join("site.yaml"), "rules:\n  - id: broken\n    name: [unclosed\n").unwrap();
    d.signal("HUP");
    let line = d.wait_for("Rules reload rejected", WAIT);
    assert!(line.contains("site.yaml:"), "{line}");
    let m = parse_metrics(&http_get(&addr, "/metrics"));
    // SIGHUP, and the file watcher if it saw the edit first: at least one rejection.
    assert!(metric(&m, "camwatch_rules_reloads_total{result=\"failure\"}") >= 1.0);
    assert_eq!(metric(&m, "camwatch_rules_loaded"), 1.0, "the running rules stay active");

    let telnet = "rules:\n  - id: telnet-to-device\n    name: Telnet to a device\n    severity: medium\n    category: policy\n    match:\n      event: flow_start\n      device: dest\n      where:\n        dest_port: { eq: 23 }\n";
    std::fs::write(rules.join("site.yaml"), telnet).unwrap();
    d.signal("HUP");
    d.wait_for("Rules reloaded", WAIT);
    let m = parse_metrics(&http_get(&addr, "/metrics"));
    assert!(metric(&m, "camwatch_rules_reloads_total{result=\"success\"}") >= 1.0);
    assert_eq!(metric(&m, "camwatch_rules_loaded"), 2.0);

    // An edit on disk is picked up without a signal.
    let ssh = telnet.replace("telnet-to-device", "ssh-to-device").replace("eq: 23", "eq: 22");
    std::fs::write(rules.join("ssh.yaml"), ssh).unwrap();
    d.wait_for("Rules changed on disk", WAIT);
    d.wait_for("Rules reloaded", WAIT);
    let m = parse_metrics(&http_get(&addr, "/metrics"));
    assert_eq!(metric(&m, "camwatch_rules_loaded"), 3.0);
    let (status, _) = d.stop();
    assert!(status.success());
}

/// 300 connections that never send a request, and one that sends half a header: `/metrics`
/// still answers (each new connection past the cap closes the oldest), the stalled header is
/// cut off, and a rules reload still opens its files (no descriptor exhaustion).
#[test]
fn idle_and_stalled_connections_cannot_starve_the_endpoint() {
    use std::io::{Read, Write};
    let g = generated(6, Anomalies::default());
    let mut d = Daemon::start(daemon_cmd().arg("--read").arg(&g.pcap));
    let addr = d.metrics_addr();
    d.wait_for("Capture files done", WAIT);
    let mut stalled = std::net::TcpStream::connect(&addr).unwrap();
    stalled.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ").unwrap();
    let idle: Vec<std::net::TcpStream> =
        (0..300).map(|_| std::net::TcpStream::connect(&addr).unwrap()).collect();
    let m = parse_metrics(&http_get(&addr, "/metrics"));
    assert_eq!(metric(&m, "camwatch_capture_packets_total{source=\"file\"}"), g.truth.packets as f64);
    assert_eq!(http_get(&addr, "/healthz").trim(), "ok");
    // The stalled header is closed by the server (the header timeout, or the cap): its read ends.
    stalled.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut rest = Vec::new();
    // Closed shows as EOF, or as a reset when the server closed with the half header unread; a
    // timeout would mean it was left open.
    let closed = |r: std::io::Result<usize>| match r {
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    let ended = stalled.read_to_end(&mut rest);
    assert!(closed(ended), "the stalled connection was left open");
    assert!(!String::from_utf8_lossy(&rest).contains("camwatch_"), "a stalled request got an answer");
    // And the oldest idle connection was closed to make room (EOF, not a timeout).
    let mut first = &idle[0];
    first.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut byte = [0u8; 1];
    let read = first.read(&mut byte);
    assert!(matches!(read, Ok(0)) || closed(read), "the oldest idle connection is still held open");
    d.signal("HUP");
    d.wait_for("Rules reloaded", WAIT);
    drop(idle);
    let (status, log) = d.stop();
    assert!(status.success(), "{}", log.join("\n"));
}

/// Started as root with `--user nobody`, the daemon opens its capture and then runs as nobody:
/// every uid and gid of the process is nobody's, and it still writes its outputs (in a folder
/// nobody owns) and raises alerts. CI runs as root, so this always runs there.
#[test]
fn the_daemon_drops_root_once_capture_is_open() {
    use std::os::unix::fs::chown;
    assert_eq!(
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .map(|l| l.split_whitespace().nth(1) == Some("0")),
        Some(true),
        "this test needs root, as CI has"
    );
    let g = generated(12, Anomalies::all());
    let out = g.dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    chown(&out, Some(65534), Some(65534)).unwrap();
    // nobody must be able to reach the folder and read the capture and the rules.
    let mut p = out.clone();
    while let Some(parent) = p.parent() {
        use std::os::unix::fs::PermissionsExt;
        if parent.starts_with(std::env::temp_dir()) && parent != std::env::temp_dir() {
            std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        p = parent.to_path_buf();
    }
    let alerts = out.join("a.jsonl");
    let mut d = Daemon::start(
        daemon_cmd()
            .args(["--user", "nobody", "--read"])
            .arg(&g.pcap)
            .arg("--alerts")
            .arg(&alerts)
            .arg("--events")
            .arg(out.join("e.jsonl"))
            .arg("--state")
            .arg(out.join("s.db"))
            .arg("--evidence")
            .arg(out.join("evidence")),
    );
    d.wait_for("Capture files done", WAIT);
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.child.id())).unwrap();
    for key in ["Uid:", "Gid:"] {
        let line = status.lines().find(|l| l.starts_with(key)).unwrap();
        let ids: Vec<&str> = line.split_whitespace().skip(1).collect();
        assert_eq!(ids, ["65534"; 4], "{line}");
    }
    let groups = status.lines().find(|l| l.starts_with("Groups:")).unwrap();
    assert!(groups.split_whitespace().skip(1).all(|g| g == "65534"), "{groups}");
    assert!(!read_jsonl(&alerts).is_empty(), "alerts were written as nobody");
    let (code, log) = d.stop();
    assert!(code.success(), "{}", log.join("\n"));
}

/// `kill -9` after alerts were raised: every journal record is whole (each is written through
/// and fdatasync'd before anything delivers it), the state database opens again, and a restart
/// on the same traffic takes the journal's firing alerts up instead of raising them twice.
#[test]
fn kill_9_loses_no_alert_and_a_restart_raises_none_twice() {
    let g = generated(31, Anomalies::all());
    let dir = g.dir.path();
    let (alerts, state) = (dir.join("a.jsonl"), dir.join("s.db"));
    let start = || {
        Daemon::start(
            daemon_cmd()
                .arg("--read")
                .arg(&g.pcap)
                .arg("--alerts")
                .arg(&alerts)
                .arg("--events")
                .arg(dir.join("e.jsonl"))
                .arg("--state")
                .arg(&state),
        )
    };
    let mut d = start();
    d.wait_for("Capture files done", WAIT);
    let raised = d.log.iter().filter(|l| l.contains("Alert: ")).count();
    assert!(raised > 0);
    d.child.kill().unwrap();
    d.child.wait().unwrap();
    let text = std::fs::read_to_string(&alerts).unwrap();
    assert!(text.ends_with('\n'), "the last record is torn");
    let records: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let firing = |r: &[serde_json::Value]| r.iter().filter(|a| a["status"] == "firing").count();
    assert_eq!(firing(&records), raised, "every alert printed before the kill is in the journal");

    let mut again = start();
    again.wait_for("Capture files done", WAIT);
    assert!(
        again.log.iter().any(|l| l.contains("Inventory loaded.") && !l.contains("devices=0")),
        "{}",
        again.log.join("\n")
    );
    let (status, log) = again.stop();
    assert!(status.success(), "{}", log.join("\n"));
    let after: Vec<serde_json::Value> =
        std::fs::read_to_string(&alerts).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // Replaying old traffic over newer firmware history may raise new firmware alerts (a
    // version seen again after a later one is a change); what must not happen is an alert that
    // was firing raised a second time.
    let fingerprints: std::collections::BTreeSet<&str> = records
        .iter()
        .filter(|a| a["status"] == "firing")
        .filter_map(|a| a["fingerprint"].as_str())
        .collect();
    let twice: Vec<String> = after[records.len()..]
        .iter()
        .filter(|a| {
            a["status"] == "firing" && a["fingerprint"].as_str().is_some_and(|f| fingerprints.contains(f))
        })
        .map(|a| format!("{} {}", a["rule"]["id"], a["key"]))
        .collect();
    assert!(twice.is_empty(), "the restart raised again: {twice:?}");
    assert!(
        after.len() >= records.len() && after[..records.len()] == records[..],
        "the journal was rewritten"
    );
}
