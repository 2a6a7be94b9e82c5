//! Packet sources: libpcap live interfaces and capture files behind one type, with their settings.

pub mod batch;
mod config;
pub mod metrics;
mod source;

pub use batch::{Batch, Ring};
pub use config::CaptureConfig;
pub use source::{CaptureError, Drops, Next, Source};
