//! camwatch: a passive network monitor for IP CCTV estates.
//!
//! # Layout
//!
//! Folders are layers, listed bottom first. Packets enter at [`capture`] and alerts leave at
//! [`sink`]; every arrow points down: a module names (by `crate::` path) only its own layer and the
//! layers listed before it, and a test ([`LAYERS`]) keeps it so.
//!
//! - [`proto`] (the `camwatch-proto` crate): pure protocol parsers, bytes in and typed records
//!   out: DNS, DHCP, NTP, SSDP, TLS (JA3/JA4), HTTP, RTSP, SADP, DHIP, ONVIF, ISAPI, firmware.
//! - [`model`]: the vocabulary every layer speaks: packets and packet time, flow records and
//!   events, application messages, device identity, evidence outcomes, address classes, the OUI
//!   table, YAML file errors.
//! - [`capture`]: packet sources (libpcap live and offline, pcapng via `pcap-file`).
//! - [`decode`]: link types and etherparse's lax slicing, down to a [`model::packet::IpPacket`].
//! - [`flow`]: IPv4 defragmentation, the bounded bidirectional flow table, TCP stream following.
//! - [`analysis`]: the per-worker application layer (which parser sees which bytes), identity
//!   signals, the device inventory, beacon scoring, active DNS.
//! - [`detect`]: the rules language, the fields a rule reads, the compiled rule set.
//! - [`alert`]: the alert record and its lifecycle (firing, resolved); evidence pcaps and their
//!   retention.
//! - [`output`]: the EVE-shaped event log.
//! - [`sink`]: the alert journal and delivery from it (Alertmanager, webhooks, syslog), at least
//!   once.
//! - [`store`]: the SQLite state database (inventory, firmware history, destinations) and the
//!   inventory report.
//! - [`review`]: the estate review read from what the sensor kept: a device's timeline
//!   (`camwatch investigate`), the estate report (`camwatch report`), RFC 8520 MUD files
//!   (`camwatch mud`), and the pages of the read-only web view.
//! - [`telemetry`]: the one Prometheus registry, into which each layer registers the metric group
//!   of its own `metrics.rs`, and the HTTP endpoint (`/metrics`, `/healthz`, `/alerts`).
//! - [`runtime`]: the wiring: the one pipeline that live capture, `run --read` and `replay` share,
//!   the config file that assembles each layer's settings, the daemon, the rule-test harness.
//!
//! The binary (`src/main.rs`) is a thin command line over [`runtime`]. The synthetic capture
//! generator is the `camwatch-synth` crate, used by the rule-test harness, the tests and the
//! demo.

pub use camwatch_proto as proto;

pub mod model;

pub mod capture;
pub mod decode;
pub mod flow;

pub mod analysis;
pub mod detect;

pub mod alert;
pub mod output;
pub mod sink;
pub mod store;

pub mod review;
pub mod telemetry;

pub mod runtime;

/// The layers, bottom first: the one statement of their order. A module under `src/<layer>/`
/// may name `crate::<other>` only for an `<other>` listed before its own layer (or its own).
pub const LAYERS: &[&str] = &[
    "proto",
    "model",
    "capture",
    "decode",
    "flow",
    "analysis",
    "detect",
    "alert",
    "output",
    "sink",
    "store",
    "review",
    "telemetry",
    "runtime",
];

#[cfg(test)]
mod layers;
