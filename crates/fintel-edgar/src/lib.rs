//! fintel-edgar (being written).
