//! IPv4 reassembly, so a payload split into fragments (an old evasion trick against signature
//! matching) reaches the parsers whole. etherparse's `IpDefragBuf` places the bytes; this module
//! bounds what an attacker can make it hold: datagrams in progress per worker, and their age.
//! A full table never refuses a new datagram: the oldest one in progress makes room (counted in
//! `evicted`), so a flood of first fragments that never complete cannot hide the datagram that
//! follows it. Memory: at most 256 datagrams of at most 64 KiB each per worker (16 MiB).
//! The reassembled datagram is what flows count (as the fragments it came in, and their bytes)
//! and what the parsers see; fragments of a datagram that never completes are counted in
//! `camwatch_fragments_dropped_total` only. IPv6 fragments are not reassembled.

use crate::model::FastMap as HashMap;
use std::net::IpAddr;

use etherparse::defrag::IpDefragBuf;
use etherparse::IpNumber;

use crate::model::evict::victims;
use crate::model::packet::IpPacket;
use crate::model::time::Micros;

/// Datagrams being reassembled at once per worker (each at most 64 KiB).
const MAX_DATAGRAMS: usize = 256;

/// A datagram whose fragments have not all arrived by then is dropped (packet time).
const TIMEOUT: Micros = 30_000_000;

type Key = (IpAddr, IpAddr, u32, u8);

/// A datagram put back together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// The whole IP payload, transport header included.
    pub payload: Vec<u8>,
    /// Fragments it came in, and their bytes on the wire (IP headers included).
    pub fragments: u64,
    pub wire_bytes: u64,
}

#[derive(Debug)]
struct Partial {
    buf: IpDefragBuf,
    started: Micros,
    fragments: u64,
    wire_bytes: u64,
}

#[derive(Debug, Default)]
pub struct Defrag {
    active: HashMap<Key, Partial>,
    /// Datagrams dropped: evicted to make room, fragments conflicted, or they timed out.
    pub dropped: u64,
    /// Of those, datagrams evicted to make room for a new one, and the sources with the most in
    /// progress at the last such eviction.
    pub evicted: u64,
    pub top_sources: Vec<(IpAddr, u64)>,
    /// Datagrams reassembled.
    pub reassembled: u64,
}

impl Defrag {
    pub fn len(&self) -> usize {
        self.active.len()
    }

    pub fn is_empty(&self) -> bool {
        self.active.is_empty()
    }

    /// Adds a fragment; returns the datagram once every fragment has arrived.
    pub fn add(&mut self, pkt: &IpPacket<'_>, ts: Micros) -> Option<Datagram> {
        let frag = pkt.frag?;
        let key = (pkt.src_ip, pkt.dst_ip, frag.id, pkt.proto);
        if !self.active.contains_key(&key) {
            self.expire(ts);
            if self.active.len() >= MAX_DATAGRAMS {
                // Full: an eighth of the table makes room, the datagrams of the sources with the
                // most in progress first, the oldest among them first (a sort of at most 256
                // entries, once per 32 new datagrams while the table is full).
                let entries = self.active.iter().map(|(k, p)| (k.0, p.started, *k));
                let chosen = victims(entries, MAX_DATAGRAMS / 8);
                for k in chosen.keys {
                    self.active.remove(&k);
                    self.dropped += 1;
                    self.evicted += 1;
                }
                self.top_sources = chosen.top;
            }
        }
        let p = self.active.entry(key).or_insert_with(|| Partial {
            buf: IpDefragBuf::new(IpNumber(pkt.proto), Vec::new(), Vec::new()),
            started: ts,
            fragments: 0,
            wire_bytes: 0,
        });
        p.fragments += 1;
        p.wire_bytes += u64::from(pkt.ip_len);
        if p.buf.add(frag.offset, frag.more, frag.data).is_err() {
            self.active.remove(&key);
            self.dropped += 1;
            return None;
        }
        if !p.buf.is_complete() {
            return None;
        }
        let p = self.active.remove(&key)?;
        self.reassembled += 1;
        Some(Datagram { payload: p.buf.take_bufs().0, fragments: p.fragments, wire_bytes: p.wire_bytes })
    }

    /// Drops datagrams older than the timeout.
    pub fn expire(&mut self, now: Micros) {
        let before = self.active.len();
        self.active.retain(|_, p| p.started.saturating_add(TIMEOUT) > now);
        self.dropped += (before - self.active.len()) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{decode, Decoded};
    use crate::model::packet::linktype;
    use etherparse::PacketBuilder;

    /// A UDP datagram to port 53 carrying `payload`, cut into IPv4 fragments of `size` bytes.
    fn fragments(payload: &[u8], size: usize, id: u16) -> Vec<Vec<u8>> {
        fragments_from([192, 168, 10, 5], payload, size, id)
    }

    fn fragments_from(src: [u8; 4], payload: &[u8], size: usize, id: u16) -> Vec<Vec<u8>> {
        let mut udp = Vec::new();
        PacketBuilder::ipv4(src, [192, 168, 10, 1], 64)
            .udp(40000, 53)
            .write(&mut udp, payload)
            .unwrap_or_else(|e| panic!("{e}"));
        let ip_payload = &udp[20..];
        let chunks: Vec<&[u8]> = ip_payload.chunks(size).collect();
        chunks
            .iter()
            .enumerate()
            .map(|(i, chunk)| {
                let mut h = etherparse::Ipv4Header::new(
                    chunk.len() as u16,
                    64,
                    IpNumber::UDP,
                    src,
                    [192, 168, 10, 1],
                )
                .unwrap_or_else(|e| panic!("{e}"));
                h.identification = id;
                h.more_fragments = i + 1 < chunks.len();
                h.fragment_offset = etherparse::IpFragOffset::try_new((i * size / 8) as u16)
                    .unwrap_or_else(|e| panic!("{e}"));
                h.header_checksum = h.calc_header_checksum();
                let mut out = h.to_bytes().to_vec();
                out.extend_from_slice(chunk);
                out
            })
            .collect()
    }

    fn add(d: &mut Defrag, frame: &[u8], ts: Micros) -> Option<Datagram> {
        match decode(linktype::RAW, frame) {
            Ok(Decoded::Ip(ip)) => {
                assert!(ip.fragment && ip.frag.is_some());
                d.add(&ip, ts)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fragments_in_any_order_make_the_datagram() {
        let payload: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let mut frags = fragments(&payload, 304, 7);
        assert_eq!(frags.len(), 4);
        frags.swap(0, 3);
        let mut d = Defrag::default();
        let mut whole = None;
        for f in &frags {
            assert!(whole.is_none(), "complete before the last fragment");
            whole = add(&mut d, f, 1);
        }
        let whole = whole.unwrap_or_else(|| panic!("not reassembled"));
        assert_eq!(&whole.payload[..4], &[0x9c, 0x40, 0, 53], "the UDP header, ports 40000 -> 53");
        assert_eq!(&whole.payload[8..], &payload[..]);
        assert_eq!((whole.fragments, whole.wire_bytes), (4, 1008 + 4 * 20));
        assert!(d.is_empty());
        assert_eq!((d.reassembled, d.dropped), (1, 0));
    }

    #[test]
    fn incomplete_datagrams_are_bounded_and_time_out() {
        let mut d = Defrag::default();
        for id in 0..(MAX_DATAGRAMS as u16 + 10) {
            let frags = fragments(&[1; 600], 304, id);
            assert!(add(&mut d, &frags[0], 1).is_none());
        }
        // The first newcomer past the bound made room for an eighth of the table.
        let evicted = (MAX_DATAGRAMS / 8) as u64;
        assert_eq!(d.len(), MAX_DATAGRAMS + 10 - evicted as usize);
        assert_eq!((d.dropped, d.evicted), (evicted, evicted));
        d.expire(1 + TIMEOUT);
        assert!(d.is_empty());
        assert_eq!(d.dropped, (MAX_DATAGRAMS + 10) as u64);
    }

    /// 20,000 first fragments that never complete, then a fragmented datagram: it is still put
    /// back together, because the flood's oldest entries make room instead of the table refusing.
    #[test]
    fn a_flood_of_incomplete_datagrams_cannot_hide_the_next_one() {
        let mut d = Defrag::default();
        // Another host's datagram, begun before the flood and finished after it: the flooder's
        // datagrams make room, not this one, though it is the oldest.
        let other = b"begun before the flood".repeat(40);
        let other_frags = fragments_from([192, 168, 10, 77], &other, 304, 0x1234);
        assert!(add(&mut d, &other_frags[0], 0).is_none());
        for i in 0..20_000u32 {
            let frags = fragments(&[0xee; 600], 304, i as u16);
            assert!(add(&mut d, &frags[0], u64::from(i)).is_none());
        }
        assert!(d.len() <= MAX_DATAGRAMS);
        assert_eq!(d.top_sources.first().map(|s| s.0), Some(IpAddr::from([192, 168, 10, 5])));
        let mut whole = None;
        for f in &other_frags[1..] {
            whole = add(&mut d, f, 20_000);
        }
        let whole = whole.unwrap_or_else(|| panic!("the other host's datagram was evicted"));
        assert_eq!(&whole.payload[8..], &other[..]);
        let payload = b"the datagram after the flood".repeat(30);
        let frags = fragments(&payload, 304, 0xbeef);
        let mut whole = None;
        for f in &frags {
            whole = add(&mut d, f, 20_000);
        }
        let whole = whole.unwrap_or_else(|| panic!("the datagram after the flood was not reassembled"));
        assert_eq!(&whole.payload[8..], &payload[..]);
    }

    /// IPv6 fragments (a Fragment extension header with a 32-bit identification) are put back
    /// together as IPv4 ones are.
    #[test]
    fn ipv6_fragments_make_the_datagram() {
        use crate::decode::{decode, reassembled, Decoded};
        use crate::model::packet::linktype;
        let (src, dst) = ([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1u8], [0xfeu8; 16]);
        let data: Vec<u8> = (0..1200u32).map(|i| (i % 249) as u8).collect();
        let mut udp = vec![0x9c, 0x40, 0, 53];
        udp.extend_from_slice(&u16::try_from(8 + data.len()).unwrap().to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(&data);
        let frame = |offset: usize, chunk: &[u8], more: bool| {
            let mut f = vec![0x60, 0, 0, 0];
            f.extend_from_slice(&u16::try_from(8 + chunk.len()).unwrap().to_be_bytes());
            f.extend_from_slice(&[44, 64]);
            f.extend_from_slice(&src);
            f.extend_from_slice(&dst);
            let off = u16::try_from(offset / 8).unwrap() << 3 | u16::from(more);
            f.extend_from_slice(&[17, 0]);
            f.extend_from_slice(&off.to_be_bytes());
            f.extend_from_slice(&0x8765_4321u32.to_be_bytes());
            f.extend_from_slice(chunk);
            f
        };
        let frames = [frame(0, &udp[..608], true), frame(608, &udp[608..], false)];
        let mut d = Defrag::default();
        let mut whole = None;
        for f in frames.iter().rev() {
            let Ok(Decoded::Ip(ip)) = decode(linktype::RAW, f) else { panic!("not decoded") };
            assert_eq!(ip.frag.map(|fr| fr.id), Some(0x8765_4321));
            if let Some(dg) = d.add(&ip, 1) {
                let pkt = reassembled(&ip, &dg.payload, dg.wire_bytes)
                    .map(|p| (p.src_port, p.dst_port, p.payload.to_vec()));
                whole = pkt;
            }
        }
        assert_eq!(whole, Some((40000, 53, data)));
    }
}
