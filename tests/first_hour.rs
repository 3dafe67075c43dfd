//! What trips a new user in the first hour: each test is one trap, checked for every command or
//! flag of its kind (reset and `--fail-on-unused`, folders that are not stores, side effects of a
//! failed start, `.gitignore`, exit codes, import, record-time warnings, the miss body, the default
//! source, drift set-up problems, and the small print).

use std::path::{Path, PathBuf};

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

/// A copy of the shipped sample cassettes in `dir/name`.
fn shipped_copy(dir: &Path, name: &str) -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("cassettes");
    let out = dir.join(name);
    std::fs::create_dir_all(&out).unwrap();
    for (file, bytes) in all_files(&repo) {
        std::fs::write(out.join(file), bytes).unwrap();
    }
    out
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

// #3: only record, auto and import create a store; every other command refuses a folder that is
// not one, by name, and leaves it as it was.

#[test]
fn first_hour_only_record_auto_and_import_create_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let cassettes = shipped_copy(dir.path(), "cassettes");
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let before = all_files(&cassettes);
    for folder in ["cassettes", "empty", "missing"] {
        let cases: [&[&str]; 6] = [
            &["export", "--store", folder, "--out", "out"],
            &[
                "export", "--store", folder, "--out", "out.har", "--format", "har",
            ],
            &["ls", "--store", folder],
            &["show", "/v2", "--store", folder],
            &["replay", "--store", folder, "--listen", "0"],
            &[
                "drift",
                "--upstream",
                "http://127.0.0.1:1",
                "--store",
                folder,
            ],
        ];
        for args in cases {
            let (code, stderr) = run(args, dir.path());
            assert_eq!(code, 1, "{args:?}: {stderr}");
            assert!(
                stderr.contains(&format!("--store {folder}"))
                    && stderr.contains("not an ims-vcr store"),
                "{args:?}: {stderr}"
            );
        }
    }
    assert_eq!(
        all_files(&cassettes),
        before,
        "a command wrote into cassettes/"
    );
    assert!(all_files(&dir.path().join("empty")).is_empty());
    for made in ["missing", "out", "out.har"] {
        assert!(!dir.path().join(made).exists(), "{made} was created");
    }
    // A store is not made inside a folder that holds something else, by any command.
    let fake_url = "http://127.0.0.1:1";
    for args in [
        &[
            "record",
            "--upstream",
            fake_url,
            "--listen",
            "0",
            "--store",
            "cassettes",
        ][..],
        &[
            "auto",
            "--upstream",
            fake_url,
            "--listen",
            "0",
            "--store",
            "cassettes",
        ],
        &["import", "--store", "cassettes", "cassettes"],
    ] {
        let (code, stderr) = run(args, dir.path());
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(
            stderr.contains("--store cassettes") && stderr.contains("not an ims-vcr store"),
            "{args:?}: {stderr}"
        );
    }
    assert_eq!(
        all_files(&cassettes),
        before,
        "a store was made in cassettes/"
    );
    // The three that may create one do, in a new or empty folder.
    let (code, stderr) = run(&["import", "--store", "empty", "cassettes"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    let (code, stderr) = run(&["ls", "--store", "empty"], dir.path());
    assert_eq!(code, 0, "{stderr}");
}

#[tokio::test]
async fn first_hour_an_in_process_replay_of_a_missing_store_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let started = ims_vcr::ProxyServer::builder()
        .replay()
        .store(&missing)
        .start()
        .await;
    let Err(err) = started else {
        panic!("a missing store is refused");
    };
    assert!(err.to_string().contains("not an ims-vcr store"), "{err}");
    assert!(!missing.exists());
}

// #4: a start that fails (bad upstream URL, port in use, missing CA file) leaves nothing behind.

#[test]
fn first_hour_a_failed_start_creates_no_store() {
    let dir = tempfile::tempdir().unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = busy.local_addr().unwrap().to_string();
    for mode in ["record", "auto"] {
        let cases: [&[&str]; 3] = [
            &[mode, "--upstream", "ims.example.com", "--listen", "0"],
            &[mode, "--upstream", "http://127.0.0.1:1", "--listen", &busy],
            &[
                mode,
                "--upstream",
                "https://127.0.0.1:1",
                "--upstream-ca",
                "missing.pem",
                "--listen",
                "0",
            ],
        ];
        for args in cases {
            let (code, stderr) = run(args, dir.path());
            assert_ne!(code, 0, "{args:?}: {stderr}");
            assert!(
                !dir.path().join(".ims-vcr").exists(),
                "{args:?} created .ims-vcr/: {stderr}"
            );
        }
    }
}

// #6: a store keeps itself out of the user's repository.

#[test]
fn first_hour_a_new_store_is_git_ignored_and_still_a_whole_store() {
    let dir = tempfile::tempdir().unwrap();
    shipped_copy(dir.path(), "cassettes");
    let has_git = std::process::Command::new("git")
        .args(["init", "-q"])
        .current_dir(dir.path())
        .status()
        .is_ok_and(|s| s.success());
    // The default store: its folder and the `.ims-vcr` folder made for it are ignored.
    let (code, stderr) = run(&["import", "cassettes"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    for ignore in [".ims-vcr/.gitignore", ".ims-vcr/store/.gitignore"] {
        let text = std::fs::read_to_string(dir.path().join(ignore)).unwrap();
        assert!(text.lines().any(|l| l == "*"), "{ignore}: {text}");
    }
    if has_git {
        let status = std::process::Command::new("git")
            .args(["status", "--porcelain", "--untracked-files=all"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        let status = String::from_utf8_lossy(&status.stdout);
        assert!(!status.contains(".ims-vcr"), "{status}");
        assert!(status.contains("cassettes/"), "{status}");
    }
    // The file does not make the store look damaged, and a reopened store is not re-ignored.
    let (code, stdout, stderr) = run_with_stdout(&["ls", "--store", ".ims-vcr/store"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("/v2/schemas/image"), "{stdout}");
    // A store elsewhere: only its own folder gets one; a parent the user made is left alone.
    std::fs::create_dir(dir.path().join("mine")).unwrap();
    let (code, stderr) = run(&["import", "--store", "mine/s", "cassettes"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(dir.path().join("mine/s/.gitignore").exists());
    assert!(!dir.path().join("mine/.gitignore").exists());
    std::fs::create_dir_all(dir.path().join("own/.ims-vcr")).unwrap();
    let (code, stderr) = run(
        &["import", "--store", "own/.ims-vcr/store", "cassettes"],
        dir.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(!dir.path().join("own/.ims-vcr/.gitignore").exists());
    assert!(dir.path().join("own/.ims-vcr/store/.gitignore").exists());
}

// #5, #16: one exit-code table, printed by every command's --help and obeyed by the binary;
// every bad flag value is a usage error.

/// `ims-vcr ARGS` off the async runtime (a fake it talks to runs on the test's runtime).
async fn run_blocking(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let cwd = cwd.to_owned();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_with_stdout(&args, &cwd)
    })
    .await
    .unwrap()
}

/// The code `ims-vcr [COMMAND] --help` gives for the exit-code line mentioning `phrase`.
fn documented(command: Option<&str>, phrase: &str) -> i32 {
    let args: Vec<&str> = command.into_iter().chain(["--help"]).collect();
    let out = std::process::Command::new(BIN)
        .args(&args)
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    let codes = help
        .split("Exit codes:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{args:?}: no exit codes in:\n{help}"));
    let mut code = None;
    for line in codes.lines().take_while(|l| l.starts_with("  ")) {
        let text = line.trim_start();
        if let Some((n, _)) = text
            .split_once("  ")
            .filter(|(n, _)| n.parse::<i32>().is_ok())
        {
            code = n.parse().ok();
        }
        if text.contains(phrase) {
            return code.unwrap_or_else(|| panic!("{args:?}: {line:?} has no code"));
        }
    }
    panic!("{args:?}: no exit code mentions {phrase:?} in:\n{codes}")
}

#[test]
fn first_hour_every_command_documents_the_same_exit_codes_and_the_guide_shows_them() {
    let commands = [
        "record",
        "auto",
        "replay",
        "passthrough",
        "export",
        "import",
        "ls",
        "show",
        "drift",
        "completions",
        "verify",
    ];
    for command in commands.into_iter().map(Some).chain([None]) {
        assert_eq!(documented(command, "success"), 0, "{command:?}");
        assert_eq!(documented(command, "runtime error"), 1, "{command:?}");
        assert_eq!(documented(command, "usage error"), 2, "{command:?}");
    }
    let guide =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/guide.md"))
            .unwrap();
    let table = ims_vcr::cli::exit_codes_markdown();
    assert!(
        guide.contains(&table),
        "docs/guide.md must hold the exit-code table:\n{table}"
    );
}

#[test]
fn first_hour_bad_flag_values_are_usage_errors_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    shipped_copy(dir.path(), "cassettes");
    let usage = documented(None, "usage error");
    let up = "http://127.0.0.1:1";
    let cases: [(&[&str], &str); 9] = [
        (&["replay", "--listen", "99999"], "--listen"),
        (&["replay", "--listen", "0.0.0.0:0"], "--allow-remote"),
        (
            &["replay", "--header-read-timeout", "0"],
            "--header-read-timeout",
        ),
        (
            &["record", "--upstream", up, "--upstream-timeout", "0"],
            "--upstream-timeout",
        ),
        (
            &["drift", "--upstream", up, "--upstream-timeout", "NaN"],
            "--upstream-timeout",
        ),
        (&["record", "--upstream", "ims.example.com"], "--upstream"),
        (
            &["auto", "--upstream", up, "--match-header", "X-Auth-Token"],
            "--match-header",
        ),
        (&["export"], "--out"),
        (&["replay", "--sequence", "sometimes"], "--sequence"),
    ];
    for (args, flag) in cases {
        let (code, stderr) = run(args, dir.path());
        assert_eq!(code, usage, "{args:?}: {stderr}");
        assert!(
            stderr.contains(flag),
            "{args:?}: expected {flag:?} in {stderr}"
        );
        assert!(!dir.path().join(".ims-vcr").exists(), "{args:?}");
    }
}

#[tokio::test]
async fn first_hour_verdicts_exit_with_the_documented_codes() {
    let dir = tempfile::tempdir().unwrap();
    shipped_copy(dir.path(), "cassettes");
    // replay --fail-on-miss
    let proxy = Running::start(&["replay", "--listen", "0", "--fail-on-miss"], dir.path());
    get(&format!("{}/v2/images/not-recorded", proxy.uri)).await;
    let status = proxy.terminate();
    assert_eq!(
        status.code(),
        Some(documented(Some("replay"), "--fail-on-miss"))
    );
    // verify findings
    let (code, _, stderr) = run_blocking(
        &["verify", "cassettes", "--deny", SEED_IMAGE_ID],
        dir.path(),
    )
    .await;
    assert_eq!(code, documented(Some("verify"), "findings"), "{stderr}");
    // drift: a breaking change (a field the live API no longer sends)
    let fake = FakeIms::start(FakeOptions::default()).await;
    let store = dir.path().join("store");
    let proxy = recorder(&fake, &store).await;
    get(&image_url(&proxy, SEED_IMAGE_ID)).await;
    proxy.shutdown().await.unwrap();
    let aged = dir.path().join("aged");
    export_store(&store, &aged, None).unwrap();
    let (name, bytes) = all_files(&aged).into_iter().next().unwrap();
    let mut cassette: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    cassette["answers"][0]["body"]["json"]["__legacy_flag"] = true.into();
    std::fs::write(aged.join(name), serde_json::to_vec(&cassette).unwrap()).unwrap();
    let ca = fake.write_ca_pem(dir.path());
    let url = fake.base_url();
    let drift = [
        "drift",
        "--upstream",
        &url,
        "--upstream-ca",
        ca.to_str().unwrap(),
    ];
    let (code, stdout, stderr) =
        run_blocking(&[&drift[..], &["--cassettes", "aged"]].concat(), dir.path()).await;
    assert_eq!(
        code,
        documented(Some("drift"), "breaking change"),
        "{stdout}{stderr}"
    );
}

// #12: drift tells a set-up problem (no token, an unreachable upstream) from an API change.

#[tokio::test]
async fn first_hour_drift_reports_refused_credentials_and_an_unreachable_upstream_as_unchecked() {
    let dir = tempfile::tempdir().unwrap();
    let token = "first-hour-token";
    let fake = FakeIms::start(FakeOptions {
        require_token: Some(token.into()),
        ..FakeOptions::default()
    })
    .await;
    let store = dir.path().join("store");
    let proxy = recorder(&fake, &store).await;
    for id in [SEED_IMAGE_ID, UNKNOWN_IMAGE_ID] {
        let reply = send(
            "GET",
            &image_url(&proxy, id),
            &[("x-auth-token", token)],
            b"",
        )
        .await;
        assert_eq!(reply.header("x-ims-vcr"), Some("recorded"));
    }
    proxy.shutdown().await.unwrap();
    let unchecked = documented(Some("drift"), "could not be checked");
    assert_ne!(unchecked, documented(Some("drift"), "breaking change"));
    let ca = fake.write_ca_pem(dir.path());
    let ca = ca.to_str().unwrap();
    let url = fake.base_url();
    // No token: the live endpoint answers 401 where 200 and 404 were recorded.
    let (code, stdout, stderr) = run_blocking(
        &[
            "drift",
            "--upstream",
            &url,
            "--upstream-ca",
            ca,
            "--store",
            "store",
        ],
        dir.path(),
    )
    .await;
    assert_eq!(code, unchecked, "{stdout}{stderr}");
    assert!(!stdout.contains("breaking)"), "{stdout}");
    assert!(
        stdout.contains(&format!("GET /v2/images/{SEED_IMAGE_ID} : not checked: the upstream refused the credentials (401")),
        "{stdout}"
    );
    assert!(stdout.ends_with("0 breaking; 2 not checked\n"), "{stdout}");
    assert!(
        stderr.contains("refused the credentials") && stderr.contains("IMS_VCR_DRIFT_TOKEN"),
        "{stderr}"
    );
    // Nothing listening: no answer at all.
    let (code, stdout, stderr) = run_blocking(
        &[
            "drift",
            "--upstream",
            "http://127.0.0.1:1",
            "--store",
            "store",
        ],
        dir.path(),
    )
    .await;
    assert_eq!(code, unchecked, "{stdout}{stderr}");
    assert!(
        stdout.contains(" : not checked: no answer: cannot connect"),
        "{stdout}"
    );
    assert!(stderr.contains("could not be reached"), "{stderr}");
}

// #7: import says what it added and what it replaced.

#[tokio::test]
async fn first_hour_import_says_how_many_requests_it_added_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions::default()).await;
    // The store: the polled image answered four times.
    let store = dir.path().join("s");
    let proxy = recorder(&fake, &store).await;
    for _ in 0..4 {
        get(&image_url(&proxy, POLLING_IMAGE_ID)).await;
    }
    proxy.shutdown().await.unwrap();
    // The cassettes: the same request answered once, and the seed image.
    let other = dir.path().join("other");
    let proxy = recorder(&fake, &other).await;
    get(&image_url(&proxy, POLLING_IMAGE_ID)).await;
    get(&image_url(&proxy, SEED_IMAGE_ID)).await;
    proxy.shutdown().await.unwrap();
    export_store(&other, &dir.path().join("cassettes"), None).unwrap();

    let (code, _, stderr) =
        run_blocking(&["import", "--store", "s", "cassettes"], dir.path()).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(
            "imported 2 requests (2 answers) into s: 1 new, 1 replaced (the 4 answers it had in the store are gone)"
        ),
        "{stderr}"
    );
    let (code, _, stderr) =
        run_blocking(&["import", "--store", "s", "cassettes"], dir.path()).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("0 new, 2 replaced (the 2 answers they had in the store are gone)"),
        "{stderr}"
    );
    assert_eq!(stored_answers(&store), 2);
}

// #8: a refused credential is recorded with a warning; an upstream URL with a path is refused.

#[tokio::test]
async fn first_hour_recording_a_refusal_warns_once_per_request() {
    let dir = tempfile::tempdir().unwrap();
    let token = "first-hour-token";
    let fake = FakeIms::start(FakeOptions {
        require_token: Some(token.into()),
        ..FakeOptions::default()
    })
    .await;
    for mode in ["record", "auto"] {
        let store = format!("{mode}-store");
        let proxy = Running::forwarding(mode, &fake, dir.path(), &["--store", &store], &[]);
        let seed = image_url_of(&proxy.uri, SEED_IMAGE_ID);
        for _ in 0..2 {
            assert_eq!(get(&seed).await.status, 401, "{mode}");
        }
        assert_eq!(
            get(&format!("{}/v2/schemas/image", proxy.uri)).await.status,
            401
        );
        let with_token = [("x-auth-token", token)];
        let forbidden = image_url_of(&proxy.uri, &error_image_id(403));
        assert_eq!(send("GET", &forbidden, &with_token, b"").await.status, 403);
        let fine = image_url_of(&proxy.uri, UNKNOWN_IMAGE_ID);
        assert_eq!(send("GET", &fine, &with_token, b"").await.status, 404);
        let (status, log) = {
            proxy.signal("-TERM");
            proxy.wait_with_log()
        };
        assert!(status.success(), "{log}");
        let warnings: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("WARN") && l.contains("the credential, not the API"))
            .collect();
        assert_eq!(warnings.len(), 3, "{mode}: one per request line:\n{log}");
        for (line, status) in [
            (format!("GET /v2/images/{SEED_IMAGE_ID}"), 401),
            ("GET /v2/schemas/image".to_owned(), 401),
            (format!("GET /v2/images/{}", error_image_id(403)), 403),
        ] {
            assert!(
                warnings
                    .iter()
                    .any(|w| w.contains(&line) && w.contains(&status.to_string())),
                "{mode}: {line}: {warnings:#?}"
            );
        }
    }
}

fn image_url_of(uri: &str, id: &str) -> String {
    format!("{uri}/v2/images/{id}")
}

#[test]
fn first_hour_an_upstream_url_with_a_path_is_refused_for_every_command_that_takes_one() {
    let dir = tempfile::tempdir().unwrap();
    shipped_copy(dir.path(), "cassettes");
    let usage = documented(None, "usage error");
    for command in ["record", "auto", "passthrough", "drift"] {
        let (code, stderr) = run(
            &[
                command,
                "--upstream",
                "http://127.0.0.1:1/v2",
                "--listen",
                "0",
            ][..if command == "drift" { 3 } else { 5 }],
            dir.path(),
        );
        assert_eq!(code, usage, "{command}: {stderr}");
        assert!(
            stderr.contains("scheme://host[:port]")
                && stderr.contains("/v2/v2/")
                && stderr.contains("--upstream http://127.0.0.1:1"),
            "{command}: {stderr}"
        );
    }
    // A trailing slash alone is no path.
    let (code, stderr) = run(
        &[
            "drift",
            "--upstream",
            "http://127.0.0.1:1/",
            "--upstream-timeout",
            "2",
        ],
        dir.path(),
    );
    assert_ne!(code, usage, "{stderr}");
}

// #9: every error ims-vcr answers is one the official clients turn into a readable error.

/// What the official Python clients make of an error answer, without a network: the Huawei
/// SDK's exception handler, openstacksdk's `raise_from_response`, and python-glanceclient's
/// `exc.from_response` (copied: glanceclient is not in the interop venv), which calls `.get` on
/// every top-level value of a JSON error body.
const PARSE_ERROR_PY: &str = r#"
import json, sys, requests
from huaweicloudsdkcore.exceptions import exceptions as hw
from huaweicloudsdkcore.exceptions.exception_handler import DefaultExceptionHandler
import openstack.exceptions as osx

status, body = int(sys.argv[1]), sys.stdin.read()
response = requests.Response()
response.status_code = status
response._content = body.encode()
response.headers["Content-Type"] = "application/json"
out = {}
try:
    DefaultExceptionHandler().handle_exception(None, response)
except hw.ServiceResponseException as e:
    out["huawei"] = {"code": e.error_code, "message": e.error_msg}
try:
    osx.raise_from_response(response)
except osx.HttpException as e:
    out["openstack"] = e.details
try:
    # python-glanceclient 4.x glanceclient/exc.py from_response:
    messages = [obj.get("message") for obj in response.json().values()]
    out["glance"] = "\n".join(i for i in messages if i is not None)
except Exception as e:
    out["glance"] = "crashed: %s: %s" % (type(e).__name__, e)
print(json.dumps(out))
"#;

async fn client_view(reply: &Reply) -> serde_json::Value {
    let python = crate::interop::python();
    let (status, body) = (reply.status.to_string(), reply.body.clone());
    tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        let mut child = std::process::Command::new(python)
            .args(["-c", PARSE_ERROR_PY, &status])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&body).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_hour_every_error_answer_reads_as_an_error_in_every_client() {
    let dir = tempfile::tempdir().unwrap();
    let cassettes = shipped_copy(dir.path(), "cassettes");
    let replay = cassette_replayer(&cassettes).await;
    let miss = get(&format!("{}/v2/images/not-recorded", replay.uri())).await;
    assert_eq!(miss.status, 599);
    let control = get(&format!("{}/__ims-vcr/nothing", replay.uri())).await;
    let too_big = ims_vcr::ProxyServer::builder()
        .cassettes(&cassettes)
        .max_body(10)
        .start()
        .await
        .unwrap();
    let too_big = send(
        "POST",
        &format!("{}/v2/images", too_big.uri()),
        &[],
        &[b'x'; 100],
    )
    .await;
    let forwarding = ims_vcr::ProxyServer::builder()
        .passthrough(ims_vcr::UpstreamConfig::new("http://127.0.0.1:1"))
        .start()
        .await
        .unwrap();
    let unreachable = get(&format!("{}/v2/images/x", forwarding.uri())).await;
    for (reply, code, says) in [
        (
            &miss,
            "IMS_VCR.MISS",
            "no recording for GET /v2/images/not-recorded",
        ),
        (&control, "IMS_VCR.NOT_FOUND", "no control endpoint"),
        (&too_big, "IMS_VCR.BODY_TOO_LARGE", "larger than 10 bytes"),
        (
            &unreachable,
            "IMS_VCR.UPSTREAM",
            "cannot connect to upstream",
        ),
    ] {
        let body = reply.json();
        for (name, value) in body.as_object().unwrap() {
            assert!(
                value.is_object(),
                "{code}: top-level {name:?} is not an object: {body}"
            );
        }
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(body["error"]["title"].is_string(), "{body}");
        let view = client_view(reply).await;
        assert_eq!(view["huawei"]["code"], code, "{view}");
        for client in [
            &view["huawei"]["message"],
            &view["openstack"],
            &view["glance"],
        ] {
            assert!(
                client.as_str().is_some_and(|m| m.contains(says)),
                "{code}: {view}"
            );
        }
    }
    // The miss's status line names it.
    let raw = raw_exchange(
        replay.address(),
        b"GET /v2/images/not-recorded HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 599 Replay Miss\r\n"), "{raw}");
}

// #10: after recording, ls, show, replay and drift read the store just written.

#[tokio::test]
async fn first_hour_after_recording_the_commands_read_the_store_just_written() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".ims-vcr")).unwrap();
    record_five(&dir.path().join(".ims-vcr/store")).await;
    let cwd = dir.path();
    let (code, stdout, stderr) = run_blocking(&["ls"], cwd).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("/v2/schemas/image"), "{stdout}");
    assert!(
        stderr.contains("the store .ims-vcr/store"),
        "says which: {stderr}"
    );
    let (code, stdout, stderr) = run_blocking(&["show", "/v2/schemas/image"], cwd).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("GET /v2/schemas/image"), "{stdout}");
    // show's hint, followed as given, works.
    for source in [&[][..], &["--store", ".ims-vcr/store"]] {
        let args = [&["show", "/nope"][..], source].concat();
        let (code, _, stderr) = run_blocking(&args, cwd).await;
        assert_eq!(code, 1, "{stderr}");
        let hint = stderr
            .split('`')
            .nth(1)
            .unwrap_or_else(|| panic!("no hint in {stderr}"));
        let hint: Vec<&str> = hint.split_whitespace().skip(1).collect();
        assert_eq!(hint[0], "ls", "{stderr}");
        assert_eq!(&hint[1..], source, "{stderr}");
        let (code, stdout, stderr) = run_blocking(&hint, cwd).await;
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.contains("/v2/schemas/image"), "{stdout}");
    }
    let proxy = Running::start(&["replay", "--listen", "0"], cwd);
    let reply = get(&format!("{}/v2/schemas/image", proxy.uri)).await;
    assert_eq!(reply.header("x-ims-vcr"), Some("hit"));
    assert!(
        proxy.log().contains("the store .ims-vcr/store"),
        "{}",
        proxy.log()
    );
    drop(proxy);
    let (_, stdout, stderr) =
        run_blocking(&["drift", "--upstream", "http://127.0.0.1:1"], cwd).await;
    assert!(stdout.contains("5 not checked"), "{stdout}{stderr}");
    // With a cassettes folder beside it, the cassettes win, and it says so.
    shipped_copy(cwd, "cassettes");
    let (code, stdout, stderr) = run_blocking(&["ls"], cwd).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(!stdout.contains("/v2/images/5ee0a9b4"), "{stdout}");
    assert!(stderr.contains("the cassettes in cassettes"), "{stderr}");
    // A `cassettes` that is no folder (a file, a link to nothing) is said, not passed over for
    // the store.
    std::fs::remove_dir_all(cwd.join("cassettes")).unwrap();
    std::fs::write(cwd.join("cassettes"), "not a folder").unwrap();
    let (code, _, stderr) = run_blocking(&["ls"], cwd).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("cassettes: it is not a folder") && stderr.contains("--store DIR"),
        "{stderr}"
    );
    std::fs::remove_file(cwd.join("cassettes")).unwrap();
    std::os::unix::fs::symlink(cwd.join("gone"), cwd.join("cassettes")).unwrap();
    let (code, _, stderr) = run_blocking(&["ls"], cwd).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("cassettes: it is a link to nothing"),
        "{stderr}"
    );
    // Neither: the error names both, and what to do.
    let empty = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run_blocking(&["ls"], empty.path()).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("cassettes")
            && stderr.contains(".ims-vcr/store")
            && stderr.contains("record"),
        "{stderr}"
    );
}

// #17: the small print.

/// Counts with the wrong noun: "1 requests", "1 misses", "request(s)".
fn bad_plurals(text: &str) -> Vec<String> {
    let mut bad = Vec::new();
    let words: Vec<&str> = text.split_whitespace().collect();
    for pair in words.windows(2) {
        let noun = pair[1].trim_matches(|c: char| !c.is_alphanumeric());
        let plural = [
            "requests",
            "answers",
            "misses",
            "hits",
            "cassettes",
            "recordings",
            "errors",
            "changes",
            "problems",
            "values",
        ];
        if pair[0] == "1" && plural.contains(&noun) {
            bad.push(format!("{} {}", pair[0], pair[1]));
        }
    }
    bad.extend(
        text.match_indices("(s)")
            .map(|(i, _)| text[i.saturating_sub(20)..i + 3].to_owned()),
    );
    bad
}

#[tokio::test]
async fn first_hour_counts_of_one_read_as_english() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions::default()).await;
    let store = dir.path().join("s");
    let proxy = recorder(&fake, &store).await;
    get(&image_url(&proxy, SEED_IMAGE_ID)).await;
    proxy.shutdown().await.unwrap();
    let mut said = String::new();
    for args in [
        &["export", "--store", "s", "--out", "one"][..],
        &[
            "export", "--store", "s", "--out", "one.har", "--format", "har",
        ],
        &["ls", "--store", "s"],
        &["verify", "one"],
        &["import", "--store", "s2", "one"],
    ] {
        let (code, _, stderr) = run_blocking(args, dir.path()).await;
        assert_eq!(code, 0, "{args:?}: {stderr}");
        said.push_str(&stderr);
    }
    let (_, stdout, _) = run_blocking(&["verify", "one"], dir.path()).await;
    said.push_str(&stdout);
    assert!(said.contains("exported 1 request (1 answer)"), "{said}");
    assert!(said.contains("verified 1 cassette (1 answer)"), "{said}");
    let proxy = Running::start(
        &[
            "replay",
            "--store",
            "s",
            "--listen",
            "0",
            "--fail-on-miss",
            "--fail-on-unused",
        ],
        dir.path(),
    );
    get(&format!("{}/v2/images/not-recorded", proxy.uri)).await;
    proxy.signal("-TERM");
    let (status, log) = proxy.wait_with_log();
    assert_eq!(status.code(), Some(3));
    assert!(
        log.contains(
            "ims-vcr summary: 0 hits, 1 miss, 0 recorded, 0 upstream errors, 1 unused recording"
        ),
        "{log}"
    );
    assert!(
        log.contains("1 request missed (--fail-on-miss); 1 recording never played"),
        "{log}"
    );
    said.push_str(&log);
    assert_eq!(bad_plurals(&said), Vec::<String>::new(), "{said}");
}

#[tokio::test]
async fn first_hour_logs_say_what_matters_and_only_that() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions::default()).await;
    // A routine record session does not announce its replay pack.
    let proxy = Running::record(&fake, dir.path(), &["--store", "s"], &[]);
    get(&format!("{}/v2/images/{SEED_IMAGE_ID}", proxy.uri)).await;
    proxy.signal("-TERM");
    let (status, log) = proxy.wait_with_log();
    assert!(status.success(), "{log}");
    assert!(!log.contains("replay pack"), "{log}");
    // passthrough reads no recordings, and does not say it does.
    let proxy = Running::forwarding("passthrough", &fake, dir.path(), &[], &[]);
    get(&format!("{}/v2/images/{SEED_IMAGE_ID}", proxy.uri)).await;
    let log = proxy.log();
    assert!(
        !log.contains("cassettes") && !log.contains("recordings loaded"),
        "{log}"
    );
    drop(proxy);
    // An upstream whose CA is not trusted: the answer says which flag fixes it.
    let untrusted = ims_vcr::ProxyServer::builder()
        .record(ims_vcr::UpstreamConfig::new(fake.base_url()))
        .store(dir.path().join("s3"))
        .start()
        .await
        .unwrap();
    let reply = get(&image_url(&untrusted, SEED_IMAGE_ID)).await;
    assert_eq!(reply.status, 502);
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("--upstream-ca"), "{message}");
}

#[test]
fn first_hour_verify_of_a_folder_without_cassettes_says_so() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let (code, stdout, stderr) = run_with_stdout(&["verify", "empty"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("verified 0 cassettes"), "{stdout}");
    assert!(stderr.contains("no cassette"), "a warning: {stderr}");
    let (code, stdout, stderr) =
        run_with_stdout(&["verify", "empty", "--require-redaction"], dir.path());
    assert_eq!(
        code,
        documented(Some("verify"), "findings"),
        "{stdout}{stderr}"
    );
    assert!(
        stderr.contains("no cassette") && stderr.contains("--require-redaction"),
        "{stderr}"
    );
}

#[test]
fn first_hour_no_color_turns_log_colours_off_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    shipped_copy(dir.path(), "cassettes");
    // script(1) gives the command a terminal, where log lines are coloured unless NO_COLOR is set.
    let on_a_terminal = |no_color: Option<&str>| {
        let mut command = std::process::Command::new("script");
        command
            .args(["-qec", &format!("{BIN} ls"), "/dev/null"])
            .current_dir(dir.path())
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR");
        if let Some(value) = no_color {
            command.env("NO_COLOR", value);
        }
        let out = command.output().expect("script(1), from util-linux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let coloured = on_a_terminal(None);
    assert!(coloured.contains("reading the cassettes"), "{coloured}");
    assert!(
        coloured.contains("\u{1b}["),
        "colours on a terminal: {coloured:?}"
    );
    for value in ["1", "true"] {
        let plain = on_a_terminal(Some(value));
        assert!(plain.contains("reading the cassettes"), "{plain}");
        assert!(!plain.contains("\u{1b}["), "NO_COLOR={value}: {plain:?}");
    }
}
