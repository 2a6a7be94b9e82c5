//! The `process_*` metrics every Prometheus exporter serves (CPU seconds, memory, file
//! descriptors, threads, start time), read from `/proc/self` on each scrape with the procfs
//! crate. Names and meanings are those of the Prometheus client libraries' process collector,
//! so the usual dashboards and alerts (`process_resident_memory_bytes`, fd exhaustion) work.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

#[derive(Debug, Default)]
pub struct ProcessCollector;

/// What `/proc/self` says, `None` where it could not be read.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<f64>,
    pub virtual_bytes: Option<f64>,
    pub start_time_seconds: Option<f64>,
    pub threads: Option<f64>,
    pub open_fds: Option<f64>,
    pub max_fds: Option<f64>,
}

impl ProcessStats {
    pub fn read() -> Self {
        let mut s = Self::default();
        let Ok(me) = procfs::process::Process::myself() else { return s };
        let ticks = procfs::ticks_per_second() as f64;
        if let Ok(stat) = me.stat() {
            s.cpu_seconds = Some((stat.utime + stat.stime) as f64 / ticks);
            s.resident_bytes = Some(stat.rss as f64 * procfs::page_size() as f64);
            s.virtual_bytes = Some(stat.vsize as f64);
            s.threads = Some(stat.num_threads as f64);
            if let Ok(boot) = procfs::boot_time_secs() {
                s.start_time_seconds = Some(boot as f64 + stat.starttime as f64 / ticks);
            }
        }
        s.open_fds = me.fd_count().ok().map(|n| n as f64);
        if let Ok(limits) = me.limits() {
            if let procfs::process::LimitValue::Value(v) = limits.max_open_files.soft_limit {
                s.max_fds = Some(v as f64);
            }
        }
        s
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = ProcessStats::read();
        if let Some(v) = s.cpu_seconds {
            let c = ConstCounter::new(v);
            c.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                c.metric_type(),
            )?)?;
        }
        let gauges = [
            ("process_resident_memory_bytes", "Resident memory size in bytes.", s.resident_bytes),
            ("process_virtual_memory_bytes", "Virtual memory size in bytes.", s.virtual_bytes),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                s.start_time_seconds,
            ),
            ("process_threads", "Number of OS threads in the process.", s.threads),
            ("process_open_fds", "Number of open file descriptors.", s.open_fds),
            ("process_max_fds", "Maximum number of open file descriptors.", s.max_fds),
        ];
        for (name, help, value) in gauges {
            if let Some(v) = value {
                let g = ConstGauge::new(v);
                g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers are this test process's own: memory in use, a start in the past, at least
    /// one thread and the three standard descriptors open.
    #[test]
    fn reads_this_process() {
        let s = ProcessStats::read();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        assert!(s.resident_bytes.is_some_and(|r| r > 1e5), "{s:?}");
        assert!(s.start_time_seconds.is_some_and(|t| t > now - 3600.0 && t <= now + 1.0), "{s:?}");
        assert!(s.threads.is_some_and(|t| t >= 1.0) && s.open_fds.is_some_and(|n| n >= 3.0), "{s:?}");
        assert!(s.max_fds.is_some_and(|m| m >= s.open_fds.unwrap_or(0.0)), "{s:?}");
        assert!(s.cpu_seconds.is_some_and(|c| c >= 0.0), "{s:?}");
    }
}
