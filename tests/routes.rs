//! Several upstreams behind one listener (`--route PREFIX=URL`): the longest whole-segment prefix
//! picks the upstream, each with its own CA; a request no route takes gets a 502 naming them;
//! every route's origin is pointed at the proxy in what is served, recorded and replayed.

use std::path::Path;

use ims_vcr::{ProxyServer, UpstreamConfig};

use crate::util::*;

/// A config for `fake` trusting its CA, written into a folder of its own (each fake has its CA).
fn config_in(fake: &FakeIms, dir: &Path, name: &str) -> UpstreamConfig {
    let sub = dir.join(name);
    std::fs::create_dir_all(&sub).unwrap();
    upstream_for(fake, &sub)
}

fn paths(fake: &FakeIms) -> Vec<String> {
    fake.requests()
        .into_iter()
        .map(|r| format!("{} {}", r.method, r.path_and_query))
        .collect()
}

#[tokio::test]
async fn each_request_goes_to_the_longest_matching_route_with_its_own_ca() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let ims = FakeIms::start(FakeOptions::default()).await;
    let other = FakeIms::start(FakeOptions::default()).await;
    let proxy = ProxyServer::builder()
        .record(config_in(&ims, dir.path(), "ims"))
        .route("/v2/images/", config_in(&other, dir.path(), "other"))
        .route("/v2/schemas", config_in(&other, dir.path(), "other2"))
        .store(&store)
        .start()
        .await
        .unwrap();
    assert_eq!(get(&image_url(&proxy, SEED_IMAGE_ID)).await.status, 200);
    assert_eq!(get(&format!("{}/v2/images", proxy.uri())).await.status, 200);
    assert_eq!(
        get(&format!("{}/v2/schemas/image", proxy.uri()))
            .await
            .status,
        200
    );
    // Whole segments only: `/v2/schemasX` is not under `/v2/schemas`.
    assert_eq!(
        get(&format!("{}/v2/schemasX", proxy.uri())).await.status,
        404
    );
    proxy.shutdown().await.unwrap();
    assert_eq!(
        paths(&other),
        [
            format!("GET /v2/images/{SEED_IMAGE_ID}"),
            "GET /v2/images".to_owned(),
            "GET /v2/schemas/image".to_owned()
        ]
    );
    assert_eq!(paths(&ims), ["GET /v2/schemasX"]);
}

#[tokio::test]
async fn a_request_no_route_takes_gets_a_502_naming_the_routes_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let fake = FakeIms::start(FakeOptions::default()).await;
    let proxy = ProxyServer::builder()
        .mode(ims_vcr::Mode::Record)
        .route("/v2/images", config_in(&fake, dir.path(), "ims"))
        .store(&store)
        .start()
        .await
        .unwrap();
    let reply = get(&format!("{}/v3/auth/tokens", proxy.uri())).await;
    assert_eq!(reply.status, 502, "{}", reply.text());
    assert_eq!(reply.header("x-ims-vcr"), Some("upstream-error"));
    let body = reply.json();
    assert_eq!(body["ims_vcr"]["kind"], "no-route");
    assert_eq!(body["ims_vcr"]["routes"][0]["prefix"], "/v2/images");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/v2/images="),
        "{body}"
    );
    assert_eq!(get(&image_url(&proxy, SEED_IMAGE_ID)).await.status, 200);
    proxy.shutdown().await.unwrap();
    assert_eq!(stored_answers(&store), 1);
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn every_routes_origin_is_pointed_at_the_proxy_when_recorded_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let ims = FakeIms::start(FakeOptions::default()).await;
    let other = FakeIms::start(FakeOptions::default()).await;
    let proxy = ProxyServer::builder()
        .record(config_in(&ims, dir.path(), "ims"))
        .route("/v2/images", config_in(&other, dir.path(), "other"))
        .store(&store)
        .start()
        .await
        .unwrap();
    // `other` echoes the body (re-serialised, so the escaped form comes back plain; the
    // JSON-escaped form is covered in `replay::prepared`): an answer of one route naming the
    // other route's upstream, as a service catalog does.
    let ims_origin = ims.base_url();
    let escaped = ims_origin.replace('/', "\\/");
    let body = format!(
        r#"{{"catalog":"{ims_origin}/v2","escaped":"{escaped}\/v2","own":"{}/x"}}"#,
        other.base_url()
    );
    let recorded = send(
        "POST",
        &format!("{}/v2/images", proxy.uri()),
        &[("content-type", "application/json")],
        body.as_bytes(),
    )
    .await;
    let other_origin = other.base_url();
    let expect = |proxy: &ProxyServer, text: &str| {
        let uri = proxy.uri();
        assert!(text.contains(&format!("{uri}/v2")), "{text}");
        assert!(text.contains(&format!("{uri}/x")), "{text}");
        assert!(
            !text.contains(&ims_origin) && !text.contains(&other_origin),
            "{text}"
        );
    };
    expect(&proxy, &recorded.text());
    // Versions document of the `/` route: its own origin, as before.
    let versions = get(&format!("{}/", proxy.uri())).await;
    expect_origin_only(&proxy, &versions.text(), &ims_origin);
    proxy.shutdown().await.unwrap();
    let (ims_url, other_url) = (ims.base_url(), other.base_url());
    ims.stop().await;
    other.stop().await;

    // Stored as received, with the route's other origins it mentions named.
    let exported = dir.path().join("cassettes");
    export_store(&store, &exported, None).unwrap();
    let text: String = all_files(&exported)
        .values()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert!(
        text.contains(&format!("\"upstream\": \"{other_url}\"")),
        "{text}"
    );
    let compact: String = text.split_whitespace().collect();
    assert!(
        compact.contains(&format!("\"other_upstreams\":[\"{ims_url}\"]")),
        "{text}"
    );

    // Replay needs no routes: the answer names the origins to rewrite.
    let replay = replayer(&store).await;
    let replayed = send(
        "POST",
        &format!("{}/v2/images", replay.uri()),
        &[("content-type", "application/json")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(replayed.header("x-ims-vcr"), Some("hit"));
    expect(&replay, &replayed.text());
    let summary = replay.shutdown().await.unwrap();
    assert_eq!(summary.miss_count(), 0, "{summary}");
}

fn expect_origin_only(proxy: &ProxyServer, text: &str, upstream: &str) {
    assert!(text.contains(&format!("{}/v2/", proxy.uri())), "{text}");
    assert!(!text.contains(upstream), "{text}");
}

#[test]
fn the_cli_takes_routes_with_their_own_cas_and_refuses_a_ca_without_a_route() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (ims, other) = rt.block_on(async {
        (
            FakeIms::start(FakeOptions::default()).await,
            FakeIms::start(FakeOptions::default()).await,
        )
    });
    let ims_ca = config_in(&ims, dir.path(), "ims").ca_file.unwrap();
    let other_ca = config_in(&other, dir.path(), "other").ca_file.unwrap();
    let (ims_url, other_url) = (ims.base_url(), other.base_url());
    let route = format!("/v2/images={other_url}");
    let route_ca = format!("/v2/images/={}", other_ca.display());
    let proxy = Running::start(
        &[
            "record",
            "--upstream",
            &ims_url,
            "--upstream-ca",
            ims_ca.to_str().unwrap(),
            "--route",
            &route,
            "--route-ca",
            &route_ca,
            "--listen",
            "0",
        ],
        dir.path(),
    );
    rt.block_on(async {
        assert_eq!(
            get(&format!("{}/v2/images/{SEED_IMAGE_ID}", proxy.uri))
                .await
                .status,
            200
        );
        assert_eq!(
            get(&format!("{}/v2/schemas/image", proxy.uri)).await.status,
            200
        );
    });
    assert!(proxy.terminate().success());
    assert_eq!(paths(&other), [format!("GET /v2/images/{SEED_IMAGE_ID}")]);
    assert_eq!(paths(&ims), ["GET /v2/schemas/image"]);

    // Only routes, no --upstream: fine. A --route-ca for no route: an error naming it.
    let (code, stderr) = run(
        &[
            "passthrough",
            "--route",
            &route,
            "--route-ca",
            "/v3=ca.pem",
            "--listen",
            "0",
        ],
        dir.path(),
    );
    assert_ne!(code, 0);
    assert!(
        stderr.contains("--route-ca /v3=ca.pem") && stderr.contains("/v2/images"),
        "{stderr}"
    );
    // Neither --upstream nor --route: a usage error naming both.
    let (code, stderr) = run(&["record", "--listen", "0"], dir.path());
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--upstream"), "{stderr}");
    let (code, stderr) = run(&["run", "--mode", "record", "--", "true"], dir.path());
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--upstream") && stderr.contains("--route"),
        "{stderr}"
    );
}

/// A token answer whose catalog names the upstream's port by another host (the upstream given
/// as `127.0.0.1`, the catalog saying another address) is warned about once, naming the origin
/// and the flag: a client following it would call past the proxy.
#[tokio::test]
async fn a_catalog_naming_the_upstream_by_another_host_is_warned_about_once() {
    use std::sync::{Arc, OnceLock};
    let port: Arc<OnceLock<u16>> = Arc::default();
    let known = port.clone();
    let up = scripted_upstream(move |_| {
        let port = known.get().copied().unwrap_or(0);
        let body = format!(
            r#"{{"token": {{"catalog": [{{"type": "image", "endpoints": [{{"url": "http://10.255.255.1:{port}"}}]}}]}}}}"#
        );
        http_answer("201 Created", &[("content-type", "application/json")], body.as_bytes())
    })
    .await;
    port.set(up.rsplit(':').next().unwrap().parse().unwrap())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let args = ["passthrough", "--upstream", &up, "--listen", "0"];
    let proxy = Running::start(&args, dir.path());
    for _ in 0..2 {
        let reply = send("POST", &format!("{}/v3/auth/tokens", proxy.uri), &[], b"{}").await;
        assert_eq!(reply.status, 201);
    }
    let log = proxy.log();
    assert!(proxy.terminate().success());
    let warning = format!("names http://10.255.255.1:{}", port.get().unwrap());
    assert_eq!(log.matches(&warning).count(), 1, "{log}");
    assert!(log.contains("--route PREFIX=http://10.255.255.1:"), "{log}");
}
