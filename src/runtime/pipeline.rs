//! The one path from packets to alerts, shared by live capture, `run --read` and `replay`.
//!
//! ```text
//! capture thread per source ──► batches per worker ──► workers (decode, flows) ──►
//!     bounded queue of event batches ──► analysis (inventory, rules, alerts, event log, metrics)
//! ```
//! Flows are sharded across workers by a symmetric hash of the flow key, so each flow lives in
//! exactly one worker's table. Packets travel in [`Batch`]es: copied once into a reused buffer,
//! sent a few hundred at a time, and handed back empty by the worker (see
//! [`crate::capture::batch`]); a worker's events travel to the analysis stage the same way, one
//! vector per batch of packets. When every batch of a worker's ring is in flight, a file source
//! waits (nothing is lost) and a live source drops and counts
//! (`camwatch_capture_dropped_packets_total{reason="queue"}`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};

use super::guard::PanicGuard;
use super::stage::Analysis;
use super::worker::{shard_of, wall_micros, Worker};
use crate::alert::evidence::{EvidenceConfig, EvidenceRecorder};
use crate::capture::metrics::{DropLabels, SourceLabels};
use crate::capture::{Batch, Drops, Next, Ring, Source};
use crate::detect::RuleSet;
use crate::model::event::Event;
use crate::model::labels::ReasonLabels;
use crate::model::netset::{self, NetSet};
use crate::model::time::Micros;
use crate::runtime::config::Config;
use crate::telemetry::metrics::StageLabels;
use crate::telemetry::metrics::{Metrics, QueueLabels};

/// Event vectors queued between the workers and the analysis stage (each is the events of one
/// batch of packets).
const EVENT_BATCHES: usize = 256;

/// A live batch goes to its worker at the latest this long after its first packet.
const LIVE_BATCH_WAIT: Duration = Duration::from_millis(20);

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

pub(super) enum WorkerMsg {
    Packets(Batch),
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
        metrics.detect.rules_loaded.set(i64::try_from(rules.rules.len()).unwrap_or(i64::MAX));
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
        let (evidence_cfg, mut evidence_rxs) = analysis.evidence_channels(workers);
        let errors = std::sync::Mutex::new(Vec::new());
        let totals = (AtomicU64::new(0), AtomicU64::new(0));
        std::thread::scope(|scope| {
            let (ev_tx, ev_rx) = bounded::<Vec<Event>>(EVENT_BATCHES);
            let mut worker_txs = Vec::new();
            for w in 0..workers {
                // Room for every batch of every source's ring, and the ticks between them.
                let (tx, rx) = bounded::<WorkerMsg>(Ring::batches_for(queue) * sources.len().max(1) + 64);
                worker_txs.push(tx);
                let ev_tx = ev_tx.clone();
                let evidence = evidence_cfg.as_ref().zip(evidence_rxs.get_mut(w).and_then(Option::take));
                let evidence = evidence.map(|(cfg, rx)| (EvidenceRecorder::new(cfg).in_background(), rx));
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
                            self.metrics.capture.errors.get_or_create(&ReasonLabels { reason: e.reason }).inc();
                            if let Ok(mut v) = errors.lock() {
                                v.push(e.to_string());
                            }
                        }
                    })
                    .map_err(|e| anyhow::anyhow!("cannot start capture thread: {e}"))?;
            }
            drop(worker_txs);
            let panics =
                self.metrics.analysis_panics.get_or_create(&StageLabels { stage: "analysis" }).clone();
            let mut guard = PanicGuard::new("analysis", panics);
            let depth = self.metrics.queue_depth.get_or_create(&QueueLabels { queue: "events" }).clone();
            for (n, events) in ev_rx.iter().enumerate() {
                analysis.refresh_wall();
                for ev in events {
                    let kind = ev.type_name();
                    guard.run(|| format!("a {kind} event"), || analysis.handle(ev));
                }
                if n % 64 == 0 {
                    depth.set(i64::try_from(ev_rx.len()).unwrap_or(i64::MAX));
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
        if src.is_live() {
            tracing::info!(interface = %src.name(), "Capturing.");
        }
        let m = &self.metrics;
        let label = SourceLabels { source: src.label() };
        let packets_total = m.capture.packets.get_or_create(&label).clone();
        let bytes_total = m.capture.bytes.get_or_create(&label).clone();
        let queue_depth = m.queue_depth.get_or_create(&QueueLabels { queue: "packets" }).clone();
        // One statement each: a family's read guard must not live while another entry is made.
        let dropped = |reason| {
            m.capture.dropped.get_or_create(&DropLabels { source: label.source.clone(), reason }).clone()
        };
        let queue_dropped = dropped("queue");
        // A file has no kernel or interface drops: its series are not made.
        let (kernel_dropped, interface_dropped) =
            if src.is_live() { (dropped("kernel"), dropped("interface")) } else { Default::default() };
        let live = src.is_live();
        let ring_size = Ring::batches_for(self.config.capture.queue_packets.max(1));
        let mut rings: Vec<Ring> = txs.iter().map(|_| Ring::new(ring_size)).collect();
        let mut filling: Vec<Option<Batch>> = txs.iter().map(|_| None).collect();
        let (mut pkts, mut bytes, mut queue_drops, mut consumed) = (0u64, 0u64, 0u64, 0u64);
        let mut last_drops = Drops::default();
        let mut last_flush = Instant::now();
        let tick_every = self.config.capture.read_timeout.max(Duration::from_millis(10));
        let mut last_tick: Option<Instant> = None;
        // A live batch goes at the latest this long after its first packet, however quiet the link.
        let mut pending_since: Option<Instant> = None;
        let shards = txs.len();
        let mut flush = |pkts: &mut u64, bytes: &mut u64, queue_drops: &mut u64, src: &mut Source| {
            totals.0.fetch_add(*pkts, Ordering::Relaxed);
            totals.1.fetch_add(*bytes, Ordering::Relaxed);
            packets_total.inc_by(std::mem::take(pkts));
            bytes_total.inc_by(std::mem::take(bytes));
            let queued: usize = txs.iter().map(Sender::len).sum();
            queue_depth.set(i64::try_from(queued).unwrap_or(i64::MAX));
            queue_dropped.inc_by(std::mem::take(queue_drops));
            if let Some(d) = src.drops() {
                kernel_dropped.inc_by(d.kernel.saturating_sub(last_drops.kernel));
                interface_dropped.inc_by(d.interface.saturating_sub(last_drops.interface));
                last_drops = d;
            }
        };
        // Sends a worker's batch; false when the workers are gone (shutdown).
        let send = |shard: usize, batch: Batch, queue_drops: &mut u64| -> bool {
            let Some(tx) = txs.get(shard) else { return true };
            if live {
                match tx.try_send(WorkerMsg::Packets(batch)) {
                    Ok(()) => true,
                    Err(TrySendError::Full(WorkerMsg::Packets(b))) => {
                        *queue_drops += b.len() as u64;
                        b.recycle();
                        true
                    }
                    Err(_) => false,
                }
            } else {
                tx.send(WorkerMsg::Packets(batch)).is_ok()
            }
        };
        let result = loop {
            if stop.load(Ordering::Relaxed) {
                break Ok(());
            }
            let before = src.consumed;
            let next = src.next_frame(|f| {
                let shard = if shards == 1 { 0 } else { shard_of(&f, shards) };
                let slot = filling.get_mut(shard)?;
                if slot.is_none() {
                    *slot = rings.get_mut(shard).and_then(|r| r.take(!live));
                }
                let batch = slot.as_mut()?;
                batch.push(f);
                Some((shard, f.wire_len))
            });
            consumed += src.consumed.saturating_sub(before);
            match next {
                Ok(Next::Packet(pushed)) => {
                    pkts += 1;
                    match pushed {
                        Some((shard, wire_len)) => {
                            bytes += u64::from(wire_len);
                            if live && pending_since.is_none() {
                                pending_since = Some(Instant::now());
                            }
                            let full =
                                filling.get(shard).and_then(Option::as_ref).is_some_and(Batch::is_full);
                            if full {
                                if let Some(b) = filling.get_mut(shard).and_then(Option::take) {
                                    if !send(shard, b, &mut queue_drops) {
                                        break Ok(());
                                    }
                                }
                            }
                        }
                        // Every batch of that worker's ring is in flight: a live packet is lost.
                        None => queue_drops += 1,
                    }
                }
                Ok(Next::Timeout) => {}
                Ok(Next::End) => break Ok(()),
                Err(e) => break Err(e),
            }
            if live {
                // The kernel has nothing more for now (a live read does not block).
                let idle = matches!(next, Ok(Next::Timeout));
                // Partly filled batches go when the kernel has nothing more or their first
                // packet waited long enough.
                let now = Instant::now();
                if idle || pending_since.is_some_and(|t| now.duration_since(t) >= LIVE_BATCH_WAIT) {
                    let mut gone = false;
                    for (shard, slot) in filling.iter_mut().enumerate() {
                        if let Some(b) = slot.take_if(|b| !b.is_empty()) {
                            gone |= !send(shard, b, &mut queue_drops);
                        }
                    }
                    pending_since = None;
                    if gone {
                        break Ok(());
                    }
                }
                // A live link ticks every read timeout, busy or quiet: a worker whose flows are
                // quiet still times them out and finishes its evidence captures.
                if last_tick.is_none_or(|t| now.duration_since(t) >= tick_every) {
                    let wall = wall_micros();
                    for tx in txs {
                        let _ = tx.try_send(WorkerMsg::Tick(wall));
                    }
                    last_tick = Some(now);
                }
                if pkts >= 4096
                    || (idle && pkts > 0)
                    || now.duration_since(last_flush) >= Duration::from_millis(250)
                {
                    progress.fetch_add(std::mem::take(&mut consumed), Ordering::Relaxed);
                    flush(&mut pkts, &mut bytes, &mut queue_drops, src);
                    last_flush = now;
                }
                if idle {
                    // Until the kernel hands over packets, a tick is due or the sensor stops.
                    let until_tick = last_tick.map_or(tick_every, |t| tick_every.saturating_sub(t.elapsed()));
                    src.wait(until_tick.max(Duration::from_millis(1)));
                }
            } else if pkts >= 65_536 {
                progress.fetch_add(std::mem::take(&mut consumed), Ordering::Relaxed);
                flush(&mut pkts, &mut bytes, &mut queue_drops, src);
            }
        };
        for (shard, slot) in filling.iter_mut().enumerate() {
            if let Some(b) = slot.take_if(|b| !b.is_empty()) {
                send(shard, b, &mut queue_drops);
            }
        }
        progress.fetch_add(consumed, Ordering::Relaxed);
        flush(&mut pkts, &mut bytes, &mut queue_drops, src);
        result
    }

    /// Replaces the rules (SIGHUP); events already queued are matched by whichever set is
    /// current when they reach the analysis stage, so none is lost in the swap.
    pub fn swap_rules(&self, rules: RuleSet) {
        self.metrics.detect.rules_loaded.set(i64::try_from(rules.rules.len()).unwrap_or(i64::MAX));
        self.rules.store(Arc::new(rules));
    }
}
