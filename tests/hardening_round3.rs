//! Third hardening round: defects from a hostile review, each fixed as a class. Match rules read
//! from files, leaks the gate missed, redaction checked by content, drift output, imports that
//! change rules, pack integrity, journal damage, deep JSON, 1xx answers, bombs and CA errors.

use std::path::{Path, PathBuf};

use crate::util::*;

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("cassettes")
}

/// A copy of the shipped cassettes with `edit` applied to the JSON of each file.
fn edited_copy(dir: &Path, edit: impl Fn(&mut serde_json::Value)) -> PathBuf {
    let out = dir.join("edited");
    std::fs::create_dir_all(&out).unwrap();
    for entry in std::fs::read_dir(shipped()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let mut value: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            edit(&mut value);
            std::fs::write(
                out.join(path.file_name().unwrap()),
                serde_json::to_vec_pretty(&value).unwrap(),
            )
            .unwrap();
        }
    }
    out
}

// ---- #6: match rules read from a file are validated like the flags ----------------------------

#[tokio::test]
async fn credential_match_headers_in_a_cassette_are_refused_by_replay_import_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    for headers in [
        vec!["x-auth-token", "cookie"],
        vec!["cookie"],
        vec!["x-project-id", "authorization"],
        vec!["user-agent"],
        vec!["connection"],
    ] {
        let folder = dir.path().join(headers.join("+"));
        std::fs::create_dir_all(&folder).unwrap();
        let cassettes = edited_copy(&folder, |v| {
            v["match"] = serde_json::json!({ "match_headers": headers });
        });
        let refused = headers.last().unwrap();
        // Replay and import read the folder through the same parser.
        let e = ims_vcr::formats::cassette::read_dir(&cassettes)
            .map(|_| ())
            .expect_err("replay --cassettes must refuse the rules");
        let message = e.to_string();
        assert!(message.contains("match.match_headers"), "{message}");
        assert!(message.contains(".json"), "names the file: {message}");
        assert!(message.contains(refused), "{message}");
        let store = folder.join("store");
        assert!(import_dir(&store, &cassettes).await.is_err(), "{headers:?}");
        // verify reports it as a finding at the field.
        let (code, out, err) =
            run_with_stdout(&["verify", cassettes.to_str().unwrap()], folder.as_path());
        assert_ne!(code, 0, "{out}{err}");
        assert!(
            out.contains("/match/match_headers/") || err.contains("/match/match_headers/"),
            "{out}{err}"
        );
    }
}

#[tokio::test]
async fn a_miss_under_matched_headers_never_prints_a_credential_value() {
    // Even a rule that slipped through validation keeps credential values out of the key.
    let rules = ims_vcr::MatchRules {
        match_headers: vec!["cookie".into()],
        ..Default::default()
    };
    let key = ims_vcr::model::key::RequestKey::new(
        &rules,
        "GET",
        "/v2/images",
        None,
        |name| match name {
            "cookie" => vec!["session=supersecretcookie"],
            _ => Vec::new(),
        },
        b"",
    );
    assert!(!key.canonical().contains("supersecretcookie"));
}

// ---- #8: secrets the leak gate missed ---------------------------------------------------------

/// Records one GET through a proxy in front of `upstream` (with `config` applied) sending
/// `headers`; returns the client's answer and how many live answers (not gaps) the store holds
/// afterwards.
async fn record_one(
    upstream: &str,
    headers: &[(&str, &str)],
    config: impl FnOnce(&mut ims_vcr::UpstreamConfig),
) -> (Reply, usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let mut upstream = ims_vcr::UpstreamConfig::new(upstream);
    upstream.timeout = std::time::Duration::from_secs(5);
    config(&mut upstream);
    let proxy = recording_through(upstream, &store).await;
    let reply = send("GET", &format!("{}/v2/images", proxy.uri()), headers, b"").await;
    proxy.shutdown().await.unwrap();
    // A refused answer leaves its gap, never the answer: the answers are what counts here.
    (reply, stored_answers_and_gaps(&store).0)
}

#[tokio::test]
async fn secrets_echoed_in_forms_the_gate_missed_are_never_recorded() {
    use base64::Engine as _;
    // A token echoed with Go-style `\u003c` escapes in a body stored as text (not compact JSON).
    let token = "tok<en-4455667788";
    let up = scripted_upstream(|_| {
        http_answer(
            "200 OK",
            &[("content-type", "application/json")],
            b"{ \"echo\": \"tok\\u003cen-4455667788\" }",
        )
    })
    .await;
    let (reply, stored) = record_one(&up, &[("x-auth-token", token)], |_| {}).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        stored, 0,
        "a JSON-escaped token in a text body was recorded"
    );

    // The decoded password of `Authorization: Basic`.
    let basic = base64::engine::general_purpose::STANDARD.encode("alice:hunter2-pass-9911");
    let up = scripted_upstream(|_| {
        http_answer(
            "200 OK",
            &[("content-type", "text/plain")],
            b"hello alice, your password is hunter2-pass-9911",
        )
    })
    .await;
    let (_, stored) =
        record_one(&up, &[("authorization", &format!("Basic {basic}"))], |_| {}).await;
    assert_eq!(stored, 0, "a Basic password was recorded");

    // A session cookie the answer sets, copied into `Location` and the body.
    for copy in ["location", "body"] {
        let up = scripted_upstream(move |_| {
            let cookie = ("set-cookie", "sid=cookie-secret-778899; Path=/; HttpOnly");
            if copy == "location" {
                http_answer(
                    "200 OK",
                    &[cookie, ("location", "/next?sid=cookie-secret-778899")],
                    b"{}",
                )
            } else {
                http_answer(
                    "200 OK",
                    &[cookie, ("content-type", "text/plain")],
                    b"sid=cookie-secret-778899",
                )
            }
        })
        .await;
        let (_, stored) = record_one(&up, &[], |_| {}).await;
        assert_eq!(
            stored, 0,
            "a Set-Cookie secret copied into the {copy} was recorded"
        );
    }

    // The proxy's own AK/SK signature, echoed by the upstream.
    let up = scripted_upstream(|head| {
        let signature = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
            .and_then(|l| l.split("Signature=").nth(1))
            .unwrap_or("none")
            .trim()
            .to_owned();
        http_answer(
            "200 OK",
            &[("content-type", "text/plain")],
            format!("sig {signature}").as_bytes(),
        )
    })
    .await;
    let (reply, stored) = record_one(&up, &[], |c| {
        c.credentials = Some(ims_vcr::net::signer::Credentials {
            ak: "AKPROXYOWN0000000001".into(),
            sk: "proxy-secret-key-000000000000000000001".into(),
            security_token: None,
        });
    })
    .await;
    assert!(
        reply.text().starts_with("sig ") && reply.text().len() > 20,
        "{}",
        reply.text()
    );
    assert_eq!(stored, 0, "the proxy's own signature, echoed, was recorded");

    // Two gzip layers in two `Content-Encoding` headers: both decoded, the token seen.
    let layered = gzip(&gzip(b"{\"echo\":\"layered-token-55443322\"}"));
    let up = scripted_upstream(move |_| {
        http_answer(
            "200 OK",
            &[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
                ("content-encoding", "gzip"),
            ],
            &layered,
        )
    })
    .await;
    let (reply, stored) =
        record_one(&up, &[("x-auth-token", "layered-token-55443322")], |_| {}).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body, b"{\"echo\":\"layered-token-55443322\"}",
        "served decoded"
    );
    assert_eq!(stored, 0, "a token under two gzip layers was recorded");

    // One header, two layers: the stored (still gzip) bytes are scanned through.
    let layered = gzip(&gzip(b"{\"echo\":\"layered-token-55443322\"}"));
    let up = scripted_upstream(move |_| {
        http_answer(
            "200 OK",
            &[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            &layered,
        )
    })
    .await;
    let (_, stored) = record_one(&up, &[("x-auth-token", "layered-token-55443322")], |_| {}).await;
    assert_eq!(
        stored, 0,
        "a token under a second, undeclared gzip layer was recorded"
    );

    // An encoding the proxy did not ask for and cannot decode is refused, not stored encoded.
    let up = scripted_upstream(|_| {
        http_answer(
            "200 OK",
            &[
                ("content-type", "application/json"),
                ("content-encoding", "br"),
            ],
            b"\x0b\x02\x80{}\x03",
        )
    })
    .await;
    let (reply, stored) = record_one(&up, &[], |_| {}).await;
    assert_eq!(reply.status, 502, "{}", reply.text());
    assert!(reply.text().contains("br"), "{}", reply.text());
    assert_eq!(stored, 0);
}

/// An upstream error page echoing the request's token in an encoding the gate did not search:
/// HTML character references (Go's html/template writes `+` as `&#43;`, `/` as `&#x2f;`), the
/// named ones, percent-encoded twice, and UTF-16. None is recorded; the same page without the
/// token is.
#[tokio::test]
async fn a_token_echoed_html_escaped_percent_encoded_twice_or_in_utf16_is_never_recorded() {
    const TOKEN: &str = "MIIEpQYJKoZIhvcNAQcCoIIElj+gAw/IBATENMAsGCWCGSAFlAwQCATCCAq+SECRETtail";
    let page = |token: &str| format!("<html><p>token {token} is not valid</p></html>").into_bytes();
    let utf16 = |token: &str, le: bool| -> Vec<u8> {
        token
            .encode_utf16()
            .flat_map(|u| if le { u.to_le_bytes() } else { u.to_be_bytes() })
            .collect()
    };
    for (what, body) in [
        (
            "numeric references",
            page(&TOKEN.replace('+', "&#43;").replace('/', "&#x2f;")),
        ),
        (
            "decimal references",
            page(&TOKEN.replace('+', "&#43;").replace('/', "&#47;")),
        ),
        (
            "named references",
            page(
                &format!("{TOKEN}&\"<>")
                    .replace('&', "&amp;")
                    .replace('"', "&quot;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;"),
            ),
        ),
        (
            "percent-encoded twice",
            page(&TOKEN.replace('+', "%252B").replace('/', "%252F")),
        ),
        ("utf-16le", utf16(TOKEN, true)),
        ("utf-16be", utf16(TOKEN, false)),
        ("nothing", page("(hidden)")),
    ] {
        let up = scripted_upstream(move |_| {
            http_answer(
                "401 Unauthorized",
                &[("content-type", "text/html; charset=utf-8")],
                &body,
            )
        })
        .await;
        let (reply, stored) = record_one(&up, &[("x-auth-token", TOKEN)], |_| {}).await;
        assert_eq!(reply.status, 401, "{what}: the client gets the live answer");
        let expected = usize::from(what == "nothing");
        assert_eq!(
            stored, expected,
            "a token echoed as {what}: stored {stored}"
        );
    }
}

// ---- #17: informational answers, #19: deflate bombs -------------------------------------------

#[tokio::test]
async fn a_1xx_final_answer_is_refused_with_a_502_naming_it_and_never_recorded() {
    for status in ["101 Switching Protocols"] {
        let up = scripted_upstream(move |_| {
            format!("HTTP/1.1 {status}\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n")
                .into_bytes()
        })
        .await;
        let (reply, stored) = record_one(&up, &[], |_| {}).await;
        assert_eq!(reply.status, 502, "{status}: {}", reply.text());
        assert!(reply.text().contains(&status[..3]), "{}", reply.text());
        assert_eq!(stored, 0, "{status}");
    }
}

#[tokio::test]
async fn a_status_past_599_is_refused_with_a_502_naming_it_and_never_recorded() {
    // hyper reads any three digits; a cassette holding one would be refused by every reader.
    for status in ["600 Odd", "999 Odd"] {
        let up = scripted_upstream(move |_| {
            http_answer(status, &[("content-type", "application/json")], b"{}")
        })
        .await;
        let (reply, stored) = record_one(&up, &[], |_| {}).await;
        assert_eq!(reply.status, 502, "{status}: {}", reply.text());
        let text = reply.text();
        assert!(
            text.contains(&status[..3]) && text.contains("no HTTP status"),
            "{text}"
        );
        assert_eq!(stored, 0, "{status}");
    }
}

#[tokio::test]
async fn a_json_answer_ending_with_its_connection_cut_short_is_a_502_and_a_whole_one_is_recorded() {
    // Plain HTTP, no length, no chunks: the end of the connection is the end of the answer, so
    // a cut reads as a whole answer; JSON that ends before its document does tells it apart.
    // JSON that is whole but no parser's (a byte-order mark, `NaN`, an HTML page under a JSON
    // type, a stream of documents) is the upstream's answer, recorded as it is.
    let cases: [(&str, &[u8], bool); 7] = [
        ("application/json", br#"{"id": "1111-"#, false),
        ("application/json; charset=utf-8", br#"{"id": ["#, false),
        ("application/json", br#"{"id": "1111"}"#, true),
        ("application/json", b"\xEF\xBB\xBF{\"v\": 1}", true),
        ("application/json", br#"{"v": NaN}"#, true),
        ("application/json", b"<html>502</html>", true),
        ("application/x-ndjson", b"{\"a\": 1}\n{\"b\": 2}\n", true),
    ];
    for (content_type, body, whole) in cases {
        let up = scripted_upstream(move |_| {
            let mut out = format!(
                "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-type: {content_type}\r\n\r\n"
            )
            .into_bytes();
            out.extend_from_slice(body);
            out
        })
        .await;
        let (reply, stored) = record_one(&up, &[], |_| {}).await;
        match whole {
            true => assert_eq!((reply.status, stored), (200, 1), "{content_type} {body:?}"),
            false => {
                assert_eq!((reply.status, stored), (502, 0), "{}", reply.text());
                assert!(reply.text().contains("does not parse"), "{}", reply.text());
            }
        }
    }
}

#[tokio::test]
async fn a_transfer_coding_besides_chunked_is_undone_before_the_answer_is_served_or_stored() {
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(br#"{"id":"te-1"}"#).unwrap();
    let gzipped = gz.finish().unwrap();
    let up = scripted_upstream(move |_| {
        let mut out = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-type: application/json\r\n\
            transfer-encoding: gzip, chunked\r\n\r\n"
            .to_vec();
        out.extend_from_slice(format!("{:x}\r\n", gzipped.len()).as_bytes());
        out.extend_from_slice(&gzipped);
        out.extend_from_slice(b"\r\n0\r\n\r\n");
        out
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let proxy = recording_through(ims_vcr::UpstreamConfig::new(&up), &store).await;
    let reply = send("GET", &format!("{}/v2/images", proxy.uri()), &[], b"").await;
    proxy.shutdown().await.unwrap();
    assert_eq!(
        (reply.status, reply.text()),
        (200, r#"{"id":"te-1"}"#.to_owned())
    );
    let store = ims_vcr::storage::store::Store::open(&store).unwrap();
    let recordings = store.load(&store.rules().unwrap()).unwrap();
    let stored = &recordings[0].answers[0].response;
    assert_eq!(
        ims_vcr::model::interaction::body_bytes(&stored.body).unwrap(),
        &br#"{"id":"te-1"}"#[..]
    );
    assert!(
        !stored.headers.iter().any(|(n, _)| n.contains("encoding")),
        "{:?}",
        stored.headers
    );
}

#[tokio::test]
async fn every_token_header_an_answer_hands_out_replays_as_a_placeholder_and_a_saml_assertion_is_never_stored()
 {
    // IAM's login token (`X-Subject-LoginToken`) and Swift v1's tokens, besides Keystone's
    // `X-Subject-Token`; Keystone's K2K `saml2` answer is a signed assertion, a bearer
    // credential whole.
    let saml = r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"><saml:Assertion ID="a1"><saml:NameID>bob</saml:NameID><ds:SignatureValue>SamlSig-4242</ds:SignatureValue></saml:Assertion></samlp:Response>"#;
    let up = scripted_upstream(move |_| {
        http_answer(
            "201 Created",
            &[
                ("content-type", "text/xml"),
                ("x-subject-logintoken", "LoginTok-4242"),
                ("x-storage-token", "StorageTok-4242"),
                ("set-cookie", "sid=Cookie-4242"),
            ],
            saml.as_bytes(),
        )
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let proxy = recording_through(ims_vcr::UpstreamConfig::new(&up), &store).await;
    let url = format!("{}/v3/auth/OS-FEDERATION/saml2", proxy.uri());
    let live = send("POST", &url, &[("content-type", "application/json")], b"{}").await;
    proxy.shutdown().await.unwrap();
    assert_eq!(live.header("x-subject-logintoken"), Some("LoginTok-4242"));
    assert!(
        live.text().contains("SamlSig-4242"),
        "the client recording gets the live answer"
    );
    for secret in [
        "LoginTok-4242",
        "StorageTok-4242",
        "Cookie-4242",
        "SamlSig-4242",
    ] {
        assert!(
            files_containing(&store, secret.as_bytes()).is_empty(),
            "{secret} was stored"
        );
    }
    let replay = replayer(&store).await;
    let url = format!("{}/v3/auth/OS-FEDERATION/saml2", replay.uri());
    let reply = send("POST", &url, &[("content-type", "application/json")], b"{}").await;
    assert_eq!(reply.header("x-ims-vcr"), Some("hit"), "{reply:?}");
    for header in ["x-subject-logintoken", "x-storage-token"] {
        assert_eq!(
            reply.header(header),
            Some("ims-vcr-placeholder-token"),
            "{header}"
        );
    }
    assert_eq!(reply.header("set-cookie"), None);
    assert!(
        reply
            .text()
            .contains(r#"<saml:Assertion ID="a1">REDACTED</saml:Assertion>"#),
        "{}",
        reply.text()
    );
}

#[tokio::test]
async fn a_safe_request_a_reused_connection_took_but_never_answered_is_sent_again() {
    // Each connection answers its first request (keep-alive) and closes on its second without
    // a word, as an upstream whose keep-alive timeout runs out as a request arrives does.
    use tokio::io::AsyncWriteExt as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let head = read_head(&mut stream).await;
                let body = if head.starts_with(b"POST") {
                    "post"
                } else {
                    "get"
                };
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                read_head(&mut stream).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let proxy =
        recording_through(ims_vcr::UpstreamConfig::new(&up), &dir.path().join("store")).await;
    let methods = ["GET", "GET", "GET", "POST", "GET", "DELETE"];
    for (i, method) in methods.into_iter().enumerate() {
        // A new path each time: each request is recorded, none replayed.
        let url = format!("{}/v2/images/{i}", proxy.uri());
        let reply = send(method, &url, &[], b"").await;
        match method {
            // The first takes a new connection; the others a reused one, which closes: a GET
            // is sent again, a DELETE or a POST never (the upstream may have acted on it).
            "GET" => assert_eq!((reply.status, reply.text()), (200, "get".to_owned()), "{i}"),
            _ => assert_eq!(reply.status, 502, "{method}: {}", reply.text()),
        }
    }
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_deflate_bomb_is_reported_as_too_large() {
    use std::io::Write as _;
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    zlib.write_all(&vec![0u8; 80 << 20]).unwrap();
    let bomb = zlib.finish().unwrap();
    let up = scripted_upstream(move |_| {
        http_answer(
            "200 OK",
            &[
                ("content-type", "application/json"),
                ("content-encoding", "deflate"),
            ],
            &bomb,
        )
    })
    .await;
    let (reply, stored) = record_one(&up, &[], |_| {}).await;
    assert_eq!(reply.status, 502, "{}", reply.text());
    assert!(reply.text().contains("too-large"), "{}", reply.text());
    assert_eq!(stored, 0);
}

// ---- --upstream-ca with a CA certificate as the server's own ----------------------------------

#[tokio::test]
async fn a_self_signed_ca_certificate_as_the_upstreams_own_gets_an_error_saying_what_is_needed() {
    // What a plain `openssl req -x509` makes: self-signed, basicConstraints CA:TRUE.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    let up = tls_upstream(&cert.pem(), &key.serialize_pem()).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, cert.pem()).unwrap();
    let (reply, stored) = record_one(&up, &[], |c| c.ca_file = Some(ca.clone())).await;
    assert_eq!(reply.status, 502, "{}", reply.text());
    let text = reply.text();
    assert!(text.contains("CaUsedAsEndEntity"), "{text}");
    assert!(
        text.contains("leaf certificate") && text.contains("docs/guide.md"),
        "{text}"
    );
    assert_eq!(stored, 0);
}

// ---- #3: a deeply nested answer never takes the store down -------------------------------------

#[tokio::test]
async fn an_answer_nested_125_levels_deep_is_recorded_and_the_store_still_lists_exports_and_imports()
 {
    let deep = format!("{}1{}", "[".repeat(125), "]".repeat(125));
    let body = deep.clone().into_bytes();
    let up = scripted_upstream(move |_| {
        http_answer("200 OK", &[("content-type", "application/json")], &body)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let mut config = ims_vcr::UpstreamConfig::new(up);
    config.timeout = std::time::Duration::from_secs(5);
    let proxy = recording_through(config, &store).await;
    let reply = get(&format!("{}/v2/images/deep", proxy.uri())).await;
    assert_eq!(reply.body, deep.as_bytes());
    proxy.shutdown().await.unwrap();
    assert_eq!(stored_answers(&store), 1);
    let (code, out, err) = run_with_stdout(&["ls", "--store", store.to_str().unwrap()], dir.path());
    assert_eq!(code, 0, "ls: {out}{err}");
    let (code, out, err) = run_with_stdout(
        &[
            "show",
            "--store",
            store.to_str().unwrap(),
            "/v2/images/deep",
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "show: {out}{err}");
    let out_dir = dir.path().join("out");
    export_store(&store, &out_dir, None).expect("export");
    import_dir(&dir.path().join("again"), &out_dir)
        .await
        .expect("import");
    let replayer = cassette_replayer(&out_dir).await;
    let reply = get(&format!("{}/v2/images/deep", replayer.uri())).await;
    assert_eq!(reply.body, deep.as_bytes());
}

// ---- #1: import never changes a store's match rules --------------------------------------------

#[tokio::test]
async fn import_with_other_match_rules_into_a_non_empty_store_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let rules = |store: &Path| {
        let s = ims_vcr::storage::store::Store::open(store).unwrap();
        (s.rules().unwrap(), s.len())
    };
    // A store recorded with --match-header x-project-id.
    let matched = edited_copy(&dir.path().join("m"), |v| {
        v["match"] = serde_json::json!({ "match_headers": ["x-project-id"] });
    });
    let (code, err) = run(
        &[
            "import",
            "--store",
            store.to_str().unwrap(),
            matched.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    let before = rules(&store);
    assert_eq!(before.0.match_headers, vec!["x-project-id".to_owned()]);
    // The same requests under the default rules, and an empty folder (the default rules too).
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    for folder in [shipped(), empty] {
        let (code, err) = run(
            &[
                "import",
                "--store",
                store.to_str().unwrap(),
                folder.to_str().unwrap(),
            ],
            dir.path(),
        );
        assert_eq!(
            rules(&store),
            before,
            "{folder:?}: the store changed: {err}"
        );
        if folder.read_dir().unwrap().next().is_some() {
            assert_ne!(code, 0, "{err}");
            assert!(
                err.contains("x-project-id") && err.contains("match rules"),
                "{err}"
            );
        } else {
            assert_eq!(code, 0, "{err}");
        }
    }
}
