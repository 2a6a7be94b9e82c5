//! The per-worker recorder: a byte-bounded ring of recent flow packets, and the captures it is
//! writing for alerts that asked.

use crate::model::FastMap as HashMap;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::model::evidence::{EvidenceOutcome, EvidenceRequest};
use crate::model::packet::{Frame, RawPacket};
use crate::model::time::Micros;

use super::closer::Closer;
use super::writer::*;

/// Bytes kept of each packet in an evidence file (the pcap header's snaplen); longer packets
/// are cut, their original length kept.
pub(super) const SNAPLEN: u32 = 65_535;

/// Link type written for a capture that never saw a packet.
pub(super) const LINKTYPE_ETHERNET: i32 = 1;

/// Longest alert id: `<id>.pcap.part` stays well under NAME_MAX (255 bytes).
pub(super) const MAX_ID_LEN: usize = 200;

/// What a ring entry costs besides its packet data.
pub(super) const ENTRY_OVERHEAD: usize = std::mem::size_of::<(u64, RawPacket)>();

pub(super) const INVALID_ID: &str =
    "invalid evidence id: 1 to 200 of A-Z a-z 0-9 . _ -, not starting with a dot";

/// The `evidence` section of the config file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EvidenceConfig {
    /// Write a pcap of the triggering flow for each alert.
    pub enabled: bool,
    /// Where the captures go; created with mode 0700 when missing.
    pub dir: PathBuf,
    /// Recent packets remembered per worker for the part before the alert, bytes (packet data
    /// plus about 50 bytes of bookkeeping each).
    pub ring_bytes: usize,
    /// Most packets of the flow taken from before the alert (the most recent).
    pub packets_before: usize,
    /// Packets of the flow captured after the alert; the capture then finishes.
    pub packets_after: usize,
    /// A capture also finishes when its flow sends nothing for this long (packet time).
    #[serde(with = "humantime_serde")]
    pub after_timeout: Duration,
    /// Oldest captures are removed beyond this total size.
    pub max_total_bytes: u64,
    /// Captures older than this are removed.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// Captures being written at once per worker; requests beyond it are skipped (`busy`).
    pub max_open: usize,
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            dir: PathBuf::from("var/evidence"),
            ring_bytes: 32 << 20,
            packets_before: 64,
            packets_after: 32,
            after_timeout: Duration::from_secs(10),
            max_total_bytes: 1 << 30,
            max_age: Duration::from_secs(30 * 24 * 3600),
            max_open: 64,
        }
    }
}

/// One worker's evidence: the ring of its recent flow packets and the captures it is writing.
pub struct EvidenceRecorder {
    pub(super) cfg: EvidenceConfig,
    pub(super) after_timeout: Micros,
    pub(super) ring: VecDeque<(u64, RawPacket)>,
    /// What the ring holds, as counted against `ring_bytes`.
    pub(super) ring_cost: usize,
    /// In request order; at most `max_open`.
    pub(super) open: Vec<Capture>,
    /// Open captures per flow, so a packet of any other flow costs one lookup.
    pub(super) open_flows: HashMap<u64, usize>,
    /// No open capture goes idle before this; may be early, never late.
    pub(super) next_deadline: Micros,
    /// Where finished captures are flushed, fsynced and published: a thread of their own
    /// (`in_background`), or inline.
    closer: Option<Closer>,
}

impl EvidenceRecorder {
    pub fn new(cfg: &EvidenceConfig) -> Self {
        Self {
            cfg: cfg.clone(),
            after_timeout: micros(cfg.after_timeout),
            ring: VecDeque::new(),
            ring_cost: 0,
            open: Vec::new(),
            open_flows: HashMap::default(),
            next_deadline: Micros::MAX,
            closer: None,
        }
    }

    /// Finishes captures (flush, fsync, publish) on a thread of their own, so a slow disk never
    /// stalls the packet worker; outcomes are collected on the recorder's next call. Stays
    /// inline if the thread cannot be started.
    pub fn in_background(mut self) -> Self {
        match Closer::start() {
            Ok(c) => self.closer = Some(c),
            Err(e) => tracing::warn!("Evidence captures are finished on the packet worker: no thread: {e}."),
        }
        self
    }

    /// A finished capture: closed in the background, or here.
    fn close(&mut self, cap: Capture, out: &mut Vec<EvidenceOutcome>) {
        match &mut self.closer {
            Some(c) => c.close(cap, out),
            None => out.push(cap.finish()),
        }
    }

    /// Outcomes of captures closed in the background since the last call.
    fn collect(&mut self, out: &mut Vec<EvidenceOutcome>) {
        if let Some(c) = &mut self.closer {
            if c.pending > 0 {
                c.collect(out);
            }
        }
    }

    fn closing(&self) -> usize {
        self.closer.as_ref().map_or(0, |c| c.pending)
    }

    /// Every packet the worker handled, with its flow (`None` when not flow-tracked, and then
    /// not kept). The packet is moved into the ring. Pushes the outcomes of captures this
    /// packet finished: its flow's after-budget reached, or others idle past `after_timeout`
    /// by its timestamp.
    pub fn packet(&mut self, flow_id: Option<u64>, p: &Frame<'_>, out: &mut Vec<EvidenceOutcome>) {
        if !self.cfg.enabled {
            return;
        }
        self.collect(out);
        // Each time is taken as it comes, not as a running maximum: one packet with a wild
        // timestamp may end the open captures, but cannot end every later one.
        if p.ts >= self.next_deadline {
            self.expire(p.ts, out);
        }
        let Some(flow) = flow_id else { return };
        if self.open_flows.contains_key(&flow) {
            self.feed(flow, p, out);
        }
        self.remember(flow, p.to_owned());
    }

    /// An alert asked for evidence: writes the ring's packets of the flow (the last
    /// `packets_before` up to `req.ts`, and any after it toward `packets_after`), then keeps
    /// the capture open for the rest of the flow's next `packets_after` packets.
    pub fn request(&mut self, req: EvidenceRequest, out: &mut Vec<EvidenceOutcome>) {
        let EvidenceRequest { id, flow_id, ts } = req;
        self.collect(out);
        if !self.cfg.enabled {
            out.push(EvidenceOutcome::Skipped { id, reason: "disabled" });
            return;
        }
        if !valid_id(&id) {
            out.push(EvidenceOutcome::Failed { id, error: INVALID_ID.to_string() });
            return;
        }
        if self.open.len() + self.closing() >= self.cfg.max_open {
            out.push(EvidenceOutcome::Skipped { id, reason: "busy" });
            return;
        }
        let mut cap = match Capture::create(&self.cfg.dir, id, flow_id, ts, self.cfg.packets_after) {
            Ok(cap) => cap,
            Err((id, error)) => {
                out.push(EvidenceOutcome::Failed { id, error });
                return;
            }
        };
        // The request reaches the worker after the alert's packet, so the ring may already hold
        // packets from after it: those are the first of the "after" part.
        let mut before = Vec::new();
        let mut after = Vec::new();
        for (f, p) in self.ring.iter().rev() {
            if *f != flow_id {
                continue;
            }
            if before.is_empty() && p.ts > ts {
                after.push(p);
            } else if before.len() < self.cfg.packets_before {
                before.push(p);
            } else {
                break;
            }
        }
        let after_taken = after.len().min(self.cfg.packets_after);
        let from_ring = before.iter().rev().chain(after.iter().rev().take(after_taken));
        let written = from_ring.map(|p| cap.write(&p.frame())).find(Result::is_err).unwrap_or(Ok(()));
        cap.after_left = self.cfg.packets_after - after_taken;
        match written {
            Err(e) => out.push(cap.abandon(e)),
            Ok(()) if cap.after_left == 0 => self.close(cap, out),
            Ok(()) => {
                *self.open_flows.entry(flow_id).or_default() += 1;
                self.next_deadline = self.next_deadline.min(cap.deadline(self.after_timeout));
                self.open.push(cap);
            }
        }
    }

    /// The flow ended (the flow table evicted it): finishes its open captures.
    pub fn flow_ended(&mut self, flow_id: u64, out: &mut Vec<EvidenceOutcome>) {
        self.collect(out);
        if self.open_flows.contains_key(&flow_id) {
            self.finish_where(|c| c.flow_id == flow_id, out);
        }
    }

    /// Time passes (packet time, or wall-clock from a quiet live source): finishes captures
    /// whose flow has been idle for `after_timeout`.
    pub fn tick(&mut self, now: Micros, out: &mut Vec<EvidenceOutcome>) {
        self.collect(out);
        if now >= self.next_deadline {
            self.expire(now, out);
        }
    }

    /// End of run: finishes every open capture.
    pub fn finish(&mut self, out: &mut Vec<EvidenceOutcome>) {
        self.finish_where(|_| true, out);
        if let Some(c) = &mut self.closer {
            c.wait(out);
        }
    }

    /// Memory the ring holds, as counted against `ring_bytes`.
    pub fn ring_bytes(&self) -> usize {
        self.ring_cost
    }

    pub fn ring_packets(&self) -> usize {
        self.ring.len()
    }

    /// Captures being written.
    pub fn open_captures(&self) -> usize {
        self.open.len()
    }

    pub(super) fn remember(&mut self, flow: u64, p: RawPacket) {
        let needed = cost(&p);
        if needed > self.cfg.ring_bytes {
            return;
        }
        while self.ring_cost.saturating_add(needed) > self.cfg.ring_bytes {
            match self.ring.pop_front() {
                Some((_, old)) => self.ring_cost -= cost(&old),
                None => break,
            }
        }
        self.ring_cost += needed;
        self.ring.push_back((flow, p));
    }

    /// Writes a packet of `flow` to its open captures, finishing those it completes.
    pub(super) fn feed(&mut self, flow: u64, p: &Frame<'_>, out: &mut Vec<EvidenceOutcome>) {
        let mut i = 0;
        while let Some(cap) = self.open.get_mut(i) {
            if cap.flow_id != flow {
                i += 1;
                continue;
            }
            let written = cap.write(p);
            cap.after_left = cap.after_left.saturating_sub(1);
            if written.is_ok() && cap.after_left > 0 {
                i += 1;
                continue;
            }
            let cap = self.open.remove(i);
            self.forget(flow);
            match written {
                Ok(()) => self.close(cap, out),
                Err(e) => out.push(cap.abandon(e)),
            }
        }
    }

    pub(super) fn expire(&mut self, now: Micros, out: &mut Vec<EvidenceOutcome>) {
        let timeout = self.after_timeout;
        self.finish_where(|c| now >= c.deadline(timeout), out);
        self.next_deadline = self.open.iter().map(|c| c.deadline(timeout)).min().unwrap_or(Micros::MAX);
    }

    pub(super) fn finish_where(&mut self, done: impl Fn(&Capture) -> bool, out: &mut Vec<EvidenceOutcome>) {
        let (finished, open): (Vec<_>, Vec<_>) = std::mem::take(&mut self.open).into_iter().partition(done);
        self.open = open;
        for cap in finished {
            self.forget(cap.flow_id);
            self.close(cap, out);
        }
        if self.open.is_empty() {
            self.next_deadline = Micros::MAX;
        }
    }

    pub(super) fn forget(&mut self, flow: u64) {
        if let Some(n) = self.open_flows.get_mut(&flow) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.open_flows.remove(&flow);
            }
        }
    }
}

impl Drop for EvidenceRecorder {
    /// Captures still open are finished rather than left as `.part` files nothing removes.
    fn drop(&mut self) {
        let mut out = Vec::new();
        self.finish(&mut out);
        for o in out {
            match o {
                EvidenceOutcome::Written(d) => tracing::warn!(
                    id = %d.id,
                    path = %d.path.display(),
                    sha256 = %d.sha256,
                    "Evidence capture finished when its recorder was dropped, so not reported."
                ),
                other => tracing::warn!(id = %other.id(), "Evidence capture lost at drop: {other:?}."),
            }
        }
    }
}

pub(super) fn cost(p: &RawPacket) -> usize {
    ENTRY_OVERHEAD.saturating_add(p.data.capacity())
}

pub(super) fn micros(d: Duration) -> Micros {
    Micros::try_from(d.as_micros()).unwrap_or(Micros::MAX)
}

/// Only these make it into a file name: no separators, no `..`, no hidden files.
pub(super) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && !id.starts_with('.')
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use std::fs::{self, File};
    use std::io::{self, Write};
    use std::path::Path;
    use std::time::SystemTime;

    use super::super::retention::{prune, remove_partials, PruneStats};
    use super::*;
    use crate::model::evidence::EvidenceDone;
    use std::os::unix::fs::PermissionsExt;

    use pcap_file::pcap::PcapReader;
    use pcap_file::TsResolution;
    use sha2::{Digest, Sha256};

    const S: u64 = 1_000_000;

    /// A packet whose bytes name its flow and time, so any mix-up shows.
    fn pkt(flow: u64, ts: u64) -> RawPacket {
        let mut data = flow.to_be_bytes().to_vec();
        data.extend_from_slice(&ts.to_be_bytes());
        data.extend((0..(ts % 50) as u8).map(|i| i ^ 0x5a));
        let wire_len = data.len() as u32 + (ts % 3) as u32;
        RawPacket { ts, linktype: 1, wire_len, data }
    }

    fn config(dir: &Path) -> EvidenceConfig {
        EvidenceConfig {
            dir: dir.join("evidence"),
            packets_before: 3,
            packets_after: 2,
            after_timeout: Duration::from_secs(10),
            ..EvidenceConfig::default()
        }
    }

    fn req(id: &str, flow_id: u64, ts: u64) -> EvidenceRequest {
        EvidenceRequest { id: id.to_string(), flow_id, ts }
    }

    fn written(o: &EvidenceOutcome) -> &EvidenceDone {
        match o {
            EvidenceOutcome::Written(d) => d,
            other => panic!("not written: {other:?}"),
        }
    }

    /// (timestamp, orig_len, data) of each packet, and the link type.
    fn read_back(path: &Path) -> (u32, Vec<(Duration, u32, Vec<u8>)>) {
        let mut r = PcapReader::new(File::open(path).unwrap()).unwrap();
        let lt = r.header().datalink.into();
        assert_eq!(r.header().snaplen, 65_535);
        assert_eq!(r.header().ts_resolution, TsResolution::MicroSecond);
        let mut v = Vec::new();
        while let Some(p) = r.next_packet() {
            let p = p.unwrap();
            v.push((p.timestamp, p.orig_len, p.data.to_vec()));
        }
        (lt, v)
    }

    fn expected(ps: &[RawPacket]) -> Vec<(Duration, u32, Vec<u8>)> {
        ps.iter().map(|p| (Duration::from_micros(p.ts), p.wire_len, p.data.clone())).collect()
    }

    fn sha256_of(path: &Path) -> String {
        hex(Sha256::digest(fs::read(path).unwrap()).as_slice())
    }

    /// In the background the worker only hands the capture over: its outcome comes on a later
    /// call (or at the end), the file is whole and its hash right, and captures still closing
    /// count against `max_open`.
    #[test]
    fn captures_are_finished_off_the_worker_and_collected_later() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = EvidenceConfig { packets_after: 1, max_open: 1, ..config(tmp.path()) };
        let mut rec = EvidenceRecorder::new(&cfg).in_background();
        let mut out = Vec::new();
        rec.packet(Some(7), &pkt(7, 100 * S).frame(), &mut out);
        rec.request(req("b1", 7, 100 * S), &mut out);
        // The next packet of the flow completes it: handed to the closer, not finished here.
        rec.packet(Some(7), &pkt(7, 100 * S + 1).frame(), &mut out);
        assert_eq!(rec.open_captures(), 0);
        let closing = rec.closing();
        assert!(out.len() + closing == 1, "{out:?} {closing}");
        if closing == 1 {
            // Still closing: a second request finds the recorder busy.
            rec.request(req("b2", 7, 100 * S + 2), &mut out);
            let busy = out
                .iter()
                .any(|o| matches!(o, EvidenceOutcome::Skipped { id, reason: "busy" } if id == "b2"));
            // Unless the closer finished in between and the outcome was collected first.
            assert!(
                busy || out.iter().any(|o| matches!(o, EvidenceOutcome::Written(d) if d.id == "b1")),
                "{out:?}"
            );
        }
        rec.finish(&mut out);
        assert_eq!(rec.closing(), 0);
        let done = out.iter().find_map(|o| match o {
            EvidenceOutcome::Written(d) if d.id == "b1" => Some(d),
            _ => None,
        });
        let done = done.unwrap_or_else(|| panic!("b1 never reported: {out:?}"));
        assert_eq!(done.packets, 2);
        assert_eq!(done.sha256, sha256_of(&done.path));
        assert!(!tmp.path().join("evidence/b1.pcap.part").exists());
    }

    #[test]
    fn request_writes_its_flows_recent_packets_then_the_next_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let mut rec = EvidenceRecorder::new(&config(tmp.path()));
        let mut out = Vec::new();
        let mut flow7 = Vec::new();
        for i in 0..6u64 {
            let p = pkt(7, 100 * S + i * 1000 + 1);
            flow7.push(p.clone());
            rec.packet(Some(7), &p.frame(), &mut out);
            rec.packet(Some(8), &pkt(8, 100 * S + i * 1000 + 2).frame(), &mut out);
            rec.packet(None, &pkt(7, 100 * S + i * 1000 + 3).frame(), &mut out);
        }
        rec.request(req("a1", 7, 100 * S + 5001), &mut out);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(rec.open_captures(), 1);
        let part = tmp.path().join("evidence/a1.pcap.part");
        assert!(part.exists());

        for i in 6..9u64 {
            rec.packet(Some(8), &pkt(8, 100 * S + i * 1000 + 2).frame(), &mut out);
            let p = pkt(7, 100 * S + i * 1000 + 1);
            if i < 8 {
                flow7.push(p.clone());
            }
            rec.packet(Some(7), &p.frame(), &mut out);
            assert_eq!(out.len(), usize::from(i >= 7), "after packet {i}: {out:?}");
        }
        let done = written(&out[0]);
        assert_eq!(done.id, "a1");
        assert_eq!(done.path, tmp.path().join("evidence/a1.pcap"));
        assert_eq!((done.packets, done.skipped), (5, 0));
        assert!(!part.exists());
        assert_eq!(rec.open_captures(), 0);
        assert_eq!(done.bytes, fs::metadata(&done.path).unwrap().len());

        let (lt, got) = read_back(&done.path);
        assert_eq!(lt, 1);
        // The three most recent before the alert (3, 4, 5), then the next two (6, 7).
        assert_eq!(got, expected(&flow7[3..8]));
        assert!(got.iter().any(|(_, orig, data)| *orig as usize > data.len()), "a snapped packet is covered");
    }

    #[test]
    fn ring_packets_newer_than_the_alert_count_as_after() {
        let tmp = tempfile::tempdir().unwrap();
        let mut rec = EvidenceRecorder::new(&config(tmp.path()));
        let mut out = Vec::new();
        let ps: Vec<_> = (1..=6).map(|i| pkt(3, i * S)).collect();
        for p in &ps {
            rec.packet(Some(3), &p.frame(), &mut out);
        }
        // The alert was raised on packet 4; by the time the request arrives 5 and 6 are in.
        rec.request(req("late", 3, 4 * S), &mut out);
        assert_eq!(out.len(), 1, "finished from the ring alone: {out:?}");
        let (_, got) = read_back(&written(&out[0]).path);
        assert_eq!(got, expected(&ps[1..6]));
    }

    #[test]
    fn sha256_is_that_of_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let mut rec = EvidenceRecorder::new(&config(tmp.path()));
        let mut out = Vec::new();
        for i in 0..4 {
            rec.packet(Some(1), &pkt(1, S + i).frame(), &mut out);
        }
        rec.request(req("h", 1, S + 3), &mut out);
        rec.request(req("empty", 99, S + 3), &mut out);
        rec.finish(&mut out);
        assert_eq!(out.len(), 2);
        for o in &out {
            let d = written(o);
            assert_eq!(d.sha256.len(), 64);
            assert_eq!(d.sha256, sha256_of(&d.path), "{}", d.id);
        }
        assert_ne!(written(&out[0]).sha256, written(&out[1]).sha256);
        // No packets: a valid pcap of just the header.
        let empty = written(&out[1]);
        assert_eq!((empty.packets, empty.bytes), (0, 24));
        assert_eq!(read_back(&empty.path), (1, Vec::new()));
    }

    #[test]
    fn file_is_0600_in_a_0700_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let mut cfg = config(tmp.path());
        cfg.dir = tmp.path().join("var/evidence");
        let mut rec = EvidenceRecorder::new(&cfg);
        let mut out = Vec::new();
        rec.packet(Some(1), &pkt(1, S).frame(), &mut out);
        rec.request(req("m", 1, S), &mut out);
        let part_mode = fs::metadata(cfg.dir.join("m.pcap.part")).unwrap().permissions().mode();
        assert_eq!(part_mode & 0o777, 0o600);
        rec.finish(&mut out);
        let d = written(&out[0]);
        assert_eq!(fs::metadata(&d.path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(&cfg.dir).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(fs::metadata(tmp.path().join("var")).unwrap().permissions().mode() & 0o777, 0o700);
    }

    #[test]
    fn a_trickling_flow_holds_its_alert_three_timeouts_at_most() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut rec = EvidenceRecorder::new(&EvidenceConfig { packets_after: 32, ..config(dir.path()) });
        let mut out = Vec::new();
        rec.request(req("trickle", 1, 0), &mut out);
        // A packet every 9 s (under the 10 s idle timeout) would keep it open 32 × 9 s.
        for i in 1..=3u64 {
            rec.packet(Some(1), &pkt(1, i * 9 * S).frame(), &mut out);
        }
        assert!(out.is_empty(), "{out:?}");
        rec.packet(Some(1), &pkt(1, 30 * S).frame(), &mut out);
        assert_eq!(out.len(), 1, "ended at 3 × 10 s");
        assert_eq!(written(&out[0]).id, "trickle");
    }

    #[test]
    fn flow_end_idle_time_and_finish_close_captures_early() {
        let tmp = tempfile::tempdir().unwrap();
        let mut rec = EvidenceRecorder::new(&config(tmp.path()));
        let mut out = Vec::new();
        rec.packet(Some(1), &pkt(1, 10 * S).frame(), &mut out);
        rec.packet(Some(2), &pkt(2, 10 * S).frame(), &mut out);
        rec.request(req("ended", 1, 10 * S), &mut out);
        rec.request(req("idle", 2, 10 * S), &mut out);
        rec.packet(Some(2), &pkt(2, 12 * S).frame(), &mut out);

        rec.flow_ended(3, &mut out);
        assert!(out.is_empty());
        rec.flow_ended(1, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((written(&out[0]).id.as_str(), written(&out[0]).packets), ("ended", 1));
        out.clear();

        // Flow 2 last spoke at 12 s: idle from 22 s.
        rec.tick(22 * S - 1, &mut out);
        assert!(out.is_empty());
        rec.tick(22 * S, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((written(&out[0]).id.as_str(), written(&out[0]).packets), ("idle", 2));
        out.clear();

        // Packet time of another flow ends an idle capture too (a replay has no ticks).
        rec.request(req("by-packet", 1, 30 * S), &mut out);
        rec.packet(Some(5), &pkt(5, 40 * S - 1).frame(), &mut out);
        assert!(out.is_empty());
        rec.packet(Some(5), &pkt(5, 40 * S).frame(), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(written(&out[0]).id, "by-packet");
        out.clear();

        rec.request(req("f1", 1, 50 * S), &mut out);
        rec.request(req("f2", 2, 50 * S), &mut out);
        rec.request(req("f3", 2, 50 * S), &mut out);
        assert_eq!(rec.open_captures(), 3);
        rec.finish(&mut out);
        let ids: Vec<_> = out.iter().map(|o| written(o).id.as_str()).collect();
        assert_eq!(ids, ["f1", "f2", "f3"]);
        assert_eq!(rec.open_captures(), 0);
        assert!(tmp.path().join("evidence/f3.pcap").exists());
    }

    #[test]
    fn a_wild_timestamp_does_not_end_later_captures() {
        let tmp = tempfile::tempdir().unwrap();
        let mut rec = EvidenceRecorder::new(&config(tmp.path()));
        let mut out = Vec::new();
        rec.request(req("w1", 1, 10 * S), &mut out);
        rec.packet(Some(2), &pkt(2, u64::MAX).frame(), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(written(&out[0]).id, "w1");
        out.clear();
        rec.request(req("w2", 1, 11 * S), &mut out);
        rec.packet(Some(2), &pkt(2, 12 * S).frame(), &mut out);
        rec.tick(12 * S, &mut out);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(rec.open_captures(), 1);
    }

    #[test]
    fn two_captures_of_one_flow_each_get_its_packets() {
        let tmp = tempfile::tempdir().unwrap();
        let mut rec = EvidenceRecorder::new(&config(tmp.path()));
        let mut out = Vec::new();
        rec.request(req("x1", 4, S), &mut out);
        rec.request(req("x2", 4, S), &mut out);
        let ps = [pkt(4, 2 * S), pkt(4, 3 * S)];
        rec.packet(Some(4), &ps[0].clone().frame(), &mut out);
        rec.packet(Some(4), &ps[1].clone().frame(), &mut out);
        assert_eq!(out.len(), 2);
        for o in &out {
            assert_eq!(read_back(&written(o).path).1, expected(&ps));
        }
        rec.packet(Some(4), &pkt(4, 4 * S).frame(), &mut out);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn ring_stays_within_its_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let mut cfg = config(tmp.path());
        cfg.ring_bytes = 20_000;
        let mut rec = EvidenceRecorder::new(&cfg);
        let mut out = Vec::new();
        rec.packet(Some(1_000), &pkt(1_000, S).frame(), &mut out);
        for i in 0..20_000u64 {
            let mut p = pkt(i % 7, S + i);
            p.data.resize(((i * 7919) % 1600) as usize, 0xab);
            p.data.shrink_to_fit();
            rec.packet(Some(i % 7), &p.frame(), &mut out);
            assert!(rec.ring_bytes() <= 20_000, "packet {i}: {}", rec.ring_bytes());
        }
        assert!(rec.ring_bytes() > 15_000, "the ring is used: {}", rec.ring_bytes());
        assert!(rec.ring_packets() > 10 && rec.ring_packets() < 200, "{}", rec.ring_packets());
        let recount: usize = rec.ring.iter().map(|(_, p)| cost(p)).sum();
        assert_eq!(recount, rec.ring_bytes());
        // Too big to keep: not kept, and nothing evicted for it.
        let before = (rec.ring_packets(), rec.ring_bytes());
        rec.packet(
            Some(1),
            &RawPacket { ts: 2 * S, linktype: 1, wire_len: 30_000, data: vec![0; 30_000] }.frame(),
            &mut out,
        );
        assert_eq!((rec.ring_packets(), rec.ring_bytes()), before);
        // Early packets are gone: a flow seen only then has nothing left to write.
        rec.request(req("gone", 1_000, 2 * S), &mut out);
        rec.finish(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(written(&out[0]).packets, 0);
    }

    #[test]
    fn ring_is_not_kept_for_unflowed_packets_or_when_disabled() {
        let tmp = tempfile::tempdir().unwrap();
        let mut rec = EvidenceRecorder::new(&config(tmp.path()));
        let mut out = Vec::new();
        rec.packet(None, &pkt(1, S).frame(), &mut out);
        assert_eq!(rec.ring_packets(), 0);

        let mut cfg = config(tmp.path());
        cfg.enabled = false;
        let mut rec = EvidenceRecorder::new(&cfg);
        rec.packet(Some(1), &pkt(1, S).frame(), &mut out);
        rec.request(req("off", 1, S), &mut out);
        assert_eq!(rec.ring_packets(), 0);
        assert_eq!(out, [EvidenceOutcome::Skipped { id: "off".into(), reason: "disabled" }]);
        assert!(!cfg.dir.exists());
    }

    #[test]
    fn bad_ids_are_rejected_without_touching_the_disk() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = config(tmp.path());
        let mut rec = EvidenceRecorder::new(&cfg);
        let mut out = Vec::new();
        let long = "a".repeat(201);
        let bad = ["../x", "", "a/b", "/etc/x", "..", ".hidden", "a\0b", "a b", "é", "a\\b", long.as_str()];
        for id in bad {
            rec.request(req(id, 1, S), &mut out);
        }
        assert_eq!(out.len(), bad.len());
        for (o, id) in out.iter().zip(bad) {
            assert_eq!(o.result(), "failed", "{id:?}");
            assert_eq!(o.id(), id);
        }
        assert_eq!(rec.open_captures(), 0);
        assert!(!cfg.dir.exists());
        assert!(!tmp.path().join("x.pcap.part").exists());
        assert!(valid_id("0123456789abcdef") && valid_id("A.b_c-d") && valid_id(&"a".repeat(200)));
    }

    #[test]
    fn an_existing_file_is_never_overwritten() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = config(tmp.path());
        let mut rec = EvidenceRecorder::new(&cfg);
        let mut out = Vec::new();
        rec.packet(Some(1), &pkt(1, S).frame(), &mut out);
        rec.request(req("dup", 1, S), &mut out);
        rec.finish(&mut out);
        let first = written(&out[0]).clone();
        out.clear();

        rec.packet(Some(1), &pkt(1, 2 * S).frame(), &mut out);
        rec.request(req("dup", 1, 2 * S), &mut out);
        let refused = |o: &[EvidenceOutcome]| match o {
            [EvidenceOutcome::Failed { id, error }] => id == "dup" && error.contains("already exists"),
            _ => false,
        };
        assert!(refused(&out), "{out:?}");
        assert_eq!(sha256_of(&first.path), first.sha256);
        out.clear();

        // The name is taken while the capture is being written: it fails at publication, and
        // the partial file goes.
        rec.request(req("race", 1, 2 * S), &mut out);
        fs::write(cfg.dir.join("race.pcap"), b"someone else's").unwrap();
        rec.finish(&mut out);
        assert!(
            matches!(&out[..], [EvidenceOutcome::Failed { error, .. }] if error.contains("already exists")),
            "{out:?}"
        );
        assert_eq!(fs::read(cfg.dir.join("race.pcap")).unwrap(), b"someone else's");
        assert!(!cfg.dir.join("race.pcap.part").exists());
        out.clear();

        // A leftover partial file with the same name is not reused either.
        fs::write(cfg.dir.join("stale.pcap.part"), b"old").unwrap();
        rec.request(req("stale", 1, 2 * S), &mut out);
        assert_eq!(out[0].result(), "failed");
        assert_eq!(fs::read(cfg.dir.join("stale.pcap.part")).unwrap(), b"old");
    }

    #[test]
    fn io_errors_are_failures_not_panics() {
        let tmp = tempfile::tempdir().unwrap();
        let mut cfg = config(tmp.path());
        cfg.dir = tmp.path().join("a-file");
        fs::write(&cfg.dir, b"").unwrap();
        let mut rec = EvidenceRecorder::new(&cfg);
        let mut out = Vec::new();
        rec.request(req("x", 1, S), &mut out);
        assert!(
            matches!(&out[..], [EvidenceOutcome::Failed { error, .. }] if error.contains("a-file")),
            "{out:?}"
        );
        assert_eq!(rec.open_captures(), 0);
    }

    #[test]
    fn max_open_skips_as_busy() {
        let tmp = tempfile::tempdir().unwrap();
        let mut cfg = config(tmp.path());
        cfg.max_open = 2;
        let mut rec = EvidenceRecorder::new(&cfg);
        let mut out = Vec::new();
        rec.request(req("b1", 1, S), &mut out);
        rec.request(req("b2", 2, S), &mut out);
        rec.request(req("b3", 3, S), &mut out);
        assert_eq!(out, [EvidenceOutcome::Skipped { id: "b3".into(), reason: "busy" }]);
        assert!(!cfg.dir.join("b3.pcap.part").exists());
        rec.flow_ended(1, &mut out);
        rec.request(req("b4", 3, S), &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(rec.open_captures(), 2);
    }

    #[test]
    fn hostile_packets_are_cut_or_skipped_not_fatal() {
        let tmp = tempfile::tempdir().unwrap();
        let mut cfg = config(tmp.path());
        cfg.packets_after = 10;
        // Long enough that a timestamp past 2106 does not end the capture by idleness.
        cfg.after_timeout = Duration::from_secs(u64::from(u32::MAX) * 2);
        let mut rec = EvidenceRecorder::new(&cfg);
        let mut out = Vec::new();
        rec.request(req("h", 1, S), &mut out);
        let jumbo = RawPacket { ts: 2 * S, linktype: 1, wire_len: 70_000, data: vec![7; 70_000] };
        let liar = RawPacket { ts: 3 * S, linktype: 1, wire_len: 2, data: vec![1, 2, 3, 4] };
        let other_link = RawPacket { ts: 4 * S, linktype: 113, wire_len: 4, data: vec![9; 4] };
        let after_2106 = (u64::from(u32::MAX) + 1) * S;
        let far_future = RawPacket { ts: after_2106, linktype: 1, wire_len: 4, data: vec![8; 4] };
        let negative_link = RawPacket { ts: 5 * S, linktype: -1, wire_len: 4, data: vec![6; 4] };
        for p in [jumbo, liar, other_link, far_future, negative_link] {
            rec.packet(Some(1), &p.frame(), &mut out);
        }
        assert!(out.is_empty(), "{out:?}");
        rec.finish(&mut out);
        let d = written(&out[0]);
        assert_eq!((d.packets, d.skipped), (2, 3));
        // pcap-file's reader refuses orig_len > snaplen, which is legal pcap: read the records raw.
        let mut r = PcapReader::new(File::open(&d.path).unwrap()).unwrap();
        let a = r.next_raw_packet().unwrap().unwrap();
        assert_eq!((a.ts_sec, a.incl_len, a.orig_len, a.data.len()), (2, 65_535, 70_000, 65_535));
        let b = r.next_raw_packet().unwrap().unwrap();
        assert_eq!((b.ts_sec, b.incl_len, b.orig_len, &b.data[..]), (3, 4, 4, &[1u8, 2, 3, 4][..]));
        assert!(r.next_raw_packet().is_none());
        assert_eq!(d.sha256, sha256_of(&d.path));
    }

    #[test]
    fn prune_by_age_then_total_size() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000);
        let day = Duration::from_secs(86_400);
        let put = |name: &str, len: usize, age: Duration| {
            let f = File::create(dir.join(name)).unwrap();
            f.set_len(len as u64).unwrap();
            f.set_modified(now - age).unwrap();
        };
        put("old.pcap", 100, 40 * day);
        put("a.pcap", 100, 4 * day);
        put("b.pcap", 100, 3 * day);
        put("c.pcap", 100, 2 * day);
        put("d.pcap", 100, day);
        put("writing.pcap.part", 5_000, 50 * day);
        put("notes.txt", 5_000, 50 * day);
        fs::create_dir(dir.join("sub.pcap")).unwrap();

        let stats = prune(dir, 10_000, 30 * day, now).unwrap();
        assert_eq!(stats, PruneStats { files: 4, bytes: 400, removed: 1 });
        assert!(!dir.join("old.pcap").exists());

        let stats = prune(dir, 250, 30 * day, now).unwrap();
        assert_eq!(stats, PruneStats { files: 2, bytes: 200, removed: 2 });
        assert!(!dir.join("a.pcap").exists() && !dir.join("b.pcap").exists());
        assert!(dir.join("c.pcap").exists() && dir.join("d.pcap").exists());
        assert!(dir.join("writing.pcap.part").exists() && dir.join("notes.txt").exists());
        assert!(dir.join("sub.pcap").is_dir());

        let stats = prune(dir, 200, 30 * day, now).unwrap();
        assert_eq!(stats, PruneStats { files: 2, bytes: 200, removed: 0 });
        assert_eq!(prune(&dir.join("missing"), 0, day, now).unwrap(), PruneStats::default());
    }

    #[test]
    fn partial_files_are_removed_at_start() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        fs::write(dir.join("a.pcap.part"), b"x").unwrap();
        fs::write(dir.join("b.pcap"), b"x").unwrap();
        fs::write(dir.join("c.part"), b"x").unwrap();
        assert_eq!(remove_partials(dir).unwrap(), 1);
        assert!(!dir.join("a.pcap.part").exists());
        assert!(dir.join("b.pcap").exists() && dir.join("c.part").exists());
        assert_eq!(remove_partials(&dir.join("missing")).unwrap(), 0);
    }

    /// Accepts at most 3 bytes a write, then fails once `fail_after` bytes are in.
    struct Stingy {
        got: Vec<u8>,
        fail_after: usize,
    }

    impl Write for Stingy {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.got.len() >= self.fail_after {
                return Err(io::Error::other("disk full"));
            }
            let n = buf.len().min(3);
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_hash_covers_exactly_the_bytes_written() {
        let data: Vec<u8> = (0..=255).collect();
        let mut w = HashingWriter {
            inner: Stingy { got: Vec::new(), fail_after: 1000 },
            hasher: Sha256::new(),
            written: 0,
        };
        w.write_all(&data).unwrap();
        assert_eq!(w.inner.got, data);
        assert_eq!(w.written, 256);
        assert_eq!(hex(w.hasher.finalize().as_slice()), hex(Sha256::digest(&data).as_slice()));

        let mut w = HashingWriter {
            inner: Stingy { got: Vec::new(), fail_after: 10 },
            hasher: Sha256::new(),
            written: 0,
        };
        assert!(w.write_all(&data).is_err());
        assert_eq!(w.written, w.inner.got.len() as u64);
        assert_eq!(hex(w.hasher.finalize().as_slice()), hex(Sha256::digest(&w.inner.got).as_slice()));
        assert_eq!(hex(&[0x00, 0x9f, 0xff]), "009fff");
    }

    #[test]
    fn config_defaults_and_fields() {
        use serde::de::value::{Error, MapDeserializer};
        let cfg = EvidenceConfig::default();
        assert!(cfg.enabled);
        assert_eq!(cfg.dir, PathBuf::from("var/evidence"));
        assert_eq!(
            (cfg.ring_bytes, cfg.packets_before, cfg.packets_after, cfg.max_open),
            (32 << 20, 64, 32, 64)
        );
        assert_eq!(
            (cfg.after_timeout, cfg.max_age),
            (Duration::from_secs(10), Duration::from_secs(2_592_000))
        );
        assert_eq!(cfg.max_total_bytes, 1 << 30);

        let fields = [("dir", "/srv/ev"), ("after_timeout", "5s"), ("max_age", "7days")];
        let parsed =
            EvidenceConfig::deserialize(MapDeserializer::<_, Error>::new(fields.into_iter())).unwrap();
        assert_eq!(parsed.dir, PathBuf::from("/srv/ev"));
        assert_eq!(parsed.after_timeout, Duration::from_secs(5));
        assert_eq!(parsed.max_age, Duration::from_secs(7 * 86_400));
        assert_eq!(parsed.packets_after, 32);
        let unknown =
            EvidenceConfig::deserialize(MapDeserializer::<_, Error>::new([("dirs", "x")].into_iter()));
        assert!(unknown.is_err_and(|e| e.to_string().contains("unknown field")));
    }
}
