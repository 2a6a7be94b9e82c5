//! Syslog: RFC 5424 messages over UDP (one per datagram, at most 8 KiB) or TCP (RFC 6587 octet
//! counting, `LEN SP MSG`). TCP reconnects after an error; neither transport acknowledges, so a
//! message written just before the receiver dies can be lost there, as with any syslog sender.
//!
//! `<PRI>1 TIMESTAMP HOSTNAME camwatch - MSGID [camwatch@32473 rule=… severity=… device=…
//! fingerprint=… status=…] MSG`, with MSGID `alert` or `resolved`, TIMESTAMP the record's, and MSG
//! the journal line (`format: json`) or the summary (`format: text`).

use std::io;
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};

use super::journal::{Record, Status};
use super::{check_name, error_chain, Failure, Sink};
use humantime_serde::re::humantime;

/// Longest UDP message; longer ones are cut (on a character boundary).
pub const MAX_DATAGRAM: usize = 8 << 10;

/// Time allowed to connect, and to write one batch.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The structured-data element's name (an example enterprise number, as RFC 5424 uses).
const SD_ID: &str = "camwatch@32473";

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SyslogProtocol {
    #[default]
    Udp,
    Tcp,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SyslogFormat {
    /// MSG is the alert record as JSON.
    #[default]
    Json,
    /// MSG is the alert's summary.
    Text,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SyslogConfig {
    /// The sink's name, in metrics and logs and as its cursor file; unique among sinks.
    pub name: String,
    /// The receiver, `host:port`.
    pub address: String,
    pub protocol: SyslogProtocol,
    /// Syslog facility, 0-23 (default 16, local0).
    pub facility: u8,
    pub format: SyslogFormat,
    /// HOSTNAME of the messages; default the sensor name.
    pub hostname: Option<String>,
}

impl Default for SyslogConfig {
    fn default() -> Self {
        Self {
            name: "syslog".into(),
            address: String::new(),
            protocol: SyslogProtocol::Udp,
            facility: 16,
            format: SyslogFormat::Json,
            hostname: None,
        }
    }
}

impl SyslogConfig {
    pub(crate) fn validate(&self) -> Result<(), String> {
        let what = format!("sinks.syslog[{}]", self.name);
        check_name(&what, &self.name)?;
        let port = self.address.rsplit_once(':').map(|(host, port)| (host, port.parse::<u16>()));
        match port {
            Some((host, Ok(p))) if !host.is_empty() && p != 0 => {}
            _ => return Err(format!("{what}.address: {:?} must be host:port", self.address)),
        }
        if self.facility > 23 {
            return Err(format!("{what}.facility: {} is not a syslog facility (0-23)", self.facility));
        }
        Ok(())
    }
}

/// Syslog severity of an alert severity.
fn severity(rule_severity: &str) -> u8 {
    match rule_severity {
        "critical" => 2,
        "high" => 3,
        "medium" => 4,
        "low" => 5,
        "info" => 6,
        _ => 4,
    }
}

/// An SD-PARAM value: `"`, `\` and `]` escaped (RFC 5424 section 6.3.3).
fn sd_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A header field: printable US-ASCII without spaces, at most `max` long, `-` when empty.
fn header_field(value: &str, max: usize) -> String {
    let field: String = value.chars().map(|c| if c.is_ascii_graphic() { c } else { '_' }).take(max).collect();
    if field.is_empty() {
        "-".into()
    } else {
        field
    }
}

/// The record's time with at most microseconds, as RFC 5424 allows; now when it has none.
fn timestamp(record: &Record) -> String {
    let t = humantime::parse_rfc3339_weak(&record.timestamp).unwrap_or_else(|_| SystemTime::now());
    humantime::format_rfc3339_micros(t).to_string()
}

/// Cuts `text` to at most `max` bytes, on a character boundary.
fn truncate(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

/// The RFC 5424 message of `record`.
pub(crate) fn message(record: &Record, facility: u8, hostname: &str, format: SyslogFormat) -> String {
    let pri = u16::from(facility) * 8 + u16::from(severity(&record.rule.severity));
    let msgid = match record.status {
        Status::Firing => "alert",
        Status::Resolved => "resolved",
    };
    let params = [
        ("rule", record.rule.id.as_str()),
        ("severity", record.rule.severity.as_str()),
        ("device", record.device.ip.as_deref().unwrap_or_default()),
        ("fingerprint", &record.fingerprint()),
        ("status", record.status.as_str()),
    ]
    .iter()
    .map(|(name, value)| format!(" {name}=\"{}\"", sd_escape(value)))
    .collect::<String>();
    let msg = match format {
        SyslogFormat::Json => record.line.as_str(),
        SyslogFormat::Text if record.summary.is_empty() => record.rule.name.as_str(),
        SyslogFormat::Text => record.summary.as_str(),
    };
    let hostname = header_field(hostname, 255);
    format!("<{pri}>1 {} {hostname} camwatch - {msgid} [{SD_ID}{params}] {msg}", timestamp(record))
}

enum Connection {
    Udp(UdpSocket),
    Tcp {
        stream: TcpStream,
        /// The same socket as a std handle, to ask the kernel directly (tokio's `try_read`
        /// answers from readiness it may not have seen change yet).
        probe: std::net::TcpStream,
    },
}

/// Whether the receiver has closed the connection. Checked before each write, so a batch is not
/// written into a connection already gone (where the write would succeed and the alerts vanish).
fn closed(probe: &std::net::TcpStream) -> bool {
    let mut buf = [0u8; 1];
    match probe.peek(&mut buf) {
        Ok(0) => true,
        // Syslog receivers do not talk; whatever this is, the connection is up.
        Ok(_) => false,
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    }
}

/// One syslog receiver.
pub(crate) struct Syslog {
    address: String,
    protocol: SyslogProtocol,
    facility: u8,
    format: SyslogFormat,
    hostname: String,
    connection: Option<Connection>,
}

impl Syslog {
    pub fn new(cfg: &SyslogConfig, sensor: &str) -> Self {
        Self {
            address: cfg.address.clone(),
            protocol: cfg.protocol,
            facility: cfg.facility,
            format: cfg.format,
            hostname: cfg.hostname.clone().unwrap_or_else(|| sensor.to_string()),
            connection: None,
        }
    }

    async fn connect(&self) -> io::Result<Connection> {
        let addr = tokio::net::lookup_host(&self.address).await?.next().ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("{}: no address", self.address))
        })?;
        Ok(match self.protocol {
            SyslogProtocol::Udp => {
                let local = if addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
                let socket = UdpSocket::bind(local).await?;
                socket.connect(addr).await?;
                Connection::Udp(socket)
            }
            SyslogProtocol::Tcp => {
                let stream = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr))
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
                stream.set_nodelay(true)?;
                let std = stream.into_std()?;
                let probe = std.try_clone()?;
                Connection::Tcp { stream: TcpStream::from_std(std)?, probe }
            }
        })
    }

    async fn send(&mut self, messages: Vec<String>) -> io::Result<()> {
        if let Some(Connection::Tcp { probe, .. }) = &self.connection {
            if closed(probe) {
                self.connection = None;
            }
        }
        if self.connection.is_none() {
            self.connection = Some(self.connect().await?);
        }
        match &mut self.connection {
            Some(Connection::Udp(socket)) => {
                for mut m in messages {
                    truncate(&mut m, MAX_DATAGRAM);
                    socket.send(m.as_bytes()).await?;
                }
                Ok(())
            }
            Some(Connection::Tcp { stream, .. }) => {
                let mut frames = Vec::with_capacity(messages.iter().map(|m| m.len() + 8).sum());
                for m in &messages {
                    frames.extend_from_slice(format!("{} ", m.len()).as_bytes());
                    frames.extend_from_slice(m.as_bytes());
                }
                tokio::time::timeout(IO_TIMEOUT, async {
                    stream.write_all(&frames).await?;
                    stream.flush().await
                })
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "write timed out"))?
            }
            None => Err(io::Error::new(io::ErrorKind::NotConnected, "not connected")),
        }
    }
}

impl Sink for Syslog {
    fn max_batch(&self) -> usize {
        usize::MAX
    }

    async fn deliver(&mut self, records: &[Record]) -> Result<(), Failure> {
        let messages =
            records.iter().map(|r| message(r, self.facility, &self.hostname, self.format)).collect();
        match self.send(messages).await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.connection = None;
                Err(Failure::Transient(format!("{}: {}", self.address, error_chain(&e))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{RetryConfig, SinksConfig};
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

    fn config(address: String, protocol: SyslogProtocol) -> SinksConfig {
        SinksConfig {
            syslog: vec![SyslogConfig { address, protocol, ..SyslogConfig::default() }],
            retry: RetryConfig { initial: Duration::from_millis(20), max: Duration::from_millis(50) },
            ..SinksConfig::default()
        }
    }

    /// The parts of a message: PRI, the header fields, the SD element and MSG.
    fn parse(message: &str) -> (u16, Vec<&str>, &str, &str) {
        let rest = message.strip_prefix('<').unwrap();
        let (pri, rest) = rest.split_once('>').unwrap();
        let mut header = Vec::new();
        let mut rest = rest;
        for _ in 0..6 {
            let (field, r) = rest.split_once(' ').unwrap();
            header.push(field);
            rest = r;
        }
        // The SD element ends at the first `]` not escaped.
        let bytes = rest.as_bytes();
        assert_eq!(bytes[0], b'[');
        let mut i = 1;
        while bytes[i] != b']' {
            i += if bytes[i] == b'\\' { 2 } else { 1 };
        }
        let (sd, msg) = rest.split_at(i + 1);
        (pri.parse().unwrap(), header, sd, msg.strip_prefix(' ').unwrap())
    }

    fn tricky_record() -> serde_json::Value {
        let mut r = record("9f3c", "fp\"1", "firing");
        r["rule"]["id"] = r#"a"b\c]d"#.into();
        r["rule"]["severity"] = "critical".into();
        r
    }

    #[test]
    fn message_layout() {
        let mut r = Record::parse(&tricky_record().to_string()).unwrap();
        let m = message(&r, 16, "site a", SyslogFormat::Json);
        let (pri, header, sd, msg) = parse(&m);
        assert_eq!(pri, 16 * 8 + 2);
        assert_eq!(header, ["1", "2024-05-01T10:00:00.000000Z", "site_a", "camwatch", "-", "alert"]);
        assert_eq!(
            sd,
            r#"[camwatch@32473 rule="a\"b\\c\]d" severity="critical" device="10.0.0.5" fingerprint="fp\"1" status="firing"]"#
        );
        assert_eq!(msg, r.line);

        r.status = Status::Resolved;
        r.rule.severity = "low".into();
        r.timestamp = "garbage".into();
        let m = message(&r, 4, "", SyslogFormat::Text);
        let (pri, header, sd, msg) = parse(&m);
        assert_eq!(pri, 4 * 8 + 5);
        assert_eq!(header[2], "-");
        assert_eq!(header[5], "resolved");
        assert!(header[1].ends_with('Z') && header[1].len() == 27, "{}", header[1]);
        assert!(sd.ends_with(r#"status="resolved"]"#));
        assert_eq!(msg, "Camera reached the internet: 10.0.0.5 (Hikvision) → 8.8.8.8:443/tcp");

        for (sev, want) in [("high", 3), ("medium", 4), ("info", 6), ("weird", 4)] {
            r.rule.severity = sev.into();
            assert_eq!(parse(&message(&r, 0, "h", SyslogFormat::Text)).0, want, "{sev}");
        }
    }

    #[test]
    fn truncation_keeps_whole_characters() {
        let mut s = "é".repeat(10);
        truncate(&mut s, 5);
        assert_eq!(s, "éé");
        let mut s = "abc".to_string();
        truncate(&mut s, 8);
        assert_eq!(s, "abc");
    }

    #[tokio::test]
    async fn udp_one_message_per_datagram_cut_to_8_kib() {
        let fx = Fixture::new();
        let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut long = record("big", "fp2", "firing");
        long["summary"] = "é".repeat(6000).into();
        fx.append(&tricky_record());
        fx.append(&long);
        let tasks = fx.spawn(&config(receiver.local_addr().unwrap().to_string(), SyslogProtocol::Udp));
        let mut buf = vec![0u8; 65536];
        let n = within(receiver.recv(&mut buf)).await.unwrap();
        let first = std::str::from_utf8(&buf[..n]).unwrap().to_string();
        let (pri, header, sd, msg) = parse(&first);
        assert_eq!(pri, 130);
        assert_eq!(header[2], "site-a");
        assert!(sd.starts_with(r#"[camwatch@32473 rule="a\"b\\c\]d""#), "{sd}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(msg).unwrap(), tricky_record());

        let n = within(receiver.recv(&mut buf)).await.unwrap();
        assert!(n <= MAX_DATAGRAM && n > MAX_DATAGRAM - 4, "{n}");
        let second = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(second.contains(r#"fingerprint="fp2""#));
        fx.stop(tasks).await;
        assert_eq!(fx.cursor("syslog"), fx.journal_len());
    }

    /// Reads one octet-counted frame.
    async fn frame(reader: &mut BufReader<TcpStream>) -> String {
        let mut len = Vec::new();
        within(reader.read_until(b' ', &mut len)).await.unwrap();
        let len: usize = std::str::from_utf8(&len).unwrap().trim_end().parse().unwrap();
        let mut msg = vec![0u8; len];
        within(reader.read_exact(&mut msg)).await.unwrap();
        String::from_utf8(msg).unwrap()
    }

    #[tokio::test]
    async fn tcp_octet_counting_and_reconnect() {
        let fx = Fixture::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut long = record("big", "fp2", "firing");
        long["summary"] = "x".repeat(20_000).into();
        fx.append(&tricky_record());
        fx.append(&long);
        let tasks = fx.spawn(&config(listener.local_addr().unwrap().to_string(), SyslogProtocol::Tcp));
        let (conn, _) = within(listener.accept()).await.unwrap();
        let mut reader = BufReader::new(conn);
        let first = frame(&mut reader).await;
        let (pri, _, _, msg) = parse(&first);
        assert_eq!(pri, 130);
        assert!(msg.contains("\"9f3c\""));
        let second = frame(&mut reader).await;
        assert!(second.len() > 20_000, "TCP messages are not cut");
        assert!(second.ends_with('}'));
        // The receiver goes away; the next alert arrives on a new connection.
        drop(reader);
        fx.append(&record("after", "fp3", "resolved"));
        let (conn, _) = within(listener.accept()).await.unwrap();
        let mut reader = BufReader::new(conn);
        let m = frame(&mut reader).await;
        let (_, header, _, msg) = parse(&m);
        assert_eq!(header[5], "resolved");
        assert!(msg.contains("\"after\""));
        fx.stop(tasks).await;
        assert_eq!(fx.cursor("syslog"), fx.journal_len());
    }

    #[tokio::test]
    async fn tcp_receiver_down_then_up() {
        let fx = Fixture::new();
        let addr = closed_port().await;
        fx.append(&record("a", "f", "firing"));
        let tasks = fx.spawn(&config(addr.to_string(), SyslogProtocol::Tcp));
        fx.until(|fx| fx.retries("syslog") >= 1).await;
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let (conn, _) = within(listener.accept()).await.unwrap();
        let mut reader = BufReader::new(conn);
        assert!(frame(&mut reader).await.contains("\"a\""));
        fx.stop(tasks).await;
        assert_eq!(fx.cursor("syslog"), fx.journal_len());
    }
}
