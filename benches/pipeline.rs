//! Throughput of the packet path on a generated camera network: decoding alone, decoding plus
//! the flow table, and the whole pipeline (capture file → alerts) as `replay` runs it.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;

use camwatch::capture::Source;
use camwatch::decode::{decode, Decoded};
use camwatch::detect::RuleSet;
use camwatch::flow::{FlowConfig, FlowTable};
use camwatch::model::packet::linktype;
use camwatch::runtime::config::Config;
use camwatch::runtime::pipeline::{Outputs, Sensor};
use camwatch::telemetry::metrics::Metrics;
use camwatch_synth::{generate, write_pcap, Anomalies, Scenario};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn packet_path(c: &mut Criterion) {
    let cap = generate(&Scenario { seed: 1, anomalies: Anomalies::all(), ..Scenario::default() });
    let n = cap.packets.len() as u64;
    let mut g = c.benchmark_group("packets");
    g.throughput(Throughput::Elements(n));
    g.sample_size(10);
    g.bench_function("decode", |b| {
        b.iter(|| {
            for p in &cap.packets {
                black_box(decode(linktype::ETHERNET, &p.data).is_ok());
            }
        })
    });
    g.bench_function("decode_and_flow_table", |b| {
        b.iter(|| {
            let mut table = FlowTable::new(FlowConfig::default(), 0, 1);
            let mut ended = Vec::new();
            for p in &cap.packets {
                if let Ok(Decoded::Ip(ip)) = decode(linktype::ETHERNET, &p.data) {
                    black_box(table.track(&ip, p.ts_micros, &mut ended).0);
                }
                table.expire(p.ts_micros, &mut ended);
                ended.clear();
            }
        })
    });
    let dir = std::env::temp_dir().join(format!("camwatch-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let pcap = dir.join("net.pcap");
    if write_pcap(&pcap, &cap).is_ok() {
        let rules = RuleSet::load(&[std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules")]);
        if let Ok(rules) = rules {
            g.bench_function("pipeline_replay", |b| {
                b.iter(|| {
                    let metrics = Arc::new(Metrics::new("bench"));
                    let Ok(sensor) = Sensor::new(Config::default(), rules.clone(), metrics) else { return };
                    let Ok(src) = Source::file(&pcap) else { return };
                    let outputs = Outputs::default();
                    let summary =
                        sensor.run(vec![src], &outputs, &AtomicBool::new(false), &AtomicU64::new(0));
                    black_box(summary.map(|s| s.packets).unwrap_or(0));
                })
            });
            // The same with evidence captures: every packet goes through a worker's ring, and
            // each alert's flow is written to a pcap (a fresh directory per run: ids repeat).
            let mut run = 0u64;
            g.bench_function("pipeline_replay_with_evidence", |b| {
                b.iter(|| {
                    run += 1;
                    let metrics = Arc::new(Metrics::new("bench"));
                    let Ok(sensor) = Sensor::new(Config::default(), rules.clone(), metrics) else { return };
                    let Ok(src) = Source::file(&pcap) else { return };
                    let evidence = camwatch::alert::evidence::EvidenceConfig {
                        dir: dir.join(format!("evidence-{run}")),
                        ..Default::default()
                    };
                    let outputs = Outputs { evidence: Some(evidence), ..Outputs::default() };
                    let summary =
                        sensor.run(vec![src], &outputs, &AtomicBool::new(false), &AtomicU64::new(0));
                    black_box(summary.map(|s| s.packets).unwrap_or(0));
                })
            });
        }
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Matching one event against every shipped rule (the packs in `rules/`).
fn rules(c: &mut Criterion) {
    use camwatch::detect::fields::{Devices, EventType, Subject};
    struct Site(camwatch::model::netset::NetSet);
    impl Devices for Site {
        fn is_device(&self, ip: std::net::IpAddr) -> bool {
            self.0.contains(ip)
        }
        fn vendor(&self, _: std::net::IpAddr) -> Option<&str> {
            Some("Hikvision")
        }
        fn model(&self, _: std::net::IpAddr) -> Option<&str> {
            Some("DS-2CD2143G2-I")
        }
        fn firmware(&self, _: std::net::IpAddr) -> Option<&str> {
            Some("V5.7.3 build 220112")
        }
        fn first_seen(&self, _: std::net::IpAddr) -> Option<u64> {
            Some(0)
        }
    }
    let Ok(rules) = RuleSet::load(&[std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules")])
    else {
        return;
    };
    let cap = generate(&Scenario { seed: 1, anomalies: Anomalies::all(), ..Scenario::default() });
    // Flow starts from the generated capture.
    let mut table = FlowTable::new(FlowConfig::default(), 0, 1);
    let mut flows = Vec::new();
    for p in &cap.packets {
        if let Ok(Decoded::Ip(ip)) = decode(linktype::ETHERNET, &p.data) {
            let (t, rec) = table.track(&ip, p.ts_micros, &mut Vec::new());
            if t.new {
                flows.push(rec.clone());
            }
        }
    }
    let mut g = c.benchmark_group("rules");
    g.throughput(Throughput::Elements(flows.len() as u64));
    let site = Site(camwatch::model::netset::NetSet::private());
    g.bench_function("flow_start_all_packs", |b| {
        let mut out = Vec::new();
        b.iter(|| {
            for f in &flows {
                out.clear();
                rules.matches(
                    &Subject::from_flow(EventType::FlowStart, f, 0, Some("ntp.site.internal")),
                    &site,
                    &mut out,
                );
                black_box(out.len());
            }
        })
    });
    g.finish();
}

criterion_group!(benches, packet_path, rules);
criterion_main!(benches);
