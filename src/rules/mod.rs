//! Rules: loading and validating rules files, compiling them into matchers, and matching events.
//!
//! Files are compiled once (network names resolved, field names and operators checked) so that
//! matching an event allocates nothing. The compiled set is swapped whole on reload.

pub mod schema;

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{parse_yaml, FileError};
use crate::decode::{PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
use crate::event::{Event, FlowRecord, Micros};
use crate::netset::{self, DestClass, NetSet};
pub use schema::{Category, DeviceSide, EventType, RuleDef, RuleFile, Severity};
use schema::{Condition, Value};

/// A field value read from an event, borrowed so matching does not allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldValue<'a> {
    Ip(IpAddr),
    Num(u64),
    Str(&'a str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ip,
    Num,
    Str,
}

/// Fields of flow events (`flow_start` and `flow`).
const FLOW_FIELDS: &[(&str, Kind)] = &[
    ("src_ip", Kind::Ip),
    ("dest_ip", Kind::Ip),
    ("src_port", Kind::Num),
    ("dest_port", Kind::Num),
    ("proto", Kind::Str),
    ("src_class", Kind::Str),
    ("dest_class", Kind::Str),
    ("vlan", Kind::Num),
    ("pkts_toserver", Kind::Num),
    ("pkts_toclient", Kind::Num),
    ("bytes_toserver", Kind::Num),
    ("bytes_toclient", Kind::Num),
    ("bytes", Kind::Num),
];

/// Lower-case protocol name used in rules (`proto: { eq: tcp }`).
pub fn proto_keyword(proto: u8) -> &'static str {
    match proto {
        PROTO_TCP => "tcp",
        PROTO_UDP => "udp",
        PROTO_ICMP => "icmp",
        PROTO_ICMPV6 => "icmpv6",
        132 => "sctp",
        _ => "other",
    }
}

fn flow_field<'a>(f: &'a FlowRecord, name: &str) -> Option<FieldValue<'a>> {
    Some(match name {
        "src_ip" => FieldValue::Ip(f.src_ip),
        "dest_ip" => FieldValue::Ip(f.dest_ip),
        "src_port" => FieldValue::Num(u64::from(f.src_port)),
        "dest_port" => FieldValue::Num(u64::from(f.dest_port)),
        "proto" => FieldValue::Str(proto_keyword(f.proto)),
        "src_class" => FieldValue::Str(DestClass::of(f.src_ip).as_str()),
        "dest_class" => FieldValue::Str(DestClass::of(f.dest_ip).as_str()),
        "vlan" => FieldValue::Num(u64::from(f.vlan?)),
        "pkts_toserver" => FieldValue::Num(f.pkts_toserver),
        "pkts_toclient" => FieldValue::Num(f.pkts_toclient),
        "bytes_toserver" => FieldValue::Num(f.bytes_toserver),
        "bytes_toclient" => FieldValue::Num(f.bytes_toclient),
        "bytes" => FieldValue::Num(f.bytes_toserver + f.bytes_toclient),
        _ => return None,
    })
}

#[derive(Debug, Clone)]
enum Test {
    IpIn(NetSet),
    IpNotIn(NetSet),
    NumIn(Vec<u64>),
    NumNotIn(Vec<u64>),
    StrIn(Vec<String>),
    StrNotIn(Vec<String>),
    Lt(u64),
    Le(u64),
    Gt(u64),
    Ge(u64),
}

impl Test {
    fn holds(&self, v: FieldValue<'_>) -> bool {
        match (self, v) {
            (Test::IpIn(set), FieldValue::Ip(ip)) => set.contains(ip),
            (Test::IpNotIn(set), FieldValue::Ip(ip)) => !set.contains(ip),
            (Test::NumIn(vs), FieldValue::Num(n)) => vs.contains(&n),
            (Test::NumNotIn(vs), FieldValue::Num(n)) => !vs.contains(&n),
            (Test::StrIn(vs), FieldValue::Str(s)) => vs.iter().any(|v| v.eq_ignore_ascii_case(s)),
            (Test::StrNotIn(vs), FieldValue::Str(s)) => !vs.iter().any(|v| v.eq_ignore_ascii_case(s)),
            (Test::Lt(x), FieldValue::Num(n)) => n < *x,
            (Test::Le(x), FieldValue::Num(n)) => n <= *x,
            (Test::Gt(x), FieldValue::Num(n)) => n > *x,
            (Test::Ge(x), FieldValue::Num(n)) => n >= *x,
            _ => false,
        }
    }
}

/// A rule ready to match.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub name: String,
    pub severity: Severity,
    pub category: Category,
    pub description: String,
    pub references: Vec<String>,
    pub event: EventType,
    pub device: DeviceSide,
    tests: Vec<(&'static str, Test)>,
    /// The conditions as written, for the alert's evidence.
    pub conditions: Vec<String>,
    pub suppress: Option<Suppress>,
    pub file: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppress {
    pub key: Vec<SuppressField>,
    pub interval: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SuppressField {
    Device,
    SrcIp,
    DestIp,
    DestPort,
    Proto,
}

const SUPPRESS_FIELDS: &[(&str, SuppressField)] = &[
    ("device", SuppressField::Device),
    ("src_ip", SuppressField::SrcIp),
    ("dest_ip", SuppressField::DestIp),
    ("dest_port", SuppressField::DestPort),
    ("proto", SuppressField::Proto),
];

/// A rule that matched an event, with the device it is about.
#[derive(Debug, Clone, Copy)]
pub struct Match<'r> {
    pub rule: &'r Rule,
    pub device: IpAddr,
}

/// The compiled rules from every file.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub networks: BTreeMap<String, NetSet>,
    pub files: Vec<PathBuf>,
}

impl RuleSet {
    /// Loads rules from files and directories (every `*.yaml`/`*.yml` below a directory, in name
    /// order).
    pub fn load(paths: &[PathBuf]) -> Result<Self, FileError> {
        let mut files = Vec::new();
        for p in paths {
            collect_files(p, &mut files)?;
        }
        let mut sources = Vec::new();
        for f in &files {
            let text =
                std::fs::read_to_string(f).map_err(|e| FileError::new(f, format!("cannot read: {e}")))?;
            sources.push((f.clone(), text));
        }
        Self::compile(&sources)
    }

    /// Compiles already-read files: `(path, text)` pairs.
    pub fn compile(sources: &[(PathBuf, String)]) -> Result<Self, FileError> {
        let mut parsed = Vec::new();
        for (path, text) in sources {
            let file: RuleFile = parse_yaml(path, text)?;
            parsed.push((path.as_path(), text.as_str(), file));
        }
        // Networks first: a name may be defined in one file and used in another.
        let mut defs: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (_, _, file) in &parsed {
            for (name, items) in &file.networks {
                defs.entry(name.clone()).or_default().extend(items.iter().cloned());
            }
        }
        let mut networks = BTreeMap::new();
        for (path, text, file) in &parsed {
            for (name, items) in &file.networks {
                let (l, c) = locate(text, &[&format!("{name}:")]);
                if NetSet::builtin(name).is_some() {
                    return Err(FileError::at(
                        path,
                        l,
                        c,
                        format!("networks.{name}: `{name}` is a built-in network name"),
                    ));
                }
                netset::resolve(&expand_refs(items, &defs))
                    .map_err(|e| FileError::at(path, l, c, format!("networks.{name}: {e}")))?;
                if !networks.contains_key(name) {
                    let all = defs.get(name).map_or(&[][..], Vec::as_slice);
                    let set = netset::resolve(&expand_refs(all, &defs))
                        .map_err(|e| FileError::at(path, l, c, format!("networks.{name}: {e}")))?;
                    networks.insert(name.clone(), set);
                }
            }
        }
        let mut rules = Vec::new();
        let mut ids = HashSet::new();
        for (path, text, file) in &parsed {
            for (i, def) in file.rules.iter().enumerate() {
                let at = |keys: &[&str]| {
                    let mut anchor = vec![def.id.as_str()];
                    anchor.extend_from_slice(keys);
                    locate(text, &anchor)
                };
                if !ids.insert(def.id.clone()) {
                    let (l, c) = at(&[]);
                    return Err(FileError::at(
                        path,
                        l,
                        c,
                        format!("rules[{i}].id: duplicate rule id `{}`", def.id),
                    ));
                }
                if !def.enabled {
                    continue;
                }
                let rule = compile_rule(path, def, &networks).map_err(|(keys, msg)| {
                    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                    let (l, c) = at(&keys);
                    FileError::at(path, l, c, format!("rules[{i}] ({}): {msg}", def.id))
                })?;
                rules.push(rule);
            }
        }
        Ok(Self { rules, networks, files: sources.iter().map(|(p, _)| p.clone()).collect() })
    }

    /// Appends the rules matching `event` to `out`. `is_device` says which addresses are devices.
    pub fn matches<'r>(
        &'r self,
        event: &Event,
        is_device: &dyn Fn(IpAddr) -> bool,
        out: &mut Vec<Match<'r>>,
    ) {
        let (ty, flow) = match event {
            Event::FlowStart(f) => (EventType::FlowStart, f),
            Event::Flow(f) => (EventType::Flow, f),
            _ => return,
        };
        for rule in self.rules.iter().filter(|r| r.event == ty) {
            let device = match rule.device {
                DeviceSide::Src => is_device(flow.src_ip).then_some(flow.src_ip),
                DeviceSide::Dest => is_device(flow.dest_ip).then_some(flow.dest_ip),
                DeviceSide::Any => {
                    if is_device(flow.src_ip) {
                        Some(flow.src_ip)
                    } else {
                        is_device(flow.dest_ip).then_some(flow.dest_ip)
                    }
                }
            };
            let Some(device) = device else { continue };
            let all =
                rule.tests.iter().all(|(field, test)| flow_field(flow, field).is_some_and(|v| test.holds(v)));
            if all {
                out.push(Match { rule, device });
            }
        }
    }
}

fn collect_files(p: &Path, out: &mut Vec<PathBuf>) -> Result<(), FileError> {
    let meta = std::fs::metadata(p).map_err(|e| FileError::new(p, format!("cannot read: {e}")))?;
    if meta.is_file() {
        out.push(p.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
        .map_err(|e| FileError::new(p, format!("cannot list: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for e in entries {
        if e.is_dir() {
            collect_files(&e, out)?;
        } else if matches!(e.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")) {
            out.push(e);
        }
    }
    Ok(())
}

/// Replaces references to other named networks by their items (one level deep is enough for
/// sets built from sets; deeper nesting is resolved by repeated definitions).
fn expand_refs(items: &[String], defs: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut out = Vec::new();
    for item in items {
        match defs.get(item) {
            Some(inner) => out.extend(inner.iter().filter(|i| !defs.contains_key(*i)).cloned()),
            None => out.push(item.clone()),
        }
    }
    out
}

type CompileError = (Vec<String>, String);

fn compile_rule(
    path: &Path,
    def: &RuleDef,
    networks: &BTreeMap<String, NetSet>,
) -> Result<Rule, CompileError> {
    let err =
        |keys: &[&str], msg: String| -> CompileError { (keys.iter().map(|s| s.to_string()).collect(), msg) };
    if def.id.trim().is_empty() || def.id.chars().any(char::is_whitespace) {
        return Err(err(&[], "id: must be non-empty and contain no spaces".into()));
    }
    let mut tests = Vec::new();
    let mut conditions = Vec::new();
    for (field, cond) in &def.matcher.conditions {
        let Some(&(name, kind)) = FLOW_FIELDS.iter().find(|(n, _)| n == field) else {
            let names: Vec<&str> = FLOW_FIELDS.iter().map(|(n, _)| *n).collect();
            return Err(err(
                &["where", field],
                format!(
                    "match.where.{field}: unknown field for `{}` events{}",
                    def.matcher.event.as_str(),
                    suggest(field, &names)
                ),
            ));
        };
        let at = |op: &str| vec!["where".to_string(), field.clone(), op.to_string()];
        let mut ops = 0;
        for (op, t) in compile_condition(kind, cond, networks)
            .map_err(|(op, msg)| (at(&op), format!("match.where.{field}.{op}: {msg}")))?
        {
            conditions.push(format!("{field} {op} {}", describe(cond, &op)));
            tests.push((name, t));
            ops += 1;
        }
        if ops == 0 {
            return Err(err(
                &["where", field],
                format!("match.where.{field}: no operator (eq, ne, in, not_in, lt, le, gt, ge)"),
            ));
        }
    }
    let suppress = match &def.suppress {
        None => None,
        Some(s) => {
            let mut key = Vec::new();
            for k in &s.key {
                let Some(&(_, f)) = SUPPRESS_FIELDS.iter().find(|(n, _)| n == k) else {
                    let names: Vec<&str> = SUPPRESS_FIELDS.iter().map(|(n, _)| *n).collect();
                    return Err(err(
                        &["suppress", k],
                        format!("suppress.key: unknown field `{k}`{}", suggest(k, &names)),
                    ));
                };
                key.push(f);
            }
            Some(Suppress { key, interval: s.interval })
        }
    };
    Ok(Rule {
        id: def.id.clone(),
        name: def.name.clone(),
        severity: def.severity,
        category: def.category,
        description: def.description.clone(),
        references: def.references.clone(),
        event: def.matcher.event,
        device: def.matcher.device,
        tests,
        conditions,
        suppress,
        file: path.to_path_buf(),
    })
}

fn describe(cond: &Condition, op: &str) -> String {
    let v = |v: &Value| match v {
        Value::Int(n) => n.to_string(),
        Value::Str(s) => s.clone(),
    };
    let list = |vs: &Option<Vec<Value>>| {
        vs.as_ref().map(|vs| vs.iter().map(v).collect::<Vec<_>>().join(",")).unwrap_or_default()
    };
    match op {
        "eq" => cond.eq.as_ref().map(v).unwrap_or_default(),
        "ne" => cond.ne.as_ref().map(v).unwrap_or_default(),
        "in" => format!("[{}]", list(&cond.in_)),
        "not_in" => format!("[{}]", list(&cond.not_in)),
        "lt" => cond.lt.map(|n| n.to_string()).unwrap_or_default(),
        "le" => cond.le.map(|n| n.to_string()).unwrap_or_default(),
        "gt" => cond.gt.map(|n| n.to_string()).unwrap_or_default(),
        "ge" => cond.ge.map(|n| n.to_string()).unwrap_or_default(),
        _ => String::new(),
    }
}

fn compile_condition(
    kind: Kind,
    c: &Condition,
    networks: &BTreeMap<String, NetSet>,
) -> Result<Vec<(String, Test)>, (String, String)> {
    let mut out = Vec::new();
    let values = |op: &str, vs: &[Value]| -> Result<Test, (String, String)> {
        let negate = op == "not_in" || op == "ne";
        match kind {
            Kind::Ip => {
                let mut set = NetSet::default();
                for v in vs {
                    let Value::Str(s) = v else {
                        return Err((op.into(), "expected an address, CIDR or network name".into()));
                    };
                    match networks.get(s) {
                        Some(n) => set.extend(n),
                        None => {
                            let one = netset::resolve(std::slice::from_ref(s)).map_err(|e| {
                                let mut names: Vec<&str> = networks.keys().map(String::as_str).collect();
                                names.extend_from_slice(netset::BUILTINS);
                                (op.to_string(), format!("{e}{}", suggest(s, &names)))
                            })?;
                            set.extend(&one);
                        }
                    }
                }
                Ok(if negate { Test::IpNotIn(set) } else { Test::IpIn(set) })
            }
            Kind::Num => {
                let mut ns = Vec::new();
                for v in vs {
                    match v {
                        Value::Int(n) => ns.push(*n),
                        Value::Str(s) => return Err((op.into(), format!("expected a number, found `{s}`"))),
                    }
                }
                Ok(if negate { Test::NumNotIn(ns) } else { Test::NumIn(ns) })
            }
            Kind::Str => {
                let ss: Vec<String> = vs
                    .iter()
                    .map(|v| match v {
                        Value::Int(n) => n.to_string(),
                        Value::Str(s) => s.to_ascii_lowercase(),
                    })
                    .collect();
                Ok(if negate { Test::StrNotIn(ss) } else { Test::StrIn(ss) })
            }
        }
    };
    if let Some(v) = &c.eq {
        out.push(("eq".into(), values("eq", std::slice::from_ref(v))?));
    }
    if let Some(v) = &c.ne {
        out.push(("ne".into(), values("ne", std::slice::from_ref(v))?));
    }
    if let Some(vs) = &c.in_ {
        out.push(("in".into(), values("in", vs)?));
    }
    if let Some(vs) = &c.not_in {
        out.push(("not_in".into(), values("not_in", vs)?));
    }
    let numeric = [
        ("lt", c.lt, Test::Lt as fn(u64) -> Test),
        ("le", c.le, Test::Le),
        ("gt", c.gt, Test::Gt),
        ("ge", c.ge, Test::Ge),
    ];
    for (op, v, make) in numeric {
        if let Some(n) = v {
            if kind != Kind::Num {
                return Err((op.into(), "only numeric fields can be compared".into()));
            }
            out.push((op.into(), make(n)));
        }
    }
    Ok(out)
}

/// ", did you mean `x`?" when a known name is close to the unknown one.
fn suggest(unknown: &str, known: &[&str]) -> String {
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(unknown, k), *k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| format!(", did you mean `{k}`?"))
        .unwrap_or_default()
}

/// Finds the line and column of a key path in YAML text: each key is searched for after the
/// previous one (as `key:` or as a value), so the first item anchors the search (a rule's id).
fn locate(text: &str, keys: &[&str]) -> (usize, usize) {
    let mut from = 0;
    let mut found = (1, 1);
    for key in keys {
        let Some(rel) = text.get(from..).and_then(|rest| rest.find(key)) else { break };
        let pos = from + rel;
        let line_start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
        found = (text[..pos].matches('\n').count() + 1, text[line_start..pos].chars().count() + 1);
        from = pos + key.len();
    }
    found
}

/// Suppression state: when each (rule, key) last raised an alert.
#[derive(Debug, Default)]
pub struct Suppressor {
    last: std::collections::HashMap<(u64, u64), Micros>,
    cap: usize,
}

impl Suppressor {
    pub fn new(cap: usize) -> Self {
        Self { last: Default::default(), cap: cap.max(1) }
    }

    /// True when the alert should be raised; records it. Suppression keys are remembered for
    /// their interval; past the cap, expired keys are dropped first, then the oldest.
    pub fn admit(&mut self, rule: &Rule, device: IpAddr, flow: &FlowRecord, ts: Micros) -> bool {
        use std::hash::{Hash, Hasher};
        let Some(s) = &rule.suppress else { return true };
        let mut rh = std::collections::hash_map::DefaultHasher::new();
        rule.id.hash(&mut rh);
        let mut kh = std::collections::hash_map::DefaultHasher::new();
        for f in &s.key {
            match f {
                SuppressField::Device => device.hash(&mut kh),
                SuppressField::SrcIp => flow.src_ip.hash(&mut kh),
                SuppressField::DestIp => flow.dest_ip.hash(&mut kh),
                SuppressField::DestPort => flow.dest_port.hash(&mut kh),
                SuppressField::Proto => flow.proto.hash(&mut kh),
            }
        }
        let key = (rh.finish(), kh.finish());
        let interval = s.interval.as_micros() as u64;
        if let Some(&last) = self.last.get(&key) {
            if ts < last.saturating_add(interval) {
                return false;
            }
        }
        if self.last.len() >= self.cap {
            self.last.retain(|_, &mut t| ts < t.saturating_add(interval));
            if self.last.len() >= self.cap {
                if let Some(oldest) = self.last.iter().min_by_key(|(_, t)| **t).map(|(k, _)| *k) {
                    self.last.remove(&oldest);
                }
            }
        }
        self.last.insert(key, ts);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::IpPacket;

    fn compile(text: &str) -> Result<RuleSet, FileError> {
        RuleSet::compile(&[(PathBuf::from("t.yaml"), text.to_string())])
    }

    const EGRESS: &str = "\
networks:
  allowed: [private, multicast, broadcast]
rules:
  - id: egress-test
    name: Egress
    severity: high
    category: egress
    match:
      event: flow_start
      where:
        dest_ip: { not_in: [allowed] }
    suppress:
      key: [device, dest_ip]
      interval: 1h
";

    fn flow(src: [u8; 4], dst: [u8; 4], dport: u16) -> FlowRecord {
        let pkt = IpPacket {
            src_mac: None,
            dst_mac: None,
            vlan: None,
            src_ip: IpAddr::from(src),
            dst_ip: IpAddr::from(dst),
            proto: PROTO_TCP,
            src_port: 40000,
            dst_port: dport,
            tcp_flags: 2,
            tcp_seq: 0,
            ip_len: 60,
            payload: &[],
            fragment: false,
        };
        FlowRecord::open(1, &pkt, 0)
    }

    fn private(ip: IpAddr) -> bool {
        NetSet::private().contains(ip)
    }

    #[test]
    fn egress_matches_only_devices_reaching_outside() {
        let rs = compile(EGRESS).unwrap_or_else(|e| panic!("{e}"));
        let mut out = Vec::new();
        rs.matches(&Event::FlowStart(flow([192, 168, 1, 5], [203, 0, 113, 50], 443)), &private, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].device, IpAddr::from([192, 168, 1, 5]));
        out.clear();
        for f in [
            flow([192, 168, 1, 5], [192, 168, 1, 2], 554),
            flow([192, 168, 1, 5], [239, 255, 255, 250], 1900),
            flow([198, 51, 100, 66], [192, 168, 1, 5], 80),
        ] {
            rs.matches(&Event::FlowStart(f), &private, &mut out);
        }
        assert!(out.is_empty(), "{out:?}");
        // Only flow_start events are looked at by this rule.
        rs.matches(&Event::Flow(flow([192, 168, 1, 5], [203, 0, 113, 50], 443)), &private, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn suppression_per_device_and_destination() {
        let rs = compile(EGRESS).unwrap_or_else(|e| panic!("{e}"));
        let rule = &rs.rules[0];
        let mut s = Suppressor::new(100);
        let f = flow([192, 168, 1, 5], [203, 0, 113, 50], 443);
        let g = flow([192, 168, 1, 5], [203, 0, 113, 51], 443);
        let dev = f.src_ip;
        let hour = 3_600_000_000;
        assert!(s.admit(rule, dev, &f, 0));
        assert!(!s.admit(rule, dev, &f, hour - 1));
        assert!(s.admit(rule, dev, &g, 10));
        assert!(s.admit(rule, dev, &f, hour));
    }

    #[test]
    fn numeric_string_and_port_conditions() {
        let text = "rules:\n  - id: r\n    name: n\n    severity: low\n    category: policy\n    match:\n      event: flow\n      device: any\n      where:\n        proto: { eq: TCP }\n        dest_port: { in: [23, 2323] }\n        bytes: { ge: 100 }\n";
        let rs = compile(text).unwrap_or_else(|e| panic!("{e}"));
        let mut f = flow([192, 168, 1, 5], [192, 168, 1, 6], 23);
        let mut out = Vec::new();
        rs.matches(&Event::Flow(f.clone()), &private, &mut out);
        assert!(out.is_empty(), "bytes 0 < 100");
        f.bytes_toclient = 100;
        rs.matches(&Event::Flow(f), &private, &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn errors_name_line_column_and_field() {
        let bad_field = EGRESS.replace("dest_ip: { not_in", "dst_ip: { not_in");
        let e = compile(&bad_field).err().unwrap_or_else(|| panic!("accepted"));
        assert_eq!((e.line, e.column), (Some(11), Some(9)), "{e}");
        assert!(e.message.contains("did you mean `dest_ip`"), "{e}");

        let bad_net = EGRESS.replace("[allowed]", "[alowed]");
        let e = compile(&bad_net).err().unwrap_or_else(|| panic!("accepted"));
        assert_eq!(e.line, Some(11), "{e}");
        assert!(e.message.contains("did you mean `allowed`"), "{e}");

        let unknown_key = EGRESS.replace("    severity: high", "    severity: high\n    sevrity: low");
        let e = compile(&unknown_key).err().unwrap_or_else(|| panic!("accepted"));
        assert!(e.message.contains("unknown field `sevrity`"), "{e}");
        assert_eq!(e.line, Some(7), "{e}");

        let syntax = EGRESS.replace("  - id: egress-test", "  - id: [egress-test");
        let e = compile(&syntax).err().unwrap_or_else(|| panic!("accepted"));
        assert!(e.line.is_some() && e.column.is_some(), "{e}");

        let dup = format!("{EGRESS}{}", &EGRESS[EGRESS.find("  - id").unwrap_or(0)..]);
        let e = compile(&dup).err().unwrap_or_else(|| panic!("accepted"));
        assert!(e.message.contains("duplicate rule id"), "{e}");
    }

    #[test]
    fn networks_merge_across_files_and_can_reference_each_other() {
        let a =
            (PathBuf::from("a.yaml"), "networks:\n  nvrs: [192.168.1.2]\n  allowed: [private]\n".to_string());
        let b = (PathBuf::from("b.yaml"), "networks:\n  allowed: [198.51.100.0/24, nvrs]\n".to_string());
        let rs = RuleSet::compile(&[a, b]).unwrap_or_else(|e| panic!("{e}"));
        let allowed = &rs.networks["allowed"];
        assert!(allowed.contains(IpAddr::from([10, 1, 1, 1])));
        assert!(allowed.contains(IpAddr::from([198, 51, 100, 9])));
        assert!(allowed.contains(IpAddr::from([192, 168, 1, 2])));
    }
}
