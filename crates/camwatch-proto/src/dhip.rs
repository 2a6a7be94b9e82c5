//! Dahua DHIP discovery on UDP 37810 (multicast 239.255.255.251): a 32-byte binary header, then
//! a JSON body (`DHDiscover.search` from clients, `client.notifyDevInfo` from devices).
//!
//! Sources (CAMERA-PROTOCOLS.md, "Dahua DHIP discovery" row):
//! - header: julienblitte/UniversalScanner `Dahua2.cs` (`Dahua2Header`: u32 header size 0x20 at
//!   0, magic "DHIP" at 4, payload length at 16 and again at 24, all little-endian; it drops
//!   frames whose lengths disagree, we keep them with an anomaly) and mcw0/Tools
//!   `Dahua-JSON-Debug-Console-v2.py` (same header on TCP: session id at 8, request id at 12;
//!   for discovery both are 0 in its probe, so their meaning on UDP is **unverified**);
//! - body: theweefies/ethodump-ng `dhip.py` and mcw0's `DHDiscover()` read
//!   `params.deviceInfo.{DeviceType, DeviceClass, SerialNo, Version, HttpPort, Port,
//!   IPv4Address.IPAddress}` and a top-level `mac`; mcw0 strips trailing NULs, ethodump-ng drops
//!   two trailing bytes.
//!
//! No real DHIP capture is in the corpus: tests build datagrams from those field lists.

use serde::Serialize;

use super::record::{normalize_mac, push_anomaly};
use serde_json::Value;

/// Fixed header length.
const HEADER_LEN: usize = 32;
/// JSON bodies larger than this are refused (a discovery reply is well under 2 KiB).
const MAX_JSON: usize = 64 * 1024;
/// Longest string kept from the JSON.
const MAX_TEXT: usize = 1024;

/// One DHIP discovery datagram.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DhipMessage {
    /// "DHDiscover.search" (request) or "client.notifyDevInfo" (device reply).
    pub method: Option<String>,
    /// Header bytes 8..12 (little-endian); 0 in discovery as far as the sources show.
    pub session_id: u32,
    /// Header bytes 12..16 (little-endian).
    pub request_id: u32,
    /// `params.deviceInfo.DeviceClass`, e.g. "IPC", "NVR".
    pub device_class: Option<String>,
    /// `params.deviceInfo.DeviceType`: the model.
    pub device_type: Option<String>,
    pub serial_no: Option<String>,
    /// `params.deviceInfo.Version`: the firmware, e.g. "2.800.0000000.29.R".
    pub version: Option<String>,
    pub http_port: Option<u16>,
    /// `params.deviceInfo.Port`: the SDK port (TCP 37777 by default).
    pub port: Option<u16>,
    /// `params.deviceInfo.IPv4Address.IPAddress`.
    pub ipv4_address: Option<String>,
    /// Normalised to `aa:bb:cc:dd:ee:ff`.
    pub mac: Option<String>,
    pub anomalies: Vec<&'static str>,
}

/// Parses one DHIP datagram.
///
/// Errors: "truncated" (< 32 bytes), "bad_magic" (no "DHIP" at offset 4), "too_large" (JSON
/// over 64 KiB), "no_body" (nothing after the header), "bad_json", "not_object".
pub fn parse(payload: &[u8]) -> Result<DhipMessage, &'static str> {
    let (Some(header), Some(body)) = (payload.get(..HEADER_LEN), payload.get(HEADER_LEN..)) else {
        return Err("truncated");
    };
    if header.get(4..8) != Some(b"DHIP".as_slice()) {
        return Err("bad_magic");
    }
    let mut anomalies = Vec::new();
    let header_size = le_u32(header, 0);
    if header_size != HEADER_LEN as u32 {
        push_anomaly(&mut anomalies, "unexpected_header_size");
    }
    let len1 = le_u32(header, 16);
    let len2 = le_u32(header, 24);
    if len1 != len2 {
        push_anomaly(&mut anomalies, "length_mismatch");
    }
    if usize::try_from(len1) != Ok(body.len()) {
        push_anomaly(&mut anomalies, "length_disagrees");
    }

    // Trailing NULs (and the CRLF that UniversalScanner's probe ends with) are padding.
    let end = body.iter().rposition(|&b| !matches!(b, 0 | b'\r' | b'\n' | b' ' | b'\t')).map_or(0, |i| i + 1);
    let json = body.get(..end).unwrap_or(body);
    if json.is_empty() {
        return Err("no_body");
    }
    if json.len() > MAX_JSON {
        return Err("too_large");
    }
    // Read the first JSON value and tolerate whatever follows it (a second datagram glued on,
    // or garbage after a declared length).
    let mut stream = serde_json::Deserializer::from_slice(json).into_iter::<Value>();
    let value = match stream.next() {
        Some(Ok(v)) => v,
        _ => return Err("bad_json"),
    };
    if stream.byte_offset() < json.len() {
        push_anomaly(&mut anomalies, "trailing_data");
    }
    let Value::Object(root) = value else {
        return Err("not_object");
    };

    let mut msg = DhipMessage {
        method: None,
        session_id: le_u32(header, 8),
        request_id: le_u32(header, 12),
        device_class: None,
        device_type: None,
        serial_no: None,
        version: None,
        http_port: None,
        port: None,
        ipv4_address: None,
        mac: None,
        anomalies,
    };
    msg.method = text(root.get("method"), &mut msg.anomalies);
    let params = root.get("params").and_then(Value::as_object);
    let info = params.and_then(|p| p.get("deviceInfo")).and_then(Value::as_object);
    if let Some(info) = info {
        let a = &mut msg.anomalies;
        msg.device_class = text(info.get("DeviceClass"), a);
        msg.device_type = text(info.get("DeviceType"), a);
        msg.serial_no = text(info.get("SerialNo"), a);
        msg.version = text(info.get("Version"), a);
        msg.http_port = port(info.get("HttpPort"), a);
        msg.port = port(info.get("Port"), a);
        let ipv4 = info.get("IPv4Address").and_then(Value::as_object);
        msg.ipv4_address = text(ipv4.and_then(|v| v.get("IPAddress")), a);
    }
    // The sources read `mac` at the top level; the brief and some firmwares put it in params
    // (the search request carries an empty `params.mac`) or in deviceInfo.
    let mac_value = [root.get("mac"), params.and_then(|p| p.get("mac")), info.and_then(|i| i.get("mac"))]
        .into_iter()
        .flatten()
        .find(|v| v.as_str().is_some_and(|s| !s.trim().is_empty()));
    if let Some(raw) = text(mac_value, &mut msg.anomalies) {
        match normalize_mac(&raw) {
            Some(mac) => msg.mac = Some(mac),
            None => push_anomaly(&mut msg.anomalies, "bad_mac"),
        }
    }
    Ok(msg)
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(&[a, b1, c, d]) => u32::from_le_bytes([a, b1, c, d]),
        _ => 0,
    }
}

/// A JSON string (or number, which some firmwares send for numeric-looking fields), trimmed and
/// capped at [`MAX_TEXT`] bytes; empty strings count as absent.
fn text(v: Option<&Value>, anomalies: &mut Vec<&'static str>) -> Option<String> {
    let s = match v? {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => return None,
        _ => {
            push_anomaly(anomalies, "unexpected_type");
            return None;
        }
    };
    if s.is_empty() {
        return None;
    }
    if s.len() <= MAX_TEXT {
        return Some(s);
    }
    push_anomaly(anomalies, "text_truncated");
    let mut cut = MAX_TEXT;
    while cut > 0 && !s.is_char_boundary(cut) {
        cut -= 1;
    }
    Some(s.get(..cut).unwrap_or("").to_string())
}

/// Ports arrive as numbers (ethodump-ng stringifies them) or numeric strings.
fn port(v: Option<&Value>, anomalies: &mut Vec<&'static str>) -> Option<u16> {
    let parsed = match v? {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(s) => s.trim().parse::<u16>().ok(),
        Value::Null => return None,
        _ => None,
    };
    if parsed.is_none() {
        push_anomaly(anomalies, "bad_port");
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a datagram as UniversalScanner's `Dahua2.sender` and mcw0's `DHDiscover` do:
    /// header size 0x20, "DHIP", session id, request id, length, 0, length, 0.
    fn frame(session: u32, id: u32, body: &[u8], declared: u32) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&0x20u32.to_le_bytes());
        p.extend_from_slice(b"DHIP");
        p.extend_from_slice(&session.to_le_bytes());
        p.extend_from_slice(&id.to_le_bytes());
        p.extend_from_slice(&declared.to_le_bytes());
        p.extend_from_slice(&0u32.to_le_bytes());
        p.extend_from_slice(&declared.to_le_bytes());
        p.extend_from_slice(&0u32.to_le_bytes());
        p.extend_from_slice(body);
        p
    }

    /// The search body mcw0's `DHDiscover()` sends (json.dumps of its query_args).
    const SEARCH: &str =
        r#"{"id": 10000, "method": "DHDiscover.search", "params": {"mac": "", "uni": 1}, "session": 0}"#;

    /// A device reply with the fields ethodump-ng `dhip.py` and mcw0 read; values are made up
    /// (model from ethodump-ng's table, version in the form CAMERA-PROTOCOLS.md shows).
    const NOTIFY: &str = r#"{"mac":"3C:EF:8C:12:34:56","method":"client.notifyDevInfo","params":{"deviceInfo":{"AlarmInputChannels":1,"DeviceClass":"IPC","DeviceType":"IPC-HDW2431T-AS-S2","HttpPort":80,"IPv4Address":{"DefaultGateway":"192.168.1.1","DhcpEnable":false,"IPAddress":"192.168.1.108","SubnetMask":"255.255.255.0"},"MachineName":"cam1","Port":37777,"SerialNo":"6J0ABC1234567","Vendor":"Dahua","Version":"2.800.0000000.29.R"}}}"#;

    #[test]
    fn search_request() {
        let p = frame(0, 0, SEARCH.as_bytes(), SEARCH.len() as u32);
        let m = parse(&p).unwrap();
        assert_eq!(m.method.as_deref(), Some("DHDiscover.search"));
        assert_eq!(m.mac, None);
        assert_eq!(m.device_type, None);
        assert!(m.anomalies.is_empty(), "{:?}", m.anomalies);
    }

    #[test]
    fn device_reply() {
        let mut body = NOTIFY.as_bytes().to_vec();
        body.extend_from_slice(b"\0\0");
        let p = frame(0x1122, 7, &body, body.len() as u32);
        let m = parse(&p).unwrap();
        assert_eq!(m.method.as_deref(), Some("client.notifyDevInfo"));
        assert_eq!((m.session_id, m.request_id), (0x1122, 7));
        assert_eq!(m.device_class.as_deref(), Some("IPC"));
        assert_eq!(m.device_type.as_deref(), Some("IPC-HDW2431T-AS-S2"));
        assert_eq!(m.serial_no.as_deref(), Some("6J0ABC1234567"));
        assert_eq!(m.version.as_deref(), Some("2.800.0000000.29.R"));
        assert_eq!(m.http_port, Some(80));
        assert_eq!(m.port, Some(37777));
        assert_eq!(m.ipv4_address.as_deref(), Some("192.168.1.108"));
        assert_eq!(m.mac.as_deref(), Some("3c:ef:8c:12:34:56"));
        assert!(m.anomalies.is_empty(), "{:?}", m.anomalies);
    }

    #[test]
    fn mac_in_params_or_device_info_and_string_ports() {
        let body = br#"{"method":"client.notifyDevInfo","params":{"mac":"","deviceInfo":{"mac":"3c-ef-8c-00-00-01","HttpPort":"8080","Port":"x"}}}"#;
        let m = parse(&frame(0, 0, body, body.len() as u32)).unwrap();
        assert_eq!(m.mac.as_deref(), Some("3c:ef:8c:00:00:01"));
        assert_eq!(m.http_port, Some(8080));
        assert_eq!(m.port, None);
        assert!(m.anomalies.contains(&"bad_port"));
        let body = br#"{"params":{"mac":"3c:ef:8c:00:00:02"}}"#;
        let m = parse(&frame(0, 0, body, body.len() as u32)).unwrap();
        assert_eq!(m.mac.as_deref(), Some("3c:ef:8c:00:00:02"));
    }

    #[test]
    fn length_fields_disagreeing_are_tolerated() {
        let p = frame(0, 0, NOTIFY.as_bytes(), 5);
        let m = parse(&p).unwrap();
        assert_eq!(m.device_type.as_deref(), Some("IPC-HDW2431T-AS-S2"));
        assert!(m.anomalies.contains(&"length_disagrees"));
        let mut p = frame(0, 0, NOTIFY.as_bytes(), NOTIFY.len() as u32);
        p[24] ^= 1;
        p[0] = 0x40;
        let m = parse(&p).unwrap();
        assert!(m.anomalies.contains(&"length_mismatch"));
        assert!(m.anomalies.contains(&"unexpected_header_size"));
        let mut body = NOTIFY.as_bytes().to_vec();
        body.extend_from_slice(b"{garbage");
        let m = parse(&frame(0, 0, &body, NOTIFY.len() as u32)).unwrap();
        assert!(m.anomalies.contains(&"trailing_data"));
    }

    #[test]
    fn errors() {
        assert_eq!(parse(b"DHIP"), Err("truncated"));
        assert_eq!(parse(&[0u8; 40]), Err("bad_magic"));
        assert_eq!(parse(&frame(0, 0, b"", 0)), Err("no_body"));
        assert_eq!(parse(&frame(0, 0, b"\0\0\0", 3)), Err("no_body"));
        assert_eq!(parse(&frame(0, 0, b"{\"method\":", 10)), Err("bad_json"));
        assert_eq!(parse(&frame(0, 0, b"[1,2]", 5)), Err("not_object"));
        let big = format!("{{\"x\":\"{}\"}}", "a".repeat(MAX_JSON));
        assert_eq!(parse(&frame(0, 0, big.as_bytes(), 0)), Err("too_large"));
    }

    #[test]
    fn strings_are_capped_and_types_checked() {
        let body = format!(
            r#"{{"method":"client.notifyDevInfo","params":{{"deviceInfo":{{"SerialNo":"{}","DeviceType":["x"],"Version":2}}}},"mac":"zz"}}"#,
            "é".repeat(1000)
        );
        let m = parse(&frame(0, 0, body.as_bytes(), body.len() as u32)).unwrap();
        assert!(m.serial_no.as_ref().unwrap().len() <= MAX_TEXT);
        assert_eq!(m.device_type, None);
        assert_eq!(m.version.as_deref(), Some("2"));
        for label in ["text_truncated", "unexpected_type", "bad_mac"] {
            assert!(m.anomalies.contains(&label), "{label} missing from {:?}", m.anomalies);
        }
    }

    #[test]
    fn fuzz_prefixes_and_bit_flips_do_not_panic() {
        let samples = [
            frame(0, 0, SEARCH.as_bytes(), SEARCH.len() as u32),
            frame(3, 9, NOTIFY.as_bytes(), NOTIFY.len() as u32),
        ];
        crate::hostile::each_variant(&samples, |v| {
            let _ = parse(v);
        });
    }
}
