//! dhip parser (being written).
