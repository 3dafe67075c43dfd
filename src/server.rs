//! Sockets and lifecycle: the builder that assembles a proxy, the accept loop with one task per
//! connection, graceful shutdown (drain, then flush), and the handle tests and the CLI hold.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cassette;
use crate::error::{Error, Result};
use crate::leak::Needle;
use crate::proxy::{DEFAULT_MAX_BODY, Mode, Proxy, Recorder};
use crate::pseudonym::PseudonymKey;
use crate::redact::{RedactionPolicy, Redactor};
use crate::store::Store;
use crate::tape::Tapes;
use crate::upstream::{Upstream, UpstreamConfig};

/// How long a client may take to send its request head before the connection is closed.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest request head accepted; hyper answers 431 past it.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// How long shutdown waits for in-flight requests before closing their connections.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Where replay reads recordings from.
#[derive(Clone, Debug)]
enum Source {
    Store(PathBuf),
    Cassettes(PathBuf),
}

/// Assembles a [`ProxyServer`]. Start from [`ProxyServer::builder`].
#[derive(Debug)]
pub struct ProxyServerBuilder {
    mode: Mode,
    listen: SocketAddr,
    source: Source,
    upstream: Option<UpstreamConfig>,
    max_body: usize,
    redact: Option<RedactionPolicy>,
    redaction_key: Option<PseudonymKey>,
}

impl ProxyServerBuilder {
    /// Replay mode (the default): answer from recordings only.
    pub fn replay(mut self) -> Self {
        self.mode = Mode::Replay;
        self
    }

    /// Record mode against `upstream`, storing into the store (see [`Self::store`]).
    pub fn record(mut self, upstream: UpstreamConfig) -> Self {
        self.mode = Mode::Record;
        self.upstream = Some(upstream);
        self
    }

    /// Address to listen on (default `127.0.0.1:0`, a free loopback port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Use the sled store in `dir` (record writes it; replay reads it).
    pub fn store(mut self, dir: impl Into<PathBuf>) -> Self {
        self.source = Source::Store(dir.into());
        self
    }

    /// Replay the cassette files in `dir` (the default is `cassettes`).
    pub fn cassettes(mut self, dir: impl Into<PathBuf>) -> Self {
        self.source = Source::Cassettes(dir.into());
        self
    }

    /// Cap on a client request body in bytes (default 10 MiB); larger bodies get 413.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Record mode: redact with `policy` before storing (what the recording client is served
    /// stays live). See [`crate::redact`].
    pub fn redact(mut self, policy: RedactionPolicy) -> Self {
        self.redact = Some(policy);
        self
    }

    /// The pseudonym key for redaction (record) and for matching real values against redacted
    /// recordings (replay). Default: `IMS_VCR_REDACT_KEY`, or the public default key.
    pub fn redaction_key(mut self, key: PseudonymKey) -> Self {
        self.redaction_key = Some(key);
        self
    }

    /// Loads recordings or connects the upstream, binds, and returns once the port accepts.
    pub async fn start(self) -> Result<ProxyServer> {
        let proxy = self.assemble()?;
        let listener = TcpListener::bind(self.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: self.listen.to_string(),
                source,
            })?;
        let address = listener.local_addr().map_err(|source| Error::Bind {
            addr: self.listen.to_string(),
            source,
        })?;
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(serve(listener, Arc::new(proxy), stopped));
        Ok(ProxyServer {
            address,
            stop,
            task: Some(task),
        })
    }

    fn key(&self) -> PseudonymKey {
        self.redaction_key
            .clone()
            .unwrap_or_else(|| PseudonymKey::from_lookup(|n| std::env::var(n).ok()).0)
    }

    fn assemble(&self) -> Result<Proxy> {
        let mut proxy = Proxy {
            mode: self.mode,
            rules: Default::default(),
            tapes: Tapes::default(),
            recorder: None,
            max_body: self.max_body,
        };
        match self.mode {
            Mode::Record => {
                let Source::Store(dir) = &self.source else {
                    return Err(Error::Config("record mode writes to a --store, not to --cassettes; record, then `ims-vcr export`".into()));
                };
                let config = self.upstream.as_ref().expect("record() sets the upstream");
                let upstream = Upstream::new(config)?;
                let store = Store::open(dir)?;
                proxy.rules = store.rules()?;
                let secrets = config.credentials.iter().flat_map(|c| {
                    let mut values = vec![("AK", c.ak.clone()), ("SK", c.sk.clone())];
                    values.extend(c.security_token.clone().map(|t| ("security token", t)));
                    values.into_iter().map(|(what, value)| Needle {
                        label: format!("the proxy's {what}"),
                        value,
                    })
                });
                proxy.recorder = Some(Recorder {
                    upstream,
                    store: Arc::new(store),
                    redactor: self
                        .redact
                        .clone()
                        .map(|policy| Redactor::new(policy, self.key())),
                    secrets: secrets.collect(),
                });
            }
            Mode::Replay => {
                let recordings = match &self.source {
                    // The store is read once and closed, so export or record can use it meanwhile.
                    Source::Store(dir) => {
                        let store = Store::open(dir)?;
                        proxy.rules = store.rules()?;
                        store.load(&proxy.rules)?
                    }
                    Source::Cassettes(dir) => cassette::read_dir(dir, &proxy.rules)?,
                };
                proxy.tapes = Tapes::new(&recordings).map_err(Error::Config)?;
                if let Some(warning) = proxy.tapes.use_redaction_key(self.key()) {
                    tracing::warn!("{warning}");
                }
                tracing::info!(requests = proxy.tapes.len(), source = ?self.source, "recordings loaded");
            }
        }
        Ok(proxy)
    }
}

/// A running proxy. Dropping it stops the server without waiting; prefer
/// [`ProxyServer::shutdown`], which drains connections and flushes the store.
#[derive(Debug)]
pub struct ProxyServer {
    address: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<Result<()>>>,
}

impl ProxyServer {
    /// A builder for replay of `cassettes/` on a free loopback port.
    pub fn builder() -> ProxyServerBuilder {
        ProxyServerBuilder {
            mode: Mode::Replay,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            source: Source::Cassettes(PathBuf::from("cassettes")),
            upstream: None,
            max_body: DEFAULT_MAX_BODY,
            redact: None,
            redaction_key: None,
        }
    }

    /// The bound address (with the real port when 0 was asked for).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://HOST:PORT` of the proxy.
    pub fn uri(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Stops accepting, lets in-flight requests finish (up to 10 s), flushes the store.
    pub async fn shutdown(mut self) -> Result<()> {
        let _ = self.stop.send(true);
        match self.task.take() {
            Some(task) => task
                .await
                .unwrap_or_else(|e| Err(Error::Config(format!("server task failed: {e}")))),
            None => Ok(()),
        }
    }
}

impl Drop for ProxyServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// The accept loop: one task per connection; a failing connection never stops the loop.
async fn serve(
    listener: TcpListener,
    proxy: Arc<Proxy>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        // The header-read timeout needs a timer, or hyper panics (RUST-NOTES trap 3).
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES);
    builder.http2().timer(TokioTimer::new());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let proxy = proxy.clone();
                let service = service_fn(move |request| {
                    let proxy = proxy.clone();
                    async move { Ok::<_, Infallible>(proxy.handle(request).await) }
                });
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection.into_owned());
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => tracing::warn!("connections still open after the drain timeout; closing them"),
    }
    if let Some(recorder) = &proxy.recorder {
        recorder.store.flush().await?;
    }
    Ok(())
}
