//! Vendor-aware firmware versions (Hikvision, Dahua, plain dotted), Hikvision `digicap.dav`
//! image headers, and versions in firmware file names.
//!
//! Sources (CAMERA-PROTOCOLS.md):
//! - version forms: SADP `SoftwareVersion` (`V5.2.6build 180726`), ISAPI `firmwareVersion` +
//!   `firmwareReleasedDate` (`V5.5.0` + `build 250115`), the web UI's `V4.0.1build171121`
//!   (mageni `gb_hikvision_ip_camera_detect.nasl`), Dahua magicBox
//!   `2.800.0000000.29.R,build:2021-08-30` and `System Version: 2.400.0000000.16.R, Build Date:
//!   2017-08-31` (mcw0/Tools); the real values in `tests/data/corpus/hikvision-isapi/` drive the
//!   ordering tests.
//! - `digicap.dav`: MatrixEditor/hiktools `hiktools/fmod/digicap.py` (XOR key, field order,
//!   file index at 0x40 in 44-byte entries), cross-checked with two other public unpackers
//!   found with the search tools (an EZVIZ repack script, and a parser that dispatches on the
//!   magic). Where they disagree, see [`parse_digicap_header`]. No real image is in the corpus:
//!   tests XOR-encode a header they lay out themselves.
//! - file names: hiktools `gists/firmwarelist.json` (Hikvision Europe portal listing).

use std::cmp::Ordering;
use std::fmt;

use serde::Serialize;

/// Raw version strings are kept up to this many bytes.
const MAX_RAW: usize = 256;
/// Numeric components of a version (Dahua uses five: `2.800.0000000.29` + letter).
const MAX_COMPONENTS: usize = 8;
/// Digits per numeric component (fits a u64).
const MAX_DIGITS: usize = 18;

/// A firmware version as a device reports it.
///
/// Parsed forms: an optional `V`/`v`, dot-separated numbers, an optional letter suffix
/// (Dahua's `.R` release / `.T` test), then optionally a build date: `build 170725`,
/// `build170725`, `Build180706`, `,build:2018-11-29`, `, Build Date: 2021-08-30`, or a bare
/// `yymmdd` / `yyyymmdd` after a separator. Six-digit dates are read as 20yy (Hikvision builds
/// are all from this century). Anything else is kept verbatim and is not comparable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Version {
    raw: String,
    numbers: Vec<u64>,
    suffix: Option<String>,
    /// Build date as yyyymmdd.
    build: Option<u32>,
    known: bool,
}

impl Version {
    /// Parses a version string; never fails (see [`Version::is_known`]).
    pub fn parse(s: &str) -> Version {
        let raw = truncate(s.trim(), MAX_RAW).to_string();
        match parse_parts(&raw) {
            Some((numbers, suffix, build)) => Version { raw, numbers, suffix, build, known: true },
            None => Version { raw, numbers: Vec::new(), suffix: None, build: None, known: false },
        }
    }

    /// Joins ISAPI's split fields: `firmwareVersion` ("V5.5.0") and `firmwareReleasedDate`
    /// ("build 250115", or a bare "250115" as in `bootReleasedDate`).
    pub fn from_parts(version: &str, build: Option<&str>) -> Version {
        match build.map(str::trim).filter(|b| !b.is_empty()) {
            Some(b) => Version::parse(&format!("{} {}", version.trim(), b)),
            None => Version::parse(version),
        }
    }

    /// Orders two versions: numeric components numerically (missing ones count as 0, so
    /// `5.7` equals `5.7.0`), then the build date. When the numbers are equal and only one side
    /// has a build date, or the letter suffixes differ, the answer is `None`: the strings do not
    /// say which is newer. An unparseable version compares `Equal` to an identical raw string
    /// and `None` to anything else. This is a consistent partial order (antisymmetric and
    /// transitive), tested over the real version strings of the corpus.
    pub fn compare(&self, other: &Version) -> Option<Ordering> {
        if !self.known || !other.known {
            return (!self.known && !other.known && self.raw == other.raw).then_some(Ordering::Equal);
        }
        let len = self.numbers.len().max(other.numbers.len());
        for i in 0..len {
            let a = self.numbers.get(i).copied().unwrap_or(0);
            let b = other.numbers.get(i).copied().unwrap_or(0);
            match a.cmp(&b) {
                Ordering::Equal => {}
                unequal => return Some(unequal),
            }
        }
        match (self.build, other.build) {
            (Some(a), Some(b)) if a != b => return Some(a.cmp(&b)),
            (Some(_), None) | (None, Some(_)) => return None,
            _ => {}
        }
        (self.suffix == other.suffix).then_some(Ordering::Equal)
    }

    /// The string as given (trimmed, at most 256 bytes).
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Whether the string was understood (otherwise only `raw` is meaningful).
    pub fn is_known(&self) -> bool {
        self.known
    }

    /// Numeric components (empty when not known).
    pub fn numbers(&self) -> &[u64] {
        &self.numbers
    }

    /// Build date as yyyymmdd, when the string carried one.
    pub fn build_date(&self) -> Option<u32> {
        self.build
    }

    /// Letter suffix, e.g. Dahua's "R".
    pub fn suffix(&self) -> Option<&str> {
        self.suffix.as_deref()
    }
}

/// Canonical form: `5.5.0 build 2017-07-25`, `2.800.0.29.R build 2021-08-30`, `5.7.18`; the
/// raw string when not known. Parsing the canonical form gives an `Equal` version.
impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.known {
            return f.write_str(&self.raw);
        }
        for (i, n) in self.numbers.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{n}")?;
        }
        if let Some(s) = &self.suffix {
            write!(f, ".{s}")?;
        }
        if let Some(b) = self.build {
            write!(f, " build {:04}-{:02}-{:02}", b / 10000, b / 100 % 100, b % 100)?;
        }
        Ok(())
    }
}

type Parts = (Vec<u64>, Option<String>, Option<u32>);

fn parse_parts(s: &str) -> Option<Parts> {
    let s = s.strip_prefix(['V', 'v']).unwrap_or(s).trim_start();
    let (numbers, rest) = parse_numbers(s)?;
    // Letter suffix: ".R" / ".T" (Dahua), only when followed by a separator or the end.
    let (suffix, rest) = match rest.strip_prefix('.') {
        Some(after) => {
            let len = after.bytes().take_while(u8::is_ascii_alphabetic).count();
            let (letters, tail) = after.split_at_checked(len)?;
            let ends = tail.is_empty() || tail.starts_with([' ', ',', '_', ';', '\t']);
            if letters.is_empty() || letters.len() > 8 || !ends {
                return None;
            }
            (Some(letters.to_string()), tail)
        }
        None => (None, rest),
    };
    let rest = rest.trim_start_matches([' ', ',', '_', ';', '\t', '-']);
    if rest.is_empty() {
        return Some((numbers, suffix, None));
    }
    let build = parse_build(rest)?;
    Some((numbers, suffix, Some(build)))
}

/// `5.5.0`, `2.800.0000000.29`: digits separated by single dots.
fn parse_numbers(s: &str) -> Option<(Vec<u64>, &str)> {
    let mut numbers = Vec::new();
    let mut rest = s;
    loop {
        let len = rest.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 || len > MAX_DIGITS || numbers.len() >= MAX_COMPONENTS {
            return None;
        }
        let (digits, tail) = rest.split_at_checked(len)?;
        numbers.push(digits.parse().ok()?);
        rest = tail;
        match rest.strip_prefix('.') {
            Some(after) if after.starts_with(|c: char| c.is_ascii_digit()) => rest = after,
            _ => return Some((numbers, rest)),
        }
    }
}

/// `build 170725`, `build171121`, `Build180706`, `build:2018-11-29`, `Build Date: 2021-08-30`,
/// or a bare date; nothing may follow the date.
fn parse_build(s: &str) -> Option<u32> {
    let mut rest = s;
    if rest.len() >= 5 && rest.get(..5).is_some_and(|w| w.eq_ignore_ascii_case("build")) {
        rest = rest.get(5..)?.trim_start();
        if rest.len() >= 4 && rest.get(..4).is_some_and(|w| w.eq_ignore_ascii_case("date")) {
            rest = rest.get(4..)?;
        }
        rest = rest.trim_start_matches([' ', ':', '\t']);
    }
    let date = rest.trim_end_matches([' ', '\t', ')']);
    parse_date(date)
}

/// `yymmdd`, `yyyymmdd`, `yyyy-mm-dd` (also with `/` or `.`) → yyyymmdd, checked.
fn parse_date(s: &str) -> Option<u32> {
    let all_digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (y, m, d): (u32, u32, u32) = if all_digits && s.len() == 6 {
        (2000 + s.get(..2)?.parse::<u32>().ok()?, s.get(2..4)?.parse().ok()?, s.get(4..6)?.parse().ok()?)
    } else if all_digits && s.len() == 8 {
        (s.get(..4)?.parse().ok()?, s.get(4..6)?.parse().ok()?, s.get(6..8)?.parse().ok()?)
    } else {
        let mut it = s.split(['-', '/', '.']);
        let (y, m, d) = (it.next()?, it.next()?, it.next()?);
        let digits = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit());
        if it.next().is_some() || !digits(y, 4) || !digits(m, 2) || !digits(d, 2) {
            return None;
        }
        (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
    };
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then_some(y * 10000 + m * 100 + d)
}

fn truncate(s: &str, max: usize) -> &str {
    let mut cut = max.min(s.len());
    while cut > 0 && !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.get(..cut).unwrap_or("")
}

/// Extracts the version and build date from a firmware file name, e.g.
/// `IPD_R7_EN_STD_5.5.8_180902.zip` → ("5.5.8", Some("180902")),
/// `NVR_K75_HILOOK_ML_E_STD_V3.4.99_Build180706.zip` → ("3.4.99", Some("180706")),
/// `digicap.dav` → None. A directory part is ignored; the last dotted version token (with at
/// least two components, `V` prefix dropped) wins; the build is a 6- or 8-digit token right
/// after it (`build`/`Build` prefix allowed) or glued to it (`v1.0.0.3build20190416`).
pub fn version_from_filename(name: &str) -> Option<(String, Option<String>)> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let base = truncate(base, 1024);
    // Drop up to two alphabetic extensions (`.zip`, `.pkg.zip`, `.dav`).
    let mut stem = base;
    for _ in 0..2 {
        match stem.rsplit_once('.') {
            Some((head, ext))
                if !head.is_empty()
                    && (1..=5).contains(&ext.len())
                    && ext.bytes().all(|b| b.is_ascii_alphabetic()) =>
            {
                stem = head;
            }
            _ => break,
        }
    }
    let stem = stem.replace("%20", " ");
    let tokens: Vec<&str> = stem.split(['_', ' ']).filter(|t| !t.is_empty()).collect();
    for (i, token) in tokens.iter().enumerate().rev() {
        if let Some((version, glued)) = version_token(token) {
            let build = glued.or_else(|| tokens.get(i + 1).and_then(|t| build_token(t)));
            return Some((version, build));
        }
    }
    None
}

/// `5.5.8`, `V3.4.99`, `v1.0.0.3build20190416` → (version, glued build).
fn version_token(token: &str) -> Option<(String, Option<String>)> {
    let t = token.strip_prefix(['V', 'v']).unwrap_or(token);
    let (numbers, rest) = parse_numbers(t)?;
    if numbers.len() < 2 {
        return None;
    }
    let version = t.get(..t.len() - rest.len())?.to_string();
    if rest.is_empty() {
        return Some((version, None));
    }
    Some((version, Some(build_token(rest)?)))
}

/// `180706`, `Build180706`, `build20190416` → the digits.
fn build_token(token: &str) -> Option<String> {
    let digits = match token.get(..5) {
        Some(w) if w.eq_ignore_ascii_case("build") => token.get(5..)?,
        _ => token,
    };
    let ok = matches!(digits.len(), 6 | 8) && digits.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| digits.to_string())
}

/// The XOR key of older `digicap.dav` images (hiktools `DigiCap.KEY_XOR`).
const DIGICAP_KEY: [u8; 16] =
    [0xBA, 0xCD, 0xBC, 0xFE, 0xD6, 0xCA, 0xDD, 0xD3, 0xBA, 0xB9, 0xA3, 0xAB, 0xBF, 0xCB, 0xB5, 0xBE];
/// Name of that key in [`DigicapHeader::key`].
const DIGICAP_KEY_NAME: &str = "xor16-bacdbcfe";
/// Magic after decoding, little-endian: the bytes "SWKH" (hiktools' `parse_hkws`, the EZVIZ
/// script's `'SWKH'`).
const MAGIC_HKWS: u32 = 0x484B_5753;
/// "02KH": XOR-decoded like HKWS; its file index layout is not documented by any source.
const MAGIC_HK20: u32 = 0x484B_3230;
/// "03KH": only the first 16 bytes are XOR-ed, the rest of the header is AES-encrypted with a
/// per-platform key ("newer images use another key").
const MAGIC_HK30: u32 = 0x484B_3330;
/// Fixed part of the header; the file index starts here.
const INDEX_START: usize = 0x40;
/// One index entry: `name[32]`, then three u32.
const ENTRY_LEN: usize = 0x2C;
/// Index entries read at most.
const MAX_FILES: usize = 64;

/// Decoded `digicap.dav` header.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DigicapHeader {
    /// 0x484B5753 ("SWKH") or 0x484B3230 ("02KH").
    pub magic: u32,
    pub header_checksum: u32,
    /// Length of header plus file index.
    pub header_len: u32,
    pub file_count: u32,
    /// 1 = EN/multi-language, 2 = CN (EZVIZ script).
    pub language: u32,
    pub device_class: u32,
    pub oem_code: u32,
    pub files: Vec<DigicapFile>,
    /// Which key decoded it.
    pub key: &'static str,
    pub anomalies: Vec<&'static str>,
}

/// One entry of the file index.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DigicapFile {
    pub name: String,
    pub length: u32,
    pub offset: u32,
    pub checksum: u32,
}

fn key_byte(i: usize) -> u8 {
    // hiktools: `key[index + (index >> 4) & 0xF]`, which Python groups as
    // `(index + (index >> 4)) & 0xF`; the decompiled `DecodeXOR16` (hiktools
    // `gists/fmod/decode_xor16.c`) and the EZVIZ script (`key[(i + sar(i, 4)) & 15]`) agree. The
    // key index is therefore not simply the offset mod 16.
    DIGICAP_KEY.get((i + (i >> 4)) & 0xF).copied().unwrap_or(0)
}

fn decode(data: &[u8], len: usize) -> Vec<u8> {
    data.iter().take(len).enumerate().map(|(i, b)| b ^ key_byte(i)).collect()
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(&[a, b1, c, d]) => u32::from_le_bytes([a, b1, c, d]),
        _ => 0,
    }
}

/// Reads the header of a Hikvision firmware image (`digicap.dav`), e.g. the body of
/// `PUT /ISAPI/System/updateFirmware`; `data` needs the first `header_len` bytes for the whole
/// file index (0x6C bytes hold the fixed part and one entry).
///
/// Layout after XOR decoding (little-endian u32): magic, header checksum, header length, file
/// count, language, device class, OEM code (then firmware version and features, not kept),
/// and at 0x40 the file index: 44-byte entries of `name[32]` and three u32.
///
/// The sources disagree on the entry order: hiktools `split_files` reads length, offset,
/// checksum; the EZVIZ repack script writes offset, size, checksum and the magic-dispatching
/// parser reads offset, length, checksum. Two of three, one of which builds working images,
/// say offset first, so that is the default; since the files follow the header directly
/// (the repack script), an index whose first entry has `header_len` in the second field is read
/// in hiktools' order instead, with the anomaly "index_length_first". **Unverified** on a real
/// image, as is the header checksum (the byte sum of the decoded header from offset 12, per the
/// repack script; a mismatch is only an anomaly).
///
/// Errors: "truncated" (under 0x40 bytes), "unknown_key" (the magic is none of the known ones
/// after XOR: a newer key or not a digicap image), "aes_header" ("03KH": the header past 16
/// bytes is AES-encrypted), "bad_header_len" (shorter than the fixed part).
pub fn parse_digicap_header(data: &[u8]) -> Result<DigicapHeader, &'static str> {
    if data.len() < 16 {
        return Err("truncated");
    }
    let head = decode(data, 16);
    let magic = le_u32(&head, 0);
    let mut anomalies = Vec::new();
    match magic {
        MAGIC_HKWS => {}
        MAGIC_HK20 => anomalies.push("layout_unverified"),
        MAGIC_HK30 => return Err("aes_header"),
        _ => return Err("unknown_key"),
    }
    if data.len() < INDEX_START {
        return Err("truncated");
    }
    let fixed = decode(data, INDEX_START);
    let header_len = le_u32(&fixed, 8);
    let file_count = le_u32(&fixed, 12);
    let header_end = usize::try_from(header_len).unwrap_or(usize::MAX);
    if header_end < INDEX_START {
        return Err("bad_header_len");
    }
    let mut wanted = usize::try_from(file_count).unwrap_or(usize::MAX);
    if wanted > MAX_FILES {
        anomalies.push("too_many_files");
        wanted = MAX_FILES;
    }
    if header_end.saturating_sub(INDEX_START) != wanted.saturating_mul(ENTRY_LEN) {
        anomalies.push("index_size_mismatch");
    }
    // Never read past the declared header, nor past the data.
    let index_end = INDEX_START + wanted * ENTRY_LEN;
    let limit = index_end.min(header_end).min(data.len());
    if limit < index_end {
        anomalies.push(if data.len() < index_end.min(header_end) {
            "truncated_index"
        } else {
            "index_overflows_header"
        });
    }
    let decoded = decode(data, limit.max(INDEX_START));

    if header_end <= data.len() && header_end <= INDEX_START + MAX_FILES * ENTRY_LEN {
        let full = decode(data, header_end);
        let sum = full.iter().skip(12).fold(0u32, |acc, &b| acc.wrapping_add(u32::from(b)));
        if sum != le_u32(&fixed, 4) {
            anomalies.push("bad_header_checksum");
        }
    }

    let entries: Vec<&[u8]> =
        decoded.get(INDEX_START..).unwrap_or(&[]).chunks_exact(ENTRY_LEN).take(wanted).collect();
    let length_first =
        entries.first().is_some_and(|e| le_u32(e, 32) != header_len && le_u32(e, 36) == header_len);
    if length_first {
        anomalies.push("index_length_first");
    }
    let files = entries
        .iter()
        .map(|e| {
            let name_bytes = e.get(..32).unwrap_or(&[]);
            let end = name_bytes.iter().position(|&b| b == 0).unwrap_or(name_bytes.len());
            let name = String::from_utf8_lossy(name_bytes.get(..end).unwrap_or(&[])).trim().to_string();
            let (a, b) = (le_u32(e, 32), le_u32(e, 36));
            let (offset, length) = if length_first { (b, a) } else { (a, b) };
            DigicapFile { name, length, offset, checksum: le_u32(e, 40) }
        })
        .collect();
    Ok(DigicapHeader {
        magic,
        header_checksum: le_u32(&fixed, 4),
        header_len,
        file_count,
        language: le_u32(&fixed, 16),
        device_class: le_u32(&fixed, 20),
        oem_code: le_u32(&fixed, 24),
        files,
        key: DIGICAP_KEY_NAME,
        anomalies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn v(s: &str) -> Version {
        Version::parse(s)
    }

    #[test]
    fn hikvision_forms() {
        let a = v("V5.5.0 build 170725");
        assert!(a.is_known());
        assert_eq!(a.numbers(), &[5, 5, 0]);
        assert_eq!(a.build_date(), Some(20170725));
        assert_eq!(v("V5.2.6build 180726").build_date(), Some(20180726));
        assert_eq!(v("V4.0.1build171121").numbers(), &[4, 0, 1]);
        assert_eq!(v("V4.0.1build171121").build_date(), Some(20171121));
        assert_eq!(v("V5.7.18").build_date(), None);
        assert_eq!(v("V5.7.18").to_string(), "5.7.18");
        assert_eq!(a.to_string(), "5.5.0 build 2017-07-25");
        assert_eq!(a.raw(), "V5.5.0 build 170725");
        let p = Version::from_parts("V5.5.0", Some("build 250115"));
        assert_eq!((p.numbers(), p.build_date()), (&[5u64, 5, 0][..], Some(20250115)));
        assert_eq!(Version::from_parts("V1.3.4", Some("100316")).build_date(), Some(20100316));
        assert_eq!(Version::from_parts("V5.7.18", Some("  ")), v("V5.7.18"));
        assert_eq!(Version::from_parts("V5.7.18", None), v("V5.7.18"));
    }

    #[test]
    fn dahua_forms() {
        let a = v("2.800.0000000.29.R, Build Date: 2021-08-30");
        assert_eq!(a.numbers(), &[2, 800, 0, 29]);
        assert_eq!(a.suffix(), Some("R"));
        assert_eq!(a.build_date(), Some(20210830));
        assert_eq!(a.to_string(), "2.800.0.29.R build 2021-08-30");
        let b = v("V2.800.0000000.29.R");
        assert_eq!((b.numbers(), b.suffix(), b.build_date()), (&[2u64, 800, 0, 29][..], Some("R"), None));
        let c = v("2.622.0000000.31.R,build:2018-11-29");
        assert_eq!(c.build_date(), Some(20181129));
        assert_eq!(c.compare(&a), Some(Ordering::Less));
        assert_eq!(a.compare(&b), None, "same numbers, only one build date");
        assert_eq!(v("2.400.0000000.16.R, Build Date: 2017-08-31").build_date(), Some(20170831));
    }

    #[test]
    fn unparseable_and_edge_forms() {
        for s in [
            "",
            "abc",
            "V",
            "Vx1.2",
            "5..5",
            "5.5.0 build",
            "5.5.0 build 171332",
            "5.5.0 beta",
            "1.2.R3",
            "5.5.0 build 170725 extra",
            "1.2.3.4.5.6.7.8.9",
            "12345678901234567890.1",
            "0x0",
            "B-R-G5-0",
        ] {
            let x = v(s);
            assert!(!x.is_known(), "{s:?} was parsed as {x:?}");
            assert_eq!(x.to_string(), s.trim());
        }
        assert!(v("5").is_known());
        assert!(v(" v1.2 ").is_known());
        assert!(v("V5.4.5 build 170124)").is_known());
        assert_eq!(v("V5.5.0 build 2017/07/25").build_date(), Some(20170725));
        assert_eq!(v("V5.5.0_20170725").build_date(), Some(20170725));
        let long = "9".repeat(1000);
        assert_eq!(v(&long).raw().len(), MAX_RAW);
        assert!(!v(&long).is_known());
        assert_eq!(v("é".repeat(200).as_str()).raw().len(), MAX_RAW);
    }

    #[test]
    fn compare_rules() {
        use Ordering::*;
        let cases = [
            ("V5.5.0 build 170725", "V5.7.18", Some(Less)),
            ("V5.7.15 build 240201", "V5.7.18 build 240826", Some(Less)),
            ("V4.62.210", "V4.30.097", Some(Greater)),
            ("V5.5.0 build 170725", "V5.5.0 build 180101", Some(Less)),
            ("V5.5.0 build 170725", "5.5.0 build 2017-07-25", Some(Equal)),
            ("V5.5.0", "V5.5.0 build 170725", None),
            ("V5.7", "V5.7.0", Some(Equal)),
            ("2.800.0000000.29.R", "2.800.0000000.29.T", None),
            ("abc", "abc", Some(Equal)),
            ("abc", "abd", None),
            ("abc", "V5.5.0", None),
        ];
        for (a, b, want) in cases {
            assert_eq!(v(a).compare(&v(b)), want, "{a} vs {b}");
            assert_eq!(v(b).compare(&v(a)), want.map(Ordering::reverse), "{b} vs {a}");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in ["V5.5.0 build 170725", "2.800.0000000.29.R, Build Date: 2021-08-30", "V5.7.18", "xyz"] {
            let a = v(s);
            assert_eq!(a.compare(&v(&a.to_string())), Some(Ordering::Equal), "{s}");
        }
    }

    /// Every firmware/encoder/boot version string (joined with its released date where the
    /// dump has one) from the corpus JSON dumps and XML file, plus the forms quoted in
    /// CAMERA-PROTOCOLS.md and the brief.
    fn real_versions() -> Vec<Version> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/corpus/hikvision-isapi/");
        let names = [
            "devices__DS-2CD2346G2-ISU.json",
            "devices__DS-2CD2443G0-IW.json",
            "devices__DS-2CD2T46G2-ISU.json",
            "devices__DS-2SE4C425MWG-E-26.json",
            "devices__DS-7608NXI-I2.json",
            "devices__DS-7616NI-Q2.json",
            "devices__iDS-7204HUHI-M1.json",
        ];
        fn walk(v: &Value, out: &mut Vec<Version>) {
            match v {
                Value::Object(m) => {
                    for (k, x) in m {
                        let Some(s) = x.as_str() else {
                            walk(x, out);
                            continue;
                        };
                        if let Some(prefix) = k.strip_suffix("Version") {
                            let date = m.get(&format!("{prefix}ReleasedDate")).and_then(Value::as_str);
                            out.push(Version::parse(s));
                            out.push(Version::from_parts(s, date));
                        }
                    }
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        for n in names {
            let path = format!("{dir}{n}");
            let bytes =
                std::fs::read(&path).unwrap_or_else(|e| panic!("corpus file {path} is missing ({e})"));
            walk(&serde_json::from_slice(&bytes).unwrap(), &mut out);
        }
        let xml_path = format!("{dir}ISAPI__System.deviceInfo__ipc1.xml");
        let xml = std::fs::read_to_string(&xml_path)
            .unwrap_or_else(|e| panic!("corpus file {xml_path} is missing ({e})"));
        assert!(xml.contains("<firmwareVersion>V5.7.18</firmwareVersion>"));
        out.push(Version::from_parts("V5.7.18", Some("build 240826")));
        for s in [
            "V5.2.6build 180726",
            "V5.5.0",
            "V4.0.1build171121",
            "V5.2.0 build 140721",
            "V5.5.0 build 170725",
            "V5.7.18",
            "2.800.0000000.29.R,build:2021-08-30",
            "2.800.0000000.29.R, Build Date: 2021-08-30",
            "V2.800.0000000.29.R",
            "2.622.0000000.31.R,build:2018-11-29",
            "2.400.0000000.16.R, Build Date: 2017-08-31",
            "V1.0build 200101",
            "B-R-G5-0",
            "0x0",
        ] {
            out.push(Version::parse(s));
        }
        out
    }

    #[test]
    fn ordering_is_consistent_over_real_versions() {
        let vs = real_versions();
        let known = vs.iter().filter(|x| x.is_known()).count();
        assert!(vs.len() > 60 && known > 50, "{} versions, {known} known", vs.len());
        assert!(vs.iter().any(|x| x.raw() == "V5.7.15 build 240201"), "InputProxy versions not found");
        for a in &vs {
            assert_eq!(a.compare(a), Some(Ordering::Equal), "{a:?} not equal to itself");
            for b in &vs {
                let ab = a.compare(b);
                assert_eq!(ab, b.compare(a).map(Ordering::reverse), "{} vs {}", a.raw(), b.raw());
                for c in &vs {
                    let (bc, ac) = (b.compare(c), a.compare(c));
                    let le = |o: Option<Ordering>| matches!(o, Some(Ordering::Less | Ordering::Equal));
                    if le(ab) && le(bc) {
                        let want = if ab == Some(Ordering::Equal) && bc == Some(Ordering::Equal) {
                            Ordering::Equal
                        } else {
                            Ordering::Less
                        };
                        assert_eq!(ac, Some(want), "{} / {} / {}", a.raw(), b.raw(), c.raw());
                    }
                }
            }
        }
    }

    #[test]
    fn filenames() {
        // Names from hiktools gists/firmwarelist.json.
        type Expected = Option<(&'static str, Option<&'static str>)>;
        let cases: [(&str, Expected); 13] = [
            ("IPD_R7_EN_STD_5.5.8_180902.zip", Some(("5.5.8", Some("180902")))),
            ("NVR_K75_HILOOK_ML_E_STD_V3.4.99_Build180706.zip", Some(("3.4.99", Some("180706")))),
            ("IPTM_H3_EN_STD_5.5.12_190315.zip", Some(("5.5.12", Some("190315")))),
            ("KEYBOARD_STD_1.3.0_170308.zip", Some(("1.3.0", Some("170308")))),
            ("DS-MH2330_update_V1.2.0_build171016.zip", Some(("1.2.0", Some("171016")))),
            ("DVS_6100HF_HC_EN_STD_V2.0_090113.zip", Some(("2.0", Some("090113")))),
            ("Tools%20Managers_v1.0.0.3build20190416.zip", Some(("1.0.0.3", Some("20190416")))),
            ("portal/Product%20Firmware/IPD_R3_EN_STD_5.5.2_171201.zip", Some(("5.5.2", Some("171201")))),
            ("PTZ%20Camera%20V5.5.7%20Release%20Note-internal.docx", Some(("5.5.7", None))),
            ("SADPTool.pkg.zip", None),
            ("digicap.dav", None),
            ("", None),
            ("5.zip", None),
        ];
        for (name, want) in cases {
            let got = version_from_filename(name);
            let want = want.map(|(a, b)| (a.to_string(), b.map(str::to_string)));
            assert_eq!(got, want, "{name}");
        }
    }

    /// Lays out a plain header as the sources describe (offset-first entries), fixes the
    /// checksum the way the EZVIZ repack script does, and XOR-encodes it. Not a real image.
    fn plain_header(magic: u32, files: &[(&str, u32, u32)], length_first: bool) -> Vec<u8> {
        let header_len = (INDEX_START + files.len() * ENTRY_LEN) as u32;
        let mut h = Vec::new();
        for x in [magic, 0, header_len, files.len() as u32, 1, 0x0000_2001, 0x0000_0001, 0x0505_0800, 0] {
            h.extend_from_slice(&x.to_le_bytes());
        }
        h.resize(INDEX_START, 0);
        let mut offset = header_len;
        for (name, length, checksum) in files {
            let mut n = name.as_bytes().to_vec();
            n.resize(32, 0);
            h.extend_from_slice(&n);
            let (a, b) = if length_first { (*length, offset) } else { (offset, *length) };
            h.extend_from_slice(&a.to_le_bytes());
            h.extend_from_slice(&b.to_le_bytes());
            h.extend_from_slice(&checksum.to_le_bytes());
            offset += length;
        }
        let sum = h.iter().skip(12).fold(0u32, |acc, &b| acc.wrapping_add(u32::from(b)));
        h[4..8].copy_from_slice(&sum.to_le_bytes());
        h.iter().enumerate().map(|(i, b)| b ^ key_byte(i)).collect()
    }

    const FILES: [(&str, u32, u32); 3] =
        [("_cfgUpgClass", 0x3e8, 0x1234), ("uImage", 0x20_0000, 0xdead), ("hroot.img", 0x60_0000, 0xbeef)];

    #[test]
    fn key_schedule() {
        // Decoding zeros yields the key stream: index (i + i/16) mod 16.
        let stream = decode(&[0u8; 40], 40);
        assert_eq!(&stream[..16], &DIGICAP_KEY);
        assert_eq!(stream[16], DIGICAP_KEY[1]);
        assert_eq!(stream[31], DIGICAP_KEY[0]);
        assert_eq!(stream[32], DIGICAP_KEY[2]);
    }

    #[test]
    fn digicap_header() {
        let data = plain_header(MAGIC_HKWS, &FILES, false);
        // The encoded magic is not readable as-is.
        assert_ne!(&data[..4], b"SWKH");
        let h = parse_digicap_header(&data).unwrap();
        assert_eq!(h.magic, MAGIC_HKWS);
        assert_eq!(h.header_len, 0x40 + 3 * 0x2C);
        assert_eq!(h.file_count, 3);
        assert_eq!((h.language, h.device_class, h.oem_code), (1, 0x2001, 1));
        assert_eq!(h.key, "xor16-bacdbcfe");
        assert!(h.anomalies.is_empty(), "{:?}", h.anomalies);
        assert_eq!(h.files.len(), 3);
        assert_eq!(
            h.files[0],
            DigicapFile {
                name: "_cfgUpgClass".into(),
                length: 0x3e8,
                offset: h.header_len,
                checksum: 0x1234
            }
        );
        assert_eq!(h.files[2].name, "hroot.img");
        assert_eq!(h.files[2].offset, h.header_len + 0x3e8 + 0x20_0000);

        // Only the first 0x6C bytes (what hiktools reads first): one entry, flagged.
        let h = parse_digicap_header(&data[..0x6C]).unwrap();
        assert_eq!(h.files.len(), 1);
        assert!(h.anomalies.contains(&"truncated_index"));

        // hiktools' entry order is recognised.
        let h = parse_digicap_header(&plain_header(MAGIC_HKWS, &FILES, true)).unwrap();
        assert!(h.anomalies.contains(&"index_length_first"));
        assert_eq!((h.files[1].length, h.files[1].offset), (0x20_0000, h.header_len + 0x3e8));

        let mut bad = data.clone();
        bad[0x50] ^= 0x01;
        assert!(parse_digicap_header(&bad).unwrap().anomalies.contains(&"bad_header_checksum"));
        let h = parse_digicap_header(&plain_header(MAGIC_HK20, &FILES[..1], false)).unwrap();
        assert!(h.anomalies.contains(&"layout_unverified"));
    }

    #[test]
    fn digicap_errors() {
        assert_eq!(parse_digicap_header(&[]), Err("truncated"));
        let data = plain_header(MAGIC_HKWS, &FILES, false);
        assert_eq!(parse_digicap_header(&data[..0x3F]), Err("truncated"));
        assert_eq!(parse_digicap_header(&[0u8; 0x200]), Err("unknown_key"));
        assert_eq!(
            parse_digicap_header(b"SWKH and then some plain text................................."),
            Err("unknown_key")
        );
        assert_eq!(parse_digicap_header(&plain_header(MAGIC_HK30, &FILES, false)), Err("aes_header"));
        // A header length below the fixed part.
        let mut short = data.clone();
        for (i, plain) in (8..12).zip([0x10u8, 0, 0, 0]) {
            short[i] = plain ^ key_byte(i);
        }
        assert_eq!(parse_digicap_header(&short), Err("bad_header_len"));
        // A huge file count is bounded.
        let mut many = data.clone();
        many[14] ^= 0x10;
        let h = parse_digicap_header(&many).unwrap();
        assert!(h.files.len() <= MAX_FILES);
        assert!(h.anomalies.contains(&"too_many_files"));
    }

    #[test]
    fn fuzz_prefixes_and_bit_flips_do_not_panic() {
        let samples = [
            plain_header(MAGIC_HKWS, &FILES, false),
            b"2.800.0000000.29.R, Build Date: 2021-08-30".to_vec(),
            b"NVR_K75_HILOOK_ML_E_STD_V3.4.99_Build180706.zip".to_vec(),
        ];
        crate::hostile::each_variant(&samples, |v| {
            let _ = parse_digicap_header(v);
            let s = String::from_utf8_lossy(v);
            let a = Version::parse(&s);
            let _ = a.compare(&Version::parse("V5.5.0 build 170725"));
            let _ = a.to_string();
            let _ = version_from_filename(&s);
        });
    }
}

/// What kind of file an image is (sources: binwalk's signatures, ReFirmLabs/binwalk, for the
/// Dahua ZIP variant, U-Boot, squashfs, UBI and TRX; vmallet/pakler for Reolink's PAK magic
/// 0x32725913), from its first bytes (at least the first 512 for a tar):
/// `digicap` (Hikvision, any header key camwatch knows, AES-wrapped included), `dahua_zip` (the
/// ZIP archives of Dahua updates, whose local headers say "DH" where ZIP says "PK"),
/// `reolink_pak` (Reolink's PAK container), `uimage` (U-Boot legacy image), `fit` (U-Boot FIT,
/// a flattened device tree), `squashfs`, `ubi`, `trx` (Broadcom), `elf`, `script` (a shell
/// script, as update.sh), and the generic containers `zip`, `gzip`, `xz`, `tar`. `None` for
/// anything else (a GPS almanac, a picture, a video).
pub fn image_format(head: &[u8]) -> Option<&'static str> {
    let starts = |m: &[u8]| head.starts_with(m);
    if matches!(parse_digicap_header(head), Ok(_) | Err("aes_header")) {
        return Some("digicap");
    }
    let format = if starts(b"DH\x03\x04") {
        "dahua_zip"
    } else if starts(&[0x13, 0x59, 0x72, 0x32]) {
        "reolink_pak"
    } else if starts(&[0x27, 0x05, 0x19, 0x56]) {
        "uimage"
    } else if starts(&[0xd0, 0x0d, 0xfe, 0xed]) {
        "fit"
    } else if starts(b"hsqs") || starts(b"sqsh") {
        "squashfs"
    } else if starts(b"UBI#") {
        "ubi"
    } else if starts(b"HDR0") {
        "trx"
    } else if starts(b"\x7fELF") {
        "elf"
    } else if starts(b"#!/bin/sh") || starts(b"#!/bin/bash") || starts(b"#!/bin/ash") || starts(b"#! /bin/sh")
    {
        "script"
    } else if starts(b"PK\x03\x04") {
        "zip"
    } else if starts(&[0x1f, 0x8b]) {
        "gzip"
    } else if starts(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        "xz"
    } else if head.get(257..262) == Some(b"ustar") {
        "tar"
    } else {
        return None;
    };
    Some(format)
}

/// Whether a transfer is a firmware image: a vendor or boot-loader image format at any size; a
/// generic container (an archive, an executable) of at least `GENERIC_IMAGE_BYTES`; or, as
/// vendors encrypt or obfuscate theirs (D-Link's have no magic), anything of at least
/// `OPAQUE_IMAGE_BYTES`. A small `.bin` that is none of these (a GPS almanac) is not one,
/// whatever its name.
pub fn is_image(format: Option<&str>, size: u64) -> bool {
    match format {
        Some("zip" | "gzip" | "xz" | "tar" | "elf") => size >= GENERIC_IMAGE_BYTES,
        Some(_) => true,
        None => size >= OPAQUE_IMAGE_BYTES,
    }
}

/// The smallest file of no known format taken for a firmware image.
pub const OPAQUE_IMAGE_BYTES: u64 = 1 << 20;

/// The smallest archive or executable taken for a firmware image (camera firmware is megabytes;
/// the update archives of small IoT devices are rarely below a few hundred kilobytes).
pub const GENERIC_IMAGE_BYTES: u64 = 256 * 1024;

#[cfg(test)]
mod image_tests {
    use super::*;

    #[test]
    fn images_are_known_by_their_first_bytes_not_their_name() {
        assert_eq!(image_format(&[0x27, 0x05, 0x19, 0x56, 0, 0]), Some("uimage"));
        assert_eq!(image_format(b"hsqs\0\0\0\0"), Some("squashfs"));
        assert_eq!(image_format(b"DH\x03\x04\x14\0"), Some("dahua_zip"));
        assert_eq!(image_format(b"#!/bin/sh\nwget http://x/y\n"), Some("script"));
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(image_format(&tar), Some("tar"));
        // A GPS almanac (u-blox AssistNow data starts with the UBX sync bytes) is no image.
        assert_eq!(image_format(&[0xb5, 0x62, 0x0b, 0x31, 0x28, 0]), None);
        assert!(!is_image(None, 60_000), "an almanac-sized file of no known format");
        assert!(is_image(None, 15 << 20), "an encrypted 15 MB image");
        assert_eq!(image_format(&[0x13, 0x59, 0x72, 0x32, 0, 0, 0, 0]), Some("reolink_pak"));
        assert!(is_image(Some("uimage"), 4096));
        assert!(!is_image(Some("gzip"), 10_000));
        assert!(is_image(Some("gzip"), 2 << 20));
    }
}
