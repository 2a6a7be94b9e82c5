//! `camwatch report`: the estate review. Which devices are from vendors named in procurement
//! bans, what firmware each runs against the vulnerable ranges in the packs, every destination
//! outside the site with its bytes and first and last contact, the vendor-cloud features in use
//! (the alerts of category `cloud`), and charts of traffic by class of peer over time and
//! destinations per device. One [`Report`] renders as HTML, Markdown or JSON.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::analysis::device::Device;
use crate::model::time::{rfc3339, Micros};
use crate::review::ban::{self, Listed};
use crate::review::estate::{mac_of, vendor_of, Estate, Finding};
use crate::review::html::{self, badge, bytes, esc, when};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Html,
    Md,
    Json,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub generated_at: String,
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal: Option<String>,
    /// First and last packet time the state covers.
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub summary: Summary,
    pub vendors: Vec<VendorRow>,
    pub devices: Vec<DeviceRow>,
    pub external: Vec<ExternalRow>,
    pub cloud: Vec<CloudRow>,
    pub alerts: Vec<AlertCount>,
    pub traffic: Vec<crate::store::TrafficHour>,
    /// Journal lines that could not be read (torn records) and alerts past the bound.
    pub alerts_skipped: u64,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub devices: usize,
    /// Devices from a company Section 889 names (or its brands and reported OEMs).
    pub listed: usize,
    /// Devices whose current firmware a rule tagged `vulnerable-firmware` matches.
    pub vulnerable: usize,
    /// Devices with at least one destination outside the site.
    pub reaching_internet: usize,
    pub external_destinations: usize,
    pub alerts: usize,
}

#[derive(Debug, Serialize)]
pub struct VendorRow {
    pub vendor: String,
    pub devices: usize,
    /// The covered company, when the vendor's devices are listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub covered: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct DeviceRow {
    pub ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firmware: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firmware_source: Option<String>,
    /// Versions the device has been seen to run.
    pub firmware_versions: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listed: Option<Listed>,
    pub findings: Vec<Finding>,
    pub destinations: usize,
    pub external_destinations: usize,
    pub alerts: usize,
    pub first_seen: String,
    pub last_seen: String,
}

#[derive(Debug, Serialize)]
pub struct ExternalRow {
    pub device: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    pub destination: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub port: u16,
    pub proto: String,
    /// Every port the device used on the peer, `443/TCP` (the first is `port`/`proto`).
    pub ports: Vec<String>,
    pub flows: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub first_seen: String,
    pub last_seen: String,
}

#[derive(Debug, Serialize)]
pub struct CloudRow {
    pub device: String,
    pub rule_id: String,
    pub rule_name: String,
    pub alerts: usize,
    pub first: String,
    pub last: String,
}

#[derive(Debug, Serialize)]
pub struct AlertCount {
    pub rule_id: String,
    pub rule_name: String,
    pub severity: String,
    pub category: String,
    pub alerts: usize,
    pub devices: usize,
}

fn proto_name(p: u8) -> String {
    crate::detect::proto_keyword(p).to_ascii_uppercase()
}

fn device_row(estate: &Estate, d: &Device) -> DeviceRow {
    let current = d.firmware.current();
    DeviceRow {
        ip: d.ip.to_string(),
        mac: mac_of(d),
        vendor: vendor_of(d),
        model: d.model().map(str::to_string),
        serial: d.serial().map(str::to_string),
        firmware: current.map(|e| e.version.clone()).or_else(|| d.firmware_version().map(str::to_string)),
        firmware_source: current.map(|e| e.source.as_str().to_string()),
        firmware_versions: d.firmware.entries.len(),
        listed: ban::classify(d),
        findings: estate.findings(d),
        destinations: d.destinations.len(),
        external_destinations: d.destinations.keys().filter(|ip| estate.is_outside(**ip)).count(),
        alerts: estate.alerts_of(d).count(),
        first_seen: rfc3339(d.first_seen),
        last_seen: rfc3339(d.last_seen),
    }
}

/// Builds the review of an estate; `now` is the wall time it is generated at.
pub fn build(estate: &Estate, now: Micros) -> Report {
    let mut devices: Vec<DeviceRow> = estate.devices.iter().map(|d| device_row(estate, d)).collect();
    // Listed first, then vulnerable, then by address.
    devices.sort_by(|a, b| {
        b.listed
            .is_some()
            .cmp(&a.listed.is_some())
            .then_with(|| {
                b.findings.iter().any(|f| f.vulnerable).cmp(&a.findings.iter().any(|f| f.vulnerable))
            })
            .then_with(|| sort_ip(&a.ip).cmp(&sort_ip(&b.ip)))
    });
    let mut vendors: BTreeMap<String, (usize, Option<String>)> = BTreeMap::new();
    for row in &devices {
        let name = row.listed.as_ref().map_or_else(
            || row.vendor.clone().unwrap_or_else(|| "unknown".into()),
            |l| if l.relation == ban::Relation::Maker { l.company.to_string() } else { l.brand.clone() },
        );
        let e = vendors.entry(name).or_default();
        e.0 += 1;
        if let Some(l) = &row.listed {
            e.1 = Some(l.company.to_string());
        }
    }
    let mut vendors: Vec<VendorRow> = vendors
        .into_iter()
        .map(|(vendor, (devices, covered))| VendorRow { vendor, devices, covered })
        .collect();
    vendors.sort_by(|a, b| b.devices.cmp(&a.devices).then_with(|| a.vendor.cmp(&b.vendor)));

    let mut external = Vec::new();
    for d in &estate.devices {
        for (dest, e) in d.destinations.iter().filter(|(ip, _)| estate.is_outside(**ip)) {
            external.push(ExternalRow {
                device: d.ip.to_string(),
                vendor: vendor_of(d),
                destination: dest.to_string(),
                name: e.name.clone(),
                port: e.port,
                proto: proto_name(e.proto),
                ports: if e.ports.is_empty() {
                    vec![format!("{}/{}", e.port, proto_name(e.proto))]
                } else {
                    e.ports.iter().map(|(p, n)| format!("{n}/{}", proto_name(*p))).collect()
                },
                flows: e.flows,
                bytes_sent: e.bytes_sent,
                bytes_received: e.bytes_received,
                first_seen: rfc3339(e.first_seen),
                last_seen: rfc3339(e.last_seen),
            });
        }
    }
    external.sort_by(|a, b| {
        b.bytes_sent
            .saturating_add(b.bytes_received)
            .cmp(&a.bytes_sent.saturating_add(a.bytes_received))
            .then_with(|| sort_ip(&a.device).cmp(&sort_ip(&b.device)))
            .then_with(|| a.destination.cmp(&b.destination))
    });
    let distinct_external: std::collections::BTreeSet<&str> =
        external.iter().map(|e| e.destination.as_str()).collect();

    let mut cloud: BTreeMap<(String, String), (String, usize, String, String)> = BTreeMap::new();
    let mut counts: BTreeMap<String, (String, String, String, usize, std::collections::BTreeSet<String>)> =
        BTreeMap::new();
    for a in &estate.alerts {
        let device = a.device.map(|ip| ip.to_string()).unwrap_or_else(|| "-".into());
        if a.category == "cloud" {
            let e = cloud
                .entry((device.clone(), a.rule_id.clone()))
                .or_insert_with(|| (a.rule_name.clone(), 0, a.starts_at.clone(), a.starts_at.clone()));
            e.1 += 1;
            e.3.clone_from(&a.starts_at);
        }
        let c = counts.entry(a.rule_id.clone()).or_insert_with(|| {
            (a.rule_name.clone(), a.severity.clone(), a.category.clone(), 0, Default::default())
        });
        c.3 += 1;
        c.4.insert(device);
    }
    let cloud = cloud
        .into_iter()
        .map(|((device, rule_id), (rule_name, alerts, first, last))| CloudRow {
            device,
            rule_id,
            rule_name,
            alerts,
            first,
            last,
        })
        .collect();
    let mut alerts: Vec<AlertCount> = counts
        .into_iter()
        .map(|(rule_id, (rule_name, severity, category, alerts, devs))| AlertCount {
            rule_id,
            rule_name,
            severity,
            category,
            alerts,
            devices: devs.len(),
        })
        .collect();
    alerts.sort_by(|a, b| {
        severity_rank(&b.severity).cmp(&severity_rank(&a.severity)).then(b.alerts.cmp(&a.alerts))
    });

    let span = estate.span();
    Report {
        generated_at: rfc3339(now),
        state: estate.state.display().to_string(),
        journal: estate.journal.as_ref().map(|p| p.display().to_string()),
        first_seen: span.map(|s| rfc3339(s.0)),
        last_seen: span.map(|s| rfc3339(s.1)),
        summary: Summary {
            devices: devices.len(),
            listed: devices.iter().filter(|d| d.listed.is_some()).count(),
            vulnerable: devices.iter().filter(|d| d.findings.iter().any(|f| f.vulnerable)).count(),
            reaching_internet: devices.iter().filter(|d| d.external_destinations > 0).count(),
            external_destinations: distinct_external.len(),
            alerts: estate.alerts.len(),
        },
        vendors,
        devices,
        external,
        cloud,
        alerts,
        traffic: estate.traffic.clone(),
        alerts_skipped: estate.alerts_skipped,
    }
}

fn severity_rank(s: &str) -> u8 {
    match s {
        "critical" => 4,
        "high" => 3,
        "medium" => 2,
        "low" => 1,
        _ => 0,
    }
}

/// Addresses in numeric order (10.0.0.9 before 10.0.0.10).
fn sort_ip(s: &str) -> (u8, u128) {
    match s.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v)) => (4, u128::from(u32::from(v))),
        Ok(std::net::IpAddr::V6(v)) => (6, u128::from(v)),
        Err(_) => (9, 0),
    }
}

/// The firmware cell: version, and a badge per finding.
fn findings_html(d: &DeviceRow) -> String {
    let mut out = String::new();
    for f in &d.findings {
        let (class, text) = if f.vulnerable { ("vulnerable", "vulnerable") } else { ("check", "check") };
        let refs =
            f.references.iter().filter(|r| !r.starts_with("http")).cloned().collect::<Vec<_>>().join(", ");
        let _ = write!(
            out,
            "<div>{} {} <span class=\"muted small\">{}</span></div>",
            badge(class, text),
            esc(&f.name),
            esc(&if refs.is_empty() { f.rule_id.clone() } else { format!("{} · {refs}", f.rule_id) })
        );
    }
    out
}

fn opt(s: &Option<String>) -> String {
    s.as_deref().map_or_else(|| "<span class=\"muted\">-</span>".into(), esc)
}

pub fn html(r: &Report) -> String {
    html_with(r, None, &[])
}

/// The page, with each device's address linked where `device_href` says (the web view links
/// its timeline) and extra navigation links first.
pub fn html_with(
    r: &Report,
    device_href: Option<&dyn Fn(&str) -> String>,
    extra_nav: &[(&str, &str)],
) -> String {
    let addr = |ip: &str| match device_href {
        Some(h) => format!("<a href=\"{}\"><code class=\"addr\">{}</code></a>", esc(&h(ip)), esc(ip)),
        None => format!("<code class=\"addr\">{}</code>", esc(ip)),
    };
    let mut b = String::new();
    let s = &r.summary;
    let card = |b: &mut String, id: &str, n: usize, label: &str, bad: bool| {
        let _ = write!(
            b,
            "<div class=\"card{}\" id=\"{id}\"><div class=\"n\">{n}</div><div>{}</div></div>",
            if bad && n > 0 { " bad" } else { "" },
            esc(label)
        );
    };
    b.push_str("<section id=\"summary\"><div class=\"cards\">");
    card(&mut b, "card-devices", s.devices, "devices", false);
    card(&mut b, "card-listed", s.listed, "from vendors named in NDAA §889", true);
    card(&mut b, "card-vulnerable", s.vulnerable, "with firmware in a vulnerable range", true);
    card(&mut b, "card-internet", s.reaching_internet, "reaching the internet", true);
    card(&mut b, "card-external", s.external_destinations, "destinations outside the site", false);
    card(&mut b, "card-alerts", s.alerts, "alerts", false);
    b.push_str("</div></section>");

    b.push_str("<section id=\"vendors\"><h2>Devices by vendor</h2>");
    b.push_str("<p class=\"muted\">Highlighted: vendors named in Section 889 of the US NDAA for FY2019 (Hikvision, Dahua, Hytera, Huawei, ZTE), their brands and reported OEM labels, matched on what devices report (SADP, ONVIF, HTTP, DHIP), their MAC prefix and their model numbering.</p>");
    let items: Vec<(String, u64, bool)> =
        r.vendors.iter().map(|v| (v.vendor.clone(), v.devices as u64, v.covered.is_some())).collect();
    b.push_str(&html::bars("chart-vendors", "Devices by vendor", &items, |n| n.to_string()));
    let rows: Vec<(String, Vec<String>)> = r
        .vendors
        .iter()
        .map(|v| {
            let covered =
                v.covered.as_ref().map_or_else(String::new, |c| badge("listed", &format!("§889: {c}")));
            (
                if v.covered.is_some() { "listed".into() } else { String::new() },
                vec![esc(&v.vendor), v.devices.to_string(), covered],
            )
        })
        .collect();
    b.push_str(&html::table("table-vendors", &["Vendor", "Devices#", "Procurement ban"], &rows));
    b.push_str("</section>");

    b.push_str("<section id=\"devices\"><h2>Devices and firmware</h2>");
    b.push_str("<p class=\"muted\">Current firmware against the firmware rules of the packs: <b>vulnerable</b> is a rule tagged <code>vulnerable-firmware</code> (a vulnerable range for the model); <b>check</b> is a weaker match to confirm by hand.</p>");
    let rows: Vec<(String, Vec<String>)> = r
        .devices
        .iter()
        .map(|d| {
            let listed = d.listed.as_ref().map_or_else(String::new, |l| {
                format!(
                    "{}<div class=\"muted small\">{}</div>",
                    badge("listed", &l.label()),
                    esc(&l.signals.join("; "))
                )
            });
            let mut fw = match (&d.firmware, &d.firmware_source) {
                (Some(v), Some(s)) => format!("{} <span class=\"muted small\">({})</span>", esc(v), esc(s)),
                (Some(v), None) => esc(v),
                _ => opt(&None),
            };
            if d.firmware_versions > 1 {
                let _ = write!(fw, "<div class=\"muted small\">{} versions seen</div>", d.firmware_versions);
            }
            (
                if d.listed.is_some() { "listed".into() } else { String::new() },
                vec![
                    addr(&d.ip),
                    opt(&d.vendor),
                    opt(&d.model),
                    fw,
                    findings_html(d),
                    listed,
                    d.external_destinations.to_string(),
                    d.alerts.to_string(),
                ],
            )
        })
        .collect();
    b.push_str(&html::table(
        "table-devices",
        &[
            "Address",
            "Vendor",
            "Model",
            "Firmware",
            "Firmware findings",
            "Procurement ban",
            "External#",
            "Alerts#",
        ],
        &rows,
    ));
    b.push_str("</section>");

    b.push_str("<section id=\"external\"><h2>Destinations outside the site</h2>");
    if r.external.is_empty() {
        b.push_str("<p id=\"no-external\">No device opened a flow to an address outside private space.</p>");
    } else {
        let rows: Vec<(String, Vec<String>)> = r
            .external
            .iter()
            .map(|e| {
                (
                    String::new(),
                    vec![
                        format!("{} {}", addr(&e.device), opt(&e.vendor)),
                        format!("<code class=\"addr\">{}</code>", esc(&e.destination)),
                        opt(&e.name),
                        esc(&e.ports.join(", ")),
                        e.flows.to_string(),
                        bytes(e.bytes_sent),
                        bytes(e.bytes_received),
                        esc(&when_str(&e.first_seen)),
                        esc(&when_str(&e.last_seen)),
                    ],
                )
            })
            .collect();
        b.push_str(&html::table(
            "table-external",
            &[
                "Device",
                "Destination",
                "Name",
                "Port",
                "Flows#",
                "Sent#",
                "Received#",
                "First seen",
                "Last seen",
            ],
            &rows,
        ));
    }
    b.push_str("</section>");

    b.push_str("<section id=\"cloud\"><h2>Vendor cloud features in use</h2>");
    if r.journal.is_none() {
        b.push_str("<p class=\"muted\">No alert journal was given (<code>--alerts</code>): cloud use is read from its alerts of category <code>cloud</code>.</p>");
    } else if r.cloud.is_empty() {
        b.push_str("<p id=\"no-cloud\">No alert of category <code>cloud</code> in the journal.</p>");
    } else {
        let rows: Vec<(String, Vec<String>)> = r
            .cloud
            .iter()
            .map(|c| {
                (
                    String::new(),
                    vec![
                        format!("<code>{}</code>", esc(&c.device)),
                        format!(
                            "{} <span class=\"muted small\">{}</span>",
                            esc(&c.rule_name),
                            esc(&c.rule_id)
                        ),
                        c.alerts.to_string(),
                        esc(&when_str(&c.first)),
                        esc(&when_str(&c.last)),
                    ],
                )
            })
            .collect();
        b.push_str(&html::table(
            "table-cloud",
            &["Device", "Feature (rule)", "Alerts#", "First", "Last"],
            &rows,
        ));
    }
    b.push_str("</section>");

    b.push_str("<section id=\"charts\"><h2>Traffic</h2><h3>Traffic by class of peer over time</h3>");
    if r.traffic.is_empty() {
        b.push_str("<p class=\"muted\">No traffic recorded in the state database yet.</p>");
    } else {
        let mut series: BTreeMap<u64, BTreeMap<String, u64>> = BTreeMap::new();
        for t in &r.traffic {
            let e = series.entry(t.hour).or_default().entry(t.class.clone()).or_default();
            *e = e.saturating_add(t.bytes);
        }
        b.push_str(&html::traffic_chart("chart-traffic", &series));
    }
    b.push_str("<h3>Destinations per device</h3>");
    let mut per: Vec<(String, u64, bool)> = r
        .devices
        .iter()
        .filter(|d| d.destinations > 0)
        .map(|d| {
            let label = match &d.vendor {
                Some(v) => format!("{} ({v})", d.ip),
                None => d.ip.clone(),
            };
            (label, d.destinations as u64, d.external_destinations > 0)
        })
        .collect();
    per.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    per.truncate(40);
    b.push_str(&html::bars("chart-destinations", "Destinations per device", &per, |n| n.to_string()));
    b.push_str("<p class=\"muted small\">Red: the device has destinations outside the site. The 40 devices with the most destinations.</p></section>");

    b.push_str("<section id=\"alerts\"><h2>Alerts by rule</h2>");
    if r.alerts.is_empty() {
        b.push_str("<p class=\"muted\">No alerts in the journal.</p>");
    } else {
        let rows: Vec<(String, Vec<String>)> = r
            .alerts
            .iter()
            .map(|a| {
                (
                    String::new(),
                    vec![
                        badge(&a.severity, &a.severity),
                        format!(
                            "{} <span class=\"muted small\">{}</span>",
                            esc(&a.rule_name),
                            esc(&a.rule_id)
                        ),
                        esc(&a.category),
                        a.alerts.to_string(),
                        a.devices.to_string(),
                    ],
                )
            })
            .collect();
        b.push_str(&html::table(
            "table-alerts",
            &["Severity", "Rule", "Category", "Alerts#", "Devices#"],
            &rows,
        ));
    }
    if r.alerts_skipped > 0 {
        let _ = write!(b, "<p class=\"muted\">{} journal lines could not be read.</p>", r.alerts_skipped);
    }
    b.push_str("</section>");

    let span = match (&r.first_seen, &r.last_seen) {
        (Some(a), Some(z)) => format!("Traffic from {} to {} (UTC)", when_str(a), when_str(z)),
        _ => "No devices recorded".into(),
    };
    let mut nav: Vec<(&str, &str)> = extra_nav.to_vec();
    nav.extend([
        ("#summary", "Summary"),
        ("#vendors", "Vendors"),
        ("#devices", "Devices"),
        ("#external", "Outside the site"),
        ("#cloud", "Cloud"),
        ("#charts", "Traffic"),
        ("#alerts", "Alerts"),
    ]);
    html::page(
        "Camera estate review",
        &span,
        &nav,
        &b,
        &format!("camwatch {} · generated {} from {}", env!("CARGO_PKG_VERSION"), r.generated_at, r.state),
    )
}

/// `2026-01-01T02:00:13.123456Z` → `2026-01-01 02:00:13`.
fn when_str(s: &str) -> String {
    crate::review::estate::parse_time(s).map_or_else(|| s.to_string(), when)
}

/// A value from the network for Markdown: markup and Markdown's own punctuation escaped (a
/// model name like `![x](https://…)` must not make the reader's viewer fetch anything), line
/// breaks flattened.
fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' | '\r' => out.push(' '),
            // Inside a table cell only inline syntax matters (no line starts there).
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '!' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A table of cells already made safe with [`md`] (or the report's own words).
fn md_table(out: &mut String, headers: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    let _ = writeln!(out, "| {} |", headers.join(" | "));
    let _ = writeln!(out, "|{}", headers.iter().map(|_| "---|").collect::<String>());
    for r in rows {
        let _ = writeln!(out, "| {} |", r.join(" | "));
    }
    out.push('\n');
}

pub fn markdown(r: &Report) -> String {
    let mut out = String::from("# Camera estate review\n\n");
    if let (Some(a), Some(z)) = (&r.first_seen, &r.last_seen) {
        let _ = writeln!(
            out,
            "Traffic from {} to {} (UTC). Generated {} from `{}`.\n",
            when_str(a),
            when_str(z),
            r.generated_at,
            r.state.replace('`', "'")
        );
    }
    let s = &r.summary;
    let _ = writeln!(
        out,
        "- {} devices\n- **{} from vendors named in NDAA §889** (Hikvision, Dahua, Hytera, Huawei, ZTE, their brands and reported OEMs)\n- **{} with firmware in a vulnerable range**\n- {} reaching the internet, {} destinations outside the site\n- {} alerts\n",
        s.devices, s.listed, s.vulnerable, s.reaching_internet, s.external_destinations, s.alerts
    );
    let o = |v: &Option<String>| v.as_deref().map(md).unwrap_or_default();
    out.push_str("## Devices by vendor\n\n");
    md_table(
        &mut out,
        &["Vendor", "Devices", "Procurement ban"],
        r.vendors.iter().map(|v| {
            vec![
                md(&v.vendor),
                v.devices.to_string(),
                v.covered.as_ref().map(|c| format!("**§889: {}**", md(c))).unwrap_or_default(),
            ]
        }),
    );
    out.push_str("## Devices and firmware\n\n");
    md_table(
        &mut out,
        &["Address", "Vendor", "Model", "Firmware", "Findings", "Procurement ban", "External", "Alerts"],
        r.devices.iter().map(|d| {
            vec![
                md(&d.ip),
                o(&d.vendor),
                o(&d.model),
                o(&d.firmware),
                d.findings
                    .iter()
                    .map(|f| {
                        let kind = if f.vulnerable { "**vulnerable**: " } else { "check: " };
                        format!("{kind}{} ({})", md(&f.name), md(&f.rule_id))
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
                d.listed.as_ref().map(|l| format!("**{}**", md(&l.label()))).unwrap_or_default(),
                d.external_destinations.to_string(),
                d.alerts.to_string(),
            ]
        }),
    );
    out.push_str("## Destinations outside the site\n\n");
    if r.external.is_empty() {
        out.push_str("No device opened a flow to an address outside private space.\n\n");
    } else {
        md_table(
            &mut out,
            &[
                "Device",
                "Destination",
                "Name",
                "Ports",
                "Flows",
                "Sent",
                "Received",
                "First seen",
                "Last seen",
            ],
            r.external.iter().map(|e| {
                vec![
                    md(&e.device),
                    md(&e.destination),
                    o(&e.name),
                    md(&e.ports.join(", ")),
                    e.flows.to_string(),
                    bytes(e.bytes_sent),
                    bytes(e.bytes_received),
                    md(&when_str(&e.first_seen)),
                    md(&when_str(&e.last_seen)),
                ]
            }),
        );
    }
    out.push_str("## Vendor cloud features in use\n\n");
    if r.journal.is_none() {
        out.push_str("No alert journal was given (`--alerts`): cloud use is read from its alerts of category `cloud`.\n\n");
    } else if r.cloud.is_empty() {
        out.push_str("No alert of category `cloud` in the journal.\n\n");
    } else {
        md_table(
            &mut out,
            &["Device", "Feature (rule)", "Alerts", "First", "Last"],
            r.cloud.iter().map(|c| {
                vec![
                    md(&c.device),
                    format!("{} ({})", md(&c.rule_name), md(&c.rule_id)),
                    c.alerts.to_string(),
                    md(&when_str(&c.first)),
                    md(&when_str(&c.last)),
                ]
            }),
        );
    }
    out.push_str("## Alerts by rule\n\n");
    md_table(
        &mut out,
        &["Severity", "Rule", "Category", "Alerts", "Devices"],
        r.alerts.iter().map(|a| {
            vec![
                md(&a.severity),
                format!("{} ({})", md(&a.rule_name), md(&a.rule_id)),
                md(&a.category),
                a.alerts.to_string(),
                a.devices.to_string(),
            ]
        }),
    );
    out
}

pub fn render(r: &Report, format: Format) -> anyhow::Result<String> {
    Ok(match format {
        Format::Html => html(r),
        Format::Md => markdown(r),
        Format::Json => serde_json::to_string_pretty(r)? + "\n",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_values_cannot_fetch_link_or_format() {
        let v = md("![x](https://attacker.example/p.png) [click](https://x) *b* <img src=x> a|b\nc");
        assert!(!v.contains("](") && !v.contains("<img") && !v.contains('\n'), "{v}");
        assert_eq!(md("DS-2CD2143G2-I"), "DS-2CD2143G2-I");
        assert_eq!(md("192.168.10.11"), "192.168.10.11");
        assert_eq!(md("a|b"), "a\\|b");
    }
}
