//! The event log validates against Suricata 7's own EVE JSON Schema
//! (`tests/data/reference/suricata-7.0-eve-schema.json`, provenance in tests/data/README.md):
//! every event the generator and every capture in the repository produce, alerts included.
//! camwatch's extensions are the top-level `camwatch`, `dest_name` and `encapsulation` keys and
//! its own event types (`tests/eve_schema.py` says exactly what is allowed).

use std::path::PathBuf;
use std::process::Command;

use crate::util::*;

fn captures() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![corpus(), root().join("rules/tests")];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap().map(Result::unwrap) {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_event_validates_against_suricata_7s_schema() {
    let g = generated(17, camwatch_synth::Anomalies::all());
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let files = captures();
    assert!(files.len() > 80, "{} captures", files.len());
    // One run over every capture (a damaged one ends with exit 1; its events still count).
    let o = run(replay_cmd().arg("-q").arg("--events").arg(&events).arg(&g.pcap).args(&files));
    assert!(o.status.code().is_some_and(|c| c <= 1), "{}", text(&o.stderr));
    let o = run(Command::new(tool("python3"))
        .arg(root().join("tests/eve_schema.py"))
        .arg(root().join("tests/data/reference/suricata-7.0-eve-schema.json"))
        .arg(&events));
    let report = text(&o.stdout);
    assert!(
        o.status.success(),
        "events that Suricata 7's schema rejects:\n{}",
        report.lines().take(40).collect::<Vec<_>>().join("\n")
    );
    // Every shared event type was checked, alerts included.
    let checked = text(&o.stderr);
    let counts: serde_json::Value =
        serde_json::from_str(checked.trim().trim_start_matches("checked ")).unwrap();
    for ty in ["flow", "dns", "http", "tls", "dhcp", "alert"] {
        assert!(counts[ty].as_u64().unwrap_or(0) > 0, "no {ty} events checked: {checked}");
    }
    // The alert records are Suricata's: signature, signature_id, severity 1-3, category,
    // metadata lists; camwatch's own record beside them.
    let alerts: Vec<serde_json::Value> =
        read_jsonl(&events).into_iter().filter(|e| e["event_type"] == "alert").collect();
    for a in &alerts {
        let s = a["alert"]["severity"].as_u64().unwrap_or(0);
        assert!((1..=3).contains(&s), "{a}");
        assert!(a["alert"]["signature"].is_string() && a["alert"]["signature_id"].as_u64().is_some(), "{a}");
        assert_eq!(a["alert"]["metadata"]["camwatch_rule"][0], a["camwatch"]["alert"]["rule"]["id"]);
        assert!(a["timestamp"].as_str().is_some_and(|t| t.ends_with("+0000")), "{a}");
        assert!(a["host"].is_string(), "{a}");
    }
}
