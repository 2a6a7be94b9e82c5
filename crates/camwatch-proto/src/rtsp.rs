//! RTSP/1.0 (RFC 2326, and the 2.0 start line of RFC 7826) request and response header
//! blocks, plus detection of the `$`-framed RTP that follows PLAY on the same connection.
//!
//! RTSP looks like HTTP, but httparse refuses any version other than `HTTP/1.x`. Rewriting the
//! version token would need a patched copy of every message and would still inherit HTTP's
//! rules where RTSP servers in cameras differ (bare LF line ends, `Cseq` spelling, junk lines),
//! so this is a small line parser of its own: it walks at most [`MAX_HEADER_BLOCK`] bytes,
//! splits lines on LF (dropping a CR before it), keeps what it understands and records every
//! liberty it takes as an anomaly.

use serde::Serialize;

use super::record::{capped_string, push_anomaly, redact_userinfo};

/// Largest header block buffered before the stream is refused.
pub const MAX_HEADER_BLOCK: usize = 16 * 1024;
/// Header lines looked at; the rest of a longer block is skipped (and noted).
const MAX_HEADERS: usize = 64;
const MAX_VALUE: usize = 2048;
const MAX_URL: usize = 4096;
const MAX_METHOD: usize = 24;
/// HTTP methods that RTSP does not have: such a stream is left to the HTTP parser at once.
const HTTP_ONLY_METHODS: [&[u8]; 6] = [b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"CONNECT"];

/// Result of a stream parser: a record plus how many stream bytes it spanned (the header
/// block, blank line included; a body of `content_length` bytes follows), or a request for
/// more bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed<T> {
    Complete(T, usize),
    Incomplete,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RtspRequest {
    pub method: String,
    pub url: String,
    /// "RTSP/1.0".
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cseq: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// The session identifier, without `;timeout=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RtspResponse {
    pub version: String,
    pub status: u16,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cseq: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_length: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<&'static str>,
}

/// Parses the request at the start of (what is left of) the client→server direction.
///
/// Errors: `not_rtsp` (decided as early as the bytes allow), `bad_request_line`,
/// `headers_too_long`.
pub fn parse_request(stream: &[u8]) -> Result<Parsed<RtspRequest>, &'static str> {
    let start = leading_newlines(stream);
    let s = stream.get(start..).unwrap_or_default();
    let token_len = s.iter().take(MAX_METHOD + 1).take_while(|&&b| is_method_byte(b)).count();
    match s.get(token_len) {
        None if token_len <= MAX_METHOD => return Ok(Parsed::Incomplete),
        Some(b' ') if (1..=MAX_METHOD).contains(&token_len) => {}
        _ => return Err("not_rtsp"),
    }
    if HTTP_ONLY_METHODS.contains(&s.get(..token_len).unwrap_or_default()) {
        return Err("not_rtsp");
    }
    // Judge the request line as soon as it is complete, before waiting for the headers.
    let Some(line) = start_line(s)? else {
        return Ok(Parsed::Incomplete);
    };
    let mut parts = line.split(|&b| b == b' ').filter(|p| !p.is_empty());
    let (Some(method), Some(url), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("bad_request_line");
    };
    if !version.starts_with(b"RTSP/") {
        return Err(if version.starts_with(b"HTTP/") { "not_rtsp" } else { "bad_request_line" });
    }
    let mut anomalies = Vec::new();
    if start > 0 {
        anomalies.push("leading_empty_lines");
    }
    if parts.next().is_some() {
        anomalies.push("extra_request_line_tokens");
    }
    let Some(block) = header_block(s)? else {
        return Ok(Parsed::Incomplete);
    };
    note_version(version, &mut anomalies);
    let mut request = RtspRequest {
        method: lossy(method),
        // `rtsp://admin:12345@camera/...` is how many clients log in: never log the password.
        url: {
            let (url, _) = redact_userinfo(&lossy(url), &mut anomalies);
            capped_string(url, MAX_URL, "url_truncated", &mut anomalies)
        },
        version: lossy(version),
        cseq: None,
        user_agent: None,
        transport: None,
        session: None,
        anomalies: Vec::new(),
    };
    for (name, value) in block.headers(&mut anomalies) {
        if name.eq_ignore_ascii_case(b"cseq") {
            note_cseq(&mut request.cseq, &value, &mut anomalies);
        } else if name.eq_ignore_ascii_case(b"user-agent") {
            request.user_agent.get_or_insert(value);
        } else if name.eq_ignore_ascii_case(b"transport") {
            request.transport.get_or_insert(value);
        } else if name.eq_ignore_ascii_case(b"session") {
            let id = value.split(';').next().unwrap_or_default().trim().to_owned();
            request.session.get_or_insert(id);
        }
    }
    if request.cseq.is_none() {
        push_anomaly(&mut anomalies, "missing_cseq");
    }
    request.anomalies = anomalies;
    Ok(Parsed::Complete(request, start + block.len))
}

/// Parses the response at the start of (what is left of) the server→client direction.
///
/// Errors: `not_rtsp`, `bad_status`, `headers_too_long`.
pub fn parse_response(stream: &[u8]) -> Result<Parsed<RtspResponse>, &'static str> {
    let start = leading_newlines(stream);
    let s = stream.get(start..).unwrap_or_default();
    let probe = s.get(..5).unwrap_or(s);
    if !b"RTSP/".starts_with(probe) {
        return Err("not_rtsp");
    }
    let Some(line) = start_line(s)? else {
        return Ok(Parsed::Incomplete);
    };
    let (version, rest) = split_word(line);
    let (code, reason) = split_word(rest);
    let status = match *code {
        [a, b, c] if [a, b, c].iter().all(u8::is_ascii_digit) => {
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
        }
        _ => return Err("bad_status"),
    };
    let Some(block) = header_block(s)? else {
        return Ok(Parsed::Incomplete);
    };
    let mut anomalies = Vec::new();
    if start > 0 {
        anomalies.push("leading_empty_lines");
    }
    note_version(version, &mut anomalies);
    let mut response = RtspResponse {
        version: lossy(version),
        status,
        reason: capped_string(lossy(reason), MAX_VALUE, "header_value_truncated", &mut anomalies),
        cseq: None,
        server: None,
        content_type: None,
        content_length: None,
        anomalies: Vec::new(),
    };
    for (name, value) in block.headers(&mut anomalies) {
        if name.eq_ignore_ascii_case(b"cseq") {
            note_cseq(&mut response.cseq, &value, &mut anomalies);
        } else if name.eq_ignore_ascii_case(b"server") {
            response.server.get_or_insert(value);
        } else if name.eq_ignore_ascii_case(b"content-type") {
            response.content_type.get_or_insert(value);
        } else if name.eq_ignore_ascii_case(b"content-length") {
            match value.bytes().all(|b| b.is_ascii_digit()).then(|| value.parse::<u64>().ok()).flatten() {
                Some(n) if response.content_length.is_none_or(|old| old == n) => {
                    response.content_length = Some(n);
                }
                Some(_) => push_anomaly(&mut anomalies, "multiple_content_length"),
                None => push_anomaly(&mut anomalies, "bad_content_length"),
            }
        }
    }
    response.anomalies = anomalies;
    Ok(Parsed::Complete(response, start + block.len))
}

/// Whether the stream, at a message boundary, continues with an interleaved binary frame
/// (RFC 2326 10.12: `$`, channel, 16-bit length, then RTP or RTCP): once it does, the text
/// part of the session is over and the follower can stop buffering. No RTSP message starts
/// with `$`, so a `$` whose 4-byte header is still arriving already counts; a complete header
/// must announce a non-empty frame. The payload is not checked (some cameras interleave
/// vendor data that is not RTP).
pub fn is_interleaved_frame(stream: &[u8]) -> bool {
    match *stream {
        [b'$', _channel, hi, lo, ..] => u16::from_be_bytes([hi, lo]) > 0,
        [b'$', ..] => true,
        _ => false,
    }
}

/// The first line (without its CR LF) once it is complete.
fn start_line(s: &[u8]) -> Result<Option<&[u8]>, &'static str> {
    let window = s.get(..MAX_HEADER_BLOCK).unwrap_or(s);
    match window.iter().position(|&b| b == b'\n') {
        Some(eol) => {
            let line = window.get(..eol).unwrap_or_default();
            Ok(Some(line.strip_suffix(b"\r").unwrap_or(line)))
        }
        None => incomplete_unless_too_long(window.len()),
    }
}

/// A complete header block: the raw header lines after the start line.
struct HeaderBlock<'a> {
    lines: &'a [u8],
    /// Bytes up to and including the blank line.
    len: usize,
}

impl<'a> HeaderBlock<'a> {
    /// Header (name, value) pairs: at most [`MAX_HEADERS`], values capped and trimmed.
    /// Folded continuation lines and lines without a colon are skipped with an anomaly.
    fn headers(&self, anomalies: &mut Vec<&'static str>) -> Vec<(&'a [u8], String)> {
        let mut out = Vec::new();
        for line in split_lines(self.lines) {
            if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
                push_anomaly(anomalies, "folded_header");
                continue;
            }
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                push_anomaly(anomalies, "invalid_header_line");
                continue;
            };
            let name = line.get(..colon).unwrap_or_default();
            if name.is_empty() || !name.iter().all(|&b| b.is_ascii_graphic()) {
                push_anomaly(anomalies, "invalid_header_line");
                continue;
            }
            if out.len() == MAX_HEADERS {
                push_anomaly(anomalies, "too_many_headers");
                break;
            }
            let raw = line.get(colon + 1..).unwrap_or_default();
            let value = capped_string(lossy(trim(raw)), MAX_VALUE, "header_value_truncated", anomalies);
            out.push((name, value));
        }
        out
    }
}

/// Finds the end of the header block (an empty line, CRLF or LF); `Ok(None)` if not there yet.
fn header_block(s: &[u8]) -> Result<Option<HeaderBlock<'_>>, &'static str> {
    let window = s.get(..MAX_HEADER_BLOCK).unwrap_or(s);
    let Some(first_eol) = window.iter().position(|&b| b == b'\n') else {
        return incomplete_unless_too_long(window.len());
    };
    let mut at = first_eol + 1;
    loop {
        let Some(eol) = window.get(at..).and_then(|rest| rest.iter().position(|&b| b == b'\n')) else {
            return incomplete_unless_too_long(window.len());
        };
        let line = window.get(at..at + eol).unwrap_or_default();
        if line.is_empty() || line == b"\r" {
            return Ok(Some(HeaderBlock {
                lines: window.get(first_eol + 1..at).unwrap_or_default(),
                len: at + eol + 1,
            }));
        }
        at += eol + 1;
    }
}

fn incomplete_unless_too_long<T>(have: usize) -> Result<Option<T>, &'static str> {
    if have >= MAX_HEADER_BLOCK {
        Err("headers_too_long")
    } else {
        Ok(None)
    }
}

fn split_lines(block: &[u8]) -> impl Iterator<Item = &[u8]> {
    block.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l)).filter(|l| !l.is_empty())
}

/// Splits off the first space-separated word; the rest has its leading spaces removed.
fn split_word(s: &[u8]) -> (&[u8], &[u8]) {
    let end = s.iter().position(|&b| b == b' ').unwrap_or(s.len());
    let (word, rest) = s.split_at_checked(end).unwrap_or((s, &[]));
    (word, trim(rest))
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t' | b'\r'] = s {
        s = rest;
    }
    s
}

fn note_version(version: &[u8], anomalies: &mut Vec<&'static str>) {
    if version != b"RTSP/1.0" && version != b"RTSP/2.0" {
        anomalies.push("unknown_version");
    }
}

fn note_cseq(cseq: &mut Option<u32>, value: &str, anomalies: &mut Vec<&'static str>) {
    match value.bytes().all(|b| b.is_ascii_digit()).then(|| value.parse::<u32>().ok()).flatten() {
        Some(n) if cseq.is_none() => *cseq = Some(n),
        Some(_) => push_anomaly(anomalies, "multiple_cseq"),
        None => push_anomaly(anomalies, "bad_cseq"),
    }
}

fn is_method_byte(b: u8) -> bool {
    b.is_ascii_uppercase() || b == b'_' || b == b'-'
}

/// Stray empty lines between messages happen (keep-alives, sloppy servers); skip them.
fn leading_newlines(stream: &[u8]) -> usize {
    stream.iter().take(MAX_HEADER_BLOCK).take_while(|&&b| b == b'\r' || b == b'\n').count()
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    // ndpi/rtsp.pcap, frame 25: OPTIONS from VLC.
    const OPTIONS: &str = "
        4f5054494f4e5320727473703a2f2f31302e322e322e323a383535342f20525453502f312e300d0a435365713a20320d
        0a557365722d4167656e743a204c6962564c432f332e302e313620284c4956453535352053747265616d696e67204d65
        6469612076323031362e31312e3238290d0a0d0a
    ";

    // ndpi/rtsp.pcap, frame 33: `RTSP/1.0 200 OK` from VLC/3.0.12, `Cseq` spelling.
    const OPTIONS_REPLY: &str = "
        525453502f312e3020323030204f4b0d0a5365727665723a20564c432f332e302e31320d0a436f6e74656e742d4c656e
        6774683a20300d0a437365713a20320d0a5075626c69633a2044455343524942452c53455455502c54454152444f574e
        2c504c41592c50415553452c4745545f504152414d455445520d0a0d0a
    ";

    // ndpi/rtsp.pcap, frame 37: DESCRIBE.
    const DESCRIBE: &str = "
        444553435249424520727473703a2f2f31302e322e322e323a383535342f20525453502f312e300d0a435365713a2033
        0d0a557365722d4167656e743a204c6962564c432f332e302e313620284c4956453535352053747265616d696e67204d
        656469612076323031362e31312e3238290d0a4163636570743a206170706c69636174696f6e2f7364700d0a0d0a
    ";

    // ndpi/rtsp.pcap, frame 45: DESCRIBE reply header block (the SDP body follows in frame 53).
    const DESCRIBE_REPLY: &str = "
        525453502f312e3020323030204f4b0d0a5365727665723a20564c432f332e302e31320d0a446174653a205468752c20
        3239204a756c20323032312031343a30313a323520474d540d0a436f6e74656e742d547970653a206170706c69636174
        696f6e2f7364700d0a436f6e74656e742d426173653a20727473703a2f2f31302e322e322e323a383535342f0d0a436f
        6e74656e742d4c656e6774683a203639350d0a43616368652d436f6e74726f6c3a206e6f2d63616368650d0a43736571
        3a20330d0a0d0a
    ";

    // ndpi/rtsp.pcap, frame 57: SETUP trackID=0.
    const SETUP: &str = "
        534554555020727473703a2f2f31302e322e322e323a383535342f747261636b49443d3020525453502f312e300d0a43
        5365713a20340d0a557365722d4167656e743a204c6962564c432f332e302e313620284c495645353535205374726561
        6d696e67204d656469612076323031362e31312e3238290d0a5472616e73706f72743a205254502f4156503b756e6963
        6173743b636c69656e745f706f72743d35353636342d35353636350d0a0d0a
    ";

    // ndpi/rtsp.pcap, frame 65: SETUP reply with Session and Transport.
    const SETUP_REPLY: &str = "
        525453502f312e3020323030204f4b0d0a5365727665723a20564c432f332e302e31320d0a446174653a205468752c20
        3239204a756c20323032312031343a30313a323520474d540d0a5472616e73706f72743a205254502f4156502f554450
        3b756e69636173743b636c69656e745f706f72743d35353636342d35353636353b7365727665725f706f72743d353835
        34372d35383534383b737372633d42313936344234383b6d6f64653d706c61790d0a53657373696f6e3a203863333065
        31303231393166343964313b74696d656f75743d36300d0a436f6e74656e742d4c656e6774683a20300d0a4361636865
        2d436f6e74726f6c3a206e6f2d63616368650d0a437365713a20340d0a0d0a
    ";

    // ndpi/rtsp.pcap, frame 69: SETUP trackID=1 with Session.
    const SETUP2: &str = "
        534554555020727473703a2f2f31302e322e322e323a383535342f747261636b49443d3120525453502f312e300d0a43
        5365713a20350d0a557365722d4167656e743a204c6962564c432f332e302e313620284c495645353535205374726561
        6d696e67204d656469612076323031362e31312e3238290d0a5472616e73706f72743a205254502f4156503b756e6963
        6173743b636c69656e745f706f72743d35353636362d35353636370d0a53657373696f6e3a2038633330653130323139
        3166343964310d0a0d0a
    ";

    // ndpi/rtsp.pcap, frame 81: PLAY.
    const PLAY: &str = "
        504c415920727473703a2f2f31302e322e322e323a383535342f20525453502f312e300d0a435365713a20360d0a5573
        65722d4167656e743a204c6962564c432f332e302e313620284c4956453535352053747265616d696e67204d65646961
        2076323031362e31312e3238290d0a53657373696f6e3a20386333306531303231393166343964310d0a52616e67653a
        206e70743d302e3030302d0d0a0d0a
    ";

    // ndpi/rtsp.pcap, frame 89: PLAY reply.
    const PLAY_REPLY: &str = "
        525453502f312e3020323030204f4b0d0a5365727665723a20564c432f332e302e31320d0a446174653a205468752c20
        3239204a756c20323032312031343a30313a323520474d540d0a5254502d496e666f3a2075726c3d727473703a2f2f31
        302e322e322e323a383535342f747261636b49443d303b7365713d33333735313b72747074696d653d32383938353731
        3132312c2075726c3d727473703a2f2f31302e322e322e323a383535342f747261636b49443d313b7365713d35393135
        353b72747074696d653d333433383933343437380d0a52616e67653a206e70743d3131392e3731303831352d0d0a5365
        7373696f6e3a20386333306531303231393166343964313b74696d656f75743d36300d0a436f6e74656e742d4c656e67
        74683a20300d0a43616368652d436f6e74726f6c3a206e6f2d63616368650d0a437365713a20360d0a0d0a
    ";

    // ndpi/rtsp.pcap, frame 97: GET_PARAMETER keep-alive.
    const GET_PARAMETER: &str = "
        4745545f504152414d4554455220727473703a2f2f31302e322e322e323a383535342f20525453502f312e300d0a4353
        65713a20370d0a557365722d4167656e743a204c6962564c432f332e302e313620284c4956453535352053747265616d
        696e67204d656469612076323031362e31312e3238290d0a53657373696f6e3a20386333306531303231393166343964
        310d0a0d0a
    ";

    // ndpi/rtsp_setup_http.pcapng, frame 1: a lone SETUP (179 bytes).
    const LONE_SETUP: &str = "
        534554555020727473703a2f2f3137322e32382e342e32363a383535342f747261636b49443d383820525453502f312e
        300d0a435365713a20340d0a557365722d4167656e743a204c6962564c432f332e302e313620284c4956453535352053
        747265616d696e67204d656469612076323031362e31312e3238290d0a5472616e73706f72743a205254502f4156503b
        756e69636173743b636c69656e745f706f72743d35303232302d35303232310d0a0d0a
    ";

    const VLC_UA: &str = "LibVLC/3.0.16 (LIVE555 Streaming Media v2016.11.28)";

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn request(bytes: &[u8]) -> (RtspRequest, usize) {
        match parse_request(bytes) {
            Ok(Parsed::Complete(r, n)) => (r, n),
            other => panic!("{other:?}"),
        }
    }

    fn response(bytes: &[u8]) -> (RtspResponse, usize) {
        match parse_response(bytes) {
            Ok(Parsed::Complete(r, n)) => (r, n),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn credentials_in_the_url_are_never_kept() {
        let req = b"DESCRIBE rtsp://admin:Secret123@10.0.0.5:554/Streaming/Channels/101 RTSP/1.0\r\nCSeq: 2\r\n\r\n";
        let Ok(Parsed::Complete(r, _)) = parse_request(req) else { panic!("not parsed") };
        assert_eq!(r.url, "rtsp://[redacted]@10.0.0.5:554/Streaming/Channels/101");
        assert!(r.anomalies.contains(&"userinfo_in_url"), "{:?}", r.anomalies);
        assert!(!format!("{r:?}").contains("Secret123"));
    }

    #[test]
    fn vlc_requests_match_ndpi() {
        // rtsp.pcap.out: User-Agent LibVLC/3.0.16 (LIVE555 Streaming Media v2016.11.28).
        let expected = [
            (OPTIONS, "OPTIONS", 2, None, None),
            (DESCRIBE, "DESCRIBE", 3, None, None),
            (SETUP, "SETUP", 4, Some("RTP/AVP;unicast;client_port=55664-55665"), None),
            (SETUP2, "SETUP", 5, Some("RTP/AVP;unicast;client_port=55666-55667"), Some("8c30e102191f49d1")),
            (PLAY, "PLAY", 6, None, Some("8c30e102191f49d1")),
            (GET_PARAMETER, "GET_PARAMETER", 7, None, Some("8c30e102191f49d1")),
        ];
        for (hex, method, cseq, transport, session) in expected {
            let bytes = unhex(hex);
            let (req, used) = request(&bytes);
            assert_eq!(used, bytes.len(), "{method}");
            assert_eq!(req.method, method);
            assert!(req.url.starts_with("rtsp://10.2.2.2:8554/"), "{}", req.url);
            assert_eq!(req.version, "RTSP/1.0");
            assert_eq!(req.cseq, Some(cseq));
            assert_eq!(req.user_agent.as_deref(), Some(VLC_UA));
            assert_eq!(req.transport.as_deref(), transport);
            assert_eq!(req.session.as_deref(), session);
            assert!(req.anomalies.is_empty(), "{method}: {:?}", req.anomalies);
        }
        let (setup, _) = request(&unhex(SETUP));
        assert_eq!(setup.url, "rtsp://10.2.2.2:8554/trackID=0");
    }

    #[test]
    fn lone_setup_matches_ndpi() {
        // rtsp_setup_http.pcapng.out: User-Agent LibVLC/3.0.16 (LIVE555 Streaming Media v2016.11.28).
        let (req, used) = request(&unhex(LONE_SETUP));
        assert_eq!(used, 179);
        assert_eq!((req.method.as_str(), req.url.as_str()), ("SETUP", "rtsp://172.28.4.26:8554/trackID=88"));
        assert_eq!((req.cseq, req.user_agent.as_deref()), (Some(4), Some(VLC_UA)));
        assert_eq!(req.transport.as_deref(), Some("RTP/AVP;unicast;client_port=50220-50221"));
    }

    #[test]
    fn vlc_responses() {
        let (options, used) = response(&unhex(OPTIONS_REPLY));
        assert_eq!(used, 125);
        assert_eq!(
            (options.version.as_str(), options.status, options.reason.as_str()),
            ("RTSP/1.0", 200, "OK")
        );
        assert_eq!((options.cseq, options.server.as_deref()), (Some(2), Some("VLC/3.0.12")));
        assert_eq!(options.content_length, Some(0));
        assert!(options.anomalies.is_empty(), "{:?}", options.anomalies);

        let (describe, used) = response(&unhex(DESCRIBE_REPLY));
        assert_eq!(used, 199);
        assert_eq!(describe.cseq, Some(3));
        assert_eq!(describe.content_type.as_deref(), Some("application/sdp"));
        assert_eq!(describe.content_length, Some(695));

        for (hex, cseq) in [(SETUP_REPLY, 4), (PLAY_REPLY, 6)] {
            let bytes = unhex(hex);
            let (reply, used) = response(&bytes);
            assert_eq!((reply.cseq, reply.status, used), (Some(cseq), 200, bytes.len()));
        }
    }

    #[test]
    fn every_prefix_is_incomplete() {
        for hex in [OPTIONS, SETUP2, LONE_SETUP] {
            let bytes = unhex(hex);
            for n in 0..bytes.len() {
                assert_eq!(parse_request(&bytes[..n]), Ok(Parsed::Incomplete), "prefix {n}");
            }
        }
        for hex in [OPTIONS_REPLY, DESCRIBE_REPLY] {
            let bytes = unhex(hex);
            for n in 0..bytes.len() {
                assert_eq!(parse_response(&bytes[..n]), Ok(Parsed::Incomplete), "prefix {n}");
            }
        }
    }

    #[test]
    fn pipelined_messages_and_interleaved_media() {
        let options = unhex(OPTIONS);
        let stream = [options.clone(), unhex(DESCRIBE)].concat();
        let (first, used) = request(&stream);
        assert_eq!((first.method.as_str(), used), ("OPTIONS", options.len()));
        assert_eq!(request(&stream[used..]).0.method, "DESCRIBE");

        // After PLAY over TCP, the server switches to `$`-framed RTP (RFC 2326 10.12); the
        // frame header and RTP header here are synthetic (no interleaved capture in the corpus).
        let play = unhex(PLAY_REPLY);
        let frame = unhex("24 00 000c 8060 0001 00000000 b1964b48");
        let stream = [play.clone(), frame.clone()].concat();
        let (_, used) = response(&stream);
        assert!(!is_interleaved_frame(&stream));
        assert!(is_interleaved_frame(&stream[used..]));
        assert_eq!(parse_response(&stream[used..]), Err("not_rtsp"));
        assert_eq!(parse_request(&stream[used..]), Err("not_rtsp"));
        for n in 1..=frame.len() {
            assert!(is_interleaved_frame(&frame[..n]), "prefix {n}");
        }
        assert!(!is_interleaved_frame(b"$\x00\x00\x00"));
        assert!(!is_interleaved_frame(b""));
        assert!(!is_interleaved_frame(b"RTSP/1.0 200 OK\r\n"));
        // The DESCRIBE reply is followed by its SDP body, not by media.
        let describe = unhex(DESCRIBE_REPLY);
        assert!(!is_interleaved_frame(&describe));
    }

    #[test]
    fn other_protocols_are_refused_early() {
        for junk in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"POST ",
            b"\x16\x03\x01",
            b"HTTP/1.1 200 OK\r\n",
            b"get_parameter x",
        ] {
            assert_eq!(parse_request(junk), Err("not_rtsp"), "{junk:?}");
        }
        assert_eq!(parse_request(b"OPTIONS * HTTP/1.1\r\n"), Err("not_rtsp"));
        assert_eq!(parse_request(b"OPTIONS rtsp://cam/\r\n\r\n"), Err("bad_request_line"));
        assert_eq!(parse_request(b"OPTIONS rtsp://cam/ FOO/1.0\r\n"), Err("bad_request_line"));
        for junk in [&b"HTTP/1.1 200 OK\r\n"[..], b"ICY 200", b"<?xml"] {
            assert_eq!(parse_response(junk), Err("not_rtsp"), "{junk:?}");
        }
        assert_eq!(parse_response(b"RTSP/1.0 2OO OK\r\n"), Err("bad_status"));
        for prefix in [&b""[..], b"OPT", b"OPTIONS rtsp://cam/ RTSP/1.0\r\nCSeq: 1\r\n", b"\r\n"] {
            assert_eq!(parse_request(prefix), Ok(Parsed::Incomplete), "{prefix:?}");
        }
        assert_eq!(parse_response(b"RTS"), Ok(Parsed::Incomplete));
    }

    #[test]
    fn sloppy_camera_servers_are_tolerated() {
        // Synthetic: LF line ends, lower-case names, a folded line, a junk line, RTSP/2.0.
        let (reply, used) = response(
            b"\r\nRTSP/2.0 401 Unauthorized\ncseq: 9\nWWW-Authenticate: Digest realm=\"IP Camera\"\n \
              nonce=\"1\"\ngarbage\nServer:   Hipcam RealServer/V1.0  \n\n",
        );
        assert_eq!(
            (reply.version.as_str(), reply.status, reply.reason.as_str()),
            ("RTSP/2.0", 401, "Unauthorized")
        );
        assert_eq!((reply.cseq, reply.server.as_deref()), (Some(9), Some("Hipcam RealServer/V1.0")));
        assert_eq!(reply.anomalies, ["leading_empty_lines", "folded_header", "invalid_header_line"]);
        assert_eq!(used, 134);

        let (req, _) = request(
            b"PLAY rtsp://cam/live RTSP/1.1 extra\r\nCSeq: x\r\nCSeq: 3\r\nSession: abc ; timeout=60\r\n\r\n",
        );
        assert_eq!((req.cseq, req.session.as_deref()), (Some(3), Some("abc")));
        assert_eq!(req.anomalies, ["extra_request_line_tokens", "unknown_version", "bad_cseq"]);
        let (req, _) = request(b"TEARDOWN rtsp://cam/ RTSP/1.0\r\n\r\n");
        assert_eq!(req.anomalies, ["missing_cseq"]);
        let (reply, _) = response(b"RTSP/1.0 200\r\nContent-Length: 12\r\nContent-Length: 13\r\n\r\n");
        assert_eq!((reply.reason.as_str(), reply.content_length), ("", Some(12)));
        assert_eq!(reply.anomalies, ["multiple_content_length"]);
    }

    #[test]
    fn limits_are_enforced() {
        let mut many = b"OPTIONS rtsp://cam/ RTSP/1.0\r\nCSeq: 1\r\n".to_vec();
        for i in 0..100 {
            many.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
        }
        many.extend_from_slice(b"User-Agent: late\r\n\r\n");
        let (req, used) = request(&many);
        assert_eq!((req.cseq, req.user_agent, used), (Some(1), None, many.len()));
        assert_eq!(req.anomalies, ["too_many_headers"]);

        let long = format!(
            "DESCRIBE rtsp://cam/{} RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: {}\r\n\r\n",
            "a".repeat(5000),
            "b".repeat(3000)
        );
        let (req, _) = request(long.as_bytes());
        assert_eq!((req.url.len(), req.user_agent.map(|u| u.len())), (MAX_URL, Some(MAX_VALUE)));
        assert_eq!(req.anomalies, ["url_truncated", "header_value_truncated"]);

        let endless = [&b"OPTIONS rtsp://cam/ RTSP/1.0\r\nX: "[..], &vec![b'a'; MAX_HEADER_BLOCK]].concat();
        assert_eq!(parse_request(&endless), Err("headers_too_long"));
        assert_eq!(parse_request(&endless[..MAX_HEADER_BLOCK - 1]), Ok(Parsed::Incomplete));
        let endless = [&b"OPTIONS rtsp://cam/"[..], &vec![b'a'; MAX_HEADER_BLOCK]].concat();
        assert_eq!(parse_request(&endless), Err("headers_too_long"));
    }

    #[test]
    fn serializes_with_snake_case_names() {
        let (req, _) = request(&unhex(SETUP2));
        let json = serde_json::to_value(&req).unwrap();
        assert_eq!(json["user_agent"], VLC_UA);
        assert_eq!(json["cseq"], 5);
        assert_eq!(json["session"], "8c30e102191f49d1");
        let (reply, _) = response(&unhex(DESCRIBE_REPLY));
        let json = serde_json::to_value(&reply).unwrap();
        assert_eq!(
            (json["content_type"].as_str(), json["content_length"].as_u64()),
            (Some("application/sdp"), Some(695))
        );
    }

    /// Besides not panicking: a complete answer depends only on the bytes it consumed (the
    /// invariant the fuzz target checks too).
    fn check(v: &[u8]) {
        if let Ok(Parsed::Complete(req, used)) = parse_request(v) {
            assert_eq!(parse_request(&v[..used]), Ok(Parsed::Complete(req, used)));
        }
        if let Ok(Parsed::Complete(resp, used)) = parse_response(v) {
            assert_eq!(parse_response(&v[..used]), Ok(Parsed::Complete(resp, used)));
        }
        if is_interleaved_frame(v) {
            assert!(parse_request(v).is_err() && parse_response(v).is_err());
        }
    }

    #[test]
    fn hostile_variants_never_panic() {
        let samples = [unhex(SETUP2), unhex(DESCRIBE_REPLY), unhex(LONE_SETUP), unhex("24000010805f")];
        crate::hostile::each_variant(&samples, check);
    }
}
