//! Hostile clients against the `ims-vcr` binary: oversized heads and bodies, stalls, bad
//! encodings, absurd queries, HTTP/2 prior knowledge, HTTP/1.0, pipelining, clients that vanish
//! mid-exchange, and keep-alive connections that idle or drip a head.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::util::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_heads_get_431_and_the_proxy_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = hostile_replay(dir.path());
    let one_huge = format!(
        "GET /v2/images/{SEED_IMAGE_ID} HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    let many: String = (0..500).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = format!("GET /v2/images/{SEED_IMAGE_ID} HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    let just_over = format!(
        "GET /v2/images/{SEED_IMAGE_ID} HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let huge_line = format!(
        "GET /v2/images/{} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    for request in [one_huge, just_over, many, huge_line] {
        let answer = raw(proxy.addr(), request.as_bytes(), Duration::from_secs(10)).await;
        let status = parse_wire(&answer).first().map(|a| a.status);
        assert_eq!(status, Some(431), "{}", String::from_utf8_lossy(&answer));
        assert_still_serving(&proxy).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_bodies_get_413_in_replay_and_record_and_are_never_forwarded() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions::plain()).await;
    let replay = hostile_replay(dir.path());
    let record = hostile_record(dir.path(), &fake.base_url(), &[]);
    let big = vec![b'{'; 4096];
    for proxy in [&replay, &record] {
        let reply = send("POST", &format!("{}/v2/images", proxy.uri), &[], &big).await;
        assert_eq!(
            reply.status,
            413,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        assert!(
            reply.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("--max-body")
        );
        // The body left unread, the connection closes, and the answer says so.
        assert_eq!(reply.header("connection"), Some("close"));
        // Declared too large with `Expect: 100-continue`: refused before the client is asked
        // to send the body.
        let expecting = "POST /v2/images HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\
                         Expect: 100-continue\r\n\r\n";
        let answer = raw(proxy.addr(), expecting.as_bytes(), Duration::from_secs(5)).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        // Chunked, so the proxy only learns the size while reading.
        let chunked = format!(
            "POST /v2/images HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n{0}\r\n800\r\n{0}\r\n0\r\n\r\n",
            "a".repeat(0x800)
        );
        let answer = raw(proxy.addr(), chunked.as_bytes(), Duration::from_secs(10)).await;
        assert_eq!(parse_wire(&answer)[0].status, 413);
        assert_still_serving(proxy).await;
    }
    assert!(
        fake.requests().iter().all(|r| r.method == "GET"),
        "no oversized body reached the upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_stall_before_finishing_a_request_are_disconnected_while_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = hostile_replay(dir.path());
    let stalls: [(&str, &[u8]); 7] = [
        ("half a request line", b"GET /v2/ima"),
        ("nothing at all", b""),
        ("part of the HTTP/2 preface", b"PRI * HTTP/2.0\r\n"),
        ("the HTTP/2 preface and no request", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        ("headers without the blank line", b"GET /v2/images/x HTTP/1.1\r\nHost: x\r\n"),
        (
            "a body shorter than announced",
            b"POST /v2/images HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"a\":",
        ),
        (
            "a chunked body that never ends",
            b"POST /v2/images HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n",
        ),
    ];
    for (stall, bytes) in stalls {
        let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
        stream.write_all(bytes).await.unwrap();
        let started = Instant::now();
        // Others are served while this client stalls.
        assert_still_serving(&proxy).await;
        let mut buf = [0u8; 1024];
        let mut got = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "{stall}: still connected after {:?}",
            started.elapsed()
        );
        if let Some(answer) = parse_wire(&got).first() {
            assert!(
                [400, 408].contains(&answer.status),
                "{stall}: {}",
                String::from_utf8_lossy(&got)
            );
        }
    }
    assert_still_serving(&proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_percent_encoding_and_non_utf8_paths_get_an_answer_or_a_clean_close_and_never_poison_the_store()
 {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions::plain()).await;
    let replay = hostile_replay(dir.path());
    let record = hostile_record(dir.path(), &fake.base_url(), &[]);
    let targets: [&[u8]; 9] = [
        b"/v2/images/%ZZ%zz%%%2",
        b"/v2/images/%00%0d%0a",
        b"/v2/images/\xff\xfe\x80",
        b"/v2/images/\xc3\xa9t\xc3\xa9",
        b"/v2/images/x?q=%ff%fe&%=%%&a=\xff",
        b"/v2/images/%2e%2e/%2e%2e/etc/passwd",
        b"/v2/images/x#fragment",
        b"*",
        b"http://evil.example/v2/images/x",
    ];
    for proxy in [&replay, &record] {
        for target in targets {
            let mut request = b"GET ".to_vec();
            request.extend_from_slice(target);
            request.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\nX-Note: caf\xe9\r\n");
            request.extend_from_slice(b"Connection: close\r\n\r\n");
            let answer = raw(proxy.addr(), &request, Duration::from_secs(10)).await;
            let answers = parse_wire(&answer);
            assert!(
                answers.len() <= 1,
                "{:?}: {}",
                String::from_utf8_lossy(target),
                String::from_utf8_lossy(&answer)
            );
            if let Some(answer) = answers.first() {
                assert!(
                    (200..600).contains(&answer.status),
                    "{:?}",
                    String::from_utf8_lossy(target)
                );
            }
            assert_still_serving(proxy).await;
        }
    }
    assert!(record.terminate().success());
    // What was recorded reloads, exports and imports.
    let (code, stderr) = run(&["export", "--store", "store", "--out", "out"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    let (code, stderr) = run(&["import", "--store", "again", "out"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    let replay_store = Running::start_with_env(
        &["replay", "--store", "store", "--listen", "0"],
        dir.path(),
        &[],
    );
    assert_eq!(
        get(&format!("{}/v2/images/{SEED_IMAGE_ID}", replay_store.uri))
            .await
            .status,
        200
    );
    replay_store.assert_no_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absurd_query_string_is_answered_and_recorded_without_trouble() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions::plain()).await;
    let replay = hostile_replay(dir.path());
    let record = hostile_record(dir.path(), &fake.base_url(), &[]);
    // 30,000 parameters (and 2,000 empty ones) in 62 KB: under the 64 KiB head limit.
    let query = format!("{}{}", "a&".repeat(30_000), "&".repeat(2_000));
    let url = |proxy: &Running| format!("{}/v2/images?{query}", proxy.uri);
    let miss = get(&url(&replay)).await;
    assert_eq!(miss.status, 599);
    assert_still_serving(&replay).await;
    let recorded = get(&url(&record)).await;
    assert_eq!(recorded.header("x-ims-vcr"), Some("recorded"));
    assert_still_serving(&record).await;
    assert!(record.terminate().success());
    let replay_store = Running::start_with_env(
        &["replay", "--store", "store", "--listen", "0"],
        dir.path(),
        &[],
    );
    let hit = get(&url(&replay_store)).await;
    assert_eq!(hit.header("x-ims-vcr"), Some("hit"));
    replay_store.assert_no_panic();
    let (code, stderr) = run(&["export", "--store", "store", "--out", "out"], dir.path());
    assert_eq!(code, 0, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_prior_knowledge_clients_are_served_in_replay_and_record() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions::plain()).await;
    let replay = hostile_replay(dir.path());
    let record = hostile_record(dir.path(), &fake.base_url(), &[]);
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    for (proxy, outcome) in [(&replay, "hit"), (&record, "recorded")] {
        let response = h2
            .get(format!("{}/v2/images/{SEED_IMAGE_ID}", proxy.uri))
            .send()
            .await
            .unwrap();
        assert_eq!(response.version(), reqwest::Version::HTTP_2);
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-ims-vcr"], outcome);
        let body: serde_json::Value =
            serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(body["id"], SEED_IMAGE_ID);
        assert_still_serving(proxy).await;
        // Headers up to HTTP/1's cap (64 KiB) are served over HTTP/2 too; a longer list is not.
        let big = "a".repeat(40 * 1024);
        let served = h2
            .get(format!("{}/v2/images/{SEED_IMAGE_ID}", proxy.uri))
            .header("x-big", &big)
            .send()
            .await
            .unwrap();
        assert_eq!(served.status(), 200, "a 40 KiB header over HTTP/2");
        let huge = "a".repeat(80 * 1024);
        let refused = h2
            .get(format!("{}/v2/images/{SEED_IMAGE_ID}", proxy.uri))
            .header("x-big", &huge)
            .send()
            .await;
        assert!(
            refused.as_ref().map_or(true, |r| r.status() == 431),
            "an 80 KiB header list over HTTP/2: {refused:?}"
        );
        assert_still_serving(proxy).await;
    }
    // HEAD over HTTP/2 gets headers only, also for the proxy's own answers (a replay miss, the
    // control API), which carry a body for GET; a DATA frame after them fails the client's stream.
    for (path, status) in [
        ("/v2/images/never-recorded", 599),
        ("/__ims-vcr/health", 200),
    ] {
        let head = h2
            .head(format!("{}{path}", replay.uri))
            .send()
            .await
            .unwrap_or_else(|e| panic!("HEAD {path} over HTTP/2: {e:?}"));
        assert_eq!(head.status(), status, "HEAD {path}");
        let length: usize = head.headers()["content-length"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(length > 0, "HEAD {path} says how long GET's body is");
        assert!(head.bytes().await.unwrap().is_empty(), "HEAD {path}");
    }
    assert_still_serving(&replay).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_1_0_clients_without_host_are_served_and_the_connection_closes() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions::plain()).await;
    let replay = hostile_replay(dir.path());
    let record = hostile_record(dir.path(), &fake.base_url(), &[]);
    for proxy in [&replay, &record] {
        let request = format!("GET /v2/images/{SEED_IMAGE_ID} HTTP/1.0\r\n\r\n");
        // The proxy closes after answering an HTTP/1.0 request; a 10 s wait would mean it did not.
        let started = Instant::now();
        let answer = raw(proxy.addr(), request.as_bytes(), Duration::from_secs(10)).await;
        assert!(started.elapsed() < Duration::from_secs(9), "not closed");
        let answers = parse_wire(&answer);
        assert_eq!(answers.len(), 1, "{}", String::from_utf8_lossy(&answer));
        assert_eq!(answers[0].status, 200);
        let body: serde_json::Value = serde_json::from_slice(&answers[0].body).unwrap();
        assert_eq!(body["id"], SEED_IMAGE_ID);
        assert_still_serving(proxy).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_get_their_answers_in_order_on_one_connection() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions::plain()).await;
    let replay = hostile_replay(dir.path());
    let record = hostile_record(dir.path(), &fake.base_url(), &[]);
    let pipelined = format!(
        "GET /v2/images/{SEED_IMAGE_ID} HTTP/1.1\r\nHost: x\r\n\r\n\
         GET /v2/images/{UNKNOWN_IMAGE_ID} HTTP/1.1\r\nHost: x\r\n\r\n\
         GET /v2/schemas/image HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    for proxy in [&replay, &record] {
        let answer = raw(proxy.addr(), pipelined.as_bytes(), Duration::from_secs(10)).await;
        let answers = parse_wire(&answer);
        let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
        assert_eq!(
            statuses,
            [200, 404, 200],
            "{}",
            String::from_utf8_lossy(&answer)
        );
        let json =
            |i: usize| serde_json::from_slice::<serde_json::Value>(&answers[i].body).unwrap();
        assert_eq!(json(0)["id"], SEED_IMAGE_ID);
        assert!(json(1).to_string().contains(UNKNOWN_IMAGE_ID));
        assert_eq!(json(2)["name"], "image");
        assert_still_serving(proxy).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_vanish_mid_exchange_leave_the_proxy_serving_and_the_store_whole() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions {
        plain_http: true,
        delay: Some(Duration::from_millis(20)),
        ..Default::default()
    })
    .await;
    let replay = hostile_replay(dir.path());
    let record = hostile_record(dir.path(), &fake.base_url(), &[]);
    for proxy in [&replay, &record] {
        let mut vanishing = Vec::new();
        for n in 0..100 {
            let addr = proxy.addr();
            vanishing.push(tokio::spawn(async move {
                let mut stream = TcpStream::connect(addr).await.unwrap();
                let path = match n % 3 {
                    0 => format!("/v2/images/{SEED_IMAGE_ID}"),
                    1 => format!("/v2/images/vanished-{n}"),
                    _ => "/big".to_owned(),
                };
                let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
                let _ = stream.write_all(request.as_bytes()).await;
                if n % 2 == 0 {
                    // Read the first bytes of the answer, then go.
                    let mut buf = [0u8; 64];
                    let _ =
                        tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
                }
                if n % 4 < 2 {
                    let _ = stream.set_zero_linger();
                }
            }));
        }
        for task in vanishing {
            task.await.unwrap();
        }
        assert_still_serving(proxy).await;
    }
    assert!(
        record.terminate().success(),
        "SIGTERM still drains and flushes"
    );
    let (code, stderr) = run(&["export", "--store", "store", "--out", "out"], dir.path());
    assert_eq!(code, 0, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_clients_are_cut_when_idle_or_dripping_a_head_never_between_steady_requests() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = hostile_replay(dir.path()); // --header-read-timeout 1
    let request = format!("GET /v2/images/{SEED_IMAGE_ID} HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    // Ten requests 300 ms apart on one connection: 3 s in all, three timeouts' worth.
    let mut buf = vec![0u8; 64 * 1024];
    for i in 0..10 {
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut got = Vec::new();
        while parse_wire(&got).is_empty() {
            let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("request {i}: no answer"))
                .unwrap();
            assert!(n > 0, "request {i}: the connection was closed");
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(parse_wire(&got)[0].status, 200, "request {i}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Then idle: closed once the timeout passes.
    let idle = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await;
    assert!(
        matches!(idle, Ok(Ok(0)) | Ok(Err(_))),
        "an idle connection stayed open"
    );

    // A head sent one byte every 250 ms never completes within the timeout.
    let mut drip = TcpStream::connect(proxy.addr()).await.unwrap();
    let started = Instant::now();
    let mut cut = false;
    for byte in request.as_bytes() {
        if drip.write_all(&[*byte]).await.is_err() {
            cut = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let answer = tokio::time::timeout(Duration::from_secs(10), drip.read(&mut buf)).await;
    cut |= matches!(answer, Ok(Ok(0)) | Ok(Err(_)));
    assert!(
        cut,
        "a dripped head was served after {:?}",
        started.elapsed()
    );
    assert_still_serving(&proxy).await;
}

/// A client that shuts its side of the connection down once its request is sent (`nc -N`, a
/// socket's `shutdown(SHUT_WR)`) still gets its answer, with and without `Connection: close`,
/// for a hit and a miss in replay and for a forwarded request in record, which is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_half_closes_after_its_request_gets_its_answer_and_record_stores_it() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions::plain()).await;
    let replay = hostile_replay(dir.path());
    let record = hostile_record(dir.path(), &fake.base_url(), &[]);
    let half_closed = |proxy: &Running, path: String, close: &'static str| {
        let addr = proxy.addr();
        async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{close}\r\n");
            stream.write_all(request.as_bytes()).await.unwrap();
            stream.shutdown().await.unwrap();
            let mut out = Vec::new();
            tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out))
                .await
                .expect("the proxy answers and closes")
                .unwrap();
            let answers = parse_wire(&out);
            assert_eq!(
                answers.len(),
                1,
                "{path}: {}",
                String::from_utf8_lossy(&out)
            );
            answers[0].status
        }
    };
    let seed = format!("/v2/images/{SEED_IMAGE_ID}");
    for close in ["", "Connection: close\r\n"] {
        for _ in 0..5 {
            assert_eq!(half_closed(&replay, seed.clone(), close).await, 200);
            assert_eq!(
                half_closed(&replay, "/v2/images/nope".into(), close).await,
                599
            );
            assert_eq!(half_closed(&record, seed.clone(), close).await, 200);
        }
    }
    assert_still_serving(&replay).await;
    assert!(replay.terminate().success());
    assert!(record.terminate().success());
    let (code, listed, err) = run_with_stdout(&["ls", "--store", "store"], dir.path());
    assert_eq!(code, 0, "{err}");
    assert!(
        listed.contains(&seed),
        "the half-closed requests were recorded: {listed}"
    );
    fake.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tunnel_or_two_host_headers_are_refused_in_every_mode_and_never_forwarded_or_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions::plain()).await;
    let replay = hostile_replay(dir.path());
    let record = hostile_record(dir.path(), &fake.base_url(), &[]);
    let seed = format!("/v2/images/{SEED_IMAGE_ID}");
    // What a client sends with ims-vcr as its HTTPS_PROXY, the same with a path, and a request
    // naming two hosts (RFC 9112, 3.2): each in replay (seed is recorded there) and record.
    let requests = [
        (
            "CONNECT iam.myhuaweicloud.com:443 HTTP/1.1\r\nHost: iam.myhuaweicloud.com:443\r\n\r\n"
                .to_owned(),
            405,
            "CONNECT iam.myhuaweicloud.com:443 asks for a tunnel",
        ),
        (
            format!("CONNECT {seed} HTTP/1.1\r\nHost: x\r\n\r\n"),
            405,
            "HTTPS_PROXY",
        ),
        (
            format!("GET {seed} HTTP/1.1\r\nHost: x\r\nHost: evil.example\r\n\r\n"),
            400,
            "more than one Host header",
        ),
        (
            format!("GET {seed} HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n"),
            400,
            "more than one Host header",
        ),
        // An empty first one is not taken for a missing one (whose place the listener takes).
        (
            format!("GET {seed} HTTP/1.1\r\nHost:\r\nHost: evil.example\r\n\r\n"),
            400,
            "more than one Host header",
        ),
        // A target that is no path is named as sent (`*`), or as the host it names.
        (
            "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(),
            400,
            "request target \\\"*\\\" is not a path",
        ),
        (
            "GET example.com:443 HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(),
            400,
            "request target \\\"example.com:443\\\" is not a path",
        ),
        // A credential in a CONNECT's target is not repeated in the answer.
        (
            format!("CONNECT {seed};token=Zq81tokSECRET HTTP/1.1\r\nHost: x\r\n\r\n"),
            405,
            "asks for a tunnel",
        ),
    ];
    for proxy in [&replay, &record] {
        for (request, status, says) in &requests {
            let answer = raw(proxy.addr(), request.as_bytes(), Duration::from_secs(5)).await;
            let text = String::from_utf8_lossy(&answer);
            let wire = parse_wire(&answer);
            assert_eq!(
                wire.first().map(|a| a.status),
                Some(*status),
                "{request:?}: {text}"
            );
            assert!(text.contains(says), "{request:?}: {text}");
            assert!(text.contains("x-ims-vcr: error"), "{text}");
            assert!(!text.contains("Zq81tokSECRET"), "{text}");
            if *status == 405 {
                assert!(
                    text.to_ascii_lowercase().contains("\r\nallow: get,"),
                    "{text}"
                );
            }
        }
        assert_still_serving(proxy).await;
    }
    // Nothing reached the upstream but the seed asked for by `assert_still_serving`, nothing
    // was recorded but it, and replay counted no miss.
    let forwarded: Vec<String> = fake
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path_and_query))
        .collect();
    assert_eq!(forwarded, [format!("GET {seed}")], "{forwarded:?}");
    let stats = get(&format!("{}/__ims-vcr/stats", replay.uri)).await.json();
    assert_eq!(stats["misses"], 0, "{stats}");
    assert!(record.terminate().success());
    let (code, listed, err) = run_with_stdout(&["ls", "--store", "store"], dir.path());
    assert_eq!(code, 0, "{err}");
    assert!(
        !listed.contains("CONNECT") && listed.contains(&seed),
        "{listed}"
    );
    fake.stop().await;
}

/// An upstream answering every request on a connection with `size` bytes of `application/octet-stream`
/// (an image's data): raw HTTP/1.1, so nothing but the bytes is timed.
async fn upstream_of_large_answers(size: usize) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let Ok(n) = stream.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    head.extend_from_slice(&buf[..n]);
                    if head.windows(4).any(|w| w == b"\r\n\r\n") {
                        head.clear();
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {size}\r\n\r\n"
                        );
                        let mut bytes = answer.into_bytes();
                        bytes.resize(bytes.len() + size, b'i');
                        if stream.write_all(&bytes).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

/// One HTTP/2 frame's header and payload.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut frame = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    frame.extend_from_slice(&[kind, flags]);
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// A client reading a long answer slowly over HTTP/2, with the large window curl gives (10 MB
/// and more): a PING the proxy sends waits behind megabytes of the answer, so a PING timeout
/// cut it though it took every byte. It gets the whole answer, however short the
/// header-read timeout (1 s here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_http2_reader_with_a_large_window_gets_the_whole_answer() {
    const SIZE: usize = 3 * 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let upstream = upstream_of_large_answers(SIZE).await;
    let proxy = Running::start(
        &[
            "passthrough",
            "--upstream",
            &upstream,
            "--listen",
            "0",
            "--header-read-timeout",
            "1",
        ],
        dir.path(),
    );
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(32 * 1024).unwrap();
    let mut stream = socket.connect(proxy.addr()).await.unwrap();
    // The preface; a stream window as large as HTTP/2 allows, and the connection's too.
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend(h2_frame(4, 0, 0, &[0, 4, 0x7f, 0xff, 0xff, 0xff]));
    hello.extend(h2_frame(8, 0, 0, &(0x7fff_ffffu32 - 65_535).to_be_bytes()));
    // GET: `:method GET`, `:scheme http` (static table), `:path` and `:authority` as literals.
    let path = b"/v2/images/big/file";
    let authority = proxy.addr().to_string();
    let mut block = vec![0x82, 0x86, 0x04, path.len() as u8];
    block.extend_from_slice(path);
    block.extend_from_slice(&[0x01, authority.len() as u8]);
    block.extend_from_slice(authority.as_bytes());
    hello.extend(h2_frame(1, 0x4 | 0x1, 1, &block));
    stream.write_all(&hello).await.unwrap();
    // Read about 800 KB/s: 16 KiB every 20 ms, so the 3 MiB answer takes about four seconds,
    // four header-read timeouts.
    let (mut got, mut data, mut ended) = (Vec::new(), 0usize, false);
    let mut buf = vec![0u8; 16 * 1024];
    let started = Instant::now();
    while !ended {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{data} bytes in a minute"
        );
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("the proxy sends the answer")
            .unwrap();
        assert!(
            n > 0,
            "the connection was closed after {data} of {SIZE} bytes: {}",
            proxy.log()
        );
        got.extend_from_slice(&buf[..n]);
        while got.len() >= 9 {
            let length = u32::from_be_bytes([0, got[0], got[1], got[2]]) as usize;
            if got.len() < 9 + length {
                break;
            }
            let (kind, flags) = (got[3], got[4]);
            let payload = got[9..9 + length].to_vec();
            got.drain(..9 + length);
            match kind {
                0 => {
                    data += length;
                    ended = flags & 0x1 != 0;
                }
                1 => assert!(payload.first() == Some(&0x88), "not a 200: {payload:?}"),
                3 | 7 => {
                    panic!("the proxy ended the stream (frame type {kind}) after {data} bytes")
                }
                4 if flags & 0x1 == 0 => stream.write_all(&h2_frame(4, 0x1, 0, &[])).await.unwrap(),
                6 if flags & 0x1 == 0 => stream
                    .write_all(&h2_frame(6, 0x1, 0, &payload))
                    .await
                    .unwrap(),
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(data, SIZE);
}

/// The header-read timeout bounds a pause in a request body, not the whole body: a client
/// uploading slowly but steadily (here 1 KB in 100 bytes every 250 ms, 2.5 s against a 1 s
/// timeout) gets its answer, where it got `408`; one that stops sending gets `408`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_slowly_but_steadily_is_read_and_one_that_stops_gets_408() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = hostile_replay(dir.path()); // --header-read-timeout 1 --max-body 1024
    for stops in [false, true] {
        let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
        let head = "POST /v2/images HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
        stream.write_all(head.as_bytes()).await.unwrap();
        let sent = if stops { 3 } else { 10 };
        for _ in 0..sent {
            tokio::time::sleep(Duration::from_millis(250)).await;
            stream.write_all(&[b' '; 100]).await.unwrap();
        }
        let mut got = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        while parse_wire(&got).is_empty() {
            let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
                .await
                .expect("an answer")
                .unwrap();
            assert!(n > 0, "closed without an answer (stops: {stops})");
            got.extend_from_slice(&buf[..n]);
        }
        let answer = &parse_wire(&got)[0];
        match stops {
            // Replay: a body nothing recorded is a miss, once it is all read.
            false => assert_eq!(answer.status, 599, "{}", String::from_utf8_lossy(&got)),
            true => {
                assert_eq!(answer.status, 408, "{}", String::from_utf8_lossy(&got));
                let text = String::from_utf8_lossy(&answer.body);
                assert!(text.contains("stopped arriving"), "{text}");
            }
        }
    }
    assert_still_serving(&proxy).await;
}
