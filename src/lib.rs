//! # ims-vcr
//!
//! A record-and-replay reverse proxy for the Huawei Cloud IMS image API
//! (`GET /v2/images/{image_id}` and the rest of the Glance-v2 surface clients touch).
//!
//! ## Tour
//! The crate is layered; each folder may import only the ones above it in this list:
//!
//! 1. `error`: the one error enum.
//! 2. `model`: recorded interactions, request keys and match rules, recordings, header classes,
//!    the redaction policy and stamp as plain data.
//! 3. `secrets`: pseudonyms, redaction, leak scanning, and the one `Gate` (redact, leak-check,
//!    re-key) every write goes through.
//! 4. `storage` (the sled store facade, its journal, the replay pack codec), `formats`
//!    (cassettes, HAR) and `net` (upstream client, AK/SK signing, listener TLS, head timeout, the
//!    outcome table).
//! 5. `replay`: tapes with playback cursors, prepared answers, miss explanations.
//! 6. `proxy`: the per-request flow by mode, its settings, the record path, the control API,
//!    telemetry and realism.
//! 7. `server`: the accept loop, connection tracking, and [`ProxyServerBuilder`], the composition
//!    root.
//! 8. `tools` (drift, diff, verify, listing) and [`cli`], the only reader of flags, environment
//!    and `ims-vcr.toml`, and the only printer.
//!
//! `docs/architecture.md` in the repository draws the same picture with the data flow of a
//! replayed and of a recorded request.
//!
//! ## In-process use
//! [`ProxyServer`] is the proxy the CLI runs, started from a Rust test:
//!
//! ```no_run
//! # async fn demo() -> ims_vcr::Result<()> {
//! let server = ims_vcr::ProxyServer::builder().replay().cassettes("cassettes").start().await?;
//! println!("point the IMS client at {}", server.uri());
//! let summary = server.shutdown().await?;
//! assert_eq!(summary.miss_count(), 0);
//! # Ok(()) }
//! ```
//!
//! The modules are private. The `internals` feature (off by default; the crate's own tests,
//! benches and fuzz targets turn it on) makes them public with no stability promise.

#![warn(missing_docs)]

/// Declares the layer modules: private, or public (and hidden) with the `internals` feature.
macro_rules! layers {
    ($($name:ident),* $(,)?) => {$(
        #[cfg(feature = "internals")]
        #[doc(hidden)]
        pub mod $name;
        #[cfg(not(feature = "internals"))]
        mod $name;
    )*};
}

mod error;
layers!(
    model, secrets, storage, formats, net, replay, proxy, server, tools
);
pub mod cli;

pub use error::{Error, Result};
pub use model::key::MatchRules;
pub use net::upstream::UpstreamConfig;
pub use proxy::realism::{Fault, Latency};
pub use proxy::sessions::SessionVerdict;
pub use proxy::telemetry::Summary;
pub use proxy::{MISS_REASON, MISS_STATUS, Mode};
pub use replay::tape::Sequence;
pub use secrets::redact::RedactionPolicy;
pub use server::{ProxyServer, ProxyServerBuilder, Session};
