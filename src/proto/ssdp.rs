//! ssdp parser (being written).
