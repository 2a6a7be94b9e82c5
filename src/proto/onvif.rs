//! onvif parser (being written).
