//! `camwatch investigate`: one device's timeline, ordered by time, from the state database (first
//! seen, identity, firmware history, past addresses, destinations with first and last contact
//! and bytes, services), the event log (identity and address changes, firmware events and
//! transfers, the device's application events) and the alert journal (alerts with their
//! evidence pcaps). `--export DIR` writes the hand-over bundle: the timeline as JSON, HTML and
//! text, the evidence pcaps (each checked against the SHA-256 the alert recorded) and a
//! `SHA256SUMS` manifest that `sha256sum -c` verifies.

use std::collections::{BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::analysis::device::Device;
use crate::model::event::format_mac;
use crate::model::time::{rfc3339, Micros};
use crate::review::estate::{parse_time, vendor_of, AlertEntry, Estate};
use crate::review::html::{self, badge, bytes, esc, when};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Html,
}

/// Event log items a timeline holds by default (the newest); older ones are counted
/// (`truncated`). Items from the state database and the journal are always all there.
pub const DEFAULT_MAX_ITEMS: usize = 10_000;

/// What to put in a timeline.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub since: Option<Micros>,
    pub until: Option<Micros>,
    /// Event logs to read (rotated files too), oldest first.
    pub events: Vec<PathBuf>,
    /// Include flow records from the event log (many: off unless asked).
    pub flows: bool,
    pub max_items: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    pub alert: String,
    pub pcap: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packets: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub timestamp: String,
    #[serde(skip)]
    pub ts: Micros,
    /// `first_seen`, `identity`, `address`, `firmware`, `destination`, `service`, `alert`,
    /// `alert_resolved`, or the event log's `event_type` (`dns`, `http`, `tls`, `flow`, …).
    pub kind: String,
    pub summary: String,
    /// `state`, `event log` or `alert journal`.
    pub source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    #[serde(skip_serializing_if = "Value::is_null")]
    pub details: Value,
}

#[derive(Debug, Serialize)]
pub struct Timeline {
    pub device: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    pub sources: Value,
    pub items: Vec<Item>,
    /// Older event log items past `max_items`, left out.
    pub truncated: u64,
    /// Event log lines that matched the device but were not JSON.
    pub unreadable_lines: u64,
}

fn item(ts: Micros, kind: &str, summary: String, source: &'static str) -> Item {
    Item {
        timestamp: rfc3339(ts),
        ts,
        kind: kind.to_string(),
        summary,
        source,
        severity: None,
        evidence: None,
        details: Value::Null,
    }
}

fn proto(p: u8) -> String {
    crate::detect::proto_keyword(p).to_ascii_uppercase()
}

/// The device's own record, as the timeline's header.
pub fn device_json(estate: &Estate, d: &Device) -> Value {
    let listed = crate::review::ban::classify(d);
    json!({
        "ip": d.ip,
        "mac": d.mac.map(format_mac),
        "organization": d.organization,
        "vendor": vendor_of(d),
        "model": d.model(),
        "serial": d.serial(),
        "firmware": d.firmware.current().map(|e| e.version.clone()).or_else(|| d.firmware_version().map(str::to_string)),
        "hostname": d.identity.hostname.as_ref().map(|a| a.value.clone()),
        "oem": d.identity.oem.as_ref().map(|a| a.value.clone()),
        "first_seen": rfc3339(d.first_seen),
        "last_seen": rfc3339(d.last_seen),
        "listed": listed,
        "firmware_findings": estate.findings(d),
        "past_addresses": d.past_addresses.iter().map(|p| p.ip).collect::<Vec<_>>(),
    })
}

fn state_items(estate: &Estate, d: &Device, out: &mut Vec<Item>) {
    let org = d.organization.as_deref().map(|o| format!(", {o}")).unwrap_or_default();
    let mac = d.mac.map(|m| format!(" ({}{org})", format_mac(m))).unwrap_or_default();
    out.push(item(d.first_seen, "first_seen", format!("First seen at {}{mac}", d.ip), "state"));
    let id = &d.identity;
    for (field, attr) in [
        ("vendor", &id.vendor),
        ("model", &id.model),
        ("serial", &id.serial),
        ("hostname", &id.hostname),
        ("oem", &id.oem),
    ] {
        if let Some(a) = attr {
            let mut i = item(
                a.first_seen,
                "identity",
                format!("{field}: {} (from {})", a.value, a.source.as_str()),
                "state",
            );
            i.details = json!({"field": field, "value": a.value, "source": a.source.as_str(), "last_seen": rfc3339(a.last_seen)});
            out.push(i);
        }
    }
    for p in &d.past_addresses {
        let mut i = item(
            p.until,
            "address",
            format!("Left address {} (held since {})", p.ip, when(p.first_seen)),
            "state",
        );
        i.details = json!({"address": p.ip, "first_seen": rfc3339(p.first_seen), "until": rfc3339(p.until)});
        out.push(i);
    }
    for e in &d.firmware.entries {
        let mut i = item(
            e.first_seen,
            "firmware",
            format!(
                "Firmware {} (from {}), last reported {}",
                e.version,
                e.source.as_str(),
                when(e.last_seen)
            ),
            "state",
        );
        i.details =
            json!({"version": e.version, "source": e.source.as_str(), "last_seen": rfc3339(e.last_seen)});
        out.push(i);
    }
    for (dest, e) in &d.destinations {
        let name = e.name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
        let external = estate.is_outside(*dest);
        let place = if external { "outside the site" } else { "on site" };
        let details = json!({
            "destination": dest, "name": e.name, "port": e.port, "proto": proto(e.proto),
            "external": external, "flows": e.flows, "bytes_sent": e.bytes_sent,
            "bytes_received": e.bytes_received, "first_seen": rfc3339(e.first_seen), "last_seen": rfc3339(e.last_seen),
        });
        let mut first = item(
            e.first_seen,
            "destination",
            format!("First contact with {dest}{name} on {}/{} ({place})", e.port, proto(e.proto)),
            "state",
        );
        first.details = details.clone();
        out.push(first);
        if e.last_seen > e.first_seen {
            let mut last = item(
                e.last_seen,
                "destination",
                format!(
                    "Last contact with {dest}{name}: {} flows, {} sent, {} received in all",
                    e.flows,
                    bytes(e.bytes_sent),
                    bytes(e.bytes_received)
                ),
                "state",
            );
            last.details = details;
            out.push(last);
        }
    }
    for ((p, port), s) in &d.services {
        let mut i =
            item(s.first_seen, "service", format!("Answered on {port}/{} (first time)", proto(*p)), "state");
        i.details =
            json!({"port": port, "proto": proto(*p), "flows": s.flows, "last_seen": rfc3339(s.last_seen)});
        out.push(i);
    }
}

fn alert_items(a: &AlertEntry, out: &mut Vec<Item>) {
    let mut i = item(a.starts, "alert", a.summary.clone(), "alert journal");
    i.severity = Some(a.severity.clone());
    i.evidence = a.pcap.clone().map(|pcap| Evidence {
        alert: a.id.clone(),
        pcap,
        sha256: a.sha256.clone(),
        packets: a.packets,
    });
    i.details = json!({
        "id": a.id, "rule": a.rule_id, "name": a.rule_name, "category": a.category,
        "src_ip": a.src_ip, "dest_ip": a.dest_ip, "matched": a.matched, "references": a.references,
        "resolved_at": a.resolved_at,
    });
    out.push(i);
    if let Some(ts) = a.resolved_at.as_deref().and_then(parse_time) {
        let mut r = item(ts, "alert_resolved", format!("Resolved: {}", a.rule_name), "alert journal");
        r.details = json!({"id": a.id, "rule": a.rule_id});
        out.push(r);
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// One line of the event log as a timeline item, or `None` for records the state already
/// covers (a device's `new` and first-learned identity, a version's first sighting) and
/// flows unless asked for.
fn event_item(v: &Value, query: &Query, have_journal: bool) -> Option<Item> {
    let kind = s(&v["event_type"]);
    let ts = parse_time(s(&v["timestamp"]))?;
    let pair = || {
        format!(
            "{}:{} → {}:{}",
            s(&v["src_ip"]),
            v["src_port"].as_u64().unwrap_or(0),
            s(&v["dest_ip"]),
            v["dest_port"].as_u64().unwrap_or(0)
        )
    };
    let summary = match kind {
        "device" => {
            let d = &v["device"];
            match s(&d["event"]) {
                "new" => return None,
                "identity" => {
                    let c = &d["change"];
                    if s(&c["kind"]) == "learned" {
                        return None;
                    }
                    format!(
                        "Identity {} {}: {} (from {}){}",
                        s(&c["field"]),
                        s(&c["kind"]),
                        s(&c["value"]),
                        s(&c["source"]),
                        c["previous"].as_str().map(|p| format!(", was {p}")).unwrap_or_default()
                    )
                }
                "renumbered" => format!("Address changed from {} to {}", s(&d["previous_ip"]), s(&d["ip"])),
                "mac_learned" => format!("MAC address learned: {}", s(&d["mac"])),
                "mac_changed" => format!("MAC address changed to {}", s(&d["mac"])),
                other => format!("Device {other}"),
            }
        }
        "firmware" => {
            let f = &v["firmware"];
            match s(&f["event"]) {
                "first_seen" => return None,
                "transfer" => format!(
                    "Firmware image {} ({}, {} bytes, sha256 {}) {}",
                    s(&f["direction"]),
                    if f["format"].is_null() { "unknown format" } else { s(&f["format"]) },
                    f["size"].as_u64().unwrap_or(0),
                    s(&f["sha256"]),
                    pair()
                ),
                ev => format!(
                    "Firmware {ev}: {}{} (from {})",
                    s(&f["version"]),
                    f["previous"].as_str().map(|p| format!(", was {p}")).unwrap_or_default(),
                    s(&f["source"])
                ),
            }
        }
        "alert" if have_journal => return None,
        "alert" => format!("Alert: {}", s(&v["alert"]["signature"])),
        "flow" if !query.flows => return None,
        "flow" => {
            let f = &v["flow"];
            format!(
                "Flow {} {}: {} sent, {} received",
                s(&v["proto"]),
                pair(),
                bytes(f["bytes_toserver"].as_u64().unwrap_or(0)),
                bytes(f["bytes_toclient"].as_u64().unwrap_or(0))
            )
        }
        "dns" => {
            let d = &v["dns"];
            format!("DNS {} {} {}", s(&d["type"]), s(&d["rrname"]), s(&d["rrtype"]))
        }
        "http" => {
            let h = &v["http"];
            format!(
                "HTTP {} {}{} → {} ({})",
                s(&h["http_method"]),
                s(&h["hostname"]),
                s(&h["url"]),
                h["status"].as_u64().map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
                pair()
            )
        }
        "tls" => format!("TLS {} (SNI {})", pair(), s(&v["tls"]["sni"])),
        "rtsp" => {
            let r = &v["rtsp"];
            format!(
                "RTSP {} {} → {} ({})",
                s(&r["request"]["method"]),
                s(&r["request"]["url"]),
                r["response"]["status"].as_u64().map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
                pair()
            )
        }
        "discovery" => {
            let d = &v["discovery"];
            let proto = s(&d["protocol"]);
            let msg = &d[proto];
            let what = [&msg["kind"], &msg["name"], &msg["hardware"]]
                .iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            format!("Discovery {proto} {what} ({})", pair())
        }
        "ntp" => format!("NTP {} ({})", s(&v["ntp"]["mode"]), pair()),
        "stats" => return None,
        other => format!("{other} {}", pair()),
    };
    let mut i = item(ts, kind, summary, "event log");
    i.details = v.clone();
    Some(i)
}

/// The timeline's summary of one event log line (flows included), or `None` for a line that
/// is not a record or that the timeline takes from the state instead: the fuzz target's entry.
pub fn event_summary(line: &str) -> Option<String> {
    let v = serde_json::from_str::<Value>(line).ok()?;
    let query = Query { flows: true, ..Query::default() };
    event_item(&v, &query, false).map(|i| i.summary)
}

/// Whether an event log record is about the device: one of its addresses while it held it, or
/// its MAC address.
fn about(v: &Value, ips: &[(IpAddr, Micros, Micros)], mac: Option<&str>) -> bool {
    let Some(ts) = parse_time(s(&v["timestamp"])) else { return false };
    let candidates = [&v["src_ip"], &v["dest_ip"], &v["device"]["ip"], &v["firmware"]["device"]];
    let ip_hit = candidates
        .iter()
        .filter_map(|c| c.as_str()?.parse::<IpAddr>().ok())
        .any(|ip| ips.iter().any(|(held, from, until)| *held == ip && ts >= *from && ts <= *until));
    ip_hit
        || mac.is_some_and(|m| {
            [&v["device"]["mac"], &v["ether"]["src_mac"], &v["ether"]["dest_mac"]]
                .iter()
                .any(|c| c.as_str().is_some_and(|x| x.eq_ignore_ascii_case(m)))
        })
}

/// Builds the timeline of the device `name` names.
pub fn build(estate: &Estate, name: &str, query: &Query) -> anyhow::Result<Timeline> {
    let d = estate.find(name)?;
    let mut items = Vec::new();
    state_items(estate, d, &mut items);
    for a in estate.alerts_of(d) {
        alert_items(a, &mut items);
    }
    let ips = crate::review::estate::held(d);
    let mac = d.mac.map(format_mac);
    let needles: Vec<String> = ips
        .iter()
        .map(|(ip, ..)| format!("\"{ip}\""))
        .chain(mac.iter().map(|m| format!("\"{m}\"")))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let max = if query.max_items == 0 { DEFAULT_MAX_ITEMS } else { query.max_items };
    let mut unreadable = 0u64;
    let mut left_out = 0u64;
    // The newest `max` of the event log's items (the log is in time order, so what happened
    // last, usually what is being investigated, is kept); state and alert items are all kept.
    let mut from_log: VecDeque<Item> = VecDeque::new();
    let mut event_files = Vec::new();
    for path in &query.events {
        event_files.push(path.display().to_string());
        let overlong = crate::review::estate::for_each_line(path, |line| {
            // Most lines are about other devices: a substring test before parsing.
            let Ok(text) = std::str::from_utf8(line) else { return };
            if !needles.iter().any(|n| text.contains(n.as_str())) {
                return;
            }
            let Ok(v) = serde_json::from_str::<Value>(text) else {
                unreadable += 1;
                return;
            };
            if !about(&v, &ips, mac.as_deref()) {
                return;
            }
            let Some(i) = event_item(&v, query, estate.journal.is_some()) else { return };
            if query.since.is_some_and(|t| i.ts < t) || query.until.is_some_and(|t| i.ts > t) {
                return;
            }
            if from_log.len() >= max {
                from_log.pop_front();
                left_out += 1;
            }
            from_log.push_back(i);
        })?;
        unreadable += overlong;
    }
    items.retain(|i| query.since.is_none_or(|t| i.ts >= t) && query.until.is_none_or(|t| i.ts <= t));
    items.extend(from_log);
    items.sort_by(|a, b| a.ts.cmp(&b.ts).then_with(|| a.kind.cmp(&b.kind)));
    let truncated = left_out;
    Ok(Timeline {
        device: device_json(estate, d),
        since: query.since.map(rfc3339),
        until: query.until.map(rfc3339),
        sources: json!({
            "state": estate.state,
            "alert_journal": estate.journal,
            "event_logs": event_files,
        }),
        items,
        truncated,
        unreadable_lines: unreadable,
    })
}

pub fn table(t: &Timeline) -> String {
    let mut out = String::new();
    let d = &t.device;
    let _ = writeln!(
        out,
        "Device {}  {} {}  firmware {}  MAC {}",
        s(&d["ip"]),
        d["vendor"].as_str().unwrap_or("-"),
        d["model"].as_str().unwrap_or(""),
        d["firmware"].as_str().unwrap_or("-"),
        d["mac"].as_str().unwrap_or("-")
    );
    if let Some(l) = d["listed"].as_object() {
        let _ = writeln!(
            out,
            "Procurement ban: {} ({})",
            l.get("company").and_then(Value::as_str).unwrap_or(""),
            l.get("brand").and_then(Value::as_str).unwrap_or("")
        );
    }
    let _ = writeln!(out, "\n{:<20} {:<14} {:<14} SUMMARY", "TIME (UTC)", "KIND", "SOURCE");
    for i in &t.items {
        let sev = i.severity.as_deref().map(|s| format!("[{s}] ")).unwrap_or_default();
        let _ = writeln!(out, "{:<20} {:<14} {:<14} {sev}{}", when(i.ts), i.kind, i.source, i.summary);
        if let Some(e) = &i.evidence {
            let _ = writeln!(
                out,
                "{:<50} evidence: {} sha256 {}",
                "",
                e.pcap.display(),
                e.sha256.as_deref().unwrap_or("-")
            );
        }
    }
    if t.truncated > 0 {
        let _ = writeln!(
            out,
            "\n{} older event log items left out (--max-items, or narrow with --since/--until).",
            t.truncated
        );
    }
    out
}

/// The timeline as a page; `href` gives each evidence pcap's link (a bundle's relative path,
/// the web view's download URL).
pub fn html(t: &Timeline, href: &dyn Fn(&Evidence) -> Option<String>, nav: &[(&str, &str)]) -> String {
    let d = &t.device;
    let mut b = String::new();
    b.push_str("<section id=\"device\"><table id=\"device-facts\"><tbody>");
    for (label, key) in [
        ("Address", "ip"),
        ("MAC", "mac"),
        ("Vendor", "vendor"),
        ("Model", "model"),
        ("Serial", "serial"),
        ("Firmware", "firmware"),
        ("First seen", "first_seen"),
        ("Last seen", "last_seen"),
    ] {
        let v = d[key].as_str().unwrap_or("-");
        let _ = write!(b, "<tr><th>{label}</th><td>{}</td></tr>", esc(v));
    }
    if let Some(l) = d["listed"].as_object() {
        let company = l.get("company").and_then(Value::as_str).unwrap_or("");
        let brand = l.get("brand").and_then(Value::as_str).unwrap_or("");
        let _ = write!(
            b,
            "<tr class=\"listed\"><th>Procurement ban</th><td>{} <span class=\"muted small\">{}</span></td></tr>",
            badge("listed", &format!("NDAA §889: {company}")),
            esc(brand)
        );
    }
    if let Some(findings) = d["firmware_findings"].as_array().filter(|f| !f.is_empty()) {
        let list: Vec<String> = findings
            .iter()
            .map(|f| {
                let vulnerable = f["vulnerable"].as_bool().unwrap_or(false);
                format!(
                    "{} {}",
                    badge(
                        if vulnerable { "vulnerable" } else { "check" },
                        if vulnerable { "vulnerable" } else { "check" }
                    ),
                    esc(s(&f["name"]))
                )
            })
            .collect();
        let _ = write!(b, "<tr><th>Firmware findings</th><td>{}</td></tr>", list.join("<br>"));
    }
    b.push_str("</tbody></table></section><section id=\"timeline\"><h2>Timeline</h2>");
    let rows: Vec<(String, Vec<String>)> = t
        .items
        .iter()
        .map(|i| {
            let sev = i.severity.as_deref().map(|s| badge(s, s) + " ").unwrap_or_default();
            let ev = i.evidence.as_ref().map_or_else(String::new, |e| {
                let name = e.pcap.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let link = href(e).map_or_else(
                    || esc(&name),
                    |h| format!("<a class=\"evidence\" href=\"{}\">{}</a>", esc(&h), esc(&name)),
                );
                format!(
                    "{link}<div class=\"muted small\">sha256 <code>{}</code></div>",
                    esc(e.sha256.as_deref().unwrap_or("-"))
                )
            });
            (
                if i.kind == "alert" { "alert".into() } else { String::new() },
                vec![esc(&when(i.ts)), esc(&i.kind), format!("{sev}{}", esc(&i.summary)), esc(i.source), ev],
            )
        })
        .collect();
    b.push_str(&html::table(
        "table-timeline",
        &["Time (UTC)", "Kind", "What happened", "Source", "Evidence"],
        &rows,
    ));
    if t.truncated > 0 {
        let _ = write!(
            b,
            "<p class=\"muted\" id=\"truncated\">{} older event log items left out.</p>",
            t.truncated
        );
    }
    b.push_str("</section>");
    let window = match (&t.since, &t.until) {
        (None, None) => "all recorded time".to_string(),
        (a, z) => format!("{} to {}", a.as_deref().unwrap_or("the start"), z.as_deref().unwrap_or("the end")),
    };
    html::page(
        &format!("Device {}", s(&d["ip"])),
        &format!("Timeline of {}, {window}", d["vendor"].as_str().unwrap_or("unknown vendor")),
        nav,
        &b,
        &format!(
            "camwatch {} · from {}",
            env!("CARGO_PKG_VERSION"),
            t.sources["state"].as_str().unwrap_or("")
        ),
    )
}

pub fn render(t: &Timeline, format: Format) -> anyhow::Result<String> {
    Ok(match format {
        Format::Table => table(t),
        Format::Json => serde_json::to_string_pretty(t)? + "\n",
        Format::Html => html(t, &|e| Some(e.pcap.display().to_string()), &[]),
    })
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// What became of each alert's evidence in a bundle.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Exported {
    pub files: Vec<String>,
    /// (alert id, `verified` | `copied, no recorded hash` | `MISMATCH: …` | `missing: …`).
    pub evidence: Vec<(String, String)>,
}

/// Writes the hand-over bundle into `dir` (created; it must be empty if it exists). Evidence
/// pcaps are looked for where the journal names them, else by file name in `evidence_dir`.
pub fn export(t: &Timeline, dir: &Path, evidence_dir: Option<&Path>) -> anyhow::Result<Exported> {
    if dir.exists() {
        anyhow::ensure!(
            std::fs::read_dir(dir)?.next().is_none(),
            "{}: not empty; a bundle goes into a new or empty directory",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir.join("evidence")).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    let mut evidence = Vec::new();
    let mut copied: BTreeSet<String> = BTreeSet::new();
    for e in t.items.iter().filter_map(|i| i.evidence.as_ref()) {
        let Some(name) = e.pcap.file_name().map(|n| n.to_string_lossy().into_owned()) else { continue };
        if !copied.insert(name.clone()) {
            continue;
        }
        let from = if e.pcap.is_file() {
            Some(e.pcap.clone())
        } else {
            evidence_dir.map(|d| d.join(&name)).filter(|p| p.is_file())
        };
        let Some(from) = from else {
            evidence.push((
                e.alert.clone(),
                format!("missing: {} (retention may have removed it)", e.pcap.display()),
            ));
            continue;
        };
        let to = dir.join("evidence").join(&name);
        std::fs::copy(&from, &to).map_err(|err| anyhow::anyhow!("{}: {err}", from.display()))?;
        let got = sha256_file(&to)?;
        let status = match &e.sha256 {
            Some(want) if want.eq_ignore_ascii_case(&got) => {
                "verified against the alert's SHA-256".to_string()
            }
            Some(want) => format!("MISMATCH: the alert recorded {want}, the file has {got}"),
            None => "copied; the alert recorded no SHA-256".to_string(),
        };
        evidence.push((e.alert.clone(), status));
    }
    // The bundle's timeline links to its own copies.
    let local = |e: &Evidence| {
        let name = e.pcap.file_name()?.to_string_lossy().into_owned();
        dir.join("evidence").join(&name).is_file().then(|| format!("evidence/{name}"))
    };
    std::fs::write(dir.join("timeline.json"), serde_json::to_string_pretty(t)? + "\n")?;
    std::fs::write(dir.join("timeline.html"), html(t, &local, &[]))?;
    std::fs::write(dir.join("timeline.txt"), table(t))?;
    let mut readme = format!(
        "camwatch {} investigation bundle for device {}\n\ntimeline.json  the timeline (every item has a timestamp)\ntimeline.html  the same, as a page (open in a browser)\ntimeline.txt   the same, as text\nevidence/      the alerts' evidence pcaps\nSHA256SUMS     SHA-256 of every other file: verify with `sha256sum -c SHA256SUMS`\n\nEvidence:\n",
        env!("CARGO_PKG_VERSION"),
        s(&t.device["ip"])
    );
    if evidence.is_empty() {
        readme.push_str("  (no alert with evidence in the timeline)\n");
    }
    for (id, status) in &evidence {
        let _ = writeln!(readme, "  alert {id}: {status}");
    }
    std::fs::write(dir.join("README.txt"), readme)?;
    let mut files: Vec<String> =
        vec!["README.txt".into(), "timeline.html".into(), "timeline.json".into(), "timeline.txt".into()];
    let mut pcaps: Vec<String> = std::fs::read_dir(dir.join("evidence"))?
        .filter_map(|e| e.ok())
        .map(|e| format!("evidence/{}", e.file_name().to_string_lossy()))
        .collect();
    pcaps.sort();
    files.extend(pcaps);
    let mut sums = std::fs::File::create(dir.join("SHA256SUMS"))?;
    for f in &files {
        writeln!(sums, "{}  {f}", sha256_file(&dir.join(f))?)?;
    }
    sums.sync_all()?;
    Ok(Exported { files, evidence })
}
