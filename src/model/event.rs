//! Events: everything downstream of the flow table (inventory, rules, the event log, metrics)
//! consumes these, never packets.

use std::net::IpAddr;

use crate::model::identity::{Change, FirmwareChange};
use crate::model::netset::DestClass;
use crate::model::packet::{tcp_flags, Arp, IpPacket, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
use crate::model::time::Micros;

/// Why a flow record was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowEndReason {
    /// No packet for the idle timeout.
    Idle,
    /// TCP FIN both ways or RST, then the closed timeout.
    Closed,
    /// A long flow reported at the active timeout; it continues.
    Active,
    /// Evicted from a full flow table.
    Capacity,
    /// camwatch was stopped.
    Shutdown,
    /// The capture file ended.
    EndOfCapture,
    /// Not an end: the packets and bytes the flow carried since its last report (at most a
    /// minute ago), so volume rules see a long transfer as it streams (`flow_progress`).
    Progress,
}

impl FlowEndReason {
    /// The label value of `camwatch_flows_ended_total{reason}`.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowEndReason::Idle => "idle",
            FlowEndReason::Closed => "closed",
            FlowEndReason::Active => "active",
            FlowEndReason::Capacity => "capacity",
            FlowEndReason::Shutdown => "shutdown",
            FlowEndReason::EndOfCapture => "end_of_capture",
            FlowEndReason::Progress => "progress",
        }
    }

    /// Suricata's EVE `flow.reason` vocabulary (`timeout`, `forced`, `shutdown`), plus `active`.
    pub fn eve(self) -> &'static str {
        match self {
            FlowEndReason::Idle | FlowEndReason::Closed => "timeout",
            FlowEndReason::Active | FlowEndReason::Progress => "active",
            FlowEndReason::Capacity => "forced",
            FlowEndReason::Shutdown | FlowEndReason::EndOfCapture => "shutdown",
        }
    }
}

/// A flow as reported: at its start (counters of the first packet) and at its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRecord {
    pub flow_id: u64,
    pub community_id: CommunityId,
    pub proto: u8,
    /// The originator.
    pub src_ip: IpAddr,
    pub src_port: u16,
    pub dest_ip: IpAddr,
    pub dest_port: u16,
    pub src_mac: Option<[u8; 6]>,
    pub dest_mac: Option<[u8; 6]>,
    pub vlan: Option<u16>,
    pub start: Micros,
    pub end: Micros,
    pub pkts_toserver: u64,
    pub pkts_toclient: u64,
    pub bytes_toserver: u64,
    pub bytes_toclient: u64,
    pub tcp_flags_ts: u8,
    pub tcp_flags_tc: u8,
    /// The first non-empty transport payload each way: `[to server, to client]`.
    pub first_payload: [PayloadHead; 2],
    pub reason: FlowEndReason,
    /// The tunnel the flow's first packet came out of, if any.
    pub tunnel: Option<crate::model::packet::TunnelKind>,
    /// The flow was answered (see [`FlowRecord::shows_answer`]); set by the flow table when it
    /// happens, so progress records, whose counters are deltas, carry it too.
    pub answered: bool,
}

/// The length and first bytes (as lowercase hex) of a flow's first non-empty payload in one
/// direction: enough for payload signatures such as Dahua P2P's, kept without allocating.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PayloadHead {
    /// Payload length as captured; 0 until a payload is seen.
    pub len: u32,
    hex: [u8; 2 * PayloadHead::BYTES],
    hex_len: u8,
}

impl PayloadHead {
    /// Bytes of the payload kept.
    pub const BYTES: usize = 8;

    pub fn of(payload: &[u8]) -> Self {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut head = Self { len: u32::try_from(payload.len()).unwrap_or(u32::MAX), ..Self::default() };
        for (i, b) in payload.iter().take(Self::BYTES).enumerate() {
            head.hex[2 * i] = DIGITS[usize::from(b >> 4)];
            head.hex[2 * i + 1] = DIGITS[usize::from(b & 0xf)];
            head.hex_len += 2;
        }
        head
    }

    /// The first bytes as lowercase hex (`fffeffe7…`); empty until a payload is seen.
    pub fn hex(&self) -> &str {
        std::str::from_utf8(&self.hex[..usize::from(self.hex_len)]).unwrap_or_default()
    }
}

impl FlowRecord {
    /// Both ends took part: the responder sent something and, over TCP, the originator
    /// acknowledged (a spoofed source never sees the answer, so it never acknowledges one).
    /// A host known only from traffic without its own MAC address enters the inventory from an
    /// answered flow, not from a packet anyone can forge.
    pub fn shows_answer(&self) -> bool {
        if self.pkts_toserver == 0 || self.pkts_toclient == 0 {
            return false;
        }
        self.proto != PROTO_TCP || self.tcp_flags_ts & tcp_flags::ACK != 0
    }

    /// A new flow from its first packet, with counters at zero. A TCP SYN-ACK seen first means
    /// the capture missed the SYN: the originator is the packet's receiver.
    pub fn open(flow_id: u64, pkt: &IpPacket<'_>, ts: Micros) -> Self {
        let syn_ack = tcp_flags::SYN | tcp_flags::ACK;
        // A UDP datagram from a well-known port to an ephemeral one is a server's answer whose
        // request was not captured (as Zeek and Suricata decide too).
        let reversed = (pkt.proto == PROTO_TCP && pkt.tcp_flags & syn_ack == syn_ack)
            || (pkt.proto == PROTO_UDP && pkt.src_port < 1024 && pkt.dst_port >= 1024);
        let (src, dst) = if reversed {
            ((pkt.dst_ip, pkt.dst_port), (pkt.src_ip, pkt.src_port))
        } else {
            ((pkt.src_ip, pkt.src_port), (pkt.dst_ip, pkt.dst_port))
        };
        Self {
            flow_id,
            community_id: community_id(pkt.proto, src.0, src.1, dst.0, dst.1),
            proto: pkt.proto,
            src_ip: src.0,
            src_port: src.1,
            dest_ip: dst.0,
            dest_port: dst.1,
            src_mac: None,
            dest_mac: None,
            vlan: pkt.vlan,
            tunnel: pkt.tunnel,
            answered: false,
            start: ts,
            end: ts,
            pkts_toserver: 0,
            pkts_toclient: 0,
            bytes_toserver: 0,
            bytes_toclient: 0,
            tcp_flags_ts: 0,
            tcp_flags_tc: 0,
            first_payload: [PayloadHead::default(); 2],
            reason: FlowEndReason::Idle,
        }
    }

    /// Starts a new reporting period after an active-timeout report.
    pub fn restart(&mut self, now: Micros) {
        self.start = now;
        self.pkts_toserver = 0;
        self.pkts_toclient = 0;
        self.bytes_toserver = 0;
        self.bytes_toclient = 0;
        self.tcp_flags_ts = 0;
        self.tcp_flags_tc = 0;
    }
}

/// Community ID v1 (seed 0), the flow hash Zeek, Suricata and Elastic share.
pub fn community_id(proto: u8, src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> CommunityId {
    let ports = matches!(proto, PROTO_TCP | PROTO_UDP | PROTO_ICMP | PROTO_ICMPV6 | 132);
    let (sp, dp) = if ports { (Some(sport), Some(dport)) } else { (None, None) };
    let id = community_id::calculate_community_id(0, src, dst, sp, dp, proto, false).unwrap_or_default();
    CommunityId::new(&id)
}

/// A Community ID (`1:` and the 28 base64 characters of a SHA-1), kept inline: every flow
/// record and application event carries one, and a flood of new flows makes a million a
/// second, each copied to the analysis stage (a `String` was an allocation and a free apiece).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CommunityId {
    bytes: [u8; CommunityId::MAX],
    len: u8,
}

impl CommunityId {
    /// Longest kept; a version 1 ID is 30 bytes.
    const MAX: usize = 32;

    /// `id` as it is, or its first [`Self::MAX`] bytes (cut at a character boundary).
    pub fn new(id: &str) -> Self {
        let mut end = id.len().min(Self::MAX);
        while !id.is_char_boundary(end) {
            end -= 1;
        }
        let mut bytes = [0u8; Self::MAX];
        bytes[..end].copy_from_slice(&id.as_bytes()[..end]);
        Self { bytes, len: u8::try_from(end).unwrap_or(0) }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.bytes.get(..usize::from(self.len)).unwrap_or_default()).unwrap_or_default()
    }
}

impl std::ops::Deref for CommunityId {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for CommunityId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for CommunityId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for CommunityId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Bytes a device sent or received since the last batch, per peer class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrafficKey {
    pub device: IpAddr,
    pub sent: bool,
    pub class: DestClass,
}

/// Per-device traffic accumulated by a worker, handed over once a second.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrafficBatch {
    pub bytes: Vec<(TrafficKey, u64)>,
    /// Last packet time seen from each device in the batch.
    pub last_seen: Vec<(IpAddr, Micros)>,
}

/// A device's inventory changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEvent {
    pub ts: Micros,
    pub kind: DeviceEventKind,
    pub ip: IpAddr,
    pub mac: Option<[u8; 6]>,
    pub vendor: Option<String>,
    pub organization: Option<String>,
    /// For `identity` events: the field that changed and its source.
    pub change: Option<Change>,
    /// For `renumbered` events: the address the device had before.
    pub previous_ip: Option<IpAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceEventKind {
    /// First time the device was seen.
    New,
    /// The device's MAC address became known after it was first seen.
    MacLearned,
    /// The device's address moved to another MAC address.
    MacChanged,
    /// An identity field was learned, changed, or disagreed between sources.
    Identity,
    /// The device (known by its MAC) now uses another address: its identity, firmware history
    /// and baselines moved with it.
    Renumbered,
}

impl DeviceEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceEventKind::New => "new",
            DeviceEventKind::MacLearned => "mac_learned",
            DeviceEventKind::MacChanged => "mac_changed",
            DeviceEventKind::Identity => "identity",
            DeviceEventKind::Renumbered => "renumbered",
        }
    }
}

/// Everything the analysis stage consumes.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A flow's first packet: rules that must fire "at once" (egress) match here.
    FlowStart(FlowRecord),
    /// A flow ended (or was reported at the active timeout).
    Flow(FlowRecord),
    /// What a flow carried since its last progress report (reason `Progress`): for rules only.
    FlowProgress(FlowRecord),
    Arp {
        ts: Micros,
        arp: Arp,
    },
    Traffic(TrafficBatch),
    Device(DeviceEvent),
    /// An application-layer message (DNS, TLS, HTTP, discovery, …).
    App(Box<crate::model::app::AppEvent>),
    /// A device's firmware was first seen or changed.
    Firmware(FirmwareEvent),
    /// A worker finished (or could not write) the evidence capture an alert asked for.
    Evidence(crate::model::evidence::EvidenceOutcome),
    /// A bounded table evicted entries to make room (sent at a worker's flush).
    Evictions(TableEvictions),
    /// A worker has sent every event of its flows; it still takes evidence requests until the
    /// analysis stage, having read up to here, closes its request channel.
    WorkerDone(usize),
}

/// Entries a bounded table evicted since the last report, with the sources that held the most
/// of it at its last eviction (largest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableEvictions {
    pub ts: Micros,
    pub table: &'static str,
    pub evicted: u64,
    pub top: Vec<(IpAddr, u64)>,
}

/// The sensor's own health, as rules see it: a table that has been evicting for `minutes`
/// consecutive minutes of packet time, `evicted` entries in the last of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SensorHealth {
    pub ts: Micros,
    pub table: &'static str,
    pub evicted: u64,
    pub minutes: u64,
    pub top: Vec<(IpAddr, u64)>,
}

/// A firmware version first seen, upgraded, downgraded or changed on a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareEvent {
    pub ts: Micros,
    pub ip: IpAddr,
    pub change: FirmwareChange,
}

impl Event {
    /// Name used by rules (`match.event`) and the `camwatch_events_total{type}` metric.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::FlowStart(_) => "flow_start",
            Event::Flow(_) => "flow",
            Event::FlowProgress(_) => "flow_progress",
            Event::Arp { .. } => "arp",
            Event::Traffic(_) => "traffic",
            Event::Device(_) => "device",
            Event::App(a) => a.app.protocol(),
            Event::Firmware(_) => "firmware",
            Event::Evidence(_) => "evidence",
            Event::Evictions(_) => "evictions",
            Event::WorkerDone(_) => "worker_done",
        }
    }
}

/// IANA protocol number as Suricata names it in EVE.
pub fn proto_name(proto: u8) -> String {
    match proto {
        PROTO_TCP => "TCP".into(),
        PROTO_UDP => "UDP".into(),
        PROTO_ICMP => "ICMP".into(),
        PROTO_ICMPV6 => "IPv6-ICMP".into(),
        132 => "SCTP".into(),
        n => n.to_string(),
    }
}

/// `aa:bb:cc:dd:ee:ff` (as [`format_mac`] writes it, either case) as bytes.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut out {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

pub fn format_mac(mac: [u8; 6]) -> String {
    // Two hex digits per byte from a table: every flow record carries two addresses, and the
    // formatting machinery was a tenth of the event log's cost in a flood.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(17);
    for (i, b) in mac.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_head_keeps_length_and_first_bytes_as_hex() {
        assert_eq!(PayloadHead::default().hex(), "");
        let h = PayloadHead::of(&[0xff, 0xfe, 0xff, 0xe7, 0, 1, 2, 3, 4, 5]);
        assert_eq!((h.len, h.hex()), (10, "fffeffe700010203"));
        let short = PayloadHead::of(&[0x0a]);
        assert_eq!((short.len, short.hex()), (1, "0a"));
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    /// Test vectors from the Community ID specification (corelight/community-id-spec,
    /// `baseline/baseline_deflt.json`).
    #[test]
    fn a_community_id_is_kept_inline_and_never_cut_inside_a_character() {
        let id = CommunityId::new("1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
        assert_eq!(id.as_str(), "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
        assert_eq!(serde_json::to_string(&id).expect("json"), "\"1:LQU9qZlK+B5F3KDmev6m5PMibrg=\"");
        assert_eq!(CommunityId::default().as_str(), "");
        // Never longer than it keeps, and cut before a character that would not fit whole.
        let long = format!("{}é", "x".repeat(31));
        assert_eq!(CommunityId::new(&long).as_str(), "x".repeat(31));
    }

    #[test]
    fn community_id_spec_vectors() {
        // ICMP is given as (type, code); the spec maps them to port equivalents itself.
        let cases = [
            (6, "128.232.110.120", 34855, "66.35.250.204", 80, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="),
            (6, "66.35.250.204", 80, "128.232.110.120", 34855, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="),
            (17, "192.168.1.52", 54585, "8.8.8.8", 53, "1:d/FP5EW3wiY1vCndhwleRRKHowQ="),
            (17, "8.8.8.8", 53, "192.168.1.52", 54585, "1:d/FP5EW3wiY1vCndhwleRRKHowQ="),
            (1, "192.168.0.89", 8, "192.168.0.1", 0, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="),
            (1, "192.168.0.1", 0, "192.168.0.89", 0, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="),
            (1, "10.0.0.1", 11, "10.0.0.2", 0, "1:YHxtAirCG//0OzkcVAukqKQN9xM="),
            (
                58,
                "fe80::200:86ff:fe05:80da",
                135,
                "fe80::260:97ff:fe07:69ea",
                0,
                "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=",
            ),
            (
                58,
                "fe80::260:97ff:fe07:69ea",
                136,
                "fe80::200:86ff:fe05:80da",
                0,
                "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=",
            ),
            (
                6,
                "2001:470:e5bf:dead:4957:2174:e82c:4887",
                63943,
                "2607:f8b0:400c:c03::1a",
                25,
                "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=",
            ),
            (132, "192.168.170.8", 7, "192.168.170.56", 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs="),
            (46, "10.1.12.1", 0, "10.1.12.2", 0, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw="),
        ];
        for (proto, s, sp, d, dp, want) in cases {
            assert_eq!(
                community_id(proto, ip(s), sp, ip(d), dp).as_str(),
                want,
                "{s}:{sp} -> {d}:{dp} proto {proto}"
            );
        }
    }

    #[test]
    fn macs() {
        assert_eq!(format_mac([0x44, 0x47, 0xcc, 1, 0xab, 3]), "44:47:cc:01:ab:03");
    }
}
