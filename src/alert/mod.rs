//! Alerts: the alert record and its lifecycle (firing, suppressed, resolved), and the evidence
//! capture of each alert's flow with its retention.

pub mod evidence;
mod lifecycle;
pub mod metrics;
pub mod storm;

pub use lifecycle::*;
