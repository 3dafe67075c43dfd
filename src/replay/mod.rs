//! Replay: tapes with their playback cursors, prepared answers, token times moved to now, and
//! what a miss is told.

pub mod cursors;
pub(crate) mod indexing;
pub mod miss;
pub mod origins;
pub mod prepared;
pub mod tape;
pub mod timeshift;
