//! DNS and mDNS message parsing (UDP and TCP framing) into EVE-style records, plus the passive
//! DNS map that names the remote addresses cameras talk to after the names they looked up.
//!
//! Names, record types, rcodes, flags and rdata are rendered the way Suricata's EVE `dns` log
//! renders them (checked against suricata-verify `dns-udp-eve-dig`, `dns-udp-eve-txt`,
//! `dns-reversed-udp-1` and `mdns`), so alerts and event logs read the same as a Suricata sensor's.
//! Deliberate differences, all because the record shape is shared with the rest of camwatch:
//! - `opcode` is a mnemonic ("QUERY", "NOTIFY", …) where Suricata logs the number;
//! - `response` is the QR bit, serialised as Suricata's `qr` but always present;
//! - record types without a mnemonic are "TYPE65535" (RFC 3597) where Suricata logs "65535";
//! - mDNS uses the same record as unicast DNS (upper-case rrtype, `rdata`), where Suricata's
//!   separate `mdns` logger writes lower-case types and per-type keys (`ptr`, `txt`);
//! - SOA and SRV rdata are one presentation-format string, where Suricata logs an object;
//!   unknown and NULL rdata are lower-case hex, where Suricata logs the raw bytes.
//!
//! hickory-proto decodes names (with compression-loop protection) and typed rdata, record by
//! record rather than with `Message::from_vec`, so that one malformed record or a truncated
//! capture keeps everything before it (with an anomaly) instead of losing the whole message.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::IpAddr;

use hickory_proto::op::Header;
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, DecodeError, Restrict};
use serde::Serialize;

/// Records kept per section (queries, answers, authorities); the rest are parsed over but dropped.
pub const MAX_RECORDS: usize = 64;
/// Longest name kept, in bytes of its presentation form.
pub const MAX_NAME_LEN: usize = 255;
/// Longest rdata string kept, in bytes.
pub const MAX_RDATA_LEN: usize = 1024;
/// CNAME hops followed when resolving an address back to the question name.
const MAX_CNAME_HOPS: usize = 16;
const DNS_HEADER_LEN: usize = 12;

/// One DNS or mDNS message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DnsMessage {
    pub id: u16,
    /// The QR bit: true for a response.
    #[serde(rename = "qr")]
    pub response: bool,
    /// "QUERY", "IQUERY", "STATUS", "NOTIFY", "UPDATE", "DSO".
    pub opcode: String,
    /// "NOERROR", "NXDOMAIN", … from the header's 4-bit rcode, as Suricata writes it.
    pub rcode: String,
    /// The whole 16-bit flags word in lower-case hex without padding, as Suricata: "8180".
    pub flags: String,
    pub aa: bool,
    pub tc: bool,
    pub rd: bool,
    pub ra: bool,
    pub queries: Vec<DnsQuery>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<DnsAnswer>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub authorities: Vec<DnsAnswer>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<&'static str>,
}

/// One question.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DnsQuery {
    /// Without the trailing dot; the root is "".
    pub rrname: String,
    pub rrtype: String,
}

/// One answer or authority record. A TXT record with several strings becomes one entry per
/// string, as in Suricata.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DnsAnswer {
    pub rrname: String,
    pub rrtype: String,
    pub ttl: u32,
    /// Address (IPv6 as Suricata prints it: eight zero-padded groups), name, or text.
    pub rdata: String,
}

/// Parses a DNS or mDNS message carried in one UDP datagram.
pub fn parse(payload: &[u8]) -> Result<DnsMessage, &'static str> {
    let header_bytes = payload.get(..DNS_HEADER_LEN).ok_or("truncated")?;
    let header = Header::read(&mut BinDecoder::new(header_bytes)).map_err(|_| "bad_header")?;
    let raw_flags = u16::from_be_bytes([header_bytes[2], header_bytes[3]]);
    let opcode = ((raw_flags >> 11) & 0xf) as u8;
    // Opcode 3 and 7-15 are unassigned: random bytes on port 53 land here far more often
    // than a real message does.
    let opcode_name = opcode_name(opcode).ok_or("bad_header")?;

    let mut msg = DnsMessage {
        id: header.metadata.id,
        response: raw_flags & 0x8000 != 0,
        opcode: opcode_name.to_owned(),
        rcode: rcode_name(raw_flags),
        flags: format!("{raw_flags:x}"),
        aa: header.metadata.authoritative,
        tc: header.metadata.truncation,
        rd: header.metadata.recursion_desired,
        ra: header.metadata.recursion_available,
        queries: Vec::new(),
        answers: Vec::new(),
        authorities: Vec::new(),
        anomalies: Vec::new(),
    };
    let counts = header.counts;
    // Compression pointers are offsets from the start of the message, so every decoder works
    // on the whole payload and starts past the header.
    let mut dec = BinDecoder::new(payload);
    dec.read_slice(DNS_HEADER_LEN).map_err(|_| "truncated")?;

    for i in 0..counts.queries {
        if dec.is_empty() {
            if i == 0 {
                // A header promising questions and carrying nothing else: cut short (or not
                // DNS at all), and with nothing to log either way.
                return Err("truncated");
            }
            note(&mut msg.anomalies, "question_count_mismatch");
            return Ok(finish(msg, &dec));
        }
        match read_query(&mut dec, &mut msg.anomalies) {
            Ok(q) => {
                if msg.queries.len() < MAX_RECORDS {
                    msg.queries.push(q);
                } else {
                    note(&mut msg.anomalies, "too_many_queries");
                }
            }
            Err(e) if i == 0 => {
                return Err(if matches!(e, DecodeError::InsufficientBytes) { "truncated" } else { "not_dns" })
            }
            Err(e) => {
                note(&mut msg.anomalies, decode_reason(&e));
                return Ok(finish(msg, &dec));
            }
        }
    }

    let sections: [(u16, &'static str, &'static str); 3] = [
        (counts.answers, "answer_count_mismatch", "too_many_answers"),
        (counts.authorities, "authority_count_mismatch", "too_many_authorities"),
        (counts.additionals, "additional_count_mismatch", "too_many_additionals"),
    ];
    for (section, (count, mismatch, too_many)) in sections.into_iter().enumerate() {
        for _ in 0..count {
            if dec.is_empty() {
                note(&mut msg.anomalies, mismatch);
                return Ok(finish(msg, &dec));
            }
            let records = match read_record(payload, &mut dec, &mut msg.anomalies) {
                Ok(r) => r,
                Err(e) => {
                    note(&mut msg.anomalies, decode_reason(&e));
                    return Ok(finish(msg, &dec));
                }
            };
            // Additional records are parsed over (to find the end of the message) but not
            // kept: the record has no field for them and they are mostly OPT.
            let list = match section {
                0 => &mut msg.answers,
                1 => &mut msg.authorities,
                _ => continue,
            };
            for r in records {
                if list.len() < MAX_RECORDS {
                    list.push(r);
                } else {
                    note(&mut msg.anomalies, too_many);
                }
            }
        }
    }
    Ok(finish(msg, &dec))
}

/// Parses one DNS message from the front of a TCP stream (2-byte big-endian length prefix,
/// RFC 1035 §4.2.2). Returns the message and the bytes consumed, prefix included, or
/// `Err("incomplete")` when the stream does not yet hold the whole message.
pub fn parse_tcp(stream: &[u8]) -> Result<(DnsMessage, usize), &'static str> {
    let len = match stream {
        [hi, lo, ..] => usize::from(u16::from_be_bytes([*hi, *lo])),
        _ => return Err("incomplete"),
    };
    if len < DNS_HEADER_LEN {
        // Not even a header: the length prefix is garbage or this is not DNS.
        return Err("bad_length");
    }
    let body = stream.get(2..2 + len).ok_or("incomplete")?;
    parse(body).map(|m| (m, 2 + len))
}

fn finish(mut msg: DnsMessage, dec: &BinDecoder<'_>) -> DnsMessage {
    if !dec.is_empty() {
        note(&mut msg.anomalies, "trailing_bytes");
    }
    msg
}

/// Records an anomaly once; the list is bounded by the number of distinct reasons.
fn note(anomalies: &mut Vec<&'static str>, what: &'static str) {
    if !anomalies.contains(&what) {
        anomalies.push(what);
    }
}

fn decode_reason(e: &DecodeError) -> &'static str {
    match e {
        DecodeError::InsufficientBytes => "truncated",
        _ => "bad_record",
    }
}

fn read_query(dec: &mut BinDecoder<'_>, anomalies: &mut Vec<&'static str>) -> Result<DnsQuery, DecodeError> {
    let name = Name::read(dec)?;
    let rrtype = dec.read_u16()?.unverified(/* any type code is loggable */);
    // The class (and mDNS's unicast-response bit in it) is not logged.
    dec.read_u16()?;
    Ok(DnsQuery { rrname: name_string(&name, anomalies), rrtype: rrtype_name(rrtype) })
}

/// Reads one resource record; returns one entry, or one per string for TXT.
fn read_record(
    payload: &[u8],
    dec: &mut BinDecoder<'_>,
    anomalies: &mut Vec<&'static str>,
) -> Result<Vec<DnsAnswer>, DecodeError> {
    let name = Name::read(dec)?;
    let rrtype = dec.read_u16()?.unverified(/* any type code is loggable */);
    dec.read_u16()?; // class; mDNS sets the cache-flush bit in it
    let ttl = dec.read_u32()?.unverified(/* any TTL is loggable */);
    let rdlen = dec.read_u16()?.unverified(/* checked by read_slice */);
    let start = dec.index();
    let raw = dec.read_slice(usize::from(rdlen))?.unverified(/* length checked by read_slice */);

    let rrname = name_string(&name, anomalies);
    let rrtype_s = rrtype_name(rrtype);
    let rdatas = if raw.is_empty() {
        // Empty rdata is legal for updates and OPT; Suricata prints "" for an empty A too.
        vec![String::new()]
    } else {
        // A second decoder over the whole message, positioned at the rdata, so names inside
        // rdata can follow compression pointers; the outer decoder has already skipped it.
        let mut rdec = BinDecoder::new(payload);
        let typed = rdec
            .read_slice(start)
            .and_then(|_| RData::read(&mut rdec, RecordType::from(rrtype), Restrict::new(rdlen)));
        match typed {
            Ok(rdata) => rdata_strings(&rdata, raw, anomalies),
            Err(_) => {
                note(anomalies, "bad_rdata");
                vec![hex_capped(raw, anomalies)]
            }
        }
    };
    Ok(rdatas
        .into_iter()
        .map(|rdata| DnsAnswer { rrname: rrname.clone(), rrtype: rrtype_s.clone(), ttl, rdata })
        .collect())
}

/// Presentation form of a name as Suricata logs it: labels joined by '.', no trailing dot,
/// bytes as UTF-8 (lossy), so mDNS instance names like "John’s iMac" survive intact.
fn name_string(name: &Name, anomalies: &mut Vec<&'static str>) -> String {
    let mut bytes = Vec::with_capacity(name.len());
    for (i, label) in name.iter().enumerate() {
        if i > 0 {
            bytes.push(b'.');
        }
        bytes.extend_from_slice(label);
    }
    let s = String::from_utf8_lossy(&bytes).into_owned();
    cap_string(s, MAX_NAME_LEN, "name_truncated", anomalies)
}

fn cap_string(mut s: String, max: usize, what: &'static str, anomalies: &mut Vec<&'static str>) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        note(anomalies, what);
    }
    s
}

fn hex_capped(bytes: &[u8], anomalies: &mut Vec<&'static str>) -> String {
    let keep = bytes.get(..MAX_RDATA_LEN / 2).unwrap_or(bytes);
    if keep.len() < bytes.len() {
        note(anomalies, "rdata_truncated");
    }
    let mut s = String::with_capacity(keep.len() * 2);
    for b in keep {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn rdata_strings(rdata: &RData, raw: &[u8], anomalies: &mut Vec<&'static str>) -> Vec<String> {
    let one = match rdata {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(aaaa) => {
            // Suricata's dns_print_addr: eight zero-padded groups, no "::" compression.
            let o = aaaa.0.octets();
            let mut s = String::with_capacity(39);
            for (i, pair) in o.chunks_exact(2).enumerate() {
                if i > 0 {
                    s.push(':');
                }
                for b in pair {
                    let _ = write!(s, "{b:02x}");
                }
            }
            s
        }
        RData::CNAME(n) => name_string(&n.0, anomalies),
        RData::NS(n) => name_string(&n.0, anomalies),
        RData::PTR(n) => name_string(&n.0, anomalies),
        // Suricata logs only the exchange for MX.
        RData::MX(mx) => name_string(&mx.exchange, anomalies),
        RData::TXT(txt) => {
            // One entry per character-string, as Suricata does.
            let mut out = Vec::new();
            for t in txt.txt_data.iter() {
                if out.len() >= MAX_RECORDS {
                    note(anomalies, "too_many_txt_strings");
                    break;
                }
                let s = String::from_utf8_lossy(t).into_owned();
                out.push(cap_string(s, MAX_RDATA_LEN, "rdata_truncated", anomalies));
            }
            if out.is_empty() {
                out.push(String::new());
            }
            return out;
        }
        RData::SRV(srv) => {
            format!("{} {} {} {}", srv.priority, srv.weight, srv.port, name_string(&srv.target, anomalies))
        }
        RData::SOA(soa) => format!(
            "{} {} {} {} {} {} {}",
            name_string(&soa.mname, anomalies),
            name_string(&soa.rname, anomalies),
            soa.serial,
            soa.refresh,
            soa.retry,
            soa.expire,
            soa.minimum
        ),
        RData::NULL(null) => hex_capped(&null.anything, anomalies),
        RData::Unknown { rdata, .. } => hex_capped(&rdata.anything, anomalies),
        // Everything else (HTTPS/SVCB, CAA, SSHFP, …) in hickory's presentation format. Some
        // types have none: OPT's Display is an error by design (EDNS options are in nearly every
        // modern query), and `to_string` would turn that error into a panic. Those are logged
        // as hex, like types hickory does not know.
        other => {
            let mut text = String::new();
            match write!(text, "{other}") {
                Ok(()) => cap_string(text, MAX_RDATA_LEN, "rdata_truncated", anomalies),
                Err(_) => hex_capped(raw, anomalies),
            }
        }
    };
    vec![one]
}

fn opcode_name(op: u8) -> Option<&'static str> {
    Some(match op {
        0 => "QUERY",
        1 => "IQUERY",
        2 => "STATUS",
        4 => "NOTIFY",
        5 => "UPDATE",
        6 => "DSO",
        _ => return None,
    })
}

/// Suricata's dns_rcode_string: the header's 4 bits only (EDNS extended rcodes not merged).
fn rcode_name(flags: u16) -> String {
    let s = match flags & 0xf {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        other => return other.to_string(),
    };
    s.to_owned()
}

/// Record type mnemonics as Suricata writes them; others in RFC 3597 form ("TYPE65280").
fn rrtype_name(t: u16) -> String {
    let s = match t {
        1 => "A",
        2 => "NS",
        3 => "MD",
        4 => "MF",
        5 => "CNAME",
        6 => "SOA",
        7 => "MB",
        8 => "MG",
        9 => "MR",
        10 => "NULL",
        11 => "WKS",
        12 => "PTR",
        13 => "HINFO",
        14 => "MINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        19 => "X25",
        20 => "ISDN",
        21 => "RT",
        22 => "NSAP",
        23 => "NSAPPTR",
        24 => "SIG",
        25 => "KEY",
        26 => "PX",
        27 => "GPOS",
        28 => "AAAA",
        29 => "LOC",
        30 => "NXT",
        33 => "SRV",
        34 => "ATMA",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        38 => "A6",
        39 => "DNAME",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        49 => "DHCID",
        50 => "NSEC3",
        51 => "NSEC3PARAM",
        52 => "TLSA",
        55 => "HIP",
        59 => "CDS",
        60 => "CDNSKEY",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        253 => "MAILB",
        254 => "MAILA",
        255 => "ANY",
        256 => "URI",
        257 => "CAA",
        other => return format!("TYPE{other}"),
    };
    s.to_owned()
}

/// Address → name map learnt from DNS responses, so a flow to 52.x.x.x can be reported as
/// the cloud name the camera looked up. Entries expire after the record's TTL (clamped to
/// [60 s, 24 h], so zero-TTL answers still name the connection that follows them and
/// week-long TTLs don't pin stale names); the map never holds more than `max_entries`.
#[derive(Debug, Clone, Default)]
pub struct PassiveDns {
    max_entries: usize,
    entries: HashMap<IpAddr, PdnsEntry>,
    /// (expiry, sequence) → address: expired entries are evicted first, cheapest first.
    by_expiry: BTreeMap<(u64, u64), IpAddr>,
    /// sequence → address: the least recently learnt entry goes when nothing has expired.
    by_age: BTreeMap<u64, IpAddr>,
    next_seq: u64,
}

#[derive(Debug, Clone)]
struct PdnsEntry {
    name: String,
    expires_micros: u64,
    seq: u64,
}

const MIN_TTL_SECS: u64 = 60;
const MAX_TTL_SECS: u64 = 24 * 60 * 60;

impl PassiveDns {
    pub fn new(max_entries: usize) -> Self {
        Self { max_entries, ..Self::default() }
    }

    /// Learns every A/AAAA answer of a response, mapped to the question name that led to it
    /// through any CNAME chain (answers may come in any order; loops are cut).
    pub fn learn(&mut self, msg: &DnsMessage, now_micros: u64) {
        if !msg.response || self.max_entries == 0 {
            return;
        }
        let lower = |s: &str| s.to_ascii_lowercase();
        // alias → target, and target → alias for walking back when there is no question.
        let mut cnames: HashMap<String, String> = HashMap::new();
        let mut reverse: HashMap<String, String> = HashMap::new();
        for a in msg.answers.iter().filter(|a| a.rrtype == "CNAME") {
            cnames.entry(lower(&a.rrname)).or_insert_with(|| lower(&a.rdata));
            reverse.entry(lower(&a.rdata)).or_insert_with(|| lower(&a.rrname));
        }
        // Every name reachable from a question, mapped to that question as it was asked.
        let mut origin: HashMap<String, &str> = HashMap::new();
        for q in &msg.queries {
            let mut cur = lower(&q.rrname);
            for _ in 0..=MAX_CNAME_HOPS {
                if origin.contains_key(&cur) {
                    break; // reached from an earlier question, or a loop
                }
                origin.insert(cur.clone(), q.rrname.as_str());
                match cnames.get(&cur) {
                    Some(next) => cur = next.clone(),
                    None => break,
                }
            }
        }
        for a in msg.answers.iter().filter(|a| a.rrtype == "A" || a.rrtype == "AAAA") {
            let Ok(ip) = a.rdata.parse::<IpAddr>() else { continue };
            if ip.is_unspecified() {
                continue;
            }
            let owner = lower(&a.rrname);
            let name = match origin.get(&owner) {
                Some(q) => (*q).to_owned(),
                None => {
                    // No question leads here (mDNS announcements carry none): use the head
                    // of the CNAME chain that ends at this owner, else the owner itself.
                    let mut head = owner.clone();
                    for _ in 0..MAX_CNAME_HOPS {
                        match reverse.get(&head) {
                            Some(prev) if *prev != owner => head = prev.clone(),
                            _ => break,
                        }
                    }
                    if head == owner {
                        a.rrname.clone()
                    } else {
                        head
                    }
                }
            };
            let ttl = u64::from(a.ttl).clamp(MIN_TTL_SECS, MAX_TTL_SECS);
            self.insert(ip, name, now_micros.saturating_add(ttl * 1_000_000), now_micros);
        }
    }

    fn insert(&mut self, ip: IpAddr, name: String, expires_micros: u64, now_micros: u64) {
        if let Some(old) = self.entries.remove(&ip) {
            self.by_expiry.remove(&(old.expires_micros, old.seq));
            self.by_age.remove(&old.seq);
        }
        while self.entries.len() >= self.max_entries {
            if !self.evict_one(now_micros) {
                break;
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_expiry.insert((expires_micros, seq), ip);
        self.by_age.insert(seq, ip);
        self.entries.insert(ip, PdnsEntry { name, expires_micros, seq });
    }

    /// Drops one entry: an expired one if any, else the least recently learnt.
    fn evict_one(&mut self, now_micros: u64) -> bool {
        let victim = match self.by_expiry.first_key_value() {
            Some((&(expires, _), &ip)) if expires <= now_micros => ip,
            _ => match self.by_age.first_key_value() {
                Some((_, &ip)) => ip,
                None => return false,
            },
        };
        if let Some(old) = self.entries.remove(&victim) {
            self.by_expiry.remove(&(old.expires_micros, old.seq));
            self.by_age.remove(&old.seq);
            true
        } else {
            false
        }
    }

    /// The name learnt for `ip`, unless it has expired.
    pub fn lookup(&self, ip: IpAddr, now_micros: u64) -> Option<&str> {
        self.entries.get(&ip).filter(|e| e.expires_micros > now_micros).map(|e| e.name.as_str())
    }

    /// Entries held, including expired ones not yet evicted.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    // suricata-verify dns/dns-udp-eve-dig (tests/cond-log-dns-dig/input.pcap), frame 1: dig's
    // query for www.suricata-ids.org A with an EDNS OPT record.
    const DIG_QUERY: &str = "8d3201200001000000000001037777770c73757269636174612d696473036f7267000001\
        00010000291000000000000000";
    // Same capture, frame 2 (also the single frame of suricata-verify dns-reversed-udp-1):
    // CNAME to suricata-ids.org, then two A records.
    const DIG_RESPONSE: &str = "8d3281a00001000300000000037777770c73757269636174612d696473036f72670000\
        010001c00c0005000100000dd800120c73757269636174612d696473036f726700c03200010001000000f40004\
        c0004e18c03200010001000000f40004c0004e19";
    // suricata-verify dns/dns-udp-eve-txt input.pcap, frame 2: TXT answer for google.com.
    const TXT_RESPONSE: &str = "6e538180000100010000000106676f6f676c6503636f6d0000100001c00c00100001\
        00000c91002423763d7370663120696e636c7564653a5f7370662e676f6f676c652e636f6d207e616c6c000029\
        1000000000000000";
    // Same capture, frame 4: A answer with TTL 5.
    const A_RESPONSE: &str = "99cc8180000100010000000015746578747365637572652d736572766963652d63610e\
        7768697370657273797374656d73036f72670000010001c00c0001000100000005000422c5b2f0";
    // suricata-verify mdns (tests/ipv6-evasion/ipv6-malformed-fragments-9/frag-9.pcap), frame 6:
    // mDNS response with a TXT and a PTR whose names hold a UTF-8 apostrophe.
    const MDNS_RESPONSE: &str = "0000840000000002000000000d4a6f686ee280997320694d61630c5f64657669\
        63652d696e666f045f746370056c6f63616c000010000100001194001a0e6d6f64656c3d694d616331372c310a\
        6f7378766572733d31370f5f636f6d70616e696f6e2d6c696e6bc027000c00010000119400100d4a6f686ee280\
        997320694d6163c057";
    // Same capture, frame 11: mDNS query with three PTR questions using compression.
    const MDNS_QUERY: &str = "0000000000030000000000000d5f6170706c652d6d6f62646576045f746370056c6f\
        63616c00000c0001083932653830383132045f7375620e5f6170706c652d6d6f6264657632c01a000c00010f5f\
        6170706c652d7061697261626c65c01a000c0001";

    // corpus camera/iotsentinel_D-LinkCam_Setup-A-1-STA.pcap, frame 188: the D-Link DCS-935L's
    // lookup of its cloud relay: CNAME to signal.auto.mydlink.com, 18 A records, 4 NS
    // authorities and one glue A record in the additional section (502 bytes).
    const DLINK_SIGNAL: &str =
        "000281800001001300040001067369676e616c076d79646c696e6b03636f6d0000010001c00c00050001000000f0000e\
        067369676e616c046175746fc013c030000100010000003c00043408b23ac030000100010000003c00043408e8d0c030\
        000100010000003c000434091023c030000100010000003c00043411b17ec030000100010000003c00043411f832c030\
        000100010000003c00043412531ec030000100010000003c000436c12837c030000100010000003c000436c128f8c030\
        000100010000003c000436c1291fc030000100010000003c000436c16cacc030000100010000003c000436c2a219c030\
        000100010000003c000436c2a23dc030000100010000003c000436e54051c030000100010000003c000436eeba43c030\
        000100010000003c000436eec6c6c030000100010000003c0004340823f1c030000100010000003c000434084fb4c030\
        000100010000003c0004340856a1c03700020001000001680016066e732d38353609617773646e732d3433036e657400\
        c03700020001000001680019076e732d3230313109617773646e732d353902636f02756b00c037000200010000016800\
        12056e732d383309617773646e732d3130c01bc03700020001000001680017076e732d3132363409617773646e732d33\
        30036f726700c1b100010001000259bd0004cdfbc053";

    /// A response to `a.` IN A with one record of `rrtype` carrying `rdata`, in the answer
    /// section or (with `additional`) the additional section.
    fn response_with(rrtype: u16, rdata: &[u8], additional: bool) -> Vec<u8> {
        let mut m =
            vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, u8::from(!additional), 0, 0, 0, u8::from(additional)];
        m.extend_from_slice(&[1, b'a', 0, 0, 1, 0, 1]);
        m.extend_from_slice(&[0xc0, 0x0c]);
        m.extend_from_slice(&rrtype.to_be_bytes());
        m.extend_from_slice(&[0x10, 0, 0, 0, 0, 60]);
        m.extend_from_slice(&u16::try_from(rdata.len()).unwrap().to_be_bytes());
        m.extend_from_slice(rdata);
        m
    }

    /// An EDNS OPT record with an option (here a client cookie, as `dig` sends by default) has
    /// no presentation form in hickory: its Display returns an error, which `to_string` turns
    /// into a panic. It is logged as hex instead, wherever it appears.
    #[test]
    fn an_opt_record_with_options_is_hex_not_a_panic() {
        let cookie = [0, 10, 0, 8, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18];
        let m = parse(&response_with(41, &cookie, false)).unwrap();
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.answers[0].rrtype, "OPT");
        assert_eq!(m.answers[0].rdata, "000a0008a1b2c3d4e5f60718");
        assert!(parse(&response_with(41, &cookie, true)).is_ok());
    }

    /// A LOC record (RFC 1876, type 29; Zeek's LOC test trace carries one): hickory does not
    /// know the type and camwatch logs its bytes.
    #[test]
    fn a_loc_record_is_logged_as_hex() {
        // Version 0, size 1e1 m, precision 1e6/1e3 cm, then latitude, longitude and altitude.
        let loc =
            [0, 0x12, 0x16, 0x13, 0x89, 0x17, 0x2d, 0xd0, 0x70, 0xbe, 0x15, 0xf0, 0x00, 0x98, 0x8d, 0x20];
        let m = parse(&response_with(29, &loc, false)).unwrap();
        assert_eq!(m.answers[0].rrtype, "LOC");
        assert_eq!(m.answers[0].rdata, "0012161389172dd070be15f000988d20");
    }

    /// Every RR type code, known to the IANA registry or not, with rdata that fits it, does not,
    /// or is cut short, in either section: the parser answers, never panics.
    #[test]
    fn every_rr_type_with_any_rdata_parses_or_fails_cleanly() {
        let shapes: [&[u8]; 5] = [
            &[0xff],
            &[0, 0, 0, 0],
            &[0xc0, 0x0c, 0, 1, 0, 1, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0],
            &[3, b'w', b'w', b'w', 0xc0, 0x0c, 0x3f, 0xff, 0x00, 0x01, 0x02],
            &[0x80; 40],
        ];
        for rrtype in 0..=u16::MAX {
            for rdata in shapes {
                for additional in [false, true] {
                    let msg = response_with(rrtype, rdata, additional);
                    let parsed = parse(&msg);
                    if !additional {
                        let m = parsed.unwrap_or_else(|e| panic!("type {rrtype}: {e:?}"));
                        // One answer, or one per string for TXT.
                        assert!(!m.answers.is_empty(), "type {rrtype}");
                        assert!(m.answers.iter().all(|a| a.rrtype == rrtype_name(rrtype)), "type {rrtype}");
                    }
                    // And the same message cut short inside its record.
                    let _ = parse(&msg[..msg.len() - 1]);
                }
            }
        }
    }

    #[test]
    fn dig_query_matches_suricata() {
        let m = parse(&unhex(DIG_QUERY)).unwrap();
        assert_eq!(m.id, 36146);
        assert!(!m.response);
        assert_eq!(m.opcode, "QUERY");
        assert_eq!(m.flags, "120");
        assert!(m.rd);
        assert_eq!(m.queries, vec![DnsQuery { rrname: "www.suricata-ids.org".into(), rrtype: "A".into() }]);
        assert!(m.answers.is_empty());
        assert!(m.anomalies.is_empty(), "{:?}", m.anomalies);
    }

    #[test]
    fn dig_response_matches_suricata() {
        let m = parse(&unhex(DIG_RESPONSE)).unwrap();
        assert_eq!(m.id, 36146);
        assert!(m.response && m.ra && m.rd && !m.aa && !m.tc);
        assert_eq!(m.flags, "81a0");
        assert_eq!(m.rcode, "NOERROR");
        assert_eq!(m.queries[0].rrname, "www.suricata-ids.org");
        assert_eq!(m.queries[0].rrtype, "A");
        let want = [
            ("www.suricata-ids.org", "CNAME", 3544, "suricata-ids.org"),
            ("suricata-ids.org", "A", 244, "192.0.78.24"),
            ("suricata-ids.org", "A", 244, "192.0.78.25"),
        ];
        assert_eq!(m.answers.len(), 3);
        for (a, (n, t, ttl, r)) in m.answers.iter().zip(want) {
            assert_eq!((a.rrname.as_str(), a.rrtype.as_str(), a.ttl, a.rdata.as_str()), (n, t, ttl, r));
        }
        assert!(m.anomalies.is_empty(), "{:?}", m.anomalies);
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["qr"], true);
        assert_eq!(json["answers"][1]["rdata"], "192.0.78.24");
    }

    #[test]
    fn txt_and_a_match_suricata() {
        let m = parse(&unhex(TXT_RESPONSE)).unwrap();
        assert_eq!((m.id, m.flags.as_str(), m.rcode.as_str()), (28243, "8180", "NOERROR"));
        assert_eq!(m.queries[0].rrtype, "TXT");
        assert_eq!(m.answers.len(), 1);
        let a = &m.answers[0];
        assert_eq!((a.rrname.as_str(), a.rrtype.as_str(), a.ttl), ("google.com", "TXT", 3217));
        assert_eq!(a.rdata, "v=spf1 include:_spf.google.com ~all");
        assert!(m.anomalies.is_empty(), "{:?}", m.anomalies);

        let m = parse(&unhex(A_RESPONSE)).unwrap();
        assert_eq!(m.id, 39372);
        assert_eq!(m.queries[0].rrname, "textsecure-service-ca.whispersystems.org");
        let a = &m.answers[0];
        assert_eq!((a.rrtype.as_str(), a.ttl, a.rdata.as_str()), ("A", 5, "34.197.178.240"));
    }

    #[test]
    fn mdns_matches_suricata() {
        let m = parse(&unhex(MDNS_RESPONSE)).unwrap();
        assert!(m.response && m.aa);
        assert!(m.queries.is_empty());
        // TXT with two strings → two entries, as Suricata's dns logger (its mdns logger puts
        // them in one "txt" array instead).
        assert_eq!(m.answers.len(), 3);
        assert_eq!(m.answers[0].rrname, "John’s iMac._device-info._tcp.local");
        assert_eq!(m.answers[0].rdata, "model=iMac17,1");
        assert_eq!(m.answers[1].rdata, "osxvers=17");
        assert_eq!(m.answers[2].rrname, "_companion-link._tcp.local");
        assert_eq!(m.answers[2].rrtype, "PTR");
        assert_eq!(m.answers[2].rdata, "John’s iMac._companion-link._tcp.local");
        assert!(m.anomalies.is_empty(), "{:?}", m.anomalies);

        let m = parse(&unhex(MDNS_QUERY)).unwrap();
        let names: Vec<_> = m.queries.iter().map(|q| (q.rrname.as_str(), q.rrtype.as_str())).collect();
        assert_eq!(
            names,
            [
                ("_apple-mobdev._tcp.local", "PTR"),
                ("92e80812._sub._apple-mobdev2._tcp.local", "PTR"),
                ("_apple-pairable._tcp.local", "PTR"),
            ]
        );
    }

    #[test]
    fn camera_cloud_lookup() {
        let bytes = unhex(DLINK_SIGNAL);
        assert_eq!(bytes.len(), 502);
        let m = parse(&bytes).unwrap();
        assert_eq!(m.queries[0].rrname, "signal.mydlink.com");
        assert_eq!(m.answers.len(), 19);
        assert_eq!(
            (m.answers[0].rrtype.as_str(), m.answers[0].rdata.as_str()),
            ("CNAME", "signal.auto.mydlink.com")
        );
        assert_eq!(m.answers[1].rrname, "signal.auto.mydlink.com");
        assert_eq!(m.authorities.len(), 4);
        assert_eq!(m.authorities[1].rdata, "ns-2011.awsdns-59.co.uk");
        assert!(m.anomalies.is_empty(), "{:?}", m.anomalies);

        let mut p = PassiveDns::new(100);
        p.learn(&m, 0);
        assert_eq!(p.len(), 18); // glue in the additional section is not an answer
        let relay: IpAddr = "52.8.178.58".parse().unwrap();
        assert_eq!(p.lookup(relay, 59_000_000), Some("signal.mydlink.com"));
        assert_eq!(p.lookup("205.251.192.83".parse().unwrap(), 0), None);
    }

    #[test]
    fn tcp_framing() {
        let body = unhex(DIG_RESPONSE);
        let mut stream = (body.len() as u16).to_be_bytes().to_vec();
        stream.extend_from_slice(&body);
        stream.extend_from_slice(&[0x00, 0x30, 0x8d]); // start of the next message
        let (m, used) = parse_tcp(&stream).unwrap();
        assert_eq!(used, body.len() + 2);
        assert_eq!(m.answers.len(), 3);
        assert_eq!(parse_tcp(&stream[used..]), Err("incomplete"));
        assert_eq!(parse_tcp(&stream[..1]), Err("incomplete"));
        assert_eq!(parse_tcp(&stream[..40]), Err("incomplete"));
        assert_eq!(parse_tcp(&[0, 3, 1, 2, 3]), Err("bad_length"));
    }

    #[test]
    fn errors_and_anomalies() {
        assert_eq!(parse(&[]), Err("truncated"));
        assert_eq!(parse(&[0; 11]), Err("truncated"));
        // Opcode 7 is unassigned.
        let mut bad = unhex(DIG_QUERY);
        bad[2] = 0x38;
        assert_eq!(parse(&bad), Err("bad_header"));
        // Header promising a question, then nothing.
        assert_eq!(parse(&unhex("123401000001000000000000")), Err("truncated"));
        // Question name with a reserved label type.
        assert_eq!(parse(&unhex("1234010000010000000000008000000100")), Err("not_dns"));

        let full = unhex(DIG_RESPONSE);
        // Cut inside the last A record: the first two answers survive.
        let m = parse(&full[..full.len() - 2]).unwrap();
        assert_eq!(m.answers.len(), 2);
        assert!(m.anomalies.contains(&"truncated"));
        // Cut after the second answer: a count mismatch.
        let m = parse(&full[..full.len() - 16]).unwrap();
        assert_eq!(m.answers.len(), 2);
        assert_eq!(m.anomalies, vec!["answer_count_mismatch"]);
        let mut trailing = full.clone();
        trailing.extend_from_slice(b"xx");
        assert_eq!(parse(&trailing).unwrap().anomalies, vec!["trailing_bytes"]);

        // NXDOMAIN, an unknown type and a hostile answer count.
        let mut nx = unhex(DIG_QUERY);
        nx[2] = 0x81;
        nx[3] = 0x83;
        nx[34] = 0xff; // qtype 0x0001 → 0xff01
        let m = parse(&nx).unwrap();
        assert_eq!(m.rcode, "NXDOMAIN");
        assert_eq!(m.queries[0].rrtype, "TYPE65281");
    }

    #[test]
    fn caps_records_and_anomalies() {
        // 200 A answers, all pointing at the question name.
        let mut p = unhex("abcd81800001000000000000 016300 0001 0001");
        p[6..8].copy_from_slice(&200u16.to_be_bytes());
        for i in 0..200u16 {
            p.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0]);
            p.extend_from_slice(&i.to_be_bytes());
        }
        let m = parse(&p).unwrap();
        assert_eq!(m.answers.len(), MAX_RECORDS);
        assert_eq!(m.anomalies, vec!["too_many_answers"]);
    }

    #[test]
    fn aaaa_and_unknown_rdata() {
        // Query c AAAA, answers: AAAA 2001:db8::1, type 0xff00 with 2 bytes of rdata.
        let p = unhex(
            "0001 8180 0001 0002 0000 0000  016300 001c 0001 \
             c00c 001c 0001 00000e10 0010 20010db8000000000000000000000001 \
             c00c ff00 0001 00000e10 0002 beef",
        );
        let m = parse(&p).unwrap();
        assert!(m.anomalies.is_empty(), "{:?}", m.anomalies);
        assert_eq!(m.answers[0].rdata, "2001:0db8:0000:0000:0000:0000:0000:0001");
        assert_eq!(m.answers[1].rrtype, "TYPE65280");
        assert_eq!(m.answers[1].rdata, "beef");
        // The Suricata-style address still parses as an address for the passive DNS map.
        assert_eq!(m.answers[0].rdata.parse::<IpAddr>().unwrap(), "2001:db8::1".parse::<IpAddr>().unwrap());
    }

    fn answer(rrname: &str, rrtype: &str, ttl: u32, rdata: &str) -> DnsAnswer {
        DnsAnswer { rrname: rrname.into(), rrtype: rrtype.into(), ttl, rdata: rdata.into() }
    }

    fn response(q: &str, answers: Vec<DnsAnswer>) -> DnsMessage {
        let mut m = parse(&unhex(DIG_RESPONSE)).unwrap();
        m.queries = vec![DnsQuery { rrname: q.into(), rrtype: "A".into() }];
        m.answers = answers;
        m
    }

    #[test]
    fn passive_dns_maps_address_to_question_through_cnames() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let mut p = PassiveDns::new(16);
        // Real capture: www.suricata-ids.org → CNAME suricata-ids.org → A.
        p.learn(&parse(&unhex(DIG_RESPONSE)).unwrap(), 0);
        assert_eq!(p.lookup(ip("192.0.78.24"), 0), Some("www.suricata-ids.org"));
        assert_eq!(p.lookup(ip("192.0.78.25"), 0), Some("www.suricata-ids.org"));
        // TTL 244 s.
        assert_eq!(p.lookup(ip("192.0.78.24"), 243_999_999), Some("www.suricata-ids.org"));
        assert_eq!(p.lookup(ip("192.0.78.24"), 244_000_000), None);

        // The camera's lookup: a two-hop chain given out of order, mixed case, and a loop.
        let m = response(
            "litedev.ezvizlife.com",
            vec![
                answer("lb-123.elb.amazonaws.com", "A", 30, "52.1.2.3"),
                answer("LITEDEV.ezvizlife.com", "CNAME", 600, "litedev.ezviz.cdn.example"),
                answer("litedev.ezviz.cdn.example", "CNAME", 600, "lb-123.elb.amazonaws.com"),
                answer("loop-a", "CNAME", 600, "loop-b"),
                answer("loop-b", "CNAME", 600, "loop-a"),
                answer("loop-b", "AAAA", 100_000_000, "2001:0db8:0000:0000:0000:0000:0000:0001"),
            ],
        );
        p.learn(&m, 1_000_000);
        assert_eq!(p.lookup(ip("52.1.2.3"), 1_000_000), Some("litedev.ezvizlife.com"));
        // TTL 30 s clamped up to 60 s.
        assert_eq!(p.lookup(ip("52.1.2.3"), 60_999_999), Some("litedev.ezvizlife.com"));
        assert_eq!(p.lookup(ip("52.1.2.3"), 61_000_000), None);
        // Not reachable from the question: named after the chain head; TTL clamped to 24 h.
        assert_eq!(p.lookup(ip("2001:db8::1"), 1_000_000), Some("loop-a"));
        assert_eq!(p.lookup(ip("2001:db8::1"), 1_000_000 + MAX_TTL_SECS * 1_000_000), None);

        // Queries are not learnt from.
        let mut q = response("x.example", vec![answer("x.example", "A", 60, "10.9.9.9")]);
        q.response = false;
        p.learn(&q, 0);
        assert_eq!(p.lookup(ip("10.9.9.9"), 0), None);
    }

    #[test]
    fn passive_dns_is_bounded() {
        let ip = |i: u32| IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        let mut p = PassiveDns::new(3);
        assert!(p.is_empty());
        for (i, ttl) in [(1, 60), (2, 3600), (3, 3600)] {
            p.learn(
                &response(&format!("h{i}"), vec![answer(&format!("h{i}"), "A", ttl, &ip(i).to_string())]),
                0,
            );
        }
        assert_eq!(p.len(), 3);
        // At t=100 s entry 1 has expired: it goes first even though 2 is not much younger.
        p.learn(&response("h4", vec![answer("h4", "A", 3600, &ip(4).to_string())]), 100_000_000);
        assert_eq!(p.len(), 3);
        assert_eq!(p.lookup(ip(2), 100_000_000), Some("h2"));
        // Nothing expired now: the oldest learnt (2) goes; relearning 3 made it young again.
        p.learn(&response("h3", vec![answer("h3", "A", 3600, &ip(3).to_string())]), 200_000_000);
        p.learn(&response("h5", vec![answer("h5", "A", 3600, &ip(5).to_string())]), 200_000_000);
        assert_eq!(p.len(), 3);
        assert_eq!(p.lookup(ip(2), 200_000_000), None);
        for i in [3, 4, 5] {
            assert_eq!(p.lookup(ip(i), 200_000_000), Some(format!("h{i}").as_str()));
        }
        let mut zero = PassiveDns::new(0);
        zero.learn(&parse(&unhex(DIG_RESPONSE)).unwrap(), 0);
        assert!(zero.is_empty());
    }

    /// Every prefix and many corrupted variants of real messages: nothing may panic.
    #[test]
    fn hostile_input_never_panics() {
        let mut pdns = PassiveDns::new(8);
        let samples =
            [DIG_QUERY, DIG_RESPONSE, TXT_RESPONSE, A_RESPONSE, MDNS_RESPONSE, MDNS_QUERY, DLINK_SIGNAL]
                .map(unhex);
        let mut at = 0;
        crate::hostile::each_variant(&samples, |v| {
            let _ = parse_tcp(v);
            if let Ok(m) = parse(v) {
                // Whatever parses feeds the passive DNS map, which must stay bounded.
                pdns.learn(&m, at);
                at += 1;
            }
        });
        assert!(pdns.len() <= 8);
    }
}
