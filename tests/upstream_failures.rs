//! Upstream down, TLS failure, timeout, connection cut mid-body: the client gets a 502 naming
//! what failed and where (credentials in the query masked), and nothing is stored.

use std::time::Duration;

use ims_vcr::ProxyServer;

use crate::util::*;

async fn assert_502_and_nothing_stored(
    proxy: ProxyServer,
    store: &std::path::Path,
    path: &str,
    kind: &str,
) {
    // Credentials in the query (any spelling) are masked in the message, as everywhere else.
    let path = format!("{path}?limit=1&token=SECRETQ1&access%5Ftoken=SECRETQ2&Password=SECRETQ3");
    let reply = get(&format!("{}{path}", proxy.uri())).await;
    assert_eq!(reply.status, 502, "{path}");
    assert!(!reply.text().contains("SECRETQ"), "{}", reply.text());
    assert!(reply.text().contains("token=REDACTED"), "{}", reply.text());
    assert_eq!(reply.header("x-ims-vcr"), Some("upstream-error"));
    let body = reply.json();
    assert_eq!(body["ims_vcr"]["kind"], kind, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1"),
        "names where: {body}"
    );
    proxy.shutdown().await.unwrap();
    assert_eq!(
        stored_answers(store),
        0,
        "nothing may be stored after a failed exchange"
    );
}

#[tokio::test]
async fn an_unreachable_upstream_gives_502_connect() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let fake = FakeIms::start(FakeOptions::default()).await;
    let config = upstream_for(&fake, dir.path());
    fake.stop().await;
    let proxy = ProxyServer::builder()
        .record(config)
        .store(&store)
        .start()
        .await
        .unwrap();
    assert_502_and_nothing_stored(proxy, &store, "/v2/images/x", "connect").await;
}

#[tokio::test]
async fn an_untrusted_certificate_gives_502_tls() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let fake = FakeIms::start(FakeOptions::default()).await;
    let mut config = upstream_for(&fake, dir.path());
    config.ca_file = None; // the fake's CA is not a public root
    let proxy = ProxyServer::builder()
        .record(config)
        .store(&store)
        .start()
        .await
        .unwrap();
    assert_502_and_nothing_stored(proxy, &store, "/v2/images/x", "tls").await;
}

#[tokio::test]
async fn a_slow_upstream_gives_502_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let fake = FakeIms::start(FakeOptions::default()).await;
    let mut config = upstream_for(&fake, dir.path());
    config.timeout = Duration::from_millis(500);
    let proxy = ProxyServer::builder()
        .record(config)
        .store(&store)
        .start()
        .await
        .unwrap();
    assert_502_and_nothing_stored(proxy, &store, "/slow", "timeout").await;
}

#[tokio::test]
async fn a_connection_cut_mid_body_gives_502_cut() {
    let (_dir, store, _fake, proxy) = fake_and_recorder(FakeOptions::default()).await;
    assert_502_and_nothing_stored(proxy, &store, "/cut", "cut").await;
}

#[tokio::test]
async fn a_plain_http_local_upstream_works() {
    let (_dir, store, _fake, proxy) = fake_and_recorder(FakeOptions::plain()).await;
    assert_eq!(
        get(&image_url(&proxy, SEED_IMAGE_ID)).await.json(),
        seed_image_json()
    );
    proxy.shutdown().await.unwrap();
    assert_eq!(stored_answers(&store), 1);
}
