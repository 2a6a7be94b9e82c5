//! What an encapsulating packet carries: the headers of GRE (RFC 2784, 2890; ERSPAN types I, II
//! and III; PPTP's enhanced GRE, RFC 2637; in UDP, RFC 8086), VXLAN (RFC 7348), Geneve (RFC 8926), GTP-U (3GPP TS
//! 29.281), AYIYA, IP in IP (RFC 2003, 4213) and MPLS label stacks (RFC 3032), read small and by
//! hand (etherparse decodes none of them). Every length is checked against the bytes there;
//! anything that does not fit is "not a tunnel" and the outer packet is analysed as it is.

use crate::model::packet::{IpPacket, TunnelKind, PROTO_UDP};

/// Encapsulations followed inside one another at most.
pub(super) const MAX_DEPTH: u8 = 4;

/// What a tunnel carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Inner<'a> {
    Ethernet(&'a [u8]),
    Ip(&'a [u8]),
    Ppp(&'a [u8]),
}

const PROTO_IPIP: u8 = 4;
const PROTO_IPV6: u8 = 41;
const PROTO_GRE: u8 = 47;

const VXLAN_PORT: u16 = 4789;
const GENEVE_PORT: u16 = 6081;
const GTP_U_PORT: u16 = 2152;
const AYIYA_PORT: u16 = 5072;
const GRE_UDP_PORT: u16 = 4754;

/// The tunnel an outer packet is, and what it carries.
pub(super) fn inner<'a>(outer: &IpPacket<'a>) -> Option<(TunnelKind, Inner<'a>)> {
    if outer.fragment {
        return None;
    }
    match outer.proto {
        PROTO_IPIP | PROTO_IPV6 => Some((TunnelKind::IpInIp, Inner::Ip(outer.payload))),
        PROTO_GRE => gre(outer.payload),
        PROTO_UDP => udp(outer),
        _ => None,
    }
}

fn be16(p: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*p.get(at)?, *p.get(at + 1)?]))
}

fn gre(p: &[u8]) -> Option<(TunnelKind, Inner<'_>)> {
    let flags = be16(p, 0)?;
    let proto = be16(p, 2)?;
    let (checksum, routing, key, seq) =
        (flags & 0x8000 != 0, flags & 0x4000 != 0, flags & 0x2000 != 0, flags & 0x1000 != 0);
    match flags & 0x7 {
        0 => {
            // RFC 1701 source routing is deprecated and never seen on a mirror: not followed.
            if routing {
                return None;
            }
            let off = 4 + 4 * (usize::from(checksum) + usize::from(key) + usize::from(seq));
            let body = p.get(off..)?;
            match proto {
                0x0800 | 0x86dd => Some((TunnelKind::Gre, Inner::Ip(body))),
                0x6558 => Some((TunnelKind::Gre, Inner::Ethernet(body))),
                // ERSPAN type II has a sequence number and an 8-byte header (version 1); type
                // I has neither and the mirrored frame follows GRE at once.
                0x88be if seq => {
                    let version = body.first()? >> 4;
                    (version == 1)
                        .then(|| body.get(8..))
                        .flatten()
                        .map(|b| (TunnelKind::ErspanII, Inner::Ethernet(b)))
                }
                0x88be => Some((TunnelKind::ErspanI, Inner::Ethernet(body))),
                // ERSPAN type III: a 12-byte header (version 2), 8 more when its O flag says a
                // platform-specific subheader follows; frame type 0 is Ethernet.
                0x22eb => {
                    let version = body.first()? >> 4;
                    let word3 = be16(body, 10)?;
                    let frame_type = (word3 >> 10) & 0x1f;
                    let sub = if word3 & 0x1 != 0 { 8 } else { 0 };
                    (version == 2 && frame_type == 0)
                        .then(|| body.get(12 + sub..))
                        .flatten()
                        .map(|b| (TunnelKind::ErspanIII, Inner::Ethernet(b)))
                }
                _ => None,
            }
        }
        // PPTP's enhanced GRE: the key (payload length, call id) is always there, then an
        // optional sequence and acknowledgement number; the payload is PPP.
        1 => {
            if proto != 0x880b || !key {
                return None;
            }
            let ack = flags & 0x0080 != 0;
            let off = 8 + 4 * (usize::from(seq) + usize::from(ack));
            Some((TunnelKind::Pptp, Inner::Ppp(p.get(off..)?)))
        }
        _ => None,
    }
}

fn udp<'a>(o: &IpPacket<'a>) -> Option<(TunnelKind, Inner<'a>)> {
    let p = o.payload;
    let port = |n: u16| o.src_port == n || o.dst_port == n;
    if o.dst_port == VXLAN_PORT {
        // Flags with the I bit (a valid VNI), 3 reserved bytes, the VNI and a reserved byte.
        return (p.first()? & 0x08 != 0)
            .then(|| p.get(8..))
            .flatten()
            .map(|b| (TunnelKind::Vxlan, Inner::Ethernet(b)));
    }
    if o.dst_port == GENEVE_PORT {
        let b0 = *p.first()?;
        if b0 >> 6 != 0 {
            return None;
        }
        let body = p.get(8 + usize::from(b0 & 0x3f) * 4..)?;
        return match be16(p, 2)? {
            0x6558 => Some((TunnelKind::Geneve, Inner::Ethernet(body))),
            0x0800 | 0x86dd => Some((TunnelKind::Geneve, Inner::Ip(body))),
            _ => None,
        };
    }
    // GRE in UDP (RFC 8086): the GRE header follows the UDP header.
    if o.dst_port == GRE_UDP_PORT {
        return gre(p);
    }
    if port(GTP_U_PORT) {
        return gtp_u(p).map(|b| (TunnelKind::GtpU, Inner::Ip(b)));
    }
    if port(AYIYA_PORT) {
        // Identity length as a power of two, signature length in 4-byte words; opcode 1
        // forwards a packet.
        let (b0, b1, b2) = (*p.first()?, *p.get(1)?, *p.get(2)?);
        if b2 & 0x0f != 1 {
            return None;
        }
        let header = 8 + (1usize << (b0 >> 4)) + usize::from(b1 >> 4) * 4;
        return Some((TunnelKind::Ayiya, Inner::Ip(p.get(header..)?)));
    }
    None
}

/// The user packet of a GTP-U G-PDU (version 1, protocol type GTP).
fn gtp_u(p: &[u8]) -> Option<&[u8]> {
    let flags = *p.first()?;
    if flags >> 5 != 1 || flags & 0x10 == 0 || *p.get(1)? != 0xff {
        return None;
    }
    let mut off = 8;
    // Any of E, S, PN: sequence number, N-PDU number and the next extension header type.
    if flags & 0x07 != 0 {
        off = 12;
        let mut next = *p.get(11)?;
        if flags & 0x04 != 0 {
            // Extension headers: a length in 4-byte units, content, the next type last.
            while next != 0 {
                let len = usize::from(*p.get(off)?) * 4;
                if len == 0 {
                    return None;
                }
                next = *p.get(off + len - 1)?;
                off += len;
            }
        }
    }
    p.get(off..)
}

/// The IP packet in a PPP frame: optional address and control bytes, then the protocol
/// (compressed to one byte or not): IPv4 0x21, IPv6 0x57.
pub(super) fn ppp_ip(p: &[u8]) -> Option<&[u8]> {
    let p = p.strip_prefix(&[0xff, 0x03]).unwrap_or(p);
    match *p.first()? {
        0x21 | 0x57 => p.get(1..),
        0x00 if matches!(p.get(1), Some(0x21 | 0x57)) => p.get(2..),
        _ => None,
    }
}

/// After an MPLS label stack (ethertype 0x8847/0x8848): the IP packet (its version nibble), or
/// an Ethernet pseudowire after a zero control word.
pub(super) fn mpls(p: &[u8]) -> Option<Inner<'_>> {
    let mut off = 0;
    loop {
        let entry = p.get(off..off + 4)?;
        off += 4;
        if entry[2] & 0x01 != 0 {
            break;
        }
        if off > 4 * 16 {
            return None;
        }
    }
    let rest = p.get(off..)?;
    match rest.first()? >> 4 {
        4 | 6 => Some(Inner::Ip(rest)),
        0 => rest.get(4..).map(Inner::Ethernet),
        _ => None,
    }
}

/// The ethertype and payload of an IEEE 802.2 LLC frame with a SNAP header (AA-AA-03, an OUI
/// of zero, then an ethertype).
pub(super) fn llc_snap(p: &[u8]) -> Option<(u16, &[u8])> {
    let h = p.get(..8)?;
    (h[..6] == [0xaa, 0xaa, 0x03, 0, 0, 0]).then(|| (u16::from_be_bytes([h[6], h[7]]), &p[8..]))
}

/// The IP packet in an NFLOG record (link type 239): a 4-byte header, then TLVs in the
/// capturing host's byte order (little-endian assumed, big-endian tried when that does not fit),
/// padded to 4 bytes; type 9 is the packet.
pub(super) fn nflog(p: &[u8]) -> Option<&[u8]> {
    const NFULA_PAYLOAD: u16 = 9;
    let body = p.get(4..)?;
    for big_endian in [false, true] {
        let mut off = 0;
        let read = |at: usize| -> Option<u16> {
            let b = [*body.get(at)?, *body.get(at + 1)?];
            Some(if big_endian { u16::from_be_bytes(b) } else { u16::from_le_bytes(b) })
        };
        while off + 4 <= body.len() {
            let (Some(len), Some(ty)) = (read(off), read(off + 2)) else { break };
            let len = usize::from(len);
            if len < 4 || off + len > body.len() {
                break;
            }
            if ty == NFULA_PAYLOAD {
                return body.get(off + 4..off + len);
            }
            off += (len + 3) & !3;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gre_headers_with_every_optional_field() {
        let ip = [0x45u8, 0, 0, 20];
        // Plain GRE carrying IPv4; with checksum, key and sequence.
        let mut plain = vec![0, 0, 0x08, 0];
        plain.extend_from_slice(&ip);
        assert_eq!(gre(&plain), Some((TunnelKind::Gre, Inner::Ip(&ip[..]))));
        let mut full = vec![0xb0, 0, 0x08, 0];
        full.extend_from_slice(&[0; 12]);
        full.extend_from_slice(&ip);
        assert_eq!(gre(&full), Some((TunnelKind::Gre, Inner::Ip(&ip[..]))));
        // Cut short, routing present, an unknown version: not a tunnel.
        assert_eq!(gre(&full[..10]), None);
        assert_eq!(gre(&[0x40, 0, 0x08, 0, 1, 2, 3, 4]), None);
        assert_eq!(gre(&[0, 2, 0x08, 0]), None);
    }

    #[test]
    fn erspan_types_and_pptp() {
        let eth = [0xaau8; 14];
        // Type I: no sequence, the frame at once.
        let mut t1 = vec![0, 0, 0x88, 0xbe];
        t1.extend_from_slice(&eth);
        assert_eq!(gre(&t1), Some((TunnelKind::ErspanI, Inner::Ethernet(&eth[..]))));
        // Type II: sequence number, then an 8-byte header of version 1.
        let mut t2 = vec![0x10, 0, 0x88, 0xbe, 0, 0, 0, 1, 0x10, 0x01, 0, 0x02, 0, 0, 0, 0];
        t2.extend_from_slice(&eth);
        assert_eq!(gre(&t2), Some((TunnelKind::ErspanII, Inner::Ethernet(&eth[..]))));
        // Type III with the platform subheader (O flag).
        let mut t3 = vec![0x10, 0, 0x22, 0xeb, 0, 0, 0, 1, 0x20, 0x01, 0, 0x02];
        t3.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0x01]);
        t3.extend_from_slice(&[0; 8]);
        t3.extend_from_slice(&eth);
        assert_eq!(gre(&t3), Some((TunnelKind::ErspanIII, Inner::Ethernet(&eth[..]))));
        // PPTP: version 1, key present, sequence and acknowledgement.
        let mut pptp = vec![0x30, 0x81, 0x88, 0x0b, 0, 4, 0, 7, 0, 0, 0, 1, 0, 0, 0, 1];
        pptp.extend_from_slice(&[0xff, 0x03, 0x00, 0x21, 0x45]);
        let Some((TunnelKind::Pptp, Inner::Ppp(ppp))) = gre(&pptp) else { panic!("not pptp") };
        assert_eq!(ppp_ip(ppp), Some(&[0x45u8][..]));
        assert_eq!(ppp_ip(&[0x57, 0x60]), Some(&[0x60u8][..]));
        assert_eq!(ppp_ip(&[0xc0, 0x21, 1]), None, "LCP is not IP");
    }

    #[test]
    fn gtp_u_with_extension_headers() {
        // Version 1, PT, E: sequence, N-PDU, next type 0x85, one 4-byte extension, then IPv4.
        let mut p = vec![0x34, 0xff, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0x85, 1, 0x10, 0x09, 0x00, 0x45];
        assert_eq!(gtp_u(&p), Some(&[0x45u8][..]));
        // Not a G-PDU (an echo request), or GTP' (PT = 0): nothing.
        p[1] = 1;
        assert_eq!(gtp_u(&p), None);
        assert_eq!(gtp_u(&[0x20, 0xff, 0, 0, 0, 0, 0, 0, 0x45]), None);
        // An extension that claims zero length would loop: refused.
        assert_eq!(gtp_u(&[0x34, 0xff, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0x85, 0, 0, 0, 0]), None);
    }

    #[test]
    fn mpls_llc_and_nflog() {
        assert_eq!(mpls(&[0, 0, 0x11, 64, 0x45, 0]), Some(Inner::Ip(&[0x45, 0][..])));
        assert_eq!(mpls(&[0, 0, 0x10, 64, 0, 0, 0x11, 64, 0x60]), Some(Inner::Ip(&[0x60][..])));
        assert_eq!(mpls(&[0, 0, 0x11, 64, 0, 0, 0, 0, 0xaa]), Some(Inner::Ethernet(&[0xaa][..])));
        assert_eq!(mpls(&[0, 0, 0x10, 64]), None, "no bottom of stack");
        assert_eq!(llc_snap(&[0xaa, 0xaa, 3, 0, 0, 0, 8, 0, 0x45]), Some((0x0800, &[0x45u8][..])));
        assert_eq!(llc_snap(&[0x42, 0x42, 3, 0, 0, 0, 8, 0, 0x45]), None, "STP's LLC is not SNAP");
        // Header, a prefix TLV (type 1, 8 bytes), the payload TLV (type 9) padded.
        let nf = [2, 0, 0, 0, 8, 0, 1, 0, 8, 0, 0, 0, 6, 0, 9, 0, 0x45, 0x00, 0, 0];
        assert_eq!(nflog(&nf), Some(&[0x45u8, 0][..]));
        assert_eq!(nflog(&[2, 0, 0, 0, 0xff, 0xff, 9, 0]), None, "a TLV longer than the record");
    }
}
