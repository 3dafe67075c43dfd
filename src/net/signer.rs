//! AK/SK request signing (`SDK-HMAC-SHA256`) byte-compatible with Huawei Cloud's official SDK
//! signer (`huaweicloudsdkcore.signer.signer.Signer`), and loading the AK/SK credentials from the
//! SDKs' environment variables. The matching verifier is test code: the tests' fake IMS upstream
//! runs it (`tests/util/gateway.rs`), built on [`canonical_request`] and [`string_to_sign`].

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use hyper::http::{self, HeaderMap, HeaderValue};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};
use crate::model::key::hex;

/// Environment variable holding the access key, as read by every Huawei Cloud SDK.
pub const ENV_AK: &str = "HUAWEICLOUD_SDK_AK";
/// Environment variable holding the secret key.
pub const ENV_SK: &str = "HUAWEICLOUD_SDK_SK";
/// Environment variable holding the STS security token of temporary credentials.
pub const ENV_SECURITY_TOKEN: &str = "HUAWEICLOUD_SDK_SECURITY_TOKEN";

/// Headers a client puts on a signed request that the proxy must drop before re-signing.
pub const SIGNATURE_HEADERS: &[&str] = &["authorization", "x-sdk-date"];

/// Headers never signed even when present. The SDK signs every header it sets itself; these are
/// the ones its HTTP library (`requests`) adds after signing, plus hop-by-hop headers, all of
/// which a transport may add, rewrite or drop, which would break the signature in transit.
pub const UNSIGNED_HEADERS: &[&str] = &[
    "authorization",
    "accept",
    "accept-encoding",
    "connection",
    "content-length",
    "expect",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

const ALGORITHM: &str = "SDK-HMAC-SHA256";
const HEADER_SDK_DATE: &str = "x-sdk-date";
const HEADER_SECURITY_TOKEN: &str = "x-security-token";
const HEADER_AUTH_TOKEN: &str = "x-auth-token";
const HEADER_CONTENT_SHA256: &str = "x-sdk-content-sha256";
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// Hex SHA-256 of zero bytes: the SDK's payload hash for an absent or empty body.
const EMPTY_BODY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// `%Y%m%dT%H%M%SZ`, the only X-Sdk-Date format the SDK writes or accepts.
const SDK_DATE_FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");

/// Python's `urllib.parse.quote(s, safe='~')`: everything but `A-Za-z0-9_.-~` is escaped
/// (including `/`), as the SDK escapes path segments and query keys and values.
const SDK_ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// AK/SK credentials read from the environment the SDKs use.
#[derive(Clone)]
pub struct Credentials {
    /// Access key id (appears in `Authorization` as `Access=`).
    pub ak: String,
    /// Secret key (signs; never sent).
    pub sk: String,
    /// STS security token of temporary credentials, sent as `X-Security-Token`.
    pub security_token: Option<String>,
}

impl Credentials {
    /// Reads HUAWEICLOUD_SDK_AK, HUAWEICLOUD_SDK_SK, HUAWEICLOUD_SDK_SECURITY_TOKEN. Ok(None) if AK and SK are both unset;
    /// Err(String message naming the missing variable) if only one of AK/SK is set or one is empty.
    pub fn from_env() -> Result<Option<Credentials>, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Same, but from a lookup closure (for tests), e.g. |name| std::env::var(name).ok()
    ///
    /// An empty security token counts as unset. Values that cannot go into an HTTP header
    /// (control characters) are rejected here so that signing never has to fail later.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Credentials>, String> {
        let (ak, sk) = match (get(ENV_AK), get(ENV_SK)) {
            (None, None) => return Ok(None),
            (Some(_), None) => return Err(format!("{ENV_SK} is not set but {ENV_AK} is")),
            (None, Some(_)) => return Err(format!("{ENV_AK} is not set but {ENV_SK} is")),
            (Some(ak), Some(sk)) => (ak, sk),
        };
        require_non_empty(ENV_AK, &ak)?;
        require_non_empty(ENV_SK, &sk)?;
        require_header_safe(ENV_AK, &ak)?;
        let security_token = get(ENV_SECURITY_TOKEN).filter(|token| !token.is_empty());
        if let Some(token) = &security_token {
            require_header_safe(ENV_SECURITY_TOKEN, token)?;
        }
        Ok(Some(Credentials {
            ak,
            sk,
            security_token,
        }))
    }
}

fn require_non_empty(name: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{name} is set but empty"));
    }
    Ok(())
}

fn require_header_safe(name: &str, value: &str) -> Result<(), String> {
    HeaderValue::from_str(value)
        .map(drop)
        .map_err(|_| format!("{name} contains characters that cannot be sent in an HTTP header"))
}

impl fmt::Debug for Credentials {
    /// Shows only the first four characters of the AK; never the SK or the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ak_chars = self.ak.chars().count();
        // A key of four characters or fewer would be shown whole, so show none of it.
        let shown: String = self
            .ak
            .chars()
            .take(if ak_chars > 4 { 4 } else { 0 })
            .collect();
        f.debug_struct("Credentials")
            .field("ak", &format_args!("{shown}…"))
            .field("sk", &format_args!("<redacted>"))
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// True if the request headers carry an SDK-HMAC-SHA256 signature (Authorization starts with "SDK-HMAC-SHA256").
pub fn is_aksk_signed(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(http::header::AUTHORIZATION)
        .iter()
        .any(|value| value.as_bytes().starts_with(ALGORITHM.as_bytes()))
}

/// True when a proxy holding AK/SK should sign the request: it is signed with an AK/SK already
/// (`SDK-HMAC-SHA256`, `SDK-HMAC-SM3`, the derived `V11-HMAC-SHA256`: the client's dummy keys),
/// or it carries no credential of its own (no `Authorization`, no `X-Auth-Token`). A request
/// holding only a token, or another `Authorization` (`Basic`, `Bearer`), goes as it came: a
/// gateway given both the client's token and the key owner's signature would pick one of two
/// identities, and the client chose its own.
pub fn wants_proxy_signature(headers: &http::HeaderMap) -> bool {
    let mut authorizations = headers.get_all(http::header::AUTHORIZATION).iter().peekable();
    if authorizations.peek().is_none() {
        return !headers.contains_key(HEADER_AUTH_TOKEN);
    }
    authorizations.all(|value| {
        let value = value.as_bytes();
        ["SDK-HMAC-", "V11-HMAC-"].iter().any(|scheme| {
            value.len() >= scheme.len() && value[..scheme.len()].eq_ignore_ascii_case(scheme.as_bytes())
        })
    })
}

/// A query as the proxy forwards it when it signs: a bare `+` written `%20`. A client that sends
/// a bare `+` (python-requests' `params`, Go's `url.Values`) means a space, and so does a gateway
/// that reads the query as a form (APIG's published signer reads it with Go's `URL.Query()`);
/// the SDK's canonical form, which the signature covers, reads `+` literally. Sent as `%20`,
/// the gateway and the signature agree whichever way the gateway reads `+`.
pub fn query_to_sign(raw_query: &str) -> std::borrow::Cow<'_, str> {
    match raw_query.contains('+') {
        true => std::borrow::Cow::Owned(raw_query.replace('+', "%20")),
        false => std::borrow::Cow::Borrowed(raw_query),
    }
}

/// The headers an AK/SK signature (`SignedHeaders=host;x-sdk-date`) covers that the proxy
/// changes on the way upstream (`host`, `accept-encoding`): such a signature no longer verifies
/// there. Empty when the request is not AK/SK-signed, or its signature covers none of them (the
/// Go SDK signs only `user-agent;x-project-id;x-sdk-date`, which the proxy passes as they are).
pub fn signed_headers_the_proxy_changes(headers: &http::HeaderMap) -> Vec<&'static str> {
    let signed = (headers.get_all(http::header::AUTHORIZATION).iter())
        .filter(|value| value.as_bytes().starts_with(ALGORITHM.as_bytes()))
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.split_once("SignedHeaders="))
        .map(|(_, rest)| rest.split([',', ' ']).next().unwrap_or_default());
    let mut changed = Vec::new();
    for list in signed {
        for name in ["host", "accept-encoding"] {
            if list.split(';').any(|n| n.trim().eq_ignore_ascii_case(name)) && !changed.contains(&name) {
                changed.push(name);
            }
        }
    }
    changed
}

/// Signs a request in place the way huaweicloudsdkcore does: removes any existing Authorization / X-Sdk-Date,
/// sets Host to `host` (`host[:port]` exactly as given), sets X-Sdk-Date from `now` (format %Y%m%dT%H%M%SZ, UTC),
/// sets X-Security-Token when the credentials have one, then computes and sets Authorization.
/// `uri` carries path and raw query as they will go on the wire.
///
/// A client's X-Security-Token is removed too: it only fits the client's own AK. Like the SDK it also trims surrounding whitespace from header values (the SDK sends the trimmed
/// values it signed) and, for a Content-Type other than JSON/BSON, sets
/// `X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD`. The SDK puts the query on the wire in canonical form;
/// pass `canonical_query_string(raw)` as the query to do the same.
///
/// # Panics
/// If `host`, the AK or the security token contain control characters, which cannot be sent in a
/// header at all. `Credentials::from_lookup` rejects such AK/token values, and a `host[:port]`
/// taken from a URI never has them.
pub fn sign(
    creds: &Credentials,
    method: &http::Method,
    uri: &http::Uri,
    host: &str,
    headers: &mut http::HeaderMap,
    body: &[u8],
    now: time::OffsetDateTime,
) {
    for name in SIGNATURE_HEADERS {
        headers.remove(*name);
    }
    // A client's token belongs to the client's own AK; sent with ours the gateway rejects it.
    headers.remove(HEADER_SECURITY_TOKEN);
    let sdk_date = format_sdk_date(now);
    headers.insert(
        http::header::HOST,
        HeaderValue::from_str(host).expect("host[:port] has no control characters"),
    );
    headers.insert(
        HEADER_SDK_DATE,
        HeaderValue::from_str(&sdk_date).expect("the date is ASCII digits and letters"),
    );
    if let Some(token) = &creds.security_token {
        headers.insert(
            HEADER_SECURITY_TOKEN,
            HeaderValue::from_str(token)
                .expect("from_lookup rejects tokens that are not header-safe"),
        );
    }
    mark_unsigned_payload(headers);
    trim_header_values(headers);

    let signed = signed_headers(headers);
    let canonical = canonical_request(method, uri, headers, &signed, body);
    let to_sign = string_to_sign(&canonical, &sdk_date);
    let authorization = format!(
        "{ALGORITHM} Access={}, SignedHeaders={}, Signature={}",
        creds.ak,
        signed.join(";"),
        signature(&creds.sk, &to_sign)
    );
    headers.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&authorization)
            .expect("from_lookup rejects AKs that are not header-safe"),
    );
}

/// Formats `now` in UTC the way the SDK writes X-Sdk-Date.
fn format_sdk_date(now: OffsetDateTime) -> String {
    now.to_offset(UtcOffset::UTC)
        .format(SDK_DATE_FORMAT)
        .expect("a UTC date-time always formats as %Y%m%dT%H%M%SZ")
}

/// The SDK declares non-JSON/BSON payloads unsigned: it adds `X-Sdk-Content-Sha256:
/// UNSIGNED-PAYLOAD` (which is then signed) and uses that literal instead of the body's hash.
fn mark_unsigned_payload(headers: &mut HeaderMap) {
    let needs_marker = headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|value| {
            let value = value.as_bytes();
            !value.is_empty()
                && !value.starts_with(b"application/json")
                && !value.starts_with(b"application/bson")
        });
    if needs_marker {
        headers.insert(
            HEADER_CONTENT_SHA256,
            HeaderValue::from_static(UNSIGNED_PAYLOAD),
        );
    }
}

/// The SDK strips every header value (Python `str.strip`) and sends the stripped value, so the
/// wire matches what it signed.
fn trim_header_values(headers: &mut HeaderMap) {
    for value in headers.values_mut() {
        let trimmed = trim_value(value.as_bytes());
        if trimmed.len() != value.as_bytes().len() {
            *value = HeaderValue::from_bytes(trimmed)
                .expect("a slice of a valid header value is a valid header value");
        }
    }
}

/// Trims like Python's `str.strip()` does on the decoded value; for bytes that are not UTF-8 only
/// ASCII whitespace can be recognised.
fn trim_value(bytes: &[u8]) -> &[u8] {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.trim().as_bytes(),
        Err(_) => bytes.trim_ascii(),
    }
}

/// The headers the SDK would sign for this header set: every header present, lower-cased and
/// sorted, except names containing `_` (the SDK skips those, presumably because gateways and
/// proxies commonly drop such headers) and `UNSIGNED_HEADERS`.
pub fn signed_headers(headers: &http::HeaderMap) -> Vec<String> {
    let mut names: Vec<String> = headers
        .keys()
        .map(|name| name.as_str().to_ascii_lowercase())
        .filter(|name| !name.contains('_') && !UNSIGNED_HEADERS.contains(&name.as_str()))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The SDK's canonical request: method, canonical URI, canonical query, `name:value` lines for
/// `signed_headers`, the `;`-joined list and the payload hash, one per line. Exposed (with
/// `string_to_sign` and `signature`) for tests and for the tests' fake upstream, which verifies
/// signatures with them.
pub fn canonical_request(
    method: &http::Method,
    uri: &http::Uri,
    headers: &http::HeaderMap,
    signed_headers: &[String],
    body: &[u8],
) -> String {
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        method.as_str().to_ascii_uppercase(),
        canonical_uri(uri.path()),
        canonical_query_string(uri.query().unwrap_or("")),
        canonical_headers(headers, signed_headers),
        signed_headers.join(";"),
        payload_hash(headers, body)
    )
}

/// The SDK percent-decodes the whole path, splits it on `/`, escapes each segment with
/// `quote(safe='~')` and appends `/` unless the result already ends with one. Because it decodes
/// first, an escaped slash (`%2F`) in the wire path becomes a segment separator here.
pub fn canonical_uri(path: &str) -> String {
    // An origin-form URI always has a path; treat a missing one as the root like `http` does.
    let path = if path.is_empty() { "/" } else { path };
    let decoded = percent_decode_str(path).decode_utf8_lossy();
    let mut canonical = decoded
        .split('/')
        .map(sdk_escape)
        .collect::<Vec<_>>()
        .join("/");
    if !canonical.ends_with('/') {
        canonical.push('/');
    }
    canonical
}

/// The SDK's canonical query string from a raw (wire) query: `key=value` pairs percent-decoded,
/// sorted by key then value, re-escaped with `quote(safe='~')` and joined with `&`. A pair without
/// `=` has an empty value. `+` is a literal plus, not a space, as the SDK never sends a bare `+`.
/// The SDK sends exactly this string as the query, so it is also the wire form to forward.
pub fn canonical_query_string(raw_query: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode_lossy(key), percent_decode_lossy(value))
        })
        .collect();
    // Byte order of UTF-8 equals code-point order, which is how Python sorts the SDK's str pairs.
    pairs.sort();
    pairs
        .iter()
        .map(|(key, value)| format!("{}={}", sdk_escape(key), sdk_escape(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Python's `unquote`: `%XX` escapes decoded, invalid UTF-8 replaced with U+FFFD.
fn percent_decode_lossy(text: &str) -> String {
    percent_decode_str(text).decode_utf8_lossy().into_owned()
}

fn sdk_escape(text: &str) -> String {
    utf8_percent_encode(text, SDK_ESCAPE).to_string()
}

/// `name:value\n` for each signed header, then one more `\n` as the SDK joins with `\n` and
/// appends a newline (so the canonical request has an empty line before the signed-header list).
fn canonical_headers(headers: &HeaderMap, signed_headers: &[String]) -> String {
    let lines: Vec<String> = signed_headers
        .iter()
        .map(|name| format!("{name}:{}", header_text(headers, name)))
        .collect();
    lines.join("\n") + "\n"
}

/// A header's trimmed value as text. The SDK only ever has one value per name; several values
/// (which only a non-SDK client could send) are joined with `,` as HTTP defines for lists.
fn header_text(headers: &HeaderMap, name: &str) -> String {
    headers
        .get_all(name)
        .iter()
        .map(|value| String::from_utf8_lossy(trim_value(value.as_bytes())).into_owned())
        .collect::<Vec<_>>()
        .join(",")
}

/// Empty body: the hash of nothing; otherwise an `X-Sdk-Content-Sha256` value (the SDK's
/// `UNSIGNED-PAYLOAD`) stands in for the body's hash; otherwise the hex SHA-256 of the body.
fn payload_hash(headers: &HeaderMap, body: &[u8]) -> String {
    if body.is_empty() {
        return EMPTY_BODY_SHA256.to_owned();
    }
    let declared = header_text(headers, HEADER_CONTENT_SHA256);
    if !declared.is_empty() {
        return declared;
    }
    hex(&Sha256::digest(body))
}

/// `SDK-HMAC-SHA256\n{X-Sdk-Date}\n{hex sha256(canonical request)}`.
pub fn string_to_sign(canonical_request: &str, sdk_date: &str) -> String {
    format!(
        "{ALGORITHM}\n{sdk_date}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    )
}

/// Lowercase hex HMAC-SHA256 of `string_to_sign` keyed with the SK.
pub fn signature(sk: &str, string_to_sign: &str) -> String {
    hex(&hmac_sha256(sk, string_to_sign).finalize().into_bytes())
}

fn hmac_sha256(sk: &str, string_to_sign: &str) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(sk.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    mac
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::http::{HeaderName, Method, Uri};
    use serde_json::Value;
    use time::PrimitiveDateTime;

    const VECTORS: &str = include_str!("../../tests/vectors/signer_vectors.json");

    fn vectors() -> Vec<Value> {
        let document: Value = serde_json::from_str(VECTORS).unwrap();
        document["vectors"].as_array().unwrap().clone()
    }

    fn text<'a>(value: &'a Value, key: &str) -> &'a str {
        value[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} is not a string"))
    }

    fn pairs(value: &Value) -> Vec<(String, String)> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|pair| {
                (
                    pair[0].as_str().unwrap().to_owned(),
                    pair[1].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    fn header_map(pairs: &[(String, String)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value.as_bytes()).unwrap(),
            );
        }
        headers
    }

    fn strings(value: &Value) -> Vec<String> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    }

    fn parse_date(sdk_date: &str) -> OffsetDateTime {
        PrimitiveDateTime::parse(sdk_date, SDK_DATE_FORMAT)
            .unwrap()
            .assume_utc()
    }

    fn vector_credentials(vector: &Value) -> Credentials {
        Credentials {
            ak: text(vector, "ak").to_owned(),
            sk: text(vector, "sk").to_owned(),
            security_token: vector["security_token"].as_str().map(str::to_owned),
        }
    }

    /// What `sign` produces for a vector: method, uri and the signed headers.
    fn sign_vector(vector: &Value) -> (Method, Uri, HeaderMap) {
        let method = Method::from_bytes(text(vector, "method").as_bytes()).unwrap();
        let uri: Uri = text(vector, "path_and_query").parse().unwrap();
        let mut headers = header_map(&pairs(&vector["headers"]));
        sign(
            &vector_credentials(vector),
            &method,
            &uri,
            text(vector, "host"),
            &mut headers,
            text(vector, "body").as_bytes(),
            parse_date(text(vector, "x_sdk_date")),
        );
        (method, uri, headers)
    }

    fn test_credentials() -> Credentials {
        Credentials {
            ak: "HPUATESTACCESSKEY001".to_owned(),
            sk: "test-secret-key-do-not-print".to_owned(),
            security_token: Some("test-security-token-do-not-print".to_owned()),
        }
    }

    #[test]
    fn vectors_file_covers_the_required_cases() {
        let names: Vec<String> = vectors()
            .iter()
            .map(|v| text(v, "name").to_owned())
            .collect();
        for required in [
            "get_image_no_query",
            "get_trailing_slash",
            "query_reserved_characters",
            "query_non_ascii",
            "query_repeated_keys",
            "post_json_body",
            "post_empty_body",
            "host_with_port",
            "security_token",
        ] {
            assert!(names.iter().any(|n| n == required), "missing {required}");
        }
    }

    #[test]
    fn signature_matches_official_sdk_vectors() {
        for vector in vectors() {
            let name = text(&vector, "name");
            let expected = &vector["expected"];
            let (method, uri, headers) = sign_vector(&vector);
            let body = text(&vector, "body").as_bytes();
            let signed = strings(&expected["signed_headers"]);

            assert_eq!(signed_headers(&headers), signed, "{name}: signed headers");
            let canonical = canonical_request(&method, &uri, &headers, &signed, body);
            assert_eq!(
                canonical,
                text(expected, "canonical_request"),
                "{name}: canonical request"
            );
            let to_sign = string_to_sign(&canonical, text(&vector, "x_sdk_date"));
            assert_eq!(
                to_sign,
                text(expected, "string_to_sign"),
                "{name}: string to sign"
            );
            assert_eq!(
                signature(text(&vector, "sk"), &to_sign),
                text(expected, "signature"),
                "{name}: signature"
            );
            assert_eq!(
                headers[http::header::AUTHORIZATION],
                text(expected, "authorization"),
                "{name}: Authorization"
            );
        }
    }

    #[test]
    fn signed_request_headers_equal_what_the_sdk_sends() {
        for vector in vectors() {
            let name = text(&vector, "name");
            let (_, _, headers) = sign_vector(&vector);
            let wire = pairs(&vector["expected"]["wire_headers"]);
            assert_eq!(headers.len(), wire.len(), "{name}: header count");
            for (wire_name, wire_value) in wire {
                assert_eq!(
                    headers[wire_name.to_ascii_lowercase().as_str()].as_bytes(),
                    wire_value.as_bytes(),
                    "{name}: header {wire_name}"
                );
            }
        }
    }

    #[test]
    fn query_pairs_in_any_order_canonicalise_to_the_sdk_wire_query() {
        for vector in vectors() {
            let name = text(&vector, "name");
            let unsorted = pairs(&vector["query"])
                .iter()
                .map(|(k, v)| format!("{}={}", sdk_escape(k), sdk_escape(v)))
                .collect::<Vec<_>>()
                .join("&");
            let wire = text(&vector, "raw_query");
            assert_eq!(canonical_query_string(&unsorted), wire, "{name}");
            assert_eq!(canonical_query_string(wire), wire, "{name}: idempotent");
        }
    }

    #[test]
    fn sign_drops_a_clients_security_token_when_the_proxy_has_none() {
        let creds = Credentials {
            security_token: None,
            ..test_credentials()
        };
        let uri: Uri = "/v2/images/abc".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            HEADER_SECURITY_TOKEN,
            HeaderValue::from_static("client-token"),
        );
        sign(
            &creds,
            &Method::GET,
            &uri,
            "h",
            &mut headers,
            b"",
            parse_date("20261127T080000Z"),
        );
        assert!(!headers.contains_key(HEADER_SECURITY_TOKEN));
        assert!(!signed_headers(&headers).contains(&HEADER_SECURITY_TOKEN.to_owned()));
    }

    #[test]
    fn sign_writes_the_date_in_utc() {
        let creds = test_credentials();
        let uri: Uri = "/".parse().unwrap();
        let mut headers = HeaderMap::new();
        let local = parse_date("20261127T080000Z").to_offset(UtcOffset::from_hms(8, 0, 0).unwrap());
        sign(&creds, &Method::GET, &uri, "h", &mut headers, b"", local);
        assert_eq!(headers[HEADER_SDK_DATE], "20261127T080000Z");
    }

    #[test]
    fn transport_headers_and_underscored_names_are_left_out_of_the_signature() {
        let mut headers = HeaderMap::new();
        for name in [
            "content-length",
            "connection",
            "accept-encoding",
            "x_trace_id",
            "x-b",
            "x-a",
        ] {
            headers.insert(name, HeaderValue::from_static("1"));
        }
        assert_eq!(signed_headers(&headers), vec!["x-a", "x-b"]);
    }

    #[test]
    fn canonical_uri_decodes_then_escapes_each_segment_and_adds_a_trailing_slash() {
        assert_eq!(canonical_uri("/v2/images/ID"), "/v2/images/ID/");
        assert_eq!(canonical_uri("/v2/images/"), "/v2/images/");
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/a%2Fb/c%20d:e"), "/a/b/c%20d%3Ae/");
        assert_eq!(canonical_uri("/%E9%95%9C%E5%83%8F"), "/%E9%95%9C%E5%83%8F/");
    }

    #[test]
    fn canonical_query_treats_plus_literally_and_missing_values_as_empty() {
        assert_eq!(canonical_query_string("b=a+b&a"), "a=&b=a%2Bb");
        assert_eq!(canonical_query_string(""), "");
        assert_eq!(canonical_query_string("k=2&&k=1"), "k=1&k=2");
    }

    #[test]
    fn empty_body_hash_is_the_sha256_of_nothing() {
        assert_eq!(hex(&Sha256::digest(b"")), EMPTY_BODY_SHA256);
    }

    #[test]
    fn the_proxy_signs_aksk_signed_and_credential_less_requests_only() {
        let with = |pairs: &[(&'static str, &str)]| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.append(*name, value.parse().unwrap());
            }
            wants_proxy_signature(&headers)
        };
        assert!(with(&[]));
        assert!(with(&[("authorization", "SDK-HMAC-SHA256 Access=a, SignedHeaders=x, Signature=s")]));
        assert!(with(&[("authorization", "sdk-hmac-sm3 Access=a"), ("x-auth-token", "t")]));
        assert!(with(&[("authorization", "V11-HMAC-SHA256 Credential=a/20261207/r/ims")]));
        assert!(!with(&[("x-auth-token", "t")]));
        assert!(!with(&[("authorization", "Basic dTpw")]));
        assert!(!with(&[("authorization", "Bearer t")]));
        assert!(!with(&[("authorization", "SDK-HMAC-SHA256 Access=a"), ("authorization", "Basic dTpw")]));
    }

    #[test]
    fn a_bare_plus_is_forwarded_as_a_space_when_signing() {
        assert_eq!(query_to_sign("name=my+image&x=a%2Bb"), "name=my%20image&x=a%2Bb");
        assert!(matches!(query_to_sign("a=b"), std::borrow::Cow::Borrowed("a=b")));
    }

    #[test]
    fn is_aksk_signed_recognises_only_sdk_hmac_sha256() {
        let mut headers = HeaderMap::new();
        assert!(!is_aksk_signed(&headers));
        headers.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert!(!is_aksk_signed(&headers));
        headers.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_static("SDK-HMAC-SHA256 Access=A, SignedHeaders=host, Signature=00"),
        );
        assert!(is_aksk_signed(&headers));
    }

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn credentials_are_absent_when_neither_key_is_set() {
        assert!(Credentials::from_lookup(lookup(&[])).unwrap().is_none());
    }

    #[test]
    fn credentials_with_only_one_key_name_the_missing_variable() {
        let only_ak = Credentials::from_lookup(lookup(&[(ENV_AK, "AK")])).unwrap_err();
        assert!(only_ak.contains(ENV_SK), "{only_ak}");
        let only_sk = Credentials::from_lookup(lookup(&[(ENV_SK, "SK")])).unwrap_err();
        assert!(only_sk.starts_with(ENV_AK), "{only_sk}");
    }

    #[test]
    fn credentials_with_an_empty_key_name_the_empty_variable() {
        let empty_ak =
            Credentials::from_lookup(lookup(&[(ENV_AK, ""), (ENV_SK, "SK")])).unwrap_err();
        assert!(empty_ak.starts_with(ENV_AK), "{empty_ak}");
        let empty_sk =
            Credentials::from_lookup(lookup(&[(ENV_AK, "AK"), (ENV_SK, "")])).unwrap_err();
        assert!(empty_sk.starts_with(ENV_SK), "{empty_sk}");
    }

    #[test]
    fn credentials_with_a_control_character_in_the_token_are_rejected() {
        let err = Credentials::from_lookup(lookup(&[
            (ENV_AK, "AK"),
            (ENV_SK, "SK"),
            (ENV_SECURITY_TOKEN, "bad\ntoken"),
        ]))
        .unwrap_err();
        assert!(err.starts_with(ENV_SECURITY_TOKEN), "{err}");
    }

    #[test]
    fn credentials_read_the_token_and_ignore_an_empty_one() {
        let with_token = Credentials::from_lookup(lookup(&[
            (ENV_AK, "AK"),
            (ENV_SK, "SK"),
            (ENV_SECURITY_TOKEN, "TOKEN"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(with_token.security_token.as_deref(), Some("TOKEN"));
        let empty_token = Credentials::from_lookup(lookup(&[
            (ENV_AK, "AK"),
            (ENV_SK, "SK"),
            (ENV_SECURITY_TOKEN, ""),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(empty_token.security_token, None);
    }

    #[test]
    fn debug_output_never_contains_the_secret_key_token_or_full_access_key() {
        let creds = test_credentials();
        let shown = format!("{creds:?}");
        assert!(!shown.contains(&creds.sk), "{shown}");
        assert!(
            !shown.contains(creds.security_token.as_deref().unwrap()),
            "{shown}"
        );
        assert!(!shown.contains(&creds.ak), "{shown}");
        assert!(shown.contains("HPUA…"), "{shown}");
        let short = Credentials {
            ak: "AKID".to_owned(),
            sk: "s".to_owned(),
            security_token: None,
        };
        assert!(!format!("{short:?}").contains("AKID"));
    }

    #[test]
    fn only_a_signature_over_host_or_accept_encoding_is_one_the_proxy_breaks() {
        let signed = |list: &str| {
            let mut headers = http::HeaderMap::new();
            let value = format!("SDK-HMAC-SHA256 Access=AK, SignedHeaders={list}, Signature=ab");
            headers.insert(http::header::AUTHORIZATION, value.parse().unwrap());
            signed_headers_the_proxy_changes(&headers)
        };
        // The Python SDK signs Host; the Go SDK does not.
        assert_eq!(signed("content-type;host;x-sdk-date"), ["host"]);
        assert!(signed("user-agent;x-project-id;x-sdk-date").is_empty());
        assert_eq!(signed("accept-encoding;Host"), ["host", "accept-encoding"]);
        assert!(signed_headers_the_proxy_changes(&http::HeaderMap::new()).is_empty());
    }
}
