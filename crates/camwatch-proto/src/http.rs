//! HTTP/1.x request and response header blocks (httparse), reduced to the EVE `http` fields a
//! camera monitor logs: host, URL, user agent, server, content type and length, and the
//! `WWW-Authenticate` realm in which many cameras announce their model.
//!
//! httparse does the strict, fast path. When it refuses a request line, a small fallback
//! parses the line itself (missing protocol as in Suricata's `REQUEST_LINE_MISSING_PROTOCOL`,
//! spaces or shell metacharacters in the URI as sent by exploit scanners) and still hands the
//! header lines to httparse, so hostile requests are logged with an anomaly instead of lost.
//! Credentials are never copied into a record: `Authorization`-type and cookie headers are
//! redacted, and only the authentication scheme is kept.

use serde::Serialize;

use super::record::{capped_string, push_anomaly, redact_userinfo, REDACTED};

/// Largest header block buffered; past this without the blank line, the stream is refused.
pub const MAX_HEADER_BLOCK: usize = 32 * 1024;
/// Header lines httparse may return; more than this is refused (`too_many_headers`).
const PARSE_SLOTS: usize = 256;
/// Headers kept in a record.
const MAX_HEADERS: usize = 64;
const MAX_VALUE: usize = 2048;
const MAX_NAME: usize = 256;
const MAX_URL: usize = 4096;
/// Longest method token accepted while deciding whether a stream is HTTP at all.
const MAX_METHOD: usize = 24;
/// Methods that only exist in RTSP: such a stream is left to the RTSP parser at once.
const RTSP_ONLY_METHODS: [&[u8]; 9] = [
    b"DESCRIBE",
    b"SETUP",
    b"PLAY",
    b"PAUSE",
    b"TEARDOWN",
    b"ANNOUNCE",
    b"RECORD",
    b"GET_PARAMETER",
    b"SET_PARAMETER",
];

/// Result of a stream parser: a record plus how many stream bytes it spanned (the header
/// block, blank line included), or a request for more bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed<T> {
    Complete(T, usize),
    Incomplete,
}

/// A request header block, with Suricata EVE `http` field names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpRequest {
    pub http_method: String,
    pub url: String,
    /// "HTTP/1.1"; empty when the request line has no protocol (anomaly recorded).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    /// Host header (else the authority of an absolute URL), lower-cased, without port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_user_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_content_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_refer: Option<String>,
    /// The scheme of `Authorization` ("Basic", "Digest", …; "other" for anything unknown,
    /// which might itself be a secret). Credentials are never kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_scheme: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_length: Option<u64>,
    pub chunked: bool,
    /// The first 64 headers, values capped and credentials redacted.
    pub headers: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<&'static str>,
}

/// A response header block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpResponse {
    pub protocol: String,
    pub status: u16,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_content_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_length: Option<u64>,
    pub chunked: bool,
    /// `realm="…"` of the first `WWW-Authenticate` challenge that has one; cameras put their
    /// model or vendor there ("IP Camera(C1234)", "DS-2CD2042WD").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub www_authenticate_realm: Option<String>,
    pub headers: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<&'static str>,
}

/// Parses the request header block at the start of the client→server direction.
///
/// Errors: `not_http` (decided from the first bytes), `bad_request_line`, `bad_header`,
/// `too_many_headers`, `headers_too_long`.
pub fn parse_request(stream: &[u8]) -> Result<Parsed<HttpRequest>, &'static str> {
    let start = leading_newlines(stream);
    let s = stream.get(start..).unwrap_or_default();
    match method_prefix(s) {
        Prefix::No => return Err("not_http"),
        Prefix::NeedMore => return Ok(Parsed::Incomplete),
        Prefix::Yes => {}
    }
    let mut anomalies = Vec::new();
    if start > 0 {
        anomalies.push("leading_empty_lines");
    }
    let window = s.get(..MAX_HEADER_BLOCK).unwrap_or(s);
    let mut slots = [httparse::EMPTY_HEADER; PARSE_SLOTS];
    let mut req = httparse::Request::new(&mut slots);
    let mut config = httparse::ParserConfig::default();
    config.allow_multiple_spaces_in_request_line_delimiters(true).ignore_invalid_headers_in_requests(true);
    match config.parse_request(&mut req, window) {
        Ok(httparse::Status::Complete(n)) => {
            let line = RequestLine {
                method: req.method.unwrap_or_default().to_owned(),
                url: req.path.unwrap_or_default().to_owned(),
                protocol: format!("HTTP/1.{}", req.version.unwrap_or(1)),
            };
            check_skipped_lines(window.get(..n).unwrap_or_default(), req.headers.len(), &mut anomalies);
            Ok(Parsed::Complete(build_request(line, req.headers, anomalies), start + n))
        }
        Ok(httparse::Status::Partial) => incomplete_unless_too_long(window.len()),
        Err(httparse::Error::TooManyHeaders) => Err("too_many_headers"),
        Err(httparse::Error::Token | httparse::Error::Version) => {
            lenient_request(window, anomalies).map(|p| match p {
                Parsed::Complete(r, n) => Parsed::Complete(r, start + n),
                Parsed::Incomplete => Parsed::Incomplete,
            })
        }
        Err(_) => Err("bad_header"),
    }
}

/// Parses the response header block at the start of the server→client direction.
///
/// Errors: `not_http`, `bad_version`, `bad_status`, `bad_header`, `too_many_headers`,
/// `headers_too_long`.
pub fn parse_response(stream: &[u8]) -> Result<Parsed<HttpResponse>, &'static str> {
    let start = leading_newlines(stream);
    let s = stream.get(start..).unwrap_or_default();
    let probe = s.get(..5).unwrap_or(s);
    if !b"HTTP/".starts_with(probe) {
        return Err("not_http");
    }
    if probe.len() < 5 {
        return Ok(Parsed::Incomplete);
    }
    let mut anomalies = Vec::new();
    if start > 0 {
        anomalies.push("leading_empty_lines");
    }
    let window = s.get(..MAX_HEADER_BLOCK).unwrap_or(s);
    let mut slots = [httparse::EMPTY_HEADER; PARSE_SLOTS];
    let mut resp = httparse::Response::new(&mut slots);
    // Embedded web servers are sloppy; accept what browsers accept.
    let mut config = httparse::ParserConfig::default();
    config
        .allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .ignore_invalid_headers_in_responses(true);
    let n = match config.parse_response(&mut resp, window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return incomplete_unless_too_long(window.len()),
        Err(httparse::Error::Version) => return Err("bad_version"),
        Err(httparse::Error::Status) => return Err("bad_status"),
        Err(httparse::Error::TooManyHeaders) => return Err("too_many_headers"),
        Err(_) => return Err("bad_header"),
    };
    let mut server = None;
    let mut content_type = None;
    let mut realm = None;
    let mut body = BodyFraming::default();
    let headers = collect_headers(resp.headers, &mut anomalies, |name, value, anomalies| {
        if name.eq_ignore_ascii_case("server") {
            server.get_or_insert_with(|| value.to_owned());
        } else if name.eq_ignore_ascii_case("content-type") {
            content_type.get_or_insert_with(|| media_type(value));
        } else if name.eq_ignore_ascii_case("www-authenticate") {
            if realm.is_none() {
                realm = auth_realm(value);
            }
        } else {
            body.note(name, value, anomalies);
        }
    });
    body.finish(&mut anomalies);
    let response = HttpResponse {
        protocol: format!("HTTP/1.{}", resp.version.unwrap_or(1)),
        status: resp.code.unwrap_or_default(),
        reason: resp.reason.unwrap_or_default().to_owned(),
        server,
        http_content_type: content_type,
        content_length: body.content_length,
        chunked: body.chunked,
        www_authenticate_realm: realm,
        headers,
        anomalies,
    };
    Ok(Parsed::Complete(response, start + n))
}

/// The raw value of the first `key` parameter in the query string of `url` (not
/// percent-decoded; `Some("")` for a bare `key`).
pub fn query_param<'a>(url: &'a str, key: &str) -> Option<&'a str> {
    let (_, query) = url.split_once('?')?;
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    query.split('&').find_map(|pair| match pair.split_once('=') {
        Some((k, v)) if k == key => Some(v),
        None if pair == key => Some(""),
        _ => None,
    })
}

struct RequestLine {
    method: String,
    url: String,
    protocol: String,
}

enum Prefix {
    Yes,
    No,
    NeedMore,
}

/// Whether `s` can start with `METHOD SP`: upper-case letters, `-` and `_` (WebDAV and SSDP
/// methods included), so binary and TLS streams are refused after one byte.
fn method_prefix(s: &[u8]) -> Prefix {
    let token_len = s.iter().take(MAX_METHOD + 1).take_while(|&&b| is_method_byte(b)).count();
    match s.get(token_len) {
        None if token_len <= MAX_METHOD => Prefix::NeedMore,
        Some(b' ') if token_len > 0 && token_len <= MAX_METHOD => {
            if RTSP_ONLY_METHODS.contains(&s.get(..token_len).unwrap_or_default()) {
                Prefix::No
            } else {
                Prefix::Yes
            }
        }
        _ => Prefix::No,
    }
}

fn is_method_byte(b: u8) -> bool {
    b.is_ascii_uppercase() || b == b'-' || b == b'_'
}

/// Empty lines before a request or status line are tolerated (RFC 9112 2.2), as httparse does.
fn leading_newlines(stream: &[u8]) -> usize {
    stream.iter().take(MAX_HEADER_BLOCK).take_while(|&&b| b == b'\r' || b == b'\n').count()
}

fn incomplete_unless_too_long<T>(have: usize) -> Result<Parsed<T>, &'static str> {
    if have >= MAX_HEADER_BLOCK {
        Err("headers_too_long")
    } else {
        Ok(Parsed::Incomplete)
    }
}

/// Request lines httparse refuses but servers (and exploits) use: no protocol (`GET /`),
/// spaces, quotes, pipes or non-UTF-8 bytes in the URI. The line is split by hand and the
/// header lines are parsed by httparse behind a neutral request line.
fn lenient_request(
    window: &[u8],
    mut anomalies: Vec<&'static str>,
) -> Result<Parsed<HttpRequest>, &'static str> {
    let Some(eol) = window.iter().position(|&b| b == b'\n') else {
        return incomplete_unless_too_long(window.len());
    };
    let line = window.get(..eol).unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().any(|&b| b < 0x20 && b != b'\t' || b == 0x7f) {
        return Err("bad_request_line");
    }
    let Some(sp) = line.iter().position(|&b| b == b' ') else {
        return Err("bad_request_line");
    };
    let method = line.get(..sp).unwrap_or_default();
    let rest = trim_spaces(line.get(sp..).unwrap_or_default());
    let (uri, protocol) = match rest.iter().rposition(|&b| b == b' ') {
        Some(at) => {
            let last = rest.get(at + 1..).unwrap_or_default();
            if last.starts_with(b"RTSP/") {
                return Err("not_http");
            }
            if last.starts_with(b"HTTP/") {
                (trim_spaces(rest.get(..at).unwrap_or_default()), Some(last))
            } else {
                (rest, None)
            }
        }
        None => (rest, None),
    };
    // `GET  HTTP/1.1`: the protocol is there, the URI is not.
    if uri.is_empty() || uri.starts_with(b"HTTP/") {
        return Err("bad_request_line");
    }
    match protocol {
        None => anomalies.push("request_line_missing_protocol"),
        Some(b"HTTP/1.0" | b"HTTP/1.1") => {}
        Some(_) => anomalies.push("unknown_protocol"),
    }
    if uri.contains(&b' ') {
        anomalies.push("uri_with_spaces");
    }
    if std::str::from_utf8(uri).is_err() {
        anomalies.push("uri_not_utf8");
    } else if protocol.is_some() && !uri.contains(&b' ') {
        anomalies.push("invalid_uri_chars");
    }
    let request_line = RequestLine {
        method: String::from_utf8_lossy(method).into_owned(),
        url: String::from_utf8_lossy(uri).into_owned(),
        protocol: protocol.map(|p| String::from_utf8_lossy(p).into_owned()).unwrap_or_default(),
    };

    const NEUTRAL: &[u8] = b"GET / HTTP/1.1\r\n";
    let after_line = window.get(eol + 1..).unwrap_or_default();
    let mut patched = Vec::with_capacity(NEUTRAL.len() + after_line.len());
    patched.extend_from_slice(NEUTRAL);
    patched.extend_from_slice(after_line);
    let mut slots = [httparse::EMPTY_HEADER; PARSE_SLOTS];
    let mut req = httparse::Request::new(&mut slots);
    let mut config = httparse::ParserConfig::default();
    config.ignore_invalid_headers_in_requests(true);
    match config.parse_request(&mut req, &patched) {
        Ok(httparse::Status::Complete(n)) => {
            check_skipped_lines(patched.get(..n).unwrap_or_default(), req.headers.len(), &mut anomalies);
            let consumed = eol + 1 + n.saturating_sub(NEUTRAL.len());
            Ok(Parsed::Complete(build_request(request_line, req.headers, anomalies), consumed))
        }
        Ok(httparse::Status::Partial) => incomplete_unless_too_long(window.len()),
        Err(httparse::Error::TooManyHeaders) => Err("too_many_headers"),
        Err(_) => Err("bad_header"),
    }
}

fn trim_spaces(mut s: &[u8]) -> &[u8] {
    while let [b' ', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' '] = s {
        s = rest;
    }
    s
}

/// httparse silently skips malformed request header lines (`ignore_invalid_headers`); a line
/// count that disagrees with the header count says one was skipped.
fn check_skipped_lines(block: &[u8], headers: usize, anomalies: &mut Vec<&'static str>) {
    // The request line and the final blank line are not headers.
    let lines = block.iter().filter(|&&b| b == b'\n').count().saturating_sub(2);
    if lines > headers {
        anomalies.push("invalid_header_skipped");
    }
}

fn build_request(
    line: RequestLine,
    parsed: &[httparse::Header<'_>],
    mut anomalies: Vec<&'static str>,
) -> HttpRequest {
    let mut host_header: Option<String> = None;
    let mut user_agent = None;
    let mut content_type = None;
    let mut referer = None;
    let mut scheme = None;
    let mut body = BodyFraming::default();
    let headers = collect_headers(parsed, &mut anomalies, |name, value, anomalies| {
        if name.eq_ignore_ascii_case("host") {
            if host_header.is_some() {
                push_anomaly(anomalies, "multiple_host_headers");
            } else {
                host_header = Some(value.to_owned());
            }
        } else if name.eq_ignore_ascii_case("user-agent") {
            user_agent.get_or_insert_with(|| value.to_owned());
        } else if name.eq_ignore_ascii_case("content-type") {
            content_type.get_or_insert_with(|| media_type(value));
        } else if name.eq_ignore_ascii_case("referer") {
            referer.get_or_insert_with(|| value.to_owned());
        } else if name.eq_ignore_ascii_case("authorization") {
            scheme.get_or_insert_with(|| auth_scheme(value));
        } else {
            body.note(name, value, anomalies);
        }
    });
    body.finish(&mut anomalies);

    let (url, url_authority) = redact_userinfo(&line.url, &mut anomalies);
    let mut hostname = None;
    let mut http_port = None;
    if let Some(host) = host_header.as_deref().map(str::trim) {
        if host.is_empty() {
            anomalies.push("empty_host");
        } else {
            (hostname, http_port) = split_host_port(host, &mut anomalies);
        }
    } else if line.protocol == "HTTP/1.1" && url_authority.is_none() {
        anomalies.push("missing_host");
    }
    // An absolute URL (proxy requests, some scanners) names the host too.
    if let Some(authority) = url_authority {
        let (uri_host, uri_port) = split_host_port(&authority, &mut anomalies);
        if hostname.is_none() {
            (hostname, http_port) = (uri_host, uri_port);
        } else if uri_host.is_some() && uri_host != hostname {
            anomalies.push("host_mismatch");
        }
    }
    HttpRequest {
        http_method: line.method,
        url: capped_string(url, MAX_URL, "url_truncated", &mut anomalies),
        protocol: line.protocol,
        hostname,
        http_port,
        http_user_agent: user_agent,
        http_content_type: content_type,
        http_refer: referer,
        authorization_scheme: scheme,
        content_length: body.content_length,
        chunked: body.chunked,
        headers,
        anomalies,
    }
}

/// Copies headers into owned, capped, redacted pairs (the first [`MAX_HEADERS`]) and shows
/// every header (capped, unredacted) to `visit`, which extracts the interesting ones.
fn collect_headers<F>(
    parsed: &[httparse::Header<'_>],
    anomalies: &mut Vec<&'static str>,
    mut visit: F,
) -> Vec<(String, String)>
where
    F: FnMut(&str, &str, &mut Vec<&'static str>),
{
    let mut out = Vec::with_capacity(parsed.len().min(MAX_HEADERS));
    for h in parsed {
        let name = capped_string(h.name.to_owned(), MAX_NAME, "header_name_truncated", anomalies);
        let raw = h.value.get(..MAX_VALUE + 4).unwrap_or(h.value);
        let value = capped_string(
            String::from_utf8_lossy(raw).into_owned(),
            MAX_VALUE,
            "header_value_truncated",
            anomalies,
        );
        visit(&name, value.trim(), anomalies);
        if out.len() < MAX_HEADERS {
            let value = redact(&name, value);
            out.push((name, value));
        } else {
            push_anomaly(anomalies, "too_many_headers");
        }
    }
    out
}

/// The media type of a Content-Type value, lower-cased and without parameters, as Suricata
/// (libhtp) and nDPI log it: `text/html; charset=UTF-8` → `text/html`.
fn media_type(value: &str) -> String {
    value.split([';', ',']).next().unwrap_or_default().trim().to_ascii_lowercase()
}

/// Headers that carry credentials or session tokens keep only their scheme, if any.
fn redact(name: &str, value: String) -> String {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "authorization" | "proxy-authorization" => format!("{} {REDACTED}", auth_scheme(&value)),
        "cookie" | "set-cookie" => REDACTED.to_owned(),
        _ => value,
    }
}

/// The authentication scheme only, canonically spelled; an unknown first token could be a
/// bare secret, so it is reported as "other".
fn auth_scheme(value: &str) -> String {
    const SCHEMES: [&str; 6] = ["Basic", "Digest", "Bearer", "NTLM", "Negotiate", "AWS4-HMAC-SHA256"];
    let token = value.trim().split([' ', '\t']).next().unwrap_or_default();
    SCHEMES
        .iter()
        .find(|s| s.eq_ignore_ascii_case(token))
        .map_or_else(|| "other".to_owned(), |s| (*s).to_owned())
}

/// Content-Length and Transfer-Encoding, with the request-smuggling ambiguities flagged.
#[derive(Default)]
struct BodyFraming {
    content_length: Option<u64>,
    seen_length: bool,
    chunked: bool,
}

impl BodyFraming {
    fn note(&mut self, name: &str, value: &str, anomalies: &mut Vec<&'static str>) {
        if name.eq_ignore_ascii_case("content-length") {
            let parsed = (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
                .then(|| value.parse::<u64>().ok())
                .flatten();
            match (parsed, self.seen_length) {
                (None, _) => push_anomaly(anomalies, "bad_content_length"),
                (Some(v), true) if Some(v) != self.content_length => {
                    push_anomaly(anomalies, "multiple_content_length");
                }
                (Some(v), _) => self.content_length = self.content_length.or(Some(v)),
            }
            self.seen_length = true;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let last = value.rsplit(',').next().unwrap_or_default().trim();
            if last.eq_ignore_ascii_case("chunked") {
                self.chunked = true;
            } else {
                push_anomaly(anomalies, "unknown_transfer_encoding");
            }
        }
    }

    fn finish(&self, anomalies: &mut Vec<&'static str>) {
        if self.chunked && self.seen_length {
            anomalies.push("content_length_and_chunked");
        }
    }
}

/// Splits `host[:port]` (or `[v6]:port`); the host is lower-cased as Suricata logs it.
fn split_host_port(host: &str, anomalies: &mut Vec<&'static str>) -> (Option<String>, Option<u16>) {
    let (name, port) = if let Some(v6) = host.strip_prefix('[') {
        match v6.split_once(']') {
            Some((addr, rest)) => (addr, rest.strip_prefix(':')),
            None => {
                anomalies.push("bad_host");
                (v6, None)
            }
        }
    } else {
        match host.split_once(':') {
            // A bare IPv6 address has several colons and no port.
            Some((name, port)) if !port.contains(':') => (name, Some(port)),
            _ => (host, None),
        }
    };
    let port = match port {
        None | Some("") => None,
        // `u16::from_str` would also take "+80".
        Some(p) => match p.bytes().all(|b| b.is_ascii_digit()).then(|| p.parse::<u16>()) {
            Some(Ok(p)) if p != 0 => Some(p),
            _ => {
                anomalies.push("bad_host_port");
                None
            }
        },
    };
    let name = capped_string(name.to_ascii_lowercase(), MAX_VALUE, "header_value_truncated", anomalies);
    ((!name.is_empty()).then_some(name), port)
}

/// The `realm` parameter of an authentication challenge (RFC 9110 11.6.1): quoted-string
/// (with `\` escapes) or token.
fn auth_realm(value: &str) -> Option<String> {
    let lower = value.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower.get(from..).and_then(|s| s.find("realm")) {
        let at = from + found;
        from = at + 5;
        let boundary = at == 0 || matches!(lower.as_bytes().get(at - 1), Some(b' ' | b',' | b'\t'));
        let Some(after) = value.get(from..).map(str::trim_start) else { break };
        let Some(param) = after.strip_prefix('=').filter(|_| boundary) else {
            continue;
        };
        let param = param.trim_start();
        let realm = match param.strip_prefix('"') {
            Some(quoted) => {
                let mut out = String::new();
                let mut chars = quoted.chars();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => out.extend(chars.next()),
                        c => out.push(c),
                    }
                }
                out
            }
            None => param.split([',', ' ', '\t']).next().unwrap_or_default().to_owned(),
        };
        return Some(realm);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    // ndpi/http.pcapng, frame 4: `GET / HTTP/1.1`, Host google.com, curl/7.68.0.
    const CURL_GET: &str = "
        474554202f20485454502f312e310d0a486f73743a20676f6f676c652e636f6d0d0a557365722d4167656e743a206375
        726c2f372e36382e300d0a4163636570743a202a2f2a0d0a0d0a
    ";

    // ndpi/http.pcapng, frame 6: 301 from gws, header block (309 bytes) and the first body bytes.
    const GWS_301: &str = "
        485454502f312e3120333031204d6f766564205065726d616e656e746c790d0a4c6f636174696f6e3a20687474703a2f
        2f7777772e676f6f676c652e636f6d2f0d0a436f6e74656e742d547970653a20746578742f68746d6c3b206368617273
        65743d5554462d380d0a446174653a205475652c203235204a616e20323032322031363a35303a343120474d540d0a45
        7870697265733a205468752c2032342046656220323032322031363a35303a343120474d540d0a43616368652d436f6e
        74726f6c3a207075626c69632c206d61782d6167653d323539323030300d0a5365727665723a206777730d0a436f6e74
        656e742d4c656e6774683a203231390d0a582d5853532d50726f74656374696f6e3a20300d0a582d4672616d652d4f70
        74696f6e733a2053414d454f524947494e0d0a0d0a3c48544d4c3e3c484541443e3c6d6574
    ";

    // suricata-verify http-not09/input.pcap, frame 5: `GET /` with no protocol, LF line ends,
    // a `FakeHeader` line.
    const NOT09: &str = "
        474554202f0a46616b654865616465720a486f73743a206c6f63616c686f73740a557365722d4167656e743a206d7973
        63726970740a0a
    ";

    // camera/iotsentinel_D-LinkCam_Setup-A-1-STA.pcap, frame 134: app login `POST /HNAP1/` to a
    // D-Link camera (header block and first body bytes).
    const HNAP_POST: &str = "
        504f5354202f484e4150312f20485454502f312e310d0a557365722d4167656e743a206b736f6170322d616e64726f69
        642f322e362e302b0d0a436f6e74656e742d547970653a20746578742f786d6c3b636861727365743d7574662d380d0a
        4163636570742d456e636f64696e673a20677a69700d0a534f4150414354494f4e3a2022687474703a2f2f707572656e
        6574776f726b732e636f6d2f484e4150312f4c6f67696e220d0a436f6e74656e742d4c656e6774683a203435370d0a48
        6f73743a2031302e31302e31302e33370d0a436f6e6e656374696f6e3a204b6565702d416c6976650d0a0d0a3c3f786d
        6c2076657273696f6e3d2731
    ";

    // camera/iotsentinel_D-LinkCam_Setup-A-1-STA.pcap, frame 136: the camera's HNAP response
    // (header block and first body bytes).
    const HNAP_200: &str = "
        485454502f312e3120323030204f4b0d0a436f6e74656e742d547970653a20746578742f786d6c3b2063686172736574
        3d5554462d380d0a436f6e74656e742d4c656e6774683a203435380d0a436f6e6e656374696f6e3a20636c6f73650d0a
        457870697265733a204d6f6e2c203031204a756c20313938302030303a30303a303020474d540d0a43616368652d436f
        6e74726f6c3a206e6f2d63616368652c206e6f2d73746f72652c206d7573742d726576616c69646174650d0a50726167
        6d613a206e6f2d63616368650d0a0d0a3c3f786d6c2076657273696f6e3d2231
    ";

    // camera/shf_dlink-cam.pcap, frame 1243: WebSocket upgrade from a DCS-8000LH camera, `MD-MODEL` header.
    const RELAY_GET: &str = "
        474554202f72656c617920485454502f312e310d0a486f73743a2035322e3231322e3137302e390d0a55706772616465
        3a20776562736f636b65740d0a436f6e6e656374696f6e3a20557067726164650d0a5365632d576562536f636b65742d
        4b65793a204f52667651704b516c59545a434c707670466d6550673d3d0d0a5365632d576562536f636b65742d50726f
        746f636f6c3a2073747265616d2d70726f78790d0a5365632d576562536f636b65742d56657273696f6e3a2031330d0a
        4d442d4d4f44454c3a204443532d383030304c480d0a0d0a
    ";

    // camera/shf_dlink-cam.pcap, frame 1246: `101 Switching Protocols`.
    const RELAY_101: &str = "
        485454502f312e312031303120537769746368696e672050726f746f636f6c730d0a557067726164653a20776562736f
        636b65740d0a436f6e6e656374696f6e3a20557067726164650d0a5365632d576562536f636b65742d4163636570743a
        205162786f3541756c36445869636838446d78704848504f716148773d0d0a5365632d576562536f636b65742d50726f
        746f636f6c3a2073747265616d2d70726f78790d0a0d0a
    ";

    // camera/shf_dlink-cam.pcap, frame 12: `HEAD /default/ca-bundle.crt`.
    const CA_HEAD: &str = "
        48454144202f64656661756c742f63612d62756e646c652e63727420485454502f312e310d0a486f73743a2063612d6d
        67722e6175746f2e6d79646c696e6b2e636f6d0d0a4163636570743a202a2f2a0d0a0d0a
    ";

    // camera/shf_dlink-cam.pcap, frame 15: S3 response with long x-amz-meta headers, no body in the segment.
    const CA_200: &str = "
        485454502f312e3120323030204f4b0d0a436f6e74656e742d547970653a206170706c69636174696f6e2f782d783530
        392d63612d636572740d0a436f6e74656e742d4c656e6774683a20363031350d0a436f6e6e656374696f6e3a206b6565
        702d616c6976650d0a4c6173742d4d6f6469666965643a205765642c203233204d617920323031382030393a35333a30
        3420474d540d0a782d616d7a2d6d6574612d66696c652d7665723a206638623961383662303630396532333031333164
        3561363630623632303265310d0a782d616d7a2d6d6574612d66696c652d7369673a206351644c63342f6651784f4b65
        70306d7450516f6d684532413669613372687a546b68316f5575584c774f45515333792f5061635675786b776e517a34
        2b3038744f2b453251474443327a6a68423056656471576f38346a35374e463854714a733950386a4a2b4d786c665539
        58633253456a39796834455434664f506e696554516a4b76436b52424446664e42504a30644f67713871674a704f5446
        66546754616d554f67724875646a675a2b7a4675382f4d63354f516548304e577156657a313262375055704c53614868
        4264785a593258363336754e394d42346b50624438687a6f755667436c433658475653774d4b6379717a456247736354
        725377676a38382f4853776f367a414257614778486b4c7533787132544d4b475158623761317172457a4e65616b4e39
        476e3773763379476a4c6f744762783248704c6a51654f4b524a74726f537a2f687842786b45684c7a6a4f656f424264
        663847456f587377637a506868546836316f716268706b654f7861586b66544b4f4758464f4a2b744630795973556b2b
        4d36717a573378765655507242434179647533507038386e7a6131794b62412f4439564139634d313756366f374a5878
        314279574e506f35533434394a626d454f33667233357a37565559443776734737734d74784756436f413776596c5678
        535a38356768462f726e6d46375253566f473779753852785450557163356a324748364a353854594265656141484b71
        7165304e514d7047716a684365566130797a725a6136514962494c55446468526e693747494671454877574e2f395635
        4c32786b594e4c4558572f507a424556484466455159682b5365694a35446634482f33614830367676742f3342356137
        7545417339793365514d33784363414b4a57372b716c7a38723762357242486f6972366d3456387875514b762f593d0d
        0a4163636570742d52616e6765733a2062797465730d0a5365727665723a20416d617a6f6e53330d0a446174653a2054
        75652c2031332046656220323032342032323a35303a313420474d540d0a455461673a20226638623961383662303630
        396532333031333164356136363062363230326531220d0a582d43616368653a204869742066726f6d20636c6f756466
        726f6e740d0a5669613a20312e312037306564623333643430316437303164333431613030666665623937386238342e
        636c6f756466726f6e742e6e65742028436c6f756446726f6e74290d0a582d416d7a2d43662d506f703a20414d533538
        2d50310d0a582d416d7a2d43662d49643a20482d375639325a44684d6e77366e5f74556a515f6b486731653965725739
        337061634d696e494d2d6a6a6f715a54386a4f4d763955413d3d0d0a4167653a2035303731390d0a0d0a
    ";

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn request(bytes: &[u8]) -> (HttpRequest, usize) {
        match parse_request(bytes) {
            Ok(Parsed::Complete(r, n)) => (r, n),
            other => panic!("{other:?}"),
        }
    }

    fn response(bytes: &[u8]) -> (HttpResponse, usize) {
        match parse_response(bytes) {
            Ok(Parsed::Complete(r, n)) => (r, n),
            other => panic!("{other:?}"),
        }
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    #[test]
    fn curl_request_matches_ndpi() {
        // http.pcapng.out: Hostname google.com, URL google.com/, User-Agent curl/7.68.0.
        let (req, used) = request(&unhex(CURL_GET));
        assert_eq!(used, 74);
        assert_eq!(
            (req.http_method.as_str(), req.url.as_str(), req.protocol.as_str()),
            ("GET", "/", "HTTP/1.1")
        );
        assert_eq!(req.hostname.as_deref(), Some("google.com"));
        assert_eq!(req.http_port, None);
        assert_eq!(req.http_user_agent.as_deref(), Some("curl/7.68.0"));
        assert_eq!(req.headers.len(), 3);
        assert!(req.anomalies.is_empty(), "{:?}", req.anomalies);
    }

    #[test]
    fn gws_response_matches_ndpi() {
        // http.pcapng.out: StatusCode 301, Content-Type text/html, Server gws.
        let (resp, used) = response(&unhex(GWS_301));
        assert_eq!(used, 309);
        assert_eq!(
            (resp.protocol.as_str(), resp.status, resp.reason.as_str()),
            ("HTTP/1.1", 301, "Moved Permanently")
        );
        assert_eq!(resp.server.as_deref(), Some("gws"));
        assert_eq!(resp.http_content_type.as_deref(), Some("text/html"));
        assert_eq!(resp.content_length, Some(219));
        assert!(!resp.chunked);
        assert_eq!(header(&resp.headers, "location"), Some("http://www.google.com/"));
        assert!(resp.anomalies.is_empty(), "{:?}", resp.anomalies);
    }

    #[test]
    fn request_without_protocol_matches_suricata_verify() {
        // http-not09/test.yaml: http_user_agent myscript, anomaly REQUEST_LINE_MISSING_PROTOCOL.
        let (req, used) = request(&unhex(NOT09));
        assert_eq!(used, 55);
        assert_eq!(req.http_user_agent.as_deref(), Some("myscript"));
        assert_eq!(req.hostname.as_deref(), Some("localhost"));
        assert_eq!((req.http_method.as_str(), req.url.as_str(), req.protocol.as_str()), ("GET", "/", ""));
        assert_eq!(req.anomalies, ["request_line_missing_protocol", "invalid_header_skipped"]);
        let json = serde_json::to_value(&req).unwrap();
        assert!(json.get("protocol").is_none());
    }

    #[test]
    fn dlink_camera_traffic() {
        let (post, used) = request(&unhex(HNAP_POST));
        assert_eq!(used, 236);
        assert_eq!((post.http_method.as_str(), post.url.as_str()), ("POST", "/HNAP1/"));
        assert_eq!(post.http_user_agent.as_deref(), Some("ksoap2-android/2.6.0+"));
        assert_eq!(post.http_content_type.as_deref(), Some("text/xml"));
        assert_eq!(post.content_length, Some(457));
        assert_eq!(post.hostname.as_deref(), Some("10.10.10.37"));
        assert_eq!(header(&post.headers, "soapaction"), Some("\"http://purenetworks.com/HNAP1/Login\""));

        let (resp, used) = response(&unhex(HNAP_200));
        assert_eq!((used, resp.status, resp.content_length), (208, 200, Some(458)));
        assert_eq!(resp.http_content_type.as_deref(), Some("text/xml"));
        assert_eq!(resp.server, None);

        let (relay, _) = request(&unhex(RELAY_GET));
        assert_eq!(relay.hostname.as_deref(), Some("52.212.170.9"));
        assert_eq!(header(&relay.headers, "md-model"), Some("DCS-8000LH"));
        let (switch, used) = response(&unhex(RELAY_101));
        assert_eq!((switch.status, switch.reason.as_str(), used), (101, "Switching Protocols", 167));

        let (head, _) = request(&unhex(CA_HEAD));
        assert_eq!(
            (head.http_method.as_str(), head.hostname.as_deref()),
            ("HEAD", Some("ca-mgr.auto.mydlink.com"))
        );
        let (ca, used) = response(&unhex(CA_200));
        assert_eq!((used, ca.content_length), (1242, Some(6015)));
        assert_eq!(ca.http_content_type.as_deref(), Some("application/x-x509-ca-cert"));
    }

    #[test]
    fn every_prefix_of_a_header_block_is_incomplete() {
        for (sample, end) in [(unhex(CURL_GET), 74), (unhex(NOT09), 55), (unhex(HNAP_POST), 236)] {
            for n in 0..end {
                assert_eq!(parse_request(&sample[..n]), Ok(Parsed::Incomplete), "prefix {n}");
            }
        }
        let sample = unhex(GWS_301);
        for n in 0..309 {
            assert_eq!(parse_response(&sample[..n]), Ok(Parsed::Incomplete), "prefix {n}");
        }
    }

    #[test]
    fn other_protocols_are_refused_early() {
        for junk in [
            &b"\x16\x03\x01\x02\x00\x01"[..],
            b"SSH-2.0-OpenSSH",
            b"HTTP/1.1 200 OK\r\n",
            b"get / HTTP/1.1",
            b"$\x00\x01\x00",
        ] {
            assert_eq!(parse_request(junk), Err("not_http"), "{junk:?}");
        }
        assert_eq!(parse_request(b"DESCRIBE rtsp://cam/ RTSP/1.0\r\n"), Err("not_http"));
        assert_eq!(parse_request(b"SETUP "), Err("not_http"));
        assert_eq!(
            parse_request(b"OPTIONS rtsp://10.2.2.2:8554/ RTSP/1.0\r\nCSeq: 2\r\n\r\n"),
            Err("not_http")
        );
        assert_eq!(parse_request(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ /"), Err("not_http"));
        for prefix in [&b""[..], b"G", b"GET", b"\r\n", b"M-SEARC"] {
            assert_eq!(parse_request(prefix), Ok(Parsed::Incomplete), "{prefix:?}");
        }
        for junk in [&b"RTSP/1.0 200 OK\r\n"[..], b"ICY 200 OK\r\n", b"\x16\x03", b"<html>"] {
            assert_eq!(parse_response(junk), Err("not_http"), "{junk:?}");
        }
        for prefix in [&b""[..], b"H", b"HTTP", b"\r\nHTTP/1."] {
            assert_eq!(parse_response(prefix), Ok(Parsed::Incomplete), "{prefix:?}");
        }
        assert_eq!(parse_response(b"HTTP/2 200\r\n\r\n"), Err("bad_version"));
        assert_eq!(parse_response(b"HTTP/1.1 2x0 OK\r\n\r\n"), Err("bad_status"));
    }

    #[test]
    fn camera_realm_and_credentials() {
        // Synthetic: the shapes of Dahua/Hikvision/Axis login challenges.
        let (resp, _) = response(
            b"HTTP/1.1 401 Unauthorized\r\n\
              WWW-Authenticate: Digest qop=\"auth\", realm=\"IP Camera(C1234)\", \
              nonce=\"6d5e\", stale=\"FALSE\"\r\nWWW-Authenticate: Basic realm=\"other\"\r\n\r\n",
        );
        assert_eq!(resp.www_authenticate_realm.as_deref(), Some("IP Camera(C1234)"));
        assert_eq!(auth_realm("Basic realm=DS-2CD2042WD"), Some("DS-2CD2042WD".into()));
        assert_eq!(
            auth_realm(r#"Digest REALM = "a \"quoted\" name", nonce="x""#),
            Some("a \"quoted\" name".into())
        );
        assert_eq!(auth_realm(r#"Digest xrealm="no", nonce="x""#), None);
        assert_eq!(auth_realm(r#"Digest realm="unterminated"#), Some("unterminated".into()));

        let (req, _) = request(
            b"GET /ISAPI/System/deviceInfo HTTP/1.1\r\nHost: 192.168.1.64:8080\r\n\
              Authorization: Basic YWRtaW46MTIzNDU=\r\nCookie: WebSession=0123abcd\r\n\r\n",
        );
        assert_eq!(req.authorization_scheme.as_deref(), Some("Basic"));
        assert_eq!((req.hostname.as_deref(), req.http_port), (Some("192.168.1.64"), Some(8080)));
        assert_eq!(header(&req.headers, "authorization"), Some("Basic [redacted]"));
        assert_eq!(header(&req.headers, "cookie"), Some("[redacted]"));
        let logged = format!("{req:?}");
        assert!(!logged.contains("YWRtaW46MTIzNDU") && !logged.contains("0123abcd"), "{logged}");
        assert_eq!(auth_scheme("digest username=\"admin\""), "Digest");
        assert_eq!(auth_scheme("s3cr3t-token"), "other");
    }

    #[test]
    fn hosts_ports_and_absolute_urls() {
        let mut a = Vec::new();
        assert_eq!(split_host_port("Cam.Local:554", &mut a), (Some("cam.local".into()), Some(554)));
        assert_eq!(split_host_port("[fe80::1]:8000", &mut a), (Some("fe80::1".into()), Some(8000)));
        assert_eq!(split_host_port("fe80::1", &mut a), (Some("fe80::1".into()), None));
        assert_eq!(split_host_port("cam:", &mut a), (Some("cam".into()), None));
        assert!(a.is_empty());
        assert_eq!(split_host_port("cam:+80", &mut a), (Some("cam".into()), None));
        assert_eq!(split_host_port("cam:99999", &mut a), (Some("cam".into()), None));
        assert_eq!(a, ["bad_host_port", "bad_host_port"]);

        let (req, _) =
            request(b"GET http://admin:12345@10.0.0.9:81/snap.jpg HTTP/1.1\r\nHost: other\r\n\r\n");
        assert_eq!(req.url, "http://[redacted]@10.0.0.9:81/snap.jpg");
        assert_eq!(req.hostname.as_deref(), Some("other"));
        assert_eq!(req.anomalies, ["userinfo_in_url", "host_mismatch"]);
        let (req, _) = request(b"GET http://10.0.0.9:81/x HTTP/1.0\r\n\r\n");
        assert_eq!((req.hostname.as_deref(), req.http_port), (Some("10.0.0.9"), Some(81)));
        assert!(req.anomalies.is_empty(), "{:?}", req.anomalies);
        let (req, _) = request(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
        assert_eq!(
            (req.hostname.as_deref(), req.anomalies.as_slice()),
            (Some("a"), &["multiple_host_headers"][..])
        );
        let (req, _) = request(b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(req.anomalies, ["missing_host"]);
    }

    #[test]
    fn body_framing_ambiguities() {
        let (req, _) = request(
            b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        );
        assert!(req.chunked);
        assert_eq!(req.content_length, Some(5));
        assert_eq!(req.anomalies, ["content_length_and_chunked"]);
        let (req, _) =
            request(b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n");
        assert_eq!(
            (req.content_length, req.anomalies.as_slice()),
            (Some(5), &["multiple_content_length"][..])
        );
        let (resp, _) =
            response(b"HTTP/1.0 200 OK\r\nContent-Length: -1\r\nContent-Type: TEXT/XML ;x=y\r\n\r\n");
        assert_eq!((resp.content_length, resp.http_content_type.as_deref()), (None, Some("text/xml")));
        assert_eq!(resp.anomalies, ["bad_content_length"]);
    }

    #[test]
    fn exploit_shaped_request_lines_are_kept() {
        // Command injection into camera CGIs: quotes, pipes, backticks, spaces.
        let (req, used) = request(b"GET /cgi-bin/x.cgi?cmd=\"`id`|sh\" HTTP/1.1\r\nHost: cam\r\n\r\n");
        assert_eq!(req.url, "/cgi-bin/x.cgi?cmd=\"`id`|sh\"");
        assert_eq!((req.protocol.as_str(), used), ("HTTP/1.1", 56));
        assert!(req.anomalies.is_empty(), "{:?}", req.anomalies);
        // httparse takes any visible byte in a URI; a tab goes through the fallback.
        let (req, _) = request(b"GET /a<b>{c}\tx HTTP/1.1\r\nHost: cam\r\n\r\n");
        assert_eq!(req.url, "/a<b>{c}\tx");
        assert_eq!(req.anomalies, ["invalid_uri_chars"]);
        let (req, _) = request(b"GET /a b  HTTP/1.0\r\n\r\n");
        assert_eq!((req.url.as_str(), req.protocol.as_str()), ("/a b", "HTTP/1.0"));
        assert_eq!(req.anomalies, ["uri_with_spaces"]);
        let (req, _) = request(b"GET /\xff\xfe HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(req.anomalies, ["uri_not_utf8"]);
        assert_eq!(parse_request(b"GET  HTTP/1.1\r\n\r\n"), Err("bad_request_line"));
        assert_eq!(parse_request(b"GET /\x00 HTTP/1.1\r\n\r\n"), Err("bad_request_line"));
    }

    #[test]
    fn limits_are_enforced() {
        let mut many = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
        for i in 0..70 {
            many.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        let (req, used) = request(&many);
        assert_eq!((req.headers.len(), used), (64, many.len()));
        assert_eq!(req.anomalies, ["too_many_headers"]);
        let mut flood = b"GET / HTTP/1.1\r\n".to_vec();
        flood.extend(std::iter::repeat_n(&b"A: b\r\n"[..], 300).flatten());
        flood.extend_from_slice(b"\r\n");
        assert_eq!(parse_request(&flood), Err("too_many_headers"));

        let long = format!(
            "GET /{} HTTP/1.1\r\nUser-Agent: {}\r\nHost: h\r\n\r\n",
            "a".repeat(5000),
            "é".repeat(1500)
        );
        let (req, _) = request(long.as_bytes());
        assert_eq!(req.url.len(), MAX_URL);
        assert_eq!(req.http_user_agent.as_ref().map(String::len), Some(2048));
        assert_eq!(req.anomalies, ["header_value_truncated", "url_truncated"]);

        let endless = [&b"GET / HTTP/1.1\r\nX: "[..], &vec![b'a'; MAX_HEADER_BLOCK]].concat();
        assert_eq!(parse_request(&endless), Err("headers_too_long"));
        assert_eq!(parse_request(&endless[..MAX_HEADER_BLOCK - 1]), Ok(Parsed::Incomplete));
        let endless = [&b"HTTP/1.1 200 OK\r\nX: "[..], &vec![b'a'; MAX_HEADER_BLOCK]].concat();
        assert_eq!(parse_response(&endless), Err("headers_too_long"));
    }

    #[test]
    fn query_parameters() {
        let url = "/cgi-bin/snapshot.cgi?channel=1&user=admin&flag&x=a=b#frag&y=2";
        assert_eq!(query_param(url, "channel"), Some("1"));
        assert_eq!(query_param(url, "user"), Some("admin"));
        assert_eq!(query_param(url, "flag"), Some(""));
        assert_eq!(query_param(url, "x"), Some("a=b"));
        assert_eq!(query_param(url, "y"), None);
        assert_eq!(query_param(url, "Channel"), None);
        assert_eq!(query_param("/no/query", "a"), None);
        // Hikvision CVE-2017-7921 style.
        assert_eq!(query_param("/Security/users?auth=YWRtaW46MTEK", "auth"), Some("YWRtaW46MTEK"));
    }

    #[test]
    fn serializes_with_eve_field_names() {
        let (req, _) = request(&unhex(CURL_GET));
        let json = serde_json::to_value(&req).unwrap();
        assert_eq!(json["hostname"], "google.com");
        assert_eq!(json["http_user_agent"], "curl/7.68.0");
        assert_eq!(json["http_method"], "GET");
        assert_eq!(json["protocol"], "HTTP/1.1");
        assert_eq!(json["headers"][0][0], "Host");
        let (resp, _) = response(&unhex(GWS_301));
        let json = serde_json::to_value(&resp).unwrap();
        assert_eq!(
            (json["status"].as_u64(), json["http_content_type"].as_str()),
            (Some(301), Some("text/html"))
        );
    }

    /// Besides not panicking: a complete answer depends only on the bytes it consumed (the
    /// invariant the fuzz target checks too).
    fn check(v: &[u8]) {
        if let Ok(Parsed::Complete(req, used)) = parse_request(v) {
            let _ = query_param(&req.url, "a");
            assert_eq!(parse_request(&v[..used]), Ok(Parsed::Complete(req, used)));
        }
        if let Ok(Parsed::Complete(resp, used)) = parse_response(v) {
            assert_eq!(parse_response(&v[..used]), Ok(Parsed::Complete(resp, used)));
        }
    }

    #[test]
    fn hostile_variants_never_panic() {
        let samples = [unhex(CURL_GET), unhex(NOT09), unhex(HNAP_POST), unhex(GWS_301), unhex(CA_200)];
        crate::hostile::each_variant(&samples, check);
    }
}

/// Longest chunk-size line (with extensions) or trailer line read; a longer one ends the body.
const MAX_CHUNK_LINE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Reading a chunk-size line.
    Size,
    /// Inside a chunk's data: bytes left.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines up to an empty one.
    Trailer,
    Done,
}

/// Chunked transfer coding (RFC 9112 §7.1) decoded as it streams: the data of each chunk goes
/// out as it comes, and the body's end (the last chunk and its trailer) is found without
/// buffering more than one line. A bare LF is taken for CRLF, as servers and parsers do.
#[derive(Debug, Clone)]
pub struct Dechunker {
    state: ChunkState,
    line: Vec<u8>,
    /// The coding was broken (a bad size, an over-long line): the body ended there.
    pub broken: bool,
}

impl Default for Dechunker {
    fn default() -> Self {
        Self { state: ChunkState::Size, line: Vec::new(), broken: false }
    }
}

impl Dechunker {
    /// Whether the body has ended (last chunk and trailer read, or the coding broke).
    pub fn done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Decodes from `input`, sending chunk data to `out`; returns how many bytes of `input`
    /// belong to the body (the rest is the next message).
    pub fn feed(&mut self, input: &[u8], out: &mut dyn FnMut(&[u8])) -> usize {
        let mut at = 0;
        while at < input.len() {
            match self.state {
                ChunkState::Done => break,
                ChunkState::Data(left) => {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(input.len() - at);
                    out(&input[at..at + n]);
                    at += n;
                    let left = left - n as u64;
                    self.state = if left == 0 { ChunkState::DataEnd } else { ChunkState::Data(left) };
                }
                ChunkState::Size | ChunkState::DataEnd | ChunkState::Trailer => {
                    let Some(nl) = input[at..].iter().position(|b| *b == b'\n') else {
                        self.line.extend_from_slice(&input[at..]);
                        at = input.len();
                        if self.line.len() > MAX_CHUNK_LINE {
                            self.broken = true;
                            self.state = ChunkState::Done;
                        }
                        break;
                    };
                    self.line.extend_from_slice(&input[at..at + nl]);
                    at += nl + 1;
                    let line = std::mem::take(&mut self.line);
                    let line = line.strip_suffix(b"\r").unwrap_or(&line);
                    self.state = match self.state {
                        ChunkState::DataEnd if line.is_empty() => ChunkState::Size,
                        ChunkState::DataEnd => {
                            self.broken = true;
                            ChunkState::Done
                        }
                        ChunkState::Trailer if line.is_empty() => ChunkState::Done,
                        ChunkState::Trailer => ChunkState::Trailer,
                        _ => {
                            let size = std::str::from_utf8(line)
                                .ok()
                                .and_then(|l| l.split(';').next())
                                .and_then(|s| u64::from_str_radix(s.trim(), 16).ok());
                            match size {
                                Some(0) => ChunkState::Trailer,
                                Some(n) => ChunkState::Data(n),
                                None => {
                                    self.broken = true;
                                    ChunkState::Done
                                }
                            }
                        }
                    };
                }
            }
        }
        at
    }
}

#[cfg(test)]
mod dechunk_tests {
    use super::*;

    fn decode(body: &[u8], step: usize) -> (Vec<u8>, usize, Dechunker) {
        let mut d = Dechunker::default();
        let mut out = Vec::new();
        let mut used = 0;
        for chunk in body.chunks(step.max(1)) {
            used += d.feed(chunk, &mut |b| out.extend_from_slice(b));
            if d.done() {
                break;
            }
        }
        (out, used, d)
    }

    /// RFC 9112's example shape: sizes in hex, an extension, a trailer, then the next request,
    /// which is not the body's; at any cut.
    #[test]
    fn decodes_at_any_cut_and_stops_at_the_end() {
        let body = b"4\r\nWiki\r\n6;ext=1\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nExpires: never\r\n\r\nGET /next HTTP/1.1\r\n";
        let end = body.len() - b"GET /next HTTP/1.1\r\n".len();
        for step in [1, 2, 3, 5, 8, 13, body.len()] {
            let (out, used, d) = decode(body, step);
            assert_eq!(out, b"Wikipedia in \r\n\r\nchunks.", "step {step}");
            assert!(d.done() && !d.broken);
            // Fed whole, exactly the body is consumed; fed in pieces, the piece that ends it.
            if step == body.len() {
                assert_eq!(used, end);
            }
        }
    }

    #[test]
    fn a_broken_coding_ends_the_body() {
        let (out, _, d) = decode(b"zz\r\ndata", 64);
        assert!(out.is_empty() && d.done() && d.broken);
        let (_, _, d) = decode(b"3\r\nabcX\r\n", 64);
        assert!(d.broken);
        let (out, _, d) = decode(&[b'1'; MAX_CHUNK_LINE * 2], 100);
        assert!(out.is_empty() && d.broken);
        // 2^64 - 1: no overflow, data just keeps coming.
        let (out, _, d) = decode(b"ffffffffffffffff\r\nabc", 64);
        assert_eq!((out.as_slice(), d.done()), (&b"abc"[..], false));
    }
}
