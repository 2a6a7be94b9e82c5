//! SSDP (UPnP discovery, HTTP over UDP 1900) parsing: what cameras announce about themselves
//! (SERVER, e.g. "Linux, UPnP/1.0 DCS-935L/1.0"; LOCATION of the device description; USN with
//! the device UUID) and what clients search for.
//!
//! httparse parses the header block. SSDP senders are sloppy, so this is lenient where it
//! costs nothing: a datagram without the terminating blank line is complete anyway (the nDPI
//! sample `ssdp-m-search.pcap` is a bare start line), invalid header lines are skipped, and
//! more than `MAX_HEADERS` headers are cut — each with an anomaly.

use std::borrow::Cow;

use serde::Serialize;

/// Headers parsed per message; lines past this are dropped.
pub const MAX_HEADERS: usize = 64;
/// Longest header value kept, in bytes.
pub const MAX_VALUE_LEN: usize = 1024;

/// One SSDP message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SsdpMessage {
    /// "m-search", "notify" or "response".
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nts: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub st: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<&'static str>,
}

/// The parts of one httparse pass that outlive its borrowed buffer.
struct Block {
    /// Request method, or None for a response.
    method: Option<String>,
    uri: Option<String>,
    status: Option<u16>,
    headers: Vec<(String, Vec<u8>)>,
    /// Bytes of the (possibly amended) buffer up to the end of the header block.
    consumed: usize,
}

enum Pass {
    Done(Block),
    Partial,
    Failed(httparse::Error),
}

/// Parses one SSDP datagram.
pub fn parse(payload: &[u8]) -> Result<SsdpMessage, &'static str> {
    if payload.is_empty() {
        return Err("truncated");
    }
    let is_response = payload.starts_with(b"HTTP/");
    let mut anomalies = Vec::new();
    let mut buf: Cow<'_, [u8]> = Cow::Borrowed(payload);
    let mut lenient = false;
    let mut terminated_by_us = false;
    // At most one amendment per kind of trouble, so this ends.
    let block = loop {
        match parse_block(&buf, is_response, lenient) {
            Pass::Done(b) => break b,
            Pass::Partial if !terminated_by_us => {
                // The datagram is all there is: end the header block ourselves.
                note(&mut anomalies, "unterminated_headers");
                terminated_by_us = true;
                let mut owned = buf.into_owned();
                owned.extend_from_slice(if owned.ends_with(b"\r\n") { b"\r\n" } else { b"\r\n\r\n" });
                buf = Cow::Owned(owned);
            }
            Pass::Partial => return Err("truncated"),
            Pass::Failed(httparse::Error::TooManyHeaders) if !anomalies.contains(&"too_many_headers") => {
                note(&mut anomalies, "too_many_headers");
                let cut = cut_after_lines(&buf, MAX_HEADERS + 1);
                let mut owned = buf.get(..cut).unwrap_or_default().to_vec();
                owned.extend_from_slice(b"\r\n");
                buf = Cow::Owned(owned);
            }
            Pass::Failed(httparse::Error::HeaderName | httparse::Error::HeaderValue) if !lenient => {
                note(&mut anomalies, "invalid_header");
                lenient = true;
            }
            Pass::Failed(httparse::Error::Token | httparse::Error::Version | httparse::Error::Status) => {
                return Err("not_ssdp")
            }
            Pass::Failed(_) => return Err("bad_header"),
        }
    };

    let kind = match (&block.method, block.status) {
        (Some(m), _) if m.eq_ignore_ascii_case("M-SEARCH") => "m-search",
        (Some(m), _) if m.eq_ignore_ascii_case("NOTIFY") => "notify",
        (Some(_), _) => return Err("not_ssdp"),
        (None, status) => {
            if status != Some(200) {
                note(&mut anomalies, "unexpected_status");
            }
            "response"
        }
    };
    if block.method.is_some() && block.uri.as_deref() != Some("*") {
        note(&mut anomalies, "unexpected_uri");
    }
    // SSDP has no body; bytes past the blank line (other than line ends) are odd.
    if buf.get(block.consumed..).is_some_and(|rest| rest.iter().any(|b| !b.is_ascii_whitespace())) {
        note(&mut anomalies, "trailing_bytes");
    }

    let mut msg = SsdpMessage {
        kind: kind.to_owned(),
        server: None,
        user_agent: None,
        usn: None,
        location: None,
        nt: None,
        nts: None,
        st: None,
        host: None,
        cache_control: None,
        anomalies: Vec::new(),
    };
    for (name, value) in &block.headers {
        let slot = match name.as_str() {
            "server" => &mut msg.server,
            "user-agent" => &mut msg.user_agent,
            "usn" => &mut msg.usn,
            "location" => &mut msg.location,
            "nt" => &mut msg.nt,
            "nts" => &mut msg.nts,
            "st" => &mut msg.st,
            "host" => &mut msg.host,
            "cache-control" => &mut msg.cache_control,
            _ => continue,
        };
        if slot.is_some() {
            // Keep the first, as most HTTP stacks do.
            note(&mut anomalies, "duplicate_header");
            continue;
        }
        *slot = Some(header_value(value, &mut anomalies));
    }
    msg.anomalies = anomalies;
    Ok(msg)
}

fn parse_block(buf: &[u8], is_response: bool, lenient: bool) -> Pass {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut config = httparse::ParserConfig::default();
    config
        .ignore_invalid_headers_in_requests(lenient)
        .ignore_invalid_headers_in_responses(lenient)
        .allow_multiple_spaces_in_request_line_delimiters(true)
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .allow_spaces_after_header_name_in_responses(true);
    let owned_headers = |hs: &[httparse::Header<'_>]| -> Vec<(String, Vec<u8>)> {
        hs.iter().map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec())).collect()
    };
    if is_response {
        let mut res = httparse::Response::new(&mut headers);
        match config.parse_response(&mut res, buf) {
            Ok(httparse::Status::Complete(consumed)) => Pass::Done(Block {
                method: None,
                uri: None,
                status: res.code,
                headers: owned_headers(res.headers),
                consumed,
            }),
            Ok(httparse::Status::Partial) => Pass::Partial,
            Err(e) => Pass::Failed(e),
        }
    } else {
        let mut req = httparse::Request::new(&mut headers);
        match config.parse_request(&mut req, buf) {
            Ok(httparse::Status::Complete(consumed)) => Pass::Done(Block {
                method: req.method.map(str::to_owned),
                uri: req.path.map(str::to_owned),
                status: None,
                headers: owned_headers(req.headers),
                consumed,
            }),
            Ok(httparse::Status::Partial) => Pass::Partial,
            Err(e) => Pass::Failed(e),
        }
    }
}

/// The offset just past the `lines`-th '\n', or the whole buffer when it has fewer.
fn cut_after_lines(buf: &[u8], lines: usize) -> usize {
    buf.iter()
        .enumerate()
        .filter(|(_, &b)| b == b'\n')
        .nth(lines.saturating_sub(1))
        .map_or(buf.len(), |(i, _)| i + 1)
}

/// Header value as text (lossy UTF-8), trimmed, capped.
fn header_value(value: &[u8], anomalies: &mut Vec<&'static str>) -> String {
    let keep = value.get(..MAX_VALUE_LEN).unwrap_or(value);
    if keep.len() < value.len() {
        note(anomalies, "header_truncated");
    }
    String::from_utf8_lossy(keep).trim().to_owned()
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

    // corpus camera/iotsentinel_D-LinkCam_Setup-A-1-STA.pcap, frame 82: the D-Link DCS-935L
    // camera's NOTIFY ssdp:alive for its HNAP endpoint (241 bytes).
    const DLINK_NOTIFY: &[u8] = b"NOTIFY * HTTP/1.1\r\n\
        LOCATION: https://10.10.10.37/HNAP1/\r\n\
        HOST: 239.255.255.250:1900\r\n\
        SERVER: Linux,    UPnP/1.0 DCS-935L/1.0\r\n\
        NTS: ssdp:alive\r\n\
        USN: uuid:b0c554255b0e-h::upnp:rootdevice\r\n\
        CACHE-CONTROL: max-age=1800\r\n\
        NT: hnap:NetworkCamera\r\n\
        \r\n";
    // Same capture, frame 515: the camera's own M-SEARCH for an Internet gateway (137 bytes).
    const DLINK_MSEARCH: &[u8] = b"M-SEARCH * HTTP/1.1\r\n\
        HOST: 239.255.255.250:1900\r\n\
        ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\
        MAN: \"ssdp:discover\"\r\n\
        MX: 3\r\n\
        \r\n";
    // Same capture, frame 60: NOTIFY ssdp:byebye (150 bytes).
    const DLINK_BYEBYE: &[u8] = b"NOTIFY * HTTP/1.1\r\n\
        HOST: 239.255.255.250:1900\r\n\
        NTS: ssdp:byebye\r\n\
        USN: uuid:b0c554255b0e-0::upnp:rootdevice\r\n\
        NT: upnp:rootdevice\r\n\
        Content-Length: 0\r\n\
        \r\n";
    // corpus camera/iotsentinel_D-LinkDayCam_Setup-A-1-STA.pcap, frame 21 (267 bytes).
    const DAYCAM_NOTIFY: &[u8] = b"NOTIFY * HTTP/1.1\r\n\
        HOST: 239.255.255.250:1900\r\n\
        CACHE-CONTROL: max-age=1800\r\n\
        LOCATION: http://10.10.10.58:8614/rootdesc.xml\r\n\
        NT: uuid:ae67e622-7a66-465e-bab0-b0c5541c7185\r\n\
        NTS: ssdp:alive\r\n\
        SERVER: Cellvision UPnP/1.0\r\n\
        USN: uuid:ae67e622-7a66-465e-bab0-b0c5541c7185\r\n\
        \r\n";
    // corpus camera/iotsentinel_EdimaxCam1_Setup-A-1-STA.pcap, frame 9 (251 bytes).
    const EDIMAX_NOTIFY: &[u8] = b"NOTIFY * HTTP/1.1\r\n\
        HOST: 239.255.255.250:1900\r\n\
        CACHE-CONTROL: max-age=300\r\n\
        LOCATION: http://10.10.10.51:80/IPCamDesc.xml\r\n\
        SERVER: Embedded UPnP/1.0\r\n\
        NT: upnp:rootdevice\r\n\
        USN: uuid:upnp-BasicDevice-1_0-74DA38807A08::upnp:rootdevice\r\n\
        NTS: ssdp:alive\r\n\
        \r\n";
    // corpus ndpi/ssdp-m-search-ua.pcap, frame 1: Chrome's DIAL M-SEARCH (174 bytes).
    const CHROME_MSEARCH: &[u8] = b"M-SEARCH * HTTP/1.1\r\n\
        HOST: 239.255.255.250:1900\r\n\
        MAN: \"ssdp:discover\"\r\n\
        MX: 1\r\n\
        ST: urn:dial-multiscreen-org:service:dial:1\r\n\
        USER-AGENT: Google Chrome/99.0.4844.74 Mac OS X\r\n\
        \r\n";
    // corpus ndpi/ssdp-m-search.pcap, frame 1: a bare start line, no blank line (21 bytes).
    const BARE_MSEARCH: &[u8] = b"M-SEARCH * HTTP/1.1\r\n";
    // No SSDP response in the corpus: built from UPnP Device Architecture 1.1 §1.3.3 with a
    // D-Link-style SERVER, mixed-case header names and an empty EXT header.
    const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\n\
        Cache-Control: max-age=1800\r\n\
        Date: Tue, 01 Jul 2014 00:02:05 GMT\r\n\
        EXT:\r\n\
        Location: http://10.10.10.37:50510/\r\n\
        Server: Linux, UPnP/1.0 DCS-935L/1.0\r\n\
        ST: upnp:rootdevice\r\n\
        USN: uuid:b0c554255b0e-0::upnp:rootdevice\r\n\
        \r\n";

    const SAMPLES: [&[u8]; 8] = [
        DLINK_NOTIFY,
        DLINK_MSEARCH,
        DLINK_BYEBYE,
        DAYCAM_NOTIFY,
        EDIMAX_NOTIFY,
        CHROME_MSEARCH,
        BARE_MSEARCH,
        RESPONSE,
    ];

    #[test]
    fn samples_are_wire_accurate() {
        let lens: Vec<usize> = SAMPLES[..7].iter().map(|s| s.len()).collect();
        assert_eq!(lens, [241, 137, 150, 267, 251, 174, 21]);
    }

    #[test]
    fn camera_notify() {
        let m = parse(DLINK_NOTIFY).unwrap();
        assert_eq!(m.kind, "notify");
        assert_eq!(m.server.as_deref(), Some("Linux,    UPnP/1.0 DCS-935L/1.0"));
        assert_eq!(m.location.as_deref(), Some("https://10.10.10.37/HNAP1/"));
        assert_eq!(m.usn.as_deref(), Some("uuid:b0c554255b0e-h::upnp:rootdevice"));
        assert_eq!(m.nt.as_deref(), Some("hnap:NetworkCamera"));
        assert_eq!(m.nts.as_deref(), Some("ssdp:alive"));
        assert_eq!(m.host.as_deref(), Some("239.255.255.250:1900"));
        assert_eq!(m.cache_control.as_deref(), Some("max-age=1800"));
        assert_eq!((m.st.as_deref(), m.user_agent.as_deref()), (None, None));
        assert!(m.anomalies.is_empty(), "{:?}", m.anomalies);

        let m = parse(DLINK_BYEBYE).unwrap();
        assert_eq!((m.nts.as_deref(), m.server.as_deref()), (Some("ssdp:byebye"), None));
        let m = parse(DAYCAM_NOTIFY).unwrap();
        assert_eq!(m.server.as_deref(), Some("Cellvision UPnP/1.0"));
        assert_eq!(m.location.as_deref(), Some("http://10.10.10.58:8614/rootdesc.xml"));
        let m = parse(EDIMAX_NOTIFY).unwrap();
        assert_eq!(m.usn.as_deref(), Some("uuid:upnp-BasicDevice-1_0-74DA38807A08::upnp:rootdevice"));
        assert!(m.anomalies.is_empty(), "{:?}", m.anomalies);
    }

    #[test]
    fn m_search() {
        let m = parse(DLINK_MSEARCH).unwrap();
        assert_eq!(m.kind, "m-search");
        assert_eq!(m.st.as_deref(), Some("urn:schemas-upnp-org:device:InternetGatewayDevice:1"));
        assert!(m.anomalies.is_empty(), "{:?}", m.anomalies);

        // nDPI's ssdp-m-search-ua.pcap.out: "User-Agent: Google Chrome/99.0.4844.74 Mac OS X".
        let m = parse(CHROME_MSEARCH).unwrap();
        assert_eq!(m.user_agent.as_deref(), Some("Google Chrome/99.0.4844.74 Mac OS X"));
        assert_eq!(m.st.as_deref(), Some("urn:dial-multiscreen-org:service:dial:1"));

        // nDPI classifies this bare start line as SSDP too.
        let m = parse(BARE_MSEARCH).unwrap();
        assert_eq!(m.kind, "m-search");
        assert_eq!(m.host, None);
        assert_eq!(m.anomalies, vec!["unterminated_headers"]);
    }

    #[test]
    fn response() {
        let m = parse(RESPONSE).unwrap();
        assert_eq!(m.kind, "response");
        assert_eq!(m.server.as_deref(), Some("Linux, UPnP/1.0 DCS-935L/1.0"));
        assert_eq!(m.st.as_deref(), Some("upnp:rootdevice"));
        assert_eq!(m.location.as_deref(), Some("http://10.10.10.37:50510/"));
        assert!(m.anomalies.is_empty(), "{:?}", m.anomalies);
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["kind"], "response");
        assert!(json.get("user_agent").is_none());
    }

    #[test]
    fn errors_and_anomalies() {
        assert_eq!(parse(b""), Err("truncated"));
        assert_eq!(parse(b"\x00\x01binary"), Err("not_ssdp"));
        assert_eq!(parse(b"GET / HTTP/1.1\r\n\r\n"), Err("not_ssdp"));
        assert_eq!(parse(b"HTTP/9"), Err("not_ssdp"));

        // Cut at a line end: the start line and whole headers survive.
        let m = parse(&DLINK_NOTIFY[..57]).unwrap();
        assert_eq!(m.location.as_deref(), Some("https://10.10.10.37/HNAP1/"));
        assert_eq!(m.anomalies, vec!["unterminated_headers"]);
        // Cut inside a header name: that line is dropped as invalid.
        let m = parse(&DLINK_NOTIFY[..60]).unwrap();
        assert_eq!(m.location.as_deref(), Some("https://10.10.10.37/HNAP1/"));
        assert_eq!(m.anomalies, vec!["unterminated_headers", "invalid_header"]);
        // Cut inside a value: the value is taken as it stands.
        let m = parse(&DLINK_NOTIFY[..70]).unwrap();
        assert_eq!(m.host.as_deref(), Some("239.255"));

        let odd = b"HTTP/1.1 404 Not Found\r\nSERVER: a\r\nServer: b\r\nbad header line\r\n\
            ST: x\r\n\r\nbody";
        let m = parse(odd).unwrap();
        assert_eq!(m.server.as_deref(), Some("a"));
        assert_eq!(m.st.as_deref(), Some("x"));
        assert_eq!(
            m.anomalies,
            vec!["invalid_header", "unexpected_status", "trailing_bytes", "duplicate_header"]
        );

        let m = parse(b"NOTIFY /x HTTP/1.1\r\nNT: y\r\n\r\n").unwrap();
        assert_eq!(m.anomalies, vec!["unexpected_uri"]);

        // 200 headers: the first MAX_HEADERS are read; a long value is capped.
        let mut many = b"NOTIFY * HTTP/1.1\r\nSERVER: ".to_vec();
        many.extend_from_slice(&[b'v'; 3000]);
        many.extend_from_slice(b"\r\n");
        for i in 0..200 {
            many.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        let m = parse(&many).unwrap();
        assert_eq!(m.server.as_ref().map(String::len), Some(MAX_VALUE_LEN));
        assert_eq!(m.anomalies, vec!["too_many_headers", "header_truncated"]);
    }

    /// Every prefix and many corrupted variants of real messages: nothing may panic.
    #[test]
    fn hostile_input_never_panics() {
        let samples: Vec<Vec<u8>> = SAMPLES.iter().map(|s| s.to_vec()).collect();
        crate::hostile::each_variant(&samples, |v| {
            let _ = parse(v);
        });
    }
}
