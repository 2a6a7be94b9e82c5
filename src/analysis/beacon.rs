//! Beaconing: a device connecting to one destination at regular intervals with regular sizes,
//! as implants and vendor heartbeats do. Scored in the manner of RITA (Active Countermeasures'
//! Real Intelligence Threat Analytics): for the intervals between connections and for the bytes
//! each connection sent, Bowley's quartile skewness (a beacon's spread is symmetric) and the
//! median absolute deviation about the median relative to the median (a beacon barely jitters);
//! sizes also score for smallness. Persistence is the number of distinct hours with a connection.
//!
//! The tracker only measures; rules decide. Each score becomes a `beacon` event whose fields
//! (`beacon.score`, `beacon.connections`, `beacon.hours`, …) rules compare against their own
//! thresholds.

use crate::model::FastMap as HashMap;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::time::Micros;

/// Tracker settings (`beacon:` in the config).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BeaconConfig {
    pub enabled: bool,
    /// (device, destination) pairs tracked at once; past it, pairs idle longest are dropped.
    pub max_pairs: usize,
    /// How far back connections count.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Connections a pair needs before it is scored.
    pub min_connections: usize,
    /// A pair is scored again after this much packet time (or when its connections double).
    #[serde(with = "humantime_serde")]
    pub rescore_every: Duration,
}

impl Default for BeaconConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_pairs: 50_000,
            window: Duration::from_secs(24 * 3600),
            min_connections: 6,
            rescore_every: Duration::from_secs(600),
        }
    }
}

/// Connections kept per pair (the oldest go first).
const HISTORY: usize = 1024;

/// Connections kept across all pairs, per pair allowed: a full table of pairs averages this
/// many, so the tracker's memory is bounded by `max_pairs` (about 16 bytes a connection) and not
/// by `max_pairs * HISTORY`.
const CONNS_PER_PAIR: usize = 16;

/// One connection of a pair: when it started and the bytes the device sent.
#[derive(Debug, Clone, Copy)]
struct Conn {
    start: Micros,
    bytes: u64,
}

#[derive(Debug, Default)]
struct Series {
    conns: VecDeque<Conn>,
    /// Clock hours with a connection inside the window, kept apart from `conns`: a fast beacon
    /// fills the history in minutes but persists for hours.
    hours: std::collections::BTreeSet<u64>,
    last_scored: Option<(Micros, usize)>,
    last_seen: Micros,
}

const HOUR: Micros = 3_600_000_000;

/// A pair's beacon score; scores are fractions in 0..=1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BeaconScore {
    pub device: IpAddr,
    pub dest: IpAddr,
    pub connections: usize,
    /// Median interval between connections, seconds.
    pub interval: f64,
    /// From the first to the last connection kept, seconds.
    pub duration: f64,
    /// Distinct clock hours with at least one connection.
    pub hours: usize,
    pub ts_skew: f64,
    pub ts_madm: f64,
    pub ts_score: f64,
    pub ds_skew: f64,
    pub ds_madm: f64,
    pub ds_smallness: f64,
    pub ds_score: f64,
    pub score: f64,
}

impl BeaconScore {
    /// How much evidence the score stands on: `low` (under 12 connections or 2 clock hours:
    /// the first hour of a 5-minute beacon), `medium` (under 20 connections or 6 hours), `high`.
    pub fn confidence(&self) -> &'static str {
        if self.connections >= 20 && self.hours >= 6 {
            "high"
        } else if self.connections >= 12 && self.hours >= 2 {
            "medium"
        } else {
            "low"
        }
    }

    /// A fraction as a whole percentage, for rule fields (which are integers).
    pub fn percent(v: f64) -> u64 {
        (v.clamp(0.0, 1.0) * 100.0).round() as u64
    }
}

/// Connection history per (device, destination), bounded in pairs and per pair.
#[derive(Debug)]
pub struct BeaconTracker {
    cfg: BeaconConfig,
    pairs: HashMap<(IpAddr, IpAddr), Series>,
    /// Pairs dropped because the table was full, and the devices holding the most pairs at the
    /// last such drop.
    pub dropped: u64,
    pub top_sources: Vec<(IpAddr, u64)>,
    /// Connections held across all pairs.
    conns: usize,
    /// Of `dropped`, pairs dropped because the connections across pairs reached their budget.
    pub dropped_memory: u64,
}

impl BeaconTracker {
    pub fn new(cfg: BeaconConfig) -> Self {
        Self {
            cfg,
            pairs: HashMap::default(),
            dropped: 0,
            top_sources: Vec::new(),
            conns: 0,
            dropped_memory: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// A connection from `device` to `dest` started at `start` and sent `bytes`; returns the
    /// pair's score when it is due one.
    pub fn connection(
        &mut self,
        device: IpAddr,
        dest: IpAddr,
        start: Micros,
        bytes: u64,
    ) -> Option<BeaconScore> {
        if !self.cfg.enabled {
            return None;
        }
        let window = u64::try_from(self.cfg.window.as_micros()).unwrap_or(u64::MAX);
        let max_pairs = self.cfg.max_pairs.max(1);
        let full = !self.pairs.contains_key(&(device, dest)) && self.pairs.len() >= max_pairs;
        let over_budget = self.conns >= max_pairs.saturating_mul(CONNS_PER_PAIR).max(4 * HISTORY);
        if full || over_budget {
            let before = self.dropped;
            self.make_room(start, window);
            if !full {
                self.dropped_memory += self.dropped - before;
            }
        }
        let series = self.pairs.entry((device, dest)).or_default();
        let held = series.conns.len();
        series.last_seen = series.last_seen.max(start);
        // Connections arrive as flows end, so nearly in order; keep the history sorted and
        // make room first, so the deque never grows past HISTORY.
        if series.conns.len() >= HISTORY {
            if series.conns.front().is_some_and(|c| c.start > start) {
                return None;
            }
            series.conns.pop_front();
        }
        let at = series.conns.iter().rposition(|c| c.start <= start).map_or(0, |i| i + 1);
        series.conns.insert(at, Conn { start, bytes });
        series.hours.insert(start / HOUR);
        let newest = series.conns.back().map_or(start, |c| c.start);
        while series.conns.front().is_some_and(|c| c.start.saturating_add(window) < newest) {
            series.conns.pop_front();
        }
        let oldest_hour = newest.saturating_sub(window) / HOUR;
        while series.hours.first().is_some_and(|h| *h < oldest_hour) {
            series.hours.pop_first();
        }
        let n = series.conns.len();
        self.conns = (self.conns + n).saturating_sub(held);
        if n < self.cfg.min_connections.max(4) {
            return None;
        }
        let rescore = u64::try_from(self.cfg.rescore_every.as_micros()).unwrap_or(u64::MAX);
        let due = match series.last_scored {
            None => true,
            Some((t, count)) => newest >= t.saturating_add(rescore) || n >= 2 * count,
        };
        if !due {
            return None;
        }
        series.last_scored = Some((newest, n));
        Some(score(device, dest, &series.conns, series.hours.len()))
    }

    /// Drops pairs with nothing inside the window, or else the idlest eighth, so a device
    /// scanning many addresses costs one sweep per eighth of the table, not one per address.
    fn make_room(&mut self, now: Micros, window: u64) {
        let before = self.pairs.len();
        let mut freed = 0;
        self.pairs.retain(|_, s| {
            let keep = s.last_seen.saturating_add(window) >= now;
            if !keep {
                freed += s.conns.len();
            }
            keep
        });
        if self.pairs.len() == before {
            // None aged out: an eighth goes, the pairs of the devices holding the most first,
            // the idlest among them first.
            let k = (self.pairs.len() / 8).max(1);
            let entries = self.pairs.iter().map(|(key, s)| (key.0, s.last_seen, *key));
            let chosen = crate::model::evict::victims(entries, k);
            for key in chosen.keys {
                if let Some(s) = self.pairs.remove(&key) {
                    freed += s.conns.len();
                }
            }
            self.top_sources = chosen.top;
        }
        self.dropped += (before - self.pairs.len()) as u64;
        self.conns = self.conns.saturating_sub(freed);
    }
}

/// The value at quantile `q` of sorted values, interpolating between neighbours.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    let (a, b) = (sorted[lo.min(sorted.len() - 1)], sorted[hi.min(sorted.len() - 1)]);
    a + (b - a) * (pos - lo as f64)
}

/// Bowley's skewness, 0 where it is undefined (no spread, or the median on a quartile), and
/// the median absolute deviation about the median.
fn skew_and_madm(values: &mut [f64]) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let (q1, q2, q3) = (quantile(values, 0.25), quantile(values, 0.5), quantile(values, 0.75));
    let skew =
        if q3 - q1 <= f64::EPSILON || q2 == q1 || q2 == q3 { 0.0 } else { (q1 + q3 - 2.0 * q2) / (q3 - q1) };
    let mut dev: Vec<f64> = values.iter().map(|v| (v - q2).abs()).collect();
    dev.sort_by(f64::total_cmp);
    (skew, quantile(&dev, 0.5), q2)
}

fn dispersion_score(madm: f64, median: f64) -> f64 {
    if median < 1.0 {
        return if madm == 0.0 { 1.0 } else { 0.0 };
    }
    (1.0 - madm / median).max(0.0)
}

fn score(device: IpAddr, dest: IpAddr, conns: &VecDeque<Conn>, hours: usize) -> BeaconScore {
    let mut intervals: Vec<f64> = conns
        .iter()
        .zip(conns.iter().skip(1))
        .map(|(a, b)| b.start.saturating_sub(a.start) as f64 / 1e6)
        .collect();
    let (ts_skew, ts_madm, interval) = skew_and_madm(&mut intervals);
    let ts_score = ((1.0 - ts_skew.abs()) + dispersion_score(ts_madm, interval)) / 2.0;

    let mut sizes: Vec<f64> = conns.iter().map(|c| c.bytes as f64).collect();
    let (ds_skew, ds_madm, ds_mid) = skew_and_madm(&mut sizes);
    let mut counts: HashMap<u64, usize> = HashMap::default();
    for c in conns {
        *counts.entry(c.bytes).or_default() += 1;
    }
    let mode = counts.iter().max_by_key(|(b, n)| (**n, std::cmp::Reverse(**b))).map_or(0, |(b, _)| *b);
    let ds_smallness = (1.0 - mode as f64 / 65535.0).max(0.0);
    let ds_score = ((1.0 - ds_skew.abs()) + dispersion_score(ds_madm, ds_mid) + ds_smallness) / 3.0;

    let first = conns.front().map_or(0, |c| c.start);
    let last = conns.back().map_or(0, |c| c.start);
    BeaconScore {
        device,
        dest,
        connections: conns.len(),
        interval,
        duration: last.saturating_sub(first) as f64 / 1e6,
        hours,
        ts_skew,
        ts_madm,
        ts_score,
        ds_skew,
        ds_madm,
        ds_smallness,
        ds_score,
        score: (ts_score + ds_score) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    const S: Micros = 1_000_000;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    /// Feeds connections and returns the last score produced.
    fn run(conns: impl IntoIterator<Item = (Micros, u64)>) -> Option<BeaconScore> {
        let mut t = BeaconTracker::new(BeaconConfig::default());
        let mut last = None;
        for (start, bytes) in conns {
            if let Some(s) = t.connection(ip("10.0.0.5"), ip("203.0.113.9"), start, bytes) {
                last = Some(s);
            }
        }
        last
    }

    #[test]
    fn a_regular_heartbeat_scores_high() {
        // Every 300 s ± 2 s for 8 hours, 612 ± 3 bytes each.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let conns = (0..96u64).map(|i| {
            let jitter: i64 = rng.random_range(-2..=2);
            ((i * 300) as i64 * S as i64 + jitter * S as i64) as u64 + 1_000 * S
        });
        let sizes = (0..96u64).map(|i| 612 + (i % 3) * 3 - 3);
        let s = run(conns.zip(sizes)).unwrap_or_else(|| panic!("never scored"));
        assert_eq!(s.connections, 96);
        assert!((s.interval - 300.0).abs() <= 2.0, "{s:?}");
        assert!(s.hours >= 8, "{s:?}");
        assert!(s.score >= 0.9, "{s:?}");
    }

    #[test]
    fn random_arrivals_and_sizes_score_low() {
        // Exponential gaps with a 300 s mean and sizes from 200 B to 60 kB.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let mut t = 1_000 * S;
        let mut conns = Vec::new();
        for _ in 0..96 {
            let u: f64 = rng.random_range(0.0001..1.0);
            t += (-u.ln() * 300.0 * S as f64) as u64;
            conns.push((t, rng.random_range(200..60_000)));
        }
        let s = run(conns).unwrap_or_else(|| panic!("never scored"));
        assert!(s.ts_score < 0.75, "{s:?}");
        assert!(s.score < 0.7, "{s:?}");
    }

    #[test]
    fn bowley_and_madm_match_hand_computed_values() {
        // Intervals 10,10,10,40 -> q1 10, q2 10, q3 17.5: median on a quartile, skew 0; madm 0.
        let mut v = vec![10.0, 40.0, 10.0, 10.0];
        assert_eq!(skew_and_madm(&mut v), (0.0, 0.0, 10.0));
        // 1,2,3,4,10 -> q1 2, q2 3, q3 4: symmetric, skew 0; deviations 2,1,0,1,7 -> madm 1.
        let mut v = vec![10.0, 1.0, 2.0, 3.0, 4.0];
        assert_eq!(skew_and_madm(&mut v), (0.0, 1.0, 3.0));
        // 1,2,6,7,8 -> q1 2, q2 6, q3 7: (2 + 7 - 12) / 5 = -0.6; deviations 5,4,0,1,2 -> madm 2.
        let mut v = vec![1.0, 2.0, 6.0, 7.0, 8.0];
        let (skew, madm, mid) = skew_and_madm(&mut v);
        assert!((skew + 0.6).abs() < 1e-9 && madm == 2.0 && mid == 6.0, "{skew} {madm} {mid}");
    }

    #[test]
    fn too_few_connections_are_not_scored_and_rescoring_is_throttled() {
        let mut t = BeaconTracker::new(BeaconConfig::default());
        let (d, x) = (ip("10.0.0.5"), ip("203.0.113.9"));
        let scored: Vec<usize> =
            (0..40u64).filter_map(|i| t.connection(d, x, i * 10 * S, 100).map(|s| s.connections)).collect();
        // First at 6, then when the count doubles (12, 24); 600 s after the last score is not reached.
        assert_eq!(scored, vec![6, 12, 24]);
    }

    #[test]
    fn a_fast_beacon_keeps_its_hours_past_the_history() {
        // Every 5 s for 7 hours: 5040 connections, far more than the history keeps.
        let mut t = BeaconTracker::new(BeaconConfig::default());
        let mut last = None;
        for i in 0..5040u64 {
            if let Some(s) = t.connection(ip("10.0.0.5"), ip("203.0.113.9"), i * 5 * S, 100) {
                last = Some(s);
            }
        }
        let s = last.unwrap_or_else(|| panic!("never scored"));
        assert_eq!(s.connections, HISTORY);
        assert_eq!(s.hours, 7, "{s:?}");
    }

    #[test]
    fn pairs_and_history_are_bounded() {
        let cfg = BeaconConfig { max_pairs: 3, window: Duration::from_secs(3600), ..BeaconConfig::default() };
        let mut t = BeaconTracker::new(cfg);
        for i in 0..10u8 {
            t.connection(ip("10.0.0.5"), IpAddr::from([203, 0, 113, i]), u64::from(i) * S, 1);
        }
        assert_eq!(t.len(), 3);
        assert_eq!(t.dropped, 7);
        // A full table of 80 drops its ten idlest pairs at once, not one per newcomer.
        let cfg80 =
            BeaconConfig { max_pairs: 80, window: Duration::from_secs(3600), ..BeaconConfig::default() };
        let mut big = BeaconTracker::new(cfg80);
        for i in 0..81u64 {
            big.connection(
                ip("10.0.0.7"),
                IpAddr::from([198, 51, (i / 250) as u8, (i % 250) as u8]),
                i * S,
                1,
            );
        }
        assert_eq!((big.len(), big.dropped), (71, 10));
        assert!(!big.pairs.contains_key(&(ip("10.0.0.7"), IpAddr::from([198, 51, 0, 9]))), "the idlest went");
        assert!(big.pairs.contains_key(&(ip("10.0.0.7"), IpAddr::from([198, 51, 0, 10]))));
        let d = ip("10.0.0.6");
        for i in 0..5000u64 {
            t.connection(d, ip("203.0.113.200"), i * S, 1);
        }
        let s = t.pairs.get(&(d, ip("203.0.113.200"))).map(|s| (s.conns.len(), s.conns.capacity()));
        assert!(s.is_some_and(|(n, cap)| n == HISTORY && cap < 2 * HISTORY), "{s:?}");
        // A window of an hour keeps only the last hour of a pair.
        for i in 0..100u64 {
            t.connection(d, ip("203.0.113.201"), i * 600 * S, 1);
        }
        let kept = t.pairs.get(&(d, ip("203.0.113.201"))).map(|s| s.conns.len());
        assert_eq!(kept, Some(7), "an hour of 10-minute connections, both ends included");
    }

    /// One device keeping many pairs near the full history cannot hold `max_pairs * HISTORY`
    /// connections: the total stays within the per-pair average, fairly taken from the device
    /// holding the most pairs.
    #[test]
    fn connections_across_pairs_are_bounded() {
        let cfg = BeaconConfig {
            max_pairs: 300,
            window: Duration::from_secs(30 * 86400),
            ..BeaconConfig::default()
        };
        let mut t = BeaconTracker::new(cfg);
        for round in 0..200u64 {
            for d in 0..200u8 {
                t.connection(
                    ip("10.0.0.9"),
                    IpAddr::from([203, 0, 113, d]),
                    round * 60 * S + u64::from(d),
                    1,
                );
            }
        }
        let held: usize = t.pairs.values().map(|s| s.conns.len()).sum();
        assert_eq!(held, t.conns);
        assert!(held <= 300 * CONNS_PER_PAIR + 1, "{held}");
        assert!(t.dropped > 0);
        assert_eq!(t.top_sources.first().map(|s| s.0), Some(ip("10.0.0.9")));
    }
}
