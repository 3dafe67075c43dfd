//! The `ims-vcr` binary as a user runs it: the listening line, SIGTERM, `kill -9`, locked stores,
//! and errors that name the flag.

use std::process::Command;

use crate::util::*;

#[tokio::test]
async fn replay_with_no_flags_serves_the_repository_cassettes_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    shipped_cassettes(dir.path());
    let proxy = Running::start(&["replay", "--listen", "127.0.0.1:0"], dir.path());
    assert!(proxy.uri.starts_with("http://127.0.0.1:"), "{}", proxy.uri);
    let reply = get(&format!("{}/v2/images/{SEED_IMAGE_ID}", proxy.uri)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["id"], SEED_IMAGE_ID);
    proxy.signal("-TERM");
    assert!(proxy.wait().success());
}

#[tokio::test]
async fn an_answered_interaction_survives_kill_9() {
    let fake = FakeIms::start(FakeOptions::default()).await;
    // Journal written before each answer (the default), and synced too (`--fsync`).
    for fsync in [&[][..], &["--fsync"]] {
        let dir = tempfile::tempdir().unwrap();
        let args = [&["--store", "s"][..], fsync].concat();
        let proxy = Running::record(&fake, dir.path(), &args, &[]);
        let ids = [SEED_IMAGE_ID, UNKNOWN_IMAGE_ID, POLLING_IMAGE_ID];
        for id in ids {
            let reply = get(&format!("{}/v2/images/{id}", proxy.uri)).await;
            assert_eq!(reply.header("x-ims-vcr"), Some("recorded"), "{fsync:?}");
        }
        proxy.signal("-KILL");
        assert!(!proxy.wait().success());
        assert_eq!(
            stored_answers(&dir.path().join("s")),
            ids.len(),
            "{fsync:?}"
        );
        // Reopening applied the journal to sled and emptied it.
        let journal = dir
            .path()
            .join("s")
            .join(ims_vcr::storage::journal::JOURNAL_FILE);
        assert_eq!(std::fs::metadata(journal).unwrap().len(), 0, "{fsync:?}");
    }
}

#[tokio::test]
async fn sigterm_drains_and_flushes_then_export_and_import_work_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions::default()).await;
    let proxy = Running::record(&fake, dir.path(), &["--store", "s"], &[]);
    get(&format!("{}/v2/images/{SEED_IMAGE_ID}", proxy.uri)).await;

    // While the recorder holds the store, export fails clearly instead of hanging or panicking.
    let (code, stderr) = run(&["export", "--store", "s", "--out", "out"], dir.path());
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("store s is in use by another process"),
        "{stderr}"
    );

    proxy.signal("-TERM");
    assert!(proxy.wait().success());
    let (code, stderr) = run(&["export", "--store", "s", "--out", "out"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("exported 1 request (1 answer)"), "{stderr}");
    // Exporting again removes a stale cassette named as export names them, and says which; a
    // cassette written by hand under another name is kept.
    let out = dir.path().join("out");
    let exported = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let stale = out.join("get_v2_images_gone_0123456789ab.json");
    let fixture = out.join("image_fixture.json");
    std::fs::copy(&exported, &stale).unwrap();
    std::fs::copy(&exported, &fixture).unwrap();
    let (code, stderr) = run(&["export", "--store", "s", "--out", "out"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(
            "removed 1 stale cassette (requests no longer in the store): \
             get_v2_images_gone_0123456789ab.json"
        ),
        "{stderr}"
    );
    assert!(!stale.exists() && fixture.exists());
    std::fs::remove_file(fixture).unwrap();
    let (code, stderr) = run(&["import", "--store", "s2", "out"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stored_answers(&dir.path().join("s2")), 1);
}

#[test]
fn bad_flags_get_errors_that_name_them() {
    let dir = tempfile::tempdir().unwrap();
    // Bad flag values are usage errors (2); unusable files and folders are runtime errors (1).
    std::fs::write(dir.path().join("a-file"), b"").unwrap();
    let cases: [(&[&str], i32, &str); 11] = [
        // A URL with a credential in its query is named without it.
        (
            &[
                "record",
                "--upstream",
                "http://127.0.0.1:1/?token=pw-in-url",
            ],
            2,
            "'http://127.0.0.1:1/?token=REDACTED' for '--upstream <URL>'",
        ),
        (
            &[
                "record",
                "--upstream",
                "http://127.0.0.1:1",
                "--route",
                "/v3=https://127.0.0.1:2/?X-Auth-Token=pw-in-url",
            ],
            1,
            "--route /v3: invalid --upstream \"https://127.0.0.1:2/?X-Auth-Token=REDACTED\"",
        ),
        // A URL with user information is named without its password.
        (
            &["record", "--upstream", "http://u:pw-in-url@127.0.0.1:1"],
            2,
            "'http://REDACTED@127.0.0.1:1' for '--upstream <URL>'",
        ),
        (
            &[
                "record",
                "--upstream",
                "http://127.0.0.1:1",
                "--route",
                "/v3=http://u:pw-in-url@127.0.0.1:2",
            ],
            1,
            "--route /v3: invalid --upstream \"http://REDACTED@127.0.0.1:2\"",
        ),
        (
            &["replay", "--cassettes", "a-file"],
            1,
            "--cassettes a-file: not a directory",
        ),
        (
            &["export", "--store", "nostore", "--out", "a-file"],
            2,
            "--out a-file: not a directory",
        ),
        (
            &["record", "--upstream", "ims.example.com"],
            2,
            "--upstream",
        ),
        (
            &[
                "record",
                "--upstream",
                "https://x",
                "--upstream-ca",
                "missing.pem",
            ],
            1,
            "--upstream-ca missing.pem",
        ),
        (
            &["replay", "--cassettes", "nowhere"],
            1,
            "--cassettes nowhere",
        ),
        (&["replay", "--listen", "0.0.0.0:0"], 2, "--allow-remote"),
        (
            &["export", "--store", "nostore", "--out", "o"],
            1,
            "--store nostore",
        ),
    ];
    for (args, expected_code, expected) in cases {
        let (code, stderr) = run(args, dir.path());
        assert_eq!(code, expected_code, "{args:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?}: expected {expected:?} in {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!stderr.contains("pw-in-url"), "{args:?}: {stderr}");
    }
    // Nothing was created by a refused command.
    assert!(!dir.path().join(".ims-vcr").exists());
}

#[test]
fn help_shows_examples_and_version_shows_the_cassette_format() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Examples:") && help.contains("ims-vcr replay"),
        "{help}"
    );
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("cassette format 1"));
}
