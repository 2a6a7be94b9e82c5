//! What the review commands read: the state database (devices, firmware history, destinations,
//! hourly traffic), the alert journal (alerts with their evidence), and the packs (which
//! firmware rules a device's current version falls under).

use std::collections::BTreeMap;
use std::io::BufRead;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::analysis::device::{Device, Inventory};
use crate::detect::fields::Subject;
use crate::detect::RuleSet;
use crate::model::event::{format_mac, parse_mac, FirmwareEvent};
use crate::model::identity::{FirmwareChange, FirmwareChangeKind};
use crate::model::netset::{DestClass, NetSet};
use crate::model::time::{parse_rfc3339, Micros};
use crate::store::{Store, TrafficHour};

/// Distinct alerts read from a journal; past it the rest are counted, not kept.
pub const MAX_ALERTS: usize = 100_000;

/// Longest line read from a journal or an event log (camwatch writes far shorter ones); a longer
/// one is skipped and counted, so a damaged file cannot make a reader hold it whole.
pub const MAX_LINE: usize = 1 << 20;

/// Calls `f` with each line of `path` (without its newline) up to [`MAX_LINE`] bytes; returns
/// how many longer lines were skipped.
pub fn for_each_line(path: &Path, mut f: impl FnMut(&[u8])) -> anyhow::Result<u64> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut r = std::io::BufReader::new(file);
    let mut buf = Vec::new();
    let mut skipped = 0;
    let io = |e: std::io::Error| anyhow::anyhow!("{}: {e}", path.display());
    loop {
        buf.clear();
        let n = (&mut r).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut buf).map_err(io)?;
        if n == 0 {
            return Ok(skipped);
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        } else if buf.len() > MAX_LINE {
            skipped += 1;
            // Drop the rest of the overlong line.
            loop {
                buf.clear();
                let n = (&mut r).take(MAX_LINE as u64).read_until(b'\n', &mut buf).map_err(io)?;
                if n == 0 || buf.last() == Some(&b'\n') {
                    break;
                }
            }
            continue;
        }
        f(&buf);
    }
}

/// The tag of rules whose match means the firmware is in a vulnerable range (as the
/// `camwatch_device_firmware_vulnerable` metric reads it).
pub const VULNERABLE_TAG: &str = "vulnerable-firmware";

/// One alert from the journal: its firing record, and when it resolved.
#[derive(Debug, Clone, Serialize)]
pub struct AlertEntry {
    pub id: String,
    pub rule_id: String,
    pub rule_name: String,
    pub severity: String,
    pub category: String,
    pub summary: String,
    pub device: Option<IpAddr>,
    pub src_ip: Option<IpAddr>,
    pub dest_ip: Option<IpAddr>,
    #[serde(skip)]
    pub starts: Micros,
    pub starts_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<String>,
    pub references: Vec<String>,
    /// The evidence pcap as the journal names it, its SHA-256 and packet count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pcap: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packets: Option<u64>,
    pub matched: Vec<String>,
}

/// The fields of a journal record the review reads; anything else in it is ignored.
#[derive(Deserialize)]
struct JournalRecord {
    id: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    timestamp: String,
    #[serde(default)]
    starts_at: String,
    #[serde(default)]
    rule: JournalRule,
    #[serde(default)]
    category: String,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    device: Option<JournalDevice>,
    #[serde(default)]
    src_ip: Option<IpAddr>,
    #[serde(default)]
    dest_ip: Option<IpAddr>,
    #[serde(default)]
    evidence: Option<JournalEvidence>,
}

#[derive(Deserialize, Default)]
struct JournalRule {
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    references: Vec<String>,
}

#[derive(Deserialize)]
struct JournalDevice {
    ip: Option<IpAddr>,
}

#[derive(Deserialize)]
struct JournalEvidence {
    #[serde(default)]
    pcap: Option<PathBuf>,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    packets: Option<u64>,
    #[serde(default)]
    matched: Vec<String>,
}

/// Alerts of a journal in the order they first fired. Lines that are not journal records (a
/// record torn by a crash) are counted in the second value, as are alerts past [`MAX_ALERTS`].
pub fn read_alerts(path: &Path) -> anyhow::Result<(Vec<AlertEntry>, u64)> {
    let mut by_id: BTreeMap<String, usize> = BTreeMap::new();
    let mut out: Vec<AlertEntry> = Vec::new();
    let mut skipped = 0u64;
    let overlong = for_each_line(path, |line| {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let Ok(r) = serde_json::from_slice::<JournalRecord>(line) else {
            skipped += 1;
            return;
        };
        if let Some(&i) = by_id.get(&r.id) {
            if r.status == "resolved" {
                out[i].resolved_at = Some(r.timestamp);
            }
            return;
        }
        if out.len() >= MAX_ALERTS {
            skipped += 1;
            return;
        }
        let starts_at = if r.starts_at.is_empty() { r.timestamp.clone() } else { r.starts_at };
        let evidence = r.evidence;
        by_id.insert(r.id.clone(), out.len());
        out.push(AlertEntry {
            id: r.id,
            rule_id: r.rule.id,
            rule_name: r.rule.name,
            severity: r.rule.severity,
            category: r.category,
            summary: r.summary,
            device: r.device.and_then(|d| d.ip),
            src_ip: r.src_ip,
            dest_ip: r.dest_ip,
            starts: parse_time(&starts_at).unwrap_or(0),
            starts_at,
            resolved_at: (r.status == "resolved").then_some(r.timestamp),
            references: r.rule.references,
            pcap: evidence.as_ref().and_then(|e| e.pcap.clone()),
            sha256: evidence.as_ref().and_then(|e| e.sha256.clone()),
            packets: evidence.as_ref().and_then(|e| e.packets),
            matched: evidence.map(|e| e.matched).unwrap_or_default(),
        });
    })?;
    out.sort_by_key(|a| a.starts);
    Ok((out, skipped + overlong))
}

/// A time from the command line or a record: RFC 3339 (`2026-01-01T02:00:00Z`), EVE's
/// `+0000` offsets, or a date or date and time read as UTC (`2026-01-01`, `2026-01-01 02:00`).
pub fn parse_time(s: &str) -> Option<Micros> {
    let mut t = s.trim().replacen(' ', "T", 1);
    if t.len() == 10 {
        t.push_str("T00:00:00Z");
    } else if t.len() == 16 {
        t.push_str(":00Z");
    } else if t.len() >= 5 {
        let tail = &t[t.len() - 5..];
        let b = tail.as_bytes();
        if (b[0] == b'+' || b[0] == b'-') && b[1..].iter().all(u8::is_ascii_digit) {
            t.insert(t.len() - 2, ':');
        } else if !t.ends_with(['Z', 'z']) && !t[t.len().saturating_sub(6)..].contains(['+', '-']) {
            t.push('Z');
        }
    }
    parse_rfc3339(&t)
}

/// A firmware rule the device's current version matches.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub rule_id: String,
    pub name: String,
    pub severity: String,
    /// True for rules tagged `vulnerable-firmware` (a known-vulnerable range for the model);
    /// false for weaker findings (a version numbered like a range, model unknown).
    pub vulnerable: bool,
    pub references: Vec<String>,
}

/// What the review reads, loaded once.
pub struct Estate {
    pub devices: Vec<Device>,
    pub traffic: Vec<TrafficHour>,
    pub alerts: Vec<AlertEntry>,
    /// Journal lines that were not records, and alerts past [`MAX_ALERTS`].
    pub alerts_skipped: u64,
    pub state: PathBuf,
    pub journal: Option<PathBuf>,
    rules: Option<std::sync::Arc<RuleSet>>,
    inventory: Inventory,
}

impl Estate {
    /// Reads the state database at `state` (it must exist: the review never creates one), the
    /// alert journal when given, and keeps `rules` for the firmware findings.
    pub fn load(
        state: &Path,
        journal: Option<&Path>,
        rules: Option<std::sync::Arc<RuleSet>>,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            state.is_file(),
            "{}: no state database (run camwatch with --state, or name it with --state)",
            state.display()
        );
        let store = Store::open(state).map_err(anyhow::Error::msg)?;
        let devices = store.load().map_err(anyhow::Error::msg)?;
        let traffic = store.traffic().map_err(anyhow::Error::msg)?;
        let (alerts, alerts_skipped) = match journal {
            Some(p) => read_alerts(p)?,
            None => (Vec::new(), 0),
        };
        // Every stored device is a device to the rules (their scopes ask the inventory).
        let mut inventory = Inventory::new(NetSet::any(), devices.len().max(1), 0);
        inventory.restore(devices.clone());
        inventory.take_dirty();
        Ok(Self {
            devices,
            traffic,
            alerts,
            alerts_skipped,
            state: state.to_path_buf(),
            journal: journal.map(Path::to_path_buf),
            rules,
            inventory,
        })
    }

    /// The device a user named: its address (current or past), MAC address, serial number or
    /// host name. Several devices answering one name is an error that lists them.
    pub fn find(&self, name: &str) -> anyhow::Result<&Device> {
        let name = name.trim();
        let ip = name.parse::<IpAddr>().ok();
        let mac = parse_mac(name);
        let attr_is = |a: &Option<crate::model::identity::Attr>| {
            a.as_ref().is_some_and(|a| a.value.eq_ignore_ascii_case(name))
        };
        let exact: Vec<&Device> = self
            .devices
            .iter()
            .filter(|d| {
                Some(d.ip) == ip
                    || (mac.is_some() && d.mac == mac)
                    || attr_is(&d.identity.serial)
                    || attr_is(&d.identity.hostname)
            })
            .collect();
        let found = if exact.is_empty() {
            // A past address: the device that held it most recently.
            let mut past: Vec<(&Device, Micros)> = self
                .devices
                .iter()
                .filter_map(|d| {
                    d.past_addresses
                        .iter()
                        .filter(|p| Some(p.ip) == ip)
                        .map(|p| p.until)
                        .max()
                        .map(|t| (d, t))
                })
                .collect();
            past.sort_by_key(|(_, t)| std::cmp::Reverse(*t));
            past.into_iter().map(|(d, _)| d).take(1).collect()
        } else {
            exact
        };
        match found.as_slice() {
            [d] => Ok(d),
            [] => anyhow::bail!(
                "{name}: no such device in {} (name it by address, MAC, serial or host name; `camwatch inventory` lists them)",
                self.state.display()
            ),
            many => anyhow::bail!(
                "{name}: {} devices answer to it ({}); name one by address",
                many.len(),
                many.iter().map(|d| d.ip.to_string()).collect::<Vec<_>>().join(", ")
            ),
        }
    }

    /// The firmware rules of the packs that the device's current version matches, asked as
    /// the sensor asks them when it first sees a version.
    pub fn findings(&self, d: &Device) -> Vec<Finding> {
        let (Some(rules), Some(entry)) = (&self.rules, d.firmware.current()) else { return Vec::new() };
        let ev = FirmwareEvent {
            ts: entry.last_seen,
            ip: d.ip,
            change: FirmwareChange {
                kind: FirmwareChangeKind::FirstSeen,
                version: entry.version.clone(),
                source: entry.source,
                previous: None,
            },
        };
        let mut matches = Vec::new();
        rules.matches(&Subject::from_firmware(&ev), &self.inventory, &mut matches);
        let mut out: Vec<Finding> = matches
            .iter()
            .map(|m| Finding {
                rule_id: m.rule.id.clone(),
                name: m.rule.name.clone(),
                severity: m.rule.severity.as_str().to_string(),
                vulnerable: m.rule.tags.iter().any(|t| t == VULNERABLE_TAG),
                references: m.rule.references.clone(),
            })
            .collect();
        out.sort_by(|a, b| b.vulnerable.cmp(&a.vulnerable).then_with(|| a.rule_id.cmp(&b.rule_id)));
        out.dedup_by(|a, b| a.rule_id == b.rule_id);
        out
    }

    /// The alerts about one device, oldest first.
    pub fn alerts_of<'a>(&'a self, d: &'a Device) -> impl Iterator<Item = &'a AlertEntry> + 'a {
        self.alerts.iter().filter(move |a| a.device == Some(d.ip))
    }

    /// The time span the state covers: first and last seen over every device.
    pub fn span(&self) -> Option<(Micros, Micros)> {
        let first = self.devices.iter().map(|d| d.first_seen).min()?;
        let last = self.devices.iter().map(|d| d.last_seen).max()?;
        Some((first, last))
    }
}

/// A destination outside the site: public address space (not private, link-local, loopback,
/// multicast or broadcast).
pub fn is_external(ip: IpAddr) -> bool {
    DestClass::of(ip) == DestClass::External
}

/// A device's vendor for display: the identity's, else the MAC prefix's short name.
pub fn vendor_of(d: &Device) -> Option<String> {
    d.identity.vendor.as_ref().map(|a| a.value.clone()).or_else(|| {
        d.mac
            .and_then(crate::model::oui::lookup)
            .map(|v| v.short.to_string())
            .or_else(|| d.organization.clone())
    })
}

/// A device's MAC for display.
pub fn mac_of(d: &Device) -> Option<String> {
    d.mac.map(format_mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_every_form_users_and_records_use() {
        let t = parse_time("2026-01-01T02:00:00Z");
        assert_eq!(t, Some(1_767_232_800_000_000));
        assert_eq!(parse_time("2026-01-01T02:00:00.000000+0000"), t);
        assert_eq!(parse_time("2026-01-01T03:00:00+01:00"), t);
        assert_eq!(parse_time("2026-01-01 02:00"), t);
        assert_eq!(parse_time("2026-01-01T02:00:00"), t);
        assert_eq!(parse_time("2026-01-01"), Some(1_767_225_600_000_000));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time(""), None);
    }

    #[test]
    fn a_journal_gives_one_entry_per_alert_with_its_resolution_and_counts_torn_lines() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("alerts.jsonl");
        let firing = r#"{"id":"aa","status":"firing","timestamp":"2026-01-01T00:00:05Z","starts_at":"2026-01-01T00:00:05Z","rule":{"id":"r1","name":"R one","severity":"high","references":["CVE-1"]},"category":"exploit","summary":"s","device":{"ip":"192.168.1.2"},"src_ip":"203.0.113.9","dest_ip":"192.168.1.2","evidence":{"pcap":"/e/aa.pcap","sha256":"ab","packets":3,"matched":["x eq y"]}}"#;
        let other = r#"{"id":"bb","status":"firing","timestamp":"2026-01-01T00:00:01Z","rule":{"id":"r2"},"device":{"ip":"192.168.1.3"}}"#;
        let resolved = r#"{"id":"aa","status":"resolved","timestamp":"2026-01-01T01:00:00Z"}"#;
        let long = format!("{{\"id\":\"cc\",\"summary\":\"{}\"}}", "x".repeat(MAX_LINE + 10));
        std::fs::write(&path, format!("{firing}\n{other}\n{{\"torn\n{long}\n{resolved}"))
            .unwrap_or_else(|e| panic!("{e}"));
        let (alerts, skipped) = read_alerts(&path).unwrap_or_else(|e| panic!("{e}"));
        // The torn record and the overlong one; the last line needs no newline.
        assert_eq!(skipped, 2);
        assert_eq!(alerts.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), ["bb", "aa"]);
        let a = &alerts[1];
        assert_eq!(a.resolved_at.as_deref(), Some("2026-01-01T01:00:00Z"));
        assert_eq!(a.pcap.as_deref(), Some(Path::new("/e/aa.pcap")));
        assert_eq!(a.device, "192.168.1.2".parse().ok());
        assert_eq!(a.references, ["CVE-1"]);
    }
}
