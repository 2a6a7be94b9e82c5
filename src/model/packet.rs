//! Packets as camwatch's layers pass them on: the raw frame a source captured, and the IP packet
//! decoding reduces it to (with the protocol numbers and flag bits every layer names).

use std::net::{IpAddr, Ipv4Addr};

use crate::model::time::Micros;

/// A packet copied out of the capture buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPacket {
    pub ts: Micros,
    pub linktype: i32,
    /// Length on the wire (may exceed `data.len()` when the snaplen cut it).
    pub wire_len: u32,
    pub data: Vec<u8>,
}

impl RawPacket {
    /// The packet as a borrowed frame.
    pub fn frame(&self) -> Frame<'_> {
        Frame { ts: self.ts, linktype: self.linktype, wire_len: self.wire_len, data: &self.data }
    }
}

/// A captured frame as the packet path sees it: borrowed from the batch (or the capture buffer)
/// that holds it, never copied on its way through a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub ts: Micros,
    pub linktype: i32,
    /// Length on the wire (may exceed `data.len()` when the snaplen cut it).
    pub wire_len: u32,
    pub data: &'a [u8],
}

impl Frame<'_> {
    /// An owned copy (evidence rings and tests).
    pub fn to_owned(&self) -> RawPacket {
        RawPacket { ts: self.ts, linktype: self.linktype, wire_len: self.wire_len, data: self.data.to_vec() }
    }
}

/// libpcap link-layer header types (DLT_* / LINKTYPE_* values) camwatch understands.
pub mod linktype {
    pub const NULL: i32 = 0;
    pub const ETHERNET: i32 = 1;
    pub const RAW_BSD: i32 = 12;
    pub const RAW_OPENBSD: i32 = 14;
    pub const RAW: i32 = 101;
    pub const LOOP: i32 = 108;
    pub const LINUX_SLL: i32 = 113;
    pub const IPV4: i32 = 228;
    pub const IPV6: i32 = 229;
    pub const NFLOG: i32 = 239;
    pub const LINUX_SLL2: i32 = 276;

    /// Every link type camwatch decodes.
    pub const ALL: [i32; 11] =
        [NULL, ETHERNET, RAW_BSD, RAW_OPENBSD, RAW, LOOP, LINUX_SLL, NFLOG, IPV4, IPV6, LINUX_SLL2];

    pub fn supported(lt: i32) -> bool {
        ALL.contains(&lt)
    }
}

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ICMPV6: u8 = 58;

/// TCP flag bits as on the wire (FIN=0x01 … CWR=0x80).
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

/// An IP packet reduced to what flows, devices and parsers need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpPacket<'a> {
    pub src_mac: Option<[u8; 6]>,
    pub dst_mac: Option<[u8; 6]>,
    /// Outer VLAN id, when tagged.
    pub vlan: Option<u16>,
    pub src_ip: IpAddr,
    pub dst_ip: IpAddr,
    pub proto: u8,
    /// Ports for TCP/UDP; ICMP type and code for ICMP (as Community ID does); 0 otherwise.
    pub src_port: u16,
    pub dst_port: u16,
    pub tcp_flags: u8,
    pub tcp_seq: u32,
    /// Bytes at the IP layer, from the IP header's length (what the packet was on the wire, even
    /// when the capture cut it short).
    pub ip_len: u32,
    /// Transport payload as captured (may be shorter than on the wire).
    pub payload: &'a [u8],
    /// A fragment: transport ports are unknown for non-first fragments.
    pub fragment: bool,
    /// For an IPv4 or IPv6 fragment: what reassembly needs.
    pub frag: Option<Fragment<'a>>,
    /// The packet was decapsulated from this tunnel (the innermost, when nested).
    pub tunnel: Option<TunnelKind>,
}

/// An encapsulation camwatch looks inside: mirror-port transports (ERSPAN, VXLAN, Geneve, GRE,
/// MPLS) and the tunnels devices or carriers use (IP in IP, PPTP, GTP-U, AYIYA). The inner
/// packet is analysed as if seen directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TunnelKind {
    Gre,
    ErspanI,
    ErspanII,
    ErspanIII,
    Vxlan,
    Geneve,
    GtpU,
    Ayiya,
    Pptp,
    IpInIp,
    Mpls,
}

impl TunnelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TunnelKind::Gre => "gre",
            TunnelKind::ErspanI => "erspan_i",
            TunnelKind::ErspanII => "erspan_ii",
            TunnelKind::ErspanIII => "erspan_iii",
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Geneve => "geneve",
            TunnelKind::GtpU => "gtp_u",
            TunnelKind::Ayiya => "ayiya",
            TunnelKind::Pptp => "pptp",
            TunnelKind::IpInIp => "ip_in_ip",
            TunnelKind::Mpls => "mpls",
        }
    }

    /// The outer protocol, as Suricata names it in an EVE record's `tunnel.proto`.
    pub fn outer_proto(self) -> &'static str {
        match self {
            TunnelKind::Gre
            | TunnelKind::ErspanI
            | TunnelKind::ErspanII
            | TunnelKind::ErspanIII
            | TunnelKind::Pptp => "GRE",
            TunnelKind::Vxlan | TunnelKind::Geneve | TunnelKind::GtpU | TunnelKind::Ayiya => "UDP",
            TunnelKind::IpInIp => "IP",
            TunnelKind::Mpls => "MPLS",
        }
    }
}

/// One IPv4 fragment: its datagram's identification, where its bytes go, and the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment<'a> {
    /// The datagram's identification (16 bits in IPv4, 32 in IPv6).
    pub id: u32,
    pub offset: etherparse::IpFragOffset,
    pub more: bool,
    /// The fragment's share of the IP payload (transport header included in the first).
    pub data: &'a [u8],
}

/// An ARP announcement or request: who claims which address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    pub sender_mac: [u8; 6],
    pub sender_ip: Ipv4Addr,
    pub vlan: Option<u16>,
}
