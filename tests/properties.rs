//! Properties over generated inputs, checked by the oracle the `fuzz/` targets share
//! (`tests/util/oracle.rs`: cassette round trip, stable request keys, safe and idempotent
//! redaction), plus pseudonym formats and body encoding.
//! 256 cases each by default; `PROPTEST_CASES=10000 cargo test properties` digs deeper.

use std::path::Path;

use ims_vcr::formats::cassette::{MAX_LATENCY_MS, parse};
use ims_vcr::model::credentials::{strip_userinfo, unmasked_in_path, unmasked_in_query};
use ims_vcr::model::headers::{is_credential, is_hop_by_hop};
use ims_vcr::model::interaction::{Body, Interaction, RecordedRequest, RecordedResponse};
use ims_vcr::model::key::{MatchRules, RequestKey};
use ims_vcr::model::recording::Recording;
use ims_vcr::secrets::pseudonym::PseudonymKey;
use ims_vcr::secrets::redact::{RedactionPolicy, RedactionStamp, Redactor, find_leak};
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::Value;

use crate::util::{fixtures, oracle};

fn config() -> ProptestConfig {
    // An explicit `cases` would shadow proptest's own reading of `PROPTEST_CASES`: keep it.
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---- generators -----------------------------------------------------------------------------

/// Any JSON document, nested a few levels, with strings that need escaping.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec((any::<String>(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// Body bytes of every kind the encoder distinguishes: compact JSON, pretty JSON, text, binary.
fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        json().prop_map(|v| serde_json::to_vec_pretty(&v).unwrap()),
        any::<String>().prop_map(String::into_bytes),
        any::<Vec<u8>>(),
    ]
}

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    // Hop-by-hop headers (`te`, `connection`) are framing, left out when a cassette is read.
    let name = "[a-z][a-z0-9-]{0,12}".prop_filter("credentials never reach a cassette", |n| {
        !is_credential(n) && !is_hop_by_hop(n)
    });
    let value = "[ -~]{0,24}".prop_filter("credentials never reach a cassette", |v| {
        ims_vcr::model::params::mask_header_value(v).is_none()
    });
    vec((name, value), 0..4)
}

fn request() -> impl Strategy<Value = RecordedRequest> {
    (
        prop_oneof![
            prop::sample::select(vec!["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
                .prop_map(str::to_owned),
            "[A-Z]{1,10}",
        ],
        // A credential path parameter (`;AK=…`) is stored masked, as a query's is.
        "/[A-Za-z0-9._~!$&'()*+,;=:@/%-]{0,40}"
            .prop_filter("credentials never reach a cassette", |p| {
                unmasked_in_path(p).is_empty()
            }),
        proptest::option::of(
            "[A-Za-z0-9._~!$&'()*+,;=:@/?%-]{0,40}"
                .prop_filter("credentials never reach a cassette", |q| {
                    unmasked_in_query(q).is_empty()
                }),
        ),
        headers(),
        body_bytes(),
    )
        .prop_map(|(method, path, query, headers, body)| RecordedRequest {
            method,
            path,
            query,
            headers,
            body: Body::from_bytes(&body),
            session: None,
        })
        // A body field named like a credential (`{"pW": 0}`, which generated names hit now and
        // then) is stored masked: as the leak gate masks it, and the cassette reader checks.
        .prop_filter("credentials never reach a cassette", |r| {
            let content_type = ims_vcr::model::headers::value_of(&r.headers, "content-type");
            let bytes = r.body.as_ref().map(|b| b.to_bytes().unwrap_or_default());
            bytes.is_none_or(|b| ims_vcr::model::credentials::mask_body(&b, content_type).is_none())
        })
}

/// Whether an answer body hands out nothing a cassette refuses (a field named like a secret,
/// `{"ak": "..."}`, which generated names hit now and then).
fn hands_out_no_secret(body: &[u8]) -> bool {
    use ims_vcr::model::answer_secrets::{mask_answer_json, mask_answer_text};
    match serde_json::from_slice::<Value>(body) {
        Ok(mut json) => mask_answer_json(&mut json, &str::to_owned).is_empty(),
        Err(_) => std::str::from_utf8(body).map_or(true, |text| mask_answer_text(text).is_none()),
    }
}

fn response() -> impl Strategy<Value = RecordedResponse> {
    (
        200..=599u16,
        headers(),
        body_bytes().prop_filter("credentials never reach a cassette", |b| {
            hands_out_no_secret(b)
        }),
        // `parse` reads `recorded_at` as an RFC 3339 date-time from 1970 on, or empty.
        prop_oneof![
            Just(String::new()),
            (
                1970..=2025i32,
                1..=12u8,
                1..=28u8,
                0..=23u8,
                0..=59u8,
                0..=59u8
            )
                .prop_map(|(y, mo, d, h, mi, s)| format!(
                    "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"
                )),
        ],
        // Longer than a year is no measured latency: `parse` refuses it.
        0..=MAX_LATENCY_MS,
        // An origin, or empty (a cassette's `upstream` must be one).
        prop_oneof![
            Just(String::new()),
            (
                "https?",
                "[a-z0-9][a-z0-9.-]{0,15}",
                proptest::option::of(1..=65535u16)
            )
                .prop_map(|(scheme, host, port)| match port {
                    Some(port) => format!("{scheme}://{host}:{port}"),
                    None => format!("{scheme}://{host}"),
                }),
        ]
        .prop_filter("credentials never reach a cassette", |u| {
            strip_userinfo(u).1.is_none()
        }),
    )
        .prop_map(
            |(status, headers, body, recorded_at, latency_ms, upstream)| RecordedResponse {
                status,
                headers,
                body: Body::from_bytes(&body),
                recorded_at,
                latency_ms,
                upstream,
                other_upstreams: Vec::new(),
            },
        )
}

fn rules() -> impl Strategy<Value = MatchRules> {
    // Only names match rules accept: no credential, hop-by-hop or volatile header.
    let header = "[a-z][a-z0-9-]{0,10}".prop_filter("rules refuse it", |n| {
        let rules = MatchRules {
            match_headers: vec![n.clone()],
            ..MatchRules::default()
        };
        rules.validate().is_ok() && !ims_vcr::model::credentials::is_credential_name(n)
    });
    // A parameter name is never empty (`--ignore-query=` and a cassette's empty name are refused).
    let name = "\\PC{0,8}".prop_filter("a name", |n: &String| !n.trim().is_empty());
    (vec(header, 0..3), vec(name, 0..3)).prop_map(|(match_headers, ignore_query)| MatchRules {
        match_headers,
        ignore_query,
        volatile: Default::default(),
        shift_time: Vec::new(),
    })
}

fn stamp() -> impl Strategy<Value = Option<RedactionStamp>> {
    let names = || vec("\\PC{1,10}", 0..3);
    // A fingerprint as a redaction key gives one: `parse` refuses any other.
    let fingerprint = "[0-9a-f]{16}".prop_map(|digits| format!("hmac-sha256:{digits}"));
    proptest::option::of((names(), names(), names(), fingerprint).prop_map(
        |(fields, headers, query, key_fingerprint)| RedactionStamp {
            policy: RedactionPolicy {
                fields,
                headers,
                query,
            },
            key_fingerprint,
            pseudonym_checks: None,
        },
    ))
}

/// A recording as `parse` builds one: one request, its answers, one stamp on all of them.
fn recording() -> impl Strategy<Value = (Recording, MatchRules)> {
    (request(), vec(response(), 1..4), stamp(), rules()).prop_map(
        |(request, responses, redaction, rules)| {
            (
                fixtures::recording(&rules, request, responses, redaction),
                rules,
            )
        },
    )
}

// ---- cassettes ------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_rendered_cassette_parses_back_to_the_same_recording((recording, rules) in recording()) {
        oracle::cassette_round_trips(&recording, &rules);
    }

    #[test]
    fn parsing_arbitrary_bytes_never_panics(bytes in prop_oneof![
        any::<Vec<u8>>(),
        json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
    ]) {
        let _ = parse(Path::new("p.json"), &bytes);
    }
}

// ---- request keys ---------------------------------------------------------------------------

/// `name=value` pairs as clients write them: `+` and `%20`, escapes in either case, repeats.
fn query_pairs() -> impl Strategy<Value = Vec<String>> {
    vec("[a-c%+~ 0-9A-F]{0,4}=[a-c%+~ 0-9A-F=]{0,5}", 0..6)
}

/// `shuffled` with each (decoded) name's pairs put back in their order in `original`.
fn keep_each_names_order(original: &[String], shuffled: &[String]) -> Vec<String> {
    let name = |pair: &str| {
        form_urlencoded::parse(pair.as_bytes())
            .next()
            .map(|(k, _)| k.into_owned())
    };
    let mut queues: std::collections::HashMap<_, std::collections::VecDeque<&String>> =
        std::collections::HashMap::new();
    for pair in original {
        queues.entry(name(pair)).or_default().push_back(pair);
    }
    shuffled
        .iter()
        .map(|pair| {
            queues
                .get_mut(&name(pair))
                .and_then(std::collections::VecDeque::pop_front)
                .expect("a shuffle holds the same pairs")
                .clone()
        })
        .collect()
}

fn key(
    rules: &MatchRules,
    method: &str,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> RequestKey {
    RequestKey::new(rules, method, path, query, |_| vec![], body)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_canonical_form_is_a_fixed_point(
        method in "[A-Za-z]{1,8}",
        // hyper never hands over a path with `?` or line breaks; the pieces exercise escapes,
        // stray `%` and their neighbours.
        path in prop_oneof![
            "[^?\r\n]{0,30}",
            vec(prop_oneof!["%", "%[0-9a-fA-F]{2}", "[0-9a-fA-F]", "[/~.é]"], 0..10)
                .prop_map(|p| p.concat()),
        ],
        pairs in query_pairs(),
        ignore in vec("[a-c]{1,2}", 0..2),
        body in body_bytes(),
    ) {
        let rules = MatchRules { match_headers: vec![], ignore_query: ignore , volatile: Default::default(), shift_time: Vec::new() };
        let first = key(&rules, &method, &path, Some(&pairs.join("&")), &body);

        oracle::canonical_form_is_a_fixed_point(&rules, &first, &body);
    }

    #[test]
    fn query_order_does_not_change_the_key(
        (pairs, shuffled) in query_pairs().prop_flat_map(|p| (Just(p.clone()), Just(p).prop_shuffle())),
        path in "/[a-z0-9/%~.-]{0,20}",
        body in body_bytes(),
    ) {
        // Only the order of differently named parameters is free: a repeated name's values are
        // positional (Glance pairs `sort_key` and `sort_dir` by position).
        let shuffled = keep_each_names_order(&pairs, &shuffled);
        let rules = MatchRules::default();
        let a = key(&rules, "GET", &path, Some(&pairs.join("&")), &body);
        let b = key(&rules, "GET", &path, Some(&shuffled.join("&")), &body);
        oracle::same_key(&a, &b, &format!("{pairs:?} vs {shuffled:?}"));
    }
}

// ---- redaction ------------------------------------------------------------------------------

/// Part of a string: literal text, or secret number `i` (raw or percent-encoded), so one real
/// value turns up in the path, the query, headers and bodies at once.
#[derive(Clone, Debug)]
enum Piece {
    Lit(String),
    Secret(usize),
    Encoded(usize),
}

/// A JSON body template whose strings and names can hold secrets.
#[derive(Clone, Debug)]
enum Template {
    Null,
    Int(i64),
    Str(Vec<Piece>),
    Array(Vec<Template>),
    Object(Vec<(String, Template)>),
}

fn pieces() -> impl Strategy<Value = Vec<Piece>> {
    let piece = prop_oneof![
        "\\PC{0,8}".prop_map(Piece::Lit),
        any::<usize>().prop_map(Piece::Secret),
        any::<usize>().prop_map(Piece::Encoded),
    ];
    vec(piece, 0..4)
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("owner".to_owned()),
        Just("__account_code".to_owned()),
        Just("x-project-id".to_owned()),
        Just("extra".to_owned()),
        "[a-z_]{1,8}",
    ]
}

fn template() -> impl Strategy<Value = Template> {
    let leaf = prop_oneof![
        Just(Template::Null),
        any::<i64>().prop_map(Template::Int),
        pieces().prop_map(Template::Str),
    ];
    leaf.prop_recursive(4, 24, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(Template::Array),
            vec((field_name(), inner), 0..5).prop_map(Template::Object),
        ]
    })
}

#[derive(Clone, Debug)]
enum BodyTemplate {
    Json(Template),
    Pretty(Template),
    Text(Vec<Piece>),
    Raw(Vec<u8>),
}

fn body_template() -> impl Strategy<Value = Option<BodyTemplate>> {
    proptest::option::of(prop_oneof![
        template().prop_map(BodyTemplate::Json),
        template().prop_map(BodyTemplate::Pretty),
        pieces().prop_map(BodyTemplate::Text),
        any::<Vec<u8>>().prop_map(BodyTemplate::Raw),
    ])
}

#[derive(Clone, Debug)]
struct Exchange {
    secrets: Vec<String>,
    path: Vec<Piece>,
    query: Option<Vec<(String, Vec<Piece>)>>,
    request_headers: Vec<(String, Vec<Piece>)>,
    request_body: Option<BodyTemplate>,
    response_headers: Vec<(String, Vec<Piece>)>,
    response_body: Option<BodyTemplate>,
}

fn exchange() -> impl Strategy<Value = Exchange> {
    let named = || vec((field_name(), pieces()), 0..4);
    (
        // Realistic secrets (project IDs, account codes) and arbitrary text.
        vec(
            prop_oneof!["[0-9a-f]{32}", "[A-Za-z0-9_]{1,12}", "\\PC{1,10}"],
            1..4,
        ),
        pieces(),
        proptest::option::of(named()),
        named(),
        body_template(),
        named(),
        body_template(),
    )
        .prop_map(
            |(
                secrets,
                path,
                query,
                request_headers,
                request_body,
                response_headers,
                response_body,
            )| {
                Exchange {
                    secrets,
                    path,
                    query,
                    request_headers,
                    request_body,
                    response_headers,
                    response_body,
                }
            },
        )
}

impl Exchange {
    fn text(&self, pieces: &[Piece]) -> String {
        let secret = |i: usize| self.secrets[i % self.secrets.len()].as_str();
        pieces
            .iter()
            .map(|p| match p {
                Piece::Lit(s) => s.clone(),
                Piece::Secret(i) => secret(*i).to_owned(),
                Piece::Encoded(i) => encode(secret(*i)),
            })
            .collect()
    }

    fn json(&self, t: &Template) -> Value {
        match t {
            Template::Null => Value::Null,
            Template::Int(n) => Value::from(*n),
            Template::Str(p) => Value::String(self.text(p)),
            Template::Array(items) => items.iter().map(|i| self.json(i)).collect(),
            Template::Object(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(n, v)| (n.clone(), self.json(v)))
                    .collect(),
            ),
        }
    }

    fn body(&self, body: &Option<BodyTemplate>) -> Option<Body> {
        let bytes = match body.as_ref()? {
            BodyTemplate::Json(t) => serde_json::to_vec(&self.json(t)).unwrap(),
            BodyTemplate::Pretty(t) => serde_json::to_vec_pretty(&self.json(t)).unwrap(),
            BodyTemplate::Text(p) => self.text(p).into_bytes(),
            BodyTemplate::Raw(b) => b.clone(),
        };
        Body::from_bytes(&bytes)
    }

    fn headers(&self, headers: &[(String, Vec<Piece>)]) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|(n, v)| (n.clone(), self.text(v)))
            .collect()
    }

    fn interaction(&self) -> Interaction {
        let query = self.query.as_ref().map(|pairs| {
            pairs
                .iter()
                .map(|(n, v)| format!("{n}={}", self.text(v)))
                .collect::<Vec<_>>()
                .join("&")
        });
        let request = RecordedRequest {
            query,
            headers: self.headers(&self.request_headers),
            body: self.body(&self.request_body),
            ..fixtures::request("GET", &self.text(&self.path))
        };
        let response = fixtures::response(
            200,
            self.headers(&self.response_headers),
            self.body(&self.response_body),
        );
        fixtures::interaction(request, response)
    }
}

/// Percent-encoding as the redactor writes it.
fn encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn redactor() -> Redactor {
    let mut policy = RedactionPolicy::default();
    let extra = ["extra".to_owned()];
    policy.extend(&extra, &extra, &extra);
    Redactor::new(policy, PseudonymKey::new(b"proptest"))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn redaction_is_idempotent_and_leaves_no_real_value_raw(exchange in exchange()) {
        oracle::redaction_is_idempotent_and_leaves_no_real_value_raw(&redactor(), &exchange.interaction());
    }
}

/// Examples the redaction fuzz target turned up: what redaction leaves by design, and the leak
/// gate refuses, so no such value is ever written silently.
#[test]
fn what_redaction_leaves_the_leak_gate_refuses() {
    let id = "12345678901234567890123456789012";
    let cases = [
        // A project ID that is also a JSON number: only strings (and object keys, which
        // `redact.rs`'s tests show replaced) are rewritten.
        (
            "x-project-id",
            id,
            format!(r#"{{"owner":"{id}","id":{id}}}"#),
        ),
        // A value with no ASCII letter or digit is its own pseudonym.
        (
            "x-project-id",
            "项目·项目",
            r#"{"owner":"项目·项目"}"#.to_owned(),
        ),
    ];
    for (header, value, body) in cases {
        let request = RecordedRequest {
            headers: vec![(header.into(), value.into())],
            ..fixtures::request("GET", "/v2/images")
        };
        let response = fixtures::response(200, vec![], Body::from_bytes(body.as_bytes()));
        let interaction = fixtures::interaction(request, response);

        let (redacted, needles) = redactor().redact(&interaction).unwrap();

        assert!(
            find_leak(&redacted, needles).is_some(),
            "the leak gate lets {value:?} through in {body}"
        );
    }
}

// ---- pseudonyms and bodies ------------------------------------------------------------------

fn is_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b.to_ascii_lowercase())
}

/// Letters keep their case per position; digit positions may become letters of the value's case.
fn cases_kept(value: &str, pseudonym: &str) -> bool {
    value.bytes().zip(pseudonym.bytes()).all(|(v, p)| {
        !(v.is_ascii_uppercase() && p.is_ascii_lowercase()
            || v.is_ascii_lowercase() && p.is_ascii_uppercase())
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_32_hex_project_id_stays_32_hex(value in "[0-9a-fA-F]{32}") {
        let key = PseudonymKey::new(b"proptest");
        let pseudonym = key.pseudonym(&value);

        prop_assert_eq!(pseudonym.len(), 32);
        prop_assert!(pseudonym.bytes().all(is_hex), "{}", pseudonym);
        prop_assert!(cases_kept(&value, &pseudonym), "{} -> {}", value, pseudonym);
        prop_assert_ne!(&pseudonym, &value);
        prop_assert_eq!(key.pseudonym(&value), pseudonym, "not deterministic");
    }

    #[test]
    fn a_uuid_stays_a_uuid(value in "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}") {
        let key = PseudonymKey::new(b"proptest");
        let pseudonym = key.pseudonym(&value);

        prop_assert_eq!(pseudonym.len(), 36);
        for (i, b) in pseudonym.bytes().enumerate() {
            if [8, 13, 18, 23].contains(&i) {
                prop_assert_eq!(b, b'-');
            } else {
                prop_assert!(is_hex(b), "{}", pseudonym);
            }
        }
        prop_assert!(cases_kept(&value, &pseudonym), "{} -> {}", value, pseudonym);
        prop_assert_ne!(&pseudonym, &value);
        let v = value.as_bytes();
        if (b'1'..=b'8').contains(&v[14]) && b"89abAB".contains(&v[19]) {
            let p = pseudonym.as_bytes();
            prop_assert_eq!(p[14], b'4', "{} -> {}: not version 4", value, pseudonym);
            prop_assert!(b"89abAB".contains(&p[19]), "{} -> {}: not RFC 4122", value, pseudonym);
        }
    }

    #[test]
    fn any_other_value_keeps_its_length_and_character_classes(value in "\\PC{0,40}") {
        let pseudonym = PseudonymKey::new(b"proptest").pseudonym(&value);

        prop_assert_eq!(pseudonym.len(), value.len());
        let class = |c: char| if c.is_ascii_digit() { '9' } else if c.is_ascii_lowercase() { 'a' } else if c.is_ascii_uppercase() { 'A' } else { c };
        let classes = |s: &str| s.chars().map(class).collect::<String>();
        if value.len() != 32 && value.len() != 36 {
            prop_assert_eq!(classes(&pseudonym), classes(&value));
        }
        if value.bytes().any(|b| b.is_ascii_alphanumeric()) {
            prop_assert_ne!(pseudonym, value);
        } else {
            prop_assert_eq!(pseudonym, value);
        }
    }

    #[test]
    fn a_body_gives_back_its_exact_bytes(bytes in body_bytes()) {
        let body = Body::from_bytes(&bytes);
        prop_assert_eq!(body.is_none(), bytes.is_empty());
        let Some(body) = body else { return Ok(()) };

        prop_assert_eq!(body.to_bytes().unwrap().to_vec(), bytes.clone());
        // And through the stored form (the store and cassettes keep it as JSON).
        let stored: Body = serde_json::from_slice(&serde_json::to_vec(&body).unwrap()).unwrap();
        prop_assert_eq!(stored.to_bytes().unwrap().to_vec(), bytes);
    }
}

/// Cases the property above found: an `owner` whose value is an array holding objects with
/// `owner` again inside; the real value there is redacted too, and mapped wherever else it is
/// (here the path), also when the nested object is the only place it is named.
#[test]
fn an_owner_array_holding_objects_is_redacted_inside_them() {
    let secret = "00aaaaa00a00aaaa0000a0a000000a0a";
    let nested = Template::Object(vec![(
        "owner".into(),
        Template::Str(vec![Piece::Secret(0)]),
    )]);
    for items in [
        vec![Template::Str(vec![Piece::Secret(0)]), nested.clone()],
        vec![nested.clone()],
    ] {
        let exchange = Exchange {
            secrets: vec![secret.to_owned()],
            path: vec![Piece::Lit("/v2/images/".into()), Piece::Secret(0)],
            query: None,
            request_headers: vec![],
            request_body: Some(BodyTemplate::Json(Template::Object(vec![(
                "owner".into(),
                Template::Array(items),
            )]))),
            response_headers: vec![],
            response_body: None,
        };
        let interaction = exchange.interaction();
        oracle::redaction_is_idempotent_and_leaves_no_real_value_raw(&redactor(), &interaction);
        let (once, _) = redactor().redact(&interaction).unwrap();
        let written = serde_json::to_string(&once).unwrap();
        assert!(!written.contains(secret), "{written}");
    }
}
