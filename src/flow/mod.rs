//! Flows: IPv4 defragmentation, the bounded bidirectional flow table with its timeouts, and
//! in-order following of each TCP direction.

mod defrag;
pub mod metrics;
mod stream;
mod table;

pub use defrag::Defrag;
pub use stream::Stream;
pub use table::{shard_of_endpoints, FlowConfig, FlowKey, FlowTable};
