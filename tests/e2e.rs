//! End to end with the real servers SOC teams run: Debian's Prometheus scrapes a camwatch daemon
//! analysing a generated camera network, every query of every shipped dashboard panel must
//! return data, and Alertmanager receives every alert camwatch journalled, including the ones
//! raised while it was down and restarted in the middle of the run.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use camwatch_synth::Anomalies;
use serde_json::Value;

use crate::dashboards::{panel_queries, substitute};
use crate::util::*;

const WAIT: Duration = Duration::from_secs(90);

/// A server process, killed when the test ends however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Server {
    fn stop(mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

/// A loopback port nobody listens on, chosen now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// GET returning (status, body), or None when nothing listens.
fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let buf = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = buf.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    // Both servers may answer chunked.
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_string()
    };
    Some((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Polls `check` until it returns Some, failing with `what` after `timeout`.
fn until<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn start_alertmanager(dir: &Path, port: u16) -> Server {
    let cfg = dir.join("alertmanager.yml");
    std::fs::write(&cfg, "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n").unwrap();
    let child = Command::new(tool("prometheus-alertmanager"))
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.path={}", dir.join("am-data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child);
    let addr = format!("127.0.0.1:{port}");
    until("Alertmanager to be ready", WAIT, || get(&addr, "/-/ready").filter(|(s, _)| *s == 200));
    server
}

fn start_prometheus(dir: &Path, port: u16, target: &str) -> Server {
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: camwatch\n    \
             static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let child = Command::new(tool("prometheus"))
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("prom-data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child);
    let addr = format!("127.0.0.1:{port}");
    until("Prometheus to be ready", WAIT, || get(&addr, "/-/ready").filter(|(s, _)| *s == 200));
    server
}

/// Alertmanager's active alerts, keyed by their identifying labels.
fn am_alerts(addr: &str) -> Option<Vec<Value>> {
    let (status, body) = get(addr, "/api/v2/alerts")?;
    (status == 200).then(|| serde_json::from_str::<Vec<Value>>(&body).ok()).flatten()
}

/// The identity Alertmanager gives a journal record: (alertname = rule id, device, key).
fn journal_identity(a: &Value) -> (String, String, String) {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    (s(&a["rule"]["id"]), s(&a["device"]["ip"]), s(&a["key"]))
}

fn identity(labels: &Value) -> (String, String, String) {
    let l = |k: &str| labels[k].as_str().unwrap_or_default().to_string();
    (l("alertname"), l("device"), l("key"))
}

/// Splits a classic pcap into its header and whole records, so it can be written in two parts.
fn pcap_records(bytes: &[u8]) -> (&[u8], Vec<&[u8]>) {
    let (header, mut rest) = bytes.split_at(24);
    let mut records = Vec::new();
    while rest.len() >= 16 {
        let len = u32::from_le_bytes(rest[8..12].try_into().unwrap()) as usize;
        let (rec, tail) = rest.split_at(16 + len);
        records.push(rec);
        rest = tail;
    }
    (header, records)
}

#[test]
fn prometheus_and_alertmanager_get_everything_even_across_an_alertmanager_restart() {
    let g = generated(31, Anomalies::all());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (am_port, prom_port) = (free_port(), free_port());
    let am_addr = format!("127.0.0.1:{am_port}");
    let mut am = Some(start_alertmanager(d, am_port));

    // camwatch reads the capture from a FIFO, so the test decides when packets arrive.
    let fifo = d.join("capture.fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let journal = d.join("alerts.jsonl");
    let config = d.join("camwatch.yaml");
    std::fs::write(
        &config,
        format!(
            "sensor: e2e\noutputs:\n  alerts: {}\n  events: {}\n  state: {}\nevidence:\n  dir: {}\n\
             sinks:\n  alertmanager:\n    urls: ['http://{am_addr}']\n    resend_interval: 1s\n  \
             retry:\n    initial: 100ms\n    max: 1s\n",
            journal.display(),
            d.join("events.jsonl").display(),
            d.join("state.db").display(),
            d.join("evidence").display(),
        ),
    )
    .unwrap();
    let mut cw = Daemon::start(daemon_cmd().arg("--config").arg(&config).arg("--read").arg(&fifo));
    let bytes = std::fs::read(&g.pcap).unwrap();
    let (header, records) = pcap_records(&bytes);
    assert_eq!(records.len() as u64, g.truth.packets);
    // Opening a FIFO waits for the other end, and libpcap reads the file header as it opens,
    // before camwatch serves metrics: both happen beside the test.
    let opener = {
        let (fifo, header) = (fifo.clone(), header.to_vec());
        std::thread::spawn(move || {
            let mut w = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            w.write_all(&header).unwrap();
            w
        })
    };
    let metrics_addr = cw.metrics_addr();
    let mut writer = opener.join().unwrap();

    // First half: Alertmanager receives alerts as they are raised.
    let half = records.len() / 2;
    for r in &records[..half] {
        writer.write_all(r).unwrap();
    }
    writer.flush().unwrap();
    let early =
        until("the first alerts in Alertmanager", WAIT, || am_alerts(&am_addr).filter(|a| !a.is_empty()));

    // Alertmanager goes away (losing the alerts it held in memory) while the rest arrives.
    if let Some(server) = am.take() {
        server.stop();
    }
    for r in &records[half..] {
        writer.write_all(r).unwrap();
    }
    drop(writer);
    cw.wait_for("Capture files done", WAIT);
    let failed = "camwatch_alert_deliveries_total{result=\"error\",sink=\"alertmanager\"}";
    until("camwatch to count failed deliveries", WAIT, || {
        let m = parse_metrics(&http_get(&metrics_addr, "/metrics"));
        (m.get(failed).copied().unwrap_or(0.0) > 0.0).then_some(())
    });

    // Back on the same port: everything camwatch journalled arrives, each alert once.
    let _am = start_alertmanager(d, am_port);
    let firing: BTreeMap<String, Value> = {
        let mut state = BTreeMap::new();
        for a in read_jsonl(&journal) {
            let fp = a["fingerprint"].as_str().unwrap().to_string();
            if a["status"] == "firing" {
                state.insert(fp, a);
            } else {
                state.remove(&fp);
            }
        }
        state
    };
    assert!(
        firing.len() > early.len(),
        "the second half raised alerts too: {} vs {}",
        firing.len(),
        early.len()
    );
    let want: BTreeSet<(String, String, String)> = firing.values().map(journal_identity).collect();
    let got = until("every journalled alert in Alertmanager", WAIT, || {
        let alerts = am_alerts(&am_addr)?;
        let ids: BTreeSet<_> = alerts.iter().map(|a| identity(&a["labels"])).collect();
        (ids == want).then_some(alerts)
    });
    assert_eq!(got.len(), want.len(), "Alertmanager merged the re-sent duplicates");
    for a in &got {
        let id = identity(&a["labels"]);
        let j = firing.values().find(|j| journal_identity(j) == id).unwrap();
        assert_eq!(a["labels"]["severity"], j["rule"]["severity"]);
        assert_eq!(a["labels"]["sensor"], "e2e");
        assert_eq!(a["annotations"]["summary"], j["summary"]);
        // Alertmanager keeps milliseconds.
        let ms = |v: &Value| camwatch::model::time::parse_rfc3339(v.as_str().unwrap()).unwrap() / 1000;
        assert_eq!(ms(&a["startsAt"]), ms(&j["starts_at"]), "{a}");
        if let Some(sha) = j["evidence"]["sha256"].as_str() {
            assert_eq!(a["annotations"]["evidence_sha256"], sha, "{a}");
        }
        assert_eq!(a["status"]["state"], "active", "{a}");
        // The alert's source link leads to its journal record on the sensor.
        let link = a["generatorURL"].as_str().unwrap();
        let path = &link[link.find("/alerts/").unwrap()..];
        let records: Vec<Value> = serde_json::from_str(&http_get(&metrics_addr, path)).unwrap();
        assert_eq!(records.first().map(|r| &r["id"]), Some(&j["id"]), "{link}");
    }

    // Prometheus scrapes camwatch; every dashboard panel's query returns data.
    let _prom = start_prometheus(d, prom_port, &metrics_addr);
    let prom_addr = format!("127.0.0.1:{prom_port}");
    let query = |expr: &str| -> Option<Vec<Value>> {
        let (status, body) = get(&prom_addr, &format!("/api/v1/query?query={}", urlencode(expr)))?;
        assert_eq!(status, 200, "{expr}: {body}");
        let v: Value = serde_json::from_str(&body).ok()?;
        v["data"]["result"].as_array().cloned()
    };
    until("Prometheus to scrape camwatch twice", WAIT, || {
        query("count_over_time(up{job=\"camwatch\"}[1m]) >= 3").filter(|r| !r.is_empty())
    });
    let device = g.truth.devices.iter().find(|dv| dv.role == "camera").map(|dv| dv.ip.to_string()).unwrap();
    let panels = panel_queries(&root().join("dashboards"));
    assert!(panels.len() >= 40, "{} panel queries", panels.len());
    let mut empty = Vec::new();
    for p in &panels {
        let expr = substitute(&p.expr, "e2e", &device);
        if query(&expr).is_none_or(|r| r.is_empty()) {
            empty.push(format!("{} / {}: {expr}", p.dashboard, p.panel));
        }
    }
    assert!(empty.is_empty(), "panels that show nothing:\n{}", empty.join("\n"));
}

#[test]
fn alerts_raised_while_alertmanager_was_unreachable_are_delivered_after_camwatch_restarts() {
    let g = generated(32, Anomalies { egress: true, cloud: true, exploit: true, ..Anomalies::default() });
    let clean = generated(33, Anomalies::default());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let am_port = free_port();
    let am_addr = format!("127.0.0.1:{am_port}");
    let journal = d.join("alerts.jsonl");
    let config = d.join("camwatch.yaml");
    std::fs::write(
        &config,
        format!(
            "outputs:\n  alerts: {}\n  state: {}\nevidence:\n  dir: {}\nsinks:\n  alertmanager:\n    \
             urls: ['http://{am_addr}']\n    resend_interval: 1s\n  retry:\n    initial: 100ms\n    max: 500ms\n",
            journal.display(),
            d.join("state.db").display(),
            d.join("evidence").display(),
        ),
    )
    .unwrap();
    let daemon =
        |pcap: &Path| Daemon::start(daemon_cmd().arg("--config").arg(&config).arg("--read").arg(pcap));
    // Nothing listens on Alertmanager's port: camwatch journals, fails to deliver, and stops.
    let mut first = daemon(&g.pcap);
    let addr = first.metrics_addr();
    first.wait_for("Capture files done", WAIT);
    until("failed deliveries", WAIT, || {
        let m = parse_metrics(&http_get(&addr, "/metrics"));
        (m.get("camwatch_alert_deliveries_total{result=\"error\",sink=\"alertmanager\"}").copied()? > 0.0)
            .then_some(())
    });
    let (status, log) = first.stop();
    assert!(status.success(), "{}", log.join("\n"));
    let journalled: BTreeSet<String> =
        read_jsonl(&journal).iter().map(|a| a["fingerprint"].as_str().unwrap().to_string()).collect();
    assert!(journalled.len() >= 3, "{journalled:?}");

    // Alertmanager comes up; a restarted camwatch, reading a clean capture, delivers the backlog.
    let _am = start_alertmanager(d, am_port);
    let mut second = daemon(&clean.pcap);
    second.wait_for("Capture files done", WAIT);
    let want: BTreeSet<(String, String, String)> =
        read_jsonl(&journal).iter().map(journal_identity).collect();
    until("the first run's alerts in Alertmanager", WAIT, || {
        let ids: BTreeSet<_> = am_alerts(&am_addr)?.iter().map(|a| identity(&a["labels"])).collect();
        (ids == want).then_some(())
    });
    let (status, log) = second.stop();
    assert!(status.success(), "{}", log.join("\n"));
}

/// A CA and a certificate for 127.0.0.1/localhost signed by it, as PEM files in `dir`:
/// (ca, cert, key).
pub fn tls_files(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "camwatch test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let paths = (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key"));
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

/// A request over HTTPS trusting `ca`, with basic auth when given: (status, body bytes), None
/// on a connection or TLS failure.
pub fn https(method: &str, url: &str, ca: &Path, auth: Option<(&str, &str)>) -> Option<(u16, Vec<u8>)> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let mut req = client.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url);
        if let Some((u, p)) = auth {
            req = req.basic_auth(u, Some(p));
        }
        let resp = req.send().await.ok()?;
        let status = resp.status().as_u16();
        Some((status, resp.bytes().await.ok()?.to_vec()))
    })
}

/// GET over HTTPS: (status, body as text).
pub fn https_get(url: &str, ca: &Path, auth: Option<(&str, &str)>) -> Option<(u16, String)> {
    https("GET", url, ca, auth).map(|(status, body)| (status, String::from_utf8_lossy(&body).into_owned()))
}

/// A request with another method over HTTPS with basic auth: the status.
pub fn https_request(method: &str, url: &str, ca: &Path, auth: (&str, &str)) -> Option<u16> {
    https(method, url, ca, Some(auth)).map(|(status, _)| status)
}

/// GET over HTTPS with basic auth: the body's bytes when the status is 200.
pub fn https_bytes(url: &str, ca: &Path, auth: (&str, &str)) -> Option<Vec<u8>> {
    https("GET", url, ca, Some(auth)).filter(|(status, _)| *status == 200).map(|(_, body)| body)
}

/// TLS and basic authentication both ways, with the real servers: Prometheus scrapes camwatch's
/// /metrics over HTTPS with a password (camwatch's `--web.config.file`, the exporter-toolkit's
/// format), and camwatch delivers its alerts to an Alertmanager that itself requires TLS and a
/// password (`tls_config.ca_file`, `basic_auth.password_file`). Without the password, or in
/// plain HTTP, camwatch's endpoint answers nothing useful.
#[test]
fn tls_and_basic_auth_to_prometheus_and_from_alertmanager() {
    let g = generated(33, Anomalies { egress: true, ..Anomalies::default() });
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ca, cert, key) = tls_files(d);
    let hash = bcrypt::hash("scrape-secret", 4).unwrap();
    let am_hash = bcrypt::hash("deliver-secret", 4).unwrap();
    std::fs::write(d.join("prom.pass"), "scrape-secret\n").unwrap();
    std::fs::write(d.join("am.pass"), "deliver-secret\n").unwrap();
    let web = |users: &str| {
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\nbasic_auth_users:\n{users}",
            cert.display(),
            key.display()
        )
    };
    std::fs::write(d.join("cw-web.yml"), web(&format!("  prom: '{hash}'\n"))).unwrap();
    std::fs::write(d.join("am-web.yml"), web(&format!("  camwatch: '{am_hash}'\n"))).unwrap();

    // Alertmanager behind TLS and a password.
    let am_port = free_port();
    std::fs::write(
        d.join("alertmanager.yml"),
        "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n",
    )
    .unwrap();
    let am = Server(
        Command::new(tool("prometheus-alertmanager"))
            .arg(format!("--config.file={}", d.join("alertmanager.yml").display()))
            .arg(format!("--storage.path={}", d.join("am-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
            .arg(format!("--web.config.file={}", d.join("am-web.yml").display()))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let am_url = format!("https://127.0.0.1:{am_port}");
    until("Alertmanager over TLS", WAIT, || {
        https_get(&format!("{am_url}/-/ready"), &ca, Some(("camwatch", "deliver-secret")))
            .filter(|(s, _)| *s == 200)
    });

    let config = d.join("camwatch.yaml");
    std::fs::write(
        &config,
        format!(
            "sensor: tls\noutputs:\n  alerts: {}\n  events: {}\n  state: null\nevidence:\n  enabled: false\n\
             sinks:\n  alertmanager:\n    urls: ['{am_url}']\n    resend_interval: 1s\n    \
             tls_config: {{ ca_file: {} }}\n    basic_auth: {{ username: camwatch, password_file: {} }}\n  \
             retry:\n    initial: 100ms\n    max: 1s\n",
            d.join("alerts.jsonl").display(),
            d.join("events.jsonl").display(),
            ca.display(),
            d.join("am.pass").display(),
        ),
    )
    .unwrap();
    let mut cw = Daemon::start(
        daemon_cmd()
            .arg("--config")
            .arg(&config)
            .arg("--read")
            .arg(&g.pcap)
            .arg("--web.config.file")
            .arg(d.join("cw-web.yml")),
    );
    let line = cw.wait_for("Serving metrics on https://", WAIT);
    let addr = line.split("https://").nth(1).unwrap().split('/').next().unwrap().to_string();

    // camwatch's endpoint: the password opens it; none, a wrong one or plain HTTP do not.
    let metrics = format!("https://{addr}/metrics");
    let (status, body) = https_get(&metrics, &ca, Some(("prom", "scrape-secret"))).unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("camwatch_build_info"), "{body}");
    assert_eq!(https_get(&metrics, &ca, None).map(|r| r.0), Some(401));
    assert_eq!(https_get(&metrics, &ca, Some(("prom", "wrong"))).map(|r| r.0), Some(401));
    assert!(get(&addr, "/metrics").is_none_or(|(s, _)| s != 200), "plain HTTP must not be served");

    // Prometheus scrapes it over TLS with the password.
    let prom_port = free_port();
    std::fs::write(
        d.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: camwatch\n    scheme: https\n    \
             tls_config:\n      ca_file: {}\n    basic_auth:\n      username: prom\n      password_file: {}\n    \
             static_configs:\n      - targets: ['{addr}']\n",
            ca.display(),
            d.join("prom.pass").display()
        ),
    )
    .unwrap();
    let prom = Server(
        Command::new(tool("prometheus"))
            .arg(format!("--config.file={}", d.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", d.join("prom-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let prom_addr = format!("127.0.0.1:{prom_port}");
    until("Prometheus to scrape camwatch over TLS", WAIT, || {
        let (_, body) =
            get(&prom_addr, &format!("/api/v1/query?query={}", urlencode("up{job=\"camwatch\"}")))?;
        let v: Value = serde_json::from_str(&body).ok()?;
        (v["data"]["result"][0]["value"][1] == "1").then_some(())
    });
    until("a camwatch series in Prometheus", WAIT, || {
        let (_, body) =
            get(&prom_addr, &format!("/api/v1/query?query={}", urlencode("camwatch_build_info")))?;
        let v: Value = serde_json::from_str(&body).ok()?;
        (!v["data"]["result"].as_array()?.is_empty()).then_some(())
    });

    // The egress alert reaches Alertmanager over TLS with the password.
    let alerts = until("the alert in Alertmanager", WAIT, || {
        let (status, body) =
            https_get(&format!("{am_url}/api/v2/alerts"), &ca, Some(("camwatch", "deliver-secret")))?;
        let v: Vec<Value> = serde_json::from_str(&body).ok().filter(|_| status == 200)?;
        v.iter().any(|a| a["labels"]["alertname"] == "egress-outside-allowed").then_some(v)
    });
    assert!(alerts.iter().all(|a| a["labels"]["sensor"] == "tls"));
    let (status, log) = cw.stop();
    assert!(status.success(), "{}", log.join("\n"));
    prom.stop();
    am.stop();
}
