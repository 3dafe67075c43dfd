//! Per-session listeners, for clients that can only be given an endpoint (the Huawei Cloud SDKs
//! keep only scheme, host and port of a configured endpoint): each is a loopback listener whose
//! every request belongs to one session, as if it carried `x-ims-vcr-session: NAME`. Started and
//! stopped through the control API; all are stopped before the main listener's shutdown flushes
//! the store.

use std::collections::HashMap;
use std::sync::{Mutex, Weak};

use super::*;
use crate::proxy::sessions::Listeners;

/// A running session listener.
struct Running {
    url: String,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The session listeners of one server.
pub(super) struct SessionListeners {
    /// Weak: the proxy owns this registry (through [`Listeners`]), and a strong handle would
    /// keep it alive forever. Upgraded for each listener's lifetime.
    proxy: Weak<Proxy>,
    connections: Arc<Connections>,
    scheme: &'static str,
    running: Mutex<HashMap<String, Running>>,
}

impl SessionListeners {
    pub(super) fn new(proxy: Weak<Proxy>, connections: Arc<Connections>, scheme: &'static str) -> Self {
        SessionListeners {
            proxy,
            connections,
            scheme,
            running: Mutex::new(HashMap::new()),
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        self.running
            .lock()
            .expect("no code panics while holding the session listeners lock")
    }

    /// Stops every session listener and waits for each to drain.
    pub(super) async fn stop_all(&self) {
        let all: Vec<Running> = self.running().drain().map(|(_, r)| r).collect();
        for running in &all {
            let _ = running.stop.send(true);
        }
        for running in all {
            let _ = running.task.await;
        }
    }
}

impl Listeners for SessionListeners {
    fn start(&self, session: &str) -> std::result::Result<String, String> {
        let mut running = self.running();
        if let Some(existing) = running.get(session) {
            return Ok(existing.url.clone());
        }
        let proxy = self
            .proxy
            .upgrade()
            .ok_or("the proxy is shutting down")?;
        // Bound synchronously (a loopback bind does not block) so the URL is known at once.
        let bound = std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .and_then(TcpListener::from_std)
            .map_err(|e| format!("cannot open a listener for session {session:?}: {e}"))?;
        let address = bound
            .local_addr()
            .map_err(|e| format!("cannot open a listener for session {session:?}: {e}"))?;
        let url = format!("{}://{address}", self.scheme);
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept_loop(
            bound,
            proxy,
            self.connections.clone(),
            Some(Arc::from(session)),
            stopped,
        ));
        tracing::info!(session, %url, "session listener started");
        running.insert(
            session.to_owned(),
            Running {
                url: url.clone(),
                stop,
                task,
            },
        );
        Ok(url)
    }

    fn stop(&self, session: &str) {
        if let Some(running) = self.running().remove(session) {
            let _ = running.stop.send(true);
            tracing::info!(session, "session listener stopped");
            // The task drains in-flight requests on its own; nobody needs to wait for it here.
            drop(running.task);
        }
    }
}

/// A session of a running [`ProxyServer`], for a Rust test: set [`Session::header`] on the
/// test's requests (or point its client at [`Session::listen`]), then [`Session::stop`] gives
/// the verdict, the way wiremock's `MockServer` verifies its expectations.
///
/// ```no_run
/// # async fn demo() -> ims_vcr::Result<()> {
/// let server = ims_vcr::ProxyServer::builder().replay().cassettes("cassettes").start().await?;
/// let session = server.session("images/get_one")?;
/// let (name, value) = session.header();
/// // ... the test sends its requests with `name: value` ...
/// let verdict = session.stop()?;
/// assert!(verdict.ok, "missed: {:?}", verdict.misses);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Session {
    pub(super) name: String,
    pub(super) proxy: Weak<Proxy>,
}

impl Session {
    fn proxy(&self) -> Result<Arc<Proxy>> {
        self.proxy
            .upgrade()
            .ok_or_else(|| Error::Config(format!("session {}: the proxy has shut down", self.name)))
    }

    /// The session's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The header that puts a request in this session: `("x-ims-vcr-session", name)`.
    pub fn header(&self) -> (&'static str, &str) {
        (crate::model::session::SESSION_HEADER, &self.name)
    }

    /// Starts the session's own loopback listener (once; later calls return the same URL):
    /// every request to it is in this session, for clients that take only an endpoint.
    pub fn listen(&self) -> Result<String> {
        self.proxy()?.sessions.start(&self.name).map_err(Error::Config)
    }

    /// Rewinds the session's playback cursors; returns how many recordings were rewound. On a
    /// store whose replay pack is being rewritten behind serving, this blocks until it is (it
    /// reads every recording): at most the rewrite's time, about 1.5 s for 100,000 recordings.
    pub fn reset(&self) -> Result<usize> {
        let proxy = self.proxy()?;
        Ok(proxy.sessions.reset(&self.name, &proxy.tapes))
    }

    /// Ends the session: closes its listener, rewinds its cursors, and returns its verdict. It
    /// may block as [`Session::reset`] says.
    pub fn stop(self) -> Result<crate::proxy::sessions::SessionVerdict> {
        Ok(self.proxy()?.stop_session(&self.name))
    }
}
