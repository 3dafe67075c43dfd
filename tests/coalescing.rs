//! Auto mode's concurrent identical misses share one upstream exchange, but never its live
//! answer: a waiting client is served what a replay of the stored answer serves (no
//! `Set-Cookie`, the placeholder `X-Subject-Token`, redacted), or, when nothing was stored,
//! makes its own exchange. Checked by scanning every byte each client received for what the
//! upstream handed the other clients.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use ims_vcr::model::redaction::RedactionPolicy;
use ims_vcr::{ProxyServer, UpstreamConfig};
use tokio::net::TcpListener;

use crate::util::*;

/// How long the fake upstream takes to answer: long enough for every concurrent client to
/// arrive at the proxy while the first one's exchange is still upstream.
const UPSTREAM_DELAY: Duration = Duration::from_millis(500);
/// The account id the `/setcookie` answer holds (`owner`): redacted by the default policy.
const OWNER: &str = "9c3b2a1d0e8f47a6b5c4d3e2f1a0b9c8";

/// Client `i`'s token (every one the same length, so none is inside another).
fn token(i: usize) -> String {
    format!("client-token-{i:02}-0123456789abcdef")
}

/// Client `i`'s sign-in password.
fn password(i: usize) -> String {
    format!("client-password-{i:02}-Zz9")
}

/// A fake upstream over real TLS, answering after [`UPSTREAM_DELAY`]:
///
/// | request | answer |
/// |---|---|
/// | `GET /setcookie` | 200, `Set-Cookie: sid=cookie-of-<the request's X-Auth-Token>`, `{"owner": OWNER, ...}` |
/// | `POST /v3/auth/tokens` | 201, `X-Subject-Token: subject-of-<the body's password>`, a token body |
/// | `GET /rawecho/x` | 200, text `you sent <the request's X-Auth-Token>` |
/// | `GET /counter` | 200, `{"n": N}`: the how-manyth request to `/counter` this is |
struct Upstream {
    url: String,
    ca_pem: String,
    /// Requests received, by path.
    seen: Arc<Mutex<Vec<String>>>,
}

impl Upstream {
    async fn start() -> Upstream {
        let ca = TestCa::new();
        let (cert, key) = ca.leaf(&["127.0.0.1", "localhost"], false);
        let acceptor = tls_acceptor(&cert, &key, &[b"http/1.1"]);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, log) = (acceptor.clone(), log.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |req| {
                        let log = log.clone();
                        async move { Ok::<_, Infallible>(answer(&log, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Upstream {
            url,
            ca_pem: ca.pem,
            seen,
        }
    }

    fn config(&self, dir: &std::path::Path) -> UpstreamConfig {
        let ca = dir.join("upstream-ca.pem");
        std::fs::write(&ca, &self.ca_pem).unwrap();
        let mut config = UpstreamConfig::new(self.url.clone());
        config.ca_file = Some(ca);
        config.timeout = Duration::from_secs(10);
        config
    }

    fn requests_to(&self, path: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|p| *p == path)
            .count()
    }
}

async fn answer(seen: &Mutex<Vec<String>>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    seen.lock().unwrap().push(parts.uri.path().to_owned());
    if parts.uri.path() == "/hang" {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    tokio::time::sleep(UPSTREAM_DELAY).await;
    let sent_token = parts
        .headers
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none")
        .to_owned();
    let response = Response::builder().header("x-request-id", "fake-upstream");
    let (response, body) = match parts.uri.path() {
        "/setcookie" => (
            response
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .header(
                    "set-cookie",
                    format!("sid=cookie-of-{sent_token}; Path=/; HttpOnly"),
                ),
            serde_json::json!({"owner": OWNER, "greeting": "hello"}).to_string(),
        ),
        "/v3/auth/tokens" => {
            let sign_in: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let password = sign_in["auth"]["identity"]["password"]["user"]["password"]
                .as_str()
                .unwrap()
                .to_owned();
            (
                response
                    .status(StatusCode::CREATED)
                    .header("content-type", "application/json")
                    .header("x-subject-token", format!("subject-of-{password}")),
                serde_json::json!({"token": {
                    "methods": ["password"],
                    "user": {"name": "ims-vcr-tester", "id": "7116d1a88ead4de6a9fbd3bbc1a9e7ed"},
                }})
                .to_string(),
            )
        }
        "/counter" => {
            let n = seen
                .lock()
                .unwrap()
                .iter()
                .filter(|p| *p == "/counter")
                .count();
            (
                response
                    .status(StatusCode::OK)
                    .header("content-type", "application/json"),
                serde_json::json!({"n": n}).to_string(),
            )
        }
        "/rawecho/x" => (
            response
                .status(StatusCode::OK)
                .header("content-type", "text/plain"),
            format!("you sent {sent_token}"),
        ),
        _ => (response.status(StatusCode::NOT_FOUND), String::new()),
    };
    response.body(Full::new(Bytes::from(body))).unwrap()
}

/// Every byte a client received: its headers (`name: value` lines) and its body.
fn bytes_of(reply: &Reply) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in &reply.headers {
        out.extend_from_slice(format!("{name}: {value}\n").as_bytes());
    }
    out.extend_from_slice(&reply.body);
    out
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Sends `clients` requests at once; client `i`'s request is `request(i)`.
async fn at_once(
    clients: usize,
    request: impl Fn(usize) -> (&'static str, String, Vec<(String, String)>, Vec<u8>),
) -> Vec<Reply> {
    let handles: Vec<_> = (0..clients)
        .map(|i| {
            let (method, url, headers, body) = request(i);
            tokio::spawn(async move {
                let headers: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                send(method, &url, &headers, &body).await
            })
        })
        .collect();
    let mut replies = Vec::new();
    for handle in handles {
        replies.push(handle.await.unwrap());
    }
    replies
}

/// No client's reply holds another client's token or password, or anything the upstream
/// derived from them (`cookie-of-…`, `subject-of-…`, the echo).
fn assert_nothing_of_another_client(what: &str, replies: &[Reply]) {
    for (i, reply) in replies.iter().enumerate() {
        let bytes = bytes_of(reply);
        for j in (0..replies.len()).filter(|j| *j != i) {
            for secret in [token(j), password(j)] {
                assert!(
                    !holds(&bytes, &secret),
                    "{what}: client {i} ({:?}) received client {j}'s {secret}:\n{}",
                    reply.header("x-ims-vcr"),
                    String::from_utf8_lossy(&bytes)
                );
            }
        }
    }
}

fn outcomes(replies: &[Reply]) -> Vec<&str> {
    replies
        .iter()
        .map(|r| r.header("x-ims-vcr").unwrap_or("none"))
        .collect()
}

#[tokio::test]
async fn coalesced_auto_misses_never_serve_one_clients_live_answer_to_another() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start().await;
    let proxy = ProxyServer::builder()
        .auto(upstream.config(dir.path()))
        .store(dir.path().join("store"))
        .redact(RedactionPolicy::default())
        .start()
        .await
        .unwrap();
    let base = proxy.uri();

    // (a) An answer setting a cookie: stored without it.
    let replies = at_once(30, |i| {
        let headers = vec![("X-Auth-Token".to_owned(), token(i))];
        ("GET", format!("{base}/setcookie"), headers, Vec::new())
    })
    .await;
    assert_nothing_of_another_client("Set-Cookie", &replies);
    let outcomes_a = outcomes(&replies);
    assert_eq!(upstream.requests_to("/setcookie"), 1, "{outcomes_a:?}");
    for (i, reply) in replies.iter().enumerate() {
        assert_eq!(reply.status, 200, "{}", reply.text());
        match reply.header("x-ims-vcr") {
            // The client whose exchange it was gets its own live answer.
            Some("recorded") => {
                assert_eq!(
                    reply.headers_named("set-cookie"),
                    [format!("sid=cookie-of-{}; Path=/; HttpOnly", token(i))]
                );
                assert_eq!(reply.json()["owner"], OWNER);
            }
            // The others get the stored answer as replay serves it: no cookie, redacted.
            Some("hit") => {
                assert!(reply.headers_named("set-cookie").is_empty(), "client {i}");
                assert!(!holds(&reply.body, OWNER), "client {i}: {}", reply.text());
                assert_eq!(reply.json()["greeting"], "hello");
            }
            other => panic!("client {i}: unexpected outcome {other:?}"),
        }
    }
    assert_eq!(
        outcomes_a.iter().filter(|o| **o == "recorded").count(),
        1,
        "{outcomes_a:?}"
    );

    // (b) A Keystone sign-in, one user, each client its own password: the password is masked
    // in the key, so the sign-ins are identical misses; but a `POST` is never shared (a
    // shared one would create one image for two tests, and hand the waiters of a sign-in the
    // placeholder token), so each client signs in itself and gets its own token.
    let replies = at_once(20, |i| {
        let body = serde_json::json!({"auth": {"identity": {
            "methods": ["password"],
            "password": {"user": {
                "name": "ims-vcr-tester",
                "domain": {"name": "ims-vcr-domain"},
                "password": password(i),
            }},
        }}});
        let headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
        (
            "POST",
            format!("{base}/v3/auth/tokens"),
            headers,
            body.to_string().into_bytes(),
        )
    })
    .await;
    assert_nothing_of_another_client("X-Subject-Token", &replies);
    let outcomes_b = outcomes(&replies);
    assert_eq!(
        upstream.requests_to("/v3/auth/tokens"),
        20,
        "{outcomes_b:?}"
    );
    for (i, reply) in replies.iter().enumerate() {
        assert_eq!(reply.status, 201, "{}", reply.text());
        assert_eq!(reply.header("x-ims-vcr"), Some("recorded"), "client {i}");
        let subject = reply.headers_named("x-subject-token");
        assert_eq!(subject, [format!("subject-of-{}", password(i))]);
    }

    // (c) An answer echoing the client's token: the leak gate refuses to store it, so there is
    // no stored form to serve; each client makes its own exchange and gets its own echo.
    let replies = at_once(20, |i| {
        let headers = vec![("X-Auth-Token".to_owned(), token(i))];
        ("GET", format!("{base}/rawecho/x"), headers, Vec::new())
    })
    .await;
    assert_nothing_of_another_client("echo", &replies);
    for (i, reply) in replies.iter().enumerate() {
        assert_eq!(
            (reply.status, reply.header("x-ims-vcr")),
            (200, Some("forwarded")),
            "client {i}: {}",
            reply.text()
        );
        assert_eq!(reply.text(), format!("you sent {}", token(i)));
    }
    assert_eq!(
        upstream.requests_to("/rawecho/x"),
        20,
        "one exchange per client"
    );

    let summary = proxy.shutdown().await.unwrap();
    assert_eq!(
        summary.recorded, 21,
        "the cookie answer and the twenty sign-ins"
    );
    let store = dir.path().join("store");
    for i in 0..30 {
        assert!(files_containing(&store, token(i).as_bytes()).is_empty());
        assert!(files_containing(&store, password(i).as_bytes()).is_empty());
    }
    assert!(files_containing(&store, OWNER.as_bytes()).is_empty());
}

/// A burst of identical auto-mode misses shares one exchange, and each client still takes its
/// place among the request's answers: a replay of the same burst (or a second auto run) serves
/// each client the answer it was served, and the request after the burst its own.
#[tokio::test]
async fn a_coalesced_burst_replays_as_it_was_served() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start().await;
    let store = dir.path().join("store");
    let burst_then_one = |base: String| async move {
        let burst = at_once(8, |_| {
            ("GET", format!("{base}/counter"), Vec::new(), Vec::new())
        })
        .await;
        let after = send("GET", &format!("{base}/counter"), &[], b"").await;
        let n = |r: &Reply| r.json()["n"].as_u64().unwrap();
        (burst.iter().map(n).collect::<Vec<_>>(), n(&after))
    };
    let proxy = ProxyServer::builder()
        .auto(upstream.config(dir.path()))
        .store(&store)
        .start()
        .await
        .unwrap();
    let (burst, after) = burst_then_one(proxy.uri()).await;
    assert_eq!((burst, after), (vec![1; 8], 2), "as served while recording");
    assert_eq!(upstream.requests_to("/counter"), 2);
    proxy.shutdown().await.unwrap();

    let proxy = replayer(&store).await;
    let (burst, after) = burst_then_one(proxy.uri()).await;
    assert_eq!((burst, after), (vec![1; 8], 2), "replayed");
    proxy.shutdown().await.unwrap();
    let proxy = ProxyServer::builder()
        .auto(upstream.config(dir.path()))
        .store(&store)
        .start()
        .await
        .unwrap();
    let (burst, after) = burst_then_one(proxy.uri()).await;
    assert_eq!(
        (burst, after),
        (vec![1; 8], 2),
        "auto again: every answer played"
    );
    assert_eq!(
        upstream.requests_to("/counter"),
        2,
        "nothing forwarded the second time"
    );
    proxy.shutdown().await.unwrap();
}

/// Concurrent identical misses whose shared exchange found the upstream hung are each given
/// its `502` (`timeout`) at once: they do not each wait the timeout again, one after the other,
/// and the upstream is asked once.
#[tokio::test]
async fn waiters_on_an_exchange_that_timed_out_get_its_502_instead_of_waiting_again() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start().await;
    let mut config = upstream.config(dir.path());
    config.timeout = Duration::from_secs(1);
    let proxy = ProxyServer::builder()
        .auto(config)
        .store(dir.path().join("store"))
        .start()
        .await
        .unwrap();
    let base = proxy.uri();
    let started = std::time::Instant::now();
    let replies = at_once(4, |_| {
        ("GET", format!("{base}/hang"), Vec::new(), Vec::new())
    })
    .await;
    let waited = started.elapsed();
    for reply in &replies {
        assert_eq!(reply.status, 502, "{}", reply.text());
        assert_eq!(
            reply.json()["ims_vcr"]["kind"],
            "timeout",
            "{}",
            reply.text()
        );
    }
    assert_eq!(upstream.requests_to("/hang"), 1);
    assert!(
        waited < Duration::from_millis(1900),
        "the waiters waited again: {waited:?}"
    );
    proxy.shutdown().await.unwrap();
}
