//! What the review commands read: the state database (devices, firmware history, destinations,
//! hourly traffic), the alert journal (alerts with their evidence), and the packs (which
//! firmware rules a device's current version falls under).

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

/// Longest summary, rule name or matched condition kept from a journal record, and most
/// matched conditions: a record is the sensor's, but a summary quotes the network.
const MAX_TEXT: usize = 2048;
const MAX_MATCHED: usize = 32;

fn clip(mut s: String) -> String {
    if s.len() > MAX_TEXT {
        let mut end = MAX_TEXT;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

fn entry(r: JournalRecord) -> AlertEntry {
    let starts_at = if r.starts_at.is_empty() { r.timestamp.clone() } else { r.starts_at };
    let evidence = r.evidence;
    AlertEntry {
        id: r.id,
        rule_id: clip(r.rule.id),
        rule_name: clip(r.rule.name),
        severity: clip(r.rule.severity),
        category: clip(r.category),
        summary: clip(r.summary),
        device: r.device.and_then(|d| d.ip),
        src_ip: r.src_ip,
        dest_ip: r.dest_ip,
        starts: parse_time(&starts_at).unwrap_or(0),
        starts_at,
        resolved_at: (r.status == "resolved").then_some(r.timestamp),
        references: r.rule.references.into_iter().take(MAX_MATCHED).map(clip).collect(),
        pcap: evidence.as_ref().and_then(|e| e.pcap.clone()),
        sha256: evidence.as_ref().and_then(|e| e.sha256.clone()),
        packets: evidence.as_ref().and_then(|e| e.packets),
        matched: evidence
            .map(|e| e.matched.into_iter().take(MAX_MATCHED).map(clip).collect())
            .unwrap_or_default(),
    }
}

/// The newest [`MAX_ALERTS`] alerts of a journal, ordered by when they started, each with
/// when it resolved. The second value counts lines that are not journal records (a record
/// torn by a crash, an overlong line) and older alerts left out past the bound.
pub fn read_alerts(path: &Path) -> anyhow::Result<(Vec<AlertEntry>, u64)> {
    let mut by_id: std::collections::HashMap<String, usize> = Default::default();
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
        if r.id.len() > 64 {
            skipped += 1;
            return;
        }
        if let Some(&i) = by_id.get(&r.id) {
            if r.status == "resolved" {
                out[i].resolved_at = Some(clip(r.timestamp));
            }
            return;
        }
        // Bounded: at twice the bound the older half goes (the journal is in time order).
        if out.len() >= 2 * MAX_ALERTS {
            let gone = out.len() - MAX_ALERTS;
            out.drain(..gone);
            skipped += gone as u64;
            by_id = out.iter().enumerate().map(|(i, a)| (a.id.clone(), i)).collect();
        }
        by_id.insert(r.id.clone(), out.len());
        out.push(entry(r));
    })?;
    if out.len() > MAX_ALERTS {
        let gone = out.len() - MAX_ALERTS;
        out.drain(..gone);
        skipped += gone as u64;
    }
    out.sort_by_key(|a| a.starts);
    Ok((out, skipped + overlong))
}

/// The alert `id` of a journal (its firing record, and when it resolved), found by scanning:
/// whatever its age.
pub fn find_alert(path: &Path, id: &str) -> anyhow::Result<Option<AlertEntry>> {
    let needle = format!("\"id\":\"{id}\"");
    let mut found: Option<AlertEntry> = None;
    for_each_line(path, |line| {
        if !line.windows(needle.len()).any(|w| w == needle.as_bytes()) {
            return;
        }
        let Ok(r) = serde_json::from_slice::<JournalRecord>(line) else { return };
        if r.id != id {
            return;
        }
        match &mut found {
            Some(a) if r.status == "resolved" => a.resolved_at = Some(clip(r.timestamp)),
            Some(_) => {}
            None => found = Some(entry(r)),
        }
    })?;
    Ok(found)
}

/// A time from the command line or a record: RFC 3339 (`2026-01-01T02:00:00Z`), EVE's
/// `+0000` offsets, or a date or date and time read as UTC (`2026-01-01`, `2026-01-01 02:00`).
pub fn parse_time(s: &str) -> Option<Micros> {
    let s = s.trim();
    // Every accepted form is ASCII: anything else is not a time (and byte offsets below are
    // then character offsets).
    if !s.is_ascii() || s.len() > 64 {
        return None;
    }
    let mut t = s.replacen(' ', "T", 1);
    if t.len() == 10 {
        t.push_str("T00:00:00Z");
    } else if t.len() == 16 {
        t.push_str(":00Z");
    } else if t.len() >= 5 {
        let b = t.as_bytes();
        let tail = &b[b.len() - 5..];
        let zone_tail = &b[b.len().saturating_sub(6)..];
        if (tail[0] == b'+' || tail[0] == b'-') && tail[1..].iter().all(u8::is_ascii_digit) {
            t.insert(t.len() - 2, ':');
        } else if !t.ends_with(['Z', 'z']) && !zone_tail.iter().any(|c| *c == b'+' || *c == b'-') {
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
    /// The site's own networks (the sensor's `devices.networks`): public addresses inside them
    /// are not "outside the site".
    pub site: NetSet,
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
        site: NetSet,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            state.is_file(),
            "{}: no state database (run camwatch with --state, or name it with --state)",
            state.display()
        );
        let store = Store::open_read_only(state).map_err(anyhow::Error::msg)?;
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
            site,
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
        // An address or a MAC names a device outright; serial numbers and host names are what
        // devices say about themselves, so they are asked only when neither matches.
        let mut exact: Vec<&Device> =
            self.devices.iter().filter(|d| Some(d.ip) == ip || (mac.is_some() && d.mac == mac)).collect();
        if exact.is_empty() {
            exact = self
                .devices
                .iter()
                .filter(|d| attr_is(&d.identity.serial) || attr_is(&d.identity.hostname))
                .collect();
        }
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
                vulnerable: m.rule.tags.iter().any(|t| t == crate::detect::VULNERABLE_FIRMWARE_TAG),
                references: m.rule.references.clone(),
            })
            .collect();
        out.sort_by(|a, b| b.vulnerable.cmp(&a.vulnerable).then_with(|| a.rule_id.cmp(&b.rule_id)));
        out.dedup_by(|a, b| a.rule_id == b.rule_id);
        out
    }

    /// The alerts about one device, oldest first: those whose device was one of its addresses
    /// while it held it.
    pub fn alerts_of<'a>(&'a self, d: &'a Device) -> impl Iterator<Item = &'a AlertEntry> + 'a {
        let held = held(d);
        self.alerts.iter().filter(move |a| a.device.is_some_and(|ip| holds(&held, ip, a.starts)))
    }

    /// A destination outside the site: public address space, not in the site's networks.
    pub fn is_outside(&self, ip: IpAddr) -> bool {
        outside(&self.site, ip)
    }

    /// The time span the state covers: first and last seen over every device.
    pub fn span(&self) -> Option<(Micros, Micros)> {
        let first = self.devices.iter().map(|d| d.first_seen).min()?;
        let last = self.devices.iter().map(|d| d.last_seen).max()?;
        Some((first, last))
    }
}

/// The addresses a device held, each with the span it held it: its past addresses, and its
/// current one since it left the last of those (from the start when it never moved).
pub fn held(d: &Device) -> Vec<(IpAddr, Micros, Micros)> {
    let mut out: Vec<(IpAddr, Micros, Micros)> =
        d.past_addresses.iter().map(|p| (p.ip, p.first_seen, p.until)).collect();
    let since = d.past_addresses.iter().map(|p| p.until).max().unwrap_or(0);
    out.push((d.ip, since, Micros::MAX));
    out
}

/// Whether `ip` at `ts` was the device's, by [`held`].
pub fn holds(held: &[(IpAddr, Micros, Micros)], ip: IpAddr, ts: Micros) -> bool {
    held.iter().any(|(h, from, until)| *h == ip && ts >= *from && ts <= *until)
}

/// Outside the site: public address space (not private, link-local, loopback, multicast or
/// broadcast) and not in the site's own networks.
pub fn outside(site: &NetSet, ip: IpAddr) -> bool {
    DestClass::of(ip) == DestClass::External && !site.contains(ip)
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
        // Not ASCII: refused, never sliced inside a character.
        assert_eq!(parse_time("ééé"), None);
        assert_eq!(parse_time("2026-01-01T00:00:0é"), None);
        assert_eq!(parse_time("\u{1F600}\u{1F600}"), None);
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

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn an_address_is_the_devices_only_while_it_held_it() {
        let mut d = Device::new(ip("10.0.0.6"), 0);
        d.past_addresses.push(crate::analysis::device::PastAddress {
            ip: ip("10.0.0.5"),
            first_seen: 100,
            until: 200,
        });
        let h = held(&d);
        assert!(holds(&h, ip("10.0.0.5"), 150));
        assert!(!holds(&h, ip("10.0.0.5"), 250), "another device's, after it left");
        assert!(!holds(&h, ip("10.0.0.6"), 150), "another device's, before it came");
        assert!(holds(&h, ip("10.0.0.6"), 250));
        let never_moved = Device::new(ip("10.0.0.7"), 0);
        assert!(holds(&held(&never_moved), ip("10.0.0.7"), 0));
    }

    #[test]
    fn an_address_or_mac_wins_over_a_name_a_device_gave_itself() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("state.db");
        let camera = Device::new(ip("192.168.1.20"), 0);
        // A host that calls itself by the camera's address.
        let mut liar = Device::new(ip("192.168.1.99"), 0);
        liar.identity.hostname = Some(crate::model::identity::Attr {
            value: "192.168.1.20".into(),
            source: crate::model::identity::Source::Dhcp,
            first_seen: 0,
            last_seen: 0,
        });
        let mut store = Store::open(&path).unwrap_or_else(|e| panic!("{e}"));
        store.save([camera, liar].iter()).unwrap_or_else(|e| panic!("{e}"));
        let estate = Estate::load(&path, None, None, NetSet::private()).unwrap_or_else(|e| panic!("{e}"));
        let found = estate.find("192.168.1.20").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(found.ip, ip("192.168.1.20"));
        assert!(estate.find("203.0.113.1").is_err());
    }
}
