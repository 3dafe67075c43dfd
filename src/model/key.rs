//! What makes two requests "the same": a canonical form (method, normalised path, query decoded
//! and sorted by name, repeated names keeping their order, optional matched headers, canonical
//! JSON body) and its stable SHA-256 digest.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::credentials::{PLACEHOLDER, is_credential_name, mask_body, mask_json};
use crate::model::interaction::{RecordedRequest, body_bytes};
use crate::model::volatile::Volatile;

/// Matching rules beyond the default (method + path + query, the order of differently named
/// parameters ignored). Stored with
/// the recordings so replay matches the way the recording did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchRules {
    /// Request headers (lower-case) whose values take part in matching, e.g. `x-project-id`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_headers: Vec<String>,
    /// Query parameters left out of matching, e.g. pagination markers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_query: Vec<String>,
    /// Regular expressions for values a suite generates fresh on every run (`--volatile`):
    /// masked in the path, query and body for matching.
    #[serde(default, skip_serializing_if = "Volatile::is_empty")]
    pub volatile: Volatile,
    /// JSON fields whose timestamps replay moves forward by the time since the answer was
    /// recorded (`--shift-time`), besides `expires_at` and `issued_at`. Not part of matching.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shift_time: Vec<String>,
}

impl MatchRules {
    /// True for the default rules (nothing beyond method, path and query).
    pub fn is_default(&self) -> bool {
        self.match_headers.is_empty()
            && self.ignore_query.is_empty()
            && self.volatile.is_empty()
            && self.shift_time.is_empty()
    }

    /// Checks rules from any source (flags, a cassette, a store, the builder): a matched header
    /// must be one that is stored, so never a credential (its value would be written into every
    /// key, miss answer and summary), a volatile or a hop-by-hop header. The error names the
    /// header and its index in `match_headers`; it never holds a header value.
    pub fn validate(&self) -> Result<(), RuleError> {
        use crate::model::headers;
        for (index, name) in self.match_headers.iter().enumerate() {
            let lower = name.to_ascii_lowercase();
            let reason = if headers::is_credential(&lower) || is_credential_name(&lower) {
                "it carries credentials, which are never stored"
            } else if headers::is_volatile_request(&lower) {
                "it is volatile, so never stored"
            } else if headers::is_hop_by_hop(&lower) {
                "it is hop-by-hop, so never stored"
            } else if hyper::header::HeaderName::from_bytes(lower.as_bytes()).is_err() {
                "it is not a header name"
            } else {
                continue;
            };
            return Err(RuleError {
                index,
                name: name.clone(),
                reason,
            });
        }
        Ok(())
    }
}

/// Why a set of match rules was refused (see [`MatchRules::validate`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    /// Index of the refused header in `match_headers`.
    pub index: usize,
    /// The refused header name (escaped when printed).
    pub name: String,
    /// Why.
    pub reason: &'static str,
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "header {:?} cannot be matched on: {}",
            self.name, self.reason
        )
    }
}

/// A request's identity for matching. Two requests match when their digests are equal.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestKey {
    canonical: String,
    digest: [u8; 32],
    /// The session (`None`: the default one); also the last line of `canonical`.
    session: Option<String>,
}

impl RequestKey {
    /// Builds the key of a live or recorded request. `header` returns the values of a header by
    /// lower-case name (only consulted for [`MatchRules::match_headers`]).
    pub fn new<'a>(
        rules: &MatchRules,
        method: &str,
        path: &str,
        query: Option<&str>,
        header: impl Fn(&str) -> Vec<&'a str>,
        body: &[u8],
    ) -> Self {
        let canonical = canonical_form(rules, (method, path, query), header, body);
        let digest = Sha256::digest(canonical.as_bytes()).into();
        RequestKey {
            canonical,
            digest,
            session: None,
        }
    }

    /// The key of a live request with canonical form `canonical` (see [`canonical_form`]) in
    /// `session`: the same key as `RequestKey::new(..).in_session(session)`, with the digest
    /// taken from this thread's memo of the canonical forms it has hashed (a SHA-256 is the
    /// largest per-request cost of a replayed request, and a replaying client asks for the same
    /// few requests again and again). The memo holds SHA-256 results only, so the key is the same
    /// with or without it.
    pub fn live(mut canonical: String, session: Option<&str>) -> Self {
        if let Some(name) = session {
            push_session_line(&mut canonical, name);
        }
        let digest = memo::digest(&canonical);
        RequestKey {
            canonical,
            digest,
            session: session.map(str::to_owned),
        }
    }

    /// The same request in `session`: a line `session: NAME` ends the canonical form, so the
    /// digest differs from every other session's. The default session (`None`) leaves the key
    /// as it is, so its keys are those of a proxy without sessions.
    pub fn in_session(mut self, session: Option<&str>) -> Self {
        if let Some(name) = session {
            push_session_line(&mut self.canonical, name);
            self.digest = Sha256::digest(self.canonical.as_bytes()).into();
            self.session = Some(name.to_owned());
        }
        self
    }

    /// The request's session; `None` for the default session.
    pub fn session(&self) -> Option<&str> {
        self.session.as_deref()
    }

    /// The key of a stored request. Fails only when its body does not decode.
    pub fn of_recorded(rules: &MatchRules, request: &RecordedRequest) -> Result<Self, String> {
        let body = body_bytes(&request.body)?;
        let header = |name: &str| {
            request
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .collect()
        };
        Ok(Self::new(
            rules,
            &request.method,
            &request.path,
            request.query.as_deref(),
            header,
            &body,
        )
        .in_session(request.session.as_deref()))
    }

    /// Human-readable canonical form, e.g. `GET /v2/images?limit=2&owner=x`.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// The first line of the canonical form: method, path and canonical query.
    pub fn request_line(&self) -> &str {
        self.canonical.lines().next().unwrap_or_default()
    }

    /// SHA-256 of the canonical form: the on-disk identity (stable across Rust releases).
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// Lower-case hex of [`RequestKey::digest`].
    pub fn hex(&self) -> String {
        hex(&self.digest)
    }
}

/// Request headers that select which answer a request gets: those that make it conditional
/// (RFC 9110, 13.1) and `Range` (14.2). They take part in every key, by name and value, when a
/// request carries them: a conditional GET answered `304 Not Modified` (no body) and a plain GET
/// answered `200` are two requests, so replay never serves the 304 to a client that did not ask
/// for it, nor another validator's; nor a `206` holding bytes 0-99 to a plain GET or to a
/// request for bytes 100-199. A request without them keys as if the list were empty.
pub const SELECTING: [&str; 6] = [
    "range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "if-range",
];

/// Adds `name: values` (comma-joined) to a canonical form, credentials in a value (`?token=` in
/// a URL it holds) masked as the stored header has them, so the two key alike.
fn push_header<V: AsRef<str>>(canonical: &mut String, name: &str, values: Vec<V>) {
    let values: Vec<Cow<'_, str>> = values
        .iter()
        .map(|v| match crate::model::params::mask_header_value(v.as_ref()) {
            Some((masked, _)) => Cow::Owned(masked),
            None => Cow::Borrowed(v.as_ref()),
        })
        .collect();
    canonical.push_str(&format!("\n{name}: {}", values.join(", ")));
}

/// The canonical form of a request (method, path, query; see [`RequestKey`]), without its
/// session line. `header`
/// returns the values of a header by lower-case name (only consulted for
/// [`MatchRules::match_headers`]), as text: `&str`, or a `Cow` where a value that is not
/// visible ASCII (`René`, a Latin-1 byte) is read as lossy UTF-8, as a stored request's header
/// is. Built in place: this runs on every request, and `format!` with a normalised copy of the
/// path costs more allocations.
pub fn canonical_form<V: AsRef<str>>(
    rules: &MatchRules,
    (method, path, query): (&str, &str, Option<&str>),
    header: impl Fn(&str) -> Vec<V>,
    body: &[u8],
) -> String {
    let volatile = &rules.volatile;
    let (path, query, body) = if volatile.is_empty() {
        (Cow::Borrowed(path), query.map(Cow::Borrowed), Cow::Borrowed(body))
    } else {
        let body = volatile_masked(rules, body);
        (volatile.mask(path), query.map(|q| volatile.mask(q)), body)
    };
    let (path, query, body) = (path.as_ref(), query.as_deref(), body.as_ref());
    let mut canonical = String::with_capacity(method.len() + 1 + path.len());
    // As sent: methods are case-sensitive (RFC 9110, 9.1), and `get` is not `GET` to an
    // upstream (it answers 501 or 405), so the two never share a recording.
    canonical.push_str(method);
    canonical.push(' ');
    // Credential matrix parameters (`;token=...`) are not matched on, as in the query.
    let masked_path = crate::model::credentials::mask_path(path);
    let path = masked_path.as_ref().map_or(path, |(masked, _)| masked.as_str());
    push_normalised_path(&mut canonical, path);
    let query = canonical_query(query.unwrap_or(""), &rules.ignore_query);
    if !query.is_empty() {
        canonical.push('?');
        canonical.push_str(&query);
    }
    for name in &rules.match_headers {
        // Rules are validated wherever they are read; should a credential header get here
        // anyway, its value never enters the key (printed in misses and summaries).
        if crate::model::headers::is_credential(name) || is_credential_name(name) {
            canonical.push_str(&format!("\n{name}: {PLACEHOLDER}"));
            continue;
        }
        push_header(&mut canonical, name, header(name));
    }
    // A conditional or partial request keys apart from a plain one (see [`SELECTING`]).
    for name in SELECTING {
        let values = header(name);
        if !values.is_empty() && !rules.match_headers.iter().any(|m| m == name) {
            push_header(&mut canonical, name, values);
        }
    }
    if !body.is_empty() {
        let digest = Sha256::digest(matched_body(body, &header));
        canonical.push_str(&format!("\nbody sha256:{}", hex(&digest)));
    }
    canonical
}

/// The bytes of a request body a key matches on: decoded from its `Content-Encoding`, JSON
/// with its keys sorted and whitespace removed, credentials masked (`canonical_body`); its
/// SHA-256 is the canonical form's `body sha256:` line. `header` gives the request's values
/// of a header.
fn matched_body<V: AsRef<str>>(body: &[u8], header: &impl Fn(&str) -> Vec<V>) -> Vec<u8> {
    let content_type = header("content-type");
    let encodings = header("content-encoding");
    let encodings: Vec<&str> = encodings.iter().map(AsRef::as_ref).collect();
    let decoded = crate::model::encodings::decoded_request_body(body, &encodings);
    canonical_body(decoded.as_deref().unwrap_or(body), content_type.first().map(AsRef::as_ref))
}

/// [`matched_body`] of a request under `rules` (volatile values masked first, as the
/// canonical form masks them), for a miss's diff: its SHA-256 is the one the canonical form
/// shows. Empty for an empty body.
pub fn body_as_matched<'a>(
    rules: &MatchRules,
    body: &[u8],
    header: impl Fn(&str) -> Vec<&'a str>,
) -> Vec<u8> {
    if body.is_empty() {
        return Vec::new();
    }
    matched_body(&volatile_masked(rules, body), &header)
}

/// `body` with the volatile values of `rules` masked, when it is text (a binary body is
/// matched as it is).
fn volatile_masked<'b>(rules: &MatchRules, body: &'b [u8]) -> Cow<'b, [u8]> {
    match std::str::from_utf8(body) {
        Ok(text) if !rules.volatile.is_empty() => match rules.volatile.mask(text) {
            Cow::Owned(masked) => Cow::Owned(masked.into_bytes()),
            Cow::Borrowed(_) => Cow::Borrowed(body),
        },
        _ => Cow::Borrowed(body),
    }
}

/// The last line of a canonical form in a named session.
fn push_session_line(canonical: &mut String, session: &str) {
    canonical.push_str("\nsession: ");
    canonical.push_str(session);
}

/// A per-thread memo of canonical form → SHA-256, so a request asked for again is not hashed
/// again. Bounded: once it holds [`memo::CAPACITY`] forms it starts over, so a client asking
/// for ever new requests costs a little memory, never more.
mod memo {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use sha2::{Digest, Sha256};

    /// Canonical forms kept per thread (a few hundred KB at most).
    pub(super) const CAPACITY: usize = 1024;

    type Digests = HashMap<Box<str>, [u8; 32], foldhash::fast::RandomState>;

    thread_local! {
        static DIGESTS: RefCell<Digests> = RefCell::new(Digests::default());
    }

    /// The SHA-256 of `canonical`.
    pub(super) fn digest(canonical: &str) -> [u8; 32] {
        DIGESTS.with_borrow_mut(|digests| {
            if let Some(digest) = digests.get(canonical) {
                return *digest;
            }
            let digest: [u8; 32] = Sha256::digest(canonical.as_bytes()).into();
            if digests.len() >= CAPACITY {
                digests.clear();
            }
            digests.insert(canonical.into(), digest);
            digest
        })
    }
}

/// Lower-case hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    // Two digits per byte from a table, written as bytes: `write!("{:02x}")` per byte runs the
    // formatter 32 times for a digest (a recording names its request id by one), and a `char`
    // pushed at a time checks its encoding and the room left for each digit.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = vec![0; bytes.len() * 2];
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0x0f)];
    }
    String::from_utf8(out).expect("hex digits are ASCII")
}

/// Appends `path` with percent-escapes of unreserved characters decoded and the others
/// upper-cased, so `%7e`, `%7E` and `~` match, while `%2F` stays distinct from `/`.
fn push_normalised_path(out: &mut String, path: &str) {
    // The common case, a path without escapes, is copied whole rather than char by char.
    if !path.contains('%') {
        out.push_str(path);
        return;
    }
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
        {
            let hex_pair = &path[i + 1..i + 3];
            let b = u8::from_str_radix(hex_pair, 16).expect("two ASCII hex digits");
            // A decoded hex digit right after a stray `%` would make a new escape (`%%61b` →
            // `%ab`), and the canonical form would change when canonicalised again: keep it.
            if (b.is_ascii_alphanumeric() || b"-._~".contains(&b))
                && !(b.is_ascii_hexdigit() && ends_in_stray_percent(out))
            {
                out.push(b as char);
            } else {
                out.push('%');
                out.push_str(&hex_pair.to_ascii_uppercase());
            }
            i += 3;
            continue;
        }
        let ch = path[i..].chars().next().expect("i is on a char boundary");
        out.push(ch);
        i += ch.len_utf8();
    }
}

/// True when `out` ends with `%` or `%` and one hex digit. Such a `%` is always a stray one:
/// [`push_normalised_path`] writes escapes whole, as `%` and two hex digits.
fn ends_in_stray_percent(out: &str) -> bool {
    let tail = out.as_bytes();
    match tail {
        [.., b'%'] => true,
        [.., b'%', d] => d.is_ascii_hexdigit(),
        _ => false,
    }
}

/// Query pairs decoded (`+` and `%20` both mean space), ignored names dropped, sorted by name
/// only, credential values masked, and re-encoded. The sort is stable: a repeated name keeps its
/// values in the order sent, because APIs such as Glance pair repeated parameters by position
/// (`sort_key=name&sort_dir=asc&sort_key=size&sort_dir=desc` is not
/// `sort_key=name&sort_dir=desc&sort_key=size&sort_dir=asc`).
///
/// Decoded to bytes, not text: `%FE` and `%FF` (not UTF-8, as a Latin-1 or GBK client sends)
/// are two values, where a decoding to text makes both the replacement character. For UTF-8
/// the form is what `form_urlencoded` writes.
fn canonical_query(query: &str, ignore: &[String]) -> String {
    // Credentials are not matched on: a replaying client holds another token. They are masked
    // in the raw query as the stored query has them (`mask_query`), so the two always agree.
    let query = crate::model::params::masked_query(query);
    let mut pairs = query_pairs(&query);
    pairs.retain(|(k, _)| !ignore.iter().any(|i| i.as_bytes() == k.as_slice()));
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::with_capacity(query.len());
    for (k, v) in &pairs {
        if !out.is_empty() {
            out.push('&');
        }
        out.extend(form_urlencoded::byte_serialize(k));
        out.push('=');
        out.extend(form_urlencoded::byte_serialize(v));
    }
    out
}

/// A query's `name=value` pairs in the order sent, each decoded to the bytes it stands for
/// (`+` is a space), as `form_urlencoded::parse` reads them but without making bytes that are
/// not UTF-8 a replacement character.
pub(crate) fn query_pairs(query: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let decoded = |part: &[u8]| -> Vec<u8> {
        if !part.contains(&b'+') {
            return percent_encoding::percent_decode(part).collect();
        }
        let spaced: Vec<u8> = part.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
        percent_encoding::percent_decode(&spaced).collect()
    };
    (query.as_bytes().split(|&b| b == b'&'))
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.iter().position(|&b| b == b'=') {
            Some(at) => (decoded(&pair[..at]), decoded(&pair[at + 1..])),
            None => (decoded(pair), Vec::new()),
        })
        .collect()
}

/// The boundary every `multipart/*` body is keyed with (see [`canonical_body`]).
pub(crate) const KEYED_BOUNDARY: &str = "ims-vcr-boundary";

/// JSON bodies with keys sorted and whitespace removed; other bodies as they are. Credentials
/// (JSON fields, and form fields when `content_type` says the body is a form) are masked. A
/// `multipart/*` body's boundary is keyed as [`KEYED_BOUNDARY`]: clients (python-requests, Go's
/// `mime/multipart`) draw a new random one for every request, so the same upload would
/// otherwise never match its recording.
fn canonical_body(body: &[u8], content_type: Option<&str>) -> Vec<u8> {
    let canonical = json_sorted_or_masked(body, content_type);
    // The boundary the type declares only: a store recorded before boundaries were keyed is
    // looked up with the type stripped of it (`playback::legacy_multipart`), its body as sent.
    match crate::model::multipart::boundary(content_type) {
        Some(boundary) if boundary != KEYED_BOUNDARY => with_boundary_keyed(&canonical, boundary),
        _ => canonical,
    }
}

/// A `multipart/*` `body` with each delimiter of `boundary` (`--boundary`) made
/// [`KEYED_BOUNDARY`]'s.
pub(crate) fn with_boundary_keyed(body: &[u8], boundary: &str) -> Vec<u8> {
    let (delimiter, keyed) = (format!("--{boundary}"), format!("--{KEYED_BOUNDARY}"));
    crate::model::replaced_all(body, delimiter.as_bytes(), keyed.as_bytes()).unwrap_or_else(|| body.to_vec())
}

/// [`canonical_body`] before its multipart boundary is replaced.
fn json_sorted_or_masked(body: &[u8], content_type: Option<&str>) -> Vec<u8> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(mut value) => {
            mask_json(&mut value);
            serde_json::to_vec(&sorted(value)).expect("a parsed value serialises")
        }
        Err(_) => match mask_body(body, content_type) {
            // JSON after a byte-order mark comes back masked as plain JSON, which is what is
            // stored: sorted as the stored body's key sorts it.
            Some((masked, _)) => match serde_json::from_slice::<serde_json::Value>(&masked) {
                Ok(value) => serde_json::to_vec(&sorted(value)).expect("a parsed value serialises"),
                Err(_) => masked,
            },
            None => body.to_vec(),
        },
    }
}

fn sorted(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_two_lower_case_digits_per_byte() {
        let bytes: Vec<u8> = (0..=u8::MAX).collect();
        let expected: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex(&bytes), expected);
        assert_eq!(hex(&[]), "");
    }

    fn key(method: &str, path: &str, query: Option<&str>, body: &[u8]) -> RequestKey {
        RequestKey::new(
            &MatchRules::default(),
            method,
            path,
            query,
            |_| vec![],
            body,
        )
    }

    #[test]
    fn query_order_and_encoding_do_not_matter() {
        let a = key("GET", "/v2/images", Some("owner=a&limit=2&name=x+y"), b"");
        let b = key("GET", "/v2/images", Some("limit=2&name=x%20y&owner=a"), b"");
        assert_eq!(a, b);
        assert_eq!(a.canonical(), "GET /v2/images?limit=2&name=x+y&owner=a");
    }

    /// Values that are not UTF-8 (a Latin-1 or GBK client's) are told apart by their bytes,
    /// never all made the replacement character; UTF-8 ones keep the form they always had.
    #[test]
    fn query_bytes_that_are_not_utf8_are_told_apart() {
        let q = |query: &str| key("GET", "/v2/images", Some(query), b"");
        assert_ne!(q("name=%FE"), q("name=%FF"));
        assert_ne!(q("name=%FE"), q("name=%EF%BF%BD"));
        assert_ne!(q("name=%C0"), q("name=%EF%BF%BD"));
        assert_eq!(q("name=%fe&a=1").canonical(), "GET /v2/images?a=1&name=%FE");
        assert_eq!(q("b=%E4%B8%AD+x&a").canonical(), "GET /v2/images?a=&b=%E4%B8%AD+x");
        assert_eq!(q("&&a=1&"), q("a=1"));
    }

    #[test]
    fn methods_are_matched_as_sent_so_a_lowercase_one_never_shares_a_recording() {
        // An upstream answers `get` with 501 or 405: recorded under GET's key, that answer
        // would be replayed to every GET.
        let upper = key("GET", "/v2/images/x", None, b"");
        let lower = key("get", "/v2/images/x", None, b"");
        assert_ne!(upper, lower);
        assert_eq!(lower.canonical(), "get /v2/images/x");
    }

    #[test]
    fn repeated_query_keys_keep_every_value() {
        let a = key("GET", "/v2/images", Some("tag=b&tag=a"), b"");
        let b = key("GET", "/v2/images", Some("tag=a"), b"");
        assert_ne!(a, b);
        assert_eq!(a.canonical(), "GET /v2/images?tag=b&tag=a");
    }

    #[test]
    fn repeated_query_names_keep_their_values_in_the_order_sent() {
        // Glance pairs `sort_key` and `sort_dir` by position: re-pairing them is another request.
        let sent = key(
            "GET",
            "/v2/images",
            Some("sort_key=name&sort_dir=asc&sort_key=size&sort_dir=desc"),
            b"",
        );
        let repaired = key(
            "GET",
            "/v2/images",
            Some("sort_key=name&sort_dir=desc&sort_key=size&sort_dir=asc"),
            b"",
        );
        let reordered = key(
            "GET",
            "/v2/images",
            Some("sort_key=size&sort_dir=desc&sort_key=name&sort_dir=asc"),
            b"",
        );
        assert_ne!(sent, repaired);
        assert_ne!(sent, reordered);
        assert_eq!(
            sent.canonical(),
            "GET /v2/images?sort_dir=asc&sort_dir=desc&sort_key=name&sort_key=size"
        );
        // Different names still commute.
        let names_moved = key(
            "GET",
            "/v2/images",
            Some("sort_dir=asc&sort_key=name&sort_dir=desc&sort_key=size"),
            b"",
        );
        assert_eq!(sent, names_moved);
        assert_ne!(
            key("GET", "/v2/images", Some("tag=b&tag=a"), b""),
            key("GET", "/v2/images", Some("tag=a&tag=b"), b"")
        );
    }

    #[test]
    fn empty_query_is_no_query() {
        assert_eq!(
            key("GET", "/v2", Some(""), b""),
            key("GET", "/v2", None, b"")
        );
    }

    #[test]
    fn path_escapes_of_unreserved_characters_are_normalised() {
        assert_eq!(
            key("GET", "/a%7eb", None, b""),
            key("GET", "/a~b", None, b"")
        );
        assert_eq!(key("GET", "/a%2fb", None, b"").canonical(), "GET /a%2Fb");
        assert_ne!(
            key("GET", "/a%2Fb", None, b""),
            key("GET", "/a/b", None, b"")
        );
        // A truncated escape is kept literally, never a panic.
        assert_eq!(key("GET", "/a%2", None, b"").canonical(), "GET /a%2");
        assert_eq!(key("GET", "/é%", None, b"").canonical(), "GET /é%");
    }

    #[test]
    fn a_stray_percent_never_turns_into_an_escape() {
        // The fixed-point property of `fuzz/` and `tests/properties.rs`: `/%%61b` used to
        // canonicalise to `/%ab`, which canonicalises again to `/%AB`.
        for (path, canonical) in [
            ("/%%61b", "GET /%%61b"),
            ("/%6%31", "GET /%6%31"),
            ("/%%7e", "GET /%~"),
            ("/%%2f", "GET /%%2F"),
            ("/%%6a", "GET /%j"),
            ("/%41%%42", "GET /A%%42"),
        ] {
            let first = key("GET", path, None, b"");
            assert_eq!(first.canonical(), canonical, "{path}");
            let again = key("GET", &first.canonical()[4..], None, b"");
            assert_eq!(again, first, "{path} is not a fixed point");
        }
    }

    #[test]
    fn json_bodies_match_whatever_their_key_order_and_whitespace() {
        let a = key("POST", "/v2/images", None, br#"{"a":1,"b":{"y":2,"x":1}}"#);
        let b = key(
            "POST",
            "/v2/images",
            None,
            b"{ \"b\": {\"x\":1, \"y\":2}, \"a\": 1 }",
        );
        assert_eq!(a, b);
        assert_ne!(a, key("POST", "/v2/images", None, br#"{"a":2}"#));
    }

    #[test]
    fn a_multipart_body_matches_whatever_boundary_the_client_drew() {
        let rules = MatchRules::default();
        let k = |boundary: &str, file: &str| {
            let content_type = format!("multipart/form-data; boundary={boundary}");
            let body = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n{file}\r\n--{boundary}--\r\n"
            );
            RequestKey::new(&rules, "POST", "/v1/upload", None, |name| match name {
                "content-type" => vec![Box::leak(content_type.clone().into_boxed_str()) as &str],
                _ => vec![],
            }, body.as_bytes())
        };
        let first = k("6a1f0e2b9c8d7e6f5a4b3c2d1e0f9a8b", "bytes");
        assert_eq!(first, k("0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f", "bytes"));
        assert_eq!(first, k(KEYED_BOUNDARY, "bytes"));
        assert_ne!(first, k("0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f", "other bytes"));
    }

    #[test]
    fn a_compressed_json_body_matches_by_what_it_stands_for() {
        use std::io::Write as _;
        let gzip = |json: &[u8], mtime: u32| {
            let mut enc = flate2::GzBuilder::new()
                .mtime(mtime)
                .write(Vec::new(), flate2::Compression::default());
            enc.write_all(json).unwrap();
            enc.finish().unwrap()
        };
        let rules = MatchRules::default();
        let k = |body: &[u8], encoding: &'static str| {
            RequestKey::new(&rules, "POST", "/v2/images", None, |name| match name {
                "content-encoding" => vec![encoding],
                "content-type" => vec!["application/json"],
                _ => vec![],
            }, body)
        };
        let first = k(&gzip(br#"{"a":1,"b":2}"#, 1), "gzip");
        assert_eq!(first, k(&gzip(br#"{"b":2,"a":1}"#, 2), "gzip"));
        assert_eq!(first, k(&gzip(&gzip(br#"{"a":1,"b":2}"#, 3), 4), "gzip, gzip"));
        assert_ne!(first, k(&gzip(br#"{"a":1,"b":3}"#, 1), "gzip"));
        // Undeclared, the bytes are what they are.
        assert_ne!(first, k(&gzip(br#"{"a":1,"b":2}"#, 2), "identity"));
    }

    #[test]
    fn ignored_query_names_and_matched_headers_follow_the_rules() {
        let rules = MatchRules {
            match_headers: vec!["x-project-id".into()],
            ignore_query: vec!["marker".into()],
            volatile: Default::default(),
            shift_time: Vec::new(),
        };
        let k = |q: &str, project: &'static str| {
            RequestKey::new(&rules, "GET", "/v2/images", Some(q), |_| vec![project], b"")
        };
        assert_eq!(k("limit=1&marker=a", "p1"), k("limit=1&marker=b", "p1"));
        assert_ne!(k("limit=1", "p1"), k("limit=1", "p2"));
    }

    #[test]
    fn credential_query_parameters_are_masked_so_another_token_still_matches() {
        for name in [
            "X-Auth-Token",
            "x-auth-token",
            "access_token",
            "token",
            "Password",
            "secret",
            "client_secret",
            "signature",
            "X-Amz-Signature",
            "sig",
            "api_key",
            "APIKEY",
        ] {
            let a = key(
                "GET",
                "/v2/images",
                Some(&format!("limit=1&{name}=first-secret-value")),
                b"",
            );
            let b = key(
                "GET",
                "/v2/images",
                Some(&format!("{name}=other%20secret&limit=1")),
                b"",
            );
            assert_eq!(a, b, "{name}");
            assert!(!a.canonical().contains("first-secret"), "{}", a.canonical());
            assert!(a.canonical().contains("REDACTED"), "{}", a.canonical());
        }
        // Pagination tokens are not credentials: they still tell pages apart.
        assert_ne!(
            key("GET", "/v2/images", Some("page_token=a"), b""),
            key("GET", "/v2/images", Some("page_token=b"), b"")
        );
    }

    #[test]
    fn a_json_body_after_a_byte_order_mark_keys_as_its_stored_form() {
        let live = b"\xEF\xBB\xBF{\"user\":\"u\",\"password\":\"p-1\"}";
        let (stored, _) = crate::model::credentials::mask_body(live, None).unwrap();
        assert_eq!(key("POST", "/v3/auth/tokens", None, live), key("POST", "/v3/auth/tokens", None, &stored));
    }

    #[test]
    fn a_stored_query_keys_as_the_live_one_whatever_hides_its_credential() {
        // The stored query is `mask_query`'s; its key must be the live request's, whatever token
        // either holds, however the credential is hidden.
        for template in [
            "a%3Dz;sk=T",
            "a%3Dz=1;token=T",
            "x;token%3DT",
            "a=1;token=T&b=2",
            "a;sk=T",
            "a=1%3B%2574oken%3DT",
            "page%2Btoken=T",
            "password%3DT",
            "redirect=https%3A%2F%2Fh%2Fx%3Ftoken%3DT&limit=1",
            "token=T",
            "token",
            "token%3DT",
            "a=1&x-auth-token%3DT",
            "next=%2Fx%3Ftoken%3DT",
            "redirect=https%253A%252F%252Fh%252Fx%253Ftoken%253DT",
            "a=1%253Btoken%253DT",
        ] {
            let live = template.replace('T', "first-value");
            let other = template.replace('T', "second-value");
            let stored = crate::model::credentials::mask_query(&live).map_or(live.clone(), |m| m.0);
            let k = |q: &str| key("GET", "/v2/images", Some(q), b"");
            assert_eq!(k(&live), k(&stored), "{template}: stored {stored}");
            assert_eq!(k(&live), k(&other), "{template}");
            assert!(!k(&live).canonical().contains("first-value"), "{template}");
        }
        // Filters on data about a credential tell requests apart.
        assert_ne!(
            key("GET", "/v2/images", Some("img_signature_key_type=RSA-PSS"), b""),
            key("GET", "/v2/images", Some("img_signature_key_type=DSA"), b"")
        );
        assert_ne!(
            key("GET", "/v3/users", Some("password_expires_at=lt:2030-01-01T00:00:00Z"), b""),
            key("GET", "/v3/users", Some("password_expires_at=gt:1999-01-01T00:00:00Z"), b"")
        );
        // A query without credentials keys as it always did.
        for (query, canonical) in [
            ("filter=a;b&sort=name", "GET /v2/images?filter=a%3Bb&sort=name"),
            ("x;sk%3D", "GET /v2/images?x%3Bsk%3D="),
            ("name=a%2Bb&limit=1", "GET /v2/images?limit=1&name=a%2Bb"),
        ] {
            assert_eq!(key("GET", "/v2/images", Some(query), b"").canonical(), canonical);
        }
    }

    #[test]
    fn credential_fields_of_json_request_bodies_are_masked_so_another_password_still_matches() {
        let a = key(
            "POST",
            "/v3/auth/tokens",
            None,
            br#"{"auth":{"identity":{"password":{"user":{"name":"u","password":"hunter2-first"}}}},"client_secret":"s1"}"#,
        );
        let b = key(
            "POST",
            "/v3/auth/tokens",
            None,
            br#"{"client_secret":"s2","auth":{"identity":{"password":{"user":{"password":"other","name":"u"}}}}}"#,
        );
        assert_eq!(a, b);
        assert_ne!(
            a,
            key(
                "POST",
                "/v3/auth/tokens",
                None,
                br#"{"auth":{"identity":{"password":{"user":{"name":"v","password":"x"}}}}}"#,
            )
        );
    }

    #[test]
    fn credential_fields_of_form_request_bodies_are_masked_so_another_password_still_matches() {
        let form = |body: &'static [u8]| {
            RequestKey::new(
                &MatchRules::default(),
                "POST",
                "/oauth/token",
                None,
                |name| match name {
                    "content-type" => vec!["application/x-www-form-urlencoded; charset=utf-8"],
                    _ => vec![],
                },
                body,
            )
        };
        let a = form(b"grant_type=password&username=u&password=first-pw&client_secret=s1");
        let b = form(b"grant_type=password&username=u&password=other&client_secret=s2");
        assert_eq!(a, b);
        assert_ne!(
            a,
            form(b"grant_type=password&username=v&password=first-pw&client_secret=s1")
        );
        // No Content-Type, but it reads as a form (`curl -d`): masked the same way.
        assert_eq!(
            key("POST", "/x", None, b"password=a"),
            key("POST", "/x", None, b"password=b")
        );
        // Not a form: the bytes are the body.
        assert_ne!(
            key("POST", "/x", None, b"password is a"),
            key("POST", "/x", None, b"password is b")
        );
    }

    #[test]
    fn digest_is_stable_across_releases() {
        // Pinned: a change here silently orphans every store on disk.
        assert_eq!(
            key("GET", "/v2/images/x", None, b"").hex(),
            hex(&Sha256::digest(b"GET /v2/images/x"))
        );
    }

    #[test]
    fn match_rules_refuse_credential_volatile_and_hop_by_hop_headers() {
        for name in [
            "x-auth-token",
            "cookie",
            "authorization",
            "x-client-secret",
            "x-amz-signature",
            "user-agent",
            "x-sdk-date",
            "connection",
            "x-ims-vcr-session",
            "bad header",
        ] {
            let rules = MatchRules {
                match_headers: vec!["x-project-id".into(), name.into()],
                ..MatchRules::default()
            };
            let e = rules.validate().expect_err(name);
            assert_eq!(e.index, 1, "{name}");
            assert!(e.to_string().contains(name), "{e}");
        }
        let ok = MatchRules {
            match_headers: vec!["x-project-id".into(), "x-language".into()],
            ..MatchRules::default()
        };
        assert_eq!(ok.validate(), Ok(()));
    }

    #[test]
    fn a_credential_header_in_the_rules_never_enters_the_key() {
        let rules = MatchRules {
            match_headers: vec!["x-auth-token".into()],
            ..MatchRules::default()
        };
        let only = |name: &str| match name {
            "x-auth-token" => vec!["s3cr3t-token"],
            _ => Vec::new(),
        };
        let key = RequestKey::new(&rules, "GET", "/x", None, only, b"");
        assert!(!key.canonical().contains("s3cr3t"), "{}", key.canonical());
    }

    #[test]
    fn a_matched_header_value_keys_as_its_stored_form() {
        let rules = MatchRules {
            match_headers: vec!["x-origin".into()],
            ..MatchRules::default()
        };
        let origin = |value: &'static str| {
            move |name: &str| if name == "x-origin" { vec![value] } else { Vec::new() }
        };
        let live = RequestKey::new(&rules, "GET", "/x", None, origin("/p?token=t-1"), b"");
        let other = RequestKey::new(&rules, "GET", "/x", None, origin("/p?token=t-2"), b"");
        let stored = RequestKey::new(&rules, "GET", "/x", None, origin("/p?token=REDACTED"), b"");
        assert_eq!(live, stored);
        assert_eq!(live, other);
        assert!(!live.canonical().contains("t-1"), "{}", live.canonical());
        let plain = RequestKey::new(&rules, "GET", "/x", None, origin("p1"), b"");
        assert_eq!(plain.canonical(), "GET /x\nx-origin: p1");
    }

    #[test]
    fn a_live_key_is_the_key_in_its_session_asked_once_or_again_past_the_memo() {
        let rules = MatchRules {
            match_headers: vec!["x-project-id".into()],
            ..MatchRules::default()
        };
        let header = |_: &str| vec!["p1"];
        let body = br#"{"b": 1, "a": 2}"#;
        for session in [None, Some("suite/one")] {
            let expected = RequestKey::new(&rules, "post", "/v2/images", Some("b=1&a=2"), header, body)
                .in_session(session);
            // The first time hashes; the second comes from the memo; past its capacity it
            // starts over and hashes again.
            for _ in 0..2 {
                let live = RequestKey::live(
                    canonical_form(&rules, ("post", "/v2/images", Some("b=1&a=2")), header, body),
                    session,
                );
                assert_eq!(live, expected);
            }
            for i in 0..=memo::CAPACITY {
                let path = format!("/v2/images/{i}");
                let live =
                    RequestKey::live(canonical_form(&rules, ("GET", &path, None), header, b""), session);
                let expected = RequestKey::new(&rules, "GET", &path, None, header, b"").in_session(session);
                assert_eq!(live, expected, "{path}");
            }
            let live = RequestKey::live(
                canonical_form(&rules, ("post", "/v2/images", Some("b=1&a=2")), header, body),
                session,
            );
            assert_eq!(live, expected);
        }
    }
}
