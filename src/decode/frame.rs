//! Decodes captured frames into the few fields the flow table needs, for every link type camwatch
//! reads. The link type is matched first, then etherparse's lax slicing does the rest; a length
//! field is never trusted and nothing here panics on any input.

use std::net::{IpAddr, Ipv4Addr};

use crate::model::packet::{linktype, Arp, Fragment, IpPacket, TunnelKind, PROTO_UDP};

use super::tunnel::{self, Inner};

use etherparse::err::Layer;
use etherparse::{EtherType, IpNumber, LaxNetSlice, LaxSlicedPacket, LinkSlice, TransportSlice};

/// The layer a decode error was found at; the `layer` label of `camwatch_decode_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorLayer {
    /// Unknown link type or a frame too short for its link header.
    Link,
    /// Malformed or truncated IPv4/IPv6 header.
    Network,
    /// Truncated or malformed TCP/UDP/ICMP header.
    Transport,
}

impl ErrorLayer {
    pub const ALL: [ErrorLayer; 3] = [ErrorLayer::Link, ErrorLayer::Network, ErrorLayer::Transport];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorLayer::Link => "link",
            ErrorLayer::Network => "network",
            ErrorLayer::Transport => "transport",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<'a> {
    Ip(IpPacket<'a>),
    Arp(Arp),
    /// Hikvision's layer-2 SADP (ethertype 0x8033): the Ethernet payload.
    SadpL2 {
        src_mac: [u8; 6],
        payload: &'a [u8],
    },
    /// A well-formed frame carrying something camwatch does not analyse (LLDP, STP, …).
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError {
    pub layer: ErrorLayer,
    pub reason: &'static str,
}

impl DecodeError {
    fn new(layer: ErrorLayer, reason: &'static str) -> Self {
        Self { layer, reason }
    }
}

fn mac(b: &[u8]) -> Option<[u8; 6]> {
    b.get(..6).and_then(|s| s.try_into().ok())
}

/// Decodes one captured frame of the given link type. A tunnel (see [`TunnelKind`]) is
/// followed: the packet it carries is returned, marked with the tunnel, as if seen directly.
pub fn decode(linktype: i32, data: &[u8]) -> Result<Decoded<'_>, DecodeError> {
    decode_at(linktype, data, 0)
}

fn decode_at(linktype: i32, data: &[u8], depth: u8) -> Result<Decoded<'_>, DecodeError> {
    let d = decode_link(linktype, data, depth)?;
    Ok(detunnel(d, depth))
}

/// What a reassembled datagram is: the packet a tunnel carried in it (GTP-U and GRE datagrams
/// are fragmented on the way), or the datagram itself.
pub fn decapsulate(whole: IpPacket<'_>) -> Decoded<'_> {
    detunnel(Decoded::Ip(whole), 0)
}

/// The packet inside a tunnel packet, or the packet itself when it is none (or what it
/// carries does not decode: the outer packet is then analysed as it is).
fn detunnel(d: Decoded<'_>, depth: u8) -> Decoded<'_> {
    let Decoded::Ip(outer) = &d else { return d };
    if depth >= tunnel::MAX_DEPTH {
        return d;
    }
    let Some((kind, inner)) = tunnel::inner(outer) else { return d };
    let inside = match inner {
        Inner::Ethernet(b) => decode_at(linktype::ETHERNET, b, depth + 1),
        Inner::Ip(b) => decode_at(linktype::RAW, b, depth + 1),
        Inner::Ppp(b) => match tunnel::ppp_ip(b) {
            Some(ip) => decode_at(linktype::RAW, ip, depth + 1),
            None => return d,
        },
    };
    match inside {
        Ok(Decoded::Ip(mut ip)) => {
            if !matches!(inner, Inner::Ethernet(_)) {
                // An IP payload has no link of its own: the outer VLAN is the site's.
                ip.vlan = ip.vlan.or(outer.vlan);
            }
            // The innermost tunnel is the one about the flow (a camera's PPTP session inside
            // the site's ERSPAN mirror is noted as PPTP).
            ip.tunnel = ip.tunnel.or(Some(kind));
            Decoded::Ip(ip)
        }
        Ok(arp @ Decoded::Arp(_)) => arp,
        Ok(sadp @ Decoded::SadpL2 { .. }) => sadp,
        _ => d,
    }
}

/// An IP packet carried below an Ethernet header by something etherparse does not slice (MPLS,
/// LLC/SNAP), with the frame's addresses and VLAN.
fn with_link<'a>(
    d: Result<Decoded<'a>, DecodeError>,
    p: &LaxSlicedPacket<'_>,
    tunnel: Option<TunnelKind>,
) -> Result<Decoded<'a>, DecodeError> {
    let mut d = d?;
    if let (Decoded::Ip(ip), Some(LinkSlice::Ethernet2(e))) = (&mut d, &p.link) {
        ip.src_mac = ip.src_mac.or(Some(e.source()));
        ip.dst_mac = ip.dst_mac.or(Some(e.destination()));
        ip.vlan = ip.vlan.or(p.vlan_ids().first().map(|v| v.value()));
        ip.tunnel = ip.tunnel.or(tunnel);
    }
    Ok(d)
}

fn decode_link(linktype: i32, data: &[u8], depth: u8) -> Result<Decoded<'_>, DecodeError> {
    use linktype::*;
    let link_err = |reason| DecodeError::new(ErrorLayer::Link, reason);
    match linktype {
        ETHERNET => {
            if let Some(ip) = plain_ethernet_ipv4(data) {
                return Ok(Decoded::Ip(ip));
            }
            let p = LaxSlicedPacket::from_ethernet(data)
                .map_err(|_| link_err("frame shorter than an Ethernet header"))?;
            if p.net.is_none() {
                if let (Some(e), Some(LinkSlice::Ethernet2(eth))) = (p.ether_payload(), &p.link) {
                    if e.ether_type.0 == 0x8033 {
                        return Ok(Decoded::SadpL2 { src_mac: eth.source(), payload: e.payload });
                    }
                }
                if let Some(e) = p.ether_payload() {
                    match e.ether_type.0 {
                        0x8847 | 0x8848 if depth < tunnel::MAX_DEPTH => match tunnel::mpls(e.payload) {
                            Some(Inner::Ip(ip)) => {
                                return with_link(decode_at(RAW, ip, depth + 1), &p, Some(TunnelKind::Mpls))
                            }
                            Some(Inner::Ethernet(f)) => {
                                let d = decode_at(ETHERNET, f, depth + 1)?;
                                if let Decoded::Ip(mut ip) = d {
                                    ip.tunnel = ip.tunnel.or(Some(TunnelKind::Mpls));
                                    return Ok(Decoded::Ip(ip));
                                }
                                return Ok(d);
                            }
                            _ => {}
                        },
                        // An 802.3 length, not an ethertype: LLC, and with SNAP an ethertype.
                        len if len <= 1500 => {
                            if let Some((ether_type, rest)) = tunnel::llc_snap(e.payload) {
                                let src = match &p.link {
                                    Some(LinkSlice::Ethernet2(eth)) => Some(eth.source()),
                                    _ => None,
                                };
                                return with_link(from_ether_type(ether_type, rest, src), &p, None);
                            }
                        }
                        _ => {}
                    }
                }
                if let Some(inner) =
                    p.ether_payload().filter(|e| e.ether_type.0 == 0x8864).and_then(|e| pppoe_ip(e.payload))
                {
                    let mut d = from_ip(inner)?;
                    if let (Decoded::Ip(ip), Some(LinkSlice::Ethernet2(e))) = (&mut d, &p.link) {
                        ip.src_mac = Some(e.source());
                        ip.dst_mac = Some(e.destination());
                        ip.vlan = p.vlan_ids().first().map(|v| v.value());
                    }
                    return Ok(d);
                }
            }
            from_sliced(&p, None)
        }
        LINUX_SLL => {
            // 16 bytes: packet type, ARPHRD, address length, 8 address bytes, protocol.
            let hdr = data.get(..16).ok_or(link_err("frame shorter than a Linux SLL header"))?;
            let hatype = u16::from_be_bytes([hdr[2], hdr[3]]);
            let alen = usize::from(u16::from_be_bytes([hdr[4], hdr[5]]));
            let proto = u16::from_be_bytes([hdr[14], hdr[15]]);
            let src = (hatype == 1 && alen == 6).then(|| mac(&hdr[6..12])).flatten();
            from_ether_type(proto, &data[16..], src)
        }
        LINUX_SLL2 => {
            // 20 bytes: protocol, reserved, ifindex, ARPHRD, packet type, address length, 8 bytes.
            let hdr = data.get(..20).ok_or(link_err("frame shorter than a Linux SLL2 header"))?;
            let proto = u16::from_be_bytes([hdr[0], hdr[1]]);
            let hatype = u16::from_be_bytes([hdr[8], hdr[9]]);
            let alen = hdr[11];
            let src = (hatype == 1 && alen == 6).then(|| mac(&hdr[12..18])).flatten();
            from_ether_type(proto, &data[20..], src)
        }
        RAW | RAW_BSD | RAW_OPENBSD | IPV4 | IPV6 => from_ip(data),
        NFLOG => match tunnel::nflog(data) {
            Some(ip) => from_ip(ip),
            None => match data.len() {
                0..4 => Err(link_err("frame shorter than an NFLOG header")),
                _ => Ok(Decoded::Other),
            },
        },
        NULL | LOOP => {
            let hdr = data.get(..4).ok_or(link_err("frame shorter than a loopback header"))?;
            // NULL stores the address family in the capturing host's byte order, LOOP in network
            // order; AF_INET is 2 everywhere and AF_INET6 is 10, 24, 28 or 30 depending on the OS.
            let family = if linktype == LOOP {
                u32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]])
            } else {
                let le = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
                if le < 0x100 {
                    le
                } else {
                    u32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]])
                }
            };
            match family {
                2 | 10 | 24 | 28 | 30 => from_ip(&data[4..]),
                _ => Ok(Decoded::Other),
            }
        }
        _ => Err(link_err("unsupported link type")),
    }
}

/// The common case on a camera network, decoded with etherparse's per-layer slices instead of
/// its whole-packet slicing (which copies a large struct at every layer): Ethernet II, up to two
/// VLAN tags, an IPv4 header that is whole (options allowed; the datagram may be cut short by
/// the capture's snap length), and a TCP or UDP header that is whole, in a datagram that is not
/// a fragment. Anything else, or anything one of those slices refuses, is `None` and takes the
/// full path, which gives the same packet (a test holds the two to the same answer on every
/// capture in the repository and on mutations of them).
fn plain_ethernet_ipv4(data: &[u8]) -> Option<IpPacket<'_>> {
    use etherparse::{Ethernet2Slice, LaxIpv4Slice, SingleVlanSlice, TcpSlice, UdpSlice};
    let eth = Ethernet2Slice::from_slice_without_fcs(data).ok()?;
    let (mut ether_type, mut rest) = (eth.ether_type(), eth.payload_slice());
    let mut vlan = None;
    for _ in 0..2 {
        if !matches!(
            ether_type,
            EtherType::VLAN_TAGGED_FRAME | EtherType::PROVIDER_BRIDGING | EtherType::VLAN_DOUBLE_TAGGED_FRAME
        ) {
            break;
        }
        let tag = SingleVlanSlice::from_slice(rest).ok()?;
        vlan = vlan.or(Some(tag.vlan_identifier().value()));
        (ether_type, rest) = (tag.ether_type(), tag.payload_slice());
    }
    if ether_type != EtherType::IPV4 {
        return None;
    }
    let (v4, None) = LaxIpv4Slice::from_slice(rest).ok()? else { return None };
    let h = v4.header();
    let payload = v4.payload();
    if payload.fragmented {
        return None;
    }
    let mut pkt = IpPacket {
        src_mac: Some(eth.source()),
        dst_mac: Some(eth.destination()),
        vlan,
        src_ip: IpAddr::V4(h.source_addr()),
        dst_ip: IpAddr::V4(h.destination_addr()),
        proto: payload.ip_number.0,
        src_port: 0,
        dst_port: 0,
        tcp_flags: 0,
        tcp_seq: 0,
        ip_len: u32::from(h.total_len()),
        payload: &[],
        fragment: false,
        frag: None,
        tunnel: None,
    };
    match payload.ip_number {
        IpNumber::TCP => with_tcp(&mut pkt, &TcpSlice::from_slice(payload.payload).ok()?),
        IpNumber::UDP => with_udp(&mut pkt, &UdpSlice::from_slice_lax(payload.payload).ok()?),
        _ => return None,
    }
    Some(pkt)
}

/// The TCP header's fields and payload, the same on both paths.
fn with_tcp<'a>(pkt: &mut IpPacket<'a>, t: &etherparse::TcpSlice<'a>) {
    pkt.src_port = t.source_port();
    pkt.dst_port = t.destination_port();
    pkt.tcp_seq = t.sequence_number();
    // Byte 13 of the TCP header holds the classic flags.
    pkt.tcp_flags = t.header_slice().get(13).copied().unwrap_or(0);
    pkt.payload = t.payload();
}

fn with_udp<'a>(pkt: &mut IpPacket<'a>, u: &etherparse::UdpSlice<'a>) {
    pkt.src_port = u.source_port();
    pkt.dst_port = u.destination_port();
    pkt.payload = u.payload();
}

/// Whether the plain path, where it answers for an Ethernet frame, gives the packet the full
/// path gives (the decode fuzz target asserts it on every input).
pub fn plain_path_agrees(data: &[u8]) -> bool {
    let Some(plain) = plain_ethernet_ipv4(data) else { return true };
    let full = LaxSlicedPacket::from_ethernet(data)
        .map_err(|_| DecodeError::new(ErrorLayer::Link, "frame shorter than an Ethernet header"))
        .and_then(|p| from_sliced(&p, None));
    full == Ok(Decoded::Ip(plain))
}

/// The IP packet inside a PPPoE session frame (ethertype 0x8864, RFC 2516), as ISPs deliver it.
fn pppoe_ip(payload: &[u8]) -> Option<&[u8]> {
    let hdr = payload.get(..8)?;
    let is_session_data = hdr[0] == 0x11 && hdr[1] == 0x00;
    let ppp_proto = u16::from_be_bytes([hdr[6], hdr[7]]);
    (is_session_data && (ppp_proto == 0x0021 || ppp_proto == 0x0057)).then(|| &payload[8..])
}

/// The IPv6 packet a Teredo datagram (RFC 4380: UDP port 3544) carries, after the optional
/// authentication and origin indicators; `None` when the payload is not one.
pub fn teredo_inner<'a>(outer: &IpPacket<'a>) -> Option<&'a [u8]> {
    const TEREDO_PORT: u16 = 3544;
    if outer.proto != PROTO_UDP || (outer.src_port != TEREDO_PORT && outer.dst_port != TEREDO_PORT) {
        return None;
    }
    let mut p = outer.payload;
    // Authentication indicator: 0x0001, client id length, auth value length, the two, then an
    // 8-byte nonce and a confirmation byte.
    if p.get(..2) == Some(&[0, 1]) {
        let id_len = usize::from(*p.get(2)?);
        let auth_len = usize::from(*p.get(3)?);
        p = p.get(4 + id_len + auth_len + 9..)?;
    }
    // Origin indication: 0x0000, the obfuscated port and address (8 bytes in all).
    if p.get(..2) == Some(&[0, 0]) {
        p = p.get(8..)?;
    }
    // An IPv6 header, whose payload length fits what is there.
    let version = p.first()? >> 4;
    let payload_len = usize::from(u16::from_be_bytes([*p.get(4)?, *p.get(5)?]));
    (version == 6 && p.len() >= 40 && 40 + payload_len <= p.len()).then_some(p)
}

/// The packet a reassembled datagram makes: the addresses and link of its last fragment, the
/// transport header from the datagram's start, and `wire_bytes` (its fragments together) as its
/// IP length. `None` when the transport header is malformed.
pub fn reassembled<'a>(frag: &IpPacket<'_>, payload: &'a [u8], wire_bytes: u64) -> Option<IpPacket<'a>> {
    let mut pkt = IpPacket {
        src_mac: frag.src_mac,
        dst_mac: frag.dst_mac,
        vlan: frag.vlan,
        src_ip: frag.src_ip,
        dst_ip: frag.dst_ip,
        proto: frag.proto,
        src_port: 0,
        dst_port: 0,
        tcp_flags: 0,
        tcp_seq: 0,
        ip_len: u32::try_from(wire_bytes).unwrap_or(u32::MAX),
        payload,
        fragment: false,
        frag: None,
        tunnel: frag.tunnel,
    };
    match IpNumber(frag.proto) {
        IpNumber::TCP => {
            let t = etherparse::TcpSlice::from_slice(payload).ok()?;
            pkt.src_port = t.source_port();
            pkt.dst_port = t.destination_port();
            pkt.tcp_seq = t.sequence_number();
            pkt.tcp_flags = t.header_slice().get(13).copied().unwrap_or(0);
            pkt.payload = t.payload();
        }
        IpNumber::UDP => {
            let u = etherparse::UdpSlice::from_slice(payload).ok()?;
            pkt.src_port = u.source_port();
            pkt.dst_port = u.destination_port();
            pkt.payload = u.payload();
        }
        IpNumber::ICMP => {
            pkt.src_port = u16::from(*payload.first()?);
            pkt.dst_port = u16::from(*payload.get(1)?);
            pkt.payload = &[];
        }
        _ => {}
    }
    Some(pkt)
}

fn from_ip(data: &[u8]) -> Result<Decoded<'_>, DecodeError> {
    let p = LaxSlicedPacket::from_ip(data)
        .map_err(|_| DecodeError::new(ErrorLayer::Network, "malformed IP header"))?;
    from_sliced(&p, None)
}

fn from_ether_type(proto: u16, data: &[u8], src_mac: Option<[u8; 6]>) -> Result<Decoded<'_>, DecodeError> {
    let p = LaxSlicedPacket::from_ether_type(EtherType(proto), data);
    from_sliced(&p, src_mac)
}

fn from_sliced<'a>(p: &LaxSlicedPacket<'a>, link_src: Option<[u8; 6]>) -> Result<Decoded<'a>, DecodeError> {
    let (src_mac, dst_mac) = match &p.link {
        Some(LinkSlice::Ethernet2(e)) => (Some(e.source()), Some(e.destination())),
        _ => (link_src, None),
    };
    let vlan = p.vlan_ids().first().map(|v| v.value());
    let layer_err = |layer: Layer| match layer {
        Layer::LinuxSllHeader
        | Layer::Ethernet2Header
        | Layer::EtherPayload
        | Layer::VlanHeader
        | Layer::MacsecHeader
        | Layer::MacsecPacket => ErrorLayer::Link,
        Layer::IpHeader
        | Layer::Ipv4Header
        | Layer::Ipv4Packet
        | Layer::IpAuthHeader
        | Layer::Ipv6Header
        | Layer::Ipv6Packet
        | Layer::Ipv6ExtHeader
        | Layer::Ipv6HopByHopHeader
        | Layer::Ipv6DestOptionsHeader
        | Layer::Ipv6RouteHeader
        | Layer::Ipv6FragHeader
        | Layer::Arp => ErrorLayer::Network,
        _ => ErrorLayer::Transport,
    };
    let Some(net) = &p.net else {
        return match &p.stop_err {
            Some((_, layer)) => Err(DecodeError::new(layer_err(*layer), "truncated or malformed header")),
            None => Ok(Decoded::Other),
        };
    };
    let mut frag = None;
    let (src_ip, dst_ip, ip_len, payload) = match net {
        LaxNetSlice::Ipv4(v4) => {
            let h = v4.header();
            if v4.payload().fragmented {
                frag = Some(Fragment {
                    id: u32::from(h.identification()),
                    offset: h.fragments_offset(),
                    more: h.more_fragments(),
                    data: v4.payload().payload,
                });
            }
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                u32::from(h.total_len()),
                v4.payload(),
            )
        }
        LaxNetSlice::Ipv6(v6) => {
            let h = v6.header();
            if v6.payload().fragmented {
                let header = v6.extensions().clone().into_iter().find_map(|e| match e {
                    etherparse::Ipv6ExtensionSlice::Fragment(f) => Some(f),
                    _ => None,
                });
                frag = header.map(|f| Fragment {
                    id: f.identification(),
                    offset: f.fragment_offset(),
                    more: f.more_fragments(),
                    data: v6.payload().payload,
                });
            }
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                40 + u32::from(h.payload_length()),
                v6.payload(),
            )
        }
        LaxNetSlice::Arp(arp) => {
            let sender_mac = mac(arp.sender_hw_addr());
            let sender_ip: Option<[u8; 4]> = arp.sender_protocol_addr().try_into().ok();
            return match (sender_mac, sender_ip) {
                (Some(m), Some(ip)) if arp.proto_addr_type() == EtherType::IPV4 => {
                    Ok(Decoded::Arp(Arp { sender_mac: m, sender_ip: Ipv4Addr::from(ip), vlan }))
                }
                _ => Ok(Decoded::Other),
            };
        }
    };
    let mut pkt = IpPacket {
        src_mac,
        dst_mac,
        vlan,
        src_ip,
        dst_ip,
        proto: payload.ip_number.0,
        src_port: 0,
        dst_port: 0,
        tcp_flags: 0,
        tcp_seq: 0,
        ip_len,
        payload: &[],
        fragment: payload.fragmented,
        frag,
        tunnel: None,
    };
    match &p.transport {
        Some(TransportSlice::Tcp(t)) => with_tcp(&mut pkt, t),
        Some(TransportSlice::Udp(u)) => with_udp(&mut pkt, u),
        Some(TransportSlice::Icmpv4(i)) => {
            pkt.src_port = u16::from(i.type_u8());
            pkt.dst_port = u16::from(i.code_u8());
        }
        Some(TransportSlice::Icmpv6(i)) => {
            pkt.src_port = u16::from(i.type_u8());
            pkt.dst_port = u16::from(i.code_u8());
        }
        Some(_) => {}
        None => {
            if let Some((_, layer)) = &p.stop_err {
                let l = layer_err(*layer);
                if l == ErrorLayer::Transport && !pkt.fragment {
                    return Err(DecodeError::new(l, "truncated or malformed transport header"));
                }
            }
            // A protocol etherparse does not slice (GRE, IP in IP, ESP, …): its bytes are the
            // payload, for tunnels and payload signatures.
            if !pkt.fragment {
                pkt.payload = payload.payload;
            }
        }
    }
    Ok(Decoded::Ip(pkt))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::packet::{tcp_flags, PROTO_TCP};

    #[test]
    fn teredo_carries_ipv6_after_its_indicators() {
        let mut ipv6 = vec![0x60, 0, 0, 0, 0, 0, 59, 64];
        ipv6.extend_from_slice(&[
            0x20, 0x01, 0, 0, 0x41, 0x37, 0x9e, 0x50, 0x80, 0, 0xf1, 0x2a, 0xb9, 0xc8, 0x28, 0x15,
        ]);
        ipv6.extend_from_slice(&[0x20, 0x01, 0x48, 0x60, 0, 0, 0x20, 0x01, 0, 0, 0, 0, 0, 0, 0, 0x68]);
        let udp = |payload: &[u8], sport: u16| {
            let mut f = Vec::new();
            etherparse::PacketBuilder::ipv4([192, 168, 2, 16], [83, 170, 1, 38], 64)
                .udp(sport, 3544)
                .write(&mut f, payload)
                .unwrap_or_else(|e| panic!("{e}"));
            f
        };
        let inner = |frame: &[u8]| match decode(linktype::RAW, frame) {
            Ok(Decoded::Ip(ip)) => teredo_inner(&ip).map(<[u8]>::to_vec),
            other => panic!("{other:?}"),
        };
        assert_eq!(inner(&udp(&ipv6, 40000)), Some(ipv6.clone()));
        let mut origin = vec![0, 0, 0x12, 0x34, 1, 2, 3, 4];
        origin.extend_from_slice(&ipv6);
        assert_eq!(inner(&udp(&origin, 40000)), Some(ipv6.clone()));
        // Not IPv6, cut short, or another port: nothing.
        assert_eq!(inner(&udp(&[0x45; 40], 40000)), None);
        assert_eq!(inner(&udp(&ipv6[..30], 40000)), None);
        let mut other = Vec::new();
        etherparse::PacketBuilder::ipv4([192, 168, 2, 16], [83, 170, 1, 38], 64)
            .udp(40000, 3545)
            .write(&mut other, &ipv6)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(inner(&other), None);
    }
    use etherparse::PacketBuilder;

    fn tcp_frame(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([0x44, 0x47, 0xcc, 1, 2, 3], [0x24, 0x28, 0xfd, 4, 5, 6])
            .ipv4([192, 168, 10, 11], [203, 0, 113, 50], 64)
            .tcp(40000, 443, 1000, 64240)
            .syn();
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap_or_else(|e| panic!("{e}"));
        out
    }

    /// Every Ethernet frame of every capture in the repository, and thousands of mutations of
    /// their headers: where the plain path answers, the full path
    /// (etherparse's whole-packet slicing) answers the same.
    #[test]
    fn the_plain_path_agrees_with_the_full_decode() {
        let mut frames: Vec<Vec<u8>> = Vec::new();
        for path in crate::capture::repository_captures() {
            let Ok(mut src) = crate::capture::Source::file(&path) else { continue };
            while let Ok(crate::capture::Next::Packet(p)) = src.next_packet() {
                if p.linktype == linktype::ETHERNET {
                    frames.push(p.data);
                }
            }
        }
        let (mut plain, mut mutated) = (0, 0);
        let check = |data: &[u8], plain: &mut usize| {
            if plain_ethernet_ipv4(data).is_some() {
                *plain += 1;
                assert!(plain_path_agrees(data), "frame {data:02x?}");
            }
        };
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for f in &frames {
            check(f, &mut plain);
            // Flip bytes in the headers (lengths, IHL, data offset, ethertypes, flags), and cut
            // the frame short.
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let mut m = f.clone();
                let at = (x % 70) as usize;
                if let Some(b) = m.get_mut(at) {
                    *b ^= (x >> 8) as u8 | 1;
                }
                let cut = m.len().saturating_sub(((x >> 16) % 24) as usize);
                check(&m, &mut mutated);
                check(&m[..cut], &mut mutated);
            }
        }
        assert!(frames.len() > 5_000, "{} frames", frames.len());
        assert!(plain > frames.len() / 2, "the plain path took {plain} of {} frames", frames.len());
        assert!(mutated > 10_000, "the plain path took {mutated} mutated frames");
    }

    #[test]
    fn ethernet_ipv4_tcp() {
        let f = tcp_frame(b"");
        let Ok(Decoded::Ip(p)) = decode(linktype::ETHERNET, &f) else { panic!("not decoded") };
        assert_eq!(p.src_ip, IpAddr::from([192, 168, 10, 11]));
        assert_eq!(p.dst_port, 443);
        assert_eq!(p.proto, PROTO_TCP);
        assert_eq!(p.tcp_flags & tcp_flags::SYN, tcp_flags::SYN);
        assert_eq!(p.src_mac, Some([0x44, 0x47, 0xcc, 1, 2, 3]));
        assert_eq!(p.ip_len, 40);
    }

    #[test]
    fn vlan_and_qinq() {
        let f = tcp_frame(b"x");
        // Insert 802.1ad (outer 100) and 802.1Q (inner 200) tags after the MAC addresses.
        let mut q = f[..12].to_vec();
        q.extend_from_slice(&[0x88, 0xa8, 0x00, 100, 0x81, 0x00, 0x00, 200]);
        q.extend_from_slice(&f[12..]);
        let Ok(Decoded::Ip(p)) = decode(linktype::ETHERNET, &q) else { panic!("not decoded") };
        assert_eq!(p.vlan, Some(100));
        assert_eq!(p.payload, b"x");
    }

    #[test]
    fn sll_sll2_raw_and_null() {
        let f = tcp_frame(b"abc");
        let ip = &f[14..];
        let mut sll = vec![0, 0, 0, 1, 0, 6, 0x44, 0x47, 0xcc, 1, 2, 3, 0, 0, 0x08, 0x00];
        sll.extend_from_slice(ip);
        let mut sll2 = vec![0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 0x44, 0x47, 0xcc, 1, 2, 3, 0, 0];
        sll2.extend_from_slice(ip);
        let mut null = vec![2, 0, 0, 0];
        null.extend_from_slice(ip);
        let mut lo = vec![0, 0, 0, 2];
        lo.extend_from_slice(ip);
        for (lt, data) in [
            (linktype::LINUX_SLL, &sll),
            (linktype::LINUX_SLL2, &sll2),
            (linktype::NULL, &null),
            (linktype::LOOP, &lo),
            (linktype::RAW, &ip.to_vec()),
        ] {
            let Ok(Decoded::Ip(p)) = decode(lt, data) else { panic!("linktype {lt} not decoded") };
            assert_eq!(p.payload, b"abc", "linktype {lt}");
            assert_eq!(p.dst_ip, IpAddr::from([203, 0, 113, 50]));
        }
        let Ok(Decoded::Ip(p)) = decode(linktype::LINUX_SLL, &sll) else { panic!() };
        assert_eq!(p.src_mac, Some([0x44, 0x47, 0xcc, 1, 2, 3]));
    }

    #[test]
    fn truncation_is_an_error_at_the_right_layer_never_a_panic() {
        let f = tcp_frame(b"payload");
        assert_eq!(decode(linktype::ETHERNET, &f[..10]).err().map(|e| e.layer), Some(ErrorLayer::Link));
        assert_eq!(decode(linktype::ETHERNET, &f[..20]).err().map(|e| e.layer), Some(ErrorLayer::Network));
        assert_eq!(decode(linktype::ETHERNET, &f[..40]).err().map(|e| e.layer), Some(ErrorLayer::Transport));
        assert_eq!(decode(9999, &f).err().map(|e| e.layer), Some(ErrorLayer::Link));
        // Every prefix of every link type decodes or errors, never panics.
        for lt in [0, 1, 12, 101, 108, 113, 228, 229, 276] {
            for n in 0..f.len() {
                let _ = decode(lt, &f[..n]);
            }
        }
    }

    #[test]
    fn ip_length_comes_from_the_header_not_the_capture() {
        let f = tcp_frame(&[0u8; 1000]);
        // Snaplen 96: the payload is cut but the IP length is what was on the wire.
        let Ok(Decoded::Ip(p)) = decode(linktype::ETHERNET, &f[..96]) else { panic!() };
        assert_eq!(p.ip_len, 1040);
        assert_eq!(p.payload.len(), 96 - 14 - 40);
    }

    #[test]
    fn pppoe_session_frames_carry_ip() {
        let f = tcp_frame(b"pp");
        let mut q = f[..12].to_vec();
        q.extend_from_slice(&[
            0x81, 0x00, 0x01, 0xa5, 0x88, 0x64, 0x11, 0x00, 0x55, 0x6a, 0x00, 0x3f, 0x00, 0x21,
        ]);
        q.extend_from_slice(&f[14..]);
        let Ok(Decoded::Ip(p)) = decode(linktype::ETHERNET, &q) else { panic!("not decoded") };
        assert_eq!(p.payload, b"pp");
        assert_eq!(p.vlan, Some(421));
        assert_eq!(p.src_mac, Some([0x44, 0x47, 0xcc, 1, 2, 3]));
    }

    #[test]
    fn layer2_sadp_is_recognised() {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[0x44, 0x47, 0xcc, 1, 2, 3, 0x80, 0x33]);
        f.extend_from_slice(&[0x21, 0x02, 0x01, 0x42]);
        let Ok(Decoded::SadpL2 { src_mac, payload }) = decode(linktype::ETHERNET, &f) else { panic!() };
        assert_eq!(src_mac, [0x44, 0x47, 0xcc, 1, 2, 3]);
        assert_eq!(payload, &[0x21, 0x02, 0x01, 0x42]);
    }

    #[test]
    fn arp_sender_is_reported() {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[0x44, 0x47, 0xcc, 1, 2, 3, 0x08, 0x06]);
        f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        f.extend_from_slice(&[0x44, 0x47, 0xcc, 1, 2, 3, 192, 168, 10, 11]);
        f.extend_from_slice(&[0, 0, 0, 0, 0, 0, 192, 168, 10, 1]);
        let Ok(Decoded::Arp(a)) = decode(linktype::ETHERNET, &f) else { panic!() };
        assert_eq!(a.sender_ip, Ipv4Addr::new(192, 168, 10, 11));
        assert_eq!(a.sender_mac, [0x44, 0x47, 0xcc, 1, 2, 3]);
    }
}
