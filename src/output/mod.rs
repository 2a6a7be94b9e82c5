//! Outputs: the EVE-shaped event log (JSON lines) and the writer of JSON-lines files.

mod eve;
pub mod metrics;

pub use eve::*;
