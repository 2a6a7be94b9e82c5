//! DHCPv4 message parsing into EVE-style records: who a device says it is (host name, vendor
//! class such as "udhcp 1.22.1", client id, requested parameters) and what the server gave it.
//!
//! Field names and renderings follow Suricata's EVE `dhcp` log with `extended: true`, checked
//! against suricata-verify `dhcp-eve-extended` and `dhcp-eve-extended-option-60`:
//! - `client_ip` and `assigned_ip` are always present (0.0.0.0 included), `relay_ip` and
//!   `next_server_ip` only in replies, as Suricata logs them;
//! - `client_id` is the hex of option 61 *after* its type byte ("00:11:32:17:49:f0" for
//!   `01 00 11 32 17 49 f0`), as Suricata does;
//! - `hostname` and other strings keep their bytes, trailing NUL included ("nas1\u0000"), as
//!   Suricata does (flagged with the `nul_in_string` anomaly);
//! - deliberate difference: `params` are the numeric option codes (Suricata logs names for a
//!   few well-known codes and silently drops the rest, which loses fingerprinting detail).
//!
//! dhcproto decodes the fixed BOOTP header and names message types and option codes; the
//! options area is walked here, leniently, because dhcproto stops at the first option it
//! cannot decode (a non-UTF-8 host name would hide every option after it), cannot say why,
//! and debug-asserts on some malformed options.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use dhcproto::v4::{Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Decoder};
use serde::Serialize;

/// Longest string option kept, in bytes.
pub const MAX_STRING_LEN: usize = 255;
/// Most addresses kept per list option (routers, DNS servers).
pub const MAX_ADDRESSES: usize = 64;
/// Longest client id kept, in bytes before hex encoding.
const MAX_CLIENT_ID_LEN: usize = 64;

const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
/// Fixed BOOTP header (236 bytes) plus the magic cookie.
const OPTIONS_OFFSET: usize = 240;
const CHADDR: std::ops::Range<usize> = 28..44;
const SNAME: std::ops::Range<usize> = 44..108;
const FILE: std::ops::Range<usize> = 108..236;

/// One DHCPv4 message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DhcpMessage {
    /// BOOTP op: "request" or "reply" (Suricata's `type`).
    #[serde(rename = "type")]
    pub op: String,
    /// Option 53: "discover", "offer", "request", "decline", "ack", "nak", "release",
    /// "inform", else "unknown", as Suricata writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dhcp_type: Option<String>,
    /// Transaction id (xid).
    pub id: u32,
    /// chaddr, `hlen` bytes, as "aa:bb:cc:dd:ee:ff".
    pub client_mac: String,
    /// ciaddr.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<IpAddr>,
    /// yiaddr.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assigned_ip: Option<IpAddr>,
    /// giaddr, replies only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_ip: Option<IpAddr>,
    /// siaddr, replies only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_server_ip: Option<IpAddr>,
    /// Option 12.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Option 60.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor_class_identifier: Option<String>,
    /// Option 55, the requested option codes in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<u8>,
    /// Option 61 without its type byte, hex with colons.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Option 50.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_ip: Option<IpAddr>,
    /// Option 51, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_time: Option<u32>,
    /// Option 58, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renewal_time: Option<u32>,
    /// Option 59, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebinding_time: Option<u32>,
    /// Option 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet_mask: Option<IpAddr>,
    /// Option 3.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routers: Vec<IpAddr>,
    /// Option 6.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_servers: Vec<IpAddr>,
    /// Option 15.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain_name: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<&'static str>,
}

/// Parses one DHCPv4 message (the UDP payload on ports 67/68).
pub fn parse(payload: &[u8]) -> Result<DhcpMessage, &'static str> {
    let op = match payload.first() {
        None => return Err("truncated"),
        Some(1) => "request",
        Some(2) => "reply",
        Some(_) => return Err("not_dhcp"),
    };
    if payload.len() < OPTIONS_OFFSET {
        return Err("truncated");
    }
    // Plain BOOTP (no cookie) carries nothing a camera inventory needs, and anything else on
    // these ports without the cookie is not DHCP.
    if payload.get(236..OPTIONS_OFFSET) != Some(&MAGIC_COOKIE[..]) {
        return Err("not_dhcp");
    }
    // dhcproto sees the fixed header and cookie only: its option decoder trips a
    // debug_assert on a malformed option 94 (found by the bit-flip test), and the options
    // are walked below anyway.
    let fixed = payload.get(..OPTIONS_OFFSET).ok_or("truncated")?;
    let header = Message::decode(&mut Decoder::new(fixed)).map_err(|_| "bad_header")?;
    let mut anomalies = Vec::new();
    let is_reply = matches!(header.opcode(), Opcode::BootReply);

    // Message::chaddr() slices by the wire's hlen and would panic past 16, so read it here.
    let hlen = usize::from(header.hlen());
    let hlen = if (1..=16).contains(&hlen) {
        hlen
    } else {
        note(&mut anomalies, "bad_hlen");
        6
    };
    let chaddr = payload.get(CHADDR).and_then(|c| c.get(..hlen)).unwrap_or_default();

    let mut msg = DhcpMessage {
        op: op.to_owned(),
        dhcp_type: None,
        id: header.xid(),
        client_mac: hex_colons(chaddr),
        client_ip: Some(IpAddr::V4(header.ciaddr())),
        assigned_ip: Some(IpAddr::V4(header.yiaddr())),
        relay_ip: is_reply.then_some(IpAddr::V4(header.giaddr())),
        next_server_ip: is_reply.then_some(IpAddr::V4(header.siaddr())),
        hostname: None,
        vendor_class_identifier: None,
        params: Vec::new(),
        client_id: None,
        requested_ip: None,
        lease_time: None,
        renewal_time: None,
        rebinding_time: None,
        subnet_mask: None,
        routers: Vec::new(),
        dns_servers: Vec::new(),
        domain_name: None,
        anomalies: Vec::new(),
    };

    let options_area = payload.get(OPTIONS_OFFSET..).unwrap_or_default();
    let mut options = BTreeMap::new();
    let saw_end = walk_options(options_area, &mut options, &mut anomalies);
    if !saw_end {
        note(&mut anomalies, "missing_end");
    }
    // Option 52 (overload) moves more options into the file and/or sname fields
    // (RFC 2131 §4.1: file first, then sname).
    if let Some(&[overload]) = options.get(&u8::from(OptionCode::OptionOverload)).map(Vec::as_slice) {
        note(&mut anomalies, "option_overload");
        for (bit, range) in [(1u8, FILE), (2u8, SNAME)] {
            if overload & bit != 0 {
                let area = payload.get(range).unwrap_or_default();
                walk_options(area, &mut options, &mut anomalies);
            }
        }
    }
    apply_options(&mut msg, &options, &mut anomalies);
    msg.anomalies = anomalies;
    Ok(msg)
}

/// Walks a TLV options area into `options`, concatenating repeated codes (RFC 3396).
/// Returns whether the END option was seen.
fn walk_options(area: &[u8], options: &mut BTreeMap<u8, Vec<u8>>, anomalies: &mut Vec<&'static str>) -> bool {
    let mut i = 0;
    while let Some(&code) = area.get(i) {
        match code {
            0 => i += 1, // PAD
            255 => {
                // Zero padding after END is normal; anything else is not.
                if area.get(i + 1..).is_some_and(|rest| rest.iter().any(|&b| b != 0)) {
                    note(anomalies, "trailing_bytes");
                }
                return true;
            }
            _ => {
                let Some(&len) = area.get(i + 1) else {
                    note(anomalies, "truncated_option");
                    return false;
                };
                let Some(data) = area.get(i + 2..i + 2 + usize::from(len)) else {
                    note(anomalies, "truncated_option");
                    return false;
                };
                // Total stored is bounded by the payload, as each byte is stored at most once.
                options.entry(code).or_default().extend_from_slice(data);
                i += 2 + usize::from(len);
            }
        }
    }
    false
}

fn apply_options(msg: &mut DhcpMessage, options: &BTreeMap<u8, Vec<u8>>, anomalies: &mut Vec<&'static str>) {
    for (&code, data) in options {
        match OptionCode::from(code) {
            OptionCode::MessageType => match data.as_slice() {
                [t] => msg.dhcp_type = Some(message_type_name(*t).to_owned()),
                _ => note(anomalies, "bad_option_length"),
            },
            OptionCode::Hostname => msg.hostname = Some(string_option(data, anomalies)),
            OptionCode::ClassIdentifier => msg.vendor_class_identifier = Some(string_option(data, anomalies)),
            OptionCode::DomainName => msg.domain_name = Some(string_option(data, anomalies)),
            OptionCode::ParameterRequestList => {
                // A single option holds at most 255 codes; concatenation could exceed that.
                msg.params = data.iter().copied().take(255).collect();
            }
            OptionCode::ClientIdentifier => match data.split_first() {
                Some((_type, id)) if !id.is_empty() => {
                    let keep = id.get(..MAX_CLIENT_ID_LEN).unwrap_or(id);
                    if keep.len() < id.len() {
                        note(anomalies, "client_id_truncated");
                    }
                    msg.client_id = Some(hex_colons(keep));
                }
                _ => note(anomalies, "bad_option_length"),
            },
            OptionCode::RequestedIpAddress => msg.requested_ip = one_addr(data, anomalies),
            OptionCode::SubnetMask => msg.subnet_mask = one_addr(data, anomalies),
            OptionCode::AddressLeaseTime => msg.lease_time = seconds(data, anomalies),
            OptionCode::Renewal => msg.renewal_time = seconds(data, anomalies),
            OptionCode::Rebinding => msg.rebinding_time = seconds(data, anomalies),
            OptionCode::Router => msg.routers = addr_list(data, anomalies),
            OptionCode::DomainNameServer => msg.dns_servers = addr_list(data, anomalies),
            _ => {}
        }
    }
}

/// Suricata's names for option 53; values it does not name are "unknown".
fn message_type_name(t: u8) -> &'static str {
    match MessageType::from(t) {
        MessageType::Discover => "discover",
        MessageType::Offer => "offer",
        MessageType::Request => "request",
        MessageType::Decline => "decline",
        MessageType::Ack => "ack",
        MessageType::Nak => "nak",
        MessageType::Release => "release",
        MessageType::Inform => "inform",
        _ => "unknown",
    }
}

/// Bytes as text (lossy UTF-8), NULs kept as Suricata keeps them, capped.
fn string_option(data: &[u8], anomalies: &mut Vec<&'static str>) -> String {
    if data.contains(&0) {
        note(anomalies, "nul_in_string");
    }
    let keep = data.get(..MAX_STRING_LEN).unwrap_or(data);
    if keep.len() < data.len() {
        note(anomalies, "string_truncated");
    }
    String::from_utf8_lossy(keep).into_owned()
}

fn one_addr(data: &[u8], anomalies: &mut Vec<&'static str>) -> Option<IpAddr> {
    match data {
        [a, b, c, d] => Some(IpAddr::V4(Ipv4Addr::new(*a, *b, *c, *d))),
        _ => {
            note(anomalies, "bad_option_length");
            None
        }
    }
}

fn seconds(data: &[u8], anomalies: &mut Vec<&'static str>) -> Option<u32> {
    match data {
        [a, b, c, d] => Some(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => {
            note(anomalies, "bad_option_length");
            None
        }
    }
}

fn addr_list(data: &[u8], anomalies: &mut Vec<&'static str>) -> Vec<IpAddr> {
    if data.is_empty() || data.len() % 4 != 0 {
        note(anomalies, "bad_option_length");
    }
    if data.len() / 4 > MAX_ADDRESSES {
        note(anomalies, "too_many_addresses");
    }
    data.chunks_exact(4)
        .take(MAX_ADDRESSES)
        .map(|c| IpAddr::V4(Ipv4Addr::new(c[0], c[1], c[2], c[3])))
        .collect()
}

fn hex_colons(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Records an anomaly once; the list is bounded by the number of distinct reasons.
fn note(anomalies: &mut Vec<&'static str>, what: &'static str) {
    if !anomalies.contains(&what) {
        anomalies.push(what);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A BOOTP message: the given header start (op..giaddr, 28 bytes), chaddr, zeroed
    /// sname/file, the cookie and the given options. Keeps the real samples below short:
    /// their sname and file fields are all zero on the wire.
    fn bootp(head: &str, chaddr: &str, options: &str) -> Vec<u8> {
        let mut p = unhex(head);
        assert_eq!(p.len(), 28);
        let mut hw = unhex(chaddr);
        hw.resize(16, 0);
        p.extend_from_slice(&hw);
        p.extend_from_slice(&[0; 192]);
        p.extend_from_slice(&MAGIC_COOKIE);
        p.extend_from_slice(&unhex(options));
        p
    }

    // suricata-verify dhcp-eve-extended input.pcap, frame 1: DHCPREQUEST from a NAS
    // (options then zero padding to 300 bytes, as on the wire).
    fn eve_request() -> Vec<u8> {
        let mut p = bootp(
            "01010600ef645744000000000a100104000000000000000000000000",
            "0011321749f0",
            "3501030c056e617331003707011c02030f060c3d07010011321749f0ff",
        );
        p.resize(300, 0);
        p
    }
    // Same capture, frame 2: the DHCPACK.
    fn eve_ack() -> Vec<u8> {
        bootp(
            "02010600ef645744000000000a1001040a1001040a10010100000000",
            "0011321749f0",
            "35010536040a100101330400000e103a04000006913b0400000bd70104ffff00001c040a10ffff06040a10\
             01010f07756e782e6361000c056e6173310003040a100101ff",
        )
    }
    // suricata-verify dhcp-eve-extended-option-60 input.pcap, frame 1: a Windows DHCPREQUEST.
    fn eve_option60() -> Vec<u8> {
        bootp(
            "01010600e01cc7180000000000000000000000000000000000000000",
            "28cfdadc8d76",
            "3501033d070128cfdadc8d763204c0a8016f0c0c4e69636b734d6163426f6f6b510f0000004e69636b734d\
             6163426f6f6b3c084d53465420352e30370c010f03062c2e2f1f2179f92bff",
        )
    }
    // corpus camera/shf_dlink-cam.pcap, frame 1: a D-Link DCS-8000LH camera's DHCPDISCOVER.
    fn dlink_discover() -> Vec<u8> {
        let mut p = bootp(
            "01010600238ebc6b0003000000000000000000000000000000000000",
            "b0c554435483",
            "3501013d0701b0c5544354833902024037070103060c0f1c2a3c0c756468637020312e32322e310c0a4443\
             532d383030304c48ff",
        );
        p.resize(p.len() + 8, 0);
        p
    }
    // Same capture, frame 2: the router's DHCPOFFER.
    fn dlink_offer() -> Vec<u8> {
        bootp(
            "02010600238ebc6b0003000000000000c0a80173c0a8010100000000",
            "b0c554435483",
            "3501023604c0a8010133040000a8c03a04000054603b04000093a80104ffffff001c04c0a801ff0304c0a8\
             01010604c0a801010f036c616e0c0a4443532d383030304c48ff",
        )
    }

    #[test]
    fn samples_are_wire_accurate() {
        // Guard against transcription slips: lengths of the UDP payloads in the captures.
        assert_eq!(eve_request().len(), 300);
        assert_eq!(eve_ack().len(), 308);
        assert_eq!(eve_option60().len(), 314);
        assert_eq!(dlink_discover().len(), 300);
        assert_eq!(dlink_offer().len(), 309);
    }

    #[test]
    fn request_matches_suricata() {
        let m = parse(&eve_request()).unwrap();
        assert_eq!(m.op, "request");
        assert_eq!(m.dhcp_type.as_deref(), Some("request"));
        assert_eq!(m.id, 4016330564);
        assert_eq!(m.client_mac, "00:11:32:17:49:f0");
        assert_eq!(m.client_id.as_deref(), Some("00:11:32:17:49:f0"));
        assert_eq!(m.client_ip, Some(ip("10.16.1.4")));
        assert_eq!(m.assigned_ip, Some(ip("0.0.0.0")));
        assert_eq!(m.relay_ip, None);
        assert_eq!(m.hostname.as_deref(), Some("nas1\u{0}"));
        // Suricata: subnet_mask, router, domain, dns_server (plus 28 and 12, which it drops).
        assert_eq!(m.params, vec![1, 28, 2, 3, 15, 6, 12]);
        assert_eq!(m.anomalies, vec!["nul_in_string"]);
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["type"], "request");
        assert_eq!(json["assigned_ip"], "0.0.0.0");
        assert_eq!(json["hostname"], "nas1\u{0}");
        assert!(json.get("next_server_ip").is_none());
    }

    #[test]
    fn ack_matches_suricata() {
        let m = parse(&eve_ack()).unwrap();
        assert_eq!(m.op, "reply");
        assert_eq!(m.dhcp_type.as_deref(), Some("ack"));
        assert_eq!(m.id, 4016330564);
        assert_eq!(m.assigned_ip, Some(ip("10.16.1.4")));
        assert_eq!(m.client_ip, Some(ip("10.16.1.4")));
        assert_eq!(m.next_server_ip, Some(ip("10.16.1.1")));
        assert_eq!(m.relay_ip, Some(ip("0.0.0.0")));
        assert_eq!(m.lease_time, Some(3600));
        assert_eq!(m.renewal_time, Some(1681));
        assert_eq!(m.rebinding_time, Some(3031));
        assert_eq!(m.subnet_mask, Some(ip("255.255.0.0")));
        assert_eq!(m.routers, vec![ip("10.16.1.1")]);
        assert_eq!(m.dns_servers, vec![ip("10.16.1.1")]);
        assert_eq!(m.hostname.as_deref(), Some("nas1\u{0}"));
        assert_eq!(m.domain_name.as_deref(), Some("unx.ca\u{0}"));
    }

    #[test]
    fn option_60_matches_suricata() {
        let m = parse(&eve_option60()).unwrap();
        assert_eq!(m.id, 3759982360);
        assert_eq!(m.op, "request");
        assert_eq!(m.vendor_class_identifier.as_deref(), Some("MSFT 5.0"));
        assert_eq!(&m.params[..4], &[1, 15, 3, 6]); // subnet_mask, domain, router, dns_server
        assert_eq!(m.hostname.as_deref(), Some("NicksMacBook"));
        assert_eq!(m.requested_ip, Some(ip("192.168.1.111")));
        assert_eq!(m.client_id.as_deref(), Some("28:cf:da:dc:8d:76"));
        assert!(m.anomalies.is_empty(), "{:?}", m.anomalies);
    }

    #[test]
    fn dlink_camera_exchange() {
        let d = parse(&dlink_discover()).unwrap();
        assert_eq!(d.dhcp_type.as_deref(), Some("discover"));
        assert_eq!(d.client_mac, "b0:c5:54:43:54:83");
        assert_eq!(d.hostname.as_deref(), Some("DCS-8000LH"));
        assert_eq!(d.vendor_class_identifier.as_deref(), Some("udhcp 1.22.1"));
        assert_eq!(d.params, vec![1, 3, 6, 12, 15, 28, 42]);
        assert!(d.anomalies.is_empty(), "{:?}", d.anomalies);

        let o = parse(&dlink_offer()).unwrap();
        assert_eq!(o.dhcp_type.as_deref(), Some("offer"));
        assert_eq!(o.assigned_ip, Some(ip("192.168.1.115")));
        assert_eq!(o.next_server_ip, Some(ip("192.168.1.1")));
        assert_eq!((o.lease_time, o.renewal_time, o.rebinding_time), (Some(43200), Some(21600), Some(37800)));
        assert_eq!(o.domain_name.as_deref(), Some("lan"));
        assert!(o.anomalies.is_empty(), "{:?}", o.anomalies);
    }

    #[test]
    fn errors_and_anomalies() {
        assert_eq!(parse(&[]), Err("truncated"));
        assert_eq!(parse(&[3; 300]), Err("not_dhcp"));
        assert_eq!(parse(&eve_ack()[..239]), Err("truncated"));
        let mut no_cookie = eve_ack();
        no_cookie[236] = 0;
        assert_eq!(parse(&no_cookie), Err("not_dhcp"));

        // Cut inside the options: what came before survives.
        let m = parse(&eve_ack()[..260]).unwrap();
        assert_eq!(m.dhcp_type.as_deref(), Some("ack"));
        assert_eq!(m.lease_time, Some(3600));
        assert!(m.anomalies.contains(&"truncated_option"));
        assert!(m.anomalies.contains(&"missing_end"));

        // hlen 200 (dhcproto's chaddr() would panic), a 3-byte lease time, a split host
        // name (RFC 3396), non-UTF-8 bytes, and junk after END.
        let mut p = bootp(
            "0201c800000000010000000000000000000000000000000000000000",
            "0011321749f0",
            "330300000e 0c03 6361 6d 0c02 2dff ff 4142",
        );
        p[2] = 200;
        let m = parse(&p).unwrap();
        assert_eq!(m.client_mac, "00:11:32:17:49:f0");
        assert_eq!(m.lease_time, None);
        assert_eq!(m.hostname.as_deref(), Some("cam-\u{fffd}"));
        assert_eq!(m.anomalies, vec!["bad_hlen", "trailing_bytes", "bad_option_length"]);
    }

    #[test]
    fn option_overload() {
        // Option 52 = 1: the file field carries the host name.
        let mut p = bootp(
            "01010600000000020000000000000000000000000000000000000000",
            "0011321749f0",
            "350101 340101 ff",
        );
        p[FILE.start..FILE.start + 7].copy_from_slice(&unhex("0c0463616d31ff"));
        let m = parse(&p).unwrap();
        assert_eq!(m.hostname.as_deref(), Some("cam1"));
        assert_eq!(m.anomalies, vec!["option_overload"]);
    }

    /// Every prefix and many corrupted variants of real messages: nothing may panic.
    #[test]
    fn hostile_input_never_panics() {
        let samples = [eve_request(), eve_ack(), eve_option60(), dlink_discover(), dlink_offer()];
        crate::hostile::each_variant(&samples, |v| {
            let _ = parse(v);
        });
    }
}
