//! Helpers shared by the integration tests.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use camwatch_synth::{generate, write_pcap, Anomalies, Scenario, Truth};
use serde_json::Value;

/// The camwatch binary, run in a fresh working directory of its own, so the defaults that are
/// relative paths (`var/alerts.jsonl`, `var/camwatch.db`) neither touch the checkout nor leak
/// state between tests.
pub fn bin() -> Command {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let cwd = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "run-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&cwd).unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_camwatch"));
    c.current_dir(cwd).env("CAMWATCH_LOG", "info").env("NO_COLOR", "1");
    c
}

/// `camwatch run` with the shipped packs and metrics on a free loopback port (the log says
/// which); add sources and outputs.
pub fn daemon_cmd() -> Command {
    let mut cmd = bin();
    cmd.args(["run", "--listen", "127.0.0.1:0", "--rules"]).arg(rules_dir());
    cmd
}

/// `camwatch replay` with the shipped packs; add files and outputs.
pub fn replay_cmd() -> Command {
    let mut cmd = bin();
    cmd.arg("replay").arg("--rules").arg(rules_dir());
    cmd
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn rules_dir() -> PathBuf {
    root().join("rules")
}

/// The third-party captures in the repository's test data (`tests/data/README.md` gives each
/// file's source and licence). Its absence fails the test.
pub fn corpus() -> PathBuf {
    let p = root().join("tests/data/corpus");
    assert!(p.is_dir(), "the test data is missing at {}", p.display());
    p
}

pub fn tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file()))
        .unwrap_or_default();
    found.unwrap_or_else(|| panic!("`{name}` is not installed: run scripts/setup (CI always has it)"))
}

pub struct Generated {
    pub dir: tempfile::TempDir,
    pub pcap: PathBuf,
    pub truth: Truth,
}

pub fn generated(seed: u64, anomalies: Anomalies) -> Generated {
    let scenario =
        Scenario { seed, anomalies, duration_secs: 90, upload_bytes: 400_000, ..Scenario::default() };
    let cap = generate(&scenario);
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("net.pcap");
    write_pcap(&pcap, &cap).unwrap();
    Generated { dir, pcap, truth: cap.truth }
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn read_jsonl(path: &Path) -> Vec<Value> {
    let Ok(text) = std::fs::read_to_string(path) else { return Vec::new() };
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}")))
        .collect()
}

/// Parses Prometheus/OpenMetrics text into `name{labels}` → value, labels sorted, `sensor` dropped.
pub fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let mut ls: Vec<&str> =
            split_labels(labels).into_iter().filter(|l| !l.starts_with("sensor=")).collect();
        ls.sort_unstable();
        let key = if ls.is_empty() { name.to_string() } else { format!("{name}{{{}}}", ls.join(",")) };
        out.insert(key, value.parse().unwrap_or(f64::NAN));
    }
    out
}

fn split_labels(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

pub fn metric(m: &BTreeMap<String, f64>, key: &str) -> f64 {
    *m.get(key).unwrap_or_else(|| panic!("metric {key} missing; have:\n{}", keys(m)))
}

pub fn keys(m: &BTreeMap<String, f64>) -> String {
    m.keys().cloned().collect::<Vec<_>>().join("\n")
}

/// A `camwatch run` child whose log lines are read on a thread, so a test can wait for one.
pub struct Daemon {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    pub log: Vec<String>,
}

impl Daemon {
    pub fn start(cmd: &mut Command) -> Self {
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines: rx, log: Vec::new() }
    }

    /// Waits for a log line containing `needle`, failing after `timeout`.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no log line with `{needle}` within {timeout:?}; log so far:\n{}",
                    self.log.join("\n")
                ),
            }
        }
    }

    /// Waits up to `timeout` for any log line (a paced wait that still reads the log).
    pub fn wait_for_any(&mut self, timeout: Duration) {
        if let Ok(line) = self.lines.recv_timeout(timeout) {
            self.log.push(line);
        }
    }

    /// The metrics address from the "Serving metrics on http://ADDR/metrics." line.
    pub fn metrics_addr(&mut self) -> String {
        let line = self.wait_for("Serving metrics on http://", Duration::from_secs(60));
        let start = line.find("http://").unwrap() + 7;
        let rest = &line[start..];
        rest[..rest.find("/metrics").unwrap()].to_string()
    }

    pub fn signal(&self, sig: &str) {
        let ok =
            Command::new("kill").arg(format!("-{sig}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(ok.success());
    }

    /// Sends SIGTERM (unless it has exited already) and returns the exit status and the rest of
    /// the log.
    pub fn stop(mut self) -> (std::process::ExitStatus, Vec<String>) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.signal("TERM");
        }
        let status = self.child.wait().unwrap();
        let mut log = std::mem::take(&mut self.log);
        // Read to the end of the child's stderr (the reader thread ends there).
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Ok(line) = self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            log.push(line);
        }
        (status, log)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET over plain HTTP/1.1 (no client crate needed for loopback tests).
pub fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    assert!(head.starts_with("HTTP/1.1 200"), "GET {path}: {head}");
    body.to_string()
}

/// The status of a GET over plain HTTP/1.1.
pub fn http_status(addr: &str, path: &str) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let head = String::from_utf8_lossy(&buf);
    head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// Frames of one TCP conversation on Ethernet: handshake, each (request, response) exchange
/// with correct sequence numbers (split into 1400-byte segments), and FIN teardown.
pub fn tcp_conversation(
    client: ([u8; 6], [u8; 4], u16),
    server: ([u8; 6], [u8; 4], u16),
    exchanges: &[(&[u8], &[u8])],
) -> Vec<Vec<u8>> {
    use etherparse::PacketBuilder;
    let (cmac, cip, cport) = client;
    let (smac, sip, sport) = server;
    let mut frames = Vec::new();
    let (mut cseq, mut sseq) = (1000u32, 5000u32);
    let mut push = |from_client: bool, seq: u32, ack: u32, syn: bool, fin: bool, payload: &[u8]| {
        let b = if from_client {
            PacketBuilder::ethernet2(cmac, smac).ipv4(cip, sip, 64).tcp(cport, sport, seq, 64240)
        } else {
            PacketBuilder::ethernet2(smac, cmac).ipv4(sip, cip, 64).tcp(sport, cport, seq, 64240)
        };
        let b = if syn { b.syn() } else { b };
        // Everything but the client's SYN acknowledges.
        let b = if syn && from_client { b } else { b.ack(ack) };
        let b = if fin { b.fin() } else { b };
        let mut f = Vec::new();
        b.write(&mut f, payload).unwrap();
        frames.push(f);
    };
    push(true, cseq, 0, true, false, b"");
    push(false, sseq, cseq + 1, true, false, b"");
    cseq += 1;
    sseq += 1;
    push(true, cseq, sseq, false, false, b"");
    for (req, resp) in exchanges {
        for chunk in req.chunks(1400) {
            push(true, cseq, sseq, false, false, chunk);
            cseq += chunk.len() as u32;
        }
        for chunk in resp.chunks(1400) {
            push(false, sseq, cseq, false, false, chunk);
            sseq += chunk.len() as u32;
        }
    }
    push(true, cseq, sseq, false, true, b"");
    push(false, sseq, cseq + 1, false, true, b"");
    push(true, cseq + 1, sseq + 1, false, false, b"");
    frames
}

/// Writes Ethernet frames as a classic pcap at the given times (microseconds since the epoch).
pub fn write_frames_at(path: &Path, frames: &[(u64, Vec<u8>)]) {
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    let mut w = PcapWriter::with_header(std::fs::File::create(path).unwrap(), PcapHeader::default()).unwrap();
    for (ts, f) in frames {
        w.write_packet(&PcapPacket::new(Duration::from_micros(*ts), f.len() as u32, f)).unwrap();
    }
}

/// Writes Ethernet frames as a classic pcap, one millisecond apart.
pub fn write_frames(path: &Path, frames: &[Vec<u8>]) {
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    let mut w = PcapWriter::with_header(std::fs::File::create(path).unwrap(), PcapHeader::default()).unwrap();
    for (i, f) in frames.iter().enumerate() {
        let ts = Duration::from_micros(1_767_225_600_000_000 + i as u64 * 1000);
        w.write_packet(&PcapPacket::new(ts, f.len() as u32, f)).unwrap();
    }
}
