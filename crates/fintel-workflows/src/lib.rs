//! fintel-workflows (being written).
