//! Packet sources: live interfaces and capture files behind one type with the same `next` and
//! `stats`, so the rest of the pipeline cannot tell them apart.
//!
//! libpcap (the `pcap` crate) does the work; a pcapng file libpcap refuses (mixed link types
//! across interfaces) is read with `pcap-file` instead.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};

use super::CaptureConfig;
use crate::model::packet::{linktype, Frame, RawPacket};

pub enum Next<T = RawPacket> {
    Packet(T),
    /// A live read waited `read_timeout` without a packet.
    Timeout,
    /// The file ended.
    End,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureError {
    pub source: String,
    pub reason: &'static str,
    pub message: String,
}

impl std::fmt::Display for CaptureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.source, self.message)
    }
}

impl std::error::Error for CaptureError {}

/// libpcap's drop counters, cumulative since the source opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drops {
    pub kernel: u64,
    pub interface: u64,
}

pub struct Source {
    name: String,
    kind: Kind,
    /// Bytes of the file consumed so far (for progress), approximately.
    pub consumed: u64,
    /// Packets handed out so far.
    delivered: u64,
}

enum Kind {
    Live(pcap::Capture<pcap::Active>),
    File(pcap::Capture<pcap::Offline>),
    PcapNg(PcapNgFile),
}

struct PcapNgFile {
    reader: PcapNgReader<BufReader<File>>,
    /// Per interface: link type and ticks per second of its timestamps.
    interfaces: Vec<(i32, u64)>,
}

impl Source {
    /// Opens a live capture on `interface`.
    pub fn live(interface: &str, cfg: &CaptureConfig) -> Result<Self, CaptureError> {
        let err = |message: String| CaptureError { source: interface.to_string(), reason: "open", message };
        let timeout_ms = i32::try_from(cfg.read_timeout.as_millis()).unwrap_or(i32::MAX).max(1);
        let mut cap = pcap::Capture::from_device(interface)
            .map_err(|e| err(format!("cannot open interface: {e}")))?
            .promisc(cfg.promiscuous)
            .snaplen(cfg.snaplen)
            .buffer_size(cfg.buffer_size)
            .timeout(timeout_ms)
            .immediate_mode(cfg.immediate)
            .open()
            .map_err(|e| err(format!("cannot capture on interface: {e}")))?;
        if let Some(f) = &cfg.filter {
            cap.filter(f, true).map_err(|e| err(format!("bad capture filter `{f}`: {e}")))?;
        }
        // Non-blocking reads, waited for with poll (see `Source::wait`): a read never holds the
        // capture thread past the moment the kernel has nothing more, so a partly filled batch
        // goes to its worker at once and a stopping sensor is never stuck in libpcap (whose
        // blocking read on a quiet link can wait for the next frame however long its timeout).
        let cap = cap.setnonblock().map_err(|e| err(format!("cannot make the capture non-blocking: {e}")))?;
        let lt = cap.get_datalink().0;
        if !linktype::supported(lt) {
            return Err(err(format!("unsupported link type {lt}")));
        }
        Ok(Self { name: interface.to_string(), kind: Kind::Live(cap), consumed: 0, delivered: 0 })
    }

    /// Opens a pcap or pcapng file.
    pub fn file(path: &Path) -> Result<Self, CaptureError> {
        let name = path.display().to_string();
        let err = |message: String| CaptureError { source: name.clone(), reason: "open", message };
        let meta = std::fs::metadata(path).map_err(|e| err(format!("cannot read: {e}")))?;
        // A FIFO (or /dev/stdin) has no length: libpcap reads it as the writer writes.
        if meta.is_file() && meta.len() == 0 {
            return Err(err("empty file, not a capture".into()));
        }
        match pcap::Capture::from_file(path) {
            Ok(cap) => {
                let lt = cap.get_datalink().0;
                if !linktype::supported(lt) {
                    return Err(err(format!("unsupported link type {lt}")));
                }
                Ok(Self { name, kind: Kind::File(cap), consumed: 24, delivered: 0 })
            }
            Err(pcap_err) => {
                if is_pcapng(path) {
                    let ng = PcapNgFile::open(path).map_err(|e| err(format!("{e} (libpcap: {pcap_err})")))?;
                    Ok(Self { name, kind: Kind::PcapNg(ng), consumed: 0, delivered: 0 })
                } else {
                    Err(err(format!("not a pcap or pcapng capture ({pcap_err})")))
                }
            }
        }
    }

    /// Sources from interface names and file paths.
    pub fn open_all(
        interfaces: &[String],
        files: &[PathBuf],
        cfg: &CaptureConfig,
    ) -> Result<Vec<Self>, CaptureError> {
        let mut out = Vec::new();
        for i in interfaces {
            out.push(Self::live(i, cfg)?);
        }
        for f in files {
            out.push(Self::file(f)?);
        }
        Ok(out)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn is_live(&self) -> bool {
        matches!(self.kind, Kind::Live(_))
    }

    /// The `source` metric label: the interface, or `file`.
    pub fn label(&self) -> String {
        if self.is_live() {
            self.name.clone()
        } else {
            "file".into()
        }
    }

    /// The next packet, copied out.
    pub fn next_packet(&mut self) -> Result<Next, CaptureError> {
        self.next_frame(|f| f.to_owned())
    }

    /// Hands the next packet to `take` where it lies in the capture buffer (no copy here).
    pub fn next_frame<R>(&mut self, take: impl FnOnce(Frame<'_>) -> R) -> Result<Next<R>, CaptureError> {
        let name = &self.name;
        let err =
            |reason: &'static str, message: String| CaptureError { source: name.clone(), reason, message };
        match &mut self.kind {
            Kind::Live(cap) => {
                let lt = cap.get_datalink().0;
                match cap.next_packet() {
                    Ok(p) => Ok(Next::Packet(take(frame(&p, lt)))),
                    // Non-blocking: nothing there now.
                    Err(pcap::Error::TimeoutExpired) => Ok(Next::Timeout),
                    Err(pcap::Error::NoMorePackets) => Ok(Next::End),
                    Err(e) => Err(err("read", format!("capture failed: {e}"))),
                }
            }
            Kind::File(cap) => {
                let lt = cap.get_datalink().0;
                match cap.next_packet() {
                    Ok(p) => {
                        self.consumed += 16 + u64::from(p.header.caplen);
                        self.delivered += 1;
                        Ok(Next::Packet(take(frame(&p, lt))))
                    }
                    Err(pcap::Error::NoMorePackets) => Ok(Next::End),
                    Err(e) if e.to_string().contains("different from the type of the first interface") => {
                        // libpcap opens a pcapng with mixed link types but stops at the first
                        // interface of another type: continue with pcap-file from there.
                        let mut ng = PcapNgFile::open(Path::new(name)).map_err(|m| err("read", m))?;
                        for _ in 0..self.delivered {
                            if let Next::End = ng.next(|_| ()).map_err(|m| err("read", m))? {
                                break;
                            }
                        }
                        tracing::debug!(source = %name, "Mixed link types: reading on with pcap-file.");
                        self.kind = Kind::PcapNg(ng);
                        self.next_frame(take)
                    }
                    Err(e) => {
                        let text = e.to_string();
                        let reason = if text.contains("truncated") { "truncated" } else { "read" };
                        Err(err(reason, format!("{text}; the packets before it were analysed")))
                    }
                }
            }
            Kind::PcapNg(ng) => {
                ng.next(take).map_err(|m| err("read", format!("{m}; the packets before it were analysed")))
            }
        }
    }

    /// Waits up to `timeout` for a live source to have packets (a file always has, or has
    /// ended). Returns early when the kernel hands over packets.
    pub fn wait(&mut self, timeout: std::time::Duration) {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        if let Kind::Live(cap) = &self.kind {
            let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(cap.as_fd(), PollFlags::POLLIN)];
            // An interrupted or failed poll only shortens the wait: the next read tells.
            let _ = poll(&mut fds, PollTimeout::from(ms));
        }
    }

    /// Drop counters of a live source.
    pub fn drops(&mut self) -> Option<Drops> {
        match &mut self.kind {
            Kind::Live(cap) => cap
                .stats()
                .ok()
                .map(|s| Drops { kernel: u64::from(s.dropped), interface: u64::from(s.if_dropped) }),
            _ => None,
        }
    }
}

fn frame<'a>(p: &pcap::Packet<'a>, lt: i32) -> Frame<'a> {
    // A damaged file's header can carry any time: saturate rather than overflow (a fuzzer's
    // pcapng with a huge resolution found it).
    let ts = u64::try_from(p.header.ts.tv_sec)
        .unwrap_or(0)
        .saturating_mul(1_000_000)
        .saturating_add(u64::try_from(p.header.ts.tv_usec).unwrap_or(0));
    Frame { ts, linktype: lt, wire_len: p.header.len, data: p.data }
}

fn is_pcapng(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && magic == [0x0a, 0x0d, 0x0d, 0x0a]
}

impl PcapNgFile {
    fn open(path: &Path) -> Result<Self, String> {
        let f = File::open(path).map_err(|e| format!("cannot read: {e}"))?;
        let reader =
            PcapNgReader::new(BufReader::new(f)).map_err(|e| format!("not a readable pcapng file: {e}"))?;
        Ok(Self { reader, interfaces: Vec::new() })
    }

    fn next<R>(&mut self, take: impl FnOnce(Frame<'_>) -> R) -> Result<Next<R>, String> {
        loop {
            let Some(block) = self.reader.next_block() else { return Ok(Next::End) };
            match block.map_err(|e| format!("malformed pcapng block: {e}"))? {
                Block::SectionHeader(_) => self.interfaces.clear(),
                Block::InterfaceDescription(idb) => {
                    let mut per_sec = 1_000_000u64;
                    for o in &idb.options {
                        if let InterfaceDescriptionOption::IfTsResol(r) = o {
                            per_sec = if r & 0x80 == 0 {
                                10u64.checked_pow(u32::from(*r)).unwrap_or(1_000_000)
                            } else {
                                1u64.checked_shl(u32::from(r & 0x7f)).unwrap_or(1_000_000)
                            };
                        }
                    }
                    let lt = i32::try_from(u32::from(idb.linktype)).unwrap_or(-1);
                    self.interfaces.push((lt, per_sec.max(1)));
                }
                Block::EnhancedPacket(epb) => {
                    let Some(&(lt, per_sec)) =
                        usize::try_from(epb.interface_id).ok().and_then(|i| self.interfaces.get(i))
                    else {
                        return Err(format!("packet refers to undefined interface {}", epb.interface_id));
                    };
                    // pcap-file reports the raw timestamp as nanoseconds whatever the resolution.
                    let ticks = epb.timestamp.as_nanos();
                    let ts = u64::try_from(ticks.saturating_mul(1_000_000) / u128::from(per_sec))
                        .unwrap_or(u64::MAX);
                    let f = Frame { ts, linktype: lt, wire_len: epb.original_len, data: &epb.data };
                    return Ok(Next::Packet(take(f)));
                }
                Block::SimplePacket(spb) => {
                    let lt = self.interfaces.first().map_or(linktype::ETHERNET, |i| i.0);
                    let f = Frame { ts: 0, linktype: lt, wire_len: spb.original_len, data: &spb.data };
                    return Ok(Next::Packet(take(f)));
                }
                _ => {}
            }
        }
    }
}
