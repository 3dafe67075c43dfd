//! What the upstream answered reaches the client as it was, in record, replay (from the store and
//! from exported cassettes) and passthrough: a binary body byte for byte even when it holds the
//! upstream's origin (only text bodies and headers have it pointed at the proxy, and only as a
//! whole origin), and the `Content-Length` of an answer to `HEAD` (clients size downloads by it).

use std::path::Path;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use ims_vcr::{ProxyServer, UpstreamConfig};
use tokio::net::TcpListener;

use crate::util::*;

/// The length a `HEAD` of the image file announces (what a `GET` would bring).
const FILE_LENGTH: &str = "5242880";

/// Image data holding the upstream origin, plain and JSON-escaped, among bytes that are not
/// UTF-8: what a proxy rewriting links in every body would change.
fn image_bytes(origin: &str) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\x00\xff\xfe".to_vec();
    bytes.extend_from_slice(origin.as_bytes());
    bytes.extend_from_slice(b"/v2/images/x/file\x00");
    bytes.extend_from_slice(origin.replace('/', "\\/").as_bytes());
    bytes.extend(0..=255u8);
    bytes
}

/// Image data that happens to be ASCII text, still `application/octet-stream`.
fn ascii_image(origin: &str) -> Vec<u8> {
    format!("P3 {origin}/v2 1 1 255 0 0 0").into_bytes()
}

/// A TLS upstream on 127.0.0.1 (its CA written to `dir/ca.pem`) serving image files, the `HEAD`
/// of one (plain and gzip-encoded), and a JSON answer with URLs that only start like its origin.
async fn file_upstream(dir: &Path) -> UpstreamConfig {
    let ca = TestCa::new();
    let (cert, key) = ca.leaf(&["127.0.0.1"], false);
    let acceptor = tls_acceptor(&cert, &key, &[b"http/1.1"]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("https://{}", listener.local_addr().unwrap());
    let served = origin.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, origin) = (acceptor.clone(), served.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                    let accepts = request.headers().get("accept-encoding").cloned();
                    let accepts = accepts.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("");
                    let answer = answer(&origin, request.method(), request.uri().path(), accepts);
                    async move { Ok::<_, std::convert::Infallible>(answer) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let mut config = UpstreamConfig::new(origin);
    config.ca_file = Some(ca_file);
    config.timeout = std::time::Duration::from_secs(5);
    config
}

/// The answer to `method` `path` from the upstream at `origin`, whose client sent
/// `Accept-Encoding: accepts`.
fn answer(origin: &str, method: &Method, path: &str, accepts: &str) -> Response<Full<Bytes>> {
    let octets = |body: Vec<u8>| {
        Response::builder()
            .header("content-type", "application/octet-stream")
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    match (method.as_str(), path) {
        ("GET", "/v2/images/x/file") => octets(image_bytes(origin)),
        ("GET", "/v2/images/y/file") => octets(ascii_image(origin)),
        ("HEAD", "/v2/images/x/file") => Response::builder()
            .header("content-type", "application/octet-stream")
            .header("content-length", FILE_LENGTH)
            .header("content-md5", "XrY7u+Ae7tCTyyK7j1rNww==")
            .body(Full::new(Bytes::new()))
            .unwrap(),
        // As a server that compresses what the client accepts: the `HEAD` names the coding and
        // the length a `GET` with the same `Accept-Encoding` would get.
        ("HEAD", "/v2/images/negotiated/file") if accepts.contains("gzip") => Response::builder()
            .header("content-type", "application/octet-stream")
            .header("content-encoding", "gzip")
            .header("content-length", "1234")
            .body(Full::new(Bytes::new()))
            .unwrap(),
        ("HEAD", "/v2/images/negotiated/file") => Response::builder()
            .header("content-type", "application/octet-stream")
            .header("content-length", FILE_LENGTH)
            .body(Full::new(Bytes::new()))
            .unwrap(),
        ("HEAD", "/v2/images/gz/file") => Response::builder()
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .header("content-length", "1234")
            .body(Full::new(Bytes::new()))
            .unwrap(),
        ("GET", "/v2/links") => Response::builder()
            .header("content-type", "application/json")
            .header("link", format!("<{origin}/v2>; rel=self, <{origin}9/v2>; rel=near"))
            .body(Full::new(Bytes::from(format!(
                r#"{{"self":"{origin}/v2","near":"{origin}9/x","evil":"{origin}.evil.example/x","end":"{origin}"}}"#
            ))))
            .unwrap(),
        _ => Response::builder()
            .status(404)
            .body(Full::new(Bytes::new()))
            .unwrap(),
    }
}

/// Every check, through `proxy`, of answers whose upstream origin is `origin`.
async fn check_answers(proxy: &str, origin: &str, mode: &str) {
    let x = get(&format!("{proxy}/v2/images/x/file")).await;
    assert_eq!(x.status, 200, "{mode}");
    assert!(x.header("x-ims-vcr").is_some(), "{mode}");
    assert!(
        x.body == image_bytes(origin),
        "{mode}: binary body changed: {}",
        x.text()
    );
    // The proxy frames what it serves: the length is the body's.
    assert_eq!(
        x.header("content-length"),
        Some(x.body.len().to_string().as_str()),
        "{mode}"
    );
    let y = get(&format!("{proxy}/v2/images/y/file")).await;
    assert_eq!(
        y.text(),
        String::from_utf8(ascii_image(origin)).unwrap(),
        "{mode}"
    );

    let head = send("HEAD", &format!("{proxy}/v2/images/x/file"), &[], b"").await;
    assert_eq!(head.status, 200, "{mode}");
    assert!(head.body.is_empty(), "{mode}");
    assert_eq!(
        head.header("content-length"),
        Some(FILE_LENGTH),
        "{mode}: {:?}",
        head.headers
    );
    assert_eq!(
        head.header("content-md5"),
        Some("XrY7u+Ae7tCTyyK7j1rNww=="),
        "{mode}"
    );
    assert_eq!(
        head.header("content-type"),
        Some("application/octet-stream"),
        "{mode}"
    );
    // A server that compresses what the client accepts gives the length of the file as it is:
    // the proxy asks for no coding for a `HEAD` (it decodes what a `GET` brings, so a gzip
    // length would not fit it), whatever the client accepts.
    let negotiated = send(
        "HEAD",
        &format!("{proxy}/v2/images/negotiated/file"),
        &[("accept-encoding", "gzip, deflate, br")],
        b"",
    )
    .await;
    assert_eq!(negotiated.status, 200, "{mode}");
    assert_eq!(
        negotiated.header("content-length"),
        Some(FILE_LENGTH),
        "{mode}"
    );
    assert_eq!(negotiated.header("content-encoding"), None, "{mode}");
    // Content-encoded all the same (a server that ignores what was asked): the body is stored
    // decoded, so the encoded length would be wrong.
    let gz = send("HEAD", &format!("{proxy}/v2/images/gz/file"), &[], b"").await;
    assert_eq!(gz.status, 200, "{mode}: {}", gz.text());
    assert_eq!(
        gz.header("content-length"),
        None,
        "{mode}: {:?}",
        gz.headers
    );
    assert_eq!(gz.header("content-encoding"), None, "{mode}");

    // A text answer: only the whole origin is pointed at the proxy.
    let links = get(&format!("{proxy}/v2/links")).await;
    let json = links.json();
    assert_eq!(json["self"], format!("{proxy}/v2"), "{mode}");
    assert_eq!(json["end"], proxy, "{mode}");
    assert_eq!(json["near"], format!("{origin}9/x"), "{mode}");
    assert_eq!(json["evil"], format!("{origin}.evil.example/x"), "{mode}");
    assert_eq!(
        links.header("link"),
        Some(format!("<{proxy}/v2>; rel=self, <{origin}9/v2>; rel=near").as_str()),
        "{mode}"
    );
}

#[tokio::test]
async fn binary_bodies_and_head_lengths_reach_the_client_as_the_upstream_sent_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let upstream = file_upstream(dir.path()).await;
    let origin = upstream.url.clone();

    let passthrough = ProxyServer::builder()
        .passthrough(upstream.clone())
        .start()
        .await
        .unwrap();
    check_answers(&passthrough.uri(), &origin, "passthrough").await;
    passthrough.shutdown().await.unwrap();

    let recorder = recording_through(upstream, &store).await;
    check_answers(&recorder.uri(), &origin, "record").await;
    recorder.shutdown().await.unwrap();

    let replay = replayer(&store).await;
    check_answers(&replay.uri(), &origin, "replay").await;
    // HTTP/2 too: hyper sends a HEAD answer's length there as well.
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let head = h2
        .head(format!("{}/v2/images/x/file", replay.uri()))
        .send()
        .await
        .unwrap();
    assert_eq!(head.version(), reqwest::Version::HTTP_2);
    assert_eq!(head.headers()["content-length"], FILE_LENGTH);
    let summary = replay.shutdown().await.unwrap();
    assert_eq!(summary.miss_count(), 0, "{summary}");

    // The exported cassette of the HEAD holds the length; replayed from cassettes, as above.
    let cassettes = dir.path().join("cassettes");
    export_store(&store, &cassettes, None).unwrap();
    let files = all_files(&cassettes);
    let heads: Vec<String> = files
        .values()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .filter(|text| text.contains("\"HEAD\""))
        .collect();
    assert_eq!(heads.len(), 3, "{:?}", files.keys());
    let compact: String = heads.concat().split_whitespace().collect();
    assert!(
        compact.contains(r#"["content-length","5242880"]"#),
        "{heads:?}"
    );
    assert!(!compact.contains("1234"), "{heads:?}");
    let replay = cassette_replayer(&cassettes).await;
    check_answers(&replay.uri(), &origin, "cassette replay").await;
    let summary = replay.shutdown().await.unwrap();
    assert_eq!(summary.miss_count(), 0, "{summary}");
}

/// A recorded answer's headers keep the order the upstream sent them in, live, replayed and in
/// the exported cassette, when the proxy drops some (its length, its content coding, hop-by-hop
/// headers): dropping one used to move the last header into its place.
#[tokio::test]
async fn recorded_headers_keep_the_upstreams_order_when_some_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let body = gzip(br#"{"id":"x"}"#);
    let mut answer = format!(
        "HTTP/1.1 200 OK\r\nserver: s\r\ncontent-encoding: gzip\r\ncontent-type: application/json\r\nconnection: close\r\nx-count: 1\r\ncontent-length: {}\r\nx-request-id: r\r\nlocation: /v2/images/x\r\n\r\n",
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    let upstream = canned_upstream(answer).await;
    let order = |reply: &Reply| -> Vec<String> {
        (reply.headers.iter())
            .map(|(name, _)| name.clone())
            .filter(|name| !matches!(name.as_str(), "x-ims-vcr" | "content-length" | "date"))
            .collect()
    };
    let wanted = [
        "server",
        "content-type",
        "x-count",
        "x-request-id",
        "location",
    ];
    let recorder = recording_through(ims_vcr::UpstreamConfig::new(upstream), &store).await;
    let live = get(&format!("{}/v2/images/x", recorder.uri())).await;
    assert_eq!(
        live.header("x-ims-vcr"),
        Some("recorded"),
        "{}",
        live.text()
    );
    assert_eq!(order(&live), wanted);
    recorder.shutdown().await.unwrap();
    let replay = replayer(&store).await;
    let replayed = get(&format!("{}/v2/images/x", replay.uri())).await;
    assert_eq!(order(&replayed), wanted);
    replay.shutdown().await.unwrap();
    let cassettes = dir.path().join("cassettes");
    export_store(&store, &cassettes, None).unwrap();
    let text: String = all_files(&cassettes)
        .values()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    let at = |name: &str| {
        text.find(&format!("\"{name}\""))
            .unwrap_or_else(|| panic!("{name}: {text}"))
    };
    let positions: Vec<usize> = wanted.iter().map(|name| at(name)).collect();
    assert!(positions.is_sorted(), "{text}");
}

/// An answer whose status has no content (`204`, `304`) but that a cassette gives a body (an
/// imported browser HAR keeps a cached body on a `304`; a cassette written by hand) goes out
/// without the body and without `Content-Length` over HTTP/1.1 and HTTP/2 alike: over HTTP/2
/// its body went out as DATA, and curl failed the stream (`PROTOCOL_ERROR`). And a status with
/// no registered reason phrase goes out with an empty one (it was `HTTP/1.1 520 <none>`).
#[tokio::test]
async fn an_answer_whose_status_has_no_content_is_sent_without_one_and_an_odd_status_has_no_odd_reason()
 {
    let dir = tempfile::tempdir().unwrap();
    let cassettes = dir.path().join("cassettes");
    std::fs::create_dir(&cassettes).unwrap();
    for (status, path) in [
        (204, "/v2/images/no-content"),
        (304, "/v2/images/not-modified"),
    ] {
        let cassette = serde_json::json!({
            "format": 1,
            "request": {"method": "GET", "path": path, "headers": []},
            "answers": [{
                "status": status,
                "headers": [["content-type", "application/json"], ["content-length", "15"], ["etag", "\"e1\""]],
                "body": {"json": {"id": "cached"}},
                "recorded_at": "2026-01-01T00:00:00Z",
                "latency_ms": 1,
                "upstream": "https://ims.example",
            }],
        });
        std::fs::write(
            cassettes.join(format!("get_{status}.json")),
            serde_json::to_vec_pretty(&cassette).unwrap(),
        )
        .unwrap();
    }
    let odd = serde_json::json!({
        "format": 1,
        "request": {"method": "GET", "path": "/v2/images/odd-status", "headers": []},
        "answers": [{"status": 520, "headers": [], "body": {"json": {}},
            "recorded_at": "2026-01-01T00:00:00Z", "latency_ms": 1, "upstream": "https://ims.example"}],
    });
    std::fs::write(cassettes.join("get_520.json"), odd.to_string()).unwrap();
    let replay = cassette_replayer(&cassettes).await;
    // A status with no registered reason phrase gets an empty one, not hyper's `<none>`.
    let wire = raw_exchange(
        replay.address(),
        b"GET /v2/images/odd-status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(wire.starts_with("HTTP/1.1 520 \r\n"), "{wire}");
    for (status, path) in [
        (204, "/v2/images/no-content"),
        (304, "/v2/images/not-modified"),
    ] {
        let url = format!("{}{path}", replay.uri());
        let h1 = get(&url).await;
        assert_eq!((h1.status, h1.body.len()), (status, 0), "HTTP/1.1 {path}");
        assert_eq!(h1.header("content-length"), None, "HTTP/1.1 {path}");
        assert_eq!(h1.header("etag"), Some("\"e1\""));
        // HTTP/2 (h2c, prior knowledge): headers and the end of the stream, no DATA.
        let stream = tokio::net::TcpStream::connect(replay.address())
            .await
            .unwrap();
        let (mut sender, connection) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            TokioIo::new(stream),
        )
        .await
        .unwrap();
        tokio::spawn(connection);
        let request = Request::get(url.as_str())
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap();
        let answer = sender.send_request(request).await.unwrap();
        assert_eq!(answer.status().as_u16(), status, "HTTP/2 {path}");
        assert_eq!(
            answer.headers().get("content-length"),
            None,
            "HTTP/2 {path}"
        );
        use http_body_util::BodyExt as _;
        let body = answer.into_body().collect().await.unwrap().to_bytes();
        assert!(body.is_empty(), "HTTP/2 {path}: {body:?}");
    }
    replay.shutdown().await.unwrap();
}
