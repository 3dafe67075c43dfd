//! Storage: the sled-backed store facade, its write-ahead journal, and the replay pack codec.

pub mod durability;
pub mod journal;
pub mod layout;
pub mod pack;
pub mod snapshot;
pub mod store;
