//! Answers for the people who review a camera estate, read from what the sensor kept (the state
//! database, the alert journal, the event log and the evidence pcaps) without writing queries:
//!
//! - [`investigate`]: one device's timeline, and a hand-over bundle with a SHA-256 manifest;
//! - [`report`]: the estate review (vendors under procurement bans, firmware against the
//!   vulnerable ranges in the packs, every destination outside the site) as one self-contained
//!   HTML page, Markdown or JSON;
//! - [`mud`]: RFC 8520 Manufacturer Usage Description files from the destinations devices used;
//! - [`ban`]: which devices are from vendors named in procurement bans, and by what signal.
//!
//! Everything here only reads; the read-only web view (`telemetry::server`) renders these same
//! pages.

pub mod ban;
pub mod estate;
pub mod html;
pub mod investigate;
pub mod mud;
pub mod report;

pub use estate::{AlertEntry, Estate};
