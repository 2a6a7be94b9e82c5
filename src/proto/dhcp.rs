//! dhcp parser (being written).
