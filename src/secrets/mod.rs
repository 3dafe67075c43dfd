//! Secrets: consistent pseudonyms, redaction, leak scanning, and the one gate every write goes through.

pub(crate) mod escapes;
pub mod exposure;
pub mod gate;
pub(crate) mod issued;
pub mod leak;
pub(crate) mod leak_check;
pub(crate) mod policy_values;
pub mod pseudonym;
pub mod redact;
pub(crate) mod shown;
pub mod vouch;
