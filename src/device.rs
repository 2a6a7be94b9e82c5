//! The device inventory: every monitored host seen, with its MAC address, vendor and the
//! destinations it reached that rules found unexpected. In memory for now; bounded by config.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use crate::event::{DeviceEvent, DeviceEventKind, Micros};
use crate::netset::NetSet;
use crate::oui;

/// A MAC address claimed by more hosts than this is a router's, not a device's own.
const ROUTER_MAC_HOSTS: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub ip: IpAddr,
    pub mac: Option<[u8; 6]>,
    /// Short vendor name from the MAC's OUI (`Hikvision`), and the registered organisation.
    pub vendor: Option<&'static str>,
    pub organization: Option<&'static str>,
    pub first_seen: Micros,
    pub last_seen: Micros,
    /// Destinations a rule of category egress or cloud flagged (bounded).
    pub unexpected: BTreeSet<IpAddr>,
}

pub struct Inventory {
    networks: NetSet,
    devices: HashMap<IpAddr, Device>,
    /// Hosts seen behind each MAC, to tell routers from devices.
    mac_hosts: HashMap<[u8; 6], BTreeSet<IpAddr>>,
    max_devices: usize,
    max_unexpected: usize,
    /// Devices not added because the inventory was full.
    pub refused: u64,
}

impl Inventory {
    pub fn new(networks: NetSet, max_devices: usize, max_unexpected: usize) -> Self {
        Self {
            networks,
            devices: HashMap::new(),
            mac_hosts: HashMap::new(),
            max_devices,
            max_unexpected,
            refused: 0,
        }
    }

    pub fn is_device(&self, ip: IpAddr) -> bool {
        self.networks.contains(ip)
    }

    pub fn get(&self, ip: IpAddr) -> Option<&Device> {
        self.devices.get(&ip)
    }

    pub fn len(&self) -> usize {
        self.devices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    pub fn devices(&self) -> impl Iterator<Item = &Device> {
        self.devices.values()
    }

    /// Records that `ip` was seen at `ts`, sending from `mac` when known. Returns the inventory
    /// change, if any. Hosts outside the device networks are ignored.
    pub fn observe(&mut self, ip: IpAddr, mac: Option<[u8; 6]>, ts: Micros) -> Option<DeviceEvent> {
        if !self.is_device(ip) || ip.is_unspecified() {
            return None;
        }
        let mac_cap = self.max_devices.saturating_mul(2);
        let mac = mac.filter(|m| m[0] & 1 == 0 && *m != [0; 6]).filter(|m| {
            // Bounded like the inventory: past the cap, new MACs are taken at their word.
            if self.mac_hosts.len() >= mac_cap && !self.mac_hosts.contains_key(m) {
                return true;
            }
            let hosts = self.mac_hosts.entry(*m).or_default();
            if hosts.len() <= ROUTER_MAC_HOSTS {
                hosts.insert(ip);
            }
            hosts.len() <= ROUTER_MAC_HOSTS
        });
        if let Some(d) = self.devices.get_mut(&ip) {
            d.last_seen = d.last_seen.max(ts);
            d.first_seen = d.first_seen.min(ts);
            let mac = mac?;
            if d.mac == Some(mac) {
                return None;
            }
            // A device first seen without a MAC (its first packet was routed, or a raw-IP
            // capture) is announced again once its MAC is known.
            let kind =
                if d.mac.is_none() { DeviceEventKind::MacLearned } else { DeviceEventKind::MacChanged };
            set_mac(d, mac);
            return Some(event(d, kind, ts));
        }
        if self.devices.len() >= self.max_devices {
            self.refused += 1;
            return None;
        }
        let mut d = Device {
            ip,
            mac: None,
            vendor: None,
            organization: None,
            first_seen: ts,
            last_seen: ts,
            unexpected: BTreeSet::new(),
        };
        if let Some(m) = mac {
            set_mac(&mut d, m);
        }
        let ev = event(&d, DeviceEventKind::New, ts);
        self.devices.insert(ip, d);
        Some(ev)
    }

    /// Remembers an unexpected destination for a device; returns the device's count.
    pub fn flag_destination(&mut self, device: IpAddr, dest: IpAddr) -> Option<usize> {
        let d = self.devices.get_mut(&device)?;
        if d.unexpected.len() < self.max_unexpected {
            d.unexpected.insert(dest);
        }
        Some(d.unexpected.len())
    }
}

fn set_mac(d: &mut Device, mac: [u8; 6]) {
    d.mac = Some(mac);
    let v = oui::lookup(mac);
    d.vendor = v.map(|v| v.short);
    d.organization = v.map(|v| v.organization);
}

fn event(d: &Device, kind: DeviceEventKind, ts: Micros) -> DeviceEvent {
    DeviceEvent {
        ts,
        kind,
        ip: d.ip,
        mac: d.mac,
        vendor: d.vendor.map(str::to_string),
        organization: d.organization.map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv() -> Inventory {
        Inventory::new(NetSet::private(), 3, 2)
    }

    #[test]
    fn new_device_gets_vendor_from_oui() {
        let mut i = inv();
        let ip = IpAddr::from([192, 168, 10, 11]);
        let ev = i.observe(ip, Some([0x44, 0x47, 0xcc, 1, 2, 3]), 5);
        assert_eq!(ev.as_ref().map(|e| e.kind), Some(DeviceEventKind::New));
        assert_eq!(ev.and_then(|e| e.vendor).as_deref(), Some("Hikvision"));
        assert_eq!(i.observe(ip, Some([0x44, 0x47, 0xcc, 1, 2, 3]), 9), None);
        assert_eq!(i.get(ip).map(|d| (d.first_seen, d.last_seen)), Some((5, 9)));
    }

    #[test]
    fn outside_hosts_are_not_devices() {
        let mut i = inv();
        assert_eq!(i.observe(IpAddr::from([203, 0, 113, 5]), None, 1), None);
        assert!(i.is_empty());
    }

    #[test]
    fn mac_change_and_late_mac_are_events() {
        let mut i = inv();
        let ip = IpAddr::from([10, 0, 0, 5]);
        assert!(i.observe(ip, None, 1).is_some());
        let late = i.observe(ip, Some([0x08, 0xed, 0xed, 0, 0, 1]), 2);
        assert_eq!(late.map(|e| e.kind), Some(DeviceEventKind::MacLearned));
        let moved = i.observe(ip, Some([0x08, 0xed, 0xed, 0, 0, 2]), 3);
        assert_eq!(moved.map(|e| e.kind), Some(DeviceEventKind::MacChanged));
        assert_eq!(i.get(ip).and_then(|d| d.vendor), Some("Dahua"));
    }

    #[test]
    fn router_macs_are_not_attributed() {
        let mut i = Inventory::new(NetSet::private(), 100, 2);
        let router = [0x00, 0x40, 0x8c, 9, 9, 9];
        for n in 1..=6u8 {
            i.observe(IpAddr::from([10, 0, 1, n]), Some(router), 1);
        }
        assert_eq!(i.get(IpAddr::from([10, 0, 1, 6])).and_then(|d| d.mac), None);
        assert_eq!(i.get(IpAddr::from([10, 0, 1, 1])).and_then(|d| d.mac), Some(router));
    }

    #[test]
    fn capacity_is_enforced_and_counted() {
        let mut i = inv();
        for n in 1..=5u8 {
            i.observe(IpAddr::from([10, 0, 0, n]), None, 1);
        }
        assert_eq!(i.len(), 3);
        assert_eq!(i.refused, 2);
        let d = IpAddr::from([10, 0, 0, 1]);
        for n in 1..=5u8 {
            i.flag_destination(d, IpAddr::from([203, 0, 113, n]));
        }
        assert_eq!(i.get(d).map(|d| d.unexpected.len()), Some(2));
    }
}
