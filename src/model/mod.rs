//! The vocabulary every layer speaks: packets, packet time, flow records and events, application
//! messages, device identity, evidence outcomes, address classes and the MAC vendor table. It
//! imports nothing of camwatch but the protocol parsers' record types.

pub mod app;
pub mod event;
pub mod evict;
pub mod evidence;
pub mod identity;
pub mod labels;
pub mod netset;
pub mod oui;
pub mod packet;
pub mod time;
pub mod yaml;
