//! TLS handshake fingerprinting: the ClientHello (SNI, ALPN, offered versions, JA3, JA4) and the
//! ServerHello (JA3S) at the start of one direction of a TCP stream.
//!
//! Record framing and the hello bodies are decoded with `tls-parser`; this module adds what a
//! passive sensor needs on top: reassembly of a hello split over several handshake records and
//! several TCP segments (bounded to [`MAX_HANDSHAKE_LEN`]), an explicit "need more bytes" answer,
//! and fingerprints computed the way Suricata, nDPI and FoxIO's reference do (see the tests).
//! Old OpenSSL 0.9.8 firmwares (common on cameras) still send SSLv2-compatible ClientHellos;
//! those are decoded too and flagged with the `sslv2_compat_hello` anomaly.

use std::borrow::Cow;
use std::fmt::Write as _;

use md5::Md5;
use serde::Serialize;

use super::record::push_anomaly;
use sha2::{Digest as _, Sha256};
use tls_parser::nom;
use tls_parser::{
    parse_tls_client_hello_extension, parse_tls_handshake_client_hello, parse_tls_handshake_msg_server_hello,
    parse_tls_raw_record, parse_tls_server_hello_extension, SNIType, TlsExtension, TlsMessageHandshake,
};

/// Largest handshake message reassembled; a ClientHello is normally well under 2 KiB, even
/// with post-quantum key shares, so anything bigger is refused rather than buffered.
pub const MAX_HANDSHAKE_LEN: usize = 64 * 1024;
/// Cap on the list-valued fields kept in a record (the fingerprints still use whole lists,
/// which are bounded by [`MAX_HANDSHAKE_LEN`]).
const MAX_LIST: usize = 64;
/// Cipher lists are longer than other lists in real life (OpenSSL `ALL` offers 80+ suites).
const MAX_CIPHERS: usize = 256;
/// A host name is at most 253 bytes; Suricata rejects SNI longer than 255.
const MAX_SNI_LEN: usize = 255;

const CONTENT_HANDSHAKE: u8 = 0x16;
const HS_CLIENT_HELLO: u8 = 1;
const HS_SERVER_HELLO: u8 = 2;
const EXT_SNI: u16 = 0x0000;
const EXT_ALPN: u16 = 0x0010;
const EXT_SUPPORTED_VERSIONS: u16 = 0x002b;

/// Result of a stream parser: a record plus how many stream bytes it spanned, or a request
/// for more bytes (the caller keeps buffering, within its own limit).
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed<T> {
    /// The record and the number of bytes consumed (whole TLS records).
    Complete(T, usize),
    /// The bytes so far are a plausible prefix; feed more.
    Incomplete,
}

/// A JA3-style fingerprint: the comma/dash string and its MD5 (EVE `tls.ja3`, `tls.ja3s`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ja3 {
    pub string: String,
    pub hash: String,
}

/// What a ClientHello says about the client. Lists are in wire order with GREASE removed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientHello {
    /// Version in the first record header (usually 0x0301); `0x0002` for an SSLv2-framed hello.
    pub record_version: u16,
    /// The client's version as Suricata writes it ("TLS 1.2", "TLS 1.3", "TLS 1.3 draft-28"):
    /// the legacy client_version unless supported_versions offers a known version, in which
    /// case its first such entry.
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    pub alpn: Vec<String>,
    pub supported_versions: Vec<u16>,
    pub cipher_suites: Vec<u16>,
    pub extensions: Vec<u16>,
    pub groups: Vec<u16>,
    pub ec_point_formats: Vec<u8>,
    pub signature_algorithms: Vec<u16>,
    pub ja3: Ja3,
    pub ja4: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<&'static str>,
}

/// What a ServerHello says about the server's choice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerHello {
    /// The negotiated version as Suricata writes it (supported_versions wins over the legacy
    /// field, so TLS 1.3 shows as "TLS 1.3").
    pub version: String,
    pub cipher_suite: u16,
    pub ja3s: Ja3,
    /// The supported_versions extension of a TLS 1.3 ServerHello.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selected_version: Option<u16>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<&'static str>,
}

/// Parses the ClientHello at the start of the client→server direction of a TCP stream.
///
/// Errors: `not_tls`, `sslv2` (a pure SSLv2 hello), `not_client_hello`, `interleaved_record`,
/// `bad_record_version`, `record_too_long`, `handshake_too_long`, `bad_client_hello`.
pub fn parse_client_hello(stream: &[u8]) -> Result<Parsed<ClientHello>, &'static str> {
    if stream.first().is_some_and(|&b| b & 0x80 != 0) {
        return parse_sslv2_client_hello(stream);
    }
    let Some(hs) = read_handshake(stream, HS_CLIENT_HELLO, "not_client_hello")? else {
        return Ok(Parsed::Incomplete);
    };
    let mut anomalies = hs.anomalies;
    let (rest, ch) = parse_tls_handshake_client_hello(&hs.body).map_err(|_| "bad_client_hello")?;
    let ext_bytes: &[u8] = match ch.ext {
        Some(ext) => {
            if !rest.is_empty() {
                anomalies.push("trailing_data");
            }
            ext
        }
        None if rest.is_empty() => &[],
        // tls-parser drops an extension block whose length overruns the message; keep
        // whatever extensions do fit instead of losing them all.
        None => {
            anomalies.push("bad_extensions_length");
            rest.get(2..).unwrap_or_default()
        }
    };

    let ciphers: Vec<u16> = ch.ciphers.iter().map(|c| c.0).filter(|&c| !is_grease(c)).collect();
    let mut hello = HelloFields::default();
    for (typ, whole) in split_extensions(ext_bytes, &mut anomalies) {
        if is_grease(typ) {
            continue;
        }
        hello.note_type(typ, &mut anomalies);
        match parse_tls_client_hello_extension(whole) {
            Ok((_, ext)) => hello.absorb(ext, &mut anomalies),
            Err(_) => anomalies.push("malformed_extension"),
        }
    }
    let legacy = ch.version.0;
    Ok(Parsed::Complete(hello.finish(hs.record_version, legacy, ciphers, anomalies), hs.consumed))
}

/// Parses the ServerHello at the start of the server→client direction of a TCP stream.
///
/// Errors: as [`parse_client_hello`], with `not_server_hello` and `bad_server_hello`.
pub fn parse_server_hello(stream: &[u8]) -> Result<Parsed<ServerHello>, &'static str> {
    let Some(hs) = read_handshake(stream, HS_SERVER_HELLO, "not_server_hello")? else {
        return Ok(Parsed::Incomplete);
    };
    let mut anomalies = hs.anomalies;
    let (legacy, cipher_suite, ext) = match parse_tls_handshake_msg_server_hello(&hs.body) {
        Ok((_, TlsMessageHandshake::ServerHello(sh))) => (sh.version.0, sh.cipher.0, sh.ext),
        Ok((_, TlsMessageHandshake::ServerHelloV13Draft18(sh))) => (sh.version.0, sh.cipher.0, sh.ext),
        _ => return Err("bad_server_hello"),
    };
    let mut extensions = Vec::new();
    let mut selected_version = None;
    for (typ, whole) in split_extensions(ext.unwrap_or_default(), &mut anomalies) {
        if is_grease(typ) {
            continue;
        }
        extensions.push(typ);
        if typ == EXT_SUPPORTED_VERSIONS {
            match parse_tls_server_hello_extension(whole) {
                Ok((_, TlsExtension::SupportedVersions(v))) if v.len() == 1 => {
                    selected_version = v.first().map(|v| v.0);
                }
                _ => anomalies.push("malformed_extension"),
            }
        }
    }
    // Suricata: the legacy field, then whatever supported_versions selected.
    let version = selected_version.unwrap_or_else(|| suricata_legacy_version(legacy));
    let string = format!("{},{},{}", legacy, cipher_suite, join_dec(&extensions));
    let server = ServerHello {
        version: version_name(version),
        cipher_suite,
        ja3s: Ja3 { hash: md5_hex(&string), string },
        selected_version,
        anomalies,
    };
    Ok(Parsed::Complete(server, hs.consumed))
}

/// Fields gathered from ClientHello extensions; the whole (GREASE-free) lists are kept here
/// for the fingerprints and only truncated when the record is built.
#[derive(Default)]
struct HelloFields {
    ext_types: Vec<u16>,
    seen: Vec<u64>,
    sni: Option<String>,
    sni_present: bool,
    alpn: Vec<Vec<u8>>,
    supported_versions: Option<Vec<u16>>,
    groups: Vec<u16>,
    ec_point_formats: Vec<u8>,
    signature_algorithms: Vec<u16>,
}

impl HelloFields {
    fn note_type(&mut self, typ: u16, anomalies: &mut Vec<&'static str>) {
        // A 64 Ki-bit set: duplicate detection stays linear on hostile extension lists.
        if self.seen.is_empty() {
            self.seen = vec![0; 1024];
        }
        let (word, bit) = (usize::from(typ / 64), typ % 64);
        if let Some(w) = self.seen.get_mut(word) {
            if *w & (1 << bit) != 0 {
                push_anomaly(anomalies, "duplicate_extension");
            }
            *w |= 1 << bit;
        }
        if typ == EXT_SNI {
            self.sni_present = true;
        }
        self.ext_types.push(typ);
    }

    /// Takes what the fingerprints and the record need from one decoded extension. A repeated
    /// extension (already flagged as `duplicate_extension`) never overrides the first one.
    fn absorb(&mut self, ext: TlsExtension<'_>, anomalies: &mut Vec<&'static str>) {
        match ext {
            TlsExtension::SNI(names) => {
                let host = names.iter().find(|(t, _)| *t == SNIType::HostName).map(|(_, n)| *n);
                match host {
                    Some(name) if self.sni.is_none() => self.sni = Some(sni_string(name, anomalies)),
                    Some(_) => {}
                    None => push_anomaly(anomalies, "empty_sni"),
                }
            }
            TlsExtension::ALPN(protos) if self.alpn.is_empty() => {
                // GREASE ALPN values (RFC 8701) are two bytes of the 0x?a?a pattern.
                self.alpn =
                    protos.iter().filter(|p| !is_grease_alpn(p)).take(MAX_LIST).map(|p| p.to_vec()).collect();
            }
            TlsExtension::SupportedVersions(v) if self.supported_versions.is_none() => {
                self.supported_versions = Some(v.iter().map(|v| v.0).filter(|&v| !is_grease(v)).collect());
            }
            TlsExtension::EllipticCurves(g) if self.groups.is_empty() => {
                self.groups = g.iter().map(|g| g.0).filter(|&g| !is_grease(g)).collect();
            }
            TlsExtension::EcPointFormats(f) if self.ec_point_formats.is_empty() => {
                self.ec_point_formats = f.to_vec();
            }
            TlsExtension::SignatureAlgorithms(s) if self.signature_algorithms.is_empty() => {
                self.signature_algorithms = s.into_iter().filter(|&s| !is_grease(s)).collect();
            }
            _ => {}
        }
    }

    fn finish(
        self,
        record_version: u16,
        legacy: u16,
        ciphers: Vec<u16>,
        mut anomalies: Vec<&'static str>,
    ) -> ClientHello {
        let ja3_string = format!(
            "{},{},{},{},{}",
            legacy,
            join_dec(&ciphers),
            join_dec(&self.ext_types),
            join_dec(&self.groups),
            join_dec(&self.ec_point_formats)
        );
        let offered = self.supported_versions.as_deref().unwrap_or_default();
        // Suricata takes the first known version offered (skipping GREASE and noise).
        let version = offered
            .iter()
            .copied()
            .find(|&v| suricata_version_valid(v))
            .unwrap_or_else(|| suricata_legacy_version(legacy));
        let ja4_version = offered.iter().copied().max().unwrap_or(legacy);
        let ja4 = ja4(Ja4Input {
            version: ja4_version,
            sni: self.sni_present,
            ciphers: &ciphers,
            extensions: &self.ext_types,
            alpn: self.alpn.first().map(Vec::as_slice),
            signature_algorithms: &self.signature_algorithms,
        });
        let alpn = self.alpn.iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect();
        ClientHello {
            record_version,
            version: version_name(version),
            sni: self.sni,
            alpn,
            supported_versions: capped(offered.to_vec(), MAX_LIST, &mut anomalies),
            cipher_suites: capped(ciphers, MAX_CIPHERS, &mut anomalies),
            extensions: capped(self.ext_types, MAX_LIST, &mut anomalies),
            groups: capped(self.groups, MAX_LIST, &mut anomalies),
            ec_point_formats: capped(self.ec_point_formats, MAX_LIST, &mut anomalies),
            signature_algorithms: capped(self.signature_algorithms, MAX_LIST, &mut anomalies),
            ja3: Ja3 { hash: md5_hex(&ja3_string), string: ja3_string },
            ja4,
            anomalies,
        }
    }
}

/// One handshake message, reassembled from the records at the start of the stream.
struct Handshake<'a> {
    record_version: u16,
    /// The message body (after the 4-byte handshake header).
    body: Cow<'a, [u8]>,
    /// Stream bytes up to the end of the record holding the message's last byte.
    consumed: usize,
    anomalies: Vec<&'static str>,
}

/// Walks handshake records from the start of `stream` until the first handshake message is
/// complete. `Ok(None)` means more bytes are needed. A message inside one record is borrowed;
/// only a fragmented one is copied (at most `MAX_HANDSHAKE_LEN` + 4 bytes).
fn read_handshake<'a>(
    stream: &'a [u8],
    want: u8,
    wrong_type: &'static str,
) -> Result<Option<Handshake<'a>>, &'static str> {
    let mut pos = 0;
    let mut record_version = None;
    let mut joined: Vec<u8> = Vec::new();
    let mut anomalies = Vec::new();
    loop {
        let rest = stream.get(pos..).unwrap_or_default();
        check_record_prefix(rest, pos == 0)?;
        let record = match parse_tls_raw_record(rest) {
            Ok((_, record)) => record,
            Err(nom::Err::Incomplete(_)) => {
                // Judge the handshake type as soon as its byte arrives, so a stream that starts
                // with some other message is not buffered to the end of its record.
                if joined.is_empty() && rest.get(5).is_some_and(|&t| t != want) {
                    return Err(wrong_type);
                }
                return Ok(None);
            }
            Err(_) => return Err("record_too_long"),
        };
        pos += 5 + record.data.len();
        let version = record.hdr.version.0;
        match record_version {
            None => record_version = Some(version),
            Some(v) if v != version => push_anomaly(&mut anomalies, "record_version_changed"),
            Some(_) => {}
        }
        if record.data.is_empty() {
            // RFC 8446 5.1 forbids empty handshake fragments; seen as an evasion trick.
            push_anomaly(&mut anomalies, "empty_record");
            continue;
        }
        if joined.is_empty() {
            if let Some(end) = message_end(record.data, want, wrong_type)? {
                return Ok(Some(Handshake {
                    record_version: record_version.unwrap_or(version),
                    body: Cow::Borrowed(record.data.get(4..end).unwrap_or_default()),
                    consumed: pos,
                    anomalies,
                }));
            }
        }
        let room = (MAX_HANDSHAKE_LEN + 4).saturating_sub(joined.len());
        joined.extend_from_slice(record.data.get(..room).unwrap_or(record.data));
        if let Some(end) = message_end(&joined, want, wrong_type)? {
            joined.truncate(end);
            joined.drain(..4);
            anomalies.push("fragmented_handshake");
            return Ok(Some(Handshake {
                record_version: record_version.unwrap_or(version),
                body: Cow::Owned(joined),
                consumed: pos,
                anomalies,
            }));
        }
    }
}

/// Rejects a (possibly partial) record header that cannot start a TLS handshake record, so a
/// non-TLS stream is given up after its first bytes.
fn check_record_prefix(rest: &[u8], first: bool) -> Result<(), &'static str> {
    let bad = |later: &'static str| if first { "not_tls" } else { later };
    match rest.first() {
        Some(&CONTENT_HANDSHAKE) | None => {}
        Some(_) => return Err(bad("interleaved_record")),
    }
    // Record versions are 0x0300..=0x0304 (TLS 1.3 keeps 0x0303 on the wire).
    if rest.get(1).is_some_and(|&major| major != 3) || rest.get(2).is_some_and(|&minor| minor > 4) {
        return Err(bad("bad_record_version"));
    }
    Ok(())
}

/// End offset of the first handshake message in `buf` once it is complete.
fn message_end(buf: &[u8], want: u8, wrong_type: &'static str) -> Result<Option<usize>, &'static str> {
    match buf.first() {
        None => return Ok(None),
        Some(&t) if t != want => return Err(wrong_type),
        Some(_) => {}
    }
    let [_, a, b, c, ..] = *buf else {
        return Ok(None);
    };
    let len = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
    if len > MAX_HANDSHAKE_LEN {
        return Err("handshake_too_long");
    }
    Ok((buf.len() >= 4 + len).then_some(4 + len))
}

/// Splits an extension block into (type, whole extension bytes) without judging contents, so
/// one malformed extension does not hide the types after it (JA3/JA4 need them all).
fn split_extensions<'a>(mut i: &'a [u8], anomalies: &mut Vec<&'static str>) -> Vec<(u16, &'a [u8])> {
    let mut out = Vec::new();
    while !i.is_empty() {
        let [t0, t1, l0, l1, ..] = *i else {
            anomalies.push("truncated_extension");
            break;
        };
        let end = 4 + usize::from(u16::from_be_bytes([l0, l1]));
        let Some(whole) = i.get(..end) else {
            anomalies.push("truncated_extension");
            break;
        };
        out.push((u16::from_be_bytes([t0, t1]), whole));
        i = i.get(end..).unwrap_or_default();
    }
    out
}

/// SSLv2-framed ClientHello (2-byte record header with the high bit set, RFC 6101 E.2 /
/// RFC 5246 E.2), still sent by OpenSSL 0.9.8 in old camera firmware. Cipher specs are three
/// bytes; those with a zero first byte are TLS suites and feed the fingerprints.
fn parse_sslv2_client_hello(stream: &[u8]) -> Result<Parsed<ClientHello>, &'static str> {
    let (Some(&b0), Some(&b1), Some(&msg_type)) = (stream.first(), stream.get(1), stream.get(2)) else {
        return Ok(Parsed::Incomplete);
    };
    if msg_type != 1 {
        return Err("not_tls");
    }
    if stream.get(3).is_some_and(|&major| major != 3) {
        // A pure SSLv2 (0x0002) hello: nothing TLS-like to fingerprint.
        return Err("sslv2");
    }
    let len = usize::from(b0 & 0x7f) << 8 | usize::from(b1);
    let Some(msg) = stream.get(2..2 + len) else {
        return Ok(Parsed::Incomplete);
    };
    let field = |at: usize| match *msg.get(at..)? {
        [hi, lo, ..] => Some(usize::from(u16::from_be_bytes([hi, lo]))),
        _ => None,
    };
    let (Some(version), Some(spec_len), Some(sid_len), Some(challenge_len)) =
        (field(1), field(3), field(5), field(7))
    else {
        return Err("bad_client_hello");
    };
    let Some(specs) = msg.get(9..9 + spec_len) else {
        return Err("bad_client_hello");
    };
    let mut anomalies = vec!["sslv2_compat_hello"];
    if spec_len % 3 != 0 || 9 + spec_len + sid_len + challenge_len != msg.len() {
        anomalies.push("bad_sslv2_lengths");
    }
    let ciphers = specs
        .chunks_exact(3)
        .filter_map(|s| match *s {
            [0, hi, lo] => Some(u16::from_be_bytes([hi, lo])),
            _ => None,
        })
        .filter(|&c| !is_grease(c))
        .collect();
    // Lengths are 16-bit fields, so the version fits.
    let legacy = u16::try_from(version).unwrap_or_default();
    Ok(Parsed::Complete(HelloFields::default().finish(0x0002, legacy, ciphers, anomalies), 2 + len))
}

/// Inputs of the JA4 (TLS client) fingerprint, GREASE already removed.
struct Ja4Input<'a> {
    version: u16,
    sni: bool,
    ciphers: &'a [u16],
    extensions: &'a [u16],
    alpn: Option<&'a [u8]>,
    signature_algorithms: &'a [u16],
}

/// FoxIO JA4 for TLS over TCP (technical_details/JA4.md): `t`, version, `d`/`i`, cipher and
/// extension counts, ALPN first+last character, then truncated SHA-256 of the sorted cipher
/// list and of the sorted extensions (without SNI and ALPN) `_` signature algorithms.
fn ja4(input: Ja4Input<'_>) -> String {
    let version = match input.version {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    };
    let mut ciphers = input.ciphers.to_vec();
    ciphers.sort_unstable();
    let mut exts: Vec<u16> =
        input.extensions.iter().copied().filter(|&e| e != EXT_SNI && e != EXT_ALPN).collect();
    exts.sort_unstable();
    let cipher_hash = if ciphers.is_empty() { "000000000000".into() } else { sha256_12(&join_hex(&ciphers)) };
    // Empty lists hash to zeros rather than to SHA-256(""), per the specification.
    let ext_hash = if exts.is_empty() {
        "000000000000".into()
    } else if input.signature_algorithms.is_empty() {
        sha256_12(&join_hex(&exts))
    } else {
        sha256_12(&format!("{}_{}", join_hex(&exts), join_hex(input.signature_algorithms)))
    };
    format!(
        "t{}{}{:02}{:02}{}_{}_{}",
        version,
        if input.sni { 'd' } else { 'i' },
        input.ciphers.len().min(99),
        input.extensions.len().min(99),
        ja4_alpn(input.alpn),
        cipher_hash,
        ext_hash
    )
}

/// First and last character of the first ALPN value; `00` if none; if either end is not
/// ASCII alphanumeric, the first and last characters of its hex form instead.
fn ja4_alpn(alpn: Option<&[u8]>) -> String {
    let Some((&first, &last)) = alpn.and_then(|a| Some((a.first()?, a.last()?))) else {
        return "00".into();
    };
    if first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() {
        return format!("{}{}", char::from(first), char::from(last));
    }
    let hex = hex(&[first, last]);
    let mut out = String::new();
    out.extend(hex.chars().next());
    out.extend(hex.chars().last());
    out
}

/// Suricata's quirks for the legacy version field: early TLS 1.3 drafts (0x7f01..0x7f0f) and
/// a bare 0x0304 are reported as "TLS 1.3 draft-<16".
fn suricata_legacy_version(v: u16) -> u16 {
    if (0x7f01..0x7f10).contains(&v) || v == 0x0304 {
        0x7f01
    } else {
        v
    }
}

/// Suricata's `TLSVersionValid`: a version it has a name for, SSLv2 excepted.
fn suricata_version_valid(v: u16) -> bool {
    !matches!(v, 0x0000 | 0x0200) && known_version_name(v).is_some()
}

fn known_version_name(v: u16) -> Option<&'static str> {
    Some(match v {
        0x0000 => "UNDETERMINED",
        0x0200 => "SSLv2",
        0x0300 => "SSLv3",
        0x0301 => "TLSv1",
        0x0302 => "TLS 1.1",
        0x0303 => "TLS 1.2",
        0x0304 => "TLS 1.3",
        0x7f1c => "TLS 1.3 draft-28",
        0x7f1b => "TLS 1.3 draft-27",
        0x7f1a => "TLS 1.3 draft-26",
        0x7f19 => "TLS 1.3 draft-25",
        0x7f18 => "TLS 1.3 draft-24",
        0x7f17 => "TLS 1.3 draft-23",
        0x7f16 => "TLS 1.3 draft-22",
        0x7f15 => "TLS 1.3 draft-21",
        0x7f14 => "TLS 1.3 draft-20",
        0x7f13 => "TLS 1.3 draft-19",
        0x7f12 => "TLS 1.3 draft-18",
        0x7f11 => "TLS 1.3 draft-17",
        0x7f10 => "TLS 1.3 draft-16",
        0x7f01 => "TLS 1.3 draft-<16",
        0xfb14 => "TLS 1.3 draft-20-fb",
        0xfb15 => "TLS 1.3 draft-21-fb",
        0xfb16 => "TLS 1.3 draft-22-fb",
        0xfb17 => "TLS 1.3 draft-23-fb",
        0xfb1a => "TLS 1.3 draft-26-fb",
        _ => return None,
    })
}

/// Suricata's version strings; unknown values are written as `0x%04x` (as Suricata 7 does).
fn version_name(v: u16) -> String {
    known_version_name(v).map_or_else(|| format!("0x{v:04x}"), str::to_owned)
}

/// GREASE (RFC 8701): 0x0a0a, 0x1a1a, … 0xfafa.
fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

fn is_grease_alpn(p: &[u8]) -> bool {
    matches!(*p, [a, b] if is_grease(u16::from_be_bytes([a, b])))
}

fn sni_string(name: &[u8], anomalies: &mut Vec<&'static str>) -> String {
    let name = match name.get(..MAX_SNI_LEN) {
        Some(head) if name.len() > MAX_SNI_LEN => {
            anomalies.push("sni_too_long");
            head
        }
        _ => name,
    };
    if !name.iter().all(|&b| b.is_ascii_alphanumeric() || b"-._*".contains(&b)) {
        anomalies.push("sni_invalid_chars");
    }
    String::from_utf8_lossy(name).into_owned()
}

fn capped<T>(mut v: Vec<T>, cap: usize, anomalies: &mut Vec<&'static str>) -> Vec<T> {
    if v.len() > cap {
        v.truncate(cap);
        push_anomaly(anomalies, "list_truncated");
    }
    v
}

fn join_dec<T: std::fmt::Display>(v: &[T]) -> String {
    let mut out = String::new();
    for (i, x) in v.iter().enumerate() {
        let sep = if i == 0 { "" } else { "-" };
        let _ = write!(out, "{sep}{x}");
    }
    out
}

fn join_hex(v: &[u16]) -> String {
    let mut out = String::new();
    for (i, x) in v.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(out, "{sep}{x:04x}");
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn md5_hex(s: &str) -> String {
    hex(&Md5::digest(s.as_bytes()))
}

fn sha256_12(s: &str) -> String {
    let digest = Sha256::digest(s.as_bytes());
    hex(digest.get(..6).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn complete<T>(r: Result<Parsed<T>, &'static str>) -> (T, usize) {
        match r {
            Ok(Parsed::Complete(t, n)) => (t, n),
            other => panic!("expected a complete parse, got {:?}", other.map(|_| ()).err()),
        }
    }

    // ndpi/443-firefox.pcap, frame 4: Firefox ClientHello to www.ntop.org.
    const FIREFOX_CH: &str = "
        1603010200010001fc0303946bf125d520b848e57d09c375afa7295beb220cd1470e0e81d09c77a6ebb61c20ee594a6f
        44641c6449c6cf9207b65d86e1cceefacb12202eaf7f1b923823d9f50024130113031302c02bc02fcca9cca8c02cc030
        c00ac009c013c01400330039002f0035000a0100018f00000011000f00000c7777772e6e746f702e6f726700170000ff
        01000100000a000e000c001d00170018001901000101000b00020100002300000010000e000c02683208687474702f31
        2e310005000501000000000033006b0069001d002011edefe3e699ce3aaf8ca89fc09be7532014ef953df40763060d94
        0a582ea04b0017004104d38e567337fe58d6d51c550202a5902e4978e5397292d86223056995ff63f225b03f1204612f
        ebc65cee1e0ec5823870893ffe756ac9cba259bfbf1461b4ed73002b0009080304030303020301000d00180016040305
        03060308040805080604010501060102030201002d00020101001c000240010015009200000000000000000000000000
        000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
        000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
        00000000000000000000000000000000000000000000000000000000000000000000000000
    ";

    // ndpi/443-firefox.pcap, frame 6: first record (ServerHello) of the payload.
    const FIREFOX_SH: &str = "
        160303004e0200004a0303af33c2eb5caa28d2e9e87e01e871dbddfcdcbd07b8908fd5d914bdce5ea8e24a00cca80000
        22ff0100010000000000000b0004030001020023000000100005000302683200170000
    ";

    // ndpi/tls_verylong_certificate.pcap, frame 4: ClientHello.
    const VERYLONG_CH: &str = "
        1603010200010001fc03036b791d5fb9caa7693f27ec5a67a6c8dc5e9c2e8ec7fe5fafe6d1961ab85f59fa000086cc14
        cc13cc15c030c02cc028c024c014c00a00a3009f006b006a00390038ff8500c400c3008800870081c032c02ec02ac026
        c00fc005009d003d003500c00084c02fc02bc027c023c013c00900a2009e006700400033003200be00bd00450044c031
        c02dc029c025c00ec004009c003c002f00ba0041c012c00800160013c00dc003000a00ff0100014d0000001a00180000
        1566656f646f747261636b65722e61627573652e6368000b000403000102000a003a0038000e000d0019001c000b000c
        001b00180009000a001a00160017000800060007001400150004000500120013000100020003000f00100011000d0026
        0024060106020603efef050105020503040104020403eeeeeded030103020303020102020203337400000010000b0009
        08687474702f312e31001500a80000000000000000000000000000000000000000000000000000000000000000000000
        000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
        000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
        00000000000000000000000000000000000000000000000000000000000000000000000000
    ";

    // suricata-verify/ja4-tls/input.pcap, frame 4: ClientHello without SNI.
    const JA4_CH: &str = "
        16030100af010000ab0303942d1fef575d770207c29dbe2401ccf05dcde1d2a5869c4a3eee38db551ad9bc000024c02b
        c02f009ec00ac009c013c014c007c011003300320039009c002f0035000a000500040100005eff01000100000a000800
        06001700180019000b00020100002300003374000000100014001208737064792f332e3108687474702f312e31755000
        0000050005010000000000120000000d0012001004010501020104030503020304020202
    ";

    // suricata-verify tls/tls-certs-alert/input.pcap (used by tls-ja3s), frame 4: ClientHello.
    const JA3S_CH: &str = "
        16030100d1010000cd0303ac0c691580d8a6b35cdd78f599c88dc80ef2b31fc4b5c17a6dab8dfe7b371f1d000038c02c
        c030009fcca9cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c
        0035002f00ff0100006c00000010000e00000b6578616d706c652e636f6d000b000403000102000a000a0008001d0017
        00190018337400000010000e000c02683208687474702f312e310016000000170000000d0020001e0601060206030501
        05020503040104020403030103020303020102020203
    ";

    // suricata-verify tls/tls-certs-alert/input.pcap (used by tls-ja3s), frame 6: first record (ServerHello).
    const JA3S_SH: &str = "
        160303006a020000660303a70b3995959972c85d337ef3e35e2000bba719487a7e8d16444f574e47524401208f78c6fd
        f03f3776095b67a98d627431cb0fc50a0c8551dd2cc9c729e7348c2cc02f00001eff0100010000000000000b00040300
        010200100005000302683200170000
    ";

    // suricata-verify tls/tls13-draft22/tls13_draft22.pcap, frame 4: ClientHello.
    const DRAFT22_CH: &str = "
        1603030076010000720303fe2ba030a33f625d968be29207624886bcf549e30655ced6e8cef7fc01ad2f941057abcab1
        619737b457a116f7f2e1db65000413011303010000350000000e000c0000096c6f63616c686f7374002b0003027f1600
        0d000a00080804040304010201000a000400020017002800020000
    ";

    // suricata-verify tls/tls13-draft22/tls13_draft22.pcap, frame 9: first record (ServerHello).
    const DRAFT22_SH: &str = "
        160303008b020000870303d105f1e246fb1bb0462adb3aa4fddf63eb215b00441dd7e94343a1479311b6511057abcab1
        619737b457a116f7f2e1db65130100004f0028004500170041048f41bf0d37d45b514a371fbcf665d63777df7a9cb997
        4bfff7434196859070bd5df74e71483566e8c086977271f1e82f1b60d4e10fde5981a6cd6b9e52bbf0be002b00027f16
    ";

    // suricata-verify tls/tls13-draft28/tls13_draft28.pcap, frame 4: ClientHello.
    const DRAFT28_CH1: &str = "
        160301012401000120030339a503494c046e85568afb480faeb91fb861a479b4f9ef85dfa60844a0b86f6700003a1302
        130313011304c02ccca9c0adc00ac02bc0acc009c030cca8c014c02fc013009dc09d0035009cc09c002f009fccaac09f
        0039009ec09e0033010000bd000500050100000000000a000400020017000b00020100000d0020001e04010809080404
        0308070501080a080505030601080b08060603020102030016000000170000002300000033004700450017004104519c
        7aa7e7b5163a55d3d116c293f717b123909e9bda1bf256972c3ddb2b730db0016c13ae75255b38d1c7591e3611381e20
        e614ee9cba9402dae5ea6159e749002b0009087f1c030303020301ff010001000000000e000c0000096c6f63616c686f
        7374002d0003020100
    ";

    // suricata-verify tls/tls13-draft28/tls13_draft28.pcap, frame 20: ClientHello (resumption,
    // pre_shared_key).
    const DRAFT28_CH2: &str = "
        16030102330100022f03035a36c4fd9f16ab873e139f36f8160545aad163893af5edd53a1e7d110333b1bd00003a1302
        130313011304c02ccca9c0adc00ac02bc0acc009c030cca8c014c02fc013009dc09d0035009cc09c002f009fccaac09f
        0039009ec09e0033010001cc000500050100000000000a000400020017000b00020100000d0020001e04010809080404
        0308070501080a080505030601080b080606030201020300160000001700000023000000330047004500170041042e67
        ad8e4c3cce2dcff78badf46bce98ae2e24a59c8ce26edf5d070b4b378960472f9b37132a412ae7fa323255deae128eb1
        5de7dfa0abcafedad3261169aa25002b0009087f1c030303020301ff010001000000000e000c0000096c6f63616c686f
        7374002d00030201000029010b00d600d06a4b2e9ffe2c533aa49e0d648cd14855812df973b6d479f7eaf686042e4295
        ee69a70411be2f74e123e91490e23b89d5898ce73d2df9abbe1691951f3a587a11d6c9d1e79975b9ed90e2e5c91256b5
        9445994beaca27545e99738138c8bb7f376c6ed503d281147aba2490ad52350dcdb0687ac39c33f1af41a9177dfcd2d3
        7806250f8a884c463e6380c3218be6eeb5cfc1a7fe7792b20d45185cb8936d3c15fdddfa4f93b0219047642dd851db70
        cc9bb8fa281415404423c88ffdba3286784439de395f645be84902759cf77bfd558f80a7e600313086c0d32f51f5bbd7
        f3a8479a69e8907d8eb14aac6bcc8c6b8df2361c0b68ebb7ef5edc7075a35f1ac8fb61dd286e9ebb
    ";

    // suricata-verify tls/tls13-draft28/tls13_draft28.pcap, frame 6: first record (ServerHello).
    const DRAFT28_SH: &str = "
        160303007b020000770303350f451d11f668e61c02312004d0c3247e9783528d08cad85094264055feaa980013020000
        4f002b00027f1c003300450017004104dea2555b0aaedc4694cb937c58edab62943d9015e4daf7085a87a10ed998e9d2
        f9bbc45fbc30915a0fea0a50c3d2e1e43e04fd3bde818714d01c085e1ed7d040
    ";

    // camera/shf_dlink-cam.pcap, frame 44: D-Link DCS-8000LH camera ClientHello (TLS 1.0).
    const DLINK_CH_TLS10: &str = "
        160301007b0100007703019e5c3cc4a4c0e9a11d3cf5a1b2cf1a2c099f9f68906060cded154584aa43dde60000200039
        00380037003600350033003200310030002f001600130010000d000a00ff0100002e00000021001f00001c6d702d6575
        2d64636464612e6175746f2e6d79646c696e6b2e636f6d00230000000f000101
    ";

    // camera/shf_dlink-cam.pcap, frame 96: D-Link DCS-8000LH camera ClientHello (TLS 1.2).
    const DLINK_CH_TLS12: &str = "
        16030100ca010000c603035cd6f0cbde69ead1a61b25aa2fc4f5324ffd0e610ca9436c528067bb50597b9100004800a5
        00a300a1009f006b006a006900680039003800370036009d003d003500a400a200a0009e00670040003f003e00330032
        00310030009c003c002f001600130010000d000a00ff010000550000001f001d00001a6d702d65752d6677642e617574
        6f2e6d79646c696e6b2e636f6d000d001600140601060205010502040104020301030202010202000f00010133740000
        0010000b000908687474702f312e31
    ";

    // camera/iotsentinel_D-LinkCam_Setup-A-1-STA.pcap, frame 192: SSLv2-compatible ClientHello.
    const DLINK_SSLV2_CH: &str = "
        807d01030100540000002000003900003800003500001600001300000a0700c000003300003200002f00000705008003
        00800000050000040100800000150000120000090600400000140000110000080000060400800000030200800000ff69
        cd765d385bf0b5592a6218ad816319a5643a96004a65dfe1548bd96be5f1d8
    ";

    // suricata-verify tls/tls-client-hello-frag-01/dump_mtu300.pcap, frames 4, 5 and 6: one
    // 512-byte ClientHello record split over three TCP segments.
    const FRAG_SEGMENTS: [&str; 3] = [
        "
        1603010200010001fc0303dbd972da371bd60ec742cc3b216c62bf9c83df9eecf4e1136b46f6e7f5beb3d10000a0c030
        c02cc028c024c014c00a00a500a300a1009f006b006a0069006800390038003700360088008700860085c032c02ec02a
        c026c00fc005009d003d00350084c02fc02bc027c023c013c00900a400a200a0009e00670040003f003e003300320031
        0030009a0099009800970045004400430042c031c02dc029c025c00ec004009c003c002f00960041c012c00800160013
        0010000dc00dc003000a000700ff0100013300000013001100000e7777772e676f6f676c652e636f6d000b0004030001
        02000a000a000800
        ",
        "
        17001900180016000d0020001e060106020603050105020503040104020403030103020303020102020203000f000101
        337400000010000e000c02683208687474702f312e31001500c300000000000000000000000000000000000000000000
        000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
        000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
        000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
        0000000000000000
        ",
        "
        000000000000000000000000000000000000000000
        ",
    ];

    fn client(hex: &str) -> (ClientHello, usize) {
        complete(parse_client_hello(&unhex(hex)))
    }

    fn server(hex: &str) -> (ServerHello, usize) {
        complete(parse_server_hello(&unhex(hex)))
    }

    #[test]
    fn firefox_client_hello_matches_ndpi() {
        // 443-firefox.pcap.out: SNI www.ntop.org, ALPNs h2;http/1.1, supported versions
        // TLSv1.3..TLSv1, JA3C b20b44b1…, JA4 t13d1814h2_29a2cd9e9f10_d267a5f792d4.
        let (ch, used) = client(FIREFOX_CH);
        assert_eq!(used, 517);
        assert_eq!(ch.record_version, 0x0301);
        assert_eq!(ch.version, "TLS 1.3");
        assert_eq!(ch.sni.as_deref(), Some("www.ntop.org"));
        assert_eq!(ch.alpn, ["h2", "http/1.1"]);
        assert_eq!(ch.supported_versions, [0x0304, 0x0303, 0x0302, 0x0301]);
        assert_eq!(ch.cipher_suites.len(), 18);
        assert_eq!(ch.ja3.hash, "b20b44b18b853ef29ab773e921b03422");
        assert_eq!(ch.ja4, "t13d1814h2_29a2cd9e9f10_d267a5f792d4");
        assert!(ch.anomalies.is_empty(), "{:?}", ch.anomalies);
    }

    #[test]
    fn firefox_server_hello_ja3s_matches_ndpi() {
        // 443-firefox.pcap.out: JA3S 3653a20186a5b490426131a611e01992, cipher
        // TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, TLSv1.2.
        let (sh, used) = server(FIREFOX_SH);
        assert_eq!(used, 83);
        assert_eq!(sh.version, "TLS 1.2");
        assert_eq!(sh.cipher_suite, 0xcca8);
        assert_eq!(sh.selected_version, None);
        assert_eq!(sh.ja3s.string, "771,52392,65281-0-11-35-16-23");
        assert_eq!(sh.ja3s.hash, "3653a20186a5b490426131a611e01992");
    }

    #[test]
    fn verylong_ja3_matches_ndpi_and_ja4_uses_foxio_alpn_rule() {
        // tls_verylong_certificate.pcap.out: JA3C 2a26b1a6…, JA4 t12d6707ht_2955a3196ffa_c83f907a73d3.
        // nDPI takes the first two ALPN characters ("ht" for http/1.1); the FoxIO definition
        // (and Suricata) take the first and last ("h1"). The rest of the JA4 agrees.
        let (ch, _) = client(VERYLONG_CH);
        assert_eq!(ch.sni.as_deref(), Some("feodotracker.abuse.ch"));
        assert_eq!(ch.alpn, ["http/1.1"]);
        assert_eq!(ch.version, "TLS 1.2");
        assert_eq!(ch.ja3.hash, "2a26b1a62e40d25d4de3babc9d532f30");
        assert_eq!(ch.ja4, "t12d6707h1_2955a3196ffa_c83f907a73d3");
    }

    #[test]
    fn ja4_matches_suricata_verify() {
        // ja4-tls/test.yaml: tls.ja4 t12i1810s1_27d4652c4487_06a4338d0495 (no SNI, spdy/3.1).
        let (ch, _) = client(JA4_CH);
        assert_eq!(ch.sni, None);
        assert_eq!(ch.alpn, ["spdy/3.1", "http/1.1"]);
        assert_eq!(ch.ja4, "t12i1810s1_27d4652c4487_06a4338d0495");
        // tshark 4.0 computes the same JA3 for this hello.
        assert_eq!(ch.ja3.hash, "308b0bd904abbef5e0034a1ff7a78920");
    }

    #[test]
    fn ja3s_matches_suricata_verify() {
        // tls/tls-ja3s/test.yaml: tls.ja3s.string 771,49199,65281-0-11-16-23, hash 5d79edf6….
        let (sh, _) = server(JA3S_SH);
        assert_eq!(sh.ja3s.string, "771,49199,65281-0-11-16-23");
        assert_eq!(sh.ja3s.hash, "5d79edf64e03689ff559a54e9d9487bc");
        assert_eq!(sh.cipher_suite, 49199);
        assert_eq!(sh.version, "TLS 1.2");
        let (ch, _) = client(JA3S_CH);
        assert_eq!(ch.version, "TLS 1.2");
    }

    #[test]
    fn tls13_draft22_matches_suricata_verify() {
        // tls/tls13-draft22/test.yaml: sni localhost, version "TLS 1.3 draft-22",
        // ja3 771,4865-4867,0-43-13-10-40,23, / 786468211b4d23f9b725987b0de9d090.
        let (ch, _) = client(DRAFT22_CH);
        assert_eq!(ch.sni.as_deref(), Some("localhost"));
        assert_eq!(ch.version, "TLS 1.3 draft-22");
        assert_eq!(ch.supported_versions, [0x7f16]);
        assert_eq!(ch.ja3.string, "771,4865-4867,0-43-13-10-40,23,");
        assert_eq!(ch.ja3.hash, "786468211b4d23f9b725987b0de9d090");
        // JA4 has no code for drafts.
        assert!(ch.ja4.starts_with("t00d0205"), "{}", ch.ja4);
        let (sh, _) = server(DRAFT22_SH);
        assert_eq!(sh.selected_version, Some(0x7f16));
        assert_eq!(sh.version, "TLS 1.3 draft-22");
    }

    #[test]
    fn tls13_draft28_matches_suricata_verify() {
        // tls/tls13-draft28/test.yaml: two sessions, version "TLS 1.3 draft-28", ja3 43202faa…
        // for the first and d00857e0… for the resumed one (extra pre_shared_key, 41).
        // tls-duplicate-hello/test.yaml expects the first string too.
        let (first, _) = client(DRAFT28_CH1);
        let (second, _) = client(DRAFT28_CH2);
        let ciphers = "4866-4867-4865-4868-49196-52393-49325-49162-49195-49324-49161-49200-52392-49172\
                       -49199-49171-157-49309-53-156-49308-47-159-52394-49311-57-158-49310-51";
        assert_eq!(first.ja3.string, format!("771,{ciphers},5-10-11-13-22-23-35-51-43-65281-0-45,23,0"));
        assert_eq!(first.ja3.hash, "43202faa1c8c1760d6f7f4bd9adde4ab");
        assert_eq!(second.ja3.string, format!("771,{ciphers},5-10-11-13-22-23-35-51-43-65281-0-45-41,23,0"));
        assert_eq!(second.ja3.hash, "d00857e0c8e7a7f35e446508c6233460");
        for ch in [&first, &second] {
            assert_eq!(ch.sni.as_deref(), Some("localhost"));
            assert_eq!(ch.version, "TLS 1.3 draft-28");
        }
        let (sh, _) = server(DRAFT28_SH);
        assert_eq!(sh.selected_version, Some(0x7f1c));
        assert_eq!(sh.version, "TLS 1.3 draft-28");
    }

    #[test]
    fn dlink_camera_hellos_match_tshark_ja3() {
        // JA3 strings and hashes as computed by tshark 4.0 for the same frames.
        let (old, _) = client(DLINK_CH_TLS10);
        assert_eq!(old.sni.as_deref(), Some("mp-eu-dcdda.auto.mydlink.com"));
        assert_eq!(old.version, "TLSv1");
        assert_eq!(old.ja3.string, "769,57-56-55-54-53-51-50-49-48-47-22-19-16-13-10-255,0-35-15,,");
        assert_eq!(old.ja3.hash, "2e26d027735ce2a02cc91112db4349e2");
        assert!(old.ja4.starts_with("t10d1603"), "{}", old.ja4);
        let (new, _) = client(DLINK_CH_TLS12);
        assert_eq!(new.sni.as_deref(), Some("mp-eu-fwd.auto.mydlink.com"));
        assert_eq!(new.alpn, ["http/1.1"]);
        assert_eq!(new.extensions, [0, 13, 15, 13172, 16]);
        assert_eq!(new.signature_algorithms.len(), 10);
        assert_eq!(new.ja3.hash, "d13d0a99e60fa8f8b55fba99125ad539");
        assert!(new.ja4.starts_with("t12d3605h1_"), "{}", new.ja4);
    }

    #[test]
    fn sslv2_compatible_hello_from_camera() {
        let (ch, used) = client(DLINK_SSLV2_CH);
        assert_eq!(used, 127);
        assert_eq!(ch.record_version, 0x0002);
        assert_eq!(ch.version, "TLSv1");
        assert_eq!(ch.anomalies, ["sslv2_compat_hello"]);
        // 28 cipher specs, 7 of them SSLv2-only.
        assert_eq!(ch.cipher_suites.len(), 21);
        assert_eq!(ch.cipher_suites.first(), Some(&0x0039));
        assert_eq!(ch.cipher_suites.last(), Some(&0x00ff));
        assert!(ch.extensions.is_empty() && ch.sni.is_none());
        assert!(ch.ja3.string.starts_with("769,57-56-53-22-19-10-51-50-47-7-5-4-21-18-9-20-17-8-6-3-255,"));
        let bytes = unhex(DLINK_SSLV2_CH);
        for n in 0..bytes.len() {
            assert_eq!(parse_client_hello(&bytes[..n]), Ok(Parsed::Incomplete), "prefix {n}");
        }
    }

    fn frag_stream() -> Vec<Vec<u8>> {
        FRAG_SEGMENTS.iter().map(|s| unhex(s)).collect()
    }

    #[test]
    fn client_hello_over_tcp_segments() {
        // tls/tls-client-hello-frag-01/test.yaml: tls.sni www.google.com.
        let segments = frag_stream();
        let mut stream = Vec::new();
        for (i, seg) in segments.iter().enumerate() {
            stream.extend_from_slice(seg);
            let parsed = parse_client_hello(&stream).unwrap();
            if i + 1 < segments.len() {
                assert_eq!(parsed, Parsed::Incomplete);
            } else {
                let Parsed::Complete(ch, used) = parsed else { panic!("incomplete") };
                assert_eq!(used, 517);
                assert_eq!(ch.sni.as_deref(), Some("www.google.com"));
                assert_eq!(ch.cipher_suites.len(), 80);
                assert_eq!(ch.alpn, ["h2", "http/1.1"]);
            }
        }
    }

    /// Re-frames the handshake message of a one-record hello into records of `size` bytes.
    fn reframe(record: &[u8], size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in record[5..].chunks(size) {
            out.extend_from_slice(&[0x16, record[1], record[2]]);
            out.extend_from_slice(&u16::try_from(chunk.len()).unwrap().to_be_bytes());
            out.extend_from_slice(chunk);
        }
        out
    }

    #[test]
    fn client_hello_over_records_and_segments() {
        let record = unhex(FIREFOX_CH);
        let (whole, _) = client(FIREFOX_CH);
        for size in [1, 2, 3, 4, 5, 100, 511] {
            let stream = reframe(&record, size);
            for n in 0..stream.len() {
                assert_eq!(
                    parse_client_hello(&stream[..n]),
                    Ok(Parsed::Incomplete),
                    "size {size} prefix {n}"
                );
            }
            let mut with_next = stream.clone();
            with_next.extend_from_slice(&[0x14, 0x03, 0x03, 0x00, 0x01, 0x01]);
            let (ch, used) = complete(parse_client_hello(&with_next));
            assert_eq!(used, stream.len());
            assert_eq!(ch.anomalies, ["fragmented_handshake"]);
            assert_eq!(ClientHello { anomalies: vec![], ..ch }, whole);
        }
    }

    #[test]
    fn hello_followed_by_more_data_consumes_one_record() {
        let mut stream = unhex(FIREFOX_CH);
        stream.extend_from_slice(&unhex(JA4_CH));
        let (ch, used) = client(&hex(&stream));
        assert_eq!((used, ch.sni.as_deref()), (517, Some("www.ntop.org")));
        let mut stream = unhex(JA3S_SH);
        stream.extend_from_slice(&[0x16, 0x03, 0x03, 0x10, 0x00, 0x0b]);
        assert_eq!(complete(parse_server_hello(&stream)).1, 111);
    }

    #[test]
    fn rejects_other_protocols_early() {
        for junk in [&b"GET / HTTP/1.1\r\n"[..], b"SSH-2.0-OpenSSH_8.9\r\n", b"\x17\x03\x03\x00\x10", b"RTSP"]
        {
            assert_eq!(parse_client_hello(junk), Err("not_tls"));
            assert_eq!(parse_server_hello(junk), Err("not_tls"));
        }
        assert_eq!(parse_client_hello(b"\x16\x05"), Err("not_tls"));
        assert_eq!(parse_client_hello(b"\x16\x03\x09"), Err("not_tls"));
        for prefix in [&b""[..], b"\x16", b"\x16\x03", b"\x16\x03\x01\x02", b"\x16\x03\x01\x02\x00"] {
            assert_eq!(parse_client_hello(prefix), Ok(Parsed::Incomplete));
        }
        assert_eq!(parse_client_hello(b"\x16\x03\x01\x00\x04\x02"), Err("not_client_hello"));
        assert_eq!(parse_server_hello(&unhex(FIREFOX_CH)), Err("not_server_hello"));
        assert_eq!(parse_client_hello(&unhex(FIREFOX_SH)), Err("not_client_hello"));
        assert_eq!(parse_client_hello(b"\x16\x03\x01\x00\x04\x01\xff\xff\xff"), Err("handshake_too_long"));
        assert_eq!(parse_client_hello(b"\x16\x03\x01\x48\x00"), Err("record_too_long"));
        // Half a hello, then application data.
        let mut stream = reframe(&unhex(FIREFOX_CH), 300);
        stream.truncate(305);
        stream.extend_from_slice(b"\x17\x03\x03\x00\x01\x00");
        assert_eq!(parse_client_hello(&stream), Err("interleaved_record"));
        assert_eq!(parse_client_hello(b"\x80\x2e\x01\x00\x02"), Err("sslv2"));
    }

    /// A ClientHello record built around real cipher and extension values, for the cases the
    /// captures do not cover (GREASE, malformed and duplicate extensions).
    fn synthetic_hello(ciphers: &[u16], extensions: &[u8]) -> Vec<u8> {
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[0x11; 32]);
        body.push(0);
        body.extend_from_slice(&u16::try_from(ciphers.len() * 2).unwrap().to_be_bytes());
        ciphers.iter().for_each(|c| body.extend_from_slice(&c.to_be_bytes()));
        body.extend_from_slice(&[1, 0]);
        body.extend_from_slice(&u16::try_from(extensions.len()).unwrap().to_be_bytes());
        body.extend_from_slice(extensions);
        let mut hs = vec![1, 0];
        hs.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
        hs.extend_from_slice(&body);
        let mut record = vec![0x16, 0x03, 0x01];
        record.extend_from_slice(&u16::try_from(hs.len()).unwrap().to_be_bytes());
        record.extend_from_slice(&hs);
        record
    }

    #[test]
    fn grease_is_removed_everywhere() {
        let exts = unhex(
            "2a2a 0000
             0000 000e 000c 00 0009 6c6f63616c686f7374
             000a 0008 0006 3a3a 001d 0017
             0010 0011 000f 02 5a5a 02 6832 08 687474702f312e31
             000d 0006 0004 1a1a 0403
             002b 0007 06 caca 0304 0303
             fafa 0001 00",
        );
        let (ch, _) = client(&hex(&synthetic_hello(&[0x0a0a, 0x1301, 0xc02f], &exts)));
        assert_eq!(ch.cipher_suites, [0x1301, 0xc02f]);
        assert_eq!(ch.extensions, [0x0000, 0x000a, 0x0010, 0x000d, 0x002b]);
        assert_eq!(ch.groups, [0x001d, 0x0017]);
        assert_eq!(ch.alpn, ["h2", "http/1.1"]);
        assert_eq!(ch.signature_algorithms, [0x0403]);
        assert_eq!(ch.supported_versions, [0x0304, 0x0303]);
        assert_eq!(ch.version, "TLS 1.3");
        assert_eq!(ch.ja3.string, "771,4865-49199,0-10-16-13-43,29-23,");
        assert!(ch.ja4.starts_with("t13d0205h2_"), "{}", ch.ja4);
        assert!(ch.anomalies.is_empty(), "{:?}", ch.anomalies);
    }

    #[test]
    fn malformed_extensions_are_tolerated() {
        // A broken supported_groups, a duplicate SNI, then a truncated last extension: the types
        // after the broken one still count for JA3.
        let exts = unhex(
            "000a 0003 ffff ff
             0000 0008 0006 00 0003 612e62
             0000 0008 0006 00 0003 632e64
             0017 0000
             0023 0009 00",
        );
        let (ch, _) = client(&hex(&synthetic_hello(&[0x002f], &exts)));
        assert_eq!(ch.extensions, [0x000a, 0x0000, 0x0000, 0x0017]);
        assert_eq!(ch.sni.as_deref(), Some("a.b"));
        assert_eq!(ch.ja3.string, "771,47,10-0-0-23,,");
        // Framing is checked before contents, so the truncation is reported first.
        assert_eq!(ch.anomalies, ["truncated_extension", "malformed_extension", "duplicate_extension"]);
    }

    #[test]
    fn ja4_follows_the_specification_examples() {
        // technical_details/JA4.md: ciphers, extensions and signature algorithms of the example.
        let ciphers = [
            0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c,
            0x009d, 0x002f, 0x0035,
        ];
        let extensions = [
            0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023, 0x0012, 0x002b,
            0xff01, 0x000b, 0x000a, 0x0015,
        ];
        const SIGS: [u16; 8] = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601];
        let input = |sigs: &'static [u16], alpn: Option<&'static [u8]>| Ja4Input {
            version: 0x0304,
            sni: true,
            ciphers: &ciphers,
            extensions: &extensions,
            alpn,
            signature_algorithms: sigs,
        };
        assert_eq!(ja4(input(&SIGS, Some(b"h2"))), "t13d1516h2_8daaf6152771_e5627efa2ab1");
        assert_eq!(ja4(input(&[], Some(b"h2"))), "t13d1516h2_8daaf6152771_6d807ffa2a79");
        let empty = Ja4Input {
            version: 0x0303,
            sni: false,
            ciphers: &[],
            extensions: &[],
            alpn: None,
            signature_algorithms: &[],
        };
        assert_eq!(ja4(empty), "t12i000000_000000000000_000000000000");
        // ALPN rules: single character, and the hex rule for non-alphanumeric ends.
        assert_eq!(ja4_alpn(Some(b"h")), "hh");
        assert_eq!(ja4_alpn(Some(b"")), "00");
        assert_eq!(ja4_alpn(Some(&[0xab])), "ab");
        assert_eq!(ja4_alpn(Some(&[0xab, 0xcd])), "ad");
        assert_eq!(ja4_alpn(Some(&[0x30, 0xab])), "3b");
        assert_eq!(ja4_alpn(Some(&[0x30, 0x31, 0xab, 0xcd])), "3d");
        assert_eq!(ja4_alpn(Some(&[0x30, 0xab, 0xcd, 0x31])), "01");
    }

    #[test]
    fn version_names_follow_suricata() {
        assert_eq!(version_name(0x0301), "TLSv1");
        assert_eq!(version_name(0x0302), "TLS 1.1");
        assert_eq!(version_name(0x0300), "SSLv3");
        assert_eq!(version_name(suricata_legacy_version(0x0304)), "TLS 1.3 draft-<16");
        assert_eq!(version_name(0x1234), "0x1234");
        assert!(is_grease(0x0a0a) && is_grease(0xfafa) && !is_grease(0x0a1a) && !is_grease(0x1301));
    }

    #[test]
    fn serializes_with_eve_field_names() {
        let (ch, _) = client(FIREFOX_CH);
        let json = serde_json::to_value(&ch).unwrap();
        assert_eq!(json["sni"], "www.ntop.org");
        assert_eq!(json["version"], "TLS 1.3");
        assert_eq!(json["ja3"]["hash"], "b20b44b18b853ef29ab773e921b03422");
        assert_eq!(json["ja4"], "t13d1814h2_29a2cd9e9f10_d267a5f792d4");
        assert!(json.get("anomalies").is_none());
        let (sh, _) = server(JA3S_SH);
        let json = serde_json::to_value(&sh).unwrap();
        assert_eq!(json["ja3s"]["string"], "771,49199,65281-0-11-16-23");
    }

    /// Besides not panicking: a complete answer depends only on the bytes it consumed (the
    /// invariant the fuzz target checks too).
    fn check(v: &[u8]) {
        if let Ok(Parsed::Complete(hello, used)) = parse_client_hello(v) {
            assert_eq!(parse_client_hello(&v[..used]), Ok(Parsed::Complete(hello, used)));
        }
        if let Ok(Parsed::Complete(hello, used)) = parse_server_hello(v) {
            assert_eq!(parse_server_hello(&v[..used]), Ok(Parsed::Complete(hello, used)));
        }
    }

    #[test]
    fn hostile_variants_never_panic() {
        let mut samples =
            vec![unhex(FIREFOX_CH), unhex(JA3S_SH), unhex(DLINK_SSLV2_CH), reframe(&unhex(DRAFT22_CH), 7)];
        samples.push(frag_stream().concat());
        crate::hostile::each_variant(&samples, check);
    }
}
