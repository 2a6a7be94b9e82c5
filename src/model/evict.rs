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
/// least recently used of them go. Runs in O(len) expected time (a hash count of the sources,
/// then selections, never a sort of the table) and is called once per batch of evictions (a
/// tenth of a table), so it costs O(1) per entry admitted: a flood of new flows, the attacker's
/// cheapest weapon, must not make each one dear.
pub fn victims<K: Copy>(entries: impl Iterator<Item = (IpAddr, Micros, K)>, n: usize) -> Victims<K> {
    let mut all: Vec<(Micros, K)> = Vec::new();
    // Each entry's source, as an index into `held`.
    let mut source_of: Vec<u32> = Vec::new();
    let mut index: HashMap<IpAddr, u32> = HashMap::default();
    let mut held: Vec<(IpAddr, u64)> = Vec::new();
    for (src, used, key) in entries {
        let next = u32::try_from(held.len()).unwrap_or(u32::MAX);
        let i = *index.entry(src).or_insert(next);
        if i == next {
            held.push((src, 0));
        }
        if let Some(h) = held.get_mut(i as usize) {
            h.1 += 1;
        }
        all.push((used, key));
        source_of.push(i);
    }
    drop(index);
    let n = n.min(all.len());
    if n == 0 {
        return Victims { keys: Vec::new(), top: Vec::new() };
    }
    let top = largest(&held);
    // Binary search for the level: excess(c) falls as c rises; find the largest c with
    // excess(c) >= n (c = 0 always qualifies, as n <= len).
    let excess = |c: u64| -> u64 { held.iter().map(|h| h.1.saturating_sub(c)).sum() };
    let (mut lo, mut hi) = (0u64, held.iter().map(|h| h.1).max().unwrap_or(0));
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if excess(mid) >= n as u64 {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let level = lo;
    let mut candidates: Vec<(Micros, K)> = if level == 0 {
        // Every entry is above the level (the flood of one entry per spoofed source).
        all
    } else {
        // Only the sources above the level give entries, each its oldest `held - level`: group
        // their entries by source (a counting sort), then select within each group.
        let mut start: Vec<usize> = vec![usize::MAX; held.len()];
        let mut groups: Vec<(usize, usize)> = Vec::new(); // (offset, entries) per group
        let mut total = 0usize;
        for (i, h) in held.iter().enumerate() {
            if h.1 > level {
                let len = usize::try_from(h.1).unwrap_or(usize::MAX);
                if let Some(s) = start.get_mut(i) {
                    *s = groups.len();
                }
                groups.push((total, len));
                total = total.saturating_add(len);
            }
        }
        let mut fill: Vec<usize> = groups.iter().map(|g| g.0).collect();
        let mut grouped: Vec<Option<(Micros, K)>> = vec![None; total];
        for (entry, src) in all.into_iter().zip(&source_of) {
            let Some(&g) = start.get(*src as usize) else { continue };
            if let Some(at) = fill.get_mut(g) {
                if let Some(slot) = grouped.get_mut(*at) {
                    *slot = Some(entry);
                }
                *at += 1;
            }
        }
        let mut grouped: Vec<(Micros, K)> = grouped.into_iter().flatten().collect();
        let mut candidates = Vec::with_capacity(n);
        for &(offset, len) in &groups {
            let take = usize::try_from(level).map_or(0, |l| len.saturating_sub(l));
            let Some(group) = grouped.get_mut(offset..offset.saturating_add(len)) else { continue };
            if take > 0 && take < group.len() {
                group.select_nth_unstable_by_key(take - 1, |c| c.0);
            }
            candidates.extend(group.iter().take(take).copied());
        }
        grouped.clear();
        candidates
    };
    if candidates.len() > n {
        candidates.select_nth_unstable_by_key(n - 1, |c| c.0);
        candidates.truncate(n);
    }
    Victims { keys: candidates.into_iter().map(|c| c.1).collect(), top }
}

/// The [`TOP_SOURCES`] largest holders, largest first (ties by address), without sorting them all.
fn largest(held: &[(IpAddr, u64)]) -> Vec<(IpAddr, u64)> {
    let mut top: Vec<(IpAddr, u64)> = Vec::with_capacity(TOP_SOURCES + 1);
    let before = |a: &(IpAddr, u64), b: &(IpAddr, u64)| b.1.cmp(&a.1).then(a.0.cmp(&b.0));
    for h in held {
        if top.len() == TOP_SOURCES && top.last().is_some_and(|l| before(l, h).is_le()) {
            continue;
        }
        let at = top.partition_point(|t| before(t, h).is_le());
        top.insert(at, *h);
        top.truncate(TOP_SOURCES);
    }
    top
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

    /// The old sorting implementation, kept as the reference the fast one must agree with.
    fn reference<K: Copy + Ord>(all: &[(IpAddr, Micros, K)], n: usize) -> Vec<K> {
        let n = n.min(all.len());
        let mut counts: std::collections::BTreeMap<IpAddr, u64> = Default::default();
        for (src, _, _) in all {
            *counts.entry(*src).or_default() += 1;
        }
        let excess = |c: u64| -> u64 { counts.values().map(|k| k.saturating_sub(c)).sum() };
        let level = (0..=counts.values().copied().max().unwrap_or(0))
            .rev()
            .find(|c| excess(*c) >= n as u64)
            .unwrap_or(0);
        let mut sorted = all.to_vec();
        sorted.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut candidates = Vec::new();
        for (src, held) in &counts {
            let take = held.saturating_sub(level) as usize;
            candidates.extend(sorted.iter().filter(|e| e.0 == *src).take(take).map(|e| (e.1, e.2)));
        }
        candidates.sort();
        let mut keys: Vec<K> = candidates.into_iter().take(n).map(|c| c.1).collect();
        keys.sort();
        keys
    }

    #[test]
    fn agrees_with_the_sorting_reference() {
        // Pseudo-random tables: a few heavy sources among many light ones, distinct times.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..200 {
            let len = (next() % 400) as usize + 1;
            let sources = (next() % 40) + 1;
            let mut times: Vec<u64> = (0..len as u64).collect();
            for i in (1..times.len()).rev() {
                times.swap(i, (next() % (i as u64 + 1)) as usize);
            }
            let all: Vec<(IpAddr, Micros, u32)> = (0..len)
                .map(|i| {
                    // Skewed: source 0 is drawn far more often.
                    let s = if next() % 3 == 0 { 0 } else { next() % sources };
                    (IpAddr::from([10, 0, 0, s as u8]), times[i], i as u32)
                })
                .collect();
            let n = (next() % (len as u64 + 5)) as usize;
            let chosen = victims(all.iter().copied(), n);
            let mut got = chosen.keys;
            got.sort();
            assert_eq!(got, reference(&all, n), "round {round}: {len} entries, {n} asked");
            // The largest holders as the old full sort named them: most first, ties by address.
            let mut counts: std::collections::BTreeMap<IpAddr, u64> = Default::default();
            for (src, _, _) in &all {
                *counts.entry(*src).or_default() += 1;
            }
            let mut top: Vec<(IpAddr, u64)> = counts.into_iter().collect();
            top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            top.truncate(TOP_SOURCES);
            if n > 0 {
                assert_eq!(chosen.top, top, "round {round}");
            }
        }
    }
}
