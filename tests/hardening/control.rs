//! The control API against a web page in the user's browser: DNS rebinding and cross-site
//! simple requests are refused, and nothing they ask for happens.

use crate::util::*;

#[tokio::test]
async fn a_dns_rebinding_read_and_a_cross_site_mode_switch_are_refused_and_change_nothing() {
    let (_dir, _store, _fake, proxy) = fake_and_recorder(FakeOptions::plain()).await;
    let stats = format!("{}/__ims-vcr/stats", proxy.uri());
    let rebound = send("GET", &stats, &[("host", "evil.example:9696")], b"").await;
    assert_eq!(rebound.status, 403, "{}", rebound.text());
    assert!(rebound.text().contains("DNS-rebinding"));

    let switch = format!("{}/__ims-vcr/mode?mode=passthrough", proxy.uri());
    let cross_site = send("POST", &switch, &[("origin", "https://evil.example")], b"").await;
    assert_eq!(cross_site.status, 403, "{}", cross_site.text());
    let form = send(
        "POST",
        &switch,
        &[("content-type", "text/plain")],
        b"mode=passthrough",
    )
    .await;
    assert_eq!(form.status, 403, "{}", form.text());
    let mode = get(&format!("{}/__ims-vcr/mode", proxy.uri())).await;
    assert_eq!(
        mode.json()["mode"],
        "record",
        "a refused switch changed the mode"
    );

    // The same switch from a script is served.
    let scripted = send("POST", &switch, &[], b"").await;
    assert_eq!(scripted.status, 200, "{}", scripted.text());
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_client_asking_for_random_paths_keeps_a_bounded_miss_list_and_every_miss_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = cassette_replayer(&shipped_cassettes(dir.path())).await;
    let n = ims_vcr::proxy::MAX_TRACKED_MISSES + 50;
    for i in 0..n {
        let reply = get(&format!("{}/v2/images/random-{i}", proxy.uri())).await;
        assert_eq!(reply.status, 599);
    }
    let misses = get(&format!("{}/__ims-vcr/misses", proxy.uri())).await;
    let listed = misses.json().as_array().unwrap().len();
    assert_eq!(listed, n - 50, "the miss list is capped");
    let summary = proxy.shutdown().await.unwrap();
    assert_eq!(summary.miss_count(), n as u64, "every miss is counted");
    assert_eq!(summary.untracked_misses, 50);
}
