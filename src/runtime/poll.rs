//! Polling sources (being written).
