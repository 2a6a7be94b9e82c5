//! The state store: the SQLite database that keeps the inventory, firmware history, destinations
//! and services across restarts, and the `camwatch inventory` report read from it.

mod db;
pub mod inventory;
pub mod metrics;

pub use db::{Store, TrafficHour, TRAFFIC_HOURS};
