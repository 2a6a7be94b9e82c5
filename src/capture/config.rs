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
    /// Packets queued between a live capture thread and the workers; beyond it packets are
    /// dropped and counted (`reason="queue"`). About 1.6 KB each.
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
