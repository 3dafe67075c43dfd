//! Secrets (the proxy's AK/SK and token, the client's credentials and cookies) never reach a log
//! or an answer, on success and on every failure path.

use crate::util::*;

const PROXY_AK: &str = "PROXYAKHARDENING0123";
const PROXY_SK: &str = "proxy-sk-hardening-5b4a39281706";
const PROXY_STS: &str = "proxy-security-token-hardening-77aa";
const CLIENT_TOKEN: &str = "client-x-auth-token-hardening-3c2b1a";
const CLIENT_AK: &str = "CLIENTAKHARDENING987";
const CLIENT_SIGNATURE: &str = "5f1d0c2b3a49586776859403a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3";
const CLIENT_COOKIE: &str = "cookie-secret-hardening-6e5d4c";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_logs_or_answers_on_success_and_failure_paths() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions::plain()).await;
    let env = [
        ("HUAWEICLOUD_SDK_AK", PROXY_AK),
        ("HUAWEICLOUD_SDK_SK", PROXY_SK),
        ("HUAWEICLOUD_SDK_SECURITY_TOKEN", PROXY_STS),
        ("RUST_LOG", "debug"),
    ];
    let authorization = format!(
        "SDK-HMAC-SHA256 Access={CLIENT_AK}, SignedHeaders=host;x-sdk-date, Signature={CLIENT_SIGNATURE}"
    );
    let cookie = format!("session={CLIENT_COOKIE}");
    let headers = [
        ("x-auth-token", CLIENT_TOKEN),
        ("authorization", authorization.as_str()),
        ("cookie", cookie.as_str()),
        ("x-sdk-date", "20261127T000000Z"),
    ];
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let down = format!("http://127.0.0.1:{closed_port}");
    let (drip, _) = raw_upstream(|_| Misbehaviour::Drip).await;
    let mut seen = Vec::new();
    let mut logs = Vec::new();

    // The drip needs the upstream timeout to end it; the fake gets ten times as long, so a
    // loaded CI machine does not turn its answer into a timeout.
    let upstreams = [
        (fake.base_url(), "recorded", "10"),
        (down, "connect", "1"),
        (drip, "timeout", "1"),
    ];
    for (n, (upstream, outcome, timeout)) in upstreams.iter().enumerate() {
        let dir = dir.path().join(format!("run-{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        let args = [
            "record",
            "--upstream",
            upstream,
            "--upstream-timeout",
            timeout,
            "--listen",
            "0",
            "--store",
            "store",
        ];
        let proxy = Running::start_with_env(&args, &dir, &env);
        for id in [SEED_IMAGE_ID, UNKNOWN_IMAGE_ID] {
            let reply = send(
                "GET",
                &format!("{}/v2/images/{id}", proxy.uri),
                &headers,
                b"",
            )
            .await;
            let got = reply.header("x-ims-vcr").unwrap().to_owned();
            let kind = reply.json()["ims_vcr"]["kind"].as_str().map(str::to_owned);
            assert!(
                got == *outcome || kind.as_deref() == Some(outcome),
                "{reply:?}"
            );
            seen.push(reply);
        }
        let log = proxy.log();
        assert!(proxy.terminate().success());
        logs.push(log);
        if n == 0 {
            // Replay the recording: a hit and a miss, still sending credentials.
            let replay = Running::start_with_env(
                &["replay", "--store", "store", "--listen", "0"],
                &dir,
                &env,
            );
            for id in [SEED_IMAGE_ID, "not-recorded"] {
                let url = format!("{}/v2/images/{id}", replay.uri);
                seen.push(send("GET", &url, &headers, b"").await);
            }
            assert_eq!(seen.last().unwrap().status, 599);
            logs.push(replay.log());
        }
    }
    assert!(fake.requests().iter().any(|r| {
        r.headers
            .iter()
            .any(|(n, v)| n == "authorization" && v.contains(PROXY_AK))
    }));
    for secret in [
        PROXY_AK,
        PROXY_SK,
        PROXY_STS,
        CLIENT_TOKEN,
        CLIENT_AK,
        CLIENT_SIGNATURE,
        CLIENT_COOKIE,
    ] {
        for reply in &seen {
            let text = format!(
                "{:?} {}",
                reply.headers,
                String::from_utf8_lossy(&reply.body)
            );
            assert!(!text.contains(secret), "{secret} in an answer: {text}");
        }
        for log in &logs {
            assert!(!log.contains(secret), "{secret} in a log:\n{log}");
            assert!(!log.contains("panicked"), "{log}");
        }
    }
}
