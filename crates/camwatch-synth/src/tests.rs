//! Tests of the synthetic capture generator: determinism, ground truth against an independent
//! recount with etherparse, TCP sequence bookkeeping, and a tshark dissection check.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::Command;
use std::sync::OnceLock;

use etherparse::{LinkSlice, NetSlice, SlicedPacket, TransportSlice};

use super::plan::{ALL_DNS_NAMES, ALL_SNIS};
use super::*;

/// The default scenario with every anomaly, generated once for all tests that only read it.
fn all_anomalies() -> &'static Capture {
    static CAP: OnceLock<Capture> = OnceLock::new();
    CAP.get_or_init(|| generate(&Scenario { anomalies: Anomalies::all(), ..Scenario::default() }))
}

/// The default scenario without anomalies, generated once.
fn baseline() -> &'static Capture {
    static CAP: OnceLock<Capture> = OnceLock::new();
    CAP.get_or_init(|| generate(&Scenario::default()))
}

/// The one truth event of `kind`.
fn event<'a>(cap: &'a Capture, kind: &str) -> &'a TruthEvent {
    let mut found = cap.truth.events.iter().filter(|e| e.kind == kind);
    let e = found.next().unwrap_or_else(|| panic!("no {kind} event"));
    assert!(found.next().is_none(), "more than one {kind} event");
    e
}

/// A short scenario for tests that generate many captures.
fn short(seed: u64, anomalies: Anomalies) -> Capture {
    generate(&Scenario { seed, duration_secs: 30, anomalies, upload_bytes: 200_000, ..Scenario::default() })
}

fn pcap_bytes(cap: &Capture) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cap.pcap");
    write_pcap(&path, cap).unwrap();
    std::fs::read(&path).unwrap()
}

/// One decoded IPv4 TCP/UDP packet.
struct Ip<'a> {
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: SocketAddrV4,
    dst: SocketAddrV4,
    proto: u8,
    total_len: u16,
    id: u16,
    ttl: u8,
    df: bool,
    tcp: Option<etherparse::TcpSlice<'a>>,
    payload: &'a [u8],
}

fn decode(frame: &[u8]) -> Option<Ip<'_>> {
    let sliced = SlicedPacket::from_ethernet(frame).unwrap();
    let Some(LinkSlice::Ethernet2(eth)) = &sliced.link else {
        panic!("not Ethernet II");
    };
    let Some(NetSlice::Ipv4(ip)) = &sliced.net else {
        return None;
    };
    let h = ip.header();
    let (sport, dport, proto, tcp, payload) = match sliced.transport.clone() {
        Some(TransportSlice::Tcp(t)) => {
            (t.source_port(), t.destination_port(), 6, Some(t.clone()), t.payload())
        }
        Some(TransportSlice::Udp(u)) => (u.source_port(), u.destination_port(), 17, None, u.payload()),
        other => panic!("unexpected transport {other:?}"),
    };
    Some(Ip {
        src_mac: eth.source(),
        dst_mac: eth.destination(),
        src: SocketAddrV4::new(h.source_addr(), sport),
        dst: SocketAddrV4::new(h.destination_addr(), dport),
        proto,
        total_len: h.total_len(),
        id: h.identification(),
        ttl: h.ttl(),
        df: h.dont_fragment(),
        tcp,
        payload,
    })
}

type FlowKey = (u8, SocketAddrV4, SocketAddrV4);

/// Flow totals recounted from the frames, keyed by the truth's (initiator-first) 5-tuple.
fn recount_flows(cap: &Capture) -> BTreeMap<FlowKey, [u64; 4]> {
    let initiators: HashSet<FlowKey> = cap.truth.flows.iter().map(|f| (f.proto, f.src, f.dst)).collect();
    let mut out: BTreeMap<FlowKey, [u64; 4]> = BTreeMap::new();
    for p in &cap.packets {
        let Some(ip) = decode(&p.data) else { continue };
        let fwd_key = (ip.proto, ip.src, ip.dst);
        let rev_key = (ip.proto, ip.dst, ip.src);
        let len = u64::from(ip.total_len);
        if initiators.contains(&fwd_key) {
            let e = out.entry(fwd_key).or_default();
            e[0] += 1;
            e[2] += len;
        } else {
            assert!(initiators.contains(&rev_key), "packet {fwd_key:?} belongs to no truth flow");
            let e = out.entry(rev_key).or_default();
            e[1] += 1;
            e[3] += len;
        }
    }
    out
}

fn public_unicast(ip: Ipv4Addr) -> bool {
    !(ip.is_private() || ip.is_multicast() || ip.is_broadcast() || ip.is_loopback() || ip.is_link_local())
}

#[test]
fn parse_list_accepts_names_all_and_none() {
    assert_eq!(Anomalies::parse_list("all").unwrap(), Anomalies::all());
    assert_eq!(Anomalies::parse_list("none").unwrap(), Anomalies::default());
    assert_eq!(Anomalies::parse_list("").unwrap(), Anomalies::default());
    let a = Anomalies::parse_list("egress, upload").unwrap();
    assert!(a.egress && a.upload && !a.cloud && !a.exploit && !a.firmware);
    let five = Anomalies::parse_list("egress,cloud,exploit,upload,firmware").unwrap();
    assert_eq!(
        five,
        Anomalies {
            egress: true,
            cloud: true,
            exploit: true,
            upload: true,
            firmware: true,
            ..Anomalies::default()
        }
    );
    assert_eq!(
        Anomalies::parse_list("Firmware").unwrap(),
        Anomalies { firmware: true, ..Anomalies::default() }
    );
    assert!(Anomalies::parse_list("egress,bogus").is_err());
    let every = "egress,cloud,exploit,upload,firmware,dahua_exploit,telnet,lateral,downgrade,cloud_enabled,\
                 vulnerable_firmware,tftp_firmware";
    assert_eq!(Anomalies::all().to_string(), every);
    assert_eq!(Anomalies::parse_list(every).unwrap(), Anomalies::all());
    assert_eq!(Anomalies::NAMES.join(","), every);
    // Each keyword sets exactly its own flag.
    for (k, name) in Anomalies::NAMES.iter().enumerate() {
        assert_eq!(Anomalies::parse_list(name).unwrap().to_string(), *name);
        let prefix = Anomalies::NAMES[..=k].join(",");
        assert_eq!(Anomalies::parse_list(&prefix).unwrap().to_string(), prefix);
    }
    assert_eq!(
        Anomalies::parse_list(" Telnet ,tftp_firmware").unwrap(),
        Anomalies { telnet: true, tftp_firmware: true, ..Anomalies::default() }
    );
    assert!(Anomalies::parse_list("tftp").is_err());
    assert_eq!(Anomalies::parse_list(&Anomalies::all().to_string()).unwrap(), Anomalies::all());
    assert_eq!(Anomalies::default().to_string(), "none");
}

#[test]
fn same_seed_is_byte_identical_and_other_seed_keeps_structure() {
    let a = short(7, Anomalies::all());
    let b = short(7, Anomalies::all());
    assert_eq!(a.packets, b.packets);
    assert_eq!(a.truth, b.truth);
    assert_eq!(pcap_bytes(&a), pcap_bytes(&b));

    let c = short(8, Anomalies::all());
    assert_ne!(pcap_bytes(&a), pcap_bytes(&c));
    // Same structure: the same hosts and roles, the same conversations (up to ephemeral
    // ports: a conversation is keyed by its lower port, the service one, or by none if both
    // are ephemeral, as in a TFTP transfer), the same egress and the same identities.
    let hosts = |cap: &Capture| -> Vec<(Ipv4Addr, String, String)> {
        cap.truth.devices.iter().map(|d| (d.ip, d.vendor.clone(), d.role.clone())).collect()
    };
    assert_eq!(hosts(&a), hosts(&c));
    let convs = |cap: &Capture| -> Vec<(u8, Ipv4Addr, Ipv4Addr, u16)> {
        let mut v: Vec<_> = cap
            .truth
            .flows
            .iter()
            .map(|f| {
                let port = f.src.port().min(f.dst.port());
                (f.proto, *f.src.ip(), *f.dst.ip(), if port < 32_768 { port } else { 0 })
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(convs(&a), convs(&c));
    let egress = |cap: &Capture| -> Vec<String> {
        let mut v: Vec<String> = cap.truth.egress.iter().map(|e| format!("{e:?}")).collect();
        v.sort();
        v
    };
    assert_eq!(egress(&a), egress(&c));
    // (Whether a 30 s capture shows the upgraded camera's next announcement depends on when
    // things happen; from a minute on it always does, see the test below.)
    let identities = |cap: &Capture| -> Vec<(Ipv4Addr, String, String, String)> {
        cap.truth
            .firmware
            .iter()
            .map(|f| (f.device, f.vendor.clone(), f.model.clone(), f.versions[0].clone()))
            .collect()
    };
    assert_eq!(identities(&a), identities(&c));
    let uploads = |cap: &Capture| -> Vec<(Ipv4Addr, Ipv4Addr, u64, String)> {
        cap.truth.firmware_uploads.iter().map(|u| (u.device, u.from, u.size, u.new_version.clone())).collect()
    };
    assert_eq!(uploads(&a), uploads(&c));
    assert_ne!(a.truth.firmware_uploads[0].sha256, c.truth.firmware_uploads[0].sha256);
    let tftp = |cap: &Capture| -> Vec<(Ipv4Addr, Ipv4Addr, u64, String)> {
        cap.truth.tftp_downloads.iter().map(|u| (u.device, u.from, u.size, u.new_version.clone())).collect()
    };
    assert_eq!(tftp(&a), tftp(&c));
    assert_ne!(a.truth.tftp_downloads[0].sha256, c.truth.tftp_downloads[0].sha256);
    assert_eq!(a.truth.events, c.truth.events);
}

#[test]
fn anomaly_toggles_change_egress_as_expected() {
    let none = short(3, Anomalies::default());
    assert!(none.truth.egress.is_empty());
    let kinds = |cap: &Capture| -> Vec<(Ipv4Addr, u16, u8, String)> {
        let mut v: Vec<_> =
            cap.truth.egress.iter().map(|e| (e.dest, e.dest_port, e.proto, e.kind.clone())).collect();
        v.sort();
        v
    };
    let one = |f: fn(&mut Anomalies)| {
        let mut a = Anomalies::default();
        f(&mut a);
        short(3, a)
    };

    let egress = one(|a| a.egress = true);
    assert_eq!(kinds(&egress), vec![(Ipv4Addr::new(203, 0, 113, 50), 443, 6, "egress".into())]);
    let cloud = one(|a| a.cloud = true);
    assert_eq!(
        kinds(&cloud),
        vec![
            (Ipv4Addr::new(198, 51, 100, 20), 8666, 6, "cloud".into()),
            (Ipv4Addr::new(198, 51, 100, 30), 8800, 17, "cloud".into()),
        ]
    );
    let upload = one(|a| a.upload = true);
    assert_eq!(kinds(&upload), vec![(Ipv4Addr::new(203, 0, 113, 80), 443, 6, "upload".into())]);
    let upload_flow =
        upload.truth.flows.iter().find(|f| f.dst.ip() == &Ipv4Addr::new(203, 0, 113, 80)).unwrap();
    assert!(upload_flow.bytes_fwd > 200_000 && upload_flow.packets_fwd > 200_000 / 1448);

    // The exploit is inbound (workstation and internet scanner → camera): no egress, but the
    // workstation shows up as a device and the scanner's flow is present.
    let exploit = one(|a| a.exploit = true);
    assert!(exploit.truth.egress.is_empty());
    let ws = Ipv4Addr::new(192, 168, 10, 50);
    assert!(exploit.truth.devices.iter().any(|d| d.ip == ws && d.role == "workstation"));
    assert!(!none.truth.devices.iter().any(|d| d.ip == ws));
    assert!(exploit
        .truth
        .flows
        .iter()
        .any(|f| f.src.ip() == &Ipv4Addr::new(198, 51, 100, 66) && f.dst.port() == 80));
    assert_eq!(exploit.truth.flows.iter().filter(|f| f.src.ip() == &ws).count(), 2);

    // The firmware upload is local (workstation → Hikvision camera): no egress.
    let firmware = one(|a| a.firmware = true);
    assert!(firmware.truth.egress.is_empty());
    assert!(firmware.truth.devices.iter().any(|d| d.ip == ws && d.role == "workstation"));
    let put: Vec<_> = firmware.truth.flows.iter().filter(|f| f.src.ip() == &ws).collect();
    assert_eq!(put.len(), 1);
    assert_eq!((put[0].dst.ip(), put[0].dst.port(), put[0].proto), (&Ipv4Addr::new(192, 168, 10, 11), 80, 6));
    assert!(put[0].bytes_fwd > 600_000);
    assert_eq!(firmware.truth.firmware_uploads.len(), 1);
    assert!(none.truth.firmware_uploads.is_empty() && !none.truth.firmware.is_empty());

    // The new anomalies are all local: no egress, each with its own conversations and events.
    let (hik1, dahua2, hik2) =
        (Ipv4Addr::new(192, 168, 10, 11), Ipv4Addr::new(192, 168, 10, 15), Ipv4Addr::new(192, 168, 10, 14));
    let tftp_ip = Ipv4Addr::new(192, 168, 10, 60);
    let new_flows = |cap: &Capture| -> Vec<(u8, Ipv4Addr, Ipv4Addr, u16)> {
        let base: HashSet<_> = none.truth.flows.iter().map(|f| format!("{f:?}")).collect();
        cap.truth
            .flows
            .iter()
            .filter(|f| !base.contains(&format!("{f:?}")))
            .map(|f| {
                (f.proto, *f.src.ip(), *f.dst.ip(), if f.dst.port() < 32_768 { f.dst.port() } else { 0 })
            })
            .collect()
    };
    let events = |cap: &Capture| -> Vec<(String, Ipv4Addr, Option<Ipv4Addr>, String)> {
        cap.truth.events.iter().map(|e| (e.kind.clone(), e.device, e.peer, e.detail.clone())).collect()
    };
    assert!(none.truth.events.is_empty() && none.truth.tftp_downloads.is_empty());
    for cap in [&egress, &cloud, &upload, &exploit, &firmware] {
        assert!(cap.truth.events.is_empty() && cap.truth.tftp_downloads.is_empty());
    }

    let dahua = one(|a| a.dahua_exploit = true);
    assert!(dahua.truth.egress.is_empty());
    assert_eq!(new_flows(&dahua), vec![(6, ws, dahua2, 80); 2]);
    assert_eq!(
        events(&dahua),
        ["CVE-2021-33044", "CVE-2021-33045"].map(|cve| (
            "dahua_exploit".into(),
            dahua2,
            Some(ws),
            cve.into()
        ))
    );

    let telnet = one(|a| a.telnet = true);
    assert!(telnet.truth.egress.is_empty());
    assert_eq!(new_flows(&telnet), vec![(6, ws, hik2, 23)]);
    assert_eq!(events(&telnet), vec![("telnet".into(), hik2, Some(ws), "23/tcp".into())]);

    let lateral = one(|a| a.lateral = true);
    assert_eq!(new_flows(&lateral), vec![(6, dahua2, hik1, 80)]);
    assert_eq!(events(&lateral), vec![("lateral".into(), dahua2, Some(hik1), "80/tcp".into())]);
    assert!(!lateral.truth.devices.iter().any(|d| d.ip == ws));

    // 30 s hold one DHIP announcement per camera: no room for a downgrade to show, so nothing
    // changes (see `downgrade_is_announced_in_the_second_half` for longer captures).
    let downgrade = one(|a| a.downgrade = true);
    assert_eq!(downgrade.packets, none.packets);
    assert!(downgrade.truth.events.is_empty());

    let cloud_enabled = one(|a| a.cloud_enabled = true);
    // The NVR's new request, and the camera's SADP flow whose Hellos are one byte shorter.
    let mut changed = new_flows(&cloud_enabled);
    changed.sort();
    assert_eq!(
        changed,
        [(6, Ipv4Addr::new(192, 168, 10, 2), hik1, 80), (17, hik1, Ipv4Addr::new(239, 255, 255, 250), 0)]
    );
    assert_eq!(
        events(&cloud_enabled),
        vec![("cloud_enabled".into(), hik1, None, "litedev.hik-connect.com".into())]
    );

    // Same lengths, so the same flows; only the camera's reported version differs.
    let vulnerable = one(|a| a.vulnerable_firmware = true);
    assert_eq!(vulnerable.truth.flows, none.truth.flows);
    assert_eq!(
        events(&vulnerable),
        vec![("vulnerable_firmware".into(), hik2, None, "V5.4.1build 160525".into())]
    );
    let versions: Vec<_> = vulnerable.truth.firmware.iter().map(|f| (f.device, f.versions.clone())).collect();
    for (device, v) in versions {
        let normal = none.truth.firmware.iter().find(|f| f.device == device).unwrap();
        let want =
            if device == hik2 { vec!["V5.4.1build 160525".to_string()] } else { normal.versions.clone() };
        assert_eq!(v, want);
    }

    let tftp = one(|a| a.tftp_firmware = true);
    assert!(tftp.truth.egress.is_empty());
    assert_eq!(new_flows(&tftp), vec![(17, hik1, tftp_ip, 69), (17, tftp_ip, hik1, 0)]);
    assert_eq!(events(&tftp), vec![("tftp_firmware".into(), hik1, Some(tftp_ip), "digicap.dav".into())]);
    let d = &tftp.truth.tftp_downloads[..];
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].device, d[0].from, d[0].size, d[0].new_version.as_str()), (hik1, tftp_ip, 100_000, ""));
    let server = tftp.truth.devices.iter().find(|d| d.ip == tftp_ip).unwrap();
    assert_eq!(
        (server.vendor.as_str(), server.role.as_str(), server.mac[..3].to_vec()),
        ("TFTP", "server", vec![0xb8, 0x27, 0xeb])
    );
    assert!(!none.truth.devices.iter().any(|d| d.ip == tftp_ip));
    // Request, then 196 blocks (195 full, one of 160 bytes), each acknowledged.
    let transfer = tftp.truth.flows.iter().find(|f| *f.src.ip() == tftp_ip).unwrap();
    assert_eq!((transfer.packets_fwd, transfer.packets_rev), (196, 196));
    assert_eq!(transfer.bytes_fwd, 196 * 32 + 100_000);

    let all = short(3, Anomalies::all());
    assert_eq!(all.truth.egress.len(), 4);
    for e in &all.truth.egress {
        assert!(e.device.is_private() && public_unicast(e.dest));
    }
    let kinds: Vec<&str> = all.truth.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "dahua_exploit",
            "dahua_exploit",
            "telnet",
            "lateral",
            "cloud_enabled",
            "vulnerable_firmware",
            "tftp_firmware"
        ]
    );

    // Anomalies only add traffic: every baseline flow is unchanged, except that the SADP Hellos
    // of the `cloud_enabled` camera say `true` instead of `false` (one byte shorter).
    let all_flows: HashSet<_> = all.truth.flows.iter().map(|f| format!("{f:?}")).collect();
    for f in &none.truth.flows {
        if f.src == SocketAddrV4::new(hik1, 37_020) {
            let a = all.truth.flows.iter().find(|a| a.src == f.src).unwrap();
            assert_eq!(a.packets_fwd, f.packets_fwd);
            assert_eq!(a.bytes_fwd, f.bytes_fwd - f.packets_fwd);
            continue;
        }
        assert!(all_flows.contains(&format!("{f:?}")), "baseline flow changed: {f:?}");
    }
    // Every camera keeps its identity, apart from the firmware the upgraded or downgraded one may
    // report afterwards and the vulnerable one's (whose model is one the advisory lists).
    for (n, a) in none.truth.firmware.iter().zip(&all.truth.firmware) {
        let model = if a.device == hik2 { crate::net::VULNERABLE_HIK_MODEL } else { n.model.as_str() };
        assert_eq!(
            (n.device, &n.vendor, model, &n.serial),
            (a.device, &a.vendor, a.model.as_str(), &a.serial)
        );
        if a.device == hik2 {
            assert_eq!(a.versions, ["V5.4.1build 160525"]);
        } else {
            assert_eq!(n.versions[..], a.versions[..n.versions.len()]);
        }
    }
}

/// Per flow (keyed as in the truth), every packet's time, direction and transport-layer bytes
/// (header and payload: everything but the link and IP headers, whose identification field
/// depends on what else the host sends).
fn flow_packets(cap: &Capture) -> HashMap<FlowKey, Vec<(u64, bool, Vec<u8>)>> {
    let initiators: HashSet<FlowKey> = cap.truth.flows.iter().map(|f| (f.proto, f.src, f.dst)).collect();
    let mut out: HashMap<FlowKey, Vec<(u64, bool, Vec<u8>)>> = HashMap::new();
    for p in &cap.packets {
        let Some(ip) = decode(&p.data) else { continue };
        let fwd = initiators.contains(&(ip.proto, ip.src, ip.dst));
        let key = if fwd { (ip.proto, ip.src, ip.dst) } else { (ip.proto, ip.dst, ip.src) };
        out.entry(key).or_default().push((p.ts_micros, fwd, p.data[14 + 20..].to_vec()));
    }
    out
}

#[test]
fn anomalies_leave_baseline_packets_byte_identical() {
    let (none, all) = (baseline(), all_anomalies());
    let base = flow_packets(none);
    let with = flow_packets(all);
    let upgraded = all.truth.firmware_uploads[0].device;
    let (cloud, vulnerable, downgraded) = (
        event(all, "cloud_enabled").device,
        event(all, "vulnerable_firmware").device,
        event(all, "downgrade").device,
    );
    let nvr = Ipv4Addr::new(192, 168, 10, 2);
    let mut exempt = 0;
    for (key, packets) in &base {
        let got = with.get(key).unwrap_or_else(|| panic!("baseline flow {key:?} missing"));
        let (_, src, dst) = *key;
        // The permitted exceptions: announcements and device information that carry the
        // firmware (same length), the vulnerable camera's model (same length, WS-Discovery
        // too) or HCPlatformEnable (one byte shorter) the anomaly changes.
        let sadp = (src.port() == 37_020 && [upgraded, cloud, vulnerable].contains(src.ip()))
            || (src.port() == 3702 && *src.ip() == vulnerable);
        let dhip = src.port() == 37_810 && *src.ip() == downgraded;
        let isapi = *src.ip() == nvr && *dst.ip() == vulnerable && dst.port() == 80;
        if sadp || dhip || isapi {
            exempt += 1;
            assert_eq!(got.len(), packets.len(), "{key:?}");
            for (a, b) in packets.iter().zip(got) {
                assert_eq!((a.0, a.1), (b.0, b.1), "{key:?}");
                let shorter = usize::from(*src.ip() == cloud && sadp);
                assert_eq!(a.2.len(), b.2.len() + shorter, "{key:?}");
            }
            continue;
        }
        assert!(packets == got, "baseline flow {key:?} changed");
    }
    // Upgraded and cloud-enabled are the same camera here.
    assert_eq!((upgraded, cloud), (Ipv4Addr::new(192, 168, 10, 11), Ipv4Addr::new(192, 168, 10, 11)));
    assert_eq!(exempt, 5);
    // Every baseline ARP frame is still there.
    let arp = |cap: &Capture| -> Vec<Vec<u8>> {
        let mut v: Vec<_> =
            cap.packets.iter().filter(|p| p.data[12..14] == [8, 6]).map(|p| p.data.clone()).collect();
        v.sort();
        v
    };
    let with_arp = arp(all);
    assert!(arp(none).iter().all(|f| with_arp.binary_search(f).is_ok()));
}

#[test]
fn totals_timestamps_and_truth_counts_match_the_frames() {
    let cap = all_anomalies();
    assert_eq!(cap.truth.packets, cap.packets.len() as u64);
    assert_eq!(cap.truth.bytes, cap.packets.iter().map(|p| p.data.len() as u64).sum::<u64>());
    assert_eq!(cap.packets[0].ts_micros, DEFAULT_START_UNIX * 1_000_000);
    assert!(cap.packets.windows(2).all(|w| w[0].ts_micros <= w[1].ts_micros));
    let span = cap.packets.last().unwrap().ts_micros - cap.packets[0].ts_micros;
    assert!((115_000_000..=120_000_000).contains(&span), "span {span}");

    // Flows: the truth equals an independent recount by 5-tuple.
    let recount = recount_flows(cap);
    assert_eq!(recount.len(), cap.truth.flows.len());
    for f in &cap.truth.flows {
        let got = recount[&(f.proto, f.src, f.dst)];
        assert_eq!(got, [f.packets_fwd, f.packets_rev, f.bytes_fwd, f.bytes_rev], "flow {f:?}");
    }
    let keys: HashSet<_> = cap.truth.flows.iter().map(|f| (f.proto, f.src, f.dst)).collect();
    assert_eq!(keys.len(), cap.truth.flows.len(), "5-tuples must be unique");

    // Devices: exactly the private sources, with the MAC they send from.
    let mut seen: BTreeMap<Ipv4Addr, [u8; 6]> = BTreeMap::new();
    for p in &cap.packets {
        if let Some(ip) = decode(&p.data) {
            if ip.src.ip().is_private() {
                let mac = *seen.entry(*ip.src.ip()).or_insert(ip.src_mac);
                assert_eq!(mac, ip.src_mac);
            }
        }
    }
    let truth: BTreeMap<Ipv4Addr, [u8; 6]> = cap.truth.devices.iter().map(|d| (d.ip, d.mac)).collect();
    assert_eq!(seen, truth);
    let roles: BTreeSet<&str> = cap.truth.devices.iter().map(|d| d.role.as_str()).collect();
    assert_eq!(roles, BTreeSet::from(["camera", "gateway", "nvr", "server", "workstation"]));
    let cameras: Vec<&TruthDevice> = cap.truth.devices.iter().filter(|d| d.role == "camera").collect();
    assert_eq!(cameras.len(), 6);
    for vendor in ["Hikvision", "Dahua", "Axis"] {
        assert_eq!(cameras.iter().filter(|d| d.vendor == vendor).count(), 2);
    }

    // Egress: exactly the flows from private devices to public unicast addresses.
    let expected: Vec<_> = cap
        .truth
        .flows
        .iter()
        .filter(|f| f.src.ip().is_private() && public_unicast(*f.dst.ip()))
        .map(|f| (*f.src.ip(), *f.dst.ip(), f.dst.port(), f.proto))
        .collect();
    let got: Vec<_> = cap.truth.egress.iter().map(|e| (e.device, e.dest, e.dest_port, e.proto)).collect();
    assert_eq!(got, expected);
}

#[test]
fn default_capture_stays_small() {
    for anomalies in [Anomalies::all(), Anomalies::default()] {
        let cap = if anomalies == Anomalies::all() {
            all_anomalies().clone()
        } else {
            generate(&Scenario::default())
        };
        let pcap_len = 24 + cap.truth.bytes + 16 * cap.truth.packets;
        assert!(pcap_len <= 25_000_000, "{anomalies}: {pcap_len} bytes");
    }
}

#[test]
fn ip_headers_arp_and_checksums_are_sane() {
    let cap = all_anomalies();
    let mut last_id: HashMap<Ipv4Addr, u16> = HashMap::new();
    let mut resolved: HashSet<([u8; 6], [u8; 6])> = HashSet::new();
    for p in &cap.packets {
        let d = &p.data;
        if d[12..14] == [0x08, 0x06] {
            // ARP: remember replies as resolving both directions.
            if d[20..22] == [0, 2] {
                let (a, b): ([u8; 6], [u8; 6]) =
                    (d[22..28].try_into().unwrap(), d[32..38].try_into().unwrap());
                resolved.insert((a, b));
                resolved.insert((b, a));
            }
            continue;
        }
        let ip = decode(d).expect("only ARP and IPv4 on the wire");
        assert_eq!(ip.ttl, 64);
        assert_eq!(usize::from(ip.total_len) + 14, d.len());
        assert!(d.len() <= 1514, "frame of {} bytes from {}", d.len(), ip.src);
        if ip.dst.ip().is_multicast() {
            let o = ip.dst.ip().octets();
            assert_eq!(ip.dst_mac, [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]);
            assert!(!ip.df);
        } else {
            assert!(ip.df);
            assert!(resolved.contains(&(ip.src_mac, ip.dst_mac)), "{} → {} before ARP", ip.src, ip.dst);
        }
        if let Some(prev) = last_id.insert(*ip.src.ip(), ip.id) {
            assert_eq!(ip.id, prev.wrapping_add(1), "IP id of {}", ip.src.ip());
        }
        // Checksums.
        let sliced = SlicedPacket::from_ethernet(d).unwrap();
        let Some(NetSlice::Ipv4(v4)) = &sliced.net else { unreachable!() };
        let header = v4.header().to_header();
        assert_eq!(header.calc_header_checksum(), header.header_checksum);
        match &sliced.transport {
            Some(TransportSlice::Tcp(t)) => {
                let sum = t.to_header().calc_checksum_ipv4(&header, t.payload()).unwrap();
                assert_eq!(sum, t.checksum());
            }
            Some(TransportSlice::Udp(u)) => {
                let sum = u.to_header().calc_checksum_ipv4(&header, u.payload()).unwrap();
                assert_eq!(sum, u.checksum());
            }
            _ => unreachable!(),
        }
        // Outside hosts are reached through the gateway.
        if public_unicast(*ip.dst.ip()) {
            assert_eq!(ip.dst_mac[..3], [0x4c, 0x5e, 0x0c]);
        }
    }
}

#[derive(Default)]
struct Dir {
    /// Next expected sequence number.
    next: Option<u32>,
    /// Last acknowledgement number sent.
    ack: Option<u32>,
    fin: bool,
}

#[test]
fn tcp_sequence_and_ack_numbers_are_consistent() {
    for cap in [all_anomalies().clone(), short(99, Anomalies::all())] {
        let mut conns: HashMap<(SocketAddrV4, SocketAddrV4), Dir> = HashMap::new();
        for p in &cap.packets {
            let Some(ip) = decode(&p.data) else { continue };
            let Some(t) = &ip.tcp else { continue };
            let (me, peer) = ((ip.src, ip.dst), (ip.dst, ip.src));
            let len = t.payload().len() as u32;
            let seq = t.sequence_number();
            if t.syn() {
                assert!(!conns.contains_key(&me), "second SYN on {me:?}");
                if t.ack() {
                    let c = &conns[&peer];
                    assert_eq!(Some(t.acknowledgment_number()), c.next, "SYN/ACK ack on {me:?}");
                } else {
                    assert!(!conns.contains_key(&peer), "SYN for a known connection {me:?}");
                }
                conns.insert(
                    me,
                    Dir {
                        next: Some(seq.wrapping_add(1)),
                        ack: t.ack().then(|| t.acknowledgment_number()),
                        fin: false,
                    },
                );
                continue;
            }
            assert!(t.ack() && !t.rst());
            let peer_next = conns.get(&peer).and_then(|d| d.next).expect("segment of an unknown connection");
            let d = conns.get_mut(&me).expect("segment before SYN");
            assert!(!d.fin || (len == 0 && !t.fin()), "data or second FIN after FIN on {me:?}");
            assert_eq!(Some(seq), d.next, "sequence gap or retransmission on {me:?}");
            let ack = t.acknowledgment_number();
            // Never acknowledge unseen data, never go backwards, no duplicate pure ACKs.
            let prev = d.ack.unwrap_or(ack);
            assert!(ack.wrapping_sub(prev) as i32 >= 0, "ack went backwards on {me:?}");
            assert!(peer_next.wrapping_sub(ack) as i32 >= 0, "ack of unseen data on {me:?}");
            if len == 0 && !t.fin() {
                assert_ne!(Some(ack), d.ack, "duplicate ACK on {me:?}");
            }
            assert!(t.window_size() >= 1024);
            d.ack = Some(ack);
            d.next = Some(seq.wrapping_add(len).wrapping_add(u32::from(t.fin())));
            d.fin |= t.fin();
        }
        // Every connection is closed both ways and each FIN is acknowledged.
        for (k, d) in &conns {
            assert!(d.fin, "{k:?} never sent FIN");
            let peer = &conns[&(k.1, k.0)];
            assert_eq!(peer.ack, d.next, "{k:?}: FIN not acknowledged");
        }
        // Every TCP truth flow is a connection seen here.
        let tcp_flows = cap.truth.flows.iter().filter(|f| f.proto == 6).count();
        assert_eq!(conns.len(), 2 * tcp_flows);
    }
}

#[test]
fn application_payloads_are_well_formed() {
    use hickory_proto::op::{Message, MessageType};
    let cap = all_anomalies();
    let mut dns_ids: HashMap<(SocketAddrV4, u16), usize> = HashMap::new();
    let (mut ntp_requests, mut ntp_responses, mut rtp, mut sadp, mut dhip, mut p2p) = (0, 0, 0, 0, 0, 0);
    for p in &cap.packets {
        let Some(ip) = decode(&p.data) else { continue };
        match (ip.proto, ip.src.port(), ip.dst.port()) {
            (17, _, 53) | (17, 53, _) => {
                let msg = Message::from_vec(ip.payload).unwrap();
                let client = if ip.dst.port() == 53 { ip.src } else { ip.dst };
                *dns_ids.entry((client, msg.metadata.id)).or_default() += 1;
                if msg.metadata.message_type == MessageType::Response {
                    assert!(!msg.answers.is_empty());
                }
            }
            (17, _, 123) => {
                assert_eq!((ip.payload.len(), ip.payload[0] & 7), (48, 3));
                ntp_requests += 1;
            }
            (17, 123, _) => {
                assert_eq!((ip.payload.len(), ip.payload[0] & 7), (48, 4));
                ntp_responses += 1;
            }
            (17, 37_020, 37_020) => {
                let xml = std::str::from_utf8(ip.payload).unwrap();
                assert!(
                    xml.starts_with("<?xml")
                        && xml.contains("<Types>hello</Types>")
                        && xml.ends_with("</Hello>")
                );
                sadp += 1;
            }
            (17, 37_810, 37_810) => {
                let b = ip.payload;
                assert_eq!(&b[..8], b"\x20\0\0\0DHIP");
                let len = u32::from_le_bytes(b[16..20].try_into().unwrap()) as usize;
                assert_eq!(&b[16..20], &b[24..28]);
                assert_eq!(len, b.len() - 32);
                let json: serde_json::Value = serde_json::from_slice(&b[32..]).unwrap();
                assert_eq!(json["method"], "client.notifyDevInfo");
                dhip += 1;
            }
            (17, _, 8800) | (17, 8800, _) if ip.payload.starts_with(&[0xff, 0xfe, 0xff, 0xe7]) => {
                assert_eq!(ip.payload.len(), 44);
                p2p += 1;
            }
            (6, 554, _) if ip.payload.first() == Some(&b'$') => {
                let b = ip.payload;
                assert_eq!(b[1], 0);
                assert_eq!(usize::from(u16::from_be_bytes([b[2], b[3]])), b.len() - 4);
                assert_eq!((b[4] >> 6, b[5] & 0x7f), (2, 96));
                assert!(b.len() - 16 <= 1400);
                rtp += 1;
            }
            _ => {}
        }
    }
    assert!(dns_ids.values().all(|&n| n == 2), "every DNS query has exactly one response");
    assert_eq!(ntp_requests, ntp_responses);
    assert_eq!(ntp_requests, 12, "two NTP polls per camera in 120 s");
    assert_eq!((sadp, dhip), (8, 8), "every 30 s from 2 Hikvision and 2 Dahua cameras");
    assert_eq!(p2p, 6);
    assert!(rtp > 6 * 100 * super::plan::FRAMES_PER_SEC as usize);

    // TFTP (RFC 1350): one read request to port 69, then DATA blocks 1, 2, … from the server's
    // own port, each acknowledged before the next, 512 bytes but the last; they reassemble to
    // the truth's image.
    let download = &cap.truth.tftp_downloads[..];
    assert_eq!(download.len(), 1);
    let download = &download[0];
    let (mut rrq, mut server, mut pending) = (None, None, None);
    let (mut image, mut next_block, mut done) = (Vec::new(), 1u16, false);
    for p in &cap.packets {
        let Some(ip) = decode(&p.data) else { continue };
        if *ip.src.ip() != download.from && *ip.dst.ip() != download.from {
            continue;
        }
        assert_eq!(ip.proto, 17);
        if ip.dst.port() == 69 {
            assert!(rrq.is_none(), "one read request");
            assert_eq!((*ip.src.ip(), *ip.dst.ip()), (download.device, download.from));
            assert_eq!(ip.payload, b"\0\x01digicap.dav\0octet\0");
            rrq = Some(ip.src);
            continue;
        }
        let camera = rrq.expect("read request first");
        let block = u16::from_be_bytes([ip.payload[2], ip.payload[3]]);
        if *ip.src.ip() == download.from {
            assert!(!done && pending.is_none(), "DATA before the previous block's ACK");
            assert_eq!(ip.dst, camera);
            assert_ne!(ip.src.port(), 69);
            assert_eq!(*server.get_or_insert(ip.src), ip.src, "one transfer identifier");
            assert_eq!((&ip.payload[..2], block), (&[0u8, 3][..], next_block));
            let data = &ip.payload[4..];
            assert!(data.len() <= 512);
            image.extend_from_slice(data);
            done = data.len() < 512;
            pending = Some(block);
        } else {
            assert_eq!((ip.src, Some(ip.dst)), (camera, server));
            assert_eq!(ip.payload.len(), 4);
            assert_eq!((&ip.payload[..2], Some(block)), (&[0u8, 4][..], pending.take()));
            next_block += 1;
        }
    }
    assert!(done && pending.is_none());
    assert_eq!(
        (image.len() as u64, super::mgmt::sha256_hex(&image)),
        (download.size, download.sha256.clone())
    );
    let h = camwatch_proto::firmware::parse_digicap_header(&image).unwrap();
    assert_eq!((h.magic, h.header_len, h.file_count), (0x484B_5753, 0x6C, 1));

    // Telnet: the workstation negotiates options, the camera answers with its own and a login
    // prompt.
    let telnet = event(cap, "telnet");
    let (order, streams) = tcp_streams(cap);
    let sessions: Vec<&Direction> = order.iter().filter(|(_, s)| s.port() == 23).collect();
    assert_eq!(sessions.len(), 1);
    let (client, server) = *sessions[0];
    assert_eq!((*client.ip(), Some(*server.ip())), (telnet.peer.unwrap(), Some(telnet.device)));
    let (asked, answer) = (&streams[&(client, server)], &streams[&(server, client)]);
    assert!(asked.chunks(3).all(|c| c[0] == 255 && (c[1] == 253 || c[1] == 251)), "{asked:?}");
    assert_eq!(&answer[..3], &[255, 251, 1]);
    assert!(answer.ends_with(b"login: "));
}

#[test]
fn downgrade_is_announced_in_the_second_half() {
    for seed in 0..10 {
        for duration_secs in [62, 90, 120] {
            let s = Scenario {
                seed,
                cameras: 2,
                duration_secs,
                anomalies: Anomalies { downgrade: true, ..Anomalies::default() },
                ..Scenario::default()
            };
            let cap = generate(&s);
            let dahua = Ipv4Addr::new(192, 168, 10, 12);
            let e = event(&cap, "downgrade");
            assert_eq!((e.device, e.peer, e.detail.as_str()), (dahua, None, "2.622.0000000.31.R"));
            let f = cap.truth.firmware.iter().find(|f| f.device == dahua).unwrap();
            assert_eq!(
                f.versions,
                ["2.800.0000000.29.R", "2.622.0000000.31.R"],
                "seed {seed}, {duration_secs} s"
            );
            let versions: Vec<(u64, bool)> = cap
                .packets
                .iter()
                .filter_map(|p| decode(&p.data).map(|ip| (p.ts_micros, ip)))
                .filter(|(_, ip)| ip.src.port() == 37_810)
                .map(|(ts, ip)| {
                    (ts - DEFAULT_START_UNIX * 1_000_000, ip.payload.windows(5).any(|w| w == b"2.622"))
                })
                .collect();
            let switch = versions.iter().position(|&(_, new)| new).unwrap();
            assert!(switch >= 1 && versions[switch..].iter().all(|&(_, new)| new), "seed {seed}");
            assert!(versions[switch].0 > duration_secs * 500_000, "seed {seed}, {duration_secs} s");
        }
    }
}

fn tshark(args: &[&str]) -> (bool, String) {
    let out = match Command::new("tshark").args(args).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("tshark not found on PATH: install Wireshark's tshark (CI has it) to run this test")
        }
        Err(e) => panic!("running tshark: {e}"),
    };
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn tshark_dissects_the_capture_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("all.pcap");
    write_pcap(&path, all_anomalies()).unwrap();
    let file = path.to_str().unwrap();

    // No warnings or errors (bad checksums, malformed packets) and no TCP analysis flags
    // (lost/out-of-order segments, retransmissions, duplicate ACKs, window problems...).
    // Nothing is excluded: the generator never sends window updates or keep-alives either.
    let (ok, out) = tshark(&[
        "-r",
        file,
        "-o",
        "tcp.check_checksum:TRUE",
        "-o",
        "ip.check_checksum:TRUE",
        "-o",
        "udp.check_checksum:TRUE",
        "-Y",
        "_ws.expert.severity >= warning or _ws.malformed or tcp.analysis.flags",
    ]);
    assert!(ok, "tshark failed");
    assert!(out.trim().is_empty(), "tshark flagged packets:\n{out}");

    let fields = |filter: &str, field: &str| -> BTreeSet<String> {
        let (ok, out) = tshark(&["-r", file, "-Y", filter, "-T", "fields", "-e", field]);
        assert!(ok, "tshark failed on {filter}");
        out.lines().map(str::to_string).collect()
    };
    let snis = fields("tls.handshake.extensions_server_name", "tls.handshake.extensions_server_name");
    assert_eq!(snis, ALL_SNIS.iter().map(|s| s.to_string()).collect());
    let names = fields("dns.flags.response==0", "dns.qry.name");
    assert_eq!(names, ALL_DNS_NAMES.iter().map(|s| s.to_string()).collect());
    let methods = fields("rtsp.request", "rtsp.method");
    let expected: BTreeSet<String> = ["OPTIONS", "DESCRIBE", "SETUP", "PLAY", "GET_PARAMETER", "TEARDOWN"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(methods, expected);
    let http = fields("http.request", "http.request.method");
    assert_eq!(http, ["GET", "POST", "PUT"].iter().map(|s| s.to_string()).collect());

    // Management traffic: ISAPI device info and firmware upload, ONVIF, WS-Discovery.
    let count = |args: &[&str]| -> usize {
        let mut all = vec!["-r", file];
        all.extend_from_slice(args);
        let (ok, out) = tshark(&all);
        assert!(ok, "tshark failed on {args:?}");
        out.lines().count()
    };
    let cap = all_anomalies();
    let (hik, others) = (2, 4);
    assert_eq!(count(&["-Y", "http.request.uri == \"/ISAPI/System/deviceInfo\""]), hik);
    assert_eq!(
        count(&[
            "-Y",
            "http.request.method == \"POST\" and http.request.uri == \"/onvif/device_service\" \
                       and http.content_type contains \"application/soap+xml\""
        ]),
        others
    );
    assert_eq!(
        count(&["-Y", "http.response.code == 200 and http.content_type contains \"soap+xml\""]),
        others
    );
    // Device information, the EZVIZ setting, the firmware upload's status and the exploit probe.
    assert_eq!(count(&["-Y", "http.server == \"App-webs/\" and xml"]), hik + 3);
    assert_eq!(count(&["-Y", "http.request.uri == \"/ISAPI/System/Network/EZVIZ\""]), 1);
    // The Dahua logins, their JSON answers, the lateral request's digest challenge.
    assert_eq!(
        count(&[
            "-Y",
            "http.request.method == \"POST\" and http.request.uri == \"/RPC2_Login\" \
                       and json.value.string == \"global.login\""
        ]),
        2
    );
    assert_eq!(count(&["-Y", "http.response.code == 200 and json and json.key == \"session\""]), 2);
    assert_eq!(
        count(&[
            "-Y",
            "http.response.code == 401 and http.www_authenticate contains \"realm=\\\"IP Camera(\""
        ]),
        1
    );
    // Telnet negotiation both ways; TFTP request, DATA and ACKs (followed by the dissector
    // from the server's own port).
    assert_eq!(count(&["-Y", "telnet.cmd == 253 or telnet.cmd == 251"]), 2);
    let d = &cap.truth.tftp_downloads[0];
    let blocks = d.size as usize / 512 + 1;
    assert_eq!(
        count(&["-Y", "tftp.opcode == 1 and tftp.source_file == \"digicap.dav\" and tftp.type == \"octet\""]),
        1
    );
    assert_eq!(count(&["-Y", "tftp.opcode == 3"]), blocks);
    assert_eq!(count(&["-Y", "tftp.opcode == 4"]), blocks);
    assert_eq!(
        count(&[
            "-Y",
            &format!(
                "tftp.opcode == 3 and tftp.block == {blocks} and udp.length == {}",
                8 + 4 + d.size as usize % 512
            )
        ]),
        1
    );
    let put = format!(
        "http.request.method == \"PUT\" and http.request.uri == \"/ISAPI/System/updateFirmware\" \
         and http.content_type == \"application/octet-stream\" and http.content_length == {}",
        cap.truth.firmware_uploads[0].size
    );
    assert_eq!(count(&["-Y", &put]), 1);
    assert_eq!(count(&["-Y", "udp.port == 3702"]), 1 + 6);
    assert_eq!(count(&["-Y", "udp.dstport == 3702 and ip.dst == 239.255.255.250"]), 1);
    // WS-Discovery has no dissector of its own here: with the XML heuristic every message
    // parses, without warnings.
    let xml = ["--enable-heuristic", "xml_udp"];
    assert_eq!(count(&[&xml[..], &["-Y", "udp.port == 3702 and xml and not _ws.malformed"]].concat()), 7);
    assert_eq!(count(&[&xml[..], &["-Y", "_ws.expert.severity >= warning or _ws.malformed"]].concat()), 0);
}

/// (sender, receiver) of one direction of a TCP connection.
type Direction = (SocketAddrV4, SocketAddrV4);

/// The (client, server) pair of every TCP connection in order of SYN, and the payload bytes of
/// every direction, in order (the generator never retransmits or reorders).
fn tcp_streams(cap: &Capture) -> (Vec<Direction>, HashMap<Direction, Vec<u8>>) {
    let mut order = Vec::new();
    let mut data: HashMap<Direction, Vec<u8>> = HashMap::new();
    for p in &cap.packets {
        let Some(ip) = decode(&p.data) else { continue };
        let Some(t) = &ip.tcp else { continue };
        if t.syn() && !t.ack() {
            order.push((ip.src, ip.dst));
        }
        data.entry((ip.src, ip.dst)).or_default().extend_from_slice(ip.payload);
    }
    (order, data)
}

/// One HTTP message: start line, headers (lower-case names) and body, checking that the body
/// is exactly `Content-Length` bytes (or empty without it).
struct Http {
    start: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

fn parse_http(bytes: &[u8]) -> Http {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("end of HTTP head") + 4;
    let head = std::str::from_utf8(&bytes[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let start = lines.next().unwrap().to_string();
    let mut headers = HashMap::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (k, v) = line.split_once(": ").unwrap();
        assert!(headers.insert(k.to_ascii_lowercase(), v.to_string()).is_none(), "repeated {k}");
    }
    let body = bytes[end..].to_vec();
    let len = headers.get("content-length").map_or(0, |v| v.parse::<usize>().unwrap());
    assert_eq!(len, body.len(), "Content-Length of {start}");
    Http { start, headers, body }
}

/// Local names of every element in document order; panics unless the XML is well-formed.
fn xml_elements(xml: &str) -> Vec<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out = Vec::new();
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) | Event::Empty(e) => out.push(e.local_name().as_ref().to_string()),
            Event::Eof => break,
            _ => {}
        }
    }
    out
}

/// Text of the first `<tag …>…</tag>` (tag with its prefix, if any).
fn xml_text<'a>(xml: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}");
    let at = xml
        .match_indices(&open)
        .map(|(i, _)| i + open.len())
        .find(|&i| matches!(xml.as_bytes().get(i), Some(b'>' | b' ')))
        .unwrap_or_else(|| panic!("no <{tag}>"));
    let start = at + xml[at..].find('>').unwrap() + 1;
    let end = start + xml[start..].find(&format!("</{tag}>")).unwrap();
    &xml[start..end]
}

/// The real ISAPI body the generator's `DeviceInfo` is shaped after.
fn corpus_device_info() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/corpus/hikvision-isapi/ISAPI__System.deviceInfo__ipc1.xml"
    );
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("the test data is missing ({path}): {e}"))
}

fn f_vendor<'a>(truth: &HashMap<Ipv4Addr, &'a TruthFirmware>, ip: Ipv4Addr) -> &'a str {
    truth[&ip].vendor.as_str()
}

#[test]
fn management_messages_carry_the_truth_identity() {
    let cap = all_anomalies();
    let nvr = Ipv4Addr::new(192, 168, 10, 2);
    let truth: HashMap<Ipv4Addr, &TruthFirmware> = cap.truth.firmware.iter().map(|f| (f.device, f)).collect();
    let devices: HashMap<Ipv4Addr, &TruthDevice> = cap.truth.devices.iter().map(|d| (d.ip, d)).collect();
    assert_eq!(truth.len(), 6);
    let upload = &cap.truth.firmware_uploads[..];
    assert_eq!(upload.len(), 1);
    let upload = &upload[0];
    let mac_colon =
        |ip: Ipv4Addr| devices[&ip].mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");

    // Discovery announcements, in time order per camera.
    let mut sadp: BTreeMap<Ipv4Addr, Vec<(u64, String)>> = BTreeMap::new();
    let mut dhip: BTreeMap<Ipv4Addr, Vec<(u64, serde_json::Value)>> = BTreeMap::new();
    let mut probe: Option<(SocketAddrV4, String)> = None;
    let mut matches: BTreeMap<Ipv4Addr, (SocketAddrV4, String)> = BTreeMap::new();
    for p in &cap.packets {
        let Some(ip) = decode(&p.data) else { continue };
        match (ip.proto, ip.src.port(), ip.dst.port()) {
            (17, 37_020, 37_020) => {
                sadp.entry(*ip.src.ip())
                    .or_default()
                    .push((p.ts_micros, String::from_utf8(ip.payload.to_vec()).unwrap()));
            }
            (17, 37_810, 37_810) => {
                dhip.entry(*ip.src.ip())
                    .or_default()
                    .push((p.ts_micros, serde_json::from_slice(&ip.payload[32..]).unwrap()));
            }
            (17, _, 3702) => {
                assert!(probe.is_none(), "one Probe");
                assert_eq!((*ip.src.ip(), *ip.dst.ip()), (nvr, Ipv4Addr::new(239, 255, 255, 250)));
                probe = Some((ip.src, String::from_utf8(ip.payload.to_vec()).unwrap()));
            }
            (17, 3702, _) => {
                let xml = String::from_utf8(ip.payload.to_vec()).unwrap();
                assert!(matches.insert(*ip.src.ip(), (ip.dst, xml)).is_none(), "one ProbeMatches per camera");
            }
            _ => {}
        }
    }

    // WS-Discovery: one Probe, every camera answers the probe's source with its identity.
    let (probe_src, probe) = probe.expect("a WS-Discovery Probe");
    xml_elements(&probe);
    assert!(probe.contains("<Types>dn:NetworkVideoTransmitter</Types>"));
    let probe_id = xml_text(&probe, "wsa:MessageID");
    assert_eq!(matches.len(), 6);
    for (ip, (dst, xml)) in &matches {
        let f = truth[ip];
        assert_eq!(*dst, probe_src);
        let names = xml_elements(xml);
        assert!(names.starts_with(&["Envelope".to_string(), "Header".to_string()]));
        assert!(names.contains(&"ProbeMatch".to_string()));
        assert_eq!(xml_text(xml, "wsa:RelatesTo"), probe_id);
        assert!(xml_text(xml, "wsd:Types").split(' ').any(|t| t == "dn:NetworkVideoTransmitter"));
        assert_eq!(xml_text(xml, "wsd:XAddrs"), format!("http://{ip}/onvif/device_service"));
        let scopes: Vec<&str> = xml_text(xml, "wsd:Scopes").split(' ').collect();
        let model = f.model.replace(' ', "%20");
        let vendor = match f.vendor.as_str() {
            "Hikvision" => "HIKVISION",
            "Dahua" => "Dahua",
            _ => "AXIS",
        };
        for want in [
            "onvif://www.onvif.org/type/video_encoder".to_string(),
            format!("onvif://www.onvif.org/hardware/{model}"),
            format!("onvif://www.onvif.org/name/{vendor}%20{model}"),
            format!("onvif://www.onvif.org/MAC/{}", mac_colon(*ip)),
        ] {
            assert!(scopes.contains(&want.as_str()), "{ip}: no scope {want} in {scopes:?}");
        }
    }

    // HTTP on port 80, per connection.
    let (order, streams) = tcp_streams(cap);
    let (mut isapi, mut onvif, mut puts, mut ezviz, mut lateral) = (0, 0, 0, 0, 0);
    let mut logins: Vec<String> = Vec::new();
    let mut realms: HashMap<Ipv4Addr, String> = HashMap::new();
    let ws = Ipv4Addr::new(192, 168, 10, 50);
    let corpus = corpus_device_info();
    for (client, server) in order.iter().filter(|(_, s)| s.port() == 80) {
        let req = parse_http(&streams[&(*client, *server)]);
        let resp = parse_http(&streams[&(*server, *client)]);
        let ip = *server.ip();
        let host = ip.to_string();
        match req.start.as_str() {
            "GET /ISAPI/System/deviceInfo HTTP/1.1" => {
                isapi += 1;
                let f = truth[&ip];
                assert_eq!((*client.ip(), f.vendor.as_str()), (nvr, "Hikvision"));
                assert_eq!(req.headers["host"], host);
                let auth = &req.headers["authorization"];
                assert!(auth.starts_with("Digest username=\"admin\", realm=\"IP Camera("), "{auth}");
                assert!(auth.contains("uri=\"/ISAPI/System/deviceInfo\""));
                realms.insert(
                    ip,
                    auth.split("realm=\"").nth(1).unwrap().split('"').next().unwrap().to_string(),
                );
                let response = auth.split("response=\"").nth(1).unwrap().split('"').next().unwrap();
                assert!(response.len() == 32 && response.bytes().all(|b| b.is_ascii_hexdigit()));
                assert_eq!(resp.start, "HTTP/1.1 200 OK");
                assert_eq!(resp.headers["server"], "App-webs/");
                assert_eq!(resp.headers["content-type"], "application/xml");
                let body = std::str::from_utf8(&resp.body).unwrap();
                assert!(body.contains(
                    "<DeviceInfo version=\"2.0\" xmlns=\"http://www.hikvision.com/ver20/XMLSchema\">"
                ));
                assert_eq!(xml_elements(body), xml_elements(&corpus), "same elements as a real camera");
                assert_eq!(xml_text(body, "model"), f.model);
                assert_eq!(xml_text(body, "serialNumber"), f.serial);
                assert_eq!(xml_text(body, "macAddress"), mac_colon(ip));
                // SADP `V5.7.3build 220112` is ISAPI `V5.7.3` + `build 220112`.
                let version = xml_text(body, "firmwareVersion");
                let build = xml_text(body, "firmwareReleasedDate");
                assert!(version.starts_with('V') && build.starts_with("build "), "{version} {build}");
                assert_eq!(format!("{version}{build}"), f.versions[0]);
                // The same identity as the camera's SADP Hello.
                let hello = &sadp[&ip][0].1;
                assert_eq!(xml_text(body, "model"), xml_text(hello, "DeviceDescription"));
                assert_eq!(xml_text(body, "serialNumber"), xml_text(hello, "DeviceSN"));
                assert_eq!(format!("{version}{build}"), xml_text(hello, "SoftwareVersion"));
            }
            "POST /onvif/device_service HTTP/1.1" => {
                onvif += 1;
                let f = truth[&ip];
                assert_eq!(*client.ip(), nvr);
                assert_ne!(f.vendor, "Hikvision");
                assert_eq!(req.headers["content-type"], "application/soap+xml; charset=utf-8");
                let body = std::str::from_utf8(&req.body).unwrap();
                xml_elements(body);
                assert!(
                    body.contains("<GetDeviceInformation xmlns=\"http://www.onvif.org/ver10/device/wsdl\"/>")
                );
                assert_eq!(resp.start, "HTTP/1.1 200 OK");
                assert!(resp.headers["content-type"].starts_with("application/soap+xml"));
                let body = std::str::from_utf8(&resp.body).unwrap();
                let names = xml_elements(body);
                assert!(names.contains(&"GetDeviceInformationResponse".to_string()));
                assert!(body.contains("xmlns:tds=\"http://www.onvif.org/ver10/device/wsdl\""));
                assert!(body.contains("xmlns:SOAP-ENV=\"http://www.w3.org/2003/05/soap-envelope\""));
                let manufacturer = if f.vendor == "Axis" { "AXIS" } else { "Dahua" };
                assert_eq!(xml_text(body, "tds:Manufacturer"), manufacturer);
                assert_eq!(xml_text(body, "tds:Model"), f.model);
                assert_eq!(xml_text(body, "tds:FirmwareVersion"), f.versions[0]);
                assert_eq!(xml_text(body, "tds:SerialNumber"), f.serial);
                assert!(!xml_text(body, "tds:HardwareId").is_empty());
                if f.vendor == "Dahua" {
                    let info = &dhip[&ip][0].1["params"]["deviceInfo"];
                    assert_eq!(info["Version"], f.versions[0].as_str());
                    assert_eq!(info["SerialNo"], f.serial.as_str());
                    assert_eq!(info["DeviceType"], f.model.as_str());
                }
            }
            "PUT /ISAPI/System/updateFirmware HTTP/1.1" => {
                puts += 1;
                assert_eq!((*client.ip(), ip), (upload.from, upload.device));
                assert_eq!(req.headers["content-type"], "application/octet-stream");
                assert!(req.headers["authorization"].starts_with("Digest "));
                let image = &req.body;
                assert_eq!(image.len() as u64, upload.size);
                assert_eq!(super::mgmt::sha256_hex(image), upload.sha256);
                // The digicap.dav header reads back with camwatch's own parser.
                let h = camwatch_proto::firmware::parse_digicap_header(image).unwrap();
                assert_eq!((h.magic, h.header_len, h.file_count), (0x484B_5753, 0x6C, 1));
                assert_eq!((h.files[0].length as usize, h.files[0].offset), (image.len() - 0x6C, 0x6C));
                assert_eq!(h.files[0].name, "_cfgUpgClass");
                assert_eq!(resp.start, "HTTP/1.1 200 OK");
                assert_eq!(resp.headers["server"], "App-webs/");
                let status = std::str::from_utf8(&resp.body).unwrap();
                assert_eq!(xml_elements(status)[0], "ResponseStatus");
                assert_eq!(xml_text(status, "requestURL"), "/ISAPI/System/updateFirmware");
            }
            "GET /ISAPI/System/Network/EZVIZ HTTP/1.1" => {
                ezviz += 1;
                assert_eq!((*client.ip(), ip), (nvr, event(cap, "cloud_enabled").device));
                assert!(req.headers["authorization"].contains("uri=\"/ISAPI/System/Network/EZVIZ\""));
                assert_eq!(resp.start, "HTTP/1.1 200 OK");
                assert_eq!(resp.headers["server"], "App-webs/");
                assert_eq!(resp.headers["content-type"], "application/xml");
                let body = std::str::from_utf8(&resp.body).unwrap();
                assert_eq!(
                    body,
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><EZVIZ version=\"2.0\" \
                     xmlns=\"http://www.hikvision.com/ver20/XMLSchema\"><enabled>true</enabled>\
                     <registerStatus>true</registerStatus><redirect>true</redirect><serverAddress>\
                     <addressingFormatType>hostname</addressingFormatType>\
                     <hostName>litedev.hik-connect.com</hostName></serverAddress></EZVIZ>"
                );
                assert_eq!(xml_elements(body)[0], "EZVIZ");
                assert_eq!(
                    (xml_text(body, "enabled"), xml_text(body, "hostName")),
                    ("true", "litedev.hik-connect.com")
                );
            }
            "POST /RPC2_Login HTTP/1.1" => {
                let dahua = cap.truth.events.iter().find(|e| e.kind == "dahua_exploit").unwrap();
                assert_eq!((*client.ip(), ip), (ws, dahua.device));
                assert_eq!(f_vendor(&truth, ip), "Dahua");
                assert_eq!(req.headers["content-type"], "application/json");
                assert_eq!(req.headers["host"], host);
                let login: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
                assert_eq!(login["method"], "global.login");
                assert_eq!(
                    (&login["params"]["userName"], &login["params"]["password"]),
                    (&"admin".into(), &"".into())
                );
                logins.push(String::from_utf8(req.body.clone()).unwrap());
                assert_eq!(resp.start, "HTTP/1.1 200 OK");
                assert!(!resp.headers.contains_key("server"), "Dahua's web server sends no Server header");
                assert!(resp.headers["content-type"].starts_with("application/json"));
                let answer: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
                assert_eq!((&answer["result"], &answer["id"]), (&true.into(), &login["id"]));
            }
            "GET / HTTP/1.1" => {
                lateral += 1;
                let e = event(cap, "lateral");
                assert_eq!((*client.ip(), ip), (e.device, e.peer.unwrap()));
                assert_eq!(f_vendor(&truth, *client.ip()), "Dahua");
                assert_eq!(f_vendor(&truth, ip), "Hikvision");
                assert_eq!(req.headers["host"], host);
                assert_eq!(resp.start, "HTTP/1.1 401 Unauthorized");
                assert_eq!(resp.headers["server"], "App-webs/");
                let challenge = &resp.headers["www-authenticate"];
                assert!(challenge.starts_with("Digest qop=\"auth\", realm=\"IP Camera("), "{challenge}");
                assert!(challenge.contains(&format!("realm=\"{}\"", realms[&ip])), "{challenge}");
            }
            _ => {}
        }
    }
    assert_eq!((isapi, onvif, puts, ezviz, lateral), (2, 4, 1, 1, 1));
    assert_eq!(
        logins,
        [
            r#"{"method":"global.login","params":{"userName":"admin","password":"","clientType":"NetKeyboard","loginType":"Direct"},"id":1,"session":0}"#,
            r#"{"method":"global.login","params":{"userName":"admin","password":"","clientType":"Local","loginType":"Loopback","ipAddr":"127.0.0.1"},"id":2,"session":0}"#,
        ]
    );

    // The upgraded camera announces the new version in every Hello after the upload (and
    // there is one), the old one before; nothing else in the Hello changes.
    let done = cap
        .packets
        .iter()
        .filter_map(|p| decode(&p.data).map(|ip| (p.ts_micros, ip)))
        .filter(|(_, ip)| *ip.src.ip() == upload.from && *ip.dst.ip() == upload.device)
        .map(|(ts, _)| ts)
        .max()
        .unwrap();
    let hellos = &sadp[&upload.device];
    let f = truth[&upload.device];
    assert_eq!(f.versions, [xml_text(&hellos[0].1, "SoftwareVersion"), upload.new_version.as_str()]);
    assert_ne!(f.versions[0], upload.new_version);
    assert!(hellos.iter().any(|(ts, _)| *ts > done));
    for (ts, hello) in hellos {
        let want = if *ts > done { &upload.new_version } else { &f.versions[0] };
        assert_eq!(xml_text(hello, "SoftwareVersion"), want);
        assert_eq!(hello.replace(want.as_str(), ""), hellos[0].1.replace(f.versions[0].as_str(), ""));
    }
    // The downgraded Dahua camera: the usual version in its first announcements (at least one),
    // then the older one, only in the second half of the capture; nothing else changes.
    let down = event(cap, "downgrade");
    let f = truth[&down.device];
    assert_eq!(f.versions, ["2.800.0000000.29.R", down.detail.as_str()]);
    let versions: Vec<(u64, String)> = dhip[&down.device]
        .iter()
        .map(|(ts, j)| (*ts, j["params"]["deviceInfo"]["Version"].as_str().unwrap().to_string()))
        .collect();
    let switch = versions.iter().position(|(_, v)| *v == down.detail).unwrap();
    assert!(switch >= 1);
    assert!(versions[..switch].iter().all(|(_, v)| *v == f.versions[0]));
    assert!(versions[switch..].iter().all(|(_, v)| *v == down.detail));
    assert!(versions[switch].0 > DEFAULT_START_UNIX * 1_000_000 + 60_000_000);
    let mut notes = dhip[&down.device].iter().map(|(_, j)| {
        let mut j = j.clone();
        j["params"]["deviceInfo"]["Version"] = serde_json::Value::Null;
        j
    });
    let first = notes.next().unwrap();
    assert!(notes.all(|j| j == first));

    // The cloud-enabled camera says so in every Hello, the others never.
    let cloud = event(cap, "cloud_enabled").device;
    for (ip, hellos) in &sadp {
        let want = if *ip == cloud { "true" } else { "false" };
        assert!(hellos.iter().all(|(_, h)| xml_text(h, "HCPlatformEnable") == want), "{ip}");
    }
    // The vulnerable camera reports its old firmware everywhere (SADP and ISAPI: checked above).
    let vulnerable = event(cap, "vulnerable_firmware");
    assert_eq!(truth[&vulnerable.device].versions, [vulnerable.detail.as_str()]);
    assert!(sadp[&vulnerable.device]
        .iter()
        .all(|(_, h)| xml_text(h, "SoftwareVersion") == vulnerable.detail));

    // Every other camera reports one version, the one its discovery messages carry.
    for f in cap.truth.firmware.iter().filter(|f| f.device != upload.device && f.device != down.device) {
        assert_eq!(f.versions.len(), 1);
        match f.vendor.as_str() {
            "Hikvision" => {
                assert!(sadp[&f.device].iter().all(|(_, h)| xml_text(h, "SoftwareVersion") == f.versions[0]))
            }
            "Dahua" => assert!(dhip[&f.device]
                .iter()
                .all(|(_, j)| j["params"]["deviceInfo"]["Version"] == f.versions[0].as_str())),
            _ => {}
        }
    }
}

#[test]
fn firmware_upgrade_is_announced_in_captures_of_a_minute() {
    for seed in 0..12 {
        for duration_secs in [60, 75, 90] {
            let s = Scenario {
                seed,
                cameras: 1,
                duration_secs,
                anomalies: Anomalies { firmware: true, ..Anomalies::default() },
                ..Scenario::default()
            };
            let cap = generate(&s);
            let upload = &cap.truth.firmware_uploads[0];
            assert_eq!(
                cap.truth.firmware[0].versions,
                ["V5.7.3build 220112", upload.new_version.as_str()],
                "seed {seed}, {duration_secs} s"
            );
        }
    }
}
