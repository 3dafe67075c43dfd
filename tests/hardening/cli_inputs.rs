//! Hostile values for the flags that name files and URLs, and hostile ends of the output: each
//! is refused by name (exit 1 or 2) or ends quietly, never with a panic, and nothing the user
//! named is lost.

use std::os::unix::fs::FileTypeExt as _;
use std::path::Path;

use crate::util::*;

/// A store holding the shipped cassettes, at `dir/s`.
fn imported_store(dir: &Path) {
    shipped_cassettes(dir);
    let (code, err) = run(&["import", "--store", "s", "cassettes"], dir);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn har_export_refuses_an_out_that_is_a_fifo_or_a_socket_and_leaves_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    imported_store(dir.path());
    let fifo = dir.path().join("pipe.har");
    let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates the node.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o644) }, 0);
    let socket = dir.path().join("socket.har");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    for (out, kind) in [("pipe.har", "a FIFO"), ("socket.har", "a socket")] {
        let (code, err) = run(
            &["export", "--store", "s", "--format", "har", "--out", out],
            dir.path(),
        );
        assert_eq!(code, 1, "{out}: {err}");
        assert!(
            err.contains(&format!("--out {out}: is {kind}")),
            "{out}: {err}"
        );
        assert!(!err.contains("exported"), "{out}: {err}");
    }
    // A folder is told to take a file name in it; a file in a folder that is not there is
    // named by the flag too.
    std::fs::create_dir(dir.path().join("hars")).unwrap();
    let (code, err) = run(
        &["export", "--store", "s", "--format", "har", "--out", "hars"],
        dir.path(),
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("--out hars: is a folder; --format har writes one file: give its name, e.g. hars/recording.har"),
        "{err}"
    );
    for out in ["nodir/x.har", "nofolder/"] {
        let (code, err) = run(
            &["export", "--store", "s", "--format", "har", "--out", out],
            dir.path(),
        );
        assert_eq!(code, 1, "{out}: {err}");
        assert!(
            err.contains(&format!("--out {out}: cannot write the HAR file there: ")),
            "{out}: {err}"
        );
    }
    let meta = std::fs::symlink_metadata(&fifo).unwrap();
    assert!(meta.file_type().is_fifo(), "the FIFO was replaced");
    let meta = std::fs::symlink_metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket(), "the socket was replaced");
    // No temporary file left behind either, and a regular file is still replaced.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
    std::fs::write(dir.path().join("old.har"), "old").unwrap();
    let (code, err) = run(
        &[
            "export", "--store", "s", "--format", "har", "--out", "old.har",
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        std::fs::read_to_string(dir.path().join("old.har"))
            .unwrap()
            .contains("\"log\"")
    );
}

#[test]
fn har_export_to_dash_writes_standard_output_and_cassettes_to_dash_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    imported_store(dir.path());
    let (code, stdout, err) = run_with_stdout(
        &["export", "--store", "s", "--format", "har", "--out", "-"],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    let har: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is the HAR");
    assert!(
        !har["log"]["entries"].as_array().unwrap().is_empty(),
        "{stdout}"
    );
    assert!(err.contains("to standard output"), "{err}");
    assert!(!dir.path().join("-").exists(), "a file named - was written");
    // A reader that goes early (`| head -1`) ends it quietly, as every output command.
    let (code, err) = run_with_closed_stdout(
        &["export", "--store", "s", "--format", "har", "--out", "-"],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    let (code, stdout, err) =
        run_with_stdout(&["export", "--store", "s", "--out", "-"], dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--out -") && err.contains("--format har"),
        "{err}"
    );
    assert!(
        stdout.is_empty() && !dir.path().join("-").exists(),
        "{stdout}"
    );
}

/// `ims-vcr args` in `cwd` with its stdout a pipe whose reader has gone before it writes (as
/// under `| head -1` once head has its line): (exit code, stderr).
fn run_with_closed_stdout(args: &[&str], cwd: &Path) -> (i32, String) {
    let mut child = std::process::Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = wait_exit(&mut child, std::time::Duration::from_secs(30));
    if status.is_none() {
        let _ = child.kill();
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let status = status.unwrap_or_else(|| panic!("{args:?} hung: {stderr}"));
    (status.code().unwrap_or(-1), stderr)
}

#[test]
fn a_reader_that_goes_away_ends_every_printing_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    imported_store(dir.path());
    for args in [
        &["ls", "--store", "s"][..],
        &["ls", "--cassettes", "cassettes", "--json"],
        &["show", "--store", "s", "/v2/schemas/image"],
        &["verify", "cassettes"],
        &["completions", "bash"],
    ] {
        let (code, err) = run_with_closed_stdout(args, dir.path());
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
    }
    // A verdict survives its report being cut short: findings still exit 3.
    let (code, err) = run_with_closed_stdout(
        &[
            "verify",
            "cassettes",
            "--deny",
            "bc6bed6e-ba3a-4447-afcc-449174a3eb52",
        ],
        dir.path(),
    );
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("verdict: verify found"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// `ims-vcr args` in `cwd` with its address space limited to 4 GiB, so a read without bound
/// fails fast instead of taking the machine's memory: (exit code, stderr).
fn run_in_bounded_memory(args: &[&str], cwd: &Path) -> (i32, String) {
    use std::os::unix::process::CommandExt as _;
    let mut command = std::process::Command::new(BIN);
    // SAFETY: setrlimit is a bare system call; nothing is allocated between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 4 << 30,
                rlim_max: 4 << 30,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .env_remove("HUAWEICLOUD_SDK_AK")
        .env_remove("HUAWEICLOUD_SDK_SK")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_exit(&mut child, std::time::Duration::from_secs(30));
    if status.is_none() {
        let _ = child.kill();
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let status = status.unwrap_or_else(|| panic!("{args:?} hung: {stderr}"));
    (status.code().unwrap_or(-1), stderr)
}

#[test]
fn an_input_file_that_never_ends_or_is_too_large_is_refused_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    shipped_cassettes(dir.path());
    // Sparse: 17 MiB that take no disk.
    let big = std::fs::File::create(dir.path().join("big.toml")).unwrap();
    big.set_len(17 << 20).unwrap();
    drop(big);
    let upstream = "https://127.0.0.1:9";
    let cases: [(&[&str], &str); 8] = [
        (
            &[
                "replay",
                "--cassettes",
                "cassettes",
                "--listen",
                "0",
                "--tls-cert",
                "/dev/zero",
                "--tls-key",
                "/dev/zero",
            ],
            "--tls-cert /dev/zero: is a character device",
        ),
        (
            &[
                "passthrough",
                "--upstream",
                upstream,
                "--upstream-ca",
                "/dev/zero",
                "--listen",
                "0",
            ],
            "--upstream-ca /dev/zero: is a character device",
        ),
        (
            &[
                "record",
                "--route",
                "/v3=https://127.0.0.1:9",
                "--route-ca",
                "/v3=/dev/zero",
                "--listen",
                "0",
                "--store",
                "s",
            ],
            "--route-ca /dev/zero: is a character device",
        ),
        (
            &[
                "drift",
                "--upstream",
                upstream,
                "--upstream-ca",
                "/dev/zero",
                "--cassettes",
                "cassettes",
            ],
            "--upstream-ca /dev/zero: is a character device",
        ),
        (
            &["--config", "/dev/zero", "ls"],
            "--config /dev/zero: is a character device",
        ),
        (
            &["--config", "big.toml", "ls"],
            "--config big.toml: larger than 16 MiB",
        ),
        (
            &["verify", "cassettes", "--deny-file", "/dev/zero"],
            "--deny-file /dev/zero: is a character device",
        ),
        (
            &["verify", "cassettes", "--deny-file", "big.toml"],
            "--deny-file big.toml: larger than 16 MiB",
        ),
    ];
    for (args, expected) in cases {
        let (code, err) = run_in_bounded_memory(args, dir.path());
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    assert!(!dir.path().join("s").exists(), "nothing was recorded");
}

#[test]
fn a_ca_file_without_a_certificate_is_refused_naming_the_flag_given() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.pem"), "not pem\n").unwrap();
    let route_ca = [
        "record",
        "--upstream",
        "https://127.0.0.1:9",
        "--route",
        "/v3=https://127.0.0.1:9",
        "--route-ca",
        "/v3=bad.pem",
        "--listen",
        "0",
        "--store",
        "s",
    ];
    let (code, err) = run(&route_ca, dir.path());
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("--route-ca /v3=bad.pem: no PEM certificate found in the file"),
        "{err}"
    );
    assert!(!err.contains("--upstream-ca"), "{err}");
    // --upstream-ca names itself; a route without its own CA takes it, and is not blamed.
    let upstream_ca = [
        "record",
        "--upstream",
        "https://127.0.0.1:9",
        "--route",
        "/v3=https://127.0.0.1:9",
        "--upstream-ca",
        "bad.pem",
        "--listen",
        "0",
        "--store",
        "s",
    ];
    let (code, err) = run(&upstream_ca, dir.path());
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("--upstream-ca bad.pem: no PEM certificate found in the file"),
        "{err}"
    );
    assert!(!err.contains("--route"), "{err}");
    assert!(!dir.path().join("s").exists(), "nothing was recorded");
}

#[test]
fn an_empty_name_list_or_spec_value_is_a_usage_error_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    shipped_cassettes(dir.path());
    let record = [
        "record",
        "--upstream",
        "https://127.0.0.1:9",
        "--listen",
        "0",
        "--store",
        "s",
    ];
    let mut cases: Vec<(Vec<&str>, &str)> = Vec::new();
    for flag in [
        "--redact-field",
        "--redact-header",
        "--redact-query",
        "--match-header",
        "--ignore-query",
        "--volatile",
        "--shift-time",
        "--route",
        "--route-ca",
        "--control-token",
    ] {
        cases.push(([&record[..], &[flag, ""]].concat(), flag));
    }
    for command in ["auto", "passthrough"] {
        let mut args = record.to_vec();
        args[0] = command;
        if command == "passthrough" {
            args.truncate(5);
        }
        cases.push(([&args[..], &["--route", ""]].concat(), "--route"));
    }
    cases.push((
        vec![
            "drift",
            "--upstream",
            "https://127.0.0.1:9",
            "--cassettes",
            "cassettes",
            "--ignore-field",
            "",
        ],
        "--ignore-field",
    ));
    cases.push((vec!["verify", "cassettes", "--deny", ""], "--deny"));
    cases.push((
        vec!["export", "--store", "s", "--out", "o", "--redact-field", ""],
        "--redact-field",
    ));
    cases.push((
        vec!["import", "--store", "s", "cassettes", "--redact-query", ""],
        "--redact-query",
    ));
    // A blank name is none either (a cassette holding one is refused).
    cases.push((
        vec![
            "record",
            "--upstream",
            "http://127.0.0.1:9",
            "--store",
            "s",
            "--ignore-query",
            " ",
        ],
        "--ignore-query",
    ));
    for (args, flag) in cases {
        // Bounded: a value taken silently would start the proxy, which never ends by itself.
        let mut child = std::process::Command::new(BIN)
            .args(&args)
            .current_dir(dir.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait_exit(&mut child, std::time::Duration::from_secs(10));
        if status.is_none() {
            let _ = child.kill();
        }
        let err = String::from_utf8_lossy(&child.wait_with_output().unwrap().stderr).into_owned();
        let status = status.unwrap_or_else(|| panic!("{args:?} was accepted: {err}"));
        assert_eq!(status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(&format!("'{flag} <")), "{args:?}: {err}");
        assert!(
            err.contains("an empty value names nothing"),
            "{args:?}: {err}"
        );
    }
    assert!(!dir.path().join("s").exists(), "nothing was recorded");
    assert!(!dir.path().join("o").exists(), "nothing was exported");
}

#[test]
fn an_upstream_or_route_url_that_cannot_be_used_is_a_usage_error_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    for (url, reason) in [
        ("https://:18443", "no host"),
        ("https://127.0.0.1:99999", "port 99999"),
        ("https://127.0.0.1:0", "port 0"),
        ("https://127.0.0.1:", "port after ':' is empty"),
        ("https://127.0.0.1:18443/#frag", "fragment"),
        ("https://127.0.0.1#", "fragment"),
    ] {
        let (code, err) = run(
            &["passthrough", "--upstream", url, "--listen", "0"],
            dir.path(),
        );
        assert_eq!(code, 2, "{url}: {err}");
        assert!(
            err.contains("'--upstream <URL>'") && err.contains(reason),
            "{url}: {err}"
        );
        let route = format!("/v3={url}");
        let (code, err) = run(
            &["passthrough", "--route", &route, "--listen", "0"],
            dir.path(),
        );
        assert_eq!(code, 2, "{route}: {err}");
        assert!(
            err.contains("'--route'") && err.contains(reason),
            "{route}: {err}"
        );
        assert!(!err.contains("--upstream"), "{route}: {err}");
    }
    // Bad prefixes, and secrets in a route's URL: usage errors naming --route, the password
    // never shown.
    for route in [
        "v3=https://127.0.0.1:9",
        "/v3=https://user:pa55word-9@127.0.0.1:9",
        "https://user:pa55word-9@127.0.0.1:9/x=y",
        "https://user:pa55word-9@127.0.0.1:9",
    ] {
        let (code, err) = run(
            &["record", "--route", route, "--listen", "0", "--store", "s"],
            dir.path(),
        );
        assert_eq!(code, 2, "{route}: {err}");
        assert!(err.contains("--route"), "{route}: {err}");
        assert!(!err.contains("--upstream"), "{route}: {err}");
        assert!(!err.contains("pa55word"), "{route}: {err}");
    }
    // Nor in any other part a refusal shows: a fragment, a path parameter, user information
    // without a scheme, for both flags.
    for url in [
        "https://127.0.0.1:9#access_token=pa55word-9",
        "https://127.0.0.1:9/x;token=pa55word-9",
        "user:pa55word-9@127.0.0.1:9",
    ] {
        let route = format!("/v3={url}");
        let mut flags = vec![["--upstream", url]];
        // A route may have a path: that one would start.
        if !url.contains(";token=") {
            flags.push(["--route", route.as_str()]);
        }
        for flag in flags {
            let (code, err) = run(
                &[&["record"][..], &flag, &["--listen", "0", "--store", "s"]].concat(),
                dir.path(),
            );
            assert_eq!(code, 2, "{flag:?}: {err}");
            assert!(!err.contains("pa55word"), "{flag:?}: {err}");
        }
    }
    assert!(!dir.path().join("s").exists(), "nothing was recorded");
    // What is fine stays fine: IPv6, a port, a trailing slash.
    for url in [
        "https://[::1]:8443",
        "http://127.0.0.1:8080/",
        "https://localhost",
    ] {
        let proxy = Running::start(
            &["passthrough", "--upstream", url, "--listen", "0"],
            dir.path(),
        );
        proxy.signal("-TERM");
        assert!(proxy.wait().success(), "{url}");
    }
}

#[tokio::test]
async fn a_recorder_whose_stderr_cannot_be_written_serves_and_shuts_down_cleanly() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions::default()).await;
    let ca = fake.write_ca_pem(dir.path());
    // Standard error a pipe nobody reads any more: every log line fails to be written, as on a
    // full disk (RUST_LOG=debug: a line for every request too).
    let mut child = std::process::Command::new(BIN)
        .args(["record", "--upstream", &fake.base_url(), "--upstream-ca"])
        .arg(&ca)
        .args(["--listen", "0", "--store", "s"])
        .current_dir(dir.path())
        .env("RUST_LOG", "debug")
        .env_remove("HUAWEICLOUD_SDK_AK")
        .env_remove("HUAWEICLOUD_SDK_SK")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let Some(uri) = line.trim_end().strip_prefix("listening on ") else {
        let _ = child.kill();
        panic!("no listening line: {line:?}, exit {:?}", child.wait());
    };
    let reply = get(&format!("{uri}/v2/images/{SEED_IMAGE_ID}")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-ims-vcr"), Some("recorded"));
    // SAFETY: kill(2) on the child's own pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = wait_exit(&mut child, std::time::Duration::from_secs(30));
    if status.is_none() {
        let _ = child.kill();
    }
    let status = status.expect("the recorder exits after SIGTERM");
    assert!(status.success(), "{status:?}");
    assert_eq!(stored_answers(&dir.path().join("s")), 1);
}

#[test]
fn a_negative_number_or_a_bad_mode_variable_is_named_as_given() {
    let dir = tempfile::tempdir().unwrap();
    for (args, named) in [
        (&["replay", "--max-body", "-1"][..], "--max-body"),
        (
            &["replay", "--header-read-timeout", "-1"],
            "--header-read-timeout",
        ),
        (&["replay", "--seed", "-3"], "--seed"),
        (
            &[
                "passthrough",
                "--upstream",
                "https://127.0.0.1:9",
                "--upstream-timeout",
                "-1",
            ],
            "--upstream-timeout",
        ),
    ] {
        let (code, err) = run(args, dir.path());
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(named), "{args:?}: {err}");
        assert!(!err.contains("unexpected argument"), "{args:?}: {err}");
    }
    // A size in bytes says what it must be, never a parser's "invalid digit".
    for size in ["-1", "10MiB", "1.5"] {
        let (code, err) = run(&["replay", "--max-body", size], dir.path());
        assert_eq!(code, 2, "{size}: {err}");
        assert!(
            err.contains(&format!(
                "invalid value '{size}' for '--max-body <BYTES>': a size in bytes is a whole number"
            )) && !err.contains("invalid digit"),
            "{size}: {err}"
        );
    }
    let output = std::process::Command::new(BIN)
        .args(["run", "--", "true"])
        .current_dir(dir.path())
        .env("IMS_VCR_MODE", "bogus")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("IMS_VCR_MODE") && err.contains("bogus"),
        "{err}"
    );
    assert!(!err.contains("'--mode"), "{err}");
    // An empty variable (CI without a value for it) is no mode: the default, replay.
    shipped_cassettes(dir.path());
    let output = std::process::Command::new(BIN)
        .args(["run", "--", "true"])
        .current_dir(dir.path())
        .env("IMS_VCR_MODE", "")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert!(err.contains("[replay] ims-vcr summary:"), "{err}");
}

/// CI sets a secret that is not available (a pull request from a fork) to the empty string: an
/// empty `IMS_VCR_CONTROL_TOKEN` is no token, and the proxy starts; an empty `--control-token=`
/// given on the command line is still refused, naming the flag.
#[tokio::test]
async fn an_empty_control_token_variable_is_no_token_and_the_proxy_starts() {
    let dir = tempfile::tempdir().unwrap();
    let cassettes = shipped_cassettes(dir.path());
    let cassettes = cassettes.to_str().unwrap();
    let args = ["replay", "--listen", "0", "--cassettes", cassettes];
    let proxy = Running::start_with_env(&args, dir.path(), &[("IMS_VCR_CONTROL_TOKEN", "")]);
    let health = send("GET", &format!("{}/__ims-vcr/health", proxy.uri), &[], b"").await;
    assert_eq!(health.status, 200, "{}", health.text());
    assert!(proxy.terminate().success());
    let (code, _, err) = crate::util::process::run_with_stdout(
        &[
            "replay",
            "--listen",
            "0",
            "--cassettes",
            cassettes,
            "--control-token=",
        ],
        dir.path(),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--control-token"), "{err}");
}

/// A volatile pattern that does not compile is named where it was written: the settings file
/// and its key when it came from there (not a `--volatile` the user never typed), the flag when
/// it was given on the command line. Nothing starts and nothing is stored either way.
#[test]
fn a_bad_volatile_pattern_is_named_by_the_file_or_the_flag_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("team.toml"),
        "[match]\nvolatile = [\"tf-(\"]\n",
    )
    .unwrap();
    let record = [
        "record",
        "--upstream",
        "https://127.0.0.1:9",
        "--store",
        "s",
    ];
    let (code, err) = run(
        &[&["--config", "team.toml"], &record[..]].concat(),
        dir.path(),
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("team.toml: [match] volatile \"tf-(\""),
        "{err}"
    );
    assert!(!err.contains("--volatile"), "{err}");
    let (code, err) = run(&[&record[..], &["--volatile", "tf-("]].concat(), dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--volatile \"tf-(\""), "{err}");
    assert!(!dir.path().join("s").exists(), "nothing was recorded");
}

/// `import DIR` of a folder holding HAR files but no cassette says how to import them instead of
/// importing nothing with success; nothing is written.
#[test]
fn importing_a_folder_of_har_files_says_to_import_each_by_its_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("hars")).unwrap();
    std::fs::write(
        dir.path().join("hars/suite.har"),
        r#"{"log":{"entries":[]}}"#,
    )
    .unwrap();
    let (code, err) = run(&["import", "--store", "s", "hars"], dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("suite.har") && err.contains("ims-vcr import"),
        "{err}"
    );
    assert!(!dir.path().join("s").exists(), "nothing was written");
}

/// A cassette's file name, a field name inside it or a value quoted in an error can hold
/// terminal control sequences (clear the screen, set the title, hide lines): `import` and
/// `replay` print them visibly escaped, as `verify`, `ls` and `show` do, never raw.
#[test]
fn control_characters_in_a_cassette_reach_an_error_escaped_never_raw() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad");
    std::fs::create_dir(&bad).unwrap();
    std::fs::write(bad.join("a\x1b[2J\x1b]0;pwned\x07b.json"), "{\"format\":1").unwrap();
    // A shipped cassette with one field more, whose name holds an escape sequence.
    let fields = shipped_cassettes(&dir.path().join("shipped"));
    let first = std::fs::read_dir(&fields)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut cassette: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&first).unwrap()).unwrap();
    cassette["x\u{1b}[2J"] = serde_json::json!(1);
    std::fs::write(&first, cassette.to_string()).unwrap();
    for (args, shown) in [
        (
            vec!["import", "--store", "s", "bad"],
            "a\\x1b[2J\\x1b]0;pwned\\x07b.json",
        ),
        (
            vec!["replay", "--cassettes", "bad", "--listen", "127.0.0.1:0"],
            "\\x1b]0;pwned",
        ),
        (
            vec!["import", "--store", "s", "shipped/cassettes"],
            "x\\x1b[2J",
        ),
    ] {
        let (code, err) = run(&args, dir.path());
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains(shown), "{args:?}: {err}");
        assert!(
            !err.contains('\x1b') && !err.contains('\x07'),
            "{args:?}: raw control bytes: {err:?}"
        );
    }
    assert!(
        !dir.path().join("s").exists(),
        "a failed import made a store"
    );
    // A log line's fields too (a warning naming a symlinked folder), not only errors.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, fields.join("a\x1b]0;pwned\x07b")).unwrap();
    let (code, err) = run(&["import", "--store", "s", "shipped/cassettes"], dir.path());
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("a symlinked folder") && err.contains("a\\x1b]0;pwned\\x07b"),
        "{err}"
    );
    assert!(
        !err.contains('\x1b') && !err.contains('\x07'),
        "raw control bytes: {err:?}"
    );
}

/// A cassette whose method is a standard one in lower case (`get`) is read as written (a client
/// may send it so), but `import` says that a `GET` never matches it.
#[test]
fn a_lower_case_method_in_a_cassette_is_read_with_a_warning() {
    let (code, err) = import_with_a_shipped_cassette_edited(|cassette| {
        cassette["request"]["method"] = "get".into();
    });
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(r#"request.method is "get", not "GET""#),
        "{err}"
    );
}

/// A hand-edited `204` (or `304`) with a body is read, and served without it as HTTP has it;
/// `import` says so, where the body was dropped silently.
#[test]
fn a_no_content_answer_with_a_body_is_read_with_a_warning() {
    let (code, err) = import_with_a_shipped_cassette_edited(|cassette| {
        cassette["answers"][0]["status"] = 204.into();
    });
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("answers[0] is a 204 with a body"), "{err}");
}

/// `import` of the shipped cassettes, the first of them changed by `edit` first: its exit code
/// and standard error.
fn import_with_a_shipped_cassette_edited(
    edit: impl FnOnce(&mut serde_json::Value),
) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let cassettes = shipped_cassettes(dir.path());
    let first = std::fs::read_dir(&cassettes)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut cassette: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&first).unwrap()).unwrap();
    edit(&mut cassette);
    std::fs::write(&first, cassette.to_string()).unwrap();
    run(&["import", "--store", "s", "cassettes"], dir.path())
}

/// A security token alone (no AK/SK beside it) signs nothing: the proxy says so at start-up
/// instead of saying only that it has no keys.
#[test]
fn a_security_token_without_ak_sk_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let env = [(
        "HUAWEICLOUD_SDK_SECURITY_TOKEN",
        "a-lone-security-token-0001",
    )];
    let args = [
        "passthrough",
        "--upstream",
        "http://127.0.0.1:9",
        "--listen",
        "127.0.0.1:0",
    ];
    let proxy = Running::start_with_env(&args, dir.path(), &env);
    let log = proxy.log();
    assert!(proxy.terminate().success());
    assert!(
        log.contains("HUAWEICLOUD_SDK_SECURITY_TOKEN is set but HUAWEICLOUD_SDK_AK"),
        "{log}"
    );
    assert!(!log.contains("a-lone-security-token"), "{log}");
}
