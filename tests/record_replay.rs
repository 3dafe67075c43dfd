//! Record through the proxy against the fake IMS, then replay with the upstream gone.

use ims_vcr::ProxyServer;
use ims_vcr::replay::tape::Sequence;

use crate::util::*;

/// Paths a real client touches, including errors (they are part of the contract).
fn contract_paths() -> Vec<String> {
    let mut paths = vec![
        format!("/v2/images/{SEED_IMAGE_ID}"),
        format!("/v2/images/{UNKNOWN_IMAGE_ID}"),
        "/v2/schemas/image".to_string(),
        "/".to_string(),
        "/v2".to_string(),
        "/v2/images?owner=1bed856811654c1cb661a6ca845ebc77&limit=10".to_string(),
    ];
    for status in [400, 401, 403, 500, 503] {
        paths.push(format!("/v2/images/{}", error_image_id(status)));
    }
    paths
}

#[tokio::test]
async fn replay_gives_the_recorded_status_headers_and_exact_body_with_the_upstream_stopped() {
    let (_dir, store, fake, proxy) = fake_and_recorder(FakeOptions::default()).await;
    let recorder_uri = proxy.uri();
    let mut live = Vec::new();
    for path in contract_paths() {
        let reply = get(&format!("{}{path}", proxy.uri())).await;
        assert_eq!(reply.header("x-ims-vcr"), Some("recorded"), "{path}");
        live.push((path, reply));
    }
    proxy.shutdown().await.unwrap();
    fake.stop().await;

    let replay = replayer(&store).await;
    for (path, recorded) in &live {
        let replayed = get(&format!("{}{path}", replay.uri())).await;
        assert_eq!(replayed.status, recorded.status, "{path}");
        // Upstream URLs in bodies (the version document's links) point at whichever proxy served them.
        let served = |r: &Reply, uri: &str| String::from_utf8_lossy(&r.body).replace(uri, "PROXY");
        assert_eq!(
            served(&replayed, &replay.uri()),
            served(recorded, &recorder_uri),
            "{path}: body differs"
        );
        if path.starts_with("/v2/images") {
            assert_eq!(replayed.body, recorded.body, "{path}: body differs");
        }
        assert_eq!(
            replayed.header("content-type"),
            recorded.header("content-type"),
            "{path}"
        );
        assert_eq!(
            replayed.headers_named("x-fake-repeat"),
            vec!["one", "two"],
            "{path}: repeated headers"
        );
        assert_eq!(
            replayed.header("retry-after"),
            recorded.header("retry-after"),
            "{path}"
        );
        assert_eq!(replayed.header("x-ims-vcr"), Some("hit"), "{path}");
    }
    let seed = get(&image_url(&replay, SEED_IMAGE_ID)).await;
    assert_eq!(seed.status, 200);
    assert_eq!(seed.json(), seed_image_json());
    let not_found = get(&image_url(&replay, UNKNOWN_IMAGE_ID)).await;
    assert_eq!(not_found.status, 404);
    assert_eq!(not_found.json()["error"]["code"], "IMG.0027");
}

#[tokio::test]
async fn replay_opens_no_connection_to_the_upstream() {
    let (_dir, store, fake, proxy) = fake_and_recorder(FakeOptions::default()).await;
    get(&image_url(&proxy, SEED_IMAGE_ID)).await;
    proxy.shutdown().await.unwrap();
    let before = fake.connections();

    let replay = replayer(&store).await;
    for id in [SEED_IMAGE_ID, UNKNOWN_IMAGE_ID, "not-recorded"] {
        get(&image_url(&replay, id)).await;
    }
    replay.shutdown().await.unwrap();

    assert_eq!(
        fake.connections(),
        before,
        "replay must never connect upstream, even on a miss"
    );
}

#[tokio::test]
async fn a_miss_is_a_599_marked_miss_naming_the_request_and_the_nearest_recordings() {
    let (_dir, store, _fake, proxy) = fake_and_recorder(FakeOptions::default()).await;
    get(&image_url(&proxy, SEED_IMAGE_ID)).await;
    proxy.shutdown().await.unwrap();

    let replay = replayer(&store).await;
    let wanted = "bc6bed6e-ba3a-4447-afcc-449174a3eb53";
    let reply = get(&format!("{}?b=2&a=1", image_url(&replay, wanted))).await;

    assert_eq!(reply.status, ims_vcr::MISS_STATUS);
    assert_eq!(reply.header("x-ims-vcr"), Some("miss"));
    let body = reply.json();
    assert_eq!(
        body["ims_vcr"]["request"],
        format!("GET /v2/images/{wanted}?a=1&b=2")
    );
    assert_eq!(
        body["ims_vcr"]["nearest"][0],
        format!("GET /v2/images/{SEED_IMAGE_ID}")
    );
    assert_eq!(body["error"]["code"], "IMS_VCR.MISS");
}

#[tokio::test]
async fn query_order_does_not_matter_when_matching() {
    let (_dir, store, _fake, proxy) = fake_and_recorder(FakeOptions::default()).await;
    let recorded = get(&format!("{}/v2/images?owner=nobody&limit=5", proxy.uri())).await;
    proxy.shutdown().await.unwrap();

    let replay = replayer(&store).await;
    let replayed = get(&format!("{}/v2/images?limit=5&owner=nobody", replay.uri())).await;
    assert_eq!(replayed.header("x-ims-vcr"), Some("hit"));
    assert_eq!(replayed.body, recorded.body);
}

#[tokio::test]
async fn gzip_from_the_upstream_is_stored_decoded_and_served_with_a_correct_length() {
    let (dir, store, fake, proxy) = fake_and_recorder(FakeOptions {
        gzip: true,
        ..Default::default()
    })
    .await;
    let gzip = [("accept-encoding", "gzip, deflate")];
    for url in [
        image_url(&proxy, SEED_IMAGE_ID),
        format!("{}/big", proxy.uri()),
    ] {
        let live = send("GET", &url, &gzip, b"").await;
        assert_eq!(live.header("content-encoding"), None, "{url}");
        assert_eq!(
            live.header("content-length"),
            Some(live.body.len().to_string().as_str()),
            "{url}"
        );
        live.json();
    }
    proxy.shutdown().await.unwrap();
    fake.stop().await;

    // The upstream really did compress: it saw our Accept-Encoding.
    let replay = replayer(&store).await;
    let reply = send("GET", &image_url(&replay, SEED_IMAGE_ID), &gzip, b"").await;
    assert_eq!(reply.header("content-encoding"), None);
    assert_eq!(
        reply.header("content-length"),
        Some(reply.body.len().to_string().as_str())
    );
    assert_eq!(reply.json(), seed_image_json());
    replay.shutdown().await.unwrap();

    let out = dir.path().join("out");
    export_store(&store, &out, None).unwrap();
    let cassette = all_files(&out)
        .into_iter()
        .find(|(p, _)| p.to_string_lossy().contains("bc6bed6e"))
        .unwrap()
        .1;
    let cassette: serde_json::Value = serde_json::from_slice(&cassette).unwrap();
    assert_eq!(
        cassette["answers"][0]["body"]["json"],
        seed_image_json(),
        "stored body is readable JSON"
    );
}

#[tokio::test]
async fn repeated_requests_replay_in_recorded_order_then_repeat_the_last() {
    let (_dir, store, fake, proxy) = fake_and_recorder(FakeOptions::default()).await;
    let mut recorded = Vec::new();
    for _ in 0..3 {
        recorded.push(get(&image_url(&proxy, POLLING_IMAGE_ID)).await.json()["status"].clone());
    }
    assert_eq!(recorded, ["queued", "saving", "active"]);
    proxy.shutdown().await.unwrap();
    fake.stop().await;

    let replay = replayer(&store).await;
    let mut replayed = Vec::new();
    for _ in 0..5 {
        replayed.push(get(&image_url(&replay, POLLING_IMAGE_ID)).await.json()["status"].clone());
    }
    assert_eq!(replayed, ["queued", "saving", "active", "active", "active"]);
}

#[tokio::test]
async fn a_recorded_304_is_served_only_to_the_conditional_request_that_got_it() {
    let (_dir, store, fake, proxy) = fake_and_recorder(FakeOptions::default()).await;
    let url = format!("{}/etagged", proxy.uri());
    let v1 = [("if-none-match", "\"v1\"")];
    assert_eq!(get(&url).await.status, 200);
    assert_eq!(send("GET", &url, &v1, b"").await.status, 304);
    proxy.shutdown().await.unwrap();
    fake.stop().await;

    let replay = replayer(&store).await;
    let url = format!("{}/etagged", replay.uri());
    // The plain GET keeps its 200 (it used to share one tape with the conditional one, and
    // repeat its 304: an empty body), the conditional one its 304, and another validator is
    // a miss, not the 304 of "v1".
    for _ in 0..2 {
        let plain = get(&url).await;
        assert_eq!(
            (plain.status, plain.json()["version"].as_str()),
            (200, Some("v1"))
        );
        assert_eq!(send("GET", &url, &v1, b"").await.status, 304);
    }
    let other = send("GET", &url, &[("if-none-match", "\"v2\"")], b"").await;
    assert_eq!(other.status, 599, "{}", other.text());
    // The miss says why: the validator differs from the nearest recording's.
    let diff = other.json()["ims_vcr"]["diff"].clone();
    assert!(
        diff.as_array()
            .unwrap()
            .iter()
            .any(|d| d["part"] == "header"
                && d["name"] == "if-none-match"
                && d["got"] == serde_json::json!(["\"v2\""])),
        "{diff}"
    );
}

#[tokio::test]
async fn a_new_recording_session_replaces_the_answers_of_the_requests_it_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let fake = FakeIms::start(FakeOptions::default()).await;
    for _ in 0..2 {
        let proxy = recorder(&fake, &store).await;
        get(&image_url(&proxy, SEED_IMAGE_ID)).await;
        get(&image_url(&proxy, SEED_IMAGE_ID)).await;
        proxy.shutdown().await.unwrap();
    }
    assert_eq!(
        stored_answers(&store),
        2,
        "the second session replaced the first one's two answers"
    );
}

#[tokio::test]
async fn the_store_survives_a_restart() {
    let (_dir, store, _fake, proxy) = fake_and_recorder(FakeOptions::default()).await;
    get(&image_url(&proxy, SEED_IMAGE_ID)).await;
    get(&format!("{}/v2/schemas/image", proxy.uri())).await;
    proxy.shutdown().await.unwrap();

    for _ in 0..2 {
        let replay = replayer(&store).await;
        assert_eq!(get(&image_url(&replay, SEED_IMAGE_ID)).await.status, 200);
        assert_eq!(
            get(&format!("{}/v2/schemas/image", replay.uri()))
                .await
                .status,
            200
        );
        replay.shutdown().await.unwrap();
    }
    assert_eq!(stored_answers(&store), 2);
}

#[tokio::test]
async fn the_proxy_rewrites_host_and_strips_hop_by_hop_headers_but_keeps_the_rest() {
    let (_dir, _, fake, proxy) = fake_and_recorder(FakeOptions::default()).await;
    let headers = [
        ("connection", "keep-alive, x-hop"),
        ("x-hop", "secret-hop"),
        ("te", "trailers"),
        ("x-project-id", "p1"),
        ("x-auth-token", "tok"),
    ];
    let reply = send(
        "GET",
        &format!("{}/headers-echo", proxy.uri()),
        &headers,
        b"",
    )
    .await;
    let seen: Vec<(String, String)> = serde_json::from_value(reply.json()).unwrap();
    let value = |name: &str| seen.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    assert_eq!(value("host"), Some(fake.addr().to_string()));
    assert_eq!(value("x-hop"), None);
    assert_eq!(value("te"), None);
    assert_eq!(value("connection"), None);
    assert_eq!(value("x-project-id").as_deref(), Some("p1"));
    assert_eq!(
        value("x-auth-token").as_deref(),
        Some("tok"),
        "credentials are forwarded, only never stored"
    );
}

#[tokio::test]
async fn requests_with_bodies_are_forwarded_and_matched_on_canonical_json() {
    let (_dir, store, fake, proxy) = fake_and_recorder(FakeOptions::plain()).await;
    let url = format!("{}/v2/images", proxy.uri());
    let recorded = send(
        "POST",
        &url,
        &[("content-type", "application/json")],
        br#"{"name":"a","min_disk":40}"#,
    )
    .await;
    assert_eq!(recorded.status, 200);
    assert_eq!(recorded.json()["body"]["name"], "a");
    proxy.shutdown().await.unwrap();
    fake.stop().await;

    let replay = replayer(&store).await;
    let same = send(
        "POST",
        &format!("{}/v2/images", replay.uri()),
        &[],
        b"{ \"min_disk\": 40, \"name\": \"a\" }",
    )
    .await;
    assert_eq!(same.header("x-ims-vcr"), Some("hit"));
    assert_eq!(same.body, recorded.body);
    let other = send(
        "POST",
        &format!("{}/v2/images", replay.uri()),
        &[],
        br#"{"name":"b"}"#,
    )
    .await;
    assert_eq!(other.header("x-ims-vcr"), Some("miss"));
}

#[tokio::test]
async fn the_shipped_cassettes_replay_the_seed_image_a_404_and_the_schema() {
    let cassettes = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cassettes");
    let replay = cassette_replayer(&cassettes).await;
    let seed = get(&image_url(&replay, SEED_IMAGE_ID)).await;
    assert_eq!(seed.status, 200);
    let body = seed.json();
    for field in [
        "id",
        "name",
        "status",
        "min_disk",
        "min_ram",
        "__os_version",
        "schema",
    ] {
        assert_eq!(body[field], seed_image_json()[field], "{field}");
    }
    assert_eq!(get(&image_url(&replay, UNKNOWN_IMAGE_ID)).await.status, 404);
    assert_eq!(
        get(&format!("{}/v2/schemas/image", replay.uri()))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_session_leaves_a_current_replay_pack_and_replay_reads_it_instead_of_the_store() {
    let (_dir, store, fake, proxy) = fake_and_recorder(FakeOptions::default()).await;
    let seed = get(&image_url(&proxy, SEED_IMAGE_ID)).await;
    assert_eq!(get(&image_url(&proxy, UNKNOWN_IMAGE_ID)).await.status, 404);
    proxy.shutdown().await.unwrap();
    fake.stop().await;
    let pack = store.join(ims_vcr::storage::snapshot::PACK_FILE);
    assert!(pack.is_file(), "the record session wrote no replay pack");

    let replay = replayer(&store).await;
    assert_eq!(
        get(&image_url(&replay, SEED_IMAGE_ID)).await.body,
        seed.body
    );
    replay.shutdown().await.unwrap();

    // Damage the seed's entry in the pack (not in the store): replay must be reading the pack,
    // and says so, naming the file; the other request is still served.
    let entry = format!(r#"{{"request":{{"method":"GET","path":"/v2/images/{SEED_IMAGE_ID}""#);
    let mut bytes = std::fs::read(&pack).unwrap();
    let at = bytes
        .windows(entry.len())
        .position(|w| w == entry.as_bytes())
        .expect("the seed's entry is in the pack");
    bytes[at] = b'#';
    std::fs::write(&pack, bytes).unwrap();
    let replay = replayer(&store).await;
    let broken = get(&image_url(&replay, SEED_IMAGE_ID)).await;
    assert_eq!(broken.status, 500);
    assert_eq!(broken.header("x-ims-vcr"), Some("error"));
    let message = broken.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains(&pack.display().to_string()), "{message}");
    assert_eq!(get(&image_url(&replay, UNKNOWN_IMAGE_ID)).await.status, 404);
    replay.shutdown().await.unwrap();

    // The damaged pack was deleted when its entry failed its checksum; replay writes a new one
    // from the store.
    assert!(!pack.exists(), "the damaged pack is kept");
    let replay = replayer(&store).await;
    assert_eq!(
        get(&image_url(&replay, SEED_IMAGE_ID)).await.body,
        seed.body
    );
    replay.shutdown().await.unwrap();
    assert!(pack.is_file());
}

#[tokio::test]
async fn a_store_without_its_pack_is_served_at_once_and_let_go_of_once_the_pack_is_rewritten() {
    let (_dir, store, fake, proxy) = fake_and_recorder(FakeOptions::default()).await;
    let seed = get(&image_url(&proxy, SEED_IMAGE_ID)).await;
    for n in 0..20 {
        get(&image_url(&proxy, &format!("image-{n:02}"))).await;
    }
    proxy.shutdown().await.unwrap();
    fake.stop().await;
    // As a recorder killed with -9 leaves it: no pack describes the store.
    let pack = store.join(ims_vcr::storage::snapshot::PACK_FILE);
    std::fs::remove_file(&pack).unwrap();

    let replay = replayer(&store).await;
    assert_eq!(
        get(&image_url(&replay, SEED_IMAGE_ID)).await.body,
        seed.body
    );
    // A miss is told its nearest recordings, read from the whole index.
    let miss = get(&image_url(&replay, "image-07x")).await;
    assert_eq!(miss.header("x-ims-vcr"), Some("miss"));
    assert_eq!(
        miss.json()["ims_vcr"]["nearest"][0],
        "GET /v2/images/image-07"
    );
    let stats = get(&format!("{}/__ims-vcr/stats", replay.uri()))
        .await
        .json();
    assert_eq!(stats["unused"], 20, "{stats}");
    // The pack is written and the store let go of while replay goes on serving: another
    // process may open it (here, this one).
    assert!(pack.is_file());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let reopened = loop {
        match ims_vcr::storage::store::Store::open_existing(&store) {
            Ok(reopened) => break reopened,
            Err(e) if std::time::Instant::now() < deadline => {
                assert!(e.to_string().contains("in use"), "{e}");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    drop(reopened);
    assert_eq!(
        get(&image_url(&replay, "image-03"))
            .await
            .header("x-ims-vcr"),
        Some("hit")
    );
    let summary = replay.shutdown().await.unwrap();
    assert_eq!(summary.unused.len(), 19, "{summary}");
}

/// A miss is diffed against the recording of its nearest request line that differs least, and
/// names each line once: a conditional request against the recording with the same
/// conditional header, not the one with another; a request `--sequence strict` played to its
/// end against itself (nothing to tell); a JSON body by the fields that differ, with the
/// SHA-256 its canonical form shows.
#[tokio::test]
async fn a_miss_is_diffed_against_the_recording_of_its_line_that_differs_least() {
    let dir = tempfile::tempdir().unwrap();
    let cassettes = dir.path().join("cassettes");
    std::fs::create_dir(&cassettes).unwrap();
    let answer = serde_json::json!({"status": 200, "headers": [["content-type", "application/json"]], "body": {"json": {"id": "abc"}}, "recorded_at": "2026-12-06T00:00:00Z", "latency_ms": 0});
    let write = |name: &str, request: serde_json::Value, answers: usize| {
        let cassette = serde_json::json!({"format": 1, "request": request, "answers": vec![answer.clone(); answers]});
        std::fs::write(cassettes.join(name), cassette.to_string()).unwrap();
    };
    let get_abc = |headers: serde_json::Value| serde_json::json!({"method": "GET", "path": "/v2/images/abc", "headers": headers});
    write("plain.json", get_abc(serde_json::json!([])), 2);
    write(
        "etag.json",
        get_abc(serde_json::json!([["if-none-match", "\"eabc\""]])),
        1,
    );
    let since = "Mon, 01 Jan 2024 00:00:00 GMT";
    write(
        "since.json",
        get_abc(serde_json::json!([["if-modified-since", since]])),
        1,
    );
    let sign_in = |name: &str, password: &str| serde_json::json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": name, "domain": {"name": "d"}, "password": password}}}}});
    let json = ("content-type", "application/json");
    write(
        "sign_in.json",
        serde_json::json!({"method": "POST", "path": "/v3/auth/tokens", "headers": [[json.0, json.1]], "body": {"json": sign_in("alice", "REDACTED")}}),
        1,
    );
    let replay = ProxyServer::builder()
        .replay()
        .cassettes(&cassettes)
        .sequence(Sequence::Strict)
        .start()
        .await
        .unwrap();
    let url = format!("{}/v2/images/abc", replay.uri());
    for _ in 0..2 {
        assert_eq!(get(&url).await.status, 200);
    }
    let exhausted = get(&url).await.json();
    assert_eq!(
        exhausted["ims_vcr"]["reason"], "sequence-exhausted",
        "{exhausted}"
    );
    assert_eq!(
        exhausted["ims_vcr"]["diff"],
        serde_json::json!([]),
        "{exhausted}"
    );
    let nearest = exhausted["ims_vcr"]["nearest"].as_array().unwrap().clone();
    assert_eq!(nearest[0], "GET /v2/images/abc", "{exhausted}");
    let mut distinct = nearest.clone();
    distinct.dedup();
    assert_eq!(distinct, nearest, "each line once: {exhausted}");

    let other = send("GET", &url, &[("if-none-match", "\"other\"")], b"")
        .await
        .json();
    assert_eq!(
        other["ims_vcr"]["diff"],
        serde_json::json!([{"part": "header", "name": "if-none-match", "recorded": ["\"eabc\""], "got": ["\"other\""]}]),
        "{other}"
    );

    let body = sign_in("bob", "another-password-1").to_string();
    let url = format!("{}/v3/auth/tokens", replay.uri());
    let miss = send("POST", &url, &[json], body.as_bytes()).await;
    assert_eq!(miss.header("x-ims-vcr"), Some("miss"));
    let miss = miss.json();
    let diff = &miss["ims_vcr"]["diff"];
    assert_eq!(diff.as_array().map(Vec::len), Some(1), "{miss}");
    assert_eq!(
        diff[0]["fields"],
        serde_json::json!([{"pointer": "/auth/identity/password/user/name", "recorded": "alice", "got": "bob"}]),
        "the password differs too, and is no credential to show: {miss}"
    );
    let got = diff[0]["got_sha256"].as_str().unwrap();
    let request = miss["ims_vcr"]["request"].as_str().unwrap();
    assert!(request.ends_with(&format!("body sha256:{got}")), "{miss}");
    assert!(!miss.to_string().contains("another-password-1"), "{miss}");
    replay.shutdown().await.unwrap();
}

/// What reaches the upstream leaves out what was addressed to the proxy or to one connection:
/// hop-by-hop headers, and `Expect: 100-continue` (the proxy read the whole body before it
/// forwards, so the upstream's `100 Continue` would answer nothing). The rest keep their order.
#[tokio::test]
async fn expect_and_hop_by_hop_headers_are_not_forwarded_and_the_rest_keep_their_order() {
    let (_dir, _store, fake, proxy) = fake_and_recorder(FakeOptions::default()).await;
    let reply = send(
        "POST",
        &format!("{}/v2/images", proxy.uri()),
        &[
            ("x-first", "1"),
            ("expect", "100-continue"),
            ("content-type", "application/json"),
            ("keep-alive", "timeout=5"),
            ("x-last", "2"),
        ],
        br#"{"name":"n"}"#,
    )
    .await;
    assert_ne!(reply.status, 502, "{}", reply.text());
    let seen = fake.requests().pop().unwrap();
    let names: Vec<&str> = seen.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        !names.contains(&"expect") && !names.contains(&"keep-alive"),
        "{names:?}"
    );
    let at = |name: &str| names.iter().position(|n| *n == name).unwrap();
    assert!(
        at("x-first") < at("content-type") && at("content-type") < at("x-last"),
        "{names:?}"
    );
    assert_eq!(seen.body, br#"{"name":"n"}"#);
    proxy.shutdown().await.unwrap();
}

/// An upload as python-requests or Go's `mime/multipart` sends it, with a new random boundary
/// every time: replay plays the recording whatever boundary the client drew (and whatever
/// password a part carries, which is masked), and a part with other content is a miss.
#[tokio::test]
async fn a_multipart_upload_replays_whatever_boundary_the_client_draws() {
    let dir = tempfile::tempdir().unwrap();
    let answer = br#"{"status":"queued"}"#;
    let canned = canned_upstream(
        [
            format!("HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", answer.len()).as_bytes(),
            answer,
        ]
        .concat(),
    )
    .await;
    let upload = |boundary: &str, file: &str, password: &str| {
        let body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\n{password}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.qcow2\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n{file}\r\n--{boundary}--\r\n"
        );
        (format!("multipart/form-data; boundary={boundary}"), body)
    };
    let record = [
        "record",
        "--upstream",
        &canned,
        "--listen",
        "0",
        "--store",
        "store",
    ];
    let proxy = Running::start(&record, dir.path());
    let (content_type, body) = upload(
        "9b1c2f3e4d5a69788796a5b4c3d2e1f0",
        "QFI-image-bytes",
        "pw-one-1234",
    );
    let url = format!("{}/v1/cloudimages/x/upload", proxy.uri);
    let reply = send(
        "POST",
        &url,
        &[("content-type", &content_type)],
        body.as_bytes(),
    )
    .await;
    assert_eq!(reply.header("x-ims-vcr"), Some("recorded"), "{reply:?}");
    assert!(proxy.terminate().success());

    let proxy = Running::start(&["replay", "--store", "store", "--listen", "0"], dir.path());
    let url = format!("{}/v1/cloudimages/x/upload", proxy.uri);
    let (content_type, body) = upload(
        "------------------------d1e2f3a4b5c6d7e8",
        "QFI-image-bytes",
        "pw-two-5678",
    );
    let reply = send(
        "POST",
        &url,
        &[("content-type", &content_type)],
        body.as_bytes(),
    )
    .await;
    assert_eq!(
        (reply.status, reply.header("x-ims-vcr")),
        (201, Some("hit")),
        "{reply:?}"
    );
    assert_eq!(reply.text().as_bytes(), answer);
    let (content_type, body) = upload(
        "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "other-image-bytes",
        "pw-one-1234",
    );
    let reply = send(
        "POST",
        &url,
        &[("content-type", &content_type)],
        body.as_bytes(),
    )
    .await;
    assert_eq!(reply.header("x-ims-vcr"), Some("miss"), "{reply:?}");
    assert!(proxy.terminate().success());
}

/// A store recorded by an ims-vcr from before multipart boundaries were keyed as one holds an
/// upload under the key of its body as sent: the same upload (its boundary the one recorded,
/// as a client with a fixed boundary sends it) still plays it.
#[tokio::test]
async fn a_multipart_upload_an_older_store_keyed_by_its_boundary_still_replays() {
    use ims_vcr::model::interaction::{Body, Encoded, Interaction};
    use ims_vcr::model::key::{MatchRules, RequestKey};
    let dir = tempfile::tempdir().unwrap();
    let boundary = "fixed-boundary-1234";
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nbytes\r\n--{boundary}--\r\n"
    );
    let mut request = crate::util::fixtures::request("POST", "/v1/cloudimages/x/upload");
    request.headers = vec![("content-type".into(), content_type.clone())];
    request.body = Body::from_bytes(body.as_bytes());
    // The older key: the body as sent, which is what the key reads with no boundary to key.
    let mut as_keyed_then = request.clone();
    as_keyed_then.headers = vec![("content-type".into(), "multipart/form-data".into())];
    let old_key = RequestKey::of_recorded(&MatchRules::default(), &as_keyed_then).unwrap();
    let answer =
        crate::util::fixtures::response(201, vec![], Body::from_bytes(br#"{"status":"queued"}"#));
    let store_path = dir.path().join("store");
    let store = ims_vcr::storage::store::Store::open(&store_path).unwrap();
    let interaction = Interaction {
        request,
        response: answer,
        redaction: None,
    };
    store
        .record_in_attempt(&old_key, Encoded::of(&interaction), true, 0)
        .await
        .unwrap();
    store.flush().await.unwrap();
    drop(store);
    let proxy = replayer(&store_path).await;
    let url = format!("{}/v1/cloudimages/x/upload", proxy.uri());
    let reply = send(
        "POST",
        &url,
        &[("content-type", &content_type)],
        body.as_bytes(),
    )
    .await;
    assert_eq!(
        (reply.status, reply.header("x-ims-vcr")),
        (201, Some("hit")),
        "{reply:?}"
    );
    proxy.shutdown().await.unwrap();
}
