//! ONVIF: the device service's `GetDeviceInformationResponse` (SOAP over HTTP) and
//! WS-Discovery datagrams on UDP 3702 (multicast 239.255.255.250).
//!
//! Sources (CAMERA-PROTOCOLS.md rows "ONVIF device info" and "WS-Discovery"):
//! - `GetDeviceInformationResponse` children `Manufacturer`, `Model`, `FirmwareVersion`,
//!   `SerialNumber`, `HardwareId`: the ONVIF device WSDL (namespace
//!   `http://www.onvif.org/ver10/device/wsdl`). No real response is in the corpus; tests build
//!   one from that field list.
//! - WS-Discovery `Types`, `XAddrs`, `Scopes` (`onvif://www.onvif.org/hardware/…`, `/name/…`,
//!   `/MAC/…`, `/location/…`): julienblitte/UniversalScanner `Wsdiscovery.cs` and its
//!   `Wsdiscovery.selftest`. Real internet scans in the corpus (`discovery/wsd_one-scan.pcap`:
//!   3-byte probes `<\xaa>`; `discovery/wsd_faultstring.pcap`: a bare SOAP 1.2 `Fault` without
//!   an envelope, which Zeek's `wsd_baseline__notice.log` flags) are read by the tests.
//!
//! Elements are matched by local name whatever their prefix (devices differ); namespaces are not
//! checked. DTDs are never expanded.

use serde::Serialize;

use super::xml::{push_anomaly, truncate, walk_xml};

/// Text kept per ordinary element, and per scope / XAddr / type item.
const MAX_TEXT: usize = 1024;
/// Text kept for the list-valued elements (`Scopes`, `XAddrs`, `Types`) before splitting.
const MAX_LIST_TEXT: usize = 16 * 1024;
/// Items kept per list (scopes, XAddrs, types).
const MAX_ITEMS: usize = 64;
const MAX_ELEMENTS: usize = 2048;

/// The device's answer to `GetDeviceInformation`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OnvifDeviceInfo {
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub firmware_version: Option<String>,
    pub serial_number: Option<String>,
    pub hardware_id: Option<String>,
    pub anomalies: Vec<&'static str>,
}

/// Parses a SOAP `GetDeviceInformationResponse` body.
///
/// Errors: "not_xml", "soap_fault" (the device answered with a fault, e.g. not authorised),
/// "not_device_info" (some other SOAP message).
pub fn parse_device_information(xml: &[u8]) -> Result<OnvifDeviceInfo, &'static str> {
    let mut info = OnvifDeviceInfo {
        manufacturer: None,
        model: None,
        firmware_version: None,
        serial_number: None,
        hardware_id: None,
        anomalies: Vec::new(),
    };
    let mut found = false;
    let mut fault = false;
    let mut leaves: Vec<(String, String)> = Vec::new();
    let mut anomalies = Vec::new();
    let root = walk_xml(
        xml,
        &mut anomalies,
        |_| MAX_TEXT,
        |path, text| {
            let Some(pos) = path.iter().position(|n| n == "GetDeviceInformationResponse") else {
                if path.iter().any(|n| n == "Fault") {
                    fault = true;
                }
                return;
            };
            found = true;
            // Fields are the response element's direct children.
            if let (true, Some(leaf)) = (path.len() == pos + 2, path.last()) {
                if leaves.len() < MAX_ELEMENTS {
                    leaves.push((leaf.clone(), text.to_string()));
                }
            }
        },
    )?;
    if !found {
        return Err(if fault { "soap_fault" } else { "not_device_info" });
    }
    info.anomalies = anomalies;
    if root != "Envelope" {
        push_anomaly(&mut info.anomalies, "no_envelope");
    }
    for (name, text) in leaves {
        let slot = match name.as_str() {
            "Manufacturer" => &mut info.manufacturer,
            "Model" => &mut info.model,
            "FirmwareVersion" => &mut info.firmware_version,
            "SerialNumber" => &mut info.serial_number,
            "HardwareId" => &mut info.hardware_id,
            _ => continue,
        };
        if text.is_empty() {
            continue;
        }
        if slot.is_some() {
            push_anomaly(&mut info.anomalies, "duplicate_element");
            continue;
        }
        *slot = Some(text);
    }
    Ok(info)
}

/// One WS-Discovery datagram.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WsDiscovery {
    /// Local name of the SOAP body's first element: "Probe", "ProbeMatches", "Hello", "Bye",
    /// "Resolve", "ResolveMatches", "Fault" (or the root element when there is no envelope).
    pub kind: String,
    /// `Types` items as sent, prefix included (e.g. "dn:NetworkVideoTransmitter"); prefixes
    /// are the sender's choice, so compare the part after ':'.
    pub types: Vec<String>,
    pub xaddrs: Vec<String>,
    pub scopes: Vec<String>,
    /// From the scope `onvif://www.onvif.org/hardware/<model>`, percent-decoded.
    pub hardware: Option<String>,
    /// From `onvif://www.onvif.org/name/<name>`, percent-decoded.
    pub name: Option<String>,
    /// From `onvif://www.onvif.org/MAC/<mac>`, as sent.
    pub mac: Option<String>,
    /// From `onvif://www.onvif.org/location/<…>` (the first one), percent-decoded.
    pub location: Option<String>,
    /// The `EndpointReference` address (usually `urn:uuid:…`, stable per device). An addition
    /// to the brief's field list.
    pub endpoint: Option<String>,
    /// `faultstring` (SOAP 1.1) or `Reason/Text` (SOAP 1.2), else the fault code.
    pub fault: Option<String>,
    pub anomalies: Vec<&'static str>,
}

const KNOWN_KINDS: &[&str] = &["Probe", "ProbeMatches", "Hello", "Bye", "Resolve", "ResolveMatches", "Fault"];

/// Parses one WS-Discovery datagram.
///
/// Errors: "not_xml" (no element could be read, e.g. the 3-byte `<\xaa>` probes of
/// `wsd_one-scan.pcap`), "not_soap" (neither a SOAP envelope nor a bare WS-Discovery element),
/// "no_body" (an envelope with no body element and no `Action`).
pub fn parse_ws_discovery(payload: &[u8]) -> Result<WsDiscovery, &'static str> {
    let mut anomalies = Vec::new();
    let mut body_kind: Option<String> = None;
    let mut action: Option<String> = None;
    let mut types_raw: Vec<String> = Vec::new();
    let mut xaddrs_raw: Vec<String> = Vec::new();
    let mut scopes_raw: Vec<String> = Vec::new();
    let mut endpoint: Option<String> = None;
    let mut fault_string: Option<String> = None;
    let mut fault_code: Option<String> = None;
    let cap = |name: &str| match name {
        "Types" | "Scopes" | "XAddrs" => MAX_LIST_TEXT,
        _ => MAX_TEXT,
    };
    let root = walk_xml(payload, &mut anomalies, cap, |path, text| {
        let in_envelope = path.first().is_some_and(|r| r == "Envelope");
        let in_header = in_envelope && path.get(1).is_some_and(|n| n == "Header");
        if in_header {
            if path.len() == 3 && path.get(2).is_some_and(|n| n == "Action") && action.is_none() {
                action = Some(text.to_string());
            }
            return;
        }
        if in_envelope && path.len() == 3 && path.get(1).is_some_and(|n| n == "Body") && body_kind.is_none() {
            body_kind = path.get(2).cloned();
        }
        let Some(leaf) = path.last() else { return };
        let parent = path.len().checked_sub(2).and_then(|i| path.get(i));
        let in_fault = path.iter().any(|n| n == "Fault");
        match leaf.as_str() {
            "Types" => types_raw.push(text.to_string()),
            "XAddrs" => xaddrs_raw.push(text.to_string()),
            "Scopes" => scopes_raw.push(text.to_string()),
            "Address" if parent.is_some_and(|p| p == "EndpointReference") && endpoint.is_none() => {
                endpoint = non_empty(text);
            }
            "faultstring" | "Text" if in_fault && fault_string.is_none() => fault_string = non_empty(text),
            "faultcode" | "Value" if in_fault && fault_code.is_none() => fault_code = non_empty(text),
            _ => {}
        }
    })?;

    let kind = if root == "Envelope" {
        match (body_kind, action.as_deref()) {
            (Some(k), _) => k,
            // An empty body: name the message after its WS-Addressing action URI.
            (None, Some(a)) => match a.rsplit('/').next() {
                Some(last) if !last.is_empty() => {
                    push_anomaly(&mut anomalies, "empty_body");
                    last.to_string()
                }
                _ => return Err("no_body"),
            },
            (None, None) => return Err("no_body"),
        }
    } else if KNOWN_KINDS.contains(&root.as_str()) {
        // wsd_faultstring.pcap: gSOAP answered with a bare `SOAP-ENV:Fault`.
        push_anomaly(&mut anomalies, "no_envelope");
        root
    } else {
        return Err("not_soap");
    };
    if !KNOWN_KINDS.contains(&kind.as_str()) {
        push_anomaly(&mut anomalies, "unknown_kind");
    }

    let mut msg = WsDiscovery {
        kind,
        types: split_items(&types_raw, &mut anomalies),
        xaddrs: split_items(&xaddrs_raw, &mut anomalies),
        scopes: split_items(&scopes_raw, &mut anomalies),
        hardware: None,
        name: None,
        mac: None,
        location: None,
        endpoint,
        fault: fault_string.or(fault_code),
        anomalies,
    };
    for scope in &msg.scopes {
        let Some((category, value)) = onvif_scope(scope) else { continue };
        let slot = match category.to_ascii_lowercase().as_str() {
            "hardware" => &mut msg.hardware,
            "name" => &mut msg.name,
            "mac" => &mut msg.mac,
            "location" => &mut msg.location,
            _ => continue,
        };
        if slot.is_none() {
            *slot = non_empty(&percent_decode(value));
        }
    }
    Ok(msg)
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// Splits whitespace-separated lists (all `Types`/`XAddrs`/`Scopes` elements of the message
/// together), at most [`MAX_ITEMS`] items of at most [`MAX_TEXT`] bytes.
fn split_items(raw: &[String], anomalies: &mut Vec<&'static str>) -> Vec<String> {
    let mut out = Vec::new();
    for item in raw.iter().flat_map(|r| r.split_ascii_whitespace()) {
        if out.len() >= MAX_ITEMS {
            push_anomaly(anomalies, "too_many_items");
            break;
        }
        if item.len() > MAX_TEXT {
            push_anomaly(anomalies, "text_truncated");
            out.push(truncate(item, MAX_TEXT).to_string());
        } else {
            out.push(item.to_string());
        }
    }
    out
}

/// `onvif://www.onvif.org/<category>/<value>` → (category, value). Scheme and host are matched
/// without regard to case, as some firmwares vary it.
fn onvif_scope(scope: &str) -> Option<(&str, &str)> {
    const PREFIX: &str = "onvif://www.onvif.org/";
    let head = scope.get(..PREFIX.len())?;
    if !head.eq_ignore_ascii_case(PREFIX) {
        return None;
    }
    scope.get(PREFIX.len()..)?.split_once('/')
}

/// Decodes `%XX` escapes (invalid ones are kept as they are); the result is read as UTF-8,
/// lossily.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(name: &str) -> Vec<u8> {
        let path =
            format!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/corpus/discovery/{}"), name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("corpus file {path} is missing ({e}); tests need it"))
    }

    /// UDP payloads of a classic little-endian Ethernet pcap (all the discovery captures are of
    /// that kind), cut to the UDP length so Ethernet padding is not included.
    fn udp_payloads(pcap: &[u8]) -> Vec<Vec<u8>> {
        assert_eq!(&pcap[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "expected a little-endian classic pcap");
        assert_eq!(u32::from_le_bytes(pcap[20..24].try_into().unwrap()), 1, "expected Ethernet");
        let mut out = Vec::new();
        let mut at = 24;
        while at + 16 <= pcap.len() {
            let caplen = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
            let frame = &pcap[at + 16..at + 16 + caplen];
            at += 16 + caplen;
            let mut l3 = 14;
            let mut ethertype = u16::from_be_bytes([frame[12], frame[13]]);
            if ethertype == 0x8100 {
                ethertype = u16::from_be_bytes([frame[16], frame[17]]);
                l3 = 18;
            }
            if ethertype != 0x0800 || frame[l3 + 9] != 17 {
                continue;
            }
            let ihl = usize::from(frame[l3] & 0x0f) * 4;
            let udp = &frame[l3 + ihl..];
            let len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
            out.push(udp[8..len.min(udp.len())].to_vec());
        }
        out
    }

    /// Built from the ONVIF device WSDL field list (values made up, in the form a Hikvision
    /// camera reports them); no real response is in the corpus.
    const DEVICE_INFO: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl">
<env:Body><tds:GetDeviceInformationResponse>
<tds:Manufacturer>HIKVISION</tds:Manufacturer>
<tds:Model>DS-2CD2386G2-IU</tds:Model>
<tds:FirmwareVersion>V5.7.18 build 240826</tds:FirmwareVersion>
<tds:SerialNumber>DS-2CD2386G2-IU20240101AAWRJ12345678</tds:SerialNumber>
<tds:HardwareId>88</tds:HardwareId>
</tds:GetDeviceInformationResponse></env:Body></env:Envelope>"#;

    #[test]
    fn device_information() {
        let i = parse_device_information(DEVICE_INFO.as_bytes()).unwrap();
        assert_eq!(i.manufacturer.as_deref(), Some("HIKVISION"));
        assert_eq!(i.model.as_deref(), Some("DS-2CD2386G2-IU"));
        assert_eq!(i.firmware_version.as_deref(), Some("V5.7.18 build 240826"));
        assert_eq!(i.serial_number.as_deref(), Some("DS-2CD2386G2-IU20240101AAWRJ12345678"));
        assert_eq!(i.hardware_id.as_deref(), Some("88"));
        assert!(i.anomalies.is_empty(), "{:?}", i.anomalies);
    }

    #[test]
    fn device_information_other_prefixes_and_errors() {
        let bare = b"<GetDeviceInformationResponse xmlns=\"http://www.onvif.org/ver10/device/wsdl\">\
<Manufacturer>Dahua</Manufacturer><Model/><Extra><Model>inner</Model></Extra></GetDeviceInformationResponse>";
        let i = parse_device_information(bare).unwrap();
        assert_eq!(i.manufacturer.as_deref(), Some("Dahua"));
        assert_eq!(i.model, None);
        assert!(i.anomalies.contains(&"no_envelope"));

        let fault = br#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault><s:Code><s:Value>s:Sender</s:Value></s:Code><s:Reason><s:Text xml:lang="en">Sender not Authorized</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>"#;
        assert_eq!(parse_device_information(fault), Err("soap_fault"));
        assert_eq!(
            parse_device_information(
                b"<s:Envelope><s:Body><x:GetSystemDateAndTimeResponse/></s:Body></s:Envelope>"
            ),
            Err("not_device_info")
        );
        assert_eq!(parse_device_information(b"HTTP/1.1 401"), Err("not_xml"));
    }

    #[test]
    fn one_scan_probes_are_rejected() {
        // Every frame of wsd_one-scan.pcap carries the 3-byte payload 3c aa 3e ("<", 0xaa, ">").
        let payloads = udp_payloads(&corpus("wsd_one-scan.pcap"));
        assert!(payloads.len() > 100, "only {} UDP payloads", payloads.len());
        for p in &payloads {
            assert_eq!(p.as_slice(), b"<\xaa>");
            assert!(parse_ws_discovery(p).is_err(), "a malformed probe was accepted");
        }
        assert!(parse_ws_discovery(b"<\xaa>").is_err());
    }

    #[test]
    fn faultstring_replies_are_faults_with_anomalies() {
        let payloads = udp_payloads(&corpus("wsd_faultstring.pcap"));
        assert!(payloads.len() > 100, "only {} UDP payloads", payloads.len());
        for p in &payloads {
            let m = parse_ws_discovery(p).unwrap();
            assert_eq!(m.kind, "Fault");
            assert_eq!(
                m.fault.as_deref(),
                Some("Method '\u{aa}' not implemented: method name or namespace not recognized")
            );
            assert!(m.anomalies.contains(&"no_envelope"), "{:?}", m.anomalies);
            assert!(m.scopes.is_empty() && m.xaddrs.is_empty());
            // The same reply is not device information either.
            assert_eq!(parse_device_information(p), Err("soap_fault"));
        }
    }

    /// A Hikvision-style ProbeMatch built from the scopes CAMERA-PROTOCOLS.md lists and the
    /// envelope of UniversalScanner's `Wsdiscovery.selftest` (values made up).
    const PROBE_MATCH: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl">
<env:Header><wsa:MessageID>urn:uuid:11223344-5566-7788-9900-000000000000</wsa:MessageID>
<wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsa:Action></env:Header>
<env:Body><d:ProbeMatches><d:ProbeMatch>
<wsa:EndpointReference><wsa:Address>urn:uuid:5d1e2b30-0000-1000-8000-5850ed0a0b0c</wsa:Address></wsa:EndpointReference>
<d:Types>dn:NetworkVideoTransmitter tds:Device</d:Types>
<d:Scopes>onvif://www.onvif.org/type/video_encoder onvif://www.onvif.org/Profile/Streaming onvif://www.onvif.org/MAC/58:50:ed:0a:0b:0c onvif://www.onvif.org/hardware/DS-2CD2385G1-I onvif://www.onvif.org/name/HIKVISION%20DS-2CD2385G1-I onvif://www.onvif.org/location/city/hangzhou</d:Scopes>
<d:XAddrs>http://192.168.1.64/onvif/device_service http://[fe80::5a50:edff:fe0a:b0c]/onvif/device_service</d:XAddrs>
<d:MetadataVersion>10</d:MetadataVersion>
</d:ProbeMatch></d:ProbeMatches></env:Body></env:Envelope>"#;

    #[test]
    fn probe_match() {
        let m = parse_ws_discovery(PROBE_MATCH.as_bytes()).unwrap();
        assert_eq!(m.kind, "ProbeMatches");
        assert_eq!(m.types, vec!["dn:NetworkVideoTransmitter", "tds:Device"]);
        assert_eq!(m.xaddrs.len(), 2);
        assert_eq!(m.scopes.len(), 6);
        assert_eq!(m.hardware.as_deref(), Some("DS-2CD2385G1-I"));
        assert_eq!(m.name.as_deref(), Some("HIKVISION DS-2CD2385G1-I"));
        assert_eq!(m.mac.as_deref(), Some("58:50:ed:0a:0b:0c"));
        assert_eq!(m.location.as_deref(), Some("city/hangzhou"));
        assert_eq!(m.endpoint.as_deref(), Some("urn:uuid:5d1e2b30-0000-1000-8000-5850ed0a0b0c"));
        assert_eq!(m.fault, None);
        assert!(m.anomalies.is_empty(), "{:?}", m.anomalies);
    }

    #[test]
    fn probe_hello_bye_and_bounds() {
        // The probe UniversalScanner sends (Wsdiscovery.cs), with a made-up message id.
        let probe = br#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:w="http://schemas.xmlsoap.org/ws/2006/02/devprof" xmlns:o="http://www.onvif.org/ver10/device/wsdl"><s:Header><a:Action s:mustUnderstand="1">http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action><a:MessageID>urn:uuid:00000000-0000-0000-0000-000000000001</a:MessageID><a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To><a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo></s:Header><s:Body><d:Probe><d:Types>w:Device o:Device</d:Types></d:Probe></s:Body></s:Envelope>"#;
        let m = parse_ws_discovery(probe).unwrap();
        assert_eq!(m.kind, "Probe");
        assert_eq!(m.types, vec!["w:Device", "o:Device"]);
        assert_eq!(m.endpoint, None, "the header's ReplyTo address is not an endpoint");

        let bye = b"<e:Envelope><e:Header><a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Bye</a:Action></e:Header><e:Body/></e:Envelope>";
        let m = parse_ws_discovery(bye).unwrap();
        assert_eq!(m.kind, "Bye");
        assert!(m.anomalies.contains(&"empty_body"));
        assert_eq!(parse_ws_discovery(b"<e:Envelope><e:Body></e:Body></e:Envelope>"), Err("no_body"));
        assert_eq!(parse_ws_discovery(b"<root/>"), Err("not_soap"));

        let scopes: String = (0..200).map(|i| format!("onvif://www.onvif.org/x/{i} ")).collect();
        let hello = format!(
            "<Envelope><Body><Hello><Scopes>{scopes}onvif://www.onvif.org/name/late</Scopes></Hello><Extra/></Body></Envelope>"
        );
        let m = parse_ws_discovery(hello.as_bytes()).unwrap();
        assert_eq!(m.kind, "Hello");
        assert_eq!(m.scopes.len(), MAX_ITEMS);
        assert_eq!(m.name, None);
        assert!(m.anomalies.contains(&"too_many_items"));
    }

    #[test]
    fn scope_helpers() {
        assert_eq!(onvif_scope("ONVIF://www.onvif.org/MAC/aa"), Some(("MAC", "aa")));
        assert_eq!(onvif_scope("onvif://www.onvif.org/hardware"), None);
        assert_eq!(onvif_scope("http://www.onvif.org/name/x"), None);
        assert_eq!(percent_decode("HIKVISION%20DS%2"), "HIKVISION DS%2");
        assert_eq!(percent_decode("%E6%B5%B7%zz"), "海%zz");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
    }

    #[test]
    fn fuzz_prefixes_and_bit_flips_do_not_panic() {
        let fault = udp_payloads(&corpus("wsd_faultstring.pcap")).remove(0);
        let samples = [PROBE_MATCH.as_bytes().to_vec(), DEVICE_INFO.as_bytes().to_vec(), fault];
        crate::hostile::each_variant(&samples, |v| {
            let _ = parse_ws_discovery(v);
            let _ = parse_device_information(v);
        });
    }
}
