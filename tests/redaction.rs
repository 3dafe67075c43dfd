//! Sanitized cassettes: consistent pseudonyms everywhere a redacted value occurs, matching with
//! real or pseudonymous values, the leak gate on every write, and `verify`.

use std::path::Path;

use base64::Engine as _;
use ims_vcr::ProxyServer;
use ims_vcr::formats::cassette;
use ims_vcr::secrets::pseudonym::PseudonymKey;
use ims_vcr::secrets::redact::{RedactionPolicy, Redactor};

use crate::util::*;

const OWNER: &str = "1bed856811654c1cb661a6ca845ebc77";
const PROJECT: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
const TOKEN: &str = "MIIsecret-token-for-the-leak-gate-0042";

fn key() -> PseudonymKey {
    PseudonymKey::new(b"team-shared-key")
}

async fn redacting_recorder(fake: &FakeIms, store: &Path) -> ProxyServer {
    ProxyServer::builder()
        .record(upstream_for(fake, store.parent().unwrap()))
        .store(store)
        .redact(RedactionPolicy::default())
        .redaction_key(key())
        .start()
        .await
        .unwrap()
}

/// A replay proxy over `store`, with the team's redaction key.
async fn replayer_with_key(store: &Path) -> ProxyServer {
    ProxyServer::builder()
        .replay()
        .store(store)
        .redaction_key(key())
        .start()
        .await
        .unwrap()
}

fn export_files(
    store: &Path,
    out: &Path,
    redactor: Option<&Redactor>,
) -> ims_vcr::Result<cassette::ExportSummary> {
    export_store(store, out, redactor)
}

#[tokio::test]
async fn record_with_redact_stores_pseudonyms_everywhere_and_serves_the_client_live_values() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let fake = FakeIms::start(FakeOptions::default()).await;
    let proxy = redacting_recorder(&fake, &store).await;
    let project = [("x-project-id", PROJECT)];
    let seed = send("GET", &image_url(&proxy, SEED_IMAGE_ID), &project, b"").await;
    assert_eq!(
        seed.json()["owner"],
        OWNER,
        "the recording client sees the live value"
    );
    send("GET", &image_url(&proxy, POLLING_IMAGE_ID), &project, b"").await;
    send(
        "GET",
        &format!("{}/v2/images?owner={OWNER}", proxy.uri()),
        &project,
        b"",
    )
    .await;
    proxy.shutdown().await.unwrap();

    for secret in [OWNER, PROJECT] {
        assert!(
            files_containing(&store, secret.as_bytes()).is_empty(),
            "{secret} in the store"
        );
    }
    let out = dir.path().join("out");
    export_files(&store, &out, None).unwrap();
    let pseudonym = key().pseudonym(OWNER);
    assert!(
        pseudonym.len() == 32
            && pseudonym
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    let files = all_files(&out);
    let owners: Vec<String> = files
        .values()
        .map(|b| serde_json::from_slice::<serde_json::Value>(b).unwrap())
        .filter_map(|v| {
            v["answers"][0]["body"]["json"]["owner"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(
        owners,
        vec![pseudonym.clone(), pseudonym.clone()],
        "two images sharing an owner keep sharing a pseudonym"
    );
    let list = files
        .iter()
        .find(|(p, _)| {
            p.to_string_lossy().starts_with("get_v2_images_") && !p.to_string_lossy().contains('-')
        })
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(list.1).unwrap();
    assert_eq!(list["request"]["query"], format!("owner={pseudonym}"));
    assert_eq!(
        list["answers"][0]["body"]["json"]["images"][0]["owner"],
        pseudonym.as_str()
    );
    assert_eq!(list["redaction"]["key_fingerprint"], key().fingerprint());
    assert_eq!(
        list["redaction"]["fields"],
        serde_json::json!(RedactionPolicy::default().fields)
    );
    for (name, bytes) in &files {
        let text = String::from_utf8_lossy(bytes);
        assert!(!text.contains("team-shared-key"), "{name:?} holds the key");
        assert!(!text.contains(OWNER) && !text.contains(PROJECT), "{name:?}");
    }
}

#[tokio::test]
async fn a_redacted_recording_matches_both_the_pseudonym_and_the_real_value() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let fake = FakeIms::start(FakeOptions::default()).await;
    let proxy = redacting_recorder(&fake, &store).await;
    get(&format!("{}/v2/images?owner={OWNER}&limit=1", proxy.uri())).await;
    // A path carrying the value and nothing else that names it (no header, no query): the
    // recorder knows it from the request before.
    let path = |id: &str| format!("/v1/{id}/cloudimages");
    get(&format!("{}{}", proxy.uri(), path(OWNER))).await;
    proxy.shutdown().await.unwrap();
    fake.stop().await;

    let replay = replayer_with_key(&store).await;
    let pseudonym = key().pseudonym(OWNER);
    for owner in [pseudonym.as_str(), OWNER] {
        let reply = get(&format!("{}{}", replay.uri(), path(owner))).await;
        assert_eq!(reply.header("x-ims-vcr"), Some("hit"), "path with {owner}");
    }
    let other = get(&format!("{}{}", replay.uri(), path("0123456789abcdef"))).await;
    assert_eq!(other.header("x-ims-vcr"), Some("miss"));
    for owner in [pseudonym.as_str(), OWNER] {
        let reply = get(&format!("{}/v2/images?limit=1&owner={owner}", replay.uri())).await;
        assert_eq!(reply.header("x-ims-vcr"), Some("hit"), "owner={owner}");
        assert_eq!(reply.json()["images"][0]["owner"], pseudonym.as_str());
    }
    replay.shutdown().await.unwrap();
    // Without its replay pack, the store is served while the pack is rebuilt behind: which
    // redaction the recordings carry is known only then, and the real value still matches.
    std::fs::remove_file(store.join(ims_vcr::storage::snapshot::PACK_FILE)).unwrap();
    let replay = replayer_with_key(&store).await;
    for owner in [OWNER, pseudonym.as_str()] {
        let reply = get(&format!("{}/v2/images?limit=1&owner={owner}", replay.uri())).await;
        assert_eq!(
            reply.header("x-ims-vcr"),
            Some("hit"),
            "owner={owner}, no pack"
        );
        assert_eq!(reply.json()["images"][0]["owner"], pseudonym.as_str());
    }
    replay.shutdown().await.unwrap();
    let other_key = ProxyServer::builder()
        .replay()
        .store(&store)
        .redaction_key(PseudonymKey::new(b"x"))
        .start()
        .await
        .unwrap();
    let reply = get(&format!(
        "{}/v2/images?limit=1&owner={OWNER}",
        other_key.uri()
    ))
    .await;
    assert_eq!(
        reply.header("x-ims-vcr"),
        Some("miss"),
        "the real value only matches with the same key"
    );
}

/// `record --redact` meets the owner in a path before any answer names it: that request is
/// stored with it raw. `export --redact` knows it by its pseudonym, which the later answer's
/// redacted `owner` holds, and no exported cassette holds the real value, whatever the order
/// the requests came in.
#[tokio::test]
async fn export_redact_replaces_a_value_record_redact_met_before_an_answer_named_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let fake = FakeIms::start(FakeOptions::default()).await;
    let proxy = redacting_recorder(&fake, &store).await;
    get(&format!("{}/v1/{OWNER}/cloudimages", proxy.uri())).await;
    get(&image_url(&proxy, SEED_IMAGE_ID)).await;
    proxy.shutdown().await.unwrap();
    fake.stop().await;
    assert!(
        !files_containing(&store, OWNER.as_bytes()).is_empty(),
        "recorded before any answer named it"
    );
    let out = dir.path().join("out");
    let redactor = Redactor::new(RedactionPolicy::default(), key());
    export_files(&store, &out, Some(&redactor)).unwrap();
    assert!(files_containing(&out, OWNER.as_bytes()).is_empty());
    let pseudonym = key().pseudonym(OWNER);
    assert!(!files_containing(&out, format!("/v1/{pseudonym}/cloudimages").as_bytes()).is_empty());
}

/// In a named session, a request matched through its real value (the recording holds its
/// pseudonym) uses that recording: the session's verdict under `--fail-on-unused` passes, as
/// in the default session (it listed the recording as never asked for, and failed).
#[tokio::test]
async fn a_session_request_matched_through_its_real_value_leaves_no_recording_unused() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let fake = FakeIms::start(FakeOptions::default()).await;
    let proxy = redacting_recorder(&fake, &store).await;
    let session = [("x-ims-vcr-session", "suite/test_owner")];
    let url = |proxy: &ProxyServer, owner: &str| {
        format!("{}/v2/images?owner={owner}&limit=1", proxy.uri())
    };
    send("GET", &url(&proxy, OWNER), &session, b"").await;
    proxy.shutdown().await.unwrap();
    fake.stop().await;

    let replay = ProxyServer::builder()
        .replay()
        .store(&store)
        .redaction_key(key())
        .fail_on_unused(true)
        .start()
        .await
        .unwrap();
    let reply = send("GET", &url(&replay, OWNER), &session, b"").await;
    assert_eq!(reply.header("x-ims-vcr"), Some("hit"));
    let stop = format!("{}/__ims-vcr/sessions/suite/test_owner/stop", replay.uri());
    let verdict = send("POST", &stop, &[], b"").await.json();
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert_eq!(verdict["unused"], serde_json::json!([]), "{verdict}");
    replay.shutdown().await.unwrap();
}

/// An answer echoing the request's headers as `[[name, value], …]` (the fake's
/// `/headers-echo`) hands the token back under its header's name: that pair's value is masked
/// as a credential's, the answer is recorded without it, and the client still gets it live. (A
/// token echoed under a name that is no credential's is refused by the leak gate: see
/// `credentials.rs` and `hardening_round3.rs`.)
#[tokio::test]
async fn an_answer_echoing_the_token_under_its_header_name_is_stored_without_it() {
    let (_dir, store, _fake, proxy) = fake_and_recorder(FakeOptions::default()).await;
    let reply = send(
        "GET",
        &format!("{}/headers-echo", proxy.uri()),
        &[("x-auth-token", TOKEN)],
        b"",
    )
    .await;
    assert_eq!(reply.status, 200, "the client is answered normally");
    assert!(String::from_utf8_lossy(&reply.body).contains(TOKEN));
    assert_eq!(reply.header("x-ims-vcr"), Some("recorded"));
    let summary = proxy.shutdown().await.unwrap();
    assert_eq!(summary.recorded, 1);
    assert_eq!(stored_answers_and_gaps(&store), (1, 0));
    assert!(files_containing(&store, TOKEN.as_bytes()).is_empty());
    assert!(!files_containing(&store, b"REDACTED").is_empty());
}

#[tokio::test]
async fn export_redact_of_a_raw_store_is_byte_stable_and_refuses_a_smuggled_value() {
    let (dir, store, _fake, proxy) = fake_and_recorder(FakeOptions::default()).await;
    get(&image_url(&proxy, SEED_IMAGE_ID)).await;
    get(&image_url(&proxy, UNKNOWN_IMAGE_ID)).await;
    proxy.shutdown().await.unwrap();
    let redactor = Redactor::new(RedactionPolicy::default(), key());

    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    export_files(&store, &a, Some(&redactor)).unwrap();
    export_files(&store, &b, Some(&redactor)).unwrap();
    assert_eq!(all_files(&a), all_files(&b));
    assert!(files_containing(&a, OWNER.as_bytes()).is_empty());
    // Re-exporting an already redacted import changes nothing (redaction is idempotent).
    let store2 = dir.path().join("store2");
    import_dir(&store2, &a).await.unwrap();
    let c = dir.path().join("c");
    export_files(&store2, &c, Some(&redactor)).unwrap();
    assert_eq!(all_files(&a), all_files(&c));

    // A body carrying the owner base64-encoded survives field redaction: the gate must refuse.
    let smuggle = dir.path().join("smuggle");
    std::fs::create_dir(&smuggle).unwrap();
    let encoded = base64::engine::general_purpose::STANDARD.encode(OWNER);
    let cassette = serde_json::json!({
        "format": 1, "tool": "hand-made",
        "request": {"method": "GET", "path": "/v2/images/x", "headers": []},
        "answers": [{"status": 200, "headers": [], "recorded_at": "2026-01-01T00:00:00Z",
                     "body": {"json": {"owner": OWNER, "note": encoded}}}]
    });
    std::fs::write(
        smuggle.join("x.json"),
        serde_json::to_vec_pretty(&cassette).unwrap(),
    )
    .unwrap();
    let store3 = dir.path().join("store3");
    import_dir(&store3, &smuggle).await.unwrap();
    let out = dir.path().join("refused");
    let err = export_files(&store3, &out, Some(&redactor))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("get_v2_images_x_") && err.contains("field owner") && err.contains("base64"),
        "{err}"
    );
    assert!(!out.exists(), "nothing written");
}

fn verify(args: &[&str]) -> (i32, String) {
    cli(Path::new("."), &[&["verify"], args].concat())
}

#[tokio::test]
async fn verify_catches_each_kind_of_leak_and_passes_a_clean_redacted_export() {
    let (dir, store, _fake, proxy) = fake_and_recorder(FakeOptions::default()).await;
    get(&image_url(&proxy, SEED_IMAGE_ID)).await;
    proxy.shutdown().await.unwrap();

    let raw = dir.path().join("raw");
    export_files(&store, &raw, None).unwrap();
    let raw_s = raw.to_str().unwrap();
    let (code, text) = verify(&[raw_s, "--deny", OWNER]);
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("/answers/0/body/json/owner: contains a denied value (--deny #1) (raw)"),
        "{text}"
    );
    let (code, text) = verify(&[raw_s, "--require-redaction"]);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("/redaction: no redaction stamp"), "{text}");

    let clean = dir.path().join("clean");
    let redactor = Redactor::new(
        RedactionPolicy::default(),
        PseudonymKey::new(ims_vcr::secrets::pseudonym::DEFAULT_KEY.as_bytes()),
    );
    export_files(&store, &clean, Some(&redactor)).unwrap();
    let deny_file = dir.path().join("deny.txt");
    std::fs::write(
        &deny_file,
        format!("# our project ids\n{OWNER}\n{PROJECT}\n"),
    )
    .unwrap();
    let clean_s = clean.to_str().unwrap();
    let (code, text) = verify(&[
        clean_s,
        "--require-redaction",
        "--deny-file",
        deny_file.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("verified 1 cassette (1 answer)"), "{text}");

    // Hand-edited leaks: a credential header, a percent-encoded and a base64 denied value.
    let (name, bytes) = all_files(&clean).into_iter().next().unwrap();
    let mut value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    value["request"]["headers"] = serde_json::json!([["X-Auth-Token", "whatever"]]);
    value["request"]["query"] = format!("next=%2Fv2%2F{OWNER}").into();
    value["answers"][0]["body"]["json"]["note"] = base64::engine::general_purpose::STANDARD
        .encode(PROJECT)
        .into();
    std::fs::write(
        clean.join(&name),
        serde_json::to_vec_pretty(&value).unwrap(),
    )
    .unwrap();
    let (code, text) = verify(&[clean_s, "--deny-file", deny_file.to_str().unwrap()]);
    assert_eq!(code, 3, "{text}");
    let file = clean.join(&name).display().to_string();
    assert!(
        text.contains(&format!(
            "{file}: /request/headers/0: credential header X-Auth-Token"
        )),
        "{text}"
    );
    assert!(
        text.contains("/request/query: contains a denied value from") && text.contains("line 2"),
        "{text}"
    );
    assert!(
        text.contains("/answers/0/body/json/note: contains a denied value from")
            && text.contains("(base64)"),
        "{text}"
    );
    assert!(
        !text.contains(OWNER) && !text.contains(PROJECT),
        "verify must not print the secrets: {text}"
    );
}

#[test]
fn verify_passes_the_shipped_cassettes() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("cassettes");
    let (code, text) = verify(&[
        shipped.to_str().unwrap(),
        "--require-redaction",
        "--deny",
        OWNER,
    ]);
    assert_eq!(code, 0, "{text}");
}

#[tokio::test]
async fn the_cli_record_redact_flags_and_config_file_extend_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions::default()).await;
    std::fs::write(
        dir.path().join("ims-vcr.toml"),
        "store = \"team-store\"\n[redact]\nenabled = true\nfields = [\"name\"]\n",
    )
    .unwrap();
    let proxy = Running::record(&fake, dir.path(), &["--redact-field", "__os_version"], &[]);
    get(&format!("{}/v2/images/{SEED_IMAGE_ID}", proxy.uri)).await;
    proxy.signal("-TERM");
    assert!(proxy.wait().success());
    let store = dir.path().join("team-store");
    for real in [OWNER, "CentOS 7.3 64bit vivado", "CentOS 7.3 64bit\""] {
        assert!(
            files_containing(&store, real.as_bytes()).is_empty(),
            "{real} stored"
        );
    }
    assert!(
        !files_containing(&store, b"\"__os_type\":\"Linux\"").is_empty(),
        "other fields are kept"
    );
}

/// Runs the binary with `args` in `dir` (the public default redaction key); exit code and output.
fn cli(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("IMS_VCR_REDACT_KEY")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test]
async fn require_redaction_checks_the_content_not_only_the_stamp() {
    let (dir, store, _fake, proxy) = fake_and_recorder(FakeOptions::default()).await;
    get(&image_url(&proxy, SEED_IMAGE_ID)).await;
    get(&format!("{}/v2/images?owner={OWNER}", proxy.uri())).await;
    proxy.shutdown().await.unwrap();
    let store_s = store.to_str().unwrap();
    let (code, text) = cli(
        dir.path(),
        &["export", "--store", store_s, "--redact", "--out", "c"],
    );
    assert_eq!(code, 0, "{text}");
    let (code, text) = cli(dir.path(), &["verify", "c", "--require-redaction"]);
    assert_eq!(code, 0, "a fresh redacted export passes: {text}");

    // A raw owner pasted into a stamped cassette: in a body field, in the query.
    let folder = dir.path().join("c");
    let files = all_files(&folder);
    let (seed_name, seed_bytes) = files
        .iter()
        .find(|(name, _)| name.to_string_lossy().contains(SEED_IMAGE_ID))
        .unwrap();
    let mut seed: serde_json::Value = serde_json::from_slice(seed_bytes).unwrap();
    seed["answers"][0]["body"]["json"]["owner"] = OWNER.into();
    std::fs::write(
        folder.join(seed_name),
        serde_json::to_vec_pretty(&seed).unwrap(),
    )
    .unwrap();
    let (list_name, list_bytes) = files
        .iter()
        .find(|(name, _)| !name.to_string_lossy().contains(SEED_IMAGE_ID))
        .unwrap();
    let mut list: serde_json::Value = serde_json::from_slice(list_bytes).unwrap();
    list["request"]["query"] = format!("owner={OWNER}").into();
    std::fs::write(
        folder.join(list_name),
        serde_json::to_vec_pretty(&list).unwrap(),
    )
    .unwrap();
    let (code, text) = cli(dir.path(), &["verify", "c", "--require-redaction"]);
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("field owner holds a value the redaction stamp does not vouch for"),
        "{text}"
    );
    assert!(
        text.contains("query parameter owner holds a value the redaction stamp does not vouch for"),
        "{text}"
    );
    assert!(
        !text.contains(OWNER),
        "verify names where, never the value: {text}"
    );

    // It does not survive import and export --redact: the pasted values become the pseudonyms
    // the rest of the folder uses.
    let (code, text) = cli(dir.path(), &["import", "c", "--store", "s2"]);
    assert_eq!(code, 0, "{text}");
    let (code, text) = cli(
        dir.path(),
        &["export", "--store", "s2", "--redact", "--out", "c2"],
    );
    assert_eq!(code, 0, "{text}");
    let (code, text) = cli(
        dir.path(),
        &["verify", "c2", "--require-redaction", "--deny", OWNER],
    );
    assert_eq!(code, 0, "{text}");
    for (name, bytes) in all_files(&dir.path().join("c2")) {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(OWNER),
            "{}",
            name.display()
        );
    }

    // A stamp written before checks existed cannot be checked: said and failed. Exporting
    // again does not vouch for it on its own; `--vouch-existing` does, on the user's word.
    let (old_name, old_bytes) = all_files(&dir.path().join("c2"))
        .into_iter()
        .next()
        .unwrap();
    let mut old: serde_json::Value = serde_json::from_slice(&old_bytes).unwrap();
    old["redaction"]
        .as_object_mut()
        .unwrap()
        .remove("pseudonym_checks")
        .unwrap();
    let c3 = dir.path().join("c3");
    std::fs::create_dir(&c3).unwrap();
    std::fs::write(c3.join(&old_name), serde_json::to_vec_pretty(&old).unwrap()).unwrap();
    let (code, text) = cli(dir.path(), &["verify", "c3", "--require-redaction"]);
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("no pseudonym checks") && text.contains("--vouch-existing"),
        "{text}"
    );
    let (code, text) = cli(dir.path(), &["import", "c3", "--store", "s3"]);
    assert_eq!(code, 0, "{text}");
    let (code, text) = cli(
        dir.path(),
        &["export", "--store", "s3", "--redact", "--out", "c3"],
    );
    assert_eq!(code, 0, "{text}");
    let (code, text) = cli(dir.path(), &["verify", "c3", "--require-redaction"]);
    assert_eq!(code, 3, "not vouched for by a plain export: {text}");
    let (code, text) = cli(
        dir.path(),
        &["export", "--store", "s3", "--vouch-existing", "--out", "c3"],
    );
    assert_eq!(code, 2, "--vouch-existing needs --redact: {text}");
    let args = [
        "export",
        "--store",
        "s3",
        "--redact",
        "--vouch-existing",
        "--out",
        "c3",
    ];
    let (code, text) = cli(dir.path(), &args);
    assert_eq!(code, 0, "{text}");
    let (code, text) = cli(dir.path(), &["verify", "c3", "--require-redaction"]);
    assert_eq!(code, 0, "{text}");
}

#[test]
fn verify_checks_the_cassettes_of_sessions_in_subfolders_too() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("cassettes");
    let team = dir.path().join("c").join("team-a");
    std::fs::create_dir_all(&team).unwrap();
    for (name, bytes) in all_files(&shipped) {
        std::fs::write(team.join(name.file_name().unwrap()), bytes).unwrap();
    }
    let (code, text) = cli(dir.path(), &["verify", "c", "--require-redaction"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("verified 3 cassettes"), "{text}");
    // A raw owner in a session's cassette is found like one at the top.
    let (name, bytes) = all_files(&team)
        .into_iter()
        .find(|(n, _)| n.to_string_lossy().contains(SEED_IMAGE_ID))
        .unwrap();
    let mut seed: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    seed["answers"][0]["body"]["json"]["owner"] = OWNER.into();
    std::fs::write(team.join(&name), serde_json::to_vec_pretty(&seed).unwrap()).unwrap();
    let (code, text) = cli(dir.path(), &["verify", "c", "--require-redaction"]);
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("team-a/") && text.contains("field owner"),
        "{text}"
    );
}

#[test]
fn verify_fails_a_folder_that_import_and_replay_refuse_for_a_request_recorded_twice() {
    let dir = tempfile::tempdir().unwrap();
    let folder = shipped_cassettes(dir.path());
    let original = "get_v2_schemas_image_6846de132b94.json";
    std::fs::copy(folder.join(original), folder.join("copy.json")).unwrap();
    let (code, err) = run(&["import", "--store", "s", "cassettes"], dir.path());
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("records the same request as"), "{err}");
    let (code, out, _) = run_with_stdout(&["verify", "cassettes"], dir.path());
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("copy.json")
            && out.contains(original)
            && out.contains("records the same request as"),
        "{out}"
    );
    // Without the copy the folder passes, as before.
    std::fs::remove_file(folder.join("copy.json")).unwrap();
    let (code, out, _) = run_with_stdout(&["verify", "cassettes"], dir.path());
    assert_eq!(code, 0, "{out}");
}

/// A polled request whose second answer the leak gate refuses (the upstream echoed the token in
/// it): replay keeps the third answer in the third place, and serves in the second a 599
/// `IMS_VCR.NOT_RECORDED` naming why, counted as a miss; `auto` asks the upstream again there and
/// stores nothing; under `--redact` the cassette keeps its redaction stamp; a refusal no later
/// answer follows stores nothing.
#[tokio::test]
async fn a_refused_answer_in_a_sequence_keeps_its_place_as_a_gap_and_the_token_never_reaches_disk()
{
    for redact in [false, true] {
        let (up, asked) = polled_upstream(|n, head| {
            let token = head
                .lines()
                .find_map(|l| l.strip_prefix("x-auth-token: "))
                .unwrap_or("")
                .trim();
            let status = ["queued", "saving", "active", "active"][n.min(3)];
            // The second answer, and the one to the fourth request, echo the token.
            let debug = if n == 1 || n == 3 { token } else { "" };
            format!(r#"{{"n":{n},"status":"{status}","debug":"{debug}","owner":"{OWNER}"}}"#)
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let mut builder = ProxyServer::builder()
            .record(ims_vcr::UpstreamConfig::new(&up))
            .store(&store)
            .redaction_key(key());
        if redact {
            builder = builder.redact(RedactionPolicy::default());
        }
        let proxy = builder.start().await.unwrap();
        let poll = |proxy: &ProxyServer| format!("{}/v2/images/polled", proxy.uri());
        let status = |reply: &Reply| {
            let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
            body["status"].as_str().unwrap_or("(none)").to_owned()
        };
        let mut recorded = Vec::new();
        for _ in 0..3 {
            let reply = send("GET", &poll(&proxy), &[("x-auth-token", TOKEN)], b"").await;
            assert_eq!(
                reply.status, 200,
                "the client recording gets every live answer"
            );
            recorded.push(status(&reply));
        }
        assert_eq!(recorded, ["queued", "saving", "active"]);
        // Refused, and nothing after it: still its gap.
        let once = format!("{}/v2/images/once", proxy.uri());
        let once = send("GET", &once, &[("x-auth-token", TOKEN)], b"").await;
        assert_eq!(once.status, 200);
        proxy.shutdown().await.unwrap();
        assert!(
            files_containing(dir.path(), TOKEN.as_bytes()).is_empty(),
            "the token reached disk"
        );
        assert_eq!(
            stored_answers(&store),
            4,
            "queued, the gap, active; the other's gap"
        );
        let out = dir.path().join("cassettes");
        export_store(&store, &out, None).unwrap();
        for cassette in all_files(&out).into_values() {
            let cassette: serde_json::Value = serde_json::from_slice(&cassette).unwrap();
            let stamped = cassette["redaction"].is_object();
            assert_eq!(stamped, redact, "redact {redact}: {cassette}");
        }

        let replay = ProxyServer::builder()
            .replay()
            .store(&store)
            .redaction_key(key())
            .start()
            .await
            .unwrap();
        let first = get(&poll(&replay)).await;
        assert_eq!((first.status, status(&first)), (200, "queued".to_owned()));
        let gap = get(&poll(&replay)).await;
        assert_eq!(gap.status, 599, "{}", gap.text());
        assert_eq!(gap.header("x-ims-vcr-not-recorded"), Some("leak-gate"));
        assert_eq!(
            gap.header("x-ims-vcr"),
            Some("miss"),
            "a gap is a miss for the test"
        );
        let body: serde_json::Value = serde_json::from_slice(&gap.body).unwrap();
        assert_eq!(body["error"]["code"], "IMS_VCR.NOT_RECORDED");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("x-auth-token") && message.contains("(status 200)"),
            "{message}"
        );
        let third = get(&poll(&replay)).await;
        assert_eq!((third.status, status(&third)), (200, "active".to_owned()));
        let once = get(&format!("{}/v2/images/once", replay.uri())).await;
        assert_eq!(once.status, 599);
        assert_eq!(once.header("x-ims-vcr"), Some("miss"));
        assert_eq!(once.header("x-ims-vcr-not-recorded"), Some("leak-gate"));
        let summary = replay.shutdown().await.unwrap();
        let missed: Vec<_> = summary.misses.iter().map(|m| m.request.as_str()).collect();
        assert!(
            missed.iter().any(|m| m.contains("/v2/images/polled")),
            "the gap counts as a miss: {missed:?}"
        );

        // `auto` asks the upstream live where the answer was not recorded, and stores nothing.
        let before = asked.load(std::sync::atomic::Ordering::SeqCst);
        let auto = ProxyServer::builder()
            .auto(ims_vcr::UpstreamConfig::new(&up))
            .store(&store)
            .redaction_key(key())
            .start()
            .await
            .unwrap();
        let mut outcomes = Vec::new();
        for _ in 0..3 {
            let reply = get(&poll(&auto)).await;
            outcomes.push(format!(
                "{} {}",
                reply.status,
                reply.header("x-ims-vcr").unwrap()
            ));
        }
        auto.shutdown().await.unwrap();
        assert_eq!(outcomes, ["200 hit", "200 forwarded", "200 hit"]);
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), before + 1);
        assert_eq!(
            stored_answers(&store),
            4,
            "auto stored nothing in the gaps' place"
        );
    }
}

/// An `ims-vcr.toml` in the working directory that cannot be read (a folder, a dangling
/// symlink, a device) is an error naming it, not skipped: skipped, its `[redact] enabled =
/// true` would be dropped and an export would write unredacted cassettes.
#[test]
fn an_unreadable_settings_file_in_the_working_directory_is_an_error_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let settings = dir.path().join("ims-vcr.toml");
    std::fs::create_dir(&settings).unwrap();
    let (code, out) = crate::util::process::run(&["ls", "--store", "nothing-here"], dir.path());
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("ims-vcr.toml"), "{out}");
    std::fs::remove_dir(&settings).unwrap();
    for target in ["nowhere", "/dev/zero"] {
        std::os::unix::fs::symlink(target, &settings).unwrap();
        let (code, out) = crate::util::process::run(&["ls", "--store", "nothing-here"], dir.path());
        assert_ne!(code, 0, "{target}: {out}");
        assert!(out.contains("ims-vcr.toml"), "{target}: {out}");
        std::fs::remove_file(&settings).unwrap();
    }
}

/// A user's name (redacted where a sign-in names it) also names the project a later sign-in is
/// scoped to, and a domain id is in a path. Export replaced them wherever recordings held them;
/// a replay run whose first request is the token sign-in (it never saw the password sign-in
/// that names the user) or `GET /v3/domains/{id}/config` still matches, with the real values as
/// with the pseudonyms, by the place a near recording holds their pseudonyms in. A standard
/// Keystone's own names (`admin`, the domain `default`) are never redacted: kept as they are in
/// role lists, interfaces and `default_project_id`.
#[tokio::test]
async fn real_values_in_places_no_policy_names_match_a_redacted_recording_by_their_pseudonyms() {
    let answer = r#"{"token": {"user": {"name": "clouduser", "domain": {"id": "eastzone", "name": "EastZone"}, "default_project_id": "p1"}, "project": {"name": "clouduser", "domain": {"id": "eastzone", "name": "EastZone"}}, "roles": [{"name": "admin"}], "catalog": [{"endpoints": [{"interface": "admin"}]}], "admin": {"domain": {"id": "default", "name": "Default"}}}}"#;
    let canned = canned_upstream(
        format!(
            "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        )
        .into_bytes(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let proxy = ProxyServer::builder()
        .record(ims_vcr::UpstreamConfig::new(canned.clone()))
        .store(&store)
        .redact(RedactionPolicy::default())
        .redaction_key(key())
        .start()
        .await
        .unwrap();
    let json = [("content-type", "application/json")];
    let scope = |project: &str, domain: &str| {
        format!(
            r#""scope": {{"project": {{"name": "{project}", "domain": {{"name": "{domain}"}}}}}}"#
        )
    };
    let password = format!(
        r#"{{"auth": {{"identity": {{"methods": ["password"], "password": {{"user": {{"name": "clouduser", "domain": {{"name": "EastZone"}}, "password": "pw-1"}}}}}}, {}}}}}"#,
        scope("clouduser", "EastZone")
    );
    let token = |project: &str, domain: &str| {
        format!(
            r#"{{"auth": {{"identity": {{"methods": ["token"], "token": {{"id": "t-1"}}}}, {}}}}}"#,
            scope(project, domain)
        )
    };
    let tokens = format!("{}/v3/auth/tokens", proxy.uri());
    for body in [password.clone(), token("clouduser", "EastZone")] {
        let reply = send("POST", &tokens, &json, body.as_bytes()).await;
        assert_eq!(reply.header("x-ims-vcr"), Some("recorded"), "{reply:?}");
    }
    let reply = get(&format!("{}/v3/domains/eastzone/config", proxy.uri())).await;
    assert_eq!(reply.header("x-ims-vcr"), Some("recorded"));
    proxy.shutdown().await.unwrap();
    let out = dir.path().join("out");
    export_files(
        &store,
        &out,
        Some(&Redactor::new(RedactionPolicy::default(), key())),
    )
    .unwrap();
    let (user, zone, zone_name) = (
        key().pseudonym("clouduser"),
        key().pseudonym("eastzone"),
        key().pseudonym("EastZone"),
    );
    assert!(!files_containing(&out, format!("/v3/domains/{zone}/config").as_bytes()).is_empty());
    // Keystone's own names stay as they are, in fields and in field names alike.
    for kept in [
        &br#""interface": "admin""#[..],
        br#""name": "admin""#,
        br#""default_project_id""#,
        br#""id": "default""#,
    ] {
        assert!(
            !files_containing(&out, kept).is_empty(),
            "{}",
            String::from_utf8_lossy(kept)
        );
    }

    for replayed_from in ["store", "cassettes"] {
        for (project, domain, path) in [
            ("clouduser", "EastZone", "eastzone"),
            (user.as_str(), zone_name.as_str(), zone.as_str()),
        ] {
            // A new run each time: nothing learned from an earlier request.
            let builder = ProxyServer::builder().replay().redaction_key(key());
            let replay = match replayed_from {
                "store" => builder.store(&store),
                _ => builder.cassettes(&out),
            }
            .start()
            .await
            .unwrap();
            let tokens = format!("{}/v3/auth/tokens", replay.uri());
            let reply = send("POST", &tokens, &json, token(project, domain).as_bytes()).await;
            assert_eq!(
                reply.header("x-ims-vcr"),
                Some("hit"),
                "{replayed_from}: token sign-in to {project}"
            );
            let reply = get(&format!("{}/v3/domains/{path}/config", replay.uri())).await;
            assert_eq!(
                reply.header("x-ims-vcr"),
                Some("hit"),
                "{replayed_from}: domain {path}"
            );
            // Another project is another request.
            let reply = send("POST", &tokens, &json, token("demo", domain).as_bytes()).await;
            assert_eq!(
                reply.header("x-ims-vcr"),
                Some("miss"),
                "{replayed_from}: demo"
            );
            replay.shutdown().await.unwrap();
        }
    }
}
