//! Active DNS against a real (tiny) DNS server on loopback: a listed cloud name resolved by the
//! sensor names a connection the camera made without any lookup on the wire.

use std::net::UdpSocket;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};

use crate::util::*;

/// Answers `litedev.hik-connect.com A` with 198.51.100.20, everything else NXDOMAIN.
fn dns_server() -> (String, std::thread::JoinHandle<()>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let addr = sock.local_addr().unwrap().to_string();
    let h = std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, peer)) = sock.recv_from(&mut buf) {
            let Ok(q) = Message::from_vec(&buf[..n]) else { continue };
            let mut r = Message::response(q.metadata.id, q.metadata.op_code);
            r.metadata.recursion_desired = true;
            r.metadata.recursion_available = true;
            r.metadata.message_type = MessageType::Response;
            let Some(query) = q.queries.first().cloned() else { continue };
            let name = query.name().to_ascii().trim_end_matches('.').to_string();
            if name == "litedev.hik-connect.com" {
                if query.query_type() == RecordType::A {
                    r.answers.push(Record::from_rdata(
                        query.name().clone(),
                        300,
                        RData::A("198.51.100.20".parse().unwrap()),
                    ));
                }
            } else {
                r.metadata.response_code = ResponseCode::NXDomain;
            }
            r.queries.push(query);
            if let Ok(bytes) = r.to_vec() {
                let _ = sock.send_to(&bytes, peer);
            }
        }
    });
    (addr, h)
}

#[test]
fn a_listed_cloud_name_resolved_by_the_sensor_names_an_unlooked_up_connection() {
    let (server, _h) = dns_server();
    let dir = tempfile::tempdir().unwrap();
    // A Hikvision camera connects to the cloud address; no DNS on the wire.
    let frames = tcp_conversation(
        ([0x44, 0x47, 0xcc, 1, 2, 3], [192, 168, 1, 64], 40100),
        ([0x4c, 0x5e, 0x0c, 1, 1, 1], [198, 51, 100, 20], 8666),
        &[(b"\x00\x01hello", b"\x00\x02ok")],
    );
    let pcap = dir.path().join("cloud.pcap");
    write_frames(&pcap, &frames);
    let run_with = |config: Option<&str>| {
        let alerts = dir.path().join(format!("alerts-{}.jsonl", config.is_some()));
        let mut cmd = bin();
        cmd.args(["run", "--listen", "127.0.0.1:0", "--read"])
            .arg(&pcap)
            .arg("--rules")
            .arg(rules_dir())
            .arg("--alerts")
            .arg(&alerts)
            .arg("--events")
            .arg(dir.path().join("events.jsonl"))
            .arg("--state")
            .arg(dir.path().join(format!("state-{}.db", config.is_some())));
        if let Some(c) = config {
            let path = dir.path().join("camwatch.yaml");
            std::fs::write(&path, c).unwrap();
            cmd.arg("--config").arg(path);
        }
        let mut d = Daemon::start(&mut cmd);
        let addr = d.metrics_addr();
        d.wait_for("Capture files done", Duration::from_secs(120));
        let metrics = parse_metrics(&http_get(&addr, "/metrics"));
        let (status, log) = d.stop();
        assert!(status.success(), "{}", log.join("\n"));
        (read_jsonl(&alerts), metrics)
    };

    let config = format!("active_dns:\n  enabled: true\n  servers: [\"{server}\"]\n  startup_wait: 20s\n");
    let (alerts, m) = run_with(Some(&config));
    let cloud = alerts.iter().find(|a| a["rule"]["id"] == "hikvision-cloud-connection");
    let cloud = cloud.unwrap_or_else(|| panic!("no cloud alert: {alerts:?}"));
    assert_eq!(cloud["dest_name"], "litedev.hik-connect.com");
    assert_eq!(cloud["device"]["ip"], "192.168.1.64");
    assert!(metric(&m, "camwatch_active_dns_lookups_total{result=\"ok\"}") >= 1.0);
    assert!(
        metric(&m, "camwatch_active_dns_lookups_total{result=\"error\"}") >= 1.0,
        "the other names are NXDOMAIN"
    );

    // Without active DNS the same connection is only an egress.
    let (alerts, _) = run_with(None);
    assert!(alerts.iter().all(|a| a["rule"]["id"] != "hikvision-cloud-connection"), "{alerts:?}");
    assert!(alerts.iter().any(|a| a["rule"]["id"] == "egress-outside-allowed"));
}
