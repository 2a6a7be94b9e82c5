//! Application-layer messages: RTSP/SDP/RTP, TLS records, HTTP, DNS, NTP and vendor discovery.

use std::net::Ipv4Addr;

use anyhow::Context;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::{A, CNAME};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use rand::{Rng, RngExt};

use super::net::{Camera, Vendor, GATEWAY_IP};

// ---------------------------------------------------------------------------------------------
// Small helpers

fn random_bytes(rng: &mut impl Rng, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rng.fill_bytes(&mut v);
    v
}

/// Appends a big-endian length prefix of `width` bytes (1, 2 or 3) around what `body` writes.
fn prefixed(out: &mut Vec<u8>, width: usize, body: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    out.extend(std::iter::repeat_n(0, width));
    body(out);
    let len = (out.len() - at - width) as u32;
    let bytes = len.to_be_bytes();
    out[at..at + width].copy_from_slice(&bytes[4 - width..]);
}

fn u16s(out: &mut Vec<u8>, values: &[u16]) {
    for v in values {
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// `Thu, 01 Jan 2026 00:00:00 GMT`.
pub(crate) fn http_date(unix_secs: u64) -> anyhow::Result<String> {
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let secs = i64::try_from(unix_secs).context("timestamp out of range")?;
    Ok(time::OffsetDateTime::from_unix_timestamp(secs)?.format(&fmt)?)
}

// ---------------------------------------------------------------------------------------------
// RTSP, SDP and RTP

/// `sprop-parameter-sets` of RFC 6184's example (a valid baseline SPS/PPS pair).
const SPROP: &str = "Z0IACpZTBYmI,aMljiA==";
/// The same SPS and PPS NAL units, sent in-band before every IDR frame.
pub(crate) const SPS_NAL: &[u8] = &[0x67, 0x42, 0x00, 0x0a, 0x96, 0x53, 0x05, 0x89, 0x88];
pub(crate) const PPS_NAL: &[u8] = &[0x68, 0xc9, 0x63, 0x88];
/// Largest RTP payload per packet; an interleaved frame then always fits one TCP segment.
pub(crate) const RTP_MAX_PAYLOAD: usize = 1400;

pub(crate) fn rtsp_request(method: &str, url: &str, cseq: u32, headers: &[(&str, String)]) -> Vec<u8> {
    let mut s = format!("{method} {url} RTSP/1.0\r\nCSeq: {cseq}\r\n");
    for (k, v) in headers {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    s.push_str("User-Agent: NVR-RtspClient/1.0\r\n\r\n");
    s.into_bytes()
}

/// RTSP server banner per vendor (Hikvision cameras send none).
fn rtsp_server(vendor: Vendor) -> Option<&'static str> {
    match vendor {
        Vendor::Hikvision => None,
        Vendor::Dahua => Some("Dahua Rtsp Server"),
        Vendor::Axis => Some("GStreamer RTSP Server"),
    }
}

pub(crate) fn rtsp_response(
    vendor: Vendor,
    cseq: u32,
    date: &str,
    headers: &[(&str, String)],
    body: &str,
) -> Vec<u8> {
    let mut s = format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n");
    if let Some(server) = rtsp_server(vendor) {
        s.push_str(&format!("Server: {server}\r\n"));
    }
    s.push_str(&format!("Date: {date}\r\n"));
    for (k, v) in headers {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        s.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    s.push_str("\r\n");
    s.push_str(body);
    s.into_bytes()
}

/// URL the SETUP request goes to (the video track's control URL).
pub(crate) fn rtsp_track_url(cam: &Camera) -> String {
    let base = cam.rtsp_url();
    match cam.vendor {
        Vendor::Hikvision => format!("{base}/trackID=1"),
        Vendor::Dahua => format!("{base}/trackID=0"),
        Vendor::Axis => format!("{base}/stream=0"),
    }
}

/// The camera's session description, in the vendor's usual shape.
pub(crate) fn sdp(cam: &Camera, session_id: u32) -> String {
    let url = cam.rtsp_url();
    let ip = cam.ip;
    let fmtp = format!("a=fmtp:96 packetization-mode=1;profile-level-id=42000A;sprop-parameter-sets={SPROP}");
    let lines: Vec<String> = match cam.vendor {
        Vendor::Hikvision => vec![
            "v=0".into(),
            format!("o=- {session_id} {session_id} IN IP4 {ip}"),
            "s=Media Presentation".into(),
            "e=NONE".into(),
            "b=AS:5050".into(),
            "t=0 0".into(),
            format!("a=control:{url}/"),
            "m=video 0 RTP/AVP 96".into(),
            "c=IN IP4 0.0.0.0".into(),
            "b=AS:5000".into(),
            "a=recvonly".into(),
            "a=x-dimensions:2560,1440".into(),
            format!("a=control:{url}/trackID=1"),
            "a=rtpmap:96 H264/90000".into(),
            fmtp,
        ],
        Vendor::Dahua => vec![
            "v=0".into(),
            format!("o=- {session_id} {session_id} IN IP4 {ip}"),
            "s=Media Server".into(),
            "c=IN IP4 0.0.0.0".into(),
            "t=0 0".into(),
            "a=control:*".into(),
            "a=packetization-supported:DH".into(),
            "a=rtppayload-supported:DH".into(),
            "a=range:npt=now-".into(),
            "m=video 0 RTP/AVP 96".into(),
            "a=control:trackID=0".into(),
            "a=framerate:25.000000".into(),
            "a=rtpmap:96 H264/90000".into(),
            fmtp,
            "a=recvonly".into(),
        ],
        Vendor::Axis => vec![
            "v=0".into(),
            format!("o=- {session_id} 1 IN IP4 {ip}"),
            "s=Session streamed with GStreamer".into(),
            "i=rtsp-server".into(),
            "t=0 0".into(),
            "a=tool:GStreamer".into(),
            "a=type:broadcast".into(),
            "a=range:npt=now-".into(),
            format!("a=control:{url}"),
            "m=video 0 RTP/AVP 96".into(),
            "c=IN IP4 0.0.0.0".into(),
            "b=AS:50000".into(),
            "a=rtpmap:96 H264/90000".into(),
            fmtp,
            format!("a=control:{url}/stream=0"),
            "a=framerate:25.000000".into(),
        ],
    };
    let mut s = lines.join("\r\n");
    s.push_str("\r\n");
    s
}

/// RTP state of one H.264 stream (payload type 96, 90 kHz clock).
#[derive(Debug, Clone)]
pub(crate) struct RtpStream {
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
}

impl RtpStream {
    /// One RTP packet framed for RTSP interleaving (`$`, channel 0, 16-bit length).
    pub(crate) fn interleaved(&mut self, marker: bool, payload: &[u8]) -> Vec<u8> {
        let rtp_len = 12 + payload.len();
        let mut out = Vec::with_capacity(4 + rtp_len);
        out.push(b'$');
        out.push(0);
        out.extend_from_slice(&(rtp_len as u16).to_be_bytes());
        out.push(0x80); // V=2, no padding, no extension, no CSRC
        out.push(if marker { 0x80 | 96 } else { 96 });
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(payload);
        self.seq = self.seq.wrapping_add(1);
        out
    }
}

/// RTP payloads of one coded picture of `size` bytes: a single NAL unit if it fits, otherwise
/// FU-A fragments (RFC 6184). IDR pictures are preceded by the in-band SPS and PPS.
pub(crate) fn h264_picture(rng: &mut impl Rng, idr: bool, size: usize) -> Vec<Vec<u8>> {
    let (nri, nal_type) = if idr { (3u8, 5u8) } else { (2u8, 1u8) };
    let mut out = Vec::new();
    if idr {
        out.push(SPS_NAL.to_vec());
        out.push(PPS_NAL.to_vec());
    }
    let size = size.max(2);
    if size <= RTP_MAX_PAYLOAD {
        let mut nal = vec![(nri << 5) | nal_type];
        nal.extend(random_bytes(rng, size - 1));
        out.push(nal);
        return out;
    }
    // FU-A: indicator + header replace the NAL header byte.
    let body = random_bytes(rng, size - 1);
    let chunks: Vec<&[u8]> = body.chunks(RTP_MAX_PAYLOAD - 2).collect();
    let last = chunks.len().saturating_sub(1);
    for (i, chunk) in chunks.iter().enumerate() {
        let mut fu = vec![(nri << 5) | 28, nal_type];
        if i == 0 {
            fu[1] |= 0x80;
        }
        if i == last {
            fu[1] |= 0x40;
        }
        fu.extend_from_slice(chunk);
        out.push(fu);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// TLS

/// A TLS 1.3-capable ClientHello record (browser-like cipher and extension lists).
pub(crate) fn tls_client_hello(rng: &mut impl Rng, sni: &str) -> Vec<u8> {
    let mut hello = Vec::new();
    hello.extend_from_slice(&[0x03, 0x03]); // legacy_version TLS 1.2
    hello.extend(random_bytes(rng, 32));
    prefixed(&mut hello, 1, |o| o.extend(random_bytes(rng, 32))); // legacy_session_id
    prefixed(&mut hello, 2, |o| {
        u16s(
            o,
            &[
                0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014,
                0x009c, 0x009d, 0x002f, 0x0035,
            ],
        )
    });
    hello.extend_from_slice(&[0x01, 0x00]); // compression: null
    let key_share = random_bytes(rng, 32);
    prefixed(&mut hello, 2, |ext| {
        // server_name
        u16s(ext, &[0x0000]);
        prefixed(ext, 2, |o| {
            prefixed(o, 2, |o| {
                o.push(0); // host_name
                prefixed(o, 2, |o| o.extend_from_slice(sni.as_bytes()));
            })
        });
        // ec_point_formats: uncompressed
        u16s(ext, &[0x000b]);
        prefixed(ext, 2, |o| prefixed(o, 1, |o| o.push(0)));
        // supported_groups: x25519, secp256r1, secp384r1
        u16s(ext, &[0x000a]);
        prefixed(ext, 2, |o| prefixed(o, 2, |o| u16s(o, &[0x001d, 0x0017, 0x0018])));
        // signature_algorithms
        u16s(ext, &[0x000d]);
        prefixed(ext, 2, |o| {
            prefixed(o, 2, |o| u16s(o, &[0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]))
        });
        // application_layer_protocol_negotiation: http/1.1
        u16s(ext, &[0x0010]);
        prefixed(ext, 2, |o| prefixed(o, 2, |o| prefixed(o, 1, |o| o.extend_from_slice(b"http/1.1"))));
        // supported_versions: TLS 1.3, TLS 1.2
        u16s(ext, &[0x002b]);
        prefixed(ext, 2, |o| prefixed(o, 1, |o| u16s(o, &[0x0304, 0x0303])));
        // psk_key_exchange_modes: psk_dhe_ke
        u16s(ext, &[0x002d]);
        prefixed(ext, 2, |o| prefixed(o, 1, |o| o.push(1)));
        // key_share: x25519
        u16s(ext, &[0x0033]);
        prefixed(ext, 2, |o| {
            prefixed(o, 2, |o| {
                u16s(o, &[0x001d]);
                prefixed(o, 2, |o| o.extend_from_slice(&key_share));
            })
        });
    });
    handshake_record(0x0301, 1, &hello)
}

fn handshake_record(record_version: u16, msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut rec = vec![22];
    rec.extend_from_slice(&record_version.to_be_bytes());
    prefixed(&mut rec, 2, |o| {
        o.push(msg_type);
        prefixed(o, 3, |o| o.extend_from_slice(body));
    });
    rec
}

/// One TLS application_data record carrying `len` bytes of ciphertext.
pub(crate) fn tls_app_data(rng: &mut impl Rng, len: usize) -> Vec<u8> {
    let mut rec = vec![23, 0x03, 0x03];
    rec.extend_from_slice(&(len as u16).to_be_bytes());
    rec.extend(random_bytes(rng, len));
    rec
}

/// The server's first flight of a TLS 1.3 handshake: ServerHello (TLS_AES_128_GCM_SHA256,
/// x25519), ChangeCipherSpec and the encrypted remainder (`encrypted` bytes of ciphertext).
pub(crate) fn tls_server_flight(rng: &mut impl Rng, encrypted: usize) -> Vec<u8> {
    let mut hello = vec![0x03, 0x03];
    hello.extend(random_bytes(rng, 32));
    prefixed(&mut hello, 1, |o| o.extend(random_bytes(rng, 32)));
    u16s(&mut hello, &[0x1301]);
    hello.push(0);
    let key = random_bytes(rng, 32);
    prefixed(&mut hello, 2, |ext| {
        u16s(ext, &[0x002b]);
        prefixed(ext, 2, |o| u16s(o, &[0x0304]));
        u16s(ext, &[0x0033]);
        prefixed(ext, 2, |o| {
            u16s(o, &[0x001d]);
            prefixed(o, 2, |o| o.extend_from_slice(&key));
        });
    });
    let mut flight = handshake_record(0x0303, 2, &hello);
    flight.extend_from_slice(&tls_change_cipher_spec());
    flight.extend(tls_app_data(rng, encrypted));
    flight
}

pub(crate) fn tls_change_cipher_spec() -> [u8; 6] {
    [20, 0x03, 0x03, 0x00, 0x01, 0x01]
}

/// `total` bytes of application_data records (each at most 16 KiB + AEAD overhead); `total`
/// is raised to at least 64.
pub(crate) fn tls_bulk(rng: &mut impl Rng, total: usize) -> Vec<u8> {
    const MAX_RECORD: usize = 5 + 16_384 + 17;
    let mut left = total.max(64);
    let mut out = Vec::with_capacity(left);
    while left > 0 {
        let take = if left > MAX_RECORD && left - MAX_RECORD < 64 {
            // Keep the final record comfortably above a header's length.
            left - 64
        } else {
            left.min(MAX_RECORD)
        };
        out.extend(tls_app_data(rng, take - 5));
        left -= take;
    }
    out
}

// ---------------------------------------------------------------------------------------------
// DNS (built with hickory-proto)

/// One record of a DNS answer section.
pub(crate) enum Answer {
    A(&'static str, Ipv4Addr),
    Cname(&'static str, &'static str),
}

fn dns_name(name: &str) -> anyhow::Result<Name> {
    Name::from_ascii(format!("{name}.")).with_context(|| format!("DNS name {name:?}"))
}

pub(crate) fn dns_query(id: u16, name: &str) -> anyhow::Result<Vec<u8>> {
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(dns_name(name)?, RecordType::A));
    Ok(msg.to_vec()?)
}

pub(crate) fn dns_response(id: u16, name: &str, answers: &[Answer], ttl: u32) -> anyhow::Result<Vec<u8>> {
    let mut msg = Message::response(id, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.metadata.recursion_available = true;
    msg.add_query(Query::query(dns_name(name)?, RecordType::A));
    for a in answers {
        let record = match a {
            Answer::A(owner, ip) => Record::from_rdata(dns_name(owner)?, ttl, RData::A(A(*ip))),
            Answer::Cname(owner, target) => {
                Record::from_rdata(dns_name(owner)?, ttl, RData::CNAME(CNAME(dns_name(target)?)))
            }
        };
        msg.add_answer(record);
    }
    Ok(msg.to_vec()?)
}

// ---------------------------------------------------------------------------------------------
// NTP

/// Seconds between 1900-01-01 (NTP era 0) and the Unix epoch.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// 64-bit NTP timestamp of a Unix time in microseconds.
fn ntp_timestamp(unix_micros: u64) -> [u8; 8] {
    let secs = (unix_micros / 1_000_000 + NTP_UNIX_OFFSET) as u32;
    // Rounded: sub-microsecond fraction (< 2^32 for any micros < 10^6).
    let frac = ((((unix_micros % 1_000_000) << 32) + 500_000) / 1_000_000) as u32;
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&secs.to_be_bytes());
    out[4..].copy_from_slice(&frac.to_be_bytes());
    out
}

/// NTPv4 client request (mode 3): only the transmit timestamp is set, as SNTP clients do.
pub(crate) fn ntp_request(tx_unix_micros: u64) -> Vec<u8> {
    let mut p = vec![0u8; 48];
    p[0] = 0x23; // LI 0, VN 4, mode 3
    p[2] = 6; // poll 2^6 = 64 s
    p[3] = 0xec; // precision 2^-20
    p[40..48].copy_from_slice(&ntp_timestamp(tx_unix_micros));
    p
}

/// NTPv4 server response (mode 4, stratum 2).
pub(crate) fn ntp_response(request: &[u8], rx_unix_micros: u64, tx_unix_micros: u64) -> Vec<u8> {
    let mut p = vec![0u8; 48];
    p[0] = 0x24; // LI 0, VN 4, mode 4
    p[1] = 2; // stratum
    p[2] = 6;
    p[3] = 0xe9; // precision 2^-23
    p[4..8].copy_from_slice(&0x0000_0180u32.to_be_bytes()); // root delay ≈ 5.9 ms
    p[8..12].copy_from_slice(&0x0000_0300u32.to_be_bytes()); // root dispersion ≈ 11.7 ms
    p[12..16].copy_from_slice(&[162, 159, 200, 1]); // reference id: upstream server
    let reference = rx_unix_micros.saturating_sub(37_000_000);
    p[16..24].copy_from_slice(&ntp_timestamp(reference));
    if let Some(origin) = request.get(40..48) {
        p[24..32].copy_from_slice(origin);
    }
    p[32..40].copy_from_slice(&ntp_timestamp(rx_unix_micros));
    p[40..48].copy_from_slice(&ntp_timestamp(tx_unix_micros));
    p
}

// ---------------------------------------------------------------------------------------------
// Vendor discovery

fn mac_string(mac: [u8; 6], sep: char) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(&sep.to_string())
}

/// Hikvision SADP `Hello` announcement (UDP 37020 → 239.255.255.250:37020) of a camera running
/// `firmware` (`HCPlatformEnable` true when the camera has Hik-Connect enabled).
pub(crate) fn sadp_hello(cam: &Camera, firmware: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Hello><Uuid>{uuid}</Uuid><Types>hello</Types>\
         <DeviceType>139267</DeviceType><DeviceDescription>{model}</DeviceDescription>\
         <DeviceSN>{sn}</DeviceSN><CommandPort>8000</CommandPort><HttpPort>80</HttpPort>\
         <MAC>{mac}</MAC><IPv4Address>{ip}</IPv4Address><IPv4SubnetMask>255.255.255.0</IPv4SubnetMask>\
         <IPv4Gateway>{gw}</IPv4Gateway><DHCP>false</DHCP><SoftwareVersion>{fw}</SoftwareVersion>\
         <DSPVersion>V7.3 build 220112</DSPVersion><Activated>true</Activated>\
         <HCPlatformEnable>{hc}</HCPlatformEnable></Hello>",
        uuid = cam.uuid,
        model = cam.model,
        sn = cam.serial,
        mac = mac_string(cam.mac, '-'),
        ip = cam.ip,
        gw = GATEWAY_IP,
        fw = firmware,
        hc = cam.hc_platform,
    )
    .into_bytes()
}

/// Dahua DHIP `client.notifyDevInfo` (UDP 37810 → 239.255.255.251:37810): a 32-byte header
/// (`20 00 00 00`, `DHIP`, session id, request id, payload length twice, little endian)
/// followed by JSON, of a camera running `firmware`.
pub(crate) fn dhip_notify(cam: &Camera, firmware: &str, session: u32, request: u32) -> Vec<u8> {
    let json = format!(
        "{{\"method\":\"client.notifyDevInfo\",\"params\":{{\"deviceInfo\":{{\"DeviceClass\":\"IPC\",\
         \"DeviceType\":\"{model}\",\"SerialNo\":\"{sn}\",\"Version\":\"{fw}\",\"HttpPort\":80,\
         \"Port\":37777,\"IPv4Address\":{{\"IPAddress\":\"{ip}\",\"SubnetMask\":\"255.255.255.0\",\
         \"DefaultGateway\":\"{gw}\",\"DhcpEnable\":false}}}},\"mac\":\"{mac}\"}}}}",
        model = cam.model,
        sn = cam.serial,
        fw = firmware,
        ip = cam.ip,
        gw = GATEWAY_IP,
        mac = mac_string(cam.mac, ':'),
    );
    let len = (json.len() as u32).to_le_bytes();
    let mut out = Vec::with_capacity(32 + json.len());
    out.extend_from_slice(&[0x20, 0, 0, 0]);
    out.extend_from_slice(b"DHIP");
    out.extend_from_slice(&session.to_le_bytes());
    out.extend_from_slice(&request.to_le_bytes());
    out.extend_from_slice(&len);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&len);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(json.as_bytes());
    out
}

/// A 44-byte Dahua P2P (Easy4ip) datagram: `FF FE FF E7` signature, then opaque bytes.
pub(crate) fn dahua_p2p(rng: &mut impl Rng) -> Vec<u8> {
    let mut p = vec![0xff, 0xfe, 0xff, 0xe7];
    p.extend(random_bytes(rng, 40));
    p
}

// ---------------------------------------------------------------------------------------------
// Telnet (RFC 854) and TFTP (RFC 1350)

/// Telnet `IAC` and the negotiation verbs.
const IAC: u8 = 255;
const DO: u8 = 253;
const WILL: u8 = 251;

/// The client's opening negotiation: DO SUPPRESS-GO-AHEAD, WILL TERMINAL-TYPE, WILL NAWS,
/// DO ECHO.
pub(crate) fn telnet_client_hello() -> Vec<u8> {
    vec![IAC, DO, 3, IAC, WILL, 24, IAC, WILL, 31, IAC, DO, 1]
}

/// A BusyBox telnetd's answer: WILL ECHO, WILL SUPPRESS-GO-AHEAD, DO NAWS, then the login
/// prompt.
pub(crate) fn telnet_server_hello() -> Vec<u8> {
    let mut out = vec![IAC, WILL, 1, IAC, WILL, 3, IAC, DO, 31];
    out.extend_from_slice(b"\r\n(none) login: ");
    out
}

/// TFTP payload bytes per DATA packet.
pub(crate) const TFTP_BLOCK: usize = 512;

/// Read request for `file` in `octet` mode.
pub(crate) fn tftp_rrq(file: &str) -> Vec<u8> {
    let mut out = vec![0, 1];
    out.extend_from_slice(file.as_bytes());
    out.push(0);
    out.extend_from_slice(b"octet\0");
    out
}

/// DATA packet `block` (numbered from 1) carrying `data` (at most [`TFTP_BLOCK`] bytes).
pub(crate) fn tftp_data(block: u16, data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 3];
    out.extend_from_slice(&block.to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// ACK of DATA packet `block`.
pub(crate) fn tftp_ack(block: u16) -> Vec<u8> {
    let mut out = vec![0, 4];
    out.extend_from_slice(&block.to_be_bytes());
    out
}

/// Picks a value in `lo..hi` microseconds (or `lo` if the range is empty).
pub(crate) fn jitter(rng: &mut impl RngExt, lo: u64, hi: u64) -> u64 {
    if hi > lo {
        rng.random_range(lo..hi)
    } else {
        lo
    }
}
