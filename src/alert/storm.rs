//! Storm control. A flood (2,000,000 SYNs from a few cameras to random public addresses, say)
//! would otherwise raise one alert per destination: millions of records nobody reads, and an
//! Alertmanager that gives up tracking them. Two bounds keep the alert stream readable:
//!
//! - **Per rule and device**: past `per_device` new alerts of one rule about one device within
//!   `window`, the next ones aggregate into one *storm* alert for that rule and device, which
//!   counts them and keeps a few example peers; it resolves like any alert once the storm is over,
//!   and its resolved record carries the final count.
//! - **Globally**: at most `ceiling_per_minute` alert records are raised per minute (packet time);
//!   past it new alerts are held back.
//!
//! Nothing is dropped silently: every alert held back is counted by rule and reason
//! (`camwatch_alerts_suppressed_total{rule,reason}`, reason `storm` or `ceiling`).

use crate::model::FastMap as HashMap;
use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::model::time::Micros;

/// The `alerts` section of the config file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StormConfig {
    /// New alerts of one rule about one device per window before the rest aggregate.
    pub per_device: usize,
    /// The per-device window (packet time).
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Alert records raised per minute, all rules together.
    pub ceiling_per_minute: usize,
}

impl Default for StormConfig {
    fn default() -> Self {
        Self { per_device: 10, window: Duration::from_secs(600), ceiling_per_minute: 600 }
    }
}

/// Example peers kept in a storm alert.
pub const STORM_EXAMPLES: usize = 5;

/// (rule, device) groups tracked at once; past it the group whose window started first goes.
const MAX_GROUPS: usize = 10_000;

/// What to do with a new alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Raise it.
    Raise,
    /// Past the per-device bound: raise the storm alert for this rule and device (the first
    /// time in a window), or add to it.
    Storm { first: bool },
    /// Past the global ceiling: hold it back.
    Ceiling,
}

#[derive(Debug)]
struct Group {
    window_start: Micros,
    raised: usize,
    storming: bool,
}

#[derive(Debug)]
pub struct Storm {
    cfg: StormConfig,
    window: Micros,
    groups: HashMap<(u64, IpAddr), Group>,
    minute_start: Micros,
    this_minute: usize,
}

const MINUTE: Micros = 60_000_000;

impl Storm {
    pub fn new(cfg: StormConfig) -> Self {
        let window = u64::try_from(cfg.window.as_micros()).unwrap_or(u64::MAX).max(1);
        Self { cfg, window, groups: HashMap::default(), minute_start: 0, this_minute: 0 }
    }

    /// A new alert of rule `rule` (its fingerprint seed: any stable hash of the rule id) about
    /// `device` at `ts`.
    pub fn check(&mut self, rule: u64, device: IpAddr, ts: Micros) -> Verdict {
        if self.groups.len() >= MAX_GROUPS && !self.groups.contains_key(&(rule, device)) {
            let oldest = self.groups.iter().min_by_key(|(_, g)| g.window_start).map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.groups.remove(&k);
            }
        }
        let window = self.window;
        let g = self.groups.entry((rule, device)).or_insert(Group {
            window_start: ts,
            raised: 0,
            storming: false,
        });
        if ts >= g.window_start.saturating_add(window) {
            *g = Group { window_start: ts, raised: 0, storming: false };
        }
        let (storm, first) = (g.raised >= self.cfg.per_device, !g.storming);
        if storm {
            if !first {
                return Verdict::Storm { first: false };
            }
            // The storm alert itself is a record: it counts against the ceiling too.
            if !self.take_ceiling(ts) {
                return Verdict::Ceiling;
            }
            if let Some(g) = self.groups.get_mut(&(rule, device)) {
                g.storming = true;
            }
            return Verdict::Storm { first: true };
        }
        if !self.take_ceiling(ts) {
            return Verdict::Ceiling;
        }
        if let Some(g) = self.groups.get_mut(&(rule, device)) {
            g.raised += 1;
        }
        Verdict::Raise
    }

    /// Takes one record from this minute's allowance.
    fn take_ceiling(&mut self, ts: Micros) -> bool {
        if ts >= self.minute_start.saturating_add(MINUTE) {
            self.minute_start = ts;
            self.this_minute = 0;
        }
        if self.this_minute >= self.cfg.ceiling_per_minute {
            return false;
        }
        self.this_minute += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Micros = 1_000_000;

    fn storm(per_device: usize, ceiling: usize) -> Storm {
        Storm::new(StormConfig { per_device, window: Duration::from_secs(600), ceiling_per_minute: ceiling })
    }

    #[test]
    fn past_the_per_device_bound_alerts_aggregate_until_the_window_ends() {
        let mut s = storm(3, 1000);
        let cam = IpAddr::from([10, 0, 0, 5]);
        let other = IpAddr::from([10, 0, 0, 6]);
        let v: Vec<Verdict> = (0..6).map(|i| s.check(1, cam, i * S)).collect();
        assert_eq!(
            v,
            [
                Verdict::Raise,
                Verdict::Raise,
                Verdict::Raise,
                Verdict::Storm { first: true },
                Verdict::Storm { first: false },
                Verdict::Storm { first: false },
            ]
        );
        // Another device, and another rule about the same device, have bounds of their own.
        assert_eq!(s.check(1, other, 7 * S), Verdict::Raise);
        assert_eq!(s.check(2, cam, 7 * S), Verdict::Raise);
        // A new window starts afresh.
        assert_eq!(s.check(1, cam, 601 * S), Verdict::Raise);
    }

    #[test]
    fn the_global_ceiling_holds_back_records_for_the_rest_of_the_minute() {
        let mut s = storm(1000, 5);
        let held =
            (0..20u8).filter(|n| s.check(1, IpAddr::from([10, 0, 1, *n]), S) == Verdict::Ceiling).count();
        assert_eq!(held, 15);
        assert_eq!(s.check(1, IpAddr::from([10, 0, 2, 1]), 62 * S), Verdict::Raise);
    }

    /// Eight cameras, each SYN to a new public address: 2,000,000 matches make at most
    /// 8 × (per-device bound + 1 storm alert) records.
    #[test]
    fn a_flood_of_matches_makes_a_bounded_number_of_records() {
        let mut s = Storm::new(StormConfig::default());
        let mut records = 0;
        for i in 0..2_000_000u64 {
            let cam = IpAddr::from([10, 0, 0, (i % 8) as u8]);
            match s.check(7, cam, i * 100) {
                Verdict::Raise | Verdict::Storm { first: true } => records += 1,
                Verdict::Storm { first: false } | Verdict::Ceiling => {}
            }
        }
        // 200 s of packet time: one window.
        assert_eq!(records, 8 * (10 + 1));
    }
}
