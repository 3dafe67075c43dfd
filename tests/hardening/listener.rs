//! The listener: loopback unless `--allow-remote`, and the optional TLS listener (ALPN, plain and
//! silent clients, URLs rewritten to `https://`, unusable certificate files).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ims_vcr::{ProxyServer, UpstreamConfig};
use tokio::io::AsyncReadExt;

use crate::util::*;

#[test]
fn the_listener_is_loopback_by_default_and_elsewhere_only_with_allow_remote_and_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    shipped_cassettes(dir.path());
    // The default --listen: either it serves on 127.0.0.1:9696 or that port is taken; both say
    // the address is loopback.
    let mut child = Command::new(BIN)
        .arg("replay")
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        line.trim_end() == "listening on http://127.0.0.1:9696"
            || stderr.contains("cannot listen on 127.0.0.1:9696"),
        "{line:?} {stderr}"
    );

    let local = Running::start_with_env(&["replay", "--listen", "0"], dir.path(), &[]);
    assert!(local.uri.starts_with("http://127.0.0.1:"), "{}", local.uri);
    assert!(!local.log().contains("non-loopback"));

    let (code, stderr) = run(&["replay", "--listen", "0.0.0.0:0"], dir.path());
    assert_eq!(code, 2, "a usage error");
    assert!(stderr.contains("--allow-remote"), "{stderr}");

    let remote = Running::start_with_env(
        &["replay", "--listen", "0.0.0.0:0", "--allow-remote"],
        dir.path(),
        &[],
    );
    assert!(remote.uri.starts_with("http://0.0.0.0:"), "{}", remote.uri);
    let log = remote.log();
    assert!(
        log.contains("WARN")
            && log.contains("listening on a non-loopback address (--allow-remote)"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tls_listener_serves_http1_and_h2_by_alpn_and_shrugs_off_plain_and_silent_clients() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, proxy) = tls_replay(dir.path(), &["--header-read-timeout", "1"]);
    assert!(proxy.uri.starts_with("https://127.0.0.1:"), "{}", proxy.uri);
    let path = format!("/v2/images/{SEED_IMAGE_ID}");
    for (alpn, version) in [
        (&b"http/1.1"[..], hyper::Version::HTTP_11),
        (b"h2", hyper::Version::HTTP_2),
    ] {
        let (got_version, status, body) = https_get(proxy.addr(), &ca, alpn, &path).await;
        assert_eq!((got_version, status), (version, 200));
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["id"], SEED_IMAGE_ID);
    }
    // Plain HTTP on the TLS port: no answer, a closed connection.
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    let answer = raw(proxy.addr(), request.as_bytes(), Duration::from_secs(10)).await;
    assert!(
        !answer.starts_with(b"HTTP/"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // A client that connects and never starts the handshake is disconnected, and so is one that
    // negotiates HTTP/2 and then sends nothing.
    let started = Instant::now();
    raw(proxy.addr(), b"", Duration::from_secs(10)).await;
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "silent TLS client kept"
    );
    let started = Instant::now();
    let silent_h2 = tls_connect(proxy.addr(), &ca, b"h2").await;
    let mut silent_h2 = silent_h2;
    let mut sink = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(10), silent_h2.read_to_end(&mut sink)).await;
    assert!(
        closed.is_ok(),
        "silent HTTP/2 client kept after {:?}",
        started.elapsed()
    );
    let (_, status, _) = https_get(proxy.addr(), &ca, b"http/1.1", &path).await;
    assert_eq!(status, 200);
    proxy.assert_no_panic();
}

#[tokio::test]
async fn over_tls_upstream_urls_in_answers_point_at_the_proxy_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let ca = write_listener_cert(dir.path());
    let fake = FakeIms::start(FakeOptions::plain()).await;
    let proxy = ProxyServer::builder()
        .record(UpstreamConfig::new(fake.base_url()))
        .store(dir.path().join("store"))
        .tls(dir.path().join("cert.pem"), dir.path().join("key.pem"))
        .header_read_timeout(Duration::from_secs(5))
        .start()
        .await
        .unwrap();
    assert!(proxy.uri().starts_with("https://"), "{}", proxy.uri());
    let (_, status, body) = https_get(proxy.address(), &ca, b"http/1.1", "/v2").await;
    assert_eq!(status, 200);
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body["versions"][0]["links"][0]["href"],
        format!("https://{}/v2/", proxy.address())
    );
    proxy.shutdown().await.unwrap();
}

#[test]
fn missing_or_unusable_tls_files_get_errors_naming_the_flag_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write_listener_cert(dir.path());
    let (_, other_key) = self_signed(&["127.0.0.1"]);
    std::fs::write(dir.path().join("other-key.pem"), other_key).unwrap();
    std::fs::write(
        dir.path().join("garbage.pem"),
        "-----BEGIN PRIVATE KEY-----\n!!!\n",
    )
    .unwrap();
    shipped_cassettes(dir.path());
    let serve = |tls: &[&'static str]| {
        let mut args = vec!["replay", "--listen", "0"];
        args.extend_from_slice(tls);
        args
    };
    let cases: [(&[&str], i32, &str); 6] = [
        (
            &["--tls-cert", "missing.pem", "--tls-key", "key.pem"],
            1,
            "--tls-cert missing.pem:",
        ),
        (
            &["--tls-cert", "cert.pem", "--tls-key", "missing.pem"],
            1,
            "--tls-key missing.pem:",
        ),
        (
            &["--tls-cert", "key.pem", "--tls-key", "key.pem"],
            1,
            "--tls-cert key.pem: no PEM certificate",
        ),
        (
            &["--tls-cert", "cert.pem", "--tls-key", "garbage.pem"],
            1,
            "--tls-key garbage.pem:",
        ),
        (
            &["--tls-cert", "cert.pem", "--tls-key", "other-key.pem"],
            1,
            "--tls-cert cert.pem and --tls-key other-key.pem",
        ),
        (&["--tls-cert", "cert.pem"], 2, "--tls-key"),
    ];
    for (tls, expected_code, expected) in cases {
        let args = serve(tls);
        let (code, stderr) = run(&args, dir.path());
        assert_eq!(code, expected_code, "{args:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?}: expected {expected:?} in {stderr}"
        );
    }
    for (flag, value) in [
        ("--header-read-timeout", "0"),
        ("--header-read-timeout", "1e30"),
        ("--header-read-timeout", "NaN"),
    ] {
        let (code, stderr) = run(&["replay", "--listen", "0", flag, value], dir.path());
        assert_eq!(code, 2, "a usage error: {stderr}");
        assert!(stderr.contains(flag), "{stderr}");
    }
    let (code, stderr) = run(
        &[
            "record",
            "--upstream",
            "http://127.0.0.1:9",
            "--upstream-timeout",
            "1e30",
        ],
        dir.path(),
    );
    assert_eq!(code, 2, "a usage error: {stderr}");
    assert!(stderr.contains("--upstream-timeout"), "{stderr}");
}

/// With `--stop-on-stdin-eof` the proxy stops, drained and with its summary, once its standard
/// input ends: a harness holding the other end of the pipe (the pytest plugin) never leaves it
/// running, even when the harness is killed. Without the flag, stdin ending changes nothing.
#[test]
fn with_stop_on_stdin_eof_the_proxy_stops_when_its_stdin_ends() {
    let dir = tempfile::tempdir().unwrap();
    shipped_cassettes(dir.path());
    for (flag, stops) in [(Some("--stop-on-stdin-eof"), true), (None, false)] {
        let mut args = vec![
            "replay",
            "--cassettes",
            "cassettes",
            "--listen",
            "127.0.0.1:0",
        ];
        args.extend(flag);
        let mut child = Command::new(BIN)
            .args(&args)
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("listening on "), "{line}");
        drop(child.stdin.take());
        let status = wait_exit(&mut child, Duration::from_secs(if stops { 10 } else { 1 }));
        if stops {
            let status = status.expect("the proxy stopped when its stdin ended");
            assert!(status.success(), "{status:?}");
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            assert!(err.contains("ims-vcr summary:"), "{err}");
        } else {
            assert!(status.is_none(), "stopped without the flag");
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A harness that gives the proxy a pipe as standard error and reads it only at the end (as
/// `subprocess.Popen(..., stderr=PIPE)` with `communicate()` after the tests does) never stalls
/// it: a pipe nobody reads fills after some hundreds of miss reports (64 KiB on Linux), and the
/// proxy used to wait for a reader there, answering nothing, and then could not even print its
/// summary when stopped. Lines it cannot write in time are dropped instead; every request is
/// answered and `SIGTERM` ends the process.
#[tokio::test]
async fn a_piped_stderr_nobody_reads_never_stalls_the_proxy_or_its_exit() {
    let dir = tempfile::tempdir().unwrap();
    shipped_cassettes(dir.path());
    let mut child = Command::new(BIN)
        .args([
            "replay",
            "--cassettes",
            "cassettes",
            "--listen",
            "127.0.0.1:0",
        ])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A failed assertion below must not leave the proxy running: killed when the test ends
    // before it was reaped.
    struct KillOnDrop(i32);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            if self.0 > 0 {
                unsafe { libc::kill(self.0, libc::SIGKILL) };
            }
        }
    }
    let mut running = KillOnDrop(child.id() as i32);
    let uri = first_line(&mut child)
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    // Each miss is reported on stderr with its request line: 1,200 long paths are several
    // times what the pipe holds.
    let padding = "p".repeat(200);
    for i in 0..1200 {
        let url = format!("{uri}/v2/images/missing-{i}-{padding}");
        let reply = tokio::time::timeout(Duration::from_secs(20), get(&url))
            .await
            .unwrap_or_else(|_| panic!("request {i} was not answered: the proxy stalled"));
        assert_eq!(reply.status, 599, "request {i}: {}", reply.text());
    }
    // Stopped, then read as `communicate()` reads: everything queued comes through, the exit
    // summary last.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut err = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut err).unwrap();
        err
    });
    let status = wait_exit(&mut child, Duration::from_secs(15));
    let _ = child.kill();
    running.0 = 0;
    assert!(
        status.is_some(),
        "the proxy did not exit on SIGTERM with its stderr unread"
    );
    let err = reader.join().unwrap();
    assert!(
        err.contains("ims-vcr summary:"),
        "the summary: {}",
        &err[err.len().saturating_sub(2000)..]
    );
    assert!(
        err.contains("missing-0-"),
        "the first misses are on stderr: {}",
        &err[..err.len().min(2000)]
    );
}

/// A proxy out of file descriptors (`ulimit -n`, more clients than it allows) says that is what
/// happened, and serves again once the clients go.
#[test]
fn a_proxy_out_of_file_descriptors_says_so_and_serves_again_when_clients_leave() {
    let dir = tempfile::tempdir().unwrap();
    shipped_cassettes(dir.path());
    let log = dir.path().join("log");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 40; exec {BIN} replay --cassettes cassettes --listen 127.0.0.1:0 2>log"
        ))
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Killed when the test ends, passed or not.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _running = Kill(child);
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap()
        .to_owned();
    // More connections than it has descriptors for, each kept open.
    let clients: Vec<_> = (0..60)
        .filter_map(|_| std::net::TcpStream::connect(&addr).ok())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log)
        .unwrap()
        .contains("ran out of file descriptors")
    {
        assert!(
            Instant::now() < deadline,
            "{}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(clients);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status_line = || -> Option<String> {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(&addr).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        stream
            .write_all(b"GET /v2/schemas/image HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .ok()?;
        let mut reply = String::new();
        let _ = stream.read_to_string(&mut reply);
        reply.lines().next().map(str::to_owned)
    };
    while status_line().as_deref() != Some("HTTP/1.1 200 OK") {
        assert!(Instant::now() < deadline, "not serving again");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A client that refuses the proxy's certificate (here: its CA is not trusted) makes the proxy
/// say so once at the default log level, naming the flag, where a failed handshake was only a
/// debug line: an expired certificate or one for another host name failed every client
/// silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_refusing_the_listeners_certificate_is_warned_about_once() {
    let dir = tempfile::tempdir().unwrap();
    let (_, proxy) = tls_replay(dir.path(), &[]);
    // A client trusting another CA.
    let other = tempfile::tempdir().unwrap();
    let other_ca = write_listener_cert(other.path());
    for _ in 0..3 {
        let config = std::sync::Arc::new(client_config(&other_ca));
        let tcp = tokio::net::TcpStream::connect(proxy.addr()).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let refused = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await;
        assert!(refused.is_err(), "the client trusts another CA");
    }
    let log = wait_for_log(&proxy, "refused the --tls-cert certificate");
    assert_eq!(
        log.matches("refused the --tls-cert certificate").count(),
        1,
        "{log}"
    );
    assert!(log.contains("WARN"), "{log}");
}

/// The proxy's log once it holds `needle` (within 10 s).
fn wait_for_log(proxy: &Running, needle: &str) -> String {
    let started = Instant::now();
    loop {
        let log = proxy.log();
        if log.contains(needle) || started.elapsed() > Duration::from_secs(10) {
            return log;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A replay of the shipped cassettes in `dir` over TLS (a certificate written there), with
/// `extra` flags; and the CA that signed its certificate.
fn tls_replay(dir: &std::path::Path, extra: &[&str]) -> (String, Running) {
    let ca = write_listener_cert(dir);
    shipped_cassettes(dir);
    let args = [
        "replay",
        "--listen",
        "0",
        "--tls-cert",
        "cert.pem",
        "--tls-key",
        "key.pem",
    ];
    (
        ca,
        Running::start_with_env(&[&args[..], extra].concat(), dir, &[]),
    )
}
