//! Conformance with peers on real third-party captures: Suricata (suricata-verify `test.yaml`
//! checks) and nDPI (`ndpiReader` `.out` files), for the fields both tools produce — DNS queries
//! and answers, TLS SNI, JA3 and JA4, HTTP host, URL and user agent, DHCP host name and vendor
//! class. Prints an agreement table; every disagreement must be listed, with its reason, in
//! `tests/conformance-expectations.yaml`, and a listed disagreement that no longer happens fails
//! too (so the file stays true).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::replay::replay;
use crate::util::*;

/// Fields compared with Suricata (path prefixes, array indices allowed).
const COMPARED: &[&str] = &[
    "dns.queries",
    "dns.answers",
    "dns.rcode",
    "tls.sni",
    "tls.ja3.hash",
    "tls.ja3.string",
    "tls.ja4",
    "http.hostname",
    "http.url",
    "http.http_user_agent",
    "http.http_method",
    "dhcp.hostname",
    "dhcp.vendor_class_identifier",
];

/// Fields that pick out which event a check is about.
const LOCATORS: &[&str] =
    &["event_type", "src_ip", "src_port", "dest_ip", "dest_port", "proto", "dns.type", "dns.id", "dhcp.id"];

/// `a.b[0].c` in a JSON value.
fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for part in path.split('.') {
        let (name, idx) = match part.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        cur = cur.get(name)?;
        if let Some(i) = idx {
            cur = cur.get(i)?;
        }
    }
    Some(cur)
}

fn same(ours: &Value, theirs: &Value) -> bool {
    match (ours, theirs) {
        // Suricata writes IPv6 addresses uncompressed.
        (Value::String(a), Value::String(b)) if a.parse::<std::net::IpAddr>().is_ok() => {
            a.parse::<std::net::IpAddr>().ok() == b.parse::<std::net::IpAddr>().ok()
        }
        // EVE DNS version 1/2 said query/answer where version 3 says request/response.
        (Value::String(a), Value::String(b))
            if matches!(
                (a.as_str(), b.as_str()),
                ("request" | "query", "query" | "request") | ("answer" | "response", "response" | "answer")
            ) =>
        {
            true
        }
        (Value::String(a), Value::String(b)) if a == "response" && b == "answer" => true,
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::String(a), Value::Number(b)) | (Value::Number(b), Value::String(a)) => a == &b.to_string(),
        (a, b) => a == b,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Deserialize)]
pub struct Expected {
    pub source: String,
    pub field: String,
    pub reason: String,
}

pub fn expectations() -> Vec<Expected> {
    let path = root().join("tests/conformance-expectations.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let list: Option<Vec<Expected>> = serde_norway::from_str(&text).unwrap();
    list.unwrap_or_default()
}

fn events_of(pcap: &Path) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    replay(pcap, dir.path(), &["-q"]).events.into_iter().map(dns_v3_view).collect()
}

/// camwatch writes DNS as Suricata 7 does (EVE DNS version 2: the question in `dns.rrname` and
/// `dns.rrtype`); the suricata-verify checks compared here are Suricata 8's (version 3: a
/// `dns.queries` list). The same content, seen in version 3's place for the comparison.
fn dns_v3_view(mut e: Value) -> Value {
    let Some(dns) = e.get_mut("dns").and_then(Value::as_object_mut) else { return e };
    if let (Some(name), Some(ty)) = (dns.get("rrname").cloned(), dns.get("rrtype").cloned()) {
        dns.insert("queries".into(), serde_json::json!([{"rrname": name, "rrtype": ty}]));
    }
    e
}

fn case_pcap(dir: &Path, yaml: &Value) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    let is_pcap = |p: &&PathBuf| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng");
    if yaml.get("pcap").is_some() {
        if let Some(p) = files
            .iter()
            .filter(is_pcap)
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("referenced__"))
        {
            return p.clone();
        }
    }
    if dir.join("input.pcap").exists() {
        return dir.join("input.pcap");
    }
    files.iter().find(is_pcap).cloned().unwrap_or_else(|| panic!("no capture in {}", dir.display()))
}

/// One comparison: (source, field) and whether camwatch agreed.
type Outcome = (String, String, bool, String);

fn suricata_outcomes() -> Vec<Outcome> {
    let root = corpus().join("suricata-verify");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).collect();
    dirs.sort();
    let mut out = Vec::new();
    for dir in dirs {
        let text = std::fs::read_to_string(dir.join("test.yaml")).unwrap();
        let yaml: Value = serde_norway::from_str(&text).unwrap();
        let checks = yaml.get("checks").and_then(Value::as_array).cloned().unwrap_or_default();
        let filters: Vec<Value> = checks
            .iter()
            .filter_map(|c| c.get("filter").cloned())
            .filter(|f| {
                let ty = f["match"]["event_type"].as_str().unwrap_or("");
                matches!(ty, "dns" | "tls" | "http" | "dhcp")
            })
            // Filters for Suricata before 8 describe its older EVE shapes (DNS responses logged
            // in the request's direction, `dns.rrname` instead of `queries`): camwatch follows 8.
            .filter(|f| f.get("requires").and_then(|r| r.get("lt-version")).is_none())
            .collect();
        if filters.is_empty() {
            continue;
        }
        let source = format!("suricata-verify/{}", dir.file_name().unwrap().to_string_lossy());
        let events = events_of(&case_pcap(&dir, &yaml));
        for f in filters {
            let Some(m) = f["match"].as_object() else { continue };
            if f.get("count").and_then(Value::as_u64) == Some(0) {
                continue;
            }
            let locate: Vec<(&String, &Value)> =
                m.iter().filter(|(k, _)| LOCATORS.contains(&k.as_str())).collect();
            let candidates: Vec<&Value> = events
                .iter()
                .filter(|e| locate.iter().all(|(k, v)| lookup(e, k).is_some_and(|o| same(o, v))))
                .collect();
            for (k, want) in m.iter().filter(|(k, _)| COMPARED.iter().any(|c| k.starts_with(c))) {
                let got: Vec<String> =
                    candidates.iter().filter_map(|e| lookup(e, k)).map(|v| v.to_string()).collect();
                let ok = candidates.iter().any(|e| lookup(e, k).is_some_and(|o| same(o, want)));
                let detail = format!("suricata {want}, camwatch {got:?}");
                out.push((source.clone(), k.clone(), ok, detail));
            }
        }
    }
    out
}

/// A flow line of an nDPI `.out` file: protocol, both endpoints and the bracketed fields.
/// (protocol, endpoint, endpoint, bracketed fields)
type NdpiFlow = (String, String, String, Vec<(String, String)>);

fn ndpi_flows(text: &str) -> Vec<NdpiFlow> {
    let mut out = Vec::new();
    for line in text.lines() {
        let t = line.trim_start();
        let Some((_, rest)) = t.split_once(char::is_whitespace) else { continue };
        let mut words = rest.split_whitespace();
        let (Some(proto), Some(a), Some(arrow), Some(b)) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            continue;
        };
        if !matches!(proto, "TCP" | "UDP") || !matches!(arrow, "<->" | "->") {
            continue;
        }
        let fields = rest
            .split('[')
            .filter_map(|f| {
                f.split_once(": ")
                    .map(|(k, v)| (k.to_string(), v.trim_end_matches(']').trim_end_matches("][").to_string()))
            })
            .map(|(k, v)| (k, v.split("][").next().unwrap_or("").to_string()))
            .collect();
        out.push((proto.to_string(), a.to_string(), b.to_string(), fields));
    }
    out
}

fn endpoint(e: &Value, ip: &str, port: &str) -> String {
    let v = e[ip].as_str().unwrap_or("");
    let p = e[port].as_u64().unwrap_or(0);
    if v.contains(':') {
        format!("[{v}]:{p}")
    } else {
        format!("{v}:{p}")
    }
}

fn ndpi_outcomes() -> Vec<Outcome> {
    let dir = corpus().join("ndpi");
    let mut outs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "out"))
        .collect();
    outs.sort();
    let mut result = Vec::new();
    for out_file in outs {
        let pcap = out_file.with_extension("");
        let source = format!("ndpi/{}", pcap.file_name().unwrap().to_string_lossy());
        let text = std::fs::read_to_string(&out_file).unwrap();
        let flows = ndpi_flows(&text);
        let compared: Vec<_> = flows
            .iter()
            .filter(|(_, _, _, f)| {
                f.iter().any(|(k, _)| matches!(k.as_str(), "Hostname/SNI" | "JA3C" | "JA4" | "User-Agent"))
            })
            .collect();
        if compared.is_empty() {
            continue;
        }
        let events = events_of(&pcap);
        for (_, a, b, fields) in compared {
            let pair: BTreeSet<&str> = [a.as_str(), b.as_str()].into();
            let mine: Vec<&Value> = events
                .iter()
                .filter(|e| {
                    let here: BTreeSet<String> =
                        [endpoint(e, "src_ip", "src_port"), endpoint(e, "dest_ip", "dest_port")].into();
                    here.iter().map(String::as_str).collect::<BTreeSet<_>>() == pair
                })
                .collect();
            for (k, want) in fields {
                let paths: &[&str] = match k.as_str() {
                    "Hostname/SNI" => &[
                        "tls.sni",
                        "http.hostname",
                        "dns.queries[0].rrname",
                        "rtsp.request.url",
                        "discovery.ssdp.host",
                    ],
                    "JA3C" => &["tls.ja3.hash"],
                    "JA4" => &["tls.ja4"],
                    "User-Agent" => {
                        &["http.http_user_agent", "rtsp.request.user_agent", "discovery.ssdp.user_agent"]
                    }
                    _ => continue,
                };
                let got: BTreeSet<String> = mine
                    .iter()
                    .flat_map(|e| paths.iter().filter_map(|p| lookup(e, p)))
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect();
                let ok = got.contains(want)
                    || (k == "Hostname/SNI" && got.iter().any(|g| g.contains(want.as_str())));
                result.push((
                    source.clone(),
                    k.clone(),
                    ok,
                    format!("nDPI {want:?}, camwatch {got:?} on {a} <-> {b}"),
                ));
            }
        }
    }
    result
}

#[test]
fn agreement_with_suricata_and_ndpi() {
    let mut outcomes = suricata_outcomes();
    outcomes.extend(ndpi_outcomes());
    assert!(outcomes.len() >= 30, "too few comparisons: {}", outcomes.len());
    let expected = expectations();
    println!("\n{:<48} {:<34} result", "source", "field");
    let mut unexplained = Vec::new();
    let mut disagreements = BTreeSet::new();
    for (source, field, ok, detail) in &outcomes {
        let listed = expected.iter().any(|e| &e.source == source && &e.field == field);
        println!(
            "{source:<48} {field:<34} {}",
            if *ok {
                "agree"
            } else if listed {
                "DIFFER (listed)"
            } else {
                "DIFFER"
            }
        );
        if !ok {
            disagreements.insert((source.clone(), field.clone()));
            if !listed {
                unexplained.push(format!("{source} {field}: {detail}"));
            }
        }
    }
    let agree = outcomes.iter().filter(|o| o.2).count();
    println!("agreement: {agree}/{} comparisons", outcomes.len());
    // tshark entries are checked by tests/oracle.rs.
    let stale: Vec<_> = expected
        .iter()
        .filter(|e| !e.source.starts_with("tshark/"))
        .filter(|e| !disagreements.contains(&(e.source.clone(), e.field.clone())))
        .collect();
    assert!(
        unexplained.is_empty(),
        "disagreements not in tests/conformance-expectations.yaml:\n{}",
        unexplained.join("\n")
    );
    assert!(stale.is_empty(), "listed disagreements that no longer happen: {stale:?}");
}
