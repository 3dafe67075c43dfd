//! Credentials reach the upstream but never the store or a cassette: proven by scanning bytes.

use crate::util::*;

const TOKEN: &str = "MIIEhQYJKoZIhvcNAQcCoIIEdjCCBHICAQExDTALBglghkgBZQMEAgEwgg-token-7f3a";
const SECURITY_TOKEN: &str = "gQpjbi1ub3J0aC00TOKENsecurity-91bd";
const AK: &str = "HPUAXZ3QK7EXAMPLEAK";
const COOKIE: &str = "session=cookie-secret-5d1e";

#[tokio::test]
async fn credentials_are_absent_from_store_bytes_and_exported_cassettes() {
    let (dir, store, fake, proxy) = fake_and_recorder(FakeOptions {
        require_token: Some(TOKEN.into()),
        ..Default::default()
    })
    .await;
    let authorization = format!(
        "SDK-HMAC-SHA256 Access={AK}, SignedHeaders=host;x-sdk-date, Signature=f00dfeedf00dfeedf00dfeedf00dfeed"
    );
    let headers = [
        ("x-auth-token", TOKEN),
        ("authorization", authorization.as_str()),
        ("x-security-token", SECURITY_TOKEN),
        ("cookie", COOKIE),
        ("x-sdk-date", "20261127T000000Z"),
        ("x-project-id", "0123456789abcdef0123456789abcdef"),
    ];
    for id in [SEED_IMAGE_ID, UNKNOWN_IMAGE_ID] {
        let reply = send("GET", &image_url(&proxy, id), &headers, b"").await;
        assert_ne!(reply.status, 401, "the token must reach the upstream");
    }
    proxy.shutdown().await.unwrap();
    fake.stop().await;

    let out = dir.path().join("out");
    export_store(&store, &out, None).unwrap();
    assert_eq!(all_files(&out).len(), 2);

    for secret in [
        TOKEN,
        SECURITY_TOKEN,
        AK,
        "cookie-secret-5d1e",
        "f00dfeedf00dfeedf00dfeedf00dfeed",
    ] {
        for place in [&store, &out] {
            let hits = files_containing(place, secret.as_bytes());
            assert!(hits.is_empty(), "{secret:?} found in {hits:?}");
        }
    }
    // The non-secret header is kept for readers of the cassette.
    assert!(!files_containing(&out, b"x-project-id").is_empty());
}
