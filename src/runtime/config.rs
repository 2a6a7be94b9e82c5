//! The sensor's configuration file (`--config`, YAML). Every section has defaults that work on a
//! fresh machine; unknown keys are errors, reported with file, line and column.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::analysis::device::DevicesConfig;
use crate::capture::CaptureConfig;
use crate::flow::FlowConfig;
use crate::model::yaml::{read_yaml, FileError};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// This sensor's name, carried by every alert and event (`sensor`). Default: the host name.
    pub sensor: String,
    pub capture: CaptureConfig,
    pub devices: DevicesConfig,
    pub flow: FlowConfig,
    /// Rules files or directories of `*.yaml` files.
    pub rules: Vec<PathBuf>,
    pub outputs: OutputsConfig,
    /// Packet workers; flows are sharded across them by a symmetric hash of the flow key.
    pub workers: usize,
    /// Once the capture handles are open, the daemon switches to this user (from root).
    pub user: Option<String>,
    /// Resolving the rules' listed domain names (daemon only).
    pub active_dns: crate::analysis::active_dns::ActiveDnsConfig,
    /// The beaconing scorer behind `beacon` events.
    pub beacon: crate::analysis::beacon::BeaconConfig,
    /// Storm control: per rule and device, and a global ceiling on alert records.
    pub alerts: crate::alert::storm::StormConfig,
    /// Evidence captures: a pcap of each alert's flow.
    pub evidence: crate::alert::evidence::EvidenceConfig,
    /// Where alerts are delivered from the journal (daemon only).
    pub sinks: crate::sink::SinksConfig,
}

/// This host's name (the default sensor name, as Suricata's `host`), or `camwatch` when it has
/// none.
pub fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "camwatch".into())
}

impl Default for Config {
    fn default() -> Self {
        Self {
            sensor: host_name(),
            capture: CaptureConfig::default(),
            devices: DevicesConfig::default(),
            flow: FlowConfig::default(),
            rules: vec![PathBuf::from("rules")],
            outputs: OutputsConfig::default(),
            workers: 1,
            user: None,
            active_dns: crate::analysis::active_dns::ActiveDnsConfig::default(),
            beacon: crate::analysis::beacon::BeaconConfig::default(),
            alerts: crate::alert::storm::StormConfig::default(),
            evidence: crate::alert::evidence::EvidenceConfig::default(),
            sinks: crate::sink::SinksConfig::default(),
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
    /// Size-based rotation of the alert journal and the event log inside camwatch
    /// (`{max_bytes: 104857600, keep: 5}`), for hosts without logrotate. Off by default: with
    /// logrotate, SIGHUP (or a moved file, seen within a second) reopens them.
    pub rotation: Option<crate::output::Rotation>,
    /// The HTTP endpoint's web configuration (TLS, basic authentication) in the Prometheus
    /// exporter-toolkit's format; `--web.config.file` overrides it.
    pub web_config: Option<PathBuf>,
    /// The read-only web view under `/ui/` on the same endpoint (devices, a device's timeline,
    /// alerts with evidence download). Off by default: it shows the estate to whoever reaches
    /// the port, so turn it on with `web_config` (TLS, basic authentication) or on loopback.
    pub web_view: bool,
}

impl Default for OutputsConfig {
    fn default() -> Self {
        Self {
            alerts: Some(PathBuf::from("var/alerts.jsonl")),
            events: Some(PathBuf::from("var/events.jsonl")),
            listen: SocketAddr::from(([127, 0, 0, 1], 9477)),
            state: Some(PathBuf::from("var/camwatch.db")),
            rotation: None,
            web_config: None,
            web_view: false,
        }
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, FileError> {
        let cfg: Config = read_yaml(path)?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    fn validate(&self, path: &Path) -> Result<(), FileError> {
        crate::model::netset::resolve(&self.devices.networks)
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
    use std::time::Duration;

    use super::*;
    use crate::model::yaml::parse_yaml;

    #[test]
    fn default_config_round_trips_through_an_empty_file() {
        let cfg: Config = parse_yaml(Path::new("x.yaml"), "").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg, Config::default());
        // The default sensor name is the host's.
        assert_eq!(cfg.sensor, host_name());
        assert!(!cfg.sensor.is_empty());
        let named = format!("sensor: {}\n", host_name());
        let cfg: Config = parse_yaml(Path::new("x.yaml"), &named).unwrap_or_else(|e| panic!("{e}"));
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
