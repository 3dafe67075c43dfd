//! `ims-vcr drift`: recorded answers compared with what the fake answers now, breaking changes
//! told apart from data changes, volatile fields ignored, and nothing written.

use std::path::{Path, PathBuf};
use std::process::Command;

use hyper::header::HeaderValue;
use ims_vcr::UpstreamConfig;
use ims_vcr::formats::cassette;
use ims_vcr::net::routes::Routes;
use ims_vcr::tools::drift::{self, ChangeKind, IgnoreRules, RequestDrift, Sends, Unchecked};

use crate::util::*;

/// Records the seed image and a 404 through a recorder into `dir/store` (the token, when given,
/// is sent as `X-Auth-Token`) and exports them to `dir/cassettes`.
async fn record_cassettes(fake: &FakeIms, dir: &Path, token: Option<&str>) -> PathBuf {
    let store = dir.join("store");
    let proxy = recorder(fake, &store).await;
    let headers: Vec<(&str, &str)> = token.map(|t| ("x-auth-token", t)).into_iter().collect();
    for id in [SEED_IMAGE_ID, UNKNOWN_IMAGE_ID] {
        let reply = send("GET", &image_url(&proxy, id), &headers, b"").await;
        assert_eq!(reply.header("x-ims-vcr"), Some("recorded"), "{id}");
    }
    proxy.shutdown().await.unwrap();
    let out = dir.join("cassettes");
    export_store(&store, &out, None).unwrap();
    out
}

/// Rewrites the recorded seed answer as if the API had changed since: the recording lacks
/// `min_disk`, has `size` as a string, an older `name` and `updated_at`, and a field the API
/// no longer sends.
fn age_the_seed_recording(cassettes: &Path) {
    let (name, bytes) = all_files(cassettes)
        .into_iter()
        .find(|(name, _)| name.to_string_lossy().contains(SEED_IMAGE_ID))
        .expect("a cassette for the seed image");
    let mut file: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let image = file["answers"][0]["body"]["json"].as_object_mut().unwrap();
    image.remove("min_disk");
    image["size"] = "0".into();
    image["name"] = "CentOS 7.3 64bit (old name)".into();
    image["updated_at"] = "2017-01-01T00:00:00Z".into();
    image.insert("__legacy_flag".into(), true.into());
    let mut bytes = serde_json::to_vec_pretty(&file).unwrap();
    bytes.push(b'\n');
    std::fs::write(cassettes.join(name), bytes).unwrap();
}

/// Drift of `recordings`, sending only safe methods (the command's default).
async fn safe_only(
    recordings: &[ims_vcr::model::recording::Recording],
    routes: &Routes,
    ignore: &IgnoreRules,
    token: Option<&HeaderValue>,
) -> Vec<RequestDrift> {
    drift::run(recordings, routes, ignore, token, Sends::SafeOnly).await
}

/// `(pointer, kind)` of each change.
fn kinds(drift: &RequestDrift) -> Vec<(&str, ChangeKind)> {
    drift
        .changes
        .iter()
        .map(|c| (c.pointer.as_str(), c.kind))
        .collect()
}

fn find<'a>(drifts: &'a [RequestDrift], id: &str) -> &'a RequestDrift {
    drifts
        .iter()
        .find(|d| d.request == format!("GET /v2/images/{id}"))
        .unwrap_or_else(|| panic!("no drift for {id} in {drifts:#?}"))
}

/// Runs the binary in `cwd` with only `env` added to an environment without AK/SK or token;
/// `(exit code, stdout, stderr)`. On a blocking thread: the fake it talks to runs on this test's
/// runtime.
async fn run_drift(args: Vec<&str>, env: &[(&str, &str)], cwd: &Path) -> (i32, String, String) {
    let mut command = Command::new(BIN);
    for name in [
        "HUAWEICLOUD_SDK_AK",
        "HUAWEICLOUD_SDK_SK",
        "HUAWEICLOUD_SDK_SECURITY_TOKEN",
        drift::ENV_TOKEN,
        "RUST_LOG",
    ] {
        command.env_remove(name);
    }
    command
        .envs(env.iter().copied())
        .arg("drift")
        .args(args)
        .args(["--upstream-timeout", "5"])
        .current_dir(cwd);
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let attempts = move || {
        let out = command.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            text(&out.stdout),
            text(&out.stderr),
        )
    };
    tokio::task::spawn_blocking(attempts).await.unwrap()
}

#[tokio::test]
async fn drift_flags_removed_and_retyped_fields_as_breaking_ignores_volatile_ones_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions::default()).await;
    let cassettes = record_cassettes(&fake, dir.path(), None).await;
    age_the_seed_recording(&cassettes);
    let before = all_files(&cassettes);
    let recordings = cassette::read_dir(&cassettes).unwrap().0;
    let upstream = Routes::new(&[("/".into(), upstream_for(&fake, dir.path()))]).unwrap();

    let drifts = safe_only(&recordings, &upstream, &IgnoreRules::default(), None).await;
    let with_name_ignored = IgnoreRules::default().with_fields(["name".to_owned()]);
    let quieter = safe_only(&recordings, &upstream, &with_name_ignored, None).await;

    let seed = find(&drifts, SEED_IMAGE_ID);
    assert_eq!(
        kinds(seed),
        [
            ("/size", ChangeKind::ChangedType),
            ("/name", ChangeKind::ChangedValue),
            ("/__legacy_flag", ChangeKind::Removed),
            ("/min_disk", ChangeKind::Added),
        ],
        "updated_at must be ignored:\n{}",
        drift::render(&drifts)
    );
    assert_eq!(seed.breaking(), 2);
    assert_eq!(find(&drifts, UNKNOWN_IMAGE_ID).changes, []);
    let report = drift::render(&drifts);
    for line in [
        &format!("GET /v2/images/{SEED_IMAGE_ID} : 4 changes (2 breaking)\n"),
        "  changed-type  /size  (string \"0\" → number 0)\n",
        "  removed       /__legacy_flag  (was boolean true)\n",
        "  added         /min_disk  (now number 100)\n",
        &format!("GET /v2/images/{UNKNOWN_IMAGE_ID} : no changes\n"),
        "drift: 2 requests checked, 1 changed, 2 breaking\n",
    ] {
        assert!(report.contains(line), "expected {line:?} in:\n{report}");
    }
    assert_eq!(
        kinds(find(&quieter, SEED_IMAGE_ID)),
        [
            ("/size", ChangeKind::ChangedType),
            ("/__legacy_flag", ChangeKind::Removed),
            ("/min_disk", ChangeKind::Added),
        ],
        "--ignore-field name"
    );
    assert!(
        all_files(&cassettes) == before,
        "drift changed a cassette file"
    );
}

#[tokio::test]
async fn drift_sends_the_token_as_x_auth_token_and_a_refusal_is_unchecked_not_drift() {
    let dir = tempfile::tempdir().unwrap();
    let token = "drift-token-0042";
    let options = FakeOptions {
        require_token: Some(token.into()),
        ..FakeOptions::default()
    };
    let fake = FakeIms::start(options).await;
    let cassettes = record_cassettes(&fake, dir.path(), Some(token)).await;
    let recordings = cassette::read_dir(&cassettes).unwrap().0;
    let upstream = Routes::new(&[("/".into(), upstream_for(&fake, dir.path()))]).unwrap();
    let ignore = IgnoreRules::default();

    let with_token = HeaderValue::from_static(token);
    let accepted = safe_only(&recordings, &upstream, &ignore, Some(&with_token)).await;
    let refused = safe_only(&recordings, &upstream, &ignore, None).await;

    assert!(
        accepted
            .iter()
            .all(|d| d.breaking() == 0 && d.changes.is_empty()),
        "{}",
        drift::render(&accepted)
    );
    let seed = find(&refused, SEED_IMAGE_ID);
    assert_eq!(seed.changes, []);
    assert!(
        matches!(
            &seed.unchecked,
            Some(Unchecked::Refused { recorded: 200, live: 401, body }) if body.contains("IMG.0002")
        ),
        "{seed:?}"
    );
    assert_eq!(seed.breaking(), 0);

    // The command takes the token from IMS_VCR_DRIFT_TOKEN.
    let ca = fake.write_ca_pem(dir.path());
    let (url, ca) = (fake.base_url(), ca.to_str().unwrap().to_owned());
    let args = vec!["--upstream", &url, "--upstream-ca", &ca];
    let env = [(drift::ENV_TOKEN, token)];
    let (code, stdout, stderr) = run_drift(args.clone(), &env, dir.path()).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (code, stdout, stderr) = run_drift(args, &[], dir.path()).await;
    assert_eq!(code, 4, "{stdout}{stderr}");
    assert!(
        stderr.contains(drift::ENV_TOKEN),
        "the warning names it: {stderr}"
    );
}

#[tokio::test]
async fn an_unreachable_upstream_leaves_every_request_unchecked_not_broken() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions::default()).await;
    let cassettes = record_cassettes(&fake, dir.path(), None).await;
    let recordings = cassette::read_dir(&cassettes).unwrap().0;
    // Port 1 (tcpmux) is never listening here; a stopped fake's port could be reused by another
    // test's server while this one runs.
    let upstream = Routes::new(&[("/".into(), UpstreamConfig::new("http://127.0.0.1:1"))]).unwrap();

    let drifts = safe_only(&recordings, &upstream, &IgnoreRules::default(), None).await;

    for drift in &drifts {
        assert!(
            matches!(&drift.unchecked, Some(Unchecked::Unreachable(e)) if e.contains("cannot connect to upstream")),
            "{drift:?}"
        );
        assert_eq!(drift.breaking(), 0);
    }
    let summary = "drift: 0 requests checked, 0 changed, 0 breaking; 2 not checked\n";
    assert!(drift::render(&drifts).ends_with(summary));
}

/// An upstream that takes connections and never answers costs each request the whole timeout:
/// after three in a row, drift sends no more and reports the rest as not checked.
#[tokio::test]
async fn an_upstream_that_never_answers_is_given_up_after_three_requests() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions::default()).await;
    let cassettes = record_cassettes(&fake, dir.path(), None).await;
    let recordings = cassette::read_dir(&cassettes).unwrap().0;
    let recordings: Vec<_> = (0..3).flat_map(|_| recordings.iter().cloned()).collect();
    // Listening, never accepting: the kernel completes the connections, nobody answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = UpstreamConfig::new(format!("http://{}", silent.local_addr().unwrap()));
    config.timeout = std::time::Duration::from_millis(200);
    let upstream = Routes::new(&[("/".into(), config)]).unwrap();

    let drifts = safe_only(&recordings, &upstream, &IgnoreRules::default(), None).await;

    assert_eq!(drifts.len(), recordings.len());
    let not_sent = (drifts.iter())
        .filter(|d| matches!(&d.unchecked, Some(Unchecked::Unreachable(e)) if e.starts_with("not sent")))
        .count();
    assert_eq!(not_sent, recordings.len() - 3, "{drifts:?}");
    drop(silent);
}

/// A CI job's timeout sends SIGTERM: drift then prints what it checked so far (the request the
/// upstream answered) and exits as that says (4 had nothing broken), saying it was stopped,
/// instead of dying with nothing said.
#[cfg(unix)]
#[tokio::test]
async fn drift_stopped_by_a_signal_reports_what_it_checked_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions::default()).await;
    let cassettes = record_cassettes(&fake, dir.path(), None).await;
    // An upstream that answers the first request and then takes connections and never
    // answers; it says when the second comes.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = format!("http://{}", silent.local_addr().unwrap());
    let (came, arrived) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::{Read as _, Write as _};
        let mut held = Vec::new();
        for (n, stream) in silent.incoming().flatten().enumerate() {
            let mut stream = stream;
            if n == 0 {
                let (mut head, mut byte) = (Vec::new(), [0u8]);
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                    head.push(byte[0]);
                }
                let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}";
                let _ = stream.write_all(answer.as_bytes());
                continue;
            }
            held.push(stream);
            let _ = came.send(());
        }
    });
    let child = Command::new(BIN)
        .args(["drift", "--upstream", &upstream, "--cassettes"])
        .arg(&cassettes)
        .args(["--upstream-timeout", "60"])
        .env_remove(drift::ENV_TOKEN)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    arrived
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("drift sends a request");
    // SAFETY: the child's pid, still running (it waits on the silent upstream).
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    // The request answered before the signal is in the report; what it found decides the exit
    // status, as it would have without the signal. Which of the two recordings goes first is
    // not fixed (both were recorded within the same second, and drift goes in recorded order to
    // the second): the 404 answered 200 has one breaking change, the image answered `{}` one per
    // field it lost; either is breaking.
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    let summary = stdout
        .lines()
        .find_map(|l| l.strip_prefix("drift: 1 request checked, 1 changed, "))
        .unwrap_or_else(|| panic!("no summary of one request checked: {stdout}"));
    let breaking: usize = summary
        .trim_end_matches(" breaking")
        .parse()
        .expect("a count");
    assert!(breaking >= 1, "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("GET /")), "{stdout}");
    assert!(
        stderr.contains("stopped by signal 15 after 1 of 2 requests"),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_drift_command_exits_3_on_a_breaking_change_and_0_when_the_api_still_matches() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions::default()).await;
    let ca = fake.write_ca_pem(dir.path());
    let cassettes = record_cassettes(&fake, dir.path(), None).await;
    age_the_seed_recording(&cassettes);
    // The shipped cassettes are redacted: their pseudonymous `owner` differs from the live value.
    let shipped = dir.path().join("shipped");
    std::fs::create_dir(&shipped).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("cassettes");
    for (name, bytes) in all_files(&repo) {
        std::fs::write(shipped.join(name), bytes).unwrap();
    }
    let before = (all_files(&cassettes), all_files(&shipped));
    let base = [
        "--upstream",
        &fake.base_url(),
        "--upstream-ca",
        ca.to_str().unwrap(),
    ];
    let with = |extra: &[&'static str]| [&base[..], extra].concat();

    let aged = run_drift(with(&["--cassettes", "cassettes"]), &[], dir.path()).await;
    let clean = run_drift(with(&["--cassettes", "shipped"]), &[], dir.path()).await;
    let store = run_drift(with(&["--store", "store"]), &[], dir.path()).await;

    let (code, stdout, stderr) = aged;
    assert_eq!(code, 3, "{stdout}{stderr}");
    assert!(
        stdout.contains("  removed       /__legacy_flag"),
        "{stdout}"
    );
    assert!(
        stderr.contains("drift found 2 breaking changes"),
        "{stderr}"
    );
    let (code, stdout, stderr) = clean;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.ends_with("drift: 3 requests checked, 0 changed, 0 breaking\n"),
        "{stdout}"
    );
    let (code, stdout, stderr) = store;
    assert_eq!(code, 0, "the store was not aged: {stdout}{stderr}");
    assert_eq!(
        (all_files(&cassettes), all_files(&shipped)),
        before,
        "drift changed a cassette file"
    );
}

#[tokio::test]
async fn drift_errors_name_the_flag_or_folder_at_fault() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let up = ["--upstream", "https://ims.example"];
    let cases: [(Vec<&str>, &str); 4] = [
        (vec!["--upstream", "ims.example"], "'--upstream <URL>'"),
        (
            [&up[..], &["--cassettes", "nowhere"]].concat(),
            "--cassettes nowhere",
        ),
        (
            [&up[..], &["--cassettes", "empty"]].concat(),
            "no recordings",
        ),
        (
            [&up[..], &["--store", "nostore"]].concat(),
            "--store nostore",
        ),
    ];
    for (args, expected) in cases {
        let (code, stdout, stderr) = run_drift(args.clone(), &[], dir.path()).await;
        // A bad flag value is a usage error (2); the rest are runtime errors (1).
        let usage = args.contains(&"ims.example");
        assert_eq!(
            code,
            if usage { 2 } else { 1 },
            "{args:?}: {stdout}{stderr}"
        );
        assert!(
            stderr.contains(expected),
            "{args:?}: expected {expected:?} in {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert!(
        !dir.path().join("nostore").exists(),
        "drift created a store"
    );
}

/// Records `requests` (`(method, image id, body)`) through a recorder into `dir/NAME-store` and
/// exports them to `dir/NAME`.
async fn record_requests(
    fake: &FakeIms,
    dir: &Path,
    name: &str,
    requests: &[(&str, &str, &[u8])],
) -> PathBuf {
    let store = dir.join(format!("{name}-store"));
    let proxy = recorder(fake, &store).await;
    for (method, id, body) in requests {
        let headers = [("content-type", "application/json")];
        let reply = send(method, &image_url(&proxy, id), &headers, body).await;
        assert_eq!(reply.header("x-ims-vcr"), Some("recorded"), "{method} {id}");
    }
    proxy.shutdown().await.unwrap();
    let out = dir.join(name);
    export_store(&store, &out, None).unwrap();
    out
}

#[tokio::test]
async fn drift_sends_only_safe_methods_unless_asked_and_a_check_that_sent_nothing_fails() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions::default()).await;
    let unsafe_ones: [(&str, &str, &[u8]); 3] = [
        ("DELETE", SEED_IMAGE_ID, b""),
        (
            "PATCH",
            SEED_IMAGE_ID,
            br#"[{"op":"replace","path":"/name","value":"n"}]"#,
        ),
        ("POST", "", br#"{"name":"new image"}"#),
    ];
    let mut mixed = vec![("GET", SEED_IMAGE_ID, &b""[..])];
    mixed.extend(unsafe_ones);
    let mixed = record_requests(&fake, dir.path(), "mixed", &mixed).await;
    let only_unsafe = record_requests(&fake, dir.path(), "unsafe", &unsafe_ones).await;
    let ca = fake.write_ca_pem(dir.path());
    let (url, ca) = (fake.base_url(), ca.to_str().unwrap().to_owned());
    let args = |cassettes: &Path, more: &[&str]| {
        let mut args = vec!["--upstream", &url, "--upstream-ca", &ca];
        args.extend(["--cassettes", cassettes.to_str().unwrap()]);
        args.extend(more);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let sent_since = |before: usize| -> Vec<String> {
        fake.requests()[before..]
            .iter()
            .map(|r| r.method.clone())
            .collect()
    };

    // By default the recorded DELETE, PATCH and POST are reported as skipped and never sent.
    let before = fake.requests().len();
    let a = args(&mixed, &[]);
    let (code, stdout, stderr) =
        run_drift(a.iter().map(String::as_str).collect(), &[], dir.path()).await;
    assert_eq!(code, 0, "the GET was checked:\n{stdout}{stderr}");
    assert_eq!(sent_since(before), ["GET"], "{stdout}");
    for line in [
        &format!("DELETE /v2/images/{SEED_IMAGE_ID} : skipped: not a GET, HEAD, OPTIONS"),
        &format!("PATCH /v2/images/{SEED_IMAGE_ID} : skipped"),
        "POST /v2/images/ : skipped",
        "drift: 1 request checked, 0 changed, 0 breaking; 3 skipped (not a GET, HEAD, OPTIONS: \
         --unsafe-methods sends them)\n",
    ] {
        assert!(stdout.contains(line), "expected {line:?} in:\n{stdout}");
    }

    // A check that skipped every request checked nothing: exit 4, saying why and what sends them.
    let before = fake.requests().len();
    let a = args(&only_unsafe, &[]);
    let (code, stdout, stderr) =
        run_drift(a.iter().map(String::as_str).collect(), &[], dir.path()).await;
    assert_eq!(code, 4, "{stdout}{stderr}");
    assert_eq!(sent_since(before), Vec::<String>::new());
    assert!(
        stderr
            .contains("nothing was checked: all 3 recorded requests are not a GET, HEAD, OPTIONS")
            && stderr.contains("--unsafe-methods"),
        "{stderr}"
    );

    // --unsafe-methods sends them all.
    let before = fake.requests().len();
    let a = args(&only_unsafe, &["--unsafe-methods"]);
    let (code, stdout, stderr) =
        run_drift(a.iter().map(String::as_str).collect(), &[], dir.path()).await;
    let mut sent = sent_since(before);
    sent.sort();
    assert_eq!(sent, ["DELETE", "PATCH", "POST"], "{stdout}{stderr}");
    assert!(!stdout.contains("skipped"), "{stdout}");
    assert_ne!(code, 4, "{stdout}{stderr}");
}
