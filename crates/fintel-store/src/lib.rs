//! fintel-store (being written).
