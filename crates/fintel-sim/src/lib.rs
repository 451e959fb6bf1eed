//! fintel-sim (being written).
