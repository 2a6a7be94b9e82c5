//! Evidence captures: for each alert, a pcap of the triggering flow (its recent packets from a
//! per-worker ring, then the next few), written 0600 into a 0700 directory and reported with its
//! SHA-256; and retention of that directory by age and total size.
//!
//! Each packet worker owns one [`EvidenceRecorder`], fed every packet it handles. Files are
//! written as `<id>.pcap.part` and published as `<id>.pcap` with a hard link, which fails rather
//! than replace an existing file. Finishing a capture (flush, fsync, publish) happens on a
//! closer thread per recorder, off the packet worker. The hash is taken over the bytes as they are written, so it
//! is the `sha256sum` of the published file.

mod closer;
mod recorder;
mod retention;
mod writer;

pub use crate::model::evidence::{EvidenceDone, EvidenceOutcome, EvidenceRequest};
pub use recorder::{EvidenceConfig, EvidenceRecorder};
pub use retention::{prune, remove_partials, PruneStats};
