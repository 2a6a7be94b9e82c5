//! Management-plane messages: Hikvision ISAPI (device info, cloud setting, firmware upload, the
//! web server's 401), Dahua JSON-RPC login, the ONVIF device service, WS-Discovery, and the
//! `digicap.dav` firmware image.
//!
//! Shapes follow CAMERA-PROTOCOLS.md and the real ISAPI body in the shared corpus
//! (`hikvision-isapi/ISAPI__System.deviceInfo__ipc1.xml`). Credentials are synthetic: digest
//! responses are computed from a random per-capture password, WS-Security digests are random.

use anyhow::Context;
use base64::Engine as _;
use md5::{Digest as _, Md5};
use rand::{Rng, RngExt};
use sha2::Sha256;

use super::net::{uuid, Camera, Vendor};

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of `data`, lower-case hex.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn md5_hex(s: &str) -> String {
    hex(&Md5::digest(s.as_bytes()))
}

/// `2026-01-01T00:00:01Z`.
pub(crate) fn iso_time(unix_secs: u64) -> anyhow::Result<String> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    let secs = i64::try_from(unix_secs).context("timestamp out of range")?;
    Ok(time::OffsetDateTime::from_unix_timestamp(secs)?.format(&fmt)?)
}

fn mac_colon(mac: [u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// Splits a SADP `SoftwareVersion` (`V5.7.3build 220112`) into ISAPI's `firmwareVersion`
/// (`V5.7.3`) and `firmwareReleasedDate` (`build 220112`).
pub(crate) fn hik_version_parts(version: &str) -> (String, String) {
    match version.split_once("build") {
        Some((v, b)) => (v.trim_end().to_string(), format!("build {}", b.trim_start())),
        None => (version.to_string(), String::new()),
    }
}

/// A complete HTTP/1.1 message: start line, headers, `Content-Length` when there is a body.
fn http_message(start: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut s = format!("{start}\r\n");
    for (k, v) in headers {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        s.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    s.push_str("\r\n");
    let mut out = s.into_bytes();
    out.extend_from_slice(body);
    out
}

// ---------------------------------------------------------------------------------------------
// Hikvision ISAPI

/// Digest credentials of one client towards one camera (RFC 7616, MD5, `qop=auth`), as a client
/// holding a nonce from an earlier challenge sends them pre-emptively.
pub(crate) struct Digest {
    realm: String,
    nonce: String,
    cnonce: String,
    /// MD5(user:realm:password) of a random password.
    ha1: String,
    nc: u32,
}

impl Digest {
    const USER: &'static str = "admin";

    pub(crate) fn new(rng: &mut impl Rng, cam: &Camera) -> Digest {
        let realm = hik_realm(cam);
        let nonce = hik_nonce(rng);
        let mut c = [0u8; 8];
        rng.fill_bytes(&mut c);
        let mut password = [0u8; 9];
        rng.fill_bytes(&mut password);
        let ha1 = md5_hex(&format!("{}:{realm}:{}", Self::USER, hex(&password)));
        Digest { realm, nonce, cnonce: hex(&c), ha1, nc: 0 }
    }

    /// The `Authorization` header value for one request.
    pub(crate) fn authorization(&mut self, method: &str, uri: &str) -> String {
        self.nc += 1;
        let nc = format!("{:08x}", self.nc);
        let ha2 = md5_hex(&format!("{method}:{uri}"));
        let response = md5_hex(&format!("{}:{}:{nc}:{}:auth:{ha2}", self.ha1, self.nonce, self.cnonce));
        format!(
            "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
             algorithm=MD5, response=\"{response}\", qop=auth, nc={nc}, cnonce=\"{cnonce}\"",
            user = Self::USER,
            realm = self.realm,
            nonce = self.nonce,
            cnonce = self.cnonce,
        )
    }
}

/// The digest realm of a Hikvision camera: `IP Camera(J1234)`, a piece of the serial number.
pub(crate) fn hik_realm(cam: &Camera) -> String {
    let tail = cam.serial.len().saturating_sub(9);
    let piece = cam.serial.get(tail..tail + 5).unwrap_or("C0000");
    format!("IP Camera({piece})")
}

/// A Hikvision digest nonce: the hex of a base64 string.
fn hik_nonce(rng: &mut impl Rng) -> String {
    let mut raw = [0u8; 18];
    rng.fill_bytes(&mut raw);
    hex(base64::engine::general_purpose::STANDARD.encode(raw).as_bytes())
}

/// URI of the ISAPI device information resource.
pub(crate) const ISAPI_DEVICE_INFO: &str = "/ISAPI/System/deviceInfo";
/// URI of the ISAPI firmware upload.
pub(crate) const ISAPI_UPDATE_FIRMWARE: &str = "/ISAPI/System/updateFirmware";

/// URI of the ISAPI Hik-Connect (EZVIZ) cloud setting.
pub(crate) const ISAPI_EZVIZ: &str = "/ISAPI/System/Network/EZVIZ";

/// `GET /ISAPI/System/deviceInfo` from the NVR.
pub(crate) fn isapi_device_info_request(cam: &Camera, auth: &mut Digest) -> Vec<u8> {
    isapi_get(cam, auth, ISAPI_DEVICE_INFO)
}

/// An authenticated ISAPI `GET` of `uri`, as the NVR sends it.
pub(crate) fn isapi_get(cam: &Camera, auth: &mut Digest, uri: &str) -> Vec<u8> {
    let headers = [
        ("Host", cam.ip.to_string()),
        ("Authorization", auth.authorization("GET", uri)),
        ("Accept", "*/*".to_string()),
        ("Connection", "close".to_string()),
    ];
    http_message(&format!("GET {uri} HTTP/1.1"), &headers, b"")
}

/// `<EZVIZ>` of a camera registered with Hik-Connect (`litedev.hik-connect.com`).
pub(crate) fn isapi_ezviz_enabled() -> &'static str {
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><EZVIZ version=\"2.0\" \
     xmlns=\"http://www.hikvision.com/ver20/XMLSchema\"><enabled>true</enabled>\
     <registerStatus>true</registerStatus><redirect>true</redirect><serverAddress>\
     <addressingFormatType>hostname</addressingFormatType><hostName>litedev.hik-connect.com</hostName>\
     </serverAddress></EZVIZ>"
}

/// The Hikvision web server's digest challenge to an unauthenticated request.
pub(crate) fn hik_unauthorized(rng: &mut impl Rng, cam: &Camera, date: &str) -> Vec<u8> {
    let body = "<!DOCTYPE html>\n<html><head><title>Document Error: Unauthorized</title></head>\n\
                <body><h2>Access Error: 401 -- Unauthorized</h2>\n\
                <p>Authentication Error: Access Denied! Authorization required.</p>\n</body>\n</html>\n";
    let headers = [
        ("Date", date.to_string()),
        ("Server", "App-webs/".to_string()),
        ("Content-Type", "text/html".to_string()),
        ("Connection", "close".to_string()),
        (
            "WWW-Authenticate",
            format!(
                "Digest qop=\"auth\", realm=\"{}\", nonce=\"{}\", stale=\"FALSE\"",
                hik_realm(cam),
                hik_nonce(rng)
            ),
        ),
    ];
    http_message("HTTP/1.1 401 Unauthorized", &headers, body.as_bytes())
}

// ---------------------------------------------------------------------------------------------
// Dahua JSON-RPC

/// URI of the Dahua web login.
pub(crate) const DAHUA_RPC2_LOGIN: &str = "/RPC2_Login";

/// A Dahua web server's JSON answer (no `Server` header, as the web UI sends none).
pub(crate) fn dahua_json_response(body: &str) -> Vec<u8> {
    let headers = [
        ("Connection", "close".to_string()),
        ("Content-Type", "application/json; charset=UTF-8".to_string()),
        ("X-Frame-Options", "SAMEORIGIN".to_string()),
    ];
    http_message("HTTP/1.1 200 OK", &headers, body.as_bytes())
}

/// The answer to a `global.login` that succeeded: a session id and the keep-alive interval.
pub(crate) fn dahua_login_ok(rng: &mut impl Rng, id: u32) -> String {
    let mut session = [0u8; 16];
    rng.fill_bytes(&mut session);
    format!(
        "{{\"id\":{id},\"params\":{{\"keepAliveInterval\":60}},\"result\":true,\"session\":\"{}\"}}",
        hex(&session)
    )
}

/// A Hikvision web server response (`Server: App-webs/`) with an XML body.
pub(crate) fn isapi_response(date: &str, body: &str) -> Vec<u8> {
    let headers = [
        ("Date", date.to_string()),
        ("Server", "App-webs/".to_string()),
        ("Connection", "close".to_string()),
        ("Content-Type", "application/xml".to_string()),
    ];
    http_message("HTTP/1.1 200 OK", &headers, body.as_bytes())
}

/// `<DeviceInfo>` of ISAPI 2.0 with the elements, order and indentation of a real camera's.
/// `firmware` is the version the camera runs, in SADP form.
pub(crate) fn isapi_device_info(cam: &Camera, firmware: &str) -> String {
    let (version, build) = hik_version_parts(firmware);
    // The encoder build matches the SADP `DSPVersion` (`V7.3 build 220112`).
    let serial = &cam.serial;
    let sub_serial = &serial[serial.len().saturating_sub(9)..];
    let elements: [(&str, String); 23] = [
        ("deviceName", "IP CAMERA".into()),
        ("deviceID", cam.uuid.to_ascii_lowercase()),
        ("deviceDescription", "IPCamera".into()),
        ("deviceLocation", "hangzhou".into()),
        ("systemContact", "Hikvision.China".into()),
        ("model", cam.model.into()),
        ("serialNumber", serial.clone()),
        ("macAddress", mac_colon(cam.mac)),
        ("firmwareVersion", version),
        ("firmwareReleasedDate", build),
        ("encoderVersion", "V7.3".into()),
        ("encoderReleasedDate", "build 220112".into()),
        ("bootVersion", "V1.3.4".into()),
        ("bootReleasedDate", "100316".into()),
        ("hardwareVersion", "0x0".into()),
        ("deviceType", "IPCamera".into()),
        ("telecontrolID", "88".into()),
        ("supportBeep", "false".into()),
        ("supportVideoLoss", "false".into()),
        ("firmwareVersionInfo", "B-R-G5-0".into()),
        ("manufacturer", "hikvision".into()),
        ("subSerialNumber", sub_serial.into()),
        ("OEMCode", "1".into()),
    ];
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <DeviceInfo version=\"2.0\" xmlns=\"http://www.hikvision.com/ver20/XMLSchema\">\n",
    );
    for (name, value) in elements {
        s.push_str(&format!("    <{name}>{value}</{name}>\n"));
    }
    s.push_str("</DeviceInfo>\n");
    s
}

/// Head of `PUT /ISAPI/System/updateFirmware` carrying a `body_len`-byte image.
pub(crate) fn isapi_update_firmware_head(cam: &Camera, auth: &mut Digest, body_len: usize) -> Vec<u8> {
    format!(
        "PUT {ISAPI_UPDATE_FIRMWARE} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Mozilla/5.0 (Windows NT 10.0; \
         Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n\
         Accept: */*\r\nAuthorization: {auth}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {body_len}\r\nConnection: close\r\n\r\n",
        host = cam.ip,
        auth = auth.authorization("PUT", ISAPI_UPDATE_FIRMWARE),
    )
    .into_bytes()
}

/// ISAPI `<ResponseStatus>` after an accepted upgrade (the device asks to be rebooted).
pub(crate) fn isapi_upgrade_status() -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <ResponseStatus version=\"2.0\" xmlns=\"http://www.hikvision.com/ver20/XMLSchema\">\n\
         <requestURL>{ISAPI_UPDATE_FIRMWARE}</requestURL>\n<statusCode>7</statusCode>\n\
         <statusString>Reboot Required</statusString>\n<subStatusCode>rebootRequired</subStatusCode>\n\
         </ResponseStatus>\n"
    )
}

// ---------------------------------------------------------------------------------------------
// digicap.dav

/// Length of the XOR-encoded header (and the offset of the first file).
pub(crate) const DIGICAP_HEADER_LEN: usize = 0x6C;
/// XOR key of the header of older images (MatrixEditor/hiktools `fmod/digicap.py`).
pub(crate) const DIGICAP_KEY: [u8; 16] =
    [0xBA, 0xCD, 0xBC, 0xFE, 0xD6, 0xCA, 0xDD, 0xD3, 0xBA, 0xB9, 0xA3, 0xAB, 0xBF, 0xCB, 0xB5, 0xBE];
/// `SWKH` read as a little-endian u32.
pub(crate) const DIGICAP_MAGIC: u32 = 0x484B_5753;
/// Name of the one file entry.
pub(crate) const DIGICAP_FILE: &str = "_cfgUpgClass";
/// Smallest image generated.
pub(crate) const DIGICAP_MIN_LEN: usize = 256;

fn sum_bytes(data: &[u8]) -> u32 {
    data.iter().fold(0u32, |acc, &b| acc.wrapping_add(u32::from(b)))
}

/// Applies (or removes) the header's XOR encoding: key byte `offset mod 16`.
pub(crate) fn digicap_xor(header: &mut [u8]) {
    for (i, b) in header.iter_mut().enumerate() {
        // Key index as MatrixEditor/hiktools `fmod/digicap.py` uses it.
        *b ^= DIGICAP_KEY[(i + (i >> 4)) & 0xF];
    }
}

/// A synthetic firmware image of `size` bytes (at least [`DIGICAP_MIN_LEN`]).
///
/// Plain header, all fields u32 little endian: magic `SWKH` at 0, header checksum at 4 (sum of
/// the header bytes from 12 to 0x6C), header length 0x6C at 8, file count 1 at 12, language 1
/// (English) at 16, device class at 20, OEM code 1 at 24, zeros up to 0x40; at 0x40 one file
/// entry: name[32], length, offset 0x6C and checksum (sum of the file's bytes). The header is
/// then XOR-encoded ([`digicap_xor`]); the file itself is random bytes.
pub(crate) fn digicap(rng: &mut impl Rng, size: usize) -> Vec<u8> {
    let size = size.max(DIGICAP_MIN_LEN);
    let mut img = vec![0u8; size];
    rng.fill_bytes(&mut img[DIGICAP_HEADER_LEN..]);
    let file_len = (size - DIGICAP_HEADER_LEN) as u32;
    let file_sum = sum_bytes(&img[DIGICAP_HEADER_LEN..]);
    let h = &mut img[..DIGICAP_HEADER_LEN];
    let mut put = |at: usize, v: u32| h[at..at + 4].copy_from_slice(&v.to_le_bytes());
    put(0, DIGICAP_MAGIC);
    put(8, DIGICAP_HEADER_LEN as u32);
    put(12, 1);
    put(16, 1);
    put(20, 0x0000_0003);
    put(24, 1);
    put(0x60, file_len);
    put(0x64, DIGICAP_HEADER_LEN as u32);
    put(0x68, file_sum);
    h[0x40..0x40 + DIGICAP_FILE.len()].copy_from_slice(DIGICAP_FILE.as_bytes());
    let header_sum = sum_bytes(&h[12..]);
    h[4..8].copy_from_slice(&header_sum.to_le_bytes());
    digicap_xor(h);
    img
}

// ---------------------------------------------------------------------------------------------
// ONVIF device service

/// Path of the ONVIF device service.
pub(crate) const ONVIF_DEVICE_SERVICE: &str = "/onvif/device_service";
const SOAP_CONTENT_TYPE: &str = "application/soap+xml; charset=utf-8";

/// ONVIF `Manufacturer` (and WS-Discovery `name` prefix) of a vendor.
fn onvif_manufacturer(vendor: Vendor) -> &'static str {
    match vendor {
        Vendor::Hikvision => "HIKVISION",
        Vendor::Dahua => "Dahua",
        Vendor::Axis => "AXIS",
    }
}

/// ONVIF `HardwareId`: Axis reports a hexadecimal product id, Dahua a board revision.
fn onvif_hardware_id(cam: &Camera) -> &'static str {
    match (cam.vendor, cam.model) {
        (Vendor::Axis, "M3106-L Mk II") => "7A1",
        (Vendor::Axis, "P3245-LV") => "8D3",
        (Vendor::Axis, _) => "6E9",
        (Vendor::Dahua, _) => "1.00",
        (Vendor::Hikvision, _) => "88",
    }
}

/// `POST /onvif/device_service` with `GetDeviceInformation` and a WS-Security UsernameToken.
/// `created` is the token's UTC creation time (`2026-01-01T00:00:01Z`).
pub(crate) fn onvif_get_device_information(rng: &mut impl Rng, cam: &Camera, created: &str) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut nonce = [0u8; 16];
    rng.fill_bytes(&mut nonce);
    let mut digest = [0u8; 20];
    rng.fill_bytes(&mut digest);
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Header>\
         <Security s:mustUnderstand=\"1\" xmlns=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd\">\
         <UsernameToken><Username>admin</Username>\
         <Password Type=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest\">{digest}</Password>\
         <Nonce EncodingType=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary\">{nonce}</Nonce>\
         <Created xmlns=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd\">{created}</Created>\
         </UsernameToken></Security></s:Header>\
         <s:Body xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\">\
         <GetDeviceInformation xmlns=\"http://www.onvif.org/ver10/device/wsdl\"/></s:Body></s:Envelope>",
        digest = b64.encode(digest),
        nonce = b64.encode(nonce),
    );
    let headers = [
        ("Host", cam.ip.to_string()),
        ("User-Agent", "gSOAP/2.8".to_string()),
        ("Content-Type", SOAP_CONTENT_TYPE.to_string()),
        ("Connection", "close".to_string()),
    ];
    http_message(&format!("POST {ONVIF_DEVICE_SERVICE} HTTP/1.1"), &headers, body.as_bytes())
}

/// The camera's `GetDeviceInformationResponse` (gSOAP-style envelope).
pub(crate) fn onvif_device_information_response(cam: &Camera, date: &str) -> Vec<u8> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://www.w3.org/2003/05/soap-envelope\" \
         xmlns:SOAP-ENC=\"http://www.w3.org/2003/05/soap-encoding\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" \
         xmlns:tt=\"http://www.onvif.org/ver10/schema\" xmlns:tds=\"http://www.onvif.org/ver10/device/wsdl\">\
         <SOAP-ENV:Header></SOAP-ENV:Header><SOAP-ENV:Body><tds:GetDeviceInformationResponse>\
         <tds:Manufacturer>{manufacturer}</tds:Manufacturer><tds:Model>{model}</tds:Model>\
         <tds:FirmwareVersion>{firmware}</tds:FirmwareVersion><tds:SerialNumber>{serial}</tds:SerialNumber>\
         <tds:HardwareId>{hardware}</tds:HardwareId></tds:GetDeviceInformationResponse>\
         </SOAP-ENV:Body></SOAP-ENV:Envelope>\r\n",
        manufacturer = onvif_manufacturer(cam.vendor),
        model = cam.model,
        firmware = cam.firmware,
        serial = cam.serial,
        hardware = onvif_hardware_id(cam),
    );
    let headers = [
        ("Date", date.to_string()),
        ("Content-Type", SOAP_CONTENT_TYPE.to_string()),
        ("Connection", "close".to_string()),
    ];
    http_message("HTTP/1.1 200 OK", &headers, body.as_bytes())
}

// ---------------------------------------------------------------------------------------------
// WS-Discovery

const WSA_NS: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
const WSD_NS: &str = "http://schemas.xmlsoap.org/ws/2005/04/discovery";

/// `uuid:…` message id.
pub(crate) fn wsd_message_id(rng: &mut impl Rng) -> String {
    format!("uuid:{}", uuid(rng).to_ascii_lowercase())
}

/// The NVR's multicast `Probe` for `dn:NetworkVideoTransmitter`.
pub(crate) fn wsd_probe(message_id: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
         <Envelope xmlns:dn=\"http://www.onvif.org/ver10/network/wsdl\" xmlns=\"http://www.w3.org/2003/05/soap-envelope\">\
         <Header><wsa:MessageID xmlns:wsa=\"{WSA_NS}\">{message_id}</wsa:MessageID>\
         <wsa:To xmlns:wsa=\"{WSA_NS}\">urn:schemas-xmlsoap-org:ws:2005:04:discovery</wsa:To>\
         <wsa:Action xmlns:wsa=\"{WSA_NS}\">{WSD_NS}/Probe</wsa:Action></Header>\
         <Body><Probe xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns=\"{WSD_NS}\">\
         <Types>dn:NetworkVideoTransmitter</Types><Scopes /></Probe></Body></Envelope>"
    )
    .into_bytes()
}

/// Percent-encodes what may not appear in a scope URI path segment (here: spaces).
fn scope_escape(s: &str) -> String {
    s.replace('%', "%25").replace(' ', "%20")
}

/// The camera's ONVIF scopes: type, hardware (model), name (vendor and model), MAC (and the
/// location Hikvision sets by default).
pub(crate) fn onvif_scopes(cam: &Camera) -> String {
    let vendor = onvif_manufacturer(cam.vendor);
    let mut scopes = vec![
        "onvif://www.onvif.org/type/video_encoder".to_string(),
        format!("onvif://www.onvif.org/hardware/{}", scope_escape(cam.model)),
        format!("onvif://www.onvif.org/name/{}", scope_escape(&format!("{vendor} {}", cam.model))),
        format!("onvif://www.onvif.org/MAC/{}", mac_colon(cam.mac)),
    ];
    if cam.vendor == Vendor::Hikvision {
        scopes.push("onvif://www.onvif.org/location/city/hangzhou".to_string());
    }
    scopes.join(" ")
}

/// XAddr of the camera's device service.
pub(crate) fn onvif_xaddr(cam: &Camera) -> String {
    format!("http://{}{ONVIF_DEVICE_SERVICE}", cam.ip)
}

/// The camera's unicast `ProbeMatches` answering `relates_to` (kept below one Ethernet MTU).
pub(crate) fn wsd_probe_matches(rng: &mut impl RngExt, cam: &Camera, relates_to: &str) -> Vec<u8> {
    let message_id = wsd_message_id(rng);
    let instance: u32 = rng.random_range(1..100_000);
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://www.w3.org/2003/05/soap-envelope\" \
         xmlns:wsa=\"{WSA_NS}\" xmlns:wsd=\"{WSD_NS}\" xmlns:dn=\"http://www.onvif.org/ver10/network/wsdl\" \
         xmlns:tds=\"http://www.onvif.org/ver10/device/wsdl\">\
         <SOAP-ENV:Header><wsa:MessageID>{message_id}</wsa:MessageID><wsa:RelatesTo>{relates_to}</wsa:RelatesTo>\
         <wsa:To>{WSA_NS}/role/anonymous</wsa:To>\
         <wsa:Action>{WSD_NS}/ProbeMatches</wsa:Action>\
         <wsd:AppSequence InstanceId=\"{instance}\" MessageNumber=\"1\"/>\
         </SOAP-ENV:Header><SOAP-ENV:Body><wsd:ProbeMatches><wsd:ProbeMatch>\
         <wsa:EndpointReference><wsa:Address>urn:uuid:{endpoint}</wsa:Address></wsa:EndpointReference>\
         <wsd:Types>dn:NetworkVideoTransmitter tds:Device</wsd:Types><wsd:Scopes>{scopes}</wsd:Scopes>\
         <wsd:XAddrs>{xaddr}</wsd:XAddrs><wsd:MetadataVersion>1</wsd:MetadataVersion>\
         </wsd:ProbeMatch></wsd:ProbeMatches></SOAP-ENV:Body></SOAP-ENV:Envelope>",
        endpoint = cam.uuid.to_ascii_lowercase(),
        scopes = onvif_scopes(cam),
        xaddr = onvif_xaddr(cam),
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hik_versions_split_like_isapi() {
        assert_eq!(hik_version_parts("V5.7.3build 220112"), ("V5.7.3".into(), "build 220112".into()));
        assert_eq!(hik_version_parts("V5.7.3 build 220112"), ("V5.7.3".into(), "build 220112".into()));
        assert_eq!(hik_version_parts("V5.7.3"), ("V5.7.3".into(), String::new()));
    }

    #[test]
    fn digicap_header_decodes() {
        let mut rng = super::super::net::sub_rng(1, "test", 0);
        let img = digicap(&mut rng, 1000);
        assert_eq!(img.len(), 1000);
        let mut h = img[..DIGICAP_HEADER_LEN].to_vec();
        digicap_xor(&mut h);
        let u32_at = |at: usize| u32::from_le_bytes(h[at..at + 4].try_into().unwrap());
        assert_eq!(&h[..4], b"SWKH");
        assert_eq!(u32_at(0), DIGICAP_MAGIC);
        assert_eq!(u32_at(4), sum_bytes(&h[12..]));
        assert_eq!((u32_at(8), u32_at(12)), (0x6C, 1));
        assert!(h[28..0x40].iter().all(|&b| b == 0));
        assert_eq!(&h[0x40..0x40 + 12], b"_cfgUpgClass");
        assert!(h[0x40 + 12..0x60].iter().all(|&b| b == 0));
        assert_eq!((u32_at(0x60), u32_at(0x64)), (1000 - 0x6C, 0x6C));
        assert_eq!(u32_at(0x68), sum_bytes(&img[0x6C..]));
        assert_eq!(digicap(&mut rng, 10).len(), DIGICAP_MIN_LEN);
    }
}
