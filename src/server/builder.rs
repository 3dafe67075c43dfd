//! The composition root: [`ProxyServerBuilder`] collects what a proxy is started with, then
//! opens the store or reads the cassettes, connects the upstream, assembles the proxy and binds
//! the listener.

use super::*;
use crate::storage::pack::Pack;
use crate::storage::snapshot::PACK_FILE;

/// Where replay reads recordings from.
#[derive(Clone, Debug)]
pub(super) enum Source {
    Store(PathBuf),
    Cassettes(PathBuf),
}

/// Assembles a [`ProxyServer`]. Start from [`ProxyServer::builder`].
#[derive(Debug)]
pub struct ProxyServerBuilder {
    mode: Mode,
    listen: SocketAddr,
    source: Source,
    /// Upstreams by path prefix (`record(..)` and friends set `/`).
    routes: Vec<(String, UpstreamConfig)>,
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
    fail_on_unused: bool,
}

impl ProxyServerBuilder {
    /// Replay of `cassettes/` on a free loopback port; see [`ProxyServer::builder`].
    pub(super) fn new() -> Self {
        ProxyServerBuilder {
            mode: Mode::Replay,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            source: Source::Cassettes(PathBuf::from("cassettes")),
            routes: Vec::new(),
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
            fail_on_unused: false,
        }
    }

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

    fn forwarding(self, mode: Mode, upstream: UpstreamConfig) -> Self {
        self.mode(mode).route("/", upstream)
    }

    /// Sets the mode. A forwarding mode (record, auto, passthrough) needs at least one route:
    /// [`Self::route`], or the upstream of [`Self::record`], [`Self::auto`] or
    /// [`Self::passthrough`] (which set the mode and the route `/`).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Forwards requests whose path lies under `prefix` (whole segments: `/v3` takes
    /// `/v3/auth/tokens`, not `/v30`) to `upstream`; the longest matching prefix wins, and a
    /// request that matches no route is answered 502 naming the routes. The path is forwarded
    /// as it came, after the upstream URL's own path. A prefix given again replaces its
    /// upstream; `/` is the route of [`Self::record`]'s upstream. Every route's origin is
    /// pointed at the proxy in what is served (service catalogs included), so a client's next
    /// call comes back to the proxy.
    pub fn route(mut self, prefix: impl Into<String>, upstream: UpstreamConfig) -> Self {
        let prefix = prefix.into();
        let same = |p: &str| {
            crate::net::routes::normalize_prefix(p).ok()
                == crate::net::routes::normalize_prefix(&prefix).ok()
        };
        self.routes.retain(|(p, _)| !same(p));
        self.routes.push((prefix, upstream));
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

    /// Use the sled store in `dir`: record and auto write it (creating it when `dir` is missing
    /// or empty), replay reads it (and refuses a `dir` that is not a store).
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
    /// stays live). See [`RedactionPolicy`] for what is redacted.
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
    /// survives a power loss. Off by default: an answer is then written to the store's log
    /// before it is served, which survives a `kill -9` of the process (see `store/commit.rs`).
    pub fn fsync(mut self, fsync: bool) -> Self {
        self.fsync = fsync;
        self
    }

    /// A session's verdict (`POST /__ims-vcr/sessions/NAME/stop`, the summary) fails when the
    /// session left recordings unused, not only when it missed (`--fail-on-unused`).
    pub fn fail_on_unused(mut self, fail: bool) -> Self {
        self.fail_on_unused = fail;
        self
    }

    /// Serve HTTPS (HTTP/2 and HTTP/1.1 by ALPN) with the PEM certificate chain in `cert` and the
    /// PEM private key in `key`; [`ProxyServer::uri`] then starts with `https://`.
    pub fn tls(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls = Some((cert.into(), key.into()));
        self
    }

    /// Checks every setting, binds, loads recordings or opens the store, and returns once the
    /// port accepts. Everything that can be refused (the listener's certificate, the upstream
    /// URL and CA file, the port) is tried before the store is opened, so a failed start leaves
    /// no store behind.
    pub async fn start(self) -> Result<ProxyServer> {
        let tls = match &self.tls {
            Some((cert, key)) => Some(crate::net::tls::acceptor(cert, key)?),
            None => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        // The routes are connected (URLs parsed, CA files read) before anything is created.
        let routes = if self.mode.forwards() {
            let routes = Routes::new(&self.routes)?;
            tracing::info!(routes = %routes.describe(), "forwarding");
            Some(routes)
        } else {
            None
        };
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
        let proxy = self.assemble(scheme, routes).await?;
        let (stop, stopped) = watch::channel(false);
        let connections = Arc::new(Connections::new(self.header_read_timeout, tls));
        let proxy = Arc::new(proxy);
        let sessions = Arc::new(SessionListeners::new(
            Arc::downgrade(&proxy),
            connections.clone(),
            scheme,
        ));
        proxy.sessions.set_listeners(sessions.clone());
        let weak = Arc::downgrade(&proxy);
        let task = tokio::spawn(serve(listener, proxy, connections, sessions, stopped));
        Ok(ProxyServer {
            address,
            scheme,
            stop,
            task: Some(task),
            proxy: weak,
        })
    }

    fn key(&self) -> PseudonymKey {
        self.redaction_key
            .clone()
            .unwrap_or_else(|| PseudonymKey::from_lookup(|n| std::env::var(n).ok()).0)
    }

    /// Opens the store or reads the cassettes, and puts the proxy together (`upstream` is set
    /// in the forwarding modes).
    async fn assemble(&self, scheme: &'static str, routes: Option<Routes>) -> Result<Proxy> {
        // Opening a store waits for its lock on this thread, which with one CPU is the runtime's
        // only one: a task of this process still letting go of the store (`run --verify-replay`
        // after its record session) gets to finish first.
        if self.mode != Mode::Passthrough
            && let Source::Store(dir) = &self.source
        {
            crate::storage::closed::until_unlocked(dir).await?;
        }
        let (mut tapes, recorder, rules) = match self.mode {
            Mode::Replay => match &self.source {
                // The store is opened only to check (or write) its replay pack, then closed, so
                // other replays, export or record can use it meanwhile.
                Source::Store(dir) => {
                    let (tapes, rules) = self.replay_tapes(dir)?;
                    (tapes, None, rules)
                }
                Source::Cassettes(dir) => {
                    let (recordings, rules) = cassette::read_dir(dir)?;
                    let tapes = Tapes::new(&recordings, self.sequence).map_err(Error::Recordings)?;
                    (tapes, None, rules)
                }
            },
            Mode::Passthrough => (
                Tapes::new(&[], self.sequence).map_err(Error::Recordings)?,
                Some(self.recorder(routes, None)),
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
                let store = Arc::new(store);
                let tapes = match store.current_pack()? {
                    Some(pack) => Tapes::from_pack(pack, self.sequence),
                    // A new store: nothing to index (its pack is written as the session ends).
                    None if store.is_empty() => Tapes::new(&[], self.sequence).map_err(Error::Recordings)?,
                    // Served at once, from the store, while its pack is rebuilt behind
                    // (`replay::indexing`); the store stays open for the recorder.
                    None => {
                        tracing::info!(store = %dir.display(), "replay pack out of date: serving from the store while it is rebuilt");
                        Tapes::indexing_writer(store.clone(), rules.clone(), self.sequence, self.key())
                    }
                };
                (tapes, Some(self.recorder(routes, Some(store))), rules)
            }
        };
        if let Some(warning) = tapes.use_redaction_key(self.key()) {
            tracing::warn!("{warning}");
        }
        match (self.mode, &self.source) {
            (Mode::Passthrough, _) => {
                tracing::info!(mode = "passthrough", "forwarding every request, storing nothing");
            }
            // The index, and its count, are still being built behind serving; they are logged
            // when done.
            (_, Source::Store(_)) if tapes.is_indexing() => {}
            // As an empty cassette folder: said, not left to the first test's miss.
            (Mode::Replay, Source::Store(dir)) if tapes.is_empty() => {
                tracing::warn!(mode = "replay", store = %dir.display(), "the store holds no recordings: every request is a miss");
            }
            (_, Source::Store(dir)) => {
                tracing::info!(mode = self.mode.as_str(), requests = tapes.len(), store = %dir.display(), "recordings loaded");
            }
            (_, Source::Cassettes(dir)) if tapes.is_empty() && crate::storage::folder::is_store(dir) => {
                tracing::warn!(mode = self.mode.as_str(), cassettes = %dir.display(), "no cassette (*.json) in the folder, which is an ims-vcr store: replay it with --store {}; every request is a miss", dir.display());
            }
            (_, Source::Cassettes(dir)) if tapes.is_empty() => {
                tracing::warn!(mode = self.mode.as_str(), cassettes = %dir.display(), "no cassette (*.json) in the folder: every request is a miss");
            }
            (_, Source::Cassettes(dir)) => {
                tracing::info!(mode = self.mode.as_str(), requests = tapes.len(), cassettes = %dir.display(), "recordings loaded");
            }
        }
        let settings = Settings {
            max_body: self.max_body,
            body_read_timeout: self.header_read_timeout,
            realism: Realism::new(self.latency, self.faults.clone(), self.seed),
            control_token: self.control_token.clone(),
            scheme,
            fail_on_unused: self.fail_on_unused,
            loopback_listener: self.listen.ip().is_loopback(),
            access_keys: self.key(),
        };
        Ok(Proxy::new(self.mode, rules, tapes, recorder, settings))
    }

    /// What replay of the store at `dir` serves, and its rules. A store closed cleanly at the
    /// write its pack was made at, and not opened since, is served from the pack without opening
    /// sled (`storage::closed`). Otherwise the pack is read, and the tapes made from it, on a
    /// thread of their own while sled starts (it zeroes its free segments and reads its
    /// snapshot); on a large store the two take about as long. Once the store is open (and
    /// locked), the tapes are kept if the pack describes it; otherwise replay serves from the
    /// store at once while the pack is written (or opened again: another process may have
    /// replaced it) behind, as `replay::indexing` says.
    fn replay_tapes(&self, dir: &std::path::Path) -> Result<(Tapes, MatchRules)> {
        if let Some((rules, pack)) = crate::storage::closed::pack_of_closed_store(dir) {
            tracing::debug!(store = %dir.display(), "serving the replay pack of a cleanly closed store");
            return Ok((Tapes::from_pack(pack, self.sequence), rules));
        }
        let pack = dir.join(PACK_FILE);
        let (store, early) = std::thread::scope(|scope| {
            let early = scope.spawn(|| {
                let (claim, pack) = Pack::read(&pack).ok()?.into_parts();
                Some((claim, Tapes::from_pack(pack, self.sequence)))
            });
            let store = Store::open_existing(dir);
            let early = early.join();
            (store, early.unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
        });
        let store = store?;
        let rules = store.rules()?;
        let tapes = match early {
            Some((claim, tapes)) if store.is_described_by(&claim, &rules) => tapes,
            // Served at once, from the store, while its pack is rebuilt behind
            // (`replay::indexing`), which closes the store when done.
            _ => {
                tracing::info!(store = %dir.display(), "replay pack out of date: serving from the store while it is rebuilt");
                let tapes = Tapes::indexing(store, rules.clone(), self.sequence, self.key());
                return Ok((tapes, rules));
            }
        };
        // Closed behind the first answer: sled's close (a flush, its threads joined) is not on
        // the way to serving. Another process waiting for the store's lock waits those few
        // milliseconds either way.
        let closing = std::thread::Builder::new().name("ims-vcr-close-store".into());
        if let Err(e) = closing.spawn(move || drop(store)) {
            tracing::debug!(error = %e, "closing the store on this thread");
        }
        Ok((tapes, rules))
    }

    fn recorder(&self, routes: Option<Routes>, store: Option<Arc<Store>>) -> Recorder {
        let routes = routes.expect("start() connects the routes of a forwarding mode");
        // Every route re-signs with its own credentials (the CLI gives them all the same).
        let mut credentials: Vec<&crate::net::signer::Credentials> = Vec::new();
        for (_, config) in &self.routes {
            if let Some(c) = &config.credentials
                && !credentials.iter().any(|k| k.ak == c.ak && k.sk == c.sk)
            {
                credentials.push(c);
            }
        }
        let secrets = credentials.into_iter().flat_map(|c| {
            let mut values = vec![("AK", c.ak.clone()), ("SK", c.sk.clone())];
            values.extend(c.security_token.clone().map(|t| ("security token", t)));
            values.into_iter().map(|(what, value)| Needle {
                label: format!("the proxy's {what}"),
                value,
            })
        });
        Recorder {
            routes,
            store,
            redactor: self
                .redact
                .clone()
                .map(|policy| Redactor::new(policy, self.key())),
            secrets: secrets.collect(),
            warned_refusals: Default::default(),
            pseudonyms: self.key(),
            issued: Default::default(),
            swept: Default::default(),
            catalog_warnings: Default::default(),
        }
    }
}
