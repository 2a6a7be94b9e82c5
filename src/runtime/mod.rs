//! The wiring: the sensor that assembles the layers into the one pipeline from packets to alerts,
//! the config file that assembles each layer's settings, and the rule-test harness.

pub mod config;
pub mod daemon;
#[doc(hidden)]
pub mod fuzzing;
pub mod guard;
#[cfg(test)]
mod hostile;
pub mod pipeline;
pub mod privileges;
pub mod rules_test;
pub mod shutdown;
mod stage;
mod worker;
