//! Sockets and lifecycle: the builder that assembles a proxy, the accept loop with one task per
//! connection, graceful shutdown (drain, then flush), and the handle tests and the CLI hold.

mod builder;
mod connections;
mod graceful;
mod sessions;

pub use builder::ProxyServerBuilder;
pub use sessions::Session;
use connections::Connections;
use graceful::{GracefulShutdown, Watcher};
use sessions::SessionListeners;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::formats::cassette;
use crate::error::{Error, Result};
use crate::net::head_timeout::{HeadTimeout, Progress};
use crate::model::key::MatchRules;
use crate::secrets::leak::Needle;
use crate::proxy::telemetry::Summary;
use crate::proxy::settings::{DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_BODY, Settings};
use crate::proxy::{Mode, Proxy, Recorder};
use crate::secrets::pseudonym::PseudonymKey;
use crate::proxy::realism::{Fault, Latency, Realism};
use crate::secrets::redact::{RedactionPolicy, Redactor};
use crate::storage::store::Store;
use crate::replay::tape::Sequence;
use crate::replay::tape::Tapes;
use crate::net::routes::Routes;
use crate::net::upstream::UpstreamConfig;

/// Largest request head accepted (request line and headers); hyper answers 431 past it.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// How long shutdown waits for in-flight requests before closing their connections.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// The HTTP/2 connection preface (RFC 9113 §3.4): a plain-TCP client speaking HTTP/2 sends it first.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A running proxy. Dropping it stops the server without waiting; prefer
/// [`ProxyServer::shutdown`], which drains connections and flushes the store.
#[derive(Debug)]
pub struct ProxyServer {
    address: SocketAddr,
    /// `http`, or `https` when started with [`ProxyServerBuilder::tls`].
    scheme: &'static str,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<Result<Summary>>>,
    /// Weak: shutdown waits for the last strong handle to go (the store closes with it).
    proxy: std::sync::Weak<Proxy>,
}

impl ProxyServer {
    /// A builder for replay of `cassettes/` on a free loopback port.
    pub fn builder() -> ProxyServerBuilder {
        ProxyServerBuilder::new()
    }

    /// The bound address (with the real port when 0 was asked for).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://HOST:PORT` of the proxy (`https://` when serving TLS).
    pub fn uri(&self) -> String {
        format!("{}://{}", self.scheme, self.address)
    }

    /// A handle on session `name` (see [`Session`]): the header its requests carry, its own
    /// listener, and its verdict. Fails naming the problem when `name` is not a valid session
    /// name (1 to 200 of `A-Z a-z 0-9 . _ / -`, no empty, `.` or `..` segment, nor one Windows
    /// cannot make a folder of).
    pub fn session(&self, name: &str) -> Result<Session> {
        crate::model::session::validate_new(name).map_err(Error::Config)?;
        Ok(Session {
            name: name.to_owned(),
            proxy: self.proxy.clone(),
        })
    }

    /// Resolves only when the server cannot go on serving: a store whose index, built behind
    /// serving, cannot be (`replay::indexing`). Returns that error; pending forever otherwise.
    pub(crate) async fn failure(&self) -> Error {
        let indexing = self.proxy.upgrade().and_then(|p| p.tapes.indexing_handle());
        if let Some(indexing) = indexing
            && let Some(e) = indexing.failure().await
        {
            return e;
        }
        std::future::pending().await
    }

    /// Stops accepting, lets in-flight requests finish (up to 10 s), flushes the store, and
    /// returns what the server did.
    pub async fn shutdown(mut self) -> Result<Summary> {
        let _ = self.stop.send(true);
        match self.task.take() {
            Some(task) => task
                .await
                .unwrap_or_else(|e| Err(Error::Internal(format!("server task failed: {e}")))),
            None => Ok(Summary::default()),
        }
    }
}

impl Drop for ProxyServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// The main listener's life: accept until stopped, stop the session listeners, drain, flush
/// the store, and report.
async fn serve(
    listener: TcpListener,
    proxy: Arc<Proxy>,
    connections: Arc<Connections>,
    sessions: Arc<SessionListeners>,
    stop: watch::Receiver<bool>,
) -> Result<Summary> {
    accept_loop(listener, proxy.clone(), connections, None, stop).await;
    sessions.stop_all().await;
    // The summary reads every recording; a store indexed behind serving is closed first.
    if let Some(indexing) = proxy.tapes.indexing_handle() {
        indexing.finished().await;
        if let Some(e) = indexing.take_error() {
            return Err(e);
        }
    }
    if let Err(e) = proxy.flush().await {
        // Every answer served as `recorded` is in the store's log already (written before it
        // was served), so a flush that fails (the disk filled after the last answer) loses none:
        // said, and the session still ends with its summary. A store that failed while
        // recording is reported there too: its NOT STORED line, and exit 3.
        tracing::error!(
            error = %e,
            "cannot flush the store as the session ends; the answers it recorded are in its \
             log, and the next start reads them from there"
        );
    }
    released(&proxy).await;
    Ok(proxy.summary())
}

/// One listener's accept loop: one task per connection (in `session` when it is a session's
/// own listener); a failing connection never stops the loop. Returns once stopped and drained.
async fn accept_loop(
    listener: TcpListener,
    proxy: Arc<Proxy>,
    connections: Arc<Connections>,
    session: Option<Arc<str>>,
    mut stop: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        match e.raw_os_error() {
                            Some(libc::EMFILE | libc::ENFILE) => tracing::warn!(
                                error = %e,
                                "accept failed: ims-vcr ran out of file descriptors (one per \
                                 client connection and one per upstream connection); raise its \
                                 limit (`ulimit -n`) or lower the clients' concurrency"
                            ),
                            _ => tracing::warn!(error = %e, "accept failed"),
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                connections.tune(&stream);
                tokio::spawn(connections.clone().run(
                    stream,
                    peer,
                    proxy.clone(),
                    session.clone(),
                    graceful.watcher(),
                    stop.clone(),
                ));
            }
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => tracing::warn!("connections still open after the drain timeout; closing them"),
    }
}

/// Waits (bounded) until the connection tasks have dropped their handles on the proxy.
async fn released(proxy: &Arc<Proxy>) {
    // Connection tasks drop their handle on the proxy just after graceful shutdown reports them
    // done; wait (bounded) so the store is closed, and its lock released, before returning.
    for _ in 0..200 {
        if Arc::strong_count(proxy) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
