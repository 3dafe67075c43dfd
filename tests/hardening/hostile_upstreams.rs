//! Hostile upstreams: drips, endless and huge bodies, garbage, resets and bad certificates get a
//! 502 naming the failure, store nothing, and leave no task or connection behind.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ims_vcr::UpstreamConfig;

use crate::util::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_upstreams_get_a_502_naming_the_failure_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let (wrong_name, wrong_name_key) = ca.leaf(&["other.example"], false);
    let (expired, expired_key) = ca.leaf(&["127.0.0.1", "localhost"], true);
    let (own, own_key) = self_signed(&["127.0.0.1", "localhost"]);
    let raw_case = |how| async move { raw_upstream(move |_| how).await.0 };
    let cases = [
        (
            "slow drip",
            raw_case(Misbehaviour::Drip).await,
            false,
            "timeout",
        ),
        (
            "endless chunked body",
            raw_case(Misbehaviour::Endless).await,
            false,
            "too-large",
        ),
        (
            "a terabyte announced",
            raw_case(Misbehaviour::Huge).await,
            false,
            "too-large",
        ),
        (
            "garbage instead of HTTP",
            raw_case(Misbehaviour::Garbage).await,
            false,
            "invalid-head",
        ),
        (
            "a hundred and twenty headers",
            canned_upstream({
                let headers: Vec<(String, String)> = (0..120)
                    .map(|i| (format!("x-h{i}"), "v".to_owned()))
                    .collect();
                let headers: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                http_answer("200 OK", &headers, b"{}")
            })
            .await,
            false,
            "invalid-head",
        ),
        (
            "a header folded over two lines",
            canned_upstream(
                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-folded: a\r\n b\r\n\r\n{}".to_vec(),
            )
            .await,
            false,
            "invalid-head",
        ),
        (
            "connection reset",
            raw_case(Misbehaviour::Reset).await,
            false,
            "cut",
        ),
        (
            "closed without answer",
            raw_case(Misbehaviour::Close).await,
            false,
            "cut",
        ),
        (
            "TLS name mismatch",
            tls_upstream(&wrong_name, &wrong_name_key).await,
            true,
            "tls",
        ),
        (
            "expired certificate",
            tls_upstream(&expired, &expired_key).await,
            true,
            "tls",
        ),
        (
            "self-signed certificate",
            tls_upstream(&own, &own_key).await,
            false,
            "tls",
        ),
        (
            "plain HTTP behind an https URL",
            plain_http_answering_at_once().await,
            false,
            "tls",
        ),
    ];
    let tasks = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    for (case, url, trust_ca, kind) in cases {
        let store = dir.path().join(case.replace(' ', "-"));
        let mut config = UpstreamConfig::new(&url);
        config.timeout = Duration::from_secs(1);
        config.max_body = 64 * 1024;
        if trust_ca {
            config.ca_file = Some(ca_file.clone());
        }
        let proxy = recording_through(config, &store).await;
        let baseline = tasks();
        for _ in 0..3 {
            let reply = get(&format!("{}/v2/images/{SEED_IMAGE_ID}", proxy.uri())).await;
            assert_eq!(reply.status, 502, "{case}");
            assert_eq!(reply.header("x-ims-vcr"), Some("upstream-error"), "{case}");
            let body = reply.json();
            assert_eq!(body["ims_vcr"]["kind"], kind, "{case}: {body}");
            assert!(
                body["error"]["message"].as_str().unwrap().contains(&url),
                "{case}: names the upstream: {body}"
            );
            if case.starts_with("plain HTTP") {
                let message = body["error"]["message"].as_str().unwrap();
                assert!(
                    message.contains("does not speak TLS") && message.contains("http://"),
                    "{body}"
                );
            }
        }
        // The failed exchanges left no task behind (connection tasks, pooled connections).
        let deadline = Instant::now() + Duration::from_secs(10);
        while tasks() > baseline && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            tasks() <= baseline,
            "{case}: {} tasks, {baseline} before",
            tasks()
        );
        proxy.shutdown().await.unwrap();
        assert_eq!(stored_answers(&store), 0, "{case}: nothing may be stored");
    }
}

/// Sends `n` requests, 25 at a time, each expected to get a 502; returns the kinds seen.
/// An `https://` URL of a plain HTTP server that answers what a TLS hello is to it (a `400`,
/// as nginx does) as soon as a client connects.
async fn plain_http_answering_at_once() -> String {
    use tokio::io::AsyncWriteExt as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let answer =
                b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
            let _ = socket.write_all(answer).await;
        }
    });
    url
}

async fn failing_requests(uri: &str, n: usize) -> BTreeMap<String, usize> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut kinds = BTreeMap::new();
    for batch in 0..n.div_ceil(25) {
        let replies: Vec<_> = (0..25.min(n - batch * 25))
            .map(|i| {
                let request = http.get(format!("{uri}/v2/images/fail-{batch}-{i}")).send();
                tokio::spawn(async move {
                    let response = request.await.unwrap();
                    assert_eq!(response.status(), 502);
                    let body: serde_json::Value =
                        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
                    body["ims_vcr"]["kind"].as_str().unwrap().to_owned()
                })
            })
            .collect();
        for reply in replies {
            *kinds.entry(reply.await.unwrap()).or_default() += 1;
        }
    }
    kinds
}

/// Waits (up to 10 s) for the proxy's descriptors to fall back to `baseline` (+ a little slack for
/// sled and the runtime), and returns the count.
async fn settled_fds(proxy: &Running, baseline: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let fds = proxy.open_fds();
        if fds <= baseline.saturating_add(3) || Instant::now() > deadline {
            return fds;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_upstream_failures_leave_no_connection_open_in_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let plan = [
        Misbehaviour::Garbage,
        Misbehaviour::Reset,
        Misbehaviour::Close,
        Misbehaviour::Garbage,
        Misbehaviour::Reset,
        Misbehaviour::Close,
        Misbehaviour::Drip,
    ];
    let (chaos, accepted) = raw_upstream(move |n| plan[n % plan.len()]).await;
    let (own, own_key) = self_signed(&["127.0.0.1"]);
    let untrusted = tls_upstream(&own, &own_key).await;
    for (upstream, dir) in [
        (&chaos, dir.path().join("chaos")),
        (&untrusted, dir.path().join("tls")),
    ] {
        std::fs::create_dir_all(&dir).unwrap();
        let proxy = hostile_record(&dir, upstream, &["--upstream-timeout", "1"]);
        failing_requests(&proxy.uri, 10).await;
        let baseline = settled_fds(&proxy, usize::MAX).await;
        let kinds = failing_requests(&proxy.uri, 100).await;
        assert_eq!(kinds.values().sum::<usize>(), 100);
        let after = settled_fds(&proxy, baseline).await;
        assert!(
            after <= baseline + 3,
            "{upstream}: {after} open descriptors after 100 failures, {baseline} before ({kinds:?})"
        );
        proxy.assert_no_panic();
        assert!(proxy.terminate().success());
        assert_eq!(stored_answers(&dir.join("store")), 0);
    }
    assert!(accepted.load(Ordering::SeqCst) >= 110);
}

/// An upstream that answers `413` as soon as it has a request's head and closes without
/// reading the body, as a gateway refusing an upload does (the unread body makes its kernel
/// reset the connection); with `Connection: close` when `says_close`, else as if it kept the
/// connection.
async fn refusing_uploads_at_once(says_close: bool) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let body = r#"{"error": {"code": "IMG.0025", "message": "image too large"}}"#;
                let close = if says_close {
                    "connection: close\r\n"
                } else {
                    ""
                };
                let answer = format!(
                    "HTTP/1.1 413 Request Entity Too Large\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\n{close}\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    url
}

/// An upload the upstream refuses before reading it gets the upstream's answer, in every
/// forwarding mode: the proxy's write of the rest of the body failed once the upstream closed,
/// and that failure was a `502` saying the answer was cut. The connection is not used again,
/// also when the answer did not say it closes: the next upload gets its own answer too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_the_upstream_refuses_before_reading_it_gets_the_upstreams_answer() {
    let dir = tempfile::tempdir().unwrap();
    let upload = vec![b'i'; 8 * 1024 * 1024];
    for (mode, says_close) in [
        ("passthrough", true),
        ("record", true),
        ("auto", false),
        ("passthrough", false),
    ] {
        let upstream = refusing_uploads_at_once(says_close).await;
        let mut args = vec![
            mode,
            "--upstream",
            &upstream,
            "--listen",
            "0",
            "--max-body",
            "20000000",
        ];
        let store = format!("store-{mode}-{says_close}");
        if mode != "passthrough" {
            args.extend(["--store", &store]);
        }
        let proxy = Running::start(&args, dir.path());
        for attempt in 0..2 {
            let url = format!("{}/v2/images/{SEED_IMAGE_ID}/file", proxy.uri);
            let headers = [("content-type", "application/octet-stream")];
            let reply = send("PUT", &url, &headers, &upload).await;
            assert_eq!(
                reply.status,
                413,
                "{mode}, attempt {attempt}: {}",
                reply.text()
            );
            assert!(
                reply.text().contains("IMG.0025"),
                "{mode}: {}",
                reply.text()
            );
        }
        let log = proxy.log();
        assert!(proxy.terminate().success(), "{mode}: {log}");
    }
}
