//! `camwatch inventory`: the devices in the state database as a table, JSON or CSV.

use std::io::Write;
use std::path::Path;

use serde_json::json;

use crate::analysis::device::Device;
use crate::model::event::format_mac;
use crate::model::time::rfc3339;
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

fn attr(d: &Option<crate::model::identity::Attr>) -> (String, String) {
    d.as_ref().map_or((String::new(), String::new()), |a| (a.value.clone(), a.source.as_str().to_string()))
}

fn destinations(d: &Device) -> Vec<String> {
    d.destinations
        .iter()
        .map(|(ip, e)| match &e.name {
            Some(n) => format!("{ip}:{} ({n})", e.port),
            None => format!("{ip}:{}", e.port),
        })
        .collect()
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes the inventory of the state database at `path`.
pub fn print(path: &Path, format: Format, out: &mut dyn Write) -> anyhow::Result<()> {
    anyhow::ensure!(path.exists(), "{}: no state database (run camwatch with --state first)", path.display());
    let devices =
        Store::open_read_only(path).map_err(anyhow::Error::msg)?.load().map_err(anyhow::Error::msg)?;
    match format {
        Format::Json => {
            let list: Vec<_> = devices
                .iter()
                .map(|d| {
                    json!({
                        "ip": d.ip,
                        "mac": d.mac.map(format_mac),
                        "organization": d.organization,
                        "identity": d.identity,
                        "firmware_history": d.firmware.entries,
                        "past_addresses": d.past_addresses.iter().map(|p| json!({
                            "ip": p.ip,
                            "first_seen": rfc3339(p.first_seen),
                            "until": rfc3339(p.until),
                        })).collect::<Vec<_>>(),
                        "first_seen": rfc3339(d.first_seen),
                        "last_seen": rfc3339(d.last_seen),
                        "destinations": destinations(d),
                    })
                })
                .collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
        }
        Format::Csv => {
            writeln!(out, "ip,mac,vendor,vendor_source,model,model_source,serial,serial_source,firmware,firmware_source,first_seen,last_seen,destinations")?;
            for d in &devices {
                let (v, vs) = attr(&d.identity.vendor);
                let (m, ms) = attr(&d.identity.model);
                let (s, ss) = attr(&d.identity.serial);
                let (f, fs) = attr(&d.identity.firmware);
                let row = [
                    d.ip.to_string(),
                    d.mac.map(format_mac).unwrap_or_default(),
                    v,
                    vs,
                    m,
                    ms,
                    s,
                    ss,
                    f,
                    fs,
                    rfc3339(d.first_seen),
                    rfc3339(d.last_seen),
                    destinations(d).join(" "),
                ];
                let row: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
                writeln!(out, "{}", row.join(","))?;
            }
        }
        Format::Table => {
            writeln!(
                out,
                "{:<16} {:<17} {:<12} {:<22} {:<28} {:<20} DESTINATIONS",
                "IP", "MAC", "VENDOR", "MODEL", "FIRMWARE (SOURCE)", "LAST SEEN"
            )?;
            for d in &devices {
                let (f, fs) = attr(&d.identity.firmware);
                let firmware = if f.is_empty() { String::new() } else { format!("{f} ({fs})") };
                writeln!(
                    out,
                    "{:<16} {:<17} {:<12} {:<22} {:<28} {:<20} {}",
                    d.ip.to_string(),
                    d.mac.map(format_mac).unwrap_or_default(),
                    d.vendor().unwrap_or("-").chars().take(12).collect::<String>(),
                    d.model().unwrap_or("-").chars().take(22).collect::<String>(),
                    firmware,
                    rfc3339(d.last_seen).get(..19).unwrap_or(""),
                    d.destinations.len()
                )?;
            }
        }
    }
    Ok(())
}
