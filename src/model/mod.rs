//! The data: recorded interactions, request keys and match rules, recordings, header classes,
//! credentials outside headers (query, body, URL), and the redaction policy and stamp as plain data.

#[cfg(test)]
pub(crate) mod fixtures;
pub mod credentials;
pub mod headers;
pub mod interaction;
pub mod key;
pub mod recording;
pub mod redaction;
pub mod session;
pub mod volatile;
