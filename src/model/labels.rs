//! Metric label sets more than one layer uses. A layer's own label sets live in its `metrics.rs`.

use prometheus_client::encoding::EncodeLabelSet;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `ok` or `error` (or the outcomes a metric's help names).
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableLabels {
    /// A bounded table: `flows`, `fragments`, `streams`, `tftp`, `devices`, `beacon_pairs`.
    pub table: &'static str,
    /// Why it evicted: `full` (its entry bound) or `memory` (its byte budget: streams; the
    /// connections held across beacon pairs).
    pub reason: &'static str,
}

impl TableLabels {
    /// Evictions of `table` for the reason its bound gives (`memory` for the stream budget).
    pub fn of(table: &'static str) -> Self {
        Self { table, reason: if table == "streams" { "memory" } else { "full" } }
    }

    /// Every (table, reason) the sensor counts, created at start so rates are defined.
    pub const ALL: [(&'static str, &'static str); 7] = [
        ("flows", "full"),
        ("fragments", "full"),
        ("streams", "memory"),
        ("tftp", "full"),
        ("devices", "full"),
        ("beacon_pairs", "full"),
        ("beacon_pairs", "memory"),
    ];
}
