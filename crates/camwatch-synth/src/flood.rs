//! A flood of new flows, the attacker's cheapest weapon against a flow-tracking sensor: one TCP
//! SYN each from many spoofed sources and ports to the site's cameras, streamed to a pcap file
//! (two million flows are written without holding them in memory).

use std::path::Path;

use anyhow::Context;
use etherparse::PacketBuilder;

use crate::{PcapOut, DEFAULT_START_UNIX};

/// The camera addresses flooded (the generator's site network).
const CAMERAS: [u8; 3] = [192, 168, 1];
/// Ports the flood targets: RTSP, HTTP, HTTPS, Hikvision SDK, Dahua.
const PORTS: [u16; 5] = [554, 80, 443, 8000, 37777];

/// Writes `flows` SYN packets, each opening a distinct flow, `rate` per second of capture time,
/// from sources spread over 10.0.0.0/8 to 50 cameras. Returns the packets written.
pub fn write_flood(path: &Path, flows: u64, rate: u64) -> anyhow::Result<u64> {
    let mut out = PcapOut::create(path)?;
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
        out.frame(start + i * step, &frame)?;
    }
    out.finish()?;
    Ok(flows)
}
