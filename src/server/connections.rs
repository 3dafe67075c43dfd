//! Accepted connections: TLS, choosing HTTP/1 or HTTP/2 before hyper sees the connection
//! (bounded sniffing), the HTTP/1 head timeout, and serving each request through the proxy.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::*;
use crate::net::head_timeout::stall_limit;
use crate::proxy::{AtOnce, ResetConnection};

/// Which HTTP a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Protocol {
    Http1,
    Http2,
}

/// The two ends of an accepted connection: the client's address, and the listener's it reached
/// (`None` when the system could not say).
#[derive(Clone, Copy)]
pub(super) struct Ends {
    peer: SocketAddr,
    local: Option<SocketAddr>,
    /// The connection's TCP socket (see [`crate::net::head_timeout::Progress`]).
    socket: Option<std::os::fd::RawFd>,
}

/// How accepted connections are served: the HTTP/1 and HTTP/2 settings, TLS, and the bound on
/// everything that happens before the first request head is read. The protocol is chosen before
/// hyper sees a connection (see `open`), so hyper's own per-protocol builders serve it: unlike
/// hyper-util's `auto`, they never sniff without a timeout, and HTTP/1's enforces an exact head
/// size limit.
pub(super) struct Connections {
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
    tls: Option<TlsAcceptor>,
    header_read_timeout: Duration,
    /// The header-read timeout of HTTP/1 connections once they are open.
    head_timeout: Arc<HeadTimeout>,
    /// Set once a client refused the certificate (warned about once).
    warned_certificate: std::sync::atomic::AtomicBool,
}

/// Whether a failed handshake is the client refusing the proxy's certificate (its alert;
/// rustls clients say `decrypt_error` for a chain whose signature fails, a CA of the same name
/// that is not the one that signed it).
fn refuses_certificate(e: &std::io::Error) -> bool {
    use rustls::AlertDescription as A;
    let alert = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>());
    matches!(
        alert,
        Some(rustls::Error::AlertReceived(
            A::BadCertificate
                | A::CertificateExpired
                | A::CertificateRevoked
                | A::CertificateUnknown
                | A::UnknownCA
                | A::UnsupportedCertificate
                | A::DecryptError
        ))
    )
}

/// TCP keep-alive of client connections: the first probe after a minute of silence, then every
/// 10 s (`TCP_USER_TIMEOUT` then says when an unanswered peer is dropped).
const KEEPALIVE: socket2::TcpKeepalive = socket2::TcpKeepalive::new()
    .with_time(Duration::from_secs(60))
    .with_interval(Duration::from_secs(10))
    .with_retries(6);

impl Connections {
    pub(super) fn new(header_read_timeout: Duration, tls: Option<TlsAcceptor>) -> Connections {
        let mut http1 = http1::Builder::new();
        http1
            // Kept by `head_timeout` instead: hyper's arms a timer for every request head.
            .header_read_timeout(None)
            // The buffer cap stops a head that never ends; the header-size cap also refuses a
            // complete head that arrived in one larger read.
            .max_buf_size(MAX_HEAD_BYTES)
            .max_header_size(MAX_HEAD_BYTES)
            // A client may shut its side down once its request is sent (`nc -N`, a socket
            // `shutdown(SHUT_WR)`): it still gets its answer. hyper's default drops the request
            // being served at that end of input, and in record mode the upstream's answer with
            // it, unrecorded.
            .half_close(true);
        let mut http2 = http2::Builder::new(TokioExecutor::new());
        // No PINGs: a client reading a long answer slowly answers one only once it has read what
        // was queued before it (curl allows 10 MB and more in flight), so a PING's timeout cut
        // readers that were taking every byte. The socket's own timeouts stand in
        // ([`Connections::tune`]).
        http2
            .timer(TokioTimer::new())
            // The same cap on a request's headers as HTTP/1's (hyper's HTTP/2 default is 16 KiB,
            // which a large Keystone token and a few cookies can pass).
            .max_header_list_size(MAX_HEAD_BYTES as u32);
        Connections {
            http1,
            http2,
            tls,
            header_read_timeout,
            head_timeout: HeadTimeout::start(header_read_timeout),
            warned_certificate: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Sets an accepted connection's socket up: no Nagle delay; a peer that is gone (its
    /// machine off the network) dropped once idle, by TCP keep-alive probes ([`KEEPALIVE`]);
    /// and one that takes nothing of what was sent to it for the stall limit (a client that
    /// stopped reading, a peer gone mid-answer) dropped by `TCP_USER_TIMEOUT`, as HTTP/1's
    /// sweeper drops it ([`stall_limit`]), HTTP/2 having no other check.
    pub(super) fn tune(&self, stream: &TcpStream) {
        let _ = stream.set_nodelay(true);
        let socket = socket2::SockRef::from(stream);
        let _ = socket.set_tcp_keepalive(&KEEPALIVE);
        let _ = socket.set_tcp_user_timeout(Some(stall_limit(self.header_read_timeout)));
    }

    /// Serves one accepted connection. Until it has shown which HTTP it speaks (and finished the
    /// TLS handshake), the header-read timeout and shutdown end it; after that, hyper's
    /// header-read timeout applies to each request head and graceful shutdown drains it.
    pub(super) async fn run(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        proxy: Arc<Proxy>,
        session: Option<Arc<str>>,
        watcher: Watcher,
        mut stop: watch::Receiver<bool>,
    ) {
        // `biased`: polled in order, without drawing a random number per poll (either order is
        // correct: both branches end the wait, and neither is ready on every poll).
        let local = stream.local_addr().ok();
        let socket = Some(std::os::fd::AsRawFd::as_raw_fd(&stream));
        let opened = tokio::select! {
            biased;
            opened = tokio::time::timeout(self.header_read_timeout, self.open(stream, peer)) => opened,
            _ = stop.changed() => return,
        };
        match opened {
            Ok(Some(Opened::Plain(protocol, tcp))) => {
                self.serve_http(protocol, tcp, Ends { peer, local, socket }, proxy, session, watcher)
                    .await;
            }
            Ok(Some(Opened::Tls(protocol, tls))) => {
                self.serve_http(protocol, *tls, Ends { peer, local, socket }, proxy, session, watcher)
                    .await;
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
    pub(super) async fn open(&self, stream: TcpStream, peer: SocketAddr) -> Option<Opened> {
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
                // A client refusing the proxy's own certificate (expired, another host name,
                // a CA it does not trust) is a set-up problem every client will hit: said once
                // at the default level, where a scanner's broken handshakes stay at debug.
                if refuses_certificate(&e) && !self.warned_certificate.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        %peer,
                        error = %e,
                        "a client refused the --tls-cert certificate: check that it is valid today, \
                         names the host the clients connect to (127.0.0.1, localhost) and is signed \
                         by a CA they trust (said once)"
                    );
                }
                None
            }
        }
    }

    pub(super) async fn serve_http<I>(
        &self,
        protocol: Protocol,
        io: I,
        Ends { peer, local, socket }: Ends,
        proxy: Arc<Proxy>,
        session: Option<Arc<str>>,
        watcher: Watcher,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let requested = Arc::new(AtomicBool::new(false));
        // Only HTTP/1 connections are closed by it; HTTP/2 has its own checks below.
        let watch = Arc::new(self.head_timeout.watch());
        let service = {
            let (requested, watch) = (requested.clone(), watch.clone());
            // A session listener's requests are in its session whatever they carry.
            let session = session.and_then(|s| hyper::header::HeaderValue::from_str(&s).ok());
            service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                requested.store(true, Ordering::Relaxed);
                // What a client without a usable `Host` reached (none, an empty one, one that is
                // not `host[:port]`, as an HTTP/1.0 client or a hand-made request sends; an
                // HTTP/2 one without `:authority`, or with one, or an absolute-form target, that
                // is not `host[:port]`): the links served to it then point at this listener,
                // never at the upstream. A `Host` that is there but unusable is kept
                // as sent (the browser guard reads every `Host`); the listener's address rides
                // beside it. `Host` is looked up once, for that and for its count: a request
                // with more than one is refused by `handle` (RFC 9112, 3.2), never answered at
                // once, and its `Host` headers are left as sent (a fallback would replace them
                // all with one).
                let (fallback, one_host) = {
                    let mut hosts = request.headers().get_all(hyper::header::HOST).iter();
                    let first = hosts.next();
                    let one_host = hosts.next().is_none();
                    let fallback = match (request.uri().authority(), local, first) {
                        _ if !one_host => None,
                        (_, None, _) => None,
                        // An absolute-form target's or HTTP/2's `:authority` names the host
                        // instead of `Host`, and is held to the same test (user information
                        // aside, which links never repeat).
                        (Some(authority), Some(_), _) if usable_authority(authority) => None,
                        (Some(_), Some(local), _) => Some(Fallback::BesideHost(local)),
                        (None, Some(_), Some(host)) if usable_host(host.as_bytes()) => None,
                        (None, Some(local), Some(host)) if !host.as_bytes().trim_ascii().is_empty() => {
                            Some(Fallback::BesideHost(local))
                        }
                        (None, Some(local), _) => Some(Fallback::AsHost(local)),
                    };
                    (fallback, one_host)
                };
                match fallback {
                    None => {}
                    Some(Fallback::BesideHost(local)) => {
                        request.extensions_mut().insert(crate::proxy::ReachedAt(local));
                    }
                    Some(Fallback::AsHost(local)) => {
                        if let Ok(local) = hyper::header::HeaderValue::from_str(&local.to_string()) {
                            request.headers_mut().insert(hyper::header::HOST, local);
                        }
                    }
                }
                if let Some(session) = &session {
                    request
                        .headers_mut()
                        .insert(crate::model::session::SESSION_HEADER, session.clone());
                }
                let head = request.method() == hyper::Method::HEAD;
                let for_method = move |answer: Response| {
                    let answer = match (head, bodiless(&answer)) {
                        (_, true) => with_no_content(answer),
                        (true, false) => without_body(answer),
                        (false, false) => answer,
                    };
                    with_a_reason(answer)
                };
                // A replayed request is answered here, and hyper gets the answer, not a future
                // to move and poll (`proxy::at_once`). Marked as being served first, as every
                // request is, so the head timeout never cuts one being answered.
                watch.mark_serving();
                let at_once = match one_host {
                    true => proxy.answer_at_once(request),
                    false => AtOnce::Declined(request),
                };
                let request = match at_once {
                    AtOnce::Answered(answer) => {
                        watch.answered();
                        return Answering::Ready(std::future::ready(Ok(for_method(answer))));
                    }
                    AtOnce::Later(later) => {
                        let serving = watch.serving();
                        return Answering::Waiting(Box::pin(async move {
                            let answer = later.await;
                            drop(serving);
                            Ok(for_method(answer))
                        }));
                    }
                    AtOnce::Declined(request) => request,
                };
                let serving = watch.serving();
                let proxy = proxy.clone();
                // Boxed: the general path's future is large, and hyper moves what it gets.
                Answering::Waiting(Box::pin(async move {
                    let answer = proxy.handle(request, peer).await;
                    drop(serving);
                    answer.map(for_method)
                }))
            })
        };
        let ended = match protocol {
            Protocol::Http1 => {
                let io = TokioIo::new(Progress::new(io, watch.clone(), socket));
                // `biased` (see `run`): the connection first, as it is what woke the task on
                // almost every poll.
                tokio::select! {
                    biased;
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
                    biased;
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

/// Whether a `Host` value names a host the links served to the client can point at:
/// `host[:port]` (RFC 9110, 7.2; RFC 3986's `reg-name`, an IPv4 address or a bracketed IPv6
/// one, and a port of digits), without user information. A byte scan, as it runs for every
/// request: parsing it as a URI authority cost a twentieth of replay's work per request.
fn usable_host(host: &[u8]) -> bool {
    let host = host.trim_ascii();
    if host.first() == Some(&b'[') {
        return usable_bracketed_host(host);
    }
    // A name (or an IPv4 address), then at most one colon and the port (a second colon is
    // not a digit), in one pass: the name ends at its first byte that is not `reg-name`.
    let name = host.iter().take_while(|&&b| REG_NAME[usize::from(b)]).count();
    name > 0
        && match host.get(name) {
            None => true,
            Some(b':') => usable_port(&host[name + 1..]),
            Some(_) => false,
        }
}

/// [`usable_host`] for the authority of a request's target (absolute-form, or HTTP/2's
/// `:authority`), without its user information.
fn usable_authority(authority: &hyper::http::uri::Authority) -> bool {
    let host_port = match authority.as_str().rsplit_once('@') {
        Some((_, host_port)) => host_port,
        None => authority.as_str(),
    };
    usable_host(host_port.as_bytes())
}

/// [`usable_host`] for a bracketed IPv6 literal (`[::1]:80`): its port's colon is the last one
/// outside the brackets.
fn usable_bracketed_host(host: &[u8]) -> bool {
    let (name, port) = match host.iter().rposition(|&b| b == b':') {
        Some(at) if !host[at..].contains(&b']') => (&host[..at], Some(&host[at + 1..])),
        _ => (host, None),
    };
    matches!(name, [b'[', inner @ .., b']']
        if !inner.is_empty() && inner.iter().all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.'))
        && port.is_none_or(usable_port)
}

/// One to five digits, at most 65535, read in one pass.
fn usable_port(port: &[u8]) -> bool {
    (1..=5).contains(&port.len())
        && port
            .iter()
            .try_fold(0u32, |n, &d| d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0')))
            .is_some_and(|n| n <= u32::from(u16::MAX))
}

/// The bytes of an RFC 3986 `reg-name` (unreserved and sub-delims; an IPv4 address is one too),
/// as a table: looked up once per byte of every request's `Host`. Not `%`: a percent-encoded
/// name is no DNS name, and a link's origin cannot be built from it (the `http` crate refuses
/// it as an authority), so its links point at the listener.
const REG_NAME: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let others = b"-._~!$&'()*+,;=";
    let mut i = 0;
    while i < others.len() {
        table[others[i] as usize] = true;
        i += 1;
    }
    table
};

/// Where the links served to a request without a usable `Host` point: the listener it reached.
enum Fallback {
    /// Beside a `Host` that is there but names no host (kept as sent for the browser guard).
    BesideHost(SocketAddr),
    /// As the `Host` of a request that has none, or an empty one.
    AsHost(SocketAddr),
}

/// An HTTP answer, as [`Proxy::handle`] gives it.
type Answer = Result<Response, ResetConnection>;
type Response = hyper::Response<http_body_util::Full<bytes::Bytes>>;

/// The future hyper gets for a request: its answer, ready (`proxy::at_once`), or the work
/// that gives it, boxed.
enum Answering {
    Ready(std::future::Ready<Answer>),
    Waiting(Pin<Box<dyn Future<Output = Answer> + Send>>),
}

impl Future for Answering {
    type Output = Answer;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer> {
        match self.get_mut() {
            Answering::Ready(ready) => Pin::new(ready).poll(cx),
            Answering::Waiting(waiting) => waiting.as_mut().poll(cx),
        }
    }
}

/// A connection ready for hyper.
pub(super) enum Opened {
    Plain(Protocol, TcpStream),
    Tls(Protocol, Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// Which HTTP a plain-TCP client speaks, from its first bytes (peeked, so hyper still reads
/// them): the HTTP/2 preface, or anything else (HTTP/1). `None` if it closes first. The caller
/// bounds the wait: hyper-util's `auto` does this sniffing without any timeout (and hyper's
/// header-read timeout starts only once HTTP/1 is chosen), so a client that connected and stayed
/// silent, or sent part of the preface, held its connection and task forever.
pub(super) async fn sniff(stream: &TcpStream) -> Option<Protocol> {
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

/// The answer to a HEAD request, without its body: what GET would have answered, headers only
/// (RFC 9110 §9.3.2). hyper's HTTP/1 server leaves the body out by itself, its HTTP/2 server
/// does not, and a client then fails the stream (curl: `PROTOCOL_ERROR`). A recorded answer to
/// HEAD has no body already; the proxy's own answers (a miss, a 502, the control API) do. Their
/// `Content-Length` stays the length of the body GET would get.
fn without_body(
    answer: hyper::Response<http_body_util::Full<bytes::Bytes>>,
) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    use hyper::body::Body as _;
    let length = answer.body().size_hint().exact().unwrap_or(0);
    if length == 0 {
        return answer;
    }
    let (mut parts, _) = answer.into_parts();
    parts
        .headers
        .entry(hyper::header::CONTENT_LENGTH)
        .or_insert_with(|| hyper::header::HeaderValue::from(length));
    hyper::Response::from_parts(parts, http_body_util::Full::new(bytes::Bytes::new()))
}

/// `answer` with an empty reason phrase when its status has no registered one (`520`, `299`)
/// and it was given none (a miss's `599 Replay Miss` keeps its own):
/// hyper's HTTP/1 server writes `<none>` there (`HTTP/1.1 520 <none>`), which clients then show
/// in their errors. A registered status keeps its standard phrase (the upstream's own phrase is
/// not stored: `404 Not Found` whatever the upstream wrote).
fn with_a_reason(
    mut answer: hyper::Response<http_body_util::Full<bytes::Bytes>>,
) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    if answer.status().canonical_reason().is_none()
        && answer.extensions().get::<hyper::ext::ReasonPhrase>().is_none()
    {
        answer.extensions_mut().insert(hyper::ext::ReasonPhrase::from_static(b""));
    }
    answer
}

/// Whether `answer`'s status is one that has no content (1xx, 204, 304: RFC 9110 §6.4.1; 205,
/// §15.3.6).
fn bodiless(answer: &hyper::Response<http_body_util::Full<bytes::Bytes>>) -> bool {
    let status = answer.status();
    status.is_informational()
        || status == hyper::StatusCode::NO_CONTENT
        || status == hyper::StatusCode::RESET_CONTENT
        || status == hyper::StatusCode::NOT_MODIFIED
}

/// An answer whose status has no content ([`bodiless`]) as it is sent: without a body and
/// without `Content-Length`, on every protocol. hyper's HTTP/1 server leaves both out by itself
/// (but for a `205`);
/// its HTTP/2 server sends them, and a client then fails the stream (curl: `PROTOCOL_ERROR`).
/// A live upstream's such answer has no body, but an imported one may (a browser's HAR keeps a
/// cached body on a `304`), and so may a cassette written by hand.
fn with_no_content(
    answer: hyper::Response<http_body_util::Full<bytes::Bytes>>,
) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    use hyper::body::Body as _;
    if answer.body().size_hint().exact() == Some(0)
        && !answer.headers().contains_key(hyper::header::CONTENT_LENGTH)
    {
        return answer;
    }
    let (mut parts, _) = answer.into_parts();
    parts.headers.remove(hyper::header::CONTENT_LENGTH);
    hyper::Response::from_parts(parts, http_body_util::Full::new(bytes::Bytes::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_usable_host_is_host_and_port_without_user_information() {
        let usable = |h: &str| usable_host(h.as_bytes());
        for good in ["127.0.0.1:9696", "ims.example", " ims.example:443 ", "[::1]:80", "[fe80::1]", "a-b_c.d~e", "h:65535", "h:0", "h:00080"] {
            assert!(usable(good), "{good}");
        }
        for bad in [
            "", " ", "a b", "x\"y", "127.0.0.1:9696:99", "h:", "h:x", "h:70000", "alice:pw@h", "a@h", "[::1", "::1", "[]",
            ":80", "h:123456", "h:65536", "h:1:2", "h:8]", "h]:80", "[::1]:", "[::1]:x", "[::1]x", "[g::1]", "h:99999",
            "%", "%zz", "h%41:80",
        ] {
            assert!(!usable(bad), "{bad}");
        }
    }

    /// The links served to a request are built from its `Host` when it is usable: every usable
    /// `Host` must make an authority, or the answer's upstream links would be served as they are
    /// (pointing a client at the real cloud). Every byte, in a name and in a port.
    #[test]
    fn every_usable_host_makes_an_authority() {
        for b in 0..=u8::MAX {
            for host in [vec![b'a', b, b'b', b':', b'8'], vec![b'h', b':', b, b'1'], vec![b]] {
                let Ok(value) = hyper::header::HeaderValue::from_bytes(&host) else {
                    continue;
                };
                if usable_host(value.as_bytes()) {
                    let text = value.to_str().unwrap().trim();
                    assert!(text.parse::<hyper::http::uri::Authority>().is_ok(), "{text:?}");
                }
            }
        }
    }

    #[test]
    fn a_head_answer_keeps_its_headers_and_the_length_get_would_get_without_the_body() {
        use hyper::body::Body as _;
        let answer = hyper::Response::builder()
            .status(599)
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from_static(b"{\"miss\":1}")))
            .unwrap();
        let head = without_body(answer);
        assert_eq!(head.status(), 599);
        assert_eq!(head.headers()["content-type"], "application/json");
        assert_eq!(head.headers()["content-length"], "10");
        assert_eq!(head.body().size_hint().exact(), Some(0));
    }
}
