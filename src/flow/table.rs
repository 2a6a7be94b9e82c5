//! The flow table: bidirectional 5-tuple flows with per-direction counters, timeouts and a hard
//! cap on entries. Each worker owns one table; flows never move between workers.

use crate::model::FastMap as HashMap;
use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::model::event::{FlowEndReason, FlowRecord, PayloadHead};
use crate::model::evict::victims;
use crate::model::netset::{DestClass, NetSet};
use crate::model::packet::{tcp_flags, IpPacket, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP};
use crate::model::time::Micros;

/// Flow table limits and timeouts (the `flow:` section of the config file).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FlowConfig {
    /// Most flows tracked at once across all workers; beyond it the least recently seen flows are
    /// evicted (reason `capacity`). About 300 bytes each.
    pub max_flows: usize,
    /// A TCP flow with no packet for this long ends (reason `idle`).
    #[serde(with = "humantime_serde")]
    pub tcp_idle_timeout: Duration,
    /// A UDP/ICMP/other flow with no packet for this long ends (reason `idle`).
    #[serde(with = "humantime_serde")]
    pub udp_idle_timeout: Duration,
    /// A TCP flow that saw FIN both ways or a RST ends after this long (reason `closed`).
    #[serde(with = "humantime_serde")]
    pub closed_timeout: Duration,
    /// A long flow (a video stream) is reported every this long, its counters restarting, so
    /// dashboards and the event log see it while it lasts (reason `active`).
    #[serde(with = "humantime_serde")]
    pub active_timeout: Duration,
}

impl Default for FlowConfig {
    fn default() -> Self {
        Self {
            max_flows: 200_000,
            tcp_idle_timeout: Duration::from_secs(300),
            udp_idle_timeout: Duration::from_secs(60),
            closed_timeout: Duration::from_secs(10),
            active_timeout: Duration::from_secs(1800),
        }
    }
}

/// Direction-free flow key: the lower endpoint first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub proto: u8,
    pub lo: (IpAddr, u16),
    pub hi: (IpAddr, u16),
}

impl FlowKey {
    pub fn of(pkt: &IpPacket<'_>) -> Self {
        let (sp, dp) = if is_icmp(pkt.proto) { (0, 0) } else { (pkt.src_port, pkt.dst_port) };
        let a = (pkt.src_ip, sp);
        let b = (pkt.dst_ip, dp);
        if a <= b {
            Self { proto: pkt.proto, lo: a, hi: b }
        } else {
            Self { proto: pkt.proto, lo: b, hi: a }
        }
    }

    /// A hash that is the same for both directions, used to pick a worker. It leaves the ports
    /// out, so an IP fragment (no ports but in the first) reaches the worker that reassembles
    /// its datagram and owns its flow.
    pub fn shard(&self, shards: usize) -> usize {
        shard_of_endpoints(self.proto, self.lo.0, self.hi.0, shards)
    }
}

/// The worker of a flow between `a` and `b` (either order) over `proto`: what
/// [`FlowKey::shard`] computes, for callers that read the addresses without decoding.
pub fn shard_of_endpoints(proto: u8, a: IpAddr, b: IpAddr, shards: usize) -> usize {
    use std::hash::BuildHasher;
    // One seed for the process (every capture thread must agree), chosen at random so that
    // nobody can aim a flood of flows at one worker.
    static SEED: std::sync::OnceLock<foldhash::fast::RandomState> = std::sync::OnceLock::new();
    let h = SEED.get_or_init(Default::default).hash_one((proto, a.min(b), a.max(b)));
    (h % shards.max(1) as u64) as usize
}

fn is_icmp(proto: u8) -> bool {
    proto == PROTO_ICMP || proto == PROTO_ICMPV6
}

#[derive(Debug, Clone)]
struct Flow {
    rec: FlowRecord,
    /// FIN seen from the originator / responder, or a RST.
    fin_ts: bool,
    fin_tc: bool,
    rst: bool,
    /// Start of the current reporting period (for the active timeout).
    period_start: Micros,
    /// Packets to server and to client, then bytes to server and to client, already reported
    /// as progress this period, and when progress was last reported.
    reported: [u64; 4],
    progress_at: Micros,
    /// The originator's and the responder's ends.
    ends: [End; 2],
}

/// Progress of a flow is reported at most this often (packet time).
const PROGRESS_EVERY: Micros = 60_000_000;

impl Flow {
    /// What the flow carried since its last progress report, as a `Progress` record; `None`
    /// when nothing moved. Marks it reported.
    fn progress(&mut self, now: Micros) -> Option<FlowRecord> {
        let r = &self.rec;
        let now_counts = [r.pkts_toserver, r.pkts_toclient, r.bytes_toserver, r.bytes_toclient];
        let d: [u64; 4] = std::array::from_fn(|i| now_counts[i].saturating_sub(self.reported[i]));
        self.progress_at = now;
        if d.iter().all(|v| *v == 0) {
            return None;
        }
        self.reported = now_counts;
        Some(FlowRecord {
            pkts_toserver: d[0],
            pkts_toclient: d[1],
            bytes_toserver: d[2],
            bytes_toclient: d[3],
            end: now.max(r.end),
            reason: FlowEndReason::Progress,
            ..r.clone()
        })
    }
}

/// What `FlowTable::track` tells the caller about the packet it just accounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracked {
    /// The packet opened a new flow.
    pub new: bool,
    /// With this packet the flow became answered (see [`FlowRecord::answered`]).
    pub answered: bool,
    /// The packet travels from the originator to the responder.
    pub to_server: bool,
    pub flow_id: u64,
    /// The packet's source and destination ends: whether each is in the site's device
    /// networks, and the class of address each is. Worked out once when the flow opened, so
    /// the per-packet traffic accounting repeats no prefix lookups.
    pub src: End,
    pub dst: End,
}

/// One end of a flow, as the worker's traffic accounting sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct End {
    pub device: bool,
    pub class: DestClass,
}

impl End {
    fn of(ip: IpAddr, devices: &NetSet) -> Self {
        Self { device: devices.contains(ip), class: DestClass::of(ip) }
    }
}

/// One worker's flows: records in a slab of slots that never grows past the table's bound
/// (reserved up front, so it is never copied; pages are touched only as flows arrive), found
/// through an index from key to slot. The index holds only 48-byte entries and is sized so
/// that the table at its bound never passes half its buckets: deletions are rehashed in place
/// instead of doubling it.
pub struct FlowTable {
    index: HashMap<FlowKey, u32>,
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    cfg: FlowConfig,
    max_entries: usize,
    next_id: u64,
    id_stride: u64,
    last_sweep: Micros,
    /// Flows evicted to make room, and the largest holders at the last eviction.
    pub evicted: u64,
    pub top_sources: Vec<(IpAddr, u64)>,
    /// The site's device networks, for each flow's [`End`]s.
    devices: NetSet,
}

#[derive(Debug, Clone)]
struct Slot {
    key: FlowKey,
    flow: Flow,
}

impl FlowTable {
    /// `worker` and `workers` make flow ids unique across workers.
    pub fn new(cfg: FlowConfig, worker: usize, workers: usize) -> Self {
        let workers = workers.max(1);
        let max_entries = (cfg.max_flows / workers).max(16);
        Self {
            index: HashMap::with_capacity_and_hasher(max_entries.saturating_mul(2), Default::default()),
            slots: Vec::with_capacity(max_entries),
            free: Vec::new(),
            max_entries,
            cfg,
            next_id: worker as u64 + 1,
            id_stride: workers as u64,
            last_sweep: 0,
            evicted: 0,
            top_sources: Vec::new(),
            devices: NetSet::default(),
        }
    }

    /// Marks the ends in these networks as devices (see [`Tracked::src`]); none are otherwise.
    pub fn with_devices(mut self, devices: NetSet) -> Self {
        self.devices = devices;
        self
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn get(&self, key: &FlowKey) -> Option<&Flow> {
        let slot = *self.index.get(key)?;
        self.slots.get(slot as usize)?.as_ref().map(|s| &s.flow)
    }

    /// Takes the flow of `key` out of the table.
    fn remove(&mut self, key: &FlowKey) -> Option<Flow> {
        let slot = self.index.remove(key)?;
        let taken = self.slots.get_mut(slot as usize)?.take()?;
        self.free.push(slot);
        Some(taken.flow)
    }

    /// The flow a packet belongs to, without counting it: `(to_server, record)`.
    pub fn lookup(&self, pkt: &IpPacket<'_>) -> Option<(bool, &FlowRecord)> {
        let rec = &self.get(&FlowKey::of(pkt))?.rec;
        let to_server = if is_icmp(pkt.proto) {
            pkt.src_ip == rec.src_ip
        } else {
            (pkt.src_ip, pkt.src_port) == (rec.src_ip, rec.src_port)
        };
        Some((to_server, rec))
    }

    /// Accounts one packet. Opening a flow in a full table first evicts a tenth of the table,
    /// fairly by originator (see [`crate::model::evict`]); ended flows go to `ended`.
    pub fn track(
        &mut self,
        pkt: &IpPacket<'_>,
        ts: Micros,
        ended: &mut Vec<FlowRecord>,
    ) -> (Tracked, &FlowRecord) {
        self.track_packets(pkt, ts, ended, 1)
    }

    /// The slot of `key`'s flow, opening it (and making room) if it is new.
    fn slot_for(
        &mut self,
        key: FlowKey,
        pkt: &IpPacket<'_>,
        ts: Micros,
        ended: &mut Vec<FlowRecord>,
    ) -> (usize, bool) {
        if let Some(slot) = self.index.get(&key) {
            return (*slot as usize, false);
        }
        if self.index.len() >= self.max_entries {
            self.evict(ended);
        }
        let rec = FlowRecord::open(self.next_id, pkt, ts);
        let ends = [End::of(rec.src_ip, &self.devices), End::of(rec.dest_ip, &self.devices)];
        let flow = Flow {
            rec,
            fin_ts: false,
            fin_tc: false,
            rst: false,
            period_start: ts,
            reported: [0; 4],
            progress_at: ts,
            ends,
        };
        self.next_id += self.id_stride;
        let slot = match self.free.pop() {
            Some(slot) => slot as usize,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        if let Some(s) = self.slots.get_mut(slot) {
            *s = Some(Slot { key, flow });
        }
        self.index.insert(key, u32::try_from(slot).unwrap_or(u32::MAX));
        (slot, true)
    }

    /// As [`FlowTable::track`], for a datagram that came in `packets` fragments (`ip_len` is
    /// their bytes together).
    pub fn track_packets(
        &mut self,
        pkt: &IpPacket<'_>,
        ts: Micros,
        ended: &mut Vec<FlowRecord>,
        packets: u64,
    ) -> (Tracked, &FlowRecord) {
        let (slot, new) = self.slot_for(FlowKey::of(pkt), pkt, ts, ended);
        // The slot was filled just above; the index never points at an empty one.
        let Some(Some(Slot { flow, .. })) = self.slots.get_mut(slot) else {
            unreachable!("flow table index points at an empty slot")
        };
        let rec = &mut flow.rec;
        let to_server = if is_icmp(pkt.proto) {
            pkt.src_ip == rec.src_ip
        } else {
            (pkt.src_ip, pkt.src_port) == (rec.src_ip, rec.src_port)
        };
        let len = u64::from(pkt.ip_len);
        if to_server {
            rec.pkts_toserver += packets;
            rec.bytes_toserver += len;
            rec.tcp_flags_ts |= pkt.tcp_flags;
            if rec.src_mac.is_none() {
                rec.src_mac = pkt.src_mac;
            }
        } else {
            rec.pkts_toclient += packets;
            rec.bytes_toclient += len;
            rec.tcp_flags_tc |= pkt.tcp_flags;
            if rec.dest_mac.is_none() {
                rec.dest_mac = pkt.src_mac;
            }
        }
        let head = &mut rec.first_payload[usize::from(!to_server)];
        if head.len == 0 && !pkt.payload.is_empty() {
            *head = PayloadHead::of(pkt.payload);
        }
        rec.end = rec.end.max(ts);
        if pkt.proto == PROTO_TCP {
            if pkt.tcp_flags & tcp_flags::RST != 0 {
                flow.rst = true;
            }
            if pkt.tcp_flags & tcp_flags::FIN != 0 {
                if to_server {
                    flow.fin_ts = true;
                } else {
                    flow.fin_tc = true;
                }
            }
        }
        let answered = !flow.rec.answered && flow.rec.shows_answer();
        if answered {
            // Reported at once (as progress): the analysis stage admits the endpoints now
            // instead of at the next minute's report.
            flow.rec.answered = true;
            ended.extend(flow.progress(ts));
        }
        let flow_id = flow.rec.flow_id;
        let [orig, resp] = flow.ends;
        let (src, dst) = if to_server { (orig, resp) } else { (resp, orig) };
        (Tracked { new, answered, to_server, flow_id, src, dst }, &flow.rec)
    }

    /// Ends flows whose timeouts passed at `now` (packet time, or wall time on a quiet link).
    /// Sweeps at most once a second.
    pub fn expire(&mut self, now: Micros, ended: &mut Vec<FlowRecord>) {
        if now < self.last_sweep + 1_000_000 {
            return;
        }
        self.last_sweep = now;
        let micros = |d: Duration| d.as_micros() as u64;
        let active = micros(self.cfg.active_timeout);
        let closed = micros(self.cfg.closed_timeout);
        let tcp_idle = micros(self.cfg.tcp_idle_timeout);
        let udp_idle = micros(self.cfg.udp_idle_timeout);
        for (i, entry) in self.slots.iter_mut().enumerate() {
            let Some(Slot { key, flow: f }) = entry else { continue };
            let idle = if f.rst || (f.fin_ts && f.fin_tc) {
                (closed, FlowEndReason::Closed)
            } else if f.rec.proto == PROTO_TCP {
                (tcp_idle, FlowEndReason::Idle)
            } else {
                (udp_idle, FlowEndReason::Idle)
            };
            if now.saturating_sub(f.rec.end) >= idle.0 {
                self.index.remove(key);
                if let Some(mut s) = entry.take() {
                    let end = s.flow.rec.end;
                    ended.extend(s.flow.progress(end));
                    ended.push(FlowRecord { reason: idle.1, ..s.flow.rec });
                }
                self.free.push(u32::try_from(i).unwrap_or(u32::MAX));
                continue;
            }
            if active > 0 && now.saturating_sub(f.period_start) >= active {
                ended.extend(f.progress(now));
                let mut rec = f.rec.clone();
                rec.reason = FlowEndReason::Active;
                ended.push(rec);
                f.rec.restart(now);
                f.period_start = now;
                f.reported = [0; 4];
            } else if now.saturating_sub(f.progress_at) >= PROGRESS_EVERY {
                ended.extend(f.progress(now));
            }
        }
    }

    /// Makes room for a tenth of the table: the flows of the originators holding the most go
    /// first, least recently seen first among them.
    fn evict(&mut self, ended: &mut Vec<FlowRecord>) {
        let n = (self.index.len() / 10).max(1);
        // Slot numbers, not keys, go through the selection: a tenth of the bytes to move.
        let entries = self.slots.iter().enumerate().filter_map(|(i, s)| {
            let s = s.as_ref()?;
            Some((s.flow.rec.src_ip, s.flow.rec.end, u32::try_from(i).ok()?))
        });
        let chosen = victims(entries, n);
        for slot in &chosen.keys {
            let key = self.slots.get(*slot as usize).and_then(|s| s.as_ref()).map(|s| s.key);
            if let Some(mut f) = key.and_then(|k| self.remove(&k)) {
                self.evicted += 1;
                ended.extend(f.progress(f.rec.end));
                ended.push(FlowRecord { reason: FlowEndReason::Capacity, ..f.rec });
            }
        }
        self.top_sources = chosen.top;
    }

    /// The keys of every flow in the order they are ended at the end of a capture (by start,
    /// then id): the caller takes them a batch at a time with [`FlowTable::end`], so no second
    /// copy of the whole table is ever held.
    pub fn drain_order(&self) -> Vec<FlowKey> {
        let mut order: Vec<(Micros, u64, FlowKey)> =
            self.slots.iter().flatten().map(|s| (s.flow.rec.start, s.flow.rec.flow_id, s.key)).collect();
        order.sort_unstable_by_key(|e| (e.0, e.1));
        order.into_iter().map(|e| e.2).collect()
    }

    /// Ends the flows of `keys` with `reason` (end of capture or shutdown).
    pub fn end(&mut self, keys: &[FlowKey], reason: FlowEndReason, ended: &mut Vec<FlowRecord>) {
        for key in keys {
            if let Some(mut f) = self.remove(key) {
                ended.extend(f.progress(f.rec.end));
                ended.push(FlowRecord { reason, ..f.rec });
            }
        }
    }

    /// Ends every flow at once (tests and small tables).
    pub fn drain(&mut self, reason: FlowEndReason, ended: &mut Vec<FlowRecord>) {
        let order = self.drain_order();
        self.end(&order, reason, ended);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::packet::PROTO_UDP;

    fn pkt(src: [u8; 4], sp: u16, dst: [u8; 4], dp: u16, flags: u8) -> IpPacket<'static> {
        IpPacket {
            src_mac: Some([0x44, 0x47, 0xcc, src[3], 0, 0]),
            dst_mac: None,
            vlan: None,
            src_ip: IpAddr::from(src),
            dst_ip: IpAddr::from(dst),
            proto: PROTO_TCP,
            src_port: sp,
            dst_port: dp,
            tcp_flags: flags,
            tcp_seq: 0,
            ip_len: 60,
            payload: &[],
            fragment: false,
            frag: None,
            tunnel: None,
        }
    }

    #[test]
    fn the_first_payload_each_way_is_kept() {
        let mut t = FlowTable::new(FlowConfig::default(), 0, 1);
        let mut ended = Vec::new();
        let syn = pkt([192, 168, 10, 11], 40000, [203, 0, 113, 50], 443, tcp_flags::SYN);
        let mut req = syn.clone();
        req.payload = b"\x16\x03\x01\x00\x05hello";
        let mut later = syn.clone();
        later.payload = b"more";
        let mut resp = pkt([203, 0, 113, 50], 443, [192, 168, 10, 11], 40000, tcp_flags::ACK);
        resp.payload = b"\x16\x03\x03";
        t.track(&syn, 1, &mut ended);
        let (_, rec) = t.track(&req, 2, &mut ended);
        assert_eq!((rec.first_payload[0].len, rec.first_payload[0].hex()), (10, "160301000568656c"));
        assert_eq!(rec.first_payload[1].len, 0);
        t.track(&later, 3, &mut ended);
        let (_, rec) = t.track(&resp, 4, &mut ended);
        assert_eq!((rec.first_payload[0].len, rec.first_payload[0].hex()), (10, "160301000568656c"));
        assert_eq!((rec.first_payload[1].len, rec.first_payload[1].hex()), (3, "160303"));
    }

    #[test]
    fn both_directions_are_one_flow_with_per_direction_counters() {
        let mut t = FlowTable::new(FlowConfig::default(), 0, 1);
        let mut ended = Vec::new();
        let a = pkt([192, 168, 10, 11], 40000, [203, 0, 113, 50], 443, tcp_flags::SYN);
        let b = pkt([203, 0, 113, 50], 443, [192, 168, 10, 11], 40000, tcp_flags::SYN | tcp_flags::ACK);
        let (t1, _) = t.track(&a, 1, &mut ended);
        let (t2, rec) = t.track(&b, 2, &mut ended);
        assert!(t1.new && !t2.new && t1.to_server && !t2.to_server);
        assert_eq!((rec.pkts_toserver, rec.pkts_toclient), (1, 1));
        assert_eq!((rec.bytes_toserver, rec.bytes_toclient), (60, 60));
        assert_eq!(rec.src_ip, IpAddr::from([192, 168, 10, 11]));
        assert_eq!(rec.tcp_flags_tc, tcp_flags::SYN | tcp_flags::ACK);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn a_flow_is_answered_once_the_originator_acknowledges_the_reply_and_says_so_once() {
        let mut t = FlowTable::new(FlowConfig::default(), 0, 1);
        let mut ended = Vec::new();
        let c = [192, 168, 10, 11];
        let s = [192, 168, 10, 20];
        let syn = pkt(c, 40000, s, 554, tcp_flags::SYN);
        let syn_ack = pkt(s, 554, c, 40000, tcp_flags::SYN | tcp_flags::ACK);
        let ack = pkt(c, 40000, s, 554, tcp_flags::ACK);
        // A spoofed SYN is answered by the camera, but nobody acknowledges the answer.
        let steps = [(&syn, false), (&syn_ack, false), (&syn_ack, false), (&ack, true), (&ack, false)];
        for (n, (p, expected)) in steps.into_iter().enumerate() {
            let (tracked, rec) = t.track(p, n as u64 + 1, &mut ended);
            assert_eq!(tracked.answered, expected, "step {n}");
            assert_eq!(rec.answered, n >= 3, "step {n}");
        }
        // The moment it was answered, the flow was reported (progress) with the flag set.
        assert_eq!(ended.len(), 1);
        assert!(ended[0].answered && ended[0].reason == FlowEndReason::Progress);
        assert_eq!((ended[0].pkts_toserver, ended[0].pkts_toclient), (2, 2));
        // UDP: a reply is enough.
        let mut q = pkt(c, 5353, s, 53, 0);
        q.proto = PROTO_UDP;
        let mut r = pkt(s, 53, c, 5353, 0);
        r.proto = PROTO_UDP;
        assert!(!t.track(&q, 10, &mut ended).0.answered);
        assert!(t.track(&r, 11, &mut ended).0.answered);
    }

    #[test]
    fn each_packet_is_told_its_ends_as_the_flow_worked_them_out() {
        let devices = crate::model::netset::resolve(&["192.168.10.0/24".to_string()]).expect("nets");
        let mut t = FlowTable::new(FlowConfig::default(), 0, 1).with_devices(devices);
        let camera = [192, 168, 10, 11];
        let cloud = [203, 0, 113, 50];
        let device = End { device: true, class: DestClass::Internal };
        let internet = End { device: false, class: DestClass::External };
        // The reply comes first, so the flow's originator is the packet's destination.
        let (tr, _) =
            t.track(&pkt(cloud, 443, camera, 40000, tcp_flags::SYN | tcp_flags::ACK), 1, &mut Vec::new());
        assert!(!tr.to_server);
        assert_eq!((tr.src, tr.dst), (internet, device));
        let (tr, _) = t.track(&pkt(camera, 40000, cloud, 443, tcp_flags::ACK), 2, &mut Vec::new());
        assert!(tr.to_server);
        assert_eq!((tr.src, tr.dst), (device, internet));
        // A table without device networks marks no end a device.
        let mut plain = FlowTable::new(FlowConfig::default(), 0, 1);
        let (tr, _) = plain.track(&pkt(camera, 40000, cloud, 443, tcp_flags::SYN), 1, &mut Vec::new());
        assert!(!tr.src.device && !tr.dst.device);
        assert_eq!(tr.dst.class, DestClass::External);
    }

    #[test]
    fn syn_ack_first_makes_its_receiver_the_originator() {
        let mut t = FlowTable::new(FlowConfig::default(), 0, 1);
        let b = pkt([203, 0, 113, 50], 443, [192, 168, 10, 11], 40000, tcp_flags::SYN | tcp_flags::ACK);
        let (_, rec) = t.track(&b, 1, &mut Vec::new());
        assert_eq!(rec.src_ip, IpAddr::from([192, 168, 10, 11]));
        assert_eq!(rec.dest_port, 443);
        assert_eq!(rec.pkts_toclient, 1);
    }

    #[test]
    fn idle_closed_and_active_timeouts() {
        let cfg = FlowConfig::default();
        let mut t = FlowTable::new(cfg.clone(), 0, 1);
        let mut ended = Vec::new();
        let s = 1_000_000u64;
        let mut udp = pkt([192, 168, 10, 11], 5000, [192, 168, 10, 1], 53, 0);
        udp.proto = PROTO_UDP;
        t.track(&udp, s, &mut ended);
        let fin = pkt([192, 168, 10, 11], 40000, [192, 168, 10, 2], 554, tcp_flags::FIN | tcp_flags::ACK);
        let fin2 = pkt([192, 168, 10, 2], 554, [192, 168, 10, 11], 40000, tcp_flags::FIN | tcp_flags::ACK);
        t.track(&fin, s, &mut ended);
        t.track(&fin2, s, &mut ended);
        let stream = pkt([192, 168, 10, 12], 40001, [192, 168, 10, 2], 554, tcp_flags::ACK);
        t.track(&stream, s, &mut ended);
        // 11 s later: the closed TCP flow ends, the UDP flow is still young.
        t.expire(s + 11 * s, &mut ended);
        ended.retain(|r| r.reason != FlowEndReason::Progress); // progress is tested below
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].reason, FlowEndReason::Closed);
        // Keep the stream alive; UDP goes idle after 60 s.
        t.track(&stream, 70 * s, &mut ended);
        t.expire(70 * s, &mut ended);
        ended.retain(|r| r.reason != FlowEndReason::Progress); // progress is tested below
        assert_eq!(ended.len(), 2);
        assert_eq!(ended[1].reason, FlowEndReason::Idle);
        assert_eq!(ended[1].proto, PROTO_UDP);
        // A stream active for longer than the active timeout is reported and keeps going.
        for i in 0..=(cfg.active_timeout.as_secs() / 60) {
            t.track(&stream, 70 * s + i * 60 * s, &mut ended);
            t.expire(70 * s + i * 60 * s, &mut ended);
        }
        ended.retain(|r| r.reason != FlowEndReason::Progress);
        assert_eq!(ended.last().map(|r| r.reason), Some(FlowEndReason::Active));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn full_table_evicts_the_least_recently_seen() {
        let cfg = FlowConfig { max_flows: 20, ..FlowConfig::default() };
        let mut t = FlowTable::new(cfg, 0, 1);
        let mut ended = Vec::new();
        for i in 0..20u16 {
            t.track(&pkt([10, 0, 0, 1], 1000 + i, [10, 0, 0, 2], 80, 0), u64::from(i), &mut ended);
        }
        assert!(ended.is_empty());
        t.track(&pkt([10, 0, 0, 1], 9999, [10, 0, 0, 2], 80, 0), 100, &mut ended);
        ended.retain(|r| r.reason != FlowEndReason::Progress); // progress is tested below
        assert_eq!(ended.len(), 2);
        assert!(ended.iter().all(|r| r.reason == FlowEndReason::Capacity && r.src_port < 1002));
        assert_eq!(t.len(), 19);
    }

    #[test]
    fn flow_ids_are_unique_across_workers() {
        let mut a = FlowTable::new(FlowConfig::default(), 0, 2);
        let mut b = FlowTable::new(FlowConfig::default(), 1, 2);
        let mut ids = Vec::new();
        for i in 0..5u16 {
            ids.push(a.track(&pkt([10, 0, 0, 1], i, [10, 0, 0, 2], 80, 0), 0, &mut Vec::new()).0.flow_id);
            ids.push(b.track(&pkt([10, 0, 0, 1], i, [10, 0, 0, 2], 80, 0), 0, &mut Vec::new()).0.flow_id);
        }
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }

    #[test]
    fn a_flooding_originator_loses_its_own_flows_first() {
        let cfg = FlowConfig { max_flows: 100, ..FlowConfig::default() };
        let mut t = FlowTable::new(cfg, 0, 1);
        let mut ended = Vec::new();
        // A camera's stream, opened first and so the least recently seen.
        let camera = pkt([192, 168, 1, 20], 40000, [192, 168, 1, 2], 554, 0);
        t.track(&camera, 1, &mut ended);
        // One host opens thousands of flows.
        for i in 0..5000u32 {
            let p = pkt([10, 9, 9, 9], (i % 60000) as u16, [203, 0, (i >> 8) as u8, i as u8], 80, 0);
            t.track(&p, 10 + u64::from(i), &mut ended);
        }
        ended.retain(|r| r.reason != FlowEndReason::Progress); // progress is tested below
        assert!(
            ended.iter().all(|r| r.src_ip == IpAddr::from([10, 9, 9, 9])),
            "the camera's flow was evicted"
        );
        assert!(t.lookup(&camera).is_some());
        assert!(t.len() <= 100);
        assert_eq!(t.evicted, ended.len() as u64);
        assert_eq!(t.top_sources.first().map(|s| s.0), Some(IpAddr::from([10, 9, 9, 9])));
    }

    /// A long transfer reports what it carried every minute, then the rest at its end: the
    /// progress records add up to the flow's bytes exactly, and the end record is whole.
    #[test]
    fn progress_is_reported_every_minute_and_adds_up() {
        let mut t = FlowTable::new(FlowConfig::default(), 0, 1);
        let mut ended = Vec::new();
        let s = 1_000_000u64;
        let mut p = pkt([192, 168, 1, 20], 40000, [203, 0, 113, 9], 443, tcp_flags::ACK);
        p.ip_len = 1000;
        for sec in 0..=150u64 {
            t.track(&p, sec * s, &mut ended);
            t.expire(sec * s, &mut ended);
        }
        let progress: Vec<&FlowRecord> =
            ended.iter().filter(|r| r.reason == FlowEndReason::Progress).collect();
        assert_eq!(progress.len(), 2, "at 60 s and 120 s: {progress:?}");
        assert_eq!(progress[0].bytes_toserver, 61_000, "seconds 0 to 60");
        t.drain(FlowEndReason::EndOfCapture, &mut ended);
        let sum: u64 =
            ended.iter().filter(|r| r.reason == FlowEndReason::Progress).map(|r| r.bytes_toserver).sum();
        let end = ended.last().map(|r| (r.reason, r.bytes_toserver));
        assert_eq!(end, Some((FlowEndReason::EndOfCapture, 151_000)));
        assert_eq!(sum, 151_000, "every byte counted once as progress");
    }
}
