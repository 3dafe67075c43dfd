//! Hardening: what survives `kill -9` under load, store ownership and damage, hostile clients,
//! hostile upstreams, secrets in logs and error bodies, exposure, and the optional TLS listener.
//! Most tests drive the `ims-vcr` binary and check its log for panics.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use ims_vcr::{ProxyServer, UpstreamConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::util::*;

// ---------------------------------------------------------------------------------------------
// Harness: the binary, raw HTTP, raw upstreams, certificates

/// Copies the shipped cassettes into `dir/cassettes`.
fn shipped_cassettes(dir: &Path) -> PathBuf {
    let to = dir.join("cassettes");
    std::fs::create_dir_all(&to).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("cassettes");
    for (name, bytes) in all_files(&repo) {
        std::fs::write(to.join(name), bytes).unwrap();
    }
    to
}

/// `ims-vcr replay` of the shipped cassettes, with a 1 s header-read timeout and a 1 KiB body cap.
fn hostile_replay(dir: &Path) -> Running {
    shipped_cassettes(dir);
    Running::start_with_env(
        &[
            "replay",
            "--cassettes",
            "cassettes",
            "--listen",
            "0",
            "--header-read-timeout",
            "1",
            "--max-body",
            "1024",
        ],
        dir,
        &[],
    )
}

/// `ims-vcr record` in front of `upstream` into `dir/store`, same limits as [`hostile_replay`].
fn hostile_record(dir: &Path, upstream: &str, extra: &[&str]) -> Running {
    let mut args = vec![
        "record",
        "--upstream",
        upstream,
        "--store",
        "store",
        "--listen",
        "0",
        "--header-read-timeout",
        "1",
        "--max-body",
        "1024",
    ];
    args.extend_from_slice(extra);
    Running::start_with_env(&args, dir, &[])
}

/// A normal request still gets its normal answer, and nothing panicked so far.
async fn assert_still_serving(proxy: &Running) {
    let reply = get(&format!("{}/v2/images/{SEED_IMAGE_ID}", proxy.uri)).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.json()["id"], SEED_IMAGE_ID);
    proxy.assert_no_panic();
}

/// Writes `raw` on a new connection (a write error is fine: the proxy may answer and close
/// before reading it all), then returns what came back until the proxy closed or `wait` passed.
async fn raw(addr: SocketAddr, raw: &[u8], wait: Duration) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(raw).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(wait, async {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n @ 1..) = stream.read(&mut buf).await {
            out.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    out
}

/// One HTTP/1 answer read off the wire.
#[derive(Debug)]
struct Wire {
    status: u16,
    body: Vec<u8>,
}

/// Splits raw bytes into the HTTP/1 answers they hold (bodies framed by `Content-Length`).
fn parse_wire(mut bytes: &[u8]) -> Vec<Wire> {
    let mut out = Vec::new();
    while let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not a status line: {status_line:?}"));
        let length = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
            .map_or(bytes.len() - end - 4, |(_, v)| v.trim().parse().unwrap());
        let body_end = (end + 4 + length).min(bytes.len());
        out.push(Wire {
            status,
            body: bytes[end + 4..body_end].to_vec(),
        });
        bytes = &bytes[body_end..];
    }
    out
}

/// Deterministic pseudo-random numbers (xorshift64*), so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// Reads a request head (up to the blank line) and returns it.
async fn read_head(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> Vec<u8> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    head
}

/// How a raw upstream treats one connection (after reading the request head).
#[derive(Clone, Copy, Debug)]
enum Misbehaviour {
    /// Sends its answer one byte every 200 ms.
    Drip,
    /// An answer whose chunked body never ends.
    Endless,
    /// An answer announcing a terabyte, then streaming it.
    Huge,
    /// Bytes that are not HTTP, then closes.
    Garbage,
    /// Resets the connection (RST) without answering.
    Reset,
    /// Closes without answering.
    Close,
}

async fn misbehave(mut stream: TcpStream, how: Misbehaviour) {
    read_head(&mut stream).await;
    let chunk = vec![b'x'; 16 * 1024];
    match how {
        Misbehaviour::Drip => {
            let answer =
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
            for byte in answer {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if stream.write_all(&[*byte]).await.is_err() {
                    return;
                }
            }
        }
        Misbehaviour::Endless => {
            let head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
            if stream.write_all(head).await.is_err() {
                return;
            }
            let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
            framed.extend_from_slice(&chunk);
            framed.extend_from_slice(b"\r\n");
            while stream.write_all(&framed).await.is_ok() {}
        }
        Misbehaviour::Huge => {
            let head = b"HTTP/1.1 200 OK\r\ncontent-length: 1000000000000\r\n\r\n";
            if stream.write_all(head).await.is_err() {
                return;
            }
            while stream.write_all(&chunk).await.is_ok() {}
        }
        Misbehaviour::Garbage => {
            let _ = stream
                .write_all(b"SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02\xff garbage \r\n\r\n")
                .await;
        }
        Misbehaviour::Reset => {
            let _ = stream.set_zero_linger();
        }
        Misbehaviour::Close => {}
    }
}

/// A raw-TCP upstream on loopback: connection `n` misbehaves as `plan(n)`. Returns its URL and
/// the count of connections it accepted.
async fn raw_upstream(
    plan: impl Fn(usize) -> Misbehaviour + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let n = count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(misbehave(stream, plan(n)));
        }
    });
    (url, accepted)
}

/// A TLS upstream on loopback presenting `cert_pem`; it answers `{}` to whoever gets through.
async fn tls_upstream(cert_pem: &str, key_pem: &str) -> String {
    let acceptor = tls_acceptor(cert_pem, key_pem, &[]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(stream).await {
                    read_head(&mut tls).await;
                    let _ = tls
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                        .await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    url
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_acceptor(cert_pem: &str, key_pem: &str, alpn: &[&[u8]]) -> TlsAcceptor {
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsAcceptor::from(Arc::new(config))
}

/// A CA made for the test, and the certificates it signs.
struct Ca {
    pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl Ca {
    fn new() -> Ca {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
            .distinguished_name
            .push(DnType::CommonName, "ims-vcr hardening test CA");
        let pem = params.self_signed(&key).unwrap().pem();
        Ca {
            pem,
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A server certificate for `names` (PEM certificate, PEM key); `expired` dates it 2020.
    fn leaf(&self, names: &[&str], expired: bool) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = leaf_params(names);
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 12, 31);
        }
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn leaf_params(names: &[&str]) -> rcgen::CertificateParams {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(names).unwrap();
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params
}

/// A self-signed server certificate for `names` (PEM certificate, PEM key).
fn self_signed(names: &[&str]) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = leaf_params(names).self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// A TLS connection to `addr` trusting `ca_pem`, offering ALPN `alpn`.
async fn tls_connect(
    addr: SocketAddr,
    ca_pem: &str,
    alpn: &[u8],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(addr.ip().to_string()).unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap()
}

/// GET `path` over TLS (trusting `ca_pem`) with ALPN `alpn`; returns the HTTP version, status and body.
async fn https_get(
    addr: SocketAddr,
    ca_pem: &str,
    alpn: &[u8],
    path: &str,
) -> (hyper::Version, u16, Vec<u8>) {
    let io = TokioIo::new(tls_connect(addr, ca_pem, alpn).await);
    let response = if alpn == b"h2" {
        let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .unwrap();
        tokio::spawn(conn);
        let request = hyper::Request::get(format!("https://{addr}{path}"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        send.send_request(request).await.unwrap()
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        let request = hyper::Request::get(path)
            .header(hyper::header::HOST, addr.to_string())
            .body(Empty::<Bytes>::new())
            .unwrap();
        send.send_request(request).await.unwrap()
    };
    let version = response.version();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (version, status, body.to_vec())
}

// ---------------------------------------------------------------------------------------------
// 1. Crash safety

/// Requests sent again and again by every client (the rest are unique per request).
const REPEATED: [&str; 5] = [
    SEED_IMAGE_ID,
    UNKNOWN_IMAGE_ID,
    POLLING_IMAGE_ID,
    "00000000-0000-4000-8000-000000000500",
    "shared-image-for-the-crash-test",
];

/// One client of the crash test: sends until `stop`, and notes every request whose whole answer
/// arrived marked `recorded`.
async fn crash_client(
    uri: String,
    iteration: usize,
    client: usize,
    answered: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut n = 0usize;
    while !stop.load(Ordering::SeqCst) {
        let id = if n.is_multiple_of(3) {
            format!("unique-{iteration}-{client}-{n}")
        } else {
            REPEATED[(client + n) % REPEATED.len()].to_owned()
        };
        n += 1;
        let path = format!("/v2/images/{id}");
        let Ok(response) = http.get(format!("{uri}{path}")).send().await else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let recorded = response
            .headers()
            .get("x-ims-vcr")
            .is_some_and(|v| v == "recorded");
        if response.bytes().await.is_ok() && recorded {
            answered.lock().unwrap().push(path);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answered_request_survives_kill_9_at_random_moments_under_load_and_the_store_reopens_whole()
 {
    const ITERATIONS: usize = 8;
    const CLIENTS: usize = 16;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let fake = FakeIms::start(FakeOptions {
        plain_http: true,
        ..Default::default()
    })
    .await;
    let mut rng = Rng(0x1ce_c0ffee);
    // Path → answers the store must hold at least. A new session replaces a request's answers
    // with its own (possibly unanswered) first one, so older requests only promise one.
    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    let mut total_answered = 0;
    for iteration in 0..ITERATIONS {
        let mut proxy = Running::start_with_env(
            &[
                "record",
                "--upstream",
                &fake.base_url(),
                "--listen",
                "0",
                "--store",
                "store",
            ],
            dir.path(),
            &[],
        );
        let answered = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let task = crash_client(
                    proxy.uri.clone(),
                    iteration,
                    c,
                    answered.clone(),
                    stop.clone(),
                );
                tokio::spawn(task)
            })
            .collect();
        let delay = Duration::from_millis(rng.below(900));
        tokio::time::sleep(delay).await;
        proxy.kill_9();
        stop.store(true, Ordering::SeqCst);
        for client in clients {
            client.await.unwrap();
        }
        proxy.assert_no_panic();

        let answered = std::mem::take(&mut *answered.lock().unwrap());
        total_answered += answered.len();
        for minimum in expected.values_mut() {
            *minimum = 1;
        }
        let mut this_session: BTreeMap<String, usize> = BTreeMap::new();
        for path in answered {
            *this_session.entry(path).or_default() += 1;
        }
        expected.extend(this_session);

        let store_dir = store.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let store = ims_vcr::storage::store::Store::open(&store_dir)?;
            let rules = store.rules()?;
            store.load(&rules)
        })
        .await
        .unwrap()
        .unwrap_or_else(|e| {
            panic!("iteration {iteration} (killed after {delay:?}): the store does not load: {e}")
        });
        let held: BTreeMap<String, usize> = loaded
            .iter()
            .map(|r| (r.answers[0].request.path.clone(), r.answers.len()))
            .collect();
        for (path, minimum) in &expected {
            let got = held.get(path).copied().unwrap_or(0);
            assert!(
                got >= *minimum,
                "iteration {iteration} (killed after {delay:?}): {path} was answered {minimum} \
                 time(s) but the store holds {got} answer(s)"
            );
        }
        for recording in &loaded {
            for answer in &recording.answers {
                assert!(
                    matches!(answer.response.status, 200 | 404 | 500),
                    "{answer:?}"
                );
            }
        }
    }
    assert!(
        total_answered > 100,
        "the load was too light to prove anything: {total_answered} answers"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Store ownership and damage

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subcommand_on_a_store_another_process_holds_gets_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions {
        plain_http: true,
        ..Default::default()
    })
    .await;
    let upstream = fake.base_url();
    let holder = hostile_record(dir.path(), &upstream, &[]);
    shipped_cassettes(dir.path());
    let cases: [&[&str]; 5] = [
        &[
            "record",
            "--upstream",
            &upstream,
            "--listen",
            "0",
            "--store",
            "store",
        ],
        &[
            "auto",
            "--upstream",
            &upstream,
            "--listen",
            "0",
            "--store",
            "store",
        ],
        &["replay", "--store", "store", "--listen", "0"],
        &["export", "--store", "store", "--out", "out"],
        &["import", "--store", "store", "cassettes"],
    ];
    for args in cases {
        let (code, stderr) = run(args, dir.path());
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(
            stderr.contains("store store is in use by another process")
                && stderr.contains("stop that process first"),
            "{args:?}: {stderr}"
        );
    }
    assert!(!dir.path().join("out").exists(), "export wrote nothing");
    let reply = get(&format!("{}/v2/images/{SEED_IMAGE_ID}", holder.uri)).await;
    assert_eq!(reply.header("x-ims-vcr"), Some("recorded"));
    holder.assert_no_panic();
}

/// Records 20 answers in-process into `store`.
async fn record_twenty(store: &Path) {
    let fake = FakeIms::start(FakeOptions {
        plain_http: true,
        ..Default::default()
    })
    .await;
    let proxy = ProxyServer::builder()
        .record(UpstreamConfig::new(fake.base_url()))
        .store(store)
        .start()
        .await
        .unwrap();
    for n in 0..20 {
        get(&image_url(&proxy, &format!("image-{n}"))).await;
    }
    proxy.shutdown().await.unwrap();
    fake.stop().await;
}

fn copy_dir(from: &Path, to: &Path) {
    for (name, bytes) in all_files(from) {
        let path = to.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

fn garble(path: &Path, at: usize, len: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let end = (at + len).min(bytes.len());
    for (i, b) in bytes[at..end].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37) ^ 0xa5;
    }
    std::fs::write(path, bytes).unwrap();
}

/// Damages the store in a folder, given the intact `db` file's length.
type Damage = fn(&Path, usize);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_with_truncated_garbled_or_missing_files_is_refused_by_name_and_nothing_else_changes()
 {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    record_twenty(&good).await;
    let db_len = std::fs::metadata(good.join("db")).unwrap().len() as usize;
    let damages: [(&str, Damage); 5] = [
        ("db truncated to nothing", |s, _| {
            std::fs::File::create(s.join("db")).map(drop).unwrap()
        }),
        ("db cut in half", |s, len| {
            let file = std::fs::OpenOptions::new().write(true).open(s.join("db"));
            file.unwrap().set_len(len as u64 / 2).unwrap();
        }),
        ("db garbled in the middle", |s, len| {
            garble(&s.join("db"), len / 2, 512)
        }),
        ("db deleted", |s, _| {
            std::fs::remove_file(s.join("db")).unwrap()
        }),
        ("conf garbled", |s, _| garble(&s.join("conf"), 4, 16)),
    ];
    let out = dir.path().join("out");
    shipped_cassettes(dir.path());
    copy_dir(&dir.path().join("cassettes"), &out);
    std::fs::write(out.join("notes.txt"), "not a cassette").unwrap();
    let out_before = all_files(&out);
    for (damage, apply) in damages {
        let store = dir.path().join("store");
        let _ = std::fs::remove_dir_all(&store);
        copy_dir(&good, &store);
        apply(&store, db_len);

        for args in [
            &["replay", "--store", "store", "--listen", "0"][..],
            &["export", "--store", "store", "--out", "out"],
            &[
                "record",
                "--upstream",
                "http://127.0.0.1:9",
                "--listen",
                "0",
                "--store",
                "store",
            ],
        ] {
            let (code, stderr) = run(args, dir.path());
            assert_eq!(code, 1, "{damage}: {args:?}: {stderr}");
            assert!(
                stderr.contains("error: store store") && stderr.contains("damaged"),
                "{damage}: {args:?}: {stderr}"
            );
        }
        assert_eq!(
            all_files(&out),
            out_before,
            "{damage}: export changed --out"
        );
    }
    // The undamaged original still opens whole.
    let (code, stderr) = run(&["export", "--store", "good", "--out", "fresh"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("exported 20 requests"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_entry_that_does_not_decode_is_named_and_export_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    record_twenty(&store).await;
    let entry = {
        let db = sled::open(&store).unwrap();
        let answers = db.open_tree("answers").unwrap();
        let (key, _) = answers.first().unwrap().unwrap();
        answers.insert(&key, &b"{\"request\": {\"meth"[..]).unwrap();
        db.flush().unwrap();
        key.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    // That write went around ims-vcr, so the replay pack the session left still describes the
    // store's last write (and would be served); without it, replay reads the entries and must
    // name the bad one.
    std::fs::remove_file(store.join(ims_vcr::storage::snapshot::PACK_FILE)).unwrap();
    let out = shipped_cassettes(dir.path());
    let before = all_files(&out);
    for args in [
        &["replay", "--store", "store", "--listen", "0"][..],
        &["export", "--store", "store", "--out", "cassettes"],
    ] {
        let (code, stderr) = run(args, dir.path());
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("store store: entry {entry} is corrupt")),
            "{args:?}: {stderr}"
        );
    }
    assert_eq!(all_files(&out), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_garbled_or_empty_cassette_is_named_and_neither_folder_nor_store_changes() {
    let dir = tempfile::tempdir().unwrap();
    let cassettes = shipped_cassettes(dir.path());
    let (code, stderr) = run(&["import", "--store", "store", "cassettes"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    let store_before = all_files(&dir.path().join("store"));
    let victim = "get_v2_schemas_image_6846de132b94.json";
    let original = std::fs::read(cassettes.join(victim)).unwrap();
    let damages: [(&str, Vec<u8>); 3] = [
        ("truncated", original[..original.len() / 2].to_vec()),
        ("garbled", {
            let mut bytes = original.clone();
            bytes[40..60].copy_from_slice(&[0xff; 20]);
            bytes
        }),
        ("empty", Vec::new()),
    ];
    for (damage, bytes) in damages {
        std::fs::write(cassettes.join(victim), &bytes).unwrap();
        let folder_before = all_files(&cassettes);
        for args in [
            &["replay", "--cassettes", "cassettes", "--listen", "0"][..],
            &["import", "--store", "store", "cassettes"],
        ] {
            let (code, stderr) = run(args, dir.path());
            assert_eq!(code, 1, "{damage}: {args:?}: {stderr}");
            assert!(
                stderr.contains(&format!("error: cassette cassettes/{victim}")),
                "{damage}: {args:?}: {stderr}"
            );
        }
        assert_eq!(all_files(&cassettes), folder_before, "{damage}");
        assert_eq!(
            all_files(&dir.path().join("store")),
            store_before,
            "{damage}: the store changed"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Hostile clients

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_heads_get_431_and_the_proxy_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = hostile_replay(dir.path());
    let one_huge = format!(
        "GET /v2/images/{SEED_IMAGE_ID} HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    let many: String = (0..500).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = format!("GET /v2/images/{SEED_IMAGE_ID} HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    let just_over = format!(
        "GET /v2/images/{SEED_IMAGE_ID} HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let huge_line = format!(
        "GET /v2/images/{} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    for request in [one_huge, just_over, many, huge_line] {
        let answer = raw(proxy.addr(), request.as_bytes(), Duration::from_secs(10)).await;
        let status = parse_wire(&answer).first().map(|a| a.status);
        assert_eq!(status, Some(431), "{}", String::from_utf8_lossy(&answer));
        assert_still_serving(&proxy).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_bodies_get_413_in_replay_and_record_and_are_never_forwarded() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions {
        plain_http: true,
        ..Default::default()
    })
    .await;
    let replay = hostile_replay(dir.path());
    let record = hostile_record(dir.path(), &fake.base_url(), &[]);
    let big = vec![b'{'; 4096];
    for proxy in [&replay, &record] {
        let reply = send("POST", &format!("{}/v2/images", proxy.uri), &[], &big).await;
        assert_eq!(
            reply.status,
            413,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        assert!(
            reply.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("--max-body")
        );
        // Chunked, so the proxy only learns the size while reading.
        let chunked = format!(
            "POST /v2/images HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n{0}\r\n800\r\n{0}\r\n0\r\n\r\n",
            "a".repeat(0x800)
        );
        let answer = raw(proxy.addr(), chunked.as_bytes(), Duration::from_secs(10)).await;
        assert_eq!(parse_wire(&answer)[0].status, 413);
        assert_still_serving(proxy).await;
    }
    assert!(
        fake.requests().iter().all(|r| r.method == "GET"),
        "no oversized body reached the upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_stall_before_finishing_a_request_are_disconnected_while_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = hostile_replay(dir.path());
    let stalls: [(&str, &[u8]); 7] = [
        ("half a request line", b"GET /v2/ima"),
        ("nothing at all", b""),
        ("part of the HTTP/2 preface", b"PRI * HTTP/2.0\r\n"),
        ("the HTTP/2 preface and no request", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        ("headers without the blank line", b"GET /v2/images/x HTTP/1.1\r\nHost: x\r\n"),
        (
            "a body shorter than announced",
            b"POST /v2/images HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"a\":",
        ),
        (
            "a chunked body that never ends",
            b"POST /v2/images HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n",
        ),
    ];
    for (stall, bytes) in stalls {
        let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
        stream.write_all(bytes).await.unwrap();
        let started = Instant::now();
        // Others are served while this client stalls.
        assert_still_serving(&proxy).await;
        let mut buf = [0u8; 1024];
        let mut got = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "{stall}: still connected after {:?}",
            started.elapsed()
        );
        if let Some(answer) = parse_wire(&got).first() {
            assert!(
                [400, 408].contains(&answer.status),
                "{stall}: {}",
                String::from_utf8_lossy(&got)
            );
        }
    }
    assert_still_serving(&proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_percent_encoding_and_non_utf8_paths_get_an_answer_or_a_clean_close_and_never_poison_the_store()
 {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions {
        plain_http: true,
        ..Default::default()
    })
    .await;
    let replay = hostile_replay(dir.path());
    let record = hostile_record(dir.path(), &fake.base_url(), &[]);
    let targets: [&[u8]; 9] = [
        b"/v2/images/%ZZ%zz%%%2",
        b"/v2/images/%00%0d%0a",
        b"/v2/images/\xff\xfe\x80",
        b"/v2/images/\xc3\xa9t\xc3\xa9",
        b"/v2/images/x?q=%ff%fe&%=%%&a=\xff",
        b"/v2/images/%2e%2e/%2e%2e/etc/passwd",
        b"/v2/images/x#fragment",
        b"*",
        b"http://evil.example/v2/images/x",
    ];
    for proxy in [&replay, &record] {
        for target in targets {
            let mut request = b"GET ".to_vec();
            request.extend_from_slice(target);
            request.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\nX-Note: caf\xe9\r\n");
            request.extend_from_slice(b"Connection: close\r\n\r\n");
            let answer = raw(proxy.addr(), &request, Duration::from_secs(10)).await;
            let answers = parse_wire(&answer);
            assert!(
                answers.len() <= 1,
                "{:?}: {}",
                String::from_utf8_lossy(target),
                String::from_utf8_lossy(&answer)
            );
            if let Some(answer) = answers.first() {
                assert!(
                    (200..600).contains(&answer.status),
                    "{:?}",
                    String::from_utf8_lossy(target)
                );
            }
            assert_still_serving(proxy).await;
        }
    }
    assert!(record.terminate().success());
    // What was recorded reloads, exports and imports.
    let (code, stderr) = run(&["export", "--store", "store", "--out", "out"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    let (code, stderr) = run(&["import", "--store", "again", "out"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    let replay_store = Running::start_with_env(
        &["replay", "--store", "store", "--listen", "0"],
        dir.path(),
        &[],
    );
    assert_eq!(
        get(&format!("{}/v2/images/{SEED_IMAGE_ID}", replay_store.uri))
            .await
            .status,
        200
    );
    replay_store.assert_no_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absurd_query_string_is_answered_and_recorded_without_trouble() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions {
        plain_http: true,
        ..Default::default()
    })
    .await;
    let replay = hostile_replay(dir.path());
    let record = hostile_record(dir.path(), &fake.base_url(), &[]);
    // 30,000 parameters (and 2,000 empty ones) in 62 KB: under the 64 KiB head limit.
    let query = format!("{}{}", "a&".repeat(30_000), "&".repeat(2_000));
    let url = |proxy: &Running| format!("{}/v2/images?{query}", proxy.uri);
    let miss = get(&url(&replay)).await;
    assert_eq!(miss.status, 599);
    assert_still_serving(&replay).await;
    let recorded = get(&url(&record)).await;
    assert_eq!(recorded.header("x-ims-vcr"), Some("recorded"));
    assert_still_serving(&record).await;
    assert!(record.terminate().success());
    let replay_store = Running::start_with_env(
        &["replay", "--store", "store", "--listen", "0"],
        dir.path(),
        &[],
    );
    let hit = get(&url(&replay_store)).await;
    assert_eq!(hit.header("x-ims-vcr"), Some("hit"));
    replay_store.assert_no_panic();
    let (code, stderr) = run(&["export", "--store", "store", "--out", "out"], dir.path());
    assert_eq!(code, 0, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_prior_knowledge_clients_are_served_in_replay_and_record() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions {
        plain_http: true,
        ..Default::default()
    })
    .await;
    let replay = hostile_replay(dir.path());
    let record = hostile_record(dir.path(), &fake.base_url(), &[]);
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    for (proxy, outcome) in [(&replay, "hit"), (&record, "recorded")] {
        let response = h2
            .get(format!("{}/v2/images/{SEED_IMAGE_ID}", proxy.uri))
            .send()
            .await
            .unwrap();
        assert_eq!(response.version(), reqwest::Version::HTTP_2);
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-ims-vcr"], outcome);
        let body: serde_json::Value =
            serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(body["id"], SEED_IMAGE_ID);
        assert_still_serving(proxy).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_1_0_clients_without_host_are_served_and_the_connection_closes() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions {
        plain_http: true,
        ..Default::default()
    })
    .await;
    let replay = hostile_replay(dir.path());
    let record = hostile_record(dir.path(), &fake.base_url(), &[]);
    for proxy in [&replay, &record] {
        let request = format!("GET /v2/images/{SEED_IMAGE_ID} HTTP/1.0\r\n\r\n");
        // The proxy closes after answering an HTTP/1.0 request; a 10 s wait would mean it did not.
        let started = Instant::now();
        let answer = raw(proxy.addr(), request.as_bytes(), Duration::from_secs(10)).await;
        assert!(started.elapsed() < Duration::from_secs(9), "not closed");
        let answers = parse_wire(&answer);
        assert_eq!(answers.len(), 1, "{}", String::from_utf8_lossy(&answer));
        assert_eq!(answers[0].status, 200);
        let body: serde_json::Value = serde_json::from_slice(&answers[0].body).unwrap();
        assert_eq!(body["id"], SEED_IMAGE_ID);
        assert_still_serving(proxy).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_get_their_answers_in_order_on_one_connection() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions {
        plain_http: true,
        ..Default::default()
    })
    .await;
    let replay = hostile_replay(dir.path());
    let record = hostile_record(dir.path(), &fake.base_url(), &[]);
    let pipelined = format!(
        "GET /v2/images/{SEED_IMAGE_ID} HTTP/1.1\r\nHost: x\r\n\r\n\
         GET /v2/images/{UNKNOWN_IMAGE_ID} HTTP/1.1\r\nHost: x\r\n\r\n\
         GET /v2/schemas/image HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    for proxy in [&replay, &record] {
        let answer = raw(proxy.addr(), pipelined.as_bytes(), Duration::from_secs(10)).await;
        let answers = parse_wire(&answer);
        let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
        assert_eq!(
            statuses,
            [200, 404, 200],
            "{}",
            String::from_utf8_lossy(&answer)
        );
        let json =
            |i: usize| serde_json::from_slice::<serde_json::Value>(&answers[i].body).unwrap();
        assert_eq!(json(0)["id"], SEED_IMAGE_ID);
        assert!(json(1).to_string().contains(UNKNOWN_IMAGE_ID));
        assert_eq!(json(2)["name"], "image");
        assert_still_serving(proxy).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_vanish_mid_exchange_leave_the_proxy_serving_and_the_store_whole() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions {
        plain_http: true,
        delay: Some(Duration::from_millis(20)),
        ..Default::default()
    })
    .await;
    let replay = hostile_replay(dir.path());
    let record = hostile_record(dir.path(), &fake.base_url(), &[]);
    for proxy in [&replay, &record] {
        let mut vanishing = Vec::new();
        for n in 0..100 {
            let addr = proxy.addr();
            vanishing.push(tokio::spawn(async move {
                let mut stream = TcpStream::connect(addr).await.unwrap();
                let path = match n % 3 {
                    0 => format!("/v2/images/{SEED_IMAGE_ID}"),
                    1 => format!("/v2/images/vanished-{n}"),
                    _ => "/big".to_owned(),
                };
                let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
                let _ = stream.write_all(request.as_bytes()).await;
                if n % 2 == 0 {
                    // Read the first bytes of the answer, then go.
                    let mut buf = [0u8; 64];
                    let _ =
                        tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
                }
                if n % 4 < 2 {
                    let _ = stream.set_zero_linger();
                }
            }));
        }
        for task in vanishing {
            task.await.unwrap();
        }
        assert_still_serving(proxy).await;
    }
    assert!(
        record.terminate().success(),
        "SIGTERM still drains and flushes"
    );
    let (code, stderr) = run(&["export", "--store", "store", "--out", "out"], dir.path());
    assert_eq!(code, 0, "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// 4. Hostile upstreams

/// A record proxy in front of `config`, storing into `store`.
async fn recording_through(config: UpstreamConfig, store: &Path) -> ProxyServer {
    ProxyServer::builder()
        .record(config)
        .store(store)
        .start()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_upstreams_get_a_502_naming_the_failure_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let (wrong_name, wrong_name_key) = ca.leaf(&["other.example"], false);
    let (expired, expired_key) = ca.leaf(&["127.0.0.1", "localhost"], true);
    let (own, own_key) = self_signed(&["127.0.0.1", "localhost"]);
    let raw_case = |how| async move { raw_upstream(move |_| how).await.0 };
    let cases = [
        (
            "slow drip",
            raw_case(Misbehaviour::Drip).await,
            false,
            "timeout",
        ),
        (
            "endless chunked body",
            raw_case(Misbehaviour::Endless).await,
            false,
            "too-large",
        ),
        (
            "a terabyte announced",
            raw_case(Misbehaviour::Huge).await,
            false,
            "too-large",
        ),
        (
            "garbage instead of HTTP",
            raw_case(Misbehaviour::Garbage).await,
            false,
            "cut",
        ),
        (
            "connection reset",
            raw_case(Misbehaviour::Reset).await,
            false,
            "cut",
        ),
        (
            "closed without answer",
            raw_case(Misbehaviour::Close).await,
            false,
            "cut",
        ),
        (
            "TLS name mismatch",
            tls_upstream(&wrong_name, &wrong_name_key).await,
            true,
            "tls",
        ),
        (
            "expired certificate",
            tls_upstream(&expired, &expired_key).await,
            true,
            "tls",
        ),
        (
            "self-signed certificate",
            tls_upstream(&own, &own_key).await,
            false,
            "tls",
        ),
    ];
    let tasks = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    for (case, url, trust_ca, kind) in cases {
        let store = dir.path().join(case.replace(' ', "-"));
        let mut config = UpstreamConfig::new(&url);
        config.timeout = Duration::from_secs(1);
        config.max_body = 64 * 1024;
        if trust_ca {
            config.ca_file = Some(ca_file.clone());
        }
        let proxy = recording_through(config, &store).await;
        let baseline = tasks();
        for _ in 0..3 {
            let reply = get(&format!("{}/v2/images/{SEED_IMAGE_ID}", proxy.uri())).await;
            assert_eq!(reply.status, 502, "{case}");
            assert_eq!(reply.header("x-ims-vcr"), Some("upstream-error"), "{case}");
            let body = reply.json();
            assert_eq!(body["ims_vcr"]["kind"], kind, "{case}: {body}");
            assert!(
                body["error"]["message"].as_str().unwrap().contains(&url),
                "{case}: names the upstream: {body}"
            );
        }
        // The failed exchanges left no task behind (connection tasks, pooled connections).
        let deadline = Instant::now() + Duration::from_secs(10);
        while tasks() > baseline && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            tasks() <= baseline,
            "{case}: {} tasks, {baseline} before",
            tasks()
        );
        proxy.shutdown().await.unwrap();
        assert_eq!(stored_answers(&store), 0, "{case}: nothing may be stored");
    }
}

/// Sends `n` requests, 25 at a time, each expected to get a 502; returns the kinds seen.
async fn failing_requests(uri: &str, n: usize) -> BTreeMap<String, usize> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut kinds = BTreeMap::new();
    for batch in 0..n.div_ceil(25) {
        let replies: Vec<_> = (0..25.min(n - batch * 25))
            .map(|i| {
                let request = http.get(format!("{uri}/v2/images/fail-{batch}-{i}")).send();
                tokio::spawn(async move {
                    let response = request.await.unwrap();
                    assert_eq!(response.status(), 502);
                    let body: serde_json::Value =
                        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
                    body["ims_vcr"]["kind"].as_str().unwrap().to_owned()
                })
            })
            .collect();
        for reply in replies {
            *kinds.entry(reply.await.unwrap()).or_default() += 1;
        }
    }
    kinds
}

/// Waits (up to 10 s) for the proxy's descriptors to fall back to `baseline` (+ a little slack for
/// sled and the runtime), and returns the count.
async fn settled_fds(proxy: &Running, baseline: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let fds = proxy.open_fds();
        if fds <= baseline.saturating_add(3) || Instant::now() > deadline {
            return fds;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_upstream_failures_leave_no_connection_open_in_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let plan = [
        Misbehaviour::Garbage,
        Misbehaviour::Reset,
        Misbehaviour::Close,
        Misbehaviour::Garbage,
        Misbehaviour::Reset,
        Misbehaviour::Close,
        Misbehaviour::Drip,
    ];
    let (chaos, accepted) = raw_upstream(move |n| plan[n % plan.len()]).await;
    let (own, own_key) = self_signed(&["127.0.0.1"]);
    let untrusted = tls_upstream(&own, &own_key).await;
    for (upstream, dir) in [
        (&chaos, dir.path().join("chaos")),
        (&untrusted, dir.path().join("tls")),
    ] {
        std::fs::create_dir_all(&dir).unwrap();
        let proxy = hostile_record(&dir, upstream, &["--upstream-timeout", "1"]);
        failing_requests(&proxy.uri, 10).await;
        let baseline = settled_fds(&proxy, usize::MAX).await;
        let kinds = failing_requests(&proxy.uri, 100).await;
        assert_eq!(kinds.values().sum::<usize>(), 100);
        let after = settled_fds(&proxy, baseline).await;
        assert!(
            after <= baseline + 3,
            "{upstream}: {after} open descriptors after 100 failures, {baseline} before ({kinds:?})"
        );
        proxy.assert_no_panic();
        assert!(proxy.terminate().success());
        assert_eq!(stored_answers(&dir.join("store")), 0);
    }
    assert!(accepted.load(Ordering::SeqCst) >= 110);
}

// ---------------------------------------------------------------------------------------------
// 5. Credentials

const PROXY_AK: &str = "PROXYAKHARDENING0123";
const PROXY_SK: &str = "proxy-sk-hardening-5b4a39281706";
const PROXY_STS: &str = "proxy-security-token-hardening-77aa";
const CLIENT_TOKEN: &str = "client-x-auth-token-hardening-3c2b1a";
const CLIENT_AK: &str = "CLIENTAKHARDENING987";
const CLIENT_SIGNATURE: &str = "5f1d0c2b3a49586776859403a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3";
const CLIENT_COOKIE: &str = "cookie-secret-hardening-6e5d4c";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_logs_or_answers_on_success_and_failure_paths() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions {
        plain_http: true,
        ..Default::default()
    })
    .await;
    let env = [
        ("HUAWEICLOUD_SDK_AK", PROXY_AK),
        ("HUAWEICLOUD_SDK_SK", PROXY_SK),
        ("HUAWEICLOUD_SDK_SECURITY_TOKEN", PROXY_STS),
        ("RUST_LOG", "debug"),
    ];
    let authorization = format!(
        "SDK-HMAC-SHA256 Access={CLIENT_AK}, SignedHeaders=host;x-sdk-date, Signature={CLIENT_SIGNATURE}"
    );
    let cookie = format!("session={CLIENT_COOKIE}");
    let headers = [
        ("x-auth-token", CLIENT_TOKEN),
        ("authorization", authorization.as_str()),
        ("cookie", cookie.as_str()),
        ("x-sdk-date", "20261127T000000Z"),
    ];
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let down = format!("http://127.0.0.1:{closed_port}");
    let (drip, _) = raw_upstream(|_| Misbehaviour::Drip).await;
    let mut seen = Vec::new();
    let mut logs = Vec::new();

    let upstreams = [
        (fake.base_url(), "recorded"),
        (down, "connect"),
        (drip, "timeout"),
    ];
    for (n, (upstream, outcome)) in upstreams.iter().enumerate() {
        let dir = dir.path().join(format!("run-{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        let args = [
            "record",
            "--upstream",
            upstream,
            "--upstream-timeout",
            "1",
            "--listen",
            "0",
            "--store",
            "store",
        ];
        let proxy = Running::start_with_env(&args, &dir, &env);
        for id in [SEED_IMAGE_ID, UNKNOWN_IMAGE_ID] {
            let reply = send(
                "GET",
                &format!("{}/v2/images/{id}", proxy.uri),
                &headers,
                b"",
            )
            .await;
            let got = reply.header("x-ims-vcr").unwrap().to_owned();
            let kind = reply.json()["ims_vcr"]["kind"].as_str().map(str::to_owned);
            assert!(
                got == *outcome || kind.as_deref() == Some(outcome),
                "{reply:?}"
            );
            seen.push(reply);
        }
        let log = proxy.log();
        assert!(proxy.terminate().success());
        logs.push(log);
        if n == 0 {
            // Replay the recording: a hit and a miss, still sending credentials.
            let replay = Running::start_with_env(
                &["replay", "--store", "store", "--listen", "0"],
                &dir,
                &env,
            );
            for id in [SEED_IMAGE_ID, "not-recorded"] {
                let url = format!("{}/v2/images/{id}", replay.uri);
                seen.push(send("GET", &url, &headers, b"").await);
            }
            assert_eq!(seen.last().unwrap().status, 599);
            logs.push(replay.log());
        }
    }
    assert!(fake.requests().iter().any(|r| {
        r.headers
            .iter()
            .any(|(n, v)| n == "authorization" && v.contains(PROXY_AK))
    }));
    for secret in [
        PROXY_AK,
        PROXY_SK,
        PROXY_STS,
        CLIENT_TOKEN,
        CLIENT_AK,
        CLIENT_SIGNATURE,
        CLIENT_COOKIE,
    ] {
        for reply in &seen {
            let text = format!(
                "{:?} {}",
                reply.headers,
                String::from_utf8_lossy(&reply.body)
            );
            assert!(!text.contains(secret), "{secret} in an answer: {text}");
        }
        for log in &logs {
            assert!(!log.contains(secret), "{secret} in a log:\n{log}");
            assert!(!log.contains("panicked"), "{log}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 6. Exposure

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

// ---------------------------------------------------------------------------------------------
// 7. The TLS listener

/// Writes a CA-signed certificate for 127.0.0.1 and its key into `dir`; returns the CA PEM.
fn write_listener_cert(dir: &Path) -> String {
    let ca = Ca::new();
    let (cert, key) = ca.leaf(&["127.0.0.1", "localhost"], false);
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
    std::fs::write(dir.join("key.pem"), key).unwrap();
    ca.pem
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tls_listener_serves_http1_and_h2_by_alpn_and_shrugs_off_plain_and_silent_clients() {
    let dir = tempfile::tempdir().unwrap();
    let ca = write_listener_cert(dir.path());
    shipped_cassettes(dir.path());
    let proxy = Running::start_with_env(
        &[
            "replay",
            "--listen",
            "0",
            "--tls-cert",
            "cert.pem",
            "--tls-key",
            "key.pem",
            "--header-read-timeout",
            "1",
        ],
        dir.path(),
        &[],
    );
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
    let fake = FakeIms::start(FakeOptions {
        plain_http: true,
        ..Default::default()
    })
    .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_clients_are_cut_when_idle_or_dripping_a_head_never_between_steady_requests() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = hostile_replay(dir.path()); // --header-read-timeout 1
    let request = format!("GET /v2/images/{SEED_IMAGE_ID} HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    // Ten requests 300 ms apart on one connection: 3 s in all, three timeouts' worth.
    let mut buf = vec![0u8; 64 * 1024];
    for i in 0..10 {
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut got = Vec::new();
        while parse_wire(&got).is_empty() {
            let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("request {i}: no answer"))
                .unwrap();
            assert!(n > 0, "request {i}: the connection was closed");
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(parse_wire(&got)[0].status, 200, "request {i}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Then idle: closed once the timeout passes.
    let idle = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await;
    assert!(
        matches!(idle, Ok(Ok(0)) | Ok(Err(_))),
        "an idle connection stayed open"
    );

    // A head sent one byte every 250 ms never completes within the timeout.
    let mut drip = TcpStream::connect(proxy.addr()).await.unwrap();
    let started = Instant::now();
    let mut cut = false;
    for byte in request.as_bytes() {
        if drip.write_all(&[*byte]).await.is_err() {
            cut = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let answer = tokio::time::timeout(Duration::from_secs(10), drip.read(&mut buf)).await;
    cut |= matches!(answer, Ok(Ok(0)) | Ok(Err(_)));
    assert!(
        cut,
        "a dripped head was served after {:?}",
        started.elapsed()
    );
    assert_still_serving(&proxy).await;
}
