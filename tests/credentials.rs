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

/// The siblings of the query and the form: a `;token=` matrix parameter in the path, a
/// `password` part of a multipart body, headers and query parameters named like credentials
/// but spelt otherwise (`X-Vault-Token`, `SecurityToken`), answer fields that end in
/// `password` or `secret` or are spelt in camelCase (`secretKey`), and credentials inside URLs
/// an answer holds (a presigned URL, a connection string, `Location`) reach the upstream and
/// the client, and never the store, an exported cassette (its bytes or its file name) or the
/// log, even at `RUST_LOG=debug`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_parameters_multipart_parts_and_suffixed_answer_fields_never_reach_disk_or_log() {
    const MATRIX: &str = "matrix-token-secret-8c1f";
    const PART: &str = "multipart-password-secret-2b7e";
    const DB_PASSWORD: &str = "answer-db-password-secret-4d09";
    const ADMIN_PASSWORD: &str = "answer-admin-password-secret-e6a3";
    // Headers, query parameters and answer fields named like credentials but spelt otherwise,
    // and credentials inside URLs an answer holds.
    const HEADER_PASSWORD: &str = "header-x-auth-password-1f0e";
    const VAULT_TOKEN: &str = "header-x-vault-token-77c1";
    const QUERY_TOKEN: &str = "query-security-token-5a2d";
    const SECRET_KEY: &str = "answer-secret-key-c3b9";
    const ACCESS_TOKEN: &str = "answer-access-token-0d44";
    const URL_PASSWORD: &str = "answer-url-password-61e2";
    const SIGNATURE: &str = "answer-presigned-signature-9a0c";
    const LOCATION_TOKEN: &str = "answer-location-token-3be7";
    // A matrix parameter percent-encoded (`%3Btoken%3D`, as Go's url.PathEscape writes it), and
    // one inside a query value (`?a=1;token=`, which servers splitting at `;` read).
    const ENCODED_MATRIX: &str = "encoded-matrix-token-5e91";
    const QUERY_MATRIX: &str = "query-matrix-token-a7d3";
    const MISSED: &str = "missed-request-token-40b8";
    // A name holding an encoded `=`, and a relative URL in a query value.
    const NAME_EQUALS: &str = "name-equals-token-19fa";
    // Credentials in relative URLs and `;` parameters of header values, both ways.
    const RELATIVE_TOKEN: &str = "relative-url-token-c95e";
    const FORWARDED_TOKEN: &str = "forwarded-token-6d12";
    // Headers named for authentication, a key handed over, an assertion; an API key and a JWT
    // as query parameters.
    const REGISTRY_AUTH: &str = "header-registry-auth-2c55";
    const FUNCTIONS_KEY: &str = "header-functions-key-81fd";
    const JWT_ASSERTION: &str = "header-jwt-assertion-e04b";
    const QUERY_KEY: &str = "query-api-key-7f31";
    const QUERY_JWT: &str = "query-jwt-90ac";
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions::plain()).await;
    let answer = serde_json::json!({
        "database": {"name": "images", "db_password": DB_PASSWORD},
        "adminPassword": ADMIN_PASSWORD,
        "password_expires_at": "2027-01-01T00:00:00Z",
        "secretKey": SECRET_KEY,
        "accessToken": ACCESS_TOKEN,
        "conn": format!("mysql://root:{URL_PASSWORD}@db/images"),
        "file": format!("https://obs.example/i.qcow2?AccessKeyId=AK1&Signature={SIGNATURE}&Expires=1"),
        "next_token": "page-2-of-the-listing",
    })
    .to_string();
    let canned = canned_upstream(
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
             location: https://h.example/next?token={LOCATION_TOKEN}&limit=1\r\n\
             content-location: /v2/next;token={RELATIVE_TOKEN}?access_token={RELATIVE_TOKEN}\r\n\
             content-length: {}\r\n\r\n{answer}",
            answer.len()
        )
        .into_bytes(),
    )
    .await;
    let env = [("RUST_LOG", "debug")];
    let boundary = "vcr-boundary-77";
    let multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\ncirros\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\n{PART}\r\n\
         --{boundary}--\r\n"
    );
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let mut logs = Vec::new();
    let mut stores = Vec::new();
    for (n, upstream) in [fake.base_url(), canned].iter().enumerate() {
        let run = dir.path().join(format!("run-{n}"));
        std::fs::create_dir_all(&run).unwrap();
        let args = [
            "record",
            "--upstream",
            upstream,
            "--listen",
            "0",
            "--store",
            "store",
        ];
        let proxy = Running::start_with_env(&args, &run, &env);
        if n == 0 {
            // A path the fake answers without echoing the body (it would hold the password,
            // and the leak gate would forward the answer without storing it).
            let url = format!("{}/v2/cloudimages/action", proxy.uri);
            let headers = [("content-type", content_type.as_str())];
            let reply = send("POST", &url, &headers, multipart.as_bytes()).await;
            assert_eq!(reply.header("x-ims-vcr"), Some("recorded"), "{reply:?}");
        } else {
            let url = format!(
                "{}/v2/settings;token={MATRIX}?SecurityToken={QUERY_TOKEN}&limit=1&key={QUERY_KEY}&jwt={QUERY_JWT}",
                proxy.uri
            );
            let original = format!("/v2/settings?token={FORWARDED_TOKEN}");
            let forwarded = format!("for=192.0.2.1;token={FORWARDED_TOKEN}");
            let headers = [
                ("x-auth-password", HEADER_PASSWORD),
                ("x-vault-token", VAULT_TOKEN),
                ("x-registry-auth", REGISTRY_AUTH),
                ("x-functions-key", FUNCTIONS_KEY),
                ("cf-access-jwt-assertion", JWT_ASSERTION),
                ("x-original-url", original.as_str()),
                ("forwarded", forwarded.as_str()),
            ];
            let reply = send("GET", &url, &headers, b"").await;
            assert_eq!(reply.header("x-ims-vcr"), Some("recorded"), "{reply:?}");
            assert!(
                reply.text().contains(DB_PASSWORD),
                "the client gets the live answer"
            );
            let url = format!(
                "{}/v2/encoded%3Btoken%3D{ENCODED_MATRIX}?a=1;token={QUERY_MATRIX}&limit=1&x-auth-token%3D{NAME_EQUALS}&next=%2Fx%3Ftoken%3D{NAME_EQUALS}",
                proxy.uri
            );
            let reply = send("GET", &url, &[], b"").await;
            assert_eq!(reply.header("x-ims-vcr"), Some("recorded"), "{reply:?}");
        }
        logs.push(proxy.log());
        assert!(proxy.terminate().success());
        stores.push(run.join("store"));
    }
    let sent = fake.requests();
    assert!(
        sent.iter()
            .any(|r| String::from_utf8_lossy(&r.body).contains(PART))
    );

    // A replay with another matrix token still matches: the token is not part of the key.
    let replay = Running::start(
        &["replay", "--store", "store", "--listen", "0"],
        &dir.path().join("run-1"),
    );
    let url = format!(
        "{}/v2/settings;token=another-one?SecurityToken=another&limit=1&key=k&jwt=j",
        replay.uri
    );
    let reply = send("GET", &url, &[], b"").await;
    assert_eq!(reply.header("x-ims-vcr"), Some("hit"), "{reply:?}");
    let url = format!(
        "{}/v2/encoded%3Btoken%3Danother?a=1;token=another&limit=1&x-auth-token%3Danother&next=%2Fx%3Ftoken%3Danother",
        replay.uri
    );
    let reply = send("GET", &url, &[], b"").await;
    assert_eq!(reply.header("x-ims-vcr"), Some("hit"), "{reply:?}");
    // A miss reports how the request differs from the nearest recordings, credentials masked.
    for url in [
        format!("{}/v2/settings;token={MISSED};more=1?limit=1", replay.uri),
        format!(
            "{}/v2/encoded%3Btoken%3D{MISSED}%3Bz?a=1;token={MISSED}&limit=2",
            replay.uri
        ),
        format!(
            "{}/v2/encoded?a=1%3B%2574oken%3D{MISSED}&limit=1",
            replay.uri
        ),
    ] {
        let reply = send("GET", &url, &[], b"").await;
        assert_eq!(reply.header("x-ims-vcr"), Some("miss"), "{reply:?}");
        assert!(!reply.text().contains(MISSED), "{}", reply.text());
        assert!(reply.text().contains("\"diff\""), "{}", reply.text());
    }
    let misses = send("GET", &format!("{}/__ims-vcr/misses", replay.uri), &[], b"").await;
    assert_eq!(misses.status, 200);
    assert!(!misses.text().contains(MISSED), "{}", misses.text());
    logs.push(replay.log());
    assert!(replay.terminate().success());

    let mut places = Vec::new();
    for (n, store) in stores.iter().enumerate() {
        let out = dir.path().join(format!("out-{n}"));
        export_store(store, &out, None).unwrap();
        let names: Vec<String> = all_files(&out)
            .keys()
            .map(|p| p.display().to_string())
            .collect();
        for name in &names {
            assert!(!name.contains("matrix-token"), "{name}");
        }
        places.push(store.clone());
        places.push(out);
    }
    for secret in [
        MATRIX,
        PART,
        DB_PASSWORD,
        ADMIN_PASSWORD,
        HEADER_PASSWORD,
        VAULT_TOKEN,
        QUERY_TOKEN,
        SECRET_KEY,
        ACCESS_TOKEN,
        URL_PASSWORD,
        SIGNATURE,
        LOCATION_TOKEN,
        ENCODED_MATRIX,
        QUERY_MATRIX,
        MISSED,
        RELATIVE_TOKEN,
        FORWARDED_TOKEN,
        NAME_EQUALS,
        REGISTRY_AUTH,
        FUNCTIONS_KEY,
        JWT_ASSERTION,
        QUERY_KEY,
        QUERY_JWT,
    ] {
        for place in &places {
            let hits = files_containing(place, secret.as_bytes());
            assert!(hits.is_empty(), "{secret:?} found in {hits:?}");
        }
        for log in &logs {
            assert!(!log.contains(secret), "{secret} in a log:\n{log}");
        }
    }
    // Answer data that only starts like a secret is kept, and so is a page's token.
    for kept in ["2027-01-01T00:00:00Z", "page-2-of-the-listing", "Expires=1"] {
        let hits = files_containing(&dir.path().join("out-1"), kept.as_bytes());
        assert!(!hits.is_empty(), "{kept}");
    }
}

/// A `;token=` matrix parameter percent-encoded twice or three times (`%253Btoken%253D`, as a
/// client escaping an already escaped segment sends it) and OAuth implicit-grant tokens in a URL
/// fragment (`#access_token=…`, in `Location`, an answer string and a request body) never reach
/// the store, an exported cassette (bytes or file name), the log, `ls`, `/__ims-vcr/stats` or a
/// miss report; a replay with another token still matches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doubly_encoded_path_parameters_and_url_fragments_never_reach_disk_log_ls_or_a_miss() {
    const TWICE: &str = "twice-encoded-path-token-6767";
    const THRICE: &str = "thrice-encoded-path-token-3434";
    const NAME_TWICE: &str = "name-twice-path-token-1212";
    const MISSED: &str = "missed-twice-path-token-8888";
    const FRAG_LOCATION: &str = "fragment-location-token-01aa";
    const FRAG_ID: &str = "fragment-id-token-02bb";
    const FRAG_ANSWER: &str = "fragment-answer-token-03cc";
    const FRAG_RELATIVE: &str = "fragment-relative-token-04dd";
    const FRAG_REQUEST: &str = "fragment-request-token-05ee";
    let dir = tempfile::tempdir().unwrap();
    let answer = serde_json::json!({
        "redirect": format!("https://app.example/cb#access_token={FRAG_ANSWER}&state=1"),
        "next": format!("/cb#id_token={FRAG_RELATIVE}"),
        "anchor": "https://app.example/docs#section-2",
    })
    .to_string();
    let upstream = canned_upstream(
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
             location: https://app.example/cb#access_token={FRAG_LOCATION}&token_type=Bearer&id_token={FRAG_ID}\r\n\
             content-length: {}\r\n\r\n{answer}",
            answer.len()
        )
        .into_bytes(),
    )
    .await;
    let args = [
        "record",
        "--upstream",
        &upstream,
        "--listen",
        "0",
        "--store",
        "store",
    ];
    let proxy = Running::start_with_env(&args, dir.path(), &[("RUST_LOG", "debug")]);
    for path in [
        format!("/v2/images/ok16%253Btoken%253D{TWICE}"),
        format!("/v2/images/ok17%25253Btoken%25253D{THRICE}/file"),
        format!("/v2/images/ok18%253B%252574oken%253D{NAME_TWICE}"),
    ] {
        let reply = send("GET", &format!("{}{path}", proxy.uri), &[], b"").await;
        assert_eq!(
            reply.header("x-ims-vcr"),
            Some("recorded"),
            "{path}: {reply:?}"
        );
        assert!(
            reply.text().contains(FRAG_ANSWER),
            "the client gets the live answer"
        );
    }
    let callback =
        format!(r#"{{"callback": "https://app.example/cb#access_token={FRAG_REQUEST}"}}"#);
    let json = [("content-type", "application/json")];
    let reply = send(
        "POST",
        &format!("{}/v2/x", proxy.uri),
        &json,
        callback.as_bytes(),
    )
    .await;
    assert_eq!(reply.header("x-ims-vcr"), Some("recorded"), "{reply:?}");
    let stats = send("GET", &format!("{}/__ims-vcr/stats", proxy.uri), &[], b"").await;
    let mut shown = vec![stats.text(), proxy.log()];
    assert!(proxy.terminate().success());

    let replay = Running::start_with_env(
        &["replay", "--store", "store", "--listen", "0"],
        dir.path(),
        &[("RUST_LOG", "debug")],
    );
    let url = format!("{}/v2/images/ok16%253Btoken%253Danother", replay.uri);
    let reply = send("GET", &url, &[], b"").await;
    assert_eq!(reply.header("x-ims-vcr"), Some("hit"), "{reply:?}");
    let url = format!("{}/v2/images/zz%253Btoken%253D{MISSED}", replay.uri);
    let reply = send("GET", &url, &[], b"").await;
    assert_eq!(reply.header("x-ims-vcr"), Some("miss"), "{reply:?}");
    assert!(
        reply.text().contains("%253Btoken%253DREDACTED"),
        "{}",
        reply.text()
    );
    shown.push(reply.text());
    for endpoint in ["stats", "misses"] {
        let url = format!("{}/__ims-vcr/{endpoint}", replay.uri);
        shown.push(send("GET", &url, &[], b"").await.text());
    }
    shown.push(replay.log());
    assert!(replay.terminate().success());
    let (code, ls, ls_err) = run_with_stdout(&["ls", "--store", "store"], dir.path());
    assert_eq!(code, 0, "{ls_err}");
    assert!(ls.contains("ok16%253Btoken%253DREDACTED"), "{ls}");
    shown.extend([ls, ls_err]);

    let store = dir.path().join("store");
    let out = dir.path().join("out");
    export_store(&store, &out, None).unwrap();
    let har = dir.path().join("har");
    std::fs::create_dir_all(&har).unwrap();
    let har_file = har.join("all.har").display().to_string();
    let (code, _, err) = run_with_stdout(
        &[
            "export", "--store", "store", "--format", "har", "--out", &har_file,
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    let names: Vec<String> = all_files(&out)
        .keys()
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    for secret in [
        TWICE,
        THRICE,
        NAME_TWICE,
        MISSED,
        FRAG_LOCATION,
        FRAG_ID,
        FRAG_ANSWER,
        FRAG_RELATIVE,
        FRAG_REQUEST,
    ] {
        for name in &names {
            assert!(
                !name.contains(&secret[..12]),
                "{secret} in a file name: {name}"
            );
        }
        for place in [&store, &out, &har] {
            let hits = files_containing(place, secret.as_bytes());
            assert!(hits.is_empty(), "{secret:?} found in {hits:?}");
        }
        for text in &shown {
            assert!(!text.contains(secret), "{secret} shown:\n{text}");
        }
    }
    // Data that only looks like a fragment or a parameter is kept.
    for kept in ["#section-2", "token_type=Bearer", "state=1"] {
        assert!(
            !files_containing(&out, kept.as_bytes()).is_empty(),
            "{kept}"
        );
    }
}

#[tokio::test]
async fn a_signed_image_upload_and_filters_on_data_about_credentials_record_and_replay_as_sent() {
    // Glance's image-signature properties and Keystone's `password_expires_at` name data, not
    // credentials: a create echoing them is recorded (the leak gate would refuse a masked value
    // echoed back), and filters on them tell requests apart.
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions::default()).await;
    let store = dir.path().join("store");
    let proxy = recorder(&fake, &store).await;
    let body = br#"{"name":"signed","img_signature":"c2lnbmF0dXJl","img_signature_hash_method":"SHA-256","img_signature_key_type":"RSA-PSS"}"#;
    let json = [("content-type", "application/json")];
    let url = format!("{}/v2/images", proxy.uri());
    let reply = send("POST", &url, &json, body).await;
    assert_eq!(
        reply.header("x-ims-vcr"),
        Some("recorded"),
        "{}",
        reply.text()
    );
    assert!(
        reply.text().contains("c2lnbmF0dXJl"),
        "the fake echoes the body"
    );
    for kind in ["RSA-PSS", "DSA"] {
        let url = format!("{}/v2/images?img_signature_key_type={kind}", proxy.uri());
        let reply = send("GET", &url, &[], b"").await;
        assert_eq!(reply.header("x-ims-vcr"), Some("recorded"), "{kind}");
    }
    proxy.shutdown().await.unwrap();

    let replay = replayer(&store).await;
    let url = format!("{}/v2/images", replay.uri());
    let reply = send("POST", &url, &json, body).await;
    assert_eq!(reply.header("x-ims-vcr"), Some("hit"), "{}", reply.text());
    let url = format!("{}/v2/images?img_signature_key_type=ECC", replay.uri());
    let reply = send("GET", &url, &[], b"").await;
    assert_eq!(
        reply.header("x-ims-vcr"),
        Some("miss"),
        "a filter value never recorded"
    );
    replay.shutdown().await.unwrap();
}

#[tokio::test]
async fn credentials_in_json_a_parser_refuses_never_reach_disk_or_log() {
    // Python's json.dumps writes NaN; several documents one per line; single quotes; a
    // document nested past serde_json's limit of 128 levels.
    const NAN_PASSWORD: &str = "nan-body-password-7e21";
    const QUOTED_PASSWORD: &str = "single-quoted-password-0c3d";
    const DEEP_TOKEN: &str = "deep-request-token-58aa";
    const NDJSON_TOKEN: &str = "ndjson-answer-token-b604";
    const DEEP_ANSWER_TOKEN: &str = "deep-answer-token-2f19";
    const FORM_TOKEN: &str = "form-json-token-6b3e";
    let dir = tempfile::tempdir().unwrap();
    let deep = |token: &str| {
        format!(
            r#"{}{{"access_token": "{token}"}}{}"#,
            "[".repeat(140),
            "]".repeat(140)
        )
    };
    let answer = format!(
        "{{\"access_token\": \"{NDJSON_TOKEN}\", \"n\": 1}}\n{}\n",
        deep(DEEP_ANSWER_TOKEN)
    );
    let canned = canned_upstream(
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        )
        .into_bytes(),
    )
    .await;
    let env = [("RUST_LOG", "debug")];
    let args = [
        "record",
        "--upstream",
        &canned,
        "--listen",
        "0",
        "--store",
        "store",
    ];
    let proxy = Running::start_with_env(&args, dir.path(), &env);
    let json = [("content-type", "application/json")];
    for (n, body) in [
        format!(r#"{{"auth": {{"password": "{NAN_PASSWORD}", "ratio": NaN}}}}"#),
        format!(r#"{{'password': '{QUOTED_PASSWORD}', 'user': 'u'}}"#),
        deep(DEEP_TOKEN),
    ]
    .iter()
    .enumerate()
    {
        let url = format!("{}/v3/odd/{n}", proxy.uri);
        let reply = send("POST", &url, &json, body.as_bytes()).await;
        assert_eq!(reply.header("x-ims-vcr"), Some("recorded"), "{reply:?}");
        assert!(
            reply.text().contains(NDJSON_TOKEN),
            "the client gets the live answer"
        );
    }
    // JSON inside a form field.
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let body = format!("a=1&payload=%7B%22access_token%22%3A%22{FORM_TOKEN}%22%7D");
    let reply = send(
        "POST",
        &format!("{}/v3/odd/form", proxy.uri),
        &form,
        body.as_bytes(),
    )
    .await;
    assert_eq!(reply.header("x-ims-vcr"), Some("recorded"), "{reply:?}");
    let log = proxy.log();
    assert!(proxy.terminate().success());
    // Replayed with other secrets, the requests still match.
    let replay = Running::start(&["replay", "--store", "store", "--listen", "0"], dir.path());
    let body = r#"{"auth": {"password": "another", "ratio": NaN}}"#;
    let reply = send(
        "POST",
        &format!("{}/v3/odd/0", replay.uri),
        &json,
        body.as_bytes(),
    )
    .await;
    assert_eq!(reply.header("x-ims-vcr"), Some("hit"), "{reply:?}");
    assert!(
        reply.text().contains("\"access_token\": \"REDACTED\""),
        "{}",
        reply.text()
    );
    let body = "a=1&payload=%7B%22access_token%22%3A%22another%22%7D";
    let reply = send(
        "POST",
        &format!("{}/v3/odd/form", replay.uri),
        &form,
        body.as_bytes(),
    )
    .await;
    assert_eq!(reply.header("x-ims-vcr"), Some("hit"), "{reply:?}");
    assert!(replay.terminate().success());
    let out = dir.path().join("out");
    export_store(&dir.path().join("store"), &out, None).unwrap();
    for secret in [
        NAN_PASSWORD,
        QUOTED_PASSWORD,
        DEEP_TOKEN,
        NDJSON_TOKEN,
        DEEP_ANSWER_TOKEN,
        FORM_TOKEN,
    ] {
        for place in [dir.path().join("store"), out.clone()] {
            let hits = files_containing(&place, secret.as_bytes());
            assert!(hits.is_empty(), "{secret:?} found in {hits:?}");
        }
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

#[tokio::test]
async fn a_refused_recording_logs_its_request_line_with_path_credentials_masked() {
    const MATRIX: &str = "refused-matrix-token-91c4";
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions::plain()).await;
    let args = [
        "record",
        "--upstream",
        &fake.base_url(),
        "--listen",
        "0",
        "--store",
        "store",
    ];
    let proxy = Running::start_with_env(&args, dir.path(), &[("RUST_LOG", "info")]);
    // The fake echoes the path, token and all: the leak gate refuses to store that answer.
    let url = format!("{}/v2/images/x;token={MATRIX}", proxy.uri);
    let json = [("content-type", "application/json")];
    let reply = send("POST", &url, &json, b"{}").await;
    assert_ne!(reply.header("x-ims-vcr"), Some("recorded"), "{reply:?}");
    let log = proxy.log();
    assert!(proxy.terminate().success());
    assert!(log.contains("NOT recorded"), "{log}");
    assert!(log.contains("x;token=REDACTED"), "{log}");
    assert!(!log.contains(MATRIX), "{log}");
    fake.stop().await;
}

/// A token a sign-in answer hands out (`X-Subject-Token`) is masked in a later request's log
/// line in passthrough too, where the client sends it in a path segment and nothing refuses
/// the request (record and auto show it masked as they refuse to store it).
#[tokio::test]
async fn passthrough_masks_a_handed_out_token_in_a_later_requests_log_line() {
    const ISSUED: &str = "gAAAAAZQX-passthrough-issued-token-7781Kq";
    let up = scripted_upstream(|head| match head.starts_with("POST /v3/auth/tokens ") {
        true => http_answer(
            "201 Created",
            &[
                ("content-type", "application/json"),
                ("x-subject-token", ISSUED),
            ],
            b"{}",
        ),
        false => http_answer("200 OK", &[("content-type", "application/json")], b"{}"),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let args = ["passthrough", "--upstream", &up, "--listen", "0"];
    let proxy = Running::start_with_env(&args, dir.path(), &[("RUST_LOG", "debug")]);
    let json = [("content-type", "application/json")];
    let signed_in = send(
        "POST",
        &format!("{}/v3/auth/tokens", proxy.uri),
        &json,
        b"{}",
    )
    .await;
    assert_eq!(
        signed_in.header("x-subject-token"),
        Some(ISSUED),
        "the client gets the live token"
    );
    let reply = send(
        "GET",
        &format!("{}/v2/images/{ISSUED}", proxy.uri),
        &[],
        b"",
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let log = proxy.log();
    assert!(proxy.terminate().success());
    assert!(log.contains("/v2/images/REDACTED"), "{log}");
    assert!(!log.contains("passthrough-issued-token"), "{log}");
}

/// A request header: name and value.
type Header<'a> = (&'a str, &'a str);

/// The credential classes an outside probe found stored, each recorded through the proxy and
/// looked for in every byte of the store, the exported cassettes, a HAR export, replay's
/// answers and the logs: Keystone's MFA receipt (`Openstack-Auth-Receipt`, both ways), API
/// gateways' app codes and keys, Swift's `X-Storage-Pass` and temp-URL keys (`…-Key-2`),
/// `*_pwd` names, session ids and password hashes an answer hands out, OAuth and SAML grants
/// (`code` beside a `grant_type`, `assertion`, `SAMLResponse`), key material (`signing_key`),
/// bracketed names (`auth[token]`, encoded `auth%5Btoken%5D`), and secret-named answer fields
/// whose value starts like a link (`/…`, `https://…`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_app_codes_pwd_names_grants_key_material_and_bracketed_names_never_reach_disk() {
    // Request side, through the TLS fake.
    let (dir, store, fake, proxy) = fake_and_recorder(FakeOptions::default()).await;
    let url = format!(
        "{}?auth%5Btoken%5D=req-bracket-token-01&data%5Baccess_token%5D=req-bracket-token-02&user_pwd=req-user-pwd-03",
        image_url(&proxy, SEED_IMAGE_ID)
    );
    let headers = [
        ("openstack-auth-receipt", "req-auth-receipt-04"),
        ("x-apig-appcode", "req-apig-appcode-05"),
        ("x-hw-appkey", "req-hw-appkey-06"),
        ("x-storage-user", "tenant:user"),
        ("x-storage-pass", "req-storage-pass-07"),
    ];
    let reply = send("GET", &url, &headers, b"").await;
    assert_eq!(reply.header("x-ims-vcr"), Some("recorded"), "{reply:?}");
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let json = [("content-type", "application/json")];
    let bodies: [(&str, &[Header<'_>], &str); 6] = [
        (
            "/v3/oauth/token",
            &form,
            "grant_type=authorization_code&code=req-auth-code-08&redirect_uri=https%3A%2F%2Fapp%2Fcb&client_id=c",
        ),
        (
            "/v3/oauth/jwt",
            &form,
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=eyJh.req-assertion-09.sig",
        ),
        (
            "/v3/OS-FEDERATION/saml2/auth",
            &form,
            "SAMLResponse=PHNhbWxw-req-saml-10&RelayState=x",
        ),
        (
            "/v3/nested",
            &form,
            "user%5Bapi_token%5D=req-bracket-token-11&auth[token]=req-bracket-token-12&name=kept-form-name",
        ),
        (
            "/v3/servers",
            &json,
            r#"{"server":{"root_pwd":"req-root-pwd-13","adminPwd":"req-admin-pwd-14","signing_key":"req-signing-key-15","session_id":"req-session-id-16","name":"kept-server-name"}}"#,
        ),
        ("/v3/errors", &form, "code=IMS.0001&limit=1"),
    ];
    for (path, headers, body) in bodies {
        let reply = send(
            "POST",
            &format!("{}{path}", proxy.uri()),
            headers,
            body.as_bytes(),
        )
        .await;
        assert_eq!(
            reply.header("x-ims-vcr"),
            Some("recorded"),
            "{path}: {reply:?}"
        );
    }
    proxy.shutdown().await.unwrap();
    let sent = fake.requests();
    assert!(
        sent.iter()
            .any(|r| String::from_utf8_lossy(&r.body).contains("req-auth-code-08"))
    );
    fake.stop().await;
    let out = dir.path().join("out");
    export_store(&store, &out, None).unwrap();
    let mut places = vec![store.clone(), out.clone()];
    // Data stays readable: an error code beside no grant, the other fields of a form or body.
    for kept in [
        "IMS.0001",
        "kept-form-name",
        "kept-server-name",
        "tenant:user",
    ] {
        assert!(
            !files_containing(&out, kept.as_bytes()).is_empty(),
            "{kept}"
        );
    }

    // Answer side, through the binary in front of an upstream handing out every class.
    const RECEIPT: &str = "ans-auth-receipt-21";
    let answer = serde_json::json!({
        "root_pwd": "ans-root-pwd-22", "adminPwd": "ans-admin-pwd-23",
        "session_id": "ans-session-id-24", "sessionid": "ans-sessionid-25",
        "credentials": "ans-credentials-26", "password_hash": "ans-password-hash-27",
        "signing_key": "ans-signing-key-28", "encryption_key": "ans-encryption-key-29",
        "master_key": "ans-master-key-30", "hmac_key": "ans-hmac-key-31",
        "credential": {"access": "AKEXAMPLE", "secret_access_key": "/ans-slash-secret-32"},
        "db_password": "https://ans-db-password-33", "shared_secret": "/ans-shared-secret-34",
        "password_expires_at": "2027-01-01T00:00:00Z", "next_page_token": "page-2-kept",
        "error": {"code": "IMS.0002"},
    })
    .to_string();
    let canned = canned_upstream(
        format!(
            "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\n\
             openstack-auth-receipt: {RECEIPT}\r\n\
             x-account-meta-temp-url-key: ans-temp-url-key-35\r\n\
             x-container-meta-temp-url-key-2: ans-temp-url-key-36\r\n\
             content-length: {}\r\n\r\n{answer}",
            answer.len()
        )
        .into_bytes(),
    )
    .await;
    let folder = dir.path().join("run");
    std::fs::create_dir_all(&folder).unwrap();
    let env = [("RUST_LOG", "debug")];
    let args = [
        "record",
        "--upstream",
        &canned,
        "--listen",
        "0",
        "--store",
        "store",
    ];
    let recorder = Running::start_with_env(&args, &folder, &env);
    let sign_in = r#"{"auth":{"identity":{"methods":["password"],"password":{"user":{"id":"u1","password":"ans-run-password-37"}}}}}"#;
    let url = format!("{}/v3/auth/tokens", recorder.uri);
    let reply = send("POST", &url, &json, sign_in.as_bytes()).await;
    assert_eq!(reply.header("x-ims-vcr"), Some("recorded"), "{reply:?}");
    assert_eq!(
        reply.header("openstack-auth-receipt"),
        Some(RECEIPT),
        "the client gets it live"
    );
    let mut logs = vec![recorder.log()];
    assert!(recorder.terminate().success());
    std::fs::create_dir_all(folder.join("har")).unwrap();
    let (code, output) = run(
        &[
            "export",
            "--store",
            "store",
            "--out",
            "har/h.har",
            "--format",
            "har",
        ],
        &folder,
    );
    assert_eq!(code, 0, "{output}");
    let out = folder.join("out");
    export_store(&folder.join("store"), &out, None).unwrap();
    places.extend([folder.join("store"), out.clone(), folder.join("har")]);
    for kept in ["2027-01-01T00:00:00Z", "page-2-kept", "IMS.0002"] {
        assert!(
            !files_containing(&out, kept.as_bytes()).is_empty(),
            "{kept}"
        );
    }

    // Replay serves the receipt as a placeholder the client can send back, and a miss with a
    // bracketed token names it masked.
    let replay = Running::start_with_env(
        &["replay", "--store", "store", "--listen", "0"],
        &folder,
        &env,
    );
    let sign_in = sign_in.replace("ans-run-password-37", "another");
    let reply = send(
        "POST",
        &format!("{}/v3/auth/tokens", replay.uri),
        &json,
        sign_in.as_bytes(),
    )
    .await;
    assert_eq!(reply.header("x-ims-vcr"), Some("hit"), "{reply:?}");
    assert_eq!(
        reply.header("openstack-auth-receipt"),
        Some("ims-vcr-placeholder-token")
    );
    let mut replies = vec![reply.text()];
    let url = format!(
        "{}/v3/auth/tokens?data%5Baccess_token%5D=miss-bracket-token-38",
        replay.uri
    );
    let reply = send(
        "GET",
        &url,
        &[("openstack-auth-receipt", "ims-vcr-placeholder-token")],
        b"",
    )
    .await;
    assert_eq!(reply.header("x-ims-vcr"), Some("miss"), "{reply:?}");
    replies.push(reply.text());
    logs.push(replay.log());
    assert!(replay.terminate().success());

    let secrets = [
        "req-bracket-token-01",
        "req-bracket-token-02",
        "req-user-pwd-03",
        "req-auth-receipt-04",
        "req-apig-appcode-05",
        "req-hw-appkey-06",
        "req-storage-pass-07",
        "req-auth-code-08",
        "req-assertion-09",
        "req-saml-10",
        "req-bracket-token-11",
        "req-bracket-token-12",
        "req-root-pwd-13",
        "req-admin-pwd-14",
        "req-signing-key-15",
        "req-session-id-16",
        RECEIPT,
        "ans-root-pwd-22",
        "ans-admin-pwd-23",
        "ans-session-id-24",
        "ans-sessionid-25",
        "ans-credentials-26",
        "ans-password-hash-27",
        "ans-signing-key-28",
        "ans-encryption-key-29",
        "ans-master-key-30",
        "ans-hmac-key-31",
        "ans-slash-secret-32",
        "ans-db-password-33",
        "ans-shared-secret-34",
        "ans-temp-url-key-35",
        "ans-temp-url-key-36",
        "ans-run-password-37",
        "miss-bracket-token-38",
    ];
    for secret in secrets {
        for place in &places {
            let hits = files_containing(place, secret.as_bytes());
            assert!(hits.is_empty(), "{secret:?} found in {hits:?}");
        }
        for text in logs.iter().chain(&replies) {
            assert!(
                !text.contains(secret),
                "{secret} in a log or a replayed answer:\n{text}"
            );
        }
    }
}

/// XML bodies (STS- and OBS-style APIs answer in XML; SOAP-era clients send it): a password
/// element or attribute in the request and the keys an XML answer hands out never reach the
/// store or a cassette, and the request still matches with another password.
#[tokio::test]
async fn credentials_in_xml_bodies_never_reach_disk_and_the_request_matches_another_password() {
    const ANSWER_SK: &str = "xml-answer-secret-key-41";
    const ANSWER_TOKEN: &str = "xml-answer-session-token-42";
    let answer = format!(
        "<?xml version=\"1.0\"?><Credentials><AccessKeyId>AKXML</AccessKeyId>\
         <SecretAccessKey>{ANSWER_SK}</SecretAccessKey><SessionToken><![CDATA[{ANSWER_TOKEN}]]></SessionToken>\
         <Expiration>2027-01-01T00:00:00Z</Expiration>\
         <Parameter><Name>password</Name><Value>xml-answer-pair-44</Value></Parameter>\
         <add key=\"secret\" value=\"xml-answer-pair-45\"/></Credentials>"
    );
    let canned = canned_upstream(
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        )
        .into_bytes(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let proxy = ims_vcr::ProxyServer::builder()
        .record(ims_vcr::UpstreamConfig::new(canned.clone()))
        .store(&store)
        .start()
        .await
        .unwrap();
    let xml = [("content-type", "application/xml")];
    let body = |password: &str| {
        format!(
            "<auth user=\"u1\" password=\"{password}-attr\"><name>kept-xml-name</name><password>{password}</password>\
             <entry key=\"password\">{password}-pair</entry><param name=\"secret\" value=\"{password}-param\"/></auth>"
        )
    };
    let url = format!("{}/v3/xml-sign-in", proxy.uri());
    let reply = send(
        "POST",
        &url,
        &xml,
        body("xml-request-password-43").as_bytes(),
    )
    .await;
    assert_eq!(reply.header("x-ims-vcr"), Some("recorded"), "{reply:?}");
    assert!(
        reply.text().contains(ANSWER_SK),
        "the client gets the live answer"
    );
    proxy.shutdown().await.unwrap();
    let out = dir.path().join("out");
    export_store(&store, &out, None).unwrap();
    for secret in [
        "xml-request-password-43",
        ANSWER_SK,
        ANSWER_TOKEN,
        "xml-answer-pair-44",
        "xml-answer-pair-45",
    ] {
        for place in [&store, &out] {
            assert!(
                files_containing(place, secret.as_bytes()).is_empty(),
                "{secret} in {place:?}"
            );
        }
    }
    assert!(!files_containing(&out, b"kept-xml-name").is_empty());
    assert!(!files_containing(&out, b"AKXML").is_empty());
    // Replay matches a sign-in with another password.
    let replay = ims_vcr::ProxyServer::builder()
        .replay()
        .store(&store)
        .start()
        .await
        .unwrap();
    let url = format!("{}/v3/xml-sign-in", replay.uri());
    let again = send("POST", &url, &xml, body("another-password").as_bytes()).await;
    assert_eq!(again.header("x-ims-vcr"), Some("hit"), "{again:?}");
    assert!(
        again
            .text()
            .contains("<SecretAccessKey>REDACTED</SecretAccessKey>"),
        "{}",
        again.text()
    );
    replay.shutdown().await.unwrap();
}

/// A client that compresses its request body (`Content-Encoding: gzip` or `deflate`) cannot have
/// the password in it masked field by field and still match: the leak gate reads inside and
/// refuses to store it, for JSON and form bodies alike; the client still gets the live answer,
/// and `verify --deny` finds a password inside a compressed body a cassette holds.
#[tokio::test]
async fn a_password_in_a_compressed_request_body_never_reaches_disk() {
    const PASSWORD: &str = "Compressed-Pa55word-4711";
    let json = format!(
        r#"{{"auth":{{"identity":{{"methods":["password"],"password":{{"user":{{"name":"u","domain":{{"name":"d"}},"password":"{PASSWORD}"}}}}}}}}}}"#
    );
    let form = format!("username=u&password={PASSWORD}");
    let up = scripted_upstream(|_| {
        http_answer(
            "201 Created",
            &[("content-type", "application/json")],
            br#"{"ok":true}"#,
        )
    })
    .await;
    for (what, content_type, encoding, body) in [
        (
            "gzip JSON",
            "application/json",
            "gzip",
            gzip(json.as_bytes()),
        ),
        (
            "deflate JSON",
            "application/json",
            "deflate",
            zlib(json.as_bytes()),
        ),
        (
            "gzip form",
            "application/x-www-form-urlencoded",
            "gzip",
            gzip(form.as_bytes()),
        ),
        // Every layer is read through, declared or not.
        (
            "gzip of gzip JSON",
            "application/json",
            "gzip, gzip",
            gzip(&gzip(json.as_bytes())),
        ),
        (
            "zlib inside gzip",
            "application/json",
            "gzip",
            gzip(&zlib(json.as_bytes())),
        ),
        // A coding the gate cannot read (no zstd decoder here: the body is the JSON behind a
        // zstd frame's magic) is not stored at all: nothing could check it.
        (
            "zstd JSON",
            "application/json",
            "zstd",
            [&[0x28, 0xb5, 0x2f, 0xfd][..], json.as_bytes()].concat(),
        ),
        (
            "br JSON",
            "application/json",
            "br",
            json.as_bytes().to_vec(),
        ),
        // `deflate` as raw DEFLATE (no zlib header): not read, so not stored either.
        ("raw deflate JSON", "application/json", "deflate", {
            use std::io::Write as _;
            let mut enc =
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(json.as_bytes()).unwrap();
            enc.finish().unwrap()
        }),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let proxy = recording_through(ims_vcr::UpstreamConfig::new(&up), &store).await;
        let headers = [
            ("content-type", content_type),
            ("content-encoding", encoding),
        ];
        let reply = send(
            "POST",
            &format!("{}/v3/auth/tokens", proxy.uri()),
            &headers,
            &body,
        )
        .await;
        assert_eq!(reply.status, 201, "{what}: the client gets the live answer");
        proxy.shutdown().await.unwrap();
        assert_eq!(
            stored_answers(&store),
            0,
            "{what}: stored a compressed password"
        );
        assert!(
            files_containing(&store, PASSWORD.as_bytes()).is_empty(),
            "{what}"
        );
    }

    // A cassette written by hand (or by an older ims-vcr) holding one: `verify --deny` finds it.
    let dir = tempfile::tempdir().unwrap();
    let cassettes = shipped_cassettes(dir.path());
    let name = std::fs::read_dir(&cassettes)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut cassette: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&name).unwrap()).unwrap();
    use base64::Engine as _;
    let hidden = base64::engine::general_purpose::STANDARD.encode(gzip(json.as_bytes()));
    cassette["request"]["body"] = serde_json::json!({ "base64": hidden });
    std::fs::write(&name, serde_json::to_vec_pretty(&cassette).unwrap()).unwrap();
    let (code, out, err) = run_with_stdout(
        &["verify", "--deny", PASSWORD, cassettes.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains("inside the compressed body"), "{out}{err}");
}

/// An answer compressed once more than its `Content-Encoding` says (gzip with no header at all,
/// gzip inside the declared gzip, zlib under `identity`) still has what it hands out found: the
/// secret cannot be masked inside the compressed bytes, so the answer is not stored (a gap
/// takes its place) and its bytes never reach the disk. The client gets the live answer.
#[tokio::test]
async fn a_secret_in_an_answer_compressed_more_than_it_says_never_reaches_disk() {
    const SECRET: &str = "Undeclared-Secret-Key-9041";
    let json = format!(
        r#"{{"credential":{{"access":"AKIDEXAMPLE","secret":"{SECRET}","expires_at":"2030-01-01T00:00:00Z"}}}}"#
    );
    for (what, encoding, body) in [
        ("gzip without Content-Encoding", None, gzip(json.as_bytes())),
        (
            "gzip inside the declared gzip",
            Some("gzip"),
            gzip(&gzip(json.as_bytes())),
        ),
        (
            "zlib under identity",
            Some("identity"),
            zlib(json.as_bytes()),
        ),
    ] {
        let answer = body.clone();
        let up = scripted_upstream(move |_| {
            let mut headers = vec![("content-type", "application/json")];
            if let Some(encoding) = encoding {
                headers.push(("content-encoding", encoding));
            }
            http_answer("200 OK", &headers, &answer)
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let proxy = recording_through(ims_vcr::UpstreamConfig::new(&up), &store).await;
        let reply = send(
            "GET",
            &format!("{}/v3-ext/OS-CREDENTIAL/securitytokens", proxy.uri()),
            &[],
            b"",
        )
        .await;
        assert_eq!(reply.status, 200, "{what}: the client gets the live answer");
        proxy.shutdown().await.unwrap();
        assert_eq!(stored_answers_and_gaps(&store), (0, 1), "{what}: stored");
        let inner = gzip(json.as_bytes());
        for needle in [SECRET.as_bytes(), &body[..], &inner[..]] {
            assert!(files_containing(&store, needle).is_empty(), "{what}");
        }
    }
}

/// Body shapes a credential hides in besides a plain JSON or form body: a multipart part that
/// holds JSON, a `multipart/mixed` part, a part named the RFC 5987 way (`name*=UTF-8''…`), a
/// UTF-16 JSON request and a UTF-16 JSON answer. None of the secrets reaches the store, in any
/// encoding; the clients get their live answers.
#[tokio::test]
async fn credentials_in_multipart_json_parts_and_utf16_bodies_never_reach_disk() {
    let utf16 = |text: &str| -> Vec<u8> {
        [0xff, 0xfe]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
            .collect()
    };
    let answer = utf16(r#"{"credential":{"secret":"utf16-answer-secret-31"}}"#);
    let up = scripted_upstream(move |request| {
        if request.contains("/answer16") {
            http_answer(
                "200 OK",
                &[("content-type", "application/json; charset=utf-16")],
                &answer,
            )
        } else {
            http_answer(
                "201 Created",
                &[("content-type", "application/json")],
                b"{}",
            )
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let proxy = recording_through(ims_vcr::UpstreamConfig::new(&up), &store).await;
    let part = |disposition: &str, content: &str| {
        format!(
            "--b7\r\nContent-Disposition: {disposition}\r\nContent-Type: application/json\r\n\r\n{content}\r\n--b7--\r\n"
        )
    };
    let cases: Vec<(&str, String, Vec<u8>)> = vec![
        (
            "multipart/form-data; boundary=b7",
            "json part".into(),
            part(
                "form-data; name=\"meta\"",
                r#"{"password":"mp-json-secret-11"}"#,
            )
            .into_bytes(),
        ),
        (
            "multipart/mixed; boundary=b7",
            "mixed part".into(),
            part("form-data; name=\"password\"", "mp-mixed-secret-12").into_bytes(),
        ),
        (
            "multipart/form-data; boundary=b7",
            "rfc 5987 name".into(),
            part("form-data; name*=UTF-8''password", "mp-star-secret-13").into_bytes(),
        ),
        (
            "application/json; charset=utf-16",
            "utf-16 request".into(),
            utf16(r#"{"auth":{"password":"utf16-request-secret-14"}}"#),
        ),
    ];
    for (content_type, what, body) in &cases {
        let reply = send(
            "POST",
            &format!("{}/v3/things", proxy.uri()),
            &[("content-type", content_type)],
            body,
        )
        .await;
        assert_eq!(reply.status, 201, "{what}");
    }
    let reply = get(&format!("{}/answer16", proxy.uri())).await;
    assert_eq!(reply.status, 200);
    proxy.shutdown().await.unwrap();
    // The multipart requests are stored masked; the UTF-16 request is not stored (its own body
    // holds the secret), and the UTF-16 answer leaves a gap. (A UTF-16 body would be stored as
    // base64, which a byte scan cannot see into: hence the counts.)
    assert_eq!(stored_answers_and_gaps(&store), (3, 1));
    for secret in [
        "mp-json-secret-11",
        "mp-mixed-secret-12",
        "mp-star-secret-13",
        "utf16-request-secret-14",
        "utf16-answer-secret-31",
    ] {
        let utf16_le: Vec<u8> = secret.encode_utf16().flat_map(u16::to_le_bytes).collect();
        for needle in [secret.as_bytes(), &utf16_le[..]] {
            assert!(
                files_containing(&store, needle).is_empty(),
                "{secret} stored"
            );
        }
    }
}

/// The siblings of the UTF-16 bodies above: JSON in Latin-1 (one byte that is not UTF-8, a
/// `René` in a sign-in, an answer in `charset=ISO-8859-1`), whose credential fields, past ASCII
/// too, never reach the disk; and a URL password holding an unencoded `/` (a Glance `s3://`
/// location's secret key), which is masked whole.
#[tokio::test]
async fn credentials_in_latin1_json_and_url_passwords_holding_a_slash_never_reach_disk() {
    let up = scripted_upstream(move |request| {
        if request.contains("/securitytokens") {
            http_answer(
                "201 Created",
                &[("content-type", "application/json; charset=ISO-8859-1")],
                b"{\"credential\":{\"secret\":\"latin1-answer-secret-41\",\"securitytoken\":\"s\xe9cret-token-42\",\"description\":\"cl\xe9\"}}",
            )
        } else if request.contains("/v2/images/s3") {
            http_answer(
                "200 OK",
                &[("content-type", "application/json")],
                br#"{"id":"s3","direct_url":"s3://AKIAEXAMPLE:wJal/rXUtn+FEMI@s3.example.com/bucket/s3"}"#,
            )
        } else {
            http_answer("201 Created", &[("content-type", "application/json")], b"{}")
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let proxy = recording_through(ims_vcr::UpstreamConfig::new(&up), &store).await;
    let sign_in = b"{\"auth\":{\"identity\":{\"password\":{\"user\":{\"name\":\"Ren\xe9\",\"password\":\"p\xe4sswort-latin1-43\"}}}}}";
    let reply = send(
        "POST",
        &format!("{}/v3/auth/tokens", proxy.uri()),
        &[("content-type", "application/json")],
        sign_in,
    )
    .await;
    assert_eq!(reply.status, 201, "the client gets the live answer");
    let reply = send(
        "POST",
        &format!("{}/v3.0/OS-CREDENTIAL/securitytokens", proxy.uri()),
        &[("content-type", "application/json")],
        b"{}",
    )
    .await;
    assert_eq!(reply.status, 201);
    let reply = get(&format!("{}/v2/images/s3", proxy.uri())).await;
    assert_eq!(reply.status, 200);
    assert!(
        String::from_utf8_lossy(&reply.body).contains("wJal/rXUtn+FEMI"),
        "served live"
    );
    proxy.shutdown().await.unwrap();
    // The sign-in is not stored (its own body holds the password), the answer handing out the
    // secrets leaves a gap, and the image is stored with its location's secret key masked.
    assert_eq!(stored_answers_and_gaps(&store), (1, 1));
    for needle in [
        &b"p\xe4sswort-latin1-43"[..],
        "pässwort-latin1-43".as_bytes(),
        b"latin1-answer-secret-41",
        b"s\xe9cret-token-42",
        b"wJal/rXUtn+FEMI",
        b"wJal",
    ] {
        assert!(
            files_containing(&store, needle).is_empty(),
            "{} stored",
            String::from_utf8_lossy(needle)
        );
    }
}

/// A credential the request carries in a header (or a body field, or a named parameter) that it
/// also puts where no rule names a credential (a path segment, an ordinary query value) is
/// masked wherever the request is shown: the record log, a replay miss's `599`, the misses the
/// control API lists, the exit summary, a `502`'s message and its log line. Nothing of such a
/// request is stored. An access key id the path names is stored, shown and replayed as its
/// pseudonym, as the answer that hands it out holds it. Bytes are scanned for each secret, raw, percent-encoded
/// once and twice, in base64url and in hex (a request may carry its token so in a query).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_repeated_in_the_path_or_an_ordinary_parameter_is_masked_everywhere_shown() {
    use base64::Engine as _;
    const TOKEN: &str = "Zq81tokq+Xkkk/v9";
    const COOKIE: &str = "Zq81cookieXkkkv9";
    const PASSWORD: &str = "Zq81basicpwXkkv9";
    const BODY_PASSWORD: &str = "Zq81bodypwXkkkv9";
    const NAMED: &str = "Zq81namedtokXkv9";
    const ACCESS: &str = "HPUAZQ81IAMAKXXXXXXX";
    let dir = tempfile::tempdir().unwrap();
    let encoded = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let plain = canned_upstream(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"id\":\"x\"}\n"
            .to_vec(),
    )
    .await;
    let b64url = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("bob:{PASSWORD}"));
    let basic = format!("Basic {basic}");
    let cookie = format!("sid={COOKIE}");
    let json = ("content-type", "application/json");
    let body = format!(r#"{{"auth":{{"password":"{BODY_PASSWORD}"}}}}"#);
    // Each: the request's headers, its target, its body.
    let requests: Vec<(Vec<Header>, String, &[u8])> = vec![
        (
            vec![("x-auth-token", TOKEN)],
            format!("/v2/images?name={}", encoded(TOKEN)),
            b"",
        ),
        (
            vec![("x-auth-token", TOKEN)],
            format!("/v2/images/{}", encoded(TOKEN)),
            b"",
        ),
        (
            vec![("cookie", &cookie)],
            format!("/v2/images?marker={COOKIE}"),
            b"",
        ),
        (
            vec![("authorization", &basic)],
            format!("/v2/images/{PASSWORD}"),
            b"",
        ),
        (
            vec![json],
            format!("/v2/images?x={BODY_PASSWORD}"),
            body.as_bytes(),
        ),
        (
            vec![],
            format!("/v2/images?token={NAMED}&name={NAMED}"),
            b"",
        ),
        // The token in the encodings the leak gate finds it in, which is why nothing of
        // these is stored: masked wherever they are shown too.
        (
            vec![("x-auth-token", TOKEN)],
            format!("/v2/images?v={}", b64url(TOKEN)),
            b"",
        ),
        (
            vec![("x-auth-token", TOKEN)],
            format!("/v2/images?v={}", hex(TOKEN).to_uppercase()),
            b"",
        ),
        (
            vec![("x-auth-token", TOKEN)],
            format!("/v2/images/{}", encoded(&encoded(TOKEN))),
            b"",
        ),
    ];
    let record = [
        "record",
        "--upstream",
        &plain,
        "--listen",
        "0",
        "--store",
        "store",
    ];
    let proxy = Running::start_with_env(&record, dir.path(), &[("RUST_LOG", "debug")]);
    for (headers, target, body) in &requests {
        let method = if body.is_empty() { "GET" } else { "POST" };
        let reply = send(method, &format!("{}{target}", proxy.uri), headers, body).await;
        assert_eq!(reply.status, 200, "{target}: {reply:?}");
        assert_ne!(
            reply.header("x-ims-vcr"),
            Some("recorded"),
            "{target}: {reply:?}"
        );
    }
    let mut shown = vec![proxy.log()];
    let (status, log) = stopped(proxy);
    assert!(status.success(), "{log}");
    shown.push(log);

    // The gap of an answer handing out the access key the request's path names.
    let access_answer = format!(r#"{{"credential":{{"access":"{ACCESS}","status":"active"}}}}"#);
    let keyed = canned_upstream(
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{access_answer}",
            access_answer.len()
        )
        .into_bytes(),
    )
    .await;
    let record = [
        "record",
        "--upstream",
        &keyed,
        "--listen",
        "0",
        "--store",
        "store",
    ];
    let proxy = Running::start_with_env(&record, dir.path(), &[("RUST_LOG", "debug")]);
    let url = format!("{}/v3.0/OS-CREDENTIAL/credentials/{ACCESS}", proxy.uri);
    let reply = send("GET", &url, &[("x-auth-token", "another-token-77")], b"").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    // Stored with the key id as its pseudonym, in the path as in the answer.
    assert_eq!(reply.header("x-ims-vcr"), Some("recorded"), "{reply:?}");
    let (status, log) = stopped(proxy);
    assert!(status.success(), "{log}");
    assert!(!log.contains("NOT recorded"), "{log}");
    shown.push(log);

    // Replay: each request is a miss, shown masked.
    let replay = ["replay", "--store", "store", "--listen", "0"];
    let proxy = Running::start_with_env(&replay, dir.path(), &[("RUST_LOG", "debug")]);
    for (headers, target, body) in &requests {
        let method = if body.is_empty() { "GET" } else { "POST" };
        let reply = send(method, &format!("{}{target}", proxy.uri), headers, body).await;
        assert_eq!(
            reply.header("x-ims-vcr"),
            Some("miss"),
            "{target}: {reply:?}"
        );
        assert!(
            reply.text().contains("REDACTED"),
            "{target}: {}",
            reply.text()
        );
        shown.push(reply.text());
    }
    shown.push(
        send("GET", &format!("{}/__ims-vcr/misses", proxy.uri), &[], b"")
            .await
            .text(),
    );
    let (status, log) = stopped(proxy);
    assert!(status.success(), "{log}");
    assert!(log.contains("miss"), "{log}");
    shown.push(log);

    // The key asked for by its real id (a suite's own configuration) and by the pseudonym a
    // replayed answer handed out: both play the recording.
    let proxy = Running::start_with_env(&replay, dir.path(), &[("RUST_LOG", "debug")]);
    let url = format!("{}/v3.0/OS-CREDENTIAL/credentials/{ACCESS}", proxy.uri);
    let reply = send("GET", &url, &[], b"").await;
    assert_eq!(reply.header("x-ims-vcr"), Some("hit"), "{reply:?}");
    let answer: serde_json::Value = serde_json::from_str(&reply.text()).unwrap();
    let pseudonym = answer["credential"]["access"].as_str().unwrap().to_owned();
    assert_ne!(pseudonym, ACCESS);
    assert_eq!(pseudonym.len(), ACCESS.len());
    shown.push(reply.text());
    let url = format!("{}/v3.0/OS-CREDENTIAL/credentials/{pseudonym}", proxy.uri);
    let reply = send("GET", &url, &[], b"").await;
    assert_eq!(reply.header("x-ims-vcr"), Some("hit"), "{reply:?}");
    let (status, log) = stopped(proxy);
    assert!(status.success(), "{log}");
    shown.push(log);

    // A 502: the upstream gone (a port just closed), its URL in the message.
    let gone = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let passthrough = ["passthrough", "--upstream", &gone, "--listen", "0"];
    let proxy = Running::start_with_env(&passthrough, dir.path(), &[("RUST_LOG", "debug")]);
    let target = format!("/v2/images/{}?name={}", encoded(TOKEN), encoded(TOKEN));
    let reply = send(
        "GET",
        &format!("{}{target}", proxy.uri),
        &[("x-auth-token", TOKEN)],
        b"",
    )
    .await;
    assert_eq!(reply.status, 502, "{reply:?}");
    assert!(reply.text().contains("REDACTED"), "{}", reply.text());
    shown.push(reply.text());
    let (_, log) = stopped(proxy);
    shown.push(log);
    let record = [
        "record",
        "--upstream",
        &gone,
        "--listen",
        "0",
        "--store",
        "store2",
    ];
    let proxy = Running::start_with_env(&record, dir.path(), &[("RUST_LOG", "debug")]);
    let target = format!("/v2/images/{}", encoded(TOKEN));
    let reply = send(
        "GET",
        &format!("{}{target}", proxy.uri),
        &[("x-auth-token", TOKEN)],
        b"",
    )
    .await;
    assert_eq!(reply.status, 502, "{reply:?}");
    shown.push(reply.text());
    let (_, log) = stopped(proxy);
    assert!(log.contains("upstream failed"), "{log}");
    shown.push(log);

    for secret in [TOKEN, COOKIE, PASSWORD, BODY_PASSWORD, NAMED, ACCESS] {
        // Base64's middle: the characters at its ends mix in the bytes around the value.
        let base64 = b64url(secret);
        for form in [
            secret.to_owned(),
            encoded(secret),
            encoded(secret).to_lowercase(),
            encoded(&encoded(secret)),
            base64[2..base64.len() - 2].to_owned(),
            hex(secret),
            hex(secret).to_uppercase(),
        ] {
            for place in ["store", "store2"] {
                let hits = files_containing(&dir.path().join(place), form.as_bytes());
                assert!(hits.is_empty(), "{form:?} found in {hits:?}");
            }
            for text in &shown {
                assert!(!text.contains(&form), "{form} shown:\n{text}");
            }
        }
    }
}

/// SIGTERM, then the exit status and the whole log (the exit summary included).
fn stopped(proxy: Running) -> (std::process::ExitStatus, String) {
    proxy.signal("-TERM");
    proxy.wait_with_log()
}

/// A form ends with a line ending as often as not (`curl -d @file`, a token endpoint's
/// `access_token=…&expires_in=3600\n`), and an env or properties file is a form a line
/// (`user=a\npassword=…\n`): its credentials are masked as a one-line form's, in a request body
/// (declared a form, `text/plain`, or without a `Content-Type`) and in an answer (whatever it
/// is declared as), never stored; the line endings are kept.
#[tokio::test]
async fn forms_ending_in_a_line_ending_or_a_form_a_line_are_masked() {
    const ANSWERS: [(&str, &str, &str); 10] = [
        (
            "/t/form-lf",
            "application/x-www-form-urlencoded",
            "access_token=ans-form-lf-tok1&expires_in=3600\n",
        ),
        (
            "/t/form-crlf",
            "application/x-www-form-urlencoded",
            "expires_in=3600&access_token=ans-form-crlf-tok2\r\n",
        ),
        ("/t/plain", "text/plain", "password=ans-plain-pw3\n"),
        (
            "/t/none",
            "",
            "token_type=bearer&access_token=ans-none-tok4\n",
        ),
        (
            "/t/env",
            "text/plain",
            "OS_USERNAME=u\nOS_PASSWORD=ans-env-pw5\n",
        ),
        // Assignments a form is not: comments, sections, spaces, `export`, CR-only lines, a
        // trailing tab, a byte-order mark.
        (
            "/t/ini",
            "text/plain",
            "# creds\n[auth]\npassword = ans-ini-pw6\n",
        ),
        (
            "/t/export",
            "text/plain",
            "export OS_PASSWORD=\"ans-export-pw7\"\n",
        ),
        (
            "/t/cr",
            "text/plain",
            "access_token=ans-cr-tok8\rexpires_in=3600\r",
        ),
        ("/t/tab", "text/plain", "access_token=ans-tab-tok9\t"),
        (
            "/t/bom",
            "text/plain",
            "\u{feff}access_token=ans-bom-tok10&x=1",
        ),
    ];
    let up = scripted_upstream(|head| {
        let (_, content_type, body) = ANSWERS
            .iter()
            .find(|(path, _, _)| head.contains(&format!(" {path} ")))
            .copied()
            .unwrap_or(("", "application/json", "{}"));
        let headers: Vec<(&str, &str)> = match content_type {
            "" => vec![],
            t => vec![("content-type", t)],
        };
        http_answer("200 OK", &headers, body.as_bytes())
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let proxy = recording_through(ims_vcr::UpstreamConfig::new(&up), &store).await;
    for (path, _, body) in ANSWERS {
        let reply = send("GET", &format!("{}{path}", proxy.uri()), &[], b"").await;
        assert_eq!(
            reply.body,
            body.as_bytes(),
            "{path}: the client gets the live answer"
        );
        assert_eq!(
            reply.header("x-ims-vcr"),
            Some("recorded"),
            "{path}: {reply:?}"
        );
    }
    let requests: [(&str, &str, &str); 9] = [
        (
            "/r/form-lf",
            "application/x-www-form-urlencoded",
            "username=u&password=req-form-lf-pw1\n",
        ),
        ("/r/plain", "text/plain", "password=req-plain-pw2\n"),
        ("/r/none", "", "user=a\r\npassword=req-none-pw3\r\n"),
        (
            "/r/lines",
            "text/plain",
            "user=a\npassword=req-lines-pw4\n\n",
        ),
        ("/r/kept", "text/plain", "name=kept-line-value\n"),
        (
            "/r/comment",
            "text/plain",
            "# c\npassword=req-comment-pw5\n",
        ),
        ("/r/spaces", "", "password = req-spaces-pw6\n"),
        ("/r/cr", "text/plain", "user=a\rpassword=req-cr-pw7\r"),
        (
            "/r/json-typed",
            "application/json",
            "password=req-json-typed-pw8\n",
        ),
    ];
    for (path, content_type, body) in requests {
        let headers: Vec<(&str, &str)> = match content_type {
            "" => vec![],
            t => vec![("content-type", t)],
        };
        let reply = send(
            "POST",
            &format!("{}{path}", proxy.uri()),
            &headers,
            body.as_bytes(),
        )
        .await;
        assert_eq!(
            reply.header("x-ims-vcr"),
            Some("recorded"),
            "{path}: {reply:?}"
        );
    }
    proxy.shutdown().await.unwrap();
    let out = dir.path().join("out");
    export_store(&store, &out, None).unwrap();
    for secret in [
        "ans-form-lf-tok1",
        "ans-form-crlf-tok2",
        "ans-plain-pw3",
        "ans-none-tok4",
        "ans-env-pw5",
        "req-form-lf-pw1",
        "req-plain-pw2",
        "req-none-pw3",
        "req-lines-pw4",
        "ans-ini-pw6",
        "ans-export-pw7",
        "ans-cr-tok8",
        "ans-tab-tok9",
        "ans-bom-tok10",
        "req-comment-pw5",
        "req-spaces-pw6",
        "req-cr-pw7",
        "req-json-typed-pw8",
    ] {
        for place in [&store, &out] {
            assert!(
                files_containing(place, secret.as_bytes()).is_empty(),
                "{secret} in {}",
                place.display()
            );
        }
    }
    // The rest of each form is kept, line endings and all.
    for kept in [
        "expires_in=3600\\n",
        "expires_in=3600&access_token=REDACTED\\r\\n",
        "OS_USERNAME=u\\nOS_PASSWORD=REDACTED\\n",
        "name=kept-line-value\\n",
    ] {
        assert!(
            !files_containing(&out, kept.as_bytes()).is_empty(),
            "{kept}"
        );
    }
}

/// The leak gate reads a compressed stream wherever it sits in a body, not only when it is the
/// whole body: an upstream echoing the client's token as `base64(gzip(…))`, `base64url(zlib(…))`
/// or `hex(zlib(…))` in a field, and a multipart request whose gzip part holds a password, are
/// never stored (the client still gets the live answer); an ordinary compressed blob is.
#[tokio::test]
async fn a_credential_inside_a_compressed_blob_in_a_body_never_reaches_disk() {
    use base64::Engine as _;
    const TOKEN: &str = "Blob-Hidden-Token-8812";
    const PASSWORD: &str = "Blob-Part-Pa55word-31";
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let b64url = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let pct = |text: &str| {
        text.replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D")
    };
    let answers: Vec<(&'static str, String)> = vec![
        // Percent-encoded, at an offset inside the base64, and base64 of base64.
        (
            "/e/pct",
            format!(
                r#"{{"next":"{}"}}"#,
                pct(&b64(&gzip(format!("tok={TOKEN}&x=1").as_bytes())))
            ),
        ),
        (
            "/e/offset",
            format!(
                r#"{{"state":"{}"}}"#,
                b64(&[&b"\x00abc"[..], &zlib(TOKEN.as_bytes())].concat())
            ),
        ),
        (
            "/e/twice",
            format!(
                r#"{{"state":"{}"}}"#,
                b64(b64(&gzip(TOKEN.as_bytes())).as_bytes())
            ),
        ),
        (
            "/e/gzb64",
            format!(
                r#"{{"state":"{}"}}"#,
                b64(&gzip(format!("tok={TOKEN}").as_bytes()))
            ),
        ),
        (
            "/e/zlibb64url",
            format!(r#"{{"state":"{}"}}"#, b64url(&zlib(TOKEN.as_bytes()))),
        ),
        (
            "/e/zlibhex",
            format!(r#"{{"blob":"{}","n":1}}"#, hex(&zlib(TOKEN.as_bytes()))),
        ),
        (
            "/e/kept",
            format!(r#"{{"blob":"{}"}}"#, b64(&gzip(b"nothing secret here"))),
        ),
    ];
    let served = answers.clone();
    let up = scripted_upstream(move |head| {
        let body = served
            .iter()
            .find(|(path, _)| head.contains(&format!(" {path} ")))
            .map_or_else(|| "{}".to_owned(), |(_, body)| body.clone());
        http_answer(
            "200 OK",
            &[("content-type", "application/json")],
            body.as_bytes(),
        )
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let proxy = recording_through(ims_vcr::UpstreamConfig::new(&up), &store).await;
    for (path, body) in &answers {
        let reply = send(
            "GET",
            &format!("{}{path}", proxy.uri()),
            &[("x-auth-token", TOKEN)],
            b"",
        )
        .await;
        assert_eq!(
            reply.body,
            body.as_bytes(),
            "{path}: the client gets the live answer"
        );
    }
    let part = gzip(format!(r#"{{"password":"{PASSWORD}"}}"#).as_bytes());
    let mut multipart = b"--XyZ\r\nContent-Disposition: form-data; name=\"cfg\"; filename=\"part.gz\"\r\nContent-Type: application/gzip\r\n\r\n".to_vec();
    multipart.extend_from_slice(&part);
    multipart.extend_from_slice(b"\r\n--XyZ--\r\n");
    let reply = send(
        "POST",
        &format!("{}/e/upload", proxy.uri()),
        &[("content-type", "multipart/form-data; boundary=XyZ")],
        &multipart,
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    // A gzip part holding a form, and a file whose type says nothing of the form it holds.
    let part = gzip(format!("user=a&password={PASSWORD}\n").as_bytes());
    let mut multipart = b"--XyZ\r\nContent-Disposition: form-data; name=\"cfg\"\r\nContent-Type: application/gzip\r\n\r\n".to_vec();
    multipart.extend_from_slice(&part);
    multipart.extend_from_slice(b"\r\n--XyZ--\r\n");
    let multipart_type = [("content-type", "multipart/form-data; boundary=XyZ")];
    let octet_type = [("content-type", "application/octet-stream")];
    let octet = format!("password={PASSWORD}\n");
    // A password inside base64(gzip(JSON)) in a JSON field of the request.
    let json_type = [("content-type", "application/json")];
    let nested = format!(
        r#"{{"config":"{}"}}"#,
        b64(&gzip(format!(r#"{{"password":"{PASSWORD}"}}"#).as_bytes()))
    );
    let uploads: [(&str, &[Header<'_>], &[u8]); 3] = [
        ("/e/upload", &multipart_type, &multipart),
        ("/e/upload", &octet_type, octet.as_bytes()),
        ("/e/upload", &json_type, nested.as_bytes()),
    ];
    for (path, headers, body) in uploads {
        let reply = send("POST", &format!("{}{path}", proxy.uri()), headers, body).await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    proxy.shutdown().await.unwrap();
    // Only the ordinary blob is stored: the others are gaps (their place in the order kept),
    // and the upload is not stored at all.
    let (answers_stored, gaps) = stored_answers_and_gaps(&store);
    assert_eq!((answers_stored, gaps), (1, 6));
    let out = dir.path().join("out");
    export_store(&store, &out, None).unwrap();
    for place in [&store, &out] {
        for (path, body) in &answers[..6] {
            let blob = body.split('"').nth(3).unwrap();
            assert!(
                files_containing(place, blob.as_bytes()).is_empty(),
                "{path}"
            );
        }
        assert!(files_containing(place, b"/e/upload").is_empty());
    }
}

/// The same outside the bodies: the client's token as `base64url(gzip(…))` in the query or in
/// another request header, as `hex(zlib(…))` in a path segment, or echoed by the upstream in an
/// answer header (`X-Trace-State`, a `Location`'s query or path), is never stored, nor exported; an
/// ordinary compressed blob there is.
#[tokio::test]
async fn a_credential_inside_a_compressed_blob_in_a_url_or_a_header_never_reaches_disk() {
    use base64::Engine as _;
    const TOKEN: &str = "Url-Blob-Token-55Kq81Zt";
    let b64url = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let blob = b64url(&gzip(TOKEN.as_bytes()));
    let hex_blob = hex(&zlib(TOKEN.as_bytes()));
    let plain = b64url(&gzip(b"nothing secret here"));
    let (echoed, echoed_hex) = (blob.clone(), hex_blob.clone());
    let up = scripted_upstream(move |head| {
        let header = if head.contains(" /h/echo ") {
            ("x-trace-state", echoed.clone())
        } else if head.contains(" /h/location ") {
            ("location", format!("/v2/images?state={echoed}"))
        } else if head.contains(" /h/moved ") {
            (
                "location",
                format!("https://ims.example.com/v2/images/{echoed_hex}"),
            )
        } else {
            ("x-trace-state", "plain".to_owned())
        };
        http_answer(
            "200 OK",
            &[("content-type", "application/json"), (header.0, &header.1)],
            b"{}",
        )
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let proxy = recording_through(ims_vcr::UpstreamConfig::new(&up), &store).await;
    let token = ("x-auth-token", TOKEN);
    let requests: [(String, Vec<Header<'_>>); 7] = [
        (format!("/h/query?state={blob}"), vec![token]),
        (format!("/h/path/{hex_blob}"), vec![token]),
        (
            "/h/header".to_owned(),
            vec![token, ("x-trace-state", blob.as_str())],
        ),
        ("/h/echo".to_owned(), vec![token]),
        ("/h/location".to_owned(), vec![token]),
        ("/h/moved".to_owned(), vec![token]),
        (format!("/h/kept?state={plain}"), vec![token]),
    ];
    for (path, headers) in &requests {
        let reply = send("GET", &format!("{}{path}", proxy.uri()), headers, b"").await;
        assert_eq!(reply.status, 200, "{path}: the client gets the live answer");
    }
    proxy.shutdown().await.unwrap();
    // The ordinary blob is stored; the three answers echoing the token keep their places as gaps;
    // a request holding it stores nothing.
    let out = dir.path().join("out");
    export_store(&store, &out, None).unwrap();
    assert_eq!(stored_answers_and_gaps(&store), (1, 3));
    for place in [&store, &out] {
        for needle in [&blob, &hex_blob] {
            assert!(
                files_containing(place, needle.as_bytes()).is_empty(),
                "{needle} in {place:?}"
            );
        }
        assert!(
            !files_containing(place, plain.as_bytes()).is_empty(),
            "the ordinary blob is kept"
        );
    }
}

/// Text a request sends base64-encoded in a JSON string (an instance's `user_data`: a shell
/// script setting a password with `chpasswd` or `OS_PASSWORD=`, a cloud-config with
/// `password:` and a `chpasswd` list; a field holding a JSON document as base64) has its
/// secrets masked inside, is stored encoded again with the rest of the script as sent, and
/// the request matches another run's passwords.
#[tokio::test]
async fn passwords_in_base64_user_data_never_reach_disk_and_the_request_matches_another_run() {
    use base64::Engine as _;
    let b64 = |t: &str| base64::engine::general_purpose::STANDARD.encode(t);
    let canned = canned_upstream(
        b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
            .to_vec(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let proxy = ims_vcr::ProxyServer::builder()
        .record(ims_vcr::UpstreamConfig::new(canned.clone()))
        .store(&store)
        .start()
        .await
        .unwrap();
    let json = [("content-type", "application/json")];
    let passwords = |run: &str| {
        [
            "shell-chpasswd",
            "shell-env",
            "cloud-password",
            "cloud-list",
            "doc-password",
        ]
        .map(|p| format!("{p}-{run}-Pw9"))
    };
    let body = |run: &str| {
        let [shell, env, cloud, list, doc] = passwords(run);
        let script = format!(
            "#!/bin/bash\necho 'root:{shell}' | chpasswd ;\nexport OS_PASSWORD={env}\necho kept-step\n"
        );
        let config = format!(
            "#cloud-config\npassword: {cloud}\nchpasswd:\n  list: |\n    root:{list}\n  expire: false\n"
        );
        serde_json::json!({
            "server": {"name": "web", "user_data": b64(&script)},
            "extra": [b64(&config), b64(&format!(r#"{{"auth": {{"password": "{doc}"}}, "kept": 1}}"#))],
        })
        .to_string()
    };
    let url = format!("{}/v1/servers", proxy.uri());
    let reply = send("POST", &url, &json, body("first").as_bytes()).await;
    assert_eq!(reply.header("x-ims-vcr"), Some("recorded"), "{reply:?}");
    proxy.shutdown().await.unwrap();
    let out = dir.path().join("out");
    export_store(&store, &out, None).unwrap();
    for secret in passwords("first") {
        for place in [&store, &out] {
            assert!(
                files_containing(place, secret.as_bytes()).is_empty(),
                "{secret} in {place:?}"
            );
        }
    }
    // The script as sent but for its passwords, encoded again.
    let kept = b64(
        "#!/bin/bash\necho 'root:REDACTED' | chpasswd ;\nexport OS_PASSWORD=REDACTED\necho kept-step\n",
    );
    assert!(
        !files_containing(&out, kept.as_bytes()).is_empty(),
        "the masked script, base64"
    );
    // Replay matches the same request with another run's passwords.
    let replay = ims_vcr::ProxyServer::builder()
        .replay()
        .store(&store)
        .start()
        .await
        .unwrap();
    let url = format!("{}/v1/servers", replay.uri());
    let again = send("POST", &url, &json, body("second").as_bytes()).await;
    assert_eq!(again.header("x-ims-vcr"), Some("hit"), "{again:?}");
    replay.shutdown().await.unwrap();
}

/// An image's data is a file: one that sets passwords the way a script or a cloud-config does
/// (`chpasswd` input, `passwd --stdin`), uploaded or downloaded, cannot be masked in place
/// (its checksum would not match), so the exchange is never stored; as base64 text inside a
/// JSON `user_data` field the same passwords were already found and masked.
#[tokio::test]
async fn a_script_or_cloud_config_setting_passwords_in_an_image_file_is_never_stored() {
    let cloud_config =
        "#cloud-config\nchpasswd:\n  list: |\n    root:CcChpList-222\n  expire: false\n";
    let script =
        "#!/bin/sh\necho 'root:ShChp-333' | chpasswd\necho 'ShPwd-444' | passwd --stdin admin\n";
    let served = cloud_config.to_owned();
    let up = scripted_upstream(move |head| match head.starts_with("GET ") {
        true => http_answer(
            "200 OK",
            &[("content-type", "application/octet-stream")],
            served.as_bytes(),
        ),
        false => http_answer("204 No Content", &[], b""),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let proxy = recording_through(ims_vcr::UpstreamConfig::new(&up), &store).await;
    let octet = [("content-type", "application/octet-stream")];
    for (i, file) in [cloud_config, script].iter().enumerate() {
        let url = format!("{}/v2/images/image-{i}/file", proxy.uri());
        let reply = send("PUT", &url, &octet, file.as_bytes()).await;
        assert_eq!(reply.status, 204, "{reply:?}");
    }
    let url = format!("{}/v2/images/image-0/file", proxy.uri());
    let reply = send("GET", &url, &[], b"").await;
    assert_eq!(
        reply.body,
        cloud_config.as_bytes(),
        "the client gets the live file"
    );
    proxy.shutdown().await.unwrap();
    let out = dir.path().join("out");
    export_store(&store, &out, None).unwrap();
    for place in [&store, &out] {
        for password in ["CcChpList-222", "ShChp-333", "ShPwd-444"] {
            let holding = files_containing(place, password.as_bytes());
            assert!(holding.is_empty(), "{password} in {holding:?}");
        }
    }
}

/// Signatures, HMACs and bearer tokens under headers and parameters named for them, and what
/// other Huawei Cloud services hand out beside IMS (a secret manager's secret, a key service's
/// data key, a kubeconfig's client key, a virtual MFA seed, recovery codes, key material by
/// another name), recorded through the binary: none reaches the store, a cassette, a HAR or the
/// debug log, and what describes them stays readable.
#[tokio::test]
async fn signatures_bearer_headers_and_other_services_secrets_never_reach_disk_or_log() {
    let answer = serde_json::json!({
        "version": {"version_metadata": {"id": "kept-version-id", "secret_name": "kept-secret-name"},
                    "secret_string": "ans-secret-string-01", "secret_binary": "ans-secret-binary-02"},
        "datakey": {"key_id": "kept-key-id", "plain_text": "ans-plain-text-03",
                    "plain_text_base64": "ans-plain-text-base64-04"},
        "kubeconfig": {"users": [{"name": "kept-user", "user": {"client-key-data": "ans-client-key-data-05"}}]},
        "virtual_mfa_device": {"serial_number": "kept-serial", "base32_string_seed": "ans-seed-06"},
        "recovery_codes": ["ans-recovery-07", "ans-recovery-08"],
        "private_key_content": "ans-private-key-09",
    })
    .to_string();
    let canned = canned_upstream(
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        )
        .into_bytes(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path();
    let env = [("RUST_LOG", "debug")];
    let args = [
        "record",
        "--upstream",
        &canned,
        "--listen",
        "0",
        "--store",
        "store",
    ];
    let recorder = Running::start_with_env(&args, folder, &env);
    let url = format!("{}/v1/secrets/db?sign=req-sign-10&limit=1", recorder.uri);
    let headers = [
        ("x-sign", "req-x-sign-11"),
        ("x-hmac", "req-x-hmac-12"),
        ("bearer", "req-bearer-13"),
        ("x-auth-bearer", "req-auth-bearer-14"),
    ];
    let reply = send("GET", &url, &headers, b"").await;
    assert_eq!(reply.header("x-ims-vcr"), Some("recorded"), "{reply:?}");
    assert!(
        reply.text().contains("ans-secret-string-01"),
        "the client gets it live"
    );
    let log = recorder.log();
    assert!(recorder.terminate().success());
    let (code, output) = run(&["export", "--store", "store", "--out", "out"], folder);
    assert_eq!(code, 0, "{output}");
    let (code, output) = run(
        &[
            "export", "--store", "store", "--out", "h.har", "--format", "har",
        ],
        folder,
    );
    assert_eq!(code, 0, "{output}");
    for kept in [
        "kept-version-id",
        "kept-secret-name",
        "kept-key-id",
        "kept-user",
        "kept-serial",
        "limit=1",
    ] {
        assert!(
            !files_containing(&folder.join("out"), kept.as_bytes()).is_empty(),
            "{kept}"
        );
    }
    for secret in [
        "ans-secret-string-01",
        "ans-secret-binary-02",
        "ans-plain-text-03",
        "ans-plain-text-base64-04",
        "ans-client-key-data-05",
        "ans-seed-06",
        "ans-recovery-07",
        "ans-recovery-08",
        "ans-private-key-09",
        "req-sign-10",
        "req-x-sign-11",
        "req-x-hmac-12",
        "req-bearer-13",
        "req-auth-bearer-14",
    ] {
        let hits = files_containing(folder, secret.as_bytes());
        assert!(hits.is_empty(), "{secret:?} found in {hits:?}");
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}
