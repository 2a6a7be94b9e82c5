//! The rules' metric group: rules active, and reloads by result.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::model::labels::ResultLabels;

#[derive(Clone, Default)]
pub struct DetectMetrics {
    pub rules_loaded: Gauge,
    pub rules_reloads: Family<ResultLabels, Counter>,
}

impl DetectMetrics {
    pub fn register(r: &mut Registry) -> Self {
        let m = Self::default();
        r.register("rules_loaded", "Rules active", m.rules_loaded.clone());
        r.register("rules_reloads", "Rule reloads, by result", m.rules_reloads.clone());
        for result in ["success", "failure"] {
            drop(m.rules_reloads.get_or_create(&ResultLabels { result }));
        }
        m
    }
}
