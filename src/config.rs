//! The sensor's configuration file (`--config`, YAML). Every section has defaults that work on a
//! fresh machine; unknown keys are errors, reported with file, line and column.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::flow::FlowConfig;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// This sensor's name, carried by every alert and event (`sensor`).
    pub sensor: String,
    pub capture: CaptureConfig,
    pub devices: DevicesConfig,
    pub flow: FlowConfig,
    /// Rules files or directories of `*.yaml` files.
    pub rules: Vec<PathBuf>,
    pub outputs: OutputsConfig,
    /// Packet workers; flows are sharded across them by a symmetric hash of the flow key.
    pub workers: usize,
    /// Resolving the rules' listed domain names (daemon only).
    pub active_dns: crate::active_dns::ActiveDnsConfig,
    /// The beaconing scorer behind `beacon` events.
    pub beacon: crate::beacon::BeaconConfig,
    /// Evidence captures: a pcap of each alert's flow.
    pub evidence: crate::evidence::EvidenceConfig,
    /// Where alerts are delivered from the journal (daemon only).
    pub sinks: crate::sink::SinksConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            sensor: "camwatch".into(),
            capture: CaptureConfig::default(),
            devices: DevicesConfig::default(),
            flow: FlowConfig::default(),
            rules: vec![PathBuf::from("rules")],
            outputs: OutputsConfig::default(),
            workers: 1,
            active_dns: crate::active_dns::ActiveDnsConfig::default(),
            beacon: crate::beacon::BeaconConfig::default(),
            evidence: crate::evidence::EvidenceConfig::default(),
            sinks: crate::sink::SinksConfig::default(),
        }
    }
}

/// Live capture settings (libpcap).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConfig {
    /// Interfaces to capture from (added to `--interface`).
    pub interfaces: Vec<String>,
    /// BPF filter applied to every live source.
    pub filter: Option<String>,
    /// Bytes kept of each packet.
    pub snaplen: i32,
    /// Kernel capture buffer, bytes.
    pub buffer_size: i32,
    pub promiscuous: bool,
    /// Deliver packets as they arrive instead of in buffered batches.
    pub immediate: bool,
    /// How long a read waits on a quiet link before the loop ticks (flow timeouts, stats).
    #[serde(with = "humantime_serde")]
    pub read_timeout: Duration,
    /// Packets queued between a live capture thread and the workers; beyond it packets are
    /// dropped and counted (`reason="queue"`). About 1.6 KB each.
    pub queue_packets: usize,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        Self {
            interfaces: Vec::new(),
            filter: None,
            snaplen: 65535,
            buffer_size: 16 << 20,
            promiscuous: true,
            immediate: true,
            read_timeout: Duration::from_millis(250),
            queue_packets: 8192,
        }
    }
}

/// Which hosts are devices (monitored hosts).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DevicesConfig {
    /// CIDRs or built-in names (`private`, …) whose hosts are devices. Default: private space.
    pub networks: Vec<String>,
    /// Most devices kept in the inventory.
    pub max_devices: usize,
    /// Most devices given their own metric series; the rest share `device="overflow"`.
    pub max_metric_devices: usize,
    /// Distinct unexpected destinations remembered per device.
    pub max_unexpected_destinations: usize,
}

impl Default for DevicesConfig {
    fn default() -> Self {
        Self {
            networks: vec!["private".into()],
            max_devices: 50_000,
            max_metric_devices: 2_000,
            max_unexpected_destinations: 256,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OutputsConfig {
    /// Alert journal (JSON lines); every alert is written here first.
    pub alerts: Option<PathBuf>,
    /// Event log (EVE-shaped JSON lines).
    pub events: Option<PathBuf>,
    /// Address of the `/metrics` and `/healthz` endpoint.
    pub listen: SocketAddr,
    /// State database (SQLite): the inventory, firmware history and destinations.
    pub state: Option<PathBuf>,
}

impl Default for OutputsConfig {
    fn default() -> Self {
        Self {
            alerts: Some(PathBuf::from("var/alerts.jsonl")),
            events: Some(PathBuf::from("var/events.jsonl")),
            listen: SocketAddr::from(([127, 0, 0, 1], 9477)),
            state: Some(PathBuf::from("var/camwatch.db")),
        }
    }
}

/// An error in a YAML file camwatch reads, located for the person who has to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for FileError {}

impl FileError {
    pub fn new(file: &Path, message: impl Into<String>) -> Self {
        Self { file: file.to_path_buf(), line: None, column: None, message: message.into() }
    }

    pub fn at(file: &Path, line: usize, column: usize, message: impl Into<String>) -> Self {
        Self { file: file.to_path_buf(), line: Some(line), column: Some(column), message: message.into() }
    }

    /// From a YAML deserialisation error, keeping its location.
    pub fn yaml(file: &Path, err: &serde_norway::Error) -> Self {
        let mut message = err.to_string();
        // serde_norway appends " at line L column C"; the location is reported in front instead.
        if let Some(i) = message.find(" at line ") {
            message.truncate(i);
        }
        match err.location() {
            Some(loc) => Self::at(file, loc.line(), loc.column(), message),
            None => Self::new(file, message),
        }
    }
}

/// Reads a YAML file into `T`. An empty file is `T::default()`.
pub fn read_yaml<T: serde::de::DeserializeOwned + Default>(path: &Path) -> Result<T, FileError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| FileError::new(path, format!("cannot read: {e}")))?;
    parse_yaml(path, &text)
}

pub fn parse_yaml<T: serde::de::DeserializeOwned + Default>(path: &Path, text: &str) -> Result<T, FileError> {
    if text.trim().is_empty() {
        return Ok(T::default());
    }
    serde_norway::from_str(text).map_err(|e| FileError::yaml(path, &e))
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, FileError> {
        let cfg: Config = read_yaml(path)?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    fn validate(&self, path: &Path) -> Result<(), FileError> {
        crate::netset::resolve(&self.devices.networks)
            .map_err(|e| FileError::new(path, format!("devices.networks: {e}")))?;
        if self.workers == 0 || self.workers > 64 {
            return Err(FileError::new(path, "workers: must be between 1 and 64"));
        }
        self.sinks.validate().map_err(|e| FileError::new(path, format!("sinks: {e}")))?;
        if self.capture.queue_packets == 0 {
            return Err(FileError::new(path, "capture.queue_packets: must be at least 1"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_round_trips_through_an_empty_file() {
        let cfg: Config = parse_yaml(Path::new("x.yaml"), "").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg, Config::default());
        let cfg: Config =
            parse_yaml(Path::new("x.yaml"), "sensor: camwatch\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg, Config::default());
    }

    #[test]
    fn durations_and_sections_parse() {
        let text = "sensor: site-a\nflow:\n  tcp_idle_timeout: 2m\n  max_flows: 1000\ncapture:\n  read_timeout: 100ms\n";
        let cfg: Config = parse_yaml(Path::new("c.yaml"), text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.sensor, "site-a");
        assert_eq!(cfg.flow.tcp_idle_timeout, Duration::from_secs(120));
        assert_eq!(cfg.flow.max_flows, 1000);
        assert_eq!(cfg.capture.read_timeout, Duration::from_millis(100));
    }

    #[test]
    fn unknown_key_is_located() {
        let text = "sensor: a\nflow:\n  idle: 5s\n";
        let err = parse_yaml::<Config>(Path::new("c.yaml"), text).err().unwrap_or_else(|| panic!("accepted"));
        assert_eq!(err.line, Some(3), "{err}");
        assert!(err.message.contains("unknown field `idle`"), "{err}");
        assert!(err.to_string().starts_with("c.yaml:3:"), "{err}");
    }
}
