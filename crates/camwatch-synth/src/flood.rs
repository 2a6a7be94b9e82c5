//! A flood of new flows, the attacker's cheapest weapon against a flow-tracking sensor: one TCP
//! SYN each from many spoofed sources and ports to the site's cameras, streamed to a pcap file
//! (two million flows are written without holding them in memory).

use std::io::BufWriter;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use etherparse::PacketBuilder;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, TsResolution};

use crate::DEFAULT_START_UNIX;

/// The camera addresses flooded (the generator's site network).
const CAMERAS: [u8; 3] = [192, 168, 1];
/// Ports the flood targets: RTSP, HTTP, HTTPS, Hikvision SDK, Dahua.
const PORTS: [u16; 5] = [554, 80, 443, 8000, 37777];

/// Writes `flows` SYN packets, each opening a distinct flow, `rate` per second of capture time,
/// from sources spread over 10.0.0.0/8 to 50 cameras. Returns the packets written.
pub fn write_flood(path: &Path, flows: u64, rate: u64) -> anyhow::Result<u64> {
    let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let header = PcapHeader {
        snaplen: 65_535,
        datalink: DataLink::ETHERNET,
        ts_resolution: TsResolution::MicroSecond,
        endianness: Endianness::Little,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(BufWriter::with_capacity(1 << 20, file), header)
        .with_context(|| format!("writing pcap header to {}", path.display()))?;
    let start = DEFAULT_START_UNIX * 1_000_000;
    let step = 1_000_000 / rate.max(1);
    let mut frame = Vec::with_capacity(64);
    for i in 0..flows {
        // A multiplicative hash spreads consecutive flows over sources, ports and cameras.
        let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let src = [10, (h >> 16) as u8, (h >> 24) as u8, (h >> 32) as u8 | 1];
        let sport = 1024 + (h >> 40) as u16 % 64_000;
        let camera = [CAMERAS[0], CAMERAS[1], CAMERAS[2], 10 + (i % 50) as u8];
        let dport = PORTS[(i / 50 % PORTS.len() as u64) as usize];
        frame.clear();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [0x44, 0x19, 0xb6, 0, 0, camera[3]])
            .ipv4(src, camera, 64)
            .tcp(sport, dport, (h >> 8) as u32, 64_240)
            .syn()
            .write(&mut frame, &[])
            .context("building a SYN")?;
        let ts = Duration::from_micros(start + i * step);
        let len = u32::try_from(frame.len()).context("frame too long")?;
        w.write_packet(&PcapPacket::new(ts, len, &frame))
            .with_context(|| format!("writing packet to {}", path.display()))?;
    }
    let mut inner = w.into_writer();
    std::io::Write::flush(&mut inner).with_context(|| format!("flushing {}", path.display()))?;
    Ok(flows)
}
