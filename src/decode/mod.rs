//! Decoding captured frames, for every link type camwatch reads, into the IP packets and ARP claims
//! the flow layer takes; Teredo's inner IPv6 and reassembled IPv4 datagrams decode here too.

mod frame;
pub mod metrics;
mod tunnel;

pub use frame::{
    decapsulate, decode, plain_path_agrees, reassembled, teredo_inner, DecodeError, Decoded, ErrorLayer,
};
