//! Prometheus metrics: one registry, typed label sets, and names from DESIGN.md. Workers update
//! counters in batches (once a second or per thousand packets), never per packet behind a lock.
//! No remote address, domain or SNI is ever a label value.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    /// Interface name, or `file` for capture files.
    pub source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    pub source: String,
    /// `kernel` (libpcap ps_drop), `interface` (ps_ifdrop) or `queue` (camwatch's own queue full).
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LayerLabels {
    pub layer: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// The event type (`flow`, `device`, …).
    pub event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProtocolLabels {
    pub protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ParseErrorLabels {
    pub protocol: &'static str,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `ok` or `error`.
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransferLabels {
    pub direction: &'static str,
    pub completed: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeviceLabels {
    pub device: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeviceInfoLabels {
    pub device: String,
    pub mac: String,
    pub vendor: String,
    pub model: String,
    pub firmware: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeviceBytesLabels {
    pub device: String,
    /// `sent` or `received`, from the device's point of view.
    pub direction: &'static str,
    /// `internal`, `multicast`, `broadcast` or `external`.
    pub dest_class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FirmwareLabels {
    pub device: String,
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlertLabels {
    pub rule: String,
    pub severity: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeviceSeverityLabels {
    pub device: String,
    pub severity: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    /// `packets` (capture threads to workers) or `events` (workers to analysis).
    pub queue: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub rule: String,
}

type GaugeF = Gauge<f64, AtomicU64>;

/// `camwatch_device_info`: one info series per device, whose labels change as identity is
/// learned. An info metric cannot be a `Family`, so it is encoded from this map at scrape time
/// (the lock is taken by the analysis thread when a device changes and by scrapes, never per
/// packet).
#[derive(Debug, Default)]
pub struct DeviceInfo {
    devices: RwLock<BTreeMap<String, DeviceInfoLabels>>,
}

impl DeviceInfo {
    pub fn set(&self, labels: DeviceInfoLabels) {
        if let Ok(mut d) = self.devices.write() {
            d.insert(labels.device.clone(), labels);
        }
    }

    /// Drops a device's series (it moved to another address).
    pub fn remove(&self, device: &str) {
        if let Ok(mut d) = self.devices.write() {
            d.remove(device);
        }
    }
}

impl Collector for DeviceInfo {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Ok(devices) = self.devices.read() else { return Ok(()) };
        if devices.is_empty() {
            return Ok(());
        }
        let mut metric = encoder.encode_descriptor(
            "device",
            "Device identity: vendor, model and firmware as last learned",
            None,
            MetricType::Info,
        )?;
        for labels in devices.values() {
            metric.encode_info(labels)?;
        }
        Ok(())
    }
}

/// Every metric camwatch exports.
pub struct Metrics {
    pub registry: Registry,
    pub capture_packets: Family<SourceLabels, Counter>,
    pub capture_bytes: Family<SourceLabels, Counter>,
    pub capture_dropped: Family<DropLabels, Counter>,
    pub capture_errors: Family<ReasonLabels, Counter>,
    pub decode_errors: Family<LayerLabels, Counter>,
    pub flows_active: Gauge,
    pub flows: Counter,
    pub flows_evicted: Family<ReasonLabels, Counter>,
    pub events: Family<EventLabels, Counter>,
    pub devices: Gauge,
    pub devices_refused: Counter,
    pub device_info: Arc<DeviceInfo>,
    pub device_last_seen: Family<DeviceLabels, GaugeF>,
    pub device_bytes: Family<DeviceBytesLabels, Counter>,
    pub device_unexpected: Family<DeviceLabels, Gauge>,
    pub firmware_changes: Family<FirmwareLabels, Counter>,
    pub alerts: Family<AlertLabels, Counter>,
    pub alerts_suppressed: Family<RuleLabels, Counter>,
    pub alerts_active: Family<AlertLabels, Gauge>,
    pub alerts_resolved: Family<AlertLabels, Counter>,
    pub device_alerts: Family<DeviceSeverityLabels, Counter>,
    pub device_firmware_vulnerable: Family<DeviceLabels, Gauge>,
    pub queue_depth: Family<QueueLabels, Gauge>,
    pub future_timestamps: Counter,
    pub fragmented_datagrams: Family<ResultLabels, Counter>,
    pub evidence_files: Gauge,
    pub evidence_bytes: Gauge,
    pub evidence_captures: Family<ResultLabels, Counter>,
    /// Alert deliveries, backlog and retries per sink (the journal is the sink `journal`).
    pub sinks: crate::sink::SinkMetrics,
    pub event_log_errors: Counter,
    pub app_messages: Family<ProtocolLabels, Counter>,
    pub parse_errors: Family<ParseErrorLabels, Counter>,
    pub streams_refused: Counter,
    pub passive_dns_entries: Gauge,
    pub firmware_transfers: Family<TransferLabels, Counter>,
    pub state_errors: Counter,
    pub active_dns_lookups: Family<ResultLabels, Counter>,
    pub rules_loaded: Gauge,
    pub rules_reloads: Family<ResultLabels, Counter>,
}

impl Metrics {
    pub fn new(sensor: &str) -> Self {
        let labels = [(Cow::Borrowed("sensor"), Cow::Owned(sensor.to_string()))];
        let mut r = Registry::with_prefix_and_labels("camwatch", labels.into_iter());
        let m = Self {
            capture_packets: Family::default(),
            capture_bytes: Family::default(),
            capture_dropped: Family::default(),
            capture_errors: Family::default(),
            decode_errors: Family::default(),
            flows_active: Gauge::default(),
            flows: Counter::default(),
            flows_evicted: Family::default(),
            events: Family::default(),
            devices: Gauge::default(),
            devices_refused: Counter::default(),
            device_info: Arc::new(DeviceInfo::default()),
            device_last_seen: Family::default(),
            device_bytes: Family::default(),
            device_unexpected: Family::default(),
            firmware_changes: Family::default(),
            alerts: Family::default(),
            alerts_suppressed: Family::default(),
            alerts_active: Family::default(),
            alerts_resolved: Family::default(),
            device_alerts: Family::default(),
            device_firmware_vulnerable: Family::default(),
            queue_depth: Family::default(),
            future_timestamps: Counter::default(),
            fragmented_datagrams: Family::default(),
            evidence_files: Gauge::default(),
            evidence_bytes: Gauge::default(),
            evidence_captures: Family::default(),
            event_log_errors: Counter::default(),
            app_messages: Family::default(),
            parse_errors: Family::default(),
            streams_refused: Counter::default(),
            passive_dns_entries: Gauge::default(),
            firmware_transfers: Family::default(),
            state_errors: Counter::default(),
            active_dns_lookups: Family::default(),
            rules_loaded: Gauge::default(),
            rules_reloads: Family::default(),
            sinks: crate::sink::SinkMetrics::register(&mut r),
            registry: Registry::default(),
        };
        r.register("build", "camwatch version", Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]));
        r.register("capture_packets", "Packets captured", m.capture_packets.clone());
        r.register("capture_bytes", "Bytes captured (frame length on the wire)", m.capture_bytes.clone());
        r.register("capture_dropped_packets", "Packets lost before analysis", m.capture_dropped.clone());
        r.register("capture_errors", "Capture read errors (e.g. a truncated file)", m.capture_errors.clone());
        r.register("decode_errors", "Packets that could not be decoded, by layer", m.decode_errors.clone());
        r.register("flows_active", "Flows in the flow tables", m.flows_active.clone());
        r.register("flows", "Flows opened", m.flows.clone());
        r.register("flows_evicted", "Flows removed from the flow tables, by reason", m.flows_evicted.clone());
        r.register("events", "Events produced, by type", m.events.clone());
        r.register("devices", "Devices in the inventory", m.devices.clone());
        r.register(
            "devices_refused",
            "Devices not added because the inventory was full",
            m.devices_refused.clone(),
        );
        r.register_collector(Box::new(m.device_info.clone()));
        r.register(
            "device_last_seen_timestamp_seconds",
            "Packet time a device was last seen",
            m.device_last_seen.clone(),
        );
        r.register(
            "device_bytes",
            "Bytes a device sent or received (IP layer), by peer class",
            m.device_bytes.clone(),
        );
        r.register(
            "device_unexpected_destinations",
            "Distinct destinations of a device that egress or cloud rules flagged",
            m.device_unexpected.clone(),
        );
        r.register("firmware_changes", "Firmware changes seen, by kind", m.firmware_changes.clone());
        r.register("alerts", "Alerts raised", m.alerts.clone());
        r.register(
            "alerts_suppressed",
            "Alerts suppressed by a rule's suppression",
            m.alerts_suppressed.clone(),
        );
        r.register("alerts_active", "Alerts firing (raised and not yet resolved)", m.alerts_active.clone());
        r.register(
            "alerts_resolved",
            "Alerts resolved: their condition was not seen again",
            m.alerts_resolved.clone(),
        );
        r.register("device_alerts", "Alerts raised about a device, by severity", m.device_alerts.clone());
        r.register(
            "device_firmware_vulnerable",
            "1 when a rule tagged vulnerable-firmware matched the device's current firmware",
            m.device_firmware_vulnerable.clone(),
        );
        r.register("queue_depth", "Items waiting in a pipeline queue", m.queue_depth.clone());
        r.register(
            "fragmented_datagrams",
            "IPv4 datagrams that came in fragments: reassembled, or dropped (incomplete, conflicting or past the bound)",
            m.fragmented_datagrams.clone(),
        );
        r.register(
            "future_timestamps",
            "Packets stamped more than an hour ahead of the sensor's clock (they move no timers)",
            m.future_timestamps.clone(),
        );
        r.register("evidence_files", "Evidence captures kept", m.evidence_files.clone());
        r.register("evidence_bytes", "Bytes of evidence captures kept", m.evidence_bytes.clone());
        r.register(
            "evidence_captures",
            "Evidence captures finished, by result (ok, error, skipped)",
            m.evidence_captures.clone(),
        );
        r.register("event_log_errors", "Event log writes that failed", m.event_log_errors.clone());
        r.register("app_messages", "Application messages parsed, by protocol", m.app_messages.clone());
        r.register("parse_errors", "Application messages that failed to parse", m.parse_errors.clone());
        r.register(
            "streams_refused",
            "TCP streams not followed because the worker's buffer budget was spent",
            m.streams_refused.clone(),
        );
        r.register("passive_dns_entries", "Addresses in the passive DNS map", m.passive_dns_entries.clone());
        r.register(
            "firmware_transfers",
            "Firmware images seen moving over HTTP",
            m.firmware_transfers.clone(),
        );
        r.register("state_errors", "State database writes that failed", m.state_errors.clone());
        r.register(
            "active_dns_lookups",
            "Lookups of the rules' listed names by active DNS, by result",
            m.active_dns_lookups.clone(),
        );
        r.register("rules_loaded", "Rules active", m.rules_loaded.clone());
        r.register("rules_reloads", "Rule reloads, by result", m.rules_reloads.clone());
        for result in ["ok", "error"] {
            let labels = crate::sink::SinkResultLabels { sink: "journal".into(), result };
            drop(m.sinks.deliveries.get_or_create(&labels));
        }
        let m = Self { registry: r, ..m };
        m.zero_series();
        m
    }

    /// Series with fixed label values start at zero, so dashboards and alerting rules see
    /// "nothing happened" rather than "no data" (and `increase()` counts the first event).
    fn zero_series(&self) {
        for layer in ["link", "network", "transport"] {
            drop(self.decode_errors.get_or_create(&LayerLabels { layer }));
        }
        for reason in ["idle", "closed", "capacity", "shutdown", "end_of_capture"] {
            drop(self.flows_evicted.get_or_create(&ReasonLabels { reason }));
        }
        for reason in ["open", "read", "truncated"] {
            drop(self.capture_errors.get_or_create(&ReasonLabels { reason }));
        }
        for result in ["success", "failure"] {
            drop(self.rules_reloads.get_or_create(&ResultLabels { result }));
        }
        for queue in ["packets", "events"] {
            drop(self.queue_depth.get_or_create(&QueueLabels { queue }));
        }
        for protocol in ["dns", "dhcp", "dhip"] {
            drop(self.parse_errors.get_or_create(&ParseErrorLabels { protocol, reason: "truncated" }));
        }
        for result in ["ok", "error"] {
            drop(self.active_dns_lookups.get_or_create(&ResultLabels { result }));
        }
        for result in ["ok", "error", "skipped"] {
            drop(self.evidence_captures.get_or_create(&ResultLabels { result }));
        }
        for result in ["reassembled", "dropped"] {
            drop(self.fragmented_datagrams.get_or_create(&ResultLabels { result }));
        }
    }

    /// The same in the classic Prometheus text format (0.0.4), for scrapers and tools that do
    /// not speak OpenMetrics (`promtool check metrics`, older agents).
    pub fn encode_text(&self) -> String {
        openmetrics_to_text(&self.encode())
    }

    /// The exposition text served at `/metrics` (OpenMetrics).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Rewrites OpenMetrics text as the classic Prometheus text format: the two differ in metadata
/// only. A counter family `x` is `x_total` there, an info family `x` is the gauge `x_info`,
/// `unknown` is `untyped`, and there is no `# UNIT` or `# EOF`. Samples are unchanged.
pub fn openmetrics_to_text(om: &str) -> String {
    let mut out = String::with_capacity(om.len());
    // HELP precedes TYPE in OpenMetrics; hold it until the type says what the name becomes.
    let mut help: Option<(&str, &str)> = None;
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            if let Some((name, text)) = rest.split_once(' ') {
                help = Some((name, text));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let (name, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "gauge" | "histogram" | "summary" => (name.to_string(), kind),
                _ => (name.to_string(), "untyped"),
            };
            if let Some((h, text)) = help.take() {
                if rest.starts_with(h) {
                    out.push_str(&format!("# HELP {name} {text}\n"));
                }
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_text_renames_counters_and_infos() {
        let om = "# HELP x_flows Flows opened.\n# TYPE x_flows counter\nx_flows_total 3\n\
                  # HELP x_build camwatch version.\n# TYPE x_build info\nx_build_info{version=\"1\"} 1\n\
                  # HELP x_up Up.\n# TYPE x_up gauge\n# UNIT x_up seconds\nx_up 1\n# EOF\n";
        let want = "# HELP x_flows_total Flows opened.\n# TYPE x_flows_total counter\nx_flows_total 3\n\
                    # HELP x_build_info camwatch version.\n# TYPE x_build_info gauge\nx_build_info{version=\"1\"} 1\n\
                    # HELP x_up Up.\n# TYPE x_up gauge\nx_up 1\n";
        assert_eq!(openmetrics_to_text(om), want);
    }

    #[test]
    fn names_follow_the_design() {
        let m = Metrics::new("test");
        m.capture_packets.get_or_create(&SourceLabels { source: "file".into() }).inc();
        m.alerts.get_or_create(&AlertLabels { rule: "r".into(), severity: "high".into() }).inc();
        m.device_bytes
            .get_or_create(&DeviceBytesLabels {
                device: "10.0.0.1".into(),
                direction: "sent",
                dest_class: "external",
            })
            .inc_by(5);
        m.events.get_or_create(&EventLabels { event: "flow" }).inc();
        let text = m.encode();
        for want in [
            "camwatch_capture_packets_total{sensor=\"test\",source=\"file\"} 1",
            "camwatch_alerts_total{sensor=\"test\",rule=\"r\",severity=\"high\"} 1",
            "camwatch_device_bytes_total{sensor=\"test\",device=\"10.0.0.1\",direction=\"sent\",dest_class=\"external\"} 5",
            "camwatch_events_total{sensor=\"test\",event=\"flow\"} 1",
            "camwatch_build_info{sensor=\"test\",version=",
            "camwatch_flows_active{sensor=\"test\"} 0",
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
    }
}
