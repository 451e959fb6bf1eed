//! fintel-filing (being written).
