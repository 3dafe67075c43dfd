//! The official clients through the proxy: the Huawei Cloud Python SDK (AK/SK-signed, re-signed by
//! the proxy for a signature-checking upstream) and openstacksdk (token), each recorded and then
//! replayed with the upstream gone; the parsed image and the 404 error must be identical.
//!
//! The Python packages (tests/interop/requirements.txt) are installed once into the suite's venv,
//! `target/tmp/python-venv` (tests/util/python.rs), on first use; that needs PyPI, as CI has.

use std::path::{Path, PathBuf};
use std::process::Command;

use ims_vcr::ProxyServer;

use crate::util::gateway::{REAL_AK, REAL_SK, gateway_verifier, real_credentials};
use crate::util::*;

const TOKEN: &str = "gAAAAAB-openstack-admin-token-for-interop";
const PROJECT: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";

/// The suite's venv (tests/util/python.rs), created on first use.
pub(crate) fn python() -> PathBuf {
    crate::util::python::venv_python()
}

/// Runs `clients.py` off the async runtime (the proxy serves on it meanwhile); returns its line.
async fn client(args: Vec<String>) -> serde_json::Value {
    run_script("clients.py", args, Vec::new()).await
}

/// Runs a script of tests/interop with `stdin`; returns its stdout parsed as JSON.
async fn run_script(name: &'static str, args: Vec<String>, stdin: Vec<u8>) -> serde_json::Value {
    tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        use std::process::Stdio;
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/interop")
            .join(name);
        let mut child = Command::new(python())
            .arg(script)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{name} {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    })
    .await
    .unwrap()
}

fn huawei(endpoint: &str, image: &str) -> Vec<String> {
    // Dummy keys: the proxy re-signs with the real ones from its environment.
    [
        "huawei",
        "--endpoint",
        endpoint,
        "--ak",
        "DUMMYAK",
        "--sk",
        "DUMMYSK",
        "--project-id",
        PROJECT,
        "--image-id",
        image,
    ]
    .map(str::to_owned)
    .to_vec()
}

fn openstack(endpoint: &str, image: &str) -> Vec<String> {
    [
        "openstack",
        "--endpoint",
        &format!("{endpoint}/v2"),
        "--token",
        TOKEN,
        "--image-id",
        image,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Record both outcomes through the proxy, stop the upstream, replay: same results.
async fn record_then_replay(
    fake: FakeIms,
    store: &Path,
    args: fn(&str, &str) -> Vec<String>,
) -> [serde_json::Value; 2] {
    let mut config = upstream_for(&fake, store.parent().unwrap());
    config.credentials = Some(real_credentials());
    let proxy = ProxyServer::builder()
        .record(config)
        .store(store)
        .start()
        .await
        .unwrap();
    let recorded = [
        client(args(&proxy.uri(), SEED_IMAGE_ID)).await,
        client(args(&proxy.uri(), UNKNOWN_IMAGE_ID)).await,
    ];
    proxy.shutdown().await.unwrap();
    fake.stop().await;

    let replay = replayer(store).await;
    let replayed = [
        client(args(&replay.uri(), SEED_IMAGE_ID)).await,
        client(args(&replay.uri(), UNKNOWN_IMAGE_ID)).await,
    ];
    let summary = replay.shutdown().await.unwrap();
    assert_eq!(summary.miss_count(), 0, "{summary}");
    assert_eq!(recorded, replayed, "record and replay differ");
    recorded
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_huawei_python_sdk_records_through_a_signature_checking_upstream_and_replays_identically()
 {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let fake = FakeIms::start(FakeOptions {
        verifier: Some(gateway_verifier()),
        ..Default::default()
    })
    .await;
    let [image, missing] = record_then_replay(fake, &store, huawei).await;
    assert_eq!(image["ok"], true, "{image}");
    assert_eq!(image["image"]["id"], SEED_IMAGE_ID);
    assert_eq!(image["image"]["status"], "active");
    assert_eq!(
        missing["error"],
        serde_json::json!({"type": "ClientRequestException", "status": 404, "code": "IMG.0027"})
    );
    for secret in [REAL_AK, REAL_SK, "DUMMYAK"] {
        assert!(
            files_containing(&store, secret.as_bytes()).is_empty(),
            "{secret} stored"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openstacksdk_records_with_a_token_and_replays_identically() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let fake = FakeIms::start(FakeOptions {
        require_token: Some(TOKEN.into()),
        ..Default::default()
    })
    .await;
    let [image, missing] = record_then_replay(fake, &store, openstack).await;
    assert_eq!(image["ok"], true, "{image}");
    assert_eq!(image["image"]["id"], SEED_IMAGE_ID);
    assert_eq!(missing["error"]["status"], 404);
    assert_eq!(missing["error"]["type"], "NotFoundException");
    assert!(
        files_containing(&store, TOKEN.as_bytes()).is_empty(),
        "token stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_with_the_official_prometheus_parser_and_count_by_route_template() {
    let (_dir, store, fake, proxy) = fake_and_recorder(FakeOptions::default()).await;
    get(&image_url(&proxy, SEED_IMAGE_ID)).await;
    get(&image_url(&proxy, UNKNOWN_IMAGE_ID)).await;
    proxy.shutdown().await.unwrap();
    fake.stop().await;
    let replay = replayer(&store).await;
    for id in [
        SEED_IMAGE_ID,
        UNKNOWN_IMAGE_ID,
        SEED_IMAGE_ID,
        "not-recorded",
    ] {
        get(&image_url(&replay, id)).await;
    }
    let text = get(&format!("{}/__ims-vcr/metrics", replay.uri())).await;
    assert!(
        text.header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let families = run_script("parse_metrics.py", vec![], text.body.clone()).await;
    let samples = |family: &str| {
        families[family]["samples"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let requests = samples("ims_vcr_requests");
    let count = |route: &str, outcome: &str| {
        requests
            .iter()
            .find(|s| s[1]["route"] == route && s[1]["outcome"] == outcome)
            .map(|s| s[2].as_f64().unwrap())
    };
    assert_eq!(
        count("/v2/images/{image_id}", "hit"),
        Some(3.0),
        "{families}"
    );
    assert_eq!(
        count("/v2/images/{image_id}", "miss"),
        Some(1.0),
        "{families}"
    );
    assert!(
        requests
            .iter()
            .all(|s| !s[1]["route"].as_str().unwrap().contains(SEED_IMAGE_ID)),
        "no per-id series"
    );
    assert_eq!(
        families["ims_vcr_replay_duration_seconds"]["type"],
        "histogram"
    );
    let histogram = samples("ims_vcr_replay_duration_seconds");
    let total = histogram
        .iter()
        .find(|s| s[0] == "ims_vcr_replay_duration_seconds_count")
        .unwrap();
    assert_eq!(total[2], 3.0);
    assert_eq!(samples("ims_vcr_misses")[0][2], 1.0);
}

// ---- identity: the clients sign in, or look their project up, through the same proxy ----

use crate::identity::{identity_and_ims, make_older, routed_recorder, routes};
use crate::util::fake_identity::{self as iam, FakeIdentity, Tokens};

/// Records `args(proxy)` through one proxy routing `/v3` to the identity service and the rest to
/// IMS (re-signing with the real AK/SK when `sign`), exports the store as cassettes, ages the
/// token answers by ten minutes, stops both upstreams and replays the cassettes: same outcome,
/// as many requests, nothing missed. Returns the outcome, the request count and the store dir.
async fn identity_record_then_replay(
    identity: FakeIdentity,
    ims: FakeIms,
    dir: &Path,
    sign: bool,
    args: impl Fn(&str) -> Vec<String>,
) -> (serde_json::Value, usize) {
    let store = dir.join("store");
    let mut routes = routes(&identity, &ims, dir);
    if sign {
        for (_, config) in &mut routes {
            config.credentials = Some(real_credentials());
        }
    }
    let proxy = routed_recorder(routes, &store).await;
    let recorded = client(args(&proxy.uri())).await;
    let summary = proxy.shutdown().await.unwrap();
    let asked = identity.requests().len() + ims.requests().len();
    assert_eq!(summary.recorded as usize, asked, "{summary}");
    identity.stop().await;
    ims.stop().await;

    let cassettes = dir.join("cassettes");
    export_store(&store, &cassettes, None).unwrap();
    make_older(
        &cassettes,
        time::Duration::minutes(10),
        "/v3/auth/tokens",
        &["expires_at", "issued_at"],
    );
    let replay = cassette_replayer(&cassettes).await;
    let replayed = client(args(&replay.uri())).await;
    let summary = replay.shutdown().await.unwrap();
    assert_eq!(summary.miss_count(), 0, "{summary}");
    assert_eq!(
        summary.hits as usize, asked,
        "as many requests as recorded: {summary}"
    );
    assert_eq!(recorded, replayed, "record and replay differ");
    (recorded, asked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openstacksdk_signs_in_with_a_password_through_the_proxy_and_replays_with_an_aged_token() {
    let dir = tempfile::tempdir().unwrap();
    // Tokens live three minutes; the replayed one was recorded "ten minutes ago".
    let (identity, ims, tokens): (FakeIdentity, FakeIms, Tokens) =
        identity_and_ims(std::time::Duration::from_secs(180)).await;
    let args = |proxy: &str| {
        [
            "openstack-password",
            "--auth-url",
            &format!("{proxy}/v3"),
            "--username",
            iam::USER,
            "--password",
            iam::PASSWORD,
            "--project-id",
            iam::PROJECT_ID,
            "--domain",
            iam::DOMAIN,
            "--region",
            iam::REGION,
            "--image-id",
            SEED_IMAGE_ID,
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let (image, asked) = identity_record_then_replay(identity, ims, dir.path(), false, args).await;
    assert_eq!(image["ok"], true, "{image}");
    assert_eq!(image["image"]["id"], SEED_IMAGE_ID);
    assert_eq!(image["image"]["name"], "CentOS 7.3 64bit vivado");
    assert!(asked >= 3, "sign-in, discovery and the image: {asked}");
    let issued = tokens.all();
    assert_eq!(issued.len(), 1, "one sign-in: {issued:?}");
    for secret in [iam::PASSWORD, &issued[0]] {
        assert!(
            files_containing(dir.path(), secret.as_bytes()).is_empty(),
            "{secret} stored"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_huawei_sdk_without_a_project_id_asks_iam_through_the_proxy_and_replays() {
    let dir = tempfile::tempdir().unwrap();
    let ims = FakeIms::start(FakeOptions {
        verifier: Some(gateway_verifier()),
        ..Default::default()
    })
    .await;
    let identity = FakeIdentity::start(iam::IdentityOptions {
        ims_url: ims.base_url(),
        token_lifetime: std::time::Duration::from_secs(3600),
        verifier: Some(gateway_verifier()),
        tokens: Tokens::default(),
    })
    .await;
    let args = |proxy: &str| {
        [
            "huawei",
            "--endpoint",
            proxy,
            "--iam-endpoint",
            proxy,
            "--region",
            iam::REGION,
            "--ak",
            "DUMMYAK",
            "--sk",
            "DUMMYSK",
            "--image-id",
            SEED_IMAGE_ID,
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let (image, asked) = identity_record_then_replay(identity, ims, dir.path(), true, args).await;
    assert_eq!(image["ok"], true, "{image}");
    assert_eq!(image["image"]["id"], SEED_IMAGE_ID);
    assert_eq!(asked, 2, "the project, then the image");
    let cassettes: String = all_files(&dir.path().join("cassettes"))
        .values()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert!(
        cassettes.contains("\"path\": \"/v3/projects\""),
        "{cassettes}"
    );
    assert!(
        cassettes.contains(&format!("\"name={}\"", iam::REGION)),
        "{cassettes}"
    );
    for secret in [REAL_AK, REAL_SK, "DUMMYAK", "DUMMYSK"] {
        assert!(
            files_containing(dir.path(), secret.as_bytes()).is_empty(),
            "{secret} stored"
        );
    }
}
