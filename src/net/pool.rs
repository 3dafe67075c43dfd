//! The upstream's keep-alive HTTP/1.1 connections, one pool per upstream: an idle connection is
//! taken, used for one exchange and given back once its answer has been read, or a new one is
//! opened through the same connector (DNS, connect timeout, `TCP_NODELAY`, rustls) that
//! hyper-util's legacy client used. Unlike that client it hashes no pool key, spawns no task per
//! request to return a connection, and locks only to push or pop an idle one. Errors read as that
//! client's did (`client error (Connect): …`), and a request that a reused connection could not
//! take (it closed meanwhile) is sent again on another one, as that client does. One that such a
//! connection took but closed before answering is [`PoolError::Unanswered`]: the upstream sends
//! it again when its method allows.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, Response, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tower_service::Service;

type Sender = SendRequest<Full<Bytes>>;

/// One upstream connection: where requests are sent, and whether a write found its peer gone
/// (an answer read after that ends the connection: see `net/early_answer.rs`).
struct Conn {
    sender: Sender,
    peer_gone: Arc<AtomicBool>,
}
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Idle connections of one upstream, the most recently used last.
pub(crate) struct Pool {
    connector: HttpsConnector<HttpConnector>,
    /// `scheme://authority/`: what the connector is asked to connect to.
    destination: Uri,
    idle: Mutex<VecDeque<(Conn, Instant)>>,
    /// An idle connection unused this long is closed rather than used.
    idle_timeout: Duration,
}

/// Why an exchange got no answer; displayed as hyper-util's legacy client displayed it.
#[derive(Debug)]
pub(crate) enum PoolError {
    /// Opening a connection failed (DNS, TCP, TLS).
    Connect(BoxError),
    /// A new connection closed before it took the request.
    Canceled(hyper::Error),
    /// Sending the request or reading the answer's head failed.
    SendRequest(hyper::Error),
    /// A reused connection took the request and closed without a byte of answer (the
    /// upstream's keep-alive timeout ran out as the request went).
    Unanswered(hyper::Error),
}

impl PoolError {
    /// True when no connection could be opened.
    pub(crate) fn is_connect(&self) -> bool {
        matches!(self, PoolError::Connect(_))
    }
}

impl std::fmt::Display for PoolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            PoolError::Connect(_) => "Connect",
            PoolError::Canceled(_) => "Canceled",
            PoolError::SendRequest(_) | PoolError::Unanswered(_) => "SendRequest",
        };
        write!(f, "client error ({kind})")
    }
}

impl std::error::Error for PoolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PoolError::Connect(e) => Some(e.as_ref()),
            PoolError::Canceled(e) | PoolError::SendRequest(e) | PoolError::Unanswered(e) => Some(e),
        }
    }
}

/// A connection lent for one exchange: [`Lent::release`] gives it back once the answer has
/// been read whole; dropped instead, the connection closes.
pub(crate) struct Lent<'p> {
    pool: &'p Pool,
    conn: Conn,
}

impl Lent<'_> {
    /// Returns the connection to the pool, unless it closed or lost its peer while the request
    /// was sent (its answer keeps it alive for hyper, which the next request would find dead).
    pub(crate) fn release(self) {
        if !self.conn.sender.is_closed() && !self.conn.peer_gone.load(Ordering::Relaxed) {
            self.pool.idle().push_back((self.conn, Instant::now()));
        }
    }
}

impl Pool {
    pub(crate) fn new(
        connector: HttpsConnector<HttpConnector>,
        destination: Uri,
        idle_timeout: Duration,
    ) -> Pool {
        Pool {
            connector,
            destination,
            idle: Mutex::new(VecDeque::new()),
            idle_timeout,
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, VecDeque<(Conn, Instant)>> {
        self.idle
            .lock()
            .expect("no code panics while holding the idle connections lock")
    }

    /// The most recently used idle connection that is still open; older ones past the idle
    /// timeout are closed.
    fn take_idle(&self) -> Option<Conn> {
        let now = Instant::now();
        let mut idle = self.idle();
        while idle
            .front()
            .is_some_and(|(_, since)| now.duration_since(*since) > self.idle_timeout)
        {
            idle.pop_front();
        }
        while let Some((conn, _)) = idle.pop_back() {
            if !conn.sender.is_closed() {
                return Some(conn);
            }
        }
        None
    }

    /// Sends `request` (its URI in origin form, `Host` set) on an idle connection or a new
    /// one; the answer's head, and the connection to give back once its body is read.
    pub(crate) async fn send(
        &self,
        mut request: Request<Full<Bytes>>,
    ) -> Result<(Response<Incoming>, Lent<'_>), PoolError> {
        loop {
            let (mut conn, reused) = match self.take_idle() {
                Some(conn) => (conn, true),
                // Boxed: opening a connection is rare, and its future would size every send's.
                None => (Box::pin(self.connect()).await?, false),
            };
            if reused && conn.sender.ready().await.is_err() {
                continue; // it closed while idle
            }
            match conn.sender.try_send_request(request).await {
                Ok(response) => {
                    return Ok((response, Lent { pool: self, conn }));
                }
                Err(mut e) => match e.take_message() {
                    // Never sent: a reused connection closed meanwhile; try another.
                    Some(unsent) if reused => request = unsent,
                    Some(_) => return Err(PoolError::Canceled(e.into_error())),
                    None => {
                        let error = e.into_error();
                        // Sent, and the connection closed with no answer: whether to send it
                        // again is the caller's to say (it knows the method, and can build
                        // the request again).
                        return Err(match reused && error.is_incomplete_message() {
                            true => PoolError::Unanswered(error),
                            false => PoolError::SendRequest(error),
                        });
                    }
                },
            }
        }
    }

    /// A new connection, ready for a request; its connection task runs on the runtime.
    async fn connect(&self) -> Result<Conn, PoolError> {
        let mut connector = self.connector.clone();
        std::future::poll_fn(|cx| connector.poll_ready(cx))
            .await
            .map_err(PoolError::Connect)?;
        let io = connector
            .call(self.destination.clone())
            .await
            .map_err(PoolError::Connect)?;
        let peer_gone = Arc::new(AtomicBool::new(false));
        let io = super::early_answer::EarlyAnswer::new(io, peer_gone.clone());
        let (mut sender, connection) = http1::handshake(io)
            .await
            .map_err(PoolError::SendRequest)?;
        let (failed, failure) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "upstream connection ended with an error");
                let _ = failed.send(e);
            }
        });
        match sender.ready().await {
            Ok(()) => Ok(Conn { sender, peer_gone }),
            // The connection's own error says more than the closed channel.
            Err(e) if e.is_closed() => Err(PoolError::SendRequest(failure.await.unwrap_or(e))),
            Err(e) => Err(PoolError::SendRequest(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use bytes::Bytes;
    use hyper::header::HeaderMap;
    use hyper::{Method, StatusCode};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use crate::net::upstream::{Upstream, UpstreamConfig};

    /// A raw HTTP/1.1 server answering every request head with `body`, plus `extra` header lines;
    /// returns its URL and how many connections it accepted.
    async fn server(extra: &'static str) -> (String, Arc<AtomicUsize>) {
        serve(extra, false).await
    }

    /// [`server`], closing each connection after its first answer when `hang_up` (without
    /// saying so in the answer, as an upstream's idle timeout does).
    async fn serve(extra: &'static str, hang_up: bool) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    loop {
                        let Ok(n) = stream.read(&mut chunk).await else { return };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            buf.drain(..end + 4);
                            let answer = format!("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n{extra}\r\nok");
                            if stream.write_all(answer.as_bytes()).await.is_err() || hang_up {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (url, accepted)
    }

    async fn get(upstream: &Upstream, path: &str) -> Result<Bytes, String> {
        upstream
            .forward(&Method::GET, path, &HeaderMap::new(), Bytes::new())
            .await
            .map(|live| {
                assert_eq!(live.status, StatusCode::OK);
                live.body
            })
            .map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn one_keep_alive_connection_serves_requests_one_after_another() {
        let (url, accepted) = server("").await;
        let upstream = Upstream::new(&UpstreamConfig::new(url)).unwrap();
        for i in 0..5 {
            assert_eq!(get(&upstream, &format!("/v2/images/{i}")).await.unwrap(), "ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_connection_the_upstream_closes_is_not_used_again() {
        let (url, accepted) = server("connection: close\r\n").await;
        let upstream = Upstream::new(&UpstreamConfig::new(url)).unwrap();
        for i in 0..3 {
            assert_eq!(get(&upstream, &format!("/v2/images/{i}")).await.unwrap(), "ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_connection_closed_while_idle_is_replaced_and_the_request_answered() {
        let (url, accepted) = serve("", true).await;
        let upstream = Upstream::new(&UpstreamConfig::new(url)).unwrap();
        for i in 0..3 {
            assert_eq!(get(&upstream, &format!("/v2/images/{i}")).await.unwrap(), "ok");
            // The close reaches the idle connection before the next request takes one.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn concurrent_exchanges_each_take_a_connection_and_give_it_back() {
        let (url, accepted) = server("").await;
        let upstream = Arc::new(Upstream::new(&UpstreamConfig::new(url)).unwrap());
        let exchanges: Vec<_> = (0..8)
            .map(|i| {
                let upstream = upstream.clone();
                tokio::spawn(async move { get(&upstream, &format!("/v2/images/{i}")).await })
            })
            .collect();
        for exchange in exchanges {
            assert_eq!(exchange.await.unwrap().unwrap(), "ok");
        }
        let opened = accepted.load(Ordering::SeqCst);
        assert!((1..=8).contains(&opened), "{opened} connections");
        // Given back, they serve later requests without new ones.
        for i in 0..8 {
            assert_eq!(get(&upstream, &format!("/v2/images/again-{i}")).await.unwrap(), "ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), opened);
    }

    #[tokio::test]
    async fn a_refused_connection_reads_as_the_legacy_client_said_it() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let upstream = Upstream::new(&UpstreamConfig::new(url.clone())).unwrap();
        let e = get(&upstream, "/v2/images/x").await.unwrap_err();
        let expected = format!("cannot connect to upstream {url}/v2/images/x: client error (Connect): tcp connect error");
        assert!(e.starts_with(&expected), "{e}");
    }
}
