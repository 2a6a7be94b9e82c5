//! The rules file format, as serde types. `rules/README.md` documents it for analysts; this file
//! is the source of truth (unknown keys are rejected everywhere).

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

/// One rules file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// Named CIDR sets. A name defined in several files is the union of its definitions.
    #[serde(default)]
    pub networks: BTreeMap<String, Vec<String>>,
    /// Named lists of values (domains with globs, hashes, versions, user agents, CIDRs): usable
    /// by name in `in`/`not_in`. A name defined in several files is the union of its items.
    #[serde(default)]
    pub lists: BTreeMap<String, ListDef>,
    #[serde(default)]
    pub rules: Vec<RuleDef>,
}

/// A list: items inline, from a file (one per line, `#` comments; relative to the rules file),
/// or both.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListDef {
    #[serde(default)]
    pub items: Vec<String>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub file: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleDef {
    /// Stable identifier, used in alerts, suppression and the `rule` metric label.
    pub id: String,
    pub name: String,
    pub severity: Severity,
    pub category: Category,
    #[serde(default)]
    pub description: String,
    /// CVE ids and URLs.
    #[serde(default)]
    pub references: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(rename = "match")]
    pub matcher: MatchDef,
    #[serde(default)]
    pub suppress: Option<SuppressDef>,
    /// Alert only when matching events add up over a sliding window.
    #[serde(default)]
    pub threshold: Option<ThresholdDef>,
}

/// `count` (the default) or the `sum` of a numeric field over `window`, per key, must exceed `gt`.
#[derive(Debug, Clone, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ThresholdDef {
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub window: std::time::Duration,
    /// Fields that separate the windows (as `suppress.key`); default: per device.
    #[serde(default = "default_threshold_key")]
    pub key: Vec<String>,
    /// A numeric field to add up; without it, matching events are counted.
    #[serde(default)]
    pub sum: Option<String>,
    pub gt: u64,
}

fn default_threshold_key() -> Vec<String> {
    vec!["device".into()]
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Egress,
    Cloud,
    Dns,
    Exploit,
    Firmware,
    Discovery,
    Behaviour,
    Policy,
    /// The sensor itself cannot see everything (tables evicting under a flood).
    Sensor,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Egress => "egress",
            Category::Cloud => "cloud",
            Category::Dns => "dns",
            Category::Exploit => "exploit",
            Category::Firmware => "firmware",
            Category::Discovery => "discovery",
            Category::Behaviour => "behaviour",
            Category::Policy => "policy",
            Category::Sensor => "sensor",
        }
    }
}

/// What a rule looks at: one event type, which endpoint is the device, and conditions on fields.
#[derive(Debug, Clone, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchDef {
    pub event: EventType,
    /// Which side of the event must be a monitored device; it is the alert's `device`.
    #[serde(default)]
    pub device: DeviceSide,
    /// Conditions on the event's fields, all of which must hold.
    #[serde(default, rename = "where")]
    pub conditions: BTreeMap<String, Condition>,
    /// Alternatives: at least one of these groups must hold entirely.
    #[serde(default)]
    pub any: Vec<BTreeMap<String, Condition>>,
    /// This group must not hold entirely.
    #[serde(default)]
    pub not: Option<BTreeMap<String, Condition>>,
    /// Which devices the rule applies to.
    #[serde(default)]
    pub scope: Option<ScopeDef>,
}

/// Limits a rule to devices in these networks, of these vendors or models (globs allowed).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeDef {
    #[serde(default)]
    pub networks: Vec<String>,
    #[serde(default)]
    pub vendor: Vec<String>,
    #[serde(default)]
    pub model: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// A flow's first packet (alerts at once).
    FlowStart,
    /// A flow's end record (counters complete).
    Flow,
    /// What a flow carried in the last minute or so (and at its end, the rest): volume as it
    /// streams, each byte counted once across a flow's progress events.
    FlowProgress,
    Dns,
    Tls,
    Http,
    Dhcp,
    Rtsp,
    /// SADP, DHIP, WS-Discovery, SSDP.
    Discovery,
    /// Firmware first seen, upgraded, downgraded, changed, or a transfer.
    Firmware,
    /// A device's connections to one destination, scored for beaconing.
    Beacon,
    /// The sensor's own health: a bounded table evicting, once per minute that saw evictions.
    Sensor,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::FlowStart => "flow_start",
            EventType::Flow => "flow",
            EventType::FlowProgress => "flow_progress",
            EventType::Dns => "dns",
            EventType::Tls => "tls",
            EventType::Http => "http",
            EventType::Dhcp => "dhcp",
            EventType::Rtsp => "rtsp",
            EventType::Discovery => "discovery",
            EventType::Firmware => "firmware",
            EventType::Beacon => "beacon",
            EventType::Sensor => "sensor",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeviceSide {
    /// The originator (source) is a device.
    #[default]
    Src,
    /// The responder (destination) is a device.
    Dest,
    /// Either side; the source when both are.
    Any,
}

/// A value in a condition: a string (address, CIDR, network name, protocol, class) or a number.
#[derive(Debug, Clone, Deserialize, PartialEq, JsonSchema)]
#[serde(untagged)]
pub enum Value {
    Int(u64),
    Str(String),
}

/// Operators on one field; several in one condition must all hold.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub eq: Option<Value>,
    pub ne: Option<Value>,
    /// For addresses: network names, CIDRs or addresses; otherwise a list of values.
    #[serde(rename = "in")]
    pub in_: Option<Vec<Value>>,
    pub not_in: Option<Vec<Value>>,
    pub lt: Option<u64>,
    pub le: Option<u64>,
    pub gt: Option<u64>,
    pub ge: Option<u64>,
    /// Glob patterns (`*` and `?`, case-insensitive): `*.hik-connect.com`.
    pub glob: Option<OneOrMany>,
    /// A regular expression (Rust `regex` syntax), matched anywhere in the value.
    pub regex: Option<String>,
    /// Substrings (case-insensitive).
    pub contains: Option<OneOrMany>,
    pub prefix: Option<OneOrMany>,
    pub suffix: Option<OneOrMany>,
    /// Vendor-aware firmware version comparisons; a version that cannot be ordered against
    /// the bound never matches.
    pub version_lt: Option<String>,
    pub version_le: Option<String>,
    pub version_gt: Option<String>,
    pub version_ge: Option<String>,
    /// Inclusive range `[low, high]`.
    pub version_between: Option<[String; 2]>,
}

/// One string or a list of them.
#[derive(Debug, Clone, Deserialize, PartialEq, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn items(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// What makes two matches the same alert, and when that alert ends: matches with the same key
/// while the alert is active are counted (`camwatch_alerts_suppressed_total`), not raised again.
#[derive(Debug, Clone, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SuppressDef {
    /// Fields that make two alerts "the same": `device`, `src_ip`, `dest_ip`, `dest_port`,
    /// `proto`, `dest_name`.
    #[serde(default = "default_suppress_key")]
    pub key: Vec<String>,
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub interval: Duration,
    /// The alert is resolved once no matching event has been seen for this long (default: the
    /// interval). Until then further matches keep it active instead of raising it again.
    #[serde(default, with = "humantime_serde")]
    #[schemars(with = "Option<String>")]
    pub resolve_after: Option<Duration>,
}

fn default_suppress_key() -> Vec<String> {
    vec!["device".into(), "dest_ip".into()]
}
