//! fintel-engine (being written).
