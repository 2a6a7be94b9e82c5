//! Hikvision SADP (Search Active Devices Protocol) discovery: the XML form on UDP 37020 and the
//! legacy layer-2 form on ethertype 0x8033.
//!
//! Sources (CAMERA-PROTOCOLS.md, "Hikvision SADP discovery" rows):
//! - XML element names: cameronnewman/hikvision-tooling `internal/sadp/scanner.go` (the `Device`
//!   struct and the `<Probe><Uuid/><Types>inquiry</Types></Probe>` probes, `inquiry_v32` too),
//!   theweefies/ethodump-ng `hikvision.py` (field list incl. `DetailOEMCode`, and a fallback for
//!   malformed XML, which tells us devices do send it), julienblitte/UniversalScanner
//!   `Hikvision.selftest` (a `ProbeMatch` sample; note its `<HCPlatformEnable>flase</…>`).
//!   `EHomeVer` and `SDKOverTLSPort` come from the same field lists; no real capture of SADP is in
//!   the corpus, so the unit tests build samples from those field lists.
//! - Legacy layer 2: MatrixEditor/hiktools `lua/sadp.lua` (Wireshark dissector) and
//!   `hiktools/csadp/model.py` (packet builder). Both are by one author and were never checked
//!   here against a real capture: **unverified**. [`parse_legacy`] only reads the fixed 38-byte
//!   header and never interprets the payload.
//!
//! SADP commands sent *to* a device (activation, password reset, network changes) carry
//! passwords and salts in other elements; unknown elements are ignored, so they never reach a
//! record.

use serde::Serialize;

use super::record::{normalize_mac, set_bool, set_str};

use super::xml::{push_anomaly, root_leaves};

/// Text kept per element.
const MAX_TEXT: usize = 1024;
/// Elements looked at before giving up on the rest of the document.
const MAX_ELEMENTS: usize = 1024;

/// One SADP XML message (probe from a client, or a device's `ProbeMatch` / `Hello`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SadpMessage {
    /// Local name of the root element: "Probe", "ProbeMatch", "Hello", ….
    pub kind: String,
    pub uuid: Option<String>,
    /// `<Types>`: "inquiry" / "inquiry_v32" in probes, echoed in replies.
    pub types: Option<String>,
    /// `<DeviceType>`: a numeric device class code on real devices.
    pub device_type: Option<String>,
    /// `<DeviceDescription>`: the model, e.g. "DS-2CD2346G2-ISU/SL".
    pub device_description: Option<String>,
    pub device_sn: Option<String>,
    /// Normalised to `aa:bb:cc:dd:ee:ff` (devices send `AA-BB-CC-DD-EE-FF`).
    pub mac: Option<String>,
    pub ipv4_address: Option<String>,
    pub ipv4_subnet_mask: Option<String>,
    pub ipv4_gateway: Option<String>,
    /// SDK port (TCP, usually 8000).
    pub command_port: Option<u16>,
    pub http_port: Option<u16>,
    /// e.g. "V5.2.6build 180726".
    pub software_version: Option<String>,
    pub dsp_version: Option<String>,
    pub boot_time: Option<String>,
    pub dhcp: Option<bool>,
    pub activated: Option<bool>,
    /// Hik-Connect (cloud) switched on.
    pub hc_platform_enable: Option<bool>,
    pub support_hc_platform: Option<bool>,
    pub oem_info: Option<String>,
    /// Set on rebranded (OEM) devices.
    pub detail_oem_code: Option<String>,
    pub sdk_over_tls_port: Option<u16>,
    pub ehome_ver: Option<String>,
    /// What was tolerated while parsing ("bad_bool", "malformed_xml", …).
    pub anomalies: Vec<&'static str>,
}

impl SadpMessage {
    fn new(kind: String) -> Self {
        SadpMessage {
            kind,
            uuid: None,
            types: None,
            device_type: None,
            device_description: None,
            device_sn: None,
            mac: None,
            ipv4_address: None,
            ipv4_subnet_mask: None,
            ipv4_gateway: None,
            command_port: None,
            http_port: None,
            software_version: None,
            dsp_version: None,
            boot_time: None,
            dhcp: None,
            activated: None,
            hc_platform_enable: None,
            support_hc_platform: None,
            oem_info: None,
            detail_oem_code: None,
            sdk_over_tls_port: None,
            ehome_ver: None,
            anomalies: Vec::new(),
        }
    }
}

/// Root elements seen in the sources; others are accepted with an "unknown_kind" anomaly.
const KNOWN_KINDS: &[&str] = &["Probe", "ProbeMatch", "Hello"];

/// Roots that belong to other protocols sharing 239.255.255.250 (WS-Discovery's SOAP
/// envelope): refused rather than misread as SADP.
const FOREIGN_ROOTS: &[&str] = &["Envelope"];

/// Parses one SADP XML datagram (UDP 37020).
///
/// Errors: "not_xml" (no element could be read), "not_sadp" (a SOAP envelope), "empty".
pub fn parse(payload: &[u8]) -> Result<SadpMessage, &'static str> {
    let payload = trim_nuls(payload);
    if payload.is_empty() {
        return Err("empty");
    }
    let mut anomalies = Vec::new();
    // SADP is flat: only the root's direct children carry fields.
    let (root, leaves) = root_leaves(payload, &mut anomalies, MAX_TEXT, MAX_ELEMENTS)?;
    if FOREIGN_ROOTS.contains(&root.as_str()) {
        return Err("not_sadp");
    }
    let mut msg = SadpMessage::new(root);
    msg.anomalies = anomalies;
    if !KNOWN_KINDS.contains(&msg.kind.as_str()) {
        push_anomaly(&mut msg.anomalies, "unknown_kind");
    }
    for (name, text) in leaves {
        apply_field(&mut msg, &name, text);
    }
    Ok(msg)
}

fn apply_field(msg: &mut SadpMessage, name: &str, text: String) {
    let a = &mut msg.anomalies;
    match name {
        "Uuid" => set_str(&mut msg.uuid, text, a),
        "Types" => set_str(&mut msg.types, text, a),
        "DeviceType" => set_str(&mut msg.device_type, text, a),
        "DeviceDescription" => set_str(&mut msg.device_description, text, a),
        "DeviceSN" => set_str(&mut msg.device_sn, text, a),
        "MAC" => {
            if text.is_empty() {
                return;
            }
            match normalize_mac(&text) {
                Some(mac) => set_str(&mut msg.mac, mac, a),
                None => push_anomaly(a, "bad_mac"),
            }
        }
        "IPv4Address" => set_str(&mut msg.ipv4_address, text, a),
        "IPv4SubnetMask" => set_str(&mut msg.ipv4_subnet_mask, text, a),
        "IPv4Gateway" => set_str(&mut msg.ipv4_gateway, text, a),
        "CommandPort" => set_port(&mut msg.command_port, &text, a),
        "HttpPort" => set_port(&mut msg.http_port, &text, a),
        "SoftwareVersion" => set_str(&mut msg.software_version, text, a),
        "DSPVersion" => set_str(&mut msg.dsp_version, text, a),
        "BootTime" => set_str(&mut msg.boot_time, text, a),
        "DHCP" => set_bool(&mut msg.dhcp, &text, a),
        "Activated" => set_bool(&mut msg.activated, &text, a),
        "HCPlatformEnable" => set_bool(&mut msg.hc_platform_enable, &text, a),
        "SupportHCPlatform" => set_bool(&mut msg.support_hc_platform, &text, a),
        "OEMInfo" => set_str(&mut msg.oem_info, text, a),
        "DetailOEMCode" => set_str(&mut msg.detail_oem_code, text, a),
        "SDKOverTLSPort" => set_port(&mut msg.sdk_over_tls_port, &text, a),
        "EHomeVer" => set_str(&mut msg.ehome_ver, text, a),
        _ => {}
    }
}

fn set_port(slot: &mut Option<u16>, text: &str, anomalies: &mut Vec<&'static str>) {
    if text.is_empty() {
        return;
    }
    match text.trim().parse::<u16>() {
        Ok(port) if slot.is_none() => *slot = Some(port),
        Ok(_) => push_anomaly(anomalies, "duplicate_element"),
        Err(_) => push_anomaly(anomalies, "bad_port"),
    }
}

/// Devices pad datagrams with NULs; a C string terminator is common too.
fn trim_nuls(data: &[u8]) -> &[u8] {
    let end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    data.get(..end).unwrap_or(data)
}

/// The legacy layer-2 SADP header (ethertype 0x8033), as far as hiktools documents it.
///
/// Layout (38 bytes, after the Ethernet header), from hiktools `lua/sadp.lua` and
/// `csadp/model.py`, **unverified** against a real capture:
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 1 | marker, 0x21 |
/// | 1 | 1 | packet type (lua: 1 response, 2 request) |
/// | 2 | 1 | 0x01 |
/// | 3 | 1 | origin prefix: 0x42 (SADP tool), 0xF6 (device); lua masks the high nibble (4 / F) |
/// | 4 | 4 | counter, big-endian |
/// | 8 | 2 | 0x06 0x04 |
/// | 10 | 1 | query type (0x03 Inquiry, 0x04 InquiryResponse, …) |
/// | 11 | 1 | query parameters |
/// | 12 | 2 | checksum (algorithm not reproduced; not checked) |
/// | 14 | 6 | sender MAC |
/// | 20 | 4 | sender IPv4 |
/// | 24 | 6 | destination MAC |
/// | 30 | 4 | destination IPv4 |
/// | 34 | 4 | subnet mask |
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SadpLegacy {
    /// Length of the whole layer-2 payload given to [`parse_legacy`].
    pub raw_len: usize,
    pub packet_type: u8,
    /// "tool", "device" or "unknown", from the high nibble of byte 3.
    pub origin: &'static str,
    pub counter: u32,
    pub query_type: u8,
    /// hiktools' name for `query_type`, when it has one.
    pub query_name: Option<&'static str>,
    pub src_mac: String,
    pub src_ipv4: String,
    pub dst_mac: String,
    pub dst_ipv4: String,
    pub subnet_mask: String,
    pub anomalies: Vec<&'static str>,
}

/// Length of the fixed legacy header.
const LEGACY_HEADER_LEN: usize = 0x26;

/// Recognises a legacy SADP frame: `ether_payload` starts right after the Ethernet header of a
/// frame with ethertype 0x8033. Errors: "truncated" (shorter than the 38-byte header),
/// "bad_magic" (neither the 0x21 marker nor the 0x06 0x04 marker where hiktools puts them).
pub fn parse_legacy(ether_payload: &[u8]) -> Result<SadpLegacy, &'static str> {
    let Some(h) = ether_payload.get(..LEGACY_HEADER_LEN) else {
        return Err("truncated");
    };
    let byte = |i: usize| h.get(i).copied().unwrap_or(0);
    let marker_ok = byte(0) == 0x21;
    let marker2_ok = byte(8) == 0x06 && byte(9) == 0x04;
    if !marker_ok && !marker2_ok {
        return Err("bad_magic");
    }
    let mut anomalies = Vec::new();
    if !marker_ok || !marker2_ok {
        push_anomaly(&mut anomalies, "unexpected_marker");
    }
    let origin = match byte(3) >> 4 {
        0x4 => "tool",
        0xF => "device",
        _ => "unknown",
    };
    let query_type = byte(10);
    let query_name = match query_type {
        0x02 => Some("DeviceOnlineRequest"),
        0x03 => Some("Inquiry"),
        0x04 => Some("InquiryResponse"),
        0x06 => Some("UpdateIP"),
        0x07 => Some("UpdateIPResponse"),
        0x0a => Some("ResetPassword"),
        0x0b => Some("ResetPasswordResponse"),
        0x0c => Some("CMSInfo"),
        0x0d => Some("CMSInfoResponse"),
        0x10 => Some("ModifyNetParam"),
        0x11 => Some("ModifyNetParamResponse"),
        _ => None,
    };
    if query_name.is_none() {
        push_anomaly(&mut anomalies, "unknown_query_type");
    }
    Ok(SadpLegacy {
        raw_len: ether_payload.len(),
        packet_type: byte(1),
        origin,
        counter: u32::from_be_bytes([byte(4), byte(5), byte(6), byte(7)]),
        query_type,
        query_name,
        src_mac: fmt_mac(h, 14),
        src_ipv4: fmt_ipv4(h, 20),
        dst_mac: fmt_mac(h, 24),
        dst_ipv4: fmt_ipv4(h, 30),
        subnet_mask: fmt_ipv4(h, 34),
        anomalies,
    })
}

fn fmt_mac(h: &[u8], at: usize) -> String {
    let b = h.get(at..at + 6).unwrap_or(&[0; 6]);
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(":")
}

fn fmt_ipv4(h: &[u8], at: usize) -> String {
    match h.get(at..at + 4) {
        Some(&[a, b, c, d]) => std::net::Ipv4Addr::new(a, b, c, d).to_string(),
        _ => String::from("0.0.0.0"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Built from the field list of CAMERA-PROTOCOLS.md (hikvision-tooling's `Device` struct,
    /// ethodump-ng's field list) and the layout of UniversalScanner's `Hikvision.selftest`
    /// (one element per line, CRLF as ethodump-ng's fallback splitter expects). Values are made
    /// up: no real SADP capture is in the corpus.
    const PROBE_MATCH: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
<ProbeMatch>\r\n\
<Uuid>7B2C3A10-1D2E-4F60-8A9B-0C1D2E3F4A5B</Uuid>\r\n\
<Types>inquiry</Types>\r\n\
<DeviceType>138088</DeviceType>\r\n\
<DeviceDescription>DS-2CD2346G2-ISU/SL</DeviceDescription>\r\n\
<DeviceSN>DS-2CD2346G2-ISU/SL20210101AAWRJ12345678</DeviceSN>\r\n\
<CommandPort>8000</CommandPort>\r\n\
<HttpPort>80</HttpPort>\r\n\
<MAC>E0-2C-37-93-D9-54</MAC>\r\n\
<IPv4Address>192.168.1.64</IPv4Address>\r\n\
<IPv4SubnetMask>255.255.255.0</IPv4SubnetMask>\r\n\
<IPv4Gateway>192.168.1.1</IPv4Gateway>\r\n\
<IPv6Address>::</IPv6Address>\r\n\
<DHCP>false</DHCP>\r\n\
<SoftwareVersion>V5.2.6build 180726</SoftwareVersion>\r\n\
<DSPVersion>V7.3 build 180719</DSPVersion>\r\n\
<BootTime>2024-05-01 10:11:12</BootTime>\r\n\
<Activated>true</Activated>\r\n\
<PasswordResetAbility>true</PasswordResetAbility>\r\n\
<SupportHCPlatform>true</SupportHCPlatform>\r\n\
<HCPlatformEnable>true</HCPlatformEnable>\r\n\
<OEMInfo>N/A</OEMInfo>\r\n\
<DetailOEMCode>1</DetailOEMCode>\r\n\
<SDKOverTLSPort>8443</SDKOverTLSPort>\r\n\
<EHomeVer>V5.0</EHomeVer>\r\n\
</ProbeMatch>\r\n";

    #[test]
    fn probe_match_fields() {
        let m = parse(PROBE_MATCH.as_bytes()).unwrap();
        assert_eq!(m.kind, "ProbeMatch");
        assert_eq!(m.uuid.as_deref(), Some("7B2C3A10-1D2E-4F60-8A9B-0C1D2E3F4A5B"));
        assert_eq!(m.types.as_deref(), Some("inquiry"));
        assert_eq!(m.device_type.as_deref(), Some("138088"));
        assert_eq!(m.device_description.as_deref(), Some("DS-2CD2346G2-ISU/SL"));
        assert_eq!(m.device_sn.as_deref(), Some("DS-2CD2346G2-ISU/SL20210101AAWRJ12345678"));
        assert_eq!(m.mac.as_deref(), Some("e0:2c:37:93:d9:54"));
        assert_eq!(m.ipv4_address.as_deref(), Some("192.168.1.64"));
        assert_eq!(m.ipv4_subnet_mask.as_deref(), Some("255.255.255.0"));
        assert_eq!(m.ipv4_gateway.as_deref(), Some("192.168.1.1"));
        assert_eq!(m.command_port, Some(8000));
        assert_eq!(m.http_port, Some(80));
        assert_eq!(m.software_version.as_deref(), Some("V5.2.6build 180726"));
        assert_eq!(m.dsp_version.as_deref(), Some("V7.3 build 180719"));
        assert_eq!(m.boot_time.as_deref(), Some("2024-05-01 10:11:12"));
        assert_eq!(m.dhcp, Some(false));
        assert_eq!(m.activated, Some(true));
        assert_eq!(m.hc_platform_enable, Some(true));
        assert_eq!(m.support_hc_platform, Some(true));
        assert_eq!(m.oem_info.as_deref(), Some("N/A"));
        assert_eq!(m.detail_oem_code.as_deref(), Some("1"));
        assert_eq!(m.sdk_over_tls_port, Some(8443));
        assert_eq!(m.ehome_ver.as_deref(), Some("V5.0"));
        assert!(m.anomalies.is_empty(), "{:?}", m.anomalies);
    }

    #[test]
    fn probe_from_hikvision_tooling() {
        // The exact probe format hikvision-tooling `scanner.go` sends (UUID made up).
        let p = br#"<?xml version="1.0" encoding="utf-8"?><Probe><Uuid>0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0</Uuid><Types>inquiry_v32</Types></Probe>"#;
        let m = parse(p).unwrap();
        assert_eq!(m.kind, "Probe");
        assert_eq!(m.types.as_deref(), Some("inquiry_v32"));
        assert_eq!(m.mac, None);
        assert!(m.anomalies.is_empty());
    }

    #[test]
    fn hello_with_prefix_entities_and_nul_padding() {
        let mut p = b"<sadp:Hello xmlns:sadp=\"urn:x\"><sadp:DeviceDescription>A&amp;B &#x41;</sadp:DeviceDescription>\
<sadp:MAC>aa:bb:cc:dd:ee:0f</sadp:MAC></sadp:Hello>"
            .to_vec();
        p.extend_from_slice(&[0, 0, 0]);
        let m = parse(&p).unwrap();
        assert_eq!(m.kind, "Hello");
        assert_eq!(m.device_description.as_deref(), Some("A&B A"));
        assert_eq!(m.mac.as_deref(), Some("aa:bb:cc:dd:ee:0f"));
        assert!(m.anomalies.is_empty(), "{:?}", m.anomalies);
    }

    #[test]
    fn tolerated_oddities_are_recorded() {
        // "flase" is verbatim from UniversalScanner's Hikvision.selftest.
        let p = b"<ProbeMatch><HCPlatformEnable>flase</HCPlatformEnable><CommandPort>80000</CommandPort>\
<MAC>00-11-22-33-44</MAC><DeviceSN>A</DeviceSN><DeviceSN>B</DeviceSN><Unknown>x</Unknown></ProbeMatch>";
        let m = parse(p).unwrap();
        assert_eq!(m.hc_platform_enable, None);
        assert_eq!(m.command_port, None);
        assert_eq!(m.mac, None);
        assert_eq!(m.device_sn.as_deref(), Some("A"));
        for label in ["bad_bool", "bad_port", "bad_mac", "duplicate_element"] {
            assert!(m.anomalies.contains(&label), "{label} missing from {:?}", m.anomalies);
        }
    }

    #[test]
    fn dangling_ampersand_is_text() {
        let m = parse(
            b"<ProbeMatch><DeviceDescription>Cam A&B</DeviceDescription><DeviceSN>X</DeviceSN></ProbeMatch>",
        )
        .unwrap();
        assert_eq!(m.device_description.as_deref(), Some("Cam A&B"));
        assert_eq!(m.device_sn.as_deref(), Some("X"));
        assert_eq!(m.anomalies, vec!["dangling_amp"]);
    }

    #[test]
    fn truncated_datagram_keeps_complete_fields() {
        let cut = PROBE_MATCH.find("<HttpPort>").unwrap() + 6;
        let m = parse(&PROBE_MATCH.as_bytes()[..cut]).unwrap();
        assert_eq!(m.command_port, Some(8000));
        assert_eq!(m.http_port, None);
        assert!(!m.anomalies.is_empty());
    }

    #[test]
    fn rejects_non_sadp() {
        assert_eq!(parse(b""), Err("empty"));
        assert_eq!(parse(b"\0\0"), Err("empty"));
        assert_eq!(parse(b"M-SEARCH * HTTP/1.1\r\n"), Err("not_xml"));
        assert_eq!(parse(b"<"), Err("not_xml"));
        assert_eq!(
            parse(b"<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"></s:Envelope>"),
            Err("not_sadp")
        );
        let other = parse(b"<Inquiry/>").unwrap();
        assert!(other.anomalies.contains(&"unknown_kind"));
    }

    #[test]
    fn text_and_depth_are_bounded() {
        let long = "x".repeat(5000);
        let p = format!("<ProbeMatch><DeviceSN>{long}</DeviceSN></ProbeMatch>");
        let m = parse(p.as_bytes()).unwrap();
        assert_eq!(m.device_sn.as_ref().map(String::len), Some(MAX_TEXT));
        assert!(m.anomalies.contains(&"text_truncated"));
        let deep = format!("<ProbeMatch>{}{}</ProbeMatch>", "<a>".repeat(100), "</a>".repeat(100));
        let m = parse(deep.as_bytes()).unwrap();
        assert!(m.anomalies.contains(&"too_deep"));
        let many = format!("<ProbeMatch>{}</ProbeMatch>", "<a/>".repeat(5000));
        let m = parse(many.as_bytes()).unwrap();
        assert!(m.anomalies.contains(&"too_many_elements"));
    }

    #[test]
    fn doctype_entities_are_not_expanded() {
        let p = br#"<?xml version="1.0"?><!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]><ProbeMatch><DeviceSN>&x;</DeviceSN></ProbeMatch>"#;
        let m = parse(p).unwrap();
        assert_eq!(m.device_sn, None);
        assert!(m.anomalies.contains(&"doctype"));
        assert!(m.anomalies.contains(&"unknown_entity"));
    }

    #[test]
    fn mac_forms() {
        assert_eq!(normalize_mac("58-50-ED-0A-0B-0C").as_deref(), Some("58:50:ed:0a:0b:0c"));
        assert_eq!(normalize_mac("5850ed0a0b0c").as_deref(), Some("58:50:ed:0a:0b:0c"));
        assert_eq!(normalize_mac("58:50:ed:0a:0b"), None);
        assert_eq!(normalize_mac("58-50-ed-0a-0b-0g"), None);
        assert_eq!(normalize_mac("5-850ed0a0b0c"), None);
    }

    /// A legacy inquiry built from hiktools `csadp/model.py` (`SADPHeader.__bytes__` and
    /// `inquiry()`): header fields, then sender MAC/IP, destination MAC/IP, subnet, and the
    /// IPv6 payload of an Inquiry. Not a real capture.
    fn legacy_inquiry() -> Vec<u8> {
        let mut p = vec![0x21, 0x02, 0x01, 0x42];
        p.extend_from_slice(&7u32.to_be_bytes());
        p.extend_from_slice(&[0x06, 0x04, 0x03, 0x00, 0x12, 0x34]);
        p.extend_from_slice(&[0x00, 0x0c, 0x29, 0xaa, 0xbb, 0xcc]);
        p.extend_from_slice(&[192, 168, 1, 10]);
        p.extend_from_slice(&[0xff; 6]);
        p.extend_from_slice(&[0, 0, 0, 0]);
        p.extend_from_slice(&[0, 0, 0, 0]);
        p.extend_from_slice(&[0u8; 28]);
        p
    }

    #[test]
    fn legacy_header() {
        let p = legacy_inquiry();
        let l = parse_legacy(&p).unwrap();
        assert_eq!(l.raw_len, p.len());
        assert_eq!(l.packet_type, 2);
        assert_eq!(l.origin, "tool");
        assert_eq!(l.counter, 7);
        assert_eq!(l.query_type, 3);
        assert_eq!(l.query_name, Some("Inquiry"));
        assert_eq!(l.src_mac, "00:0c:29:aa:bb:cc");
        assert_eq!(l.src_ipv4, "192.168.1.10");
        assert_eq!(l.dst_mac, "ff:ff:ff:ff:ff:ff");
        assert_eq!(l.dst_ipv4, "0.0.0.0");
        assert!(l.anomalies.is_empty());

        let mut reply = p.clone();
        reply[3] = 0xf6;
        reply[10] = 0x04;
        let l = parse_legacy(&reply).unwrap();
        assert_eq!((l.origin, l.query_name), ("device", Some("InquiryResponse")));

        assert_eq!(parse_legacy(&p[..37]), Err("truncated"));
        assert_eq!(parse_legacy(&[0u8; 64]), Err("bad_magic"));
    }

    #[test]
    fn fuzz_prefixes_and_bit_flips_do_not_panic() {
        let samples = [
            PROBE_MATCH.as_bytes().to_vec(),
            legacy_inquiry(),
            b"<Probe><Uuid>u</Uuid><Types>inquiry</Types></Probe>".to_vec(),
        ];
        crate::hostile::each_variant(&samples, |v| {
            let _ = parse(v);
            let _ = parse_legacy(v);
        });
    }
}
