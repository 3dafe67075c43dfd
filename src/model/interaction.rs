//! The recorded request/response model, shared by the sled store and the cassette files, and the
//! body encoding that keeps JSON readable while replaying every byte exactly.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::model::redaction::RedactionStamp;

/// An interaction serialised as the store writes it (JSON): made once per recording, when the
/// leak gate scans it, and written by the store as it is (`Store::record_in_attempt`).
#[derive(Clone, Debug)]
pub struct Encoded(Vec<u8>);

impl Encoded {
    /// `interaction`, serialised into a buffer sized for its bodies first: a large answer (an
    /// image file, base64) is then written once, not copied as a growing buffer doubles.
    pub fn of(interaction: &Interaction) -> Encoded {
        let text = |body: &Option<Body>| match body {
            // Escapes (`\"`, `\n`) may make text longer: an eighth more is room for most.
            Some(Body::Text(text) | Body::Base64(text)) => text.len() + text.len() / 8,
            _ => 0,
        };
        let hint = 4096 + text(&interaction.request.body) + text(&interaction.response.body);
        let mut bytes = Vec::with_capacity(hint);
        // As `serde_json::to_writer` writes it, by hand (see the module for why).
        crate::model::interaction_json::write(&mut bytes, interaction);
        Encoded(bytes)
    }

    /// The serialised bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The serialised bytes, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

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
    /// Response headers in wire order, hop-by-hop, `Set-Cookie`, `Content-Length` and
    /// `Content-Encoding` removed: the proxy frames what it serves itself, and the body is
    /// stored decoded. An answer to a `HEAD` keeps the upstream's `Content-Length` (the size of
    /// what a `GET` brings; replay serves it) unless it was content-encoded.
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

impl RecordedResponse {
    /// Whether this is the place of an answer the leak gate refused when it was recorded (a
    /// gap: `599` with `x-ims-vcr-not-recorded`, what `proxy/gaps.rs` stores; a prepared answer
    /// tells the same with `Prepared::is_gap`).
    pub fn is_gap(&self) -> bool {
        use crate::model::headers::{NOT_RECORDED_HEADER, NOT_RECORDED_STATUS};
        self.status == NOT_RECORDED_STATUS
            && (self.headers.iter()).any(|(name, _)| name.eq_ignore_ascii_case(NOT_RECORDED_HEADER))
    }
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
/// text, otherwise base64. Serialised externally tagged: `{"json": …}`, `{"json_python": …}`,
/// `{"text": "…"}`, `{"base64": "…"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Body {
    /// A JSON document whose compact serialisation is byte-identical to what was received.
    Json(serde_json::Value),
    /// A JSON document written the way Python's `json.dumps` writes by default (what Glance,
    /// Keystone and the Python clients send): `", "` and `": "` separators, and every character
    /// outside printable ASCII as a `\uXXXX` escape. Serialising the document in that style gives
    /// back exactly the bytes received, so the cassette shows readable JSON and replay still
    /// serves every byte as it came.
    JsonPython(serde_json::Value),
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
            if writes_exactly(bytes, |out| serde_json::to_writer(out, &value)) {
                return Some(Body::Json(value));
            }
            if writes_exactly(bytes, |out| {
                value.serialize(&mut serde_json::Serializer::with_formatter(out, PythonFormatter))
            }) {
                return Some(Body::JsonPython(value));
            }
        }
        Body::verbatim(bytes)
    }

    /// `bytes` as text (UTF-8) or base64, without looking for JSON; `None` for an empty body.
    /// The record path stores an answer this way (parsing it costs more than the rest of
    /// storing it), and the store gives it back as [`Body::from_bytes`] would have chosen when
    /// it is read (see `storage::layout::decode_interaction`), so no reader sees a difference.
    pub fn verbatim(bytes: &[u8]) -> Option<Body> {
        if bytes.is_empty() {
            return None;
        }
        Some(match std::str::from_utf8(bytes) {
            Ok(text) => Body::Text(text.to_owned()),
            Err(_) => Body::Base64(BASE64.encode(bytes)),
        })
    }

    /// A text body in the most readable encoding [`Body::from_bytes`] finds for it (readable
    /// JSON when its bytes round-trip); any other body as it is.
    pub fn readable(self) -> Body {
        match self {
            Body::Text(text) => Body::from_bytes(text.as_bytes()).unwrap_or(Body::Text(text)),
            body => body,
        }
    }

    /// The exact bytes this body stands for. Fails only on invalid base64 (a hand-edited file).
    pub fn to_bytes(&self) -> Result<Bytes, String> {
        match self {
            Body::Json(value) => serde_json::to_vec(value)
                .map(Bytes::from)
                .map_err(|e| e.to_string()),
            Body::JsonPython(value) => python_json(value)
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

impl Body {
    /// The JSON document, for a body stored as JSON in either style.
    pub fn json(&self) -> Option<&serde_json::Value> {
        match self {
            Body::Json(value) | Body::JsonPython(value) => Some(value),
            Body::Text(_) | Body::Base64(_) => None,
        }
    }

    /// `value` as a body in this body's JSON style (Python's for [`Body::JsonPython`], compact
    /// otherwise), chosen again by [`Body::from_bytes`] so the bytes and the variant agree.
    pub fn json_in_same_style(&self, value: &serde_json::Value) -> Option<Body> {
        let bytes = match self {
            Body::JsonPython(_) => python_json(value),
            _ => serde_json::to_vec(value),
        }
        .ok()?;
        Body::from_bytes(&bytes)
    }
}

/// `value` as Python's `json.dumps(value)` writes it with its defaults: `", "` and `": "`
/// separators, `ensure_ascii` (DEL and every non-ASCII character as `\uXXXX`, lower-case hex,
/// surrogate pairs beyond the BMP). Numbers keep their text (`arbitrary_precision`).
/// Whether `write` writes exactly `expected`, compared as it writes (no copy is built, and a
/// difference stops the writing): every recorded body is checked this way.
fn writes_exactly(
    expected: &[u8],
    write: impl FnOnce(&mut Compare<'_>) -> serde_json::Result<()>,
) -> bool {
    let mut compare = Compare(expected);
    write(&mut compare).is_ok() && compare.0.is_empty()
}

/// A writer that only accepts the bytes it still expects (see [`writes_exactly`]).
struct Compare<'a>(&'a [u8]);

impl std::io::Write for Compare<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.strip_prefix(buf) {
            Some(rest) => {
                self.0 = rest;
                Ok(buf.len())
            }
            None => Err(std::io::ErrorKind::InvalidData.into()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn python_json(value: &serde_json::Value) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    value.serialize(&mut ser)?;
    Ok(out)
}

struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first { Ok(()) } else { writer.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first { Ok(()) } else { writer.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        writer.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        // serde_json has escaped quotes, backslashes and control characters already; what is
        // left to do is Python's `ensure_ascii`.
        let mut start = 0;
        for (at, ch) in fragment.char_indices() {
            if (ch as u32) < 0x7f {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[start..at])?;
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            start = at + ch.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// Bytes of an optional body (empty when absent).
pub fn body_bytes(body: &Option<Body>) -> Result<Bytes, String> {
    body.as_ref().map_or(Ok(Bytes::new()), Body::to_bytes)
}

/// Current UTC time as RFC 3339 with second precision (`2026-11-27T07:14:42Z`).
pub fn now_rfc3339() -> String {
    // Written once a second per thread: every recording asks, thousands a second under load.
    thread_local! {
        static LAST: std::cell::RefCell<(i64, String)> = const { std::cell::RefCell::new((0, String::new())) };
    }
    let now = time::OffsetDateTime::now_utc();
    let second = now.unix_timestamp();
    LAST.with_borrow_mut(|(at, text)| {
        if *at != second || text.is_empty() {
            let now = now.replace_nanosecond(0).expect("zero nanoseconds is always valid");
            *text = now
                .format(&time::format_description::well_known::Rfc3339)
                .expect("RFC 3339 formatting of a UTC time cannot fail");
            *at = second;
        }
        text.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_written_to_the_second_in_utc_and_follows_the_clock() {
        let parse = |text: &str| {
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap()
        };
        let before = time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let first = now_rfc3339();
        assert!(first.ends_with('Z') && !first.contains('.'), "{first}");
        let at = parse(&first);
        let after = time::OffsetDateTime::now_utc();
        assert!(before <= at && at <= after, "{first}");
        // The second after it is written anew, not served from the last one.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let later = parse(&now_rfc3339());
        assert!(later > at, "{later} after {at}");
    }

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
    fn python_style_json_is_embedded_as_json_python_and_round_trips() {
        // What `json.dumps` writes with its defaults: `", "`/`": "`, non-ASCII and DEL escaped.
        let raw = br#"{"id": "x", "tags": ["a", "b"], "name": "caf\u00e9 \ud83d\ude00 \u007f", "n": 1.50, "e": {}, "q": "\"\\\n"}"#;
        let body = round_trip(raw).unwrap();
        let Body::JsonPython(json) = &body else {
            panic!("{body:?}")
        };
        assert_eq!(json["name"], "caf\u{e9} \u{1f600} \u{7f}");
        let stored = serde_json::to_string(&body).unwrap();
        assert!(stored.starts_with(r#"{"json_python":{"id":"x","#), "{stored}");
        assert_eq!(serde_json::from_str::<Body>(&stored).unwrap(), body);
        // The style is kept when the document is rebuilt.
        let rebuilt = body.json_in_same_style(&serde_json::json!({"a": [1, 2]})).unwrap();
        assert_eq!(rebuilt.to_bytes().unwrap().as_ref(), br#"{"a": [1, 2]}"#);
    }

    #[test]
    fn nearly_python_json_stays_text() {
        // Raw non-ASCII (`ensure_ascii=False`), upper-case escapes, uneven spacing, `indent=`.
        for raw in [
            "{\"name\": \"caf\u{e9}\", \"a\": 1}",
            r#"{"name": "caf\u00E9", "a": 1}"#,
            r#"{"a": 1,  "b": 2}"#,
            "{\n    \"a\": 1,\n    \"b\": 2\n}",
        ] {
            assert!(
                matches!(round_trip(raw.as_bytes()), Some(Body::Text(_))),
                "{raw}"
            );
        }
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
