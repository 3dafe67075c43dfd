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
