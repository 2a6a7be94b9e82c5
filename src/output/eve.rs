//! JSON-lines files: the alert journal (written through and fdatasync'd per alert, so neither a
//! crash nor a power cut after an alert was delivered loses it) and the EVE-shaped event log
//! (buffered, flushed once a second and at exit). Both are created mode 0640: readable by a
//! log shipper's group, by nobody else.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{json, Value};

use crate::model::event::{format_mac, proto_name, DeviceEvent, FlowRecord};
use crate::model::time::eve_time;

/// Bumped by SIGHUP: every [`JsonLines`] reopens its path at its next write or flush.
static REOPEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Asks every output file to reopen its path (SIGHUP, after logrotate moved the files).
pub fn request_reopen() {
    REOPEN.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

/// Size-based rotation inside camwatch, for hosts without logrotate: past `max_bytes` the file
/// becomes `<name>.1` (the older ones `<name>.2` … `<name>.<keep>`, the oldest deleted) and a
/// new one is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    pub max_bytes: u64,
    #[serde(default = "default_keep")]
    pub keep: usize,
}

fn default_keep() -> usize {
    5
}

/// How often a writer looks whether its path still names its file (moved underneath it).
const CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// An append-only JSON-lines file that follows its path: after SIGHUP ([`request_reopen`]), or
/// once it sees the path name another file or none (logrotate moved it), it reopens the path,
/// so no record goes to a moved file for longer than a second.
pub struct JsonLines {
    path: PathBuf,
    out: BufWriter<File>,
    /// (device, inode) of the open file.
    id: (u64, u64),
    generation: u64,
    last_check: std::time::Instant,
    size: u64,
    rotation: Option<Rotation>,
    /// Times the file was reopened or rotated.
    pub reopened: u64,
    /// The line being serialized, reused.
    line: Vec<u8>,
    /// Times following the path or rotating failed; the lines went on into the open file.
    pub failed_moves: u64,
}

fn open_append(path: &Path) -> std::io::Result<(File, (u64, u64), u64)> {
    use std::os::unix::fs::MetadataExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = OpenOptions::new().create(true).append(true).read(true).mode(0o640).open(path)?;
    // A crash mid-line leaves a fragment: end it, so the next record starts a line of its own.
    if ends_mid_line(&mut f)? {
        f.write_all(b"\n")?;
    }
    let m = f.metadata()?;
    Ok((f, (m.dev(), m.ino()), m.len()))
}

impl JsonLines {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let (f, id, size) = open_append(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(64 << 10, f),
            id,
            generation: REOPEN.load(std::sync::atomic::Ordering::SeqCst),
            last_check: std::time::Instant::now(),
            size,
            rotation: None,
            reopened: 0,
            line: Vec::with_capacity(1024),
            failed_moves: 0,
        })
    }

    /// Rotates by size (see [`Rotation`]).
    pub fn with_rotation(mut self, rotation: Option<Rotation>) -> Self {
        self.rotation = rotation.filter(|r| r.max_bytes > 0);
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn reopen(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        let (f, id, size) = open_append(&self.path)?;
        self.out = BufWriter::with_capacity(64 << 10, f);
        self.id = id;
        self.size = size;
        self.reopened += 1;
        Ok(())
    }

    /// Reopens the path when SIGHUP asked for it or the path no longer names the open file.
    fn follow_path(&mut self) -> std::io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        self.last_check = std::time::Instant::now();
        let generation = REOPEN.load(std::sync::atomic::Ordering::SeqCst);
        let moved = match std::fs::metadata(&self.path) {
            Ok(m) => (m.dev(), m.ino()) != self.id,
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        };
        if generation != self.generation || moved {
            self.generation = generation;
            self.reopen()?;
        }
        Ok(())
    }

    /// `<name>.1` … `<name>.<keep>`: shifts the kept files and starts a new one.
    fn rotate(&mut self, keep: usize) -> std::io::Result<()> {
        self.out.flush()?;
        let name = |i: usize| {
            let mut n = self.path.clone().into_os_string();
            n.push(format!(".{i}"));
            PathBuf::from(n)
        };
        // Moved or removed under us: start the file again rather than shift the kept ones
        // for a file that is not there (each line would delete one more).
        if !self.path.exists() {
            return self.reopen();
        }
        let keep = keep.max(1);
        let _ = std::fs::remove_file(name(keep));
        for i in (1..keep).rev() {
            match std::fs::rename(name(i), name(i + 1)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        std::fs::rename(&self.path, name(1))?;
        self.reopen()
    }

    pub fn write<T: Serialize>(&mut self, record: &T) -> std::io::Result<()> {
        self.write_with(|line| serde_json::to_writer(line, record).map_err(std::io::Error::from))
    }

    /// Writes the line `render` puts in the buffer it is given (empty; the newline is added).
    pub fn write_with(
        &mut self,
        render: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        // A path that cannot be followed or rotated (a directory made read-only, a file
        // recreated by another owner) does not cost the line: it goes into the file still
        // open, and the move is tried again at the next check.
        if self.last_check.elapsed() >= CHECK_EVERY
            || self.generation != REOPEN.load(std::sync::atomic::Ordering::Relaxed)
        {
            if let Err(e) = self.follow_path() {
                self.failed_moves += 1;
                tracing::warn!(path = %self.path.display(), "Cannot reopen the moved file: {e}; writing on to the open one.");
            }
        }
        if let Some(r) = self.rotation {
            if self.size >= r.max_bytes {
                if let Err(e) = self.rotate(r.keep) {
                    self.failed_moves += 1;
                    tracing::warn!(path = %self.path.display(), "Cannot rotate: {e}; writing on to the open file.");
                }
            }
        }
        // Serialized into a line buffer kept for the next one, then written whole.
        self.line.clear();
        render(&mut self.line)?;
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        self.size += self.line.len() as u64;
        Ok(())
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        self.follow_path()
    }

    /// Flushes and makes what was written durable (fdatasync): the alert journal does this per
    /// record before any sink delivers it.
    pub fn sync(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }
}

fn ends_mid_line(f: &mut File) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    if f.metadata()?.len() == 0 {
        return Ok(false);
    }
    f.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    f.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

fn tcp_flags_hex(f: u8) -> String {
    format!("{f:02x}")
}

/// A flow record as a Suricata EVE `flow` event (see [`EveFlow`]).
pub fn eve_flow(f: &FlowRecord, sensor: &str) -> Value {
    serde_json::to_value(EveFlow::of(f, sensor, None)).unwrap_or(Value::Null)
}

/// A Suricata EVE `flow` event, serialized straight from the record: a flood writes one per
/// flow, so no JSON tree is built on the way (keys as Suricata orders them).
#[derive(Debug, Serialize)]
pub struct EveFlow<'a> {
    timestamp: String,
    flow_id: u64,
    event_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    vlan: Option<[u16; 1]>,
    src_ip: std::net::IpAddr,
    src_port: u16,
    dest_ip: std::net::IpAddr,
    dest_port: u16,
    proto: String,
    community_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_name: Option<&'a str>,
    /// Decapsulated: Suricata's `tunnel` object (the outer protocol), and which tunnel.
    #[serde(skip_serializing_if = "Option::is_none")]
    tunnel: Option<EveTunnel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encapsulation: Option<&'static str>,
    flow: EveFlowCounts,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp: Option<EveTcp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ether: Option<EveEther>,
    camwatch: EveFlowExtra,
    host: &'a str,
}

#[derive(Debug, Serialize)]
struct EveTunnel {
    proto: &'static str,
}

#[derive(Debug, Serialize)]
struct EveFlowCounts {
    pkts_toserver: u64,
    pkts_toclient: u64,
    bytes_toserver: u64,
    bytes_toclient: u64,
    start: String,
    end: String,
    age: u64,
    reason: &'static str,
}

#[derive(Debug, Serialize)]
struct EveTcp {
    tcp_flags: String,
    tcp_flags_ts: String,
    tcp_flags_tc: String,
}

#[derive(Debug, Serialize)]
struct EveEther {
    #[serde(skip_serializing_if = "Option::is_none")]
    src_mac: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_mac: Option<String>,
}

#[derive(Debug, Serialize)]
struct EveFlowExtra {
    flow: EveFlowReason,
}

#[derive(Debug, Serialize)]
struct EveFlowReason {
    reason: &'static str,
}

impl EveFlow<'_> {
    /// The line `serde_json` writes for this event, byte for byte (a test holds the two equal
    /// on generated sites and hostile names), written straight into `out`: the keys are
    /// constants and the numbers and addresses need no escaping, while every string value still
    /// goes through serde_json's escaping. The derived serialization spent a third of a flood's
    /// CPU on these lines (a key lookup, an escape scan and a call per field).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        use std::io::Write as _;
        fn s(out: &mut Vec<u8>, v: &str) {
            // Writing a string into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, v);
        }
        out.extend_from_slice(b"{\"timestamp\":");
        s(out, &self.timestamp);
        let _ = write!(out, ",\"flow_id\":{}", self.flow_id);
        out.extend_from_slice(b",\"event_type\":");
        s(out, self.event_type);
        if let Some([v]) = self.vlan {
            let _ = write!(out, ",\"vlan\":[{v}]");
        }
        let _ = write!(
            out,
            ",\"src_ip\":\"{}\",\"src_port\":{},\"dest_ip\":\"{}\",\"dest_port\":{}",
            self.src_ip, self.src_port, self.dest_ip, self.dest_port
        );
        out.extend_from_slice(b",\"proto\":");
        s(out, &self.proto);
        out.extend_from_slice(b",\"community_id\":");
        s(out, self.community_id);
        if let Some(name) = self.dest_name {
            out.extend_from_slice(b",\"dest_name\":");
            s(out, name);
        }
        if let Some(t) = &self.tunnel {
            out.extend_from_slice(b",\"tunnel\":{\"proto\":");
            s(out, t.proto);
            out.push(b'}');
        }
        if let Some(e) = self.encapsulation {
            out.extend_from_slice(b",\"encapsulation\":");
            s(out, e);
        }
        let c = &self.flow;
        let _ = write!(
            out,
            ",\"flow\":{{\"pkts_toserver\":{},\"pkts_toclient\":{},\"bytes_toserver\":{},\"bytes_toclient\":{},\"start\":",
            c.pkts_toserver, c.pkts_toclient, c.bytes_toserver, c.bytes_toclient
        );
        s(out, &c.start);
        out.extend_from_slice(b",\"end\":");
        s(out, &c.end);
        let _ = write!(out, ",\"age\":{},\"reason\":", c.age);
        s(out, c.reason);
        out.push(b'}');
        if let Some(t) = &self.tcp {
            out.extend_from_slice(b",\"tcp\":{\"tcp_flags\":");
            s(out, &t.tcp_flags);
            out.extend_from_slice(b",\"tcp_flags_ts\":");
            s(out, &t.tcp_flags_ts);
            out.extend_from_slice(b",\"tcp_flags_tc\":");
            s(out, &t.tcp_flags_tc);
            out.push(b'}');
        }
        if let Some(e) = &self.ether {
            out.extend_from_slice(b",\"ether\":{");
            if let Some(m) = &e.src_mac {
                out.extend_from_slice(b"\"src_mac\":");
                s(out, m);
            }
            if let Some(m) = &e.dest_mac {
                if e.src_mac.is_some() {
                    out.push(b',');
                }
                out.extend_from_slice(b"\"dest_mac\":");
                s(out, m);
            }
            out.push(b'}');
        }
        out.extend_from_slice(b",\"camwatch\":{\"flow\":{\"reason\":");
        s(out, self.camwatch.flow.reason);
        out.extend_from_slice(b"}},\"host\":");
        s(out, self.host);
        out.push(b'}');
    }
}

impl<'a> EveFlow<'a> {
    /// The event of `f`; `dest_name` is the name the responder was reached by, when known.
    pub fn of(f: &'a FlowRecord, sensor: &'a str, dest_name: Option<&'a str>) -> Self {
        let ether = (f.src_mac.is_some() || f.dest_mac.is_some())
            .then(|| EveEther { src_mac: f.src_mac.map(format_mac), dest_mac: f.dest_mac.map(format_mac) });
        Self {
            timestamp: eve_time(f.start),
            flow_id: f.flow_id,
            event_type: "flow",
            vlan: f.vlan.map(|v| [v]),
            src_ip: f.src_ip,
            src_port: f.src_port,
            dest_ip: f.dest_ip,
            dest_port: f.dest_port,
            proto: proto_name(f.proto),
            community_id: &f.community_id,
            dest_name,
            tunnel: f.tunnel.map(|t| EveTunnel { proto: t.outer_proto() }),
            encapsulation: f.tunnel.map(|t| t.as_str()),
            flow: EveFlowCounts {
                pkts_toserver: f.pkts_toserver,
                pkts_toclient: f.pkts_toclient,
                bytes_toserver: f.bytes_toserver,
                bytes_toclient: f.bytes_toclient,
                start: eve_time(f.start),
                end: eve_time(f.end),
                age: f.end.saturating_sub(f.start) / 1_000_000,
                reason: f.reason.eve(),
            },
            tcp: (f.proto == crate::model::packet::PROTO_TCP).then(|| EveTcp {
                tcp_flags: tcp_flags_hex(f.tcp_flags_ts | f.tcp_flags_tc),
                tcp_flags_ts: tcp_flags_hex(f.tcp_flags_ts),
                tcp_flags_tc: tcp_flags_hex(f.tcp_flags_tc),
            }),
            ether,
            camwatch: EveFlowExtra { flow: EveFlowReason { reason: f.reason.as_str() } },
            host: sensor,
        }
    }
}

/// A device inventory change as camwatch's own `device` event.
pub fn eve_device(d: &DeviceEvent, sensor: &str) -> Value {
    serde_json::to_value(EveDevice::of(d, sensor)).unwrap_or(Value::Null)
}

/// camwatch's `device` event, serialized straight from the record (a flood of new addresses
/// writes one per address).
#[derive(Debug, Serialize)]
pub struct EveDevice<'a> {
    timestamp: String,
    event_type: &'static str,
    src_ip: std::net::IpAddr,
    device: EveDeviceBody<'a>,
    host: &'a str,
}

#[derive(Debug, Serialize)]
struct EveDeviceBody<'a> {
    event: &'static str,
    ip: std::net::IpAddr,
    mac: Option<String>,
    vendor: Option<&'a str>,
    organization: Option<&'a str>,
    change: Option<&'a crate::model::identity::Change>,
    previous_ip: Option<std::net::IpAddr>,
}

impl<'a> EveDevice<'a> {
    pub fn of(d: &'a DeviceEvent, sensor: &'a str) -> Self {
        Self {
            timestamp: eve_time(d.ts),
            event_type: "device",
            src_ip: d.ip,
            device: EveDeviceBody {
                event: d.kind.as_str(),
                ip: d.ip,
                mac: d.mac.map(format_mac),
                vendor: d.vendor.as_deref(),
                organization: d.organization.as_deref(),
                change: d.change.as_ref(),
                previous_ip: d.previous_ip,
            },
            host: sensor,
        }
    }
}

fn header(
    ts: crate::model::time::Micros,
    event_type: &str,
    e: &crate::model::app::AppEvent,
    sensor: &str,
) -> serde_json::Map<String, Value> {
    let v = json!({
        "timestamp": eve_time(ts),
        "flow_id": e.flow_id,
        "event_type": event_type,
        "src_ip": e.src_ip,
        "src_port": e.src_port,
        "dest_ip": e.dest_ip,
        "dest_port": e.dest_port,
        "proto": proto_name(e.proto),
        "community_id": e.community_id,
        "host": sensor,
    });
    match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// DNS in Suricata 7's EVE version 2 shape: a query as `type: query` with its `rrname` and
/// `rrtype`; a response as `type: answer` with the flags, `rcode`, `answers` and `grouped`
/// (SRV records as objects). What Suricata 7 does not log (further questions, the truncation
/// flag, anomalies) is under `camwatch.dns`.
fn eve_dns(m: &crate::proto::dns::DnsMessage) -> (Value, Option<Value>) {
    let first = m.queries.first();
    let mut v = serde_json::Map::new();
    let mut put = |k: &str, val: Value| {
        v.insert(k.to_string(), val);
    };
    if m.response {
        put("version", json!(2));
        put("type", json!("answer"));
    } else {
        put("version", json!(2));
        put("type", json!("query"));
        put("tx_id", json!(0));
    }
    put("id", json!(m.id));
    if let Some(q) = first {
        put("rrname", json!(q.rrname));
        put("rrtype", json!(q.rrtype));
    }
    if m.response {
        put("flags", json!(m.flags));
        put("qr", json!(true));
        if m.aa {
            put("aa", json!(true));
        }
        put("rd", json!(m.rd));
        put("ra", json!(m.ra));
        put("rcode", json!(m.rcode));
        let mut grouped = serde_json::Map::new();
        let answers: Vec<Value> = m
            .answers
            .iter()
            .map(|a| {
                let srv = (a.rrtype == "SRV").then(|| srv(&a.rdata)).flatten();
                let entry = grouped.entry(a.rrtype.clone()).or_insert_with(|| json!([]));
                if let Some(list) = entry.as_array_mut() {
                    list.push(srv.clone().unwrap_or_else(|| json!(a.rdata)));
                }
                match srv {
                    Some(s) => json!({"rrname": a.rrname, "rrtype": a.rrtype, "ttl": a.ttl, "srv": s}),
                    None => json!({"rrname": a.rrname, "rrtype": a.rrtype, "ttl": a.ttl, "rdata": a.rdata}),
                }
            })
            .collect();
        if !answers.is_empty() {
            put("answers", json!(answers));
            // Suricata 7 groups these types only; the others stay in `answers`.
            grouped.retain(|t, _| GROUPED_TYPES.contains(&t.as_str()));
            if !grouped.is_empty() {
                put("grouped", Value::Object(grouped));
            }
        }
        if !m.authorities.is_empty() {
            let auth: Vec<Value> = m
                .authorities
                .iter()
                .map(|a| json!({"rrname": a.rrname, "rrtype": a.rrtype, "ttl": a.ttl}))
                .collect();
            put("authorities", json!(auth));
        }
    }
    let mut ext = serde_json::Map::new();
    if m.queries.len() > 1 {
        ext.insert("queries".into(), json!(m.queries));
    }
    if m.tc {
        ext.insert("tc".into(), json!(true));
    }
    if !m.anomalies.is_empty() {
        ext.insert("anomalies".into(), json!(m.anomalies));
    }
    (Value::Object(v), (!ext.is_empty()).then_some(Value::Object(ext)))
}

/// Record types Suricata 7 lists in `dns.grouped`.
const GROUPED_TYPES: &[&str] = &["A", "AAAA", "CNAME", "MX", "NULL", "PTR", "SRV", "TXT"];

/// An SRV record's `priority weight port target` as Suricata's object.
fn srv(rdata: &str) -> Option<Value> {
    let mut p = rdata.split_whitespace();
    let (priority, weight, port) =
        (p.next()?.parse::<u16>().ok()?, p.next()?.parse::<u16>().ok()?, p.next()?.parse::<u16>().ok()?);
    let name = p.next()?;
    Some(json!({"priority": priority, "weight": weight, "port": port, "name": name}))
}

/// An application message as an EVE event: `dns`, `tls`, `http`, `dhcp`, `rtsp`, `ntp`,
/// `discovery` (SSDP, SADP, DHIP, WS-Discovery, with `discovery.protocol`) or `firmware`
/// (`firmware.event: transfer`).
pub fn eve_app(e: &crate::model::app::AppEvent, sensor: &str) -> Value {
    use crate::model::app::App;
    let (ty, key, body) = match &e.app {
        App::Dns(m) => {
            let (v, ext) = eve_dns(m);
            let mut m = header(e.ts, "dns", e, sensor);
            m.insert("dns".into(), v);
            if let Some(ext) = ext {
                m.insert("camwatch".into(), json!({ "dns": ext }));
            }
            return suricata_shape(Value::Object(m));
        }
        App::Tls(h) => ("tls", "tls", json!(h)),
        App::Http(t) => {
            // Suricata's names: `http_content_type` is the response's, `length` its body's, and
            // headers are `{name, value}` lists; the rest is camwatch's (`camwatch.http`).
            let req = &t.request;
            let mut v = json!({
                "url": req.url,
                "http_method": req.http_method,
                "length": t.response.as_ref().and_then(|r| r.content_length).unwrap_or(0),
            });
            let mut ext = serde_json::Map::new();
            if let Some(o) = v.as_object_mut() {
                let mut opt = |k: &str, val: Option<Value>| {
                    if let Some(val) = val {
                        o.insert(k.into(), val);
                    }
                };
                opt("hostname", req.hostname.as_ref().map(|h| json!(h)));
                opt("http_port", req.http_port.map(|p| json!(p)));
                opt("http_user_agent", req.http_user_agent.as_ref().map(|u| json!(u)));
                opt("http_refer", req.http_refer.as_ref().map(|u| json!(u)));
                opt("protocol", (!req.protocol.is_empty()).then(|| json!(req.protocol)));
                opt("status", t.response.as_ref().map(|r| json!(r.status)));
                opt(
                    "http_content_type",
                    t.response.as_ref().and_then(|r| r.http_content_type.as_ref()).map(|c| json!(c)),
                );
                let headers: Vec<Value> =
                    req.headers.iter().map(|(n, v)| json!({"name": n, "value": v})).collect();
                opt("request_headers", (!headers.is_empty()).then(|| json!(headers)));
            }
            let mut x = |k: &str, val: Option<Value>| {
                if let Some(val) = val {
                    ext.insert(k.into(), val);
                }
            };
            x("request_content_type", req.http_content_type.as_ref().map(|c| json!(c)));
            x("request_content_length", req.content_length.map(|l| json!(l)));
            x("chunked", req.chunked.then_some(Value::Bool(true)));
            x("authorization_scheme", req.authorization_scheme.as_ref().map(|a| json!(a)));
            x("anomalies", (!req.anomalies.is_empty()).then(|| json!(req.anomalies)));
            if let Some(r) = &t.response {
                x("server", r.server.as_ref().map(|s| json!(s)));
                x("www_authenticate_realm", r.www_authenticate_realm.as_ref().map(|s| json!(s)));
                x("response_anomalies", (!r.anomalies.is_empty()).then(|| json!(r.anomalies)));
            }
            x("identity", t.identity.as_ref().map(|i| json!(i)));
            let mut m = header(e.ts, "http", e, sensor);
            m.insert("http".into(), v);
            if !ext.is_empty() {
                m.insert("camwatch".into(), json!({ "http": ext }));
            }
            return suricata_shape(Value::Object(m));
        }
        App::Dhcp(m) => ("dhcp", "dhcp", json!(m)),
        App::Ntp(m) => ("ntp", "ntp", json!(m)),
        App::Baichuan(m) => ("baichuan", "baichuan", json!(m)),
        App::Rtsp(m) => ("rtsp", "rtsp", json!(m)),
        App::Ssdp(m) => ("discovery", "discovery", json!({"protocol": "ssdp", "ssdp": m})),
        App::Sadp(m) => ("discovery", "discovery", json!({"protocol": "sadp", "sadp": m})),
        App::SadpL2(m) => ("discovery", "discovery", json!({"protocol": "sadp_l2", "sadp_l2": m})),
        App::Dhip(m) => ("discovery", "discovery", json!({"protocol": "dhip", "dhip": m})),
        App::Wsd(m) => ("discovery", "discovery", json!({"protocol": "wsd", "wsd": m})),
        App::FirmwareTransfer(t) => {
            let mut v = json!(t);
            if let Some(o) = v.as_object_mut() {
                o.insert("event".into(), json!("transfer"));
            }
            ("firmware", "firmware", v)
        }
    };
    let mut m = header(e.ts, ty, e, sensor);
    m.insert(key.into(), body);
    suricata_shape(Value::Object(m))
}

/// The fields Suricata 7's EVE schema allows in the objects of the event types camwatch shares
/// with it (`tests/data/reference/suricata-7.0-eve-schema.json`); anything else camwatch knows
/// goes under `camwatch.<object>`, so a pipeline built for Suricata reads these events
/// unchanged and camwatch's extras stay in one extension key.
const SURICATA_FIELDS: &[(&str, &[&str])] = &[
    (
        "tls",
        &[
            "sni",
            "version",
            "ja3",
            "ja3s",
            "ja4",
            "subject",
            "issuerdn",
            "serial",
            "fingerprint",
            "notbefore",
            "notafter",
            "session_resumed",
            "certificate",
            "chain",
        ],
    ),
    (
        "dhcp",
        &[
            "type",
            "id",
            "client_mac",
            "assigned_ip",
            "client_ip",
            "relay_ip",
            "next_server_ip",
            "dhcp_type",
            "client_id",
            "hostname",
            "params",
            "lease_time",
            "renewal_time",
            "rebinding_time",
            "subnet_mask",
            "routers",
            "dns_servers",
            "vendor_class_identifier",
            "requested_ip",
        ],
    ),
];

/// Suricata's names of the DHCP parameters it logs (`rust/src/dhcp/logger.rs`); others are left
/// out of `dhcp.params` and kept by number in `camwatch.dhcp.params`.
fn dhcp_param_name(code: u64) -> Option<&'static str> {
    Some(match code {
        1 => "subnet_mask",
        3 => "router",
        6 => "dns_server",
        15 => "domain",
        35 => "arp_timeout",
        42 => "ntp_server",
        66 => "tftp_server_name",
        150 => "tftp_server_ip",
        _ => return None,
    })
}

/// Moves what Suricata 7 does not define out of a shared event type's object into
/// `camwatch.<object>`, and writes DHCP parameters and TLS versions as Suricata does.
pub fn suricata_shape(mut v: Value) -> Value {
    let Some(top) = v.as_object_mut() else { return v };
    let Some(ty) = top.get("event_type").and_then(Value::as_str).map(str::to_string) else { return v };
    let Some((_, allowed)) = SURICATA_FIELDS.iter().find(|(t, _)| *t == ty) else { return v };
    let mut ext = serde_json::Map::new();
    if let Some(Value::Object(obj)) = top.get_mut(&ty) {
        let extra: Vec<String> = obj.keys().filter(|k| !allowed.contains(&k.as_str())).cloned().collect();
        for k in extra {
            if let Some(val) = obj.remove(&k) {
                ext.insert(k, val);
            }
        }
        if ty == "dhcp" {
            if let Some(Value::Array(codes)) = obj.get("params").cloned() {
                let names: Vec<Value> = codes
                    .iter()
                    .filter_map(Value::as_u64)
                    .filter_map(dhcp_param_name)
                    .map(|n| json!(n))
                    .collect();
                ext.insert("params".into(), Value::Array(codes));
                obj.insert("params".into(), Value::Array(names));
            }
        }
    }
    if !ext.is_empty() {
        let cw = top.entry("camwatch").or_insert_with(|| json!({}));
        if let Some(cw) = cw.as_object_mut() {
            cw.insert(ty, Value::Object(ext));
        }
    }
    v
}

/// Suricata's alert severity: 1 (high) to 3 (low).
fn suricata_severity(severity: &str) -> u8 {
    match severity {
        "critical" | "high" => 1,
        "medium" => 2,
        _ => 3,
    }
}

/// A stable signature id for a rule id (FNV-1a, in 9,000,000-9,899,999: clear of Suricata's,
/// ET's and local ranges), so SIEM searches on `alert.signature_id` work across sensors.
pub fn signature_id(rule_id: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in rule_id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    9_000_000 + h % 900_000
}

/// A firing alert as a Suricata `alert` event: `alert.signature` (the rule's name),
/// `signature_id`, `severity` 1-3, `category`, `metadata` (lists of strings, as Suricata's), and
/// camwatch's own record beside it under `camwatch.alert`.
pub fn eve_alert(a: &crate::alert::Alert, ts: crate::model::time::Micros, sensor: &str) -> Value {
    let mut metadata = serde_json::Map::new();
    metadata.insert("camwatch_rule".into(), json!([a.rule.id]));
    metadata.insert("severity".into(), json!([a.rule.severity]));
    if !a.rule.references.is_empty() {
        metadata.insert("references".into(), json!(a.rule.references));
    }
    if !a.key.is_empty() {
        metadata.insert("key".into(), json!([a.key]));
    }
    let mut v = json!({
        "timestamp": eve_time(ts),
        "flow_id": a.flow_id,
        "event_type": "alert",
        "src_ip": a.src_ip,
        "src_port": a.src_port,
        "dest_ip": a.dest_ip,
        "dest_port": a.dest_port,
        "proto": a.proto,
        "community_id": a.community_id,
        "alert": {
            "action": "allowed",
            "gid": 1,
            "signature_id": signature_id(&a.rule.id),
            "rev": 1,
            "signature": a.rule.name,
            "category": a.category,
            "severity": suricata_severity(&a.rule.severity),
            "metadata": metadata,
        },
        "host": sensor,
        "camwatch": { "alert": a },
    });
    if let (Some(o), Some(name)) = (v.as_object_mut(), &a.dest_name) {
        o.insert("dest_name".into(), json!(name));
    }
    v
}

/// A firmware change on a device as camwatch's `firmware` event.
pub fn eve_firmware(f: &crate::model::event::FirmwareEvent, sensor: &str) -> Value {
    json!({
        "timestamp": eve_time(f.ts),
        "event_type": "firmware",
        "src_ip": f.ip,
        "firmware": {
            "event": f.change.kind.as_str(),
            "device": f.ip,
            "version": f.change.version,
            "previous": f.change.previous,
            "source": f.change.source.as_str(),
        },
        "host": sensor,
    })
}

/// A pair's beacon score (scores as fractions, times in seconds).
pub fn eve_beacon(b: &crate::analysis::beacon::BeaconScore, f: &FlowRecord, sensor: &str) -> Value {
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    json!({
        "timestamp": eve_time(f.end),
        "event_type": "beacon",
        "flow_id": f.flow_id,
        "community_id": f.community_id,
        "src_ip": b.device,
        "dest_ip": b.dest,
        "dest_port": f.dest_port,
        "proto": proto_name(f.proto),
        "beacon": {
            "score": round(b.score),
            "ts_score": round(b.ts_score),
            "ds_score": round(b.ds_score),
            "connections": b.connections,
            "interval": round(b.interval),
            "duration": round(b.duration),
            "hours": b.hours,
            "confidence": b.confidence(),
            "ts_skew": round(b.ts_skew),
            "ts_madm": round(b.ts_madm),
            "ds_skew": round(b.ds_skew),
            "ds_madm": round(b.ds_madm),
            "ds_smallness": round(b.ds_smallness),
        },
        "host": sensor,
    })
}

#[cfg(test)]
mod rotation_tests {
    use super::*;

    fn lines(p: &Path) -> Vec<String> {
        std::fs::read_to_string(p).unwrap_or_default().lines().map(str::to_string).collect()
    }

    /// logrotate renames the file: the writer sees its path name another file (or none) at its
    /// next flush and reopens it; SIGHUP makes it reopen at the next write.
    #[test]
    fn a_moved_file_is_followed_and_sighup_reopens() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("events.jsonl");
        let mut w = JsonLines::open(&path).unwrap_or_else(|e| panic!("{e}"));
        w.write(&serde_json::json!({"n": 1})).unwrap_or_else(|e| panic!("{e}"));
        w.flush().unwrap_or_else(|e| panic!("{e}"));
        let moved = dir.path().join("events.jsonl.1");
        std::fs::rename(&path, &moved).unwrap_or_else(|e| panic!("{e}"));
        w.write(&serde_json::json!({"n": 2})).unwrap_or_else(|e| panic!("{e}"));
        w.flush().unwrap_or_else(|e| panic!("{e}"));
        w.write(&serde_json::json!({"n": 3})).unwrap_or_else(|e| panic!("{e}"));
        w.flush().unwrap_or_else(|e| panic!("{e}"));
        // Written before the move was seen: the moved file; after: the new one.
        assert_eq!(lines(&moved), [r#"{"n":1}"#, r#"{"n":2}"#]);
        assert_eq!(lines(&path), [r#"{"n":3}"#]);
        // copytruncate-free rotation by hand: move it, then SIGHUP.
        let moved2 = dir.path().join("events.jsonl.2");
        std::fs::rename(&path, &moved2).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&path, b"").unwrap_or_else(|e| panic!("{e}"));
        request_reopen();
        w.write(&serde_json::json!({"n": 4})).unwrap_or_else(|e| panic!("{e}"));
        w.flush().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(lines(&moved2), [r#"{"n":3}"#]);
        assert_eq!(lines(&path), [r#"{"n":4}"#]);
        assert!(w.reopened >= 2);
    }

    /// The alert journal is written a record at a time and never flushed between: a moved path
    /// is followed at the next record once a second has passed since the last look. A path that
    /// cannot be reopened costs no line: it goes into the file still open.
    #[test]
    fn a_record_at_a_time_follows_a_moved_path_and_a_failed_reopen_loses_nothing() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("alerts.jsonl");
        let mut w = JsonLines::open(&path).unwrap_or_else(|e| panic!("{e}"));
        w.write(&serde_json::json!({"n": 1})).unwrap_or_else(|e| panic!("{e}"));
        w.sync().unwrap_or_else(|e| panic!("{e}"));
        let moved = dir.path().join("alerts.jsonl.1");
        std::fs::rename(&path, &moved).unwrap_or_else(|e| panic!("{e}"));
        w.last_check -= CHECK_EVERY * 2;
        w.write(&serde_json::json!({"n": 2})).unwrap_or_else(|e| panic!("{e}"));
        w.sync().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(lines(&moved), [r#"{"n":1}"#]);
        assert_eq!(lines(&path), [r#"{"n":2}"#]);
        // Moved again, and a directory now stands where the file was: it cannot be reopened.
        let moved2 = dir.path().join("alerts.jsonl.2");
        std::fs::rename(&path, &moved2).unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("{e}"));
        w.last_check -= CHECK_EVERY * 2;
        w.write(&serde_json::json!({"n": 3})).unwrap_or_else(|e| panic!("{e}"));
        w.sync().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(lines(&moved2), [r#"{"n":2}"#, r#"{"n":3}"#]);
        assert_eq!(w.failed_moves, 1);
    }

    /// A rotating log whose file was removed when a rotation is due starts the file again: the
    /// kept files are not shifted for a file that is not there (each line used to delete one
    /// more of them and be lost).
    #[test]
    fn a_removed_file_due_for_rotation_is_started_again_without_shifting_the_kept_ones() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("events.jsonl");
        let mut w = JsonLines::open(&path)
            .unwrap_or_else(|e| panic!("{e}"))
            .with_rotation(Some(Rotation { max_bytes: 20, keep: 2 }));
        // Records 0..6 of 13 bytes: rotated in pairs, so .2 and .1 hold two each, the file two.
        for n in 0..6 {
            w.write(&serde_json::json!({"record": n})).unwrap_or_else(|e| panic!("{e}"));
            w.flush().unwrap_or_else(|e| panic!("{e}"));
        }
        let kept = |i: usize| dir.path().join(format!("events.jsonl.{i}"));
        let before: Vec<Vec<String>> = (1..=2).map(|i| lines(&kept(i))).collect();
        assert!(before.iter().all(|k| k.len() == 2), "{before:?}");
        assert!(w.size >= 20, "a rotation is due");
        std::fs::remove_file(&path).unwrap_or_else(|e| panic!("{e}"));
        w.write(&serde_json::json!({"record": 6})).unwrap_or_else(|e| panic!("{e}"));
        w.flush().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(lines(&path), [r#"{"record":6}"#]);
        let after: Vec<Vec<String>> = (1..=2).map(|i| lines(&kept(i))).collect();
        assert_eq!(after, before);
    }

    /// Past `max_bytes` the file becomes `.1`, older ones shift, and only `keep` are kept.
    #[test]
    fn size_rotation_keeps_the_newest_files() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("alerts.jsonl");
        let mut w = JsonLines::open(&path)
            .unwrap_or_else(|e| panic!("{e}"))
            .with_rotation(Some(Rotation { max_bytes: 20, keep: 2 }));
        for n in 0..5 {
            w.write(&serde_json::json!({"record": n})).unwrap_or_else(|e| panic!("{e}"));
            w.flush().unwrap_or_else(|e| panic!("{e}"));
        }
        // Each record is 13 bytes: two fit under 20 before a rotation.
        assert_eq!(lines(&path), [r#"{"record":4}"#]);
        assert_eq!(lines(&dir.path().join("alerts.jsonl.1")), [r#"{"record":2}"#, r#"{"record":3}"#]);
        assert_eq!(lines(&dir.path().join("alerts.jsonl.2")), [r#"{"record":0}"#, r#"{"record":1}"#]);
        assert!(!dir.path().join("alerts.jsonl.3").exists());
    }
}

#[cfg(test)]
mod flow_line_tests {
    use super::*;
    use crate::flow::{FlowConfig, FlowTable};
    use crate::model::event::FlowEndReason;

    /// The flow records of every capture in the repository.
    fn records() -> Vec<FlowRecord> {
        let mut out = Vec::new();
        for path in crate::capture::repository_captures() {
            let Ok(mut src) = crate::capture::Source::file(&path) else { continue };
            let mut table = FlowTable::new(FlowConfig::default(), 0, 1);
            while let Ok(crate::capture::Next::Packet(p)) = src.next_packet() {
                if let Ok(crate::decode::Decoded::Ip(ip)) = crate::decode::decode(p.linktype, &p.data) {
                    table.track(&ip, p.ts, &mut out);
                }
            }
            table.drain(FlowEndReason::EndOfCapture, &mut out);
        }
        out
    }

    #[test]
    fn the_written_flow_line_is_the_one_serde_writes() {
        let records = records();
        let names = [None, Some("cam.example.com"), Some("q\"b\\s/\u{1}\u{7f}é\u{2028}\n\t")];
        let hosts = ["vm", "sen\"sor\u{0}\r"];
        let (mut vlan, mut tunnel, mut one_mac, mut no_mac, mut not_tcp) = (0, 0, 0, 0, 0);
        let mut buf = Vec::new();
        for (i, f) in records.iter().enumerate() {
            let name = names[i % names.len()];
            let host = hosts[i % hosts.len()];
            let line = EveFlow::of(f, host, name);
            buf.clear();
            line.write_json(&mut buf);
            let want = serde_json::to_vec(&line).expect("serde");
            assert!(
                buf == want,
                "record {i}:\n ours  {}\n serde {}",
                String::from_utf8_lossy(&buf),
                String::from_utf8_lossy(&want)
            );
            vlan += usize::from(f.vlan.is_some());
            tunnel += usize::from(f.tunnel.is_some());
            one_mac += usize::from(f.src_mac.is_some() != f.dest_mac.is_some());
            no_mac += usize::from(f.src_mac.is_none() && f.dest_mac.is_none());
            not_tcp += usize::from(f.proto != crate::model::packet::PROTO_TCP);
        }
        assert!(records.len() > 2_000, "{} records", records.len());
        assert!(
            vlan > 0 && tunnel > 0 && one_mac > 0 && no_mac > 0 && not_tcp > 0,
            "shapes covered: vlan {vlan}, tunnel {tunnel}, one MAC {one_mac}, no MAC {no_mac}, not TCP {not_tcp}"
        );
    }
}
