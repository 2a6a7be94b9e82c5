//! Device identity and firmware: real Hikvision ISAPI bodies (wrapped in HTTP by the test),
//! the inventory command, and the state database across restarts.

use serde_json::Value;

use crate::util::*;

fn xml_text(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml.find(&open).unwrap_or_else(|| panic!("no <{tag}>")) + open.len();
    let end = xml[start..].find('<').unwrap() + start;
    xml[start..end].trim().to_string()
}

fn inventory(state: &std::path::Path) -> Vec<Value> {
    let out = run(bin().args(["inventory", "--format", "json", "--state"]).arg(state));
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn real_isapi_device_info_fills_the_inventory_with_its_source() {
    let body =
        std::fs::read_to_string(corpus().join("hikvision-isapi/ISAPI__System.deviceInfo__ipc1.xml")).unwrap();
    let request =
        b"GET /ISAPI/System/deviceInfo HTTP/1.1\r\nHost: 192.168.1.64\r\nUser-Agent: nvr\r\n\r\n".to_vec();
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/xml; charset=\"UTF-8\"\r\nContent-Length: {}\r\nServer: App-webs/\r\n\r\n{body}",
        body.len()
    );
    let frames = tcp_conversation(
        ([0x24, 0x28, 0xfd, 1, 1, 1], [192, 168, 1, 2], 51000),
        ([0x44, 0x47, 0xcc, 2, 2, 2], [192, 168, 1, 64], 80),
        &[(&request, response.as_bytes())],
    );
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("isapi.pcap");
    write_frames(&pcap, &frames);
    let state = dir.path().join("state.db");
    let r = crate::replay::replay(&pcap, dir.path(), &["-q", "--state", state.to_str().unwrap()]);
    let http: Vec<&Value> = r.events.iter().filter(|e| e["event_type"] == "http").collect();
    assert_eq!(http.len(), 1, "{:?}", r.events);
    assert_eq!(http[0]["http"]["url"], "/ISAPI/System/deviceInfo");
    assert_eq!(http[0]["http"]["status"], 200);

    let inv = inventory(&state);
    let cam = inv.iter().find(|d| d["ip"] == "192.168.1.64").unwrap_or_else(|| panic!("{inv:?}"));
    let id = &cam["identity"];
    assert_eq!(id["model"]["value"].as_str().unwrap(), xml_text(&body, "model"));
    assert_eq!(id["model"]["source"], "isapi");
    assert_eq!(id["serial"]["value"].as_str().unwrap(), xml_text(&body, "serialNumber"));
    let fw = id["firmware"]["value"].as_str().unwrap();
    assert!(fw.starts_with(&xml_text(&body, "firmwareVersion")), "{fw}");
    assert_eq!(id["vendor"]["value"], "Hikvision");
    let events: Vec<&Value> = r.events.iter().filter(|e| e["event_type"] == "firmware").collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["firmware"]["event"], "first_seen");
    let m = &r.metrics;
    let series = m
        .keys()
        .find(|k| k.starts_with("camwatch_device_info{") && k.contains("device=\"192.168.1.64\""))
        .unwrap_or_else(|| panic!("{}", keys(m)));
    assert!(series.contains(&format!("model=\"{}\"", xml_text(&body, "model"))), "{series}");

    // Replayed again with the same state: the firmware is known, nothing is "first seen".
    let again = crate::replay::replay(&pcap, dir.path(), &["-q", "--state", state.to_str().unwrap()]);
    assert!(!again.events.iter().any(|e| e["event_type"] == "firmware"), "baseline lost across restart");

    for format in ["table", "csv"] {
        let out = run(bin().args(["inventory", "--format", format, "--state"]).arg(&state));
        let t = text(&out.stdout);
        assert!(t.contains("192.168.1.64") && t.contains(&xml_text(&body, "model")), "{t}");
    }
}

#[test]
fn a_real_dlink_camera_reports_its_model_and_firmware_over_hnap() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let pcap = corpus().join("camera/iotsentinel_D-LinkCam_Setup-A-1-STA.pcap");
    crate::replay::replay(&pcap, dir.path(), &["-q", "--state", state.to_str().unwrap()]);
    let inv = inventory(&state);
    let cam = inv.iter().find(|d| d["ip"] == "10.10.10.37").unwrap_or_else(|| panic!("{inv:?}"));
    let id = &cam["identity"];
    assert_eq!(id["vendor"]["value"], "D-Link");
    assert_eq!(id["model"]["value"], "DCS-935L");
    assert_eq!(id["model"]["source"], "http");
    assert_eq!(id["firmware"]["value"], "1.06");
    assert_eq!(cam["mac"], "b0:c5:54:25:5b:0e");
    assert!(cam["destinations"].as_array().is_some_and(|d| !d.is_empty()));
}
