//! Named sets of IP networks (CIDRs) and the address classes every rule and metric relies on.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

/// Built-in network names usable wherever a CIDR set is expected.
pub const BUILTINS: &[&str] = &["private", "multicast", "broadcast", "loopback", "any"];

/// A set of IPv4/IPv6 networks.
///
/// Looked up for every packet (is this a device? is that peer internal?), so membership does
/// not walk the list: the networks are grouped by prefix length, each group a sorted array of
/// network addresses, and an address is masked once per length present and binary-searched. A
/// site's sets have a handful of distinct lengths, so a lookup is a few searches whatever the
/// number of networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetSet {
    nets: Vec<IpNet>,
    v4: Vec<(u8, Vec<u32>)>,
    v6: Vec<(u8, Vec<u128>)>,
}

fn mask4(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len.min(32))).unwrap_or(0)
}

fn mask6(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len.min(128))).unwrap_or(0)
}

/// Adds `addr` (masked) to the group of prefix length `len`.
fn index<T: Ord + Copy>(groups: &mut Vec<(u8, Vec<T>)>, len: u8, addr: T) {
    match groups.iter_mut().find(|g| g.0 == len) {
        Some(g) => g.1.push(addr),
        None => groups.push((len, vec![addr])),
    }
}

fn parse_all(cidrs: &[&str]) -> Vec<IpNet> {
    cidrs.iter().filter_map(|c| c.parse().ok()).collect()
}

impl NetSet {
    pub fn new(nets: Vec<IpNet>) -> Self {
        let mut set = Self { nets, ..Self::default() };
        set.reindex();
        set
    }

    fn reindex(&mut self) {
        self.nets.sort();
        self.nets.dedup();
        self.v4.clear();
        self.v6.clear();
        for n in &self.nets {
            match n {
                IpNet::V4(n) => {
                    index(&mut self.v4, n.prefix_len(), u32::from(n.addr()) & mask4(n.prefix_len()))
                }
                IpNet::V6(n) => {
                    index(&mut self.v6, n.prefix_len(), u128::from(n.addr()) & mask6(n.prefix_len()))
                }
            }
        }
        for g in self.v4.iter_mut() {
            g.1.sort_unstable();
            g.1.dedup();
        }
        for g in self.v6.iter_mut() {
            g.1.sort_unstable();
            g.1.dedup();
        }
    }

    /// Private space: RFC 1918, RFC 6598 shared space, IPv6 unique-local and link-local, and the
    /// IPv4 link-local block.
    pub fn private() -> Self {
        Self::new(parse_all(&[
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "100.64.0.0/10",
            "169.254.0.0/16",
            "fc00::/7",
            "fe80::/10",
        ]))
    }

    pub fn multicast() -> Self {
        Self::new(parse_all(&["224.0.0.0/4", "ff00::/8"]))
    }

    pub fn broadcast() -> Self {
        Self::new(parse_all(&["255.255.255.255/32", "0.0.0.0/32"]))
    }

    pub fn loopback() -> Self {
        Self::new(parse_all(&["127.0.0.0/8", "::1/128"]))
    }

    pub fn any() -> Self {
        Self::new(parse_all(&["0.0.0.0/0", "::/0"]))
    }

    /// The set a built-in name stands for.
    pub fn builtin(name: &str) -> Option<Self> {
        Some(match name {
            "private" => Self::private(),
            "multicast" => Self::multicast(),
            "broadcast" => Self::broadcast(),
            "loopback" => Self::loopback(),
            "any" => Self::any(),
            _ => return None,
        })
    }

    pub fn extend(&mut self, other: &NetSet) {
        self.nets.extend_from_slice(&other.nets);
        self.reindex();
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match canonical(ip) {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4.iter().any(|(len, nets)| nets.binary_search(&(a & mask4(*len))).is_ok())
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6.iter().any(|(len, nets)| nets.binary_search(&(a & mask6(*len))).is_ok())
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }
}

impl fmt::Display for NetSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.nets.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

/// IPv4-mapped IPv6 addresses are compared as the IPv4 address they carry.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Resolves a list of CIDRs and built-in names into one set.
pub fn resolve(items: &[String]) -> Result<NetSet, String> {
    let mut set = NetSet::default();
    for item in items {
        let item = item.trim();
        if let Some(b) = NetSet::builtin(item) {
            set.extend(&b);
        } else if let Ok(net) = item.parse::<IpNet>() {
            set.extend(&NetSet::new(vec![net.trunc()]));
        } else if let Ok(ip) = item.parse::<IpAddr>() {
            set.extend(&NetSet::new(vec![IpNet::from(ip)]));
        } else {
            return Err(format!("`{item}` is not a CIDR, an IP address or one of {}", BUILTINS.join(", ")));
        }
    }
    Ok(set)
}

/// Private space, built once (address classes are looked up for every packet).
fn private_space() -> &'static NetSet {
    static PRIVATE: std::sync::OnceLock<NetSet> = std::sync::OnceLock::new();
    PRIVATE.get_or_init(NetSet::private)
}

/// Where a device's peer sits, as used by the `dest_class` metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DestClass {
    /// Private, link-local or loopback space: the site's own networks.
    Internal,
    Multicast,
    Broadcast,
    /// Anything else: the internet.
    External,
}

impl DestClass {
    pub fn of(ip: IpAddr) -> Self {
        let ip = canonical(ip);
        let is_broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
        if is_broadcast {
            DestClass::Broadcast
        } else if ip.is_multicast() {
            DestClass::Multicast
        } else if ip.is_loopback() || ip.is_unspecified() || private_space().contains(ip) {
            DestClass::Internal
        } else {
            DestClass::External
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DestClass::Internal => "internal",
            DestClass::Multicast => "multicast",
            DestClass::Broadcast => "broadcast",
            DestClass::External => "external",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn private_space_covers_rfc1918_6598_ula_and_link_local() {
        let p = NetSet::private();
        for a in ["10.1.2.3", "172.31.255.1", "192.168.10.11", "100.64.0.1", "fd00::1", "fe80::1"] {
            assert!(p.contains(ip(a)), "{a} should be private");
        }
        for a in ["172.32.0.1", "8.8.8.8", "203.0.113.50", "2001:db8::1", "100.128.0.1"] {
            assert!(!p.contains(ip(a)), "{a} should not be private");
        }
    }

    #[test]
    fn mapped_ipv6_compares_as_ipv4() {
        assert!(NetSet::private().contains(ip("::ffff:192.168.1.1")));
    }

    #[test]
    fn resolve_mixes_builtins_cidrs_and_addresses() {
        let s = resolve(&["multicast".into(), "198.51.100.0/24".into(), "203.0.113.9".into()])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(s.contains(ip("239.255.255.250")));
        assert!(s.contains(ip("198.51.100.77")));
        assert!(s.contains(ip("203.0.113.9")));
        assert!(!s.contains(ip("203.0.113.10")));
        let err = resolve(&["camera-vlan".into()]).err().unwrap_or_default();
        assert!(err.contains("camera-vlan"), "{err}");
    }

    #[test]
    fn dest_classes() {
        assert_eq!(DestClass::of(ip("192.168.10.2")), DestClass::Internal);
        assert_eq!(DestClass::of(ip("239.255.255.250")), DestClass::Multicast);
        assert_eq!(DestClass::of(ip("255.255.255.255")), DestClass::Broadcast);
        assert_eq!(DestClass::of(ip("203.0.113.50")), DestClass::External);
    }

    #[test]
    fn the_prefix_index_agrees_with_each_network_s_own_test() {
        let nets: Vec<IpNet> = [
            "0.0.0.0/0",
            "10.0.0.0/8",
            "10.1.0.0/16",
            "192.168.1.77/24",
            "203.0.113.9/32",
            "172.16.0.0/12",
            "2001:db8::/32",
            "fe80::/10",
            "::1/128",
            "2001:db8:1::5/48",
        ]
        .iter()
        .filter_map(|c| c.parse().ok())
        .collect();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for subset in 1..(1u32 << nets.len()) {
            let chosen: Vec<IpNet> =
                nets.iter().enumerate().filter(|(i, _)| subset & (1 << i) != 0).map(|(_, n)| *n).collect();
            let set = NetSet::new(chosen.clone());
            for _ in 0..8 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let probes = [
                    IpAddr::from((x as u32).to_be_bytes()),
                    IpAddr::from([10, 1, (x >> 8) as u8, x as u8]),
                    IpAddr::from([192, 168, 1, x as u8]),
                    IpAddr::from(((0x2001_0db8u128 << 96) | u128::from(x)).to_be_bytes()),
                    IpAddr::from(((0xfe80u128 << 112) | u128::from(x)).to_be_bytes()),
                ];
                for p in probes {
                    let expected = chosen.iter().any(|n| n.contains(&p));
                    assert_eq!(set.contains(p), expected, "{p} in {set}");
                }
            }
        }
    }
}
