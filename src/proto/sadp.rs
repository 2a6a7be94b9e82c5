//! sadp parser (being written).
