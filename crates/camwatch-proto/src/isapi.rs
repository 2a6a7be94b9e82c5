//! Hikvision ISAPI response bodies (`/ISAPI/System/deviceInfo`, `/ISAPI/System/Network/EZVIZ`)
//! and Dahua `/cgi-bin/magicBox.cgi` bodies, as seen in HTTP responses.
//!
//! Sources (CAMERA-PROTOCOLS.md rows "Hikvision ISAPI device info", "Hikvision cloud setting",
//! "Dahua HTTP"):
//! - `<DeviceInfo>` children: cameronnewman/hikvision-tooling `internal/isapi/client.go`,
//!   maciej-or/hikvision_next test fixtures. The real bodies in
//!   `tests/data/corpus/hikvision-isapi/` (one XML file, and JSON dumps in which each ISAPI path
//!   maps to its response converted element-for-element to JSON) are what the tests run on.
//!   Cameras use the namespace `http://www.hikvision.com/ver20/XMLSchema`, a DS-7608NXI NVR
//!   `http://www.isapi.org/ver20/XMLSchema`: elements are matched by local name only.
//! - `<EZVIZ>`: `enabled`, `registerStatus`, `hostName` per CAMERA-PROTOCOLS.md ("public ISAPI
//!   clients"). No real EZVIZ body is in the corpus (the dumps only carry `isSupportEZVIZ`
//!   capabilities); `redirect`, `serverDiscoveryMode`, `serverAddress/ipAddress`,
//!   `offlineStatus` and `verificationCode` are from memory of Hikvision's ISAPI documentation:
//!   **unverified**. The verification code is a device secret (it protects cloud binding and
//!   stream encryption), so only its presence is recorded.
//! - D-Link HNAP (`POST /HNAP1/`, SOAPAction `GetDeviceSettings`): the
//!   `GetDeviceSettingsResponse` a real D-Link DCS-935L sends in
//!   `tests/data/corpus/camera/iotsentinel_D-LinkCam_Setup-A-1-STA.pcap` (`VendorName`, `ModelName`,
//!   `FirmwareVersion`, `HardwareVersion`, `DeviceMacId`, `DeviceName`).
//! - magicBox: `key=value` lines, e.g. `version=2.800.0000000.29.R,build:2021-08-30`,
//!   `type=IPC-…`, `sn=…` (mageni `gb_dahua_devices_http_detect.nasl`).

use serde::Serialize;

use super::record::{normalize_mac, set_bool, set_str};

use super::xml::{push_anomaly, root_leaves, truncate, walk_xml};

/// Input beyond this many bytes is not looked at (a deviceInfo body is about 1.2 KiB).
const MAX_INPUT: usize = 64 * 1024;
/// Text kept per element, and per magicBox value.
const MAX_TEXT: usize = 1024;
const MAX_ELEMENTS: usize = 2048;
/// magicBox pairs kept (getSystemInfo, the longest, has about ten).
const MAX_PAIRS: usize = 64;
/// Longest magicBox key (Dahua config keys look like `table.General.MachineName`).
const MAX_KEY: usize = 128;

/// `<DeviceInfo>` from `GET /ISAPI/System/deviceInfo`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IsapiDeviceInfo {
    pub device_name: Option<String>,
    pub device_id: Option<String>,
    pub model: Option<String>,
    pub serial_number: Option<String>,
    /// Normalised to `aa:bb:cc:dd:ee:ff` when it is a MAC (devices already send that form).
    pub mac_address: Option<String>,
    /// e.g. "V5.7.18".
    pub firmware_version: Option<String>,
    /// e.g. "build 240826".
    pub firmware_released_date: Option<String>,
    pub encoder_version: Option<String>,
    pub encoder_released_date: Option<String>,
    pub hardware_version: Option<String>,
    /// "IPCamera", "IPDome", "NVR", "DVR", ….
    pub device_type: Option<String>,
    pub anomalies: Vec<&'static str>,
}

/// Identity from a D-Link HNAP `GetDeviceSettingsResponse`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HnapDeviceSettings {
    pub vendor_name: Option<String>,
    pub model_name: Option<String>,
    pub model_description: Option<String>,
    pub device_name: Option<String>,
    pub firmware_version: Option<String>,
    pub hardware_version: Option<String>,
    pub device_mac: Option<String>,
    pub anomalies: Vec<&'static str>,
}

/// Parses a SOAP envelope whose body is an HNAP `GetDeviceSettingsResponse`.
pub fn parse_hnap_device_settings(xml: &[u8]) -> Result<HnapDeviceSettings, &'static str> {
    let mut anomalies = Vec::new();
    let mut leaves: Vec<(String, String)> = Vec::new();
    let mut seen_response = false;
    walk_xml(
        xml,
        &mut anomalies,
        |_| MAX_TEXT,
        |path, text| {
            // Envelope / Body / GetDeviceSettingsResponse / leaf
            if let [_, _, response, leaf] = path {
                if response == "GetDeviceSettingsResponse" && leaves.len() < MAX_ELEMENTS {
                    seen_response = true;
                    leaves.push((leaf.clone(), text.to_string()));
                }
            }
        },
    )?;
    if !seen_response {
        return Err("not_hnap_device_settings");
    }
    let mut out = HnapDeviceSettings {
        vendor_name: None,
        model_name: None,
        model_description: None,
        device_name: None,
        firmware_version: None,
        hardware_version: None,
        device_mac: None,
        anomalies,
    };
    for (name, text) in leaves {
        let slot = match name.as_str() {
            "VendorName" => &mut out.vendor_name,
            "ModelName" => &mut out.model_name,
            "ModelDescription" => &mut out.model_description,
            "DeviceName" => &mut out.device_name,
            "FirmwareVersion" => &mut out.firmware_version,
            "HardwareVersion" => &mut out.hardware_version,
            "DeviceMacId" => &mut out.device_mac,
            _ => continue,
        };
        if slot.is_none() && !text.is_empty() {
            *slot = Some(text);
        }
    }
    Ok(out)
}

/// Parses a `<DeviceInfo>` body.
///
/// Errors: "not_xml", "response_status" (an ISAPI `<ResponseStatus>` error body, e.g. on a
/// failed login), "not_device_info" (another root element).
pub fn parse_device_info(xml: &[u8]) -> Result<IsapiDeviceInfo, &'static str> {
    let mut anomalies = Vec::new();
    let (root, leaves) = root_leaves(xml, &mut anomalies, MAX_TEXT, MAX_ELEMENTS)?;
    match root.as_str() {
        "DeviceInfo" => {}
        "ResponseStatus" => return Err("response_status"),
        _ => return Err("not_device_info"),
    }
    let mut info = IsapiDeviceInfo {
        device_name: None,
        device_id: None,
        model: None,
        serial_number: None,
        mac_address: None,
        firmware_version: None,
        firmware_released_date: None,
        encoder_version: None,
        encoder_released_date: None,
        hardware_version: None,
        device_type: None,
        anomalies,
    };
    for (name, text) in leaves {
        let slot = match name.as_str() {
            "deviceName" => &mut info.device_name,
            "deviceID" => &mut info.device_id,
            "model" => &mut info.model,
            "serialNumber" => &mut info.serial_number,
            "macAddress" => &mut info.mac_address,
            "firmwareVersion" => &mut info.firmware_version,
            "firmwareReleasedDate" => &mut info.firmware_released_date,
            "encoderVersion" => &mut info.encoder_version,
            "encoderReleasedDate" => &mut info.encoder_released_date,
            "hardwareVersion" => &mut info.hardware_version,
            "deviceType" => &mut info.device_type,
            _ => continue,
        };
        set_str(slot, text, &mut info.anomalies);
    }
    if let Some(raw) = info.mac_address.take() {
        match normalize_mac(&raw) {
            Some(mac) => info.mac_address = Some(mac),
            None => {
                // Keep what the device said: ISAPI is authenticated, so the value is trusted
                // more than a discovery datagram's, and rules may still match on it.
                push_anomaly(&mut info.anomalies, "bad_mac");
                info.mac_address = Some(raw);
            }
        }
    }
    Ok(info)
}

/// `<EZVIZ>` from `GET /ISAPI/System/Network/EZVIZ`: the Hik-Connect / EZVIZ cloud setting.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EzvizSettings {
    /// `<enabled>`: cloud access switched on.
    pub enabled: Option<bool>,
    /// `<registerStatus>`: currently registered with the cloud.
    pub register_status: Option<bool>,
    /// `<hostName>` (at any depth; e.g. `litedev.hik-connect.com`).
    pub host_name: Option<String>,
    /// `<ipAddress>` (at any depth), when the server is given by address. **Unverified**.
    pub ip_address: Option<String>,
    /// `<redirect>`. **Unverified**.
    pub redirect: Option<bool>,
    /// `<serverDiscoveryMode>` ("auto" / "manual"). **Unverified**.
    pub server_discovery_mode: Option<String>,
    /// `<offlineStatus>`. **Unverified**.
    pub offline_status: Option<String>,
    /// Whether a non-empty `<verificationCode>` was present; the code itself is never kept.
    pub verification_code_present: bool,
    pub anomalies: Vec<&'static str>,
}

/// Parses an `<EZVIZ>` body.
///
/// Errors: "not_xml", "response_status", "not_ezviz".
pub fn parse_ezviz(xml: &[u8]) -> Result<EzvizSettings, &'static str> {
    let mut anomalies = Vec::new();
    // (local name, whether a direct child of the root, text)
    let mut leaves: Vec<(String, bool, String)> = Vec::new();
    let root = walk_xml(
        xml,
        &mut anomalies,
        |_| MAX_TEXT,
        |path, text| {
            if path.len() >= 2 && leaves.len() < MAX_ELEMENTS {
                if let Some(leaf) = path.last() {
                    leaves.push((leaf.clone(), path.len() == 2, text.to_string()));
                }
            }
        },
    )?;
    match root.as_str() {
        "EZVIZ" => {}
        "ResponseStatus" => return Err("response_status"),
        _ => return Err("not_ezviz"),
    }
    let mut s = EzvizSettings {
        enabled: None,
        register_status: None,
        host_name: None,
        ip_address: None,
        redirect: None,
        server_discovery_mode: None,
        offline_status: None,
        verification_code_present: false,
        anomalies,
    };
    for (name, top, text) in leaves {
        let a = &mut s.anomalies;
        // Switches are the root's own children; the server name may sit in a nested
        // address element (`serverAddress/hostName`, unverified).
        match (name.as_str(), top) {
            ("enabled", true) => set_bool(&mut s.enabled, &text, a),
            ("registerStatus", true) => set_bool(&mut s.register_status, &text, a),
            ("redirect", true) => set_bool(&mut s.redirect, &text, a),
            ("serverDiscoveryMode", true) => set_str(&mut s.server_discovery_mode, text, a),
            ("offlineStatus", true) => set_str(&mut s.offline_status, text, a),
            ("hostName", _) => set_str(&mut s.host_name, text, a),
            ("ipAddress", _) => set_str(&mut s.ip_address, text, a),
            ("verificationCode", _) => s.verification_code_present |= !text.is_empty(),
            _ => {}
        }
    }
    Ok(s)
}

/// Parses a Dahua `/cgi-bin/magicBox.cgi?action=…` body into its `key=value` lines, in order:
/// `getSoftwareVersion` → `version=2.800.0000000.29.R,build:2021-08-30`, `getDeviceType` →
/// `type=IPC-…`, `getSerialNo` → `sn=…`, `getSystemInfo` → several lines.
///
/// Lines without `=` or whose key is not a plain identifier (letters, digits, `_ . - [ ]`, at
/// most 128 bytes) are skipped, so error pages and HTML yield nothing. At most 64 pairs, values
/// trimmed and capped at 1024 bytes, only the first 64 KiB read, invalid UTF-8 replaced.
pub fn parse_magicbox(body: &[u8]) -> Vec<(String, String)> {
    let body = body.get(..MAX_INPUT).unwrap_or(body);
    let text = String::from_utf8_lossy(body);
    let mut out = Vec::new();
    for line in text.split('\n') {
        if out.len() >= MAX_PAIRS {
            break;
        }
        let Some((key, value)) = line.split_once('=') else { continue };
        let key = key.trim();
        let valid_key = !key.is_empty()
            && key.len() <= MAX_KEY
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'[' | b']'));
        if !valid_key {
            continue;
        }
        let value = value.trim_matches(|c: char| c.is_whitespace() || c == '\0');
        out.push((key.to_string(), truncate(value, MAX_TEXT).to_string()));
    }
    out
}

#[cfg(test)]
mod hnap_tests {
    use super::*;

    /// The start of the HNAP response in `iotsentinel_D-LinkCam_Setup-A-1-STA.pcap` (a real
    /// D-Link DCS-935L), cut after `HNAPVersion` and closed by hand.
    const DCS_935L: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soap:Envelope xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body><GetDeviceSettingsResponse xmlns=\"http://purenetworks.com/HNAP1/\"><GetDeviceSettingsResult>OK</GetDeviceSettingsResult><Type>ConnectedHomeClient</Type><DeviceName>DCS-935L</DeviceName><VendorName>D-Link</VendorName><ModelDescription>Wireless Internet Camera</ModelDescription><ModelName>DCS-935L</ModelName><DeviceMacId>B0:C5:54:25:5B:0E</DeviceMacId><FirmwareVersion>1.06</FirmwareVersion><FirmwareRegion>Default</FirmwareRegion><LatestFirmwareVersion>1.06</LatestFirmwareVersion><HardwareVersion>A1</HardwareVersion><HNAPVersion>0111</HNAPVersion></GetDeviceSettingsResponse></soap:Body></soap:Envelope>";

    #[test]
    fn real_dlink_device_settings() {
        let s = parse_hnap_device_settings(DCS_935L.as_bytes()).unwrap();
        assert_eq!(s.vendor_name.as_deref(), Some("D-Link"));
        assert_eq!(s.model_name.as_deref(), Some("DCS-935L"));
        assert_eq!(s.firmware_version.as_deref(), Some("1.06"));
        assert_eq!(s.hardware_version.as_deref(), Some("A1"));
        assert_eq!(s.device_mac.as_deref(), Some("B0:C5:54:25:5B:0E"));
        assert_eq!(parse_hnap_device_settings(b"<DeviceInfo/>").err(), Some("not_hnap_device_settings"));
        for n in 0..DCS_935L.len() {
            let _ = parse_hnap_device_settings(&DCS_935L.as_bytes()[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn corpus(name: &str) -> Vec<u8> {
        let path =
            format!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/corpus/hikvision-isapi/{}"), name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("corpus file {path} is missing ({e}); tests need it"))
    }

    /// The JSON dumps in the corpus (hikvision_next fixtures), listed so a missing one fails.
    const DUMPS: &[&str] = &[
        "devices__DS-2CD2346G2-ISU.json",
        "devices__DS-2CD2443G0-IW.json",
        "devices__DS-2CD2T46G2-ISU.json",
        "devices__DS-2SE4C425MWG-E-26.json",
        "devices__DS-7608NXI-I2.json",
        "devices__DS-7616NI-Q2.json",
        "devices__iDS-7204HUHI-M1.json",
    ];

    fn escape(s: &str) -> String {
        s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
    }

    /// Turns the dumps' element-for-element JSON (`@attr` keys, `#text`, arrays for repeated
    /// elements, null for empty ones) back into the XML body the device sent.
    fn to_xml(name: &str, v: &Value, out: &mut String) {
        match v {
            Value::Array(items) => items.iter().for_each(|i| to_xml(name, i, out)),
            Value::Null => out.push_str(&format!("<{name}/>")),
            Value::Object(map) => {
                out.push_str(&format!("<{name}"));
                for (k, a) in map.iter().filter(|(k, _)| k.starts_with('@')) {
                    out.push_str(&format!(" {}=\"{}\"", &k[1..], escape(a.as_str().unwrap_or_default())));
                }
                out.push('>');
                for (k, c) in map.iter().filter(|(k, _)| !k.starts_with('@')) {
                    if k == "#text" {
                        out.push_str(&escape(c.as_str().unwrap_or_default()));
                    } else {
                        to_xml(k, c, out);
                    }
                }
                out.push_str(&format!("</{name}>"));
            }
            Value::String(s) => out.push_str(&format!("<{name}>{}</{name}>", escape(s))),
            other => out.push_str(&format!("<{name}>{other}</{name}>")),
        }
    }

    fn dump(name: &str) -> Value {
        serde_json::from_slice(&corpus(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    #[test]
    fn device_info_xml_from_corpus() {
        // tests/data/corpus/hikvision-isapi/ISAPI__System.deviceInfo__ipc1.xml (hikvision_next).
        let i = parse_device_info(&corpus("ISAPI__System.deviceInfo__ipc1.xml")).unwrap();
        assert_eq!(i.device_name.as_deref(), Some("yard"));
        assert_eq!(i.device_id.as_deref(), Some("6aff4000-1f90-00b0-0000-000c00000000"));
        assert_eq!(i.model.as_deref(), Some("DS-2CD2386G2-IU"));
        assert_eq!(i.serial_number.as_deref(), Some("DS-2CD2386G2-IU00000000AAWRJ00000000"));
        assert_eq!(i.mac_address.as_deref(), Some("a6:63:9e:f8:01:09"));
        assert_eq!(i.firmware_version.as_deref(), Some("V5.7.18"));
        assert_eq!(i.firmware_released_date.as_deref(), Some("build 240826"));
        assert_eq!(i.encoder_version.as_deref(), Some("V7.3"));
        assert_eq!(i.encoder_released_date.as_deref(), Some("build 240801"));
        assert_eq!(i.hardware_version.as_deref(), Some("0x0"));
        assert_eq!(i.device_type.as_deref(), Some("IPCamera"));
        assert!(i.anomalies.is_empty(), "{:?}", i.anomalies);
    }

    #[test]
    fn device_info_from_every_json_dump() {
        let fields = [
            "deviceName",
            "deviceID",
            "model",
            "serialNumber",
            "macAddress",
            "firmwareVersion",
            "firmwareReleasedDate",
            "encoderVersion",
            "encoderReleasedDate",
            "hardwareVersion",
            "deviceType",
        ];
        for name in DUMPS {
            let json = dump(name);
            let di = &json["data"]["ISAPI"]["System/deviceInfo"]["response"]["DeviceInfo"];
            assert!(di.is_object(), "{name}: no System/deviceInfo response");
            let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
            to_xml("DeviceInfo", di, &mut xml);
            let info = parse_device_info(xml.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
            let got = [
                &info.device_name,
                &info.device_id,
                &info.model,
                &info.serial_number,
                &info.mac_address,
                &info.firmware_version,
                &info.firmware_released_date,
                &info.encoder_version,
                &info.encoder_released_date,
                &info.hardware_version,
                &info.device_type,
            ];
            for (field, value) in fields.iter().zip(got) {
                assert_eq!(value.as_deref(), di[field].as_str(), "{name}: {field}");
            }
            assert!(info.model.is_some() && info.firmware_version.is_some(), "{name}");
            assert!(info.anomalies.is_empty(), "{name}: {:?}", info.anomalies);
        }
    }

    #[test]
    fn other_isapi_bodies_are_not_device_info() {
        // Capabilities and streaming bodies from the dumps are other roots.
        let json = dump("devices__DS-7608NXI-I2.json");
        for path in ["System/capabilities", "Streaming/channels/101", "ContentMgmt/InputProxy/channels"] {
            let resp = json["data"]["ISAPI"][path]["response"].as_object().unwrap();
            let (root, v) = resp.iter().next().unwrap();
            let mut xml = String::new();
            to_xml(root, v, &mut xml);
            assert_eq!(parse_device_info(xml.as_bytes()), Err("not_device_info"), "{path}");
            assert_eq!(parse_ezviz(xml.as_bytes()), Err("not_ezviz"), "{path}");
        }
        // The usual ISAPI error body (built from its common form, values made up).
        let status = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><ResponseStatus version=\"2.0\" xmlns=\"http://www.hikvision.com/ver20/XMLSchema\"><requestURL>/ISAPI/System/deviceInfo</requestURL><statusCode>4</statusCode><statusString>Invalid Operation</statusString><subStatusCode>notSupport</subStatusCode></ResponseStatus>";
        assert_eq!(parse_device_info(status), Err("response_status"));
        assert_eq!(parse_ezviz(status), Err("response_status"));
        assert_eq!(parse_device_info(b"<html><body>401</body></html>"), Err("not_device_info"));
        assert_eq!(parse_device_info(b"{\"DeviceInfo\":{}}"), Err("not_xml"));
    }

    #[test]
    fn device_info_oddities() {
        let xml = b"<DeviceInfo><model>A</model><model>B</model><macAddress>not-a-mac</macAddress><Nested><model>C</model></Nested></DeviceInfo>";
        let i = parse_device_info(xml).unwrap();
        assert_eq!(i.model.as_deref(), Some("A"));
        assert_eq!(i.mac_address.as_deref(), Some("not-a-mac"));
        assert!(i.anomalies.contains(&"duplicate_element"));
        assert!(i.anomalies.contains(&"bad_mac"));
        let i = parse_device_info(b"<DeviceInfo><deviceName>Gate & Yard</deviceName></DeviceInfo>").unwrap();
        assert_eq!(i.device_name.as_deref(), Some("Gate & Yard"));
        assert_eq!(i.anomalies, vec!["dangling_amp"]);
        let i = parse_device_info(b"<DeviceInfo><macAddress>E0-2C-37-93-D9-54</macAddress></DeviceInfo>")
            .unwrap();
        assert_eq!(i.mac_address.as_deref(), Some("e0:2c:37:93:d9:54"));
    }

    /// Built from CAMERA-PROTOCOLS.md's EZVIZ row (enabled, registerStatus, hostName
    /// `litedev.hik-connect.com`); the other elements and the nesting of hostName are
    /// unverified. No real EZVIZ body is in the corpus.
    const EZVIZ: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<EZVIZ version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
<enabled>true</enabled>
<registerStatus>false</registerStatus>
<redirect>true</redirect>
<serverDiscoveryMode>manual</serverDiscoveryMode>
<serverAddress><addressingFormatType>hostname</addressingFormatType><hostName>litedev.hik-connect.com</hostName></serverAddress>
<verificationCode>ABCDEF</verificationCode>
<offlineStatus>timeout</offlineStatus>
</EZVIZ>"#;

    #[test]
    fn ezviz() {
        let s = parse_ezviz(EZVIZ.as_bytes()).unwrap();
        assert_eq!(s.enabled, Some(true));
        assert_eq!(s.register_status, Some(false));
        assert_eq!(s.redirect, Some(true));
        assert_eq!(s.server_discovery_mode.as_deref(), Some("manual"));
        assert_eq!(s.host_name.as_deref(), Some("litedev.hik-connect.com"));
        assert_eq!(s.ip_address, None);
        assert_eq!(s.offline_status.as_deref(), Some("timeout"));
        assert!(s.verification_code_present);
        assert!(s.anomalies.is_empty(), "{:?}", s.anomalies);
        let json = serde_json::to_string(&s).unwrap();
        assert!(!json.contains("ABCDEF"), "the verification code leaked: {json}");

        let flat = b"<EZVIZ><enabled>false</enabled><hostName>dev.ys7.com</hostName><X><enabled>true</enabled></X></EZVIZ>";
        let s = parse_ezviz(flat).unwrap();
        assert_eq!(s.enabled, Some(false));
        assert_eq!(s.host_name.as_deref(), Some("dev.ys7.com"));
        assert!(!s.verification_code_present);
    }

    #[test]
    fn magicbox() {
        // Body forms from CAMERA-PROTOCOLS.md's Dahua HTTP row (values made up).
        let v = parse_magicbox(b"version=2.800.0000000.29.R,build:2021-08-30\r\n");
        assert_eq!(v, vec![("version".to_string(), "2.800.0000000.29.R,build:2021-08-30".to_string())]);
        let v = parse_magicbox(b"type=IPC-HDW2431T-AS-S2\r\n");
        assert_eq!(v, vec![("type".to_string(), "IPC-HDW2431T-AS-S2".to_string())]);
        let v = parse_magicbox(
            b"appAutoStart=true\r\ndeviceType=IPC-HFW2439S-SA-LED-S2\r\nhardwareVersion=1.00\r\nprocessor=SSC335\r\nserialNumber=7A0ABC1234567\r\nupdateSerial=IPC-HX2XXX-Ggrape\r\n\0",
        );
        assert_eq!(v.len(), 6);
        assert_eq!(v[4], ("serialNumber".to_string(), "7A0ABC1234567".to_string()));
        assert_eq!(parse_magicbox(b"sn=a=b\n"), vec![("sn".to_string(), "a=b".to_string())]);
        assert!(parse_magicbox(b"Error\r\nBad Request!\r\n").is_empty());
        assert!(parse_magicbox(b"<html><meta http-equiv=\"refresh\" content=\"0\"></html>").is_empty());
        assert!(parse_magicbox(b"").is_empty());
        let many: String = (0..500).map(|i| format!("k{i}=v\n")).collect();
        assert_eq!(parse_magicbox(many.as_bytes()).len(), MAX_PAIRS);
        let long = format!("version={}\n", "9".repeat(5000));
        assert_eq!(parse_magicbox(long.as_bytes())[0].1.len(), MAX_TEXT);
        assert_eq!(parse_magicbox(b"table.General.MachineName=\xff\xfecam\n")[0].1, "\u{fffd}\u{fffd}cam");
    }

    #[test]
    fn fuzz_prefixes_and_bit_flips_do_not_panic() {
        let samples = [
            corpus("ISAPI__System.deviceInfo__ipc1.xml"),
            EZVIZ.as_bytes().to_vec(),
            b"version=2.800.0000000.29.R,build:2021-08-30\r\ntype=IPC\r\nsn=1\r\n".to_vec(),
        ];
        crate::hostile::each_variant(&samples, |v| {
            let _ = parse_device_info(v);
            let _ = parse_ezviz(v);
            let _ = parse_magicbox(v);
        });
    }
}
