//! The sinks' metric group: deliveries, failures, lag and attempt durations per sink. Every
//! series of a configured sink exists from startup, at zero.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkLabels {
    pub sink: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkResultLabels {
    pub sink: String,
    /// `ok` or `error`.
    pub result: &'static str,
}

type DurationFamily = Family<SinkLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
}

/// The sinks' metrics. Every series of a configured sink exists from startup, at zero.
#[derive(Clone, Debug)]
pub struct SinkMetrics {
    /// `camwatch_alert_deliveries_total{sink,result}`: alerts a receiver accepted (`ok`), or
    /// alerts in an attempt that failed (`error`; a retried alert counts once per failed attempt).
    /// Alertmanager's periodic re-sends count too.
    pub deliveries: Family<SinkResultLabels, Counter>,
    /// `camwatch_alert_delivery_backlog{sink}`: complete journal lines not yet delivered.
    pub backlog: Family<SinkLabels, Gauge>,
    /// `camwatch_alert_delivery_retries_total{sink}`: failed attempts followed by a retry.
    pub retries: Family<SinkLabels, Counter>,
    /// `camwatch_alert_delivery_duration_seconds{sink}`: time of each delivery attempt.
    pub duration: DurationFamily,
    /// `camwatch_alert_journal_malformed_lines_total{sink}`: journal lines skipped as not records.
    pub malformed: Family<SinkLabels, Counter>,
}

impl SinkMetrics {
    /// Registers the metrics in `registry` (which carries the `camwatch` prefix).
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            deliveries: Family::default(),
            backlog: Family::default(),
            retries: Family::default(),
            duration: Family::new_with_constructor(duration_histogram as fn() -> Histogram),
            malformed: Family::default(),
        };
        registry.register("alert_deliveries", "Alert deliveries, by sink and result", m.deliveries.clone());
        registry.register(
            "alert_delivery_backlog",
            "Alerts in the journal not yet delivered, by sink",
            m.backlog.clone(),
        );
        registry.register(
            "alert_delivery_retries",
            "Failed alert deliveries that were retried, by sink",
            m.retries.clone(),
        );
        registry.register(
            "alert_delivery_duration_seconds",
            "Time of each alert delivery attempt, by sink",
            m.duration.clone(),
        );
        registry.register(
            "alert_journal_malformed_lines",
            "Alert journal lines a sink skipped because they are not alert records",
            m.malformed.clone(),
        );
        m
    }

    /// Creates every series of sink `sink` at zero, so dashboards show zero rather than nothing.
    pub fn init_sink(&self, sink: &str) {
        for result in ["ok", "error"] {
            drop(self.deliveries.get_or_create(&SinkResultLabels { sink: sink.into(), result }));
        }
        let labels = SinkLabels { sink: sink.into() };
        drop(self.backlog.get_or_create(&labels));
        drop(self.retries.get_or_create(&labels));
        drop(self.duration.get_or_create(&labels));
        drop(self.malformed.get_or_create(&labels));
    }
}

/// One sink's handle on the metrics.
#[derive(Clone, Debug)]
pub(crate) struct Telemetry {
    pub(crate) metrics: Arc<SinkMetrics>,
    pub(crate) sink: String,
}

impl Telemetry {
    pub(crate) fn labels(&self) -> SinkLabels {
        SinkLabels { sink: self.sink.clone() }
    }

    pub(crate) fn attempt(&self, took: Duration) {
        self.metrics.duration.get_or_create(&self.labels()).observe(took.as_secs_f64());
    }

    pub(crate) fn delivered(&self, ok: bool, alerts: usize) {
        let result = if ok { "ok" } else { "error" };
        self.metrics
            .deliveries
            .get_or_create(&SinkResultLabels { sink: self.sink.clone(), result })
            .inc_by(alerts as u64);
    }

    pub(crate) fn retried(&self) {
        self.metrics.retries.get_or_create(&self.labels()).inc();
    }

    pub(crate) fn backlog(&self, lines: u64) {
        self.metrics.backlog.get_or_create(&self.labels()).set(i64::try_from(lines).unwrap_or(i64::MAX));
    }

    pub(crate) fn malformed(&self, lines: u64) {
        self.metrics.malformed.get_or_create(&self.labels()).inc_by(lines);
    }
}
