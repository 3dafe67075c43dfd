//! Second hardening round: defects from a hostile review, each fixed as a class. Positional
//! query values, trailing bytes after a document, symlinks planted where export writes, odd
//! `--out` paths, absurd latencies, credentials outside the named headers, binary HAR request
//! bodies, terminal escapes in `show`, and denied values `verify` did not look for.

use std::path::{Path, PathBuf};

use ims_vcr::formats::cassette;
use ims_vcr::model::interaction::{Body, Interaction, RecordedRequest, RecordedResponse};
use ims_vcr::model::key::{MatchRules, RequestKey};
use ims_vcr::model::recording::Recording;

use crate::util::*;

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("cassettes")
}

/// A store holding the shipped cassettes.
async fn shipped_store(dir: &Path) -> PathBuf {
    let store = dir.join("store");
    import_dir(&store, &shipped()).await.unwrap();
    store
}

fn recording(path: &str, query: Option<&str>, response_body: &[u8]) -> Recording {
    let request = RecordedRequest {
        method: "GET".into(),
        path: path.into(),
        query: query.map(str::to_owned),
        headers: vec![],
        body: None,
        session: None,
    };
    let key = RequestKey::of_recorded(&MatchRules::default(), &request).unwrap();
    let response = RecordedResponse {
        status: 200,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: Body::from_bytes(response_body),
        recorded_at: "2026-11-27T00:00:00Z".into(),
        latency_ms: 1,
        upstream: "https://ims.example".into(),
        other_upstreams: Vec::new(),
    };
    Recording {
        key,
        answers: vec![Interaction {
            request,
            response,
            redaction: None,
        }],
    }
}

// ---- A: positional query values --------------------------------------------------------------

#[tokio::test]
async fn re_pairing_glance_sort_keys_and_directions_is_a_different_request_on_replay() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let fake = FakeIms::start(FakeOptions::default()).await;
    let proxy = recorder(&fake, &store).await;
    let sent = "sort_key=name&sort_dir=asc&sort_key=size&sort_dir=desc";
    assert_eq!(
        get(&format!("{}/v2/images?{sent}", proxy.uri()))
            .await
            .status,
        200
    );
    proxy.shutdown().await.unwrap();
    fake.stop().await;

    let replay = replayer(&store).await;
    let names_moved = "sort_dir=asc&sort_key=name&sort_dir=desc&sort_key=size";
    let hit = get(&format!("{}/v2/images?{names_moved}", replay.uri())).await;
    assert_eq!(hit.header("x-ims-vcr"), Some("hit"));
    let repaired = "sort_key=name&sort_dir=desc&sort_key=size&sort_dir=asc";
    let miss = get(&format!("{}/v2/images?{repaired}", replay.uri())).await;
    assert_eq!(miss.header("x-ims-vcr"), Some("miss"));
}

// ---- B: trailing content ---------------------------------------------------------------------

#[tokio::test]
async fn a_cassette_with_bytes_after_its_json_is_refused_on_import_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("in");
    std::fs::create_dir(&folder).unwrap();
    for entry in std::fs::read_dir(shipped()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, folder.join(path.file_name().unwrap())).unwrap();
    }
    let victim = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .min()
        .unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes.extend_from_slice(br#"{"format": 1, "broken"#);
    std::fs::write(&victim, bytes).unwrap();
    let store = dir.path().join("store");
    let err = import_dir(&store, &folder).await.unwrap_err().to_string();
    let name = victim.file_name().unwrap().to_str().unwrap();
    assert!(
        err.contains(name) && err.contains("after the JSON document"),
        "{err}"
    );
    let (code, err) = run(
        &[
            "import",
            "--store",
            store.to_str().unwrap(),
            folder.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code, 1);
    assert!(err.contains(name), "{err}");
    // verify says so too.
    let (code, out, _) = run_with_stdout(&["verify", folder.to_str().unwrap()], dir.path());
    assert_eq!(code, 3);
    assert!(out.contains(name), "{out}");
}

#[test]
fn a_har_with_bytes_after_its_json_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let har = dir.path().join("trailing.har");
    let document = serde_json::json!({"log": {"version": "1.2", "entries": []}});
    std::fs::write(&har, format!("{document}{{\"log\": ")).unwrap();
    let (code, err) = run(
        &[
            "import",
            "--store",
            dir.path().join("store").to_str().unwrap(),
            har.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code, 1);
    assert!(err.contains("trailing.har"), "{err}");
}

// ---- C: symlinks where export writes -------------------------------------------------------

#[cfg(unix)]
#[tokio::test]
async fn export_never_writes_through_a_symlink_planted_in_the_output_folder() {
    let dir = tempfile::tempdir().unwrap();
    let store = shipped_store(dir.path()).await;
    let out = dir.path().join("out");
    let first = export_store(&store, &out, None).unwrap();
    assert_eq!(first.files, 3);
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();

    // The temporary names export used to write through.
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    for name in &names {
        std::os::unix::fs::symlink(&victim, out.join(format!(".{name}.tmp"))).unwrap();
    }
    let _ = export_store(&store, &out, None);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    for name in &names {
        let meta = std::fs::symlink_metadata(out.join(name)).unwrap();
        assert!(meta.file_type().is_file(), "{name} is not a plain file");
    }

    // A symlink at a cassette's own name is refused, naming it.
    let target = out.join(&names[0]);
    std::fs::remove_file(&target).unwrap();
    std::os::unix::fs::symlink(&victim, &target).unwrap();
    let err = export_store(&store, &out, None).unwrap_err().to_string();
    assert!(err.contains(&names[0]) && err.contains("symlink"), "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
}

#[cfg(unix)]
#[tokio::test]
async fn har_export_never_writes_through_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let store = shipped_store(dir.path()).await;
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    let export = |out: &Path| {
        run(
            &[
                "export",
                "--store",
                store.to_str().unwrap(),
                "--format",
                "har",
                "--out",
                out.to_str().unwrap(),
            ],
            dir.path(),
        )
    };
    let har = dir.path().join("rec.har");
    std::os::unix::fs::symlink(&victim, dir.path().join(".rec.har.tmp")).unwrap();
    let (code, err) = export(&har);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(
        std::fs::symlink_metadata(&har)
            .unwrap()
            .file_type()
            .is_file()
    );

    let linked = dir.path().join("linked.har");
    std::os::unix::fs::symlink(&victim, &linked).unwrap();
    let (code, err) = export(&linked);
    assert_eq!(code, 1);
    assert!(
        err.contains("linked.har") && err.contains("symlink"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
}

// ---- D: odd --out paths ----------------------------------------------------------------------

#[tokio::test]
async fn har_export_to_a_folder_or_root_path_is_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let store = shipped_store(dir.path()).await;
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    for out in [".", "..", "/", "./", "sub/.."] {
        let (code, err) = run(
            &[
                "export",
                "--store",
                store.to_str().unwrap(),
                "--format",
                "har",
                "--out",
                out,
            ],
            &work,
        );
        assert_eq!(code, 1, "{out}: {err}");
        assert!(
            err.contains("folder") && err.contains("recording.har"),
            "{out}: {err}"
        );
    }
}

#[cfg(unix)]
#[tokio::test]
async fn har_export_to_a_non_utf8_file_name_writes_that_file() {
    use std::os::unix::ffi::OsStrExt as _;
    let dir = tempfile::tempdir().unwrap();
    let store = shipped_store(dir.path()).await;
    let name = std::ffi::OsStr::from_bytes(b"rec-\xff.har");
    let output = std::process::Command::new(BIN)
        .arg("export")
        .arg("--store")
        .arg(&store)
        .args(["--format", "har", "--out"])
        .arg(name)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join(name)).unwrap()).unwrap();
    assert_eq!(written["log"]["entries"].as_array().unwrap().len(), 3);
}

// ---- E: latency --------------------------------------------------------------------------------

#[test]
fn an_absurd_latency_factor_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    for spec in ["recorded*1e300", "recorded*inf", "fixed:99999999s"] {
        let (code, err) = run(
            &[
                "replay",
                "--cassettes",
                shipped().to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
                "--latency",
                spec,
            ],
            dir.path(),
        );
        assert_eq!(code, 2, "{spec}: {err}");
        assert!(err.contains("--latency"), "{spec}: {err}");
    }
}

#[tokio::test]
async fn a_cassette_with_an_absurd_recorded_latency_is_refused_on_import() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("in");
    let mut r = recording("/v2/images/x", None, b"{}");
    r.answers[0].response.latency_ms = u64::MAX - 1;
    cassette::write_dir(&folder, &[r], &MatchRules::default()).unwrap();
    let err = import_dir(&dir.path().join("store"), &folder)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("answers[0].latency_ms"), "{err}");
}

// ---- F: credentials outside the named headers ---------------------------------------------

#[tokio::test]
async fn query_credentials_are_never_stored_and_another_token_replays() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let fake = FakeIms::start(FakeOptions::default()).await;
    let proxy = recorder(&fake, &store).await;
    let url = |base: String, token: &str, password: &str| {
        format!(
            "{base}/v2/images/{SEED_IMAGE_ID}?X-Auth-Token={token}&limit=1&Password={password}&apikey={token}"
        )
    };
    let live = get(&url(
        proxy.uri().to_string(),
        "tok-live-314159",
        "pw-live-271828",
    ))
    .await;
    assert_eq!(live.status, 200);
    // The upstream got them: the proxy forwards what the client sent.
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.path_and_query.contains("tok-live-314159"))
    );
    proxy.shutdown().await.unwrap();
    fake.stop().await;
    for secret in ["tok-live-314159", "pw-live-271828"] {
        assert_eq!(
            files_containing(&store, secret.as_bytes()),
            Vec::<PathBuf>::new()
        );
    }

    let replay = replayer(&store).await;
    let other = get(&url(replay.uri().to_string(), "tok-other-1", "pw-other-2")).await;
    assert_eq!(other.header("x-ims-vcr"), Some("hit"));
    assert_eq!(other.body, live.body);
    replay.shutdown().await.unwrap();

    let out = dir.path().join("out");
    export_store(&store, &out, None).unwrap();
    assert_eq!(
        files_containing(&out, b"tok-live-314159"),
        Vec::<PathBuf>::new()
    );
    assert_eq!(files_containing(&out, b"REDACTED").len(), 1);
    // The exported cassette imports back (the placeholder is not a credential).
    import_dir(&dir.path().join("store2"), &out).await.unwrap();
}

#[test]
fn verify_reports_a_credential_query_parameter_in_a_cassette() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("c");
    let r = recording("/v2/images", Some("access_token=tok-in-a-cassette"), b"{}");
    cassette::write_dir(&folder, &[r], &MatchRules::default()).unwrap();
    let (code, out, _) = run_with_stdout(&["verify", folder.to_str().unwrap()], dir.path());
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("/request/query") && out.contains("access_token"),
        "{out}"
    );
    assert!(!out.contains("tok-in-a-cassette"), "{out}");
}

// ---- H: terminal escapes -------------------------------------------------------------------

#[test]
fn show_and_ls_never_print_terminal_control_characters() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("c");
    let hostile =
        "title \u{1b}]0;pwned\u{7}\u{1b}[2J red \u{9b}31m del\u{7f} bell\u{7}\r\nend\n\tok";
    let r = recording("/v2/images/esc", None, hostile.as_bytes());
    // (`recorded_at` cannot carry them: a cassette's must be an RFC 3339 date-time; nor can
    // `upstream`, which must be an origin.)
    let mut json = recording("/v2/images/json", None, b"{}");
    json.answers[0].response.body = Some(Body::Json(
        serde_json::json!({"name": "a\u{7f}\u{9b}b", "ok": "line\nbreak"}),
    ));
    cassette::write_dir(&folder, &[r, json], &MatchRules::default()).unwrap();
    let folder = folder.to_str().unwrap();
    let forbidden = |text: &str| {
        text.chars()
            .find(|c| c.is_control() && !matches!(c, '\n' | '\t'))
    };
    for args in [
        vec!["show", "/v2/images/esc", "--cassettes", folder],
        vec!["show", "/v2/images/json", "--cassettes", folder],
        vec!["ls", "--cassettes", folder],
        vec!["ls", "--json", "--cassettes", folder],
    ] {
        let (code, out, err) = run_with_stdout(&args, dir.path());
        assert_eq!(code, 0, "{args:?}: {err}");
        assert_eq!(forbidden(&out), None, "{args:?}: {out:?}");
        assert_eq!(forbidden(&err), None, "{args:?}: {err:?}");
    }
    let (_, out, _) = run_with_stdout(
        &["show", "/v2/images/esc", "--cassettes", folder],
        dir.path(),
    );
    // Escaped visibly, text otherwise kept.
    assert!(
        out.contains("\\x1b]0;pwned") && out.contains("\nend\n\tok"),
        "{out}"
    );
    let (_, out, _) = run_with_stdout(&["ls", "--json", "--cassettes", folder], dir.path());
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);
}

// ---- I: verify --deny ----------------------------------------------------------------------

#[test]
fn verify_finds_a_short_denied_value_and_one_inside_a_number() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("c");
    let r = recording(
        "/v2/images",
        None,
        br#"{"project_number":990011223344,"zone":"az1"}"#,
    );
    cassette::write_dir(&folder, &[r], &MatchRules::default()).unwrap();
    let folder = folder.to_str().unwrap();
    for value in ["990011223344", "az1"] {
        let (code, out, _) = run_with_stdout(&["verify", folder, "--deny", value], dir.path());
        assert_eq!(code, 3, "{value}: {out}");
        assert!(out.contains("denied value (--deny #1)"), "{value}: {out}");
        assert!(!out.contains(value), "the finding repeats the value: {out}");
    }
    let (code, out, _) = run_with_stdout(&["verify", folder, "--deny", "zz9"], dir.path());
    assert_eq!(code, 0, "{out}");
    // An empty value denies nothing: a usage error naming the flag, as for every flag that
    // names something.
    let (code, _, err) = run_with_stdout(&["verify", folder, "--deny", ""], dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("'--deny <VALUE>'"), "{err}");
}
