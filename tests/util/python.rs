//! The one Python venv of the test suite, `target/tmp/python-venv`: the interop clients
//! (tests/interop/requirements.txt) plus pytest, pytest-xdist and pre-commit for the pytest
//! plugin (tests/python/requirements.txt, which includes the interop pins). Created with
//! `python3 -m venv` and PyPI on first use, again only when a requirements file changes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Serialises venv creation and anything that installs into it.
pub static VENV_LOCK: Mutex<()> = Mutex::new(());

/// The venv's folder.
pub fn venv_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-venv")
}

/// Creates the venv if needed (or if a requirements file changed) and returns its python.
pub fn venv_python() -> PathBuf {
    let _once = VENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let requirements = repo.join("tests/python/requirements.txt");
    let venv = venv_dir();
    let python = venv.join("bin/python");
    let marker = venv.join("installed-requirements.txt");
    let mut wanted = std::fs::read(&requirements).unwrap();
    wanted.extend(std::fs::read(repo.join("tests/interop/requirements.txt")).unwrap());
    if std::fs::read(&marker).ok().as_deref() == Some(&wanted[..]) {
        return python;
    }
    run(Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(&venv));
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(&requirements));
    std::fs::write(&marker, wanted).unwrap();
    python
}

/// Runs `cmd`, panicking with its output unless it succeeds; returns its stdout and stderr.
pub fn run(cmd: &mut Command) -> String {
    let (ok, text) = run_status(cmd);
    assert!(ok, "{cmd:?} failed:\n{text}");
    text
}

/// Runs `cmd`; returns whether it succeeded, and its stdout and stderr.
pub fn run_status(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
