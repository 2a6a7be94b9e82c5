//! Evidence captures as the layers speak of them: an alert's request for the pcap of its flow, and
//! how the request ended. The recorder that writes them is in [`crate::alert::evidence`].

use std::path::PathBuf;

use crate::model::time::Micros;

/// An alert asking for the pcap of its flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceRequest {
    /// The alert id; the file is `<id>.pcap`.
    pub id: String,
    pub flow_id: u64,
    /// Packet time of the alert: ring packets of the flow newer than this count as "after".
    pub ts: Micros,
}

/// A published capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceDone {
    pub id: String,
    pub path: PathBuf,
    /// Lower-case hex SHA-256 of the file.
    pub sha256: String,
    /// Packets in the file.
    pub packets: u64,
    /// Packets of the flow left out: a link type other than the first packet's, or a timestamp
    /// past what pcap can hold (2106).
    pub skipped: u64,
    /// Size of the file.
    pub bytes: u64,
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvidenceOutcome {
    Written(EvidenceDone),
    /// Nothing was published (a partial file is removed).
    Failed {
        id: String,
        error: String,
    },
    /// Not attempted: `disabled` or `busy` (`max_open` captures already being written).
    Skipped {
        id: String,
        reason: &'static str,
    },
}

impl EvidenceOutcome {
    pub fn id(&self) -> &str {
        match self {
            Self::Written(d) => &d.id,
            Self::Failed { id, .. } | Self::Skipped { id, .. } => id,
        }
    }

    /// Metric label: `written`, `failed` or `skipped`.
    pub fn result(&self) -> &'static str {
        match self {
            Self::Written(_) => "written",
            Self::Failed { .. } => "failed",
            Self::Skipped { .. } => "skipped",
        }
    }
}
