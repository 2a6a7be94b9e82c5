//! The device inventory: every monitored host seen, with its MAC address, identity (vendor,
//! model, serial, firmware, each with its source), firmware history, the destinations it
//! talked to and those rules found unexpected. Bounded by config; persisted by the state store.

use crate::model::{FastMap as HashMap, FastSet as HashSet};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::model::event::{DeviceEvent, DeviceEventKind};
use crate::model::identity::{Change, FirmwareChange, FirmwareHistory, Identity, Observation, Source};
use crate::model::netset::NetSet;
use crate::model::oui;
use crate::model::time::Micros;

/// Which hosts are devices (monitored hosts).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DevicesConfig {
    /// CIDRs or built-in names (`private`, …) whose hosts are devices. Default: private space.
    pub networks: Vec<String>,
    /// Most devices kept in the inventory.
    pub max_devices: usize,
    /// Most devices given their own metric series; the rest share `device="overflow"`.
    pub max_metric_devices: usize,
    /// Distinct unexpected destinations remembered per device.
    pub max_unexpected_destinations: usize,
}

impl Default for DevicesConfig {
    fn default() -> Self {
        Self {
            networks: vec!["private".into()],
            max_devices: 50_000,
            max_metric_devices: 2_000,
            max_unexpected_destinations: 256,
        }
    }
}

/// Destinations remembered per device (the baseline of where it talks).
const MAX_DESTINATIONS: usize = 512;
/// (protocol, port) pairs remembered per destination (the first ones used).
pub const MAX_DESTINATION_PORTS: usize = 16;

/// Services (protocol, port) remembered per device.
const MAX_SERVICES: usize = 128;

/// A service a device answered on (it was the responder of a flow and replied).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub first_seen: Micros,
    pub last_seen: Micros,
    pub flows: u64,
}

/// A peer a device opened flows to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    /// Name from DNS, SNI or Host, when known.
    pub name: Option<String>,
    pub port: u16,
    pub proto: u8,
    pub first_seen: Micros,
    pub last_seen: Micros,
    pub flows: u64,
    /// Every (protocol, port) the device opened flows to on this peer (`port`/`proto` are the
    /// first), at most [`MAX_DESTINATION_PORTS`]: a gateway is DNS and NTP at once.
    #[serde(default)]
    pub ports: BTreeSet<(u8, u16)>,
    /// Bytes the device sent to the peer and received from it (IP length, both counted when
    /// the flow ends or reports at the active timeout).
    #[serde(default)]
    pub bytes_sent: u64,
    #[serde(default)]
    pub bytes_received: u64,
}

/// An address a device held before it was renumbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PastAddress {
    pub ip: IpAddr,
    /// When the device was first seen there.
    pub first_seen: Micros,
    /// When the device was seen to have left it.
    pub until: Micros,
}

/// Past addresses remembered per device (the oldest are forgotten first).
const MAX_PAST_ADDRESSES: usize = 16;

/// Devices known only by their MAC address (they spoke from 0.0.0.0, before DHCP gave them an
/// address) kept until their MAC shows up at an address; past it the least recently seen go.
const MAX_UNBOUND: usize = 1024;

/// Which record a message is about: a device at an address, or one known only by its MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Ip(IpAddr),
    Mac([u8; 6]),
}

/// What an identity observation changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    Identity(Change),
    Firmware(FirmwareChange),
}

/// A MAC address claimed by more hosts than this is a router's, not a device's own.
const ROUTER_MAC_HOSTS: usize = 4;

/// How long a device must have been silent at its old address before a new address with its
/// MAC counts as the device renumbered (a minute: a DHCP change is not instantaneous, and two
/// live addresses of one host are not a move).
const RENUMBER_QUIET: Micros = 60_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub ip: IpAddr,
    pub mac: Option<[u8; 6]>,
    /// The MAC prefix's registered organisation.
    pub organization: Option<String>,
    pub first_seen: Micros,
    pub last_seen: Micros,
    /// When the device last sent a packet (this run). `last_seen` also moves when others send
    /// to it.
    pub last_sent: Option<Micros>,
    pub identity: Identity,
    pub firmware: FirmwareHistory,
    /// Peers the device opened flows to (bounded).
    pub destinations: BTreeMap<IpAddr, Destination>,
    /// Destinations a rule of category egress or cloud flagged (bounded).
    pub unexpected: BTreeSet<IpAddr>,
    /// (protocol, port) the device answered on (bounded).
    pub services: BTreeMap<(u8, u16), Service>,
    /// Addresses the device held before, oldest first (bounded).
    pub past_addresses: Vec<PastAddress>,
}

impl Device {
    pub fn new(ip: IpAddr, ts: Micros) -> Self {
        Self {
            ip,
            mac: None,
            organization: None,
            first_seen: ts,
            last_seen: ts,
            last_sent: None,
            identity: Identity::default(),
            firmware: FirmwareHistory::default(),
            destinations: BTreeMap::new(),
            unexpected: BTreeSet::new(),
            services: BTreeMap::new(),
            past_addresses: Vec::new(),
        }
    }

    fn attr(a: &Option<crate::model::identity::Attr>) -> Option<&str> {
        a.as_ref().map(|a| a.value.as_str())
    }

    pub fn vendor(&self) -> Option<&str> {
        Self::attr(&self.identity.vendor)
    }

    pub fn model(&self) -> Option<&str> {
        Self::attr(&self.identity.model)
    }

    pub fn serial(&self) -> Option<&str> {
        Self::attr(&self.identity.serial)
    }

    pub fn firmware_version(&self) -> Option<&str> {
        Self::attr(&self.identity.firmware)
    }
}

pub struct Inventory {
    networks: NetSet,
    devices: HashMap<IpAddr, Device>,
    /// Hosts seen behind each MAC, to tell routers from devices.
    mac_hosts: HashMap<[u8; 6], BTreeSet<IpAddr>>,
    max_devices: usize,
    max_unexpected: usize,
    /// Devices evicted to make room for new ones (the inventory was full).
    pub evicted: u64,
    /// Devices changed since the last `take_dirty` (for persistence).
    dirty: HashSet<IpAddr>,
    /// Addresses a renumbered device left, to delete from the state database.
    removed: Vec<IpAddr>,
    /// The address each MAC last claimed in ARP (bounded like the MAC table).
    arp_owner: HashMap<[u8; 6], IpAddr>,
    /// The device holding each MAC (checked on use: a device that moved or went leaves a stale
    /// entry, which is ignored and swept when the inventory makes room).
    by_mac: HashMap<[u8; 6], IpAddr>,
    /// Devices known only by their MAC (see [`MAX_UNBOUND`]).
    unbound: HashMap<[u8; 6], Device>,
    /// Changes made by merging two records of one device, for the caller to report.
    merged: Vec<(IpAddr, Update)>,
}

/// Where a message landed ([`Inventory::locate`]): the record it is about, and the device
/// events (renumbered, MAC learned) its evidence caused.
#[derive(Debug, Default)]
pub struct Located {
    pub key: Option<Key>,
    pub events: Vec<DeviceEvent>,
}

impl Inventory {
    pub fn new(networks: NetSet, max_devices: usize, max_unexpected: usize) -> Self {
        Self {
            networks,
            devices: HashMap::default(),
            mac_hosts: HashMap::default(),
            max_devices,
            max_unexpected,
            evicted: 0,
            dirty: HashSet::default(),
            removed: Vec::new(),
            arp_owner: HashMap::default(),
            by_mac: HashMap::default(),
            unbound: HashMap::default(),
            merged: Vec::new(),
        }
    }

    /// Identity and firmware changes that merging two records of one device made (a device
    /// renumbered onto an address that already had a record, or one known only by its MAC
    /// that showed up at an address), since the last call.
    pub fn take_merged(&mut self) -> Vec<(IpAddr, Update)> {
        std::mem::take(&mut self.merged)
    }

    /// Addresses that no longer hold a device (it was renumbered, or evicted) since the last call.
    pub fn take_removed(&mut self) -> Vec<IpAddr> {
        std::mem::take(&mut self.removed)
    }

    /// Devices changed since the last call.
    pub fn take_dirty(&mut self) -> Vec<IpAddr> {
        self.dirty.drain().collect()
    }

    /// Puts back devices loaded from the state database.
    pub fn restore(&mut self, devices: Vec<Device>) {
        for d in devices.into_iter().take(self.max_devices) {
            if let Some(m) = d.mac {
                self.mac_hosts.entry(m).or_default().insert(d.ip);
                self.index_mac(m, d.ip);
            }
            self.devices.insert(d.ip, d);
        }
    }

    /// Merges what a message said about a device known only by its MAC (it has no address yet).
    /// Its changes are reported once the MAC shows up at an address.
    pub fn identify_unbound(&mut self, mac: [u8; 6], source: Source, obs: &Observation, ts: Micros) {
        if obs.is_empty() {
            return;
        }
        if !self.unbound.contains_key(&mac) && self.unbound.len() >= MAX_UNBOUND {
            if let Some(oldest) = self.unbound.values().min_by_key(|d| d.last_seen).and_then(|d| d.mac) {
                self.unbound.remove(&oldest);
                self.evicted += 1;
            }
        }
        let d = self.unbound.entry(mac).or_insert_with(|| {
            let mut d = Device::new(IpAddr::from([0, 0, 0, 0]), ts);
            set_mac(&mut d, mac, ts);
            d
        });
        d.last_seen = d.last_seen.max(ts);
        d.identity.merge(source, obs, ts);
        if let Some(fw) = &obs.firmware {
            d.firmware.observe(fw, source, ts);
        }
    }

    /// A device known only by its MAC.
    pub fn get_unbound(&self, mac: [u8; 6]) -> Option<&Device> {
        self.unbound.get(&mac)
    }

    /// Finds the record a message about `ip` and `mac` is about. A MAC is the device's own
    /// (never a router's: see [`ROUTER_MAC_HOSTS`]); a message from 0.0.0.0 (a camera
    /// rebooting into new firmware announces itself before it has an address) lands on the
    /// device holding its MAC, or on a record kept by MAC until it has an address. When the
    /// message is the device's own word for its address (`binds`: SADP or DHIP describing
    /// itself, a DHCP server's ACK) and the MAC's device is at another address, the device moved:
    /// its identity, firmware history and baselines go with it (a record the new address
    /// already had is merged in, and a newer firmware there is an upgrade).
    pub fn locate(&mut self, ip: Option<IpAddr>, mac: Option<[u8; 6]>, binds: bool, ts: Micros) -> Located {
        let mut out = Located::default();
        let mac = mac.filter(|m| self.own_mac(m));
        let ip = ip.filter(|ip| self.is_device(*ip) && host_address(*ip, true));
        out.key = match (ip, mac) {
            (Some(ip), Some(m)) if binds => {
                match self.owner(m) {
                    Some(old) if old != ip && old.is_ipv4() == ip.is_ipv4() => {
                        out.events.extend(self.relocate(m, old, ip, ts));
                    }
                    Some(_) => {}
                    None => out.events.extend(self.observe(ip, Some(m), ts)),
                }
                Some(Key::Ip(ip))
            }
            (Some(ip), _) => Some(Key::Ip(ip)),
            (None, Some(m)) => Some(self.owner(m).map_or(Key::Mac(m), Key::Ip)),
            (None, None) => None,
        };
        out
    }

    /// A MAC a device can be known by: unicast, not all zeroes, and not a router's (one MAC
    /// carrying many hosts' packets).
    fn own_mac(&self, m: &[u8; 6]) -> bool {
        m[0] & 1 == 0 && *m != [0; 6] && self.mac_hosts.get(m).is_none_or(|h| h.len() <= ROUTER_MAC_HOSTS)
    }

    /// The device that holds `mac`, if any.
    fn owner(&self, mac: [u8; 6]) -> Option<IpAddr> {
        self.by_mac.get(&mac).copied().filter(|ip| self.devices.get(ip).is_some_and(|d| d.mac == Some(mac)))
    }

    fn index_mac(&mut self, mac: [u8; 6], ip: IpAddr) {
        if self.by_mac.len() < self.max_devices.saturating_mul(2) || self.by_mac.contains_key(&mac) {
            self.by_mac.insert(mac, ip);
        }
    }

    /// The device at `ip` now holds `mac`: it is indexed, and a record kept for the MAC alone is
    /// merged into it.
    fn bound(&mut self, ip: IpAddr, mac: [u8; 6]) {
        self.index_mac(mac, ip);
        let Some(early) = self.unbound.remove(&mac) else { return };
        let max_unexpected = self.max_unexpected;
        if let Some(d) = self.devices.get_mut(&ip) {
            for u in absorb(d, early, max_unexpected) {
                self.merged.push((ip, u));
            }
        }
    }

    /// Moves the device holding `mac` from `old` to `new`, merging any record `new` had.
    fn relocate(&mut self, mac: [u8; 6], old: IpAddr, new: IpAddr, ts: Micros) -> Option<DeviceEvent> {
        let mut d = self.devices.remove(&old)?;
        let fresh = self.devices.remove(&new);
        if d.past_addresses.len() >= MAX_PAST_ADDRESSES {
            d.past_addresses.remove(0);
        }
        let arrived = d.past_addresses.last().map_or(d.first_seen, |p| p.until);
        d.past_addresses.push(PastAddress { ip: old, first_seen: arrived, until: ts });
        d.ip = new;
        d.last_seen = d.last_seen.max(ts);
        if let Some(fresh) = fresh {
            for u in absorb(&mut d, fresh, self.max_unexpected) {
                self.merged.push((new, u));
            }
        }
        if let Some(hosts) = self.mac_hosts.get_mut(&mac) {
            hosts.remove(&old);
        }
        let mut ev = event(&d, DeviceEventKind::Renumbered, ts);
        ev.previous_ip = Some(old);
        self.devices.insert(new, d);
        self.index_mac(mac, new);
        self.dirty.remove(&old);
        self.dirty.insert(new);
        self.removed.push(old);
        Some(ev)
    }

    /// Merges what a message said about the device at `ip` (created if it is in the device
    /// networks). Returns the identity and firmware changes.
    pub fn identify(&mut self, ip: IpAddr, source: Source, obs: &Observation, ts: Micros) -> Vec<Update> {
        if !self.is_device(ip) || obs.is_empty() {
            return Vec::new();
        }
        if !self.devices.contains_key(&ip) {
            self.make_room();
            self.devices.insert(ip, Device::new(ip, ts));
        }
        let Some(d) = self.devices.get_mut(&ip) else { return Vec::new() };
        let mut out: Vec<Update> =
            d.identity.merge(source, obs, ts).into_iter().map(Update::Identity).collect();
        if let Some(fw) = &obs.firmware {
            if let Some(c) = d.firmware.observe(fw, source, ts) {
                out.push(Update::Firmware(c));
            }
        }
        self.dirty.insert(ip);
        out
    }

    /// Records that a device opened a flow to `dest`. Returns whether this was the first
    /// contact (`None` when the device is unknown or its destination table is full, so no
    /// claim is made).
    pub fn contacted(
        &mut self,
        ip: IpAddr,
        dest: IpAddr,
        port: u16,
        proto: u8,
        name: Option<&str>,
        ts: Micros,
    ) -> Option<bool> {
        let d = self.devices.get_mut(&ip)?;
        let first = if let Some(e) = d.destinations.get_mut(&dest) {
            e.last_seen = e.last_seen.max(ts);
            e.flows += 1;
            if e.ports.len() < MAX_DESTINATION_PORTS {
                e.ports.insert((proto, port));
            }
            if e.name.is_none() {
                e.name = name.map(str::to_string);
            }
            false
        } else if d.destinations.len() < MAX_DESTINATIONS {
            d.destinations.insert(
                dest,
                Destination {
                    name: name.map(str::to_string),
                    port,
                    proto,
                    first_seen: ts,
                    last_seen: ts,
                    flows: 1,
                    ports: BTreeSet::from([(proto, port)]),
                    bytes_sent: 0,
                    bytes_received: 0,
                },
            );
            true
        } else {
            return None;
        };
        self.dirty.insert(ip);
        Some(first)
    }

    /// Adds a flow's bytes to the device's destination (a flow it opened; nothing when the
    /// destination is not in its table).
    pub fn carried(&mut self, ip: IpAddr, dest: IpAddr, sent: u64, received: u64) {
        let Some(e) = self.devices.get_mut(&ip).and_then(|d| d.destinations.get_mut(&dest)) else { return };
        if sent == 0 && received == 0 {
            return;
        }
        e.bytes_sent = e.bytes_sent.saturating_add(sent);
        e.bytes_received = e.bytes_received.saturating_add(received);
        self.dirty.insert(ip);
    }

    /// The device answered a flow on `port`/`proto`: whether it never had before (`None` when
    /// it is not a device). A full table forgets the service answered least recently.
    pub fn served(&mut self, ip: IpAddr, port: u16, proto: u8, ts: Micros) -> Option<bool> {
        let d = self.devices.get_mut(&ip)?;
        let first = if let Some(s) = d.services.get_mut(&(proto, port)) {
            s.last_seen = s.last_seen.max(ts);
            s.flows += 1;
            false
        } else {
            if d.services.len() >= MAX_SERVICES {
                if let Some(k) = d.services.iter().min_by_key(|(_, s)| s.last_seen).map(|(k, _)| *k) {
                    d.services.remove(&k);
                }
            }
            d.services.insert((proto, port), Service { first_seen: ts, last_seen: ts, flows: 1 });
            true
        };
        self.dirty.insert(ip);
        Some(first)
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
    ///
    /// A host not yet in the inventory enters it here only with its own MAC address (a frame
    /// from the local segment): an address behind a router, or in a capture without MACs, is
    /// taken on the word of a single packet that anyone can forge, and a flood of spoofed sources
    /// would fill the inventory. Such hosts enter through [`Inventory::admit`] once a flow of
    /// theirs is answered, or through [`Inventory::identify`] when a message names them.
    pub fn observe(&mut self, ip: IpAddr, mac: Option<[u8; 6]>, ts: Micros) -> Option<DeviceEvent> {
        self.observe_or_admit(ip, mac, ts, false)
    }

    /// As [`Inventory::observe`], for an endpoint of an answered flow: created even without a
    /// MAC address of its own.
    pub fn admit(&mut self, ip: IpAddr, mac: Option<[u8; 6]>, ts: Micros) -> Option<DeviceEvent> {
        self.observe_or_admit(ip, mac, ts, true)
    }

    fn observe_or_admit(
        &mut self,
        ip: IpAddr,
        mac: Option<[u8; 6]>,
        ts: Micros,
        answered: bool,
    ) -> Option<DeviceEvent> {
        if !self.is_device(ip) || !host_address(ip, mac.is_some()) {
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
            if ts > d.last_seen {
                self.dirty.insert(ip);
            }
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
            set_mac(d, mac, ts);
            let ev = event(d, kind, ts);
            self.dirty.insert(ip);
            self.bound(ip, mac);
            return Some(ev);
        }
        if mac.is_none() && !answered {
            return None;
        }
        self.make_room();
        let mut d = Device::new(ip, ts);
        if let Some(m) = mac {
            set_mac(&mut d, m, ts);
        }
        let ev = event(&d, DeviceEventKind::New, ts);
        self.devices.insert(ip, d);
        self.dirty.insert(ip);
        if let Some(m) = mac {
            self.bound(ip, m);
        }
        Some(ev)
    }

    /// An ARP from `mac` claims `ip` (call after [`Inventory::observe`]). When the same MAC
    /// claimed another address before, and the device there went quiet before this address
    /// appeared, the device was renumbered (DHCP): its identity, firmware history and baselines
    /// move to the new address. ARP is the evidence because only a host's own MAC claims its
    /// address; a router's MAC, which carries many routed hosts, claims only the router's. A
    /// device still active at its old address has a second address, not a new one.
    pub fn arp_claim(&mut self, ip: IpAddr, mac: [u8; 6], ts: Micros) -> Option<DeviceEvent> {
        if !self.is_device(ip) || mac[0] & 1 == 1 || mac == [0; 6] {
            return None;
        }
        if self.arp_owner.len() >= self.max_devices.saturating_mul(2) && !self.arp_owner.contains_key(&mac) {
            return None;
        }
        let old = self.arp_owner.insert(mac, ip).filter(|o| *o != ip)?;
        // Quiet means it stopped sending: others may go on calling the old address.
        let gone_quiet = self
            .devices
            .get(&old)
            .filter(|d| d.mac == Some(mac))
            .map(|d| d.last_sent.unwrap_or(d.last_seen))?;
        let appeared = self.devices.get(&ip).map_or(ts, |d| d.first_seen);
        if gone_quiet.saturating_add(RENUMBER_QUIET) > appeared {
            return None;
        }
        // The record the new address got from its first packets is merged into the device's own
        // history (a newer firmware it reported there is an upgrade).
        self.relocate(mac, old, ip, ts)
    }

    /// The device sent a packet at `ts`.
    pub fn sent(&mut self, ip: IpAddr, ts: Micros) {
        if let Some(d) = self.devices.get_mut(&ip) {
            d.last_sent = Some(d.last_sent.map_or(ts, |t| t.max(ts)));
        }
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

impl Inventory {
    /// A full inventory never refuses a newcomer (it may be the attack a flood of spoofed
    /// addresses was sent to hide): it drops its least valuable sixteenth in one sweep, devices
    /// that no message identified (no model, serial or firmware) before those that were, and
    /// among each the least recently seen first. The sweep is O(n) once per n/16 newcomers.
    fn make_room(&mut self) {
        if self.devices.len() < self.max_devices {
            return;
        }
        let n = (self.max_devices / 16).clamp(1, self.devices.len());
        let mut order: Vec<(bool, Micros, IpAddr)> = self
            .devices
            .values()
            .map(|d| {
                (
                    d.model().is_some() || d.serial().is_some() || d.firmware_version().is_some(),
                    d.last_seen,
                    d.ip,
                )
            })
            .collect();
        order.select_nth_unstable(n - 1);
        for (_, _, ip) in order.into_iter().take(n) {
            self.devices.remove(&ip);
            self.dirty.remove(&ip);
            self.removed.push(ip);
            self.evicted += 1;
        }
        let devices = &self.devices;
        self.by_mac.retain(|m, ip| devices.get(ip).is_some_and(|d| d.mac == Some(*m)));
    }
}

/// Merges a second record of one device (`from`) into its main record. Identity values merge by
/// source strength; firmware versions join the history, and one newer than the record's current
/// version is a change; destinations, services and flagged destinations are united (bounded).
/// Returns what changed.
fn absorb(into: &mut Device, from: Device, max_unexpected: usize) -> Vec<Update> {
    let mut out = Vec::new();
    into.first_seen = into.first_seen.min(from.first_seen);
    into.last_seen = into.last_seen.max(from.last_seen);
    into.last_sent = into.last_sent.max(from.last_sent);
    if into.mac.is_none() {
        into.mac = from.mac;
        into.organization = from.organization.clone();
    }
    let id = &from.identity;
    let mut attrs: Vec<(&str, &crate::model::identity::Attr)> =
        [("vendor", &id.vendor), ("model", &id.model), ("serial", &id.serial), ("hostname", &id.hostname)]
            .into_iter()
            .filter_map(|(f, a)| a.as_ref().map(|a| (f, a)))
            .collect();
    attrs.sort_by_key(|(_, a)| a.last_seen);
    for (field, a) in attrs {
        let mut obs = Observation::default();
        let slot = match field {
            "vendor" => &mut obs.vendor,
            "model" => &mut obs.model,
            "serial" => &mut obs.serial,
            _ => &mut obs.hostname,
        };
        *slot = Some(a.value.clone());
        out.extend(into.identity.merge(a.source, &obs, a.last_seen).into_iter().map(Update::Identity));
    }
    let mut entries = from.firmware.entries;
    entries.sort_by_key(|e| e.last_seen);
    for e in &entries {
        if let Some(c) = into.firmware.absorb(e) {
            out.push(Update::Firmware(c));
        }
    }
    // The identity's firmware value follows the history's current version.
    if let (Some(fw), Some(cur)) = (&from.identity.firmware, into.firmware.current()) {
        if cur.version == fw.value && into.identity.firmware.as_ref().is_none_or(|a| a.value != fw.value) {
            into.identity.firmware = Some(fw.clone());
        }
    }
    for (dest, e) in from.destinations {
        if into.destinations.len() >= MAX_DESTINATIONS && !into.destinations.contains_key(&dest) {
            continue;
        }
        let mine = into.destinations.entry(dest).or_insert_with(|| Destination {
            flows: 0,
            bytes_sent: 0,
            bytes_received: 0,
            ..e.clone()
        });
        mine.first_seen = mine.first_seen.min(e.first_seen);
        mine.last_seen = mine.last_seen.max(e.last_seen);
        mine.flows = mine.flows.saturating_add(e.flows);
        mine.bytes_sent = mine.bytes_sent.saturating_add(e.bytes_sent);
        mine.bytes_received = mine.bytes_received.saturating_add(e.bytes_received);
        for p in e.ports {
            if mine.ports.len() < MAX_DESTINATION_PORTS {
                mine.ports.insert(p);
            }
        }
        if mine.name.is_none() {
            mine.name = e.name;
        }
    }
    for (key, s) in from.services {
        if into.services.len() >= MAX_SERVICES && !into.services.contains_key(&key) {
            continue;
        }
        let mine = into.services.entry(key).or_insert(Service { flows: 0, ..s });
        mine.first_seen = mine.first_seen.min(s.first_seen);
        mine.last_seen = mine.last_seen.max(s.last_seen);
        mine.flows = mine.flows.saturating_add(s.flows);
    }
    for dest in from.unexpected {
        if into.unexpected.len() < max_unexpected {
            into.unexpected.insert(dest);
        }
    }
    out
}

fn set_mac(d: &mut Device, mac: [u8; 6], ts: Micros) {
    d.mac = Some(mac);
    let v = oui::lookup(mac);
    d.organization = v.map(|v| v.organization.to_string());
    if let Some(v) = v {
        let obs = Observation { vendor: Some(v.short.to_string()), ..Observation::default() };
        d.identity.merge(Source::Oui, &obs, ts);
    }
}

fn event(d: &Device, kind: DeviceEventKind, ts: Micros) -> DeviceEvent {
    DeviceEvent {
        ts,
        kind,
        ip: d.ip,
        mac: d.mac,
        vendor: d.vendor().map(str::to_string),
        organization: d.organization.clone(),
        change: None,
        previous_ip: None,
    }
}

/// Whether an address can be a device of its own in the inventory: not unspecified, multicast
/// or the limited broadcast; an IPv4 address ending in .255 or .0 (a subnet's broadcast, on the
/// usual /24) only once it has sent a frame (a MAC); and not an IPv6 link-local address, a
/// per-link alias of a device the inventory knows by its routable address (counted on its own,
/// one camera showed as several devices).
fn host_address(ip: IpAddr, sent_frames: bool) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let last = a.octets()[3];
            !(a.is_unspecified()
                || a.is_broadcast()
                || a.is_multicast()
                || ((last == 255 || last == 0) && !sent_frames))
        }
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast() || (a.segments()[0] & 0xffc0) == 0xfe80),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::identity::FirmwareChangeKind;

    /// Broadcast, multicast and IPv6 link-local addresses are no devices; a .255 host that sends
    /// frames (a /23's) is one.
    #[test]
    fn only_host_addresses_become_devices() {
        let mut i = Inventory::new(NetSet::private(), 100, 2);
        let mac = Some([0x44, 0x19, 0xb6, 1, 2, 3]);
        for ip in ["192.168.1.255", "255.255.255.255", "239.255.255.250", "fe80::1", "ff02::1", "10.0.0.0"] {
            let ip: IpAddr = ip.parse().unwrap_or_else(|e| panic!("{e}"));
            assert!(i.observe(ip, None, 1).is_none(), "{ip}");
            assert!(i.get(ip).is_none(), "{ip}");
        }
        assert!(i.observe("fe80::1".parse().unwrap_or_else(|e| panic!("{e}")), mac, 1).is_none());
        assert!(i.observe("192.168.0.255".parse().unwrap_or_else(|e| panic!("{e}")), mac, 1).is_some());
        assert!(i.admit("192.168.1.20".parse().unwrap_or_else(|e| panic!("{e}")), None, 1).is_some());
        assert_eq!(i.len(), 2);
    }

    fn inv() -> Inventory {
        Inventory::new(NetSet::private(), 3, 2)
    }

    #[test]
    fn a_renumbered_device_keeps_its_identity_and_a_second_live_address_does_not_take_it() {
        let mut inv = Inventory::new(NetSet::private(), 10, 2);
        let ip = |s: &str| -> IpAddr { s.parse().unwrap_or_else(|e| panic!("{e}")) };
        let (a, b, c) = (ip("192.168.10.11"), ip("192.168.10.71"), ip("192.168.10.72"));
        let mac = [0x44, 0x19, 0xb6, 1, 2, 3];
        let s = 1_000_000;
        inv.observe(a, Some(mac), 0);
        assert!(inv.arp_claim(a, mac, 0).is_none(), "a first claim moves nothing");
        let obs = Observation { firmware: Some("V5.7.3 build 220112".into()), ..Observation::default() };
        inv.identify(a, Source::Sadp, &obs, s);
        inv.contacted(a, ip("203.0.113.5"), 443, 6, None, s);
        // .11 falls silent; two minutes later the MAC sends from .71 and claims it in ARP.
        inv.observe(b, Some(mac), 120 * s);
        let ev = inv.arp_claim(b, mac, 120 * s).unwrap_or_else(|| panic!("not renumbered"));
        assert_eq!((ev.kind, ev.ip, ev.previous_ip), (DeviceEventKind::Renumbered, b, Some(a)));
        assert!(inv.get(a).is_none());
        let d = inv.get(b).unwrap_or_else(|| panic!("moved device missing"));
        assert_eq!(
            (d.first_seen, d.firmware_version(), d.destinations.len()),
            (0, Some("V5.7.3 build 220112"), 1)
        );
        assert_eq!(inv.take_removed(), vec![a]);
        // An NVR that keeps calling the old address does not keep it from moving: what counts is
        // when the device last sent.
        let mac2 = [0x44, 0x19, 0xb6, 9, 9, 9];
        let (d1, d2) = (ip("192.168.10.21"), ip("192.168.10.81"));
        inv.observe(d1, Some(mac2), 0);
        inv.sent(d1, 0);
        inv.arp_claim(d1, mac2, 0);
        inv.observe(d1, None, 100 * s); // called, not calling
        inv.observe(d2, Some(mac2), 110 * s);
        let ev = inv.arp_claim(d2, mac2, 110 * s).unwrap_or_else(|| panic!("not renumbered"));
        assert_eq!(ev.previous_ip, Some(d1));
        assert_eq!(inv.take_removed(), vec![d1]);
        // While .71 is live, .72 claimed by the same MAC is a second address, not a move.
        inv.observe(c, Some(mac), 130 * s);
        assert!(inv.arp_claim(c, mac, 130 * s).is_none());
        assert!(inv.get(b).is_some() && inv.get(c).is_some());
        assert!(inv.take_removed().is_empty());
    }

    fn fw(v: &str) -> Observation {
        Observation { firmware: Some(v.into()), ..Observation::default() }
    }

    fn firmware_kinds(updates: &[(IpAddr, Update)]) -> Vec<(IpAddr, FirmwareChangeKind)> {
        updates
            .iter()
            .filter_map(|(ip, u)| match u {
                Update::Firmware(c) => Some((*ip, c.kind)),
                Update::Identity(_) => None,
            })
            .collect()
    }

    /// A camera reboots into new firmware: it announces the new version by SADP from 0.0.0.0
    /// (no address yet), which lands on the device holding its MAC, so the upgrade is seen.
    #[test]
    fn a_message_from_no_address_lands_on_the_device_holding_its_mac() {
        let mut inv = Inventory::new(NetSet::private(), 10, 2);
        let a: IpAddr = [192, 168, 10, 31].into();
        let mac = [0xe0, 0xca, 0x3c, 0x10, 0x20, 0x30];
        inv.observe(a, Some(mac), 0);
        inv.identify(a, Source::Sadp, &fw("V5.2.0 build 180709"), 1);
        let loc = inv.locate(None, Some(mac), true, 100);
        assert_eq!(loc.key, Some(Key::Ip(a)));
        let up = inv.identify(a, Source::Sadp, &fw("V5.2.7 build 190617"), 100);
        assert!(up
            .iter()
            .any(|u| matches!(u, Update::Firmware(c) if c.kind == FirmwareChangeKind::Upgraded)));
        // A router's MAC (many hosts behind it) never stands for one device.
        let router = [0x4c, 0x5e, 0x0c, 1, 1, 1];
        for n in 1..=6u8 {
            inv.observe(IpAddr::from([10, 9, 0, n]), Some(router), 1);
        }
        assert_eq!(inv.locate(None, Some(router), true, 2).key, None);
    }

    /// The camera comes back from the reboot at another address, reports its new version there
    /// first (a fresh record), and then DHCP's ACK binds its MAC to the new address: the device
    /// moves with its history, the fresh record is merged in, and the newer version is an
    /// upgrade.
    #[test]
    fn a_dhcp_ack_moves_the_device_and_the_version_reported_there_is_an_upgrade() {
        let mut inv = Inventory::new(NetSet::private(), 10, 2);
        let (a, b): (IpAddr, IpAddr) = ([192, 168, 10, 31].into(), [192, 168, 10, 57].into());
        let mac = [0xe0, 0xca, 0x3c, 0x10, 0x20, 0x30];
        let s = 1_000_000;
        inv.observe(a, Some(mac), 0);
        inv.identify(a, Source::Sadp, &fw("V5.2.0 build 180709"), s);
        inv.contacted(a, [203, 0, 113, 5].into(), 443, 6, None, s);
        // Back at .57 (no MAC yet: routed, or a raw-IP capture) saying its new version.
        inv.observe(b, None, 90 * s);
        let first = inv.identify(b, Source::Isapi, &fw("V5.2.7 build 190617"), 90 * s);
        assert!(first
            .iter()
            .any(|u| matches!(u, Update::Firmware(c) if c.kind == FirmwareChangeKind::FirstSeen)));
        let loc = inv.locate(Some(b), Some(mac), true, 91 * s);
        assert_eq!(loc.key, Some(Key::Ip(b)));
        let ev = loc.events.first().unwrap_or_else(|| panic!("not moved"));
        assert_eq!((ev.kind, ev.previous_ip), (DeviceEventKind::Renumbered, Some(a)));
        assert_eq!(firmware_kinds(&inv.take_merged()), vec![(b, FirmwareChangeKind::Upgraded)]);
        let d = inv.get(b).unwrap_or_else(|| panic!("moved device missing"));
        assert_eq!(d.firmware_version(), Some("V5.2.7 build 190617"));
        assert_eq!((d.first_seen, d.destinations.len(), d.firmware.entries.len()), (0, 1, 2));
        assert_eq!(d.past_addresses.iter().map(|p| (p.ip, p.until)).collect::<Vec<_>>(), vec![(a, 91 * s)]);
        assert!(inv.get(a).is_none());
        assert_eq!(inv.take_removed(), vec![a]);
        // A claim that is no binding evidence (a flow's address) moves nothing.
        let c: IpAddr = [192, 168, 10, 58].into();
        assert_eq!(inv.locate(Some(c), Some(mac), false, 92 * s).key, Some(Key::Ip(c)));
        assert!(inv.get(b).is_some());
    }

    /// A camera never seen before speaks from 0.0.0.0 first: what it says is kept by its MAC
    /// and becomes the device's once the MAC shows up at an address.
    #[test]
    fn a_device_known_first_by_its_mac_is_bound_when_it_gets_an_address() {
        let mut inv = Inventory::new(NetSet::private(), 10, 2);
        let mac = [0xe0, 0xca, 0x3c, 0x10, 0x20, 0x31];
        let loc = inv.locate(None, Some(mac), true, 5);
        assert_eq!(loc.key, Some(Key::Mac(mac)));
        let obs = Observation { model: Some("CS-C6CN".into()), ..fw("V5.2.7 build 190617") };
        inv.identify_unbound(mac, Source::Sadp, &obs, 5);
        assert!(inv.is_empty() && inv.get_unbound(mac).is_some());
        let ip: IpAddr = [192, 168, 10, 60].into();
        inv.observe(ip, Some(mac), 20);
        assert_eq!(firmware_kinds(&inv.take_merged()), vec![(ip, FirmwareChangeKind::FirstSeen)]);
        let d = inv.get(ip).unwrap_or_else(|| panic!("not bound"));
        assert_eq!(
            (d.model(), d.firmware_version(), d.first_seen),
            (Some("CS-C6CN"), Some("V5.2.7 build 190617"), 5)
        );
        assert!(inv.get_unbound(mac).is_none());
    }

    #[test]
    fn hosts_behind_a_router_are_never_merged() {
        // A router's MAC carries routed hosts' packets but claims only its own address in ARP.
        let mut inv = Inventory::new(NetSet::private(), 10, 2);
        let ip = |s: &str| -> IpAddr { s.parse().unwrap_or_else(|e| panic!("{e}")) };
        let router = [0x4c, 0x5e, 0x0c, 0x1a, 0x2b, 0x3c];
        let s = 1_000_000;
        inv.arp_claim(ip("192.168.10.1"), router, 0);
        inv.observe(ip("10.20.0.5"), Some(router), 0);
        inv.observe(ip("10.20.0.6"), Some(router), 300 * s);
        assert!(inv.arp_claim(ip("192.168.10.1"), router, 301 * s).is_none());
        assert!(inv.get(ip("10.20.0.5")).is_some() && inv.get(ip("10.20.0.6")).is_some());
        assert!(inv.take_removed().is_empty());
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
        assert!(i.admit(ip, None, 1).is_some());
        let late = i.observe(ip, Some([0x08, 0xed, 0xed, 0, 0, 1]), 2);
        assert_eq!(late.map(|e| e.kind), Some(DeviceEventKind::MacLearned));
        let moved = i.observe(ip, Some([0x08, 0xed, 0xed, 0, 0, 2]), 3);
        assert_eq!(moved.map(|e| e.kind), Some(DeviceEventKind::MacChanged));
        assert_eq!(i.get(ip).and_then(|d| d.vendor()), Some("Dahua"));
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
    fn capacity_is_enforced_by_evicting_and_counted() {
        let mut i = inv();
        for n in 1..=5u8 {
            i.admit(IpAddr::from([10, 0, 0, n]), None, u64::from(n));
        }
        assert_eq!(i.len(), 3);
        assert_eq!(i.evicted, 2);
        // The least recently seen went; the newest is always taken in.
        assert!(i.get(IpAddr::from([10, 0, 0, 5])).is_some());
        assert_eq!(i.take_removed(), [IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2])]);
        let d = IpAddr::from([10, 0, 0, 5]);
        for n in 1..=5u8 {
            i.flag_destination(d, IpAddr::from([203, 0, 113, n]));
        }
        assert_eq!(i.get(d).map(|d| d.unexpected.len()), Some(2));
    }

    /// Packets from addresses without MACs of their own (routed, or forged) add nothing until a
    /// flow of theirs is answered; hosts on the segment enter at their first frame.
    #[test]
    fn a_host_without_its_own_mac_enters_when_its_flow_is_answered() {
        let mut i = Inventory::new(NetSet::private(), 1000, 4);
        for n in 0..5_000u32 {
            let [_, _, a, b] = n.to_be_bytes();
            assert!(i.observe(IpAddr::from([10, 1, a, b | 1]), None, u64::from(n)).is_none());
        }
        assert!(i.is_empty(), "forged sources became devices");
        let routed = IpAddr::from([10, 2, 0, 7]);
        assert!(i.observe(routed, None, 1).is_none());
        assert_eq!(i.admit(routed, None, 2).map(|e| e.kind), Some(DeviceEventKind::New));
        assert!(i.observe(routed, None, 3).is_none(), "known now: seen, not new");
        assert_eq!(i.get(routed).map(|d| d.last_seen), Some(3));
        let local = IpAddr::from([10, 2, 0, 8]);
        assert!(i.observe(local, Some([0x44, 0x19, 0xb6, 1, 2, 3]), 4).is_some());
        assert_eq!(i.len(), 2);
    }

    /// A flood of spoofed addresses with answered flows fills the inventory; the cameras that
    /// identified themselves stay, and the device that speaks after the flood is taken in.
    #[test]
    fn a_flood_of_addresses_evicts_the_unidentified_and_keeps_the_cameras() {
        let mut i = Inventory::new(NetSet::private(), 1000, 4);
        let camera = IpAddr::from([10, 0, 0, 1]);
        let obs = Observation { model: Some("DS-2CD2042WD-I".into()), ..Observation::default() };
        i.identify(camera, Source::Isapi, &obs, 1);
        for n in 0..20_000u32 {
            let [_, _, a, b] = n.to_be_bytes();
            i.admit(IpAddr::from([10, 1, a, b]), None, 10 + u64::from(n));
        }
        assert!(i.len() <= 1000);
        // Addresses ending in .0 or .255 that never sent a frame are no devices (158 of them).
        assert!(i.evicted >= 18_800, "{}", i.evicted);
        assert!(i.get(camera).is_some(), "an identified camera was evicted by the flood");
        let after = IpAddr::from([10, 9, 9, 9]);
        assert!(i.admit(after, None, 1_000_000).is_some());
        assert!(i.get(after).is_some());
    }
}
