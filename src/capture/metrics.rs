//! The capture layer's metric group: packets and bytes read per source, drops, read errors.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::model::labels::ReasonLabels;

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

#[derive(Clone, Default)]
pub struct CaptureMetrics {
    pub packets: Family<SourceLabels, Counter>,
    pub bytes: Family<SourceLabels, Counter>,
    pub dropped: Family<DropLabels, Counter>,
    pub errors: Family<ReasonLabels, Counter>,
}

impl CaptureMetrics {
    pub fn register(r: &mut Registry) -> Self {
        let m = Self::default();
        r.register("capture_packets", "Packets captured", m.packets.clone());
        r.register("capture_bytes", "Bytes captured (frame length on the wire)", m.bytes.clone());
        r.register("capture_dropped_packets", "Packets lost before analysis", m.dropped.clone());
        r.register("capture_errors", "Capture read errors (e.g. a truncated file)", m.errors.clone());
        for reason in ["open", "read", "truncated"] {
            drop(m.errors.get_or_create(&ReasonLabels { reason }));
        }
        m
    }
}
