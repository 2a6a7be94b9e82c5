//! rtsp parser (being written).
