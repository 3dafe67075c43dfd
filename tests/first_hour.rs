//! What trips a new user in the first hour: each test is one trap, checked for every command or
//! flag of its kind (reset and `--fail-on-unused`, folders that are not stores, side effects of a
//! failed start, `.gitignore`, exit codes, import, record-time warnings, the miss body, the default
//! source, drift set-up problems, and the small print).

use std::path::Path;

use crate::util::*;

/// Paths a first session records (five requests, one of them polled).
fn five_paths() -> Vec<String> {
    vec![
        format!("/v2/images/{SEED_IMAGE_ID}"),
        format!("/v2/images/{UNKNOWN_IMAGE_ID}"),
        format!("/v2/images/{POLLING_IMAGE_ID}"),
        "/v2/schemas/image".to_owned(),
        "/v2".to_owned(),
    ]
}

/// Records [`five_paths`] into `store` in-process.
async fn record_five(store: &Path) {
    let fake = FakeIms::start(FakeOptions::default()).await;
    let proxy = recorder(&fake, store).await;
    for path in five_paths() {
        let reply = get(&format!("{}{path}", proxy.uri())).await;
        assert_eq!(reply.header("x-ims-vcr"), Some("recorded"), "{path}");
    }
    proxy.shutdown().await.unwrap();
    fake.stop().await;
}

// #2: a reset restarts the cursors; it does not make played recordings "unused".

#[tokio::test]
async fn first_hour_reset_rewinds_cursors_but_played_recordings_are_not_unused() {
    let dir = tempfile::tempdir().unwrap();
    record_five(&dir.path().join("store")).await;
    let proxy = Running::start(
        &[
            "replay",
            "--store",
            "store",
            "--listen",
            "0",
            "--fail-on-unused",
        ],
        dir.path(),
    );
    for path in five_paths() {
        let reply = get(&format!("{}{path}", proxy.uri)).await;
        assert_eq!(reply.header("x-ims-vcr"), Some("hit"), "{path}");
    }
    let reset = send("POST", &format!("{}/__ims-vcr/reset", proxy.uri), &[], b"").await;
    assert_eq!(reset.json()["reset"], 5);
    let stats = get(&format!("{}/__ims-vcr/stats", proxy.uri)).await.json();
    assert_eq!(stats["unused"], 0, "{stats}");
    // The cursor did go back: the polled image starts over.
    let polled = get(&format!("{}/v2/images/{POLLING_IMAGE_ID}", proxy.uri)).await;
    assert_eq!(polled.json()["status"], "queued");
    let (status, log) = {
        proxy.signal("-TERM");
        proxy.wait_with_log()
    };
    assert!(status.success(), "{log}");
    assert!(log.contains("0 unused recordings"), "{log}");
}
