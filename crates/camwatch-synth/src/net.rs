//! The modelled site: hosts, addresses, MACs and camera identities, plus seeded sub-RNGs.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Scenario;

/// Index into [`Site::hosts`].
pub(crate) type HostId = usize;

/// Highest number of cameras that fits 192.168.10.11–.254 (skipping .50 and .60).
pub(crate) const MAX_CAMERAS: usize = 242;

pub(crate) const GATEWAY_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 1);
pub(crate) const NVR_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 2);
pub(crate) const VMS_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 5);
pub(crate) const WORKSTATION_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 50);
/// TFTP server of the `tftp_firmware` anomaly.
pub(crate) const TFTP_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 60);
/// TEST-NET-3 host the `egress` anomaly connects to.
pub(crate) const EGRESS_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 50);
/// TEST-NET-3 host receiving the `upload` anomaly.
pub(crate) const UPLOAD_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 80);
/// Stand-in for the Hik-Connect cloud (TEST-NET-2).
pub(crate) const HIK_CLOUD_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 20);
/// Stand-in for the Dahua Easy4ip P2P server (TEST-NET-2).
pub(crate) const DAHUA_CLOUD_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 30);
/// Internet scanner probing a camera (TEST-NET-2).
pub(crate) const ATTACKER_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 66);

const GATEWAY_MAC: [u8; 6] = [0x4c, 0x5e, 0x0c, 0x1a, 0x2b, 0x3c]; // MikroTik (Routerboard.com)
const NVR_OUI: [u8; 3] = [0x24, 0x28, 0xfd]; // Hikvision
const VMS_OUI: [u8; 3] = [0x00, 0x14, 0x22]; // Dell
const WORKSTATION_OUI: [u8; 3] = [0x00, 0x1b, 0x21]; // Intel
const TFTP_OUI: [u8; 3] = [0xb8, 0x27, 0xeb]; // Raspberry Pi Foundation

/// Firmware of the `vulnerable_firmware` anomaly's camera (SADP form; as long as the usual
/// version, so no flow's byte counts change): before the fixes of CVE-2017-7921 and
/// CVE-2021-36260.
pub(crate) const VULNERABLE_HIK_FIRMWARE: &str = "V5.4.1build 160525";

/// The model of that camera: a DS-2CD2xx2FWD, a family the CVE-2017-7921 advisory
/// (ICSA-17-124-01) lists as affected from V5.3.1 build 150410 to V5.4.4 build 161125.
pub(crate) const VULNERABLE_HIK_MODEL: &str = "DS-2CD2142FWD-I";

/// A deterministic RNG for one purpose (`domain`) and instance (`index`), independent of every
/// other stream, so enabling an anomaly never shifts the baseline traffic's randomness.
pub(crate) fn sub_rng(seed: u64, domain: &str, index: u64) -> ChaCha8Rng {
    // FNV-1a of the domain name.
    let hash = domain
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3));
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&hash.to_le_bytes());
    key[16..24].copy_from_slice(&index.to_le_bytes());
    key[24..].copy_from_slice(b"camwatch");
    ChaCha8Rng::from_seed(key)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Vendor {
    Hikvision,
    Dahua,
    Axis,
}

impl Vendor {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Vendor::Hikvision => "Hikvision",
            Vendor::Dahua => "Dahua",
            Vendor::Axis => "Axis",
        }
    }

    /// IEEE OUIs registered to the vendor.
    fn ouis(self) -> &'static [[u8; 3]] {
        match self {
            Vendor::Hikvision => {
                &[[0x44, 0x47, 0xcc], [0xbc, 0xad, 0x28], [0xc0, 0x56, 0xe3], [0xe0, 0xca, 0x3c]]
            }
            Vendor::Dahua => &[[0x08, 0xed, 0xed], [0x6c, 0x1c, 0x71], [0xe0, 0x50, 0x8b]],
            Vendor::Axis => &[[0x00, 0x40, 0x8c], [0xb8, 0xa4, 0x4f]],
        }
    }

    fn models(self) -> &'static [&'static str] {
        match self {
            Vendor::Hikvision => &["DS-2CD2143G2-I", "DS-2CD2387G2-LU", "DS-2CD2047G2-L"],
            Vendor::Dahua => &["IPC-HDW2431T-AS-S2", "IPC-HFW2431S-S-S2", "IPC-HDBW2431E-S-S2"],
            Vendor::Axis => &["M3106-L Mk II", "P3245-LV", "Q6135-LE"],
        }
    }

    fn firmware(self) -> &'static str {
        match self {
            Vendor::Hikvision => "V5.7.3build 220112",
            Vendor::Dahua => "2.800.0000000.29.R",
            Vendor::Axis => "10.12.182",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Gateway,
    Nvr,
    Vms,
    Workstation,
    /// The TFTP server of the `tftp_firmware` anomaly.
    Tftp,
    Camera(Vendor),
    /// An internet host: reached through the gateway, no MAC of its own on the segment.
    Outside,
}

#[derive(Debug, Clone)]
pub(crate) struct Host {
    pub ip: Ipv4Addr,
    /// `None` for internet hosts.
    pub mac: Option<[u8; 6]>,
    pub role: Role,
}

impl Host {
    /// `(vendor, role)` strings for the ground truth.
    pub(crate) fn labels(&self) -> (&'static str, &'static str) {
        match self.role {
            Role::Gateway => ("Gateway", "gateway"),
            Role::Nvr => ("NVR", "nvr"),
            Role::Vms => ("VMS", "server"),
            Role::Workstation => ("Workstation", "workstation"),
            Role::Tftp => ("TFTP", "server"),
            Role::Camera(v) => (v.name(), "camera"),
            Role::Outside => ("Internet", "outside"),
        }
    }
}

/// Identity of one camera.
#[derive(Debug, Clone)]
pub(crate) struct Camera {
    pub host: HostId,
    pub vendor: Vendor,
    pub ip: Ipv4Addr,
    pub mac: [u8; 6],
    pub model: &'static str,
    pub firmware: &'static str,
    pub serial: String,
    /// SADP UUID (Hikvision only, but every camera gets one).
    pub uuid: String,
    /// Hik-Connect enabled (SADP `HCPlatformEnable`): the `cloud_enabled` anomaly.
    pub hc_platform: bool,
}

impl Camera {
    /// The vendor's usual main-stream RTSP URL.
    pub(crate) fn rtsp_url(&self) -> String {
        let path = match self.vendor {
            Vendor::Hikvision => "Streaming/Channels/101",
            Vendor::Dahua => "cam/realmonitor?channel=1&subtype=0",
            Vendor::Axis => "axis-media/media.amp",
        };
        format!("rtsp://{}:554/{path}", self.ip)
    }
}

/// The whole site, fixed by the scenario.
#[derive(Debug, Clone)]
pub(crate) struct Site {
    pub hosts: Vec<Host>,
    pub gateway: HostId,
    pub nvr: HostId,
    pub vms: HostId,
    pub workstation: HostId,
    pub egress_server: HostId,
    pub upload_server: HostId,
    pub hik_cloud: HostId,
    pub dahua_cloud: HostId,
    pub attacker: HostId,
    /// Sends only with the `tftp_firmware` anomaly.
    pub tftp_server: HostId,
    pub cameras: Vec<Camera>,
}

impl Site {
    pub(crate) fn new(s: &Scenario) -> Site {
        let mut rng = sub_rng(s.seed, "site", 0);
        let mut used_macs = HashSet::new();
        let mut hosts = Vec::new();
        let add = |hosts: &mut Vec<Host>, ip: Ipv4Addr, mac: Option<[u8; 6]>, role: Role| {
            hosts.push(Host { ip, mac, role });
            hosts.len() - 1
        };
        used_macs.insert(GATEWAY_MAC);
        let gateway = add(&mut hosts, GATEWAY_IP, Some(GATEWAY_MAC), Role::Gateway);
        let nvr_mac = unique_mac(&mut rng, &mut used_macs, &[NVR_OUI]);
        let nvr = add(&mut hosts, NVR_IP, Some(nvr_mac), Role::Nvr);
        let vms_mac = unique_mac(&mut rng, &mut used_macs, &[VMS_OUI]);
        let vms = add(&mut hosts, VMS_IP, Some(vms_mac), Role::Vms);
        let ws_mac = unique_mac(&mut rng, &mut used_macs, &[WORKSTATION_OUI]);
        let workstation = add(&mut hosts, WORKSTATION_IP, Some(ws_mac), Role::Workstation);
        let egress_server = add(&mut hosts, EGRESS_IP, None, Role::Outside);
        let upload_server = add(&mut hosts, UPLOAD_IP, None, Role::Outside);
        let hik_cloud = add(&mut hosts, HIK_CLOUD_IP, None, Role::Outside);
        let dahua_cloud = add(&mut hosts, DAHUA_CLOUD_IP, None, Role::Outside);
        let attacker = add(&mut hosts, ATTACKER_IP, None, Role::Outside);

        let vendors = [Vendor::Hikvision, Vendor::Dahua, Vendor::Axis];
        let last_octets = (11u8..=254).filter(|&o| o != 50 && o != 60);
        let mut cameras = Vec::new();
        for (i, octet) in last_octets.take(s.cameras.min(MAX_CAMERAS)).enumerate() {
            let vendor = vendors[i % vendors.len()];
            let ip = Ipv4Addr::new(192, 168, 10, octet);
            let mac = unique_mac(&mut rng, &mut used_macs, vendor.ouis());
            let host = add(&mut hosts, ip, Some(mac), Role::Camera(vendor));
            let models = vendor.models();
            let model = models[(i / vendors.len()) % models.len()];
            cameras.push(Camera {
                host,
                vendor,
                ip,
                mac,
                model,
                firmware: vendor.firmware(),
                serial: serial_number(&mut rng, vendor, model, mac),
                uuid: uuid(&mut rng),
                hc_platform: false,
            });
        }
        // Drawn after the cameras' identities (and appended after their hosts), so it changes
        // none of them.
        let tftp_mac = unique_mac(&mut rng, &mut used_macs, &[TFTP_OUI]);
        let tftp_server = add(&mut hosts, TFTP_IP, Some(tftp_mac), Role::Tftp);

        // Anomalies that change a camera's identity for the whole capture.
        let first_hik = cameras.iter().position(|c| c.vendor == Vendor::Hikvision);
        let last_hik = cameras.iter().rposition(|c| c.vendor == Vendor::Hikvision);
        if let Some(cam) = first_hik.filter(|_| s.anomalies.cloud_enabled) {
            cameras[cam].hc_platform = true;
        }
        if let Some(cam) = last_hik.filter(|_| s.anomalies.vulnerable_firmware) {
            cameras[cam].firmware = VULNERABLE_HIK_FIRMWARE;
            cameras[cam].model = VULNERABLE_HIK_MODEL;
        }
        Site {
            hosts,
            gateway,
            nvr,
            vms,
            workstation,
            egress_server,
            upload_server,
            hik_cloud,
            dahua_cloud,
            attacker,
            tftp_server,
            cameras,
        }
    }

    pub(crate) fn ip(&self, h: HostId) -> Ipv4Addr {
        self.hosts[h].ip
    }

    /// Cameras of one vendor, in address order.
    pub(crate) fn cameras_of(&self, vendor: Vendor) -> impl DoubleEndedIterator<Item = &Camera> {
        self.cameras.iter().filter(move |c| c.vendor == vendor)
    }
}

fn unique_mac(rng: &mut ChaCha8Rng, used: &mut HashSet<[u8; 6]>, ouis: &[[u8; 3]]) -> [u8; 6] {
    loop {
        let oui = ouis[rng.random_range(0..ouis.len())];
        let mut mac = [oui[0], oui[1], oui[2], 0, 0, 0];
        rng.fill_bytes(&mut mac[3..]);
        if used.insert(mac) {
            return mac;
        }
    }
}

fn serial_number(rng: &mut ChaCha8Rng, vendor: Vendor, model: &str, mac: [u8; 6]) -> String {
    const ALNUM: &[u8] = b"0123456789ABCDEFGHJKLMNPRSTUVWXYZ";
    let mut pick = |n: usize| -> String {
        (0..n).map(|_| char::from(ALNUM[rng.random_range(0..ALNUM.len())])).collect()
    };
    match vendor {
        // e.g. DS-2CD2143G2-I20220115AAWRJ12345678
        Vendor::Hikvision => format!("{model}20220115AAWR{}", pick(9)),
        // e.g. 7J0A4B2PAZ1C3D5
        Vendor::Dahua => pick(15),
        // Axis serial numbers are the MAC address in upper-case hex.
        Vendor::Axis => mac.iter().map(|b| format!("{b:02X}")).collect(),
    }
}

pub(crate) fn uuid(rng: &mut impl Rng) -> String {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02X}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}
