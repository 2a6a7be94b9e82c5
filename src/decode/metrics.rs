//! The decode layer's metric group: frames that could not be decoded, by layer.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::ErrorLayer;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LayerLabels {
    pub layer: &'static str,
}

#[derive(Clone, Default)]
pub struct DecodeMetrics {
    pub errors: Family<LayerLabels, Counter>,
}

impl DecodeMetrics {
    pub fn register(r: &mut Registry) -> Self {
        let m = Self::default();
        r.register("decode_errors", "Packets that could not be decoded, by layer", m.errors.clone());
        for layer in ErrorLayer::ALL {
            drop(m.errors.get_or_create(&LayerLabels { layer: layer.as_str() }));
        }
        m
    }
}
