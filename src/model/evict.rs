//! The eviction policy every bounded table shares: when a table is full, room is made by taking
//! entries from the sources that hold the most of it first (max-min fairness: the largest
//! holders are cut down to a common level), and within that the least recently used first.
//!
//! One host flooding a table therefore loses its own entries before anyone else loses theirs,
//! and a flood from many spoofed sources (one entry each) falls back to least recently used.
//! The sources holding the most are reported, for the `sensor_degraded` alert.

use crate::model::FastMap as HashMap;
use std::net::IpAddr;

use crate::model::time::Micros;

/// How many of the largest holders an eviction reports.
pub const TOP_SOURCES: usize = 3;

/// What one round of eviction chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Victims<K> {
    /// The entries to evict, at most the `n` asked for.
    pub keys: Vec<K>,
    /// The sources that held the most of the table before the eviction, with their entries,
    /// largest first (at most [`TOP_SOURCES`]).
    pub top: Vec<(IpAddr, u64)>,
}

/// Picks `n` of `entries` (source, last used, key) to evict, fairly by source.
///
/// The level `c` is the largest such that the entries each source holds above `c` number at
/// least `n`; each source's oldest entries above the level are the candidates, and the `n`
/// least recently used of them go. Runs in O(len log len) and is called once per batch of
/// evictions (a tenth of a table), so it costs O(log len) per entry admitted.
pub fn victims<K: Copy>(entries: impl Iterator<Item = (IpAddr, Micros, K)>, n: usize) -> Victims<K> {
    let mut all: Vec<(IpAddr, Micros, K)> = entries.collect();
    let n = n.min(all.len());
    if n == 0 {
        return Victims { keys: Vec::new(), top: Vec::new() };
    }
    let mut counts: HashMap<IpAddr, u64> = HashMap::default();
    for (src, _, _) in &all {
        *counts.entry(*src).or_default() += 1;
    }
    let mut top: Vec<(IpAddr, u64)> = counts.iter().map(|(ip, n)| (*ip, *n)).collect();
    top.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    top.truncate(TOP_SOURCES);
    // Binary search for the level: excess(c) falls as c rises; find the largest c with
    // excess(c) >= n (c = 0 always qualifies, as n <= len).
    let excess = |c: u64| -> u64 { counts.values().map(|k| k.saturating_sub(c)).sum() };
    let (mut lo, mut hi) = (0u64, counts.values().copied().max().unwrap_or(0));
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if excess(mid) >= n as u64 {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let level = lo;
    // Each source's entries oldest first; those past its count minus the level are kept.
    all.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut candidates: Vec<(Micros, K)> = Vec::with_capacity(n);
    let mut i = 0;
    while i < all.len() {
        let src = all[i].0;
        let held = counts.get(&src).copied().unwrap_or(0);
        let take = usize::try_from(held.saturating_sub(level)).unwrap_or(usize::MAX);
        candidates.extend(all[i..].iter().take(take).map(|e| (e.1, e.2)));
        i += usize::try_from(held).unwrap_or(usize::MAX).max(1);
    }
    if candidates.len() > n {
        candidates.select_nth_unstable_by_key(n - 1, |c| c.0);
        candidates.truncate(n);
    }
    Victims { keys: candidates.into_iter().map(|c| c.1).collect(), top }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([192, 168, 1, n])
    }

    #[test]
    fn the_largest_holder_loses_its_own_entries_first() {
        // One host holds 90 entries, all newer than the ten others' entries.
        let mut entries: Vec<(IpAddr, Micros, u32)> =
            (0..10).map(|i| (ip(i as u8 + 1), i, i as u32)).collect();
        entries.extend((0..90).map(|i| (ip(200), 100 + i, 100 + i as u32)));
        let v = victims(entries.into_iter(), 10);
        assert_eq!(v.keys.len(), 10);
        assert!(v.keys.iter().all(|k| *k >= 100), "another host lost an entry: {:?}", v.keys);
        // The flooder's oldest go.
        let mut keys = v.keys.clone();
        keys.sort_unstable();
        assert_eq!(keys, (100..110).collect::<Vec<_>>());
        assert_eq!(v.top.first(), Some(&(ip(200), 90)));
    }

    #[test]
    fn equal_holders_fall_back_to_least_recently_used() {
        // One entry per (spoofed) source: the oldest go.
        let entries =
            (0..100u32).map(|i| (IpAddr::from([10, 0, (i >> 8) as u8, i as u8]), u64::from(100 - i), i));
        let v = victims(entries, 5);
        let mut keys = v.keys;
        keys.sort_unstable();
        assert_eq!(keys, vec![95, 96, 97, 98, 99]);
    }

    #[test]
    fn holders_are_cut_to_a_common_level() {
        // 50, 30 and 5 entries; 40 to evict: the level is 20 (30 + 10 = 40; at 21 only 38), so
        // the small holder keeps all of its entries.
        let mut entries = Vec::new();
        for (host, count) in [(1u8, 50u64), (2, 30), (3, 5)] {
            entries.extend((0..count).map(move |i| (ip(host), i, (host, i))));
        }
        let v = victims(entries.into_iter(), 40);
        assert_eq!(v.keys.len(), 40);
        assert!(v.keys.iter().all(|(host, _)| *host != 3));
        let from_first = v.keys.iter().filter(|(h, _)| *h == 1).count();
        assert_eq!(from_first, 30);
        assert_eq!(v.top, vec![(ip(1), 50), (ip(2), 30), (ip(3), 5)]);
    }

    #[test]
    fn never_more_than_asked_or_held() {
        assert!(victims(std::iter::empty::<(IpAddr, Micros, u8)>(), 3).keys.is_empty());
        let v = victims([(ip(1), 1, 1u8), (ip(1), 2, 2)].into_iter(), 9);
        assert_eq!(v.keys.len(), 2);
        assert_eq!(victims([(ip(1), 1, 1u8)].into_iter(), 0).keys.len(), 0);
    }
}
