//! The whole `/metrics` output for a generated capture, against a reviewed golden copy, and
//! checked by Prometheus's own linter (`promtool check metrics`).

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use camwatch_synth::Anomalies;

use crate::util::*;

/// GET /metrics with an Accept header; returns (content type, body).
fn scrape(addr: &str, accept: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let (head, body) = buf.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let ctype = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type: ").map(str::to_string))
        .unwrap_or_default();
    (ctype, body.to_string())
}

/// Series order within a family is not part of the format: each family's samples are sorted.
/// Queue depths depend on thread timing and are masked.
fn normalise(text: &str) -> String {
    let mut out = Vec::new();
    let mut samples: Vec<String> = Vec::new();
    let flush = |samples: &mut Vec<String>, out: &mut Vec<String>| {
        samples.sort();
        out.append(samples);
    };
    for line in text.lines() {
        if line.starts_with("# HELP ") {
            flush(&mut samples, &mut out);
            out.push(line.to_string());
        } else if line.starts_with('#') {
            out.push(line.to_string());
        } else if line.starts_with("camwatch_queue_depth{")
            || line.starts_with("camwatch_evidence_bytes{")
            || line.starts_with("process_")
        {
            // Queue depths, and the evidence directory's size (measured by the retention sweep,
            // which runs on its own clock, part-way through a capture or after it), depend on
            // timing; the test checks the evidence size apart. The process's own CPU, memory and
            // descriptors vary from run to run.
            let (series, _) = line.rsplit_once(' ').unwrap();
            samples.push(format!("{series} <depends on timing>"));
        } else {
            samples.push(line.to_string());
        }
    }
    flush(&mut samples, &mut out);
    out.join("\n") + "\n"
}

#[test]
fn metrics_match_the_golden_copy_and_pass_promtool() {
    let g = generated(41, Anomalies::all());
    let dir = g.dir.path();
    let mut d = Daemon::start(
        daemon_cmd()
            .arg("--read")
            .arg(&g.pcap)
            .arg("--alerts")
            .arg(dir.join("alerts.jsonl"))
            .arg("--state")
            .arg(dir.join("state.db"))
            .arg("--evidence")
            .arg(dir.join("evidence")),
    );
    let addr = d.metrics_addr();
    d.wait_for("Capture files done", Duration::from_secs(120));

    let (ctype, om) = scrape(&addr, "application/openmetrics-text;version=1.0.0,text/plain;q=0.5");
    assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
    assert!(om.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    let (ctype, text) = scrape(&addr, "text/plain;version=0.0.4");
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    // The two formats carry the same samples (the process's own vary between two scrapes).
    let samples = |t: &str| {
        let mut v: Vec<String> = t
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("process_"))
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    assert_eq!(samples(&om), samples(&text));

    let mut promtool = Command::new(tool("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    promtool.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let o = promtool.wait_with_output().unwrap();
    assert!(o.status.success(), "promtool: {}{}", text_of(&o.stdout), text_of(&o.stderr));
    assert_eq!(text_of(&o.stdout) + &text_of(&o.stderr), "", "promtool has remarks");

    let evidence = metric(&parse_metrics(&text), "camwatch_evidence_bytes");
    assert!(evidence > 10_000.0, "evidence captures were written: {evidence} bytes");
    // The standard process metrics are there, with this process's numbers.
    let m = parse_metrics(&text);
    assert!(metric(&m, "process_resident_memory_bytes") > 1e6);
    assert!(
        metric(&m, "process_open_fds") >= 3.0
            && metric(&m, "process_max_fds") >= metric(&m, "process_open_fds")
    );
    assert!(metric(&m, "process_start_time_seconds") > 1.7e9);
    // Without a config the sensor is named after the host; the golden copy says "camwatch".
    let host = format!("sensor=\"{}\"", camwatch::runtime::config::host_name());
    assert!(text.contains(&host), "{host} missing");
    let golden = root().join("tests/golden/metrics.txt");
    let got = normalise(&text.replace(&host, "sensor=\"camwatch\""));
    if std::env::var_os("CAMWATCH_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, &got).unwrap();
    }
    let want = std::fs::read_to_string(&golden)
        .unwrap_or_else(|e| panic!("{}: {e} (CAMWATCH_UPDATE_GOLDEN=1 writes it)", golden.display()));
    if got != want {
        let diff: Vec<String> = want
            .lines()
            .filter(|l| !got.lines().any(|g| g == *l))
            .map(|l| format!("- {l}"))
            .chain(got.lines().filter(|l| !want.lines().any(|w| w == *l)).map(|l| format!("+ {l}")))
            .collect();
        panic!(
            "/metrics differs from {} (review, then CAMWATCH_UPDATE_GOLDEN=1):\n{}",
            golden.display(),
            diff.join("\n")
        );
    }
    let (status, log) = d.stop();
    assert!(status.success(), "{}", log.join("\n"));
}

fn text_of(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn per_device_series_are_capped_with_an_overflow_bucket() {
    let g = generated(42, Anomalies::all());
    let dir = g.dir.path();
    let config = dir.join("camwatch.yaml");
    std::fs::write(&config, "devices:\n  max_metric_devices: 3\n").unwrap();
    let out = dir.join("metrics.txt");
    let o = run(replay_cmd().arg(&g.pcap).arg("--config").arg(&config).arg("--metrics-out").arg(&out));
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(g.truth.devices.len() > 3, "the capture must have more devices than the cap");
    // `--metrics-out` is the classic text format (node_exporter's textfile collector reads it):
    // promtool passes it without remarks, and it has no OpenMetrics `# EOF`.
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(
        !written.contains("# EOF") && written.contains("# TYPE camwatch_flows_total counter"),
        "not classic text"
    );
    let check = run(Command::new(tool("promtool"))
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&out).unwrap()));
    assert!(check.status.success(), "promtool: {}{}", text_of(&check.stdout), text_of(&check.stderr));
    assert_eq!(text_of(&check.stdout) + &text_of(&check.stderr), "", "promtool has remarks");
    let m = parse_metrics(&written);
    let mut labels = std::collections::BTreeSet::new();
    for k in m.keys().filter(|k| k.starts_with("camwatch_device_")) {
        if let Some(i) = k.find("device=\"") {
            let rest = &k[i + 8..];
            labels.insert(rest[..rest.find('"').unwrap()].to_string());
        }
    }
    assert!(labels.contains("overflow"), "{labels:?}");
    assert_eq!(labels.len(), 4, "three devices and the overflow bucket: {labels:?}");
    // The overflow bucket still counts the bytes of the devices past the cap.
    let total: f64 =
        m.iter().filter(|(k, _)| k.starts_with("camwatch_device_bytes_total{")).map(|(_, v)| v).sum();
    let sent_and_received: u64 = g.truth.flows.iter().map(|f| f.bytes_fwd + f.bytes_rev).sum();
    assert!(total >= sent_and_received as f64, "{total} < {sent_and_received}");
}

#[test]
fn a_device_in_a_vulnerable_firmware_range_is_flagged_and_stays_flagged_after_a_restart() {
    let g = generated(43, Anomalies { vulnerable_firmware: true, ..Anomalies::default() });
    let dir = g.dir.path();
    let vulnerable =
        g.truth.events.iter().find(|e| e.kind == "vulnerable_firmware").unwrap().device.to_string();
    let series = |m: &std::collections::BTreeMap<String, f64>| -> Vec<(String, f64)> {
        m.iter()
            .filter_map(|(k, v)| {
                let rest = k.strip_prefix("camwatch_device_firmware_vulnerable{device=\"")?;
                Some((rest[..rest.find('"')?].to_string(), *v))
            })
            .collect()
    };
    for run in ["first", "after a restart"] {
        let out = dir.join(format!("metrics-{run}.txt"));
        let o = crate::util::run(
            replay_cmd().arg(&g.pcap).arg("--state").arg(dir.join("state.db")).arg("--metrics-out").arg(&out),
        );
        assert!(o.status.success(), "{}", text(&o.stderr));
        let flagged = series(&parse_metrics(&std::fs::read_to_string(&out).unwrap()));
        assert!(flagged.len() >= 3, "{run}: every device with known firmware has the series: {flagged:?}");
        for (device, v) in flagged {
            assert_eq!(v, if device == vulnerable { 1.0 } else { 0.0 }, "{run}: {device}");
        }
    }
}
