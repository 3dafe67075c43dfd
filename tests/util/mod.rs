//! Test harness: proxies started in-process against the fake IMS upstream, an HTTP client that
//! reports status, ordered headers and raw body bytes, and byte-scanning helpers. Submodules:
//! `fake_ims` (the fake upstream), `fake_identity` (a fake Keystone/IAM), `process` (the binary as a child process), `tls` (the one
//! test CA and HTTPS helpers), `raw` (raw sockets, wire parsing, misbehaving upstreams),
//! `fixtures` (recordings built by hand), `oracle` (the property checks the fuzz targets share),
//! `gateway` (the AK/SK signature-verifying gateway the fake IMS can run) and `python` (the suite's
//! Python venv).

#![allow(dead_code)] // Not every test module uses every helper.

pub mod fake_identity;
pub mod fake_ims;
pub mod fixtures;
pub mod gateway;
pub mod oracle;
pub mod process;
pub mod python;
pub mod raw;
pub mod tls;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use fake_ims::*;
use ims_vcr::{ProxyServer, UpstreamConfig};
pub use process::*;
pub use raw::*;
pub use tls::*;

/// What a client saw.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as (lossy) text, for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Sends one request with reqwest (no gzip support compiled in, so bodies are raw).
pub async fn send(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut request = client
        .request(method.parse().unwrap(), url)
        .body(body.to_vec());
    for (n, v) in headers {
        request = request.header(*n, *v);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = response.bytes().await.unwrap().to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

pub async fn get(url: &str) -> Reply {
    send("GET", url, &[], b"").await
}

/// Upstream config for a fake, trusting its test CA (written into `dir`).
pub fn upstream_for(fake: &FakeIms, dir: &Path) -> UpstreamConfig {
    let mut config = UpstreamConfig::new(fake.base_url());
    if !fake.ca_pem().is_empty() {
        config.ca_file = Some(fake.write_ca_pem(dir));
    }
    config.timeout = Duration::from_secs(5);
    config
}

/// A record-mode proxy in front of `fake`, storing into `store`.
pub async fn recorder(fake: &FakeIms, store: &Path) -> ProxyServer {
    let dir = store.parent().unwrap();
    ProxyServer::builder()
        .record(upstream_for(fake, dir))
        .store(store)
        .start()
        .await
        .unwrap()
}

/// A record-mode proxy in front of `config`, storing into `store`.
pub async fn recording_through(config: UpstreamConfig, store: &Path) -> ProxyServer {
    ProxyServer::builder()
        .record(config)
        .store(store)
        .start()
        .await
        .unwrap()
}

/// An auto-mode proxy in front of `config`, storing into `store`.
pub async fn auto_through(config: UpstreamConfig, store: &Path) -> ProxyServer {
    ProxyServer::builder()
        .auto(config)
        .store(store)
        .start()
        .await
        .unwrap()
}

/// The arrange step most record tests share: a temp folder, a fake IMS started with `opts`, and
/// a [`recorder`] in front of it storing into `dir/store`; returns `(dir, store, fake, proxy)`.
/// Bind every part for as long as the test runs (`_dir`, `_fake`, not `_`): a dropped `TempDir`
/// deletes the folder and a dropped fake stops serving. They drop in reverse, proxy first.
pub async fn fake_and_recorder(
    opts: FakeOptions,
) -> (tempfile::TempDir, PathBuf, FakeIms, ProxyServer) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let fake = FakeIms::start(opts).await;
    let proxy = recorder(&fake, &store).await;
    (dir, store, fake, proxy)
}

/// A replay proxy over a store.
pub async fn replayer(store: &Path) -> ProxyServer {
    ProxyServer::builder()
        .replay()
        .store(store)
        .start()
        .await
        .unwrap()
}

/// A replay proxy over a cassette folder.
pub async fn cassette_replayer(dir: &Path) -> ProxyServer {
    ProxyServer::builder()
        .replay()
        .cassettes(dir)
        .start()
        .await
        .unwrap()
}

pub fn image_url(proxy: &ProxyServer, id: &str) -> String {
    format!("{}/v2/images/{id}", proxy.uri())
}

/// `bytes` as one gzip stream.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip into memory");
    encoder.finish().expect("finish gzip into memory")
}

/// `bytes` as one zlib stream (what `Content-Encoding: deflate` sends).
pub fn zlib(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("zlib into memory");
    encoder.finish().expect("finish zlib into memory")
}

/// Copies the shipped cassettes (the repository's `cassettes/`) into `dir/cassettes`.
pub fn shipped_cassettes(dir: &Path) -> PathBuf {
    let to = dir.join("cassettes");
    std::fs::create_dir_all(&to).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("cassettes");
    for (name, bytes) in all_files(&repo) {
        std::fs::write(to.join(name), bytes).unwrap();
    }
    to
}

/// Every file under `dir` (recursively) whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    for (path, bytes) in all_files(dir) {
        if bytes.windows(needle.len()).any(|w| w == needle) {
            hits.push(path);
        }
    }
    hits
}

/// Every file under `dir` with its bytes, keyed by path relative to `dir`.
pub fn all_files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(
                    path.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&path).unwrap(),
                );
            }
        }
    }
    out
}

/// Number of stored answers in a (closed) store.
pub fn stored_answers(store: &Path) -> usize {
    ims_vcr::storage::store::Store::open(store).unwrap().len()
}

/// Stored answers in a (closed) store that are live answers: (answers, gaps), a gap being the
/// `599 IMS_VCR.NOT_RECORDED` stored in place of an answer the leak gate refused.
pub fn stored_answers_and_gaps(store: &Path) -> (usize, usize) {
    let store = ims_vcr::storage::store::Store::open(store).unwrap();
    let rules = store.rules().unwrap();
    let recordings = store.load(&rules).unwrap();
    let answers: Vec<_> = recordings.iter().flat_map(|r| &r.answers).collect();
    let gaps = answers
        .iter()
        .filter(|a| {
            let headers = &a.response.headers;
            headers.iter().any(|(n, _)| n == "x-ims-vcr-not-recorded")
        })
        .count();
    (answers.len() - gaps, gaps)
}

/// `ims-vcr export [--redact]` through the library: store → cassette folder.
pub fn export_store(
    store: &Path,
    out: &Path,
    redactor: Option<&ims_vcr::secrets::redact::Redactor>,
) -> ims_vcr::Result<ims_vcr::formats::cassette::ExportSummary> {
    let store = ims_vcr::storage::store::Store::open(store)?;
    let rules = store.rules()?;
    let mut recordings = store.load(&rules)?;
    if let Some(redactor) = redactor {
        recordings = ims_vcr::formats::cassette::redact_recordings(&recordings, redactor, &rules)?;
    }
    ims_vcr::formats::cassette::write_dir(out, &recordings, &rules)
}

/// `ims-vcr import` through the library: cassette folder → store, all or nothing.
pub async fn import_dir(store: &Path, dir: &Path) -> ims_vcr::Result<()> {
    let (recordings, rules) = ims_vcr::formats::cassette::read_dir(dir)?;
    let store = ims_vcr::storage::store::Store::open(store)?;
    store.set_rules(&rules).await?;
    store.import(&recordings).await
}

/// Deterministic pseudo-random numbers (xorshift64*), so a failing run can be replayed.
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}
