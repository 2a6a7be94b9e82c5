//! camwatch: a passive network monitor for IP CCTV estates.
//!
//! # Layout
//!
//! Data flows top to bottom (see [`pipeline`]):
//!
//! - [`capture`]: packet sources (libpcap live and offline, pcapng via `pcap-file`).
//! - [`decode`]: link types and etherparse's lax slicing, down to an [`decode::IpPacket`].
//! - [`flow`]: the bounded bidirectional flow table with timeouts.
//! - [`event`]: the events everything downstream consumes; Community ID.
//! - [`device`]: the device inventory; [`oui`]: MAC vendor lookup.
//! - [`rules`]: rules files and compiled matchers; [`alert`]: the alert record and its lifecycle
//!   (firing, resolved); [`beacon`]: the beaconing scorer.
//! - [`output`]: the alert journal and the EVE-shaped event log; [`evidence`]: the pcap of each
//!   alert's flow (a ring of recent packets, then the next ones), with retention.
//! - [`metrics`]: Prometheus metrics; [`server`]: `/metrics` and `/healthz`.
//! - [`sink`]: alert delivery from the journal (Alertmanager, webhooks, syslog), at least once.
//! - [`pipeline`]: the one path from packets to alerts that live capture, `run --read` and
//!   `replay` share.
//! - [`netset`]: named CIDR sets and address classes; [`config`]: the sensor config file.
//! - [`synth`]: the synthetic camera-network capture generator used by tests and the demo.

pub mod active_dns;
pub mod alert;
pub mod app;
pub mod beacon;
pub mod capture;
pub mod config;
pub mod decode;
pub mod defrag;
pub mod device;
pub mod event;
pub mod evidence;
pub mod flow;
pub mod identity;
pub mod inventory;
pub mod metrics;
pub mod netset;
pub mod oui;
pub mod output;
pub mod pipeline;
pub mod proto;
pub mod rules;
pub mod server;
pub mod signals;
pub mod sink;
pub mod store;
pub mod stream;
pub mod synth;
