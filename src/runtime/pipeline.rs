//! The one path from packets to alerts, shared by live capture, `run --read` and `replay`.
//!
//! ```text
//! capture thread per source ──► bounded queue per worker ──► workers (decode, flows) ──►
//!     bounded event queue ──► analysis (inventory, rules, alerts, event log, metrics)
//! ```
//! Flows are sharded across workers by a symmetric hash of the flow key, so each flow lives in
//! exactly one worker's table. A file source blocks when the queues are full (nothing is lost);
//! a live source drops and counts (`camwatch_capture_dropped_packets_total{reason="queue"}`).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};

use crate::alert::evidence::{EvidenceConfig, EvidenceOutcome, EvidenceRecorder, EvidenceRequest};
use crate::alert::{Admit, Alert, Lifecycle};
use crate::analysis::app::{AppEvent, AppLayer, Output as AppOutput};
use crate::analysis::beacon::BeaconTracker;
use crate::analysis::device::Inventory;
use crate::capture::{Drops, Next, Source};
use crate::decode::{decode, Decoded, ErrorLayer};
use crate::detect::fields::{EventType as RuleEvent, Subject};
use crate::detect::{Category, RuleSet, Thresholds};
use crate::flow::{FlowKey, FlowTable};
use crate::model::event::{
    DeviceEvent, DeviceEventKind, Event, FirmwareEvent, FlowEndReason, FlowRecord, Micros, TrafficBatch,
    TrafficKey,
};
use crate::model::identity::{FirmwareChangeKind, Source as IdentitySource};
use crate::model::netset::{self, DestClass, NetSet};
use crate::model::packet::{IpPacket, RawPacket};
use crate::output::{eve_app, eve_device, eve_firmware, eve_flow, JsonLines};
use crate::proto::dns::PassiveDns;
use crate::runtime::config::Config;
use crate::store::Store;
use crate::telemetry::metrics::{
    AlertLabels, DeviceBytesLabels, DeviceInfoLabels, DeviceLabels, DeviceSeverityLabels, DropLabels,
    EventLabels, FirmwareLabels, LayerLabels, Metrics, ParseErrorLabels, ProtocolLabels, QueueLabels,
    ReasonLabels, ResultLabels, RuleLabels, SourceLabels, TransferLabels,
};

/// Where the analysis stage writes.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    pub alerts: Option<PathBuf>,
    pub events: Option<PathBuf>,
    /// Log each alert as it is raised (the daemon does; replay prints a summary instead).
    pub log_alerts: bool,
    /// State database: the inventory is loaded from it at start and written back as it changes.
    pub state: Option<PathBuf>,
    /// Evidence captures of each alert's flow; `None` writes none.
    pub evidence: Option<EvidenceConfig>,
}

/// What a run saw, for `replay`'s closing summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub packets: u64,
    pub bytes: u64,
    pub flows: u64,
    pub devices: usize,
    pub alerts: BTreeMap<String, u64>,
    pub suppressed: u64,
    /// Source errors (a truncated file, a failed interface); the run still analysed what it read.
    pub errors: Vec<String>,
}

enum WorkerMsg {
    Packet(RawPacket),
    /// Wall-clock time from a quiet live source, so flows time out without packets.
    Tick(Micros),
}

/// Everything a run shares: configuration, the swappable rules and the metrics.
pub struct Sensor {
    pub config: Config,
    pub devices: NetSet,
    pub rules: ArcSwap<RuleSet>,
    pub metrics: Arc<Metrics>,
    /// Fingerprint of the rules files the current rules were read from (see
    /// [`RuleSet::fingerprint`]); a change on disk means a reload is due.
    pub rules_fingerprint: AtomicU64,
    /// Woken after each journal write: the sinks deliver from the journal.
    pub journal_written: Arc<tokio::sync::Notify>,
    /// Answers from active DNS, learnt by the analysis stage before its next event.
    pub resolved:
        (Sender<crate::analysis::active_dns::Resolved>, Receiver<crate::analysis::active_dns::Resolved>),
}

impl Sensor {
    pub fn new(config: Config, rules: RuleSet, metrics: Arc<Metrics>) -> Result<Self, String> {
        let devices =
            netset::resolve(&config.devices.networks).map_err(|e| format!("devices.networks: {e}"))?;
        metrics.rules_loaded.set(i64::try_from(rules.rules.len()).unwrap_or(i64::MAX));
        Ok(Self {
            config,
            devices,
            rules: ArcSwap::from_pointee(rules),
            metrics,
            rules_fingerprint: AtomicU64::new(0),
            journal_written: Arc::new(tokio::sync::Notify::new()),
            resolved: bounded(4096),
        })
    }

    /// Runs sources to completion (files end, or `stop` is set), then drains every queue and
    /// flow table and flushes the outputs.
    pub fn run(
        &self,
        sources: Vec<Source>,
        outputs: &Outputs,
        stop: &AtomicBool,
        progress: &AtomicU64,
    ) -> anyhow::Result<Summary> {
        let workers = self.config.workers.max(1);
        let queue = self.config.capture.queue_packets.max(1);
        let mut analysis = Analysis::new(self, outputs)?;
        // Requests for evidence go to the worker that owns the flow, on channels of their own:
        // a worker ends when its packet channel closes, whatever the analysis still holds.
        let evidence_cfg = analysis.evidence.as_ref().map(|e| e.cfg.clone());
        let mut evidence_rxs = Vec::new();
        if let Some(e) = &mut analysis.evidence {
            for _ in 0..workers {
                let (tx, rx) = bounded::<EvidenceRequest>(EVIDENCE_REQUESTS);
                e.txs.push(Some(tx));
                evidence_rxs.push(Some(rx));
            }
        }
        let errors = std::sync::Mutex::new(Vec::new());
        let totals = (AtomicU64::new(0), AtomicU64::new(0));
        std::thread::scope(|scope| {
            let (ev_tx, ev_rx) = bounded::<Event>(4096);
            let mut worker_txs = Vec::new();
            for w in 0..workers {
                let (tx, rx) = bounded::<WorkerMsg>(queue);
                worker_txs.push(tx);
                let ev_tx = ev_tx.clone();
                let evidence = evidence_cfg.as_ref().zip(evidence_rxs.get_mut(w).and_then(Option::take));
                let evidence = evidence.map(|(cfg, rx)| (EvidenceRecorder::new(cfg), rx));
                std::thread::Builder::new()
                    .name(format!("camwatch-worker-{w}"))
                    .spawn_scoped(scope, move || Worker::new(self, w, workers, ev_tx, evidence).run(rx, stop))
                    .map_err(|e| anyhow::anyhow!("cannot start worker thread: {e}"))?;
            }
            drop(ev_tx);
            for (i, mut src) in sources.into_iter().enumerate() {
                let txs = worker_txs.clone();
                let errors = &errors;
                let totals = &totals;
                std::thread::Builder::new()
                    .name(format!("camwatch-capture-{i}"))
                    .spawn_scoped(scope, move || {
                        if let Err(e) = self.capture(&mut src, &txs, stop, progress, totals) {
                            tracing::error!(source = %e.source, reason = e.reason, "Capture stopped: {}.", e.message);
                            self.metrics.capture_errors.get_or_create(&ReasonLabels { reason: e.reason }).inc();
                            if let Ok(mut v) = errors.lock() {
                                v.push(e.to_string());
                            }
                        }
                    })
                    .map_err(|e| anyhow::anyhow!("cannot start capture thread: {e}"))?;
            }
            drop(worker_txs);
            for (n, ev) in ev_rx.iter().enumerate() {
                analysis.handle(ev);
                if n % 256 == 0 {
                    let depth = i64::try_from(ev_rx.len()).unwrap_or(i64::MAX);
                    self.metrics.queue_depth.get_or_create(&QueueLabels { queue: "events" }).set(depth);
                }
            }
            anyhow::Ok(())
        })?;
        let mut summary = analysis.finish();
        summary.errors = errors.into_inner().unwrap_or_default();
        summary.packets = totals.0.load(Ordering::Relaxed);
        summary.bytes = totals.1.load(Ordering::Relaxed);
        Ok(summary)
    }

    fn capture(
        &self,
        src: &mut Source,
        txs: &[Sender<WorkerMsg>],
        stop: &AtomicBool,
        progress: &AtomicU64,
        totals: &(AtomicU64, AtomicU64),
    ) -> Result<(), crate::capture::CaptureError> {
        let m = &self.metrics;
        let label = SourceLabels { source: src.label() };
        let reasons: &[&'static str] =
            if src.is_live() { &["queue", "kernel", "interface"] } else { &["queue"] };
        for reason in reasons {
            drop(m.capture_dropped.get_or_create(&DropLabels { source: label.source.clone(), reason }));
        }
        drop(m.capture_packets.get_or_create(&label));
        drop(m.capture_bytes.get_or_create(&label));
        let (mut pkts, mut bytes, mut queue_drops) = (0u64, 0u64, 0u64);
        let mut last_drops = Drops::default();
        let mut last_flush = Instant::now();
        let live = src.is_live();
        let tick_every = self.config.capture.read_timeout.max(Duration::from_millis(10));
        let mut last_tick: Option<Instant> = None;
        let flush = |pkts: &mut u64,
                     bytes: &mut u64,
                     queue_drops: &mut u64,
                     last_drops: &mut Drops,
                     src: &mut Source| {
            totals.0.fetch_add(*pkts, Ordering::Relaxed);
            totals.1.fetch_add(*bytes, Ordering::Relaxed);
            m.capture_packets.get_or_create(&label).inc_by(std::mem::take(pkts));
            let queued: usize = txs.iter().map(Sender::len).sum();
            m.queue_depth
                .get_or_create(&QueueLabels { queue: "packets" })
                .set(i64::try_from(queued).unwrap_or(i64::MAX));
            m.capture_bytes.get_or_create(&label).inc_by(std::mem::take(bytes));
            let q = std::mem::take(queue_drops);
            if q > 0 {
                m.capture_dropped
                    .get_or_create(&DropLabels { source: label.source.clone(), reason: "queue" })
                    .inc_by(q);
            }
            if let Some(d) = src.drops() {
                let k = d.kernel.saturating_sub(last_drops.kernel);
                let i = d.interface.saturating_sub(last_drops.interface);
                m.capture_dropped
                    .get_or_create(&DropLabels { source: label.source.clone(), reason: "kernel" })
                    .inc_by(k);
                m.capture_dropped
                    .get_or_create(&DropLabels { source: label.source.clone(), reason: "interface" })
                    .inc_by(i);
                *last_drops = d;
            }
        };
        let result = loop {
            if stop.load(Ordering::Relaxed) {
                break Ok(());
            }
            let before = src.consumed;
            let next = src.next_packet();
            progress.fetch_add(src.consumed.saturating_sub(before), Ordering::Relaxed);
            match next {
                Ok(Next::Packet(p)) => {
                    pkts += 1;
                    bytes += u64::from(p.wire_len);
                    let shard = if txs.len() == 1 { 0 } else { shard_of(&p, txs.len()) };
                    let Some(tx) = txs.get(shard) else { continue };
                    if live {
                        if let Err(TrySendError::Full(_)) = tx.try_send(WorkerMsg::Packet(p)) {
                            queue_drops += 1;
                        }
                    } else if tx.send(WorkerMsg::Packet(p)).is_err() {
                        break Ok(());
                    }
                }
                Ok(Next::Timeout) => last_tick = None,
                Ok(Next::End) => break Ok(()),
                Err(e) => break Err(e),
            }
            // A live link ticks every read timeout, busy or quiet: a worker whose flows are
            // quiet still times them out and finishes its evidence captures.
            if live && last_tick.is_none_or(|t| t.elapsed() >= tick_every) {
                let now = wall_micros();
                for tx in txs {
                    let _ = tx.try_send(WorkerMsg::Tick(now));
                }
                last_tick = Some(Instant::now());
            }
            if pkts >= 1024 || last_flush.elapsed() >= Duration::from_millis(250) {
                flush(&mut pkts, &mut bytes, &mut queue_drops, &mut last_drops, src);
                last_flush = Instant::now();
            }
        };
        flush(&mut pkts, &mut bytes, &mut queue_drops, &mut last_drops, src);
        result
    }

    /// Replaces the rules (SIGHUP); events already queued are matched by whichever set is
    /// current when they reach the analysis stage, so none is lost in the swap.
    pub fn swap_rules(&self, rules: RuleSet) {
        self.metrics.rules_loaded.set(i64::try_from(rules.rules.len()).unwrap_or(i64::MAX));
        self.rules.store(Arc::new(rules));
    }
}

/// Bound on a worker's per-device traffic batch between flushes.
const MAX_TRAFFIC_KEYS: usize = 16_384;

fn shard_of(p: &RawPacket, shards: usize) -> usize {
    match decode(p.linktype, &p.data) {
        Ok(Decoded::Ip(ip)) => FlowKey::of(&ip).shard(shards),
        _ => 0,
    }
}

/// Packet times further ahead of the sensor's wall clock than this move neither flow nor alert
/// time: a capture host's clock a little ahead is normal, a packet from next year is an error or
/// an attack, and believed it would end every flow and resolve every alert at once.
const MAX_AHEAD: Micros = 3_600_000_000;

fn believable(ts: Micros, wall: Micros) -> bool {
    ts <= wall.saturating_add(MAX_AHEAD)
}

fn wall_micros() -> Micros {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// One packet worker: decodes, tracks flows, and batches per-device traffic.
struct Worker<'s> {
    sensor: &'s Sensor,
    table: FlowTable,
    events: Sender<Event>,
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
    reported_refused: u64,
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
}

impl<'s> Worker<'s> {
    fn new(
        sensor: &'s Sensor,
        index: usize,
        workers: usize,
        events: Sender<Event>,
        evidence: Option<(EvidenceRecorder, Receiver<EvidenceRequest>)>,
    ) -> Self {
        Self {
            sensor,
            table: FlowTable::new(sensor.config.flow.clone(), index, workers),
            events,
            now: 0,
            last_flush: 0,
            traffic: HashMap::new(),
            last_seen: HashMap::new(),
            decode_errors: [0; 3],
            flows_opened: 0,
            seen: 0,
            wall: wall_micros(),
            future: 0,
            ended: Vec::new(),
            reported_active: 0,
            app: AppLayer::default(),
            app_out: AppOutput::default(),
            reported_refused: 0,
            evidence,
            evidence_out: Vec::new(),
            index,
            defrag: crate::flow::Defrag::default(),
            reported_defrag: (0, 0),
        }
    }

    fn run(mut self, rx: Receiver<WorkerMsg>, stop: &AtomicBool) {
        // Evidence requests are taken as they come, even when this worker gets no packets.
        let mut requests = self.evidence.as_ref().map(|(_, r)| r.clone());
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
                WorkerMsg::Packet(p) => self.packet(p),
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
        }
        let reason =
            if stop.load(Ordering::Relaxed) { FlowEndReason::Shutdown } else { FlowEndReason::EndOfCapture };
        self.table.drain(reason, &mut self.ended);
        self.send_ended();
        if let Some(req_rx) = requests {
            // Alerts on this worker's flows may still be raised from events queued ahead of this
            // marker: serve their requests until the analysis stage has read them all.
            let _ = self.events.send(Event::WorkerDone(self.index));
            while let Ok(req) = req_rx.recv() {
                self.take_request(req);
            }
        }
        if let Some((rec, _)) = &mut self.evidence {
            rec.finish(&mut self.evidence_out);
        }
        self.send_evidence();
        self.flush();
    }

    fn take_request(&mut self, req: EvidenceRequest) {
        if let Some((rec, _)) = &mut self.evidence {
            rec.request(req, &mut self.evidence_out);
        }
        self.send_evidence();
    }

    fn send_evidence(&mut self) {
        for o in self.evidence_out.drain(..) {
            let _ = self.events.send(Event::Evidence(o));
        }
    }

    fn packet(&mut self, p: RawPacket) {
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
        match decode(p.linktype, &p.data) {
            Err(e) => {
                let i = ErrorLayer::ALL.iter().position(|l| *l == e.layer).unwrap_or(0);
                self.decode_errors[i] += 1;
            }
            Ok(Decoded::Other) => {}
            Ok(Decoded::SadpL2 { payload, .. }) => match crate::analysis::app::sadp_l2(payload, p.ts) {
                Ok(e) => {
                    let _ = self.events.send(Event::App(Box::new(e)));
                }
                Err(reason) => {
                    let labels = ParseErrorLabels { protocol: "sadp", reason };
                    self.sensor.metrics.parse_errors.get_or_create(&labels).inc();
                }
            },
            Ok(Decoded::Arp(arp)) => {
                let _ = self.events.send(Event::Arp { ts: p.ts, arp });
            }
            // A fragment waits for the rest of its datagram; the datagram then goes on whole.
            Ok(Decoded::Ip(ip)) if ip.frag.is_some() => {
                if let Some(d) = self.defrag.add(&ip, p.ts) {
                    match crate::decode::reassembled(&ip, &d.payload, d.wire_bytes) {
                        Some(whole) => flow = Some(self.ip_packet(&whole, p.ts, d.fragments)),
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
            rec.packet(flow, p, &mut self.evidence_out);
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
            let _ = self.events.send(Event::FlowStart(start));
        }
        self.app.packet(rec, ip, tracked.to_server, ts, &mut self.app_out);
        self.send_app();
        let len = u64::from(ip.ip_len);
        let devices = &self.sensor.devices;
        if devices.contains(ip.src_ip) {
            let key = TrafficKey { device: ip.src_ip, sent: true, class: DestClass::of(ip.dst_ip) };
            *self.traffic.entry(key).or_default() += len;
            let seen = self.last_seen.entry(ip.src_ip).or_default();
            *seen = (*seen).max(ts);
        }
        if devices.contains(ip.dst_ip) {
            let key = TrafficKey { device: ip.dst_ip, sent: false, class: DestClass::of(ip.src_ip) };
            *self.traffic.entry(key).or_default() += len;
        }
        tracked.flow_id
    }

    fn expire(&mut self) {
        self.table.expire(self.now, &mut self.ended);
        self.send_ended();
    }

    fn send_ended(&mut self) {
        let ended = std::mem::take(&mut self.ended);
        for rec in ended {
            if rec.reason != FlowEndReason::Active {
                let labels = ReasonLabels { reason: rec.reason.as_str() };
                self.sensor.metrics.flows_evicted.get_or_create(&labels).inc();
                self.app.end(&rec, &mut self.app_out);
                self.send_app();
                if let Some((r, _)) = &mut self.evidence {
                    r.flow_ended(rec.flow_id, &mut self.evidence_out);
                }
            }
            let _ = self.events.send(Event::Flow(rec));
        }
        self.send_evidence();
    }

    fn send_app(&mut self) {
        for f in self.app_out.failures.drain(..) {
            let labels = ParseErrorLabels { protocol: f.protocol, reason: f.reason };
            self.sensor.metrics.parse_errors.get_or_create(&labels).inc();
        }
        for e in self.app_out.events.drain(..) {
            let _ = self.events.send(Event::App(Box::new(e)));
        }
    }

    /// Hands over counters: metrics the worker owns directly, device traffic to the analysis.
    fn flush(&mut self) {
        self.last_flush = self.now;
        let m = &self.sensor.metrics;
        for (i, n) in self.decode_errors.iter_mut().enumerate() {
            if *n > 0 {
                let layer = ErrorLayer::ALL.get(i).map_or("link", |l| l.as_str());
                m.decode_errors.get_or_create(&LayerLabels { layer }).inc_by(std::mem::take(n));
            }
        }
        m.flows.inc_by(std::mem::take(&mut self.flows_opened));
        m.future_timestamps.inc_by(std::mem::take(&mut self.future));
        let (ok, dropped) = (self.defrag.reassembled, self.defrag.dropped);
        let (ok0, dropped0) = std::mem::replace(&mut self.reported_defrag, (ok, dropped));
        m.fragmented_datagrams.get_or_create(&ResultLabels { result: "reassembled" }).inc_by(ok - ok0);
        m.fragmented_datagrams.get_or_create(&ResultLabels { result: "dropped" }).inc_by(dropped - dropped0);
        m.streams_refused.inc_by(self.app.refused - self.reported_refused);
        self.reported_refused = self.app.refused;
        let active = i64::try_from(self.table.len()).unwrap_or(i64::MAX);
        m.flows_active.inc_by(active - self.reported_active);
        self.reported_active = active;
        if !self.traffic.is_empty() || !self.last_seen.is_empty() {
            let mut batch = TrafficBatch {
                bytes: self.traffic.drain().collect(),
                last_seen: self.last_seen.drain().collect(),
            };
            batch.bytes.sort_unstable();
            batch.last_seen.sort_unstable();
            let _ = self.events.send(Event::Traffic(batch));
        }
    }
}

/// The single-threaded analysis stage: inventory, rules, alerts, event log and device metrics.
struct Analysis<'s> {
    sensor: &'s Sensor,
    inventory: Inventory,
    lifecycle: Lifecycle,
    thresholds: Thresholds,
    journal: Option<JsonLines>,
    events: Option<JsonLines>,
    log_alerts: bool,
    /// Metric label per device; devices past the cap share `overflow`.
    labels: HashMap<IpAddr, String>,
    summary: Summary,
    last_event_flush: Instant,
    passive_dns: PassiveDns,
    /// Newest packet time handled (active DNS answers are learnt at it).
    clock: Micros,
    /// Names a flow's own messages gave its destination (TLS SNI, HTTP Host), until it ends.
    flow_names: HashMap<u64, String>,
    store: Option<Store>,
    beacons: BeaconTracker,
    evidence: Option<EvidenceState>,
}

/// Evidence requests sent to one worker and not yet taken up; beyond it an alert goes out
/// without evidence (`camwatch_evidence_captures_total{result="skipped"}`).
const EVIDENCE_REQUESTS: usize = 256;

/// Alerts held back until their evidence capture is finished; beyond it they go out without.
const EVIDENCE_PENDING: usize = 10_000;

/// The analysis stage's side of evidence: where requests go, and the alerts waiting for them.
struct EvidenceState {
    cfg: EvidenceConfig,
    /// Per worker; `None` once the worker said it is done.
    txs: Vec<Option<Sender<EvidenceRequest>>>,
    pending: HashMap<String, Alert>,
    last_prune: Option<Instant>,
}

/// Evidence retention runs at most this often.
const PRUNE_EVERY: Duration = Duration::from_secs(10);

/// Beacon events below this score are not written to the event log (rules still see them).
const BEACON_LOG_SCORE: f64 = 0.5;

/// The tag of rules whose match means the device's firmware is in a vulnerable range
/// (`camwatch_device_firmware_vulnerable`).
pub const VULNERABLE_FIRMWARE_TAG: &str = "vulnerable-firmware";

/// Alerts firing at once; past it the one closest to resolving is forgotten.
const ACTIVE_ALERTS: usize = 20_000;

/// Flows whose SNI/Host name is remembered at once.
const FLOW_NAMES: usize = 100_000;

/// Addresses remembered by the passive DNS map.
const PASSIVE_DNS_ENTRIES: usize = 100_000;

impl<'s> Analysis<'s> {
    fn new(sensor: &'s Sensor, outputs: &Outputs) -> anyhow::Result<Self> {
        let open = |p: &Option<PathBuf>| -> anyhow::Result<Option<JsonLines>> {
            p.as_ref()
                .map(|p| {
                    JsonLines::open(p)
                        .map_err(|e| anyhow::anyhow!("{}: cannot open for writing: {e}", p.display()))
                })
                .transpose()
        };
        let d = &sensor.config.devices;
        let mut inventory =
            Inventory::new(sensor.devices.clone(), d.max_devices, d.max_unexpected_destinations);
        let store = match &outputs.state {
            Some(path) => {
                let store = Store::open(path).map_err(anyhow::Error::msg)?;
                let devices = store.load().map_err(anyhow::Error::msg)?;
                tracing::info!(devices = devices.len(), path = %path.display(), "Inventory loaded.");
                inventory.restore(devices);
                Some(store)
            }
            None => None,
        };
        let mut a = Self {
            sensor,
            inventory,
            lifecycle: Lifecycle::new(ACTIVE_ALERTS),
            thresholds: Thresholds::new(100_000),
            journal: open(&outputs.alerts)?,
            events: open(&outputs.events)?,
            log_alerts: outputs.log_alerts,
            labels: HashMap::new(),
            summary: Summary::default(),
            last_event_flush: Instant::now(),
            passive_dns: PassiveDns::new(PASSIVE_DNS_ENTRIES),
            clock: 0,
            flow_names: HashMap::new(),
            store,
            beacons: BeaconTracker::new(sensor.config.beacon.clone()),
            evidence: None,
        };
        if let Some(cfg) = &outputs.evidence {
            a.evidence = Some(a.open_evidence(cfg)?);
        }
        if let Some(journal) = &outputs.alerts {
            let rules = sensor.rules.load();
            let firing = a.lifecycle.restore(journal, |id| {
                rules.rules.iter().find(|r| r.id == id).map(crate::detect::Rule::resolve_after)
            });
            if firing > 0 {
                tracing::info!(firing, journal = %journal.display(), "Firing alerts taken up from the journal.");
            }
            let active: Vec<(String, String)> =
                a.lifecycle.active().map(|al| (al.rule.id.clone(), al.rule.severity.clone())).collect();
            for (rule, severity) in active {
                a.metrics().alerts_active.get_or_create(&AlertLabels { rule, severity }).inc();
            }
        }
        let restored: Vec<IpAddr> = a.inventory.devices().map(|d| d.ip).collect();
        for ip in restored {
            a.publish_device(ip);
            a.vulnerable_after_restart(ip);
        }
        a.inventory.take_dirty();
        Ok(a)
    }

    /// A device restored from the state database reports no firmware event until it announces
    /// itself again: ask the firmware rules tagged `vulnerable-firmware` about its current
    /// version now (matching only: nothing is alerted twice).
    fn vulnerable_after_restart(&mut self, ip: IpAddr) {
        let Some(entry) = self.inventory.get(ip).and_then(|d| d.firmware.current()).cloned() else { return };
        let ev = FirmwareEvent {
            ts: entry.last_seen,
            ip,
            change: crate::model::identity::FirmwareChange {
                kind: FirmwareChangeKind::FirstSeen,
                version: entry.version,
                source: entry.source,
                previous: None,
            },
        };
        let rules = self.sensor.rules.load();
        let mut matches = Vec::new();
        rules.matches(&Subject::from_firmware(&ev), &self.inventory, &mut matches);
        if matches.iter().any(|m| m.rule.tags.iter().any(|t| t == VULNERABLE_FIRMWARE_TAG)) {
            let device = self.label(ip);
            self.metrics().device_firmware_vulnerable.get_or_create(&DeviceLabels { device }).set(1);
        }
    }

    /// Creates the evidence directory (0700), clears captures a crash left unfinished and applies
    /// retention once; the directory is made absolute, so alerts carry a path that works anywhere.
    fn open_evidence(&self, cfg: &EvidenceConfig) -> anyhow::Result<EvidenceState> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = &cfg.dir;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| anyhow::anyhow!("{}: cannot create the evidence directory: {e}", dir.display()))?;
        let dir = std::fs::canonicalize(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
        if let Err(e) = crate::alert::evidence::remove_partials(&dir) {
            tracing::warn!(dir = %dir.display(), "Unfinished evidence captures could not be removed: {e}.");
        }
        let cfg = EvidenceConfig { dir, ..cfg.clone() };
        self.prune_evidence(&cfg);
        Ok(EvidenceState { cfg, txs: Vec::new(), pending: HashMap::new(), last_prune: Some(Instant::now()) })
    }

    /// Retention by age and total size; the gauges say what is kept.
    fn prune_evidence(&self, cfg: &EvidenceConfig) {
        match crate::alert::evidence::prune(&cfg.dir, cfg.max_total_bytes, cfg.max_age, SystemTime::now()) {
            Ok(stats) => {
                self.metrics().evidence_files.set(i64::try_from(stats.files).unwrap_or(i64::MAX));
                self.metrics().evidence_bytes.set(i64::try_from(stats.bytes).unwrap_or(i64::MAX));
            }
            Err(e) => tracing::warn!(dir = %cfg.dir.display(), "Evidence retention failed: {e}."),
        }
    }

    /// Sends an alert on: to the journal at once, or, when its flow's evidence is being captured,
    /// once the capture is finished (its path and SHA-256 go into the alert).
    fn emit(&mut self, alert: Alert) {
        let Some(ev) = &mut self.evidence else { return self.journal(&alert) };
        if alert.flow_id == 0 || ev.txs.is_empty() {
            return self.journal(&alert);
        }
        if ev.pending.len() >= EVIDENCE_PENDING {
            self.metrics().evidence_captures.get_or_create(&ResultLabels { result: "skipped" }).inc();
            return self.journal(&alert);
        }
        // Flow ids are numbered per worker: worker w gives out w+1, w+1+n, w+1+2n, …
        let worker = usize::try_from((alert.flow_id - 1) % ev.txs.len() as u64).unwrap_or(0);
        let req = EvidenceRequest {
            id: alert.id.clone(),
            flow_id: alert.flow_id,
            ts: crate::model::time::parse_rfc3339(&alert.timestamp).unwrap_or(self.clock),
        };
        match ev.txs.get(worker).and_then(Option::as_ref).map(|tx| tx.try_send(req)) {
            Some(Ok(())) => {
                ev.pending.insert(alert.id.clone(), alert);
            }
            _ => {
                self.metrics().evidence_captures.get_or_create(&ResultLabels { result: "skipped" }).inc();
                self.journal(&alert);
            }
        }
    }

    /// A worker finished an evidence capture: the alert waiting for it goes out.
    fn evidence_done(&mut self, outcome: EvidenceOutcome) {
        let Some(ev) = &mut self.evidence else { return };
        let alert = ev.pending.remove(outcome.id());
        let cfg = ev.cfg.clone();
        // Retention lists the directory: at most once per PRUNE_EVERY, not per alert; between
        // runs the gauges count what was written.
        let mut prune = false;
        if let EvidenceOutcome::Written(done) = &outcome {
            prune = ev.last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY);
            if prune {
                ev.last_prune = Some(Instant::now());
            }
            let bytes = i64::try_from(done.bytes).unwrap_or(i64::MAX);
            self.sensor.metrics.evidence_files.inc();
            self.sensor.metrics.evidence_bytes.inc_by(bytes);
        }
        let result = match &outcome {
            EvidenceOutcome::Written(_) => "ok",
            EvidenceOutcome::Failed { .. } => "error",
            EvidenceOutcome::Skipped { .. } => "skipped",
        };
        self.metrics().evidence_captures.get_or_create(&ResultLabels { result }).inc();
        match &outcome {
            EvidenceOutcome::Written(_) => {
                if prune {
                    self.prune_evidence(&cfg);
                }
            }
            EvidenceOutcome::Failed { id, error } => {
                tracing::error!(alert = %id, "Evidence capture failed: {error}.");
            }
            EvidenceOutcome::Skipped { .. } => {}
        }
        let Some(mut alert) = alert else { return };
        if let EvidenceOutcome::Written(done) = outcome {
            alert.evidence.pcap = Some(done.path.display().to_string());
            alert.evidence.sha256 = Some(done.sha256);
            alert.evidence.packets = Some(done.packets);
        }
        self.journal(&alert);
    }

    /// Sends the alert waiting for evidence with this id now, without it.
    fn release_pending(&mut self, id: &str) {
        if let Some(alert) = self.evidence.as_mut().and_then(|e| e.pending.remove(id)) {
            self.journal(&alert);
        }
    }

    /// Sets the device's info series from the inventory.
    fn publish_device(&mut self, ip: IpAddr) {
        let Some(d) = self.inventory.get(ip) else { return };
        let (mac, vendor, model, firmware) = (
            d.mac.map(crate::model::event::format_mac).unwrap_or_default(),
            d.vendor().unwrap_or_default().to_string(),
            d.model().unwrap_or_default().to_string(),
            d.firmware_version().unwrap_or_default().to_string(),
        );
        self.metrics().devices.set(i64::try_from(self.inventory.len()).unwrap_or(i64::MAX));
        let device = self.label(ip);
        if device != "overflow" {
            if !firmware.is_empty() {
                // Present (0) for every device whose firmware is known; the firmware rules set it.
                drop(
                    self.metrics()
                        .device_firmware_vulnerable
                        .get_or_create(&DeviceLabels { device: device.clone() }),
                );
            }
            self.metrics().device_info.set(DeviceInfoLabels { device, mac, vendor, model, firmware });
        }
    }

    fn app(&mut self, e: &AppEvent) {
        self.metrics().app_messages.get_or_create(&ProtocolLabels { protocol: e.app.protocol() }).inc();
        let line = eve_app(e, &self.sensor.config.sensor);
        self.log(&line);
        match &e.app {
            crate::analysis::app::App::Dns(m) if m.response => {
                self.passive_dns.learn(m, e.ts);
                let n = i64::try_from(self.passive_dns.len()).unwrap_or(i64::MAX);
                self.metrics().passive_dns_entries.set(n);
            }
            crate::analysis::app::App::Tls(h) => {
                if let Some(sni) = &h.sni {
                    self.name_flow(e.flow_id, sni);
                }
            }
            crate::analysis::app::App::Http(t) => {
                if let Some(host) = &t.request.hostname {
                    self.name_flow(e.flow_id, host);
                }
            }
            crate::analysis::app::App::FirmwareTransfer(t) => {
                let labels = TransferLabels {
                    direction: t.direction,
                    completed: if t.completed { "true" } else { "false" },
                };
                self.metrics().firmware_transfers.get_or_create(&labels).inc();
            }
            _ => {}
        }
        for (ip, source, obs) in crate::analysis::signals::observations(e) {
            self.identify(ip, source, &obs, e.ts);
        }
        // For a DNS message the name that matters is the one asked about, not the resolver's.
        let name = match &e.app {
            crate::analysis::app::App::Dns(m) => m.queries.first().map(|q| q.rrname.clone()),
            _ => self.dest_name(e.flow_id, e.dest_ip, e.ts),
        };
        if let Some(subject) = Subject::from_app(e, name.as_deref()) {
            self.evaluate(&subject);
        }
    }

    fn name_flow(&mut self, flow_id: u64, name: &str) {
        // A Host header holding an address names nothing.
        if name.parse::<IpAddr>().is_ok() {
            return;
        }
        if self.flow_names.len() < FLOW_NAMES || self.flow_names.contains_key(&flow_id) {
            self.flow_names.insert(flow_id, name.to_string());
        }
    }

    /// The destination's name: what the flow itself said (SNI, Host), else passive DNS.
    fn dest_name(&self, flow_id: u64, dest: IpAddr, ts: Micros) -> Option<String> {
        self.flow_names
            .get(&flow_id)
            .cloned()
            .or_else(|| self.passive_dns.lookup(dest, ts).map(str::to_string))
    }

    fn identify(
        &mut self,
        ip: IpAddr,
        source: IdentitySource,
        obs: &crate::model::identity::Observation,
        ts: Micros,
    ) {
        let updates = self.inventory.identify(ip, source, obs, ts);
        if updates.is_empty() {
            return;
        }
        for u in updates {
            match u {
                crate::analysis::device::Update::Identity(change) => {
                    let d = self.inventory.get(ip);
                    let ev = DeviceEvent {
                        ts,
                        kind: DeviceEventKind::Identity,
                        ip,
                        mac: d.and_then(|d| d.mac),
                        vendor: d.and_then(|d| d.vendor()).map(str::to_string),
                        organization: d.and_then(|d| d.organization.clone()),
                        change: Some(change),
                        previous_ip: None,
                    };
                    self.metrics().events.get_or_create(&EventLabels { event: "device" }).inc();
                    let line = eve_device(&ev, &self.sensor.config.sensor);
                    self.log(&line);
                }
                crate::analysis::device::Update::Firmware(change) => {
                    let kind = change.kind;
                    let ev = FirmwareEvent { ts, ip, change };
                    self.metrics().events.get_or_create(&EventLabels { event: "firmware" }).inc();
                    let line = eve_firmware(&ev, &self.sensor.config.sensor);
                    self.log(&line);
                    if kind != FirmwareChangeKind::FirstSeen {
                        tracing::warn!(device = %ip, kind = kind.as_str(), "Firmware {} to {}.", kind.as_str(), ev.change.version);
                    }
                    let device = self.label(ip);
                    self.metrics()
                        .firmware_changes
                        .get_or_create(&FirmwareLabels { device, kind: kind.as_str() })
                        .inc();
                    self.publish_device(ip);
                    // The new version is vulnerable only if a rule says so again.
                    let device = self.label(ip);
                    self.metrics().device_firmware_vulnerable.get_or_create(&DeviceLabels { device }).set(0);
                    self.evaluate(&Subject::from_firmware(&ev));
                }
            }
        }
        self.publish_device(ip);
    }

    /// Writes changed devices to the state database.
    fn save_state(&mut self) {
        let Some(store) = &mut self.store else { return };
        for ip in self.inventory.take_removed() {
            if let Err(e) = store.remove(ip) {
                tracing::error!("State database delete failed: {e}.");
                self.sensor.metrics.state_errors.inc();
            }
        }
        let dirty = self.inventory.take_dirty();
        if dirty.is_empty() {
            return;
        }
        let inventory = &self.inventory;
        if let Err(e) = store.save(dirty.iter().filter_map(|ip| inventory.get(*ip))) {
            tracing::error!("State database write failed: {e}.");
            self.sensor.metrics.state_errors.inc();
        }
    }

    fn metrics(&self) -> &Metrics {
        &self.sensor.metrics
    }

    /// The device's metric label: its address, or `overflow` once `max_metric_devices`
    /// devices have their own series (the map is bounded by the same cap).
    fn label(&mut self, ip: IpAddr) -> String {
        if let Some(l) = self.labels.get(&ip) {
            return l.clone();
        }
        if self.labels.len() >= self.sensor.config.devices.max_metric_devices {
            return "overflow".into();
        }
        let l = ip.to_string();
        self.labels.insert(ip, l.clone());
        l
    }

    fn handle(&mut self, ev: Event) {
        if let Event::WorkerDone(w) = ev {
            // Every event of that worker's flows has been read: no request will follow.
            if let Some(slot) = self.evidence.as_mut().and_then(|e| e.txs.get_mut(w)) {
                *slot = None;
            }
            return;
        }
        let ts = match &ev {
            Event::FlowStart(f) => f.start,
            Event::Flow(f) => f.end,
            Event::Arp { ts, .. } => *ts,
            Event::App(a) => a.ts,
            Event::Firmware(f) => f.ts,
            Event::Device(d) => d.ts,
            Event::Traffic(_) | Event::Evidence(_) | Event::WorkerDone(_) => self.clock,
        };
        if believable(ts, wall_micros()) {
            self.clock = self.clock.max(ts);
        }
        if self.lifecycle.rebase_due() && self.clock > 0 {
            self.lifecycle.rebase(self.clock);
        }
        self.resolve_ended();
        while let Ok(answer) = self.sensor.resolved.1.try_recv() {
            self.passive_dns.learn(&answer.as_message(), self.clock);
        }
        self.metrics().events.get_or_create(&EventLabels { event: ev.type_name() }).inc();
        match &ev {
            Event::FlowStart(f) => {
                self.observe(f.src_ip, f.src_mac, f.start);
                self.observe(f.dest_ip, f.dest_mac, f.start);
                let mut first_contact = None;
                if self.inventory.is_device(f.src_ip) {
                    let name = self.passive_dns.lookup(f.dest_ip, f.start).map(str::to_string);
                    first_contact = self.inventory.contacted(
                        f.src_ip,
                        f.dest_ip,
                        f.dest_port,
                        f.proto,
                        name.as_deref(),
                        f.start,
                    );
                }
                let name = self.dest_name(f.flow_id, f.dest_ip, f.start);
                let subject = Subject::from_flow(RuleEvent::FlowStart, f, f.start, name.as_deref());
                self.evaluate(&subject.with_first_contact(first_contact));
            }
            Event::Flow(f) => {
                self.observe(f.src_ip, f.src_mac, f.end);
                self.observe(f.dest_ip, f.dest_mac, f.end);
                if f.reason != FlowEndReason::Active {
                    self.summary.flows += 1;
                }
                let mut line = eve_flow(f, &self.sensor.config.sensor);
                let name = self.dest_name(f.flow_id, f.dest_ip, f.end);
                if let (Some(name), Some(o)) = (&name, line.as_object_mut()) {
                    o.insert("dest_name".into(), serde_json::Value::String(name.clone()));
                }
                self.log(&line);
                // The responder answered: a TCP SYN-ACK, or a UDP reply from a well-known port
                // (replies from high ports are mostly media and callbacks on negotiated ports).
                let answered = match f.proto {
                    crate::model::packet::PROTO_TCP => f.tcp_flags_tc & 0x12 == 0x12,
                    crate::model::packet::PROTO_UDP => f.pkts_toclient > 0 && f.dest_port < 1024,
                    _ => false,
                };
                let first_service = if answered && self.inventory.is_device(f.dest_ip) {
                    self.inventory.served(f.dest_ip, f.dest_port, f.proto, f.end)
                } else {
                    None
                };
                let subject = Subject::from_flow(RuleEvent::Flow, f, f.end, name.as_deref());
                self.evaluate(&subject.with_first_service(first_service));
                if f.reason != FlowEndReason::Active {
                    if self.inventory.is_device(f.src_ip) {
                        if let Some(b) =
                            self.beacons.connection(f.src_ip, f.dest_ip, f.start, f.bytes_toserver)
                        {
                            if b.score >= BEACON_LOG_SCORE {
                                let line = crate::output::eve_beacon(&b, f, &self.sensor.config.sensor);
                                self.log(&line);
                            }
                            self.metrics().events.get_or_create(&EventLabels { event: "beacon" }).inc();
                            self.evaluate(&Subject::from_beacon(&b, f, name.as_deref()));
                        }
                    }
                    self.flow_names.remove(&f.flow_id);
                }
            }
            Event::Arp { ts, arp } => {
                let ip = IpAddr::V4(arp.sender_ip);
                self.observe(ip, Some(arp.sender_mac), *ts);
                if let Some(dev) = self.inventory.arp_claim(ip, arp.sender_mac, *ts) {
                    self.device_changed(&dev);
                }
            }
            Event::Evidence(_) => {
                if let Event::Evidence(o) = ev {
                    self.evidence_done(o);
                }
            }
            Event::Traffic(batch) => self.traffic(batch),
            Event::App(a) => self.app(a),
            Event::Device(_) | Event::Firmware(_) | Event::WorkerDone(_) => {}
        }
    }

    fn observe(&mut self, ip: IpAddr, mac: Option<[u8; 6]>, ts: Micros) {
        if let Some(dev) = self.inventory.observe(ip, mac, ts) {
            self.device_changed(&dev);
        }
    }

    fn device_changed(&mut self, dev: &DeviceEvent) {
        self.metrics().events.get_or_create(&EventLabels { event: "device" }).inc();
        if let Some(old) = dev.previous_ip {
            tracing::info!(device = %dev.ip, previous = %old, "Device renumbered: its identity moved with its MAC.");
            // The old address's identity series goes; its counters stay as they were.
            if let Some(label) = self.labels.remove(&old) {
                self.metrics().device_info.remove(&label);
            }
        }
        let line = eve_device(dev, &self.sensor.config.sensor);
        self.log(&line);
        self.publish_device(dev.ip);
    }

    fn traffic(&mut self, batch: &TrafficBatch) {
        for (key, bytes) in &batch.bytes {
            let device = self.label(key.device);
            let labels = DeviceBytesLabels {
                device,
                direction: if key.sent { "sent" } else { "received" },
                dest_class: key.class.as_str(),
            };
            self.metrics().device_bytes.get_or_create(&labels).inc_by(*bytes);
        }
        for (ip, ts) in &batch.last_seen {
            self.observe(*ip, None, *ts);
            self.inventory.sent(*ip, *ts);
            let device = self.label(*ip);
            self.metrics().device_last_seen.get_or_create(&DeviceLabels { device }).set(*ts as f64 / 1e6);
        }
        if self.last_event_flush.elapsed() >= Duration::from_secs(1) {
            self.flush_events();
        }
    }

    fn evaluate(&mut self, s: &Subject<'_>) {
        let rules = self.sensor.rules.load();
        let mut matches = Vec::new();
        rules.matches(s, &self.inventory, &mut matches);
        for m in matches {
            let rule = m.rule;
            if matches!(rule.category, Category::Egress | Category::Cloud) && s.src_ip != s.dest_ip {
                let peer = if s.src_ip == m.device { s.dest_ip } else { s.src_ip };
                if let Some(n) = self.inventory.flag_destination(m.device, peer) {
                    let device = self.label(m.device);
                    self.metrics()
                        .device_unexpected
                        .get_or_create(&DeviceLabels { device })
                        .set(i64::try_from(n).unwrap_or(i64::MAX));
                }
            }
            if rule.threshold.is_some() {
                let value = rule.threshold_value(s, &self.inventory, m.device);
                if !self.thresholds.add(rule, m.device, s, value, s.ts) {
                    continue;
                }
            }
            if rule.tags.iter().any(|t| t == VULNERABLE_FIRMWARE_TAG) && s.event == RuleEvent::Firmware {
                let device = self.label(m.device);
                self.metrics().device_firmware_vulnerable.get_or_create(&DeviceLabels { device }).set(1);
            }
            // Seen now: a flow's end record arrives an idle timeout after its last packet.
            let seen = s.ts.max(self.clock);
            let fingerprint = match self.lifecycle.admit(rule, m.device, s, seen) {
                Admit::Raise(fp) => fp,
                Admit::Ongoing => {
                    self.summary.suppressed += 1;
                    self.metrics()
                        .alerts_suppressed
                        .get_or_create(&RuleLabels { rule: rule.id.clone() })
                        .inc();
                    continue;
                }
            };
            let device = self.inventory.get(m.device);
            let alert = Alert::new(rule, m.device, device, s, fingerprint, &self.sensor.config.sensor);
            let forgotten = self.lifecycle.fire(alert.clone(), fingerprint, seen, rule.resolve_after());
            for f in forgotten {
                let labels = AlertLabels { rule: f.rule.id.clone(), severity: f.rule.severity.clone() };
                self.metrics().alerts_active.get_or_create(&labels).dec();
                tracing::warn!(rule = %f.rule.id, "Too many alerts firing: {} is no longer tracked.", f.summary);
            }
            let labels = AlertLabels { rule: rule.id.clone(), severity: alert.rule.severity.clone() };
            self.metrics().alerts_active.get_or_create(&labels).inc();
            drop(self.metrics().alerts_resolved.get_or_create(&labels));
            let device = self.label(m.device);
            self.metrics()
                .device_alerts
                .get_or_create(&DeviceSeverityLabels { device, severity: alert.rule.severity.clone() })
                .inc();
            self.raise(alert);
        }
    }

    /// Resolves the alerts whose condition has not been seen for their rule's `resolve_after`.
    fn resolve_ended(&mut self) {
        let mut resolved = Vec::new();
        self.lifecycle.expire(self.clock, &mut resolved);
        for alert in resolved {
            let labels = AlertLabels { rule: alert.rule.id.clone(), severity: alert.rule.severity.clone() };
            self.metrics().alerts_active.get_or_create(&labels).dec();
            self.metrics().alerts_resolved.get_or_create(&labels).inc();
            if self.log_alerts {
                tracing::info!(rule = %alert.rule.id, fingerprint = %alert.fingerprint, "Resolved: {}.", alert.summary);
            }
            // Its firing record first, should its evidence still be coming.
            self.release_pending(&alert.id);
            self.journal(&alert);
        }
    }

    fn raise(&mut self, alert: Alert) {
        *self.summary.alerts.entry(alert.rule.id.clone()).or_default() += 1;
        self.metrics()
            .alerts
            .get_or_create(&AlertLabels {
                rule: alert.rule.id.clone(),
                severity: alert.rule.severity.clone(),
            })
            .inc();
        if self.log_alerts {
            tracing::warn!(
                rule = %alert.rule.id,
                severity = alert.rule.severity,
                community_id = %alert.community_id,
                "Alert: {}.",
                alert.summary
            );
        }
        self.emit(alert);
    }

    /// Appends an alert record to the journal, which every sink delivers from.
    fn journal(&mut self, alert: &Alert) {
        if let Some(j) = &mut self.journal {
            let result = j.write(alert).and_then(|()| j.flush());
            let outcome = if let Err(e) = &result {
                tracing::error!(path = %j.path().display(), "Alert journal write failed: {e}.");
                "error"
            } else {
                "ok"
            };
            let labels = crate::sink::SinkResultLabels { sink: "journal".into(), result: outcome };
            self.metrics().sinks.deliveries.get_or_create(&labels).inc();
            self.sensor.journal_written.notify_waiters();
        }
    }

    fn log(&mut self, line: &serde_json::Value) {
        if let Some(out) = &mut self.events {
            if out.write(line).is_err() {
                self.sensor.metrics.event_log_errors.inc();
            }
        }
    }

    fn flush_events(&mut self) {
        self.last_event_flush = Instant::now();
        self.save_state();
        if let Some(out) = &mut self.events {
            if let Err(e) = out.flush() {
                tracing::error!(path = %out.path().display(), "Event log flush failed: {e}.");
                self.sensor.metrics.event_log_errors.inc();
            }
        }
    }

    fn finish(mut self) -> Summary {
        // Requests the workers did not take up before they ended: the alerts go out without.
        let waiting: Vec<String> =
            self.evidence.as_ref().map(|e| e.pending.keys().cloned().collect()).unwrap_or_default();
        for id in waiting {
            self.release_pending(&id);
        }
        self.flush_events();
        if let Some(j) = &mut self.journal {
            let _ = j.flush();
        }
        let refused = self.inventory.refused;
        let m = self.metrics();
        m.devices_refused.inc_by(refused.saturating_sub(m.devices_refused.get()));
        let mut s = std::mem::take(&mut self.summary);
        s.devices = self.inventory.len();
        s
    }
}
