//! Analysis: which parser sees which bytes (the application layer of each worker), identity
//! signals from application messages, the device inventory, beacon scoring and active DNS.

pub mod active_dns;
pub mod app;
pub mod beacon;
pub mod degraded;
pub mod device;
pub mod metrics;
pub mod signals;
