//! The analysis stage: one thread that consumes every worker's events and owns the inventory,
//! the rules, the alert lifecycle, the event log, the state database and the device metrics.

use crate::model::FastMap as HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::alert::evidence::{EvidenceConfig, EvidenceOutcome, EvidenceRequest};
use crate::alert::metrics::{AlertLabels, SuppressedLabels};
use crate::alert::storm::{Storm, Verdict};
use crate::alert::{rule_key, storm_fingerprint, Admit, Alert, Lifecycle};
use crate::analysis::beacon::BeaconTracker;
use crate::analysis::degraded::Degraded;
use crate::analysis::device::{Inventory, Key};
use crate::analysis::metrics::{
    DeviceBytesLabels, DeviceInfoLabels, DeviceLabels, DeviceSeverityLabels, FirmwareLabels, ProtocolLabels,
    TransferLabels,
};
use crate::detect::fields::{EventType as RuleEvent, Subject};
use crate::detect::{Category, Rule, Thresholds};
use crate::model::app::AppEvent;
use crate::model::event::{
    DeviceEvent, DeviceEventKind, Event, FirmwareEvent, FlowEndReason, FlowRecord, TableEvictions,
    TrafficBatch,
};
use crate::model::identity::{FirmwareChangeKind, Source as IdentitySource};
use crate::model::labels::{ResultLabels, TableLabels};
use crate::model::time::Micros;
use crate::output::{eve_app, eve_firmware, EveDevice, EveFlow, JsonLines};
use crate::proto::dns::PassiveDns;
use crate::store::Store;
use crate::telemetry::metrics::{EventLabels, Metrics};

use super::pipeline::{Outputs, Sensor, Summary};
use super::worker::{believable, wall_micros};

/// The single-threaded analysis stage: inventory, rules, alerts, event log and device metrics.
pub(super) struct Analysis<'s> {
    sensor: &'s Sensor,
    inventory: Inventory,
    lifecycle: Lifecycle,
    storm: Storm,
    /// Evictions of the bounded tables per minute, for the `sensor` event.
    degraded: Degraded,
    /// Device-table and beacon-pair evictions already counted.
    devices_evicted: u64,
    pairs_evicted: u64,
    pairs_evicted_memory: u64,
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
    /// Hours of device traffic by class of peer not yet written to the state database.
    traffic: HashMap<(u64, crate::model::netset::DestClass), (u64, u64)>,
    store: Option<Store>,
    beacons: BeaconTracker,
    evidence: Option<EvidenceState>,
    /// The wall clock, read once per batch of events (see [`Analysis::refresh_wall`]).
    wall: Micros,
    /// `camwatch_events_total` per event type, looked up once each instead of per event.
    event_counters: HashMap<&'static str, prometheus_client::metrics::counter::Counter>,
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

/// Hour-and-class entries of traffic held between two saves of the state database.
const MAX_TRAFFIC_HOURS: usize = 16 * 1024;

pub use crate::detect::VULNERABLE_FIRMWARE_TAG;

/// Alerts firing at once; past it the one closest to resolving is forgotten.
const ACTIVE_ALERTS: usize = 20_000;

/// Flows whose SNI/Host name is remembered at once.
const FLOW_NAMES: usize = 100_000;

/// Addresses remembered by the passive DNS map.
const PASSIVE_DNS_ENTRIES: usize = 100_000;

impl<'s> Analysis<'s> {
    pub(super) fn new(sensor: &'s Sensor, outputs: &Outputs) -> anyhow::Result<Self> {
        let open = |p: &Option<PathBuf>| -> anyhow::Result<Option<JsonLines>> {
            p.as_ref()
                .map(|p| {
                    JsonLines::open(p)
                        .map(|j| j.with_rotation(sensor.config.outputs.rotation))
                        .map_err(|e| anyhow::anyhow!("{}: cannot open for writing: {e}", p.display()))
                })
                .transpose()
        };
        let d = &sensor.config.devices;
        let mut inventory =
            Inventory::new(sensor.devices.clone(), d.max_devices, d.max_unexpected_destinations);
        let store = match &outputs.state {
            Some(path) => {
                let (store, devices, aside) = Store::open_or_recover(path).map_err(anyhow::Error::msg)?;
                if let Some(aside) = aside {
                    tracing::error!(
                        path = %path.display(), kept = %aside.display(),
                        "The state database was corrupt: it was moved aside and a fresh one started (the inventory starts empty)."
                    );
                    sensor.metrics.store.errors.inc();
                }
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
            storm: Storm::new(sensor.config.alerts.clone()),
            degraded: Degraded::default(),
            devices_evicted: 0,
            pairs_evicted: 0,
            pairs_evicted_memory: 0,
            thresholds: Thresholds::new(100_000),
            journal: open(&outputs.alerts)?,
            events: open(&outputs.events)?,
            log_alerts: outputs.log_alerts,
            labels: HashMap::default(),
            summary: Summary::default(),
            last_event_flush: Instant::now(),
            passive_dns: PassiveDns::new(PASSIVE_DNS_ENTRIES),
            clock: 0,
            flow_names: HashMap::default(),
            traffic: HashMap::default(),
            store,
            beacons: BeaconTracker::new(sensor.config.beacon.clone()),
            evidence: None,
            wall: wall_micros(),
            event_counters: HashMap::default(),
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
                a.metrics().alerting.active.get_or_create(&AlertLabels { rule, severity }).inc();
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
            self.metrics().inventory.firmware_vulnerable.get_or_create(&DeviceLabels { device }).set(1);
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
        Ok(EvidenceState {
            cfg,
            txs: Vec::new(),
            pending: HashMap::default(),
            last_prune: Some(Instant::now()),
        })
    }

    /// Retention by age and total size; the gauges say what is kept.
    fn prune_evidence(&self, cfg: &EvidenceConfig) {
        match crate::alert::evidence::prune(&cfg.dir, cfg.max_total_bytes, cfg.max_age, SystemTime::now()) {
            Ok(stats) => {
                self.metrics().alerting.evidence_files.set(i64::try_from(stats.files).unwrap_or(i64::MAX));
                self.metrics().alerting.evidence_bytes.set(i64::try_from(stats.bytes).unwrap_or(i64::MAX));
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
            self.metrics()
                .alerting
                .evidence_captures
                .get_or_create(&ResultLabels { result: "skipped" })
                .inc();
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
                self.metrics()
                    .alerting
                    .evidence_captures
                    .get_or_create(&ResultLabels { result: "skipped" })
                    .inc();
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
            self.sensor.metrics.alerting.evidence_files.inc();
            self.sensor.metrics.alerting.evidence_bytes.inc_by(bytes);
        }
        let result = match &outcome {
            EvidenceOutcome::Written(_) => "ok",
            EvidenceOutcome::Failed { .. } => "error",
            EvidenceOutcome::Skipped { .. } => "skipped",
        };
        self.metrics().alerting.evidence_captures.get_or_create(&ResultLabels { result }).inc();
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
        self.metrics().inventory.devices.set(i64::try_from(self.inventory.len()).unwrap_or(i64::MAX));
        let device = self.label(ip);
        if device != "overflow" {
            if !firmware.is_empty() {
                // Present (0) for every device whose firmware is known; the firmware rules set it.
                drop(
                    self.metrics()
                        .inventory
                        .firmware_vulnerable
                        .get_or_create(&DeviceLabels { device: device.clone() }),
                );
            }
            self.metrics().inventory.info.set(DeviceInfoLabels { device, mac, vendor, model, firmware });
        }
    }

    fn app(&mut self, e: &AppEvent) {
        self.metrics().app.messages.get_or_create(&ProtocolLabels { protocol: e.app.protocol() }).inc();
        let line = eve_app(e, &self.sensor.config.sensor);
        self.log(&line);
        match &e.app {
            crate::model::app::App::Dns(m) if m.response => {
                self.passive_dns.learn(m, e.ts);
                let n = i64::try_from(self.passive_dns.len()).unwrap_or(i64::MAX);
                self.metrics().app.passive_dns_entries.set(n);
            }
            crate::model::app::App::Tls(h) => {
                if let Some(sni) = &h.sni {
                    self.name_flow(e.flow_id, sni);
                }
            }
            crate::model::app::App::Http(t) => {
                if let Some(host) = &t.request.hostname {
                    self.name_flow(e.flow_id, host);
                }
            }
            crate::model::app::App::FirmwareTransfer(t) => {
                let labels = TransferLabels {
                    direction: t.direction,
                    completed: if t.completed { "true" } else { "false" },
                };
                self.metrics().app.firmware_transfers.get_or_create(&labels).inc();
            }
            _ => {}
        }
        for claim in crate::analysis::signals::observations(e) {
            let located = self.inventory.locate(claim.ip, claim.mac, claim.binds, e.ts);
            for dev in &located.events {
                self.device_changed(dev);
            }
            self.report_merged(e.ts);
            match located.key {
                Some(Key::Ip(ip)) => self.identify(ip, claim.source, &claim.obs, e.ts),
                Some(Key::Mac(mac)) => self.inventory.identify_unbound(mac, claim.source, &claim.obs, e.ts),
                None => {}
            }
        }
        // For a DNS message the name that matters is the one asked about, not the resolver's.
        let name = match &e.app {
            crate::model::app::App::Dns(m) => m.queries.first().map(|q| q.rrname.clone()),
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
        self.report(ip, updates, ts);
    }

    /// Reports what merging two records of one device changed (see `Inventory::take_merged`).
    fn report_merged(&mut self, ts: Micros) {
        for (ip, u) in self.inventory.take_merged() {
            self.report(ip, vec![u], ts);
        }
    }

    /// Logs identity and firmware changes of the device at `ip` and lets the rules see them.
    fn report(&mut self, ip: IpAddr, updates: Vec<crate::analysis::device::Update>, ts: Micros) {
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
                    self.count_event("device");
                    let line = EveDevice::of(&ev, &self.sensor.config.sensor);
                    self.log(&line);
                }
                crate::analysis::device::Update::Firmware(change) => {
                    let kind = change.kind;
                    let ev = FirmwareEvent { ts, ip, change };
                    self.count_event("firmware");
                    let line = eve_firmware(&ev, &self.sensor.config.sensor);
                    self.log(&line);
                    if kind != FirmwareChangeKind::FirstSeen {
                        tracing::warn!(device = %ip, kind = kind.as_str(), "Firmware {} to {}.", kind.as_str(), ev.change.version);
                    }
                    let device = self.label(ip);
                    self.metrics()
                        .inventory
                        .firmware_changes
                        .get_or_create(&FirmwareLabels { device, kind: kind.as_str() })
                        .inc();
                    self.publish_device(ip);
                    // The new version is vulnerable only if a rule says so again.
                    let device = self.label(ip);
                    self.metrics()
                        .inventory
                        .firmware_vulnerable
                        .get_or_create(&DeviceLabels { device })
                        .set(0);
                    self.evaluate(&Subject::from_firmware(&ev));
                }
            }
        }
        self.publish_device(ip);
    }

    /// Writes changed devices to the state database.
    fn save_state(&mut self) {
        let evictions =
            self.sensor.metrics.table_evictions.get_or_create(&TableLabels::of("devices")).clone();
        evictions.inc_by(self.inventory.evicted.saturating_sub(evictions.get()));
        // Taken whether or not there is a store, so the list never outgrows one tick.
        let removed = self.inventory.take_removed();
        let traffic: Vec<_> = self
            .traffic
            .drain()
            .map(|((hour, class), (bytes, flows))| crate::store::TrafficHour {
                hour,
                class: class.as_str().to_string(),
                bytes,
                flows,
            })
            .collect();
        let Some(store) = &mut self.store else { return };
        match store.add_traffic(&traffic, wall_micros() / 1_000_000) {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                "{n} hours of traffic more than a day ahead of this host's clock were not stored."
            ),
            Err(e) => {
                tracing::error!("State database write failed: {e}.");
                self.sensor.metrics.store.errors.inc();
            }
        }
        for ip in removed {
            if let Err(e) = store.remove(ip) {
                tracing::error!("State database delete failed: {e}.");
                self.sensor.metrics.store.errors.inc();
            }
        }
        let dirty = self.inventory.take_dirty();
        if dirty.is_empty() {
            return;
        }
        let inventory = &self.inventory;
        if let Err(e) = store.save(dirty.iter().filter_map(|ip| inventory.get(*ip))) {
            tracing::error!("State database write failed: {e}.");
            self.sensor.metrics.store.errors.inc();
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

    /// One request channel per worker, when evidence is on: requests go to the worker that owns
    /// the flow, on channels of their own, so a worker ends when its packet channel closes,
    /// whatever the analysis still holds. Returns the recorders' settings and the receivers.
    pub(super) fn evidence_channels(
        &mut self,
        workers: usize,
    ) -> (Option<EvidenceConfig>, Vec<Option<Receiver<EvidenceRequest>>>) {
        let mut rxs = Vec::new();
        let Some(e) = &mut self.evidence else {
            return (None, rxs);
        };
        for _ in 0..workers {
            let (tx, rx) = bounded::<EvidenceRequest>(EVIDENCE_REQUESTS);
            e.txs.push(Some(tx));
            rxs.push(Some(rx));
        }
        (Some(e.cfg.clone()), rxs)
    }

    /// Reads the wall clock for the next batch of events (a packet time further ahead of it
    /// than [`super::worker::believable`] allows does not move the stage's clock).
    pub(super) fn refresh_wall(&mut self) {
        self.wall = wall_micros();
    }

    fn count_event(&mut self, event: &'static str) {
        let family = &self.sensor.metrics.events;
        self.event_counters
            .entry(event)
            .or_insert_with(|| family.get_or_create(&EventLabels { event }).clone())
            .inc();
    }

    pub(super) fn handle(&mut self, ev: Event) {
        if let Event::WorkerDone(w) = ev {
            // Every event of that worker's flows has been read: no request will follow.
            if let Some(slot) = self.evidence.as_mut().and_then(|e| e.txs.get_mut(w)) {
                *slot = None;
            }
            return;
        }
        let ts = match &ev {
            Event::FlowStart(f) => f.start,
            Event::Flow(f) | Event::FlowProgress(f) => f.end,
            Event::Arp { ts, .. } => *ts,
            Event::App(a) => a.ts,
            Event::Firmware(f) => f.ts,
            Event::Device(d) => d.ts,
            Event::Evictions(e) => e.ts,
            Event::Traffic(_) | Event::Evidence(_) | Event::WorkerDone(_) => self.clock,
        };
        if believable(ts, self.wall) {
            self.clock = self.clock.max(ts);
        }
        if self.lifecycle.rebase_due() && self.clock > 0 {
            self.lifecycle.rebase(self.clock);
        }
        self.resolve_ended();
        self.sensor_health(None);
        while let Ok(answer) = self.sensor.resolved.1.try_recv() {
            self.passive_dns.learn(&answer.as_message(), self.clock);
        }
        self.count_event(ev.type_name());
        match ev {
            Event::FlowStart(f) => self.flow_start(&f),
            Event::Flow(f) => self.flow_end(&f),
            Event::FlowProgress(f) => {
                self.admit(&f);
                let name = self.dest_name(f.flow_id, f.dest_ip, f.end);
                self.evaluate(&Subject::from_flow(RuleEvent::FlowProgress, &f, f.end, name.as_deref()));
            }
            Event::Arp { ts, arp } => {
                let ip = IpAddr::V4(arp.sender_ip);
                self.observe(ip, Some(arp.sender_mac), ts);
                if let Some(dev) = self.inventory.arp_claim(ip, arp.sender_mac, ts) {
                    self.device_changed(&dev);
                }
                self.report_merged(ts);
            }
            Event::Evidence(o) => self.evidence_done(o),
            Event::Traffic(batch) => self.traffic(&batch),
            Event::App(a) => self.app(&a),
            Event::Evictions(e) => self.sensor_health(Some(&e)),
            Event::Device(_) | Event::Firmware(_) | Event::WorkerDone(_) => {}
        }
    }

    /// Counts a table's evictions (and the device table's own) and, for each minute of packet
    /// time that closed with evictions, logs it and lets the rules see it (`event: sensor`).
    fn sensor_health(&mut self, e: Option<&TableEvictions>) {
        let mut reports = Vec::new();
        if let Some(e) = e {
            self.degraded.record(e, &mut reports);
        }
        // The stage's own tables: devices (least recently seen, unidentified first: no
        // sources to name) and beacon pairs (fair by device).
        let devices = self.inventory.evicted;
        if devices > self.devices_evicted {
            let e = TableEvictions {
                ts: self.clock,
                table: "devices",
                evicted: devices - self.devices_evicted,
                top: Vec::new(),
            };
            self.devices_evicted = devices;
            self.degraded.record(&e, &mut reports);
        }
        let pairs = self.beacons.dropped;
        if pairs > self.pairs_evicted {
            let evicted = pairs - self.pairs_evicted;
            self.pairs_evicted = pairs;
            let table = "beacon_pairs";
            let memory = self.beacons.dropped_memory.saturating_sub(self.pairs_evicted_memory);
            self.pairs_evicted_memory = self.beacons.dropped_memory;
            let counter =
                |reason| self.sensor.metrics.table_evictions.get_or_create(&TableLabels { table, reason });
            counter("memory").inc_by(memory);
            counter("full").inc_by(evicted.saturating_sub(memory));
            let e = TableEvictions { ts: self.clock, table, evicted, top: self.beacons.top_sources.clone() };
            self.degraded.record(&e, &mut reports);
        }
        self.degraded.tick(self.clock, &mut reports);
        for h in reports {
            let top: Vec<String> = h.top.iter().map(|(ip, n)| format!("{ip} ({n})")).collect();
            tracing::warn!(
                table = h.table,
                evicted = h.evicted,
                minutes = h.minutes,
                largest_holders = %top.join(", "),
                "A bounded table is evicting to make room: the sensor is flooded or the table is too small."
            );
            self.count_event("sensor");
            self.evaluate(&Subject::from_sensor(&h));
        }
    }

    /// A flow's first packet: egress and other "at once" rules match here.
    fn flow_start(&mut self, f: &FlowRecord) {
        self.observe(f.src_ip, f.src_mac, f.start);
        self.observe(f.dest_ip, f.dest_mac, f.start);
        let mut first_contact = None;
        if self.inventory.is_device(f.src_ip) {
            let name = self.passive_dns.lookup(f.dest_ip, f.start).map(str::to_string);
            first_contact =
                self.inventory.contacted(f.src_ip, f.dest_ip, f.dest_port, f.proto, name.as_deref(), f.start);
        }
        let name = self.dest_name(f.flow_id, f.dest_ip, f.start);
        let subject = Subject::from_flow(RuleEvent::FlowStart, f, f.start, name.as_deref());
        self.evaluate(&subject.with_first_contact(first_contact));
    }

    /// A flow ended (or was reported at the active timeout): the event log's flow record, new
    /// listening services, rules on complete counters, and the beacon scorer.
    fn flow_end(&mut self, f: &FlowRecord) {
        self.observe(f.src_ip, f.src_mac, f.end);
        self.observe(f.dest_ip, f.dest_mac, f.end);
        self.admit(f);
        if f.reason != FlowEndReason::Active {
            self.summary.flows += 1;
        }
        self.count_traffic(f);
        let name = self.dest_name(f.flow_id, f.dest_ip, f.end);
        if let Some(out) = &mut self.events {
            let line = EveFlow::of(f, &self.sensor.config.sensor, name.as_deref());
            let render = |buf: &mut Vec<u8>| {
                line.write_json(buf);
                Ok(())
            };
            if out.write_with(render).is_err() {
                self.sensor.metrics.output.event_log_errors.inc();
            }
        }
        // The responder answered: a TCP SYN-ACK, or a UDP reply from a well-known port (replies
        // from high ports are mostly media and callbacks on negotiated ports).
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
        if f.reason == FlowEndReason::Active {
            return;
        }
        // Beacons are scored for devices in the inventory: a forged source is in none, so a
        // flood does not churn the pair table.
        if self.inventory.get(f.src_ip).is_some() {
            if let Some(b) = self.beacons.connection(f.src_ip, f.dest_ip, f.start, f.bytes_toserver) {
                if b.score >= BEACON_LOG_SCORE {
                    let line = crate::output::eve_beacon(&b, f, &self.sensor.config.sensor);
                    self.log(&line);
                }
                self.count_event("beacon");
                self.evaluate(&Subject::from_beacon(&b, f, name.as_deref()));
            }
        }
        self.flow_names.remove(&f.flow_id);
    }

    /// A device's flow record adds its bytes to the device's destination and to the hour's
    /// traffic with that class of peer (the report's traffic chart). Active-timeout records
    /// carry the bytes since the last one, so nothing is counted twice.
    fn count_traffic(&mut self, f: &FlowRecord) {
        let src_dev = self.inventory.get(f.src_ip).is_some();
        if src_dev {
            self.inventory.carried(f.src_ip, f.dest_ip, f.bytes_toserver, f.bytes_toclient);
        } else if self.inventory.get(f.dest_ip).is_none() {
            return;
        }
        let peer = if src_dev { f.dest_ip } else { f.src_ip };
        let key = (f.end / 1_000_000 / 3600 * 3600, crate::model::netset::DestClass::of(peer));
        // Hours × four classes: bounded by the span of packet time between two saves; the cap
        // is a backstop against a capture whose clock jumps about.
        if self.traffic.len() >= MAX_TRAFFIC_HOURS && !self.traffic.contains_key(&key) {
            return;
        }
        let e = self.traffic.entry(key).or_default();
        e.0 = e.0.saturating_add(f.bytes_toserver.saturating_add(f.bytes_toclient));
        e.1 += u64::from(f.reason != FlowEndReason::Active);
    }

    /// The endpoints of an answered flow enter the inventory even without MAC addresses of their
    /// own (see `Inventory::observe`); an originator admitted so has this flow's destination
    /// recorded, as its flow start would have.
    fn admit(&mut self, f: &FlowRecord) {
        if !f.answered {
            return;
        }
        let new = |inv: &Inventory, ip| inv.is_device(ip) && inv.get(ip).is_none();
        let src_new = new(&self.inventory, f.src_ip);
        for (ip, mac) in [(f.dest_ip, f.dest_mac), (f.src_ip, f.src_mac)] {
            if let Some(dev) = self.inventory.admit(ip, mac, f.start) {
                self.device_changed(&dev);
            }
        }
        if src_new && self.inventory.get(f.src_ip).is_some() {
            let name = self.passive_dns.lookup(f.dest_ip, f.start).map(str::to_string);
            self.inventory.contacted(f.src_ip, f.dest_ip, f.dest_port, f.proto, name.as_deref(), f.start);
        }
        self.report_merged(f.start);
    }

    fn observe(&mut self, ip: IpAddr, mac: Option<[u8; 6]>, ts: Micros) {
        if let Some(dev) = self.inventory.observe(ip, mac, ts) {
            self.device_changed(&dev);
        }
        self.report_merged(ts);
    }

    fn device_changed(&mut self, dev: &DeviceEvent) {
        self.count_event("device");
        if let Some(old) = dev.previous_ip {
            tracing::info!(device = %dev.ip, previous = %old, "Device renumbered: its identity moved with its MAC.");
            // The old address's identity series goes; its counters stay as they were.
            if let Some(label) = self.labels.remove(&old) {
                self.metrics().inventory.info.remove(&label);
            }
        }
        let line = EveDevice::of(dev, &self.sensor.config.sensor);
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
            self.metrics().inventory.bytes.get_or_create(&labels).inc_by(*bytes);
        }
        for (ip, ts) in &batch.last_seen {
            self.observe(*ip, None, *ts);
            self.inventory.sent(*ip, *ts);
            let device = self.label(*ip);
            self.metrics().inventory.last_seen.get_or_create(&DeviceLabels { device }).set(*ts as f64 / 1e6);
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
                        .inventory
                        .unexpected
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
                self.metrics().inventory.firmware_vulnerable.get_or_create(&DeviceLabels { device }).set(1);
            }
            // Seen now: a flow's end record arrives an idle timeout after its last packet.
            let seen = s.ts.max(self.clock);
            let fingerprint = match self.lifecycle.admit(rule, m.device, s, seen) {
                Admit::Raise(fp) => fp,
                Admit::Ongoing => {
                    self.held_back(rule, "ongoing");
                    continue;
                }
            };
            // Storm control: past the per-device bound the alert joins its rule's storm alert
            // about the device; past the global ceiling it is held back. Both are counted.
            let (fingerprint, storm_example) = match self.storm.check(rule_key(rule), m.device, seen) {
                Verdict::Raise => (fingerprint, None),
                Verdict::Ceiling => {
                    self.held_back(rule, "ceiling");
                    continue;
                }
                Verdict::Storm { first } => {
                    self.held_back(rule, "storm");
                    let storm = storm_fingerprint(rule, m.device);
                    let (peer, port) =
                        if s.src_ip == m.device { (s.dest_ip, s.dest_port) } else { (s.src_ip, s.src_port) };
                    let example = std::net::SocketAddr::new(peer, port).to_string();
                    if !first && self.lifecycle.aggregate(storm, seen, example.clone()) {
                        continue;
                    }
                    (storm, Some(example))
                }
            };
            let device = self.inventory.get(m.device);
            let mut alert = Alert::new(rule, m.device, device, s, fingerprint, &self.sensor.config.sensor);
            alert.evidence.values = rule.matched_values(s, &self.inventory, m.device);
            if let Some(example) = storm_example {
                let cfg = &self.sensor.config.alerts;
                alert = alert.into_storm(example, cfg.per_device, cfg.window);
            }
            let forgotten = self.lifecycle.fire(alert.clone(), fingerprint, seen, rule.resolve_after());
            for f in forgotten {
                let labels = AlertLabels { rule: f.rule.id.clone(), severity: f.rule.severity.clone() };
                self.metrics().alerting.active.get_or_create(&labels).dec();
                tracing::warn!(rule = %f.rule.id, "Too many alerts firing: {} is no longer tracked.", f.summary);
            }
            let labels = AlertLabels { rule: rule.id.clone(), severity: alert.rule.severity.clone() };
            self.metrics().alerting.active.get_or_create(&labels).inc();
            drop(self.metrics().alerting.resolved.get_or_create(&labels));
            let device = self.label(m.device);
            self.metrics()
                .inventory
                .alerts
                .get_or_create(&DeviceSeverityLabels { device, severity: alert.rule.severity.clone() })
                .inc();
            self.raise(alert);
        }
    }

    /// A match that raised no alert record, counted by rule and reason.
    fn held_back(&mut self, rule: &Rule, reason: &'static str) {
        self.summary.suppressed += 1;
        self.metrics()
            .alerting
            .suppressed
            .get_or_create(&SuppressedLabels { rule: rule.id.clone(), reason })
            .inc();
    }

    /// Resolves the alerts whose condition has not been seen for their rule's `resolve_after`.
    fn resolve_ended(&mut self) {
        let mut resolved = Vec::new();
        self.lifecycle.expire(self.clock, &mut resolved);
        for alert in resolved {
            let labels = AlertLabels { rule: alert.rule.id.clone(), severity: alert.rule.severity.clone() };
            self.metrics().alerting.active.get_or_create(&labels).dec();
            self.metrics().alerting.resolved.get_or_create(&labels).inc();
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
            .alerting
            .raised
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

    /// Appends an alert record to the journal, which every sink delivers from; a firing one is
    /// also an `alert` event in the event log, shaped as Suricata's.
    fn journal(&mut self, alert: &Alert) {
        if alert.status == crate::alert::Status::Firing {
            let ts = crate::model::time::parse_rfc3339(&alert.timestamp).unwrap_or(self.clock);
            let line = crate::output::eve_alert(alert, ts, &self.sensor.config.sensor);
            self.log(&line);
        }
        if let Some(j) = &mut self.journal {
            let result = j.write(alert).and_then(|()| j.sync());
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

    fn log(&mut self, line: &impl serde::Serialize) {
        if let Some(out) = &mut self.events {
            if out.write(line).is_err() {
                self.sensor.metrics.output.event_log_errors.inc();
            }
        }
    }

    fn flush_events(&mut self) {
        self.last_event_flush = Instant::now();
        self.save_state();
        if let Some(out) = &mut self.events {
            if let Err(e) = out.flush() {
                tracing::error!(path = %out.path().display(), "Event log flush failed: {e}.");
                self.sensor.metrics.output.event_log_errors.inc();
            }
        }
    }

    pub(super) fn finish(mut self) -> Summary {
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
        let mut s = std::mem::take(&mut self.summary);
        s.devices = self.inventory.len();
        s
    }
}
