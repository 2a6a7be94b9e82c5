//! ntp parser (being written).
