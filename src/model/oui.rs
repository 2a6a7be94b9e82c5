//! MAC address → vendor, from the IEEE registry table in `data/oui.tsv` (made by `scripts/gen-oui`).
//!
//! The table is committed rather than generated at build time so a build needs no system package;
//! it is parsed once, on first use, into three sorted arrays (MA-S, MA-M, MA-L) searched longest
//! prefix first.

use std::sync::OnceLock;

static TABLE_TEXT: &str = include_str!("../../data/oui.tsv");

/// A registry entry: the organisation as registered, and the short vendor name used in labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vendor {
    pub organization: &'static str,
    pub short: &'static str,
}

struct Table {
    /// (prefix value, organisation) sorted by prefix; 36-, 28- and 24-bit blocks.
    ma_s: Vec<(u64, &'static str)>,
    ma_m: Vec<(u64, &'static str)>,
    ma_l: Vec<(u64, &'static str)>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = Table { ma_s: Vec::new(), ma_m: Vec::new(), ma_l: Vec::new() };
        for line in TABLE_TEXT.lines() {
            if line.starts_with('#') {
                continue;
            }
            let Some((hex, org)) = line.split_once('\t') else {
                continue;
            };
            let Ok(value) = u64::from_str_radix(hex, 16) else {
                continue;
            };
            match hex.len() {
                9 => t.ma_s.push((value, org)),
                7 => t.ma_m.push((value, org)),
                6 => t.ma_l.push((value, org)),
                _ => {}
            }
        }
        for v in [&mut t.ma_s, &mut t.ma_m, &mut t.ma_l] {
            v.sort_unstable_by_key(|e| e.0);
        }
        t
    })
}

fn find(v: &[(u64, &'static str)], key: u64) -> Option<&'static str> {
    v.binary_search_by_key(&key, |e| e.0).ok().map(|i| v[i].1)
}

/// Looks up the organisation that registered the MAC's prefix. Locally administered and
/// multicast addresses have no registered owner.
pub fn lookup(mac: [u8; 6]) -> Option<Vendor> {
    if mac[0] & 0x03 != 0 {
        return None;
    }
    let v = mac.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    let t = table();
    let org = find(&t.ma_s, v >> 12).or_else(|| find(&t.ma_m, v >> 20)).or_else(|| find(&t.ma_l, v >> 24))?;
    Some(Vendor { organization: org, short: short_name(org) })
}

/// Camera and network vendors are known by a short name in dashboards; the registry spells them
/// many ways ("Hangzhou Hikvision Digital Technology Co.,Ltd.", "AXIS COMMUNICATIONS AB").
const SHORT_NAMES: &[(&str, &str)] = &[
    ("hikvision", "Hikvision"),
    ("ezviz", "EZVIZ"),
    ("dahua", "Dahua"),
    ("axis communications", "Axis"),
    ("hanwha", "Hanwha"),
    ("samsung techwin", "Hanwha"),
    ("uniview", "Uniview"),
    ("zhejiang uniview", "Uniview"),
    ("vivotek", "Vivotek"),
    ("bosch security", "Bosch"),
    ("mobotix", "Mobotix"),
    ("avigilon", "Avigilon"),
    ("hanwha vision", "Hanwha"),
    ("reolink", "Reolink"),
    ("tp-link", "TP-Link"),
    ("d-link", "D-Link"),
    ("edimax", "Edimax"),
    ("panasonic", "Panasonic"),
    ("sony", "Sony"),
    ("cisco", "Cisco"),
    ("juniper", "Juniper"),
    ("ubiquiti", "Ubiquiti"),
    ("milesight", "Milesight"),
    ("tiandy", "Tiandy"),
    ("amazon", "Amazon"),
    ("huawei", "Huawei"),
];

/// The short vendor name for an organisation: a known name, else the organisation itself.
pub fn short_name(org: &'static str) -> &'static str {
    let lower = org.to_ascii_lowercase();
    SHORT_NAMES.iter().find(|(needle, _)| lower.contains(needle)).map_or(org, |(_, short)| short)
}

/// The short vendor name for a vendor string from any source (ONVIF `Manufacturer`, a banner):
/// a known name, else the string without corporate suffixes.
pub fn short_vendor(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if let Some((_, short)) = SHORT_NAMES.iter().find(|(needle, _)| lower.contains(needle)) {
        return (*short).to_string();
    }
    name.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_vendors_resolve_to_short_names() {
        let hik = lookup([0x44, 0x47, 0xcc, 1, 2, 3]).map(|v| v.short);
        assert_eq!(hik, Some("Hikvision"));
        let dahua = lookup([0x08, 0xed, 0xed, 9, 9, 9]).map(|v| v.short);
        assert_eq!(dahua, Some("Dahua"));
        let axis = lookup([0x00, 0x40, 0x8c, 0, 0, 1]).map(|v| v.short);
        assert_eq!(axis, Some("Axis"));
    }

    #[test]
    fn longest_prefix_wins() {
        // 70:B3:D5 is the IEEE's MA-S pool: the 36-bit block owner must win over the MA-L holder.
        let Some(ma_s) = table().ma_s.first().copied() else {
            panic!("MA-S table is empty");
        };
        let v = ma_s.0 << 12;
        let mac: [u8; 6] = std::array::from_fn(|i| (v >> (40 - 8 * i)) as u8);
        assert_eq!(lookup(mac).map(|v| v.organization), Some(ma_s.1));
    }

    #[test]
    fn local_and_multicast_have_no_vendor() {
        assert_eq!(lookup([0x02, 0x42, 0xac, 0x11, 0, 2]), None);
        assert_eq!(lookup([0x01, 0x00, 0x5e, 0x7f, 0xff, 0xfa]), None);
    }
}
