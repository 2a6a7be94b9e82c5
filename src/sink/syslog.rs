//! Syslog: RFC 5424 messages over UDP (one per datagram, at most 8 KiB), TCP (RFC 6587 octet
//! counting, `LEN SP MSG`) or TLS (RFC 5425: the same octet-counted frames in a TLS connection,
//! the receiver's certificate checked as `tls_config` says). TCP and TLS reconnect after an
//! error; no transport acknowledges, so a message written just before the receiver dies can be
//! lost there, as with any syslog sender.
//!
//! `<PRI>1 TIMESTAMP HOSTNAME camwatch - MSGID [SD] MSG`, with MSGID `alert` or `resolved`,
//! TIMESTAMP the record's, and MSG the journal line (`format: json`) or the summary (`format:
//! text`). SD is the IANA-registered `[origin software="camwatch" swVersion=…]` (RFC 5424
//! §7.2); a site with its own IANA private enterprise number sets `enterprise_number: N` and
//! gets `[camwatch@N rule=… severity=… device=… fingerprint=… status=…]` instead. camwatch has
//! no number of its own, and an SD-ID with someone else's (or the documentation's, 32473) would
//! be wrong.

use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls_pki_types::ServerName;
use serde::Deserialize;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::client::TlsStream;
use tokio_rustls::{rustls, TlsConnector};

use super::journal::{Record, Status};
use super::tls::TlsClientConfig;
use super::{check_name, error_chain, Failure, Sink};
use humantime_serde::re::humantime;

/// Longest UDP message; longer ones are cut (on a character boundary).
pub const MAX_DATAGRAM: usize = 8 << 10;

/// Time allowed to connect, for the TLS handshake, and to write one batch.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SyslogProtocol {
    #[default]
    Udp,
    Tcp,
    /// TCP with TLS (RFC 5425; the receiver's port is usually 6514).
    Tls,
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
    /// The site's IANA private enterprise number: the alert's fields then go in a
    /// `[camwatch@N …]` structured-data element. Without it only the registered `origin`
    /// element is sent (the fields are in MSG).
    pub enterprise_number: Option<u32>,
    /// With `protocol: tls` only: the CA that signs the receiver's certificate (default the
    /// public web roots), a client certificate, the name to check (default the host of
    /// `address`), as Prometheus's `tls_config`.
    pub tls_config: TlsClientConfig,
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
            enterprise_number: None,
            tls_config: TlsClientConfig::default(),
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
        if self.protocol == SyslogProtocol::Tls {
            self.server_name().map_err(|e| format!("{what}.{e}"))?;
        } else if self.tls_config != TlsClientConfig::default() {
            return Err(format!("{what}.tls_config: only with protocol: tls"));
        }
        Ok(())
    }

    /// The name the receiver's certificate must carry: `tls_config.server_name`, else the host of
    /// `address` (a DNS name or an IP address). The error names the key it comes from.
    fn server_name(&self) -> Result<ServerName<'static>, String> {
        let (key, name) = match &self.tls_config.server_name {
            Some(name) => ("tls_config.server_name", name.as_str()),
            None => {
                let host = self.address.rsplit_once(':').map_or(self.address.as_str(), |(host, _)| host);
                ("address", host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host))
            }
        };
        ServerName::try_from(name.to_string()).map_err(|_| {
            format!(
                "{key}: {name:?} is not a DNS name or IP address to check the receiver's certificate against"
            )
        })
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
pub(crate) fn message(
    record: &Record,
    facility: u8,
    hostname: &str,
    format: SyslogFormat,
    sd_id: Option<&str>,
) -> String {
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
    let sd = match sd_id {
        Some(id) => format!("[{id}{params}]"),
        None => format!("[origin software=\"camwatch\" swVersion=\"{}\"]", env!("CARGO_PKG_VERSION")),
    };
    format!("<{pri}>1 {} {hostname} camwatch - {msgid} {sd} {msg}", timestamp(record))
}

enum Connection {
    Udp(UdpSocket),
    Tcp {
        stream: TcpStream,
        /// The same socket as a std handle, to ask the kernel directly (tokio's `try_read`
        /// answers from readiness it may not have seen change yet).
        probe: std::net::TcpStream,
    },
    Tls {
        stream: Box<TlsStream<TcpStream>>,
        /// The TCP socket under the TLS stream, as for `Tcp`.
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

/// Whether the receiver has closed a TLS connection. A peek cannot tell: a TLS receiver does
/// talk (TLS 1.3 session tickets after the handshake, a close_notify alert when it closes), so
/// what waits in the socket is read into the TLS session, without waiting, and looked at.
fn tls_closed(probe: &std::net::TcpStream, session: &mut rustls::ClientConnection) -> bool {
    let mut socket = probe;
    // Bounded, should a receiver send without end.
    for _ in 0..64 {
        match session.process_new_packets() {
            Ok(state) if state.peer_has_closed() => return true,
            // Records the receiver had no business sending, or an alert.
            Err(_) => return true,
            Ok(state) => {
                if state.plaintext_bytes_to_read() > 0 {
                    // Syslog receivers do not talk; whatever this is, it is dropped.
                    let _ = io::copy(&mut session.reader(), &mut io::sink());
                }
            }
        }
        match session.read_tls(&mut socket) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) => return e.kind() != io::ErrorKind::WouldBlock,
        }
    }
    false
}

/// `messages` octet-counted (RFC 6587 section 3.4.1, RFC 5425 section 4.3): `LEN SP MSG` each.
fn frames(messages: &[String]) -> Vec<u8> {
    let mut frames = Vec::with_capacity(messages.iter().map(|m| m.len() + 8).sum());
    for m in messages {
        frames.extend_from_slice(format!("{} ", m.len()).as_bytes());
        frames.extend_from_slice(m.as_bytes());
    }
    frames
}

/// Writes `frames` and flushes them, within [`IO_TIMEOUT`].
async fn write_frames(stream: &mut (impl AsyncWrite + Unpin), frames: &[u8]) -> io::Result<()> {
    tokio::time::timeout(IO_TIMEOUT, async {
        stream.write_all(frames).await?;
        stream.flush().await
    })
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "write timed out"))?
}

/// What a TLS connection needs, made once at startup.
struct Tls {
    connector: TlsConnector,
    server_name: ServerName<'static>,
}

impl Tls {
    /// The TLS handshake over `stream`, within [`IO_TIMEOUT`]; a failure (a certificate not
    /// trusted or not for the server name) says so.
    async fn handshake(&self, stream: TcpStream) -> io::Result<TlsStream<TcpStream>> {
        let name = self.server_name.to_str();
        match tokio::time::timeout(IO_TIMEOUT, self.connector.connect(self.server_name.clone(), stream)).await
        {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(e)) => Err(io::Error::new(
                e.kind(),
                format!("TLS handshake (server name {name}) failed: {}", error_chain(&e)),
            )),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("TLS handshake (server name {name}) timed out"),
            )),
        }
    }
}

/// One syslog receiver.
pub(crate) struct Syslog {
    address: String,
    protocol: SyslogProtocol,
    facility: u8,
    format: SyslogFormat,
    hostname: String,
    /// `camwatch@<enterprise_number>`, when the site has one.
    sd_id: Option<String>,
    /// With `protocol: tls`: the connector, or why it could not be made (see [`Syslog::new`]).
    tls: Option<Result<Tls, String>>,
    connection: Option<Connection>,
}

impl Syslog {
    /// The sink, its TLS settings read (CA, client certificate): an unreadable file is an error.
    pub fn try_new(cfg: &SyslogConfig, sensor: &str) -> anyhow::Result<Self> {
        let tls = Self::tls(cfg)?;
        Ok(Self::with_tls(cfg, sensor, tls.map(Ok)))
    }

    /// The TLS connector of `protocol: tls`, its files read.
    fn tls(cfg: &SyslogConfig) -> anyhow::Result<Option<Tls>> {
        Ok(match cfg.protocol {
            SyslogProtocol::Tls => {
                let what = format!("sinks.syslog[{}]", cfg.name);
                let server_name = cfg.server_name().map_err(|e| anyhow::anyhow!("{what}.{e}"))?;
                let config = cfg.tls_config.client_config(&what)?;
                Some(Tls { connector: TlsConnector::from(Arc::new(config)), server_name })
            }
            SyslogProtocol::Udp | SyslogProtocol::Tcp => None,
        })
    }

    fn with_tls(cfg: &SyslogConfig, sensor: &str, tls: Option<Result<Tls, String>>) -> Self {
        Self {
            address: cfg.address.clone(),
            protocol: cfg.protocol,
            facility: cfg.facility,
            format: cfg.format,
            hostname: cfg.hostname.clone().unwrap_or_else(|| sensor.to_string()),
            sd_id: cfg.enterprise_number.map(|n| format!("camwatch@{n}")),
            tls,
            connection: None,
        }
    }

    async fn connect(&self) -> io::Result<Connection> {
        let tls = match &self.tls {
            Some(Err(reason)) => return Err(io::Error::other(reason.clone())),
            Some(Ok(tls)) => Some(tls),
            None => None,
        };
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
            SyslogProtocol::Tcp | SyslogProtocol::Tls => {
                let stream = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr))
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
                stream.set_nodelay(true)?;
                let std = stream.into_std()?;
                let probe = std.try_clone()?;
                let stream = TcpStream::from_std(std)?;
                match tls {
                    None => Connection::Tcp { stream, probe },
                    Some(tls) => Connection::Tls { stream: Box::new(tls.handshake(stream).await?), probe },
                }
            }
        })
    }

    async fn send(&mut self, messages: Vec<String>) -> io::Result<()> {
        let gone = match &mut self.connection {
            Some(Connection::Tcp { probe, .. }) => closed(probe),
            Some(Connection::Tls { stream, probe }) => tls_closed(probe, stream.get_mut().1),
            Some(Connection::Udp(_)) | None => false,
        };
        if gone {
            self.connection = None;
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
            Some(Connection::Tcp { stream, .. }) => write_frames(stream, &frames(&messages)).await,
            Some(Connection::Tls { stream, .. }) => write_frames(stream, &frames(&messages)).await,
            None => Err(io::Error::new(io::ErrorKind::NotConnected, "not connected")),
        }
    }
}

impl Sink for Syslog {
    fn max_batch(&self) -> usize {
        usize::MAX
    }

    async fn deliver(&mut self, records: &[Record]) -> Result<(), Failure> {
        let messages = records
            .iter()
            .map(|r| message(r, self.facility, &self.hostname, self.format, self.sd_id.as_deref()))
            .collect();
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
    use rustls_pki_types::PrivateKeyDer;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, BufReader};

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
        let m = message(&r, 16, "site a", SyslogFormat::Json, Some("camwatch@12345"));
        let (pri, header, sd, msg) = parse(&m);
        assert_eq!(pri, 16 * 8 + 2);
        assert_eq!(header, ["1", "2024-05-01T10:00:00.000000Z", "site_a", "camwatch", "-", "alert"]);
        assert_eq!(
            sd,
            r#"[camwatch@12345 rule="a\"b\\c\]d" severity="critical" device="10.0.0.5" fingerprint="fp\"1" status="firing"]"#
        );
        assert_eq!(msg, r.line);

        r.status = Status::Resolved;
        r.rule.severity = "low".into();
        r.timestamp = "garbage".into();
        let m = message(&r, 4, "", SyslogFormat::Text, None);
        let (pri, header, sd, msg) = parse(&m);
        assert_eq!(pri, 4 * 8 + 5);
        assert_eq!(header[2], "-");
        assert_eq!(header[5], "resolved");
        assert!(header[1].ends_with('Z') && header[1].len() == 27, "{}", header[1]);
        // Without the site's enterprise number, only the registered `origin` element.
        assert_eq!(sd, format!(r#"[origin software="camwatch" swVersion="{}"]"#, env!("CARGO_PKG_VERSION")));
        let with_pen = message(&r, 4, "", SyslogFormat::Text, Some("camwatch@12345"));
        assert!(parse(&with_pen).2.ends_with(r#"status="resolved"]"#), "{with_pen}");
        assert_eq!(msg, "Camera reached the internet: 10.0.0.5 (Hikvision) → 8.8.8.8:443/tcp");

        for (sev, want) in [("high", 3), ("medium", 4), ("info", 6), ("weird", 4)] {
            r.rule.severity = sev.into();
            assert_eq!(parse(&message(&r, 0, "h", SyslogFormat::Text, None)).0, want, "{sev}");
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
        assert!(sd.starts_with(r#"[origin software="camwatch" swVersion=""#), "{sd}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(msg).unwrap(), tricky_record());

        let n = within(receiver.recv(&mut buf)).await.unwrap();
        assert!(n <= MAX_DATAGRAM && n > MAX_DATAGRAM - 4, "{n}");
        let second = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(second.contains(r#""fingerprint":"fp2""#), "the cut message is the record's JSON: {second}");
        fx.stop(tasks).await;
        assert_eq!(fx.cursor("syslog"), fx.journal_len());
    }

    /// Reads one octet-counted frame.
    async fn frame(reader: &mut (impl AsyncBufRead + Unpin)) -> String {
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

    /// A CA, and a certificate for `localhost` and 127.0.0.1 that it signed.
    struct Pki {
        ca_pem: String,
        server: Arc<rustls::ServerConfig>,
    }

    fn pki(ca_name: &str) -> Pki {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, ca_name);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        let server =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![cert.der().clone()], PrivateKeyDer::Pkcs8(key.serialize_der().into()))
                .unwrap();
        Pki { ca_pem: ca.pem(), server: Arc::new(server) }
    }

    impl Pki {
        /// The CA certificate as a PEM file in `dir`.
        fn ca_file(&self, dir: &std::path::Path, name: &str) -> PathBuf {
            let path = dir.join(name);
            std::fs::write(&path, &self.ca_pem).unwrap();
            path
        }
    }

    type ServerStream = tokio_rustls::server::TlsStream<TcpStream>;

    /// A syslog receiver over TLS on loopback: hands over each connection whose handshake
    /// succeeded, and counts those that failed.
    struct TlsReceiver {
        addr: std::net::SocketAddr,
        accepted: tokio::sync::mpsc::UnboundedReceiver<ServerStream>,
        failed: Arc<AtomicUsize>,
        task: tokio::task::JoinHandle<()>,
    }

    impl TlsReceiver {
        async fn start(config: Arc<rustls::ServerConfig>) -> Self {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            let (tx, accepted) = tokio::sync::mpsc::unbounded_channel();
            let failed = Arc::new(AtomicUsize::new(0));
            let count = failed.clone();
            let task = tokio::spawn(async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    match acceptor.accept(tcp).await {
                        Ok(stream) => drop(tx.send(stream)),
                        Err(_) => drop(count.fetch_add(1, Ordering::SeqCst)),
                    }
                }
            });
            Self { addr, accepted, failed, task }
        }

        /// The next connection that completed its handshake; fails the test after 10 s.
        async fn next(&mut self) -> BufReader<ServerStream> {
            BufReader::new(within(self.accepted.recv()).await.unwrap())
        }
    }

    impl Drop for TlsReceiver {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    fn tls_config(address: String, tls_config: TlsClientConfig) -> SinksConfig {
        let mut cfg = config(address, SyslogProtocol::Tls);
        cfg.syslog[0].tls_config = tls_config;
        cfg
    }

    /// The RFC 5424 message of a journal line, as the test sinks send it.
    fn expected(record: &serde_json::Value) -> String {
        message(&Record::parse(&record.to_string()).unwrap(), 16, "site-a", SyslogFormat::Json, None)
    }

    #[tokio::test]
    async fn tls_sends_the_tcp_frames_and_reconnects() {
        let fx = Fixture::new();
        let pki = pki("camwatch test CA");
        let mut receiver = TlsReceiver::start(pki.server.clone()).await;
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut long = record("big", "fp2", "firing");
        long["summary"] = "x".repeat(20_000).into();
        fx.append(&tricky_record());
        fx.append(&long);
        // The same journal to a TLS sink (the server name is the address's IP) and a TCP one.
        let ca = Some(pki.ca_file(fx.dir(), "ca.pem"));
        let mut cfg =
            tls_config(receiver.addr.to_string(), TlsClientConfig { ca_file: ca, ..Default::default() });
        cfg.syslog.push(SyslogConfig {
            name: "plain".into(),
            address: tcp.local_addr().unwrap().to_string(),
            protocol: SyslogProtocol::Tcp,
            ..SyslogConfig::default()
        });
        let tasks = fx.spawn(&cfg);

        let want = frames(&[expected(&tricky_record()), expected(&long)]);
        let mut over_tls = receiver.next().await;
        let mut got = vec![0u8; want.len()];
        within(over_tls.read_exact(&mut got)).await.unwrap();
        assert!(got == want, "TLS frames differ:\n{}", String::from_utf8_lossy(&got));
        let (conn, _) = within(tcp.accept()).await.unwrap();
        let mut over_tcp = vec![0u8; want.len()];
        within(BufReader::new(conn).read_exact(&mut over_tcp)).await.unwrap();
        assert!(over_tcp == got, "TCP and TLS frames differ");
        // And they are RFC 5424 with the record as MSG.
        let first = frame(&mut &got[..]).await;
        let (pri, header, sd, msg) = parse(&first);
        assert_eq!(pri, 130);
        assert_eq!(header, ["1", "2024-05-01T10:00:00.000000Z", "site-a", "camwatch", "-", "alert"]);
        assert!(sd.starts_with(r#"[origin software="camwatch" swVersion=""#), "{sd}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(msg).unwrap(), tricky_record());

        // The receiver's TLS 1.3 session tickets, unread, do not look like a closed connection:
        // the next alert comes on the same one.
        fx.until(|fx| fx.cursor("syslog") == fx.journal_len()).await;
        fx.append(&record("same", "fp3", "firing"));
        assert_eq!(frame(&mut over_tls).await, expected(&record("same", "fp3", "firing")));
        // The receiver goes away; the next alert arrives on a new connection, without a failure.
        drop(over_tls);
        fx.append(&record("after", "fp4", "resolved"));
        let mut again = receiver.next().await;
        let m = frame(&mut again).await;
        let (_, header, _, msg) = parse(&m);
        assert_eq!(header[5], "resolved");
        assert!(msg.contains("\"after\""), "{msg}");
        fx.stop(tasks).await;
        assert_eq!(fx.cursor("syslog"), fx.journal_len());
        assert_eq!(fx.deliveries("syslog", "ok"), 4);
        assert_eq!(fx.deliveries("syslog", "error"), 0);
        assert_eq!(receiver.failed.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn tls_with_a_ca_that_did_not_sign_the_receiver_fails_and_retries() {
        let fx = Fixture::new();
        let (server, other) = (pki("camwatch test CA"), pki("another CA"));
        let mut receiver = TlsReceiver::start(server.server.clone()).await;
        fx.append(&record("a", "f", "firing"));
        let ca = Some(other.ca_file(fx.dir(), "other-ca.pem"));
        let cfg =
            tls_config(receiver.addr.to_string(), TlsClientConfig { ca_file: ca, ..Default::default() });
        let failed = receiver.failed.clone();
        let tasks = fx.spawn(&cfg);
        fx.until(|fx| {
            fx.retries("syslog") >= 2
                && fx.deliveries("syslog", "error") >= 2
                && failed.load(Ordering::SeqCst) >= 2
        })
        .await;
        fx.stop(tasks).await;
        assert!(receiver.accepted.try_recv().is_err(), "a handshake succeeded");
        assert_eq!(fx.deliveries("syslog", "ok"), 0);
        assert_eq!(fx.cursor("syslog"), 0);

        // The reason names the handshake and the certificate.
        let mut sink = Syslog::try_new(&cfg.syslog[0], "site-a").unwrap();
        let r = Record::parse(&record("a", "f", "firing").to_string()).unwrap();
        match sink.deliver(&[r]).await {
            Err(Failure::Transient(reason)) => {
                assert!(reason.starts_with(&receiver.addr.to_string()), "{reason}");
                assert!(reason.contains("TLS handshake (server name 127.0.0.1) failed"), "{reason}");
                assert!(reason.contains("invalid peer certificate: UnknownIssuer"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(sink.connection.is_none());
    }

    #[tokio::test]
    async fn tls_checks_the_server_name() {
        let dir = tempfile::tempdir().unwrap();
        let pki = pki("camwatch test CA");
        let mut receiver = TlsReceiver::start(pki.server.clone()).await;
        let ca = Some(pki.ca_file(dir.path(), "ca.pem"));
        let r = Record::parse(&record("a", "f", "firing").to_string()).unwrap();
        let sink = |server_name: &str| {
            let cfg = SyslogConfig {
                address: receiver.addr.to_string(),
                protocol: SyslogProtocol::Tls,
                tls_config: TlsClientConfig {
                    ca_file: ca.clone(),
                    server_name: Some(server_name.into()),
                    ..Default::default()
                },
                ..SyslogConfig::default()
            };
            Syslog::try_new(&cfg, "site-a").unwrap()
        };
        match sink("siem.example").deliver(std::slice::from_ref(&r)).await {
            Err(Failure::Transient(reason)) => {
                assert!(reason.contains("TLS handshake (server name siem.example) failed"), "{reason}");
                assert!(reason.contains(r#"certificate not valid for name "siem.example""#), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(receiver.accepted.try_recv().is_err());
        sink("localhost").deliver(std::slice::from_ref(&r)).await.unwrap();
        let mut conn = receiver.next().await;
        assert_eq!(frame(&mut conn).await, message(&r, 16, "site-a", SyslogFormat::Json, None));
    }

    #[tokio::test]
    async fn tls_insecure_skip_verify_takes_any_certificate() {
        let fx = Fixture::new();
        let mut receiver = TlsReceiver::start(pki("camwatch test CA").server).await;
        fx.append(&tricky_record());
        // No CA file: the public roots, which did not sign the receiver's certificate.
        let insecure = TlsClientConfig {
            insecure_skip_verify: true,
            server_name: Some("siem.example".into()),
            ..Default::default()
        };
        let tasks = fx.spawn(&tls_config(receiver.addr.to_string(), insecure));
        let mut conn = receiver.next().await;
        assert_eq!(frame(&mut conn).await, expected(&tricky_record()));
        fx.stop(tasks).await;
        assert_eq!(fx.cursor("syslog"), fx.journal_len());
        assert_eq!(fx.deliveries("syslog", "error"), 0);
    }

    #[test]
    fn tls_config_only_with_protocol_tls() {
        let parse = |text: &str| serde_json::from_str::<SinksConfig>(text).unwrap();
        let with_ca = r#""tls_config":{"ca_file":"/etc/camwatch/siem-ca.pem"}"#;
        for protocol in ["udp", "tcp"] {
            let cfg =
                parse(&format!(r#"{{"syslog":[{{"address":"h:6514","protocol":"{protocol}",{with_ca}}}]}}"#));
            let err = cfg.validate().unwrap_err();
            assert!(err.contains("sinks.syslog[syslog].tls_config: only with protocol: tls"), "{err}");
        }
        let err = parse(r#"{"syslog":[{"address":"h:6514","tls_config":{"insecure_skip_verify":true}}]}"#)
            .validate()
            .unwrap_err();
        assert!(err.contains("tls_config"), "{err}");

        let cfg =
            parse(&format!(r#"{{"syslog":[{{"address":"siem.example:6514","protocol":"tls",{with_ca}}}]}}"#));
        cfg.validate().unwrap();
        let s = &cfg.syslog[0];
        assert_eq!(s.protocol, SyslogProtocol::Tls);
        assert_eq!(s.tls_config.ca_file.as_deref(), Some(std::path::Path::new("/etc/camwatch/siem-ca.pem")));
        assert_eq!(s.server_name().unwrap().to_str(), "siem.example");
        parse(r#"{"syslog":[{"address":"h:601","protocol":"tcp"}]}"#).validate().unwrap();

        // The name to check: server_name, else the host of the address, a DNS name or an IP.
        let tls = |address: &str, server_name: Option<&str>| SyslogConfig {
            address: address.into(),
            protocol: SyslogProtocol::Tls,
            tls_config: TlsClientConfig { server_name: server_name.map(Into::into), ..Default::default() },
            ..SyslogConfig::default()
        };
        let name = |cfg: SyslogConfig| cfg.server_name();
        assert!(matches!(name(tls("[::1]:6514", None)), Ok(ServerName::IpAddress(_))));
        assert!(matches!(name(tls("10.0.0.9:6514", None)), Ok(ServerName::IpAddress(_))));
        assert_eq!(name(tls("10.0.0.9:6514", Some("siem.example"))).unwrap().to_str(), "siem.example");
        let err = tls("not a host:6514", None).validate().unwrap_err();
        assert!(err.contains("sinks.syslog[syslog].address: \"not a host\" is not a DNS name"), "{err}");
        let err = tls("h:6514", Some("")).validate().unwrap_err();
        assert!(err.contains("sinks.syslog[syslog].tls_config.server_name"), "{err}");
    }

    #[test]
    fn an_unreadable_ca_file_is_an_error_at_startup() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate\n").unwrap();
        for ca in [dir.path().join("missing.pem"), garbage] {
            let cfg = SyslogConfig {
                address: "127.0.0.1:6514".into(),
                protocol: SyslogProtocol::Tls,
                tls_config: TlsClientConfig { ca_file: Some(ca.clone()), ..Default::default() },
                ..SyslogConfig::default()
            };
            let err = format!("{:#}", Syslog::try_new(&cfg, "site-a").err().unwrap());
            assert!(err.contains("sinks.syslog[syslog].tls_config.ca_file"), "{err}");
            assert!(err.contains(&ca.display().to_string()), "{err}");
        }
    }

    /// The README's `sinks:` example is a valid configuration, its syslog sink over TLS.
    #[test]
    fn readme_sinks_example_is_valid() {
        #[derive(Deserialize)]
        struct Example {
            sinks: SinksConfig,
        }
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        let section = &readme[readme.find("### Where alerts go").unwrap()..];
        let block = section.split("```yaml\n").nth(1).unwrap().split("```").next().unwrap();
        let example: Example = serde_norway::from_str(block).unwrap();
        example.sinks.validate().unwrap();
        let siem = &example.sinks.syslog[0];
        assert_eq!((siem.name.as_str(), siem.protocol), ("siem", SyslogProtocol::Tls));
        assert!(siem.address.ends_with(":6514"), "{}", siem.address);
        assert!(siem.tls_config.ca_file.is_some());
    }
}
