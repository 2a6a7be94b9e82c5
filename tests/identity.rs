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

#[test]
fn generated_cameras_identity_firmware_upload_and_upgrade() {
    use camwatch::proto::firmware::Version;
    let g = generated(23, camwatch_synth::Anomalies::all());
    let state = g.dir.path().join("state.db");
    let r = crate::replay::replay(&g.pcap, g.dir.path(), &["-q", "--state", state.to_str().unwrap()]);
    let inv = inventory(&state);
    assert!(!g.truth.firmware.is_empty());
    for want in &g.truth.firmware {
        let d = inv
            .iter()
            .find(|d| d["ip"] == want.device.to_string())
            .unwrap_or_else(|| panic!("{}", want.device));
        let id = &d["identity"];
        assert_eq!(id["vendor"]["value"], want.vendor.as_str(), "{d}");
        assert_eq!(id["model"]["value"], want.model.as_str(), "{d}");
        assert_eq!(id["serial"]["value"], want.serial.as_str(), "{d}");
        let fw = id["firmware"]["value"].as_str().unwrap();
        let last = want.versions.last().unwrap();
        assert_eq!(
            Version::parse(fw).compare(&Version::parse(last)),
            Some(std::cmp::Ordering::Equal),
            "{fw} vs {last}"
        );
    }

    let up = &g.truth.firmware_uploads[0];
    let transfers: Vec<&Value> = r
        .events
        .iter()
        .filter(|e| e["firmware"]["event"] == "transfer" && e["firmware"]["direction"] == "upload")
        .collect();
    assert_eq!(transfers.len(), 1, "{transfers:?}");
    let t = &transfers[0];
    assert_eq!(t["firmware"]["sha256"], up.sha256.as_str());
    assert_eq!(t["firmware"]["size"], up.size);
    assert_eq!(t["firmware"]["completed"], true);
    assert_eq!(t["firmware"]["direction"], "upload");
    assert_eq!(t["src_ip"], up.from.to_string());
    assert_eq!(t["dest_ip"], up.device.to_string());
    assert_eq!(t["firmware"]["digicap"]["magic"], 0x484B_5753);

    let tftp = &g.truth.tftp_downloads[0];
    let fetched: Vec<&Value> = r
        .events
        .iter()
        .filter(|e| e["firmware"]["event"] == "transfer" && e["firmware"]["direction"] == "download")
        .collect();
    assert_eq!(fetched.len(), 1, "{fetched:?}");
    assert_eq!(fetched[0]["firmware"]["sha256"], tftp.sha256.as_str());
    assert_eq!(fetched[0]["firmware"]["size"], tftp.size);
    assert_eq!(fetched[0]["src_ip"], tftp.device.to_string());
    assert_eq!(fetched[0]["dest_ip"], tftp.from.to_string());

    let tftp = &g.truth.tftp_downloads[0];
    let fetched: Vec<&Value> = r
        .events
        .iter()
        .filter(|e| e["firmware"]["event"] == "transfer" && e["firmware"]["direction"] == "download")
        .collect();
    assert_eq!(fetched.len(), 1, "{fetched:?}");
    assert_eq!(fetched[0]["firmware"]["sha256"], tftp.sha256.as_str());
    assert_eq!(fetched[0]["firmware"]["size"], tftp.size);
    assert_eq!(fetched[0]["src_ip"], tftp.device.to_string());
    assert_eq!(fetched[0]["dest_ip"], tftp.from.to_string());

    let upgrades: Vec<&Value> = r
        .events
        .iter()
        .filter(|e| e["event_type"] == "firmware" && e["firmware"]["event"] == "upgraded")
        .collect();
    assert_eq!(upgrades.len(), 1, "{upgrades:?}");
    assert_eq!(upgrades[0]["firmware"]["device"], up.device.to_string());
    assert_eq!(upgrades[0]["firmware"]["version"], up.new_version.as_str());
    // Sources agree on everything else: no conflicts, no spurious firmware changes.
    let changed: Vec<&Value> = r
        .events
        .iter()
        .filter(|e| {
            e["event_type"] == "firmware"
                && !matches!(e["firmware"]["event"].as_str(), Some("first_seen" | "upgraded" | "transfer"))
        })
        .collect();
    let downgrade = g.truth.events.iter().find(|e| e.kind == "downgrade").unwrap();
    assert_eq!(changed.len(), 1, "only the planted downgrade: {changed:?}");
    assert_eq!(changed[0]["firmware"]["event"], "downgraded");
    assert_eq!(changed[0]["firmware"]["device"], downgrade.device.to_string());
    assert_eq!(changed[0]["firmware"]["version"], downgrade.detail.as_str());

    let m = &r.metrics;
    assert_eq!(
        metric(m, &format!("camwatch_firmware_changes_total{{device=\"{}\",kind=\"upgraded\"}}", up.device)),
        1.0
    );
    assert_eq!(metric(m, "camwatch_firmware_transfers_total{completed=\"true\",direction=\"upload\"}"), 1.0);
    assert_eq!(
        metric(m, "camwatch_firmware_transfers_total{completed=\"true\",direction=\"download\"}"),
        1.0
    );
    for p in ["dns", "tls", "http", "ntp", "sadp", "dhip", "wsd", "rtsp"] {
        assert!(metric(m, &format!("camwatch_app_messages_total{{protocol=\"{p}\"}}")) >= 1.0, "{p}");
    }
    let errors: f64 =
        m.iter().filter(|(k, _)| k.starts_with("camwatch_parse_errors_total")).map(|(_, v)| v).sum();
    assert_eq!(errors, 0.0, "{}", keys(m));
}

#[test]
fn a_tftp_firmware_download_is_hashed_in_block_order() {
    use etherparse::PacketBuilder;
    use sha2::{Digest, Sha256};
    let cam = ([0x44, 0x47, 0xcc, 9, 9, 9], [192, 168, 1, 64]);
    let srv = ([0x00, 0x1b, 0x21, 1, 2, 3], [192, 168, 1, 128]);
    let udp = |from: ([u8; 6], [u8; 4]), to: ([u8; 6], [u8; 4]), sp: u16, dp: u16, payload: &[u8]| {
        let mut f = Vec::new();
        PacketBuilder::ethernet2(from.0, to.0)
            .ipv4(from.1, to.1, 64)
            .udp(sp, dp)
            .write(&mut f, payload)
            .unwrap();
        f
    };
    // A U-Boot image (its magic first): a firmware image by content, whatever its name.
    let mut image: Vec<u8> = vec![0x27, 0x05, 0x19, 0x56];
    image.extend((4..5000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    let mut frames = vec![udp(cam, srv, 2000, 69, b"\x00\x01digicap.dav\x00octet\x00")];
    for (i, block) in image.chunks(512).enumerate() {
        let n = (i + 1) as u16;
        let mut data = vec![0, 3];
        data.extend_from_slice(&n.to_be_bytes());
        data.extend_from_slice(block);
        frames.push(udp(srv, cam, 3000, 2000, &data));
        if n == 3 {
            frames.push(udp(srv, cam, 3000, 2000, &data)); // a retransmission
        }
        let mut ack = vec![0, 4];
        ack.extend_from_slice(&n.to_be_bytes());
        frames.push(udp(cam, srv, 2000, 3000, &ack));
    }
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("tftp.pcap");
    write_frames(&pcap, &frames);
    let r = crate::replay::replay(&pcap, dir.path(), &["-q"]);
    let t: Vec<&Value> = r.events.iter().filter(|e| e["firmware"]["event"] == "transfer").collect();
    assert_eq!(t.len(), 1, "{:?}", r.events);
    let f = &t[0]["firmware"];
    let want: String = Sha256::digest(&image).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(f["sha256"], want.as_str());
    assert_eq!(f["size"], image.len());
    assert_eq!(f["completed"], true);
    assert_eq!(f["direction"], "download");
    assert_eq!(f["method"], "RRQ");
    assert_eq!(f["url"], "digicap.dav");
    assert_eq!((f["format"].as_str(), f["image"].as_bool()), (Some("uimage"), Some(true)));
    assert_eq!(t[0]["src_ip"], "192.168.1.64", "oriented from the client that asked");
    let alert = r.alerts.iter().find(|a| a["rule"]["id"] == "firmware-image-unapproved-download");
    assert_eq!(alert.map(|a| a["device"]["ip"].clone()), Some(Value::from("192.168.1.64")), "{:?}", r.alerts);
    // The alert carries what matched, not only the condition text: the image's hash and size.
    let values = alert.map(|a| a["evidence"]["values"].clone()).unwrap_or_default();
    assert_eq!(values["firmware.sha256"], want.as_str(), "{values}");
    assert_eq!(values["firmware.size"], image.len());
    assert_eq!(values["firmware.url"], "digicap.dav");
}

#[test]
fn a_camera_renumbered_by_dhcp_keeps_its_identity_in_events_and_state() {
    use etherparse::PacketBuilder;
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    let dir = tempfile::tempdir().unwrap();
    let cam = [0x44, 0x19, 0xb6, 0x10, 0x20, 0x30];
    let gw = [0x4c, 0x5e, 0x0c, 0x1a, 0x2b, 0x3c];
    let arp = |ip: [u8; 4]| {
        // A gratuitous ARP request: the camera announces its address (RFC 5227).
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&cam);
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
        f.extend_from_slice(&cam);
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&ip);
        f
    };
    let ntp = |ip: [u8; 4]| {
        let mut f = Vec::new();
        PacketBuilder::ethernet2(cam, gw)
            .ipv4(ip, [192, 168, 10, 1], 64)
            .udp(123, 123)
            .write(&mut f, &[0x23; 48])
            .unwrap();
        f
    };
    let t0 = 1_767_225_600u64;
    let frames = [
        (t0, arp([192, 168, 10, 11])),
        (t0 + 1, ntp([192, 168, 10, 11])),
        (t0 + 600, ntp([192, 168, 10, 71])),
        (t0 + 600, arp([192, 168, 10, 71])),
        (t0 + 601, ntp([192, 168, 10, 71])),
    ];
    let pcap = dir.path().join("renumber.pcap");
    let mut w =
        PcapWriter::with_header(std::fs::File::create(&pcap).unwrap(), PcapHeader::default()).unwrap();
    for (secs, f) in &frames {
        w.write_packet(&PcapPacket::new(std::time::Duration::from_secs(*secs), f.len() as u32, f)).unwrap();
    }
    drop(w);
    let (events, state) = (dir.path().join("events.jsonl"), dir.path().join("state.db"));
    let o = run(replay_cmd().arg(&pcap).arg("--events").arg(&events).arg("--state").arg(&state));
    assert!(o.status.success(), "{}", text(&o.stderr));
    let moved: Vec<Value> = read_jsonl(&events)
        .into_iter()
        .filter(|e| e["event_type"] == "device" && e["device"]["event"] == "renumbered")
        .collect();
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(moved[0]["device"]["ip"], "192.168.10.71");
    assert_eq!(moved[0]["device"]["previous_ip"], "192.168.10.11");
    let inv = inventory(&state);
    let ips: Vec<&str> = inv.iter().filter_map(|d| d["ip"].as_str()).collect();
    assert!(!ips.contains(&"192.168.10.11"), "the old address is gone: {ips:?}");
    let cam = inv.iter().find(|d| d["ip"] == "192.168.10.71").unwrap();
    assert_eq!(cam["mac"], "44:19:b6:10:20:30");
    // First seen at the old address: the device's history came with it.
    assert_eq!(
        camwatch::model::time::parse_rfc3339(cam["first_seen"].as_str().unwrap_or_default()),
        Some(t0 * 1_000_000)
    );
}

/// A real Reolink client session (Neolink's sample capture; the capture joins the stream inside
/// the legacy login's zero padding): every message the client sent is walked by its header and
/// logged, in order. The oracle is tshark's view of the client's TCP payloads, searched for the
/// magic: the ids after each magic must be the ids camwatch walked by lengths.
#[test]
fn a_real_baichuan_session_is_walked_message_by_message() {
    let capture = corpus().join("camera/reolink_neolink_EncryptionProtocol02_login.pcapng");
    let out = run(std::process::Command::new(tool("tshark")).arg("-r").arg(&capture).args([
        "-Y",
        "tcp.dstport == 9000 && tcp.len > 0",
        "-T",
        "fields",
        "-e",
        "tcp.payload",
    ]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let client: Vec<u8> = text(&out.stdout)
        .lines()
        .flat_map(|l| hex::decode(l.trim()).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let magic = [0xf0, 0xde, 0xbc, 0x0a];
    let expected: Vec<u64> = client
        .windows(8)
        .filter(|w| w[..4] == magic)
        .map(|w| u64::from(u32::from_le_bytes([w[4], w[5], w[6], w[7]])))
        .collect();
    assert!(expected.len() >= 10, "{expected:?}");
    let dir = tempfile::tempdir().unwrap();
    let r = crate::replay::replay(&capture, dir.path(), &["-q"]);
    let walked: Vec<u64> = r
        .events
        .iter()
        .filter(|e| e["event_type"] == "baichuan")
        .map(|e| e["baichuan"]["msg_id"].as_u64().unwrap())
        .collect();
    assert_eq!(walked, expected);
    let login = r.events.iter().find(|e| e["event_type"] == "baichuan").unwrap();
    assert_eq!(
        (login["baichuan"]["command"].as_str(), login["dest_port"].as_u64()),
        (Some("login"), Some(9000))
    );
    assert!(
        !r.metrics.keys().any(|k| k.contains("parse_errors") && k.contains("baichuan")),
        "{}",
        keys(&r.metrics)
    );
    assert!(r.events.iter().all(|e| e["event_type"] != "firmware"), "a login is no firmware transfer");
}

/// A Baichuan message as a client sends it: the modern 24-byte header (class 0x6414) with the
/// extension's length as the payload offset.
fn bc_message(msg_id: u32, msg_num: u16, extension: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut m = vec![0xf0, 0xde, 0xbc, 0x0a];
    m.extend_from_slice(&msg_id.to_le_bytes());
    m.extend_from_slice(&((extension.len() + payload.len()) as u32).to_le_bytes());
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&msg_num.to_le_bytes());
    m.extend_from_slice(&0u16.to_le_bytes());
    m.extend_from_slice(&0x6414u16.to_le_bytes());
    m.extend_from_slice(&(extension.len() as u32).to_le_bytes());
    m.extend_from_slice(extension);
    m.extend_from_slice(payload);
    m
}

/// A workstation pushes a ~100 kB Reolink image to a camera over Baichuan as Neolink's notes
/// describe message 67: the announcement (file name and size), then the image in parts whose
/// extension declares binary data. The transfer is reported with the image's SHA-256, name, size
/// and format, and the upload alerts fire (the shape rule for the management port too).
#[test]
fn a_firmware_upgrade_over_baichuan_is_a_transfer_with_its_hash() {
    use sha2::Digest;
    let mut image = vec![0x13, 0x59, 0x72, 0x32];
    image.extend((0..100_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    let name = "IPC_523128M5MP.4417_2304041319.RLC-510A.5MP.REOLINK.pak";
    let announce = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<body>\n<ConfigFileInfo version=\"1.1\">\n<fileName>{name}</fileName>\n<fileSize>{}</fileSize>\n<updateParameter>0</updateParameter>\n</ConfigFileInfo>\n</body>\n",
        image.len()
    );
    let ext = b"<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<Extension version=\"1.1\">\n<binaryData>1</binaryData>\n</Extension>\n";
    let mut upload = bc_message(67, 9, b"", announce.as_bytes());
    for part in image.chunks(0x9458 - ext.len()) {
        upload.extend(bc_message(67, 9, ext, part));
    }
    let ok = {
        let mut m = bc_message(67, 9, b"", b"");
        m[16..18].copy_from_slice(&200u16.to_le_bytes());
        m
    };
    let frames = tcp_conversation(
        ([0x00, 0x1b, 0x21, 1, 1, 1], [192, 168, 10, 77], 51000),
        ([0xec, 0x71, 0xdb, 2, 2, 2], [192, 168, 10, 13], 9000),
        &[(&upload, &ok)],
    );
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("baichuan-upgrade.pcap");
    write_frames(&pcap, &frames);
    let r = crate::replay::replay(&pcap, dir.path(), &["-q"]);
    let fw: Vec<&Value> = r.events.iter().filter(|e| e["event_type"] == "firmware").collect();
    assert_eq!(fw.len(), 1, "{fw:?}");
    let t = &fw[0]["firmware"];
    let sha: String = sha2::Sha256::digest(&image).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(t["sha256"], sha.as_str());
    assert_eq!((t["method"].as_str(), t["direction"].as_str()), (Some("BAICHUAN"), Some("upload")));
    assert_eq!((t["url"].as_str(), t["size"].as_u64()), (Some(name), Some(image.len() as u64)));
    assert_eq!(
        (t["completed"].as_bool(), t["image"].as_bool(), t["format"].as_str()),
        (Some(true), Some(true), Some("reolink_pak"))
    );
    assert_eq!(fw[0]["dest_ip"], "192.168.10.13");
    let fired: Vec<&str> = r.alerts.iter().filter_map(|a| a["rule"]["id"].as_str()).collect();
    for rule in
        ["firmware-image-unapproved", "firmware-upload-unexpected-host", "firmware-push-management-port"]
    {
        assert!(fired.contains(&rule), "{rule} not in {fired:?}");
    }
    let unapproved = r.alerts.iter().find(|a| a["rule"]["id"] == "firmware-image-unapproved").unwrap();
    assert!(unapproved.to_string().contains(&sha), "the alert carries the image's hash: {unapproved}");
    let commands: Vec<&str> = r
        .events
        .iter()
        .filter(|e| e["event_type"] == "baichuan")
        .filter_map(|e| e["baichuan"]["command"].as_str())
        .collect();
    assert!(!commands.is_empty() && commands.iter().all(|c| *c == "firmware_upgrade"), "{commands:?}");
}

/// A Dahua web page uploads firmware as a form (HTTP API V3.26 §4.12:
/// `POST /cgi-bin/upgrader.cgi?action=uploadFirmware`, multipart/form-data): the transfer's hash,
/// size, format and name are the file part's, not the form's.
#[test]
fn a_form_upload_of_firmware_is_hashed_as_its_file() {
    use sha2::Digest;
    let mut image = b"DH\x03\x04".to_vec();
    image.extend((0..300_000u32).map(|i| (i.wrapping_mul(2_246_822_519) >> 11) as u8));
    let boundary = "----WebKitFormBoundaryq2V0cGQJ3kYfC1Nk";
    let mut form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"session\"\r\n\r\n1937412\r\n--{boundary}\r\n\
Content-Disposition: form-data; name=\"file\"; filename=\"DH_IPC-HX2XXX-Nova_MultiLang_PN_Stream3_V2.800.0000000.29.R.220318.bin\"\r\n\
Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    form.extend_from_slice(&image);
    form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut request = format!(
        "POST /cgi-bin/upgrader.cgi?action=uploadFirmware HTTP/1.1\r\nHost: 192.168.10.12\r\n\
Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        form.len()
    )
    .into_bytes();
    request.extend_from_slice(&form);
    let response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK";
    let frames = tcp_conversation(
        ([0x00, 0x1b, 0x21, 1, 1, 1], [192, 168, 10, 77], 51000),
        ([0x6c, 0x1c, 0x71, 2, 2, 2], [192, 168, 10, 12], 80),
        &[(&request, response)],
    );
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("dahua-upload.pcap");
    write_frames(&pcap, &frames);
    let r = crate::replay::replay(&pcap, dir.path(), &["-q"]);
    let fw: Vec<&Value> = r.events.iter().filter(|e| e["event_type"] == "firmware").collect();
    assert_eq!(fw.len(), 1, "{fw:?}");
    let t = &fw[0]["firmware"];
    let sha: String = sha2::Sha256::digest(&image).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(t["sha256"], sha.as_str());
    assert_eq!((t["size"].as_u64(), t["completed"].as_bool()), (Some(image.len() as u64), Some(true)));
    assert_eq!((t["format"].as_str(), t["image"].as_bool()), (Some("dahua_zip"), Some(true)));
    assert!(t["filename"].as_str().unwrap_or_default().starts_with("DH_IPC-HX2XXX"), "{t}");
    let fired: Vec<&str> = r.alerts.iter().filter_map(|a| a["rule"]["id"].as_str()).collect();
    assert!(fired.contains(&"firmware-image-unapproved"), "{fired:?}");
}

/// FTP: a workstation stores a firmware image on a camera's FTP server through a passive data
/// connection (RFC 959 `PASV`, then `STOR`): the transfer is reported with the file's hash and
/// name; a camera storing a 1.5 MB snapshot on a server over an active connection (`PORT`) is
/// no firmware.
#[test]
fn an_ftp_upload_of_firmware_is_a_transfer_and_a_snapshot_is_not() {
    use sha2::Digest;
    let mut image = vec![0x13, 0x59, 0x72, 0x32];
    image.extend((0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 9) as u8));
    let (ws, cam) = (
        ([0x00, 0x1b, 0x21, 1, 1, 1], [192, 168, 10, 77]),
        ([0xec, 0x71, 0xdb, 2, 2, 2], [192, 168, 10, 13]),
    );
    let control = tcp_conversation(
        (ws.0, ws.1, 51000),
        (cam.0, cam.1, 21),
        &[
            (b"USER admin\r\n", b"220 FTP ready\r\n331 Password required\r\n"),
            (b"PASS secret\r\n", b"230 Logged in\r\n"),
            (b"TYPE I\r\n", b"200 Type set to I\r\n"),
            (b"PASV\r\n", b"227 Entering Passive Mode (192,168,10,13,195,80).\r\n"),
            (b"STOR firmware.pak\r\n", b"150 Opening BINARY mode data connection\r\n"),
        ],
    );
    let data = tcp_conversation((ws.0, ws.1, 51001), (cam.0, cam.1, 50_000), &[(&image, b"")]);
    // The camera stores a snapshot on the site's FTP server (active mode: the server connects
    // back to the camera's port 40000 and the camera sends).
    let snapshot: Vec<u8> = (0..1_500_000u32).map(|i| (i.wrapping_mul(40_503) >> 7) as u8).collect();
    let srv = ([0x00, 0x1b, 0x21, 3, 3, 3], [192, 168, 10, 5]);
    let control2 = tcp_conversation(
        (cam.0, cam.1, 52000),
        (srv.0, srv.1, 21),
        &[
            (b"USER cam\r\n", b"220 ready\r\n331 ok\r\n"),
            (b"PASS x\r\n", b"230 ok\r\n"),
            (b"PORT 192,168,10,13,156,64\r\n", b"200 PORT ok\r\n"),
            (b"STOR snap_20260101_000000.jpg\r\n", b"150 ok\r\n"),
        ],
    );
    let data2 = tcp_conversation((srv.0, srv.1, 20), (cam.0, cam.1, 40_000), &[(b"", &snapshot)]);
    let frames: Vec<Vec<u8>> = control.into_iter().chain(data).chain(control2).chain(data2).collect();
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("ftp.pcap");
    write_frames(&pcap, &frames);
    let r = crate::replay::replay(&pcap, dir.path(), &["-q"]);
    let fw: Vec<&Value> = r.events.iter().filter(|e| e["event_type"] == "firmware").collect();
    assert_eq!(fw.len(), 1, "{fw:?}");
    let t = &fw[0]["firmware"];
    let sha: String = sha2::Sha256::digest(&image).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(t["sha256"], sha.as_str());
    assert_eq!(
        (t["method"].as_str(), t["direction"].as_str(), t["url"].as_str()),
        (Some("STOR"), Some("upload"), Some("firmware.pak"))
    );
    assert_eq!((t["size"].as_u64(), t["format"].as_str()), (Some(image.len() as u64), Some("reolink_pak")));
    assert_eq!(
        (fw[0]["src_ip"].as_str(), fw[0]["dest_ip"].as_str(), fw[0]["dest_port"].as_u64()),
        (Some("192.168.10.77"), Some("192.168.10.13"), Some(21))
    );
    let fired: Vec<&str> = r.alerts.iter().filter_map(|a| a["rule"]["id"].as_str()).collect();
    assert!(fired.contains(&"firmware-image-unapproved"), "{fired:?}");
}

/// A form to a URL that does not say firmware (ACTi's `/cgi-bin/update?ISP_FIRMWARE_SAVE`) is
/// a firmware upload when its file is an image by content (a uImage here); a picture uploaded
/// through a form is not, and its request stays visible to rules.
#[test]
fn a_form_upload_is_firmware_by_its_content_not_its_url() {
    let mut uimage = vec![0x27, 0x05, 0x19, 0x56];
    uimage.extend((0..150_000u32).map(|i| (i.wrapping_mul(97) >> 3) as u8));
    let mut jpeg = vec![0xff, 0xd8, 0xff, 0xe0];
    jpeg.extend((0..150_000u32).map(|i| (i.wrapping_mul(31) >> 2) as u8));
    let post = |url: &str, name: &str, file: &[u8]| {
        let b = "---------------------------7d834b76e0708";
        let mut form =
            format!("--{b}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"{name}\"\r\n\r\n")
                .into_bytes();
        form.extend_from_slice(file);
        form.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
        let mut r = format!(
            "POST {url} HTTP/1.1\r\nHost: 192.168.10.21\r\nContent-Type: multipart/form-data; boundary={b}\r\nContent-Length: {}\r\n\r\n",
            form.len()
        )
        .into_bytes();
        r.extend_from_slice(&form);
        r
    };
    let (fw, pic) = (
        post("/cgi-bin/update?ISP_FIRMWARE_SAVE", "A1D-220-V3.12.bin", &uimage),
        post("/cgi-bin/upload_picture", "logo.jpg", &jpeg),
    );
    let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let ws = ([0x00, 0x1b, 0x21, 1, 1, 1], [192, 168, 10, 77]);
    let cam = ([0x00, 0x0f, 0x7c, 2, 2, 2], [192, 168, 10, 21]);
    let frames: Vec<Vec<u8>> = tcp_conversation((ws.0, ws.1, 51000), (cam.0, cam.1, 80), &[(&fw, ok)])
        .into_iter()
        .chain(tcp_conversation((ws.0, ws.1, 51001), (cam.0, cam.1, 80), &[(&pic, ok)]))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("forms.pcap");
    write_frames(&pcap, &frames);
    // A rule that sees the picture form's body (rules read request bodies; the log does not).
    let rules = dir.path().join("form.yaml");
    std::fs::write(
        &rules,
        "rules:\n  - id: test-form-body\n    name: Form body seen\n    severity: low\n    category: exploit\n    match:\n      event: http\n      device: dest\n      where:\n        http.request_body: { contains: logo.jpg }\n",
    )
    .unwrap();
    let r = crate::replay::replay(&pcap, dir.path(), &["-q", "--rules", rules.to_str().unwrap()]);
    let fw: Vec<&Value> = r.events.iter().filter(|e| e["event_type"] == "firmware").collect();
    assert_eq!(fw.len(), 1, "{fw:?}");
    assert_eq!(
        (fw[0]["firmware"]["format"].as_str(), fw[0]["firmware"]["filename"].as_str()),
        (Some("uimage"), Some("A1D-220-V3.12.bin"))
    );
    let seen: Vec<&Value> = r.alerts.iter().filter(|a| a["rule"]["id"] == "test-form-body").collect();
    assert_eq!(seen.len(), 1, "{:?}", r.alerts);
}

/// A firmware image sent with chunked transfer coding is hashed as the image (not its coding),
/// and the request after it on the connection is still read.
#[test]
fn a_chunked_firmware_upload_is_hashed_as_the_image() {
    use sha2::Digest;
    let mut image = vec![0x27, 0x05, 0x19, 0x56];
    image.extend((0..120_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 17) as u8));
    let mut request =
        b"PUT /ISAPI/System/updateFirmware HTTP/1.1\r\nHost: 192.168.10.11\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for part in image.chunks(7_000) {
        request.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        request.extend_from_slice(part);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    request.extend_from_slice(b"GET /ISAPI/System/status HTTP/1.1\r\nHost: 192.168.10.11\r\n\r\n");
    let response =
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let frames = tcp_conversation(
        ([0x00, 0x1b, 0x21, 1, 1, 1], [192, 168, 10, 77], 51000),
        ([0x44, 0x47, 0xcc, 2, 2, 2], [192, 168, 10, 11], 80),
        &[(&request, response)],
    );
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("chunked.pcap");
    write_frames(&pcap, &frames);
    let r = crate::replay::replay(&pcap, dir.path(), &["-q"]);
    let fw: Vec<&Value> = r.events.iter().filter(|e| e["event_type"] == "firmware").collect();
    assert_eq!(fw.len(), 1, "{fw:?}");
    let sha: String = sha2::Sha256::digest(&image).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(fw[0]["firmware"]["sha256"], sha.as_str());
    assert_eq!(fw[0]["firmware"]["size"].as_u64(), Some(image.len() as u64));
    assert_eq!(fw[0]["firmware"]["completed"].as_bool(), Some(true));
    let urls: Vec<&str> = r
        .events
        .iter()
        .filter(|e| e["event_type"] == "http")
        .filter_map(|e| e["http"]["url"].as_str())
        .collect();
    assert_eq!(urls, ["/ISAPI/System/updateFirmware", "/ISAPI/System/status"]);
}
