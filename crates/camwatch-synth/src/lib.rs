//! Synthetic camera network: a deterministic generator of realistic packet captures.
//!
//! [`generate`] models a small CCTV site (gateway, NVR, VMS server, a mix of Hikvision, Dahua
//! and Axis cameras, optionally a workstation) and returns every Ethernet frame it puts on the
//! wire together with a [`Truth`] record computed from the generator's own plan, so tests can
//! compare camwatch's results against it. [`write_pcap`] stores a capture as a classic pcap.
//!
//! Everything is a pure function of the [`Scenario`]: the seed varies ports, sizes, jitter,
//! MAC suffixes and when events happen, never the structure (hosts, conversations, anomalies).
//!
//! Layout: `net` holds the site's hosts and identities, `plan` the traffic schedule, `tcp` the
//! TCP connection model, `wire` the plan's data model and its rendering into frames plus the
//! ground truth, `payloads` the application-layer messages and `mgmt` the management-plane
//! ones (Hikvision ISAPI, ONVIF, WS-Discovery, the `digicap.dav` firmware image, TFTP).

use std::fmt;
use std::io::BufWriter;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;

use anyhow::{bail, Context};
use serde::Serialize;

mod flood;
mod mgmt;
mod net;
mod payloads;
mod plan;
mod tcp;
mod wire;

#[cfg(test)]
mod tests;

pub use flood::write_flood;

/// Start of the default capture: 2026-01-01T00:00:00Z.
pub const DEFAULT_START_UNIX: u64 = 1_767_225_600;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Seed of all variation (ports, sizes, jitter, MAC suffixes, event times).
    pub seed: u64,
    /// Number of cameras, cycling Hikvision, Dahua, Axis (default 6; at most 242 fit the /24).
    pub cameras: usize,
    /// Capture span in seconds (default 120; values below 10 are raised to 10).
    pub duration_secs: u64,
    /// Which anomalies to inject.
    pub anomalies: Anomalies,
    /// Application bytes of the large upload anomaly (default 3 000 000; at least 64 are sent).
    pub upload_bytes: usize,
    /// Unix timestamp of the first packet (default 2026-01-01T00:00:00Z).
    pub start_unix: u64,
    /// Size of the `digicap.dav` image of the firmware anomaly (default 600 000; at least 256
    /// are sent).
    pub firmware_bytes: usize,
    /// Size of the `digicap.dav` image of the `tftp_firmware` anomaly (default 100 000; at
    /// least 256 are sent).
    pub tftp_bytes: usize,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            seed: 1,
            cameras: 6,
            duration_secs: 120,
            anomalies: Anomalies::default(),
            upload_bytes: 3_000_000,
            start_unix: DEFAULT_START_UNIX,
            firmware_bytes: 600_000,
            tftp_bytes: 100_000,
        }
    }
}

/// Anomalies that can be injected into the otherwise benign site traffic.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Anomalies {
    /// A camera opens TLS to a hard-coded internet address (no DNS lookup).
    pub egress: bool,
    /// Vendor cloud / P2P: Hik-Connect over TLS and Dahua Easy4ip P2P over UDP.
    pub cloud: bool,
    /// Exploitation attempts against a Hikvision camera (CVE-2021-36260, CVE-2017-7921).
    pub exploit: bool,
    /// A camera uploads `upload_bytes` to an internet address.
    pub upload: bool,
    /// The workstation uploads a firmware image (`firmware_bytes`) to a Hikvision camera over
    /// ISAPI; the camera then announces a new firmware version.
    pub firmware: bool,
    /// The workstation logs in to a Dahua camera with the authentication bypasses
    /// CVE-2021-33044 and CVE-2021-33045 (`POST /RPC2_Login`).
    pub dahua_exploit: bool,
    /// The workstation opens a telnet session (TCP 23) to a Hikvision camera.
    pub telnet: bool,
    /// A Dahua camera connects to a Hikvision camera's web server (camera-to-camera traffic).
    pub lateral: bool,
    /// A Dahua camera announces an older firmware (`2.622.0000000.31.R`) in the second half of
    /// the capture, after at least one announcement of its usual one. Discovery runs every
    /// 30 s, so this shows (and is recorded) only in captures of about a minute or more.
    pub downgrade: bool,
    /// A Hikvision camera has the Hik-Connect cloud enabled (SADP `HCPlatformEnable` true,
    /// ISAPI `/ISAPI/System/Network/EZVIZ` read by the NVR).
    pub cloud_enabled: bool,
    /// A Hikvision camera runs an old, vulnerable firmware (`V5.4.1build 160525`).
    pub vulnerable_firmware: bool,
    /// A Hikvision camera fetches a `digicap.dav` image (`tftp_bytes`) over TFTP from a TFTP
    /// server on the segment (192.168.10.60).
    pub tftp_firmware: bool,
}

impl Anomalies {
    /// Every anomaly enabled.
    pub fn all() -> Self {
        Anomalies {
            egress: true,
            cloud: true,
            exploit: true,
            upload: true,
            firmware: true,
            dahua_exploit: true,
            telnet: true,
            lateral: true,
            downgrade: true,
            cloud_enabled: true,
            vulnerable_firmware: true,
            tftp_firmware: true,
        }
    }

    /// `(enabled, keyword)` of every flag, in the order of [`Anomalies::NAMES`].
    fn flags(&self) -> [(bool, &'static str); 12] {
        let n = Self::NAMES;
        [
            (self.egress, n[0]),
            (self.cloud, n[1]),
            (self.exploit, n[2]),
            (self.upload, n[3]),
            (self.firmware, n[4]),
            (self.dahua_exploit, n[5]),
            (self.telnet, n[6]),
            (self.lateral, n[7]),
            (self.downgrade, n[8]),
            (self.cloud_enabled, n[9]),
            (self.vulnerable_firmware, n[10]),
            (self.tftp_firmware, n[11]),
        ]
    }

    /// Keyword of every anomaly, as [`Anomalies::parse_list`] accepts and `Display` writes them.
    pub const NAMES: [&'static str; 12] = [
        "egress",
        "cloud",
        "exploit",
        "upload",
        "firmware",
        "dahua_exploit",
        "telnet",
        "lateral",
        "downgrade",
        "cloud_enabled",
        "vulnerable_firmware",
        "tftp_firmware",
    ];

    /// Parses a comma-separated list of keywords ([`Anomalies::NAMES`], e.g.
    /// `"egress,cloud,telnet"`), `"all"` or `"none"` (an empty string also means none).
    pub fn parse_list(s: &str) -> anyhow::Result<Self> {
        let mut out = Anomalies::default();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            match item.to_ascii_lowercase().as_str() {
                "all" => out = Anomalies::all(),
                "none" => {}
                "egress" => out.egress = true,
                "cloud" => out.cloud = true,
                "exploit" => out.exploit = true,
                "upload" => out.upload = true,
                "firmware" => out.firmware = true,
                "dahua_exploit" => out.dahua_exploit = true,
                "telnet" => out.telnet = true,
                "lateral" => out.lateral = true,
                "downgrade" => out.downgrade = true,
                "cloud_enabled" => out.cloud_enabled = true,
                "vulnerable_firmware" => out.vulnerable_firmware = true,
                "tftp_firmware" => out.tftp_firmware = true,
                other => {
                    bail!("unknown anomaly {other:?} (expected {}, all or none)", Self::NAMES.join(", "))
                }
            }
        }
        Ok(out)
    }
}

impl fmt::Display for Anomalies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.flags().into_iter().filter_map(|(on, name)| on.then_some(name)).collect();
        if names.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&names.join(","))
        }
    }
}

/// A generated capture: frames in timestamp order plus the ground truth.
#[derive(Debug, Clone)]
pub struct Capture {
    pub packets: Vec<Packet>,
    pub truth: Truth,
}

/// One captured frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Capture time, microseconds since the Unix epoch.
    pub ts_micros: u64,
    /// The full Ethernet II frame.
    pub data: Vec<u8>,
}

/// The generator's record of what it put on the wire (from its plan, not from parsing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Truth {
    /// Every private-address host that sends at least one IPv4 packet, ordered by address.
    pub devices: Vec<TruthDevice>,
    /// One entry per 5-tuple conversation, in order of first packet.
    pub flows: Vec<TruthFlow>,
    /// Every flow a private-address device initiates towards a public unicast address.
    pub egress: Vec<TruthEgress>,
    /// The identity every camera puts on the wire, in address order.
    pub firmware: Vec<TruthFirmware>,
    /// Firmware images uploaded to devices (the `firmware` anomaly), in time order.
    pub firmware_uploads: Vec<TruthFirmwareUpload>,
    /// Firmware images devices fetched over TFTP (the `tftp_firmware` anomaly), in time order;
    /// `from` is the TFTP server, `new_version` is empty (the device announces no new version).
    pub tftp_downloads: Vec<TruthFirmwareUpload>,
    /// One entry per instance of the anomalies `dahua_exploit`, `telnet`, `lateral`,
    /// `downgrade`, `cloud_enabled`, `vulnerable_firmware` and `tftp_firmware`, in that order.
    pub events: Vec<TruthEvent>,
    /// Number of frames.
    pub packets: u64,
    /// Sum of frame lengths.
    pub bytes: u64,
}

/// A local host seen sending IPv4.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TruthDevice {
    pub ip: Ipv4Addr,
    pub mac: [u8; 6],
    /// `"Hikvision"`, `"Dahua"`, `"Axis"` for cameras, otherwise the role name:
    /// `"NVR"`, `"Gateway"`, `"Workstation"`, `"VMS"`, `"TFTP"`.
    pub vendor: String,
    /// `"camera"`, `"nvr"`, `"gateway"`, `"workstation"` or `"server"` (the VMS server and
    /// the TFTP server).
    pub role: String,
}

/// One conversation; `src` is the initiator, "fwd" counts src→dst packets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TruthFlow {
    /// IP protocol number (6 TCP, 17 UDP).
    pub proto: u8,
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub packets_fwd: u64,
    pub packets_rev: u64,
    /// Sum of IPv4 total lengths src→dst.
    pub bytes_fwd: u64,
    /// Sum of IPv4 total lengths dst→src.
    pub bytes_rev: u64,
}

/// A flow from a local device to the internet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TruthEgress {
    pub device: Ipv4Addr,
    pub dest: Ipv4Addr,
    pub dest_port: u16,
    pub proto: u8,
    /// `"egress"`, `"cloud"`, `"exploit"` or `"upload"`: the anomaly that caused it.
    pub kind: String,
}

/// A camera's identity as it reports it (SADP/DHIP discovery, ISAPI, ONVIF, WS-Discovery).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TruthFirmware {
    pub device: Ipv4Addr,
    /// `"Hikvision"`, `"Dahua"` or `"Axis"` (as in [`TruthDevice::vendor`]).
    pub vendor: String,
    pub model: String,
    pub serial: String,
    /// Every firmware version the device reports, in the order it reports them, without
    /// repeats. Hikvision versions are in SADP form (`"V5.7.3build 220112"`, which ISAPI splits
    /// into `firmwareVersion` `V5.7.3` and `firmwareReleasedDate` `build 220112`), Dahua ones as
    /// in DHIP and ONVIF (`"2.800.0000000.29.R"`), Axis ones as in ONVIF (`"10.12.182"`).
    pub versions: Vec<String>,
}

/// One instance of an anomaly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TruthEvent {
    /// The anomaly's keyword ([`Anomalies::NAMES`]), e.g. `"telnet"`.
    pub kind: String,
    /// The camera concerned (for `lateral` the camera that connects to another).
    pub device: Ipv4Addr,
    /// The other host involved, if any: the workstation (`dahua_exploit`, `telnet`), the
    /// target camera (`lateral`), the TFTP server (`tftp_firmware`).
    pub peer: Option<Ipv4Addr>,
    /// `dahua_exploit`: the CVE (`"CVE-2021-33044"`, `"CVE-2021-33045"`); `downgrade` and
    /// `vulnerable_firmware`: the version the camera reports (in [`TruthFirmware::versions`]
    /// form); `telnet`: `"23/tcp"`; `lateral`: `"80/tcp"`; `cloud_enabled`: the cloud host name
    /// the camera reports (`"litedev.hik-connect.com"`); `tftp_firmware`: the file name
    /// (`"digicap.dav"`).
    pub detail: String,
}

/// One firmware image sent to a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TruthFirmwareUpload {
    /// The device receiving the image.
    pub device: Ipv4Addr,
    /// The host uploading it.
    pub from: Ipv4Addr,
    /// Size of the image (the HTTP body) in bytes.
    pub size: u64,
    /// SHA-256 of the image, lower-case hex.
    pub sha256: String,
    /// The version the device runs after the upgrade, in the form of [`TruthFirmware::versions`]
    /// (it appears there only if the device announces itself again before the capture ends:
    /// always in captures of a minute or more with the default image size).
    pub new_version: String,
}

/// Builds the packets (timestamp order) and the ground truth.
///
/// # Panics
///
/// Only on an internal invariant violation (a frame the packet builder rejects), which the
/// generator never produces; use [`try_generate`] to get such a failure as an error instead.
pub fn generate(s: &Scenario) -> Capture {
    match try_generate(s) {
        Ok(cap) => cap,
        Err(e) => panic!("synthetic capture generation failed: {e:#}"),
    }
}

/// Like [`generate`], but reports internal failures as errors.
pub fn try_generate(s: &Scenario) -> anyhow::Result<Capture> {
    let site = net::Site::new(s);
    let plan = plan::build(s, &site)?;
    wire::render(s, &site, plan)
}

/// Writes a classic pcap (Ethernet link type, microsecond timestamps).
pub fn write_pcap(path: &Path, cap: &Capture) -> anyhow::Result<()> {
    let mut out = PcapOut::create(path)?;
    for p in &cap.packets {
        out.frame(p.ts_micros, &p.data)?;
    }
    out.finish()
}

/// A classic pcap being written (Ethernet, microsecond timestamps), with its path for errors:
/// the one writer behind [`write_pcap`] and [`write_flood`].
pub(crate) struct PcapOut<'p> {
    path: &'p Path,
    writer: pcap_file::pcap::PcapWriter<BufWriter<std::fs::File>>,
}

impl<'p> PcapOut<'p> {
    pub(crate) fn create(path: &'p Path) -> anyhow::Result<Self> {
        use pcap_file::pcap::{PcapHeader, PcapWriter};
        use pcap_file::{DataLink, Endianness, TsResolution};
        let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let header = PcapHeader {
            snaplen: 65_535,
            datalink: DataLink::ETHERNET,
            ts_resolution: TsResolution::MicroSecond,
            endianness: Endianness::Little,
            ..PcapHeader::default()
        };
        let writer = PcapWriter::with_header(BufWriter::with_capacity(1 << 20, file), header)
            .with_context(|| format!("writing pcap header to {}", path.display()))?;
        Ok(Self { path, writer })
    }

    pub(crate) fn frame(&mut self, ts_micros: u64, data: &[u8]) -> anyhow::Result<()> {
        let len = u32::try_from(data.len()).context("frame longer than 4 GiB")?;
        let pkt = pcap_file::pcap::PcapPacket::new(std::time::Duration::from_micros(ts_micros), len, data);
        self.writer
            .write_packet(&pkt)
            .with_context(|| format!("writing packet to {}", self.path.display()))?;
        Ok(())
    }

    pub(crate) fn finish(self) -> anyhow::Result<()> {
        let mut inner = self.writer.into_writer();
        std::io::Write::flush(&mut inner).with_context(|| format!("flushing {}", self.path.display()))
    }
}
