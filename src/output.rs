//! JSON-lines files: the alert journal (flushed per alert, so a crash loses none) and the
//! EVE-shaped event log (buffered, flushed once a second and at exit).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{json, Value};

use crate::event::{format_mac, proto_name, rfc3339, DeviceEvent, FlowRecord};

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
        let f = OpenOptions::new().create(true).append(true).open(path)?;
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
        if f.proto == crate::decode::PROTO_TCP {
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
        },
        "sensor": sensor,
    })
}
