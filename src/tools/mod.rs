//! Offline commands that return values: drift, JSON diff, verify, listing.

pub mod diff;
pub mod drift;
pub mod listing;
pub mod verify;
