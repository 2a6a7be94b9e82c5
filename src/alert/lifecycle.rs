//! The alert record (DESIGN.md's shape: one JSON object per line in the journal, and the element
//! of webhook bodies).

use crate::model::FastMap as HashMap;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::analysis::device::Device;
use crate::detect::fields::Subject;
use crate::detect::{Rule, SuppressField};
use crate::model::event::{format_mac, proto_name};
use crate::model::time::{parse_rfc3339, rfc3339, Micros};

/// Whether an alert is raised or over. A resolved record repeats the firing one (same `id` and
/// `fingerprint`) with `status: resolved` and `ends_at`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Firing,
    Resolved,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Alert {
    /// Unique per raised alert (the evidence file is named after it).
    pub id: String,
    /// Identity of the condition: the rule and its key. Records with the same fingerprint are the
    /// same alert; sinks such as Alertmanager merge on it.
    pub fingerprint: String,
    pub status: Status,
    /// When this record was written, in packet time: the firing time, or when the alert was
    /// found resolved.
    pub timestamp: String,
    /// When the condition was first seen.
    pub starts_at: String,
    /// The last time the condition was seen (resolved records only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
    pub rule: AlertRule,
    pub category: String,
    pub summary: String,
    /// The rule's key fields and their values, e.g. `device=10.0.0.5 dest_ip=203.0.113.9`.
    pub key: String,
    pub device: AlertDevice,
    pub src_ip: IpAddr,
    pub src_port: u16,
    pub dest_ip: IpAddr,
    pub dest_port: u16,
    pub proto: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest_name: Option<String>,
    pub community_id: String,
    pub flow_id: u64,
    pub evidence: Evidence,
    pub sensor: String,
    /// A storm alert (see [`crate::alert::storm`]): the alerts of its rule about its device
    /// aggregated into it while the storm lasted, and a few of their peers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregate: Option<Aggregate>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Aggregate {
    /// Alerts aggregated so far (the final count is in the resolved record).
    pub count: u64,
    /// Peers (address:port) of the first alerts aggregated.
    pub examples: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AlertRule {
    pub id: String,
    pub name: String,
    pub severity: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AlertDevice {
    pub ip: IpAddr,
    pub mac: Option<String>,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub firmware: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Evidence {
    /// The event type the rule matched.
    pub event_type: String,
    /// The rule's conditions that held, as written.
    pub matched: Vec<String>,
    /// The values the event had for the fields the rule looks at (hashes, versions, names, byte
    /// counts), by field name.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub values: std::collections::BTreeMap<String, serde_json::Value>,
    /// Path of the evidence capture of the flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcap: Option<String>,
    /// SHA-256 of the evidence capture as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Packets in the evidence capture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packets: Option<u64>,
}

/// FNV-1a, 64 bits: a hash whose value is fixed by the bytes alone, so fingerprints written to
/// the journal mean the same after a restart or an upgrade (std's hasher promises neither).
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_ip(&mut self, ip: IpAddr) {
        match ip {
            IpAddr::V4(a) => self.write(&a.octets()),
            IpAddr::V6(a) => self.write(&a.octets()),
        }
    }
}

/// The alert identity of a match: the fingerprint of (rule, key values), without allocating.
pub fn fingerprint(rule: &Rule, device: IpAddr, s: &Subject<'_>) -> u64 {
    let mut h = Fnv::new();
    h.write(rule.id.as_bytes());
    for f in rule.alert_key() {
        h.write(&[0xff, *f as u8]);
        match f {
            SuppressField::Device => h.write_ip(device),
            SuppressField::SrcIp => h.write_ip(s.src_ip),
            SuppressField::DestIp => h.write_ip(s.dest_ip),
            SuppressField::DestPort => h.write(&s.dest_port.to_be_bytes()),
            SuppressField::Proto => h.write(&[s.proto]),
            SuppressField::DestName => h.write(s.dest_name.unwrap_or_default().as_bytes()),
            SuppressField::SensorTable => h.write(s.sensor.map_or("", |x| x.table).as_bytes()),
        }
    }
    h.0
}

/// The identity of a rule's storm alert about a device: one per rule and device.
pub fn storm_fingerprint(rule: &Rule, device: IpAddr) -> u64 {
    let mut h = Fnv::new();
    h.write(rule.id.as_bytes());
    h.write(&[0xfe]);
    h.write_ip(device);
    h.0
}

/// A stable hash of a rule's id, the rule's key in storm control.
pub fn rule_key(rule: &Rule) -> u64 {
    let mut h = Fnv::new();
    h.write(rule.id.as_bytes());
    h.0
}

/// The key as text, e.g. `device=10.0.0.5 dest_ip=203.0.113.9`.
fn key_text(rule: &Rule, device: IpAddr, s: &Subject<'_>) -> String {
    let mut out = String::new();
    for f in rule.alert_key() {
        if !out.is_empty() {
            out.push(' ');
        }
        let _ = match f {
            SuppressField::Device => write!(out, "device={device}"),
            SuppressField::SrcIp => write!(out, "src_ip={}", s.src_ip),
            SuppressField::DestIp => write!(out, "dest_ip={}", s.dest_ip),
            SuppressField::DestPort => write!(out, "dest_port={}", s.dest_port),
            SuppressField::Proto => write!(out, "proto={}", proto_name(s.proto)),
            SuppressField::DestName => write!(out, "dest_name={}", s.dest_name.unwrap_or("-")),
            SuppressField::SensorTable => write!(out, "sensor.table={}", s.sensor.map_or("-", |x| x.table)),
        };
    }
    out
}

impl Alert {
    pub fn new(
        rule: &Rule,
        device_ip: IpAddr,
        device: Option<&Device>,
        subject: &Subject<'_>,
        fingerprint: u64,
        sensor: &str,
    ) -> Self {
        let ts = subject.ts;
        let mut id = Fnv::new();
        id.write(&fingerprint.to_be_bytes());
        id.write(&ts.to_be_bytes());
        id.write(&subject.flow_id.to_be_bytes());
        let vendor = device.and_then(|d| d.vendor()).map(str::to_string);
        let who = match &vendor {
            Some(v) => format!("{device_ip} ({v})"),
            None => device_ip.to_string(),
        };
        let proto = if subject.proto == 0 { String::new() } else { proto_name(subject.proto) };
        let dest_name = subject.dest_name.map(str::to_string);
        let path = if let Some(h) = subject.sensor {
            let top: Vec<String> = h.top.iter().map(|(ip, n)| format!("{ip} ({n})")).collect();
            let top =
                if top.is_empty() { String::new() } else { format!("; largest holders {}", top.join(", ")) };
            format!(
                "{} table evicting for {} minute{} ({} in the last){top}",
                h.table,
                h.minutes,
                if h.minutes == 1 { "" } else { "s" },
                h.evicted
            )
        } else if subject.src_ip == subject.dest_ip {
            who.clone()
        } else if subject.src_ip == device_ip {
            let name = dest_name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
            format!("{who} → {}:{}/{proto}{name}", subject.dest_ip, subject.dest_port)
        } else {
            format!("{}:{}/{proto} → {who}", subject.src_ip, subject.src_port)
        };
        Self {
            id: format!("{:016x}", id.0),
            fingerprint: format!("{fingerprint:016x}"),
            status: Status::Firing,
            timestamp: rfc3339(ts),
            starts_at: rfc3339(ts),
            ends_at: None,
            rule: AlertRule {
                id: rule.id.clone(),
                name: rule.name.clone(),
                severity: rule.severity.as_str().to_string(),
                description: rule.description.clone(),
                references: rule.references.clone(),
            },
            category: rule.category.as_str().to_string(),
            summary: format!("{}: {path}", rule.name),
            key: key_text(rule, device_ip, subject),
            device: AlertDevice {
                ip: device_ip,
                mac: device.and_then(|d| d.mac).map(format_mac),
                vendor,
                model: device.and_then(|d| d.model()).map(str::to_string),
                firmware: device.and_then(|d| d.firmware_version()).map(str::to_string),
            },
            src_ip: subject.src_ip,
            src_port: subject.src_port,
            dest_ip: subject.dest_ip,
            dest_port: subject.dest_port,
            proto,
            dest_name,
            community_id: subject.community_id.to_string(),
            flow_id: subject.flow_id,
            evidence: Evidence {
                event_type: rule.event.as_str().to_string(),
                matched: rule.conditions.clone(),
                values: std::collections::BTreeMap::new(),
                pcap: None,
                sha256: None,
                packets: None,
            },
            sensor: sensor.to_string(),
            aggregate: None,
        }
    }

    /// Makes this the storm alert of its rule about its device, holding its first aggregated
    /// alert (`example`, the peer).
    pub fn into_storm(mut self, example: String, per_device: usize, window: std::time::Duration) -> Self {
        let device = self.device.ip;
        self.key = format!("device={device} storm");
        self.summary = format!(
            "{}: {device} raised more than {per_device} alerts within {}; further ones are aggregated here",
            self.rule.name,
            humantime_serde::re::humantime::format_duration(window)
        );
        self.aggregate = Some(Aggregate { count: 1, examples: vec![example] });
        self
    }
}

/// An alert that is firing: the record raised, and when its condition was last seen.
#[derive(Debug)]
struct Active {
    alert: Alert,
    last: Micros,
    resolve_after: Micros,
}

/// The alerts that are firing. A match whose fingerprint is active refreshes it instead of
/// raising it again; an alert whose condition has not been seen for its rule's `resolve_after`
/// (packet time) is resolved. Bounded: past the cap the alert closest to resolving is forgotten
/// (counted, not resolved: nothing saw its condition end).
#[derive(Debug)]
pub struct Lifecycle {
    active: HashMap<u64, Active>,
    /// (resolve time, fingerprint), the order alerts resolve in.
    deadlines: BTreeSet<(Micros, u64)>,
    cap: usize,
    pub forgotten: u64,
    /// Alerts taken up from a journal wait for the first packet time of this run (see `rebase`).
    restored: bool,
}

/// What a match means for its alert.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    /// No alert of this fingerprint is active: raise one.
    Raise(u64),
    /// The alert is active; the match keeps it so.
    Ongoing,
}

impl Lifecycle {
    pub fn new(cap: usize) -> Self {
        Self {
            active: HashMap::default(),
            deadlines: BTreeSet::new(),
            cap: cap.max(1),
            forgotten: 0,
            restored: false,
        }
    }

    pub fn len(&self) -> usize {
        self.active.len()
    }

    pub fn is_empty(&self) -> bool {
        self.active.is_empty()
    }

    /// The firing alerts.
    pub fn active(&self) -> impl Iterator<Item = &Alert> {
        self.active.values().map(|a| &a.alert)
    }

    /// A rule matched, its condition seen at `seen`: is this a new alert or an active one seen
    /// again?
    pub fn admit(&mut self, rule: &Rule, device: IpAddr, s: &Subject<'_>, seen: Micros) -> Admit {
        let fp = fingerprint(rule, device, s);
        match self.active.get_mut(&fp) {
            Some(a) => {
                if seen > a.last {
                    self.deadlines.remove(&(a.last.saturating_add(a.resolve_after), fp));
                    a.last = seen;
                    self.deadlines.insert((a.last.saturating_add(a.resolve_after), fp));
                }
                Admit::Ongoing
            }
            None => Admit::Raise(fp),
        }
    }

    /// Adds one alert to the firing storm alert `fingerprint`, seen at `seen`; false when that
    /// alert is not firing (it resolved, or was forgotten), so a new one must be raised.
    pub fn aggregate(&mut self, fingerprint: u64, seen: Micros, example: String) -> bool {
        let Some(a) = self.active.get_mut(&fingerprint) else { return false };
        if seen > a.last {
            self.deadlines.remove(&(a.last.saturating_add(a.resolve_after), fingerprint));
            a.last = seen;
            self.deadlines.insert((a.last.saturating_add(a.resolve_after), fingerprint));
        }
        if let Some(agg) = &mut a.alert.aggregate {
            agg.count += 1;
            if agg.examples.len() < crate::alert::storm::STORM_EXAMPLES && !agg.examples.contains(&example) {
                agg.examples.push(example);
            }
        }
        true
    }

    /// Whether alerts taken up from a journal still wait for this run's first packet time.
    pub fn rebase_due(&self) -> bool {
        self.restored
    }

    /// Counts alerts taken up from a journal as seen at `now`, this run's first packet time: the
    /// sensor was not watching while it was down, so their `resolve_after` starts again here.
    pub fn rebase(&mut self, now: Micros) {
        self.restored = false;
        let stale: Vec<(u64, Micros, Micros)> = self
            .active
            .iter()
            .filter(|(_, a)| a.last < now)
            .map(|(fp, a)| (*fp, a.last, a.resolve_after))
            .collect();
        for (fp, last, after) in stale {
            self.deadlines.remove(&(last.saturating_add(after), fp));
            self.deadlines.insert((now.saturating_add(after), fp));
            if let Some(a) = self.active.get_mut(&fp) {
                a.last = now;
            }
        }
    }

    /// Records an alert just raised (or restored) as firing, last seen at `last`. Returns the
    /// alerts the cap made it forget.
    pub fn fire(
        &mut self,
        alert: Alert,
        fingerprint: u64,
        last: Micros,
        resolve_after: std::time::Duration,
    ) -> Vec<Alert> {
        let mut forgotten = Vec::new();
        if let Some(old) = self.active.remove(&fingerprint) {
            self.deadlines.remove(&(old.last.saturating_add(old.resolve_after), fingerprint));
        }
        while self.active.len() >= self.cap {
            let Some(&(t, fp)) = self.deadlines.iter().next() else { break };
            self.deadlines.remove(&(t, fp));
            if let Some(a) = self.active.remove(&fp) {
                forgotten.push(a.alert);
            }
            self.forgotten += 1;
        }
        let resolve_after = u64::try_from(resolve_after.as_micros()).unwrap_or(u64::MAX);
        self.deadlines.insert((last.saturating_add(resolve_after), fingerprint));
        self.active.insert(fingerprint, Active { alert, last, resolve_after });
        forgotten
    }

    /// Resolves the alerts whose condition has not been seen for their `resolve_after` by `now`,
    /// returning their resolved records.
    pub fn expire(&mut self, now: Micros, out: &mut Vec<Alert>) {
        while let Some(&(t, fp)) = self.deadlines.iter().next() {
            if t > now {
                break;
            }
            self.deadlines.remove(&(t, fp));
            if let Some(a) = self.active.remove(&fp) {
                let mut alert = a.alert;
                alert.status = Status::Resolved;
                alert.timestamp = rfc3339(t);
                alert.ends_at = Some(rfc3339(a.last));
                out.push(alert);
            }
        }
    }

    /// Takes up the alerts a journal left firing (raised and not resolved), so a restarted sensor
    /// resolves them when their condition is over instead of leaving them firing for ever.
    /// Lines that do not parse are skipped; returns how many alerts are firing afterwards.
    pub fn restore(
        &mut self,
        journal: &Path,
        resolve_after: impl Fn(&str) -> Option<std::time::Duration>,
    ) -> usize {
        use std::io::BufRead as _;
        let Ok(f) = std::fs::File::open(journal) else { return 0 };
        let mut firing: HashMap<u64, Alert> = HashMap::default();
        // Byte lines, not `lines()`: a record torn by a crash (maybe inside a UTF-8 character)
        // is skipped, and the records after it still count.
        for line in std::io::BufReader::new(f).split(b'\n') {
            let Ok(line) = line else { break };
            let Ok(alert) = serde_json::from_slice::<Alert>(&line) else { continue };
            let Ok(fp) = u64::from_str_radix(&alert.fingerprint, 16) else { continue };
            match alert.status {
                Status::Firing => {
                    firing.insert(fp, alert);
                }
                Status::Resolved => {
                    firing.remove(&fp);
                }
            }
        }
        for (fp, alert) in firing {
            // Rules removed since are resolved by the default.
            let after = resolve_after(&alert.rule.id).unwrap_or(crate::detect::DEFAULT_RESOLVE_AFTER);
            let last = parse_rfc3339(&alert.timestamp).unwrap_or(0);
            self.fire(alert, fp, last, after);
            self.restored = true;
        }
        self.active.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::fields::EventType;
    use crate::detect::tests::{compile, flow, EGRESS};

    const HOUR: Micros = 3_600_000_000;

    #[test]
    fn a_continuing_condition_stays_one_alert_and_resolves_after_it_ends() {
        let rs = compile(EGRESS).unwrap_or_else(|e| panic!("{e}"));
        let rule = &rs.rules[0];
        assert_eq!(rule.resolve_after(), std::time::Duration::from_secs(3600));
        let f = flow([192, 168, 1, 5], [203, 0, 113, 50], 443);
        let g = flow([192, 168, 1, 5], [203, 0, 113, 51], 443);
        let dev = f.src_ip;
        let mut life = Lifecycle::new(10);
        let at = |rec, ts| Subject::from_flow(EventType::FlowStart, rec, ts, None);

        let Admit::Raise(fp) = life.admit(rule, dev, &at(&f, 0), 0) else { panic!("not raised") };
        let alert = Alert::new(rule, dev, None, &at(&f, 0), fp, "s");
        assert_eq!(alert.key, "device=192.168.1.5 dest_ip=203.0.113.50");
        assert_eq!(alert.status, Status::Firing);
        assert!(life.fire(alert.clone(), fp, 0, rule.resolve_after()).is_empty());
        // The same key half an hour later keeps the alert; another destination is its own alert.
        assert_eq!(life.admit(rule, dev, &at(&f, HOUR / 2), HOUR / 2), Admit::Ongoing);
        assert!(
            matches!(life.admit(rule, dev, &at(&g, HOUR / 2), HOUR / 2), Admit::Raise(other) if other != fp)
        );
        let mut out = Vec::new();
        life.expire(HOUR, &mut out);
        assert!(out.is_empty(), "seen at half past, so not over at the hour: {out:?}");
        life.expire(HOUR / 2 + HOUR, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].status, Status::Resolved);
        assert_eq!(out[0].id, alert.id);
        assert_eq!(out[0].fingerprint, alert.fingerprint);
        assert_eq!(out[0].ends_at.as_deref(), Some(rfc3339(HOUR / 2).as_str()));
        assert!(life.is_empty());
        // Once resolved, the condition raises a new alert with a new id.
        let Admit::Raise(again) = life.admit(rule, dev, &at(&f, 2 * HOUR), 2 * HOUR) else {
            panic!("not raised")
        };
        assert_eq!(again, fp);
        assert_ne!(Alert::new(rule, dev, None, &at(&f, 2 * HOUR), again, "s").id, alert.id);
    }

    #[test]
    fn fingerprints_are_stable_values() {
        // Written to journals and read back after restarts and upgrades: the value must not move.
        // Checked against FNV-1a computed by hand over "egress-test", 0xff, 0, 192.168.1.5, 0xff, 2,
        // 203.0.113.50.
        let rs = compile(EGRESS).unwrap_or_else(|e| panic!("{e}"));
        let f = flow([192, 168, 1, 5], [203, 0, 113, 50], 443);
        let s = Subject::from_flow(EventType::FlowStart, &f, 0, None);
        assert_eq!(format!("{:016x}", fingerprint(&rs.rules[0], f.src_ip, &s)), "8884b7afbfb33a05");
    }

    #[test]
    fn the_cap_forgets_the_alert_closest_to_resolving() {
        let rs = compile(EGRESS).unwrap_or_else(|e| panic!("{e}"));
        let rule = &rs.rules[0];
        let mut life = Lifecycle::new(2);
        let mut forgotten = Vec::new();
        for (i, last) in [(50u8, 10), (51, 5), (52, 20)] {
            let f = flow([192, 168, 1, 5], [203, 0, 113, i], 443);
            let s = Subject::from_flow(EventType::FlowStart, &f, last, None);
            let Admit::Raise(fp) = life.admit(rule, f.src_ip, &s, last) else { panic!("not raised") };
            forgotten.extend(life.fire(
                Alert::new(rule, f.src_ip, None, &s, fp, "s"),
                fp,
                last,
                rule.resolve_after(),
            ));
        }
        assert_eq!((life.len(), life.forgotten), (2, 1));
        assert_eq!(forgotten.iter().map(|a| a.dest_ip.to_string()).collect::<Vec<_>>(), ["203.0.113.51"]);
        let kept: BTreeSet<String> = life.active().map(|a| a.dest_ip.to_string()).collect();
        assert_eq!(kept, BTreeSet::from(["203.0.113.50".to_string(), "203.0.113.52".to_string()]));
    }

    #[test]
    fn firing_alerts_are_taken_up_from_a_journal() {
        let rs = compile(EGRESS).unwrap_or_else(|e| panic!("{e}"));
        let rule = &rs.rules[0];
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("alerts.jsonl");
        // Firing 50, firing 51, a line that is not JSON, a record torn by a crash inside a
        // multi-byte character, then 51 resolved: 51's resolution is still read.
        let mut bytes = Vec::new();
        let mut expect = None;
        let mut resolved = None;
        for (i, ts) in [(50u8, HOUR), (51, HOUR)] {
            let f = flow([192, 168, 1, 5], [203, 0, 113, i], 443);
            let s = Subject::from_flow(EventType::FlowStart, &f, ts, None);
            let fp = fingerprint(rule, f.src_ip, &s);
            let mut a = Alert::new(rule, f.src_ip, None, &s, fp, "s");
            bytes.extend(serde_json::to_vec(&a).unwrap_or_default());
            bytes.push(b'\n');
            if i == 51 {
                a.status = Status::Resolved;
                resolved = Some(a);
            } else {
                expect = Some(a);
            }
        }
        bytes.extend_from_slice(b"{not json\n");
        let torn = "{\"summary\":\"a → b";
        bytes.extend_from_slice(&torn.as_bytes()[..torn.find('→').unwrap_or(0) + 1]);
        bytes.push(b'\n');
        bytes.extend(serde_json::to_vec(&resolved).unwrap_or_default());
        bytes.push(b'\n');
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{e}"));
        let mut life = Lifecycle::new(10);
        assert_eq!(life.restore(&path, |_| Some(rule.resolve_after())), 1);
        let expect = expect.unwrap_or_else(|| panic!("no alert"));
        assert_eq!(life.active().next(), Some(&expect));
        let mut out = Vec::new();
        life.expire(2 * HOUR - 1, &mut out);
        assert!(out.is_empty());
        // The sensor comes back ten hours later: the hour counts from then, not from the record.
        assert!(life.rebase_due());
        life.rebase(10 * HOUR);
        assert!(!life.rebase_due());
        life.expire(11 * HOUR - 1, &mut out);
        assert!(out.is_empty(), "{out:?}");
        life.expire(11 * HOUR, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(parse_rfc3339(&out[0].timestamp), Some(11 * HOUR));
    }
}
