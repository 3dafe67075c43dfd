//! Storage: the sled-backed store facade, what makes a folder a store, its write-ahead journal,
//! the file its recordings are appended to,
//! the replay pack codec, and the note a clean close leaves for a quick replay.

pub mod closed;
pub mod durability;
pub mod folder;
pub mod journal;
pub mod layout;
pub mod log_file;
pub mod pack;
pub(crate) mod reservation;
pub mod snapshot;
pub mod store;
