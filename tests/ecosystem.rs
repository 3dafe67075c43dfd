//! Everyday CLI comforts (ls, show, completions) and HAR export/import.

use std::path::Path;

use crate::util::*;

fn shipped() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("cassettes")
        .display()
        .to_string()
}

#[test]
fn ls_lists_the_shipped_cassettes_as_a_table_and_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let (code, table, _) = run_with_stdout(&["ls", "--cassettes", &shipped()], dir.path());
    assert_eq!(code, 0);
    assert!(table.starts_with("KEY "), "{table}");
    assert!(
        table.contains(&format!("GET      /v2/images/{SEED_IMAGE_ID}")),
        "{table}"
    );
    let (code, json, _) = run_with_stdout(&["ls", "--cassettes", &shipped(), "--json"], dir.path());
    assert_eq!(code, 0);
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 3);
    let not_found = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"].as_str().unwrap().contains(UNKNOWN_IMAGE_ID))
        .unwrap();
    assert_eq!(not_found["statuses"], serde_json::json!([404]));
}

#[test]
fn show_prints_a_request_by_path_or_key_and_errors_name_the_request() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run_with_stdout(
        &[
            "show",
            &format!("/v2/images/{SEED_IMAGE_ID}"),
            "--cassettes",
            &shipped(),
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("--- answer 1 of 1: 200")
            && out.contains("\"name\": \"CentOS 7.3 64bit vivado\""),
        "{out}"
    );
    let key = out
        .split("(key ")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .to_owned();
    let (code, by_key, _) =
        run_with_stdout(&["show", &key[..8], "--cassettes", &shipped()], dir.path());
    assert_eq!((code, by_key), (0, out));
    let (code, _, err) = run_with_stdout(&["show", "/nope", "--cassettes", &shipped()], dir.path());
    assert_eq!(code, 1);
    assert!(
        err.contains("show \"/nope\": no recorded request matches"),
        "{err}"
    );
}

#[test]
fn completions_are_generated_for_each_shell() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, _) = run_with_stdout(&["completions", shell], dir.path());
        assert_eq!(code, 0, "{shell}");
        assert!(out.contains("ims-vcr") && out.contains("replay"), "{shell}");
    }
}

#[test]
fn bash_completes_the_flags_of_every_subcommand_in_a_real_bash() {
    let dir = tempfile::tempdir().unwrap();
    let (code, script, _) = run_with_stdout(&["completions", "bash"], dir.path());
    assert_eq!(code, 0);
    let file = dir.path().join("ims-vcr.bash");
    std::fs::write(&file, script).unwrap();
    // (subcommand, the start of a flag, a flag it must offer)
    for (sub, partial, wanted) in [
        ("replay", "--li", "--listen"),
        ("record", "--upst", "--upstream"),
        ("auto", "--fail-on-m", "--fail-on-miss"),
        ("export", "--ou", "--out"),
        ("show", "--sess", "--session"),
        ("run", "--verify", "--verify-replay"),
        ("verify", "--require", "--require-redaction"),
    ] {
        // What bash does on TAB: the completion function named by `complete -p ims-vcr`, called
        // with the command, the current word and the previous one.
        let probe = format!(
            "source {file}; COMP_WORDS=(ims-vcr {sub} {partial}); COMP_CWORD=2; \
             COMP_LINE='ims-vcr {sub} {partial}'; COMP_POINT=${{#COMP_LINE}}; \
             f=$(complete -p ims-vcr | sed -n 's/.*-F \\([^ ]*\\).*/\\1/p'); \
             \"$f\" ims-vcr {partial} {sub}; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            file = file.display()
        );
        let out = std::process::Command::new("bash")
            .args(["--norc", "-c", &probe])
            .output()
            .unwrap();
        let offered = String::from_utf8_lossy(&out.stdout);
        assert!(
            offered.lines().any(|l| l == wanted),
            "ims-vcr {sub} {partial}<TAB> offered {offered:?}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The HAR 1.2 required fields (spec: "HTTP Archive 1.2", log/entries/request/response/content).
fn assert_har_1_2(har: &serde_json::Value) {
    let log = &har["log"];
    assert_eq!(log["version"], "1.2");
    assert!(log["creator"]["name"].is_string() && log["creator"]["version"].is_string());
    for entry in log["entries"].as_array().unwrap() {
        assert!(entry["startedDateTime"].is_string() && entry["time"].is_number());
        assert!(
            entry["cache"].is_object()
                && entry["timings"]["send"].is_number()
                && entry["timings"]["wait"].is_number()
                && entry["timings"]["receive"].is_number()
        );
        let request = &entry["request"];
        for field in ["method", "url", "httpVersion"] {
            assert!(request[field].is_string(), "request.{field}");
        }
        for field in ["cookies", "headers", "queryString"] {
            assert!(request[field].is_array(), "request.{field}");
        }
        assert!(request["headersSize"].is_number() && request["bodySize"].is_number());
        let response = &entry["response"];
        assert!(
            response["status"].is_number()
                && response["statusText"].is_string()
                && response["httpVersion"].is_string()
        );
        assert!(
            response["cookies"].is_array()
                && response["headers"].is_array()
                && response["redirectURL"].is_string()
        );
        assert!(
            response["content"]["size"].is_number() && response["content"]["mimeType"].is_string()
        );
        assert!(response["headersSize"].is_number() && response["bodySize"].is_number());
        for header in request["headers"]
            .as_array()
            .unwrap()
            .iter()
            .chain(response["headers"].as_array().unwrap())
        {
            assert!(header["name"].is_string() && header["value"].is_string());
        }
    }
}

#[tokio::test]
async fn a_har_round_trip_export_import_replay_gives_the_same_answers() {
    let (dir, store, fake, proxy) = fake_and_recorder(FakeOptions::default()).await;
    let mut recorded = Vec::new();
    for id in [
        SEED_IMAGE_ID,
        UNKNOWN_IMAGE_ID,
        POLLING_IMAGE_ID,
        POLLING_IMAGE_ID,
    ] {
        recorded.push(get(&image_url(&proxy, id)).await.body);
    }
    proxy.shutdown().await.unwrap();
    fake.stop().await;

    let har = dir.path().join("recording.har");
    let (code, _, err) = run_with_stdout(
        &[
            "export",
            "--store",
            store.to_str().unwrap(),
            "--format",
            "har",
            "--out",
            har.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    let document: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&har).unwrap()).unwrap();
    assert_har_1_2(&document);
    assert_eq!(document["log"]["entries"].as_array().unwrap().len(), 4);

    let store2 = dir.path().join("store2");
    let (code, _, err) = run_with_stdout(
        &[
            "import",
            "--store",
            store2.to_str().unwrap(),
            har.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    let replay = replayer(&store2).await;
    let mut replayed = Vec::new();
    for id in [
        SEED_IMAGE_ID,
        UNKNOWN_IMAGE_ID,
        POLLING_IMAGE_ID,
        POLLING_IMAGE_ID,
    ] {
        replayed.push(get(&image_url(&replay, id)).await.body);
    }
    assert_eq!(
        replayed, recorded,
        "queued then saving, in order, byte for byte"
    );
}

#[tokio::test]
async fn a_head_answer_keeps_its_content_length_through_a_har_round_trip() {
    let (dir, store, fake, proxy) = fake_and_recorder(FakeOptions::default()).await;
    let live = send("HEAD", &image_url(&proxy, SEED_IMAGE_ID), &[], b"").await;
    proxy.shutdown().await.unwrap();
    fake.stop().await;
    let length = live
        .header("content-length")
        .expect("the upstream's HEAD length is relayed")
        .to_owned();
    assert_ne!(length, "0");

    let har = dir.path().join("head.har");
    let (code, _, err) = run_with_stdout(
        &[
            "export",
            "--store",
            store.to_str().unwrap(),
            "--format",
            "har",
            "--out",
            har.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    let store2 = dir.path().join("store2");
    let (code, _, err) = run_with_stdout(
        &[
            "import",
            "--store",
            store2.to_str().unwrap(),
            har.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    for store in [&store, &store2] {
        let replay = replayer(store).await;
        let head = send("HEAD", &image_url(&replay, SEED_IMAGE_ID), &[], b"").await;
        assert_eq!(head.status, 200);
        assert_eq!(
            head.header("content-length"),
            Some(length.as_str()),
            "{}: {:?}",
            store.display(),
            head.headers
        );
        let summary = replay.shutdown().await.unwrap();
        assert_eq!(summary.miss_count(), 0, "{summary}");
    }
}

#[tokio::test]
async fn a_foreign_har_is_redacted_and_leak_checked_on_import() {
    let dir = tempfile::tempdir().unwrap();
    let owner = "1bed856811654c1cb661a6ca845ebc77";
    let entry = |body: &str| {
        serde_json::json!({
        "startedDateTime": "2026-11-27T00:00:00Z", "time": 5,
        "request": {"method": "GET", "url": format!("https://ims.example/v2/images?owner={owner}"), "httpVersion": "HTTP/1.1",
                    "cookies": [], "headers": [{"name": "X-Auth-Token", "value": "devtools-token-9876"}], "queryString": [], "headersSize": -1, "bodySize": 0},
        "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1", "cookies": [], "headers": [],
                     "content": {"size": body.len(), "mimeType": "application/json", "text": body}, "redirectURL": "", "headersSize": -1, "bodySize": -1},
        "cache": {}, "timings": {"send": 0, "wait": 5, "receive": 0}})
    };
    let write = |name: &str, body: &str| {
        let path = dir.path().join(name);
        let har = serde_json::json!({"log": {"version": "1.2", "creator": {"name": "x", "version": "1"}, "entries": [entry(body)]}});
        std::fs::write(&path, har.to_string()).unwrap();
        path
    };
    let clean = write(
        "clean.har",
        &format!(r#"{{"images":[{{"owner":"{owner}"}}]}}"#),
    );
    let store = dir.path().join("store");
    let (code, _, err) = run_with_stdout(
        &[
            "import",
            "--store",
            store.to_str().unwrap(),
            "--redact",
            clean.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    for secret in [owner, "devtools-token-9876"] {
        assert!(
            files_containing(&store, secret.as_bytes()).is_empty(),
            "{secret} stored"
        );
    }

    let leaky = write("leaky.har", r#"{"echo":"devtools-token-9876"}"#);
    let store2 = dir.path().join("store2");
    let (code, _, err) = run_with_stdout(
        &[
            "import",
            "--store",
            store2.to_str().unwrap(),
            leaky.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("error: HAR file ")
            && err.contains("leaky.har: log.entries[0]")
            && err.contains("x-auth-token"),
        "{err}"
    );
    assert!(
        !store2.exists() || stored_answers(&store2) == 0,
        "nothing imported"
    );
}

/// A browser's HAR carries each answer's `Date`: it is not stored on import, as a live
/// recording stores none, so replay stamps every answer with the time it serves it, and an
/// export writes no date that would change with each capture.
#[tokio::test]
async fn a_har_answer_date_is_not_stored_and_replay_serves_a_fresh_one() {
    let dir = tempfile::tempdir().unwrap();
    let stale = "Wed, 01 Jan 2020 00:00:00 GMT";
    let body = r#"{"id":"x"}"#;
    let har = serde_json::json!({"log": {"version": "1.2", "creator": {"name": "devtools", "version": "1"}, "entries": [{
        "startedDateTime": "2020-01-01T00:00:00Z", "time": 5,
        "request": {"method": "GET", "url": "https://ims.example/v2/images/x", "httpVersion": "HTTP/1.1",
                    "cookies": [], "headers": [], "queryString": [], "headersSize": -1, "bodySize": 0},
        "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1", "cookies": [],
                     "headers": [{"name": "Date", "value": stale}, {"name": "Content-Type", "value": "application/json"}],
                     "content": {"size": body.len(), "mimeType": "application/json", "text": body},
                     "redirectURL": "", "headersSize": -1, "bodySize": -1},
        "cache": {}, "timings": {"send": 0, "wait": 5, "receive": 0}}]}});
    std::fs::write(dir.path().join("devtools.har"), har.to_string()).unwrap();
    let (code, _, err) =
        run_with_stdout(&["import", "--store", "store", "devtools.har"], dir.path());
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run_with_stdout(
        &["export", "--store", "store", "--out", "cassettes"],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(files_containing(&dir.path().join("cassettes"), stale.as_bytes()).is_empty());
    let replay = replayer(&dir.path().join("store")).await;
    let reply = get(&format!("{}/v2/images/x", replay.uri())).await;
    assert_eq!(reply.header("x-ims-vcr"), Some("hit"));
    let date = reply.header("date").expect("a served answer has a Date");
    assert_ne!(date, stale);
    assert_eq!(reply.text(), body);
    replay.shutdown().await.unwrap();
}
