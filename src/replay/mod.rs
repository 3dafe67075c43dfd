//! Replay: tapes with their playback cursors, prepared answers, and what a miss is told.

pub mod miss;
pub mod prepared;
pub mod tape;
