//! Export and import: deterministic bytes, all-or-nothing validation, file names that cannot
//! escape the output folder.

use std::path::Path;

use ims_vcr::formats::cassette;

use crate::util::*;

async fn record_some(store: &Path, dir: &Path) {
    let fake = FakeIms::start(FakeOptions::default()).await;
    let _ = dir;
    let proxy = recorder(&fake, store).await;
    for id in [
        SEED_IMAGE_ID,
        UNKNOWN_IMAGE_ID,
        POLLING_IMAGE_ID,
        POLLING_IMAGE_ID,
    ] {
        get(&image_url(&proxy, id)).await;
    }
    get(&format!("{}/v2/schemas/image", proxy.uri())).await;
    proxy.shutdown().await.unwrap();
    fake.stop().await;
}

fn export(store: &Path, out: &Path) -> cassette::ExportSummary {
    export_store(store, out, None).unwrap()
}

async fn import(store: &Path, dir: &Path) -> ims_vcr::Result<()> {
    import_dir(store, dir).await
}

#[tokio::test]
async fn export_import_export_is_byte_identical_and_export_is_stable() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    record_some(&store, dir.path()).await;

    let first = dir.path().join("first");
    let summary = export(&store, &first);
    assert_eq!((summary.files, summary.answers), (4, 5));
    export(&store, &first);
    let again = dir.path().join("again");
    export(&store, &again);
    assert_eq!(
        all_files(&first),
        all_files(&again),
        "two exports of one store differ"
    );

    let other = dir.path().join("other-store");
    import(&other, &first).await.unwrap();
    let second = dir.path().join("second");
    export(&other, &second);
    assert_eq!(
        all_files(&first),
        all_files(&second),
        "export → import → export changed bytes"
    );
}

#[tokio::test]
async fn cassettes_are_pretty_versioned_and_embed_json_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    record_some(&store, dir.path()).await;
    let out = dir.path().join("out");
    export(&store, &out);
    let (name, bytes) = all_files(&out)
        .into_iter()
        .find(|(p, _)| p.to_string_lossy().contains("5ee0a9b4"))
        .unwrap();
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains("\n  \"format\": 1,\n"), "{name:?}:\n{text}");
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["request"]["method"], "GET");
    assert_eq!(value["answers"].as_array().unwrap().len(), 2);
    assert_eq!(value["answers"][0]["body"]["json"]["status"], "queued");
    assert_eq!(value["answers"][1]["body"]["json"]["status"], "saving");
}

#[tokio::test]
async fn importing_a_folder_with_one_broken_file_changes_nothing_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    record_some(&store, dir.path()).await;
    let good = dir.path().join("good");
    export(&store, &good);

    // A folder with new valid cassettes plus one broken file.
    let mixed = dir.path().join("mixed");
    std::fs::create_dir(&mixed).unwrap();
    for (name, bytes) in all_files(&good) {
        let text = String::from_utf8(bytes)
            .unwrap()
            .replace("\"active\"", "\"killed\"");
        std::fs::write(mixed.join(name), text).unwrap();
    }
    std::fs::write(
        mixed.join("zz_broken.json"),
        br#"{"format":1,"request":{"method":"GET","path":"/x"},"answers":[{"status":"ok"}]}"#,
    )
    .unwrap();

    let before = all_files(&store);
    let before_export = dir.path().join("before");
    export(&store, &before_export);
    let err = import(&store, &mixed).await.unwrap_err().to_string();
    assert!(err.contains("zz_broken.json"), "{err}");
    assert!(err.contains("status"), "names the field: {err}");

    let after_export = dir.path().join("after");
    export(&store, &after_export);
    assert_eq!(
        all_files(&before_export),
        all_files(&after_export),
        "a failed import changed the store"
    );
    assert!(!before.is_empty());
}

#[tokio::test]
async fn a_hostile_request_path_cannot_place_a_file_outside_the_export_folder() {
    let (dir, store, _fake, proxy) = fake_and_recorder(FakeOptions::plain()).await;
    for target in [
        "/../../../escaped",
        "/v2/..%2F..%2F..%2Fescaped2",
        "/./.hidden",
        "/%2e%2e/%2e%2e/escaped3",
    ] {
        let raw = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let answer = raw_exchange(proxy.address(), raw.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 "), "{target}: {answer}");
    }
    proxy.shutdown().await.unwrap();

    let parent = dir.path().join("a").join("b");
    let out = parent.join("out");
    let summary = export(&store, &out);
    assert!(summary.files >= 1);
    for (path, _) in all_files(dir.path().join("a").as_path()) {
        assert_eq!(
            path.parent().unwrap(),
            Path::new("b/out"),
            "{path:?} escaped the export folder"
        );
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.starts_with('.'), "{name}");
    }
}

#[tokio::test]
async fn a_cassette_folder_replays_without_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    record_some(&store, dir.path()).await;
    let out = dir.path().join("out");
    export(&store, &out);
    let replay = cassette_replayer(&out).await;
    assert_eq!(
        get(&image_url(&replay, SEED_IMAGE_ID)).await.json(),
        seed_image_json()
    );
    let statuses: Vec<_> = futures_free_sequence(&replay).await;
    assert_eq!(statuses, ["queued", "saving", "saving"]);
}

async fn futures_free_sequence(replay: &ims_vcr::ProxyServer) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..3 {
        out.push(
            get(&image_url(replay, POLLING_IMAGE_ID)).await.json()["status"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    out
}

#[tokio::test]
async fn recording_the_same_answers_again_writes_byte_identical_cassettes() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = dir.path().join("cassettes");
    let fake = FakeIms::start(FakeOptions::default()).await;
    let mut exports = Vec::new();
    for session in 0..2 {
        if session == 1 {
            // Another second on the clock: another `recorded_at`, and another request id.
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        }
        let proxy = recorder(&fake, &store).await;
        let reply = get(&image_url(&proxy, SEED_IMAGE_ID)).await;
        // The client recording gets the live request id and date.
        let live_id = reply.header("x-request-id").unwrap().to_owned();
        assert!(live_id.starts_with("fake-ims-"), "{live_id}");
        assert!(reply.header("date").is_some());
        // An API gateway's error body carries a request id of its own, new every time.
        let throttled = get(&image_url(&proxy, &error_image_id(429))).await;
        assert_eq!(throttled.status, 429);
        assert!(
            throttled.json()["request_id"].is_string(),
            "{}",
            throttled.text()
        );
        proxy.shutdown().await.unwrap();
        let summary = export_store(&store, &out, None).unwrap();
        assert_eq!(summary.unchanged, 2 * session, "session {session}");
        exports.push(all_files(&out));
    }
    fake.stop().await;
    assert_eq!(exports[0], exports[1], "re-recording churned the cassette");
    let only = exports[0]
        .iter()
        .find(|(path, _)| path.to_string_lossy().contains(SEED_IMAGE_ID))
        .map(|(_, bytes)| bytes)
        .unwrap();
    let cassette: serde_json::Value = serde_json::from_slice(only).unwrap();
    let headers = cassette["answers"][0]["headers"].to_string();
    assert!(!headers.contains("\"date\""), "{headers}");
    assert!(
        headers.contains("ims-vcr-"),
        "a stable request id: {headers}"
    );
}

#[tokio::test]
async fn python_style_json_is_exported_as_readable_json_and_replays_byte_for_byte() {
    // What Glance and Keystone send: `json.dumps` defaults, `", "`/`": "` and `\uXXXX`.
    let body = r#"{"id": "bc6bed6e", "name": "caf\u00e9", "tags": ["a", "b"], "size": 1.50}"#;
    let answer = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    let upstream = canned_upstream(answer.into_bytes()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let proxy = recording_through(ims_vcr::UpstreamConfig::new(upstream), &store).await;
    let live = get(&format!("{}/v2/images/bc6bed6e", proxy.uri())).await;
    assert_eq!(live.body, body.as_bytes());
    proxy.shutdown().await.unwrap();

    let out = dir.path().join("cassettes");
    export(&store, &out);
    let files = all_files(&out);
    let (_, file) = files.iter().next().unwrap();
    let text = String::from_utf8(file.clone()).unwrap();
    let cassette: serde_json::Value = serde_json::from_str(&text).unwrap();
    let stored = &cassette["answers"][0]["body"]["json_python"];
    assert_eq!(stored["name"], "caf\u{e9}", "{text}");
    assert!(
        text.contains("\"tags\": [\n"),
        "the body is pretty JSON in the file, not one escaped string: {text}"
    );

    let other = dir.path().join("other");
    import(&other, &out).await.unwrap();
    let proxy = replayer(&other).await;
    let replayed = get(&format!("{}/v2/images/bc6bed6e", proxy.uri())).await;
    assert_eq!(replayed.header("x-ims-vcr"), Some("hit"));
    assert_eq!(replayed.body, body.as_bytes(), "{}", replayed.text());
    proxy.shutdown().await.unwrap();
}

/// An export whose cassette name (or session folder) is taken by what it must not write through
/// or replace, a symlink to a real file or a folder, writes nothing: it fails naming it with the
/// folder as it was, not half updated (it used to write the cassettes before it).
#[tokio::test]
async fn an_export_blocked_at_one_cassette_writes_none_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    record_some(&store, dir.path()).await;
    let first = dir.path().join("first");
    export(&store, &first);
    let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(&first)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    // The last name in order: every other cassette would be written before it.
    let last = names.last().unwrap().clone();
    let outside = dir.path().join("outside.txt");
    std::fs::write(&outside, "not a cassette").unwrap();
    for blocker in ["symlink", "folder"] {
        let out = dir.path().join(format!("out-{blocker}"));
        std::fs::create_dir(&out).unwrap();
        match blocker {
            "symlink" => std::os::unix::fs::symlink(&outside, out.join(&last)).unwrap(),
            _ => std::fs::create_dir(out.join(&last)).unwrap(),
        }
        let error = export_store(&store, &out, None).unwrap_err().to_string();
        assert!(
            error.contains(&*last.to_string_lossy()) && error.contains("nothing was written"),
            "{blocker}: {error}"
        );
        let left: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            left,
            std::slice::from_ref(&last),
            "{blocker}: only the blocker is there"
        );
    }
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "not a cassette");
}

/// An export that cannot write one of its cassettes (a full disk; here a file-size limit the
/// largest cassette is over) leaves the folder exactly as the last export left it: every
/// changed cassette is written under a temporary name first, and renamed into place only once
/// all are. No temporary file is left.
#[test]
fn an_export_that_cannot_write_a_cassette_leaves_the_folder_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    shipped_cassettes(dir.path());
    let (code, stderr) = run(&["import", "--store", "s", "cassettes"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    let (code, stderr) = run(&["export", "--store", "s", "--out", "out"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    let before = all_files(&dir.path().join("out"));
    // Every answer changes (a header more), so every cassette is to be written again.
    let changed = dir.path().join("changed");
    std::fs::create_dir(&changed).unwrap();
    for (name, bytes) in all_files(&dir.path().join("cassettes")) {
        let mut cassette: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        for answer in cassette["answers"].as_array_mut().unwrap() {
            answer["headers"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!(["x-changed", "1"]));
            // The schema's cassette grows past what the export below may write.
            if name.to_string_lossy().contains("schemas") {
                answer["body"]["json"]["padding"] = "x".repeat(600_000).into();
            }
        }
        std::fs::write(
            changed.join(name),
            serde_json::to_vec_pretty(&cassette).unwrap(),
        )
        .unwrap();
    }
    let (code, stderr) = run(&["import", "--store", "s", "changed"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    // No file may be written past 512 KiB (EFBIG: SIGXFSZ ignored, as the shell passes it on;
    // the store's own files stay within it): the schema's cassette, the last in name order,
    // fails after the two images' were staged.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f 1024; exec {BIN} export --store s --out out"
        ))
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("get_v2_schemas_image") && stderr.contains("too large"),
        "{stderr}"
    );
    assert_eq!(
        all_files(&dir.path().join("out")),
        before,
        "the folder as the last export left it"
    );
    // Once it can, the export writes them all.
    let (code, stderr) = run(&["export", "--store", "s", "--out", "out"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    let after = all_files(&dir.path().join("out"));
    assert_eq!(after.len(), before.len());
    assert!(
        after
            .iter()
            .all(|(_, bytes)| bytes.windows(10).any(|w| w == b"x-changed\""))
    );
}

/// A cassette renamed by hand (`image_404.json`) is the request's file from then on: export
/// writes the request's answers there, not a second file beside it that import and replay
/// would refuse as recording the request twice.
#[test]
fn export_writes_a_request_a_hand_named_cassette_holds_into_that_file() {
    let dir = tempfile::tempdir().unwrap();
    shipped_cassettes(dir.path());
    let (code, stderr) = run(&["import", "--store", "s", "cassettes"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    let out = dir.path().join("cassettes");
    let generated = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("000000000404"))
        .unwrap();
    let renamed = out.join("image_404.json");
    std::fs::rename(&generated, &renamed).unwrap();
    // The store's answer changes, so the export writes it.
    let mut cassette: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&renamed).unwrap()).unwrap();
    cassette["answers"][0]["headers"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!(["x-changed", "1"]));
    let changed = dir.path().join("changed");
    std::fs::create_dir(&changed).unwrap();
    std::fs::write(
        changed.join("c.json"),
        serde_json::to_vec(&cassette).unwrap(),
    )
    .unwrap();
    let (code, stderr) = run(&["import", "--store", "s", "changed"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    let (code, stderr) = run(
        &["export", "--store", "s", "--out", "cassettes"],
        dir.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(!generated.exists(), "no second file for the request");
    assert!(
        std::fs::read_to_string(&renamed)
            .unwrap()
            .contains("x-changed"),
        "written in place"
    );
    let (code, stderr) = run(&["verify", "cassettes"], dir.path());
    assert_eq!(code, 0, "{stderr}");
}

/// `import FILE` takes one cassette as well as a HAR file; an empty folder imports nothing,
/// says so, and makes no store.
#[test]
fn import_takes_one_cassette_file_and_a_folder_without_cassettes_makes_no_store() {
    let dir = tempfile::tempdir().unwrap();
    shipped_cassettes(dir.path());
    let one = std::fs::read_dir(dir.path().join("cassettes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("schemas"))
        .unwrap();
    let (code, stderr) = run(
        &["import", "--store", "s", one.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("imported 1 request (1 answer)"), "{stderr}");
    let (code, out, stderr) = run_with_stdout(&["ls", "--store", "s"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(out.contains("/v2/schemas/image"), "{out}");
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let (code, stderr) = run(&["import", "--store", "s2", "empty"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("holds no cassette") && stderr.contains("nothing imported"),
        "{stderr}"
    );
    assert!(!dir.path().join("s2").exists(), "no store made");
    // A HAR file with no entry is said and makes no store either.
    let har =
        r#"{"log": {"version": "1.2", "creator": {"name": "x", "version": "1"}, "entries": []}}"#;
    std::fs::write(dir.path().join("none.har"), har).unwrap();
    let (code, stderr) = run(&["import", "--store", "s3", "none.har"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("holds no entry") && stderr.contains("nothing imported"),
        "{stderr}"
    );
    assert!(!dir.path().join("s3").exists(), "no store made");
}
