//! The alert layer's metric group: alerts raised, suppressed, firing and resolved, and the
//! evidence captures kept.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::model::labels::ResultLabels;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlertLabels {
    pub rule: String,
    pub severity: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SuppressedLabels {
    pub rule: String,
    /// `ongoing` (its alert is already firing), `storm` (aggregated into the rule's storm alert
    /// about the device) or `ceiling` (past the alert records allowed per minute).
    pub reason: &'static str,
}

#[derive(Clone, Default)]
pub struct AlertMetrics {
    pub raised: Family<AlertLabels, Counter>,
    pub suppressed: Family<SuppressedLabels, Counter>,
    pub active: Family<AlertLabels, Gauge>,
    pub resolved: Family<AlertLabels, Counter>,
    pub evidence_files: Gauge,
    pub evidence_bytes: Gauge,
    pub evidence_captures: Family<ResultLabels, Counter>,
}

impl AlertMetrics {
    pub fn register(r: &mut Registry) -> Self {
        let m = Self::default();
        r.register("alerts", "Alerts raised", m.raised.clone());
        r.register(
            "alerts_suppressed",
            "Matches that raised no alert record: already firing, aggregated into a storm alert, or past the ceiling",
            m.suppressed.clone(),
        );
        r.register("alerts_active", "Alerts firing (raised and not yet resolved)", m.active.clone());
        r.register(
            "alerts_resolved",
            "Alerts resolved: their condition was not seen again",
            m.resolved.clone(),
        );
        r.register("evidence_files", "Evidence captures kept", m.evidence_files.clone());
        r.register("evidence_bytes", "Bytes of evidence captures kept", m.evidence_bytes.clone());
        r.register(
            "evidence_captures",
            "Evidence captures finished, by result (ok, error, skipped)",
            m.evidence_captures.clone(),
        );
        for result in ["ok", "error", "skipped"] {
            drop(m.evidence_captures.get_or_create(&ResultLabels { result }));
        }
        m
    }
}
