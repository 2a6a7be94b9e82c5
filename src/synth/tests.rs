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
    assert!(a.egress && a.upload && !a.cloud && !a.exploit);
    assert_eq!(Anomalies::parse_list("egress,cloud,exploit,upload").unwrap(), Anomalies::all());
    assert!(Anomalies::parse_list("egress,bogus").is_err());
    assert_eq!(Anomalies::all().to_string(), "egress,cloud,exploit,upload");
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
    // ports) and the same egress.
    let hosts = |cap: &Capture| -> Vec<(Ipv4Addr, String, String)> {
        cap.truth.devices.iter().map(|d| (d.ip, d.vendor.clone(), d.role.clone())).collect()
    };
    assert_eq!(hosts(&a), hosts(&c));
    let convs = |cap: &Capture| -> Vec<(u8, Ipv4Addr, Ipv4Addr, u16)> {
        let mut v: Vec<_> =
            cap.truth.flows.iter().map(|f| (f.proto, *f.src.ip(), *f.dst.ip(), f.dst.port())).collect();
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

    let all = short(3, Anomalies::all());
    assert_eq!(all.truth.egress.len(), 4);
    for e in &all.truth.egress {
        assert!(e.device.is_private() && public_unicast(e.dest));
    }

    // Anomalies only add traffic: every baseline flow is unchanged.
    let all_flows: HashSet<_> = all.truth.flows.iter().map(|f| format!("{f:?}")).collect();
    for f in &none.truth.flows {
        assert!(all_flows.contains(&format!("{f:?}")), "baseline flow changed: {f:?}");
    }
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
    assert_eq!(http, ["GET", "PUT"].iter().map(|s| s.to_string()).collect());
}
