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
use crate::model::time::rfc3339;

/// An append-only JSON-lines file.
pub struct JsonLines {
    path: PathBuf,
    out: BufWriter<File>,
}

impl JsonLines {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = OpenOptions::new().create(true).append(true).read(true).mode(0o640).open(path)?;
        // A crash mid-line leaves a fragment: end it, so the next record starts a line of its own.
        if ends_mid_line(&mut f)? {
            f.write_all(b"\n")?;
        }
        Ok(Self { path: path.to_path_buf(), out: BufWriter::with_capacity(64 << 10, f) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn write<T: Serialize>(&mut self, record: &T) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, record)?;
        self.out.write_all(b"\n")
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
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

/// A flow record as a Suricata EVE `flow` event.
pub fn eve_flow(f: &FlowRecord, sensor: &str) -> Value {
    let mut v = json!({
        "timestamp": rfc3339(f.start),
        "flow_id": f.flow_id,
        "event_type": "flow",
        "src_ip": f.src_ip,
        "src_port": f.src_port,
        "dest_ip": f.dest_ip,
        "dest_port": f.dest_port,
        "proto": proto_name(f.proto),
        "community_id": f.community_id,
        "flow": {
            "pkts_toserver": f.pkts_toserver,
            "pkts_toclient": f.pkts_toclient,
            "bytes_toserver": f.bytes_toserver,
            "bytes_toclient": f.bytes_toclient,
            "start": rfc3339(f.start),
            "end": rfc3339(f.end),
            "age": (f.end.saturating_sub(f.start)) / 1_000_000,
            "reason": f.reason.eve(),
            "camwatch_reason": f.reason.as_str(),
        },
        "sensor": sensor,
    });
    if let Some(obj) = v.as_object_mut() {
        if let Some(vlan) = f.vlan {
            obj.insert("vlan".into(), json!([vlan]));
        }
        // Decapsulated: Suricata's `tunnel` object (the outer protocol), and which tunnel.
        if let Some(t) = f.tunnel {
            obj.insert("tunnel".into(), json!({ "proto": t.outer_proto() }));
            obj.insert("encapsulation".into(), json!(t.as_str()));
        }
        if f.proto == crate::model::packet::PROTO_TCP {
            obj.insert(
                "tcp".into(),
                json!({
                    "tcp_flags": tcp_flags_hex(f.tcp_flags_ts | f.tcp_flags_tc),
                    "tcp_flags_ts": tcp_flags_hex(f.tcp_flags_ts),
                    "tcp_flags_tc": tcp_flags_hex(f.tcp_flags_tc),
                }),
            );
        }
        let macs: Vec<(&str, [u8; 6])> = [("src_mac", f.src_mac), ("dest_mac", f.dest_mac)]
            .into_iter()
            .filter_map(|(k, m)| m.map(|m| (k, m)))
            .collect();
        if !macs.is_empty() {
            let ether: serde_json::Map<String, Value> =
                macs.into_iter().map(|(k, m)| (k.to_string(), Value::String(format_mac(m)))).collect();
            obj.insert("ether".into(), Value::Object(ether));
        }
    }
    v
}

/// A device inventory change as camwatch's own `device` event.
pub fn eve_device(d: &DeviceEvent, sensor: &str) -> Value {
    json!({
        "timestamp": rfc3339(d.ts),
        "event_type": "device",
        "src_ip": d.ip,
        "device": {
            "event": d.kind.as_str(),
            "ip": d.ip,
            "mac": d.mac.map(format_mac),
            "vendor": d.vendor,
            "organization": d.organization,
            "change": d.change,
            "previous_ip": d.previous_ip,
        },
        "sensor": sensor,
    })
}

fn header(
    ts: crate::model::time::Micros,
    event_type: &str,
    e: &crate::model::app::AppEvent,
    sensor: &str,
) -> serde_json::Map<String, Value> {
    let v = json!({
        "timestamp": rfc3339(ts),
        "flow_id": e.flow_id,
        "event_type": event_type,
        "src_ip": e.src_ip,
        "src_port": e.src_port,
        "dest_ip": e.dest_ip,
        "dest_port": e.dest_port,
        "proto": proto_name(e.proto),
        "community_id": e.community_id,
        "sensor": sensor,
    });
    match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// DNS in Suricata's EVE version 3 shape (`dns.type` request/response, `queries`, `answers`,
/// `grouped`).
fn eve_dns(m: &crate::proto::dns::DnsMessage) -> Value {
    let mut grouped: std::collections::BTreeMap<&str, Vec<&str>> = std::collections::BTreeMap::new();
    for a in &m.answers {
        grouped.entry(a.rrtype.as_str()).or_default().push(a.rdata.as_str());
    }
    let mut v = json!({
        "version": 3,
        "type": if m.response { "response" } else { "request" },
        "id": m.id,
        "flags": m.flags,
        "qr": m.response,
        "rd": m.rd,
        "queries": m.queries,
    });
    if let Some(o) = v.as_object_mut() {
        if m.aa {
            o.insert("aa".into(), json!(true));
        }
        if m.tc {
            o.insert("tc".into(), json!(true));
        }
        if m.response {
            o.insert("ra".into(), json!(m.ra));
            o.insert("rcode".into(), json!(m.rcode));
            if !m.answers.is_empty() {
                o.insert("answers".into(), json!(m.answers));
                o.insert("grouped".into(), json!(grouped));
            }
            if !m.authorities.is_empty() {
                o.insert("authorities".into(), json!(m.authorities));
            }
        }
        if !m.anomalies.is_empty() {
            o.insert("anomalies".into(), json!(m.anomalies));
        }
    }
    v
}

/// An application message as an EVE event: `dns`, `tls`, `http`, `dhcp`, `rtsp`, `ntp`,
/// `discovery` (SSDP, SADP, DHIP, WS-Discovery, with `discovery.protocol`) or `firmware`
/// (`firmware.event: transfer`).
pub fn eve_app(e: &crate::model::app::AppEvent, sensor: &str) -> Value {
    use crate::model::app::App;
    let (ty, key, body) = match &e.app {
        App::Dns(m) => ("dns", "dns", eve_dns(m)),
        App::Tls(h) => ("tls", "tls", json!(h)),
        App::Http(t) => {
            let mut v = json!(t.request);
            if let (Some(o), Some(r)) = (v.as_object_mut(), &t.response) {
                o.insert("status".into(), json!(r.status));
                if let Some(s) = &r.server {
                    o.insert("server".into(), json!(s));
                }
                if let Some(ct) = &r.http_content_type {
                    o.insert("response_content_type".into(), json!(ct));
                }
                if let Some(l) = r.content_length {
                    o.insert("length".into(), json!(l));
                }
                if let Some(realm) = &r.www_authenticate_realm {
                    o.insert("www_authenticate_realm".into(), json!(realm));
                }
            }
            if let (Some(o), Some(id)) = (v.as_object_mut(), &t.identity) {
                o.insert("identity".into(), json!(id));
            }
            ("http", "http", v)
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
    Value::Object(m)
}

/// A firmware change on a device as camwatch's `firmware` event.
pub fn eve_firmware(f: &crate::model::event::FirmwareEvent, sensor: &str) -> Value {
    json!({
        "timestamp": rfc3339(f.ts),
        "event_type": "firmware",
        "src_ip": f.ip,
        "firmware": {
            "event": f.change.kind.as_str(),
            "device": f.ip,
            "version": f.change.version,
            "previous": f.change.previous,
            "source": f.change.source.as_str(),
        },
        "sensor": sensor,
    })
}

/// A pair's beacon score (scores as fractions, times in seconds).
pub fn eve_beacon(b: &crate::analysis::beacon::BeaconScore, f: &FlowRecord, sensor: &str) -> Value {
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    json!({
        "timestamp": rfc3339(f.end),
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
        "sensor": sensor,
    })
}
