//! The flow layer's metric group: flows opened, active and evicted, fragmented datagrams, and
//! packets whose time was too far ahead to move flow time.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::model::labels::{ReasonLabels, ResultLabels};

#[derive(Clone, Default)]
pub struct FlowMetrics {
    pub active: Gauge,
    pub opened: Counter,
    pub evicted: Family<ReasonLabels, Counter>,
    pub fragmented_datagrams: Family<ResultLabels, Counter>,
    pub future_timestamps: Counter,
}

impl FlowMetrics {
    pub fn register(r: &mut Registry) -> Self {
        let m = Self::default();
        r.register("flows_active", "Flows in the flow tables", m.active.clone());
        r.register("flows", "Flows opened", m.opened.clone());
        r.register("flows_evicted", "Flows removed from the flow tables, by reason", m.evicted.clone());
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
        for reason in ["idle", "closed", "capacity", "shutdown", "end_of_capture"] {
            drop(m.evicted.get_or_create(&ReasonLabels { reason }));
        }
        for result in ["reassembled", "dropped"] {
            drop(m.fragmented_datagrams.get_or_create(&ResultLabels { result }));
        }
        m
    }
}
