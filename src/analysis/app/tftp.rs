//! TFTP (RFC 1350, `blksize` from RFC 2348): transfers of firmware-looking files, hashed block by
//! block in order without buffering the image.

use std::net::IpAddr;

use sha2::{Digest, Sha256};

pub use crate::model::app::{App, AppEvent, FirmwareTransfer};
use crate::model::event::FlowRecord;
use crate::model::packet::IpPacket;
use crate::model::time::Micros;
use crate::proto::firmware;

use super::*;

/// TFTP transfers followed at once per worker; a new request past it evicts the transfer that
/// started first.
pub(super) const MAX_TFTP: usize = 64;

/// A TFTP transfer of a firmware-looking file (RFC 1350; `blksize` from RFC 2348).
#[derive(Debug)]
pub(super) struct Tftp {
    pub(super) write: bool,
    pub(super) filename: String,
    pub(super) server: IpAddr,
    pub(super) block_size: usize,
    pub(super) next_block: u16,
    pub(super) hasher: Sha256,
    pub(super) size: u64,
    pub(super) head: Vec<u8>,
    /// When the request was seen (packet time): the oldest transfer makes room for a new one.
    pub(super) started: Micros,
}

impl Tftp {
    pub(super) fn finish(self, completed: bool) -> FirmwareTransfer {
        let format = firmware::image_format(&self.head);
        FirmwareTransfer {
            direction: if self.write { "upload" } else { "download" },
            method: if self.write { "WRQ".into() } else { "RRQ".into() },
            url: self.filename.clone(),
            hostname: None,
            size: self.size,
            expected_size: None,
            sha256: self.hasher.finalize().iter().map(|b| format!("{b:02x}")).collect(),
            completed,
            digicap: firmware::parse_digicap_header(&self.head).ok(),
            format,
            image: firmware::is_image(format, self.size),
            filename_version: firmware::version_from_filename(&self.filename),
            filename: None,
            by_content: false,
        }
    }
}

pub(super) fn is_firmware_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let file = lower.rsplit(['/', '\\']).next().unwrap_or(&lower);
    file.contains("digicap")
        || ["update", "upgrade", "firmware"].iter().any(|w| file.contains(w))
        || [".dav", ".bin", ".img", ".pak", ".bin.gz", ".sh", ".tar", ".tgz", ".tar.gz", ".zip"]
            .iter()
            .any(|ext| file.ends_with(ext))
        || firmware::version_from_filename(file).is_some()
}

impl AppLayer {
    /// A read or write request to port 69: remember the client's endpoint.
    pub(super) fn tftp_request(&mut self, pkt: &IpPacket<'_>, ts: Micros) {
        let p = pkt.payload;
        let (Some(&0), Some(&op)) = (p.first(), p.get(1)) else { return };
        if (op != 1 && op != 2) || pkt.dst_port != 69 {
            return;
        }
        let mut fields = p[2..].split(|b| *b == 0);
        let Some(name) = fields.next().and_then(|n| std::str::from_utf8(n).ok()) else { return };
        if name.is_empty() || name.len() > 512 || !is_firmware_name(name) {
            return;
        }
        let _mode = fields.next();
        let mut block_size = 512;
        while let (Some(k), Some(v)) = (fields.next(), fields.next()) {
            if k.eq_ignore_ascii_case(b"blksize") {
                block_size =
                    std::str::from_utf8(v).ok().and_then(|v| v.parse().ok()).unwrap_or(512).clamp(8, 65464);
            }
        }
        let key = (pkt.src_ip, pkt.src_port);
        if self.tftp.len() >= MAX_TFTP && !self.tftp.contains_key(&key) {
            // The clients holding the most transfers lose theirs first, the oldest first.
            let chosen = crate::model::evict::victims(self.tftp.iter().map(|(k, t)| (k.0, t.started, *k)), 1);
            for k in chosen.keys {
                self.tftp.remove(&k);
                self.tftp_evicted += 1;
            }
            self.tftp_top_sources = chosen.top;
        }
        self.tftp.insert(
            key,
            Tftp {
                write: op == 2,
                filename: name.to_string(),
                server: pkt.dst_ip,
                block_size,
                next_block: 1,
                hasher: Sha256::new(),
                size: 0,
                head: Vec::new(),
                started: ts,
            },
        );
    }

    /// DATA packets of a followed transfer (either direction). Returns whether the packet
    /// belonged to one.
    pub(super) fn tftp_data(
        &mut self,
        rec: &FlowRecord,
        pkt: &IpPacket<'_>,
        ts: Micros,
        out: &mut Output,
    ) -> bool {
        if self.tftp.is_empty() {
            return false;
        }
        let key = if self.tftp.contains_key(&(pkt.dst_ip, pkt.dst_port)) {
            (pkt.dst_ip, pkt.dst_port)
        } else if self.tftp.contains_key(&(pkt.src_ip, pkt.src_port)) {
            (pkt.src_ip, pkt.src_port)
        } else {
            return false;
        };
        let Some(t) = self.tftp.get_mut(&key) else { return false };
        let peer = if key.0 == pkt.dst_ip { pkt.src_ip } else { pkt.dst_ip };
        if peer != t.server {
            return false;
        }
        let p = pkt.payload;
        match (p.first(), p.get(1)) {
            // DATA
            (Some(0), Some(3)) if p.len() >= 4 => {
                let block = u16::from_be_bytes([p[2], p[3]]);
                if block != t.next_block {
                    return true; // a retransmission or a gap: not hashed twice
                }
                let data = &p[4..];
                t.hasher.update(data);
                t.size += data.len() as u64;
                let room = IMAGE_HEAD.saturating_sub(t.head.len());
                t.head.extend_from_slice(&data[..data.len().min(room)]);
                t.next_block = t.next_block.wrapping_add(1);
                if data.len() < t.block_size {
                    if let Some(t) = self.tftp.remove(&key) {
                        out.events.push(tftp_ctx(
                            rec,
                            pkt,
                            key,
                            ts,
                            App::FirmwareTransfer(Box::new(t.finish(true))),
                        ));
                    }
                }
            }
            // OACK: the server accepted options (a block size).
            (Some(0), Some(6)) => {
                let mut fields = p[2..].split(|b| *b == 0);
                while let (Some(k), Some(v)) = (fields.next(), fields.next()) {
                    if k.eq_ignore_ascii_case(b"blksize") {
                        if let Some(n) = std::str::from_utf8(v).ok().and_then(|v| v.parse::<usize>().ok()) {
                            t.block_size = n.clamp(8, 65464);
                        }
                    }
                }
            }
            // ERROR ends it.
            (Some(0), Some(5)) => {
                if let Some(t) = self.tftp.remove(&key) {
                    out.events.push(tftp_ctx(
                        rec,
                        pkt,
                        key,
                        ts,
                        App::FirmwareTransfer(Box::new(t.finish(false))),
                    ));
                }
            }
            _ => {}
        }
        true
    }
}

/// A TFTP event oriented like HTTP: from the client that sent the request to the server.
pub(super) fn tftp_ctx(
    rec: &FlowRecord,
    pkt: &IpPacket<'_>,
    client: (IpAddr, u16),
    ts: Micros,
    app: App,
) -> AppEvent {
    let mut e = ctx(rec, pkt, ts, app);
    if (e.dest_ip, e.dest_port) == client {
        std::mem::swap(&mut e.src_ip, &mut e.dest_ip);
        std::mem::swap(&mut e.src_port, &mut e.dest_port);
    }
    e
}
