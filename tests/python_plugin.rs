//! The Python distribution as a user gets it: `pip wheel` of this repository (maturin, `bin`
//! bindings) installed into the suite's venv puts `ims-vcr` and the pytest plugin there; the
//! example suite in tests/python/ records against a fake IMS (tests/python/fake_ims.py), replays
//! under pytest-xdist with the fake gone, and a test asking for something unrecorded fails naming
//! the miss. The `ims-vcr-verify` pre-commit hook runs through `pre-commit try-repo`.
//!
//! Cost: one wheel build. It uses the dev profile (`MATURIN_PEP517_ARGS=--profile dev`; a plain
//! `pip install .` builds release) and shares `target/`'s intermediate artifacts
//! (`CARGO_BUILD_BUILD_DIR`), so only the crates whose features differ from the test build are
//! compiled again; the binary is placed in `target/tmp/wheel-target`, never over the
//! `target/debug/ims-vcr` the other tests run. pre-commit installs the hook from a clone of this
//! repository's HEAD, which compiles the crate itself once more.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use crate::util::python::{VENV_LOCK, run, run_status, venv_python};

const SEED_IMAGE_ID: &str = "bc6bed6e-ba3a-4447-afcc-449174a3eb52";
const POLLING_IMAGE_ID: &str = "5ee0a9b4-1c2d-4e5f-8a9b-0c1d2e3f4a5b";
const NEVER_RECORDED_IMAGE_ID: &str = "11111111-2222-4333-8444-555555555555";
/// The seed image's owner as fake_ims.py serves it: redacted in every cassette.
const SEED_OWNER: &str = "1bed856811654c1cb661a6ca845ebc77";
/// The example tests of tests/python/ (miss_case.py is run on its own).
const EXAMPLE_TESTS: usize = 8;

struct Venv {
    python: PathBuf,
    bin: PathBuf,
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `target/`, the parent of `CARGO_TARGET_TMPDIR`.
fn target_dir() -> &'static Path {
    Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap()
}

/// Environment of every nested build of this crate (the wheel, pre-commit's install).
fn build_env(cmd: &mut Command) -> &mut Command {
    cmd.env("MATURIN_PEP517_ARGS", "--profile dev")
        .env("CARGO_BUILD_BUILD_DIR", target_dir())
        .env("CARGO_TARGET_DIR", target_dir().join("tmp/wheel-target"))
        .env("CARGO_TERM_COLOR", "never")
        .env_remove("IMS_VCR_BIN")
        .env_remove("IMS_VCR_MODE")
        .env_remove("IMS_VCR_UPSTREAM")
}

/// Builds the wheel (once per test process) and installs it into the suite's venv.
fn wheel_venv() -> &'static Venv {
    static VENV: OnceLock<Venv> = OnceLock::new();
    VENV.get_or_init(|| {
        let python = venv_python();
        let _install = VENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let wheels = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-wheel");
        let _ = std::fs::remove_dir_all(&wheels);
        run(build_env(&mut Command::new(&python))
            .args([
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--disable-pip-version-check",
            ])
            .arg("--wheel-dir")
            .arg(&wheels)
            .arg(repo()));
        let wheel: Vec<PathBuf> = std::fs::read_dir(&wheels)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "whl"))
            .collect();
        assert_eq!(wheel.len(), 1, "one wheel expected: {wheel:?}");
        let name = wheel[0].file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("ims_vcr-0.1.0-"), "{name}");
        run(Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(["--force-reinstall", "--no-deps"])
            .arg(&wheel[0]));
        let bin = python.parent().unwrap().to_path_buf();
        Venv { python, bin }
    })
}

/// A child process killed on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts tests/python/fake_ims.py from `suite`; returns it and its URL.
fn start_fake(venv: &Venv, suite: &Path) -> (Process, String) {
    start_fake_on(venv, suite, 0)
}

/// [`start_fake`] on `port` (0: any free one).
fn start_fake_on(venv: &Venv, suite: &Path, port: u16) -> (Process, String) {
    let mut child = Command::new(&venv.python)
        .arg("fake_ims.py")
        .args(["--port", &port.to_string()])
        .current_dir(suite)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("fake_ims.py said {line:?}"))
        .trim()
        .to_owned();
    (Process(child), url)
}

/// A copy of tests/python/ (the tests, the fake, pytest.ini): pytest's rootdir, whose
/// `cassettes/` is where the plugin puts cassettes by default.
fn copy_suite(dir: &Path) -> PathBuf {
    let suite = dir.join("suite");
    std::fs::create_dir_all(&suite).unwrap();
    for entry in std::fs::read_dir(repo().join("tests/python")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".py") || name == "pytest.ini" {
            std::fs::copy(&path, suite.join(&name)).unwrap();
        }
    }
    suite
}

/// Runs pytest in `suite`; returns (success, stdout + stderr).
fn pytest(
    venv: &Venv,
    suite: &Path,
    home: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (bool, String) {
    let mut cmd = Command::new(&venv.python);
    build_env(&mut cmd)
        .args(["-m", "pytest", "-q", "-p", "no:randomly"])
        .args(args)
        .current_dir(suite)
        // huaweicloudsdkcore writes ~/.huaweicloud, openstacksdk reads ~/.config/openstack.
        .env("HOME", home)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .envs(env.iter().copied());
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Every `*.json` under `dir`, at any depth.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|x| x == "json") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn a_pip_installed_wheel_records_with_pytest_replays_under_xdist_and_fails_a_test_on_a_miss() {
    let venv = wheel_venv();
    let (ok, version) = run_status(Command::new(venv.bin.join("ims-vcr")).arg("--version"));
    assert!(ok && version.starts_with("ims-vcr 0.1.0"), "{version}");

    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let suite = copy_suite(dir.path());
    let cassettes = suite.join("cassettes");

    // Record: one proxy, one session per test, exported to cassettes/<test>/ at the end.
    let (fake, upstream) = start_fake(venv, &suite);
    let (ok, out) = pytest(
        venv,
        &suite,
        &home,
        &["--ims-vcr-mode", "record", "--ims-vcr-upstream", &upstream],
        &[],
    );
    assert!(ok, "record run failed:\n{out}");
    assert!(out.contains(&format!("{EXAMPLE_TESTS} passed")), "{out}");
    assert!(
        out.contains("ims-vcr record (a temporary store, removed at the end of the run"),
        "{out}"
    );
    assert!(
        out.contains(&format!("exported {EXAMPLE_TESTS} sessions")),
        "{out}"
    );
    drop(fake);

    let files = json_files(&cassettes);
    let folders: Vec<String> = files
        .iter()
        .map(|f| {
            let folder = f.parent().unwrap().strip_prefix(&cassettes).unwrap();
            folder.to_string_lossy().into_owned()
        })
        .collect();
    for expected in [
        "test_huawei_sdk/test_show_image",
        "test_huawei_sdk/test_a_missing_image_is_a_404",
        "test_huawei_sdk/test_wait_until_an_image_is_active",
        "test_openstacksdk/test_get_image",
        "test_openstacksdk/test_a_missing_image_raises_not_found",
        "test_session_header/test_get_through_the_shared_listener-seed",
        "test_session_header/test_get_through_the_shared_listener-unknown",
        "test_session_header/test_a_fixture_reaches_the_session_in_its_clean_up",
    ] {
        assert!(
            folders.iter().any(|f| f == expected),
            "no cassette in {expected}: {folders:?}"
        );
    }
    // One cassette per test, and one more for the request a fixture's clean-up made.
    assert_eq!(files.len(), EXAMPLE_TESTS + 1, "{folders:?}");
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let doc = read_json(file);
        assert!(
            doc["redaction"].is_object(),
            "{} unredacted",
            file.display()
        );
        for secret in [SEED_OWNER, "DUMMYAK", "gAAAAAB-example-token"] {
            assert!(!text.contains(secret), "{secret} in {}", file.display());
        }
    }
    let polled = files
        .iter()
        .find(|f| f.to_string_lossy().contains(POLLING_IMAGE_ID))
        .unwrap();
    let statuses: Vec<String> = read_json(polled)["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["body"]["json"]["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        statuses,
        ["queued", "saving", "active"],
        "{}",
        polled.display()
    );

    // Recording the same answers again leaves every cassette as it was: only when and how fast
    // they were recorded differ, which is nothing to commit.
    let before: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    // The same upstream: its origin is part of what a cassette records.
    let port = upstream.rsplit(':').next().unwrap().parse().unwrap();
    let (fake, again) = start_fake_on(venv, &suite, port);
    assert_eq!(again, upstream);
    // Routed this time, with no `--ims-vcr-upstream` (the route `/` is the upstream, as
    // `--route /=URL` is for the binary), and an extra CA to trust, given relative to where
    // pytest runs: the proxy gets both, and records the same answers.
    std::fs::write(
        suite.join("extra-ca.pem"),
        crate::util::tls::TestCa::new().pem,
    )
    .unwrap();
    let route = format!("/={upstream}");
    let (ok, out) = pytest(
        venv,
        &suite,
        &home,
        &[
            "--ims-vcr-mode",
            "record",
            "--ims-vcr-route",
            &route,
            "--ims-vcr-upstream-ca",
            "extra-ca.pem",
        ],
        &[],
    );
    assert!(ok, "second record run failed:\n{out}");
    std::fs::remove_file(suite.join("extra-ca.pem")).unwrap();
    // A route the proxy refuses (credentials in its URL) fails the run, and the plugin's
    // message shows the command line without them.
    let leaky = "/=http://user:pw-in-route-9@127.0.0.1:9";
    let (ok, out) = pytest(
        venv,
        &suite,
        &home,
        &[
            "--ims-vcr-mode",
            "record",
            "--ims-vcr-route",
            leaky,
            "test_session_header.py",
        ],
        &[],
    );
    assert!(!ok, "a refused route passed:\n{out}");
    assert!(
        out.contains("--route=/=http://REDACTED@127.0.0.1:9"),
        "{out}"
    );
    assert!(!out.contains("pw-in-route-9"), "{out}");
    drop(fake);
    assert_eq!(json_files(&cassettes), files);
    for (file, before) in files.iter().zip(&before) {
        assert!(
            std::fs::read(file).unwrap() == *before,
            "{} changed on re-recording the same answers",
            file.display()
        );
    }

    // Replay with the upstream gone, three workers each with their own proxy on the shared,
    // read-only cassettes. IMS_VCR_MODE says record: the option wins over it.
    let (ok, out) = pytest(
        venv,
        &suite,
        &home,
        &["-n", "3", "--ims-vcr-mode", "replay"],
        &[("IMS_VCR_MODE", "record")],
    );
    assert!(ok, "replay run failed:\n{out}");
    assert!(out.contains(&format!("{EXAMPLE_TESTS} passed")), "{out}");
    let workers = (0..3)
        .filter(|n| out.contains(&format!("[gw{n}] ims-vcr replay (cassettes ")))
        .count();
    assert!(workers >= 2, "one proxy per worker expected:\n{out}");
    assert!(
        out.contains("sequence strict"),
        "the marker's proxy:\n{out}"
    );
    assert_eq!(json_files(&cassettes), files, "replay wrote cassettes");
    // Under --ims-vcr-fail-on-unused each worker's proxy finds the other workers' sessions
    // unused; the report names only what failed among the sessions the worker ran: nothing.
    let (ok, out) = pytest(
        venv,
        &suite,
        &home,
        &[
            "-n",
            "2",
            "--ims-vcr-mode",
            "replay",
            "--ims-vcr-fail-on-unused",
        ],
        &[],
    );
    assert!(
        ok,
        "replay run with --ims-vcr-fail-on-unused failed:\n{out}"
    );
    assert!(!out.contains("FAILED"), "{out}");

    // A test that asks for an image nobody recorded fails, naming the request (default mode:
    // replay).
    let (ok, out) = pytest(venv, &suite, &home, &["miss_case.py"], &[]);
    assert!(!ok, "the miss passed:\n{out}");
    assert!(
        out.contains("FAILED miss_case.py::test_an_image_nobody_recorded"),
        "{out}"
    );
    assert!(out.contains("1 failed"), "{out}");
    assert!(
        out.contains(&format!("  miss: GET /v2/images/{NEVER_RECORDED_IMAGE_ID}")),
        "{out}"
    );
    assert!(
        out.contains("session 'miss_case/test_an_image_nobody_recorded' (replay mode)"),
        "{out}"
    );
    assert!(
        !out.contains(SEED_IMAGE_ID),
        "only the miss is named:\n{out}"
    );
}

#[test]
fn the_pre_commit_hook_refuses_an_unredacted_cassette_and_passes_a_redacted_one() {
    let venv = wheel_venv();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&home).unwrap();
    // A project with a redacted cassette (the shipped sample) and the same without its stamp.
    let shipped = json_files(&repo().join("cassettes"))
        .into_iter()
        .find(|f| f.to_string_lossy().contains(SEED_IMAGE_ID))
        .unwrap();
    let name = shipped.file_name().unwrap();
    let redacted = Path::new("cassettes/redacted").join(name);
    let unredacted = Path::new("cassettes/unredacted").join(name);
    let mut doc = read_json(&shipped);
    assert!(doc["redaction"].is_object());
    for (path, bytes) in [
        (&redacted, std::fs::read(&shipped).unwrap()),
        (&unredacted, {
            doc.as_object_mut().unwrap().remove("redaction");
            serde_json::to_vec_pretty(&doc).unwrap()
        }),
    ] {
        std::fs::create_dir_all(work.join(path).parent().unwrap()).unwrap();
        std::fs::write(work.join(path), bytes).unwrap();
    }
    let git = |args: &[&str]| {
        run(Command::new("git").args(args).current_dir(&work));
    };
    git(&["init", "-q"]);
    git(&["add", "."]);

    // try-repo clones this repository's HEAD (plus uncommitted changes to tracked files) and
    // installs it as the hook's Python environment: pip builds the wheel with maturin.
    let mut cmd = Command::new(venv.bin.join("pre-commit"));
    build_env(&mut cmd)
        .arg("try-repo")
        .arg(repo())
        .args(["ims-vcr-verify", "--verbose", "--files"])
        .arg(&unredacted)
        .arg(&redacted)
        .current_dir(&work)
        .env("HOME", &home)
        .env("PRE_COMMIT_COLOR", "never")
        .env("GIT_AUTHOR_NAME", "ims-vcr tests")
        .env("GIT_AUTHOR_EMAIL", "tests@ims-vcr.invalid")
        .env("GIT_COMMITTER_NAME", "ims-vcr tests")
        .env("GIT_COMMITTER_EMAIL", "tests@ims-vcr.invalid");
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "the hook passed an unredacted cassette:\n{text}"
    );
    assert!(text.contains("ims-vcr verify"), "{text}");
    assert!(text.contains("Failed"), "{text}");
    let finding = format!("cassettes/unredacted/{}", name.to_string_lossy());
    assert!(
        text.lines()
            .any(|l| l.starts_with(&finding) && l.contains("redaction")),
        "no redaction finding for {finding}:\n{text}"
    );
    assert!(
        !text.lines().any(|l| l.starts_with("cassettes/redacted/")),
        "a finding for the redacted cassette:\n{text}"
    );
    assert!(
        text.contains("verified 1 cassette ") && text.contains("in cassettes/redacted"),
        "{text}"
    );

    // The hook's entry on the redacted cassette alone: clean, exit 0.
    let (ok, out) = run_status(
        Command::new(&venv.python)
            .args(["-m", "ims_vcr.verify_files"])
            .arg(&redacted)
            .current_dir(&work)
            .env_remove("IMS_VCR_BIN"),
    );
    assert!(ok, "{out}");
    assert!(out.contains("every file redacted"), "{out}");
}
