//! One evidence capture being written: `<id>.pcap.part`, hashed as written, published as
//! `<id>.pcap` with a hard link that never replaces an existing file.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, TsResolution};
use sha2::{Digest, Sha256};

use crate::model::evidence::{EvidenceDone, EvidenceOutcome};
use crate::model::packet::Frame;
use crate::model::time::Micros;

use super::recorder::*;

/// The file behind a capture, hashed as it is written.
pub(super) type FileSink = HashingWriter<BufWriter<File>>;

pub(super) enum Sink {
    /// Nothing written yet: the header waits for the first packet's link type.
    Empty(FileSink),
    Pcap(PcapWriter<FileSink>),
}

/// A capture being written.
pub(super) struct Capture {
    pub(super) id: String,
    pub(super) flow_id: u64,
    pub(super) part: PathBuf,
    pub(super) path: PathBuf,
    /// `None` once closed (or if a header write failed).
    pub(super) sink: Option<Sink>,
    /// The first packet's; packets of another link type are skipped.
    pub(super) linktype: Option<i32>,
    /// Packets of the flow still to take after the alert.
    pub(super) after_left: usize,
    /// The flow's newest packet time, or the alert's.
    pub(super) last_ts: Micros,
    /// The alert's packet time.
    pub(super) started: Micros,
    pub(super) packets: u64,
    pub(super) skipped: u64,
}

/// An alert waits for its capture: a flow that keeps trickling packets ends it at this many
/// `after_timeout`s after the alert, whatever is left of `packets_after`.
pub(super) const MAX_WAIT_TIMEOUTS: u64 = 3;

impl Capture {
    /// When the capture ends if nothing else ends it: idle for `timeout`, or held for
    /// `MAX_WAIT_TIMEOUTS` of them since the alert.
    pub(super) fn deadline(&self, timeout: Micros) -> Micros {
        self.last_ts
            .saturating_add(timeout)
            .min(self.started.saturating_add(timeout.saturating_mul(MAX_WAIT_TIMEOUTS)))
    }

    /// Creates `<id>.pcap.part` (never an existing file); on failure gives the id back.
    pub(super) fn create(
        dir: &Path,
        id: String,
        flow_id: u64,
        ts: Micros,
        after: usize,
    ) -> Result<Self, (String, String)> {
        if let Err(e) = DirBuilder::new().recursive(true).mode(0o700).create(dir) {
            let error = format!("{}: cannot create directory: {e}", dir.display());
            return Err((id, error));
        }
        let path = dir.join(format!("{id}.pcap"));
        let part = dir.join(format!("{id}.pcap.part"));
        if fs::symlink_metadata(&path).is_ok() {
            return Err((id, format!("{}: already exists, not overwritten", path.display())));
        }
        let file = match OpenOptions::new().write(true).create_new(true).mode(0o600).open(&part) {
            Ok(f) => f,
            Err(e) => return Err((id, format!("{}: cannot create: {e}", part.display()))),
        };
        let sink = HashingWriter { inner: BufWriter::new(file), hasher: Sha256::new(), written: 0 };
        Ok(Self {
            id,
            flow_id,
            part,
            path,
            sink: Some(Sink::Empty(sink)),
            linktype: None,
            after_left: after,
            last_ts: ts,
            started: ts,
            packets: 0,
            skipped: 0,
        })
    }

    pub(super) fn write(&mut self, p: &Frame<'_>) -> Result<(), String> {
        self.last_ts = self.last_ts.max(p.ts);
        let fits_pcap = p.ts / 1_000_000 <= u64::from(u32::MAX);
        if !fits_pcap || self.linktype.is_some_and(|lt| lt != p.linktype) {
            self.skipped += 1;
            return Ok(());
        }
        self.start(p.linktype)?;
        let Some(Sink::Pcap(w)) = &mut self.sink else {
            return Err(format!("{}: capture already closed", self.part.display()));
        };
        let data = p.data.get(..SNAPLEN as usize).unwrap_or(p.data);
        let incl_len = u32::try_from(data.len()).unwrap_or(SNAPLEN);
        // A wire length below the bytes captured is nonsense; pcap needs orig_len >= incl_len.
        let pkt = PcapPacket::new(Duration::from_micros(p.ts), p.wire_len.max(incl_len), data);
        w.write_packet(&pkt).map_err(|e| format!("{}: {e}", self.part.display()))?;
        self.linktype = Some(p.linktype);
        self.packets += 1;
        Ok(())
    }

    /// Writes the file header, once.
    pub(super) fn start(&mut self, linktype: i32) -> Result<(), String> {
        if let Some(Sink::Empty(_)) = &self.sink {
            if let Some(Sink::Empty(f)) = self.sink.take() {
                let w = PcapWriter::with_header(f, pcap_header(linktype))
                    .map_err(|e| format!("{}: {e}", self.part.display()))?;
                self.sink = Some(Sink::Pcap(w));
            }
        }
        Ok(())
    }

    pub(super) fn finish(mut self) -> EvidenceOutcome {
        match self.close() {
            Ok(done) => EvidenceOutcome::Written(done),
            Err(e) => self.abandon(e),
        }
    }

    pub(super) fn close(&mut self) -> Result<EvidenceDone, String> {
        let part = self.part.display().to_string();
        self.start(LINKTYPE_ETHERNET)?;
        let Some(Sink::Pcap(w)) = self.sink.take() else {
            return Err(format!("{part}: capture already closed"));
        };
        let HashingWriter { inner, hasher, written } = w.into_writer();
        let file = inner.into_inner().map_err(|e| format!("{part}: {}", e.error()))?;
        file.sync_all().map_err(|e| format!("{part}: {e}"))?;
        drop(file);
        publish(&self.part, &self.path).map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => {
                format!("{}: already exists, not overwritten", self.path.display())
            }
            _ => format!("{}: cannot publish: {e}", self.path.display()),
        })?;
        Ok(EvidenceDone {
            id: self.id.clone(),
            path: self.path.clone(),
            sha256: hex(hasher.finalize().as_slice()),
            packets: self.packets,
            skipped: self.skipped,
            bytes: written,
        })
    }

    /// Gives up: removes the partial file.
    pub(super) fn abandon(mut self, error: String) -> EvidenceOutcome {
        self.sink = None;
        if let Err(e) = fs::remove_file(&self.part) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %self.part.display(), "Cannot remove partial evidence file: {e}.");
            }
        }
        EvidenceOutcome::Failed { id: self.id, error }
    }
}

pub(super) fn pcap_header(linktype: i32) -> PcapHeader {
    PcapHeader {
        snaplen: SNAPLEN,
        // libpcap link types are never negative; a bogus one keeps its bit pattern.
        datalink: DataLink::from(linktype as u32),
        ts_resolution: TsResolution::MicroSecond,
        endianness: Endianness::Little,
        ..PcapHeader::default()
    }
}

/// Renames `part` to `path` unless `path` exists. A hard link is the no-overwrite rename;
/// where the filesystem has none, a checked rename (racy, but names are unique alert ids).
pub(super) fn publish(part: &Path, path: &Path) -> io::Result<()> {
    match fs::hard_link(part, path) {
        Ok(()) => {
            if let Err(e) = fs::remove_file(part) {
                tracing::warn!(path = %part.display(), "Cannot remove partial evidence file: {e}.");
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(_) => {
            if fs::symlink_metadata(path).is_ok() {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            fs::rename(part, path)
        }
    }
}

pub(super) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// Hashes exactly the bytes its inner writer accepted.
pub(super) struct HashingWriter<W> {
    pub(super) inner: W,
    pub(super) hasher: Sha256,
    pub(super) written: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let accepted = buf.get(..n).unwrap_or(buf);
        self.hasher.update(accepted);
        self.written += accepted.len() as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
