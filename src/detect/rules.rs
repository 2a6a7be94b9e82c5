//! Rules: loading and validating rules files, compiling them into matchers, and matching events.
//!
//! Files are compiled once (network and list names resolved, field names and operators checked,
//! globs, regular expressions and versions parsed) so that matching an event allocates nothing.
//! The compiled set is swapped whole on reload. `rules/README.md` documents the language.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use wildmatch::WildMatch;

use super::fields::{any_value, Devices, Field, FieldValue, Kind, Subject};
pub use super::schema::{Category, DeviceSide, EventType, RuleDef, RuleFile, Severity};
use super::schema::{Condition, ListDef, Value};
use crate::model::netset::{self, NetSet};
use crate::model::packet::{PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
use crate::model::time::Micros;
use crate::model::yaml::{parse_yaml, read_text, FileError};
use crate::proto::firmware::Version;

/// The folder beside rules files that holds their test cases.
pub const TESTS_DIR: &str = "tests";

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

/// A string pattern: exact (case-insensitive) or a glob.
#[derive(Debug, Clone)]
enum Pattern {
    Exact(String),
    Glob(WildMatch),
}

impl Pattern {
    fn new(s: &str) -> Self {
        let s = s.trim_end_matches('.');
        if s.contains(['*', '?']) {
            Pattern::Glob(WildMatch::new_case_insensitive(s))
        } else {
            Pattern::Exact(s.to_string())
        }
    }

    fn matches(&self, v: &str) -> bool {
        let v = v.strip_suffix('.').unwrap_or(v);
        match self {
            Pattern::Exact(e) => e.eq_ignore_ascii_case(v),
            Pattern::Glob(g) => g.matches(v),
        }
    }
}

fn contains_ci(hay: &str, needle: &str) -> bool {
    needle.is_empty()
        || hay.as_bytes().windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

#[derive(Debug, Clone)]
enum Test {
    Ip(NetSet),
    Num(Vec<u64>),
    Str(Vec<Pattern>),
    Regex(regex::Regex),
    Contains(Vec<String>),
    Prefix(Vec<String>),
    Suffix(Vec<String>),
    Lt(u64),
    Le(u64),
    Gt(u64),
    Ge(u64),
    /// The version compares to the bound with one of these orderings.
    Version(Version, &'static [std::cmp::Ordering]),
    VersionBetween(Version, Version),
}

impl Test {
    fn holds(&self, v: FieldValue<'_>) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match (self, v) {
            (Test::Ip(set), FieldValue::Ip(ip)) => set.contains(ip),
            (Test::Num(vs), FieldValue::Num(n)) => vs.contains(&n),
            (Test::Str(ps), FieldValue::Str(s)) => ps.iter().any(|p| p.matches(s)),
            (Test::Regex(r), FieldValue::Str(s)) => r.is_match(s),
            (Test::Contains(vs), FieldValue::Str(s)) => vs.iter().any(|v| contains_ci(s, v)),
            (Test::Prefix(vs), FieldValue::Str(s)) => {
                vs.iter().any(|v| s.get(..v.len()).is_some_and(|h| h.eq_ignore_ascii_case(v)))
            }
            (Test::Suffix(vs), FieldValue::Str(s)) => vs.iter().any(|v| {
                s.len() >= v.len() && s.get(s.len() - v.len()..).is_some_and(|t| t.eq_ignore_ascii_case(v))
            }),
            (Test::Lt(x), FieldValue::Num(n)) => n < *x,
            (Test::Le(x), FieldValue::Num(n)) => n <= *x,
            (Test::Gt(x), FieldValue::Num(n)) => n > *x,
            (Test::Ge(x), FieldValue::Num(n)) => n >= *x,
            (Test::Version(bound, ok), FieldValue::Str(s)) => {
                Version::parse(s).compare(bound).is_some_and(|o| ok.contains(&o))
            }
            (Test::VersionBetween(lo, hi), FieldValue::Str(s)) => {
                let v = Version::parse(s);
                matches!(v.compare(lo), Some(Greater | Equal)) && matches!(v.compare(hi), Some(Less | Equal))
            }
            _ => false,
        }
    }
}

/// One compiled condition: a field, a test, and whether it is negated (`ne`, `not_in`).
#[derive(Debug, Clone)]
struct Check {
    field: Field,
    test: Test,
    negate: bool,
}

impl Check {
    fn holds(&self, s: &Subject<'_>, d: &dyn Devices, device: IpAddr) -> bool {
        let any = any_value(self.field, s, d, device, &mut |v| self.test.holds(v));
        any != self.negate
    }
}

fn all_hold(checks: &[Check], s: &Subject<'_>, d: &dyn Devices, device: IpAddr) -> bool {
    checks.iter().all(|c| c.holds(s, d, device))
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
    all: Vec<Check>,
    any: Vec<Vec<Check>>,
    not: Vec<Check>,
    /// The conditions as written, for the alert's evidence.
    pub conditions: Vec<String>,
    pub suppress: Option<Suppress>,
    pub threshold: Option<Threshold>,
    pub tags: Vec<String>,
    pub file: PathBuf,
}

/// A compiled threshold.
#[derive(Debug, Clone)]
pub struct Threshold {
    pub window: Duration,
    pub key: Vec<SuppressField>,
    /// The field summed; `None` counts events.
    pub sum: Option<Field>,
    pub gt: u64,
}

/// How long an alert of a rule without `suppress` stays active after its last matching event.
pub const DEFAULT_RESOLVE_AFTER: Duration = Duration::from_secs(600);

/// What identifies an alert of a rule without `suppress`: the device and the other end.
const DEFAULT_ALERT_KEY: &[SuppressField] = &[SuppressField::Device, SuppressField::DestIp];

impl Rule {
    /// The values an alert of this rule carries: each field its conditions (and threshold) name,
    /// and for firmware, beacon and sensor events every field of theirs (the image's SHA-256,
    /// the version, the score), as the event had them. Several values make a list.
    pub fn matched_values(
        &self,
        s: &Subject<'_>,
        devices: &dyn Devices,
        device: IpAddr,
    ) -> std::collections::BTreeMap<String, serde_json::Value> {
        use super::fields::{field_name, own_fields};
        let mut fields: Vec<Field> = Vec::new();
        let named = self.all.iter().chain(self.any.iter().flatten()).chain(&self.not).map(|c| c.field);
        let extra = match self.event {
            EventType::Firmware | EventType::Beacon | EventType::Sensor => Some(own_fields(self.event)),
            _ => None,
        };
        for f in named.chain(self.threshold.as_ref().and_then(|t| t.sum)).chain(extra.into_iter().flatten()) {
            if !fields.contains(&f) {
                fields.push(f);
            }
        }
        let mut out = std::collections::BTreeMap::new();
        for f in fields {
            let mut values = Vec::new();
            any_value(f, s, devices, device, &mut |v| {
                values.push(match v {
                    FieldValue::Ip(ip) => serde_json::Value::from(ip.to_string()),
                    FieldValue::Num(n) => serde_json::Value::from(n),
                    FieldValue::Str(t) => serde_json::Value::from(t),
                });
                // At most 16 values of one field (a DNS answer list can be long).
                values.len() >= 16
            });
            let value = match values.len() {
                0 => continue,
                1 => values.remove(0),
                _ => serde_json::Value::Array(values),
            };
            out.insert(field_name(f).to_string(), value);
        }
        out
    }

    /// The fields that make two matches the same alert.
    pub fn alert_key(&self) -> &[SuppressField] {
        self.suppress.as_ref().map_or(DEFAULT_ALERT_KEY, |s| &s.key)
    }

    /// How long after its last matching event an alert of this rule is resolved.
    pub fn resolve_after(&self) -> Duration {
        self.suppress.as_ref().map_or(DEFAULT_RESOLVE_AFTER, |s| s.resolve_after)
    }

    /// What one matching event adds to the rule's threshold window.
    pub fn threshold_value(&self, s: &Subject<'_>, d: &dyn Devices, device: IpAddr) -> u64 {
        match self.threshold.as_ref().and_then(|t| t.sum) {
            None => 1,
            Some(field) => {
                let mut total = 0u64;
                any_value(field, s, d, device, &mut |v| {
                    if let FieldValue::Num(n) = v {
                        total = total.saturating_add(n);
                    }
                    false
                });
                total
            }
        }
    }

    fn holds(&self, s: &Subject<'_>, d: &dyn Devices, device: IpAddr) -> bool {
        all_hold(&self.all, s, d, device)
            && (self.any.is_empty() || self.any.iter().any(|g| all_hold(g, s, d, device)))
            && (self.not.is_empty() || !all_hold(&self.not, s, d, device))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppress {
    pub key: Vec<SuppressField>,
    pub interval: Duration,
    pub resolve_after: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SuppressField {
    Device,
    SrcIp,
    DestIp,
    DestPort,
    Proto,
    DestName,
    SensorTable,
}

const SUPPRESS_FIELDS: &[(&str, SuppressField)] = &[
    ("device", SuppressField::Device),
    ("src_ip", SuppressField::SrcIp),
    ("dest_ip", SuppressField::DestIp),
    ("dest_port", SuppressField::DestPort),
    ("proto", SuppressField::Proto),
    ("dest_name", SuppressField::DestName),
    ("sensor.table", SuppressField::SensorTable),
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
    pub lists: BTreeMap<String, Vec<String>>,
    pub files: Vec<PathBuf>,
}

/// Names resolved while compiling.
struct Names<'a> {
    networks: &'a BTreeMap<String, NetSet>,
    lists: &'a BTreeMap<String, Vec<String>>,
}

impl RuleSet {
    /// Loads rules from files and directories (every `*.yaml`/`*.yml` below a directory, in name
    /// order).
    pub fn load(paths: &[PathBuf]) -> Result<Self, FileError> {
        Self::compile(&Self::read(paths)?)
    }

    /// A fingerprint of the rules files under `paths` (names, sizes, modification times), to
    /// notice edits without reading every file.
    pub fn fingerprint(paths: &[PathBuf]) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut files = Vec::new();
        for p in paths {
            let _ = collect_files(p, &mut files);
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for f in files {
            f.hash(&mut h);
            if let Ok(m) = std::fs::metadata(&f) {
                m.len().hash(&mut h);
                m.modified().ok().hash(&mut h);
            }
        }
        h.finish()
    }

    /// The rules files under `paths`, read: `(path, text)` pairs for [`RuleSet::compile`].
    pub fn read(paths: &[PathBuf]) -> Result<Vec<(PathBuf, String)>, FileError> {
        let mut files = Vec::new();
        for p in paths {
            collect_files(p, &mut files)?;
        }
        let mut sources = Vec::new();
        for f in &files {
            let text = read_text(f)?;
            sources.push((f.clone(), text));
        }
        Ok(sources)
    }

    /// The JSON Schema of a rules file, generated from the types `serde` reads (so editors with
    /// a YAML language server validate rule files as camwatch does).
    pub fn json_schema() -> String {
        let schema = schemars::schema_for!(RuleFile);
        serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
    }

    /// Compiles already-read files: `(path, text)` pairs.
    pub fn compile(sources: &[(PathBuf, String)]) -> Result<Self, FileError> {
        let mut parsed = Vec::new();
        for (path, text) in sources {
            let file: RuleFile = parse_yaml(path, text)?;
            parsed.push((path.as_path(), text.as_str(), file));
        }
        // Networks and lists first: a name may be defined in one file and used in another.
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
        let mut lists: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (path, text, file) in &parsed {
            for (name, def) in &file.lists {
                let items = list_items(path, def).map_err(|e| {
                    let (l, c) = locate(text, &[&format!("{name}:")]);
                    FileError::at(path, l, c, format!("lists.{name}: {e}"))
                })?;
                lists.entry(name.clone()).or_default().extend(items);
            }
        }
        let names = Names { networks: &networks, lists: &lists };
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
                let rule = compile_rule(path, def, &names).map_err(|(keys, msg)| {
                    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                    let (l, c) = at(&keys);
                    FileError::at(path, l, c, format!("rules[{i}] ({}): {msg}", def.id))
                })?;
                rules.push(rule);
            }
        }
        Ok(Self { rules, networks, lists, files: sources.iter().map(|(p, _)| p.clone()).collect() })
    }

    /// Appends the rules matching `s` to `out`.
    pub fn matches<'r>(&'r self, s: &Subject<'_>, devices: &dyn Devices, out: &mut Vec<Match<'r>>) {
        // Whether each end is a device, asked once per subject rather than once per rule.
        let (mut src_dev, mut dest_dev) = (None, None);
        for rule in self.rules.iter().filter(|r| r.event == s.event) {
            let mut src = || *src_dev.get_or_insert_with(|| devices.is_device(s.src_ip));
            let mut dest = || *dest_dev.get_or_insert_with(|| devices.is_device(s.dest_ip));
            let device = match rule.device {
                // The sensor's own events are about it, not a device: the subject's source
                // (the largest holder of the table) stands in.
                _ if s.event == EventType::Sensor => Some(s.src_ip),
                DeviceSide::Src => src().then_some(s.src_ip),
                DeviceSide::Dest => dest().then_some(s.dest_ip),
                DeviceSide::Any => {
                    if src() {
                        Some(s.src_ip)
                    } else {
                        dest().then_some(s.dest_ip)
                    }
                }
            };
            let Some(device) = device else { continue };
            if rule.holds(s, devices, device) {
                out.push(Match { rule, device });
            }
        }
    }
}

/// A list's items: inline ones, then the file's lines (blank lines and `#` comments skipped).
fn list_items(rules_file: &Path, def: &ListDef) -> Result<Vec<String>, String> {
    let mut items: Vec<String> = def.items.iter().map(|s| s.trim().to_string()).collect();
    if let Some(f) = &def.file {
        let path =
            if f.is_absolute() { f.clone() } else { rules_file.parent().unwrap_or(Path::new(".")).join(f) };
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        items.extend(
            text.lines()
                .map(|l| l.split('#').next().unwrap_or("").trim())
                .filter(|l| !l.is_empty())
                .map(str::to_string),
        );
    }
    Ok(items)
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
            // `tests/` beside the packs holds their test cases, not rules.
            if e.file_name().is_some_and(|n| n == TESTS_DIR) {
                continue;
            }
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

fn compile_rule(path: &Path, def: &RuleDef, names: &Names<'_>) -> Result<Rule, CompileError> {
    let err =
        |keys: &[&str], msg: String| -> CompileError { (keys.iter().map(|s| s.to_string()).collect(), msg) };
    if def.id.trim().is_empty() || def.id.chars().any(char::is_whitespace) {
        return Err(err(&[], "id: must be non-empty and contain no spaces".into()));
    }
    let event = def.matcher.event;
    let mut conditions = Vec::new();
    let all = compile_group(event, "where", &def.matcher.conditions, names, &mut conditions)?;
    let mut any = Vec::new();
    for (i, g) in def.matcher.any.iter().enumerate() {
        any.push(compile_group(event, &format!("any[{i}]"), g, names, &mut conditions)?);
    }
    let not = match &def.matcher.not {
        Some(g) => compile_group(event, "not", g, names, &mut conditions)?,
        None => Vec::new(),
    };
    let mut all = all;
    if let Some(scope) = &def.matcher.scope {
        if !scope.networks.is_empty() {
            let set = resolve_ips(&scope.networks, names)
                .map_err(|e| err(&["scope"], format!("scope.networks: {e}")))?;
            all.push(Check { field: Field::DeviceIp, test: Test::Ip(set), negate: false });
            conditions.push(format!("device in [{}]", scope.networks.join(",")));
        }
        for (field, pats, label) in
            [(Field::DeviceVendor, &scope.vendor, "vendor"), (Field::DeviceModel, &scope.model, "model")]
        {
            if !pats.is_empty() {
                let ps = expand_strings(pats, names).iter().map(|p| Pattern::new(p)).collect();
                all.push(Check { field, test: Test::Str(ps), negate: false });
                conditions.push(format!("device.{label} in [{}]", pats.join(",")));
            }
        }
    }
    let threshold = match &def.threshold {
        None => None,
        Some(t) => {
            let key = key_fields("threshold", &t.key)?;
            let sum = match &t.sum {
                None => None,
                Some(name) => match super::fields::field(name, event) {
                    Some((f, Kind::Num)) => Some(f),
                    Some(_) => {
                        return Err(err(
                            &["threshold", name],
                            format!("threshold.sum: `{name}` is not numeric"),
                        ))
                    }
                    None => {
                        let known = super::fields::names(event);
                        return Err(err(
                            &["threshold", name],
                            format!("threshold.sum: unknown field `{name}`{}", suggest(name, &known)),
                        ));
                    }
                },
            };
            if t.window.is_zero() {
                return Err(err(&["threshold"], "threshold.window: must be longer than zero".into()));
            }
            Some(Threshold { window: t.window, key, sum, gt: t.gt })
        }
    };
    let suppress = match &def.suppress {
        None => None,
        Some(s) => {
            let key = key_fields("suppress", &s.key)?;
            if s.resolve_after.is_some_and(|r| r.is_zero()) || s.interval.is_zero() {
                return Err(err(
                    &["suppress"],
                    "suppress: interval and resolve_after must be above zero".into(),
                ));
            }
            Some(Suppress { key, interval: s.interval, resolve_after: s.resolve_after.unwrap_or(s.interval) })
        }
    };
    Ok(Rule {
        id: def.id.clone(),
        name: def.name.clone(),
        severity: def.severity,
        category: def.category,
        description: def.description.clone(),
        references: def.references.clone(),
        tags: def.tags.clone(),
        event,
        device: def.matcher.device,
        all,
        any,
        not,
        conditions,
        suppress,
        threshold,
        file: path.to_path_buf(),
    })
}

/// The key fields of `suppress.key` or `threshold.key`.
fn key_fields(section: &str, names: &[String]) -> Result<Vec<SuppressField>, CompileError> {
    names
        .iter()
        .map(|k| {
            SUPPRESS_FIELDS.iter().find(|(n, _)| n == k).map(|&(_, f)| f).ok_or_else(|| {
                let known: Vec<&str> = SUPPRESS_FIELDS.iter().map(|(n, _)| *n).collect();
                (
                    vec![section.to_string(), k.clone()],
                    format!("{section}.key: unknown field `{k}`{}", suggest(k, &known)),
                )
            })
        })
        .collect()
}

fn compile_group(
    event: EventType,
    group: &str,
    conds: &BTreeMap<String, Condition>,
    names: &Names<'_>,
    described: &mut Vec<String>,
) -> Result<Vec<Check>, CompileError> {
    let mut out = Vec::new();
    for (name, cond) in conds {
        let keys = |op: &str| vec![name.clone(), op.to_string()];
        let Some((field, kind)) = super::fields::field(name, event) else {
            let known = super::fields::names(event);
            return Err((
                vec![name.clone()],
                format!(
                    "match.{group}.{name}: unknown field for `{}` events{}",
                    event.as_str(),
                    suggest(name, &known)
                ),
            ));
        };
        let checks = compile_condition(field, kind, cond, names)
            .map_err(|(op, msg)| (keys(&op), format!("match.{group}.{name}.{op}: {msg}")))?;
        if checks.is_empty() {
            return Err((vec![name.clone()], format!("match.{group}.{name}: no operator")));
        }
        for (op, check) in checks {
            described.push(format!("{name} {op} {}", describe(cond, &op)));
            out.push(check);
        }
    }
    Ok(out)
}

fn describe(cond: &Condition, op: &str) -> String {
    let v = |v: &Value| match v {
        Value::Int(n) => n.to_string(),
        Value::Str(s) => s.clone(),
    };
    let list = |vs: &Option<Vec<Value>>| {
        vs.as_ref().map(|vs| vs.iter().map(v).collect::<Vec<_>>().join(",")).unwrap_or_default()
    };
    let many =
        |m: &Option<super::schema::OneOrMany>| m.as_ref().map(|m| m.items().join(",")).unwrap_or_default();
    let num = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
    match op {
        "eq" => cond.eq.as_ref().map(v).unwrap_or_default(),
        "ne" => cond.ne.as_ref().map(v).unwrap_or_default(),
        "in" => format!("[{}]", list(&cond.in_)),
        "not_in" => format!("[{}]", list(&cond.not_in)),
        "lt" => num(cond.lt),
        "le" => num(cond.le),
        "gt" => num(cond.gt),
        "ge" => num(cond.ge),
        "glob" => many(&cond.glob),
        "regex" => cond.regex.clone().unwrap_or_default(),
        "contains" => many(&cond.contains),
        "prefix" => many(&cond.prefix),
        "suffix" => many(&cond.suffix),
        "version_lt" => cond.version_lt.clone().unwrap_or_default(),
        "version_le" => cond.version_le.clone().unwrap_or_default(),
        "version_gt" => cond.version_gt.clone().unwrap_or_default(),
        "version_ge" => cond.version_ge.clone().unwrap_or_default(),
        "version_between" => {
            cond.version_between.as_ref().map(|[a, b]| format!("[{a},{b}]")).unwrap_or_default()
        }
        _ => String::new(),
    }
}

/// Addresses, CIDRs, network names and lists of CIDRs, as one set.
fn resolve_ips(items: &[String], names: &Names<'_>) -> Result<NetSet, String> {
    let mut set = NetSet::default();
    for s in items {
        if let Some(n) = names.networks.get(s) {
            set.extend(n);
        } else if let Some(l) = names.lists.get(s) {
            set.extend(&netset::resolve(l).map_err(|e| format!("list `{s}`: {e}"))?);
        } else {
            let one = netset::resolve(std::slice::from_ref(s)).map_err(|e| {
                let mut known: Vec<&str> = names.networks.keys().map(String::as_str).collect();
                known.extend(names.lists.keys().map(String::as_str));
                known.extend_from_slice(netset::BUILTINS);
                format!("{e}{}", suggest(s, &known))
            })?;
            set.extend(&one);
        }
    }
    Ok(set)
}

/// Strings with list names replaced by their items.
fn expand_strings(items: &[String], names: &Names<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for s in items {
        match names.lists.get(s) {
            Some(l) => out.extend(l.iter().cloned()),
            None => out.push(s.clone()),
        }
    }
    out
}

fn compile_condition(
    field: Field,
    kind: Kind,
    c: &Condition,
    names: &Names<'_>,
) -> Result<Vec<(String, Check)>, (String, String)> {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let mut out = Vec::new();
    let mut push =
        |op: &str, test: Test, negate: bool| out.push((op.to_string(), Check { field, test, negate }));
    let set_test = |op: &str, vs: &[Value]| -> Result<Test, (String, String)> {
        let strs = || -> Vec<String> {
            vs.iter()
                .map(|v| match v {
                    Value::Int(n) => n.to_string(),
                    Value::Str(s) => s.clone(),
                })
                .collect()
        };
        match kind {
            Kind::Ip => resolve_ips(&strs(), names).map(Test::Ip).map_err(|e| (op.to_string(), e)),
            Kind::Num => {
                let mut ns = Vec::new();
                for v in vs {
                    match v {
                        Value::Int(n) => ns.push(*n),
                        Value::Str(s) => match names.lists.get(s) {
                            Some(items) => {
                                for i in items {
                                    ns.push(i.parse().map_err(|_| {
                                        (op.to_string(), format!("list `{s}`: `{i}` is not a number"))
                                    })?);
                                }
                            }
                            None => return Err((op.to_string(), format!("expected a number, found `{s}`"))),
                        },
                    }
                }
                Ok(Test::Num(ns))
            }
            Kind::Str => {
                Ok(Test::Str(expand_strings(&strs(), names).iter().map(|s| Pattern::new(s)).collect()))
            }
        }
    };
    if let Some(v) = &c.eq {
        push("eq", set_test("eq", std::slice::from_ref(v))?, false);
    }
    if let Some(v) = &c.ne {
        push("ne", set_test("ne", std::slice::from_ref(v))?, true);
    }
    if let Some(vs) = &c.in_ {
        push("in", set_test("in", vs)?, false);
    }
    if let Some(vs) = &c.not_in {
        push("not_in", set_test("not_in", vs)?, true);
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
            push(op, make(n), false);
        }
    }
    let text_only = |op: &str| -> Result<(), (String, String)> {
        if kind == Kind::Str {
            Ok(())
        } else {
            Err((op.into(), "applies to text fields only".into()))
        }
    };
    if let Some(g) = &c.glob {
        text_only("glob")?;
        let pats = expand_strings(&g.items(), names);
        push(
            "glob",
            Test::Str(
                pats.iter()
                    .map(|p| Pattern::Glob(WildMatch::new_case_insensitive(p.trim_end_matches('.'))))
                    .collect(),
            ),
            false,
        );
    }
    if let Some(r) = &c.regex {
        text_only("regex")?;
        let re = regex::RegexBuilder::new(r)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| ("regex".to_string(), format!("bad regular expression: {e}")))?;
        push("regex", Test::Regex(re), false);
    }
    for (op, v, make) in [
        ("contains", &c.contains, Test::Contains as fn(Vec<String>) -> Test),
        ("prefix", &c.prefix, Test::Prefix),
        ("suffix", &c.suffix, Test::Suffix),
    ] {
        if let Some(v) = v {
            text_only(op)?;
            push(op, make(expand_strings(&v.items(), names)), false);
        }
    }
    const LT: &[std::cmp::Ordering] = &[Less];
    const LE: &[std::cmp::Ordering] = &[Less, Equal];
    const GT: &[std::cmp::Ordering] = &[Greater];
    const GE: &[std::cmp::Ordering] = &[Greater, Equal];
    for (op, v, ok) in [
        ("version_lt", &c.version_lt, LT),
        ("version_le", &c.version_le, LE),
        ("version_gt", &c.version_gt, GT),
        ("version_ge", &c.version_ge, GE),
    ] {
        if let Some(v) = v {
            text_only(op)?;
            let bound = Version::parse(v);
            if !bound.is_known() {
                return Err((op.into(), format!("`{v}` is not a version camwatch can order")));
            }
            push(op, Test::Version(bound, ok), false);
        }
    }
    if let Some([lo, hi]) = &c.version_between {
        text_only("version_between")?;
        let (l, h) = (Version::parse(lo), Version::parse(hi));
        if !l.is_known() || !h.is_known() {
            return Err(("version_between".into(), "bounds must be versions camwatch can order".into()));
        }
        push("version_between", Test::VersionBetween(l, h), false);
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

/// Hash of the key fields of an event (for suppression and thresholds).
fn key_hash(key: &[SuppressField], device: IpAddr, s: &Subject<'_>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut kh = std::collections::hash_map::DefaultHasher::new();
    for f in key {
        match f {
            SuppressField::Device => device.hash(&mut kh),
            SuppressField::SrcIp => s.src_ip.hash(&mut kh),
            SuppressField::DestIp => s.dest_ip.hash(&mut kh),
            SuppressField::DestPort => s.dest_port.hash(&mut kh),
            SuppressField::Proto => s.proto.hash(&mut kh),
            SuppressField::DestName => s.dest_name.hash(&mut kh),
            SuppressField::SensorTable => s.sensor.map(|h| h.table).hash(&mut kh),
        }
    }
    kh.finish()
}

/// Sliding windows of threshold rules: per (rule, key), the recent (time, value) entries.
#[derive(Debug, Default)]
pub struct Thresholds {
    windows: std::collections::HashMap<(u64, u64), std::collections::VecDeque<(Micros, u64)>>,
    cap: usize,
}

/// Entries kept per window; older ones are folded into the oldest kept entry.
const WINDOW_ENTRIES: usize = 1024;

impl Thresholds {
    pub fn new(cap: usize) -> Self {
        Self { windows: Default::default(), cap: cap.max(1) }
    }

    /// Adds a matching event; true when the window's total now exceeds the threshold (the
    /// window then starts afresh, so a sustained excess alerts once per window).
    pub fn add(&mut self, rule: &Rule, device: IpAddr, s: &Subject<'_>, value: u64, ts: Micros) -> bool {
        use std::hash::{Hash, Hasher};
        let Some(t) = &rule.threshold else { return true };
        let mut rh = std::collections::hash_map::DefaultHasher::new();
        rule.id.hash(&mut rh);
        let key = (rh.finish(), key_hash(&t.key, device, s));
        let window = t.window.as_micros() as u64;
        if !self.windows.contains_key(&key) && self.windows.len() >= self.cap {
            self.windows.retain(|_, w| w.back().is_some_and(|(last, _)| ts < last.saturating_add(window)));
            if self.windows.len() >= self.cap {
                return false;
            }
        }
        let w = self.windows.entry(key).or_default();
        w.push_back((ts, value));
        while w.front().is_some_and(|(t0, _)| ts >= t0.saturating_add(window)) {
            w.pop_front();
        }
        if w.len() > WINDOW_ENTRIES {
            if let (Some((_, a)), Some((_, b))) = (w.pop_front(), w.front_mut().map(|e| (0, &mut e.1))) {
                *b = b.saturating_add(a);
            }
        }
        let total = w.iter().fold(0u64, |acc, (_, v)| acc.saturating_add(*v));
        if total > t.gt {
            w.clear();
            return true;
        }
        false
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::event::FlowRecord;
    use crate::model::packet::IpPacket;

    pub(crate) fn compile(text: &str) -> Result<RuleSet, FileError> {
        RuleSet::compile(&[(PathBuf::from("t.yaml"), text.to_string())])
    }

    pub(crate) const EGRESS: &str = "\
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

    pub(crate) fn flow(src: [u8; 4], dst: [u8; 4], dport: u16) -> FlowRecord {
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
            frag: None,
            tunnel: None,
        };
        FlowRecord::open(1, &pkt, 0)
    }

    /// Private space are devices; 192.168.1.5 is a Hikvision camera running V5.4.1.
    struct Site;

    impl Devices for Site {
        fn is_device(&self, ip: IpAddr) -> bool {
            NetSet::private().contains(ip)
        }
        fn vendor(&self, ip: IpAddr) -> Option<&str> {
            (ip == IpAddr::from([192, 168, 1, 5])).then_some("Hikvision")
        }
        fn model(&self, ip: IpAddr) -> Option<&str> {
            (ip == IpAddr::from([192, 168, 1, 5])).then_some("DS-2CD2032-I")
        }
        fn firmware(&self, ip: IpAddr) -> Option<&str> {
            (ip == IpAddr::from([192, 168, 1, 5])).then_some("V5.4.1 build 160525")
        }
        fn first_seen(&self, _: IpAddr) -> Option<Micros> {
            Some(0)
        }
    }

    fn hits(rs: &RuleSet, event: EventType, f: &FlowRecord) -> Vec<String> {
        let mut out = Vec::new();
        rs.matches(&Subject::from_flow(event, f, 0, None), &Site, &mut out);
        out.iter().map(|m| format!("{}@{}", m.rule.id, m.device)).collect()
    }

    #[test]
    fn egress_matches_only_devices_reaching_outside() {
        let rs = compile(EGRESS).unwrap_or_else(|e| panic!("{e}"));
        let out = hits(&rs, EventType::FlowStart, &flow([192, 168, 1, 5], [203, 0, 113, 50], 443));
        assert_eq!(out, vec!["egress-test@192.168.1.5"]);
        for f in [
            flow([192, 168, 1, 5], [192, 168, 1, 2], 554),
            flow([192, 168, 1, 5], [239, 255, 255, 250], 1900),
            flow([198, 51, 100, 66], [192, 168, 1, 5], 80),
        ] {
            assert!(hits(&rs, EventType::FlowStart, &f).is_empty(), "{f:?}");
        }
        // Only flow_start events are looked at by this rule.
        assert!(hits(&rs, EventType::Flow, &flow([192, 168, 1, 5], [203, 0, 113, 50], 443)).is_empty());
    }

    #[test]
    fn numeric_string_and_port_conditions() {
        let text = "rules:\n  - id: r\n    name: n\n    severity: low\n    category: policy\n    match:\n      event: flow\n      device: any\n      where:\n        proto: { eq: TCP }\n        dest_port: { in: [23, 2323] }\n        bytes: { ge: 100 }\n";
        let rs = compile(text).unwrap_or_else(|e| panic!("{e}"));
        let mut f = flow([192, 168, 1, 5], [192, 168, 1, 6], 23);
        assert!(hits(&rs, EventType::Flow, &f).is_empty(), "bytes 0 < 100");
        f.bytes_toclient = 100;
        assert_eq!(hits(&rs, EventType::Flow, &f).len(), 1);
    }

    #[test]
    fn scope_versions_globs_lists_any_and_not() {
        let text = "\
lists:
  ports: { items: ['23', '2323'] }
rules:
  - id: old-hik
    name: n
    severity: high
    category: firmware
    match:
      event: flow_start
      scope: { vendor: [hik*] }
      where:
        device.firmware: { version_between: [V5.2.0, V5.4.99] }
  - id: new-hik
    name: n
    severity: high
    category: firmware
    match:
      event: flow_start
      where:
        device.firmware: { version_ge: V5.5.0 }
  - id: telnet
    name: n
    severity: high
    category: behaviour
    match:
      event: flow_start
      device: dest
      any:
        - { dest_port: { in: [ports] } }
        - { dest_port: { eq: 22 } }
      not: { src_ip: { in: [10.0.0.0/8] } }
";
        let rs = compile(text).unwrap_or_else(|e| panic!("{e}"));
        let cam_out = flow([192, 168, 1, 5], [203, 0, 113, 1], 443);
        assert_eq!(hits(&rs, EventType::FlowStart, &cam_out), vec!["old-hik@192.168.1.5"]);
        let to_cam = flow([192, 168, 1, 9], [192, 168, 1, 5], 2323);
        assert!(hits(&rs, EventType::FlowStart, &to_cam).contains(&"telnet@192.168.1.5".to_string()));
        let ssh = flow([192, 168, 1, 9], [192, 168, 1, 6], 22);
        assert_eq!(hits(&rs, EventType::FlowStart, &ssh), vec!["telnet@192.168.1.6"]);
        let from_mgmt = flow([10, 1, 1, 1], [192, 168, 1, 6], 22);
        assert!(hits(&rs, EventType::FlowStart, &from_mgmt).is_empty());
    }

    #[test]
    fn thresholds_sum_over_a_sliding_window() {
        let text = "rules:\n  - id: big\n    name: n\n    severity: high\n    category: egress\n    match:\n      event: flow\n    threshold: { window: 10m, sum: bytes_toserver, gt: 100 }\n";
        let rs = compile(text).unwrap_or_else(|e| panic!("{e}"));
        let rule = &rs.rules[0];
        let mut t = Thresholds::new(10);
        let mut f = flow([192, 168, 1, 5], [203, 0, 113, 1], 443);
        f.bytes_toserver = 60;
        let min = 60_000_000u64;
        let s = Subject::from_flow(EventType::Flow, &f, 0, None);
        let dev = f.src_ip;
        assert_eq!(rule.threshold_value(&s, &Site, dev), 60);
        assert!(!t.add(rule, dev, &s, 60, 0));
        // 11 minutes later the first 60 bytes left the window.
        assert!(!t.add(rule, dev, &s, 60, 11 * min));
        assert!(t.add(rule, dev, &s, 60, 12 * min), "120 > 100 within ten minutes");
        // The window starts afresh after firing.
        assert!(!t.add(rule, dev, &s, 60, 13 * min));
        let bad = text.replace("sum: bytes_toserver", "sum: proto");
        assert!(compile(&bad).err().is_some_and(|e| e.message.contains("not numeric")));
    }

    #[test]
    fn patterns() {
        assert!(Pattern::new("*.hik-connect.com").matches("litedev.HIK-connect.com."));
        assert!(!Pattern::new("*.hik-connect.com").matches("hik-connect.com.evil.net"));
        assert!(Pattern::new("ys7.com").matches("YS7.com"));
        assert!(contains_ci("PUT /SDK/webLanguage", "sdk/weblanguage"));
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

        let bad_regex = EGRESS.replace("dest_ip: { not_in: [allowed] }", "dest_name: { regex: '(' }");
        let e = compile(&bad_regex).err().unwrap_or_else(|| panic!("accepted"));
        assert!(e.message.contains("bad regular expression"), "{e}");

        let wrong_event = EGRESS.replace("dest_ip: { not_in: [allowed] }", "tls.sni: { eq: x }");
        let e = compile(&wrong_event).err().unwrap_or_else(|| panic!("accepted"));
        assert!(e.message.contains("unknown field for `flow_start` events"), "{e}");
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
