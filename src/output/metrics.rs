//! The event log's metric group.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

#[derive(Clone, Default)]
pub struct OutputMetrics {
    pub event_log_errors: Counter,
}

impl OutputMetrics {
    pub fn register(r: &mut Registry) -> Self {
        let m = Self::default();
        r.register("event_log_errors", "Event log writes that failed", m.event_log_errors.clone());
        m
    }
}
