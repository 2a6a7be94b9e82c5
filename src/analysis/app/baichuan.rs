//! Reolink Baichuan (TCP 9000) client streams: messages are walked by their headers without
//! buffering their bodies, and a firmware upgrade (message 67) is reported as a transfer to the
//! camera: its announced file name and size when the XML is in the clear, and its image parts
//! streamed through SHA-256 (see [`crate::proto::baichuan`]).

use sha2::{Digest, Sha256};

use super::{tcp_ctx, AppFlow, Kind, Output, IMAGE_HEAD};
use crate::model::app::{App, FirmwareTransfer, ParseFailure};
use crate::model::event::FlowRecord;
use crate::model::time::Micros;
use crate::proto::{baichuan, firmware};

/// XML bytes of an upgrade message kept to read its announcement.
const XML_BYTES: usize = 4096;
/// Messages per flow logged as `baichuan` events (commands are few; a client that sends more is
/// still walked, and its upgrade still reported).
const MAX_EVENTS: u64 = 256;

/// Where the client's stream is within its messages.
#[derive(Debug, Default)]
pub(super) struct Follower {
    /// Bytes of the current message's first part (extension) and second part still to come.
    ext_left: u32,
    payload_left: u32,
    /// The current message's second part is binary (its extension declares it).
    binary: bool,
    /// The current message is part of a firmware upgrade.
    upgrade: bool,
    /// Messages walked (for tests and failures).
    pub(super) messages: u64,
    xml: Vec<u8>,
    image: Option<Image>,
}

#[derive(Debug)]
struct Image {
    hasher: Sha256,
    hashed: u64,
    head: Vec<u8>,
    name: Option<String>,
    size: Option<u64>,
}

impl Follower {
    pub(super) fn buffered(&self) -> usize {
        self.xml.len() + self.image.as_ref().map_or(0, |i| i.head.len())
    }

    fn message_done(&mut self) {
        if self.upgrade && !self.xml.is_empty() {
            if let (Some(image), Some((name, size))) = (&mut self.image, baichuan::upgrade_file(&self.xml)) {
                image.name = image.name.take().or(name);
                image.size = image.size.or(size);
            }
        }
        self.xml.clear();
        self.upgrade = false;
    }

    /// The upgrade seen on this stream, if any, as a transfer.
    pub(super) fn finish(&mut self) -> Option<FirmwareTransfer> {
        let image = self.image.take()?;
        let format = firmware::image_format(&image.head);
        let name = image.name.unwrap_or_default();
        let completed = image.size.is_some_and(|s| s == image.hashed);
        Some(FirmwareTransfer {
            direction: "upload",
            method: "BAICHUAN".into(),
            filename_version: firmware::version_from_filename(&name),
            filename: (!name.is_empty()).then(|| name.clone()),
            by_content: false,
            url: name,
            hostname: None,
            size: image.hashed,
            expected_size: image.size,
            sha256: image.hasher.finalize().iter().map(|b| format!("{b:02x}")).collect(),
            completed,
            digicap: firmware::parse_digicap_header(&image.head).ok(),
            format,
            // The protocol names it a firmware upgrade; its parts may be encrypted, so a format
            // is not required, only that an image's worth of bytes came.
            image: format.is_some() || image.hashed >= UPGRADE_IMAGE_BYTES,
        })
    }
}

/// The least image bytes taken for a firmware upgrade over Baichuan (an announcement and a
/// few stray bytes are not one).
pub const UPGRADE_IMAGE_BYTES: u64 = 64 * 1024;

/// Feeds the client's next bytes; the camera's answers are not followed.
pub(super) fn consume(
    f: &mut AppFlow,
    rec: &FlowRecord,
    to_server: bool,
    fresh: &[u8],
    ts: Micros,
    out: &mut Output,
) {
    if !to_server {
        f.server.done = true;
        f.server.buf = Vec::new();
        return;
    }
    let bc = f.baichuan.get_or_insert_with(Box::default);
    let mut input = fresh;
    while !input.is_empty() {
        if bc.ext_left > 0 || bc.payload_left > 0 {
            let in_ext = bc.ext_left > 0;
            let left = if in_ext { &mut bc.ext_left } else { &mut bc.payload_left };
            let n = input.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
            *left -= u32::try_from(n).unwrap_or(*left);
            let (part, rest) = input.split_at(n);
            input = rest;
            if bc.upgrade {
                if !in_ext && bc.binary {
                    if let Some(image) = &mut bc.image {
                        image.hasher.update(part);
                        image.hashed += part.len() as u64;
                        let room = IMAGE_HEAD.saturating_sub(image.head.len());
                        image.head.extend_from_slice(&part[..part.len().min(room)]);
                    }
                } else {
                    let room = XML_BYTES.saturating_sub(bc.xml.len());
                    bc.xml.extend_from_slice(&part[..part.len().min(room)]);
                }
            }
            if bc.ext_left == 0 && bc.payload_left == 0 {
                bc.message_done();
            }
            continue;
        }
        // A header, possibly split across segments: gathered in the direction's buffer.
        let had = f.client.buf.len();
        let take = input.len().min(24usize.saturating_sub(had));
        f.client.buf.extend_from_slice(&input[..take]);
        match baichuan::parse_header(&f.client.buf) {
            Ok(None) => input = &input[take..],
            Err(reason) => {
                out.failures.push(ParseFailure { protocol: "baichuan", reason });
                f.kind = Kind::Ignore;
                f.client.buf = Vec::new();
                return;
            }
            Ok(Some(h)) => {
                // Bytes gathered past the header belong to the body.
                let used = h.len().saturating_sub(had).min(take);
                input = &input[used..];
                f.client.buf.clear();
                bc.messages += 1;
                if bc.messages <= MAX_EVENTS {
                    out.events.push(tcp_ctx(rec, ts, App::Baichuan(baichuan::Message::from_header(&h))));
                }
                bc.ext_left = h.extension_len();
                bc.payload_left = h.payload_len();
                bc.binary = bc.ext_left > 0 && bc.payload_left > 0;
                bc.upgrade = h.msg_id == baichuan::MSG_FIRMWARE_UPGRADE;
                if bc.upgrade && bc.image.is_none() {
                    bc.image = Some(Image {
                        hasher: Sha256::new(),
                        hashed: 0,
                        head: Vec::new(),
                        name: None,
                        size: None,
                    });
                }
                if h.body_len == 0 {
                    bc.message_done();
                }
            }
        }
    }
}

/// Where a Baichuan message starts in the first bytes of a stream: at 0, or later when the
/// capture joined the stream inside a message (the login's long zero padding, say).
pub(super) fn resync(buf: &[u8]) -> Option<usize> {
    let scan = &buf[..buf.len().min(2048)];
    scan.windows(4).position(baichuan::starts)
}

/// The flow ended: an upgrade seen on it is reported.
pub(super) fn end(f: &mut AppFlow, rec: &FlowRecord, out: &mut Output) {
    if let Some(t) = f.baichuan.as_mut().and_then(|bc| bc.finish()) {
        out.events.push(tcp_ctx(rec, rec.end, App::FirmwareTransfer(Box::new(t))));
    }
}
