//! The recorded request/response model, shared by the sled store and the cassette files, and the
//! body encoding that keeps JSON readable while replaying every byte exactly.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::model::redaction::RedactionStamp;

/// One request and one of its answers, as recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interaction {
    /// What the client asked (credentials and volatile headers already removed).
    pub request: RecordedRequest,
    /// What the upstream answered.
    pub response: RecordedResponse,
    /// Present when the interaction was redacted: what was redacted, with which key fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redaction: Option<RedactionStamp>,
}

/// The stored part of a request. Only `method`, `path`, `query` and `body` take part in matching
/// (see `key.rs`); headers are kept for people reading the cassette.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// HTTP method, upper-case as sent.
    pub method: String,
    /// Path as sent, percent-encoding untouched.
    pub path: String,
    /// Raw query string without `?`, as sent; absent when the request had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Non-secret, non-volatile request headers in wire order (lower-case names, repeats kept).
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Request body; absent when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Body>,
    /// The session the request was made in (`x-ims-vcr-session`); absent for the default
    /// session. Part of the request's key. Cassettes do not carry it: a session's cassettes
    /// live in the folder of its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

/// The stored part of an answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordedResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response headers in wire order, hop-by-hop, `Set-Cookie`, `Content-Length` and (for decoded
    /// bodies) `Content-Encoding` removed: the proxy frames what it serves itself.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Response body, decoded (never gzip); absent when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Body>,
    /// When the answer was recorded, RFC 3339 UTC with second precision.
    pub recorded_at: String,
    /// How long the upstream took to answer, in milliseconds.
    #[serde(default)]
    pub latency_ms: u64,
    /// Origin of the upstream that answered (`scheme://host[:port]`): the region it came from.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub upstream: String,
    /// Origins of the proxy's other routes that this answer mentions (an identity answer's
    /// service catalog naming the image service): what is served has them pointed at the
    /// proxy, like `upstream`, so the client's next call comes back to it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_upstreams: Vec<String>,
}

/// How deep a JSON body may nest and still be embedded as JSON (the store entry and the
/// cassette add a few levels around it; serde_json reads at most 128).
pub const MAX_JSON_DEPTH: usize = 64;

/// The deepest nesting of `[`/`{` in JSON text (brackets inside strings not counted).
pub fn json_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// A body as stored: JSON embedded as JSON when that reproduces the exact bytes, otherwise UTF-8
/// text, otherwise base64. Serialised externally tagged: `{"json": …}`, `{"text": "…"}`,
/// `{"base64": "…"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Body {
    /// A JSON document whose compact serialisation is byte-identical to what was received.
    Json(serde_json::Value),
    /// UTF-8 text (including JSON that was not compact, e.g. pretty-printed by the upstream).
    Text(String),
    /// Anything else, standard base64 with padding.
    Base64(String),
}

impl Body {
    /// Chooses the most readable encoding that still gives back exactly `bytes`; `None` for an
    /// empty body.
    pub fn from_bytes(bytes: &[u8]) -> Option<Body> {
        if bytes.is_empty() {
            return None;
        }
        // A document nested deeper than `MAX_JSON_DEPTH` is kept as text: embedded in a store
        // entry or a cassette it would sit a few levels deeper still, past serde_json's
        // recursion limit (128), and every reader of the store would fail on it.
        if json_depth(bytes) <= MAX_JSON_DEPTH
            && let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes)
        {
            // `preserve_order` + `arbitrary_precision` make this exact for compact JSON; anything
            // that does not round-trip (whitespace, escapes like `\/`) falls back to text.
            if serde_json::to_vec(&value).is_ok_and(|v| v == bytes) {
                return Some(Body::Json(value));
            }
        }
        Some(match std::str::from_utf8(bytes) {
            Ok(text) => Body::Text(text.to_owned()),
            Err(_) => Body::Base64(BASE64.encode(bytes)),
        })
    }

    /// The exact bytes this body stands for. Fails only on invalid base64 (a hand-edited file).
    pub fn to_bytes(&self) -> Result<Bytes, String> {
        match self {
            Body::Json(value) => serde_json::to_vec(value)
                .map(Bytes::from)
                .map_err(|e| e.to_string()),
            Body::Text(text) => Ok(Bytes::copy_from_slice(text.as_bytes())),
            Body::Base64(b64) => BASE64
                .decode(b64)
                .map(Bytes::from)
                .map_err(|e| format!("invalid base64: {e}")),
        }
    }
}

/// Bytes of an optional body (empty when absent).
pub fn body_bytes(body: &Option<Body>) -> Result<Bytes, String> {
    body.as_ref().map_or(Ok(Bytes::new()), Body::to_bytes)
}

/// Current UTC time as RFC 3339 with second precision (`2026-11-27T07:14:42Z`).
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("zero nanoseconds is always valid");
    now.format(&time::format_description::well_known::Rfc3339)
        .expect("RFC 3339 formatting of a UTC time cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(bytes: &[u8]) -> Option<Body> {
        let body = Body::from_bytes(bytes);
        if let Some(b) = &body {
            assert_eq!(b.to_bytes().unwrap().as_ref(), bytes);
        }
        body
    }

    #[test]
    fn compact_json_is_embedded_as_json_and_round_trips() {
        let raw = br#"{"z":1,"a":[1.50,-0.0,null],"n":12345678901234567890123}"#;
        assert!(matches!(round_trip(raw), Some(Body::Json(_))));
    }

    #[test]
    fn pretty_or_escaped_json_is_kept_as_text_byte_for_byte() {
        assert!(matches!(
            round_trip(b"{\n  \"a\": 1\n}"),
            Some(Body::Text(_))
        ));
        assert!(matches!(
            round_trip(br#"{"u":"a\/b"}"#),
            Some(Body::Text(_))
        ));
        // serde_json writes `2e3` as `2e+3`: not byte-exact, so text.
        assert!(matches!(round_trip(b"[2e3]"), Some(Body::Text(_))));
    }

    #[test]
    fn binary_is_base64_and_empty_is_absent() {
        assert!(matches!(
            round_trip(&[0, 159, 146, 150]),
            Some(Body::Base64(_))
        ));
        assert_eq!(round_trip(b""), None);
    }

    #[test]
    fn body_serialises_externally_tagged() {
        let json = serde_json::to_string(&Body::Text("hi".into())).unwrap();
        assert_eq!(json, r#"{"text":"hi"}"#);
    }

    #[test]
    fn invalid_base64_is_reported() {
        assert!(Body::Base64("@@".into()).to_bytes().is_err());
    }

    #[test]
    fn json_nested_past_the_safe_depth_is_stored_as_text_and_round_trips_in_an_entry() {
        for depth in [MAX_JSON_DEPTH + 1, 125, 127] {
            let doc = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
            let body = Body::from_bytes(doc.as_bytes()).unwrap();
            assert!(matches!(body, Body::Text(_)), "{depth}");
            // As the store keeps it: inside an interaction, read back.
            let entry = serde_json::to_vec(&serde_json::json!({ "response": { "body": body } }))
                .unwrap();
            let back: serde_json::Value = serde_json::from_slice(&entry).unwrap();
            assert_eq!(back["response"]["body"]["text"], doc);
        }
        let shallow = format!("{}1{}", "[".repeat(MAX_JSON_DEPTH), "]".repeat(MAX_JSON_DEPTH));
        assert!(matches!(Body::from_bytes(shallow.as_bytes()), Some(Body::Json(_))));
        assert_eq!(json_depth(br#"{"a":"[[[{{"}"#), 1);
    }
}
