//! Telemetry: the Prometheus metrics every layer reports, and the HTTP endpoint that serves them
//! (`/metrics`, `/healthz`, `/alerts/{id}`).

pub mod metrics;
pub mod process;
pub mod server;
pub mod view;
pub mod web;
