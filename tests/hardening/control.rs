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
