//! The sensor watching itself: evictions from its bounded tables, per minute of packet time.
//! A table that evicts minute after minute is being flooded (or is too small for the site); each
//! minute that saw evictions becomes a [`SensorHealth`] report that rules (`event: sensor`) turn
//! into the `sensor_degraded` alert.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::model::event::{SensorHealth, TableEvictions};
use crate::model::evict::TOP_SOURCES;
use crate::model::time::Micros;

const MINUTE: Micros = 60_000_000;

#[derive(Debug, Default)]
struct Table {
    /// The minute (packet time / 60 s) being counted, and its evictions.
    minute: u64,
    evicted: u64,
    top: Vec<(IpAddr, u64)>,
    /// The last minute that saw evictions, and how many consecutive minutes it ends.
    last: Option<u64>,
    run: u64,
}

/// Eviction counts per table and minute.
#[derive(Debug, Default)]
pub struct Degraded {
    tables: BTreeMap<&'static str, Table>,
}

impl Degraded {
    /// Counts a table's evictions; reports minutes that closed before `e.ts` into `out`.
    pub fn record(&mut self, e: &TableEvictions, out: &mut Vec<SensorHealth>) {
        if e.evicted == 0 {
            return;
        }
        let minute = e.ts / MINUTE;
        let t = self.tables.entry(e.table).or_default();
        if minute > t.minute {
            close(e.table, t, minute, out);
        }
        t.evicted += e.evicted;
        // The largest holders reported in the minute, each at its largest count.
        for (ip, n) in &e.top {
            match t.top.iter_mut().find(|(i, _)| i == ip) {
                Some(entry) => entry.1 = entry.1.max(*n),
                None => t.top.push((*ip, *n)),
            }
        }
        t.top.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        t.top.truncate(TOP_SOURCES);
    }

    /// Closes the minutes that ended before `now`: each that saw evictions is reported.
    pub fn tick(&mut self, now: Micros, out: &mut Vec<SensorHealth>) {
        let minute = now / MINUTE;
        for (name, t) in &mut self.tables {
            if minute > t.minute {
                close(name, t, minute, out);
            }
        }
    }
}

/// Ends `t`'s current minute and starts `next`.
fn close(table: &'static str, t: &mut Table, next: u64, out: &mut Vec<SensorHealth>) {
    if t.evicted > 0 {
        t.run = if t.last.is_some_and(|l| l + 1 == t.minute) { t.run + 1 } else { 1 };
        t.last = Some(t.minute);
        out.push(SensorHealth {
            ts: (t.minute + 1) * MINUTE,
            table,
            evicted: t.evicted,
            minutes: t.run,
            top: std::mem::take(&mut t.top),
        });
    }
    t.minute = next;
    t.evicted = 0;
    t.top.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ts_minutes: u64, evicted: u64, top: &[(u8, u64)]) -> TableEvictions {
        TableEvictions {
            ts: ts_minutes * MINUTE + 1,
            table: "flows",
            evicted,
            top: top.iter().map(|(i, n)| (IpAddr::from([192, 168, 1, *i]), *n)).collect(),
        }
    }

    #[test]
    fn consecutive_minutes_of_evictions_add_up_and_a_quiet_minute_resets() {
        let mut d = Degraded::default();
        let mut out = Vec::new();
        for m in 100..103 {
            d.record(&ev(m, 10, &[(10, 500), (11, 20)]), &mut out);
            d.record(&ev(m, 5, &[(12, 900)]), &mut out);
        }
        d.tick(103 * MINUTE, &mut out);
        assert_eq!(out.iter().map(|h| h.minutes).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert!(out.iter().all(|h| h.evicted == 15 && h.table == "flows"));
        assert_eq!(out[2].top[0], (IpAddr::from([192, 168, 1, 12]), 900));
        assert_eq!(out[2].top.len(), 3);
        assert_eq!(out[2].ts, 103 * MINUTE);
        // Minute 103 quiet; 104 evicts again: a new run.
        out.clear();
        d.record(&ev(104, 1, &[]), &mut out);
        d.tick(106 * MINUTE, &mut out);
        assert_eq!(out.iter().map(|h| h.minutes).collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn nothing_is_reported_without_evictions() {
        let mut d = Degraded::default();
        let mut out = Vec::new();
        d.record(&ev(5, 0, &[(1, 1)]), &mut out);
        d.tick(50 * MINUTE, &mut out);
        assert!(out.is_empty());
    }
}
