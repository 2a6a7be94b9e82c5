//! firmware parser (being written).
