//! The state store's metric group.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

#[derive(Clone, Default)]
pub struct StoreMetrics {
    pub errors: Counter,
}

impl StoreMetrics {
    pub fn register(r: &mut Registry) -> Self {
        let m = Self::default();
        r.register("state_errors", "State database writes that failed", m.errors.clone());
        m
    }
}
