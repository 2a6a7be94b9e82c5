//! Packet sources: live interfaces and capture files behind one type with the same `next` and
//! `stats`, so the rest of the pipeline cannot tell them apart.
//!
//! libpcap (the `pcap` crate) captures live and reads pcapng; a classic pcap file is read with
//! `pcap-file`, whose records are sliced in place from one large read buffer (libpcap copies
//! each record from stdio's buffer into its own, one `fread` per record: a third of the capture
//! thread's time on a replay). A pcapng file libpcap refuses (mixed link types across
//! interfaces) is read with `pcap-file` too.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use pcap_file::pcap::PcapParser;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::TsResolution;

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
    Pcap(PcapFile),
    PcapNg(PcapNgFile),
}

/// A classic pcap file: records parsed in place by `pcap-file`'s parser from one buffer that
/// camwatch fills (so its size is ours: 1 MiB per file, where `pcap-file`'s own reader holds
/// 8 MB, and several files replay at once).
struct PcapFile {
    file: File,
    parser: PcapParser,
    buf: Vec<u8>,
    /// The unread bytes are `buf[pos..len]`.
    pos: usize,
    len: usize,
    /// The file has no more bytes.
    eof: bool,
    big_endian: bool,
    linktype: i32,
    /// Ticks of the records' fraction of a second per microsecond: 1, or 1000 in a
    /// nanosecond file.
    ticks_per_micro: u32,
    /// Bytes of a record delivered at most: the header's snap length, as libpcap cuts them.
    snapshot: u32,
}

/// The largest record libpcap accepts (its `MAXIMUM_SNAPLEN`); a longer one is a damaged or
/// hostile file.
const MAX_RECORD: u32 = 262_144;

/// The read buffer of a pcap file; it holds the largest record whole.
const PCAP_BUFFER: usize = 1 << 20;

/// What one step of reading a pcap file came to.
enum Step<R> {
    Record { consumed: usize, taken: R, len: u32 },
    More,
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
        // A FIFO goes to libpcap: looking at its magic here would take the bytes from it.
        if let Some(pcap) = meta.is_file().then(|| PcapFile::open(path)).flatten() {
            let lt = pcap.linktype;
            if !linktype::supported(lt) {
                return Err(err(format!("unsupported link type {lt}")));
            }
            return Ok(Self { name, kind: Kind::Pcap(pcap), consumed: 24, delivered: 0 });
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
            Kind::Pcap(pcap) => match pcap.next(take) {
                Ok(Some((n, len))) => {
                    self.consumed += 16 + u64::from(len);
                    self.delivered += 1;
                    Ok(Next::Packet(n))
                }
                Ok(None) => Ok(Next::End),
                Err((reason, m)) => Err(err(reason, format!("{m}; the packets before it were analysed"))),
            },
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

impl PcapFile {
    /// A classic pcap file as libpcap writes them today (version 2.4, either byte order, micro-
    /// or nanosecond times, no link-type extension bits); `None` for anything else, which
    /// libpcap then opens or explains: older versions with their swapped length fields, the
    /// FCS bits of the link-type field, and byte-swapped NFLOG, SLL and SLL2 files, whose
    /// headers libpcap partly turns into this host's order.
    fn open(path: &Path) -> Option<Self> {
        let mut file = File::open(path).ok()?;
        let mut head = [0u8; 24];
        file.read_exact(&mut head).ok()?;
        let (_, parser) = PcapParser::new(&head).ok()?;
        let header = parser.header();
        if (header.version_major, header.version_minor) != (2, 4) {
            return None;
        }
        let raw = u32::from(header.datalink);
        if raw > 0x03ff_ffff {
            return None;
        }
        let linktype = i32::try_from(raw).ok()?;
        let big_endian = !header.endianness.is_little();
        // libpcap rewrites some link-layer headers of a file written on a host of the other
        // byte order (NFLOG's TLVs, the CAN ID behind SLL and SLL2): such files are left to it.
        let swapped = big_endian == cfg!(target_endian = "little");
        if swapped && matches!(linktype, linktype::NFLOG | linktype::LINUX_SLL | linktype::LINUX_SLL2) {
            return None;
        }
        let ticks_per_micro = if header.ts_resolution == TsResolution::NanoSecond { 1000 } else { 1 };
        // libpcap reads a file whose snap length is 0 or past its maximum up to its maximum.
        let snapshot =
            if header.snaplen == 0 || header.snaplen > MAX_RECORD { MAX_RECORD } else { header.snaplen };
        Some(Self {
            file,
            parser,
            buf: vec![0; PCAP_BUFFER],
            pos: 0,
            len: 0,
            eof: false,
            big_endian,
            linktype,
            ticks_per_micro,
            snapshot,
        })
    }

    /// The next record to `take`, with its captured length in the file; `None` at the end.
    fn next<R>(
        &mut self,
        take: impl FnOnce(Frame<'_>) -> R,
    ) -> Result<Option<(R, u32)>, (&'static str, String)> {
        let mut take = Some(take);
        loop {
            let unread = self.buf.get(self.pos..self.len).unwrap_or_default();
            // The captured length of a whole record header is checked before the record's bytes
            // are waited for (a header cut short is a truncated file, as libpcap says).
            if let Some(field) =
                unread.get(8..12).filter(|_| unread.len() >= 16).and_then(|b| <[u8; 4]>::try_from(b).ok())
            {
                let incl =
                    if self.big_endian { u32::from_be_bytes(field) } else { u32::from_le_bytes(field) };
                if incl > MAX_RECORD {
                    return Err((
                        "read",
                        format!("invalid record: captured length {incl} is over the maximum of {MAX_RECORD}"),
                    ));
                }
            }
            let step = match self.parser.next_raw_packet(unread) {
                Ok((rest, record)) => {
                    let consumed = unread.len() - rest.len();
                    // Both fields unsigned, as libpcap reads them since 1.10.5 (1.10.0-1.10.4 read
                    // them signed: a time past 2038, or a damaged fraction of 2^31 or more, differs
                    // from those); a fraction of a second or more is added as it is.
                    let ts = u64::from(record.ts_sec)
                        .saturating_mul(1_000_000)
                        .saturating_add(u64::from(record.ts_frac / self.ticks_per_micro));
                    // Past the snap length libpcap keeps the first bytes and skips the rest.
                    let keep = usize::try_from(record.incl_len.min(self.snapshot)).unwrap_or(usize::MAX);
                    let data = record.data.get(..keep).unwrap_or(&record.data);
                    let f = Frame { ts, linktype: self.linktype, wire_len: record.orig_len, data };
                    let Some(take) = take.take() else { return Ok(None) };
                    Step::Record { consumed, taken: take(f), len: record.incl_len }
                }
                Err(pcap_file::PcapError::IncompleteBuffer) => Step::More,
                Err(e) => return Err(("read", format!("cannot read the capture: {e}"))),
            };
            match step {
                Step::Record { consumed, taken, len } => {
                    self.pos += consumed;
                    return Ok(Some((taken, len)));
                }
                Step::More if self.eof => {
                    return if self.pos == self.len {
                        Ok(None)
                    } else {
                        Err(("truncated", "truncated capture: its last record is cut short".to_string()))
                    };
                }
                Step::More => self.fill()?,
            }
        }
    }

    /// Moves the unread bytes to the front and reads more after them.
    fn fill(&mut self) -> Result<(), (&'static str, String)> {
        self.buf.copy_within(self.pos..self.len, 0);
        self.len -= self.pos;
        self.pos = 0;
        let Some(room) = self.buf.get_mut(self.len..).filter(|r| !r.is_empty()) else {
            // Cannot happen: a record is at most MAX_RECORD + 16 bytes and the buffer holds it.
            return Err(("read", "a record larger than the read buffer".to_string()));
        };
        loop {
            match self.file.read(room) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.len += n;
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(("read", format!("cannot read the capture: {e}"))),
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        /// Files the tests opened that the pcap reader (not libpcap) read.
        static READ_BY_US: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// Every frame of a file through libpcap directly: the oracle the pcap reader is held to.
    fn libpcap_frames(path: &Path) -> (Vec<RawPacket>, Option<String>) {
        let mut cap = pcap::Capture::from_file(path).expect("libpcap opens it");
        let lt = cap.get_datalink().0;
        let mut out = Vec::new();
        loop {
            match cap.next_packet() {
                Ok(p) => out.push(frame(&p, lt).to_owned()),
                Err(pcap::Error::NoMorePackets) => return (out, None),
                Err(e) => return (out, Some(e.to_string())),
            }
        }
    }

    fn our_frames(path: &Path) -> (Vec<RawPacket>, Option<CaptureError>) {
        let mut src = Source::file(path).expect("opens");
        READ_BY_US.with(|n| n.set(n.get() + usize::from(matches!(src.kind, Kind::Pcap(_)))));
        let mut out = Vec::new();
        loop {
            match src.next_packet() {
                Ok(Next::Packet(p)) => out.push(p),
                Ok(_) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    /// The file with every header field in the other byte order.
    fn byte_swapped(pcap: &[u8]) -> Vec<u8> {
        let mut out = pcap.to_vec();
        let swap = |b: &mut [u8]| b.reverse();
        swap(&mut out[0..4]);
        swap(&mut out[4..6]);
        swap(&mut out[6..8]);
        for at in [8, 12, 16, 20] {
            swap(&mut out[at..at + 4]);
        }
        let mut at = 24;
        while at + 16 <= out.len() {
            let len = u32::from_le_bytes(out[at + 8..at + 12].try_into().expect("4 bytes")) as usize;
            for f in 0..4 {
                swap(&mut out[at + 4 * f..at + 4 * f + 4]);
            }
            at += 16 + len;
        }
        out
    }

    /// The file with nanosecond times (the same instants).
    fn nanosecond(pcap: &[u8]) -> Vec<u8> {
        let mut out = pcap.to_vec();
        out[0..4].copy_from_slice(&0xa1b2_3c4du32.to_le_bytes());
        let mut at = 24;
        while at + 16 <= out.len() {
            let frac = u32::from_le_bytes(out[at + 4..at + 8].try_into().expect("4 bytes"));
            out[at + 4..at + 8].copy_from_slice(&(frac * 1000 + 999).to_le_bytes());
            let len = u32::from_le_bytes(out[at + 8..at + 12].try_into().expect("4 bytes")) as usize;
            at += 16 + len;
        }
        out
    }

    #[test]
    fn the_pcap_reader_gives_what_libpcap_gives() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut files = 0;
        for path in crate::capture::repository_captures() {
            let bytes = std::fs::read(&path).unwrap_or_default();
            // Little-endian microsecond files, as the repository's captures are.
            if path.extension().is_none_or(|x| x != "pcap")
                || bytes.get(..4) != Some(&[0xd4, 0xc3, 0xb2, 0xa1])
            {
                continue;
            }
            files += 1;
            let swapped = dir.path().join("swapped.pcap");
            std::fs::write(&swapped, byte_swapped(&bytes)).expect("write");
            let nano = dir.path().join("nano.pcap");
            std::fs::write(&nano, nanosecond(&bytes)).expect("write");
            for p in [path.as_path(), &swapped, &nano] {
                let (want, want_err) = libpcap_frames(p);
                let (got, got_err) = our_frames(p);
                assert_eq!(got.len(), want.len(), "{}", path.display());
                // libpcap reports a file's LINKTYPE_RAW (101) as this platform's DLT_RAW (12);
                // the reader keeps the file's value, which the evidence files then carry.
                let same = |a: &RawPacket, b: &RawPacket| {
                    let link = a.linktype == b.linktype
                        || (a.linktype == linktype::RAW && b.linktype == linktype::RAW_BSD);
                    link && (a.ts, a.wire_len, &a.data) == (b.ts, b.wire_len, &b.data)
                };
                if let Some(i) = (0..got.len()).find(|i| !same(&got[*i], &want[*i])) {
                    panic!(
                        "{} ({}): frame {i} differs: ours {:?} / libpcap {:?}",
                        path.display(),
                        p.display(),
                        (
                            got[i].ts,
                            got[i].linktype,
                            got[i].wire_len,
                            &got[i].data[..got[i].data.len().min(24)]
                        ),
                        (
                            want[i].ts,
                            want[i].linktype,
                            want[i].wire_len,
                            &want[i].data[..want[i].data.len().min(24)]
                        ),
                    );
                }
                assert_eq!(
                    got_err.is_some(),
                    want_err.is_some(),
                    "{}: {got_err:?} / {want_err:?}",
                    path.display()
                );
            }
        }
        assert!(files > 30, "{files} captures compared");
        // Each file three ways; only a byte-swapped NFLOG capture is left to libpcap.
        assert!(READ_BY_US.with(std::cell::Cell::get) >= 3 * files - 3);
    }

    /// A little-endian microsecond pcap: `version`, `snaplen`, `linktype`, then the records.
    fn pcap_file(version: (u16, u16), snaplen: u32, linktype: u32, records: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        out.extend_from_slice(&version.0.to_le_bytes());
        out.extend_from_slice(&version.1.to_le_bytes());
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&snaplen.to_le_bytes());
        out.extend_from_slice(&linktype.to_le_bytes());
        for (i, (incl, orig, data)) in records.iter().enumerate() {
            out.extend_from_slice(&(i as u32 + 1).to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&incl.to_le_bytes());
            out.extend_from_slice(&orig.to_le_bytes());
            out.extend_from_slice(data);
        }
        out
    }

    /// Files libpcap reads its own way: each is either read as libpcap reads it, or left to it.
    #[test]
    fn snap_length_old_versions_and_link_type_bits_read_as_libpcap_reads_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let frame: Vec<u8> = (0..1514u32).map(|i| i as u8).collect();
        let cases: [(&str, Vec<u8>, bool); 4] = [
            // Records longer than the header's snap length: cut to it.
            ("snaplen", pcap_file((2, 4), 96, 1, &[(1514, 1514, &frame), (60, 60, &frame[..60])]), true),
            // Version 2.2, whose length fields libpcap swaps: left to libpcap.
            ("old", pcap_file((2, 2), 65535, 1, &[(1514, 60, &frame[..60]), (60, 60, &frame[..60])]), false),
            // Ethernet with the FCS-length bits set in the link-type field: left to libpcap.
            ("fcs", pcap_file((2, 4), 65535, 0x2400_0001, &[(60, 60, &frame[..60])]), false),
            // A snap length of 0: records read whole, up to the maximum.
            ("zero", pcap_file((2, 4), 0, 1, &[(1514, 1514, &frame)]), true),
        ];
        for (name, bytes, ours) in cases {
            let path = dir.path().join(format!("{name}.pcap"));
            std::fs::write(&path, bytes).expect("write");
            let src = Source::file(&path).expect("opens");
            assert_eq!(matches!(src.kind, Kind::Pcap(_)), ours, "{name}");
            let (want, want_err) = libpcap_frames(&path);
            let (got, got_err) = our_frames(&path);
            assert!(
                got == want,
                "{name}: {:?} / {:?}",
                got.iter().map(|p| p.data.len()).collect::<Vec<_>>(),
                want.iter().map(|p| p.data.len()).collect::<Vec<_>>()
            );
            assert_eq!(got_err.is_some(), want_err.is_some(), "{name}: {got_err:?} / {want_err:?}");
        }
        let (got, _) = our_frames(&dir.path().join("snaplen.pcap"));
        assert_eq!(
            got.iter().map(|p| (p.data.len(), p.wire_len)).collect::<Vec<_>>(),
            [(96, 1514), (60, 60)]
        );
    }

    #[test]
    fn a_cut_record_and_an_oversized_one_end_the_file_clearly_after_what_was_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Two records: 24-byte header, then 16 + 60 each.
        let mut pcap = Vec::new();
        pcap.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        pcap.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        pcap.extend_from_slice(&65_535u32.to_le_bytes());
        pcap.extend_from_slice(&1u32.to_le_bytes());
        for i in 0..2u8 {
            pcap.extend_from_slice(&[i, 0, 0, 0, 0, 0, 0, 0]);
            pcap.extend_from_slice(&60u32.to_le_bytes());
            pcap.extend_from_slice(&60u32.to_le_bytes());
            pcap.extend_from_slice(&[0u8; 60]);
        }
        let cut = dir.path().join("cut.pcap");
        std::fs::write(&cut, &pcap[..pcap.len() - 10]).expect("write");
        let (got, err) = our_frames(&cut);
        assert_eq!(got.len(), 1);
        let err = err.expect("an error");
        assert_eq!(err.reason, "truncated");
        assert!(err.message.contains("the packets before it were analysed"), "{}", err.message);
        // The second record claims 4 GiB: refused at once, nothing allocated for it.
        let huge = dir.path().join("huge.pcap");
        let mut h = pcap.clone();
        h[24 + 76 + 8..24 + 76 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        std::fs::write(&huge, &h).expect("write");
        let (got, err) = our_frames(&huge);
        assert_eq!(got.len(), 1);
        let err = err.expect("an error");
        assert_eq!(err.reason, "read", "{}", err.message);
        assert!(err.message.contains("over the maximum"), "{}", err.message);
        // A file ending inside a record header that claims a huge length: truncated, as
        // libpcap says, not oversized.
        let tail = dir.path().join("tail.pcap");
        let mut t = pcap[..24 + 76].to_vec();
        t.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
        t.extend_from_slice(&0x0010_0000u32.to_le_bytes());
        std::fs::write(&tail, &t).expect("write");
        let (got, err) = our_frames(&tail);
        assert_eq!(got.len(), 1);
        assert_eq!(err.expect("an error").reason, "truncated");
        assert!(libpcap_frames(&tail).1.is_some_and(|e| e.contains("truncated")));
        // Just over libpcap's maximum, with the bytes there: refused as libpcap refuses it.
        let big = dir.path().join("big.pcap");
        let mut b = pcap[..24 + 76].to_vec();
        b.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
        b.extend_from_slice(&(MAX_RECORD + 1).to_le_bytes());
        b.extend_from_slice(&(MAX_RECORD + 1).to_le_bytes());
        b.extend(std::iter::repeat_n(0u8, MAX_RECORD as usize + 1));
        std::fs::write(&big, &b).expect("write");
        let (got, err) = our_frames(&big);
        assert_eq!(got.len(), 1);
        let err = err.expect("an error");
        assert_eq!(err.reason, "read");
        assert!(err.message.contains("over the maximum"), "{}", err.message);
        assert!(libpcap_frames(&big).1.is_some(), "libpcap refuses it too");
    }
}
