//! Builds a large store for `perf/replay.sh`: N recordings (default 100,000) of
//! `GET /v2/images/{id}`: the shipped seed image itself (so the benchmark can ask for it and
//! check the bytes), then images with distinct UUID-shaped ids, each answered with the seed's
//! answer carrying that id. Written through the library's own `Store::import` (one atomic batch,
//! then a flush) followed by the replay pack, exactly as `ims-vcr import` writes.
//!
//! ```sh
//! cargo run --release --example make_store -- /tmp/store-100k 100000
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use ims_vcr::model::interaction::Body;
use ims_vcr::model::key::{MatchRules, RequestKey};
use ims_vcr::model::recording::Recording;
use ims_vcr::storage::store::Store;
use serde_json::Value;

const SEED_CASSETTE: &str =
    "cassettes/get_v2_images_bc6bed6e-ba3a-4447-afcc-449174a3eb52_b89dc4cb3292.json";
const SEED_JSON: &[u8] = include_bytes!(
    "../cassettes/get_v2_images_bc6bed6e-ba3a-4447-afcc-449174a3eb52_b89dc4cb3292.json"
);

/// The `n`th synthetic image id: a version-4-shaped UUID, distinct for every `n`.
fn image_id(n: u64) -> String {
    format!("{:08x}-0000-4000-8000-{:012x}", n >> 16, n)
}

/// `count` recordings: the seed, then `count - 1` built from it, each about a different image.
fn recordings(count: u64) -> Vec<Recording> {
    let (seed, rules) = ims_vcr::formats::cassette::parse(Path::new(SEED_CASSETTE), SEED_JSON)
        .expect("the shipped seed cassette parses");
    assert_eq!(
        rules,
        MatchRules::default(),
        "the seed uses the default rules"
    );
    let template = seed.answers[0].clone();
    let seed_body = template.response.body.clone();
    let Some(Body::Json(seed_body)) = seed_body else {
        panic!("the seed answer has a JSON body");
    };
    let synthetic = (1..count).map(|n| {
        let id = image_id(n);
        let mut interaction = template.clone();
        interaction.request.path = format!("/v2/images/{id}");
        let mut body = seed_body.clone();
        body["id"] = Value::String(id.clone());
        body["self"] = Value::String(format!("/v2/images/{id}"));
        body["file"] = Value::String(format!("/v2/images/{id}/file"));
        interaction.response.body = Some(Body::Json(body));
        let key = RequestKey::of_recorded(&rules, &interaction.request)
            .expect("a bodiless request always has a key");
        Recording {
            key,
            answers: vec![interaction],
        }
    });
    std::iter::once(seed).chain(synthetic).collect()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    const USAGE: &str =
        "usage: make_store DIR [COUNT] (a new or empty folder; COUNT 100000 by default)";
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or(USAGE)?;
    // `--help` (or any flag) is not a folder to fill with a 400 MB store.
    if dir.starts_with('-') {
        println!("{USAGE}");
        return Ok(());
    }
    let dir = PathBuf::from(dir);
    let count: u64 = match args.next() {
        Some(n) => n
            .parse()
            .map_err(|_| format!("COUNT must be a number, got {n:?}"))?,
        None => 100_000,
    };
    let started = Instant::now();
    let recordings = recordings(count);
    let store = Store::open(&dir)?;
    store.import(&recordings).await?;
    // As `ims-vcr import` and every recording session do: replay starts from the pack.
    store.replay_pack()?;
    eprintln!(
        "make_store: {} recordings in {} ({:.1} s)",
        store.len(),
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
