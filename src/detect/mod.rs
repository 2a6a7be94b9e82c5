//! Detection: the rules language (schema), the fields a rule reads from an event, and the
//! compiled rule set that matches events.

pub mod fields;
pub mod metrics;
mod rules;
pub mod schema;

pub use rules::*;

/// The tag of rules whose match means the device's firmware is in a vulnerable range for its
/// model (`camwatch_device_firmware_vulnerable`, the report's "vulnerable").
pub const VULNERABLE_FIRMWARE_TAG: &str = "vulnerable-firmware";
