//! Device identity from many signals: each value (vendor, model, serial, firmware, host name)
//! keeps the source it came from; a stronger source replaces a weaker one, and sources that
//! disagree become conflict events (an ONVIF manufacturer that is not the OUI vendor is often an
//! OEM rebrand). Firmware keeps a per-device history ordered with vendor-aware versions.

use serde::{Deserialize, Serialize};

use crate::model::time::Micros;
use crate::proto::firmware::Version;

/// Where an identity value was learned, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Hikvision ISAPI `deviceInfo` (the device describing itself over its API).
    Isapi,
    /// ONVIF `GetDeviceInformationResponse` or WS-Discovery scopes.
    Onvif,
    /// Hikvision SADP discovery.
    Sadp,
    /// Dahua DHIP discovery or magicBox.
    Dhip,
    /// HTTP banners and bodies.
    Http,
    Rtsp,
    Ssdp,
    Dhcp,
    /// The MAC address's registered owner.
    Oui,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Isapi => "isapi",
            Source::Onvif => "onvif",
            Source::Sadp => "sadp",
            Source::Dhip => "dhip",
            Source::Http => "http",
            Source::Rtsp => "rtsp",
            Source::Ssdp => "ssdp",
            Source::Dhcp => "dhcp",
            Source::Oui => "oui",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "isapi" => Source::Isapi,
            "onvif" => Source::Onvif,
            "sadp" => Source::Sadp,
            "dhip" => Source::Dhip,
            "http" => Source::Http,
            "rtsp" => Source::Rtsp,
            "ssdp" => Source::Ssdp,
            "dhcp" => Source::Dhcp,
            "oui" => Source::Oui,
            _ => return None,
        })
    }
}

/// What one message said about a device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observation {
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub firmware: Option<String>,
    pub hostname: Option<String>,
    /// The brand a rebranded device is sold under, when the device says (SADP `OEMInfo`).
    pub oem: Option<String>,
}

impl Observation {
    pub fn is_empty(&self) -> bool {
        self.vendor.is_none()
            && self.model.is_none()
            && self.serial.is_none()
            && self.firmware.is_none()
            && self.hostname.is_none()
            && self.oem.is_none()
    }
}

/// A value with its provenance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attr {
    pub value: String,
    pub source: Source,
    pub first_seen: Micros,
    pub last_seen: Micros,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub vendor: Option<Attr>,
    pub model: Option<Attr>,
    pub serial: Option<Attr>,
    pub firmware: Option<Attr>,
    pub hostname: Option<Attr>,
    /// The brand of a rebranded (OEM) device, as it reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oem: Option<Attr>,
}

/// How an identity field changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// First value for the field.
    Learned,
    /// A source at least as strong replaced the value.
    Changed,
    /// A weaker source disagrees; the value is kept.
    Conflict,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub field: &'static str,
    pub kind: ChangeKind,
    pub value: String,
    pub source: Source,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_source: Option<Source>,
}

/// Longest value kept for any identity field.
const MAX_VALUE: usize = 128;

fn clean(v: &str) -> Option<String> {
    let v: String = v.chars().filter(|c| !c.is_control()).take(MAX_VALUE).collect();
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_string())
}

fn same_version(a: &str, b: &str) -> bool {
    a == b || Version::parse(a).compare(&Version::parse(b)) == Some(std::cmp::Ordering::Equal)
}

/// Values that differ only in case or spacing are the same value.
fn same(a: &str, b: &str, field: &str) -> bool {
    if field == "vendor" {
        return crate::model::oui::short_vendor(a).eq_ignore_ascii_case(&crate::model::oui::short_vendor(b));
    }
    // `V5.7.3build 220112` (SADP) and `V5.7.3 build 220112` (ISAPI) are one version.
    if field == "firmware" && same_version(a, b) {
        return true;
    }
    a.split_whitespace().eq(b.split_whitespace()) || a.eq_ignore_ascii_case(b)
}

impl Identity {
    /// Merges an observation; returns what changed. Firmware is merged here too (value and
    /// source); its history and ordering live in [`FirmwareHistory`].
    pub fn merge(&mut self, source: Source, obs: &Observation, ts: Micros) -> Vec<Change> {
        let mut changes = Vec::new();
        let fields: [(&'static str, &Option<String>, &mut Option<Attr>); 6] = [
            ("vendor", &obs.vendor, &mut self.vendor),
            ("model", &obs.model, &mut self.model),
            ("serial", &obs.serial, &mut self.serial),
            ("firmware", &obs.firmware, &mut self.firmware),
            ("hostname", &obs.hostname, &mut self.hostname),
            ("oem", &obs.oem, &mut self.oem),
        ];
        for (field, new, slot) in fields {
            let Some(value) = new.as_deref().and_then(clean) else { continue };
            let value = if field == "vendor" { crate::model::oui::short_vendor(&value) } else { value };
            match slot {
                None => {
                    *slot = Some(Attr { value: value.clone(), source, first_seen: ts, last_seen: ts });
                    changes.push(Change {
                        field,
                        kind: ChangeKind::Learned,
                        value,
                        source,
                        previous: None,
                        previous_source: None,
                    });
                }
                Some(old) if same(&old.value, &value, field) => {
                    old.last_seen = old.last_seen.max(ts);
                    if source < old.source {
                        old.source = source;
                    }
                }
                Some(old) => {
                    // Firmware changes over time: the latest report wins whatever its source
                    // (its history and ordering are kept by `FirmwareHistory`).
                    let kind = if source <= old.source || field == "firmware" {
                        ChangeKind::Changed
                    } else {
                        ChangeKind::Conflict
                    };
                    changes.push(Change {
                        field,
                        kind,
                        value: value.clone(),
                        source,
                        previous: Some(old.value.clone()),
                        previous_source: Some(old.source),
                    });
                    if kind == ChangeKind::Changed {
                        *old = Attr { value, source, first_seen: ts, last_seen: ts };
                    }
                }
            }
        }
        changes
    }
}

/// One firmware version a device ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirmwareEntry {
    pub version: String,
    pub source: Source,
    pub first_seen: Micros,
    pub last_seen: Micros,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FirmwareChangeKind {
    FirstSeen,
    Upgraded,
    Downgraded,
    /// Versions that cannot be ordered (unparseable, or different version schemes).
    Changed,
}

impl FirmwareChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FirmwareChangeKind::FirstSeen => "first_seen",
            FirmwareChangeKind::Upgraded => "upgraded",
            FirmwareChangeKind::Downgraded => "downgraded",
            FirmwareChangeKind::Changed => "changed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FirmwareChange {
    pub kind: FirmwareChangeKind,
    pub version: String,
    pub source: Source,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
}

/// Most versions remembered per device (the oldest are forgotten first).
const MAX_HISTORY: usize = 32;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirmwareHistory {
    pub entries: Vec<FirmwareEntry>,
}

impl FirmwareHistory {
    pub fn current(&self) -> Option<&FirmwareEntry> {
        self.entries.iter().max_by_key(|e| e.last_seen)
    }

    /// Records a firmware version seen at `ts`; returns the change when it is new or differs
    /// from the current one.
    pub fn observe(&mut self, version: &str, source: Source, ts: Micros) -> Option<FirmwareChange> {
        let version = clean(version)?;
        let current = self.current().map(|e| e.version.clone());
        if let Some(e) = self.entries.iter_mut().find(|e| same_version(&e.version, &version)) {
            let is_current = current.as_deref() == Some(e.version.as_str());
            e.last_seen = e.last_seen.max(ts);
            e.first_seen = e.first_seen.min(ts);
            if is_current {
                return None;
            }
        } else {
            if self.entries.len() >= MAX_HISTORY {
                if let Some(i) =
                    self.entries.iter().enumerate().min_by_key(|(_, e)| e.last_seen).map(|(i, _)| i)
                {
                    self.entries.remove(i);
                }
            }
            self.entries.push(FirmwareEntry {
                version: version.clone(),
                source,
                first_seen: ts,
                last_seen: ts,
            });
        }
        let kind = match &current {
            None => FirmwareChangeKind::FirstSeen,
            Some(prev) => match Version::parse(prev).compare(&Version::parse(&version)) {
                Some(std::cmp::Ordering::Less) => FirmwareChangeKind::Upgraded,
                Some(std::cmp::Ordering::Greater) => FirmwareChangeKind::Downgraded,
                _ => FirmwareChangeKind::Changed,
            },
        };
        Some(FirmwareChange { kind, version, source, previous: current })
    }

    /// Takes in a version another record of the same device saw (two records merged: the device
    /// came back at another address). Returns the change only when the entry is newer than this
    /// history's current version: an older entry is history, not news.
    pub fn absorb(&mut self, e: &FirmwareEntry) -> Option<FirmwareChange> {
        let newer = self.current().is_none_or(|c| e.last_seen > c.last_seen);
        let change = self.observe(&e.version, e.source, e.last_seen);
        if let Some(mine) = self.entries.iter_mut().find(|m| same_version(&m.version, &e.version)) {
            mine.first_seen = mine.first_seen.min(e.first_seen);
        }
        change.filter(|_| newer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(vendor: Option<&str>, model: Option<&str>) -> Observation {
        Observation { vendor: vendor.map(Into::into), model: model.map(Into::into), ..Observation::default() }
    }

    #[test]
    fn stronger_sources_replace_weaker_ones_disagree_as_conflicts() {
        let mut id = Identity::default();
        let c = id.merge(Source::Oui, &obs(Some("Hangzhou Hikvision Digital Technology Co.,Ltd."), None), 1);
        assert_eq!((c[0].kind, c[0].value.as_str()), (ChangeKind::Learned, "Hikvision"));
        // Same vendor, spelled differently, from a stronger source: no change, source upgraded.
        assert!(id
            .merge(Source::Sadp, &obs(Some("HIKVISION"), Some("DS-2CD2143G2-I")), 2)
            .iter()
            .all(|c| c.field == "model"));
        assert_eq!(id.vendor.as_ref().map(|a| a.source), Some(Source::Sadp));
        // A weaker source disagreeing is a conflict and does not replace.
        let c = id.merge(Source::Ssdp, &obs(None, Some("IPCAM-X")), 3);
        assert_eq!(c[0].kind, ChangeKind::Conflict);
        assert_eq!(id.model.as_ref().map(|a| a.value.as_str()), Some("DS-2CD2143G2-I"));
        // A stronger source disagreeing replaces (OEM rebrand shows up here as a change).
        let c = id.merge(Source::Isapi, &obs(None, Some("DS-2CD2143G2-IU")), 4);
        assert_eq!(c[0].kind, ChangeKind::Changed);
        assert_eq!(c[0].previous.as_deref(), Some("DS-2CD2143G2-I"));
    }

    #[test]
    fn firmware_history_orders_versions() {
        let mut h = FirmwareHistory::default();
        let first = h.observe("V5.5.0 build 170725", Source::Sadp, 1);
        assert_eq!(first.map(|c| c.kind), Some(FirmwareChangeKind::FirstSeen));
        assert_eq!(h.observe("V5.5.0 build 170725", Source::Sadp, 2), None);
        let up = h.observe("V5.7.3 build 220112", Source::Sadp, 3);
        assert_eq!(up.map(|c| c.kind), Some(FirmwareChangeKind::Upgraded));
        let down = h.observe("V5.4.0 build 160530", Source::Isapi, 4);
        let down = down.unwrap_or_else(|| panic!("no change"));
        assert_eq!(down.kind, FirmwareChangeKind::Downgraded);
        assert_eq!(down.previous.as_deref(), Some("V5.7.3 build 220112"));
        // The same version written the ISAPI way is not a change.
        assert_eq!(h.observe("V5.4.0build 160530", Source::Sadp, 5), None);
        let odd = h.observe("weird-build", Source::Http, 6);
        assert_eq!(odd.map(|c| c.kind), Some(FirmwareChangeKind::Changed));
        assert_eq!(h.entries.len(), 4);
    }
}
