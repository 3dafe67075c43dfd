//! Redaction runs on every recorded answer and every export: whatever an interaction holds, it
//! must not panic, redacting twice must change nothing, and no real value of a redacted field,
//! header or parameter (6 characters or more) may stay raw anywhere in what is written. The two
//! documented exceptions (binary bodies, values with no ASCII letter or digit) must then be
//! caught by the leak gate.
#![no_main]

use arbitrary::Arbitrary;
use ims_vcr::model::interaction::{Body, Interaction, RecordedRequest, RecordedResponse};
use ims_vcr::secrets::pseudonym::PseudonymKey;
use ims_vcr::secrets::redact::{RedactionPolicy, Redactor};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// The checks `tests/properties.rs` runs too.
#[path = "../../tests/util/oracle.rs"]
mod oracle;

/// Part of a string: literal text, or one of the input's secrets (raw or percent-encoded), so
/// that the same real value turns up in the path, the query, headers and bodies.
#[derive(Arbitrary, Debug)]
enum Piece {
    Lit(String),
    Secret(u8),
    Encoded(u8),
}

/// A field, header or query parameter name: one the policy redacts, or any other.
#[derive(Arbitrary, Debug)]
enum Name {
    Owner,
    AccountCode,
    ProjectId,
    Extra,
    Secret(u8),
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Str(Vec<Piece>),
    Array(Vec<Json>),
    Object(Vec<(Name, Json)>),
}

#[derive(Arbitrary, Debug)]
enum BodyIn {
    /// Compact JSON: stored as `{"json": …}`.
    Json(Json),
    /// Pretty-printed JSON: stored as text.
    Pretty(Json),
    Text(Vec<Piece>),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    secrets: Vec<String>,
    /// Names added to the default policy (`--redact-field`, `--redact-header`, `--redact-query`).
    extra: String,
    path: Vec<Piece>,
    query: Option<Vec<(Name, Vec<Piece>)>>,
    request_headers: Vec<(Name, Vec<Piece>)>,
    request_body: Option<BodyIn>,
    response_headers: Vec<(Name, Vec<Piece>)>,
    response_body: Option<BodyIn>,
}

struct Build<'a> {
    secrets: &'a [String],
    extra: &'a str,
}

impl Build<'_> {
    fn secret(&self, i: u8) -> &str {
        match self.secrets.len() {
            0 => "",
            n => &self.secrets[usize::from(i) % n],
        }
    }

    fn text(&self, pieces: &[Piece]) -> String {
        let mut out = String::new();
        for piece in pieces {
            match piece {
                Piece::Lit(s) => out.push_str(s),
                Piece::Secret(i) => out.push_str(self.secret(*i)),
                Piece::Encoded(i) => out.push_str(&percent_encode(self.secret(*i))),
            }
        }
        out
    }

    fn name(&self, name: &Name, ours: &str) -> String {
        match name {
            Name::Owner => "owner".into(),
            Name::AccountCode => "__account_code".into(),
            Name::ProjectId => ours.into(),
            Name::Extra => self.extra.into(),
            Name::Secret(i) => self.secret(*i).into(),
            Name::Other(s) => s.clone(),
        }
    }

    fn json(&self, json: &Json, depth: usize) -> Value {
        // Real bodies come through serde_json's parser, which stops at 128 levels.
        if depth > 32 {
            return Value::Null;
        }
        match json {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Int(n) => Value::from(*n),
            Json::Str(pieces) => Value::String(self.text(pieces)),
            Json::Array(items) => items.iter().map(|i| self.json(i, depth + 1)).collect(),
            Json::Object(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(n, v)| (self.name(n, "x-project-id"), self.json(v, depth + 1)))
                    .collect(),
            ),
        }
    }

    fn body(&self, body: &Option<BodyIn>) -> Option<Body> {
        let bytes = match body.as_ref()? {
            BodyIn::Json(j) => serde_json::to_vec(&self.json(j, 0)).expect("a value serialises"),
            BodyIn::Pretty(j) => {
                serde_json::to_vec_pretty(&self.json(j, 0)).expect("a value serialises")
            }
            BodyIn::Text(pieces) => self.text(pieces).into_bytes(),
            BodyIn::Raw(bytes) => bytes.clone(),
        };
        Body::from_bytes(&bytes)
    }

    fn headers(&self, headers: &[(Name, Vec<Piece>)]) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|(n, v)| (self.name(n, "x-project-id"), self.text(v)))
            .collect()
    }
}

fuzz_target!(|input: Input| {
    let build = Build {
        secrets: &input.secrets,
        // `--redact-field ""` names nothing a user can mean.
        extra: if input.extra.trim().is_empty() {
            "extra"
        } else {
            &input.extra
        },
    };
    let query = input.query.as_ref().map(|pairs| {
        pairs
            .iter()
            .map(|(n, v)| format!("{}={}", build.name(n, "owner"), build.text(v)))
            .collect::<Vec<_>>()
            .join("&")
    });
    let interaction = Interaction {
        request: RecordedRequest {
            method: "GET".into(),
            path: build.text(&input.path),
            query,
            headers: build.headers(&input.request_headers),
            body: build.body(&input.request_body),
            session: None,
        },
        response: RecordedResponse {
            status: 200,
            headers: build.headers(&input.response_headers),
            body: build.body(&input.response_body),
            recorded_at: String::new(),
            latency_ms: 0,
            upstream: String::new(),
            other_upstreams: Vec::new(),
        },
        redaction: None,
    };
    let mut policy = RedactionPolicy::default();
    let extra = [build.extra.to_owned()];
    policy.extend(&extra, &extra, &extra);
    let redactor = Redactor::new(policy, PseudonymKey::new(b"fuzz"));

    oracle::redaction_is_idempotent_and_leaves_no_real_value_raw(&redactor, &interaction);
});

/// Percent-encoding of every byte but ASCII letters and digits, as the redactor writes it.
fn percent_encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
