//! What each application message says about a device's identity: the device it is about (its
//! address, and its MAC when the message carries one), the source, and the values (vendor,
//! model, serial, firmware, host name).

use std::net::IpAddr;

use crate::model::app::{App, AppEvent, BodyIdentity};
use crate::model::identity::{Observation, Source};

/// Vendors recognisable from banners and free-text fields (case-insensitive substrings).
const BANNERS: &[(&str, &str)] = &[
    ("app-webs", "Hikvision"),
    ("hikvision", "Hikvision"),
    ("dnvrs-webs", "Hikvision"),
    ("dahua", "Dahua"),
    ("axis", "Axis"),
    ("d-link", "D-Link"),
    ("hanwha", "Hanwha"),
    ("uniview", "Uniview"),
    ("reolink", "Reolink"),
];

fn banner_vendor(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    BANNERS.iter().find(|(needle, _)| lower.contains(needle)).map(|(_, v)| (*v).to_string())
}

fn some(s: &Option<String>) -> Option<String> {
    s.as_ref().filter(|v| !v.trim().is_empty()).cloned()
}

/// What one message says about one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The device's address, when the message gives one (not 0.0.0.0: see
    /// [`crate::analysis::device::Inventory::locate`]).
    pub ip: Option<IpAddr>,
    /// The device's own MAC address, when the message carries it.
    pub mac: Option<[u8; 6]>,
    /// The message is the device's (or its DHCP server's) own word that `mac` holds `ip`:
    /// evidence that a device seen at another address moved.
    pub binds: bool,
    pub source: Source,
    pub obs: Observation,
}

impl Claim {
    fn at(ip: IpAddr, source: Source, obs: Observation) -> Self {
        Self { ip: Some(ip), mac: None, binds: false, source, obs }
    }

    /// A device's own announcement (SADP, DHIP): the MAC it gives, when it gives one, holds the
    /// address it gives.
    fn bound(ip: Option<IpAddr>, mac: Option<[u8; 6]>, source: Source, obs: Observation) -> Self {
        Self { ip, mac, binds: mac.is_some(), source, obs }
    }
}

fn mac(s: &Option<String>) -> Option<[u8; 6]> {
    s.as_deref().and_then(crate::model::event::parse_mac)
}

/// Identity claims carried by one message.
pub fn observations(ev: &AppEvent) -> Vec<Claim> {
    let mut out = Vec::new();
    // A self-description's address field; an absent or unparseable one falls back to the
    // sender's address, and 0.0.0.0 (no address yet) to none.
    let addr = |s: &Option<String>, fallback: IpAddr| {
        let ip = s.as_deref().and_then(|a| a.trim().parse().ok()).unwrap_or(fallback);
        (!ip.is_unspecified()).then_some(ip)
    };
    match &ev.app {
        App::Sadp(m) => {
            let obs = Observation {
                vendor: Some("Hikvision".into()),
                model: some(&m.device_description),
                serial: some(&m.device_sn),
                firmware: some(&m.software_version),
                hostname: None,
                // Hikvision-made devices sold under another brand name it here; "N/A" (and "0")
                // on Hikvision's own.
                oem: some(&m.oem_info).filter(|v| !matches!(v.trim(), "N/A" | "NA" | "0" | "-")),
            };
            // Probes come from clients (SADP tools, NVRs) and say nothing about the sender.
            if m.kind != "Probe" && !obs.is_empty() {
                out.push(Claim::bound(addr(&m.ipv4_address, ev.src_ip), mac(&m.mac), Source::Sadp, obs));
            }
        }
        App::Dhip(m) => {
            let obs = Observation {
                vendor: Some("Dahua".into()),
                model: some(&m.device_type),
                serial: some(&m.serial_no),
                firmware: some(&m.version),
                hostname: None,
                oem: None,
            };
            if m.device_type.is_some() || m.serial_no.is_some() || m.version.is_some() {
                out.push(Claim::bound(addr(&m.ipv4_address, ev.src_ip), mac(&m.mac), Source::Dhip, obs));
            }
        }
        App::Wsd(m) => {
            if m.hardware.is_some() {
                let obs = Observation {
                    vendor: m.name.as_deref().and_then(banner_vendor),
                    model: some(&m.hardware),
                    ..Observation::default()
                };
                out.push(Claim::at(ev.src_ip, Source::Onvif, obs));
            }
        }
        App::Http(txn) => {
            // The server is the device described by responses.
            let server = ev.dest_ip;
            if let Some(resp) = &txn.response {
                let vendor = resp.server.as_deref().and_then(banner_vendor);
                if vendor.is_some() {
                    out.push(Claim::at(
                        server,
                        Source::Http,
                        Observation { vendor, ..Observation::default() },
                    ));
                }
            }
            match &txn.identity {
                Some(BodyIdentity::IsapiDeviceInfo(d)) => {
                    let firmware = d.firmware_version.as_deref().map(|v| match &d.firmware_released_date {
                        Some(b) => format!("{v} {b}"),
                        None => v.to_string(),
                    });
                    let obs = Observation {
                        vendor: Some("Hikvision".into()),
                        model: some(&d.model),
                        serial: some(&d.serial_number),
                        firmware,
                        hostname: some(&d.device_name),
                        oem: None,
                    };
                    out.push(Claim::at(server, Source::Isapi, obs));
                }
                Some(BodyIdentity::OnvifDeviceInfo(d)) => {
                    let obs = Observation {
                        vendor: some(&d.manufacturer),
                        model: some(&d.model),
                        serial: some(&d.serial_number),
                        firmware: some(&d.firmware_version),
                        hostname: None,
                        oem: None,
                    };
                    out.push(Claim::at(server, Source::Onvif, obs));
                }
                Some(BodyIdentity::DahuaMagicBox(kv)) => {
                    let get = |keys: &[&str]| {
                        kv.iter()
                            .find(|(k, _)| keys.iter().any(|want| k.eq_ignore_ascii_case(want)))
                            .map(|(_, v)| v.clone())
                    };
                    let obs = Observation {
                        vendor: Some("Dahua".into()),
                        model: get(&["type", "deviceType", "updateSerial"]),
                        serial: get(&["sn", "serialNumber"]),
                        firmware: get(&["version"]),
                        hostname: None,
                        oem: None,
                    };
                    out.push(Claim::at(server, Source::Dhip, obs));
                }
                Some(BodyIdentity::DlinkHnap(d)) => {
                    let obs = Observation {
                        vendor: some(&d.vendor_name),
                        model: some(&d.model_name),
                        serial: None,
                        firmware: some(&d.firmware_version),
                        hostname: some(&d.device_name),
                        oem: None,
                    };
                    out.push(Claim::at(server, Source::Http, obs));
                }
                Some(BodyIdentity::IsapiEzviz(_)) | None => {}
            }
        }
        App::Rtsp(m) => {
            if let Some(vendor) =
                m.response.as_ref().and_then(|r| r.server.as_deref()).and_then(banner_vendor)
            {
                out.push(Claim::at(
                    ev.dest_ip,
                    Source::Rtsp,
                    Observation { vendor: Some(vendor), ..Observation::default() },
                ));
            }
        }
        App::Ssdp(m) => {
            if let Some(vendor) = m.server.as_deref().and_then(banner_vendor) {
                out.push(Claim::at(
                    ev.src_ip,
                    Source::Ssdp,
                    Observation { vendor: Some(vendor), ..Observation::default() },
                ));
            }
        }
        App::Dhcp(m) => {
            // The client is known by its hardware address (chaddr) whatever address it sends
            // from. A server's ACK binds the address it grants (yiaddr); a client already using
            // an address (ciaddr, when renewing) states it. A requested address is only asked for.
            let ack = m.op == "reply" && m.dhcp_type.as_deref() == Some("ack");
            let nonzero = |ip: Option<IpAddr>| ip.filter(|ip| !ip.is_unspecified());
            let (ip, binds) = match (nonzero(m.assigned_ip), nonzero(m.client_ip)) {
                (Some(yiaddr), _) if ack => (Some(yiaddr), true),
                (_, Some(ciaddr)) if m.op == "request" && m.dhcp_type.as_deref() != Some("release") => {
                    (Some(ciaddr), true)
                }
                _ => (None, false),
            };
            let obs = Observation {
                vendor: m.vendor_class_identifier.as_deref().and_then(banner_vendor),
                hostname: some(&m.hostname),
                ..Observation::default()
            };
            let mac = crate::model::event::parse_mac(&m.client_mac);
            if binds || !obs.is_empty() {
                out.push(Claim { ip, mac, binds: binds && mac.is_some(), source: Source::Dhcp, obs });
            }
        }
        App::Dns(_)
        | App::Tls(_)
        | App::Ntp(_)
        | App::Baichuan(_)
        | App::FirmwareTransfer(_)
        | App::SadpL2(_) => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sadp(oem: &str) -> AppEvent {
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<ProbeMatch>\r\n<Types>inquiry</Types>\r\n\
             <DeviceDescription>LTCMIP7442W-28MDA</DeviceDescription>\r\n<MAC>E0-2C-37-93-D9-54</MAC>\r\n\
             <IPv4Address>192.168.1.64</IPv4Address>\r\n<SoftwareVersion>V5.5.0build 170725</SoftwareVersion>\r\n\
             <OEMInfo>{oem}</OEMInfo>\r\n</ProbeMatch>\r\n"
        );
        let m = crate::proto::sadp::parse(xml.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        AppEvent {
            ts: 0,
            flow_id: 1,
            community_id: Default::default(),
            src_ip: [192, 168, 1, 64].into(),
            src_port: 37020,
            dest_ip: [239, 255, 255, 250].into(),
            dest_port: 37020,
            proto: 17,
            app: App::Sadp(m),
        }
    }

    /// A rebranded Hikvision camera names its brand in SADP's `OEMInfo`; Hikvision's own say
    /// `N/A`. The brand is what the estate review reports it as (LTS, an OEM of Hikvision's).
    #[test]
    fn sadp_oem_info_is_kept_and_n_a_is_not_a_brand() {
        let claims = observations(&sadp("LTS"));
        assert_eq!(claims.len(), 1);
        assert_eq!(claims[0].obs.oem.as_deref(), Some("LTS"));
        assert_eq!(claims[0].obs.vendor.as_deref(), Some("Hikvision"));
        assert_eq!(observations(&sadp("N/A"))[0].obs.oem, None);
    }
}
