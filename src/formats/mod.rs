//! Portable formats: cassette files and HAR 1.2.

pub(crate) mod atomic;
pub mod cassette;
pub(crate) mod cassette_folder;
pub mod har;
pub(crate) mod strict;
pub(crate) mod unchanged;
pub(crate) mod validate;
