//! Storage: the sled-backed store facade, what makes a folder a store, its write-ahead journal,
//! and the replay pack codec.

pub mod durability;
pub mod folder;
pub mod journal;
pub mod layout;
pub mod pack;
pub mod snapshot;
pub mod store;
