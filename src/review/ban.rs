//! Devices from vendors named in procurement bans, and the signal that says so.
//!
//! Section 889 of the US National Defense Authorization Act for FY2019 (and the FCC's Covered
//! List that follows it) names Huawei, ZTE, Hytera, Hikvision and Dahua "or any subsidiary or
//! affiliate". Their cameras are also sold under other names: the companies' own consumer and
//! value brands (Hikvision's EZVIZ, HiLook and HiWatch; Dahua's Imou; Lorex was Dahua's from
//! 2018 to 2023) and relabelled OEM products (LTS and Annke are widely reported as Hikvision
//! OEM, Amcrest as Dahua OEM). A device is matched by what it says about itself and what its
//! MAC prefix says: the vendor or OEM brand it reported (SADP `OEMInfo`, ONVIF, HTTP banners,
//! DHIP), the organisation that registered its MAC prefix, and its model numbering. Speaking
//! SADP or DHIP at all marks a device as Hikvision- or Dahua-made whatever its label, because the
//! sensor records those protocols' identity as the maker's.
//!
//! OEM relabelling is reported by the trade press, not declared by the vendors: a match on an
//! OEM brand says "reported OEM of", and a reviewer should confirm the model.

use serde::Serialize;

use crate::analysis::device::Device;
use crate::model::identity::Attr;

/// The companies Section 889 names.
pub const COVERED: &[&str] = &["Hikvision", "Dahua", "Hytera", "Huawei", "ZTE"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    /// The covered company itself.
    Maker,
    /// A subsidiary or the company's own brand.
    Brand,
    /// A relabelled product, as the trade press reports it.
    ReportedOem,
}

impl Relation {
    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Maker => "maker",
            Relation::Brand => "brand of",
            Relation::ReportedOem => "reported OEM of",
        }
    }
}

/// Brand names (matched as whole words, case-insensitively) and whose they are.
const BRANDS: &[(&str, &str, &str, Relation)] = &[
    ("hikvision", "Hikvision", "Hikvision", Relation::Maker),
    ("ezviz", "EZVIZ", "Hikvision", Relation::Brand),
    ("hilook", "HiLook", "Hikvision", Relation::Brand),
    ("hiwatch", "HiWatch", "Hikvision", Relation::Brand),
    ("hikrobot", "Hikrobot", "Hikvision", Relation::Brand),
    ("lts", "LTS", "Hikvision", Relation::ReportedOem),
    ("lt security", "LTS", "Hikvision", Relation::ReportedOem),
    ("annke", "Annke", "Hikvision", Relation::ReportedOem),
    ("dahua", "Dahua", "Dahua", Relation::Maker),
    ("imou", "Imou", "Dahua", Relation::Brand),
    ("lorex", "Lorex", "Dahua", Relation::Brand),
    ("amcrest", "Amcrest", "Dahua", Relation::ReportedOem),
    ("hytera", "Hytera", "Hytera", Relation::Maker),
    ("huawei", "Huawei", "Huawei", Relation::Maker),
    ("hisilicon", "HiSilicon", "Huawei", Relation::Brand),
    ("zte", "ZTE", "ZTE", Relation::Maker),
];

/// Model numbering that only one covered maker uses (prefix, case-insensitive).
const MODELS: &[(&str, &str, &str)] = &[
    ("DS-2CD", "Hikvision", "Hikvision"),
    ("DS-2DE", "Hikvision", "Hikvision"),
    ("DS-2DF", "Hikvision", "Hikvision"),
    ("DS-2CE", "Hikvision", "Hikvision"),
    ("DS-76", "Hikvision", "Hikvision"),
    ("DS-77", "Hikvision", "Hikvision"),
    ("DS-96", "Hikvision", "Hikvision"),
    ("IDS-2CD", "Hikvision", "Hikvision"),
    ("CS-C", "EZVIZ", "Hikvision"),
    ("DH-IPC", "Dahua", "Dahua"),
    ("IPC-HDW", "Dahua", "Dahua"),
    ("IPC-HFW", "Dahua", "Dahua"),
    ("IPC-HDBW", "Dahua", "Dahua"),
    ("DHI-", "Dahua", "Dahua"),
    ("SD49", "Dahua", "Dahua"),
    ("SD59", "Dahua", "Dahua"),
    ("NVR4", "Dahua", "Dahua"),
    ("NVR5", "Dahua", "Dahua"),
    ("IPC-F22", "Imou", "Dahua"),
];

/// Why a device is counted as a covered vendor's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed {
    /// The covered company (one of [`COVERED`]).
    pub company: &'static str,
    /// The name the device goes by (the company, or its brand or OEM label).
    pub brand: String,
    pub relation: Relation,
    /// Every signal that matched, e.g. `vendor "EZVIZ" (onvif)`, `MAC prefix: Hangzhou …`.
    pub signals: Vec<String>,
}

impl Listed {
    /// "EZVIZ (brand of Hikvision)", or "Hikvision".
    pub fn label(&self) -> String {
        if self.relation == Relation::Maker {
            self.company.to_string()
        } else {
            format!("{} ({} {})", self.brand, self.relation.as_str(), self.company)
        }
    }
}

/// Whether `needle` occurs in `hay` as whole words (letters and digits around it end a word).
fn has_words(hay: &str, needle: &str) -> bool {
    let hay = hay.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = hay[from..].find(needle) {
        let start = from + i;
        let end = start + needle.len();
        let before = hay[..start].chars().next_back().is_none_or(|c| !c.is_ascii_alphanumeric());
        let after = hay[end..].chars().next().is_none_or(|c| !c.is_ascii_alphanumeric());
        if before && after {
            return true;
        }
        from = start + needle.len().max(1);
        if from >= hay.len() {
            break;
        }
    }
    false
}

fn brand_of(text: &str) -> Option<(&'static str, &'static str, Relation)> {
    BRANDS
        .iter()
        .find(|(needle, ..)| has_words(text, needle))
        .map(|(_, brand, company, rel)| (*brand, *company, *rel))
}

/// The covered company a device belongs to, with every signal that says so; `None` when no
/// signal names one.
pub fn classify(d: &Device) -> Option<Listed> {
    // (brand, company, relation, signal), strongest signals first: what the device says it is
    // sold as, then what it says it is, then its MAC prefix, then its model numbering.
    let mut hits: Vec<(&'static str, &'static str, Relation, String)> = Vec::new();
    let attr = |a: &Option<Attr>| a.as_ref().map(|a| (a.value.clone(), a.source.as_str()));
    if let Some((v, src)) = attr(&d.identity.oem) {
        if let Some((b, c, r)) = brand_of(&v) {
            hits.push((b, c, r, format!("OEM \"{v}\" ({src})")));
        }
    }
    if let Some((v, src)) = attr(&d.identity.vendor) {
        if let Some((b, c, r)) = brand_of(&v) {
            hits.push((b, c, r, format!("vendor \"{v}\" ({src})")));
        }
    }
    if let Some(org) = &d.organization {
        if let Some((b, c, r)) = brand_of(org) {
            hits.push((b, c, r, format!("MAC prefix registered to {org}")));
        }
    }
    if let Some((v, src)) = attr(&d.identity.model) {
        let upper = v.to_ascii_uppercase();
        if let Some((_, b, c)) = MODELS.iter().find(|(p, ..)| upper.starts_with(p)) {
            let r = if b == c { Relation::Maker } else { Relation::Brand };
            hits.push((b, c, r, format!("model \"{v}\" ({src}) is {b} numbering")));
        } else if let Some((b, c, r)) = brand_of(&v) {
            hits.push((b, c, r, format!("model \"{v}\" ({src})")));
        }
    }
    if let Some((v, src)) = attr(&d.identity.hostname) {
        if let Some((b, c, r)) = brand_of(&v) {
            hits.push((b, c, r, format!("host name \"{v}\" ({src})")));
        }
    }
    let (_, company, ..) = hits.first()?;
    let company = *company;
    // The name it is sold under: the first brand other than the maker's own, if any signal
    // gave one (an EZVIZ camera also carries Hikvision's MAC prefix).
    let (brand, relation) = hits
        .iter()
        .filter(|h| h.1 == company)
        .find(|h| h.2 != Relation::Maker)
        .map_or((company, Relation::Maker), |h| (h.0, h.2));
    let signals = hits.iter().filter(|h| h.1 == company).map(|h| h.3.clone()).collect();
    Some(Listed { company, brand: brand.to_string(), relation, signals })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::identity::{Identity, Source};

    fn device(vendor: Option<&str>, model: Option<&str>, oem: Option<&str>, org: Option<&str>) -> Device {
        let attr = |v: Option<&str>, source| {
            v.map(|v| Attr { value: v.to_string(), source, first_seen: 0, last_seen: 0 })
        };
        let mut d = Device::new("192.168.1.20".parse().unwrap_or_else(|e| panic!("{e}")), 0);
        d.organization = org.map(str::to_string);
        d.identity = Identity {
            vendor: attr(vendor, Source::Onvif),
            model: attr(model, Source::Onvif),
            oem: attr(oem, Source::Sadp),
            ..Identity::default()
        };
        d
    }

    #[test]
    fn makers_brands_and_oem_labels_are_told_apart() {
        let hik = classify(&device(Some("Hikvision"), Some("DS-2CD2143G2-I"), None, None));
        let hik = hik.unwrap_or_else(|| panic!("Hikvision not listed"));
        assert_eq!((hik.company, hik.relation), ("Hikvision", Relation::Maker));
        assert_eq!(hik.signals.len(), 2, "{:?}", hik.signals);

        let ezviz = classify(&device(
            Some("EZVIZ"),
            Some("CS-C6N"),
            None,
            Some("Hangzhou Hikvision Digital Technology Co.,Ltd."),
        ));
        let ezviz = ezviz.unwrap_or_else(|| panic!("EZVIZ not listed"));
        assert_eq!(ezviz.label(), "EZVIZ (brand of Hikvision)");
        assert_eq!(ezviz.signals.len(), 3, "{:?}", ezviz.signals);

        // SADP says Hikvision made it; its OEM field says what it is sold as.
        let lts = classify(&device(Some("Hikvision"), None, Some("LTS"), None));
        assert_eq!(lts.map(|l| l.label()).as_deref(), Some("LTS (reported OEM of Hikvision)"));

        let lorex = classify(&device(Some("Lorex Technology"), Some("LNB4321"), None, None));
        assert_eq!(lorex.map(|l| (l.company, l.brand)), Some(("Dahua", "Lorex".to_string())));
    }

    #[test]
    fn other_vendors_and_lookalike_words_are_not_listed() {
        assert_eq!(
            classify(&device(Some("Axis"), Some("M3106-L Mk II"), None, Some("Axis Communications AB"))),
            None
        );
        // "lts" inside a word, "zte" inside a word: not the brands.
        assert_eq!(classify(&device(Some("Defaults Inc"), Some("Aztec 2"), None, None)), None);
        assert_eq!(classify(&device(None, None, None, None)), None);
        let zte = classify(&device(None, None, None, Some("zte corporation")));
        assert_eq!(zte.map(|l| l.company), Some("ZTE"));
    }
}
