//! `camwatch mud`: a Manufacturer Usage Description (RFC 8520) for a device or a model, built
//! from the destinations the device(s) used while the sensor learned, so a site can enforce
//! them on its switches and firewalls.
//!
//! The file is the `ietf-mud:mud` container with two policies (`from-device-policy`,
//! `to-device-policy`) naming access lists of the `ietf-access-control-list:acls` container
//! (RFC 8519). Per destination:
//!
//! - a peer with a name (from DNS, SNI or Host) is matched by name (`ietf-acldns:dst-dnsname`
//!   from the device, `src-dnsname` to it), as RFC 8520 §8 recommends, since cloud addresses move;
//! - a public peer without a name by its address (`destination-ipv4-network` /32 or
//!   `destination-ipv6-network` /128);
//! - a peer on site by the MUD abstraction `local-networks`.
//!
//! TCP entries carry `ietf-mud:direction-initiated` so only connections the device opened are
//! allowed; the to-device list lets the replies back in. Services the device answered on
//! become to-device entries from `local-networks`. Each list ends with nothing else: what is
//! not listed is denied, as MUD intends.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{json, Map, Value};

use crate::analysis::device::Device;
use crate::model::netset::NetSet;
use crate::model::packet::{PROTO_TCP, PROTO_UDP};
use crate::model::time::{rfc3339, Micros};
use crate::review::estate::{outside, vendor_of};

/// What to build a MUD file from.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the file will be published (`mud-url`: RFC 8520 requires https).
    pub url: String,
    /// Only destinations in use within this window (the learning period).
    pub since: Option<Micros>,
    pub until: Option<Micros>,
    /// `last-update`.
    pub now: Micros,
    /// Hours a controller may cache the file (`cache-validity`, 1..=168).
    pub cache_validity: u8,
    /// The site's own networks: peers inside them are `local-networks`.
    pub site: NetSet,
}

/// Whom the file describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Peer<'a> {
    Name(&'a str),
    Addr(IpAddr),
    Local,
}

/// Why a MUD file could not be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MudError {
    #[error("no devices to describe")]
    NoDevices,
    #[error("--url must be an https URL (RFC 8520 §3.5), not {0:?}")]
    Url(String),
}

fn acl_name(base: &str, v6: bool, to: bool) -> String {
    format!("{base}-v{}{}", if v6 { 6 } else { 4 }, if to { "to" } else { "fr" })
}

/// A short, ACL-safe name stem for the device or model.
fn stem(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    out.truncate(48);
    format!("mud-{out}")
}

/// One access-control entry.
fn ace(
    name: String,
    peer: Peer<'_>,
    to_device: bool,
    v6: bool,
    proto: u8,
    port: u16,
    service: bool,
) -> Value {
    let mut l3 = Map::new();
    let mut extra = Map::new();
    let (dns_key, net_key) = match (to_device, v6) {
        (false, false) => ("ietf-acldns:dst-dnsname", "destination-ipv4-network"),
        (true, false) => ("ietf-acldns:src-dnsname", "source-ipv4-network"),
        (false, true) => ("ietf-acldns:dst-dnsname", "destination-ipv6-network"),
        (true, true) => ("ietf-acldns:src-dnsname", "source-ipv6-network"),
    };
    match peer {
        Peer::Name(n) => {
            l3.insert(dns_key.into(), json!(n));
        }
        Peer::Addr(ip) => {
            l3.insert(net_key.into(), json!(format!("{ip}/{}", if v6 { 128 } else { 32 })));
        }
        Peer::Local => {
            extra.insert("ietf-mud:mud".into(), json!({ "local-networks": [null] }));
        }
    }
    l3.insert("protocol".into(), json!(proto));
    let mut matches = Map::new();
    matches.insert(if v6 { "ipv6" } else { "ipv4" }.into(), Value::Object(l3));
    // The peer's port is the destination port from the device and the source port back to it;
    // a service of the device's own is the destination port to it.
    let port_key = if to_device && !service { "source-port" } else { "destination-port" };
    let l4 = json!({ port_key: { "operator": "eq", "port": port } });
    match proto {
        PROTO_TCP => {
            let mut tcp = l4.as_object().cloned().unwrap_or_default();
            let initiated = if service { "to-device" } else { "from-device" };
            tcp.insert("ietf-mud:direction-initiated".into(), json!(initiated));
            matches.insert("tcp".into(), Value::Object(tcp));
        }
        PROTO_UDP => {
            matches.insert("udp".into(), l4);
        }
        _ => {}
    }
    matches.extend(extra);
    json!({ "name": name, "matches": matches, "actions": { "forwarding": "accept" } })
}

/// The MUD file for `devices` (one device, or every device of a model): `title` names them in
/// `systeminfo`.
pub fn build(devices: &[&Device], title: &str, opts: &Options) -> Result<Value, MudError> {
    let first = devices.first().ok_or(MudError::NoDevices)?;
    if !opts.url.starts_with("https://") {
        return Err(MudError::Url(opts.url.clone()));
    }
    let in_window = |first_seen: Micros, last_seen: Micros| {
        opts.since.is_none_or(|t| last_seen >= t) && opts.until.is_none_or(|t| first_seen <= t)
    };
    // (peer, v6, proto, port) the devices opened flows to, and services they answered on.
    let mut out_rules: BTreeMap<(Peer<'_>, bool, u8, u16), ()> = BTreeMap::new();
    let mut services: BTreeMap<(bool, u8, u16), ()> = BTreeMap::new();
    for d in devices {
        for (dest, e) in &d.destinations {
            if !in_window(e.first_seen, e.last_seen) {
                continue;
            }
            let v6 = dest.is_ipv6();
            let peer = if !outside(&opts.site, *dest) {
                Peer::Local
            } else if let Some(n) = e.name.as_deref().filter(|n| is_dns_name(n)) {
                Peer::Name(n)
            } else {
                Peer::Addr(*dest)
            };
            for (proto, port) in e.ports.iter().chain(std::iter::once(&(e.proto, e.port))) {
                if matches!(*proto, PROTO_TCP | PROTO_UDP) {
                    out_rules.insert((peer, v6, *proto, *port), ());
                }
            }
        }
        for ((proto, port), s) in &d.services {
            if in_window(s.first_seen, s.last_seen) && matches!(*proto, PROTO_TCP | PROTO_UDP) {
                services.insert((d.ip.is_ipv6(), *proto, *port), ());
            }
        }
    }
    let base = stem(title);
    let mut lists: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (i, (peer, v6, proto, port)) in out_rules.keys().enumerate() {
        lists.entry(acl_name(&base, *v6, false)).or_default().push(ace(
            format!("cl{i}-frdev"),
            *peer,
            false,
            *v6,
            *proto,
            *port,
            false,
        ));
        lists.entry(acl_name(&base, *v6, true)).or_default().push(ace(
            format!("cl{i}-todev"),
            *peer,
            true,
            *v6,
            *proto,
            *port,
            false,
        ));
    }
    for (i, (v6, proto, port)) in services.keys().enumerate() {
        lists.entry(acl_name(&base, *v6, true)).or_default().push(ace(
            format!("svc{i}-todev"),
            Peer::Local,
            true,
            *v6,
            *proto,
            *port,
            true,
        ));
        // The replies of a service go back out: from the device's port to local networks.
        let mut back = ace(format!("svc{i}-frdev"), Peer::Local, false, *v6, *proto, *port, true);
        if let Some(l4) = back["matches"].get_mut(if *proto == PROTO_TCP { "tcp" } else { "udp" }) {
            if let Some(o) = l4.as_object_mut() {
                if let Some(p) = o.remove("destination-port") {
                    o.insert("source-port".into(), p);
                }
            }
        }
        lists.entry(acl_name(&base, *v6, false)).or_default().push(back);
    }
    let policy = |to: bool| {
        let names: Vec<Value> = lists
            .keys()
            .filter(|n| n.ends_with(if to { "to" } else { "fr" }))
            .map(|n| json!({ "name": n }))
            .collect();
        json!({ "access-lists": { "access-list": names } })
    };
    let mut mud = Map::new();
    mud.insert("mud-version".into(), json!(1));
    mud.insert("mud-url".into(), json!(opts.url));
    mud.insert("last-update".into(), json!(rfc3339(opts.now)));
    mud.insert("cache-validity".into(), json!(opts.cache_validity.clamp(1, 168)));
    mud.insert("is-supported".into(), json!(true));
    mud.insert(
        "systeminfo".into(),
        json!(format!("{title}: the destinations camwatch saw in use (learned from the network)")),
    );
    if let Some(v) = vendor_of(first) {
        mud.insert("mfg-name".into(), json!(v));
    }
    if let Some(m) = first.model() {
        mud.insert("model-name".into(), json!(m));
    }
    if let Some(f) = first.firmware.current().map(|e| e.version.clone()) {
        if devices.len() == 1 {
            mud.insert("firmware-rev".into(), json!(f));
        }
    }
    mud.insert("from-device-policy".into(), policy(false));
    mud.insert("to-device-policy".into(), policy(true));
    let acls: Vec<Value> = lists
        .into_iter()
        .map(|(name, aces)| {
            let kind = if name.contains("-v6") { "ipv6-acl-type" } else { "ipv4-acl-type" };
            json!({ "name": name, "type": kind, "aces": { "ace": aces } })
        })
        .collect();
    Ok(json!({
        "ietf-mud:mud": Value::Object(mud),
        "ietf-access-control-list:acls": { "acl": acls },
    }))
}

/// A name ietf-inet-types' `domain-name` accepts (labels of letters, digits, `-` and `_`, not
/// starting with `-` nor ending with `-` or `_`; 253 bytes at most), and not an address: names
/// the network gave us are not trusted to be names.
fn is_dns_name(n: &str) -> bool {
    let n = n.strip_suffix('.').unwrap_or(n);
    !n.is_empty()
        && n.len() <= 253
        && n.parse::<IpAddr>().is_err()
        && n.split('.').all(|l| {
            let b = l.as_bytes();
            match (b.first(), b.last()) {
                (Some(f), Some(z)) => {
                    b.len() <= 63
                        && (f.is_ascii_alphanumeric() || *f == b'_')
                        && z.is_ascii_alphanumeric()
                        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
                }
                _ => false,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::device::{Destination, Service};

    fn dest(name: Option<&str>, port: u16, proto: u8, first: Micros) -> Destination {
        Destination {
            name: name.map(str::to_string),
            port,
            proto,
            first_seen: first,
            last_seen: first + 10,
            flows: 1,
            ports: std::collections::BTreeSet::from([(proto, port)]),
            bytes_sent: 10,
            bytes_received: 20,
        }
    }

    fn camera() -> Device {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap_or_else(|e| panic!("{e}"));
        let mut d = Device::new(ip("192.168.10.11"), 0);
        d.destinations.insert(ip("47.91.1.2"), dest(Some("litedev.hik-connect.com"), 443, PROTO_TCP, 100));
        d.destinations.insert(ip("203.0.113.7"), dest(None, 123, PROTO_UDP, 100));
        // The gateway answers DNS and NTP: both are kept.
        let mut gw = dest(None, 53, PROTO_UDP, 100);
        gw.ports.insert((PROTO_UDP, 123));
        d.destinations.insert(ip("192.168.10.1"), gw);
        d.destinations.insert(ip("198.51.100.9"), dest(Some("bad name"), 8000, PROTO_TCP, 5_000));
        d.services.insert((PROTO_TCP, 554), Service { first_seen: 100, last_seen: 200, flows: 3 });
        d
    }

    fn opts() -> Options {
        Options {
            url: "https://mud.example.org/cam.json".into(),
            since: None,
            until: None,
            now: 0,
            cache_validity: 48,
            site: NetSet::private(),
        }
    }

    #[test]
    fn destinations_become_entries_by_name_address_or_local_networks() {
        let d = camera();
        let mud = build(&[&d], "Camera 192.168.10.11", &opts()).unwrap_or_else(|e| panic!("{e}"));
        let text = mud.to_string();
        assert!(text.contains("\"ietf-acldns:dst-dnsname\":\"litedev.hik-connect.com\""), "{text}");
        assert!(text.contains("\"destination-ipv4-network\":\"203.0.113.7/32\""), "{text}");
        // A "name" with a space is not a DNS name: matched by address.
        assert!(text.contains("\"destination-ipv4-network\":\"198.51.100.9/32\""), "{text}");
        assert!(text.contains("\"local-networks\":[null]"), "{text}");
        let acls = mud["ietf-access-control-list:acls"]["acl"].as_array().cloned().unwrap_or_default();
        assert_eq!(acls.len(), 2);
        let from =
            &acls.iter().find(|a| a["name"] == "mud-camera-192-168-10-11-v4fr").cloned().unwrap_or_default();
        // Four destinations (the gateway on two ports) and the RTSP service's replies.
        let aces = from["aces"]["ace"].as_array().cloned().unwrap_or_default();
        assert_eq!(aces.len(), 6);
        let first_list = &mud["ietf-mud:mud"]["from-device-policy"]["access-lists"]["access-list"][0]["name"];
        assert_eq!(first_list, &from["name"]);
        let local_udp: Vec<u64> = aces
            .iter()
            .filter(|a| !a["matches"]["ietf-mud:mud"].is_null() && !a["matches"]["udp"].is_null())
            .filter_map(|a| a["matches"]["udp"]["destination-port"]["port"].as_u64())
            .collect();
        assert_eq!(local_udp, [53, 123]);
        // Connections the device opens are from-device; to its own service, to-device, in both
        // lists; replies of the service leave from its port.
        let to =
            acls.iter().find(|a| a["name"] == "mud-camera-192-168-10-11-v4to").cloned().unwrap_or_default();
        for a in aces.iter().chain(to["aces"]["ace"].as_array().into_iter().flatten()) {
            let name = a["name"].as_str().unwrap_or_default();
            let tcp = &a["matches"]["tcp"];
            if tcp.is_null() {
                assert!(a["matches"]["udp"]["ietf-mud:direction-initiated"].is_null());
                continue;
            }
            let want = if name.starts_with("svc") { "to-device" } else { "from-device" };
            assert_eq!(tcp["ietf-mud:direction-initiated"], want, "{a}");
        }
        let svc_back = aces.iter().find(|a| a["name"] == "svc0-frdev").cloned().unwrap_or_default();
        assert_eq!(svc_back["matches"]["tcp"]["source-port"]["port"], 554);
        let svc_in =
            to["aces"]["ace"].as_array().and_then(|v| v.iter().find(|a| a["name"] == "svc0-todev").cloned());
        assert_eq!(svc_in.unwrap_or_default()["matches"]["tcp"]["destination-port"]["port"], 554);
    }

    #[test]
    fn only_names_the_yang_domain_name_type_accepts_are_used_as_names() {
        for good in ["litedev.hik-connect.com", "a.b", "_dmarc.example.org", "xn--bcher-kva.example.", "a1"] {
            assert!(is_dns_name(good), "{good}");
        }
        for bad in [
            "bad name",
            "-x.example",
            "x-.example",
            "x_.example",
            "a..b",
            "",
            "203.0.113.7",
            "::1",
            "é.example",
        ] {
            assert!(!is_dns_name(bad), "{bad}");
        }
        assert!(!is_dns_name(&"a".repeat(64)));
    }

    #[test]
    fn a_public_peer_in_the_sites_own_networks_is_local() {
        let d = camera();
        let mut site = NetSet::private();
        site.extend(&crate::model::netset::resolve(&["198.51.100.0/24".to_string()]).unwrap_or_default());
        let text =
            build(&[&d], "cam", &Options { site, ..opts() }).unwrap_or_else(|e| panic!("{e}")).to_string();
        assert!(!text.contains("198.51.100.9"), "{text}");
        assert!(text.contains("203.0.113.7/32"), "{text}");
    }

    #[test]
    fn the_learning_window_and_the_url_are_honoured() {
        let d = camera();
        let o = Options { until: Some(1_000), ..opts() };
        let text = build(&[&d], "cam", &o).unwrap_or_else(|e| panic!("{e}")).to_string();
        assert!(!text.contains("198.51.100.9"), "first used after the window: {text}");
        let o = Options { url: "http://x/".into(), ..opts() };
        assert_eq!(build(&[&d], "cam", &o), Err(MudError::Url("http://x/".into())));
        assert_eq!(build(&[], "cam", &opts()), Err(MudError::NoDevices));
    }
}
