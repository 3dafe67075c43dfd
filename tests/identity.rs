//! Identity traffic through the proxy: a token answer's `X-Subject-Token`, sign-in secrets in
//! request bodies and keys handed out in answer bodies are never stored; replay answers a token
//! request with a placeholder token and still matches another password; the leak gate knows the
//! answer's token.

use std::path::Path;

use ims_vcr::{ProxyServer, UpstreamConfig};

use crate::util::fake_identity::*;
use crate::util::*;

/// A fake IMS accepting the tokens of a fake identity service, and that service.
pub async fn identity_and_ims(lifetime: std::time::Duration) -> (FakeIdentity, FakeIms, Tokens) {
    let tokens = Tokens::default();
    let ims = FakeIms::start(FakeOptions {
        verifier: Some(tokens.verifier()),
        ..Default::default()
    })
    .await;
    let identity = FakeIdentity::start(IdentityOptions {
        ims_url: ims.base_url(),
        token_lifetime: lifetime,
        verifier: Some(crate::util::gateway::gateway_verifier()),
        tokens: tokens.clone(),
    })
    .await;
    (identity, ims, tokens)
}

/// The routes of one proxy in front of both: `/v3` and `/v3.0` to identity, the rest to IMS.
pub fn routes(identity: &FakeIdentity, ims: &FakeIms, dir: &Path) -> Vec<(String, UpstreamConfig)> {
    let ca = |name: &str, pem: &str| {
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        path
    };
    let mut iam = UpstreamConfig::new(identity.base_url());
    iam.ca_file = Some(ca("iam-ca.pem", identity.ca_pem()));
    let mut image = UpstreamConfig::new(ims.base_url());
    image.ca_file = Some(ca("ims-ca.pem", ims.ca_pem()));
    vec![
        ("/v3".into(), iam.clone()),
        ("/v3.0".into(), iam),
        ("/".into(), image),
    ]
}

pub async fn routed_recorder(routes: Vec<(String, UpstreamConfig)>, store: &Path) -> ProxyServer {
    let mut builder = ProxyServer::builder().mode(ims_vcr::Mode::Record);
    for (prefix, config) in routes {
        builder = builder.route(prefix, config);
    }
    builder.store(store).start().await.unwrap()
}

fn password_body(password: &str) -> String {
    serde_json::json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": USER, "password": password, "domain": {"name": DOMAIN}}}},
        "scope": {"project": {"id": PROJECT_ID}}}})
    .to_string()
}

async fn sign_in(proxy: &str, password: &str) -> Reply {
    send(
        "POST",
        &format!("{proxy}/v3/auth/tokens"),
        &[("content-type", "application/json")],
        password_body(password).as_bytes(),
    )
    .await
}

async fn security_token(proxy: &str, token: &str) -> Reply {
    let body = serde_json::json!({"auth": {"identity": {"methods": ["token"],
        "token": {"id": token, "duration_seconds": 900}}}});
    send(
        "POST",
        &format!("{proxy}/v3.0/OS-CREDENTIAL/securitytokens"),
        &[
            ("content-type", "application/json"),
            ("x-auth-token", token),
        ],
        body.to_string().as_bytes(),
    )
    .await
}

#[tokio::test]
async fn tokens_passwords_and_handed_out_keys_are_never_stored_and_replay_serves_a_placeholder_token()
 {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let (identity, ims, tokens) = identity_and_ims(std::time::Duration::from_secs(3600)).await;
    let proxy = routed_recorder(routes(&identity, &ims, dir.path()), &store).await;
    let uri = proxy.uri();

    // Recording: the client gets the live token and the live keys.
    let signed_in = sign_in(&uri, PASSWORD).await;
    assert_eq!(signed_in.status, 201, "{}", signed_in.text());
    assert_eq!(signed_in.header("x-ims-vcr"), Some("recorded"));
    let token = signed_in.header("x-subject-token").unwrap().to_owned();
    assert_eq!(tokens.all(), std::slice::from_ref(&token));
    let catalog = signed_in.json()["token"]["catalog"].clone();
    assert_eq!(
        catalog[0]["endpoints"][0]["url"],
        uri.as_str(),
        "the catalog points at the proxy"
    );
    let keys = security_token(&uri, &token).await;
    assert_eq!(keys.status, 201, "{}", keys.text());
    assert_eq!(keys.json()["credential"]["secret"], TEMP_SK);
    let image = send(
        "GET",
        &image_url(&proxy, SEED_IMAGE_ID),
        &[("x-auth-token", &token)],
        b"",
    )
    .await;
    assert_eq!(image.status, 200, "{}", image.text());
    proxy.shutdown().await.unwrap();
    identity.stop().await;
    ims.stop().await;

    for secret in [PASSWORD, &token, TEMP_AK, TEMP_SK, TEMP_SECURITY_TOKEN] {
        assert!(
            files_containing(&store, secret.as_bytes()).is_empty(),
            "{secret} stored"
        );
    }
    let exported = dir.path().join("cassettes");
    export_store(&store, &exported, None).unwrap();
    let text: String = all_files(&exported)
        .values()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    for secret in [PASSWORD, &token, TEMP_AK, TEMP_SK, TEMP_SECURITY_TOKEN] {
        assert!(!text.contains(secret), "{secret} exported");
    }
    let compact: String = text.split_whitespace().collect();
    assert!(
        compact.contains(r#"["x-ims-vcr-placeholder","x-subject-token"]"#),
        "{text}"
    );

    // Replay, upstreams gone: another password still matches; the token is a placeholder the
    // client passes back; the keys are masked, the key id a pseudonym of the same shape.
    let replay = replayer(&store).await;
    let uri = replay.uri();
    let replayed = sign_in(&uri, "another-password-entirely").await;
    assert_eq!(replayed.status, 201, "{}", replayed.text());
    assert_eq!(replayed.header("x-ims-vcr"), Some("hit"));
    assert_eq!(
        replayed.header("x-subject-token"),
        Some("ims-vcr-placeholder-token")
    );
    assert!(replayed.header("x-ims-vcr-placeholder").is_none());
    assert_eq!(
        replayed.json()["token"]["catalog"][0]["endpoints"][0]["url"],
        uri.as_str()
    );
    let keys = security_token(&uri, "ims-vcr-placeholder-token").await;
    assert_eq!(keys.header("x-ims-vcr"), Some("hit"), "{}", keys.text());
    let credential = keys.json()["credential"].clone();
    assert_eq!(credential["secret"], "REDACTED");
    assert_eq!(credential["securitytoken"], "REDACTED");
    let access = credential["access"].as_str().unwrap();
    assert_ne!(access, TEMP_AK);
    assert_eq!(access.len(), TEMP_AK.len());
    assert!(
        access
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()),
        "{access}"
    );
    let image = send(
        "GET",
        &image_url(&replay, SEED_IMAGE_ID),
        &[("x-auth-token", "ims-vcr-placeholder-token")],
        b"",
    )
    .await;
    assert_eq!(image.header("x-ims-vcr"), Some("hit"));
    let summary = replay.shutdown().await.unwrap();
    assert_eq!(summary.miss_count(), 0, "{summary}");
}

#[tokio::test]
async fn an_answer_echoing_its_own_subject_token_is_served_but_not_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let body = r#"{"echo":"leaky-subject-token-0123456789"}"#;
    let answer = format!(
        "HTTP/1.1 201 Created\r\nx-subject-token: leaky-subject-token-0123456789\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let upstream = canned_upstream(answer.into_bytes()).await;
    let proxy = recording_through(UpstreamConfig::new(upstream), &store).await;
    let reply = sign_in(&proxy.uri(), PASSWORD).await;
    assert_eq!(reply.status, 201);
    assert_eq!(
        reply.header("x-ims-vcr"),
        Some("forwarded"),
        "refused by the leak gate"
    );
    assert_eq!(
        reply.header("x-subject-token"),
        Some("leaky-subject-token-0123456789")
    );
    // The summary says so: the recording session did not record what it served.
    let summary = proxy.shutdown().await.unwrap();
    assert_eq!((summary.recorded, summary.refused), (0, 1), "{summary}");
    let printed = summary.to_string();
    assert!(
        printed.contains("REFUSED: 1 answer was served live but not recorded"),
        "{printed}"
    );
    assert!(!printed.contains("leaky-subject-token"), "{printed}");
    assert_eq!(
        stored_answers_and_gaps(&store),
        (0, 1),
        "only the refused answer's gap"
    );
}

/// A token a sign-in answer handed out is a credential wherever a later exchange of the same
/// proxy holds it (a path segment, an ordinary query parameter), not only in the header that
/// handed it out: that exchange is served but not stored, as one carrying its own token there.
/// So are the secrets an answer's body hands out (a temporary credential's `secret` and
/// `securitytoken`).
#[tokio::test]
async fn a_token_handed_out_earlier_is_never_stored_where_a_later_request_repeats_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let (identity, ims, _tokens) = identity_and_ims(std::time::Duration::from_secs(3600)).await;
    let proxy = routed_recorder(routes(&identity, &ims, dir.path()), &store).await;
    let uri = proxy.uri();
    let signed_in = sign_in(&uri, PASSWORD).await;
    assert_eq!(signed_in.status, 201, "{}", signed_in.text());
    let token = signed_in.header("x-subject-token").unwrap().to_owned();
    // And the secrets a temporary credential's answer body hands out.
    let keys = security_token(&uri, &token).await;
    assert_eq!(keys.status, 201, "{}", keys.text());
    for target in [
        format!("/v2/images/{token}"),
        format!("/v2/images?marker={token}"),
        format!("/v2/images?marker={TEMP_SECURITY_TOKEN}"),
        format!("/v2/images/{TEMP_SK}"),
    ] {
        let reply = send("GET", &format!("{uri}{target}"), &[], b"").await;
        assert_ne!(reply.status, 599, "{target}: served live");
    }
    let summary = proxy.shutdown().await.unwrap();
    assert_eq!(summary.refused, 4, "{summary}");
    for secret in [&*token, TEMP_SECURITY_TOKEN, TEMP_SK] {
        assert!(
            files_containing(&store, secret.as_bytes()).is_empty(),
            "{secret} was stored"
        );
    }
    let out = dir.path().join("cassettes");
    let (code, err) = run(
        &["export", "--store", "store", "--out", "cassettes"],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    for secret in [&*token, TEMP_SECURITY_TOKEN, TEMP_SK] {
        assert!(
            files_containing(&out, secret.as_bytes()).is_empty(),
            "{secret} was exported"
        );
    }
}

/// Moves a cassette answer's `recorded_at` and the timestamps of `fields` in its body `by`
/// earlier, as if it had been recorded then. Returns how many cassettes were changed.
pub fn make_older(dir: &Path, by: time::Duration, path: &str, fields: &[&str]) -> usize {
    let mut changed = 0;
    for (file, bytes) in all_files(dir) {
        let mut cassette: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        if cassette["request"]["path"] != path {
            continue;
        }
        let earlier = |text: &str| -> String {
            let f = &time::format_description::well_known::Rfc3339;
            let at = time::OffsetDateTime::parse(text, f).unwrap_or_else(|e| panic!("{text}: {e}"));
            let moved = at - by;
            if text.contains('.') {
                keystone_time(moved)
            } else {
                moved.format(f).unwrap()
            }
        };
        for answer in cassette["answers"].as_array_mut().unwrap() {
            let recorded = earlier(answer["recorded_at"].as_str().unwrap());
            answer["recorded_at"] = recorded.into();
            let body = &mut answer["body"]["json"];
            let mut stack = vec![body];
            while let Some(value) = stack.pop() {
                match value {
                    serde_json::Value::Object(map) => {
                        for (name, item) in map.iter_mut() {
                            match item {
                                serde_json::Value::String(s) if fields.contains(&name.as_str()) => {
                                    *s = earlier(s);
                                }
                                other => stack.push(other),
                            }
                        }
                    }
                    serde_json::Value::Array(items) => stack.extend(items.iter_mut()),
                    _ => {}
                }
            }
        }
        std::fs::write(
            dir.join(&file),
            serde_json::to_vec_pretty(&cassette).unwrap(),
        )
        .unwrap();
        changed += 1;
    }
    changed
}

fn parse_time(text: &str) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap()
}

#[tokio::test]
async fn a_replayed_token_is_as_fresh_as_when_it_was_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let (identity, ims, _tokens) = identity_and_ims(std::time::Duration::from_secs(180)).await;
    let proxy = routed_recorder(routes(&identity, &ims, dir.path()), &store).await;
    let recorded = sign_in(&proxy.uri(), PASSWORD).await.json();
    proxy.shutdown().await.unwrap();
    identity.stop().await;
    ims.stop().await;
    let cassettes = dir.path().join("cassettes");
    export_store(&store, &cassettes, None).unwrap();
    // As if recorded ten minutes ago: the token expired seven minutes ago.
    let ten_minutes = time::Duration::minutes(10);
    let fields = ["expires_at", "issued_at"];
    assert_eq!(
        make_older(&cassettes, ten_minutes, "/v3/auth/tokens", &fields),
        1
    );

    let replay = cassette_replayer(&cassettes).await;
    let before = time::OffsetDateTime::now_utc();
    let replayed = sign_in(&replay.uri(), PASSWORD).await.json();
    let after = time::OffsetDateTime::now_utc();
    replay.shutdown().await.unwrap();
    let token = &replayed["token"];
    let (expires, issued) = (
        token["expires_at"].as_str().unwrap(),
        token["issued_at"].as_str().unwrap(),
    );
    // Keystone's format, kept: six fractional digits and `Z`.
    assert_eq!(
        expires.len(),
        "2026-12-02T15:04:05.000000Z".len(),
        "{expires}"
    );
    assert!(expires.ends_with('Z') && expires.contains('.'), "{expires}");
    let slack = time::Duration::seconds(2);
    let issued = parse_time(issued);
    assert!(
        issued >= before - slack && issued <= after + slack,
        "{issued} not now"
    );
    assert_eq!(
        parse_time(expires) - issued,
        time::Duration::minutes(3),
        "{replayed}"
    );
    // The rest of the answer is as recorded.
    assert_eq!(
        token["catalog"][0]["type"],
        recorded["token"]["catalog"][0]["type"]
    );
    assert_eq!(token["project"], recorded["token"]["project"]);
}

#[tokio::test]
async fn shift_time_names_more_fields_and_is_saved_with_the_match_rules() {
    let dir = tempfile::tempdir().unwrap();
    let body = r#"{"lease":{"valid_until":"2026-12-02T15:04:05+08:00","created_at":"2026-12-02T15:04:05Z"}}"#;
    let answer = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    let upstream = canned_upstream(answer.into_bytes()).await;
    // Through the binary: the flag reaches the store's match rules.
    let recorder = Running::start(
        &[
            "record",
            "--upstream",
            &upstream,
            "--shift-time",
            "valid_until",
            "--store",
            "store",
            "--listen",
            "0",
        ],
        dir.path(),
    );
    assert_eq!(get(&format!("{}/lease", recorder.uri)).await.status, 200);
    assert!(recorder.terminate().success());
    let cassettes = dir.path().join("cassettes");
    export_store(&dir.path().join("store"), &cassettes, None).unwrap();
    let text: String = all_files(&cassettes)
        .values()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    let compact: String = text.split_whitespace().collect();
    assert!(
        compact.contains(r#""match":{"shift_time":["valid_until"]}"#),
        "{text}"
    );
    assert_eq!(
        make_older(&cassettes, time::Duration::hours(1), "/lease", &[]),
        1
    );

    let replay = cassette_replayer(&cassettes).await;
    let lease = get(&format!("{}/lease", replay.uri())).await.json();
    replay.shutdown().await.unwrap();
    let until = lease["lease"]["valid_until"].as_str().unwrap();
    assert!(until.ends_with("+08:00") && until.len() == 25, "{until}");
    let moved = parse_time(until) - parse_time("2026-12-02T15:04:05+08:00");
    assert!(
        (moved - time::Duration::hours(1)).abs() < time::Duration::seconds(5),
        "moved by {moved}"
    );
    assert_eq!(
        lease["lease"]["created_at"], "2026-12-02T15:04:05Z",
        "not named: unchanged"
    );
}

#[tokio::test]
async fn with_redaction_identity_ids_and_names_become_pseudonyms_everywhere_and_still_replay() {
    use ims_vcr::RedactionPolicy;
    use ims_vcr::secrets::pseudonym::PseudonymKey;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let (identity, ims, _tokens) = identity_and_ims(std::time::Duration::from_secs(3600)).await;
    let key = PseudonymKey::new(b"identity-test-key");
    let mut builder = ProxyServer::builder()
        .mode(ims_vcr::Mode::Record)
        .redact(RedactionPolicy::default())
        .redaction_key(key.clone());
    for (prefix, config) in routes(&identity, &ims, dir.path()) {
        builder = builder.route(prefix, config);
    }
    let proxy = builder.store(&store).start().await.unwrap();
    let uri = proxy.uri();
    let signed_in = sign_in(&uri, PASSWORD).await;
    assert_eq!(
        signed_in.json()["token"]["project"]["id"],
        PROJECT_ID,
        "live values"
    );
    // Only the path holds the project id here: replaced because the token answer named it.
    let backups = format!("/v3/{PROJECT_ID}/backups");
    assert_eq!(get(&format!("{uri}{backups}")).await.status, 404);
    proxy.shutdown().await.unwrap();
    identity.stop().await;
    ims.stop().await;
    for real in [PROJECT_ID, USER_ID, DOMAIN_ID, USER, DOMAIN, PASSWORD] {
        assert!(
            files_containing(&store, real.as_bytes()).is_empty(),
            "{real} stored"
        );
    }

    // Replay: the client signs in with its real names and project; the answer carries the
    // pseudonyms, which it uses from then on.
    let replay = ProxyServer::builder()
        .replay()
        .store(&store)
        .redaction_key(key.clone())
        .start()
        .await
        .unwrap();
    let replayed = sign_in(&replay.uri(), PASSWORD).await;
    assert_eq!(
        replayed.header("x-ims-vcr"),
        Some("hit"),
        "{}",
        replayed.text()
    );
    let token = replayed.json()["token"].clone();
    let project = key.pseudonym(PROJECT_ID);
    assert_eq!(token["project"]["id"], project.as_str());
    assert_eq!(token["user"]["name"], key.pseudonym(USER).as_str());
    assert_eq!(token["project"]["name"], REGION);
    let later = get(&format!("{}/v3/{project}/backups", replay.uri())).await;
    assert_eq!(later.header("x-ims-vcr"), Some("hit"), "{}", later.text());
    let summary = replay.shutdown().await.unwrap();
    assert_eq!(summary.miss_count(), 0, "{summary}");
}

/// In `auto`, a recorded sign-in is replayed with the placeholder token, and the client passes
/// that token on. A request that then misses must not be forwarded with it: the upstream would
/// answer 401, and `auto` would store that 401 as the request's answer for every later replay.
/// The client is told why and what to do instead; nothing reaches the upstream or the store,
/// and each such request counts as the miss it is.
#[tokio::test]
async fn a_miss_carrying_the_placeholder_token_is_not_forwarded_nor_its_refusal_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let (identity, ims, _tokens) = identity_and_ims(std::time::Duration::from_secs(3600)).await;
    let recorder = routed_recorder(routes(&identity, &ims, dir.path()), &store).await;
    assert_eq!(sign_in(&recorder.uri(), PASSWORD).await.status, 201);
    recorder.shutdown().await.unwrap();

    let mut builder = ProxyServer::builder().mode(ims_vcr::Mode::Auto);
    for (prefix, config) in routes(&identity, &ims, dir.path()) {
        builder = builder.route(prefix, config);
    }
    let auto = builder.store(&store).start().await.unwrap();
    let signed_in = sign_in(&auto.uri(), PASSWORD).await;
    assert_eq!(signed_in.header("x-ims-vcr"), Some("hit"));
    let placeholder = signed_in.header("x-subject-token").unwrap().to_owned();
    let seen = ims.requests().len();
    for (name, value) in [
        ("x-auth-token", placeholder.clone()),
        ("authorization", format!("Bearer {placeholder}")),
    ] {
        let image = send(
            "GET",
            &image_url(&auto, SEED_IMAGE_ID),
            &[(name, &value)],
            b"",
        )
        .await;
        assert_eq!(image.status, 502, "{name}: {}", image.text());
        assert_eq!(image.header("x-ims-vcr"), Some("error"));
        let text = image.text();
        assert!(
            text.contains("IMS_VCR.PLACEHOLDER_TOKEN") && text.contains("record mode"),
            "{text}"
        );
    }
    // As a credential query parameter, and as a token sign-in's `token.id`.
    let query = format!("{}?token={placeholder}", image_url(&auto, SEED_IMAGE_ID));
    let token_sign_in = serde_json::json!({"auth": {"identity": {"methods": ["token"],
        "token": {"id": placeholder}}}})
    .to_string();
    for reply in [
        send("GET", &query, &[], b"").await,
        send(
            "POST",
            &format!("{}/v3/auth/tokens", auto.uri()),
            &[("content-type", "application/json")],
            token_sign_in.as_bytes(),
        )
        .await,
    ] {
        assert_eq!(reply.status, 502, "{}", reply.text());
        assert!(
            reply.text().contains("IMS_VCR.PLACEHOLDER_TOKEN"),
            "{}",
            reply.text()
        );
    }
    // Merely mentioned (a description), it is only text: forwarded and recorded.
    let noted = send(
        "GET",
        &image_url(&auto, SEED_IMAGE_ID),
        &[("x-note", &placeholder)],
        b"",
    )
    .await;
    assert_ne!(noted.header("x-ims-vcr"), Some("error"), "{}", noted.text());
    assert_eq!(
        ims.requests().len(),
        seen + 1,
        "only the last reached the upstream"
    );
    // Neither a recording nor the upstream answered the four refused: each counts as a miss
    // (the summary, `--fail-on-miss`).
    let summary = auto.shutdown().await.unwrap();
    assert_eq!(summary.miss_count(), 4, "{summary}");
    assert!(!summary.to_string().contains("0 misses"), "{summary}");
    let (code, listed, _) = crate::util::process::run_with_stdout(
        &["ls", "--store", store.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(code, 0);
    // The sign-in, and the request that only mentioned the placeholder (answered 401 by the
    // upstream: it carried no token).
    assert!(listed.contains("/v3/auth/tokens"), "{listed}");
    assert_eq!(listed.matches("/v2/images/").count(), 1, "{listed}");
    assert!(!listed.contains("token="), "{listed}");
}

/// Keystone's EC2 credentials: the access id an answer hands out is stored as its pseudonym,
/// and so is the access id in the path of the requests that show and delete the credential
/// (and in an error that names it). Replay hands the client the pseudonym and plays those
/// requests by it, and by the real id too (a suite that deletes a key id from its own
/// configuration). Neither the real id nor the secret is stored or exported.
#[tokio::test]
async fn an_ec2_credential_is_created_shown_and_deleted_by_its_pseudonym_in_replay() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let (identity, ims, _) = identity_and_ims(std::time::Duration::from_secs(3600)).await;
    let proxy = routed_recorder(routes(&identity, &ims, dir.path()), &store).await;
    let uri = proxy.uri();
    let credentials = format!("{uri}/v3/users/{USER_ID}/credentials/OS-EC2");
    let unknown = "0000aaaa1111bbbb2222cccc3333dddd";

    let token = sign_in(&uri, PASSWORD)
        .await
        .header("x-subject-token")
        .unwrap()
        .to_owned();
    let auth = [
        ("x-auth-token", token.as_str()),
        ("content-type", "application/json"),
    ];
    let created = send("POST", &credentials, &auth, br#"{"tenant_id":"x"}"#).await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(
        created.json()["credential"]["access"],
        EC2_ACCESS,
        "the client gets the live id"
    );
    for (method, access, status) in [
        ("GET", EC2_ACCESS, 200),
        ("GET", unknown, 404),
        ("DELETE", EC2_ACCESS, 204),
    ] {
        let reply = send(method, &format!("{credentials}/{access}"), &auth, b"").await;
        assert_eq!(reply.status, status, "{method} {access}: {}", reply.text());
        assert_eq!(
            reply.header("x-ims-vcr"),
            Some("recorded"),
            "{method} {access}"
        );
    }
    proxy.shutdown().await.unwrap();
    identity.stop().await;
    ims.stop().await;
    let exported = dir.path().join("cassettes");
    export_store(&store, &exported, None).unwrap();
    for secret in [EC2_ACCESS, EC2_SECRET, unknown] {
        assert!(
            files_containing(&store, secret.as_bytes()).is_empty(),
            "{secret} stored"
        );
        assert!(
            files_containing(&exported, secret.as_bytes()).is_empty(),
            "{secret} exported"
        );
    }

    let proxy = replayer(&store).await;
    let uri = proxy.uri();
    let credentials = format!("{uri}/v3/users/{USER_ID}/credentials/OS-EC2");
    let created = send("POST", &credentials, &[], br#"{"tenant_id":"x"}"#).await;
    assert_eq!(
        created.header("x-ims-vcr"),
        Some("hit"),
        "{}",
        created.text()
    );
    let pseudonym = created.json()["credential"]["access"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(pseudonym, EC2_ACCESS);
    assert_eq!(pseudonym.len(), EC2_ACCESS.len());
    let link = created.json()["credential"]["links"]["self"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(link.ends_with(&format!("/OS-EC2/{pseudonym}")), "{link}");
    let shown = send("GET", &format!("{credentials}/{pseudonym}"), &[], b"").await;
    assert_eq!(
        (shown.status, shown.header("x-ims-vcr")),
        (200, Some("hit")),
        "{}",
        shown.text()
    );
    assert_eq!(shown.json()["credential"]["access"], pseudonym.as_str());
    let missing = send("GET", &format!("{credentials}/{unknown}"), &[], b"").await;
    assert_eq!(
        (missing.status, missing.header("x-ims-vcr")),
        (404, Some("hit")),
        "{}",
        missing.text()
    );
    assert!(!missing.text().contains(unknown), "{}", missing.text());
    for access in [pseudonym.as_str(), EC2_ACCESS] {
        let deleted = send("DELETE", &format!("{credentials}/{access}"), &[], b"").await;
        assert_eq!(
            (deleted.status, deleted.header("x-ims-vcr")),
            (204, Some("hit")),
            "{access}"
        );
    }
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn signing_in_again_lists_the_roles_in_another_order_and_the_exported_token_cassette_is_kept()
{
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = dir.path().join("cassettes");
    let (identity, ims, _tokens) = identity_and_ims(std::time::Duration::from_secs(3600)).await;
    let mut exports = Vec::new();
    let mut orders = Vec::new();
    for session in 0..2 {
        if session == 1 {
            // Another second on the clock: other `issued_at` and `expires_at` times.
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        }
        let proxy = routed_recorder(routes(&identity, &ims, dir.path()), &store).await;
        let signed_in = sign_in(&proxy.uri(), PASSWORD).await;
        assert_eq!(signed_in.status, 201, "{}", signed_in.text());
        orders.push(signed_in.json()["token"]["roles"].clone());
        proxy.shutdown().await.unwrap();
        let summary = export_store(&store, &out, None).unwrap();
        assert_eq!(summary.unchanged, session, "session {session}");
        exports.push(all_files(&out));
    }
    identity.stop().await;
    ims.stop().await;
    // The identity service listed the same roles in another order the second time.
    assert_ne!(orders[0], orders[1]);
    let names = |roles: &serde_json::Value| {
        let mut names: Vec<_> = roles
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].to_string())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&orders[0]), names(&orders[1]));
    assert_eq!(
        exports[0], exports[1],
        "signing in again churned the token's cassette"
    );
}
