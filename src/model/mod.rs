//! The vocabulary every layer speaks: packets, packet time, flow records and events, application
//! messages, device identity, evidence outcomes, address classes and the MAC vendor table. It
//! imports nothing of camwatch but the protocol parsers' record types.

pub mod app;
pub mod event;
pub mod evict;
pub mod evidence;
pub mod identity;
pub mod labels;
pub mod netset;
pub mod oui;
pub mod packet;
pub mod time;
pub mod yaml;

/// The hash map of the packet path and of every table keyed by what the wire says: foldhash,
/// seeded at random for each map (process-wide and per map), several times faster than the
/// standard library's SipHash on the short keys camwatch hashes (addresses, flow keys, ids).
/// foldhash resists collision flooding only while its seed is secret; a passive sensor answers
/// nothing on the wire, so an attacker has no timing to learn it from, and every such table is
/// bounded and evicts fairly besides (see `docs/design.md`).
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// The set counterpart of [`FastMap`].
pub type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
