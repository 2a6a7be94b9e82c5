//! Packet sources: libpcap live interfaces and capture files behind one type, with their settings.

mod config;
pub mod metrics;
mod source;

pub use config::CaptureConfig;
pub use source::{CaptureError, Drops, Next, Source};
