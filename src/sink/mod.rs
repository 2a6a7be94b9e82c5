//! Alert delivery: every sink reads the alert journal from its own cursor and delivers at least
//! once ("journal first, then delivery"), so a sink outage or a restart loses no alert.
//!
//! # Layout
//!
//! - [`journal`]: the journal reader, its per-sink cursor and the record the sinks read.
//! - [`config`]: the `sinks:` section of the config file, validated.
//! - [`metrics`]: the sinks' metric group, every series present from startup.
//! - [`delivery`]: the one delivery loop the sinks share (bounded batches, retries with
//!   exponential backoff and full jitter, wake-ups, shutdown) and [`spawn`], which starts them.
//! - [`alertmanager`]: Alertmanager API v2, with the active alerts re-sent periodically.
//! - [`webhook`]: JSON batches over HTTP, optionally signed (HMAC-SHA256).
//! - [`syslog`]: RFC 5424 over UDP, TCP (RFC 6587 octet counting) or TLS (RFC 5425).
//! - [`tls`]: TLS and authentication settings to receivers (`tls_config`, `basic_auth`).

pub mod alertmanager;
pub mod config;
pub mod delivery;
pub mod journal;
pub mod metrics;
pub mod syslog;
pub mod tls;
pub mod webhook;

#[cfg(test)]
mod testing;

pub use alertmanager::AlertmanagerConfig;
pub(crate) use config::{check_name, check_url};
pub use config::{RetryConfig, SinksConfig};
pub use delivery::{default_state_dir, spawn};
pub(crate) use delivery::{error_chain, http_client, http_outcome, read_secret, Failure, Sink};
pub use journal::{Batch, Journal, Record, Status};
pub(crate) use metrics::Telemetry;
pub use metrics::{SinkLabels, SinkMetrics, SinkResultLabels};
pub use syslog::{SyslogConfig, SyslogFormat, SyslogProtocol};
pub use webhook::WebhookConfig;
