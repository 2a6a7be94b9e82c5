//! FTP (RFC 959; EPSV and EPRT from RFC 2428): a file named like firmware, or whose content is a
//! firmware image, moved over an FTP data connection is a transfer, hashed as it streams. The
//! control connection says which data connection will carry which file: the endpoint from the
//! last `PASV`/`EPSV` answer or `PORT`/`EPRT` command, then `STOR`/`APPE`/`STOU` (the client
//! sends the file) or `RETR` (the server does). Control and data connections share the two hosts,
//! so they meet in one worker (flows are sharded by the address pair).

use std::net::{IpAddr, Ipv4Addr};

use sha2::{Digest, Sha256};

use super::tftp::is_firmware_name;
use super::{AppFlow, Kind, IMAGE_HEAD};
use crate::model::app::{App, AppEvent, FirmwareTransfer};
use crate::model::event::FlowRecord;
use crate::model::time::Micros;
use crate::proto::firmware;

/// Data connections expected at once per worker; past it the oldest expectation goes.
pub(super) const MAX_EXPECTED: usize = 1024;
/// Longest control line read.
const MAX_LINE: usize = 1024;

/// A file announced on a control connection, waiting for its data connection.
#[derive(Debug, Clone)]
pub(super) struct Expected {
    /// The control connection's client and server (the event's source and destination).
    client: (IpAddr, u16),
    server: (IpAddr, u16),
    /// The client sends the file (`STOR`, `APPE`, `STOU`); otherwise the server does (`RETR`).
    upload: bool,
    command: &'static str,
    filename: String,
    pub(super) since: Micros,
}

/// The control connection's state: the data endpoint last announced.
#[derive(Debug, Default)]
pub(super) struct Control {
    data: Option<(IpAddr, u16)>,
}

/// A data connection carrying an announced file.
#[derive(Debug)]
pub(super) struct Data {
    expected: Expected,
    hasher: Sha256,
    size: u64,
    head: Vec<u8>,
}

impl Data {
    pub(super) fn new(expected: Expected) -> Self {
        Self { expected, hasher: Sha256::new(), size: 0, head: Vec::new() }
    }

    pub(super) fn buffered(&self) -> usize {
        self.head.len()
    }
}

/// `h1,h2,h3,h4,p1,p2` (RFC 959 `PORT` and the `227` answer) as an address and port.
fn host_port(s: &str) -> Option<(IpAddr, u16)> {
    let start = s.find(|c: char| c.is_ascii_digit())?;
    let digits: Vec<u8> = s[start..]
        .split(',')
        .take(6)
        .map(|n| n.trim().trim_end_matches(|c: char| !c.is_ascii_digit()).parse::<u8>())
        .collect::<Result<_, _>>()
        .ok()?;
    let [a, b, c, d, p1, p2] = digits[..] else { return None };
    Some((IpAddr::V4(Ipv4Addr::new(a, b, c, d)), u16::from_be_bytes([p1, p2])))
}

/// The port of an `EPSV` answer, `(|||port|)` (RFC 2428: any delimiter character).
fn epsv_port(s: &str) -> Option<u16> {
    let inner = &s[s.find('(')? + 1..s.rfind(')')?];
    let d = inner.chars().next()?;
    inner.split(d).nth(3)?.parse().ok()
}

/// `EPRT |1|132.235.1.2|6275|` as an address and port.
fn eprt(arg: &str) -> Option<(IpAddr, u16)> {
    let d = arg.chars().next()?;
    let mut parts = arg.split(d).skip(2);
    let ip = parts.next()?.parse().ok()?;
    let port = parts.next()?.parse().ok()?;
    Some((ip, port))
}

/// Reads the complete control lines in `buf` (one direction). Returns the files announced.
pub(super) fn control(
    f: &mut AppFlow,
    rec: &FlowRecord,
    to_server: bool,
    ts: Micros,
) -> Vec<((IpAddr, u16), Expected)> {
    let mut out = Vec::new();
    let dir = if to_server { &mut f.client } else { &mut f.server };
    let ctl = f.ftp.get_or_insert_with(Box::default);
    while let Some(end) = dir.buf.iter().position(|b| *b == b'\n') {
        let line: Vec<u8> = dir.buf.drain(..=end).collect();
        let line = String::from_utf8_lossy(&line);
        let line = line.trim_end();
        if to_server {
            let (cmd, arg) = line.split_once(' ').unwrap_or((line, ""));
            let cmd = cmd.to_ascii_uppercase();
            match cmd.as_str() {
                // The rest of the session is encrypted (RFC 4217).
                "AUTH" => {
                    f.kind = Kind::Ignore;
                    return out;
                }
                "PORT" => ctl.data = host_port(arg).map(|(_, port)| (rec.src_ip, port)),
                "EPRT" => ctl.data = eprt(arg).map(|(_, port)| (rec.src_ip, port)),
                "STOR" | "APPE" | "STOU" | "RETR" => {
                    let Some(endpoint) = ctl.data.take() else { continue };
                    let command = match cmd.as_str() {
                        "STOR" => "STOR",
                        "APPE" => "APPE",
                        "STOU" => "STOU",
                        _ => "RETR",
                    };
                    out.push((
                        endpoint,
                        Expected {
                            client: (rec.src_ip, rec.src_port),
                            server: (rec.dest_ip, rec.dest_port),
                            upload: command != "RETR",
                            command,
                            filename: arg.trim().chars().take(256).collect(),
                            since: ts,
                        },
                    ));
                }
                _ => {}
            }
        } else if let Some(rest) = line.strip_prefix("227") {
            // The server's own address: a NATed server may announce another, and a hostile one
            // must not point the expectation at a third host.
            ctl.data = host_port(rest).map(|(_, port)| (rec.dest_ip, port));
        } else if line.starts_with("229") {
            ctl.data = epsv_port(line).map(|port| (rec.dest_ip, port));
        }
    }
    if dir.buf.len() > MAX_LINE {
        dir.buf.clear();
    }
    out
}

/// Bytes of a data connection: the sender's are hashed.
pub(super) fn data(f: &mut AppFlow, rec: &FlowRecord, to_server: bool, fresh: &[u8]) {
    let Some(d) = &mut f.ftp_data else { return };
    let from = if to_server { rec.src_ip } else { rec.dest_ip };
    let sender = if d.expected.upload { d.expected.client.0 } else { d.expected.server.0 };
    if from != sender {
        return;
    }
    d.hasher.update(fresh);
    d.size += fresh.len() as u64;
    let room = IMAGE_HEAD.saturating_sub(d.head.len());
    d.head.extend_from_slice(&fresh[..fresh.len().min(room)]);
}

/// The data connection ended: a file that is firmware by its name or its content is reported.
pub(super) fn end(f: &mut AppFlow, rec: &FlowRecord) -> Option<AppEvent> {
    let d = f.ftp_data.take()?;
    let format = firmware::image_format(&d.head);
    let generic = matches!(format, Some("zip" | "gzip" | "xz" | "tar" | "elf" | "script"));
    // Cameras upload their snapshots and clips over FTP: a file is reported only when its name
    // or a firmware format says it is firmware.
    if !(is_firmware_name(&d.expected.filename) || (format.is_some() && !generic)) {
        return None;
    }
    let e = d.expected;
    let transfer = FirmwareTransfer {
        direction: if e.upload { "upload" } else { "download" },
        method: e.command.into(),
        url: e.filename.clone(),
        hostname: None,
        size: d.size,
        expected_size: None,
        sha256: d.hasher.finalize().iter().map(|b| format!("{b:02x}")).collect(),
        completed: rec.reason == crate::model::event::FlowEndReason::Closed,
        digicap: firmware::parse_digicap_header(&d.head).ok(),
        format,
        image: firmware::is_image(format, d.size),
        filename_version: firmware::version_from_filename(&e.filename),
        filename: Some(e.filename),
        by_content: false,
    };
    Some(AppEvent {
        ts: rec.end,
        flow_id: rec.flow_id,
        community_id: rec.community_id,
        src_ip: e.client.0,
        src_port: e.client.1,
        dest_ip: e.server.0,
        dest_port: e.server.1,
        proto: rec.proto,
        app: App::FirmwareTransfer(Box::new(transfer)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_endpoints_from_the_rfcs_examples() {
        assert_eq!(
            host_port("Entering Passive Mode (192,168,10,60,195,80)."),
            Some(([192, 168, 10, 60].into(), 50_000))
        );
        assert_eq!(host_port("10,0,0,2,4,1"), Some(([10, 0, 0, 2].into(), 1025)));
        assert_eq!(host_port("10,0,0,300,4,1"), None);
        assert_eq!(host_port("10,0,0,2,4"), None);
        assert_eq!(epsv_port("229 Entering Extended Passive Mode (|||6446|)"), Some(6446));
        assert_eq!(epsv_port("229 Entering Extended Passive Mode (!!!6446!)"), Some(6446));
        assert_eq!(epsv_port("229 nothing"), None);
        assert_eq!(eprt("|1|132.235.1.2|6275|"), Some(([132, 235, 1, 2].into(), 6275)));
        assert_eq!(eprt("|2|1080::8:800:200C:417A|5282|").map(|(_, p)| p), Some(5282));
        assert_eq!(eprt("|1|x|1|"), None);
    }
}
