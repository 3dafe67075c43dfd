//! Criterion benchmarks of the pieces on ims-vcr's per-request paths, through the library's
//! public API only: request key computation, the tape lookup, building a replayed response,
//! redaction of a recorded interaction, a recording serialised as the store writes it (against
//! `serde_json` writing the same bytes), and AK/SK signing.
//!
//! `cargo bench --bench hot_paths` (add `-- key` to run one group). The whole-server numbers,
//! against a minimal hyper server, nginx, a bare hyper responder and Talkback, come from
//! `perf/replay.sh`.

use std::hint::black_box;
use std::path::Path;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use hyper::http::{HeaderMap, HeaderValue, Method, Uri};
use ims_vcr::model::interaction::{Body, Encoded, Interaction};
use ims_vcr::model::key::{MatchRules, RequestKey};
use ims_vcr::model::recording::Recording;
use ims_vcr::net::signer::{self, Credentials};
use ims_vcr::replay::prepared::Prepared;
use ims_vcr::replay::tape::{Play, Sequence, Tapes};
use ims_vcr::secrets::pseudonym::PseudonymKey;
use ims_vcr::secrets::redact::{RedactionPolicy, Redactor};

const SEED_CASSETTE: &str =
    "cassettes/get_v2_images_bc6bed6e-ba3a-4447-afcc-449174a3eb52_b89dc4cb3292.json";
const SEED_JSON: &[u8] = include_bytes!(
    "../cassettes/get_v2_images_bc6bed6e-ba3a-4447-afcc-449174a3eb52_b89dc4cb3292.json"
);
const SEED_PATH: &str = "/v2/images/bc6bed6e-ba3a-4447-afcc-449174a3eb52";

/// The shipped seed interaction: `GET /v2/images/{id}` and its 1.1 KB image body.
fn seed() -> Interaction {
    let (recording, _) = ims_vcr::formats::cassette::parse(Path::new(SEED_CASSETTE), SEED_JSON)
        .expect("the shipped seed cassette parses");
    recording.answers[0].clone()
}

fn key(path: &str, query: Option<&str>) -> RequestKey {
    RequestKey::new(&MatchRules::default(), "GET", path, query, |_| vec![], b"")
}

fn key_computation(c: &mut Criterion) {
    let rules = MatchRules::default();
    let mut group = c.benchmark_group("key");
    group.bench_function("get_image", |b| {
        b.iter(|| {
            RequestKey::new(
                &rules,
                black_box("GET"),
                black_box(SEED_PATH),
                None,
                |_| vec![],
                b"",
            )
        })
    });
    group.bench_function("list_with_query", |b| {
        let query = "status=active&limit=10&__imagetype=gold&sort_key=name&marker=bc6bed6e";
        b.iter(|| {
            RequestKey::new(
                &rules,
                black_box("GET"),
                black_box("/v2/images"),
                Some(black_box(query)),
                |_| vec![],
                b"",
            )
        })
    });
    group.finish();
}

fn lookup(c: &mut Criterion) {
    let template = seed();
    let recordings: Vec<Recording> = (0..10_000u32)
        .map(|n| {
            let mut interaction = template.clone();
            interaction.request.path = format!("/v2/images/{n:08x}-0000-4000-8000-000000000000");
            Recording {
                key: RequestKey::of_recorded(&MatchRules::default(), &interaction.request)
                    .expect("a bodiless request has a key"),
                answers: vec![interaction],
            }
        })
        .collect();
    let tapes = Tapes::new(&recordings, Sequence::default()).expect("the seed answer prepares");
    let hit = key("/v2/images/00001234-0000-4000-8000-000000000000", None);
    let miss = key("/v2/images/not-recorded", None);
    let mut group = c.benchmark_group("lookup_10k");
    group.bench_function("hit", |b| {
        b.iter(|| {
            let played = tapes.play(black_box(&hit));
            assert!(matches!(played, Play::Hit(..)));
            played
        })
    });
    group.bench_function("miss", |b| b.iter(|| tapes.play(black_box(&miss))));
    group.finish();
}

fn response_building(c: &mut Criterion) {
    let seed = seed();
    let prepared = Prepared::from_recorded(&seed.response).expect("the seed answer prepares");
    let mut linked = seed.response.clone();
    linked.headers.push((
        "location".into(),
        format!("{}{SEED_PATH}", seed.response.upstream),
    ));
    let linked = Prepared::from_recorded(&linked).expect("the linked answer prepares");
    assert!(linked.mentions_upstream());
    let mut group = c.benchmark_group("to_response");
    group.bench_function("seed", |b| {
        b.iter(|| black_box(&prepared).to_response(ims_vcr::net::outcome::Outcome::Hit, None))
    });
    group.bench_function("seed_rewriting_upstream_origin", |b| {
        b.iter(|| {
            black_box(&linked).to_response(
                ims_vcr::net::outcome::Outcome::Hit,
                Some("http://127.0.0.1:9696"),
            )
        })
    });
    group.finish();
}

fn redaction(c: &mut Criterion) {
    let mut interaction = seed();
    // As recorded live: not yet redacted, with the project header an SDK sends.
    interaction.redaction = None;
    interaction.request.headers.push((
        "x-project-id".into(),
        "0a1b2c3d4e5f60718293a4b5c6d7e8f9".into(),
    ));
    let redactor = Redactor::new(
        RedactionPolicy::default(),
        PseudonymKey::new(b"ims-vcr-bench-key"),
    );
    c.bench_function("redact/seed_interaction", |b| {
        b.iter(|| {
            redactor
                .redact(black_box(&interaction))
                .expect("an unstamped interaction redacts")
        })
    });
}

/// A recording serialised as the store writes it (by hand, `model/interaction_json.rs`, into a
/// new buffer each time, as the record path does), and `serde_json` writing the same bytes
/// into one buffer kept between runs (no allocation: an edge it does not have on the record
/// path). The seed answer stored as text, as the record path stores it.
fn encoding(c: &mut Criterion) {
    let mut interaction = seed();
    let body = interaction
        .response
        .body
        .as_ref()
        .and_then(|b| b.to_bytes().ok());
    interaction.response.body = Body::verbatim(&body.expect("the seed has a body"));
    let by_serde = |interaction: &Interaction| {
        let mut out = Vec::with_capacity(Encoded::of(interaction).as_bytes().len() + 4096);
        serde_json::to_writer(&mut out, interaction).expect("an interaction serialises");
        out
    };
    assert_eq!(
        Encoded::of(&interaction).as_bytes(),
        by_serde(&interaction).as_slice()
    );
    let mut group = c.benchmark_group("encode");
    group.bench_function("seed_by_hand", |b| {
        b.iter(|| Encoded::of(black_box(&interaction)))
    });
    group.bench_function("seed_serde_json", |b| {
        let mut out = Vec::with_capacity(8192);
        b.iter(|| {
            out.clear();
            serde_json::to_writer(&mut out, black_box(&interaction))
                .expect("an interaction serialises");
            out.len()
        })
    });
    group.finish();
}

fn signing(c: &mut Criterion) {
    let credentials = Credentials {
        ak: "HPUABENCHMARKAK0000".into(),
        sk: "bench-secret-key-0123456789abcdefghijklmn".into(),
        security_token: None,
    };
    let uri: Uri = SEED_PATH.parse().expect("a valid path");
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("user-agent", "huaweicloud-usdk-python/3.0"),
        ("accept-encoding", "gzip, deflate"),
        ("content-type", "application/json"),
        ("x-project-id", "0a1b2c3d4e5f60718293a4b5c6d7e8f9"),
        ("x-sdk-date", "20260101T000000Z"),
        (
            "authorization",
            "SDK-HMAC-SHA256 Access=dummy, SignedHeaders=host, Signature=00",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    let now = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("a valid time");
    c.bench_function("sign/get_image", |b| {
        b.iter_batched_ref(
            || headers.clone(),
            |headers| {
                signer::sign(
                    &credentials,
                    &Method::GET,
                    &uri,
                    "ims.cn-north-4.myhuaweicloud.com",
                    headers,
                    b"",
                    now,
                )
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(
    hot_paths,
    key_computation,
    lookup,
    response_building,
    redaction,
    encoding,
    signing
);
criterion_main!(hot_paths);
