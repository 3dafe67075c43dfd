//! The network edges: the upstream client and its routes by path prefix, AK/SK signing, the listener's TLS, and the HTTP/1 head timeout.

mod decode;
mod early_answer;
pub mod head_timeout;
pub mod outcome;
mod pool;
pub mod routes;
pub mod signer;
pub mod tls;
pub mod upstream;
mod upstream_error;
