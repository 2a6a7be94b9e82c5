//! isapi parser (being written).
