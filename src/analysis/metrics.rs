//! The analysis layer's metric groups: the application layer's messages, parse errors, streams
//! and firmware transfers ([`AppMetrics`]), and the inventory's per-device series
//! ([`InventoryMetrics`]), capped by `devices.max_metric_devices`.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::model::labels::ResultLabels;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProtocolLabels {
    pub protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ParseErrorLabels {
    pub protocol: &'static str,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransferLabels {
    pub direction: &'static str,
    pub completed: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeviceLabels {
    pub device: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeviceInfoLabels {
    pub device: String,
    pub mac: String,
    pub vendor: String,
    pub model: String,
    pub firmware: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeviceBytesLabels {
    pub device: String,
    /// `sent` or `received`, from the device's point of view.
    pub direction: &'static str,
    /// `internal`, `multicast`, `broadcast` or `external`.
    pub dest_class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FirmwareLabels {
    pub device: String,
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeviceSeverityLabels {
    pub device: String,
    pub severity: String,
}

/// The application layer's metrics.
#[derive(Clone, Default)]
pub struct AppMetrics {
    pub messages: Family<ProtocolLabels, Counter>,
    pub parse_errors: Family<ParseErrorLabels, Counter>,
    pub passive_dns_entries: Gauge,
    pub firmware_transfers: Family<TransferLabels, Counter>,
    pub active_dns_lookups: Family<ResultLabels, Counter>,
}

impl AppMetrics {
    pub fn register(r: &mut Registry) -> Self {
        let m = Self::default();
        r.register("app_messages", "Application messages parsed, by protocol", m.messages.clone());
        r.register("parse_errors", "Application messages that failed to parse", m.parse_errors.clone());
        r.register("passive_dns_entries", "Addresses in the passive DNS map", m.passive_dns_entries.clone());
        r.register(
            "firmware_transfers",
            "Firmware images seen moving over HTTP",
            m.firmware_transfers.clone(),
        );
        r.register(
            "active_dns_lookups",
            "Lookups of the rules' listed names by active DNS, by result",
            m.active_dns_lookups.clone(),
        );
        for protocol in ["dns", "dhcp", "dhip"] {
            drop(m.parse_errors.get_or_create(&ParseErrorLabels { protocol, reason: "truncated" }));
        }
        for result in ["ok", "error"] {
            drop(m.active_dns_lookups.get_or_create(&ResultLabels { result }));
        }
        m
    }
}

/// The inventory's metrics: devices and their per-device series.
#[derive(Clone, Default)]
pub struct InventoryMetrics {
    pub devices: Gauge,
    pub info: Arc<DeviceInfo>,
    pub last_seen: Family<DeviceLabels, GaugeF>,
    pub bytes: Family<DeviceBytesLabels, Counter>,
    pub unexpected: Family<DeviceLabels, Gauge>,
    pub firmware_changes: Family<FirmwareLabels, Counter>,
    pub alerts: Family<DeviceSeverityLabels, Counter>,
    pub firmware_vulnerable: Family<DeviceLabels, Gauge>,
}

impl InventoryMetrics {
    pub fn register(r: &mut Registry) -> Self {
        let m = Self::default();
        r.register("devices", "Devices in the inventory", m.devices.clone());
        r.register_collector(Box::new(m.info.clone()));
        r.register(
            "device_last_seen_timestamp_seconds",
            "Packet time a device was last seen",
            m.last_seen.clone(),
        );
        r.register(
            "device_bytes",
            "Bytes a device sent or received (IP layer), by peer class",
            m.bytes.clone(),
        );
        r.register(
            "device_unexpected_destinations",
            "Distinct destinations of a device that egress or cloud rules flagged",
            m.unexpected.clone(),
        );
        r.register("firmware_changes", "Firmware changes seen, by kind", m.firmware_changes.clone());
        r.register("device_alerts", "Alerts raised about a device, by severity", m.alerts.clone());
        r.register(
            "device_firmware_vulnerable",
            "1 when a rule tagged vulnerable-firmware matched the device's current firmware",
            m.firmware_vulnerable.clone(),
        );
        m
    }
}

/// A gauge of seconds with a fractional part.
pub type GaugeF = Gauge<f64, AtomicU64>;

/// `camwatch_device_info`: one info series per device, whose labels change as identity is
/// learned. An info metric cannot be a `Family`, so it is encoded from this map at scrape time
/// (the lock is taken by the analysis thread when a device changes and by scrapes, never per
/// packet).
#[derive(Debug, Default)]
pub struct DeviceInfo {
    devices: RwLock<BTreeMap<String, DeviceInfoLabels>>,
}

impl DeviceInfo {
    pub fn set(&self, labels: DeviceInfoLabels) {
        if let Ok(mut d) = self.devices.write() {
            d.insert(labels.device.clone(), labels);
        }
    }

    /// Drops a device's series (it moved to another address).
    pub fn remove(&self, device: &str) {
        if let Ok(mut d) = self.devices.write() {
            d.remove(device);
        }
    }
}

impl Collector for DeviceInfo {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Ok(devices) = self.devices.read() else { return Ok(()) };
        if devices.is_empty() {
            return Ok(());
        }
        let mut metric = encoder.encode_descriptor(
            "device",
            "Device identity: vendor, model and firmware as last learned",
            None,
            MetricType::Info,
        )?;
        for labels in devices.values() {
            metric.encode_info(labels)?;
        }
        Ok(())
    }
}
