//! The CI recipes of docs/guide.md, run as written: the shell block in one bash, each `run:` of
//! the GitHub Actions steps in a shell of its own (as Actions does), GitLab's `script:` lines in
//! one shell. `ims-vcr` is this build; `make test` and `run-your-tests` are stand-ins for a
//! user's tests that fetch an image through the proxy (a recorded one, or with `MISS=1` one that
//! was never recorded).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::util::*;

/// The code block after heading `### {heading}` in docs/guide.md.
fn block(heading: &str) -> String {
    let guide =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/guide.md"))
            .unwrap();
    let start = guide
        .find(&format!("### {heading}\n"))
        .unwrap_or_else(|| panic!("no ### {heading} in docs/guide.md"));
    let rest = &guide[start..];
    let open = rest.find("\n```").unwrap() + 4;
    let body = &rest[open..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("\n```").unwrap()].to_owned()
}

/// The `run:` commands of a GitHub Actions step list (inline or `|` blocks), skipping the
/// install step (the test provides the binary).
fn actions_steps(yaml: &str) -> Vec<String> {
    let mut steps = Vec::new();
    let mut lines = yaml.lines().peekable();
    let mut name = String::new();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start().trim_start_matches("- ");
        if let Some(n) = trimmed.strip_prefix("name:") {
            name = n.trim().to_owned();
        }
        let Some(run) = trimmed.strip_prefix("run:") else {
            continue;
        };
        let run = run.trim();
        let command = if run == "|" {
            let indent = line.len() - line.trim_start().len();
            let mut block = String::new();
            while let Some(next) = lines.peek() {
                if next.trim().is_empty() || next.len() - next.trim_start().len() > indent {
                    block.push_str(next.trim_start());
                    block.push('\n');
                    lines.next();
                } else {
                    break;
                }
            }
            block
        } else {
            run.to_owned()
        };
        if !name.to_ascii_lowercase().contains("install") {
            steps.push(command);
        }
    }
    steps
}

/// The `script:` lines of a GitLab job.
fn gitlab_script(yaml: &str) -> String {
    yaml.lines()
        .skip_while(|l| !l.trim_start().starts_with("script:"))
        .skip(1)
        .filter_map(|l| l.trim_start().strip_prefix("- "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// A folder with the shipped cassettes and a `bin/` holding `ims-vcr` (this build), `make` and
/// `run-your-tests` (a client of `$IMS_VCR_URL` or `$IMS_ENDPOINT`).
fn workspace() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    shipped_cassettes(dir.path());
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(BIN, bin.join("ims-vcr")).unwrap();
    let client = format!(
        r#"#!/usr/bin/env python3
import os, sys, urllib.request, urllib.error
base = os.environ.get("IMS_VCR_URL") or os.environ["IMS_ENDPOINT"]
image = "never-recorded" if os.environ.get("MISS") else "{SEED_IMAGE_ID}"
try:
    status = urllib.request.urlopen(f"{{base}}/v2/images/{{image}}").status
except urllib.error.HTTPError as e:
    status = e.code
print("client got", status)
"#
    );
    for name in ["make", "run-your-tests"] {
        let path = bin.join(name);
        std::fs::write(&path, &client).unwrap();
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&path, perms).unwrap();
    }
    (dir, bin)
}

/// Runs `script` with bash in `dir`, `bin` first on PATH, bounded in time; returns the exit
/// status (None: it had to be killed) and the output.
fn bash(dir: &Path, bin: &Path, script: &str, extra_env: &[(&str, &str)]) -> (Option<i32>, String) {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // Its own process group, so a recipe that hangs is stopped with everything it started
    // (the proxy in the background), not only bash.
    use std::os::unix::process::CommandExt as _;
    let mut child = Command::new("bash")
        .process_group(0)
        .args(["-e", "-c", script])
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("RUST_LOG")
        .env_remove("IMS_VCR_MODE")
        .envs(extra_env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Generous: a recipe that works ends in a second or two, even on a busy machine.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            return (status.code(), text);
        }
        if std::time::Instant::now() > deadline {
            let group = -i32::try_from(child.id()).expect("a pid fits in an i32");
            // SAFETY: kill(2) with a negative pid signals that process group; no memory is shared.
            unsafe { libc::kill(group, libc::SIGKILL) };
            let out = child.wait_with_output().unwrap();
            return (None, String::from_utf8_lossy(&out.stderr).into_owned());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_shell_recipe_passes_on_hits_fails_on_a_miss_and_never_hangs_when_the_proxy_exits() {
    let script = block("Shell");
    let (dir, bin) = workspace();
    let (code, out) = bash(dir.path(), &bin, &script, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("client got 200"), "{out}");

    let (code, out) = bash(dir.path(), &bin, &script, &[("MISS", "1")]);
    assert_eq!(code, Some(3), "a miss fails the recipe: {out}");

    // The cassettes folder is missing: the proxy exits at once, and so does the wait.
    std::fs::remove_dir_all(dir.path().join("cassettes")).unwrap();
    let (code, out) = bash(dir.path(), &bin, &script, &[]);
    assert!(
        code.is_some(),
        "the recipe hung waiting for a proxy that exited: {out}"
    );
    assert_ne!(code, Some(0), "{out}");
}

#[test]
fn the_github_actions_recipe_runs_step_by_step_and_fails_the_job_on_a_miss() {
    let steps = actions_steps(&block("GitHub Actions"));
    assert!(!steps.is_empty(), "no run: steps found");
    for (miss, wanted) in [(None, 0), (Some("1"), 3)] {
        let (dir, bin) = workspace();
        // Each step is its own shell; what a step appends to $GITHUB_ENV reaches the later ones.
        let github_env = dir.path().join("github_env");
        std::fs::write(&github_env, "").unwrap();
        let mut last = None;
        for step in &steps {
            let env_file = github_env.to_str().unwrap().to_owned();
            let mut env: Vec<(String, String)> = std::fs::read_to_string(&github_env)
                .unwrap()
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            env.push(("GITHUB_ENV".into(), env_file));
            if let Some(m) = miss {
                env.push(("MISS".into(), m.into()));
            }
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let (code, out) = bash(dir.path(), &bin, step, &env);
            assert!(code.is_some(), "a step hung: {step}\n{out}");
            last = Some((code, out));
            if code != Some(0) {
                break;
            }
        }
        let (code, out) = last.unwrap();
        assert_eq!(code, Some(wanted), "miss={miss:?}: {out}");
    }
}

#[test]
fn the_gitlab_recipe_passes_on_hits_and_fails_on_a_miss() {
    let script = gitlab_script(&block("GitLab CI"));
    assert!(script.contains("ims-vcr"), "{script}");
    let (dir, bin) = workspace();
    let (code, out) = bash(dir.path(), &bin, &script, &[]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = bash(dir.path(), &bin, &script, &[("MISS", "1")]);
    assert_eq!(code, Some(3), "{out}");
}
