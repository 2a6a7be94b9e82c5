//! The one path from packets to alerts, shared by live capture, `run --read` and `replay`.
//!
//! ```text
//! capture thread per source ──► bounded queue per worker ──► workers (decode, flows) ──►
//!     bounded event queue ──► analysis (inventory, rules, alerts, event log, metrics)
//! ```
//! Flows are sharded across workers by a symmetric hash of the flow key, so each flow lives in
//! exactly one worker's table. A file source blocks when the queues are full (nothing is lost);
//! a live source drops and counts (`camwatch_capture_dropped_packets_total{reason="queue"}`).

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
use crate::capture::{Drops, Next, Source};
use crate::detect::RuleSet;
use crate::model::event::Event;
use crate::model::labels::ReasonLabels;
use crate::model::netset::{self, NetSet};
use crate::model::packet::RawPacket;
use crate::model::time::Micros;
use crate::runtime::config::Config;
use crate::telemetry::metrics::StageLabels;
use crate::telemetry::metrics::{Metrics, QueueLabels};

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
            let (ev_tx, ev_rx) = bounded::<Event>(4096);
            let mut worker_txs = Vec::new();
            for w in 0..workers {
                let (tx, rx) = bounded::<WorkerMsg>(queue);
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
            for (n, ev) in ev_rx.iter().enumerate() {
                let kind = ev.type_name();
                guard.run(|| format!("a {kind} event"), || analysis.handle(ev));
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
            drop(m.capture.dropped.get_or_create(&DropLabels { source: label.source.clone(), reason }));
        }
        drop(m.capture.packets.get_or_create(&label));
        drop(m.capture.bytes.get_or_create(&label));
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
            m.capture.packets.get_or_create(&label).inc_by(std::mem::take(pkts));
            let queued: usize = txs.iter().map(Sender::len).sum();
            m.queue_depth
                .get_or_create(&QueueLabels { queue: "packets" })
                .set(i64::try_from(queued).unwrap_or(i64::MAX));
            m.capture.bytes.get_or_create(&label).inc_by(std::mem::take(bytes));
            let q = std::mem::take(queue_drops);
            if q > 0 {
                m.capture
                    .dropped
                    .get_or_create(&DropLabels { source: label.source.clone(), reason: "queue" })
                    .inc_by(q);
            }
            if let Some(d) = src.drops() {
                let k = d.kernel.saturating_sub(last_drops.kernel);
                let i = d.interface.saturating_sub(last_drops.interface);
                m.capture
                    .dropped
                    .get_or_create(&DropLabels { source: label.source.clone(), reason: "kernel" })
                    .inc_by(k);
                m.capture
                    .dropped
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
        self.metrics.detect.rules_loaded.set(i64::try_from(rules.rules.len()).unwrap_or(i64::MAX));
        self.rules.store(Arc::new(rules));
    }
}
