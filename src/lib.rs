//! # ims-vcr
//!
//! A record-and-replay reverse proxy for the Huawei Cloud IMS image API
//! (`GET /v2/images/{image_id}` and the rest of the Glance-v2 surface clients touch).
//!
//! ## Tour
//! A request enters through [`server`] (accept loop, one task per connection, HTTP/1 heads timed
//! by [`head_timeout`]), and [`proxy`] decides what to do with it:
//!
//! * **record**: [`upstream`] forwards it over rustls (URI and `Host` rewritten, hop-by-hop
//!   headers stripped, gzip decoded), [`headers`] decides which headers are credentials or noise,
//!   and the answer becomes an [`interaction::Interaction`] appended in [`store`] (sled, behind
//!   a [`journal`] written before the client gets its answer);
//! * **replay**: [`key`] turns the request into a canonical [`key::RequestKey`], and [`tape`]
//!   serves the next prepared answer for it, or a 599 `x-ims-vcr: miss` naming the nearest
//!   recordings. A store is replayed through its [`pack`], an indexed snapshot read lazily, so
//!   start-up does not grow with the store.
//!
//! [`cassette`] turns store contents into portable, deterministic JSON files and back, and
//! [`drift`] sends recorded requests to the live endpoint to report, with [`diff`], how its
//! answers changed. The listener serves plain HTTP, or HTTPS with `tls` (`--tls-cert` and
//! `--tls-key`).
//! [`cli`] is the command line over all of this; [`ProxyServer`] is the same thing in-process.
//!
//! ```no_run
//! # async fn demo() -> ims_vcr::Result<()> {
//! let server = ims_vcr::ProxyServer::builder().replay().cassettes("cassettes").start().await?;
//! println!("point the IMS client at {}", server.uri());
//! server.shutdown().await?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod cassette;
pub mod cli;
pub mod config;
pub mod control;
pub mod diff;
pub mod drift;
pub mod error;
pub mod har;
pub mod head_timeout;
pub mod headers;
pub mod interaction;
pub mod journal;
pub mod key;
pub mod leak;
pub mod listing;
pub mod metrics;
pub mod pack;
pub mod prepared;
pub mod proxy;
pub mod pseudonym;
pub mod realism;
pub mod redact;
pub mod server;
pub mod signer;
pub mod store;
pub mod tape;
mod tls;
pub mod upstream;
pub mod verify;

pub use error::{Error, Result};
pub use proxy::{MISS_STATUS, Mode};
pub use server::{ProxyServer, ProxyServerBuilder, Summary};
pub use upstream::UpstreamConfig;
