//! Prometheus metrics: one registry, into which each layer registers its own metric group
//! (`capture`, `decode`, `flow`, `analysis`, `detect`, `alert`, `output`, `sink`, `store`), plus the
//! pipeline's own series. Typed label sets and names from DESIGN.md. Workers update counters in
//! batches (once a second or per thousand packets), never per packet behind a lock. No remote
//! address, domain or SNI is ever a label value.

use std::borrow::Cow;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::alert::metrics::AlertMetrics;
use crate::analysis::metrics::{AppMetrics, InventoryMetrics};
use crate::capture::metrics::CaptureMetrics;
use crate::decode::metrics::DecodeMetrics;
use crate::detect::metrics::DetectMetrics;
use crate::flow::metrics::FlowMetrics;
use crate::model::labels::TableLabels;
use crate::output::metrics::OutputMetrics;
use crate::sink::{SinkMetrics, SinkResultLabels};
use crate::store::metrics::StoreMetrics;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// The event type (`flow`, `device`, …).
    pub event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    /// `packets` (capture threads to workers) or `events` (workers to analysis).
    pub queue: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    /// `worker` (one packet's decode, flow and application steps) or `analysis` (one event).
    pub stage: &'static str,
}

/// Every metric camwatch exports: each layer's group, and the pipeline's own series.
pub struct Metrics {
    pub registry: Registry,
    pub capture: CaptureMetrics,
    pub decode: DecodeMetrics,
    pub flow: FlowMetrics,
    /// Events produced by the workers and the analysis stage, by type.
    pub events: Family<EventLabels, Counter>,
    /// Batches waiting in the packet and event queues.
    pub queue_depth: Family<QueueLabels, Gauge>,
    /// Entries a full table evicted to make room for a new one, by table.
    pub table_evictions: Family<TableLabels, Counter>,
    /// Panics caught while handling one packet or event (each one a bug, skipped).
    pub analysis_panics: Family<StageLabels, Counter>,
    pub inventory: InventoryMetrics,
    pub app: AppMetrics,
    pub detect: DetectMetrics,
    pub alerting: AlertMetrics,
    pub output: OutputMetrics,
    /// Alert deliveries, backlog and retries per sink (the journal is the sink `journal`).
    pub sinks: SinkMetrics,
    pub store: StoreMetrics,
}

impl Metrics {
    pub fn new(sensor: &str) -> Self {
        let labels = [(Cow::Borrowed("sensor"), Cow::Owned(sensor.to_string()))];
        let mut r = Registry::with_prefix_and_labels("camwatch", labels.into_iter());
        r.register("build", "camwatch version", Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]));
        let capture = CaptureMetrics::register(&mut r);
        let decode = DecodeMetrics::register(&mut r);
        let flow = FlowMetrics::register(&mut r);
        let events = Family::<EventLabels, Counter>::default();
        r.register("events", "Events produced, by type", events.clone());
        let queue_depth = Family::<QueueLabels, Gauge>::default();
        r.register("queue_depth", "Batches waiting in a pipeline queue", queue_depth.clone());
        for queue in ["packets", "events"] {
            drop(queue_depth.get_or_create(&QueueLabels { queue }));
        }
        let table_evictions = Family::<TableLabels, Counter>::default();
        r.register(
            "table_evictions",
            "Entries a full table evicted to make room for a new one (it never refuses newcomers), by table and reason",
            table_evictions.clone(),
        );
        for (table, reason) in TableLabels::ALL {
            drop(table_evictions.get_or_create(&TableLabels { table, reason }));
        }
        let analysis_panics = Family::<StageLabels, Counter>::default();
        r.register(
            "analysis_panics",
            "Panics caught while analysing one packet or event (a bug: the input was skipped)",
            analysis_panics.clone(),
        );
        for stage in ["worker", "analysis"] {
            drop(analysis_panics.get_or_create(&StageLabels { stage }));
        }
        let inventory = InventoryMetrics::register(&mut r);
        let app = AppMetrics::register(&mut r);
        let detect = DetectMetrics::register(&mut r);
        let alerting = AlertMetrics::register(&mut r);
        let output = OutputMetrics::register(&mut r);
        let sinks = SinkMetrics::register(&mut r);
        for result in ["ok", "error"] {
            drop(sinks.deliveries.get_or_create(&SinkResultLabels { sink: "journal".into(), result }));
        }
        let store = StoreMetrics::register(&mut r);
        Self {
            registry: r,
            capture,
            decode,
            flow,
            events,
            queue_depth,
            table_evictions,
            analysis_panics,
            inventory,
            app,
            detect,
            alerting,
            output,
            sinks,
            store,
        }
    }

    /// The same in the classic Prometheus text format (0.0.4), for scrapers and tools that do
    /// not speak OpenMetrics (`promtool check metrics`, older agents).
    pub fn encode_text(&self) -> String {
        openmetrics_to_text(&self.encode())
    }

    /// The exposition text served at `/metrics` (OpenMetrics): camwatch's own metrics, then the
    /// standard `process_*` metrics (unprefixed, as every exporter serves them).
    pub fn encode(&self) -> String {
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        let mut out = String::new();
        let mut process = Registry::default();
        process.register_collector(Box::new(crate::telemetry::process::ProcessCollector));
        let ok = encode_registry(&mut out, &self.registry)
            .and_then(|()| encode_registry(&mut out, &process))
            .and_then(|()| encode_eof(&mut out));
        if ok.is_err() {
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
    use crate::alert::metrics::AlertLabels;
    use crate::analysis::metrics::DeviceBytesLabels;
    use crate::capture::metrics::SourceLabels;

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
        m.capture.packets.get_or_create(&SourceLabels { source: "file".into() }).inc();
        m.alerting.raised.get_or_create(&AlertLabels { rule: "r".into(), severity: "high".into() }).inc();
        m.inventory
            .bytes
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
