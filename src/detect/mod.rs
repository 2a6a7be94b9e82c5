//! Detection: the rules language (schema), the fields a rule reads from an event, and the
//! compiled rule set that matches events.

pub mod fields;
pub mod metrics;
mod rules;
pub mod schema;

pub use rules::*;
