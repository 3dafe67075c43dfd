//! Sessions: per-test recordings, cursors and verdicts in one proxy, by header or by a
//! session's own listener; concurrent sessions never see each other's answers.

use ims_vcr::model::interaction::Body;
use ims_vcr::model::key::MatchRules;
use ims_vcr::model::recording::Recording;
use ims_vcr::storage::store::Store;

use crate::util::fixtures::{recording, request, response};
use crate::util::*;

const SESSIONS: usize = 8;
const ANSWERS: usize = 4;

/// Session `s` recorded `GET /v2/images/polled` answering `s<s>-a0` … `s<s>-a3`; the default
/// session recorded it answering `default`.
fn polled_recordings() -> Vec<Recording> {
    let rules = MatchRules::default();
    let answer = |text: String| response(200, vec![], Body::from_bytes(text.as_bytes()));
    let mut out = vec![recording(
        &rules,
        request("GET", "/v2/images/polled"),
        vec![answer("default".into())],
        None,
    )];
    for s in 0..SESSIONS {
        let mut req = request("GET", "/v2/images/polled");
        req.session = Some(format!("suite/test_{s}"));
        out.push(recording(
            &rules,
            req,
            (0..ANSWERS).map(|a| answer(format!("s{s}-a{a}"))).collect(),
            None,
        ));
    }
    out
}

async fn store_of(dir: &std::path::Path, recordings: &[Recording]) -> std::path::PathBuf {
    let path = dir.join("store");
    let store = Store::open(&path).unwrap();
    store.import(recordings).await.unwrap();
    drop(store);
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_clients_in_eight_sessions_each_get_their_own_sessions_answers_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_of(dir.path(), &polled_recordings()).await;
    let proxy = replayer(&store).await;
    let url = format!("{}/v2/images/polled", proxy.uri());
    let mut tasks = Vec::new();
    for s in 0..SESSIONS {
        for _ in 0..ANSWERS {
            let url = url.clone();
            tasks.push(tokio::spawn(async move {
                let name = format!("suite/test_{s}");
                let reply = send("GET", &url, &[("x-ims-vcr-session", &name)], b"").await;
                (s, reply.status, reply.text())
            }));
        }
    }
    let mut got: Vec<Vec<String>> = vec![Vec::new(); SESSIONS];
    for task in tasks {
        let (s, status, text) = task.await.unwrap();
        assert_eq!(status, 200, "{text}");
        got[s].push(text);
    }
    for (s, mut answers) in got.into_iter().enumerate() {
        answers.sort();
        let wanted: Vec<String> = (0..ANSWERS).map(|a| format!("s{s}-a{a}")).collect();
        assert_eq!(
            answers, wanted,
            "session {s} got another session's answer or one twice"
        );
    }
    // In order, per session, with every session polling at once.
    let mut tasks = Vec::new();
    for s in 0..SESSIONS {
        let (url, control) = (url.clone(), proxy.uri());
        tasks.push(tokio::spawn(async move {
            let name = format!("suite/test_{s}");
            let reset = send(
                "POST",
                &format!("{control}/__ims-vcr/sessions/{name}/reset"),
                &[],
                b"",
            )
            .await;
            assert_eq!(reset.status, 200, "{}", reset.text());
            let mut seen = Vec::new();
            for _ in 0..ANSWERS {
                seen.push(
                    send("GET", &url, &[("x-ims-vcr-session", &name)], b"")
                        .await
                        .text(),
                );
            }
            (s, seen)
        }));
    }
    for task in tasks {
        let (s, seen) = task.await.unwrap();
        let wanted: Vec<String> = (0..ANSWERS).map(|a| format!("s{s}-a{a}")).collect();
        assert_eq!(seen, wanted, "session {s} played out of order");
    }
    // No header: the default session's own recording, untouched by the others.
    assert_eq!(get(&url).await.text(), "default");
    let summary = proxy.shutdown().await.unwrap();
    assert_eq!(summary.sessions.len(), SESSIONS);
    assert!(
        summary
            .sessions
            .iter()
            .all(|s| s.ok && s.hits == 2 * ANSWERS as u64)
    );
}

#[tokio::test]
async fn a_session_does_not_see_another_sessions_or_the_default_recordings() {
    let dir = tempfile::tempdir().unwrap();
    let mut recordings = polled_recordings();
    let mut only_default = request("GET", "/v2/images/only-default");
    only_default.session = None;
    recordings.push(recording(
        &MatchRules::default(),
        only_default,
        vec![response(200, vec![], Body::from_bytes(b"d"))],
        None,
    ));
    let store = store_of(dir.path(), &recordings).await;
    let proxy = replayer(&store).await;
    let other = send(
        "GET",
        &format!("{}/v2/images/only-default", proxy.uri()),
        &[("x-ims-vcr-session", "suite/test_0")],
        b"",
    )
    .await;
    assert_eq!(other.status, 599, "{}", other.text());
    let nearest = other.json()["ims_vcr"]["nearest"].to_string();
    assert!(
        !nearest.contains("only-default"),
        "a miss names only its own session's recordings: {nearest}"
    );
    let unknown = send(
        "GET",
        &format!("{}/v2/images/polled", proxy.uri()),
        &[("x-ims-vcr-session", "never-recorded")],
        b"",
    )
    .await;
    assert_eq!(unknown.status, 599);
    // The miss says where its request was recorded: in the default session, or in sessions
    // whose names it did not send.
    let where_recorded = |reply: &Reply| reply.json()["ims_vcr"]["recorded_in_sessions"].clone();
    assert_eq!(where_recorded(&other), serde_json::json!([null]));
    assert!(
        other
            .text()
            .contains("it is recorded in the default session"),
        "{}",
        other.text()
    );
    let sessions: Vec<String> = (0..SESSIONS).map(|s| format!("suite/test_{s}")).collect();
    let mut everywhere = vec![serde_json::Value::Null];
    everywhere.extend(sessions.iter().map(|s| serde_json::json!(s)));
    assert_eq!(
        where_recorded(&unknown),
        serde_json::Value::Array(everywhere)
    );
    let typo = send(
        "GET",
        &format!("{}/v2/images/polled", proxy.uri()),
        &[("x-ims-vcr-session", "suite/test-0")],
        b"",
    )
    .await;
    assert_eq!(typo.status, 599);
    let said = typo.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        said.contains(&format!(
            "in session \"suite/test-0\"; {} other sessions (the default session (no x-ims-vcr-session), \"suite/test_0\", \"suite/test_1\" and {} more) recorded it: record it in this session (a new test), or send the session it was recorded in",
            SESSIONS + 1,
            SESSIONS - 2
        )),
        "{said}"
    );
    assert_eq!(
        typo.json()["ims_vcr"]["recorded_in_sessions_count"],
        SESSIONS + 1
    );
    let summary = proxy.shutdown().await.unwrap();
    let never = summary
        .sessions
        .iter()
        .find(|s| s.session == "never-recorded")
        .unwrap();
    assert!(!never.ok);
    assert_eq!(never.misses, vec!["GET /v2/images/polled".to_string()]);
}

#[tokio::test]
async fn bad_session_names_get_a_400_naming_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = cassette_replayer(&shipped_cassettes(dir.path())).await;
    // Sent twice, whichever one would count: refused.
    let twice = [("x-ims-vcr-session", "ok"), ("x-ims-vcr-session", ".bad")];
    let reply = send("GET", &image_url(&proxy, SEED_IMAGE_ID), &twice, b"").await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(
        reply
            .text()
            .contains("x-ims-vcr-session: sent more than once"),
        "{}",
        reply.text()
    );
    // A name from the control API's URL is named as such, not as the header.
    let start = send(
        "POST",
        &format!("{}/__ims-vcr/sessions/.hid/start", proxy.uri()),
        &[],
        b"",
    )
    .await;
    assert_eq!(start.status, 400, "{}", start.text());
    assert!(
        start
            .text()
            .contains("/__ims-vcr/sessions/.hid/start: session name"),
        "{}",
        start.text()
    );
    let long = "x".repeat(201);
    for bad in [
        "../etc",
        "a b",
        "a//b",
        "/abs",
        long.as_str(),
        "a/./b",
        ".hidden",
        "tests/.cache/x",
    ] {
        let reply = send(
            "GET",
            &image_url(&proxy, SEED_IMAGE_ID),
            &[("x-ims-vcr-session", bad)],
            b"",
        )
        .await;
        assert_eq!(reply.status, 400, "{bad}: {}", reply.text());
        assert!(
            reply.text().contains("x-ims-vcr-session"),
            "{bad}: {}",
            reply.text()
        );
        if bad.contains("/./") {
            // A URL client removes `.` segments itself before the proxy sees the path.
            continue;
        }
        let start = send(
            "POST",
            &format!("{}/__ims-vcr/sessions/{bad}/start", proxy.uri()),
            &[],
            b"",
        )
        .await;
        assert!(
            start.status == 400 || start.status == 404,
            "{bad}: {} {}",
            start.status,
            start.text()
        );
    }
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_sessions_own_listener_puts_every_request_in_it_and_stop_returns_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_of(dir.path(), &polled_recordings()).await;
    let proxy = ims_vcr::ProxyServer::builder()
        .replay()
        .store(&store)
        .fail_on_unused(true)
        .start()
        .await
        .unwrap();
    let control = format!("{}/__ims-vcr/sessions", proxy.uri());
    let started = send("POST", &format!("{control}/suite/test_3/start"), &[], b"").await;
    assert_eq!(started.status, 200, "{}", started.text());
    let body = started.json();
    assert_eq!(body["session"], "suite/test_3");
    let url = body["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_ne!(url, proxy.uri());
    // A client that can only be given an endpoint: no header at all.
    for a in 0..2 {
        let reply = get(&format!("{url}/v2/images/polled")).await;
        assert_eq!(reply.text(), format!("s3-a{a}"));
    }
    let missed = get(&format!("{url}/v2/images/nope")).await;
    assert_eq!(missed.status, 599);
    let listed = get(&control).await.json();
    let entry = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["session"] == "suite/test_3")
        .unwrap()
        .clone();
    assert_eq!(
        (entry["hits"].as_u64(), entry["misses"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(entry["url"], url.as_str());

    // The verdict so far, the session going on: its listener still serves.
    let so_far = get(&format!("{control}/suite/test_3/verdict")).await.json();
    assert_eq!(
        (so_far["hits"].as_u64(), so_far["miss_count"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(so_far["misses"], serde_json::json!(["GET /v2/images/nope"]));
    assert_eq!(
        get(&format!("{url}/v2/images/polled")).await.text(),
        "s3-a2"
    );

    let stopped = send("POST", &format!("{control}/suite/test_3/stop"), &[], b"").await;
    assert_eq!(stopped.status, 200, "{}", stopped.text());
    let verdict = stopped.json();
    assert_eq!(verdict["session"], "suite/test_3");
    assert_eq!(verdict["hits"], 3);
    // A name nothing knows is no passing verdict; stopping or resetting it makes no session.
    assert_eq!(
        get(&format!("{control}/suite/no_such_test/verdict"))
            .await
            .status,
        404
    );
    for action in ["stop", "reset"] {
        let reply = send(
            "POST",
            &format!("{control}/suite/no_such_test/{action}"),
            &[],
            b"",
        )
        .await;
        assert_eq!(reply.status, 404, "{action}: {}", reply.text());
    }
    assert_eq!(
        get(&format!("{control}/suite/no_such_test/verdict"))
            .await
            .status,
        404
    );
    // Read again after the stop: the verdict the stop gave.
    assert_eq!(
        get(&format!("{control}/suite/test_3/verdict")).await.json(),
        verdict
    );
    assert_eq!(
        verdict["misses"],
        serde_json::json!(["GET /v2/images/nope"])
    );
    assert_eq!(verdict["ok"], false);
    // The listener is closed.
    assert!(
        tokio::net::TcpStream::connect(url.trim_start_matches("http://"))
            .await
            .is_err()
    );
    // Another session used nothing: with --fail-on-unused its verdict fails on its own.
    let idle = send("POST", &format!("{control}/suite/test_4/stop"), &[], b"").await;
    let idle = idle.json();
    assert_eq!(idle["unused"], serde_json::json!(["GET /v2/images/polled"]));
    assert_eq!(idle["ok"], false);
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_session_and_skip_headers_are_never_forwarded_or_stored_and_skip_stores_nothing() {
    let (_dir, store, _fake, proxy) = fake_and_recorder(FakeOptions::default()).await;
    let echo = send(
        "GET",
        &format!("{}/headers-echo", proxy.uri()),
        &[("x-ims-vcr-session", "suite/echo")],
        b"",
    )
    .await;
    assert_eq!(echo.status, 200, "{}", echo.text());
    assert!(
        !echo.text().contains("x-ims-vcr"),
        "forwarded: {}",
        echo.text()
    );
    let skipped = send(
        "GET",
        &image_url(&proxy, SEED_IMAGE_ID),
        &[
            ("x-ims-vcr-session", "suite/echo"),
            ("x-ims-vcr-skip", "true"),
        ],
        b"",
    )
    .await;
    assert_eq!(skipped.status, 200);
    assert_eq!(skipped.header("x-ims-vcr"), Some("forwarded"));
    let summary = proxy.shutdown().await.unwrap();
    assert_eq!(summary.recorded, 1, "only the echo was stored");
    assert_eq!(stored_answers(&store), 1);
    assert!(files_containing(&store, b"x-ims-vcr-skip").is_empty());
    assert!(files_containing(&store, b"x-ims-vcr-session").is_empty());
    // Stored in its session: the default session does not replay it.
    let replay = replayer(&store).await;
    let default = get(&format!("{}/headers-echo", replay.uri())).await;
    assert_eq!(default.status, 599);
    let in_session = send(
        "GET",
        &format!("{}/headers-echo", replay.uri()),
        &[("x-ims-vcr-session", "suite/echo")],
        b"",
    )
    .await;
    assert_eq!(in_session.status, 200, "{}", in_session.text());
    replay.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_rust_test_gets_a_session_handle_with_its_header_listener_and_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_of(dir.path(), &polled_recordings()).await;
    let proxy = replayer(&store).await;
    let session = proxy.session("suite/test_5").unwrap();
    let (name, value) = session.header();
    let first = send(
        "GET",
        &format!("{}/v2/images/polled", proxy.uri()),
        &[(name, value)],
        b"",
    )
    .await;
    assert_eq!(first.text(), "s5-a0");
    let url = session.listen().unwrap();
    assert_eq!(
        get(&format!("{url}/v2/images/polled")).await.text(),
        "s5-a1"
    );
    let verdict = session.stop().unwrap();
    assert!(verdict.ok, "{verdict:?}");
    assert_eq!(verdict.hits, 2);
    assert!(proxy.session("../x").is_err());
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn sessions_export_to_their_own_folders_and_round_trip_byte_identically() {
    let (dir, store, _fake, proxy) = fake_and_recorder(FakeOptions::default()).await;
    let url = image_url(&proxy, SEED_IMAGE_ID);
    for session in [None, Some("suite/test_a"), Some("test_b")] {
        let headers: Vec<(&str, &str)> = session
            .map(|s| vec![("x-ims-vcr-session", s)])
            .unwrap_or_default();
        assert_eq!(send("GET", &url, &headers, b"").await.status, 200);
    }
    proxy.shutdown().await.unwrap();
    let out = dir.path().join("cassettes");
    let summary = export_store(&store, &out, None).unwrap();
    assert_eq!(summary.files, 3);
    let files = all_files(&out);
    let folders: Vec<String> = files
        .keys()
        .map(|p| p.parent().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(folders, vec!["", "suite/test_a", "test_b"], "{files:?}");
    for bytes in files.values() {
        assert!(!String::from_utf8_lossy(bytes).contains("session"));
    }

    let again = dir.path().join("imported");
    import_dir(&again, &out).await.unwrap();
    let out2 = dir.path().join("cassettes2");
    export_store(&again, &out2, None).unwrap();
    assert_eq!(
        all_files(&out2),
        files,
        "export -> import -> export changed bytes"
    );

    // Replay from the folder: each session hits its own recording, nothing else.
    let replay = cassette_replayer(&out).await;
    let url = image_url(&replay, SEED_IMAGE_ID);
    for session in ["suite/test_a", "test_b"] {
        let reply = send("GET", &url, &[("x-ims-vcr-session", session)], b"").await;
        assert_eq!(reply.header("x-ims-vcr"), Some("hit"), "{session}");
    }
    let missing = send("GET", &url, &[("x-ims-vcr-session", "test_c")], b"").await;
    assert_eq!(missing.status, 599);
    replay.shutdown().await.unwrap();
}

/// Recordings made with `--volatile 'tf-acc-test-[a-z0-9]{5}'`: a list filtered by name, a
/// create with the name in its JSON body, and a get by id whose answer names the image.
async fn volatile_store(dir: &std::path::Path) -> std::path::PathBuf {
    let rules = MatchRules {
        volatile: ims_vcr::model::volatile::Volatile::new(vec!["tf-acc-test-[a-z0-9]{5}".into()])
            .unwrap(),
        ..MatchRules::default()
    };
    let json = |v: serde_json::Value| Body::from_bytes(v.to_string().as_bytes());
    let mut list = request("GET", "/v2/images");
    list.query = Some("name=tf-acc-test-abcde".into());
    let mut create = request("POST", "/v2/images");
    create.body = json(serde_json::json!({"name": "tf-acc-test-abcde", "disk_format": "qcow2"}));
    let image = request("GET", "/v2/images/img-1");
    let recordings = vec![
        recording(
            &rules,
            list,
            vec![response(
                200,
                vec![],
                json(serde_json::json!({"images": [{"id": "img-1", "name": "tf-acc-test-abcde"}]})),
            )],
            None,
        ),
        recording(
            &rules,
            create,
            vec![response(
                201,
                vec![("location".into(), "/v2/images/tf-acc-test-abcde".into())],
                json(serde_json::json!({"id": "img-1", "name": "tf-acc-test-abcde"})),
            )],
            None,
        ),
        recording(
            &rules,
            image,
            vec![response(
                200,
                vec![],
                json(serde_json::json!({"id": "img-1", "name": "tf-acc-test-abcde"})),
            )],
            None,
        ),
    ];
    let path = dir.join("store");
    let store = Store::open(&path).unwrap();
    store.set_rules(&rules).await.unwrap();
    store.import(&recordings).await.unwrap();
    drop(store);
    path
}

#[tokio::test]
async fn a_fresh_volatile_value_still_hits_and_the_answer_carries_the_live_value() {
    let dir = tempfile::tempdir().unwrap();
    let store = volatile_store(dir.path()).await;
    let proxy = replayer(&store).await;
    // Query.
    let list = get(&format!("{}/v2/images?name=tf-acc-test-zzzzz", proxy.uri())).await;
    assert_eq!(list.header("x-ims-vcr"), Some("hit"), "{}", list.text());
    assert_eq!(list.json()["images"][0]["name"], "tf-acc-test-zzzzz");
    // A later request that does not carry the value: its answer gets the live value too.
    let image = get(&format!("{}/v2/images/img-1", proxy.uri())).await;
    assert_eq!(image.json()["name"], "tf-acc-test-zzzzz");
    // Another session learns its own value.
    let other = send(
        "GET",
        &format!("{}/v2/images/img-1", proxy.uri()),
        &[("x-ims-vcr-session", "other")],
        b"",
    )
    .await;
    assert_eq!(
        other.status, 599,
        "the session has no recordings of its own"
    );
    // JSON body and a header.
    let created = send(
        "POST",
        &format!("{}/v2/images", proxy.uri()),
        &[("content-type", "application/json")],
        br#"{"name": "tf-acc-test-yyyyy", "disk_format": "qcow2"}"#,
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.json()["name"], "tf-acc-test-yyyyy");
    assert_eq!(
        created.header("location"),
        Some("/v2/images/tf-acc-test-yyyyy")
    );
    proxy.shutdown().await.unwrap();
}

#[test]
fn a_volatile_pattern_that_does_not_compile_is_an_error_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .current_dir(dir.path())
        .args([
            "record",
            "--upstream",
            "https://127.0.0.1:9",
            "--volatile",
            "tf-acc-(",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("--volatile \"tf-acc-(\""), "{stderr}");
    assert!(
        !dir.path().join(".ims-vcr").exists(),
        "nothing created on a bad flag"
    );
}

#[tokio::test]
async fn ls_shows_each_recordings_session_and_show_picks_one_by_session() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_of(dir.path(), &polled_recordings()).await;
    let store_arg = store.to_str().unwrap();
    let (code, table, _) = run_with_stdout(&["ls", "--store", store_arg], dir.path());
    assert_eq!(code, 0, "{table}");
    assert!(
        table.lines().next().unwrap().starts_with("SESSION"),
        "{table}"
    );
    assert!(table.contains("suite/test_7"), "{table}");
    let (_, json, _) = run_with_stdout(&["ls", "--store", store_arg, "--json"], dir.path());
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), SESSIONS + 1);
    assert!(
        rows[0]["session"].is_null(),
        "default session first: {rows}"
    );

    let (code, ambiguous, stderr) = run_with_stdout(
        &["show", "GET /v2/images/polled", "--store", store_arg],
        dir.path(),
    );
    assert_ne!(code, 0, "{ambiguous}");
    assert!(stderr.contains("(session suite/test_2)"), "{stderr}");
    let (code, shown, stderr) = run_with_stdout(
        &[
            "show",
            "GET /v2/images/polled",
            "--session",
            "suite/test_2",
            "--store",
            store_arg,
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        shown.contains("s2-a3") && !shown.contains("s1-a0"),
        "{shown}"
    );
    let (code, shown, _) = run_with_stdout(
        &[
            "show",
            "GET /v2/images/polled",
            "--session",
            "",
            "--store",
            store_arg,
        ],
        dir.path(),
    );
    assert_eq!(code, 0);
    assert!(shown.contains("default"), "{shown}");
}

/// A test rerun after a failure (pytest-rerunfailures through the plugin) stops its session and
/// starts the same name again: in `record` the rerun's answers replace the failed attempt's, all
/// of them, so replay serves what the passing run saw.
#[tokio::test]
async fn a_session_stopped_and_started_again_records_afresh() {
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    let up = scripted_upstream(move |_| {
        match counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
            0 | 1 => http_answer("503 Service Unavailable", &[], b"{\"flaky\":true}"),
            _ => http_answer(
                "200 OK",
                &[("content-type", "application/json")],
                b"{\"id\":\"x\"}",
            ),
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let proxy = recording_through(ims_vcr::UpstreamConfig::new(&up), &store).await;
    let session = [("x-ims-vcr-session", "suite/test_flaky")];
    let url = format!("{}/v2/images/x", proxy.uri());
    let stop = format!("{}/__ims-vcr/sessions/suite/test_flaky/stop", proxy.uri());
    for _ in 0..2 {
        assert_eq!(send("GET", &url, &session, b"").await.status, 503);
    }
    assert_eq!(send("POST", &stop, &[], b"").await.status, 200);
    assert_eq!(send("GET", &url, &session, b"").await.status, 200);
    assert_eq!(send("POST", &stop, &[], b"").await.json()["recorded"], 1);
    proxy.shutdown().await.unwrap();

    let opened = ims_vcr::storage::store::Store::open(&store).unwrap();
    let recordings = opened.load(&opened.rules().unwrap()).unwrap();
    let statuses: Vec<u16> = recordings
        .iter()
        .flat_map(|r| &r.answers)
        .map(|a| a.response.status)
        .collect();
    assert_eq!(statuses, [200], "only the rerun's answer is kept");
    drop(opened);
    let replay = replayer(&store).await;
    let replayed = send(
        "GET",
        &format!("{}/v2/images/x", replay.uri()),
        &session,
        b"",
    )
    .await;
    assert_eq!(replayed.status, 200);
    replay.shutdown().await.unwrap();
}

/// A named session recorded again is replaced whole: a test that creates an image gets a new
/// id in every run, and the requests naming an earlier run's id are removed with the new run's
/// first answer, in `record` (a new process) and in a rerun attempt (its session stopped and
/// used again), so replay finds no unused recording and export no stale cassette. Other
/// sessions, the default one, and `auto` keep what they hold.
#[tokio::test]
async fn a_session_recorded_again_keeps_only_what_the_new_run_recorded() {
    let up = json_upstream("{}").await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let test = [("x-ims-vcr-session", "suite/test_create")];
    let other = [("x-ims-vcr-session", "suite/test_other")];
    let get = |proxy: &ims_vcr::ProxyServer,
               path: &str,
               headers: &'static [(&'static str, &'static str)]| {
        let url = format!("{}{path}", proxy.uri());
        async move { send("GET", &url, headers, b"").await.status }
    };
    let test: &'static [(&str, &str)] = Box::leak(Box::new(test));
    let other: &'static [(&str, &str)] = Box::leak(Box::new(other));
    let lines = |store: &std::path::Path| -> Vec<String> {
        let opened = ims_vcr::storage::store::Store::open(store).unwrap();
        let mut lines: Vec<String> = (opened.load(&opened.rules().unwrap()).unwrap().iter())
            .map(|r| {
                format!(
                    "{} {}",
                    r.key.session().unwrap_or("-"),
                    r.key.request_line()
                )
            })
            .collect();
        lines.sort();
        lines
    };
    // The first run.
    let proxy = recording_through(ims_vcr::UpstreamConfig::new(&up), &store).await;
    for (path, headers) in [
        ("/v2/images/id-1", test),
        ("/v2/images/id-1/file", test),
        ("/v2/images/o", other),
        ("/v2", &[][..]),
    ] {
        assert_eq!(get(&proxy, path, headers).await, 200);
    }
    proxy.shutdown().await.unwrap();
    // Recorded again: the test's new id only; the other test and the default session as they were.
    let proxy = recording_through(ims_vcr::UpstreamConfig::new(&up), &store).await;
    assert_eq!(get(&proxy, "/v2/images/id-2", test).await, 200);
    assert_eq!(get(&proxy, "/v2/images/id-2/file", test).await, 200);
    proxy.shutdown().await.unwrap();
    let expected = [
        "- GET /v2",
        "suite/test_create GET /v2/images/id-2",
        "suite/test_create GET /v2/images/id-2/file",
        "suite/test_other GET /v2/images/o",
    ];
    assert_eq!(lines(&store), expected);
    // A rerun in one process: the failed attempt's requests go with the rerun's first answer.
    let proxy = recording_through(ims_vcr::UpstreamConfig::new(&up), &store).await;
    assert_eq!(get(&proxy, "/v2/images/id-3", test).await, 200);
    let stop = format!("{}/__ims-vcr/sessions/suite/test_create/stop", proxy.uri());
    assert_eq!(send("POST", &stop, &[], b"").await.status, 200);
    assert_eq!(get(&proxy, "/v2/images/id-4", test).await, 200);
    proxy.shutdown().await.unwrap();
    let mut expected = expected.to_vec();
    expected[1..3].copy_from_slice(&["suite/test_create GET /v2/images/id-4"; 2]);
    expected.dedup();
    assert_eq!(lines(&store), expected);
    // Replay finds every recording used; `auto` adds to what a session holds.
    let replay = replayer(&store).await;
    assert_eq!(get(&replay, "/v2/images/id-4", test).await, 200);
    let summary = replay.shutdown().await.unwrap();
    assert_eq!(summary.hits, 1, "{summary}");
    let auto = auto_through(ims_vcr::UpstreamConfig::new(&up), &store).await;
    assert_eq!(get(&auto, "/v2/images/id-5", test).await, 200);
    auto.shutdown().await.unwrap();
    let lines = lines(&store);
    assert!(
        lines.contains(&"suite/test_create GET /v2/images/id-4".to_owned()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"suite/test_create GET /v2/images/id-5".to_owned()),
        "{lines:?}"
    );
}

/// A miss whose request line is recorded in its session with other bodies is told against the
/// body that differs in the fewest fields, and its message points at the diff, not at another
/// session that recorded the same line.
#[tokio::test]
async fn a_miss_is_told_against_the_closest_body_of_its_line_in_its_own_session() {
    let up = json_upstream("{}").await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let patch = |proxy: &ims_vcr::ProxyServer, session: &str, body: &[u8]| {
        let (url, session, body) = (
            format!("{}/v2/images/x", proxy.uri()),
            session.to_owned(),
            body.to_vec(),
        );
        async move {
            let headers = [
                ("content-type", "application/json"),
                ("x-ims-vcr-session", session.as_str()),
            ];
            send("PATCH", &url, &headers, &body).await
        }
    };
    let far = br#"{"op":"replace","path":"/name","value":"x","extra":1}"#;
    let near = br#"{"op":"add","path":"/tags/-","value":"t1"}"#;
    let proxy = recording_through(ims_vcr::UpstreamConfig::new(&up), &store).await;
    for (session, body) in [
        ("suite/a", &far[..]),
        ("suite/a", &near[..]),
        ("suite/b", &near[..]),
    ] {
        let reply = patch(&proxy, session, body).await;
        assert_eq!(reply.status, 200);
    }
    proxy.shutdown().await.unwrap();
    let replay = replayer(&store).await;
    let asked = br#"{"op":"add","path":"/tags/-","value":"t2"}"#;
    let miss = patch(&replay, "suite/a", asked).await;
    assert_eq!(miss.status, 599);
    let report = miss.json();
    let fields = &report["ims_vcr"]["diff"][0]["fields"];
    assert_eq!(fields.as_array().map(Vec::len), Some(1), "{report}");
    assert_eq!(fields[0]["pointer"], "/value", "{report}");
    let message = report["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("the recording of it differs as the diff says"),
        "{message}"
    );
    assert!(!message.contains("send the session"), "{message}");
    replay.shutdown().await.unwrap();
}

/// A set-up call sent with `x-ims-vcr-skip` takes no recorded answer: in replay it is answered
/// `599 IMS_VCR.SKIPPED` without moving the request's cursor and without counting as a miss,
/// so the test's own requests replay in the order they were recorded; in `auto` it is
/// forwarded (never served from the recording) and not stored.
#[tokio::test]
async fn a_skipped_request_never_takes_a_recorded_answer_in_replay_or_auto() {
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    let up = scripted_upstream(move |_| {
        let n = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let body = format!("{{\"count\":{n}}}");
        http_answer(
            "200 OK",
            &[("content-type", "application/json")],
            body.as_bytes(),
        )
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let skip = [("x-ims-vcr-skip", "true")];
    let proxy = recording_through(ims_vcr::UpstreamConfig::new(&up), &store).await;
    let url = |proxy: &ims_vcr::ProxyServer| format!("{}/counter", proxy.uri());
    assert_eq!(
        send("GET", &url(&proxy), &skip, b"").await.text(),
        "{\"count\":0}"
    );
    assert_eq!(get(&url(&proxy)).await.text(), "{\"count\":1}");
    assert_eq!(get(&url(&proxy)).await.text(), "{\"count\":2}");
    proxy.shutdown().await.unwrap();

    let replay = replayer(&store).await;
    let skipped = send("GET", &url(&replay), &skip, b"").await;
    assert_eq!(skipped.status, 599);
    let text = skipped.text();
    assert!(text.contains("IMS_VCR.SKIPPED"), "{text}");
    assert!(
        text.contains(r#""title":"Skipped""#) && !text.contains("Miss"),
        "{text}"
    );
    assert_eq!(get(&url(&replay)).await.text(), "{\"count\":1}");
    assert_eq!(get(&url(&replay)).await.text(), "{\"count\":2}");
    let summary = replay.shutdown().await.unwrap();
    assert!(summary.misses.is_empty(), "{:?}", summary.misses);

    let auto = auto_through(ims_vcr::UpstreamConfig::new(&up), &store).await;
    let forwarded = send("GET", &url(&auto), &skip, b"").await;
    assert_eq!(forwarded.header("x-ims-vcr"), Some("forwarded"));
    assert_eq!(forwarded.text(), "{\"count\":3}");
    assert_eq!(
        get(&url(&auto)).await.text(),
        "{\"count\":1}",
        "the cursor did not move"
    );
    auto.shutdown().await.unwrap();
    assert_eq!(stored_answers(&store), 2);
}

/// A test harness stops its session while one of its requests is still in flight (a poll on
/// another thread). That request is answered as usual; what it records follows the answers the
/// session recorded before (nothing is replaced), unless the session's next attempt recorded
/// the request first (then it is not stored); and it counts for nothing in the verdict the stop
/// gave. (`Store::record_in_attempt`'s unit test has the other interleavings.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_in_flight_when_its_session_stops_keeps_the_attempts_answers_and_verdict() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let calls = Arc::new(AtomicUsize::new(0));
    let (arrived, release) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (counted, seen, go) = (calls.clone(), arrived.clone(), release.clone());
    // The upstream answers on threads of its own: one waiting must not hold up a worker of the
    // runtime the proxy runs on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let up = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let (counted, seen, go) = (counted.clone(), seen.clone(), go.clone());
            std::thread::spawn(move || {
                use std::io::{Read as _, Write as _};
                let (mut head, mut byte) = (Vec::new(), [0u8]);
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                    head.push(byte[0]);
                }
                let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
                if n % 3 == 0 {
                    // Every third poll waits, upstream, until the test has stopped the session.
                    seen.store(true, Ordering::SeqCst);
                    while !go.swap(false, Ordering::SeqCst) {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                }
                let body = format!("{{\"n\":{n}}}");
                let answer = http_answer(
                    "200 OK",
                    &[("content-type", "application/json")],
                    body.as_bytes(),
                );
                let _ = stream.write_all(&answer);
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let stored_ns = |store: &std::path::Path| -> Vec<u64> {
        let opened = Store::open(store).unwrap();
        let recordings = opened.load(&opened.rules().unwrap()).unwrap();
        (recordings.iter().flat_map(|r| &r.answers))
            .map(|a| match &a.response.body {
                Some(Body::Json(json)) => json["n"].as_u64().unwrap(),
                other => panic!("{other:?}"),
            })
            .collect()
    };
    const SESSION: (&str, &str) = ("x-ims-vcr-session", "suite/test_poll");
    // Twice: the late answer comes before the session's next attempt records the request, then
    // after (in a new process, whose first answer starts the request over anyway).
    for (first, next_attempt_first) in [(1, false), (4, true)] {
        let proxy = recording_through(ims_vcr::UpstreamConfig::new(&up), &store).await;
        let url = format!("{}/v2/images/x", proxy.uri());
        let control = format!("{}/__ims-vcr/sessions/suite/test_poll", proxy.uri());
        for n in first..first + 2 {
            assert_eq!(send("GET", &url, &[SESSION], b"").await.json()["n"], n);
        }
        let in_flight = {
            let url = url.clone();
            tokio::spawn(async move { send("GET", &url, &[SESSION], b"").await })
        };
        while !arrived.swap(false, Ordering::SeqCst) {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let stopped = send("POST", &format!("{control}/stop"), &[], b"")
            .await
            .json();
        assert_eq!(
            (stopped["recorded"].as_u64(), stopped["ok"].as_bool()),
            (Some(2), Some(true))
        );
        if next_attempt_first {
            // The test runs again while its earlier attempt's poll is still out: that poll's
            // answer, coming last, must not land after this attempt's.
            assert_eq!(
                send("GET", &url, &[SESSION], b"").await.json()["n"],
                first + 3
            );
            release.store(true, Ordering::SeqCst);
            let late = in_flight.await.unwrap();
            assert_eq!(late.json()["n"], first + 2, "answered as usual");
            proxy.shutdown().await.unwrap();
            assert_eq!(stored_ns(&store), [first + 3]);
        } else {
            release.store(true, Ordering::SeqCst);
            let late = in_flight.await.unwrap();
            assert_eq!(
                (late.status, late.json()["n"].as_u64()),
                (200, Some(first + 2)),
                "answered as usual"
            );
            let verdict = get(&format!("{control}/verdict")).await.json();
            assert_eq!(verdict, stopped, "the verdict is the one the stop gave");
            proxy.shutdown().await.unwrap();
            assert_eq!(
                stored_ns(&store),
                [1, 2, 3],
                "the late answer follows its attempt's"
            );
        }
    }
}

/// The pytest plugin's session names (`ims_vcr.session_name`, run from the source tree) are
/// names ims-vcr takes, also for node ids that would make folders Windows cannot (a test class
/// named `Con`, a module `aux.py`, a parameter id ending in `.`) or hidden ones.
#[test]
fn the_pytest_plugins_session_names_are_names_ims_vcr_takes() {
    let ids = [
        "tests/test_images.py::TestGet::test_one[huawei]",
        "tests/con.py::TestAux::test_x[a.]",
        "tests/test_a.py::Con::test",
        "x/NUL.py::t",
        "a::b[LPT1]",
        "t.py::x[.]",
        "tests/.hidden/t.py::t[é ü]",
    ];
    let script = format!(
        "import sys, json; sys.path.insert(0, 'python')\nfrom ims_vcr._proxy import session_name\nprint(json.dumps([session_name(i) for i in {}]))",
        serde_json::to_string(&ids).unwrap()
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &script])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(names[0], "tests/test_images/TestGet/test_one-huawei");
    for (id, name) in ids.iter().zip(&names) {
        assert_eq!(
            ims_vcr::model::session::validate(name),
            Ok(()),
            "{id} -> {name}"
        );
    }
}

/// A misspelt `x-ims-vcr-skip` (neither yes nor no) is refused with `400` naming it, in every
/// mode, rather than read as "do not skip": the set-up call it came with is neither forwarded
/// nor recorded. `false` asks for nothing and the call is recorded as usual.
#[tokio::test]
async fn an_x_ims_vcr_skip_that_says_neither_yes_nor_no_is_refused_and_nothing_is_forwarded() {
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    let up = scripted_upstream(move |_| {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        http_answer("200 OK", &[("content-type", "application/json")], b"{}")
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let proxy = recording_through(ims_vcr::UpstreamConfig::new(&up), &store).await;
    let url = |proxy: &ims_vcr::ProxyServer| format!("{}/setup", proxy.uri());
    for bad in ["on", "ture", "2"] {
        let refused = send("GET", &url(&proxy), &[("x-ims-vcr-skip", bad)], b"").await;
        assert_eq!(refused.status, 400, "{bad}: {}", refused.text());
        let message = refused.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            message.contains("x-ims-vcr-skip") && message.contains(bad),
            "{message}"
        );
    }
    let twice = send(
        "GET",
        &url(&proxy),
        &[("x-ims-vcr-skip", "true"), ("x-ims-vcr-skip", "true")],
        b"",
    )
    .await;
    assert_eq!(twice.status, 400, "{}", twice.text());
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing was forwarded"
    );
    let recorded = send("GET", &url(&proxy), &[("x-ims-vcr-skip", "FALSE")], b"").await;
    assert_eq!(recorded.header("x-ims-vcr"), Some("recorded"));
    proxy.shutdown().await.unwrap();
    assert_eq!(stored_answers(&store), 1);

    let replay = replayer(&store).await;
    let refused = send("GET", &url(&replay), &[("x-ims-vcr-skip", "on")], b"").await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    let hit = send("GET", &url(&replay), &[("x-ims-vcr-skip", "no")], b"").await;
    assert_eq!(hit.header("x-ims-vcr"), Some("hit"));
    let summary = replay.shutdown().await.unwrap();
    assert!(summary.misses.is_empty(), "{:?}", summary.misses);
}

/// A session name used again after its stop (a rerun test): `stop` answers the rerun's own
/// verdict (it passed), but the exit summary and the session list add the attempts up, so an
/// attempt that failed is never hidden behind the rerun's `ok` while `--fail-on-miss` fails
/// the run for its miss.
#[tokio::test]
async fn a_rerun_that_passes_does_not_hide_the_failed_attempt_in_the_summary() {
    let (_dir, store, _fake, proxy) = fake_and_recorder(FakeOptions::default()).await;
    let session = [("x-ims-vcr-session", "suite/test_1")];
    let image = image_url(&proxy, SEED_IMAGE_ID);
    assert_eq!(send("GET", &image, &session, b"").await.status, 200);
    proxy.shutdown().await.unwrap();

    let replay = replayer(&store).await;
    let stop = format!("{}/__ims-vcr/sessions/suite/test_1/stop", replay.uri());
    let missing = format!("{}/v2/images/zzz", replay.uri());
    assert_eq!(send("GET", &missing, &session, b"").await.status, 599);
    assert_eq!(send("POST", &stop, &[], b"").await.json()["ok"], false);
    let image = image_url(&replay, SEED_IMAGE_ID);
    assert_eq!(send("GET", &image, &session, b"").await.status, 200);
    let rerun = send("POST", &stop, &[], b"").await.json();
    assert_eq!(rerun["ok"], true, "stop answers the rerun's own: {rerun}");
    // `GET …/verdict` gives what the last `stop` answered; the list adds the attempts up.
    let verdict = get(&format!(
        "{}/__ims-vcr/sessions/suite/test_1/verdict",
        replay.uri()
    ))
    .await;
    assert_eq!(verdict.json(), rerun);
    let listed = get(&format!("{}/__ims-vcr/sessions", replay.uri()))
        .await
        .text();
    assert!(
        listed.contains(r#""ok":false"#) && listed.contains(r#""attempts":2"#),
        "{listed}"
    );
    let summary = replay.shutdown().await.unwrap();
    let verdict = (summary.sessions.iter())
        .find(|s| s.session == "suite/test_1")
        .unwrap();
    assert!(!verdict.ok, "{summary}");
    assert_eq!(
        (verdict.attempts, verdict.hits, verdict.miss_count),
        (2, 1, 1),
        "{summary}"
    );
    assert_eq!(summary.miss_count(), 1);
    let text = summary.to_string();
    assert!(
        text.contains("1 hit, 1 miss, 0 recorded, 0 unused (in 2 attempts): FAILED"),
        "{text}"
    );
}

/// Under `--fail-on-unused`, a session whose last attempt left recordings unused fails, though
/// an earlier attempt played them (so the totals count none unused): the summary names them
/// under the session's line.
#[tokio::test]
async fn a_session_failed_for_unused_recordings_names_them_in_the_summary() {
    let (_dir, store, _fake, proxy) = fake_and_recorder(FakeOptions::default()).await;
    let session = [("x-ims-vcr-session", "suite/test_3")];
    for id in [SEED_IMAGE_ID, UNKNOWN_IMAGE_ID] {
        send("GET", &image_url(&proxy, id), &session, b"").await;
    }
    proxy.shutdown().await.unwrap();

    let replay = ims_vcr::ProxyServer::builder()
        .replay()
        .store(&store)
        .fail_on_unused(true)
        .start()
        .await
        .unwrap();
    let stop = format!("{}/__ims-vcr/sessions/suite/test_3/stop", replay.uri());
    for id in [SEED_IMAGE_ID, UNKNOWN_IMAGE_ID] {
        send("GET", &image_url(&replay, id), &session, b"").await;
    }
    assert_eq!(send("POST", &stop, &[], b"").await.json()["ok"], true);
    send("GET", &image_url(&replay, SEED_IMAGE_ID), &session, b"").await;
    assert_eq!(send("POST", &stop, &[], b"").await.json()["ok"], false);
    let summary = replay.shutdown().await.unwrap();
    let text = summary.to_string();
    assert!(text.contains("0 unused recordings"), "{text}");
    assert!(
        text.contains(&format!("      unused: GET /v2/images/{UNKNOWN_IMAGE_ID}")),
        "{text}"
    );
}

/// A request every test makes (a schema) recorded in many sessions, asked from a session that
/// never recorded it (a new test): the miss names a few of those sessions and counts the rest,
/// and its JSON lists at most twenty with their count, however many there are.
#[tokio::test]
async fn a_miss_recorded_in_many_other_sessions_names_a_few_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let rules = MatchRules::default();
    let recordings: Vec<Recording> = (0..300)
        .map(|s| {
            let mut req = request("GET", "/v2/schemas/image");
            req.session = Some(format!("suite/test_{s:03}"));
            let answer = response(200, vec![], Body::from_bytes(b"{}"));
            recording(&rules, req, vec![answer], None)
        })
        .collect();
    let store = store_of(dir.path(), &recordings).await;
    let proxy = replayer(&store).await;
    let url = format!("{}/v2/schemas/image", proxy.uri());
    let reply = send("GET", &url, &[("x-ims-vcr-session", "suite/test_new")], b"").await;
    assert_eq!(reply.status, 599);
    let said = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        said.contains("300 other sessions (\"suite/test_000\", \"suite/test_001\", \"suite/test_002\" and 297 more) recorded it: record it in this session (a new test)"),
        "{said}"
    );
    // The summary's miss line says it too: what a CI log shows.
    let misses = send(
        "GET",
        &format!("{}/__ims-vcr/misses", proxy.uri()),
        &[],
        b"",
    )
    .await;
    let recorded_in = misses.json()[0]["recorded_in"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        recorded_in.starts_with("300 other sessions (\"suite/test_000\""),
        "{}",
        misses.text()
    );
    let summary = proxy.shutdown().await.unwrap().to_string();
    assert!(
        summary.contains("      recorded in: 300 other sessions (\"suite/test_000\", \"suite/test_001\", \"suite/test_002\" and 297 more) (not in this session)"),
        "{summary}"
    );
    assert!(
        reply.text().len() < 8 * 1024,
        "{} bytes",
        reply.text().len()
    );
    assert_eq!(
        reply.json()["ims_vcr"]["recorded_in_sessions"]
            .as_array()
            .unwrap()
            .len(),
        20
    );
    assert_eq!(reply.json()["ims_vcr"]["recorded_in_sessions_count"], 300);
}

/// The exit verdict of a run whose many sessions failed names ten of them and counts the rest:
/// a suite with a session per test does not print one line of thousands of names.
#[tokio::test]
async fn a_verdict_names_ten_failed_sessions_and_counts_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let cassettes = shipped_cassettes(dir.path());
    let cassettes = cassettes.to_str().unwrap();
    let proxy = Running::start(
        &[
            "replay",
            "--cassettes",
            cassettes,
            "--listen",
            "0",
            "--fail-on-miss",
        ],
        dir.path(),
    );
    for s in 0..25 {
        let session = format!("suite/test_{s:02}");
        let reply = send(
            "GET",
            &format!("{}/v2/images/none", proxy.uri),
            &[("x-ims-vcr-session", &session)],
            b"",
        )
        .await;
        assert_eq!(reply.status, 599);
    }
    // And one miss of the default session's: named first.
    let reply = send("GET", &format!("{}/v2/images/none", proxy.uri), &[], b"").await;
    assert_eq!(reply.status, 599);
    proxy.signal("-TERM");
    let (status, log) = proxy.wait_with_log();
    assert_eq!(status.code(), Some(3), "{log}");
    let verdict = log
        .lines()
        .find(|l| l.contains("failed sessions"))
        .unwrap_or_default();
    assert!(
        verdict.contains("26 failed sessions: the default session (no x-ims-vcr-session), suite/test_00, suite/test_01"),
        "{verdict}"
    );
    assert!(verdict.contains("suite/test_08 and 16 more"), "{verdict}");
    assert!(!verdict.contains("suite/test_09"), "{verdict}");
}
