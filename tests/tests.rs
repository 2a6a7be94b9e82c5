//! Integration tests: one binary (short link times), a module per area.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, reason = "test code")]

mod active_dns;
mod alerts;
mod bad_input;
mod browser;
mod conformance;
mod daemon;
mod dashboards;
mod e2e;
mod eve_schema;
mod formats;
mod identity;
mod live;
mod metrics;
mod oracle;
mod packs;
mod provenance;
mod replay;
mod review;
mod tunnels;
mod util;
mod yang;
