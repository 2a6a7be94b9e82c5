//! The `capture` section of the config file: live capture settings (libpcap).

use std::time::Duration;

use serde::Deserialize;

/// Live capture settings (libpcap).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConfig {
    /// Interfaces to capture from (added to `--interface`).
    pub interfaces: Vec<String>,
    /// BPF filter applied to every live source.
    pub filter: Option<String>,
    /// Bytes kept of each packet.
    pub snaplen: i32,
    /// Kernel capture buffer, bytes.
    pub buffer_size: i32,
    pub promiscuous: bool,
    /// Deliver each packet as it arrives (a wake-up per packet) instead of in the kernel's
    /// blocks, which are handed over when full or after `read_timeout`. Off by default: on the
    /// 2-core development machine immediate mode dropped 0.3% of the camera-mix capture at
    /// 1 Gbit/s and 2.8% at 1.35 Gbit/s, block mode nothing at 2 Gbit/s (`bench/live.sh`); the
    /// price is that a packet on a quiet link reaches analysis up to `read_timeout` later.
    pub immediate: bool,
    /// How long a read waits on a quiet link before the loop ticks (flow timeouts, stats).
    #[serde(with = "humantime_serde")]
    pub read_timeout: Duration,
    /// Packets in flight between a capture thread and each worker, in batches of 256 (see
    /// `capture::batch`): a live source drops and counts (`reason="queue"`) beyond it, a file
    /// waits. Each batch holds up to 256 KiB of packet data, touched only as it fills.
    pub queue_packets: usize,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        Self {
            interfaces: Vec::new(),
            filter: None,
            snaplen: 65535,
            buffer_size: 16 << 20,
            promiscuous: true,
            immediate: false,
            read_timeout: Duration::from_millis(250),
            queue_packets: 8192,
        }
    }
}
