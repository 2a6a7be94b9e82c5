//! A packet worker: decodes each packet, reassembles fragments, follows Teredo, tracks flows,
//! runs the application layer and batches per-device traffic, and sends events to the analysis
//! stage. Each worker owns a disjoint share of the flows.

use crate::model::FastMap as HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};

use super::guard::PanicGuard;
use super::pipeline::{Sensor, WorkerMsg};
use crate::alert::evidence::{EvidenceOutcome, EvidenceRecorder, EvidenceRequest};
use crate::analysis::app::{AppLayer, Output as AppOutput};
use crate::analysis::metrics::ParseErrorLabels;
use crate::decode::metrics::LayerLabels;
use crate::decode::{decode, Decoded, ErrorLayer};
use crate::flow::{FlowKey, FlowTable};
use crate::model::event::{Event, FlowEndReason, FlowRecord, TableEvictions, TrafficBatch, TrafficKey};
use crate::model::labels::{ReasonLabels, ResultLabels, TableLabels};
#[cfg(test)]
use crate::model::packet::RawPacket;
use crate::model::packet::{Frame, IpPacket};
use crate::model::time::rfc3339;
use crate::model::time::Micros;
use crate::telemetry::metrics::StageLabels;

/// What a panic report says of the packet it happened on.
fn describe(f: &Frame<'_>) -> String {
    let at = format!("{} ({} bytes, link type {})", rfc3339(f.ts), f.wire_len, f.linktype);
    match decode(f.linktype, f.data) {
        Ok(Decoded::Ip(ip)) => {
            format!(
                "{}:{} -> {}:{} proto {} at {at}",
                ip.src_ip, ip.src_port, ip.dst_ip, ip.dst_port, ip.proto
            )
        }
        _ => format!("frame at {at}"),
    }
}

/// Bound on a worker's per-device traffic batch between flushes.
const MAX_TRAFFIC_KEYS: usize = 16_384;

/// The worker that owns a packet's flow. The capture thread asks this for every packet when
/// there are several workers, so the common case (Ethernet, up to two VLAN tags, IPv4, TCP or
/// UDP that is not a tunnel) is read from fixed offsets; anything else is decoded in full, as
/// the worker will. A test holds both ways to the same answer on every capture in the
/// repository.
pub(super) fn shard_of(p: &Frame<'_>, shards: usize) -> usize {
    if let Some((proto, a, b)) = plain_ipv4(p) {
        return crate::flow::shard_of_endpoints(proto, a, b, shards);
    }
    match decode(p.linktype, p.data) {
        Ok(Decoded::Ip(ip)) => FlowKey::of(&ip).shard(shards),
        _ => 0,
    }
}

/// UDP ports decapsulation looks inside (see `decode::tunnel`) and Teredo: such datagrams take
/// the full path.
const TUNNEL_PORTS: [u16; 6] = [4789, 6081, 4754, 2152, 5072, 3544];

/// Protocol and addresses of an untunnelled IPv4 TCP or UDP packet on Ethernet, read in place.
fn plain_ipv4(p: &Frame<'_>) -> Option<(u8, IpAddr, IpAddr)> {
    if p.linktype != crate::model::packet::linktype::ETHERNET {
        return None;
    }
    let d = p.data;
    let mut off = 12;
    for _ in 0..3 {
        match u16::from_be_bytes([*d.get(off)?, *d.get(off + 1)?]) {
            0x8100 | 0x88a8 => off += 4,
            0x0800 => {
                let ip = d.get(off + 2..)?;
                let &[vihl, ..] = ip else { return None };
                let ihl = usize::from(vihl & 0x0f) * 4;
                if vihl >> 4 != 4 || ihl < 20 || ip.len() < ihl {
                    return None;
                }
                let proto = ip[9];
                let src = IpAddr::from([ip[12], ip[13], ip[14], ip[15]]);
                let dst = IpAddr::from([ip[16], ip[17], ip[18], ip[19]]);
                let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
                return match proto {
                    crate::model::packet::PROTO_TCP => Some((proto, src, dst)),
                    // A fragment is sharded by its addresses whatever it carries (reassembly
                    // looks inside the whole datagram later, on the worker its addresses chose).
                    crate::model::packet::PROTO_UDP if fragment => Some((proto, src, dst)),
                    crate::model::packet::PROTO_UDP => {
                        let udp = ip.get(ihl..ihl + 4)?;
                        let sp = u16::from_be_bytes([udp[0], udp[1]]);
                        let dp = u16::from_be_bytes([udp[2], udp[3]]);
                        let tunnel = TUNNEL_PORTS.iter().any(|t| *t == sp || *t == dp);
                        (!tunnel).then_some((proto, src, dst))
                    }
                    _ => None,
                };
            }
            _ => return None,
        }
    }
    None
}

/// Packet times further ahead of the sensor's wall clock than this move neither flow nor alert
/// time: a capture host's clock a little ahead is normal, a packet from next year is an error or
/// an attack, and believed it would end every flow and resolve every alert at once.
const MAX_AHEAD: Micros = 3_600_000_000;

pub(super) fn believable(ts: Micros, wall: Micros) -> bool {
    ts <= wall.saturating_add(MAX_AHEAD)
}

pub(super) fn wall_micros() -> Micros {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// One packet worker: decodes, tracks flows, and batches per-device traffic.
pub(super) struct Worker<'s> {
    sensor: &'s Sensor,
    table: FlowTable,
    events: Sender<Vec<Event>>,
    /// Events of the batch being handled, sent together when it is done.
    out: Vec<Event>,
    now: Micros,
    last_flush: Micros,
    traffic: HashMap<TrafficKey, u64>,
    last_seen: HashMap<IpAddr, Micros>,
    decode_errors: [u64; 3],
    flows_opened: u64,
    ended: Vec<FlowRecord>,
    reported_active: i64,
    app: AppLayer,
    app_out: AppOutput,
    /// Evictions of the flow, fragment, stream and TFTP tables at the last flush.
    reported_evicted: [u64; 4],
    /// This worker's evidence recorder and the requests the analysis sends it.
    evidence: Option<(EvidenceRecorder, Receiver<EvidenceRequest>)>,
    evidence_out: Vec<EvidenceOutcome>,
    index: usize,
    defrag: crate::flow::Defrag,
    /// What `defrag` reported at the last flush.
    reported_defrag: (u64, u64),
    /// Packets handled, the wall clock (read every 1024 of them) and packets whose time was
    /// too far ahead of it to move flow time.
    seen: u64,
    wall: Micros,
    future: u64,
    /// The ended-flow counters (`flow.evicted`) per reason, looked up once each rather than
    /// through the labelled family for every flow.
    ended_counters: HashMap<&'static str, prometheus_client::metrics::counter::Counter>,
}

impl<'s> Worker<'s> {
    pub(super) fn new(
        sensor: &'s Sensor,
        index: usize,
        workers: usize,
        events: Sender<Vec<Event>>,
        evidence: Option<(EvidenceRecorder, Receiver<EvidenceRequest>)>,
    ) -> Self {
        Self {
            sensor,
            table: FlowTable::new(sensor.config.flow.clone(), index, workers)
                .with_devices(sensor.devices.clone()),
            events,
            out: Vec::new(),
            now: 0,
            last_flush: 0,
            traffic: HashMap::default(),
            last_seen: HashMap::default(),
            decode_errors: [0; 3],
            flows_opened: 0,
            seen: 0,
            wall: wall_micros(),
            future: 0,
            ended: Vec::new(),
            reported_active: 0,
            app: AppLayer::default(),
            app_out: AppOutput::default(),
            reported_evicted: [0; 4],
            evidence,
            evidence_out: Vec::new(),
            index,
            defrag: crate::flow::Defrag::default(),
            reported_defrag: (0, 0),
            ended_counters: HashMap::default(),
        }
    }

    pub(super) fn run(mut self, rx: Receiver<WorkerMsg>, stop: &AtomicBool) {
        // Evidence requests are taken as they come, even when this worker gets no packets.
        let mut requests = self.evidence.as_ref().map(|(_, r)| r.clone());
        let panics =
            self.sensor.metrics.analysis_panics.get_or_create(&StageLabels { stage: "worker" }).clone();
        let mut guard = PanicGuard::new("worker", panics);
        loop {
            let msg = match &requests {
                None => match rx.recv() {
                    Ok(m) => m,
                    Err(_) => break,
                },
                Some(req_rx) => crossbeam_channel::select! {
                    recv(rx) -> m => match m {
                        Ok(m) => m,
                        Err(_) => break,
                    },
                    recv(req_rx) -> r => {
                        match r {
                            Ok(req) => self.take_request(req),
                            Err(_) => requests = None,
                        }
                        continue;
                    },
                },
            };
            match msg {
                WorkerMsg::Packets(batch) => {
                    for f in batch.frames() {
                        guard.run(|| describe(&f), || self.packet(f));
                    }
                    batch.recycle();
                }
                WorkerMsg::Tick(t) => {
                    self.now = self.now.max(t);
                    self.expire();
                    if let Some((rec, _)) = &mut self.evidence {
                        rec.tick(t, &mut self.evidence_out);
                    }
                    self.flush();
                }
            }
            self.send_evidence();
            self.send_out();
        }
        let reason =
            if stop.load(Ordering::Relaxed) { FlowEndReason::Shutdown } else { FlowEndReason::EndOfCapture };
        // A batch at a time: a full table's records are never all held twice.
        let order = self.table.drain_order();
        for keys in order.chunks(1024) {
            self.table.end(keys, reason, &mut self.ended);
            self.send_ended();
            self.send_out();
        }
        if let Some(req_rx) = requests {
            // Alerts on this worker's flows may still be raised from events queued ahead of this
            // marker: serve their requests until the analysis stage has read them all.
            self.out.push(Event::WorkerDone(self.index));
            self.send_out();
            while let Ok(req) = req_rx.recv() {
                self.take_request(req);
                self.send_out();
            }
        }
        if let Some((rec, _)) = &mut self.evidence {
            rec.finish(&mut self.evidence_out);
        }
        self.send_evidence();
        self.flush();
        self.send_out();
    }

    /// Sends the events gathered since the last call, as one message.
    fn send_out(&mut self) {
        if !self.out.is_empty() {
            // The next batch's vector starts as large as this one ended: it is not grown from
            // nothing by doubling for every batch.
            let next = Vec::with_capacity(self.out.len());
            let _ = self.events.send(std::mem::replace(&mut self.out, next));
        }
    }

    fn take_request(&mut self, req: EvidenceRequest) {
        if let Some((rec, _)) = &mut self.evidence {
            rec.request(req, &mut self.evidence_out);
        }
        self.send_evidence();
    }

    fn send_evidence(&mut self) {
        for o in self.evidence_out.drain(..) {
            self.out.push(Event::Evidence(o));
        }
    }

    fn packet(&mut self, p: Frame<'_>) {
        self.seen += 1;
        if self.seen % 1024 == 1 {
            self.wall = wall_micros();
        }
        if believable(p.ts, self.wall) {
            self.now = self.now.max(p.ts);
        } else {
            self.future += 1;
        }
        let mut flow = None;
        match decode(p.linktype, p.data) {
            Err(e) => {
                let i = ErrorLayer::ALL.iter().position(|l| *l == e.layer).unwrap_or(0);
                self.decode_errors[i] += 1;
            }
            Ok(Decoded::Other) => {}
            Ok(Decoded::SadpL2 { payload, .. }) => match crate::analysis::app::sadp_l2(payload, p.ts) {
                Ok(e) => {
                    self.out.push(Event::App(Box::new(e)));
                }
                Err(reason) => {
                    let labels = ParseErrorLabels { protocol: "sadp", reason };
                    self.sensor.metrics.app.parse_errors.get_or_create(&labels).inc();
                }
            },
            Ok(Decoded::Arp(arp)) => {
                self.out.push(Event::Arp { ts: p.ts, arp });
            }
            // A fragment waits for the rest of its datagram; the datagram then goes on whole.
            Ok(Decoded::Ip(ip)) if ip.frag.is_some() => {
                if let Some(d) = self.defrag.add(&ip, p.ts) {
                    // A tunnel's datagram is looked inside once whole (its inner flow is then
                    // followed by this worker, the one its fragments' addresses chose).
                    match crate::decode::reassembled(&ip, &d.payload, d.wire_bytes)
                        .map(crate::decode::decapsulate)
                    {
                        Some(Decoded::Ip(whole)) => flow = Some(self.ip_packet(&whole, p.ts, d.fragments)),
                        Some(Decoded::Arp(arp)) => {
                            self.out.push(Event::Arp { ts: p.ts, arp });
                        }
                        Some(_) => {}
                        None => self.decode_errors[2] += 1,
                    }
                }
            }
            Ok(Decoded::Ip(ip)) => {
                flow = Some(self.ip_packet(&ip, p.ts, 1));
                // IPv6 tunnelled in Teredo is analysed as well as its tunnel (Suricata does too):
                // a camera reaching the IPv6 internet through it is not hidden in UDP 3544.
                if let Some(inner) = crate::decode::teredo_inner(&ip) {
                    if let Ok(Decoded::Ip(mut inner)) = decode(crate::model::packet::linktype::RAW, inner) {
                        inner.vlan = ip.vlan;
                        self.ip_packet(&inner, p.ts, 1);
                    }
                }
            }
        }
        if let Some((rec, _)) = &mut self.evidence {
            rec.packet(flow, &p, &mut self.evidence_out);
        }
        self.expire();
        // Once a second of packet time, or sooner when many hosts keep the batch large.
        if self.now >= self.last_flush + 1_000_000 || self.traffic.len() >= MAX_TRAFFIC_KEYS {
            self.flush();
        }
    }

    /// One IP packet (or a reassembled datagram that came in `packets` fragments) through the
    /// flow table, the application layer and the device traffic counters; returns its flow.
    fn ip_packet(&mut self, ip: &IpPacket<'_>, ts: Micros, packets: u64) -> u64 {
        let (tracked, rec) = self.table.track_packets(ip, ts, &mut self.ended, packets);
        if tracked.new {
            self.flows_opened += 1;
            let mut start = rec.clone();
            start.reason = FlowEndReason::Active;
            self.out.push(Event::FlowStart(start));
        }

        self.app.packet(rec, ip, tracked.to_server, ts, &mut self.app_out);
        self.send_app();
        let len = u64::from(ip.ip_len);
        if tracked.src.device {
            let key = TrafficKey { device: ip.src_ip, sent: true, class: tracked.dst.class };
            *self.traffic.entry(key).or_default() += len;
            let seen = self.last_seen.entry(ip.src_ip).or_default();
            *seen = (*seen).max(ts);
        }
        if tracked.dst.device {
            let key = TrafficKey { device: ip.dst_ip, sent: false, class: tracked.src.class };
            *self.traffic.entry(key).or_default() += len;
        }
        tracked.flow_id
    }

    fn expire(&mut self) {
        self.table.expire(self.now, &mut self.ended);
        self.send_ended();
    }

    fn send_ended(&mut self) {
        let mut ended = std::mem::take(&mut self.ended);
        for rec in ended.drain(..) {
            if rec.reason == FlowEndReason::Progress {
                self.out.push(Event::FlowProgress(rec));
                continue;
            }
            if rec.reason != FlowEndReason::Active {
                let reason = rec.reason.as_str();
                let family = &self.sensor.metrics.flow.evicted;
                self.ended_counters
                    .entry(reason)
                    .or_insert_with(|| family.get_or_create(&ReasonLabels { reason }).clone())
                    .inc();
                self.app.end(&rec, &mut self.app_out);
                self.send_app();
                if let Some((r, _)) = &mut self.evidence {
                    r.flow_ended(rec.flow_id, &mut self.evidence_out);
                }
            }
            self.out.push(Event::Flow(rec));
        }
        self.ended = ended;
        self.send_evidence();
    }

    fn send_app(&mut self) {
        for f in self.app_out.failures.drain(..) {
            let labels = ParseErrorLabels { protocol: f.protocol, reason: f.reason };
            self.sensor.metrics.app.parse_errors.get_or_create(&labels).inc();
        }
        for e in self.app_out.events.drain(..) {
            self.out.push(Event::App(Box::new(e)));
        }
    }

    /// Hands over counters: metrics the worker owns directly, device traffic to the analysis.
    fn flush(&mut self) {
        self.last_flush = self.now;
        let m = &self.sensor.metrics;
        for (i, n) in self.decode_errors.iter_mut().enumerate() {
            if *n > 0 {
                let layer = ErrorLayer::ALL.get(i).map_or("link", |l| l.as_str());
                m.decode.errors.get_or_create(&LayerLabels { layer }).inc_by(std::mem::take(n));
            }
        }
        m.flow.opened.inc_by(std::mem::take(&mut self.flows_opened));
        m.flow.future_timestamps.inc_by(std::mem::take(&mut self.future));
        let (ok, dropped) = (self.defrag.reassembled, self.defrag.dropped);
        let (ok0, dropped0) = std::mem::replace(&mut self.reported_defrag, (ok, dropped));
        m.flow.fragmented_datagrams.get_or_create(&ResultLabels { result: "reassembled" }).inc_by(ok - ok0);
        m.flow
            .fragmented_datagrams
            .get_or_create(&ResultLabels { result: "dropped" })
            .inc_by(dropped - dropped0);
        let evicted = [
            (self.table.evicted, &self.table.top_sources),
            (self.defrag.evicted, &self.defrag.top_sources),
            (self.app.evicted, &self.app.top_sources),
            (self.app.tftp_evicted, &self.app.tftp_top_sources),
        ];
        for ((table, (now, top)), before) in
            ["flows", "fragments", "streams", "tftp"].into_iter().zip(evicted).zip(&mut self.reported_evicted)
        {
            let counter = m.table_evictions.get_or_create(&TableLabels::of(table));
            if now > *before {
                counter.inc_by(now - *before);
                let e = TableEvictions { ts: self.now, table, evicted: now - *before, top: top.clone() };
                self.out.push(Event::Evictions(e));
                *before = now;
            }
        }
        let active = i64::try_from(self.table.len()).unwrap_or(i64::MAX);
        m.flow.active.inc_by(active - self.reported_active);
        self.reported_active = active;
        if !self.traffic.is_empty() || !self.last_seen.is_empty() {
            let mut batch = TrafficBatch {
                bytes: self.traffic.drain().collect(),
                last_seen: self.last_seen.drain().collect(),
            };
            batch.bytes.sort_unstable();
            batch.last_seen.sort_unstable();
            self.out.push(Event::Traffic(batch));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every packet of every capture in the repository (real third-party ones, tunnels, fuzz
    /// seeds) and of a generated site: the fast path and a full decode pick the same worker.
    #[test]
    fn the_fast_shard_agrees_with_a_full_decode() {
        let files = crate::capture::repository_captures();
        let mut packets: Vec<RawPacket> = Vec::new();
        for f in &files {
            let Ok(mut src) = crate::capture::Source::file(f) else { continue };
            while let Ok(crate::capture::Next::Packet(p)) = src.next_packet() {
                packets.push(p);
            }
        }
        let cap = camwatch_synth::generate(&camwatch_synth::Scenario {
            anomalies: camwatch_synth::Anomalies::all(),
            ..Default::default()
        });
        packets.extend(cap.packets.iter().map(|p| RawPacket {
            ts: p.ts_micros,
            linktype: 1,
            wire_len: p.data.len() as u32,
            data: p.data.clone(),
        }));
        assert!(
            files.len() > 50 && packets.len() > 20_000,
            "{} files, {} packets",
            files.len(),
            packets.len()
        );
        let (mut fast, mut checked) = (0, 0);
        for p in &packets {
            let f = p.frame();
            let full = |shards| match decode(f.linktype, f.data) {
                Ok(Decoded::Ip(ip)) => FlowKey::of(&ip).shard(shards),
                _ => 0,
            };
            if plain_ipv4(&f).is_some() {
                fast += 1;
            }
            for shards in [2, 3, 7] {
                assert_eq!(shard_of(&f, shards), full(shards), "{}", describe(&f));
                checked += 1;
            }
        }
        assert!(fast > packets.len() / 2, "the fast path took {fast} of {} packets", packets.len());
        assert!(checked > 0);
    }
}
