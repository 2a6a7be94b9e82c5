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
    /// Deliver packets as they arrive instead of in buffered batches.
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
            immediate: true,
            read_timeout: Duration::from_millis(250),
            queue_packets: 8192,
        }
    }
}
