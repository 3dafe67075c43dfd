//! Sockets and lifecycle: the builder that assembles a proxy, the accept loop with one task per
//! connection, graceful shutdown (drain, then flush), and the handle tests and the CLI hold.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
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
use crate::net::upstream::{Upstream, UpstreamConfig};

/// Largest request head accepted (request line and headers); hyper answers 431 past it.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// How long shutdown waits for in-flight requests before closing their connections.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// The HTTP/2 connection preface (RFC 9113 §3.4): a plain-TCP client speaking HTTP/2 sends it first.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

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
    sequence: Sequence,
    rules: Option<MatchRules>,
    latency: Latency,
    faults: Vec<Fault>,
    seed: u64,
    control_token: Option<String>,
    header_read_timeout: Duration,
    /// PEM certificate chain and private key files when serving HTTPS.
    tls: Option<(PathBuf, PathBuf)>,
    fsync: bool,
}

impl ProxyServerBuilder {
    /// Replay mode (the default): answer from recordings only.
    pub fn replay(mut self) -> Self {
        self.mode = Mode::Replay;
        self
    }

    /// Record mode against `upstream`, storing into the store (see [`Self::store`]).
    pub fn record(self, upstream: UpstreamConfig) -> Self {
        self.forwarding(Mode::Record, upstream)
    }

    /// Auto mode: replay what the store holds, forward and record what it does not.
    pub fn auto(self, upstream: UpstreamConfig) -> Self {
        self.forwarding(Mode::Auto, upstream)
    }

    /// Passthrough mode: forward everything to `upstream`, store nothing.
    pub fn passthrough(self, upstream: UpstreamConfig) -> Self {
        self.forwarding(Mode::Passthrough, upstream)
    }

    fn forwarding(mut self, mode: Mode, upstream: UpstreamConfig) -> Self {
        self.mode = mode;
        self.upstream = Some(upstream);
        self
    }

    /// What replay serves after a request's last recorded answer (default: repeat the last).
    pub fn sequence(mut self, sequence: Sequence) -> Self {
        self.sequence = sequence;
        self
    }

    /// Match rules for recording (record/auto). They are saved in the store (re-keying it if
    /// they changed) and exported with the cassettes, so replay matches the same way.
    pub fn match_rules(mut self, rules: MatchRules) -> Self {
        self.rules = Some(rules);
        self
    }

    /// Latency added to replayed answers (default none).
    pub fn latency(mut self, latency: Latency) -> Self {
        self.latency = latency;
        self
    }

    /// Faults injected into a fraction of requests, drawn from `seed` (default none).
    pub fn faults(mut self, faults: Vec<Fault>, seed: u64) -> Self {
        self.faults = faults;
        self.seed = seed;
        self
    }

    /// Token that lets non-loopback peers use the control API (loopback peers always may).
    pub fn control_token(mut self, token: impl Into<String>) -> Self {
        self.control_token = Some(token.into());
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
    /// stays live). See [`crate::secrets::redact`].
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

    /// How long a client may take to send a request head (default 30 s). The same bound applies
    /// to the TLS handshake, to the first bytes that tell HTTP/1 from HTTP/2 and to an idle
    /// HTTP/1 keep-alive connection (a client exceeding it is disconnected), and to reading a
    /// request body (408).
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// Record and auto: sync every answer to the disk before serving it (group commit), so it
    /// survives a power loss. Off by default: an answer is then written to the store's journal
    /// before it is served, which survives a `kill -9` of the process (see `journal.rs`).
    pub fn fsync(mut self, fsync: bool) -> Self {
        self.fsync = fsync;
        self
    }

    /// Serve HTTPS (HTTP/2 and HTTP/1.1 by ALPN) with the PEM certificate chain in `cert` and the
    /// PEM private key in `key`; [`ProxyServer::uri`] then starts with `https://`.
    pub fn tls(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls = Some((cert.into(), key.into()));
        self
    }

    /// Loads recordings or connects the upstream, binds, and returns once the port accepts.
    pub async fn start(self) -> Result<ProxyServer> {
        // Certificate problems are reported before the store is opened or the port bound.
        let tls = match &self.tls {
            Some((cert, key)) => Some(crate::net::tls::acceptor(cert, key)?),
            None => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let proxy = self.assemble(scheme).await?;
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
        let connections = Connections::new(self.header_read_timeout, tls);
        let task = tokio::spawn(serve(listener, Arc::new(proxy), connections, stopped));
        Ok(ProxyServer {
            address,
            scheme,
            stop,
            task: Some(task),
        })
    }

    fn key(&self) -> PseudonymKey {
        self.redaction_key
            .clone()
            .unwrap_or_else(|| PseudonymKey::from_lookup(|n| std::env::var(n).ok()).0)
    }

    async fn assemble(&self, scheme: &'static str) -> Result<Proxy> {
        let (mut tapes, recorder, rules) = match self.mode {
            Mode::Replay => match &self.source {
                // The store is opened only to check (or write) its replay pack, then closed, so
                // other replays, export or record can use it meanwhile.
                Source::Store(dir) => {
                    let store = Store::open(dir)?;
                    let rules = store.rules()?;
                    (self.tapes_of(&store, &rules)?, None, rules)
                }
                Source::Cassettes(dir) => {
                    let (recordings, rules) = cassette::read_dir(dir)?;
                    let tapes = Tapes::new(&recordings, self.sequence).map_err(Error::Config)?;
                    (tapes, None, rules)
                }
            },
            Mode::Passthrough => (
                Tapes::new(&[], self.sequence).map_err(Error::Config)?,
                Some(self.recorder(None)?),
                MatchRules::default(),
            ),
            Mode::Record | Mode::Auto => {
                let Source::Store(dir) = &self.source else {
                    return Err(Error::Config(format!(
                        "{} mode writes to a --store, not to --cassettes; record, then `ims-vcr export`",
                        self.mode.as_str()
                    )));
                };
                let store = Store::open(dir)?.fsync_every_answer(self.fsync);
                if let Some(rules) = &self.rules {
                    store.set_rules(rules).await?;
                }
                let rules = store.rules()?;
                let tapes = self.tapes_of(&store, &rules)?;
                (tapes, Some(self.recorder(Some(store))?), rules)
            }
        };
        if let Some(warning) = tapes.use_redaction_key(self.key()) {
            tracing::warn!("{warning}");
        }
        tracing::info!(mode = self.mode.as_str(), requests = tapes.len(), source = ?self.source, "recordings loaded");
        let settings = Settings {
            max_body: self.max_body,
            body_read_timeout: self.header_read_timeout,
            realism: Realism::new(self.latency, self.faults.clone(), self.seed),
            control_token: self.control_token.clone(),
            scheme,
        };
        Ok(Proxy::new(self.mode, rules, tapes, recorder, settings))
    }

    /// The store's recordings, through its replay pack (written first if out of date), or read
    /// whole when the pack cannot be written.
    fn tapes_of(&self, store: &Store, rules: &MatchRules) -> Result<Tapes> {
        match store.replay_pack()? {
            Some(pack) => Ok(Tapes::from_pack(pack, self.sequence)),
            None => Tapes::new(&store.load(rules)?, self.sequence).map_err(Error::Config),
        }
    }

    fn recorder(&self, store: Option<Store>) -> Result<Recorder> {
        let config = self
            .upstream
            .as_ref()
            .expect("forwarding modes set the upstream");
        let upstream = Upstream::new(config)?;
        let secrets = config.credentials.iter().flat_map(|c| {
            let mut values = vec![("AK", c.ak.clone()), ("SK", c.sk.clone())];
            values.extend(c.security_token.clone().map(|t| ("security token", t)));
            values.into_iter().map(|(what, value)| Needle {
                label: format!("the proxy's {what}"),
                value,
            })
        });
        Ok(Recorder {
            upstream,
            store: store.map(Arc::new),
            redactor: self
                .redact
                .clone()
                .map(|policy| Redactor::new(policy, self.key())),
            secrets: secrets.collect(),
        })
    }
}

/// A running proxy. Dropping it stops the server without waiting; prefer
/// [`ProxyServer::shutdown`], which drains connections and flushes the store.
#[derive(Debug)]
pub struct ProxyServer {
    address: SocketAddr,
    /// `http`, or `https` when started with [`ProxyServerBuilder::tls`].
    scheme: &'static str,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<Result<Summary>>>,
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
            sequence: Sequence::default(),
            rules: None,
            latency: Latency::default(),
            faults: Vec::new(),
            seed: 0,
            control_token: None,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            tls: None,
            fsync: false,
        }
    }

    /// The bound address (with the real port when 0 was asked for).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://HOST:PORT` of the proxy (`https://` when serving TLS).
    pub fn uri(&self) -> String {
        format!("{}://{}", self.scheme, self.address)
    }

    /// Stops accepting, lets in-flight requests finish (up to 10 s), flushes the store, and
    /// returns what the server did.
    pub async fn shutdown(mut self) -> Result<Summary> {
        let _ = self.stop.send(true);
        match self.task.take() {
            Some(task) => task
                .await
                .unwrap_or_else(|e| Err(Error::Config(format!("server task failed: {e}")))),
            None => Ok(Summary::default()),
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
    connections: Connections,
    mut stop: watch::Receiver<bool>,
) -> Result<Summary> {
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(connections);
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
                tokio::spawn(connections.clone().run(
                    stream,
                    peer,
                    proxy.clone(),
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
    proxy.flush().await?;
    // Connection tasks drop their handle on the proxy just after graceful shutdown reports them
    // done; wait (bounded) so the store is closed, and its lock released, before returning.
    for _ in 0..200 {
        if Arc::strong_count(&proxy) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(proxy.summary())
}

/// Which HTTP a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http2,
}

/// How accepted connections are served: the HTTP/1 and HTTP/2 settings, TLS, and the bound on
/// everything that happens before the first request head is read. The protocol is chosen before
/// hyper sees a connection (see `open`), so hyper's own per-protocol builders serve it: unlike
/// hyper-util's `auto`, they never sniff without a timeout, and HTTP/1's enforces an exact head
/// size limit.
struct Connections {
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
    tls: Option<TlsAcceptor>,
    header_read_timeout: Duration,
    /// The header-read timeout of HTTP/1 connections once they are open.
    head_timeout: Arc<HeadTimeout>,
}

impl Connections {
    fn new(header_read_timeout: Duration, tls: Option<TlsAcceptor>) -> Connections {
        let mut http1 = http1::Builder::new();
        http1
            // Kept by `head_timeout` instead: hyper's arms a timer for every request head.
            .header_read_timeout(None)
            // The buffer cap stops a head that never ends; the header-size cap also refuses a
            // complete head that arrived in one larger read.
            .max_buf_size(MAX_HEAD_BYTES)
            .max_header_size(MAX_HEAD_BYTES);
        let mut http2 = http2::Builder::new(TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            // HTTP/2 has no header-read timeout; PINGs at least drop a peer that stopped answering.
            .keep_alive_interval(header_read_timeout)
            .keep_alive_timeout(header_read_timeout);
        Connections {
            http1,
            http2,
            tls,
            header_read_timeout,
            head_timeout: HeadTimeout::start(header_read_timeout),
        }
    }

    /// Serves one accepted connection. Until it has shown which HTTP it speaks (and finished the
    /// TLS handshake), the header-read timeout and shutdown end it; after that, hyper's
    /// header-read timeout applies to each request head and graceful shutdown drains it.
    async fn run(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        proxy: Arc<Proxy>,
        watcher: Watcher,
        mut stop: watch::Receiver<bool>,
    ) {
        let opened = tokio::select! {
            opened = tokio::time::timeout(self.header_read_timeout, self.open(stream, peer)) => opened,
            _ = stop.changed() => return,
        };
        match opened {
            Ok(Some(Opened::Plain(protocol, tcp))) => {
                self.serve_http(protocol, tcp, peer, proxy, watcher).await;
            }
            Ok(Some(Opened::Tls(protocol, tls))) => {
                self.serve_http(protocol, *tls, peer, proxy, watcher).await;
            }
            Ok(None) => {}
            Err(_) => tracing::debug!(
                %peer,
                timeout_secs = self.header_read_timeout.as_secs_f64(),
                "connection closed: nothing usable received within the header-read timeout"
            ),
        }
    }

    /// The TLS handshake (when serving HTTPS) and the protocol: by ALPN over TLS, else from the
    /// first bytes. `None` when the peer closed or the handshake failed.
    async fn open(&self, stream: TcpStream, peer: SocketAddr) -> Option<Opened> {
        let Some(acceptor) = &self.tls else {
            let protocol = sniff(&stream).await?;
            return Some(Opened::Plain(protocol, stream));
        };
        match acceptor.accept(stream).await {
            Ok(tls) => {
                let protocol = match tls.get_ref().1.alpn_protocol() {
                    Some(b"h2") => Protocol::Http2,
                    _ => Protocol::Http1,
                };
                Some(Opened::Tls(protocol, Box::new(tls)))
            }
            Err(e) => {
                tracing::debug!(%peer, error = %e, "TLS handshake with a client failed");
                None
            }
        }
    }

    async fn serve_http<I>(
        &self,
        protocol: Protocol,
        io: I,
        peer: SocketAddr,
        proxy: Arc<Proxy>,
        watcher: Watcher,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let requested = Arc::new(AtomicBool::new(false));
        // Only HTTP/1 connections are closed by it; HTTP/2 has its own checks below.
        let watch = Arc::new(self.head_timeout.watch());
        let service = {
            let (requested, watch) = (requested.clone(), watch.clone());
            service_fn(move |request| {
                requested.store(true, Ordering::Relaxed);
                let served = watch.serving();
                let proxy = proxy.clone();
                async move {
                    let answer = proxy.handle(request, peer).await;
                    drop(served);
                    answer
                }
            })
        };
        let ended = match protocol {
            Protocol::Http1 => {
                let io = TokioIo::new(Progress::new(io, watch.clone()));
                tokio::select! {
                    ended = watcher.watch(self.http1.serve_connection(io, service)) => ended,
                    () = watch.expired() => {
                        tracing::debug!(%peer, "connection closed: no complete request head within the header-read timeout");
                        Ok(())
                    }
                }
            }
            Protocol::Http2 => {
                let io = TokioIo::new(io);
                // hyper's HTTP/2 server waits for the first request (over TLS, even for the
                // preface) without a timeout: apply the header-read timeout to it.
                let no_request = async {
                    tokio::time::sleep(self.header_read_timeout).await;
                    if requested.load(Ordering::Relaxed) {
                        std::future::pending::<()>().await;
                    }
                };
                tokio::select! {
                    ended = watcher.watch(self.http2.serve_connection(io, service)) => ended,
                    () = no_request => {
                        tracing::debug!(%peer, "HTTP/2 connection closed: no request within the header-read timeout");
                        Ok(())
                    }
                }
            }
        };
        if let Err(e) = ended {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
    }
}

/// A connection ready for hyper.
enum Opened {
    Plain(Protocol, TcpStream),
    Tls(Protocol, Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// Which HTTP a plain-TCP client speaks, from its first bytes (peeked, so hyper still reads
/// them): the HTTP/2 preface, or anything else (HTTP/1). `None` if it closes first. The caller
/// bounds the wait: hyper-util's `auto` does this sniffing without any timeout (and hyper's
/// header-read timeout starts only once HTTP/1 is chosen), so a client that connected and stayed
/// silent, or sent part of the preface, held its connection and task forever.
async fn sniff(stream: &TcpStream) -> Option<Protocol> {
    let mut buf = [0u8; H2_PREFACE.len()];
    loop {
        let n = stream.peek(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        if buf[..n] != H2_PREFACE[..n] {
            return Some(Protocol::Http1);
        }
        if n == H2_PREFACE.len() {
            return Some(Protocol::Http2);
        }
        // Part of the preface: peek returns the same bytes at once until more arrive.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
