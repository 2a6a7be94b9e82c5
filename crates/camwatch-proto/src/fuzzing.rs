//! The bodies of the parsers' fuzz targets (`fuzz/fuzz_targets/*.rs` call these), so that a
//! crashing input kept in `fuzz/regressions/<target>/` is replayed by `cargo test` on every
//! build, not only when someone runs the fuzzer.

use crate::{baichuan, dhcp, dhip, dns, firmware, http, isapi, ntp, onvif, rtsp, sadp, ssdp, tls};

/// A fuzz target: the name of its binary and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target.
pub const TARGETS: &[Target] = &[
    ("baichuan", baichuan_target),
    ("dhcp", |d| drop(dhcp::parse(d))),
    ("dhip", |d| drop(dhip::parse(d))),
    ("dns", dns_target),
    ("firmware", firmware_target),
    ("http", http_target),
    ("isapi", |d| {
        let _ = isapi::parse_device_info(d);
        let _ = isapi::parse_ezviz(d);
        let _ = isapi::parse_magicbox(d);
    }),
    ("ntp", |d| drop(ntp::parse(d))),
    ("onvif", |d| {
        let _ = onvif::parse_device_information(d);
        let _ = onvif::parse_ws_discovery(d);
    }),
    ("rtsp", rtsp_target),
    ("sadp", |d| {
        let _ = sadp::parse(d);
        let _ = sadp::parse_legacy(d);
    }),
    ("ssdp", |d| drop(ssdp::parse(d))),
    ("tls", tls_target),
];

/// A Baichuan client stream walked by its headers (as the app layer does), and the upgrade
/// announcement read from every body.
pub fn baichuan_target(data: &[u8]) {
    let mut rest = data;
    while let Ok(Some(h)) = baichuan::parse_header(rest) {
        let body_end = h.len().saturating_add(usize::try_from(h.body_len).unwrap_or(usize::MAX));
        let body = rest.get(h.len()..body_end.min(rest.len())).unwrap_or(&[]);
        let _ = baichuan::upgrade_file(body);
        let _ = baichuan::Message::from_header(&h);
        assert!(h.extension_len() + h.payload_len() == h.body_len);
        match rest.get(body_end..) {
            Some(next) if !next.is_empty() => rest = next,
            _ => break,
        }
    }
}

/// Runs `target` on `data`; false if there is no such target.
pub fn run(target: &str, data: &[u8]) -> bool {
    match TARGETS.iter().find(|(name, _)| *name == target) {
        Some((_, f)) => {
            f(data);
            true
        }
        None => false,
    }
}

/// DNS/mDNS over UDP and TCP framing, and the passive DNS map fed with whatever parses (CNAME
/// chains built from hostile input must not loop or grow without bound).
pub fn dns_target(data: &[u8]) {
    let mut pdns = dns::PassiveDns::new(16);
    if let Ok(msg) = dns::parse(data) {
        pdns.learn(&msg, 0);
        for answer in &msg.answers {
            if let Ok(ip) = answer.rdata.parse() {
                let _ = pdns.lookup(ip, 1);
            }
        }
    }
    let mut rest = data;
    while let Ok((msg, used)) = dns::parse_tcp(rest) {
        pdns.learn(&msg, 0);
        rest = rest.get(used..).unwrap_or_default();
    }
    assert!(pdns.len() <= 16);
}

pub fn firmware_target(data: &[u8]) {
    use firmware::{parse_digicap_header, version_from_filename, Version};
    let _ = parse_digicap_header(data);
    let text = String::from_utf8_lossy(data);
    // Split the input so two versions can be compared with each other.
    let (a, b) = text.split_once('\n').unwrap_or((&text, "V5.5.0 build 170725"));
    let (va, vb) = (Version::parse(a), Version::parse(b));
    // compare is antisymmetric and reflexive; a violation is a bug worth a crash.
    assert_eq!(va.compare(&vb), vb.compare(&va).map(std::cmp::Ordering::reverse));
    assert_eq!(va.compare(&va), Some(std::cmp::Ordering::Equal));
    let _ = Version::from_parts(a, Some(b)).to_string();
    let _ = version_from_filename(&text);
}

pub fn http_target(data: &[u8]) {
    use http::{parse_request, parse_response, query_param, Parsed};
    // A complete header block depends only on the bytes it consumed.
    if let Ok(Parsed::Complete(request, used)) = parse_request(data) {
        assert!(used > 0 && used <= data.len());
        assert_eq!(parse_request(&data[..used]), Ok(Parsed::Complete(request.clone(), used)));
        assert!(request.headers.len() <= 64 && request.url.len() <= 4096);
        let _ = query_param(&request.url, "user");
    }
    if let Ok(Parsed::Complete(response, used)) = parse_response(data) {
        assert!(used > 0 && used <= data.len());
        assert_eq!(parse_response(&data[..used]), Ok(Parsed::Complete(response, used)));
    }
    let text = String::from_utf8_lossy(data);
    let (url, key) = text.split_once('\n').unwrap_or((&text, "a"));
    let _ = query_param(url, key);
    // A body: decoded from chunked coding, and its form's file extracted, in small pieces; the
    // output never exceeds the input and the consumed count stays within it.
    let mut chunks = http::Dechunker::default();
    let mut form = crate::multipart::FileExtractor::new(key.get(..key.len().min(70)).unwrap_or("a"));
    let (mut used, mut decoded, mut file) = (0usize, 0usize, 0usize);
    for piece in data.chunks(7) {
        let n = chunks.feed(piece, &mut |b| decoded += b.len());
        assert!(n <= piece.len());
        used += n;
        form.feed(piece, &mut |b| file += b.len());
    }
    assert!(used <= data.len() && decoded <= data.len() && file <= data.len());
    let _ = crate::multipart::boundary(&text);
}

pub fn rtsp_target(data: &[u8]) {
    use rtsp::{is_interleaved_frame, parse_request, parse_response, Parsed};
    // A complete header block depends only on the bytes it consumed; what follows it is
    // either another message or interleaved media.
    if let Ok(Parsed::Complete(request, used)) = parse_request(data) {
        assert!(used > 0 && used <= data.len());
        assert_eq!(parse_request(&data[..used]), Ok(Parsed::Complete(request, used)));
        let _ = is_interleaved_frame(&data[used..]);
    }
    if let Ok(Parsed::Complete(response, used)) = parse_response(data) {
        assert!(used > 0 && used <= data.len());
        assert_eq!(parse_response(&data[..used]), Ok(Parsed::Complete(response, used)));
        let _ = is_interleaved_frame(&data[used..]);
    }
    // Interleaved frames never parse as RTSP text.
    if is_interleaved_frame(data) {
        assert!(parse_request(data).is_err() && parse_response(data).is_err());
    }
}

pub fn tls_target(data: &[u8]) {
    use tls::{parse_client_hello, parse_server_hello, Parsed};
    // A complete hello depends only on the bytes it consumed: the record must come back
    // identical from exactly those bytes (nothing past them may change the answer).
    if let Ok(Parsed::Complete(hello, used)) = parse_client_hello(data) {
        assert!(used > 0 && used <= data.len());
        assert_eq!(parse_client_hello(&data[..used]), Ok(Parsed::Complete(hello.clone(), used)));
        assert_eq!(hello.ja3.hash.len(), 32);
        assert_eq!(hello.ja4.len(), 36);
    }
    if let Ok(Parsed::Complete(hello, used)) = parse_server_hello(data) {
        assert!(used > 0 && used <= data.len());
        assert_eq!(parse_server_hello(&data[..used]), Ok(Parsed::Complete(hello, used)));
    }
}

/// The inputs kept in `dir/<target>/*`, each run through its target. Panics (naming the file)
/// on an input that still crashes; errors on a folder named after no target.
pub fn replay_regressions(dir: &std::path::Path, run: impl Fn(&str, &[u8]) -> bool) -> Result<usize, String> {
    let mut n = 0;
    let Ok(targets) = std::fs::read_dir(dir) else { return Ok(0) };
    for t in targets.flatten() {
        if !t.path().is_dir() {
            continue;
        }
        let name = t.file_name().to_string_lossy().into_owned();
        let mut files: Vec<_> = std::fs::read_dir(t.path()).map_err(|e| e.to_string())?.flatten().collect();
        files.sort_by_key(|f| f.file_name());
        for f in files {
            let data = std::fs::read(f.path()).map_err(|e| format!("{}: {e}", f.path().display()))?;
            eprintln!("fuzz regression: {name} {}", f.path().display());
            if !run(&name, &data) {
                return Err(format!("{}: no fuzz target named {name}", t.path().display()));
            }
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    /// Every input kept from a fuzzer crash (or a bug found another way) still runs clean.
    #[test]
    fn kept_crashing_inputs_no_longer_crash() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
        let n = super::replay_regressions(&dir, super::run).unwrap_or_else(|e| panic!("{e}"));
        assert!(n >= 1, "no regression inputs found in {}", dir.display());
    }
}
