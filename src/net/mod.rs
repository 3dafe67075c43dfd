//! The network edges: the upstream client, AK/SK signing, the listener's TLS, and the HTTP/1 head timeout.

pub mod head_timeout;
pub mod outcome;
pub mod signer;
pub mod tls;
pub mod upstream;
