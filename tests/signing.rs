//! AK/SK clients through the proxy: re-signing for the upstream host with the proxy's clock, the
//! plain warning when no AK/SK is configured, and absolute upstream URLs pointed at the proxy.

use hyper::http::{HeaderMap, Method, Uri};
use ims_vcr::ProxyServer;
use ims_vcr::net::signer::{self, Credentials};

use crate::util::gateway::{REAL_AK, REAL_SK, gateway_verifier, real_credentials};
use crate::util::*;

const DUMMY: &str = "dummy-ak-or-sk";

/// Headers of a request signed the way an SDK pointed at the proxy signs it: with the client's
/// (dummy) AK/SK, for the proxy's host, at `skew` from now.
fn client_signed_headers(proxy: &ProxyServer, path: &str, skew: time::Duration) -> HeaderMap {
    let creds = Credentials {
        ak: DUMMY.into(),
        sk: DUMMY.into(),
        security_token: None,
    };
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/json".parse().unwrap());
    headers.insert(
        "x-project-id",
        "0123456789abcdef0123456789abcdef".parse().unwrap(),
    );
    let uri: Uri = path.parse().unwrap();
    let host = proxy.address().to_string();
    signer::sign(
        &creds,
        &Method::GET,
        &uri,
        &host,
        &mut headers,
        b"",
        time::OffsetDateTime::now_utc() + skew,
    );
    headers
}

async fn send_signed(proxy: &ProxyServer, path: &str, skew: time::Duration) -> Reply {
    let headers = client_signed_headers(proxy, path, skew);
    let pairs: Vec<(String, String)> = headers
        .iter()
        .filter(|(n, _)| n.as_str() != "host")
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    send("GET", &format!("{}{path}", proxy.uri()), &refs, b"").await
}

/// A fake IMS (checking signatures as the gateway does, when `verifying`) and a recorder in front
/// of it holding the real AK/SK, storing in `dir/store`.
async fn signing_recorder(dir: &std::path::Path, verifying: bool) -> (FakeIms, ProxyServer) {
    let fake = FakeIms::start(FakeOptions {
        verifier: verifying.then(gateway_verifier),
        ..Default::default()
    })
    .await;
    let mut config = upstream_for(&fake, dir);
    config.credentials = Some(real_credentials());
    let proxy = ProxyServer::builder()
        .record(config)
        .store(dir.join("store"))
        .start()
        .await
        .unwrap();
    (fake, proxy)
}

#[tokio::test]
async fn a_dummy_signed_client_with_a_skewed_clock_records_when_the_proxy_re_signs() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let (fake, proxy) = signing_recorder(dir.path(), true).await;

    let path = format!("/v2/images/{SEED_IMAGE_ID}");
    let reply = send_signed(&proxy, &path, time::Duration::hours(-2)).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.json(), seed_image_json());
    let listed = send_signed(
        &proxy,
        "/v2/images?owner=x&limit=1&name=a%20b",
        time::Duration::ZERO,
    )
    .await;
    assert_eq!(
        listed.status,
        200,
        "{}",
        String::from_utf8_lossy(&listed.body)
    );
    proxy.shutdown().await.unwrap();

    let seen = fake.requests();
    let authorization = seen[0]
        .headers
        .iter()
        .find(|(n, _)| n == "authorization")
        .unwrap();
    assert!(
        authorization.1.contains(&format!("Access={REAL_AK}")),
        "{authorization:?}"
    );
    for secret in [REAL_AK, REAL_SK, DUMMY] {
        assert!(
            files_containing(&store, secret.as_bytes()).is_empty(),
            "{secret} stored"
        );
    }
}

/// A client that sends a bare `+` in its query (python-requests' `params`, Go's `url.Values`)
/// means a space, and a gateway reading the query as a form (APIG's published signer) reads it
/// so: the re-signing proxy forwards it as `%20` and signs that, so the signature verifies; a
/// `%2B` stays a plus. Both are recorded under the query the client sent.
#[tokio::test]
async fn a_bare_plus_in_the_query_is_signed_and_forwarded_as_a_space_a_percent_2b_as_a_plus() {
    let dir = tempfile::tempdir().unwrap();
    let (fake, proxy) = signing_recorder(dir.path(), true).await;
    for path in ["/v2/images?name=my+image&tag=x", "/v2/images?name=a%2Bb"] {
        let reply = send_signed(&proxy, path, time::Duration::ZERO).await;
        assert_eq!(
            reply.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    proxy.shutdown().await.unwrap();
    let targets: Vec<String> = fake
        .requests()
        .iter()
        .map(|r| r.path_and_query.clone())
        .collect();
    assert_eq!(
        targets,
        ["/v2/images?name=my%20image&tag=x", "/v2/images?name=a%2Bb"]
    );
}

/// A proxy holding AK/SK signs a request that is AK/SK-signed (with the client's dummy keys) or
/// carries no credential; one carrying a token or another `Authorization` goes as it came, so
/// the gateway never gets two identities in one request.
#[tokio::test]
async fn a_signing_proxy_leaves_a_token_or_basic_request_as_it_came() {
    let dir = tempfile::tempdir().unwrap();
    let (fake, proxy) = signing_recorder(dir.path(), false).await;
    let url = format!("{}/v2/images/{SEED_IMAGE_ID}", proxy.uri());
    let token = "a-token-of-the-clients-own";
    send("GET", &url, &[("x-auth-token", token)], b"").await;
    send("GET", &url, &[("authorization", "Basic dXNlcjpwYXNz")], b"").await;
    send("GET", &url, &[("authorization", "Bearer abc.def")], b"").await;
    send("GET", &url, &[], b"").await;
    proxy.shutdown().await.unwrap();
    let seen = fake.requests();
    let header = |i: usize, name: &str| {
        (seen[i].headers.iter())
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header(0, "x-auth-token").as_deref(), Some(token));
    assert_eq!(
        header(0, "authorization"),
        None,
        "a token request was signed"
    );
    assert_eq!(
        header(1, "authorization").as_deref(),
        Some("Basic dXNlcjpwYXNz")
    );
    assert_eq!(
        header(2, "authorization").as_deref(),
        Some("Bearer abc.def")
    );
    for i in 0..3 {
        assert_eq!(header(i, "x-sdk-date"), None, "request {i} was signed");
    }
    let signed = header(3, "authorization").unwrap_or_default();
    assert!(signed.contains(&format!("Access={REAL_AK}")), "{signed}");
}

#[tokio::test]
async fn without_ak_sk_a_signed_request_is_forwarded_as_it_came_and_refused_upstream() {
    let (_dir, _, fake, proxy) = fake_and_recorder(FakeOptions {
        verifier: Some(gateway_verifier()),
        ..Default::default()
    })
    .await;
    let reply = send_signed(
        &proxy,
        &format!("/v2/images/{SEED_IMAGE_ID}"),
        time::Duration::ZERO,
    )
    .await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["error_code"], "APIGW.0301");
    let seen = fake.requests();
    let authorization = seen[0]
        .headers
        .iter()
        .find(|(n, _)| n == "authorization")
        .unwrap();
    assert!(
        authorization.1.contains(&format!("Access={DUMMY}")),
        "forwarded unchanged: {authorization:?}"
    );
}

#[tokio::test]
async fn absolute_upstream_urls_are_served_pointing_at_the_proxy_but_stored_as_received() {
    let (_dir, store, fake, proxy) = fake_and_recorder(FakeOptions::default()).await;
    let live = get(&format!("{}/v2", proxy.uri())).await;
    let live_text = String::from_utf8(live.body.clone()).unwrap();
    assert!(
        live_text.contains(&format!("{}/v2/", proxy.uri())),
        "{live_text}"
    );
    assert!(!live_text.contains(&fake.base_url()), "{live_text}");
    assert_eq!(
        live.header("content-length"),
        Some(live.body.len().to_string().as_str())
    );
    proxy.shutdown().await.unwrap();
    assert!(
        !files_containing(&store, fake.base_url().as_bytes()).is_empty(),
        "stored as received"
    );
    fake.stop().await;

    let replay = replayer(&store).await;
    let replayed = String::from_utf8(get(&format!("{}/v2", replay.uri())).await.body).unwrap();
    assert!(
        replayed.contains(&format!("{}/v2/", replay.uri())),
        "{replayed}"
    );
    assert!(!replayed.contains("https://127.0.0.1"), "{replayed}");
    // A client sending no usable `Host` (none, an empty one, one that is not `host[:port]`),
    // HTTP/1.0 or 1.1, gets the links of the listener it reached; user information in the
    // authority it used is never repeated in a link. Never the upstream's own links, whatever
    // the `Host` (one that makes no authority, as `%` does, once had them served as stored),
    // and never links to a `Host` judged unusable (`h:65536`).
    let port = replay.address().port();
    let unusable = [
        "%", "%zz", "h%41:80", "h:65536", ":80", "[::1]x", "[::1]:", "h:+80", "alice@h",
    ];
    let unusable = unusable
        .map(|host| format!("GET /v2 HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"));
    for request in unusable.into_iter().chain([
        "GET /v2 HTTP/1.0\r\n\r\n".to_owned(),
        "GET /v2 HTTP/1.0\r\nHost:\r\n\r\n".to_owned(),
        "GET /v2 HTTP/1.1\r\nConnection: close\r\n\r\n".to_owned(),
        "GET /v2 HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n".to_owned(),
        "GET /v2 HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n".to_owned(),
        format!("GET /v2 HTTP/1.1\r\nHost: 127.0.0.1:{port}:99\r\nConnection: close\r\n\r\n"),
        format!(
            "GET /v2 HTTP/1.1\r\nHost: alice:hunter2@127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        ),
        format!(
            "GET http://alice:hunter2@127.0.0.1:{port}/v2 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        ),
    ])
    // An absolute-form target names the host instead of `Host`, and is held to the same test.
    .chain(["h:65536", ":80", "[::1]x", "alice@h:65536"].map(|authority| {
        format!("GET http://{authority}/v2 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")
    })) {
        let answer = raw_exchange(replay.address(), request.as_bytes()).await;
        assert!(
            answer.contains(&format!("{}/v2/", replay.uri())),
            "{request}: {answer}"
        );
        assert!(!answer.contains("https://127.0.0.1"), "{request}: {answer}");
        assert!(!answer.contains("hunter2"), "{request}: {answer}");
    }
    // So is HTTP/2's `:authority`.
    for authority in ["h:65536", ":80", "[::1]x"] {
        let answer = h2_get(replay.address(), &format!("http://{authority}/v2")).await;
        assert!(
            answer.contains(&format!("{}/v2/", replay.uri())),
            "{authority}: {answer}"
        );
        assert!(
            !answer.contains("https://127.0.0.1"),
            "{authority}: {answer}"
        );
        assert!(!answer.contains(authority), "{authority}: {answer}");
    }
    // A usable `Host` other than the listener's address (a name the client resolved to it, a
    // port forwarded to it) makes the links: the client comes back the way it came.
    for host in [
        format!("localhost:{port}"),
        "ims-vcr.test:8443".to_owned(),
        "[::1]:9".to_owned(),
    ] {
        let request = format!("GET /v2 HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let answer = raw_exchange(replay.address(), request.as_bytes()).await;
        assert!(
            answer.contains(&format!("http://{host}/v2/")),
            "{request}: {answer}"
        );
        assert!(!answer.contains("https://127.0.0.1"), "{request}: {answer}");
    }
}

/// The body of a GET of `uri` over HTTP/2 (prior knowledge) to `address`: `uri`'s authority
/// becomes the request's `:authority`, whatever it holds.
async fn h2_get(address: std::net::SocketAddr, uri: &str) -> String {
    use http_body_util::BodyExt as _;
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::get(uri)
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let answer = sender.send_request(request).await.unwrap();
    let body = answer.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

#[tokio::test]
async fn the_cli_says_once_why_a_signed_request_will_be_refused_and_never_logs_the_keys() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions {
        verifier: Some(gateway_verifier()),
        ..Default::default()
    })
    .await;
    let store = ["--store", "s"];
    let unsigned = Running::record(&fake, dir.path(), &store, &[]);
    let signed = |uri: &str| {
        let creds = Credentials {
            ak: DUMMY.into(),
            sk: DUMMY.into(),
            security_token: None,
        };
        let mut headers = HeaderMap::new();
        let authority = uri.trim_start_matches("http://").to_owned();
        signer::sign(
            &creds,
            &Method::GET,
            &"/v2/images/x".parse().unwrap(),
            &authority,
            &mut headers,
            b"",
            time::OffsetDateTime::now_utc(),
        );
        headers
    };
    for _ in 0..3 {
        let headers = signed(&unsigned.uri);
        let auth = headers["authorization"].to_str().unwrap().to_owned();
        let date = headers["x-sdk-date"].to_str().unwrap().to_owned();
        let reply = send(
            "GET",
            &format!("{}/v2/images/x", unsigned.uri),
            &[("authorization", &auth), ("x-sdk-date", &date)],
            b"",
        )
        .await;
        assert_eq!(reply.status, 401);
    }
    let log = unsigned.log();
    assert_eq!(
        log.matches("HUAWEICLOUD_SDK_AK").count(),
        1,
        "said once:\n{log}"
    );
    assert!(log.contains("APIGW.0301"), "{log}");
    unsigned.signal("-TERM");
    unsigned.wait();

    let resigning = Running::record(
        &fake,
        dir.path(),
        &store,
        &[
            ("HUAWEICLOUD_SDK_AK", REAL_AK),
            ("HUAWEICLOUD_SDK_SK", REAL_SK),
            ("HUAWEICLOUD_SDK_SECURITY_TOKEN", "sts-token-abcdef123456"),
        ],
    );
    let headers = signed(&resigning.uri);
    let auth = headers["authorization"].to_str().unwrap().to_owned();
    let date = headers["x-sdk-date"].to_str().unwrap().to_owned();
    let reply = send(
        "GET",
        &format!("{}/v2/images/{SEED_IMAGE_ID}", resigning.uri),
        &[("authorization", &auth), ("x-sdk-date", &date)],
        b"",
    )
    .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let seen = fake.requests();
    let last = seen.last().unwrap();
    assert!(
        last.headers
            .iter()
            .any(|(n, v)| n == "x-security-token" && v == "sts-token-abcdef123456")
    );
    let log = resigning.log();
    for secret in [REAL_SK, "sts-token-abcdef123456", REAL_AK] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
    resigning.signal("-TERM");
    resigning.wait();
    for secret in [REAL_SK, "sts-token-abcdef123456", REAL_AK, DUMMY] {
        assert!(
            files_containing(&dir.path().join("s"), secret.as_bytes()).is_empty(),
            "{secret} stored"
        );
    }
}

/// A web page in the user's browser can reach a proxy on loopback (a cross-site form or
/// `fetch`, or DNS rebinding: its own name resolved to 127.0.0.1). A proxy that signs with the
/// AK/SK in its environment must not sign what only a page sends, in any forwarding mode:
/// nothing reaches the upstream, and the client gets a 403 saying why.
#[tokio::test]
async fn a_signing_proxy_refuses_what_a_web_page_could_send_and_forwards_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions {
        verifier: Some(gateway_verifier()),
        ..Default::default()
    })
    .await;
    let mut config = upstream_for(&fake, dir.path());
    config.credentials = Some(real_credentials());
    let recording = ProxyServer::builder()
        .record(config.clone())
        .store(dir.path().join("store"))
        .start()
        .await
        .unwrap();
    let passing = ProxyServer::builder()
        .passthrough(config)
        .start()
        .await
        .unwrap();
    let path = format!("/v2/images/{SEED_IMAGE_ID}");
    for proxy in [&recording, &passing] {
        let port = proxy.address().port();
        for (why, head) in [
            (
                "DNS-rebinding",
                format!("DELETE {path} HTTP/1.1\r\nHost: evil.example:{port}\r\n"),
            ),
            (
                "Origin",
                format!(
                    "POST /v2/images HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: https://evil.example\r\nContent-Type: text/plain\r\n"
                ),
            ),
            (
                "Sec-Fetch-Site",
                format!(
                    "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nSec-Fetch-Site: cross-site\r\n"
                ),
            ),
        ] {
            let raw = format!("{head}Content-Length: 0\r\nConnection: close\r\n\r\n");
            let answer = crate::util::raw::raw_exchange(proxy.address(), raw.as_bytes()).await;
            assert!(answer.starts_with("HTTP/1.1 403"), "{why}: {answer}");
            assert!(
                answer.contains(why) && answer.contains("x-ims-vcr: error"),
                "{answer}"
            );
        }
    }
    assert!(fake.requests().is_empty(), "{:?}", fake.requests().len());
    // A client naming the proxy by address, by localhost, or by the upstream's own name (mapped
    // to the proxy in /etc/hosts) is signed and served.
    let upstream_host = fake.base_url().trim_start_matches("https://").to_owned();
    for host in [
        "127.0.0.1".to_owned(),
        "localhost".to_owned(),
        upstream_host,
    ] {
        let raw = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let answer = crate::util::raw::raw_exchange(recording.address(), raw.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{host}: {answer}");
    }
    recording.shutdown().await.unwrap();
    passing.shutdown().await.unwrap();
}
