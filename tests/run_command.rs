//! `ims-vcr run -- CMD`: the binary runs a command against the proxy and passes on its status.
//! The commands are small Python scripts (python3 is required by the interop tests too) written
//! into each test's folder: `client.py` GETs its arguments from `$IMS_VCR_URL`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

/// Variables the tests must not inherit: credentials, log filters, the control token, and the
/// two `run` sets (an outer `IMS_VCR_MODE` would pick the mode).
const SCRUBBED: [&str; 7] = [
    "HUAWEICLOUD_SDK_AK",
    "HUAWEICLOUD_SDK_SK",
    "HUAWEICLOUD_SDK_SECURITY_TOKEN",
    "RUST_LOG",
    "IMS_VCR_CONTROL_TOKEN",
    "IMS_VCR_MODE",
    "IMS_VCR_URL",
];

/// GETs each argument (`RANDOM` in it replaced by fresh random hex) from `$IMS_VCR_URL`, printing
/// `PATH STATUS`; `exit=N` exits with N. Appends `MODE URL` to runs.log first.
const CLIENT: &str = r#"
import os, sys, urllib.error, urllib.request
url = os.environ["IMS_VCR_URL"]
with open("runs.log", "a") as log:
    log.write(os.environ.get("IMS_VCR_MODE", "-") + " " + url + "\n")
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
for arg in sys.argv[1:]:
    if arg.startswith("exit="):
        sys.exit(int(arg[5:]))
    path = arg.replace("RANDOM", os.urandom(8).hex())
    try:
        status = opener.open(url + path, timeout=10).status
    except urllib.error.HTTPError as e:
        status = e.code
    print(path, status, flush=True)
"#;

/// On SIGTERM: GETs the seed image (the proxy must still serve), writes `SIGNAL STATUS` to
/// `terminated` and exits 7. Appends its pid to `pids`, then creates `ready` and sleeps.
const TERM_CLIENT: &str = r#"
import os, signal, sys, time, urllib.request
def on_term(signum, frame):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    url = os.environ["IMS_VCR_URL"] + "/v2/images/bc6bed6e-ba3a-4447-afcc-449174a3eb52"
    status = opener.open(url, timeout=10).status
    with open("terminated", "w") as f:
        f.write(f"{signum} {status}\n")
    sys.exit(7)
signal.signal(signal.SIGTERM, on_term)
with open("pids", "a") as f:
    f.write(f"{os.getpid()}\n")
open("ready", "w").close()
time.sleep(120)
"#;

/// Ignores SIGTERM (noting it in `ignored`); creates `ready` and sleeps.
const STUBBORN_CLIENT: &str = r#"
import signal, time
signal.signal(signal.SIGTERM, lambda signum, frame: open("ignored", "w").close())
open("ready", "w").close()
time.sleep(120)
"#;

fn scripts(dir: &Path) {
    std::fs::write(dir.join("client.py"), CLIENT).unwrap();
    std::fs::write(dir.join("term.py"), TERM_CLIENT).unwrap();
    std::fs::write(dir.join("stubborn.py"), STUBBORN_CLIENT).unwrap();
}

fn command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BIN);
    for name in SCRUBBED {
        command.env_remove(name);
    }
    command
        .envs(env.iter().copied())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null());
    command
}

/// What one `ims-vcr` process did.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `ims-vcr args` in `dir` to completion (60 s at most).
fn ims_vcr(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Ran {
    let out_path = dir.join("ims-vcr.out");
    let err_path = dir.join("ims-vcr.err");
    let mut child = command(dir, args, env)
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(60));
    let stderr = std::fs::read_to_string(&err_path).unwrap();
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("ims-vcr {args:?} hung; stderr:\n{stderr}");
    };
    assert!(!stderr.contains("panicked"), "{args:?} panicked:\n{stderr}");
    Ran {
        code: status.code().unwrap_or(-1),
        stdout: std::fs::read_to_string(&out_path).unwrap(),
        stderr,
    }
}

/// [`ims_vcr`] off the async runtime, so a [`FakeIms`] on it keeps answering.
async fn ims_vcr_async(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Ran {
    let dir = dir.to_owned();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        ims_vcr(&dir, &args, &env)
    })
    .await
    .unwrap()
}

fn runs_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("runs.log")).unwrap_or_default()
}

/// Waits (30 s at most) for `file` to appear in `dir`.
fn wait_for(dir: &Path, file: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dir.join(file).exists() {
        assert!(Instant::now() < deadline, "{file} never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether process `pid` is running (a zombie is not: in some containers nobody reaps orphans).
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit_once(')').unwrap().1.split_whitespace().next();
            !matches!(state, Some("Z" | "X"))
        }
        Err(_) => false,
    }
}

fn kill(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_command_that_succeeds_runs_against_a_replay_and_the_summary_follows() {
    let dir = tempfile::tempdir().unwrap();
    shipped_cassettes(dir.path());
    scripts(dir.path());
    let seed = format!("/v2/images/{SEED_IMAGE_ID}");
    let ran = ims_vcr(
        dir.path(),
        &["run", "--", "python3", "client.py", &seed],
        &[],
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    // stdout is the command's alone: no listening line.
    assert_eq!(ran.stdout, format!("{seed} 200\n"), "{}", ran.stderr);
    let log = runs_log(dir.path());
    assert!(log.starts_with("replay http://127.0.0.1:"), "{log}");
    assert!(
        ran.stderr
            .contains("[replay] ims-vcr summary: 1 hit, 0 misses"),
        "{}",
        ran.stderr
    );
    assert!(
        !ran.stderr.contains("not read in replay mode"),
        "{}",
        ran.stderr
    );
    // Match flags in replay are accepted, as the other modes take them, and said not to be read.
    let args = [
        "run",
        "--ignore-query",
        "marker",
        "--volatile",
        "x-[0-9]+",
        "--",
        "python3",
        "client.py",
        &seed,
    ];
    let ran = ims_vcr(dir.path(), &args, &[]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("--ignore-query, --volatile are not read in replay mode"),
        "{}",
        ran.stderr
    );
}

#[test]
fn the_commands_failing_status_is_the_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    shipped_cassettes(dir.path());
    scripts(dir.path());
    let cases: [(&[&str], i32); 4] = [
        (&["python3", "client.py", "exit=5"], 5),
        // Ended by SIGKILL: 128 + 9, as a shell reports it.
        (&["sh", "-c", "kill -KILL $$"], 137),
        (&["no-such-command-for-ims-vcr"], 127),
        (&["./client.py"], 126),
    ];
    for (cmd, expected) in cases {
        let args = [&["run", "--"][..], cmd].concat();
        let ran = ims_vcr(dir.path(), &args, &[]);
        assert_eq!(ran.code, expected, "{cmd:?}: {}", ran.stderr);
        // The proxy was stopped and reported in every case.
        assert!(
            ran.stderr.contains("[replay] ims-vcr summary:"),
            "{cmd:?}: {}",
            ran.stderr
        );
    }
    // The command is named in the log by its program, never by its arguments (which may
    // carry credentials in any form), also with the per-request log on.
    let cmd = [
        "python3",
        "client.py",
        "exit=5",
        "--os-token",
        "tok-on-the-command-line",
    ];
    let ran = ims_vcr(
        dir.path(),
        &[&["run", "--"][..], &cmd].concat(),
        &[("RUST_LOG", "debug")],
    );
    assert_eq!(ran.code, 5, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("`python3` with 4 arguments failed"),
        "{}",
        ran.stderr
    );
    assert!(
        !ran.stderr.contains("tok-on-the-command-line"),
        "{}",
        ran.stderr
    );
}

#[test]
fn a_miss_fails_with_3_under_fail_on_miss_unless_the_command_failed_first() {
    let dir = tempfile::tempdir().unwrap();
    shipped_cassettes(dir.path());
    scripts(dir.path());
    let nope = "/v2/images/nope";
    let ran = ims_vcr(
        dir.path(),
        &["run", "--", "python3", "client.py", nope],
        &[],
    );
    assert_eq!(ran.code, 0, "without --fail-on-miss: {}", ran.stderr);
    assert_eq!(ran.stdout, format!("{nope} {}\n", ims_vcr::MISS_STATUS));

    let strict = ["run", "--fail-on-miss", "--", "python3", "client.py", nope];
    let ran = ims_vcr(dir.path(), &strict, &[]);
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("miss (1x): GET /v2/images/nope"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr
            .contains("verdict: 1 request missed (--fail-on-miss)"),
        "{}",
        ran.stderr
    );

    let failing = [&strict[..], &["exit=4"]].concat();
    let ran = ims_vcr(dir.path(), &failing, &[]);
    assert_eq!(ran.code, 4, "the command's status wins: {}", ran.stderr);
}

#[test]
fn sigterm_reaches_the_command_first_and_nothing_is_left_running() {
    let dir = tempfile::tempdir().unwrap();
    shipped_cassettes(dir.path());
    scripts(dir.path());
    // The command itself: it cleans up through the proxy, and its status is passed on.
    // Behind a shell, with a background job: the whole process group gets the signal, and the
    // proxy serves until the last of it has ended (the shell dies at once; 128 + 15).
    let cases: [(&[&str], i32); 2] = [
        (&["python3", "term.py"], 7),
        (
            &["sh", "-c", "sleep 120 & echo $! >> pids; python3 term.py"],
            143,
        ),
    ];
    for (cmd, expected) in cases {
        for file in ["pids", "ready", "terminated"] {
            let _ = std::fs::remove_file(dir.path().join(file));
        }
        let args = [&["run", "--"][..], cmd].concat();
        let err = std::fs::File::create(dir.path().join("ims-vcr.err")).unwrap();
        let mut child = command(dir.path(), &args, &[])
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        wait_for(dir.path(), "ready");
        kill(&child, "-TERM");
        let status = wait_exit(&mut child, Duration::from_secs(20)).expect("ims-vcr exits");
        let stderr = std::fs::read_to_string(dir.path().join("ims-vcr.err")).unwrap();
        assert_eq!(status.code(), Some(expected), "{cmd:?}: {stderr}");
        let terminated = std::fs::read_to_string(dir.path().join("terminated")).unwrap();
        assert_eq!(terminated, "15 200\n", "{cmd:?}: {stderr}");
        assert!(
            stderr.contains("[replay] ims-vcr summary: 1 hit"),
            "{stderr}"
        );
        let pids = std::fs::read_to_string(dir.path().join("pids")).unwrap();
        for pid in pids.lines() {
            assert!(!running(pid.parse().unwrap()), "{cmd:?}: {pid} still runs");
        }
    }
}

/// systemd's SIGTERM then SIGHUP, or a dropped ssh session's two SIGHUPs, come together: they
/// are one stop, so the command cleans up as after one signal, where it was killed at once.
#[test]
fn two_signals_sent_together_are_one_stop_and_the_command_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    shipped_cassettes(dir.path());
    scripts(dir.path());
    // Three times: with both pending, which one is passed on was once a random pick.
    for _ in 0..3 {
        for file in ["ready", "terminated"] {
            let _ = std::fs::remove_file(dir.path().join(file));
        }
        let err = std::fs::File::create(dir.path().join("ims-vcr.err")).unwrap();
        let mut child = command(dir.path(), &["run", "--", "python3", "term.py"], &[])
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        wait_for(dir.path(), "ready");
        // Back to back, as systemd and a shell's `kill; kill` send them: both pending at once.
        let pid = child.id() as i32;
        // SAFETY: signalling a child process this test started and has not reaped.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
            libc::kill(pid, libc::SIGHUP);
        }
        let status = wait_exit(&mut child, Duration::from_secs(20)).expect("ims-vcr exits");
        let stderr = std::fs::read_to_string(dir.path().join("ims-vcr.err")).unwrap();
        assert_eq!(status.code(), Some(7), "the command's own status: {stderr}");
        let terminated = std::fs::read_to_string(dir.path().join("terminated")).unwrap();
        assert_eq!(terminated, "15 200\n", "{stderr}");
    }
}

#[test]
fn a_second_signal_kills_a_command_that_ignores_the_first() {
    let dir = tempfile::tempdir().unwrap();
    shipped_cassettes(dir.path());
    scripts(dir.path());
    let mut child = command(dir.path(), &["run", "--", "python3", "stubborn.py"], &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(dir.path(), "ready");
    let started = Instant::now();
    kill(&child, "-TERM");
    wait_for(dir.path(), "ignored");
    // As a person presses Ctrl-C again: a quarter of a second or more after the first.
    std::thread::sleep(Duration::from_millis(400));
    kill(&child, "-TERM");
    let status = wait_exit(&mut child, Duration::from_secs(20)).expect("ims-vcr exits");
    assert_eq!(status.code(), Some(128 + 9));
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn ims_vcr_mode_selects_the_mode_and_the_flag_overrides_it() {
    let fake = FakeIms::start(FakeOptions::plain()).await;
    let dir = tempfile::tempdir().unwrap();
    scripts(dir.path());
    let upstream = fake.base_url();
    let seed = format!("/v2/images/{SEED_IMAGE_ID}");
    let serving = ["--upstream", &upstream, "--store", "store"];
    let client = ["--", "python3", "client.py", &seed];
    let args = [&["run"][..], &serving, &client].concat();

    let ran = ims_vcr_async(dir.path(), &args, &[("IMS_VCR_MODE", "record")]).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(
        runs_log(dir.path()).starts_with("record "),
        "{}",
        runs_log(dir.path())
    );
    assert!(
        ran.stderr
            .contains("[record] ims-vcr summary: 0 hits, 0 misses, 1 recorded")
    );
    assert_eq!(fake.requests().len(), 1);

    // The same command line replays what was recorded with --mode replay, whatever the variable.
    let replay = [&["run", "--mode", "replay"][..], &serving, &client].concat();
    let ran = ims_vcr_async(dir.path(), &replay, &[("IMS_VCR_MODE", "record")]).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let log = runs_log(dir.path());
    assert!(log.lines().last().unwrap().starts_with("replay "), "{log}");
    assert!(
        ran.stderr
            .contains("[replay] ims-vcr summary: 1 hit, 0 misses"),
        "{}",
        ran.stderr
    );
    assert_eq!(fake.requests().len(), 1, "replay never forwards");
}

#[test]
fn usage_errors_name_the_missing_upstream_or_command() {
    let dir = tempfile::tempdir().unwrap();
    type Env = &'static [(&'static str, &'static str)];
    let cases: [(&[&str], Env, &str); 4] = [
        (
            &["run", "--mode", "record", "--", "true"],
            &[],
            "--upstream",
        ),
        (
            &["run", "--", "true"],
            &[("IMS_VCR_MODE", "auto")],
            "--upstream",
        ),
        (&["run", "--mode", "replay"], &[], "<CMD>"),
        (
            &["run", "--", "true"],
            &[("IMS_VCR_MODE", "rewind")],
            "--mode",
        ),
    ];
    for (args, env, expected) in cases {
        let ran = ims_vcr(dir.path(), args, env);
        assert_eq!(ran.code, 2, "{args:?} {env:?}: {}", ran.stderr);
        assert!(ran.stderr.contains(expected), "{args:?}: {}", ran.stderr);
    }
}

#[tokio::test]
async fn verify_replay_catches_a_command_that_does_not_replay_and_passes_one_that_does() {
    let fake = FakeIms::start(FakeOptions::plain()).await;
    let dir = tempfile::tempdir().unwrap();
    scripts(dir.path());
    let upstream = fake.base_url();
    let seed = format!("/v2/images/{SEED_IMAGE_ID}");
    let run = |store: &'static str, owner: &'static str| {
        let args: Vec<String> = [
            "run",
            "--mode",
            "record",
            "--upstream",
            &upstream,
            "--store",
            store,
            "--verify-replay",
            "2",
            "--",
            "python3",
            "client.py",
            &seed,
            &format!("/v2/images?owner={owner}"),
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        args
    };

    let args = run("deterministic", "fixed");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ran = ims_vcr_async(dir.path(), &args, &[]).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    for expected in [
        "[record] ims-vcr summary: 0 hits, 0 misses, 2 recorded",
        "[verify-replay 1/2] ims-vcr summary: 2 hits, 0 misses",
        "[verify-replay 2/2] ims-vcr summary: 2 hits, 0 misses",
    ] {
        assert!(ran.stderr.contains(expected), "{expected}: {}", ran.stderr);
    }
    let modes: Vec<_> = runs_log(dir.path())
        .lines()
        .map(|l| l.split(' ').next().unwrap().to_owned())
        .collect();
    assert_eq!(modes, ["record", "replay", "replay"]);
    assert_eq!(
        fake.requests().len(),
        2,
        "the replays never reach the upstream"
    );

    // A fresh random value on every run: recorded fine, but it cannot replay.
    let args = run("random", "RANDOM");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ran = ims_vcr_async(dir.path(), &args, &[]).await;
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    assert_eq!(fake.requests().len(), 4);
    let owners: Vec<&str> = ran
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("/v2/images?owner="))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    let [recorded, replayed] = owners[..] else {
        panic!("two runs, the second one failing: {}", ran.stdout);
    };
    for expected in [
        "verdict: --verify-replay: what was just recorded does not replay:".to_owned(),
        format!("run 1: missed (1x) GET /v2/images?owner={replayed}"),
        format!("run 1: unused GET /v2/images?owner={recorded}"),
    ] {
        assert!(ran.stderr.contains(&expected), "{expected}: {}", ran.stderr);
    }
    // The seed image replayed fine, and the first failing replay is the last.
    assert!(
        !ran.stderr.contains(&format!("unused GET {seed}")),
        "{}",
        ran.stderr
    );
    assert!(
        !ran.stderr.contains("[verify-replay 2/2]"),
        "{}",
        ran.stderr
    );
}

/// The keys the proxy re-signs with stay the proxy's: the command finds dummy ones in the SDK's
/// variables (so an SDK still builds its credentials) and no security token.
#[test]
fn the_command_gets_dummy_keys_in_place_of_the_proxys() {
    let dir = tempfile::tempdir().unwrap();
    shipped_cassettes(dir.path());
    let print =
        "echo \"$HUAWEICLOUD_SDK_AK:$HUAWEICLOUD_SDK_SK:${HUAWEICLOUD_SDK_SECURITY_TOKEN-none}\"";
    let env = [
        ("HUAWEICLOUD_SDK_AK", "REALAKOFTHEPROXY0001"),
        ("HUAWEICLOUD_SDK_SK", "real-sk-of-the-proxy-0002"),
        ("HUAWEICLOUD_SDK_SECURITY_TOKEN", "real-security-token-0003"),
    ];
    let ran = ims_vcr(dir.path(), &["run", "--", "sh", "-c", print], &env);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(
        ran.stdout, "IMSVCRDUMMYACCESSKEY:ims-vcr-dummy-secret-key:none\n",
        "{}",
        ran.stderr
    );
    for (_, real) in env {
        assert!(
            !ran.stdout.contains(real) && !ran.stderr.contains(real),
            "{real}"
        );
    }
    // Without keys, nothing is added.
    let ran = ims_vcr(dir.path(), &["run", "--", "sh", "-c", print], &[]);
    assert_eq!(ran.stdout, "::none\n", "{}", ran.stderr);
}
