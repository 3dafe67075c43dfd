//! The shipped `cassettes/` are a recording of the stand-in upstream, not hand-typed: this test
//! records the stand-in, exports with `--redact` (public default key), and compares with what is
//! committed (ignoring when and from which port it was recorded).
//! `IMS_VCR_WRITE_SAMPLES=1 cargo test samples` rewrites them.

use std::path::Path;

use ims_vcr::formats::cassette;
use ims_vcr::secrets::pseudonym::PseudonymKey;
use ims_vcr::secrets::redact::{RedactionPolicy, Redactor};
use ims_vcr::storage::store::Store;

use crate::util::*;

/// Fields that legitimately differ between two recordings of the same stand-in.
fn normalise(mut cassette: serde_json::Value) -> serde_json::Value {
    for answer in cassette["answers"].as_array_mut().unwrap() {
        answer["recorded_at"] = "".into();
        answer["latency_ms"] = 0.into();
        answer["upstream"] = "".into();
        for header in answer["headers"].as_array_mut().unwrap() {
            if header[0] == "x-request-id" || header[0] == "date" {
                header[1] = "".into();
            }
        }
    }
    cassette
}

#[tokio::test]
async fn the_shipped_cassettes_are_a_recording_of_the_stand_in() {
    let (dir, store, fake, proxy) = fake_and_recorder(FakeOptions::default()).await;
    for path in [
        format!("/v2/images/{SEED_IMAGE_ID}"),
        format!("/v2/images/{UNKNOWN_IMAGE_ID}"),
        "/v2/schemas/image".into(),
    ] {
        get(&format!("{}{path}", proxy.uri())).await;
    }
    proxy.shutdown().await.unwrap();
    fake.stop().await;
    let fresh = dir.path().join("fresh");
    let store = Store::open(&store).unwrap();
    let rules = store.rules().unwrap();
    let key = PseudonymKey::new(ims_vcr::secrets::pseudonym::DEFAULT_KEY.as_bytes());
    let redactor = Redactor::new(RedactionPolicy::default(), key);
    let recordings =
        cassette::redact_recordings(&store.load(&rules).unwrap(), &redactor, &rules).unwrap();
    cassette::write_dir(&fresh, &recordings, &rules).unwrap();

    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("cassettes");
    if std::env::var_os("IMS_VCR_WRITE_SAMPLES").is_some() {
        for (name, bytes) in all_files(&fresh) {
            std::fs::write(shipped.join(name), bytes).unwrap();
        }
    }
    let parse = |files: std::collections::BTreeMap<std::path::PathBuf, Vec<u8>>| {
        files
            .into_iter()
            .map(|(name, bytes)| (name, normalise(serde_json::from_slice(&bytes).unwrap())))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    assert_eq!(
        parse(all_files(&shipped)),
        parse(all_files(&fresh)),
        "cassettes/ differ from a fresh recording of the stand-in; regenerate with IMS_VCR_WRITE_SAMPLES=1"
    );
}
