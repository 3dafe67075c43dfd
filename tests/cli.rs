//! The `ims-vcr` binary as a user runs it: the listening line, SIGTERM, `kill -9`, locked stores,
//! and errors that name the flag.

use std::process::Command;

use crate::util::*;
use ims_vcr::formats::cassette;

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
    // The store's log written before each answer (the default); with `--fsync` the journal
    // written and synced before it.
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
        // What the kill left: the answers in the log's file, or with `--fsync` in the journal
        // (the log then gathers 32 before it writes them).
        let store = dir.path().join("s");
        let len = |name: &str| std::fs::metadata(store.join(name)).map_or(0, |m| m.len());
        let logged = len(ims_vcr::storage::log_file::LOG_FILE) > 0;
        assert_eq!(logged, fsync.is_empty(), "{fsync:?}");
        let journal = ims_vcr::storage::journal::JOURNAL_FILE;
        assert_eq!(len(journal) > 0, !fsync.is_empty(), "{fsync:?}");
        assert_eq!(stored_answers(&store), ids.len(), "{fsync:?}");
        // Reopening applied what the journal held to the log and emptied it.
        assert_eq!(len(journal), 0, "{fsync:?}");
    }
}

/// A store folder deleted while `record` runs (`rm -rf` of it) takes every answer recorded
/// into it: the session says so naming the store, counts them as not stored, and exits 3.
#[tokio::test]
async fn a_store_folder_deleted_while_recording_fails_the_session_with_its_answers_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions::default()).await;
    let proxy = Running::record(&fake, dir.path(), &["--store", "s"], &[]);
    let reply = get(&format!("{}/v2/images/{SEED_IMAGE_ID}", proxy.uri)).await;
    assert_eq!(reply.header("x-ims-vcr"), Some("recorded"));
    std::fs::remove_dir_all(dir.path().join("s")).unwrap();
    let reply = get(&format!("{}/v2/images/{UNKNOWN_IMAGE_ID}", proxy.uri)).await;
    assert_eq!(reply.status, 404, "still served live");
    proxy.signal("-TERM");
    let (status, log) = proxy.wait_with_log();
    assert_eq!(status.code(), Some(3), "{log}");
    assert!(
        log.contains("its folder was deleted")
            && log.contains("the 2 answers this session recorded are not on disk"),
        "{log}"
    );
    assert!(
        log.contains("NOT STORED: 2 answers were served live but not recorded"),
        "{log}"
    );
    assert!(log.contains("0 recorded"), "{log}");
}

#[tokio::test]
async fn sighup_drains_and_flushes_as_sigterm_does() {
    // A closed terminal or a dropped ssh session sends SIGHUP: the recording is kept, the
    // summary printed, and the exit is clean.
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions::default()).await;
    let proxy = Running::record(&fake, dir.path(), &["--store", "s"], &[]);
    let reply = get(&format!("{}/v2/images/{SEED_IMAGE_ID}", proxy.uri)).await;
    assert_eq!(reply.header("x-ims-vcr"), Some("recorded"));
    proxy.signal("-HUP");
    let (status, log) = proxy.wait_with_log();
    assert!(status.success(), "{log}");
    assert!(log.contains("summary"), "{log}");
    // Flushed as it closed: it left the note of a clean close.
    let closed = dir
        .path()
        .join("s")
        .join(ims_vcr::storage::closed::CLOSED_FILE);
    assert!(closed.exists(), "flushed as it closed");
    assert_eq!(stored_answers(&dir.path().join("s")), 1);
}

#[tokio::test]
async fn under_nohup_sighup_stays_ignored() {
    // `nohup ims-vcr …` asked for SIGHUP to be ignored: logging out must not stop the proxy.
    let dir = tempfile::tempdir().unwrap();
    shipped_cassettes(dir.path());
    let mut proxy =
        Running::start_ignoring_hangup(&["replay", "--listen", "127.0.0.1:0"], dir.path());
    proxy.signal("-HUP");
    assert!(
        proxy
            .wait_for(std::time::Duration::from_millis(500))
            .is_none(),
        "{}",
        proxy.log()
    );
    let reply = get(&format!("{}/v2/images/{SEED_IMAGE_ID}", proxy.uri)).await;
    assert_eq!(reply.status, 200);
    assert!(proxy.terminate().success());
}

#[tokio::test]
async fn a_second_signal_stops_at_once_and_keeps_every_answer_already_served() {
    // The fake's `/slow` answers after 30 s: the drain (10 s) would wait for it; a second
    // signal does not.
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions::default()).await;
    let proxy = Running::record(&fake, dir.path(), &["--store", "s"], &[]);
    let reply = get(&format!("{}/v2/images/{SEED_IMAGE_ID}", proxy.uri)).await;
    assert_eq!(reply.header("x-ims-vcr"), Some("recorded"));
    let url = format!("{}/slow", proxy.uri);
    let in_flight = tokio::spawn(async move { get(&url).await });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut proxy = proxy;
    // One that follows the first at once (a double SIGHUP) is the same stop: still draining.
    proxy.signal("-TERM");
    proxy.signal("-HUP");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(
        proxy.wait_for(std::time::Duration::ZERO).is_none(),
        "{}",
        proxy.log()
    );
    proxy.signal("-TERM");
    let status = proxy.wait_for(std::time::Duration::from_secs(5));
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{}", proxy.log());
    assert!(
        proxy
            .log()
            .contains("a signal while draining: stopping now"),
        "{}",
        proxy.log()
    );
    in_flight.abort();
    assert!(
        stored_answers(&dir.path().join("s")) >= 1,
        "the answer served before is kept"
    );
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
    // Exported unredacted, as asked, and said so: the image's owner is a real project id.
    assert!(
        stderr.contains(
            "1 request of 1 exported holds real values the default redaction replaces (field owner)"
        ) && stderr.contains("export with --redact"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("1bed856811654c1cb661a6ca845ebc77"),
        "the value is never shown: {stderr}"
    );
    let (code, stderr) = run(
        &["export", "--store", "s", "--out", "redacted", "--redact"],
        dir.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("real values"), "{stderr}");
    std::fs::remove_dir_all(dir.path().join("redacted")).unwrap();
    // Exporting again removes a stale cassette named as export names them, and says which; a
    // cassette written by hand under another name is kept.
    let out = dir.path().join("out");
    let exported = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    // A cassette of a request no longer recorded, named as export would name it.
    let bytes = std::fs::read_to_string(&exported).unwrap();
    let gone = bytes.replace(SEED_IMAGE_ID, "gone");
    let (recording, _) = cassette::parse(&exported, gone.as_bytes()).unwrap();
    let stale_name = cassette::file_name(&recording);
    let stale = out.join(&stale_name);
    std::fs::write(&stale, gone).unwrap();
    let fixture = out.join("image_fixture.json");
    std::fs::copy(&exported, &fixture).unwrap();
    let (code, stderr) = run(&["export", "--store", "s", "--out", "out"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr
            .contains("removed 1 stale cassette this export no longer writes (the request is gone")
            && stderr.contains(&format!("its pseudonyms): {stale_name}")),
        "{stderr}"
    );
    assert!(!stale.exists() && fixture.exists());
    // A session no longer recorded: its stale cassette is removed, and the folders left empty.
    let session = out.join("old").join("test_1");
    std::fs::create_dir_all(&session).unwrap();
    let mut in_session = recording.clone();
    in_session.answers[0].request.session = Some("old/test_1".into());
    let rules = ims_vcr::model::key::MatchRules::default();
    in_session.key =
        ims_vcr::model::key::RequestKey::of_recorded(&rules, &in_session.answers[0].request)
            .unwrap();
    std::fs::write(
        session.join(cassette::file_name(&in_session)),
        bytes.replace(SEED_IMAGE_ID, "gone"),
    )
    .unwrap();
    let (code, stderr) = run(&["export", "--store", "s", "--out", "out"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("removed 1 stale cassette"), "{stderr}");
    assert!(!out.join("old").exists(), "an empty session folder is left");
    // Never into the store's own folder.
    for inside in ["s", "s/cassettes"] {
        let (code, stderr) = run(&["export", "--store", "s", "--out", inside], dir.path());
        assert_eq!(code, 1, "{stderr}");
        assert!(
            stderr.contains(&format!("--out {inside}: inside the store s")),
            "{stderr}"
        );
    }
    assert!(!dir.path().join("s/cassettes").exists());
    std::fs::remove_file(fixture).unwrap();
    let (code, stderr) = run(&["import", "--store", "s2", "out"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stored_answers(&dir.path().join("s2")), 1);
}

#[test]
fn bad_flags_get_errors_that_name_them() {
    let dir = tempfile::tempdir().unwrap();
    // A forwarding command with no upstream is told it needs `--upstream` or a `--route`, as
    // either serves (never `--upstream` alone); nothing is made.
    for command in ["record", "auto", "passthrough", "drift"] {
        let (code, stderr) = run(&[command], dir.path());
        assert_eq!(code, 2, "{command}: {stderr}");
        assert!(
            stderr.contains("required arguments were not provided")
                && stderr.contains("<--upstream <URL>|--route <PREFIX=URL>>"),
            "{command}: {stderr}"
        );
    }
    assert!(!dir.path().join(".ims-vcr").exists(), "nothing was made");
    // Bad flag values are usage errors (2); unusable files and folders are runtime errors (1).
    std::fs::write(dir.path().join("a-file"), b"").unwrap();
    let cases: [(&[&str], i32, &str); 14] = [
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
            2,
            "invalid value '/v3=https://127.0.0.1:2/?X-Auth-Token=REDACTED' for '--route'",
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
            2,
            "invalid value '/v3=http://REDACTED@127.0.0.1:2' for '--route'",
        ),
        // ... also when the password holds a `/`, `?` or `#` typed as it is, or is digits
        // (the URL rules read the text before it as a host and a port).
        (
            &[
                "record",
                "--upstream",
                "https://u:2024/pw-in-url@127.0.0.1:1",
            ],
            2,
            "'https://REDACTED@127.0.0.1:1' for '--upstream <URL>': credentials in the URL",
        ),
        (
            &[
                "record",
                "--upstream",
                "https://u:p@ss?pw-in-url@127.0.0.1:1",
            ],
            2,
            "'https://REDACTED@127.0.0.1:1' for '--upstream <URL>': credentials in the URL",
        ),
        (
            &[
                "record",
                "--upstream",
                "http://127.0.0.1:1",
                "--route",
                "/v3=http://u:pa/pw-in-url@127.0.0.1:2",
            ],
            2,
            "invalid value '/v3=http://REDACTED@127.0.0.1:2' for '--route'",
        ),
        (
            &["replay", "--cassettes", "a-file"],
            1,
            "--cassettes a-file: not a directory",
        ),
        (
            &["export", "--store", "nostore", "--out", "a-file"],
            1,
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

/// Every printing command given a standard output it cannot write (`/dev/full`, a full disk)
/// fails with exit 1 naming standard output, never a panic (101); and one whose reader went
/// away (`ims-vcr ls | head -1`) ends quietly with 0.
#[test]
fn a_standard_output_that_cannot_be_written_is_an_error_naming_it_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    shipped_cassettes(dir.path());
    let commands: [&[&str]; 4] = [
        &["ls", "--cassettes", "cassettes"],
        &["ls", "--cassettes", "cassettes", "--json"],
        &["show", "--cassettes", "cassettes", "/v2/schemas/image"],
        &["verify", "cassettes"],
    ];
    for args in commands {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = Command::new(BIN)
            .args(args)
            .current_dir(dir.path())
            .stdout(full)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("standard output") && !stderr.contains("panicked"),
            "{args:?}: {stderr}"
        );
        // A reader that reads nothing and goes away.
        let mut child = Command::new(BIN)
            .args(args)
            .current_dir(dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}

/// A store on read-only media (or with its write permission removed) cannot be opened, since
/// sled has no read-only mode: every reading command says so naming the store, and changes
/// nothing. Run as another user when the test runs as root (root writes through permissions).
#[test]
fn a_read_only_store_gets_an_error_naming_it_and_is_left_as_it_was() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let shipped = shipped_cassettes(dir.path());
    let (code, stderr) = run(
        &["import", "--store", "s", shipped.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    let store = dir.path().join("s");
    let set_mode = |writable: bool| {
        let mut paths = vec![dir.path().to_owned(), store.clone()];
        paths.extend(
            std::fs::read_dir(&store)
                .unwrap()
                .map(|e| e.unwrap().path()),
        );
        for path in paths {
            let dir_like = path.is_dir();
            let mode = match (writable, dir_like) {
                (true, true) => 0o755,
                (true, false) => 0o644,
                (false, true) => 0o555,
                (false, false) => 0o444,
            };
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    };
    set_mode(false);
    let before = all_files(&store);
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    for args in [
        &["ls", "--store", "s"][..],
        &["export", "--store", "s", "--out", "/dev/null/never"],
        &["show", "--store", "s", "GET /v2/images/x"],
        &["replay", "--store", "s", "--listen", "127.0.0.1:0"],
    ] {
        let out = as_other_user(root)
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("store s cannot be written (s/db: Permission denied")
                && stderr.contains("make the folder writable, or copy it"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert!(
        all_files(&store) == before,
        "a refused open changed the store"
    );
    // `ls` by another user is refused naming `file`, and changes nothing.
    let refused_naming = |file: &str| {
        let out = as_other_user(root)
            .args(["ls", "--store", "s"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        let says = format!("store s cannot be written (s/{file}: Permission denied");
        assert!(stderr.contains(&says), "{stderr}");
        assert!(
            all_files(&store) == before,
            "a refused open changed the store"
        );
    };
    // A writable folder whose files are read-only: refused as well, before anything changes
    // (until now the note of the clean close was deleted first).
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o777)).unwrap();
    refused_naming("db");
    // Only the journal read-only: named too.
    set_mode(true);
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o777)).unwrap();
    for entry in std::fs::read_dir(&store).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        }
    }
    let journal = store.join(ims_vcr::storage::journal::JOURNAL_FILE);
    std::fs::set_permissions(&journal, std::fs::Permissions::from_mode(0o444)).unwrap();
    refused_naming(ims_vcr::storage::journal::JOURNAL_FILE);
    set_mode(true);
}

/// The binary, run as uid 65534 when `root` (root writes through permissions).
fn as_other_user(root: bool) -> Command {
    if root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
        c
    } else {
        Command::new(BIN)
    }
}

#[test]
fn a_store_or_export_folder_that_cannot_be_made_is_named_by_its_flag() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("afile"), b"a user's file").unwrap();
    let (code, output) = run(
        &[
            "record",
            "--upstream",
            "http://127.0.0.1:9",
            "--store",
            "afile/store",
            "--listen",
            "127.0.0.1:0",
        ],
        dir.path(),
    );
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains("--store afile/store: cannot read the folder"),
        "{output}"
    );
    // Where nothing can be made (not even as root).
    let (code, output) = run(
        &[
            "record",
            "--upstream",
            "http://127.0.0.1:9",
            "--store",
            "/proc/ims-vcr-store",
            "--listen",
            "127.0.0.1:0",
        ],
        dir.path(),
    );
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains("--store /proc/ims-vcr-store: cannot make the store's folder"),
        "{output}"
    );
    // A store to export, into a folder under a file.
    shipped_cassettes(dir.path());
    let (code, output) = run(&["import", "cassettes", "--store", "store"], dir.path());
    assert_eq!(code, 0, "{output}");
    let (code, output) = run(
        &["export", "--store", "store", "--out", "afile/out"],
        dir.path(),
    );
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains("--out afile/out: cannot make the folder"),
        "{output}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("afile")).unwrap(),
        b"a user's file"
    );
}

/// Every match rule a flag sets can be the team's setting in `ims-vcr.toml` (`[match] headers`,
/// `ignore_query`, `volatile`, `shift_time`): the recordings are keyed and saved with it, as with
/// the flag; a flag replaces its setting; a setting that cannot be used is named by the file
/// and its key, and nothing starts.
#[tokio::test]
async fn match_rules_in_the_settings_file_key_the_recordings_as_their_flags_do() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ims-vcr.toml"),
        "[match]\nheaders = [\"X-Project-Id\"]\nignore_query = [\"marker\"]\n",
    )
    .unwrap();
    let fake = FakeIms::start(FakeOptions::default()).await;
    let proxy = Running::record(&fake, dir.path(), &["--store", "s"], &[]);
    let image =
        |uri: &str, marker: &str| format!("{uri}/v2/images/{SEED_IMAGE_ID}?marker={marker}");
    let project = |id: &'static str| [("X-Project-Id", id)];
    let reply = send("GET", &image(&proxy.uri, "a"), &project("p1"), b"").await;
    assert_eq!(reply.header("x-ims-vcr"), Some("recorded"));
    proxy.signal("-TERM");
    assert!(proxy.wait().success());
    let (code, err) = run(&["export", "--store", "s", "--out", "out"], dir.path());
    assert_eq!(code, 0, "{err}");
    let file = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let (_, rules) = cassette::parse(&file, &std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(rules.match_headers, ["x-project-id"]);
    assert_eq!(rules.ignore_query, ["marker"]);
    let replay = Running::start(&["replay", "--listen", "0", "--store", "s"], dir.path());
    let hit = send("GET", &image(&replay.uri, "b"), &project("p1"), b"").await;
    assert_eq!(
        hit.header("x-ims-vcr"),
        Some("hit"),
        "another marker, same project"
    );
    let miss = send("GET", &image(&replay.uri, "a"), &project("p2"), b"").await;
    assert_eq!(miss.status, 599, "another project is another request");
    replay.signal("-TERM");
    assert!(replay.wait().success());
    // A flag replaces its setting: keyed by `--ignore-query limit` alone, the marker counts.
    let proxy = Running::record(
        &fake,
        dir.path(),
        &["--store", "t", "--ignore-query", "limit"],
        &[],
    );
    send("GET", &image(&proxy.uri, "a"), &project("p1"), b"").await;
    proxy.signal("-TERM");
    assert!(proxy.wait().success());
    let replay = Running::start(&["replay", "--listen", "0", "--store", "t"], dir.path());
    let miss = send("GET", &image(&replay.uri, "b"), &project("p1"), b"").await;
    assert_eq!(miss.status, 599, "the marker is matched on");
    replay.signal("-TERM");
    assert!(replay.wait().success());
    // A credential header cannot be matched on, from the file as from the flag.
    std::fs::write(
        dir.path().join("team.toml"),
        "[match]\nheaders = [\"X-Project-Id\", \"X-Auth-Token\"]\n",
    )
    .unwrap();
    let record = [
        "record",
        "--upstream",
        "https://127.0.0.1:9",
        "--store",
        "u",
        "--listen",
        "0",
    ];
    let (code, err) = run(
        &[&["--config", "team.toml"], &record[..]].concat(),
        dir.path(),
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("team.toml: [match] headers[1]: header \"x-auth-token\" cannot be matched on"),
        "{err}"
    );
    assert!(!err.contains("--match-header"), "{err}");
    assert!(!dir.path().join("u").exists(), "nothing was recorded");
}

/// What replay was given but cannot serve from is said at start, with what to give instead: a
/// store with no recordings, a store given as `--cassettes`, a HAR file given as `--cassettes`
/// (imported into a store first).
#[test]
fn replay_says_when_what_it_was_given_holds_nothing_it_can_serve() {
    let dir = tempfile::tempdir().unwrap();
    let recorder = Running::start(
        &[
            "record",
            "--upstream",
            "http://127.0.0.1:9",
            "--store",
            "empty",
            "--listen",
            "0",
        ],
        dir.path(),
    );
    recorder.signal("-TERM");
    assert!(recorder.wait().success());
    let replay = Running::start(&["replay", "--store", "empty", "--listen", "0"], dir.path());
    assert!(
        replay
            .log()
            .contains("the store holds no recordings: every request is a miss"),
        "{}",
        replay.log()
    );
    replay.signal("-TERM");
    assert!(replay.wait().success());
    let replay = Running::start(
        &["replay", "--cassettes", "empty", "--listen", "0"],
        dir.path(),
    );
    assert!(
        replay
            .log()
            .contains("which is an ims-vcr store: replay it with --store empty;"),
        "{}",
        replay.log()
    );
    replay.signal("-TERM");
    assert!(replay.wait().success());
    // Nothing at the paths the settings file gives: the error says they came from there.
    let typo = dir.path().join("typo");
    std::fs::create_dir(&typo).unwrap();
    std::fs::write(typo.join("ims-vcr.toml"), "cassettes = \"casettes\"\n").unwrap();
    let (code, err) = run(&["replay", "--listen", "0"], &typo);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("nothing to read here: no cassette folder (casettes, `cassettes` in ims-vcr.toml) and no store (.ims-vcr/store)"),
        "{err}"
    );
    std::fs::write(dir.path().join("suite.har"), r#"{"log":{"entries":[]}}"#).unwrap();
    let (code, err) = run(
        &["replay", "--cassettes", "suite.har", "--listen", "0"],
        dir.path(),
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("--cassettes suite.har: not a directory but a file")
            && err.contains("(`ims-vcr import --store DIR suite.har`)"),
        "{err}"
    );
}
