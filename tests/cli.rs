//! The `ims-vcr` binary as a user runs it: the listening line, SIGTERM, `kill -9`, locked stores,
//! and errors that name the flag.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::util::*;

pub const BIN: &str = env!("CARGO_BIN_EXE_ims-vcr");

/// A running `ims-vcr` and the URI from its listening line.
pub struct Running {
    child: Child,
    pub uri: String,
    log: std::path::PathBuf,
}

impl Running {
    pub fn start(args: &[&str], cwd: &Path) -> Running {
        Running::start_with_env(args, cwd, &[])
    }

    /// Starts with only `env` added to a copy of this environment without any AK/SK variable.
    pub fn start_with_env(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Running {
        let log_path = cwd.join(format!("ims-vcr-{}.log", args[0]));
        let log = std::fs::File::create(&log_path).unwrap();
        let mut command = Command::new(BIN);
        for name in [
            "HUAWEICLOUD_SDK_AK",
            "HUAWEICLOUD_SDK_SK",
            "HUAWEICLOUD_SDK_SECURITY_TOKEN",
            "RUST_LOG",
        ] {
            command.env_remove(name);
        }
        let mut child = command
            .envs(env.iter().copied())
            .args(args)
            .current_dir(cwd)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let uri = line
            .trim_end()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first stdout line was {line:?}"))
            .to_owned();
        Running {
            child,
            uri,
            log: log_path,
        }
    }

    /// `ims-vcr record` against `fake` (trusting its CA), on a free port, plus `extra` flags.
    pub fn record(fake: &FakeIms, cwd: &Path, extra: &[&str], env: &[(&str, &str)]) -> Running {
        Running::forwarding("record", fake, cwd, extra, env)
    }

    /// `ims-vcr MODE` (record, auto, passthrough) against `fake`, as [`Running::record`].
    pub fn forwarding(
        mode: &str,
        fake: &FakeIms,
        cwd: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Running {
        let ca = fake.write_ca_pem(cwd);
        let url = fake.base_url();
        let mut args = vec![
            mode,
            "--upstream",
            &url,
            "--upstream-ca",
            ca.to_str().unwrap(),
            "--listen",
            "0",
        ];
        args.extend_from_slice(extra);
        Running::start_with_env(&args, cwd, env)
    }

    /// Everything the process logged so far (stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn wait(mut self) -> std::process::ExitStatus {
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("ims-vcr did not exit within 10 s");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the binary to completion: (exit code, stderr).
fn run(args: &[&str], cwd: &Path) -> (i32, String) {
    let (code, _, stderr) = run_with_stdout(args, cwd);
    (code, stderr)
}

/// Runs the binary to completion: (exit code, stdout, stderr).
pub fn run_with_stdout(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

#[tokio::test]
async fn replay_with_no_flags_serves_the_repository_cassettes_and_exits_cleanly_on_sigterm() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("cassettes")).unwrap();
    for (name, bytes) in all_files(&repo.join("cassettes")) {
        std::fs::write(dir.path().join("cassettes").join(name), bytes).unwrap();
    }
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
        let journal = dir.path().join("s").join(ims_vcr::journal::JOURNAL_FILE);
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
    assert!(stderr.contains("exported 1 requests"), "{stderr}");
    let (code, stderr) = run(&["import", "--store", "s2", "out"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stored_answers(&dir.path().join("s2")), 1);
}

#[test]
fn bad_flags_get_errors_that_name_them() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (&["record", "--upstream", "ims.example.com"], "--upstream"),
        (
            &[
                "record",
                "--upstream",
                "https://x",
                "--upstream-ca",
                "missing.pem",
            ],
            "--upstream-ca missing.pem",
        ),
        (&["replay", "--cassettes", "nowhere"], "--cassettes nowhere"),
        (&["replay", "--listen", "0.0.0.0:0"], "--allow-remote"),
        (
            &["export", "--store", "nostore", "--out", "o"],
            "--store nostore",
        ),
    ];
    for (args, expected) in cases {
        let (code, stderr) = run(args, dir.path());
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?}: expected {expected:?} in {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
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
