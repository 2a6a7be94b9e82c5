//! The bodies of the sensor's fuzz targets (`fuzz/fuzz_targets/*.rs` call these), so that a
//! crashing input kept in `fuzz/regressions/<target>/` is replayed by `cargo test` on every
//! build, not only when someone runs the fuzzer.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::analysis::app::{AppLayer, Output};
use crate::capture::{CaptureConfig, Next, Source};
use crate::decode::{decode, teredo_inner, Decoded};
use crate::detect::RuleSet;
use crate::flow::Defrag;
use crate::model::event::FlowRecord;
use crate::model::packet::linktype;
use crate::model::yaml::parse_yaml;
use crate::runtime::config::Config;
use crate::sink::journal::scan;
use crate::sink::Record;

/// A fuzz target: the name of its binary and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target.
pub const TARGETS: &[Target] = &[
    ("decode", decode_target),
    ("flow", flow_target),
    ("capture_file", capture_file_target),
    ("rules", rules_target),
    ("config", config_target),
    ("journal", journal_target),
    ("review", review_target),
];

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

/// Decoding one frame in every link type camwatch reads, and Teredo's inner packet; the plain
/// Ethernet path must agree with the full one.
pub fn decode_target(data: &[u8]) {
    assert!(crate::decode::plain_path_agrees(data), "the plain path disagrees with the full decode");
    for lt in linktype::ALL {
        if let Ok(Decoded::Ip(ip)) = decode(lt, data) {
            if let Some(inner) = teredo_inner(&ip) {
                let _ = decode(linktype::RAW, inner);
            }
        }
    }
}

/// A sequence of Ethernet frames (each prefixed by a 2-byte length) through defragmentation,
/// the flow record, TCP stream following and the application dispatcher, as a worker runs
/// them. The tables must stay within their bounds.
pub fn flow_target(data: &[u8]) {
    let mut defrag = Defrag::default();
    let mut app = AppLayer::default();
    let mut out = Output::default();
    let mut rest = data;
    let mut ts = 1;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let frame = rest.get(2..2 + len).unwrap_or(&rest[2..]);
        rest = rest.get(2 + len..).unwrap_or_default();
        ts += 1_000;
        let Ok(Decoded::Ip(ip)) = decode(linktype::ETHERNET, frame) else { continue };
        if ip.frag.is_some() {
            let _ = defrag.add(&ip, ts);
            assert!(defrag.len() <= 256);
        }
        // Flows keyed by the ports, so several frames meet in one flow.
        let rec = FlowRecord::open(u64::from(ip.src_port ^ ip.dst_port), &ip, ts);
        app.packet(&rec, &ip, ip.src_port > ip.dst_port, ts, &mut out);
        if ip.tcp_flags & 1 != 0 {
            app.end(&rec, &mut out);
        }
    }
}

/// A scratch file holding `data`, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(data: &[u8], ext: &str) -> Option<Self> {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("camwatch-fuzz-{}-{n}.{ext}", std::process::id()));
        std::fs::write(&path, data).ok()?;
        Some(Self(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A capture file (pcap or pcapng, libpcap and the pcap-file fallback) read to the end or to
/// its first error.
pub fn capture_file_target(data: &[u8]) {
    let Some(file) = Scratch::new(data, "pcap") else { return };
    let Ok(mut sources) = Source::open_all(&[], std::slice::from_ref(&file.0), &CaptureConfig::default())
    else {
        return;
    };
    for src in &mut sources {
        for _ in 0..10_000 {
            match src.next_packet() {
                Ok(Next::Packet(_)) | Ok(Next::Timeout) => {}
                Ok(Next::End) | Err(_) => break,
            }
        }
    }
}

/// A rules file through the loader and compiler (YAML, schema, names, globs, regular
/// expressions, version ranges).
pub fn rules_target(data: &[u8]) {
    let text = String::from_utf8_lossy(data).into_owned();
    let _ = RuleSet::compile(&[(PathBuf::from("fuzz.yaml"), text)]);
}

/// The sensor's config file.
pub fn config_target(data: &[u8]) {
    let _ = parse_yaml::<Config>(Path::new("fuzz.yaml"), &String::from_utf8_lossy(data));
}

/// The alert journal as the sinks read it (records, torn lines, garbage).
pub fn journal_target(data: &[u8]) {
    for line in String::from_utf8_lossy(data).lines() {
        let _ = Record::parse(line);
    }
    if let Some(file) = Scratch::new(data, "jsonl") {
        let _ = scan(&file.0, data.len() as u64, |_| {});
    }
}

/// What the review commands read back: journal records, event log lines and the times in
/// them (`camwatch investigate`, `report`, the web view).
pub fn review_target(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        let _ = crate::review::estate::parse_time(line);
        let _ = crate::review::investigate::event_summary(line);
    }
    if let Some(file) = Scratch::new(data, "jsonl") {
        let _ = crate::review::estate::read_alerts(&file.0);
        let _ = crate::review::estate::find_alert(&file.0, "aa");
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every input kept from a fuzzer crash (or a bug found another way) still runs clean: the
    /// parsers' in `crates/camwatch-proto/fuzz/regressions`, the stages' here.
    #[test]
    fn kept_crashing_inputs_no_longer_crash() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
        let n = crate::proto::fuzzing::replay_regressions(&dir, super::run).unwrap_or_else(|e| panic!("{e}"));
        assert!(n >= 3, "regression inputs missing from {}", dir.display());
    }
}
