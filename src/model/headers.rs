//! Which headers are hop-by-hop, which carry credentials, and which are too volatile to store or
//! match on. Every other module asks here; no header list is written twice.

use hyper::Method;
use hyper::header::{CONNECTION, CONTENT_ENCODING, HeaderMap, HeaderName};

use crate::model::credentials::is_credential_compact;

/// Hop-by-hop headers (RFC 9110 §7.6.1 plus the legacy `Keep-Alive`/`Proxy-Connection`): they
/// describe one connection, so a proxy never forwards or stores them.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    // Addressed to ims-vcr itself (see `model::session`): never forwarded, never stored.
    "x-ims-vcr-session",
    "x-ims-vcr-skip",
    "x-ims-vcr-token",
];

/// Headers that carry credentials or signature material. They are forwarded upstream in record
/// mode (the upstream needs them) but never written to the store, a cassette or a log.
const CREDENTIALS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-auth-token",
    "x-security-token",
    "x-subject-token",
    // Keystone's MFA receipt: the answer of a partial sign-in hands it out, the client sends it
    // back with the next factor.
    "openstack-auth-receipt",
    "x-auth-key",
    "x-api-key",
    "cookie",
    "set-cookie",
    "x-amz-security-token",
    // OpenStack's service token (Keystone's service-to-service calls) and Swift's storage token.
    "x-service-token",
    "x-storage-token",
    // Other spellings clients use for a bearer token.
    "x-access-token",
    "private-token",
    // The control API's token (`--control-token`).
    "x-ims-vcr-token",
];

/// Whether the answer header `name` (lower-case) is a token or receipt a client only passes
/// back (a credential header named `…token` or `…receipt`: Keystone's and IAM's
/// `X-Subject-Token`, IAM's `X-Subject-LoginToken`, Keystone's MFA receipt, Swift v1's
/// `X-Auth-Token` and `X-Storage-Token`): its value is never stored, a [`PLACEHOLDER_MARKER`]
/// header naming it is, and replay serves it with [`PLACEHOLDER_TOKEN`], so a client reading it
/// still finds one. Other credential headers of an answer (`Set-Cookie`, whose value is
/// `name=value` with attributes; a key or a signature) are dropped with no stand-in.
pub fn takes_placeholder(name: &str) -> bool {
    (name.ends_with("token") || name.ends_with("receipt")) && is_credential(name)
}

/// The headers of an answer that [`takes_placeholder`] (token and receipt headers), as
/// [`PLACEHOLDER_MARKER`] headers naming each (once, in the order they came): what is stored in
/// their place.
pub fn placeholder_markers<'a>(names: impl Iterator<Item = &'a str>) -> Vec<(String, String)> {
    let mut markers: Vec<(String, String)> = Vec::new();
    for name in names {
        // A header map's names are lower-case already; a HAR file's may not be.
        let name = match name.bytes().any(|b| b.is_ascii_uppercase()) {
            true => std::borrow::Cow::Owned(name.to_ascii_lowercase()),
            false => std::borrow::Cow::Borrowed(name),
        };
        if takes_placeholder(&name) && !markers.iter().any(|(_, named)| *named == *name) {
            markers.push((PLACEHOLDER_MARKER.to_owned(), name.into_owned()));
        }
    }
    markers
}

/// A stored answer header whose value names a credential header the live answer had (never its
/// value): replay serves that header with [`PLACEHOLDER_TOKEN`] instead of the marker.
pub const PLACEHOLDER_MARKER: &str = "x-ims-vcr-placeholder";

/// The header of a gap: the answer stored in place of one the leak gate refused
/// (`proxy/gaps.rs`), naming why (`leak-gate`, `redaction`).
pub const NOT_RECORDED_HEADER: &str = "x-ims-vcr-not-recorded";
/// A gap's status: a replay miss's (`proxy::MISS_STATUS`), which no IMS endpoint or gateway sends.
pub const NOT_RECORDED_STATUS: u16 = 599;

/// The token replay serves in place of a recorded one (`X-Subject-Token`,
/// `Openstack-Auth-Receipt`): the client only passes it back, and replay never checks it.
pub const PLACEHOLDER_TOKEN: &str = "ims-vcr-placeholder-token";

/// Request headers that change on every call or every machine (dates, user agents, request ids)
/// or that the proxy rewrites itself (`Host`, `Accept-Encoding`, `Content-Length`). They never
/// take part in matching and are not stored, so cassettes do not churn when re-recorded.
const VOLATILE_REQUEST: &[&str] = &[
    "host",
    "user-agent",
    "date",
    "x-sdk-date",
    "x-request-id",
    "x-openstack-request-id",
    "x-compute-request-id",
    "x-client-request-id",
    "accept-encoding",
    "content-length",
];

/// Response headers that differ on every exchange: stored, they would change every cassette on
/// every re-record. `date` is left out (the server stamps a fresh one on every answer it
/// serves); request ids are stored with a value derived from the request instead.
const REQUEST_ID_RESPONSE: &[&str] = &[
    "x-request-id",
    "x-openstack-request-id",
    "x-compute-request-id",
];

/// The response headers as stored: `date` left out, request ids replaced by `stable_id`, so
/// recording the same answers again writes the same cassette.
pub fn stable_response_headers(
    headers: Vec<(String, String)>,
    stable_id: &str,
) -> Vec<(String, String)> {
    headers
        .into_iter()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("date"))
        .map(|(name, value)| {
            if REQUEST_ID_RESPONSE
                .iter()
                .any(|r| r.eq_ignore_ascii_case(&name))
            {
                (name, stable_id.to_owned())
            } else {
                (name, value)
            }
        })
        .collect()
}

/// True for a hop-by-hop header name (lower-case, as `http` normalises names).
pub fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.contains(&name)
}

/// True for a header that carries a credential or signature.
pub fn is_credential(name: &str) -> bool {
    // The headers nearly every exchange has, none a credential, answered without reading the
    // name apart (this runs several times over every header of every recorded exchange).
    if matches!(
        name,
        "host"
            | "user-agent"
            | "accept"
            | "accept-encoding"
            | "content-type"
            | "content-length"
            | "content-encoding"
            | "date"
            | "server"
            | "connection"
            | "keep-alive"
            | "transfer-encoding"
            | "vary"
            | "etag"
            | "last-modified"
            | "cache-control"
            | "x-request-id"
            | "x-openstack-request-id"
            | "x-compute-request-id"
            | "x-project-id"
            | "x-sdk-date"
            | "strict-transport-security"
    ) {
        return false;
    }
    CREDENTIALS.iter().any(|c| c.eq_ignore_ascii_case(name)) || names_a_credential(name)
}

/// Header names outside [`CREDENTIALS`] that carry a credential by their name, as query
/// parameters and body fields do ([`crate::model::credentials::is_credential_name`]: `X-Auth-Password`, `X-Client-Secret`,
/// `X-Sdk-Signature`, `X-Goog-Api-Key`, `X-Vault-Token`, `X-Obs-Security-Token`, `Token`,
/// `X-Storage-Pass`, `X-Apig-AppCode`, `X-HW-APPKEY`, Swift's `X-Account-Meta-Temp-Url-Key`
/// and `X-Container-Meta-Temp-Url-Key-2`), keys of an authority ([`KEY_OWNERS`]) and the
/// authentication headers of [`AUTH_HEADERS`], and any name holding `authorization` or
/// `cookie`.
fn names_a_credential(name: &str) -> bool {
    let compact = crate::model::credentials::compact(name);
    is_credential_compact(&compact)
        || crate::model::credentials::ends_in_word_pass(name)
        // `X-Forwarded-Authorization`, `X-Original-Authorization`; `Cookie2`, `X-Cookie`.
        || compact.contains("authorization")
        || compact.contains("cookie")
        // `X-Auth`, `X-Registry-Auth` (base64 JSON with a password), `X-Sentry-Auth`,
        // `X-Tableau-Auth`: headers that carry the authentication they are named for (not every
        // name ending in `auth`: `X-No-Auth: true` is a flag).
        || AUTH_HEADERS.contains(&compact.as_str())
        // `X-Auth-User-Key`, `X-Functions-Key`, `Ocp-Apim-Subscription-Key`,
        // `X-Amz-Server-Side-Encryption-Customer-Key`: a key of an authority, not any name
        // ending in `key` (`Idempotency-Key`, `Surrogate-Key`, `X-Object-Meta-Sort-Key` are not
        // secrets).
        || compact.strip_suffix("key").is_some_and(|owner| KEY_OWNERS.iter().any(|o| owner.ends_with(o)))
        // An extension header whose last word names a credential, after a vendor's or a
        // product's words (`X-Sk`, `X-Hw-Sk`, `X-Credential`, `X-Tenant-Totp`): the parameter
        // name with `X-` before it. Only after `X-`: `Access-Control-Allow-Credentials` is no
        // credential.
        || name.get(..2).is_some_and(|x| x.eq_ignore_ascii_case("x-"))
            && name.rsplit(['-', '_']).next().is_some_and(|word| {
                is_credential_compact(&crate::model::credentials::compact(word))
            })
}

/// Header names (compact) that carry authentication though no rule for parameters names them.
const AUTH_HEADERS: &[&str] = &["xauth", "xregistryauth", "xsentryauth", "xtableauauth"];

/// What a header name ending in `key` holds when the key is a secret: whose key it is, the word
/// right before `key` (`X-Image-Meta-Property-Author-Key` is no auth key).
const KEY_OWNERS: &[&str] = &[
    "auth",
    "authuser",
    "api",
    "access",
    "secret",
    "private",
    "session",
    "functions",
    "subscription",
    "customer",
];

/// True for a request header that is neither stored nor matched on (dates, user agents, request ids, and the headers the proxy rewrites).
pub fn is_volatile_request(name: &str) -> bool {
    VOLATILE_REQUEST
        .iter()
        .any(|c| c.eq_ignore_ascii_case(name))
}

/// True when an answer to a `method` request keeps the upstream's `Content-Length`, in what
/// is relayed, stored and replayed: an answer to a `HEAD`, whose length is the size of what a
/// `GET` brings (clients size downloads by it), unless it is content-encoded (bodies are stored
/// decoded, so the encoded length would be wrong). Every other answer is framed by the proxy
/// as it serves it.
pub fn keeps_upstream_length(method: &Method, headers: &HeaderMap) -> bool {
    *method == Method::HEAD && !is_content_encoded(headers)
}

/// True when `headers` name a content coding other than `identity`.
pub fn is_content_encoded(headers: &HeaderMap) -> bool {
    headers.get_all(CONTENT_ENCODING).iter().any(|value| {
        value.as_bytes().split(|b| *b == b',').any(|coding| {
            let coding = coding.trim_ascii();
            !coding.is_empty() && !coding.eq_ignore_ascii_case(b"identity")
        })
    })
}

/// Whether removing headers keeps the others in the order they came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Kept ([`remove_in_order`]): what is stored, and served from the store, is what the
    /// upstream sent.
    Kept,
    /// Any (`HeaderMap::remove` moves the last header into the removed one's place): for an
    /// answer only relayed (passthrough), where building the map again would cost a few
    /// percent of forwarding.
    Any,
}

/// Removes hop-by-hop headers, including every header the `Connection` header names, and the
/// headers `also` picks, in `order`. Most messages have none (and `Connection` is one), so one
/// pass over the names usually suffices.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, also: impl Fn(&HeaderName) -> bool, order: Order) {
    let (mut any, mut connection) = (false, false);
    for name in headers.keys() {
        connection |= name == CONNECTION;
        any = any || is_hop_by_hop(name.as_str()) || also(name);
    }
    if !any {
        return;
    }
    let named: Vec<HeaderName> = match connection {
        true => (headers.get_all(CONNECTION).iter())
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
            .collect(),
        false => Vec::new(),
    };
    let drop = |name: &HeaderName| is_hop_by_hop(name.as_str()) || named.contains(name) || also(name);
    match order {
        Order::Kept => remove_in_order(headers, drop),
        // One at a time, each found by a pass over the names (there are one or two).
        Order::Any => {
            while let Some(name) = headers.keys().find(|name| drop(name)).cloned() {
                headers.remove(name);
            }
        }
    }
}

/// Removes the headers `drop` picks, keeping the others in the order they came in (a recorded
/// answer's headers are stored, and served, as the upstream sent them). `HeaderMap::remove`
/// moves the last header into the removed one's place, so unless the only one dropped is the
/// last, the map is built again without them.
pub fn remove_in_order(headers: &mut HeaderMap, drop: impl Fn(&HeaderName) -> bool) {
    let Some(first) = headers.keys().position(&drop) else {
        return;
    };
    if first + 1 == headers.keys_len() {
        if let Some(last) = headers.keys().nth(first).cloned() {
            headers.remove(last);
        }
        return;
    }
    let old = std::mem::take(headers);
    // Room for the names (a map's capacity counts them, not the values).
    headers.reserve(old.keys_len());
    // `into_iter` names a header's first value only; the values after it are its own.
    let mut current: Option<HeaderName> = None;
    for (name, value) in old {
        if name.is_some() {
            current = name;
        }
        if let Some(name) = &current
            && !drop(name)
        {
            headers.append(name.clone(), value);
        }
    }
}

/// The value of the first header named `name` (any case) among stored header pairs.
pub fn value_of<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    (headers.iter()).find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Whether a message with these (stored) headers carries a file's bytes by its `Content-Type`:
/// `application/octet-stream` (an image file uploaded or downloaded), `image/*` but SVG,
/// `audio/*`, `video/*`, `font/*`, or an archive or disk image (`application/zip`, `gzip`,
/// `x-tar`, `x-iso9660-image`, ...). Such a body is kept byte for byte, even when its bytes
/// happen to be UTF-8 text (a small test fixture uploaded as the image's file): rewriting it
/// would break its checksum.
pub fn holds_file_bytes(headers: &[(String, String)]) -> bool {
    let Some(value) = value_of(headers, "content-type") else {
        return false;
    };
    // Compared without a lower-case copy: this runs on every header list a recording stores.
    let essence = value.split(';').next().unwrap_or_default().trim();
    let (kind, sub) = essence.split_once('/').unwrap_or((essence, ""));
    let is = |text: &str, word: &str| text.eq_ignore_ascii_case(word);
    let starts = |text: &str, prefix: &str| {
        text.get(..prefix.len()).is_some_and(|head| head.eq_ignore_ascii_case(prefix))
    };
    let ends = |text: &str, suffix: &str| {
        (text.len().checked_sub(suffix.len()))
            .and_then(|at| text.get(at..))
            .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix))
    };
    ["audio", "video", "font"].iter().any(|k| is(kind, k))
        || is(kind, "image") && !ends(sub, "+xml")
        || is(kind, "application")
            && (["octet-stream", "zip", "gzip", "zstd", "x-gzip", "x-tar", "x-xz"].iter().any(|s| is(sub, s))
                || ["x-iso9660", "x-qemu", "x-bzip"].iter().any(|p| starts(sub, p)))
}

/// Header pairs in wire order, as stored: lower-case names, values as text (non-UTF-8 bytes are
/// replaced, which no IMS header carries), repeats kept.
pub fn to_pairs(headers: &HeaderMap, keep: impl Fn(&str) -> bool) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| keep(name.as_str()))
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn a_file_is_told_by_its_content_type_in_any_letter_case_and_with_parameters() {
        let file = |value: Option<&str>| {
            let headers: Vec<(String, String)> = value
                .map(|v| vec![("x-other".into(), "image/png".into()), ("Content-Type".into(), v.into())])
                .unwrap_or_default();
            holds_file_bytes(&headers)
        };
        for yes in [
            "application/octet-stream", "Application/Octet-Stream; charset=binary", " image/png ",
            "IMAGE/JPEG", "image", "audio/mpeg", "Video/MP4", "font/woff2", "application/zip",
            "application/gzip", "application/zstd", "application/x-gzip", "application/x-tar",
            "application/x-xz", "application/x-iso9660-image", "application/X-QEMU-disk",
            "application/x-bzip2", "image/€ab", "image/svg€xml",
        ] {
            assert!(file(Some(yes)), "{yes}");
        }
        for no in [
            "application/json", "text/plain", "image/svg+xml", "IMAGE/SVG+XML; charset=utf-8",
            "application/zipper", "application/x-gzipped", "audios/x", "", "/png", "application",
            "application/x-qem€",
        ] {
            assert!(!file(Some(no)), "{no}");
        }
        assert!(!file(None));
    }

    #[test]
    fn token_headers_of_every_common_spelling_are_credentials() {
        for name in [
            "Authorization",
            "X-Auth-Token",
            "X-Service-Token",
            "x-storage-token",
            "X-Access-Token",
            "Private-Token",
            "Cookie",
            // Not on the list, credentials by their name.
            "X-Auth-Password",
            "X-Client-Secret",
            "X-Obs-Security-Token",
            "X-Session-Token",
            "X-Sdk-Signature",
            "X-Signature",
            "X-Passphrase",
            "X-Vault-Token",
            "X-Goog-Api-Key",
            "X-Openstack-Token",
            "Auth-Token",
            "Token",
            "X-Token",
            "Api-Token",
            "Authentication",
            "X-Auth-User-Key",
            "X-Forwarded-Authorization",
            "Cookie2",
            // Keystone's MFA receipt; API gateways' app codes and keys; Swift v1's password and
            // temp-URL keys (a numeric suffix does not count).
            "Openstack-Auth-Receipt",
            "X-Apig-AppCode",
            "X-HW-APPKEY",
            "X-Ca-AppKey",
            "X-Storage-Pass",
            "x-auth-pass",
            "X-Account-Meta-Temp-Url-Key",
            "X-Container-Meta-Temp-Url-Key-2",
            "X-Account-Meta-Temp-Url-Key-10",
            "X-Master-Key",
            "X-Signing-Key",
            // A credential's parameter name after `X-` and a vendor's words.
            "X-Sk",
            "X-Hw-Sk",
            "X-Credential",
            "X-Credentials",
            "X-Totp",
            "X-Tenant-Otp",
        ] {
            assert!(is_credential(name), "{name}");
        }
        for name in [
            "X-Project-Id",
            "X-Auth-Project-Id",
            "Idempotency-Key",
            "Sec-WebSocket-Key",
            "Access-Control-Allow-Credentials",
            "WWW-Authenticate",
            "X-Openstack-Request-Id",
            "Content-Security-Policy",
            "X-Sdk-Content-Sha256",
            "X-Cache-Bypass",
            "X-Storage-User",
            "X-Account-Meta-Quota-Bytes",
            "X-Container-Meta-Temp-Url-Key-Type",
            "X-Signature-Version",
            "X-Token-Expires-At",
            "X-Image-Meta-Disk",
        ] {
            assert!(!is_credential(name), "{name}");
        }
    }

    #[test]
    fn connection_named_headers_are_stripped_with_the_standard_ones() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, X-Custom"),
        );
        h.insert("x-custom", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("x-project-id", HeaderValue::from_static("p"));
        strip_hop_by_hop(&mut h, |_| false, Order::Kept);
        let names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, vec!["x-project-id"]);
    }

    #[test]
    fn headers_removed_leave_the_others_in_the_order_they_came_in() {
        let mut h = HeaderMap::new();
        for (name, value) in [
            ("server", "s"),
            ("content-length", "5"),
            ("set-cookie", "a"),
            ("connection", "keep-alive"),
            ("set-cookie", "b"),
            ("x-request-id", "r"),
            ("location", "/l"),
        ] {
            h.append(name, HeaderValue::from_static(value));
        }
        let mut any = h.clone();
        strip_hop_by_hop(&mut h, |name| name == "content-length", Order::Kept);
        let pairs: Vec<_> = h.iter().map(|(n, v)| (n.as_str(), v.to_str().unwrap())).collect();
        assert_eq!(
            pairs,
            [("server", "s"), ("set-cookie", "a"), ("set-cookie", "b"), ("x-request-id", "r"), ("location", "/l")]
        );
        // The last one alone, and none.
        remove_in_order(&mut h, |name| name == "location");
        remove_in_order(&mut h, |name| name == "absent");
        let names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["server", "set-cookie", "x-request-id"]);
        assert_eq!(h.get_all("set-cookie").iter().count(), 2);
        // In any order, the same headers go.
        strip_hop_by_hop(&mut any, |name| name == "content-length", Order::Any);
        let mut names: Vec<_> = any.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["location", "server", "set-cookie", "x-request-id"]);
    }

    #[test]
    fn credential_names_match_in_any_case() {
        for name in [
            "X-Auth-Token",
            "authorization",
            "Cookie",
            "X-Security-Token",
            // Named for authentication, keys handed over, assertions and proofs.
            "X-Auth",
            "X-Registry-Auth",
            "X-Sentry-Auth",
            "X-Tableau-Auth",
            "X-Functions-Key",
            "X-Amz-Server-Side-Encryption-Customer-Key",
            "X-JWT-Assertion",
            "Cf-Access-Jwt-Assertion",
            "X-Goog-IAP-JWT-Assertion",
            "DPoP",
            // A signature, an HMAC or a bearer token under a header named for it.
            "X-Sign",
            "X-Hmac",
            "Bearer",
            "X-Bearer",
            "X-Auth-Bearer",
        ] {
            assert!(is_credential(name), "{name}");
        }
        for name in [
            "x-project-id",
            "Idempotency-Key",
            "Sec-WebSocket-Key",
            "X-Cache-Key",
            "X-Ms-Documentdb-Partitionkey",
            "Surrogate-Key",
            "Key",
            "X-Object-Meta-Sort-Key",
            "X-No-Auth",
            "X-Image-Meta-Property-Author-Key",
            "X-Capital-Key",
            "WWW-Authenticate",
            "Authentication-Info",
        ] {
            assert!(!is_credential(name), "{name}");
        }
    }

    #[test]
    fn only_a_head_answer_not_content_encoded_keeps_the_upstream_length() {
        let with = |encoding: Option<&'static str>| {
            let mut h = HeaderMap::new();
            h.insert("content-length", HeaderValue::from_static("5242880"));
            if let Some(encoding) = encoding {
                h.insert("content-encoding", HeaderValue::from_static(encoding));
            }
            h
        };
        assert!(keeps_upstream_length(&Method::HEAD, &with(None)));
        assert!(keeps_upstream_length(&Method::HEAD, &with(Some("identity"))));
        assert!(keeps_upstream_length(&Method::HEAD, &with(Some(" Identity , "))));
        assert!(!keeps_upstream_length(&Method::HEAD, &with(Some("gzip"))));
        assert!(!keeps_upstream_length(&Method::HEAD, &with(Some("identity, deflate"))));
        for method in [Method::GET, Method::POST, Method::DELETE, Method::OPTIONS] {
            assert!(!keeps_upstream_length(&method, &with(None)), "{method}");
        }
    }

    #[test]
    fn pairs_keep_order_and_repeats() {
        let mut h = HeaderMap::new();
        h.append("vary", HeaderValue::from_static("a"));
        h.append("x-b", HeaderValue::from_static("1"));
        h.append("vary", HeaderValue::from_static("b"));
        let pairs = to_pairs(&h, |_| true);
        // HeaderMap groups repeats under the first occurrence; their relative order is kept.
        assert_eq!(
            pairs,
            vec![
                ("vary".into(), "a".into()),
                ("vary".into(), "b".into()),
                ("x-b".into(), "1".into())
            ]
        );
    }
}
